"""A classifier's examples: where they come from (a built-in task or a file), their split into training,
validation and test, and their batches.

Files hold one example per line, two tab-separated columns (further columns are ignored, blank lines
skipped): ``text<TAB>label`` for sequence classification (any number of classes, label strings kept as
given, surrounding spaces stripped), or, with ``per_step``, ``tokens<TAB>tags``: one tag per token, the
tags separated by spaces, the tokens being the text's characters (``char``) or its space-separated
words (``word``). A line without a tab, with an empty column or, per step, with a different number of
tokens and tags is an error naming its line.

A *data spec* is a JSON-able dict saved in the checkpoint, from which `load_splits` rebuilds the same
splits later (so ``eval-classifier DIR`` finds the test split again):
``{"task": name, "options": {...}, "seed": s, "sizes": {...}, "tokens": "char", "per_step": false}`` or
``{"pairs": absolute path, "sha256": digest, "seed": s, "tokens": "char"|"word", "per_step": bool,
"val_frac": f, "test_frac": f}``.

Shape legend: B = batch, T = the batch's longest sequence.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..seq2seq.data import generated_spec
from ..seq2seq.pairs import PairsError, file_digest, read_pairs, tokenize, trained_file
from ..seq2seq.vocab import PAD, TokenVocab
from .tasks import DEFAULT_SIZES, Splits, make_task, task_options

__all__ = [
    "PairsError",
    "task_spec",
    "pairs_spec",
    "load_splits",
    "read_examples",
    "stratified_split",
    "text_tokens",
    "Labels",
    "Batch",
    "Encoded",
    "build_vocab",
    "DEFAULT_VAL_FRAC",
    "DEFAULT_TEST_FRAC",
]

Pair = Tuple[str, str]
DEFAULT_VAL_FRAC = DEFAULT_TEST_FRAC = 0.1


def text_tokens(text: str, tokens: str, per_step: bool = False) -> List[str]:
    """The tokens of ``text``: characters, or words (``rnnkit.seq2seq.pairs.tokenize``'s, which splits
    off punctuation; per step, where each token carries a tag, the space-separated words as written)."""
    if per_step and tokens == "word":
        return text.split()
    return tokenize(text, tokens)


def read_examples(path: str, tokens: str = "char", per_step: bool = False) -> List[Pair]:
    """The (text, label) or (tokens, tags) pairs of a file, in file order; PairsError naming the line of
    a malformed one."""
    pairs = read_pairs(path, ("tokens", "tags") if per_step else ("text", "label"))
    if per_step:
        with open(path, encoding="utf-8") as f:
            numbers = [n for n, line in enumerate(f.read().splitlines(), 1) if line.strip()]
        for number, (text, tags) in zip(numbers, pairs):
            n_tok, n_tag = len(text_tokens(text, tokens, True)), len(tags.split())
            if n_tok != n_tag:
                raise PairsError(f"{path}:{number}: {n_tok} tokens ({tokens}) but {n_tag} tags")
    return pairs


def stratified_split(
    pairs: Sequence[Pair],
    seed: int = 0,
    val_frac: float = DEFAULT_VAL_FRAC,
    test_frac: float = DEFAULT_TEST_FRAC,
    stratify: bool = True,
) -> Splits:
    """Hold out part of a file, the same way for the same pairs and seed.

    The distinct texts are grouped by label (a text's first label; one group without ``stratify``), each
    group is shuffled with ``seed`` and round(n * test_frac) of its texts go to test, round(n * val_frac)
    to validation, the rest to training; every line of a text goes to that text's split, so a text never
    straddles two splits. Each split keeps file order. PairsError if a split would be empty."""
    for name, frac in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not 0.0 < frac < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {frac}")
    if val_frac + test_frac >= 1.0:
        raise ValueError("val_frac + test_frac must leave something to train on")
    first_label = dict(reversed(pairs))  # text -> its first label
    groups: Dict[str, List[str]] = {}
    for text in dict.fromkeys(t for t, _ in pairs):
        groups.setdefault(first_label[text] if stratify else "", []).append(text)
    rng = np.random.default_rng(seed)
    which: Dict[str, int] = {}
    for key in sorted(groups):
        texts = groups[key]
        n_test, n_val = int(round(len(texts) * test_frac)), int(round(len(texts) * val_frac))
        for rank, i in enumerate(rng.permutation(len(texts))):
            which[texts[i]] = 0 if rank < n_test else 1 if rank < n_test + n_val else 2
    parts: Tuple[List[Pair], List[Pair], List[Pair]] = ([], [], [])
    for p in pairs:
        parts[which[p[0]]].append(p)
    for part, name in zip(parts, ("test", "validation", "training")):
        if not part:
            raise PairsError(
                f"too few examples ({len(which)} distinct texts) for a {name} split with "
                f"--val-frac {val_frac} and --test-frac {test_frac}"
            )
    return Splits(train=parts[2], val=parts[1], test=parts[0])


def task_spec(name: str, seed: int = 0, sizes: Optional[Dict[str, int]] = None, **options: Any) -> Dict[str, Any]:
    """The data spec of built-in task ``name`` (options checked now, so errors come early)."""
    spec = generated_spec(name, task_options(name, **options), seed, {**DEFAULT_SIZES, **(sizes or {})})
    return {**spec, "per_step": False}


def pairs_spec(
    path: str,
    tokens: str = "char",
    seed: int = 0,
    per_step: bool = False,
    val_frac: float = DEFAULT_VAL_FRAC,
    test_frac: float = DEFAULT_TEST_FRAC,
) -> Dict[str, Any]:
    """The data spec of a file (its digest pins the content); the file is read and checked now."""
    tokenize("", tokens)  # checks the kind
    stratified_split(read_examples(path, tokens, per_step), seed, val_frac, test_frac, not per_step)
    return {
        "pairs": os.path.abspath(path),
        "sha256": file_digest(path),
        "seed": int(seed),
        "tokens": tokens,
        "per_step": bool(per_step),
        "val_frac": float(val_frac),
        "test_frac": float(test_frac),
    }


def load_splits(spec: Dict[str, Any]) -> Splits:
    """The splits a data spec describes; PairsError if its file is gone or has changed."""
    if "task" in spec:
        sizes = spec["sizes"]
        return make_task(spec["task"], spec["seed"], sizes["train"], sizes["val"], sizes["test"], **spec["options"])
    path = trained_file(spec)
    per_step = spec["per_step"]
    return stratified_split(
        read_examples(path, spec["tokens"], per_step), spec["seed"], spec["val_frac"], spec["test_frac"], not per_step
    )


class Labels:
    """The classes (or tags): label strings as given, sorted, class i being ``names[i]``."""

    def __init__(self, names: Sequence[str]):
        self.names: List[str] = sorted(set(names))
        if len(self.names) < 2:
            raise ValueError(f"a classifier needs at least two classes, got {self.names}")
        self._index = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def encode(self, names: Sequence[str]) -> np.ndarray:
        """int64 class indices; ValueError naming an unknown label."""
        try:
            return np.fromiter((self._index[n] for n in names), np.int64, len(names))
        except KeyError as e:
            raise ValueError(f"unknown label {e.args[0]!r}: the model's labels are {', '.join(self.names)}") from None


def build_vocab(train: Sequence[Pair], tokens: str, per_step: bool) -> Tuple[TokenVocab, Labels]:
    """The token vocabulary and the labels of the training pairs."""
    vocab = TokenVocab.build(text_tokens(t, tokens, per_step) for t, _ in train)
    labels = Labels([tag for _, lab in train for tag in (lab.split() if per_step else [lab])])
    return vocab, labels


class Batch(NamedTuple):
    """ids (T, B) int64 padded with PAD (time-major, as the layers read them); lengths (B,) int64;
    targets (B,) class indices, or per step (T, B) with 0 past each length."""

    ids: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray


class Encoded:
    """One split as id arrays: ``ids[i]`` the tokens of example i, ``targets[i]`` its class index (an
    array of one) or its tags' indices. ValueError for a label the model does not know, naming the
    example (its number counts the non-blank lines of ``where``)."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        tokens: str,
        per_step: bool,
        vocab: TokenVocab,
        labels: Labels,
        where: str = "the data",
    ):
        self.per_step = per_step
        self.ids: List[np.ndarray] = []
        self.targets: List[np.ndarray] = []
        for number, (text, label) in enumerate(pairs, 1):
            toks = text_tokens(text, tokens, per_step)
            if not toks:
                raise ValueError(f"example {number} of {where} has no tokens")
            try:
                target = labels.encode(label.split() if per_step else [label])
            except ValueError as e:
                raise ValueError(f"example {number} of {where}: {e}") from None
            self.ids.append(vocab.encode(toks).astype(np.int64))
            self.targets.append(target)
        self.lengths = np.array([len(i) for i in self.ids], np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def labels(self) -> np.ndarray:
        """Every target in example order (per step: all tags, example after example)."""
        return np.concatenate(self.targets) if self.targets else np.zeros(0, np.int64)

    def batch(self, idx: Sequence[int]) -> Batch:
        lengths = self.lengths[list(idx)]
        T, B = int(lengths.max()), len(lengths)
        ids = np.full((T, B), PAD, np.int64)
        targets = np.zeros((T, B), np.int64) if self.per_step else np.empty(B, np.int64)
        for j, i in enumerate(idx):
            ids[: lengths[j], j] = self.ids[i]
            if self.per_step:
                targets[: lengths[j], j] = self.targets[i]
            else:
                targets[j] = self.targets[i][0]
        return Batch(ids, lengths, targets)

    def batches(self, size: int) -> Iterator[Tuple[np.ndarray, Batch]]:
        """(indices, Batch) covering the split once, ``size`` examples at a time, examples of similar
        length together (less padding); the indices say which examples each batch holds."""
        order = np.argsort(self.lengths, kind="stable")
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            yield idx, self.batch(idx)
