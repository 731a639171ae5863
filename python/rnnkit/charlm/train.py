"""Training of a `CharLM` as char-rnn does it, with exact resume.

The text's last ``val_frac`` is the validation part. B contiguous streams run through the training part;
each step takes the next chunk of ``seq_len`` characters of every stream and carries the hidden state
from chunk to chunk (truncated BPTT); at the end of the training part (an epoch) the streams start
again from zero states. Every ``eval_every`` steps, and after the last step, the loss over the whole
validation part (read as B streams with carried state) is appended to ``metrics.jsonl`` and a
checkpoint is written; ``curve.png`` is drawn at the end.

A checkpoint holds everything the next step depends on (weights, optimiser buffers, step, carried state,
dropout RNG state), so N steps + resume + N steps gives the same weights, bit for bit, as 2N steps at
a fixed thread count.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from typing import Any, Callable, List, Optional

import numpy as np

from .. import checkpoint
from ..optim import DEFAULT_LR, Schedule, clip_grad_norm, clip_grad_value, decayed_lr, make_optimizer
from .data import TextError, TrainStreams, split
from .model import CHECKPOINT_FILE, CharLM, single_threaded_blas
from .plot import plot_curve
from .vocab import Vocab

__all__ = ["TrainConfig", "train", "DEFAULT_LR", "METRICS_FILE", "CURVE_FILE", "SAMPLE_FILE"]

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
    eval_every: int = 200
    sample_every: int = 0  # 0: only the final sample
    seed: int = 0

    def validate(self) -> None:
        """ValueError with one line naming the first bad setting."""
        for name in ("layers", "hidden", "seq_len", "batch", "eval_every", "lr_decay_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        for name in ("embed", "sample_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        self.check_schedule()
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if self.cell not in ("lstm", "gru", "rnn"):
            raise ValueError(f"--cell must be lstm, gru or rnn, got {self.cell!r}")


RESUMABLE = ("steps", "minutes", "eval_every", "sample_every")


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Run:
    """The state of one training run and the steps that change it."""

    def __init__(self, cfg: TrainConfig, text: str):
        self.cfg = cfg
        self.digest = _text_digest(text)
        train_part, val_part = split(text, cfg.val_frac)
        vocab = Vocab.from_text(train_part)
        self.streams = TrainStreams(vocab.encode(train_part), cfg.batch, cfg.seq_len)
        self.val_ids = vocab.encode(val_part)
        self.model = CharLM(vocab, cfg.cell, cfg.layers, cfg.hidden, cfg.embed, cfg.dropout, np.float32, cfg.seed)
        kwargs = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}
        self.base_lr = cfg.lr or DEFAULT_LR[cfg.optimizer]
        self.opt = make_optimizer(cfg.optimizer, self.model.params, self.base_lr, **kwargs)
        self.state = self.model.initial_state(cfg.batch)
        self.step = 0
        self.elapsed = 0.0

    def train_step(self) -> float:
        cfg, model = self.cfg, self.model
        k = self.step % self.streams.num_batches
        if k == 0:
            self.state = model.initial_state(cfg.batch)
        x, y = self.streams.batch(k)
        model.zero_grad()
        loss, self.state = model.loss_and_grad(x, y, self.state)
        if cfg.clip > 0:
            grads = model.grads.values()
            clip_grad_norm(grads, cfg.clip) if cfg.clip_mode == "norm" else clip_grad_value(grads, cfg.clip)
        self.opt.lr = decayed_lr(self.base_lr, self.step, cfg.lr_decay, cfg.lr_decay_every)
        self.opt.step(model.grads)
        self.step += 1
        return loss

    def val_loss(self) -> float:
        total, count = self.model.nll_sum(self.val_ids, self.cfg.batch, self.cfg.seq_len)
        return total / count

    # -------------------------------------------------------------- checkpoints

    def save(self, path: str) -> None:
        opt_state = self.opt.state_dict()
        arrays = dict(self.model.arrays())
        arrays.update({f"optim/{k}": v for k, v in opt_state["arrays"].items()})
        arrays["state/h"] = self.state[0]
        if self.state[1] is not None:
            arrays["state/c"] = self.state[1]
        meta = self.model.meta()
        meta.update({"train": dataclasses.asdict(self.cfg), "text_sha256": self.digest, "step": self.step,
                     "elapsed_s": self.elapsed, "optim": opt_state["scalars"],
                     "rng": {"dropout": self.model.dropout_rng_state()}})
        checkpoint.save(path, arrays, meta)

    @classmethod
    def resume(cls, path: str, text: str, overrides: TrainConfig) -> "_Run":
        arrays, meta = checkpoint.load(path)
        try:
            saved = meta["train"]
            cfg = TrainConfig(**{**saved, **{k: getattr(overrides, k) for k in RESUMABLE}})
            if meta["text_sha256"] != _text_digest(text):
                raise TextError("the text differs from the one this checkpoint was trained on")
            run = cls(cfg, text)
            checkpoint.restore_arrays(run.model.params, arrays, "model/")
            run.opt.load_state_dict({"scalars": meta["optim"], "arrays": {
                k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}})
            run.state = (arrays["state/h"].copy(), arrays["state/c"].copy() if "state/c" in arrays else None)
            run.model.set_dropout_rng_state(meta["rng"]["dropout"])
            run.step, run.elapsed = int(meta["step"]), float(meta["elapsed_s"])
        except (KeyError, TypeError) as e:
            raise checkpoint.CheckpointError(f"{path} is not a resumable training checkpoint ({e})") from None
        return run


def train(cfg: TrainConfig, text: str, out: str, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] = print) -> CharLM:
    """Train (or, with ``resume``, continue training from ``out``) a CharLM on ``text``.

    ``out`` receives metrics.jsonl, checkpoint.npz, curve.png and sample.txt (the final sample).
    Raises TextError for unusable text, CheckpointError for a missing or bad checkpoint on resume,
    ValueError for a bad setting.
    """
    cfg.validate()
    with single_threaded_blas():
        return _train(cfg, text, out, resume, progress, log)


def _train(cfg: TrainConfig, text: str, out: str, resume: bool, progress: bool, log: Callable[[str], None]
           ) -> CharLM:
    os.makedirs(out, exist_ok=True)
    ckpt_path = os.path.join(out, CHECKPOINT_FILE)
    metrics_path = os.path.join(out, METRICS_FILE)
    if resume:
        run = _Run.resume(ckpt_path, text, cfg)
        metrics = checkpoint.read_metrics(metrics_path, run.step)
    else:
        run, metrics = _Run(cfg, text), []
    with open(metrics_path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in metrics)
    cfg = run.cfg
    chars_per_step = cfg.batch * cfg.seq_len
    deadline = time.monotonic() + 60 * cfg.minutes if cfg.minutes else math.inf
    started = time.monotonic() - run.elapsed
    bar = _progress(cfg.steps, run.step, progress)
    losses: List[float] = []
    train_time = 0.0
    val_bpc = float("nan")
    while cfg.steps is None or run.step < cfg.steps:
        t0 = time.perf_counter()
        loss = run.train_step()
        train_time += time.perf_counter() - t0
        losses.append(loss)
        last = (cfg.steps is not None and run.step >= cfg.steps) or time.monotonic() >= deadline
        if last or run.step % cfg.eval_every == 0:
            val = run.val_loss()
            val_bpc = val / math.log(2)
            run.elapsed = time.monotonic() - started
            row = {"step": run.step, "train_loss": float(np.mean(losses)), "val_loss": val, "val_bpc": val_bpc,
                   "chars_per_s": len(losses) * chars_per_step / train_time, "elapsed_s": run.elapsed}
            metrics.append(row)
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            run.save(ckpt_path)
            losses, train_time = [], 0.0
            last = last or time.monotonic() >= deadline  # the evaluation used up the remaining time
        if cfg.sample_every and run.step % cfg.sample_every == 0 and not last:
            bar.write(f"--- sample at step {run.step} ---\n{run.model.sample(300, 0.8, seed=run.step)}\n---")
        bar.update(1)
        speed = chars_per_step * len(losses) / train_time if losses else metrics[-1]["chars_per_s"]
        bar.set_postfix(loss=f"{loss:.3f}", val_bpc="-" if math.isnan(val_bpc) else f"{val_bpc:.3f}",
                        chars_s=f"{speed:,.0f}")
        if last:
            break
    bar.close()
    curve = os.path.join(out, CURVE_FILE)
    if not plot_curve(metrics, curve):
        log(f"note: matplotlib is not installed, so {curve} was not drawn (pip install matplotlib)")
    sample = run.model.sample(500, 0.8, seed=cfg.seed)
    with open(os.path.join(out, SAMPLE_FILE), "w", encoding="utf-8") as f:
        f.write(sample)
    final = metrics[-1] if metrics else None
    if final:
        log(f"step {final['step']}: train loss {final['train_loss']:.4f}, val loss {final['val_loss']:.4f} "
            f"nats/char ({final['val_bpc']:.4f} bits/char), {final['chars_per_s']:,.0f} chars/s; saved to {out}")
    log(f"--- sample (temperature 0.8) ---\n{sample}")
    return run.model


def _progress(total: Optional[int], initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
