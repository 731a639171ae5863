"""The data options of the commands that train on a generated task or on a file of pairs
(``train-seq2seq``, ``train-classifier``): the sizes of a task's splits and its ``--data-seed``, and the
check that options of a task alone are not given with a file."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Sequence

from .cliutil import positive_int

__all__ = [
    "DATA_OPTIONS",
    "add_source_options",
    "add_split_options",
    "add_val_sample_option",
    "split_sizes",
    "check_task_only",
    "chosen_data",
]

#: The options (by dest) of both commands that a resumed run compares as its data spec, not as settings.
DATA_OPTIONS: FrozenSet[str] = frozenset(
    {"task", "pairs", "tokens", "min_len", "max_len", "alphabet", "train_size", "val_size", "test_size", "data_seed"}
)


def add_source_options(parser: argparse.ArgumentParser, tasks: Sequence[str], pairs_help: str) -> None:
    """--task NAME (one of ``tasks``) or --pairs FILE (``pairs_help``: what the file holds)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--task",
        metavar="NAME",
        help=f"built-in task: {', '.join(tasks)} (no default: --task or --pairs is needed, except on --resume)",
    )
    source.add_argument("--pairs", metavar="FILE", help=pairs_help)


def add_split_options(group: Any, parser: argparse.ArgumentParser, defaults: Mapping[str, int]) -> None:
    """--train-size, --val-size and --test-size (``defaults``: the task's sizes by split) in ``group``,
    then --data-seed in ``parser``."""
    group.add_argument("--train-size", type=positive_int, help=f"training examples (default {defaults['train']})")
    group.add_argument("--val-size", type=positive_int, help=f"validation examples (default {defaults['val']})")
    group.add_argument("--test-size", type=positive_int, help=f"test examples (default {defaults['test']})")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the task's examples / the file's split")


def add_val_sample_option(group: Any, default: int) -> None:
    """--val-sample N: the validation examples scored at each evaluation."""
    group.add_argument(
        "--val-sample",
        type=positive_int,
        default=default,
        metavar="N",
        help="validation examples scored at each evaluation (a fixed sample); a larger validation split "
        "is scored whole at the end, which decides the best model",
    )


def split_sizes(a: argparse.Namespace) -> Dict[str, int]:
    """The split sizes given by `add_split_options`' options, by split ("train", "val", "test")."""
    return {k: v for k, v in (("train", a.train_size), ("val", a.val_size), ("test", a.test_size)) if v}


def check_task_only(task_options: Mapping[str, Optional[Any]], sizes: Mapping[str, int]) -> None:
    """ValueError naming the task options (by field: None when not given) and split sizes given without
    --task."""
    given = [f"--{k.replace('_', '-')}" for k, v in task_options.items() if v is not None]
    given += [f"--{k}-size" for k in sizes]
    if given:
        raise ValueError(f"{', '.join(given)} only apply to --task")


def chosen_data(
    a: argparse.Namespace,
    task_options: Mapping[str, Optional[Any]],
    task_spec: Callable[..., Dict[str, Any]],
    pairs_spec: Callable[[], Dict[str, Any]],
) -> Dict[str, Any]:
    """The data spec the options ask for: ``task_spec(task, data_seed, sizes, **task_options)`` with
    --task, ``pairs_spec()`` with --pairs (ValueError if task options are given too), {} on --resume
    (the run's own data); else ValueError."""
    sizes = split_sizes(a)
    if a.task is not None:
        return task_spec(a.task, a.data_seed, sizes, **task_options)
    if a.pairs is not None:
        check_task_only(task_options, sizes)
        return pairs_spec()
    if a.resume:
        return {}
    raise ValueError("give --task NAME or --pairs FILE")
