"""The Tang-poem corpus command, on a small tarball laid out like the npm package chinese-poetry."""

import gzip
import hashlib
import io
import json
import random
import tarfile

import pytest

from rnn_demo.data import tang
from rnn_demo.data.tang import UNKNOWN, UNTITLED, CorpusError, build_corpus, clean_poem, main, split_of
from rnn_demo.training.data import DataLoadError, load_text_splits

# Traditional characters whose Simplified forms differ, so the conversion shows in every poem.
FILLER = "東風樂書門馬龍鳥雲飛見長來時歸夢聞遠橋顏聲將獨還發處邊"


def poem(title, *paragraphs):
    return {"author": "佚名", "title": title, "paragraphs": list(paragraphs), "id": title}


def filler_poems(count: int) -> list[dict]:
    """Distinct regular quatrains of common characters, enough for every split to get some."""
    rng = random.Random(0)
    poems = []
    for number in range(count):
        lines = []
        for _ in range(2):
            first = "".join(rng.choice(FILLER) for _ in range(5))
            second = "".join(rng.choice(FILLER) for _ in range(5))
            lines.append(f"{first}，{second}。")
        poems.append(poem("雜詩" + "".join("零一二三四五六七八九"[int(digit)] for digit in str(number)), *lines))
    return poems


SPECIAL = [
    poem("靜夜思", "床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"),
    poem("春曉（一作春眠）", "春眠不覺曉（一作春眠不知曉），處處聞啼鳥。", "夜來風雨聲，花落知多少。"),
    poem("問答", "「君從何處來？」", "我自山中來。"),  # quotation marks and a question mark: dropped
    poem("殘篇", "□□□□□，白日依山盡。"),  # a lacuna: dropped
    poem("空", ),  # no text: dropped
    poem("（一作）", "（一作闕）"),  # nothing but a note: no text, dropped
    poem("靜夜思二", "床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"),  # a repeat: dropped
    poem("《》", "龘龘飛，東風來。"),  # a title of punctuation only; a character seen twice only
    poem("九日", "[爽]節在重九，登高見遠山。"),  # a character restored by the editors: kept, unbracketed
    poem("草", "{艹/尔}草生江上，春風吹又來。"),  # a character described by its parts: dropped
]


def write_tarball(path, files: dict[str, list[dict]]):
    with tarfile.open(path, "w:gz") as archive:
        for name, poems in files.items():
            data = json.dumps(poems, ensure_ascii=False).encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def tarball(tmp_path):
    pytest.importorskip("opencc")
    filler = filler_poems(300)
    files = {
        # numbered 10 after 2: source order is numeric, not the names' order
        "package/dist/quantangshi/poet.tang.10.json": filler[150:],
        "package/dist/quantangshi/poet.tang.2.json": SPECIAL + filler[:150],
        # another collection beside it is not read
        "package/dist/yudingquantangshi/json/001.json": [poem("別集", "江南好風景，落花又逢君。")],
    }
    return write_tarball(tmp_path / "chinese-poetry-2.0.1.tgz", files)


def read_splits(folder) -> dict[str, str]:
    return {name: gzip.decompress((folder / f"{name}.txt.gz").read_bytes()).decode("utf-8") for name in tang.SPLITS}


def poems_of(text: str) -> list[list[str]]:
    assert text.endswith("\n\n")
    return [block.split("\n") for block in text[:-2].split("\n\n")]


def test_the_corpus_is_titled_poems_in_simplified_script_one_couplet_a_line(tarball, tmp_path):
    # min_count 1: only characters the train split lacks become unknown, so the text can be read here
    summary = build_corpus(tarball, tmp_path / "tang", min_count=1)
    texts = read_splits(tmp_path / "tang")
    everything = [block for name in tang.SPLITS for block in poems_of(texts[name])]
    by_title = {block[0]: block[1:] for block in everything}

    def as_written(text):  # a poem in validation or test may hold characters train lacks
        return "".join(character if character in texts["train"] else UNKNOWN for character in text)

    assert by_title[as_written("静夜思")] == [as_written("床前明月光，疑是地上霜。"), as_written("举头望明月，低头思故乡。")]
    # the note is cut from the couplet; the title keeps its words, without the brackets
    assert by_title[as_written("春晓一作春眠")] == [as_written("春眠不觉晓，处处闻啼鸟。"), as_written("夜来风雨声，花落知多少。")]
    assert [line[2:] for line in by_title[UNTITLED]] == [as_written("飞，东风来。")]
    assert by_title[as_written("九日")] == [as_written("爽节在重九，登高见远山。")]
    assert as_written("草") not in by_title
    assert "杂诗零" in by_title and "別集" not in by_title and "别集" not in by_title
    for block in everything:
        assert len(block) >= 2 and all(line for line in block)
        for line in block[1:]:
            assert tang._CLEAN_LINE.fullmatch(line.replace(UNKNOWN, "")) and line[-1] in "，。"
    joined = "".join(texts.values())
    assert not set(joined) & set("東風樂書門馬龍鳥雲飛見長來時歸夢聞遠橋顏聲將獨還發處邊靜舉鄉")  # all converted
    assert summary.read == len(SPECIAL) + 300
    assert summary.dropped == {"other characters in a line": 2, "no text": 2, "repeat of an earlier poem": 1,
                               "a character described by its parts": 1}
    assert sum(summary.poems.values()) == len(everything) == 300 + 4
    assert summary.characters == {name: len(texts[name]) for name in tang.SPLITS}


def test_source_order_is_kept_within_a_split(tarball, tmp_path):
    build_corpus(tarball, tmp_path / "tang")
    titles = [block[0] for block in poems_of(read_splits(tmp_path / "tang")["train"])]
    digits = {numeral: str(value) for value, numeral in enumerate("零一二三四五六七八九")}
    numbers = [int("".join(digits[numeral] for numeral in title[2:])) for title in titles if title.startswith("杂诗")]
    assert numbers == sorted(numbers)  # poet.tang.2 (filler 0-149) before poet.tang.10 (150-299)


def test_splits_are_disjoint_and_follow_the_hash_of_the_couplets(tarball, tmp_path):
    summary = build_corpus(tarball, tmp_path / "tang")
    texts = read_splits(tmp_path / "tang")
    seen = {}
    for name in tang.SPLITS:
        blocks = poems_of(texts[name])
        assert blocks, f"{name} is empty"
        for block in blocks:
            lines = tuple(block[1:])
            if UNKNOWN not in "".join(lines):  # the hash is of the text before rare characters are replaced
                assert split_of(lines) == name
            assert lines not in seen, f"{lines} in {seen.get(lines)} and {name}"
            seen[lines] = name
    assert 0.8 < summary.poems["train"] / sum(summary.poems.values()) < 0.97
    assert split_of(("床前明月光，疑是地上霜。",)) == split_of(("床前明月光，疑是地上霜。",))


def test_rare_characters_become_the_unknown_symbol_and_the_vocabulary_is_the_train_text(tarball, tmp_path):
    summary = build_corpus(tarball, tmp_path / "tang")
    texts = read_splits(tmp_path / "tang")
    train_counts = {character: texts["train"].count(character) for character in set(texts["train"])}
    assert "龘" not in "".join(texts.values())
    assert UNKNOWN in "".join(texts.values())
    # every character left (but the unknown symbol) was seen MIN_COUNT times in train; none is new
    for name in tang.SPLITS:
        assert set(texts[name]) - {UNKNOWN} <= {c for c, n in train_counts.items() if n >= tang.MIN_COUNT}
    assert summary.vocabulary_size == len(train_counts)
    assert summary.rare_characters >= 1


def test_a_rebuild_is_byte_for_byte_the_same(tarball, tmp_path):
    first = build_corpus(tarball, tmp_path / "one")
    second = build_corpus(tarball, tmp_path / "two")
    for name in tang.SPLITS:
        data = (tmp_path / "one" / f"{name}.txt.gz").read_bytes()
        assert data == (tmp_path / "two" / f"{name}.txt.gz").read_bytes()
        assert data[4:8] == b"\0\0\0\0"  # gzip header: no timestamp
        assert first.sha256[f"{name}.txt.gz"] == hashlib.sha256(data).hexdigest()
    assert first.sha256 == second.sha256


def test_cleaning_rules():
    assert clean_poem("题（一作）", ["白日依山尽（一作山），黄河入海流。"]) == ("题一作", ("白日依山尽，黄河入海流。",))
    assert clean_poem("", ["白日依山尽，黄河入海流。"])[0] == UNTITLED
    assert clean_poem("题", ["白日依山尽；黄河入海流。"]) == "other characters in a line"
    assert clean_poem("题", ["白日依山尽,黄河入海流."]) == "other characters in a line"
    assert clean_poem("题", []) == "no text"


def test_the_command_prints_a_summary_and_writes_the_splits(tarball, tmp_path, capsys):
    assert main([str(tarball), "--out", str(tmp_path / "tang")]) == 0
    printed = capsys.readouterr().out
    assert "kept 304" in printed and "vocabulary" in printed and "train.txt.gz" in printed
    assert sorted(p.name for p in (tmp_path / "tang").iterdir()) == ["test.txt.gz", "train.txt.gz", "validation.txt.gz"]


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"not a tarball", "is not a tarball"),
    ("truncated", "could not be read to the end"),
    ("empty", "holds no package/dist/quantangshi"),
])
def test_a_missing_or_bad_tarball_is_a_one_line_error(tmp_path, capsys, content, message):
    pytest.importorskip("opencc")
    path = tmp_path / "chinese-poetry-2.0.1.tgz"
    if content == "truncated":
        write_tarball(path, {"package/dist/quantangshi/poet.tang.0.json": filler_poems(400)})
        path.write_bytes(path.read_bytes()[:2000])
    elif content == "empty":
        write_tarball(path, {"package/README.md": []})
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        build_corpus(path, tmp_path / "tang")
    assert main([str(path), "--out", str(tmp_path / "tang")]) == 1
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "tang").exists()


def test_missing_opencc_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "opencc", None)
    with pytest.raises(CorpusError, match="pip install opencc"):
        build_corpus(tmp_path / "any.tgz", tmp_path / "tang")


def test_a_folder_of_split_files_is_read_as_the_three_splits(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    tang.write_gzip(folder / "train.txt.gz", "题\n床前明月光，\r\n\n")
    (folder / "validation.txt").write_text("val\n", encoding="utf-8")
    tang.write_gzip(folder / "test.txt.gz", "测试")
    splits = load_text_splits(str(folder))
    assert (splits.train, splits.validation, splits.test) == ("题\n床前明月光，\r\n\n", "val\n", "测试")
    assert splits.source == str(folder)
    (folder / "test.txt.gz").write_bytes(b"not gzip")
    with pytest.raises(DataLoadError, match="test.txt.gz"):
        load_text_splits(str(folder))
