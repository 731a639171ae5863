"""What the model packages' training runs share (`rnnkit.charlm`, `rnnkit.seq2seq`).

`TrainingRun` is one run's state: model, optimiser, step count and time spent, with the optimisation
step around the model's loss (clipping, learning-rate decay, the update) and the optimiser's part of a
checkpoint. `fit` is the loop: step until the step or time budget ends, evaluate every ``eval_every``
steps and after the last one, append each evaluation to ``metrics.jsonl``, write the checkpoint then,
and show a progress bar. A run resumed from its checkpoint continues exactly where it stopped.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, Tuple, TypeVar

import numpy as np

from .optim import DEFAULT_LR, Schedule, clip_grad_norm, clip_grad_value, decayed_lr, make_optimizer

__all__ = ["TrainingRun", "fit"]

Config = TypeVar("Config", bound=Schedule)


class TrainingRun(Generic[Config]):
    """Base of a training run. A subclass sets ``cfg`` (a `Schedule` with ``eval_every``) and the model
    (``params``, ``grads``, ``zero_grad()``) through ``__init__`` and provides ``batch_loss()`` (the
    next batch's loss, its gradients added to ``model.grads``), ``evaluate()`` (a dict of validation
    metrics) and ``save(path)``."""

    def __init__(self, cfg: Config, model: Any):
        self.cfg, self.model = cfg, model
        kwargs = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}
        self.base_lr = cfg.lr or DEFAULT_LR[cfg.optimizer]
        self.opt = make_optimizer(cfg.optimizer, model.params, self.base_lr, **kwargs)
        self.step = 0
        self.elapsed = 0.0

    def batch_loss(self) -> float:
        raise NotImplementedError

    def evaluate(self) -> Dict[str, float]:
        raise NotImplementedError

    def save(self, path: str) -> None:
        raise NotImplementedError

    def train_step(self) -> float:
        """One optimisation step: gradients of the next batch, clipped, then the update at the decayed
        learning rate. Returns the batch's loss."""
        cfg = self.cfg
        self.model.zero_grad()
        loss = self.batch_loss()
        if cfg.clip > 0:
            grads = self.model.grads.values()
            clip_grad_norm(grads, cfg.clip) if cfg.clip_mode == "norm" else clip_grad_value(grads, cfg.clip)
        self.opt.lr = decayed_lr(self.base_lr, self.step, cfg.lr_decay, cfg.lr_decay_every)
        self.opt.step(self.model.grads)
        self.step += 1
        return loss

    def optimizer_checkpoint(self) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
        """The optimiser's arrays (keys ``optim/...``) and the JSON fields (step, time, optimiser
        scalars) a checkpoint needs to resume this run."""
        state = self.opt.state_dict()
        arrays = {f"optim/{k}": v for k, v in state["arrays"].items()}
        return arrays, {"step": self.step, "elapsed_s": self.elapsed, "optim": state["scalars"]}

    def restore_optimizer(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Undoes `optimizer_checkpoint` (KeyError or TypeError for a checkpoint that lacks it)."""
        self.opt.load_state_dict({"scalars": meta["optim"], "arrays": {
            k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}})
        self.step, self.elapsed = int(meta["step"]), float(meta["elapsed_s"])


def fit(run: TrainingRun[Any], metrics: List[dict], metrics_path: str, checkpoint_path: str, progress: bool,
        throughput: Tuple[str, float], postfix: Callable[[float, Dict[str, Any], float], Dict[str, str]],
        after_step: Optional[Callable[[Any, bool], None]] = None) -> List[dict]:
    """Trains ``run`` until ``cfg.steps`` or ``cfg.minutes`` ends; returns the metrics rows.

    metrics: the rows so far (a resumed run's, already read back); metrics_path is rewritten with them
    first. throughput: (its key in a row, units per step), e.g. ("chars_per_s", batch * seq_len).
    postfix(loss, last row or {}, current throughput): the progress bar's fields. after_step(bar, last): called after every
    step (e.g. to print a sample with bar.write).
    """
    from tqdm import tqdm

    cfg = run.cfg
    with open(metrics_path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in metrics)
    key, per_step = throughput
    deadline = time.monotonic() + 60 * cfg.minutes if cfg.minutes else math.inf
    started = time.monotonic() - run.elapsed
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not progress, unit="step", dynamic_ncols=True)
    losses: List[float] = []
    train_time = 0.0
    while cfg.steps is None or run.step < cfg.steps:
        t0 = time.perf_counter()
        loss = run.train_step()
        train_time += time.perf_counter() - t0
        losses.append(loss)
        last = (cfg.steps is not None and run.step >= cfg.steps) or time.monotonic() >= deadline
        if last or run.step % cfg.eval_every == 0:
            scores = run.evaluate()
            run.elapsed = time.monotonic() - started
            row = {"step": run.step, "train_loss": float(np.mean(losses)), **scores,
                   key: len(losses) * per_step / train_time, "elapsed_s": run.elapsed}
            metrics.append(row)
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            run.save(checkpoint_path)
            losses, train_time = [], 0.0
            last = last or time.monotonic() >= deadline  # the evaluation used up the remaining time
        if after_step:
            after_step(bar, last)
        bar.update(1)
        speed = per_step * len(losses) / train_time if losses else metrics[-1][key]
        bar.set_postfix(**postfix(loss, metrics[-1] if metrics else {}, speed))
        if last:
            break
    bar.close()
    return metrics

