"""curve.png: training and validation loss against step."""
from __future__ import annotations

from typing import Any, Dict, List


def plot_curve(metrics: List[Dict[str, Any]], path: str) -> bool:
    """Draw train_loss and val_loss (nats per character) of ``metrics`` rows to ``path``; False when
    matplotlib is missing (nothing is written)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps = [r["step"] for r in metrics]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(steps, [r["train_loss"] for r in metrics], marker="o", label="training")
    ax.plot(steps, [r["val_loss"] for r in metrics], marker="o", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per character)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
