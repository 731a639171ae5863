"""A training run's output directory: what every training command (``train-charlm``, ``train-seq2seq``,
``train-captions`` and any added later) does before it writes, so that no run is destroyed by accident.

The order a command follows:

1. Validate every argument and read the data (nothing is created before that).
2. `RunDir.check_new` (a new run) or `RunDir.load_for_resume` (``--resume``) inspects the directory:
   a directory that holds a run (any of `RUN_FILES`) is written into only with ``--resume`` (continue
   it) or ``--overwrite`` (replace it); resuming a directory that does not exist, holds no checkpoint,
   or holds another kind of run (see `KINDS`) is refused with a line naming both kinds.
3. On resume, `resume_settings` merges the saved settings with the options given: options that cannot
   change for a run (model, data, optimiser) must agree with the checkpoint or the command stops naming
   each contradiction; those that legitimately change (the ``changeable`` fields: length, learning rate,
   reporting, ...) are applied with a line saying so; a step target at or below the step already reached
   stops the command with a line saying so.
4. `RunDir.writing` creates the directory (or, with ``--overwrite``, removes the old run's files and only
   those) around the training; a run that fails before it has written a checkpoint leaves nothing behind:
   its files are removed, and the directory too if it created it.

A run's files are `RUN_FILES`: the latest checkpoint (``checkpoint.npz``), the best one (``best.npz``,
where the command keeps one), ``metrics.jsonl``, ``curve.png`` and ``sample.txt``. Each is written
atomically, so a run killed at any moment leaves its last complete checkpoint; the temporary file of a
write it interrupted (``.tmp-*``) is removed when the directory is written into again. Other files in
the directory are never touched.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import checkpoint
from ._atomic import remove_stale_temporaries

__all__ = ["RunKind", "KINDS", "RUN_FILES", "CHECKPOINT_FILE", "RunDir", "resume_settings", "flag", "kind_of"]

CHECKPOINT_FILE = "checkpoint.npz"
RUN_FILES: Tuple[str, ...] = (CHECKPOINT_FILE, "best.npz", "metrics.jsonl", "curve.png", "sample.txt")


class RunKind(NamedTuple):
    """A kind of training run: the ``format`` field of its checkpoints, the command that trains it and
    a noun for messages."""

    format: str
    command: str
    noun: str

    def describe(self) -> str:
        return f"a {self.noun} run (rnnkit {self.command})"


#: Every kind of run, by checkpoint format; a new training command adds its line here.
KINDS: Dict[str, RunKind] = {
    k.format: k
    for k in (
        RunKind("rnnkit-charlm", "train-charlm", "character-model"),
        RunKind("rnnkit-seq2seq", "train-seq2seq", "sequence-to-sequence"),
        RunKind("rnnkit-classifier", "train-classifier", "classifier"),
        RunKind("rnnkit-captions", "train-captions", "captioning"),
    )
}


def flag(field: str, names: Optional[Mapping[str, str]] = None) -> str:
    """The command-line option of a configuration field (``lr_decay`` -> ``--lr-decay``), unless
    ``names`` maps the field to another spelling."""
    return (names or {}).get(field) or "--" + field.replace("_", "-")


def kind_of(meta: Mapping[str, Any]) -> str:
    """What a checkpoint's metadata says it holds, for messages: "a sequence-to-sequence run (rnnkit
    train-seq2seq)", or "a run of unknown kind ('x')"."""
    fmt = meta.get("format")
    kind = KINDS.get(str(fmt))
    return kind.describe() if kind else f"a run of unknown kind ({fmt!r})"


class RunDir:
    """The output directory ``path`` of a run of kind ``kind``."""

    def __init__(self, path: str, kind: RunKind):
        self.path, self.kind = path, kind

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.path, CHECKPOINT_FILE)

    def run_files(self) -> Sequence[str]:
        """The run files (`RUN_FILES`) present in the directory."""
        return [f for f in RUN_FILES if os.path.isfile(os.path.join(self.path, f))]

    def _saved_meta(self) -> Optional[Dict[str, Any]]:
        try:
            return checkpoint.load(self.checkpoint_path)[1]
        except checkpoint.CheckpointError:
            return None

    def check_new(self, overwrite: bool) -> None:
        """For a new run: ValueError if ``path`` is not usable as a directory, or holds a run and
        ``overwrite`` is False. Creates nothing."""
        existing = os.path.abspath(self.path)
        while not os.path.exists(existing):  # the directories up to it are created when the run starts
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise ValueError(f"--out {self.path}: {existing} exists and is not a directory")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"--out {self.path}: {existing} is not writable")
        present = self.run_files()
        if present and not overwrite:
            meta = self._saved_meta()
            what = (
                f"holds {kind_of(meta)} at step {meta.get('step', '?')}"
                if meta
                else f"holds a run's files ({', '.join(present)})"
            )
            raise ValueError(
                f"{self.path} {what}: give --resume to continue it or --overwrite to replace it "
                "(or choose another --out)"
            )

    def load_for_resume(self) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
        """(arrays, meta) of the checkpoint to resume; ValueError (CheckpointError) with one line if there is
        none or it is another kind of run. Creates nothing."""
        if not os.path.isdir(self.path):
            raise checkpoint.CheckpointError(
                f"nothing to resume: {self.path} does not exist (drop --resume to start a new run)"
            )
        if not os.path.isfile(self.checkpoint_path):
            raise checkpoint.CheckpointError(f"nothing to resume: no checkpoint in {self.path} ({CHECKPOINT_FILE})")
        if not os.access(self.path, os.W_OK | os.X_OK):  # (a read-only mount refuses root too)
            raise ValueError(f"--out {self.path} is not writable: the run cannot continue there")
        arrays, meta = checkpoint.load(self.checkpoint_path)
        if meta.get("format") != self.kind.format:
            other = KINDS.get(str(meta.get("format")))
            hint = f": resume it with rnnkit {other.command} --resume" if other else ""
            raise checkpoint.CheckpointError(f"{self.path} holds {kind_of(meta)}, not {self.kind.describe()}{hint}")
        if "train" not in meta or "step" not in meta:
            raise checkpoint.CheckpointError(
                f"{self.checkpoint_path} holds a model without its training state "
                "(saved by Model.save, not by training): it cannot be resumed"
            )
        return arrays, meta

    @contextlib.contextmanager
    def writing(self, overwrite: bool = False) -> Iterator[str]:
        """Around the training: creates the directory (after `check_new` or `load_for_resume`), with
        ``overwrite`` first removes the run files of the run it replaces, and removes the temporary
        files of writes that a kill interrupted (`rnnkit._atomic.TMP_PREFIX`); if the body fails before a
        checkpoint exists, removes the run files and the directories it created. Yields the path."""
        created = []  # the directories made here, deepest first
        d = os.path.abspath(self.path)
        while not os.path.isdir(d):
            created.append(d)
            d = os.path.dirname(d)
        os.makedirs(self.path, exist_ok=True)
        remove_stale_temporaries(self.path)
        if overwrite:
            for f in self.run_files():
                os.unlink(os.path.join(self.path, f))
        try:
            yield self.path
        except BaseException:
            if not os.path.isfile(self.checkpoint_path):
                for f in self.run_files():
                    os.unlink(os.path.join(self.path, f))
                for d in created:
                    if os.listdir(d):
                        break
                    os.rmdir(d)
            raise


def _show(value: Any) -> str:
    return "the default" if value is None else str(value)


def resume_settings(
    path: str,
    saved: Mapping[str, Any],
    step: int,
    given: Mapping[str, Any],
    changeable: Sequence[str],
    log: Callable[[str], None],
    names: Optional[Mapping[str, str]] = None,
    skip: Sequence[str] = (),
) -> Dict[str, Any]:
    """The settings of a resumed run: ``saved`` (the checkpoint's, at ``step``) with the fields of
    ``given`` (the options the user gave, by field) that may change applied.

    - A given field outside ``changeable`` that differs from the saved value: ValueError naming every
      such option with both values.
    - A changeable field that differs: applied, with a line through ``log``.
    - ``steps``/``minutes``: a run resumed with neither continues to its saved step target if it had
      one (else for its saved minutes again); a step target at or below ``step`` is a ValueError saying
      so. Giving one clears the other.
    ``names`` maps fields to their option spellings where they differ from `flag`'s; ``skip`` lists
    fields that are checked elsewhere (e.g. the data). Logs which saved settings the run keeps.
    """
    contradictions = []
    for field, value in given.items():
        if field in skip or field not in saved or field in changeable or value == saved[field]:
            continue
        contradictions.append(f"{flag(field, names)} {_show(value)} (the run has {_show(saved[field])})")
    if contradictions:
        raise ValueError(
            f"{path}: {'; '.join(contradictions)}: a resumed run keeps its model, data and "
            "optimiser settings; drop these options, or start a new run (--overwrite or another --out)"
        )
    merged = dict(saved)
    if "steps" in given or "minutes" in given:
        merged["steps"], merged["minutes"] = given.get("steps"), given.get("minutes")
    elif merged.get("steps") is not None:
        merged["minutes"] = None
    if merged.get("steps") is not None and merged["steps"] <= step:
        asked = "--steps " + str(merged["steps"]) if "steps" in given else f"its target of {merged['steps']} steps"
        raise ValueError(
            f"{path}: the run is already at step {step}, so {asked} leaves nothing to train: "
            f"give --steps above {step} or --minutes"
        )
    changes = []
    for field in changeable:
        if field in given and field in saved and given[field] != saved[field] and field not in ("steps", "minutes"):
            merged[field] = given[field]
            changes.append(f"{flag(field, names)} {_show(given[field])} (was {_show(saved[field])})")
    kept = [
        f"{flag(k, names)[2:]} {_show(v)}"
        for k, v in saved.items()
        if k not in changeable and k not in skip and not isinstance(v, (dict, list))
    ]
    length = (
        f"to step {merged['steps']}" if merged.get("steps") is not None else f"for {merged['minutes']:g} more minutes"
    )
    log(f"resuming {path} at step {step}, training {length}; saved settings: {', '.join(kept)}")
    if changes:
        log(f"changed on resume: {', '.join(changes)}")
    return merged


def resumed_config(
    run_dir: "RunDir",
    cfg: Any,
    given: Optional[Mapping[str, Any]],
    changeable: Sequence[str],
    log: Callable[[str], None],
    names: Optional[Mapping[str, str]] = None,
    describe_data: Optional[Callable[[Any], Optional[str]]] = None,
) -> Tuple[Any, Dict[str, np.ndarray], Dict[str, Any]]:
    """What a training command resumes from ``run_dir``: (its configuration, the checkpoint's arrays and
    metadata). The configuration is ``type(cfg)`` built from `resume_settings`; ``given`` (default:
    ``cfg``'s steps, minutes and eval_every) may change the fields in ``changeable``, and data that
    differs from the run's is refused (named by ``describe_data`` if given)."""
    arrays, meta = run_dir.load_for_resume()
    if given is None:
        given = {k: getattr(cfg, k) for k in ("steps", "minutes", "eval_every")}
    data, saved = given.get("data", cfg.data), meta["train"].get("data")
    if data and data != saved:
        described = describe_data(saved) if describe_data else None
        trained_on = f" ({described})" if described else ""
        raise ValueError(
            f"{run_dir.path}: the data given differs from the data this run was trained on{trained_on}; "
            "drop the data options to resume it"
        )
    try:
        settings = resume_settings(
            run_dir.path, meta["train"], int(meta["step"]), given, changeable, log, names, skip=("data",)
        )
        return type(cfg)(**settings), arrays, meta
    except TypeError as e:
        raise checkpoint.CheckpointError(
            f"{run_dir.checkpoint_path} is not a resumable training checkpoint ({e})"
        ) from None
