"""The data options of the commands that train on a generated task or on a file of pairs
(``train-seq2seq``, ``train-classifier``): the sizes of a task's splits and its ``--data-seed``, and the
check that options of a task alone are not given with a file."""

from __future__ import annotations

import argparse
from typing import Any, Dict, FrozenSet, Mapping, Optional

from .cliutil import positive_int

__all__ = ["DATA_OPTIONS", "add_split_options", "split_sizes", "check_task_only"]

#: The options (by dest) of both commands that a resumed run compares as its data spec, not as settings.
DATA_OPTIONS: FrozenSet[str] = frozenset(
    {"task", "pairs", "tokens", "min_len", "max_len", "alphabet", "train_size", "val_size", "test_size", "data_seed"}
)


def add_split_options(group: Any, parser: argparse.ArgumentParser, defaults: Mapping[str, int]) -> None:
    """--train-size, --val-size and --test-size (``defaults``: the task's sizes by split) in ``group``,
    then --data-seed in ``parser``."""
    group.add_argument("--train-size", type=positive_int, help=f"training examples (default {defaults['train']})")
    group.add_argument("--val-size", type=positive_int, help=f"validation examples (default {defaults['val']})")
    group.add_argument("--test-size", type=positive_int, help=f"test examples (default {defaults['test']})")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the task's examples / the file's split")


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
