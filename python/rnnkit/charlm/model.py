"""CharLM: embedding (or one-hot) -> L-layer RNN/LSTM/GRU -> linear -> softmax over characters.

Shape legend: T = time steps, B = batch (streams), V = vocabulary (with the unknown symbol),
E = embedding width (V for one-hot input), H = hidden size, L = layers.
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import _C, checkpoint
from ..losses import linear_softmax_cross_entropy
from ..models import LAYER_CLASSES, check_input_width, layer_class, single_threaded_blas
from ..nn import Embedding, Linear
from ..rundir import kind_of
from ..stream_dropout import generator_state, keyed_from, restore_generator
from .data import eval_chunks, stream_chunks
from .vocab import Vocab

__all__ = ["CharLM", "LAYER_CLASSES", "CHECKPOINT_FILE", "State", "single_threaded_blas"]

CHECKPOINT_FILE = checkpoint.LATEST_FILE
FORMAT = "rnnkit-charlm"
#: Characters evaluate_as_sampled scores per native call (a progress step).
SCORE_CHUNK = 1 << 14
#: The ``state`` choices of `CharLM.activations`.
STATES = ("auto", "h", "c", "tanh_c")
#: Characters `CharLM.activations` runs per layer call.
ACTIVATION_CHUNK = 1 << 12


#: The carried recurrent state: (h (L, B, H), c (L, B, H) for an LSTM, else None).
State = Tuple[np.ndarray, Optional[np.ndarray]]


class CharLM:
    """A character-level language model.

    Args:
        vocab: the characters it knows. cell: a key of LAYER_CLASSES ("lstm", "gru", "rnn" (tanh),
        "mut1", "mut2", "mut3"; MUT1 and MUT2 need embed == hidden). layers, hidden: the
        recurrent stack. embed: embedding width, or 0 for one-hot input. dropout: between recurrent
        layers, in training mode. dtype: float32 (training) or float64 (gradient checks).
        seed: the initial weights (embedding, stack and output layer from one SeedSequence).

    Parameters live in ``params`` and gradients in ``grads``, both name -> array with the keys
    ``embed.weight``, ``rnn.<torch key>`` and ``head.weight``/``head.bias``; the arrays are the
    modules' own, so an `rnnkit.optim` optimiser over ``params`` trains the model.
    """

    def __init__(
        self,
        vocab: Vocab,
        cell: str = "lstm",
        layers: int = 2,
        hidden: int = 256,
        embed: int = 64,
        dropout: float = 0.0,
        dtype: Any = np.float32,
        seed: Optional[int] = 0,
    ):
        layer = layer_class(cell)
        for name, value in (("layers", layers), ("hidden", hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(embed, int) or embed < 0:
            raise ValueError(f"embed must be a non-negative integer (0 = one-hot), got {embed!r}")
        check_input_width(cell, embed or len(vocab), hidden)
        self.vocab = vocab
        self.config = {
            "cell": cell,
            "layers": layers,
            "hidden": hidden,
            "embed": embed,
            "dropout": float(dropout),
            "dtype": np.dtype(dtype).name,
            "seed": seed,
        }
        V = len(vocab)
        s_embed, s_rnn, s_head = np.random.SeedSequence(seed).spawn(3)
        self.embed = Embedding(V, embed, dtype, np.random.default_rng(s_embed)) if embed else None
        self.rnn = layer(embed or V, hidden, layers, dropout=dropout, dtype=dtype, seed=int(s_rnn.generate_state(1)[0]))
        self.head = Linear(hidden, V, dtype, np.random.default_rng(s_head))
        self.params: Dict[str, np.ndarray] = {}
        self.grads: Dict[str, np.ndarray] = {}
        for prefix, params, grads in self._groups():
            for k in params:
                self.params[f"{prefix}.{k}"] = params[k]
                self.grads[f"{prefix}.{k}"] = grads[k]

    def _groups(self):
        rnn_params = dict(self.rnn.named_parameters())
        groups = [("rnn", rnn_params, self.rnn.grads), ("head", self.head.params, self.head.grads)]
        if self.embed:
            groups.insert(0, ("embed", self.embed.params, self.embed.grads))
        return groups

    @property
    def has_cell_state(self) -> bool:
        """Whether the recurrent stack carries a cell state beside h (its state is then the pair (h, c))."""
        return self.rnn.spec.has_cell_state

    def recorded_state(self, state: str = "auto") -> str:
        """Which state `activations` records for ``state``: "c", "tanh_c" or "h" (ValueError for a bad
        name, or "c"/"tanh_c" of a cell without a cell state)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        if state in ("c", "tanh_c") and not self.has_cell_state:
            raise ValueError(f"state {state!r} needs a cell with a cell state; {self.config['cell']} has none")
        if state == "auto":
            return "c" if self.has_cell_state else "h"
        return state

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.config["dtype"])

    # ------------------------------------------------------------------ training

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def dropout_rng_state(self) -> Dict[str, Any]:
        """The JSON-able state of the generator of the recurrent stack's dropout masks."""
        return generator_state(self.rnn._dropout_rng)

    def set_dropout_rng_state(self, state: Dict[str, Any], first_stream: int = 0) -> None:
        """Undoes `dropout_rng_state`; ``first_stream``: the global index of the first stream this
        process trains, for masks keyed by stream (`use_stream_keyed_dropout`)."""
        self.rnn._dropout_rng = restore_generator(self.rnn._dropout_rng, state, first_stream)

    def use_stream_keyed_dropout(self, first_stream: int) -> None:
        """Draw each stream's dropout masks from its global index (`rnnkit.stream_dropout`), this
        process's streams starting at ``first_stream``: what data-parallel training does, so that a
        stream's masks do not depend on which rank trains it."""
        self.rnn._dropout_rng = keyed_from(self.rnn._dropout_rng, first_stream)

    def initial_state(self, batch: int) -> State:
        shape = (self.config["layers"], batch, self.config["hidden"])
        return np.zeros(shape, self.dtype), (np.zeros(shape, self.dtype) if self.has_cell_state else None)

    def _input_table(self) -> np.ndarray:
        """(V, E): the embedding's rows, or one-hot vectors. The stack reads it through the ids (the
        layers' fused lookup), so the first layer projects V rows instead of T*B and its backward
        returns this table's gradient: not Embedding.forward/backward."""
        if self.embed:
            return self.embed.params["weight"]
        return np.eye(len(self.vocab), dtype=self.dtype)

    def _features(self, x: np.ndarray, state: State) -> Tuple[np.ndarray, State]:
        """(T, B) ids -> the top layer's outputs (T*B, H), the output layer's input, and the new state."""
        T, B = x.shape
        if self.has_cell_state:
            y, (h, c) = self.rnn.forward(self._input_table(), state, ids=x)
        else:
            y, h = self.rnn.forward(self._input_table(), state[0], ids=x)
            c = None
        return y.reshape(T * B, -1), (h, c)

    def logits(self, x: np.ndarray, state: State) -> Tuple[np.ndarray, State]:
        """Unnormalised next-character scores (T*B, V) for ids x (T, B) read from ``state``, and the
        state after them. Runs in the recurrent stack's current mode (``rnn.train()``/``rnn.eval()``)."""
        features, new_state = self._features(x, state)
        return self.head.forward(features), new_state

    def loss_and_grad(
        self, x: np.ndarray, y: np.ndarray, state: State, weights: Optional[np.ndarray] = None
    ) -> Tuple[float, State]:
        """Mean cross-entropy (nats per character) of targets y (T, B) given inputs x (T, B) from
        ``state``; adds its gradient into ``grads`` (truncated BPTT: nothing flows into ``state``).
        Returns (loss, final state). Runs in training mode (dropout between layers is on)."""
        self.rnn.train()
        T, B = x.shape
        features, new_state = self._features(x, state)
        loss, dfeatures = linear_softmax_cross_entropy(
            self.head, features, y.reshape(-1), None if weights is None else weights.reshape(-1)
        )
        assert dfeatures is not None  # grad=True
        d_table, _ = self.rnn.backward(dfeatures.reshape(T, B, -1), None)
        if self.embed:
            self.grads["embed.weight"] += d_table
        return loss, new_state

    def nll_sum(
        self, ids: np.ndarray, batch: int = 32, seq_len: int = 128, streams: Optional[slice] = None
    ) -> Tuple[float, int]:
        """(total negative log-likelihood in nats, number of predictions) of every next character of
        ``ids`` (int array), read as ``batch`` contiguous streams with carried state (eval mode). A 2-D
        ``ids`` (B, n + 1) gives the streams themselves (`rnnkit.charlm.data.sample_streams`).
        ``streams``: score only these of the streams (a rank's share; the sums over all shares are the
        whole text's)."""
        self.rnn.eval()
        total, count = 0.0, 0
        state = None
        if streams is not None and ids.ndim == 2:
            ids, streams = ids[streams], None
            if ids.shape[0] == 0:
                return total, count
        chunks = stream_chunks(ids, seq_len) if ids.ndim == 2 else eval_chunks(ids, batch, seq_len)
        for x, y, w in chunks:
            if streams is not None:
                x, y = np.ascontiguousarray(x[:, streams]), np.ascontiguousarray(y[:, streams])
                w = None if w is None else np.ascontiguousarray(w[:, streams])
                if x.shape[1] == 0 or (w is not None and not w.any()):
                    continue  # padding only: a stream's padding ends it, so nothing follows
            if state is None:
                state = self.initial_state(x.shape[1])
            features, state = self._features(x, state)
            loss, _ = linear_softmax_cross_entropy(
                self.head, features, y.reshape(-1), None if w is None else w.reshape(-1), grad=False
            )
            n = x.size if w is None else float(w.sum())
            total += loss * n
            count += int(round(n))
        return total, count

    # ------------------------------------------------------------------ use

    def evaluate_details(self, text: str) -> Dict[str, Any]:
        """Bits per character of ``text`` (each character predicted from the ones before it), with the
        counts: {"bpc", "nats_per_char", "chars", "unknown_chars"}. Unknown characters count as
        predictions of the unknown symbol, and inputs of it."""
        ids = self.vocab.encode(text)
        with single_threaded_blas():
            total, count = self.nll_sum(ids)
        nats = total / count
        return {
            "bpc": nats / math.log(2),
            "nats_per_char": nats,
            "chars": count,
            "unknown_chars": int(np.count_nonzero(ids[1:] == 0)),
        }

    def evaluate(self, text: str) -> float:
        """Bits per character of ``text``; see `evaluate_details`."""
        return self.evaluate_details(text)["bpc"]

    def sample(
        self,
        length: int,
        temperature: float = 1.0,
        top_k: Optional[int] = None,
        prime: str = "",
        seed: Optional[int] = None,
        weights: str = "float32",
    ) -> str:
        """``prime`` followed by ``length`` sampled characters. The whole loop runs in C++.

        temperature divides the logits (0: argmax); top_k keeps the k most likely characters; prime is
        fed first (empty: a newline, or the first known character, is fed and not returned); seed fixes
        the draws (None: fresh entropy). The unknown symbol is never sampled.

        weights is how a float32 model's weights are stored while sampling. Each character reads every
        weight once, so its time is the time to bring them to the cores: from L3 when they exceed the L2
        caches (a 2x512 LSTM's 12.6 MB of float32 do), from L2 when they fit. "float16" rounds the weights
        read per character to IEEE half precision: half the bytes; logits move by ~1e-3 relative at most
        (a trained 2x512 LSTM: 3e-4, the same bits per character to 5 decimals). "int8" keeps them as
        8-bit integers with a scale per output unit (the error of a weight is at most 1/254 of its
        unit's largest) and rounds each state it multiplies to 16 bits (1/65534 of the largest value),
        summing the products exactly in integers: a quarter of the bytes and a third of the
        instructions; logits move by ~1e-2 relative at most (an untrained 2x128 LSTM: 2.6e-3). Both need
        AVX-512 to be fast (elsewhere they are correct, not faster). Measured on 2 cores of a Xeon with
        2 MB of L2 per core, 2x512 LSTM, 2,000 characters: float32 0.60 s, float16 0.30 s, int8 0.10 s, a
        PyTorch loop 3.6 s; a trained 2x256 LSTM scored 1.9129, 1.9129 and 1.9132 bits per character with
        them (bench/charlm_parity.md; `evaluate_as_sampled` measures it for a model). A seeded float16 or
        int8 sample can differ from the float32 one and is as deterministic. "float32" is the default
        because it takes every model (float16 needs weights below 65520 in magnitude, int8 finite ones;
        float64 models always sample in float64 and accept only "float32") and steps like the training
        kernels (to float rounding).
        """
        if not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}")
        if not (temperature >= 0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        start = self.vocab.encode(prime) if prime else np.array([self.vocab.id("\n") or 1], np.int32)
        out = _C.sample(
            *self._engine_model(), start, length, float(temperature), int(top_k or 0), int(seed) % 2**64, 0, weights
        )
        return prime + self.vocab.decode(out)

    def evaluate_as_sampled(self, text: str, weights: str = "float32", progress: bool = False) -> float:
        """Bits per character of ``text`` as the sampler predicts it: the C++ loop of `sample` with the
        weight storage ``weights`` (see there), fed ``text`` from zero states as one stream, each
        character predicted from all before it (unknown ones as the unknown symbol). What a storage
        costs a model: compare "int8" or "float16" with "float32". `evaluate` reads the text as 32
        streams that each start from zero states, so its figure is a little higher on short texts.

        One character at a time, so long texts take a while (a 2x512 LSTM on 2 cores: ~60 us a
        character with int8, ~300 with float32); ``progress`` shows a bar. The text is scored in
        chunks with the states carried between them, which gives the same sum as one pass."""
        ids = self.vocab.encode(text)
        if len(ids) < 2:
            raise ValueError("evaluate_as_sampled needs a text of at least 2 characters")
        from tqdm import tqdm

        model = self._engine_model()
        layers, H = self.config["layers"], self.config["hidden"]
        state = np.zeros(layers * H * self.rnn.spec.states, self.dtype)
        total = 0.0
        with tqdm(total=len(ids) - 1, disable=not progress, unit="char", dynamic_ncols=True) as bar:
            # Chunk k is ids[start .. start + chunk]: it feeds all but its last symbol, which the next
            # chunk feeds first.
            for start in range(0, len(ids) - 1, SCORE_CHUNK):
                piece = ids[start : start + SCORE_CHUNK + 1]
                total += _C.score(*model, piece, weights, state)
                bar.update(len(piece) - 1)
        return total / (len(ids) - 1) / math.log(2)

    def activations(self, text: str, state: str = "auto", progress: bool = False) -> Tuple[str, np.ndarray]:
        """Every unit's activation after each character of ``text``, read from zero states as one
        stream: ``(chars, a)`` with ``chars`` the text and ``a`` (len(text), layers, hidden), row i the
        states after character i (the model's view of ``chars[:i + 1]``; unknown characters are read as
        the unknown symbol).

        state: "auto" records the cell state c of a cell that has one (LSTM) and h otherwise; "h"
        records h of any cell; "c" and "tanh_c" (tanh(c)) only for a cell with a cell state (else
        ValueError); `recorded_state` says which. c is not bounded: `rnnkit.insight` colours it by
        tanh(c), the value h = o * tanh(c) carries.

        The layers' own forward (`rnnkit.kernels.forward`) runs over the text layer by layer in chunks
        of ACTIVATION_CHUNK characters with the states carried between them, so the values are the
        layers' own (the chunking moves them by float rounding at most) and no Python runs per
        character, which the sampler's loop (`evaluate_as_sampled`) matches in time per character. Each
        call is a training forward, whose workspace keeps the state of every step
        (`rnnkit.kernels.Workspace.states`): the cheapest place to read c from, at ~(G+4)*H numbers per
        character of a chunk, freed with it. Dropout is never applied."""
        recorded = self.recorded_state(state)
        h, c = self.states(text, progress)
        return text, {"h": h, "c": c}[recorded] if recorded != "tanh_c" else np.tanh(c)

    def states(self, text: str, progress: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(h, c) after each character of ``text``, each (len(text), layers, hidden), c None for a cell
        without a cell state: both states of `activations` from one run."""
        if not isinstance(text, str) or not text:
            raise ValueError("activations need a non-empty text")
        from tqdm import tqdm

        from .. import kernels

        ids = self.vocab.encode(text).astype(np.int64)
        layers, H = self.config["layers"], self.config["hidden"]
        h_all = np.empty((len(ids), layers, H), self.dtype)
        c_all = np.empty_like(h_all) if self.has_cell_state else None
        h = np.zeros((layers, 1, H), self.dtype)
        c: list = [None] * layers
        table = self._input_table()
        with tqdm(total=len(ids), disable=not progress, unit="char", dynamic_ncols=True) as bar:
            for start in range(0, len(ids), ACTIVATION_CHUNK):
                piece = ids[start : start + ACTIVATION_CHUNK, None]
                rows = slice(start, start + len(piece))
                x = table
                for k in range(layers):
                    r = kernels.forward(
                        self.rnn.cell,
                        x,
                        h[k],
                        *self.rnn._layer_parameters(k, 0),
                        c0=c[k],
                        ids=piece if k == 0 else None,
                    )
                    hs, cs = r.workspace.states()  # slot t + 1: the state after step t
                    h_all[rows, k] = hs[1:, 0]
                    if c_all is not None:
                        c_all[rows, k] = cs[1:, 0]
                    h[k], c[k], x = r.h_n, r.c_n, r.y
                bar.update(len(piece))
        return h_all, c_all

    def _engine_model(self) -> tuple:
        """The model arguments of _C.sample and _C.score."""
        per_layer = [self.rnn._layer_parameters(k, 0) for k in range(self.config["layers"])]
        return (
            self.rnn.spec.id,
            self.params.get("embed.weight"),
            *[[p[i] for p in per_layer] for i in range(4)],
            self.head.params["weight"],
            self.head.params["bias"],
        )

    # ------------------------------------------------------------------ files

    def arrays(self) -> Dict[str, np.ndarray]:
        """The parameters for a checkpoint, keyed ``model/<name>``."""
        return {f"model/{k}": v for k, v in self.params.items()}

    def meta(self) -> Dict[str, Any]:
        return {"format": FORMAT, "version": 1, "model": self.config, "vocab": self.vocab.to_json()}

    def save(self, directory: str) -> None:
        """Write the model alone (no training state) to ``directory``/checkpoint.npz."""
        os.makedirs(directory, exist_ok=True)
        checkpoint.save(os.path.join(directory, CHECKPOINT_FILE), self.arrays(), self.meta())

    @classmethod
    def from_checkpoint(cls, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], path: str = "checkpoint") -> "CharLM":
        """The model stored in checkpoint contents (from `rnnkit.checkpoint.load`)."""
        if meta.get("format") != FORMAT:
            raise checkpoint.CheckpointError(f"{path} is not a character-model checkpoint: it holds {kind_of(meta)}")
        with checkpoint.building_from(path):
            cfg = meta["model"]
            checkpoint.check_config_sizes(cfg, arrays, path)
            model = cls(
                Vocab.from_json(meta["vocab"]),
                cfg["cell"],
                cfg["layers"],
                cfg["hidden"],
                cfg["embed"],
                cfg["dropout"],
                cfg["dtype"],
                cfg["seed"],
            )
            checkpoint.restore_arrays(model.params, arrays, "model/")
        return model

    @classmethod
    def load(cls, directory: str, latest: bool = False) -> "CharLM":
        """The model saved in ``directory`` by training (its best checkpoint, best.npz; its latest,
        checkpoint.npz, with ``latest``) or by `save`; CheckpointError if there is none or it is
        unreadable. Loading runs no code from the file."""
        path = checkpoint.run_checkpoint(directory, latest)
        arrays, meta = checkpoint.load(path)
        return cls.from_checkpoint(arrays, meta, path)
