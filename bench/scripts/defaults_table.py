"""The before/after table of bench/hosts/amd-epyc/DEFAULTS.md from the default runs' directories.

    python bench/scripts/defaults_table.py BEFORE_DIR AFTER_DIR

Each DIR holds, per run NAME (charlm, addition, addition3, dates, reverse), the run directory NAME/ (its
metrics.jsonl) and NAME.log: the command's output, with lines "== NAME start HH:MM:SS load: a b c" and
"== NAME end ...", and last the JSON line of `rnnkit eval-charlm ... --json` (bits per character of a file
from outside the standard library) or `rnnkit eval-seq2seq ... --json` (test split), as bench/hosts/amd-epyc/DEFAULTS.md's
commands write them.
"""
import json
import os
import re
import sys

RUNS = [("charlm", "train-charlm (4 min)"), ("addition3", "addition, 3 min"), ("addition", "addition, 10 min"),
        ("dates", "dates, 10 min"), ("reverse", "reverse, 10 min")]


def read(directory, name):
    path = os.path.join(directory, name, "metrics.jsonl")
    if not os.path.isfile(path):
        return None
    rows = [json.loads(line) for line in open(path) if line.strip()]
    log = open(os.path.join(directory, name + ".log")).read()
    loads = re.findall(r"== \S+ (start|end) (\S+) load: ([\d.]+)", log)
    evals = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return rows, loads, evals[-1] if evals else None


def describe(rows, loads, ev, charlm):
    last = rows[-1]
    best = next((r for r in rows if r.get("best")), None)
    load = "-".join(v for _, _, v in loads)
    if charlm:
        final = last.get("full_val_bpc", last["val_bpc"])
        kept = best.get("full_val_bpc", best["val_bpc"]) if best else final
        step = best["step"] if best else last["step"]
        return (f"{last['step']:,} in {last['elapsed_s']:.0f} s | {last['chars_per_s']:,.0f} chars/s | {final:.3f} | step {step:,}: {kept:.3f} | "
                f"{ev['bpc']:.3f} | {load}")
    key = "full_val_exact_match" if "full_val_exact_match" in last else "val_exact_match"
    step = best["step"] if best else last["step"]
    kept = (best.get(key, best["val_exact_match"]) if best else last[key])
    return (f"{last['step']:,} in {last['elapsed_s']:.0f} s | {last['examples_per_s']:,.0f} ex/s | {last[key]:.3f} | step {step:,}: {kept:.3f} | "
            f"{ev['exact_match']:.4f} | {load}")


def main(before, after):
    print("| run | code | steps in time | training speed (last interval) | final validation | model kept (validation) "
          "| bits/char outside the stdlib, or test exact match | load (1-min, start-end) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, title in RUNS:
        for label, directory in (("before", before), ("after", after)):
            got = read(directory, name)
            cells = describe(*got, name == "charlm") if got and got[2] else "not run | | | | |"
            print(f"| {title} | {label} | {cells} |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
