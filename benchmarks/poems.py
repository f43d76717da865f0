"""Tang poems: how often the forms, the rhyme and the tones hold, in generated and in real poems.

    python -m benchmarks.poems            # 200 seeds per form and setting, the shipped poem model
    python -m benchmarks.poems --quick    # 5 seeds per form, the validation split's poems (a smoke test)

For each form (五绝 5x4, 七绝 7x4, 五律 5x8, 七律 7x8) the poem model writes a poem per seed with
``rhyme`` and ``tones`` off, and again with both on (temperature 0.8, no mood), through
``rnn_demo.serving.poems.poem_stream`` as ``/poem`` does. Each poem is read by
``rnn_demo.poetry.rules.check``: form compliance (line count and lengths), rhyme (the even lines
end in one 平水韵 group) and 格律 (二四六分明, 对, 粘, 平 rhyming ends). Beside them, the same rates for
the real poems of that form in the corpus (data/tang, every split). Then the share of generated
lines found verbatim in the training poems, and poems per second (one worker, one thread; the
time of the whole batch, the model's priming included).

Last, unless ``--no-api`` or ``--quick``: ``python app.py`` on loopback, and a ``gradio_client`` that asks ``/poem``
for 七律 (7x8) with rhyme and tones, one after another: the seconds a caller waits for a whole poem,
median, p95 and slowest (the target: at most 1 s).
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path

from benchmarks import PROJECT_ROOT
from rnn_demo.cli.arguments import existing_folder, whole_number
from rnn_demo.poetry.rhyme import rhyme_book
from rnn_demo.poetry.rules import FORMS, check, poem_lines
from rnn_demo.serving.poems import poem_stream
from rnn_demo.serving.worker import GenerationWorker
from rnn_demo.serving.zoo import ModelZoo

TANG = PROJECT_ROOT / "data" / "tang"
API_FORM = "7x8"  # the longest form, rhyme and tones on: the slowest poem a caller can ask for
API_TARGET_SECONDS = 1.0


def corpus_poems(folder: Path, splits=("train", "validation", "test")) -> list[str]:
    """The poems of the corpus, their couplets only (the title line dropped)."""
    poems = []
    for split in splits:
        with gzip.open(folder / f"{split}.txt.gz", "rt", encoding="utf-8") as file:
            for block in file.read().split("\n\n"):
                rows = block.strip("\n").split("\n")[1:]
                if rows:
                    poems.append("\n".join(rows))
    return poems


def rates(poems: list[str], form, book) -> tuple[int, float, float, float]:
    """(poems, form compliance, rhyme, 格律) of ``poems`` read as ``form``."""
    reports = [check(poem, form, book) for poem in poems]
    regular = [report for report in reports if report.form_ok]
    if not regular:
        return len(poems), 0.0, 0.0, 0.0
    return (
        len(poems),
        len(regular) / len(poems),
        sum(report.rhymes for report in regular) / len(regular),
        sum(report.tones_ok for report in regular) / len(regular),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=existing_folder, default=str(PROJECT_ROOT / "models"),
                        help="folder of model folders (its poem model is used)")
    parser.add_argument("--seeds", type=whole_number(1, 10_000), default=200, help="poems per form and setting")
    parser.add_argument("--quick", action="store_true", help="5 seeds per form")
    parser.add_argument("--no-api", action="store_true", help="skip the timing through python app.py")
    args = parser.parse_args(argv)
    seeds = 5 if args.quick else args.seeds
    book = rhyme_book()
    zoo, worker = ModelZoo(args.models_dir, poems=True), GenerationWorker()
    if not zoo.models():
        raise SystemExit(f"poems: no poem model in {args.models_dir}")
    # --quick reads the validation split alone, for the real poems and the lines to find (a smoke test)
    real = corpus_poems(TANG, ("validation",) if args.quick else ("train", "validation", "test"))
    train_lines = {line for poem in corpus_poems(TANG, ("validation",) if args.quick else ("train",)) for line in poem_lines(poem)}
    print(f"{zoo.models()[0].name}, {seeds} seeds per form and setting, temperature 0.8; real poems: data/tang")
    print("| form | setting | poems | form compliance | rhyme | 格律 | lines copied from training | poems/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, form in FORMS.items():
        for setting, constrained in (("free", False), ("rhyme + tones", True)):
            started = time.perf_counter()
            poems = [
                list(poem_stream(zoo, key, rhyme=constrained, tones=constrained, seed=seed, worker=worker))[-1]
                for seed in range(seeds)
            ]
            per_second = len(poems) / (time.perf_counter() - started)
            count, form_ok, rhyme, tones = rates(poems, form, book)
            lines = [line for poem in poems for line in poem_lines(poem)]
            copied = sum(line in train_lines for line in lines) / max(1, len(lines))
            print(f"| {key} {form.name} | {setting} | {count} | {form_ok:.1%} | {rhyme:.1%} | {tones:.1%} "
                  f"| {copied:.1%} | {per_second:.1f} |")
        count, _, rhyme, tones = rates([poem for poem in real if check(poem, form, book).form_ok], form, book)
        print(f"| {key} {form.name} | real poems | {count:,} | - | {rhyme:.1%} | {tones:.1%} | - | - |")
    if not (args.quick or args.no_api):
        print_api_table(min(seeds, 50), book)
    return 0


def print_api_table(seeds: int, book) -> None:
    """``seeds`` 七律 with rhyme and tones through ``python app.py``'s /poem, one after another, timed
    by a gradio_client on loopback after one warm-up poem; each is checked as it arrives."""
    from gradio_client import Client

    from benchmarks.server import free_port, start_app

    port = free_port()
    server = start_app(port, one_thread=False)  # as a user starts it, on the shipped models
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        client.predict(API_FORM, "", "", True, True, 0.8, 0, "", api_name="/poem")  # the warm-up
        seconds = []
        for seed in range(1, seeds + 1):
            started = time.perf_counter()
            poem = client.predict(API_FORM, "", "", True, True, 0.8, seed, "", api_name="/poem")
            seconds.append(time.perf_counter() - started)
            result = check(poem, FORMS[API_FORM], book)
            if not (result.form_ok and result.rhymes and result.tones_ok):
                raise SystemExit(f"poems: seed {seed} gave a poem that breaks its form, rhyme or tones:\n{poem}")
        seconds.sort()
        p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
        print()
        print(f"python app.py on loopback, gradio_client, {len(seconds)} poems one after another after one warm-up:")
        print("| request | median (s) | p95 (s) | slowest (s) | within 1 s |")
        print("|---|---:|---:|---:|---|")
        print(f"| /poem {API_FORM} 七律, rhyme + tones | {statistics.median(seconds):.3f} | {p95:.3f} "
              f"| {seconds[-1]:.3f} | {'yes' if seconds[-1] <= API_TARGET_SECONDS else 'NO'} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
