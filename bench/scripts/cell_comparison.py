"""Char-LM validation bits per character of LSTM, GRU, MUT1, MUT2 and MUT3 at (nearly) equal parameter
count and equal training time, with their training speed.

Each cell gets the hidden size whose model (embedding, recurrent stack, output layer) has the parameter
count closest to the LSTM's at --lstm-hidden, with the embedding as wide as the hidden state (MUT1 and
MUT2 read their input directly, so all five get embed = hidden for equal treatment). The runs go one
after the other under the same conditions (`rnnkit train-charlm --minutes M` on the default corpus,
same seed, batch, sequence length, optimiser); the table reads each run's last validation.

    python bench/scripts/cell_comparison.py --minutes 3 --json bench/hosts/HOST/cell_comparison.json \
        --markdown bench/hosts/HOST/cell_comparison.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

CELLS = ("lstm", "gru", "mut1", "mut2", "mut3")


def parameters(cell: str, V: int, H: int, layers: int) -> int:
    """Parameters of a char-LM with embedding V x H, `layers` layers of `cell` with input H, head H -> V."""
    import math

    from rnnkit.layers import LAYER_CLASSES

    spec = LAYER_CLASSES[cell](1, 1).spec
    per_layer = sum(math.prod(shape) for shape in spec.kernel_shapes(H, H).values())
    return V * H + layers * per_layer + H * V + V


def matched_hidden(cell: str, target: int, V: int, layers: int) -> int:
    """The hidden size (a multiple of 8) whose parameter count is nearest `target`."""
    best = min(range(8, 1025, 8), key=lambda H: abs(parameters(cell, V, H, layers) - target))
    return best


def write_markdown(result: Dict, path: str) -> None:
    """The table of a result: last and best validation, steps, and characters per second over the whole run
    (validation included) and in the last evaluation block."""
    per_step = result["batch"] * result["seq_len"]
    lines = [f"# Char-LM cells at equal parameters and time ({result['minutes']:g} min each)", "",
             f"`{result['command']}` on {result['cpu'] or result['host']}, {result['threads']} threads, the default "
             f"corpus ({result['vocab']} symbols), {result['layers']} layers, embedding = hidden, batch "
             f"{result['batch']} x {result['seq_len']} characters, Adam; runs one after the other, the machine "
             "shared with other work (1-minute load average before each run in the last column).", "",
             "| cell | hidden | parameters | val bits/char (last) | best | steps | chars/s (run) | chars/s (last block) | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['cell']} | {r['hidden']} | {r['parameters']:,} | {r['val_bpc']:.3f} | {r['best_val_bpc']:.3f} | "
              f"{r['steps']} | {r['steps'] * per_step / (result['minutes'] * 60):,.0f} | {r['chars_per_s']:,.0f} | "
              f"{r['load_before']:.1f} |" for r in result["rows"]]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0, help="training time of each run")
    p.add_argument("--lstm-hidden", type=int, default=192, help="the LSTM's hidden size, which sets the budget")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cells", default=",".join(CELLS))
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write the table here")
    p.add_argument("--table-from", metavar="JSON", help="only write --markdown from a saved result")
    a = p.parse_args(argv)
    if a.table_from:
        with open(a.table_from) as f:
            write_markdown(json.load(f), a.markdown)
        return 0

    from rnnkit.charlm.data import default_corpus
    from rnnkit.charlm.vocab import Vocab

    text = default_corpus()
    V = len(Vocab.from_text(text))
    target = parameters("lstm", V, a.lstm_hidden, a.layers)
    rows: List[Dict] = []
    for cell in a.cells.split(","):
        H = a.lstm_hidden if cell == "lstm" else matched_hidden(cell, target, V, a.layers)
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "rnnkit.cli", "train-charlm", "--cell", cell, "--hidden", str(H),
                   "--embed", str(H), "--layers", str(a.layers), "--batch", str(a.batch), "--seq-len",
                   str(a.seq_len), "--minutes", str(a.minutes), "--threads", str(a.threads), "--out", out,
                   "--no-progress", "--seed", "0"]
            load = os.getloadavg()[0]
            started = time.time()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(out, "metrics.jsonl")) as f:
                metrics = [json.loads(line) for line in f]
        last = metrics[-1]
        rows.append({"cell": cell, "hidden": H, "parameters": parameters(cell, V, H, a.layers),
                     "val_bpc": last["val_bpc"], "best_val_bpc": min(m["val_bpc"] for m in metrics),
                     "steps": last["step"], "chars_per_s": last["chars_per_s"], "wall_s": time.time() - started,
                     "load_before": load})
        print(json.dumps(rows[-1]), flush=True)
    result = {"command": "python bench/scripts/cell_comparison.py " + " ".join(argv), "minutes": a.minutes,
              "layers": a.layers, "batch": a.batch, "seq_len": a.seq_len, "threads": a.threads, "vocab": V,
              "host": platform.node(), "cpu": cpu_model(), "rows": rows}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    if a.markdown:
        write_markdown(result, a.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
