"""Training: text from `datasets` or files and its TBPTT batches (:mod:`.data`), the loop and its
configuration (:mod:`.loop`), the run folder that checkpoints it (:mod:`.run_folder`) and the
recipes of the shipped models (:mod:`.presets`). The command line is ``python -m train``.
"""

from rnn_demo.training.loop import TrainConfig, TrainingError, evaluate, train, train_step
from rnn_demo.training.run_folder import RunFolder

__all__ = ["RunFolder", "TrainConfig", "TrainingError", "evaluate", "train", "train_step"]
