"""curve.png: training and validation loss against step (`rnnkit.plotting.plot_curve`, shared with the
other training commands)."""

from ..plotting import plot_curve

__all__ = ["plot_curve"]
