"""The captioning commands end to end (train-captions, eval-captions, caption) on tiny runs: the shapes
task and features/captions files, exact resume, the attention picture, and bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.captions.model import Captioner
from rnnkit.cli import main as cli

TINY = ["--hidden", "24", "--embed", "8", "--batch", "16", "--threads", "1", "--no-progress"]
SHAPES = ["--task", "shapes", "--image-size", "24", "--grid", "2", "--val-size", "12", "--test-size", "10"]

pytestmark = pytest.mark.usefixtures("one_thread")


def rows(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cap") / "run")
    assert cli(["train-captions"] + SHAPES + ["--steps", "60", "--eval-every", "30", "--out", out,
                                              "--lr", "0.01"] + TINY) == 0
    return out


def test_train_eval_caption_on_shapes(shapes_run, tmp_path, capsys):
    out = shapes_run
    r = rows(out)
    assert [x["step"] for x in r] == [30, 60]
    assert {"train_loss", "val_loss", "val_exact_match", "val_token_acc", "val_bleu", "images_per_s"} <= set(r[0])
    assert r[-1]["val_loss"] < r[0]["train_loss"]
    assert {"checkpoint.npz", "curve.png", "metrics.jsonl"} <= set(os.listdir(out))

    assert cli(["eval-captions", out, "--json"]) == 0
    greedy = json.loads(capsys.readouterr().out)
    assert set(greedy) == {"exact_match", "token_acc", "bleu", "examples"} and greedy["examples"] == 10
    assert 0 <= greedy["exact_match"] <= 1 and 0 <= greedy["bleu"] <= 100
    assert cli(["eval-captions", out, "--beam", "3", "--split", "val"]) == 0
    text = capsys.readouterr().out
    assert "exact_match:" in text and "bleu:" in text and "examples: 12" in text

    plot = str(tmp_path / "att.png")
    assert cli(["caption", out, "--index", "9", "--beam", "2", "--references", "--attention-plot", plot]) == 0
    lines = capsys.readouterr().out.splitlines()
    words = set(lines[0].split())
    from rnnkit.captions.shapes import WORDS
    assert words <= set(WORDS) and lines[1].startswith("reference: ") and len(lines) >= 3
    assert os.path.getsize(plot) > 2000


def test_resume_is_exact(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    # a schedule over the run's length changes with --steps; scheduled sampling on (its coins depend on the step)
    common = SHAPES + ["--eval-every", "10", "--attention", "general", "--cell", "gru", "--schedule", "constant",
                       "--warmup", "0", "--teacher-forcing", "0.5"] + TINY
    assert cli(["train-captions"] + common + ["--steps", "20", "--out", a]) == 0
    assert cli(["train-captions"] + common + ["--steps", "10", "--out", b]) == 0
    assert cli(["train-captions", "--resume", "--steps", "20", "--out", b, "--no-progress"]) == 0
    assert cli(["train-captions"] + common + ["--steps", "10", "--out", b, "--overwrite"]) == 0
    assert [r["step"] for r in rows(b)] == [10]  # replaced, not continued
    assert cli(["train-captions", "--resume", "--steps", "20", "--out", b, "--no-progress"]) == 0
    ma, _ = Captioner.load(a, latest=True)
    mb, _ = Captioner.load(b, latest=True)
    for k in ma.params:
        np.testing.assert_array_equal(ma.params[k], mb.params[k], err_msg=k)
    assert [r["step"] for r in rows(b)] == [10, 20]
    assert [r["val_loss"] for r in rows(a)] == [r["val_loss"] for r in rows(b)]


def test_features_and_captions_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    N, P, F = 60, 4, 6
    feats = rng.standard_normal((N, P, F)).astype(np.float32)
    words = ["red", "green", "blue", "cat", "dog"]
    lines = []
    for i in range(N):  # a caption determined by the features, and a second one
        w = words[int(np.argmax(feats[i, 0, :5]))]
        lines += [f"{i}\ta {w} thing", f"{i}\tthe {w}"]
    np.savez(tmp_path / "f.npz", features=feats)
    (tmp_path / "c.tsv").write_text("\n".join(lines))
    out = str(tmp_path / "files")
    assert cli(["train-captions", "--features", str(tmp_path / "f.npz"), "--captions", str(tmp_path / "c.tsv"),
                "--steps", "40", "--eval-every", "40", "--attention", "dot", "--encoder", "linear", "--min-count",
                "2", "--out", out] + TINY) == 0
    capsys.readouterr()
    assert cli(["eval-captions", out, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["examples"] == 3  # 5% of 60 images
    plot = str(tmp_path / "p.png")
    assert cli(["caption", out, "--index", "0", "--attention-plot", plot]) == 0
    assert os.path.getsize(plot) > 1000


def test_bad_inputs(shapes_run, tmp_path, capsys):
    def fails(argv, message, code=1):
        if code == 2:  # an option error: argparse exits
            with pytest.raises(SystemExit) as e:
                cli(argv)
            assert e.value.code == 2
        else:
            assert cli(argv) == code
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1

    out = str(tmp_path / "x")
    fails(["train-captions", "--steps", "1", "--out", out], "give --task shapes or --features")
    fails(["train-captions", "--features", "f.npz", "--steps", "1", "--out", out], "--features needs --captions")
    fails(["train-captions", "--captions", "c.tsv", "--steps", "1", "--out", out], "--captions needs --features")
    fails(["train-captions", "--task", "shapes", "--grid", "13", "--steps", "1", "--out", out], "--grid must be")
    fails(["train-captions", "--task", "shapes", "--captions", "c.tsv", "--out", out], "go with --features")
    fails(["train-captions", "--task", "shapes", "--attention", "dot", "--feature-size", "10", "--out", out],
          "--attention dot needs --feature-size equal to --hidden")
    fails(["train-captions", "--task", "shapes", "--attention", "dot", "--attn-size", "4", "--out", out],
          "--attn-size is the inner width of additive attention")
    fails(["train-captions", "--task", "shapes", "--test-size", "100000", "--steps", "1", "--out", out],
          "scenes with 1..3 objects can be held out")
    fails(["train-captions", "--features", str(tmp_path / "none.npz"), "--captions", "c.tsv", "--out", out],
          "--features file not found")
    np.savez(tmp_path / "f.npz", features=np.zeros((4, 3), np.float32))
    (tmp_path / "c.tsv").write_text("0\ta\n9\tb\n")
    fails(["train-captions", "--features", str(tmp_path / "f.npz"), "--captions", str(tmp_path / "c.tsv"),
           "--image-size", "32", "--out", out], "--image-size only apply to --task shapes")
    fails(["train-captions", "--features", str(tmp_path / "f.npz"), "--captions", str(tmp_path / "c.tsv"),
           "--steps", "1", "--out", out, "--no-progress"], "image index 9 is not in the features")
    fails(["train-captions", "--task", "shapes", "--steps", "0"], "must be a positive integer", code=2)
    fails(["train-captions", "--resume", "--out", str(tmp_path / "empty"), "--no-progress"], "nothing to resume")
    fails(["train-captions"] + SHAPES + ["--steps", "70", "--out", shapes_run] + TINY,
          "holds a captioning run (rnnkit train-captions) at step 60: give --resume to continue it or --overwrite")
    fails(["train-captions", "--resume", "--hidden", "32", "--steps", "70", "--out", shapes_run, "--no-progress"],
          "--hidden 32 (the run has 24)")
    fails(["train-captions", "--resume", "--task", "shapes", "--steps", "70", "--out", shapes_run, "--no-progress"],
          "the data given differs from the data this run was trained on (task shapes)")
    fails(["eval-captions", str(tmp_path / "nowhere")], "not a directory")
    fails(["caption", shapes_run, "--index", "10"], "--index 10 is out of range: the test split has 10 images")
    fails(["caption", shapes_run], "the following arguments are required: --index", code=2)
    none = str(tmp_path / "none")
    assert cli(["train-captions"] + SHAPES + ["--steps", "2", "--attention", "none", "--out", none] + TINY) == 0
    capsys.readouterr()
    fails(["caption", none, "--index", "0", "--attention-plot", str(tmp_path / "p.png")], "no attention to plot")
    bad = tmp_path / "bad"
    bad.mkdir()
    checkpoint.save(str(bad / "checkpoint.npz"), {}, {"format": "rnnkit-seq2seq"})
    fails(["eval-captions", str(bad)], "is not a captioning checkpoint")


def test_console_script_prints_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run([sys.executable, "-m", "rnnkit.cli", "caption", str(tmp_path), "--index", "0"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "no checkpoint" in p.stderr
    p = subprocess.run([sys.executable, "-m", "rnnkit.cli", "--help"], capture_output=True, text=True, env=env)
    assert all(c in p.stdout for c in ("train-captions", "eval-captions", "caption"))
