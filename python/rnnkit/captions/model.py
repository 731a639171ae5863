"""The captioning model: region features of an image condition a recurrent decoder that writes its caption,
with or without attention over the regions at every word (Xu et al. 2015, "Show, Attend and Tell").

Shape legend: B = images, P = regions per image, D = raw numbers per region (pixels, or a file's
feature vector), F = region feature width, L = decoder layers, H = decoder units, T = caption length + 1.

* Region encoder (the role of a CNN's last convolutional map), one vector per region, with a learned
  position embedding pos_p (P, F) so the regions know where they are:
    ``linear``: f_p = W x_p + b + pos_p
    ``mlp``:    z_p = relu(W_1 x_p + b_1 + pos_p), f_p = W_2 z_p + b_2 + U mean_q(z_q)
                (W_1: F x D, W_2 and U: F x F): the second layer also sees the image's mean first-layer
                feature, as a deep CNN's last map sees beyond its region, so that a region can tell
                whether its object recurs elsewhere (which "two red circles" needs; soft attention's
                weighted mean cannot count).
  The features end linear, with no squashing: trained from scratch (not a fixed CNN's), tanh features
  saturated for every image within a few hundred steps when the decoder pushed their mean towards a
  constant, and a model without attention then never learnt.
* Initial state from the mean region feature m = mean_p(f_p), ``--init``:
    ``linear``: h_0 of every layer = W_h m + b_h (W_h: (L*H, F)), c_0 = 0 for an LSTM;
    ``mlp`` (Show, Attend and Tell's f_init): u = relu(W_u m + b_u) (W_u: (F, F)), h_0 = W_h u + b_h,
    and for a cell with a cell state (LSTM) c_0 = W_c u + b_c.
  No tanh on the state: the decoder pushes its initial state towards a constant (the first words of most
  captions are the same), and a tanh there saturated within a few hundred steps (|h_0| -> 1 for every
  image), after which no gradient reached the image (a model without attention then never learnt).
* Decoder: `rnnkit.seq2seq.model.Decoder` (embedding, L-layer RNN/LSTM/GRU, teacher forcing), whose
  attention (dot, general or additive, `rnnkit.attention`) takes the decoder state s_t as the query and
  the P region features as keys and values: alpha^t = softmax_p(score(s_t, f_p)), a_t = sum_p alpha_p^t f_p,
  logits = Linear([s_t; a_t]). Without attention the image reaches the decoder only through h_0.
* Decoding: `rnnkit.seq2seq.decode` (greedy, beam search with length normalisation) on `start`'s state.

Parameter names: ``regions.proj.weight``, ``regions.proj.bias``, ``regions.pos`` (and ``regions.out.*``
for ``mlp``), ``init.h.weight``, ``init.h.bias`` (and ``init.u.*``, ``init.c.*`` for an ``mlp`` init), then the
Decoder's (``tgt_embed.weight``,
``decoder.<torch key>``, ``attention.<name>``, ``head.*``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import checkpoint
from ..losses import softmax_cross_entropy
from ..models import layer_class
from ..nn import Linear, Module
from ..seq2seq.data import pad_targets
from ..seq2seq.model import ATTENTIONS, Decoder, DecodeState, _check_positive, _Params, get_attention_backend
from ..seq2seq.vocab import TokenVocab

__all__ = ["Captioner", "RegionEncoder", "InitialState", "ENCODERS", "INITS", "CHECKPOINT_FILE", "FORMAT"]

ENCODERS = ("linear", "mlp")
INITS = ("linear", "mlp")
CHECKPOINT_FILE = "checkpoint.npz"
FORMAT = "rnnkit-captions"


class RegionEncoder(Module):
    """Raw regions (B, P, D) -> features (B, P, F) (see the module docstring); ``params`` / ``grads`` keys
    ``proj.weight``, ``proj.bias``, ``pos`` and, for ``mlp``, ``out.weight``, ``out.bias``, ``ctx.weight``."""

    def __init__(self, kind: str, raw_size: int, regions: int, feature_size: int, dtype: Any, rng: np.random.Generator):
        if kind not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {kind!r}")
        self.kind = kind
        self.proj = Linear(raw_size, feature_size, dtype, rng)
        self.out = Linear(feature_size, feature_size, dtype, rng) if kind == "mlp" else None
        self.pos = (0.1 * rng.standard_normal((regions, feature_size))).astype(dtype)
        self.pos_grad = np.zeros_like(self.pos)
        parts = [("proj", self.proj)] + ([("out", self.out)] if self.out else [])
        self.params = {f"{n}.{k}": v for n, m in parts for k, v in m.params.items()}
        self.params["pos"] = self.pos
        self.grads = {f"{n}.{k}": v for n, m in parts for k, v in m.grads.items()}
        self.grads["pos"] = self.pos_grad
        if kind == "mlp":
            bound = 1.0 / np.sqrt(feature_size)
            self.params["ctx.weight"] = rng.uniform(-bound, bound, (feature_size, feature_size)).astype(dtype)
            self.grads["ctx.weight"] = np.zeros_like(self.params["ctx.weight"])
        self._saved: Optional[tuple] = None

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """x (B, P, D) -> (B, P, F); in training mode keeps what `backward` needs."""
        a = (self.proj.forward(x) if training else self.proj.apply(x)) + self.pos
        hidden = context = None
        if self.out is not None:
            hidden = np.maximum(a, 0)
            context = hidden.mean(axis=1)  # (B, F)
            a = self.out.forward(hidden) if training else self.out.apply(hidden)
            a += (context @ self.params["ctx.weight"].T)[:, None, :]
        if training:
            self._saved = (hidden, context)
        return a

    def backward(self, df: np.ndarray) -> None:
        """Adds the gradients of the last training forward, given df (B, P, F), into ``grads``."""
        hidden, context = self._saved
        self._saved = None
        da = df
        if self.out is not None:
            per_image = da.sum(axis=1)  # (B, F): U's output is shared by the P regions
            self.grads["ctx.weight"] += per_image.T @ context
            dcontext = per_image @ self.params["ctx.weight"]
            da = (self.out.backward(da) + (dcontext / hidden.shape[1])[:, None, :]) * (hidden > 0)
        self.pos_grad += da.sum(axis=0)
        self.proj.backward(da, input_grad=False)


class InitialState(Module):
    """The mean region feature m (B, F) -> the decoder's initial state as flat (B, L*H) arrays h and c
    (c None for ``linear`` or a cell without one); see the module docstring. ``params`` / ``grads`` keys
    ``h.weight``, ``h.bias`` and, for ``mlp``, ``u.*`` and (LSTM) ``c.*``."""

    def __init__(self, kind: str, feature_size: int, state_size: int, lstm: bool, dtype: Any, rng: np.random.Generator):
        if kind not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {kind!r}")
        self.u = Linear(feature_size, feature_size, dtype, rng) if kind == "mlp" else None
        self.h = Linear(feature_size, state_size, dtype, rng)
        self.c = Linear(feature_size, state_size, dtype, rng) if kind == "mlp" and lstm else None
        parts = [(n, m) for n, m in (("u", self.u), ("h", self.h), ("c", self.c)) if m is not None]
        self.params = {f"{n}.{k}": v for n, m in parts for k, v in m.params.items()}
        self.grads = {f"{n}.{k}": v for n, m in parts for k, v in m.grads.items()}
        self._saved: Optional[tuple] = None

    def forward(self, m: np.ndarray, training: bool = True) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        apply = (lambda layer, x: layer.forward(x)) if training else (lambda layer, x: layer.apply(x))
        u = m if self.u is None else np.maximum(apply(self.u, m), 0)
        h = apply(self.h, u)
        c = None if self.c is None else apply(self.c, u)
        if training:
            self._saved = u
        return h, c

    def backward(self, dh: np.ndarray, dc: Optional[np.ndarray]) -> np.ndarray:
        """Gradients of the last training forward given dh (and dc): adds into ``grads``, returns dm."""
        u = self._saved
        self._saved = None
        du = self.h.backward(dh)
        if self.c is not None:
            du = du + self.c.backward(dc)
        return du if self.u is None else self.u.backward(du * (u > 0))


class Captioner(_Params):
    """Region encoder -> mean -> initial state -> `Decoder` with optional attention over the regions.

    Args:
        raw_size: D. regions: P. vocab: the caption `TokenVocab`. cell: "lstm", "gru" or "rnn". layers,
        hidden, embed: of the decoder. feature_size: F (default: hidden; "dot" attention needs F == H).
        encoder: "linear" or "mlp". init: "linear" or "mlp" (the initial state). attention: "none", "dot",
        "general" or "additive". attn_size: the
        additive attention's inner width (default F). dtype: float32, or float64 for gradient checks.
        seed: all initial weights. attention_backend: "native", "reference", None or a module.
    """

    def __init__(
        self,
        raw_size: int,
        regions: int,
        vocab: TokenVocab,
        cell: str = "lstm",
        layers: int = 1,
        hidden: int = 128,
        embed: int = 64,
        feature_size: Optional[int] = None,
        encoder: str = "mlp",
        init: str = "mlp",
        attention: str = "additive",
        attn_size: Optional[int] = None,
        dtype: Any = np.float32,
        seed: int = 0,
        attention_backend: Any = None,
    ):
        layer_class(cell)  # ValueError naming the choices
        feature_size = hidden if feature_size is None else feature_size
        _check_positive(
            raw_size=raw_size, regions=regions, layers=layers, hidden=hidden, embed=embed, feature_size=feature_size
        )
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
        if attention == "dot" and feature_size != hidden:
            raise ValueError(
                f"dot attention needs region features as wide as the decoder state: --feature-size "
                f"{feature_size} != --hidden {hidden}"
            )
        self.vocab = vocab
        self.config = {
            "raw_size": int(raw_size),
            "regions": int(regions),
            "cell": cell,
            "layers": int(layers),
            "hidden": int(hidden),
            "embed": int(embed),
            "feature_size": int(feature_size),
            "encoder": encoder,
            "init": init,
            "attention": attention,
            "attn_size": None if attn_size is None else int(attn_size),
            "dtype": np.dtype(dtype).name,
            "seed": int(seed),
        }
        s_enc, s_init, s_dec = np.random.SeedSequence(seed).spawn(3)
        backend = attention_backend
        if attention != "none" and (backend is None or isinstance(backend, str)):
            backend = get_attention_backend(backend)
        self.encoder = RegionEncoder(encoder, raw_size, regions, feature_size, dtype, np.random.default_rng(s_enc))
        self.decoder = Decoder(
            len(vocab), cell, layers, hidden, embed, attention, feature_size, attn_size, dtype, s_dec, backend
        )
        self.init = InitialState(
            init, feature_size, layers * hidden, self.decoder.has_cell_state, dtype, np.random.default_rng(s_init)
        )
        self._collect(
            [("regions", self.encoder.params, self.encoder.grads), ("init", self.init.params, self.init.grads)]
            + self.decoder.groups()
        )

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.config["dtype"])

    @property
    def attention(self) -> str:
        return self.config["attention"]

    def _check_regions(self, regions: np.ndarray) -> np.ndarray:
        P, D = self.config["regions"], self.config["raw_size"]
        regions = np.asarray(regions)
        if regions.ndim != 3 or regions.shape[1:] != (P, D) or regions.shape[0] < 1:
            raise ValueError(f"regions must have shape (B, {P}, {D}) for this model, got {regions.shape}")
        regions = np.ascontiguousarray(regions, self.dtype)
        if not np.isfinite(regions).all():  # NaN features would decode to a caption of garbage
            bad = np.argwhere(~np.isfinite(regions))[0]
            raise ValueError(f"regions must be finite; image {bad[0]} has {regions[tuple(bad)]} at region {bad[1]}")
        return regions

    def encode(self, regions: np.ndarray, training: bool = False):
        """regions (B, P, D) -> (h0 (L, B, H), c0 or None, keys (B, P, F) or None)."""
        x = self._check_regions(regions)
        f = self.encoder.forward(x, training)
        m = f.mean(axis=1)
        h, c = self.init.forward(m, training)  # (B, L*H) each
        h0 = self._to_layers(h)
        c0 = self._to_layers(c) if c is not None else np.zeros_like(h0) if self.decoder.has_cell_state else None
        return h0, c0, (f if self.attention != "none" else None)

    def _to_layers(self, flat: np.ndarray) -> np.ndarray:
        """(B, L*H) -> (L, B, H)."""
        L, H = self.config["layers"], self.config["hidden"]
        return np.ascontiguousarray(flat.reshape(-1, L, H).transpose(1, 0, 2))

    @staticmethod
    def _from_layers(state: np.ndarray) -> np.ndarray:
        """(L, B, H) -> (B, L*H)."""
        return np.ascontiguousarray(state.transpose(1, 0, 2).reshape(state.shape[1], -1))

    def targets(self, captions: Sequence[Sequence[str]]):
        """Teacher-forcing (tgt_in, tgt_out, weights), each (T, B), of token lists."""
        return pad_targets([self.vocab.encode(c) for c in captions], self.dtype)

    def loss_and_grad(self, regions: np.ndarray, captions: Sequence[Sequence[str]]) -> float:
        """Mean cross-entropy per caption token (its end included) under teacher forcing; adds the gradient
        into ``grads``."""
        tgt_in, tgt_out, w = self.targets(captions)
        return self.loss_and_grad_ids(regions, tgt_in, tgt_out, w)

    def loss_and_grad_ids(
        self, regions: np.ndarray, tgt_in: np.ndarray, tgt_out: np.ndarray, weights: np.ndarray
    ) -> float:
        """`loss_and_grad` with the decoder inputs given as ids (T, B) (scheduled sampling feeds its own)."""
        h0, c0, keys = self.encode(regions, training=True)
        logits = self.decoder.forward(tgt_in, h0, c0, keys, None, training=True)
        loss, dlogits = softmax_cross_entropy(logits, tgt_out.reshape(-1), weights.reshape(-1))
        dh0, dc0, dkeys = self.decoder.backward(dlogits)
        dm = self.init.backward(self._from_layers(dh0), None if dc0 is None else self._from_layers(dc0))
        P = self.config["regions"]
        df = np.broadcast_to((dm / P)[:, None, :], (dm.shape[0], P, dm.shape[1]))
        self.encoder.backward(df + dkeys if dkeys is not None else df)
        return loss

    def loss(self, regions: np.ndarray, captions: Sequence[Sequence[str]]) -> Tuple[float, float]:
        """(summed cross-entropy in nats, number of caption tokens), teacher forced, no gradients."""
        tgt_in, tgt_out, w = self.targets(captions)
        h0, c0, keys = self.encode(regions)
        logits = self.decoder.forward(tgt_in, h0, c0, keys, None, training=False)
        w = w.reshape(-1)
        mean, _ = softmax_cross_entropy(logits, tgt_out.reshape(-1), w, grad=False)
        n = float(w.sum())
        return mean * n, n

    def start(self, regions: np.ndarray) -> DecodeState:
        """The decoder's state before its first word, for regions (B, P, D)."""
        h0, c0, keys = self.encode(regions)
        return DecodeState(h0, c0, keys, None)

    # ------------------------------------------------------------------ files

    def arrays(self) -> Dict[str, np.ndarray]:
        return {f"model/{k}": v for k, v in self.params.items()}

    def meta(self) -> Dict[str, Any]:
        return {"format": FORMAT, "version": 1, "model": self.config, "vocab": self.vocab.to_json()}

    @classmethod
    def from_checkpoint(
        cls,
        arrays: Dict[str, np.ndarray],
        meta: Dict[str, Any],
        path: str = "checkpoint",
        attention_backend: Any = None,
    ) -> "Captioner":
        if meta.get("format") != FORMAT:
            raise checkpoint.CheckpointError(f"{path} is not a captioning checkpoint")
        with checkpoint.building_from(path):
            model = cls(
                vocab=TokenVocab.from_json(meta["vocab"]), attention_backend=attention_backend, **dict(meta["model"])
            )
            checkpoint.restore_arrays(model.params, arrays, "model/")
        return model

    @classmethod
    def load(
        cls, directory: str, latest: bool = False, attention_backend: Any = None
    ) -> Tuple["Captioner", Dict[str, Any]]:
        """(model, checkpoint metadata) saved in ``directory`` by training: its best checkpoint (best.npz),
        or its latest (checkpoint.npz) with ``latest`` or when there is no best; CheckpointError if
        missing or unreadable."""
        path = checkpoint.run_checkpoint(directory, latest)
        arrays, meta = checkpoint.load(path)
        return cls.from_checkpoint(arrays, meta, path, attention_backend), meta
