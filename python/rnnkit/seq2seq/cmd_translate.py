"""``rnnkit translate DIR "input"``: print a trained sequence-to-sequence model's output for one input."""

from __future__ import annotations

import sys
from typing import List

from ..cliutil import (
    Parser,
    add_saved_run_arguments,
    check_output_file,
    deprecated_alias,
    positive_int,
    require_module,
    run,
)


def main(argv: List[str], prog: str = "rnnkit translate") -> int:
    """``rnnkit translate DIR "input" [--beam 5] [--alpha 0.6] [--attention-plot FILE.png]``."""
    p = Parser(
        prog=prog,
        description="Print the output of the model saved in DIR for INPUT (beam search; --beam 1 is greedy decoding).",
    )
    add_saved_run_arguments(p)
    p.add_argument("input", metavar="INPUT")
    p.add_argument("--beam", type=positive_int, default=5, help="beam size (default 5)")
    p.add_argument("--alpha", type=float, default=0.6, help="GNMT length normalisation exponent (0: none)")
    p.add_argument("--max-output", type=positive_int, help="decoding limit in tokens (default: the training run's)")
    deprecated_alias(p, "--max-len", "--max-output", positive_int)
    p.add_argument(
        "--n-best", type=positive_int, default=1, help="print this many hypotheses, best first, each with its score"
    )
    p.add_argument(
        "--attention-plot", metavar="FILE.png", help="draw the attention matrix of the best output (default: none)"
    )
    a = p.parse_args(argv)

    def body() -> int:
        import numpy as np

        from ..models import single_threaded_blas
        from .decode import beam_search, greedy
        from .model import Seq2Seq
        from .pairs import detokenize, tokenize
        from .vocab import EOS, SPECIALS

        if a.attention_plot:  # before the work, so a missing package or a bad path costs nothing
            check_output_file(a.attention_plot, "--attention-plot")
            require_module("matplotlib", "--attention-plot")
        model, meta = Seq2Seq.load(a.dir, latest=a.latest)
        kind = meta.get("tokens", "char")
        if a.attention_plot and model.attention == "none":
            raise ValueError("this model has no attention to plot (it was trained with --attention none)")
        if a.n_best > a.beam:
            raise ValueError(f"--n-best ({a.n_best}) cannot exceed --beam ({a.beam})")
        tokens = tokenize(a.input, kind)
        if not tokens:
            raise ValueError("the input is empty")
        src = np.append(model.src_vocab.encode(tokens), np.int32(EOS))[None, :]
        max_len = a.max_output or int(meta.get("max_len", 100))
        want = bool(a.attention_plot)
        with single_threaded_blas():
            state = model.start(src, np.array([src.shape[1]]))
            if a.beam == 1:
                hyps = greedy(model.decoder, state, max_len, a.alpha, want)
            else:
                hyps = beam_search(model.decoder, state, a.beam, max_len, a.alpha, a.n_best, want)[0]
        for h in hyps:
            text = detokenize(model.tgt_vocab.decode(h.tokens), kind)
            sys.stdout.write(f"{text}\n" if a.n_best == 1 else f"{h.score:.4f}\t{text}\n")
        if want:
            from .plot import plot_attention

            best = hyps[0]
            source = [t if t in model.src_vocab else SPECIALS[3] for t in tokens] + [SPECIALS[2]]
            output = model.tgt_vocab.decode(best.tokens) + ([SPECIALS[2]] if best.ended else [])
            assert best.attention is not None  # asked for (want)
            plot_attention(best.attention, source, output, a.attention_plot)
        return 0

    return run(prog, body)
