"""The views inside a model (rnn_demo.analysis) agree with the model itself: explain's and score's
probabilities with a plain forward pass and with the validation figures in metrics.json, the
states neurons shows with the state generation carries, and the unit ranking with features
computed by hand."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_demo.analysis import FEATURES, explain, layer_states, neurons, rank_units, score, text_features
from rnn_demo.analysis.predictions import read
from rnn_demo.analysis.units import correlations
from rnn_demo.generation import engine
from rnn_demo.generation.sampling import sampler_for
from rnn_demo.model import CharRNN
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.training.data import load_text_splits

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
SHIPPED = {  # the text models (the poem models read poems: tests/test_poetry.py)
    info.name: json.loads((info.path / "config.json").read_text(encoding="utf-8")) for info in ModelZoo(MODELS_DIR).models()
}
# The smallest shipped model of each cell: fast, and enough to tell the cells apart.
SMALLEST = {
    cell: min(
        (name for name, config in SHIPPED.items() if config["cell"] == cell), key=lambda n: SHIPPED[n]["hidden_size"]
    )
    for cell in sorted({config["cell"] for config in SHIPPED.values()})
}


@pytest.fixture(scope="module")
def splits(shakespeare_path):
    return load_text_splits(str(shakespeare_path))


@pytest.fixture(scope="module")
def small_models():
    """cell -> the smallest shipped model of that cell, in eval mode."""
    return {cell: CharRNN.from_pretrained(MODELS_DIR / name).eval() for cell, name in SMALLEST.items()}


@pytest.fixture(params=sorted(SMALLEST))
def model(request, small_models):
    return small_models[request.param]


def test_the_shipped_models_are_what_these_tests_expect():
    assert set(SMALLEST) == {"rnn", "gru", "lstm"}
    assert any(config["num_layers"] > 1 for config in SHIPPED.values())  # the per-layer tests mean something


@torch.inference_mode()
def forward_probs(model: CharRNN, ids: list[int]) -> torch.Tensor:
    """P(next char) after each of ids, from one plain forward pass: (n, V) float64."""
    logits, _ = model(torch.tensor([ids]))
    return torch.softmax(logits[0].double(), dim=-1)


# ---- explain and score --------------------------------------------------------------------------


def test_explain_gives_the_probabilities_of_a_plain_forward_pass(model, splits):
    text = splits.validation[:600]
    ids = model.tokenizer.encode(text)
    probs = forward_probs(model, ids)
    result = explain(model, text, top_k=5)
    entries = result["chars"]
    assert [entry["char"] for entry in entries] == list(text)
    assert result["skipped"] == []
    assert entries[0] == {"char": text[0], "prob": None, "bits": None, "top": []}
    for i, entry in enumerate(entries[1:], start=1):
        expected = probs[i - 1]  # read after characters 0..i-1
        assert entry["prob"] == pytest.approx(float(expected[ids[i]]), abs=1e-5)
        assert entry["bits"] == pytest.approx(-math.log2(entry["prob"]), rel=1e-9, abs=1e-12)
        top = entry["top"]
        assert len(top) == 5
        top_probs = [p for _, p in top]
        assert top_probs == sorted(top_probs, reverse=True)
        assert len({char for char, _ in top}) == 5
        for char, p in top:
            assert p == pytest.approx(float(expected[model.vocab.index(char)]), abs=1e-5)
        # the top 5 are the 5 likeliest characters (up to ties within float rounding)
        fifth_best = float(expected.topk(5).values[-1])
        assert min(top_probs) == pytest.approx(fifth_best, abs=1e-5)
        # the actual character is in the top exactly when it is likelier than the fifth, with its own prob
        listed = dict(top)
        if entry["char"] in listed:
            assert listed[entry["char"]] == pytest.approx(entry["prob"], abs=1e-6)
        else:
            assert entry["prob"] <= min(top_probs) + 1e-6
    bits = [entry["bits"] for entry in entries[1:]]
    assert result["bits_per_char"] == pytest.approx(sum(bits) / len(bits), rel=1e-9)
    assert result["bits_per_char"] == pytest.approx(
        float(-probs[torch.arange(len(ids) - 1), ids[1:]].log2().mean()), abs=1e-5
    )
    assert score(model, text) == {
        "bits_per_char": pytest.approx(result["bits_per_char"], rel=1e-9),
        "chars_scored": len(ids) - 1,
        "skipped": [],
    }


def test_explain_skips_unknown_characters_and_says_which(small_models):
    model = small_models["lstm"]
    assert not {"é", "#", "5", "\t"} & set(model.vocab)
    text = "Thé king#\tis 5 dead, é#"
    known = "Th kingis  dead, "
    result = explain(model, text, top_k=3)
    assert result["skipped"] == ["é", "#", "\t", "5"]  # distinct, in order of first appearance
    assert [entry["char"] for entry in result["chars"]] == list(known)
    assert result == {**explain(model, known, top_k=3), "skipped": ["é", "#", "\t", "5"]}
    assert score(model, text) == {**score(model, known), "skipped": ["é", "#", "\t", "5"]}
    assert score(model, text)["chars_scored"] == len(known) - 1


def test_explain_of_too_short_texts(small_models):
    model = small_models["gru"]
    assert explain(model, "") == {"bits_per_char": None, "skipped": [], "chars": []}
    assert explain(model, "A") == {
        "bits_per_char": None,
        "skipped": [],
        "chars": [{"char": "A", "prob": None, "bits": None, "top": []}],
    }
    assert explain(model, "é") == {"bits_per_char": None, "skipped": ["é"], "chars": []}
    assert score(model, "A") == {"bits_per_char": None, "chars_scored": 0, "skipped": []}
    two = explain(model, "Ab", top_k=model.vocab_size)  # every character listed
    assert two["bits_per_char"] == pytest.approx(two["chars"][1]["bits"])
    assert sum(p for _, p in two["chars"][1]["top"]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("top_k", [0, -1, 66, True, 2.0, "5", None])
def test_explain_refuses_a_top_k_out_of_range(small_models, top_k):
    model = small_models["rnn"]
    assert model.vocab_size == 65
    with pytest.raises(ValueError, match="top_k"):
        explain(model, "ROMEO:", top_k=top_k)


def test_reading_in_chunks_gives_what_one_chunk_gives(model, splits):
    ids = model.tokenizer.encode(splits.validation[1000:1300])
    whole = read(model, ids, top_k=4, chunk_len=10_000)
    assert whole.target_log_probs.shape == (len(ids) - 1,) and whole.top_ids.shape == (len(ids) - 1, 4)
    whole_bits = -float(whole.target_log_probs.mean()) / math.log(2)
    for chunk_len in (1, 7, 64, 150):
        chunked = read(model, ids, top_k=4, chunk_len=chunk_len)
        # The state carried from chunk to chunk is the state one call reaches: the same numbers,
        # up to float32 rounding (torch multiplies a chunk of 1 or 7 steps with another kernel, and
        # the rounding is carried along the 300 steps: ~4e-6 at most here).
        torch.testing.assert_close(chunked.target_log_probs, whole.target_log_probs, rtol=0, atol=2e-5)
        torch.testing.assert_close(chunked.top_probs, whole.top_probs, rtol=0, atol=1e-5)
        assert torch.equal(chunked.top_ids, whole.top_ids)
        assert -float(chunked.target_log_probs.mean()) / math.log(2) == pytest.approx(whole_bits, abs=1e-6)
    assert read(model, ids, top_k=0).top_ids is None


def test_explain_reads_a_long_text_in_chunks_with_the_state_carried(small_models, splits):
    model = small_models["lstm"]
    text = splits.validation[:2500]  # longer than one chunk (CHUNK_LEN = 2048)
    ids = model.tokenizer.encode(text)
    probs = forward_probs(model, ids)
    explained = [entry["prob"] for entry in explain(model, text, top_k=1)["chars"][1:]]
    expected = probs[torch.arange(len(ids) - 1), ids[1:]]
    np.testing.assert_allclose(explained, expected.numpy(), rtol=0, atol=1e-5)


def scored_model_params():
    # The h64 models take about a second together; the bigger ones about 15 s more.
    return [
        pytest.param(name, marks=() if config["hidden_size"] <= 64 else pytest.mark.slow, id=name)
        for name, config in SHIPPED.items()
    ]


@pytest.mark.parametrize("name", scored_model_params())
def test_score_of_the_validation_split_is_the_figure_in_metrics_json(name, splits):
    metrics = json.loads((MODELS_DIR / name / "metrics.json").read_text(encoding="utf-8"))
    assert len(splits.validation) == metrics["data"]["validation"] == 55_770
    model = CharRNN.from_pretrained(MODELS_DIR / name)
    result = score(model, splits.validation)
    assert result["chars_scored"] == 55_769 and result["skipped"] == []
    # val_loss_stored: the shipped (float16) weights read by training's evaluate, rounded to 1e-5 nats.
    assert result["bits_per_char"] * math.log(2) == pytest.approx(metrics["val_loss_stored"], abs=2e-5)
    # val_bpc: the float32 weights before storage; storing them moved the loss by up to ~1e-4 nats.
    assert result["bits_per_char"] == pytest.approx(metrics["val_bpc"], abs=1e-3)


# ---- layer states ------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [32, 300])
def test_the_last_state_of_every_layer_is_the_state_generation_carries(model, splits, length):
    text = splits.validation[2000 : 2000 + length]
    carried_h, carried_c = sampler_for(engine.Weights.from_model(model), text).state  # primed as generation primes it
    assert carried_h.shape == (model.num_layers, 1, model.hidden_size)
    for layer in range(model.num_layers):
        result = neurons(model, text, layer)
        assert result["chars"] == list(text) and result["skipped"] == []
        assert len(result["h"]) == len(text) and len(result["h"][-1]) == model.hidden_size
        np.testing.assert_allclose(result["h"][-1], carried_h[layer, 0], rtol=0, atol=2e-5)
        if model.cell == "lstm":
            np.testing.assert_allclose(result["c"][-1], carried_c[layer, 0], rtol=1e-5, atol=2e-5)
        else:
            assert "c" not in result


def test_every_layers_state_after_every_character_is_what_generation_steps_through(model, splits):
    text = splits.validation[5000:5040]
    ids = model.tokenizer.encode(text)
    weights = engine.Weights.from_model(model)
    state = engine.zero_state(weights)
    hs, cs = [], []
    for token in ids:
        _, state = engine.step(weights, np.array([token]), state)
        h, c = state
        hs.append(h[:, 0])
        cs.append(c[:, 0] if c is not None else None)
    for layer in range(model.num_layers):
        h, c = layer_states(model, ids, layer)
        assert h.dtype == torch.float32 and h.shape == (len(ids), model.hidden_size)
        np.testing.assert_allclose(h.numpy(), np.stack([step[layer] for step in hs]), rtol=0, atol=2e-5)
        if model.cell == "lstm":
            np.testing.assert_allclose(c.numpy(), np.stack([step[layer] for step in cs]), rtol=1e-5, atol=2e-5)
        else:
            assert c is None


@torch.inference_mode()
def test_the_top_layers_h_at_every_step_is_torchs_recurrent_output(model, splits):
    text = splits.validation[:500]
    ids = model.tokenizer.encode(text)
    output, _ = model.rnn(model.encoder(torch.tensor([ids])))  # (1, n, H): the top layer, every step
    top = neurons(model, text, model.num_layers - 1)
    np.testing.assert_allclose(np.array(top["h"]), output[0].numpy(), rtol=0, atol=1e-6)
    if model.num_layers > 1:  # a lower layer is another sequence (else the test above proves little)
        assert not np.allclose(np.array(neurons(model, text, 0)["h"]), output[0].numpy(), atol=1e-3)


def test_neurons_skips_unknown_characters_and_reads_empty_text(small_models):
    model = small_models["lstm"]
    result = neurons(model, "a#b", 0)
    assert result["chars"] == ["a", "b"] and result["skipped"] == ["#"]
    assert result["h"] == neurons(model, "ab", 0)["h"] and result["c"] == neurons(model, "ab", 0)["c"]
    assert neurons(model, "", 1) == {"chars": [], "h": [], "c": [], "skipped": []}
    assert neurons(small_models["gru"], "", 1) == {"chars": [], "h": [], "skipped": []}


@pytest.mark.parametrize("layer", [-1, 2, True, 1.0, "0", None])
def test_neurons_refuses_a_layer_the_model_does_not_have(small_models, layer):
    model = small_models["gru"]
    assert model.num_layers == 2
    with pytest.raises(ValueError, match="layer"):
        neurons(model, "ROMEO:", layer)
    with pytest.raises(ValueError, match="layer"):
        layer_states(model, [1, 2, 3], layer)


def test_reading_states_leaves_a_training_model_in_training_mode(small_models):
    model = small_models["rnn"]
    model.train()
    try:
        first = neurons(model, "To be, or not", 1)["h"]
        assert model.training
        assert neurons(model, "To be, or not", 1)["h"] == first  # no dropout while reading
        assert explain(model, "To be")["bits_per_char"] == explain(model, "To be")["bits_per_char"]
        assert model.training
    finally:
        model.eval()


# ---- features and units ------------------------------------------------------------------------


def features_of(text: str) -> dict[str, list[float]]:
    return {name: values.tolist() for name, values in text_features(list(text)).items()}


def test_text_features_have_one_value_per_character():
    text = 'KING:\nSay "yes" (now)!\n'
    features = text_features(list(text))
    assert list(features) == list(FEATURES)
    for values in features.values():
        assert values.shape == (len(text),) and values.dtype == np.float64
    assert all(values.shape == (0,) for values in text_features([]).values())


def test_inside_quotes_or_brackets():
    inside = features_of('a "bc" d')["inside quotes or brackets"]
    assert inside == [0, 0, 1, 1, 1, 1, 0, 0]  # both quote marks count as inside
    inside = features_of("x(a[b]c)y")["inside quotes or brackets"]
    assert inside == [0, 1, 1, 1, 1, 1, 1, 1, 0]  # nesting counts once; both brackets count as inside
    inside = features_of("a)b(c{d}e")["inside quotes or brackets"]
    assert inside[:3] == [0, 0, 0]  # a stray closing bracket does not open anything
    assert inside[3:] == [1] * 6  # still inside the "(" after "{d}" closed
    inside = features_of("it's Tom's")["inside quotes or brackets"]
    assert inside == [0] * 10  # single quotes are apostrophes
    inside = features_of('"a\nb" c')["inside quotes or brackets"]
    assert inside == [1, 1, 1, 1, 1, 0, 0]  # a quote goes on across a newline


def test_position_in_the_line():
    assert features_of("ab\ncd\n\nx")["position in the line"] == [0, 1, 2, 0, 1, 2, 0, 0]


def test_first_line_after_a_speakers_name():
    text = "ROMEO:\nBut soft!\nWhat light\n"
    flagged = features_of(text)["first line after a speaker's name"]
    lines = [0] * len("ROMEO:\n") + [1] * len("But soft!") + [0] + [0] * len("What light\n")
    assert flagged == lines
    # the flag follows each name; a line that ends the text is flagged too
    text = "First Citizen:\nSpeak.\nAll:\nSpeak"
    flagged = features_of(text)["first line after a speaker's name"]
    assert flagged == [0] * 15 + [1] * 6 + [0] + [0] * 5 + [1] * 5
    # not names: too long, not starting with a letter, not ending with a colon
    long_name = "A" * 40 + ":"  # 41 characters with its colon
    for line in (long_name, "1st:", "ROMEO", "    :"):
        assert sum(features_of(f"{line}\nnext line\n")["first line after a speaker's name"]) == 0, line
    assert sum(features_of("A" * 39 + ":\nnext\n")["first line after a speaker's name"]) == 4


def test_uppercase_vowel_and_space():
    features = features_of("Ab Ey\nU")
    assert features["uppercase"] == [1, 0, 0, 1, 0, 0, 1]
    assert features["vowel"] == [1, 0, 0, 1, 0, 0, 1]  # y is not a vowel
    assert features["space"] == [0, 0, 1, 0, 0, 0, 0]  # a newline is not a space


@pytest.fixture(scope="module")
def planted(splits):
    """(states, chars): 8 units along 3,000 characters; unit 5 follows the space feature, unit 2
    follows the vowel feature negatively, unit 3 is constant, the others are noise."""
    chars = list(splits.validation[:3000])
    features = text_features(chars)
    rng = np.random.default_rng(0)
    states = rng.normal(size=(len(chars), 8))
    states[:, 5] = features["space"] + 0.1 * rng.normal(size=len(chars))
    states[:, 2] = -2.0 * features["vowel"] + 0.6 * rng.normal(size=len(chars))
    states[:, 3] = 0.7
    return states, chars


def test_rank_units_finds_a_planted_unit(planted):
    states, chars = planted
    ranked = rank_units(states, chars, top=10)
    assert ranked[0]["unit"] == 5 and ranked[0]["feature"] == "space" and ranked[0]["correlation"] > 0.9
    assert ranked[1]["unit"] == 2 and ranked[1]["feature"] == "vowel" and ranked[1]["correlation"] < -0.7
    assert 3 not in [entry["unit"] for entry in ranked]  # a constant unit correlates with nothing
    assert len(ranked) == 7  # every other unit, with its best feature
    strengths = [abs(entry["correlation"]) for entry in ranked]
    assert strengths == sorted(strengths, reverse=True)
    assert all(strength < 0.1 for strength in strengths[2:])  # noise
    features = text_features(chars)
    for entry in ranked:  # each correlation is the Pearson correlation with the feature it names
        expected = np.corrcoef(states[:, entry["unit"]], features[entry["feature"]])[0, 1]
        assert entry["correlation"] == pytest.approx(expected, abs=1e-9)
        others = [
            abs(np.corrcoef(states[:, entry["unit"]], values)[0, 1]) for values in features.values() if values.std() > 0
        ]
        assert abs(entry["correlation"]) == pytest.approx(max(others), abs=1e-9)
    assert rank_units(states, chars, top=1) == ranked[:1]


def test_correlations_table_has_a_row_per_feature(planted):
    states, chars = planted
    names, table = correlations(states, chars)
    assert names == list(FEATURES) and table.shape == (len(FEATURES), 8)
    assert np.all(table[:, 3] == 0) and np.all(np.abs(table) <= 1 + 1e-12)


def test_rank_units_of_real_states(small_models, splits):
    model = small_models["lstm"]
    text = splits.validation[:2000]
    result = neurons(model, text, 1)
    ranked = rank_units(np.array(result["h"]), result["chars"], top=5)
    assert len(ranked) == 5 and all(0 <= entry["unit"] < model.hidden_size for entry in ranked)
    assert abs(ranked[0]["correlation"]) > 0.5  # a trained model has units that track the text


@pytest.mark.parametrize("shape", [(2999, 8), (3001, 8), (3000,), (3000, 2, 4)])
def test_rank_units_refuses_states_of_the_wrong_shape(planted, shape):
    _, chars = planted
    with pytest.raises(ValueError, match="states must be"):
        rank_units(np.zeros(shape), chars)
