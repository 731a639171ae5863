"""The gradient-flow picture: mean ||dL/dh_t|| against the distance T - t on a log scale, every cell in
the left panel, and the exploding vanilla RNN with and without global-norm clipping in the right."""
from __future__ import annotations

import io
from typing import Dict

from .._atomic import atomic_write
from .gradient_flow import Curve

__all__ = ["plot_flow"]

_CLIPPED = "clipped at"


def _style(name: str):
    """(colour, line style) of a curve by its name: vanilla RNNs warm, LSTMs blue, GRU green, the trained
    char-LM purple."""
    palette = {"rnn sigma=0.9": "#f4a259", "rnn sigma=1.0": "#e4572e", "rnn sigma=1.1": "#a4161a",
               "lstm forget bias 0": "#7fb3e0", "lstm forget bias 1": "#1f5fa6", "gru": "#2a9d5c"}
    if name in palette:
        return palette[name], "-"
    if name.startswith("char-LM"):
        layer = name.split("layer ")[1].split(" ")[0]
        return ("#7b2cbf", "-") if layer == "0" else ("#b185db", "--")
    return "#555555", ":"


def plot_flow(curves: Dict[str, Curve], path: str, title: str = "") -> bool:
    """Draw ``curves`` (name -> Curve, as `rnnkit.insight.gradient_flow` makes them) to ``path``; the
    right panel appears when a clipped curve and its unclipped one are present. False when matplotlib
    is missing (nothing is written)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    clipped = {k: v for k, v in curves.items() if _CLIPPED in k}
    pairs = [(k.split(",")[0], k) for k in clipped if k.split(",")[0] in curves]
    panels = 2 if pairs else 1
    fig, axes = plt.subplots(1, panels, figsize=(7.2 * panels, 4.8), dpi=110, squeeze=False)
    ax = axes[0, 0]
    for name, c in curves.items():
        if _CLIPPED in name:
            continue
        colour, ls = _style(name)
        ax.semilogy(c.distance, c.grad_norm, ls, color=colour, lw=2, label=name)
    ax.set_xlabel("distance T \u2212 t (steps back from the loss)")
    ax.set_ylabel("mean \u2016\u2202L/\u2202h$_t$\u2016")
    ax.set_title("gradient flowing back through time")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    if pairs:
        ax = axes[0, 1]
        for base, clip in pairs:
            ax.semilogy(curves[base].distance, curves[base].grad_norm, "-", color="#a4161a", lw=2,
                        label=f"{base}, unclipped")
            ax.semilogy(curves[clip].distance, curves[clip].grad_norm, "-", color="#3a86ff", lw=2, label=clip)
        ax.set_xlabel("distance T \u2212 t (steps back from the loss)")
        ax.set_title("the exploding case with global-norm clipping")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    return True
