"""rnnkit.checkpoint: round trip, atomic replacement, and refusal of corrupt or pickled files."""
import os

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.checkpoint import CheckpointError


def test_round_trip(tmp_path):
    path = str(tmp_path / "c.npz")
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b/c": np.array([1, 2], np.int64)}
    meta = {"step": 3, "rng": {"state": 2 ** 100 + 1}, "vocab": ["é", "∑", "\n"]}
    checkpoint.save(path, arrays, meta)
    got, got_meta = checkpoint.load(path)
    assert got_meta == meta
    assert set(got) == set(arrays)
    for k in arrays:
        assert got[k].dtype == arrays[k].dtype and np.array_equal(got[k], arrays[k])


def test_interrupted_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    checkpoint.save(path, {"w": np.zeros(1000)}, {"step": 1})

    def half_written(f, **arrays):  # writes part of an archive, then dies
        f.write(b"PK\x03\x04" + b"\0" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"w": np.ones(1000)}, {"step": 2})
    monkeypatch.undo()
    arrays, meta = checkpoint.load(path)
    assert meta == {"step": 1} and not arrays["w"].any()
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary file left behind


def test_truncated_and_foreign_files(tmp_path):
    path = str(tmp_path / "c.npz")
    checkpoint.save(path, {"w": np.ones(1000)}, {"step": 1})
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoint.load(path)
    open(path, "wb").write(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not an .npz"):
        checkpoint.load(path)
    np.savez(path, w=np.ones(3))  # an archive, but not ours
    with pytest.raises(CheckpointError, match="no metadata"):
        checkpoint.load(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load(str(tmp_path / "missing.npz"))


_ran = []


def _payload():
    _ran.append(True)
    return 0


class _Evil:
    def __reduce__(self):
        return (_payload, ())


def test_loading_a_pickle_runs_no_code(tmp_path):
    path = str(tmp_path / "c.npz")
    np.savez(path, __meta__=np.frombuffer(b"{}", np.uint8), w=np.array([_Evil()], dtype=object))
    with pytest.raises(CheckpointError):
        checkpoint.load(path)
    assert not _ran
