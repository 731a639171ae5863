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

import dataclasses
import hashlib
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from .. import distributed as dist, train_command
from ..data_parallel import share, sum_across
from ..models import LAYER_CLASSES
from ..optim import DEFAULT_LR, Schedule
from ..plotting import Score
from ..rundir import KINDS
from ..train_command import CURVE_FILE, METRICS_FILE, SCHEDULE_RESUMABLE, CommandRun, Report
from .data import Encoded, build_vocabs, load_splits
from .decode import scheduled_inputs, translate_all
from .metrics import score_all, validation_row
from .model import ATTENTIONS, FORMAT, Seq2Seq

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

CURVE_SCORES = (
    Score("val_exact_match", "exact match (%)"),
    Score("val_token_acc", "token accuracy (%)"),
    Score("val_bleu", "BLEU", 1.0, "BLEU: word tokens only"),
)
REPORT = Report(
    throughput="examples_per_s",
    loss_label="loss (nats per target token)",
    curve_scores=CURVE_SCORES,
    final=(
        ("val exact match", "val_exact_match", ".4f"),
        ("token accuracy", "val_token_acc", ".4f"),
        ("BLEU", "val_bleu", ".2f"),
    ),
    best=(("exact match", "val_exact_match"), ("loss", "val_loss")),
    bar=("val_em", "val_exact_match", ".3f"),
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
        self.check_positive("layers", "hidden", "embed", "batch", "eval_every", "lr_decay_every", "val_sample")
        self.check_schedule()
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"--teacher-forcing must lie in [0, 1], got {self.teacher_forcing}")
        self.check_choice("cell", LAYER_CLASSES)
        self.check_choice("attention", ATTENTIONS)
        if self.bidirectional and self.hidden % 2:
            raise ValueError(
                f"--bidirectional splits --hidden between the directions, so it must be even, got {self.hidden}"
            )
        check_decoding_settings(self)
        if not self.data:
            raise ValueError("give --task NAME or --pairs FILE")


def check_decoding_settings(cfg: Any) -> None:
    """ValueError for a bad ``attn_size`` (additive attention's width) or ``max_len`` (--max-output) of a
    configuration with a decoder (train-seq2seq's, train-captions')."""
    if cfg.attn_size is not None and (cfg.attention != "additive" or cfg.attn_size < 1):
        raise ValueError(
            "--attn-size is the inner width of additive attention: a positive integer with --attention additive"
        )
    if cfg.max_len is not None and cfg.max_len < 1:
        raise ValueError(f"--max-output must be a positive integer, got {cfg.max_len}")


#: The settings a resumed run may change (`rnnkit.rundir.resume_settings`); the rest are the run's.
RESUMABLE = SCHEDULE_RESUMABLE + ("teacher_forcing", "max_len", "patience", "val_sample")
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


def _describe_data(data: Any) -> str:
    if not isinstance(data, dict):
        return "unknown"
    if "task" in data:
        return f"task {data['task']}"
    return f"pairs {data.get('pairs', '?')}"


class Seq2SeqRun(CommandRun[TrainConfig]):
    """One seq2seq training run: the data splits and the model (`TrainingRun` holds the optimiser and
    the step). Under mpiexec it trains its rank's ``share`` of each batch."""

    data_parallel = True
    run_kind, resumable, option_names, report = KIND, RESUMABLE, OPTION_NAMES, REPORT
    describe_data = staticmethod(_describe_data)

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
        tgt_in = scheduled_inputs(
            model.decoder,
            lambda: model.start(batch.src, batch.src_len),
            batch.tgt_in,
            cfg.teacher_forcing,
            cfg.seed,
            self.step,
        )
        return model.loss_and_grad(batch._replace(tgt_in=tgt_in))

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
        return validation_row(total, count, evaluate(self.model, val, self.kind, 1, self.max_len))

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
        return validation_row(total, count, score_all(hyps, val.tgt_tokens, bleu=self.kind == "word"))

    def score(self, metrics) -> tuple:
        return (metrics["val_exact_match"], -metrics["val_loss"])

    # -------------------------------------------------------------- checkpoints

    def checkpoint_meta(self) -> Dict[str, Any]:
        return {"tokens": self.kind, "max_len": self.max_len, "rng": self.model.rng_states()}

    def restore_state(self, meta: Mapping[str, Any]) -> None:
        self.model.set_rng_states(meta["rng"], self.share.start)
        if dist.world_size() > 1:
            self.model.use_stream_keyed_dropout(self.share.start)

    def model_from_checkpoint(self, arrays: Dict[str, Any], meta: Dict[str, Any], path: str) -> Seq2Seq:
        return Seq2Seq.from_checkpoint(arrays, meta, path, self.model.decoder.attn)


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
    """Train (or, with ``resume``, continue training from ``out``) a Seq2Seq model; returns the best model.

    `rnnkit.train_command.train` says what ``out`` receives, and how ``resume``, ``overwrite`` and
    ``given`` (the settings the caller asks for; they may change those in `RESUMABLE`) act. Raises
    ValueError (PairsError) for bad data or settings or a directory holding a run, CheckpointError for a
    missing or bad checkpoint on resume.
    """
    return train_command.train(Seq2SeqRun, cfg, out, resume, progress, log, overwrite, given, (attention_backend,))


def _digest(enc: Encoded) -> str:
    """A hash of the encoded pairs of a split (lengths and ids)."""
    h = hashlib.sha256()
    for seqs in (enc.src, enc.tgt):
        h.update(np.array([len(x) for x in seqs], np.int64).tobytes())
        for x in seqs:
            h.update(np.asarray(x, np.int32).tobytes())
    return h.hexdigest()
