"""curve.png of the training commands: training and validation loss against step on a log scale (a loss
falls by orders of magnitude, and a linear axis flattens everything after the first points), and
optionally a second panel of validation scores, all on one 0-100 scale stated on its axis. Each panel
has a title; the legends sit below the panels, clear of the lines."""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Sequence

__all__ = ["Score", "curve_figure", "plot_curve"]


class Score(NamedTuple):
    """A validation score of the second panel: its key in a metrics row, its legend label, and the factor
    that puts it on the 0-100 scale (100 for a fraction in [0, 1], 1 for a figure already in 0-100)."""

    key: str
    label: str
    factor: float = 100.0
    absent: str = ""  # what the panel says when no row holds the score (why it is missing)


def _log_axis(ax: Any, values: Sequence[float]) -> None:
    """A log y axis with numbers at the ticks even when the range spans less than a decade (where a
    log axis labels only the powers of ten, if any)."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullFormatter

    ax.set_yscale("log")
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) < 10:
        lo, hi = min(positive), max(positive)
        ticks = [t for t in MaxNLocator(nbins=6).tick_values(lo, hi) if lo * 0.95 <= t <= hi * 1.05 and t > 0]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax.yaxis.set_minor_formatter(NullFormatter())


def plot_curve(metrics: List[Dict[str, Any]], path: str, ylabel: str = "loss (nats per character)",
               scores: Sequence[Score] = ()) -> bool:
    """Draw `curve_figure` to ``path``. False when matplotlib is missing (nothing is written)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig = curve_figure(metrics, ylabel, scores)
    fig.savefig(path)
    plt.close(fig)
    return True


def curve_figure(metrics: List[Dict[str, Any]], ylabel: str = "loss (nats per character)",
                 scores: Sequence[Score] = ()) -> Any:
    """The matplotlib Figure of train_loss and val_loss of ``metrics`` rows and, if ``scores`` names any,
    those validation scores (the ones the rows hold) in a second panel on a 0-100 scale."""
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in metrics]
    present = [s for s in scores if any(s.key in r for r in metrics)]
    notes = [s.absent for s in scores if s not in present and s.absent]
    panels = 2 if present else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.6), dpi=100, squeeze=False)
    ax = axes[0, 0]
    train = [r["train_loss"] for r in metrics]
    val = [r["val_loss"] for r in metrics]
    ax.plot(steps, train, marker="o", ms=3, label="training (mean since the last evaluation)")
    ax.plot(steps, val, marker="o", ms=3, label="validation")
    _log_axis(ax, train + val)
    ax.set_title("(a) loss" if present else "loss")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel + ", log scale")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, fontsize=8, frameon=False)
    if present:
        ax = axes[0, 1]
        for s in present:
            ax.plot(steps, [r[s.key] * s.factor if s.key in r else float("nan") for r in metrics], marker="o",
                    ms=3, label=s.label)
        ax.set_title("(b) validation scores" + (f" ({'; '.join(notes)})" if notes else ""))
        ax.set_xlabel("step")
        ax.set_ylabel("score (0-100; exact match and accuracy in %)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(present), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
