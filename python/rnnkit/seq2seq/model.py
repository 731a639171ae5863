"""Sequence-to-sequence models: `Seq2Seq` (encoder -> decoder, with or without attention) and
`VectorToSequence` (a decoder conditioned on a feature vector: one-to-many, as in image captioning).
Both share `Decoder`.

Shape legend: B = batch, N = source length (its end symbol included), T = decoder steps, E = embedding
width, H = hidden size (decoder; also the encoder's output width), L = layers, V = target vocabulary,
F = feature width (`VectorToSequence`).

The model, in the terms of Sutskever et al. 2014 and Luong et al. 2015:

* Encoder: source embedding -> L-layer RNN/LSTM/GRU over the source (padding handled with ``lengths``,
  so each sequence's final state is taken at its own end symbol). Bidirectional: each direction has
  H/2 units, the outputs are [forward; reverse] (H wide), and the decoder's initial state of layer l is
  the concatenation [h_fwd; h_rev] of that layer's two final states (for an LSTM c likewise): a
  combination with no extra parameters, which keeps the encoder output and the decoder state the same
  width (the OpenNMT "brnn" convention).
* Decoder: target embedding -> L-layer RNN of H units starting from the encoder's final state (the
  single-vector "bottleneck" model of Sutskever et al. 2014), with teacher forcing: inputs [<s>, y_1 .. y_{n}], targets
  [y_1 .. y_n, </s>].
* Attention (Luong): with decoder states s_t (the top layer's outputs) as queries and the encoder
  outputs h_1..h_N as keys, alpha^t = softmax(score(s_t, h_i)) over the real source positions (padding
  masked out), a_t = sum_i alpha_i^t h_i, and the output layer reads [s_t; a_t]. Scores: ``dot``
  s.h, ``general`` s^T W h, ``additive`` (Bahdanau) v^T tanh(W s + U h). Without attention the output
  layer reads s_t alone.
* Output: logits = Linear([s_t; a_t]) -> softmax over the target vocabulary; the loss is the mean
  cross-entropy over the real target tokens of the batch (padding masked).

Training runs each recurrent stack over the whole sequence in one kernel call per layer and
direction, and the attention over all T steps at once. Decoding (`rnnkit.seq2seq.decode`) steps the
decoder with `rnnkit.kernels.step`, one call per layer on the whole batch (times the beam).
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import checkpoint, kernels
from ..losses import log_softmax, softmax_cross_entropy
from ..models import check_input_width, layer_class
from ..nn import Embedding, Linear
from ..rundir import kind_of
from ..stream_dropout import DropoutRandom, generator_state, keyed_from, restore_generator
from .data import Batch
from .vocab import TokenVocab

__all__ = [
    "Seq2Seq",
    "VectorToSequence",
    "Decoder",
    "DecodeState",
    "ATTENTIONS",
    "get_attention_backend",
    "CHECKPOINT_FILE",
    "FORMAT",
]

ATTENTIONS = ("none", "dot", "general", "additive")
CHECKPOINT_FILE = checkpoint.LATEST_FILE
FORMAT = "rnnkit-seq2seq"


def get_attention_backend(name: Optional[str] = None):
    """The attention module: "native" (`rnnkit.attention`, C++), "reference" (`rnnkit.reference.attention`,
    NumPy), or None for native when it is built, else the reference."""
    if name == "reference":
        return importlib.import_module("rnnkit.reference.attention")
    if name == "native":
        return importlib.import_module("rnnkit.attention")
    if name is not None:
        raise ValueError(f"attention back-end must be 'native' or 'reference', got {name!r}")
    try:
        return importlib.import_module("rnnkit.attention")
    except ImportError:
        return importlib.import_module("rnnkit.reference.attention")


def _check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class _Params:
    """Flattens components into ``params`` / ``grads`` dicts with prefixed names (the arrays are the
    components' own, so an `rnnkit.optim` optimiser over ``params`` trains them)."""

    params: Dict[str, np.ndarray]
    grads: Dict[str, np.ndarray]

    def _collect(self, groups: List[Tuple[str, Dict[str, np.ndarray], Dict[str, np.ndarray]]]) -> None:
        self.params, self.grads = {}, {}
        for prefix, params, grads in groups:
            for k in params:
                self.params[f"{prefix}.{k}"] = params[k]
                self.grads[f"{prefix}.{k}"] = grads[k]

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)


class DecodeState:
    """The decoder's state while decoding a batch: h (L, B, H), c (L, B, H) or None (not LSTM), the
    attention keys (B, N, H) and mask (B, N), or None without attention. `Decoder.step` updates h and c
    in place."""

    __slots__ = ("h", "c", "keys", "mask")

    def __init__(self, h: np.ndarray, c: Optional[np.ndarray], keys: Optional[np.ndarray], mask: Optional[np.ndarray]):
        self.h = np.ascontiguousarray(h)
        self.c = None if c is None else np.ascontiguousarray(c)
        self.keys = None if keys is None else np.ascontiguousarray(keys)
        self.mask = mask

    @property
    def batch(self) -> int:
        return self.h.shape[1]

    def copy(self) -> "DecodeState":
        return DecodeState(self.h.copy(), None if self.c is None else self.c.copy(), self.keys, self.mask)

    def expand(self, k: int) -> "DecodeState":
        """Each row repeated k times (row b*k + j is a copy of row b): the start of a beam search."""
        rep = lambda a, axis: None if a is None else np.repeat(a, k, axis=axis)  # noqa: E731
        return DecodeState(np.repeat(self.h, k, axis=1), rep(self.c, 1), rep(self.keys, 0), rep(self.mask, 0))

    def reorder(self, rows: np.ndarray) -> None:
        """h and c of row i become those of row rows[i]. The keys stay: a beam search only reorders rows
        among the hypotheses of one example, which share their keys."""
        self.h = np.ascontiguousarray(np.take(self.h, rows, axis=1))
        if self.c is not None:
            self.c = np.ascontiguousarray(np.take(self.c, rows, axis=1))


class Decoder(_Params):
    """Target embedding -> L-layer RNN/LSTM/GRU -> (attention over the keys) -> Linear -> logits.

    Parameter names: ``tgt_embed.weight``, ``decoder.<torch key>``, ``attention.<name>`` and
    ``head.weight`` / ``head.bias``.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str,
        layers: int,
        hidden: int,
        embed: int,
        attention: str,
        key_size: int,
        attn_size: Optional[int],
        dtype: Any,
        seed_seq: np.random.SeedSequence,
        backend: Any = None,
        dropout: float = 0.0,
    ):
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        s_embed, s_rnn, s_attn, s_head = seed_seq.spawn(4)
        (s_drop,) = seed_seq.spawn(1)  # after the weights' children, so the weights do not depend on it
        self.layers, self.hidden, self.vocab_size = layers, hidden, vocab_size
        self.attention = attention
        self.dropout = float(dropout)
        self.drop_rng: DropoutRandom = np.random.default_rng(s_drop)
        self.embed = Embedding(vocab_size, embed, dtype, np.random.default_rng(s_embed))
        check_input_width(cell, embed, hidden)
        self.rnn = layer_class(cell)(
            embed,
            hidden,
            layers,
            dropout=self.dropout if layers > 1 else 0.0,
            dtype=dtype,
            seed=int(s_rnn.generate_state(1)[0]),
        )
        self.attn = None
        self.attn_params: Dict[str, np.ndarray] = {}
        if attention != "none":
            self.attn = backend if backend is not None else get_attention_backend()
            if attention == "dot" and key_size != hidden:
                raise ValueError(f"dot attention needs keys as wide as the decoder state ({key_size} != {hidden})")
            self.attn_params = self.attn.init_params(
                attention,
                hidden,
                key_size,
                attn_size if attention == "additive" else None,
                dtype=dtype,
                rng=np.random.default_rng(s_attn),
            )
        self.attn_grads = {k: np.zeros_like(v) for k, v in self.attn_params.items()}
        self.head = Linear(hidden + (key_size if self.attn else 0), vocab_size, dtype, np.random.default_rng(s_head))
        self._cache: Optional[tuple] = None
        self._collect(self.groups())

    def groups(self):
        return [
            ("tgt_embed", self.embed.params, self.embed.grads),
            ("decoder", dict(self.rnn.named_parameters()), self.rnn.grads),
            ("attention", self.attn_params, self.attn_grads),
            ("head", self.head.params, self.head.grads),
        ]

    @property
    def has_cell_state(self) -> bool:
        """Whether the decoder carries a cell state beside h (its state is then the pair (h, c))."""
        return self.rnn.spec.has_cell_state

    # ------------------------------------------------------------------ training

    def forward(
        self,
        tgt_in: np.ndarray,
        h0: np.ndarray,
        c0: Optional[np.ndarray],
        keys: Optional[np.ndarray],
        mask: Optional[np.ndarray],
        training: bool = True,
    ) -> np.ndarray:
        """Teacher-forced pass: tgt_in (T, B) ids from initial state h0 (L, B, H) (and c0) -> logits
        (T*B, V), rows in (t, b) order. keys (B, N, H) and mask (B, N) feed the attention (None
        without). In training mode it keeps what `backward` needs."""
        T, B = tgt_in.shape
        self.rnn.train(training)
        x = self.embed.forward(tgt_in) if training else self.embed.params["weight"][tgt_in]
        hx = (h0, c0) if self.has_cell_state else h0
        s, _ = self.rnn.forward(x, hx)  # (T, B, H)
        feat, res = s, None
        if self.attn is not None:
            queries = np.ascontiguousarray(s.transpose(1, 0, 2))  # (B, T, H)
            res = self.attn.forward(self.attention, queries, keys, self.attn_params, mask, training=training)
            feat = np.concatenate([s, res.context.transpose(1, 0, 2)], axis=2)  # (T, B, H + Hk)
        feat = feat.reshape(T * B, -1)
        keep = None
        if training and self.dropout > 0:  # inverted dropout on the output layer's input
            draws = self.drop_rng.random((T, B, feat.shape[1])).reshape(feat.shape)  # time-major, as the layers'
            keep = (draws >= self.dropout).astype(feat.dtype) / (1.0 - self.dropout)
            feat = feat * keep
        logits = self.head.forward(feat) if training else self.head.apply(feat)
        self._cache = (T, B, None if res is None else res.cache, keep) if training else None
        return logits

    def backward(self, dlogits: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        """Gradients of the last training forward: returns (dh0, dc0 or None, dkeys or None) and adds the
        parameter gradients into ``grads``."""
        if self._cache is None:
            raise RuntimeError("Decoder.backward needs a training forward first")
        T, B, attn_cache, keep = self._cache
        self._cache = None
        H = self.hidden
        dfeat = self.head.backward(dlogits)
        assert dfeat is not None  # the input's gradient is returned unless input_grad=False
        if keep is not None:
            dfeat = dfeat * keep
        dfeat = dfeat.reshape(T, B, -1)
        ds = dfeat[:, :, :H]
        dkeys = None
        if self.attn is not None:
            dctx = np.ascontiguousarray(dfeat[:, :, H:].transpose(1, 0, 2))
            dq, dkeys, dp = self.attn.backward(attn_cache, dctx)
            for k, g in dp.items():
                self.attn_grads[k] += g
            ds = ds + dq.transpose(1, 0, 2)
        dx, dstate = self.rnn.backward(np.ascontiguousarray(ds), None)
        self.embed.backward(dx)
        if self.has_cell_state:
            return dstate[0], dstate[1], dkeys
        return dstate, None, dkeys

    # ------------------------------------------------------------------ decoding

    def step(
        self, tokens: np.ndarray, state: DecodeState, want_weights: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """One decoding step for the whole batch: tokens (B,) ids -> (log-probabilities (B, V), attention
        weights (B, N) if ``want_weights`` and there is attention, else None). Each layer is one
        `rnnkit.kernels.step` call writing into ``state`` in place."""
        x = self.embed.params["weight"][tokens]
        for l in range(self.layers):
            h = state.h[l]
            c = state.c[l] if state.c is not None else None
            kernels.step(self.rnn.cell, x, h, *self.rnn._layer_parameters(l, 0), c=c, out=(h, c))
            x = h
        s = state.h[self.layers - 1]
        weights = None
        if self.attn is not None:
            res = self.attn.forward(
                self.attention, s[:, None, :], state.keys, self.attn_params, state.mask, training=False
            )
            s = np.concatenate([s, res.context[:, 0, :]], axis=1)
            if want_weights:
                weights = res.weights[:, 0, :]
        logits = self.head.apply(s)
        return log_softmax(logits), weights


class Seq2Seq(_Params):
    """Encoder-decoder over token vocabularies (see the module docstring for the equations).

    Args:
        src_vocab, tgt_vocab: `TokenVocab`s. cell: "lstm", "gru" or "rnn". layers: of the encoder and of
        the decoder. hidden: H, the decoder's units (a bidirectional encoder has H/2 per direction, so
        H must be even). embed: E, of both embeddings. bidirectional: encoder. attention: "none", "dot",
        "general" or "additive". attn_size: the additive attention's inner width (default H).
        dtype: float32 (training) or float64 (gradient checks). seed: all initial weights.
        dropout: in training, between stacked layers of the encoder and the decoder and on the output
        layer's input ([s_t; a_t]); its masks come from generators of their own (`rng_states`).
        attention_backend: "native", "reference" or None (`get_attention_backend`), or a module.

    ``params`` / ``grads``: name -> array, names ``src_embed.weight``, ``encoder.<torch key>`` and the
    `Decoder`'s.
    """

    def __init__(
        self,
        src_vocab: TokenVocab,
        tgt_vocab: TokenVocab,
        cell: str = "lstm",
        layers: int = 1,
        hidden: int = 128,
        embed: int = 64,
        bidirectional: bool = False,
        attention: str = "none",
        attn_size: Optional[int] = None,
        dtype: Any = np.float32,
        seed: int = 0,
        attention_backend: Any = None,
        dropout: float = 0.0,
    ):
        layer_class(cell)  # ValueError naming the choices
        _check_positive(layers=layers, hidden=hidden, embed=embed)
        if attn_size is not None:
            _check_positive(attn_size=attn_size)
        if bidirectional and hidden % 2:
            raise ValueError(
                f"a bidirectional encoder splits --hidden between its directions, so it must be even, got {hidden}"
            )
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.config = {
            "cell": cell,
            "layers": int(layers),
            "hidden": int(hidden),
            "embed": int(embed),
            "bidirectional": bool(bidirectional),
            "attention": attention,
            "attn_size": None if attn_size is None else int(attn_size),
            "dtype": np.dtype(dtype).name,
            "seed": int(seed),
            "dropout": float(dropout),
        }
        s_src, s_enc, s_dec = np.random.SeedSequence(seed).spawn(3)
        backend = attention_backend
        if attention != "none" and (backend is None or isinstance(backend, str)):
            backend = get_attention_backend(backend)
        self.src_embed = Embedding(len(src_vocab), embed, dtype, np.random.default_rng(s_src))
        enc_hidden = hidden // 2 if bidirectional else hidden
        check_input_width(cell, embed, enc_hidden)
        self.encoder = layer_class(cell)(
            embed,
            enc_hidden,
            layers,
            bidirectional=bidirectional,
            dropout=float(dropout) if layers > 1 else 0.0,
            dtype=dtype,
            seed=int(s_enc.generate_state(1)[0]),
        )
        self.decoder = Decoder(
            len(tgt_vocab), cell, layers, hidden, embed, attention, hidden, attn_size, dtype, s_dec, backend, dropout
        )
        self._collect(
            [
                ("src_embed", self.src_embed.params, self.src_embed.grads),
                ("encoder", dict(self.encoder.named_parameters()), self.encoder.grads),
            ]
            + self.decoder.groups()
        )
        self._enc_saved: Optional[tuple] = None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.config["dtype"])

    def rng_states(self) -> Dict[str, Any]:
        """The JSON-able states of the dropout generators (encoder and decoder stacks, output layer)."""
        return {
            "encoder": generator_state(self.encoder._dropout_rng),
            "decoder": generator_state(self.decoder.rnn._dropout_rng),
            "output": generator_state(self.decoder.drop_rng),
        }

    def set_rng_states(self, states: Dict[str, Any], first_example: int = 0) -> None:
        """Undoes `rng_states`; ``first_example``: the position in the batch of the first example this
        process trains, for masks keyed by example (`use_stream_keyed_dropout`)."""
        enc, dec = self.encoder, self.decoder
        enc._dropout_rng = restore_generator(enc._dropout_rng, states["encoder"], first_example)
        dec.rnn._dropout_rng = restore_generator(dec.rnn._dropout_rng, states["decoder"], first_example)
        dec.drop_rng = restore_generator(dec.drop_rng, states["output"], first_example)

    def use_stream_keyed_dropout(self, first_example: int) -> None:
        """Draw each example's dropout masks from its position in the batch (`rnnkit.stream_dropout`),
        this process's examples starting at ``first_example``: what data-parallel training does, so
        that an example's masks do not depend on which rank trains it."""
        enc, dec = self.encoder, self.decoder
        enc._dropout_rng = keyed_from(enc._dropout_rng, first_example)
        dec.rnn._dropout_rng = keyed_from(dec.rnn._dropout_rng, first_example)
        dec.drop_rng = keyed_from(dec.drop_rng, first_example)

    @property
    def attention(self) -> str:
        return self.config["attention"]

    # ------------------------------------------------------------------ encoder

    def _bridge(self, s: np.ndarray) -> np.ndarray:
        """Encoder final states (L*D, B, He) -> decoder initial states (L, B, H): with two directions
        layer l's [forward; reverse] concatenated."""
        if not self.config["bidirectional"]:
            return s
        L = self.config["layers"]
        _, B, He = s.shape
        return np.ascontiguousarray(s.reshape(L, 2, B, He).transpose(0, 2, 1, 3).reshape(L, B, 2 * He))

    def _unbridge(self, d: np.ndarray) -> np.ndarray:
        if not self.config["bidirectional"]:
            return d
        L, B, H = d.shape
        return np.ascontiguousarray(d.reshape(L, B, 2, H // 2).transpose(0, 2, 1, 3).reshape(2 * L, B, H // 2))

    def encode(self, src: np.ndarray, src_len: np.ndarray, training: bool = False):
        """src (B, N) ids, src_len (B,) -> (h0 (L, B, H), c0 or None, keys (B, N, H) or None, mask (B, N))."""
        self.encoder.train(training)
        ids = np.ascontiguousarray(src.T)
        x = self.src_embed.forward(ids) if training else self.src_embed.params["weight"][ids]
        y, hn = self.encoder.forward(x, None, lengths=src_len)
        h, c = hn if isinstance(hn, tuple) else (hn, None)
        h0 = self._bridge(h)
        c0 = None if c is None else self._bridge(c)
        keys = np.ascontiguousarray(y.transpose(1, 0, 2)) if self.attention != "none" else None
        mask = np.arange(src.shape[1])[None, :] < np.asarray(src_len)[:, None]
        if training:
            self._enc_saved = y.shape
        return h0, c0, keys, mask

    # ------------------------------------------------------------------ training

    def loss_and_grad(self, batch: Batch) -> float:
        """Mean cross-entropy per target token (nats) of the batch under teacher forcing with inputs
        ``batch.tgt_in``; adds its gradient into ``grads``."""
        h0, c0, keys, mask = self.encode(batch.src, batch.src_len, training=True)
        logits = self.decoder.forward(batch.tgt_in, h0, c0, keys, mask, training=True)
        loss, dlogits = softmax_cross_entropy(logits, batch.tgt_out.reshape(-1), batch.weights.reshape(-1))
        assert dlogits is not None and self._enc_saved is not None  # grad=True; encode(training=True)
        dh0, dc0, dkeys = self.decoder.backward(dlogits)
        y_shape = self._enc_saved
        self._enc_saved = None
        dy = np.zeros(y_shape, self.dtype) if dkeys is None else np.ascontiguousarray(dkeys.transpose(1, 0, 2))
        dh = self._unbridge(dh0)
        dx, _ = self.encoder.backward(dy, (dh, self._unbridge(dc0)) if dc0 is not None else dh)
        self.src_embed.backward(dx)
        return loss

    def loss(self, batch: Batch) -> Tuple[float, float]:
        """(summed cross-entropy in nats, number of target tokens) of the batch, teacher forced, no
        gradients."""
        h0, c0, keys, mask = self.encode(batch.src, batch.src_len)
        logits = self.decoder.forward(batch.tgt_in, h0, c0, keys, mask, training=False)
        w = batch.weights.reshape(-1)
        mean, _ = softmax_cross_entropy(logits, batch.tgt_out.reshape(-1), w, grad=False)
        n = float(w.sum())
        return mean * n, n

    # ------------------------------------------------------------------ decoding

    def start(self, src: np.ndarray, src_len: np.ndarray) -> DecodeState:
        """The decoder's state before its first step for sources src (B, N), src_len (B,)."""
        h0, c0, keys, mask = self.encode(src, src_len)
        return DecodeState(h0, c0, keys, mask)

    # ------------------------------------------------------------------ files

    def arrays(self) -> Dict[str, np.ndarray]:
        return {f"model/{k}": v for k, v in self.params.items()}

    def meta(self) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "model": self.config,
            "src_vocab": self.src_vocab.to_json(),
            "tgt_vocab": self.tgt_vocab.to_json(),
        }

    @classmethod
    def from_checkpoint(
        cls,
        arrays: Dict[str, np.ndarray],
        meta: Dict[str, Any],
        path: str = "checkpoint",
        attention_backend: Any = None,
    ) -> "Seq2Seq":
        if meta.get("format") != FORMAT:
            raise checkpoint.CheckpointError(
                f"{path} is not a sequence-to-sequence checkpoint: it holds {kind_of(meta)}"
            )
        with checkpoint.building_from(path):
            cfg = dict(meta["model"])
            checkpoint.check_config_sizes(cfg, arrays, path)
            model = cls(
                TokenVocab.from_json(meta["src_vocab"]),
                TokenVocab.from_json(meta["tgt_vocab"]),
                attention_backend=attention_backend,
                **cfg,
            )
            checkpoint.restore_arrays(model.params, arrays, "model/")
        return model

    @classmethod
    def load(
        cls, directory: str, latest: bool = False, attention_backend: Any = None
    ) -> Tuple["Seq2Seq", Dict[str, Any]]:
        """(model, checkpoint metadata) saved in ``directory`` by training: its best checkpoint (best.npz),
        or its latest (checkpoint.npz) with ``latest`` or when there is no best; CheckpointError if
        missing or unreadable."""
        path = checkpoint.run_checkpoint(directory, latest)
        arrays, meta = checkpoint.load(path)
        return cls.from_checkpoint(arrays, meta, path, attention_backend), meta


class VectorToSequence(_Params):
    """A decoder conditioned on a feature vector instead of an encoder (one-to-many, as in image
    captioning): h_0 of every layer = tanh(W_init v + b_init) (W_init: (L*H, F)), c_0 = 0 for an LSTM,
    then the `Decoder` without attention from <s> until </s>.

    ``params`` / ``grads`` names: ``init.weight``, ``init.bias`` and the `Decoder`'s. Train with
    `loss_and_grad`, decode with ``rnnkit.seq2seq.decode.greedy(m.decoder, m.start(features), ...)``
    or ``beam_search``.
    """

    def __init__(
        self,
        feature_size: int,
        tgt_vocab: TokenVocab,
        cell: str = "lstm",
        layers: int = 1,
        hidden: int = 128,
        embed: int = 64,
        dtype: Any = np.float32,
        seed: int = 0,
    ):
        layer_class(cell)  # ValueError naming the choices
        _check_positive(feature_size=feature_size, layers=layers, hidden=hidden, embed=embed)
        self.tgt_vocab = tgt_vocab
        self.config = {
            "feature_size": feature_size,
            "cell": cell,
            "layers": layers,
            "hidden": hidden,
            "embed": embed,
            "dtype": np.dtype(dtype).name,
            "seed": seed,
        }
        s_init, s_dec = np.random.SeedSequence(seed).spawn(2)
        self.init = Linear(feature_size, layers * hidden, dtype, np.random.default_rng(s_init))
        self.decoder = Decoder(len(tgt_vocab), cell, layers, hidden, embed, "none", hidden, None, dtype, s_dec)
        self._collect([("init", self.init.params, self.init.grads)] + self.decoder.groups())
        self._h0: Optional[np.ndarray] = None

    def _initial(self, features: np.ndarray, training: bool):
        L, H = self.config["layers"], self.config["hidden"]
        B = features.shape[0]
        pre = self.init.forward(features) if training else self.init.apply(features)
        flat = np.tanh(pre)  # (B, L*H)
        if training:
            self._h0 = flat
        h0 = np.ascontiguousarray(flat.reshape(B, L, H).transpose(1, 0, 2))
        c0 = np.zeros_like(h0) if self.decoder.has_cell_state else None
        return h0, c0

    def loss_and_grad(self, features: np.ndarray, batch: Batch) -> float:
        """Mean cross-entropy per target token of ``batch``'s targets (its ``src`` is ignored) given
        features (B, F); adds the gradient into ``grads``."""
        h0, c0 = self._initial(features, True)
        logits = self.decoder.forward(batch.tgt_in, h0, c0, None, None, training=True)
        loss, dlogits = softmax_cross_entropy(logits, batch.tgt_out.reshape(-1), batch.weights.reshape(-1))
        assert dlogits is not None and self._h0 is not None  # grad=True; _initial(training=True)
        dh0, _, _ = self.decoder.backward(dlogits)
        flat = self._h0
        dflat = dh0.transpose(1, 0, 2).reshape(flat.shape) * (1 - flat * flat)
        self.init.backward(dflat)
        return loss

    def start(self, features: np.ndarray) -> DecodeState:
        """The decoder's state before its first step, for features (B, F)."""
        h0, c0 = self._initial(np.asarray(features, self.init.params["weight"].dtype), False)
        return DecodeState(h0, c0, None, None)
