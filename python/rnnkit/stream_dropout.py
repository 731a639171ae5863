"""Dropout draws keyed by the global index of each stream, for data-parallel training.

In one process a layer draws its dropout masks for the whole batch from one generator. When the batch is
split across ranks, one generator per rank would give a stream different masks depending on which rank
holds it (or every rank the same masks). `StreamKeyedRandom` replaces that generator: the uniforms of
stream b come from a Philox generator whose key is (run key, global index of b) and whose counter is the
number of draws so far, so a stream's masks depend only on the run, the stream and the draw, whatever the
number of ranks and whichever rank holds it.

Shapes are time-major, as the layers hold their outputs: (T, B, F) with B the streams of this rank.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Union

import numpy as np

__all__ = ["StreamKeyedRandom", "keyed_from", "generator_state", "restore_generator", "DropoutRandom"]

KIND = "stream-keyed-philox"


class StreamKeyedRandom:
    """Uniform draws in [0, 1) whose values for stream b depend on (``key``, ``first_stream + b``, draw
    number) only.

    Args:
        key: the run's key (the same on every rank). first_stream: the global index of this rank's first
            stream. draws: how many draws were made before (a resumed run's count).
    """

    def __init__(self, key: int, first_stream: int, draws: int = 0):
        self.key, self.first_stream, self.draws = int(key), int(first_stream), int(draws)

    def random(self, shape: Sequence[int]) -> np.ndarray:
        """Uniforms of ``shape`` (T, B, F) (or (T, B)), stream b's from its own keyed generator."""
        shape = tuple(int(n) for n in shape)
        if len(shape) < 2:
            raise ValueError(f"stream-keyed draws need a time-major shape (T, B, ...), got {shape}")
        out = np.empty(shape)
        per_stream = (shape[0],) + shape[2:]
        for b in range(shape[1]):
            bits = np.random.Philox(key=[self.key, self.first_stream + b], counter=[0, 0, 0, self.draws])
            out[:, b] = np.random.Generator(bits).random(per_stream)
        self.draws += 1
        return out

    def state(self) -> Dict[str, Any]:
        """The JSON-able state: the key and the number of draws (the streams are the caller's)."""
        return {"kind": KIND, "key": self.key, "draws": self.draws}


DropoutRandom = Union[np.random.Generator, StreamKeyedRandom]


def keyed_from(generator: DropoutRandom, first_stream: int) -> StreamKeyedRandom:
    """A `StreamKeyedRandom` whose key is drawn from a copy of ``generator`` (so every rank that holds the
    same generator state gets the same key, and ``generator`` is left as it is)."""
    if isinstance(generator, StreamKeyedRandom):
        return StreamKeyedRandom(generator.key, first_stream, generator.draws)
    probe = np.random.default_rng()
    probe.bit_generator.state = generator.bit_generator.state
    return StreamKeyedRandom(int(probe.integers(2**63)), first_stream)


def generator_state(generator: DropoutRandom) -> Dict[str, Any]:
    """The JSON-able state of a dropout generator of either kind (for a checkpoint)."""
    if isinstance(generator, StreamKeyedRandom):
        return generator.state()
    return dict(generator.bit_generator.state)


def restore_generator(generator: DropoutRandom, state: Dict[str, Any], first_stream: int = 0) -> DropoutRandom:
    """The dropout generator a checkpoint's ``state`` describes: a `StreamKeyedRandom` for
    this rank's streams (from ``first_stream``) if the run drew keyed masks, else ``generator`` with its
    state set."""
    if state.get("kind") == KIND:
        return StreamKeyedRandom(int(state["key"]), first_stream, int(state["draws"]))
    if isinstance(generator, StreamKeyedRandom):
        generator = np.random.default_rng()
    generator.bit_generator.state = state
    return generator
