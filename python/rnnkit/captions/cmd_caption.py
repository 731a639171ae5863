"""``rnnkit caption DIR --index N``: the caption a trained model writes for one held-out image."""

from __future__ import annotations

from typing import List

from ..cliutil import (
    Parser,
    add_saved_run_arguments,
    check_output_file,
    non_negative_int,
    positive_int,
    require_module,
    run,
)


def main(argv: List[str], prog: str = "rnnkit caption") -> int:
    """``rnnkit caption DIR --index N [--beam K] [--attention-plot out.png]``."""
    p = Parser(
        prog=prog,
        description="Print the caption the model in DIR writes for image N of its held-out "
        "test split (beam search; --beam 1 is greedy), and optionally draw where it looked for each word.",
    )
    add_saved_run_arguments(p)
    p.add_argument("--index", type=non_negative_int, required=True, help="image number in the split (from 0)")
    p.add_argument("--split", choices=["test", "val"], default="test", help="which held-out split (default test)")
    p.add_argument("--beam", type=positive_int, default=5, help="beam size (default 5)")
    p.add_argument("--alpha", type=float, default=0.6, help="GNMT length normalisation exponent (default 0.6)")
    p.add_argument("--max-output", type=positive_int, help="decoding limit in words (default: the training run's)")
    p.add_argument("--references", action="store_true", help="also print the image's reference captions")
    p.add_argument(
        "--attention-plot",
        metavar="FILE.png",
        help="draw the image and, for each word, its attention weights over the regions (default: none)",
    )
    a = p.parse_args(argv)

    def body() -> int:
        from ..models import single_threaded_blas
        from .data import load_data
        from .model import Captioner
        from .train import caption_all

        if a.attention_plot:  # before the work, so a missing package or a bad path costs nothing
            check_output_file(a.attention_plot, "--attention-plot")
            require_module("matplotlib", "--attention-plot")
        model, meta = Captioner.load(a.dir, latest=a.latest)
        if a.attention_plot and model.attention == "none":
            raise ValueError("this model has no attention to plot (it was trained with --attention none)")
        if "data" not in meta:
            raise ValueError(f"{a.dir} does not say what it was trained on")
        data = load_data(meta["data"])
        split = data.test if a.split == "test" else data.val
        if a.index >= len(split):
            raise ValueError(
                f"--index {a.index} is out of range: the {a.split} split has {len(split)} images (0..{len(split) - 1})"
            )
        with single_threaded_blas():
            hyp = caption_all(
                model,
                split.regions[a.index : a.index + 1],
                a.beam,
                a.max_output or int(meta.get("max_len", 50)),
                a.alpha,
                return_attention=bool(a.attention_plot),
            )[0]
        words = model.vocab.decode(hyp.tokens)
        print(" ".join(words))
        if a.references:
            for ref in split.references[a.index]:
                print(f"reference: {' '.join(ref)}")
        if a.attention_plot:
            from .plot import plot_region_attention

            image = None if split.images is None else split.images[a.index]
            labels = words + (["</s>"] if hyp.ended else [])
            plot_region_attention(hyp.attention, labels, a.attention_plot, image, data.grid)
        return 0

    return run(prog, body)
