"""The About tab's figures, code and claims, and the Models tab's plot (rnn_demo/ui/about_tab.py,
rnn_demo/ui/models_tab.py), checked against the files and code they describe."""

import ast
import collections
import importlib.util
import inspect
import itertools
import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import gradio as gr
import pytest
import torch
from conftest import REPO_ROOT, TINY_SHAKESPEARE
from test_rnn import BATCH, HIDDEN, INPUT, STEPS

import app
import rnn_demo.model.rnn
from rnn_demo.rnn import RNN
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui import about_tab, models_tab
from rnn_demo.ui.i18n import translated

MODELS = REPO_ROOT / "models"
SVG = "{http://www.w3.org/2000/svg}"
TRAIN_CHARS, VALIDATION_CHARS = 1_003_854, 55_770  # tiny shakespeare's train and validation splits


# ---- 1. the test shown on the page is the test in tests/test_rnn.py -----------------------------


def test_the_page_shows_the_exact_source_of_the_hidden_state_test():
    source = (REPO_ROOT / "tests" / "test_rnn.py").read_text(encoding="utf-8")
    name = "test_hidden_state_is_a_state_not_a_weight_and_is_fed_back"
    [node] = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert not node.decorator_list  # the page shows no decorator
    assert about_tab.HIDDEN_STATE_TEST_SOURCE == ast.get_source_segment(source, node) + "\n"


# ---- 2. the working loop shown on the page is the layer's own ------------------------------------


def test_the_working_loop_is_the_source_of_plain_recurrence():
    assert about_tab.working_recurrence_source() == inspect.getsource(rnn_demo.model.rnn._plain_recurrence)
    assert "h = activate(" in about_tab.working_recurrence_source()  # the state is fed back


def test_function_source_raises_value_error_for_a_missing_function():
    with pytest.raises(ValueError, match="no_such_function"):
        about_tab.function_source(about_tab.RNN_SOURCE_PATH, "no_such_function")
    # a method is not a top-level function
    with pytest.raises(ValueError, match="forward"):
        about_tab.function_source(about_tab.RNN_SOURCE_PATH, "forward")


def test_function_source_matches_inspect_with_decorators_and_form_feeds(tmp_path):
    path = tmp_path / "sample_module.py"
    path.write_text(
        "import functools\n\x0c\n\n"
        "def first():\n    return 1\n\n\n"
        "def identity(function):\n    return function\n\n\n"
        "@identity\n"
        "@functools.lru_cache(maxsize=None)\n"
        "def decorated(x):\n    # a comment\n    return x  # \x0c\n\n\n"
        "def last():\n    return 3\n",
        encoding="utf-8",
    )
    spec = importlib.util.spec_from_file_location("sample_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("first", "identity", "last"):
        assert about_tab.function_source(path, name) == inspect.getsource(getattr(module, name))
    assert about_tab.function_source(path, "decorated") == inspect.getsource(module.decorated)
    assert about_tab.function_source(path, "decorated").startswith("@identity\n@functools.lru_cache")


# ---- 3. the broken RNN fails the hidden-state test's checks; the working one passes ----------------


def hidden_state_checks(run, parameters, h0_shape) -> dict[str, bool]:
    """The checks of test_hidden_state_is_a_state_not_a_weight_and_is_fed_back for a one-layer
    ``run(input, h0) -> (output, state)``, each True where the layer passes it."""
    torch.manual_seed(0)
    input = torch.randn(STEPS, BATCH, INPUT)
    output, state = run(input, torch.zeros(h0_shape))
    other = input.clone()
    other[0] += 1.0
    return {
        "state shape": state.shape == (1, BATCH, HIDDEN),
        "state has a batch dimension": BATCH in state.shape[:-1],
        "state is not a weight's shape": not any(state.shape == p.shape for p in parameters),
        "last state is the last output": state.reshape(-1).shape == output[-1].reshape(-1).shape
        and torch.equal(state.reshape(output[-1].shape), output[-1]),
        "the first input reaches the last output": not torch.allclose(
            run(other, torch.zeros(h0_shape))[0][-1], output[-1]
        ),
        "h0 changes the outputs": not torch.allclose(run(input, torch.ones(h0_shape))[0], output),
    }


@pytest.fixture(scope="module")
def broken_rnn():
    namespace = {}
    exec(about_tab.BROKEN_RNN_SOURCE, namespace)  # noqa: S102 (the page's own text)
    torch.manual_seed(0)
    return namespace["BrokenRNN"](INPUT, HIDDEN)


def test_the_working_rnn_passes_every_check():
    torch.manual_seed(0)
    rnn = RNN(INPUT, HIDDEN, num_layers=1)
    with torch.no_grad():
        checks = hidden_state_checks(rnn, list(rnn.parameters()), (1, BATCH, HIDDEN))
    assert all(checks.values()), checks


def test_the_broken_rnn_fails_the_checks_for_both_bugs(broken_rnn):
    with torch.no_grad():
        output, state = broken_rnn(torch.randn(STEPS, BATCH, INPUT), torch.zeros(BATCH, HIDDEN))
        checks = hidden_state_checks(broken_rnn, list(broken_rnn.parameters()), (BATCH, HIDDEN))
    assert output.shape == (STEPS, BATCH, HIDDEN)  # "outputs of the right shape"
    # bug 1: the "state" is W_hh's weight, hidden x hidden, with no batch dimension
    assert state is broken_rnn.W_hh.weight
    assert state.shape == (HIDDEN, HIDDEN)
    assert not checks["state shape"]
    assert not checks["state has a batch dimension"]
    assert not checks["state is not a weight's shape"]
    assert not checks["last state is the last output"]
    # bug 2: the state is never fed back, so the first input cannot reach the last output
    assert not checks["the first input reaches the last output"]
    # ... while h0 still changes every output (W_hh h0 is added at every step), as the page says
    assert checks["h0 changes the outputs"]


def test_each_broken_output_depends_only_on_its_own_input(broken_rnn):
    torch.manual_seed(1)
    input, h0 = torch.randn(STEPS, BATCH, INPUT), torch.randn(BATCH, HIDDEN)
    with torch.no_grad():
        output, _ = broken_rnn(input, h0)
        for t in range(STEPS):
            alone, _ = broken_rnn(input[t : t + 1], h0)
            assert torch.allclose(alone[0], output[t])


# ---- 4. the figures in the text -----------------------------------------------------------------


def bigram_bits_per_char(text: str, boundary_pair: bool) -> float:
    """Validation bits/char of the add-one-smoothed bigram model counted on the training split.

    Vocabulary: the characters of the whole text (as the trainer's tokenizer). Like the trainer's
    ``evaluate``, which reads the split as one stream from its start, validation characters 1..n-1
    are scored, each given the one before it; the first has no previous character in the split and is
    not scored. With ``boundary_pair`` it is scored too, given the training split's last character.
    """
    train, validation = text[:TRAIN_CHARS], text[TRAIN_CHARS : TRAIN_CHARS + VALIDATION_CHARS]
    vocab_size = len(set(text))
    pairs = collections.Counter(itertools.pairwise(train))
    contexts = collections.Counter(train[:-1])  # how often each character has a successor
    scored = list(itertools.pairwise(validation))
    if boundary_pair:
        scored.insert(0, (train[-1], validation[0]))
    bits = sum(-math.log2((pairs[(a, b)] + 1) / (contexts[a] + vocab_size)) for a, b in scored)
    return bits / len(scored)


def test_the_split_and_the_scoring_convention_reproduce_the_trainers_unigram_baseline():
    text = TINY_SHAKESPEARE.read_text(encoding="utf-8")
    train, validation = text[:TRAIN_CHARS], text[TRAIN_CHARS : TRAIN_CHARS + VALIDATION_CHARS]
    counts = collections.Counter(train)
    vocab_size = len(set(text))
    nats = -sum(math.log((counts[c] + 1) / (len(train) + vocab_size)) for c in validation[1:]) / (len(validation) - 1)
    metrics = json.loads((MODELS / "lstm-h64" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["data"]["train"] == TRAIN_CHARS and metrics["data"]["validation"] == VALIDATION_CHARS
    assert round(nats, 5) == metrics["unigram_val_loss"]


def test_bigram_val_bpc_is_the_recomputed_bigram_score():
    text = TINY_SHAKESPEARE.read_text(encoding="utf-8")
    assert round(bigram_bits_per_char(text, boundary_pair=False), 2) == about_tab.BIGRAM_VAL_BPC
    # scoring the first validation character too (after train's last) changes nothing at 2 decimals
    assert round(bigram_bits_per_char(text, boundary_pair=True), 2) == about_tab.BIGRAM_VAL_BPC
    assert f"{about_tab.BIGRAM_VAL_BPC:.2f} bits/char" in about_tab.BUGS_EXPLAINED


def test_shipped_val_bpc_is_the_range_of_the_shipped_models():
    text_models = ModelZoo(MODELS).models()  # the Shakespeare models (the poem models are not sizes)
    scores = [json.loads((info.path / "metrics.json").read_text(encoding="utf-8"))["val_bpc"] for info in text_models]
    assert len(scores) > 1
    assert about_tab.SHIPPED_VAL_BPC == (round(min(scores), 2), round(max(scores), 2))
    zoo_scores = [info.val_bpc for info in ModelZoo(MODELS).models()]
    assert about_tab.SHIPPED_VAL_BPC == (round(min(zoo_scores), 2), round(max(zoo_scores), 2))
    low, high = about_tab.SHIPPED_VAL_BPC
    assert f"score {low:.2f} to {high:.2f}" in about_tab.BUGS_EXPLAINED
    assert high < about_tab.BIGRAM_VAL_BPC  # carrying the state beats the bigram bound


# ---- 5. the unrolled recurrence -----------------------------------------------------------------


def svg_width(root) -> float:
    return float(root.get("viewBox").split()[2])


@pytest.mark.parametrize("steps", [1, 4, 7])
def test_the_unrolled_svg_chains_the_state_through_every_cell(steps):
    root = ET.fromstring(about_tab.unrolled_recurrence_svg(steps))
    assert root.tag == f"{SVG}svg"
    cells = [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "cell"]
    assert [rect.get("data-step") for rect in cells] == [str(step) for step in range(1, steps + 1)]
    states = [line for line in root.iter(f"{SVG}line") if line.get("class") == "state"]
    nodes = ["h0", *(f"cell{step}" for step in range(1, steps + 1)), "hT"]
    assert [(line.get("data-from"), line.get("data-to")) for line in states] == list(itertools.pairwise(nodes))
    for line in states:
        assert float(line.get("x2")) > float(line.get("x1"))  # left to right
        assert line.get("y1") == line.get("y2")
    # each state arrow leaves its cell's right edge and ends before the next cell's left edge
    for step, rect in enumerate(cells, start=1):
        left, right = float(rect.get("x")), float(rect.get("x")) + float(rect.get("width"))
        into, out_of = states[step - 1], states[step]
        assert float(into.get("x2")) <= left
        assert float(out_of.get("x1")) == right
    inputs = [line for line in root.iter(f"{SVG}line") if line.get("class") == "input"]
    assert len(inputs) == steps
    texts = "".join(element.text or "" for element in root.iter(f"{SVG}text"))
    assert f"h{str(steps).translate(str.maketrans('0123456789', '₀₁₂₃₄₅₆₇₈₉'))}" in texts


def test_the_unrolled_svg_grows_with_the_number_of_steps():
    widths = [svg_width(ET.fromstring(about_tab.unrolled_recurrence_svg(steps))) for steps in (1, 2, 4, 7)]
    assert widths == sorted(widths) and len(set(widths)) == len(widths)
    for steps in (1, 4, 7):
        root = ET.fromstring(about_tab.unrolled_recurrence_svg(steps))
        right_edge = max(float(line.get("x2")) for line in root.iter(f"{SVG}line"))
        assert right_edge < svg_width(root)  # everything is drawn inside the picture


@pytest.mark.parametrize("steps", [0, -1, 2.0, True, "3", None])
def test_the_unrolled_svg_refuses_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        about_tab.unrolled_recurrence_svg(steps)


# ---- 6. the Models tab's plot data --------------------------------------------------------------


def test_the_plot_has_one_row_per_shipped_model_in_cell_then_size_order():
    zoo = ModelZoo(MODELS)
    data = models_tab.bits_per_char_plot_data(zoo)
    assert list(data.columns) == models_tab.PLOT_COLUMNS
    infos = [info for info in zoo.models() if info.val_bpc is not None]
    assert len(data) == len(infos) == len(zoo.models())
    assert data["cell"].nunique() == 3
    order = {"rnn": 0, "gru": 1, "lstm": 2}
    expected = sorted(infos, key=lambda info: (order[info.cell], info.params))
    assert data["model"].tolist() == [info.name for info in expected]
    by_name = {info.name: info for info in infos}
    for row in data.itertuples(index=False):
        info = by_name[row[1]]
        assert list(row) == [
            info.cell.upper(),
            info.name,
            info.hidden_size,
            info.params,
            pytest.approx(info.val_bpc, abs=5e-4),
        ]
    # within each cell, more parameters come later
    for _, group in data.groupby("cell", sort=False):
        assert group["parameters"].is_monotonic_increasing


def test_the_plot_of_an_empty_zoo_is_empty_with_the_same_columns(tmp_path):
    data = models_tab.bits_per_char_plot_data(ModelZoo(tmp_path / "none"))
    assert len(data) == 0
    assert list(data.columns) == models_tab.PLOT_COLUMNS


@pytest.mark.parametrize("edit", ["remove", "null", "text"])
def test_a_model_without_a_validation_score_is_left_out_of_the_plot(tmp_path, edit):
    for name in ("rnn-h64", "lstm-h64"):
        shutil.copytree(MODELS / name, tmp_path / name)
    metrics_path = tmp_path / "lstm-h64" / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    if edit == "remove":
        del metrics["val_bpc"]
    else:
        metrics["val_bpc"] = None if edit == "null" else "2.3"
    metrics_path.write_text(json.dumps(metrics), encoding="utf-8")
    zoo = ModelZoo(tmp_path)
    assert len(zoo.models()) == 2  # the model is still served ...
    data = models_tab.bits_per_char_plot_data(zoo)
    assert data["model"].tolist() == ["rnn-h64"]  # ... but not plotted
    assert list(data.columns) == models_tab.PLOT_COLUMNS


# ---- 7. the built demo --------------------------------------------------------------------------


def descendants(block):
    for child in getattr(block, "children", []):
        yield child
        yield from descendants(child)


def tab(demo, label):
    """The tab whose English name is ``label``."""
    [found] = [block for block in demo.blocks.values() if isinstance(block, gr.Tab) and translated(block.label) == label]
    return found


@pytest.fixture(scope="module")
def demo():
    return app.build_demo(ModelZoo(MODELS))


def test_the_models_tab_has_the_line_plot(demo):
    plots = [block for block in descendants(tab(demo, "Models")) if isinstance(block, gr.LinePlot)]
    assert len(plots) == 1
    [plot] = plots
    assert (plot.x, plot.y, plot.color) == ("parameters", "val bits/char", "cell")
    assert not [block for block in descendants(tab(demo, "About")) if isinstance(block, gr.LinePlot)]


def test_the_about_tab_has_the_svg_and_the_code(demo):
    about = list(descendants(tab(demo, "About")))
    svgs = [block for block in about if isinstance(block, gr.HTML)]
    assert [translated(block.value) for block in svgs] == [about_tab.unrolled_recurrence_svg()]
    ET.fromstring(translated(svgs[0].value))
    ET.fromstring(translated(svgs[0].value, "zh-CN"))
    codes = [block for block in about if isinstance(block, gr.Code)]
    # gr.Code keeps its value stripped of the trailing newline
    assert [block.value for block in codes] == [
        about_tab.BROKEN_RNN_SOURCE.strip(),
        about_tab.working_recurrence_source().strip(),
        about_tab.HIDDEN_STATE_TEST_SOURCE.strip(),
    ]
    assert all(block.language == "python" and not block.interactive for block in codes)
    # the broken and the working loop side by side, in one row
    [row] = [block for block in about if isinstance(block, gr.Row)]
    assert [block.value for block in row.children] == [codes[0].value, codes[1].value]


def test_the_demo_of_an_empty_zoo_builds_without_a_line_plot(tmp_path):
    empty = app.build_demo(ModelZoo(tmp_path / "none"))
    assert not [block for block in descendants(tab(empty, "Models")) if isinstance(block, gr.LinePlot)]
    assert [block for block in descendants(tab(empty, "About")) if isinstance(block, gr.HTML)]
    assert [block for block in descendants(tab(empty, "Models")) if getattr(block, "elem_id", None) == "models-table"]


def test_the_page_does_not_import_torch_to_show_the_working_loop():
    """about_tab reads the loop with ast (app.py serves the page before torch is imported)."""
    source = Path(about_tab.__file__).read_text(encoding="utf-8")
    imported = {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    # Of the project, only the translations (which import no torch either: app.py imports them too,
    # and tests/test_app.py checks that importing app imports no torch).
    assert {name.split(".")[0] for name in imported}.isdisjoint({"torch"})
    assert {name for name in imported if name.split(".")[0] == "rnn_demo"} == {"rnn_demo.ui.i18n"}
