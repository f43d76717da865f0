"""The views inside the network as requests: validation, the model, the answer as JSON objects.

- :func:`explain_request`: what a model predicted at each character of a text (``/explain``);
- :func:`score_request`: the bits/char of a text under every served model (``/score``);
- :func:`neurons_request`: one layer's state after each character (``/neurons``);
- :func:`units_request`: that, plus the units that follow simple features of the text (the page);
- :func:`compare_stream`: every hidden size of a cell continues one prompt with one seed (``/compare``).

Bad arguments raise :class:`~rnn_demo.serving.requests.RequestError`, a model that cannot be
loaded or a failed generation :class:`~rnn_demo.serving.streaming.GenerationError`: one sentence
each, shown as it is. The library functions behind them are in :mod:`rnn_demo.analysis`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rnn_demo.model.checkpoint import CheckpointError
from rnn_demo.serving.requests import (
    RequestError,
    validate_alternatives,
    validate_cell,
    validate_layer,
    validate_model,
    validate_request,
    validate_seed,
    validate_view_text,
)
from rnn_demo.serving.streaming import UPDATE_EVERY_SECONDS, GenerationError, load_weights
from rnn_demo.serving.zoo import ModelInfo, ModelZoo

if TYPE_CHECKING:
    from rnn_demo.model import CharRNN
    from rnn_demo.serving.worker import GenerationWorker

DEFAULT_ALTERNATIVES = 5  # top_k of /explain
STATE_DECIMALS = 3  # /neurons rounds h and c: activations in [-1, 1] (c beyond), 3 decimals show any pattern
# /neurons reads at most this many characters: its answer is a number per unit, per character, and
# h and c for an LSTM, so it caps the answer (under 1 MB of JSON on a 512-unit LSTM, several times
# that as Python objects). Gradio keeps each session's last answer, for its last
# STATE_SESSION_CAPACITY sessions (docs/design.md, "Memory"); `python -m benchmarks.abuse` measures
# 200 of them.
MAX_NEURON_CHARS = 100
TOP_UNITS = 10  # "Find interesting units" lists this many


def load_model(zoo: ModelZoo, info: ModelInfo) -> CharRNN:
    """A served model as a torch network, for the views; GenerationError when its files cannot be loaded."""
    try:
        return zoo.load(info.cell, info.hidden_size)
    except CheckpointError as error:
        raise GenerationError("The model {model} could not be loaded: {error}", model=info.name, error=error) from None


def _known_chars(model, text: str, info: ModelInfo) -> None:
    """Refuse a text of which the model knows fewer than two characters: there is nothing to predict."""
    from rnn_demo.analysis import text_ids

    encoding = text_ids(model, text)
    known = len(encoding.ids)
    if known >= 2:
        return
    if not encoding.skipped:
        raise RequestError("The text has one character; give at least 2, one to predict the next from.")
    unknown = " ".join(repr(c) for c in encoding.skipped[:10]) + (" …" if len(encoding.skipped) > 10 else "")
    if known == 1:
        raise RequestError(
            "{model} knows only one of the text's characters (it does not know {unknown}) and needs at least 2, "
            "one to predict the next from.",
            model=info.name,
            unknown=unknown,
        )
    raise RequestError(
        "{model} knows none of the text's characters (it does not know {unknown}) and needs at least 2, "
        "one to predict the next from.",
        model=info.name,
        unknown=unknown,
    )


def explain_request(zoo: ModelZoo, text, cell, hidden_size, top_k=DEFAULT_ALTERNATIVES) -> dict:
    """``{"model", "bits_per_char", "skipped", "chars"}`` for ``/explain`` (see :func:`rnn_demo.analysis.explain`)."""
    from rnn_demo.analysis import explain

    text = validate_view_text(text)
    info = validate_model(zoo, cell, hidden_size)
    model = load_model(zoo, info)
    top_k = validate_alternatives(top_k, model.vocab_size)
    _known_chars(model, text, info)
    return {"model": info.name, **explain(model, text, top_k)}


def score_request(zoo: ModelZoo, text) -> list[dict]:
    """The text's bits/char under every served model, least surprised first (models that could not
    score it, with fewer than two known characters, last): ``{"name", "cell", "hidden_size",
    "bits_per_char", "chars_scored", "skipped"}`` each."""
    from rnn_demo.analysis import score

    text = validate_view_text(text)
    infos = zoo.models()
    if not infos:
        raise RequestError("No models are available to score the text.")
    rows = []
    for info in infos:
        result = score(load_model(zoo, info), text)
        rows.append({"name": info.name, "cell": info.cell, "hidden_size": info.hidden_size, **result})
    if all(row["bits_per_char"] is None for row in rows):
        raise RequestError("No model knows 2 characters of the text, so none can predict one from the other.")
    rows.sort(key=lambda row: (row["bits_per_char"] is None, row["bits_per_char"] or 0.0))
    return rows


def _rounded(rows: list[list[float]]) -> list[list[float]]:
    return [[round(value, STATE_DECIMALS) for value in row] for row in rows]


def neurons_request(zoo: ModelZoo, text, cell, hidden_size, layer) -> dict:
    """``{"model", "layer", "chars", "h", "skipped"}`` (and ``"c"`` for an LSTM) for ``/neurons``:
    layer ``layer``'s state after each known character, rounded to STATE_DECIMALS."""
    from rnn_demo.analysis import neurons

    text = validate_view_text(text, MAX_NEURON_CHARS)
    info = validate_model(zoo, cell, hidden_size)
    layer = validate_layer(info, layer)
    model = load_model(zoo, info)
    result = neurons(model, text, layer)
    if not result["chars"]:
        raise RequestError("{model} knows none of the characters of the text.", model=info.name)
    answer = {"model": info.name, "layer": layer, "chars": result["chars"], "h": _rounded(result["h"])}
    if "c" in result:
        answer["c"] = _rounded(result["c"])
    answer["skipped"] = result["skipped"]
    return answer


def units_request(zoo: ModelZoo, text, cell, hidden_size, layer, top: int = TOP_UNITS) -> dict:
    """What the page's neuron view needs: ``{"model", "layer", "chars", "h", "skipped", "units"}``,
    ``h`` unrounded (characters × units) and ``units`` the ``top`` units ranked by how closely they
    follow a feature of the text (:func:`rnn_demo.analysis.rank_units`)."""
    from rnn_demo.analysis import layer_states, rank_units, text_ids

    text = validate_view_text(text)
    info = validate_model(zoo, cell, hidden_size)
    layer = validate_layer(info, layer)
    model = load_model(zoo, info)
    encoding = text_ids(model, text)
    if not encoding.ids:
        raise RequestError("{model} knows none of the characters of the text.", model=info.name)
    h, _ = layer_states(model, encoding.ids, layer)
    chars = [model.vocab[i] for i in encoding.ids]
    states = h.numpy()
    return {
        "model": info.name,
        "layer": layer,
        "chars": chars,
        "h": states,
        "skipped": list(encoding.skipped),
        "units": rank_units(states, chars, top),
    }


def compare_stream(
    zoo: ModelZoo,
    prompt,
    cell,
    temperature,
    max_new_chars,
    seed,
    *,
    worker: GenerationWorker,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[dict]:
    """Every hidden size of ``cell`` continues ``prompt`` with the same seed, side by side.

    Yields ``{"seed", "continuations"}`` as the texts grow (at the pace of ``/generate``, and once
    when all are done): one continuation per hidden size, smallest first, ``{"model",
    "hidden_size", "val_bpc", "text", "new_chars", "done"}``, where ``text`` is the prompt and the
    continuation so far. Seed -1 draws one random seed for all of them (the answer says which).
    Each size is generated as ``/generate`` would with that seed (top_k and top_p off), so the same
    call to ``/generate`` gives the same text. Closing the iterator ends every generation.
    """
    from rnn_demo.serving.worker import GenerationFailed

    cell = validate_cell(zoo, cell)
    seed = validate_seed(seed)
    if seed is None:
        from rnn_demo.generation.sampling import MAX_SEED

        seed = secrets.randbelow(MAX_SEED + 1)
    requests = [  # every argument checked before any generation starts
        validate_request(zoo, prompt, cell, size, temperature, max_new_chars, 0, 1.0, seed)
        for size in zoo.hidden_sizes(cell)
    ]
    weights = [load_weights(zoo, request.model) for request in requests]
    generations = []
    try:
        for request, model in zip(requests, weights):
            generations.append(
                worker.submit(model, request.prompt, request.max_new_chars, request.temperature, 0, 1.0, seed)
            )
        texts = [""] * len(generations)
        while True:
            columns = [
                {
                    "model": request.model.name,
                    "hidden_size": request.model.hidden_size,
                    "val_bpc": request.model.val_bpc,
                    "text": request.prompt + text,
                    "new_chars": len(text),
                    "done": len(text) == request.max_new_chars,
                }
                for request, text in zip(requests, texts)
            ]
            yield {"seed": seed, "continuations": columns}
            if all(column["done"] for column in columns) or should_stop():
                return
            time.sleep(UPDATE_EVERY_SECONDS)
            try:
                texts = [generation.wait(after=-1, timeout=0) for generation in generations]
            except GenerationFailed as error:
                raise GenerationError("The generation failed: {error}", error=error) from None
    finally:  # also on close (Stop, cancel, disconnect): end every generation
        for generation in generations:
            generation.cancel()
