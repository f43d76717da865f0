"""Train a character-level RNN: ``python -m train --help`` (``train/__main__.py`` calls this).

The same command runs alone or on every process that ``torchrun --nproc_per_node N -m train ...``
starts (DistributedDataParallel, :mod:`rnn_demo.training.distributed`).

Only flag parsing and error reporting live here; the work is done by :mod:`rnn_demo.training`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys

from rnn_demo.files import WriteError
from rnn_demo.hub.publish import PublishError, check_repo_id, push_model
from rnn_demo.model import CELLS, CheckpointError
from rnn_demo.training.data import DataLoadError
from rnn_demo.training.loop import RunFolder, TrainConfig, TrainingError, train
from rnn_demo.training.presets import PRESETS, preset_settings


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """One flag per TrainConfig field. Flags not given are absent from the parsed namespace, so
    that ``--resume`` can take them from the saved run instead of from the defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Train a character-level RNN language model. The --out folder always holds the best "
        "model so far (load it with CharRNN.from_pretrained), the state --resume needs, "
        "metrics.jsonl, loss_curve.png and, at the end, metrics.json.",
        argument_default=argparse.SUPPRESS,
    )
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        help = f"{field.metadata['help']} (default: {getattr(defaults, field.name)})"
        if field.type == "bool":
            parser.add_argument(_flag(field.name), action=argparse.BooleanOptionalAction, help=help)
            continue
        kind = {"int": int, "float": float, "str": str}[field.type.split(" ")[0]]
        options = {"type": kind, "help": help}
        if field.name == "cell":
            options["choices"] = CELLS
        if field.name == "device":
            options["choices"] = ("auto", "cpu", "cuda")
        parser.add_argument(_flag(field.name), **options)
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="start from the recipe of a shipped model (flags given next to it override it)")
    parser.add_argument("--out", default="runs/char-rnn", help="folder for the best model, state and logs (default: runs/char-rnn)")
    parser.add_argument("--resume", action="store_true", default=False,
                        help="continue the run saved in --out; flags not given are taken from that run")
    parser.add_argument("--quiet", action="store_true", default=False, help="no progress bar")
    parser.add_argument("--push-to-hub", metavar="USER/NAME", default=None,
                        help="at the end, push the best model (with metrics and a model card) to this Hub repo")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = vars(build_parser().parse_args(argv))
    out, resume, quiet, push_to = args.pop("out"), args.pop("resume"), args.pop("quiet"), args.pop("push_to_hub")
    preset = args.pop("preset")
    command = "python -m train " + shlex.join(argv)
    try:
        if push_to:
            check_repo_id(push_to)  # before hours of training, not after
        if resume and preset:
            raise TrainingError("--preset cannot be combined with --resume: a resumed run keeps its own settings")
        if resume:
            base = RunFolder(out).saved_config()
        else:
            base = TrainConfig(**preset_settings(preset)) if preset else TrainConfig()
        config = dataclasses.replace(base, **args)
        metrics = train(config, out, resume=resume, command=command, show_progress=not quiet)
    except (TrainingError, DataLoadError, CheckpointError, WriteError, PublishError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if not metrics:  # a rank other than 0 under torchrun: rank 0 reports and pushes
        return 0
    print(
        f"done: best val {metrics['val_loss']:.4f} nats/char ({metrics['val_bpc']:.3f} bits/char), "
        + (f"test {metrics['test_loss']:.4f}, " if metrics["test_loss"] is not None else "no test split, ")
        + f"{metrics['chars_seen']:,} chars in {metrics['train_seconds']:.0f}s; "
        f"model in {out}"
    )
    if push_to:
        try:
            print(push_model(out, push_to))
        except PublishError as error:
            print(f"error: {error} (the trained model is safe in {out}; push it later with "
                  f"python -m rnn_demo.publish model --model-dir {out} --repo-id {push_to})", file=sys.stderr)
            return 1
    return 0


def _stop_like_ctrl_c(signum, frame):
    raise KeyboardInterrupt


def run_from_command_line() -> None:
    """``python -m train``: run :func:`main` on the process's arguments and exit with its status.

    ``kill``, ``timeout`` and container stops send SIGTERM: it stops the run the way Ctrl-C does
    (the training state is saved, ``--resume`` continues). Runs started in the background of a
    script ignore SIGINT, so SIGTERM is the signal that reaches them.
    """
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    sys.exit(main())


if __name__ == "__main__":
    run_from_command_line()
