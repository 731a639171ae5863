"""Checkpoints that load without unpickling, written atomically.

One file, a NumPy ``.npz`` archive: named arrays, plus the entry ``__meta__`` holding UTF-8 JSON
(configuration, vocabulary, step, RNG states, ...). It is read with ``allow_pickle=False``, so loading
an untrusted file runs no code: it can only yield arrays of plain dtypes and JSON values.

Writing goes to a temporary file in the same directory, which is flushed, fsynced and then renamed over
the target with ``os.replace`` (atomic on POSIX and Windows): a write interrupted at any point leaves
the previous checkpoint as it was.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

__all__ = ["save", "load", "CheckpointError", "restore_arrays", "read_metrics", "LATEST_FILE", "BEST_FILE",
           "run_checkpoint"]

#: A training run's directory holds its latest checkpoint (what ``--resume`` continues) and its best one
#: (what the models load by default); see `rnnkit.training`.
LATEST_FILE, BEST_FILE = "checkpoint.npz", "best.npz"

_META = "__meta__"


class CheckpointError(ValueError):
    """The file is missing, truncated, corrupt or not an rnnkit checkpoint."""


def save(path: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Atomically write ``arrays`` (name -> numeric array) and ``meta`` (JSON-able) to ``path``."""
    if _META in arrays:
        raise ValueError(f"{_META!r} is reserved")
    payload = dict(arrays)
    payload[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Read (arrays, meta) from ``path``; raises CheckpointError with a one-line reason if it cannot."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(f"{path} is not an rnnkit checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    except KeyError:
        raise CheckpointError(f"{path} is not an rnnkit checkpoint (no metadata)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not an rnnkit checkpoint (metadata is not an object)")
    return arrays, meta


def restore_arrays(targets: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray], prefix: str) -> None:
    """Copy ``arrays[prefix + name]`` into each ``targets[name]`` in place (parameters stay the same
    objects, so optimisers holding them keep working). KeyError for a missing entry, CheckpointError
    naming an entry of the wrong shape."""
    for name, target in targets.items():
        a = arrays[prefix + name]
        if a.shape != target.shape:
            raise CheckpointError(f"{name} has shape {a.shape}, expected {target.shape}")
        np.copyto(target, a)


def read_metrics(path: str, up_to_step: int) -> List[Dict[str, Any]]:
    """The rows of a metrics.jsonl file up to ``up_to_step``: what a run resumed from the checkpoint
    of that step keeps (rows a crashed run wrote after its last checkpoint are dropped)."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r["step"] <= up_to_step]


def run_checkpoint(directory: str, latest: bool = False) -> str:
    """The checkpoint a model loads from a run directory: its best one, or its latest with ``latest``
    (also when there is no best one: a model saved alone, or a run of an older version).
    CheckpointError if ``directory`` is not a directory."""
    if not os.path.isdir(directory):
        raise CheckpointError(f"not a directory: {directory}")
    best = os.path.join(directory, BEST_FILE)
    if not latest and os.path.isfile(best):
        return best
    return os.path.join(directory, LATEST_FILE)
