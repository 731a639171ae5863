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
greedy decoding of it for exact match and token accuracy (and corpus BLEU for word tokens: on
characters, outputs as short as a sum have no 4-grams and score 0), appended to
``metrics.jsonl``; the latest checkpoint is written then, and the best (by exact match, then loss)
is kept beside it (`rnnkit.training.fit`). A validation split larger than ``val_sample`` examples is
scored on its first ``val_sample`` (a fixed sample: the split is in random order) between evaluations
and whole at the end. ``curve.png`` is drawn at the end.

Under ``mpiexec`` (`rnnkit.data_parallel`) every rank draws the same batches and trains on its
contiguous share of each; its gradient is weighted by its share of the batch's target tokens before the
sum, so the step is the one-process step on the whole batch. Validation is split the same way: each rank
scores and decodes its share of the examples; the losses are summed and the decoded outputs gathered,
so the scores are computed from every output on every rank. Dropout masks are then drawn per example
from its position in the batch (`rnnkit.stream_dropout`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from .. import checkpoint, distributed as dist
from ..checkpoint import BEST_FILE
from ..data_parallel import quiet_unless_main, share, sum_across
from ..models import LAYER_CLASSES, single_threaded_blas
from ..optim import DEFAULT_LR, Schedule
from ..plotting import Score, plot_curve
from ..rundir import KINDS, RunDir, resumed_config
from ..training import TrainingRun, best_row, fit
from .data import Encoded, build_vocabs, load_splits
from .decode import greedy_tokens, translate_all
from .metrics import score_all
from .model import ATTENTIONS, CHECKPOINT_FILE, FORMAT, Seq2Seq
from .vocab import BOS

__all__ = [
    "TrainConfig",
    "Seq2SeqRun",
    "train",
    "DEFAULT_LR",
    "METRICS_FILE",
    "CURVE_FILE",
    "evaluate",
    "default_max_len",
]

METRICS_FILE, CURVE_FILE = "metrics.jsonl", "curve.png"
CURVE_SCORES = (
    Score("val_exact_match", "exact match (%)"),
    Score("val_token_acc", "token accuracy (%)"),
    Score("val_bleu", "BLEU", 1.0, "BLEU: word tokens only"),
)


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
    dropout: float = 0.0  # between stacked layers and on the output layer's input
    batch: int = 64
    eval_every: int = 250
    val_sample: int = 1000  # validation examples scored between evaluations (the whole split if fewer)
    max_len: Optional[int] = None  # decoding limit; None: default_max_len of the training targets
    seed: int = 0

    def validate(self) -> None:
        """ValueError with one line naming the first bad setting."""
        for name in ("layers", "hidden", "embed", "batch", "eval_every", "lr_decay_every", "val_sample"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        self.check_schedule()
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"--teacher-forcing must lie in [0, 1], got {self.teacher_forcing}")
        if self.cell not in LAYER_CLASSES:
            raise ValueError(f"--cell must be one of {', '.join(LAYER_CLASSES)}, got {self.cell!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"--attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.bidirectional and self.hidden % 2:
            raise ValueError(
                f"--bidirectional splits --hidden between the directions, so it must be even, got {self.hidden}"
            )
        if self.attn_size is not None and (self.attention != "additive" or self.attn_size < 1):
            raise ValueError(
                "--attn-size is the inner width of additive attention: a positive integer with --attention additive"
            )
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"--max-output must be a positive integer, got {self.max_len}")
        if not self.data:
            raise ValueError("give --task NAME or --pairs FILE")


#: The settings a resumed run may change (`rnnkit.rundir.resume_settings`); the rest are the run's.
RESUMABLE = (
    "steps",
    "minutes",
    "eval_every",
    "lr",
    "lr_decay",
    "lr_decay_every",
    "clip",
    "clip_mode",
    "teacher_forcing",
    "max_len",
    "patience",
    "val_sample",
)
KIND = KINDS[FORMAT]
#: Options spelled otherwise than their field.
OPTION_NAMES = {"max_len": "--max-output"}


def default_max_len(encoded: Encoded) -> int:
    """Decoding limit: twice the longest training target, plus 10."""
    return 2 * max(len(t) for t in encoded.tgt) + 10


def evaluate(
    model: Seq2Seq, enc: Encoded, kind: str, beam: int = 1, max_len: int = 50, alpha: float = 0.6, batch: int = 256
) -> Dict[str, Any]:
    """Decode every source of ``enc`` and score against its references: {"exact_match", "token_acc",
    "examples"} and "bleu" for word tokens."""
    outputs = translate_all(model, enc.src, beam, max_len, alpha, batch)
    hyps = [model.tgt_vocab.decode(o) for o in outputs]
    result: Dict[str, Any] = score_all(hyps, enc.tgt_tokens, bleu=kind == "word")
    result["examples"] = len(enc)
    return result


class Seq2SeqRun(TrainingRun[TrainConfig]):
    """One seq2seq training run: the data splits and the model (`TrainingRun` holds the optimiser and
    the step). Under mpiexec it trains its rank's ``share`` of each batch."""

    data_parallel = True

    def __init__(self, cfg: TrainConfig, attention_backend: Any = None, dtype: Any = np.float32):
        splits = load_splits(cfg.data)
        self.kind = cfg.data["tokens"]
        src_vocab, tgt_vocab = build_vocabs(splits.train, self.kind)
        self.train_set = Encoded(splits.train, self.kind, src_vocab, tgt_vocab)
        self.val_set = Encoded(splits.val, self.kind, src_vocab, tgt_vocab)
        self.val_sample = self.val_set
        if len(splits.val) > cfg.val_sample:
            self.val_sample = Encoded(splits.val[: cfg.val_sample], self.kind, src_vocab, tgt_vocab)
            self.val_ratio = len(splits.val) / cfg.val_sample
        self.max_len = cfg.max_len or default_max_len(self.train_set)
        super().__init__(
            cfg,
            Seq2Seq(
                src_vocab,
                tgt_vocab,
                cfg.cell,
                cfg.layers,
                cfg.hidden,
                cfg.embed,
                cfg.bidirectional,
                cfg.attention,
                cfg.attn_size,
                dtype,
                cfg.seed,
                attention_backend,
                cfg.dropout,
            ),
        )
        self.batch = min(cfg.batch, len(self.train_set))
        self.batches_per_epoch = len(self.train_set) // self.batch
        self._order_epoch, self._order = -1, np.empty(0, np.int64)  # the first call draws epoch 0's order
        self.share = share(self.batch, "--batch")
        self._share_weight = 1.0
        model = self.model
        dist.check_same(
            {
                "settings": dataclasses.asdict(cfg),
                "model": model.config,
                "vocabularies": [model.src_vocab.to_json(), model.tgt_vocab.to_json()],
                "training data": _digest(self.train_set) if dist.world_size() > 1 else None,
            },
            "the run",
        )
        if dist.world_size() > 1:
            model.use_stream_keyed_dropout(self.share.start)

    def _indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.batches_per_epoch)
        if epoch != self._order_epoch:
            self._order = np.random.default_rng([self.cfg.seed, 1, epoch]).permutation(len(self.train_set))
            self._order_epoch = epoch
        return self._order[k * self.batch : (k + 1) * self.batch]

    def batch_loss(self) -> float:
        cfg, model = self.cfg, self.model
        indices = self._indices(self.step)
        if dist.world_size() > 1:
            tokens = np.array([len(self.train_set.tgt[i]) + 1 for i in indices])  # with </s>
            self._share_weight = float(tokens[self.share].sum() / tokens.sum())
            indices = indices[self.share]
        batch = self.train_set.batch(indices)
        coin = np.random.default_rng([cfg.seed, 2, self.step]).random() if cfg.teacher_forcing < 1.0 else 0.0
        if coin >= cfg.teacher_forcing:
            T = batch.tgt_in.shape[0]
            own = greedy_tokens(model.decoder, model.start(batch.src, batch.src_len), T - 1)
            tgt_in = np.concatenate([np.full((1, own.shape[1]), BOS, np.int32), own], axis=0)
            batch = batch._replace(tgt_in=tgt_in)
        return model.loss_and_grad(batch)

    def share_weight(self) -> float:
        return self._share_weight

    def evaluate(self, full: bool = False) -> Dict[str, float]:
        val = self.val_set if full else self.val_sample
        if dist.world_size() > 1:
            return self._evaluate_shared(val)
        total = count = 0.0
        for _, b in val.batches(256):
            s, n = self.model.loss(b)
            total, count = total + s, count + n
        scores = evaluate(self.model, val, self.kind, 1, self.max_len)
        return self._metrics(total, count, scores)

    def _evaluate_shared(self, val: Encoded) -> Dict[str, float]:
        """`evaluate` with the examples split across the ranks: losses summed, outputs gathered."""
        mine = share(len(val))
        total = count = 0.0
        for start in range(mine.start, mine.stop, 256):
            s, n = self.model.loss(val.batch(range(start, min(start + 256, mine.stop))))
            total, count = total + s, count + n
        total, count = sum_across([total, count])
        outputs = translate_all(self.model, val.src[mine], 1, self.max_len) if mine.stop > mine.start else []
        hyps = [self.model.tgt_vocab.decode(o) for part in dist.allgather(outputs) for o in part]
        scores: Dict[str, Any] = score_all(hyps, val.tgt_tokens, bleu=self.kind == "word")
        return self._metrics(total, count, scores)

    @staticmethod
    def _metrics(total: float, count: float, scores: Mapping[str, Any]) -> Dict[str, float]:
        out = {
            "val_loss": total / count,
            "val_exact_match": scores["exact_match"],
            "val_token_acc": scores["token_acc"],
        }
        if "bleu" in scores:
            out["val_bleu"] = scores["bleu"]
        return out

    def score(self, metrics) -> tuple:
        return (metrics["val_exact_match"], -metrics["val_loss"])

    # -------------------------------------------------------------- checkpoints

    def save(self, path: str) -> None:
        arrays, meta = self.optimizer_checkpoint()
        arrays.update(self.model.arrays())
        meta.update(self.model.meta())
        meta.update(
            {
                "train": dataclasses.asdict(self.cfg),
                "data": self.cfg.data,
                "tokens": self.kind,
                "max_len": self.max_len,
                "rng": self.model.rng_states(),
            }
        )
        self.write_checkpoint(path, arrays, meta)

    @classmethod
    def resume(
        cls,
        arrays: Dict[str, np.ndarray],
        meta: Dict[str, Any],
        cfg: TrainConfig,
        attention_backend: Any = None,
        path: str = CHECKPOINT_FILE,
    ) -> "Seq2SeqRun":
        """The run saved as (arrays, meta) (from `rnnkit.checkpoint.load`), continued with ``cfg`` (the
        saved settings with the changes `rnnkit.rundir.resume_settings` allows)."""
        try:
            run = cls(cfg, attention_backend)
            checkpoint.restore_arrays(run.model.params, arrays, "model/")
            run.restore_optimizer(arrays, meta)
            run.model.set_rng_states(meta["rng"], run.share.start)
            if dist.world_size() > 1:
                run.model.use_stream_keyed_dropout(run.share.start)
        except (KeyError, TypeError, checkpoint.CheckpointError) as e:
            raise checkpoint.CheckpointError(f"{path} is not a resumable training checkpoint ({e})") from None
        return run


def train(
    cfg: TrainConfig,
    out: str,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    attention_backend: Any = None,
    overwrite: bool = False,
    given: Optional[Mapping[str, Any]] = None,
) -> Seq2Seq:
    """Train (or, with ``resume``, continue training from ``out``) a Seq2Seq model.

    ``out`` receives metrics.jsonl, checkpoint.npz (the latest), best.npz (the best) and curve.png;
    returns the best model. A directory that already holds a run
    is written into only with ``resume`` or ``overwrite`` (`rnnkit.rundir`). On resume the saved
    settings are kept; ``given`` (field -> value, the settings the caller asks for; default: ``cfg``'s
    steps, minutes and eval_every, and its data if any) may change those in `RESUMABLE` and must agree
    with the others. Raises ValueError (PairsError) for bad data or settings or a directory holding a
    run, CheckpointError for a missing or bad checkpoint on resume.
    """
    dist.init()
    main, log = dist.is_main(), quiet_unless_main(log)
    run_dir = RunDir(out, KIND)
    if resume:
        # --out is on rank 0's disk: it reads the checkpoint and sends it to the others
        cfg, arrays, meta = dist.broadcast_object(
            resumed_config(run_dir, cfg, given, RESUMABLE, log, OPTION_NAMES, _describe_data) if main else None
        )
    cfg.validate()
    if not resume and main:
        run_dir.check_new(overwrite)
    with single_threaded_blas():
        if resume:
            run = Seq2SeqRun.resume(arrays, meta, cfg, attention_backend, run_dir.checkpoint_path)
        else:
            run = Seq2SeqRun(cfg, attention_backend)
        with run_dir.writing(overwrite and not resume) if main else contextlib.nullcontext():
            return _train(run, out, resume, progress, log)


def _digest(enc: Encoded) -> str:
    """A hash of the encoded pairs of a split (lengths and ids)."""
    h = hashlib.sha256()
    for seqs in (enc.src, enc.tgt):
        h.update(np.array([len(x) for x in seqs], np.int64).tobytes())
        for x in seqs:
            h.update(np.asarray(x, np.int32).tobytes())
    return h.hexdigest()


def _describe_data(data: Any) -> str:
    if not isinstance(data, dict):
        return "unknown"
    if "task" in data:
        return f"task {data['task']}"
    return f"pairs {data.get('pairs', '?')}"


def _train(run: Seq2SeqRun, out: str, resume: bool, progress: bool, log: Callable[[str], None]) -> Seq2Seq:
    ckpt_path = os.path.join(out, CHECKPOINT_FILE)
    metrics_path = os.path.join(out, METRICS_FILE)
    metrics = dist.broadcast_object(
        checkpoint.read_metrics(metrics_path, run.step) if resume and dist.is_main() else []
    )

    def postfix(loss: float, row: Dict[str, Any], speed: float) -> Dict[str, str]:
        shown = {"loss": f"{loss:.3f}"}
        if row:
            shown["val_em"] = f"{row['val_exact_match']:.3f}"
        return shown

    metrics = fit(run, metrics, metrics_path, ckpt_path, progress, ("examples_per_s", run.batch), postfix)
    if dist.world_size() > 1:  # rank 0 writes the files; every rank returns the best model
        best = dist.broadcast_object(checkpoint.load(checkpoint.run_checkpoint(out)) if dist.is_main() else None)
        if not dist.is_main():
            arrays, meta = best
            return Seq2Seq.from_checkpoint(arrays, meta, attention_backend=run.model.decoder.attn)
    curve = os.path.join(out, CURVE_FILE)
    if not plot_curve(metrics, curve, "loss (nats per target token)", CURVE_SCORES):
        log(f"note: matplotlib is not installed, so {curve} was not drawn (pip install matplotlib)")
    final = metrics[-1] if metrics else None
    if final:
        bleu = f", BLEU {final['val_bleu']:.2f}" if "val_bleu" in final else ""
        log(
            f"step {final['step']} ({final['elapsed_s']:.0f} s): train loss {final['train_loss']:.4f}, val loss "
            f"{final['val_loss']:.4f}, val exact match {final['val_exact_match']:.4f}, token accuracy "
            f"{final['val_token_acc']:.4f}{bleu} (validation {final['val_part']})"
        )
    best = best_row(metrics)
    if best:
        pre = "full_" if "full_val_exact_match" in best else ""
        part = "whole validation split" if pre or best["val_part"] == "full" else "validation sample"
        log(
            f"best: step {best['step']}, exact match {best[pre + 'val_exact_match']:.4f}, loss "
            f"{best[pre + 'val_loss']:.4f} on the {part}; saved to {out}/{BEST_FILE} (latest: {out}/{CHECKPOINT_FILE})"
        )
    return Seq2Seq.load(out, attention_backend=run.model.decoder.attn)[0]
