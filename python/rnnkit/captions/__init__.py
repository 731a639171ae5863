"""Image captioning (the lecture's one-to-many model): region features of an image condition a recurrent
decoder, optionally attending over the regions at every word (`model`); the built-in ``shapes`` task
(`shapes`), features/captions files (`data`), training (`train`), metrics and the commands
``rnnkit train-captions``, ``eval-captions`` and ``caption``."""

from .model import Captioner

__all__ = ["Captioner"]
