"""``rnnkit eval-captions DIR``: exact match, token accuracy and BLEU-4 of a trained captioning model."""

from __future__ import annotations

import json
from typing import List

from ..cliutil import Parser, add_saved_run_arguments, positive_int, run


def main(argv: List[str], prog: str = "rnnkit eval-captions") -> int:
    """``rnnkit eval-captions DIR [--beam K] [--json]``."""
    p = Parser(
        prog=prog,
        description="Caption the held-out test images of the data the model in DIR was trained "
        "on and print exact match and token accuracy against each image's canonical caption (the shapes "
        "grammar's, or a file's first caption of the image) and BLEU-4 against all its captions.",
    )
    add_saved_run_arguments(p)
    p.add_argument("--beam", type=positive_int, default=1, help="beam size (default 1: greedy)")
    p.add_argument("--alpha", type=float, default=0.6, help="GNMT length normalisation exponent (default 0.6)")
    p.add_argument("--split", choices=["test", "val"], default="test", help="which held-out split (default test)")
    p.add_argument("--max-output", type=positive_int, help="decoding limit in words (default: the training run's)")
    p.add_argument("--batch", type=positive_int, default=256, help="images decoded together (default 256)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)

    def body() -> int:
        from ..models import single_threaded_blas
        from .data import load_data
        from .model import Captioner
        from .train import evaluate

        model, meta = Captioner.load(a.dir, latest=a.latest)
        if "data" not in meta:
            raise ValueError(f"{a.dir} does not say what it was trained on")
        data = load_data(meta["data"])
        split = data.test if a.split == "test" else data.val
        with single_threaded_blas():
            result = evaluate(model, split, a.beam, a.max_output or int(meta.get("max_len", 50)), a.alpha, a.batch)
        if a.json:
            print(json.dumps(result))
        else:
            print(
                f"exact_match: {result['exact_match']:.4f}\ntoken_acc: {result['token_acc']:.4f}\n"
                f"bleu: {result['bleu']:.2f}\nexamples: {result['examples']}"
            )
        return 0

    return run(prog, body)
