"""The public API, fixed names that clients depend on: ``/generate`` and ``/models``, and the views
inside the network ``/explain``, ``/score``, ``/neurons`` and ``/compare``.

``gr.api`` takes each parameter's name, type and default from the signature, and the type of
each streamed value from the return annotation.
"""

from __future__ import annotations

import gradio as gr

from rnn_demo.serving.lifecycle import LazyScheduler
from rnn_demo.serving.requests import DEFAULT_NEW_CHARS, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, RANDOM_SEED
from rnn_demo.serving.streaming import generate_stream
from rnn_demo.serving.views import DEFAULT_ALTERNATIVES, compare_stream, explain_request, neurons_request, score_request
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import answered_or_gradio_error, shown_as_gradio_errors
from rnn_demo.ui.generate_tab import GENERATION_CONCURRENCY_ID
from rnn_demo.ui.inside_tab import VIEWS_CONCURRENCY_ID, VIEWS_CONCURRENCY_LIMIT


def register_api(zoo: ModelZoo, scheduler: LazyScheduler, concurrency_limit: int) -> None:
    """Add the public endpoints to the caller's ``gr.Blocks``."""
    def generate(
        prompt: str,
        cell: str,
        hidden_size: int,
        temperature: float = DEFAULT_TEMPERATURE,
        max_new_chars: int = DEFAULT_NEW_CHARS,
        top_k: int = DEFAULT_TOP_K,
        top_p: float = DEFAULT_TOP_P,
        seed: int = RANDOM_SEED,
    ) -> str:
        """Continue the prompt with a model of the given cell and hidden size (see /models).

        Streams the prompt followed by the continuation so far; the last value is the whole text.
        temperature: 0 (greedy) to 2; top_k: 0 = off; top_p: 1.0 = off; seed: -1 = random.
        """
        updates = shown_as_gradio_errors(
            generate_stream(
                zoo, prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed, scheduler=scheduler.get()
            )
        )
        try:
            for text, _ in updates:
                yield text
        finally:  # gradio closes this generator on cancel or disconnect: end the generation now
            updates.close()

    def models() -> list[dict]:
        """Every available model: name, cell, hidden_size, num_layers, params, val_bpc, test_bpc,
        train_seconds, trained_on, size_bytes."""
        return zoo.table()

    def explain(text: str, cell: str, hidden_size: int, top_k: int = DEFAULT_ALTERNATIVES) -> dict:
        """What the model predicted at each character of the text, read from its zero state.

        Returns {"model", "bits_per_char", "skipped", "chars"}: one entry in chars per known character,
        {"char", "prob", "bits", "top"}, where prob is P(char | the characters before it), bits is
        -log2 prob and top the top_k likeliest characters there as [char, prob] pairs, most likely
        first. Entry 0 has prob and bits null (nothing came before it); bits_per_char is the mean of
        bits over the other entries. Characters the model does not know are skipped and listed.
        """
        return answered_or_gradio_error(explain_request, zoo, text, cell, hidden_size, top_k)

    def score(text: str) -> list[dict]:
        """How surprising the text is to every served model, least surprised first: {"name", "cell",
        "hidden_size", "bits_per_char", "chars_scored", "skipped"} per model (the first known
        character is not scored, as in /explain)."""
        return answered_or_gradio_error(score_request, zoo, text)

    def neurons(text: str, cell: str, hidden_size: int, layer: int = 0) -> dict:
        """One layer's state after each character of the text, read from the model's zero state.

        Returns {"model", "layer", "chars", "h", "skipped"}: h holds one list of hidden_size floats
        per known character (layer 0 is the one next to the input); an LSTM's answer also has "c",
        its cell state. The last h (and c) is the state generation carries after the same text.
        """
        return answered_or_gradio_error(neurons_request, zoo, text, cell, hidden_size, layer)

    def compare(
        prompt: str,
        cell: str,
        temperature: float = DEFAULT_TEMPERATURE,
        max_new_chars: int = DEFAULT_NEW_CHARS,
        seed: int = RANDOM_SEED,
    ) -> dict:
        """Every hidden size of the cell continues the prompt with the same seed (-1 = one random seed).

        Streams {"seed", "continuations"}: per hidden size, smallest first, {"model", "hidden_size",
        "val_bpc", "text", "new_chars", "done"}, text being the prompt and the continuation so far.
        The same seed in /generate (top_k 0, top_p 1.0) gives the same text for each size.
        """
        updates = shown_as_gradio_errors(
            compare_stream(zoo, prompt, cell, temperature, max_new_chars, seed, scheduler=scheduler.get())
        )
        try:
            yield from updates
        finally:
            updates.close()

    gr.api(generate, api_name="generate", concurrency_limit=concurrency_limit, concurrency_id=GENERATION_CONCURRENCY_ID)
    gr.api(models, api_name="models", concurrency_limit=None)
    views = {"concurrency_limit": VIEWS_CONCURRENCY_LIMIT, "concurrency_id": VIEWS_CONCURRENCY_ID}
    gr.api(explain, api_name="explain", **views)
    gr.api(score, api_name="score", **views)
    gr.api(neurons, api_name="neurons", **views)
    gr.api(compare, api_name="compare", concurrency_limit=concurrency_limit, concurrency_id=GENERATION_CONCURRENCY_ID)
