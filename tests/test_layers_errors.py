"""Bad input to the layers: the exception type, and a message naming the argument and the expected and
actual shapes (or values)."""
import re

import numpy as np
import pytest

import rnnkit

T, B, I, H = 5, 3, 3, 4


def raises(exc, *words):
    """pytest.raises(exc) whose message must contain every one of ``words`` (literally)."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(w)})" for w in words))


# ---------------------------------------------------------------- constructor

@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(hidden_size=0), ValueError, ["hidden_size", ">= 1", "0"]),
    (dict(hidden_size=-2), ValueError, ["hidden_size", "-2"]),
    (dict(hidden_size=2.5), TypeError, ["hidden_size", "int"]),
    (dict(hidden_size=True), TypeError, ["hidden_size", "int"]),
    (dict(input_size=0), ValueError, ["input_size", "0"]),
    (dict(num_layers=0), ValueError, ["num_layers", "0"]),
    (dict(num_layers="2"), TypeError, ["num_layers"]),
    (dict(dropout=-0.1), ValueError, ["dropout", "[0, 1)"]),
    (dict(dropout=1.0), ValueError, ["dropout", "[0, 1)"]),
    (dict(dropout=float("nan")), ValueError, ["dropout"]),
    (dict(dropout="0.5"), TypeError, ["dropout"]),
    (dict(dtype=np.int32), TypeError, ["dtype", "int32"]),
    (dict(dtype=np.float16), TypeError, ["dtype", "float16"]),
    (dict(dtype="complex128"), TypeError, ["dtype", "complex128"]),
    (dict(dtype="no such dtype"), TypeError, ["dtype"]),
])
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_constructor_rejects(cls, kwargs, exc, words):
    full = dict(input_size=I, hidden_size=H, num_layers=2)
    full.update(kwargs)
    with raises(exc, *words):
        getattr(rnnkit, cls)(**full)


def test_unknown_nonlinearity():
    with raises(ValueError, "nonlinearity", "sigmoid"):
        rnnkit.RNN(I, H, nonlinearity="sigmoid")


# ---------------------------------------------------------------- forward

@pytest.fixture(params=["RNN", "LSTM", "GRU"])
def layer(request):
    return getattr(rnnkit, request.param)(I, H, num_layers=2, bidirectional=True, seed=0)


def state(m, h):
    """The state argument of ``m`` whose h (and c) is ``h``."""
    return (h, h) if isinstance(m, rnnkit.LSTM) else h


@pytest.mark.parametrize("shape, words", [
    ((I,), ["x", "ndim 1", "(3,)"]),
    ((T, B, I, 1), ["x", "ndim 4", "(5, 3, 3, 1)"]),
    ((T, B, I + 1), ["x", "(T, B, input_size)", "input_size = 3", "(5, 3, 4)"]),
    ((T, I + 2), ["x", "(T, input_size)", "(5, 5)"]),
    ((0, B, I), ["x", "(0, 3, 3)"]),
    ((T, 0, I), ["x", "(5, 0, 3)"]),
])
def test_forward_bad_x_shape(layer, shape, words):
    with raises(ValueError, *words):
        layer(np.zeros(shape))


def test_forward_bad_x_shape_batch_first_legend():
    m = rnnkit.GRU(I, H, batch_first=True)
    with raises(ValueError, "x", "(B, T, input_size)", "(3, 5, 2)"):
        m(np.zeros((B, T, I - 1)))


@pytest.mark.parametrize("x, words", [
    (np.zeros((T, B, I), np.complex128), ["x", "complex128"]),
    (np.zeros((T, B, I), bool), ["x", "bool"]),
    (np.full((T, B, I), "a"), ["x", "<U1"]),
    (np.empty((T, B, I), object), ["x", "object"]),
    ([[1.0, 2.0], [3.0]], ["x"]),
    ("abc", ["x"]),
])
def test_forward_non_numeric_x(layer, x, words):
    with raises(TypeError, *words):
        layer(x)


def test_forward_bad_hx_shape(layer):
    name = "h_0" if isinstance(layer, rnnkit.LSTM) else "hx"
    with raises(ValueError, name, "(4, 3, 4)", "(2, 3, 4)"):
        layer(np.zeros((T, B, I)), state(layer, np.zeros((2, B, H))))
    with raises(ValueError, name, "(4, 3, 4)", "(4, 3, 5)"):
        layer(np.zeros((T, B, I)), state(layer, np.zeros((4, B, H + 1))))
    with raises(ValueError, name, "unbatched", "(4, 4)", "(4, 1, 4)"):
        layer(np.zeros((T, I)), state(layer, np.zeros((4, 1, H))))


def test_forward_bad_hx_type(layer):
    name = "h_0" if isinstance(layer, rnnkit.LSTM) else "hx"
    with raises(TypeError, name, "complex"):
        layer(np.zeros((T, B, I)), state(layer, np.zeros((4, B, H), complex)))


def test_lstm_state_must_be_pair_and_c0_checked():
    m = rnnkit.LSTM(I, H)
    with raises(TypeError, "hx", "pair", "(h_0, c_0)", "ndarray"):
        m(np.zeros((T, B, I)), np.zeros((1, B, H)))
    with raises(TypeError, "hx", "pair"):
        m(np.zeros((T, B, I)), (np.zeros((1, B, H)),))
    with raises(ValueError, "c_0", "(1, 3, 4)", "(1, 3, 5)"):
        m(np.zeros((T, B, I)), (np.zeros((1, B, H)), np.zeros((1, B, H + 1))))


@pytest.mark.parametrize("lengths, exc, words", [
    ([T, T], ValueError, ["lengths", "(3,)", "(2,)"]),
    ([[T, T, T]], ValueError, ["lengths", "(3,)", "(1, 3)"]),
    ([T, 0, 1], ValueError, ["lengths", "1..5", "min 0"]),
    ([T, 6, 1], ValueError, ["lengths", "1..5", "max 6"]),
    ([5.0, 2.0, 1.0], TypeError, ["lengths", "float64"]),
])
def test_forward_bad_lengths(layer, lengths, exc, words):
    with raises(exc, *words):
        layer(np.zeros((T, B, I)), lengths=lengths)


def test_forward_bad_lengths_unbatched():
    with raises(ValueError, "lengths", "(1,)", "(2,)"):
        rnnkit.GRU(I, H)(np.zeros((T, I)), lengths=[2, 3])


# ---------------------------------------------------------------- backward

def test_backward_before_forward(layer):
    with raises(RuntimeError, "before any forward"):
        layer.backward(np.zeros((T, B, 2 * H)))


def test_backward_after_eval_forward(layer):
    layer.eval()(np.zeros((T, B, I)))
    with raises(RuntimeError, "eval"):
        layer.backward(np.zeros((T, B, 2 * H)))


def test_eval_forward_discards_earlier_training_forward(layer):
    layer(np.zeros((T, B, I)))
    layer.eval()(np.zeros((T, B, I)))
    with raises(RuntimeError, "eval"):
        layer.backward(np.zeros((T, B, 2 * H)))


def test_backward_twice(layer):
    layer(np.zeros((T, B, I)))
    layer.backward(np.zeros((T, B, 2 * H)))
    with raises(RuntimeError, "twice"):
        layer.backward(np.zeros((T, B, 2 * H)))


@pytest.mark.parametrize("batch_first, x_shape, dy_shape, words", [
    (False, (T, B, I), (T, B, H), ["dy", "(T, B, num_directions * hidden_size)", "(5, 3, 8)", "(5, 3, 4)"]),
    (True, (B, T, I), (T, B, 2 * H), ["dy", "(B, T, num_directions * hidden_size)", "(3, 5, 8)", "(5, 3, 8)"]),
    (False, (T, I), (T, 1, 2 * H), ["dy", "(T, num_directions * hidden_size)", "(5, 8)", "(5, 1, 8)"]),
    (False, (T, B, I), (T, B), ["dy", "(5, 3, 8)", "(5, 3)"]),
])
def test_backward_bad_dy(batch_first, x_shape, dy_shape, words):
    m = rnnkit.GRU(I, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    m(np.zeros(x_shape))
    with raises(ValueError, *words):
        m.backward(np.zeros(dy_shape))


def test_backward_non_numeric_dy(layer):
    layer(np.zeros((T, B, I)))
    with raises(TypeError, "dy", "complex"):
        layer.backward(np.zeros((T, B, 2 * H), complex))


def test_backward_bad_dh_n(layer):
    layer(np.zeros((T, B, I)))
    name = "dh_n"
    with raises(ValueError, name, "(4, 3, 4)", "(1, 3, 4)"):
        layer.backward(np.zeros((T, B, 2 * H)), state(layer, np.zeros((1, B, H))))


def test_backward_bad_dc_n():
    m = rnnkit.LSTM(I, H)
    m(np.zeros((T, B, I)))
    with raises(ValueError, "dc_n", "(1, 3, 4)", "(1, 3, 2)"):
        m.backward(np.zeros((T, B, H)), (np.zeros((1, B, H)), np.zeros((1, B, 2))))
    with raises(TypeError, "dh_n", "pair"):
        m.backward(np.zeros((T, B, H)), np.zeros((1, B, H)))


# ---------------------------------------------------------------- state_dict

def test_load_state_dict_missing_key(layer):
    sd = layer.state_dict()
    del sd["weight_hh_l1_reverse"]
    with raises(KeyError, "missing keys ['weight_hh_l1_reverse']"):
        layer.load_state_dict(sd)


def test_load_state_dict_unexpected_key(layer):
    sd = layer.state_dict()
    sd["weight_hr_l0"] = np.zeros((H, H))
    with raises(KeyError, "unexpected keys ['weight_hr_l0']"):
        layer.load_state_dict(sd)


def test_load_state_dict_wrong_shape_changes_nothing(layer):
    before = layer.state_dict()
    sd = {k: v + 1 for k, v in before.items()}
    G = layer.state_dict()["bias_ih_l1"].shape[0]
    sd["bias_ih_l1"] = np.zeros(G + 1)
    with raises(ValueError, "bias_ih_l1", f"({G},)", f"({G + 1},)"):
        layer.load_state_dict(sd)
    for k, v in layer.state_dict().items():  # validated before anything is copied
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_bad_values(layer):
    sd = layer.state_dict()
    sd["weight_ih_l0"] = sd["weight_ih_l0"].astype(complex)
    with raises(TypeError, "weight_ih_l0", "complex"):
        layer.load_state_dict(sd)
    with raises(TypeError, "state_dict", "mapping", "list"):
        layer.load_state_dict(list(layer.state_dict().values()))


def test_load_state_dict_no_bias_mismatch():
    with_bias = rnnkit.GRU(I, H, seed=0)
    without = rnnkit.GRU(I, H, bias=False, seed=0)
    with raises(KeyError, "unexpected keys ['bias_ih_l0', 'bias_hh_l0']"):
        without.load_state_dict(with_bias.state_dict())
    with raises(KeyError, "missing keys ['bias_ih_l0', 'bias_hh_l0']"):
        with_bias.load_state_dict(without.state_dict())


def test_failed_forward_discards_earlier_forward(layer):
    layer(np.zeros((T, B, I)))
    with pytest.raises(ValueError):
        layer(np.zeros((T, B, I + 1)))
    with raises(RuntimeError, "last forward raised"):
        layer.backward(np.zeros((T, B, 2 * H)))
