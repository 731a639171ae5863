"""Draw a comparison of `rnnkit train-captions` runs from their metrics.jsonl: validation exact match and
loss against training steps or minutes (the commands are in bench/hosts/amd-epyc/CAPTIONS.md).

    python bench/scripts/captions_compare.py DIR:LABEL DIR:LABEL ... --title TITLE --out FILE.png [--x minutes]
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
    p.add_argument("runs", nargs="+", metavar="DIR:LABEL", help="a run's output directory and its legend label")
    p.add_argument("--title", default="shapes captions")
    p.add_argument("--x", choices=["steps", "minutes"], default="steps", help="the horizontal axis")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for spec in a.runs:
        directory, _, label = spec.partition(":")
        r = rows(directory)
        xs = [x["step"] if a.x == "steps" else x["elapsed_s"] / 60 for x in r]
        line, = axes[0].plot(xs, [x["val_exact_match"] for x in r], marker=".", label=f"{label}: exact match")
        axes[0].plot(xs, [x["val_token_acc"] for x in r], color=line.get_color(), ls="--",
                     label=f"{label}: token accuracy")
        axes[1].plot(xs, [x["val_loss"] for x in r], color=line.get_color(), marker=".", label=label)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("validation accuracy (greedy)")
    axes[1].set_ylabel("validation loss (nats per caption word)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("training steps" if a.x == "steps" else "training minutes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
