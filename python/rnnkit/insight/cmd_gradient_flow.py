"""``rnnkit gradient-flow``: the norm of dL/dh_t against the distance T - t for vanilla RNN (W_hh with
singular values 0.9, 1.0, 1.1), LSTM (forget bias 0 and 1), GRU and, with --from, a trained char-LM; a
plot and a table or JSON."""
from __future__ import annotations

import argparse
import json
from typing import List

from ..cliutil import Parser, check_output_file, positive_float, positive_int, require_module, run
from .gradient_flow import CELL_FAMILIES, INPUT_SCALE


def cell_list(s: str) -> List[str]:
    """--cells: comma-separated names among CELL_FAMILIES."""
    names = [n.strip() for n in s.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one cell")
    for n in names:
        if n not in CELL_FAMILIES:
            raise argparse.ArgumentTypeError(f"unknown cell {n!r}: choose among {', '.join(CELL_FAMILIES)}")
    return names


def main(argv: List[str], prog: str = "rnnkit gradient-flow") -> int:
    """``rnnkit gradient-flow [--cells rnn,lstm,gru] [--steps 100] [--hidden 128] [--from DIR] [--out grad.png]
    [--json]``."""
    p = Parser(prog=prog, description="For each cell, the mean norm of dL/dh_t for a loss L = <v, h_T> at the last "
               "step (v a random unit vector), against the distance T - t, from rnnkit's own backward (one forward "
               "and one backward per cell), over random inputs: vanilla tanh RNN with W_hh = sigma x a random "
               "orthogonal matrix (sigma = 0.9, 1.0, 1.1: vanishing, borderline, exploding) and the exploding "
               "one clipped at global norm 5, LSTM at initialisation with forget bias 0 and 1, GRU; with --from "
               "a trained char-LM on windows of its text. Draws a log-scale plot.")
    p.add_argument("--cells", type=cell_list, default=list(CELL_FAMILIES), metavar="LIST",
                   help=f"comma-separated among {','.join(CELL_FAMILIES)} (default: all)")
    p.add_argument("--steps", type=positive_int, default=100, help="sequence length T (default: %(default)s)")
    p.add_argument("--hidden", type=positive_int, default=128, help="hidden (and input) size (default: %(default)s)")
    p.add_argument("--samples", type=positive_int, default=8, help="random sequences averaged (default: %(default)s)")
    p.add_argument("--input-scale", type=positive_float, default=INPUT_SCALE,
                   help="standard deviation of the random inputs: small keeps tanh units linear, where the "
                        "singular values decide (default: %(default)s)")
    p.add_argument("--from", dest="model", metavar="DIR",
                   help="add the layers of the char-LM saved in DIR (default: none)")
    p.add_argument("--text", nargs="+", metavar="FILE",
                   help="with --from: the text its windows come from (default: train-charlm's default corpus)")
    p.add_argument("--seed", type=int, default=0, help="random inputs, weights and windows (default: %(default)s)")
    p.add_argument("--out", default="grad.png", metavar="PNG", help="the plot (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help='print {cell_name: {"distance": [...], "grad_norm": [...]}} instead of the table')
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)

    def body() -> int:
        from ..models import single_threaded_blas
        from .flow_plot import plot_flow
        from .gradient_flow import charlm_curves, standard_curves

        check_output_file(a.out, "--out")
        require_module("matplotlib", "gradient-flow's plot")
        model = text = None
        if a.model:  # a missing or bad model fails before the long computation
            from ..charlm.data import default_corpus, read_texts
            from ..charlm.model import CharLM

            model = CharLM.load(a.model)
            text = read_texts(a.text) if a.text else default_corpus()
        elif a.text:
            raise ValueError("--text is for --from DIR")
        with single_threaded_blas():
            curves = standard_curves(a.cells, a.steps, a.hidden, a.samples, a.input_scale, a.seed,
                                     progress=not a.no_progress)
            if model is not None:
                curves.update(charlm_curves(model, text, a.steps, a.samples, a.seed))
        title = (f"T = {a.steps}, H = {a.hidden}, mean over {a.samples} random sequences (inputs ~ N(0, "
                 f"{a.input_scale:g}\u00b2)); loss <v, h_T>, |v| = 1")
        plot_flow(curves, a.out, title)
        if a.json:
            print(json.dumps({name: c.to_json() for name, c in curves.items()}))
            return 0
        marks = sorted({d for d in (0, 1, 10, 25, 50, a.steps) if d <= a.steps})
        width = max(len(n) for n in curves)
        print(f"mean |dL/dh_t| at distance T - t ({title})")
        print(" " * width + "".join(f"{'d=' + str(d):>11}" for d in marks))
        for name, c in curves.items():
            print(name.ljust(width) + "".join(f"{c.grad_norm[d]:>11.3g}" for d in marks))
        print(f"plot: {a.out}")
        return 0

    return run(prog, body)
