"""The classifier commands end to end (train-classifier, eval-classifier, classify) on tiny runs: a task,
a text<TAB>label file, a per-step tokens<TAB>tags file, exact resume, and bad input."""
import json
import os

import numpy as np
import pytest

from rnnkit.classify import Classifier
from rnnkit.cli import main as cli

TINY = ["--hidden", "16", "--embed", "8", "--batch", "16", "--threads", "1", "--no-progress"]
MAJORITY = ["--task", "majority", "--min-len", "3", "--max-len", "9", "--train-size", "400", "--val-size", "40",
            "--test-size", "60"]

pytestmark = pytest.mark.usefixtures("one_thread")


def rows(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def sentiment_file(path, n=240, seed=0):
    """Short texts whose label is decided by the words in them, three classes, imbalanced."""
    rng = np.random.default_rng(seed)
    words = {"good": ["great", "fine", "lovely"], "bad": ["awful", "poor", "dull"], "so so": ["okay", "average"]}
    filler = ["the", "film", "was", "quite", "plot", "and"]
    lines = []
    for i in range(n):
        label = ["good", "good", "bad", "so so"][i % 4]
        toks = list(rng.choice(filler, rng.integers(1, 5))) + [rng.choice(words[label])]
        rng.shuffle(toks)
        lines.append(" ".join(toks) + f" {i}\t{label}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_train_eval_classify_on_a_task(tmp_path, capsys):
    out = str(tmp_path / "maj")
    assert cli(["train-classifier"] + MAJORITY + ["--pool", "mean", "--bidirectional", "--steps", "120",
                                                 "--eval-every", "60", "--lr", "0.01", "--out", out] + TINY) == 0
    assert "val accuracy" in capsys.readouterr().out
    r = rows(out)
    assert [x["step"] for x in r] == [60, 120]
    assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1", "sequences_per_s", "elapsed_s"} <= set(r[0])
    assert r[-1]["val_accuracy"] > 0.6
    assert {"checkpoint.npz", "best.npz", "curve.png", "metrics.jsonl"} <= set(os.listdir(out))
    assert sum(bool(x.get("best")) for x in r) == 1  # the row of the model in best.npz

    assert cli(["eval-classifier", out, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 60 and result["labels"] == ["a", "b", "c"]
    assert np.array(result["confusion"]).sum() == 60 and 0 <= result["macro_f1"] <= 1
    assert os.path.getsize(result["plot"]) > 1000
    assert cli(["eval-classifier", out, "--split", "val", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "accuracy:" in text and "macro_f1:" in text and "confusion matrix" in text and "examples: 40" in text

    assert cli(["classify", out, "aaaab", "ccbcc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and lines[0] in "abc" and lines[4] in "abc"
    probs = [float(line.split()[1]) for line in lines[1:4]]
    assert sum(probs) == pytest.approx(1, abs=1e-3) and probs == sorted(probs, reverse=True)
    assert lines[1].split()[0] == lines[0]
    assert cli(["classify", out, "aaaab", "--json", "--top", "2"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["label"] in "abc" and len(obj["probabilities"]) == 2
    assert cli(["classify", out, "aaaab", "--json", "--latest"]) == 0  # the latest checkpoint instead of the best
    assert len(json.loads(capsys.readouterr().out)["probabilities"]) == 3


def test_pairs_file_with_word_tokens_class_weights_and_resume(tmp_path, capsys):
    data = sentiment_file(tmp_path / "reviews.tsv")
    out = str(tmp_path / "rev")
    args = ["train-classifier", "--pairs", data, "--tokens", "word", "--class-weights", "balanced", "--pool",
            "max", "--layers", "2", "--dropout", "0.2", "--eval-every", "40", "--lr", "0.01", "--schedule", "constant",
            "--warmup", "0", "--out", out] + TINY
    assert cli(args + ["--steps", "40"]) == 0
    assert cli(args + ["--steps", "80", "--resume"]) == 0
    resumed = rows(out)
    straight = str(tmp_path / "straight")
    assert cli(args[:-len(TINY) - 2] + ["--out", straight] + TINY + ["--steps", "80"]) == 0
    assert [r["step"] for r in resumed] == [40, 80]
    assert resumed[-1]["val_loss"] == pytest.approx(rows(straight)[-1]["val_loss"], rel=1e-6)
    capsys.readouterr()
    assert cli(["eval-classifier", out, "--json", "--no-plot"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["labels"] == ["bad", "good", "so so"] and result["examples"] == 24
    assert cli(["classify", out, "the plot was awful"]) == 0
    printed = capsys.readouterr().out.splitlines()[0]
    model, _ = Classifier.load(out)  # the same from Python
    (label, probs), = model.classify(["the plot was awful"])
    assert label == printed and set(probs) == {"bad", "good", "so so"} and max(probs.values()) == probs[label]


def test_per_step_tagging(tmp_path, capsys):
    rng = np.random.default_rng(1)
    lines = []
    for i in range(200):  # tag: V after "to", else N
        words = list(rng.choice(["to", "run", "see", "dog", "cat"], rng.integers(2, 7)))
        tags = ["V" if j and words[j - 1] == "to" else "N" for j in range(len(words))]
        lines.append(f"{' '.join(words)}\t{' '.join(tags)}")
    data = tmp_path / "tags.tsv"
    data.write_text("\n".join(lines) + "\n")
    out = str(tmp_path / "tagger")
    assert cli(["train-classifier", "--pairs", str(data), "--per-step", "--steps", "150", "--eval-every", "150",
                "--lr", "0.02", "--out", out] + TINY) == 0
    assert rows(out)[-1]["val_accuracy"] > 0.9
    capsys.readouterr()
    assert cli(["classify", out, "to dog cat to run"]) == 0
    printed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [p[0] for p in printed] == ["to", "dog", "cat", "to", "run"]
    assert all(p[1] in ("N", "V") and 0 <= float(p[2]) <= 1 for p in printed)
    tagged, = Classifier.load(out)[0].classify(["to dog cat to run"])
    assert [(t, tag) for t, tag, _ in tagged] == [(p[0], p[1]) for p in printed]
    assert cli(["eval-classifier", out, "--json", "--no-plot"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 10 <= result["sequences"] <= 25 and result["examples"] > result["sequences"]  # scored per token


def run_cli(args, capsys):
    code = cli(args)
    return code, capsys.readouterr().err


def test_bad_input(tmp_path, capsys):
    data = sentiment_file(tmp_path / "reviews.tsv", n=120)
    out = str(tmp_path / "m")
    assert cli(["train-classifier", "--pairs", data, "--steps", "2", "--eval-every", "2", "--out", out] + TINY) == 0
    capsys.readouterr()

    unknown = tmp_path / "unknown.tsv"
    unknown.write_text("great film\tgood\nmeh\tneutral\n")
    code, err = run_cli(["eval-classifier", out, "--pairs", str(unknown)], capsys)
    assert code == 1 and "unknown label 'neutral'" in err and "example 2" in err and len(err.splitlines()) == 1

    code, err = run_cli(["train-classifier", "--pairs", data, "--steps", "2", "--out", out] + TINY, capsys)
    assert code == 1 and "give --resume to continue it or --overwrite to replace it" in err
    code, err = run_cli(["train-classifier", "--pairs", data, "--steps", "4", "--out", out, "--resume", "--hidden",
                         "32"], capsys)
    assert code == 1 and "--hidden 32 (the run has 16)" in err

    code, err = run_cli(["classify", out, ""], capsys)
    assert code == 1 and "the text is empty" in err

    no_tab = tmp_path / "notab.tsv"
    no_tab.write_text("fine\tgood\njust some text\n")
    code, err = run_cli(["train-classifier", "--pairs", str(no_tab), "--steps", "1", "--out", str(tmp_path / "x")]
                        + TINY, capsys)
    assert code == 1 and "notab.tsv:2: expected text<TAB>label, found no tab" in err
    code, err = run_cli(["eval-classifier", out, "--pairs", str(no_tab)], capsys)
    assert code == 1 and "found no tab" in err

    one_class = tmp_path / "one.tsv"
    one_class.write_text("".join(f"text {i}\tsame\n" for i in range(30)))
    code, err = run_cli(["train-classifier", "--pairs", str(one_class), "--steps", "1", "--out",
                         str(tmp_path / "y")] + TINY, capsys)
    assert code == 1 and "at least two classes" in err

    code, err = run_cli(["train-classifier", "--task", "brackets", "--per-step", "--steps", "1"] + TINY, capsys)
    assert code == 1 and "--per-step and --tokens apply to --pairs" in err
    code, err = run_cli(["train-classifier", "--pairs", data, "--per-step", "--steps", "1"] + TINY, capsys)
    assert code == 1 and "reviews.tsv:1: 6 tokens (word) but 1 tags" in err
    tags = tmp_path / "tags.tsv"
    tags.write_text("".join(f"a b{i}\tX Y\nc{i}\tY\n" for i in range(20)))
    code, err = run_cli(["train-classifier", "--pairs", str(tags), "--per-step", "--pool", "max", "--steps", "1"]
                        + TINY, capsys)
    assert code == 1 and "--pool and --attn-size are for sequence classification" in err
    code, err = run_cli(["train-classifier", "--task", "majority", "--classes", "3", "--steps", "1"] + TINY, capsys)
    assert code == 1 and "has no option --classes" in err
    code, err = run_cli(["classify", str(tmp_path / "nowhere"), "text"], capsys)
    assert code == 1 and "not a directory" in err
    code, err = run_cli(["train-classifier", "--pairs", data, "--class-weights", "good=2,ugly=1", "--steps", "1",
                         "--out", str(tmp_path / "z")] + TINY, capsys)
    assert code == 1 and "--class-weights" in err
