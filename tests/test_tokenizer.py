"""Characters <-> ids: deterministic, Unicode-safe, and a clear policy for unknown characters."""

import pytest

from rnn_demo.model.tokenizer import CharTokenizer, UnknownCharactersError

CHINESE = "循环神经网络拥有记忆的能力,并且会根据这些记忆的内容来进行推断。"


def test_vocabulary_is_sorted_and_deterministic():
    first = CharTokenizer.from_text("hello world")
    second = CharTokenizer.from_text("world hello", "")
    assert first.vocab == second.vocab == " dehlorw"
    assert first.vocab_size == 8


@pytest.mark.parametrize("text", ["To be, or not to be", CHINESE, "mixed 中文 and English\n\ttabs", "emoji 🙂🚀 and RTL שלום"])
def test_encode_decode_round_trip(text):
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert len(ids) == len(text)
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids) == text


def test_chinese_characters_are_single_tokens():
    tokenizer = CharTokenizer.from_text(CHINESE)
    assert tokenizer.encode("记忆") == [tokenizer.vocab.index("记"), tokenizer.vocab.index("忆")]


def test_unknown_characters_raise_in_strict_encode_and_are_named():
    tokenizer = CharTokenizer.from_text("abc")
    with pytest.raises(UnknownCharactersError, match="'z'") as caught:
        tokenizer.encode("abzcz🙂")
    assert caught.value.characters == "z🙂"


def test_encode_known_skips_and_reports_unknown_characters():
    tokenizer = CharTokenizer.from_text("abc")
    encoding = tokenizer.encode_known("a🙂b\udc80cz a")
    assert tokenizer.decode(encoding.ids) == "abca"
    assert encoding.skipped == "🙂\udc80z "


def test_lone_surrogates_are_ordinary_characters_when_in_the_text():
    text = "ab\udc80"
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_decode_accepts_tensors_and_rejects_out_of_range_ids():
    import torch

    tokenizer = CharTokenizer("ab")
    assert tokenizer.decode(torch.tensor([1, 0])) == "ba"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([0, 2])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([-1])


@pytest.mark.parametrize("vocab", ["", "aba", None])
def test_invalid_vocabularies_are_refused(vocab):
    with pytest.raises(ValueError):
        CharTokenizer(vocab)


def test_empty_text_has_no_vocabulary():
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")


def test_encode_refuses_non_strings():
    with pytest.raises(TypeError):
        CharTokenizer("ab").encode_known(b"ab")
