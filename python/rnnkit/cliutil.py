"""What the commands of ``rnnkit`` share (`rnnkit.cli` dispatches to modules ``cmd_*`` with
``main(argv, prog) -> int``): an argparse parser whose errors are one line, option types, and `run`,
which turns the errors a user can cause into one line on stderr and exit status 1 (2 for a bad
option), never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict

from .optim import DEFAULT_LR

__all__ = ["Parser", "positive_int", "non_negative_int", "positive_float", "add_schedule_options", "schedule_settings",
           "run"]


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
    schedule, weight decay, early stopping, clipping), with ``defaults`` (a Schedule) as their defaults,
    added to a parser or group. A command turns them into settings with `schedule_settings`."""
    from .optim import SCHEDULES

    d = defaults
    length = group.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help="total training steps (counting resumed ones)")
    length.add_argument("--minutes", type=positive_float, help="train for this long (validation included)")
    group.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default=d.optimizer,
                       help=f"(default: {d.optimizer})")
    group.add_argument("--lr", type=positive_float, help="peak learning rate (default: adam/adamw/rmsprop 2e-3, "
                       "adagrad 0.1, sgd 0.05 with momentum 0.9)")
    group.add_argument("--weight-decay", type=float, default=d.weight_decay,
                       help="decoupled weight decay (AdamW's) of the weight matrices: each step multiplies them by "
                            "1 - lr * decay (default: " + ("the optimiser's: 0.01 for adamw, 0 for the others)"
                                                          if d.weight_decay is None else f"{d.weight_decay})"))
    group.add_argument("--schedule", choices=SCHEDULES,
                       help=f"learning-rate schedule after the warm-up: cosine decay to --lr-floor over the run "
                            f"(its --steps, or its --minutes by elapsed time), step decay by --lr-decay every "
                            f"--lr-decay-every steps, reduce on plateau, or constant (default: {d.schedule}; step "
                            f"when --lr-decay is given)")
    group.add_argument("--warmup", type=non_negative_int, default=d.warmup,
                       help=f"steps of linear learning-rate warm-up, at most a tenth of --steps (default: {d.warmup})")
    group.add_argument("--lr-floor", type=float, default=d.lr_floor,
                       help=f"lowest learning rate of the decaying schedules, as a fraction of --lr (default: "
                            f"{d.lr_floor})")
    group.add_argument("--lr-decay", type=positive_float,
                       help=f"step schedule: multiply the learning rate by this every --lr-decay-every steps "
                            f"(default: {d.lr_decay})")
    group.add_argument("--lr-decay-every", type=positive_int, default=d.lr_decay_every,
                       help=f"(default: {d.lr_decay_every})")
    group.add_argument("--plateau-factor", type=positive_float, default=d.plateau_factor,
                       help=f"plateau schedule: multiply the learning rate by this after --plateau-patience "
                            f"evaluations without a better validation score (default: {d.plateau_factor})")
    group.add_argument("--plateau-patience", type=positive_int, default=d.plateau_patience,
                       help=f"(default: {d.plateau_patience})")
    group.add_argument("--patience", type=positive_int, default=d.patience,
                       help="early stopping: end the run after this many evaluations in a row without a better "
                            "validation score (default: never)")
    group.add_argument("--clip", type=float, default=d.clip, help=f"gradient clipping threshold (0: none) "
                       f"(default: {d.clip})")
    group.add_argument("--clip-mode", choices=["norm", "value"], default=d.clip_mode,
                       help=f"(default: {d.clip_mode})")


def schedule_settings(a: argparse.Namespace, defaults: Any) -> Dict[str, Any]:
    """The `rnnkit.optim.Schedule` fields from options added by `add_schedule_options` (``steps`` and
    ``minutes`` as given), for a command's configuration."""
    lr_decay = defaults.lr_decay if a.lr_decay is None else a.lr_decay
    schedule = a.schedule or ("step" if a.lr_decay is not None else defaults.schedule)
    return {"steps": a.steps, "minutes": a.minutes, "optimizer": a.optimizer, "lr": a.lr,
            "weight_decay": a.weight_decay, "schedule": schedule, "warmup": a.warmup, "lr_floor": a.lr_floor,
            "lr_decay": lr_decay, "lr_decay_every": a.lr_decay_every, "plateau_factor": a.plateau_factor,
            "plateau_patience": a.plateau_patience, "patience": a.patience, "clip": a.clip,
            "clip_mode": a.clip_mode}


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
