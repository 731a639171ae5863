"""Training of a `Seq2Seq` model, with validation by decoding and exact resume.

Each step takes the next ``batch`` training examples of an epoch's shuffle (the order of epoch e is a
permutation drawn from (seed, e), so it needs no saved state), pads them, and runs the model with
teacher forcing: the decoder reads [<s>, y_1 .. y_{n-1}] and is scored on [y_1 .. y_n, </s>], the loss
being the mean cross-entropy over the batch's real target tokens. Gradients are clipped (by norm or
value) and an `rnnkit.optim` optimiser updates the weights.

Teacher forcing ratio r < 1 (scheduled sampling, Bengio et al. 2015, applied per batch): each step
flips a coin (from (seed, step)); with probability r the decoder reads the gold inputs as above, else
it reads its own greedy predictions, [<s>, y^_1 .. y^_{n-1}], produced by a decoding pass without
gradients over the same batch (the targets stay the gold ones). The training pass itself stays one
kernel call per layer over the whole sequence.

Every ``eval_every`` steps and after the last one: the teacher-forced loss on the validation split, and
greedy decoding of it for exact match and token accuracy (and BLEU for word tokens), appended to
``metrics.jsonl``; the checkpoint is written then. ``curve.png`` is drawn at the end.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .. import checkpoint
from ..models import CELLS, single_threaded_blas
from ..optim import DEFAULT_LR, Schedule, clip_grad_norm, clip_grad_value, decayed_lr, make_optimizer
from ..plotting import plot_curve
from .data import Encoded, build_vocabs, load_splits
from .decode import greedy_tokens, translate_all
from .metrics import score_all
from .model import ATTENTIONS, CHECKPOINT_FILE, Seq2Seq
from .vocab import BOS

__all__ = ["TrainConfig", "train", "DEFAULT_LR", "METRICS_FILE", "CURVE_FILE", "evaluate", "default_max_len"]

METRICS_FILE, CURVE_FILE = "metrics.jsonl", "curve.png"


@dataclasses.dataclass
class TrainConfig(Schedule):
    """Settings of one run; ``data`` is a data spec (`rnnkit.seq2seq.data.task_spec` / ``pairs_spec``).
    ``steps`` and ``minutes`` bound the run (whichever ends first; one is needed). On resume everything
    but `RESUMABLE` comes from the checkpoint."""

    data: Dict[str, Any] = dataclasses.field(default_factory=dict)
    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    embed: int = 64
    bidirectional: bool = False
    attention: str = "none"
    attn_size: Optional[int] = None
    teacher_forcing: float = 1.0
    batch: int = 64
    eval_every: int = 250
    max_len: Optional[int] = None  # decoding limit; None: default_max_len of the training targets
    seed: int = 0

    def validate(self) -> None:
        """ValueError with one line naming the first bad setting."""
        for name in ("layers", "hidden", "embed", "batch", "eval_every", "lr_decay_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        self.check_schedule()
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"--teacher-forcing must lie in [0, 1], got {self.teacher_forcing}")
        if self.cell not in CELLS:
            raise ValueError(f"--cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"--attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.bidirectional and self.hidden % 2:
            raise ValueError(f"--bidirectional splits --hidden between the directions, so it must be even, "
                             f"got {self.hidden}")
        if self.attn_size is not None and (self.attention != "additive" or self.attn_size < 1):
            raise ValueError("--attn-size is the inner width of additive attention: a positive integer with "
                             "--attention additive")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"--max-len must be a positive integer, got {self.max_len}")
        if not self.data:
            raise ValueError("give --task NAME or --pairs FILE")


RESUMABLE = ("steps", "minutes", "eval_every")


def default_max_len(encoded: Encoded) -> int:
    """Decoding limit: twice the longest training target, plus 10."""
    return 2 * max(len(t) for t in encoded.tgt) + 10


def evaluate(model: Seq2Seq, enc: Encoded, kind: str, beam: int = 1, max_len: int = 50, alpha: float = 0.6,
             batch: int = 256) -> Dict[str, Any]:
    """Decode every source of ``enc`` and score against its references: {"exact_match", "token_acc",
    "examples"} and "bleu" for word tokens."""
    outputs = translate_all(model, enc.src, beam, max_len, alpha, batch)
    hyps = [model.tgt_vocab.decode(o) for o in outputs]
    result: Dict[str, Any] = score_all(hyps, enc.tgt_tokens, bleu=kind == "word")
    result["examples"] = len(enc)
    return result


class _Run:
    """The state of one training run and the steps that change it."""

    def __init__(self, cfg: TrainConfig, attention_backend: Any = None):
        self.cfg = cfg
        splits = load_splits(cfg.data)
        self.kind = cfg.data["tokens"]
        src_vocab, tgt_vocab = build_vocabs(splits.train, self.kind)
        self.train_set = Encoded(splits.train, self.kind, src_vocab, tgt_vocab)
        self.val_set = Encoded(splits.val, self.kind, src_vocab, tgt_vocab)
        self.max_len = cfg.max_len or default_max_len(self.train_set)
        self.model = Seq2Seq(src_vocab, tgt_vocab, cfg.cell, cfg.layers, cfg.hidden, cfg.embed, cfg.bidirectional,
                             cfg.attention, cfg.attn_size, np.float32, cfg.seed, attention_backend)
        kwargs = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}
        self.base_lr = cfg.lr or DEFAULT_LR[cfg.optimizer]
        self.opt = make_optimizer(cfg.optimizer, self.model.params, self.base_lr, **kwargs)
        self.batch = min(cfg.batch, len(self.train_set))
        self.batches_per_epoch = len(self.train_set) // self.batch
        self.step = 0
        self.elapsed = 0.0
        self._order_epoch, self._order = -1, None

    def _indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.batches_per_epoch)
        if epoch != self._order_epoch:
            self._order = np.random.default_rng([self.cfg.seed, 1, epoch]).permutation(len(self.train_set))
            self._order_epoch = epoch
        return self._order[k * self.batch:(k + 1) * self.batch]

    def train_step(self) -> float:
        cfg, model = self.cfg, self.model
        batch = self.train_set.batch(self._indices(self.step))
        coin = np.random.default_rng([cfg.seed, 2, self.step]).random() if cfg.teacher_forcing < 1.0 else 0.0
        if coin >= cfg.teacher_forcing:
            T = batch.tgt_in.shape[0]
            own = greedy_tokens(model.decoder, model.start(batch.src, batch.src_len), T - 1)
            tgt_in = np.concatenate([np.full((1, own.shape[1]), BOS, np.int32), own], axis=0)
            batch = batch._replace(tgt_in=tgt_in)
        model.zero_grad()
        loss = model.loss_and_grad(batch)
        if cfg.clip > 0:
            grads = model.grads.values()
            clip_grad_norm(grads, cfg.clip) if cfg.clip_mode == "norm" else clip_grad_value(grads, cfg.clip)
        self.opt.lr = decayed_lr(self.base_lr, self.step, cfg.lr_decay, cfg.lr_decay_every)
        self.opt.step(model.grads)
        self.step += 1
        return loss

    def validate(self) -> Dict[str, float]:
        total = count = 0.0
        for _, b in self.val_set.batches(256):
            s, n = self.model.loss(b)
            total, count = total + s, count + n
        scores = evaluate(self.model, self.val_set, self.kind, 1, self.max_len)
        out = {"val_loss": total / count, "val_exact_match": scores["exact_match"],
               "val_token_acc": scores["token_acc"]}
        if "bleu" in scores:
            out["val_bleu"] = scores["bleu"]
        return out

    # -------------------------------------------------------------- checkpoints

    def save(self, path: str) -> None:
        opt_state = self.opt.state_dict()
        arrays = dict(self.model.arrays())
        arrays.update({f"optim/{k}": v for k, v in opt_state["arrays"].items()})
        meta = self.model.meta()
        meta.update({"train": dataclasses.asdict(self.cfg), "data": self.cfg.data, "tokens": self.kind,
                     "max_len": self.max_len, "step": self.step, "elapsed_s": self.elapsed,
                     "optim": opt_state["scalars"]})
        checkpoint.save(path, arrays, meta)

    @classmethod
    def resume(cls, path: str, overrides: TrainConfig, attention_backend: Any = None) -> "_Run":
        arrays, meta = checkpoint.load(path)
        if meta.get("format") != "rnnkit-seq2seq":
            raise checkpoint.CheckpointError(f"{path} is not a sequence-to-sequence checkpoint")
        try:
            saved = meta["train"]
            if overrides.data and overrides.data != saved["data"]:
                raise ValueError("the data given differs from the data this checkpoint was trained on")
            cfg = TrainConfig(**{**saved, **{k: getattr(overrides, k) for k in RESUMABLE}})
            run = cls(cfg, attention_backend)
            checkpoint.restore_arrays(run.model.params, arrays, "model/")
            run.opt.load_state_dict({"scalars": meta["optim"], "arrays": {
                k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}})
            run.step, run.elapsed = int(meta["step"]), float(meta["elapsed_s"])
        except (KeyError, TypeError) as e:
            raise checkpoint.CheckpointError(f"{path} is not a resumable training checkpoint ({e})") from None
        return run


def train(cfg: TrainConfig, out: str, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] = print, attention_backend: Any = None) -> Seq2Seq:
    """Train (or, with ``resume``, continue training from ``out``) a Seq2Seq model.

    ``out`` receives metrics.jsonl, checkpoint.npz and curve.png. Raises ValueError (PairsError) for bad
    data or settings, CheckpointError for a missing or bad checkpoint on resume.
    """
    if not resume:
        cfg.validate()
    with single_threaded_blas():
        return _train(cfg, out, resume, progress, log, attention_backend)


def _train(cfg: TrainConfig, out: str, resume: bool, progress: bool, log: Callable[[str], None],
           attention_backend: Any) -> Seq2Seq:
    os.makedirs(out, exist_ok=True)
    ckpt_path = os.path.join(out, CHECKPOINT_FILE)
    metrics_path = os.path.join(out, METRICS_FILE)
    if resume:
        run = _Run.resume(ckpt_path, cfg, attention_backend)
        run.cfg.validate()
        metrics = checkpoint.read_metrics(metrics_path, run.step)
    else:
        run, metrics = _Run(cfg, attention_backend), []
    with open(metrics_path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in metrics)
    cfg = run.cfg
    deadline = time.monotonic() + 60 * cfg.minutes if cfg.minutes else math.inf
    started = time.monotonic() - run.elapsed
    bar = _progress(cfg.steps, run.step, progress)
    losses: List[float] = []
    train_time = 0.0
    last_val: Dict[str, float] = {}
    while cfg.steps is None or run.step < cfg.steps:
        t0 = time.perf_counter()
        loss = run.train_step()
        train_time += time.perf_counter() - t0
        losses.append(loss)
        last = (cfg.steps is not None and run.step >= cfg.steps) or time.monotonic() >= deadline
        if last or run.step % cfg.eval_every == 0:
            last_val = run.validate()
            run.elapsed = time.monotonic() - started
            row = {"step": run.step, "train_loss": float(np.mean(losses)), **last_val,
                   "examples_per_s": len(losses) * run.batch / train_time, "elapsed_s": run.elapsed}
            metrics.append(row)
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            run.save(ckpt_path)
            losses, train_time = [], 0.0
            last = last or time.monotonic() >= deadline
        bar.update(1)
        post = {"loss": f"{loss:.3f}"}
        if last_val:
            post["val_em"] = f"{last_val['val_exact_match']:.3f}"
        bar.set_postfix(**post)
        if last:
            break
    bar.close()
    curve = os.path.join(out, CURVE_FILE)
    extra = [("val_exact_match", "validation exact match"), ("val_token_acc", "validation token accuracy")]
    if not plot_curve(metrics, curve, "loss (nats per target token)", extra):
        log(f"note: matplotlib is not installed, so {curve} was not drawn (pip install matplotlib)")
    final = metrics[-1] if metrics else None
    if final:
        bleu = f", BLEU {final['val_bleu']:.2f}" if "val_bleu" in final else ""
        log(f"step {final['step']} ({final['elapsed_s']:.0f} s): train loss {final['train_loss']:.4f}, val loss "
            f"{final['val_loss']:.4f}, val exact match {final['val_exact_match']:.4f}, token accuracy "
            f"{final['val_token_acc']:.4f}{bleu}; saved to {out}")
    return run.model


def _progress(total: Optional[int], initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
