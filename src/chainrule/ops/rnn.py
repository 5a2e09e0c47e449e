"""Recurrent layers as ops: one (layer, direction) of RNN (tanh/relu), LSTM or GRU over a sequence.

Three pieces, each the derivative of the one before:

* ``RecurrentLayer``: the forward on arrays. The input projections of all time steps are one
  GEMM up front, then a loop over time does the recurrent GEMM and the gate math in place. A
  training step records one node per layer and direction (``StackBackward0``, as torch's last node, or
  ``GruBackward0``, ... where packed).
* ``RecurrentLayerBackward``: its backward — backpropagation through time on arrays, in the same
  GEMM layout — as an array-level Function of (output gradients, layer inputs). Under plain
  ``backward()`` nothing requires grad, so it runs unrecorded: one fused BPTT and no graph.
* the second-order rule (``RecurrentLayerBackward.backward``), derived rather than written: it
  re-runs the layer step by step as a composition of differentiable Tensor ops (``_layer_steps``:
  matmul, sigmoid, tanh, mul, ...), takes that composition's vector-Jacobian product with
  ``create_graph=True`` and differentiates it once more. The recomputation costs a Python loop of
  small ops per time step, paid only when something differentiates a gradient; each layer input
  enters the recomputation through a fresh view, so the second-order gradients are themselves
  recorded under ``create_graph`` and every higher order works as well.

Why not a hand-written second-order BPTT: LSTM and GRU have dozens of second-order terms (each
gate's curvature times every pair of inputs); deriving them from the composition keeps one
first-order implementation (the fast array BPTT) and one forward formula per cell that a test
checks against the array forward. Why not run the composition for the first order too: a
per-step Tensor graph costs several times the fused BPTT that ``gru_step`` measures.

Gate orders follow torch: LSTM (i, f, g, o); GRU (r, z, n) with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and ``h' = (1 - z) n + z h``.
An LSTM with a projection (``w_hr`` (P, H), torch's ``proj_size`` P) carries the projected
state ``h' = W_hr (o * tanh(c'))`` (B, P) and outputs it; its cell state stays (B, H).
With ``lengths`` (B,) (a packed batch), sequence b runs only for t < lengths[b]: elsewhere its
state passes through unchanged and its output is 0, so h_n is the state at its own last step in
either direction.
"""

from __future__ import annotations

import numpy as np

from .. import _config, _dtype, _layout
from .._backend import array_module, is_array
from ..autograd import function as _function
from ..autograd.engine import grad as _grad
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..tensor import Tensor
from . import cpu_features
from .activation import relu
from .compat import unsafe_chunk
from .elementwise import sigmoid, tanh, where
from .linear import linear
from .shape import stack, view_as

__all__ = ["recurrent_layer", "elman_cell", "composed_cell", "composed_step", "onednn_runs",
           "warn_projection_composed"]
__not_methods__ = set(__all__)

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
_GATE_COUNT = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 0.5 (1 + tanh(x / 2)): no overflow for large |x|
    xp = array_module(x)
    out = xp.tanh(x * x.dtype.type(0.5))
    out += 1
    out *= 0.5
    return out


def _ended_rows(t: int, lengths, like):
    """The rows of the sequences that have ended by step t (``t >= lengths``) as an index array on
    ``like``'s device, or None when none has (or the batch is not packed). ``lengths`` are host
    ints; a GPU array cannot be indexed by a host mask, so the rows go over as one small copy."""
    if lengths is None:
        return None
    rows = np.flatnonzero(t >= lengths)
    if not rows.size:
        return None
    xp = array_module(like)
    return rows if xp is np else xp.asarray(rows)


def _hold_ended(t: int, lengths, *pairs) -> None:
    """For each (target, source) pair, copy source into target's rows of the sequences that have
    ended by step t (``t >= lengths``); nothing when the batch is not packed."""
    rows = _ended_rows(t, lengths, pairs[0][0])
    if rows is not None:
        for target, source in pairs:
            target[rows] = source[rows] if is_array(source) else source


def _time_steps(length: int, reverse: bool) -> range:
    return range(length - 1, -1, -1) if reverse else range(length)


# ---------------------------------------------------------------- forward
class RecurrentLayer(Function):
    """One layer in one direction over the whole sequence.

    Inputs: x (T, B, I), w_ih (G H, I), w_hh (G H, P), b_ih, b_hh (G H), h0 (B, P) [, c0 (B, H)
    [, w_hr (P, H)]], where P is H except for an LSTM with a projection w_hr.
    Outputs: the hidden states (T, B, P), h_n (B, P) [, c_n (B, H)].
    """

    label = "recurrent_layer"
    host_params = frozenset({"lengths"})  # the packed batch's lengths stay on the CPU, as torch's
    rule = ("backpropagation through time: the cell's chain rule step by step, last step first; the "
            "weights' gradients summed over the steps")
    _array_forward = True

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0=None, w_hr=None, *, mode, reverse, lengths=None):
        xp = array_module(x)
        T, B = x.shape[0], x.shape[1]
        G, P = w_hh.shape  # P: the size of the state h, the projection's where there is one
        H = G // _GATE_COUNT[mode]
        dtype = x.dtype
        # the feature size spelled out: -1 cannot be inferred from an empty batch
        gi = (x.reshape(T * B, x.shape[2]) @ w_ih.T).reshape(T, B, G)
        gi += b_ih
        w_hh_t = w_hh.T
        out = xp.empty((T, B, P), dtype)
        hs = xp.empty((T + 1, B, P), dtype)  # hs[k] is the state before step k of the walk
        h = hs[0]
        h[...] = h0
        steps = _time_steps(T, reverse)
        saved = {}
        if mode == "GRU":
            r_all = xp.empty((T, B, H), dtype)
            z_all = xp.empty((T, B, H), dtype)
            n_all = xp.empty((T, B, H), dtype)
            ghn_all = xp.empty((T, B, H), dtype)
            for k, t in enumerate(steps):
                gh = h @ w_hh_t
                gh += b_hh
                g = gi[t]
                r = _sigmoid(g[:, :H] + gh[:, :H])
                z = _sigmoid(g[:, H:2 * H] + gh[:, H:2 * H])
                ghn = gh[:, 2 * H:]
                n = xp.tanh(g[:, 2 * H:] + r * ghn)
                h_new = hs[k + 1]
                xp.subtract(h, n, out=h_new)
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
            # sigmoid(a) = (1 + tanh(a / 2)) / 2: with the i, f, o columns of the weights and
            # biases halved up front (exact in binary), one tanh per step serves all four gates
            half = xp.full(4 * H, 0.5, dtype)
            half[2 * H:3 * H] = 1
            w_hh_half = w_hh_t * half
            gi *= half
            gi += b_hh * half
            gates_all = xp.empty((T, B, 4 * H), dtype)
            tanh_cs = xp.empty((T, B, H), dtype)  # tanh(c') of each step, for the backward
            cs = xp.empty((T + 1, B, H), dtype)
            # o * tanh(c') of each step before W_hr projects it, for W_hr's gradient
            unprojected = xp.empty((T, B, H), dtype) if w_hr is not None else None
            w_hr_t = w_hr.T if w_hr is not None else None
            c = cs[0]
            c[...] = c0
            input_gate = xp.empty((B, H), dtype)
            for k, t in enumerate(steps):
                gates = gates_all[t]
                xp.matmul(h, w_hh_half, out=gates)
                gates += gi[t]
                xp.tanh(gates, out=gates)
                for sigmoid_gates in (gates[:, :2 * H], gates[:, 3 * H:]):
                    sigmoid_gates += 1
                    sigmoid_gates *= 0.5
                i, f, gg, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
                c_new = cs[k + 1]
                xp.multiply(f, c, out=c_new)
                xp.multiply(i, gg, out=input_gate)
                c_new += input_gate
                h_new = hs[k + 1]
                xp.tanh(c_new, out=tanh_cs[t])
                if unprojected is None:
                    xp.multiply(o, tanh_cs[t], out=h_new)
                else:
                    xp.multiply(o, tanh_cs[t], out=unprojected[t])
                    xp.matmul(unprojected[t], w_hr_t, out=h_new)
                _hold_ended(t, lengths, (h_new, h), (c_new, c))
                h, c = h_new, c_new
            # the outputs are the states after each step, in time order (0 where a packed
            # sequence has ended): one copy, not one per step
            out[...] = hs[1:] if not reverse else hs[:0:-1]
            for t in range(T) if lengths is not None else ():
                _hold_ended(t, lengths, (out[t], 0))
            saved = dict(gates=gates_all, cs=cs, tanh_cs=tanh_cs, unprojected=unprojected)
            results = (out, h.copy(), c.copy())
        else:
            relu_mode = mode == "RNN_RELU"
            for k, t in enumerate(steps):
                a = h @ w_hh_t
                a += gi[t]
                a += b_hh
                h_new = hs[k + 1]
                if relu_mode:
                    xp.maximum(a, 0, out=h_new)
                else:
                    xp.tanh(a, out=h_new)
                _hold_ended(t, lengths, (h_new, h))
                out[t] = h_new
                _hold_ended(t, lengths, (out[t], 0))
                h = h_new
            results = (out, h.copy())
        if getattr(ctx, "recording", True) is False:  # nothing recorded: keep nothing
            return results
        ctx.mode, ctx.reverse, ctx.lengths = mode, reverse, lengths
        ctx.intermediates = dict(saved, hs=hs)
        ctx.save_for_backward(x, w_ih, w_hh, b_ih, b_hh, h0, *(c for c in (c0, w_hr) if c is not None))
        return results

    @staticmethod
    def backward(ctx, grad_out, grad_hn, grad_cn=None):
        layer_inputs = ctx.saved_values
        needs = ctx.needs_input_grad
        output_grads = (grad_out, grad_hn) + ((grad_cn,) if ctx.mode == "LSTM" else ())
        grads = _BACKWARD_FN[ctx.mode].apply(*output_grads, *layer_inputs, mode=ctx.mode, reverse=ctx.reverse,
                                            lengths=ctx.lengths, intermediates=ctx.intermediates,
                                            needs=needs)
        remaining = iter(grads)
        return tuple(next(remaining) if need else None for need in needs)


# ---------------------------------------------------------------- first-order backward
class RecurrentLayerBackward(Function):
    """BPTT: (output gradients, layer inputs) -> the gradients of the layer inputs in ``needs``.

    Inputs: grad_out (T, B, P), grad_hn (B, P) [, grad_cn (B, H)], then the layer's inputs.
    Returns one array per True entry of ``needs`` (the layer's ``needs_input_grad``), in order.
    """

    label = "recurrent_layer_backward"
    host_params = frozenset({"lengths"})
    rule = ("differentiates the pass through time via the layer's Tensor-op composition (the recurrent "
            "layer's backward, recorded as an op under create_graph)")
    _array_forward = True

    @staticmethod
    def forward(ctx, *arrays, mode, reverse, lengths, intermediates, needs):
        xp = array_module(*arrays)
        n_grads = 3 if mode == "LSTM" else 2
        dout, grad_hn = arrays[0], arrays[1]
        x, w_ih, w_hh = arrays[n_grads:n_grads + 3]
        w_hr = arrays[n_grads + 7] if len(arrays) > n_grads + 7 else None
        hs, s = intermediates["hs"], intermediates
        T, B = x.shape[0], x.shape[1]
        G, P = w_hh.shape
        H = G // _GATE_COUNT[mode]
        dh = xp.array(grad_hn, dtype=x.dtype, copy=True)
        dgh = xp.empty((T, B, G), x.dtype)  # gradient of the recurrent pre-activations
        dgi = dgh if mode != "GRU" else xp.empty((T, B, G), x.dtype)
        k_of = {t: k for k, t in enumerate(_time_steps(T, reverse))}
        h_index = xp.empty(T, dtype=np.int64)  # which hs[k] fed time step t
        if mode == "LSTM":
            dc = xp.array(arrays[2], dtype=x.dtype, copy=True)
            dh_direct, c_factors, o_factor, forget = _lstm_factors(s, reverse, H)
            dgh4 = dgh.reshape(T, B, 4, H)
            dc_from_h = xp.empty((B, H), x.dtype)
            # the gradient of each step's projected state h' (B, P), for W_hr's gradient
            d_projected = xp.empty((T, B, P), x.dtype) if w_hr is not None else None
        for t in _time_steps(T, not reverse):
            k = k_of[t]
            h_index[t] = k
            # rows whose sequence has ended at t: their state passed through, their output was 0
            ended = _ended_rows(t, lengths, dh)
            dh_through = dh.copy() if ended is not None else None
            if mode == "LSTM" and dh_through is not None:
                dc_through = dc.copy()
            dh += dout[t]
            if mode == "GRU":
                r, z, n, ghn = s["r"][t], s["z"][t], s["n"][t], s["ghn"][t]
                h_prev = hs[k]
                # h' = n + z (h - n): dn = dh (1 - z), dz = dh (h - n), dh_direct = dh z
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
                _hold_ended(t, lengths, (dgi[t], 0), (dgh[t], 0))
                dh = dh * z + dgh[t] @ w_hh
            elif mode == "LSTM":
                # c' = f c + i g, h' = o tanh(c') (times W_hrᵀ with a projection): the per-step
                # factors come from _lstm_factors
                dh_cell = dh
                if w_hr is not None:
                    d_projected[t] = dh
                    _hold_ended(t, lengths, (d_projected[t], 0))
                    dh_cell = dh @ w_hr
                xp.multiply(dh_cell, dh_direct[t], out=dc_from_h)
                dc += dc_from_h
                d = dgh4[t]
                xp.multiply(dc[:, None, :], c_factors[t], out=d[:, :3])
                xp.multiply(dh_cell, o_factor[t], out=d[:, 3])
                _hold_ended(t, lengths, (dgh[t], 0))
                dc *= forget[t]
                dh = dgh[t] @ w_hh
                if dh_through is not None:
                    dc[ended] = dc_through[ended]
            else:
                h_new = hs[k + 1]
                da = dgh[t]
                if mode == "RNN_RELU":
                    xp.multiply(dh, h_new > 0, out=da)
                else:
                    xp.multiply(dh, 1 - h_new * h_new, out=da)
                _hold_ended(t, lengths, (da, 0))
                dh = da @ w_hh
            if dh_through is not None:
                dh[ended] = dh_through[ended]
        h_prev_all = hs[h_index] if T else hs[:0]
        dgi2 = dgi.reshape(T * B, G)
        dgh2 = dgh.reshape(T * B, G)
        grads = []
        if needs[0]:
            grads.append((dgi2 @ w_ih).reshape(x.shape))
        if needs[1]:
            grads.append(dgi2.T @ x.reshape(T * B, x.shape[2]))
        if needs[2]:
            grads.append(dgh2.T @ h_prev_all.reshape(T * B, P))
        if needs[3]:
            grads.append(dgi2.sum(0))
        if needs[4]:
            grads.append(dgh2.sum(0))
        if needs[5]:
            grads.append(dh)
        if mode == "LSTM" and needs[6]:
            grads.append(dc)
        if w_hr is not None and needs[7]:
            grads.append(d_projected.reshape(T * B, P).T @ s["unprojected"].reshape(T * B, H))
        if getattr(ctx, "recording", True) is not False:
            ctx.mode, ctx.reverse, ctx.lengths, ctx.layer_needs = mode, reverse, lengths, needs
            ctx.save_for_backward(*arrays)
        return tuple(grads)

    @staticmethod
    def backward(ctx, *grad_grads):
        # the vector-Jacobian product of (u, p) -> J(p)ᵀ u, from the layer's Tensor-op composition
        saved = ctx.saved_values
        n_grads = 3 if ctx.mode == "LSTM" else 2
        create_graph = is_grad_enabled()  # this rule is itself being recorded (a third order)
        with enable_grad():
            variables = [_fresh_variable(t) for t in saved]
            output_grads, layer_inputs = variables[:n_grads], variables[n_grads:]
            outputs = _layer_steps(ctx.mode, *layer_inputs, reverse=ctx.reverse, lengths=ctx.lengths)
            wrt = [p for p, need in zip(layer_inputs, ctx.layer_needs) if need]
            first = _grad(outputs, wrt, output_grads, create_graph=True, allow_unused=True)
            pairs = [(f, v) for f, v in zip(first, grad_grads) if f is not None and f.requires_grad]
            targets = [t for t, need in zip(variables, ctx.needs_input_grad) if need]
            if pairs:
                second = _grad([f for f, _ in pairs], targets, [v for _, v in pairs],
                               create_graph=create_graph, allow_unused=True)
            else:
                second = (None,) * len(targets)
        remaining = iter(second)
        return tuple(next(remaining) if need else None for need in ctx.needs_input_grad)


def _lstm_factors(saved: dict, reverse: bool, H: int):
    """The LSTM's local derivatives at every step, indexed by time, as whole-sequence arrays (a
    few large operations instead of many small ones inside the loop over time): ∂h'/∂c' =
    o (1 - tanh²c'), which carries ∂h' into ∂c'; the i, f, g pre-activations' gradients per unit
    of ∂c' (g i (1 - i), c f (1 - f), i (1 - g²)) stacked as (T, B, 3, H); the o pre-activation's
    per unit of ∂h' (tanh(c') o (1 - o)); and the forget gate f, which carries ∂c back a step."""
    gates, tanh_cs = saved["gates"], saved["tanh_cs"]
    xp = array_module(gates)
    T, B = gates.shape[0], gates.shape[1]
    gates4 = gates.reshape(T, B, 4, H)
    i, f, gg, o = gates4[:, :, 0], gates4[:, :, 1], gates4[:, :, 2], gates4[:, :, 3]
    cs = saved["cs"]
    c_prev = cs[:T] if not reverse else cs[:T][::-1]  # the state each time step started from
    dh_direct = o * (1 - tanh_cs * tanh_cs)
    c_factors = xp.empty((T, B, 3, H), gates.dtype)
    xp.multiply(gg * i, 1 - i, out=c_factors[:, :, 0])
    xp.multiply(c_prev * f, 1 - f, out=c_factors[:, :, 1])
    xp.multiply(i, 1 - gg * gg, out=c_factors[:, :, 2])
    o_factor = tanh_cs * o * (1 - o)
    return dh_direct, c_factors, o_factor, f


def _fresh_variable(t: Tensor) -> Tensor:
    """A tensor with t's value whose gradient the engine captures at its own node: a view (so
    gradients taken with respect to it flow on into t's graph under create_graph), or a new leaf
    for a tensor no gradient reaches."""
    if t.requires_grad:
        return view_as(t, t)
    return t.detach().requires_grad_(True)


def _layer_steps(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0=None, w_hr=None, *, reverse, lengths):
    """The same layer as ``RecurrentLayer.forward``, composed of differentiable Tensor ops, one
    time step at a time: the function the second-order rule differentiates twice."""
    T = x.shape[0]
    G, P = w_hh.shape
    H = G // _GATE_COUNT[mode]
    gi = x @ w_ih.transpose(0, 1) + b_ih
    w_hh_t = w_hh.transpose(0, 1)
    h, c = h0, c0
    outs = [None] * T
    for t in _time_steps(T, reverse):
        gh = h @ w_hh_t + b_hh
        g = gi[t]
        c_new = None
        if mode == "GRU":
            r = sigmoid(g[:, :H] + gh[:, :H])
            z = sigmoid(g[:, H:2 * H] + gh[:, H:2 * H])
            n = tanh(g[:, 2 * H:] + r * gh[:, 2 * H:])
            h_new = n + z * (h - n)
        elif mode == "LSTM":
            a = g + gh
            c_new = sigmoid(a[:, H:2 * H]) * c + sigmoid(a[:, :H]) * tanh(a[:, 2 * H:3 * H])
            h_new = sigmoid(a[:, 3 * H:]) * tanh(c_new)
            if w_hr is not None:
                h_new = h_new @ w_hr.transpose(0, 1)
        else:
            h_new = tanh(g + gh) if mode == "RNN_TANH" else relu(g + gh)
        out = h_new
        if lengths is not None:
            running = Tensor._make(array_module(x._data).asarray((t < lengths)[:, None]))  # on x's device
            h_new = where(running, h_new, h)
            out = where(running, out, 0.0)
            if c_new is not None:
                c_new = where(running, c_new, c)
        outs[t] = out
        h, c = h_new, c_new
    output = stack(outs, 0) if T else x.new_zeros((0, x.shape[1], P))
    return (output, h, c) if mode == "LSTM" else (output, h)


# torch's CPU kernels record the layer as a composition (its node names are StackBackward0,
# MkldnnRnnLayerBackward0); chainrule's one fused node per layer is named after the cell where the
# layer is packed or an LSTM cell's one step, and as torch's last node elsewhere (_STACKED_FN,
# _LSTMOneDNN, _GRUCellStep)
class _RNN(RecurrentLayer):
    node_name = "RnnBackward0"
    label = "rnn"
    rule = ("backpropagation through time for h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu): last "
            "step first, the weights' gradients summed over the steps")


class _LSTM(RecurrentLayer):
    node_name = "LstmBackward0"
    label = "lstm"
    rule = ("backpropagation through time for c' = f∘c + i∘g, h' = o∘tanh(c'): last step first, through "
            "the gates to x, h, c and the weights (summed over the steps)")


# torch runs a CPU LSTM in float32 or bfloat16, without a projection and not packed, through oneDNN,
# and the output's node is then MkldnnRnnLayerBackward0 (printed in `grad_fn=<...>`): the same fused
# node here, under the name torch gives it
class _LSTMOneDNN(_LSTM):
    node_name = "MkldnnRnnLayerBackward0"
    dispatcher_name = "aten::lstm"  # what torch's profiler and traced graphs call the op




class _GRU(RecurrentLayer):
    node_name = "GruBackward0"
    label = "gru"
    rule = ("backpropagation through time for h' = n + z∘(h - n) with the reset gate r inside n: last "
            "step first, through the gates to x, h and the weights (summed over the steps)")


class _RNNBackward(RecurrentLayerBackward):
    node_name = "RnnBackwardBackward0"
    label = "rnn_backward"
    rule = ("differentiates the pass through time via the layer's Tensor-op composition (rnn's backward, "
            "recorded as an op under create_graph)")


class _LSTMBackward(RecurrentLayerBackward):
    node_name = "LstmBackwardBackward0"
    label = "lstm_backward"
    rule = ("differentiates the pass through time via the layer's Tensor-op composition (lstm's backward, "
            "recorded as an op under create_graph)")


class _GRUBackward(RecurrentLayerBackward):
    node_name = "GruBackwardBackward0"
    label = "gru_backward"
    rule = ("differentiates the pass through time via the layer's Tensor-op composition (gru's backward, "
            "recorded as an op under create_graph)")


# torch's CPU layer (an LSTM's where oneDNN does not run it) ends by stacking its steps' outputs: the
# node a user meets (`grad_fn=<StackBackward0>`, or below a bidirectional layer's CatBackward0 or
# batch_first's TransposeBackward1) is StackBackward0; the fused node of an unpacked layer takes that
# name (a packed layer's steps are concatenated in torch: it keeps the cell's name; a cell's step is
# named by _GRUCellStep)
class _RNNStacked(_RNN):
    node_name = "StackBackward0"


class _LSTMStacked(_LSTM):
    node_name = "StackBackward0"


class _GRUStacked(_GRU):
    node_name = "StackBackward0"


# torch's CPU GRUCell ends its step with h' = (h - n) * z + n, in place (add_): its output's node is
# AddBackward0, and the fused step takes that name. An LSTMCell's h' and c' come from one fused node
# here, where torch's last ops differ (h' = o * tanh(c'): MulBackward0; c' = f * c + i * g, in place:
# AddBackward0): each output passes through a node of its own under that name (_LSTMCellOutput)
class _GRUCellStep(_GRU):
    node_name = "AddBackward0"


class _LSTMCellOutput(Function):
    """h' or c' of an LSTM cell's fused step, passed through under the name of torch's last op for it."""

    _array_forward = True
    label = "lstm_cell_output"
    rule = "passes the gradient to the LSTM cell's fused step (one output of it)"
    formula = None

    @staticmethod
    def forward(ctx, state):
        return state.copy()  # (the fused node's own output is dropped: a copy of (B, H) costs a microsecond)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _LSTMCellHidden(_LSTMCellOutput):
    node_name = "MulBackward0"


class _LSTMCellState(_LSTMCellOutput):
    node_name = "AddBackward0"


_LAYER_FN = {"RNN_TANH": _RNN, "RNN_RELU": _RNN, "LSTM": _LSTM, "GRU": _GRU}
_STACKED_FN = {_RNN: _RNNStacked, _LSTM: _LSTMStacked, _GRU: _GRUStacked}
_BACKWARD_FN = {"RNN_TANH": _RNNBackward, "RNN_RELU": _RNNBackward, "LSTM": _LSTMBackward, "GRU": _GRUBackward}


def recurrent_layer(mode: str, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None,
                    h0: Tensor, c0: Tensor | None = None, *, reverse: bool = False, lengths=None,
                    w_hr: Tensor | None = None, cell: bool = False, onednn_call: tuple | None = None) -> tuple:
    """One layer of ``mode`` ("RNN_TANH", "RNN_RELU", "LSTM", "GRU") in one direction.

    x (T, B, I), w_ih (G H, I), w_hh (G H, P), b_ih, b_hh (G H) or None, h0 (B, P), c0 (B, H) for
    LSTM; ``w_hr`` (P, H) an LSTM's projection (torch's ``weight_hr``; without it P is H);
    ``lengths`` (B,) NumPy ints for a packed batch; ``cell`` for one step of an ``nn.*Cell`` (torch never
    runs a cell through oneDNN). Returns (output (T, B, P), h_n (B, P)[, c_n]): one direction of
    torch's ``_VF.rnn_tanh`` / ``lstm`` / ``gru``. ``onednn_call``, the module's (num_layers, has_biases,
    bidirectional, batch_first, train), shows a dispatch mode a oneDNN layer as torch's
    aten.mkldnn_rnn_layer.
    """
    xp = array_module(x)
    if mode not in MODES:
        raise ValueError(f"recurrent_layer: unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if w_hr is not None and mode != "LSTM":
        raise ValueError(f"recurrent_layer: a projection (w_hr) is an LSTM's alone, got mode {mode!r}")
    if b_ih is None:
        b_ih = Tensor._make(xp.zeros(w_ih.shape[0], dtype=w_ih._data.dtype))
        b_hh = Tensor._make(xp.zeros(w_hh.shape[0], dtype=w_hh._data.dtype))
    args = (x, w_ih, w_hh, b_ih, b_hh, h0) + ((c0,) if mode == "LSTM" else ()) + ((w_hr,) if w_hr is not None else ())
    layer = _LAYER_FN[mode]
    if layer is _LSTM and not cell and onednn_runs(x, lengths):
        if w_hr is None:
            layer = _LSTMOneDNN
            if onednn_call is not None and _function.active_dispatch is not None:
                _function.note_given(_LSTMOneDNN, x, onednn_call=onednn_call,
                                     shown_biases=None if onednn_call[1] else _shown_zero_biases(w_ih, w_hh))
        else:
            warn_projection_composed(x)
    if layer is not _LSTMOneDNN and not cell and lengths is None:
        layer = _STACKED_FN[layer]
    elif cell and layer is _GRU:
        layer = _GRUCellStep
    results = layer.apply(*args, mode=mode, reverse=reverse, lengths=lengths)
    if cell and layer is _LSTM and results[1].grad_fn is not None:
        return results[0], _LSTMCellHidden.apply(results[1]), _LSTMCellState.apply(results[2])
    return results


def _shown_zero_biases(w_ih: Tensor, w_hh: Tensor):
    """What torch's oneDNN lstm hands aten.mkldnn_rnn_layer for a layer without biases: zeros of each
    weight's shape (w_hh's made first, C++'s argument order), which a dispatch mode sees as aten.zeros;
    None where no mode answers."""
    made = []
    for weight in (w_hh, w_ih):
        kwargs = {"dtype": weight.dtype, "layout": _layout.strided, "device": weight.device}
        zeros = _function.factory_dispatch("zeros", _zeros_of, (list(weight.shape),), kwargs)
        if zeros is _function.RUN_UNDISPATCHED:
            return None
        made.append(zeros)
    return made[1], made[0]


def _zeros_of(size, *, dtype=None, layout=None, device=None) -> Tensor:
    """aten.zeros's func for the zero biases torch's oneDNN lstm makes (_shown_zero_biases)."""
    return Tensor._make(np.zeros(size, dtype=np.dtype(dtype.np)))


def warn_projection_composed(x: Tensor) -> None:
    """torch's word, once a process, on why an LSTM with a projection oneDNN would run is composed instead."""
    if x.numel():
        _config.warn_once("LSTM with projections is not supported with oneDNN. Using default implementation. "
                          "(Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/RNN.cpp:1512.)")


def onednn_runs(x: Tensor, lengths=None) -> bool:
    """Whether torch runs an LSTM layer over ``x`` through oneDNN (without a projection): unpacked, on the
    CPU, in float32 or (where oneDNN has the kernels: cpu_features.AVX512_CORE) bfloat16; elsewhere, as
    on an AMD EPYC with AVX2 alone, torch composes a bfloat16 layer (StackBackward0 over MulBackward0) as
    it does float64's, named LstmBackward0 here."""
    return (lengths is None and x.device.type == "cpu"
            and (x.dtype is _dtype.float32 or (x.dtype is _dtype.bfloat16 and cpu_features.AVX512_CORE)))


def elman_cell(mode: str, x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
               b_hh: Tensor | None) -> Tensor:
    """One step of an RNN_TANH or RNN_RELU cell, x (B, I) and h (B, H): torch's CPU
    ``rnn_tanh_cell`` / ``rnn_relu_cell``, ``tanh(linear(h, W_hh, b_hh) + linear(x, W_ih, b_ih))``.

    Composed as torch composes it, so a user walking ``grad_fn.next_functions`` sees torch's graph
    (TanhBackward0 over AddBackward0 over the two products, AddmmBackward0 or MmBackward0, the
    hidden state's first). The fused ``recurrent_layer`` would record one node instead; for a
    single step its four ops cost no more than it does."""
    pre_activation = linear(h, w_hh, b_hh)
    if _function.active_dispatch is not None:  # (a dispatch mode sees torch's in-place add_)
        pre_activation = pre_activation.add_(linear(x, w_ih, b_ih))
    else:
        pre_activation = pre_activation + linear(x, w_ih, b_ih)
    return tanh(pre_activation) if mode == "RNN_TANH" else relu(pre_activation)


def refuse_lstm_cell_under_vmap(*tensors) -> None:
    """torch's vmap refusal of lstm_cell with any operand batched: its hidden state is a list of tensors,
    which its per-slice fallback cannot take (gru_cell's, one tensor, runs slice by slice)."""
    from .. import _vmap_frames

    if _vmap_frames._frames:
        _vmap_frames.refuse_unbatchable("Batching rule not implemented for aten::lstm_cell. We could not generate a "
                                        "fallback.", *tensors)


_CELL_KERNELS = {"GRU": "gru_cell", "RNN_TANH": "rnn_tanh_cell", "RNN_RELU": "rnn_relu_cell"}


def warn_cell_run_per_slice(mode: str, *tensors) -> None:
    """torch's vmap warning for gru_cell, rnn_tanh_cell and rnn_relu_cell with an operand batched: they have
    no batching rule, so its fallback runs them slice by slice and says so (TORCH_WARN: on every call)."""
    import warnings

    from .. import _torch_function, _vmap_frames

    frames = _vmap_frames._frames
    # (once a call, as torch's one batched run: from slice 0's run, not from the later slices' reruns)
    if frames and frames[-1].index == 0 and any(t is not None and _vmap_frames.batched_anywhere(t) for t in tensors):
        warnings.warn(f"There is a performance drop because we have not yet implemented the batching rule for "
                      f"aten::{_CELL_KERNELS[mode]}. Please file us an issue on GitHub so that we can prioritize its "
                      f"implementation. (Triggered internally at "
                      f"/__w/pytorch/pytorch/aten/src/ATen/functorch/BatchedFallback.cpp:82.)", UserWarning,
                      stacklevel=_torch_function.user_stacklevel())


def composed_cell(mode: str, x: Tensor, h: Tensor, c: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None, b_hh: Tensor | None):
    """One LSTM or GRU step, x (B, I), h and c (B, H), composed as torch's CPU ``lstm_cell`` /
    ``gru_cell`` compose it (ATen's LSTMCell / GRUCell): linear, unsafe_chunk, the gates' in-place
    sigmoid_/tanh_, mul, add_. Run where a dispatch mode or wrapper subclass watches the ops, which then
    sees torch's sequence rather than the fused ``recurrent_layer``; (h', c') for an LSTM, h' for a GRU."""
    if mode == "LSTM":  # (the cell's hidden linear comes before its input's)
        return _lstm_gates(linear(h, w_hh, b_hh).add_(linear(x, w_ih, b_ih)), c)
    return composed_step("GRU", linear(x, w_ih, b_ih), h, w_hh, b_hh)


def _lstm_gates(gates: Tensor, c: Tensor) -> tuple:
    """(h', c') from an LSTM step's summed gates (B, 4H) as ATen's LSTMCell composes them."""
    ingate, forgetgate, cellgate, outgate = unsafe_chunk(gates, 4, 1)
    ingate, forgetgate = ingate.sigmoid_(), forgetgate.sigmoid_()
    cellgate, outgate = cellgate.tanh_(), outgate.sigmoid_()
    cy = (forgetgate * c).add_(ingate * cellgate)
    return outgate * cy.tanh(), cy


def composed_step(mode: str, input_gates: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                  c: Tensor | None = None, w_hr: Tensor | None = None):
    """One step, h (B, P), from the step's input projection ``input_gates`` (B, G·H), as torch's CPU layers
    compose it (ATen's FullLayer projects the whole sequence by weight_ih first): the hidden state's linear,
    unsafe_chunk, in-place add_ and the gates' sigmoid_/tanh_ (GRU; LSTM as its cell, with c (B, H) and
    the projection ``w_hr``), or add_ and tanh/relu (RNN_TANH, RNN_RELU). Run where a dispatch mode
    watches; h' is returned, (h', c') for an LSTM."""
    if mode == "LSTM":
        hy, cy = _lstm_gates(linear(h, w_hh, b_hh).add_(input_gates), c)
        return (hy if w_hr is None else linear(hy, w_hr)), cy
    if mode != "GRU":
        pre_activation = linear(h, w_hh, b_hh).add_(input_gates)
        return tanh(pre_activation) if mode == "RNN_TANH" else relu(pre_activation)
    input_gates = unsafe_chunk(input_gates, 3, 1)
    hidden_gates = unsafe_chunk(linear(h, w_hh, b_hh), 3, 1)
    reset_gate = hidden_gates[0].add_(input_gates[0]).sigmoid_()
    update_gate = hidden_gates[1].add_(input_gates[1]).sigmoid_()
    new_gate = input_gates[2].add(hidden_gates[2].mul_(reset_gate)).tanh_()
    # h' = (h - n) * z + n
    return (h - new_gate).mul_(update_gate).add_(new_gate)
