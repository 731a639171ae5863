"""``rnnkit train-seq2seq``: train a sequence-to-sequence model on a built-in task or a pairs file."""

from __future__ import annotations

import argparse
from typing import List

from ..cliutil import (
    Parser,
    add_run_dir_options,
    add_schedule_options,
    explicit_options,
    positive_int,
    run,
    schedule_settings,
)
from ..data_parallel import MPI_HELP, THREADS_HELP

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
    from .tasks import TASK_DEFAULTS, TASKS
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
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--task",
        metavar="NAME",
        help=f"built-in task: {', '.join(TASKS)} (no default: --task or --pairs is needed, except on --resume)",
    )
    src.add_argument(
        "--pairs",
        metavar="FILE",
        help="source<TAB>target per line (Tatoeba/Anki format); 5%% of "
        "the distinct sources are held out for validation and 5%% for test (no default: see --task)",
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
    t.add_argument("--train-size", type=positive_int, help="training examples (default 100000)")
    t.add_argument("--val-size", type=positive_int, help="validation examples (default 1000)")
    t.add_argument("--test-size", type=positive_int, help="test examples (default 2000)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the task's examples / the file's split")
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
    o.add_argument(
        "--val-sample",
        type=positive_int,
        default=d.val_sample,
        metavar="N",
        help="validation examples scored at each evaluation (a fixed sample); a larger validation split "
        "is scored whole at the end, which decides the best model",
    )
    o.add_argument(
        "--max-output",
        type=positive_int,
        help="decoding limit in tokens (default: twice the longest training target + 10)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="initial weights, batch order, scheduled sampling")
    p.add_argument("--threads", type=positive_int, help=THREADS_HELP)
    add_run_dir_options(p, "seq2seq", [flag(f, OPTION_NAMES) for f in RESUMABLE])
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    data_options = {
        "task",
        "pairs",
        "tokens",
        "digits",
        "min_len",
        "max_len",
        "alphabet",
        "train_size",
        "val_size",
        "test_size",
        "data_seed",
    }  # compared as the data spec, not as settings
    fields = {"max_output": "max_len"}
    asked = {
        fields.get(k, k): v
        for k, v in explicit_options(p, argv).items()
        if k not in data_options and fields.get(k, k) in TrainConfig.__dataclass_fields__
    }

    def body() -> int:
        from ..data_parallel import quiet_unless_main, set_threads
        from .data import pairs_spec, task_spec
        from .tasks import expand_alphabet
        from .train import train

        alphabet = None if a.alphabet is None else expand_alphabet(a.alphabet)
        task_opts = {"digits": a.digits, "min_len": a.min_len, "max_len": a.max_len, "alphabet": alphabet}
        sizes = {k: v for k, v in (("train", a.train_size), ("val", a.val_size), ("test", a.test_size)) if v}
        if a.task is not None:
            data = task_spec(a.task, a.data_seed, sizes, **task_opts)
        elif a.pairs is not None:
            given = [f"--{k.replace('_', '-')}" for k, v in task_opts.items() if v is not None]
            given += [f"--{k}-size" for k in sizes]
            if given:
                raise ValueError(f"{', '.join(given)} only apply to --task")
            data = pairs_spec(a.pairs, a.tokens, a.data_seed)
        elif a.resume:
            data = {}
        else:
            raise ValueError("give --task NAME or --pairs FILE")
        set_threads(a.threads)
        given = {name: getattr(a, name) for name in TASK_TUNED}
        settings, applied = task_settings(None if a.resume else a.task, given, d)
        if applied:
            quiet_unless_main(print)(f"task {a.task}: using its defaults {' '.join(applied)} (a flag overrides each)")
        sched = schedule_settings(a, d)
        if not (a.steps or a.minutes):
            sched["minutes"] = DEFAULT_MINUTES
        cfg = TrainConfig(
            data=data,
            teacher_forcing=a.teacher_forcing,
            max_len=a.max_output,
            seed=a.seed,
            val_sample=a.val_sample,
            **settings,
            **sched,
        )
        if data:
            asked["data"] = data
        train(cfg, a.out, resume=a.resume, progress=not a.no_progress, overwrite=a.overwrite, given=asked)
        return 0

    return run(prog, body)
