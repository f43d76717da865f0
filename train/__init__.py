"""``python -m train``: see :mod:`rnn_demo.cli.train`."""
