"""``rnnkit bench`` / ``python -m rnnkit.bench``: the command-line arguments and the top-level flow."""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from typing import Callable, List, Optional

from ..cliutil import Parser, RawDescriptionDefaultsFormatter, check_output_file, require_module, run
from .grid import CELL_CHOICES, DEFAULT_CELLS, GROUPS, RUN_MODES, build_cases

DESCRIPTION = """\
Time rnnkit's C++ kernels (through its layers) against the NumPy reference (rnnkit.reference) and
torch.nn (when importable), in one process, in turns, with the same thread count: the median of
--repeats calls after --warmup calls. Before timing, each implementation's outputs (and in training
mode its gradients) are checked against the reference; a case that disagrees is marked FAILED.

Grid: cell (rnn_tanh, lstm, gru; --cell takes any cell of the registry) x mode (inference = forward; training = forward + backward) x sizes:
sampling (B=1), small batches (B=4, 16), char-LM sizes (B=32..64, H=128..512), large (B=64..128,
H=1024), multi-layer, bidirectional and variable-length batches; --quick runs short representatives.

Reported per case: median ms, GFLOP/s (2*B*(I+H)*G*H per cell step, G the gates, 3x for training), the fraction
of the sgemm peak measured at start-up (rnnkit's OpenBLAS, same threads), speed-ups over the reference
and torch, and rnnkit's workspace memory. Exit status: 0, or 1 if any case FAILED.
"""

EPILOG = """\
examples:
  rnnkit bench --quick
  rnnkit bench --cell lstm --mode training --batch 64 --hidden 512 --threads 1,2
  rnnkit bench --json bench/results.json --plot bench/speedup.png --markdown bench/RESULTS.md
  rnnkit bench --compare before.json after.json
  rnnkit bench --from bench/results.json --plot speedup.png
"""


def _list(kind: Callable, choices=None) -> Callable[[str], List]:
    """An argparse type for comma-separated lists (the option may also repeat)."""

    def parse(text: str) -> List:
        items = [kind(t) for t in text.split(",") if t.strip()]
        for item in items:
            if choices is not None and item not in choices:
                raise argparse.ArgumentTypeError(f"{item!r} is not one of {', '.join(map(str, choices))}")
            if kind is int and item < 1:
                raise argparse.ArgumentTypeError(f"{item} must be a positive integer")
        return items

    parse.__name__ = "list"
    return parse


def _positive(kind: Callable) -> Callable:
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be positive")
        return value

    parse.__name__ = kind.__name__
    return parse


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    from .run import IMPLS

    p = Parser(
        prog=prog or "rnnkit bench",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=RawDescriptionDefaultsFormatter,
    )
    sel = p.add_argument_group("what to run (comma-separated lists; each option narrows the grid)")
    sel.add_argument(
        "--quick",
        action="store_true",
        help="short representatives of each regime, T=20, fewer repeats: well under a minute",
    )
    sel.add_argument(
        "--cell",
        type=_list(str, CELL_CHOICES),
        action="extend",
        help=f"cells: {', '.join(CELL_CHOICES)} (default: {', '.join(DEFAULT_CELLS)})",
    )
    sel.add_argument(
        "--mode", type=_list(str, RUN_MODES), action="extend", help=f"modes: {', '.join(RUN_MODES)} (default: both)"
    )
    sel.add_argument(
        "--group", type=_list(str, GROUPS), action="extend", help=f"size groups: {', '.join(GROUPS)} (default: all)"
    )
    sel.add_argument(
        "--batch",
        type=_list(int),
        action="extend",
        metavar="B",
        help="keep the grid sizes with these batch sizes (if none has them, run these sizes; default: all)",
    )
    sel.add_argument(
        "--hidden", type=_list(int), action="extend", metavar="H", help="likewise for hidden sizes (default: all)"
    )
    sel.add_argument(
        "--layers", type=_list(int), action="extend", metavar="L", help="likewise for layer counts (default: all)"
    )
    sel.add_argument(
        "--seq-len",
        type=_positive(int),
        metavar="T",
        help="run every kept size with T steps (default: each size's own, 32-100; quick 20)",
    )
    sel.add_argument(
        "--input-size", type=_positive(int), metavar="I", help="run every kept size with I inputs (default I = H)"
    )
    sel.add_argument(
        "--threads",
        type=_list(int),
        action="extend",
        metavar="N",
        help="thread counts for rnnkit, torch and NumPy's BLAS alike (default: rnnkit's current)",
    )
    sel.add_argument(
        "--impl",
        type=_list(str, IMPLS),
        action="extend",
        help="implementations to time (the reference is run for the check whatever this says; default: all)",
    )

    how = p.add_argument_group("how to time")
    how.add_argument("--repeats", type=_positive(int), help="timed calls per implementation (default 7; quick 3)")
    how.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    how.add_argument(
        "--time-budget",
        type=_positive(float),
        metavar="S",
        help="fewer repeats (at least 3; quick 1) where they would take longer than S seconds per "
        "implementation and case (default 10; quick 1)",
    )
    how.add_argument(
        "--ref-budget",
        type=_positive(float),
        metavar="S",
        help="do not time the reference where one call would take more than S seconds "
        "(estimated from the check; default 5; quick 1)",
    )
    how.add_argument(
        "--max-seconds",
        type=_positive(float),
        metavar="S",
        help="start no case after S seconds; the ones left out are listed (default: none; "
        "quick 45, so that --quick ends within a minute even on a busy machine)",
    )
    how.add_argument(
        "--check-seq-len",
        type=_positive(int),
        default=16,
        metavar="T",
        help="check correctness on the first T steps (default 16)",
    )
    how.add_argument(
        "--rtol",
        type=_positive(float),
        default=1e-4,
        help="largest error accepted, relative to each output's largest value (default 1e-4)",
    )
    how.add_argument("--peak-size", type=_positive(int), metavar="N", help="sgemm size of the peak (default 2048)")

    out = p.add_argument_group("output")
    out.add_argument(
        "--json",
        metavar="FILE",
        help="write every figure, the machine and the versions (default: no file; the directory must exist)",
    )
    out.add_argument("--plot", metavar="FILE.png", help="draw the speed-up per case (default: no plot)")
    out.add_argument(
        "--markdown", metavar="FILE.md", help="write the table as Markdown, with the command (default: no file)"
    )
    out.add_argument(
        "--compare",
        nargs=2,
        metavar=("A.json", "B.json"),
        help="print the change from run A to run B and exit (runs nothing; default: run the benchmark)",
    )
    out.add_argument(
        "--from",
        dest="from_json",
        metavar="RESULT.json",
        help="present a run saved with --json instead of running: print its table and write --plot and "
        "--markdown from it (default: run the benchmark)",
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _progress_bar(total: int, enabled: bool):
    """A tqdm bar on stderr if tqdm is installed, else a plain one-line counter."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="call", file=sys.stderr, dynamic_ncols=True, leave=False)
    except ImportError:
        return _PlainProgress(total)


class _PlainProgress:
    """The part of tqdm's interface the benchmark uses, for when tqdm is missing."""

    def __init__(self, total: int):
        self.total, self.n, self.text, self.last = total, 0, "", 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last > 0.5:
            self.last = time.monotonic()
            print(
                f"\r{100 * self.n // max(self.total, 1):3d}% {self.text[:60]:<60}", end="", file=sys.stderr, flush=True
            )

    def set_postfix_str(self, text: str) -> None:
        self.text = text

    def close(self) -> None:
        print("\r" + " " * 70 + "\r", end="", file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None, prog: Optional[str] = None) -> int:
    """Parse ``argv``, run the benchmark (or the comparison) and print; returns the exit code (a user's
    mistake, e.g. a missing or non-JSON --compare file, is one line on stderr and status 1)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    return run(parser.prog, lambda: _main(args, argv))


def _main(args: argparse.Namespace, argv: List[str]) -> int:
    import rnnkit

    from . import report
    from .compare import compare_files
    from .run import IMPLS, Settings, calls_per_case, run_bench

    if args.compare:
        print(compare_files(*args.compare))
        return 0
    for option in ("json", "plot", "markdown"):  # before the run, so a bad path costs nothing
        if getattr(args, option):
            check_output_file(getattr(args, option), f"--{option}")
    if args.plot:
        require_module("matplotlib", "--plot")
    if args.from_json:
        doc = report.load_json(args.from_json)
        doc["presented_by"] = " ".join(["rnnkit bench"] + [shlex.quote(a) for a in argv])
        _present(doc, args)
        return 0
    quick = args.quick
    settings = Settings(
        impls=tuple(dict.fromkeys(args.impl or IMPLS)),
        threads=tuple(dict.fromkeys(args.threads or [rnnkit.get_num_threads()])),
        repeats=args.repeats or (3 if quick else 7),
        warmup=max(0, args.warmup),
        time_budget=args.time_budget or (1.0 if quick else 10.0),
        ref_budget=args.ref_budget or (1.0 if quick else 5.0),
        check_seq_len=args.check_seq_len,
        rtol=args.rtol,
        peak_size=args.peak_size or 2048,
        peak_repeats=3 if quick else 5,
        min_repeats=1 if quick else 3,
        max_seconds=args.max_seconds if args.max_seconds is not None else (45.0 if quick else None),
        quick=quick,
    )
    cases = build_cases(
        quick=quick,
        cells=args.cell,
        modes=args.mode,
        groups=args.group,
        batch=args.batch,
        hidden=args.hidden,
        layers=args.layers,
        seq_len=args.seq_len,
        input_size=args.input_size,
    )
    if not cases:
        raise ValueError("no case matches the selectors")
    command = " ".join(["rnnkit bench"] + [shlex.quote(a) for a in argv])
    print(f"{command}: {len(cases)} case(s) x {len(settings.threads)} thread count(s)", file=sys.stderr)
    start = time.monotonic()
    bar = _progress_bar(len(cases) * len(settings.threads) * calls_per_case(settings), not args.no_progress)
    log = (
        (lambda text: bar.write(text, file=sys.stderr))
        if hasattr(bar, "write")
        else (lambda text: print(text, file=sys.stderr))
    )
    try:
        doc = run_bench(cases, settings, progress=bar, log=log)
    finally:
        if bar is not None:
            bar.close()
    doc["command"] = command
    doc["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    doc["seconds"] = time.monotonic() - start
    _present(doc, args)
    return 1 if any(r["status"] != "ok" for r in doc["cases"]) else 0


def _present(doc: dict, args: argparse.Namespace) -> None:
    """Print a result document's header, table and summary, and write the files the options ask for."""
    from . import plot, report

    print("\n".join(report.header_lines(doc)))
    print()
    print(report.format_table(doc))
    print()
    print(report.summary(doc) + f"; {doc['seconds']:.0f} s")
    if args.json:
        report.write_json(doc, args.json)
    if args.plot:
        plot.write_plot(doc, args.plot)
    if args.markdown:
        report.write_markdown(doc, args.markdown, args.plot)
