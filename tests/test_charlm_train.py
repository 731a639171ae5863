"""Training of character models: the batches, exact resume, and the three commands end to end,
including every kind of bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.charlm import CharLM, Vocab
from rnnkit.charlm.data import TextError, TrainStreams
from rnnkit.charlm.train import TrainConfig, train
from rnnkit.cli import main as cli

TEXT = "".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(120))  # ~3.7k chars
TINY = ["--layers", "1", "--hidden", "16", "--embed", "8", "--batch", "4", "--seq-len", "16", "--threads", "1",
        "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "code.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def test_streams_are_contiguous_and_carry_over():
    ids = np.arange(1000, dtype=np.int32)
    s = TrainStreams(ids, batch=4, seq_len=10)
    x0, y0 = s.batch(0)
    x1, _ = s.batch(1)
    assert x0.shape == (10, 4) and (y0 == x0 + 1).all()
    assert (x1[0] == x0[-1] + 1).all()  # each stream continues where the previous chunk ended
    assert x0[0].tolist() == [0, 249, 498, 747]  # 4 streams of 249 pairs
    assert s.num_batches == 24
    with pytest.raises(TextError, match="shorter than one batch"):
        TrainStreams(ids[:40], batch=4, seq_len=10)


def config(**kw):
    base = dict(layers=2, hidden=8, embed=4, batch=3, seq_len=8, dropout=0.3, eval_every=4, val_frac=0.1)
    return TrainConfig(**{**base, **kw})


def saved(directory):
    return checkpoint.load(os.path.join(directory, "checkpoint.npz"))


def test_resume_is_exact(tmp_path):
    """N steps, save, resume, N steps == 2N steps, bit for bit (dropout on, so the RNG state matters; the
    run crosses an epoch boundary)."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    flat = dict(schedule="constant", warmup=0)  # a schedule over the run's length changes with --steps
    train(config(steps=70, **flat), TEXT, a, progress=False, log=lambda s: None)
    train(config(steps=35, **flat), TEXT, b, progress=False, log=lambda s: None)
    train(config(steps=70, **flat), TEXT, b, resume=True, progress=False, log=lambda s: None)
    (arr_a, meta_a), (arr_b, meta_b) = saved(a), saved(b)
    assert meta_a["step"] == meta_b["step"] == 70
    assert set(arr_a) == set(arr_b)
    for k in arr_a:
        assert np.array_equal(arr_a[k], arr_b[k]), k
    assert meta_a["optim"] == meta_b["optim"] and meta_a["rng"] == meta_b["rng"]
    rows_a = [json.loads(r) for r in open(os.path.join(a, "metrics.jsonl"))]
    rows_b = [json.loads(r) for r in open(os.path.join(b, "metrics.jsonl"))]
    assert rows_a[-1]["val_loss"] == rows_b[-1]["val_loss"]
    assert [r["step"] for r in rows_b] == [4, 8, 12, 16, 20, 24, 28, 32, 35, 36, 40, 44, 48, 52, 56, 60, 64, 68, 70]


def test_resume_refuses_a_different_text(tmp_path):
    out = str(tmp_path / "r")
    train(config(steps=4), TEXT, out, progress=False, log=lambda s: None)
    with pytest.raises(TextError, match="text differs"):
        train(config(steps=8), TEXT + "x", out, resume=True, progress=False, log=lambda s: None)


def test_cli_train_sample_eval(tmp_path, text_file, capsys):
    out = str(tmp_path / "run")
    assert cli(["train-charlm", "--text", text_file, "--steps", "30", "--eval-every", "20", "--out", out] + TINY) == 0
    printed = capsys.readouterr().out
    assert "--- sample" in printed
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [20, 30]  # one after the last step
    assert set(rows[0]) - {"best"} == {"step", "train_loss", "val_loss", "val_bpc", "val_part", "lr", "chars_per_s",
                                       "elapsed_s"}
    assert rows[0]["val_part"] == "full"  # the validation part is smaller than the sample
    assert rows[-1]["val_loss"] < np.log(len(set(TEXT)))  # learned something
    assert {"checkpoint.npz", "curve.png", "metrics.jsonl", "sample.txt"} <= set(os.listdir(out))

    assert cli(["sample", out, "--length", "50", "--seed", "3", "--prime", "def"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("def") and len(first) == 3 + 50 + 1
    assert cli(["sample", out, "--length", "50", "--seed", "3", "--prime", "def"]) == 0
    assert capsys.readouterr().out == first
    for weights in ("float16", "int8"):
        assert cli(["sample", out, "--length", "50", "--seed", "3", "--prime", "def", "--weights", weights]) == 0
        sampled = capsys.readouterr().out
        assert sampled.startswith("def") and len(sampled) == 3 + 50 + 1

    assert cli(["eval-charlm", out, "--text", text_file]) == 0
    bpc = float(capsys.readouterr().out)
    assert bpc == pytest.approx(CharLM.load(out).evaluate(TEXT), abs=1e-4)
    for weights in ("float32", "int8"):
        assert cli(["eval-charlm", out, "--text", text_file, "--as-sampled", weights]) == 0
        assert float(capsys.readouterr().out) == pytest.approx(CharLM.load(out).evaluate_as_sampled(TEXT, weights),
                                                               abs=1e-4)
    assert cli(["eval-charlm", out, "--text", text_file, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["chars"] == len(TEXT) - 1 and d["unknown_chars"] == 0


def bad(capsys, argv):
    try:
        code = cli(argv)
    except SystemExit as e:  # argparse's exit for a bad option
        code = e.code
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_bad_inputs(tmp_path, text_file, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    short = tmp_path / "short.txt"
    short.write_text("x = 1\n" * 10)
    assert "not found" in bad(capsys, ["train-charlm", "--text", str(tmp_path / "nope.txt")] + TINY)
    assert "empty" in bad(capsys, ["train-charlm", "--text", str(empty)] + TINY)
    assert "shorter than one batch" in bad(capsys, ["train-charlm", "--text", str(short), "--out",
                                                    str(tmp_path / "o")] + TINY)
    for opt in ("--hidden", "--batch", "--seq-len", "--layers", "--steps"):
        for value in ("0", "-3"):
            assert opt in bad(capsys, ["train-charlm", opt, value])
    assert "--length" in bad(capsys, ["sample", str(tmp_path), "--length", "-1"])
    assert "--weights" in bad(capsys, ["sample", str(tmp_path), "--weights", "bfloat16"])
    assert "no checkpoint" in bad(capsys, ["sample", str(tmp_path)])
    assert "not a directory" in bad(capsys, ["eval-charlm", str(tmp_path / "nodir"), "--text", text_file])
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "checkpoint.npz").write_bytes(b"PK\x03\x04garbage")
    assert "corrupt" in bad(capsys, ["sample", str(corrupt)])
    assert "nothing to resume" in bad(capsys, ["train-charlm", "--text", text_file, "--resume", "--out",
                                               str(tmp_path / "fresh")] + TINY)
    assert not os.path.exists(tmp_path / "fresh")  # a failed resume creates nothing


def test_console_script_prints_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rnnkit.cli", "sample", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "no checkpoint" in r.stderr


@pytest.mark.parametrize("cell,embed,opt,lr,clip_mode", [("gru", 0, "rmsprop", 0.01, "value"),
                                                         ("rnn", 4, "adagrad", 0.1, "norm"),
                                                         ("lstm", 4, "sgd", 0.5, "value")])
def test_every_cell_and_optimiser_learns(tmp_path, cell, embed, opt, lr, clip_mode):
    out = str(tmp_path / cell)
    cfg = TrainConfig(cell=cell, layers=2, hidden=16, embed=embed, batch=4, seq_len=16, steps=60, eval_every=30,
                      optimizer=opt, lr=lr, clip_mode=clip_mode, clip=1.0, dropout=0.1, schedule="step", warmup=0,
                      lr_decay=0.9, lr_decay_every=20)
    train(cfg, TEXT, out, progress=False, log=lambda s: None)
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert rows[-1]["val_loss"] < 0.8 * np.log(len(set(TEXT)))  # well below a uniform guess
    _, meta = saved(out)
    assert meta["optim"]["lr"] == pytest.approx(lr * 0.9 ** 2)  # decayed at steps 20 and 40


def test_model_save_and_load(tmp_path):
    model = CharLM(Vocab.from_text(TEXT), "gru", 1, 8, 4, seed=3)
    model.save(str(tmp_path / "m"))
    again = CharLM.load(str(tmp_path / "m"))
    assert again.config == model.config and again.vocab.chars == model.vocab.chars
    assert again.sample(40, seed=1) == model.sample(40, seed=1)


def test_time_budget_ends_with_an_evaluation(tmp_path):
    out = str(tmp_path / "t")
    train(config(minutes=0.002, eval_every=1000, sample_every=2), TEXT, out, progress=False, log=lambda s: None)
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert len(rows) == 1 and rows[0]["step"] >= 1
    assert saved(out)[1]["step"] == rows[0]["step"]
