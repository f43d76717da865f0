"""torchrun: N processes train the model one process trains, resume, and end together when one fails.

The torchrun runs are real: ``python -m torch.distributed.run --standalone --nproc_per_node 2 -m
train ...`` on CPU with gloo, as a user would start it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnn_demo.model import CharRNN
from rnn_demo.training.config import TrainConfig, TrainingError
from rnn_demo.training.distributed import Ranks, first_line, local_rows, ranks_from_environment
from rnn_demo.training.loop import train, train_step

# pytest-xdist runs this file's tests one after another on one worker, so that no two of their
# torchrun launches overlap.
pytestmark = pytest.mark.xdist_group("torchrun")

REPO_ROOT = Path(__file__).resolve().parents[1]

# A constant learning rate, so that a run of 12 steps resumed to 24 is a run of 24 steps.
FLAGS = ["--cell", "lstm", "--hidden-size", "32", "--num-layers", "2", "--seq-len", "32", "--batch-size", "8",
         "--warmup-steps", "0", "--min-lr-ratio", "1", "--log-every", "1", "--eval-every", "6", "--seed", "3",
         "--device", "cpu", "--quiet"]


def torchrun(*arguments, ranks: int = 2, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
               "-m", "train", *arguments]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True,
                              timeout=timeout, check=False)
    if check:
        assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def logged(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def one_process(corpus, out: Path, steps: int) -> dict:
    from rnn_demo.cli.train import main

    assert main(["--data", str(corpus), "--out", str(out), "--max-steps", str(steps), *FLAGS]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def two_ranks(small_corpus, tmp_path_factory):
    """A 24-step run on 2 ranks."""
    out = tmp_path_factory.mktemp("ddp") / "two-ranks"
    torchrun("--data", str(small_corpus), "--out", str(out), "--max-steps", "24", *FLAGS)
    return out


@pytest.mark.slow
def test_two_ranks_train_the_model_one_process_trains(two_ranks, small_corpus, tmp_path):
    single = one_process(small_corpus, tmp_path / "one", 24)
    double = json.loads((two_ranks / "metrics.json").read_text())
    assert double["world_size"] == 2 and single["world_size"] == 1
    assert double["chars_seen"] == single["chars_seen"] == 24 * 8 * 32  # --batch-size is the global batch
    one, two = logged(tmp_path / "one"), logged(two_ranks)
    assert [r["step"] for r in one] == [r["step"] for r in two]
    train_losses = [(a["train_loss"], b["train_loss"]) for a, b in zip(one, two) if "train_loss" in a]
    assert len(train_losses) == 24
    for a, b in train_losses:
        assert a == pytest.approx(b, abs=2e-5)
    for a, b in ((a, b) for a, b in zip(one, two) if "val_loss" in a):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=2e-5)
    assert double["val_loss"] == pytest.approx(single["val_loss"], abs=2e-5)
    weights_1, weights_2 = load_file(tmp_path / "one" / "model.safetensors"), load_file(two_ranks / "model.safetensors")
    for name in weights_1:
        torch.testing.assert_close(weights_2[name], weights_1[name], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_resume_under_torchrun_continues_the_run(two_ranks, small_corpus, tmp_path):
    out = tmp_path / "resumed"
    torchrun("--data", str(small_corpus), "--out", str(out), "--max-steps", "12", *FLAGS)
    # only rank 0 writes: one log, one line a step
    assert [r["step"] for r in logged(out) if "train_loss" in r] == list(range(1, 13))
    on_one_process = tmp_path / "resumed-on-one-process"
    shutil.copytree(out, on_one_process)
    torchrun("--out", str(out), "--resume", "--quiet", "--max-steps", "24")
    straight, resumed = load_file(two_ranks / "training_state.safetensors"), load_file(out / "training_state.safetensors")
    assert straight.keys() == resumed.keys() and "rng.cpu.1" in straight  # every rank's random state is kept
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], atol=1e-6, rtol=1e-5)
    assert [r["step"] for r in logged(out)] == [r["step"] for r in logged(two_ranks)]
    # the state holds every stream's carried state, so one process can go on with a 2-rank run
    assert straight["hidden.0"].shape == (2, 8, 32)
    from rnn_demo.cli.train import main

    assert main(["--out", str(on_one_process), "--resume", "--quiet", "--max-steps", "24"]) == 0
    alone = load_file(on_one_process / "training_state.safetensors")
    for name in ("model.decoder.weight", "hidden.0", "hidden.1"):
        torch.testing.assert_close(alone[name], straight[name], atol=1e-4, rtol=1e-3)


@pytest.mark.slow
def test_two_nodes_meet_through_torchruns_rendezvous(two_ranks, small_corpus, tmp_path):
    """Two torchrun launchers of one process each, as two machines would start them, meeting at a
    c10d rendezvous on loopback: the run equals the one-launcher 2-rank run."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "two-nodes"
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
             "--rdzv-id", "char-rnn-test", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
             "-m", "train", "--data", str(small_corpus), "--out", str(out), "--max-steps", "24", *FLAGS],
            cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [node.communicate(timeout=240) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    assert [node.returncode for node in nodes] == [0, 0], [err[-2000:] for _, err in outputs]
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 2
    for a, b in zip(logged(out), logged(two_ranks)):
        assert a.get("train_loss", a.get("val_loss")) == pytest.approx(b.get("train_loss", b.get("val_loss")), abs=2e-5)


@pytest.mark.slow
def test_a_rank_that_dies_ends_the_run_on_every_rank_with_a_clear_message(small_corpus, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "train",
               "--data", str(small_corpus), "--out", str(out), "--time-budget", "300", *FLAGS]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "training_state.safetensors").exists():  # the first checkpoint, at step 6
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
            time.sleep(0.2)
        rank_1 = [pid for pid in _children(process.pid) if _environment(pid).get("RANK") == "1"]
        assert len(rank_1) == 1
        killed_at = time.monotonic()
        os.kill(rank_1[0], signal.SIGKILL)
        _, stderr = process.communicate(timeout=90)
        ended_after = time.monotonic() - killed_at
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert ended_after < 60  # nobody waits for the dead rank until --dist-timeout
    messages = [line for line in stderr.splitlines() if line.startswith(("error: rank 0 of 2", "rank 0 of 2:"))]
    assert messages, stderr[-3000:]
    assert "the last checkpoint, step " in messages[0] and "continue with --resume" in messages[0]
    assert "pair.cc" not in messages[0] and "This is typically caused" not in messages[0]
    CharRNN.from_pretrained(out)  # the best model so far is intact


@pytest.mark.slow
def test_a_streamed_corpus_of_two_files_trains_on_two_ranks(small_corpus, tmp_path):
    text = small_corpus.read_text(encoding="utf-8")
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "part-0.txt").write_text(text[:100_000], encoding="utf-8")
    (folder / "part-1.txt").write_text(text[100_000:], encoding="utf-8")
    out = tmp_path / "streamed"
    torchrun("--streaming", "--data", str(folder), "--val-chars", "5000", "--out", str(out), "--max-steps", "12", *FLAGS)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["data"]["split_by_node"] == "shards" and metrics["data"]["shards"] == 2
    assert metrics["data"]["validation"] == 5000
    # a streamed run resumes on as many ranks as it had, and says so otherwise
    from rnn_demo.cli.train import main

    assert main(["--out", str(out), "--resume", "--quiet", "--max-steps", "14"]) == 2


# ---- the pieces, without torchrun ----------------------------------------------------------


def test_torchruns_environment_gives_the_ranks():
    assert ranks_from_environment({}) == Ranks(0, 1, 0)
    assert ranks_from_environment({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}) == Ranks(3, 4, 1)
    assert Ranks(3, 4, 1).distributed and not Ranks(3, 4, 1).is_main
    with pytest.raises(TrainingError, match="RANK set but not LOCAL_RANK, WORLD_SIZE: start several processes"):
        ranks_from_environment({"RANK": "0"})
    with pytest.raises(TrainingError, match="not whole numbers"):
        ranks_from_environment({"RANK": "x", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(TrainingError, match="RANK=2 does not fit WORLD_SIZE=2"):
        ranks_from_environment({"RANK": "2", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})
    assert Ranks(0, 2).backend(torch.device("cpu")) == "gloo"
    assert Ranks(0, 2).backend(torch.device("cuda", 0)) == "nccl"


def test_the_global_batch_is_divided_into_contiguous_blocks_of_streams():
    assert [local_rows(16, Ranks(rank, 4)) for rank in range(4)] == [slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 16)]
    assert local_rows(16, Ranks(1, 2), micro_batches=4) == slice(8, 16)
    with pytest.raises(TrainingError, match="--batch-size 10 must divide evenly among 4 ranks: use a multiple of 4"):
        local_rows(10, Ranks(0, 4))


def test_a_collective_error_is_told_in_one_line():
    error = RuntimeError(
        "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:42667: "
        "Connection reset by peer. This is typically caused by a remote worker hanging. GLHF!\nmore"
    )
    assert first_line(error) == "Read error [127.0.0.1]:42667: Connection reset by peer."


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_gradient_accumulation_takes_the_same_step(cell):
    torch.manual_seed(0)
    model = CharRNN("abcdefgh", cell=cell, hidden_size=12, num_layers=2).double()
    inputs, targets = torch.randint(0, 8, (8, 10)), torch.randint(0, 8, (8, 10))
    zeros = model.init_hidden(8)  # a carried state of random values: each micro-batch takes its rows of it
    hidden = tuple(torch.randn_like(h) for h in zeros) if isinstance(zeros, tuple) else torch.randn_like(zeros)
    results = []
    for micro_batches in (1, 2, 4):
        copy = CharRNN("abcdefgh", cell=cell, hidden_size=12, num_layers=2).double()
        copy.load_state_dict(model.state_dict())
        optimizer = torch.optim.SGD(copy.parameters(), lr=0.1)
        loss, carried = train_step(copy, optimizer, inputs, targets, hidden, grad_clip=0.5, micro_batches=micro_batches)
        results.append((loss, carried, [p.detach().clone() for p in copy.parameters()]))
    for loss, carried, weights in results[1:]:
        torch.testing.assert_close(loss, results[0][0])
        for a, b in zip(weights, results[0][2]):
            torch.testing.assert_close(a, b)
        for a, b in zip(carried if isinstance(carried, tuple) else (carried,),
                        results[0][1] if isinstance(results[0][1], tuple) else (results[0][1],)):
            torch.testing.assert_close(a, b)


def test_a_batch_that_does_not_divide_among_the_micro_batches_is_refused(small_corpus, tmp_path):
    config = TrainConfig(data=str(small_corpus), batch_size=6, grad_accum=4, max_steps=1, device="cpu")
    with pytest.raises(TrainingError, match="--batch-size 6 must divide evenly among 1 rank x 4 micro-batches"):
        train(config, tmp_path / "out", show_progress=False, log=lambda message: None)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
                found.extend(_children(int(entry.name)))
    return found


def _environment(pid: int) -> dict[str, str]:
    try:
        pairs = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return {}
    return dict(pair.decode(errors="replace").split("=", 1) for pair in pairs if b"=" in pair)
