"""What a request may ask for, and its validation: the caps the page and the API share.

:func:`validate_request` checks every argument of ``/generate``; the ``validate_*`` functions check
those of the views inside the network (:mod:`rnn_demo.serving.views`). Each raises
:class:`RequestError` (a ``ValueError``) with one sentence naming the first bad argument; the UI
shows that sentence as it is. Nothing here imports torch or gradio.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rnn_demo.serving.errors import UserError
from rnn_demo.serving.zoo import ModelInfo, ModelZoo, UnknownModelError

# Caps and defaults (the API enforces the same caps as the page).
MAX_PROMPT_CHARS = 2_000
MAX_NEW_CHARS = 2_000
DEFAULT_NEW_CHARS = 500
# The views inside the network (/explain, /score, /neurons, and their tab) read texts of up to
# this many characters. /neurons answers 2 x hidden_size numbers per character (h, and an LSTM's
# c), so this cap also bounds the size of its answer.
MAX_VIEW_CHARS = 2_000
# /explain lists at most this many likeliest characters at each position: it caps the answer (about
# 0.5 MB of JSON for 2,000 characters) whatever the model's vocabulary.
MAX_ALTERNATIVES = 10
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


class RequestError(UserError, ValueError):
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
        raise RequestError("{name} must be a finite number, got {value!r}.", name=name, value=value)
    return float(value)


def _whole_number(name: str, value) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError("{name} must be a whole number, got {value!r}.", name=name, value=value)
    return value


def _text(name: str, value, limit: int) -> str:
    """``value`` as text of at most ``limit`` characters, refused when it is not valid Unicode."""
    if not isinstance(value, str):
        raise RequestError("{name} must be text, got {type}.", name=name, type=type(value).__name__)
    if len(value) > limit:
        raise RequestError(
            "The {name} is {length:,} characters long; the limit is {limit:,}.",
            name=name,
            length=len(value),
            limit=limit,
        )
    surrogate = LONE_SURROGATE.search(value)
    if surrogate:  # JSON can carry "\ud800"; it is no character, and could not be sent back as UTF-8
        raise RequestError(
            "{name} must be valid Unicode text: it holds a lone surrogate (U+{code:04X}) at position {position}.",
            name=name,
            code=ord(surrogate.group()),
            position=surrogate.start(),
        )
    return value


def validate_model(zoo: ModelZoo, cell, hidden_size) -> ModelInfo:
    """The served model with this cell and hidden size; RequestError names what exists otherwise."""
    if not isinstance(cell, str):
        raise RequestError(
            "cell must be text (one of {cells}), got {cell!r}.", cells=", ".join(zoo.cells()) or "none", cell=cell
        )
    hidden_size = _whole_number("hidden_size", hidden_size)
    try:
        return zoo.info(cell.strip().lower(), hidden_size)
    except UnknownModelError as error:
        raise RequestError(error.template, **error.fields) from None


def validate_seed(seed) -> int | None:
    """A seed from 0 to MAX_SEED; None for RANDOM_SEED (a fresh random seed)."""
    seed = _whole_number("seed", seed)
    from rnn_demo.generation.sampling import MAX_SEED  # imports torch: not before the first request

    if seed != RANDOM_SEED and not 0 <= seed <= MAX_SEED:
        raise RequestError(
            "seed must be {random_seed} (random) or between 0 and {max_seed}, got {seed}.",
            random_seed=RANDOM_SEED,
            max_seed=MAX_SEED,
            seed=seed,
        )
    return None if seed == RANDOM_SEED else seed


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
    prompt = _text("prompt", prompt, MAX_PROMPT_CHARS)
    model = validate_model(zoo, cell, hidden_size)
    temperature = _number("temperature", temperature)
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise RequestError(
            "temperature must be between 0 (greedy) and {max_temperature}, got {temperature}.",
            max_temperature=MAX_TEMPERATURE,
            temperature=temperature,
        )
    max_new_chars = _whole_number("max_new_chars", max_new_chars)
    if not 1 <= max_new_chars <= MAX_NEW_CHARS:
        raise RequestError(
            "max_new_chars must be between 1 and {limit:,}, got {value:,}.", limit=MAX_NEW_CHARS, value=max_new_chars
        )
    top_k = _whole_number("top_k", top_k)
    if top_k < 0:
        raise RequestError("top_k must be 0 (off) or more, got {top_k}.", top_k=top_k)
    top_p = _number("top_p", top_p)
    if not 0 < top_p <= 1:
        raise RequestError("top_p must be above 0 and at most 1 (1 = off), got {top_p}.", top_p=top_p)
    seed = validate_seed(seed)
    return GenerationRequest(
        prompt=prompt,
        model=model,
        temperature=temperature,
        max_new_chars=max_new_chars,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    )


def validate_cell(zoo: ModelZoo, cell) -> str:
    """A cell the zoo serves (``"rnn"``, ``"gru"``, ``"lstm"``, ...), in lower case."""
    cells = zoo.cells()
    if not isinstance(cell, str) or cell.strip().lower() not in cells:
        raise RequestError(
            "cell must be one of {cells}, got {cell!r}.",
            cells=", ".join(cells) or "none (no models are available)",
            cell=cell,
        )
    return cell.strip().lower()


def validate_view_text(text, limit: int = MAX_VIEW_CHARS) -> str:
    """A text for the views inside the network: at most ``limit`` characters, not empty."""
    text = _text("text", text, limit)
    if not text:
        raise RequestError("The text is empty; give the model something to read.")
    return text


def validate_layer(model: ModelInfo, layer) -> int:
    """A layer of ``model``, counted from 0 (the layer next to the input)."""
    layer = _whole_number("layer", layer)
    if not 0 <= layer < model.num_layers:
        allowed = "0" if model.num_layers == 1 else f"between 0 and {model.num_layers - 1}"
        layers = f"{model.num_layers} layer{'s' if model.num_layers > 1 else ''}"
        raise RequestError(
            "layer must be {allowed} for {model} (it has {layers}), got {layer}.",
            allowed=allowed,
            model=model.name,
            layers=layers,
            layer=layer,
        )
    return layer


def validate_alternatives(top_k, vocab_size: int) -> int:
    """How many likeliest characters to list at each position: 1 to MAX_ALTERNATIVES, and at most the
    model's vocabulary size."""
    top_k = _whole_number("top_k", top_k)
    most = min(vocab_size, MAX_ALTERNATIVES)
    if not 1 <= top_k <= most:
        raise RequestError("top_k must be between 1 and {most}, got {top_k}.", most=most, top_k=top_k)
    return top_k
