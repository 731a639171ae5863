"""Built-in sequence-to-sequence tasks, generated offline and deterministically from a seed.

Every task is a function ``rng -> (source, target)`` drawing one random example (strings, read one
character per token). `make_task` draws examples until it has ``test + val + train`` distinct sources,
then cuts them in that order into the test, validation and training splits: no source (so no example)
is in two splits, and the same name, options and seed always give the same splits.

Tasks:

* ``addition``: "123+45" -> "168"; both numbers uniform in [0, 10**digits).
* ``dates``: a date between 1950-01-01 and 2049-12-31 written in one of `DATE_FORMATS` (e.g.
  "tuesday 3 march 1998", "3/3/98", "March 3rd, 1998") -> "1998-03-03". Numeric formats put the day
  first (3/4/98 is the 3rd of April); two-digit years are 1950-2049 (50-99 -> 19xx, 00-49 -> 20xx).
* ``reverse``: a random string of ``min_len``..``max_len`` characters from ``alphabet`` -> the string
  reversed.
* ``sort``: the same strings -> their characters in sorted order.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, List, NamedTuple, Tuple

import numpy as np

__all__ = [
    "TASKS",
    "TASK_OPTIONS",
    "TASK_DEFAULTS",
    "DATE_FORMATS",
    "Splits",
    "make_task",
    "format_date",
    "DEFAULT_SIZES",
]

Pair = Tuple[str, str]


class Splits(NamedTuple):
    """Lists of (source, target) pairs; for tasks and `--pairs` files alike (tokens not yet split)."""

    train: List[Pair]
    val: List[Pair]
    test: List[Pair]


#: Default number of examples per split for the built-in tasks.
DEFAULT_SIZES = {"train": 100_000, "val": 1000, "test": 2000}

#: Options of each task with their defaults (the CLI exposes them as --digits, --min-len, ...).
TASK_OPTIONS: Dict[str, Dict[str, Any]] = {
    "addition": {"digits": 3},
    "dates": {},
    "reverse": {"min_len": 20, "max_len": 30, "alphabet": "abcdefghijklmnopqrstuvwxyz"},
    "sort": {"min_len": 20, "max_len": 30, "alphabet": "abcdefghijklmnopqrstuvwxyz"},
}


#: The model and training settings each task trains with when the command line does not set them
#: (`rnnkit train-seq2seq` applies them and prints them; an explicit flag wins): the recipes of
#: bench/hosts/amd-epyc/SEQ2SEQ.md and bench/hosts/amd-epyc/DEFAULTS.md, which reach >= 99% test exact match on addition and dates and
#: >= 95% on reverse in 10 minutes on 2 cores. Keys are `rnnkit.seq2seq.train.TrainConfig` fields.
#: ``sort`` takes reverse's recipe (a task of the same shape; no target of its own is measured).
TASK_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "addition": {
        "cell": "gru",
        "hidden": 128,
        "bidirectional": True,
        "attention": "additive",
        "dropout": 0.1,
        "eval_every": 500,
    },
    "dates": {"cell": "gru", "hidden": 128, "bidirectional": True, "attention": "general", "eval_every": 500},
    "reverse": {"cell": "gru", "hidden": 128, "bidirectional": True, "attention": "general", "eval_every": 500},
    "sort": {"cell": "gru", "hidden": 128, "bidirectional": True, "attention": "general", "eval_every": 500},
}


def _addition(rng: np.random.Generator, digits: int) -> Pair:
    a, b = (int(v) for v in rng.integers(0, 10**digits, 2))
    return f"{a}+{b}", str(a + b)


def _random_string(rng: np.random.Generator, min_len: int, max_len: int, alphabet: str) -> str:
    n = int(rng.integers(min_len, max_len + 1))
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), n))


def _reverse(rng, min_len, max_len, alphabet) -> Pair:
    s = _random_string(rng, min_len, max_len, alphabet)
    return s, s[::-1]


def _sort(rng, min_len, max_len, alphabet) -> Pair:
    s = _random_string(rng, min_len, max_len, alphabet)
    return s, "".join(sorted(s))


_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _fields(d: datetime.date) -> Dict[str, Any]:
    month, day = _MONTHS[d.month - 1], _DAYS[d.weekday()]
    return {
        "d": d.day,
        "dd": f"{d.day:02d}",
        "m": d.month,
        "mm": f"{d.month:02d}",
        "yyyy": d.year,
        "yy": f"{d.year % 100:02d}",
        "month": month,
        "Month": month.capitalize(),
        "mon": month[:3],
        "Mon": month[:3].capitalize(),
        "MON": month[:3].upper(),
        "day": day,
        "Day": day.capitalize(),
        "dy": day[:3],
        "Dy": day[:3].capitalize(),
        "th": _ordinal(d.day),
    }


#: The ways a date is written in the ``dates`` task (str.format fields of `_fields`).
DATE_FORMATS: Tuple[str, ...] = (
    "{day} {d} {month} {yyyy}",  # tuesday 3 march 1998
    "{d}/{m}/{yy}",  # 3/3/98
    "{Month} {th}, {yyyy}",  # March 3rd, 1998
    "{dd}.{mm}.{yyyy}",  # 03.03.1998
    "{dd}/{mm}/{yyyy}",  # 03/03/1998
    "{d} {Mon} {yyyy}",  # 3 Mar 1998
    "{Day}, {Month} {d}, {yyyy}",  # Tuesday, March 3, 1998
    "{Dy} {d} {Mon} {yy}",  # Tue 3 Mar 98
    "the {th} of {month} {yyyy}",  # the 3rd of march 1998
    "{d}-{MON}-{yyyy}",  # 3-MAR-1998
    "{mon} {d} {yyyy}",  # mar 3 1998
    "{yyyy}/{m}/{d}",  # 1998/3/3
    "{dy}, {th} {month} {yy}",  # tue, 3rd march 98
    "{d}.{m}.{yy}",  # 3.3.98
)

_FIRST_DAY = datetime.date(1950, 1, 1).toordinal()
_LAST_DAY = datetime.date(2049, 12, 31).toordinal()


def format_date(d: datetime.date, fmt: str) -> str:
    """``d`` written in ``fmt``, one of `DATE_FORMATS`."""
    return fmt.format(**_fields(d))


def _dates(rng: np.random.Generator) -> Pair:
    d = datetime.date.fromordinal(int(rng.integers(_FIRST_DAY, _LAST_DAY + 1)))
    fmt = DATE_FORMATS[int(rng.integers(len(DATE_FORMATS)))]
    return format_date(d, fmt), d.isoformat()


TASKS: Dict[str, Callable[..., Pair]] = {"addition": _addition, "dates": _dates, "reverse": _reverse, "sort": _sort}


def expand_alphabet(spec: str) -> str:
    """The characters of an ``--alphabet`` spec: literal characters and ranges ``x-y`` (both ends included,
    in code-point order), as in a regular expression's character class: ``a-f`` is ``abcdef``,
    ``a-z0-9`` the 36 letters and digits, and a ``-`` first or last stands for itself (``ab-``).
    ValueError for a backward range such as ``z-a``."""
    out: List[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            lo, hi = spec[i], spec[i + 2]
            if ord(lo) > ord(hi):
                raise ValueError(f"--alphabet: the range {lo}-{hi} runs backwards (write {hi}-{lo})")
            out.extend(chr(c) for c in range(ord(lo), ord(hi) + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def task_options(name: str, **options: Any) -> Dict[str, Any]:
    """The full, checked options of task ``name``: its defaults updated by ``options`` (None = default);
    ValueError for an unknown task or option or a bad value."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    opts = dict(TASK_OPTIONS[name])
    for key, value in options.items():
        if value is None:
            continue
        if key not in opts:
            raise ValueError(f"task {name} has no option {key!r} (its options: {', '.join(opts) or 'none'})")
        opts[key] = value
    if "digits" in opts and not (isinstance(opts["digits"], int) and 1 <= opts["digits"] <= 18):
        raise ValueError(f"--digits must be an integer in 1..18, got {opts['digits']!r}")
    if "min_len" in opts:
        if not (isinstance(opts["min_len"], int) and 1 <= opts["min_len"] <= opts["max_len"]):
            raise ValueError(
                f"lengths must satisfy 1 <= --min-len <= --max-len, got {opts['min_len']} and {opts['max_len']}"
            )
        if (
            len(set(opts["alphabet"])) != len(opts["alphabet"])
            or len(opts["alphabet"]) < 2
            or any(c.isspace() for c in opts["alphabet"])
        ):
            raise ValueError(
                f"--alphabet must hold at least two distinct non-space characters, got {opts['alphabet']!r}"
            )
    return opts


def make_task(
    name: str,
    seed: int = 0,
    train: int = DEFAULT_SIZES["train"],
    val: int = DEFAULT_SIZES["val"],
    test: int = DEFAULT_SIZES["test"],
    **options: Any,
) -> Splits:
    """The splits of task ``name`` (see the module docstring), deterministic in (name, options, seed).

    Raises ValueError for an unknown task, a bad option, or a task too small to give that many
    distinct examples (e.g. addition with one digit has only 100).
    """
    opts = task_options(name, **options)
    draw = TASKS[name]
    return draw_splits(name, seed, train, val, test, lambda rng: draw(rng, **opts), "examples")


def draw_splits(
    name: str, seed: int, train: int, val: int, test: int, draw: Callable[[np.random.Generator], Pair], noun: str
) -> Splits:
    """Splits of ``train``, ``val`` and ``test`` distinct pairs (distinct by their first item) of task
    ``name``, drawn by ``draw`` from a generator seeded by (seed, name): test first, then validation,
    the rest for training. ValueError for a split size below 1, or when the task gives too few distinct
    pairs (``noun``: what the message calls them)."""
    for split_name, n in (("train", train), ("val", val), ("test", test)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"the {split_name} split needs at least one example, got {n!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, sum(map(ord, name))]))
    total = train + val + test
    seen: Dict[str, str] = {}
    attempts = 0
    while len(seen) < total:
        if attempts > 20 * total + 1000:
            raise ValueError(
                f"task {name} with these options has too few distinct {noun} for "
                f"{total} ({len(seen)} found): ask for fewer with --train-size"
            )
        first, second = draw(rng)
        seen.setdefault(first, second)
        attempts += 1
    pairs = list(seen.items())  # insertion order: deterministic
    return Splits(train=pairs[test + val :], val=pairs[test : test + val], test=pairs[:test])
