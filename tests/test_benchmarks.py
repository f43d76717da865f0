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
    from rnn_demo.hub.publish import export_to_zoo

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
    assert lines[1].startswith("| model | engine chars/s | naive chars/s | engine / naive | floor chars/s")
    cells = [cell.strip() for cell in lines[3].split("|")[1:-1]]
    assert cells[0] == "lstm-h64" and len(cells) == 8 and all(float(c.rstrip("x").replace(",", "")) > 0 for c in cells[1:])


@pytest.mark.slow
def test_startup_cold_times_the_first_characters_of_a_fresh_start(capsys):
    from benchmarks import startup

    startup.main(["--cold", "--models", "lstm-h64"])
    row = [cell.strip(" s") for cell in capsys.readouterr().out.splitlines()[-1].split("|")[1:-1]]
    assert row[0] == "lstm-h64" and all(float(value) > 0 for value in row[1:])


@pytest.mark.slow
def test_startup_quick_times_both_servers(capsys):
    from benchmarks import startup

    startup.main(["--quick"])
    row = capsys.readouterr().out.splitlines()[-1].split("|")
    assert float(row[1].strip(" s")) > 0 and float(row[2].strip(" s")) > 0 and float(row[3]) > 0


@pytest.mark.slow
def test_load_quick_sends_every_kind_of_request_and_reports_no_surprises(capsys):
    from benchmarks import load

    assert load.main(["--quick"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1] == "| kind | requests | as expected | unexpected |"
    rows = {line.split("|")[1].strip(): line.split("|")[2:5] for line in lines[3:6]}
    assert set(rows) == {"good", "unusual text", "bad"}
    for requests, as_expected, unexpected in rows.values():
        assert int(requests) > 0 and int(as_expected) == int(requests) and int(unexpected) == 0
    assert "lone surrogate" in out and "temperature NaN" in out
    assert "p50" in out and "p95" in out
    memory = next(line for line in lines if line.startswith("server memory (VmRSS"))
    assert [f"after {n} requests" in memory for n in (12, 24, 36, 48)] == [True] * 4  # --parts 4 by default


@pytest.mark.slow
def test_regularization_quick_runs_its_variants_as_real_trainings(capsys, small_corpus, tmp_path):
    from benchmarks import regularization

    assert regularization.main(["--quick", "--data", str(small_corpus), "--jobs", "3", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| variant | flags | best val nats/char | change vs full recipe")
    rows = [line.split("|") for line in lines[3:]]
    assert [r[1].strip() for r in rows] == ["full recipe", "without weight drop", "no regularization at all"]
    assert all(float(r[3]) > 0 and int(r[5]) == 4 for r in rows)
    assert rows[0][4].strip() == "" and rows[1][4].strip().startswith(("+", "-"))


def test_trainer_throughput_quick_compares_the_trainer_with_a_bare_loop(capsys, small_corpus):
    from benchmarks import trainer_throughput

    assert trainer_throughput.main(["--quick", "--data", str(small_corpus)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "| loop | chars/s | ratio to bare |"
    bare, ours = lines[3].split("|"), lines[4].split("|")
    assert bare[1].strip() == "bare nn.LSTM loop" and float(bare[2].replace(",", "")) > 0
    assert ours[1].strip().startswith("python -m train") and float(ours[3]) > 0


@pytest.mark.slow
def test_quality_per_second_quick_trains_both_recipes(capsys, small_corpus):
    from benchmarks import quality_per_second

    assert quality_per_second.main(["--quick", "--data", str(small_corpus)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| budget | ours val nats/char | tutorial val nats/char")
    row = lines[3].split("|")
    assert row[1].strip() == "2 s" and float(row[2]) > 0 and float(row[3]) > 0


def test_the_poem_recipes_are_the_shipped_preset_and_pytorch_books():
    # Training them on the poems takes minutes (python -m benchmarks.quality_per_second --poems); here
    # their flags are read as python -m train reads them.
    import dataclasses

    from benchmarks.quality_per_second import POEM_RECIPES
    from rnn_demo.cli.train import build_parser
    from rnn_demo.training.config import TrainConfig
    from rnn_demo.training.presets import preset_settings

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    ours, book = (
        TrainConfig(**{name: value for name, value in vars(build_parser().parse_args(flags)).items() if name in fields})
        for flags in POEM_RECIPES.values()
    )
    preset = TrainConfig(**preset_settings("tang-lstm-256"))
    recipe = ("cell", "hidden_size", "num_layers", "batch_size", "seq_len", "dropout", "lr", "warmup_steps", "min_lr_ratio")
    assert [getattr(ours, name) for name in recipe] == [getattr(preset, name) for name in recipe]
    assert (book.num_layers, book.embedding_dim, book.hidden_size, book.lr, book.seq_len, book.batch_size) == (
        2, 128, 256, 1e-3, 125, 128
    )
    assert (book.min_lr_ratio, book.warmup_steps, book.dropout, book.weight_decay) == (1, 0, 0, 0)


def test_one_command_runs_the_benchmarks_and_sums_up(capfd):
    from benchmarks.__main__ import PERFORMANCE, TRAINING
    from benchmarks.__main__ import main as run_benchmarks

    assert run_benchmarks(["--quick", "--only", "rnn_vs_torch"]) == 0
    out = capfd.readouterr().out
    assert "## rnn_vs_torch: -m benchmarks.rnn_vs_torch --quick" in out
    assert "| hidden | ours fwd+bwd" in out and "| rnn_vs_torch | 0 |" in out
    with pytest.raises(SystemExit):
        run_benchmarks(["--only", "no_such_benchmark"])
    assert "unknown benchmark(s) no_such_benchmark" in capfd.readouterr().err
    import importlib.util

    for name, _, _ in PERFORMANCE + TRAINING:  # every listed benchmark exists
        assert importlib.util.find_spec(f"benchmarks.{name}") is not None, name


@pytest.mark.slow
def test_many_users_quick_serves_concurrent_streams_and_prints_a_table(capsys):
    from benchmarks import many_users

    many_users.main(["--quick"])
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| streams |"))
    rows = [line.split("|") for line in lines[header + 2 : header + 4]]
    assert [row[1].strip() for row in rows] == ["1", "4"]
    assert all(float(row[2].replace(",", "")) > 0 for row in rows)
    # /models asked meanwhile, "p50 / p95 s"
    assert all(float(row[-5].split("/")[1].rstrip(" s")) > 0 for row in rows if row[-5].strip() != "-")
    # The server's CPU, summed over both rows: CPU time is counted in clock ticks (10 ms).
    assert sum(float(row[-3].rstrip(" s")) for row in rows) > 0
    assert lines[-2].startswith("batched-step limit:") and lines[-1].startswith("the worker without Gradio")


def test_many_users_reports_the_apps_refusal_of_a_stream():
    # A refused job is done with no updates (gradio_client's iteration of it ends quietly); the
    # benchmark must say why.
    from benchmarks import many_users

    class RefusedJob:
        def done(self):
            return True

        def outputs(self):
            return []

        def exception(self):
            return RuntimeError("max_new_chars must be between 1 and 2,000, got 4,000.")

    class Client:
        def submit(self, **arguments):
            return RefusedJob()

    with pytest.raises(RuntimeError, match="2 of 2 streams failed: max_new_chars must be between"):
        many_users.run_streams(Client(), 2, {"max_new_chars": 4000}, first_seed=0)


def test_views_quick_times_explain_score_and_neurons_per_model(capsys, tmp_path):
    import shutil

    from benchmarks import PROJECT_ROOT, views

    shutil.copytree(PROJECT_ROOT / "models" / "rnn-h64", tmp_path / "models" / "rnn-h64")
    assert views.main(["--quick", "--models-dir", str(tmp_path / "models")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("text: the first 200 characters of the validation split; torch threads: ")
    assert lines[1].startswith("| model | parameters | explain 200 chars (s) | score 200 chars (s) | neurons 200 chars")
    assert len(lines) == 4
    cells = [cell.strip() for cell in lines[3].split("|")[1:-1]]
    assert cells[0] == "rnn-h64" and cells[1] == "25,025"
    assert all(float(seconds) > 0 for seconds in cells[2:5])
    assert cells[-1] in ("yes", "NO")


@pytest.mark.slow
def test_training_service_quick_times_generation_during_a_training_and_reads_memory(capsys):
    from benchmarks import training_service

    training_service.main(["--quick"])
    lines = capsys.readouterr().out.splitlines()
    header = lines.index("| server | p50 | p95 | max |")
    idle, busy = (line.split("|") for line in lines[header + 2 : header + 4])
    assert idle[1].strip() == "idle" and busy[1].strip().startswith("training")
    assert all(float(row[3].rstrip(" s")) > 0 for row in (idle, busy))
    readings = [line for line in lines if line.startswith("| after training")]
    assert len(readings) == 3 and all(float(line.split("|")[2].rstrip(" MiB")) > 0 for line in readings)


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")  # never beside the other torchrun runs (tests/test_distributed.py)
def test_distributed_training_quick_times_one_and_two_processes(capsys):
    from benchmarks import distributed_training

    assert distributed_training.main(["--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines.index("| processes | threads each | chars/s | speed-up | scaling efficiency |")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[header + 2 :]]
    assert [row[0] for row in rows][0] == "1" and rows[-1][0] == "2"
    assert all(float(row[2].replace(",", "")) > 0 for row in rows)
    assert rows[0][3] == "1.00" and float(rows[-1][4]) > 0


@pytest.mark.slow
def test_streaming_memory_quick_reads_both_paths(capsys):
    from benchmarks import streaming_memory

    assert streaming_memory.main(["--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| corpus |"))
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[header + 2 :]]
    assert [row[0] for row in rows] == ["1 MB", "2 MB"]
    for row in rows:
        assert float(row[1].rstrip(" MiB").replace(",", "")) > 100 and float(row[3].rstrip(" MiB").replace(",", "")) > 100


def test_poems_quick_reads_generated_and_real_poems(capsys, tmp_path):
    import json

    import torch

    from benchmarks import poems
    from rnn_demo.data.pingshui import DEFAULT_OUT
    from rnn_demo.model import CharRNN

    characters = sorted(json.loads((poems.PROJECT_ROOT / DEFAULT_OUT).read_text(encoding="utf-8")))[:3000]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CharRNN("".join(sorted(set(characters) | set("，。\n□无题"))), hidden_size=16, num_layers=1)
    model.save_pretrained(tmp_path / "tang-lstm-h16")
    metrics = {"params": model.num_parameters(), "data": {"source": "data/tang"}}
    (tmp_path / "tang-lstm-h16" / "metrics.json").write_text(json.dumps(metrics))
    assert poems.main(["--quick", "--models-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| form | setting | poems | form compliance | rhyme | 格律")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[3:]]
    assert [row[1] for row in rows] == ["free", "rhyme + tones", "real poems"] * 4
    for row in rows:
        if row[1] != "real poems":
            assert row[3] == "100.0%"  # the form holds by construction
        if row[1] == "rhyme + tones":
            assert row[4] == row[5] == "100.0%"
        if row[1] == "real poems":
            assert int(row[2].replace(",", "")) > 50 and 50 < float(row[4].rstrip("%")) < 100
