"""``rnnkit cells DIR --text FILE``: which units of a trained char-LM track which feature of a text, as a
table (or JSON rows) and an HTML page of the text coloured by each top unit."""
from __future__ import annotations

import json
import os
from typing import List

from ..cliutil import Parser, check_output_file, non_negative_int, positive_int, run


def main(argv: List[str], prog: str = "rnnkit cells") -> int:
    """``rnnkit cells DIR --text FILE [--html cells.html] [--top 12] [--layer K] [--json]``."""
    p = Parser(prog=prog, description="Run the char-LM saved in DIR over a text, record every unit's activation "
               "after each character (an LSTM's cell state c, other cells' h), score each unit against "
               "features of the text (code: strings, comments, bracket depth, indentation, position in the "
               "line; prose: quotes, parentheses, position in the line and word) by correlation and, for "
               "yes/no features, by a one-threshold classifier's accuracy, and print the best units.")
    p.add_argument("dir", metavar="DIR", help="a directory saved by rnnkit train-charlm")
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="UTF-8 text file(s), concatenated")
    p.add_argument("--html", metavar="FILE",
                   help="write a self-contained HTML page of the top units there (default: no page)")
    p.add_argument("--top", type=positive_int, default=12,
                   help="rows of the table and units of the page: each feature's best unit, then the next best "
                        "(default: %(default)s)")
    p.add_argument("--layer", type=non_negative_int, metavar="K", help="only units of layer K (default: all)")
    p.add_argument("--json", action="store_true",
                   help='print JSON rows {"layer", "unit", "feature", "correlation"} best first instead of the table '
                        '(yes/no features add "accuracy" and "baseline")')
    p.add_argument("--kind", choices=("auto", "code", "prose"), default="auto",
                   help="which features: auto decides by the text's share of brackets and operators "
                        "(default: %(default)s)")
    p.add_argument("--state", choices=("auto", "h", "c", "tanh_c"), default="auto",
                   help="what is recorded and scored: auto = c for a cell with a cell state (LSTM), h otherwise; "
                        "tanh_c = tanh(c), which the page colours for c too (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)

    def body() -> int:
        from ..charlm.data import read_texts
        from ..charlm.model import CharLM, single_threaded_blas
        from .features import text_features
        from .page import render, write
        from .scoring import rank, score_units

        if a.html:
            check_output_file(a.html, "--html")
        model = CharLM.load(a.dir)
        text = read_texts(a.text)
        layers = model.config["layers"]
        if a.layer is not None and a.layer >= layers:
            raise ValueError(f"--layer {a.layer} does not exist: the model has layers 0..{layers - 1}")
        feats = text_features(text, a.kind)
        with single_threaded_blas():
            _, acts = model.activations(text, a.state, progress=not a.no_progress)
        state = model.recorded_state(a.state)
        scores = score_units(acts, feats.features, None if a.layer is None else [a.layer])
        if not scores:
            raise ValueError("every feature is constant over this text: nothing to score (use a longer text)")
        rows = rank(scores, a.top)
        if a.json:
            print(json.dumps([r.row() for r in rows]))
        else:
            cfg = model.config
            print(f"{cfg['cell']} {cfg['layers']}x{cfg['hidden']} ({a.dir}), state {state}, on {len(text):,} "
                  f"characters; {feats.kind} features from {feats.method}")
            scored = {s.feature for s in scores}
            constant = [f.name for f in feats.features if f.name not in scored]
            if constant:
                print(f"not scored (constant over the text): {', '.join(constant)}")
            print(f"{'layer':>5} {'unit':>5}  {'feature':<18} {'correlation':>11} {'accuracy':>9} {'baseline':>9}")
            for r in rows:
                acc = f"{r.accuracy:9.3f} {r.baseline:9.3f}" if r.accuracy is not None else f"{'-':>9} {'-':>9}"
                print(f"{r.layer:>5} {r.unit:>5}  {r.feature:<18} {r.correlation:>+11.3f} {acc}")
        if a.html:
            cfg = model.config
            info = {"model": f"{cfg['cell']} {cfg['layers']}x{cfg['hidden']} from {os.path.abspath(a.dir)}",
                    "text": f"{', '.join(a.text)} ({len(text):,} characters, {feats.kind} features from "
                            f"{feats.method.split(' (')[0]})",
                    "recorded": {"c": "cell state c", "tanh_c": "tanh of the cell state c", "h": "h"}[state]
                    + " after each character"}
            shown = "h" if state == "h" else "tanh of the cell state"
            write(a.html, render(text, acts, rows, feats.features, "Interpretable cells", info, state == "c", shown))
        return 0

    return run(prog, body)
