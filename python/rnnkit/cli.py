"""The ``rnnkit`` command: ``rnnkit <command> [options]``.

Each command is a module with ``main(argv, prog) -> int``, imported only when it runs (so ``rnnkit
--help`` stays fast and one command's imports never slow another). Adding a command is one line in
`COMMANDS`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Dict, List, NamedTuple, Optional


class Command(NamedTuple):
    module: str  # has main(argv: list[str], prog: str) -> int
    help: str


COMMANDS: Dict[str, Command] = {
    "bench": Command("rnnkit.bench.cli", "time rnnkit's kernels against the NumPy reference and torch.nn"),
    "train-charlm": Command("rnnkit.charlm.cmd_train", "train a character-level language model"),
    "sample": Command("rnnkit.charlm.cmd_sample", "print text sampled from a trained character model"),
    "eval-charlm": Command("rnnkit.charlm.cmd_eval", "bits per character of a text under a trained model"),
    "cells": Command("rnnkit.insight.cmd_cells", "which units of a char model track strings, comments, indentation"),
    "gradient-flow": Command("rnnkit.insight.cmd_gradient_flow", "gradients flowing back in time: RNN, LSTM, GRU"),
    "train-seq2seq": Command("rnnkit.seq2seq.cmd_train", "train a sequence-to-sequence model (task or pairs file)"),
    "translate": Command("rnnkit.seq2seq.cmd_translate", "print a trained sequence-to-sequence model's output"),
    "eval-seq2seq": Command("rnnkit.seq2seq.cmd_eval", "exact match, token accuracy, BLEU of a seq2seq model"),
    "train-classifier": Command("rnnkit.classify.cmd_train", "train a sequence classifier or tagger (task or file)"),
    "eval-classifier": Command("rnnkit.classify.cmd_eval", "accuracy, macro-F1, confusion matrix of a classifier"),
    "classify": Command("rnnkit.classify.cmd_classify", "print a trained classifier's label and class probabilities"),
    "train-captions": Command("rnnkit.captions.cmd_train", "train an image captioning model (shapes task or features)"),
    "eval-captions": Command("rnnkit.captions.cmd_eval", "exact match, token accuracy, BLEU-4 of a captioning model"),
    "caption": Command("rnnkit.captions.cmd_caption", "print a captioning model's caption of a test image"),
    "export-onnx": Command("rnnkit.cmd_export_onnx", "write a trained char-LM or seq2seq model as ONNX graphs"),
    "info": Command("rnnkit.info", "version, build flags, kernels chosen on this CPU, BLAS and threads"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: rnnkit <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {cmd.help}" for name, cmd in COMMANDS.items()]
    lines += ["", "Run 'rnnkit <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Dispatch to a command; returns the exit code (the console script exits with it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        from . import __version__

        print(f"rnnkit {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"rnnkit: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name].module)
    try:
        return module.main(argv[1:], prog=f"rnnkit {name}")
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of the command
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141


if __name__ == "__main__":
    sys.exit(main())
