"""``rnnkit train-seq2seq``: train a sequence-to-sequence model on a built-in task or a pairs file."""

from __future__ import annotations

import argparse
from typing import List

from ..cliutil import (
    Parser,
    add_schedule_options,
    add_training_options,
    given_settings,
    positive_int,
    run,
    schedule_settings,
    train_with_options,
)
from ..data_parallel import MPI_HELP, THREADS_HELP
from ..task_data_options import (
    DATA_OPTIONS,
    add_source_options,
    add_split_options,
    add_val_sample_option,
    chosen_data,
)

DEFAULT_MINUTES = 5.0

#: The settings a built-in task may choose (`rnnkit.seq2seq.tasks.TASK_DEFAULTS`) when their flag is not given.
TASK_TUNED = (
    "cell",
    "layers",
    "hidden",
    "embed",
    "bidirectional",
    "attention",
    "attn_size",
    "dropout",
    "batch",
    "eval_every",
)


def _flag(name: str, value) -> str:
    if isinstance(value, bool):
        return f"--{'' if value else 'no-'}{name.replace('_', '-')}"
    return f"--{name.replace('_', '-')} {value}"


def task_settings(task, given: dict, defaults) -> tuple:
    """(settings, applied): each `TASK_TUNED` field from ``given`` (the command line; None = not given),
    else from the task's `TASK_DEFAULTS`, else from ``defaults`` (a TrainConfig); ``applied`` lists the
    task's defaults that were used, as flags."""
    from .tasks import TASK_DEFAULTS

    recipe = TASK_DEFAULTS.get(task, {}) if task else {}
    settings, applied = {}, []
    for name in TASK_TUNED:
        if given.get(name) is not None:
            settings[name] = given[name]
        elif name in recipe:
            settings[name] = recipe[name]
            applied.append(_flag(name, recipe[name]))
        else:
            settings[name] = getattr(defaults, name)
    return settings, applied


def main(argv: List[str], prog: str = "rnnkit train-seq2seq") -> int:
    """``rnnkit train-seq2seq (--task NAME | --pairs FILE) [options]``."""
    from ..models import LAYER_CLASSES
    from ..rundir import flag
    from .model import ATTENTIONS
    from .tasks import DEFAULT_SIZES, TASK_DEFAULTS, TASKS
    from .train import OPTION_NAMES, RESUMABLE, TrainConfig

    d = TrainConfig()
    p = Parser(
        prog=prog,
        description="Train an encoder-decoder model (optionally with attention) on a built-in "
        f"task ({', '.join(TASKS)}) or on a file of source<TAB>target lines. Without --steps or "
        f"--minutes it trains for {DEFAULT_MINUTES:g} minutes. DIR (--out) receives metrics.jsonl, "
        "checkpoint.npz (the latest), best.npz (the best validation exact match, which translate and "
        "eval-seq2seq load) and curve.png; a DIR that holds a run needs --resume or --overwrite. A built-in "
        "task brings its own model and training settings, used for the flags not given (printed at the "
        "start): "
        + "; ".join(f"{t}: " + " ".join(_flag(k, v) for k, v in r.items()) for t, r in TASK_DEFAULTS.items())
        + "."
        + MPI_HELP,
    )
    add_source_options(
        p,
        TASKS,
        "source<TAB>target per line (Tatoeba/Anki format); 5%% of the distinct sources are held out for "
        "validation and 5%% for test (no default: see --task)",
    )
    p.add_argument("--tokens", choices=["char", "word"], default="char", help="tokens of a --pairs file")
    t = p.add_argument_group("task options")
    t.add_argument("--digits", type=positive_int, help="addition: digits per number (default 3)")
    t.add_argument("--min-len", type=positive_int, help="reverse/sort: shortest string (default 20)")
    t.add_argument("--max-len", type=positive_int, help="reverse/sort: longest string (default 30)")
    t.add_argument(
        "--alphabet",
        metavar="CHARS",
        help="reverse/sort: the characters, with ranges as in a regular "
        "expression's class: a-f is abcdef, a-z0-9 letters and digits, a - first or last is itself "
        "(default a-z)",
    )
    add_split_options(t, p, DEFAULT_SIZES)
    m = p.add_argument_group("model (a --task's own settings, else the defaults shown)")
    m.add_argument(
        "--cell",
        choices=list(LAYER_CLASSES),
        help=f"rnn is the tanh RNN; mut1 and mut2 need --embed "
        f"equal to --hidden (and no --bidirectional with several --layers) (default: {d.cell})",
    )
    m.add_argument("--layers", type=positive_int, help=f"(default: {d.layers})")
    m.add_argument(
        "--hidden",
        type=positive_int,
        help=f"decoder units (a bidirectional encoder has half per direction) (default: {d.hidden})",
    )
    m.add_argument("--embed", type=positive_int, help=f"(default: {d.embed})")
    m.add_argument(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        help=f"bidirectional encoder (default: {d.bidirectional})",
    )
    m.add_argument("--attention", choices=ATTENTIONS, help=f"(default: {d.attention})")
    m.add_argument("--attn-size", type=positive_int, help="inner width of additive attention (default --hidden)")
    o = p.add_argument_group("training")
    o.add_argument(
        "--teacher-forcing",
        type=float,
        default=d.teacher_forcing,
        help="probability per batch of "
        f"feeding the gold previous tokens; otherwise the model's own greedy predictions "
        f"(default: {d.teacher_forcing})",
    )
    o.add_argument("--batch", type=positive_int, help=f"(default: {d.batch})")
    o.add_argument(
        "--dropout",
        type=float,
        help=f"dropout between stacked layers and on the output layer's input (default: {d.dropout})",
    )
    add_schedule_options(o, d, DEFAULT_MINUTES)
    o.add_argument("--eval-every", type=positive_int, help=f"(default: {d.eval_every})")
    add_val_sample_option(o, d.val_sample)
    o.add_argument(
        "--max-output",
        type=positive_int,
        help="decoding limit in tokens (default: twice the longest training target + 10)",
    )
    add_training_options(
        p,
        d,
        "initial weights, batch order, scheduled sampling",
        THREADS_HELP,
        "seq2seq",
        [flag(f, OPTION_NAMES) for f in RESUMABLE],
    )
    a = p.parse_args(argv)
    asked = given_settings(p, argv, TrainConfig, DATA_OPTIONS | {"digits"}, {"max_output": "max_len"})

    def body() -> int:
        from ..data_parallel import quiet_unless_main, set_threads
        from .data import pairs_spec, task_spec
        from .tasks import expand_alphabet
        from .train import train

        alphabet = None if a.alphabet is None else expand_alphabet(a.alphabet)
        task_opts = {"digits": a.digits, "min_len": a.min_len, "max_len": a.max_len, "alphabet": alphabet}
        data = chosen_data(a, task_opts, task_spec, lambda: pairs_spec(a.pairs, a.tokens, a.data_seed))
        set_threads(a.threads)
        given = {name: getattr(a, name) for name in TASK_TUNED}
        settings, applied = task_settings(None if a.resume else a.task, given, d)
        if applied:
            quiet_unless_main(print)(f"task {a.task}: using its defaults {' '.join(applied)} (a flag overrides each)")
        cfg = TrainConfig(
            data=data,
            teacher_forcing=a.teacher_forcing,
            max_len=a.max_output,
            seed=a.seed,
            val_sample=a.val_sample,
            **settings,
            **schedule_settings(a, d, DEFAULT_MINUTES),
        )
        return train_with_options(train, cfg, a, asked, data)

    return run(prog, body)
