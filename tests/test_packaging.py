"""The repository as a library and as a clone: installable, its pins stated once, its public paths
stable, and nothing read from outside it."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO_ROOT

import rnn_demo

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def requirement_lines(path: Path) -> list[str]:
    """The requirements of a pip requirements file, without comments and ``-r`` includes."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            lines.append(line)
    return lines


def normalized(requirement: str) -> str:
    """``Gradio_Client == 2.7.2`` and ``gradio-client==2.7.2`` are the same requirement."""
    name, rest = re.match(r"([A-Za-z0-9_.-]+)(.*)", requirement.replace(" ", "")).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + rest


def test_pyproject_dependencies_are_the_requirements_a_space_installs():
    assert sorted(map(normalized, PYPROJECT["dependencies"])) == sorted(
        map(normalized, requirement_lines(REPO_ROOT / "requirements.txt"))
    )
    assert sorted(map(normalized, PYPROJECT["optional-dependencies"]["dev"])) == sorted(
        map(normalized, requirement_lines(REPO_ROOT / "requirements-dev.txt"))
    )
    assert "torch==2.13.0" in PYPROJECT["dependencies"]  # the CPU wheel; unpinned pulls a CUDA build


def test_the_package_version_is_stated_once():
    assert PYPROJECT["version"] == rnn_demo.__version__


def test_the_public_paths_are_the_moved_code():
    from rnn_demo import model, rnn, sample, sampling
    from rnn_demo.cli import sample as sample_cli
    from rnn_demo.generation import sampling as sampling_module
    from rnn_demo.model import char_rnn
    from rnn_demo.model import rnn as rnn_module

    assert rnn.RNN is rnn_module.RNN
    assert model.CharRNN is char_rnn.CharRNN and model.bits_per_char is char_rnn.bits_per_char
    assert sampling.generate is sampling_module.generate and sampling.stream is sampling_module.stream
    assert sample.main is sample_cli.main
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        model.Nothing  # noqa: B018


@pytest.mark.parametrize("module", ["train", "rnn_demo.sample", "rnn_demo.publish"])
def test_the_command_lines_answer_at_their_public_paths(module):
    finished = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith(f"usage: python -m {module}")


def test_nothing_in_the_repository_reads_files_beside_it():
    outside = ".." + "/shared"  # spelled apart so that this file does not match itself
    skipped = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "runs"}
    offenders = []
    for folder, folders, files in os.walk(REPO_ROOT):
        folders[:] = [name for name in folders if name not in skipped]
        for name in files:
            path = Path(folder) / name
            readable = path.suffix in (".py", ".md", ".json", ".txt", ".toml", ".cfg", ".sh") or name == "run"
            if readable and outside in path.read_text(encoding="utf-8", errors="replace"):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []


@pytest.mark.slow
def test_pip_installs_the_library_and_another_program_imports_it(tmp_path):
    """What ``pip install .`` puts in site-packages is the whole library: imported from another
    folder, with the repository off the path, it builds, trains a step of and samples a model."""
    pytest.importorskip("setuptools", minversion="77", reason="building offline needs setuptools 77+ (SPDX licenses) here")
    source = tmp_path / "source"  # what pip reads, copied: a build writes build/ and *.egg-info beside it
    shutil.copytree(REPO_ROOT / "rnn_demo", source / "rnn_demo", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    target = tmp_path / "site-packages"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    shipped = {p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "rnn_demo").rglob("*.py")}
    assert {p.relative_to(target) for p in (target / "rnn_demo").rglob("*.py")} == shipped
    program = (
        "import rnn_demo, torch\n"
        "from rnn_demo.model import CharRNN\n"
        "from rnn_demo.rnn import RNN\n"
        "from rnn_demo.sampling import generate\n"
        "model = CharRNN('abc ', cell='rnn', hidden_size=8, num_layers=1).eval()\n"
        "text = generate(model, 'ab', 20, seed=1)\n"
        "assert len(text) == 20 and set(text) <= set('abc '), text\n"
        "print(rnn_demo.__file__)\n"
    )
    elsewhere = tmp_path / "another-program"
    elsewhere.mkdir()
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment["PYTHONPATH"] = str(target)
    finished = subprocess.run(
        [sys.executable, "-c", program], cwd=elsewhere, env=environment, capture_output=True, text=True, timeout=600, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.strip() == str(target / "rnn_demo" / "__init__.py")


def test_the_readme_names_only_paths_that_exist_and_every_subpackage():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:rnn_demo|models|data|docs|benchmarks|tests|train)/[\w./-]*|app\.py)`", readme))
    named = {path for path in named if "<" not in path and "*" not in path}
    assert named, "the README names no paths"
    assert sorted(path for path in named if not (REPO_ROOT / path).exists()) == []
    subpackages = sorted(p.parent.name for p in (REPO_ROOT / "rnn_demo").glob("*/__init__.py"))
    assert [name for name in subpackages if f"rnn_demo/{name}/" not in readme] == []
