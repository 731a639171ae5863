"""``--compare A.json B.json``: the change from run A to run B, case by case.

Cases are matched by id and thread count. For each implementation the table shows the median ms of
A and of B and the change (negative = B faster); a final line gives the geometric mean of the
changes of rnnkit's time, the figure to watch when a kernel changes.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

from .report import load_json

_IMPLS = ("rnnkit", "reference", "torch")


def _index(doc: Dict) -> Dict[Tuple[str, int], Dict]:
    return {(r["id"], r["threads"]): r for r in doc["cases"]}


def _change(a, b) -> str:
    return "-" if not a or not b else f"{100.0 * (b - a) / a:+.1f}%"


def _ms(v) -> str:
    return "-" if v is None else format(v, ".3g" if v < 100 else ".0f")


def compare_docs(a: Dict, b: Dict, name_a: str = "A", name_b: str = "B") -> str:
    """The comparison as text (see the module docstring)."""
    ia, ib = _index(a), _index(b)
    common = [k for k in ia if k in ib]
    head = ["case", "thr"]
    for impl in _IMPLS:
        head += [f"{impl} A", f"{impl} B", "change"]
    head += ["x torch A", "x torch B", "status"]
    table: List[List[str]] = [head]
    ratios = []
    for key in common:
        ra, rb = ia[key], ib[key]
        row = [key[0], str(key[1])]
        for impl in _IMPLS:
            ma = ra["impls"].get(impl, {}).get("ms")
            mb = rb["impls"].get(impl, {}).get("ms")
            row += [_ms(ma), _ms(mb), _change(ma, mb)]
            if impl == "rnnkit" and ma and mb:
                ratios.append(mb / ma)
        sa, sb = ra.get("speedup_vs_torch"), rb.get("speedup_vs_torch")
        row += [
            "-" if sa is None else f"{sa:.2f}",
            "-" if sb is None else f"{sb:.2f}",
            ra["status"] if ra["status"] == rb["status"] else f"{ra['status']}->{rb['status']}",
        ]
        table.append(row)
    widths = [max(len(r[c]) for r in table) for c in range(len(head))]
    lines = [f"A = {name_a}", f"B = {name_b}"]
    for doc, label in ((a, "A"), (b, "B")):
        m, git = doc["machine"], doc["machine"].get("git") or {}
        peaks = ", ".join(f"{n} thr {p['gflops']:.0f} GFLOP/s" for n, p in doc["peaks"].items())
        lines.append(
            f"{label}: {m['cpu_model']}, git {str(git.get('commit', '?'))[:12]}"
            f"{'+dirty' if git.get('dirty') else ''}, sgemm peak {peaks}"
        )
    lines.append("")
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in table]
    only_a = [k for k in ia if k not in ib]
    only_b = [k for k in ib if k not in ia]
    if only_a:
        lines.append(f"only in A: {', '.join(f'{i} x{t}' for i, t in only_a)}")
    if only_b:
        lines.append(f"only in B: {', '.join(f'{i} x{t}' for i, t in only_b)}")
    if ratios:
        g = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        lines.append(
            f"\nrnnkit time B/A: geometric mean {g:.3f} over {len(ratios)} common cases "
            f"({100 * (g - 1):+.1f}%; negative = B faster)"
        )
    elif not common:
        lines.append("no case in common")
    return "\n".join(lines)


def compare_files(path_a: str, path_b: str) -> str:
    return compare_docs(load_json(path_a), load_json(path_b), path_a, path_b)
