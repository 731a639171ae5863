"""A training command never destroys a run by accident (rnnkit.rundir): a directory that holds a run
needs --resume or --overwrite; --resume keeps the saved settings, refuses contradicting options by name,
applies the changeable ones with a line saying so, refuses a step target already reached and a run of
another kind; nothing is created before the arguments are valid, and a run that fails before its first
checkpoint leaves nothing behind. Both training commands go through the same helper."""
import json
import os

import pytest

from rnnkit import checkpoint
from rnnkit.charlm import train as charlm_train
from rnnkit.cli import main as cli
from rnnkit.rundir import RUN_FILES

TEXT = "".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(120))
LM = ["--layers", "1", "--hidden", "16", "--embed", "8", "--batch", "4", "--seq-len", "16", "--threads", "1",
      "--no-progress", "--eval-every", "4", "--schedule", "constant", "--warmup", "0"]
S2S = ["--task", "reverse", "--min-len", "2", "--max-len", "4", "--alphabet", "abcd", "--train-size", "200",
       "--val-size", "10", "--test-size", "10", "--hidden", "8", "--embed", "4", "--batch", "16", "--threads", "1",
       "--no-progress", "--eval-every", "3"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "code.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def run_cli(capsys, argv):
    try:
        code = cli(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def meta(directory):
    return checkpoint.load(os.path.join(directory, "checkpoint.npz"))[1]


def fails(capsys, argv):
    code, _, err = run_cli(capsys, argv)
    assert code != 0 and len(err.strip().splitlines()) == 1, err
    return err


def lm(text_file, out, *extra):
    return ["train-charlm", "--text", text_file, "--out", out] + LM + list(extra)


def test_an_existing_run_is_never_overwritten_silently(tmp_path, text_file, capsys):
    out = str(tmp_path / "run")
    assert run_cli(capsys, lm(text_file, out, "--steps", "8"))[0] == 0
    before = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    err = fails(capsys, lm(text_file, out, "--steps", "8"))
    assert "--resume" in err and "--overwrite" in err and "character-model run" in err and "step 8" in err
    assert {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)} == before  # untouched

    # --overwrite replaces the run's files, best.npz included, and leaves the user's own files alone
    (tmp_path / "run" / "notes.txt").write_text("mine")
    (tmp_path / "run" / "best.npz").write_bytes(before["checkpoint.npz"])
    assert run_cli(capsys, lm(text_file, out, "--steps", "4", "--overwrite"))[0] == 0
    assert meta(out)["step"] == 4 and (tmp_path / "run" / "notes.txt").read_text() == "mine"
    assert checkpoint.load(str(tmp_path / "run" / "best.npz"))[1]["step"] == 4  # the new run's, not the old
    assert [json.loads(x)["step"] for x in open(os.path.join(out, "metrics.jsonl"))] == [4]

    # a directory with only unrelated files is not a run: a new run may use it
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1,2\n")
    assert run_cli(capsys, lm(text_file, str(other), "--steps", "4"))[0] == 0
    assert "--resume" in fails(capsys, ["train-charlm", "--resume", "--overwrite", "--out", out])


def test_resume_keeps_refuses_and_changes_settings_by_name(tmp_path, text_file, capsys):
    out = str(tmp_path / "run")
    assert run_cli(capsys, lm(text_file, out, "--steps", "8", "--lr", "0.002"))[0] == 0
    saved = open(os.path.join(out, "checkpoint.npz"), "rb").read()

    err = fails(capsys, ["train-charlm", "--text", text_file, "--out", out, "--resume", "--hidden", "32",
                         "--cell", "gru", "--steps", "12"])
    assert "--hidden 32 (the run has 16)" in err and "--cell gru (the run has lstm)" in err
    err = fails(capsys, ["train-charlm", "--text", text_file, "--out", out, "--resume", "--steps", "4"])
    assert "already at step 8" in err and "--steps 4" in err
    err = fails(capsys, ["train-charlm", "--text", text_file, "--out", out, "--resume"])  # its 8 steps are done
    assert "already at step 8" in err and "target of 8 steps" in err
    assert open(os.path.join(out, "checkpoint.npz"), "rb").read() == saved  # refusals change nothing

    # the same values as saved are no contradiction; --lr and --clip change, and say so
    code, printed, _ = run_cli(capsys, ["train-charlm", "--text", text_file, "--out", out, "--resume", "--hidden",
                                        "16", "--steps", "12", "--lr", "0.001", "--clip", "1", "--no-progress"])
    assert code == 0
    assert "resuming" in printed and "at step 8" in printed and "to step 12" in printed and "hidden 16" in printed
    assert "changed on resume: --lr 0.001 (was 0.002), --clip 1.0 (was 5.0)" in printed
    m = meta(out)
    assert m["step"] == 12 and m["train"]["lr"] == 0.001 and m["train"]["clip"] == 1.0
    assert m["optim"]["lr"] == pytest.approx(0.001)  # the optimiser used it (LM's schedule is constant)
    assert [json.loads(x)["step"] for x in open(os.path.join(out, "metrics.jsonl"))] == [4, 8, 12]


def test_resuming_the_wrong_kind_names_both(tmp_path, text_file, capsys):
    lm_dir, s2s_dir = str(tmp_path / "lm"), str(tmp_path / "s2s")
    assert run_cli(capsys, lm(text_file, lm_dir, "--steps", "4"))[0] == 0
    assert run_cli(capsys, ["train-seq2seq", "--out", s2s_dir, "--steps", "3"] + S2S)[0] == 0
    err = fails(capsys, ["train-charlm", "--text", text_file, "--out", s2s_dir, "--resume", "--steps", "8"])
    assert "sequence-to-sequence run (rnnkit train-seq2seq)" in err and "character-model run (rnnkit train-charlm)" in err
    err = fails(capsys, ["train-seq2seq", "--out", lm_dir, "--resume", "--steps", "8"])
    assert "character-model run (rnnkit train-charlm)" in err and "sequence-to-sequence run" in err
    err = fails(capsys, ["train-seq2seq", "--out", lm_dir, "--steps", "8"] + S2S)  # a new run there: refused
    assert "character-model run" in err and "--overwrite" in err


def test_seq2seq_resume_goes_through_the_same_checks(tmp_path, capsys):
    out = str(tmp_path / "s2s")
    assert run_cli(capsys, ["train-seq2seq", "--out", out, "--steps", "3"] + S2S)[0] == 0
    assert "--resume" in fails(capsys, ["train-seq2seq", "--out", out, "--steps", "6"] + S2S)
    err = fails(capsys, ["train-seq2seq", "--out", out, "--resume", "--steps", "6", "--attention", "dot",
                         "--layers", "2"])
    assert "--attention dot (the run has general)" in err  # reverse's own default and "--layers 2 (the run has 1)" in err
    code, printed, _ = run_cli(capsys, ["train-seq2seq", "--out", out, "--resume", "--steps", "6", "--max-output",
                                        "7", "--teacher-forcing", "0.5", "--no-progress"])
    assert code == 0 and "--max-output 7 (was the default)" in printed and "--teacher-forcing 0.5 (was 1.0)" in printed
    m = meta(out)
    assert m["step"] == 6 and m["max_len"] == 7 and m["train"]["teacher_forcing"] == 0.5
    assert "differs" in fails(capsys, ["train-seq2seq", "--task", "dates", "--out", out, "--resume", "--steps", "9"])


def test_nothing_is_created_before_the_arguments_are_valid(tmp_path, text_file, capsys):
    short = tmp_path / "short.txt"
    short.write_text("x = 1\n" * 10)
    cases = [lm(text_file, str(tmp_path / "a"), "--steps", "4", "--dropout", "2"),
             lm(str(short), str(tmp_path / "b"), "--steps", "4"),
             lm(str(tmp_path / "missing.txt"), str(tmp_path / "c"), "--steps", "4"),
             ["train-charlm", "--text", text_file, "--out", str(tmp_path / "d"), "--resume"],
             ["train-seq2seq", "--out", str(tmp_path / "e"), "--steps", "3", "--bidirectional", "--hidden", "7"]
             + S2S[:-12],
             ["train-seq2seq", "--out", str(tmp_path / "f"), "--pairs", str(short), "--steps", "3"],
             ["train-seq2seq", "--out", str(tmp_path / "g"), "--resume"]]
    for argv in cases:
        fails(capsys, argv)
    assert sorted(os.listdir(tmp_path)) == ["code.txt", "short.txt"]
    (tmp_path / "file").write_text("")
    assert "not a directory" in fails(capsys, lm(text_file, str(tmp_path / "file" / "run"), "--steps", "4"))


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path, monkeypatch):
    def broken(self):
        raise KeyboardInterrupt

    cfg = charlm_train.TrainConfig(layers=1, hidden=8, embed=4, batch=3, seq_len=8, steps=8, eval_every=4)
    monkeypatch.setattr(charlm_train.CharLMRun, "batch_loss", broken)
    out = str(tmp_path / "new" / "run")
    with pytest.raises(KeyboardInterrupt):
        charlm_train.train(cfg, TEXT, out, progress=False, log=lambda s: None)
    assert not os.path.exists(tmp_path / "new")  # nor the parent directory it made
    existing = tmp_path / "existing"  # a directory the user made stays, without the run's files
    existing.mkdir()
    with pytest.raises(KeyboardInterrupt):
        charlm_train.train(cfg, TEXT, str(existing), progress=False, log=lambda s: None)
    assert os.listdir(existing) == []

    # interrupted after a checkpoint: the run is kept, to be resumed
    calls = []
    monkeypatch.undo()
    real = charlm_train.CharLMRun.batch_loss

    def late(self):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(charlm_train.CharLMRun, "batch_loss", late)
    out = str(tmp_path / "kept")
    with pytest.raises(KeyboardInterrupt):
        charlm_train.train(cfg, TEXT, out, progress=False, log=lambda s: None)
    assert meta(out)["step"] == 4 and set(os.listdir(out)) <= set(RUN_FILES)
