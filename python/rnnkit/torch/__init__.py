"""rnnkit's kernels inside PyTorch: drop-in replacements for torch.nn.RNN, LSTM and GRU.

Install with ``pip install "rnnkit[torch]"``; ``import rnnkit`` alone never imports torch. Swap one line::

    from rnnkit.torch import GRU  # instead of torch.nn.GRU

The modules are torch.nn.Modules with torch.nn's constructor, parameter names, state_dict (loads from and
into torch.nn's), forward arguments, shapes and return values (batch_first, bidirectional, stacks,
dropout between layers, unbatched input, PackedSequence in and out). Gradients flow through rnnkit's
backward to the input, the initial states and every parameter, so torch optimisers,
``clip_grad_norm_`` and ``torch.save`` work as usual. CPU float32 and float64 tensors only.
"""
try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError('rnnkit.torch needs PyTorch: pip install "rnnkit[torch]"') from exc

from .modules import GRU, LSTM, RNN

__all__ = ["RNN", "LSTM", "GRU"]
