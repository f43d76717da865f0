"""The regular forms of Tang poetry as constraints on generation, and the same rules as a check.

A poem is written one couplet a row, ``XXXXX，XXXXX。`` then a newline, so the text generated so far
says where the next character goes: which line, which place in it, or which punctuation.
:class:`PoemRules` is the ``allowed=`` callable of :mod:`rnn_demo.generation.sampling`; at each
place it allows:

- the punctuation and the newline of the form, and elsewhere only Chinese characters the model
  knows (never its unknown symbol);
- 藏头 (``acrostic``): the given character at the head of each line;
- ``first_line``: the given characters on the first line;
- ``rhyme``: the ends of the even lines (2nd, 4th, ...) in one 平水韵 group, which the model
  chooses by its own probabilities at the first such end (a group of the ends so far, when a
  character there has several readings);
- ``tones`` (格律): 二四六分明, the 2nd, 4th (and in seven-character lines 6th) characters
  alternate 平/仄; 对, the two lines of a couplet are opposite at those places; 粘, the first line
  of the next couplet has the tones of the line before it; and the rhyming ends are 平. The first
  line's 2nd character sets the pattern. A character the rhyme book lacks counts as either tone.

:func:`check` reads any poem with the same rules and says which places break them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rnn_demo.poetry.rhyme import PING, ZE, RhymeBook

COMMA, PERIOD, NEWLINE = "，", "。", "\n"
# CJK Unified Ideographs with extension A and the compatibility ideographs: the characters a line holds.
HANZI = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
OPPOSITE = {PING: ZE, ZE: PING}


@dataclass(frozen=True)
class Form:
    """A regular form: characters a line and lines a poem."""

    chars: int
    lines: int
    name: str  # its Chinese name

    @property
    def length(self) -> int:
        """Characters of the whole poem as written: every line and its punctuation, a newline a couplet."""
        return self.lines * (self.chars + 1) + self.lines // 2

    @property
    def tone_places(self) -> tuple[int, ...]:
        """The places (from 0) that 二四六分明 fixes: the 2nd, 4th and, in a seven-character line, 6th."""
        return (1, 3, 5) if self.chars == 7 else (1, 3)


FORMS = {
    "5x4": Form(5, 4, "五言绝句"),
    "7x4": Form(7, 4, "七言绝句"),
    "5x8": Form(5, 8, "五言律诗"),
    "7x8": Form(7, 8, "七言律诗"),
}


def place_of(form: Form, position: int) -> tuple[int, int]:
    """Where character ``position`` (from 0) of a poem goes: (line, place in it), with the place
    ``form.chars`` for the line's punctuation and ``form.chars + 1`` for a couplet's newline."""
    couplet, offset = divmod(position, 2 * (form.chars + 1) + 1)
    if offset <= form.chars:
        return 2 * couplet, offset
    return 2 * couplet + 1, min(offset - form.chars - 1, form.chars + 1)


def line_tone(form: Form, line: int, place: int, first: str) -> str:
    """The tone 格律 asks at (line, place), a place of ``form.tone_places``, when the first line's 2nd
    character is ``first``: 二四六分明 within a line, 对 within a couplet, 粘 between couplets."""
    # The 2nd character of lines 0, 1, 2, 3, ... goes first, other, other, first, first, other, ...
    second = first if line % 4 in (0, 3) else OPPOSITE[first]
    return second if form.tone_places.index(place) % 2 == 0 else OPPOSITE[second]


def anchor_tone(book: RhymeBook, char: str) -> str:
    """The tone that a first line's 2nd character sets: its own, 平 when it may be both (or neither)."""
    tones = book.tones(char)
    return ZE if tones == {ZE} else PING


@dataclass
class PoemRules:
    """The ``allowed=`` constraint that writes a poem of ``form`` (see the module's doc). Its
    arguments are checked by the caller (:func:`rnn_demo.poetry.poems.validate_poem_request`)."""

    form: Form
    vocab: str  # the model's characters
    book: RhymeBook
    acrostic: str = ""
    first_line: str = ""
    rhyme: bool = False
    tones: bool = False
    _hanzi: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self):
        self._hanzi = frozenset(char for char in self.vocab if HANZI.fullmatch(char))

    def __call__(self, text: str) -> Iterable[str]:
        line, place = place_of(self.form, len(text))
        if place == self.form.chars:
            return COMMA if line % 2 == 0 else PERIOD
        if place > self.form.chars:
            return NEWLINE
        if line == 0 and self.first_line:
            return self.first_line[place]
        if place == 0 and self.acrostic:
            return self.acrostic[line]
        allowed = self._hanzi
        if self.tones and place in self.form.tone_places:
            first = anchor_tone(self.book, self._char_at(text, 0, 1)) if line or place > 1 else None
            if first is not None:
                tone = line_tone(self.form, line, place, first)
                allowed = {char for char in allowed if self.book.has_tone(char, tone)}
        if line % 2 == 1 and place == self.form.chars - 1:  # an even line's end: the rhyme
            allowed = self._rhyming(text, line, allowed)
        return allowed

    def _char_at(self, text: str, line: int, place: int) -> str:
        couplet_length = 2 * (self.form.chars + 1) + 1
        return text[(line // 2) * couplet_length + (line % 2) * (self.form.chars + 1) + place]

    def _rhyming(self, text: str, line: int, allowed) -> set[str] | frozenset[str]:
        ping_only = self.tones  # 格律: the rhyming ends are 平
        if ping_only:
            allowed = {char for char in allowed if PING in self.book.tones(char)}
        if not self.rhyme:
            return allowed
        if line == 1:  # the first rhyme: any character with a group (of the tone asked)
            return {char for char in allowed if self.book.groups(char, ping_only)}
        # The groups every end so far shares (a character with several readings may have narrowed them).
        ends = [self._char_at(text, earlier, self.form.chars - 1) for earlier in range(1, line, 2)]
        groups = frozenset.intersection(*(self.book.groups(end, ping_only) for end in ends))
        return {char for char in allowed if self.book.groups(char, ping_only) & groups}


@dataclass(frozen=True)
class Report:
    """What :func:`check` found: the lines, each character's tones, the places that break a rule."""

    lines: list[str]
    tones: list[list[str]]  # per line, per character: "平", "仄", "平仄" (either) or "" (not in the book)
    form_ok: bool  # the line count and every line's length are the form's
    rhymes: bool  # the even lines end in one group
    tones_ok: bool  # 二四六分明, 对, 粘 and 平 rhyming ends hold
    broken: list[tuple[int, int, str]]  # (line, place, the rule) for each place that breaks one


def poem_lines(poem: str) -> list[str]:
    """The lines of a poem written in couplets (``XXXXX，XXXXX。`` a row) or one line a row."""
    return [line for line in re.split(r"[，。！？；、,.!?;\s]+", poem) if line]


def check(poem: str, form: Form, book: RhymeBook) -> Report:
    """Read ``poem`` with the rules of ``form``: which places break 格律 and whether it rhymes."""
    lines = poem_lines(poem)
    tones = [["".join(sorted(book.tones(char), key=(PING + ZE).index)) for char in line] for line in lines]
    form_ok = len(lines) == form.lines and all(len(line) == form.chars and HANZI.fullmatch(line[0]) for line in lines)
    ends = [line[-1] for line in lines[1::2] if line]
    rhymes = bool(ends) and bool(frozenset.intersection(*(book.groups(end) for end in ends)))
    broken: list[tuple[int, int, str]] = []
    if form_ok:
        # The first line's 2nd character sets the pattern; one that may be read both ways sets
        # whichever the poem follows better.
        anchors = book.tones(lines[0][1]) or {PING, ZE}
        broken = min((_broken_places(lines, form, book, anchor) for anchor in sorted(anchors)), key=len)
    return Report(lines, tones, form_ok, rhymes, form_ok and not broken, broken)


def _broken_places(lines: list[str], form: Form, book: RhymeBook, first: str) -> list[tuple[int, int, str]]:
    """The places of a well-formed poem that break 格律 when its first line's 2nd character is ``first``."""
    broken = []
    for number, line in enumerate(lines):
        for place in form.tone_places:
            tone = line_tone(form, number, place, first)
            if not book.has_tone(line[place], tone):
                broken.append((number, place, f"{tone} at character {place + 1}"))
        if number % 2 == 1 and not book.has_tone(line[-1], PING):
            broken.append((number, form.chars - 1, "平 at a rhyming end"))
    return broken
