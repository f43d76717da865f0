"""Training a CharRNN, as importable functions (the CLI, :mod:`rnn_demo.cli.train`, only parses flags).

Pieces a test can drive on their own:

* :func:`train_step` - one optimisation step on one TBPTT batch, returning the loss and the
  detached state to carry into the next batch;
* :func:`evaluate` - mean loss (nats/char) over a whole split read as one stream, state carried;
* :func:`learning_rate` - warmup, then cosine decay over steps or over the time budget;
* :func:`affordable_length` - how much text an evaluation can read in a given time (``--wall-budget``);
* :class:`~rnn_demo.training.run_folder.RunFolder` - the ``--out`` folder: best model (a
  ``save_pretrained`` folder), the resumable training state, the metrics log and the loss curve,
  every write atomic;
* :func:`train` - the loop that ties them together, alone or on every rank under torchrun
  (:mod:`rnn_demo.training.distributed`), on text in memory or streamed
  (:mod:`rnn_demo.training.streaming`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from rnn_demo.files import atomic_write_text
from rnn_demo.model import CharRNN, CheckpointError, Hidden, bits_per_char
from rnn_demo.model.tokenizer import CharTokenizer
from rnn_demo.training.config import MODEL_DEFAULTS, MODEL_FIELDS, TrainConfig, TrainingError
from rnn_demo.training.data import TBPTTBatches, load_text_splits
from rnn_demo.training.distributed import Ranks, first_line, local_rows, ranks_from_environment
from rnn_demo.training.run_folder import METRICS_NAME, Progress, RunFolder, hidden_from, optimizer_state_from
from rnn_demo.training.streaming import StreamedBatches, StreamedCorpus

# ---- the pure pieces ------------------------------------------------------------------------


def select_device(name: str, ranks: Ranks | None = None) -> torch.device:
    """The device to train on; under torchrun each rank takes the GPU of its local rank."""
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA GPU (use --device cpu or auto)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    local_rank = ranks.local_rank if ranks is not None else 0
    if local_rank >= torch.cuda.device_count():
        raise TrainingError(
            f"local rank {local_rank} has no GPU of its own: this machine has {torch.cuda.device_count()}; "
            "start at most that many processes per node (--nproc_per_node)"
        )
    return torch.device("cuda", local_rank)


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph behind the carried state (truncated BPTT)."""
    if isinstance(hidden, tuple):
        return tuple(h.detach() for h in hidden)
    return hidden.detach()


def make_optimizer(model: CharRNN, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (biases and LayerNorm-like vectors are left alone)."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": matrices, "weight_decay": config.weight_decay},
        {"params": vectors, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


def schedule_progress(config: TrainConfig, step: int, train_seconds: float, wall_seconds: float = 0.0) -> float:
    """How far the run is, 0 to 1: the largest of step / max_steps, train_seconds / time_budget and
    wall_seconds / wall_budget, so a run with a budget still ends its schedule when its time runs out."""
    progress = 0.0
    if config.max_steps:
        progress = max(progress, step / config.max_steps)
    if config.time_budget:
        progress = max(progress, train_seconds / config.time_budget)
    if config.wall_budget:
        progress = max(progress, wall_seconds / config.wall_budget)
    return min(progress, 1.0)


def learning_rate(config: TrainConfig, step: int, train_seconds: float, wall_seconds: float = 0.0) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``lr * min_lr_ratio``."""
    progress = schedule_progress(config, step, train_seconds, wall_seconds)
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr * warmup * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def train_step(
    model: CharRNN | torch.nn.parallel.DistributedDataParallel,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    hidden: Hidden | None,
    grad_clip: float = 0.0,
    micro_batches: int = 1,
) -> tuple[torch.Tensor, Hidden]:
    """One step on a batch (B, T): returns the loss (nats/char, a 0-dim tensor) and the detached state.

    ``micro_batches > 1`` runs the B streams in that many groups, one after the other, and adds up
    their gradients before the one optimizer step (gradient accumulation): the same step with less
    memory. Under DistributedDataParallel the gradients are averaged over the ranks once, in the
    last group's backward.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    rows = inputs.shape[0] // micro_batches
    if rows * micro_batches != inputs.shape[0]:
        raise ValueError(f"{inputs.shape[0]} streams do not divide into {micro_batches} micro-batches")
    loss = torch.zeros((), device=inputs.device)
    carried = []
    for part in range(micro_batches):
        block = slice(part * rows, (part + 1) * rows)
        part_hidden = None if hidden is None else _rows_of(hidden, block)
        last = part == micro_batches - 1
        keep_gradients_local = model.no_sync() if hasattr(model, "no_sync") and not last else contextlib.nullcontext()
        with keep_gradients_local:
            logits, part_hidden = model(inputs[block], part_hidden)  # (b, T, V)
            part_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[block].reshape(-1))
            (part_loss / micro_batches).backward()
        loss += part_loss.detach() / micro_batches
        carried.append(detach_hidden(part_hidden))
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss, carried[0] if micro_batches == 1 else _joined(carried)


def _rows_of(hidden: Hidden, rows: slice) -> Hidden:
    """The state of some streams (the batch is dimension 1 of every state tensor)."""
    if isinstance(hidden, tuple):
        return tuple(h[:, rows] for h in hidden)
    return hidden[:, rows]


def _joined(parts: list[Hidden]) -> Hidden:
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(group, dim=1) for group in zip(*parts))
    return torch.cat(parts, dim=1)


@contextlib.contextmanager
def _full_float32(device: torch.device):
    """On a GPU, cuDNN's recurrent kernels use TF32 by default (about 10 mantissa bits); reported
    losses are measured in full float32 so that a CPU re-evaluation agrees with them."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    allowed = cudnn.allow_tf32
    cudnn.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32 = allowed


@torch.inference_mode()
def evaluate(model: CharRNN, ids: torch.Tensor, streams: int = 1, chunk_len: int = 2048) -> float:
    """Mean cross-entropy (nats/char) of predicting each next id of ``ids``.

    With ``streams=1`` the split is one stream: every character is predicted from all the
    text before it (state carried across chunks). ``streams > 1`` cuts it into that many
    contiguous streams read in parallel (faster, slightly less context at each cut).
    """
    was_training = model.training
    model.eval()
    try:
        device = model.decoder.weight.device
        length = (len(ids) - 1) // streams
        if length < 1:
            raise ValueError(f"{len(ids)} ids are too few to evaluate in {streams} streams")
        inputs = ids[: length * streams].view(streams, length).to(device)  # (S, N)
        targets = ids[1 : length * streams + 1].view(streams, length).to(device)
        hidden = None
        total = torch.zeros((), dtype=torch.float64, device=device)
        with _full_float32(device):
            for start in range(0, length, chunk_len):
                logits, hidden = model(inputs[:, start : start + chunk_len], hidden)
                chunk_targets = targets[:, start : start + chunk_len]
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk_targets.reshape(-1), reduction="sum")
                total += loss
        return float(total) / (length * streams)
    finally:
        model.train(was_training)


def affordable_length(model: CharRNN, ids: torch.Tensor, seconds: float, probe_chars: int = 1024) -> int:
    """How many of ``ids`` an :func:`evaluate` reads in about ``seconds``: timed on the first
    ``probe_chars`` characters, which it always allows."""
    probe = ids[: probe_chars + 1]
    started = time.perf_counter()
    evaluate(model, probe)
    per_char = max(time.perf_counter() - started, 1e-9) / (len(probe) - 1)
    return min(len(ids), max(len(probe), int(seconds / per_char) + 1))


def unigram_loss(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int) -> float:
    """Loss (nats/char) of the best context-free model: training-set character frequencies
    (add-one smoothed). Any useful model must beat it by a wide margin."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1.0
    log_probs = (counts / counts.sum()).log()
    return float(-log_probs[eval_ids[1:]].mean())


class WeightAverage:
    """A running mean of the model's parameters over the steps since it started (Polyak
    averaging, the way AWD-LSTM ends training with averaged SGD).

    ``update`` after each optimizer step; ``swapped_in`` puts the average into the model for
    evaluation or saving and restores the trained weights afterwards.
    """

    def __init__(self, model: CharRNN):
        self.parameters = list(model.parameters())  # tied weights appear once
        self.average: list[torch.Tensor] | None = None
        self.count = 0

    @property
    def active(self) -> bool:
        return self.average is not None

    @torch.no_grad()
    def update(self) -> None:
        current = [p.detach() for p in self.parameters]
        if self.average is None:
            self.average = [p.clone() for p in current]
            self.count = 1
            return
        self.count += 1
        torch._foreach_lerp_(self.average, current, 1.0 / self.count)

    @contextlib.contextmanager
    def swapped_in(self):
        if self.average is None:
            yield
            return
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.parameters]
            for parameter, average in zip(self.parameters, self.average):
                parameter.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, weights in zip(self.parameters, trained):
                    parameter.copy_(weights)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        if self.average is None:
            return {}
        return {f"average.{i}": a.contiguous() for i, a in enumerate(self.average)}

    def load_state(self, tensors: dict[str, torch.Tensor], count: int) -> None:
        if count <= 0:
            return
        try:
            average = [tensors[f"average.{i}"] for i in range(len(self.parameters))]
        except KeyError as error:
            raise CheckpointError(f"the training state lacks the weight average ({error})") from None
        self.average = [a.to(p.device, p.dtype) for a, p in zip(average, self.parameters)]
        self.count = count


# ---- the data a run reads ---------------------------------------------------------------


@dataclass
class TrainingData:
    """What the loop reads, whichever way the text came: the vocabulary, the evaluation ids, and
    this rank's batches (:meth:`batch`)."""

    tokenizer: CharTokenizer
    validation: torch.Tensor
    test: torch.Tensor | None
    baseline_sample: torch.Tensor  # training ids the unigram baseline counts
    train_chars: int | None  # characters predicted in one pass over the training text; None for a stream
    chars_per_epoch: int | None  # of them, those the batches cover (the streams' ends are cut even)
    description: dict
    batch: Callable[[int], tuple[torch.Tensor, torch.Tensor, bool]]  # step -> inputs, targets, new epoch
    outside_vocabulary: Callable[[], int] = lambda: 0  # characters skipped so far (streams)
    close: Callable[[], None] = lambda: None  # let go of a stream


def _data_in_memory(config: TrainConfig, rows: slice, device: torch.device) -> TrainingData:
    """The whole text in memory, split 90/5/5 (or by its dataset's splits); the global batch's
    streams are cut as for one process, and this rank takes its block of them."""
    splits = load_text_splits(config.data, text_column=config.text_column, split=config.split)
    tokenizer = CharTokenizer.from_text(splits.train, splits.validation, splits.test)
    train_ids = torch.tensor(tokenizer.encode(splits.train), dtype=torch.long)
    batches = TBPTTBatches(train_ids, config.batch_size, config.seq_len)
    batches.inputs, batches.targets = batches.inputs[rows].to(device), batches.targets[rows].to(device)

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        _, index = batches.position(step)
        inputs, targets = batches[index]
        return inputs, targets, index == 0  # a new epoch starts every stream from the beginning

    return TrainingData(
        tokenizer=tokenizer,
        validation=torch.tensor(tokenizer.encode(splits.validation), dtype=torch.long),
        test=torch.tensor(tokenizer.encode(splits.test), dtype=torch.long),
        baseline_sample=train_ids,
        train_chars=len(train_ids) - 1,
        chars_per_epoch=batches.chars_per_epoch,
        description={"source": splits.source, **splits.sizes()},
        batch=batch,
    )


def _data_streamed(config: TrainConfig, ranks: Ranks, rows: slice, device: torch.device, start_step: int) -> TrainingData:
    """The corpus read as a stream (:mod:`rnn_demo.training.streaming`), this rank's share of it."""
    corpus = StreamedCorpus(config.data, ranks, config.text_column, config.val_chars, config.vocab_from, config.vocab_mb)
    batches = StreamedBatches(corpus.rows(), corpus.table, rows.stop - rows.start, config.seq_len)
    batches.skip(start_step)

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        inputs, targets = batches.next()
        return inputs.to(device), targets.to(device), False

    return TrainingData(
        tokenizer=corpus.tokenizer,
        validation=corpus.encode(corpus.validation_text),
        test=corpus.encode(corpus.test_text) if corpus.test_text else None,
        baseline_sample=corpus.encode(corpus.sample_text),
        train_chars=None,
        chars_per_epoch=None,
        description=corpus.describe(),
        batch=batch,
        outside_vocabulary=lambda: batches.chars_outside_vocabulary,
        close=batches.close,
    )


# ---- the loop -----------------------------------------------------------------------------


def _check_same_model(saved: dict, config: TrainConfig) -> None:
    changed = [
        f"--{name.replace('_', '-')} {getattr(config, name)!r} (the run has {saved.get(name)!r})"
        for name in MODEL_FIELDS
        if saved.get(name, MODEL_DEFAULTS[name]) != getattr(config, name)
    ]
    if changed:
        raise TrainingError("--resume cannot change the model: " + "; ".join(changed))


def _rng_tensors(states: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every rank's random-number state: rank 0's under the name one process uses."""
    return {"rng.cpu" if rank == 0 else f"rng.cpu.{rank}": state for rank, state in enumerate(states)}


def train(
    config: TrainConfig,
    out: str | os.PathLike,
    resume: bool = False,
    command: str | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
    ranks: Ranks | None = None,
) -> dict:
    """Train as ``config`` says, keeping the run in ``out``; return the final metrics.

    ``out`` always holds the best model so far; with ``resume`` the run continues from the
    training state saved there (same model, same data position, same optimizer and RNG).
    Started by torchrun (``ranks`` from :func:`ranks_from_environment`), every rank trains its
    share of each batch under DistributedDataParallel and rank 0 alone logs, evaluates, writes
    and returns the metrics (the other ranks return an empty dict).
    """
    config.validate()
    ranks = ranks_from_environment() if ranks is None else ranks
    device = select_device(config.device, ranks)
    ranks.start(device, config.dist_timeout)
    try:
        return _train(config, out, resume, command, show_progress, log, ranks, device)
    finally:
        ranks.stop()


# Under --wall-budget, one evaluation may take this share of the training time of the eval_every
# steps before it, and at most this fraction of the budget: evaluations then cost a bounded part of
# the run, whatever the length of the text.
EVALUATION_SHARE = 0.25
MAX_EVALUATION_FRACTION = 0.05
# What the end of a run costs, in evaluations: the last one, then finish_run's of the best model on the
# validation and test text.
ENDING_EVALUATIONS = 3


def _train(config, out, resume, command, show_progress, log, ranks: Ranks, device: torch.device) -> dict:
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if config.wall_budget is not None and ranks.distributed:
        raise TrainingError("--wall-budget is for one process (the ranks' clocks differ); under torchrun use --time-budget")
    run = RunFolder(out)
    run.begin(resume, create=ranks.is_main)
    rows = local_rows(config.batch_size, ranks, config.grad_accum)

    saved = None
    if resume:
        tensors, saved = run.load_state()
        _check_same_model(saved["config"], config)
        saved_world = saved.get("world_size", 1)
        if config.streaming and saved_world != ranks.world_size:
            raise TrainingError(
                f"--resume --streaming: the run was trained on {saved_world} rank(s), this is {ranks.world_size}; "
                "a stream's shares depend on the number of ranks, so resume it on as many"
            )
    start_step = saved["progress"]["step"] if saved else 0
    if config.streaming:
        data = _data_streamed(config, ranks, rows, device, start_step)
    else:
        data = _data_in_memory(config, rows, device)
    tokenizer = data.tokenizer

    torch.manual_seed(config.seed)  # the same initial weights on every rank
    progress = Progress()
    hidden: Hidden | None = None
    if resume:
        if saved["vocab"] != tokenizer.vocab:
            raise TrainingError("--resume: the data gives a different vocabulary than the run was trained on")
        model = CharRNN(tokenizer.vocab, **config.model_kwargs())
        weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        if model.tie_weights:
            weights["decoder.weight"] = weights["encoder.weight"]
        model.load_state_dict(weights, strict=True)
        model.to(device)
        optimizer = make_optimizer(model, config)
        optimizer.load_state_dict(optimizer_state_from(tensors, saved["optimizer"]))
        progress = Progress(**saved["progress"])
        average = WeightAverage(model)
        average.load_state(tensors, progress.averaged_steps)
        hidden = hidden_from(tensors, device)  # every stream's state, as one process carries it
        if hidden is not None:
            hidden = _rows_of(hidden, rows)
        rng = tensors.get("rng.cpu" if ranks.rank == 0 else f"rng.cpu.{ranks.rank}")
        if rng is not None:
            torch.set_rng_state(rng)
        else:  # more ranks than the run had: a seed of this rank's own
            torch.manual_seed(config.seed + ranks.rank + progress.step)
        if "rng.cuda" in tensors and device.type == "cuda" and ranks.rank == 0:
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        if ranks.is_main:
            run.truncate_log(progress.step)
    else:
        model = CharRNN(tokenizer.vocab, **config.model_kwargs()).to(device)
        optimizer = make_optimizer(model, config)
        average = WeightAverage(model)
        if ranks.rank:
            torch.manual_seed(config.seed + ranks.rank)  # dropout masks of its own on each rank
        if ranks.is_main and run.log_path.exists():
            run.log_path.unlink()
    trained = model
    if ranks.distributed:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    say = (log or (lambda message: tqdm.write(message))) if ranks.is_main else (lambda message: None)
    baseline = unigram_loss(data.baseline_sample, data.validation, tokenizer.vocab_size)
    size = f"train {data.train_chars:,} chars" if data.train_chars is not None else f"streaming {config.data}"
    say(
        f"{config.cell} {config.num_layers}x{config.hidden_size}: {model.num_parameters():,} parameters, "
        f"vocab {tokenizer.vocab_size}, {size}, device {device}"
        + (f", {ranks.world_size} ranks ({ranks.backend(device)})" if ranks.distributed else "")
        + f"; unigram baseline {baseline:.3f} nats/char"
        + (f"; resuming at step {progress.step}" if resume else "")
    )

    wall_before = progress.wall_seconds  # of the runs this one resumes
    evaluation_seconds: float | None = None  # what the last evaluation took, its saves included

    def wall_seconds() -> float:
        return wall_before + time.perf_counter() - started

    def evaluation_allowance() -> float:
        """The seconds one evaluation may take under the wall budget (EVALUATION_SHARE)."""
        seconds_per_step = progress.train_seconds / max(progress.step, 1)
        return min(EVALUATION_SHARE * config.eval_every * seconds_per_step, MAX_EVALUATION_FRACTION * config.wall_budget)

    def committed_wall_seconds() -> float:
        """The wall time spent, plus what the end of the run will cost (ENDING_EVALUATIONS
        evaluations): the measure the wall budget is held to, and the schedule follows, so that the
        learning rate has decayed when the run ends."""
        if config.wall_budget is None:
            return wall_seconds()
        evaluation = evaluation_seconds if evaluation_seconds is not None else evaluation_allowance()
        return wall_seconds() + ENDING_EVALUATIONS * evaluation

    def out_of_wall_time() -> bool:
        """Whether the run must end now to end within its wall budget. Checked before each step and
        each evaluation; a run makes one step at least, so that it always leaves a model."""
        if config.wall_budget is None or progress.step == start_step:
            return False
        return committed_wall_seconds() >= config.wall_budget

    def finished() -> bool:
        return (
            (config.max_steps is not None and progress.step >= config.max_steps)
            or (config.time_budget is not None and progress.train_seconds >= config.time_budget)
            or out_of_wall_time()
        )

    def save_state() -> None:
        """Rank 0 writes the state, with every rank's carried state and random-number state."""
        parts = ranks.gathered((None if hidden is None else _on_cpu(hidden), torch.get_rng_state()))
        if not ranks.is_main:
            return
        states = [part[0] for part in parts]
        every_hidden = None if any(state is None for state in states) else _joined(states)
        progress.wall_seconds = wall_seconds()
        run.save_state(model, optimizer, every_hidden, progress, config, average,
                       extra=_rng_tensors([part[1] for part in parts]), world_size=ranks.world_size)

    total = config.max_steps if config.max_steps is not None else None
    bar = tqdm(total=total, initial=progress.step, disable=not (show_progress and ranks.is_main), unit="step",
               dynamic_ncols=True)
    running_loss = torch.zeros((), device=device)
    running_steps = 0
    window_start = time.perf_counter()
    window_chars = 0
    last_saved = progress.step if resume else None
    stopped_early = False
    try:
        while not finished() and not stopped_early:
            step_started = time.perf_counter()
            inputs, targets, new_epoch = data.batch(progress.step)
            if new_epoch:
                hidden = None
            lr = learning_rate(config, progress.step, progress.train_seconds, committed_wall_seconds())
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, hidden = train_step(trained, optimizer, inputs, targets, hidden, config.grad_clip, config.grad_accum)
            if config.average_after is not None and (
                schedule_progress(config, progress.step + 1, progress.train_seconds, committed_wall_seconds())
                > config.average_after
            ):
                average.update()
                progress.averaged_steps = average.count
            running_loss += loss
            running_steps += 1
            progress.step += 1
            step_chars = inputs.numel() * ranks.world_size
            progress.chars_seen += step_chars
            window_chars += step_chars
            if device.type == "cuda":
                torch.cuda.synchronize()
            # one clock for every rank, so that all of them see the budget spent at the same step
            progress.train_seconds += ranks.slowest(time.perf_counter() - step_started)
            bar.update(1)

            if progress.step % config.log_every == 0 or finished():
                now = time.perf_counter()
                chars_per_second = window_chars / max(now - window_start, 1e-9)
                train_loss = float(ranks.mean(running_loss)) / running_steps
                progress.last_train_loss = round(train_loss, 5)
                if ranks.is_main:
                    run.append_log(
                        {
                            "step": progress.step,
                            "epoch": round(progress.chars_seen / data.chars_per_epoch, 4) if data.chars_per_epoch else None,
                            "chars_seen": progress.chars_seen,
                            "train_loss": round(train_loss, 5),
                            "lr": lr,
                            "chars_per_sec": round(chars_per_second),
                            "train_seconds": round(progress.train_seconds, 2),
                        }
                    )
                bar.set_postfix(loss=f"{train_loss:.3f}", chars_s=f"{chars_per_second / 1000:.1f}k")
                if config.wall_budget is not None and config.max_steps is None:
                    bar.set_description(f"{max(config.wall_budget - wall_seconds(), 0):.0f}s left")
                elif config.time_budget is not None and config.max_steps is None:
                    remaining = max(config.time_budget - progress.train_seconds, 0)
                    bar.set_description(f"{remaining:.0f}s left")
                running_loss.zero_()
                running_steps = 0
                window_start, window_chars = now, 0

            if progress.step % config.eval_every == 0 or finished():
                evaluation_started = time.perf_counter()
                if config.wall_budget is not None and evaluation_seconds is None:
                    # The first evaluation fixes how much text every evaluation reads, so that they
                    # compare the model on the same text.
                    _keep_affordable_text(data, model, evaluation_allowance())
                if ranks.is_main:
                    with average.swapped_in():  # the average, once there is one, is the model evaluated and kept
                        val_loss = evaluate(model, data.validation)
                        improved = val_loss < progress.best_val_loss
                        if improved:
                            run.save_best(model, val_loss, progress.step)
                    if improved:
                        progress.best_val_loss = val_loss
                        progress.best_step = progress.step
                        progress.evals_without_improvement = 0
                    else:
                        progress.evals_without_improvement += 1
                    run.append_log(
                        {
                            "step": progress.step,
                            "chars_seen": progress.chars_seen,
                            "val_loss": round(val_loss, 5),
                            "val_bpc": round(bits_per_char(val_loss), 5),
                            "train_seconds": round(progress.train_seconds, 2),
                            **({"averaged_steps": average.count} if average.active else {}),
                        }
                    )
                    say(
                        f"step {progress.step}: val {val_loss:.4f} nats/char ({bits_per_char(val_loss):.3f} bits)"
                        + (" *best*" if improved else f", best {progress.best_val_loss:.4f} at step {progress.best_step}")
                    )
                    if config.patience is not None and progress.evals_without_improvement >= config.patience:
                        say(f"no improvement in {config.patience} evaluations: stopping early")
                        stopped_early = True
                save_state()
                last_saved = progress.step
                stopped_early = ranks.from_main(stopped_early)
                window_start = time.perf_counter()  # evaluation time is not training throughput
                evaluation_seconds = window_start - evaluation_started
    except KeyboardInterrupt:
        bar.close()
        if not ranks.distributed:
            progress.wall_seconds = wall_seconds()
            run.save_state(model, optimizer, hidden, progress, config, average)
            say(f"interrupted at step {progress.step}; the state is saved: continue with --resume")
        else:  # the other ranks may be gone: nothing to gather from, so the last checkpoint stands
            _tell_every_rank(ranks, f"stopped at step {progress.step}" + _checkpoint_note(run, last_saved))
        raise
    except RuntimeError as error:
        if not ranks.distributed:
            raise
        raise TrainingError(
            f"rank {ranks.rank} of {ranks.world_size} stopped at step {progress.step}: {first_line(error)}. "
            "When one rank fails, the run ends on every rank" + _checkpoint_note(run, last_saved)
        ) from None
    finally:
        bar.close()
        data.close()

    outside = ranks.total(data.outside_vocabulary())
    if not ranks.is_main:
        return {}
    return finish_run(run, config, data, baseline, progress, device, started, command, ranks, outside)


def _keep_affordable_text(data: TrainingData, model: CharRNN, seconds: float) -> None:
    """Cut the validation and test text to what one evaluation reads in about ``seconds``
    (:func:`affordable_length`), and say so in the data's description (metrics.json's "data")."""
    keep = affordable_length(model, data.validation, seconds)
    if keep < len(data.validation):
        data.validation = data.validation[:keep]
        data.test = data.test[:keep] if data.test is not None else None
        data.description["evaluated_chars"] = keep - 1  # characters predicted, in each of the two


def _on_cpu(hidden: Hidden) -> Hidden:
    return tuple(h.cpu() for h in hidden) if isinstance(hidden, tuple) else hidden.cpu()


def _checkpoint_note(run: RunFolder, step: int | None) -> str:
    if step is None:
        return "; no checkpoint was written yet"
    return f"; the last checkpoint, step {step}, is in {run.path}: continue with --resume"


def _tell_every_rank(ranks: Ranks, message: str) -> None:
    print(f"rank {ranks.rank} of {ranks.world_size}: {message}", file=sys.stderr, flush=True)


def finish_run(run, config, data: TrainingData, baseline, progress, device, started, command,
               ranks: Ranks | None = None, outside_vocabulary: int = 0) -> dict:
    """Evaluate the best model on every split, write metrics.json and the loss curve."""
    ranks = ranks or Ranks()
    best = CharRNN.from_pretrained(run.path).to(device)
    val_loss = evaluate(best, data.validation)
    test_loss = evaluate(best, data.test) if data.test is not None and len(data.test) > 1 else None
    metrics = {
        "model": {"vocab_size": best.vocab_size, **config.model_kwargs()},
        "params": best.num_parameters(),
        "train_loss": progress.last_train_loss,
        "val_loss": round(val_loss, 5),
        "val_bpc": round(bits_per_char(val_loss), 5),
        "test_loss": round(test_loss, 5) if test_loss is not None else None,
        "test_bpc": round(bits_per_char(test_loss), 5) if test_loss is not None else None,
        "unigram_val_loss": round(baseline, 5),
        "loss_note": "nats/char; validation and test: the best model, each split read as one stream "
        "with the state carried; train: mean training loss of the last logged steps (dropout on)",
        "best_step": progress.best_step,
        "steps": progress.step,
        "chars_seen": progress.chars_seen,
        "epochs": round(progress.chars_seen / data.train_chars, 3) if data.train_chars else None,
        "train_seconds": round(progress.train_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "device": _describe_device(device),
        "world_size": ranks.world_size,
        "torch": torch.__version__,
        "data": {**data.description, **({"chars_outside_vocabulary": outside_vocabulary} if config.streaming else {})},
        "config": dataclasses.asdict(config),
        "command": command,
    }
    atomic_write_text(run.path / METRICS_NAME, json.dumps(metrics, indent=2) + "\n")
    run.plot_loss_curve()
    return metrics


def _describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {threads} thread{'s' if threads > 1 else ''})"
