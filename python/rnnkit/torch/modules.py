"""RNN, LSTM and GRU as torch.nn modules that run on rnnkit's kernels.

They subclass torch.nn.RNN / LSTM / GRU, so the constructor, the parameters (names, shapes, initial
values for a given ``torch.manual_seed``), ``state_dict``, ``repr`` and ``isinstance`` checks are
torch's own; only ``forward`` differs: each (layer, direction) is one call of rnnkit's one-layer kernel
(`rnnkit.torch._kernel`), differentiable through rnnkit's backward.

Shape legend: T = time steps, B = batch, I = input_size, H = hidden_size, L = num_layers,
D = 2 if bidirectional else 1.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.nn.utils.rnn import PackedSequence

from ._kernel import run_layer

__all__ = ["RNN", "LSTM", "GRU"]

SUPPORTED_DTYPES = (torch.float32, torch.float64)

Tensor = torch.Tensor
State = Union[Tensor, Tuple[Tensor, Tensor]]


def _check_tensor(owner: str, name: str, t: Any, dtype: Optional[torch.dtype] = None) -> None:
    """TypeError / ValueError naming what rnnkit.torch supports: CPU float32 or float64 tensors, all of
    one dtype (the parameters')."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{owner}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{owner} runs on rnnkit's CPU kernels and takes CPU tensors only; {name} is on {t.device}")
    if t.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{owner} supports torch.float32 and torch.float64 tensors only; {name} has dtype {t.dtype}")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(
            f"{owner}: {name} has dtype {t.dtype} but the parameters have {dtype}; "
            f"convert one of them (module.to({t.dtype}) or tensor.to({dtype}))"
        )


def _packed_indices(batch_sizes: Tensor, sorted_indices: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """For a PackedSequence: the time step and the (original) batch element of each row of its data,
    and each batch element's length (B,) in the original order."""
    batch_sizes = batch_sizes.to(torch.int64)
    T, B = batch_sizes.numel(), int(batch_sizes[0])
    t_idx = torch.repeat_interleave(torch.arange(T), batch_sizes)
    starts = torch.cumsum(batch_sizes, 0) - batch_sizes
    position = torch.arange(t_idx.numel()) - starts[t_idx]  # place within the step, in sorted order
    sorted_lengths = (batch_sizes[None, :] > torch.arange(B)[:, None]).sum(1)
    if sorted_indices is None:
        return t_idx, position, sorted_lengths
    lengths = torch.empty_like(sorted_lengths)
    lengths[sorted_indices] = sorted_lengths
    return t_idx, sorted_indices[position], lengths


class _KernelForward:
    """The forward shared by `RNN`, `LSTM` and `GRU` (mixed in before the torch.nn class)."""

    #: rnnkit's cell of the module (its kernels' one-layer mode)
    cell: str
    #: how a call that records no autograd (``torch.no_grad()``, ``torch.inference_mode()``) reads each
    #: layer's W_hh: "float32", or "float16", rounded to IEEE half (float32 modules; the parameters are not
    #: changed; `rnnkit.kernels.forward` has the details). A call that records autograd reads float32.
    recurrent_weights: str = "float32"

    def _owner(self) -> str:
        return f"rnnkit.torch.{type(self).__name__}"

    def _parameters_of(self, layer: int, direction: int) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        w = (getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx))
        return w + ((getattr(self, "bias_ih" + sfx), getattr(self, "bias_hh" + sfx)) if self.bias else (None, None))

    def _initial_state(self, name: str, value: Optional[Tensor], x: Tensor, batched: bool) -> Tensor:
        """One state (L*D, B, H) from the user's (L*D, B, H), unbatched (L*D, H), or None (zeros)."""
        LD, B, H = self.num_layers * (2 if self.bidirectional else 1), x.shape[1], self.hidden_size
        if value is None:
            return x.new_zeros(LD, B, H)
        _check_tensor(self._owner(), name, value, x.dtype)
        want = (LD, B, H) if batched else (LD, H)
        if tuple(value.shape) != want:
            legend = (
                "(num_layers * num_directions, B, hidden_size)"
                if batched
                else "(num_layers * num_directions, hidden_size) for unbatched input"
            )
            raise ValueError(f"{self._owner()}: {name} must have shape {legend} = {want}, got {tuple(value.shape)}")
        return value if batched else value.unsqueeze(1)

    def _states(self, hx: Any, x: Tensor, batched: bool) -> Tuple[Tensor, Optional[Tensor]]:
        if self.cell != "lstm":
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{self._owner()}: hx must be a tensor or None, got a {type(hx).__name__}")
            return self._initial_state("hx", hx, x, batched), None
        if hx is None:
            hx = (None, None)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{self._owner()}: hx must be a pair (h_0, c_0) or None, got {type(hx).__name__}")
        return self._initial_state("h_0", hx[0], x, batched), self._initial_state("c_0", hx[1], x, batched)

    def forward(self, input: Union[Tensor, PackedSequence], hx: Any = None) -> Tuple[Any, State]:
        """As torch.nn's: input (T, B, I) (batch_first: (B, T, I)), unbatched (T, I), or a PackedSequence;
        hx (L*D, B, H) (unbatched: (L*D, H)), for an LSTM a pair (h_0, c_0); None means zeros.

        Returns (output, h_n) (LSTM: (output, (h_n, c_n))): output (T, B, D*H) (batch_first:
        (B, T, D*H); unbatched (T, D*H); a PackedSequence for a PackedSequence) and h_n (L*D, B, H)
        ordered layer 0 forward, layer 0 reverse, layer 1 forward, ...

        Autograd is recorded when gradients are enabled and the input, the state or a parameter
        requires them; otherwise (``torch.no_grad()``, ``torch.inference_mode()``) the kernels run in
        their inference mode and keep nothing. Dropout between layers acts in training mode.
        """
        owner = self._owner()
        D = 2 if self.bidirectional else 1
        weights = [[self._parameters_of(layer, d) for d in range(D)] for layer in range(self.num_layers)]
        params = [p for per_layer in weights for ps in per_layer for p in ps if p is not None]
        _check_tensor(owner, "the parameters", params[0])
        dtype = params[0].dtype
        for p in params:
            _check_tensor(owner, "a parameter", p, dtype)
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            data = input.data
            _check_tensor(owner, "the PackedSequence's data", data, dtype)
            t_idx, b_idx, lengths_t = _packed_indices(input.batch_sizes, input.sorted_indices)
            T, B = input.batch_sizes.numel(), lengths_t.numel()
            x = data.new_zeros(T, B, data.shape[-1]).index_put((t_idx, b_idx), data)
            batched = True
            if int(lengths_t.min()) < T:
                lengths = lengths_t.numpy()
        else:
            _check_tensor(owner, "input", input, dtype)
            if input.dim() not in (2, 3):
                raise ValueError(
                    f"{owner}: input must be 3-D (batched) or 2-D (unbatched), got shape {tuple(input.shape)}"
                )
            batched = input.dim() == 3
            x = input.transpose(0, 1) if batched and self.batch_first else input
            x = x if batched else x.unsqueeze(1)
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{owner}: input must have input_size = {self.input_size} features, got shape "
                f"{tuple(input.data.shape if packed else input.shape)}"
            )
        h0, c0 = self._states(hx, x, batched)
        record = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in [x, h0, c0, *params])
        y, h_n, c_n = self._stack(x, h0, c0, weights, lengths, record)
        if packed:
            output: Any = PackedSequence(
                y[t_idx, b_idx], input.batch_sizes, input.sorted_indices, input.unsorted_indices
            )
        elif not batched:
            output, h_n = y.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        else:
            output = y.transpose(0, 1) if self.batch_first else y
        return output, (h_n if c_n is None else (h_n, c_n))

    def _stack(
        self,
        x: Tensor,
        h0: Tensor,
        c0: Optional[Tensor],
        weights: List[List[tuple]],
        lengths: Optional[np.ndarray],
        record: bool,
    ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """Layers bottom to top, each direction a kernel call with ``weights[layer][direction]``;
        dropout between layers in training mode."""
        D = 2 if self.bidirectional else 1
        hs: List[Tensor] = []
        cs: List[Tensor] = []
        layer_input = x
        for layer in range(self.num_layers):
            ys = []
            for direction in range(D):
                k = layer * D + direction
                out = run_layer(
                    self.cell,
                    layer_input,
                    h0[k],
                    None if c0 is None else c0[k],
                    weights[layer][direction],
                    lengths,
                    bool(direction),
                    record,
                    self.recurrent_weights,
                )
                ys.append(out[0])
                hs.append(out[1])
                if c0 is not None:
                    cs.append(out[2])
            y = ys[0] if D == 1 else torch.cat(ys, dim=2)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                y = torch.nn.functional.dropout(y, self.dropout, training=True)
            layer_input = y
        return layer_input, torch.stack(hs), (torch.stack(cs) if c0 is not None else None)


class RNN(_KernelForward, torch.nn.RNN):
    """torch.nn.RNN (tanh or relu) on rnnkit's kernels; same constructor, parameters and forward."""

    @property
    def cell(self) -> str:  # type: ignore[override]
        return "rnn_" + self.nonlinearity


class LSTM(_KernelForward, torch.nn.LSTM):
    """torch.nn.LSTM on rnnkit's kernels; same constructor, parameters and forward. ``proj_size`` (LSTM
    with projections) is not supported."""

    cell = "lstm"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.proj_size:
            raise ValueError(
                f"rnnkit.torch.LSTM does not support proj_size (got {self.proj_size}); "
                "use torch.nn.LSTM for an LSTM with projections"
            )


class GRU(_KernelForward, torch.nn.GRU):
    """torch.nn.GRU on rnnkit's kernels; same constructor, parameters and forward.

    One keyword more: ``linear_before_reset=False`` selects the GRU of Cho et al. 2014, whose reset gate
    acts on h before the hidden product, n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), instead of
    torch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) (the default, True). Same parameters.
    """

    def __init__(self, *args: Any, linear_before_reset: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.linear_before_reset = bool(linear_before_reset)

    @property
    def cell(self) -> str:  # type: ignore[override]
        return "gru" if self.linear_before_reset else "gru_cho"

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.linear_before_reset else s + ", linear_before_reset=False"
