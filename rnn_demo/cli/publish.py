"""Share a trained model on the Hub, host the demo as a Space, ship a model in models/.

    python -m rnn_demo.publish model --model-dir runs/lstm-128 --repo-id USER/NAME [--private] [--dry-run]
    python -m rnn_demo.publish space --space-id USER/NAME [--model-repo USER/MODEL] [--private] [--dry-run]
    python -m rnn_demo.publish zoo --model-dir runs/lstm-128 [--models-dir models] [--dtype float16]

``--dry-run`` prints the planned repository, files and sizes and touches nothing. The token
comes from ``HF_TOKEN`` or the stored login (``hf auth login``); it is never printed.
Any failure (bad input, no token, no network, disk full) ends with one ``error: ...`` line and exit status 2.
The work is done by :mod:`rnn_demo.hub.publish`.
"""

from __future__ import annotations

import argparse
import sys

from rnn_demo.files import WriteError, describe_os_error
from rnn_demo.hub import publish
from rnn_demo.model import WEIGHTS_NAME, CheckpointError
from rnn_demo.training.data import DataLoadError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rnn_demo.publish", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    model = commands.add_parser("model", help="push a trained model to a Hub model repo")
    model.add_argument("--model-dir", required=True, help="a save_pretrained folder (e.g. a training --out folder)")
    model.add_argument("--repo-id", required=True, help="USER/NAME of the model repo (created if needed)")
    space = commands.add_parser("space", help="create/update a Space running the demo")
    space.add_argument("--space-id", required=True, help="USER/NAME of the Space (created if needed)")
    space.add_argument("--model-repo", help="load the models from this Hub repo instead of uploading models/")
    for sub in (model, space):
        sub.add_argument("--private", action="store_true", help="create the repo private")
        sub.add_argument("--dry-run", action="store_true", help="print the plan (repo, files, sizes) and touch nothing")
    zoo = commands.add_parser("zoo", help="ship a trained model in the repository's models/ folder")
    zoo.add_argument("--model-dir", required=True, help="a finished training --out folder")
    zoo.add_argument("--models-dir", default=str(publish.PROJECT_ROOT / publish.SPACE_MODELS_FOLDER), help="the zoo folder")
    zoo.add_argument("--dtype", default="float16", choices=publish.STORAGE_DTYPES, help="how the weights are stored")
    zoo.add_argument("--data", default=None, help="the text to re-measure validation loss on (default: the run's --data)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "model":
            report = publish.push_model(args.model_dir, args.repo_id, private=args.private, dry_run=args.dry_run)
        elif args.command == "zoo":
            target = publish.export_to_zoo(args.model_dir, args.models_dir, args.dtype, args.data)
            stored = publish.read_metrics(target / "metrics.json")
            report = (
                f"shipped {target} ({(target / WEIGHTS_NAME).stat().st_size / 1e6:.2f} MB of {args.dtype} weights); "
                f"validation loss {stored['val_loss']:.5f} -> {stored['val_loss_stored']:.5f} nats/char after storage"
            )
        else:
            report = publish.push_space(args.space_id, args.model_repo, private=args.private, dry_run=args.dry_run)
    except (publish.PublishError, DataLoadError, CheckpointError, WriteError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. no room for a staging folder in the temporary directory
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{describe_os_error(error)}", file=sys.stderr)
        return 2
    print(report)
    return 0


def run_from_command_line() -> None:
    """``python -m rnn_demo.publish``: run :func:`main` on the process's arguments and exit with its status."""
    sys.exit(main())


if __name__ == "__main__":
    run_from_command_line()
