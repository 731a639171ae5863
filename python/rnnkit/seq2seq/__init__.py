"""Sequence-to-sequence models: encoder-decoder with optional attention (`Seq2Seq`), a decoder
conditioned on a vector (`VectorToSequence`), greedy and beam-search decoding (`decode`), built-in tasks
(`tasks`), pairs files (`pairs`), metrics, and the training loop of ``rnnkit train-seq2seq`` (`train`)."""

from .model import Seq2Seq, VectorToSequence
from .vocab import TokenVocab

__all__ = ["Seq2Seq", "VectorToSequence", "TokenVocab"]
