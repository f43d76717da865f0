"""Print a sample from a trained model: ``python -m rnn_demo.sample --model DIR --prompt ...``."""

from __future__ import annotations

import argparse
import sys

from rnn_demo.model import CharRNN, CheckpointError
from rnn_demo.sampling import encode_prompt, stream


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rnn_demo.sample",
        description="Continue a prompt with a trained character-level RNN.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model folder (save_pretrained / --out of training) or Hub repo id")
    parser.add_argument("--prompt", default="", help="text to continue (characters the model does not know are skipped)")
    parser.add_argument("--max-new-chars", type=int, default=500, help="characters to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy, 1 = the model's distribution")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k most likely characters (0 = all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (1 = off)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    sys.stdout.write(args.prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
