"""The About tab: the recurrence (as text and unrolled in time), a broken RNN next to the working
one, the test that tells them apart, the parameters of ``torch.nn.RNN``, and where the code is.

Nothing here imports torch (``app.py`` serves the page before torch is imported): the working
loop's source is read from ``rnn_demo/model/rnn.py`` with :mod:`ast`, not with ``inspect``.
"""

from __future__ import annotations

import ast
import io
import re
from html import escape
from pathlib import Path

import gradio as gr

from rnn_demo.ui.i18n import CHINESE, ENGLISH, LANGUAGES, add_texts, i18n, page_text, server_text

RNN_SOURCE_PATH = Path(__file__).resolve().parent.parent / "model" / "rnn.py"
WORKING_FUNCTION = "_plain_recurrence"  # in RNN_SOURCE_PATH

# Validation bits/char of a bigram model (the next character's frequencies after each character,
# counted on the training text, add-one smoothed): the best a model that sees only the current
# character can do. tests/test_about_and_models_tabs.py recomputes it from data/tinyshakespeare.txt.
BIGRAM_VAL_BPC = 3.57
# The best and the worst validation bits/char of the models in models/ (the same test checks them).
SHIPPED_VAL_BPC = (1.95, 2.41)

ABOUT = """
### The recurrence

The plain RNN cell computes, at every time step *t*, from the input x<sub>t</sub> and its own
previous state h<sub>t-1</sub>:

    h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)

The state h<sub>t</sub> is all the network remembers of the text so far; a linear layer turns it
into scores for the next character. The GRU and LSTM cells replace this one line with gated
updates that keep information for longer.
"""

UNROLLED = """
### The same cell, unrolled in time

Drawn out over a few characters, the network is one cell used again and again, with the same weights
at every step. What changes from step to step is the state: each step's h<sub>t</sub> goes into the next step.
"""

BROKEN_INTRO = """
### A broken RNN and a working one

A hand-written RNN is easy to get subtly wrong. The version on the left runs, gives outputs of the right
shape and can even be trained, but it has two bugs. The right side is the time loop of this demo's
hand-written layer (`rnn_demo.rnn.RNN`), read from `rnn_demo/model/rnn.py` when the page is built.
Before the loop, the layer computes the input part of the formula for every step at once, so `pre[t]`
already holds W<sub>ih</sub> x<sub>t</sub> + b<sub>ih</sub> + b<sub>hh</sub>. (The layer runs this form of
the loop under `torch.func` transforms and forward-mode autograd; otherwise `_Recurrence` runs the same steps
in place, with a backward pass written out by hand.)
"""

# Written for this page: the two bugs of the source text's hand-written RNN, in a module
# small enough to read next to the working loop. tests/test_about_and_models_tabs.py runs it and
# checks that it has both bugs.
BROKEN_RNN_SOURCE = '''import torch
from torch import nn


class BrokenRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.W_ih = nn.Linear(input_size, hidden_size)
        self.W_hh = nn.Linear(hidden_size, hidden_size)

    def step(self, x, h):
        out = torch.tanh(self.W_ih(x) + self.W_hh(h))
        # BUG 1: returns a weight matrix as the state (the new h is `out`)
        return out, self.W_hh.weight

    def forward(self, inputs, h0):
        """inputs: (T, batch, input_size), h0: (batch, hidden_size)."""
        outputs = []
        for x in inputs:
            # BUG 2: every step starts from h0; h is never fed back
            out, h = self.step(x, h0)
            outputs.append(out)
        return torch.stack(outputs), h
'''

BUGS_EXPLAINED = f"""
**Bug 1.** `step` returns `W_hh.weight`, a hidden_size × hidden_size matrix of parameters. It is not a
state: it has no batch dimension, it is the same at every step, and it says nothing about the text read so far.

**Bug 2.** The loop passes the initial `h0` to every step, so nothing from step *t* reaches step *t*+1.
Each output depends only on the current input (and on `h0`, the same at every step): the network forgets
everything between characters. Trained as a character model, it can at best learn a bigram model, the
next character's probabilities given the current one alone. Counted on the training text, a bigram model
scores {BIGRAM_VAL_BPC:.2f} bits/char on the validation text; the models this demo ships, which carry their state
from step to step, score {SHIPPED_VAL_BPC[0]:.2f} to {SHIPPED_VAL_BPC[1]:.2f}.

The working loop passes each new state into the next step, `h = tanh(pre[t] + h W_hh^T)`, and returns
every step's state; the last one (h<sub>n</sub>) is how generation goes on from where it stopped.
"""

TEST_INTRO = """
### The test that tells them apart

This test from `tests/test_rnn.py` passes for this demo's RNN. Its first checks are for bug 1: the returned
state must have a state's shape (layers, batch, hidden), not a weight's, and the top layer's last state must
be the last output. The next is for bug 2: changing only the first input must change the last output, which
can only happen if the state is fed from step to step. Run on the broken version (one layer), these checks
fail. The last check, that h<sub>0</sub> changes the outputs, passes even for the broken version, which adds
W<sub>hh</sub> h<sub>0</sub> at every step; it catches a different bug, a layer that ignores the h<sub>0</sub>
it is given. (`INPUT`, `HIDDEN`, `BATCH` and `STEPS` are small sizes set at the top of that file.)
"""

# The source of tests/test_rnn.py::test_hidden_state_is_a_state_not_a_weight_and_is_fed_back, for the page:
# tests/ is not shipped with the Space. tests/test_about_and_models_tabs.py checks it is the test's exact text.
HIDDEN_STATE_TEST_SOURCE = '''def test_hidden_state_is_a_state_not_a_weight_and_is_fed_back():
    """The source text's step() returned W_hh as the 'hidden' state and never fed the state back."""
    torch.manual_seed(0)
    rnn = RNN(INPUT, HIDDEN, num_layers=2)
    input = torch.randn(STEPS, BATCH, INPUT)
    output, h_n = rnn(input)
    assert h_n.shape == (2, BATCH, HIDDEN)
    assert not any(h_n.shape == p.shape for p in rnn.parameters())
    assert torch.equal(h_n[-1], output[-1])  # the top layer's last state is the last output
    # Feeding the state back: the same input at the last step gives a different output
    # when what came before differs, which is only possible through h_(t-1).
    other = input.clone()
    other[0] += 1.0
    assert not torch.allclose(rnn(other)[0][-1], output[-1])
    # ... and h_0 matters
    assert not torch.allclose(rnn(input, torch.ones(2, BATCH, HIDDEN))[0], output)
'''

TORCH_RNN = """
### `torch.nn.RNN`, written out

`rnn_demo/model/rnn.py` implements the formula above
with the constructor, parameters and call of `torch.nn.RNN` (and a parity test against it):

- `input_size`, `hidden_size`: the sizes of x<sub>t</sub> and h<sub>t</sub>;
- `num_layers`: stacked layers, layer *k* reading layer *k-1*'s states;
- `nonlinearity`: `"tanh"` or `"relu"`; `bias`: whether b<sub>ih</sub>, b<sub>hh</sub> exist;
- `batch_first`: (batch, time, feature) instead of (time, batch, feature); `dropout`: between layers;
- parameters `weight_ih_l{k}` (hidden × input), `weight_hh_l{k}` (hidden × hidden),
  `bias_ih_l{k}`, `bias_hh_l{k}`, initialised uniform(-1/√hidden, 1/√hidden).

The language model around it (embedding → recurrent stack → linear head) is
`rnn_demo/model/char_rnn.py`; sampling one character at a time with the state carried is
`rnn_demo/generation/sampling.py` (each step through `rnn_demo/generation/engine.py`); this page is
`rnn_demo/ui/about_tab.py`, put together with the other tabs in `app.py`.
"""

# The same texts in Simplified Chinese (registered under the "about.*" keys at the end of this file).
ABOUT_ZH = """
### 递推公式

普通的 RNN 单元在每个时间步 *t*，根据输入 x<sub>t</sub> 和它自己上一步的状态 h<sub>t-1</sub> 计算：

    h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)

状态 h<sub>t</sub> 是网络对目前为止读过的文本的全部记忆；一个线性层再把它变成下一个字符的得分。
GRU 和 LSTM 单元用带门控的更新取代了这一行公式，能把信息保留得更久。
"""

UNROLLED_ZH = """
### 同一个单元，按时间展开

把网络在几个字符上展开来画，它就是同一个单元被一次又一次地使用，每一步的权重都相同。
每一步之间变化的只有状态：每一步的 h<sub>t</sub> 都会进入下一步。
"""

BROKEN_INTRO_ZH = """
### 一个有错误的 RNN 和一个正确的 RNN

手写的 RNN 很容易出现不易察觉的错误。左边的版本能运行，输出的形状没错，甚至还能训练，但它有两个错误。
右边是本演示手写层（`rnn_demo.rnn.RNN`）的时间循环，在构建页面时从 `rnn_demo/model/rnn.py` 读出。
进入循环之前，这个层一次算出所有时间步上公式的输入部分，所以 `pre[t]` 里已经是
W<sub>ih</sub> x<sub>t</sub> + b<sub>ih</sub> + b<sub>hh</sub>。（在 `torch.func` 变换和前向模式自动微分下，
这个层运行的就是这种形式的循环；其他情况下由 `_Recurrence` 原地执行同样的步骤，反向传播是手写的。）
"""

BUGS_EXPLAINED_ZH = f"""
**错误 1。** `step` 返回的是 `W_hh.weight`，一个 hidden_size × hidden_size 的参数矩阵。它不是状态：它没有批次维度，
每一步都一样，也不包含任何关于已读文本的信息。

**错误 2。** 循环把初始的 `h0` 交给每一步，所以第 *t* 步的任何信息都到不了第 *t*+1 步。每个输出只取决于当前输入
（以及每一步都相同的 `h0`）：字符与字符之间，网络把一切都忘了。把它当作字符模型来训练，它最多只能学成一个
二元（bigram）模型，也就是只根据当前这一个字符给出下一个字符的概率。在训练文本上统计出的二元模型，
在验证文本上是 {BIGRAM_VAL_BPC:.2f} 比特/字符；本演示附带的模型在步与步之间传递状态，成绩为
{SHIPPED_VAL_BPC[0]:.2f} 到 {SHIPPED_VAL_BPC[1]:.2f} 比特/字符。

正确的循环把每个新状态传入下一步，`h = tanh(pre[t] + h W_hh^T)`，并返回每一步的状态；
最后一个状态（h<sub>n</sub>）让生成可以从停下的地方接着进行。
"""

TEST_INTRO_ZH = """
### 区分两者的测试

下面这个来自 `tests/test_rnn.py` 的测试，对本演示的 RNN 是通过的。前几项检查针对错误 1：返回的状态必须是状态的形状
（层数, 批次, 隐藏维度），而不是某个权重的形状，并且最顶层的最后一个状态必须就是最后一个输出。下一项针对错误 2：
只改动第一个输入，最后一个输出也必须跟着变，而这只有在状态逐步传递下去时才可能发生。在有错误的版本（单层）上运行，
这些检查都会失败。最后一项检查，即 h<sub>0</sub> 会改变输出，对有错误的版本也能通过，因为它在每一步都加上了
W<sub>hh</sub> h<sub>0</sub>；这一项捕捉的是另一种错误：一个忽略了传给它的 h<sub>0</sub> 的层。
（`INPUT`、`HIDDEN`、`BATCH` 和 `STEPS` 是该文件开头设定的小尺寸。）
"""

TORCH_RNN_ZH = """
### 把 `torch.nn.RNN` 写出来

`rnn_demo/model/rnn.py` 按 `torch.nn.RNN` 的构造函数、参数和调用方式实现了上面的公式（并有一个与之对照的一致性测试）：

- `input_size`、`hidden_size`：x<sub>t</sub> 和 h<sub>t</sub> 的大小；
- `num_layers`：堆叠的层数，第 *k* 层读取第 *k-1* 层的状态；
- `nonlinearity`：`"tanh"` 或 `"relu"`；`bias`：是否有 b<sub>ih</sub>、b<sub>hh</sub>；
- `batch_first`：用（批次, 时间, 特征）代替（时间, 批次, 特征）；`dropout`：加在层与层之间；
- 参数 `weight_ih_l{k}`（隐藏 × 输入）、`weight_hh_l{k}`（隐藏 × 隐藏）、`bias_ih_l{k}`、`bias_hh_l{k}`，
  按 uniform(-1/√hidden, 1/√hidden) 初始化。

围绕它的语言模型（嵌入 → 循环层堆叠 → 线性输出层）在 `rnn_demo/model/char_rnn.py`；
一次采样一个字符、并把状态带到下一步的代码在 `rnn_demo/generation/sampling.py`（每一步经过
`rnn_demo/generation/engine.py`）；本页面是 `rnn_demo/ui/about_tab.py`，它和其他标签页一起在 `app.py` 里组装。
"""

_SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

# Colours that read on light and dark pages: the text colour (currentColor) for the drawing, and an
# orange (the theme's accent where the page defines it) for the state, the one thing that flows along.
_STATE_COLOUR = "var(--color-accent, #ea580c)"


def _sub(name: str, index: int) -> str:
    """``h`` and 3 -> ``h₃`` (Unicode subscript digits render in SVG text without extra markup)."""
    return name + str(index).translate(_SUBSCRIPT_DIGITS)


def unrolled_recurrence_svg(steps: int = 4, language: str = ENGLISH) -> str:
    """An inline SVG of the recurrence unrolled over ``steps`` time steps.

    Inputs x₁..x_T at the bottom, one cell box per step (the same W_ih, W_hh in each), the state
    arrows h₀ → step 1 → step 2 → ... → h_T between the boxes, and each step's output (the scores
    for the next character) above its box. Drawn in ``currentColor`` plus one accent colour, so it
    follows the page's light or dark theme; its words are in ``language``. The state arrows have ``class="state"`` and
    ``data-from`` / ``data-to`` attributes naming what they join (``h0``, ``cell1``, ..., ``hT``).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    pitch, box_width, box_height = 170, 110, 70  # one step's width, the cell box
    left = 80  # room for h₀
    width = left + steps * pitch - (pitch - box_width) + 80  # and for h_T
    box_top = 95
    box_bottom = box_top + box_height
    mid = box_top + box_height / 2
    output_y, input_y = 38, box_bottom + 62
    height = input_y + 84

    def box_left(step: int) -> float:  # step counts from 1
        return left + (step - 1) * pitch

    def centre(step: int) -> float:
        return box_left(step) + box_width / 2

    def arrow(x1, y1, x2, y2, css_class, marker, extra="", stroke="currentColor", stroke_width=1.5):
        return (
            f'<line class="{css_class}" x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" '
            f'style="stroke: {stroke}" stroke-width="{stroke_width}" marker-end="url(#{marker})"{extra}/>'
        )

    def state_arrow(x1, x2, source, target):
        extra = f' data-from="{source}" data-to="{target}"'
        return arrow(x1, mid, x2, mid, "state", "rnn-unrolled-state-head", extra, _STATE_COLOUR, 2.5)

    def text(x, y, content, size=14, extra=""):
        return (
            f'<text x="{x:g}" y="{y:g}" font-size="{size}" text-anchor="middle" '
            f'fill="currentColor"{extra}>{escape(content)}</text>'
        )

    svg_open = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" width="{width:g}" '
        f'height="{height:g}" role="img" aria-labelledby="rnn-unrolled-title rnn-unrolled-desc" '
        f'style="max-width: 100%; height: auto; color: inherit; font-family: inherit">'
    )
    description = f'<desc id="rnn-unrolled-desc">{escape(server_text("about.svg_description", language))}</desc>'
    head = (
        '<marker id="rnn-unrolled-head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="currentColor"/></marker>'
    )
    state_head = (
        '<marker id="rnn-unrolled-state-head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" '
        'markerHeight="5" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        f'style="fill: {_STATE_COLOUR}"/></marker>'
    )
    parts = [
        svg_open,
        f'<title id="rnn-unrolled-title">{escape(server_text("about.svg_title", language, steps=steps))}</title>',
        description,
        f"<defs>{head}{state_head}</defs>",
    ]
    # The initial state, and the arrow that brings it into step 1.
    parts.append(text(left - 50, mid + 5, _sub("h", 0), 16, ' font-weight="bold"'))
    parts.append(state_arrow(left - 36, box_left(1) - 2, "h0", "cell1"))
    for step in range(1, steps + 1):
        x, cx = box_left(step), centre(step)
        parts.append(
            f'<rect class="cell" data-step="{step}" x="{x:g}" y="{box_top}" width="{box_width}" '
            f'height="{box_height}" rx="10" fill="currentColor" fill-opacity="0.07" '
            f'stroke="currentColor" stroke-width="1.5"/>'
        )
        parts.append(text(cx, box_top + 29, "tanh", 15, ' font-weight="bold"'))
        parts.append(text(cx, box_top + 52, "W_ih, W_hh", 13, ' font-family="monospace"'))
        # input below, output above
        parts.append(text(cx, input_y + 20, _sub("x", step), 16, ' font-weight="bold"'))
        parts.append(
            text(cx, input_y + 40, server_text("about.svg_input", language, step=step), 12, ' fill-opacity="0.75"')
        )
        parts.append(arrow(cx, input_y, cx, box_bottom + 2, "input", "rnn-unrolled-head"))
        parts.append(text(cx, output_y - 16, _sub("y", step), 16, ' font-weight="bold"'))
        parts.append(
            text(cx, output_y + 2, server_text("about.svg_output", language, step=step + 1), 12, ' fill-opacity="0.75"')
        )
        parts.append(arrow(cx, box_top, cx, output_y + 12, "output", "rnn-unrolled-head"))
        # the new state: into the next step, or out of the last one
        last = step == steps
        target_x = x + box_width + (50 if last else pitch - box_width) - 2
        parts.append(state_arrow(x + box_width, target_x, f"cell{step}", "hT" if last else f"cell{step + 1}"))
        label = f"{_sub('h', step)}"
        if last:
            parts.append(text(target_x + 22, mid + 5, label, 16, ' font-weight="bold"'))
        else:
            parts.append(text(x + box_width + (pitch - box_width) / 2, mid - 8, label, 14))
    caption = server_text("about.svg_caption", language)
    parts.append(text(width / 2, height - 8, caption, 13, ' font-style="italic"'))
    parts.append("</svg>")
    return "\n".join(parts)


def function_source(path: Path, name: str) -> str:
    """The source of the top-level function ``name`` in the Python file ``path``, exactly as
    ``inspect.getsource`` gives it once imported, without importing the file."""
    text = path.read_text(encoding="utf-8")
    # Lines as ast numbers them (and inspect reads them): split at newlines only, where
    # str.splitlines would also split at form feeds and other separators.
    lines = io.StringIO(text).readlines()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            return "".join(lines[first - 1 : node.end_lineno])
    raise ValueError(f"{path} has no top-level function {name!r}")


def working_recurrence_source() -> str:
    """The source of the working time loop shown next to the broken one."""
    return function_source(RNN_SOURCE_PATH, WORKING_FUNCTION)


def build_about_tab() -> None:
    """The tab's content, inside the caller's ``gr.Blocks``."""
    with gr.Tab(i18n("about.tab")):
        gr.Markdown(i18n("about.recurrence"))
        gr.Markdown(i18n("about.unrolled"))
        # A static picture: gr.HTML's default js_on_load would make every click on it fire a
        # "click" event that nothing listens to.
        gr.HTML(i18n("about.unrolled_svg"), js_on_load=None)
        gr.Markdown(i18n("about.broken_intro"))
        with gr.Row(equal_height=True):
            gr.Code(BROKEN_RNN_SOURCE, language="python", label=i18n("about.broken_code"), interactive=False)
            gr.Code(
                working_recurrence_source(),
                language="python",
                label=page_text("about.working_code", function=WORKING_FUNCTION),
                interactive=False,
            )
        gr.Markdown(i18n("about.bugs_explained"))
        gr.Markdown(i18n("about.test_intro"))
        gr.Code(
            HIDDEN_STATE_TEST_SOURCE,
            language="python",
            label="tests/test_rnn.py::test_hidden_state_is_a_state_not_a_weight_and_is_fed_back",
            interactive=False,
        )
        gr.Markdown(i18n("about.torch_rnn"))


# A line break inside a Markdown paragraph shows as a space, which Chinese text does not have
# between two characters: the Chinese texts' lines are joined where a break falls between two.
_BREAK_BETWEEN_CHINESE = re.compile(
    r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\n(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])"
)


def _chinese(markdown: str) -> str:
    return _BREAK_BETWEEN_CHINESE.sub("", markdown)


# The page's long texts, kept here next to the page; the short ones are in rnn_demo/ui/i18n.py.
add_texts(
    {
        "about.recurrence": {ENGLISH: ABOUT, CHINESE: _chinese(ABOUT_ZH)},
        "about.unrolled": {ENGLISH: UNROLLED, CHINESE: _chinese(UNROLLED_ZH)},
        "about.unrolled_svg": {language: unrolled_recurrence_svg(language=language) for language in LANGUAGES},
        "about.broken_intro": {ENGLISH: BROKEN_INTRO, CHINESE: _chinese(BROKEN_INTRO_ZH)},
        "about.bugs_explained": {ENGLISH: BUGS_EXPLAINED, CHINESE: _chinese(BUGS_EXPLAINED_ZH)},
        "about.test_intro": {ENGLISH: TEST_INTRO, CHINESE: _chinese(TEST_INTRO_ZH)},
        "about.torch_rnn": {ENGLISH: TORCH_RNN, CHINESE: _chinese(TORCH_RNN_ZH)},
    }
)
