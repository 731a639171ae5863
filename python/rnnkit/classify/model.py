"""Classifier: embedding -> L-layer RNN/LSTM/GRU (one or two directions) -> pooling over the valid
steps -> linear -> softmax over the classes (many-to-one); with ``per_step`` the pooling is left out and
every valid step gets its own softmax (many-to-many, synced: tagging). The two shapes share everything
else: the data, the stack, the output layer, the loss, training and evaluation.

Shape legend: T = steps (a batch's longest sequence), B = batch, V = vocabulary, E = embedding width,
H = hidden units per direction, D = directions (2 if bidirectional), K = classes, N = valid steps of a
batch (per step).

In the lecture's terms, for a sequence x_1..x_n (its padding past n is never read: the layers run with
``lengths``, the pooling reads valid steps only, and per step only valid steps are scored):

    h_t = RNN(E[x_t], h_{t-1})                 stacked, [forward; reverse] with two directions
    s   = pool(h_1..h_n)                       last | mean | max | attention (`rnnkit.pooling.Pool`)
    p   = softmax(W s + b)                     per step: p_t = softmax(W h_t + b)
    loss = sum_i w_{y_i} (-log p_i[y_i]) / sum_i w_{y_i}    class weights w (1 without), as torch's
                                                            CrossEntropyLoss(weight=w)

A small vocabulary (characters) is read through the first layer's fused lookup (``ids=``), so the
embedding's gradient comes back from the stack's backward as the table's; a large one (words) is
gathered into the layer's input first.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import checkpoint
from ..losses import linear_softmax_cross_entropy, softmax_cross_entropy
from ..models import check_input_width, layer_class
from ..nn import Embedding, Linear
from ..pooling import POOLS, Pool
from ..seq2seq.model import _Params
from ..seq2seq.vocab import TokenVocab
from .data import Batch, Labels, text_tokens

__all__ = ["Classifier", "CHECKPOINT_FILE", "FORMAT", "POOLS"]

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT = "rnnkit-classifier"


def _positive(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class Classifier(_Params):
    """A sequence classifier (or, with ``per_step``, a tagger) over a token vocabulary.

    Args:
        vocab: a `TokenVocab` (id 0 pads). labels: a `rnnkit.classify.data.Labels`. cell: "lstm", "gru"
        or "rnn". layers, hidden: the stack (hidden units per direction, as torch). embed: E.
        bidirectional: two directions. pool: one of POOLS (sequence classification only). attn_size:
        attention pooling's width (default D*H). per_step: tag every token instead. dropout: between
        recurrent layers while training. dtype: float32 (training) or float64 (gradient checks).
        seed: all initial weights. backend: "native" (C++) or "reference" (NumPy) pooling kernels.
        tokens: how `classify` splits a text ("char" or "word", as the training data was read).

    ``params`` / ``grads``: name -> array, names ``embed.weight``, ``rnn.<torch key>``,
    ``pool.<name>`` (attention only) and ``head.weight`` / ``head.bias``; the arrays are the modules'
    own, so an `rnnkit.optim` optimiser over ``params`` trains the model.
    """

    def __init__(
        self,
        vocab: TokenVocab,
        labels: Labels,
        cell: str = "lstm",
        layers: int = 1,
        hidden: int = 128,
        embed: int = 64,
        bidirectional: bool = False,
        pool: str = "last",
        attn_size: Optional[int] = None,
        per_step: bool = False,
        dropout: float = 0.0,
        dtype: Any = np.float32,
        seed: int = 0,
        backend: Optional[str] = None,
        tokens: str = "char",
    ):
        layer = layer_class(cell)
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        _positive(layers=layers, hidden=hidden, embed=embed)
        check_input_width(cell, embed, hidden)
        if attn_size is not None:
            _positive(attn_size=attn_size)
            if pool != "attention" or per_step:
                raise ValueError("attn_size is the width of attention pooling: give it with pool='attention'")
        text_tokens("", tokens, per_step)  # checks the kind
        self.vocab, self.labels = vocab, labels
        self.config = {
            "tokens": tokens,
            "cell": cell,
            "layers": int(layers),
            "hidden": int(hidden),
            "embed": int(embed),
            "bidirectional": bool(bidirectional),
            "pool": pool,
            "attn_size": attn_size,
            "per_step": bool(per_step),
            "dropout": float(dropout),
            "dtype": np.dtype(dtype).name,
            "seed": int(seed),
        }
        s_embed, s_rnn, s_pool, s_head = np.random.SeedSequence(seed).spawn(4)
        D = 2 if bidirectional else 1
        self.embed = Embedding(len(vocab), embed, dtype, np.random.default_rng(s_embed))
        # dropout acts between stacked layers only, so a single layer takes none (and no warning)
        self.rnn = layer(
            embed,
            hidden,
            layers,
            dropout=dropout if layers > 1 else 0.0,
            bidirectional=bidirectional,
            dtype=dtype,
            seed=int(s_rnn.generate_state(1)[0]),
        )
        self.pool = (
            None
            if per_step
            else Pool(pool, D * hidden, hidden, attn_size, dtype, np.random.default_rng(s_pool), backend)
        )
        self.head = Linear(D * hidden, len(labels), dtype, np.random.default_rng(s_head))
        self._fused = True  # how the last forward read the embedding (see `_stack`)
        groups = [
            ("embed", self.embed.params, self.embed.grads),
            ("rnn", dict(self.rnn.named_parameters()), self.rnn.grads),
            ("pool", self.pool.params if self.pool else {}, self.pool.grads if self.pool else {}),
            ("head", self.head.params, self.head.grads),
        ]
        self._collect(groups)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.config["dtype"])

    @property
    def per_step(self) -> bool:
        return self.config["per_step"]

    # ------------------------------------------------------------------ forward

    def _stack(self, batch: Batch, training: bool) -> np.ndarray:
        """The top layer's outputs (T, B, D*H), zero past each length.

        The first layer reads the embedding through its fused lookup (it projects the table's V rows
        once) while V is at most the batch's T*B ids, as with characters; a larger vocabulary (words) is
        gathered first, so the layer projects T*B rows instead of V. ``_fused`` remembers which, for
        backward."""
        self.rnn.train(training)
        table = self.embed.params["weight"]
        self._fused = table.shape[0] <= batch.ids.size
        if self._fused:
            y, _ = self.rnn.forward(table, None, lengths=batch.lengths, ids=batch.ids)
        else:
            x = self.embed.forward(batch.ids) if training else table[batch.ids]
            y, _ = self.rnn.forward(x, None, lengths=batch.lengths)
        return y

    def _stack_backward(self, dy: np.ndarray) -> None:
        dx, _ = self.rnn.backward(dy, None)
        if self._fused:
            self.grads["embed.weight"] += dx  # the table's gradient
        else:
            self.embed.backward(dx)

    @staticmethod
    def _valid(batch: Batch) -> np.ndarray:
        """Flat (t, b) row indices of the valid steps of a batch, (N,)."""
        T = batch.ids.shape[0]
        return np.flatnonzero(np.arange(T)[:, None] < batch.lengths[None, :])

    def _features(self, batch: Batch, training: bool) -> Tuple[np.ndarray, np.ndarray]:
        """(the output layer's input: (B, D*H), or per step (N, D*H) of the valid steps; its targets)."""
        y = self._stack(batch, training)
        if self.per_step:
            rows = self._valid(batch)
            return y.reshape(-1, y.shape[2])[rows], batch.targets.reshape(-1)[rows]
        return self.pool.forward(y, batch.lengths, training), batch.targets

    def loss_and_grad(self, batch: Batch, class_weights: Optional[np.ndarray] = None) -> float:
        """Mean (class-weighted) cross-entropy in nats per example (per token per step) of the batch;
        adds its gradient into ``grads``."""
        features, targets = self._features(batch, True)
        weights = None if class_weights is None else class_weights[targets]
        loss, dfeatures = linear_softmax_cross_entropy(self.head, features, targets, weights)
        T, B = batch.ids.shape
        if self.per_step:
            dy = np.zeros((T * B, dfeatures.shape[1]), self.dtype)
            dy[self._valid(batch)] = dfeatures
            dy = dy.reshape(T, B, -1)
        else:
            dy = self.pool.backward(dfeatures)
        self._stack_backward(dy)
        return loss

    def evaluate_batch(
        self, batch: Batch, class_weights: Optional[np.ndarray] = None
    ) -> Tuple[float, float, np.ndarray, np.ndarray]:
        """One inference pass: (summed weighted cross-entropy in nats, summed weights, true classes,
        predicted classes), the classes per example (per step: per valid token)."""
        features, targets = self._features(batch, False)
        logits = self.head.apply(features)
        weights = None if class_weights is None else class_weights[targets]
        mean, _ = softmax_cross_entropy(logits, targets, weights, grad=False)
        total = float(len(targets)) if weights is None else float(weights.sum(dtype=np.float64))
        return mean * total, total, targets, logits.argmax(axis=1)

    def probabilities(self, batch: Batch) -> np.ndarray:
        """Class probabilities: (B, K), or per step (N, K) for the valid steps in (t, b) order."""
        features, _ = self._features(batch, False)
        logits = self.head.apply(features).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict_texts(self, token_lists: List[List[str]]) -> List[np.ndarray]:
        """Class probabilities of each token list: (K,) per sequence, or (n, K) per step."""
        if any(not toks for toks in token_lists):
            raise ValueError("the text is empty")
        ids = [self.vocab.encode(toks).astype(np.int64) for toks in token_lists]
        lengths = np.array([len(i) for i in ids], np.int64)
        padded = np.zeros((int(lengths.max()), len(ids)), np.int64)
        for j, i in enumerate(ids):
            padded[: len(i), j] = i
        batch = Batch(padded, lengths, np.zeros(padded.shape if self.per_step else len(ids), np.int64))
        probs = self.probabilities(batch)
        if not self.per_step:
            return list(probs)
        _, element = np.divmod(self._valid(batch), len(ids))  # the rows are valid (t, b) in time order
        return [probs[element == b] for b in range(len(ids))]

    def classify(self, texts: Sequence[str]) -> List[Any]:
        """Classify texts (split into tokens as the training data was). For each text: (label,
        {label: probability}) of a sequence classifier, or, per step, a list of (token, tag,
        probability) for its tokens. ValueError for an empty text."""
        token_lists = [text_tokens(t, self.config["tokens"], self.per_step) for t in texts]
        names = self.labels.names
        out: List[Any] = []
        for toks, p in zip(token_lists, self.predict_texts(token_lists)):
            if self.per_step:
                out.append([(tok, names[int(row.argmax())], float(row.max())) for tok, row in zip(toks, p)])
            else:
                out.append((names[int(p.argmax())], {n: float(v) for n, v in zip(names, p)}))
        return out

    # ------------------------------------------------------------------ files

    def arrays(self) -> Dict[str, np.ndarray]:
        return {f"model/{k}": v for k, v in self.params.items()}

    def meta(self) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "model": self.config,
            "vocab": self.vocab.to_json(),
            "labels": self.labels.names,
        }

    @classmethod
    def from_checkpoint(
        cls, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], path: str = "checkpoint"
    ) -> "Classifier":
        if meta.get("format") != FORMAT:
            raise checkpoint.CheckpointError(f"{path} is not a classifier checkpoint")
        with checkpoint.building_from(path):
            model = cls(TokenVocab.from_json(meta["vocab"]), Labels(meta["labels"]), **meta["model"])
            checkpoint.restore_arrays(model.params, arrays, "model/")
        return model

    @classmethod
    def load(cls, directory: str, latest: bool = False) -> Tuple["Classifier", Dict[str, Any]]:
        """(model, checkpoint metadata) of the run in ``directory``: its best checkpoint (best.npz), or its
        latest (checkpoint.npz) with ``latest`` or when there is no best; CheckpointError if missing or
        unreadable."""
        path = checkpoint.run_checkpoint(directory, latest)
        arrays, meta = checkpoint.load(path)
        return cls.from_checkpoint(arrays, meta, path), meta
