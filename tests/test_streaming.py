"""--streaming: corpora read through datasets streaming, sharded per rank, never whole in memory."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from safetensors.torch import load_file

from rnn_demo.model import CharRNN
from rnn_demo.model.tokenizer import CharTokenizer
from rnn_demo.training.config import TrainConfig, TrainingError
from rnn_demo.training.data import DataLoadError
from rnn_demo.training.distributed import Ranks
from rnn_demo.training.loop import RunFolder, train
from rnn_demo.training.streaming import CharacterTable, StreamedBatches, StreamedCorpus


def quiet(message):
    pass


@pytest.fixture(scope="module")
def lines(shakespeare_path):
    """The first 2,000 lines of tiny shakespeare, each with its newline."""
    return shakespeare_path.read_text(encoding="utf-8").splitlines(keepends=True)[:2000]


@pytest.fixture
def corpus_file(tmp_path, lines):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def first_epoch(corpus: StreamedCorpus) -> list[str]:
    """One pass over a rank's share: the rows up to where the share starts again."""
    total = sum(1 for _ in corpus._texts(corpus.train))
    return list(itertools.islice(corpus.rows(), total))


def test_the_text_streams_with_its_newlines_and_the_validation_is_set_aside(corpus_file, lines):
    corpus = StreamedCorpus(str(corpus_file), Ranks(), val_chars=1000)
    text = "".join(lines)
    assert corpus.validation_text == text[:1000]
    assert corpus.validation_from == "the first 1,000 characters of the corpus, set aside"
    rows_set_aside = corpus.set_aside_rows
    assert len("".join(lines[: rows_set_aside - 1])) < 1000 <= len("".join(lines[:rows_set_aside]))
    # training starts after the rows the validation text was cut from, and the newlines are kept
    share = corpus.rows()
    assert [next(share) for _ in range(5)] == lines[rows_set_aside : rows_set_aside + 5]
    assert corpus.test_text is None  # no test split: no test loss
    assert corpus.tokenizer.vocab == CharTokenizer.from_text(text).vocab


@pytest.mark.parametrize("world_size", [2, 3])
def test_one_file_is_shared_one_row_in_n_and_no_rank_trains_on_the_validation(corpus_file, lines, world_size):
    shares = [first_epoch(StreamedCorpus(str(corpus_file), Ranks(rank, world_size), val_chars=1000))
              for rank in range(world_size)]
    corpus = StreamedCorpus(str(corpus_file), Ranks(0, world_size), val_chars=1000)
    assert corpus.strategy == "examples"
    # every row after the set-aside ones goes to exactly one rank, in the corpus's order
    for rank, share in enumerate(shares):
        expected = [row for index, row in enumerate(lines) if index % world_size == rank and index >= corpus.set_aside_rows]
        assert share[: len(expected)] == expected


def test_files_are_dealt_whole_when_they_divide_among_the_ranks(tmp_path, lines):
    folder = tmp_path / "two-files"
    folder.mkdir()
    (folder / "a.txt").write_text("".join(lines[:1000]), encoding="utf-8")
    (folder / "b.txt").write_text("".join(lines[1000:]), encoding="utf-8")
    rank_0 = StreamedCorpus(str(folder), Ranks(0, 2), val_chars=500)
    rank_1 = StreamedCorpus(str(folder), Ranks(1, 2), val_chars=500)
    assert rank_0.strategy == rank_1.strategy == "shards"
    assert rank_0.validation_text == "".join(lines)[:500]
    share_0, share_1 = rank_0.rows(), rank_1.rows()
    assert [next(share_0) for _ in range(1000 - rank_0.set_aside_rows)] == lines[rank_0.set_aside_rows : 1000]
    assert [next(share_1) for _ in range(1000)] == lines[1000:]  # rank 1's file has nothing set aside


def test_a_validation_split_is_used_when_the_dataset_has_one(tmp_path, lines):
    folder = tmp_path / "splits"
    folder.mkdir()
    (folder / "train.txt").write_text("".join(lines[:1500]), encoding="utf-8")
    (folder / "validation.txt").write_text("".join(lines[1500:1800]), encoding="utf-8")
    (folder / "test.txt").write_text("".join(lines[1800:]), encoding="utf-8")
    corpus = StreamedCorpus(str(folder), Ranks(), val_chars=2000)
    assert corpus.validation_from == "the validation split"
    assert corpus.validation_text == "".join(lines[1500:1800])[:2000]
    assert corpus.test_text == "".join(lines[1800:])[:2000]
    assert next(corpus.rows()) == lines[0]  # nothing set aside from the training text


def test_batches_read_each_stream_on_and_deal_blocks_in_turn(corpus_file, lines):
    corpus = StreamedCorpus(str(corpus_file), Ranks(), val_chars=1000)
    table = corpus.table
    batches = StreamedBatches(corpus.rows(), table, streams=3, seq_len=10, block_chars=50)
    trained = "".join(lines[corpus.set_aside_rows :])
    ids, _ = table.encode(trained)
    blocks = [ids[start : start + 50] for start in range(0, 50 * 30, 50)]
    streams = [torch.cat([torch.from_numpy(block) for block in blocks[b::3]]) for b in range(3)]
    for step in range(12):
        inputs, targets = batches.next()
        assert inputs.shape == targets.shape == (3, 10)
        for b in range(3):
            assert torch.equal(inputs[b], streams[b][step * 10 : step * 10 + 10])
            assert torch.equal(targets[b], streams[b][step * 10 + 1 : step * 10 + 11])
    # skip(n) is n batches read: a resumed run reads on from the same place
    again = StreamedBatches(corpus.rows(), table, streams=3, seq_len=10, block_chars=50)
    again.skip(12)
    assert torch.equal(again.next()[0], batches.next()[0])


def test_characters_outside_the_vocabulary_are_skipped_and_counted(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("abc ✓ abc\n" * 2000, encoding="utf-8")
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("abc \n", encoding="utf-8")
    corpus = StreamedCorpus(str(path), Ranks(), val_chars=100, vocab_from=str(vocabulary))
    assert corpus.tokenizer.vocab == "\n abc"
    assert corpus.vocabulary_from == str(vocabulary)
    batches = StreamedBatches(corpus.rows(), corpus.table, streams=2, seq_len=8, block_chars=64)
    inputs, _ = batches.next()
    assert "✓" not in "".join(corpus.tokenizer.vocab[i] for i in inputs.flatten().tolist())
    # one tick per 10-character line read
    assert batches.chars_outside_vocabulary == batches.chars_read // 10
    ids, dropped = CharacterTable(CharTokenizer("ab")).encode("a😀b\U0010ffffz")
    assert ids.tolist() == [0, 1] and dropped == 3


def test_streaming_training_writes_its_policies_and_resumes_exactly(corpus_file, tmp_path):
    settings = {"data": str(corpus_file), "streaming": True, "val_chars": 2000, "cell": "gru", "hidden_size": 16,
                "num_layers": 1, "seq_len": 16, "batch_size": 4, "max_steps": 12, "eval_every": 3, "log_every": 2,
                "seed": 0, "device": "cpu"}
    straight = tmp_path / "straight"
    metrics = train(TrainConfig(**settings), straight, show_progress=False, log=quiet)
    assert metrics["data"]["streaming"] is True
    assert metrics["data"]["validation"] == 2000
    assert metrics["data"]["validation_from"] == "the first 2,000 characters of the corpus, set aside"
    assert metrics["data"]["chars_outside_vocabulary"] == 0
    assert metrics["test_loss"] is None and metrics["epochs"] is None
    assert metrics["world_size"] == 1
    assert metrics["chars_seen"] == 12 * 4 * 16
    assert metrics["val_loss"] < metrics["unigram_val_loss"] + 1.0
    CharRNN.from_pretrained(straight)

    def stop_at_step_6(message):
        if message.startswith("step 6:"):
            raise KeyboardInterrupt

    interrupted = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**settings), interrupted, show_progress=False, log=stop_at_step_6)
    assert RunFolder(interrupted).load_state()[1]["progress"]["step"] == 6
    train(TrainConfig(**settings), interrupted, resume=True, show_progress=False, log=quiet)
    expected, resumed = load_file(straight / "training_state.safetensors"), load_file(interrupted / "training_state.safetensors")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    log = lambda folder: [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("train_loss") for r in log(interrupted)] == [r.get("train_loss") for r in log(straight)]


def test_bad_streaming_settings_are_refused_with_one_sentence(corpus_file, tmp_path):
    run = lambda **changes: train(
        TrainConfig(**{"data": str(corpus_file), "max_steps": 2, "device": "cpu", **changes}),
        tmp_path / "out", show_progress=False, log=quiet,
    )
    with pytest.raises(TrainingError, match="--vocab-from needs --streaming"):
        run(vocab_from=str(corpus_file))
    with pytest.raises(TrainingError, match="--split cannot be combined with --streaming"):
        run(streaming=True, split="train")
    with pytest.raises(TrainingError, match="--val-chars must be a positive integer"):
        run(streaming=True, val_chars=0)
    with pytest.raises(TrainingError, match="--vocab-mb must be a positive number"):
        run(streaming=True, vocab_mb=float("nan"))
    with pytest.raises(DataLoadError, match="no such file"):
        run(streaming=True, data=str(tmp_path / "missing.txt"))
    with pytest.raises(DataLoadError, match="--vocab-from: could not read"):
        run(streaming=True, vocab_from=str(tmp_path / "missing.txt"))
    with pytest.raises(DataLoadError, match="got no training text .* lower --val-chars"):
        run(streaming=True, val_chars=10**7)
    other = tmp_path / "other.txt"
    other.write_text("€", encoding="utf-8")
    with pytest.raises(DataLoadError, match="None of the first .* characters of the corpus is in the vocabulary"):
        run(streaming=True, val_chars=1000, vocab_from=str(other))
    with pytest.raises(TrainingError, match="--batch-size 6 must divide evenly among 1 rank x 4 micro-batches"):
        run(streaming=True, val_chars=1000, batch_size=6, grad_accum=4)


def test_the_command_line_streams(corpus_file, tmp_path, capsys):
    from rnn_demo.cli.train import main

    out = tmp_path / "cli"
    code = main(["--streaming", "--data", str(corpus_file), "--val-chars", "1000", "--cell", "rnn", "--hidden-size", "16",
                 "--num-layers", "1", "--batch-size", "4", "--seq-len", "16", "--max-steps", "4", "--quiet",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "no test split" in printed and "model in" in printed


def test_a_dataset_laid_out_like_the_hubs_tiny_shakespeare_streams(tmp_path, lines):
    """Parquet files per split, one row each, as karpathy/tiny_shakespeare is on the Hub: the same
    code path as a Hub id, read from a local folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "tiny_shakespeare" / "data"
    folder.mkdir(parents=True)
    parts = {"train": "".join(lines[:1600]), "validation": "".join(lines[1600:1800]), "test": "".join(lines[1800:])}
    for split, text in parts.items():
        pq.write_table(pa.table({"text": [text]}), folder / f"{split}-00000-of-00001.parquet")
    corpus = StreamedCorpus(str(folder.parent), Ranks(), val_chars=5000)
    assert corpus.validation_from == "the validation split"
    assert corpus.validation_text == parts["validation"][:5000]
    assert corpus.test_text == parts["test"][:5000]
    assert next(corpus.rows()) == parts["train"]  # one row: the whole split
    with pytest.raises(DataLoadError, match="has no column 'content'.*--text-column"):
        StreamedCorpus(str(folder.parent), Ranks(), text_column="content")
