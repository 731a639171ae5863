"""Text for character-level language models: the default corpus, the train/validation split and
the batches (char-rnn's scheme).

Shape legend: S = chunk length (--seq-len), B = streams (--batch), n = steps per stream.
"""
from __future__ import annotations

import glob
import os
import sysconfig
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["default_corpus", "read_texts", "split", "TrainStreams", "eval_chunks", "TextError"]

#: Directories of the standard library left out of the default corpus: tests, and data-like or
#: third-party code that does not read like ordinary Python.
_EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "encodings", "pydoc_data", "lib2to3"}


class TextError(ValueError):
    """Unusable training or evaluation text (missing, empty, too short)."""


def default_corpus(max_chars: int = 1_500_000) -> str:
    """The running interpreter's standard library source: its .py files in sorted path order, tests
    and data-like packages excluded, concatenated until ``max_chars`` characters (whole files only)."""
    root = sysconfig.get_paths()["stdlib"]
    parts: List[str] = []
    total = 0
    for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, root).split(os.sep)
        if any(p in _EXCLUDED_DIRS or p.startswith("test_") for p in rel):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                src = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        if total + len(src) > max_chars and parts:
            break
        parts.append(src)
        total += len(src)
    if not parts:
        raise TextError(f"no Python sources found under {root} for the default corpus")
    return "".join(parts)


def read_texts(paths: Sequence[str]) -> str:
    """The UTF-8 contents of ``paths`` concatenated; TextError for a missing, unreadable or empty file."""
    parts = []
    for path in paths:
        if not os.path.isfile(path):
            raise TextError(f"text file not found: {path}")
        try:
            with open(path, encoding="utf-8") as f:
                parts.append(f.read())
        except UnicodeDecodeError as e:
            raise TextError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        except OSError as e:
            raise TextError(f"cannot read {path}: {e.strerror}") from None
        if not parts[-1]:
            raise TextError(f"text file is empty: {path}")
    return "".join(parts)


def split(text: str, val_frac: float) -> Tuple[str, str]:
    """(training part, validation part): the validation part is the last ``val_frac`` of the text."""
    if not 0.0 < val_frac < 1.0:
        raise TextError(f"--val-frac must lie strictly between 0 and 1, got {val_frac}")
    n_val = int(round(len(text) * val_frac))
    if n_val < 2:
        raise TextError(f"the validation part ({n_val} characters) is too short: use a longer text or a "
                        "larger --val-frac")
    return text[:-n_val], text[-n_val:]


class TrainStreams:
    """B contiguous streams through the ids (char-rnn): stream b reads pairs (ids[i], ids[i+1]) for i in
    [b*n, (b+1)*n); batch k is steps [k*S, (k+1)*S) of every stream, so consecutive batches continue
    each other and the hidden state can be carried. Batch k of step s is k = s % num_batches."""

    def __init__(self, ids: np.ndarray, batch: int, seq_len: int):
        n = (len(ids) - 1) // batch
        if n < seq_len:
            raise TextError(f"the training part ({len(ids)} characters) is shorter than one batch of "
                            f"{batch} streams x {seq_len + 1} characters: use a longer text or a smaller "
                            "--batch / --seq-len")
        self.seq_len = seq_len
        self.x = np.ascontiguousarray(ids[:batch * n].reshape(batch, n).T)  # (n, B)
        self.y = np.ascontiguousarray(ids[1:batch * n + 1].reshape(batch, n).T)
        self.num_batches = n // seq_len

    def batch(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """(inputs, targets), each (S, B) int32, of batch k (0 <= k < num_batches)."""
        s = slice(k * self.seq_len, (k + 1) * self.seq_len)
        return self.x[s], self.y[s]


def eval_chunks(ids: np.ndarray, batch: int, seq_len: int
                ) -> Iterator[Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]:
    """Every prediction pair (ids[i], ids[i+1]) of the text exactly once, as B contiguous streams of
    equal length n = ceil(pairs / B) in chunks of at most S steps: yields (inputs (s, B), targets (s, B),
    weights (s, B) float or None). The last stream is padded at its end; padding has weight 0 and,
    coming after the real pairs of its stream, cannot influence them."""
    pairs = len(ids) - 1
    if pairs < 1:
        raise TextError("evaluation needs a text of at least two characters")
    batch = min(batch, pairs)
    n = -(-pairs // batch)
    pad = batch * n - pairs
    x = np.concatenate([ids[:-1], np.zeros(pad, ids.dtype)]).reshape(batch, n).T
    y = np.concatenate([ids[1:], np.zeros(pad, ids.dtype)]).reshape(batch, n).T
    w: Optional[np.ndarray] = None
    if pad:
        flat = np.ones(batch * n, np.float64)
        flat[pairs:] = 0
        w = flat.reshape(batch, n).T
    for start in range(0, n, seq_len):
        s = slice(start, start + seq_len)
        yield (np.ascontiguousarray(x[s]), np.ascontiguousarray(y[s]),
               None if w is None else np.ascontiguousarray(w[s]))
