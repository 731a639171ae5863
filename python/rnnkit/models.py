"""What the model packages (`rnnkit.charlm`, `rnnkit.seq2seq`) share: the cell names of their
command lines, and the BLAS thread setting their training and evaluation run under."""
from __future__ import annotations

from threadpoolctl import threadpool_limits

from .layers import GRU, LSTM, RNN

__all__ = ["CELLS", "single_threaded_blas"]

#: The --cell choices of the model commands: "rnn" is the tanh RNN.
CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def single_threaded_blas():
    """A context in which NumPy's BLAS runs on one thread. The models' GEMMs (output layer, its
    gradients) are small; with NumPy's BLAS threads they run up to 10x slower, and worse on a loaded
    machine, where its spinning threads also compete with the recurrent kernels' OpenMP threads."""
    return threadpool_limits(limits=1, user_api="blas")
