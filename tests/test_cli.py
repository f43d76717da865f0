"""Every command-line tool refuses bad input with one clear ``error: ...`` line and exit status 2.

The CLIs run in-process (``main([...])``) with their output captured; one run as a subprocess
checks the real exit status and that no traceback is printed.
"""

import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from benchmarks import model_table, rnn_vs_torch, sampling_speed, startup
from rnn_demo.cli import publish as publish_cli
from rnn_demo.cli import sample


def run(main, argv, capsys):
    """(exit status, stdout, stderr) of ``main(argv)``; argparse's SystemExit counts as a status."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code, err, message):
    assert code == 2
    lines = err.strip().splitlines()
    errors = [line for line in lines if "error: " in line]
    assert len(errors) == 1, err
    assert errors == [lines[-1]]  # argparse prints its usage first, then the error
    assert message in errors[0]
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def model_dir(trained_run):
    return str(trained_run[0])


SAMPLE_BAD = [
    (["--temperature", "nan"], "argument --temperature: must be a finite number between 0 and 100, got 'nan'"),
    (["--temperature", "inf"], "--temperature: must be a finite number"),
    (["--temperature", "-0.5"], "--temperature: must be a finite number"),
    (["--temperature", "1e308"], "--temperature: must be a finite number between 0 and 100"),
    (["--max-new-chars", "-1"], "--max-new-chars: must be a whole number between 0 and 1,000,000, got '-1'"),
    (["--max-new-chars", "99999999999999"], "--max-new-chars: must be a whole number between 0 and 1,000,000"),
    (["--max-new-chars", "1.5"], "--max-new-chars: must be a whole number"),
    (["--max-new-chars", "ten"], "--max-new-chars: must be a whole number"),
    (["--top-k", "-3"], "--top-k: must be a whole number at least 0"),
    (["--top-p", "0"], "--top-p: must be a finite number above 0 and at most 1"),
    (["--top-p", "1.5"], "--top-p: must be a finite number above 0 and at most 1"),
    (["--top-p", "nan"], "--top-p: must be a finite number"),
    (["--seed", "-2"], "--seed: must be a whole number between 0 and"),
    (["--seed", str(2**64)], "--seed: must be a whole number between 0 and"),
]


@pytest.mark.parametrize(("extra", "message"), SAMPLE_BAD, ids=[" ".join(a) for a, _ in SAMPLE_BAD])
def test_sample_refuses_bad_numbers(model_dir, capsys, extra, message):
    code, out, err = run(sample.main, ["--model", model_dir, *extra], capsys)
    assert_one_error_line(code, err, message)
    assert out == ""


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no/such/folder", "error: --model no/such/folder: no such model folder (and not a Hub repo id USER/NAME)"),
        (str(REPO_ROOT / "README.md"), "is a file; give the model folder"),
        (str(REPO_ROOT / "docs"), "is not a model folder: it has no config.json"),
        ("nobody/offline-repo", "Could not load 'nobody/offline-repo'"),  # offline: the Hub is not reached
    ],
)
def test_sample_refuses_a_missing_or_wrong_model(capsys, model, message):
    code, out, err = run(sample.main, ["--model", model, "--max-new-chars", "5"], capsys)
    assert_one_error_line(code, err, message)
    assert err.startswith("error: ")


def test_sample_refuses_a_prompt_over_its_cap(model_dir, capsys):
    prompt = "a" * (sample.MAX_PROMPT_CHARS + 1)
    code, _, err = run(sample.main, ["--model", model_dir, "--prompt", prompt], capsys)
    assert_one_error_line(code, err, "the limit is 1,000,000")


@pytest.mark.parametrize("prompt", ["", "\x00\x07\x1b[31m", "😀 王 שלום \udcff", "ROMEO:"])
def test_sample_accepts_any_text_as_a_prompt(model_dir, capsys, prompt):
    """An empty prompt starts a paragraph; unknown characters are skipped with a note."""
    code, out, _ = run(
        sample.main, ["--model", model_dir, "--prompt", prompt, "--max-new-chars", "7", "--seed", "1"], capsys
    )
    assert code == 0
    shown = prompt.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate prints as \udcff
    assert out.startswith(shown) and len(out) == len(shown) + 7 + 1


def test_sample_as_a_process_exits_2_without_a_traceback():
    finished = subprocess.run(
        [sys.executable, "-m", "rnn_demo.sample", "--model", "models/lstm-h64", "--temperature", "nan"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2
    assert (
        finished.stderr.strip()
        .splitlines()[-1]
        .endswith("--temperature: must be a finite number between 0 and 100, got 'nan'")
    )
    assert "Traceback" not in finished.stderr


def test_sample_stops_quietly_when_its_reader_goes_away():
    """`python -m rnn_demo.sample ... | head -c 10` ends with status 0 and no BrokenPipeError."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rnn_demo.sample", "--model", "models/lstm-h64", "--max-new-chars", "100000"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.read(10)
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0
    assert b"Traceback" not in err and b"BrokenPipe" not in err


PUBLISH_BAD = [
    (
        ["model", "--model-dir", "/no/such/run", "--repo-id", "me/m", "--dry-run"],
        "error: /no/such/run is not a model folder",
    ),
    (["model", "--model-dir", "{run}", "--repo-id", "not a repo", "--dry-run"], "is not a valid repo id"),
    (["model", "--model-dir", "{run}", "--repo-id", "me/m"], "No Hugging Face token"),
    (["space", "--space-id", "justaname", "--dry-run"], "'justaname' is not a valid repo id: use USER/NAME"),
    (["space", "--space-id", "me/s", "--model-repo", "a/b/c", "--dry-run"], "'a/b/c' is not a valid repo id"),
    (["zoo", "--model-dir", "/no/such/run", "--models-dir", "{tmp}"], "error: /no/such/run is not a model folder"),
    (["zoo", "--model-dir", "{run}", "--models-dir", "{tmp}", "--dtype", "int4"], "argument --dtype: invalid choice"),
    (
        ["zoo", "--model-dir", "{run}", "--models-dir", "{tmp}", "--data", "/no/such.txt"],
        "/no/such.txt is not a text file",
    ),
    (["launch"], "argument command: invalid choice"),
    ([], "the following arguments are required: command"),
]


@pytest.mark.parametrize(
    ("argv", "message"), PUBLISH_BAD, ids=[" ".join(a[:3]) + f"-{i}" for i, (a, _) in enumerate(PUBLISH_BAD)]
)
def test_publish_refuses_bad_input(model_dir, tmp_path, monkeypatch, capsys, argv, message):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    argv = [a.format(run=model_dir, tmp=tmp_path / "models") for a in argv]
    code, _, err = run(publish_cli.main, argv, capsys)
    assert_one_error_line(code, err, message)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_publish_zoo_refuses_a_run_whose_metrics_are_damaged(model_dir, tmp_path, capsys):
    import shutil

    damaged = tmp_path / "run"
    shutil.copytree(model_dir, damaged)
    (damaged / "metrics.json").write_text("{not json", encoding="utf-8")
    code, _, err = run(publish_cli.main, ["zoo", "--model-dir", str(damaged), "--models-dir", str(tmp_path / "m")], capsys)
    assert_one_error_line(code, err, f"{damaged / 'metrics.json'} is unreadable")
    (damaged / "metrics.json").write_text('{"val_loss": 1.5}', encoding="utf-8")
    code, _, err = run(publish_cli.main, ["zoo", "--model-dir", str(damaged), "--models-dir", str(tmp_path / "m")], capsys)
    assert_one_error_line(code, err, "lacks the run's config")


BENCHMARK_BAD = [
    (startup.main, ["--runs", "0"], "argument --runs: must be a whole number between 1 and 20, got '0'"),
    (startup.main, ["--runs", "1000000"], "argument --runs: must be a whole number between 1 and 20"),
    (sampling_speed.main, ["--models-dir", "/no/such/models"], "argument --models-dir: /no/such/models does not exist"),
    (sampling_speed.main, ["--chars", "-5"], "argument --chars: must be a whole number between 1 and 100,000"),
    (sampling_speed.main, ["--temperature", "0"], "argument --temperature: must be a finite number above 0"),
    (sampling_speed.main, ["--temperature", "nan"], "argument --temperature: must be a finite number above 0"),
    (rnn_vs_torch.main, ["--repeats", "0"], "argument --repeats: must be a whole number between 1 and 1,000"),
    (rnn_vs_torch.main, ["--hidden-sizes", "32", "1e9"], "argument --hidden-sizes: must be a whole number"),
    (rnn_vs_torch.main, ["--seq-len", "inf"], "argument --seq-len: must be a whole number"),
    (
        rnn_vs_torch.main,
        ["--batch-size", "99999999"],
        "argument --batch-size: must be a whole number between 1 and 4,096",
    ),
    (model_table.main, ["--models-dir", "/no/such/models"], "argument --models-dir: /no/such/models does not exist"),
]


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    BENCHMARK_BAD,
    ids=[f"{m.__module__.split('.')[-1]} {' '.join(a)}" for m, a, _ in BENCHMARK_BAD],
)
def test_benchmarks_refuse_bad_input_before_running(capsys, main, argv, message):
    code, out, err = run(main, argv, capsys)
    assert_one_error_line(code, err, message)
    assert out == ""


def test_model_table_refuses_missing_data_with_one_line(trained_run, tmp_path, capsys):
    import shutil

    shutil.copytree(trained_run[0], tmp_path / "models" / "lstm-h64")
    code, _, err = run(
        model_table.main, ["--models-dir", str(tmp_path / "models"), "--check", "--data", "/no/such.txt"], capsys
    )
    assert_one_error_line(code, err, "/no/such.txt is not a text file")
