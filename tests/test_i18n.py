"""The page in English and Simplified Chinese (rnn_demo/ui/i18n.py): the tables, the keys the built
page uses, the language of a request, and the server-built text in each language."""

import json
import re
import string

import gradio as gr
import httpx
import pytest
from gradio.i18n import I18nData

import app
from rnn_demo.serving import streaming
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui import display, i18n, inside_tab

CJK = re.compile(r"[\u4e00-\u9fff]")


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def keys_used(value) -> set[str]:
    """Every translation key in a page's configuration (labels are I18nData objects, Markdown
    values the strings Gradio makes of them)."""
    if isinstance(value, I18nData):
        return {value.key}
    if isinstance(value, str):
        return {json.loads(marker)["key"] for marker in re.findall(r"__i18n__(\{.*?\})", value)}
    if isinstance(value, dict):
        return set().union(*map(keys_used, value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*map(keys_used, value)) if value else set()
    return set()


@pytest.fixture(scope="module")
def zoo(app_models):
    return ModelZoo(app_models)


@pytest.fixture(scope="module")
def config(zoo):
    return app.build_demo(zoo).get_config_file()


def test_both_tables_have_the_same_keys_and_fields():
    assert set(i18n.EN) == set(i18n.ZH)
    for key, english in i18n.EN.items():
        chinese = i18n.ZH[key]
        assert english.strip() and chinese.strip(), key
        if "#" not in key:  # a filled page_text copy has no fields left (its braces are the text's)
            assert fields(english) == fields(chinese), key
    assert app.launch_options()["i18n"].translations_dict == {"en": i18n.EN, "zh-CN": i18n.ZH}


def test_every_key_the_page_uses_is_in_both_tables(config, tmp_path):
    used = keys_used(config["components"])
    empty = keys_used(app.build_demo(ModelZoo(tmp_path / "none")).get_config_file()["components"])
    assert len(used) > 50 and any(key.startswith("page.no_models#") for key in empty)
    for key in used | empty:
        assert key in i18n.EN and key in i18n.ZH, key
    # every label, info, placeholder, button and Markdown of the page is translated: none is plain English
    for component in config["components"]:
        if component["type"] == "api":  # the API endpoints' stand-ins, never shown
            continue
        props = component["props"]
        for prop in ("label", "info", "placeholder"):
            text = props.get(prop)
            if isinstance(text, str) and text and not text.startswith("tests/"):  # a file's path reads the same
                assert "__i18n__" in text, (component["type"], prop, text)
        if component["type"] in ("markdown", "button", "tabitem", "accordion") and props.get("value"):
            assert keys_used(props["value"]) or keys_used(props.get("label")), (component["type"], props)
    # the static Chinese page really is Chinese: tab names, the About page
    for key in ("generate.tab", "inside.tab", "compare.tab", "train.tab", "models.tab", "about.tab", "about.recurrence"):
        assert CJK.search(i18n.ZH[key]), key


def test_the_english_page_reads_as_before(config):
    tabs = [i18n.translated(c["props"]["label"]) for c in config["components"] if c["type"] == "tabitem"]
    assert tabs == ["Generate", "Inside the network", "What it expected", "One neuron", "Sizes side by side", "Poems 诗", "Train", "Models", "About"]
    [header, *_] = [c["props"].get("value") for c in config["components"] if c["type"] == "markdown"]
    assert i18n.translated(header) == (
        "# Character-level RNN and LSTM\n"
        "Small recurrent networks trained on tiny Shakespeare continue your prompt one character at a time, "
        "and an LSTM trained on the Tang poems writes regular verse in the Poems 诗 tab."
    )
    assert i18n.translated(header, "zh-CN").startswith("# 字符级 RNN 和 LSTM\n")
    assert app.cell_names(["rnn", "gru", "lstm"]) == {"en": "RNN, GRU and LSTM", "zh-CN": "RNN、GRU 和 LSTM"}
    assert app.cell_names(["gru"]) == {"en": "GRU", "zh-CN": "GRU"}
    labels = {i18n.translated(c["props"].get("label", "")) for c in config["components"]}
    assert {"Prompt", "Temperature", "Max new characters", "Top-k", "Seed", "Text (up to 2,000 characters)"} <= labels


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("zh-SG", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5, zh-CN;q=0.9", "zh-CN"),  # q-values, not the order, rank the languages
        ("zh-CN;q=0, en", "en"),  # q=0: not wanted
        ("zh-TW,zh;q=0.9", "en"),  # Traditional Chinese: no table
        ("fr-FR, zh-CN;q=0.5", "en"),  # the first language has no table: English, as on the page
        ("*", "en"),
        ("", "en"),
        (None, "en"),
        ("zh-CN;q=abc, en;q=0.1", "en"),  # a broken q-value counts as 0
    ],
)
def test_the_language_of_an_accept_language_header(header, language):
    assert i18n.language_of(header) == language


def test_the_language_of_a_request():
    assert i18n.request_language(gr.Request(headers={"Accept-Language": "zh-CN,zh;q=0.9"})) == "zh-CN"
    assert i18n.request_language(gr.Request(headers={"accept-language": "en-GB"})) == "en"
    assert i18n.request_language(gr.Request(headers={})) == "en"
    assert i18n.request_language(None) == "en"
    # the language the page shows (its cookie) wins over the browser's
    both = {"Accept-Language": "en-US", "Cookie": f"a=1; {i18n.LANGUAGE_COOKIE}=zh-CN"}
    assert i18n.request_language(gr.Request(headers=both)) == "zh-CN"
    shown_english = {"accept-language": "zh-CN", "cookie": f"{i18n.LANGUAGE_COOKIE}=en"}
    assert i18n.request_language(gr.Request(headers=shown_english)) == "en"
    empty = {"accept-language": "zh-CN", "cookie": f"{i18n.LANGUAGE_COOKIE}="}  # set before Gradio chose one
    assert i18n.request_language(gr.Request(headers=empty)) == "zh-CN"
    broken = {"accept-language": "zh-CN", "cookie": 'x="unterminated; \\'}
    assert i18n.request_language(gr.Request(headers=broken)) == "zh-CN"


def test_the_status_line_in_chinese(zoo):
    info = zoo.info("lstm", 64)
    status = streaming.RunStatus(info, 1234, 0.5, skipped="é", done=True)
    line = display.status_line(status, "zh-CN")
    assert f"**{info.name}** · 1×64 LSTM · {info.params:,} 个参数 · " in line
    assert "完成：1,234 个字符，用时 0.50 秒（2,468 字符/秒）" in line
    assert "跳过了模型不认识的字符：'é'" in line
    assert "已停止" in display.status_line(streaming.RunStatus(info, 3, 0.1, stopped=True), "zh-CN")
    assert "正在生成…" in display.status_line(streaming.RunStatus(info, 3, 0.1), "zh-CN")
    # English stays as it was, and is the default
    english = display.status_line(status)
    assert english == display.status_line(status, "en")
    assert "done 1,234 characters in 0.50 s (2,468 chars/s)" in english and not CJK.search(english)


def test_the_inside_views_sentences_in_chinese():
    explanation = {"chars": [{"char": "a", "prob": None}, {"char": " ", "prob": 0.25, "bits": 2.0, "top": [(" ", 0.25)]}]}
    assert inside_tab.alternatives(explanation, 0, "zh-CN")[0].startswith("第 1 个字符 'a' 是开头")
    sentence, label = inside_tab.alternatives(explanation, 1, "zh-CN")
    assert sentence.startswith("第 2 个字符 '␣ (space)'：模型给它的概率 p = 0.2500") and label == {"␣ (space)": 0.25}
    assert inside_tab.alternatives(explanation, 1)[0].startswith("Character 2, '␣ (space)': the model gave it")
    assert "模型给每个字符的概率" in inside_tab.confidence_html(explanation, "zh-CN")
    assert "Probability the model gave each character: " in inside_tab.confidence_html(explanation)


def test_the_page_shows_the_status_line_in_the_language_of_the_request(app_url):
    """Over HTTP, as the browser does: the Generate button's event, with and without Accept-Language: zh-CN."""
    base = app_url.rstrip("/")
    page = httpx.get(f"{base}/config", timeout=30).json()
    [generate] = [c["id"] for c in page["components"] if c["props"].get("elem_id") == "generate"]
    [event] = [d for d in page["dependencies"] if [generate, "click"] in [list(t) for t in d["targets"]]]
    values = {c["id"]: c["props"].get("value") for c in page["components"]}
    data = [values[i] for i in event["inputs"]]  # prompt, cell, hidden size, temperature, max new characters, ...
    data[3:5] = [0, 20]

    def status_line(headers: dict) -> str:
        session = "i18n-" + headers["Accept-Language"].split(",")[0]
        body = {"data": data, "fn_index": event["id"], "session_hash": session, "event_data": None, "trigger_id": generate}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            client.post("/gradio_api/queue/join", json=body).raise_for_status()
            last = None
            with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        message = json.loads(line[5:])
                        if message.get("msg") == "process_completed":
                            last = message
                            break
        assert last and last["success"], last
        return last["output"]["data"][1]

    chinese = status_line({"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "完成：20 个字符" in chinese, chinese
    english = status_line({"Accept-Language": "en-US"})
    assert "done 20 characters" in english and not CJK.search(english), english
    switched = status_line({"Accept-Language": "en-US,en", "Cookie": f"{i18n.LANGUAGE_COOKIE}=zh-CN"})
    assert "完成：20 个字符" in switched, switched


# ---- errors -------------------------------------------------------------------------------------------


def raised_templates() -> dict[str, str]:
    """Every template of a user error raised in the package: {template: where}."""
    import ast
    from pathlib import Path

    from rnn_demo.serving.errors import UserError

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub.__name__
            yield from subclasses(sub)

    import rnn_demo.serving.training_jobs  # noqa: F401 (every user error class is defined)
    import rnn_demo.serving.views  # noqa: F401

    names = set(subclasses(UserError))
    found = {}
    package = Path(i18n.__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in names and node.args:
                template = node.args[0]
                where = f"{path.relative_to(package)}:{node.lineno}"
                if ast.unparse(template) == "error.template":  # a zoo error passed on as a request error
                    continue
                assert isinstance(template, ast.Constant), f"{where}: a user error takes a constant template, not {ast.unparse(template)}"
                found[template.value] = where
    return found


def test_every_user_error_has_a_chinese_sentence_with_the_same_fields():
    templates = raised_templates()
    assert len(templates) > 50
    missing = {template: where for template, where in templates.items() if template not in i18n.ERRORS_ZH}
    assert not missing
    for template, chinese in i18n.ERRORS_ZH.items():
        assert template in templates, f"a translation of a sentence nothing raises: {template!r}"
        assert fields(chinese) == fields(template), template


def test_the_page_says_a_user_error_in_its_language():
    from rnn_demo.serving.requests import RequestError, validate_seed

    with pytest.raises(RequestError) as caught:
        validate_seed(-5)
    assert str(caught.value).startswith("seed must be -1 (random) or between 0 and ")
    assert i18n.error_text(caught.value, "zh-CN").startswith("随机种子必须是 -1（随机）或 0 到 ")
    assert i18n.error_text(caught.value, "en") == str(caught.value)
    assert i18n.error_text(ValueError("not a user error"), "zh-CN") == "not a user error"
