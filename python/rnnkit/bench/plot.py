"""``rnnkit bench --plot``: the speed-ups as maps a person reads at a glance.

One row of panels per mode (and thread count), one panel per cell kind: the single-layer cases on a
grid of batch size x hidden size, each square coloured by rnnkit's speed-up over torch (blue: rnnkit
faster, red: slower, white: equal; log scale) and annotated with it, the speed-up over the NumPy
reference beneath in small type. The cases off that grid (stacks, bidirectional, variable-length,
and a second case of the same B and H) sit in one more panel per row, a row per size and a column
per cell kind. Without torch the colour is the speed-up over the reference.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

from ..cliutil import require_module

#: Speed-ups beyond these bounds get the colour of the bound.
COLOR_RANGE = (0.25, 4.0)


def _is_grid_case(r: Dict) -> bool:
    return r["L"] == 1 and r["D"] == 1 and not r["varlen"]


def _size_label(r: Dict) -> str:
    parts = [f"B{r['B']} T{r['T']} H{r['H']}"]
    if r["I"] != r["H"]:
        parts.append(f"I{r['I']}")
    if r["L"] > 1:
        parts.append(f"L{r['L']}")
    if r["D"] == 2:
        parts.append("bidir")
    if r["varlen"]:
        parts.append("var-len")
    return " ".join(parts)


def layout(doc: Dict) -> Tuple[List[Tuple[str, int]], List[str], Dict, Dict]:
    """How the cases fall into panels.

    Returns (rows, cells, grid, other): rows are (mode, threads) pairs; grid[(mode, threads, cell)] maps
    (B, H) to a case; other[(mode, threads)] maps (size label, cell) to a case.
    """
    cases = doc["cases"]
    rows = list(dict.fromkeys((r["mode"], r["threads"]) for r in cases))
    cells = list(dict.fromkeys(r["cell"] for r in cases))
    grid: Dict = {}
    other: Dict = {}
    for r in cases:
        key = (r["mode"], r["threads"], r["cell"])
        panel = grid.setdefault(key, {})
        if _is_grid_case(r) and (r["B"], r["H"]) not in panel:
            panel[(r["B"], r["H"])] = r
        else:
            other.setdefault((r["mode"], r["threads"]), {})[(_size_label(r), r["cell"])] = r
    return rows, cells, grid, other


def _speedup(r: Optional[Dict], against: str) -> Optional[float]:
    return None if r is None else r.get(f"speedup_vs_{against}")


def _square(ax, x: float, y: float, r: Optional[Dict], main: str, cmap, norm) -> None:
    """One annotated square: colour and large text from ``main``'s speed-up, the reference's below."""
    if r is None:
        ax.add_patch(_rect(x, y, "#eeeeee", hatch=None))
        ax.text(x, y, "not run", ha="center", va="center", fontsize=6, color="#888888")
        return
    value = _speedup(r, main)
    failed = r["status"] != "ok"
    if value is None:
        ax.add_patch(_rect(x, y, "#dddddd", hatch="//"))
    else:
        rgba = cmap(norm(math.log2(value)))
        ax.add_patch(_rect(x, y, rgba, hatch="xx" if failed else None))
    dark = value is not None and abs(norm(math.log2(value)) - 0.5) > 0.33
    color = "white" if dark else "black"
    big = "FAILED" if failed else ("-" if value is None else f"{value:.2f}x")
    ax.text(x, y + 0.08, big, ha="center", va="center", fontsize=9, fontweight="bold", color=color)
    ref = _speedup(r, "reference") if main != "reference" else None
    if ref is not None:
        ax.text(x, y - 0.25, f"ref {ref:.1f}x", ha="center", va="center", fontsize=6.5, color=color)


def _rect(x: float, y: float, color, hatch: Optional[str]):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=color, edgecolor="white", linewidth=1.5, hatch=hatch)


def _frame(
    ax,
    ncols: int,
    nrows: int,
    xlabels: Sequence[str],
    ylabels: Sequence[str],
    xtitle: str,
    ytitle: str,
    yticks: Optional[Sequence[int]] = None,
):
    """Axes of ncols x nrows squares, labelled (the y labels at ``yticks``, default the bottom rows)."""
    ax.set_xlim(-0.5, ncols - 0.5)
    ax.set_ylim(-0.5, nrows - 0.5)
    ax.set_xticks(range(ncols))
    ax.set_xticklabels(xlabels, fontsize=8)
    ax.set_yticks(list(yticks) if yticks is not None else list(range(len(ylabels))))
    ax.set_yticklabels(ylabels, fontsize=8)
    ax.set_xlabel(xtitle, fontsize=8)
    ax.set_ylabel(ytitle, fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_aspect("equal")


def write_plot(doc: Dict, path: str) -> None:
    """Draw the speed-up maps of a result document into ``path`` (PNG)."""
    matplotlib = require_module("matplotlib", "--plot")
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    cases = doc["cases"]
    main = "torch" if any(r.get("speedup_vs_torch") for r in cases) else "reference"
    if not any(r.get(f"speedup_vs_{main}") for r in cases):
        raise ValueError("--plot: no speed-up to draw (no case timed rnnkit beside the reference or torch)")
    rows, cells, grid, other = layout(doc)
    batches = sorted({b for panel in grid.values() for (b, _) in panel})
    hiddens = sorted({h for panel in grid.values() for (_, h) in panel})
    other_sizes = list(dict.fromkeys(label for panel in other.values() for (label, _) in panel))
    has_grid = bool(batches)
    panels = (len(cells) if has_grid else 0) + (1 if other_sizes else 0)
    side = 0.8  # inches of one square
    nrows = max(len(hiddens), len(other_sizes), 2)  # squares per panel height, so that all squares match
    grid_w = side * max(len(batches), 2) + 0.9
    other_w = side * len(cells) + 2.3
    row_h = side * nrows + 0.8
    width = max(7.0, (grid_w * len(cells) if has_grid else 0) + (other_w if other_sizes else 0))
    widths = ([grid_w] * len(cells) if has_grid else []) + ([other_w] if other_sizes else [])
    fig, axes = plt.subplots(
        len(rows),
        panels,
        figsize=(width, row_h * len(rows) + 1.2),
        gridspec_kw={"width_ratios": widths},
        squeeze=False,
        layout="constrained",
    )
    lo, hi = (math.log2(v) for v in COLOR_RANGE)
    norm = Normalize(vmin=lo, vmax=hi, clip=True)
    cmap = plt.get_cmap("RdBu")
    for i, (mode, threads) in enumerate(rows):
        row_name = f"{mode}, {threads} thread{'s' if threads != 1 else ''}"
        if has_grid:
            for j, cell in enumerate(cells):
                ax = axes[i][j]
                panel = grid.get((mode, threads, cell), {})
                for bx, b in enumerate(batches):
                    for hy, h in enumerate(hiddens):
                        r = panel.get((b, h))
                        if r is not None or panel:
                            _square(ax, bx, hy, r, main, cmap, norm)
                _frame(
                    ax,
                    len(batches),
                    len(hiddens),
                    [str(b) for b in batches],
                    [str(h) for h in hiddens],
                    "batch size B",
                    "hidden size H" if j == 0 else "",
                )
                ax.set_title(f"{cell}: {row_name}", fontsize=9)
        if other_sizes:
            ax = axes[i][-1]
            panel = other.get((mode, threads), {})
            top = nrows - 1  # listed from the top down
            for cx, cell in enumerate(cells):
                for k, label in enumerate(other_sizes):
                    if (label, cell) in panel or panel:
                        _square(ax, cx, top - k, panel.get((label, cell)), main, cmap, norm)
            _frame(
                ax, len(cells), nrows, cells, other_sizes, "cell", "", yticks=[top - k for k in range(len(other_sizes))]
            )
            ax.set_title(f"other cases: {row_name}", fontsize=9)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    ticks = [t for t in (0.25, 0.5, 1, 2, 4) if COLOR_RANGE[0] <= t <= COLOR_RANGE[1]]
    bar = fig.colorbar(
        sm,
        ax=axes.ravel().tolist(),
        orientation="horizontal",
        shrink=0.6,
        aspect=60,
        ticks=[math.log2(t) for t in ticks],
    )
    bar.ax.set_xticklabels([f"{t:g}x" for t in ticks], fontsize=8)
    bar.set_label(
        f"speed-up of rnnkit over {main} = time({main}) / time(rnnkit); blue: rnnkit faster"
        + (
            "; small type: over the NumPy reference"
            if main == "torch" and any(r.get("speedup_vs_reference") for r in cases)
            else ""
        ),
        fontsize=8,
    )
    m = doc["machine"]
    summary = _summary_line(cases, main)
    coretype = (m.get("env") or {}).get("OPENBLAS_CORETYPE", "unset")
    fig.suptitle(
        f"rnnkit vs {main} on {m['cpu_model']}, {doc.get('created', '')[:10]}, OPENBLAS_CORETYPE {coretype}\n{summary}",
        fontsize=10,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _summary_line(cases: Sequence[Dict], other: str) -> str:
    ups = [r[f"speedup_vs_{other}"] for r in cases if r.get(f"speedup_vs_{other}")]
    gmean = math.exp(sum(math.log(u) for u in ups) / len(ups))
    return f"speed-up over {other}: geometric mean x{gmean:.2f}, slowest x{min(ups):.2f} over {len(ups)} cases"
