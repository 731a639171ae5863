"""What W-Par's wavefront schedule could gain on a 2-layer LSTM stack, measured from above.

W-Par (Sharma and Casas, ICS 2020) runs layer l at step t beside layer l+1 at step t-1: on two cores,
one layer per core, meeting once per step. rnnkit runs a stack layer after layer, each layer on both
cores (each thread owning a slice of every gate's units for the whole sequence).

This script times, on the same weights and inputs (training forward + backward, float32):
  layered    rnnkit today: layer 0 then layer 1 forward, layer 1 then layer 0 backward, 2 threads each;
  wavefront  both layers at once, each a whole-sequence call on its own thread with 1 OpenMP thread
             (two Python threads; the kernels release the GIL). This is a bound that favours the
             wavefront: it leaves out the per-step hand-over between the layers (a barrier per step)
             and lets layer 1 project all its inputs with one GEMM before its loop, which a real
             wavefront cannot (its input arrives a step at a time).
If the bound is not faster than layered, the wavefront schedule cannot be either. Each figure is the
best of --repeats, the two schedules alternating.

    python bench/scripts/wavefront_bound.py                    # the char-LM sizes: 2x512, B=64, T=100, E=64
    python bench/scripts/wavefront_bound.py --hidden 256 --batch 32
"""
from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np

import rnnkit
from rnnkit import kernels
from rnnkit.models import single_threaded_blas


def make_layers(E: int, H: int, B: int, T: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)
    layers = []
    for I in (E, H):
        w = [rng.uniform(-s, s, shape).astype(np.float32) for shape in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        dy = rng.standard_normal((T, B, H)).astype(np.float32)
        layers.append((w, x, dy))
    return layers


def forward(layer, B: int, H: int):
    w, x, _ = layer
    z = np.zeros((B, H), np.float32)
    return kernels.forward("lstm", x, z, *w, c0=z, training=True)


def backward(layer, res):
    kernels.backward(res.workspace, layer[2])


def layered(layers, B, H) -> tuple:
    rnnkit.set_num_threads(2)
    t0 = time.perf_counter()
    res = [forward(layer, B, H) for layer in layers]
    t1 = time.perf_counter()
    for layer, r in reversed(list(zip(layers, res))):
        backward(layer, r)
    return t1 - t0, time.perf_counter() - t1


def concurrent(layers, B, H) -> tuple:
    """Both layers at once, one thread each: (forward seconds, backward seconds)."""
    res = [None, None]
    # The main thread times the phases from the barriers' release: it joins the phase barriers too.
    start = [threading.Barrier(3), threading.Barrier(3)]
    fwd_done = threading.Barrier(3)

    def work(i):
        rnnkit.set_num_threads(1)
        start[0].wait()
        res[i] = forward(layers[i], B, H)
        fwd_done.wait()
        start[1].wait()
        backward(layers[i], res[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    start[0].wait()
    t0 = time.perf_counter()
    fwd_done.wait()
    t1 = time.perf_counter()
    start[1].wait()
    t2 = time.perf_counter()
    for t in threads:
        t.join()
    return t1 - t0, time.perf_counter() - t2


def single(layers, B, H) -> list:
    """Each layer alone on 1 thread: (forward, backward) seconds per layer (the balance of a wavefront)."""
    rnnkit.set_num_threads(1)
    out = []
    for layer in layers:
        t0 = time.perf_counter()
        r = forward(layer, B, H)
        t1 = time.perf_counter()
        backward(layer, r)
        out.append((t1 - t0, time.perf_counter() - t1))
    rnnkit.set_num_threads(2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    layers = make_layers(a.embed, a.hidden, a.batch, a.steps)
    core = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(f"2x{a.hidden} LSTM, E={a.embed}, B={a.batch}, T={a.steps}; OPENBLAS_CORETYPE={core}, "
          f"load {os.getloadavg()[0]:.2f}")
    times = {"layered": [], "wavefront bound": []}
    with single_threaded_blas():
        layered(layers, a.batch, a.hidden), concurrent(layers, a.batch, a.hidden)  # warm-up
        for _ in range(a.repeats):
            times["layered"].append(layered(layers, a.batch, a.hidden))
            times["wavefront bound"].append(concurrent(layers, a.batch, a.hidden))
        alone = [single(layers, a.batch, a.hidden) for _ in range(3)]
    print("| schedule | forward ms | backward ms | total ms |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        f, b = min(t[0] for t in ts) * 1e3, min(t[1] for t in ts) * 1e3
        print(f"| {name} | {f:.1f} | {b:.1f} | {f + b:.1f} |")
    for i in (0, 1):
        f = min(r[i][0] for r in alone) * 1e3
        b = min(r[i][1] for r in alone) * 1e3
        print(f"| layer {i} alone, 1 thread | {f:.1f} | {b:.1f} | {f + b:.1f} |")
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
