"""Character-level language models: `CharLM` (model, evaluation, sampling in C++), `Vocab`, and the
training loop of ``rnnkit train-charlm`` (`rnnkit.charlm.train`)."""

from .model import CharLM
from .vocab import Vocab

__all__ = ["CharLM", "Vocab"]
