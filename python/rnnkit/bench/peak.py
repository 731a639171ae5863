"""The machine's measured peak: GFLOP/s of a large float32 GEMM with the kernels' own BLAS.

What is measured: ``scipy_cblas_sgemm`` of the scipy-openblas32 OpenBLAS that rnnkit's kernels link
against (the same library file, found through the ``scipy_openblas32`` package), called through ctypes
on N x N x N float32 matrices with that OpenBLAS set to the benchmark's thread count. The kernels run
the same BLAS single-threaded inside their own OpenMP threads, so this is the ceiling for their GEMMs
with the same cores. If that library cannot be loaded, numpy.matmul is measured instead, with numpy's
BLAS limited to the same threads, and the result says so.
"""

from __future__ import annotations

import ctypes
import time
from typing import Dict

import numpy as np

from .. import _blas_load

_ROW_MAJOR, _NO_TRANS = 101, 111  # CBLAS enum values


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: thread start-up and first touch of the pages
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_peak(threads: int, n: int = 2048, repeats: int = 3) -> Dict:
    """GFLOP/s of the best of ``repeats`` N x N x N sgemm calls (2*N^3 FLOPs) on ``threads`` threads.

    The best rather than the median: a peak is what the hardware can do, and noise only slows it.
    Returns a dict with gflops, n, threads, seconds, and blas (which library, version, core kind).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.zeros((n, n), np.float32)
    lib = _blas_load.library()
    if lib is not None:
        sgemm = lib.scipy_cblas_sgemm
        sgemm.restype = None
        sgemm.argtypes = [ctypes.c_int] * 6 + [
            ctypes.c_float,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_float,
            ctypes.c_void_p,
            ctypes.c_int,
        ]
        args = (
            _ROW_MAJOR,
            _NO_TRANS,
            _NO_TRANS,
            n,
            n,
            n,
            1.0,
            a.ctypes.data,
            n,
            b.ctypes.data,
            n,
            0.0,
            c.ctypes.data,
            n,
        )
        # The kernels pin this library to one thread (they parallelise around it); restore whatever it
        # was afterwards so the kernels' pinning holds.
        old = lib.scipy_openblas_get_num_threads()
        lib.scipy_openblas_set_num_threads(threads)
        try:
            seconds = _best_seconds(lambda: sgemm(*args), repeats)
        finally:
            lib.scipy_openblas_set_num_threads(old)
        blas = {
            "library": "scipy-openblas32 (rnnkit's own BLAS) via scipy_cblas_sgemm",
            "config": lib.scipy_openblas_get_config().decode(errors="replace"),
            "corename": lib.scipy_openblas_get_corename().decode(errors="replace"),
        }
        assert np.allclose(c[:4, :4], a[:4] @ b[:, :4], rtol=1e-3, atol=1e-2), "sgemm through ctypes is wrong"
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=threads, user_api="blas"):
            seconds = _best_seconds(lambda: np.matmul(a, b, out=c), repeats)
        blas = {"library": "numpy.matmul (numpy's BLAS; rnnkit's scipy-openblas32 could not be loaded)"}
    return {"gflops": 2.0 * n**3 / seconds / 1e9, "n": n, "threads": threads, "seconds": seconds, "blas": blas}
