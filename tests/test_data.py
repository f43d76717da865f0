"""Loading text through datasets (local files, dataset folders, the Hub) and TBPTT batches."""

import time

import pytest
import torch

from rnn_demo.training import data
from rnn_demo.training.data import DataLoadError, TBPTTBatches, load_text_splits, split_text


def test_local_tiny_shakespeare_reproduces_the_hub_splits(shakespeare_path):
    text = shakespeare_path.read_text(encoding="utf-8")
    splits = load_text_splits(str(shakespeare_path))
    assert splits.sizes() == {"train": 1_003_854, "validation": 55_770, "test": 55_770}
    assert splits.train + splits.validation + splits.test == text
    assert splits.source == str(shakespeare_path)


def test_split_text_is_90_5_5_and_loses_nothing():
    text = "".join(chr(ord("a") + i % 26) for i in range(1001))
    train, validation, test = split_text(text)
    assert (len(train), len(validation), len(test)) == (900, 50, 51)
    assert train + validation + test == text
    with pytest.raises(DataLoadError, match="at least 3"):
        split_text("ab")


def test_a_dataset_folder_with_three_splits_is_used_as_it_is(tmp_path):
    """The Hub code path (splits, text column, many rows joined), on a local dataset folder."""
    import datasets

    folder = tmp_path / "my_dataset"
    rows = {"train": ["first line", "second line"], "validation": ["val"], "test": ["te", "st"]}
    for name, lines in rows.items():
        datasets.Dataset.from_dict({"content": lines, "n": list(range(len(lines)))}).to_parquet(
            str(folder / "data" / f"{name}.parquet")
        )
    splits = load_text_splits(str(folder), text_column="content")
    assert (splits.train, splits.validation, splits.test) == ("first line\nsecond line", "val", "te\nst")
    with pytest.raises(DataLoadError, match="no column 'text'.*--text-column"):
        load_text_splits(str(folder))
    with pytest.raises(DataLoadError, match="does not hold text"):
        load_text_splits(str(folder), text_column="n")
    one = load_text_splits(str(folder), text_column="content", split="train")
    assert one.train + one.validation + one.test == "first line\nsecond line"
    with pytest.raises(DataLoadError, match="no split 'dev'"):
        load_text_splits(str(folder), text_column="content", split="dev")


def test_hub_dataset_offline_fails_at_once_naming_the_local_file_option():
    started = time.perf_counter()
    with pytest.raises(DataLoadError, match="--data data/tinyshakespeare.txt"):
        load_text_splits("karpathy/tiny_shakespeare")
    assert time.perf_counter() - started < 5


def test_unreachable_hub_fails_fast_without_retry_loop(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.perf_counter()
    with pytest.raises(DataLoadError, match="no connection to the Hub.*--data"):
        load_text_splits("karpathy/tiny_shakespeare")
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("source", ["missing.txt", "no/such/file.txt", "./missing"])
def test_missing_local_files_are_named(source):
    with pytest.raises(DataLoadError, match="no such file"):
        load_text_splits(source)


def test_non_utf8_file_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 ".encode("latin-1") * 10)
    with pytest.raises(DataLoadError, match="UTF-8"):
        load_text_splits(str(path))


def test_repo_ids_and_file_names_are_told_apart():
    assert data._looks_like_repo_id("karpathy/tiny_shakespeare")
    assert data._looks_like_repo_id("wikitext")
    assert not data._looks_like_repo_id("input.txt")
    assert not data._looks_like_repo_id("a/b/c")
    assert not data._looks_like_repo_id("./data")


def test_tbptt_batches_are_contiguous_streams():
    ids = torch.arange(103)
    batches = TBPTTBatches(ids, batch_size=4, seq_len=10)
    assert batches.stream_length == 25 and len(batches) == 3 and batches.chars_per_epoch == 100
    first_x, first_y = batches[0]
    second_x, _ = batches[1]
    last_x, last_y = batches[2]
    assert first_x.shape == (4, 10) and last_x.shape == (4, 5)  # the last window is shorter
    assert torch.equal(first_y, first_x + 1)  # targets are the next characters
    assert torch.equal(second_x[:, 0], first_x[:, -1] + 1)  # row b continues row b
    assert torch.equal(first_x[:, 0], torch.tensor([0, 25, 50, 75]))  # streams are contiguous slices
    assert int(last_y.max()) == 100
    assert batches.position(7) == (2, 1)
    with pytest.raises(IndexError):
        batches[3]


def test_tbptt_batches_refuse_too_little_data():
    with pytest.raises(ValueError, match="too few"):
        TBPTTBatches(torch.arange(5), batch_size=8, seq_len=4)
