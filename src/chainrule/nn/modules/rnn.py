"""Recurrent layers: RNN (tanh/relu), LSTM, GRU and their single-step cells, torch's layout.

Each (layer, direction) runs as one fused op: the input projections of all time steps are one
GEMM up front, then a loop over time does the recurrent GEMM and the gate math on arrays. The
backward is backpropagation through time on arrays (the same GEMM layout), so a training step
records one node per layer and direction. That backward is not itself differentiable
(``create_graph=True`` through an RNN raises), unlike torch's CPU RNNs.

Gate orders follow torch: LSTM (i, f, g, o); GRU (r, z, n) with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and ``h' = (1 - z) n + z h``.
"""

from __future__ import annotations

import math

import numpy as np

from ... import _dtype
from ...autograd.function import Function
from ...autograd.grad_mode import state as _grad_state
from ...ops.creation import empty
from ...ops.shape import cat, stack
from ...tensor import Tensor
from .. import init
from ..parameter import Parameter
from ..utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 0.5 (1 + tanh(x / 2)): no overflow for large |x|
    out = np.tanh(x * x.dtype.type(0.5))
    out += 1
    out *= 0.5
    return out


class _RecurrentLayer(Function):
    """One layer in one direction over the whole sequence.

    Inputs: x (T, B, I), w_ih (G H, I), w_hh (G H, H), b_ih, b_hh (G H), h0 (B, H) [, c0 (B, H)].
    Outputs: the hidden states (T, B, H), h_n (B, H) [, c_n (B, H)].
    With ``lengths`` (B,) (a packed batch), sequence b runs only for t < lengths[b]: elsewhere its
    state passes through unchanged and its output is 0, so h_n is the state at its own last step
    in either direction.
    """

    _array_forward = True

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0=None, *, mode, reverse, lengths=None):
        T, B = x.shape[0], x.shape[1]
        H = w_hh.shape[1]
        dtype = x.dtype
        gi = (x.reshape(T * B, -1) @ w_ih.T).reshape(T, B, -1)
        gi += b_ih
        w_hh_t = w_hh.T
        out = np.empty((T, B, H), dtype)
        hs = np.empty((T + 1, B, H), dtype)  # hs[k] is the state before step k of the walk
        h = hs[0]
        h[...] = h0
        steps = range(T - 1, -1, -1) if reverse else range(T)
        saved = {}
        if mode == "GRU":
            r_all = np.empty((T, B, H), dtype)
            z_all = np.empty((T, B, H), dtype)
            n_all = np.empty((T, B, H), dtype)
            ghn_all = np.empty((T, B, H), dtype)
            for k, t in enumerate(steps):
                gh = h @ w_hh_t
                gh += b_hh
                g = gi[t]
                r = _sigmoid(g[:, :H] + gh[:, :H])
                z = _sigmoid(g[:, H:2 * H] + gh[:, H:2 * H])
                ghn = gh[:, 2 * H:]
                n = np.tanh(g[:, 2 * H:] + r * ghn)
                h_new = hs[k + 1]
                np.subtract(h, n, out=h_new)
                h_new *= z
                h_new += n
                r_all[t], z_all[t], n_all[t], ghn_all[t] = r, z, n, ghn
                _hold_ended(t, lengths, (h_new, h))
                out[t] = h_new
                _hold_ended(t, lengths, (out[t], 0))
                h = h_new
            saved = dict(r=r_all, z=z_all, n=n_all, ghn=ghn_all)
            results = (out, h.copy())
        elif mode == "LSTM":
            gates_all = np.empty((T, B, 4 * H), dtype)
            cs = np.empty((T + 1, B, H), dtype)
            c = cs[0]
            c[...] = c0
            for k, t in enumerate(steps):
                gates = h @ w_hh_t
                gates += gi[t]
                gates += b_hh
                gates[:, :2 * H] = _sigmoid(gates[:, :2 * H])
                gates[:, 2 * H:3 * H] = np.tanh(gates[:, 2 * H:3 * H])
                gates[:, 3 * H:] = _sigmoid(gates[:, 3 * H:])
                i, f, gg, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
                c_new = cs[k + 1]
                np.multiply(f, c, out=c_new)
                c_new += i * gg
                h_new = hs[k + 1]
                np.multiply(o, np.tanh(c_new), out=h_new)
                gates_all[t] = gates
                _hold_ended(t, lengths, (h_new, h), (c_new, c))
                out[t] = h_new
                _hold_ended(t, lengths, (out[t], 0))
                h, c = h_new, c_new
            saved = dict(gates=gates_all, cs=cs)
            results = (out, h.copy(), c.copy())
        else:
            relu = mode == "RNN_RELU"
            for k, t in enumerate(steps):
                a = h @ w_hh_t
                a += gi[t]
                a += b_hh
                h_new = hs[k + 1]
                if relu:
                    np.maximum(a, 0, out=h_new)
                else:
                    np.tanh(a, out=h_new)
                _hold_ended(t, lengths, (h_new, h))
                out[t] = h_new
                _hold_ended(t, lengths, (out[t], 0))
                h = h_new
            results = (out, h.copy())
        if getattr(ctx, "recording", True) is False:  # nothing recorded: keep nothing
            return results
        ctx.mode, ctx.reverse, ctx.lengths = mode, reverse, lengths
        ctx.arrays = (x, w_ih, w_hh, hs)
        ctx.saved = saved
        return results

    @staticmethod
    def backward(ctx, grad_out, grad_hn, grad_cn=None):
        if _grad_state.enabled:
            raise RuntimeError(f"{ctx.name()}: the fused recurrent backward is not differentiable "
                               "(create_graph=True through an RNN layer is not supported)")
        x, w_ih, w_hh, hs = ctx.arrays
        mode, s = ctx.mode, ctx.saved
        T, B = x.shape[0], x.shape[1]
        H = w_hh.shape[1]
        dout = grad_out._data
        dh = np.array(grad_hn._data, dtype=x.dtype, copy=True)
        steps = range(T) if ctx.reverse else range(T - 1, -1, -1)
        G = w_hh.shape[0]
        dgh = np.empty((T, B, G), x.dtype)  # gradient of the recurrent pre-activations
        dgi = dgh if mode != "GRU" else np.empty((T, B, G), x.dtype)
        h_index = np.empty(T, dtype=np.int64)  # which hs[k] fed time step t
        k_of = {t: k for k, t in enumerate(range(T - 1, -1, -1) if ctx.reverse else range(T))}
        if mode == "LSTM":
            dc = np.array(grad_cn._data, dtype=x.dtype, copy=True)
            gates_all, cs = s["gates"], s["cs"]
        for t in steps:
            k = k_of[t]
            h_index[t] = k
            # rows whose sequence has ended at t: their state passed through, their output was 0
            ended = None if ctx.lengths is None else t >= ctx.lengths
            dh_through = dh.copy() if ended is not None and ended.any() else None
            if mode == "LSTM" and dh_through is not None:
                dc_through = dc.copy()
            dh += dout[t]
            if mode == "GRU":
                r, z, n, ghn = s["r"][t], s["z"][t], s["n"][t], s["ghn"][t]
                h_prev = hs[k]
                dn = dh * (1 - z)
                dz = dh * (h_prev - n)
                dan = dn * (1 - n * n)
                dar = dan * ghn * r * (1 - r)
                daz = dz * z * (1 - z)
                dgi[t, :, :H] = dar
                dgi[t, :, H:2 * H] = daz
                dgi[t, :, 2 * H:] = dan
                dgh[t, :, :H] = dar
                dgh[t, :, H:2 * H] = daz
                dgh[t, :, 2 * H:] = dan * r
                _hold_ended(t, ctx.lengths, (dgi[t], 0), (dgh[t], 0))
                dh = dh * z + dgh[t] @ w_hh
            elif mode == "LSTM":
                gates = gates_all[t]
                i, f, gg, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
                tc = np.tanh(cs[k + 1])
                dc += dh * o * (1 - tc * tc)
                d = dgh[t]
                d[:, :H] = dc * gg * i * (1 - i)
                d[:, H:2 * H] = dc * cs[k] * f * (1 - f)
                d[:, 2 * H:3 * H] = dc * i * (1 - gg * gg)
                d[:, 3 * H:] = dh * tc * o * (1 - o)
                _hold_ended(t, ctx.lengths, (d, 0))
                dc = dc * f
                dh = d @ w_hh
                if dh_through is not None:
                    dc[ended] = dc_through[ended]
            else:
                h_new = hs[k + 1]
                da = dgh[t]
                if mode == "RNN_RELU":
                    np.multiply(dh, h_new > 0, out=da)
                else:
                    np.multiply(dh, 1 - h_new * h_new, out=da)
                _hold_ended(t, ctx.lengths, (da, 0))
                dh = da @ w_hh
            if dh_through is not None:
                dh[ended] = dh_through[ended]
        h_prev_all = hs[h_index] if T else hs[:0]
        dgi2 = dgi.reshape(T * B, G)
        dgh2 = dgh.reshape(T * B, G)
        need = ctx.needs_input_grad
        dx = Tensor._make((dgi2 @ w_ih).reshape(x.shape)) if need[0] else None
        dw_ih = Tensor._make(dgi2.T @ x.reshape(T * B, -1)) if need[1] else None
        dw_hh = Tensor._make(dgh2.T @ h_prev_all.reshape(T * B, H)) if need[2] else None
        db_ih = Tensor._make(dgi2.sum(0)) if need[3] else None
        db_hh = Tensor._make(dgh2.sum(0)) if need[4] else None
        dh0 = Tensor._make(dh) if need[5] else None
        if mode == "LSTM":
            return dx, dw_ih, dw_hh, db_ih, db_hh, dh0, (Tensor._make(dc) if need[6] else None)
        return dx, dw_ih, dw_hh, db_ih, db_hh, dh0


def _hold_ended(t: int, lengths, *pairs) -> None:
    """For each (target, source) pair, copy source into target's rows of the sequences that have
    ended by step t (``t >= lengths``); nothing when the batch is not packed."""
    if lengths is None:
        return
    ended = t >= lengths
    if ended.any():
        for target, source in pairs:
            target[ended] = source[ended] if isinstance(source, np.ndarray) else source


class _RNN(_RecurrentLayer):
    node_name = "RnnBackward0"


class _LSTM(_RecurrentLayer):
    node_name = "LstmBackward0"


class _GRU(_RecurrentLayer):
    node_name = "GruBackward0"


_LAYER_FN = {"RNN_TANH": _RNN, "RNN_RELU": _RNN, "LSTM": _LSTM, "GRU": _GRU}


def _zeros(shape, like: Tensor) -> Tensor:
    return Tensor._make(np.zeros(shape, dtype=like._data.dtype))


def _run_layer(mode, x, weights, h0, c0, reverse, lengths=None):
    w_ih, w_hh, b_ih, b_hh = weights
    if b_ih is None:
        b_ih = _zeros(w_ih.shape[0], w_ih)
        b_hh = _zeros(w_hh.shape[0], w_hh)
    args = (x, w_ih, w_hh, b_ih, b_hh, h0) + ((c0,) if mode == "LSTM" else ())
    return _LAYER_FN[mode].apply(*args, mode=mode, reverse=reverse, lengths=lengths)


def _factory(device, dtype) -> dict:
    return {"device": device, "dtype": _dtype.to_dtype(dtype) if dtype is not None else None}


class RNNBase(Module):
    """Shared code of RNN, LSTM and GRU: torch's parameter names, shapes, init and forward."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size != 0:
            raise NotImplementedError("chainrule's LSTM does not support proj_size yet")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gate_size = _GATES[mode] * hidden_size
        num_directions = 2 if bidirectional else 1
        kw = _factory(device, dtype)
        self._flat_weights_names = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else hidden_size * num_directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for name, shape in shapes:
                    full = f"{name}_l{layer}{suffix}"
                    setattr(self, full, Parameter(empty(shape, **kw)))
                    self._flat_weights_names.append(full)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    @property
    def all_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """torch packs the weights into one cuDNN buffer here; chainrule reads each weight where
        it is, so there is nothing to pack (torch does nothing on the CPU either)."""

    def _layer_weights(self, layer: int, direction: int) -> tuple:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        if self.bias:
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            return tuple(getattr(self, n + suffix) for n in names)
        return getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix), None, None

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def forward(self, input: Tensor, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        return self._forward_padded(input, hx)

    def _forward_packed(self, input: PackedSequence, hx):
        """A packed batch runs padded, in the caller's batch order, each sequence for its own
        length; the output is packed with the input's batch sizes and permutation."""
        padded, lengths = pad_packed_sequence(input)
        was_batch_first, self.batch_first = self.batch_first, False
        try:
            output, hidden = self._forward_padded(padded, hx, lengths=np.asarray(lengths._data))
        finally:
            self.batch_first = was_batch_first
        data = pack_padded_sequence(output, lengths, enforce_sorted=input.unsorted_indices is None).data
        return PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices), hidden

    def _forward_padded(self, input: Tensor, hx=None, lengths=None):
        is_lstm = self.mode == "LSTM"
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        num_directions = 2 if self.bidirectional else 1
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.shape[-1]}")
        B = input.shape[1]
        state_shape = (self.num_layers * num_directions, B, self.hidden_size)
        if hx is None:
            h0 = _zeros(state_shape, input)
            c0 = _zeros(state_shape, input) if is_lstm else None
        else:
            h0, c0 = hx if is_lstm else (hx, None)
            if not batched:
                if h0.dim() != 2:
                    raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {h0.dim()}-D tensor")
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            elif h0.dim() != 3:
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {h0.dim()}-D tensor")
            for name, state in (("hidden", h0), ("cell", c0)):
                if state is not None and tuple(state.shape) != state_shape:
                    label = "hidden" if name == "hidden" else "cell"
                    raise RuntimeError(f"Expected {label} size {state_shape}, got {list(state.shape)}")
        x = input
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(num_directions):
                idx = layer * num_directions + direction
                results = _run_layer(self.mode, x, self._layer_weights(layer, direction), h0[idx],
                                     c0[idx] if is_lstm else None, reverse=direction == 1, lengths=lengths)
                outputs.append(results[0])
                h_n.append(results[1])
                if is_lstm:
                    c_n.append(results[2])
            x = outputs[0] if num_directions == 1 else cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                from .. import functional as F

                x = F.dropout(x, self.dropout, training=True)
        h_n = stack(h_n, 0)
        c_n = stack(c_n, 0) if is_lstm else None
        if not batched:
            x = x.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if is_lstm else None
        elif self.batch_first:
            x = x.transpose(0, 1)
        return (x, (h_n, c_n)) if is_lstm else (x, h_n)


class RNN(RNNBase):
    """Elman RNN: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` with act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, device=device, dtype=dtype)


class LSTM(RNNBase):
    """LSTM with torch's gate order (i, f, g, o); returns ``(output, (h_n, c_n))``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """GRU with torch's gate order (r, z, n); returns ``(output, h_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class RNNCellBase(Module):
    """One time step: parameters weight_ih (G H, I), weight_hh (G H, H), bias_ih, bias_hh."""

    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, num_chunks: int = 1,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kw = _factory(device, dtype)
        self.weight_ih = Parameter(empty((num_chunks * hidden_size, input_size), **kw))
        self.weight_hh = Parameter(empty((num_chunks * hidden_size, hidden_size), **kw))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, **kw))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _step(self, input: Tensor, hx):
        if input.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} expected "
                               f"{self.input_size}")
        shape = (input.shape[0], self.hidden_size)
        is_lstm = self._mode == "LSTM"
        if hx is None:
            h0 = _zeros(shape, input)
            c0 = _zeros(shape, input) if is_lstm else None
        else:
            h0, c0 = hx if is_lstm else (hx, None)
            if not batched:
                h0 = h0.unsqueeze(0)
                c0 = c0.unsqueeze(0) if c0 is not None else None
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        results = _run_layer(self._mode, input.unsqueeze(0), weights, h0, c0, reverse=False)
        h = results[1] if batched else results[1].squeeze(0)
        if is_lstm:
            return h, (results[2] if batched else results[2].squeeze(0))
        return h


class RNNCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx)


class LSTMCell(RNNCellBase):
    _mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx=None) -> tuple:
        return self._step(input, hx)


class GRUCell(RNNCellBase):
    _mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx)
