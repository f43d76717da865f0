"""A character-level RNN language model: the recurrent layer from its formula, training,
generation, serving, and publishing to the Hugging Face Hub.

The subpackages, in the order data flows through them (none imports one further down the list):

- :mod:`rnn_demo.model`: the recurrent layer, the language model, characters <-> ids, the
  checkpoint format;
- :mod:`rnn_demo.training`: text and batches, the training loop, run folders, presets;
- :mod:`rnn_demo.generation`: sampling, and the generation step (NumPy, from the cells' formulas);
- :mod:`rnn_demo.analysis`: views inside a trained model: each character's probability and
  alternatives, each layer's state, the units that follow features of the text;
- :mod:`rnn_demo.serving`: the zoo of served models, request validation and caps, the worker
  that steps every running generation together;
- :mod:`rnn_demo.hub`: publishing models and the Space;
- :mod:`rnn_demo.ui`: the web demo's tabs (``app.py`` wires them);
- :mod:`rnn_demo.cli`: the command lines (``python -m train``, ``python -m rnn_demo.sample``,
  ``python -m rnn_demo.publish``).

``rnn_demo.rnn``, ``rnn_demo.sampling``, ``rnn_demo.sample`` and ``rnn_demo.publish`` are the
stable public paths of the recurrent layer, sampling and the two command lines.
"""

__version__ = "1.0.0"
