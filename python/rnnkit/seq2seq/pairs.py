"""Sentence pairs from a file, and tokenising.

The file format is the Tatoeba / Anki export: one pair per line, ``source<TAB>target``; further
tab-separated columns (the Anki files' attribution) are ignored, and blank lines are skipped. A line
without a tab, or with an empty source or target, is an error naming its line number.

Tokens are characters (``char``) or words (``word``: runs of letters/digits and single punctuation
marks, e.g. "Don't go!" -> ["Don", "'", "t", "go", "!"]); case is kept.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any, List, Mapping, Sequence, Tuple

import numpy as np

from .tasks import Pair, Splits

__all__ = [
    "PairsError",
    "read_pairs",
    "split_pairs",
    "tokenize",
    "detokenize",
    "TOKENIZERS",
    "file_digest",
    "trained_file",
]

TOKENIZERS = ("char", "word")
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class PairsError(ValueError):
    """An unusable pairs file: missing, unreadable, empty, or with a malformed line."""


def tokenize(text: str, tokens: str) -> List[str]:
    """``text`` as a list of tokens of kind ``tokens`` ("char" or "word")."""
    if tokens == "char":
        return list(text)
    if tokens == "word":
        return _WORD.findall(text)
    raise ValueError(f"--tokens must be one of {TOKENIZERS}, got {tokens!r}")


def detokenize(tokens: Sequence[str], kind: str) -> str:
    """Tokens back to text: characters joined as they are, words with single spaces."""
    return ("" if kind == "char" else " ").join(tokens)


def file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def trained_file(spec: Mapping[str, Any], what: str = "file") -> str:
    """The path of the file a data spec (``pairs`` and ``sha256``) names; PairsError if it is gone
    (``what``: what the message calls it) or has changed since training."""
    path = spec["pairs"]
    if not os.path.isfile(path):
        raise PairsError(f"the {what} this model was trained on is gone: {path} (give --pairs FILE)")
    if file_digest(path) != spec["sha256"]:
        raise PairsError(f"{path} has changed since training, so its test split is lost (give --pairs FILE)")
    return path


def read_pairs(path: str, columns: Tuple[str, str] = ("source", "target")) -> List[Pair]:
    """The (source, target) pairs of the file at ``path``, in file order; PairsError if it is missing,
    not UTF-8, has no pairs, or has a malformed line (the message gives its number and names the
    column by ``columns``, e.g. ("text", "label") for a classifier's file)."""
    if not os.path.isfile(path):
        raise PairsError(f"pairs file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise PairsError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    pairs: List[Pair] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise PairsError(f"{path}:{number}: expected {columns[0]}<TAB>{columns[1]}, found no tab")
        src, tgt = cols[0].strip(), cols[1].strip()
        if not src or not tgt:
            raise PairsError(f"{path}:{number}: empty {columns[0] if not src else columns[1]}")
        pairs.append((src, tgt))
    if not pairs:
        raise PairsError(f"{path} holds no pairs (it is empty or blank)")
    return pairs


def split_pairs(pairs: Sequence[Pair], seed: int = 0, val_frac: float = 0.05, test_frac: float = 0.05) -> Splits:
    """Hold out part of a file: its distinct sources are shuffled with ``seed`` and cut into test,
    validation and training sources (at least one each), and every pair goes to the split of its source,
    so a sentence with several translations never straddles two splits."""
    for name, frac in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not 0.0 < frac < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {frac}")
    if val_frac + test_frac >= 1.0:
        raise ValueError("val_frac + test_frac must leave something to train on")
    sources = list(dict.fromkeys(src for src, _ in pairs))
    if len(sources) < 3:
        raise PairsError(
            f"need at least 3 distinct sources to make training, validation and test splits, got {len(sources)}"
        )
    order = np.random.default_rng(seed).permutation(len(sources))
    n_test = max(1, int(round(len(sources) * test_frac)))
    n_val = max(1, int(round(len(sources) * val_frac)))
    which = {}
    for rank, i in enumerate(order):
        which[sources[i]] = 0 if rank < n_test else 1 if rank < n_test + n_val else 2
    parts: Tuple[List[Pair], List[Pair], List[Pair]] = ([], [], [])
    for p in pairs:
        parts[which[p[0]]].append(p)
    return Splits(train=parts[2], val=parts[1], test=parts[0])
