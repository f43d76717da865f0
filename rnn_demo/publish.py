"""``python -m rnn_demo.publish``: push a model, a Space or a zoo model (:mod:`rnn_demo.cli.publish`;
the library is :mod:`rnn_demo.hub.publish`)."""

from rnn_demo.cli.publish import main, run_from_command_line

__all__ = ["main"]

if __name__ == "__main__":
    run_from_command_line()
