"""``rnnkit train-charlm``: train a character-level language model."""

from __future__ import annotations

from typing import List

from ..cliutil import add_schedule_options, add_training_options, given_settings, schedule_settings
from ..data_parallel import MPI_HELP, THREADS_HELP
from .cli import Parser, non_negative_int, positive_int, run

DEFAULT_MINUTES = 4.0


def main(argv: List[str], prog: str = "rnnkit train-charlm") -> int:
    """``rnnkit train-charlm``: train a character-level language model."""
    from ..rundir import flag
    from .train import RESUMABLE, TrainConfig

    d = TrainConfig()
    p = Parser(
        prog=prog,
        description="Train a character-level language model (char-rnn style). Without "
        "--text it trains on this Python's whole standard library source (its .py files but tests and "
        "data-like packages, about 9.7 MB on CPython 3.11) and validates on whole files held out from it: "
        "files drawn at random with a fixed seed until they hold --val-frac of the characters, the same "
        f"split on every run. Without --steps or --minutes it trains for {DEFAULT_MINUTES:g} minutes. DIR "
        "(--out) receives metrics.jsonl, checkpoint.npz (the latest), best.npz (the best validation score, "
        "which sample and eval-charlm load), curve.png and sample.txt; a DIR that holds a run needs "
        "--resume or --overwrite." + MPI_HELP,
    )
    p.add_argument(
        "--text",
        nargs="+",
        metavar="FILE",
        help="UTF-8 text file(s), concatenated (default: this Python's standard library source)",
    )
    from ..models import LAYER_CLASSES

    p.add_argument(
        "--cell",
        choices=list(LAYER_CLASSES),
        default=d.cell,
        help="rnn is the tanh RNN; mut1 and mut2 need --embed equal to --hidden",
    )
    p.add_argument("--layers", type=positive_int, default=d.layers)
    p.add_argument("--hidden", type=positive_int, default=d.hidden)
    p.add_argument("--embed", type=non_negative_int, default=d.embed, help="embedding width; 0 = one-hot input")
    p.add_argument("--seq-len", type=positive_int, default=d.seq_len, help="characters per chunk (BPTT length)")
    p.add_argument("--batch", type=positive_int, default=d.batch, help="parallel streams")
    add_schedule_options(p, d, DEFAULT_MINUTES)
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout between recurrent layers")
    p.add_argument(
        "--val-frac",
        type=float,
        default=d.val_frac,
        help=f"validation share: whole files of the default corpus, or the last part of --text (default: {d.val_frac})",
    )
    p.add_argument(
        "--val-sample",
        type=non_negative_int,
        default=d.val_sample,
        metavar="CHARS",
        help="characters of the fixed validation sample scored at each evaluation; the whole validation "
        "part is scored at the end and decides the best model; 0: the whole part every time",
    )
    p.add_argument("--eval-every", type=positive_int, default=d.eval_every)
    p.add_argument("--sample-every", type=non_negative_int, default=d.sample_every, help="0: only at the end")
    add_training_options(p, d, None, THREADS_HELP, "charlm", [flag(f) for f in RESUMABLE])
    a = p.parse_args(argv)
    given = given_settings(p, argv, TrainConfig)

    def body() -> int:
        from ..data_parallel import set_threads
        from .data import default_corpus, read_texts
        from .train import train

        set_threads(a.threads)
        settings = schedule_settings(a, d, DEFAULT_MINUTES)
        cfg = TrainConfig(
            cell=a.cell,
            layers=a.layers,
            hidden=a.hidden,
            embed=a.embed,
            seq_len=a.seq_len,
            batch=a.batch,
            dropout=a.dropout,
            val_frac=a.val_frac,
            val_sample=a.val_sample,
            eval_every=a.eval_every,
            sample_every=a.sample_every,
            seed=a.seed,
            **settings,
        )
        if a.text:
            text, val_text = read_texts(a.text), None
        else:
            text, val_text = default_corpus(a.val_frac)
        train(
            cfg,
            text,
            a.out,
            resume=a.resume,
            progress=not a.no_progress,
            overwrite=a.overwrite,
            given=given,
            val_text=val_text,
        )
        return 0

    return run(prog, body)
