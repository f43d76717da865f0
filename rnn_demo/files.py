"""Atomic file writes: a reader (or a run killed half-way) sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class WriteError(OSError):
    """A file could not be written (disk full, no permission, ...); the old file is untouched.

    ``str(error)`` is one sentence naming the path and the cause, e.g.
    ``Could not write runs/x/metrics.json: No space left on device (the disk is full)``.
    """

    def __init__(self, errno_: int | None, message: str, path: str | os.PathLike | None = None):
        super().__init__(errno_, message)
        self.path = None if path is None else Path(path)

    def __str__(self) -> str:  # OSError would prefix "[Errno 28] "
        return str(self.strerror)


# Causes worth a plain-words hint after the system's own message.
_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
    errno.EROFS: "the file system is read-only",
}


def describe_os_error(error: BaseException) -> str:
    """The cause of an OSError in words: the system's message, plus a hint for the common ones."""
    if isinstance(error, WriteError):
        return str(error)
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    hint = _HINTS.get(getattr(error, "errno", None))
    return f"{reason} ({hint})" if hint else reason


def write_error(path: str | os.PathLike, error: BaseException, action: str = "write") -> WriteError:
    """A WriteError naming ``path`` and the cause of ``error`` (returned as is if it is one already)."""
    if isinstance(error, WriteError):
        return error
    return WriteError(getattr(error, "errno", None), f"Could not {action} {path}: {describe_os_error(error)}", path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``.

    The temporary file is flushed to disk before the rename, and removed if the block fails.
    Any OSError (disk full, no permission, read-only file system), from the block or from the
    flush and rename, becomes a :class:`WriteError` naming ``path``; ``path`` then still holds
    its previous contents (or does not exist), and no temporary file is left behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise write_error(path, error) from error
    temporary = Path(name)
    try:
        os.close(handle)
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; give the file the usual permissions
        yield temporary
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise write_error(path, error) from error
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def replace_files_from(source_dir: Path, target_dir: Path, order: list[str] | None = None) -> None:
    """Move every file of ``source_dir`` into ``target_dir`` (each move atomic), then remove ``source_dir``.

    ``source_dir`` is removed even when a move fails (the WriteError names the file); the files
    moved before it are the new ones, the others keep their previous contents.
    """
    try:
        names = sorted(p.name for p in source_dir.iterdir())
        if order:
            names = [n for n in order if n in names] + [n for n in names if n not in order]
        for name in names:
            try:
                with open(source_dir / name, "rb+") as file:
                    os.fsync(file.fileno())
                os.replace(source_dir / name, target_dir / name)
            except OSError as error:
                raise write_error(target_dir / name, error) from error
    finally:
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
    old folder or the whole new one (or, for an instant between two renames, absent). If the
    second rename fails, the old folder is put back and a WriteError names ``target``.
    """
    old = None
    try:
        if target.exists():
            old = target.with_name(f".{target.name}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(source, target)
    except OSError as error:
        if old is not None and old.exists() and not target.exists():
            with contextlib.suppress(OSError):
                os.replace(old, target)
        raise write_error(target, error, action="replace") from error
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
