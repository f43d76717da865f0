"""Sampling: stream joins to generate, seeds reproduce, the state is carried (never O(T^2))."""

import warnings

import numpy as np
import pytest
import torch

from rnn_demo.generation.sampling import (
    SamplingSettings,
    encode_prompt,
    generate,
    next_token_distribution,
    sample_steps,
    stream,
)
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
    """The fast path (stepper.Stepper, NumPy) changes no text: a seed gives what calling the torch
    module per character and drawing with torch.multinomial gives, the loop a tutorial writes."""
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        expected = []
        with torch.inference_mode():
            logits, hidden = trained_model(torch.tensor([trained_model.tokenizer.encode("ROMEO:")]))
            for _ in range(200):
                probs = next_token_distribution(logits[0, -1].numpy(), SamplingSettings(**settings))
                token = int(torch.multinomial(torch.from_numpy(probs), 1, generator=generator))
                expected.append(trained_model.vocab[token])
                logits, hidden = trained_model(torch.tensor([[token]]), hidden)
        assert generate(trained_model, "ROMEO:", 200, seed=seed, **settings) == "".join(expected)


def test_top_k_one_and_tiny_top_p_are_greedy(trained_model):
    greedy = generate(trained_model, "Thou", 50, temperature=0)
    assert generate(trained_model, "Thou", 50, temperature=1.3, top_k=1, seed=5) == greedy
    assert generate(trained_model, "Thou", 50, temperature=1.3, top_p=1e-6, seed=5) == greedy


def test_next_token_distribution_filters():
    logits = np.array([2.0, 1.0, 0.5, -1.0], np.float32)
    top2 = next_token_distribution(logits, SamplingSettings(temperature=1.0, top_k=2))
    assert top2.dtype == np.float32
    assert top2[2] == 0 and top2[3] == 0 and np.isclose(top2.sum(), 1.0)
    full = torch.softmax(torch.from_numpy(logits), -1)
    assert np.allclose(next_token_distribution(logits, SamplingSettings(temperature=1.0)), full.numpy())
    nucleus = next_token_distribution(logits, SamplingSettings(temperature=1.0, top_p=float(full[0]) + 0.01))
    assert nucleus[0] > 0 and nucleus[1] > 0 and nucleus[2] == 0 and nucleus[3] == 0
    assert np.array_equal(next_token_distribution(logits, SamplingSettings(temperature=0)), [1.0, 0, 0, 0])
    hot = next_token_distribution(logits, SamplingSettings(temperature=100.0))
    assert hot.max() - hot.min() < 0.05


def test_a_tiny_positive_temperature_is_greedy_not_nan(trained_model):
    assert generate(trained_model, "Thou", 30, temperature=1e-40, seed=3) == generate(trained_model, "Thou", 30, temperature=0)
    for temperature in (1e-45, 1e-300, 5e-324):  # the last two overflow float64: to -inf, silently
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            probs = next_token_distribution(np.array([3.0, 1.0, 3.0], np.float32), SamplingSettings(temperature))
        assert np.array_equal(probs, [0.5, 0.0, 0.5])


@pytest.mark.parametrize("prompt", ["Good morrow, cousin", "Good morrow, cousin. " * 3])
def test_prompt_primes_once_then_one_character_per_step(trained_model, monkeypatch, prompt):
    """Never re-running the prefix: the model reads the prompt once (a short one step by step, a
    long one in one forward call), then one character a step."""
    from rnn_demo.generation import stepper
    from rnn_demo.generation.sampling import PRIME_BY_STEPS_MAX

    forward_lengths, step_sizes, sample_sizes = [], [], []
    handle = trained_model.register_forward_hook(lambda module, args, output: forward_lengths.append(args[0].shape))
    original_step, original_sample = stepper.Stepper.step, stepper.Stepper.sample

    def counting_step(self, tokens, hidden):
        step_sizes.append(tuple(tokens.shape))
        return original_step(self, tokens, hidden)

    def counting_sample(self, logits, state, noise, *settings):
        sample_sizes.append(len(noise))  # characters drawn and stepped in this call
        return original_sample(self, logits, state, noise, *settings)

    monkeypatch.setattr(stepper.Stepper, "step", counting_step)
    monkeypatch.setattr(stepper.Stepper, "sample", counting_sample)
    try:
        generate(trained_model, prompt, 30, seed=0)
    finally:
        handle.remove()
    if len(prompt) <= PRIME_BY_STEPS_MAX:
        assert forward_lengths == [] and step_sizes == [(1,)] * len(prompt)
    else:
        assert forward_lengths == [(1, len(prompt))] and step_sizes == []
    # Then each new character stepped once, the first one alone (it is not held back).
    assert sum(sample_sizes) == 30 and sample_sizes[0] == 1


def test_priming_by_steps_gives_the_state_of_one_forward_call():
    from rnn_demo.generation.sampling import PRIME_BY_STEPS_MAX, prime
    from rnn_demo.generation.stepper import Stepper, state_arrays

    for cell in ("rnn", "gru", "lstm"):
        torch.manual_seed(0)
        model = CharRNN("abcdefghij", cell=cell, hidden_size=32, num_layers=2).eval()
        ids = torch.randint(0, 10, (PRIME_BY_STEPS_MAX,)).tolist()
        logits, state = prime(model, Stepper(model), ids)  # by steps
        with torch.no_grad():
            expected_logits, expected_hidden = model(torch.tensor([ids]))
        assert np.allclose(logits, expected_logits[:, -1].numpy(), atol=1e-5), cell
        pairs = zip(state, state_arrays(expected_hidden)) if cell == "lstm" else [(state, state_arrays(expected_hidden))]
        assert all(np.allclose(a, b, atol=1e-5) for a, b in pairs), cell


def test_stepper_matches_the_models_forward_for_every_cell():
    from rnn_demo.generation.stepper import Stepper, state_arrays, state_tensors

    for cell in ("rnn", "gru", "lstm"):
        torch.manual_seed(0)
        model = CharRNN("abcdefghij", cell=cell, hidden_size=16, num_layers=3, embedding_dim=8).eval()
        tokens = torch.randint(0, 10, (4, 12))
        with torch.no_grad():
            expected_logits, expected_hidden = model(tokens)
        stepper, hidden, logits = Stepper(model), model.init_hidden(4), []
        for t in range(12):
            step_logits, state = stepper.step(tokens[:, t].numpy(), state_arrays(hidden))
            logits.append(torch.from_numpy(step_logits))
            hidden = state_tensors(state)
        assert torch.allclose(torch.stack(logits, dim=1), expected_logits, atol=1e-5), cell
        pairs = zip(hidden, expected_hidden) if cell == "lstm" else [(hidden, expected_hidden)]
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in pairs), cell


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
