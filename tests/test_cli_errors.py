"""Every subcommand against every class of ordinary mistake: each ends with one line on stderr naming
the problem and a non-zero exit status, never a traceback, and a bad output path is refused before any
work is done.

Classes: a missing file or directory; an unreadable one (a directory where a file belongs, bytes that
are not UTF-8); bad content (a corrupt checkpoint, a run of another kind, a file that is not JSON or not
what the option reads); a missing optional package (matplotlib, blocked here through sys.modules); an
output path that cannot be written (its directory missing, or a directory in its place). A class that
a command has no input for is left out of its row (e.g. `sample` writes no file)."""
import collections
import os
import subprocess
import sys

import pytest

from rnnkit.charlm.train import TrainConfig as LMConfig
from rnnkit.captions.data import shapes_spec
from rnnkit.captions.train import TrainConfig as CapConfig
from rnnkit.captions.train import train as train_cap
from rnnkit.charlm.train import train as train_lm
from rnnkit.classify.data import task_spec as classify_task
from rnnkit.classify.train import TrainConfig as ClassifierConfig
from rnnkit.classify.train import train as train_classifier
from rnnkit.cli import COMMANDS
from rnnkit.cli import main as cli
from rnnkit.seq2seq.data import task_spec
from rnnkit.seq2seq.train import TrainConfig as S2SConfig
from rnnkit.seq2seq.train import train as train_s2s

TEXT = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(80))
QUIET = dict(progress=False, log=lambda s: None)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A trained character model, a trained seq2seq model with attention, a trained classifier, and bad files
    of every kind."""
    d = tmp_path_factory.mktemp("mistakes")
    lm, s2s, clf = str(d / "lm"), str(d / "s2s"), str(d / "clf")
    train_lm(LMConfig(layers=1, hidden=8, embed=4, batch=2, seq_len=8, steps=2, eval_every=2), TEXT, lm, **QUIET)
    data = task_spec("reverse", 0, {"train": 100, "val": 5, "test": 5}, min_len=2, max_len=4, alphabet="abcd")
    train_s2s(S2SConfig(data=data, hidden=8, embed=4, batch=8, attention="dot", steps=2, eval_every=2), s2s, **QUIET)
    data = classify_task("majority", 0, {"train": 50, "val": 5, "test": 5}, min_len=2, max_len=5)
    train_classifier(ClassifierConfig(data=data, hidden=8, embed=4, batch=8, steps=2, eval_every=2), clf, **QUIET)
    cap = str(d / "cap")
    train_cap(CapConfig(data=shapes_spec(24, 2, val=4, test=4), hidden=8, embed=4, batch=4, steps=2, eval_every=2),
              cap, **QUIET)
    (d / "feats.npz").write_bytes(b"not numpy")
    (d / "corrupt").mkdir()
    (d / "corrupt" / "checkpoint.npz").write_bytes(b"PK\x03\x04garbage")
    (d / "text.txt").write_text(TEXT)
    (d / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1") * 50)
    (d / "notjson.json").write_text("{cases: oops")
    (d / "other.json").write_text('{"hello": 1}')
    (d / "pairs.tsv").write_text("ab\tba\nabc\tcba\n" * 20)
    (d / "malformed.tsv").write_text("no tab on this line\n")
    (d / "labels.tsv").write_text("".join(f"text {i}\t{'ab'[i % 2]}\n" for i in range(40)))
    (d / "adir").mkdir()
    return {k: str(d / k) for k in ("lm", "s2s", "clf", "cap", "feats.npz", "corrupt", "text.txt", "latin1.txt",
                                     "notjson.json", "other.json", "pairs.tsv", "labels.tsv", "malformed.tsv",
                                     "adir")} | {"root": str(d)}


def mistakes(f):
    """(class, command line, a word the message must hold) for every command."""
    missing, nodir = os.path.join(f["root"], "missing"), os.path.join(f["root"], "nodir", "out")
    lm_run = ["--layers", "1", "--hidden", "8", "--embed", "4", "--batch", "2", "--seq-len", "8", "--steps", "2",
              "--no-progress"]
    return [
        ("missing", ["bench", "--compare", missing + ".json", missing + ".json"], "No such file"),
        ("unreadable", ["bench", "--compare", f["adir"], f["adir"]], "directory"),
        ("bad content", ["bench", "--compare", f["notjson.json"], f["notjson.json"]], "not a JSON file"),
        ("bad content", ["bench", "--compare", f["other.json"], f["other.json"]], "not an rnnkit bench result"),
        ("no package", ["bench", "--quick", "--cell", "gru", "--plot", os.path.join(f["root"], "p.png")], "matplotlib"),
        ("unwritable", ["bench", "--quick", "--json", nodir + ".json"], "does not exist"),
        ("unwritable", ["bench", "--quick", "--markdown", f["adir"]], "is a directory"),

        ("missing", ["train-charlm", "--text", missing] + lm_run, "not found"),
        ("unreadable", ["train-charlm", "--text", f["adir"]] + lm_run, f["adir"]),
        ("unreadable", ["train-charlm", "--text", f["latin1.txt"]] + lm_run, "UTF-8"),
        ("bad content", ["train-charlm", "--text", f["text.txt"], "--out", f["corrupt"], "--resume"], "corrupt"),
        ("bad content", ["train-charlm", "--text", f["text.txt"], "--out", f["s2s"], "--resume"], "sequence-to-sequence"),
        ("unwritable", ["train-charlm", "--text", f["text.txt"], "--out", os.path.join(f["text.txt"], "x")] + lm_run,
         "not a directory"),

        ("missing", ["sample", missing], "not a directory"),
        ("unreadable", ["sample", f["adir"]], "no checkpoint"),
        ("bad content", ["sample", f["corrupt"]], "corrupt"),
        ("bad content", ["sample", f["s2s"]], "not a character-model checkpoint: it holds a sequence-to-sequence run "
                                               "(rnnkit train-seq2seq)"),

        ("missing", ["eval-charlm", missing, "--text", f["text.txt"]], "not a directory"),
        ("missing", ["eval-charlm", f["lm"], "--text", missing], "not found"),
        ("unreadable", ["eval-charlm", f["lm"], "--text", f["adir"]], f["adir"]),
        ("unreadable", ["eval-charlm", f["lm"], "--text", f["latin1.txt"]], "UTF-8"),
        ("bad content", ["eval-charlm", f["corrupt"], "--text", f["text.txt"]], "corrupt"),
        ("bad content", ["eval-charlm", f["s2s"], "--text", f["text.txt"]], "not a character-model checkpoint"),

        ("missing", ["train-seq2seq", "--pairs", missing, "--steps", "2"], "not found"),
        ("unreadable", ["train-seq2seq", "--pairs", f["adir"], "--steps", "2"], f["adir"]),
        ("unreadable", ["train-seq2seq", "--pairs", f["latin1.txt"], "--steps", "2"], "UTF-8"),
        ("bad content", ["train-seq2seq", "--pairs", f["malformed.tsv"], "--steps", "2"], "tab"),
        ("bad content", ["train-seq2seq", "--out", f["lm"], "--resume"], "character-model"),
        ("unwritable", ["train-seq2seq", "--pairs", f["pairs.tsv"], "--steps", "2", "--out",
                        os.path.join(f["text.txt"], "x")], "not a directory"),

        ("missing", ["translate", missing, "ab"], "not a directory"),
        ("bad content", ["translate", f["corrupt"], "ab"], "corrupt"),
        ("bad content", ["translate", f["lm"], "ab"], "not a sequence-to-sequence checkpoint: it holds a "
                                                      "character-model run (rnnkit train-charlm)"),
        ("no package", ["translate", f["s2s"], "ab", "--attention-plot", os.path.join(f["root"], "a.png")],
         "matplotlib"),
        ("unwritable", ["translate", f["s2s"], "ab", "--attention-plot", nodir + ".png"], "does not exist"),

        ("missing", ["cells", missing, "--text", f["text.txt"]], "not a directory"),
        ("missing", ["cells", f["lm"], "--text", missing], "not found"),
        ("unreadable", ["cells", f["lm"], "--text", f["adir"]], f["adir"]),
        ("unreadable", ["cells", f["lm"], "--text", f["latin1.txt"]], "UTF-8"),
        ("bad content", ["cells", f["corrupt"], "--text", f["text.txt"]], "corrupt"),
        ("bad content", ["cells", f["s2s"], "--text", f["text.txt"]], "not a character-model checkpoint"),
        ("unwritable", ["cells", f["lm"], "--text", f["text.txt"], "--html", nodir + ".html"], "does not exist"),

        ("missing", ["gradient-flow", "--from", missing, "--out", os.path.join(f["root"], "g.png")],
         "not a directory"),
        ("bad content", ["gradient-flow", "--from", f["corrupt"], "--out", os.path.join(f["root"], "g.png")],
         "corrupt"),
        ("bad content", ["gradient-flow", "--from", f["s2s"], "--out", os.path.join(f["root"], "g.png")],
         "not a character-model checkpoint"),
        ("no package", ["gradient-flow", "--out", os.path.join(f["root"], "g.png")], "matplotlib"),
        ("unwritable", ["gradient-flow", "--out", f["adir"]], "is a directory"),

        ("missing", ["eval-seq2seq", missing], "not a directory"),
        ("missing", ["eval-seq2seq", f["s2s"], "--pairs", missing], "not found"),
        ("unreadable", ["eval-seq2seq", f["s2s"], "--pairs", f["adir"]], f["adir"]),
        ("bad content", ["eval-seq2seq", f["corrupt"]], "corrupt"),
        ("bad content", ["eval-seq2seq", f["s2s"], "--pairs", f["malformed.tsv"]], "tab"),
        ("bad content", ["eval-seq2seq", f["lm"]], "not a sequence-to-sequence checkpoint"),

        ("missing", ["train-classifier", "--pairs", missing, "--steps", "2"], "not found"),
        ("unreadable", ["train-classifier", "--pairs", f["adir"], "--steps", "2"], f["adir"]),
        ("unreadable", ["train-classifier", "--pairs", f["latin1.txt"], "--steps", "2"], "UTF-8"),
        ("bad content", ["train-classifier", "--pairs", f["malformed.tsv"], "--steps", "2"], "tab"),
        ("bad content", ["train-classifier", "--out", f["lm"], "--resume"], "character-model"),
        ("unwritable", ["train-classifier", "--pairs", f["labels.tsv"], "--steps", "2", "--out",
                        os.path.join(f["text.txt"], "x")], "not a directory"),

        ("missing", ["eval-classifier", missing], "not a directory"),
        ("missing", ["eval-classifier", f["clf"], "--pairs", missing], "not found"),
        ("unreadable", ["eval-classifier", f["clf"], "--pairs", f["adir"]], f["adir"]),
        ("bad content", ["eval-classifier", f["corrupt"]], "corrupt"),
        ("bad content", ["eval-classifier", f["clf"], "--pairs", f["malformed.tsv"]], "tab"),
        ("bad content", ["eval-classifier", f["s2s"]], "not a classifier checkpoint"),
        ("no package", ["eval-classifier", f["clf"], "--plot", os.path.join(f["root"], "c.png")], "matplotlib"),
        ("unwritable", ["eval-classifier", f["clf"], "--plot", nodir + ".png"], "does not exist"),

        ("missing", ["classify", missing, "ab"], "not a directory"),
        ("bad content", ["classify", f["corrupt"], "ab"], "corrupt"),
        ("bad content", ["classify", f["lm"], "ab"], "not a classifier checkpoint"),
        ("missing", ["train-captions", "--features", missing, "--captions", f["pairs.tsv"], "--steps", "2"],
         "not found"),
        ("missing", ["train-captions", "--features", f["feats.npz"], "--captions", missing, "--steps", "2"],
         "not found"),
        ("unreadable", ["train-captions", "--features", f["adir"], "--captions", f["pairs.tsv"], "--steps", "2"],
         "not found"),
        ("bad content", ["train-captions", "--features", f["feats.npz"], "--captions", f["pairs.tsv"], "--steps",
                         "2"], "not a NumPy"),
        ("bad content", ["train-captions", "--out", f["s2s"], "--resume"], "sequence-to-sequence"),
        ("unwritable", ["train-captions", "--task", "shapes", "--steps", "2", "--out",
                        os.path.join(f["text.txt"], "x")], "not a directory"),

        ("missing", ["eval-captions", missing], "not a directory"),
        ("unreadable", ["eval-captions", f["adir"]], "no checkpoint"),
        ("bad content", ["eval-captions", f["corrupt"]], "corrupt"),
        ("bad content", ["eval-captions", f["s2s"]], "not a captioning checkpoint"),

        ("missing", ["caption", missing, "--index", "0"], "not a directory"),
        ("bad content", ["caption", f["corrupt"], "--index", "0"], "corrupt"),
        ("bad content", ["caption", f["lm"], "--index", "0"], "not a captioning checkpoint"),
        ("no package", ["caption", f["cap"], "--index", "0", "--attention-plot", os.path.join(f["root"], "a.png")],
         "matplotlib"),
        ("unwritable", ["caption", f["cap"], "--index", "0", "--attention-plot", nodir + ".png"], "does not exist"),

        ("missing", ["export-onnx", missing, os.path.join(f["root"], "m.onnx")], "not a directory"),
        ("unreadable", ["export-onnx", f["adir"], os.path.join(f["root"], "m.onnx")], "no checkpoint"),
        ("bad content", ["export-onnx", f["corrupt"], os.path.join(f["root"], "m.onnx")], "corrupt"),
        ("no package", ["export-onnx", f["lm"], os.path.join(f["root"], "m.onnx")], "onnx"),
        ("unwritable", ["export-onnx", f["lm"], nodir + ".onnx"], "does not exist"),
        ("unwritable", ["export-onnx", f["s2s"], nodir + ".onnx"], "does not exist"),
    ]


# Commands that read and write no file: no class applies to them.
NO_FILES = {"info"}


def test_every_command_has_a_row_of_every_applicable_class(files):
    rows = mistakes(files)
    assert {argv[0] for _, argv, _ in rows} == set(COMMANDS) - NO_FILES
    for command in set(COMMANDS) - NO_FILES:
        classes = {c for c, argv, _ in rows if argv[0] == command}
        assert {"missing", "bad content"} <= classes, command
    assert {c for c, _, _ in rows} == {"missing", "unreadable", "bad content", "no package", "unwritable"}


_SHAPE = mistakes(collections.defaultdict(lambda: "FILE"))  # the table's rows, for their count and names


@pytest.mark.parametrize("index", range(len(_SHAPE)), ids=[f"{argv[0]}-{kind}-{i}" for i, (kind, argv, _) in
                                                         enumerate(_SHAPE)])
def test_a_mistake_is_one_line_and_no_traceback(files, index, capsys, monkeypatch):
    kind, argv, word = mistakes(files)[index]
    before = set(os.listdir(files["root"]))
    if kind == "no package":  # `import matplotlib` (`import onnx`) now raises ImportError
        monkeypatch.setitem(sys.modules, "onnx" if argv[0] == "export-onnx" else "matplotlib", None)
    try:
        code = cli(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert code not in (0, None), (argv, out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"rnnkit {argv[0]}: error: "), err
    assert word in err, err
    assert out == ""  # refused before any work: nothing was printed, timed or trained
    assert set(os.listdir(files["root"])) == before  # and nothing was created


def test_a_missing_plotting_package_does_not_fail_training(tmp_path, capsys, monkeypatch):
    """curve.png is an extra of training: without matplotlib the run succeeds and says what it skipped."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    out = str(tmp_path / "run")
    assert cli(["train-charlm", "--text", str(text), "--out", out, "--layers", "1", "--hidden", "8", "--embed",
                "4", "--batch", "2", "--seq-len", "8", "--steps", "2", "--no-progress"]) == 0
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert "curve.png" not in os.listdir(out) and "checkpoint.npz" in os.listdir(out)


def test_the_console_entry_prints_one_line(files):
    """The real entry point (a new interpreter), for a missing file and a file that is not JSON."""
    for argv in (["bench", "--compare", files["notjson.json"], files["notjson.json"]],
                 ["eval-charlm", files["lm"], "--text", os.path.join(files["root"], "missing")]):
        r = subprocess.run([sys.executable, "-m", "rnnkit.cli"] + argv, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_every_option_states_its_default():
    """--help of every command gives every option's default (or what happens without it)."""
    import argparse
    import importlib

    from rnnkit.cliutil import Parser

    for name, command in COMMANDS.items():
        parsers = []
        real = Parser.parse_args

        def grab(self, args=None, namespace=None):
            parsers.append(self)
            raise SystemExit(0)

        Parser.parse_args = grab
        try:
            with pytest.raises(SystemExit):
                importlib.import_module(command.module).main(["--help"], prog=f"rnnkit {name}")
        finally:
            Parser.parse_args = real
        p = parsers[0]
        text = p.format_help()
        formatter = p._get_formatter()
        for a in p._actions:
            if (not a.option_strings or a.required or a.help == argparse.SUPPRESS
                    or isinstance(a, (argparse._HelpAction, argparse._StoreTrueAction))):
                continue
            assert "default" in formatter._get_help_string(a), (name, a.option_strings)
        valued = [a for a in p._actions if a.option_strings and a.default not in (None, False, argparse.SUPPRESS)]
        assert "(default: " in text or not valued, name  # info has flags only
