"""rnnkit: fast CPU recurrent networks.

Vanilla RNN, LSTM and GRU layers with PyTorch's names, shapes and state_dict keys, and the MUT1, MUT2,
MUT3 cells of Jozefowicz et al. 2015 with the GRU's arguments, forward and backward through time, on
C++17/OpenMP kernels (`rnnkit.kernels`) specified by a plain NumPy reference (`rnnkit.reference`).
Every cell comes from one registry (`CELLS`, the kernels' own).
"""

import os

# A kernel call is one OpenMP parallel region; its steps meet at rnnkit's own barrier (spins briefly,
# then sleeps: csrc/rnnkit/support/team_barrier.h), which does not read this variable. Between calls,
# libgomp's default lets the idle thread spin for ~300k iterations, taking a core from the Python work
# around the calls and from other processes (a 2-thread training step ran 20-30x slower that way when
# each step was its own region: bench/hosts/amd-epyc/DEFAULTS.md). Passive waiting costs a wake-up per
# call instead, and the scheduler may wake a thread onto its partner's core, which the barrier undoes
# (bench/hosts/amd-epyc/SPEED2.md). libgomp reads this once, when it loads with the extension, so it is
# set before that, and only if the user has not chosen.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Loads the OpenBLAS library the extension links against, before the extension, with the kernels this
# CPU supports whatever OPENBLAS_CORETYPE says; BLAS_LOAD says how its core type was chosen.
from ._blas_load import BLAS_LOAD

# isort: split
from . import _C, kernels, reference  # type: ignore[attr-defined]
from ._cells import CELLS, CellSpec
from ._types import CELL_NAMES, MODES, ForwardResult, Gradients, num_gates
from ._version import __version__
from .layers import GRU, LSTM, MUT1, MUT2, MUT3, RNN  # type: ignore[attr-defined]  # MUT1-3: made from the registry
from .models import single_threaded_blas


def get_include() -> str:
    """Directory holding rnnkit/c_api.h, for extensions that call the kernels through the C API
    (Cython: ``cimport rnnkit.capi``; see that .pxd)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def set_num_threads(n: int) -> None:
    """Set how many OpenMP threads the kernels use (the default honours OMP_NUM_THREADS).

    The setting is process-wide: it applies to kernels called from any Python thread, and may change
    while kernels run (each reads it when it starts)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"number of threads must be a positive int, got {n!r}")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    """How many OpenMP threads the kernels use."""
    return _C.get_num_threads()


def empty_cache() -> int:
    """Free the buffers rnnkit keeps for reuse and return how many bytes that was.

    Large kernel outputs (sequence outputs, workspaces, gradients) are taken from buffers that earlier
    outputs released, up to 256 MiB, because a training loop asks for the same sizes every step and
    fresh memory costs a page fault per 4 KiB on first touch. Call this after training to give the
    memory back; nothing else changes."""
    return _C.empty_cache()


__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "MUT1",
    "MUT2",
    "MUT3",
    "CELLS",
    "CellSpec",
    "CELL_NAMES",
    "kernels",
    "reference",
    "set_num_threads",
    "get_num_threads",
    "empty_cache",
    "single_threaded_blas",
    "get_include",
    "BLAS_LOAD",
    "MODES",
    "num_gates",
    "ForwardResult",
    "Gradients",
    "__version__",
]
