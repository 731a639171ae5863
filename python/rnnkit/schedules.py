"""Learning-rate schedules of the training commands, and the record of the best evaluation that
reduce-on-plateau and early stopping read.

A schedule gives the learning rate as ``base_lr * factor``: a linear warm-up over the first ``warmup``
steps (at most a tenth of a run of known steps), times the decay:

* ``cosine``: from 1 down to ``lr_floor`` along half a cosine over the run's length. The length is
  known in steps (``--steps``) or in time (``--minutes``): ``progress`` is the fraction of the run
  done, by steps or by elapsed time, whichever is further, so a time-bound run ends its decay at its
  deadline whatever its speed.
* ``step``: ``lr_decay ** (step // lr_decay_every)`` (char-rnn's decay), never below ``lr_floor``.
* ``plateau``: multiplied by ``plateau_factor`` after ``plateau_patience`` evaluations in a row
  without a better validation score (torch's ReduceLROnPlateau), never below ``lr_floor``.
* ``constant``: 1.

`Best` keeps the best validation score so far and how many evaluations have passed without beating
it: the plateau schedule and early stopping (``--patience``) count with it, and the training loop
keeps the best checkpoint by it (`rnnkit.training`). Scores are tuples, larger is better.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

from .optim import Schedule, decayed_lr

__all__ = ["LRSchedule", "Best", "warmup_steps", "run_progress"]


def warmup_steps(cfg: Schedule) -> int:
    """Steps of linear warm-up: ``cfg.warmup``, at most a tenth of ``cfg.steps`` when that is given."""
    return min(cfg.warmup, cfg.steps // 10) if cfg.steps else cfg.warmup


def run_progress(cfg: Schedule, step: int, elapsed_s: float) -> float:
    """The fraction of the run done after ``step`` steps and ``elapsed_s`` seconds, in [0, 1]: by steps
    or by time (``cfg.minutes``), whichever is further."""
    done = 0.0
    if cfg.steps:
        done = step / cfg.steps
    if cfg.minutes:
        done = max(done, elapsed_s / (60.0 * cfg.minutes))
    return min(1.0, max(0.0, done))


class Best:
    """The best score so far (a tuple, larger is better), the step that reached it, and the number of
    evaluations since (``stale``)."""

    def __init__(self) -> None:
        self.score: Optional[Tuple[float, ...]] = None
        self.step: Optional[int] = None
        self.stale = 0

    def update(self, step: int, score: Sequence[float]) -> bool:
        """Record the evaluation at ``step``; True if it is the best so far."""
        score = tuple(float(v) for v in score)
        if self.score is None or score > self.score:
            self.score, self.step, self.stale = score, step, 0
            return True
        self.stale += 1
        return False

    def state_dict(self) -> Dict[str, Any]:
        return {"score": None if self.score is None else list(self.score), "step": self.step, "stale": self.stale}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.score = None if state["score"] is None else tuple(float(v) for v in state["score"])
        self.step = None if state["step"] is None else int(state["step"])
        self.stale = int(state["stale"])


class LRSchedule:
    """The learning-rate factor of a run configured by ``cfg`` (see the module docstring).

    ``factor(step, progress)`` is the factor for the update after ``step`` steps at ``progress`` (see
    `run_progress`); ``evaluated(improved)`` tells the plateau schedule the outcome of an evaluation.
    Its state (the plateau's reductions) goes into checkpoints with ``state_dict``."""

    def __init__(self, cfg: Schedule):
        self.cfg = cfg
        self.warmup = warmup_steps(cfg)
        self.plateau_scale = 1.0
        self._stale = 0

    def factor(self, step: int, progress: float) -> float:
        cfg = self.cfg
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        if cfg.schedule == "cosine":
            decay = cfg.lr_floor + (1.0 - cfg.lr_floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        elif cfg.schedule == "step":
            decay = max(cfg.lr_floor, decayed_lr(1.0, step, cfg.lr_decay, cfg.lr_decay_every))
        elif cfg.schedule == "plateau":
            decay = max(cfg.lr_floor, self.plateau_scale)
        else:
            decay = 1.0
        return warm * decay

    def evaluated(self, improved: bool) -> None:
        if self.cfg.schedule != "plateau":
            return
        self._stale = 0 if improved else self._stale + 1
        if self._stale >= self.cfg.plateau_patience:
            self.plateau_scale *= self.cfg.plateau_factor
            self._stale = 0

    def state_dict(self) -> Dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "stale": self._stale}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.plateau_scale, self._stale = float(state["plateau_scale"]), int(state["stale"])
