"""The views inside the network as requests and endpoints: /explain, /score, /neurons, /compare,
their validation (one sentence, the server carries on), and the page's rendering of them."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from conftest import wait_until
from gradio_client.exceptions import AppError

import app
from rnn_demo.analysis import explain, layer_states, score, text_ids
from rnn_demo.serving import views
from rnn_demo.serving.requests import MAX_VIEW_CHARS, RequestError
from rnn_demo.serving.streaming import generate_stream
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui import compare_tab, inside_tab

TEXT = "ROMEO:\nWhat light through yonder window breaks?\n"


@pytest.fixture(scope="module")
def zoo(app_models):
    return ModelZoo(app_models)


# ---- the requests ---------------------------------------------------------------------------------


def test_explain_request_names_the_model_and_answers_as_the_library_does(zoo):
    answer = views.explain_request(zoo, TEXT + "ǂ", "lstm", 64, 3)
    model = zoo.load("lstm", 64)
    assert answer == {"model": "lstm-h64", **explain(model, TEXT + "ǂ", 3)}
    assert answer["skipped"] == ["ǂ"] and len(answer["chars"]) == len(TEXT)
    assert all(len(entry["top"]) == 3 for entry in answer["chars"][1:])


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"text": "a" * (MAX_VIEW_CHARS + 1)}, f"The text is {MAX_VIEW_CHARS + 1:,} characters long; the limit is"),
        ({"text": ""}, "The text is empty"),
        ({"text": 42}, "text must be text, got int."),
        ({"text": "ab\ud800"}, "lone surrogate (U+D800)"),
        ({"cell": "transformer"}, "Unknown cell 'transformer'; available: rnn, lstm."),
        ({"hidden_size": 65}, "No lstm model with hidden size 65; available: 64, 256."),
        ({"hidden_size": "64"}, "hidden_size must be a whole number"),
        ({"top_k": 0}, "top_k must be between 1 and"),
        ({"top_k": 11}, "top_k must be between 1 and 10, got 11."),
        ({"top_k": 2.5}, "top_k must be a whole number"),
        ({"text": "ǂǂǂ"}, "lstm-h64 knows none of the text's characters (it does not know 'ǂ')"),
        ({"text": "Aǂ"}, "lstm-h64 knows only one of the text's characters"),
        ({"text": "A"}, "The text has one character; give at least 2"),
    ],
)
def test_explain_refuses_bad_input_with_one_sentence(zoo, arguments, message):
    request = {"text": TEXT, "cell": "lstm", "hidden_size": 64, "top_k": 5, **arguments}
    with pytest.raises(RequestError) as caught:
        views.explain_request(zoo, **request)
    assert message in str(caught.value)
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")  # one sentence


def test_the_views_cap_is_at_least_2000_characters_and_the_page_uses_it(zoo):
    assert MAX_VIEW_CHARS >= 2000
    views.explain_request(zoo, "a" * MAX_VIEW_CHARS, "lstm", 64)  # at the cap: answered
    demo = app.build_demo(zoo)
    text_box = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "inside-text")
    assert text_box.max_length == MAX_VIEW_CHARS


def test_score_rates_the_text_under_every_model_least_surprised_first(zoo):
    rows = views.score_request(zoo, TEXT)
    assert {row["name"] for row in rows} == {info.name for info in zoo.models()}
    assert [row["bits_per_char"] for row in rows] == sorted(row["bits_per_char"] for row in rows)
    for row in rows:
        assert set(row) == {"name", "cell", "hidden_size", "bits_per_char", "chars_scored", "skipped"}
        expected = score(zoo.load(row["cell"], row["hidden_size"]), TEXT)
        assert row["bits_per_char"] == expected["bits_per_char"] and row["chars_scored"] == len(TEXT) - 1


def test_score_refuses_a_text_no_model_can_score_and_an_empty_zoo(zoo, tmp_path):
    with pytest.raises(RequestError, match="No model knows 2 characters of the text"):
        views.score_request(zoo, "aǂǂ")
    with pytest.raises(RequestError, match="No models are available"):
        views.score_request(ModelZoo(tmp_path / "none"), "ab")


def test_score_reports_skipped_characters_per_model(zoo):
    rows = views.score_request(zoo, "abǂc")
    assert all(row["skipped"] == ["ǂ"] and row["chars_scored"] == 2 for row in rows)


def test_neurons_answers_rounded_states_and_an_lstms_cell_state(zoo):
    answer = views.neurons_request(zoo, TEXT, "lstm", 64, 0)
    assert list(answer) == ["model", "layer", "chars", "h", "c", "skipped"]
    assert answer["model"] == "lstm-h64" and answer["layer"] == 0 and answer["chars"] == list(TEXT)
    model = zoo.load("lstm", 64)
    h, c = layer_states(model, text_ids(model, TEXT).ids, 0)
    np.testing.assert_allclose(answer["h"], h.numpy(), atol=0.5 * 10**-views.STATE_DECIMALS + 1e-7)
    np.testing.assert_allclose(answer["c"], c.numpy(), atol=0.5 * 10**-views.STATE_DECIMALS + 1e-6)
    assert all(value == round(value, views.STATE_DECIMALS) for row in answer["h"] for value in row)
    rnn = views.neurons_request(zoo, TEXT, "rnn", 32, 0)
    assert "c" not in rnn and len(rnn["h"][0]) == 32


def test_neurons_refuses_a_layer_out_of_range(zoo):
    layers = zoo.info("lstm", 64).num_layers
    for layer in (-1, layers, True):
        with pytest.raises(RequestError, match="layer must be"):
            views.neurons_request(zoo, TEXT, "lstm", 64, layer)


def test_units_request_ranks_the_units_of_the_layer_shown(zoo):
    answer = views.units_request(zoo, TEXT * 3, "lstm", 64, 0, top=4)
    assert answer["h"].shape == (3 * len(TEXT), 64)
    assert len(answer["units"]) == 4
    strengths = [abs(unit["correlation"]) for unit in answer["units"]]
    assert strengths == sorted(strengths, reverse=True)


# ---- /compare -----------------------------------------------------------------------------------


def test_compare_gives_every_size_the_same_seed_and_generate_agrees(zoo, worker):
    updates = list(views.compare_stream(zoo, "ROMEO:", "lstm", 0.8, 120, 11, worker=worker))
    assert all(update["seed"] == 11 for update in updates)
    first, last = updates[0], updates[-1]
    assert [c["model"] for c in first["continuations"]] == ["lstm-h64", "lstm-h256"]
    assert all(c["text"] == "ROMEO:" and not c["done"] for c in first["continuations"])
    for column in last["continuations"]:
        assert column["done"] and column["new_chars"] == 120
        assert column["val_bpc"] == zoo.info("lstm", column["hidden_size"]).val_bpc
        alone = list(generate_stream(zoo, "ROMEO:", "lstm", column["hidden_size"], 0.8, 120, 0, 1.0, 11, worker=worker))
        assert column["text"] == alone[-1][0]
    assert worker.running_count() == 0


def test_compare_with_a_random_seed_says_which_seed_it_drew(zoo, worker):
    last = list(views.compare_stream(zoo, "To be", "lstm", 1.0, 40, -1, worker=worker))[-1]
    again = list(views.compare_stream(zoo, "To be", "lstm", 1.0, 40, last["seed"], worker=worker))[-1]
    assert [c["text"] for c in again["continuations"]] == [c["text"] for c in last["continuations"]]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"cell": "gru"}, "cell must be one of rnn, lstm, got 'gru'."),
        ({"temperature": 3}, "temperature must be between 0"),
        ({"max_new_chars": 0}, "max_new_chars must be between"),
        ({"seed": -2}, "seed must be -1 (random)"),
        ({"prompt": "x" * 5000}, "The prompt is 5,000 characters long"),
    ],
)
def test_compare_checks_everything_before_it_starts(zoo, arguments, message):
    from rnn_demo.serving.worker import GenerationWorker

    worker = GenerationWorker()
    request = {"prompt": "ROMEO:", "cell": "lstm", "temperature": 0.8, "max_new_chars": 50, "seed": 1, **arguments}
    with pytest.raises(RequestError) as caught:
        next(views.compare_stream(zoo, **request, worker=worker))
    assert message in str(caught.value)
    assert worker._thread is None  # no generation was ever started


def test_closing_compare_early_ends_every_generation(zoo, worker):
    updates = views.compare_stream(zoo, "ROMEO:", "lstm", 0.8, 2000, 3, worker=worker)
    next(updates)
    next(updates)
    updates.close()
    assert wait_until(lambda: worker.running_count() == 0, timeout=0.5)


# ---- the endpoints ------------------------------------------------------------------------------


def test_the_view_endpoints_answer_through_the_client(client):
    explained = client.predict(TEXT, "lstm", 64, 5, api_name="/explain")
    assert explained["model"] == "lstm-h64" and len(explained["chars"]) == len(TEXT)
    assert explained["chars"][0]["prob"] is None and len(explained["chars"][1]["top"]) == 5
    scored = client.predict(TEXT, api_name="/score")
    assert {row["name"] for row in scored} == {"rnn-h32", "lstm-h64", "lstm-h256"}
    states = client.predict(TEXT, "lstm", 64, 0, api_name="/neurons")
    assert len(states["h"]) == len(states["c"]) == len(TEXT) and len(states["h"][0]) == 64
    job = client.submit("ROMEO:", "lstm", 0.5, 60, 5, api_name="/compare")
    outputs = list(job)
    assert len(outputs) >= 2 and job.outputs()[-1]["seed"] == 5
    assert all(column["done"] for column in job.outputs()[-1]["continuations"])


@pytest.mark.parametrize(
    "api_name, arguments, message",
    [
        ("/explain", ("a" * (MAX_VIEW_CHARS + 1), "lstm", 64, 5), "the limit is 2,000"),
        ("/explain", (TEXT, "lstm", 63, 5), "No lstm model with hidden size 63"),
        ("/explain", (TEXT, "lstm", 64, 0), "top_k must be between 1 and"),
        ("/score", ("",), "The text is empty"),
        ("/neurons", (TEXT, "lstm", 64, 9), "layer must be 0 for lstm-h64 (it has 1 layer), got 9."),
        ("/neurons", ("a" * (views.MAX_NEURON_CHARS + 1), "lstm", 64, 0), "The text is 101 characters long; the limit is 100."),
        ("/compare", ("ROMEO:", "cnn", 0.8, 50, 1), "cell must be one of"),
    ],
)
def test_bad_view_requests_are_one_sentence_and_the_server_carries_on(client, api_name, arguments, message):
    with pytest.raises(AppError) as caught:
        client.predict(*arguments, api_name=api_name)
    assert message in str(caught.value)
    assert client.predict(TEXT, "rnn", 32, 1, api_name="/explain")["model"] == "rnn-h32"


# ---- the page's rendering -----------------------------------------------------------------------


def parsed(html: str) -> ET.Element:
    return ET.fromstring(f"<root>{html}</root>")


def test_the_confidence_view_colours_every_character_by_its_band_and_escapes_it(zoo):
    text = "a&b'c\nd"
    explained = views.explain_request(zoo, text, "lstm", 64, 3)
    root = parsed(inside_tab.confidence_html(explained))
    spans = [span for span in root.iter("span") if "data-i" in span.attrib]
    assert [int(span.get("data-i")) for span in spans] == list(range(len(text)))
    assert "".join(span.text for span in spans) == text.replace("\n", "↵")
    assert "outline" in spans[0].get("style")  # the first character is not predicted
    for span, entry in zip(spans[1:], explained["chars"][1:]):
        assert inside_tab.CONFIDENCE_BANDS[inside_tab.band_of(entry["prob"])][2] in span.get("style")
        assert f"p = {entry['prob']:.4f}" in span.get("title")


def test_bands_cover_every_probability():
    assert [inside_tab.band_of(p) for p in (1.0, 0.5, 0.49, 0.1, 0.05, 0.01, 0.002, 0.0005, 0.0)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        4,
        4,
    ]


def test_a_picked_character_shows_its_alternatives(zoo):
    explained = views.explain_request(zoo, TEXT, "lstm", 64, 5)
    sentence, label = inside_tab.alternatives(explained, 2)
    entry = explained["chars"][2]
    assert sentence.startswith("Character 3, 'M': the model gave it p = ")
    assert label == {inside_tab.shown_char(c): p for c, p in entry["top"]} and len(label) == 5
    assert inside_tab.alternatives(explained, 0)[1] is None  # the first character: nothing predicted it
    for index in (None, -1, len(TEXT), "2", True):
        assert inside_tab.alternatives(explained, index) == (
            "Click a character of the text to see what the model expected there.",
            None,
        )


def test_the_neuron_view_colours_negative_blue_and_positive_red():
    assert inside_tab.activation_colour(1.0) == "rgba(220, 38, 38, 0.85)"
    assert inside_tab.activation_colour(-0.5) == "rgba(37, 99, 235, 0.42)"
    assert inside_tab.activation_colour(-7.0) == inside_tab.activation_colour(-1.0)  # an LSTM's c is clipped
    root = parsed(inside_tab.activation_html(list("ab<"), [0.25, -1.0, 0.0]))
    spans = [span for span in root.iter("span") if "data-i" in span.attrib]
    assert [span.get("title") for span in spans] == ["'a': +0.250", "'b': -1.000", "'<': +0.000"]


def test_the_columns_show_each_model_its_score_and_its_escaped_text():
    update = {
        "seed": 1,
        "continuations": [
            {"model": "lstm-h64", "hidden_size": 64, "val_bpc": 2.3, "text": "a<b", "new_chars": 2, "done": True},
            {"model": "lstm-h9", "hidden_size": 9, "val_bpc": None, "text": "a", "new_chars": 0, "done": False},
        ],
    }
    root = parsed(compare_tab.columns_html(update))
    columns = [div for div in root.iter("div") if div.get("class") == "compare-column"]
    assert [column.get("data-model") for column in columns] == ["lstm-h64", "lstm-h9"]
    text = ET.tostring(root, encoding="unicode", method="text")
    assert "2.300 val bits/char · 2 new characters · done" in text and "no validation score" in text
    assert re.search(r"a<b", text)


def test_the_page_keeps_no_gr_state_so_api_clients_need_no_heartbeat(zoo):
    # With a gr.State anywhere on the page, Gradio's clients hold a heartbeat connection open,
    # and the README's JavaScript example would never exit.
    import gradio as gr

    demo = app.build_demo(zoo)
    assert not any(isinstance(block, gr.State) for block in demo.blocks.values())


def test_readings_keep_the_most_recent_sessions_only():
    readings = inside_tab.Readings(2)
    reading = inside_tab.Reading({"chars": []}, ["a", "b"], np.zeros((2, 3), dtype=np.float16))
    for session in ("a", "b"):
        readings.put(session, reading)
    assert readings.get("a") is reading  # "a" is now the most recent
    readings.put("c", reading)
    assert readings.get("b") is None and readings.get("a") is reading and readings.get("c") is reading
    assert [reading.unit(u) for u in (-4, 1, 1.0, 99, None, "x")] == [0, 1, 1, 2, 0, 0]
