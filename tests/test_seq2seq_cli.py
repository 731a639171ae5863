"""The sequence-to-sequence commands end to end (train-seq2seq, translate, eval-seq2seq) on tiny runs,
exact resume, scheduled sampling, and every kind of bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnkit
from rnnkit import checkpoint
from rnnkit.cli import main as cli
from rnnkit.seq2seq.data import pairs_spec, task_spec
from rnnkit.seq2seq.model import Seq2Seq
from rnnkit.seq2seq.train import TrainConfig, train

TINY = ["--hidden", "16", "--embed", "8", "--batch", "16", "--threads", "1", "--no-progress"]
REVERSE = ["--task", "reverse", "--min-len", "2", "--max-len", "4", "--alphabet", "abcde", "--train-size", "300",
           "--val-size", "20", "--test-size", "30"]


pytestmark = pytest.mark.usefixtures("one_thread")


def rows(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_train_translate_eval_on_a_task(tmp_path, capsys):
    out = str(tmp_path / "rev")
    assert cli(["train-seq2seq"] + REVERSE + ["--attention", "dot", "--bidirectional", "--steps", "300",
                                             "--eval-every", "150", "--out", out, "--lr", "0.01"] + TINY) == 0
    assert "val exact match" in capsys.readouterr().out
    r = rows(out)
    assert [x["step"] for x in r] == [150, 300]
    assert {"step", "train_loss", "val_loss", "val_exact_match", "val_token_acc"} <= set(r[0])
    assert r[-1]["val_loss"] < r[0]["train_loss"] and r[-1]["val_token_acc"] > 0.5
    assert {"checkpoint.npz", "curve.png", "metrics.jsonl"} <= set(os.listdir(out))

    plot = str(tmp_path / "att.png")
    assert cli(["translate", out, "abca", "--beam", "3", "--attention-plot", plot]) == 0
    printed = capsys.readouterr().out
    assert len(printed.splitlines()) == 1 and set(printed.strip()) <= set("abcde")
    assert os.path.getsize(plot) > 1000
    assert cli(["translate", out, "abca", "--beam", "3", "--n-best", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("\t" in line for line in lines)  # K hypotheses, best first, with scores
    scores = [float(line.split("\t")[0]) for line in lines]
    assert scores == sorted(scores, reverse=True) and len({line.split("\t")[1] for line in lines}) == 3

    assert cli(["eval-seq2seq", out, "--json"]) == 0
    greedy = json.loads(capsys.readouterr().out)
    assert set(greedy) == {"exact_match", "token_acc", "examples"} and greedy["examples"] == 30
    assert cli(["eval-seq2seq", out, "--beam", "4"]) == 0
    text = capsys.readouterr().out
    assert "exact_match:" in text and "token_acc:" in text and "examples: 30" in text
    pairs = tmp_path / "more.tsv"
    pairs.write_text("ab\tba\nabc\tcba\n")
    assert cli(["eval-seq2seq", out, "--pairs", str(pairs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 2


def test_word_pairs_give_bleu(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = ["red", "blue", "green", "cat", "dog", "big", "small"]
    lines = []
    for _ in range(300):
        s = " ".join(rng.choice(words, rng.integers(2, 5)))
        lines.append(f"{s}\t{s.upper()} !")
    f = tmp_path / "pairs.tsv"
    f.write_text("\n".join(lines) + "\n")
    out = str(tmp_path / "w")
    assert cli(["train-seq2seq", "--pairs", str(f), "--tokens", "word", "--attention", "additive", "--steps", "60",
                "--eval-every", "60", "--teacher-forcing", "0.5", "--schedule", "constant", "--warmup", "0",
                "--out", out] + TINY) == 0
    capsys.readouterr()
    assert "val_bleu" in rows(out)[-1]
    assert cli(["eval-seq2seq", out, "--json"]) == 0
    assert "bleu" in json.loads(capsys.readouterr().out)
    assert cli(["translate", out, "red cat", "--beam", "2"]) == 0
    assert capsys.readouterr().out.strip()  # words joined by spaces


def config(**kw):
    base = dict(data=task_spec("sort", 0, {"train": 200, "val": 10, "test": 10}, min_len=2, max_len=5,
                               alphabet="abc"), hidden=8, embed=4, batch=16, eval_every=7, attention="general")
    return TrainConfig(**{**base, **kw})


def test_resume_is_exact(tmp_path):
    """N steps, save, resume, N more == 2N steps, bit for bit; scheduled sampling on (its coin flips and
    the batch order depend only on the seed and the step); the run crosses an epoch boundary."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    quiet = dict(progress=False, log=lambda s: None)
    flat = dict(schedule="constant", warmup=0, dropout=0.3)  # a schedule over the run's length changes with --steps
    train(config(steps=30, teacher_forcing=0.5, **flat), a, **quiet)
    train(config(steps=15, teacher_forcing=0.5, **flat), b, **quiet)
    train(config(steps=30, teacher_forcing=0.5, **flat), b, resume=True, **quiet)
    (arr_a, meta_a), (arr_b, meta_b) = (checkpoint.load(os.path.join(d, "checkpoint.npz")) for d in (a, b))
    assert meta_a["step"] == meta_b["step"] == 30 and set(arr_a) == set(arr_b)
    for k in arr_a:
        assert np.array_equal(arr_a[k], arr_b[k]), k
    assert [r["step"] for r in rows(b)] == [7, 14, 15, 21, 28, 30]
    assert rows(a)[-1]["val_loss"] == rows(b)[-1]["val_loss"]


def test_scheduled_sampling_feeds_the_model_its_own_predictions(tmp_path, monkeypatch):
    import rnnkit.seq2seq.decode as decode_mod  # scheduled_inputs decodes the batch with its greedy_tokens

    calls = []
    real = decode_mod.greedy_tokens
    monkeypatch.setattr(decode_mod, "greedy_tokens", lambda *a: calls.append(a[2]) or real(*a))
    quiet = dict(progress=False, log=lambda s: None)
    train(config(steps=40, teacher_forcing=1.0), str(tmp_path / "tf"), **quiet)
    assert calls == []
    train(config(steps=40, teacher_forcing=0.5), str(tmp_path / "ss"), **quiet)
    assert 8 <= len(calls) <= 32  # about half the batches
    calls.clear()
    train(config(steps=10, teacher_forcing=0.0), str(tmp_path / "own"), **quiet)
    assert len(calls) == 10


def bad(capsys, argv):
    try:
        code = cli(argv)
    except SystemExit as e:  # argparse's exit for a bad option
        code = e.code
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_bad_inputs(tmp_path, capsys):
    assert "unknown task 'nope'" in bad(capsys, ["train-seq2seq", "--task", "nope", "--out", str(tmp_path / "o")])
    assert "give --task NAME or --pairs FILE" in bad(capsys, ["train-seq2seq", "--steps", "3"])
    malformed = tmp_path / "bad.tsv"
    malformed.write_text("a\tb\nc\td\njust one column\n")
    assert "bad.tsv:3:" in bad(capsys, ["train-seq2seq", "--pairs", str(malformed), "--steps", "2", "--out",
                                        str(tmp_path / "o")] + TINY)
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert "no pairs" in bad(capsys, ["train-seq2seq", "--pairs", str(empty), "--out", str(tmp_path / "o")])
    assert "not found" in bad(capsys, ["train-seq2seq", "--pairs", str(tmp_path / "none.tsv")])
    assert "only apply to --task" in bad(capsys, ["train-seq2seq", "--pairs", str(malformed), "--digits", "2"])
    assert "has no option 'digits'" in bad(capsys, ["train-seq2seq", "--task", "dates", "--digits", "2"])
    assert "--min-len" in bad(capsys, ["train-seq2seq", "--task", "reverse", "--min-len", "9", "--max-len", "3"])
    assert "even" in bad(capsys, ["train-seq2seq", "--task", "dates", "--bidirectional", "--hidden", "7"])
    assert "--teacher-forcing" in bad(capsys, ["train-seq2seq", "--task", "dates", "--teacher-forcing", "1.5"])
    assert "--attention" in bad(capsys, ["train-seq2seq", "--task", "dates", "--attention", "bogus"])
    for opt in ("--hidden", "--batch", "--steps", "--layers"):
        assert opt in bad(capsys, ["train-seq2seq", "--task", "dates", opt, "0"])
    # checkpoints: missing directory, directory without one, corrupt, of another kind
    assert "not a directory" in bad(capsys, ["translate", str(tmp_path / "nodir"), "x"])
    assert "no checkpoint" in bad(capsys, ["translate", str(tmp_path), "x"])
    assert "no checkpoint" in bad(capsys, ["eval-seq2seq", str(tmp_path)])
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "checkpoint.npz").write_bytes(b"PK\x03\x04garbage")
    assert "corrupt" in bad(capsys, ["eval-seq2seq", str(corrupt)])
    (corrupt / "checkpoint.npz").write_bytes(b"not a zip")
    assert "not an rnnkit checkpoint" in bad(capsys, ["translate", str(corrupt), "x"])
    assert "nothing to resume" in bad(capsys, ["train-seq2seq", "--task", "dates", "--resume", "--out",
                                               str(tmp_path / "fresh")] + TINY)
    assert not os.path.exists(tmp_path / "fresh")
    # a model without attention has none to plot; empty input
    out = str(tmp_path / "plain")
    train(config(steps=2, attention="none"), out, progress=False, log=lambda s: None)
    assert "no attention" in bad(capsys, ["translate", out, "abc", "--attention-plot", str(tmp_path / "a.png")])
    assert "empty" in bad(capsys, ["translate", out, ""])
    assert "--n-best" in bad(capsys, ["translate", out, "ab", "--beam", "2", "--n-best", "3"])
    assert "--beam" in bad(capsys, ["eval-seq2seq", out, "--beam", "0"])
    assert "differs" in bad(capsys, ["train-seq2seq", "--task", "dates", "--resume", "--out", out, "--steps", "4"]
                            + TINY)
    charlm_dir = tmp_path / "lm"
    from rnnkit.charlm import CharLM, Vocab

    CharLM(Vocab.from_text("abc"), "gru", 1, 4, 2).save(str(charlm_dir))
    assert "not a sequence-to-sequence checkpoint" in bad(capsys, ["translate", str(charlm_dir), "x"])


def test_eval_finds_a_changed_pairs_file(tmp_path, capsys):
    f = tmp_path / "p.tsv"
    f.write_text("".join(f"{w}\t{w[::-1]}\n" for w in ("ab", "abc", "bca", "cab", "ba", "cc", "aab", "bba")))
    out = str(tmp_path / "p")
    cfg = TrainConfig(data=pairs_spec(str(f)), hidden=8, embed=4, batch=4, steps=2, eval_every=5)
    train(cfg, out, progress=False, log=lambda s: None)
    assert cli(["eval-seq2seq", out, "--json"]) == 0
    capsys.readouterr()
    f.write_text("x\ty\n")
    assert "has changed" in bad(capsys, ["eval-seq2seq", out])
    os.remove(f)
    assert "is gone" in bad(capsys, ["eval-seq2seq", out])


def test_model_round_trips_through_its_checkpoint(tmp_path):
    out = str(tmp_path / "m")
    model = train(config(steps=3, bidirectional=True, attention="additive"), out, progress=False, log=lambda s: None)
    again, meta = Seq2Seq.load(out)
    assert again.config == model.config and meta["tokens"] == "char"
    for k in model.params:
        assert np.array_equal(model.params[k], again.params[k])


def test_console_script_prints_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rnnkit.cli", "eval-seq2seq", str(tmp_path)], capture_output=True,
                       text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "no checkpoint" in r.stderr


def test_alphabet_takes_literal_characters_and_ranges():
    from rnnkit.seq2seq.tasks import expand_alphabet

    assert expand_alphabet("a-f") == "abcdef"
    assert expand_alphabet("a-c0-2") == "abc012"
    assert expand_alphabet("xyz") == "xyz" and expand_alphabet("-ab") == "-ab" and expand_alphabet("ab-") == "ab-"
    with pytest.raises(ValueError, match="backwards"):
        expand_alphabet("z-a")


def test_max_output_is_the_decoding_limit_everywhere(tmp_path, capsys):
    """--max-output is the output limit of train-seq2seq, translate and eval-seq2seq; translate's and
    eval-seq2seq's former --max-len still works, with a note; --alphabet a-d is a range."""
    out = str(tmp_path / "m")
    assert cli(["train-seq2seq"] + REVERSE + ["--alphabet", "a-d", "--train-size", "200", "--steps", "2", "--max-output", "3", "--out",
                                             out] + TINY) == 0
    capsys.readouterr()
    meta = checkpoint.load(os.path.join(out, "checkpoint.npz"))[1]
    assert meta["max_len"] == 3 and meta["data"]["options"]["alphabet"] == "abcd"
    assert cli(["translate", out, "abca", "--beam", "1", "--max-output", "2"]) == 0
    new = capsys.readouterr()
    assert cli(["translate", out, "abca", "--beam", "1", "--max-len", "2"]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and len(old.out.strip()) <= 2
    assert "--max-len is deprecated here, use --max-output" in old.err
    assert cli(["eval-seq2seq", out, "--max-len", "2", "--json"]) == 0
    assert "deprecated" in capsys.readouterr().err
