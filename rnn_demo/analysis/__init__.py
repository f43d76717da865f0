"""Views inside a trained CharRNN: what it predicts at each character of a text, the state each
layer carries, and which hidden units track simple features of the text.

- :mod:`.predictions`: per-character probabilities, surprise in bits, the top alternatives, and
  the bits/char of a whole text, all from one forward pass;
- :mod:`.states`: one layer's hidden state (and an LSTM's cell state) after every character;
- :mod:`.units`: features of a text (inside quotes, position in the line, ...) and the units whose
  activation follows them.

Every function reads the text from the model's zero state; characters outside the vocabulary are
skipped and reported, as generation does.
"""

from rnn_demo.analysis.predictions import explain, score, text_ids
from rnn_demo.analysis.states import layer_states, neurons
from rnn_demo.analysis.units import FEATURES, rank_units, text_features

__all__ = ["FEATURES", "explain", "layer_states", "neurons", "rank_units", "score", "text_features", "text_ids"]
