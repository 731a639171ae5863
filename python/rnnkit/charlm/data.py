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

__all__ = ["default_corpus", "default_corpus_files", "split_files", "SPLIT_SEED", "read_texts", "split",
           "TrainStreams", "eval_chunks", "sample_streams", "stream_chunks", "TextError"]

#: Directories of the standard library left out of the default corpus: tests, and data-like or
#: third-party code that does not read like ordinary Python.
_EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "encodings", "pydoc_data", "lib2to3"}


class TextError(ValueError):
    """Unusable training or evaluation text (missing, empty, too short)."""


#: The seed of the default corpus's split: fixed, so every run validates on the same files.
SPLIT_SEED = 0


def default_corpus_files() -> List[str]:
    """The paths of the running interpreter's standard library .py files that make the default corpus,
    sorted: all of them but tests and data-like packages (`_EXCLUDED_DIRS`)."""
    root = sysconfig.get_paths()["stdlib"]
    paths = []
    for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, root).split(os.sep)
        if not any(p in _EXCLUDED_DIRS or p.startswith("test_") for p in rel):
            paths.append(path)
    return paths


def split_files(sources: Sequence[str], val_frac: float, seed: int = SPLIT_SEED) -> Tuple[List[int], List[int]]:
    """(training indices, validation indices) of whole files: the files in an order drawn from ``seed``,
    the first ones to the validation part until it holds at least ``val_frac`` of the characters, the
    rest (at least one) to training, both in that drawn order."""
    if not 0.0 < val_frac < 1.0:
        raise TextError(f"--val-frac must lie strictly between 0 and 1, got {val_frac}")
    if len(sources) < 2:
        raise TextError("a split by files needs at least two files")
    order = [int(i) for i in np.random.default_rng(seed).permutation(len(sources))]
    want = val_frac * sum(len(s) for s in sources)
    taken = 0
    for k, i in enumerate(order[:-1]):
        taken += len(sources[i])
        if taken >= want:
            return order[k + 1:], order[:k + 1]
    return order[-1:], order[:-1]


def default_corpus(val_frac: float = 0.1) -> Tuple[str, str]:
    """(training text, validation text) of the default corpus: the running interpreter's whole standard
    library source (`default_corpus_files`; about 9.7 MB in 537 files on CPython 3.11), split by whole
    files with `split_files` (seed `SPLIT_SEED`): the same split on every run."""
    sources = []
    for path in default_corpus_files():
        try:
            with open(path, encoding="utf-8") as f:
                sources.append(f.read())
        except (OSError, UnicodeDecodeError):
            continue
    if len(sources) < 2:
        raise TextError(f"too few Python sources under {sysconfig.get_paths()['stdlib']} for the default corpus")
    train_idx, val_idx = split_files(sources, val_frac)
    return "".join(sources[i] for i in train_idx), "".join(sources[i] for i in val_idx)


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
    w = None
    if pad:
        w = np.ones(batch * n, np.float64)
        w[pairs:] = 0
        w = w.reshape(batch, n).T
    for start in range(0, n, seq_len):
        s = slice(start, start + seq_len)
        yield (np.ascontiguousarray(x[s]), np.ascontiguousarray(y[s]),
               None if w is None else np.ascontiguousarray(w[s]))


def sample_streams(ids: np.ndarray, streams: int, length: int) -> Optional[np.ndarray]:
    """A fixed sample of ``ids`` for cheap validation: ``streams`` spans of ``length + 1`` ids at evenly
    spaced places (the first at the start, the last at the end), as an array (streams, length + 1);
    None if the spans would cover ``ids`` whole or overlap (then the whole of it is the sample)."""
    if streams * (length + 1) >= len(ids):
        return None
    starts = np.linspace(0, len(ids) - (length + 1), streams).astype(np.int64)
    return np.ascontiguousarray(np.stack([ids[s:s + length + 1] for s in starts]))


def stream_chunks(streams: np.ndarray, seq_len: int) -> Iterator[Tuple[np.ndarray, np.ndarray, None]]:
    """Every prediction pair within each row of ``streams`` (B, n + 1), in chunks of at most S steps:
    yields (inputs (s, B), targets (s, B), None) as `eval_chunks` does."""
    x, y = streams[:, :-1].T, streams[:, 1:].T
    for start in range(0, x.shape[0], seq_len):
        s = slice(start, start + seq_len)
        yield np.ascontiguousarray(x[s]), np.ascontiguousarray(y[s]), None
