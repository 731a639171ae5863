"""The performance targets of rnnkit (issue 3), checked against results written by `rnnkit bench --json`.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE rnnkit bench --json bench/hosts/HOST/results.json \
        --plot bench/hosts/HOST/speedup.png --markdown bench/hosts/HOST/RESULTS.md
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE rnnkit bench --group large --threads 1,2 \
        --json bench/hosts/HOST/scaling.json --markdown bench/hosts/HOST/SCALING.md
    python bench/scripts/targets.py bench/hosts/HOST/results.json bench/hosts/HOST/scaling.json > bench/hosts/HOST/TARGETS.md

results.json: the full grid at 2 threads; scaling.json: the large sizes at 1 and 2 threads. The machines
this was measured on set OPENBLAS_CORETYPE=Haswell, which pins OpenBLAS (rnnkit's and NumPy's) to
AVX2 kernels; users' machines do not, so the runs unset it.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Callable, Dict, List


def name(c: Dict) -> str:
    return (f'{c["cell"]} {c["mode"]} B{c["B"]} T{c["T"]} I{c["I"]} H{c["H"]} {c["L"]}x{c["D"]}'
            + (" var" if c["varlen"] else ""))


def ms(c: Dict, impl: str) -> float:
    return c["impls"][impl]["ms"]


def vs_torch(c: Dict) -> float:
    """How many times faster rnnkit is than torch."""
    return ms(c, "torch") / ms(c, "rnnkit")


def at_least(cases: List[Dict], pred: Callable[[Dict], bool], label: str, target: float) -> str:
    sel = [c for c in cases if pred(c)]
    miss = [c for c in sel if vs_torch(c) < target]
    worst = min(sel, key=vs_torch)
    line = (f"| {label} | >= {target}x | min {vs_torch(worst):.2f}x ({name(worst)}) | "
            f"{'met' if not miss else f'{len(miss)} of {len(sel)} below'} |")
    return line + ("" if not miss else "\n" + "\n".join(f"|  | | {name(c)}: {vs_torch(c):.2f}x | |" for c in miss))


def main(results_path: str, scaling_path: str) -> None:
    r = json.load(open(results_path))
    cases = [c for c in r["cases"] if c["status"] == "ok" and "ms" in c["impls"].get("torch", {})]
    geo = math.exp(sum(math.log(1 / vs_torch(c)) for c in cases) / len(cases))
    slower = [c for c in cases if vs_torch(c) < 1]
    print(f"# rnnkit against its performance targets\n\nFrom `{r['command']}` ({r['created']}) and the scaling run "
          f"in `{scaling_path}` (both with OPENBLAS_CORETYPE unset, see bench/scripts/targets.py); made by "
          f"`python bench/scripts/targets.py {results_path} {scaling_path}`.\n")
    print("| target | wanted | measured | verdict |\n|---|---|---|---|")
    print(f"| geometric mean of time(rnnkit)/time(torch), {len(cases)} cases | <= 0.6 | {geo:.3f} | "
          f"{'met' if geo <= 0.6 else 'not met'} |")
    print(f"| never slower than torch | every case | {len(cases) - len(slower)} of {len(cases)} cases | "
          f"{'met' if not slower else f'{len(slower)} slower'} |")
    for c in slower:
        print(f"|  | | {name(c)}: {vs_torch(c):.2f}x | |")
    print(at_least(cases, lambda c: c["cell"] in ("gru", "rnn_tanh"), "GRU and vanilla RNN", 2.0))
    print(at_least(cases, lambda c: c["B"] <= 8, "small batches (B <= 8)", 2.0))
    print(at_least(cases, lambda c: c["varlen"], "variable-length batches", 2.0))
    print(at_least(cases, lambda c: c["cell"] == "lstm" and c["mode"] == "training" and c["B"] in (32, 64)
                   and c["H"] in (256, 512), "LSTM training at char-LM sizes", 1.2))
    big = [c for c in r["cases"] if c["status"] == "ok" and c["H"] == 1024]
    fr = [100 * c["impls"]["rnnkit"]["peak_fraction"] for c in big]
    print(f"| large sizes (H = 1024), share of the measured sgemm peak | >= 80% | {min(fr):.0f}% to {max(fr):.0f}% | "
          f"{sum(f >= 80 for f in fr)} of {len(fr)} met |")
    for c, f in zip(big, fr):
        if f < 80:
            print(f"|  | | {name(c)}: {f:.0f}% | |")
    ref = [c for c in r["cases"] if c["status"] == "ok" and "ms" in c["impls"].get("reference", {})
           and c["B"] in (32, 64) and c["H"] in (128, 256, 512)]
    xr = [ms(c, "reference") / ms(c, "rnnkit") for c in ref]
    print(f"| faster than the NumPy reference at char-LM sizes | >= 30x | {min(xr):.1f}x to {max(xr):.1f}x | "
          f"{'met' if min(xr) >= 30 else f'{sum(x < 30 for x in xr)} of {len(xr)} below'} |")
    s = json.load(open(scaling_path))
    by = {}
    for c in s["cases"]:
        if c["status"] == "ok":
            by.setdefault(c["id"], {})[c["threads"]] = ms(c, "rnnkit")
    ups = {k: v[1] / v[2] for k, v in by.items() if 1 in v and 2 in v}
    print(f"| 1 -> 2 threads on large cases | >= 1.8x | {min(ups.values()):.2f}x to {max(ups.values()):.2f}x | "
          f"{sum(u >= 1.8 for u in ups.values())} of {len(ups)} met |")
    for k, u in sorted(ups.items()):
        if u < 1.8:
            print(f"|  | | {k}: {u:.2f}x | |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
