"""Exact match of a shapes captioning model on its held-out test scenes, broken down by the number of objects
and by whether two objects share colour and shape (the "two red circles" captions), with a few of its
mistakes (the commands are in bench/hosts/amd-epyc/CAPTIONS.md).

    python bench/scripts/captions_breakdown.py DIR [--beam K] [--examples N]
"""
import argparse
from collections import Counter

from rnnkit.captions import shapes
from rnnkit.captions.data import load_data
from rnnkit.captions.model import Captioner
from rnnkit.captions.train import caption_all
from rnnkit.models import single_threaded_blas


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir")
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--examples", type=int, default=8, help="mistakes to print")
    a = p.parse_args()
    model, meta = Captioner.load(a.dir)
    spec = meta["data"]
    if spec.get("task") != "shapes":
        raise SystemExit("the breakdown is for models trained on --task shapes")
    data = load_data(spec)
    scenes = shapes.held_out_scenes(spec["seed"], spec["test"] + spec["val"], spec["min_objects"],
                                    spec["max_objects"])[:spec["test"]]
    with single_threaded_blas():
        hyps = caption_all(model, data.test.regions, a.beam, int(meta.get("max_len", 50)))
    total, right, shown = Counter(), Counter(), 0
    for scene, h, refs in zip(scenes, hyps, data.test.references):
        kinds = Counter((o.colour, o.shape) for o in scene)
        key = (len(scene), "repeated" if max(kinds.values()) > 1 else "distinct")
        total[key] += 1
        ok = model.vocab.decode(h.tokens) == refs[0]
        right[key] += ok
        if not ok and shown < a.examples:
            print(f"  wrote {' '.join(model.vocab.decode(h.tokens))!r}\n  truth {' '.join(refs[0])!r}")
            shown += 1
    print("\n| objects | kinds | scenes | exact match |\n|---|---|---|---|")
    for key in sorted(total):
        print(f"| {key[0]} | {key[1]} | {total[key]} | {right[key] / total[key]:.1%} |")
    print(f"| all | | {sum(total.values())} | {sum(right.values()) / sum(total.values()):.2%} |")


if __name__ == "__main__":
    main()
