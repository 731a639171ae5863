"""A full disk or a read-only output directory: the training commands stop with one line naming the file
and the cause (exit status 1, no traceback), and the previous checkpoint stays intact.

Two ways of making the fault, because chmod does not stop root from writing:
- in-process, the OS calls the atomic writer makes fail with ENOSPC (after part of the file is written)
  or EROFS (creating the temporary file), at the checkpoint write of a later evaluation: runs everywhere;
- a real tmpfs of a few hundred KiB, filled up, then remounted read-only: needs root and the permission
  to mount (skipped, saying so, where that is missing).
"""
import errno
import io
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import rnnkit
from rnnkit import _atomic, checkpoint
from rnnkit.cli import main as cli

TEXT = "".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(120))
ARGS = ["train-charlm", "--layers", "1", "--hidden", "32", "--embed", "8", "--batch", "4", "--seq-len", "16",
        "--threads", "1", "--no-progress", "--eval-every", "4"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "code.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def _snapshot(out):
    with open(os.path.join(out, "checkpoint.npz"), "rb") as f:
        return f.read()


def _one_line_error(capsys, argv):
    assert cli(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


class _FailingFile(io.BufferedWriter):
    """A file whose writes fail with ENOSPC once ``budget`` bytes have been written."""

    def __init__(self, raw, budget):
        super().__init__(raw)
        self.budget = budget

    def write(self, b):
        self.budget -= len(b)
        if self.budget < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(b)


@pytest.mark.parametrize("fault", ["disk-full", "read-only"])
def test_a_failing_checkpoint_write_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, text_file, capsys,
                                                                                  monkeypatch, fault):
    out = str(tmp_path / "run")
    assert cli([*ARGS, "--text", text_file, "--steps", "8", "--out", out]) == 0
    before = _snapshot(out)
    capsys.readouterr()
    real_fdopen, real_mkstemp = os.fdopen, tempfile.mkstemp

    def fdopen(fd, mode="r", *a, **kw):  # the writer's only way to its temporary file
        return _FailingFile(io.FileIO(fd, "w"), budget=1000)

    def mkstemp(*a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    if fault == "disk-full":
        monkeypatch.setattr(_atomic.os, "fdopen", fdopen)
    else:
        monkeypatch.setattr(_atomic.tempfile, "mkstemp", mkstemp)
    err = _one_line_error(capsys, [*ARGS, "--text", text_file, "--steps", "16", "--out", out, "--resume"])
    monkeypatch.setattr(_atomic.os, "fdopen", real_fdopen)
    monkeypatch.setattr(_atomic.tempfile, "mkstemp", real_mkstemp)
    cause = "No space left on device" if fault == "disk-full" else "Read-only file system"
    assert err.startswith("rnnkit train-charlm: error: ") and cause in err and out in err, err
    assert _snapshot(out) == before  # byte for byte
    assert checkpoint.load(os.path.join(out, "checkpoint.npz"))[1]["step"] == 8
    assert not [f for f in os.listdir(out) if f.startswith(_atomic.TMP_PREFIX)]
    # the fault gone, the run resumes from its intact checkpoint
    assert cli([*ARGS, "--text", text_file, "--steps", "12", "--out", out, "--resume"]) == 0
    assert checkpoint.load(os.path.join(out, "checkpoint.npz"))[1]["step"] == 12


def test_atomic_write_names_the_file_and_what_is_kept(tmp_path, monkeypatch):
    path = str(tmp_path / "f.bin")
    monkeypatch.setattr(_atomic.os, "fdopen", lambda fd, *a, **kw: _FailingFile(io.FileIO(fd, "w"), budget=3))
    with pytest.raises(OSError, match=r"cannot write .*f\.bin: No space left on device \(nothing was written\)"):
        _atomic.atomic_write(path, lambda f: f.write(b"12345678"))
    assert os.listdir(tmp_path) == []


def _mount_tmpfs(directory, size):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", directory], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount_tmpfs(str(disk), "400k")
    yield str(disk)
    subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(directory, leave):
    """Fill the file system of ``directory`` until about ``leave`` bytes are free."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    with open(os.path.join(directory, "filler"), "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def _cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(rnnkit.__file__)), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_a_real_full_disk_and_a_read_only_mount(small_disk, text_file):
    """On a 400 KiB tmpfs: a run, then the disk filled to a few KiB, then --resume (the checkpoint no
    longer fits); then the file system remounted read-only and --resume again."""
    out = os.path.join(small_disk, "run")
    r = _cli(*ARGS, "--text", text_file, "--steps", "8", "--out", out)
    assert r.returncode == 0, r.stderr
    before = _snapshot(out)
    assert len(before) > 16384  # the next checkpoint cannot fit in what _fill leaves
    _fill(small_disk, leave=8192)
    r = _cli(*ARGS, "--text", text_file, "--steps", "16", "--out", out, "--resume")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "No space left on device" in r.stderr and out in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert _snapshot(out) == before
    assert not [f for f in os.listdir(out) if f.startswith(_atomic.TMP_PREFIX)]
    os.unlink(os.path.join(small_disk, "filler"))
    subprocess.run(["mount", "-o", "remount,ro", small_disk], check=True)
    r = _cli(*ARGS, "--text", text_file, "--steps", "16", "--out", out, "--resume")
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "not writable" in r.stderr and out in r.stderr, r.stderr
    r = _cli(*ARGS, "--text", text_file, "--steps", "16", "--out", os.path.join(small_disk, "new"))
    assert r.returncode == 1 and "not writable" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert _snapshot(out) == before
    arrays, meta = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    assert meta["step"] == 8 and all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")
