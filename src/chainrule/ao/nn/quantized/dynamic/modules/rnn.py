"""torch.ao.nn.quantized.dynamic.LSTM and GRU, and the cells LSTMCell, GRUCell and RNNCell: recurrent
layers whose gate matrices are qint8 and whose matrix products run as dynamic quantized linear
layers (linear.py).

torch's CPU LSTM (aten RNN.cpp, FullLayer) applies the input-to-hidden product to the whole
sequence at once and the hidden-to-hidden one step by step, so the input is quantized once per
layer from the min/max of the whole sequence and each hidden state from its own; this module
does the same. The gates, cell and hidden updates are float32, in torch's order of operations.
"""

from __future__ import annotations

import numpy as np

from ...... import _dtype
from ......nn.modules.module import Module
from ......nn.modules.rnn import RNNCellBase
from ......ops import quantized as _quantized
from ......ops.random import randn
from ......tensor import Tensor
from .linear import linear_dynamic, quantize_weight

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNNCell"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (np.float32(1.0) / (np.float32(1.0) + np.exp(-x))).astype(np.float32)


def _lstm_step(gates: np.ndarray, h: np.ndarray, c: np.ndarray):
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _gru_step(input_gates: np.ndarray, hidden_gates: np.ndarray, h: np.ndarray) -> np.ndarray:
    # aten's GRUCell: r and z from the summed gates, n = tanh(i_n + r * h_n), h' = (h - n) * z + n
    input_reset, input_update, input_new = np.split(input_gates, 3, axis=-1)
    hidden_reset, hidden_update, hidden_new = np.split(hidden_gates, 3, axis=-1)
    reset = _sigmoid(hidden_reset + input_reset)
    update = _sigmoid(hidden_update + input_update)
    new = np.tanh(input_new + hidden_new * reset)
    return (h - new) * update + new


class LSTM(Module):
    """torch.ao.nn.quantized.dynamic.LSTM (made by ``from_float``); returns ``(output, (h_n, c_n))``."""

    _version = 3
    _GATES = 4
    _MODE = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=_dtype.qint8) -> None:
        super().__init__()
        self.mode = self._MODE
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.dtype = bidirectional, dtype
        self.proj_size = 0
        # one (w_ih, w_hh, b_ih, b_hh) per layer and direction, torch's _all_weight_values order;
        # torch fills them with randn draws quantized at scale 0.1 (from_float then replaces them),
        # so making the module moves the global generator as torch's does
        self._all_weight_values: list[tuple] = []
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            for _ in range(directions):
                layer_input_size = input_size if layer == 0 else hidden_size * directions
                gate_size = self._GATES * hidden_size
                w_ih, w_hh = randn(gate_size, layer_input_size), randn(gate_size, hidden_size)
                b_ih, b_hh = randn(gate_size), randn(gate_size)
                self._all_weight_values.append((
                    *(_quantized.make_quantized(_quantized.quantize_array(w._data, 0.1, 0, _dtype.qint8), _dtype.qint8,
                                                _quantized.per_tensor_affine, 0.1, 0) for w in (w_ih, w_hh)),
                    b_ih._data, b_hh._data))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        if getattr(mod, "proj_size", 0):
            raise NotImplementedError("chainrule's dynamic quantized LSTM has no proj_size")
        qlstm = cls(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias, mod.batch_first, mod.dropout,
                    mod.bidirectional)
        if not mod.bias:  # checked after the placeholder draws, as torch checks it
            raise AssertionError("mod.bias must be True")
        qlstm._all_weight_values = []
        for layer in range(mod.num_layers):
            for suffix in ("", "_reverse")[: 2 if mod.bidirectional else 1]:
                def weight(kind, layer=layer, suffix=suffix):
                    return getattr(mod, f"{kind}_l{layer}{suffix}")
                biases = ((np.asarray(weight("bias_ih").detach()._data, np.float32),
                           np.asarray(weight("bias_hh").detach()._data, np.float32)) if mod.bias else (None, None))
                qlstm._all_weight_values.append(
                    (quantize_weight(weight("weight_ih")), quantize_weight(weight("weight_hh")), *biases))
        return qlstm

    def _get_name(self) -> str:
        return f"DynamicQuantized{self._MODE}"

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text

    def forward(self, input: Tensor, hx=None):
        if input.dim() not in (2, 3):
            raise ValueError(f"{self._MODE}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        x = np.asarray(input._data, dtype=np.float32)
        batched = x.ndim == 3
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        directions = 2 if self.bidirectional else 1
        shape = (self.num_layers * directions, x.shape[1], self.hidden_size)
        initial = self._initial_states(hx, shape)
        finals = [[] for _ in initial]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                sequence = x[::-1] if direction else x
                out, *states = self._run_direction(sequence, [state[index] for state in initial],
                                                   self._all_weight_values[index])
                outputs.append(out[::-1] if direction else out)
                for final, state in zip(finals, states):
                    final.append(state)
            x = np.concatenate(outputs, axis=-1) if directions == 2 else outputs[0]
        output, finals = np.ascontiguousarray(x), [np.stack(final) for final in finals]
        if not batched:
            output, finals = output[:, 0], [final[:, 0] for final in finals]
        elif self.batch_first:
            output = np.ascontiguousarray(output.transpose(1, 0, 2))
        return Tensor._make(output), self._hidden_result([Tensor._make(final) for final in finals])

    @staticmethod
    def _initial_states(hx, shape) -> list:
        if hx is None:
            return [np.zeros(shape, np.float32)] * 2
        return [np.asarray(t._data, np.float32).reshape(shape) for t in hx]

    @staticmethod
    def _hidden_result(finals: list):
        return tuple(finals)

    @staticmethod
    def _run_direction(sequence: np.ndarray, states: list, weights: tuple):
        h, c = states
        weight_ih, weight_hh, bias_ih, bias_hh = weights
        input_gates = linear_dynamic(np.ascontiguousarray(sequence), weight_ih, bias_ih)
        outputs = []
        for step in range(sequence.shape[0]):
            h, c = _lstm_step(linear_dynamic(h, weight_hh, bias_hh) + input_gates[step], h, c)
            outputs.append(h)
        return np.stack(outputs), h, c

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        for index, values in enumerate(self._all_weight_values):
            destination[f"{prefix}_all_weight_values.{index}.param"] = tuple(
                v if v is None or isinstance(v, Tensor) else Tensor._make(v) for v in values)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        loaded = []
        for index in range(len(self._all_weight_values)):
            key = f"{prefix}_all_weight_values.{index}.param"
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                return
            weight_ih, weight_hh, bias_ih, bias_hh = state_dict[key]
            loaded.append((weight_ih, weight_hh, *(None if b is None else np.asarray(b._data, np.float32)
                                                   for b in (bias_ih, bias_hh))))
        self._all_weight_values = loaded


class GRU(LSTM):
    """torch.ao.nn.quantized.dynamic.GRU (made by ``from_float``); returns ``(output, h_n)``."""

    _GATES = 3
    _MODE = "GRU"

    @staticmethod
    def _initial_states(hx, shape) -> list:
        return [np.zeros(shape, np.float32) if hx is None else np.asarray(hx._data, np.float32).reshape(shape)]

    @staticmethod
    def _hidden_result(finals: list):
        return finals[0]

    @staticmethod
    def _run_direction(sequence: np.ndarray, states: list, weights: tuple):
        (h,) = states
        weight_ih, weight_hh, bias_ih, bias_hh = weights
        input_gates = linear_dynamic(np.ascontiguousarray(sequence), weight_ih, bias_ih)
        outputs = []
        for step in range(sequence.shape[0]):
            h = _gru_step(input_gates[step], linear_dynamic(h, weight_hh, bias_hh), h)
            outputs.append(h)
        return np.stack(outputs), h


class _RNNCellBase(Module):
    """torch.ao.nn.quantized.dynamic.RNNCellBase: one step of a cell whose two matrices are qint8,
    each product a dynamic quantized linear (its input quantized from its own min/max); the biases
    travel packed with the weights, as torch's ``_packed_weight_ih`` / ``_packed_weight_hh``."""

    _GATES = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=_dtype.qint8) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias, self.weight_dtype = input_size, hidden_size, bias, dtype
        gate_size = self._GATES * hidden_size
        # torch draws the placeholder biases, then weights (from_float replaces them): the same draws here
        biases = (randn(gate_size)._data, randn(gate_size)._data) if bias else (None, None)
        weights = [_quantized.make_quantized(_quantized.quantize_array(w._data, 1.0, 0, dtype), dtype,
                                             _quantized.per_tensor_affine, 1.0, 0)
                   for w in (randn(gate_size, input_size), randn(gate_size, hidden_size))]
        self._packed_weight_ih = (weights[0], biases[0])
        self._packed_weight_hh = (weights[1], biases[1])

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        cell = cls._like(mod)
        if not mod.bias:  # checked after the placeholder draws, as torch checks it
            raise AssertionError("mod.bias must be True")
        for kind in ("ih", "hh"):
            bias = np.asarray(getattr(mod, f"bias_{kind}").detach()._data, np.float32)
            setattr(cell, f"_packed_weight_{kind}", (quantize_weight(getattr(mod, f"weight_{kind}")), bias))
        return cell

    @classmethod
    def _like(cls, mod):
        return cls(mod.input_size, mod.hidden_size, bias=mod.bias)

    extra_repr = RNNCellBase.extra_repr  # the float cell's: the same sizes, bias and nonlinearity

    def _check_input(self, input: Tensor) -> None:
        if input.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)}, expected {self.input_size}")

    def _zeros(self, input: Tensor) -> np.ndarray:
        return np.zeros((input.size(0), self.hidden_size), np.float32)

    def _gates(self, input: Tensor, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (weight_ih, bias_ih), (weight_hh, bias_hh) = self._packed_weight_ih, self._packed_weight_hh
        return (linear_dynamic(np.asarray(input._data, np.float32), weight_ih, bias_ih),
                linear_dynamic(h, weight_hh, bias_hh))

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        for kind in ("ih", "hh"):
            weight, bias = getattr(self, f"_packed_weight_{kind}")
            destination[f"{prefix}_packed_weight_{kind}"] = (weight, None if bias is None else Tensor._make(bias))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        for kind in ("ih", "hh"):
            key = f"{prefix}_packed_weight_{kind}"
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            weight, bias = state_dict[key]
            setattr(self, key[len(prefix):], (weight, None if bias is None else np.asarray(bias._data, np.float32)))


class LSTMCell(_RNNCellBase):
    """torch.ao.nn.quantized.dynamic.LSTMCell: ``(h', c')`` from ``input`` and ``(h, c)``."""

    def _get_name(self) -> str:
        return "DynamicQuantizedLSTMCell"

    def forward(self, input: Tensor, hx=None):
        self._check_input(input)
        h, c = (self._zeros(input),) * 2 if hx is None else (np.asarray(t._data, np.float32) for t in hx)
        input_gates, hidden_gates = self._gates(input, h)
        h, c = _lstm_step(hidden_gates + input_gates, h, c)
        return Tensor._make(h), Tensor._make(c)


class GRUCell(_RNNCellBase):
    """torch.ao.nn.quantized.dynamic.GRUCell: ``h'`` from ``input`` and ``h``."""

    _GATES = 3

    def _get_name(self) -> str:
        return "DynamicQuantizedGRUCell"

    def forward(self, input: Tensor, hx=None) -> Tensor:
        self._check_input(input)
        h = self._zeros(input) if hx is None else np.asarray(hx._data, np.float32)
        input_gates, hidden_gates = self._gates(input, h)
        return Tensor._make(_gru_step(input_gates, hidden_gates, h))


class RNNCell(_RNNCellBase):
    """torch.ao.nn.quantized.dynamic.RNNCell: ``h' = tanh`` (or relu) ``(W_ih x + b_ih + W_hh h + b_hh)``."""

    _GATES = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype=_dtype.qint8) -> None:
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    @classmethod
    def _like(cls, mod):
        return cls(mod.input_size, mod.hidden_size, bias=mod.bias, nonlinearity=mod.nonlinearity)

    def _get_name(self) -> str:
        return "DynamicQuantizedRNNCell"

    def forward(self, input: Tensor, hx=None) -> Tensor:
        self._check_input(input)
        h = self._zeros(input) if hx is None else np.asarray(hx._data, np.float32)
        input_gates, hidden_gates = self._gates(input, h)
        total = hidden_gates + input_gates
        if self.nonlinearity == "tanh":
            return Tensor._make(np.tanh(total))
        if self.nonlinearity == "relu":
            return Tensor._make(np.maximum(total, np.float32(0)))
        raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
