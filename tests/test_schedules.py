"""Learning-rate schedules (values at chosen steps and times), the best-score record, reduce on plateau,
and decoupled weight decay (AdamW) against torch and a reference update."""
import math

import numpy as np
import pytest

from rnnkit import optim
from rnnkit.optim import Schedule
from rnnkit.schedules import Best, LRSchedule, run_progress, warmup_steps


def factors(cfg, steps, progress=None):
    s = LRSchedule(cfg)
    return [s.factor(k, run_progress(cfg, k, 0.0) if progress is None else progress) for k in steps]


def test_warmup_is_linear_and_capped_by_the_run_length():
    cfg = Schedule(steps=1000, schedule="constant", warmup=50)
    assert factors(cfg, [0, 9, 24, 49, 50, 999]) == pytest.approx([1 / 50, 10 / 50, 25 / 50, 1, 1, 1])
    assert warmup_steps(Schedule(steps=200, warmup=50)) == 20  # a tenth of a short run
    assert warmup_steps(Schedule(minutes=1.0, warmup=50)) == 50
    assert factors(Schedule(steps=10, warmup=0, schedule="constant"), [0]) == [1.0]


def test_cosine_decays_to_the_floor_over_the_steps():
    cfg = Schedule(steps=1000, warmup=0, lr_floor=0.1)
    got = factors(cfg, [0, 250, 500, 750, 1000])
    want = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)) for p in (0, 0.25, 0.5, 0.75, 1.0)]
    assert got == pytest.approx(want)
    assert got[2] == pytest.approx(0.55) and got[-1] == pytest.approx(0.1)


def test_cosine_follows_elapsed_time_in_a_timed_run():
    cfg = Schedule(minutes=2.0, warmup=0, lr_floor=0.0)
    assert run_progress(cfg, 10**6, 30.0) == pytest.approx(0.25)  # steps do not count without --steps
    assert run_progress(cfg, 5, 120.0) == 1.0 and run_progress(cfg, 5, 500.0) == 1.0
    s = LRSchedule(cfg)
    assert s.factor(7, run_progress(cfg, 7, 60.0)) == pytest.approx(0.5)
    assert s.factor(7, run_progress(cfg, 7, 120.0)) == pytest.approx(0.0, abs=1e-12)
    both = Schedule(steps=100, minutes=1.0)  # whichever is further along
    assert run_progress(both, 50, 15.0) == 0.5 and run_progress(both, 10, 45.0) == 0.75


def test_step_decay_with_a_floor():
    cfg = Schedule(steps=10**6, warmup=0, schedule="step", lr_decay=0.5, lr_decay_every=100, lr_floor=0.2)
    assert factors(cfg, [0, 99, 100, 250, 1000]) == pytest.approx([1, 1, 0.5, 0.25, 0.2])


def test_plateau_reduces_after_patience_and_stops_at_the_floor():
    cfg = Schedule(steps=10**6, warmup=0, schedule="plateau", plateau_factor=0.5, plateau_patience=2, lr_floor=0.2)
    s = LRSchedule(cfg)
    seen = []
    for improved in [True, False, True, False, False, False, False, False, False]:
        s.evaluated(improved)
        seen.append(s.factor(0, 0.0))
    assert seen == pytest.approx([1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.2])
    again = LRSchedule(cfg)
    again.load_state_dict(s.state_dict())
    assert again.factor(0, 0.0) == s.factor(0, 0.0)
    # other schedules ignore evaluations
    c = LRSchedule(Schedule(steps=10, warmup=0, schedule="constant"))
    for _ in range(5):
        c.evaluated(False)
    assert c.factor(3, 0.3) == 1.0


def test_best_counts_evaluations_since_the_best():
    b = Best()
    assert b.update(1, (-3.0,)) and b.update(2, (-2.0,))
    assert not b.update(3, (-2.5,)) and not b.update(4, (-2.0,))  # a tie is no improvement
    assert (b.step, b.score, b.stale) == (2, (-2.0,), 2)
    assert b.update(5, (0.9, -1.0)) is True  # tuples: the first element decides first
    c = Best()
    c.load_state_dict(b.state_dict())
    assert (c.step, c.score, c.stale) == (5, (0.9, -1.0), 0)


def test_schedule_settings_are_checked():
    for bad, match in [(dict(schedule="linear"), "--schedule"), (dict(warmup=-1), "--warmup"),
                       (dict(lr_floor=1.5), "--lr-floor"), (dict(plateau_factor=1.0), "--plateau-factor"),
                       (dict(patience=0), "--patience"), (dict(weight_decay=-0.1), "--weight-decay")]:
        with pytest.raises(ValueError, match=match):
            Schedule(steps=10, **bad).check_schedule()


def _params(rng, dtype=np.float64):
    return {"w": rng.standard_normal((5, 4)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)}


def test_adamw_against_a_reference_update():
    """AdamW step by step against the update written out (decay of the matrix, not the bias)."""
    rng = np.random.default_rng(0)
    params = _params(rng)
    ref = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in ref.items()}
    v = {k: np.zeros_like(x) for k, x in ref.items()}
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-8
    opt = optim.AdamW(params, lr, weight_decay=wd)
    for t in range(1, 6):
        grads = {k: rng.standard_normal(p.shape) for k, p in params.items()}
        opt.step(grads)
        for k in ref:
            if k == "w":
                ref[k] *= 1 - lr * wd
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            ref[k] -= lr / (1 - b1 ** t) * m[k] / (np.sqrt(v[k]) / math.sqrt(1 - b2 ** t) + eps)
        for k in ref:
            np.testing.assert_allclose(params[k], ref[k], rtol=1e-12, atol=1e-12)


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    params = _params(rng, np.float32)
    tw, tb = (torch.tensor(params[k].copy(), requires_grad=True) for k in ("w", "b"))
    topt = torch.optim.AdamW([{"params": [tw], "weight_decay": 0.05}, {"params": [tb], "weight_decay": 0.0}],
                             lr=0.02)
    opt = optim.AdamW(params, 0.02, weight_decay=0.05)
    for _ in range(8):
        grads = {k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()}
        tw.grad, tb.grad = torch.tensor(grads["w"]), torch.tensor(grads["b"])
        topt.step()
        opt.step(grads)
    np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params["b"], tb.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_weight_decay_is_decoupled_for_every_optimiser_and_saved():
    """With zero gradients only the decay moves a matrix (SGD, RMSprop, ...): p *= 1 - lr * wd per step."""
    for name in ("sgd", "adagrad", "rmsprop", "adam", "adamw"):
        params = _params(np.random.default_rng(2))
        w0 = params["w"].copy()
        b0 = params["b"].copy()
        opt = optim.make_optimizer(name, params, 0.1, weight_decay=0.5)
        zero = {k: np.zeros_like(p) for k, p in params.items()}
        opt.step(zero)
        opt.step(zero)
        np.testing.assert_allclose(params["w"], w0 * 0.95 ** 2, rtol=1e-12)
        np.testing.assert_array_equal(params["b"], b0)
        again = optim.make_optimizer(name, _params(np.random.default_rng(2)), 0.1)
        again.load_state_dict(opt.state_dict())
        assert again.weight_decay == 0.5
    assert optim.AdamW(_params(np.random.default_rng(3))).weight_decay == 0.01  # torch's default
    with pytest.raises(ValueError, match="weight_decay"):
        optim.Adam(_params(np.random.default_rng(3)), weight_decay=-1.0)


def test_peak_lr_is_the_commands_default_for_its_optimizer_unless_given():
    from rnnkit.charlm.train import TrainConfig as CharLMConfig
    from rnnkit.optim import DEFAULT_LR
    from rnnkit.seq2seq.train import TrainConfig as Seq2SeqConfig

    assert CharLMConfig().peak_lr() == 3e-3
    assert CharLMConfig(optimizer="adamw").peak_lr() == 3e-3
    assert CharLMConfig(optimizer="sgd").peak_lr() == DEFAULT_LR["sgd"]
    assert CharLMConfig(lr=1e-3).peak_lr() == 1e-3
    assert Seq2SeqConfig().peak_lr() == DEFAULT_LR["adam"] == 2e-3
