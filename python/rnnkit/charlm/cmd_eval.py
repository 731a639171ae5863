"""``rnnkit eval-charlm DIR --text FILE``: bits per character of a text under a trained model."""
from __future__ import annotations

import json
from typing import List

from .cli import Parser, run


def main(argv: List[str], prog: str = "rnnkit eval-charlm") -> int:
    """``rnnkit eval-charlm DIR --text FILE``: bits per character of a text under a trained model."""
    p = Parser(prog=prog, description="Print the bits per character of a text under the model saved in DIR.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--text", nargs="+", required=True, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print a JSON object with the counts")
    a = p.parse_args(argv)

    def body() -> int:
        from .data import read_texts
        from .model import CharLM

        model = CharLM.load(a.dir)
        result = model.evaluate_details(read_texts(a.text))
        print(json.dumps(result) if a.json else f"{result['bpc']:.4f}")
        return 0

    return run(prog, body)
