"""curve.png of the training commands: training and validation loss against step, and optionally a
second panel of validation metrics (fractions in [0, 1], e.g. exact match)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

__all__ = ["plot_curve"]


def plot_curve(metrics: List[Dict[str, Any]], path: str, ylabel: str = "loss (nats per character)",
               extra: Sequence[Tuple[str, str]] = ()) -> bool:
    """Draw train_loss and val_loss of ``metrics`` rows to ``path``, and, if ``extra`` names
    (key, label) pairs, those keys in a second panel. False when matplotlib is missing (nothing is
    written)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps = [r["step"] for r in metrics]
    panels = 2 if extra else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), dpi=100, squeeze=False)
    ax = axes[0, 0]
    ax.plot(steps, [r["train_loss"] for r in metrics], marker="o", label="training")
    ax.plot(steps, [r["val_loss"] for r in metrics], marker="o", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if extra:
        ax = axes[0, 1]
        for key, label in extra:
            ax.plot(steps, [r.get(key, float("nan")) for r in metrics], marker="o", label=label)
        ax.set_xlabel("step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
