"""Which engine computes generation: the compiled kernels once they are ready, the reference until then.

Two engines compute the same generation (``rnn_demo/generation/reference.py`` says how closely):

* ``reference``: NumPy (:mod:`rnn_demo.generation.reference`), always there;
* ``compiled``: numba (:mod:`rnn_demo.generation.kernels`), several times faster, once numba
  imports and the kernels are compiled (``python -m benchmarks.sampling_speed`` times both).

:func:`current` never waits: it gives the compiled engine when it is ready and the reference
engine until then, and its first call starts getting the compiled one ready in the background
(:func:`start_compiling`). A caller chooses an engine when a generation starts and keeps it to the
end, so no text changes engine halfway: the two engines compute the same step to float32
rounding, not bit for bit, and a text must not depend on when the kernels became ready.

Getting the kernels ready, in a thread of its own:

1. With numba's disk cache already holding them, they are loaded in this process (about a second).
2. Otherwise they are compiled in a separate process, ``python -m rnn_demo.generation.engines``,
   which writes them to the cache, and then loaded here. Compiling takes tens of seconds of
   Python; in a thread of this process it would hold the interpreter lock most of that time and
   starve the threads serving with the reference engine. A separate process also keeps a crash
   of the compiler (LLVM aborts the process it runs in) away from the server.
3. Where the cache cannot be written, they are compiled in this thread (nothing else would be
   faster later).

When numba does not import, or the kernels fail to compile or load, one line says why in the
``rnn_demo`` log and the reference engine serves from then on. ``$RNN_DEMO_ENGINE`` overrides
the choice: ``reference`` keeps the kernels off altogether; ``compiled`` makes :func:`current`
wait for them, so that every text is the compiled engine's (the reference engine then serves only
where they cannot be had).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from types import ModuleType

from rnn_demo import subprocesses
from rnn_demo.generation import reference

ENGINE_VARIABLE = "RNN_DEMO_ENGINE"  # "reference": never the kernels; "compiled": wait for them
# The compile process's time limit: compiling takes tens of seconds on a slow machine; a compiler
# that runs much longer is stuck, and the reference engine goes on serving.
COMPILE_TIMEOUT_SECONDS = 600

log = logging.getLogger("rnn_demo")
# What the log says when the compiled engine takes over, and (in the line of a warning) when it will
# not come: ``python -m benchmarks.startup --cold`` watches for them.
READY_MESSAGE = "rnn_demo: the fast kernels are ready; new generations run on the compiled engine"
NOT_COMING = "generation runs on the reference engine"


@dataclass(frozen=True)
class Engine:
    """An engine: a module with the entry points ``step``, ``sample``, ``sample_rows``,
    ``distribution`` and ``choose`` (the signatures of :mod:`rnn_demo.generation.reference`) and
    ``prepare``, which turns a model's :class:`~rnn_demo.generation.reference.Weights` into the
    weights those take."""

    name: str
    module: ModuleType

    @property
    def compiled(self) -> bool:
        return self.name == "compiled"


REFERENCE = Engine("reference", reference)

# Where the compiled engine stands: NOT_STARTED, then COMPILING (or LOADING), then READY, or one
# of OFF (by $RNN_DEMO_ENGINE), UNAVAILABLE (numba does not import) and FAILED.
NOT_STARTED, LOADING, COMPILING, READY, OFF, UNAVAILABLE, FAILED = (
    "not started", "loading", "compiling", "ready", "off", "unavailable", "failed",
)

_lock = threading.Lock()
_ready = threading.Event()  # set once the compiled engine is ready or never will be
_state = NOT_STARTED
_reason = ""  # why it is unavailable, failed or off
_compiled: Engine | None = None


def state() -> tuple[str, str]:
    """Where the compiled engine stands (one of the states above) and, when it is not coming, why."""
    with _lock:
        return _state, _reason


def current() -> Engine:
    """The compiled engine if it is ready, else the reference engine; never waits (but with
    ``$RNN_DEMO_ENGINE=compiled``, see the module's doc). The first call starts getting the compiled
    one ready (:func:`start_compiling`)."""
    start_compiling()
    if _compiled is None and os.environ.get(ENGINE_VARIABLE) == "compiled":
        _ready.wait()
    return _compiled or REFERENCE


def wait_compiled(timeout: float | None = None) -> Engine | None:
    """The compiled engine, once it is ready (starting it if need be, waiting up to ``timeout``
    seconds); None when it did not come in time or never will (:func:`state` says why)."""
    start_compiling()
    _ready.wait(timeout)
    return _compiled


def note(engine: Engine) -> str:
    """What a status line says of a generation served by ``engine``: nothing for the compiled one,
    else why the reference engine serves."""
    if engine.compiled:
        return ""
    now, _ = state()
    if now in (NOT_STARTED, LOADING, COMPILING):
        return "fast kernels compiling, serving with the reference engine"
    if now == OFF:
        return f"serving with the reference engine (${ENGINE_VARIABLE}={os.environ.get(ENGINE_VARIABLE, '')})"
    if now == UNAVAILABLE:
        return "numba is not available, serving with the reference engine"
    if now == FAILED:
        return "fast kernels failed to compile, serving with the reference engine"
    return "serving with the reference engine"  # READY: this generation began before the switch


def start_compiling() -> None:
    """Get the compiled engine ready in a background thread (once per process; see the module's doc)."""
    global _state, _reason
    with _lock:
        if _state != NOT_STARTED:
            return
        choice = os.environ.get(ENGINE_VARIABLE, "")
        if choice not in ("", "reference", "compiled"):
            log.warning("rnn_demo: $%s=%r is neither 'reference' nor 'compiled': ignored", ENGINE_VARIABLE, choice)
        if choice == "reference":
            _state, _reason = OFF, f"${ENGINE_VARIABLE} is {choice!r}"
            _ready.set()
            return
        _state = LOADING
    threading.Thread(target=_get_ready, name="compile-kernels", daemon=True).start()


def _settle(new_state: str, reason: str = "", engine: Engine | None = None) -> None:
    global _state, _reason, _compiled
    with _lock:
        _state, _reason, _compiled = new_state, reason, engine
    if new_state in (UNAVAILABLE, FAILED):
        what = "numba is not available" if new_state == UNAVAILABLE else "the fast kernels failed to compile"
        log.warning("rnn_demo: %s (%s); %s", what, reason, NOT_COMING)
    elif new_state == READY:
        log.info(READY_MESSAGE)
    _ready.set()


def _set_state(new_state: str) -> None:
    global _state
    with _lock:
        _state = new_state


def _get_ready() -> None:
    try:
        from rnn_demo.generation import kernels
    except Exception as error:  # noqa: BLE001 - ImportError, or numba's own errors on import
        _settle(UNAVAILABLE, f"import numba: {_one_line(error)}")
        return
    try:
        if kernels.CACHED and not _cached(kernels):
            _set_state(COMPILING)
            log.info("rnn_demo: compiling the fast kernels in the background; the reference engine serves meanwhile")
            failure = _compile_elsewhere()
            if failure:
                _settle(FAILED, failure)
                return
        elif not kernels.CACHED:
            _set_state(COMPILING)
        kernels.warm_up()  # loads from the cache (or, where there is none, compiles here)
    except Exception as error:  # noqa: BLE001 - numba's and LLVM's errors: the reference engine serves
        _settle(FAILED, _one_line(error))
        return
    _settle(READY, engine=Engine("compiled", kernels))


def _cached(kernels: ModuleType) -> bool:
    """Whether numba's cache holds every entry point warm_up compiles, for this source (numba's
    own index files; a guess that is wrong only costs time: a miss is compiled here)."""
    try:
        return all(function._cache._cache_file._load_index() for function in kernels.ENTRY_POINTS)
    except Exception:  # noqa: BLE001 - numba's internals moved: assume it is not cached
        return False


def _compile_elsewhere() -> str:
    """Compile the kernels into numba's cache in another process; what went wrong, or ""."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "rnn_demo.generation.engines"],
            env=subprocesses.environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the compile process: {_one_line(error)}"
    if result.returncode == 0:
        return ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    said = lines[-1].strip() if lines else ""
    if result.returncode < 0:
        return f"the compile process was killed by signal {-result.returncode}" + (f": {said}" if said else "")
    return said or f"the compile process exited with code {result.returncode}"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def main() -> None:
    """Compile every kernel into numba's disk cache (what :func:`_compile_elsewhere` runs). On
    failure the last line of stderr says why, and the exit code is 1. It runs at the lowest CPU
    priority: it is background work, and the server (serving with the reference engine meanwhile)
    comes first."""
    if hasattr(os, "nice"):
        os.nice(19)
    try:
        from rnn_demo.generation import kernels

        kernels.warm_up()
    except Exception as error:  # noqa: BLE001 - reported to the parent in one line
        print(_one_line(error), file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"cached": kernels.CACHED}))


if __name__ == "__main__":
    main()
