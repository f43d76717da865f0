"""The demo in a real browser: Debian's Chromium, headless, driven by Playwright.

It sets a temperature and a hidden size, clicks Generate, watches the text stream in, clicks
Stop, and saves a screenshot of a finished generation: to a temporary folder, or, with
``RNN_DEMO_SCREENSHOT=docs/demo.png``, over the README's picture.

The page shows the repository's own models when ``models/`` holds any (so the screenshot shows
real text), else the small test models. Without /usr/bin/chromium the test is skipped, except
in CI (``CI`` set), where a missing browser is a failure: .ci/run installs it.
"""

import os
import re
import time
from pathlib import Path

import pytest

import app
from rnn_demo.serving import requests
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui import compare_tab, display, generate_tab, inside_tab

# pytest-xdist runs this file's tests one after another on one worker, so that no two Chromium sessions overlap.
pytestmark = pytest.mark.xdist_group("browser")

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT_PROMPT = "ROMEO:\n"
SCREENSHOT_SEED = 1
STOP_ATTEMPTS = 3


@pytest.fixture(scope="module")
def browser_app(request, pick_free_port):
    """The demo on a free port: (its URL, its zoo). Checks for the browser first."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run should have installed Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    shipped = ModelZoo(REPO_ROOT / "models")
    zoo = shipped if shipped.models() else ModelZoo(request.getfixturevalue("app_models"))
    demo = app.build_demo(zoo)
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=pick_free_port(), prevent_thread_lock=True, quiet=True))
    try:
        yield url, zoo
    finally:
        demo.close()


def output_text(page) -> str:
    return page.locator("#output textarea").input_value()


def set_slider(page, label: str, value) -> None:
    box = page.get_by_label(f"number input for {label}")
    box.fill(str(value))
    box.press("Enter")  # the slider takes the typed value on Enter / blur


def watch_text_grow(page, updates: int = 3, timeout: float = 60) -> list[int]:
    """The output's lengths, each time it changes, until it has changed ``updates`` times."""
    lengths: list[int] = []
    deadline = time.monotonic() + timeout
    while len(lengths) < updates and time.monotonic() < deadline:
        length = len(output_text(page))
        if length and (not lengths or length != lengths[-1]):
            lengths.append(length)
        page.wait_for_timeout(20)
    return lengths


def choose(page, elem_id: str, option_text: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option_text).click()


@pytest.mark.slow
def test_generate_streams_in_the_browser_and_stop_stops_it(browser_app, tmp_path):
    screenshot = Path(os.environ.get("RNN_DEMO_SCREENSHOT") or tmp_path / "demo.png")
    from playwright.sync_api import expect, sync_playwright

    url, zoo = browser_app
    cell = "lstm" if "lstm" in zoo.cells() else zoo.cells()[0]
    sizes = zoo.hidden_sizes(cell)
    labels = {value: label for label, value in generate_tab.hidden_size_choices(zoo, cell, "en")}
    # The test changes the hidden size away from the preselected (largest) one and back: the
    # largest model is the slowest, and the others draw 2,000 characters faster than Stop lands.
    hidden_size = sizes[-1]
    other_label, size_label = labels[sizes[-2] if len(sizes) > 1 else sizes[0]], labels[hidden_size]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url)
            page.locator("#generate").wait_for(timeout=60_000)

            for label in (other_label, size_label):
                choose(page, "hidden-size", label)
                expect(page.locator("#hidden-size input")).to_have_value(label)
            set_slider(page, "Temperature", 0.7)
            set_slider(page, "Max new characters", requests.MAX_NEW_CHARS)

            # A long generation: watch it grow, then stop it half-way. A small model may finish
            # before the click lands; then try again (a few times at most).
            for _attempt in range(STOP_ATTEMPTS):
                previous = len(output_text(page))
                page.locator("#generate").click()
                if previous:  # a retry: the old text stays until the new generation replaces it
                    deadline = time.monotonic() + 30
                    while len(output_text(page)) >= previous and time.monotonic() < deadline:
                        page.wait_for_timeout(10)
                lengths = watch_text_grow(page)
                assert len(lengths) >= 3, f"the text did not stream in: lengths seen {lengths}"
                assert lengths == sorted(lengths)
                page.locator("#stop").click()
                expect(page.locator("#status-line")).to_contain_text(re.compile(r"stopped|done \d"), timeout=10_000)
                if display.STOPPED in page.locator("#status-line").inner_text():
                    break
            else:
                pytest.fail(f"every generation finished before Stop took effect ({STOP_ATTEMPTS} tries)")
            stopped_at = len(output_text(page))
            page.wait_for_timeout(700)
            assert len(output_text(page)) == stopped_at, "the text kept growing after Stop"
            assert (
                f"stopped {stopped_at - len(generate_tab.EXAMPLE_PROMPTS[0]):,} characters"
                in page.locator("#status-line").inner_text()
            )

            # A short, complete generation for the README's picture.
            page.get_by_label("Prompt").fill(SCREENSHOT_PROMPT)
            set_slider(page, "Max new characters", 600)
            page.get_by_text("Advanced").click()
            page.get_by_label("Seed").fill(str(SCREENSHOT_SEED))
            page.get_by_text("Advanced").click()
            page.locator("#generate").click()
            expect(page.locator("#status-line")).to_contain_text("done", timeout=60_000)
            assert output_text(page).startswith(SCREENSHOT_PROMPT)
            expect(page.locator("#status-line")).to_contain_text(f"{zoo.info(cell, hidden_size).name}")
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    assert 0 < screenshot.stat().st_size < 300_000


@pytest.mark.slow
def test_the_views_inside_the_network_in_the_browser(browser_app, tmp_path):
    """Each view: read the text, click a character and see its alternatives; show a unit and pick
    one from the ranked units; compare the sizes; the Models tab's plot. The README's picture of
    the confidence view is saved to ``$RNN_DEMO_INSIDE_SCREENSHOT`` (docs/inside.png) when set."""
    screenshot = Path(os.environ.get("RNN_DEMO_INSIDE_SCREENSHOT") or tmp_path / "inside.png")
    from playwright.sync_api import expect, sync_playwright

    from rnn_demo.serving.views import explain_request, units_request

    url, zoo = browser_app
    cell = "lstm" if "lstm" in zoo.cells() else zoo.cells()[0]
    hidden_size = zoo.hidden_sizes(cell)[-1]  # the page's preselected model
    explained = explain_request(zoo, inside_tab.EXAMPLE_TEXT, cell, hidden_size)
    index = inside_tab.EXAMPLE_TEXT.index("light")  # the 'l' of "light": predicted, with alternatives
    top = explained["chars"][index]["top"]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Inside the network").click()
            page.locator("#inside-read").click()

            # What it expected: one span per character, a click shows that character's alternatives.
            character = page.locator(f"#confidence-view [data-i='{index}']")
            character.wait_for(timeout=60_000)
            assert page.locator("#confidence-view [data-i]").count() == len(explained["chars"])
            assert f"p = {explained['chars'][index]['prob']:.4f}" in character.get_attribute("title")
            expect(page.locator("#confidence-summary")).to_contain_text(f"{explained['bits_per_char']:.3f} bits/char")
            character.click()
            expect(page.locator("#picked-char")).to_contain_text(f"Character {index + 1}, 'l'", timeout=10_000)
            expect(character).to_have_class(re.compile(r"\bpicked\b"))  # marked in the text
            outline = character.evaluate("span => getComputedStyle(span).outlineStyle")
            assert outline == "solid"
            labels = page.locator("#alternatives")
            for char, _ in top:
                expect(labels).to_contain_text(inside_tab.shown_char(char))
            page.screenshot(path=str(screenshot), full_page=True)

            # One neuron: the text coloured by a unit; a click on a ranked unit shows it.
            page.get_by_role("tab", name="One neuron").click()
            spans = page.locator("#neuron-view [data-i]")
            expect(spans).to_have_count(len(explained["chars"]))
            best = str(units_request(zoo, inside_tab.EXAMPLE_TEXT, cell, hidden_size, 0)["units"][0]["unit"])
            page.locator("#units-table").get_by_text(best, exact=True).last.click()
            expect(page.get_by_label("number input for Unit")).to_have_value(best, timeout=10_000)
            assert page.locator("#neuron-view [data-i='0']").get_attribute("title").startswith("'R': ")

            # Sizes side by side: one column per size, each ending done.
            page.get_by_role("tab", name="Sizes side by side").click()
            set_slider(page, "New characters", 80)
            page.locator("#compare").click()
            columns = page.locator("#compare-columns .compare-column")
            expect(columns).to_have_count(len(zoo.hidden_sizes(cell)), timeout=60_000)
            for column in range(columns.count()):
                expect(columns.nth(column)).to_contain_text("done", timeout=60_000)
            expect(page.locator("#compare-seed")).to_contain_text(f"Seed {compare_tab.DEFAULT_COMPARE_SEED}")

            # "Generate a text" writes a new text into the box, and the view reads it.
            page.get_by_role("tab", name="Inside the network").click()
            page.locator("#inside-generate").click()
            shortest = inside_tab.GENERATED_CHARS + min(len(prompt) for prompt in generate_tab.EXAMPLE_PROMPTS)
            expect(page.locator("#confidence-summary")).not_to_contain_text(f"read {len(explained['chars'])} ")
            expect(page.locator("#confidence-summary")).to_contain_text(" characters: ", timeout=60_000)
            generated = page.locator("#inside-text textarea").input_value()
            assert generated.startswith(tuple(generate_tab.EXAMPLE_PROMPTS)) and generated != inside_tab.EXAMPLE_TEXT
            assert len(generated) >= shortest
            expect(page.locator("#confidence-view [data-i]")).to_have_count(len(generated))

            # The Models tab's plot of bits/char against parameters.
            page.get_by_role("tab", name="Models").click()
            expect(page.locator(".vega-embed, canvas, svg.marks").first).to_be_visible(timeout=20_000)
        finally:
            browser.close()
    assert 0 < screenshot.stat().st_size < 600_000


@pytest.mark.slow
def test_train_a_model_in_the_page_then_write_and_read_with_it(browser_app, tmp_path):
    """Train on pasted text, watch the loss and the progress line, download the model; the Generate
    tab then offers it (chosen), writes with it, and the Inside-the-network tab reads with it. A
    picture of the finished run is saved to ``$RNN_DEMO_TRAIN_SCREENSHOT`` (docs/train.png) when set."""
    screenshot = Path(os.environ.get("RNN_DEMO_TRAIN_SCREENSHOT") or tmp_path / "train.png")
    from playwright.sync_api import expect, sync_playwright

    text = (REPO_ROOT / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:30_000]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.goto(browser_app[0])
            page.get_by_role("tab", name="Train").click()
            page.get_by_label("Paste a text").check()
            page.locator("#train-text textarea").fill(text)
            choose(page, "train-cell", "GRU")
            set_slider(page, "Hidden size", 32)
            set_slider(page, "Training time (seconds)", 5)
            page.locator("#train").click()
            expect(page.locator("#train-status")).to_contain_text(re.compile(r"step \d"), timeout=60_000)
            expect(page.locator("#train-status")).to_contain_text("done after", timeout=90_000)
            expect(page.locator("#train-share")).to_contain_text("python -m rnn_demo.publish model --model-dir my-gru-h32")
            expect(page.locator("#train-chart")).to_be_visible()
            with page.expect_download() as downloading:
                page.locator("#train-download a").first.click()
            saved = tmp_path / "model.zip"
            downloading.value.save_as(saved)
            import zipfile

            with zipfile.ZipFile(saved) as bundle:
                assert "my-gru-h32/model.safetensors" in bundle.namelist()
            page.screenshot(path=str(screenshot))

            page.get_by_role("tab", name="Generate").click()
            expect(page.locator("#cell input")).to_have_value("Your model (my-gru-h32)")
            page.locator("#generate").click()
            expect(page.locator("#status-line")).to_contain_text("done", timeout=60_000)
            expect(page.locator("#status-line")).to_contain_text("my-gru-h32")

            page.get_by_role("tab", name="Inside the network").click()
            expect(page.locator("#inside-cell input")).to_have_value("Your model (my-gru-h32)")
            page.locator("#inside-read").click()
            expect(page.locator("#confidence-summary")).to_contain_text("my-gru-h32 read", timeout=30_000)
        finally:
            browser.close()
    assert 0 < screenshot.stat().st_size < 400_000


@pytest.mark.slow
def test_the_chinese_page_in_a_chinese_browser(browser_app, tmp_path):
    """A browser whose language is zh-CN: the tabs, labels, buttons and About page are in Chinese, and
    a generation's status line (built on the server) too. The picture of it is saved to
    ``$RNN_DEMO_ZH_SCREENSHOT`` (docs/demo-zh.png) when set."""
    screenshot = Path(os.environ.get("RNN_DEMO_ZH_SCREENSHOT") or tmp_path / "demo-zh.png")
    from playwright.sync_api import expect, sync_playwright

    from rnn_demo.ui.i18n import LANGUAGE_COOKIE, ZH

    url, zoo = browser_app
    cell = "lstm" if "lstm" in zoo.cells() else zoo.cells()[0]
    name = zoo.info(cell, zoo.hidden_sizes(cell)[-1]).name  # the page's preselected model
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860})
            page = context.new_page()
            page.goto(url)
            # A Chinese page opens on the poems tab (Chinese output without hunting for it).
            expect(page.get_by_role("tab", name=ZH["poems.tab"], exact=True)).to_have_attribute("aria-selected", "true",
                                                                                                  timeout=60_000)
            expect(page.locator("#poem-write")).to_be_visible()
            page.get_by_role("tab", name=ZH["generate.tab"], exact=True).click()
            page.locator("#generate").wait_for(timeout=60_000)
            for key in ("generate.tab", "inside.tab", "compare.tab", "models.tab", "about.tab"):
                expect(page.get_by_role("tab", name=ZH[key], exact=True)).to_be_visible()
            expect(page.locator("#generate")).to_have_text(ZH["generate.button"])
            expect(page.locator("#stop")).to_have_text(ZH["common.stop"])
            expect(page.get_by_text("字符级", exact=False).first).to_be_visible()
            page.get_by_label(ZH["common.prompt"]).fill(SCREENSHOT_PROMPT)
            set_slider(page, ZH["generate.max_new_chars"], 400)
            page.get_by_text(ZH["generate.advanced"]).click()
            page.locator("#generate-seed input").fill(str(SCREENSHOT_SEED))
            page.get_by_text(ZH["generate.advanced"]).click()
            page.locator("#generate").click()
            status = page.locator("#status-line")
            expect(status).to_contain_text("完成：400 个字符", timeout=60_000)
            expect(status).to_contain_text(name)
            assert output_text(page).startswith(SCREENSHOT_PROMPT)
            assert "characters in" not in status.inner_text()  # no English left in it
            page.screenshot(path=str(screenshot))

            page.get_by_role("tab", name=ZH["about.tab"], exact=True).click()
            expect(page.get_by_text("递推公式")).to_be_visible()
            expect(page.locator("svg[role='img'] title")).to_have_text("按时间展开 4 步的循环神经网络")
            assert {"name": LANGUAGE_COOKIE, "value": "zh-CN"}.items() <= context.cookies()[0].items()

            # An English browser whose page language changes (as the footer's Settings change it:
            # Gradio sets <html lang>): the next status line follows the page, not Accept-Language.
            english = browser.new_page(locale="en-US")
            english.goto(url)
            english.locator("#generate").wait_for(timeout=60_000)  # an English page opens on Generate
            expect(english.get_by_role("tab", name="Generate", exact=True)).to_be_visible()
            set_slider(english, "Max new characters", 50)
            english.locator("#generate").click()
            expect(english.locator("#status-line")).to_contain_text("done 50 characters", timeout=60_000)
            english.evaluate("document.documentElement.lang = 'zh-CN'")
            english.locator("#generate").click()
            expect(english.locator("#status-line")).to_contain_text("完成：50 个字符", timeout=60_000)
        finally:
            browser.close()
    assert 0 < screenshot.stat().st_size < 300_000


def test_a_tang_poem_in_the_chinese_page(browser_app, tmp_path):
    """The 诗 tab in a zh-CN browser: an acrostic 七绝 with rhyme and tones streams in, each character
    with its tone above it; the picture is saved to ``$RNN_DEMO_POEMS_SCREENSHOT`` (docs/poems-zh.png)
    when set."""
    screenshot = Path(os.environ.get("RNN_DEMO_POEMS_SCREENSHOT") or tmp_path / "poems-zh.png")
    from playwright.sync_api import expect, sync_playwright

    from rnn_demo.poetry.rhyme import rhyme_book
    from rnn_demo.poetry.rules import FORMS, check
    from rnn_demo.ui.i18n import ZH

    url, _ = browser_app
    if not ModelZoo(REPO_ROOT / "models", poems=True).models():
        pytest.skip("no poem model in models/")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860}).new_page()
            page.goto(url)
            page.locator("#poem-form").get_by_text("七言绝句 7x4").click()  # the page opened on this tab
            page.get_by_label(ZH["poems.acrostic"]).fill("春夏秋冬")
            page.locator("#poem-write").click()
            expect(page.locator("#poem .poem-note")).to_contain_text("偶数句押", timeout=60_000)
            chars = page.locator("#poem ruby.poem-char")
            expect(chars).to_have_count(28)
            lines = ["".join(chars.nth(index).evaluate("node => node.firstChild.textContent") for index in range(start, start + 7))
                     for start in range(0, 28, 7)]
            assert [line[0] for line in lines] == list("春夏秋冬")
            report = check("，".join(lines) + "。", FORMS["7x4"], rhyme_book())
            assert report.form_ok and report.rhymes and report.tones_ok
            assert chars.first.get_attribute("data-tones") in ("平", "仄", "平仄", "?")
            page.screenshot(path=str(screenshot))
            # The checker reads the poem just written: its form, rhyme, tones and the model's probabilities.
            expect(page.locator("#poem-check-text textarea")).to_have_value("\n".join(
                f"{lines[i]}，{lines[i + 1]}。" for i in (0, 2)))
            note = page.locator("#poem-checked .poem-note")
            expect(note).to_contain_text("七言绝句（7x4）。", timeout=60_000)
            expect(note).to_contain_text("全诗合乎格律。")
            checked = page.locator("#poem-checked ruby.poem-char")
            expect(checked).to_have_count(28)
            assert 0 < float(checked.nth(5).get_attribute("data-prob")) <= 1
            # A pasted poem that breaks the tones: the places are outlined and counted.
            page.locator("#poem-check-text textarea").fill("床前明月光\n疑是地上霜\n举头望明月\n低头思故乡")
            page.locator("#poem-check").click()
            expect(note).to_contain_text("处不合平仄", timeout=60_000)
            expect(note).to_contain_text("五言绝句（5x4）。")
        finally:
            browser.close()
    assert 0 < screenshot.stat().st_size < 400_000
