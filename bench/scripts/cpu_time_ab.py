"""CPU time of the quick grid on one thread, for comparing two builds on a loaded machine.

`rnnkit bench` measures wall time, which on a machine shared with other work measures the other work as
well (two quick runs of the same code 20 minutes apart differed by 2x in geometric mean at a load of 17
on 2 cores). The CPU time of a one-thread call leaves out the time the process waited for a core, so two
builds compare even then. Run each build's tree in turn, several times, alternating the order:

    (cd OLD && PYTHONPATH=python python bench/scripts/cpu_time_ab.py /tmp/a1.json)
    (cd NEW && PYTHONPATH=python python bench/scripts/cpu_time_ab.py /tmp/b1.json)
    python bench/scripts/cpu_time_ab.py --a /tmp/a*.json --b /tmp/b*.json

Each case: layer forward (and backward in training), 2 untimed calls, then the minimum and median of
--repeats calls' process CPU time.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time


def measure(path: str, repeats: int) -> None:
    import rnnkit
    from rnnkit.bench.grid import build_cases
    from rnnkit.bench.impls import make_layer, make_problem

    rnnkit.set_num_threads(1)
    out = {}
    for case in build_cases(quick=True):
        layer, p = make_layer(case), make_problem(case)
        hx = (p.h0, p.c0) if p.c0 is not None else p.h0
        dstate = (p.dh, p.dc) if p.c0 is not None else p.dh
        layer.train(case.mode == "training")

        def call():
            layer.forward(p.x, hx, lengths=p.lengths)
            if case.mode == "training":
                layer.backward(p.dy, dstate)

        call(), call()
        times = []
        for _ in range(repeats):
            start = time.process_time()
            call()
            times.append(time.process_time() - start)
        out[case.id] = {"min": min(times), "median": statistics.median(times)}
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


def compare(a_paths, b_paths) -> None:
    """Per run pair the geometric mean of B/A over the cases (minimum times), then per case the ratio of
    the medians over runs."""
    runs_a = [json.load(open(p)) for p in a_paths]
    runs_b = [json.load(open(p)) for p in b_paths]
    for i, (a, b) in enumerate(zip(runs_a, runs_b), 1):
        r = [math.log(b[k]["min"] / a[k]["min"]) for k in a]
        print(f"pair {i}: B/A geometric mean {math.exp(sum(r) / len(r)):.4f}")
    logs = []
    for k in runs_a[0]:
        ma = statistics.median(run[k]["min"] for run in runs_a)
        mb = statistics.median(run[k]["min"] for run in runs_b)
        logs.append(math.log(mb / ma))
        print(f"{k:48s} {ma * 1e3:9.3f} {mb * 1e3:9.3f} ms  {mb / ma:6.3f}")
    print(f"B/A geometric mean over cases of the median over runs: {math.exp(sum(logs) / len(logs)):.4f}")


def main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", nargs="?", help="JSON to write")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--a", nargs="+", metavar="JSON", help="runs of build A (compare mode)")
    p.add_argument("--b", nargs="+", metavar="JSON", help="runs of build B, paired with A's in order")
    a = p.parse_args(argv)
    if a.a or a.b:
        compare(a.a, a.b)
    else:
        measure(a.out, a.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
