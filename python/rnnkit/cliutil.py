"""What the commands of ``rnnkit`` share (`rnnkit.cli` dispatches to modules ``cmd_*`` with
``main(argv, prog) -> int``): an argparse parser whose errors are one line, option types, and `run`,
which turns the errors a user can cause into one line on stderr and exit status 1 (2 for a bad
option), never a traceback.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys
import time
from typing import Any, Callable, Collection, Dict, List, Mapping, Optional

from .optim import DEFAULT_LR

__all__ = [
    "Parser",
    "positive_int",
    "non_negative_int",
    "positive_float",
    "add_schedule_options",
    "schedule_settings",
    "add_run_dir_options",
    "explicit_options",
    "add_saved_run_arguments",
    "add_training_options",
    "given_settings",
    "train_with_options",
    "MissingDependencyError",
    "require_module",
    "check_output_file",
    "deprecated_alias",
    "run",
]


def _has_value_default(action: argparse.Action) -> bool:
    return bool(action.option_strings) and not any(action.default is v for v in (None, False, argparse.SUPPRESS))


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that states every option's default: "(default: X)" after the help of an option whose
    default is a value (not None, not a flag's False) and whose help does not already say it (an option
    whose default is None says in its help what happens without it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" not in text and _has_value_default(action):
            text += (" " if text else "") + ("(default: empty)" if action.default == "" else "(default: %(default)s)")
        return text


class RawDescriptionDefaultsFormatter(DefaultsFormatter, argparse.RawDescriptionHelpFormatter):
    """`DefaultsFormatter` that keeps the description's and epilog's line breaks."""


class Parser(argparse.ArgumentParser):
    """argparse with option errors on one line and every default shown in ``--help``
    (`DefaultsFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def format_help(self) -> str:
        for action in self._actions:  # argparse prints no help line for an option without help text
            if action.help is None and _has_value_default(action):
                action.help = ""
                action.help = self._get_formatter()._get_help_string(action)
        return super().format_help()

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v


def non_negative_int(s: str) -> int:
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {s}")
    return v


def positive_float(s: str) -> float:
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {s}")
    return v


def add_schedule_options(group: Any, defaults: Any, default_minutes: float) -> None:
    """The options of `rnnkit.optim.Schedule` (length of training, optimiser, learning rate and its
    schedule, weight decay, early stopping, clipping), with ``defaults`` (a Schedule) as their defaults,
    added to a parser or group; ``default_minutes``: how long a new run trains without --steps or
    --minutes. A command turns them into settings with `schedule_settings`."""
    from .optim import SCHEDULES

    d = defaults
    length = group.add_mutually_exclusive_group()
    length.add_argument(
        "--steps",
        type=positive_int,
        help="total training steps, counting resumed ones (default: "
        "train for --minutes; a resumed run continues to its saved step target)",
    )
    length.add_argument(
        "--minutes",
        type=positive_float,
        help="train for this long, validation included "
        f"(default: {default_minutes:g} for a new run; a resumed run without --steps trains for "
        "its saved minutes again)",
    )
    group.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default=d.optimizer, help=f"(default: {d.optimizer})")
    group.add_argument(
        "--lr",
        type=positive_float,
        help="peak learning rate (default: adam/adamw/rmsprop 2e-3, adagrad 0.1, sgd 0.05 with momentum 0.9)",
    )
    group.add_argument(
        "--weight-decay",
        type=float,
        default=d.weight_decay,
        help="decoupled weight decay (AdamW's) of the weight matrices: each step multiplies them by "
        "1 - lr * decay (default: "
        + ("the optimiser's: 0.01 for adamw, 0 for the others)" if d.weight_decay is None else f"{d.weight_decay})"),
    )
    group.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help=f"learning-rate schedule after the warm-up: cosine decay to --lr-floor over the run "
        f"(its --steps, or its --minutes by elapsed time), step decay by --lr-decay every "
        f"--lr-decay-every steps, reduce on plateau, or constant (default: {d.schedule}; step "
        f"when --lr-decay is given)",
    )
    group.add_argument(
        "--warmup",
        type=non_negative_int,
        default=d.warmup,
        help=f"steps of linear learning-rate warm-up, at most a tenth of --steps (default: {d.warmup})",
    )
    group.add_argument(
        "--lr-floor",
        type=float,
        default=d.lr_floor,
        help=f"lowest learning rate of the decaying schedules, as a fraction of --lr (default: {d.lr_floor})",
    )
    group.add_argument(
        "--lr-decay",
        type=positive_float,
        help=f"step schedule: multiply the learning rate by this every --lr-decay-every steps (default: {d.lr_decay})",
    )
    group.add_argument(
        "--lr-decay-every", type=positive_int, default=d.lr_decay_every, help=f"(default: {d.lr_decay_every})"
    )
    group.add_argument(
        "--plateau-factor",
        type=positive_float,
        default=d.plateau_factor,
        help=f"plateau schedule: multiply the learning rate by this after --plateau-patience "
        f"evaluations without a better validation score (default: {d.plateau_factor})",
    )
    group.add_argument(
        "--plateau-patience", type=positive_int, default=d.plateau_patience, help=f"(default: {d.plateau_patience})"
    )
    group.add_argument(
        "--patience",
        type=positive_int,
        default=d.patience,
        help="early stopping: end the run after this many evaluations in a row without a better "
        "validation score (default: never)",
    )
    group.add_argument(
        "--clip", type=float, default=d.clip, help=f"gradient clipping threshold (0: none) (default: {d.clip})"
    )
    group.add_argument("--clip-mode", choices=["norm", "value"], default=d.clip_mode, help=f"(default: {d.clip_mode})")


def schedule_settings(a: argparse.Namespace, defaults: Any, default_minutes: Optional[float] = None) -> Dict[str, Any]:
    """The `rnnkit.optim.Schedule` fields from options added by `add_schedule_options` (``steps`` and
    ``minutes`` as given, or ``minutes`` ``default_minutes`` when neither is), for a command's
    configuration."""
    lr_decay = defaults.lr_decay if a.lr_decay is None else a.lr_decay
    schedule = a.schedule or ("step" if a.lr_decay is not None else defaults.schedule)
    return {
        "steps": a.steps,
        "minutes": a.minutes if a.steps or a.minutes else default_minutes,
        "optimizer": a.optimizer,
        "lr": a.lr,
        "weight_decay": a.weight_decay,
        "schedule": schedule,
        "warmup": a.warmup,
        "lr_floor": a.lr_floor,
        "lr_decay": lr_decay,
        "lr_decay_every": a.lr_decay_every,
        "plateau_factor": a.plateau_factor,
        "plateau_patience": a.plateau_patience,
        "patience": a.patience,
        "clip": a.clip,
        "clip_mode": a.clip_mode,
    }


def deprecated_alias(parser: Any, old: str, new: str, type: Callable[[str], Any]) -> None:
    """Accept option ``old`` as the former spelling of ``new`` (same destination), hidden from --help;
    using it prints a one-line note naming the new spelling."""
    dest = new.lstrip("-").replace("-", "_")

    class Alias(argparse.Action):
        def __call__(
            self,
            p: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            value: Any,
            option_string: Optional[str] = None,
        ) -> None:
            print(f"{p.prog}: note: {old} is deprecated here, use {new}", file=sys.stderr)
            setattr(namespace, dest, value)

    parser.add_argument(old, type=type, dest=dest, action=Alias, help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def add_run_dir_options(parser: argparse.ArgumentParser, default_out: str, changeable: List[str]) -> None:
    """--out, --resume and --overwrite of a training command (see `rnnkit.rundir`); ``changeable``: the
    options a resumed run may change."""
    parser.add_argument("--out", default=default_out, metavar="DIR", help="output directory")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --out with its saved "
        f"settings: {', '.join(changeable)} may change, the other options must agree with the run",
    )
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run saved in --out (without this or --resume, a directory that holds a run is refused)",
    )


def explicit_options(parser: argparse.ArgumentParser, argv: List[str]) -> Dict[str, Any]:
    """The options ``argv`` gives explicitly (dest -> parsed value), defaults left out: what a resumed
    run compares with its saved settings."""
    bare = copy.deepcopy(parser)
    for action in bare._actions:
        action.default = argparse.SUPPRESS
    return vars(bare.parse_args(argv))


def add_saved_run_arguments(
    parser: argparse.ArgumentParser,
    latest_help: str = "use the run's latest checkpoint (default: its best, best.npz, when there is one)",
) -> None:
    """DIR (a training run's directory) and --latest, of the commands that use a trained model."""
    parser.add_argument("dir", metavar="DIR")
    parser.add_argument("--latest", action="store_true", help=latest_help)


def add_training_options(
    parser: argparse.ArgumentParser,
    defaults: Any,
    seed_help: Optional[str],
    threads_help: str,
    default_out: str,
    changeable: List[str],
) -> None:
    """The options that close every training command's list: --seed (default ``defaults.seed``),
    --threads, the run directory's (`add_run_dir_options`) and --no-progress."""
    parser.add_argument("--seed", type=int, default=defaults.seed, help=seed_help)
    parser.add_argument("--threads", type=positive_int, help=threads_help)
    add_run_dir_options(parser, default_out, changeable)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def given_settings(
    parser: argparse.ArgumentParser,
    argv: List[str],
    config: Any,
    data_options: Collection[str] = (),
    fields: Optional[Mapping[str, str]] = None,
) -> Dict[str, Any]:
    """The settings ``argv`` gives explicitly (`explicit_options`), by field of the dataclass ``config``:
    ``fields`` maps the options spelled otherwise than their field; ``data_options`` are left out (a
    resumed run compares them as its data spec) and so are options that are no field."""
    fields = fields or {}
    return {
        fields.get(k, k): v
        for k, v in explicit_options(parser, argv).items()
        if k not in data_options and fields.get(k, k) in config.__dataclass_fields__
    }


def train_with_options(
    train: Callable[..., Any], cfg: Any, a: argparse.Namespace, given: Dict[str, Any], data: Mapping[str, Any]
) -> int:
    """Runs a package's ``train`` with the options of `add_training_options` (``given``: `given_settings`,
    to which ``data``, the data spec, is added if there is one); 0 for `run`."""
    if data:
        given["data"] = data
    train(cfg, a.out, resume=a.resume, progress=not a.no_progress, overwrite=a.overwrite, given=given)
    return 0


class MissingDependencyError(ImportError):
    """An optional package a requested feature needs is not installed."""


def require_module(name: str, feature: str, extra: str = "") -> Any:
    """Import and return module ``name``, or MissingDependencyError naming ``feature`` and how to install
    it (``extra``: the rnnkit extra that brings it). Called before the work starts, so a missing package
    costs nothing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        how = f"pip install 'rnnkit[{extra}]' or pip install {name}" if extra else f"pip install {name}"
        raise MissingDependencyError(f"{feature} needs {name}, which is not installed ({how})") from None


def check_output_file(path: str, option: str) -> None:
    """ValueError unless a file can be written at ``path`` (its directory exists and is writable, and
    it is not a directory): checked before the work starts, so nothing is lost at the end."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path} is a directory, not a file")
    if not os.path.isdir(directory):
        raise ValueError(f"{option} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path}: not writable")


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a command, turning the errors a user can cause into one line and exit status 1.

    Those are ValueError (bad settings and data: the data errors of the commands, e.g.
    `rnnkit.charlm.data.TextError`, derive from it, and so does `rnnkit.checkpoint.CheckpointError`),
    OSError (files) and `MissingDependencyError` (an optional package).

    In an MPI job of several ranks (`rnnkit.distributed`), the line names the rank and the whole job is
    aborted with the status, so no rank is left waiting for the failed one; ranks that disagree on the
    run (`rnnkit.distributed.DisagreementError`, raised on every rank at once) end with one line from
    rank 0."""
    from . import distributed as dist

    try:
        return body()
    except dist.DisagreementError as e:
        if dist.is_main():
            print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError, MissingDependencyError) as e:
        _fail(prog, f"error: {e}", 1)
        return 1
    except dist.MPIUnavailableError as e:  # each rank alone: there is no MPI to end the job with
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _fail(prog, "interrupted", 130)
        return 130


def _fail(prog: str, message: str, status: int) -> None:
    """Print ``message`` as the command's one line; in a job of several ranks, with the rank, then abort
    the job with ``status``."""
    from . import distributed as dist

    if not (dist.is_initialized() and dist.world_size() > 1):
        print(f"{prog}: {message}", file=sys.stderr)
        return
    if not dist.is_main():
        # Most errors (a bad setting, a missing file) strike every rank at once: rank 0 says it and its
        # abort ends the others first; a rank that fails alone still says why a moment later.
        time.sleep(2.0)
    print(f"{prog} (rank {dist.rank()}/{dist.world_size()}): {message}", file=sys.stderr)
    dist.abort(status)
