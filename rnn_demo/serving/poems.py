"""A Tang poem as a request: validation, the poem model, the constraint, the stream (``/poem``).

:func:`poem_stream` writes a poem of a regular form with the zoo's poem model
(``ModelZoo(poems=True)``): the model is primed with the mood as a title (``"\\n\\n" + mood +
"\\n"``, the corpus's layout, data/README.md), which is not part of the poem, and every character
is drawn under :class:`rnn_demo.poetry.rules.PoemRules`, so the form, the acrostic, the first line,
the rhyme and the tones hold by construction. Bad arguments raise
:class:`~rnn_demo.serving.requests.RequestError` with one sentence naming the first bad one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rnn_demo.serving.requests import RequestError, _number, _text, validate_seed
from rnn_demo.serving.streaming import generate_stream, load_weights
from rnn_demo.serving.zoo import ModelInfo, ModelZoo

if TYPE_CHECKING:
    from rnn_demo.serving.worker import GenerationWorker

MAX_MOOD_CHARS = 20
DEFAULT_MOOD = "无题"  # "untitled", the corpus's own title for a poem without one
DEFAULT_FORM = "5x4"
DEFAULT_POEM_TEMPERATURE = 0.8


@dataclass(frozen=True)
class PoemRequest:
    """A validated /poem request."""

    model: ModelInfo
    form: str  # a key of rnn_demo.poetry.rules.FORMS
    acrostic: str
    first_line: str
    rhyme: bool
    tones: bool
    temperature: float
    seed: int | None  # None = random
    mood: str


def poem_model(zoo: ModelZoo) -> ModelInfo:
    """The poem model a request gets: the zoo's largest."""
    models = zoo.models()
    if not models:
        raise RequestError("No poem model is available on this server.")
    return max(models, key=lambda info: info.params)


def _hanzi(name: str, value: str, length: int, vocab: str) -> str:
    """``value`` as ``length`` Chinese characters that the model knows; RequestError names what is wrong."""
    from rnn_demo.poetry.rules import HANZI

    if len(value) != length:
        raise RequestError(f"{name} must be {length} characters long, got {len(value)} ({value!r}).")
    for char in value:
        if not HANZI.fullmatch(char):
            raise RequestError(f"{name} must be Chinese characters only; {char!r} is not one.")
        if char not in vocab:
            raise RequestError(f"{name}: the poem model does not know the character {char!r}.")
    return value


def validate_poem_request(zoo: ModelZoo, form, acrostic, first_line, rhyme, tones, temperature, seed, mood) -> PoemRequest:
    """Check every argument of /poem; raise RequestError with one clear sentence on the first bad one."""
    from rnn_demo.poetry.rules import FORMS
    from rnn_demo.serving.requests import MAX_TEMPERATURE

    info = poem_model(zoo)
    if not isinstance(form, str) or form.strip().lower() not in FORMS:
        names = ", ".join(f"{key} ({value.name})" for key, value in FORMS.items())
        raise RequestError(f"form must be one of {names}, got {form!r}.")
    form = form.strip().lower()
    vocab = load_weights(zoo, info).vocab
    lines, chars = FORMS[form].lines, FORMS[form].chars
    acrostic = _text("acrostic", acrostic, lines).strip()
    if acrostic:
        acrostic = _hanzi("acrostic", acrostic, lines, vocab)
    first_line = _text("first_line", first_line, chars).strip()
    if first_line:
        first_line = _hanzi("first_line", first_line, chars, vocab)
    if acrostic and first_line and first_line[0] != acrostic[0]:
        raise RequestError(f"The first line must begin with the acrostic's first character {acrostic[0]!r}.")
    for name, value in (("rhyme", rhyme), ("tones", tones)):
        if not isinstance(value, bool):
            raise RequestError(f"{name} must be true or false, got {value!r}.")
    temperature = _number("temperature", temperature)
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise RequestError(f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE}, got {temperature}.")
    seed = validate_seed(seed)
    mood = _text("mood", "" if mood is None else mood, MAX_MOOD_CHARS).strip().replace("\n", " ")
    return PoemRequest(info, form, acrostic, first_line, rhyme, tones, temperature, seed, mood or DEFAULT_MOOD)


def poem_stream(
    zoo: ModelZoo,
    form=DEFAULT_FORM,
    acrostic="",
    first_line="",
    rhyme=True,
    tones=False,
    temperature=DEFAULT_POEM_TEMPERATURE,
    seed=-1,
    mood="",
    *,
    worker: GenerationWorker,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[str]:
    """Yield the poem as it grows, one couplet a row (``XXXXX，XXXXX。``), the whole poem last.
    Closing the iterator ends the generation."""
    from rnn_demo.poetry.rhyme import rhyme_book
    from rnn_demo.poetry.rules import FORMS, PoemRules

    request = validate_poem_request(zoo, form, acrostic, first_line, rhyme, tones, temperature, seed, mood)
    form = FORMS[request.form]
    vocab = load_weights(zoo, request.model).vocab
    rules = PoemRules(form, vocab, rhyme_book(), request.acrostic, request.first_line, request.rhyme, request.tones)
    prime = "\n\n" + request.mood + "\n"
    model = request.model
    seed = -1 if request.seed is None else request.seed
    updates = generate_stream(
        zoo, prime, model.cell, model.hidden_size, request.temperature, form.length, 0, 1.0, seed,
        worker=worker, should_stop=should_stop, allowed=rules,
    )  # fmt: skip
    try:
        for text, _ in updates:
            yield text[len(prime) :].rstrip("\n")
    finally:  # Stop, a cancel or a disconnect: end the generation now
        updates.close()
