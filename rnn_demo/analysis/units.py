"""Which hidden units follow simple features of a text (in the spirit of LSTMVis and of Karpathy's
quote and line-length cells): each unit's activation is correlated with each feature, and the
units are ranked by their strongest |correlation|.

The features, one number per character (the state after reading that character):

- ``inside quotes or brackets``: 1 between a ``"`` and the next one, or inside ``( )``, ``[ ]``,
  ``{ }`` (nesting counts once), the marks themselves included. Single quotes are left out: in
  English text most are apostrophes;
- ``position in the line``: characters since the last newline (a newline ends its line);
- ``first line after a speaker's name``: 1 on the line after a line like ``ROMEO:`` (a line of at
  most 40 characters that starts with a letter and ends with a colon), as in a play's script;
- ``uppercase``, ``vowel`` (a, e, i, o, u in either case), ``space`` (the space character).
"""

from __future__ import annotations

import numpy as np

OPENING, CLOSING = "([{", ")]}"
SPEAKER_LINE_MAX = 40


def _inside_quotes_or_brackets(chars: list[str]) -> np.ndarray:
    values = np.zeros(len(chars))
    in_quotes, depth = False, 0
    for i, char in enumerate(chars):
        closes = False  # a closing quote or bracket still belongs inside, like the opening one
        if char == '"':
            closes = in_quotes
            in_quotes = not in_quotes
        elif char in OPENING:
            depth += 1
        elif char in CLOSING:
            closes = depth > 0  # a stray closing bracket closes nothing
            depth = max(depth - 1, 0)
        values[i] = in_quotes or depth > 0 or closes
    return values


def _position_in_line(chars: list[str]) -> np.ndarray:
    values = np.zeros(len(chars))
    position = 0
    for i, char in enumerate(chars):
        values[i] = position
        position = 0 if char == "\n" else position + 1
    return values


def _is_speaker_line(line: str) -> bool:
    stripped = line.strip()
    return 1 < len(stripped) <= SPEAKER_LINE_MAX and stripped[0].isalpha() and stripped.endswith(":")


def _first_line_after_speaker(chars: list[str]) -> np.ndarray:
    values = np.zeros(len(chars))
    lines = "".join(chars).split("\n")
    start = 0
    previous_is_speaker = False
    for line in lines:
        if previous_is_speaker:
            values[start : start + len(line)] = 1.0  # the line's characters, not its newline
        previous_is_speaker = _is_speaker_line(line)
        start += len(line) + 1
    return values


FEATURES = {
    "inside quotes or brackets": _inside_quotes_or_brackets,
    "position in the line": _position_in_line,
    "first line after a speaker's name": _first_line_after_speaker,
    "uppercase": lambda chars: np.array([c.isupper() for c in chars], dtype=float),
    "vowel": lambda chars: np.array([c in "aeiouAEIOU" for c in chars], dtype=float),
    "space": lambda chars: np.array([c == " " for c in chars], dtype=float),
}


def text_features(chars: list[str]) -> dict[str, np.ndarray]:
    """Every feature of :data:`FEATURES` for the characters, one float per character."""
    return {name: feature(chars) for name, feature in FEATURES.items()}


def _standardized(columns: np.ndarray) -> np.ndarray:
    """Columns scaled to mean 0 and unit norm; constant columns become zeros (no correlation).

    Constant means every value equal, tested exactly: the rounding of the mean leaves a constant
    column's centred values tiny but not zero, and scaled up they would look like a correlation."""
    centered = columns - columns.mean(axis=0)
    if columns.shape[0] == 0:
        return centered
    varies = columns.max(axis=0) > columns.min(axis=0)
    norms = np.linalg.norm(centered, axis=0)
    return np.divide(centered, norms, out=np.zeros_like(centered), where=varies & (norms > 0))


def correlations(states: np.ndarray, chars: list[str]) -> tuple[list[str], np.ndarray]:
    """Pearson correlation of every unit with every feature: (feature names, (features, units))."""
    states = np.asarray(states, dtype=np.float64)  # (n, H)
    if states.ndim != 2 or states.shape[0] != len(chars):
        raise ValueError(f"states must be (characters, units) for {len(chars)} characters, got {states.shape}")
    features = text_features(chars)
    names = list(features)
    feature_columns = np.stack([features[name] for name in names], axis=1)  # (n, F)
    return names, _standardized(feature_columns).T @ _standardized(states)  # (F, H)


def rank_units(states: np.ndarray, chars: list[str], top: int = 10) -> list[dict]:
    """The ``top`` units whose activation follows a feature most closely, strongest first:
    ``{"unit", "feature", "correlation"}``, each unit with its best feature. Units and features
    that do not vary along the text have correlation 0 and are not listed."""
    names, table = correlations(states, chars)
    if table.size == 0:
        return []
    best_feature = np.abs(table).argmax(axis=0)  # (H,)
    best = table[best_feature, np.arange(table.shape[1])]
    order = np.argsort(-np.abs(best), kind="stable")
    return [
        {"unit": int(unit), "feature": names[best_feature[unit]], "correlation": float(best[unit])}
        for unit in order[:top]
        if abs(best[unit]) > 0
    ]
