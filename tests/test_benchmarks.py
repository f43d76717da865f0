"""The benchmark scripts run (in their --quick mode) and print their tables."""

import pytest

from benchmarks import rnn_vs_torch


def test_rnn_vs_torch_quick_prints_a_ratio_table(capsys):
    rnn_vs_torch.main(["--quick"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| hidden | ours fwd+bwd | torch fwd+bwd | ratio")
    row = lines[3].split("|")
    assert row[1].strip() == "32" and float(row[4]) > 0


def test_model_table_re_measures_the_shipped_models(capsys, trained_run, tmp_path, small_corpus):
    from benchmarks import model_table
    from rnn_demo.publish import export_to_zoo

    export_to_zoo(trained_run[0], tmp_path / "models")
    assert model_table.main(["--models-dir", str(tmp_path / "models"), "--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| model | parameters | val nats/char")
    assert lines[2].startswith("| lstm-h64 |") and lines[2].endswith("ok |")


def test_sampling_speed_quick_prints_a_row_per_model(capsys, trained_run, tmp_path):
    import shutil

    from benchmarks import sampling_speed

    shutil.copytree(trained_run[0], tmp_path / "models" / "lstm-h64")
    sampling_speed.main(["--quick", "--models-dir", str(tmp_path / "models")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith("| lstm-h64 |") and lines[3].count("|") == 9


@pytest.mark.slow
def test_startup_quick_times_both_servers(capsys):
    from benchmarks import startup

    startup.main(["--quick"])
    row = capsys.readouterr().out.splitlines()[-1].split("|")
    assert float(row[1].strip(" s")) > 0 and float(row[2].strip(" s")) > 0 and float(row[3]) > 0


@pytest.mark.slow
def test_many_users_quick_serves_concurrent_streams_and_prints_a_table(capsys):
    from benchmarks import many_users

    many_users.main(["--quick"])
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| streams |"))
    rows = [line.split("|") for line in lines[header + 2 : header + 4]]
    assert [row[1].strip() for row in rows] == ["1", "4"]
    assert all(float(row[2].replace(",", "")) > 0 for row in rows)
    assert lines[-1].startswith("batched-step limit:")
