"""How closely 2 ranks on global batch B reproduce one process on batch B: 30 steps of a small char-LM (2x32
LSTM, batch 8, seq-len 16) and of a small seq2seq model (reverse task, 2x16 LSTM, batch 16), in float32
and float64, clipping by norm at 0.5 (active every step), Adam; the largest relative differences of the
step losses and of the weights (max |a - b| / max |a| per tensor), and whether both ranks hold the same
weights bit for bit.

    nice -n 19 python bench/scripts/mpi_equivalence.py     # ~1 minute; not a timing
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

JOB = """
import sys
import numpy as np
from rnnkit import distributed as dist
from rnnkit.models import single_threaded_blas
dist.init()
kind, dtype, out, text = sys.argv[1], np.dtype(sys.argv[2]), sys.argv[3], sys.argv[4]
with single_threaded_blas():
    if kind == "charlm":
        from rnnkit.charlm.data import split
        from rnnkit.charlm.train import CharLMRun, TrainConfig
        cfg = TrainConfig(layers=2, hidden=32, embed=16, seq_len=16, batch=8, steps=30, clip=0.5)
        run = CharLMRun(cfg, *split(open(text).read(), cfg.val_frac), dtype=dtype)
    else:
        from rnnkit.seq2seq.data import task_spec
        from rnnkit.seq2seq.train import Seq2SeqRun, TrainConfig
        data = task_spec("reverse", 0, {"train": 300, "val": 20, "test": 30}, min_len=2, max_len=4, alphabet="abcde")
        run = Seq2SeqRun(TrainConfig(data=data, layers=2, hidden=16, embed=8, batch=16, steps=30, clip=0.5), dtype=dtype)
    losses = [run.train_step() for _ in range(30)]
np.savez(f"{out}{dist.rank()}.npz", losses=np.array(losses), **{"model/" + k: v for k, v in run.model.params.items()})
"""


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300))


def main() -> None:
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    print("| model | dtype | step losses | weights | ranks' weights identical |")
    print("|---|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        job, text = os.path.join(tmp, "job.py"), os.path.join(tmp, "t.txt")
        with open(job, "w") as f:
            f.write(JOB)
        rng = np.random.default_rng(0)
        words = np.array(["alpha", "beta", "gamma", "delta", "the", "cat", "sat", "on", "mat", "\n"])
        with open(text, "w") as f:
            f.write(" ".join(rng.choice(words, 6000)))
        for kind in ("charlm", "seq2seq"):
            for dtype in ("float32", "float64"):
                one, two = os.path.join(tmp, f"{kind}{dtype}one"), os.path.join(tmp, f"{kind}{dtype}two")
                subprocess.run([sys.executable, job, kind, dtype, one, text], env=env, check=True)
                subprocess.run([mpiexec, "-n", "2", sys.executable, job, kind, dtype, two, text], env=env, check=True)
                a, b, c = (np.load(p) for p in (one + "0.npz", two + "0.npz", two + "1.npz"))
                names = [k for k in a.files if k.startswith("model/")]
                losses = float(np.max(np.abs(a["losses"] - b["losses"]) / np.abs(a["losses"])))
                weights = max(rel(a[k], b[k]) for k in names)
                same = all(np.array_equal(b[k], c[k]) for k in names)
                print(f"| {kind} | {dtype} | {losses:.1e} | {weights:.1e} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
