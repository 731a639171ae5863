"""Where the pairs of a run come from (a built-in task or a pairs file), and their batches.

A *data spec* is a JSON-able dict saved in the checkpoint, from which `load_splits` rebuilds the same
splits later (so ``eval-seq2seq DIR`` finds the test split again):
``{"task": name, "options": {...}, "seed": s, "sizes": {...}, "tokens": "char"}`` or
``{"pairs": absolute path, "sha256": digest, "seed": s, "tokens": "char"|"word"}``.

Shape legend: B = batch, N = source length (with its end symbol), T = target length + 1.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from .pairs import PairsError, file_digest, read_pairs, split_pairs, tokenize, trained_file
from .tasks import DEFAULT_SIZES, Pair, Splits, make_task, task_options
from .vocab import BOS, EOS, PAD, TokenVocab

__all__ = ["task_spec", "generated_spec", "pairs_spec", "load_splits", "Batch", "Encoded", "make_batch", "pad_targets"]


def task_spec(name: str, seed: int = 0, sizes: Optional[Dict[str, int]] = None, **options: Any) -> Dict[str, Any]:
    """The data spec of built-in task ``name`` (options checked now, so errors come early)."""
    return generated_spec(name, task_options(name, **options), seed, {**DEFAULT_SIZES, **(sizes or {})})


def generated_spec(name: str, options: Dict[str, Any], seed: int, sizes: Dict[str, int]) -> Dict[str, Any]:
    """The data spec of a generated task of characters: its checked ``options`` and split ``sizes``."""
    return {"task": name, "options": options, "seed": int(seed), "sizes": sizes, "tokens": "char"}


def pairs_spec(path: str, tokens: str = "char", seed: int = 0) -> Dict[str, Any]:
    """The data spec of a pairs file (its digest pins the content)."""
    tokenize("", tokens)  # checks the kind
    if not os.path.isfile(path):
        raise PairsError(f"pairs file not found: {path}")
    return {"pairs": os.path.abspath(path), "sha256": file_digest(path), "seed": int(seed), "tokens": tokens}


def load_splits(spec: Dict[str, Any]) -> Splits:
    """The splits a data spec describes; PairsError if its file is gone or has changed."""
    if "task" in spec:
        sizes = spec["sizes"]
        return make_task(spec["task"], spec["seed"], sizes["train"], sizes["val"], sizes["test"], **spec["options"])
    path = trained_file(spec, "pairs file")
    return split_pairs(read_pairs(path), spec["seed"])


class Batch(NamedTuple):
    """src (B, N) int32 padded with PAD, each ending with EOS; src_len (B,); tgt_in (T, B) = [BOS, y...];
    tgt_out (T, B) = [y..., EOS]; weights (T, B) float, 1 on real target positions, 0 on padding."""

    src: np.ndarray
    src_len: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    weights: np.ndarray


def make_batch(src: Sequence[np.ndarray], tgt: Sequence[np.ndarray], dtype=np.float32) -> Batch:
    """Pad encoded sequences (src already ending with EOS, tgt without BOS/EOS) into a `Batch`."""
    B = len(src)
    src_len = np.array([len(s) for s in src], np.int64)
    N = int(src_len.max())
    S = np.full((B, N), PAD, np.int32)
    for i, s in enumerate(src):
        S[i, : len(s)] = s
    return Batch(S, src_len, *pad_targets(tgt, dtype))


def pad_targets(tgt: Sequence[np.ndarray], dtype=np.float32) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teacher-forcing arrays of encoded targets (without BOS/EOS), each (T, B) with T = longest + 1:
    inputs [BOS, y...] and outputs [y..., EOS] padded with PAD, and weights 1 on the real positions."""
    B = len(tgt)
    T = max(len(t) for t in tgt) + 1
    tin = np.full((T, B), PAD, np.int32)
    tout = np.full((T, B), PAD, np.int32)
    w = np.zeros((T, B), dtype)
    for i, t in enumerate(tgt):
        n = len(t)
        tin[0, i] = BOS
        tin[1 : n + 1, i] = t
        tout[:n, i] = t
        tout[n, i] = EOS
        w[: n + 1, i] = 1
    return tin, tout, w


class Encoded:
    """One split as id arrays: ``src[i]`` ends with EOS, ``tgt[i]`` has no start or end symbol;
    ``tgt_tokens[i]`` keeps the reference tokens (unknown ones included) for the metrics."""

    def __init__(self, pairs: Sequence[Pair], kind: str, src_vocab: TokenVocab, tgt_vocab: TokenVocab):
        self.src: List[np.ndarray] = []
        self.tgt: List[np.ndarray] = []
        self.src_tokens: List[List[str]] = []
        self.tgt_tokens: List[List[str]] = []
        for s, t in pairs:
            st, tt = tokenize(s, kind), tokenize(t, kind)
            self.src_tokens.append(st)
            self.tgt_tokens.append(tt)
            self.src.append(np.append(src_vocab.encode(st), np.int32(EOS)))
            self.tgt.append(tgt_vocab.encode(tt))

    def __len__(self) -> int:
        return len(self.src)

    def batch(self, idx: Union[Sequence[int], np.ndarray], dtype=np.float32) -> Batch:
        return make_batch([self.src[i] for i in idx], [self.tgt[i] for i in idx], dtype)

    def batches(self, size: int, dtype=np.float32):
        """(indices, Batch) over the whole split in order, ``size`` examples at a time."""
        for start in range(0, len(self), size):
            idx = range(start, min(start + size, len(self)))
            yield idx, self.batch(idx, dtype)


def build_vocabs(train: Sequence[Pair], kind: str) -> Tuple[TokenVocab, TokenVocab]:
    """Source and target vocabularies of the training pairs."""
    return (
        TokenVocab.build(tokenize(s, kind) for s, _ in train),
        TokenVocab.build(tokenize(t, kind) for _, t in train),
    )
