"""Draw bench/hosts/HOST/seq2seq_reverse.png from the metrics.jsonl of two `rnnkit train-seq2seq --task reverse` runs,
with and without attention (the commands are in bench/hosts/amd-epyc/SEQ2SEQ.md).

    python bench/scripts/seq2seq_reverse.py RUN_WITH_ATTENTION RUN_WITHOUT --out FILE.png

(--out is required, so that no run overwrites the picture kept in bench/hosts/ by accident.)
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(directory):
    with open(os.path.join(directory, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("attention", help="output directory of the run with attention")
    p.add_argument("plain", help="output directory of the run without attention")
    p.add_argument("--out", required=True, help="the PNG to write, e.g. bench/hosts/amd-epyc/seq2seq_reverse.png")
    a = p.parse_args()
    runs = [("with attention", rows(a.attention)), ("without attention", rows(a.plain))]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for (label, r), color in zip(runs, ("tab:blue", "tab:orange")):
        minutes = [x["elapsed_s"] / 60 for x in r]
        axes[0].plot(minutes, [x["val_exact_match"] for x in r], color=color, marker=".", label=f"{label}: exact match")
        axes[0].plot(minutes, [x["val_token_acc"] for x in r], color=color, ls="--",
                     label=f"{label}: token accuracy")
        axes[1].plot(minutes, [x["val_loss"] for x in r], color=color, marker=".", label=label)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("validation accuracy")
    axes[1].set_ylabel("validation loss (nats per target token)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("training minutes (one thread; the two runs side by side on 2 cores)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("reverse strings of 20-30 letters: seq2seq with and without attention")
    fig.tight_layout()
    fig.savefig(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
