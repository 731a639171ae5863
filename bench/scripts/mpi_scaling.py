"""Data-parallel char-LM training on MPI: 1 rank x 2 threads against 2 ranks x 1 thread on this machine,
and a cost model of N machines on paper.

    # the measurement (runs the four jobs below, with and without OPENBLAS_CORETYPE; ~3 minutes)
    flock /work/measure.lock python bench/scripts/mpi_scaling.py run --out bench/hosts/amd-epyc/mpi.json
    # the cost-model table from it
    python bench/scripts/mpi_scaling.py model bench/hosts/amd-epyc/mpi.json

``run`` launches ``measure`` per (model, layout, environment), ``--repeat`` times in turn, and keeps each
one's fastest: the default char-LM (2x256 LSTM, embed 64) and a 2x512 LSTM, each at the default --batch 32
--seq-len 64, as one process with 1 and with 2 kernel threads and as ``mpiexec -n 2`` with 1 thread per
rank. ``measure`` trains ``--warmup`` steps, then times
``--steps`` steps (characters per second of the whole job; the time rank 0 spends in the gradient
allreduce, waiting for the other rank included, and packing the buffer), then ``--split-steps`` more
with a barrier before each allreduce, which separates the wait for the slower rank from the transfer.

``model`` reads the parameter count and the one-machine compute time per step (the fastest layout's step
time less its allreduce): bytes per step = parameters x
4 (float32 gradients), ring allreduce 2(N-1)/N x bytes / bandwidth (plus 2(N-1) x latency in the last
columns), compute per step proportional to the streams per machine; scaling efficiency = compute /
(compute + allreduce) with no overlap.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import sysconfig
import time

MODELS = {"default 2x256": (2, 256), "2x512": (2, 512)}
LAYOUTS = {"1 rank x 1 thread": (1, 1), "1 rank x 2 threads": (1, 2), "2 ranks x 1 thread": (2, 1)}
BATCH, SEQ_LEN, EMBED = 32, 64, 64


def corpus(chars: int) -> str:
    """The first ``chars`` characters of this Python's standard library source (the default corpus's
    files; what they say does not change the speed)."""
    parts, total = [], 0
    for path in sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            parts.append(f.read())
        total += len(parts[-1])
        if total >= chars:
            break
    return "".join(parts)[:chars]


def measure(a: argparse.Namespace) -> None:
    import numpy as np

    from rnnkit import distributed as dist
    from rnnkit.charlm.data import split
    from rnnkit.charlm.train import CharLMRun, TrainConfig
    from rnnkit.data_parallel import set_threads
    from rnnkit.models import single_threaded_blas

    dist.init()
    set_threads(a.threads)
    cfg = TrainConfig(layers=a.layers, hidden=a.hidden, embed=EMBED, seq_len=SEQ_LEN, batch=BATCH, steps=10**6)
    with single_threaded_blas():
        run = CharLMRun(cfg, *split(corpus(2_000_000), 0.05))
        for _ in range(a.warmup):
            run.train_step()
        reducer = run.reducer
        before = reducer.seconds if reducer else 0.0
        pack = [0.0]
        if reducer:
            inner = reducer.reduce

            def timed(grads, loss, weight):
                t0 = time.perf_counter()
                out = inner(grads, loss, weight)
                pack[0] += time.perf_counter() - t0
                return out

            reducer.reduce = timed
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            run.train_step()
        dist.barrier()
        wall = time.perf_counter() - t0
        allreduce = (reducer.seconds - before) if reducer else 0.0
        wait = transfer = 0.0
        if reducer:
            for _ in range(a.split_steps):
                run.model.zero_grad()
                loss = run.batch_loss()
                t1 = time.perf_counter()
                dist.barrier()
                t2 = time.perf_counter()
                s0 = reducer.seconds
                inner(run.model.grads, loss, run.share_weight())
                wait += t2 - t1
                transfer += reducer.seconds - s0
    if dist.is_main():
        params = sum(int(np.prod(v.shape)) for v in run.model.params.values())
        step = wall / a.steps
        print(
            json.dumps(
                {
                    "ranks": dist.world_size(),
                    "threads": a.threads,
                    "layers": a.layers,
                    "hidden": a.hidden,
                    "params": params,
                    "step_s": step,
                    "chars_per_s": BATCH * SEQ_LEN / step,
                    "allreduce_share": allreduce / wall,
                    "reduce_with_packing_share": pack[0] / wall,
                    "split_wait_ms": 1e3 * wait / max(1, a.split_steps),
                    "split_transfer_ms": 1e3 * transfer / max(1, a.split_steps),
                    "steps": a.steps,
                }
            )
        )


def run_all(a: argparse.Namespace) -> None:
    here = os.path.abspath(__file__)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    results = {"uptime_before": os.popen("uptime").read().strip(), "runs": []}
    variants = {"OPENBLAS_CORETYPE as set": {}, "without OPENBLAS_CORETYPE": {"unset": True}}
    best: dict = {}
    for _ in range(a.repeat):
        for env_name, how in variants.items():
            env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
            if how.get("unset"):
                env.pop("OPENBLAS_CORETYPE", None)
                env.pop("OPENBLAS_L2_SIZE", None)
            for model, (layers, hidden) in MODELS.items():
                for layout, (ranks, threads) in LAYOUTS.items():
                    cmd = [sys.executable, here, "measure", "--layers", str(layers), "--hidden", str(hidden)]
                    cmd += ["--threads", str(threads), "--steps", str(a.steps)]
                    if ranks > 1:
                        cmd = [mpiexec, "-n", str(ranks)] + cmd
                    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                    row = json.loads(out.strip().splitlines()[-1])
                    row.update(model=model, layout=layout, env=env_name)
                    print(json.dumps(row), flush=True)
                    key = (env_name, model, layout)
                    if key not in best or row["step_s"] < best[key]["step_s"]:
                        best[key] = row
    results["runs"] = list(best.values())
    results["uptime_after"] = os.popen("uptime").read().strip()
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print(speed_table(results))


def speed_table(results: dict) -> str:
    lines = [
        "| model | environment | layout | chars/s | step (ms) | allreduce share | with packing | wait / transfer (ms) |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results["runs"]:
        split = f"{r['split_wait_ms']:.1f} / {r['split_transfer_ms']:.1f}" if r["ranks"] > 1 else "-"
        lines.append(
            f"| {r['model']} ({r['params']:,} parameters) | {r['env']} | {r['layout']} | {r['chars_per_s']:,.0f} | "
            f"{1e3 * r['step_s']:.0f} | {100 * r['allreduce_share']:.1f}% | "
            f"{100 * r['reduce_with_packing_share']:.1f}% | {split} |"
        )
    return "\n".join(lines)


def ring_seconds(nbytes: float, n: int, gbit: float, latency: float = 0.0) -> float:
    """Ring allreduce: 2(N-1)/N x bytes over the link, plus 2(N-1) message latencies."""
    return 2 * (n - 1) / n * nbytes / (gbit * 1e9 / 8) + 2 * (n - 1) * latency


def cost_model(results: dict, latency: float) -> str:
    lines = []
    for model in MODELS:
        runs = [r for r in results["runs"] if r["model"] == model]
        base = min(runs, key=lambda r: r["step_s"] * (1 - r["allreduce_share"]))
        compute = base["step_s"] * (1 - base["allreduce_share"])  # one machine's step without communication
        per_stream = compute / BATCH  # seconds of one machine per stream per step (64 characters)
        nbytes = 4 * base["params"]
        lines += [
            f"**{model}**: {base['params']:,} parameters, {nbytes / 1e6:.2f} MB of gradients per step; one machine "
            f"(2 cores, {base['layout']}, {base['env']}): {1e3 * compute:.0f} ms of compute per step at batch "
            f"{BATCH}, so {1e3 * per_stream:.2f} ms per stream.",
            "",
            "| N | link | allreduce (ms) | efficiency at 32 streams per machine | global batch for 90% | "
            f"allreduce with {1e6 * latency:.0f} us latency (ms) | global batch for 90% with it |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        for n in (2, 8, 32, 128):
            for gbit in (10, 25):
                t = ring_seconds(nbytes, n, gbit)
                tl = ring_seconds(nbytes, n, gbit, latency)
                b90 = n * math.ceil(9 * t / per_stream)
                b90l = n * math.ceil(9 * tl / per_stream)
                lines.append(
                    f"| {n} | {gbit} Gbit/s | {1e3 * t:.2f} | {100 * compute / (compute + t):.1f}% | {b90:,} | "
                    f"{1e3 * tl:.2f} | {b90l:,} |"
                )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="one job (launch under mpiexec for several ranks)")
    m.add_argument("--layers", type=int, default=2)
    m.add_argument("--hidden", type=int, default=256)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--warmup", type=int, default=3)
    m.add_argument("--steps", type=int, default=20)
    m.add_argument("--split-steps", type=int, default=8)
    r = sub.add_parser("run", help="the four jobs, with and without OPENBLAS_CORETYPE")
    r.add_argument("--out", required=True)
    r.add_argument("--steps", type=int, default=20)
    r.add_argument("--repeat", type=int, default=2)
    c = sub.add_parser("model", help="the cost-model table from run's output")
    c.add_argument("results")
    c.add_argument("--latency-us", type=float, default=50.0)
    a = p.parse_args()
    if a.cmd == "measure":
        measure(a)
    elif a.cmd == "run":
        run_all(a)
    else:
        with open(a.results) as f:
            results = json.load(f)
        print(speed_table(results) + "\n\n" + cost_model(results, a.latency_us * 1e-6))


if __name__ == "__main__":
    main()
