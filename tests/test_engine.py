"""The generation engine (rnn_demo/generation/engine.py): its step is the model's forward pass, a row
comes out bit for bit the same at any batch size, and its distribution and draw do what they say."""

import numpy as np
import pytest
import torch

from rnn_demo.generation import engine
from rnn_demo.model import CharRNN

VOCAB = "".join(chr(c) for c in range(32, 97))  # 65 characters, like tiny shakespeare


def random_model(cell: str, hidden_size: int = 32, num_layers: int = 2, seed: int = 0) -> CharRNN:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return CharRNN(VOCAB, cell=cell, hidden_size=hidden_size, num_layers=num_layers).eval()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_steps_give_the_logits_and_state_of_the_models_forward(cell, num_layers):
    model = random_model(cell, num_layers=num_layers)
    weights = engine.Weights.from_model(model)
    ids = model.tokenizer.encode("ROMEO: THE ENGINE IS THE FORMULAS.")
    with torch.inference_mode():
        logits, hidden = model(torch.tensor([ids]))
    state = engine.zero_state(weights)
    for position, token in enumerate(ids):
        step_logits, state = engine.step(weights, np.array([token]), state)
        np.testing.assert_allclose(step_logits[0], logits[0, position].numpy(), atol=1e-5)
    h, c = state
    expected_h = hidden[0] if cell == "lstm" else hidden
    np.testing.assert_allclose(h, expected_h.numpy(), atol=1e-5)
    if cell == "lstm":
        np.testing.assert_allclose(c, hidden[1].numpy(), atol=1e-5)
    else:
        assert c is None


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("hidden_size", [50, 64, 256, 512])  # 50: not a multiple of a SIMD width
def test_a_stepped_row_is_bit_identical_whatever_the_batch_size(cell, hidden_size):
    weights = engine.Weights.from_model(random_model(cell, hidden_size))
    generator = np.random.default_rng(1)
    batch = 17
    shape = (2, batch, hidden_size)
    state = (
        generator.standard_normal(shape, np.float32),
        generator.standard_normal(shape, np.float32) if cell == "lstm" else None,
    )
    tokens = generator.integers(0, len(VOCAB), batch)
    all_logits, all_state = engine.step(weights, tokens, state)
    for rows in (slice(0, 1), slice(5, 8), slice(3, 16), slice(16, 17)):
        part = (state[0][:, rows].copy(), state[1][:, rows].copy() if cell == "lstm" else None)
        logits, (h, c) = engine.step(weights, tokens[rows], part)
        assert np.array_equal(logits, all_logits[rows])
        assert np.array_equal(h, all_state[0][:, rows])
        if cell == "lstm":
            assert np.array_equal(c, all_state[1][:, rows])


def test_weights_are_a_float32_snapshot_of_the_model():
    model = random_model("lstm")
    weights = engine.Weights.from_model(model)
    before = weights.recurrent_weights[0].copy()
    with torch.no_grad():
        model.rnn.weight_hh_l0.add_(1.0)
    assert np.array_equal(weights.recurrent_weights[0], before)
    arrays = [weights.first_input, weights.decoder_weight, weights.decoder_bias]
    arrays += weights.input_weights + weights.input_biases + weights.recurrent_weights + weights.recurrent_biases
    assert all(array.dtype == np.float32 and array.flags.c_contiguous for array in arrays)
    assert (weights.num_layers, weights.hidden_size, weights.vocab_size) == (2, 32, len(VOCAB))


def test_the_state_must_fit_the_tokens():
    weights = engine.Weights.from_model(random_model("gru"))
    with pytest.raises(ValueError, match="2 tokens for a state of 1 streams"):
        engine.step(weights, np.array([1, 2]), engine.zero_state(weights, 1))


def test_distribution_temperature_top_k_and_top_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    np.testing.assert_allclose(engine.distribution(logits, 1.0), [0.5, 0.3, 0.15, 0.05])
    assert engine.distribution(logits, 0.0).tolist() == [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(engine.distribution(logits, 1.0, top_k=2), [0.625, 0.375, 0.0, 0.0])
    np.testing.assert_allclose(engine.distribution(logits, 1.0, top_p=0.75), [0.625, 0.375, 0.0, 0.0])
    np.testing.assert_allclose(engine.distribution(logits, 1.0, top_p=0.81), [0.5, 0.3, 0.15, 0.0] / np.float64(0.95))
    flat = engine.distribution(logits, 1e6)
    np.testing.assert_allclose(flat, 0.25, rtol=1e-5)
    assert engine.distribution(logits, 1e-300).tolist() == [1.0, 0.0, 0.0, 0.0]  # tiny: greedy, not NaN


@pytest.mark.parametrize("top_k", [4, 5, 10**20])
def test_a_top_k_at_or_above_the_vocabulary_keeps_every_character(top_k):
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    np.testing.assert_allclose(engine.distribution(logits, 1.0, top_k=top_k), [0.5, 0.3, 0.15, 0.05])


def test_draws_follow_the_distribution_and_never_pick_a_zero():
    probs = np.array([0.0, 0.2, 0.0, 0.5, 0.3, 0.0])
    generator = np.random.default_rng(0)
    counts = np.bincount([engine.draw(probs, generator) for _ in range(20_000)], minlength=len(probs))
    assert counts[[0, 2, 5]].tolist() == [0, 0, 0]
    np.testing.assert_allclose(counts / counts.sum(), probs, atol=0.015)


def test_a_uniform_number_rounding_to_the_total_draws_the_last_possible_character():
    class Top:
        def random(self):
            return np.nextafter(1.0, 0.0)

    probs = np.array([0.1, 0.1, 0.1, 0.7, 0.0]) / 1.0000000000000002  # sums to a hair under 1
    assert engine.draw(probs, Top()) == 3


def test_a_model_folder_reads_into_the_weights_of_its_model(tmp_path):
    model = random_model("gru", num_layers=2)
    model.save_pretrained(tmp_path / "gru")
    from_folder, from_model = engine.Weights.from_folder(tmp_path / "gru"), engine.Weights.from_model(model)
    assert from_folder.vocab == model.vocab and from_folder.cell == "gru" and from_folder.num_layers == 2
    assert np.array_equal(from_folder.first_input, from_model.first_input)
    assert all(np.array_equal(a, b) for a, b in zip(from_folder.recurrent_weights, from_model.recurrent_weights))


def test_a_broken_model_folder_is_one_clear_checkpoint_error(tmp_path):
    from safetensors.numpy import load_file, save_file

    from rnn_demo.model import CheckpointError

    random_model("lstm").save_pretrained(tmp_path / "model")
    arrays = load_file(tmp_path / "model" / "model.safetensors")

    def broken(change) -> str:
        folder = tmp_path / f"broken-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "config.json").write_text((tmp_path / "model" / "config.json").read_text())
        save_file(change(dict(arrays)), folder / "model.safetensors")
        with pytest.raises(CheckpointError) as caught:
            engine.Weights.from_folder(folder)
        return str(caught.value)

    assert "lack rnn.weight_hh_l1" in broken(lambda a: {k: v for k, v in a.items() if k != "rnn.weight_hh_l1"})
    assert "decoder.weight has shape (65, 31)" in broken(lambda a: {**a, "decoder.weight": a["decoder.weight"][:, :31].copy()})
    nan = arrays["rnn.bias_hh_l0"].copy()
    nan[3] = np.nan
    assert "rnn.bias_hh_l0 holds values that are not finite" in broken(lambda a: {**a, "rnn.bias_hh_l0": nan})
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="could not be read as a model folder"):
        engine.Weights.from_folder(tmp_path / "empty")
