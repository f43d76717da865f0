"""The Gradio demo: its handlers as functions, then the running app through its public API.

The end-to-end tests talk to a real server (``app_url`` in conftest: launched once on a free
port, closed at the end) through ``gradio_client``, plain HTTP (the README's curl flow) and,
when node and npm are available, the JavaScript client. The README's API examples are run
exactly as written, with only the address changed.
"""

import itertools
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import gradio as gr
import pytest
import torch
from conftest import SLOW_MODEL
from gradio_client.exceptions import AppError

import app
from rnn_demo.generation.sampling import MAX_SEED, generate
from rnn_demo.serving import lifecycle, requests, streaming
from rnn_demo.serving.unread_answers import dropping_unread_answers
from rnn_demo.serving.visitor_caps import PendingCap, UploadCap
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui import display, generate_tab, models_tab
from rnn_demo.ui.i18n import translated

REPO_ROOT = Path(__file__).resolve().parent.parent
README_URL = "http://127.0.0.1:7860/"
GOOD = dict(prompt="ROMEO:", cell="lstm", hidden_size=64, temperature=0.8, max_new_chars=60, top_k=0, top_p=1.0, seed=7)


@pytest.fixture(scope="module")
def zoo(app_models):
    return ModelZoo(app_models)


def run_handler(zoo, worker, **overrides):
    """All (text, status) updates of one generation."""
    return list(streaming.generate_stream(zoo, **{**GOOD, **overrides}, worker=worker))


# ---- the handlers, called directly ---------------------------------------------------------------


def test_stream_starts_with_the_prompt_grows_and_ends_with_the_full_text(zoo, worker):
    updates = run_handler(zoo, worker, max_new_chars=400)
    texts = [text for text, _ in updates]
    assert texts[0] == "ROMEO:"
    for before, after in itertools.pairwise(texts):
        assert after.startswith(before)
    model = zoo.load("lstm", 64)
    assert texts[-1] == "ROMEO:" + generate(model, "ROMEO:", 400, temperature=0.8, seed=7)
    statuses = [status for _, status in updates]
    assert [s.done for s in statuses] == [False] * (len(statuses) - 1) + [True]
    assert [s.new_chars for s in statuses] == [len(text) - len("ROMEO:") for text in texts]
    assert statuses[-1].new_chars == 400


def test_the_stream_can_be_resumed_from_any_thread(zoo, worker):
    # Gradio calls next() on a generator handler from whichever worker thread is free.
    updates = streaming.generate_stream(zoo, **{**GOOD, "max_new_chars": 2_000}, worker=worker)
    texts = []

    def advance():
        texts.append(next(updates)[0])

    for _ in range(4):
        thread = threading.Thread(target=advance)
        thread.start()
        thread.join()
    updates.close()
    assert texts[0] == "ROMEO:" and all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert len(texts[-1]) > len(texts[0])


@pytest.mark.parametrize("resumed_in", ["this thread", "another thread"])
def test_a_stream_closed_early_leaves_torch_grad_mode_as_it_was(zoo, worker, resumed_in):
    # Stop or a client's cancel closes the generator half-way; torch's modes are per thread.
    updates = streaming.generate_stream(zoo, **{**GOOD, "max_new_chars": 100}, worker=worker)

    def advance():
        for _ in range(2):
            next(updates)

    if resumed_in == "this thread":
        advance()
    else:
        thread = threading.Thread(target=advance)
        thread.start()
        thread.join()
    updates.close()
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


def test_a_stop_request_ends_the_stream_with_the_text_so_far(zoo, worker):
    updates = run_handler(zoo, worker, max_new_chars=2_000, should_stop=lambda: True)  # asked within 0.05 s
    text, status = updates[-1]
    assert status.stopped and not status.done and status.new_chars == len(text) - len("ROMEO:") < 2_000
    assert text == "ROMEO:" + generate(zoo.load("lstm", 64), "ROMEO:", status.new_chars, temperature=0.8, seed=7)
    assert f"stopped {status.new_chars:,} characters" in display.status_line(status)


def test_stop_requests_reach_only_the_running_generation_of_their_session():
    stops = generate_tab.StopRequests()
    first = stops.start("session-a")
    other = stops.start("session-b")
    stops.request("session-a")
    assert first.is_set() and not other.is_set()
    stops.finish("session-a", first)
    second = stops.start("session-a")
    stops.finish("session-a", first)  # a late finish of the old run leaves the new flag alone
    stops.request("session-a")
    assert second.is_set()
    stops.request("no-such-session")  # nothing running: nothing happens


def test_same_seed_same_text_and_random_seed_varies(zoo, worker):
    first = run_handler(zoo, worker, max_new_chars=100)[-1][0]
    assert run_handler(zoo, worker, max_new_chars=100)[-1][0] == first
    randoms = {run_handler(zoo, worker, max_new_chars=100, seed=requests.RANDOM_SEED, temperature=1.0)[-1][0] for _ in range(3)}
    assert len(randoms) > 1


def test_greedy_ignores_the_seed(zoo, worker):
    texts = {run_handler(zoo, worker, temperature=0, seed=seed)[-1][0] for seed in (requests.RANDOM_SEED, 0, 123)}
    assert len(texts) == 1


def test_hidden_size_and_cell_choose_the_model(zoo, worker):
    texts = {
        (cell, size): run_handler(zoo, worker, cell=cell, hidden_size=size)[-1][0]
        for cell, size in (("lstm", 64), ("lstm", 256), ("rnn", 32))
    }
    assert len(set(texts.values())) == 3
    assert run_handler(zoo, worker, cell="rnn", hidden_size=32)[-1][1].model.name == "rnn-h32"


def test_unknown_prompt_characters_are_skipped_and_reported(zoo, worker):
    text, status = run_handler(zoo, worker, prompt="ROMEO:😀é😀")[-1]
    assert text.startswith("ROMEO:😀é😀")
    assert status.skipped == "😀é"
    assert "skipped characters the model does not know: '😀' 'é'" in display.status_line(status)


def test_empty_prompt_is_allowed(zoo, worker):
    text, status = run_handler(zoo, worker, prompt="", max_new_chars=10)[-1]
    assert len(text) == 10 and status.done


def test_status_line_names_model_parameters_score_and_speed(zoo):
    info = zoo.info("lstm", 64)
    status = streaming.RunStatus(info, new_chars=300, seconds=1.5, done=True)
    line = display.status_line(status)
    assert "lstm-h64" in line and "1×64 LSTM" in line
    assert f"{info.params:,} parameters" in line
    assert f"validation {info.val_bpc:.3f} bits/char" in line
    assert "done 300 characters in 1.50 s (200 chars/s)" in line
    assert "generating… 100 characters" in display.status_line(streaming.RunStatus(info, 100, 0.5))


def test_the_page_gets_every_text_with_its_status_line(zoo):
    info = zoo.info("lstm", 64)
    statuses = [streaming.RunStatus(info, i) for i in range(3)] + [streaming.RunStatus(info, 3, done=True)]
    out = list(generate_tab.page_updates((f"t{i}", s) for i, s in enumerate(statuses)))
    assert out == [(f"t{i}", display.status_line(s)) for i, s in enumerate(statuses)]


BAD_INPUTS = [
    (dict(prompt=None), "prompt must be text"),
    (dict(prompt=123), "prompt must be text"),
    (dict(prompt="x" * (requests.MAX_PROMPT_CHARS + 1)), f"the limit is {requests.MAX_PROMPT_CHARS:,}"),
    (dict(cell="gru"), "Unknown cell 'gru'; available: rnn, lstm"),
    (dict(cell=None), "cell must be text"),
    (dict(hidden_size=128), "No lstm model with hidden size 128; available: 64, 256"),
    (dict(hidden_size="64"), "hidden_size must be a whole number"),
    (dict(hidden_size=64.5), "hidden_size must be a whole number"),
    (dict(temperature=-0.1), "temperature must be between 0 (greedy) and 2.0"),
    (dict(temperature=2.5), "temperature must be between 0 (greedy) and 2.0"),
    (dict(temperature=math.nan), "temperature must be a finite number"),
    (dict(temperature=math.inf), "temperature must be a finite number"),
    (dict(temperature="hot"), "temperature must be a finite number"),
    (dict(temperature=True), "temperature must be a finite number"),
    (dict(max_new_chars=0), "max_new_chars must be between 1 and"),
    (dict(max_new_chars=requests.MAX_NEW_CHARS + 1), "max_new_chars must be between 1 and"),
    (dict(max_new_chars=10.5), "max_new_chars must be a whole number"),
    (dict(max_new_chars=math.nan), "max_new_chars must be a whole number"),
    (dict(top_k=-1), "top_k must be 0 (off) or more"),
    (dict(top_p=0), "top_p must be above 0 and at most 1"),
    (dict(top_p=1.01), "top_p must be above 0 and at most 1"),
    (dict(top_p=math.nan), "top_p must be a finite number"),
    (dict(seed=-2), "seed must be -1 (random) or between 0 and"),
    (dict(seed=MAX_SEED + 1), "seed must be -1 (random) or between 0 and"),
    (dict(seed=1.5), "seed must be a whole number"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=[str(o)[:40] for o, _ in BAD_INPUTS])
def test_bad_inputs_raise_one_clear_request_error(zoo, overrides, message, worker):
    with pytest.raises(requests.RequestError) as caught:
        run_handler(zoo, worker, **overrides)
    assert message in str(caught.value)


def test_the_page_and_the_api_show_library_errors_as_one_gradio_error_sentence(zoo, worker):
    with pytest.raises(gr.Error) as caught:
        list(display.shown_as_gradio_errors(streaming.generate_stream(zoo, **{**GOOD, "temperature": 9}, worker=worker)))
    assert caught.value.message == "temperature must be between 0 (greedy) and 2.0, got 9.0."
    def failing():
        yield "ROMEO:", None
        raise streaming.GenerationError("The generation failed: it broke")

    with pytest.raises(gr.Error) as caught:
        list(display.shown_as_gradio_errors(failing()))
    assert caught.value.message == "The generation failed: it broke"


def test_whole_floats_are_accepted_for_integer_arguments(zoo, worker):
    text = run_handler(zoo, worker, hidden_size=64.0, max_new_chars=12.0, top_k=5.0, seed=7.0)[-1][0]
    assert len(text) == len("ROMEO:") + 12


def test_an_empty_zoo_builds_a_page_that_explains_itself(tmp_path, worker):
    empty = ModelZoo(tmp_path / "no-models")
    demo = app.build_demo(empty)
    config = str([translated(component["props"].get("value") or "") for component in demo.config["components"]])
    assert "No models are available" in config and "does not exist" in config
    with pytest.raises(requests.RequestError, match="No models are available"):
        list(streaming.generate_stream(empty, **GOOD, worker=worker))


def test_the_queue_summarizes_its_events_for_monitoring_only_every_so_often(tmp_path, monkeypatch):
    # By default gradio rebuilds a DataFrame of up to 10,000 recent events each time a request ends.
    monkeypatch.delenv("GRADIO_ANALYTICS_CACHE_FREQUENCY", raising=False)
    demo = app.build_demo(ModelZoo(tmp_path / "no-models"))
    assert demo._queue.ANAYLTICS_CACHE_FREQUENCY == lifecycle.ANALYTICS_SUMMARY_EVERY  # sic: gradio's name
    monkeypatch.setenv("GRADIO_ANALYTICS_CACHE_FREQUENCY", "7")  # the variable, when set, wins
    assert app.build_demo(ModelZoo(tmp_path / "no-models"))._queue.ANAYLTICS_CACHE_FREQUENCY == 7


def test_hidden_size_choices_follow_the_cell(zoo):
    assert [value for _, value in generate_tab.hidden_size_choices(zoo, "lstm")] == [64, 256]
    assert generate_tab.hidden_size_choices(zoo, "rnn", "en")[0][0].startswith("32 (")
    assert generate_tab.hidden_size_choices(zoo, "rnn", "zh-CN")[0][0].endswith("个参数）")
    assert translated(generate_tab.hidden_size_choices(zoo, "rnn")[0][0], "zh-CN").endswith("个参数）")  # the page's
    assert generate_tab.default_hidden_size(zoo, "lstm") == 256
    assert generate_tab.default_hidden_size(zoo, "lstm", current=64) == 64
    assert generate_tab.default_hidden_size(zoo, "rnn", current=64) == 32


def test_the_model_table_lists_every_model_in_the_pages_language(zoo, tmp_path):
    rows = models_tab.model_table_rows(zoo)
    assert len(rows) == 3 and all(len(row) == len(models_tab.MODEL_TABLE_COLUMNS) for row in rows)
    assert rows[0][:3] == ["RNN (hand-written)", 32, 1]
    table = models_tab.model_table_markdown(zoo, None, "zh-CN").splitlines()
    assert table[0].startswith("| 单元 | 隐藏维度 | 层数 | 参数量 |") and len(table) == 2 + 3
    assert table[2].startswith("| RNN（手写） | 32 | 1 |")
    poems = models_tab.model_table_markdown(zoo, zoo, "zh-CN").splitlines()  # a zoo standing in for the poem models
    assert len(poems) == 2 + 6 and poems[-1].startswith("| 唐诗 LSTM | 256 |")


def test_the_module_builds_the_demo_and_main_launches_it(monkeypatch):
    assert isinstance(app.demo, gr.Blocks)
    calls = []
    monkeypatch.setattr(app.demo, "launch", lambda **kwargs: calls.append(("launch", kwargs)))
    monkeypatch.setattr(app, "warm_up", lambda zoo: calls.append(("warm_up", zoo)))
    monkeypatch.setattr(app.demo, "block_thread", lambda: calls.append(("block_thread", None)))
    monkeypatch.setattr(app, "limit_malloc_arenas", lambda arenas: calls.append(("malloc arenas", arenas)))
    monkeypatch.setattr(app, "end_on_signals", lambda first: calls.append(("SIGTERM as Ctrl-C", first)))
    app.main(["--host", "0.0.0.0", "--port", "7999"])
    app.main([])  # gradio then reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else 127.0.0.1:7860
    served = dict(prevent_thread_lock=True, state_session_capacity=lifecycle.STATE_SESSION_CAPACITY, i18n=app.i18n,
                  js=app.PAGE_LANGUAGE_JS, mcp_server=True, max_file_size=app.TRAINER.limits.max_text_bytes)
    for _, kwargs in [call for call in calls if call[0] == "launch"]:  # the upload cap, in front of gradio's routes
        app_kwargs = kwargs.pop("app_kwargs")
        pending, uploads = app_kwargs["middleware"]
        assert app_kwargs["lifespan"] is dropping_unread_answers
        assert pending.cls is PendingCap and pending.kwargs == {"per_visitor": lifecycle.PENDING_PER_VISITOR}
        assert uploads.cls is UploadCap and uploads.kwargs == {
            "per_visitor": lifecycle.UPLOADS_PER_VISITOR, "in_all": lifecycle.UPLOADS_IN_ALL, "window": lifecycle.CACHE_SECONDS
        }
    # SIGTERM ends the server as Ctrl-C does (its exit handlers run); the allocator is set before
    # gradio starts its threads; the page is served first, then the default model's engine weights are read.
    assert calls == [
        ("SIGTERM as Ctrl-C", app.TRAINER.close),
        ("malloc arenas", lifecycle.MALLOC_ARENAS),
        ("launch", {"server_name": "0.0.0.0", "server_port": 7999, **served}),
        ("warm_up", app.ZOO),
        ("block_thread", None),
        ("SIGTERM as Ctrl-C", app.TRAINER.close),
        ("malloc arenas", lifecycle.MALLOC_ARENAS),
        ("launch", {"server_name": None, "server_port": None, **served}),
        ("warm_up", app.ZOO),
        ("block_thread", None),
    ]


def test_the_app_its_warm_up_and_its_generation_import_no_torch():
    code = (
        "import sys, app\nfrom rnn_demo.serving.requests import initial_model\n"
        "from rnn_demo.serving.streaming import generate_stream\n"
        "assert 'torch' not in sys.modules, 'app imported torch'\n"
        "app.warm_up(app.ZOO)\n"
        "assert len(app.ZOO._weights) == 1, 'the warm-up read no engine weights'\n"
        "first = initial_model(app.ZOO)\n"
        "updates = generate_stream(app.ZOO, 'ROMEO:', first.cell, first.hidden_size, 0.8, 50, 0, 1.0, 1, worker=app.WORKER)\n"
        "text, status = list(updates)[-1]\n"
        "assert status.done and len(text) == len('ROMEO:') + 50\n"
        "assert 'torch' not in sys.modules, 'generation imported torch'\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("RNN_DEMO_MODELS", None)
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]


# ---- the running app, through its public API ---------------------------------------------------------


def test_view_api_shows_exactly_the_public_endpoints(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == {
        "/generate", "/models", "/explain", "/score", "/neurons", "/compare", "/train", "/generate_trained", "/poem",
        "/check_poem",
    }  # fmt: skip
    assert info["unnamed_endpoints"] == {}
    parameters = info["named_endpoints"]["/generate"]["parameters"]
    names = [p["parameter_name"] for p in parameters]
    assert names == ["prompt", "cell", "hidden_size", "temperature", "max_new_chars", "top_k", "top_p", "seed"]
    types = {p["parameter_name"]: p["python_type"]["type"] for p in parameters}
    assert types["hidden_size"] == types["max_new_chars"] == types["top_k"] == types["seed"] == "int"
    assert types["temperature"] == types["top_p"] == "float"
    assert len(info["named_endpoints"]["/generate"]["returns"]) == 1
    defaults = {p["parameter_name"]: p["parameter_default"] for p in parameters if p["parameter_has_default"]}
    assert defaults == {
        "temperature": requests.DEFAULT_TEMPERATURE,
        "max_new_chars": requests.DEFAULT_NEW_CHARS,
        "top_k": requests.DEFAULT_TOP_K,
        "top_p": requests.DEFAULT_TOP_P,
        "seed": requests.RANDOM_SEED,
    }


def test_generate_streams_growing_text_and_predict_returns_the_final_text(client):
    # Long enough to stream in several pieces: the stream is sent every 50 ms, and lstm-h256 writes
    # 2,000 characters in a few tenths of a second (benchmarks.sampling_speed).
    request = {**GOOD, "hidden_size": 256, "max_new_chars": requests.MAX_NEW_CHARS}
    updates = list(client.submit(**request, api_name="/generate"))
    assert len(updates) > 3
    assert updates[0].startswith("ROMEO:")
    for before, after in itertools.pairwise(updates):
        assert after.startswith(before)
    assert len(updates[-1]) == len("ROMEO:") + requests.MAX_NEW_CHARS
    assert client.predict(**request, api_name="/generate") == updates[-1]


def test_same_seed_same_text_other_hidden_size_other_text(client):
    first = client.predict(**GOOD, api_name="/generate")
    assert client.predict(**GOOD, api_name="/generate") == first
    assert client.predict(**{**GOOD, "hidden_size": 256}, api_name="/generate") != first


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(temperature=-1), "temperature must be between 0 (greedy) and 2.0"),
        (dict(max_new_chars=requests.MAX_NEW_CHARS + 1), "max_new_chars must be between 1 and"),
        (dict(cell="transformer"), "Unknown cell 'transformer'"),
        (dict(hidden_size=4096), "No lstm model with hidden size 4096"),
        (dict(prompt="x" * (requests.MAX_PROMPT_CHARS + 1)), "the limit is"),
        (dict(seed=-5), "seed must be -1 (random)"),
    ],
)
def test_bad_inputs_come_back_as_errors_and_the_server_keeps_serving(client, overrides, message):
    with pytest.raises(AppError) as caught:
        client.predict(**{**GOOD, **overrides}, api_name="/generate")
    assert message in str(caught.value)
    assert client.predict(**{**GOOD, "max_new_chars": 5}, api_name="/generate").startswith("ROMEO:")


def test_nan_temperature_over_plain_http_is_an_error(app_url):
    # JSON clients cannot send NaN, but Python's json module writes it, and the server reads it.
    body = '{"data": ["ROMEO:", "lstm", 64, NaN, 10, 0, 1.0, 1]}'
    events = call_over_http(app_url, body)
    assert "event: error" in events
    assert "temperature must be a finite number" in events


@pytest.fixture(scope="module")
def slow_client(slow_models, pick_free_port):
    """A client of an app serving ``slow_models``."""
    from gradio_client import Client

    demo = app.build_demo(ModelZoo(slow_models))
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=pick_free_port(), prevent_thread_lock=True, quiet=True))
    try:
        yield Client(url, verbose=False, analytics_enabled=False)
    finally:
        demo.close()


def test_cancel_stops_a_long_generation(slow_client):
    request = {**GOOD, **SLOW_MODEL, "temperature": 1.0}
    job = slow_client.submit(**{**request, "max_new_chars": requests.MAX_NEW_CHARS}, api_name="/generate")
    for update in job:
        if len(update) > 20:
            break
    assert job.cancel()
    assert len(job.outputs()[-1]) < len("ROMEO:") + requests.MAX_NEW_CHARS
    assert slow_client.predict(**{**request, "max_new_chars": 5}, api_name="/generate").startswith("ROMEO:")


def test_models_endpoint_returns_the_table(client, app_models):
    table = client.predict(api_name="/models")
    assert [(row["cell"], row["hidden_size"]) for row in table] == [("rnn", 32), ("lstm", 64), ("lstm", 256)]
    assert table == ModelZoo(app_models).table()
    for row in table:
        assert isinstance(row["params"], int) and isinstance(row["val_bpc"], float)


# ---- the README's examples, run as written ------------------------------------------------------------


DOCUMENTED_EXAMPLES = ("README.md", "docs/api.md")  # the Python client in the first, JavaScript and curl in the second


def readme_text() -> str:
    return "\n".join((REPO_ROOT / name).read_text(encoding="utf-8") for name in DOCUMENTED_EXAMPLES)


def readme_example(language: str, calls: str = "generate") -> str:
    """The documented code block in ``language`` that calls ``calls`` (README.md or docs/api.md)."""
    blocks = re.findall(rf"```{language}\n(.*?)```", readme_text(), flags=re.DOTALL)
    matching = [block for block in blocks if calls in block and README_URL.rstrip("/") in block]
    assert len(matching) == 1, f"expected one {language} example calling {calls} in the README or docs/api.md"
    return matching[0]


def at(url: str, code: str) -> str:
    return code.replace(README_URL.rstrip("/"), url.rstrip("/"))


def call_over_http(app_url: str, body: str) -> str:
    import httpx

    base = app_url.rstrip("/")
    with httpx.Client(timeout=30) as http:
        posted = http.post(
            f"{base}/gradio_api/call/generate", content=body, headers={"Content-Type": "application/json"}
        )
        posted.raise_for_status()
        return http.get(f"{base}/gradio_api/call/generate/{posted.json()['event_id']}").text


def test_readme_python_example(app_url):
    # The README's client as written would start gradio_client's telemetry thread: switch it off.
    code = at(app_url, readme_example("python", calls='api_name="/generate"')).replace(
        '/")', '/", verbose=False, analytics_enabled=False)', 1
    )
    assert "analytics_enabled=False" in code
    namespace: dict = {}
    exec(compile(code, "README python example", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["text"].startswith("ROMEO:")
    assert len(namespace["text"]) == len("ROMEO:") + 200


@pytest.mark.slow
def test_readme_training_example(app_url, monkeypatch):
    code = at(app_url, readme_example("python", calls='api_name="/train"'))
    code = code.replace('/")', '/", verbose=False, analytics_enabled=False)', 1)
    monkeypatch.chdir(REPO_ROOT)  # the example reads the shipped text by its path in the repository
    namespace: dict = {}
    exec(compile(code, "README training example", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["model_id"] and namespace["job"].outputs()[-1]["done"]
    assert namespace["mine"].startswith("ROMEO:") and len(namespace["mine"]) == len("ROMEO:") + 200


def test_readme_curl_example(app_url):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", at(app_url, readme_example("bash"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "event: generating" in result.stdout
    assert "event: complete" in result.stdout
    assert 'data: ["ROMEO:' in result.stdout


def test_readme_curl_flow_over_httpx(app_url):
    """The same flow without curl: POST returns an event id, GET streams the updates."""
    events = call_over_http(app_url, '{"data": ["ROMEO:", "lstm", 256, 0.8, 50, 0, 1.0, 42]}')
    assert events.count("event: generating") >= 2
    assert "event: complete" in events


def js_client_folder() -> Path | None:
    """A folder with @gradio/client installed from npm (cached between runs), or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    folder = Path(os.environ.get("RNN_DEMO_JS_CLIENT_DIR", REPO_ROOT / ".cache" / "js-client"))
    if not (folder / "node_modules" / "@gradio" / "client").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "@gradio/client@2"],
                cwd=folder,
                capture_output=True,
                timeout=25,
                check=True,
            )
        except (subprocess.SubprocessError, OSError):
            return None
    return folder


def test_readme_javascript_example(app_url):
    folder = js_client_folder()
    if folder is None:
        pytest.skip("node/npm are missing or `npm install @gradio/client` failed (offline?)")
    script = folder / "readme_example.mjs"
    script.write_text(at(app_url, readme_example("js")), encoding="utf-8")
    result = subprocess.run(["node", script.name], cwd=folder, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:")
    assert len(result.stdout.rstrip("\n")) == len("ROMEO:") + 200


def test_the_hidden_size_survives_gradio_dropping_a_sessions_updated_choices():
    """Gradio keeps updated component state for STATE_SESSION_CAPACITY sessions only; after that a
    page falls back to the initial choices, so the size must not be limited to them (the server
    validates it against the zoo instead)."""
    dropdown = next(b for b in app.demo.blocks.values() if getattr(b, "elem_id", None) == "hidden-size")
    assert dropdown.preprocess(999) == 999  # not in the initial choices: passed on, not refused
    with pytest.raises(requests.RequestError, match="hidden size 999"):
        requests.validate_request(app.ZOO, "x", "lstm", 999, 0.8, 10, 0, 1.0, 1)
