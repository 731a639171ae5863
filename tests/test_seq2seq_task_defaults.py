"""Per-task defaults of train-seq2seq: a built-in task's recipe fills the flags not given, is printed,
and every explicit flag wins; the validation sample of a large validation split."""
import json
import os

import pytest

from rnnkit import checkpoint
from rnnkit.cli import main as cli
from rnnkit.seq2seq.cmd_train import TASK_TUNED, task_settings
from rnnkit.seq2seq.tasks import TASK_DEFAULTS, TASKS
from rnnkit.seq2seq.train import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["--train-size", "200", "--val-size", "20", "--test-size", "10", "--steps", "3", "--threads", "1",
         "--no-progress", "--embed", "8"]


def test_every_task_has_a_recipe_of_config_fields():
    fields = set(TrainConfig.__dataclass_fields__)
    assert set(TASK_DEFAULTS) == set(TASKS)
    for recipe in TASK_DEFAULTS.values():
        assert set(recipe) <= set(TASK_TUNED) <= fields


def test_task_settings_applied_and_overridden():
    d = TrainConfig()
    none = dict.fromkeys(TASK_TUNED)
    settings, applied = task_settings("addition", none, d)
    assert settings["cell"] == "gru" and settings["attention"] == "additive" and settings["bidirectional"] is True
    assert settings["layers"] == d.layers and "--bidirectional" in applied and "--cell gru" in applied
    assert settings["dropout"] == 0.1 and "--dropout 0.1" in applied
    settings, applied = task_settings("addition", {**none, "cell": "lstm", "bidirectional": False, "dropout": 0.0}, d)
    assert settings["cell"] == "lstm" and settings["bidirectional"] is False and settings["dropout"] == 0.0
    assert "--cell gru" not in applied and "--bidirectional" not in applied and "--attention additive" in applied
    settings, applied = task_settings(None, none, d)  # a pairs file: the general defaults
    assert applied == [] and settings["cell"] == d.cell and settings["attention"] == d.attention


def saved_train(out):
    return checkpoint.load(os.path.join(out, "checkpoint.npz"))[1]["train"]


def test_cli_prints_and_applies_the_task_defaults(tmp_path, capsys):
    out = str(tmp_path / "a")
    assert cli(["train-seq2seq", "--task", "dates", "--hidden", "16", "--out", out] + SMALL) == 0
    printed = capsys.readouterr().out
    assert "task dates: using its defaults --cell gru --bidirectional --attention general --eval-every 500" in printed
    cfg = saved_train(out)
    assert (cfg["cell"], cfg["bidirectional"], cfg["attention"], cfg["hidden"]) == ("gru", True, "general", 16)
    out = str(tmp_path / "b")
    assert cli(["train-seq2seq", "--task", "dates", "--hidden", "16", "--cell", "lstm", "--no-bidirectional",
                "--attention", "dot", "--eval-every", "2", "--out", out] + SMALL) == 0
    assert "using its defaults" not in capsys.readouterr().out
    cfg = saved_train(out)
    assert (cfg["cell"], cfg["bidirectional"], cfg["attention"], cfg["eval_every"]) == ("lstm", False, "dot", 2)


def test_validation_sample_of_a_large_split(tmp_path, capsys):
    out = str(tmp_path / "s")
    assert cli(["train-seq2seq", "--task", "reverse", "--min-len", "2", "--max-len", "4", "--hidden", "16",
                "--val-sample", "5", "--eval-every", "2", "--out", out] + SMALL) == 0
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["val_part"] for r in rows] == ["sample", "sample"]
    assert "full_val_exact_match" in rows[-1] and "full_val_loss" in rows[-1]
    assert sum(bool(r.get("best")) for r in rows) == 1
    assert "best: step" in capsys.readouterr().out
    for flag in ([], ["--latest"]):
        assert cli(["eval-seq2seq", out, "--json"] + flag) == 0
        assert json.loads(capsys.readouterr().out)["examples"] == 10
        assert cli(["translate", out, "abc", "--beam", "2"] + flag) == 0
        capsys.readouterr()
