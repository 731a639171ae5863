"""``rnnkit classify DIR "some text"``: print a trained classifier's label and class probabilities."""

from __future__ import annotations

import json
import sys
from typing import List

from ..cliutil import Parser, add_saved_run_arguments, positive_int, run


def main(argv: List[str], prog: str = "rnnkit classify") -> int:
    """``rnnkit classify DIR TEXT [TEXT ...] [--top K] [--json]``."""
    p = Parser(
        prog=prog,
        description="Classify each TEXT with the model saved in DIR: print its label, then "
        "every class's probability, likeliest first. A --per-step tagger prints each token with its tag "
        "and that tag's probability.",
    )
    add_saved_run_arguments(p, "use the run's latest checkpoint (default: its best, best.npz)")
    p.add_argument(
        "texts", metavar="TEXT", nargs="+", help="text to classify ('-' reads one text per line of standard input)"
    )
    p.add_argument("--top", type=positive_int, help="print only the K likeliest classes (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object per text")
    a = p.parse_args(argv)

    def body() -> int:
        from ..models import single_threaded_blas
        from .data import text_tokens
        from .model import Classifier

        model, _ = Classifier.load(a.dir, latest=a.latest)
        tokens = model.config["tokens"]
        texts = [t for arg in a.texts for t in (sys.stdin.read().splitlines() if arg == "-" else [arg])]
        token_lists = [text_tokens(t, tokens, model.per_step) for t in texts]
        for i, toks in enumerate(token_lists):
            if not toks:
                raise ValueError(f"text {i + 1} is empty" if len(texts) > 1 else "the text is empty")
        names = model.labels.names
        with single_threaded_blas():
            probs = model.predict_texts(token_lists)
        for text, toks, pr in zip(texts, token_lists, probs):
            if model.per_step:
                tags = [names[k] for k in pr.argmax(axis=1)]
                if a.json:
                    print(
                        json.dumps(
                            {
                                "text": text,
                                "tokens": toks,
                                "tags": tags,
                                "probabilities": [dict(zip(names, map(float, row))) for row in pr],
                            }
                        )
                    )
                else:
                    for tok, row in zip(toks, pr):
                        k = int(row.argmax())
                        print(f"{tok}\t{names[k]}\t{row[k]:.4f}")
                    if len(texts) > 1:
                        print()
                continue
            order = pr.argsort()[::-1][: a.top or len(names)]
            if a.json:
                print(
                    json.dumps(
                        {
                            "text": text,
                            "label": names[order[0]],
                            "probabilities": {names[k]: float(pr[k]) for k in order},
                        }
                    )
                )
            else:
                width = max(len(names[k]) for k in order)
                print(names[order[0]])
                for k in order:
                    print(f"  {names[k].ljust(width)}  {pr[k]:.4f}")
        return 0

    return run(prog, body)
