"""Training: it learns, it keeps the best model, it resumes exactly, and bad runs end with a clear message."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from rnn_demo.cli.train import main as train_main
from rnn_demo.model import CharRNN, CheckpointError
from rnn_demo.model.checkpoint import weights_metadata
from rnn_demo.training.loop import (
    RunFolder,
    TrainConfig,
    TrainingError,
    evaluate,
    learning_rate,
    make_optimizer,
    train,
    train_step,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def quiet(message):
    pass


def tiny_config(corpus, **changes):
    settings = dict(
        data=str(corpus), cell="lstm", hidden_size=16, num_layers=1, dropout=0.1, seq_len=16, batch_size=8,
        lr=5e-3, warmup_steps=3, max_steps=12, eval_every=3, log_every=2, seed=0, device="cpu",
    )
    settings.update(changes)
    return TrainConfig(**settings)


def test_a_short_run_beats_the_unigram_baseline_by_far(trained_run):
    out, metrics = trained_run
    assert metrics["val_loss"] < metrics["unigram_val_loss"] - 1.0
    assert metrics["val_bpc"] == pytest.approx(metrics["val_loss"] / math.log(2), abs=1e-4)
    assert metrics["test_loss"] < metrics["unigram_val_loss"] - 1.0
    assert metrics["steps"] == 300
    # 180,000 training characters in 32 streams of 5,624: 88 windows an epoch, the last one 56 long
    assert metrics["chars_seen"] == 32 * (3 * (87 * 64 + 56) + 36 * 64)
    assert metrics["params"] == CharRNN.from_pretrained(out).num_parameters()
    for key in ("train_loss", "train_seconds", "wall_seconds", "device", "data", "config", "best_step"):
        assert key in metrics


def test_the_run_folder_holds_model_log_curve_and_metrics(trained_run):
    out, metrics = trained_run
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "README.md", "training_state.safetensors",
            "metrics.jsonl", "metrics.json", "loss_curve.png"} <= names
    assert not [name for name in names if name.endswith(".tmp")]
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val_records = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in val_records] == [150, 300]
    best = min(r["val_loss"] for r in val_records)
    assert metrics["val_loss"] == pytest.approx(best, abs=1e-4)  # the folder holds the best model
    assert json.loads((out / "metrics.json").read_text()) == metrics
    # The weights carry the score they were saved with (a run killed before its log line still has it).
    saved = weights_metadata(out / "model.safetensors")
    assert round(float(saved["val_loss"]), 5) == best and int(saved["step"]) == metrics["best_step"]


def test_validation_loss_is_independent_of_the_chunking(trained_model, small_corpus):
    ids = torch.tensor(trained_model.tokenizer.encode(small_corpus.read_text()[:3000]))
    whole = evaluate(trained_model, ids, chunk_len=10_000)
    assert evaluate(trained_model, ids, chunk_len=7) == pytest.approx(whole, abs=1e-5)
    with torch.inference_mode():
        logits, _ = trained_model(ids[None, :-1])
        manual = torch.nn.functional.cross_entropy(logits[0], ids[1:]).item()
    assert whole == pytest.approx(manual, abs=1e-5)


def test_train_step_learns_a_batch_and_returns_a_detached_state():
    torch.manual_seed(0)
    model = CharRNN("abcd", hidden_size=8, num_layers=1)
    optimizer = make_optimizer(model, TrainConfig(lr=1e-2, max_steps=1))
    inputs = torch.tensor([[0, 1, 2, 3] * 4])
    targets = torch.tensor([[1, 2, 3, 0] * 4])
    first, hidden = train_step(model, optimizer, inputs, targets, None, grad_clip=1.0)
    for _ in range(50):
        loss, _ = train_step(model, optimizer, inputs, targets, None, grad_clip=1.0)
    assert loss < first / 2
    assert all(not h.requires_grad for h in hidden)


def test_learning_rate_warms_up_then_decays_by_steps_or_time():
    config = TrainConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1, max_steps=100)
    rates = [learning_rate(config, step, 0.0) for step in range(101)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3, rel=0.03)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert rates[100] == pytest.approx(1e-4)
    timed = TrainConfig(lr=1e-3, warmup_steps=0, min_lr_ratio=0.0, time_budget=60)
    assert learning_rate(timed, 5, 30.0) == pytest.approx(5e-4)
    assert learning_rate(timed, 5, 90.0) == pytest.approx(0.0)
    walled = TrainConfig(lr=1e-3, warmup_steps=0, min_lr_ratio=0.0, wall_budget=60)  # by wall time, evaluations too
    assert learning_rate(walled, 5, 10.0, wall_seconds=30.0) == pytest.approx(5e-4)
    assert learning_rate(walled, 5, 10.0, wall_seconds=60.0) == pytest.approx(0.0)


@pytest.mark.slow
def test_a_wall_budget_ends_the_run_in_time_evaluations_and_the_final_metrics_included(shakespeare_path, tmp_path):
    # Evaluations every 20 steps of a whole 55,770-character validation text would take most of the
    # time: under a wall budget each reads only what it can afford, and the run still ends in time.
    budget = 4.0
    config = TrainConfig(data=str(shakespeare_path), cell="lstm", hidden_size=128, num_layers=1, wall_budget=budget,
                         eval_every=20, log_every=10, warmup_steps=5, seed=0, device="cpu")  # fmt: skip
    started = time.perf_counter()
    metrics = train(config, tmp_path / "run", show_progress=False, log=lambda message: None)
    took = time.perf_counter() - started
    # Within the page's promise (the budget plus 10 s) by a wide margin, on a machine busy with other
    # tests too; the whole validation text at every evaluation would take several times the budget.
    assert metrics["wall_seconds"] <= budget + 5 and took <= budget + 5  # (the loss curve's picture comes last)
    assert metrics["train_seconds"] < budget  # the evaluations had their share of it
    evaluated = metrics["data"]["evaluated_chars"]
    assert 1_000 <= evaluated < metrics["data"]["validation"] and metrics["test_loss"] is not None
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = [r["lr"] for r in records if "lr" in r]
    assert any("val_loss" in r for r in records) and rates[-1] < max(rates)  # the schedule decays over the wall budget


@pytest.mark.parametrize("changes", [{}, {"average_after": 0.25, "weight_drop": 0.3, "variational_dropout": True}],
                         ids=["plain", "averaged-awd"])
def test_resume_continues_exactly_where_the_run_stopped(small_corpus, tmp_path, changes):
    straight = tmp_path / "straight"
    train(tiny_config(small_corpus, **changes), straight, show_progress=False, log=quiet)

    interrupted = tmp_path / "interrupted"

    def stop_at_step_6(message):
        if message.startswith("step 6:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(small_corpus, **changes), interrupted, show_progress=False, log=stop_at_step_6)
    assert RunFolder(interrupted).load_state()[1]["progress"]["step"] == 6
    CharRNN.from_pretrained(interrupted)  # the best model so far is there
    train(tiny_config(small_corpus, **changes), interrupted, resume=True, show_progress=False, log=quiet)

    expected = load_file(straight / "training_state.safetensors")
    resumed = load_file(interrupted / "training_state.safetensors")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    assert load_file(straight / "model.safetensors").keys() == load_file(interrupted / "model.safetensors").keys()
    if changes:
        assert "average.0" in expected  # the weight average travels with the state
    steps = lambda folder: [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert steps(interrupted) == steps(straight)


def test_an_existing_run_is_never_overwritten_without_resume(small_corpus, tmp_path):
    out = tmp_path / "run"
    train(tiny_config(small_corpus, max_steps=3), out, show_progress=False, log=quiet)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(TrainingError, match="already holds a training run.*--resume"):
        train(tiny_config(small_corpus, max_steps=3), out, show_progress=False, log=quiet)
    assert (out / "model.safetensors").read_bytes() == before
    with pytest.raises(TrainingError, match="cannot change the model.*--hidden-size 32"):
        train(tiny_config(small_corpus, hidden_size=32), out, resume=True, show_progress=False, log=quiet)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny_config(small_corpus), tmp_path / "empty", resume=True, show_progress=False, log=quiet)


def test_a_damaged_training_state_is_reported_on_resume(small_corpus, tmp_path):
    out = tmp_path / "run"
    train(tiny_config(small_corpus, max_steps=3), out, show_progress=False, log=quiet)
    state = out / "training_state.safetensors"
    state.write_bytes(state.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        train(tiny_config(small_corpus), out, resume=True, show_progress=False, log=quiet)


def test_patience_stops_a_run_that_no_longer_improves(small_corpus, tmp_path):
    config = tiny_config(small_corpus, lr=1e-9, warmup_steps=0, max_steps=1000, eval_every=1, patience=2)
    metrics = train(config, tmp_path / "run", show_progress=False, log=quiet)
    assert metrics["steps"] < 1000


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--data", "no/such/file.txt", "--max-steps", "5"], "no such file"),
        (["--max-steps", "0"], "--max-steps must be a positive integer"),
        (["--lr", "nan", "--max-steps", "5"], "--lr must be a finite number"),
        (["--hidden-size", "-3", "--max-steps", "5"], "--hidden-size must be a positive integer"),
        (["--time-budget", "-1"], "--time-budget must be a positive number"),
        (["--wall-budget", "0"], "--wall-budget must be a positive number of seconds, got 0.0"),
        ([], "Give --max-steps, --time-budget or --wall-budget"),
        (["--max-steps", "5", "--device", "cuda"] if not torch.cuda.is_available() else ["--max-steps", "0"], ""),
    ],
)
def test_cli_errors_are_one_clear_line(flags, message, tmp_path, capsys, small_corpus):
    argv = ["--data", str(small_corpus), "--out", str(tmp_path / "run"), "--quiet", *flags]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_cli_resume_takes_unchanged_flags_from_the_saved_run(small_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    first = ["--data", str(small_corpus), "--out", str(out), "--quiet", "--cell", "gru", "--hidden-size", "16",
             "--num-layers", "1", "--seq-len", "16", "--batch-size", "8", "--max-steps", "3", "--eval-every", "3"]
    assert train_main(first) == 0
    assert train_main(["--out", str(out), "--resume", "--quiet", "--max-steps", "6"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["model"]["cell"] == "gru" and metrics["config"]["seq_len"] == 16
    capsys.readouterr()
    assert train_main(["--out", str(out), "--resume", "--quiet", "--hidden-size", "32", "--max-steps", "9"]) == 2
    assert "cannot change the model" in capsys.readouterr().err
    assert train_main(["--out", str(tmp_path / "none"), "--resume", "--quiet"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_cli_trains_and_the_sample_cli_reads_the_result(small_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--data", str(small_corpus), "--out", str(out), "--quiet", "--cell", "rnn", "--hidden-size", "16",
            "--num-layers", "2", "--seq-len", "16", "--batch-size", "8", "--max-steps", "4", "--eval-every", "2"]
    assert train_main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["command"] == "python -m train " + " ".join(argv)
    assert metrics["model"]["cell"] == "rnn"

    from rnn_demo.cli.sample import main as sample_main

    capsys.readouterr()
    assert sample_main(["--model", str(out), "--prompt", "KING:", "--max-new-chars", "25", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("KING:") and len(printed) == len("KING:") + 25 + 1
    assert sample_main(["--model", str(tmp_path / "nothing"), "--prompt", "a"]) == 2
    assert sample_main(["--model", str(out), "--temperature", "-1"]) == 2
    assert "temperature" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_a_loadable_model_and_a_resumable_run(small_corpus, tmp_path):
    import random

    out = tmp_path / "run"
    start = [sys.executable, "-m", "train", "--data", str(small_corpus), "--out", str(out), "--quiet",
             "--hidden-size", "32", "--num-layers", "1", "--seq-len", "32", "--batch-size", "8",
             "--max-steps", "100000", "--eval-every", "5", "--log-every", "1"]
    # Only what changes is given on resume: the data, the model and the rest come from the saved run.
    resume = [sys.executable, "-m", "train", "--out", str(out), "--resume", "--quiet"]
    delays = random.Random(0).sample([0.3, 0.7, 1.1, 1.6, 2.2], 3)  # seeded: a failure can be replayed
    saved_steps = []
    for attempt, delay in enumerate(delays):
        before = (out / "training_state.safetensors").stat().st_mtime_ns if attempt else None
        process = subprocess.Popen(start if attempt == 0 else resume, cwd=REPO_ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            state = out / "training_state.safetensors"
            while time.time() < deadline and not (state.exists() and state.stat().st_mtime_ns != before):
                time.sleep(0.05)
            time.sleep(delay)  # somewhere among steps, evaluations and checkpoint writes
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        CharRNN.from_pretrained(out)  # the best model so far always loads
        saved_steps.append(RunFolder(out).load_state()[1]["progress"]["step"])
        complete_lines = (out / "metrics.jsonl").read_text().split("\n")[:-1]  # a kill may cut the last
        assert all("step" in json.loads(line) for line in complete_lines)  # every finished line is whole
    assert saved_steps == sorted(saved_steps) and saved_steps[0] >= 5
    finished = subprocess.run(resume + ["--max-steps", str(saved_steps[-1] + 5)], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == saved_steps[-1] + 5
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "train_loss" in r]
    assert steps == list(range(1, saved_steps[-1] + 6))  # one record a step, none lost, none repeated


def test_cli_push_to_hub_checks_the_repo_id_first_and_keeps_the_model_when_the_push_fails(
    small_corpus, tmp_path, capsys, monkeypatch
):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_fake_token")
    out = tmp_path / "run"
    base = ["--data", str(small_corpus), "--out", str(out), "--quiet", "--hidden-size", "8", "--num-layers", "1",
            "--seq-len", "8", "--batch-size", "4", "--max-steps", "2", "--eval-every", "2"]
    assert train_main(base + ["--push-to-hub", "not a repo"]) == 2
    assert "not a valid repo id" in capsys.readouterr().err and not out.exists()
    assert train_main(base + ["--push-to-hub", "me/model"]) == 1  # offline: the push fails
    err = capsys.readouterr().err
    assert "Could not push to me/model" in err and "the trained model is safe" in err
    CharRNN.from_pretrained(out)


@pytest.mark.parametrize("what", ["best model folder", "model weights", "training state"])
def test_a_full_disk_while_saving_is_one_clear_error_and_the_last_good_files_stay(
    what, small_corpus, tmp_path, capsys, monkeypatch
):
    import errno

    import safetensors.torch

    from rnn_demo.training import run_folder

    out = tmp_path / "run"
    argv = ["--data", str(small_corpus), "--out", str(out), "--quiet", "--hidden-size", "16", "--seq-len", "16",
            "--batch-size", "4", "--max-steps", "2", "--eval-every", "1"]
    assert train_main(argv) == 0
    weights_before = (out / "model.safetensors").read_bytes()
    state_before = (out / "training_state.safetensors").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def safetensors_refuses(*args, **kwargs):
        raise safetensors.SafetensorError("Error while serializing: IoError(No space left on device)")

    if what == "best model folder":
        monkeypatch.setattr(run_folder.tempfile, "mkdtemp", disk_full)
    elif what == "model weights":
        monkeypatch.setattr(safetensors.torch, "save_file", safetensors_refuses)  # CharRNN._save_pretrained
    else:
        monkeypatch.setattr(run_folder.RunFolder, "save_best", lambda self, *score: None)
        monkeypatch.setattr(safetensors.torch, "save_file", safetensors_refuses)
    capsys.readouterr()
    assert train_main(["--out", str(out), "--resume", "--quiet", "--max-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Could not") and str(out) in err and "Traceback" not in err
    assert (out / "model.safetensors").read_bytes() == weights_before
    assert (out / "training_state.safetensors").read_bytes() == state_before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_weight_average_is_the_mean_of_the_steps_and_swaps_back():
    from rnn_demo.training.loop import WeightAverage

    model = CharRNN("ab", cell="gru", hidden_size=4, num_layers=1)
    average = WeightAverage(model)
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(value)
        average.update()
    assert average.count == 3
    with average.swapped_in():
        assert all(torch.allclose(p, torch.full_like(p, 3.0)) for p in model.parameters())
    assert all(torch.equal(p, torch.full_like(p, 6.0)) for p in model.parameters())


def test_an_averaged_run_keeps_and_reports_the_average(small_corpus, tmp_path):
    out = tmp_path / "run"
    metrics = train(tiny_config(small_corpus, average_after=0.5, eval_every=12), out, show_progress=False, log=quiet)
    record = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if "val_loss" in line][-1]
    assert record["averaged_steps"] == 6  # steps 7..12 of 12
    state = load_file(out / "training_state.safetensors")
    saved = load_file(out / "model.safetensors")
    # The saved best model is the average (kept in the state), not the last weights.
    assert torch.equal(saved["rnn.weight_hh_l0"], state[f"average.{_index_of(out, 'rnn.weight_hh_l0')}"])
    assert not torch.equal(saved["rnn.weight_hh_l0"], state["model.rnn.weight_hh_l0"])
    assert metrics["val_loss"] == pytest.approx(record["val_loss"], abs=1e-4)


def _index_of(out, name):
    model = CharRNN.from_pretrained(out)
    return [n for n, _ in model.named_parameters()].index(name)
