"""What the model packages (`rnnkit.charlm`, `rnnkit.seq2seq`) share: the cell names of their
command lines, and the BLAS thread setting their training and evaluation run under."""
from __future__ import annotations

from threadpoolctl import threadpool_limits

from .layers import LAYER_CLASSES

__all__ = ["LAYER_CLASSES", "layer_class", "check_input_width", "single_threaded_blas"]


def layer_class(cell: str) -> type:
    """The layer class of a --cell choice (a key of LAYER_CLASSES: "rnn" is the tanh RNN); ValueError
    naming the choices otherwise."""
    try:
        return LAYER_CLASSES[cell]
    except (KeyError, TypeError):
        raise ValueError(f"cell must be one of {', '.join(LAYER_CLASSES)}, got {cell!r}") from None


def check_input_width(cell: str, embed: int, hidden: int, embed_option: str = "--embed") -> None:
    """A cell that reads its input directly (MUT1, MUT2) needs an embedding as wide as its state: a
    ValueError that names the fix (``--embed`` = ``--hidden``) instead of the layer's sizes."""
    spec = layer_class(cell)(1, 1).spec
    if spec.raw_input and embed != hidden:
        raise ValueError(f"{cell} adds its input x itself to a gate, so the embedding must be as wide as the hidden "
                         f"state: use {embed_option} {hidden} (= --hidden), got {embed_option} {embed}")


def single_threaded_blas():
    """A context in which NumPy's BLAS runs on one thread. The models' own products no longer use NumPy's
    BLAS (`rnnkit.nn.Linear` and the fused losses are native); a loop that calls NumPy matmuls of its
    own between kernel calls still wants it: NumPy's BLAS threads keep spinning after each call and then
    compete with the kernels' OpenMP threads (a char-LM or seq2seq step ran 2-3x slower that way)."""
    return threadpool_limits(limits=1, user_api="blas")
