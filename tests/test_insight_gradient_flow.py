"""rnnkit gradient-flow: dL/dh_t from the kernels' backward against an explicit product of step Jacobians
(tanh RNN), PyTorch autograd and finite differences (LSTM, GRU); the clipping factor against
torch.nn.utils.clip_grad_norm_; the curves' physics in the linear regime; the command."""
import json

import numpy as np
import pytest
import torch

from rnnkit import kernels
from rnnkit.charlm import CharLM, Vocab
from rnnkit.cli import main as cli
from rnnkit.insight.gradient_flow import (CLIP_NORM, charlm_curves, clip_coefficients, grad_norm_curve, orthogonal,
                                          standard_curves, state_gradients)

pytestmark = pytest.mark.usefixtures("one_thread")


def weights(mode, I, H, rng, scale=0.5):
    G = kernels.num_gates(mode)
    return [scale * rng.standard_normal(s) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]


def test_rnn_state_gradients_are_the_product_of_step_jacobians():
    rng = np.random.default_rng(1)
    T, B, I, H = 7, 3, 4, 5
    x, h0, v = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w_ih, w_hh, b_ih, b_hh = weights("rnn_tanh", I, H, rng)
    got = state_gradients("rnn_tanh", x, w_ih, w_hh, b_ih, b_hh, v, h0=h0)
    hs = [h0]
    for t in range(T):
        hs.append(np.tanh(x[t] @ w_ih.T + b_ih + hs[-1] @ w_hh.T + b_hh))
    for t in range(T + 1):
        # dL/dh_t = J_{t+1}^T ... J_T^T v with J_s = dh_s/dh_{s-1} = diag(1 - h_s^2) W_hh, per sequence
        for b in range(B):
            g = v[b]
            for s in range(T, t, -1):
                J = np.diag(1 - hs[s][b] ** 2) @ w_hh
                g = J.T @ g
            np.testing.assert_allclose(got[t, b], g, rtol=1e-12, atol=1e-14)


def torch_state_gradients(mode, x, w, v, h0, c0):
    """dL/dh_t by autograd, stepping torch's own LSTM/GRU one step at a time."""
    T, B, I = x.shape
    H = h0.shape[1]
    cls = torch.nn.LSTM if mode == "lstm" else torch.nn.GRU
    net = cls(I, H).double()
    with torch.no_grad():
        for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), w):
            getattr(net, name).copy_(torch.from_numpy(value))
    h = torch.tensor(h0[None], requires_grad=True)
    c = torch.tensor(c0[None]) if mode == "lstm" else None
    hs = [h]
    for t in range(T):
        xt = torch.from_numpy(x[t:t + 1])
        if mode == "lstm":
            _, (h, c) = net(xt, (h, c))
        else:
            _, h = net(xt, h)
        h.retain_grad()
        hs.append(h)
    (torch.from_numpy(v)[None] * h).sum().backward()
    return np.stack([hh.grad[0].numpy() for hh in hs])


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_lstm_and_gru_state_gradients_match_torch_and_finite_differences(mode):
    rng = np.random.default_rng(2)
    T, B, I, H = 6, 2, 3, 4
    x, h0, v = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    c0 = rng.standard_normal((B, H)) if mode == "lstm" else None
    w = weights(mode, I, H, rng)
    got = state_gradients(mode, x, *w, v, h0=h0, c0=c0)
    ref = torch_state_gradients(mode, x, w, v, h0, c0 if c0 is not None else h0)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    # Finite differences: L as a function of h_t alone (c_t held), through the remaining steps.
    run = kernels.forward(mode, x, h0, *w, c0=c0)
    hs, cs = run.workspace.states()
    t, eps = 2, 1e-6
    for j in range(H):
        loss = []
        for sign in (1, -1):
            h_t = hs[t].copy()
            h_t[:, j] += sign * eps
            end = kernels.forward(mode, x[t:], h_t, *w, c0=None if cs is None else cs[t], training=False)
            loss.append(np.sum(v * end.h_n))
        np.testing.assert_allclose(got[t, :, j].sum(), (loss[0] - loss[1]) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_clip_coefficient_is_torchs_global_norm_clipping():
    rng = np.random.default_rng(3)
    T, B, I, H = 8, 3, 4, 5
    x, v = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    v[0] *= 100  # a loss whose gradient is clipped
    v[1] *= 0.01  # and one whose gradient is not
    w = weights("rnn_tanh", I, H, rng)
    coef = clip_coefficients("rnn_tanh", x, *w, v)
    net = torch.nn.RNN(I, H).double()
    with torch.no_grad():
        for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), w):
            getattr(net, name).copy_(torch.from_numpy(value))
    clipped = 0
    for b in range(B):
        net.zero_grad()
        _, h = net(torch.from_numpy(x[:, b:b + 1]))
        (torch.from_numpy(v[b]) * h[0, 0]).sum().backward()
        total = float(torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP_NORM))
        assert coef[b] == pytest.approx(min(1.0, CLIP_NORM / total), rel=1e-10)
        clipped += total > CLIP_NORM
    assert 0 < clipped < B  # clipping acts on some sequences and not on others


def test_curves_follow_the_singular_values_in_the_linear_regime():
    T = 30
    curves = standard_curves(steps=T, hidden=16, samples=3, input_scale=1e-3)
    assert set(curves) == {"rnn sigma=0.9", "rnn sigma=1.0", "rnn sigma=1.1", "rnn sigma=1.1, clipped at 5",
                           "lstm forget bias 0", "lstm forget bias 1", "gru"}
    for name, c in curves.items():
        assert list(c.distance) == list(range(T + 1)) and len(c.grad_norm) == T + 1
        if "clipped" not in name:
            assert c.grad_norm[0] == pytest.approx(1.0, rel=1e-6)
    # Tiny inputs keep tanh near its linear part, where W_hh = sigma * orthogonal scales |dL/dh| by sigma a step.
    for sigma in (0.9, 1.0, 1.1):
        np.testing.assert_allclose(curves[f"rnn sigma={sigma:.1f}"].grad_norm, sigma ** np.arange(T + 1), rtol=0.02)
    assert curves["lstm forget bias 1"].grad_norm[T] > 100 * curves["lstm forget bias 0"].grad_norm[T]
    clipped = curves["rnn sigma=1.1, clipped at 5"].grad_norm / curves["rnn sigma=1.1"].grad_norm
    assert np.all(clipped <= 1 + 1e-12)
    with pytest.raises(ValueError, match="unknown cell 'mut1'"):
        standard_curves(["rnn", "mut1"])


def test_orthogonal_and_grad_norm_curve():
    q = orthogonal(7, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.svd(q, compute_uv=False), np.ones(7), atol=1e-12)
    grads = np.zeros((4, 2, 3))
    grads[:, 0, 0] = [1, 2, 3, 4]  # t = 0..3: distance 3..0
    grads[:, 1, 1] = [3, 2, 1, 0]
    c = grad_norm_curve(grads, scale=np.array([1.0, 0.5]))
    np.testing.assert_allclose(c.grad_norm, [(4 + 0) / 2, (3 + 0.5) / 2, (2 + 1) / 2, (1 + 1.5) / 2])


TEXT = "def f(x):\n    return (x + 1) * 2  # twice\n" * 30


def tiny_model(cell="lstm"):
    return CharLM(Vocab.from_text(TEXT), cell, layers=2, hidden=6, embed=4, seed=0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_charlm_curves_one_per_layer(cell):
    curves = charlm_curves(tiny_model(cell), TEXT, steps=12, samples=2)
    assert list(curves) == [f"char-LM layer {k} ({cell} 2x6, trained)" for k in range(2)]
    for c in curves.values():
        assert len(c.grad_norm) == 13 and c.grad_norm[0] == pytest.approx(1.0, rel=1e-5)
        assert np.all(np.isfinite(c.grad_norm))
    with pytest.raises(ValueError, match="at least"):
        charlm_curves(tiny_model(cell), TEXT[:100], steps=12)


def bad(capsys, argv):
    try:
        code = cli(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_gradient_flow_command(tmp_path, capsys):
    model, text, png = tmp_path / "m", tmp_path / "t.py", tmp_path / "g.png"
    tiny_model().save(str(model))
    text.write_text(TEXT)
    argv = ["gradient-flow", "--cells", "rnn,gru", "--steps", "9", "--hidden", "8", "--samples", "2",
            "--from", str(model), "--text", str(text), "--out", str(png), "--no-progress"]
    assert cli(argv + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"rnn sigma=0.9", "rnn sigma=1.0", "rnn sigma=1.1", "rnn sigma=1.1, clipped at 5", "gru",
                      "char-LM layer 0 (lstm 2x6, trained)", "char-LM layer 1 (lstm 2x6, trained)"}
    for curve in d.values():
        assert curve["distance"] == list(range(10)) and len(curve["grad_norm"]) == 10
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "rnn sigma=1.1, clipped at 5" in out and "d=9" in out


def test_gradient_flow_bad_input(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("abc")
    model = tmp_path / "m"
    tiny_model().save(str(model))
    assert "unknown cell 'mut9'" in bad(capsys, ["gradient-flow", "--cells", "rnn,mut9"])
    assert "--steps" in bad(capsys, ["gradient-flow", "--steps", "0"])
    assert "not a directory" in bad(capsys, ["gradient-flow", "--from", str(tmp_path / "nope")])
    assert "no checkpoint" in bad(capsys, ["gradient-flow", "--from", str(tmp_path)])
    assert "--text is for --from" in bad(capsys, ["gradient-flow", "--text", str(short)])
    assert "at least" in bad(capsys, ["gradient-flow", "--cells", "gru", "--steps", "3", "--hidden", "4",
                                      "--from", str(model), "--text", str(short), "--out",
                                      str(tmp_path / "g.png"), "--no-progress"])
