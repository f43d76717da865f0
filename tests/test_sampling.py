"""Sampling: stream joins to generate, seeds reproduce, the state is carried (never O(T^2)), and a
constraint (``allowed``) has its say in every character."""

import warnings

import numpy as np
import pytest
import torch

from rnn_demo.generation import engine
from rnn_demo.generation.sampling import encode_prompt, generate, sample_steps, stream
from rnn_demo.model import CharRNN


def test_stream_joins_to_generate(trained_model):
    pieces = list(stream(trained_model, "ROMEO:\n", 120, temperature=0.8, seed=7))
    assert len(pieces) == 120
    assert "".join(pieces) == generate(trained_model, "ROMEO:\n", 120, temperature=0.8, seed=7)


def test_same_seed_same_text_other_seed_other_text(trained_model):
    first = generate(trained_model, "First Citizen:", 200, temperature=1.0, seed=3)
    assert first == generate(trained_model, "First Citizen:", 200, temperature=1.0, seed=3)
    assert first != generate(trained_model, "First Citizen:", 200, temperature=1.0, seed=4)


def test_sampling_leaves_the_global_rng_alone(trained_model):
    state = torch.get_rng_state()
    generate(trained_model, "a", 50, seed=None)
    generate(trained_model, "a", 50, seed=1)
    assert torch.equal(state, torch.get_rng_state())


def test_generated_text_has_the_exact_length_and_the_models_characters(trained_model):
    for length in (0, 1, 37):
        text = generate(trained_model, "KING", length, seed=0)
        assert len(text) == length
        assert set(text) <= set(trained_model.vocab)


def test_a_trained_model_writes_shakespeare_like_text(trained_model):
    text = generate(trained_model, "\n", 400, temperature=0.5, seed=0)
    words = text.split()
    assert " " in text and "\n" in text and len(words) > 40
    common = {"the", "and", "to", "of", "I", "you", "my", "a", "that", "is", "in", "not", "me"}
    assert sum(word in common for word in words) >= 10


def test_temperature_zero_is_greedy(trained_model):
    greedy = generate(trained_model, "To be", 60, temperature=0, seed=1)
    assert greedy == generate(trained_model, "To be", 60, temperature=0, seed=2)
    # by hand: feed the argmax back each step
    model = trained_model
    idx = torch.tensor([model.tokenizer.encode("To be")])
    expected = []
    with torch.inference_mode():
        logits, hidden = model(idx)
        for _ in range(60):
            token = int(logits[0, -1].argmax())
            expected.append(model.vocab[token])
            logits, hidden = model(torch.tensor([[token]]), hidden)
    assert greedy == "".join(expected)


@pytest.mark.parametrize("settings", [dict(temperature=0.8), dict(temperature=1.2, top_k=5), dict(temperature=0.6, top_p=0.9)])
def test_texts_are_those_of_the_plain_torch_loop(trained_model, settings):
    """The engine changes no text: a seed gives what calling the torch module per character and
    drawing with the same random numbers gives, the loop a tutorial writes."""
    for seed in range(3):
        generator = np.random.default_rng(seed)
        expected = []
        with torch.inference_mode():
            logits, hidden = trained_model(torch.tensor([trained_model.tokenizer.encode("ROMEO:")]))
            for _ in range(200):
                probs = engine.distribution(logits[0, -1].numpy(), **settings)
                cumulative = np.cumsum(probs)
                token = int(np.searchsorted(cumulative, generator.random() * cumulative[-1], side="right"))
                expected.append(trained_model.vocab[token])
                logits, hidden = trained_model(torch.tensor([[token]]), hidden)
        assert generate(trained_model, "ROMEO:", 200, seed=seed, **settings) == "".join(expected)


def test_top_k_one_and_tiny_top_p_are_greedy(trained_model):
    greedy = generate(trained_model, "Thou", 50, temperature=0)
    assert generate(trained_model, "Thou", 50, temperature=1.3, top_k=1, seed=5) == greedy
    assert generate(trained_model, "Thou", 50, temperature=1.3, top_p=1e-6, seed=5) == greedy


def test_a_tiny_positive_temperature_is_greedy_not_nan(trained_model):
    assert generate(trained_model, "Thou", 30, temperature=1e-40, seed=3) == generate(trained_model, "Thou", 30, temperature=0)
    for temperature in (1e-45, 1e-300, 5e-324):  # the last two overflow float64: to -inf, silently
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            probs = engine.distribution(np.array([3.0, 1.0, 3.0], np.float32), temperature)
        assert np.array_equal(probs, [0.5, 0.0, 0.5])


def test_prompt_primes_once_then_one_character_per_step(trained_model, monkeypatch):
    """Never re-running the prefix: the prompt is read once, one step a character, then each new
    character is one step."""
    from rnn_demo.generation import sampling

    step_sizes = []
    original_step = engine.step

    def counting_step(weights, tokens, state):
        step_sizes.append(len(tokens))
        return original_step(weights, tokens, state)

    monkeypatch.setattr(sampling.engine, "step", counting_step)
    generate(trained_model, "Good morrow, cousin", 30, seed=0)
    assert step_sizes == [1] * (len("Good morrow, cousin") + 30)


@pytest.mark.parametrize("closed_in", ["this thread", "another thread"])
def test_a_stream_can_move_between_threads_and_leaves_grad_mode_alone(trained_model, closed_in):
    """Servers resume and close generators in any worker thread; torch's grad modes are per thread."""
    import threading

    expected = generate(trained_model, "KING:", 40, seed=9)
    pieces = stream(trained_model, "KING:", 40, seed=9)
    received, grad_after_close = [], []

    def take(count):
        received.extend(next(pieces) for _ in range(count))

    def close():
        with torch.no_grad():  # closing must not switch this block's grad mode back on
            pieces.close()
            grad_after_close.append(torch.is_grad_enabled())

    for count in (5, 5):  # each chunk in a fresh thread
        worker = threading.Thread(target=take, args=(count,))
        worker.start()
        worker.join()
    if closed_in == "this thread":
        close()
    else:
        worker = threading.Thread(target=close)
        worker.start()
        worker.join()
    assert "".join(received) == expected[:10]
    assert grad_after_close == [False]
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


def test_steps_expose_probabilities_and_state(trained_model):
    steps = list(sample_steps(trained_model, "A", 5, temperature=0.7, seed=0))
    assert len(steps) == 5
    for step in steps:
        assert step.probs.shape == (trained_model.vocab_size,)
        assert np.isclose(step.probs.sum(), 1.0, atol=1e-5)
        assert step.probs[step.token_id] > 0 and trained_model.vocab[step.token_id] == step.char
        assert isinstance(step.hidden, tuple)


def test_unknown_prompt_characters_are_skipped_and_reported(trained_model):
    encoding = encode_prompt(trained_model, "Hello 🙂 世界")
    assert encoding.skipped == "🙂世界"
    assert trained_model.tokenizer.decode(encoding.ids) == "Hello  "
    assert generate(trained_model, "Hello 🙂 世界", 20, seed=1) == generate(trained_model, "Hello  ", 20, seed=1)


def test_an_empty_or_all_unknown_prompt_starts_a_paragraph(trained_model):
    assert encode_prompt(trained_model, "").ids == trained_model.tokenizer.encode("\n")
    assert encode_prompt(trained_model, "🙂").skipped == "🙂"
    assert generate(trained_model, "", 30, seed=2) == generate(trained_model, "🙂", 30, seed=2)


def test_a_vocabulary_without_newline_starts_from_its_first_character():
    model = CharRNN("ab", hidden_size=4, num_layers=1)
    assert encode_prompt(model, "").ids == [0]


def test_sampling_in_training_mode_turns_dropout_off_and_restores_the_mode(trained_model):
    trained_model.train()
    try:
        assert generate(trained_model, "a", 30, temperature=0) == generate(trained_model.eval(), "a", 30, temperature=0)
    finally:
        trained_model.eval()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": float("nan")}, "top_p"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"max_new_chars": -5}, "max_new_chars"),
        ({"max_new_chars": 3.0}, "max_new_chars"),
    ],
)
def test_bad_arguments_raise_at_call_time(trained_model, kwargs, message):
    arguments = {"prompt": "a", "max_new_chars": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        stream(trained_model, **arguments)  # no iteration needed: errors come at once


def test_non_string_prompt_is_refused(trained_model):
    with pytest.raises(TypeError, match="prompt must be a str"):
        generate(trained_model, 42, 5)


# ---- a say in the next character: allowed -------------------------------------------------------


def test_forbidding_a_character_gives_a_text_without_it(trained_model):
    without_e = trained_model.vocab.replace("e", "")
    text = generate(trained_model, "The ", 600, temperature=1.0, seed=0, allowed=lambda text: without_e)
    assert "e" in generate(trained_model, "The ", 600, temperature=1.0, seed=0)
    assert len(text) == 600 and "e" not in text


@pytest.mark.parametrize("settings", [dict(temperature=1.0), dict(temperature=0.0), dict(temperature=0.8, top_k=3)])
def test_forcing_a_newline_after_every_20_characters_gives_lines_of_20(trained_model, settings):
    no_newline = trained_model.vocab.replace("\n", "")

    def lines_of_20(text):
        line = len(text) - (text.rfind("\n") + 1)
        return "\n" if line == 20 else no_newline

    text = generate(trained_model, "ROMEO:", 21 * 10, seed=3, allowed=lines_of_20, **settings)
    assert text.split("\n") == [line for line in text.split("\n")[:10] if len(line) == 20] + [""]


def test_allowed_gets_the_text_so_far_without_the_prompt_and_none_means_free(trained_model):
    seen = []

    def watch(text):
        seen.append(text)
        return None

    text = generate(trained_model, "KING:", 12, seed=4, allowed=watch)
    assert text == generate(trained_model, "KING:", 12, seed=4)
    assert seen == [text[:i] for i in range(12)]


def test_the_draw_renormalises_over_the_allowed_after_the_settings(trained_model):
    steps = list(sample_steps(trained_model, "the", 50, temperature=0.9, top_k=10, seed=1, allowed=lambda text: "aeiou "))
    for step in steps:
        assert step.char in "aeiou "
        assert np.isclose(step.probs.sum(), 1.0) and set(np.flatnonzero(step.probs)) <= set(trained_model.tokenizer.encode("aeiou "))


def test_allowed_characters_that_top_k_removed_are_drawn_among_themselves(trained_model):
    # "Q" and "Z" are never among the 2 most likely characters after "the ": the constraint still holds.
    text = generate(trained_model, "the ", 30, temperature=0.8, top_k=2, seed=2, allowed=lambda text: "QZ")
    assert len(text) == 30 and set(text) <= {"Q", "Z"}
    greedy = generate(trained_model, "the ", 30, temperature=0, allowed=lambda text: "QZ")
    assert len(greedy) == 30 and set(greedy) <= {"Q", "Z"}


def test_an_impossible_constraint_raises_naming_the_position(trained_model):
    def impossible_at_7(text):
        return "日本" if len(text) == 7 else None

    pieces = stream(trained_model, "a", 20, seed=0, allowed=impossible_at_7)
    assert "".join(next(pieces) for _ in range(7)) == generate(trained_model, "a", 7, seed=0)
    with pytest.raises(ValueError, match="none of the characters allowed at position 7 is in the model's vocabulary"):
        next(pieces)
    with pytest.raises(ValueError, match="position 0"):
        generate(trained_model, "a", 5, allowed=lambda text: [])
