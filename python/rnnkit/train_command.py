"""What the training commands of the model packages (``train-seq2seq``, ``train-classifier``,
``train-captions``) do around `rnnkit.training.fit`: `CommandRun`, a `TrainingRun` that saves and
resumes a model with its data spec, and `train`, which runs one in its output directory.

`train` follows `rnnkit.rundir`'s order: the saved settings merged with the options given on
``--resume`` (rank 0 reads the checkpoint and sends it to the other ranks under ``mpiexec``), the
settings validated, the directory checked, then the run trained inside `RunDir.writing`; at the end it
draws ``curve.png`` and logs the final evaluation and the best one as the run's `Report` says, and
returns the best model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Callable, ClassVar, Dict, Mapping, Optional, Sequence, Tuple, Type, TypeVar

import numpy as np

from . import checkpoint, distributed as dist
from .checkpoint import BEST_FILE
from .data_parallel import quiet_unless_main
from .models import single_threaded_blas
from .plotting import Score, plot_curve
from .rundir import CHECKPOINT_FILE, RunDir, RunKind, resumed_config
from .training import Config, TrainingRun, best_row, fit

__all__ = ["Report", "CommandRun", "train", "METRICS_FILE", "CURVE_FILE", "SCHEDULE_RESUMABLE"]

METRICS_FILE, CURVE_FILE = "metrics.jsonl", "curve.png"

#: The schedule settings every resumed run may change (`rnnkit.rundir.resume_settings`); a command's
#: ``RESUMABLE`` adds its own after them.
SCHEDULE_RESUMABLE: Tuple[str, ...] = (
    "steps",
    "minutes",
    "eval_every",
    "lr",
    "lr_decay",
    "lr_decay_every",
    "clip",
    "clip_mode",
)


@dataclasses.dataclass(frozen=True)
class Report:
    """What a command shows of its run: the figures of its progress bar, curve and closing lines.

    throughput: the metrics key of the units trained per second (a batch is ``run.batch`` units).
    loss_label: the y label of the curve's loss panel; curve_scores: its score panels.
    final: (label, metrics key, format) of the scores in the closing line, after the losses (a key
    missing from the row is left out).
    best: (label, metrics key) of the best evaluation's line (from its whole-split figures if it has them).
    bar: (name, metrics key, format) of the validation figure on the progress bar; bar_speed: the name of
    the throughput on the bar (None: not shown).
    show_part: whether the lines name the validation part they were scored on.
    """

    throughput: str
    loss_label: str
    curve_scores: Sequence[Score]
    final: Sequence[Tuple[str, str, str]]
    best: Sequence[Tuple[str, str]]
    bar: Tuple[str, str, str]
    bar_speed: Optional[str] = None
    show_part: bool = True

    def postfix(self, loss: float, row: Mapping[str, Any], speed: float) -> Dict[str, str]:
        """The progress bar's fields (`rnnkit.training.fit`'s ``postfix``)."""
        shown = {"loss": f"{loss:.3f}"}
        if self.bar_speed:
            shown[self.bar_speed] = f"{speed:.0f}"
        if row:
            name, key, fmt = self.bar
            shown[name] = format(row[key], fmt)
        return shown

    def final_line(self, row: Mapping[str, Any]) -> str:
        """The line of the run's last evaluation."""
        scores = ", ".join(f"{label} {format(row[key], fmt)}" for label, key, fmt in self.final if key in row)
        part = f" (validation {row['val_part']})" if self.show_part else ""
        return (
            f"step {row['step']} ({row['elapsed_s']:.0f} s): train loss {row['train_loss']:.4f}, val loss "
            f"{row['val_loss']:.4f}, {scores}{part}"
        )

    def best_line(self, row: Mapping[str, Any], out: str) -> str:
        """The line of the best evaluation, kept in ``out``/best.npz."""
        pre = "full_" if "full_" + self.best[0][1] in row else ""
        scores = ", ".join(f"{label} {row[pre + key]:.4f}" for label, key in self.best)
        part = ""
        if self.show_part:
            part = " on the " + ("whole validation split" if pre or row["val_part"] == "full" else "validation sample")
        return f"best: step {row['step']}, {scores}{part}; saved to {out}/{BEST_FILE} (latest: {out}/{CHECKPOINT_FILE})"


R = TypeVar("R", bound="CommandRun[Any]")


class CommandRun(TrainingRun[Config]):
    """A `TrainingRun` of a model package's training command. A subclass sets ``run_kind`` (its
    `rnnkit.rundir.RunKind`), ``resumable`` (the settings a resumed run may change), ``option_names``
    (options spelled otherwise than their field), ``report`` and ``batch``, provides
    ``model_from_checkpoint``, and may extend ``describe_data``, ``checkpoint_meta`` and
    ``restore_state``. Its configuration has a ``data`` spec and its model ``arrays()`` and ``meta()``;
    its constructor takes the configuration first, then the arguments `train` passes on
    (``run_args``)."""

    run_kind: ClassVar[RunKind]
    resumable: ClassVar[Sequence[str]]
    option_names: ClassVar[Optional[Mapping[str, str]]] = None
    report: Report
    batch: int

    def model_from_checkpoint(self, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], path: str) -> Any:
        """The model class's ``from_checkpoint`` with this run's backends."""
        raise NotImplementedError

    @staticmethod
    def describe_data(data: Any) -> Optional[str]:
        """Names a run's data spec in the message that refuses other data on resume (None: not named)."""
        return None

    def checkpoint_meta(self) -> Dict[str, Any]:
        """The checkpoint's fields beyond the model's, the optimiser's, the settings and the data."""
        return {}

    def restore_state(self, meta: Mapping[str, Any]) -> None:
        """Undoes `checkpoint_meta` beyond the weights and the optimiser (random generators)."""

    def save(self, path: str) -> None:
        cfg: Any = self.cfg
        arrays, meta = self.optimizer_checkpoint()
        arrays.update(self.model.arrays())
        meta.update(self.model.meta())
        meta.update({"train": dataclasses.asdict(cfg), "data": cfg.data, **self.checkpoint_meta()})
        self.write_checkpoint(path, arrays, meta)

    @classmethod
    def resume(
        cls: Type[R],
        arrays: Dict[str, np.ndarray],
        meta: Dict[str, Any],
        cfg: Any,
        *run_args: Any,
        path: str = CHECKPOINT_FILE,
    ) -> R:
        """The run saved as (arrays, meta) (from `rnnkit.checkpoint.load`), continued with ``cfg`` (the
        saved settings with the changes `rnnkit.rundir.resume_settings` allows)."""
        try:
            run = cls(cfg, *run_args)
            checkpoint.restore_arrays(run.model.params, arrays, "model/")
            run.restore_optimizer(arrays, meta)
            run.restore_state(meta)
        except (KeyError, TypeError, checkpoint.CheckpointError) as e:
            raise checkpoint.CheckpointError(f"{path} is not a resumable training checkpoint ({e})") from None
        return run

    def load_best(self, directory: str) -> Any:
        """The model of the run's best checkpoint in ``directory`` (its latest if it keeps no best)."""
        path = checkpoint.run_checkpoint(directory)
        arrays, meta = checkpoint.load(path)
        return self.model_from_checkpoint(arrays, meta, path)


def train(
    run_class: Type[CommandRun[Any]],
    cfg: Any,
    out: str,
    resume: bool,
    progress: bool,
    log: Callable[[str], None],
    overwrite: bool,
    given: Optional[Mapping[str, Any]],
    run_args: Sequence[Any] = (),
) -> Any:
    """Train a ``run_class(cfg, *run_args)`` (or, with ``resume``, continue the run in ``out``) and
    return its best model.

    ``out`` receives metrics.jsonl, checkpoint.npz (the latest), best.npz (the best) and curve.png. A
    directory that already holds a run is written into only with ``resume`` or ``overwrite``
    (`rnnkit.rundir`). On resume the saved settings are kept; ``given`` (field -> value, the settings
    the caller asks for; default: ``cfg``'s steps, minutes and eval_every, and its data if any) may
    change those in ``run_class.resumable`` and must agree with the others. ``progress``: show a
    progress bar; ``log``: where the lines go (rank 0's alone under mpiexec). Raises ValueError for bad
    data or settings or a directory holding a run, CheckpointError for a missing or bad checkpoint on
    resume."""
    dist.init()
    main, log = dist.is_main(), quiet_unless_main(log)
    run_dir = RunDir(out, run_class.run_kind)
    if resume:
        # --out is on rank 0's disk: it reads the checkpoint and sends it to the others
        cfg, arrays, meta = dist.broadcast_object(
            resumed_config(
                run_dir, cfg, given, run_class.resumable, log, run_class.option_names, run_class.describe_data
            )
            if main
            else None
        )
    cfg.validate()
    if not resume and main:
        run_dir.check_new(overwrite)
    with single_threaded_blas():
        if resume:
            run = run_class.resume(arrays, meta, cfg, *run_args, path=run_dir.checkpoint_path)
        else:
            run = run_class(cfg, *run_args)
        with run_dir.writing(overwrite and not resume) if main else contextlib.nullcontext():
            return _train(run, out, resume, progress, log)


def _train(run: CommandRun[Any], out: str, resume: bool, progress: bool, log: Callable[[str], None]) -> Any:
    ckpt_path = os.path.join(out, CHECKPOINT_FILE)
    metrics_path = os.path.join(out, METRICS_FILE)
    metrics = dist.broadcast_object(
        checkpoint.read_metrics(metrics_path, run.step) if resume and dist.is_main() else []
    )
    report = run.report
    metrics = fit(run, metrics, metrics_path, ckpt_path, progress, (report.throughput, run.batch), report.postfix)
    if dist.world_size() > 1:  # rank 0 writes the files; every rank returns the best model
        best = dist.broadcast_object(checkpoint.load(checkpoint.run_checkpoint(out)) if dist.is_main() else None)
        if not dist.is_main():
            arrays, meta = best
            return run.model_from_checkpoint(arrays, meta, "checkpoint")
    curve = os.path.join(out, CURVE_FILE)
    if not plot_curve(metrics, curve, report.loss_label, report.curve_scores):
        log(f"note: matplotlib is not installed, so {curve} was not drawn (pip install matplotlib)")
    if metrics:
        log(report.final_line(metrics[-1]))
    best_evaluation = best_row(metrics)
    if best_evaluation:
        log(report.best_line(best_evaluation, out))
    return run.load_best(out)
