"""The benchmark cases: which cell, mode and sizes are timed.

Shape legend: B = batch, T = time steps, I = input size, H = hidden size, L = layers,
D = directions (2 if bidirectional), Gi, Gh = row blocks of the cell's W_ih and W_hh (1 RNN, 4 LSTM,
3 GRU; the registry's `CellSpec`).

The full grid covers the regimes an RNN runs in (see `SIZES`): every batch size B = 1, 16, 64, 128 with
every hidden size H = 128, 256, 512, 1024 (sampling at B=1, latency-bound; small batches;
character-language-model training sizes; large batches and layers), then a 2-layer stack, a
bidirectional stack and variable-length batches. ``--quick`` runs a smaller grid of short sequences.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .._cells import CELLS

#: Every cell of the registry can be timed (--cell); the grid runs these unless told otherwise.
CELL_CHOICES = tuple(CELLS)
DEFAULT_CELLS = ("rnn_tanh", "lstm", "gru")
#: What a case runs (--mode): inference = forward in eval mode; training = forward in training mode +
#: backward.
RUN_MODES = ("inference", "training")
#: FLOPs of a training step relative to its forward: backward does the forward's two products twice
#: (dh and dW), so forward + backward is about 3x the forward.
TRAINING_FLOP_FACTOR = 3


@dataclass(frozen=True)
class Size:
    """A problem size; ``I=None`` means I = H (embedding as wide as the hidden state, as in char-LMs)."""

    group: str
    B: int
    H: int
    T: int
    L: int = 1
    bidirectional: bool = False
    varlen: bool = False
    I: Optional[int] = None

    @property
    def input_size(self) -> int:
        return self.H if self.I is None else self.I


def _group(B: int, H: int) -> str:
    """The regime of a single-layer size: sampling (B=1, latency-bound), small batches, char-LM
    training sizes, large batches, large layers."""
    if B == 1:
        return "sampling"
    if B <= 16:
        return "small-batch"
    if H >= 1024:
        return "large"
    return "large-batch" if B >= 128 else "char-lm"


#: The batch sizes and hidden sizes of the full grid's single-layer cases, every pair of them: what
#: `--plot` draws as one batch x hidden map per cell kind and mode.
GRID_BATCHES = (1, 16, 64, 128)
GRID_HIDDEN = (128, 256, 512, 1024)

#: The full grid's sizes. T=100 is a char-LM's usual truncated-BPTT window; the largest layers and
#: batches use T=32 so that a training run stays within seconds on a small machine. After the B x H
#: grid: the char-LM recipe's 2-layer stack, a bidirectional stack and variable-length batches.
SIZES: Sequence[Size] = tuple(
    Size(_group(B, H), B=B, H=H, T=32 if (B >= 128 or H >= 1024) else 100) for H in GRID_HIDDEN for B in GRID_BATCHES
) + (
    Size("multi-layer", B=64, H=512, T=100, L=2),
    Size("bidirectional", B=32, H=256, T=100, L=2, bidirectional=True),
    Size("variable-length", B=32, H=256, T=100, varlen=True),
    Size("variable-length", B=32, H=256, T=100, L=2, bidirectional=True, varlen=True),
)

#: --quick: a small B x H grid of short sequences and one case stacked, bidirectional and
#: variable-length at once, so that the whole run stays well under a minute.
QUICK_SIZES: Sequence[Size] = tuple(Size(_group(B, H), B=B, H=H, T=20) for H in (128, 512) for B in (1, 64)) + (
    Size("variable-length", B=16, H=128, T=20, L=2, bidirectional=True, varlen=True),
)

GROUPS = tuple(dict.fromkeys(s.group for s in SIZES))

#: Defaults of a custom case (size selectors that match no grid size).
CUSTOM_DEFAULTS = {"B": 32, "H": 256, "T": 100, "L": 1}


@dataclass(frozen=True)
class Case:
    """One timed problem: a cell, a mode and a size."""

    cell: str
    mode: str
    size: Size

    @property
    def id(self) -> str:
        """A stable name, used to match cases across runs (``--compare``)."""
        s = self.size
        parts = [self.cell, self.mode, f"B{s.B}", f"T{s.T}", f"I{s.input_size}", f"H{s.H}", f"L{s.L}"]
        if s.bidirectional:
            parts.append("bi")
        if s.varlen:
            parts.append("var")
        return "-".join(parts)

    def lengths(self, T: Optional[int] = None) -> Optional[np.ndarray]:
        """Sequence lengths for a variable-length case (None otherwise), deterministic per case.

        Uniform in [T/4, T] with one sequence of the full length, so the padded length is T; with a
        shorter ``T`` (the correctness check) the same fractions of it.
        """
        if not self.size.varlen:
            return None
        T = self.size.T if T is None else T
        frac = np.random.default_rng(self.size.B).uniform(0.25, 1.0, self.size.B)
        frac[0] = 1.0
        return np.maximum(1, np.round(frac * T)).astype(np.int64)

    def flops(self) -> float:
        """Useful floating-point operations of one run: 2*B*(Gi*I + Gh*H)*H per cell step (G*(I+H) for
        a cell whose weights have G blocks each), over every layer and direction, counting only valid
        steps of a variable-length batch; 3x for training."""
        s, spec = self.size, CELLS[self.cell]
        lengths = self.lengths()
        steps = s.B * s.T if lengths is None else int(lengths.sum())  # (batch row, time step) pairs
        D = 2 if s.bidirectional else 1
        total = 0.0
        for layer in range(s.L):
            layer_in = s.input_size if layer == 0 else D * s.H
            total += D * 2.0 * steps * (spec.gates_ih * layer_in + spec.gates_hh * s.H) * s.H
        return total * (TRAINING_FLOP_FACTOR if self.mode == "training" else 1)

    def to_dict(self) -> Dict:
        d: Dict[str, Any] = {"id": self.id, "cell": self.cell, "mode": self.mode}
        d.update({k: v for k, v in asdict(self.size).items() if k != "I"})
        d["I"] = self.size.input_size
        d["D"] = 2 if self.size.bidirectional else 1
        return d


def build_cases(
    *,
    quick: bool = False,
    cells: Optional[Iterable[str]] = None,
    modes: Optional[Iterable[str]] = None,
    groups: Optional[Iterable[str]] = None,
    batch: Optional[Iterable[int]] = None,
    hidden: Optional[Iterable[int]] = None,
    layers: Optional[Iterable[int]] = None,
    seq_len: Optional[int] = None,
    input_size: Optional[int] = None,
) -> List[Case]:
    """The cases to run, size by size, each size for every cell and mode.

    ``batch``, ``hidden``, ``layers`` and ``groups`` keep the grid sizes that match; if ``batch``,
    ``hidden`` or ``layers`` match no grid size, their cross product (other sizes from
    `CUSTOM_DEFAULTS`) is run instead, so any size can be benchmarked. ``seq_len`` and ``input_size``
    override T and I of every kept size.
    """
    cells = list(cells or DEFAULT_CELLS)
    modes = list(modes or RUN_MODES)
    sizes = list(QUICK_SIZES if quick else SIZES)
    if groups:
        sizes = [s for s in sizes if s.group in set(groups)]
    batch, hidden, layers = (list(v) if v else None for v in (batch, hidden, layers))
    kept = [
        s
        for s in sizes
        if (not batch or s.B in batch) and (not hidden or s.H in hidden) and (not layers or s.L in layers)
    ]
    if not kept and (batch or hidden or layers):
        kept = [
            Size("custom", B=b, H=h, L=n, T=CUSTOM_DEFAULTS["T"] if not quick else 20)
            for b, h, n in itertools.product(
                batch or [CUSTOM_DEFAULTS["B"]], hidden or [CUSTOM_DEFAULTS["H"]], layers or [CUSTOM_DEFAULTS["L"]]
            )
        ]
    if seq_len is not None:
        kept = [replace(s, T=seq_len) for s in kept]
    if input_size is not None:
        kept = [replace(s, I=input_size) for s in kept]
    kept = list(dict.fromkeys(kept))  # overrides can make sizes equal
    # Size-major, so that a run cut short by --max-seconds has measured every cell at the first sizes.
    return [Case(c, m, s) for s in kept for c in cells for m in modes]
