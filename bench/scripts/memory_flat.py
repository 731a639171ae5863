"""Resident memory over a long training run: a small char-LM (LSTM, 2 layers of 128, embed 32, batch 32,
seq-len 64) trained for 10,000 steps on this Python's standard library text, with a validation pass
and a checkpoint write every 500 steps, as train-charlm does. The process's RSS (VmRSS of
/proc/self/status) is read every 500 steps; memory is flat when the RSS after warm-up stops growing.

    python bench/scripts/memory_flat.py [--steps 10000] [--every 500] [--json FILE]

Prints one line per reading and a summary (first reading after warm-up, last, maximum, growth).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import rnnkit
from rnnkit.charlm.data import default_corpus
from rnnkit.charlm.train import CharLMRun, TrainConfig
from rnnkit.models import single_threaded_blas


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    train_part, val_part = default_corpus()
    cfg = TrainConfig(cell="lstm", layers=2, hidden=128, embed=32, batch=32, seq_len=64, steps=a.steps,
                      val_sample=8192, eval_every=a.every)
    rows = []
    with single_threaded_blas(), tempfile.TemporaryDirectory() as out:
        run = CharLMRun(cfg, train_part[:2_000_000], val_part[:200_000])
        start = time.time()
        for step in range(1, a.steps + 1):
            run.train_step()
            if step % a.every == 0:
                run.evaluate()
                run.save(os.path.join(out, "checkpoint.npz"))
                rows.append({"step": step, "rss_mib": round(rss_mib(), 1), "elapsed_s": round(time.time() - start, 1)})
                print(rows[-1], flush=True)
    after_warmup = rows[min(1, len(rows) - 1)]["rss_mib"]
    summary = {
        "threads": rnnkit.get_num_threads(),
        "first_after_warmup_mib": after_warmup,
        "last_mib": rows[-1]["rss_mib"],
        "max_mib": max(r["rss_mib"] for r in rows),
        "growth_after_warmup_mib": round(rows[-1]["rss_mib"] - after_warmup, 1),
        "load": os.getloadavg()[0],
    }
    print(summary)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": " ".join(sys.argv), "rows": rows, "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
