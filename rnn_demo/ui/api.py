"""The public API, fixed names that clients depend on: ``/generate`` and ``/models``, the views
inside the network ``/explain``, ``/score``, ``/neurons`` and ``/compare``, and training
``/train`` and ``/generate_trained``.

``gr.api`` takes each parameter's name, type and default from the signature, and the type of
each streamed value from the return annotation. The same endpoints are the app's MCP tools
(``launch(mcp_server=True)``): a tool is named after its function, and its description and
arguments are read from the docstring (the text before ``Args:``, then one ``name: what it is``
line per argument), so the docstrings are written for a language model choosing and calling a tool.
"""

from __future__ import annotations

import gradio as gr

from rnn_demo.serving.clients import Client
from rnn_demo.serving.poems import DEFAULT_FORM, DEFAULT_POEM_TEMPERATURE, check_poem_request, poem_stream
from rnn_demo.serving.requests import DEFAULT_NEW_CHARS, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, RANDOM_SEED
from rnn_demo.serving.streaming import generate_stream
from rnn_demo.serving.training_jobs import Trainer, validate_training_request
from rnn_demo.serving.views import DEFAULT_ALTERNATIVES, compare_stream, explain_request, neurons_request, score_request
from rnn_demo.serving.worker import GenerationWorker
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import answered_or_gradio_error, shown_as_gradio_errors
from rnn_demo.ui.generate_tab import GENERATION_CONCURRENCY_ID
from rnn_demo.ui.inside_tab import VIEWS_CONCURRENCY_ID, VIEWS_CONCURRENCY_LIMIT


def _streamed_text(updates):
    """The text of each update of ``generate_stream``, bad requests raised as ``gr.Error``."""
    return _streamed(text for text, _ in updates)


def _streamed(updates):
    """Each value of ``updates``, bad requests and failures raised as ``gr.Error``."""
    updates = shown_as_gradio_errors(updates)
    try:
        yield from updates
    finally:  # gradio closes this generator on cancel or disconnect: end the generation now
        updates.close()


def register_api(
    zoo: ModelZoo, worker: GenerationWorker, concurrency_limit: int, trainer: Trainer, poem_zoo: ModelZoo
) -> None:
    """Add the public endpoints to the caller's ``gr.Blocks`` (``poem_zoo``: the Tang poem models)."""

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
        """Write Shakespeare-like text: a character-level RNN, GRU or LSTM trained on tiny Shakespeare
        continues the prompt one character at a time. Call models first to see which cell and
        hidden_size pairs exist. Returns the prompt followed by the new characters (streamed as they
        come; the last value is the whole text). Characters the model does not know are skipped.

        Args:
            prompt: the text to continue, up to 2,000 characters (may be empty), e.g. "ROMEO:\n".
            cell: the model's recurrent cell: "rnn", "gru" or "lstm".
            hidden_size: the model's hidden size, one that models lists for that cell (e.g. 512).
            temperature: randomness of the sampling, 0 (always the most likely character) to 2; 0.8 reads well.
            max_new_chars: how many characters to write, 1 to 2,000.
            top_k: sample only among the k most likely characters; 0 turns it off.
            top_p: sample only among the most likely characters holding this much probability; 1.0 turns it off.
            seed: a whole number that makes the text repeatable; -1 draws a random one.
        """
        yield from _streamed_text(
            generate_stream(
                zoo, prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed, worker=worker
            )
        )

    def models() -> list[dict]:
        """List the models this server runs, smallest first within each cell. Returns one object per
        model: name, cell, hidden_size (the pair generate, explain and neurons take), num_layers,
        params, val_bpc and test_bpc (bits per character on held-out text: lower is better),
        train_seconds, trained_on and size_bytes."""
        return zoo.table()

    def explain(text: str, cell: str, hidden_size: int, top_k: int = DEFAULT_ALTERNATIVES) -> dict:
        """Show what a model expected at each character of a text, read from its first character on.

        Returns {"model", "bits_per_char", "skipped", "chars"}: one entry in chars per known character,
        {"char", "prob", "bits", "top"}, where prob is P(char | the characters before it), bits is
        -log2 prob (the surprise) and top the top_k likeliest characters there as [char, prob] pairs,
        most likely first. Entry 0 has prob and bits null (nothing came before it); bits_per_char is
        the mean of bits over the other entries. Characters the model does not know are skipped and listed.

        Args:
            text: the text to read, 1 to 2,000 characters.
            cell: the model's recurrent cell: "rnn", "gru" or "lstm".
            hidden_size: the model's hidden size, one that models lists for that cell.
            top_k: how many alternatives to give at each character, 1 to 10.
        """
        return answered_or_gradio_error(explain_request, zoo, text, cell, hidden_size, top_k)

    def score(text: str) -> list[dict]:
        """Rate how Shakespeare-like a text is: how surprising it is to every model on this server.
        Returns one object per model, least surprised first: {"name", "cell", "hidden_size",
        "bits_per_char", "chars_scored", "skipped"}; lower bits_per_char means more expected (the first
        known character is not scored, as in explain).

        Args:
            text: the text to rate, 1 to 2,000 characters.
        """
        return answered_or_gradio_error(score_request, zoo, text)

    def neurons(text: str, cell: str, hidden_size: int, layer: int = 0) -> dict:
        """Read a model's hidden state after each character of a text, from its first character on.

        Returns {"model", "layer", "chars", "h", "skipped"}: h holds one list of hidden_size floats
        (3 decimals) per known character; an LSTM's answer also has "c", its cell state. The last h
        (and c) is the state generation carries after the same text.

        Args:
            text: the text to read, 1 to 100 characters.
            cell: the model's recurrent cell: "rnn", "gru" or "lstm".
            hidden_size: the model's hidden size, one that models lists for that cell.
            layer: which layer, 0 (next to the input) to num_layers - 1.
        """
        return answered_or_gradio_error(neurons_request, zoo, text, cell, hidden_size, layer)

    def compare(
        prompt: str,
        cell: str,
        temperature: float = DEFAULT_TEMPERATURE,
        max_new_chars: int = DEFAULT_NEW_CHARS,
        seed: int = RANDOM_SEED,
    ) -> dict:
        """Continue one prompt with every hidden size of a cell side by side, all with the same seed,
        to see what a bigger network buys. Streams {"seed", "continuations"}: per hidden size, smallest
        first, {"model", "hidden_size", "val_bpc", "text", "new_chars", "done"}, text being the prompt
        and the continuation so far. The same seed in generate (top_k 0, top_p 1.0) gives the same text.

        Args:
            prompt: the text to continue, up to 2,000 characters (may be empty).
            cell: the recurrent cell whose models are compared: "rnn", "gru" or "lstm".
            temperature: randomness of the sampling, 0 (greedy) to 2.
            max_new_chars: how many characters each model writes, 1 to 2,000.
            seed: a whole number shared by every model; -1 draws one random seed for all.
        """
        updates = shown_as_gradio_errors(
            compare_stream(zoo, prompt, cell, temperature, max_new_chars, seed, worker=worker)
        )
        try:
            yield from updates
        finally:
            updates.close()

    limits = trainer.limits

    def train(
        text: str, cell: str, hidden_size: int, seconds: float, num_layers: int = 1, request: gr.Request = None
    ) -> dict:
        """Train a new character-level model on a text, on this server, for a few seconds. The text
        is split 90/5/5 into training, validation and test parts, and its characters are the model's
        vocabulary (any language). Streams progress objects {"waiting", "starts_in", "step",
        "elapsed", "train_loss", "val_loss", "best_val_loss", "chars_per_second", "seconds_left",
        "done", "stopped", "model_id"}; losses are in nats per character, val_loss is null until the
        first evaluation. The last object has done true and the model_id to pass to generate_trained.
        One training runs at a time: while others run, "waiting" is this one's place in the line (1 =
        next) and "starts_in" about how many seconds until it runs. A caller has one training running
        or waiting at most, and a full line refuses a new one at once, saying when to try again.

        Args:
            text: the training text, at least 1,000 characters and at most 5 MB of UTF-8 (by default).
            cell: the recurrent cell to train: "rnn", "gru" or "lstm".
            hidden_size: the hidden size, 1 to 256 (by default); 64 to 256 learn in a minute.
            seconds: how long the run takes, 5 to 120 seconds (by default), its evaluations included.
            num_layers: stacked recurrent layers, 1 or 2.
        """
        try:
            job = validate_training_request(limits, text, cell, hidden_size, num_layers, seconds)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        updates = shown_as_gradio_errors(trainer.train(job, client=Client.of(request)))
        try:
            for progress in updates:
                yield progress.to_dict()
        finally:  # a client that cancels or disconnects ends the run; nothing is kept
            updates.close()

    def generate_trained(
        model_id: str,
        prompt: str,
        temperature: float = DEFAULT_TEMPERATURE,
        max_new_chars: int = DEFAULT_NEW_CHARS,
        top_k: int = DEFAULT_TOP_K,
        top_p: float = DEFAULT_TOP_P,
        seed: int = RANDOM_SEED,
    ) -> str:
        """Continue the prompt with a model trained by train, as generate does with the served models.
        Returns the prompt followed by the new characters (streamed; the last value is the whole text).
        The same seed gives the same text. Trained models expire after a while unused.

        Args:
            model_id: the model_id of train's last progress object.
            prompt: the text to continue, up to 2,000 characters (may be empty).
            temperature: randomness of the sampling, 0 (greedy) to 2.
            max_new_chars: how many characters to write, 1 to 2,000.
            top_k: sample only among the k most likely characters; 0 turns it off.
            top_p: sample only among the most likely characters holding this much probability; 1.0 turns it off.
            seed: a whole number that makes the text repeatable; -1 draws a random one.
        """
        try:
            entry = trainer.models.get(model_id)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        info = entry.info
        settings = (temperature, max_new_chars, top_k, top_p, seed)
        yield from _streamed_text(
            generate_stream(entry.zoo, prompt, info.cell, info.hidden_size, *settings, worker=worker)
        )

    def poem(
        form: str = DEFAULT_FORM,
        acrostic: str = "",
        first_line: str = "",
        rhyme: bool = True,
        tones: bool = False,
        temperature: float = DEFAULT_POEM_TEMPERATURE,
        seed: int = RANDOM_SEED,
        mood: str = "",
    ) -> str:
        """Write a classical Chinese poem (a Tang poem, 唐诗) in a regular form with a character-level
        LSTM trained on the 57,000 poems of 全唐诗. The form, the acrostic, the first line, the rhyme and
        the tones hold by construction. Returns the poem, one couplet per line such as
        "白日依山尽，黄河入海流。" (streamed as it grows; the last value is the whole poem).

        Args:
            form: "5x4" (五言绝句, 4 lines of 5 characters), "7x4" (七言绝句), "5x8" (五言律诗) or "7x8" (七言律诗).
            acrostic: "" or one Chinese character per line, each beginning its line (藏头诗), e.g. "春夏秋冬".
            first_line: "" or the poem's first line, as many Chinese characters as the form's lines have.
            rhyme: true to end the even lines in one 平水韵 rhyme group, which the model chooses.
            tones: true to keep the 平仄 tone rules of regular verse (格律): 二四六分明, 对, 粘, 平 rhymes.
            temperature: randomness of the sampling, 0 (greedy) to 2; 0.8 reads well.
            seed: a whole number that makes the poem repeatable; -1 draws a random one.
            mood: optional words (up to 20 characters, e.g. "秋夜") that set the poem's mood, like a title; not part of the poem.
        """
        yield from _streamed(
            poem_stream(poem_zoo, form, acrostic, first_line, rhyme, tones, temperature, seed, mood, worker=worker)
        )

    def check_poem(poem: str) -> dict:
        """Read any classical Chinese poem by the rules of regular verse (近体诗) and by the Tang poem
        model: each character's tone, each line end's rhyme groups, and how likely the model found
        each character. Use it to judge a poem that poem wrote, or one a user gives.

        Args:
            poem: the poem, up to 200 characters: couplets such as "白日依山尽，黄河入海流。" one a row,
                or one line a row.

        Returns:
            form: "5x4", "7x4", "5x8" or "7x8" when the poem has a regular form's shape, else null.
            lines: per line, its text, end_groups (the 平水韵 groups of its last character) and chars:
                char, tones ("平", "仄", "平仄" for a character read both ways, "" if the rhyme book
                lacks it), prob (the model's probability for it after the characters before it) and
                expected (the model's 3 likeliest characters there, [char, prob] pairs).
            rhymes, rhyme_groups: whether the even lines' ends share a rhyme group, and which.
            tones_ok, broken: whether a poem of a regular form keeps the tone rules (格律), and the
                places that break them as {line, place, rule}, counted from 1 (null and [] otherwise).
            bits_per_char: the model's surprise over the poem; lower reads more like a Tang poem.
        """
        return answered_or_gradio_error(check_poem_request, poem_zoo, poem)

    gr.api(generate, api_name="generate", concurrency_limit=concurrency_limit, concurrency_id=GENERATION_CONCURRENCY_ID)
    gr.api(poem, api_name="poem", concurrency_limit=concurrency_limit, concurrency_id=GENERATION_CONCURRENCY_ID)
    gr.api(models, api_name="models", concurrency_limit=None)
    views = {"concurrency_limit": VIEWS_CONCURRENCY_LIMIT, "concurrency_id": VIEWS_CONCURRENCY_ID}
    gr.api(explain, api_name="explain", **views)
    gr.api(score, api_name="score", **views)
    gr.api(neurons, api_name="neurons", **views)
    gr.api(check_poem, api_name="check_poem", **views)
    gr.api(compare, api_name="compare", concurrency_limit=concurrency_limit, concurrency_id=GENERATION_CONCURRENCY_ID)
    # No Gradio limit: a training waits in the trainer's own line (rnn_demo.serving.training_line), which
    # answers at once, and never in the queue, whose slots /generate and the views need.
    gr.api(train, api_name="train", concurrency_limit=None)
    gr.api(
        generate_trained,
        api_name="generate_trained",
        concurrency_limit=concurrency_limit,
        concurrency_id=GENERATION_CONCURRENCY_ID,
    )
