"""Learning parity and throughput of rnnkit's character model against an equivalent PyTorch loop.

Both train the same model (embedding 64 -> 2-layer LSTM of 256 -> linear, starting from the same
weights) on the same text, split and batches (char-rnn's B streams with carried state), with Adam 2e-3
and gradient-norm clipping at 5, for the same number of steps, taking turns in blocks of steps so that
both are timed under the same machine conditions; both then measure the loss over the whole validation
part the same way. The script also times sampling 2,000 characters from a 2x512 LSTM:
rnnkit's C++ loop against a PyTorch loop that runs one character per Python iteration.

    python bench/scripts/charlm_parity.py          # the full run (1500 steps: tens of minutes on 2 cores)
    python bench/scripts/charlm_parity.py --steps 50   # a quick check of the script
    python bench/scripts/charlm_parity.py --summarize DIR   # a table of runs kept in DIR

Writes charlm_parity.json and charlm_parity.md under --out (default: bench/hosts/<this host>/, see
bench/INDEX.md for the hosts' names).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numpy as np
import torch

import rnnkit
from rnnkit.bench.machine import cpu_load, cpu_model, git_revision
from rnnkit.bench.peak import measure_peak
from rnnkit.charlm import CharLM
from rnnkit.charlm.data import TrainStreams, default_corpus, eval_chunks, read_texts, split
from rnnkit.charlm.model import single_threaded_blas
from rnnkit.charlm.train import CharLMRun, TrainConfig
from rnnkit.charlm.vocab import Vocab



class TorchCharLM(torch.nn.Module):
    """The same architecture in torch, initialised from an rnnkit CharLM's weights."""

    def __init__(self, m: CharLM):
        super().__init__()
        c = m.config
        V = len(m.vocab)
        self.embed = torch.nn.Embedding(V, c["embed"])
        self.rnn = torch.nn.LSTM(c["embed"], c["hidden"], c["layers"], dropout=c["dropout"])
        self.head = torch.nn.Linear(c["hidden"], V)
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.from_numpy(m.params[name]))

    def forward(self, x, state):
        y, state = self.rnn(self.embed(x), state)
        return self.head(y), state


def torch_val_loss(model: TorchCharLM, ids: np.ndarray, batch: int, seq_len: int) -> float:
    """Mean loss over every next character of ids, chunked exactly as CharLM.nll_sum does."""
    total, count, state = 0.0, 0.0, None
    with torch.no_grad():
        for x, y, w in eval_chunks(ids, batch, seq_len):
            logits, state = model(torch.from_numpy(x.astype(np.int64)), state)
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                    torch.from_numpy(y.reshape(-1).astype(np.int64)),
                                                    reduction="none").double().numpy()
            wt = np.ones_like(nll) if w is None else w.reshape(-1)
            total += float(nll @ wt)
            count += float(wt.sum())
    return total / count


class TorchRun:
    """The PyTorch side: the same streams, initial weights, Adam and clipping, one step at a time."""

    def __init__(self, cfg: TrainConfig, text: str):
        self.cfg = cfg
        train_part, val_part = split(text, cfg.val_frac)
        self.vocab = Vocab.from_text(train_part)
        self.streams = TrainStreams(self.vocab.encode(train_part), cfg.batch, cfg.seq_len)
        self.val_ids = self.vocab.encode(val_part)
        start = CharLM(self.vocab, cfg.cell, cfg.layers, cfg.hidden, cfg.embed, cfg.dropout, np.float32, cfg.seed)
        self.model = TorchCharLM(start)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.state, self.step = None, 0

    def train_step(self) -> float:
        k = self.step % self.streams.num_batches
        if k == 0:
            self.state = None
        x, y = (torch.from_numpy(a.astype(np.int64)) for a in self.streams.batch(k))
        logits, state = self.model(x, self.state)
        self.state = tuple(s.detach() for s in state)
        loss = self.loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.opt.step()
        self.step += 1
        return loss.item()

    def evaluate(self) -> dict:
        return {"val_loss": torch_val_loss(self.model, self.val_ids, self.cfg.batch, self.cfg.seq_len)}


def train_both(cfg: TrainConfig, text: str, block: int) -> dict:
    """Trains rnnkit and torch side by side, alternating blocks of ``block`` steps, so both meet the
    same machine: on a shared machine the speed drifts by 20% over minutes, which would bias two
    runs made one after the other. Each step is timed alone (data, forward, backward, clipping,
    update); evaluation is not timed."""
    runs = {"rnnkit": CharLMRun(cfg, *split(text, cfg.val_frac)), "torch": TorchRun(cfg, text)}
    seconds = {name: [] for name in runs}
    losses = {name: [] for name in runs}
    with single_threaded_blas():
        for first in range(0, cfg.steps, block):
            for name, run in runs.items():
                t0 = time.perf_counter()
                for _ in range(min(block, cfg.steps - first)):
                    losses[name].append(run.train_step())
                seconds[name].append(time.perf_counter() - t0)
        results = {}
        for name, run in runs.items():
            val = run.evaluate()["val_loss"]
            results[name] = {"val_loss": val, "val_bpc": val / math.log(2),
                             "train_loss_last100": float(np.mean(losses[name][-100:])),
                             "chars_per_s": cfg.steps * cfg.batch * cfg.seq_len / sum(seconds[name]),
                             "train_s": sum(seconds[name])}
    ratios = np.array(seconds["torch"]) / np.array(seconds["rnnkit"])
    return {**results, "block_speedups": {"steps_per_block": block, "median": float(np.median(ratios)),
                                          "min": float(ratios.min()), "max": float(ratios.max())},
            "model": runs["rnnkit"].model}


#: The weight storages of CharLM.sample that the sampling benchmark times.
SAMPLING_WEIGHTS = ("float32", "float16", "int8")
#: Validation characters scored with each storage (batch 1, 2x256 LSTM on 2 cores: 16 / 27 / 33 us a
#: character with int8 / float16 / float32).
STORAGE_TEXT_CHARS = 100_000


def storage_bpc(model: CharLM, text: str) -> dict:
    """Bits per character of ``text`` under the trained model as the sampler scores it with each weight
    storage (CharLM.evaluate_as_sampled): what the faster storages cost."""
    return {w: model.evaluate_as_sampled(text, w) for w in SAMPLING_WEIGHTS}


def sampling_speed(vocab: Vocab, length: int) -> dict:
    """Seconds to sample ``length`` characters from a 2x512 LSTM (embedding 64): rnnkit's C++ loop, with
    each weight storage, vs a torch loop with one Python iteration per character (best of 3 each)."""
    m = CharLM(vocab, "lstm", 2, 512, 64, seed=0)
    tm = TorchCharLM(m).eval()

    def torch_sample():
        gen = torch.Generator().manual_seed(0)
        x, state, out = torch.tensor([[vocab.id("\n") or 1]]), None, []
        with torch.no_grad():
            for _ in range(length):
                logits, state = tm(x, state)
                probs = torch.softmax(logits[0, 0] / 0.8, dim=-1)
                nxt = int(torch.multinomial(probs, 1, generator=gen))
                out.append(nxt)
                x = torch.tensor([[nxt]])
        return out

    def best(f):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_rnnkit = {w: best(lambda: m.sample(length, 0.8, seed=0, weights=w)) for w in SAMPLING_WEIGHTS}
    t_torch = best(torch_sample)
    return {"length": length, "torch_s": t_torch, **{f"rnnkit_{w}_s": t for w, t in t_rnnkit.items()},
            **{f"speedup_{w}": t_torch / t for w, t in t_rnnkit.items()}}


def step_gflop(cfg: TrainConfig, V: int) -> float:
    """Multiply-add work of one training step as torch does it, in GFLOP (2 per multiply-add): every GEMM
    of the forward and backward of the LSTM layers and of the output layer, layer 0's input gradient
    included (rnnkit replaces that GEMM with products over V rows). The same count for both frameworks,
    so the rates it gives compare their step times."""
    rows, G = cfg.batch * cfg.seq_len, 4 * cfg.hidden
    flop = 0
    for layer in range(cfg.layers):
        inputs = cfg.embed if layer == 0 else cfg.hidden
        flop += 2 * rows * (inputs + cfg.hidden) * G * 3  # forward, weight gradients, input/state gradients
    flop += 2 * rows * cfg.hidden * V * 3
    return flop / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", nargs="+", help="text file(s) (default: the stdlib corpus of train-charlm)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--block", type=int, default=25, help="steps each framework takes in turn")
    p.add_argument("--sample-length", type=int, default=2000)
    p.add_argument("--out", required=True, help="output path without extension, e.g. bench/hosts/amd-epyc/charlm_parity")
    p.add_argument("--summarize", metavar="DIR", help="print a markdown table of the runs (*.json) in DIR and exit")
    a = p.parse_args()
    if a.summarize:
        print(summary(a.summarize))
        return
    rnnkit.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    text = read_texts(a.text) if a.text else "".join(default_corpus())
    cfg = TrainConfig(cell="lstm", layers=2, hidden=256, embed=64, seq_len=64, batch=32, steps=a.steps,
                      optimizer="adam", lr=2e-3, clip=5.0, clip_mode="norm", val_frac=0.1, eval_every=a.steps,
                      seed=0)
    print(f"text: {len(text):,} characters; {a.steps} steps of {cfg.batch}x{cfg.seq_len}; {a.threads} threads")
    load_start = cpu_load()
    peak_start = measure_peak(a.threads)["gflops"]
    both = train_both(cfg, text, a.block)
    ours, theirs = both["rnnkit"], both["torch"]
    train_part, val_part = split(text, cfg.val_frac)
    scored = val_part[:STORAGE_TEXT_CHARS]
    bpc_by_storage = storage_bpc(both["model"], scored)
    print("bits/char by sampling storage", bpc_by_storage)
    print("rnnkit", ours)
    print("torch ", theirs)
    print("speed-up per block", both["block_speedups"])
    vocab = Vocab.from_text(train_part)
    sampling = sampling_speed(vocab, a.sample_length)
    print("sampling", sampling)
    peak = max(peak_start, measure_peak(a.threads)["gflops"])
    # The speed-up over torch of torch's own GEMM work run at the machine's sgemm peak.
    work = step_gflop(cfg, len(vocab))
    rates = {k: work * both[k]["chars_per_s"] / (cfg.batch * cfg.seq_len) for k in ("rnnkit", "torch")}
    flops = {"step_gflop": work, "sgemm_peak_gflops": peak, **{f"{k}_gflops": v for k, v in rates.items()},
             "ceiling_speedup": peak / rates["torch"]}
    print("GFLOP/s", flops)
    result = {
        "settings": {"text": a.text or "default stdlib corpus", "text_chars": len(text), "steps": a.steps,
                     "embed": 64, "layers": 2, "hidden": 256, "batch": 32, "seq_len": 64, "optimizer": "adam",
                     "lr": 2e-3, "clip": 5.0, "clip_mode": "norm", "val_frac": 0.1, "threads": a.threads,
                     "block": a.block},
        "machine": {"cpu": cpu_model() or platform.machine(), "cores": os.cpu_count(), "git": git_revision(),
                    "torch": torch.__version__, "rnnkit": rnnkit.__version__,
                    # other work on the machine slows multi-threaded timings, torch's and rnnkit's unequally
                    "load_start": load_start, "load_end": cpu_load()},
        "rnnkit": ours, "torch": theirs, "block_speedups": both["block_speedups"], "sampling": sampling,
        "storage_bpc": {"chars": len(scored), **bpc_by_storage},
        "flops": flops,
        "val_loss_ratio": ours["val_loss"] / theirs["val_loss"],
        "train_speedup": ours["chars_per_s"] / theirs["chars_per_s"],
    }
    result["targets"] = {"val_loss_within_3pct": abs(result["val_loss_ratio"] - 1) <= 0.03,
                         "train_speedup_at_least_1.3": result["train_speedup"] >= 1.3,
                         **{f"sampling_speedup_at_least_20_{w}": sampling[f"speedup_{w}"] >= 20
                            for w in SAMPLING_WEIGHTS}}
    with open(a.out + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(a.out + ".md", "w") as f:
        f.write(markdown(result))
    print(f"wrote {a.out}.json and {a.out}.md")


def summary(directory: str) -> str:
    """One row per kept run (its JSON file), oldest first, and the spread of the training speed-up: on a
    shared machine one run's figure says as much about the machine that hour as about the code."""
    rows, speedups = [], []
    def order(name: str):  # "<date>-run<N>.json": by date, then by N as a number
        stem = name[:-5]
        head, _, n = stem.rpartition("-run")
        return (head, int(n)) if n.isdigit() else (stem, 0)

    for name in sorted((n for n in os.listdir(directory) if n.endswith(".json")), key=order):
        with open(os.path.join(directory, name)) as f:
            r = json.load(f)
        git = r["machine"].get("git") or {}
        commit = (git.get("commit") or "?")[:7] + (" dirty" if git.get("dirty") else "")
        f_ = r.get("flops", {})
        gf = lambda k: f"{f_[k]:.0f}" if k in f_ else "-"  # noqa: E731
        int8 = r["sampling"].get("speedup_int8")
        speedups.append(r["train_speedup"])
        rows.append(f"| {name[:-5]} | {commit} | {r['rnnkit']['chars_per_s']:,.0f} | {r['torch']['chars_per_s']:,.0f} | "
                    f"{r['train_speedup']:.2f}x | {r['block_speedups']['median']:.2f}x | {r['val_loss_ratio']:.4f} | "
                    f"{gf('rnnkit_gflops')} / {gf('torch_gflops')} / {gf('sgemm_peak_gflops')} | "
                    f"{'-' if int8 is None else f'{int8:.1f}x'} |")
    s = np.array(speedups)
    return "\n".join([
        f"# Char-LM parity runs in `{directory}`",
        "",
        f"Made by `python bench/scripts/charlm_parity.py --summarize {directory}`. Training speed-up over torch "
        f"(characters/s ratio over the whole run): median {np.median(s):.2f}x, range {s.min():.2f}-{s.max():.2f}x, "
        f"{int(np.sum(s >= 1.3))} of {len(s)} runs at 1.3x or more.",
        "",
        "| run | code | rnnkit chars/s | torch chars/s | speed-up | median block | val loss ratio "
        "| GFLOP/s rnnkit / torch / sgemm peak | int8 sampling |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]) + "\n"


def markdown(r: dict) -> str:
    s, o, t, smp, ok, f = r["settings"], r["rnnkit"], r["torch"], r["sampling"], r["targets"], r["flops"]
    yes = lambda b: "yes" if b else "**no**"  # noqa: E731
    rows = [
        ("final validation loss (nats/char)", f"{o['val_loss']:.4f}", f"{t['val_loss']:.4f}",
         f"{r['val_loss_ratio']:.4f}", f"within 3%: {yes(ok['val_loss_within_3pct'])}"),
        ("validation bits/char", f"{o['val_bpc']:.4f}", f"{t['val_bpc']:.4f}", "", ""),
        ("training characters/s", f"{o['chars_per_s']:,.0f}", f"{t['chars_per_s']:,.0f}",
         f"{r['train_speedup']:.2f}x", f">= 1.3x: {yes(ok['train_speedup_at_least_1.3'])}"),
    ] + [
        (f"sampling {smp['length']} chars, 2x512 LSTM, {w} weights (s)", f"{smp[f'rnnkit_{w}_s']:.3f}",
         f"{smp['torch_s']:.3f}", f"{smp[f'speedup_{w}']:.1f}x",
         f">= 20x: {yes(ok[f'sampling_speedup_at_least_20_{w}'])}")
        for w in SAMPLING_WEIGHTS
    ]
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    sb = r["storage_bpc"]
    storages = ", ".join(f"{w} {sb[w]:.4f}" for w in SAMPLING_WEIGHTS)
    return f"""# Character model: rnnkit against PyTorch

Text: {s['text']} ({s['text_chars']:,} characters, last {s['val_frac']:.0%} for validation).
Model: embedding {s['embed']} -> {s['layers']}-layer LSTM of {s['hidden']} -> linear; batch {s['batch']} streams x
{s['seq_len']} characters, Adam {s['lr']}, clipping {s['clip']} by {s['clip_mode']}, {s['steps']} steps, same initial
weights, {s['threads']} threads; {r['machine']['cpu']}, {r['machine']['cores']} cores, torch {r['machine']['torch']}.
Command: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/scripts/charlm_parity.py --steps {s['steps']} --threads {s['threads']}`.
The two trainings take turns, {s['block']} steps each; speed-up per block (torch time / rnnkit time):
median {r['block_speedups']['median']:.2f}x, range {r['block_speedups']['min']:.2f}-{r['block_speedups']['max']:.2f}x.
A step is {f['step_gflop']:.2f} GFLOP of GEMM work as torch does it (`step_gflop`): at that count rnnkit ran at
{f['rnnkit_gflops']:.0f} GFLOP/s, torch at {f['torch_gflops']:.0f}; this machine's sgemm peak at {s['threads']} threads is
{f['sgemm_peak_gflops']:.0f} GFLOP/s, so that work run at peak would be {f['ceiling_speedup']:.2f}x faster than torch here.
Machine load (1-min load average, CPU pressure %) at start {r['machine']['load_start']}, at end
{r['machine']['load_end']}: speeds measured on a busy machine are noisy.

| | rnnkit | PyTorch | ratio | target |
|---|---|---|---|---|
{table}

What the sampling storages cost: the trained rnnkit model's bits per character on the first {sb['chars']:,}
validation characters, scored by the sampler's loop as one stream (`CharLM.evaluate_as_sampled`): {storages}.
"""


if __name__ == "__main__":
    main()
