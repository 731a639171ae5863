"""Batch-1 latency of one LSTM/GRU layer against torch.nn, side by side in one process.

Two ways a batch of one runs: a sequence call (streaming inference over T steps: rnnkit's
kernels.forward against torch.nn.LSTM/GRU under no_grad; also with recurrent_weights="float16", W_hh
read as IEEE half, against the same float32 torch call) and a step loop (one call per step carrying
the state, as a sampler or a streaming decoder does: rnnkit.kernels.step with out= against the torch
torch.nn.LSTMCell/GRUCell with the same weights, torch's fastest per-step path). Calls alternate between the libraries; each figure is the median of
--repeats timed calls, in microseconds per step, and ratio = rnnkit / torch (<= 0.5 is the target).

    python bench/scripts/latency_b1.py                       # H = 256, 512, 1024; 2 threads
    python bench/scripts/latency_b1.py --threads 1 --hidden 512
"""
from __future__ import annotations

import argparse
import os
import time

OMP_ENV = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))}  # before any OpenMP loads

import numpy as np
import torch

import rnnkit
from rnnkit import kernels


def median_us(fn, repeats: int, per: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) / per * 1e6)
    return float(np.median(times))


def case(cell: str, H: int, T: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    mod = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(H, H)
    p = {k: v.detach().numpy().copy() for k, v in mod.state_dict().items()}
    w = (p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    x = rng.standard_normal((T, 1, H)).astype(np.float32)
    h0 = np.zeros((1, H), np.float32)
    c0 = h0.copy() if cell == "lstm" else None
    xt = torch.from_numpy(x)
    state = (torch.zeros(1, 1, H), torch.zeros(1, 1, H)) if cell == "lstm" else torch.zeros(1, 1, H)
    step_mod = (torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell)(H, H)
    step_mod.load_state_dict({k[:-3]: torch.from_numpy(v) for k, v in p.items()})
    step_state = (torch.zeros(1, H), torch.zeros(1, H)) if cell == "lstm" else torch.zeros(1, H)

    def rk_seq():
        kernels.forward(cell, x, h0, *w, c0=c0, training=False)

    def rk_seq_half():
        kernels.forward(cell, x, h0, *w, c0=c0, training=False, recurrent_weights="float16")

    def th_seq():
        mod(xt, state)

    h, c = h0.copy(), None if c0 is None else c0.copy()

    def rk_step():
        for t in range(T):
            kernels.step(cell, x[t], h, *w, c=c, out=(h, c))

    def th_step():
        s = step_state
        for t in range(T):
            s = step_mod(xt[t], s)

    out = {"cell": cell, "H": H}
    with torch.no_grad():
        # Each row's calls alternate: rnnkit's, then torch's (then rnnkit's with a half W_hh).
        runs = {"sequence": (rk_seq, th_seq, rk_seq_half), "step": (rk_step, th_step)}
        for name, fns in runs.items():
            for fn in fns:  # warm-up
                fn()
            times: list = [[] for _ in fns]
            for _ in range(repeats):
                for fn, ts in zip(fns, times):
                    ts.append(median_us(fn, 1, T))
            out[name] = tuple(float(np.median(ts)) for ts in times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru"])
    ap.add_argument("--hidden", nargs="+", type=int, default=[256, 512, 1024])
    ap.add_argument("--steps", type=int, default=100, help="T of each timed call")
    ap.add_argument("--repeats", type=int, default=15, help="timed calls per library and case")
    ap.add_argument("--threads", type=int, default=2, help="threads of both libraries")
    args = ap.parse_args()
    rnnkit.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    core = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(f"threads {args.threads}, OPENBLAS_CORETYPE={core}, OpenMP environment {OMP_ENV}, load {os.getloadavg()[0]:.2f}")
    # A process's first ~0.1 s of batch-1 calls can run slower: the scheduler starts a woken OpenMP
    # thread on its waker's core (rnnkit's barrier moves it, torch's threads wait for the balancer). Run
    # past that first.
    case(args.cells[0], args.hidden[0], args.steps, 3)
    print(
        "| cell | H | sequence rnnkit us/step | torch | ratio | rnnkit, half W_hh | ratio "
        "| step loop rnnkit us/step | torch | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cell in args.cells:
        for H in args.hidden:
            r = case(cell, H, args.steps, args.repeats)
            (sa, sb, sh), (pa, pb) = r["sequence"], r["step"]
            print(
                f"| {cell} | {H} | {sa:.1f} | {sb:.1f} | {sa / sb:.2f} | {sh:.1f} | {sh / sb:.2f} "
                f"| {pa:.1f} | {pb:.1f} | {pa / pb:.2f} |",
                flush=True,
            )
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
