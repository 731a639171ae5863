"""Data parallelism for the training commands, on `rnnkit.distributed`.

Every rank holds the whole model and the whole data, builds the same batches in the same order, and
trains on its share of each batch (`share`); after the backward pass one allreduce over one contiguous
buffer (`GradientReducer`) sums the shares' gradients, each weighted by its share of the batch's loss, so
every rank holds the gradient one process would have computed on the whole batch (to floating-point
summation order) and takes the same optimiser step. What depends on a clock is decided on rank 0 and
broadcast (`from_main`), so every rank stops at the same step. In a single process every function here is
the identity and nothing is communicated.
"""

from __future__ import annotations

import os
import time
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import distributed as dist

__all__ = [
    "shares",
    "share",
    "GradientReducer",
    "sum_across",
    "from_main",
    "set_threads",
    "THREADS_HELP",
    "quiet_unless_main",
]


def shares(total: int, parts: int) -> List[Tuple[int, int]]:
    """``total`` items cut into ``parts`` contiguous (start, stop) ranges whose sizes differ by one at
    most, the larger ones first."""
    base, extra = divmod(total, parts)
    bounds, start = [], 0
    for p in range(parts):
        stop = start + base + (p < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def share(total: int, what: Optional[str] = None) -> slice:
    """This rank's contiguous share of ``total`` items (all of them in a single process).

    With ``what`` (the option that sets ``total``, e.g. "--batch"), a share must not be empty:
    ValueError saying so when ``total`` is smaller than the number of ranks."""
    n = dist.world_size()
    if what is not None and total < n:
        raise ValueError(
            f"{what} {total} is smaller than the {n} ranks of this job: each rank trains on its share of the "
            f"batch, so give {what} {n} or more (or run fewer ranks)"
        )
    start, stop = shares(total, n)[dist.rank()]
    return slice(start, stop)


class GradientReducer:
    """Sums the ranks' gradients with one allreduce per step over one preallocated contiguous buffer.

    The buffer holds every gradient (in sorted name order, the same on every rank) and, in its last
    element, the rank's loss, each multiplied by the rank's weight (its share of the batch's loss), so
    after the sum every rank holds the batch's gradient and loss. ``seconds`` accumulates the time spent
    in the allreduce itself (packing and unpacking excluded), for the benchmark.
    """

    def __init__(self, grads: Mapping[str, np.ndarray]):
        self.names = sorted(grads)
        dtypes = {grads[k].dtype for k in self.names}
        if len(dtypes) != 1:
            raise TypeError(
                f"the gradients must share one dtype to travel in one buffer, got {sorted(map(str, dtypes))}"
            )
        self.buffer = np.empty(sum(grads[k].size for k in self.names) + 1, dtypes.pop())
        self.seconds = 0.0
        self.calls = 0

    def reduce(self, grads: Mapping[str, np.ndarray], loss: float, weight: float) -> float:
        """Replace ``grads`` in place by the weighted sum over ranks of everyone's, and return the
        weighted sum of the losses. A single process returns ``loss`` and leaves ``grads`` alone."""
        if dist.world_size() == 1:
            return loss
        buf, offset = self.buffer, 0
        w = buf.dtype.type(weight)
        for k in self.names:
            g = grads[k]
            np.multiply(g.reshape(-1), w, out=buf[offset : offset + g.size])
            offset += g.size
        buf[-1] = loss * weight
        t0 = time.perf_counter()
        dist.allreduce_flat_(buf)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        offset = 0
        for k in self.names:
            g = grads[k]
            g.reshape(-1)[...] = buf[offset : offset + g.size]
            offset += g.size
        return float(buf[-1])


def sum_across(values: Sequence[float]) -> List[float]:
    """The sums over ranks of ``values`` (float64, one message); ``values`` in a single process."""
    if dist.world_size() == 1:
        return list(values)
    return [float(v) for v in dist.allreduce_flat_(np.array(values, np.float64))]


def from_main(values: Sequence[float]) -> List[float]:
    """Rank 0's ``values`` (float64, one message) on every rank: a clock reading or a decision taken on
    rank 0 alone. ``values`` in a single process."""
    if dist.world_size() == 1:
        return list(values)
    buf = np.array(values, np.float64)
    dist.broadcast_([buf])
    return [float(v) for v in buf]


#: What the training commands' --help says of mpiexec.
MPI_HELP = (
    " Under mpiexec (pip install 'rnnkit[mpi]') it trains data parallel with the same flags: --batch is the "
    "global batch, each rank trains its share, rank 0 alone prints and writes DIR."
)

#: The help of the training commands' --threads.
THREADS_HELP = (
    "kernel threads per rank (default: OMP_NUM_THREADS, else all cores; under mpiexec without "
    "OMP_NUM_THREADS, each machine's cores divided among the ranks it runs)"
)


def set_threads(threads: Optional[int]) -> None:
    """The kernel threads of this rank: ``threads`` if given; else, in a job of several ranks without
    OMP_NUM_THREADS, this machine's cores divided among the ranks it runs
    (`rnnkit.distributed.default_threads`); else the kernels' own default."""
    import rnnkit

    if threads:
        rnnkit.set_num_threads(threads)
    elif dist.world_size() > 1 and not os.environ.get("OMP_NUM_THREADS"):
        rnnkit.set_num_threads(dist.default_threads())


def quiet_unless_main(log: Callable[..., None]) -> Callable[..., None]:
    """``log`` on rank 0, a function that prints nothing on the other ranks."""
    return log if dist.is_main() else (lambda *args, **kwargs: None)
