"""Training of a `CharLM` as char-rnn does it, with exact resume.

The validation part is given (the default corpus holds out whole files) or is the text's last
``val_frac``. B contiguous streams run through the training part; each step takes the next chunk of
``seq_len`` characters of every stream and carries the hidden state from chunk to chunk (truncated
BPTT); at the end of the training part (an epoch) the streams start again from zero states. Every
``eval_every`` steps, and after the last step, the loss over a fixed sample of the validation part
(``val_sample`` characters as B evenly spaced spans, each read with carried state; the whole part if
it is not larger) is appended to ``metrics.jsonl`` and the latest checkpoint is written; the best is
kept beside it and the whole part decides at the end (`rnnkit.training.fit`); ``curve.png`` is drawn
at the end.

A checkpoint holds everything the next step depends on (weights, optimiser buffers, step, carried state,
dropout RNG state), so N steps + resume + N steps gives the same weights, bit for bit, as 2N steps at
a fixed thread count.

Under ``mpiexec`` (`rnnkit.data_parallel`) each rank trains its contiguous share of the B streams,
carrying their state, and scores its share of the validation streams; the sums of the shares are
reduced. The checkpoint holds the carried state of all B streams (gathered), so a run resumes with any
number of ranks. Dropout masks are then drawn per stream from its global index
(`rnnkit.stream_dropout`), so they do not depend on which rank holds a stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from .. import checkpoint, distributed as dist
from ..checkpoint import BEST_FILE
from ..data_parallel import quiet_unless_main, share, sum_across
from ..models import LAYER_CLASSES, check_input_width
from ..optim import DEFAULT_LR, Schedule
from ..rundir import KINDS, RunDir, resume_settings
from ..training import TrainingRun, best_row, fit
from .data import TextError, TrainStreams, sample_streams, split
from .model import CHECKPOINT_FILE, FORMAT, CharLM, single_threaded_blas
from .plot import plot_curve
from .vocab import Vocab

__all__ = ["TrainConfig", "CharLMRun", "train", "DEFAULT_LR", "METRICS_FILE", "CURVE_FILE", "SAMPLE_FILE"]

METRICS_FILE, CURVE_FILE, SAMPLE_FILE = "metrics.jsonl", "curve.png", "sample.txt"


@dataclasses.dataclass
class TrainConfig(Schedule):
    """Settings of one run; ``steps`` and ``minutes`` bound it (whichever ends first; one is needed).

    On resume the model, data and optimisation settings come from the checkpoint; only the fields in
    `RESUMABLE` (how long, how often to report) come from the caller.
    """

    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embed: int = 64
    seq_len: int = 64
    batch: int = 32
    dropout: float = 0.0
    val_frac: float = 0.1
    val_sample: int = 65536  # characters of the validation sample; 0: the whole part every time
    eval_every: int = 200
    sample_every: int = 0  # 0: only the final sample
    seed: int = 0

    def validate(self) -> None:
        """ValueError with one line naming the first bad setting."""
        for name in ("layers", "hidden", "seq_len", "batch", "eval_every", "lr_decay_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        for name in ("embed", "sample_every", "val_sample"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        self.check_schedule()
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if self.cell not in LAYER_CLASSES:
            raise ValueError(f"--cell must be one of {', '.join(LAYER_CLASSES)}, got {self.cell!r}")
        check_input_width(self.cell, self.embed, self.hidden)


#: The settings a resumed run may change (`rnnkit.rundir.resume_settings`); the rest are the run's.
RESUMABLE = (
    "steps",
    "minutes",
    "eval_every",
    "sample_every",
    "lr",
    "lr_decay",
    "lr_decay_every",
    "clip",
    "clip_mode",
    "patience",
    "val_sample",
)
KIND = KINDS[FORMAT]


def _text_digest(train_part: str, val_part: str) -> str:
    return hashlib.sha256(train_part.encode("utf-8") + b"\0" + val_part.encode("utf-8")).hexdigest()


class CharLMRun(TrainingRun[TrainConfig]):
    """One char-LM training run: the text's streams, the model, the carried state (`TrainingRun`
    holds the optimiser, the schedule, the best score and the step). Under mpiexec, this rank's
    share of it: ``streams`` is the slice of the B streams it trains and ``state`` theirs."""

    data_parallel = True

    def __init__(self, cfg: TrainConfig, train_part: str, val_part: str, dtype: Any = np.float32):
        if len(val_part) < 2:
            raise TextError("the validation part is too short (fewer than 2 characters)")
        self.digest = _text_digest(train_part, val_part)
        vocab = Vocab.from_text(train_part)
        self.streams = TrainStreams(vocab.encode(train_part), cfg.batch, cfg.seq_len)
        self.val_ids = vocab.encode(val_part)
        per_stream = cfg.val_sample // cfg.batch
        self.val_sample = sample_streams(self.val_ids, cfg.batch, per_stream) if per_stream else None
        if self.val_sample is not None:
            self.val_ratio = (len(self.val_ids) - 1) / (self.val_sample.shape[0] * per_stream)
        self.share = share(cfg.batch, "--batch")
        model = CharLM(vocab, cfg.cell, cfg.layers, cfg.hidden, cfg.embed, cfg.dropout, dtype, cfg.seed)
        super().__init__(cfg, model)
        dist.check_same(
            {
                "settings": dataclasses.asdict(cfg),
                "model": model.config,
                "vocabulary": vocab.to_json(),
                "text": self.digest,
            },
            "the run",
        )
        if dist.world_size() > 1:
            model.use_stream_keyed_dropout(self.share.start)
        self.state = self.model.initial_state(self._streams_here)

    @property
    def _streams_here(self) -> int:
        return self.share.stop - self.share.start

    def batch_loss(self) -> float:
        k = self.step % self.streams.num_batches
        if k == 0:  # a new epoch: the streams start again from zero states
            self.state = self.model.initial_state(self._streams_here)
        x, y = self.streams.batch(k)
        if dist.world_size() > 1:
            x, y = np.ascontiguousarray(x[:, self.share]), np.ascontiguousarray(y[:, self.share])
        loss, self.state = self.model.loss_and_grad(x, y, self.state)
        return loss

    def share_weight(self) -> float:
        return self._streams_here / self.cfg.batch

    def evaluate(self, full: bool = False) -> Dict[str, float]:
        ids = self.val_ids if full or self.val_sample is None else self.val_sample
        if dist.world_size() == 1:
            total, count = self.model.nll_sum(ids, self.cfg.batch, self.cfg.seq_len)
        else:
            streams = min(self.cfg.batch, len(ids) - 1) if ids.ndim == 1 else ids.shape[0]
            total, count = self.model.nll_sum(ids, self.cfg.batch, self.cfg.seq_len, streams=share(streams))
            total, count = sum_across([total, count])
        return {"val_loss": total / count, "val_bpc": total / count / math.log(2)}

    def global_state(self) -> Any:
        """The carried state of all B streams (this rank's own in a single process)."""
        if dist.world_size() == 1:
            return self.state
        parts = dist.allgather(self.state)
        h = np.concatenate([p[0] for p in parts], axis=1)
        return h, (None if self.state[1] is None else np.concatenate([p[1] for p in parts], axis=1))

    def score(self, metrics) -> tuple:
        return (-metrics["val_loss"],)

    # -------------------------------------------------------------- checkpoints

    def save(self, path: str) -> None:
        arrays, meta = self.optimizer_checkpoint()
        arrays.update(self.model.arrays())
        h, c = self.global_state()
        arrays["state/h"] = h
        if c is not None:
            arrays["state/c"] = c
        meta.update(self.model.meta())
        meta.update(
            {
                "train": dataclasses.asdict(self.cfg),
                "text_sha256": self.digest,
                "rng": {"dropout": self.model.dropout_rng_state()},
            }
        )
        self.write_checkpoint(path, arrays, meta)

    @classmethod
    def resume(
        cls,
        arrays: Dict[str, np.ndarray],
        meta: Dict[str, Any],
        train_part: str,
        val_part: str,
        cfg: TrainConfig,
        path: str = CHECKPOINT_FILE,
    ) -> "CharLMRun":
        """The run saved as (arrays, meta) (from `rnnkit.checkpoint.load`), continued with ``cfg`` (the
        saved settings with the changes `rnnkit.rundir.resume_settings` allows)."""
        try:
            if meta["text_sha256"] != _text_digest(train_part, val_part):
                raise TextError("the text differs from the one this checkpoint was trained on")
            run = cls(cfg, train_part, val_part)
            checkpoint.restore_arrays(run.model.params, arrays, "model/")
            run.restore_optimizer(arrays, meta)
            here = run.share
            run.state = (
                arrays["state/h"][:, here].copy(),
                arrays["state/c"][:, here].copy() if "state/c" in arrays else None,
            )
            run.model.set_dropout_rng_state(meta["rng"]["dropout"], here.start)
            if dist.world_size() > 1:
                run.model.use_stream_keyed_dropout(here.start)
        except (KeyError, TypeError, checkpoint.CheckpointError) as e:
            raise checkpoint.CheckpointError(f"{path} is not a resumable training checkpoint ({e})") from None
        return run


def train(
    cfg: TrainConfig,
    text: str,
    out: str,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
    given: Optional[Mapping[str, Any]] = None,
    val_text: Optional[str] = None,
) -> CharLM:
    """Train (or, with ``resume``, continue training from ``out``) a CharLM on ``text``, validating on
    ``val_text`` (default: the last ``cfg.val_frac`` of ``text``, which then trains on the rest).

    ``out`` receives metrics.jsonl, checkpoint.npz (the latest), best.npz (the best), curve.png and
    sample.txt (the final sample, from the best model); returns the best model. A
    directory that already holds a run is written into only with ``resume`` or ``overwrite``
    (`rnnkit.rundir`). On resume the saved settings are kept; ``given`` (field -> value, the settings the
    caller asks for; default: ``cfg``'s steps, minutes, eval_every and sample_every) may change those in
    `RESUMABLE` and must agree with the others. Raises TextError for unusable text, CheckpointError for a
    missing or bad checkpoint on resume, ValueError for a bad setting or a directory holding a run.
    """
    dist.init()
    main, log = dist.is_main(), quiet_unless_main(log)
    run_dir = RunDir(out, KIND)
    if resume:
        # --out is on rank 0's disk: it reads the checkpoint and sends it to the others
        arrays, meta = dist.broadcast_object(run_dir.load_for_resume() if main else None)
        if given is None:
            given = {k: getattr(cfg, k) for k in ("steps", "minutes", "eval_every", "sample_every")}
        try:
            cfg = TrainConfig(**resume_settings(out, meta["train"], int(meta["step"]), given, RESUMABLE, log))
        except TypeError as e:
            raise checkpoint.CheckpointError(
                f"{run_dir.checkpoint_path} is not a resumable training checkpoint ({e})"
            ) from None
    cfg.validate()
    train_part, val_part = (text, val_text) if val_text is not None else split(text, cfg.val_frac)
    if not resume and main:
        run_dir.check_new(overwrite)
    with single_threaded_blas():
        if resume:
            run = CharLMRun.resume(arrays, meta, train_part, val_part, cfg, run_dir.checkpoint_path)
        else:
            run = CharLMRun(cfg, train_part, val_part)
        with run_dir.writing(overwrite and not resume) if main else contextlib.nullcontext():
            return _train(run, out, resume, progress, log)


def _train(run: CharLMRun, out: str, resume: bool, progress: bool, log: Callable[[str], None]) -> CharLM:
    ckpt_path = os.path.join(out, CHECKPOINT_FILE)
    metrics_path = os.path.join(out, METRICS_FILE)
    metrics = dist.broadcast_object(
        checkpoint.read_metrics(metrics_path, run.step) if resume and dist.is_main() else []
    )
    cfg = run.cfg

    def sample_now(bar, last: bool) -> None:
        if cfg.sample_every and run.step % cfg.sample_every == 0 and not last:
            bar.write(f"--- sample at step {run.step} ---\n{run.model.sample(300, 0.8, seed=run.step)}\n---")

    def postfix(loss: float, row: Dict[str, Any], speed: float) -> Dict[str, str]:
        return {"loss": f"{loss:.3f}", "val_bpc": f"{row['val_bpc']:.3f}" if row else "-", "chars_s": f"{speed:,.0f}"}

    metrics = fit(
        run, metrics, metrics_path, ckpt_path, progress, ("chars_per_s", cfg.batch * cfg.seq_len), postfix, sample_now
    )
    if dist.world_size() > 1:  # rank 0 writes the files; every rank returns the best model
        best = dist.broadcast_object(checkpoint.load(checkpoint.run_checkpoint(out)) if dist.is_main() else None)
        if not dist.is_main():
            return CharLM.from_checkpoint(*best)
    curve = os.path.join(out, CURVE_FILE)
    if not plot_curve(metrics, curve):
        log(f"note: matplotlib is not installed, so {curve} was not drawn (pip install matplotlib)")
    model = CharLM.load(out)
    sample = model.sample(500, 0.8, seed=cfg.seed)
    with open(os.path.join(out, SAMPLE_FILE), "w", encoding="utf-8") as f:
        f.write(sample)
    final = metrics[-1] if metrics else None
    if final:
        log(
            f"step {final['step']}: train loss {final['train_loss']:.4f}, val loss {final['val_loss']:.4f} "
            f"nats/char ({final['val_bpc']:.4f} bits/char, validation {final['val_part']}), "
            f"{final['chars_per_s']:,.0f} chars/s"
        )
    best = best_row(metrics)
    if best:
        full = "full_val_bpc" in best
        bpc = best["full_val_bpc"] if full else best["val_bpc"]
        part = "whole validation part" if full or best["val_part"] == "full" else "validation sample"
        log(
            f"best: step {best['step']}, {bpc:.4f} bits/char on the {part}; saved to {out}/{BEST_FILE} "
            f"(latest: {out}/{CHECKPOINT_FILE})"
        )
    log(f"--- sample of the best model (temperature 0.8) ---\n{sample}")
    return model
