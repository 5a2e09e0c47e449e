"""torch.ao.nn.quantized.dynamic.LSTM: an LSTM whose four gate matrices per layer and direction are
qint8 and whose matrix products run as dynamic quantized linear layers (linear.py).

torch's CPU LSTM (aten RNN.cpp, FullLayer) applies the input-to-hidden product to the whole
sequence at once and the hidden-to-hidden one step by step, so the input is quantized once per
layer from the min/max of the whole sequence and each hidden state from its own; this module
does the same. The gates, cell and hidden updates are float32, as torch's.
"""

from __future__ import annotations

import numpy as np

from ...... import _dtype
from ......nn.modules.module import Module
from ......ops import quantized as _quantized
from ......ops.random import randn
from ......tensor import Tensor
from .linear import linear_dynamic, quantize_weight

__all__ = ["LSTM"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (np.float32(1.0) / (np.float32(1.0) + np.exp(-x))).astype(np.float32)


class LSTM(Module):
    """torch.ao.nn.quantized.dynamic.LSTM (made by ``from_float``); returns ``(output, (h_n, c_n))``."""

    _version = 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=_dtype.qint8) -> None:
        super().__init__()
        self.mode = "LSTM"
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
                w_ih, w_hh = randn(4 * hidden_size, layer_input_size), randn(4 * hidden_size, hidden_size)
                b_ih, b_hh = randn(4 * hidden_size), randn(4 * hidden_size)
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
        return "DynamicQuantizedLSTM"

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
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
        x = np.asarray(input._data, dtype=np.float32)
        batched = x.ndim == 3
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        directions = 2 if self.bidirectional else 1
        shape = (self.num_layers * directions, x.shape[1], self.hidden_size)
        if hx is None:
            h0 = c0 = np.zeros(shape, np.float32)
        else:
            h0, c0 = (np.asarray(t._data, np.float32).reshape(shape) for t in hx)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                sequence = x[::-1] if direction else x
                out, h, c = self._run_direction(sequence, h0[index], c0[index], self._all_weight_values[index])
                outputs.append(out[::-1] if direction else out)
                h_n.append(h)
                c_n.append(c)
            x = np.concatenate(outputs, axis=-1) if directions == 2 else outputs[0]
        output, h_n, c_n = np.ascontiguousarray(x), np.stack(h_n), np.stack(c_n)
        if not batched:
            output, h_n, c_n = output[:, 0], h_n[:, 0], c_n[:, 0]
        elif self.batch_first:
            output = np.ascontiguousarray(output.transpose(1, 0, 2))
        return Tensor._make(output), (Tensor._make(h_n), Tensor._make(c_n))

    @staticmethod
    def _run_direction(sequence: np.ndarray, h: np.ndarray, c: np.ndarray, weights: tuple):
        weight_ih, weight_hh, bias_ih, bias_hh = weights
        input_gates = linear_dynamic(np.ascontiguousarray(sequence), weight_ih, bias_ih)
        outputs = []
        for step in range(sequence.shape[0]):
            gates = input_gates[step] + linear_dynamic(h, weight_hh, bias_hh)
            i, f, g, o = np.split(gates, 4, axis=-1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
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
