"""The 平水韵 rhyme book as the poems use it: each character's tones (平, 仄) and rhyme groups.

The book is ``data/pingshui.json`` (built by ``python -m rnn_demo.data.pingshui``, data/README.md): a
Simplified character takes the groups of every Traditional character that converts to it, and its
own. A character with several readings has several groups, and may be both 平 and 仄; one the book
lacks has no group and no tone, and counts as either tone.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

PING, ZE = "平", "仄"
BOOK_PATH = Path(__file__).resolve().parents[2] / "data" / "pingshui.json"


class RhymeBook:
    """Tones and rhyme groups of characters, from a ``{character: [[tone, group], ...]}`` table."""

    def __init__(self, table: dict[str, list[list[str]]]):
        self._tones = {char: frozenset(tone for tone, _ in entries) for char, entries in table.items()}
        self._groups = {char: frozenset(group for _, group in entries) for char, entries in table.items()}
        self._ping_groups = {
            char: frozenset(group for tone, group in entries if tone == PING) for char, entries in table.items()
        }

    @classmethod
    def load(cls, path: Path = BOOK_PATH) -> RhymeBook:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def __contains__(self, char: str) -> bool:
        return char in self._tones

    def tones(self, char: str) -> frozenset[str]:
        """{平}, {仄}, both (several readings), or empty (not in the book)."""
        return self._tones.get(char, frozenset())

    def has_tone(self, char: str, tone: str) -> bool:
        """Whether ``char`` can be read in ``tone``: a character the book lacks counts as either."""
        tones = self.tones(char)
        return not tones or tone in tones

    def groups(self, char: str, ping_only: bool = False) -> frozenset[str]:
        """The rhyme groups of ``char`` (of its 平 readings only, with ``ping_only``)."""
        return (self._ping_groups if ping_only else self._groups).get(char, frozenset())

    def rhymes(self, first: str, second: str, ping_only: bool = False) -> bool:
        """Whether the two characters share a rhyme group (any of their readings)."""
        return bool(self.groups(first, ping_only) & self.groups(second, ping_only))


@functools.cache
def rhyme_book() -> RhymeBook:
    """The shipped rhyme book, read once."""
    return RhymeBook.load()
