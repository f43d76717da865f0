"""The C allocator's settings for a long-running server (glibc's malloc; elsewhere nothing is done).

glibc gives threads their own malloc arenas, up to 8 per CPU core, so that they do not wait for
one another's locks. Every arena keeps what its threads freed for their later requests, and
memory freed in one arena cannot serve another, so a server whose many threads take turns
(Gradio's 40 worker threads, the batching threads, uvicorn's event loop) holds a little free
memory in each of them. Under load that adds up to much of the resident size; with two arenas
the same free memory is shared. The CPU-heavy work here holds the GIL or runs in torch, so
threads hardly contend for the two arenas' locks. ``python -m benchmarks.load --parts 5`` reads
the server's memory as the requests go (docs/benchmarks.md, "Load test").
"""

from __future__ import annotations

import ctypes
import os

ARENA_MAX_ENV = "MALLOC_ARENA_MAX"  # glibc reads this variable when the process starts
M_ARENA_MAX = -8  # mallopt's parameter number for the arena limit (glibc <malloc.h>)


def glibc_version() -> str | None:
    """The running C library's version when it is glibc (e.g. "2.36"), else None."""
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    except (ValueError, OSError):  # not a GNU system
        return None
    return version if name == "glibc" else None


def limit_malloc_arenas(arenas: int) -> bool:
    """Ask glibc's malloc to use at most ``arenas`` arenas from now on; True when it was set.

    Call it early, before the process has many threads: arenas that exist already stay. Nothing
    is changed (False) with another C library, or when $MALLOC_ARENA_MAX is set: glibc already
    follows that, and whoever set it chose.
    """
    if isinstance(arenas, bool) or not isinstance(arenas, int) or arenas < 1:
        raise ValueError(f"arenas must be a whole number of at least 1, got {arenas!r}")
    if os.environ.get(ARENA_MAX_ENV) or glibc_version() is None:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_ARENA_MAX, arenas) == 1
