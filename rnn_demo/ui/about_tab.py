"""The About tab: the recurrence, the parameters of ``torch.nn.RNN``, and where the code is."""

import gradio as gr

ABOUT = """
### The recurrence

The plain RNN cell computes, at every time step *t*, from the input x<sub>t</sub> and its own
previous state h<sub>t-1</sub>:

    h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)

The state h<sub>t</sub> is all the network remembers of the text so far; a linear layer turns it
into scores for the next character. The GRU and LSTM cells replace this one line with gated
updates that keep information for longer.

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
`rnn_demo/generation/sampling.py` (each step through `rnn_demo/generation/stepper.py`); this page is `app.py`.
"""


def build_about_tab() -> None:
    """The tab's content, inside the caller's ``gr.Blocks``."""
    with gr.Tab("About"):
        gr.Markdown(ABOUT)
