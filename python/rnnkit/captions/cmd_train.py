"""``rnnkit train-captions``: train an image captioning model on the shapes task or on features/captions files."""

from __future__ import annotations

from typing import List

from ..cliutil import (
    Parser,
    add_schedule_options,
    add_training_options,
    given_settings,
    positive_int,
    run,
    schedule_settings,
    train_with_options,
)

DEFAULT_MINUTES = 5.0


def main(argv: List[str], prog: str = "rnnkit train-captions") -> int:
    """``rnnkit train-captions (--task shapes | --features F --captions C) [options] --out DIR``."""
    from ..models import LAYER_CLASSES
    from ..rundir import flag
    from ..seq2seq.model import ATTENTIONS
    from .model import ENCODERS, INITS
    from .train import OPTION_NAMES, RESUMABLE, TrainConfig

    d = TrainConfig()
    p = Parser(
        prog=prog,
        description="Train an image captioning model: region features of each image start a "
        "recurrent decoder, which may attend over the regions at every word (Show, Attend and Tell). Data: "
        "the built-in shapes task (generated from --data-seed, no files) or --features FILE.npz with "
        f"--captions FILE.tsv. Without --steps or --minutes it trains for {DEFAULT_MINUTES:g} minutes. "
        "DIR (--out) receives metrics.jsonl, checkpoint.npz (the latest), best.npz (the best validation exact "
        "match, which eval-captions and caption load) and curve.png; a DIR that holds a run needs "
        "--resume or --overwrite.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--task",
        choices=["shapes"],
        help="built-in task: pictures of 1-3 coloured shapes on a 3x3 grid "
        "(no default: --task or --features is needed, except on --resume)",
    )
    src.add_argument(
        "--features", metavar="FILE.npz", help="precomputed image features, (N, F) or (N, P, F) (default: --task)"
    )
    p.add_argument("--captions", metavar="FILE.tsv", help="with --features: image_index<TAB>caption lines (no default)")
    p.add_argument(
        "--min-count",
        type=positive_int,
        help="with --features: words seen fewer times in the training captions become <unk> (default 1)",
    )
    t = p.add_argument_group("shapes task")
    t.add_argument("--image-size", type=positive_int, help="image side in pixels (default 48)")
    t.add_argument(
        "--grid",
        type=positive_int,
        help="regions per side, each ceil(size / grid) pixels (default 3: one region per cell of the objects' grid)",
    )
    t.add_argument("--min-objects", type=positive_int, help="objects per scene, at least (default 1)")
    t.add_argument("--max-objects", type=positive_int, help="objects per scene, at most (default 3)")
    t.add_argument("--val-size", type=positive_int, help="held-out validation scenes (default 500)")
    t.add_argument("--test-size", type=positive_int, help="held-out test scenes (default 1000)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the held-out scenes / the files' split")
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=list(LAYER_CLASSES), default=d.cell)
    m.add_argument("--layers", type=positive_int, default=d.layers)
    m.add_argument("--hidden", type=positive_int, default=d.hidden, help="decoder units")
    m.add_argument("--embed", type=positive_int, default=d.embed)
    m.add_argument(
        "--encoder",
        choices=ENCODERS,
        default=d.encoder,
        help="region features: a learned projection "
        "of the region's pixels (linear) or a two-layer MLP that also sees the image's mean (mlp), each "
        "with a position embedding",
    )
    m.add_argument(
        "--init",
        choices=INITS,
        default=d.init,
        help="the decoder's initial state from the mean region "
        "feature: a projection (linear, c = 0) or Show, Attend and Tell's MLP (mlp, c too)",
    )
    m.add_argument("--feature-size", type=positive_int, help="region feature width (default --hidden)")
    m.add_argument("--attention", choices=ATTENTIONS, default=d.attention, help="attention over the regions")
    m.add_argument(
        "--attn-size", type=positive_int, help="inner width of additive attention (default the feature width)"
    )
    o = p.add_argument_group("training")
    o.add_argument(
        "--teacher-forcing",
        type=float,
        default=d.teacher_forcing,
        help="probability per batch of feeding the gold previous words; otherwise the model's own greedy predictions",
    )
    o.add_argument("--batch", type=positive_int, default=d.batch)
    add_schedule_options(o, d, DEFAULT_MINUTES)
    o.add_argument("--eval-every", type=positive_int, default=d.eval_every)
    o.add_argument(
        "--max-output",
        type=positive_int,
        help="decoding limit in words (default: twice the longest validation caption + 10)",
    )
    add_training_options(
        p,
        d,
        "initial weights, training batches, scheduled sampling",
        "kernel threads (default: OMP_NUM_THREADS or all cores)",
        "captions",
        [flag(f, OPTION_NAMES) for f in RESUMABLE],
    )
    a = p.parse_args(argv)
    data_options = {
        "task",
        "features",
        "captions",
        "min_count",
        "image_size",
        "grid",
        "min_objects",
        "max_objects",
        "val_size",
        "test_size",
        "data_seed",
    }  # compared as the data spec, not as settings
    asked = given_settings(p, argv, TrainConfig, data_options, {"max_output": "max_len"})

    def body() -> int:
        import rnnkit

        from .data import files_spec, shapes_spec
        from .train import train

        shape_opts = {
            "image_size": a.image_size,
            "grid": a.grid,
            "min_objects": a.min_objects,
            "max_objects": a.max_objects,
            "val": a.val_size,
            "test": a.test_size,
        }
        given = {k: v for k, v in shape_opts.items() if v is not None}
        flag = {"val": "--val-size", "test": "--test-size"}
        if a.task is not None:
            if a.captions or a.min_count:
                raise ValueError("--captions and --min-count go with --features, not --task")
            data = shapes_spec(seed=a.data_seed, **given)
        elif a.features is not None:
            if given:
                raise ValueError(
                    f"{', '.join(flag.get(k, '--' + k.replace('_', '-')) for k in given)} only apply to --task shapes"
                )
            if not a.captions:
                raise ValueError("--features needs --captions FILE.tsv")
            data = files_spec(a.features, a.captions, a.min_count or 1, a.data_seed)
        elif a.captions:
            raise ValueError("--captions needs --features FILE.npz")
        elif a.resume:
            data = {}
        else:
            raise ValueError("give --task shapes or --features FILE --captions FILE")
        if a.threads:
            rnnkit.set_num_threads(a.threads)
        cfg = TrainConfig(
            data=data,
            cell=a.cell,
            layers=a.layers,
            hidden=a.hidden,
            embed=a.embed,
            feature_size=a.feature_size,
            encoder=a.encoder,
            init=a.init,
            attention=a.attention,
            attn_size=a.attn_size,
            teacher_forcing=a.teacher_forcing,
            batch=a.batch,
            eval_every=a.eval_every,
            max_len=a.max_output,
            seed=a.seed,
            **schedule_settings(a, d, DEFAULT_MINUTES),
        )
        return train_with_options(train, cfg, a, asked, data)

    return run(prog, body)
