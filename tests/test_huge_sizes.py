"""Sizes beyond what the kernels index (int, and a BLAS with 32-bit integers) are refused with a
ValueError naming them, before anything is allocated; sizes beyond memory give MemoryError or
ValueError, never a crash. The arrays here have a zero-length axis, so they hold no data however large
their other axes are: nothing big is allocated by these tests."""
import numpy as np
import pytest

import rnnkit
from rnnkit import _C, kernels
from rnnkit.nn import Linear

BIG = 2 ** 31  # one past the kernels' largest size


def _empty(*shape):
    return np.zeros(shape, np.float32)  # one axis is zero: no data


@pytest.mark.parametrize("mode", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("T, B, word", [(BIG, 1, "T=2147483648"), (2 ** 16, 2 ** 15, "T*B=2147483648")])
def test_sequence_sizes_past_int_are_refused_before_allocation(mode, T, B, word):
    """x (T, B, 0) holds nothing; y (T, B, 1) would be 8 GiB: the check comes before it."""
    G = rnnkit.num_gates(mode)
    h0 = np.zeros((B, 1), np.float32)
    args = dict(c0=h0) if mode == "lstm" else {}
    with pytest.raises(ValueError, match=word.replace("*", r"\*")):
        kernels.forward(mode, _empty(T, B, 0), h0, _empty(G, 0), _empty(G, 1), **args)


def test_linear_rows_past_int_are_refused_before_allocation():
    with pytest.raises(ValueError, match="N=2147483648"):
        _C.linear_forward(_empty(BIG, 0), _empty(3, 0), None)


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
@pytest.mark.parametrize("size", [10 ** 6, BIG, 2 ** 62])
def test_layers_too_large_for_memory_raise_before_allocating(cls, size):
    """Weights of (G*H, H) with H = 10^6 need terabytes: MemoryError (or NumPy's ValueError for a size
    past its index range) at once, nothing written."""
    with pytest.raises((MemoryError, ValueError)):
        cls(8, size)


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "8"])
def test_linear_rejects_sizes_that_are_not_positive_ints(n):
    with pytest.raises(ValueError, match="features must be a positive int"):
        Linear(n, 4)
    with pytest.raises(ValueError, match="features must be a positive int"):
        Linear(4, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_sizes_past_int_are_refused_before_allocation(dtype):
    """x (2^31, 1, 0) holds nothing: the steps, which index holds as int32, are refused by name."""
    with pytest.raises(ValueError, match="T=2147483648"):
        _C.pool_forward(2, np.zeros((BIG, 1, 0), dtype), None, 0)
    with pytest.raises(ValueError, match="F=2147483648"):
        _C.pool_forward(1, np.zeros((0, 1, BIG), dtype), None, 0)


@pytest.mark.parametrize("steps", [0, -1, -(2 ** 31)])
def test_pooling_backward_refuses_steps_below_one_before_allocating(steps):
    with pytest.raises(ValueError, match=f"T={steps}"):
        _C.pool_backward(1, steps, None, None, np.ones((2, 3), np.float32))


def test_pooling_backward_too_large_for_memory_raises_before_writing():
    """dx (2^31-1, 2^14, 2^10) would be 128 TiB of float32."""
    with pytest.raises((MemoryError, ValueError)):
        _C.pool_backward(1, 2 ** 31 - 1, None, None, np.ones((2 ** 14, 2 ** 10), np.float32))
