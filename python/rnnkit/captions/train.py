"""Training of a `Captioner`, with validation by decoding and exact resume.

Each step takes the next batch of (image, caption) examples (`CaptionData.train_batch`: fresh scenes
for the shapes task, an epoch's shuffle of a captions file), runs the decoder with teacher forcing
(inputs [<s>, w_1 .. w_{n}], targets [w_1 .. w_n, </s>]), and the mean cross-entropy over the batch's
words is minimised by an `rnnkit.optim` optimiser with clipping, as `rnnkit.seq2seq.train` does.
Teacher forcing ratio r < 1 is scheduled sampling per batch, as there.

Every ``eval_every`` steps and after the last one: the teacher-forced loss of the canonical captions of
the validation images, and greedy decoding of them scored by `evaluate` (exact match, token accuracy,
BLEU-4), appended to ``metrics.jsonl``; the checkpoint is written then; ``curve.png`` at the end.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

from .. import train_command
from ..models import LAYER_CLASSES
from ..optim import Schedule
from ..plotting import Score
from ..rundir import KINDS
from ..seq2seq.decode import Hypothesis, decode, scheduled_inputs
from ..seq2seq.metrics import corpus_bleu_multi, exact_match, token_accuracy, validation_row
from ..seq2seq.model import ATTENTIONS
from ..seq2seq.train import check_decoding_settings
from ..train_command import CURVE_FILE, METRICS_FILE, SCHEDULE_RESUMABLE, CommandRun, Report
from .data import CaptionData, EvalSet, load_data
from .model import ENCODERS, FORMAT, INITS, Captioner

__all__ = ["TrainConfig", "CaptionRun", "train", "evaluate", "caption_all", "METRICS_FILE", "CURVE_FILE"]


@dataclasses.dataclass
class TrainConfig(Schedule):
    """Settings of one run; ``data`` is a data spec (`rnnkit.captions.data.shapes_spec` / ``files_spec``).
    ``steps`` and ``minutes`` bound the run (whichever ends first; one is needed). On resume everything
    but `RESUMABLE` comes from the checkpoint."""

    data: Dict[str, Any] = dataclasses.field(default_factory=dict)
    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    embed: int = 64
    feature_size: Optional[int] = None  # None: hidden
    encoder: str = "mlp"
    init: str = "mlp"
    attention: str = "additive"
    attn_size: Optional[int] = None
    teacher_forcing: float = 1.0
    batch: int = 64
    eval_every: int = 250
    max_len: Optional[int] = None  # decoding limit; None: twice the longest validation caption + 10
    seed: int = 0

    def validate(self) -> None:
        """ValueError with one line naming the first bad setting."""
        self.check_positive("layers", "hidden", "embed", "batch", "eval_every", "lr_decay_every")
        self.check_schedule()
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"--teacher-forcing must lie in [0, 1], got {self.teacher_forcing}")
        self.check_choice("cell", LAYER_CLASSES)
        self.check_choice("encoder", ENCODERS)
        self.check_choice("init", INITS)
        self.check_choice("attention", ATTENTIONS)
        if self.feature_size is not None and self.feature_size < 1:
            raise ValueError(f"--feature-size must be a positive integer, got {self.feature_size}")
        if self.attention == "dot" and self.feature_size not in (None, self.hidden):
            raise ValueError(
                f"--attention dot needs --feature-size equal to --hidden ({self.hidden}), got {self.feature_size}"
            )
        check_decoding_settings(self)
        if not self.data:
            raise ValueError("give --task shapes or --features FILE --captions FILE")


#: The settings a resumed run may change (`rnnkit.rundir.resume_settings`); the rest are the run's.
RESUMABLE = SCHEDULE_RESUMABLE + ("teacher_forcing", "max_len", "patience")
KIND = KINDS[FORMAT]
#: Options spelled otherwise than their field.
OPTION_NAMES = {"max_len": "--max-output"}
CURVE_SCORES = (
    Score("val_exact_match", "exact match (%)"),
    Score("val_token_acc", "token accuracy (%)"),
    Score("val_bleu", "BLEU-4", 1.0),
)
REPORT = Report(
    throughput="images_per_s",
    loss_label="loss (nats per caption word)",
    curve_scores=CURVE_SCORES,
    final=(
        ("val exact match", "val_exact_match", ".4f"),
        ("token accuracy", "val_token_acc", ".4f"),
        ("BLEU-4", "val_bleu", ".2f"),
    ),
    best=(("exact match", "val_exact_match"), ("loss", "val_loss")),
    bar=("val_em", "val_exact_match", ".3f"),
    show_part=False,  # the split is scored whole at every evaluation
)


def caption_all(
    model: Captioner,
    regions: np.ndarray,
    beam: int = 1,
    max_len: int = 50,
    alpha: float = 0.6,
    batch: int = 256,
    return_attention: bool = False,
) -> List[Hypothesis]:
    """The best hypothesis for each image of ``regions`` (N, P, D), ``batch`` images at a time."""
    out: List[Hypothesis] = []
    for start in range(0, len(regions), batch):
        state = model.start(regions[start : start + batch])
        out.extend(decode(model.decoder, state, beam, max_len, alpha, return_attention))
    return out


def evaluate(
    model: Captioner, split: EvalSet, beam: int = 1, max_len: int = 50, alpha: float = 0.6, batch: int = 256
) -> Dict[str, Any]:
    """Caption every image of ``split``: {"exact_match" (against the canonical caption), "token_acc"
    (the same), "bleu" (BLEU-4 against all references, 0..100), "examples"}."""
    hyps = [model.vocab.decode(h.tokens) for h in caption_all(model, split.regions, beam, max_len, alpha, batch)]
    canonical = [refs[0] for refs in split.references]
    return {
        "exact_match": exact_match(hyps, canonical),
        "token_acc": token_accuracy(hyps, canonical),
        "bleu": corpus_bleu_multi(hyps, split.references),
        "examples": len(split),
    }


def _describe_data(data: Any) -> str:
    if not isinstance(data, dict):
        return "unknown"
    if "task" in data:
        return f"task {data['task']}"
    return f"features {data.get('features', '?')} with captions {data.get('captions', '?')}"


class CaptionRun(CommandRun[TrainConfig]):
    """One captioning run: the data and the model (`TrainingRun` holds the optimiser and the step)."""

    run_kind, resumable, option_names, report = KIND, RESUMABLE, OPTION_NAMES, REPORT
    describe_data = staticmethod(_describe_data)

    def __init__(self, cfg: TrainConfig, attention_backend: Any = None, data: Optional[CaptionData] = None):
        self.data = data if data is not None else load_data(cfg.data)
        self.max_len = cfg.max_len or 2 * max(len(r) for refs in self.data.val.references for r in refs) + 10
        super().__init__(
            cfg,
            Captioner(
                self.data.D,
                self.data.P,
                self.data.vocab,
                cfg.cell,
                cfg.layers,
                cfg.hidden,
                cfg.embed,
                cfg.feature_size,
                cfg.encoder,
                cfg.init,
                cfg.attention,
                cfg.attn_size,
                np.float32,
                cfg.seed,
                attention_backend,
            ),
        )
        self.batch = cfg.batch

    def batch_loss(self) -> float:
        cfg, model = self.cfg, self.model
        regions, caps = self.data.train_batch(cfg.seed, self.step, self.batch)
        tgt_in, tgt_out, w = model.targets(caps)
        tgt_in = scheduled_inputs(
            model.decoder, lambda: model.start(regions), tgt_in, cfg.teacher_forcing, cfg.seed, self.step
        )
        return model.loss_and_grad_ids(regions, tgt_in, tgt_out, w)

    def evaluate(self, full: bool = False) -> Dict[str, float]:
        """Validation metrics; the split is scored whole every time (``full`` changes nothing: it is the
        held-out scenes or 5% of a file's images, small enough)."""
        val = self.data.val
        total = count = 0.0
        for start in range(0, len(val), 256):
            s, n = self.model.loss(
                val.regions[start : start + 256], [r[0] for r in val.references[start : start + 256]]
            )
            total, count = total + s, count + n
        return validation_row(total, count, evaluate(self.model, val, 1, self.max_len))

    def score(self, metrics: Mapping[str, Any]) -> tuple:
        """What the best checkpoint maximises: exact match, then lower loss."""
        return (metrics["val_exact_match"], -metrics["val_loss"])

    # -------------------------------------------------------------- checkpoints

    def checkpoint_meta(self) -> Dict[str, Any]:
        return {"max_len": self.max_len}

    def model_from_checkpoint(self, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], path: str) -> Captioner:
        return Captioner.from_checkpoint(arrays, meta, path, self.model.decoder.attn)


def train(
    cfg: TrainConfig,
    out: str,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    attention_backend: Any = None,
    overwrite: bool = False,
    given: Optional[Mapping[str, Any]] = None,
) -> Captioner:
    """Train (or, with ``resume``, continue training from ``out``) a captioning model; returns the best model.

    `rnnkit.train_command.train` says what ``out`` receives, and how ``resume``, ``overwrite`` and
    ``given`` (the settings the caller asks for; they may change those in `RESUMABLE`) act. Raises
    ValueError (CaptionsError) for bad data or settings or a directory holding a run, CheckpointError for a
    missing or bad checkpoint on resume.
    """
    return train_command.train(CaptionRun, cfg, out, resume, progress, log, overwrite, given, (attention_backend,))
