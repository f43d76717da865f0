"""``python -m rnn_demo.sample``: print a sample from a trained model (:mod:`rnn_demo.cli.sample`)."""

import sys

from rnn_demo.cli.sample import main

if __name__ == "__main__":
    sys.exit(main())
