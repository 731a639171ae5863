"""What the commands of ``rnnkit`` share (`rnnkit.cli` dispatches to modules ``cmd_*`` with
``main(argv, prog) -> int``): an argparse parser whose errors are one line, option types, and `run`,
which turns the errors a user can cause into one line on stderr and exit status 1 (2 for a bad
option), never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from .optim import DEFAULT_LR

__all__ = ["Parser", "positive_int", "non_negative_int", "positive_float", "add_schedule_options", "run"]


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


def add_schedule_options(group: Any, defaults: Any) -> None:
    """The options of `rnnkit.optim.Schedule` (length of training, optimiser, learning rate and its
    decay, clipping), with ``defaults`` (a Schedule) as their defaults, added to a parser or group."""
    length = group.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help="total training steps (counting resumed ones)")
    length.add_argument("--minutes", type=positive_float, help="train for this long (validation included)")
    group.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default=defaults.optimizer)
    group.add_argument("--lr", type=positive_float, help="learning rate (default: adam/rmsprop 2e-3, adagrad 0.1, "
                       "sgd 0.05 with momentum 0.9)")
    group.add_argument("--lr-decay", type=positive_float, default=defaults.lr_decay,
                       help="multiply the learning rate by this every --lr-decay-every steps")
    group.add_argument("--lr-decay-every", type=positive_int, default=defaults.lr_decay_every)
    group.add_argument("--clip", type=float, default=defaults.clip, help="gradient clipping threshold (0: none)")
    group.add_argument("--clip-mode", choices=["norm", "value"], default=defaults.clip_mode)


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
