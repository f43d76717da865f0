"""Train a character-level RNN: ``python -m train --help``.

Only flag parsing and error reporting live here; the work is done by ``rnn_demo.training``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from rnn_demo.data import DataLoadError
from rnn_demo.files import WriteError
from rnn_demo.model import CELLS, CheckpointError
from rnn_demo.training import TrainConfig, TrainingError, train

def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Train a character-level RNN language model. The --out folder always holds the best "
        "model so far (load it with CharRNN.from_pretrained), the state --resume needs, "
        "metrics.jsonl, loss_curve.png and, at the end, metrics.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        default = getattr(defaults, field.name)
        if field.name == "tie_weights":
            parser.add_argument(_flag(field.name), action="store_true", help=field.metadata["help"])
            continue
        kind = {"int": int, "float": float, "str": str}[field.type.split(" ")[0]]
        options = {"type": kind, "default": default, "help": field.metadata["help"]}
        if field.name == "cell":
            options["choices"] = CELLS
        if field.name == "device":
            options["choices"] = ("auto", "cpu", "cuda")
        parser.add_argument(_flag(field.name), **options)
    parser.add_argument("--out", default="runs/char-rnn", help="folder for the best model, state and logs")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    command = "python -m train " + shlex.join(argv)
    try:
        metrics = train(config, args.out, resume=args.resume, command=command, show_progress=not args.quiet)
    except (TrainingError, DataLoadError, CheckpointError, WriteError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(
        f"done: best val {metrics['val_loss']:.4f} nats/char ({metrics['val_bpc']:.3f} bits/char), "
        f"test {metrics['test_loss']:.4f}, {metrics['chars_seen']:,} chars in {metrics['train_seconds']:.0f}s; "
        f"model in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
