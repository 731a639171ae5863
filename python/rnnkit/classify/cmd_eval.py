"""``rnnkit eval-classifier DIR``: accuracy, macro-F1 and the confusion matrix of a trained classifier on
its test split or a file."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

from ..cliutil import Parser, add_saved_run_arguments, check_output_file, positive_int, require_module, run


def format_report(result: Dict[str, Any]) -> str:
    """The human-readable report: accuracy, macro-F1, the confusion matrix and per-class scores."""
    names = result["labels"]
    unit = "tokens" if "sequences" in result else "examples"
    lines = [
        f"accuracy: {result['accuracy']:.4f}",
        f"macro_f1: {result['macro_f1']:.4f}",
        f"{unit}: {result['examples']}",
        "",
        "confusion matrix (rows: true, columns: predicted):",
    ]
    width = max(max(len(n) for n in names), max(len(str(v)) for row in result["confusion"] for v in row), 4)
    lines.append(" " * (width + 2) + " ".join(n.rjust(width) for n in names))
    for n, row in zip(names, result["confusion"]):
        lines.append(n.rjust(width) + "  " + " ".join(str(v).rjust(width) for v in row))
    lines += ["", f"{'label'.rjust(width)}  precision  recall      f1  support"]
    for n in names:
        s = result["per_class"][n]
        lines.append(f"{n.rjust(width)}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['f1']:6.4f}  {s['support']:7d}")
    return "\n".join(lines)


def main(argv: List[str], prog: str = "rnnkit eval-classifier") -> int:
    """``rnnkit eval-classifier DIR [--pairs FILE] [--split test|val] [--json] [--plot FILE.png]``."""
    p = Parser(
        prog=prog,
        description="Classify the test split of the data the model in DIR was trained on (or "
        "every line of --pairs FILE) and print accuracy, macro-F1, the confusion matrix and per-class "
        "precision, recall and F1 (per token for a --per-step tagger); the matrix is also drawn to a PNG.",
    )
    add_saved_run_arguments(p, "use the run's latest checkpoint (default: its best, best.npz)")
    p.add_argument(
        "--pairs",
        metavar="FILE",
        help="score every line of this file (text<TAB>label, or tokens<TAB>tags "
        "for a tagger) instead (default: the --split of the data the model was trained on)",
    )
    p.add_argument("--split", choices=["test", "val"], default="test", help="which held-out split")
    p.add_argument("--batch", type=positive_int, default=256, help="sequences classified together")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="where to draw the confusion matrix (default: "
        "DIR/confusion-SPLIT.png, or DIR/confusion-FILE.png for --pairs, when matplotlib is installed)",
    )
    p.add_argument("--no-plot", action="store_true", help="draw nothing")
    a = p.parse_args(argv)

    def body() -> int:
        from ..models import single_threaded_blas
        from .data import Encoded, load_splits, read_examples
        from .model import Classifier
        from .train import evaluate

        if a.plot and not a.no_plot:  # checked before the work, so nothing is lost at the end
            check_output_file(a.plot, "--plot")
            require_module("matplotlib", "--plot")
        model, meta = Classifier.load(a.dir, latest=a.latest)
        tokens = model.config["tokens"]
        if a.pairs:
            pairs = read_examples(a.pairs, tokens, model.per_step)
            where, tag = a.pairs, os.path.splitext(os.path.basename(a.pairs))[0]
        else:
            if "data" not in meta:
                raise ValueError(f"{a.dir} does not say what it was trained on: give --pairs FILE")
            splits = load_splits(meta["data"])
            pairs, where, tag = (splits.test if a.split == "test" else splits.val), f"the {a.split} split", a.split
        enc = Encoded(pairs, tokens, model.per_step, model.vocab, model.labels, where)
        with single_threaded_blas():
            result = evaluate(model, enc, a.batch)
        del result["loss"]  # unweighted and per model: the accuracy figures are what this command reports
        plot = None if a.no_plot else a.plot or os.path.join(a.dir, f"confusion-{tag}.png")
        if plot:
            import numpy as np

            from .plot import plot_confusion

            try:
                plot_confusion(
                    np.array(result["confusion"]),
                    result["labels"],
                    plot,
                    f"accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}",
                )
                result["plot"] = plot
            except ImportError:  # only the default picture gets here (--plot checked matplotlib first)
                plot = None
        if a.json:
            print(json.dumps(result))
        else:
            print(format_report(result))
            if plot:
                print(f"\nconfusion matrix drawn to {plot}")
        return 0

    return run(prog, body)
