"""Optimisers, gradient clipping and learning-rate decay over dicts of named arrays.

An optimiser holds a dict name -> parameter array (the model's own arrays, updated in place) and its
``step(grads)`` takes a dict with the same keys, so one optimiser serves a single layer
(``layer.named_parameters()`` / ``layer.grads``) or a whole model. Update rules follow PyTorch's
(``torch.optim``) except Adagrad, which follows min-char-rnn (see its docstring).

Every optimiser takes ``weight_decay``: decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight
Decay Regularization", as torch.optim.AdamW does it): before the update each decayed parameter is
multiplied by (1 - lr * weight_decay), apart from the gradient and the optimiser's buffers. `AdamW` is
`Adam` with torch's default decay of 0.01.

``state_dict()`` returns {"scalars": JSON-able values, "arrays": name -> array} and
``load_state_dict`` restores it, so a checkpoint can store optimisers without pickling.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Collection, Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

from . import _C

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "OPTIMIZERS",
    "DEFAULT_LR",
    "SCHEDULES",
    "Schedule",
    "make_optimizer",
    "clip_grad_norm",
    "clip_grad_value",
    "decayed_lr",
]


def decays(name: str, p: np.ndarray) -> bool:
    """Whether weight decay applies to parameter ``name``: weight matrices and embedding tables (two or
    more dimensions), not biases, as is usual for recurrent and transformer models."""
    return p.ndim >= 2


class Optimizer:
    """Base class: ``params`` name -> array, ``lr``, per-parameter buffers named in ``_buffer_names``,
    ``weight_decay`` (decoupled, applied to the parameters `decays` selects).

    Each parameter is updated by one fused native pass (``rnnkit._C.apply_update``) over it, its
    gradient and its buffers; the subclasses' docstrings give the rules."""

    _buffer_names: tuple = ()
    _rule: int = -1  # rnnkit::UpdateRule

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float = 0.0):
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive number, got {lr!r}")
        if not (isinstance(weight_decay, (int, float)) and 0 <= weight_decay and math.isfinite(weight_decay)):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
        for name, p in params.items():
            if not (
                isinstance(p, np.ndarray)
                and p.dtype in (np.float32, np.float64)
                and p.flags.c_contiguous
                and p.flags.writeable
            ):
                raise TypeError(f"parameter {name!r} must be a writeable C-contiguous float32 or float64 array")
        self.params = dict(params)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.steps = 0
        self.buffers: Dict[str, Dict[str, np.ndarray]] = {
            b: {k: np.zeros_like(p) for k, p in self.params.items()} for b in self._buffer_names
        }

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place from its gradient in ``grads``. Every gradient is checked
        before any parameter changes: ValueError for a missing one or a wrong shape leaves the
        parameters and the step count as they were."""
        checked = {}
        for name, p in self.params.items():
            if name not in grads:
                raise ValueError(f"no gradient for parameter {name!r}")
            g = np.ascontiguousarray(grads[name], dtype=p.dtype)
            if g.shape != p.shape:
                raise ValueError(f"gradient {name!r} has shape {g.shape}, its parameter {p.shape}")
            checked[name] = g
        self.steps += 1
        a, b, eps = self._coefficients()
        for name, p in self.params.items():
            g = checked[name]
            if self.weight_decay and decays(name, p):
                p *= p.dtype.type(1.0 - self.lr * self.weight_decay)
            s1, *s2 = (self.buffers[buf][name] for buf in self._buffer_names)
            _C.apply_update(self._rule, p, g, s1, s2[0] if s2 else None, self.lr, a, b, eps, self.steps)

    def _coefficients(self) -> Tuple[float, float, float]:
        """(a, b, eps) of the native rule (see csrc/rnnkit/ops/optim.h)."""
        raise NotImplementedError

    def _hyper(self) -> Dict[str, Any]:
        return {}

    def state_dict(self) -> Dict[str, Any]:
        arrays = {f"{b}/{k}": v.copy() for b, d in self.buffers.items() for k, v in d.items()}
        return {
            "scalars": {
                "type": type(self).__name__,
                "lr": self.lr,
                "steps": self.steps,
                "weight_decay": self.weight_decay,
                **self._hyper(),
            },
            "arrays": arrays,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        scalars, arrays = state["scalars"], state["arrays"]
        if scalars.get("type") != type(self).__name__:
            raise ValueError(f"optimiser state is for {scalars.get('type')}, not {type(self).__name__}")
        expected = {f"{b}/{k}" for b, d in self.buffers.items() for k in d}
        if set(arrays) != expected:
            raise KeyError(f"optimiser state has buffers {sorted(arrays)}, expected {sorted(expected)}")
        for key, v in arrays.items():
            b, k = key.split("/", 1)
            np.copyto(self.buffers[b][k], v)
        self.lr, self.steps = float(scalars["lr"]), int(scalars["steps"])
        self.weight_decay = float(scalars.get("weight_decay", 0.0))


class SGD(Optimizer):
    """p -= lr * v with v = momentum * v + g (v = g without momentum), as torch.optim.SGD."""

    _buffer_names = ("velocity",)

    def __init__(
        self, params: Mapping[str, np.ndarray], lr: float = 0.1, momentum: float = 0.0, weight_decay: float = 0.0
    ):
        super().__init__(params, lr, weight_decay)
        self.momentum = float(momentum)

    _rule = 0

    def _coefficients(self):
        return self.momentum, 0.0, 0.0

    def _hyper(self):
        return {"momentum": self.momentum}


class Adagrad(Optimizer):
    """min-char-rnn's Adagrad: m += g*g; p -= lr * g / sqrt(m + eps)."""

    _buffer_names = ("sum_sq",)

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 0.1, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)
        self.eps = float(eps)

    _rule = 1

    def _coefficients(self):
        return 0.0, 0.0, self.eps

    def _hyper(self):
        return {"eps": self.eps}


class RMSprop(Optimizer):
    """char-rnn's RMSprop (its default alpha 0.95): v = alpha*v + (1-alpha)*g*g; p -= lr*g/(sqrt(v)+eps),
    as torch.optim.RMSprop."""

    _buffer_names = ("square_avg",)

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 2e-3,
        alpha: float = 0.95,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, weight_decay)
        self.alpha, self.eps = float(alpha), float(eps)

    _rule = 2

    def _coefficients(self):
        return self.alpha, 0.0, self.eps

    def _hyper(self):
        return {"alpha": self.alpha, "eps": self.eps}


class Adam(Optimizer):
    """torch.optim.Adam (as torch-rnn uses): m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
    p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)."""

    _buffer_names = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 2e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)

    _rule = 3

    def _coefficients(self):
        return self.beta1, self.beta2, self.eps

    def _hyper(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """torch.optim.AdamW: `Adam` after p *= 1 - lr * weight_decay (decoupled decay, default 0.01)."""

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 2e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        super().__init__(params, lr, betas, eps, weight_decay)


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}

#: Learning rates the training commands use when none is given (char-rnn / torch-rnn / min-char-rnn's).
DEFAULT_LR = {"adamw": 2e-3, "adam": 2e-3, "rmsprop": 2e-3, "adagrad": 0.1, "sgd": 0.05}


#: Learning-rate schedules of the training commands (see `rnnkit.schedules`).
SCHEDULES = ("cosine", "step", "plateau", "constant")


@dataclasses.dataclass
class Schedule:
    """How long and with what optimiser a model trains: the settings (and ``--`` options) the training
    commands share; their configurations extend it. The learning-rate schedule and early stopping are
    `rnnkit.schedules`'s."""

    steps: Optional[int] = None
    minutes: Optional[float] = None
    optimizer: str = "adam"
    lr: Optional[float] = None  # None: DEFAULT_LR[optimizer]
    weight_decay: Optional[float] = None  # decoupled; None: the optimiser's default (adamw 0.01, others 0)
    schedule: str = "cosine"
    warmup: int = 100  # steps of linear warm-up (at most a tenth of --steps)
    lr_floor: float = 0.05  # the schedules' lowest learning rate, as a fraction of --lr
    lr_decay: float = 1.0  # "step": the factor every lr_decay_every steps
    lr_decay_every: int = 1000
    plateau_factor: float = 0.5  # "plateau": the factor after plateau_patience evaluations without gain
    plateau_patience: int = 2
    patience: Optional[int] = None  # early stopping: evaluations without improvement; None: never
    momentum: float = 0.9  # SGD only
    clip: float = 5.0  # 0 disables clipping
    clip_mode: str = "norm"

    def check_positive(self, *names: str) -> None:
        """ValueError naming the first of the settings ``names`` that is not a positive integer."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")

    def check_choice(self, name: str, choices: Collection[str]) -> None:
        """ValueError unless the setting ``name`` is one of ``choices``."""
        if getattr(self, name) not in choices:
            raise ValueError(
                f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, got {getattr(self, name)!r}"
            )

    def check_schedule(self) -> None:
        """ValueError naming the first bad setting, by the ``--`` option of the training commands."""
        if self.steps is None and self.minutes is None:
            raise ValueError("give --steps or --minutes")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"--steps must be a positive integer, got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"--minutes must be positive, got {self.minutes}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.weight_decay is not None and not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        if self.clip < 0:
            raise ValueError(f"--clip must be >= 0 (0 disables clipping), got {self.clip}")
        if self.clip_mode not in ("norm", "value"):
            raise ValueError(f"--clip-mode must be 'norm' or 'value', got {self.clip_mode!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.warmup < 0:
            raise ValueError(f"--warmup must be >= 0, got {self.warmup}")
        if not 0 <= self.lr_floor <= 1:
            raise ValueError(f"--lr-floor must lie in [0, 1], got {self.lr_floor}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"--lr-decay must lie in (0, 1], got {self.lr_decay}")
        if self.lr_decay_every < 1:
            raise ValueError(f"--lr-decay-every must be a positive integer, got {self.lr_decay_every}")
        if not 0 < self.plateau_factor < 1:
            raise ValueError(f"--plateau-factor must lie in (0, 1), got {self.plateau_factor}")
        if self.plateau_patience < 1:
            raise ValueError(f"--plateau-patience must be a positive integer, got {self.plateau_patience}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"--patience must be a positive integer, got {self.patience}")
        if self.optimizer not in DEFAULT_LR:
            raise ValueError(f"--optimizer must be one of {sorted(DEFAULT_LR)}, got {self.optimizer!r}")


def make_optimizer(name: str, params: Mapping[str, np.ndarray], lr: float, **kwargs: Any) -> Optimizer:
    """An optimiser by its CLI name (one of OPTIMIZERS)."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}") from None
    return cls(params, lr, **kwargs)


def clip_grad_norm(grads: Iterable[np.ndarray], max_norm: float) -> float:
    """Gradient norm clipping (Pascanu, Mikolov and Bengio 2013): with g all gradients as one vector, if ||g|| >= max_norm, scale every
    gradient in place by max_norm / ||g||. Returns ||g|| before clipping."""
    grads = list(grads)
    norm = math.sqrt(sum(_sum_of_squares(g) for g in grads))
    if norm >= max_norm and norm > 0:
        for g in grads:
            g *= g.dtype.type(max_norm / norm)
    return norm


def _sum_of_squares(g: np.ndarray) -> float:
    if g.dtype in (np.float32, np.float64) and g.flags.c_contiguous:
        return _C.sum_of_squares(g)  # one pass, no float64 temporary
    return float(np.square(g, dtype=np.float64).sum())


def clip_grad_value(grads: Iterable[np.ndarray], clip: float) -> None:
    """Clamp every gradient element to [-clip, clip] in place."""
    for g in grads:
        np.clip(g, -clip, clip, out=g)


def decayed_lr(base_lr: float, step: int, rate: float = 1.0, every: int = 1) -> float:
    """Step decay: base_lr * rate ** (step // every) (char-rnn multiplies by 0.97 each epoch)."""
    return base_lr * rate ** (step // max(1, every))
