"""``rnnkit sample DIR``: print text sampled from a trained character model."""

from __future__ import annotations

import sys
from typing import List

from ..cliutil import add_saved_run_arguments
from .cli import Parser, non_negative_int, positive_int, run


def main(argv: List[str], prog: str = "rnnkit sample") -> int:
    """``rnnkit sample DIR``: print text sampled from a trained character model."""
    p = Parser(prog=prog, description="Print text sampled from the character model saved in DIR.")
    add_saved_run_arguments(p)
    p.add_argument("--length", type=non_negative_int, default=500, help="characters to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = argmax")
    p.add_argument("--top-k", type=positive_int, help="sample only among the K most likely characters (default: all)")
    p.add_argument("--prime", default="", help="text fed to the model first (printed too)")
    p.add_argument("--seed", type=int, help="fixes the output (default: random)")
    p.add_argument(
        "--weights",
        choices=("float32", "float16", "int8"),
        default="float32",
        help="storage of a float32 model's weights while sampling: float16 (half the bytes) and int8 "
        "(a quarter) are faster with AVX-512 where the weights outgrow the caches; their logits "
        "differ by up to ~1e-3 and ~1e-2 relative (see CharLM.sample)",
    )
    a = p.parse_args(argv)

    def body() -> int:
        from .model import CharLM

        if a.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {a.temperature}")
        text = CharLM.load(a.dir, latest=a.latest).sample(a.length, a.temperature, a.top_k, a.prime, a.seed, a.weights)
        sys.stdout.write(text + "\n")
        return 0

    return run(prog, body)
