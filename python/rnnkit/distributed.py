"""Data-parallel building blocks on MPI (mpi4py + MPICH): ranks, collectives on NumPy arrays, and a job
that ends as a whole when one rank fails.

Launched without MPI (a plain ``python``), every function here behaves as the single process of a
one-rank world and mpi4py is never imported, so rnnkit runs without it installed. Launched by
``mpiexec`` (detected from the launcher's environment variables), :func:`init` imports mpi4py; if it is
missing the error says to install ``rnnkit[mpi]``.

Typical use in a training loop::

    from rnnkit import distributed as dist
    dist.init()
    dist.check_same(config, "model configuration")
    dist.broadcast_(params)                 # every rank starts from rank 0's weights
    ...
    dist.allreduce_(grads, op="mean")       # one message per dtype for all gradients
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from types import TracebackType
from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Sequence, Union

import numpy as np

__all__ = [
    "init",
    "is_initialized",
    "uses_mpi",
    "rank",
    "world_size",
    "is_main",
    "allreduce_",
    "broadcast_",
    "barrier",
    "local_rank",
    "local_size",
    "default_threads",
    "check_same",
    "DisagreementError",
    "MPIUnavailableError",
    "allreduce_flat_",
    "allgather",
    "broadcast_object",
    "abort",
]

Arrays = Union[MutableMapping[str, np.ndarray], Sequence[np.ndarray]]

# Variables that MPICH's Hydra, Open MPI, PMIx-based launchers and MVAPICH put in each rank's
# environment, paired with the one that holds the world size (None when that launcher has none).
_LAUNCHER_VARS = (
    ("PMI_RANK", "PMI_SIZE"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("PMIX_RANK", None),
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),
    ("HYDRA_CONTROL_FD", None),
)

# Dtypes that MPI's SUM and a broadcast handle exactly as NumPy stores them.
_REDUCIBLE = tuple(
    np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, np.uint8, np.complex64, np.complex128)
)


class MPIUnavailableError(RuntimeError):
    """Launched by mpiexec with several ranks, but mpi4py cannot be imported."""


class _State:
    """The process's view of the MPI world: ``comm`` is None in a single process without MPI."""

    def __init__(self) -> None:
        self.initialized = False
        self.comm: Any = None
        self.local_comm: Any = None


_state = _State()


def _launcher_world_size() -> Optional[int]:
    """The world size the launcher announces: None when not launched by mpiexec, 0 when launched but
    the size is not in the environment."""
    env = os.environ
    for rank_var, size_var in _LAUNCHER_VARS:
        if rank_var in env:
            if size_var is not None and env.get(size_var, "").isdigit():
                return int(env[size_var])
            return 0
    return None


def _mpi_already_running() -> bool:
    """True when the caller has initialised MPI through mpi4py itself (then rnnkit joins it)."""
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized()


def init() -> None:
    """Join the MPI job this process was launched in, or settle as a single process.

    Idempotent. Under ``mpiexec`` it imports mpi4py (which initialises MPI) and installs an exception
    hook so that an uncaught exception or Ctrl-C on any rank prints the error with its rank and aborts
    the whole job instead of leaving the other ranks blocked in a collective. Without a launcher it does
    nothing and never imports mpi4py.

    Raises:
        MPIUnavailableError: (a RuntimeError) launched by mpiexec with more than one rank but mpi4py is
            not installed.
    """
    if _state.initialized:
        return
    size = _launcher_world_size()
    if size is None and not _mpi_already_running():
        _state.initialized = True
        return
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if size == 1:
            _state.initialized = True
            return
        raise MPIUnavailableError(
            "this process was launched by mpiexec but mpi4py is not installed: "
            "install MPI support with  pip install 'rnnkit[mpi]'"
        ) from exc
    _state.comm = MPI.COMM_WORLD
    _state.initialized = True
    if _state.comm.Get_size() > 1:
        _install_abort_hook()


def is_initialized() -> bool:
    """Whether :func:`init` has run in this process."""
    return _state.initialized


def _comm() -> Any:
    init()
    return _state.comm


def uses_mpi() -> bool:
    """Whether this process is part of an MPI job (possibly of one rank)."""
    return _comm() is not None


def rank() -> int:
    """This process's rank in the job: 0 in a single process."""
    comm = _comm()
    return 0 if comm is None else comm.Get_rank()


def world_size() -> int:
    """The number of ranks in the job: 1 in a single process."""
    comm = _comm()
    return 1 if comm is None else comm.Get_size()


def is_main() -> bool:
    """Whether this is rank 0, the rank that prints and writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank reaches this call (a no-op in a single process)."""
    comm = _comm()
    if comm is not None:
        comm.Barrier()


def _abort_hook(exc_type: type, exc: BaseException, tb: Optional[TracebackType]) -> None:
    """Print the uncaught exception prefixed with the rank, then abort every rank of the job."""
    comm = _state.comm
    where = f"[rnnkit rank {comm.Get_rank()}/{comm.Get_size()}]"
    lines = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n").split("\n")
    message = "\n".join(f"{where} {line}" for line in lines)
    try:
        sys.stdout.flush()
    finally:
        sys.stderr.write(f"{message}\n{where} aborting the MPI job\n")
        sys.stderr.flush()
        comm.Abort(1)


def _install_abort_hook() -> None:
    sys.excepthook = _abort_hook


def _array_list(arrays: Arrays, what: str) -> List[np.ndarray]:
    """The arrays of a dict (in key order, so ranks that built their dicts in different orders agree)
    or a list, checked to be writeable NumPy arrays of a dtype MPI reduces exactly."""
    if isinstance(arrays, Mapping):
        items = [(f"arrays[{k!r}]", arrays[k]) for k in sorted(arrays)]
    elif isinstance(arrays, (list, tuple)):
        items = [(f"arrays[{i}]", a) for i, a in enumerate(arrays)]
    else:
        raise TypeError(f"{what} takes a dict of name -> ndarray or a list of ndarrays, got {type(arrays).__name__}")
    out = []
    for name, a in items:
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{what}: {name} is a {type(a).__name__}, not a numpy.ndarray")
        if a.dtype not in _REDUCIBLE:
            raise TypeError(
                f"{what}: {name} has dtype {a.dtype}; supported dtypes are " + ", ".join(str(d) for d in _REDUCIBLE)
            )
        if not a.flags.writeable:
            raise ValueError(f"{what}: {name} is read-only; the arrays are updated in place")
        out.append(a)
    return out


def _by_dtype(arrays: List[np.ndarray]) -> Dict[np.dtype, List[np.ndarray]]:
    groups: Dict[np.dtype, List[np.ndarray]] = {}
    for a in arrays:
        groups.setdefault(a.dtype, []).append(a)
    return groups


def _pack(arrays: List[np.ndarray], dtype: np.dtype) -> np.ndarray:
    buf = np.empty(sum(a.size for a in arrays), dtype=dtype)
    offset = 0
    for a in arrays:
        buf[offset : offset + a.size] = a.reshape(-1)
        offset += a.size
    return buf


def _unpack(buf: np.ndarray, arrays: List[np.ndarray]) -> None:
    offset = 0
    for a in arrays:
        a[...] = buf[offset : offset + a.size].reshape(a.shape)
        offset += a.size


def allreduce_(arrays: Arrays, op: str = "sum") -> Arrays:
    """Reduce ``arrays`` across all ranks in place and return them.

    All arrays of one dtype travel in one message over one contiguous buffer, so a model's gradients
    cost one allreduce per dtype however many parameters it has; dtypes are kept. Every rank must pass
    the same names (or list length), shapes and dtypes.

    Args:
        arrays: a dict of name -> ndarray or a list of ndarrays; each is overwritten with the result.
        op: ``"sum"`` or ``"mean"`` (the sum divided by the world size; floating and complex only).

    Raises:
        ValueError: unknown ``op`` or a read-only array.
        TypeError: not a dict/list of ndarrays, an unsupported dtype, or ``"mean"`` of integers.
    """
    if op not in ("sum", "mean"):
        raise ValueError(f"allreduce_: op must be 'sum' or 'mean', got {op!r}")
    groups = _by_dtype(_array_list(arrays, "allreduce_"))
    if op == "mean":
        for dtype in groups:
            if dtype.kind not in "fc":
                raise TypeError(
                    f"allreduce_: op='mean' needs floating arrays, got dtype {dtype} "
                    "(use op='sum' and divide where you want)"
                )
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return arrays
    from mpi4py import MPI

    for dtype, group in groups.items():
        buf = _pack(group, dtype)
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        if op == "mean":
            buf /= comm.Get_size()
        _unpack(buf, group)
    return arrays


def broadcast_(arrays: Arrays, root: int = 0) -> Arrays:
    """Overwrite ``arrays`` on every rank with rank ``root``'s, in place, and return them.

    One message per dtype, as in :func:`allreduce_`; every rank must pass the same names (or list
    length), shapes and dtypes.

    Raises:
        ValueError: ``root`` is not a rank of the job, or a read-only array.
        TypeError: as in :func:`allreduce_`.
    """
    groups = _by_dtype(_array_list(arrays, "broadcast_"))
    size = world_size()
    if not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise ValueError(f"broadcast_: root must be a rank in [0, {size}), got {root!r}")
    comm = _comm()
    if comm is None or size == 1:
        return arrays
    for dtype, group in groups.items():
        buf = _pack(group, dtype)
        comm.Bcast(buf, root=int(root))
        if comm.Get_rank() != root:
            _unpack(buf, group)
    return arrays


def allreduce_flat_(buf: np.ndarray) -> np.ndarray:
    """Sum one contiguous array across ranks in place, without a copy, and return it: the primitive
    under a training loop's gradient buffer (a no-op in a single process)."""
    if not isinstance(buf, np.ndarray) or buf.dtype not in _REDUCIBLE or not buf.flags.c_contiguous:
        raise TypeError("allreduce_flat_ takes one C-contiguous numpy.ndarray of a reducible dtype")
    if not buf.flags.writeable:
        raise ValueError("allreduce_flat_: the array is read-only; it is updated in place")
    comm = _comm()
    if comm is not None and comm.Get_size() > 1:
        from mpi4py import MPI

        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return buf


def allgather(obj: Any) -> List[Any]:
    """Every rank's ``obj`` (any picklable value), in rank order, on every rank: ``[obj]`` in a single
    process. For small or occasional data (decoded outputs, carried states at a checkpoint)."""
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return [obj]
    return comm.allgather(obj)


def broadcast_object(obj: Any, root: int = 0) -> Any:
    """Rank ``root``'s ``obj`` (any picklable value) on every rank; ``obj`` itself in a single process."""
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return obj
    return comm.bcast(obj, root=root)


def abort(code: int = 1) -> None:
    """End every rank of the job with exit status ``code`` (after flushing this rank's output); in a
    single process, exit with ``code``."""
    sys.stdout.flush()
    sys.stderr.flush()
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        raise SystemExit(code)
    # The launcher forwards a rank's output through a pipe; an abort at once can kill the job before the
    # line just written reaches mpiexec's stderr, so the job would fail without saying why.
    time.sleep(0.5)
    comm.Abort(code)


def _local_comm() -> Any:
    """The ranks of this job that share this machine's memory (cached; None without MPI)."""
    comm = _comm()
    if comm is None:
        return None
    if _state.local_comm is None:
        from mpi4py import MPI

        _state.local_comm = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    return _state.local_comm


def local_rank() -> int:
    """This rank's index among the ranks on the same machine: 0 in a single process."""
    local = _local_comm()
    return 0 if local is None else local.Get_rank()


def local_size() -> int:
    """How many ranks of the job run on this machine: 1 in a single process."""
    local = _local_comm()
    return 1 if local is None else local.Get_size()


def default_threads() -> int:
    """The thread count a rank uses by default: this machine's cores divided among its ranks.

    When the launcher has bound the process to a subset of the cores, that subset is the rank's
    share already and is used whole; otherwise the cores are divided by :func:`local_size` (at least
    one thread), so ``mpiexec -n 2`` on 2 cores runs 1 thread per rank instead of oversubscribing.
    """
    machine = os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:
        allowed = machine
    if allowed < machine:
        return max(1, allowed)
    return max(1, machine // local_size())


def _fingerprint(obj: Any) -> str:
    """A hash of ``obj`` that is the same in every process for equal values (dict order ignored)."""

    def default(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return {
                "dtype": str(x.dtype),
                "shape": list(x.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(),
            }
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, (set, frozenset)):
            return sorted(repr(v) for v in x)
        return repr(x)

    text = json.dumps(obj, sort_keys=True, default=default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class DisagreementError(RuntimeError):
    """Raised by :func:`check_same` on every rank at once when the ranks hold different values."""


def check_same(obj: Any, what: str) -> None:
    """Check that every rank holds an equal ``obj`` (a configuration, a vocabulary), with one small
    allgather of hashes; a no-op in a single process.

    For a dict, each key is hashed apart so the error names the keys that differ.

    Raises:
        DisagreementError: (a RuntimeError) on every rank when some ranks disagree, naming ``what``, the differing keys
            (for a dict) and the ranks that differ from rank 0.
    """
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return
    if isinstance(obj, Mapping):
        mine: Any = {str(k): _fingerprint(v) for k, v in obj.items()}
    else:
        mine = _fingerprint(obj)
    everyone = comm.allgather(mine)
    reference = everyone[0]
    differing = [r for r, h in enumerate(everyone) if h != reference]
    if not differing:
        return
    detail = ""
    if all(isinstance(h, dict) for h in everyone):
        keys = sorted(
            {k for h in everyone for k in h if h.get(k) != reference.get(k)}
            | {k for k in reference if any(k not in h for h in everyone)}
        )
        detail = " in " + ", ".join(repr(k) for k in keys)
    raise DisagreementError(
        f"ranks disagree on {what}{detail}: rank(s) {differing} differ from rank 0 "
        f"(every rank must run the same rnnkit version with the same arguments and data)"
    )
