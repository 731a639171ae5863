"""Accuracy and training throughput of rnnkit's sequence classifier against an equivalent PyTorch loop,
on a realistic labelled file made from this Python's own standard library (no download).

The data (``--make-data``): the first paragraph of every docstring of a class or function (at least 4
words) in 13 standard-library packages, labelled with its package (asyncio, distutils, email, http,
idlelib, importlib, lib2to3, logging, multiprocessing, tkinter, unittest, urllib, xml): "which package
does this documentation come from", 13 imbalanced classes, ~3,600 examples of natural English with
identifiers. Both frameworks read it with word tokens through rnnkit.classify's stratified split.

Both train the same model (embedding 64 -> bidirectional 1-layer LSTM of 128 per direction -> max
pooling over the valid steps -> linear -> softmax), from the same initial weights, on the same batches in
the same order (rnnkit's epoch shuffles), with Adam 2e-3 (constant) and gradient-norm clipping at 5; torch packs
the padded batch (pack_padded_sequence) so its LSTM sees each sequence's own length, as rnnkit's does
with ``lengths``. They take turns in blocks of steps so both are timed under the same machine load;
each step is timed alone (batch building, forward, backward, clipping, update). Then both classify
the test split: accuracy and macro-F1.

    python bench/scripts/classify_parity.py --make-data bench/data/stdlib_docstrings.tsv   # write the file
    python bench/scripts/classify_parity.py --pairs bench/data/stdlib_docstrings.tsv       # the run

Writes bench/hosts/amd-epyc/classify_parity.json (path configurable with --out).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sysconfig
import time

# Both frameworks' OpenMP threads wait passively, as rnnkit's own do (rnnkit sets this when it loads, but
# torch's OpenMP has read the environment by then): on a shared machine a spinning thread takes the core
# its partner needs, which slows whoever spins by many times.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit.bench.machine import cpu_load, cpu_model, git_revision  # noqa: E402
from rnnkit.classify.data import Encoded, load_splits, pairs_spec  # noqa: E402
from rnnkit.classify.metrics import scores  # noqa: E402
from rnnkit.classify.model import Classifier  # noqa: E402
from rnnkit.classify.train import ClassifierRun, TrainConfig, evaluate  # noqa: E402
from rnnkit.models import single_threaded_blas  # noqa: E402

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("asyncio", "distutils", "email", "http", "idlelib", "importlib", "lib2to3", "logging",
            "multiprocessing", "tkinter", "unittest", "urllib", "xml")


def make_data(path: str) -> int:
    """Write the docstring file (text<TAB>package, one per line, sorted for a stable file); returns the
    number of lines."""
    lib = sysconfig.get_paths()["stdlib"]
    lines = set()
    for package in PACKAGES:
        for root, dirs, files in os.walk(os.path.join(lib, package)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("test"))  # a package's tests are about others
            for name in sorted(f for f in files if f.endswith(".py")):
                try:
                    with open(os.path.join(root, name), encoding="utf-8") as f:
                        tree = ast.parse(f.read())
                except (SyntaxError, UnicodeDecodeError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        doc = ast.get_docstring(node)
                        first = " ".join(doc.split("\n\n")[0].split()) if doc else ""
                        if len(first.split()) >= 4:
                            lines.add(f"{first}\t{package}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in sorted(lines))
    return len(lines)


class TorchClassifier(torch.nn.Module):
    """The same architecture in torch, initialised from an rnnkit Classifier's weights (max pooling)."""

    def __init__(self, m: Classifier):
        super().__init__()
        c = m.config
        D = 2 if c["bidirectional"] else 1
        self.embed = torch.nn.Embedding(len(m.vocab), c["embed"])
        self.rnn = torch.nn.LSTM(c["embed"], c["hidden"], c["layers"], bidirectional=c["bidirectional"])
        self.head = torch.nn.Linear(D * c["hidden"], len(m.labels))
        with torch.no_grad():
            self.embed.weight.copy_(torch.from_numpy(m.params["embed.weight"]))
            for k, v in self.rnn.named_parameters():
                v.copy_(torch.from_numpy(m.params[f"rnn.{k}"]))
            self.head.weight.copy_(torch.from_numpy(m.params["head.weight"]))
            self.head.bias.copy_(torch.from_numpy(m.params["head.bias"]))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        T = ids.shape[0]
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, enforce_sorted=False)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], total_length=T)
        valid = (torch.arange(T)[:, None] < lengths[None, :])[:, :, None]
        return self.head(y.masked_fill(~valid, float("-inf")).max(0).values)


class TorchRun:
    """The PyTorch side of a ClassifierRun: its batches, its initial weights, Adam and clipping."""

    def __init__(self, twin: ClassifierRun):
        self.twin, self.cfg = twin, twin.cfg
        start = Classifier(twin.model.vocab, twin.model.labels, self.cfg.cell, self.cfg.layers, self.cfg.hidden,
                           self.cfg.embed, self.cfg.bidirectional, self.cfg.pool, seed=self.cfg.seed)
        self.model = TorchClassifier(start)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        self.step = 0

    def train_step(self) -> float:
        b = self.twin.train_set.batch(self.twin._indices(self.step))
        logits = self.model(torch.from_numpy(b.ids), torch.from_numpy(b.lengths))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(b.targets))
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.opt.step()
        self.step += 1
        return loss.item()

    def evaluate(self, enc: Encoded) -> dict:
        true, pred = [], []
        with torch.no_grad():
            for _, b in enc.batches(256):
                logits = self.model(torch.from_numpy(b.ids), torch.from_numpy(b.lengths))
                true.append(b.targets)
                pred.append(logits.argmax(1).numpy())
        return scores(np.concatenate(true), np.concatenate(pred), self.twin.model.labels.names)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--make-data", metavar="FILE", help="write the docstring file and exit")
    p.add_argument("--pairs", default=os.path.join(BENCH, "data", "stdlib_docstrings.tsv"))
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--block", type=int, default=25, help="steps each framework takes in turn")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=os.path.join(BENCH, "hosts", "amd-epyc", "classify_parity.json"))
    a = p.parse_args()
    if a.make_data:
        print(f"{make_data(a.make_data)} lines written to {a.make_data}")
        return
    rnnkit.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    cfg = TrainConfig(data=pairs_spec(a.pairs, "word", 0), cell="lstm", layers=1, hidden=128, embed=64,
                      bidirectional=True, pool="max", batch=64, steps=a.steps, optimizer="adam", lr=2e-3,
                      schedule="constant", warmup=0, clip=5.0,
                      eval_every=a.steps, seed=0)
    load_start = cpu_load()
    with single_threaded_blas():
        ours = ClassifierRun(cfg)
        theirs = TorchRun(ours)
        runs = {"rnnkit": ours, "torch": theirs}
        seconds = {name: [] for name in runs}
        for first in range(0, a.steps, a.block):
            for name, run in runs.items():
                t0 = time.perf_counter()
                for _ in range(min(a.block, a.steps - first)):
                    run.train_step()
                seconds[name].append(time.perf_counter() - t0)
        test = Encoded(load_splits(cfg.data).test, "word", False, ours.model.vocab, ours.model.labels)
        results = {"rnnkit": evaluate(ours.model, test), "torch": theirs.evaluate(test)}
    load_end = cpu_load()
    out = {}
    for name in runs:
        r = results[name]
        out[name] = {"test_accuracy": r["accuracy"], "test_macro_f1": r["macro_f1"],
                     "train_s": sum(seconds[name]), "sequences_per_s": a.steps * cfg.batch / sum(seconds[name])}
    ratios = np.array(seconds["torch"]) / np.array(seconds["rnnkit"])
    splits = load_splits(cfg.data)
    result = {
        "settings": {"pairs": os.path.relpath(a.pairs, BENCH), "examples": sum(map(len, splits)),
                     "train/val/test": [len(splits.train), len(splits.val), len(splits.test)],
                     "classes": len(ours.model.labels), "vocab": len(ours.model.vocab), "tokens": "word",
                     "model": "embed 64 -> biLSTM 128x2 -> max pool -> linear", "batch": cfg.batch,
                     "steps": a.steps, "optimizer": "adam", "lr": 2e-3, "schedule": "constant", "clip": 5.0, "threads": a.threads,
                     "block": a.block},
        "machine": {"cpu": cpu_model() or platform.machine(), "cores": os.cpu_count(), "git": git_revision(),
                    "torch": torch.__version__, "rnnkit": rnnkit.__version__, "python": platform.python_version(),
                    "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    "load_start": load_start, "load_end": load_end},
        **out,
        "train_speedup": out["rnnkit"]["sequences_per_s"] / out["torch"]["sequences_per_s"],
        "block_speedups": {"median": float(np.median(ratios)), "min": float(ratios.min()), "max": float(ratios.max())},
    }
    print(json.dumps(result, indent=1))
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
