"""Token vocabularies for sequence-to-sequence models: tokens (characters or words) <-> int32 ids,
with four special symbols in front.

Ids: 0 padding, 1 start (<s>, the decoder's first input), 2 end (</s>, after every target and every
source), 3 unknown (tokens unseen when the vocabulary was built); then the known tokens in sorted order,
so the same training data always gives the same vocabulary. (`rnnkit.charlm.Vocab` is the character
vocabulary of language models: no padding, start or end symbols, and characters only.)
"""

from __future__ import annotations

from typing import Iterable, List, Sequence

import numpy as np

__all__ = ["TokenVocab", "PAD", "BOS", "EOS", "UNK", "SPECIALS"]

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


class TokenVocab:
    """``len(vocab)`` counts the special symbols; ``tokens`` are the known ones (ids 4, 5, ...)."""

    def __init__(self, tokens: Iterable[str]):
        self.tokens: List[str] = sorted(set(tokens))
        if any(not isinstance(t, str) or not t for t in self.tokens):
            raise ValueError("vocabulary tokens must be non-empty strings")
        self.itos: List[str] = list(SPECIALS) + self.tokens
        self._index = {t: i + len(SPECIALS) for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]]) -> "TokenVocab":
        """The vocabulary of every token of ``sequences`` (lists of tokens)."""
        return cls({t for seq in sequences for t in seq})

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """int32 ids of ``tokens`` (UNK for unknown ones), no start or end symbol."""
        return np.fromiter((self._index.get(t, UNK) for t in tokens), np.int32, len(tokens))

    def decode(self, ids: Iterable[int]) -> List[str]:
        """The tokens of ``ids``, stopping at the first end symbol; padding and start are dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self.itos[i])
        return out

    def to_json(self) -> List[str]:
        return list(self.tokens)

    @classmethod
    def from_json(cls, tokens: List[str]) -> "TokenVocab":
        return cls(tokens)
