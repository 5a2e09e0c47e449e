"""torch.fx.experimental.proxy_tensor: ``make_fx(f)(*args)``, the aten-level graph of ``f``.

``make_fx`` runs ``f`` on the real inputs under a ``TorchDispatchMode`` that records every op the
dispatch layer hands it (the forward's ops, factory calls such as ``aten.ones.default``, in-place
methods such as ``aten.add_.Tensor``, and the backward's ops when ``f`` computes gradients) as a
``call_function`` node of an fx ``Graph``, and returns a ``GraphModule`` whose generated code runs
those ops again. Placeholders are named as torch names them (``x_1``), a tensor made inside ``f``
and read by an op becomes a ``_tensor_constantN`` attribute, and a function wrapped in
``torch.func.functionalize`` is recorded with out-of-place ops and a final ``aten.copy_.default``
into each input it mutated, as torch's functionalized graph.

The dispatch layer hands an op over with chainrule's own arguments (docs/extending.md); each op
torch's schema is known for is written with torch's arguments and target
(``torch.ops.aten.sum.dim_IntList(x_1, [0])``), so the code reads as torch's and runs through
``torch.ops.aten``. Any other op keeps chainrule's arguments and is called through the overload the
mode received, bound in the code's globals as ``aten_<op>_<overload>``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import operator
import sys
from collections.abc import Callable

import numpy as np

from ...nn.modules.module import Module
from ...nn.parameter import Parameter
from ...ops.namespaces import namespace
from ...tensor import Tensor
from ...utils._python_dispatch import (
    InplaceOverload,
    TorchDispatchMode,
    _disable_current_modes,
    _get_current_dispatch_mode_stack,
    _pop_mode,
    _push_mode,
    handled_op_parameters,
)
from ..graph import Graph
from ..graph_module import GraphModule
from ..passes.shape_prop import _extract_tensor_metadata

__all__ = ["ProxyTorchDispatchMode", "disable_proxy_modes_tracing", "get_innermost_proxy_mode", "get_isolated_graphmodule",
           "get_proxy_mode", "make_fx"]

_TRACING_MODES = ("real", "fake", "symbolic")


def make_fx(f: Callable, decomposition_table=None, tracing_mode: str = "real", _allow_non_fake_inputs: bool = False,
            *, pre_dispatch: bool = False, record_module_stack: bool = False, _allow_fake_constant: bool = False,
            _error_on_data_dependent_ops: bool = True, record_stack_traces: bool = False,
            proxy_module_inputs: bool = False, _disable_torch_fn_metadata_mode: bool = False) -> Callable:
    """A function that traces ``f`` on the arguments it is given and returns the GraphModule of the
    aten ops ``f`` ran. ``decomposition_table`` maps an overload (``torch.ops.aten.addmm.default``) to
    a function run in its place, whose own ops are recorded. Only ``tracing_mode="real"`` is built:
    ``f`` runs on the real inputs (their in-place writes happen, as in torch)."""
    if tracing_mode not in _TRACING_MODES:
        raise AssertionError(f"Unexpected tracing type: {tracing_mode}")
    if tracing_mode != "real":
        raise NotImplementedError(f"make_fx(tracing_mode={tracing_mode!r}): chainrule has no fake or symbolic "
                                  "tensors; trace with tracing_mode='real' on real inputs")
    decompositions = dict(decomposition_table or {})

    def wrapped(*args):
        return _trace(f, args, decompositions)

    return wrapped


def get_isolated_graphmodule(func: Callable, args: tuple, kwargs: dict, tracing_mode: str = "real",
                             decomposition_table=None) -> GraphModule:
    """The graph of ``func(*args, **kwargs)``, traced apart from any trace now running (its ops
    are not recorded by the outer one); the inputs are the flattened ``args`` and ``kwargs``."""
    from ...utils._pytree import tree_flatten, tree_unflatten

    leaves, spec = tree_flatten((tuple(args), dict(kwargs)))

    def flat(*leaves):
        call_args, call_kwargs = tree_unflatten(list(leaves), spec)
        return func(*call_args, **call_kwargs)

    with _disable_current_modes():
        return make_fx(flat, decomposition_table, tracing_mode)(*leaves)


def get_proxy_mode() -> ProxyTorchDispatchMode | None:
    """The innermost make_fx trace running now, or None (library code asks whether it is traced)."""
    tracing = [m for m in _get_current_dispatch_mode_stack() if isinstance(m, ProxyTorchDispatchMode)]
    return tracing[-1] if tracing else None


get_innermost_proxy_mode = get_proxy_mode


@contextlib.contextmanager
def disable_proxy_modes_tracing():
    """Ops inside the block are not recorded by the make_fx traces running (other modes stay on)."""
    tracing = get_proxy_mode()
    with _disable_current_modes() as modes:
        kept = [m for m in modes if not isinstance(m, ProxyTorchDispatchMode)]
        for mode in kept:
            _push_mode(mode)
        try:
            yield tracing
        finally:
            for _ in kept:
                _pop_mode()


def _placeholder_names(f: Callable, count: int) -> list[str]:
    """torch's names: the parameters of ``f``'s signature, ``arg<i>`` for ``*args``."""
    try:
        parameters = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = []
    for i in range(count):
        if i < len(parameters) and parameters[i].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                          inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.append(parameters[i].name)
        else:
            names.append(f"arg{i}")
    return names


def _trace(f: Callable, args: tuple, decompositions: dict) -> GraphModule:
    recorder = ProxyTorchDispatchMode(decompositions)
    for name, value in zip(_placeholder_names(f, len(args)), args):
        node = recorder.graph.placeholder(f"{name}_1")
        if isinstance(value, Tensor):
            recorder.bind(value, node)
            recorder.inputs.append((value, node))
        elif isinstance(value, (tuple, list, dict)) and _holds_tensor(value):
            raise NotImplementedError("make_fx: chainrule traces tensors passed as separate arguments; pass the "
                                      f"tensors inside {type(value).__name__} argument '{name}' one by one")
    with recorder:
        out = f(*args)
    recorder.copy_back_mutated_inputs()
    recorder.graph.output(recorder.value_of(out, inline_scalars=False))
    # torch names the module's class after the function (after the class for a module)
    name = type(f).__name__ if isinstance(f, Module) else getattr(f, "__name__", type(f).__name__)
    return GraphModule(dict(recorder.constants), recorder.graph, name)


def _holds_tensor(value) -> bool:
    if isinstance(value, Tensor):
        return True
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    return False


def _is_functionalizing() -> bool:
    from ... import func

    return bool(func._functionalizing)


def _removing_views() -> bool:
    """Inside ``functionalize(f, remove="mutations_and_views")``: views are recorded as copies."""
    from ... import func

    return bool(func._functionalizing) and func._functionalizing[-1] == "mutations_and_views"


class ProxyTorchDispatchMode(TorchDispatchMode):
    """The mode ``make_fx`` traces under: each op it is handed runs, then becomes a graph node."""

    def __init__(self, decompositions: dict) -> None:
        super().__init__()
        self.graph = Graph()
        self.decompositions = decompositions
        self.nodes: dict[int, object] = {}  # id(tensor) -> the node that last produced its value
        # id(tensor._data) -> node: a tensor made around a traced one's array (detach, the alias
        # torch.func.grad differentiates by) stands for the same value
        self.array_nodes: dict[int, object] = {}
        self.alive: list[Tensor] = []  # the tensors keyed above, kept so that their ids stay theirs
        self.constants: dict[str, Tensor] = {}
        self.inputs: list = []  # (input tensor, its placeholder)
        # functionalize's bookkeeping: a view -> (its base tensor, the node that made it)
        self.view_recipes: dict[int, tuple[Tensor, object]] = {}
        self.views_of: dict[int, list[Tensor]] = {}
        self.written: set[int] = set()  # ids of the tensors a functionalized write gave a new value
        # a tensor's version when bound, and each version box's version after a recorded in-place op
        # (a view shares its base's box): a later version means a write the graph has not seen
        self.versions: dict[int, int] = {}
        self.recorded_writes: dict[int, int] = {}
        self.last_output: tuple | None = None  # (tensor, node) of the last op recorded
        self.pending_indices: list = []  # (indices array, max.dim node) not yet read

    def bind(self, t: Tensor, node) -> None:
        if node.op != "get_attr" and "val" not in node.meta:
            # torch's nodes carry their value as a fake tensor (shape and dtype, no data) and its metadata;
            # here a tensor of that shape and dtype over one zero (holding no reference to t's array,
            # which the backward may then reuse in place, as without a trace)
            node.meta["val"] = Tensor._make(np.broadcast_to(np.zeros((), dtype=t._data.dtype), t._data.shape))
            node.meta["tensor_meta"] = _extract_tensor_metadata(t)
        if id(t) not in self.nodes:
            self.alive.append(t)
        self.nodes[id(t)] = node
        self.array_nodes[id(t._data)] = node
        self.versions[id(t)] = t._version

    def _current_node(self, t: Tensor):
        """``t``'s node, brought up to date when a method the dispatch layer does not show as one op
        (``fill_``, ``zero_``, ``copy_``) wrote it: such a method writes the result of the op it ran
        inside, the last op recorded, which then stands for ``t``."""
        node = self.nodes[id(t)]
        seen = max(self.versions[id(t)], self.recorded_writes.get(id(t._version_box), -1))
        if t._version == seen:
            return node
        last = self.last_output
        if last is None or last[0].shape != t.shape or not np.array_equal(last[0]._data, t._data):
            raise NotImplementedError(f"make_fx: a tensor of shape {list(t.shape)} was written in place by a "
                                      "call the dispatch layer does not show; the graph cannot say what it holds")
        if _is_functionalizing():
            self._rebind_written(t, last[1])
        else:
            self.bind(t, last[1])
        return last[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        decomposition = self.decompositions.get(func)
        if decomposition is not None:
            _, schema_args, schema_kwargs = _torch_form(func, args, kwargs)
            with self:  # the decomposition's own ops are recorded
                return decomposition(*schema_args, **schema_kwargs)
        out = func(*args, **kwargs)
        if isinstance(func, InplaceOverload):
            self._record_inplace(func, args, kwargs)
        else:
            self._record(func, args, kwargs, out)
        return out

    # ---- values: tensors as nodes, scalars inline, other tensors as constants
    def value_of(self, value, inline_scalars: bool = True, siblings: tuple = ()):
        if isinstance(value, Tensor):
            return self._tensor_value(value, inline_scalars, siblings)
        if isinstance(value, tuple):  # a named tuple (torch.return_types.max) is returned as a tuple
            return tuple(self.value_of(v, inline_scalars, value) for v in value)
        if isinstance(value, list):
            return [self.value_of(v, inline_scalars, tuple(value)) for v in value]
        if isinstance(value, dict):
            return {k: self.value_of(v, inline_scalars, tuple(value.values())) for k, v in value.items()}
        return value

    def _tensor_value(self, t: Tensor, inline_scalars: bool, siblings: tuple):
        if id(t) in self.nodes:
            return self._current_node(t)
        node = self.array_nodes.get(id(t._data))
        if node is not None:
            self.bind(t, node)
            return node
        node = self._indices_of_max(t) if self.pending_indices else None
        if node is not None:
            return node
        if inline_scalars and t.ndim == 0 and not t.requires_grad:
            # the dispatch layer hands a Python number over as a 0-d tensor: torch's graph writes the number
            return _number(t, siblings)
        # a module's parameter read inside is torch's _param_constantN, any other tensor _tensor_constantN
        kind = "_param_constant" if isinstance(t, Parameter) else "_tensor_constant"
        name = f"{kind}{sum(key.startswith(kind) for key in self.constants)}"
        self.constants[name] = t
        node = self.graph.create_node("get_attr", name, name=name)
        self.bind(t, node)
        return node

    # ---- recording
    def _node(self, target, args, kwargs, name: str):
        return self.graph.create_node("call_function", target, self.value_of(tuple(args)),
                                      self.value_of(dict(kwargs)), name=name)

    def _record(self, func, args, kwargs, out) -> None:
        if str(func) in ("aten.max.dim", "aten.min.dim") and isinstance(out, Tensor):
            # (chainrule's op returns the values; the indices it found are its parameter)
            index = handled_op_parameters()["index"]
            self._record_max_along_dim(func, args[0], {"dim": args[1], "keepdim": len(args) > 2 and args[2],
                                                       "index": index}, out)
            return
        if str(func) == "aten.sub.Tensor" and not kwargs and self._is_number(args[0]) and not self._is_number(args[1]):
            # number - tensor: torch's graph has aten.rsub.Scalar(tensor, number)
            func, args = _resolve("aten", "rsub", "Scalar") or func, (args[1], args[0])
        if str(func) == "aten.lift_fresh.default":
            # a torch.tensor literal: torch's graph copies the constant (lift_fresh_copy) and reads the copy
            func = _resolve("aten", "lift_fresh_copy", "default") or func
        if str(func) == "aten.where.self" and self._is_number(args[0]):
            # a where's condition is a Tensor in torch's schema, never a literal (chainrule's fill_ and copy_
            # write through where(<0-d False>, t, value)): bound first as a constant, it is read as one
            self._tensor_value(args[0], False, ())
        target, schema_args, schema_kwargs = _torch_form(func, args, kwargs)
        base = args[0] if args and isinstance(args[0], Tensor) else None
        is_view = (isinstance(out, Tensor) and base is not None and base is not out
                   and np.may_share_memory(out._data, base._data))
        if is_view and _removing_views():
            target = _copy_variant(target)
        node = self._node(target, schema_args, schema_kwargs, getattr(target, "_op_name", func._op_name))
        if isinstance(out, Tensor):
            self.bind(out, node)
            self.last_output = (out, node)
            if is_view:
                self.view_recipes[id(out)] = (base, node)
                self.views_of.setdefault(id(base), []).append(out)
        elif isinstance(out, (tuple, list)):
            for i, item in enumerate(out):
                if isinstance(item, Tensor):
                    self.bind(item, self.graph.create_node("call_function", operator.getitem, (node, i),
                                                           name="getitem"))

    def _is_number(self, t) -> bool:
        """Whether ``t`` will be written as a number (a 0-d tensor no traced op made)."""
        return (isinstance(t, Tensor) and t.ndim == 0 and not t.requires_grad and id(t) not in self.nodes
                and id(t._data) not in self.array_nodes)

    def _record_max_along_dim(self, func, x: Tensor, kwargs, values: Tensor) -> None:
        """``x.max(dim)``: chainrule's op takes the indices found and returns the values; torch's
        graph has ``aten.max.dim(x_1, dim)`` and both its outputs. The indices tensor chainrule makes
        beside the op is known by its values when an op or the output reads it."""
        dim, keepdim = kwargs["dim"], kwargs.get("keepdim", False)
        target = _resolve("aten", func._op_name, "dim")
        node = self._node(target, (x, dim, *((True,) if keepdim else ())), {}, func._op_name)
        self.bind(values, self.graph.create_node("call_function", operator.getitem, (node, 0), name="getitem"))
        indices = self.graph.create_node("call_function", operator.getitem, (node, 1), name="getitem")
        self.last_output = None
        index = np.asarray(kwargs["index"])
        self.pending_indices.append((index if keepdim else index.squeeze(dim), indices))

    def _indices_of_max(self, t: Tensor):
        for i, (index, item) in enumerate(self.pending_indices):
            if t._data.dtype == np.int64 and t._data.shape == index.shape and np.array_equal(t._data, index):
                del self.pending_indices[i]
                self.bind(t, item)
                return item
        return None

    def _record_inplace(self, func: InplaceOverload, args, kwargs) -> None:
        target = args[0]
        op_name = func._op_name
        self.recorded_writes[id(target._version_box)] = target._version
        self.last_output = None
        if not _is_functionalizing():
            resolved = _resolve(func.namespace, op_name, func._overloadname)
            self.bind(target, self._node(resolved or func, args, kwargs, op_name))
            return
        # functionalized: the out-of-place op, its result standing for the written tensor from here on
        functional = _resolve(func.namespace, op_name[:-1], func._overloadname) or func._function
        self._rebind_written(target, self._node(functional, args, kwargs, op_name[:-1]))

    def _rebind_written(self, t: Tensor, node, from_view: Tensor | None = None) -> None:
        """``t`` now holds ``node``'s value: so does the base it views (through the inverse view) and
        every other view of it (made again from the new value), as torch's functionalization does."""
        self.bind(t, node)
        self.written.add(id(t))
        recipe = self.view_recipes.get(id(t))
        if recipe is not None and recipe[0] is not from_view:
            base, view_node = recipe
            if base.numel() != t.numel() or view_node.target._op_name.removesuffix("_copy") not in _SHAPE_VIEWS:
                raise NotImplementedError(f"make_fx(functionalize(f)): a write through a view made by "
                                          f"{view_node.target} is not supported (only through reshaping views)")
            view = _resolve("aten", "view", "default")
            view = _copy_variant(view) if _removing_views() else view
            inverse = self.graph.create_node("call_function", view, (node, list(base.shape)), name=view._op_name)
            self._rebind_written(base, inverse, from_view=t)
            return
        # every view of the written tensor (the one written through included) is made again from it
        for view in self.views_of.get(id(t), ()):
            _, view_node = self.view_recipes[id(view)]
            remade = self.graph.create_node("call_function", view_node.target, (node, *view_node.args[1:]),
                                            dict(view_node.kwargs), name=view_node.target._op_name)
            self.bind(view, remade)

    def copy_back_mutated_inputs(self) -> None:
        """functionalize's epilogue: each input written inside gets its new value by ``aten.copy_``."""
        copy = _resolve("aten", "copy_", "default")
        for t, placeholder in self.inputs:
            if id(t) in self.written:
                self.graph.create_node("call_function", copy, (placeholder, self.nodes[id(t)]), name="copy_")


def _copy_variant(view_op):
    """``torch.ops.aten.view_copy.default`` for ``view.default``: the view op's copying twin."""
    return _resolve(view_op.namespace, view_op._op_name + "_copy", view_op._overloadname) or view_op


_SHAPE_VIEWS = {"view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "flatten", "unflatten"}


def _number(t: Tensor, siblings: tuple):
    """A 0-d tensor as the number torch's graph shows: ``2`` for a float 2.0 next to floating
    tensors (where int and float give the same result), the value itself otherwise."""
    value = t.item()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and siblings and all(
            s.is_floating_point() for s in siblings if isinstance(s, Tensor) and s is not t):
        return int(value)
    return value


# ---- chainrule's arguments as torch's schema
def _resolve(namespace_name: str, op_name: str, overload_name: str):
    """``torch.ops.<namespace>.<op>.<overload>`` as chainrule answers it, or None."""
    try:
        return getattr(getattr(namespace(namespace_name), op_name), overload_name)
    except AttributeError:
        return None


def _reduction(op_name: str, dim_overload: str, extra=("dtype",)) -> Callable:
    def form(args, kwargs):
        x = args[0]
        dims, keepdim = kwargs.get("dims"), kwargs.get("keepdim", False)
        options = {k: kwargs[k] for k in extra if kwargs.get(k) is not None}
        whole = dims is None or sorted(d % max(x.ndim, 1) for d in dims) == list(range(x.ndim))
        if whole and not keepdim:
            return op_name, "default", (x,), options
        return op_name, dim_overload, (x, list(dims), *((True,) if keepdim else ())), options
    return form


def _max_or_min(args, kwargs):
    x, dims = args[0], kwargs.get("dims")
    if "index" in kwargs:
        return None
    whole = dims is None or sorted(d % max(x.ndim, 1) for d in dims) == list(range(x.ndim))
    if not whole or kwargs.get("keepdim"):
        return None
    return ("max" if kwargs.get("largest", True) else "min"), "default", (x,), {}


def _slice(args, kwargs):
    key = kwargs.get("key")
    if not isinstance(key, slice):
        return None
    start = 0 if key.start is None else key.start
    end = sys.maxsize if key.stop is None else key.stop
    step = () if key.step in (None, 1) else (key.step,)
    return "slice", "Tensor", (args[0], 0, start, end, *step), {}


def _select(args, kwargs):
    key = kwargs.get("key")
    if not isinstance(key, int):
        return None
    return "select", "int", (args[0], 0, key), {}


def _cat(args, kwargs):
    if kwargs.get("skipped"):
        return None
    dim = kwargs.get("dim", 0)
    return "cat", "default", ([*args], *((dim,) if dim else ())), {}


def _pow(args, kwargs):
    if "exponent" in kwargs and len(args) == 1:
        return "pow", "Tensor_Scalar", (args[0], kwargs["exponent"]), {}
    return None if kwargs else ("pow", "Tensor_Tensor", tuple(args), {})


def _with_alpha(op_name: str, overload: str) -> Callable:
    def form(args, kwargs):
        if set(kwargs) - {"alpha"}:
            return None
        alpha = {} if kwargs.get("alpha", 1) == 1 else {"alpha": kwargs["alpha"]}
        return op_name, overload, tuple(args), alpha
    return form


def _named(op_name: str, overload: str, *names: str, extra: Callable = lambda kwargs: ()) -> Callable:
    """The op's tensor inputs, then its keyword arguments ``names`` in order, positionally."""
    def form(args, kwargs):
        if set(kwargs) - set(names):
            return None
        values = tuple(list(kwargs[n]) if isinstance(kwargs[n], tuple) else kwargs[n] for n in names)
        return op_name, overload, (*args, *values, *extra(kwargs)), {}
    return form


def _filled(args, kwargs):
    """index.Filled (fill_ with a number, zero_) as torch's functional ops: zero_ passes the int 0,
    fill_ its number as an array of self's dtype (torch's graph writes fill.Scalar(x, 2.0))."""
    value = kwargs.get("value")
    if type(value) is int and value == 0 and len(args) == 1:
        return "zero", "default", tuple(args), {}
    if len(args) != 1 or getattr(value, "ndim", 1) != 0:
        return None
    return "fill", "Scalar", (args[0], value.item()), {}


def _to_copy(args, kwargs):
    if set(kwargs) - {"dtype"}:
        return None
    from ... import _dtype

    return "_to_copy", "default", tuple(args), {"dtype": _dtype.to_dtype(kwargs["dtype"])}


def _permute(args, kwargs):
    return None if set(kwargs) != {"dims"} else ("permute", "default", (args[0], list(kwargs["dims"])), {})


def _clone(args, kwargs):
    # preserve_format is clone's default: torch's graph writes no memory_format for it
    return None if set(kwargs) - {"preserve_format"} else ("clone", "default", tuple(args), {})


def _clamp(args, kwargs):
    if set(kwargs) - {"min", "max"} or len(args) != 1:
        return None
    low, high = kwargs.get("min"), kwargs.get("max")
    return "clamp", "default", (args[0], low, *((high,) if high is not None else ())), {}


def _as_dispatched(op_name: str) -> Callable:
    """An op the dispatch layer hands over in torch's own schema (addcmul's ``value=`` keyword): written as it came."""
    def form(args, kwargs):
        return op_name, "default", tuple(args), dict(kwargs)
    return form


_SCHEMA_FORMS: dict[str, Callable] = {
    "aten._to_copy.default": _to_copy,
    "aten.permute.default": _permute,
    "aten.clamp.default": _clamp,
    "aten.clone.default": _clone,
    "aten.filled.default": _filled,
    "aten.sum.default": _reduction("sum", "dim_IntList"),
    "aten.mean.default": _reduction("mean", "dim"),
    "aten.max.default": _max_or_min,
    "aten.view.default": _named("view", "default", "shape"),
    "aten.unsafe_view.default": _named("_unsafe_view", "default", "shape"),
    "aten.expand.default": _named("expand", "default", "shape"),
    "aten.transpose.int": _named("transpose", "int", "dim0", "dim1"),
    "aten._softmax.default": _named("_softmax", "default", "dim", extra=lambda kwargs: (False,)),
    "aten._log_softmax.default": _named("_log_softmax", "default", "dim", extra=lambda kwargs: (False,)),
    "aten.slice.Tensor": _slice,
    "aten.select.int": _select,
    "aten.cat.default": _cat,
    "aten.pow.Tensor_Tensor": _pow,
    "aten.add.Tensor": _with_alpha("add", "Tensor"),
    "aten.sub.Tensor": _with_alpha("sub", "Tensor"),
    # ops whose dispatch arguments are already torch's (keywords included)
    "aten.addcmul.default": _as_dispatched("addcmul"),
    "aten.addcdiv.default": _as_dispatched("addcdiv"),
}


def _torch_form(func, args, kwargs) -> tuple:
    """(target, args, kwargs) as torch's graph writes the op: the overload ``torch.ops`` answers with
    torch's arguments where its schema is known, else ``func`` itself with chainrule's arguments."""
    if getattr(func, "_schema_args", False):  # the dispatch layer handed the op over in torch's schema
        return _resolve("aten", func._op_name, func._overloadname) or func, tuple(args), dict(kwargs)
    form = _SCHEMA_FORMS.get(str(func))
    if form is not None:
        written = form(tuple(args), dict(kwargs))
        if written is not None:
            op_name, overload, schema_args, schema_kwargs = written
            target = _resolve("aten", op_name, overload)
            if target is not None:
                return target, schema_args, schema_kwargs
    elif not kwargs or str(func).split(".")[1] in _FACTORIES:
        target = _resolve(func.namespace, func._op_name, func._overloadname)
        if target is not None:
            return target, tuple(args), dict(kwargs)
    return func, tuple(args), dict(kwargs)


# factory calls reach a mode with torch's own arguments (aten.ones.default([3], device=..., pin_memory=False))
_FACTORIES = {"ones", "zeros", "full", "empty", "ones_like", "new_empty_strided"}
