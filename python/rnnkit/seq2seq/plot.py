"""Pictures of a trained model: the attention matrix of one translation (curve.png of training is
`rnnkit.plotting.plot_curve`, shared with the character models)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["plot_attention"]


def plot_attention(weights: np.ndarray, source: Sequence[str], output: Sequence[str], path: str) -> None:
    """Draw ``weights`` (len(output), len(source)): row t is output step t's attention over the source
    positions, source along the x axis and output down the y axis. Raises ImportError without
    matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_out, n_src = weights.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.32 * n_src + 1.5), max(3.0, 0.32 * n_out + 1.2)), dpi=100)
    im = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    show = lambda t: "␣" if t == " " else t  # noqa: E731  a visible space
    ax.set_xticks(range(n_src))
    ax.set_xticklabels([show(t) for t in source], rotation=90 if max(map(len, source), default=1) > 2 else 0)
    ax.set_yticks(range(n_out))
    ax.set_yticklabels([show(t) for t in output])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
