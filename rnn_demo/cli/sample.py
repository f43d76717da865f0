"""Print a sample from a trained model: ``python -m rnn_demo.sample --model DIR --prompt ...``.

A bad argument (NaN, a negative or huge number, a model folder that does not exist, ...) ends
with one ``error: ...`` line and exit status 2, before the model is loaded.
"""

from __future__ import annotations

import argparse
import io
import os
import sys

from rnn_demo.cli.arguments import finite_number, whole_number
from rnn_demo.generation.sampling import MAX_SEED, encode_prompt, stream
from rnn_demo.model import CharRNN, CheckpointError
from rnn_demo.serving.zoo import REPO_ID_PATTERN

MAX_NEW_CHARS = 1_000_000  # a generous cap; a typo such as 10**11 would otherwise run for days
MAX_TEMPERATURE = 100.0  # far past uniform already; a cap keeps "1e308" from looking meaningful
MAX_PROMPT_CHARS = 1_000_000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rnn_demo.sample",
        description="Continue a prompt with a trained character-level RNN.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model", required=True, help="model folder (save_pretrained / --out of training) or Hub repo id"
    )
    parser.add_argument(
        "--prompt", default="", help="text to continue (characters the model does not know are skipped)"
    )
    parser.add_argument(
        "--max-new-chars", type=whole_number(0, MAX_NEW_CHARS), default=500, help="characters to generate"
    )
    parser.add_argument(
        "--temperature",
        type=finite_number(0, MAX_TEMPERATURE),
        default=0.8,
        help="0 = greedy, 1 = the model's distribution",
    )
    parser.add_argument(
        "--top-k", type=whole_number(0), default=0, help="sample among the k most likely characters (0 = all)"
    )
    parser.add_argument(
        "--top-p",
        type=finite_number(0, 1, above_minimum=True),
        default=1.0,
        help="nucleus sampling threshold (1 = off)",
    )
    parser.add_argument("--seed", type=whole_number(0, MAX_SEED), default=None, help="random seed (default: random)")
    return parser


def check_model_argument(model: str) -> str | None:
    """Why ``--model`` cannot name a model (None when it may: an existing folder or a Hub repo id)."""
    if os.path.isdir(model):
        return None
    if os.path.exists(model):
        return f"--model {model} is a file; give the model folder that holds config.json and model.safetensors"
    if not REPO_ID_PATTERN.match(model):
        return f"--model {model}: no such model folder (and not a Hub repo id USER/NAME)"
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse printed its usage and error: return its status (2, or 0 for --help)
        return exit_.code if isinstance(exit_.code, int) else 2
    problem = check_model_argument(args.model)
    if problem is None and len(args.prompt) > MAX_PROMPT_CHARS:
        problem = f"--prompt is {len(args.prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        model = CharRNN.from_pretrained(args.model)
        pieces = stream(
            model,
            args.prompt,
            args.max_new_chars,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed,
        )
    except (CheckpointError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    skipped = encode_prompt(model, args.prompt).skipped
    if skipped:
        print(f"note: skipped characters the model does not know: {skipped!r}", file=sys.stderr)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A lone surrogate (undecodable bytes in argv) is printed as \udcff instead of failing.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        sys.stdout.write(args.prompt)
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly. Point stdout at /dev/null so that
        # Python's flush at exit does not raise again (the recipe in Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


def run_from_command_line() -> None:
    """``python -m rnn_demo.sample``: run :func:`main` on the process's arguments and exit with its status."""
    sys.exit(main())


if __name__ == "__main__":
    run_from_command_line()
