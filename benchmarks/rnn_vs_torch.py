"""Time the hand-written RNN against torch.nn.RNN, side by side in one process.

    python -m benchmarks.rnn_vs_torch            # seq 100, batch 64, 2 layers, hidden 256 and 512
    python -m benchmarks.rnn_vs_torch --quick    # a smoke run with tiny sizes

Prints a table of median forward+backward (and forward-only) times and the ratio ours/torch.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks import median_seconds
from rnn_demo.cli.arguments import whole_number
from rnn_demo.model.rnn import RNN


def measure(hidden_size: int, seq_len: int, batch_size: int, num_layers: int, repeats: int) -> dict:
    torch.manual_seed(0)
    ours = RNN(hidden_size, hidden_size, num_layers)
    theirs = torch.nn.RNN(hidden_size, hidden_size, num_layers)
    theirs.load_state_dict(ours.state_dict())
    input = torch.randn(seq_len, batch_size, hidden_size)
    row = {"hidden": hidden_size}
    for name, module in (("ours", ours), ("torch", theirs)):

        def forward_backward(module=module):
            output, h_n = module(input)
            (output.sum() + h_n.sum()).backward()

        def forward_only(module=module):
            with torch.no_grad():
                module(input)

        row[f"{name}_fwd_bwd"] = median_seconds(forward_backward, repeats, warmup=2)
        row[f"{name}_fwd"] = median_seconds(forward_only, repeats, warmup=2)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (a smoke test)")
    parser.add_argument("--seq-len", type=whole_number(1, 10_000), default=100, help="time steps")
    parser.add_argument("--batch-size", type=whole_number(1, 4096), default=64, help="sequences per batch")
    parser.add_argument("--num-layers", type=whole_number(1, 8), default=2, help="stacked layers")
    parser.add_argument("--hidden-sizes", type=whole_number(1, 4096), nargs="+", default=[256, 512], help="hidden sizes to time")
    parser.add_argument("--repeats", type=whole_number(1, 1000), default=15, help="timed repetitions (the median is reported)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seq_len, args.batch_size, args.hidden_sizes, args.repeats = 20, 8, [32], 3

    print(
        f"seq {args.seq_len}, batch {args.batch_size}, {args.num_layers} layers, float32, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats}"
    )
    print("| hidden | ours fwd+bwd | torch fwd+bwd | ratio | ours fwd | torch fwd | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for hidden_size in args.hidden_sizes:
        row = measure(hidden_size, args.seq_len, args.batch_size, args.num_layers, args.repeats)
        print(
            f"| {hidden_size} | {row['ours_fwd_bwd'] * 1e3:.1f} ms | {row['torch_fwd_bwd'] * 1e3:.1f} ms "
            f"| {row['ours_fwd_bwd'] / row['torch_fwd_bwd']:.2f} | {row['ours_fwd'] * 1e3:.1f} ms "
            f"| {row['torch_fwd'] * 1e3:.1f} ms | {row['ours_fwd'] / row['torch_fwd']:.2f} |"
        )


if __name__ == "__main__":
    main()
