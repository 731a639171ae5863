"""What the commands of ``rnnkit`` share (`rnnkit.cli` dispatches to modules ``cmd_*`` with
``main(argv, prog) -> int``): an argparse parser whose errors are one line, option types, and `run`,
which turns the errors a user can cause into one line on stderr and exit status 1 (2 for a bad
option), never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

__all__ = ["Parser", "positive_int", "non_negative_int", "positive_float", "run"]


class Parser(argparse.ArgumentParser):
    """argparse with option errors on one line."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v


def non_negative_int(s: str) -> int:
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {s}")
    return v


def positive_float(s: str) -> float:
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {s}")
    return v


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a command, turning the errors a user can cause into one line and exit status 1.

    Those are ValueError (bad settings and data: the data errors of the commands, e.g.
    `rnnkit.charlm.data.TextError`, derive from it), OSError (files) and
    `rnnkit.checkpoint.CheckpointError` (itself a ValueError)."""
    try:
        return body()
    except (ValueError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
