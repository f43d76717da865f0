"""Disk-full and permission errors while writing: a clear message naming the path and the cause,
the previous file intact, no temporary file left behind.

Tests here run as root (chmod cannot take write permission away), so the failures are simulated
by replacing the system call at the boundary with one that raises the real OSError.
"""

import errno
import os
import shutil
import tempfile

import pytest

from rnn_demo import files
from rnn_demo.cli import publish as publish_cli
from rnn_demo.files import WriteError, atomic_path, atomic_write_text, replace_directory, replace_files_from
from rnn_demo.hub import publish
from rnn_demo.hub.publish import PublishError

CAUSES = [
    (errno.ENOSPC, "No space left on device (the disk is full)"),
    (errno.EACCES, "Permission denied (no permission to write there)"),
    (errno.EROFS, "Read-only file system (the file system is read-only)"),
]


def failing(code: int, only=None, original=None):
    """A stand-in for an os/shutil function that raises OSError(code) (for ``only(*args)`` calls, if given)."""

    def fake(*args, **kwargs):
        if only is None or only(*args):
            raise OSError(code, os.strerror(code))
        return original(*args, **kwargs)

    return fake


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


@pytest.mark.parametrize(("code", "cause"), CAUSES, ids=["ENOSPC", "EACCES", "EROFS"])
@pytest.mark.parametrize("where", ["write", "fsync", "rename"])
def test_a_failed_atomic_write_names_the_path_keeps_the_old_file_and_leaves_nothing(
    tmp_path, monkeypatch, code, cause, where
):
    target = tmp_path / "metrics.json"
    target.write_text("old", encoding="utf-8")
    if where == "fsync":
        monkeypatch.setattr(files.os, "fsync", failing(code))
    elif where == "rename":
        monkeypatch.setattr(files.os, "replace", failing(code))
    with pytest.raises(WriteError) as caught:
        with atomic_path(target) as temporary:
            if where == "write":
                raise OSError(code, os.strerror(code))
            temporary.write_text("new", encoding="utf-8")
    monkeypatch.undo()
    assert str(caught.value) == f"Could not write {target}: {cause}"
    assert caught.value.errno == code and caught.value.path == target
    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []


def test_no_room_for_the_temporary_file_is_the_same_clear_error(tmp_path, monkeypatch):
    target = tmp_path / "read-only" / "log.jsonl"
    monkeypatch.setattr(files.tempfile, "mkstemp", failing(errno.EACCES))
    with pytest.raises(WriteError, match=r"Could not write .*log.jsonl: Permission denied"):
        atomic_write_text(target, "x")
    assert not target.exists()


def test_a_read_only_folder_really_refuses_the_write(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod cannot take write permission away (see the simulated tests)")
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "a.txt").write_text("old", encoding="utf-8")
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="Permission denied"):
            atomic_write_text(folder / "a.txt", "new")
        assert (folder / "a.txt").read_text(encoding="utf-8") == "old"
    finally:
        folder.chmod(0o755)


def test_the_error_message_has_no_errno_prefix_and_stays_an_oserror(tmp_path, monkeypatch):
    monkeypatch.setattr(files.os, "replace", failing(errno.ENOSPC))
    with pytest.raises(OSError) as caught:
        atomic_write_text(tmp_path / "x.txt", "x")
    assert not str(caught.value).startswith("[Errno")


def test_replace_files_from_removes_the_staging_folder_when_a_move_fails(tmp_path, monkeypatch):
    target = tmp_path / "run"
    target.mkdir()
    for name in ("config.json", "model.safetensors"):
        (target / name).write_text(f"old {name}", encoding="utf-8")
    staging = tmp_path / "run" / ".best-model.abc.tmp"
    staging.mkdir()
    for name in ("config.json", "model.safetensors"):
        (staging / name).write_text(f"new {name}", encoding="utf-8")
    real_replace = os.replace
    monkeypatch.setattr(
        files.os,
        "replace",
        failing(errno.ENOSPC, only=lambda src, dst: str(dst).endswith("model.safetensors"), original=real_replace),
    )
    with pytest.raises(WriteError, match=r"Could not write .*model.safetensors: No space left on device"):
        replace_files_from(staging, target, order=["config.json", "model.safetensors"])
    monkeypatch.undo()
    assert (target / "model.safetensors").read_text(encoding="utf-8") == "old model.safetensors"
    assert leftovers(tmp_path) == []


def test_replace_directory_puts_the_old_folder_back_when_the_new_one_cannot_go_in(tmp_path, monkeypatch):
    target, source = tmp_path / "lstm-h64", tmp_path / ".lstm-h64.new.tmp"
    target.mkdir()
    (target / "config.json").write_text("old", encoding="utf-8")
    source.mkdir()
    (source / "config.json").write_text("new", encoding="utf-8")
    real_replace = os.replace
    monkeypatch.setattr(
        files.os, "replace", failing(errno.EROFS, only=lambda src, dst: src == source, original=real_replace)
    )
    with pytest.raises(WriteError, match=f"Could not replace {target}: Read-only file system"):
        replace_directory(source, target)
    monkeypatch.undo()
    assert (target / "config.json").read_text(encoding="utf-8") == "old"
    assert not (tmp_path / ".lstm-h64.old.tmp").exists()


# ---- the publish / export paths --------------------------------------------------------------------


def test_shipping_to_a_full_disk_keeps_the_shipped_model_and_leaves_no_staging_folder(
    trained_run, tmp_path, monkeypatch
):
    models = tmp_path / "models"
    target = publish.export_to_zoo(trained_run[0], models, "float32")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    real_copy = shutil.copy2
    monkeypatch.setattr(publish.shutil, "copy2", failing(errno.ENOSPC, only=lambda src, dst: True, original=real_copy))
    with pytest.raises(PublishError) as caught:
        publish.export_to_zoo(trained_run[0], models, "float16")
    monkeypatch.undo()
    assert str(caught.value) == f"Could not write {target}: No space left on device (the disk is full)"
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in models.iterdir()) == ["lstm-h64"]


def test_shipping_when_the_final_rename_is_refused_keeps_the_old_folder(trained_run, tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    target = publish.export_to_zoo(trained_run[0], models, "float32")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    real_replace = os.replace
    monkeypatch.setattr(
        files.os,
        "replace",
        failing(errno.EACCES, only=lambda src, dst: dst == target and ".old." not in str(src), original=real_replace),
    )
    code = publish_cli.main(["zoo", "--model-dir", str(trained_run[0]), "--models-dir", str(models)])
    monkeypatch.undo()
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"error: Could not replace {target}: Permission denied (no permission to write there)\n"
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in models.iterdir()) == ["lstm-h64"]


def test_a_model_push_that_cannot_stage_its_files_is_one_clear_error(trained_run, monkeypatch, capsys):
    monkeypatch.setattr(publish.shutil, "copy2", failing(errno.ENOSPC))
    code = publish_cli.main(["model", "--model-dir", str(trained_run[0]), "--repo-id", "me/m", "--dry-run"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Could not write ") and err.endswith("No space left on device (the disk is full)\n")
    assert err.count("\n") == 1
    assert not list(__import__("pathlib").Path(tempfile.gettempdir()).glob("rnn-demo-model-*"))


def test_a_space_bundle_that_cannot_be_written_is_one_clear_error(tmp_path, monkeypatch):
    source = tmp_path / "app.py"
    source.write_text("print('hi')\n", encoding="utf-8")
    monkeypatch.setattr(publish.shutil, "copy2", failing(errno.EROFS))
    with pytest.raises(PublishError, match=r"Could not write .*bundle: Read-only file system"):
        publish.build_space_bundle([publish.PlannedFile("app.py", source)], tmp_path / "bundle")
