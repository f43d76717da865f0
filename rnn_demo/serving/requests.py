"""What a generation request may ask for, and its validation: the caps the page and the API share.

:func:`validate_request` checks every argument of ``/generate`` and raises :class:`RequestError`
(a ``ValueError``) with one sentence naming the first bad one; the UI shows that sentence as it
is. Nothing here imports torch or gradio.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rnn_demo.serving.zoo import ModelInfo, ModelZoo, UnknownModelError

# Caps and defaults (the API enforces the same caps as the page).
MAX_PROMPT_CHARS = 2_000
MAX_NEW_CHARS = 2_000
DEFAULT_NEW_CHARS = 500
MAX_TEMPERATURE = 2.0
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_K = 0  # 0 = off
DEFAULT_TOP_P = 1.0  # 1 = off
RANDOM_SEED = -1  # the seed value that means "draw a fresh random seed"
DEFAULT_CELL = "lstm"  # the cell the page preselects, and whose largest model the server loads first
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # half of a UTF-16 pair: not text, refused in prompts


def initial_model(zoo: ModelZoo) -> ModelInfo | None:
    """The model the page preselects and the server loads first: the largest of DEFAULT_CELL (or of
    the zoo's first cell); None for an empty zoo."""
    cells = zoo.cells()
    if not cells:
        return None
    cell = DEFAULT_CELL if DEFAULT_CELL in cells else cells[0]
    return zoo.info(cell, zoo.hidden_sizes(cell)[-1])


class RequestError(ValueError):
    """A request argument is out of bounds or of the wrong type; the message says which, in one sentence."""


@dataclass(frozen=True)
class GenerationRequest:
    """A validated /generate request."""

    prompt: str
    model: ModelInfo
    temperature: float
    max_new_chars: int
    top_k: int
    top_p: float
    seed: int | None  # None = random


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def _whole_number(name: str, value) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be a whole number, got {value!r}.")
    return value


def validate_request(
    zoo: ModelZoo,
    prompt,
    cell,
    hidden_size,
    temperature,
    max_new_chars,
    top_k,
    top_p,
    seed,
) -> GenerationRequest:
    """Check every argument of /generate; raise RequestError with one clear sentence on the first bad one."""
    if not isinstance(prompt, str):
        raise RequestError(f"prompt must be text, got {type(prompt).__name__}.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise RequestError(f"The prompt is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}.")
    surrogate = LONE_SURROGATE.search(prompt)
    if surrogate:  # JSON can carry "\ud800"; it is no character, and could not be sent back as UTF-8
        raise RequestError(
            f"prompt must be valid Unicode text: it holds a lone surrogate (U+{ord(surrogate.group()):04X}) "
            f"at position {surrogate.start()}."
        )
    if not isinstance(cell, str):
        raise RequestError(f"cell must be text (one of {', '.join(zoo.cells()) or 'none'}), got {cell!r}.")
    hidden_size = _whole_number("hidden_size", hidden_size)
    try:
        model = zoo.info(cell.strip().lower(), hidden_size)
    except UnknownModelError as error:
        raise RequestError(f"{error}.") from None
    temperature = _number("temperature", temperature)
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise RequestError(f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE}, got {temperature}.")
    max_new_chars = _whole_number("max_new_chars", max_new_chars)
    if not 1 <= max_new_chars <= MAX_NEW_CHARS:
        raise RequestError(f"max_new_chars must be between 1 and {MAX_NEW_CHARS:,}, got {max_new_chars:,}.")
    top_k = _whole_number("top_k", top_k)
    if top_k < 0:
        raise RequestError(f"top_k must be 0 (off) or more, got {top_k}.")
    top_p = _number("top_p", top_p)
    if not 0 < top_p <= 1:
        raise RequestError(f"top_p must be above 0 and at most 1 (1 = off), got {top_p}.")
    seed = _whole_number("seed", seed)
    from rnn_demo.generation.sampling import MAX_SEED  # imports torch: not before the first request

    if seed != RANDOM_SEED and not 0 <= seed <= MAX_SEED:
        raise RequestError(f"seed must be {RANDOM_SEED} (random) or between 0 and {MAX_SEED}, got {seed}.")
    return GenerationRequest(
        prompt=prompt,
        model=model,
        temperature=temperature,
        max_new_chars=max_new_chars,
        top_k=top_k,
        top_p=top_p,
        seed=None if seed == RANDOM_SEED else seed,
    )
