"""``python -m train``: the training command line, :mod:`rnn_demo.cli.train`."""

from rnn_demo.cli.train import run_from_command_line

if __name__ == "__main__":
    run_from_command_line()
