"""Recurrent layers: RNN (tanh/relu), LSTM, GRU and their single-step cells, torch's layout.

The modules hold torch's parameters and handle the arguments (batch_first, unbatched input,
initial states, stacked layers, bidirectional, dropout between layers, packed sequences); each
(layer, direction) runs as one op, ``ops.rnn.recurrent_layer`` — see that module for the fused
forward, the BPTT backward and its (differentiable) second-order rule. A cell is that op over
one time step.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ... import _dtype
from ..._backend import array_module, autocast_unifies
from ..._dtype import cpp_type_name, scalar_name
from ..._naming import in_torchs_words
from ..._opmath import cpu_autocast_policy
from ..._torch_function import user_stacklevel
from ...autograd import function as _function
from ...autograd.function import name_node
from ...ops._arg_parser import _as_int, check_bool, check_int
from ...ops.creation import zeros
from ...ops.linear import linear
from ...ops.rnn import (
    composed_cell,
    composed_step,
    elman_cell,
    onednn_runs,
    recurrent_layer,
    refuse_lstm_cell_under_vmap,
    warn_cell_run_per_slice,
    warn_projection_composed,
)
from ...ops.shape import cat, stack
from ...tensor import Tensor
from .. import init
from ..parameter import Parameter
from ..utils.rnn import PackedSequence, _refuse_short_steps, padded_by_gather
from .linear import _factory
from .module import Module
from .utils import _checked_empty as empty

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _apply_permutation(tensor: Tensor, permutation: Tensor, dim: int = 1) -> Tensor:
    return tensor.index_select(dim, permutation)


def apply_permutation(tensor: Tensor, permutation: Tensor, dim: int = 1) -> Tensor:
    """``tensor.index_select(dim, permutation)``: the old helper of RNN code that reorders hidden states,
    which torch deprecates (FutureWarning at the caller's line)."""
    warnings.warn("`apply_permutation` is deprecated, please use `tensor.index_select(dim, permutation)` instead",
                  FutureWarning, stacklevel=user_stacklevel())
    return _apply_permutation(tensor, permutation, dim)


def _zeros(shape, like: Tensor) -> Tensor:
    # int(): torch takes hidden_size=True as 1, NumPy refuses a bool in a shape
    shape = tuple(int(n) for n in shape)
    return Tensor._make(array_module(like).zeros(shape, dtype=like._data.dtype))  # on like's device


class RNNBase(Module):
    """Shared code of RNN, LSTM and GRU: torch's parameter names, shapes, init and forward."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        # torch's checks, in torch's order (its float(dropout) comes first: dropout=None is a TypeError)
        dropout_value = float(dropout)
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise in_torchs_words(ValueError("dropout should be a number in range [0, 1] representing the "
                                             "probability of an element being zeroed"))
        for name, value in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(value, bool):
                raise in_torchs_words(TypeError(f"{name} should be of type bool, got: {type(value).__name__}"))
        if dropout > 0 and num_layers == 1:
            # torch warns here (from its own file, as here): dropout only acts between stacked layers
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", UserWarning, stacklevel=1)
        if not isinstance(input_size, int):
            raise in_torchs_words(TypeError(f"input_size should be of type int, got: {type(input_size).__name__}"))
        if input_size <= 0:
            raise in_torchs_words(ValueError("input_size must be greater than zero"))
        if not isinstance(hidden_size, int):
            raise in_torchs_words(TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}"))
        if hidden_size <= 0:
            raise in_torchs_words(ValueError("hidden_size must be greater than zero"))
        if num_layers <= 0:
            raise in_torchs_words(ValueError("num_layers must be greater than zero"))
        # torch compares proj_size before it sizes anything: a zero of any type (0.0, False) means
        # no projection, any other value must be an integer (a one-element integer tensor is one)
        try:
            negative = bool(proj_size < 0)
        except TypeError:
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}") from None
        if negative:
            raise in_torchs_words(ValueError("proj_size should be a positive integer or zero to disable projections"))
        if proj_size >= hidden_size:
            raise in_torchs_words(ValueError("proj_size has to be smaller than hidden_size"))
        projection = 0 if proj_size == 0 else _as_int(proj_size)
        if projection is None:
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
        if mode not in _GATES:  # a user subclassing RNNBase names the mode; torch refuses others here
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = dropout_value
        self.bidirectional = bidirectional
        self.proj_size = projection
        # an Elman RNN's gate size is hidden_size itself, as torch's (a bool one then fails in empty())
        gate_size = hidden_size if _GATES[mode] == 1 else _GATES[mode] * hidden_size
        num_directions = 2 if bidirectional else 1
        kw = _factory(device, dtype)
        # the state h an LSTM with a projection carries (and outputs) is proj_size wide; its cell
        # state stays hidden_size wide
        real_hidden_size = projection or hidden_size
        self._flat_weights_names = []
        self._all_weights = []  # the names, one list per (layer, direction), as torch's
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden_size * num_directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, real_hidden_size)),
                          ("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if projection:
                    shapes.append(("weight_hr", (projection, hidden_size)))
                names = []
                for name, shape in shapes:
                    parameter = Parameter(empty(shape, **kw))
                    if not bias and name.startswith("bias"):
                        continue  # (torch makes a layer's biases without bias too, then leaves them out)
                    full = f"{name}_l{layer}{suffix}"
                    setattr(self, full, parameter)
                    names.append(full)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self._remember_flat_weights()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    @property
    def all_weights(self) -> list:
        """The parameters, one list per (layer, direction) in ``_flat_weights_names``' order."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list:
        # torch keeps this list for its kernels (torch.lstm(input, hx, module._flat_weights, ...))
        assigned = self.__dict__.get("_assigned_flat_weights")
        if assigned is not None:
            return assigned
        return [self._weight(name) for name in self._flat_weights_names]

    @_flat_weights.setter
    def _flat_weights(self, weights) -> None:
        # torch's forward runs on whatever list is assigned here (higher's functional modules assign
        # their fast weights), until a weight attribute is replaced or .to()/.double() runs: then its
        # forward rebuilds the list from the parameters
        self.__dict__["_assigned_flat_weights"] = list(weights)
        self.__dict__["_flat_weights_assigned_over"] = [getattr(self, name) for name in self._flat_weights_names]

    def _remember_flat_weights(self) -> None:
        # torch's forward runs on its _flat_weights list, which only an assignment to a weight's
        # name and .to()/.double() refresh: a weight deleted from the module (awd-lstm's WeightDrop
        # does `del module._parameters['weight_hh_l0']`) is still the one that list holds; one gone
        # when the list is rebuilt is None there, and torch's forward refuses it
        self.__dict__["_flat_weights_seen"] = {name: getattr(self, name, None) for name in self._flat_weights_names}
        self.__dict__["_flat_weights_hold_none"] = None in self.__dict__["_flat_weights_seen"].values()

    def __setattr__(self, name: str, value) -> None:
        if name in self.__dict__.get("_flat_weights_names", ()):
            seen = self.__dict__.get("_flat_weights_seen")
            if seen is not None:
                seen[name] = value
                self.__dict__["_flat_weights_hold_none"] = None in seen.values()
            assigned = self.__dict__.get("_assigned_flat_weights")
            if assigned is not None:
                assigned[self._flat_weights_names.index(name)] = value  # torch keeps its list in step
        super().__setattr__(name, value)

    def _apply(self, fn, recurse: bool = True):
        self.__dict__.pop("_assigned_flat_weights", None)
        module = super()._apply(fn, recurse)
        self._remember_flat_weights()
        return module

    def _weight(self, name: str):
        """The weight the forward runs on: from an assigned ``_flat_weights`` list while the weight
        attributes are still those it was assigned over, else the parameter."""
        assigned = self.__dict__.get("_assigned_flat_weights")
        if assigned is not None:
            over = self.__dict__["_flat_weights_assigned_over"]
            if all(getattr(self, n) is w for n, w in zip(self._flat_weights_names, over)):
                return assigned[self._flat_weights_names.index(name)]
            del self.__dict__["_assigned_flat_weights"]  # torch's forward re-reads the parameters
        try:
            return getattr(self, name)
        except AttributeError:
            if name in self.__dict__.get("_flat_weights_seen", {}):
                return self.__dict__["_flat_weights_seen"][name]
            raise

    def flatten_parameters(self) -> None:
        """torch packs the weights into one cuDNN buffer here; chainrule reads each weight where
        it is, so there is nothing to pack (torch does nothing on the CPU either)."""

    def _layer_weights(self, layer: int, direction: int) -> tuple:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        if self.bias:
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            return tuple(self._weight(n + suffix) for n in names)
        return self._weight("weight_ih" + suffix), self._weight("weight_hh" + suffix), None, None

    def _projection(self, layer: int, direction: int):
        """An LSTM's weight_hr of (layer, direction) (proj_size, hidden_size), or None without one."""
        if not self.proj_size:
            return None
        return self._weight(f"weight_hr_l{layer}" + ("_reverse" if direction == 1 else ""))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:  # (torch's test and words: the value as given, 2 shown as 2)
            s += f", bidirectional={self.bidirectional}"
        return s

    def _refuse_none_weights(self, packed: bool) -> None:
        """torch's errors for a None in its _flat_weights list: the first weight's dtype is read
        before the kernel runs, which names any other by its index in the list."""
        seen = self.__dict__["_flat_weights_seen"]
        for index, name in enumerate(self._flat_weights_names):
            if seen.get(name) is None:
                if index == 0:
                    raise AttributeError("'NoneType' object has no attribute 'dtype'")
                raise TypeError(f"expected Tensor as element {index} in argument {3 if packed else 2}, "
                                "but got NoneType")

    def forward(self, input: Tensor, hx=None):
        if self.__dict__.get("_flat_weights_hold_none"):
            self._refuse_none_weights(isinstance(input, PackedSequence))
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        return self._forward_padded(input, hx)

    def _forward_packed(self, input: PackedSequence, hx):
        """A packed batch runs padded, in the caller's batch order, each sequence for its own
        length; the output is packed with the input's batch sizes and permutation."""
        _refuse_short_steps(np.asarray(input.batch_sizes.tolist(), dtype=np.int64), input.data)
        if hx is not None and input.sorted_indices is not None:
            hx = _hidden_as_permuted(hx, input.sorted_indices)
        padded, lengths = padded_by_gather(input, len(input.batch_sizes))
        was_batch_first, self.batch_first = self.batch_first, False
        try:
            output, hidden = self._forward_padded(padded, hx, lengths=lengths, packing=input)
        finally:
            self.batch_first = was_batch_first
        packed = _packed_like(output, input)
        # torch's packed kernels concatenate the steps' outputs, and index_select the final states of
        # a batch packed unsorted back into the caller's order: the nodes users see are named so
        name_node(packed.data, "CatBackward0")
        if input.unsorted_indices is not None:
            name_node(hidden, "IndexSelectBackward0")
        return packed, hidden

    def _forward_padded(self, input: Tensor, hx=None, lengths=None, packing: PackedSequence | None = None):
        is_lstm = self.mode == "LSTM"
        # torch's lstm()/gru()/rnn_tanh() parse these two as an int and a bool at the first forward
        op = {"LSTM": "lstm", "GRU": "gru"}.get(self.mode, self.mode.lower())
        check_int(self.num_layers, op, "num_layers")
        check_bool(self.bidirectional, op, "bidirectional")
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        if hx is not None and not is_lstm and not isinstance(hx, Tensor):
            # torch's RNN and GRU read hx.dim() next, in Python: an AttributeError, not the argument
            # parser's TypeError (raised by hand, so Module.__call__ leaves it as it is)
            raise AttributeError(f"'{type(hx).__name__}' object has no attribute 'dim'")
        num_directions = 2 if self.bidirectional else 1
        # where a dispatch mode watches, the layers run as torch's CPU kernels show them: a float32 LSTM
        # as oneDNN's one mkldnn_rnn_layer per (layer, direction), the others composed step by step; a
        # batch-first input is transposed after the zero states, as there
        watched = _function.active_dispatch is not None and lengths is None
        onednn = watched and is_lstm and not self.proj_size and onednn_runs(input)
        deferred = watched and batched and self.batch_first
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first and not deferred:
            input = input.transpose(0, 1)
        weight_dtype = self.weight_ih_l0.dtype
        if input.dtype != weight_dtype and not autocast_unifies(input._data):
            # torch's check: the fused kernel would otherwise compute in the wider of the two dtypes
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). "
                             f"Convert input: input.to({weight_dtype}), or convert model: model.to({input.dtype})")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.shape[-1]}")
        if input.shape[1 if deferred else 0] == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        B = input.shape[0 if deferred else 1]
        cell_shape = (self.num_layers * num_directions, B, self.hidden_size)
        state_shape = cell_shape[:2] + (self.proj_size or self.hidden_size,)
        if hx is None and watched:
            h0 = zeros(state_shape, dtype=input.dtype, device=input.device)
            c0 = zeros(cell_shape, dtype=input.dtype, device=input.device) if is_lstm else None
        elif hx is None:
            h0 = _zeros(state_shape, input)
            c0 = _zeros(cell_shape, input) if is_lstm else None
        else:
            # indexed as torch's: a tensor or a 1-tuple for an LSTM's (h0, c0) is an IndexError
            h0, c0 = (hx[0], hx[1]) if is_lstm else (hx, None)
            self._check_state_dims(h0, c0, batched)
            if not batched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            if is_lstm:
                checks = (("hidden[0]", h0, state_shape), ("hidden[1]", c0, cell_shape))
            else:
                checks = (("hidden", h0, state_shape),)
            for label, state, expected in checks:
                if tuple(state.shape) != expected:
                    raise RuntimeError(f"Expected {label} size {expected}, got {list(state.shape)}")
            self._check_state_dtypes(input, h0, c0, packed=lengths is not None)
        if deferred:
            input = input.transpose(0, 1)
        if onednn:  # (oneDNN's kernel takes contiguous tensors)
            input = input.contiguous()
            if hx is not None:
                h0, c0 = h0.contiguous(), c0.contiguous()
        elif watched:
            if is_lstm and self.proj_size and onednn_runs(input):
                warn_projection_composed(input)
            return self._composed_forward(input, h0, c0, batched)
        onednn_call = (self.num_layers, bool(self.bias), bool(self.bidirectional), bool(self.batch_first),
                       self.training) if onednn else None
        x = input
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(num_directions):
                idx = layer * num_directions + direction
                results = recurrent_layer(self.mode, x, *self._layer_weights(layer, direction), h0[idx],
                                          c0[idx] if is_lstm else None, reverse=direction == 1,
                                          lengths=lengths, w_hr=self._projection(layer, direction),
                                          onednn_call=onednn_call)
                outputs.append(results[0])
                h_n.append(results[1])
                if is_lstm:
                    c_n.append(results[2])
            x = outputs[0] if num_directions == 1 else cat(outputs, -1 if onednn else 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = _dropout_between_layers(x, self.dropout, packing)
        h_n = stack(h_n, 0)
        c_n = stack(c_n, 0) if is_lstm else None
        if not batched:
            x = x.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if is_lstm else None
        elif self.batch_first:
            x = x.transpose(0, 1)
            if not is_lstm and x.grad_fn is not None:
                # torch's GRU and RNN kernels transpose their output in place: TransposeBackward1
                name_node(x, "TransposeBackward1", saved=type(x.grad_fn)._torch_saved)
        return (x, (h_n, c_n)) if is_lstm else (x, h_n)

    def _composed_forward(self, input: Tensor, h0: Tensor, c0: Tensor | None, batched: bool) -> tuple:
        """A GRU, RNN or (float64, projected) LSTM over a (time, batch, features) input as torch's CPU
        kernels compose it: the initial states unbound, per (layer, direction) the whole sequence projected
        by weight_ih and unbound into steps (a reverse direction walks them backwards), one
        ``composed_step`` per step, the outputs stacked (and the directions concatenated), an LSTM's final
        cell states stacked before its hidden ones; a batch-first output transposed in place."""
        num_directions = 2 if self.bidirectional else 1
        is_lstm = c0 is not None
        states = h0.unbind(0)
        cells = c0.unbind(0) if is_lstm else None
        x, h_n, c_n = input, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(num_directions):
                idx = layer * num_directions + direction
                w_ih, w_hh, b_ih, b_hh = self._layer_weights(layer, direction)
                w_hr = self._projection(layer, direction)
                steps = linear(x, w_ih, b_ih).unbind(0)
                h, c, hs = states[idx], cells[idx] if is_lstm else None, []
                for step in (reversed(steps) if direction == 1 else steps):
                    if is_lstm:
                        h, c = composed_step(self.mode, step, h, w_hh, b_hh, c, w_hr)
                    else:
                        h = composed_step(self.mode, step, h, w_hh, b_hh)
                    hs.append(h)
                outputs.append(stack(hs[::-1] if direction == 1 else hs))
                h_n.append(h)
                c_n.append(c)
            x = outputs[0] if num_directions == 1 else cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = _dropout_between_layers(x, self.dropout, None)
        c_n = stack(c_n) if is_lstm else None
        h_n = stack(h_n)
        if not batched:
            x, h_n, c_n = x.squeeze(1), h_n.squeeze(1), c_n.squeeze(1) if is_lstm else None
        elif self.batch_first:  # (torch's lstm transposes its output back, gru and rnn in place)
            x = x.transpose(0, 1) if is_lstm else x.transpose_(0, 1)
        return (x, (h_n, c_n)) if is_lstm else (x, h_n)

    def _check_state_dtypes(self, input: Tensor, h0: Tensor, c0: Tensor | None, packed: bool) -> None:
        """torch's refusal of an initial state of another dtype than the weights. Its kernels meet h0
        first in the matmul by weight_hh (addmm, or mm without biases); a float32 LSTM that oneDNN
        runs (unpacked, no projection) refuses either state in oneDNN's words."""
        weight = self.weight_hh_l0
        onednn = (self.mode == "LSTM" and not packed and not self.proj_size and input.device.type == "cpu"
                  and input.dtype == _dtype.float32)
        if onednn:
            for state in (h0, c0):
                if state.dtype == weight.dtype or autocast_unifies(state._data):
                    continue
                if state.dtype in (_dtype.float16, _dtype.bfloat16):
                    raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation "
                                       "primitive. Run workload with environment variable ONEDNN_VERBOSE=all to get "
                                       "additional diagnostic information.")
                raise RuntimeError("get_mkldnn_dtype: unsupported data type")
            return
        if h0.dtype == weight.dtype or autocast_unifies(h0._data):
            return
        if self.bias:
            raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {scalar_name(h0.dtype)} and "
                               f"{scalar_name(weight.dtype)}")
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {cpp_type_name(h0.dtype)} != "
                           f"{cpp_type_name(weight.dtype)}")

    @staticmethod
    def _check_state_dims(h0: Tensor, c0: Tensor | None, batched: bool) -> None:
        """torch's check that the initial state has the input's batchedness (both states of an LSTM)."""
        kind, want = ("batched 3-D", 3) if batched else ("unbatched 2-D", 2)
        if c0 is None:
            if h0.dim() != want:
                raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got {h0.dim()}-D tensor")
        elif h0.dim() != want or c0.dim() != want:
            raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D but got "
                               f"({h0.dim()}-D, {c0.dim()}-D) tensors")


def _dropout_between_layers(x: Tensor, p: float, packing: PackedSequence | None) -> Tensor:
    """Dropout on a layer's (time, batch, features) output. For a packed batch torch draws the
    mask over the packed data (one row per real time step, in packed order), so the same seed drops
    the same units only if the mask is drawn there too, not over the padded block."""
    from .. import functional as F

    if packing is None:
        return F.dropout(x, p, training=True)
    packed = _packed_like(x, packing)
    dropped = packed._replace(data=F.dropout(packed.data, p, training=True))
    return padded_by_gather(dropped, x.shape[0])[0]


def _hidden_as_permuted(hx, sorted_indices: Tensor):
    """The initial states of an unsorted packed batch as torch's permute_hidden leaves them, before
    its checks: index_select(1, sorted_indices) of each, so a state with fewer sequences than the
    batch meets that kernel's error, and one with more keeps the batch's first (this runs in the
    caller's order, where torch's sort and unsort cancel)."""
    order = np.asarray(sorted_indices.tolist(), dtype=np.int64)

    def permuted(h):
        if not isinstance(h, Tensor) or h.dim() != 3:
            return h  # (what the checks after it refuse)
        n = h.shape[1]
        if len(order) and order.max() >= n:
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={order[order >= n][0]} axis_dim={n}")
        return h[:, :len(order)] if n > len(order) else h

    return tuple(permuted(h) for h in hx) if isinstance(hx, tuple) else permuted(hx)


def _packed_like(x: Tensor, packing: PackedSequence) -> PackedSequence:
    """Packs a (time, batch, features) block, in the caller's batch order, with the batch sizes
    and permutation of ``packing`` (not re-sorted: equal lengths keep packing's order)."""
    batch_sizes = np.asarray(packing.batch_sizes.tolist(), dtype=np.int64)
    order = (np.arange(x.shape[1]) if packing.sorted_indices is None
             else np.asarray(packing.sorted_indices.tolist(), dtype=np.int64))
    # step-major (time, sequence) pairs, one gather as pack_padded_sequence does
    time_index = np.repeat(np.arange(len(batch_sizes)), batch_sizes)
    batch_index = order[np.concatenate([np.arange(n) for n in batch_sizes])]
    return packing._replace(data=x[Tensor._make(time_index), Tensor._make(batch_index)])


def _refuse_unknown_options(options: dict) -> None:
    # torch's RNN and GRU take (*args, **kwargs) and refuse a projection by name, as a ValueError
    if "proj_size" in options:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if options:
        raise TypeError(f"RNNBase.__init__() got an unexpected keyword argument {next(iter(options))!r}")


class RNN(RNNBase):
    """Elman RNN: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` with act tanh or relu."""

    _torch_init_owner = "RNNBase"  # torch's RNN, LSTM and GRU pass their arguments on to RNNBase.__init__

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **unknown) -> None:
        _refuse_unknown_options(unknown)
        if nonlinearity not in ("tanh", "relu"):
            raise in_torchs_words(ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."))
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, device=device, dtype=dtype)


class LSTM(RNNBase):
    """LSTM with torch's gate order (i, f, g, o); returns ``(output, (h_n, c_n))``."""

    _torch_init_owner = "RNNBase"  # torch's RNN, LSTM and GRU pass their arguments on to RNNBase.__init__

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """GRU with torch's gate order (r, z, n); returns ``(output, h_n)``."""

    _torch_init_owner = "RNNBase"  # torch's RNN, LSTM and GRU pass their arguments on to RNNBase.__init__

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **unknown) -> None:
        _refuse_unknown_options(unknown)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


def _python_dim(value) -> int:
    """``value.dim()`` as torch's cells read it in Python: a value that is no tensor raises the
    AttributeError torch's forward raises (made here, so Module's TypeError for a C++ op's argument
    does not replace it)."""
    if not isinstance(value, Tensor):
        raise AttributeError(f"'{type(value).__name__}' object has no attribute 'dim'")
    return value.dim()


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
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _step(self, input: Tensor, hx):
        name = type(self).__name__
        if _python_dim(input) not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        is_lstm = self._mode == "LSTM"
        if hx is not None:
            states = list(hx) if is_lstm else [hx]
            for index, state in enumerate(states):
                if _python_dim(state) not in (1, 2):
                    label = f"hx[{index}]" if is_lstm else "hidden"
                    raise ValueError(f"{name}: Expected {label} to be 1D or 2D, got {state.dim()}D instead")
        batched = input.dim() == 2
        if is_lstm and batched and hx is not None:
            # torch hands a batched hx to lstm_cell, whose binding takes a sequence of tensors and
            # then exactly two of them (an unbatched hx is indexed in Python, hx[0] and hx[1])
            if not isinstance(hx, (tuple, list)):
                raise TypeError(f"lstm_cell(): argument 'hx' (position 2) must be tuple of Tensors, "
                                f"not {type(hx).__name__}")
            if len(hx) != 2:
                raise RuntimeError("lstm_cell expects two hidden states")
        if is_lstm:
            refuse_lstm_cell_under_vmap(input, *(hx if hx is not None else ()), self.weight_ih, self.weight_hh,
                                        self.bias_ih, self.bias_hh)
        else:
            warn_cell_run_per_slice(self._mode, input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if not batched:
            input = input.unsqueeze(0)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} expected "
                               f"{self.input_size}")
        if input.dtype != self.weight_ih.dtype and not autocast_unifies(input._data):
            # torch's cells start with the input's matmul by weight_ih
            raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {scalar_name(input.dtype)} and "
                               f"{scalar_name(self.weight_ih.dtype)}")
        shape = (input.shape[0], self.hidden_size)
        watched = _function.active_dispatch is not None
        if hx is None and watched:
            # torch's cells make one zeros for h and c; a dispatch mode sees its aten.zeros
            h0 = c0 = zeros(shape, dtype=input.dtype, device=input.device)
        elif hx is None:
            h0 = _zeros(shape, input)
            c0 = _zeros(shape, input) if is_lstm else None
        else:
            h0, c0 = (hx[0], hx[1]) if is_lstm else (hx, None)
            if not batched:
                h0 = h0.unsqueeze(0)
                c0 = c0.unsqueeze(0) if c0 is not None else None
            # torch's cell checks (ATen's check_rnn_cell_forward_hidden), hidden0 then hidden1
            for index, state in enumerate(s for s in (h0, c0) if s is not None):
                if state.shape[0] != input.shape[0]:
                    raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match hidden{index} batch size "
                                       f"{state.shape[0]}")
                if state.dim() < 2:  # torch's hx.size(1) of a 1-D state
                    raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
                if state.shape[1] != self.hidden_size:
                    raise RuntimeError(f"hidden{index} has inconsistent hidden_size: got {state.shape[1]}, "
                                       f"expected {self.hidden_size}")
                if state.dim() != 2:
                    raise RuntimeError(f"{name}: hidden{index} of shape {list(state.shape)} for an input of "
                                       f"shape {list(input.shape)}; expected ({input.shape[0]}, {self.hidden_size})")
            if h0.dtype != self.weight_hh.dtype and not autocast_unifies(h0._data):  # (its matmul by weight_hh)
                raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {scalar_name(h0.dtype)} and "
                                   f"{scalar_name(self.weight_hh.dtype)}")
        if not is_lstm and self._mode != "GRU":
            h = elman_cell(self._mode, input, h0, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
            return h if batched else h.squeeze(0)
        if watched:  # torch's composition of the cell, op by op, where a mode or wrapper subclass watches
            results = composed_cell(self._mode, input, h0, c0, self.weight_ih, self.weight_hh, self.bias_ih,
                                    self.bias_hh)
            if is_lstm:
                return results if batched else (results[0].squeeze(0), results[1].squeeze(0))
            return results if batched else results.squeeze(0)
        results = recurrent_layer(self._mode, input.unsqueeze(0), self.weight_ih, self.weight_hh, self.bias_ih,
                                  self.bias_hh, h0, c0, cell=True)
        h = results[1] if batched else results[1].squeeze(0)
        if is_lstm:
            return h, (results[2] if batched else results[2].squeeze(0))
        return h


class RNNCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    @property
    def _mode(self) -> str:
        # torch's RNNCell reads its nonlinearity at the forward, so an unknown one fails there
        if self.nonlinearity == "tanh":
            return "RNN_TANH"
        if self.nonlinearity == "relu":
            return "RNN_RELU"
        raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx)


class LSTMCell(RNNCellBase):
    _mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    # torch's lstm_cell is on no CPU autocast list: its gates' matmuls run in the inputs' dtype too
    @cpu_autocast_policy("unlisted")
    def forward(self, input: Tensor, hx=None) -> tuple:
        return self._step(input, hx)


class GRUCell(RNNCellBase):
    _mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    @cpu_autocast_policy("unlisted")  # as LSTMCell's
    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx)
