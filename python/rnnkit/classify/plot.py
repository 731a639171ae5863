"""confusion.png of ``rnnkit eval-classifier``: the confusion matrix as a picture (curve.png of training
is `rnnkit.plotting.plot_curve`, shared with the other models)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["plot_confusion"]


def plot_confusion(confusion: np.ndarray, labels: Sequence[str], path: str, title: str = "") -> None:
    """Draw ``confusion`` (K, K), rows the true class and columns the predicted one, each row shaded by
    its fraction (recall along the diagonal) and annotated with its count. Raises ImportError without
    matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = np.asarray(confusion)
    K = len(labels)
    rows = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    side = max(4.0, 0.5 * K + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1, side), dpi=100)
    im = ax.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0)
    if K <= 30:
        for i in range(K):
            for j in range(K):
                ax.text(j, i, str(int(c[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(K))
    ax.set_xticklabels(labels, rotation=90 if max(map(len, labels)) > 3 else 0)
    ax.set_yticks(range(K))
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
