"""Characters <-> token ids.

The vocabulary is a string: the character at position i has id i. It is sorted by code
point, so the same text always gives the same vocabulary, and it travels inside every
checkpoint (``config.json``), so a model never needs a separate vocabulary file.

Policy for characters outside the vocabulary: :meth:`CharTokenizer.encode` raises
:class:`UnknownCharactersError` naming them; :meth:`CharTokenizer.encode_known` skips them
and returns them to the caller, which is what prompt handling uses so a stray emoji in a
prompt is reported, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownCharactersError(ValueError):
    """Text contains characters that the vocabulary does not have."""

    def __init__(self, characters: str):
        self.characters = characters
        shown = ", ".join(repr(c) for c in characters[:10])
        more = f" and {len(characters) - 10} more" if len(characters) > 10 else ""
        super().__init__(f"Characters not in the vocabulary: {shown}{more}")


@dataclass(frozen=True)
class Encoding:
    """Token ids of the known characters of a text, and the distinct unknown ones skipped."""

    ids: list[int]
    skipped: str  # distinct skipped characters, in order of first appearance


class CharTokenizer:
    """Maps each character of ``vocab`` to its index and back."""

    def __init__(self, vocab: str):
        if not isinstance(vocab, str) or not vocab:
            raise ValueError("vocab must be a non-empty string of distinct characters")
        if len(set(vocab)) != len(vocab):
            repeated = sorted({c for c in vocab if vocab.count(c) > 1})
            raise ValueError(f"vocab repeats characters: {repeated[:10]!r}")
        self.vocab = vocab
        self._ids = {character: index for index, character in enumerate(vocab)}

    @classmethod
    def from_text(cls, *texts: str) -> CharTokenizer:
        """The vocabulary of every distinct character in ``texts``, sorted by code point."""
        characters: set[str] = set()
        for text in texts:
            characters.update(text)
        if not characters:
            raise ValueError("Cannot build a vocabulary from empty text")
        return cls("".join(sorted(characters)))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def __contains__(self, character: str) -> bool:
        return character in self._ids

    def encode(self, text: str) -> list[int]:
        """Ids of every character; :class:`UnknownCharactersError` if any is not in the vocabulary."""
        encoding = self.encode_known(text)
        if encoding.skipped:
            raise UnknownCharactersError(encoding.skipped)
        return encoding.ids

    def encode_known(self, text: str) -> Encoding:
        """Ids of the characters in the vocabulary; the others are skipped and reported."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids = []
        skipped: dict[str, None] = {}  # an ordered set
        for character in text:
            index = self._ids.get(character)
            if index is None:
                skipped[character] = None
            else:
                ids.append(index)
        return Encoding(ids=ids, skipped="".join(skipped))

    def decode(self, ids) -> str:
        """The text of a sequence of ids (ints or a 1-D tensor)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        size = len(self.vocab)
        for index in ids:
            if not 0 <= index < size:
                raise ValueError(f"Token id {index} is outside the vocabulary (0..{size - 1})")
        return "".join(self.vocab[index] for index in ids)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
