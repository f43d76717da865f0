"""rnn_demo.serving.allocator: the malloc arena limit that app.py sets when it serves."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rnn_demo.serving import allocator

REPO_ROOT = Path(__file__).resolve().parent.parent

# Twelve threads allocate at once; glibc's malloc_stats() then prints one "Arena N:" block per arena.
ARENAS_USED = textwrap.dedent(
    """
    import ctypes, sys, threading
    from rnn_demo.serving.allocator import limit_malloc_arenas
    if sys.argv[1] != "default":
        print(limit_malloc_arenas(int(sys.argv[1])))
    together = threading.Barrier(12)
    def work():
        held = [ctypes.create_string_buffer(1000) for _ in range(100)]  # above pymalloc's sizes: malloc
        together.wait()
    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sys.stdout.flush()
    ctypes.CDLL(None).malloc_stats()
    """
)


def arenas_used(limit: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != allocator.ARENA_MAX_ENV}
    result = subprocess.run(
        [sys.executable, "-c", ARENAS_USED, limit],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip(), sum(line.startswith("Arena ") for line in result.stderr.splitlines())


@pytest.mark.skipif(allocator.glibc_version() is None, reason="glibc only")
def test_the_limit_caps_the_arenas_that_threads_get():
    assert arenas_used("default")[1] > 2  # glibc's default gives the threads arenas of their own
    assert arenas_used("2") == ("True", 2)
    assert arenas_used("1") == ("True", 1)


def test_the_environment_variable_wins(monkeypatch):
    monkeypatch.setenv(allocator.ARENA_MAX_ENV, "4")
    assert allocator.limit_malloc_arenas(2) is False


def test_other_c_libraries_are_left_alone(monkeypatch):
    def not_gnu(name):
        raise ValueError(f"unrecognized configuration name {name!r}")

    monkeypatch.delenv(allocator.ARENA_MAX_ENV, raising=False)
    monkeypatch.setattr(allocator.os, "confstr", not_gnu)
    assert allocator.glibc_version() is None
    assert allocator.limit_malloc_arenas(2) is False


@pytest.mark.parametrize("arenas", [0, -1, 1.5, True, "2"])
def test_a_bad_limit_is_refused(arenas):
    with pytest.raises(ValueError, match="arenas must be a whole number"):
        allocator.limit_malloc_arenas(arenas)
