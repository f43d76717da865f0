"""Public path of the recurrent layer: ``from rnn_demo.rnn import RNN`` (:mod:`rnn_demo.model.rnn`)."""

from rnn_demo.model.rnn import NONLINEARITIES, RNN, RNNShapeError

__all__ = ["NONLINEARITIES", "RNN", "RNNShapeError"]
