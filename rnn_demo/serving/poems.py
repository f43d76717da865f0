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
        raise RequestError(
            "{name} must be {length} characters long, got {got} ({value!r}).",
            name=name,
            length=length,
            got=len(value),
            value=value,
        )
    for char in value:
        if not HANZI.fullmatch(char):
            raise RequestError("{name} must be Chinese characters only; {char!r} is not one.", name=name, char=char)
        if char not in vocab:
            raise RequestError("{name}: the poem model does not know the character {char!r}.", name=name, char=char)
    return value


def validate_poem_request(
    zoo: ModelZoo, form, acrostic, first_line, rhyme, tones, temperature, seed, mood
) -> PoemRequest:
    """Check every argument of /poem; raise RequestError with one clear sentence on the first bad one."""
    from rnn_demo.poetry.rules import FORMS
    from rnn_demo.serving.requests import MAX_TEMPERATURE

    info = poem_model(zoo)
    if not isinstance(form, str) or form.strip().lower() not in FORMS:
        names = ", ".join(f"{key} ({value.name})" for key, value in FORMS.items())
        raise RequestError("form must be one of {names}, got {form!r}.", names=names, form=form)
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
        raise RequestError("The first line must begin with the acrostic's first character {char!r}.", char=acrostic[0])
    for name, value in (("rhyme", rhyme), ("tones", tones)):
        if not isinstance(value, bool):
            raise RequestError("{name} must be true or false, got {value!r}.", name=name, value=value)
    temperature = _number("temperature", temperature)
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise RequestError(
            "temperature must be between 0 (greedy) and {max_temperature}, got {temperature}.",
            max_temperature=MAX_TEMPERATURE,
            temperature=temperature,
        )
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


MAX_CHECK_CHARS = 200  # a pasted poem; the longest form, 七律, is 64 characters as written
CHECK_ALTERNATIVES = 3  # the likeliest characters /check_poem lists at each place


def check_poem_request(zoo: ModelZoo, poem) -> dict:
    """``/check_poem``: any poem read by the rules of the forms and by the poem model.

    The poem may be written in couplets (``XXXXX，XXXXX。``), one line a row, or with any of
    ``，。！？；、`` between lines. It is read as the poem model reads a poem of the corpus: after the
    title 无题, one couplet a row; a character the model does not know is read as its unknown symbol.
    The answer: ``{"model", "form", "lines", "rhymes", "rhyme_groups", "tones_ok", "broken",
    "bits_per_char"}``, where ``form`` is the matching key of FORMS or None, each line is
    ``{"text", "chars": [{"char", "tones", "prob", "expected": [[char, prob], ...]}], "end_groups"}``,
    ``rhyme_groups`` the groups that the ends of the even lines (two or more) share, and ``tones_ok`` and ``broken``
    (``{"line", "place", "rule"}``, counted from 1) the 格律 check of a poem of a form (None and []
    for any other).
    """
    from rnn_demo.analysis import explain
    from rnn_demo.data.tang import UNKNOWN
    from rnn_demo.poetry.rhyme import rhyme_book
    from rnn_demo.poetry.rules import COMMA, FORMS, HANZI, PERIOD, check, poem_lines
    from rnn_demo.serving.views import load_model

    info = poem_model(zoo)
    lines = poem_lines(_text("poem", poem, MAX_CHECK_CHARS))
    if not lines:
        raise RequestError("The poem is empty: paste a poem, one line a row or in couplets.")
    for char in "".join(lines):
        if not HANZI.fullmatch(char):
            raise RequestError("A poem holds Chinese characters and punctuation only; {char!r} is not one.", char=char)
    model = load_model(zoo, info)
    known = set(model.vocab)
    if any(char not in known for char in "".join(lines)) and UNKNOWN not in known:
        raise RequestError(
            "The poem model does not know {char!r}.", char=next(c for c in "".join(lines) if c not in known)
        )
    couplets = [
        lines[i] + (COMMA + lines[i + 1] + PERIOD if i + 1 < len(lines) else PERIOD) for i in range(0, len(lines), 2)
    ]
    prime = "\n\n" + DEFAULT_MOOD + "\n"
    read = prime + "\n".join(couplets)
    explained = explain(model, "".join(char if char in known else UNKNOWN for char in read), CHECK_ALTERNATIVES)
    entries = iter(explained["chars"][len(prime) :])  # every character is known now: one entry each
    book = rhyme_book()
    form = next(
        (key for key, value in FORMS.items() if (value.chars, value.lines) == (len(lines[0]), len(lines))), None
    )
    report = check("\n".join(lines), FORMS[form], book) if form else None
    if report is not None and not report.form_ok:  # lines of unequal length
        form, report = None, None
    answer_lines = []
    for number, line in enumerate(lines):
        chars = []
        for char in line:
            entry = next(entries)
            tones = "".join(sorted(book.tones(char), key="平仄".index))
            chars.append({"char": char, "tones": tones, "prob": entry["prob"], "expected": entry["top"]})
        next(entries)  # the punctuation after the line (and the newline after a couplet)
        if number % 2 == 1 and number + 1 < len(lines):
            next(entries)
        answer_lines.append({"text": line, "chars": chars, "end_groups": sorted(book.groups(line[-1]))})
    ends = [line[-1] for line in lines[1::2]]
    # Rhyme needs two even lines at least: one end alone shares its groups with nothing.
    shared = frozenset.intersection(*(book.groups(end) for end in ends)) if len(ends) > 1 else frozenset()
    return {
        "model": info.name,
        "form": form,
        "lines": answer_lines,
        "rhymes": bool(shared),
        "rhyme_groups": sorted(shared),
        "tones_ok": report.tones_ok if report else None,
        "broken": [{"line": line + 1, "place": place + 1, "rule": rule} for line, place, rule in report.broken]
        if report
        else [],
        "bits_per_char": explained["bits_per_char"],
    }
