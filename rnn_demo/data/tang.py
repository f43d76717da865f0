"""The Tang-poem corpus: 全唐诗 from the npm package ``chinese-poetry`` 2.0.1, in Simplified script.

``python -m rnn_demo.data.tang chinese-poetry-2.0.1.tgz`` reads the poems straight from the
tarball (``package/dist/quantangshi/poet.tang.<N>.json``), converts them to Simplified with
OpenCC, cleans them and writes ``train.txt.gz``, ``validation.txt.gz`` and ``test.txt.gz``.

Each poem is written as its title on one line, one couplet per line, then a blank line::

    静夜思
    床前明月光，疑是地上霜。
    举头望明月，低头思故乡。

So a poem starts after a blank line, and generation can be primed with ``"\\n\\n" + title + "\\n"``.

Cleaning, in this order:
- a character its editors restored, in square brackets (``[爽]``), is kept without its brackets;
- a poem with a character the source could only describe by its parts (``{艹/尔}``) is dropped;
- every other bracket pair is an editorial note (variant readings such as ``（一作…）``) and is cut
  out of the couplets;
- a poem whose couplets still hold anything but CJK characters and ``，。`` is dropped (quotation
  marks, question marks, lacuna marks ``□``), so the couplet lines stay clean for a generator that
  constrains line lengths and punctuation;
- a poem with no couplet left is dropped, and so is a repeat of an earlier poem's couplets, so that
  no poem lands in two splits;
- a title keeps only its CJK characters, the words of its notes included (the source's brackets in
  titles mostly hold restored characters, ``应[制]``); one left empty becomes ``无题``.

A poem's split is decided by the sha256 of its couplets: 90% train, 5% validation, 5% test.
Characters seen fewer than ``MIN_COUNT`` times in the train split are replaced everywhere by
``UNKNOWN``, a symbol that cleaning guarantees never occurs in a poem.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import json
import re
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "validation", "test")
# The one symbol for rare characters; cleaning keeps only CJK ideographs and "，。", so it cannot clash.
UNKNOWN = "□"
# Rarer characters than this (in the train split) become UNKNOWN: keeps the vocabulary near 6,000.
MIN_COUNT = 3
UNTITLED = "无题"
LINE_PUNCTUATION = "，。"
POEM_FILE = re.compile(r"package/dist/quantangshi/poet\.tang\.(\d+)\.json")
# CJK Unified Ideographs with extension A, B and later, and the compatibility ideographs.
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CLEAN_LINE = re.compile(f"[{CJK}{LINE_PUNCTUATION}]+")
_NOT_CJK = re.compile(f"[^{CJK}]")
# The source's brackets: restored characters, characters described by their parts, and notes.
_RESTORED = re.compile(r"\[([^\[\]]*)\]")
_DESCRIBED = re.compile(r"\{[^{}]*\}")
_NOTE = re.compile(r"（[^（）]*）|\([^()]*\)|〖[^〖〗]*〗|【[^【】]*】|〔[^〔〕]*〕|［[^［］]*］")


class CorpusError(RuntimeError):
    """The tarball could not be read as the chinese-poetry package; the message says why."""


@dataclass
class Summary:
    """What the build kept and dropped, and the size of what it wrote."""

    read: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)  # reason -> poems
    poems: dict[str, int] = field(default_factory=dict)  # split -> poems
    characters: dict[str, int] = field(default_factory=dict)  # split -> characters of text
    vocabulary_size: int = 0  # distinct characters of the train text, UNKNOWN and newline included
    rare_characters: int = 0  # distinct characters replaced by UNKNOWN
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> sha256 of its bytes

    def lines(self) -> list[str]:
        kept = sum(self.poems.values())
        out = [f"poems read {self.read:,}, kept {kept:,}"]
        out += [f"  dropped ({reason}): {count:,}" for reason, count in sorted(self.dropped.items())]
        out += [f"  {name}: {self.poems[name]:,} poems, {self.characters[name]:,} characters" for name in SPLITS]
        out.append(f"vocabulary {self.vocabulary_size:,} characters "
                   f"({self.rare_characters:,} rarer than {MIN_COUNT} in train written as {UNKNOWN})")
        return out


def read_poems(tarball: Path) -> list[dict]:
    """The Tang poems of the package tarball, in source order (file number, then position)."""
    if not tarball.is_file():
        raise CorpusError(f"{tarball}: no such file (expected the npm tarball chinese-poetry-2.0.1.tgz)")
    try:
        with tarfile.open(tarball, "r:*") as archive:
            members = []
            for member in archive.getmembers():
                match = POEM_FILE.fullmatch(member.name)
                if match and member.isfile():
                    members.append((int(match.group(1)), member))
            if not members:
                raise CorpusError(f"{tarball} holds no package/dist/quantangshi/poet.tang.<N>.json files")
            poems = []
            for _, member in sorted(members, key=lambda item: item[0]):
                poems.extend(json.load(archive.extractfile(member)))
    except tarfile.ReadError:
        raise CorpusError(f"{tarball} is not a tarball (neither a tar nor a compressed tar archive)") from None
    except (tarfile.TarError, OSError, EOFError) as error:  # e.g. a tarball cut short
        raise CorpusError(f"{tarball} could not be read to the end: {' '.join(str(error).split())}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorpusError(f"{tarball}: a poem file is not valid JSON: {error}") from None
    return poems


def clean_poem(title: str, paragraphs: list[str]) -> tuple[str, tuple[str, ...]] | str:
    """(title, couplet lines) of a poem already in Simplified script, or the reason to drop it."""
    if any(_DESCRIBED.search(paragraph) for paragraph in paragraphs):
        return "a character described by its parts"
    lines = []
    for paragraph in paragraphs:
        line = _NOTE.sub("", _RESTORED.sub(r"\1", paragraph)).strip()
        if not line:
            continue  # a line that was only a note
        if not _CLEAN_LINE.fullmatch(line):
            return "other characters in a line"
        lines.append(line)
    if not lines:
        return "no text"
    return _NOT_CJK.sub("", title) or UNTITLED, tuple(lines)


def split_of(lines: tuple[str, ...]) -> str:
    """The split of a poem, from the sha256 of its couplets: stable across builds and machines."""
    bucket = int.from_bytes(hashlib.sha256("\n".join(lines).encode("utf-8")).digest()[:8], "big") % 100
    return "train" if bucket < 90 else "validation" if bucket < 95 else "test"


def _converter():
    try:
        import opencc
    except ImportError:
        raise CorpusError("the corpus needs OpenCC for the Simplified script: pip install opencc") from None
    return opencc.OpenCC("t2s")


def write_gzip(path: Path, text: str) -> None:
    """UTF-8 ``text`` gzipped the same way every time: no timestamp, no file name in the header."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as out:
        out.write(text.encode("utf-8"))


def build_corpus(tarball: Path, out: Path, min_count: int = MIN_COUNT) -> Summary:
    """Read, convert, clean, split and write the corpus to ``out``; the summary says what happened."""
    converter = _converter()
    poems = read_poems(tarball)
    summary = Summary(read=len(poems))
    seen: set[tuple[str, ...]] = set()
    by_split: dict[str, list[tuple[str, tuple[str, ...]]]] = {name: [] for name in SPLITS}
    for poem in poems:
        title = converter.convert(poem.get("title") or "")
        paragraphs = [converter.convert(paragraph) for paragraph in poem.get("paragraphs") or []]
        cleaned = clean_poem(title, paragraphs)
        if isinstance(cleaned, str):
            summary.dropped[cleaned] += 1
            continue
        title, lines = cleaned
        if lines in seen:  # compared after conversion, so variant spellings of one poem count once
            summary.dropped["repeat of an earlier poem"] += 1
            continue
        seen.add(lines)
        by_split[split_of(lines)].append((title, lines))

    texts = {name: "".join(title + "\n" + "\n".join(lines) + "\n\n" for title, lines in by_split[name])
             for name in SPLITS}
    counts = collections.Counter(texts["train"])
    rare = {character for character, count in counts.items() if count < min_count}
    everywhere = set("".join(texts.values()))
    rare |= everywhere - set(counts)  # characters the train split never shows are unknown too
    if rare:
        table = str.maketrans({character: UNKNOWN for character in rare})
        texts = {name: text.translate(table) for name, text in texts.items()}

    out.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        path = out / f"{name}.txt.gz"
        write_gzip(path, texts[name])
        summary.poems[name] = len(by_split[name])
        summary.characters[name] = len(texts[name])
        summary.sha256[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    summary.vocabulary_size = len(set(texts["train"]))
    summary.rare_characters = len(rare)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rnn_demo.data.tang",
        description="Build the Tang-poem corpus (train/validation/test .txt.gz) from the chinese-poetry npm tarball.",
    )
    parser.add_argument("tarball", type=Path, help="the npm tarball chinese-poetry-2.0.1.tgz (npm pack chinese-poetry@2.0.1)")
    parser.add_argument("--out", type=Path, default=Path("data/tang"), help="folder for the three split files")
    parser.add_argument("--min-count", type=int, default=MIN_COUNT,
                        help=f"characters seen fewer times in the train split become {UNKNOWN}")
    args = parser.parse_args(argv)
    if args.min_count < 1:
        parser.error("--min-count must be at least 1")
    try:
        summary = build_corpus(args.tarball, args.out, args.min_count)
    except CorpusError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    for name, digest in summary.sha256.items():
        print(f"{digest}  {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
