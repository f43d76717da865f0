"""The reference engine (rnn_demo/generation/reference.py) and the choice of engine
(rnn_demo/generation/engines.py): the reference computes the compiled kernels' step to float32
rounding and their distributions and draws bit for bit, it serves alone where numba does not
import or the kernels fail to compile, and a request keeps the engine it started on."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, generate_with

from rnn_demo.generation import engines, reference
from rnn_demo.generation.sampling import generate
from rnn_demo.generation.stepper import Stepper
from rnn_demo.model import CharRNN
from rnn_demo.serving.batching import BatchScheduler
from rnn_demo.serving.zoo import ModelZoo

VOCAB = "".join(chr(c) for c in range(32, 97))  # 65 characters: 4 panels of 16 and one column over
CELLS = ("rnn", "gru", "lstm")
SETTINGS = [  # (temperature, top_k, top_p)
    (1.0, 0, 1.0),
    (0.8, 0, 1.0),
    (0.0, 0, 1.0),
    (1.5, 5, 1.0),
    (0.7, 0, 0.9),
    (1.2, 10, 0.5),
    (1e-300, 0, 1.0),
]
SHIPPED = ModelZoo(REPO_ROOT / "models")


def random_model(cell: str, hidden_size: int = 40, num_layers: int = 2, seed: int = 0) -> CharRNN:
    """An untrained model with weights big enough to saturate some gates (40 columns per gate: the
    products have a partial last panel)."""
    torch.manual_seed(seed)
    model = CharRNN(VOCAB, cell=cell, hidden_size=hidden_size, num_layers=num_layers, embedding_dim=24).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model


def random_state(stepper: Stepper, batch: int, rng: np.random.Generator):
    def part():
        return rng.standard_normal((stepper.num_layers, batch, stepper.hidden_size)).astype(np.float32)

    return (part(), part()) if stepper.cell == "lstm" else part()


def parts(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.fixture
def compiled(compiled_engine):
    if compiled_engine is None:
        pytest.skip(f"the compiled engine is not available: {engines.state()[1]}")
    return compiled_engine


# ---- the reference engine on its own ------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_the_reference_step_is_the_model_forward_to_float_rounding(cell):
    model = random_model(cell)
    stepper = Stepper(model, engines.REFERENCE)
    rng = np.random.default_rng(1)
    state = random_state(stepper, 3, rng)
    tokens = np.array([0, 7, 64])
    logits, new_state = stepper.step(tokens, state)
    with torch.no_grad():
        hidden = tuple(torch.from_numpy(p) for p in state) if cell == "lstm" else torch.from_numpy(state)
        expected_logits, expected_hidden = model(torch.from_numpy(tokens)[:, None], hidden)
    np.testing.assert_allclose(logits, expected_logits[:, 0].numpy(), rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(parts(new_state), parts(expected_hidden)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_the_reference_step_is_batch_invariant(cell):
    stepper = Stepper(random_model(cell), engines.REFERENCE)
    rng = np.random.default_rng(2)
    state = random_state(stepper, 6, rng)
    tokens = rng.integers(0, len(VOCAB), 6)
    logits, new_state = stepper.step(tokens, state)
    for row in range(6):
        alone = [part[:, row : row + 1] for part in parts(state)]
        row_logits, row_state = stepper.step(tokens[row : row + 1], tuple(alone) if cell == "lstm" else alone[0])
        assert np.array_equal(row_logits[0], logits[row])
        assert all(np.array_equal(a[:, 0], b[:, row]) for a, b in zip(parts(row_state), parts(new_state)))


def test_bad_tokens_and_shapes_are_clear_errors():
    stepper = Stepper(random_model("gru"), engines.REFERENCE)
    with pytest.raises(IndexError, match="outside the vocabulary"):
        stepper.step(np.array([len(VOCAB)]), stepper.zero_state(1))
    with pytest.raises(ValueError, match="does not fit this model"):
        stepper.step(np.array([1, 2]), stepper.zero_state(1))


# ---- the compiled engine against the reference --------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_both_engines_step_alike_to_float_rounding(cell, compiled):
    stepper = Stepper(random_model(cell, num_layers=3), engines.REFERENCE)
    fast = stepper.using(compiled)
    rng = np.random.default_rng(3)
    for batch in (1, 3, 4, 9):
        state = random_state(stepper, batch, rng)
        tokens = rng.integers(0, len(VOCAB), batch)
        (logits, new_state), (fast_logits, fast_state) = stepper.step(tokens, state), fast.step(tokens, state)
        np.testing.assert_allclose(fast_logits, logits, rtol=1e-5, atol=1e-5)
        for ours, theirs in zip(parts(new_state), parts(fast_state)):
            np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)


def test_both_engines_give_the_same_distributions_and_draws(compiled):
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((20, len(VOCAB))) * 4
    logits[3, 10] = logits[3, 11] = logits[3].max() + 1  # a tie for the most likely
    logits[5] = 0.0  # all tied
    for temperature, top_k, top_p in SETTINGS:
        ours = reference.distribution(logits, temperature, top_k, top_p)
        theirs = compiled.module.distribution(logits, temperature, top_k, top_p)
        assert np.array_equal(ours, theirs), (temperature, top_k, top_p)
        noise = rng.exponential(size=ours.shape).astype(np.float32)
        assert np.array_equal(reference.choose(ours, noise), compiled.module.choose(ours, noise))


@pytest.mark.parametrize("cell", CELLS)
def test_both_engines_sample_the_same_rows(cell, compiled):
    stepper = Stepper(random_model(cell), engines.REFERENCE)
    fast = stepper.using(compiled)
    rng = np.random.default_rng(5)
    rows = len(SETTINGS)
    logits = rng.standard_normal((rows, len(VOCAB))).astype(np.float32)
    state = random_state(stepper, rows, rng)
    noise = rng.exponential(size=(rows, 6, len(VOCAB))).astype(np.float32)
    counts = np.array([6, 1, 0, 3, 6, 2, 5])
    settings = (
        np.array([s[0] for s in SETTINGS]),
        np.array([s[1] for s in SETTINGS], np.int64),
        np.array([s[2] for s in SETTINGS]),
    )
    ours = stepper.sample_rows(logits, state, noise, counts, *settings)
    theirs = fast.sample_rows(logits, state, noise, counts, *settings)
    assert np.array_equal(ours[0], theirs[0])  # the same characters (no near tie among these draws)
    np.testing.assert_allclose(theirs[1], ours[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(parts(ours[2]), parts(theirs[2])):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    one = stepper.sample(logits[:1], tuple(p[:, :1] for p in parts(state)) if cell == "lstm" else state[:, :1],
                         noise[0], *SETTINGS[0])
    assert np.array_equal(one[0], ours[0][0])


@pytest.mark.parametrize("cell", CELLS)
def test_both_engines_mostly_write_the_same_texts_with_a_shipped_model(cell, compiled):
    # They part only where a draw is a near tie (benchmarks.engine_agreement counts how often).
    model = SHIPPED.load(cell, 64)
    same = 0
    for seed in range(20):
        temperature, top_k, top_p = SETTINGS[seed % len(SETTINGS)]
        arguments = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        text = generate(model, "ROMEO:", 200, **arguments, engine=engines.REFERENCE)
        same += text == generate(model, "ROMEO:", 200, **arguments, engine=compiled)
    assert same >= 18


@pytest.mark.parametrize("cell", CELLS)
def test_the_reference_engine_gives_a_stream_the_same_text_alone_or_batched(cell):
    model = SHIPPED.load(cell, 64)
    scheduler = BatchScheduler(idle_seconds=0.5)
    alone = [generate(model, "ROMEO:", 150, temperature=0.9, seed=seed, engine=engines.REFERENCE) for seed in range(5)]
    started = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engines, "current", lambda: engines.REFERENCE)
        started = [scheduler.submit(model, "ROMEO:", 150, temperature=0.9, seed=seed) for seed in range(5)]
    assert ["".join(generation.chunks()) for generation in started] == alone


# ---- choosing the engine ------------------------------------------------------------------------


def test_a_request_keeps_the_engine_it_started_on(compiled, monkeypatch):
    # Requests started on the reference engine (as while the kernels compile) and on the compiled
    # one share a model's scheduler thread; each is stepped by its own engine to its end, and each
    # gives the text generate() gives.
    model = SHIPPED.load("gru", 64)
    scheduler = BatchScheduler(idle_seconds=0.5)
    started = []
    for n in range(6):
        monkeypatch.setattr(engines, "current", lambda n=n: engines.REFERENCE if n % 2 == 0 else compiled)
        started.append(scheduler.submit(model, "ROMEO:", 300, temperature=0.8, seed=n))
    monkeypatch.undo()
    assert [g.engine.name for g in started] == ["reference", "compiled"] * 3
    assert [g.engine_note != "" for g in started] == [True, False] * 3
    for n, generation in enumerate(started):
        expected = generate(model, "ROMEO:", 300, temperature=0.8, seed=n, engine=generation.engine)
        assert "".join(generation.chunks()) == expected
    assert generate_with(scheduler, model, "a", 20, seed=9) == generate(model, "a", 20, seed=9)


def test_the_status_line_says_when_the_reference_engine_serves(monkeypatch):
    from rnn_demo.serving.streaming import RunStatus
    from rnn_demo.ui.display import status_line

    info = SHIPPED.models()[0]
    monkeypatch.setattr(engines, "state", lambda: (engines.COMPILING, ""))
    note = engines.note(engines.REFERENCE)
    assert note == "fast kernels compiling, serving with the reference engine"
    assert note in status_line(RunStatus(info, 10, 1.0, engine_note=note))
    monkeypatch.setattr(engines, "state", lambda: (engines.UNAVAILABLE, "import numba: ModuleNotFoundError"))
    assert engines.note(engines.REFERENCE) == "numba is not available, serving with the reference engine"
    monkeypatch.setattr(engines, "state", lambda: (engines.FAILED, "LoweringError: ..."))
    assert engines.note(engines.REFERENCE) == "fast kernels failed to compile, serving with the reference engine"
    assert engines.note(engines.Engine("compiled", reference)) == ""


# ---- without numba, and when the kernels fail to compile (in fresh interpreters) -----------------

NO_NUMBA = '''raise ImportError("numba is blocked for this test")\n'''

# Makes every numba compilation fail (an error, or the process aborting as LLVM does), in every
# interpreter started with this folder on its path.
BROKEN_COMPILER = '''
import os
import numba.core.dispatcher

def _compile(self, *args, **kwargs):
    if os.environ.get("BREAK_NUMBA") == "abort":
        os.abort()
    raise numba.core.errors.LoweringError("LLVM ERROR: injected by the test")

numba.core.dispatcher.Dispatcher._compile_for_args = _compile
'''

SERVE_AND_CALL = '''
import json, sys, time
import app
from gradio_client import Client
from rnn_demo.generation import engines
from rnn_demo.generation.sampling import generate
from rnn_demo.serving.generation_process import ProcessScheduler
from rnn_demo.serving.zoo import ModelZoo

zoo = ModelZoo(sys.argv[1])
model = zoo.load("lstm", 64)
expected = generate(model, "ROMEO:", 120, temperature=0.8, seed=7, engine=engines.REFERENCE)
scheduler = ProcessScheduler(idle_seconds=1.0)
demo = app.build_demo(zoo, scheduler)
demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=int(sys.argv[2]), prevent_thread_lock=True))
client = Client(f"http://127.0.0.1:{sys.argv[2]}/", verbose=False, analytics_enabled=False)
first = scheduler.submit(model, "ROMEO:", 120, temperature=0.8, seed=7)  # while the kernels are not ready
first_text = "".join(first.chunks())
texts, pids = [], []
for _ in range(3):
    texts.append(client.predict("ROMEO:", "lstm", 64, 0.8, 120, 0, 1.0, 7, api_name="/generate"))
    pids.append(scheduler.child_pid())
deadline = time.monotonic() + 240  # until the generation process has the kernels, or knows they are not coming
while True:
    probe = scheduler.submit(model, "ROMEO:", 120, temperature=0.8, seed=7)
    probe_text = "".join(probe.chunks())
    if "compiling" not in probe.engine_note or time.monotonic() > deadline:
        break
    time.sleep(0.2)
pids.append(scheduler.child_pid())
scheduler.close()
demo.close()
report = dict(texts=texts, expected="ROMEO:" + expected, pids=pids, note=probe.engine_note, probe_text=probe_text)
report.update(first_note=first.engine_note, first_text=first_text, numba="numba" in sys.modules)
if probe.engine_note == "":  # served by the compiled engine: its text here, for the same request
    compiled = engines.wait_compiled(300)
    report["compiled_expected"] = generate(model, "ROMEO:", 120, temperature=0.8, seed=7, engine=compiled)
print("REPORT", json.dumps(report))
'''


def run_isolated(tmp_path, files: dict[str, str], port: int, **environment) -> tuple[dict, str]:
    """SERVE_AND_CALL in a fresh interpreter, with ``files`` in a folder ahead of everything on its
    path (and its children's), an empty numba cache, and ``environment``: its report and stderr."""
    shadow = tmp_path / "shadow"
    for name, text in files.items():
        (shadow / name).parent.mkdir(parents=True, exist_ok=True)
        (shadow / name).write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shadow), str(REPO_ROOT)]),
               NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"), **environment)
    env.pop("RNN_DEMO_ENGINE", None)
    result = subprocess.run(
        [sys.executable, "-c", SERVE_AND_CALL, str(REPO_ROOT / "models"), str(port)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    return json.loads(report[-1].removeprefix("REPORT ")), result.stderr


def engine_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "reference engine" in line or "fast kernels" in line]


@pytest.mark.slow
def test_the_compiled_engine_takes_over_between_requests(tmp_path, pick_free_port):
    # A fresh start with an empty compile cache: the first request is served by the reference
    # engine from its start to its end while the kernels compile (in a process of their own), and a
    # request after they are ready by the compiled engine.
    report, stderr = run_isolated(tmp_path, {}, pick_free_port())
    assert report["first_note"] == "fast kernels compiling, serving with the reference engine"
    assert "ROMEO:" + report["first_text"] == report["expected"]
    assert report["note"] == ""  # the last request: the compiled engine
    assert report["probe_text"] == report["compiled_expected"]
    assert len(set(report["pids"])) == 1
    assert engine_lines(stderr) == [
        "rnn_demo: compiling the fast kernels in the background; the reference engine serves meanwhile",
        "rnn_demo: the fast kernels are ready; new generations run on the compiled engine",
    ]


@pytest.mark.slow
def test_without_numba_generation_and_the_app_work_on_the_reference_engine(tmp_path, pick_free_port):
    report, stderr = run_isolated(tmp_path, {"numba/__init__.py": NO_NUMBA}, pick_free_port())
    assert report["texts"] == [report["expected"]] * 3
    assert not report["numba"]
    assert len(set(report["pids"])) == 1  # one generation process served them all
    assert report["note"] == "numba is not available, serving with the reference engine"
    assert engine_lines(stderr) == [
        (
            "rnn_demo: numba is not available (import numba: ImportError: numba is blocked for this test); "
            "generation runs on the reference engine"
        )
    ]


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["error", "abort"])
def test_a_compile_failure_is_logged_once_and_the_reference_engine_serves(tmp_path, pick_free_port, failure):
    files = {"sitecustomize.py": BROKEN_COMPILER}
    report, stderr = run_isolated(tmp_path, files, pick_free_port(), BREAK_NUMBA=failure)
    assert report["texts"] == [report["expected"]] * 3
    assert len(set(report["pids"])) == 1  # the generation process did not crash, nor start again
    assert report["note"] == "fast kernels failed to compile, serving with the reference engine"
    reason = "LoweringError: LLVM ERROR: injected by the test" if failure == "error" else "killed by signal 6"
    lines = engine_lines(stderr)
    assert lines[0].startswith("rnn_demo: compiling the fast kernels in the background")
    assert len(lines) == 2 and "the fast kernels failed to compile" in lines[1] and reason in lines[1], stderr[-2000:]


def test_an_unknown_engine_setting_is_named_in_the_log_and_ignored(tmp_path):
    script = (
        "from rnn_demo.generation import engines\n"
        "engines.start_compiling()\n"
        "print(engines.state()[0])\n"
    )
    env = dict(os.environ, RNN_DEMO_ENGINE="fastest", PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["loading"]  # getting the kernels ready, as with no setting
    assert "$RNN_DEMO_ENGINE='fastest' is neither 'reference' nor 'compiled': ignored" in result.stderr
