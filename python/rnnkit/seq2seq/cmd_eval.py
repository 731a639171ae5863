"""``rnnkit eval-seq2seq DIR``: metrics of a trained sequence-to-sequence model on its test split or a file."""

from __future__ import annotations

import json
from typing import List

from ..cliutil import Parser, add_saved_run_arguments, deprecated_alias, positive_int, run


def main(argv: List[str], prog: str = "rnnkit eval-seq2seq") -> int:
    """``rnnkit eval-seq2seq DIR [--beam N] [--pairs FILE] [--json]``."""
    p = Parser(
        prog=prog,
        description="Decode the test split of the data the model in DIR was trained on (or "
        "every pair of --pairs FILE) and print exact match and token accuracy (and corpus BLEU, 0-100, for word tokens).",
    )
    add_saved_run_arguments(p)
    p.add_argument("--beam", type=positive_int, default=1, help="beam size (default 1: greedy)")
    p.add_argument("--alpha", type=float, default=0.6, help="GNMT length normalisation exponent")
    p.add_argument(
        "--pairs",
        metavar="FILE",
        help="score on every pair of this file instead (default: the --split of the training data)",
    )
    p.add_argument("--split", choices=["test", "val"], default="test", help="which held-out split (default test)")
    p.add_argument("--max-output", type=positive_int, help="decoding limit in tokens (default: the training run's)")
    deprecated_alias(p, "--max-len", "--max-output", positive_int)
    p.add_argument("--batch", type=positive_int, default=256, help="sources decoded together")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)

    def body() -> int:
        from ..models import single_threaded_blas
        from .data import Encoded, load_splits
        from .model import Seq2Seq
        from .pairs import read_pairs
        from .train import evaluate

        model, meta = Seq2Seq.load(a.dir, latest=a.latest)
        kind = meta.get("tokens", "char")
        if a.pairs:
            pairs = read_pairs(a.pairs)
        else:
            if "data" not in meta:
                raise ValueError(f"{a.dir} does not say what it was trained on: give --pairs FILE")
            splits = load_splits(meta["data"])
            pairs = splits.test if a.split == "test" else splits.val
        enc = Encoded(pairs, kind, model.src_vocab, model.tgt_vocab)
        with single_threaded_blas():
            result = evaluate(model, enc, kind, a.beam, a.max_output or int(meta.get("max_len", 100)), a.alpha, a.batch)
        if a.json:
            print(json.dumps(result))
        else:
            for k in ("exact_match", "token_acc", "bleu"):
                if k in result:
                    print(f"{k}: {result[k]:.4f}")
            print(f"examples: {result['examples']}")
        return 0

    return run(prog, body)
