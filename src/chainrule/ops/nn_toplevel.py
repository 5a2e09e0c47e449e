"""torch's top-level spellings of the nn ops: torch.batch_norm, torch.layer_norm, torch.embedding, ...

They are the same ops as torch.nn.functional's, with ATen's argument order and flags (weight
before the running statistics, ``train`` for ``training``, ``padding_idx=-1`` for none, the cuDNN
switches, which change nothing here), so each is a one-line call of the functional form.
"""

from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from .. import _dtype
from .._backend import array_module
from .._opmath import cpu_autocast_policy
from ..autograd import function as _function
from ..autograd.function import Function, ctx_value, name_node, saved, without_derivative
from ..tensor import Tensor
from . import dropout as _dropout
from . import embedding as _embedding
from . import embedding_bag as _embedding_bag
from . import normalization as _normalization
from ._arg_parser import check_int, int_list
from .pixel_shuffle import ChannelShuffle

__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "embedding", "embedding_bag", "dropout", "alpha_dropout",
           "feature_dropout", "dropout_", "alpha_dropout_", "feature_dropout_", "feature_alpha_dropout",
           "feature_alpha_dropout_", "native_dropout", "norm_except_dim", "_weight_norm", "native_layer_norm", "native_batch_norm", "constant_pad_nd",
           "convolution", "grid_sampler", "grid_sampler_2d", "grid_sampler_3d", "rnn_tanh", "rnn_relu", "lstm", "gru",
           "rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell", "segment_reduce", "native_channel_shuffle"]
__not_methods__ = set(__all__)


def batch_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
               running_var: Tensor | None, training: bool, momentum: float, eps: float,
               cudnn_enabled: bool = True) -> Tensor:
    """torch.batch_norm: F.batch_norm with the affine parameters first."""
    return _normalization._batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                  running_var: Tensor | None, use_input_stats: bool, momentum: float, eps: float,
                  cudnn_enabled: bool = True) -> Tensor:
    """torch.instance_norm: F.instance_norm with the affine parameters first."""
    return _normalization.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                                        momentum, eps)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5, cudnn_enable: bool = True) -> Tensor:
    """torch.layer_norm: F.layer_norm."""
    return _normalization.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5, cudnn_enabled: bool = True) -> Tensor:
    """torch.group_norm: F.group_norm without its check of one value per group."""
    return _normalization.aten_group_norm(input, num_groups, weight, bias, eps)


def embedding(weight: Tensor, indices: Tensor, padding_idx: int = -1, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """torch.embedding: F.embedding with the weight first; a negative padding_idx means none."""
    return _embedding.embedding(indices, weight, padding_idx if padding_idx >= 0 else None)


def embedding_bag(weight: Tensor, indices: Tensor, offsets: Tensor, scale_grad_by_freq: bool = False,
                  mode: int = 0, sparse: bool = False, per_sample_weights: Tensor | None = None,
                  include_last_offset: bool = False, padding_idx: int | None = None) -> tuple:
    """torch.embedding_bag: F.embedding_bag with the weight first and an int mode (0 sum, 1 mean, 2
    max), returning (output, offset2bag, bag_size, max_indices) as torch's kernel."""
    return _embedding_bag.aten_embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse,
                                             per_sample_weights, include_last_offset, padding_idx)


def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.dropout: F.dropout."""
    return _dropout.dropout(input, p, train)


def alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.alpha_dropout: F.alpha_dropout."""
    return _dropout.alpha_dropout(input, p, train)


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.feature_dropout: one draw per (sample, channel) of an (N, C, *) input."""
    return _dropout.feature_dropout(input, p, train)


# ---- the in-place spellings: the same draws, written into the input (torch.dropout_(x, p, train))
def _in_place(input: Tensor, compute) -> Tensor:
    from .._methods import _inplace

    return _inplace(input, compute)


def dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.dropout_: dropout written into ``input``."""
    return _in_place(input, lambda t: _dropout.dropout(t, p, train))


def alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.alpha_dropout_: alpha dropout written into ``input``."""
    return _in_place(input, lambda t: _dropout.alpha_dropout(t, p, train))


def feature_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.feature_dropout_: feature dropout written into ``input``."""
    return _in_place(input, lambda t: _dropout.feature_dropout(t, p, train))


def feature_alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.feature_alpha_dropout: F.feature_alpha_dropout with ATen's ``train``."""
    return _dropout.feature_alpha_dropout(input, p, train)


def feature_alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """torch.feature_alpha_dropout_: feature alpha dropout written into ``input``."""
    return _in_place(input, lambda t: _dropout.feature_alpha_dropout(t, p, train))


def native_dropout(input: Tensor, p: float, train: bool | None):
    """torch.native_dropout: ``(output, mask)``, mask the bool tensor of the kept elements; not
    training, the output is a copy and the mask all True."""
    xp = array_module(input._data)
    if train is not None and not train:
        return name_node(input.clone(), "NativeDropoutBackward0"), Tensor._make(xp.ones(input._data.shape, dtype=bool))
    _dropout._check_p(p)
    scaled_mask = _dropout._dropout_mask(input, p, tuple(input.shape))  # 1/(1-p) where kept, 0 where dropped
    return _dropout.Dropout.apply(input, mask=scaled_mask), Tensor._make(scaled_mask != 0)


# ---- ATen's native forms, which return their saved statistics (and mask) beside the output
def native_layer_norm(input: Tensor, normalized_shape, weight: Tensor | None, bias: Tensor | None, eps: float):
    """torch.native_layer_norm: ``(output, mean, rstd)``, mean and 1/sqrt(var + eps) over the
    normalised dims, kept as size-1 dims. The statistics carry no gradient (torch defines none)."""
    normalized_shape = int_list(normalized_shape, "native_layer_norm", "normalized_shape", sized=False)
    if _function.active_dispatch is not None:  # (the statistics are read from input's array: a wrapper's handler)
        made = _function.argument_dispatch("native_layer_norm", native_layer_norm,
                                           (input, normalized_shape, weight, bias, eps), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    output = _normalization.layer_norm(input, normalized_shape, weight, bias, eps)
    mean, rstd = _statistics(input, tuple(range(input.ndim - len(normalized_shape), input.ndim)), eps)
    return output, mean, rstd


def _statistics(input: Tensor, dims: tuple, eps: float):
    """The mean and 1/sqrt(biased variance + eps) of ``input`` over ``dims`` (kept), without a gradient."""
    xp = array_module(input._data)
    data = input._data
    dtype = data.dtype
    if input.dtype in (_dtype.float16, _dtype.bfloat16):  # torch's kernels take them in float32
        data = data.astype(np.float32)
    mean = data.mean(axis=dims, keepdims=True)
    rstd = 1 / xp.sqrt(((data - mean) ** 2).mean(axis=dims, keepdims=True) + data.dtype.type(eps))
    return Tensor._make(mean.astype(dtype, copy=False)), Tensor._make(rstd.astype(dtype, copy=False))


def native_batch_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                      running_var: Tensor | None, training: bool, momentum: float, eps: float):
    """torch.native_batch_norm: ``(output, save_mean, save_invstd)``; in training the batch's
    per-channel mean and 1/sqrt(biased var + eps) (the running statistics are updated, as
    F.batch_norm), otherwise two empty tensors, as torch's CPU kernel returns."""
    if not training:  # torch's kernel refuses a lone statistic before _batch_norm's evaluation checks
        _normalization._refuse_one_running_statistic(running_mean, running_var)
    if _function.active_dispatch is not None:  # (the statistics are read from input's array: a wrapper's handler)
        made = _normalization.dispatched_native_batch_norm(input, weight, bias, running_mean, running_var, training,
                                                           momentum, eps)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    output = _normalization._batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    output = name_node(output, "NativeBatchNormBackward0")  # evaluation composes; torch records one node
    xp = array_module(input._data)
    if not training:
        empty = Tensor._make(xp.zeros((0,), dtype=input._data.dtype))
        return output, empty, Tensor._make(xp.zeros((0,), dtype=input._data.dtype))
    if input.dtype in (_dtype.float16, _dtype.bfloat16) and input.numel():  # kept as torch's kernel keeps them
        n, c = input.shape[0], input.shape[1]
        mean, _, rstd = _normalization.half_statistics(input.detach(), (n, c, input.numel() // (n * c)), (0, 2),
                                                       eps, round_stats=True)
        return output, mean.to(input.dtype).reshape(-1), rstd.to(input.dtype).reshape(-1)
    mean, rstd = _statistics(input, (0,) + tuple(range(2, input.ndim)), eps)
    return output, mean.reshape(-1), rstd.reshape(-1)


def _fills(pad) -> bool:
    """Whether a constant pad writes any new element (some pad is positive); True for a malformed
    ``pad``, whose argument checks then raise."""
    try:
        return any(operator.index(p) > 0 for p in pad)
    except TypeError:
        return True


def constant_pad_nd(input: Tensor, pad, value=0) -> Tensor:
    """torch.constant_pad_nd: F.pad with mode 'constant' (pairs from the last dim; negative crops);
    unlike F.pad's float ``value``, a Scalar: complex for a complex input, -1 is 255 in uint8."""
    from .shape import pad as _pad
    from .shape import padded

    if not isinstance(value, (builtins.complex, np.complexfloating)):
        if (type(value) is builtins.int and value < 0 and input.dtype._category == 1 and not input.dtype.is_signed
                and _fills(pad)):
            value = _dtype.checked_scalar(value, input.dtype)  # wrapped here: F.pad's float -1.0 does not fit uint8
        if _function.active_dispatch is not None:  # (a dispatch mode sees the value as given: note_given)
            from .shape import ConstantPad

            _function.note_given(ConstantPad, input, given_value=value)
        return _pad(input, pad, "constant", value)
    if _fills(pad):  # a pad that only crops fills nothing, so torch never converts the value
        value = _dtype.checked_scalar(builtins.complex(value), input.dtype)  # 1j does not fit a real tensor
    if not input.is_complex():
        value = value.real
    return padded(input, int_list(pad, "constant_pad_nd", "pad", sized=False, position=2), "constant", value)


def convolution(input: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation, transposed: bool,
                output_padding, groups: int) -> Tensor:
    """torch.convolution: ATen's one entry to the convolutions — conv1d/2d/3d, or conv_transpose1d/2d/3d
    when ``transposed`` — chosen by the weight's number of spatial dims."""
    from . import conv as _conv

    spatial = weight.ndim - 2
    if spatial not in (1, 2, 3):
        raise RuntimeError(f"convolution: expected a weight of 3, 4 or 5 dims, got {weight.ndim}")
    if transposed:
        function = getattr(_conv, f"conv_transpose{spatial}d")
        return function(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return getattr(_conv, f"conv{spatial}d")(input, weight, bias, stride, padding, dilation, groups)


_INTERPOLATION = ("bilinear", "nearest", "bicubic")
_PADDING = ("zeros", "border", "reflection")


def grid_sampler(input: Tensor, grid: Tensor, interpolation_mode: int, padding_mode: int, align_corners: bool) -> Tensor:
    """torch.grid_sampler: F.grid_sample with ATen's enum codes (interpolation 0 bilinear, 1 nearest,
    2 bicubic; padding 0 zeros, 1 border, 2 reflection)."""
    from .sampling import grid_sample

    interpolation_mode = check_int(interpolation_mode, "grid_sampler", "interpolation_mode")
    padding_mode = check_int(padding_mode, "grid_sampler", "padding_mode")
    output = grid_sample(input, grid, _INTERPOLATION[interpolation_mode], _PADDING[padding_mode], align_corners)
    return name_node(output, f"GridSampler{input.ndim - 2}DBackward0")


def grid_sampler_2d(input: Tensor, grid: Tensor, interpolation_mode: int, padding_mode: int,
                    align_corners: bool) -> Tensor:
    """torch.grid_sampler_2d: grid_sampler of a 4-D input."""
    from .sampling import refuse_0d_sampler_arguments

    refuse_0d_sampler_arguments(input, grid)
    if input.ndim != 4:
        raise RuntimeError(f"grid_sampler_2d(): expected 4D input, but got input with sizes {list(input.shape)}")
    return grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners)


def grid_sampler_3d(input: Tensor, grid: Tensor, interpolation_mode: int, padding_mode: int,
                    align_corners: bool) -> Tensor:
    """torch.grid_sampler_3d: grid_sampler of a 5-D input."""
    from .sampling import refuse_0d_sampler_arguments

    refuse_0d_sampler_arguments(input, grid)
    if input.ndim != 5:
        raise RuntimeError(f"grid_sampler_3d(): expected 5D input, but got input with sizes {list(input.shape)}")
    return grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners)


# ---- the recurrent networks as ATen's functions: the flat weight list of nn.RNN/LSTM/GRU's _flat_weights
def _recurrent(mode: str, input: Tensor, h0: Tensor, c0: Tensor | None, params, has_biases: bool, num_layers: int,
               dropout: float, train: bool, bidirectional: bool, batch_first: bool) -> tuple:
    from .rnn import recurrent_layer
    from .shape import cat, stack

    if input.ndim != 3:
        raise RuntimeError(f"{mode.lower()}: expected a 3-D input (seq, batch, feature), got {input.ndim}-D")
    directions = 2 if bidirectional else 1
    # as ATen's: an LSTM whose h0 is narrower than its c0 has a projection, a weight_hr last in
    # each (layer, direction)'s weights
    projected = c0 is not None and h0.shape[-1] != c0.shape[-1]
    per_layer = (4 if has_biases else 2) + projected
    params = list(params)
    if len(params) != num_layers * directions * per_layer:
        raise RuntimeError(f"{mode.lower()}: expected {num_layers * directions * per_layer} weights for "
                           f"{num_layers} layer(s), {directions} direction(s), got {len(params)}")
    x = input.transpose(0, 1) if batch_first else input
    h_n, c_n = [], []
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            weights = params[index * per_layer:(index + 1) * per_layer]
            w_hr = weights.pop() if projected else None
            weights += [None] * (4 - len(weights))
            results = recurrent_layer(mode, x, *weights, h0[index], c0[index] if c0 is not None else None,
                                      reverse=direction == 1, w_hr=w_hr)
            outputs.append(results[0])
            h_n.append(results[1])
            if c0 is not None:
                c_n.append(results[2])
        x = outputs[0] if directions == 1 else cat(outputs, 2)
        if dropout and train and layer < num_layers - 1:
            x = _dropout.dropout(x, dropout, True)
    output = x.transpose(0, 1) if batch_first else x
    return (output, stack(h_n, 0)) + ((stack(c_n, 0),) if c0 is not None else ())


def rnn_tanh(input: Tensor, hx: Tensor, params, has_biases: bool, num_layers: int, dropout: float, train: bool,
             bidirectional: bool, batch_first: bool) -> tuple:
    """torch.rnn_tanh: ``(output, h_n)`` of a tanh RNN with ``params`` the flat list
    [w_ih, w_hh, (b_ih, b_hh)] per layer and direction, as nn.RNN's ``_flat_weights``."""
    return _recurrent("RNN_TANH", input, hx, None, params, has_biases, num_layers, dropout, train, bidirectional,
                      batch_first)


def rnn_relu(input: Tensor, hx: Tensor, params, has_biases: bool, num_layers: int, dropout: float, train: bool,
             bidirectional: bool, batch_first: bool) -> tuple:
    """torch.rnn_relu: rnn_tanh with ReLU."""
    return _recurrent("RNN_RELU", input, hx, None, params, has_biases, num_layers, dropout, train, bidirectional,
                      batch_first)


def gru(input: Tensor, hx: Tensor, params, has_biases: bool, num_layers: int, dropout: float, train: bool,
        bidirectional: bool, batch_first: bool) -> tuple:
    """torch.gru: ``(output, h_n)``; the weights as rnn_tanh's."""
    return _recurrent("GRU", input, hx, None, params, has_biases, num_layers, dropout, train, bidirectional,
                      batch_first)


def lstm(input: Tensor, hx, params, has_biases: bool, num_layers: int, dropout: float, train: bool,
         bidirectional: bool, batch_first: bool) -> tuple:
    """torch.lstm: ``(output, h_n, c_n)`` from ``hx = (h_0, c_0)``; the weights as rnn_tanh's, with
    weight_hr last in each layer and direction where h_0 is narrower than c_0 (proj_size)."""
    h0, c0 = hx
    return _recurrent("LSTM", input, h0, c0, params, has_biases, num_layers, dropout, train, bidirectional,
                      batch_first)


def _cell(mode: str, input: Tensor, h0: Tensor, c0, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh) -> tuple:
    from .rnn import elman_cell, recurrent_layer, warn_cell_run_per_slice

    # ATen's check_rnn_cell_forward_input and _hidden, in its order, before any product is taken
    if input.shape[1] != w_ih.shape[1]:
        raise RuntimeError(f"input has inconsistent input_size: got {input.shape[1]} expected {w_ih.shape[1]}")
    for index, state in enumerate(s for s in (h0, c0) if s is not None):
        if state.shape[0] != input.shape[0]:
            raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match hidden{index} batch size "
                               f"{state.shape[0]}")
        if state.shape[1] != w_hh.shape[1]:
            raise RuntimeError(f"hidden{index} has inconsistent hidden_size: got {state.shape[1]}, expected "
                               f"{w_hh.shape[1]}")
    if mode != "LSTM":
        warn_cell_run_per_slice(mode, input, h0, w_ih, w_hh, b_ih, b_hh)
    if mode in ("RNN_TANH", "RNN_RELU"):
        return (elman_cell(mode, input, h0, w_ih, w_hh, b_ih, b_hh),)
    return recurrent_layer(mode, input.unsqueeze(0), w_ih, w_hh, b_ih, b_hh, h0, c0, cell=True)[1:]


def rnn_tanh_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
                  b_hh: Tensor | None = None) -> Tensor:
    """torch.rnn_tanh_cell: one step, h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)."""
    return _cell("RNN_TANH", input, hx, None, w_ih, w_hh, b_ih, b_hh)[0]


def rnn_relu_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
                  b_hh: Tensor | None = None) -> Tensor:
    """torch.rnn_relu_cell: rnn_tanh_cell with ReLU."""
    return _cell("RNN_RELU", input, hx, None, w_ih, w_hh, b_ih, b_hh)[0]


@cpu_autocast_policy("unlisted")
def gru_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
             b_hh: Tensor | None = None) -> Tensor:
    """torch.gru_cell: one GRU step, nn.GRUCell's."""
    return _cell("GRU", input, hx, None, w_ih, w_hh, b_ih, b_hh)[0]


@cpu_autocast_policy("unlisted")
def lstm_cell(input: Tensor, hx, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
              b_hh: Tensor | None = None) -> tuple:
    """torch.lstm_cell: one LSTM step from ``hx = (h, c)``, returning ``(h', c')``."""
    from .rnn import refuse_lstm_cell_under_vmap

    h0, c0 = hx
    refuse_lstm_cell_under_vmap(input, h0, c0, w_ih, w_hh, b_ih, b_hh)
    return _cell("LSTM", input, h0, c0, w_ih, w_hh, b_ih, b_hh)


# ---- segment_reduce
_SEGMENT_REDUCTIONS = {"sum": "sum", "prod": "prod", "mean": "mean", "max": "amax", "amax": "amax",
                       "min": "amin", "amin": "amin"}
_EMPTY_SEGMENT = {"sum": 0.0, "prod": 1.0, "mean": float("nan"), "amax": float("-inf"), "amin": float("inf")}


def segment_reduce(data: Tensor, reduce: str, *, lengths: Tensor | None = None, indices: Tensor | None = None,
                   offsets: Tensor | None = None, axis: int = 0, unsafe: bool = False, initial=None) -> Tensor:
    """torch.segment_reduce: reduce consecutive segments of ``data`` along dim 0 (``lengths`` of each
    segment, or their ``offsets`` (one more than segments)) by sum, prod, mean, amax/max or amin/min.
    An empty segment gives ``initial``, or 0, 1, NaN, -inf, +inf; with ``initial`` it joins every
    segment's reduction (for mean, the sum, divided by the segment's own length). 1-D lengths or
    offsets only; torch's N-d lengths along a later ``axis`` raise NotImplementedError."""
    from . import reduce as _reduce
    from .creation import full
    from .elementwise import maximum, minimum
    from .shape import stack
    if lengths is None and offsets is None:  # (torch checks them before it reads reduce)
        raise RuntimeError("segment_reduce(): Either lengths or offsets must be defined.")
    if reduce not in _SEGMENT_REDUCTIONS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    given = lengths if lengths is not None else offsets
    if given.ndim != 1 or axis != 0:
        raise NotImplementedError("segment_reduce: chainrule reduces 1-D lengths or offsets along axis 0 only")
    bounds = [int(v) for v in given.tolist()]
    if lengths is not None:
        starts = [sum(bounds[:i]) for i in range(len(bounds))]
        sizes = bounds
    else:
        starts, sizes = bounds[:-1], [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    if not unsafe and (lengths is not None and sum(sizes) != data.shape[0]):
        raise RuntimeError("segment_reduce(): Expected all rows of lengths along axis to sum to "
                           "data.size(lengths.dim()-1) when !unsafe.")
    kind = _SEGMENT_REDUCTIONS[reduce]
    row_shape = tuple(data.shape[1:])
    rows = []
    for start, size in zip(starts, sizes):
        if size == 0:
            empty = _EMPTY_SEGMENT[kind] if initial is None else initial
            rows.append(full(row_shape, empty, dtype=data.dtype, device=data.device))
            continue
        segment = data.narrow(0, start, size)
        if kind == "mean":
            total = _reduce.sum(segment, 0)
            rows.append((total + initial if initial is not None else total) / size)
            continue
        value = getattr(_reduce, kind)(segment, 0)
        if initial is not None:
            value = {"sum": lambda v: v + initial, "prod": lambda v: v * initial,
                     "amax": lambda v: maximum(v, full(row_shape, initial, dtype=data.dtype, device=data.device)),
                     "amin": lambda v: minimum(v, full(row_shape, initial, dtype=data.dtype, device=data.device)),
                     }[kind](value)
        rows.append(value)
    return name_node(stack(rows, 0), "SegmentReduceBackward0", label="segment_reduce")


def shuffled_channels(input: Tensor, groups: int, op: str) -> Tensor:
    """(N, g·k, *) with its channels reordered as (k, g) instead of (g, k), after torch's checks of
    ``op`` (channel_shuffle, native_channel_shuffle)."""
    groups = check_int(groups, op, "groups")
    if input.dim() <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(input.shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    if input.shape[1] % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {input.shape[1]} channels and "
                           f"{groups} groups.")
    n, c = input.shape[0], input.shape[1]
    rest = tuple(input.shape[2:])
    return ChannelShuffle.apply(input, split=(n, groups, c // groups, *rest),
                                order=(0, 2, 1, *range(3, 3 + len(rest))), merged=(n, c, *rest), factor=groups)


class NativeChannelShuffle(without_derivative("aten::native_channel_shuffle")):
    """``native_channel_shuffle`` of an input that requires grad: torch records a node with no
    derivative (aten::native_channel_shuffle has none), whose backward raises."""
    node_name = "torch::autograd::NotImplemented"
    label, rule = "native_channel_shuffle", "none: torch defines no derivative, and backward raises"

    @staticmethod
    def forward(ctx, input, shuffled):
        return shuffled


def native_channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """torch.native_channel_shuffle (and F.native_channel_shuffle): channel_shuffle's values from an
    op of its own, which torch gives no derivative."""
    shuffled = shuffled_channels(input, groups, "native_channel_shuffle")
    if not input.requires_grad:
        return shuffled
    return NativeChannelShuffle.apply(input, shuffled=shuffled.detach()._data)


# ------------------------------------------------------------------------------ weight norm
def norm_except_dim(v: Tensor, pow: int = 2, dim: int = 0) -> Tensor:  # noqa: A002 (torch's name)
    """torch.norm_except_dim: the ``pow``-norm of ``v`` over every dim but ``dim``, which stays, the
    others kept as size-1 dims; for ``dim=-1`` (torch's legacy "no dim", not the last dim) the
    norm of the whole tensor, 0-d. Recorded as torch's composite records it: the first or last dim's
    norm of a 2-d view, viewed back; any other dim transposed to the front and back."""
    pow = check_int(pow, "norm_except_dim", "pow", 2)  # noqa: A001
    dim = check_int(dim, "norm_except_dim", "dim", 3)
    if dim == -1:
        return name_node(v.norm(pow), "NormBackward0")
    output_size = [1] * v.dim()
    if dim == 0:
        output_size[0] = v.size(0)
        rows = name_node(v.contiguous().view(v.size(0), -1).norm(pow, 1), "NormBackward1")
        return rows.view(output_size)
    if dim == v.dim() - 1:
        output_size[-1] = v.size(-1)
        columns = name_node(v.contiguous().view(-1, v.size(-1)).norm(pow, 0), "NormBackward1")
        return columns.view(output_size)
    return norm_except_dim(v.transpose(0, dim), pow, 0).transpose(0, dim)


class WeightNormInterface(Function):
    """torch's fused weight norm (``_weight_norm_interface``) over a first or last ``dim``:
    ``w = v · (g / ‖v‖)``, the 2-norm over every other dim, one node for both inputs."""

    _array_forward = True
    node_name = "WeightNormInterfaceBackward0"
    saved_attributes = {"_saved_dim": ctx_value("dim"), "_saved_g": saved(1), "_saved_result1": saved(2),
                        "_saved_v": saved(0)}
    label = "weight_norm"
    rule = "∂/∂g = Σ grad·v / ‖v‖; ∂/∂v = (g/‖v‖)·(grad − v·(Σ grad·v)/‖v‖²), sums over the dims but dim"
    formula = "{0}·({1}/‖{0}‖)"

    @staticmethod
    def forward(ctx, v, g, dim):
        xp = array_module(v)
        ctx.dim, ctx.others = dim, tuple(d for d in range(v.ndim) if d != dim)
        norm = xp.sqrt(xp.sum(v * v, axis=ctx.others, keepdims=True))
        ctx.save_for_backward(v, g, norm)
        return v * (_as_norm(g, norm.shape) / norm)

    @staticmethod
    def backward(ctx, grad):
        v, g, _ = ctx.saved_values

        def over_others(t):  # (a 1-d v has no other dim: an empty dim list would sum them all)
            return t.sum(ctx.others, keepdim=True) if ctx.others else t

        # the norm recomputed from v, so that a gradient of the gradient reaches v through it
        norm = over_others(v * v).sqrt()
        # w = v·g/‖v‖, s = Σ grad·v: dg = s/‖v‖, dv = a·grad − b·v with a = g/‖v‖, b = a·s/‖v‖²
        # (rounded in the order of torch's CPU kernel)
        grad_dot_v = over_others(grad * v)
        scale = _as_norm(g, norm.shape) / norm
        grad_v = scale * grad - (scale * grad_dot_v / (norm * norm)) * v
        return grad_v, (grad_dot_v / norm).reshape(g.shape)


def _as_norm(g, shape: tuple):
    """g in the norm's kept shape: torch's fused kernel reads g as one value per slice of v, so a
    flat g of v.size(dim) values serves as well as one of the norm's shape."""
    return g.reshape(shape) if g.shape != shape and math.prod(g.shape) == math.prod(shape) else g


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """torch._weight_norm: ``v · (g / ‖v‖)``, the 2-norm of ``v`` over every dim but ``dim`` (the
    whole tensor for ``dim=-1``); what nn.utils.weight_norm and parametrizations.weight_norm compute
    the weight with. Like torch's, a first or last ``dim`` runs one fused node
    (WeightNormInterfaceBackward0) unless an operand is float16; other dims, -1 included, compose
    ``norm_except_dim`` (MulBackward0 over DivBackward0)."""
    dim = check_int(dim, "_weight_norm", "dim", 3)
    v, g = v.contiguous(), g.contiguous()
    if _dtype.float16 in (v.dtype, g.dtype) or dim not in (0, v.dim() - 1):
        return v * (g / norm_except_dim(v, 2, dim))
    if g.dtype is not v.dtype:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(v.dtype)} but found "
                           f"{_dtype.scalar_name(g.dtype)}")
    return WeightNormInterface.apply(v, g, dim=dim)
