"""Atomic file writes: a reader (or a run killed half-way) sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class WriteError(OSError):
    """A file could not be written (disk full, no permission, ...); the old file is untouched."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``.

    The temporary file is flushed to disk before the rename, and removed if the block fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    os.chmod(temporary, 0o644)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield temporary
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise WriteError(error.errno, f"Could not write {path}: {error.strerror or error}") from error
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def replace_files_from(source_dir: Path, target_dir: Path, order: list[str] | None = None) -> None:
    """Move every file of ``source_dir`` into ``target_dir`` (each move atomic), then remove ``source_dir``."""
    names = sorted(p.name for p in source_dir.iterdir())
    if order:
        names = [n for n in order if n in names] + [n for n in names if n not in order]
    for name in names:
        with open(source_dir / name, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(source_dir / name, target_dir / name)
    shutil.rmtree(source_dir, ignore_errors=True)


def remove_stale_temporaries(directory: Path) -> None:
    """Delete temporaries a killed run left behind (names start with '.' and end with '.tmp')."""
    if not directory.is_dir():
        return
    for leftover in directory.glob(".*.tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def replace_directory(source: Path, target: Path) -> None:
    """Put the directory ``source`` at ``target``, replacing what was there.

    The old folder is first renamed aside, so at every moment ``target`` is either the whole
    old folder or the whole new one (or, for an instant between two renames, absent).
    """
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.tmp")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
