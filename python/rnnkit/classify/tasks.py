"""Built-in classification tasks, generated at run time and deterministically from a seed (no download).

Every task draws labelled strings (read one character per token) whose label is a function of the
string, so a perfect classifier exists (the tasks are well posed) and test accuracy near 1 is reachable:

* ``brackets``: is a string of ``()[]`` balanced (every bracket closed by its partner, properly nested)?
  Positives are random balanced strings of ``min_len``..``max_len`` characters (even lengths); each
  negative is a balanced string with one corruption (two different characters swapped, or one character
  replaced), kept only if the result is unbalanced: near misses of the same lengths and character
  counts, so counting alone does not separate the classes. Labels ``balanced`` / ``unbalanced``.
* ``languages``: which of ``classes`` synthetic languages a word comes from. Each language is a
  character bigram Markov chain over a-z drawn from the seed (6 possible first letters, 4 possible
  successors per letter, random probabilities); a word of ``min_len``..``max_len`` letters is drawn from
  a uniformly chosen language and kept only if that language is at least 100 times likelier to have
  produced it than any other (so the Bayes error is under 1% and the label is recoverable from the word).
  Labels ``lang1`` .. ``langK``.
* ``majority``: the most frequent symbol of a string of ``min_len``..``max_len`` symbols from
  ``alphabet`` (strings with a tie are not drawn). Labels are the symbols.

`make_task` draws distinct strings until it has ``test + val + train`` of them and cuts them in that
order into the test, validation and training splits, so no string is in two splits.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from ..seq2seq.tasks import Splits, draw_splits

__all__ = ["TASKS", "TASK_OPTIONS", "DEFAULT_SIZES", "task_options", "make_task", "is_balanced", "Splits"]

Example = Tuple[str, str]  # (text, label)

#: Default number of examples per split.
DEFAULT_SIZES = {"train": 20_000, "val": 1000, "test": 2000}

#: Options of each task and their defaults (the CLI's --min-len, --max-len, --classes, --alphabet).
TASK_OPTIONS: Dict[str, Dict[str, Any]] = {
    "brackets": {"min_len": 2, "max_len": 20},
    "languages": {"classes": 4, "min_len": 3, "max_len": 10},
    "majority": {"min_len": 5, "max_len": 25, "alphabet": "abc"},
}

_PAIRS = {"(": ")", "[": "]"}
_BRACKETS = "()[]"


def is_balanced(s: str) -> bool:
    """Whether ``s`` (characters of ``()[]``) is a balanced bracket string."""
    stack: List[str] = []
    for ch in s:
        if ch in _PAIRS:
            stack.append(_PAIRS[ch])
        elif not stack or stack.pop() != ch:
            return False
    return not stack


def _balanced(rng: np.random.Generator, n: int) -> str:
    """A random balanced string of n (even) characters: open while there is room, else close."""
    out, stack = [], []
    coins = rng.random(n)
    kinds = rng.integers(0, 2, n)
    for i in range(n):
        if stack and (len(stack) == n - i or coins[i] < 0.5):
            out.append(stack.pop())
        else:
            opener = "(["[kinds[i]]
            out.append(opener)
            stack.append(_PAIRS[opener])
    return "".join(out)


def _brackets(rng: np.random.Generator, min_len: int, max_len: int) -> Example:
    lo, hi = (min_len + 1) // 2, max_len // 2
    s = _balanced(rng, 2 * int(rng.integers(lo, hi + 1)))
    if rng.random() < 0.5:
        return s, "balanced"
    while True:
        chars = list(s)
        if rng.random() < 0.5:
            i, j = rng.choice(len(chars), 2, replace=False)
            chars[i], chars[j] = chars[j], chars[i]
        else:
            i = int(rng.integers(len(chars)))
            chars[i] = _BRACKETS[int(rng.integers(4))]
        t = "".join(chars)
        if not is_balanced(t):
            return t, "unbalanced"


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _language_tables(seed: int, classes: int) -> np.ndarray:
    """log-probabilities (K, 27, 26) of K bigram chains: row 26 is the first letter's distribution."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    logp = np.full((classes, 27, 26), -np.inf)
    for k in range(classes):
        for row, support in [(r, 4) for r in range(26)] + [(26, 6)]:
            cols = rng.choice(26, support, replace=False)
            logp[k, row, cols] = np.log(rng.dirichlet(np.ones(support)))
    return logp


def _languages(rng: np.random.Generator, classes: int, min_len: int, max_len: int, tables: np.ndarray) -> Example:
    cumulative = np.cumsum(np.exp(tables), axis=2)
    while True:
        k = int(rng.integers(classes))
        n = int(rng.integers(min_len, max_len + 1))
        prev, word = 26, []
        for u in rng.random(n):
            prev = min(int(np.searchsorted(cumulative[k, prev], u * cumulative[k, prev, -1], side="right")), 25)
            word.append(prev)
        rows = np.array([26] + word[:-1])
        score = tables[:, rows, np.array(word)].sum(axis=1)  # log-likelihood under each language
        others = np.delete(score, k)
        if (score[k] - others.max(initial=-np.inf)) >= np.log(100.0):
            return "".join(_LETTERS[i] for i in word), f"lang{k + 1}"


def _majority(rng: np.random.Generator, min_len: int, max_len: int, alphabet: str) -> Example:
    while True:
        n = int(rng.integers(min_len, max_len + 1))
        ids = rng.integers(0, len(alphabet), n)
        counts = np.bincount(ids, minlength=len(alphabet))
        top = counts.max()
        if (counts == top).sum() == 1:
            return "".join(alphabet[i] for i in ids), alphabet[int(counts.argmax())]


TASKS: Dict[str, Callable[..., Example]] = {"brackets": _brackets, "languages": _languages, "majority": _majority}


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
            raise ValueError(
                f"task {name} has no option --{key.replace('_', '-')} (its options: "
                f"{', '.join('--' + k.replace('_', '-') for k in opts)})"
            )
        opts[key] = value
    lo, hi = opts["min_len"], opts["max_len"]
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
        raise ValueError(f"lengths must satisfy 1 <= --min-len <= --max-len, got {lo} and {hi}")
    if name == "brackets" and (lo + 1) // 2 > hi // 2:
        raise ValueError(f"brackets: no even length lies in --min-len..--max-len = {lo}..{hi}")
    if name == "languages" and not (isinstance(opts["classes"], int) and 2 <= opts["classes"] <= 26):
        raise ValueError(f"--classes must be an integer in 2..26, got {opts['classes']!r}")
    if "alphabet" in opts:
        a = opts["alphabet"]
        if not isinstance(a, str) or len(set(a)) != len(a) or len(a) < 2 or any(c.isspace() for c in a):
            raise ValueError(f"--alphabet must hold at least two distinct non-space characters, got {a!r}")
    return opts


def make_task(
    name: str,
    seed: int = 0,
    train: int = DEFAULT_SIZES["train"],
    val: int = DEFAULT_SIZES["val"],
    test: int = DEFAULT_SIZES["test"],
    **options: Any,
) -> Splits:
    """The splits of task ``name`` as (text, label) pairs, deterministic in (name, options, seed).

    Raises ValueError for an unknown task, a bad option, or a task too small to give that many distinct
    strings (e.g. brackets of at most 4 characters)."""
    opts = task_options(name, **options)
    extra = {"tables": _language_tables(seed, opts["classes"])} if name == "languages" else {}
    draw = TASKS[name]
    return draw_splits(name, seed, train, val, test, lambda rng: draw(rng, **opts, **extra), "strings")
