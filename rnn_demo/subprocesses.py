"""What the project's own subprocesses (the Train tab's training runs) run with: this environment,
with the folder that holds ``rnn_demo/`` first on their path, so that they import this copy of the
package whatever the working directory. Standard library only."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])  # the folder holding rnn_demo/


def environment() -> dict[str, str]:
    """``os.environ`` with :data:`PACKAGE_PARENT` put first on ``PYTHONPATH``."""
    variables = dict(os.environ)
    variables["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT, variables.get("PYTHONPATH")]))
    return variables
