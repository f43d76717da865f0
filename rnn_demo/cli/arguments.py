"""Argument types for the command-line tools: a bad value is refused by argparse itself.

``parser.add_argument("--runs", type=whole_number(1, 20))`` makes ``--runs 0``, ``--runs nan``
or ``--runs 10**9`` end with argparse's usage line and one ``error: argument --runs: ...`` line,
exit status 2, before anything slow starts (no traceback, no hour-long run).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum:,} and {maximum:,}"
    if minimum is not None:
        return f"at least {minimum:,}"
    if maximum is not None:
        return f"at most {maximum:,}"
    return ""


def whole_number(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number within [minimum, maximum] (either bound may be None)."""
    wanted = " ".join(filter(None, ["a whole number", _range_text(minimum, maximum)]))

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse


def finite_number(
    minimum: float | None = None, maximum: float | None = None, above_minimum: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number within [minimum, maximum] (or (minimum, maximum] with
    ``above_minimum``); NaN and infinities are refused."""
    if above_minimum and minimum is not None:
        bounds = f"above {minimum:g}" + (f" and at most {maximum:g}" if maximum is not None else "")
    elif minimum is not None and maximum is not None:
        bounds = f"between {minimum:g} and {maximum:g}"
    elif minimum is not None:
        bounds = f"at least {minimum:g}"
    else:
        bounds = f"at most {maximum:g}" if maximum is not None else ""
    wanted = " ".join(filter(None, ["a finite number", bounds]))

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        too_low = minimum is not None and (value <= minimum if above_minimum else value < minimum)
        too_high = maximum is not None and value > maximum
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def existing_folder(text: str) -> Path:
    """An argparse type: a folder that exists."""
    path = Path(text).expanduser()
    if not path.is_dir():
        reason = "is not a folder" if path.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"{text} {reason}")
    return path
