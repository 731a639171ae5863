"""rnnkit.torch's modules against torch.nn's on the bench grid: a training step and an inference call.

Both are torch.nn.Modules with the same weights, called the way a torch user calls them, so the
wrapper's cost (tensor checks, NumPy views, the autograd.Function, packing) is inside rnnkit.torch's
figures. Training: zero the gradients (untimed), forward with x and h0 requiring grad, backward with
fixed upstream gradients of y, h_n (and c_n). Inference: forward under ``torch.inference_mode()``.
Variable-length cases feed a PackedSequence made in the timed call (enforce_sorted=False) to both.
The two modules are timed in turns in one process (`rnnkit.bench.timing.time_interleaved`) with the
same thread count; each pair is first checked to agree (outputs and, in training, gradients).

    python bench/scripts/torch_modules.py [--quick] [--cells gru lstm] [--groups char-lm] \
        [--json bench/hosts/amd-epyc/torch_modules.json] [--markdown bench/hosts/amd-epyc/torch_modules.md]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence
from tqdm import tqdm

import rnnkit
import rnnkit.torch as rt
from rnnkit.bench.grid import DEFAULT_CELLS as CELLS, GROUPS, RUN_MODES as MODES, Case, build_cases
from rnnkit.bench.impls import RnnkitImpl, make_problem
from rnnkit.bench.machine import cpu_load, machine_info
from rnnkit.bench.timing import Timed, median, time_interleaved

_MODULES = {"rnn_tanh": ("RNN", {}), "lstm": ("LSTM", {}), "gru": ("GRU", {})}


def modules(case: Case) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """(torch.nn's, rnnkit.torch's) module for the case, float32, the same weights."""
    name, extra = _MODULES[case.cell]
    s = case.size
    torch.manual_seed(0)
    ref = getattr(torch.nn, name)(s.input_size, s.H, s.L, bidirectional=s.bidirectional, **extra)
    ours = getattr(rt, name)(s.input_size, s.H, s.L, bidirectional=s.bidirectional, **extra)
    ours.load_state_dict(ref.state_dict())
    training = case.mode == "training"
    ref.train(training), ours.train(training)
    return ref, ours


def bind(case: Case, module: torch.nn.Module) -> Tuple[Callable[[], None], Callable[[], Dict[str, torch.Tensor]]]:
    """(setup, call) of one timed run; call returns the outputs and gradients for the agreement check."""
    p = make_problem(case)
    lstm, training = case.cell == "lstm", case.mode == "training"
    x = torch.from_numpy(p.x).requires_grad_(training)
    h0 = torch.from_numpy(p.h0).requires_grad_(training)
    c0 = torch.from_numpy(p.c0).requires_grad_(training) if lstm else None
    lengths = None if p.lengths is None else torch.from_numpy(p.lengths)
    dy = torch.from_numpy(p.dy)
    if lengths is not None:
        dy = pack_padded_sequence(dy, lengths, enforce_sorted=False).data
    upstream = [dy, torch.from_numpy(p.dh)] + ([torch.from_numpy(p.dc)] if lstm else [])
    leaves = [x, h0] + ([c0] if lstm else []) + list(module.parameters())

    def forward():
        inp = x if lengths is None else pack_padded_sequence(x, lengths, enforce_sorted=False)
        y, state = module(inp, (h0, c0) if lstm else h0)
        y = y if lengths is None else y.data
        return [y] + (list(state) if lstm else [state])

    def setup():
        for t in leaves:
            t.grad = None

    def call():
        if not training:
            with torch.inference_mode():
                return {"outputs": forward()}
        outs = forward()
        torch.autograd.backward(outs, upstream)
        return {"outputs": outs, "grads": [t.grad for t in leaves]}

    return setup, call


def agreement(a: Dict, b: Dict) -> float:
    """Largest difference between the two modules' outputs and gradients, relative to each tensor's
    largest magnitude."""
    worst = 0.0
    for key in a:
        for u, v in zip(a[key], b[key]):
            u, v = u.detach().double(), v.detach().double()
            worst = max(worst, float((u - v).abs().max() / max(1e-30, float(u.abs().max()))))
    return worst


def run_case(case: Case, repeats: int) -> Dict:
    ref, ours = modules(case)
    (ref_setup, ref_call), (our_setup, our_call) = bind(case, ref), bind(case, ours)
    ref_setup(), our_setup()
    err = agreement(ref_call(), our_call())
    if err > 1e-3:
        raise RuntimeError(f"{case.id}: rnnkit.torch and torch.nn disagree ({err:.2e} relative)")
    layer = RnnkitImpl("rnnkit", case, {k: v.numpy() for k, v in ref.state_dict().items()})
    layer_setup, layer_call = layer.bind(make_problem(case))
    times = time_interleaved([Timed("torch.nn", ref_call, ref_setup, repeats, 1),
                              Timed("rnnkit.torch", our_call, our_setup, repeats, 1),
                              Timed("rnnkit", layer_call, layer_setup, repeats, 1)])
    t_ref, t_ours, t_layer = (median(times[k]) for k in ("torch.nn", "rnnkit.torch", "rnnkit"))
    return {**case.to_dict(), "group": case.size.group, "torch_ms": 1e3 * t_ref, "rnnkit_torch_ms": 1e3 * t_ours,
            "rnnkit_layer_ms": 1e3 * t_layer, "speedup": t_ref / t_ours, "relative_error": err, "times": times}


def markdown(rows: List[Dict], info: Dict, command: str) -> str:
    lines = [
        "# rnnkit.torch against torch.nn",
        "",
        f"Command: `{command}`",
        "",
        f"{info['cpu_model']}, {info['usable_cpus']} usable CPUs; torch {info['versions']['torch']} "
        f"({torch.get_num_threads()} threads), rnnkit {rnnkit.__version__} ({rnnkit.get_num_threads()} threads); "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; load average at start "
        f"{info['load_at_start']}, at end {cpu_load()}; git {info['git']}.",
        "",
        "Median ms of a training step (forward + backward, gradients of x, h0 and every parameter) or an "
        "inference call (`torch.inference_mode()`), float32, the two modules timed in turns in one process; "
        "speed-up = torch.nn's time / rnnkit.torch's. The rnnkit column is rnnkit's own NumPy layer on the "
        "same kernels and data (`rnnkit.bench`'s call), timed in the same turns: rnnkit.torch minus it is the "
        "wrapper's cost.",
        "",
        "| cell | mode | group | B | T | I | H | L | D | var | torch.nn ms | rnnkit.torch ms | rnnkit ms | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['mode']} | {r['group']} | {r['B']} | {r['T']} | {r['I']} | {r['H']} | "
                     f"{r['L']} | {r['D']} | {'yes' if r['varlen'] else ''} | {r['torch_ms']:.2f} | "
                     f"{r['rnnkit_torch_ms']:.2f} | {r['rnnkit_layer_ms']:.2f} | {r['speedup']:.2f}x |")
    lines += ["", "## Summary", "", "| cell | mode | cases | min | median | max | at target |", "|---|---|---|---|---|---|---|"]
    for cell in CELLS:
        for mode in MODES:
            sel = [r for r in rows if r["cell"] == cell and r["mode"] == mode]
            if cell == "lstm":
                target, sel_t, note = 1.2, [r for r in sel if r["group"] == "char-lm"], ">= 1.2x at char-LM sizes"
            else:
                target, sel_t, note = 2.0, sel, ">= 2x"
            if not sel:
                continue
            s = [r["speedup"] for r in sel]
            met = sum(r["speedup"] >= target for r in sel_t)
            lines.append(f"| {cell} | {mode} | {len(sel)} | {min(s):.2f}x | {float(np.median(s)):.2f}x | "
                         f"{max(s):.2f}x | {met} of {len(sel_t)} ({note}) |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the grid's short representatives")
    ap.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--groups", nargs="+", choices=GROUPS, help="grid groups to run (default: all)")
    ap.add_argument("--repeats", type=int, default=7, help="timed calls of each module per case")
    ap.add_argument("--threads", type=int, help="threads of both libraries (default: each library's default)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--markdown", help="write the table here")
    a = ap.parse_args(argv)
    command = "python bench/scripts/torch_modules.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if os.environ.get("OPENBLAS_CORETYPE") is None:
        command = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE " + command
    if a.threads:
        torch.set_num_threads(a.threads)
        rnnkit.set_num_threads(a.threads)
    info = machine_info()
    cases = build_cases(quick=a.quick, cells=a.cells, modes=a.modes, groups=a.groups)
    rows = []
    for case in tqdm(cases, unit="case", dynamic_ncols=True):
        rows.append(run_case(case, a.repeats))
        tqdm.write(f"{case.id:55s} torch.nn {rows[-1]['torch_ms']:9.2f} ms  rnnkit.torch "
                   f"{rows[-1]['rnnkit_torch_ms']:9.2f} ms  rnnkit {rows[-1]['rnnkit_layer_ms']:9.2f} ms  "
                   f"{rows[-1]['speedup']:.2f}x")
    text = markdown(rows, info, command)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": command, "machine": info, "load_at_end": cpu_load(), "rows": rows}, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
