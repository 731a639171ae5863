"""Training and sampling speed of the long char-LM recipe against PyTorch, side by side in one process.

Training: embedding 64 -> 2x512 LSTM, dropout 0.2, batch 64 streams x 100-step BPTT, Adam, clipping at
5 (sizes are flags): rnnkit's CharLMRun against the same model in torch (charlm_parity.py's TorchRun,
same initial weights, text and batches), taking turns in blocks of --block steps so both meet the same
machine; characters per second over all timed blocks. No evaluation (charlm_parity.py measures the
learning parity; this script only the speed).

Sampling: seconds per character of CharLM.sample for each weight storage against a torch loop of one
Python iteration per character (charlm_parity.sampling_speed), and the float32 sampler against the
memory-bandwidth bound: the bytes of weights one character reads, over the read bandwidth measured here
on a buffer of the same size (torch.sum over a float32 buffer, as many threads as the sampler).

    python bench/scripts/charlm_speed.py                 # 60 steps each, blocks of 10
    python bench/scripts/charlm_speed.py --steps 20 --block 5 --sample-length 500
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from charlm_parity import SAMPLING_WEIGHTS, TorchRun, sampling_speed  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit.charlm.data import default_corpus, read_texts, split  # noqa: E402
from rnnkit.charlm.model import single_threaded_blas  # noqa: E402
from rnnkit.charlm.train import CharLMRun, TrainConfig  # noqa: E402
from rnnkit.charlm.vocab import Vocab  # noqa: E402

#: The sampler reads layer 0's input product as one row of a table of V rows when V is at most this
#: (csrc/rnnkit/ops/sampling.cpp kMaxTableRows).
MAX_TABLE_ROWS = 512
BYTES = {"float32": 4, "float16": 2, "int8": 1}


def train_speed(cfg: TrainConfig, train_part: str, val_part: str, block: int) -> dict:
    # TorchRun splits a text by cfg.val_frac itself: the joined parts split there nearly as given.
    runs = {"rnnkit": CharLMRun(cfg, train_part, val_part), "torch": TorchRun(cfg, train_part + val_part)}
    seconds = {name: 0.0 for name in runs}
    per_block = {name: [] for name in runs}
    with single_threaded_blas():
        for run in runs.values():  # warm-up: the first step allocates
            run.train_step()
        for first in range(0, cfg.steps, block):
            for name, run in runs.items():
                t0 = time.perf_counter()
                for _ in range(min(block, cfg.steps - first)):
                    run.train_step()
                dt = time.perf_counter() - t0
                seconds[name] += dt
                per_block[name].append(dt)
    chars = cfg.steps * cfg.batch * cfg.seq_len
    ratios = np.array(per_block["torch"]) / np.array(per_block["rnnkit"])
    return {"rnnkit_chars_per_s": chars / seconds["rnnkit"], "torch_chars_per_s": chars / seconds["torch"],
            "speedup": seconds["torch"] / seconds["rnnkit"], "block_median": float(np.median(ratios)),
            "block_min": float(ratios.min()), "block_max": float(ratios.max())}


def bytes_per_char(V: int, E: int, H: int, L: int, storage: str) -> int:
    """Weight bytes the sampler reads per character of an LSTM char-LM: every gate row of every layer's
    W_ih and W_hh (layer 0's input product a table row of 4H floats when V is small) and the output layer."""
    G = 4 * H
    elements = G * H + (0 if V <= MAX_TABLE_ROWS else G * E) + (L - 1) * G * 2 * H + V * H
    table_row = G * 4 if V <= MAX_TABLE_ROWS else 0
    return elements * BYTES[storage] + table_row


def read_bandwidth(nbytes: int, threads: int) -> float:
    """Bytes per second of torch.sum over a float32 buffer of nbytes (best of many passes)."""
    torch.set_num_threads(threads)
    buf = torch.ones(max(nbytes // 4, 1024), dtype=torch.float32)
    passes = max(3, int(2e9 // buf.numel() // 4))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(passes):
            buf.sum()
        best = min(best, (time.perf_counter() - t0) / passes)
    return buf.numel() * 4 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", nargs="+", help="text file(s) (default: the stdlib corpus of train-charlm)")
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--steps", type=int, default=60, help="timed training steps of each library")
    ap.add_argument("--block", type=int, default=10, help="steps each library takes in turn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sample-length", type=int, default=2000, help="characters per sampling call (0: skip)")
    a = ap.parse_args()
    rnnkit.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    train_part, val_part = split(read_texts(a.text), 0.1) if a.text else default_corpus()
    cfg = TrainConfig(cell="lstm", layers=a.layers, hidden=a.hidden, embed=a.embed, dropout=a.dropout,
                      seq_len=a.seq_len, batch=a.batch, steps=a.steps, optimizer="adam", lr=2e-3, clip=5.0,
                      clip_mode="norm", val_frac=0.1, eval_every=a.steps, seed=0)
    core = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(f"OPENBLAS_CORETYPE={core}, {a.threads} threads, load {os.getloadavg()[0]:.2f}")
    print(f"training: embed {a.embed}, {a.layers}x{a.hidden} LSTM, dropout {a.dropout}, batch {a.batch} x "
          f"{a.seq_len}, Adam, clip 5; {a.steps} steps each in blocks of {a.block}")
    r = train_speed(cfg, train_part, val_part, a.block)
    print(f"  rnnkit {r['rnnkit_chars_per_s']:,.0f} chars/s, torch {r['torch_chars_per_s']:,.0f} chars/s: "
          f"{r['speedup']:.2f}x (per block: median {r['block_median']:.2f}x, "
          f"{r['block_min']:.2f}-{r['block_max']:.2f}x)", flush=True)
    if a.sample_length:
        vocab = Vocab.from_text(train_part)
        s = sampling_speed(vocab, a.sample_length)
        V = len(vocab)
        print(f"sampling {a.sample_length} chars, 2x512 LSTM, embed 64, V={V}: torch loop "
              f"{s['torch_s'] / a.sample_length * 1e6:.1f} us/char")
        for w in SAMPLING_WEIGHTS:
            nb = bytes_per_char(V, 64, 512, 2, w)
            bw = read_bandwidth(nb, a.threads)
            us = s[f"rnnkit_{w}_s"] / a.sample_length * 1e6
            bound = nb / bw * 1e6
            print(f"  {w}: {us:.1f} us/char, {s[f'speedup_{w}']:.1f}x torch; {nb / 1e6:.2f} MB of weights per char, "
                  f"read bandwidth at that size {bw / 1e9:.0f} GB/s -> bound {bound:.1f} us/char, "
                  f"{bound / us:.0%} of it")
        dram = read_bandwidth(1 << 30, a.threads)
        print(f"  (read bandwidth of a 1 GiB buffer, i.e. from memory: {dram / 1e9:.0f} GB/s)")
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
