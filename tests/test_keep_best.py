"""Keeping the best checkpoint beside the latest (`rnnkit.training.fit`): the best row of metrics.jsonl,
the validation sample against the whole part, the closing decision on the whole part, early stopping,
the best/latest bookkeeping across resume, and the commands that load the best by default."""
import dataclasses
import json
import os

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.charlm import CharLM
from rnnkit.charlm import train as charlm_train
from rnnkit.charlm.data import split
from rnnkit.cli import main as cli
from rnnkit.optim import Schedule
from rnnkit.training import TrainingRun, best_row, fit

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclasses.dataclass
class Cfg(Schedule):
    eval_every: int = 4


class Counter:
    """A model whose one weight counts the steps (SGD, lr 1, gradient -1)."""

    def __init__(self):
        self.params = {"w": np.zeros((1, 1))}
        self.grads = {"w": np.zeros((1, 1))}

    def zero_grad(self):
        self.grads["w"].fill(0)


class ScriptedRun(TrainingRun):
    """Validation loss |w - 20| on the sample and |w - 26| on the whole part (ten times larger): the
    sample prefers step 20, the whole part step 26."""

    val_ratio = 10.0

    def __init__(self, cfg):
        super().__init__(cfg, Counter())
        self.full_evaluations = []

    def batch_loss(self):
        self.model.grads["w"][...] = -1.0
        return 0.0

    def evaluate(self, full=False):
        w = float(self.model.params["w"][0, 0])
        if full:
            self.full_evaluations.append(w)
        return {"val_loss": abs(w - (26 if full else 20))}

    def score(self, metrics):
        return (-metrics["val_loss"],)

    def save(self, path):
        arrays, meta = self.optimizer_checkpoint()
        arrays["model/w"] = self.model.params["w"]
        checkpoint.save(path, arrays, meta)

    @classmethod
    def resume(cls, path, cfg):
        arrays, meta = checkpoint.load(path)
        run = cls(cfg)
        checkpoint.restore_arrays(run.model.params, arrays, "model/")
        run.restore_optimizer(arrays, meta)
        return run


def config(**kw):
    return Cfg(**{**dict(steps=40, optimizer="sgd", lr=1.0, momentum=0.0, clip=0.0, schedule="constant",
                         warmup=0), **kw})


def run_fit(run, out, metrics=None):
    paths = [os.path.join(out, f) for f in ("metrics.jsonl", "checkpoint.npz")]
    return fit(run, metrics or [], *paths, False, ("per_s", 1), lambda *a: {})


def weight(path):
    return float(checkpoint.load(path)[0]["model/w"][0, 0])


def test_sample_best_then_the_whole_part_decides_for_the_candidate(tmp_path):
    out = str(tmp_path)
    run = ScriptedRun(config(steps=40))
    rows = run_fit(run, out)
    assert [r["step"] for r in rows] == list(range(4, 41, 4))
    assert all(r["val_part"] == "sample" for r in rows)
    assert run.full_evaluations == [40.0, 20.0]  # the final model, then the candidate
    best = best_row(rows)
    assert best["step"] == 20 and best["full_val_loss"] == 6.0 and rows[-1]["full_val_loss"] == 14.0
    assert sum(bool(r.get("best")) for r in rows) == 1
    assert weight(os.path.join(out, "best.npz")) == 20.0 and weight(os.path.join(out, "checkpoint.npz")) == 40.0
    assert [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))] == rows


def test_the_whole_part_can_choose_the_final_model(tmp_path):
    out = str(tmp_path)
    run = ScriptedRun(config(steps=28))
    rows = run_fit(run, out)
    assert best_row(rows)["step"] == 28 and best_row(rows)["full_val_loss"] == 2.0
    assert rows[4]["full_val_loss"] == 6.0 and "best" not in rows[4]  # step 20: lost on the whole part
    assert weight(os.path.join(out, "best.npz")) == 28.0
    assert (run.best.step, run.best.stale) == (28, 0)


def test_early_stopping_after_patience_evaluations(tmp_path):
    out = str(tmp_path)
    rows = run_fit(ScriptedRun(config(steps=1000, patience=3)), out)
    assert rows[-1]["step"] == 32  # best at 20; 24, 28, 32 without improvement
    assert weight(os.path.join(out, "checkpoint.npz")) == 32.0


def test_best_and_latest_across_resume(tmp_path):
    out = str(tmp_path)
    first = ScriptedRun(config(steps=16))
    run_fit(first, out)
    assert weight(os.path.join(out, "best.npz")) == 16.0
    run = ScriptedRun.resume(os.path.join(out, "checkpoint.npz"), config(steps=40))  # continues from the latest
    assert run.step == 16 and run.best.step == 16
    rows = run_fit(run, out, checkpoint.read_metrics(os.path.join(out, "metrics.jsonl"), run.step))
    assert [r["step"] for r in rows] == list(range(4, 41, 4))
    assert best_row(rows)["step"] == 20 and weight(os.path.join(out, "best.npz")) == 20.0
    assert "full_val_loss" in rows[3]  # the first run's end was scored whole
    # the best that the earlier part of the run found stays comparable: a resumed run that finds no
    # better sample score keeps it
    again = ScriptedRun.resume(os.path.join(out, "checkpoint.npz"), config(steps=48))
    rows = run_fit(again, out, checkpoint.read_metrics(os.path.join(out, "metrics.jsonl"), again.step))
    assert best_row(rows)["step"] == 20 and weight(os.path.join(out, "best.npz")) == 20.0
    assert weight(os.path.join(out, "checkpoint.npz")) == 48.0


def test_plateau_schedule_reduces_the_rate_in_the_loop(tmp_path):
    rows = run_fit(ScriptedRun(config(steps=44, schedule="plateau", plateau_patience=2, plateau_factor=0.5,
                                      lr_floor=0.0)), str(tmp_path))
    lrs = {r["step"]: r["lr"] for r in rows}
    assert lrs[20] == 1.0 and lrs[28] == 1.0 and lrs[32] == 0.5 and lrs[40] == 0.25


TEXT = "".join(f"def g{i}(a, b):\n    return a * {i} - b // {i % 5 + 1}\n\n" for i in range(150))


def charlm_config(**kw):
    base = dict(layers=1, hidden=16, embed=8, batch=4, seq_len=16, eval_every=10, val_frac=0.2, val_sample=96,
                steps=60)
    return charlm_train.TrainConfig(**{**base, **kw})


def test_charlm_run_keeps_best_and_the_models_load_it(tmp_path, capsys):
    out = str(tmp_path / "c")
    charlm_train.train(charlm_config(), TEXT, out, progress=False)
    printed = capsys.readouterr().out
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert all(r["val_part"] == "sample" for r in rows) and "full_val_bpc" in rows[-1]
    best = best_row(rows)
    assert f"best: step {best['step']}, {best['full_val_bpc']:.4f} bits/char on the whole validation part" in printed
    _, val = split(TEXT, 0.2)
    for latest, name in ((False, "best.npz"), (True, "checkpoint.npz")):
        model = CharLM.load(out, latest=latest)
        arrays, _ = checkpoint.load(os.path.join(out, name))
        for k, v in model.params.items():
            np.testing.assert_array_equal(v, arrays["model/" + k])
    total, count = CharLM.load(out).nll_sum(CharLM.load(out).vocab.encode(val), 4, 16)
    assert total / count == pytest.approx(best["full_val_loss"], rel=1e-6)
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    for flag in ([], ["--latest"]):
        assert cli(["eval-charlm", out, "--text", str(text)] + flag) == 0
        assert float(capsys.readouterr().out) == pytest.approx(CharLM.load(out, latest=bool(flag)).evaluate(TEXT),
                                                               abs=1e-4)
        assert cli(["sample", out, "--length", "20", "--seed", "1"] + flag) == 0
        assert len(capsys.readouterr().out) == 21


def test_charlm_interrupted_run_resumes_from_latest_exactly(tmp_path, monkeypatch):
    """A cosine run interrupted after its checkpoint at step 30 and resumed ends as the uninterrupted run."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    cfg = dict(steps=60, dropout=0.2, layers=2)
    charlm_train.train(charlm_config(**cfg), TEXT, a, progress=False, log=lambda s: None)
    real = charlm_train.CharLMRun.batch_loss

    def interrupted(self):
        if self.step == 33:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(charlm_train.CharLMRun, "batch_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        charlm_train.train(charlm_config(**cfg), TEXT, b, progress=False, log=lambda s: None)
    monkeypatch.setattr(charlm_train.CharLMRun, "batch_loss", real)
    assert checkpoint.load(os.path.join(b, "checkpoint.npz"))[1]["step"] == 30
    charlm_train.train(charlm_config(**cfg), TEXT, b, resume=True, progress=False, log=lambda s: None)
    for name in ("checkpoint.npz", "best.npz"):
        (arr_a, meta_a), (arr_b, meta_b) = (checkpoint.load(os.path.join(d, name)) for d in (a, b))
        assert meta_a["step"] == meta_b["step"] and meta_a["best"] == meta_b["best"]
        for k in arr_a:
            assert np.array_equal(arr_a[k], arr_b[k]), (name, k)
    rows_a, rows_b = ([json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))] for d in (a, b))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("chars_per_s", "elapsed_s")} for r in rows]  # noqa
    assert strip(rows_a) == strip(rows_b)
