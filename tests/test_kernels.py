"""The compiled arithmetic (rnn_demo/generation/kernels.py): its activations, the generation call that draws and
steps in one go, thread safety, and what happens where numba cannot cache its compiled code."""

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

numba = pytest.importorskip(
    "numba", reason="numba is not available: the compiled engine is not there to test", exc_type=ImportError
)

from rnn_demo.generation import kernels
from rnn_demo.generation.sampling import SamplingSettings, TokenDraws, choose_tokens, next_token_distribution
from rnn_demo.generation.stepper import Stepper
from rnn_demo.model import CharRNN

VOCAB = "".join(chr(c) for c in range(32, 97))
REPO_ROOT = Path(__file__).resolve().parent.parent


@numba.njit
def activations(x):
    sigmoids, tanhs = np.empty_like(x), np.empty_like(x)
    for i in range(x.shape[0]):
        sigmoids[i] = kernels.sigmoid(x[i])
        tanhs[i] = kernels.tanh(x[i])
    return sigmoids, tanhs


def ulps(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """How many float32 steps apart values and reference are, once both are rounded to float32."""
    bits = [array.astype(np.float32).view(np.int32).astype(np.int64) for array in (values, reference)]
    return np.abs(bits[0] - bits[1])


def test_the_activations_are_float32_accurate():
    # Every 997th float32 between -2 and 2 (where the gates' values mostly lie), and a grid beyond:
    # within one float32 step of float64's values everywhere, and equal to them almost everywhere
    # (1 of 22 million float32 values differed, by one step, in a run over every 97th).
    inside = np.arange(0, np.float32(2).view(np.int32), 997, dtype=np.int32).view(np.float32)
    x = np.concatenate([inside, -inside, np.linspace(-120, 120, 100_001)]).astype(np.float64)
    sigmoids, tanhs = activations(x)
    for values, reference in ((sigmoids, 1 / (1 + np.exp(-x))), (tanhs, np.tanh(x))):
        differences = ulps(values, reference)
        assert differences.max() <= 1 and np.count_nonzero(differences) <= len(x) * 1e-6
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, 500.0, -500.0])
    sigmoids, tanhs = (values.astype(np.float32) for values in activations(specials))  # as the cells store them
    assert np.array_equal(sigmoids, [np.nan, 1, 0, 0.5, 0.5, 0.5, 1, 0], equal_nan=True)
    assert np.array_equal(tanhs, [np.nan, 1, -1, 0, 0, 0, 1, -1], equal_nan=True)
    assert np.signbit(activations(np.array([-0.0]))[1][0])


def product_in_order(rows: np.ndarray, weight: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out + rows @ weight in float32, every element's terms added in the order kernels.add_product
    promises: out + x_0 w_0 + x_1 w_1 + ..., one term after the other. NumPy's element-wise float32
    operations round each product and sum once, as the compiled code does."""
    total = out.copy()
    for k in range(rows.shape[1]):
        total = total + rows[:, k : k + 1] * weight[k]
    return total


def test_pack_columns_cuts_a_matrix_into_column_panels():
    weight = np.arange(3 * 37, dtype=np.float32).reshape(3, 37)  # 2 whole panels and 5 columns
    panels = kernels.pack_columns(weight)
    assert panels.shape == (3 * 37,) and panels.dtype == np.float32 and panels.flags.c_contiguous
    np.testing.assert_array_equal(panels[:48].reshape(3, 16), weight[:, :16])
    np.testing.assert_array_equal(panels[48:96].reshape(3, 16), weight[:, 16:32])
    np.testing.assert_array_equal(panels[96:].reshape(3, 5), weight[:, 32:])
    stacked = kernels.pack_columns(np.stack([weight, -weight]))  # a stack of layers: one row each
    np.testing.assert_array_equal(stacked, np.stack([panels, -panels]))


@pytest.mark.parametrize("depth, width", [(64, 256), (7, 37), (13, 16), (4, 9), (1, 1)])
def test_the_product_adds_each_elements_terms_in_one_order_at_every_batch_size(depth, width):
    # The batched product computes 4 rows of a 16-column panel together, then the rows left one at
    # a time, then the columns past the last whole panel; none of that may change an element's bits.
    rng = np.random.default_rng(depth * width)
    weight = rng.standard_normal((depth, width), dtype=np.float32)
    panels = kernels.pack_columns(weight)
    rows = rng.standard_normal((11, depth), dtype=np.float32)
    start = rng.standard_normal((11, width), dtype=np.float32)
    expected = product_in_order(rows, weight, start)
    for batch in (1, 2, 4, 5, 8, 11):
        out = start[:batch].copy()
        kernels.add_product(rows[:batch], panels, out)
        np.testing.assert_array_equal(out, expected[:batch], err_msg=f"batch {batch}")


def test_the_product_refuses_panels_of_another_shape():
    rows, out = np.ones((2, 8), np.float32), np.zeros((2, 16), np.float32)
    for panels in (np.ones(8 * 15, np.float32), np.ones(7 * 16, np.float32)):
        with pytest.raises(ValueError, match="do not fit"):
            kernels.add_product(rows, panels, out)
    with pytest.raises(ValueError, match="do not fit"):
        kernels.add_product(rows, np.ones(8 * 16, np.float32), np.zeros((3, 16), np.float32))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize(
    "settings", [SamplingSettings(0.8), SamplingSettings(1.3, top_k=7, top_p=0.8), SamplingSettings(0)]
)
def test_sampling_in_one_call_is_the_distribution_the_draw_and_the_step_bit_for_bit(cell, settings):
    # Stepper.sample (what generate uses) and the scheduler's per-character path give the same
    # characters, distributions and states, so a request's text is the same served either way.
    torch.manual_seed(0)
    stepper = Stepper(CharRNN(VOCAB, cell=cell, hidden_size=40, num_layers=3).eval())
    logits, state = stepper.step(np.array([5]), stepper.zero_state(1))
    noise = TokenDraws(1, len(VOCAB), 64).noise_rows(20).copy()
    tokens, probs, last_logits, states = stepper.sample(logits, state, noise, *vars(settings).values())
    for i in range(20):
        expected_probs = next_token_distribution(logits, settings)
        token = choose_tokens(expected_probs, noise[i : i + 1])
        logits, state = stepper.step(token, state)
        assert tokens[i] == token[0] and np.array_equal(probs[i], expected_probs[0])
        for part, expected in zip(states[i], state) if cell == "lstm" else [(states[i], state)]:
            assert np.array_equal(part, expected)
    assert np.array_equal(last_logits, logits)


def test_a_stepper_steps_the_same_in_several_threads_at_once():
    torch.manual_seed(0)
    stepper = Stepper(CharRNN(VOCAB, cell="lstm", hidden_size=64, num_layers=2).eval())
    expected = {}
    for start in range(4):
        logits, state = stepper.step(np.array([start]), stepper.zero_state(1))
        for _ in range(200):
            logits, state = stepper.step(np.array([int(logits.argmax())]), state)
        expected[start] = logits
    got = {}

    def run(start):
        logits, state = stepper.step(np.array([start]), stepper.zero_state(1))
        for _ in range(200):
            logits, state = stepper.step(np.array([int(logits.argmax())]), state)
        got[start] = logits

    threads = [threading.Thread(target=run, args=(start,)) for start in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(got[start], expected[start]) for start in range(4))


def test_bad_tokens_and_states_raise_instead_of_reading_out_of_bounds():
    stepper = Stepper(CharRNN(VOCAB, cell="gru", hidden_size=16, num_layers=2).eval())
    with pytest.raises(IndexError, match="outside the vocabulary"):
        stepper.step(np.array([len(VOCAB)]), stepper.zero_state(1))
    with pytest.raises(IndexError, match="outside the vocabulary"):
        stepper.step(np.array([-1]), stepper.zero_state(1))
    with pytest.raises(ValueError, match="does not fit this model"):
        stepper.step(np.array([1]), np.zeros((2, 1, 17), np.float32))
    with pytest.raises(ValueError, match="does not fit this model"):
        stepper.step(np.array([1, 2]), stepper.zero_state(1))


@pytest.mark.slow
def test_without_a_writable_cache_directory_the_kernels_compile_in_memory(tmp_path):
    # Nowhere to cache (no __pycache__ can be made next to the code, the home folder and
    # $NUMBA_CACHE_DIR cannot be created either): numba would refuse cache=True; a step still runs.
    code = (
        "import numpy as np\n"
        "from rnn_demo.generation import kernels\n"
        "from rnn_demo.generation.stepper import Stepper\n"
        "from rnn_demo.model import CharRNN\n"
        "stepper = Stepper(CharRNN('abc', cell='rnn', hidden_size=4, num_layers=1).eval())\n"
        "print(stepper.step(np.array([1]), stepper.zero_state(1))[0].shape, type(kernels.step._cache).__name__)\n"
    )
    copy = tmp_path / "checkout" / "rnn_demo"
    shutil.copytree(REPO_ROOT / "rnn_demo", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "generation" / "__pycache__").write_text("a file where the cache folder would go")
    environment = dict(os.environ, PYTHONPATH=str(copy.parent), HOME="/dev/null", XDG_CACHE_HOME="/dev/null/cache")
    environment["NUMBA_CACHE_DIR"] = "/dev/null/numba"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=copy.parent, env=environment, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(1,", "3)", "NullCache"]


def test_warm_up_compiles_what_generation_and_the_scheduler_call():
    # In a fresh interpreter: after kernels.warm_up(), generating with a real model, drawing for a
    # batch and a scheduler's tick (Stepper.sample_rows) compile nothing more (each entry point
    # keeps one signature).
    code = (
        "import numpy as np\n"
        "from rnn_demo.generation import kernels\n"
        "from rnn_demo.generation.stepper import Stepper\n"
        "from rnn_demo.model import CharRNN\n"
        "from rnn_demo.generation.sampling import SamplingSettings, choose_tokens, generate, next_token_distribution\n"
        "entry_points = (kernels.step, kernels.distribution, kernels.choose, kernels.sample, kernels.sample_rows)\n"
        "kernels.warm_up()\n"
        "warm = [list(function.signatures) for function in entry_points]\n"
        "for cell in ('rnn', 'gru', 'lstm'):\n"
        "    model = CharRNN('abcdef', cell=cell, hidden_size=8, num_layers=3).eval()\n"
        "    generate(model, 'abc', 70, temperature=0.5, top_k=3, top_p=0.9, seed=1)\n"
        "    stepper = Stepper(model)\n"
        "    logits, state = stepper.step(np.array([1, 2, 3]), stepper.zero_state(3))\n"
        "    probs = next_token_distribution(logits, SamplingSettings(0.8))\n"
        "    choose_tokens(probs, np.ones_like(probs))\n"
        "    noise, counts = np.ones((3, 4, 6), np.float32), np.array([4, 0, 2])\n"
        "    settings = np.array([0.8, 1.0, 0.0]), np.array([0, 3, 0]), np.array([1.0, 0.9, 1.0])\n"
        "    stepper.sample_rows(logits, state, noise, counts, *settings)\n"
        "after = [list(function.signatures) for function in entry_points]\n"
        "print(all(len(signatures) == 1 for signatures in warm), after == warm)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_scheduler_tick_is_each_rows_distribution_draw_and_step_bit_for_bit(cell):
    # Stepper.sample_rows (a scheduler's tick): rows with their own settings and counts (one of
    # them 0) give the tokens, logits and states of drawing and stepping each row alone.
    torch.manual_seed(0)
    stepper = Stepper(CharRNN(VOCAB, cell=cell, hidden_size=40, num_layers=3).eval())
    settings = [SamplingSettings(0.8), SamplingSettings(1.3, 7, 0.8), SamplingSettings(0), SamplingSettings(0.5, 0, 0.9)]
    counts = np.array([3, 0, 7, 1])
    logits, state = stepper.step(np.arange(len(counts)), stepper.zero_state(len(counts)))
    noise = np.random.default_rng(0).exponential(size=(len(counts), 7, len(VOCAB))).astype(np.float32)
    tokens, last_logits, last_state = stepper.sample_rows(
        logits,
        state,
        noise,
        counts,
        np.array([s.temperature for s in settings]),
        np.array([s.top_k for s in settings]),
        np.array([s.top_p for s in settings]),
    )
    parts = (lambda state: state) if cell == "lstm" else (lambda state: (state,))
    for r, count in enumerate(counts):
        row_logits, row_state = logits[r : r + 1], tuple(part[:, r : r + 1] for part in parts(state))
        row_state = row_state if cell == "lstm" else row_state[0]
        for i in range(count):
            token = choose_tokens(next_token_distribution(row_logits, settings[r]), noise[r, i : i + 1])
            assert tokens[r, i] == token[0]
            row_logits, row_state = stepper.step(token, row_state)
        assert (tokens[r, count:] == -1).all()
        assert np.array_equal(last_logits[r], row_logits[0])
        for got, expected in zip(parts(last_state), parts(row_state)):
            assert np.array_equal(got[:, r], expected[:, 0])
