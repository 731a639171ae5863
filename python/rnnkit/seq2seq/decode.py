"""Decoding: greedy and batched beam search with GNMT length normalisation.

Both work on a `Decoder` and a `DecodeState` (from ``Seq2Seq.start``, ``VectorToSequence.start`` or
``rnnkit.captions.Captioner.start``) for a batch of B examples; `decode` picks one by the beam size.
The loop over output steps is Python; each step is one `Decoder.step` on the whole batch (B rows greedy,
B*K rows for a beam of K: one `rnnkit.kernels.step` call per layer, the attention, the output layer)
followed by vectorised NumPy selection; nothing runs per element in Python.

Scoring: a hypothesis y_1..y_n (n counts its end symbol when it has one) scores
log p(y) / lp(n) with GNMT's length penalty lp(n) = ((5 + n) / 6) ** alpha (Wu et al. 2016); alpha = 0
ranks by plain log-probability.

Beam search (per example, K hypotheses alive): each step extends every alive hypothesis by every token
and keeps the 2K best candidates by log-probability (ties: lower beam, then lower token id, first).
Candidates among the best K that end with </s> become finished hypotheses; the best K that do not
stay alive. An example is done once it has K finished hypotheses; at ``max_len`` its alive hypotheses are
finished without </s>. The finished ones are ranked by normalised score. With K = 1 this is exactly
greedy decoding. Finally the greedy hypothesis is run beside the beam (one more batch of B rows, about
1/K of the work) and ranked with the finished ones: a beam can lose the greedy path, so the best
hypothesis returned never scores below greedy's, and asking for the ``n_best`` best returns that many
(up to K + 1 exist, fewer only where the vocabulary allows fewer distinct outputs), best first.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .model import Decoder, DecodeState
from .vocab import BOS, EOS, PAD

__all__ = [
    "Hypothesis",
    "length_penalty",
    "greedy",
    "greedy_tokens",
    "scheduled_inputs",
    "beam_search",
    "decode",
    "translate",
    "translate_all",
]


class Hypothesis(NamedTuple):
    """tokens: output ids without </s>; logp: log-probability (the </s> included when it ended with
    one); length: n of the length penalty (tokens, plus one for </s>); score: logp / lp(length);
    attention: (length, N) weights of each output step over the source, or None."""

    tokens: List[int]
    logp: float
    length: int
    score: float
    attention: Optional[np.ndarray] = None

    @property
    def ended(self) -> bool:
        return self.length > len(self.tokens)


def length_penalty(length, alpha: float):
    """GNMT's lp(|Y|) = ((5 + |Y|) / 6) ** alpha (arrays too)."""
    return ((5.0 + np.asarray(length, np.float64)) / 6.0) ** alpha


def _check(max_len: int, alpha: float) -> None:
    if not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
    if not (alpha >= 0 and np.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")


def greedy(
    decoder: Decoder, state: DecodeState, max_len: int, alpha: float = 0.6, return_attention: bool = False
) -> List[Hypothesis]:
    """The most likely token at every step until </s> or ``max_len`` tokens; one Hypothesis per example.
    Consumes ``state``."""
    _check(max_len, alpha)
    B = state.batch
    rows = np.arange(B)
    tokens = np.full(B, BOS, np.int32)
    out = np.zeros((B, max_len), np.int32)
    logp_sum = np.zeros(B, np.float64)
    length = np.full(B, max_len, np.int64)
    ended = np.zeros(B, bool)
    atts: List[Any] = []  # (B, N) weights of each step, or None each without attention
    for t in range(max_len):
        logp, w = decoder.step(tokens, state, return_attention)
        tok = logp.argmax(axis=1).astype(np.int32)
        logp_sum += np.where(ended, 0.0, logp[rows, tok].astype(np.float64))
        out[:, t] = tok
        new = ~ended & (tok == EOS)
        length[new] = t + 1
        ended |= new
        if return_attention:
            atts.append(w)
        if ended.all():
            break
        tokens = tok
    att = np.stack(atts, axis=1) if return_attention and atts and atts[0] is not None else None
    hyps = []
    for b in range(B):
        n = int(length[b])
        toks = out[b, : n - 1 if ended[b] else n].tolist()
        score = float(logp_sum[b] / length_penalty(n, alpha))
        hyps.append(Hypothesis(toks, float(logp_sum[b]), n, score, None if att is None else att[b, :n]))
    return hyps


def greedy_tokens(decoder: Decoder, state: DecodeState, steps: int) -> np.ndarray:
    """(steps, B) greedy predictions, each step fed the previous prediction, never stopping at </s>
    (the model's own inputs for scheduled sampling). Consumes ``state``."""
    tokens = np.full(state.batch, BOS, np.int32)
    out = np.zeros((steps, state.batch), np.int32)
    for t in range(steps):
        logp, _ = decoder.step(tokens, state)
        tokens = logp.argmax(axis=1).astype(np.int32)
        out[t] = tokens
    return out


def scheduled_inputs(
    decoder: Decoder, start: Callable[[], DecodeState], tgt_in: np.ndarray, ratio: float, seed: int, step: int
) -> np.ndarray:
    """The decoder's inputs (T, B) at training step ``step`` under teacher forcing ratio ``ratio``
    (scheduled sampling per batch): a coin drawn from (seed, step) keeps the gold ``tgt_in`` with
    probability ``ratio``, else [<s>, the model's own greedy predictions] from the state ``start()``
    (decoded without gradients)."""
    coin = np.random.default_rng([seed, 2, step]).random() if ratio < 1.0 else 0.0
    if coin < ratio:
        return tgt_in
    own = greedy_tokens(decoder, start(), tgt_in.shape[0] - 1)
    return np.concatenate([np.full((1, own.shape[1]), BOS, np.int32), own], axis=0)


def beam_search(
    decoder: Decoder,
    state: DecodeState,
    beam: int,
    max_len: int,
    alpha: float = 0.6,
    n_best: int = 1,
    return_attention: bool = False,
) -> List[List[Hypothesis]]:
    """Batched beam search (see the module docstring); for each example its up to ``n_best`` best
    hypotheses, best first. Consumes ``state``."""
    _check(max_len, alpha)
    if not isinstance(beam, (int, np.integer)) or beam < 1:
        raise ValueError(f"beam size must be a positive integer, got {beam!r}")
    if not isinstance(n_best, (int, np.integer)) or not 1 <= n_best <= beam:
        raise ValueError(f"n_best must lie in 1..beam ({beam}), got {n_best!r}")
    K, B, V = int(beam), state.batch, decoder.vocab_size
    reference = greedy(decoder, state.copy(), max_len, alpha, return_attention)
    st = state.expand(K)
    bidx = np.arange(B)[:, None]
    scores = np.full((B, K), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis at first, so the K beams do not start as copies
    hist = np.zeros((B, K, 0), np.int32)
    att_hist: Any = None  # (B, K, t, N) once the decoder returns attention
    tokens = np.full(B * K, BOS, np.int32)
    finished: List[list] = [[] for _ in range(B)]
    done = np.zeros(B, bool)
    for t in range(max_len):
        logp, w = decoder.step(tokens, st, return_attention)
        cand = (scores[:, :, None] + logp.reshape(B, K, V).astype(np.float64)).reshape(B, K * V)
        order = np.argsort(-cand, axis=1, kind="stable")[:, : 2 * K]
        top = np.take_along_axis(cand, order, axis=1)
        parent, tok = order // V, (order % V).astype(np.int32)
        step_att: Any = None
        if w is not None:
            step_att = w.reshape(B, K, -1)
            if att_hist is None:
                att_hist = np.zeros((B, K, 0, step_att.shape[2]), step_att.dtype)
        # Hypotheses that end here: </s> among the best K candidates of an example not yet done.
        is_eos = (tok == EOS) & np.isfinite(top)
        for b, r in zip(*np.nonzero(is_eos[:, :K] & ~done[:, None])):
            p = parent[b, r]
            a = None if att_hist is None else np.concatenate([att_hist[b, p], step_att[b, p][None]], axis=0)
            finished[b].append(
                Hypothesis(
                    hist[b, p].tolist(), float(top[b, r]), t + 1, float(top[b, r] / length_penalty(t + 1, alpha)), a
                )
            )
        # The best K candidates that do not end stay alive (at most K of the 2K end: one </s> per parent).
        keep = tok != EOS
        chosen = keep & (np.cumsum(keep, axis=1) <= K)
        cols = np.nonzero(chosen)[1].reshape(B, K)
        new_parent = np.take_along_axis(parent, cols, axis=1)
        new_tok = np.take_along_axis(tok, cols, axis=1)
        scores = np.take_along_axis(top, cols, axis=1)
        hist = np.concatenate([hist[bidx, new_parent], new_tok[:, :, None]], axis=2)
        if att_hist is not None:
            att_hist = np.concatenate([att_hist[bidx, new_parent], step_att[bidx, new_parent][:, :, None]], axis=2)
        done |= np.array([len(f) >= K for f in finished])
        if t == max_len - 1:  # out of steps: the alive hypotheses end without </s>
            for b in np.nonzero(~done)[0]:
                for k in range(K):
                    if np.isfinite(scores[b, k]):
                        finished[b].append(
                            Hypothesis(
                                hist[b, k].tolist(),
                                float(scores[b, k]),
                                max_len,
                                float(scores[b, k] / length_penalty(max_len, alpha)),
                                None if att_hist is None else att_hist[b, k],
                            )
                        )
            break
        if done.all():
            break
        st.reorder((bidx * K + new_parent).reshape(-1))
        tokens = new_tok.reshape(-1)
    results = []
    for b in range(B):
        distinct: Dict[
            Tuple[Tuple[int, ...], int], Hypothesis
        ] = {}  # the greedy path may also be among the finished, its score rounded otherwise: keep one
        for h in sorted(finished[b] + [reference[b]], key=lambda h: -h.score):
            distinct.setdefault((tuple(h.tokens), h.length), h)
        results.append(list(distinct.values())[:n_best])
    return results


def translate(
    model,
    src: np.ndarray,
    src_len: np.ndarray,
    beam: int = 1,
    max_len: int = 50,
    alpha: float = 0.6,
    return_attention: bool = False,
) -> List[Hypothesis]:
    """The best hypothesis for each source of a batch (src (B, N), src_len (B,)) of a `Seq2Seq`: greedy
    for beam 1, else beam search."""
    return decode(model.decoder, model.start(src, src_len), beam, max_len, alpha, return_attention)


def decode(
    decoder: Decoder,
    state: DecodeState,
    beam: int = 1,
    max_len: int = 50,
    alpha: float = 0.6,
    return_attention: bool = False,
) -> List[Hypothesis]:
    """The best hypothesis for each example of ``state`` (from any model's ``start``): greedy for beam 1,
    else beam search. Consumes ``state``."""
    if beam == 1:
        return greedy(decoder, state, max_len, alpha, return_attention)
    return [h[0] for h in beam_search(decoder, state, beam, max_len, alpha, 1, return_attention)]


def translate_all(
    model, srcs: Sequence[np.ndarray], beam: int = 1, max_len: int = 50, alpha: float = 0.6, batch: int = 256
) -> List[List[int]]:
    """Output ids of every encoded source (each ending with </s>), ``batch`` sources at a time."""
    out: List[List[int]] = []
    for start in range(0, len(srcs), batch):
        chunk = srcs[start : start + batch]
        lens = np.array([len(s) for s in chunk], np.int64)
        S = np.full((len(chunk), int(lens.max())), PAD, np.int32)
        for i, s in enumerate(chunk):
            S[i, : len(s)] = s
        out.extend(h.tokens for h in translate(model, S, lens, beam, max_len, alpha))
    return out
