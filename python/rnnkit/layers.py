"""RNN, LSTM, GRU and MUT1-3 layers with torch.nn's API: NumPy in, NumPy out, explicit backward.

A layer stacks ``num_layers`` layers of one or two directions. Every (layer, direction) pair is one call
of the back-end's one-layer ``forward`` / ``backward`` (`rnnkit.kernels`, or `rnnkit.reference` for
checking); this module holds only the glue: layouts, the stacking, bidirectional concatenation,
dropout between layers, parameters and their gradients.

Shape legend: T = time steps, B = batch, I = input_size, H = hidden_size, L = num_layers,
D = 2 if bidirectional else 1, G = gates per cell (1 RNN, 4 LSTM, 3 GRU; the MUT cells' weights have
the blocks their equations have, see `rnnkit._cells.CellSpec`).

Every cell of the registry (`rnnkit._cells.CELLS`) has a layer class: RNN, LSTM and GRU are written
out for torch's extra arguments (nonlinearity, the LSTM's pair of states, linear_before_reset); every
other cell gets a class of the GRU's arguments made from its registry entry (MUT1, MUT2, MUT3).

Differences from torch.nn worth knowing:

* ``backward(dy, dh_n)`` is explicit, after a forward in training mode; parameter gradients
  accumulate into ``m.grads`` (a dict keyed like the state_dict) until ``m.zero_grad()``.
* One backward per forward: backward frees what the forward saved, so a second backward of the same
  forward raises RuntimeError (like torch without ``retain_graph``). So does a backward before any
  forward or after an eval-mode forward.
* Variable lengths are a ``lengths`` argument of ``forward`` instead of a PackedSequence: x stays padded,
  y is zero past each sequence's length and h_n holds each sequence's state at its last valid step.
* Dropout masks come from a NumPy generator seeded from ``seed``, so runs are reproducible.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np

from . import _layer_args as user_args
from ._cells import CELLS, CellSpec, cell_spec
from ._checks import check_recurrent_weights

ArrayLike = Any  # numpy arrays, nested lists, torch tensors: anything np.asarray accepts


def _default_backend():
    # Imported when a layer is built, not when this module is imported, so that the package (and the
    # NumPy reference) stays importable on a machine where the C++ extension is not built yet.
    from . import kernels

    return kernels


class _Saved(NamedTuple):
    """What one training-mode forward leaves for its backward."""

    backend: Any  # the back-end that made the workspaces: only it can read them
    workspaces: List[List[Any]]  # [layer][direction]
    masks: List[Optional[np.ndarray]]  # dropout mask applied to each layer's output, None for none
    T: int
    B: int
    batched: bool
    batch_first: bool
    embedded: bool  # x was a table read through ids: dx is the table's gradient


class RNNBase:
    """The shared implementation of every layer class; they differ only by ``cell`` and, for LSTM, by
    the cell state carried beside h (see `_unpack_state` / `_pack_state`).

    Attributes:
        cell: the kernels' cell ("rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho", "mut1", ...);
            ``mode`` is its former name. spec: its `rnnkit._cells.CellSpec`.
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as constructed.
        dtype: numpy float32 or float64; parameters, outputs and gradients have it, input is converted.
        training: True after construction and ``train()``, False after ``eval()``.
        recurrent_weights: how inference reads W_hh, "float32" or "float16" (set by ``eval``).
        grads: parameter name -> accumulated gradient (same keys and shapes as ``state_dict()``).
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = np.float32,
        seed: Optional[int] = None,
    ) -> None:
        self.cell = cell
        self.spec: CellSpec = cell_spec(cell)
        self.input_size = user_args.positive_int("input_size", input_size)
        self.hidden_size = user_args.positive_int("hidden_size", hidden_size)
        self.num_layers = user_args.positive_int("num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = user_args.dropout_probability(dropout)
        self.bidirectional = bool(bidirectional)
        self._check_direct_input()
        self.dtype = user_args.layer_dtype(dtype)
        if self.dropout > 0 and self.num_layers == 1:
            # Same warning as torch: dropout only acts between layers, so here it does nothing.
            warnings.warn(
                "dropout acts on the outputs of all but the last layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={self.dropout} and num_layers=1",
                UserWarning,
                stacklevel=3,
            )
        self.training = True
        self.recurrent_weights = "float32"
        # One seed gives both streams: the initial weights come from default_rng(seed) itself (as the
        # issue asks), the dropout masks from an independent child of the same SeedSequence.
        seed_seq = np.random.SeedSequence(seed)
        self._shapes = self._parameter_shapes()
        # The kernel arguments' parameter names per [layer][direction], looked up on every call.
        self._names_of = [
            [self._kernel_names(k, d) for d in range(self.num_directions)] for k in range(self.num_layers)
        ]
        self._params = self._initial_parameters(np.random.default_rng(seed_seq))
        self._dropout_rng = np.random.default_rng(seed_seq.spawn(1)[0])
        self.grads: Dict[str, np.ndarray] = {k: np.zeros_like(v) for k, v in self._params.items()}
        self._backend = _default_backend()
        self._saved: Optional[_Saved] = None
        self._no_saved_reason = "backward called before any forward; run forward in training mode first"

    # ------------------------------------------------------------------ parameters

    @property
    def mode(self) -> str:
        """The cell's name under its former name."""
        return self.cell

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.num_directions * self.hidden_size

    def _check_direct_input(self) -> None:
        """A cell that adds x itself to a pre-activation (MUT1's tanh(x), MUT2's r) needs every layer's
        input as wide as its state."""
        if not self.spec.raw_input:
            return
        for layer in range(self.num_layers):
            size = self._layer_input_size(layer)
            if size != self.hidden_size:
                what = "input_size" if layer == 0 else "num_directions * hidden_size, its input"
                raise ValueError(
                    f"{type(self).__name__} layer {layer} reads its input x directly, so its input size must equal "
                    f"hidden_size: got {what} = {size} and hidden_size = {self.hidden_size}"
                )

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def _parameter_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """Parameter names and shapes in torch's order: per layer, per direction, w_ih, w_hh, b_ih, b_hh
        (a cell with one bias vector: w_ih, w_hh, bias)."""
        names = self.spec.parameter_names()
        shapes: Dict[str, Tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            kernel = self.spec.kernel_shapes(self._layer_input_size(layer), self.hidden_size)
            for direction in range(self.num_directions):
                sfx = self._suffix(layer, direction)
                for name, shape in zip(names, kernel.values()):
                    if self.bias or name.startswith("weight"):
                        shapes[name + sfx] = shape
        return shapes

    def _initial_parameters(self, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, drawn in state_dict order, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        return {k: rng.uniform(-bound, bound, shape).astype(self.dtype) for k, shape in self._shapes.items()}

    def _kernel_names(self, layer: int, direction: int) -> Tuple[Optional[str], ...]:
        """The parameter names of the kernel's w_ih, w_hh, b_ih, b_hh for one layer and direction (None for
        an argument the cell or the layer does not have)."""
        sfx = self._suffix(layer, direction)
        full = [n + sfx for n in self.spec.parameter_names()] + [None]
        return tuple(n if n is None or n in self._shapes else None for n in full[:4])

    def _layer_parameters(self, layer: int, direction: int) -> Tuple[np.ndarray, ...]:
        """(w_ih, w_hh, b_ih, b_hh) of one layer and direction; biases None when bias=False, b_hh None for
        a cell with one bias vector."""
        p = self._params
        return tuple(None if n is None else p[n] for n in self._names_of[layer][direction])

    def named_parameters(self) -> Iterator[Tuple[str, np.ndarray]]:
        """Yield (name, array) in state_dict order. The arrays are the layer's own (not copies), so an
        optimiser updates them in place, e.g. ``p -= lr * m.grads[name]``."""
        yield from self._params.items()

    def parameters(self) -> List[np.ndarray]:
        """The layer's own parameter arrays (not copies) in state_dict order."""
        return list(self._params.values())

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of the parameters with torch.nn's keys, shapes and order."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
        """Copy parameters in from ``state_dict`` (NumPy arrays, torch tensors, anything with __array__).

        Strict: a missing or unexpected key raises KeyError and a wrong shape ValueError, naming the key
        and the expected and actual shapes. Nothing is changed unless every entry is valid. Values are
        converted to the layer dtype and copied into the existing arrays (references from
        ``named_parameters()`` stay valid).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}")
        missing = [k for k in self._shapes if k not in state_dict]
        unexpected = [k for k in state_dict if k not in self._shapes]
        if missing or unexpected:
            raise KeyError(
                f"state_dict has missing keys {missing} and unexpected keys {unexpected}; "
                f"expected exactly {list(self._shapes)}"
            )
        converted = {}
        for key, shape in self._shapes.items():
            value = user_args.as_float_array(f"state_dict[{key!r}]", state_dict[key], self.dtype)
            if value.shape != shape:
                raise ValueError(f"state_dict[{key!r}] must have shape {shape}, got {value.shape}")
            converted[key] = value
        for key, value in converted.items():
            np.copyto(self._params[key], value)

    def zero_grad(self) -> None:
        """Set every accumulated gradient in ``grads`` to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    # ------------------------------------------------------------------ modes

    def train(self, mode: bool = True) -> "RNNBase":
        """Training mode (saves what backward needs, applies dropout); returns self."""
        self.training = bool(mode)
        return self

    def eval(self, recurrent_weights: str = "float32") -> "RNNBase":
        """Inference mode (saves nothing, no dropout); returns self.

        recurrent_weights="float16" reads every layer's W_hh as IEEE half in inference (float32 layers;
        W_ih, biases, states and sums stay float32): a batch of one streams W_hh every step, and half the
        bytes make a step up to ~2x faster (``kernels.forward`` has the details). The parameters
        themselves are not changed; ``eval()`` goes back to float32.
        """
        check_recurrent_weights(recurrent_weights, self.dtype, False)
        self.recurrent_weights = recurrent_weights
        return self.train(False)

    # ------------------------------------------------------------------ forward

    def __call__(self, *a: Any, **kw: Any) -> Tuple[np.ndarray, Any]:
        """The same as ``forward``, as with torch modules."""
        return self.forward(*a, **kw)

    def forward(
        self, x: ArrayLike, hx: Any = None, lengths: Optional[ArrayLike] = None, *, ids: Optional[ArrayLike] = None
    ) -> Tuple[np.ndarray, Any]:
        """Run the stack over a sequence.

        Args:
            x: (T, B, I), or (B, T, I) if batch_first, or unbatched (T, I). Converted to ``dtype``.
                With ``ids``, a table (V, I) instead.
            hx: initial state (L*D, B, H) (unbatched: (L*D, H)); None means zeros. LSTM: a pair
                (h_0, c_0), either may be None.
            lengths: (B,) ints in 1..T, or None for all T. y is zero past each length, h_n is the state
                at each sequence's last valid step, the reverse direction starts at it (as a
                PackedSequence does in torch). Unbatched: one int.
            ids: integers in x's layout without the feature axis ((T, B), (B, T) if batch_first,
                unbatched (T,)), or None. Given, the input of each step is the row of the table x they
                name: ``forward(E, ids=i)`` equals ``forward(E[i])`` (an embedding lookup feeding the
                stack) but the first layer projects the V rows of E once instead of every step's input,
                and ``backward`` returns the gradient w.r.t. E, shape (V, I).

        Returns:
            (y, h_n): y (T, B, D*H) (batch_first: (B, T, D*H); unbatched: (T, D*H)), the directions
            concatenated [forward, reverse]; h_n (L*D, B, H) ordered layer 0 forward, layer 0
            reverse, layer 1 forward, ... LSTM returns (y, (h_n, c_n)).
        """
        # Forget the previous forward first: if this one raises, a later backward must not silently
        # run through a stale forward.
        self._saved = None
        self._no_saved_reason = "the last forward raised an exception and saved nothing; run forward again"
        if ids is None:
            x, batched = self._input(x)
            T, B = x.shape[0], x.shape[1]
        else:
            x, ids, batched = self._table_input(x, ids)
            T, B = ids.shape
        h0, c0 = self._unpack_state(hx, ("hx", "h_0", "c_0"), B, batched)
        lengths = self._lengths(lengths, T, B, batched)
        y, h_n, c_n, workspaces, masks = self._forward_stack(x, h0, c0, lengths, ids)
        if self.training:
            self._saved = _Saved(self._backend, workspaces, masks, T, B, batched, self.batch_first, ids is not None)
        else:
            self._no_saved_reason = (
                "backward after a forward in eval mode, which saves nothing for backward; "
                "call train() and run forward again"
            )
        return self._to_user_layout(y, batched, self.batch_first), self._pack_state(h_n, c_n, batched)

    def _x_legend(self, batched: bool) -> str:
        if not batched:
            return "(T, input_size)"
        return "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"

    def _input(self, x: ArrayLike) -> Tuple[np.ndarray, bool]:
        """x as a contiguous (T, B, I) array of the layer dtype, and whether it was batched."""
        x = user_args.as_float_array("x", x, self.dtype)
        if x.ndim not in (2, 3):
            raise ValueError(
                f"x must be 3-D {self._x_legend(True)} or 2-D unbatched (T, input_size), "
                f"got ndim {x.ndim} shape {x.shape}"
            )
        batched = x.ndim == 3
        if x.shape[-1] != self.input_size or 0 in x.shape:
            raise ValueError(
                f"x must have shape {self._x_legend(batched)} with input_size = {self.input_size} and "
                f"at least one step and one batch element, got {x.shape}"
            )
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        return np.ascontiguousarray(x), batched

    def _table_input(self, x: ArrayLike, ids: ArrayLike) -> Tuple[np.ndarray, np.ndarray, bool]:
        """The table x as a contiguous (V, I) array of the layer dtype, ids time-major (T, B), and whether
        ids were batched. The ids' dtype and range are the kernels' check (`_checks.check_ids`)."""
        x = user_args.as_float_array("x", x, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_size or x.shape[0] < 1:
            raise ValueError(
                f"with ids, x must be a table (V, input_size = {self.input_size}) of at least one row, "
                f"got shape {x.shape}"
            )
        ids = np.asarray(ids)
        if ids.ndim not in (1, 2) or 0 in ids.shape:
            legend = "(B, T)" if self.batch_first else "(T, B)"
            raise ValueError(
                f"ids must have shape {legend} or unbatched (T,), with at least one step and one "
                f"batch element, got {ids.shape}"
            )
        batched = ids.ndim == 2
        if not batched:
            ids = ids[:, None]
        elif self.batch_first:
            ids = ids.T
        return np.ascontiguousarray(x), ids, batched

    def _state(self, name: str, value: ArrayLike, B: int, batched: bool) -> np.ndarray:
        """One state (h or c) as a contiguous (L*D, B, H) array; None means zeros."""
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        if value is None:
            return np.zeros((LD, B, H), self.dtype)
        arr = user_args.as_float_array(name, value, self.dtype)
        if batched:
            user_args.check_shape(name, arr, (LD, B, H), "(num_layers * num_directions, B, hidden_size)")
            return arr
        user_args.check_shape(name, arr, (LD, H), "(num_layers * num_directions, hidden_size) for unbatched x")
        return arr[:, None, :].copy()

    def _unpack_state(self, value: Any, names: Tuple[str, str, str], B: int, batched: bool):
        """(h, None) from the user's state argument; `LSTM` overrides this to read the pair (h, c).

        ``names`` is (name of the whole argument, name of h, name of c), for error messages.
        """
        return self._state(names[0], value, B, batched), None

    def _pack_state(self, h: np.ndarray, c: Optional[np.ndarray], batched: bool):
        """The state the user gets back: h (LSTM: (h, c)), without the batch axis if x was unbatched."""
        return h if batched else h[:, 0, :]

    @staticmethod
    def _lengths(lengths: Optional[ArrayLike], T: int, B: int, batched: bool) -> Optional[np.ndarray]:
        if lengths is not None and not batched and np.ndim(lengths) == 0:
            lengths = np.reshape(np.asarray(lengths), (1,))  # unbatched: one int for the one sequence
        return user_args.lengths_array(lengths, T, B)

    def _forward_stack(self, x, h0, c0, lengths, ids=None):
        """Each layer's directions over the previous layer's (dropped-out) output; with ids, the first
        layer's input is the table x read through them.

        Returns y (T, B, D*H), h_n and c_n (L*D, B, H) (c_n None unless LSTM), the workspaces
        [layer][direction] and the dropout masks per layer.
        """
        D, training = self.num_directions, self.training
        h_n = np.empty_like(h0)
        c_n = None if c0 is None else np.empty_like(c0)
        workspaces, masks = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs, layer_ws = [], []
            for direction in range(D):
                k = layer * D + direction
                res = self._backend.forward(
                    self.cell,
                    layer_input,
                    h0[k],
                    *self._layer_parameters(layer, direction),
                    c0=None if c0 is None else c0[k],
                    lengths=lengths,
                    reverse=bool(direction),
                    training=training,
                    ids=ids if layer == 0 else None,
                    recurrent_weights="float32" if training else self.recurrent_weights,
                )
                outputs.append(res.y)
                layer_ws.append(res.workspace)
                h_n[k] = res.h_n
                if c_n is not None:
                    c_n[k] = res.c_n
            y = outputs[0] if D == 1 else np.concatenate(outputs, axis=2)
            mask = self._dropout_mask(y.shape) if layer < self.num_layers - 1 else None
            if mask is not None:
                y = y * mask
            workspaces.append(layer_ws)
            masks.append(mask)
            layer_input = y
        return layer_input, h_n, c_n, workspaces, masks

    def _dropout_mask(self, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
        """Inverted dropout: keep with probability 1-p and scale by 1/(1-p), so eval needs no rescaling.
        None in eval mode or with p = 0 (and then no random numbers are drawn)."""
        if not self.training or self.dropout == 0.0:
            return None
        keep = self._dropout_rng.random(shape) >= self.dropout
        return keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - self.dropout))

    @staticmethod
    def _to_user_layout(a: np.ndarray, batched: bool, batch_first: bool) -> np.ndarray:
        """(T, B, F) to the user's layout: (B, T, F) if batch_first, (T, F) if unbatched."""
        if not batched:
            return a[:, 0, :]
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if batch_first else a

    # ------------------------------------------------------------------ backward

    def backward(self, dy: ArrayLike, dh_n: Any = None, *, projection_grad: bool = False) -> Tuple[np.ndarray, Any]:
        """Back-propagate through the last training-mode forward.

        Args:
            dy: gradient of the loss w.r.t. y, in y's shape and layout (converted to ``dtype``).
            dh_n: gradient w.r.t. h_n, in h_n's shape, or None for zeros. LSTM: a pair (dh_n, dc_n),
                either may be None.
            projection_grad: return, instead of dx, the gradient w.r.t. the first layer's input
                projection x weight_ih_l0^T (weight_ih_l0.shape[0] features in x's layout), and leave
                weight_ih_l0's gradient to the caller (dx = dP weight_ih_l0, and its gradient dP^T x).
                Unidirectional stacks, and cells that do not read x directly (not MUT1, MUT2), only.

        Returns:
            (dx, dh_0): dx in x's shape and layout, dh_0 in h_0's shape. LSTM: (dx, (dh_0, dc_0)).
            Parameter gradients are added to ``grads``.

        Raises:
            RuntimeError: before any forward, after an eval-mode forward, or for a second backward of
                the same forward (backward frees the forward's saved state).
        """
        saved = self._saved
        if saved is None:
            raise RuntimeError(self._no_saved_reason)
        if projection_grad and self.num_directions != 1:
            raise ValueError("projection_grad is for unidirectional stacks (each direction has its own projection)")
        dy = self._grad_output(dy, saved)
        dh, dc = self._unpack_state(dh_n, ("dh_n", "dh_n", "dc_n"), saved.B, saved.batched)
        # Only now, with every argument valid, is the saved state consumed: a caller who fixes a bad
        # dy can retry.
        self._saved = None
        self._no_saved_reason = (
            "backward called twice for one forward; backward frees what the forward saved, so run forward again"
        )
        dx, dh0, dc0 = self._backward_stack(saved, dy, dh, dc, projection_grad)
        if not (saved.embedded and not projection_grad):  # a table's gradient has the table's shape
            dx = self._to_user_layout(dx, saved.batched, saved.batch_first)
        return dx, self._pack_state(dh0, dc0, saved.batched)

    def _grad_output(self, dy: ArrayLike, saved: _Saved) -> np.ndarray:
        """dy as a contiguous (T, B, D*H) array, checked against y's shape in the user's layout."""
        T, B, DH = saved.T, saved.B, self.num_directions * self.hidden_size
        dy = user_args.as_float_array("dy", dy, self.dtype)
        if not saved.batched:
            user_args.check_shape("dy", dy, (T, DH), "(T, num_directions * hidden_size) like y")
            return dy[:, None, :].copy()
        if saved.batch_first:
            user_args.check_shape("dy", dy, (B, T, DH), "(B, T, num_directions * hidden_size) like y")
            return np.ascontiguousarray(dy.transpose(1, 0, 2))
        user_args.check_shape("dy", dy, (T, B, DH), "(T, B, num_directions * hidden_size) like y")
        return dy

    def _backward_stack(self, saved: _Saved, dy, dh_n, dc_n, projection_grad=False):
        """Layers top to bottom: undo the dropout mask, split the output gradient by direction, run the
        one-layer backward of each direction and sum their dx (both read the same input); with
        ``projection_grad`` the first layer returns its projection's gradient."""
        D, H = self.num_directions, self.hidden_size
        dh0 = np.empty_like(dh_n)
        dc0 = None if dc_n is None else np.empty_like(dc_n)
        grad = dy
        for layer in reversed(range(self.num_layers)):
            mask = saved.masks[layer]
            if mask is not None:
                grad = grad * mask
            grad_input = None
            for direction in range(D):
                k = layer * D + direction
                g = saved.backend.backward(
                    saved.workspaces[layer][direction],
                    np.ascontiguousarray(grad[:, :, direction * H : (direction + 1) * H]),
                    dh_n[k],
                    None if dc_n is None else dc_n[k],
                    accumulate_into=self._grads_of(layer, direction),
                    projection_grad=projection_grad and layer == 0,
                )
                grad_input = g.dx if grad_input is None else grad_input + g.dx
                dh0[k] = g.dh0
                if dc0 is not None:
                    dc0[k] = g.dc0
            grad = grad_input
        return grad, dh0, dc0

    def _grads_of(self, layer: int, direction: int) -> tuple:
        """(dw_ih, dw_hh, db_ih, db_hh) of one layer and direction in ``grads``, which backward adds to."""
        return tuple(None if n is None else self.grads[n] for n in self._names_of[layer][direction])

    # ------------------------------------------------------------------ misc

    def _repr_args(self) -> List[str]:
        parts = [str(self.input_size), str(self.hidden_size)]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        if not self.bias:
            parts.append("bias=False")
        if self.batch_first:
            parts.append("batch_first=True")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        if self.bidirectional:
            parts.append("bidirectional=True")
        parts.append(f"dtype={self.dtype.name}")
        return parts

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_args())})"


class RNN(RNNBase):
    """Elman RNN, h_t = nonlinearity(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), like torch.nn.RNN.

    Args:
        input_size: features of x (I). hidden_size: features of h (H). num_layers: stacked layers.
        nonlinearity: "tanh" or "relu". bias: whether the b_ih and b_hh parameters exist.
        batch_first: x and y are (B, T, F) instead of (T, B, F) (h is (L*D, B, H) either way).
        dropout: probability of zeroing each output of every layer but the last, in training mode.
        bidirectional: add a reverse direction per layer. dtype: numpy.float32 or numpy.float64.
        seed: seeds the initial weights and the dropout masks (None: fresh entropy).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = np.float32,
        seed: Optional[int] = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(
            "rnn_" + nonlinearity,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            seed,
        )

    def _repr_args(self) -> List[str]:
        extra = [] if self.nonlinearity == "tanh" else [f"nonlinearity={self.nonlinearity!r}"]
        return super()._repr_args() + extra


class LSTM(RNNBase):
    """LSTM like torch.nn.LSTM (gate rows i, f, g, o); the state is the pair (h, c).

    ``y, (h_n, c_n) = m.forward(x, (h_0, c_0))`` and ``dx, (dh_0, dc_0) = m.backward(dy, (dh_n, dc_n))``;
    otherwise as `RNN` (same arguments without nonlinearity).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = np.float32,
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(
            "lstm",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            seed,
        )

    def forward(
        self,
        x: ArrayLike,
        hx: Optional[Tuple[Optional[ArrayLike], Optional[ArrayLike]]] = None,
        lengths: Optional[ArrayLike] = None,
        *,
        ids: Optional[ArrayLike] = None,
    ) -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """``y, (h_n, c_n) = forward(x, (h_0, c_0), lengths)``; see `RNNBase.forward`."""
        return super().forward(x, hx, lengths, ids=ids)

    def backward(
        self,
        dy: ArrayLike,
        dh_n: Optional[Tuple[Optional[ArrayLike], Optional[ArrayLike]]] = None,
        *,
        projection_grad: bool = False,
    ) -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """``dx, (dh_0, dc_0) = backward(dy, (dh_n, dc_n))``; see `RNNBase.backward`."""
        return super().backward(dy, dh_n, projection_grad=projection_grad)

    def _unpack_state(self, value: Any, names: Tuple[str, str, str], B: int, batched: bool):
        if value is None:
            value = (None, None)
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError(
                f"{names[0]} of an LSTM must be a pair ({names[1]}, {names[2]}) or None, got {type(value).__name__}"
            )
        return self._state(names[1], value[0], B, batched), self._state(names[2], value[1], B, batched)

    def _pack_state(self, h: np.ndarray, c: Optional[np.ndarray], batched: bool):
        return (h, c) if batched else (h[:, 0, :], None if c is None else c[:, 0, :])


class GRU(RNNBase):
    """GRU; gate rows r, z, n as torch.nn.GRU.

    linear_before_reset=True (default) is torch's and cuDNN's form,
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); False is Cho et al. 2014's,
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn) (no torch equivalent). Otherwise as `RNN`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = np.float32,
        seed: Optional[int] = None,
        linear_before_reset: bool = True,
    ) -> None:
        self.linear_before_reset = bool(linear_before_reset)
        super().__init__(
            "gru" if self.linear_before_reset else "gru_cho",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            seed,
        )

    def _repr_args(self) -> List[str]:
        return super()._repr_args() + ([] if self.linear_before_reset else ["linear_before_reset=False"])


def _layer_class(spec: CellSpec) -> type:
    """The layer class of a registry cell with one state and no arguments of its own (the GRU's
    arguments without linear_before_reset), named after the cell ("mut1" -> MUT1)."""
    name = spec.name.upper()

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = np.float32,
        seed: Optional[int] = None,
    ) -> None:
        RNNBase.__init__(
            self, spec.name, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, seed
        )

    from .reference.cells import STEPS

    doc = (
        f"""The {name} cell ("{spec.name}") as a layer, with the arguments and the forward / backward /
    lengths / state semantics of `GRU` (one state h).

    Its step, as `rnnkit.reference.cells.{STEPS[spec.name].forward.__name__}` computes it:
    {STEPS[spec.name].forward.__doc__}
    Parameters per layer k (and _reverse): weight_ih_l{{k}} {spec.gates_ih}*H x I, weight_hh_l{{k}}
    {spec.gates_hh}*H x H, """
        + (
            f"""bias_ih_l{{k}} {spec.bias_ih}*H and bias_hh_l{{k}} {spec.bias_hh}*H"""
            if spec.bias_hh
            else f"""bias_l{{k}} {spec.bias_ih}*H"""
        )
        + (
            """.
    x enters the cell directly, so every layer's input size must equal hidden_size (ValueError
    otherwise)."""
            if spec.raw_input
            else "."
        )
    )
    cls = type(name, (RNNBase,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})
    cls.__init__.__qualname__ = f"{name}.__init__"
    return cls


#: The layer class of every cell of the registry, by cell name.
LAYER_OF_CELL: Dict[str, type] = {"rnn_tanh": RNN, "rnn_relu": RNN, "lstm": LSTM, "gru": GRU, "gru_cho": GRU}
for _spec in CELLS.values():
    if _spec.name not in LAYER_OF_CELL:
        LAYER_OF_CELL[_spec.name] = globals()[_spec.name.upper()] = _layer_class(_spec)

#: The distinct layer classes by lower-case class name ("rnn", "lstm", "gru", "mut1", ...): the CLIs'
#: ``--cell`` choices.
LAYER_CLASSES: Dict[str, type] = {cls.__name__.lower(): cls for cls in dict.fromkeys(LAYER_OF_CELL.values())}

__all__ = ["RNNBase", "LAYER_OF_CELL", "LAYER_CLASSES"] + [cls.__name__ for cls in LAYER_CLASSES.values()]
