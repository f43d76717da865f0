"""Benchmarks: scripts that print tables (run with python -m benchmarks.<name>; docs/benchmarks.md
holds what they print)."""

import functools
import statistics
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The corpus the repository ships (data/README.md): what the training benchmarks read by default.
SHIPPED_TEXT = PROJECT_ROOT / "data" / "tinyshakespeare.txt"


@functools.cache
def use_one_blas_thread() -> None:
    """Run NumPy's BLAS (OpenBLAS) on one thread, for the whole process, as the benchmarks time
    NumPy's products against the engine's compiled ones (which are single-threaded), one thread
    each. torch's own threads are not touched."""
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().select(internal_api="openblas").limit(limits=1)


def text_model_folders(models_dir) -> list[Path]:
    """The folders of the text models in ``models_dir`` (the ones the app serves as sizes; not its poem
    models), ordered by cell and hidden size."""
    from rnn_demo.serving.zoo import ModelZoo

    return [info.path for info in ModelZoo(models_dir).models()]


def median_seconds(function, repeats: int, warmup: int = 1) -> float:
    """The median wall time of ``repeats`` calls of ``function``, after ``warmup`` calls not timed."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
