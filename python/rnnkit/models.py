"""What the model packages (`rnnkit.charlm`, `rnnkit.seq2seq`) share: the cell names of their
command lines, and the BLAS thread setting their training and evaluation run under."""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from .layers import GRU, LSTM, RNN

__all__ = ["CELLS", "single_threaded_blas"]

#: The --cell choices of the model commands: "rnn" is the tanh RNN.
CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def single_threaded_blas():
    """A context in which NumPy's BLAS runs on one thread. The models' own products no longer use NumPy's
    BLAS (`rnnkit.nn.Linear` and the fused losses are native); a loop that calls NumPy matmuls of its
    own between kernel calls still wants it: NumPy's BLAS threads keep spinning after each call and then
    compete with the kernels' OpenMP threads (a char-LM or seq2seq step ran 2-3x slower that way)."""
    return threadpool_limits(limits=1, user_api="blas")
