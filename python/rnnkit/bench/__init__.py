"""``rnnkit bench``: rnnkit's kernels timed against the NumPy reference and torch.nn.

Run ``rnnkit bench --help`` (or ``python -m rnnkit.bench --help``). Modules: ``grid`` (the cases),
``impls`` (the implementations and the correctness check), ``timing`` (interleaved median timing),
``peak`` (the sgemm peak), ``machine`` (versions, CPU, thread settings), ``run`` (the loop),
``report`` (table, JSON, Markdown, plot), ``compare`` (two runs side by side), ``cli`` (arguments).
"""

from .cli import main

__all__ = ["main"]
