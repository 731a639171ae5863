"""Metrics of decoded outputs against references (token lists).

* exact match: the fraction of outputs equal to their reference, token for token.
* token accuracy: the fraction of reference tokens matched by the output token at the same position
  (an output that is too short misses the rest; one too long is not penalised further).
* BLEU (Papineni et al. 2002): corpus-level, up to 4-grams, clipped counts, uniform weights, brevity
  penalty, no smoothing, reported 0..100 (the standard corpus BLEU, as sacrebleu's with tokenised input);
  with one reference per output or several (`corpus_bleu_multi`, as image captioning scores).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Dict, Mapping, Sequence

__all__ = ["exact_match", "token_accuracy", "corpus_bleu", "corpus_bleu_multi", "score_all", "validation_row"]

Tokens = Sequence[str]


def _check(hyps, refs) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} outputs for {len(refs)} references")
    if not refs:
        raise ValueError("no examples to score")


def exact_match(hyps: Sequence[Tokens], refs: Sequence[Tokens]) -> float:
    _check(hyps, refs)
    return sum(list(h) == list(r) for h, r in zip(hyps, refs)) / len(refs)


def token_accuracy(hyps: Sequence[Tokens], refs: Sequence[Tokens]) -> float:
    _check(hyps, refs)
    total = sum(len(r) for r in refs)
    hits = sum(sum(a == b for a, b in zip(h, r)) for h, r in zip(hyps, refs))
    return hits / total if total else float(exact_match(hyps, refs))


def _ngrams(tokens: Tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hyps: Sequence[Tokens], refs: Sequence[Tokens], max_n: int = 4) -> float:
    """Corpus BLEU in 0..100 with one reference per output; 0 when some n-gram order has no match."""
    _check(hyps, refs)
    return corpus_bleu_multi(hyps, [[r] for r in refs], max_n)


def corpus_bleu_multi(hyps: Sequence[Tokens], refs: Sequence[Sequence[Tokens]], max_n: int = 4) -> float:
    """Corpus BLEU in 0..100 with several references per output (``refs[i]`` lists output i's): each
    n-gram count is clipped by its largest count in any one reference, and the brevity penalty takes
    the reference length closest to the output's (the shorter on a tie), as in Papineni et al. and
    NLTK's corpus_bleu. 0 when some n-gram order has no match."""
    _check(hyps, refs)
    if any(not r for r in refs):
        raise ValueError("every output needs at least one reference")
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for h, rs in zip(hyps, refs):
        h, rs = list(h), [list(r) for r in rs]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]
        for n in range(1, max_n + 1):
            hc = _ngrams(h, n)
            best: Counter = Counter()
            for r in rs:
                best |= _ngrams(r, n)  # union keeps the largest count of each n-gram
            matches[n - 1] += sum(min(c, best[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if min(matches) == 0 or hyp_len == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    brevity = 0.0 if hyp_len > ref_len else 1.0 - ref_len / hyp_len
    return 100.0 * math.exp(log_precision + brevity)


def score_all(hyps: Sequence[Tokens], refs: Sequence[Tokens], bleu: bool = False) -> Dict[str, float]:
    """{"exact_match", "token_acc"} (and "bleu" if asked) of the outputs."""
    out: Dict[str, float] = {"exact_match": exact_match(hyps, refs), "token_acc": token_accuracy(hyps, refs)}
    if bleu:
        out["bleu"] = corpus_bleu(hyps, refs)
    return out


def validation_row(loss_sum: float, count: float, scores: Mapping[str, float]) -> Dict[str, float]:
    """A validation pass's figures in a metrics row: ``val_loss`` (``loss_sum`` over ``count`` target
    tokens), ``val_exact_match``, ``val_token_acc``, and ``val_bleu`` when ``scores`` (`score_all`'s
    keys) has BLEU."""
    out = {
        "val_loss": loss_sum / count,
        "val_exact_match": scores["exact_match"],
        "val_token_acc": scores["token_acc"],
    }
    if "bleu" in scores:
        out["val_bleu"] = scores["bleu"]
    return out
