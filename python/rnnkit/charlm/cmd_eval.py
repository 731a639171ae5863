"""``rnnkit eval-charlm DIR --text FILE``: bits per character of a text under a trained model."""

from __future__ import annotations

import json
from typing import List

from ..cliutil import add_saved_run_arguments
from .cli import Parser, run


def main(argv: List[str], prog: str = "rnnkit eval-charlm") -> int:
    """``rnnkit eval-charlm DIR --text FILE``: bits per character of a text under a trained model."""
    p = Parser(prog=prog, description="Print the bits per character of a text under the model saved in DIR.")
    add_saved_run_arguments(p)
    p.add_argument("--text", nargs="+", required=True, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print a JSON object with the counts")
    p.add_argument(
        "--as-sampled",
        choices=("float32", "float16", "int8"),
        help="score the text with the sampler's loop and this weight storage, as one stream "
        "(CharLM.evaluate_as_sampled): what a storage of `rnnkit sample --weights` costs; "
        "one character at a time, with a progress bar (default: the training forward, "
        "float32, in batches)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)

    def body() -> int:
        from .data import read_texts
        from .model import CharLM

        model = CharLM.load(a.dir, latest=a.latest)
        text = read_texts(a.text)
        if a.as_sampled:
            result = {
                "bpc": model.evaluate_as_sampled(text, a.as_sampled, progress=not a.no_progress),
                "chars": len(text) - 1,
                "as_sampled": a.as_sampled,
            }
        else:
            result = model.evaluate_details(text)
        print(json.dumps(result) if a.json else f"{result['bpc']:.4f}")
        return 0

    return run(prog, body)
