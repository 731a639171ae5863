"""``rnnkit train-classifier``: train a sequence classifier (or a per-step tagger) on a built-in task or a
file of labelled texts."""

from __future__ import annotations

from typing import List

from ..cliutil import (
    Parser,
    add_schedule_options,
    add_training_options,
    given_settings,
    positive_float,
    positive_int,
    run,
    schedule_settings,
    train_with_options,
)
from ..task_data_options import (
    DATA_OPTIONS,
    add_source_options,
    add_split_options,
    add_val_sample_option,
    chosen_data,
)

DEFAULT_MINUTES = 5.0


def main(argv: List[str], prog: str = "rnnkit train-classifier") -> int:
    """``rnnkit train-classifier (--task NAME | --pairs FILE) [options]``."""
    from ..models import LAYER_CLASSES
    from ..pooling import POOLS
    from ..rundir import flag
    from .data import DEFAULT_TEST_FRAC, DEFAULT_VAL_FRAC
    from .tasks import DEFAULT_SIZES, TASKS
    from .train import RESUMABLE, TrainConfig

    d = TrainConfig()
    p = Parser(
        prog=prog,
        description="Train a many-to-one classifier: embedding -> RNN/LSTM/GRU -> pooling over "
        f"the valid steps -> linear -> softmax, on a built-in task ({', '.join(TASKS)}) or a file of "
        "text<TAB>label lines; with --per-step a tagger (a label per token) on a file of tokens<TAB>tags "
        f"lines. Without --steps or --minutes it trains for {DEFAULT_MINUTES:g} minutes. DIR (--out) receives "
        "metrics.jsonl, checkpoint.npz (the latest), best.npz (the best by validation macro-F1) and curve.png; a "
        "DIR that holds a run needs --resume or --overwrite.",
    )
    add_source_options(
        p,
        TASKS,
        "text<TAB>label per line (any labels, kept as given); with --per-step tokens<TAB>tags, the tags "
        "space-separated, one per token (default: --task)",
    )
    p.add_argument(
        "--tokens",
        choices=["char", "word"],
        help="tokens of a --pairs file (default char; word with --per-step: the space-separated words)",
    )
    p.add_argument(
        "--per-step",
        action="store_true",
        help="tag every token (many-to-many) instead of classifying the whole sequence",
    )
    p.add_argument(
        "--val-frac",
        type=positive_float,
        default=DEFAULT_VAL_FRAC,
        help="--pairs: fraction of the distinct texts held out for validation (stratified by label)",
    )
    p.add_argument(
        "--test-frac", type=positive_float, default=DEFAULT_TEST_FRAC, help="--pairs: fraction held out for test"
    )
    t = p.add_argument_group("task options")
    t.add_argument(
        "--min-len", type=positive_int, help="shortest string (default: brackets 2, languages 3, majority 5)"
    )
    t.add_argument(
        "--max-len", type=positive_int, help="longest string (default: brackets 20, languages 10, majority 25)"
    )
    t.add_argument("--classes", type=positive_int, help="languages: how many (default 4)")
    t.add_argument(
        "--alphabet",
        metavar="CHARS",
        help="majority: the symbols, with ranges as in a regular expression's class (a-e is abcde) (default abc)",
    )
    add_split_options(t, p, DEFAULT_SIZES)
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=list(LAYER_CLASSES), default=d.cell)
    m.add_argument("--layers", type=positive_int, default=d.layers)
    m.add_argument("--hidden", type=positive_int, default=d.hidden, help="units per direction")
    m.add_argument("--embed", type=positive_int, default=d.embed)
    m.add_argument("--bidirectional", action="store_true", help="two directions")
    m.add_argument(
        "--pool",
        choices=POOLS,
        default=d.pool,
        help="how the steps become one vector: last state (each direction's), mean, max, or attention",
    )
    m.add_argument("--attn-size", type=positive_int, help="width of attention pooling (default: its input width)")
    m.add_argument(
        "--dropout", type=float, default=d.dropout, help="between stacked recurrent layers (with --layers 2 or more)"
    )
    o = p.add_argument_group("training")
    o.add_argument(
        "--class-weights",
        default=d.class_weights,
        metavar="none|balanced|LABEL=W,...",
        help="loss weight of each class: balanced weighs each class n/(K*n_k)",
    )
    o.add_argument("--batch", type=positive_int, default=d.batch)
    o.add_argument(
        "--bucket",
        type=positive_int,
        default=d.bucket,
        help="sort examples by length within windows of this many batches, so a batch pads little (1: plain shuffle)",
    )
    add_schedule_options(o, d, DEFAULT_MINUTES)
    o.add_argument("--eval-every", type=positive_int, default=d.eval_every)
    add_val_sample_option(o, d.val_sample)
    add_training_options(
        p,
        d,
        "initial weights, batch order, dropout",
        "kernel threads (default: OMP_NUM_THREADS or all cores)",
        "classifier",
        [flag(f) for f in RESUMABLE],
    )
    a = p.parse_args(argv)
    asked = given_settings(p, argv, TrainConfig, DATA_OPTIONS | {"per_step", "val_frac", "test_frac", "classes"})

    def body() -> int:
        import rnnkit

        from ..seq2seq.tasks import expand_alphabet
        from .data import pairs_spec, task_spec
        from .train import train

        alphabet = None if a.alphabet is None else expand_alphabet(a.alphabet)
        task_opts = {"min_len": a.min_len, "max_len": a.max_len, "classes": a.classes, "alphabet": alphabet}
        if a.task is not None and (a.per_step or a.tokens):
            raise ValueError("--per-step and --tokens apply to --pairs files (the tasks classify characters)")
        tokens = a.tokens or ("word" if a.per_step else "char")
        data = chosen_data(
            a,
            task_opts,
            task_spec,
            lambda: pairs_spec(a.pairs, tokens, a.data_seed, a.per_step, a.val_frac, a.test_frac),
        )
        if a.threads:
            rnnkit.set_num_threads(a.threads)
        cfg = TrainConfig(
            data=data,
            cell=a.cell,
            layers=a.layers,
            hidden=a.hidden,
            embed=a.embed,
            bidirectional=a.bidirectional,
            pool=a.pool,
            attn_size=a.attn_size,
            dropout=a.dropout,
            class_weights=a.class_weights,
            batch=a.batch,
            bucket=a.bucket,
            eval_every=a.eval_every,
            val_sample=a.val_sample,
            seed=a.seed,
            **schedule_settings(a, d, DEFAULT_MINUTES),
        )
        return train_with_options(train, cfg, a, asked, data)

    return run(prog, body)
