"""What the model packages' training runs share (`rnnkit.charlm`, `rnnkit.seq2seq`, and any later
training command).

`TrainingRun` is one run's state: model, optimiser, learning-rate schedule (`rnnkit.schedules`), the
best validation score so far, step count and time spent, with the optimisation step around the
model's loss (clipping, the scheduled learning rate, the update) and the optimiser's part of a
checkpoint. `fit` is the loop: step until the step or time budget ends (or early stopping), evaluate
every ``eval_every`` steps and after the last one, keep the best checkpoint beside the latest one,
record each evaluation in ``metrics.jsonl``, and show a progress bar. A run resumed from its latest
checkpoint continues exactly where it stopped.

Validation at a bounded cost: between evaluations a run scores a fixed sample of its validation part
(the same sample every time, so the curve is comparable); its rows say ``"val_part": "sample"``
(``"full"`` when the sample is the whole part). The best checkpoint (``best.npz``) is kept by those
scores while the run goes; at the end the whole validation part decides: the final model and the best
candidate are scored on it (rows gain ``full_`` figures), the better one stays in ``best.npz`` and its
row carries ``"best": true``.

Data parallel under ``mpiexec`` (`rnnkit.data_parallel`): a run whose class sets ``data_parallel``
trains on its rank's share of each batch; `TrainingRun.train_step` sums the shares' gradients and losses
with one allreduce before clipping (so clipping by norm uses the global norm) and the update, so every
rank takes the same step. `fit` runs on every rank; rank 0 alone prints, draws the progress bar and
writes ``metrics.jsonl`` and the checkpoints, and decides from its clock when a ``--minutes`` run ends.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, Tuple, TypeVar

import numpy as np

from . import checkpoint, distributed as dist
from ._atomic import atomic_write
from .checkpoint import BEST_FILE
from .data_parallel import GradientReducer, from_main
from .optim import Schedule, clip_grad_norm, clip_grad_value, make_optimizer
from .schedules import Best, LRSchedule, run_progress

__all__ = ["TrainingRun", "fit", "best_row", "write_rows"]

Config = TypeVar("Config", bound=Schedule)


class TrainingRun(Generic[Config]):
    """Base of a training run. A subclass sets ``cfg`` (a `Schedule` with ``eval_every``) and the model
    (``params``, ``grads``, ``zero_grad()``) through ``__init__`` and provides ``batch_loss()`` (the
    next batch's loss, its gradients added to ``model.grads``), ``evaluate(full)`` (a dict of
    validation metrics on the fixed validation sample, or on the whole part with ``full``),
    ``score(metrics)`` (a tuple, larger is better, from such a dict or a metrics row) and
    ``save(path)``; ``val_ratio`` is the whole part's size over the sample's (1: the sample is the
    whole part).

    A subclass that trains data parallel sets ``data_parallel``: its ``batch_loss`` then runs on the
    rank's share of the batch and returns the share's mean loss, ``share_weight()`` says what fraction
    of the batch's loss that share carries, its ``evaluate`` returns the same figures on every rank, and
    its ``save`` is called on every rank and writes on rank 0 (`write_checkpoint`)."""

    val_ratio: float = 1.0
    data_parallel: bool = False

    def __init__(self, cfg: Config, model: Any):
        self.cfg, self.model = cfg, model
        kwargs = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}
        if cfg.weight_decay is not None:
            kwargs["weight_decay"] = cfg.weight_decay
        self.base_lr = cfg.peak_lr()
        self.opt = make_optimizer(cfg.optimizer, model.params, self.base_lr, **kwargs)
        self.lr_schedule = LRSchedule(cfg)
        self.best = Best()
        self.step = 0
        self.elapsed = 0.0
        self.reducer: Optional[GradientReducer] = None

    def batch_loss(self) -> float:
        raise NotImplementedError

    def evaluate(self, full: bool = False) -> Dict[str, float]:
        raise NotImplementedError

    def score(self, metrics: Mapping[str, Any]) -> Tuple[float, ...]:
        raise NotImplementedError

    def save(self, path: str) -> None:
        raise NotImplementedError

    def share_weight(self) -> float:
        """The fraction of the last batch's loss that this rank's share carries (1 in one process)."""
        return 1.0

    def write_checkpoint(self, path: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """`rnnkit.checkpoint.save` on rank 0 (the one rank that writes files)."""
        if dist.is_main():
            checkpoint.save(path, dict(arrays), dict(meta))

    def _reduce(self, loss: float) -> float:
        """The batch's loss and gradients summed over the ranks' shares (one allreduce)."""
        if dist.world_size() == 1:
            return loss
        if self.reducer is None:
            self.reducer = GradientReducer(self.model.grads)
        return self.reducer.reduce(self.model.grads, loss, self.share_weight())

    def train_step(self) -> float:
        """One optimisation step: gradients of the next batch, clipped, then the update at the
        scheduled learning rate. Returns the batch's loss."""
        cfg = self.cfg
        self.model.zero_grad()
        loss = self._reduce(self.batch_loss())
        if cfg.clip > 0:
            grads = self.model.grads.values()
            clip_grad_norm(grads, cfg.clip) if cfg.clip_mode == "norm" else clip_grad_value(grads, cfg.clip)
        progress = run_progress(cfg, self.step, self.elapsed)
        self.opt.lr = self.base_lr * self.lr_schedule.factor(self.step, progress)
        self.opt.step(self.model.grads)
        self.step += 1
        return loss

    def optimizer_checkpoint(self) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
        """The optimiser's arrays (keys ``optim/...``) and the JSON fields (step, time, optimiser
        scalars, schedule and best-score state) a checkpoint needs to resume this run."""
        state = self.opt.state_dict()
        arrays = {f"optim/{k}": v for k, v in state["arrays"].items()}
        return arrays, {
            "step": self.step,
            "elapsed_s": self.elapsed,
            "optim": state["scalars"],
            "schedule": self.lr_schedule.state_dict(),
            "best": self.best.state_dict(),
        }

    def restore_optimizer(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Undoes `optimizer_checkpoint` (KeyError or TypeError for a checkpoint that lacks it)."""
        self.opt.load_state_dict(
            {
                "scalars": meta["optim"],
                "arrays": {k[len("optim/") :]: v for k, v in arrays.items() if k.startswith("optim/")},
            }
        )
        self.step, self.elapsed = int(meta["step"]), float(meta["elapsed_s"])
        self.lr_schedule.load_state_dict(meta["schedule"])
        self.best.load_state_dict(meta["best"])

    def evaluate_checkpoint(self, path: str, full: bool = True) -> Dict[str, float]:
        """`evaluate` with the weights saved at ``path`` (a checkpoint of this run, read on rank 0 and
        sent to the others); the run's own weights are back in place afterwards."""
        current = {k: v.copy() for k, v in self.model.params.items()}
        if dist.is_main():
            arrays, _ = checkpoint.load(path)
            checkpoint.restore_arrays(self.model.params, arrays, "model/")
        dist.broadcast_(self.model.params)
        try:
            return self.evaluate(full)
        finally:
            for k, v in current.items():
                np.copyto(self.model.params[k], v)


def write_rows(path: str, rows: List[dict]) -> None:
    """Write metrics rows as JSON lines, atomically (the file is replaced, never half written)."""
    atomic_write(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")))


def best_row(rows: List[dict]) -> Optional[dict]:
    """The row marked ``"best": true`` (None if none is)."""
    return next((r for r in rows if r.get("best")), None)


def _mark_best(rows: List[dict], row: dict) -> None:
    for r in rows:
        r.pop("best", None)
    row["best"] = True


def _decide_on_full(run: TrainingRun, rows: List[dict], best_path: str) -> None:
    """The end of a run: score the final model (the last row) on the whole validation part, and the
    best candidate too if it is another; keep the better in ``best_path`` and mark its row."""
    final = rows[-1]
    full = run.evaluate(full=True)
    final.update({f"full_{k}": v for k, v in full.items()})
    candidate = next((r for r in rows if r["step"] == run.best.step), None) if run.best.step != run.step else None
    if candidate is None:
        if run.best.step == run.step:
            _mark_best(rows, final)
        return
    if "full_" + next(iter(full)) not in candidate:
        candidate.update({f"full_{k}": v for k, v in run.evaluate_checkpoint(best_path).items()})
    if run.score(full) > run.score({k[len("full_") :]: v for k, v in candidate.items() if k.startswith("full_")}):
        run.best.score, run.best.step, run.best.stale = tuple(run.score(final)), run.step, 0
        run.save(best_path)
        _mark_best(rows, final)


def fit(
    run: TrainingRun[Any],
    metrics: List[dict],
    metrics_path: str,
    checkpoint_path: str,
    progress: bool,
    throughput: Tuple[str, float],
    postfix: Callable[[float, Dict[str, Any], float], Dict[str, str]],
    after_step: Optional[Callable[[Any, bool], None]] = None,
    best_path: Optional[str] = None,
) -> List[dict]:
    """Trains ``run`` until ``cfg.steps`` or ``cfg.minutes`` ends, or ``cfg.patience`` evaluations
    pass without a better validation score; returns the metrics rows.

    metrics: the rows so far (a resumed run's, already read back); metrics_path is rewritten with them
    first. checkpoint_path: the latest checkpoint, written at every evaluation; best_path (default
    best.npz beside it): the best one. throughput: (its key in a row, units per step), e.g.
    ("chars_per_s", batch * seq_len). postfix(loss, last row or {}, current throughput): the progress
    bar's fields. after_step(bar, last): called after every step (e.g. to print a sample with
    bar.write). A ``--minutes`` run keeps back the time its closing evaluation on the whole validation
    part is expected to take (from the sample's mean time), so it ends near its deadline; when its best
    candidate is not its final model, scoring that one too runs over by about as long again.
    """
    from tqdm import tqdm

    cfg = run.cfg
    main = dist.is_main()
    if dist.world_size() > 1 and not run.data_parallel:
        raise ValueError(
            f"{type(run).__name__} does not train data parallel (train-charlm and train-seq2seq do): "
            "run it without mpiexec"
        )
    best_path = best_path or os.path.join(os.path.dirname(checkpoint_path), BEST_FILE)
    if main:
        write_rows(metrics_path, metrics)
    key, per_step = throughput
    deadline = time.monotonic() + 60 * cfg.minutes if cfg.minutes else math.inf
    started = time.monotonic() - run.elapsed
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not (progress and main), unit="step", dynamic_ncols=True)

    def past_deadline() -> bool:  # rank 0's clock decides for every rank
        return bool(from_main([time.monotonic() + reserve >= deadline])[0]) if cfg.minutes else False

    losses: List[float] = []
    train_time = reserve = 0.0
    sample_times: List[float] = []
    while cfg.steps is None or run.step < cfg.steps:
        run.elapsed = from_main([time.monotonic() - started])[0] if cfg.minutes else time.monotonic() - started
        t0 = time.perf_counter()
        loss = run.train_step()
        train_time += time.perf_counter() - t0
        losses.append(loss)
        last = (cfg.steps is not None and run.step >= cfg.steps) or past_deadline()
        if last or run.step % cfg.eval_every == 0:
            t0 = time.perf_counter()
            scores = run.evaluate(full=False)
            if run.val_ratio > 1:  # the closing evaluation of the final model on the whole part
                sample_times.append(time.perf_counter() - t0)
                reserve = run.val_ratio * float(np.mean(sample_times))
            row = {
                "step": run.step,
                "train_loss": float(np.mean(losses)),
                **scores,
                "val_part": "sample" if run.val_ratio > 1 else "full",
                "lr": run.opt.lr,
                key: len(losses) * per_step / train_time,
            }
            metrics.append(row)
            improved = run.best.update(run.step, run.score(scores))
            run.lr_schedule.evaluated(improved)
            if improved:
                _mark_best(metrics, row)
                run.save(best_path)
            stopped = cfg.patience is not None and run.best.stale >= cfg.patience
            last = last or stopped or past_deadline()
            if last and run.val_ratio > 1:
                _decide_on_full(run, metrics, best_path)
            run.elapsed = row["elapsed_s"] = time.monotonic() - started
            run.save(checkpoint_path)
            if main:
                write_rows(metrics_path, metrics)
            losses, train_time = [], 0.0
            if stopped and main:
                bar.write(
                    f"early stop at step {run.step}: no better validation score in the last "
                    f"{cfg.patience} evaluations (--patience {cfg.patience})"
                )
        if after_step and main:
            after_step(bar, last)
        bar.update(1)
        speed = per_step * len(losses) / train_time if losses else metrics[-1][key]
        bar.set_postfix(**postfix(loss, metrics[-1] if metrics else {}, speed))
        if last:
            break
    bar.close()
    return metrics
