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
import os
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

from .. import checkpoint
from ..checkpoint import BEST_FILE
from ..models import LAYER_CLASSES, single_threaded_blas
from ..optim import Schedule
from ..plotting import Score, plot_curve
from ..rundir import KINDS, RunDir, resumed_config
from ..seq2seq.decode import Hypothesis, decode, greedy_tokens
from ..seq2seq.metrics import corpus_bleu_multi, exact_match, token_accuracy
from ..seq2seq.model import ATTENTIONS
from ..seq2seq.vocab import BOS
from ..training import TrainingRun, best_row, fit
from .data import CaptionData, EvalSet, load_data
from .model import CHECKPOINT_FILE, ENCODERS, FORMAT, INITS, Captioner

__all__ = ["TrainConfig", "CaptionRun", "train", "evaluate", "caption_all", "METRICS_FILE", "CURVE_FILE"]

METRICS_FILE, CURVE_FILE = "metrics.jsonl", "curve.png"


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
        for name in ("layers", "hidden", "embed", "batch", "eval_every", "lr_decay_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        self.check_schedule()
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"--teacher-forcing must lie in [0, 1], got {self.teacher_forcing}")
        if self.cell not in LAYER_CLASSES:
            raise ValueError(f"--cell must be one of {', '.join(LAYER_CLASSES)}, got {self.cell!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"--encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.init not in INITS:
            raise ValueError(f"--init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"--attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.feature_size is not None and self.feature_size < 1:
            raise ValueError(f"--feature-size must be a positive integer, got {self.feature_size}")
        if self.attention == "dot" and self.feature_size not in (None, self.hidden):
            raise ValueError(
                f"--attention dot needs --feature-size equal to --hidden ({self.hidden}), got {self.feature_size}"
            )
        if self.attn_size is not None and (self.attention != "additive" or self.attn_size < 1):
            raise ValueError(
                "--attn-size is the inner width of additive attention: a positive integer with --attention additive"
            )
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"--max-output must be a positive integer, got {self.max_len}")
        if not self.data:
            raise ValueError("give --task shapes or --features FILE --captions FILE")


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
)
KIND = KINDS[FORMAT]
#: Options spelled otherwise than their field.
OPTION_NAMES = {"max_len": "--max-output"}
CURVE_SCORES = (
    Score("val_exact_match", "exact match (%)"),
    Score("val_token_acc", "token accuracy (%)"),
    Score("val_bleu", "BLEU-4", 1.0),
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


class CaptionRun(TrainingRun):
    """One captioning run: the data and the model (`TrainingRun` holds the optimiser and the step)."""

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
        coin = np.random.default_rng([cfg.seed, 2, self.step]).random() if cfg.teacher_forcing < 1.0 else 0.0
        if coin >= cfg.teacher_forcing:
            own = greedy_tokens(model.decoder, model.start(regions), tgt_in.shape[0] - 1)
            tgt_in = np.concatenate([np.full((1, own.shape[1]), BOS, np.int32), own], axis=0)
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
        scores = evaluate(self.model, val, 1, self.max_len)
        return {
            "val_loss": total / count,
            "val_exact_match": scores["exact_match"],
            "val_token_acc": scores["token_acc"],
            "val_bleu": scores["bleu"],
        }

    def score(self, metrics: Mapping[str, Any]) -> tuple:
        """What the best checkpoint maximises: exact match, then lower loss."""
        return (metrics["val_exact_match"], -metrics["val_loss"])

    # -------------------------------------------------------------- checkpoints

    def save(self, path: str) -> None:
        arrays, meta = self.optimizer_checkpoint()
        arrays.update(self.model.arrays())
        meta.update(self.model.meta())
        meta.update({"train": dataclasses.asdict(self.cfg), "data": self.cfg.data, "max_len": self.max_len})
        checkpoint.save(path, arrays, meta)

    @classmethod
    def resume(
        cls,
        arrays: Dict[str, np.ndarray],
        meta: Dict[str, Any],
        cfg: TrainConfig,
        attention_backend: Any = None,
        path: str = CHECKPOINT_FILE,
    ) -> "CaptionRun":
        """The run saved as (arrays, meta) (from `rnnkit.checkpoint.load`), continued with ``cfg`` (the
        saved settings with the changes `rnnkit.rundir.resume_settings` allows)."""
        try:
            run = cls(cfg, attention_backend)
            checkpoint.restore_arrays(run.model.params, arrays, "model/")
            run.restore_optimizer(arrays, meta)
        except (KeyError, TypeError) as e:
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
) -> Captioner:
    """Train (or, with ``resume``, continue training from ``out``) a captioning model.

    ``out`` receives metrics.jsonl, checkpoint.npz and curve.png. A directory that already holds a run
    is written into only with ``resume`` or ``overwrite`` (`rnnkit.rundir`). On resume the saved
    settings are kept; ``given`` (field -> value, the settings the caller asks for; default: ``cfg``'s
    steps, minutes and eval_every, and its data if any) may change those in `RESUMABLE` and must agree
    with the others. Raises ValueError (CaptionsError) for bad data or settings or a directory holding a
    run, CheckpointError for a missing or bad checkpoint on resume.
    """
    run_dir = RunDir(out, KIND)
    if resume:
        cfg, arrays, meta = resumed_config(run_dir, cfg, given, RESUMABLE, log, OPTION_NAMES, _describe_data)
    cfg.validate()
    if not resume:
        run_dir.check_new(overwrite)
    with single_threaded_blas():
        if resume:
            run = CaptionRun.resume(arrays, meta, cfg, attention_backend, run_dir.checkpoint_path)
        else:
            run = CaptionRun(cfg, attention_backend)
        with run_dir.writing(overwrite and not resume):
            return _train(run, out, resume, progress, log)


def _describe_data(data: Any) -> str:
    if not isinstance(data, dict):
        return "unknown"
    if "task" in data:
        return f"task {data['task']}"
    return f"features {data.get('features', '?')} with captions {data.get('captions', '?')}"


def _train(run: CaptionRun, out: str, resume: bool, progress: bool, log: Callable[[str], None]) -> Captioner:
    ckpt_path = os.path.join(out, CHECKPOINT_FILE)
    metrics_path = os.path.join(out, METRICS_FILE)
    metrics = checkpoint.read_metrics(metrics_path, run.step) if resume else []

    def postfix(loss: float, row: Dict[str, Any], speed: float) -> Dict[str, str]:
        shown = {"loss": f"{loss:.3f}"}
        if row:
            shown["val_em"] = f"{row['val_exact_match']:.3f}"
        return shown

    metrics = fit(run, metrics, metrics_path, ckpt_path, progress, ("images_per_s", run.batch), postfix)
    curve = os.path.join(out, CURVE_FILE)
    if not plot_curve(metrics, curve, "loss (nats per caption word)", CURVE_SCORES):
        log(f"note: matplotlib is not installed, so {curve} was not drawn (pip install matplotlib)")
    final = metrics[-1] if metrics else None
    if final:
        log(
            f"step {final['step']} ({final['elapsed_s']:.0f} s): train loss {final['train_loss']:.4f}, val loss "
            f"{final['val_loss']:.4f}, val exact match {final['val_exact_match']:.4f}, token accuracy "
            f"{final['val_token_acc']:.4f}, BLEU-4 {final['val_bleu']:.2f}"
        )
    best = best_row(metrics)
    if best:
        log(
            f"best: step {best['step']}, exact match {best['val_exact_match']:.4f}, loss {best['val_loss']:.4f}; "
            f"saved to {out}/{BEST_FILE} (latest: {out}/{CHECKPOINT_FILE})"
        )
    return Captioner.load(out, attention_backend=run.model.decoder.attn)[0]
