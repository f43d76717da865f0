"""The public API: ``/generate`` and ``/models``, fixed names that clients depend on.

``gr.api`` takes each parameter's name, type and default from the signature, and the type of
each streamed value from the return annotation.
"""

from __future__ import annotations

import gradio as gr

from rnn_demo.serving.lifecycle import LazyScheduler
from rnn_demo.serving.requests import DEFAULT_NEW_CHARS, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, RANDOM_SEED
from rnn_demo.serving.streaming import generate_stream
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import shown_as_gradio_errors
from rnn_demo.ui.generate_tab import GENERATION_CONCURRENCY_ID


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

    gr.api(generate, api_name="generate", concurrency_limit=concurrency_limit, concurrency_id=GENERATION_CONCURRENCY_ID)
    gr.api(models, api_name="models", concurrency_limit=None)
