"""MUT1, MUT2, MUT3 (Jozefowicz, Zaremba and Sutskever 2015): the kernels and the NumPy reference against
a hand-written loop of the paper's equations in torch (values, and gradients by torch's autograd), the
reference against finite differences in float64, and the layers `rnnkit.MUT1/2/3`: state_dict keys and
shapes, sizes, threads, lengths, directions, single steps and bad input.

(tests/test_kernels.py runs the kernels against the reference for every cell of the registry, MUT1-3
included: sizes, threads, lengths, reverse, biases, embedded input.)
"""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import kernels as K
from rnnkit import reference as R

MUTS = ("mut1", "mut2", "mut3")
LAYERS = {"mut1": rnnkit.MUT1, "mut2": rnnkit.MUT2, "mut3": rnnkit.MUT3}


def sigm(a):
    return torch.sigmoid(a)


def torch_loop(cell, x, h0, w_ih, w_hh, b):
    """The equations as written (h_{t+1} from h_t and x_t), one step after the other, in torch."""
    H = h0.shape[1]
    W = {}
    names_ih = {"mut1": ("xz", "xr"), "mut2": ("xz", "xh"), "mut3": ("xz", "xr", "xh")}[cell]
    names_hh = {"mut1": ("hr", "hh"), "mut2": ("hz", "hr", "hh"), "mut3": ("hz", "hr", "hh")}[cell]
    for k, name in enumerate(names_ih):
        W[name] = w_ih[k * H:(k + 1) * H]
    for k, name in enumerate(names_hh):
        W[name] = w_hh[k * H:(k + 1) * H]
    b_z, b_r, b_h = b[:H], b[H:2 * H], b[2 * H:]
    h, ys = h0, []
    for x_t in x:
        if cell == "mut1":
            z = sigm(x_t @ W["xz"].T + b_z)
            r = sigm(x_t @ W["xr"].T + h @ W["hr"].T + b_r)
            h = torch.tanh((r * h) @ W["hh"].T + torch.tanh(x_t) + b_h) * z + h * (1 - z)
        elif cell == "mut2":
            z = sigm(x_t @ W["xz"].T + h @ W["hz"].T + b_z)
            r = sigm(x_t + h @ W["hr"].T + b_r)
            h = torch.tanh((r * h) @ W["hh"].T + x_t @ W["xh"].T + b_h) * z + h * (1 - z)
        else:
            z = sigm(x_t @ W["xz"].T + torch.tanh(h) @ W["hz"].T + b_z)
            r = sigm(x_t @ W["xr"].T + h @ W["hr"].T + b_r)
            h = torch.tanh((r * h) @ W["hh"].T + x_t @ W["xh"].T + b_h) * z + h * (1 - z)
        ys.append(h)
    return torch.stack(ys), h


def problem(cell, T=6, B=3, H=8, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    spec = rnnkit.CELLS[cell]
    shapes = spec.kernel_shapes(H, H)
    inp = {"x": rng.standard_normal((T, B, H)), "h0": rng.standard_normal((B, H)) * 0.5,
           "w_ih": rng.standard_normal(shapes["w_ih"]) / np.sqrt(H),
           "w_hh": rng.standard_normal(shapes["w_hh"]) / np.sqrt(H),
           "b_ih": rng.standard_normal(shapes["b_ih"]) * 0.3}
    up = {"dy": rng.standard_normal((T, B, H)), "dh_n": rng.standard_normal((B, H))}
    return {k: v.astype(dtype) for k, v in inp.items()}, {k: v.astype(dtype) for k, v in up.items()}


def torch_values_and_grads(cell, inp, up):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in inp.items()}
    y, h_n = torch_loop(cell, t["x"], t["h0"], t["w_ih"], t["w_hh"], t["b_ih"])
    loss = (y * torch.tensor(up["dy"])).sum() + (h_n * torch.tensor(up["dh_n"])).sum()
    loss.backward()
    return y.detach().numpy(), h_n.detach().numpy(), {k: v.grad.numpy() for k, v in t.items()}


GRAD_OF = {"x": "dx", "h0": "dh0", "w_ih": "dw_ih", "w_hh": "dw_hh", "b_ih": "db_ih"}


@pytest.mark.parametrize("backend", [K, R], ids=["kernels", "reference"])
@pytest.mark.parametrize("cell", MUTS)
def test_matches_the_equations_written_out_in_torch(cell, backend):
    inp, up = problem(cell, seed=len(cell) + MUTS.index(cell))
    y_t, h_t, grads_t = torch_values_and_grads(cell, inp, up)
    res = backend.forward(cell, **inp)
    np.testing.assert_allclose(res.y, y_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.h_n, h_t, rtol=1e-10, atol=1e-12)
    g = backend.backward(res.workspace, **up)
    for name, grad in grads_t.items():
        np.testing.assert_allclose(getattr(g, GRAD_OF[name]), grad, rtol=1e-9, atol=1e-11, err_msg=f"{cell} {name}")
    assert g.db_hh is None and g.dc0 is None


@pytest.mark.parametrize("cell", MUTS)
def test_reference_gradients_match_finite_differences(cell):
    inp, up = problem(cell, T=3, B=2, H=4, seed=7)
    loss = lambda a: float((R.forward(cell, **a, training=False).y * up["dy"]).sum()  # noqa: E731
                           + (R.forward(cell, **a, training=False).h_n * up["dh_n"]).sum())
    g = R.backward(R.forward(cell, **inp).workspace, **up)
    eps = 1e-6
    for name in inp:
        flat = inp[name].reshape(-1)
        for i in range(0, flat.size, max(1, flat.size // 7)):
            plus, minus = {k: v.copy() for k, v in inp.items()}, {k: v.copy() for k, v in inp.items()}
            plus[name].reshape(-1)[i] += eps
            minus[name].reshape(-1)[i] -= eps
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            analytic = getattr(g, GRAD_OF[name]).reshape(-1)[i]
            assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric)), (cell, name, i, numeric, analytic)


@pytest.mark.parametrize("cell", MUTS)
def test_step_is_one_step_of_forward(cell):
    inp, _ = problem(cell, T=1, B=2, H=16, dtype=np.float32)
    h, c = K.step(cell, inp["x"][0], inp["h0"], inp["w_ih"], inp["w_hh"], inp["b_ih"])
    assert c is None
    np.testing.assert_allclose(h, K.forward(cell, **inp, training=False).h_n, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h, R.step(cell, inp["x"][0], inp["h0"], inp["w_ih"], inp["w_hh"], inp["b_ih"])[0],
                               rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------ layers


@pytest.mark.parametrize("cell", MUTS)
def test_state_dict_keys_and_shapes(cell):
    H, I = 5, 5 if cell != "mut3" else 3
    m = LAYERS[cell](I, H, num_layers=2, bidirectional=cell == "mut3", seed=0)
    ih = {"mut1": 2, "mut2": 2, "mut3": 3}[cell]
    hh = {"mut1": 2, "mut2": 3, "mut3": 3}[cell]
    D = 2 if cell == "mut3" else 1
    expected = {}
    for k in range(2):
        for sfx in ([""] if D == 1 else ["", "_reverse"]):
            expected[f"weight_ih_l{k}{sfx}"] = (ih * H, I if k == 0 else D * H)
            expected[f"weight_hh_l{k}{sfx}"] = (hh * H, H)
            expected[f"bias_l{k}{sfx}"] = (3 * H,)
    assert {k: v.shape for k, v in m.state_dict().items()} == expected
    assert list(m.state_dict()) == list(expected)
    bound = 1 / np.sqrt(H)
    assert all(np.abs(v).max() <= bound for v in m.state_dict().values())
    assert not LAYERS[cell](I, H, bias=False).state_dict().keys() & {"bias_l0"}


@pytest.mark.parametrize("cell", ("mut1", "mut2"))
def test_input_size_must_equal_hidden_where_x_enters_directly(cell):
    with pytest.raises(ValueError, match=r"(?s)layer 0.*input_size = 3.*hidden_size = 5"):
        LAYERS[cell](3, 5)
    with pytest.raises(ValueError, match=r"(?s)layer 1.*10.*hidden_size = 5"):
        LAYERS[cell](5, 5, num_layers=2, bidirectional=True)
    LAYERS[cell](5, 5, num_layers=3)  # unidirectional stacks keep every input at H
    LAYERS[cell](5, 5, bidirectional=True)
    with pytest.raises(ValueError, match="input size must equal the hidden size"):
        inp, _ = problem(cell, H=4)
        K.forward(cell, **dict(inp, x=inp["x"][:, :, :3], w_ih=inp["w_ih"][:, :3]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", MUTS)
def test_layer_matches_reference_backend(cell, dtype):
    """Stacks of 1-3 layers, both directions where the cell allows, lengths, batch_first: the layer on the
    kernels against the same layer on the reference, forward and backward."""
    rng = np.random.default_rng(3)
    H, T, B = 12, 7, 4
    for layers, bidirectional in ((1, True), (2, False), (3, cell == "mut3")):
        m = LAYERS[cell](H, H, num_layers=layers, bidirectional=bidirectional, batch_first=True, dtype=dtype, seed=1)
        ref = LAYERS[cell](H, H, num_layers=layers, bidirectional=bidirectional, batch_first=True, dtype=np.float64,
                           seed=1)
        ref._backend = R
        ref.load_state_dict(m.state_dict())
        x = rng.standard_normal((B, T, H))
        lengths = np.array([7, 1, 4, 6])
        y, h = m.forward(x, lengths=lengths)
        y_r, h_r = ref.forward(x, lengths=lengths)
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(y, y_r, **tol)
        np.testing.assert_allclose(h, h_r, **tol)
        dy = rng.standard_normal(y.shape)
        dx, dh0 = m.backward(dy, np.ones_like(h))
        dx_r, dh0_r = ref.backward(dy, np.ones_like(h))
        np.testing.assert_allclose(dx, dx_r, **tol)
        np.testing.assert_allclose(dh0, dh0_r, **tol)
        for k in m.grads:
            np.testing.assert_allclose(m.grads[k], ref.grads[k], err_msg=k, **tol)


@pytest.mark.parametrize("cell", MUTS)
def test_one_and_two_threads_agree(cell):
    m = LAYERS[cell](64, 64, num_layers=2, seed=2)
    x = np.random.default_rng(0).standard_normal((5, 32, 64)).astype(np.float32)
    lengths = np.arange(32) % 5 + 1
    before = rnnkit.get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            rnnkit.set_num_threads(n)
            m.zero_grad()
            y, h = m.forward(x, lengths=lengths)
            dx, dh = m.backward(np.ones_like(y))
            out[n] = (y, h, dx, dh, {k: v.copy() for k, v in m.grads.items()})
    finally:
        rnnkit.set_num_threads(before)
    for a, b in zip(out[1][:4], out[2][:4]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for k in out[1][4]:
        np.testing.assert_allclose(out[1][4][k], out[2][4][k], rtol=1e-4, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("cell", MUTS)
def test_embedded_input_equals_gathered_input(cell):
    rng = np.random.default_rng(5)
    table = rng.standard_normal((9, 16)).astype(np.float32)
    ids = rng.integers(0, 9, (6, 3))
    m = LAYERS[cell](16, 16, seed=4)
    y, h = m.forward(table, ids=ids, lengths=[6, 2, 4])
    dtable, _ = m.backward(np.ones_like(y))
    grads = {k: v.copy() for k, v in m.grads.items()}
    m.zero_grad()
    y2, h2 = m.forward(table[ids], lengths=[6, 2, 4])
    dx, _ = m.backward(np.ones_like(y2))
    np.testing.assert_allclose(y, y2, rtol=1e-6, atol=1e-6)
    expected = np.zeros_like(table)
    np.add.at(expected, ids.reshape(-1), dx.reshape(-1, 16))
    np.testing.assert_allclose(dtable, expected, rtol=1e-4, atol=1e-5)
    for k in grads:
        np.testing.assert_allclose(grads[k], m.grads[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_bad_input_is_a_clear_error():
    inp, up = problem("mut2", H=4)
    with pytest.raises(ValueError, match="b_hh must be None"):
        K.forward("mut2", **inp, b_hh=inp["b_ih"])
    with pytest.raises(ValueError, match=r"b_ih must have shape \(12,\)"):
        K.forward("mut2", **dict(inp, b_ih=inp["b_ih"][:8]))
    with pytest.raises(ValueError, match=r"w_hh must have shape \(12, 4\)"):
        K.forward("mut2", **dict(inp, w_hh=inp["w_hh"][:8]))
    with pytest.raises(ValueError, match="c0 is only for"):
        K.forward("mut2", **inp, c0=inp["h0"])
    with pytest.raises(ValueError, match="projection gradient"):
        K.backward(K.forward("mut2", **inp).workspace, **up, projection_grad=True)
    with pytest.raises(ValueError, match="cell must be one of"):
        K.forward("mut4", **inp)
    with pytest.raises(ValueError):
        rnnkit.MUT3(4, 4).forward(np.zeros((3, 2, 5)))


@pytest.mark.parametrize("cell", MUTS)
def test_mode_is_a_deprecated_alias_of_cell(cell):
    inp, _ = problem(cell, T=2, B=1, H=4)
    with pytest.warns(DeprecationWarning):
        old = K.forward(mode=cell, **inp, training=False)
    np.testing.assert_array_equal(old.y, K.forward(cell, **inp, training=False).y)


# ------------------------------------------------------------------------------------- the models


@pytest.mark.parametrize("cell", MUTS)
def test_charlm_trains_samples_and_scores_with_each_mut(cell, one_thread):
    from rnnkit.charlm.model import CharLM
    from rnnkit.charlm.vocab import Vocab
    from rnnkit.optim import Adam

    m = CharLM(Vocab.from_text("hello world"), cell, layers=2, hidden=16, embed=16, seed=0)
    assert "rnn.bias_l1" in m.params and m.initial_state(2)[1] is None
    ids = np.array([m.vocab.encode("hello world hello")]).T
    opt = Adam(m.params, lr=0.02)
    first = None
    for _ in range(60):
        m.zero_grad()
        loss, _ = m.loss_and_grad(ids[:-1], ids[1:], m.initial_state(1))
        first = loss if first is None else first
        opt.step(m.grads)
    assert loss < 0.5 * first
    assert len(m.sample(20, 0.8, prime="h", seed=1)) == 21
    # The C++ sampler's scoring steps the same model as the layer's forward (float32 storage).
    text = "hello world"
    m.rnn.eval()
    nll = m.evaluate_as_sampled(text)
    logits, _ = m.logits(np.array([m.vocab.encode(text)]).T[:-1], m.initial_state(1))
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
    expected = -logp[np.arange(len(text) - 1), m.vocab.encode(text)[1:]].mean() / np.log(2)
    assert abs(nll - expected) < 1e-4


def test_charlm_cli_names_the_embedding_fix(tmp_path, capsys):
    from rnnkit.cli import main as cli

    text = tmp_path / "t.txt"
    text.write_text("abcabcabd " * 200)
    assert cli(["train-charlm", "--text", str(text), "--cell", "mut1", "--hidden", "16", "--embed", "8", "--steps",
                "1", "--out", str(tmp_path / "o"), "--no-progress"]) != 0
    assert "--embed 16" in capsys.readouterr().err
    assert cli(["train-charlm", "--text", str(text), "--cell", "mut2", "--hidden", "16", "--embed", "16", "--layers",
                "1", "--steps", "20", "--seq-len", "16", "--batch", "4", "--eval-every", "10", "--out",
                str(tmp_path / "o"), "--no-progress", "--threads", "1"]) == 0
    assert cli(["sample", str(tmp_path / "o"), "--length", "10"]) == 0


def test_seq2seq_cli_trains_and_decodes_with_mut3(tmp_path, one_thread):
    from rnnkit.cli import main as cli

    out = str(tmp_path / "rev")
    assert cli(["train-seq2seq", "--task", "reverse", "--min-len", "2", "--max-len", "4", "--alphabet", "abcde",
                "--train-size", "200", "--val-size", "20", "--test-size", "20", "--cell", "mut3", "--steps", "20",
                "--eval-every", "10", "--out", out, "--hidden", "16", "--embed", "16", "--batch", "16",
                "--threads", "1", "--no-progress"]) == 0
    assert cli(["translate", out, "abca", "--beam", "2"]) == 0
