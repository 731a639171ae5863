"""The attention picture of one caption: the image, then one panel per word with that word's attention
weights over the regions overlaid on the image (or, for features without an image, drawn as the grid
of regions when P is a square number, else as a row)."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

__all__ = ["plot_region_attention"]


def _grid_of(weights: np.ndarray, grid: Optional[int]) -> np.ndarray:
    """(P,) weights as a (rows, cols) array in the regions' reading order."""
    P = weights.shape[0]
    side = grid or math.isqrt(P)
    if side * side == P:
        return weights.reshape(side, side)
    return weights.reshape(1, P)


def plot_region_attention(
    weights: np.ndarray,
    words: Sequence[str],
    path: str,
    image: Optional[np.ndarray] = None,
    grid: Optional[int] = None,
    columns: int = 6,
) -> None:
    """Draw ``weights`` (len(words), P): panel t shows word t's weights over the P regions, upsampled onto
    ``image`` (S, S, 3) when given. Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(words) + (image is not None)
    cols = min(columns, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.2 * rows), dpi=100, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    panels = iter(axes.ravel())
    if image is not None:
        ax = next(panels)
        ax.imshow(image, interpolation="nearest")
        ax.set_title("image", fontsize=10)
    top = float(weights.max()) if weights.size else 1.0
    for word, w in zip(words, weights):
        ax = next(panels)
        g = _grid_of(np.asarray(w, np.float64), grid)
        if image is not None:
            S = image.shape[0]
            k = -(-S // g.shape[0])  # regions of ceil(S / grid) pixels, the last row and column cut off
            heat = np.kron(g, np.ones((k, k)))[:S, :S]
            ax.imshow(image * 0.35, interpolation="nearest")
            ax.imshow(
                heat,
                cmap="magma",
                alpha=0.65,
                vmin=0.0,
                vmax=top,
                interpolation="bilinear",
                extent=(-0.5, S - 0.5, S - 0.5, -0.5),
            )
        else:
            ax.imshow(g, cmap="magma", vmin=0.0, vmax=top, interpolation="nearest")
        ax.set_title(word, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
