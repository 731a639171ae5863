"""A vocabulary over Unicode characters (code points, not bytes), with an unknown symbol.

Index 0 is the unknown symbol: characters unseen when the vocabulary was built map to it. The others
are the known characters in code-point order, so the same text always gives the same vocabulary.
"""

from __future__ import annotations

from typing import Iterable, List

import numpy as np

__all__ = ["Vocab", "UNK"]

UNK = "\ufffd"  #: how the unknown symbol is written when decoding (U+FFFD REPLACEMENT CHARACTER)


class Vocab:
    """Characters <-> int32 ids; ``len(vocab)`` counts the unknown symbol."""

    def __init__(self, chars: Iterable[str]):
        self.chars: List[str] = sorted(set(chars))
        if any(not isinstance(c, str) or len(c) != 1 for c in self.chars):
            raise ValueError("a vocabulary holds single characters")
        self._index = {c: i + 1 for i, c in enumerate(self.chars)}
        self._table = np.array([ord(c) for c in self.chars], dtype=np.int64)

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls(set(text))

    def __len__(self) -> int:
        return len(self.chars) + 1

    def __contains__(self, ch: str) -> bool:
        return ch in self._index

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of the characters of ``text``, 0 for unknown ones."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        pos = np.searchsorted(self._table, codes)
        pos_clipped = np.minimum(pos, len(self._table) - 1)
        known = (
            (pos < len(self._table)) & (self._table[pos_clipped] == codes)
            if len(self._table)
            else np.zeros(codes.shape, bool)
        )
        return np.where(known, pos_clipped + 1, 0).astype(np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; the unknown symbol becomes U+FFFD."""
        chars = [UNK] + self.chars
        return "".join(chars[int(i)] for i in ids)

    def id(self, ch: str) -> int:
        """The id of one character (0 if unknown)."""
        return self._index.get(ch, 0)

    def to_json(self) -> List[str]:
        return list(self.chars)

    @classmethod
    def from_json(cls, chars: List[str]) -> "Vocab":
        return cls(chars)
