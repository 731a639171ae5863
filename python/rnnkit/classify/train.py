"""Training of a `Classifier` (sequence classification or per-step tagging), with exact resume.

Each step takes the next batch of an epoch's order and minimises its mean class-weighted
cross-entropy. The order of epoch e is drawn from (seed, e), so it needs no saved state: a shuffle of
the training examples, cut into windows of ``bucket`` batches, each window sorted by length and cut
into batches, and the batches shuffled (length bucketing, as torchtext's BucketIterator: the recurrent
kernels run every step for the whole batch, so a batch of similar lengths wastes little on padding;
``bucket`` 1 keeps the plain shuffle). The batch is padded to its longest example; gradients are clipped (by norm or value) and an `rnnkit.optim` optimiser
updates the weights at the scheduled learning rate (`rnnkit.training.TrainingRun`). Every
``eval_every`` steps and after the last one, the validation loss, accuracy and macro-F1 are appended to
``metrics.jsonl`` and the latest checkpoint is written; the best (by macro-F1, then accuracy, then
loss) is kept beside it in best.npz, and ``--patience`` stops a run that no longer improves
(`rnnkit.training.fit`). A validation split larger than ``val_sample`` examples is scored on a fixed
sample of that many between evaluations and whole at the end, which decides the best model.
``curve.png`` is drawn at the end.

Class weights (``class_weights``): "none"; "balanced", w_k = n / (K n_k) over the training targets
(scikit-learn's), so every class weighs the same in total; or explicit "label=weight,..." (unnamed
labels weigh 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from .. import train_command
from ..models import LAYER_CLASSES
from ..optim import Schedule
from ..plotting import Score
from ..pooling import POOLS
from ..rundir import KINDS
from ..train_command import CURVE_FILE, METRICS_FILE, SCHEDULE_RESUMABLE, CommandRun, Report
from .data import Encoded, Labels, build_vocab, load_splits
from .metrics import scores
from .model import FORMAT, Classifier

__all__ = ["TrainConfig", "ClassifierRun", "train", "evaluate", "class_weight_vector", "METRICS_FILE", "CURVE_FILE"]

CURVE_SCORES = (Score("val_accuracy", "accuracy (%)"), Score("val_macro_f1", "macro-F1 (%)"))
REPORT = Report(
    throughput="sequences_per_s",
    loss_label="loss (nats per example)",
    curve_scores=CURVE_SCORES,
    final=(("val accuracy", "val_accuracy", ".4f"), ("macro-F1", "val_macro_f1", ".4f")),
    best=(("accuracy", "val_accuracy"), ("macro-F1", "val_macro_f1")),
    bar=("val_acc", "val_accuracy", ".4f"),
    bar_speed="seq/s",
)


@dataclasses.dataclass
class TrainConfig(Schedule):
    """Settings of one run; ``data`` is a data spec (`rnnkit.classify.data.task_spec` / ``pairs_spec``).
    On resume everything but `RESUMABLE` comes from the checkpoint."""

    data: Dict[str, Any] = dataclasses.field(default_factory=dict)
    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    embed: int = 64
    bidirectional: bool = False
    pool: str = "last"
    attn_size: Optional[int] = None
    dropout: float = 0.0
    class_weights: str = "none"
    batch: int = 64
    bucket: int = 32
    eval_every: int = 200
    val_sample: int = 2000  # validation examples scored between evaluations (the whole split if fewer)
    seed: int = 0

    def validate(self) -> None:
        """ValueError with one line naming the first bad setting."""
        self.check_positive(
            "layers", "hidden", "embed", "batch", "bucket", "eval_every", "lr_decay_every", "val_sample"
        )
        self.check_schedule()
        self.check_choice("cell", LAYER_CLASSES)
        self.check_choice("pool", POOLS)
        if self.attn_size is not None and (self.pool != "attention" or self.attn_size < 1):
            raise ValueError("--attn-size is the width of attention pooling: a positive integer with --pool attention")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if not self.data:
            raise ValueError("give --task NAME or --pairs FILE")
        if self.data.get("per_step") and (self.pool != "last" or self.attn_size is not None):
            raise ValueError("--pool and --attn-size are for sequence classification, not --per-step tagging")


#: The settings a resumed run may change (`rnnkit.rundir.resume_settings`); the rest are the run's.
RESUMABLE = SCHEDULE_RESUMABLE + ("patience", "val_sample")
KIND = KINDS[FORMAT]


def class_weight_vector(
    spec: str, labels: Labels, targets: np.ndarray, dtype: Any = np.float32
) -> Optional[np.ndarray]:
    """(K,) class weights of ``spec`` ("none" -> None, "balanced", or "label=w,...") given the training
    targets (class indices); ValueError for a bad spec."""
    if spec == "none":
        return None
    K = len(labels)
    if spec == "balanced":
        counts = np.bincount(targets, minlength=K).astype(np.float64)
        return (len(targets) / (K * np.maximum(counts, 1))).astype(dtype)
    w = np.ones(K, dtype)
    for item in spec.split(","):
        name, eq, value = item.rpartition("=")
        if not eq or name not in labels:
            raise ValueError(
                f"--class-weights: expected none, balanced or label=weight,... with the labels "
                f"{', '.join(labels.names)}; got {item!r}"
            )
        try:
            w[labels.names.index(name)] = float(value)
        except ValueError:
            raise ValueError(f"--class-weights: {value!r} is not a number") from None
    if (w < 0).any() or not np.isfinite(w).all() or not (w > 0).any():
        raise ValueError("--class-weights must be finite, non-negative and not all zero")
    return w


def evaluate(
    model: Classifier, enc: Encoded, batch: int = 256, class_weights: Optional[np.ndarray] = None
) -> Dict[str, Any]:
    """`rnnkit.classify.metrics.scores` of the model on ``enc`` (per step: over tokens), plus "loss"
    (mean cross-entropy in nats, class-weighted if ``class_weights``)."""
    total = weight = 0.0
    true, pred = [], []
    for _, b in enc.batches(batch):
        s, w, t, p = model.evaluate_batch(b, class_weights)
        total, weight = total + s, weight + w
        true.append(t)
        pred.append(p)
    out = scores(np.concatenate(true), np.concatenate(pred), model.labels.names)
    out["loss"] = total / weight
    if model.per_step:
        out["sequences"] = len(enc)
    return out


class ClassifierRun(CommandRun[TrainConfig]):
    """One classifier training run: data splits, class weights and the model (`TrainingRun` holds the
    optimiser and the step)."""

    run_kind, resumable = KIND, RESUMABLE

    def __init__(self, cfg: TrainConfig, backend: Optional[str] = None):
        splits = load_splits(cfg.data)
        self.tokens, per_step = cfg.data["tokens"], bool(cfg.data.get("per_step"))
        vocab, labels = build_vocab(splits.train, self.tokens, per_step)
        self.train_set = Encoded(splits.train, self.tokens, per_step, vocab, labels, "the training split")
        self.val_set = Encoded(splits.val, self.tokens, per_step, vocab, labels, "the validation split")
        self.val_sample = self.val_set
        if len(splits.val) > cfg.val_sample:  # a fixed sample: the first examples of a shuffled split
            order = np.random.default_rng([cfg.seed, 3]).permutation(len(splits.val))[: cfg.val_sample]
            self.val_sample = Encoded(
                [splits.val[i] for i in sorted(order)], self.tokens, per_step, vocab, labels, "the validation split"
            )
            self.val_ratio = len(splits.val) / cfg.val_sample
        self.class_weights = class_weight_vector(cfg.class_weights, labels, self.train_set.labels())
        super().__init__(
            cfg,
            Classifier(
                vocab,
                labels,
                cfg.cell,
                cfg.layers,
                cfg.hidden,
                cfg.embed,
                cfg.bidirectional,
                cfg.pool,
                cfg.attn_size,
                per_step,
                cfg.dropout,
                np.float32,
                cfg.seed,
                backend,
                self.tokens,
            ),
        )
        self.batch = min(cfg.batch, len(self.train_set))
        self.batches_per_epoch = len(self.train_set) // self.batch
        self._order_epoch, self._order = -1, None
        if per_step:
            self.report = dataclasses.replace(REPORT, loss_label="loss (nats per token)")
        else:
            self.report = REPORT

    def _epoch_order(self, epoch: int) -> np.ndarray:
        """(batches_per_epoch, batch) example indices of an epoch (see the module docstring)."""
        rng = np.random.default_rng([self.cfg.seed, 1, epoch])
        order = rng.permutation(len(self.train_set))[: self.batches_per_epoch * self.batch]
        window = self.cfg.bucket * self.batch
        if self.cfg.bucket > 1:
            lengths = self.train_set.lengths
            order = np.concatenate(
                [w[np.argsort(lengths[w], kind="stable")] for w in np.split(order, range(window, len(order), window))]
            )
        batches = order.reshape(self.batches_per_epoch, self.batch)
        return batches[rng.permutation(self.batches_per_epoch)] if self.cfg.bucket > 1 else batches

    def _indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.batches_per_epoch)
        if epoch != self._order_epoch:
            self._order, self._order_epoch = self._epoch_order(epoch), epoch
        return self._order[k]

    def batch_loss(self) -> float:
        return self.model.loss_and_grad(self.train_set.batch(self._indices(self.step)), self.class_weights)

    def evaluate(self, full: bool = False) -> Dict[str, float]:
        s = evaluate(self.model, self.val_set if full else self.val_sample, class_weights=self.class_weights)
        return {"val_loss": s["loss"], "val_accuracy": s["accuracy"], "val_macro_f1": s["macro_f1"]}

    def score(self, metrics: Mapping[str, Any]) -> tuple:
        return (metrics["val_macro_f1"], metrics["val_accuracy"], -metrics["val_loss"])

    # -------------------------------------------------------------- checkpoints

    def checkpoint_meta(self) -> Dict[str, Any]:
        return {"tokens": self.tokens, "dropout_rng": self.model.rnn._dropout_rng.bit_generator.state}

    def restore_state(self, meta: Mapping[str, Any]) -> None:
        self.model.rnn._dropout_rng.bit_generator.state = meta["dropout_rng"]

    def model_from_checkpoint(self, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], path: str) -> Classifier:
        return Classifier.from_checkpoint(arrays, meta, path)


def train(
    cfg: TrainConfig,
    out: str,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    backend: Optional[str] = None,
    overwrite: bool = False,
    given: Optional[Mapping[str, Any]] = None,
) -> Classifier:
    """Train (or, with ``resume``, continue training from ``out``) a Classifier; returns the best model.

    `rnnkit.train_command.train` says what ``out`` receives, and how ``resume``, ``overwrite`` and
    ``given`` (the settings the caller asks for; they may change those in `RESUMABLE`) act. Raises
    ValueError (PairsError) for bad data or settings or a directory holding a run, CheckpointError for a
    missing or bad checkpoint on resume.
    """
    return train_command.train(ClassifierRun, cfg, out, resume, progress, log, overwrite, given, (backend,))
