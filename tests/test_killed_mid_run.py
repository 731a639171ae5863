"""Training killed at any moment (SIGKILL: no handler runs, no file is closed) loses at most the steps
since its last checkpoint: the directory always holds a loadable checkpoint, and `--resume` reaches,
bit for bit at the same thread count, the weights an uninterrupted run has at the same step.

Each test runs one chain for a command: the first run and every resume is killed, either at a chosen
point of a checkpoint write (hooks installed in the child process: half the archive written, the whole
temporary file written but not renamed, renamed but the directory not yet synced, the best copy about to
be renamed) or from outside at a random moment (seeded); after each kill the directory is checked; the
last resume runs to the end and its checkpoint is compared with an uninterrupted run's, array by array.
"""
import glob
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import rnnkit
from rnnkit import checkpoint

STEPS = 200
CHARLM = ["train-charlm", "--layers", "2", "--hidden", "16", "--embed", "8", "--batch", "4", "--seq-len", "16",
          "--dropout", "0.2", "--eval-every", "2", "--val-sample", "256"]
SEQ2SEQ = ["train-seq2seq", "--task", "reverse", "--min-len", "2", "--max-len", "5", "--alphabet", "abcde",
           "--train-size", "200", "--val-size", "16", "--test-size", "16", "--hidden", "16", "--embed", "8",
           "--batch", "16", "--dropout", "0.2", "--teacher-forcing", "0.5", "--eval-every", "2"]
COMMON = ["--steps", str(STEPS), "--threads", "1", "--no-progress"]

# Runs the CLI with a kill hook: argv[1] names the point, argv[2] after how many matching events to kill
# (so the kill lands at a different checkpoint each time), the rest are the command's arguments.
DRIVER = r"""
import io, os, signal, sys
import numpy as np
from rnnkit import checkpoint
from rnnkit.cli import main

point, nth = sys.argv[1], int(sys.argv[2])
seen = [0]

def due(path):
    if os.path.basename(path) != ("best.npz" if point == "before-best-rename" else "checkpoint.npz"):
        return False
    seen[0] += 1
    return seen[0] >= nth

def die():
    os.kill(os.getpid(), signal.SIGKILL)

real_replace, real_savez = os.replace, np.savez
target = []

def replace(src, dst):
    if point in ("before-rename", "before-best-rename") and due(dst):
        die()
    real_replace(src, dst)
    if point == "after-rename" and due(dst):
        die()  # before the directory's fsync and before metrics.jsonl is rewritten

def savez(f, **arrays):
    if point == "mid-write" and due(target[-1]):
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        os.fsync(f.fileno())
        die()
    real_savez(f, **arrays)

real_save = checkpoint.save
def save(path, arrays, meta):
    target.append(path)
    real_save(path, arrays, meta)

os.replace, np.savez, checkpoint.save = replace, savez, save
sys.exit(main(sys.argv[3:]))
"""

# The best copy goes first: it is written only when validation improves, which a young run does at nearly
# every evaluation and a late one may not do four times before its end.
HOOKS = [("before-best-rename", 4), ("mid-write", 3), ("before-rename", 5), ("after-rename", 7)]


def _env():
    env = dict(os.environ)
    # The children import the rnnkit the tests import (a checkout's python/ or an installed wheel).
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(rnnkit.__file__)), env.get("PYTHONPATH", "")])
    return env


def _hooked(point, nth, args):
    return subprocess.run([sys.executable, "-c", DRIVER, point, str(nth), *args], env=_env(), capture_output=True,
                          text=True, timeout=120)


def _inode(path):
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _killed_at_random(args, rng, out):
    """Start the command, let it write 1-5 checkpoints of its own (each a new file: os.replace gives it a
    new inode), SIGKILL it a random moment of up to 5 ms later; False if it finished first. Counting
    checkpoints rather than waiting a random time bounds the steps each kill lets pass on any machine, so
    the chain's later kill points still find steps to run."""
    path = os.path.join(out, "checkpoint.npz")
    last, wanted, seen = _inode(path), rng.randint(1, 5), 0
    p = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", *args], env=_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while seen < wanted and p.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        now = _inode(path)
        if now != last:
            last, seen = now, seen + 1
        time.sleep(0.0005)
    time.sleep(rng.uniform(0.0, 0.005))
    p.send_signal(signal.SIGKILL)
    p.wait()
    return p.returncode == -signal.SIGKILL


def _weights(out):
    arrays, meta = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    return arrays, meta["step"]


def _rng_and_optimiser(out):
    meta = checkpoint.load(os.path.join(out, "checkpoint.npz"))[1]
    return meta.get("rng"), meta.get("optim")


def _check_loadable(out, load_model):
    """The directory's checkpoint loads (as an archive and as a model) and no step is past the target."""
    arrays, step = _weights(out)
    assert 1 <= step <= STEPS
    load_model(out)
    if os.path.exists(os.path.join(out, "best.npz")):
        checkpoint.load(os.path.join(out, "best.npz"))
    return step


def _chain(tmp_path, command, load_model, text_args=()):
    base = [*command, *text_args, *COMMON]
    ref = str(tmp_path / "uninterrupted")
    done = subprocess.run([sys.executable, "-m", "rnnkit.cli", *base, "--out", ref], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = str(tmp_path / "killed")
    first = [*base, "--out", out]
    again = [*base, "--out", out, "--resume"]
    steps_at_kill = []
    rng = random.Random(17)  # seeded, so that a failure repeats
    # The deterministic points inside checkpoint writes (the first run is the first one killed), each
    # followed by a kill at a random moment of the next resume.
    for i, (point, nth) in enumerate(HOOKS):
        r = _hooked(point, nth, first if i == 0 else again)
        assert r.returncode == -signal.SIGKILL, (point, r.returncode, r.stderr)
        steps_at_kill.append((point, _check_loadable(out, load_model)))
        if _killed_at_random(again, rng, out):
            steps_at_kill.append(("random", _check_loadable(out, load_model)))
    assert len(steps_at_kill) >= len(HOOKS) + 2, steps_at_kill
    if _weights(out)[1] < STEPS:  # (a random kill may land after the last checkpoint)
        final = subprocess.run([sys.executable, "-m", "rnnkit.cli", *again], env=_env(), capture_output=True,
                               text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        assert not glob.glob(os.path.join(out, ".tmp-*")), "a killed write's temporary file was left behind"
    (a, step_a), (b, step_b) = _weights(ref), _weights(out)
    assert step_a == step_b == STEPS
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), (k, steps_at_kill)
    assert _rng_and_optimiser(ref) == _rng_and_optimiser(out)
    return steps_at_kill


def test_charlm_killed_anywhere_resumes_to_the_same_weights(tmp_path):
    from rnnkit.charlm import CharLM

    text = tmp_path / "code.txt"
    text.write_text("".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(120)), encoding="utf-8")
    _chain(tmp_path, CHARLM, lambda d: CharLM.load(d, latest=True), ("--text", str(text)))


def test_seq2seq_killed_anywhere_resumes_to_the_same_weights(tmp_path):
    from rnnkit.seq2seq import Seq2Seq

    _chain(tmp_path, SEQ2SEQ, lambda d: Seq2Seq.load(d, latest=True))


@pytest.mark.parametrize("command", ["charlm", "seq2seq"])
def test_a_run_killed_before_its_first_checkpoint_can_start_again(tmp_path, command):
    """Nothing is kept before the first checkpoint: --resume says there is nothing to resume, and the
    same command with --overwrite starts again and finishes."""
    text = tmp_path / "code.txt"
    text.write_text("abc def\n" * 400, encoding="utf-8")
    args = [*(CHARLM + ["--text", str(text)] if command == "charlm" else SEQ2SEQ), *COMMON, "--out",
            str(tmp_path / "run")]
    r = _hooked("mid-write", 1, args)
    assert r.returncode == -signal.SIGKILL, r.stderr
    r = subprocess.run([sys.executable, "-m", "rnnkit.cli", *args, "--resume"], env=_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "nothing to resume" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "rnnkit.cli", *args, "--overwrite"], env=_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not glob.glob(str(tmp_path / "run" / ".tmp-*"))
