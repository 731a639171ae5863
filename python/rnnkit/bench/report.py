"""Presenting a result document (see `run.run_bench`): the console table, JSON and Markdown (the plot:
`plot.py`).

Column legend: ms = median milliseconds of one call (inference: forward; training: forward +
backward); GFLOP/s = useful FLOPs (2*B*(I+H)*G*H per cell step, 3x for training) per second of
rnnkit; %peak = that over the measured sgemm peak; x ref / x torch = how many times faster rnnkit is;
ws MiB = the training workspaces rnnkit keeps between forward and backward; peak MiB = NumPy memory
allocated at most during one call (tracemalloc); check = largest error of any implementation against
the reference, or FAILED.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional

from . import gemm_kernels

HEADER = (
    "cell",
    "mode",
    "B",
    "T",
    "I",
    "H",
    "LxD",
    "var",
    "thr",
    "rnnkit ms",
    "ref ms",
    "torch ms",
    "GFLOP/s",
    "%peak",
    "x ref",
    "x torch",
    "ws MiB",
    "peak MiB",
    "check",
)


def _num(v: Optional[float], fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _ms(r: Dict, name: str) -> str:
    impl = r["impls"].get(name)
    if impl is None:
        return "-"
    if impl.get("ms") is not None:
        return _num(impl["ms"], ".3g" if impl["ms"] < 100 else ".0f") + ("!" if impl["status"] == "failed" else "")
    return {"skipped": "skip", "error": "error", "failed": "FAILED"}.get(impl["status"], "-")


def _check(r: Dict) -> str:
    errs = [i["check_error"] for n, i in r["impls"].items() if n != "reference" and "check_error" in i]
    if r["status"] != "ok":
        return "FAILED"
    return "ok" + (f" {max(errs):.0e}" if errs else "")


def rows(doc: Dict) -> List[List[str]]:
    """One row of strings per case, in HEADER's order."""
    out = []
    for r in doc["cases"]:
        mine = r["impls"].get("rnnkit", {})
        frac = mine.get("peak_fraction")
        out.append(
            [
                r["cell"],
                r["mode"],
                str(r["B"]),
                str(r["T"]),
                str(r["I"]),
                str(r["H"]),
                f"{r['L']}x{r['D']}",
                "yes" if r["varlen"] else "-",
                str(r["threads"]),
                _ms(r, "rnnkit"),
                _ms(r, "reference"),
                _ms(r, "torch"),
                _num(mine.get("gflops"), ".1f"),
                _num(None if frac is None else 100 * frac, ".0f"),
                _num(r.get("speedup_vs_reference"), ".1f"),
                _num(r.get("speedup_vs_torch"), ".2f"),
                _num(r.get("workspace_mib"), ".1f"),
                _num(r.get("traced_peak_mib"), ".1f"),
                _check(r),
            ]
        )
    return out


def _numeric(col: int) -> bool:
    return 2 <= col <= len(HEADER) - 2


def format_table(doc: Dict) -> str:
    """The console table, numbers right-aligned, followed by the notes of skipped or failed cases."""
    table = [list(HEADER)] + rows(doc)
    widths = [max(len(row[c]) for row in table) for c in range(len(HEADER))]
    lines = [
        "  ".join(cell.rjust(w) if _numeric(c) else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths)))
        for row in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines + notes(doc))


def notes(doc: Dict) -> List[str]:
    out = []
    for r in doc["cases"]:
        for note in r.get("notes", []):
            out.append(f"  {r['id']} x{r['threads']}: {note}")
    return (["", "notes:"] + out) if out else []


def summary(doc: Dict) -> str:
    """One paragraph: how many cases, how many failed, geometric-mean speed-ups."""
    cases = doc["cases"]
    failed = sum(r["status"] != "ok" for r in cases)
    parts = [f"{len(cases)} cases, {failed} FAILED"]
    if doc.get("not_run"):
        parts.append(f"{len(doc['not_run'])} not run (--max-seconds reached): {', '.join(doc['not_run'])}")
    for other in ("reference", "torch"):
        ups = [r[f"speedup_vs_{other}"] for r in cases if r.get(f"speedup_vs_{other}")]
        if ups:
            gmean = math.exp(sum(math.log(u) for u in ups) / len(ups))
            parts.append(
                f"rnnkit vs {other}: geometric mean x{gmean:.2f} over {len(ups)} cases "
                f"(min x{min(ups):.2f}, max x{max(ups):.2f})"
            )
    timed = [r for r in cases if r.get("speedup_vs_torch")]
    if timed:
        worst = min(timed, key=lambda r: r["speedup_vs_torch"])
        ratio = math.exp(-sum(math.log(r["speedup_vs_torch"]) for r in timed) / len(timed))
        parts.append(
            f"time(rnnkit)/time(torch): geometric mean {ratio:.2f}, worst {1 / worst['speedup_vs_torch']:.2f} "
            f"({worst['id']} x{worst['threads']})"
        )
    return "; ".join(parts)


def header_lines(doc: Dict) -> List[str]:
    m = doc["machine"]
    v = m["versions"]
    git = m.get("git") or {}
    lines = [
        f"CPU: {m['cpu_model']} ({m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs), {m['platform']}",
        "versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + f", python {m['python']}",
        f"git: {git.get('commit', 'unknown')}" + (" (with uncommitted changes)" if git.get("dirty") else ""),
    ]
    env = m.get("env") or {}
    lines.append(
        "environment: "
        + (", ".join(f"{k}={v}" for k, v in sorted(env.items())) or "(none of the threading or BLAS variables)")
    )
    for when in ("start", "end"):
        load = m.get(f"load_at_{when}") or {}
        if load:
            lines.append(
                f"load at {when}: {load.get('loadavg_1min')} (1-min average), CPU pressure "
                f"{load.get('cpu_pressure_pct_10s')}% (share of time a task waited for a CPU)"
            )
    if doc.get("gemm_kernels"):
        lines += gemm_kernels.lines(doc["gemm_kernels"])
    for n, p in doc["peaks"].items():
        lines.append(
            f"sgemm peak, {n} thread(s): {p['gflops']:.1f} GFLOP/s ({p['n']}^3, {p['blas']['library']}"
            + (f", {p['blas']['corename']}" if p["blas"].get("corename") else "")
            + ")"
        )
    return lines


def write_json(doc: Dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(
            {k: v for k, v in doc.items() if k != "presented_by"}, f, indent=1, default=str
        )  # default=str: numpy scalars, paths
        f.write("\n")


def load_json(path: str) -> Dict:
    """A bench result written by ``--json``; OSError if unreadable, ValueError naming the file if it is
    not one."""
    with open(path) as f:
        try:
            doc = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not a JSON file ({e})") from None
    if not isinstance(doc, dict) or "cases" not in doc or "machine" not in doc:
        raise ValueError(f"{path} is not an rnnkit bench result (no 'cases' / 'machine')")
    return doc


def write_markdown(doc: Dict, path: str, plot_path: Optional[str] = None) -> None:
    """RESULTS.md: the command that produced it, the machine, the table, the notes and the plot."""
    table = [list(HEADER)] + rows(doc)
    md = [
        "# rnnkit benchmark results",
        "",
        f"Produced by `{doc.get('command', 'rnnkit bench')}` on {doc.get('created', '?')}"
        + (f"; drawn from its JSON by `{doc['presented_by']}`." if doc.get("presented_by") else "."),
        "",
    ]
    md += [f"- {line}" for line in header_lines(doc)]
    md += ["", summary(doc) + ".", "", __doc__.split("\n\n", 1)[1].strip(), ""]
    md.append("| " + " | ".join(table[0]) + " |")
    md.append("|" + "|".join("---:" if _numeric(c) else "---" for c in range(len(HEADER))) + "|")
    md += ["| " + " | ".join(row) + " |" for row in table[1:]]
    md += list(notes(doc))
    if plot_path:
        rel = os.path.relpath(plot_path, os.path.dirname(os.path.abspath(path)))
        md += ["", f"![speed-up per case]({rel})"]
    with open(path, "w") as f:
        f.write("\n".join(md) + "\n")
