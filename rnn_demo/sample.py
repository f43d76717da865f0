"""``python -m rnn_demo.sample``: print a sample from a trained model (:mod:`rnn_demo.cli.sample`)."""

from rnn_demo.cli.sample import main, run_from_command_line

__all__ = ["main"]

if __name__ == "__main__":
    run_from_command_line()
