"""``python -m rnn_demo.publish``: push a model, a Space or a zoo model (:mod:`rnn_demo.cli.publish`;
the library is :mod:`rnn_demo.hub.publish`)."""

import sys

from rnn_demo.cli.publish import main

if __name__ == "__main__":
    sys.exit(main())
