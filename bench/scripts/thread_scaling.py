"""1 -> 2 thread scaling of one layer (rnnkit.kernels) on the large cases.

For each case the layer runs on 1 and on 2 threads, alternating, and the best of --repeats calls is
kept (on a shared machine the best is the figure least disturbed by other work). Training is forward
+ backward.

    python bench/scripts/thread_scaling.py
    python bench/scripts/thread_scaling.py --cells lstm --batch 128
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import rnnkit
from rnnkit import kernels
from rnnkit.models import single_threaded_blas

GATES = {"rnn_tanh": 1, "lstm": 4, "gru": 3}


def best_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def layer_calls(cell: str, B: int, T: int, I: int, H: int):
    rng = np.random.default_rng(0)
    G = GATES[cell]
    s = 1 / np.sqrt(H)
    w = [rng.uniform(-s, s, shape).astype(np.float32) for shape in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = np.zeros((B, H), np.float32)
    c0 = h0.copy() if cell == "lstm" else None
    dy = rng.standard_normal((T, B, H)).astype(np.float32)

    def inference():
        kernels.forward(cell, x, h0, *w, c0=c0, training=False)

    def training():
        res = kernels.forward(cell, x, h0, *w, c0=c0, training=True)
        kernels.backward(res.workspace, dy)

    return {"inference": inference, "training": training}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=list(GATES), choices=list(GATES))
    ap.add_argument("--batch", nargs="+", type=int, default=[64, 128])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    core = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(f"OPENBLAS_CORETYPE={core}, load {os.getloadavg()[0]:.2f}")
    print("| cell | mode | B | T | I=H | 1 thread ms | 2 threads ms | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    H = args.hidden
    with single_threaded_blas():
        for cell in args.cells:
            for B in args.batch:
                calls = layer_calls(cell, B, args.steps, H, H)
                for mode in ("inference", "training"):
                    ms = {}
                    for n in (1, 2):
                        rnnkit.set_num_threads(n)
                        calls[mode]()  # warm-up
                    for n in (1, 2):
                        ms[n] = []
                    for _ in range(args.repeats):
                        for n in (1, 2):
                            rnnkit.set_num_threads(n)
                            ms[n].append(best_ms(calls[mode], 1))
                    one, two = min(ms[1]), min(ms[2])
                    print(f"| {cell} | {mode} | {B} | {args.steps} | {H} | {one:.1f} | {two:.1f} | {one / two:.2f}x |",
                          flush=True)
    rnnkit.set_num_threads(2)
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
