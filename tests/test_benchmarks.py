"""The benchmark scripts run (in their --quick mode) and print their tables."""

from benchmarks import rnn_vs_torch


def test_rnn_vs_torch_quick_prints_a_ratio_table(capsys):
    rnn_vs_torch.main(["--quick"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| hidden | ours fwd+bwd | torch fwd+bwd | ratio")
    row = lines[3].split("|")
    assert row[1].strip() == "32" and float(row[4]) > 0
