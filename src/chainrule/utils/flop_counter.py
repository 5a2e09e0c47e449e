"""torch's ``torch.utils.flop_counter``: count the FLOPs of the matrix products and convolutions
run inside a ``FlopCounterMode`` block, in total and per module.

torch counts at its dispatcher, so it sees the ops a call decomposes into (``linear`` is ``t`` +
``addmm``, a batched ``matmul`` is a ``bmm``) and the backward's ops (``mm``,
``convolution_backward``). chainrule's counter stands where the profiler does
(``autograd.function.active_profiler``): every built-in op hands it its inputs, and the backward
engine hands it each node it evaluates. Forward ops are counted with torch's formulas under the
name torch gives the op they decompose into; a node is counted from the shapes its forward op
saw, as torch's backward ops for it would be (each input gradient of a product is one more
product of the same size). The ops a node's rule runs are not counted again.

Keys of ``get_flop_counts()`` are the names torch prints (``"aten.mm"``); ``register_flop_formula``
and ``custom_mapping`` take those names too (chainrule has no ``torch.ops.aten`` packets).
``scaled_dot_product_attention`` (and ``multi_head_attention_forward`` without weights, which
torch runs through it) is one fused op in torch: on the CPU torch has no formula for its kernel and
counts nothing, on a GPU it counts its efficient/flash attention; chainrule does the same with its
math left uncounted. Known difference: ``baddbmm`` is counted as its ``bmm``.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import defaultdict
from math import prod

from ..autograd import function as _function
from ..autograd.profiler import _op_name, recording_switches
from ..nn import functional as _functional

__all__ = ["FlopCounterMode", "register_flop_formula"]


def mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``a @ b`` for (m, k) @ (k, n): one multiply and one add per term."""
    m, k = a_shape
    k2, n = b_shape
    if k != k2:
        raise AssertionError(f"matmul: inner dimensions must match (k == k2), got {k} and {k2}")
    return m * n * 2 * k


def addmm_flop(self_shape, a_shape, b_shape, out_shape=None, **kwargs) -> int:
    return mm_flop(a_shape, b_shape)


def bmm_flop(a_shape, b_shape, out_shape=None, **kwargs) -> int:
    b, m, k = a_shape
    b2, k2, n = b_shape
    if b != b2 or k != k2:
        raise AssertionError(f"bmm: shapes {tuple(a_shape)} and {tuple(b_shape)} do not match")
    return b * m * n * 2 * k


def conv_flop_count(x_shape, w_shape, out_shape, transposed: bool = False) -> int:
    """torch's count: every point of the output (of the input, when transposed) meets the whole
    filter, for every pair of channels the weight connects; the bias is not counted."""
    batch_size = x_shape[0]
    conv_shape = (x_shape if transposed else out_shape)[2:]
    c_out, c_in, *filter_size = w_shape
    return prod(conv_shape) * prod(filter_size) * batch_size * c_out * c_in * 2


def conv_flop(x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed, *args, out_shape=None,
              **kwargs) -> int:
    return conv_flop_count(x_shape, w_shape, out_shape, transposed=transposed)


def conv_backward_flop(grad_out_shape, x_shape, w_shape, transposed: bool, output_mask) -> int:
    """The input gradient is a convolution of the opposite kind, the weight gradient a plain one
    with batch and channels swapped (torch's decomposition)."""
    def swapped(shape):
        return [shape[1], shape[0], *shape[2:]]

    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, x_shape, not transposed)
    if output_mask[1]:
        if transposed:
            flops += conv_flop_count(swapped(grad_out_shape), swapped(x_shape), swapped(w_shape))
        else:
            flops += conv_flop_count(swapped(x_shape), swapped(grad_out_shape), swapped(w_shape))
    return flops


def sdpa_flop_count(query_shape, key_shape, value_shape) -> int:
    """Attention as torch's fused kernels count it: q kᵀ and the weights times v, over batch·heads
    (the query's heads: grouped key/value heads are broadcast)."""
    *batch, s_q, d_q = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    heads = prod(batch)
    return bmm_flop((heads, s_q, d_q), (heads, d_q, s_k)) + bmm_flop((heads, s_q, s_k), (heads, s_k, d_v))


def sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape) -> int:
    """torch's count: the scores recomputed, then two products through the weights times v and
    two through q kᵀ."""
    *batch, s_q, d_q = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    heads = prod(batch)
    return (bmm_flop((heads, s_q, d_q), (heads, d_q, s_k)) + bmm_flop((heads, s_q, d_v), (heads, d_v, s_k))
            + bmm_flop((heads, s_k, s_q), (heads, s_q, d_v)) + bmm_flop((heads, s_q, s_k), (heads, s_k, d_q))
            + bmm_flop((heads, d_q, s_q), (heads, s_q, s_k)))


def sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


# the fused attention op torch's CUDA dispatch picks for float32 (flash attention takes half precision)
_SDPA = "aten._scaled_dot_product_efficient_attention"
_SDPA_FLASH = "aten._scaled_dot_product_flash_attention"

# op name -> formula(*input shapes, out_shape=...); torch's registry, keyed by torch's printed names
flop_registry: dict = {
    "aten.mm": mm_flop,
    "aten.addmm": addmm_flop,
    "aten.bmm": bmm_flop,
    "aten.baddbmm": lambda self_shape, a, b, out_shape=None, **kwargs: bmm_flop(a, b),
    "aten.convolution": conv_flop,
    _SDPA: sdpa_flop,
    _SDPA_FLASH: sdpa_flop,
    _SDPA + "_backward": sdpa_backward_flop,
    _SDPA_FLASH + "_backward": sdpa_backward_flop,
}


def _target_name(target) -> str:
    if not isinstance(target, str):
        raise ValueError(f"register_flop_formula(targets): expected each target to be an op name such as "
                         f"'aten.mm', got {target!r} which is of type {type(target).__name__}")
    return target.replace("::", ".")


def register_flop_formula(targets, get_raw: bool = False):
    """Decorator: count the ops named ``targets`` (one name or a list, ``"aten.mm"``) with the
    decorated ``formula(*input_shapes, out_shape=...)``."""
    def register(formula):
        for target in targets if isinstance(targets, (list, tuple)) else [targets]:
            name = _target_name(target)
            if name in flop_registry:
                raise RuntimeError(f"duplicate registrations for {name}")
            flop_registry[name] = formula
        return formula
    return register


def _shape(value):
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else value


def _matmul_as_torch(a, b):
    """What torch's ``matmul`` decomposes into for these shapes, as (op name, a, b) of the
    counted product, or None when it becomes a ``dot``/``mv`` (not counted)."""
    if len(b) == 1 and len(a) <= 2:
        return None
    if len(a) == 1 and len(b) == 2:
        return "aten.mm", (1, a[0]), b
    if len(a) == 2 and len(b) == 2:
        return "aten.mm", a, b
    if len(b) <= 2:  # a's batch folds into its rows
        return None if len(b) == 1 else ("aten.mm", (prod(a[:-1]), a[-1]), b)
    if len(a) <= 2:  # folded the other way: b's batch into the columns
        return None if len(a) == 1 else ("aten.mm", a, (a[1], prod(b[:-2]) * b[-1]))
    batch = prod(_broadcast(a[:-2], b[:-2]))
    return "aten.bmm", (batch, *a[-2:]), (batch, *b[-2:])


def _broadcast(a, b):
    a, b = (1,) * (len(b) - len(a)) + tuple(a), (1,) * (len(a) - len(b)) + tuple(b)
    return tuple(max(x, y) for x, y in zip(a, b))


class _ModuleScopes:
    """torch's ModuleTracker: names each module by its class (the outermost) or as
    ``parent.child``, and keeps the set of modules whose forward is running."""

    def __init__(self) -> None:
        self.names: dict = {}
        self.parents: list[str] = ["Global"]
        self._original_call = None

    def name_of(self, module) -> str:
        name = self.names.get(id(module))
        if name is None:
            name = self.names[id(module)] = type(module).__name__
        for child_name, child in module.named_children():
            self.names.setdefault(id(child), f"{name}.{child_name}")
        return name

    def __enter__(self):
        from ..nn.modules.module import Module

        scopes = self
        original = self._original_call = Module.__dict__["__call__"]
        self._module_cls = Module

        def tracked_call(module, *args, **kwargs):
            scopes.parents.append(scopes.name_of(module))
            try:
                return original(module, *args, **kwargs)
            finally:
                scopes.parents.pop()

        Module.__call__ = tracked_call
        return self

    def __exit__(self, *exc) -> None:
        self._module_cls.__call__ = self._original_call


class _BackwardRange:
    """What evaluate_function gives the engine, which hands the last one to ``end`` when the
    backward walk is over; it carries the set-aside observer's own range for the node."""

    __slots__ = ("outer",)

    def __init__(self, outer) -> None:
        self.outer = outer


class FlopCounterMode:
    """Count FLOPs inside a ``with`` block (torch's ``FlopCounterMode``).

    >>> with FlopCounterMode(display=False) as counter:
    ...     model(x).sum().backward()
    >>> counter.get_total_flops()
    """

    _recording = False  # record_function ranges are the profiler's business

    def __init__(self, mods=None, depth: int = 2, display: bool = True, custom_mapping: dict | None = None) -> None:
        self.flop_counts: dict = defaultdict(lambda: defaultdict(int))
        self.depth = depth
        self.display = display
        if mods is not None:
            warnings.warn("mods argument is not needed anymore, you can stop passing it", stacklevel=2)
        self.flop_registry = {**flop_registry,
                              **{_target_name(k): v for k, v in (custom_mapping or {}).items()}}
        self._scopes = None
        self._previous = None
        self._nodes: dict = {}  # id(node) -> (node, [(op name, flops)], module scopes) for the backward
        self._local = threading.local()
        self._thread = None

    # -- results -----------------------------------------------------------------------
    def get_total_flops(self) -> int:
        return sum(self.flop_counts["Global"].values())

    def get_flop_counts(self) -> dict:
        return {k: dict(v) for k, v in self.flop_counts.items()}

    def get_table(self, depth=None) -> str:
        if depth is None:
            depth = self.depth
        if depth is None:
            depth = 999999
        global_flops = self.get_total_flops()
        suffix = _suffix(global_flops)
        rows = []
        global_subsumed = False

        def module_rows(name, indent):
            nonlocal global_subsumed
            total = sum(self.flop_counts[name].values())
            global_subsumed |= total >= global_flops
            pad = " " * indent
            out = [[pad + name, _with_suffix(total, suffix), _percent(total, global_flops)]]
            for op, count in self.flop_counts[name].items():
                out.append([pad + " - " + str(op), _with_suffix(count, suffix), _percent(count, global_flops)])
            return out

        for name in sorted(self.flop_counts):
            if name == "Global" or name.count(".") + 1 > depth:
                continue
            rows.extend(module_rows(name, name.count(".")))
        if "Global" in self.flop_counts and not global_subsumed:
            for row in rows:
                row[0] = " " + row[0]
            rows = module_rows("Global", 0) + rows
        if not rows:
            rows = [["Global", "0", "0%"]]
        return _simple_table(["Module", "FLOP", "% Total"], rows)

    # -- the context -------------------------------------------------------------------
    def __enter__(self):
        self.flop_counts.clear()
        self._nodes = {}
        self._thread = threading.get_ident()
        self._scopes = _ModuleScopes().__enter__()
        # another observer (the profiler, add_graph's recorder) is set aside and comes back on exit
        self._previous = _function.active_profiler
        _function.active_profiler = self
        self._previous_fused = _functional._fused_kernel_observer
        _functional._fused_kernel_observer = self._fused_kernel
        if self._previous is None:
            for switch in recording_switches:  # + - * / take the path that reports each op
                switch(True)
        return self

    def __exit__(self, *exc):
        if _function.active_profiler is self:
            _function.active_profiler = self._previous
            if self._previous is None:
                for switch in recording_switches:
                    switch(False)
        self._previous = None
        _functional._fused_kernel_observer = self._previous_fused
        self._scopes.__exit__()
        self._nodes = {}
        if self.display:
            print(self.get_table(self.depth))
        return False

    # -- what the hot paths hand over ----------------------------------------------------
    def record_op(self, cls, inputs, params, user_function: bool = False):
        """Run the op (through the observer set aside, if any, so a profiler around this block
        still records it) and count it: only the outermost op of a forward, as torch counts the
        op a call dispatches to; a user Function's own ops are counted one by one."""
        local = self._local
        if getattr(local, "rerun", False):  # this counter's own call of the op: run it plainly
            local.rerun = False
            if self._previous is not None:  # ... or the set-aside observer's own call: it says so
                return self._previous.record_op(cls, inputs, params, user_function)
            return _function.RUN_UNRECORDED
        counting = not (getattr(local, "depth", 0) or getattr(local, "backward", False)
                        or getattr(local, "fused", False) or user_function)
        previous = self._previous
        if not counting and previous is None:
            return _function.RUN_UNRECORDED
        if counting:
            local.depth = 1
        local.rerun = True
        try:
            out = _function.RUN_UNRECORDED
            if previous is not None:
                out = previous.record_op(cls, inputs, params, user_function)
            if out is _function.RUN_UNRECORDED:
                if not counting:
                    return out
                local.rerun = True
                out = _function.run_intercepted(cls, inputs, params, user_function)
        finally:
            local.rerun = False
            if counting:
                local.depth = 0
        if counting:
            self._count(cls, inputs, out)
        return out

    def evaluate_function(self, node, previous):
        """The backward walk reached ``node``: count the products its input gradients take."""
        self._local.backward = True
        entry = self._nodes.get(id(node))
        if entry is not None and entry[0] is node:
            _, counter, scopes = entry
            needs = [child is not None for child, _ in node.next_functions]
            for name, flops in counter(needs):
                self._add(name, flops, scopes)
        outer = None
        if self._previous is not None:  # the observer set aside times the node as usual
            outer = self._previous.evaluate_function(node, previous.outer if previous is not None else None)
        return _BackwardRange(outer)

    def end(self, event) -> None:
        if isinstance(event, _BackwardRange):
            self._local.backward = False
            if event.outer is not None and self._previous is not None:
                self._previous.end(event.outer)
        elif self._previous is not None:
            self._previous.end(event)

    @contextlib.contextmanager
    def _fused_kernel(self, name, query, key, value):
        """Attention's math runs uncounted, as torch's fused kernel is one op: on the CPU one it
        has no formula for (nothing counted), on a GPU its efficient (float32) or flash one."""
        local = self._local
        outer = getattr(local, "fused", False)
        local.fused = True
        shapes = [_shape(query), _shape(key), _shape(value)]

        def finished(out):
            if not outer and getattr(query.device, "type", "cpu") != "cpu":
                half = str(query.dtype).rsplit(".", 1)[-1] in ("float16", "bfloat16")
                op = _SDPA_FLASH if half else _SDPA
                if op in self.flop_registry:
                    scopes = set(self._scopes.parents)
                    self._add(op, self.flop_registry[op](*shapes, out_shape=_shape(out)), scopes)
                    node = getattr(out, "grad_fn", None)
                    backward_op = op + "_backward"
                    if node is not None and backward_op in self.flop_registry:
                        flops = self.flop_registry[backward_op](_shape(out), *shapes, out_shape=None)
                        self._nodes[id(node)] = (node, lambda needs: [(backward_op, flops)], scopes)
            return out

        try:
            yield finished
        finally:
            local.fused = outer

    # -- counting ------------------------------------------------------------------------
    def _add(self, name: str, flops: int, scopes) -> None:
        for scope in scopes:
            self.flop_counts[scope][name] += flops

    def _count(self, cls, inputs, out) -> None:
        name = _op_name(cls).replace("::", ".")
        shapes = [_shape(value) for value in inputs]
        result = out[0] if isinstance(out, tuple) else out
        scopes = set(self._scopes.parents)
        counted = self._forward_products(cls, name, shapes, _shape(result))
        if counted is None:
            return
        for op, flops, backward in counted:
            self._add(op, flops, scopes)
            node = getattr(result, "grad_fn", None)
            if backward is not None and node is not None:
                self._nodes[id(node)] = (node, backward, scopes)

    def _forward_products(self, cls, name, shapes, out_shape):
        """[(torch's op name, flops, backward counter(needs) or None)] for this op."""
        registry = self.flop_registry
        if name == "aten.convolution" and name in registry:
            from ..ops.conv import ConvInput
            transposed = cls is ConvInput  # a transposed convolution runs as the input-gradient op
            x, w = shapes[0], shapes[1]
            flops = registry[name](x, w, None, None, None, None, transposed, out_shape=out_shape)

            def backward(needs, x=x, w=w, grad=out_shape):
                return [("aten.convolution_backward", conv_backward_flop(grad, x, w, transposed, needs[:2]))]
            return [(name, flops, backward)]
        if name == "aten.matmul":
            lowered = _matmul_as_torch(shapes[0], shapes[1])
            if lowered is None:
                return None
            name, a, b = lowered
            shapes = [a, b]
        if name not in registry:
            return None
        flops = registry[name](*shapes, out_shape=out_shape)
        product = {"aten.addmm": "aten.mm", "aten.baddbmm": "aten.bmm"}.get(name, name)
        if product not in ("aten.mm", "aten.bmm"):
            return [(name, flops, None)]
        factors = shapes[-2:]
        per_grad = registry[product](*factors, out_shape=out_shape) if product in registry else 0

        def backward(needs):
            # each input gradient of a product is a product of the same size (bias: a sum)
            return [(product, per_grad)] * sum(needs[-2:])
        return [(name, flops, backward)]


def _suffix(number) -> str:
    suffixes = ["", "K", "M", "B", "T"]
    return suffixes[max(0, min(len(suffixes) - 1, (len(str(number)) - 2) // 3))]


def _with_suffix(number, suffix) -> str:
    return f"{number / 1000 ** ['', 'K', 'M', 'B', 'T'].index(suffix):.3f}" + suffix


def _percent(num, denom) -> str:
    return "0%" if denom == 0 else f"{num / denom:.2%}"


def _simple_table(headers, rows) -> str:
    """tabulate's "simple" format, first column left-aligned and the rest right-aligned, as
    torch's table is printed (a header is at least two wider than its name)."""
    rows = [list(row) for row in rows]
    for column in range(len(headers)):
        cells = [row[column] for row in rows]
        if all(_is_number(cell) for cell in cells):
            # tabulate reads an all-numeric column as numbers and prints them with "g" (640.000 -> 640)
            for row in rows:
                row[column] = row[column] if row[column].lstrip("-").isdigit() else format(float(row[column]), "g")
    widths = [max(len(h) + 2, *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(row) for row in rows])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
