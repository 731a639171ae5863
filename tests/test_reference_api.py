"""The reference's contract beyond the maths: bad input, inference mode, dtypes, step, fresh results."""
import numpy as np
import pytest

from rnnkit import CELLS, _types
from rnnkit.reference import MODES, backward, forward, num_gates, step

T, B, I, H = 4, 3, 2, 5


def make_args(mode="lstm", dtype=np.float64, seed=0):
    """The cell's shapes (its registry entry); a cell that reads x directly gets I = H."""
    rng = np.random.default_rng(seed)
    spec = CELLS.get(mode, CELLS["lstm"])
    shapes = spec.kernel_shapes(H if spec.raw_input else I, H)
    args = {"mode": mode, "x": rng.standard_normal((T, B, shapes["w_ih"][1])).astype(dtype),
            "h0": rng.standard_normal((B, H)).astype(dtype)}
    args.update((k, rng.standard_normal(v).astype(dtype)) for k, v in shapes.items())
    if "b_hh" not in shapes:
        args["b_hh"] = None
    return args


def test_reexports_the_shared_modes():
    assert MODES is _types.MODES
    assert [num_gates(m) for m in MODES] == [1, 1, 4, 3, 3, 2, 2, 3]  # row blocks of w_ih


# --- bad input ------------------------------------------------------------------------------------

def with_changes(**changes):
    args = make_args()
    args.update(changes)
    return args


BAD_FORWARD = [
    ("unknown mode", with_changes(mode="lstmx"), ValueError, "must be one of"),
    ("x 2-D", with_changes(x=np.zeros((B, I))), ValueError, "x must have shape (T, B, input_size)"),
    ("x not an array", with_changes(x=[[[0.0] * I] * B] * T), TypeError, "x must be a numpy.ndarray"),
    ("x int", with_changes(x=np.zeros((T, B, I), np.int64)), TypeError, "x must be float32 or float64"),
    ("x empty time", with_changes(x=np.zeros((0, B, I))), ValueError, "at least one step"),
    ("w_ih rows", with_changes(w_ih=np.zeros((3 * H, I))), ValueError, f"w_ih must have shape ({4 * H}, {I})"),
    ("w_ih cols", with_changes(w_ih=np.zeros((4 * H, I + 1))), ValueError, "w_ih must have shape"),
    ("w_hh 1-D", with_changes(w_hh=np.zeros(4 * H)), ValueError, "w_hh must be a 2-D array"),
    ("w_hh rows", with_changes(w_hh=np.zeros((3 * H, H))), ValueError, f"w_hh must have shape ({4 * H}, {H})"),
    ("h0 shape", with_changes(h0=np.zeros((B + 1, H))), ValueError, f"h0 must have shape ({B}, {H})"),
    ("h0 dtype", with_changes(h0=np.zeros((B, H), np.float32)), TypeError, "h0 must have dtype float64"),
    ("w_hh int", with_changes(w_hh=np.zeros((4 * H, H), np.int32)), TypeError, "w_hh must have dtype float64"),
    ("b_ih only", with_changes(b_hh=None), ValueError, "both be given or both be None"),
    ("b_hh shape", with_changes(b_hh=np.zeros(H)), ValueError, f"b_hh must have shape ({4 * H},)"),
    ("b_ih dtype", with_changes(b_ih=np.zeros(4 * H, np.float32)), TypeError, "b_ih must have dtype"),
    ("c0 shape", with_changes(c0=np.zeros((B, H + 1))), ValueError, "c0 must have shape"),
    ("c0 for gru", dict(make_args("gru"), c0=np.zeros((B, H))), ValueError, "c0 is only for a cell with a cell state (lstm)"),
    ("length 0", with_changes(lengths=np.array([1, 0, 2])), ValueError, f"lengths must lie in 1..{T}"),
    ("length > T", with_changes(lengths=np.array([1, T + 1, 2])), ValueError, f"lengths must lie in 1..{T}"),
    ("lengths count", with_changes(lengths=np.array([1, 2])), ValueError, "one per batch element"),
    ("lengths float", with_changes(lengths=np.array([1.0, 2.0, 3.0])), TypeError, "lengths must hold integers"),
]


@pytest.mark.parametrize("args, error, message", [case[1:] for case in BAD_FORWARD],
                         ids=[case[0] for case in BAD_FORWARD])
def test_forward_rejects_bad_input(args, error, message):
    with pytest.raises(error) as info:
        forward(**args)
    assert message in str(info.value)


def test_backward_after_inference_forward_raises():
    out = forward(**make_args(), training=False)
    assert out.workspace is None
    with pytest.raises(RuntimeError, match="backward needs a training-mode forward"):
        backward(out.workspace, np.zeros((T, B, H)))


def test_backward_rejects_a_foreign_workspace():
    with pytest.raises(TypeError, match="workspace must come from rnnkit.reference.forward"):
        backward(object(), np.zeros((T, B, H)))


@pytest.mark.parametrize("mode, upstream, error, message", [
    ("lstm", {"dy": np.zeros((T, B, H + 1))}, ValueError, f"dy must have shape ({T}, {B}, {H})"),
    ("lstm", {"dy": np.zeros((T, B, H), np.float32)}, TypeError, "dy must have dtype float64"),
    ("lstm", {"dy": np.zeros((T, B, H)), "dh_n": np.zeros((H, B))}, ValueError, "dh_n must have shape"),
    ("lstm", {"dy": np.zeros((T, B, H)), "dc_n": np.zeros((B, H), np.int64)}, TypeError, "dc_n must have dtype"),
    ("gru", {"dy": np.zeros((T, B, H)), "dc_n": np.zeros((B, H))}, ValueError, "dc_n is only for a cell with a cell state (lstm)"),
], ids=["dy shape", "dy dtype", "dh_n shape", "dc_n int", "dc_n for gru"])
def test_backward_rejects_bad_input(mode, upstream, error, message):
    workspace = forward(**make_args(mode)).workspace
    with pytest.raises(error) as info:
        backward(workspace, **upstream)
    assert message in str(info.value)


@pytest.mark.parametrize("mode, changes, error, message", [
    ("lstm", {"x": np.zeros((T, B, I))}, ValueError, "x must have shape (B, input_size) for one step"),
    ("lstm", {"x": [[0.0] * I] * B}, TypeError, "x must be a numpy.ndarray"),
    ("lstm", {"x": np.zeros((B, I), np.int32)}, TypeError, "x must be float32 or float64"),
    ("lstm", {"h": np.zeros((B, H), np.float32)}, TypeError, "must have dtype float64"),
    ("lstm", {"h": np.zeros((B, H + 1))}, ValueError, f"must have shape ({B}, {H})"),
    ("lstm", {"w_ih": np.zeros((4 * H, I + 1))}, ValueError, "w_ih must have shape"),
    ("gru", {"c": np.zeros((B, H))}, ValueError, "only for a cell with a cell state (lstm)"),
    ("nope", {}, ValueError, "must be one of"),
], ids=["x 3-D", "x list", "x int", "h dtype", "h shape", "w_ih shape", "c for gru", "unknown mode"])
def test_step_rejects_bad_input(mode, changes, error, message):
    args = make_args("lstm" if mode == "nope" else mode)
    call = {"x": args["x"][0], "h": args["h0"], "w_ih": args["w_ih"], "w_hh": args["w_hh"],
            "b_ih": args["b_ih"], "b_hh": args["b_hh"]}
    call.update(changes)
    with pytest.raises(error) as info:
        step(mode, **call)
    assert message in str(info.value)


# --- behaviour ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_steps_reproduce_the_sequence_forward(mode):
    args = make_args(mode)
    c0 = np.random.default_rng(3).standard_normal((B, H)) if mode == "lstm" else None
    out = forward(**args, c0=c0, training=False)
    h, c = args["h0"], c0
    for t in range(T):
        h, c = step(mode, args["x"][t], h, args["w_ih"], args["w_hh"], args["b_ih"], args["b_hh"], c=c)
        np.testing.assert_allclose(h, out.y[t], rtol=0, atol=1e-14)
    np.testing.assert_allclose(h, out.h_n, rtol=0, atol=1e-14)
    if mode == "lstm":
        np.testing.assert_allclose(c, out.c_n, rtol=0, atol=1e-14)
    else:
        assert c is None and out.c_n is None


@pytest.mark.parametrize("mode", MODES)
def test_float32_stays_float32_and_agrees_with_float64(mode):
    args64, args32 = make_args(mode), make_args(mode, np.float32)
    dy = np.random.default_rng(4).standard_normal((T, B, H))
    out64, out32 = forward(**args64), forward(**args32)
    grads64 = backward(out64.workspace, dy)
    grads32 = backward(out32.workspace, dy.astype(np.float32))
    for a32, a64 in [(out32.y, out64.y), (out32.h_n, out64.h_n), *zip(grads32, grads64)]:
        if a64 is None:
            assert a32 is None
            continue
        assert a32.dtype == np.float32
        np.testing.assert_allclose(a32, a64, rtol=1e-3, atol=1e-4)
    h, _ = step(mode, args32["x"][0], args32["h0"], args32["w_ih"], args32["w_hh"], args32["b_ih"], args32["b_hh"])
    assert h.dtype == np.float32


def test_results_are_fresh_and_backward_does_not_accumulate():
    args = make_args("lstm")
    out = forward(**args)
    assert not np.shares_memory(out.h_n, args["h0"])
    dy = np.ones((T, B, H))
    first = backward(out.workspace, dy)
    second = backward(out.workspace, dy)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(a, b)
    assert not np.shares_memory(first.db_ih, first.db_hh)


@pytest.mark.parametrize("mode", MODES)
def test_no_final_state_gradient_means_zero(mode):
    out = forward(**make_args(mode))
    dy = np.random.default_rng(5).standard_normal((T, B, H))
    implicit = backward(out.workspace, dy)
    explicit = backward(out.workspace, dy, np.zeros((B, H)), np.zeros((B, H)) if mode == "lstm" else None)
    for a, b in zip(implicit, explicit):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", MODES)
def test_lengths_freeze_state_and_zero_the_padding(mode):
    args = make_args(mode)
    lengths = np.array([2, T, 1])
    fwd = forward(**args, lengths=lengths, training=False)
    rev = forward(**args, lengths=lengths, reverse=True, training=False)
    for b, n in enumerate(lengths):
        assert np.all(fwd.y[n:, b] == 0) and np.all(rev.y[n:, b] == 0)
        np.testing.assert_array_equal(fwd.h_n[b], fwd.y[n - 1, b])  # last valid step going forward
        np.testing.assert_array_equal(rev.h_n[b], rev.y[0, b])  # reverse ends at t = 0
        # A row's result is that of running its own valid prefix alone, in either direction.
        alone = dict(args, x=args["x"][:n, b:b + 1], h0=args["h0"][b:b + 1])
        np.testing.assert_allclose(forward(**alone).y[:, 0], fwd.y[:n, b], rtol=0, atol=1e-14)
        np.testing.assert_allclose(forward(**alone, reverse=True).y[:, 0], rev.y[:n, b], rtol=0, atol=1e-14)


@pytest.mark.parametrize("mode", MODES)
def test_reverse_is_forward_over_the_flipped_sequence(mode):
    args = make_args(mode)
    rev = forward(**args, reverse=True, training=False)
    flipped = forward(**dict(args, x=args["x"][::-1]), training=False)
    np.testing.assert_allclose(rev.y, flipped.y[::-1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(rev.h_n, flipped.h_n, rtol=0, atol=1e-14)
