"""Checkpoints that load without unpickling, written atomically.

One file, a NumPy ``.npz`` archive: named arrays, plus the entry ``__meta__`` holding UTF-8 JSON
(configuration, vocabulary, step, RNG states, ...). It is read with ``allow_pickle=False``, so loading
an untrusted file runs no code: it can only yield arrays of plain dtypes and JSON values.

Writing goes to a temporary file in the same directory, which is flushed, fsynced and then renamed over
the target with ``os.replace`` (atomic on POSIX and Windows): a write interrupted at any point leaves
the previous checkpoint as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zipfile
import zlib
from typing import Any, Dict, Iterator, List, Mapping, Tuple

import numpy as np

from ._atomic import atomic_write

__all__ = [
    "save",
    "load",
    "CheckpointError",
    "restore_arrays",
    "check_config_sizes",
    "read_metrics",
    "FORMAT_VERSION",
    "LATEST_FILE",
    "BEST_FILE",
    "run_checkpoint",
]

#: A training run's directory holds its latest checkpoint (what ``--resume`` continues) and its best one
#: (what the models load by default); see `rnnkit.training`.
LATEST_FILE, BEST_FILE = "checkpoint.npz", "best.npz"

_META = "__meta__"
FORMAT_VERSION = 1  # the newest ``version`` in the metadata this code reads
_DTYPE_KINDS = "biuf"  # bool, integers, floats: what a checkpoint holds; no objects, strings or records
_MAX_EXPANSION = 100  # a compressed archive may hold at most this many times its size (zip bombs)


class CheckpointError(ValueError):
    """The file is missing, truncated, corrupt or not an rnnkit checkpoint."""


def save(path: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Atomically write ``arrays`` (name -> numeric array) and ``meta`` (JSON-able) to ``path``."""
    if _META in arrays:
        raise ValueError(f"{_META!r} is reserved")
    payload: Dict[str, Any] = dict(arrays)  # savez's keyword arguments
    payload[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload))


def _check_members(path: str) -> None:
    """Read every member's .npy header (not its data) and refuse, with a one-line reason, what loading
    would turn into objects, garbage or a huge allocation: a member that is not an array, a dtype that
    is not plain numbers (object arrays are pickles), a header whose shape and dtype disagree with the
    bytes stored, or an archive that expands far beyond its size."""
    total = 0
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"{path}: entry {info.filename!r} is not an array")
            with z.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise CheckpointError(f"{path}: array {name!r} has an unsupported .npy version {version}")
                header = f.tell()
            if dtype.hasobject:
                raise CheckpointError(f"{path}: array {name!r} holds Python objects (a pickle); refused")
            if dtype.kind not in _DTYPE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
                raise CheckpointError(f"{path}: array {name!r} has dtype {dtype}, not a plain numeric dtype")
            expected = dtype.itemsize
            for n in shape:
                expected *= n  # Python integers: no overflow, whatever the header claims
            if expected != info.file_size - header:
                raise CheckpointError(
                    f"{path}: array {name!r} claims shape {shape} of {dtype} ({expected} bytes) "
                    f"but holds {info.file_size - header} bytes"
                )
            total += info.file_size
    size = os.path.getsize(path)
    if total > _MAX_EXPANSION * size and total > 2**26:
        raise CheckpointError(f"{path} expands to {total} bytes from {size} (more than {_MAX_EXPANSION}x); refused")


def load(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Read (arrays, meta) from ``path``; raises CheckpointError with a one-line reason naming the file
    if it cannot: missing, truncated, corrupt (the archive's CRCs are checked), an array whose header
    disagrees with its data, an object array or pickle (never unpickled), or a format ``version`` newer
    than `FORMAT_VERSION`."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(f"{path} is not an rnnkit checkpoint (not an .npz archive)")
    try:
        _check_members(path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    except KeyError:
        raise CheckpointError(f"{path} is not an rnnkit checkpoint (no metadata)") from None
    except RecursionError:
        raise CheckpointError(f"{path} is corrupt (metadata nested too deeply)") from None
    except CheckpointError:
        raise
    except (
        OSError,
        ValueError,
        EOFError,
        zipfile.BadZipFile,
        UnicodeDecodeError,
        NotImplementedError,
        IndexError,
        OverflowError,
        struct.error,
        zlib.error,
    ) as e:  # what zipfile and numpy raise on crafted archives
        raise CheckpointError(f"{path} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not an rnnkit checkpoint (metadata is not an object)")
    version = meta.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version}, newer than this rnnkit reads ({FORMAT_VERSION}): upgrade rnnkit"
        )
    return arrays, meta


def restore_arrays(targets: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray], prefix: str) -> None:
    """Copy ``arrays[prefix + name]`` into each ``targets[name]`` in place (parameters stay the same
    objects, so optimisers holding them keep working). CheckpointError naming an entry that is missing
    or has the wrong shape or dtype."""
    for name, target in targets.items():
        if prefix + name not in arrays:
            raise CheckpointError(f"array {prefix + name} is missing")
        a = arrays[prefix + name]
        if a.shape != target.shape:
            raise CheckpointError(f"{name} has shape {a.shape}, expected {target.shape}")
        if a.dtype != target.dtype:
            raise CheckpointError(f"{name} has dtype {a.dtype}, expected {target.dtype}")
        np.copyto(target, a)


@contextlib.contextmanager
def building_from(path: str) -> Iterator[None]:
    """Around building a model from the checkpoint read from ``path``: a CheckpointError gains the
    path, and a KeyError, ValueError, TypeError or AttributeError (metadata the model cannot be built
    from) becomes a CheckpointError saying that the file is inconsistent."""
    try:
        yield
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}" if path not in str(e) else str(e)) from None
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path} is inconsistent ({type(e).__name__}: {e})") from None


def check_config_sizes(config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], path: str) -> None:
    """CheckpointError unless every size in a model's saved ``config`` (its integer entries but the seed)
    is one the file's arrays can back: at least 0 and at most their largest dimension (layer counts: at
    most the number of arrays). Called before the model is built, so a crafted configuration cannot make
    it allocate far beyond the file's size."""
    largest = max((n for a in arrays.values() for n in a.shape), default=0)
    for key, value in config.items():
        if key == "seed" or isinstance(value, bool) or not isinstance(value, int):
            continue
        limit = len(arrays) if "layers" in key else largest
        if not 0 <= value <= limit:
            raise CheckpointError(f"{path}: model {key}={value} is not backed by its arrays (expected 0..{limit})")


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
