"""Milliseconds per training step of train-seq2seq's addition recipe (GRU 128, bidirectional encoder,
additive attention, batch 64): 3 warm-up steps, then the mean of 40. Run it under different OpenMP
environments to compare them, e.g.

    for env in OMP_WAIT_POLICY=ACTIVE OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=1000 OMP_NUM_THREADS=1; do
        env $env python bench/scripts/step_time.py; done

(rnnkit sets OMP_WAIT_POLICY=PASSIVE only when the environment does not set it.)
"""
import os
import time

import rnnkit
from rnnkit.models import single_threaded_blas
from rnnkit.seq2seq.data import task_spec
from rnnkit.seq2seq.train import Seq2SeqRun, TrainConfig

cfg = TrainConfig(data=task_spec("addition", 0, {"train": 5000}), cell="gru", hidden=128, bidirectional=True,
                  attention="additive", steps=1000)
run = Seq2SeqRun(cfg)
with single_threaded_blas():
    for _ in range(3):
        run.train_step()
    t = time.perf_counter()
    for _ in range(40):
        run.train_step()
    per_step = (time.perf_counter() - t) / 40
env = {k: v for k, v in os.environ.items() if k.startswith(("OMP", "GOMP"))}
print(f"{env} threads {rnnkit.get_num_threads()}: {per_step * 1000:.1f} ms per step, load {os.getloadavg()[0]:.1f}")
