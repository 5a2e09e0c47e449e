"""torch.func: function transforms — ``grad``, ``vjp``, ``jvp``, ``jacrev``/``jacfwd``,
``hessian``, ``vmap`` — and ``functional_call``, for code that treats a model as a function of
its parameters (per-sample gradients, ensembles, meta-learning).

They are built on the same reverse-mode engine as ``autograd.grad``; there is no second
machinery, which keeps every transform as exact as the ops' own rules:

- ``grad(f)(x)`` runs ``f`` on a fresh alias of ``x`` and asks the engine for d f / d x. When
  ``x`` itself requires grad (an outer ``grad``, or a parameter) the result keeps its graph, so
  transforms nest: ``grad(grad(f))`` is the second derivative.
- ``jvp``, ``linearize`` and ``jacfwd`` are forward mode: ``func`` runs on dual tensors
  (autograd.forward_ad), whose tangents every op pushes forward from its own backward rule. A
  ``jvp`` inside an active dual level (there is one level at a time) uses the double-vjp identity.
- ``vmap`` runs ``f`` on slice 0 while recording its ops (a ``grad`` inside: its backward's too),
  then replays them once on the whole batch, each by a batching rule (one GEMM for a linear, as
  torch's) or, for an op without one, once per slice (``_vmap_batched``): ``f`` runs once, as
  torch's. A batched value no recorded op made (argmax's) makes the last slice's own run check the
  replay. What the record cannot vouch for (a user Function, an in-place write, an operand of
  unknown origin, a batched value chainrule's own code read as a Python number) and ``randomness``
  other than "error" run ``f`` once per slice and stack the results, as before. ``randomness``:
  "error" (the default) refuses random ops inside,
  "different" lets each slice draw its own numbers, "same" gives every slice the same draws (the
  CPU generator is rewound to where it stood before each slice), as torch's vmap does.

Arguments and results may be nested tuples, lists and dicts of tensors (pytrees), as in torch:
``grad(loss)(params_dict, x)`` returns a dict of gradients.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple

import numpy as np

from . import _vmap_batched, _vmap_frames
from .autograd import batched_walk as _batched_walk
from .autograd import engine as _engine
from .autograd import forward_ad as _forward_ad
from .autograd import function as _function
from .autograd import functional as _functional
from .autograd import profiler as _profiler
from .autograd.function import Function
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from .ops import random as _random
from .ops.compat import class_repr
from .ops.creation import eye as _eye
from .ops.shape import cat as _cat
from .ops.shape import stack as _stack
from .tensor import Tensor
from .utils._pytree import tree_flatten, tree_map_, tree_structure, tree_unflatten

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "linearize", "jacrev", "jacfwd", "hessian", "vmap", "functional_call",
           "stack_module_state", "functionalize", "rearrange", "replace_all_batch_norm_modules_"]


# ---------------------------------------------------------------- pytrees

def _flatten(tree):
    """(leaves, rebuild): the tensors and other leaves of nested tuples/lists/dicts, and a
    function that builds the same structure from new leaves."""
    if isinstance(tree, (tuple, list)):
        parts = [_flatten(item) for item in tree]
        kind = type(tree)

        def rebuild(leaves, parts=parts, kind=kind):
            out, at = [], 0
            for sub_leaves, sub_rebuild in parts:
                out.append(sub_rebuild(leaves[at:at + len(sub_leaves)]))
                at += len(sub_leaves)
            return kind(out) if kind in (tuple, list) else kind(*out)

        return [leaf for sub_leaves, _ in parts for leaf in sub_leaves], rebuild
    if isinstance(tree, dict):
        keys = list(tree)
        leaves, rebuild_values = _flatten([tree[key] for key in keys])
        return leaves, lambda new, keys=keys: dict(zip(keys, rebuild_values(new)))
    return [tree], lambda new: new[0]


def _spec_pprint(spec) -> str:
    """torch's treespec_pprint: ``*``, ``(*, *)``, ``(*,)``, ``{'p': *, 'q': [*, *]}``, ``P(a=*, b=*)``."""
    if spec.is_leaf():
        return "*"
    shown = [_spec_pprint(child) for child in spec.children_specs]
    if spec.type is dict:
        return "{" + ", ".join(f"{key!r}: {child}" for key, child in zip(spec.context, shown)) + "}"
    if spec.type is list:
        return "[" + ", ".join(shown) + "]"
    if spec.type is namedtuple:  # (its context is the class)
        fields = ", ".join(f"{field}={child}" for field, child in zip(spec.context._fields, shown))
        return f"{spec.context.__name__}({fields})"
    return "(" + ", ".join(shown) + ("," if len(shown) == 1 else "") + ")"


def _argnums_tuple(argnums, count: int, where: str) -> tuple:
    numbers = argnums if isinstance(argnums, tuple) else (argnums,)
    if not numbers:
        raise RuntimeError("argnums must be non-empty")
    if not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    for number in numbers:
        if not isinstance(number, int):
            raise RuntimeError(f"argnum must be int, got: {type(number)}")
        if not -count <= number < count:
            raise RuntimeError(f"Got argnum={number}, but only {count} positional inputs")
    return tuple(number % count for number in numbers)


def _unwatched_detach(t):
    """``t.detach()`` that a transform does for itself, out of sight of dispatch modes (torch's
    transforms lift tensors to their level without an aten op); a wrapper subclass still answers
    it, its values living inside it."""
    return t.detach() if getattr(type(t), "__torch_dispatch__", None) is not None else t._plain_detach()


def _alias(x):
    """A tensor to differentiate with respect to: connected to ``x``'s graph when ``x`` requires
    grad (so an outer transform sees through), else a fresh leaf."""
    if not isinstance(x, Tensor):
        return x
    if x.requires_grad:
        alias = x.view_as(x)
    elif _forward_ad.unpack_dual(x).tangent is not None:  # a view keeps the tangent (an outer jvp)
        alias = x.view_as(x).requires_grad_(True)
    else:
        alias = _unwatched_detach(x).requires_grad_(True)
    return _vmap_frames.note_alias(x, alias) if _vmap_frames.running() else alias


def _keeps_graph(leaves) -> bool:
    """Whether a transform must record its own backward pass: an input requires grad (an outer
    transform differentiates through), or carries a tangent (an outer jvp/jacfwd pushes it
    through the backward's ops, which a pass without create_graph partly runs on raw arrays)."""
    return any(isinstance(x, Tensor) and (x.requires_grad or _forward_ad.unpack_dual(x).tangent is not None)
               for x in leaves)


def _grads(outputs, inputs, cotangents, create_graph: bool):
    """d outputs / d inputs contracted with the cotangents; zeros where an input is unused."""
    tensors = [x for x in inputs if isinstance(x, Tensor)]
    paired = cotangents if cotangents is not None else [None] * len(outputs)
    pairs = [(out, co) for out, co in zip(outputs, paired) if out.requires_grad]
    if tensors and pairs:  # an output that does not require grad does not depend on any input
        found = _engine.grad([out for out, _ in pairs], tensors,
                             None if cotangents is None else [co for _, co in pairs],
                             retain_graph=True, create_graph=create_graph, allow_unused=True)
    else:
        found = [None] * len(tensors)
    found = iter(found)
    result = []
    for x in inputs:
        if not isinstance(x, Tensor):
            result.append(None)
            continue
        g = next(found)
        if g is None:
            g = x.new_zeros(x.shape)
            if _function.tracing_ops:  # the same zeros for every slice of a vmap that records its ops
                _function.traced_constant(g)
        result.append(g if create_graph else _unwatched_detach(g))
    return result


def _outside_graph(outside_records: bool, outputs, inside) -> bool:
    """Whether a transform must record its backward pass for the level it was called at: grad
    mode is on there and ``outputs`` depend on a tensor requiring grad that the transform did not
    make (``inside``: its aliases), such as a closed-over model parameter."""
    return outside_records and _functional.reaches_outside(outputs, inside)


def _kept_if_outside(g, outside: bool, inside):
    """A result of a pass recorded for the outside (``outside``): its graph kept where it reaches a
    tensor from outside, as torch's results are, else detached (a result that depends only on the
    transform's own aliases does not require grad, as in torch)."""
    if not isinstance(g, Tensor) or (outside and _functional.reaches_outside([g], inside)):
        return g
    return _unwatched_detach(g)


def _aux_as_seen_outside(aux, outside_records: bool, inside):
    """``aux`` as the level the transform was called at sees it: what it computed from the
    transform's own aliases carries no graph (torch unwraps it), what depends on a tensor from
    outside keeps its graph to it."""
    leaves, rebuild = _flatten(aux)
    return rebuild([_kept_if_outside(leaf, outside_records, inside) for leaf in leaves])


def _tangent_only(x):
    """``x`` detached, keeping its tangent: what a transform recorded only to carry an outer
    jvp's tangents through (no outer transform differentiates it) leaves no graph on its results,
    as torch's leave none."""
    if not isinstance(x, Tensor):
        return x
    tangent = _forward_ad.unpack_dual(x).tangent
    plain = _unwatched_detach(x)
    return plain if tangent is None else _forward_ad.make_dual(plain, tangent.detach())


def _unrecorded_outside(result, outside_records: bool):
    """A transform's results as the level it was called at sees them: torch's transforms compute
    whatever the grad mode outside (grad ignores an outer no_grad), but a call made while grad mode
    is off records nothing there, so nothing it returns requires grad (curvlinops' Hessian products
    under @no_grad() go on to out= ops and .numpy()). Tangents of an outer jvp are kept."""
    if outside_records:
        return result
    leaves, rebuild = _flatten(result)
    return rebuild([_tangent_only(leaf) for leaf in leaves])


def _split_aux(result, has_aux: bool, where: str, check_aux: bool = True):
    if not has_aux:
        return result, None
    if not isinstance(result, tuple) or len(result) != 2:
        raise RuntimeError(f"{where}: output of function f should be a tuple: (output, aux) if has_aux is True")
    if check_aux:
        _aux_only_tensors(result[1])
    return result


def _aux_only_tensors(aux) -> None:
    """torch's transforms hand aux back unwrapped, leaf by leaf, and refuse a leaf that is no
    tensor (a float, an int, None)."""
    for leaf in _flatten(aux)[0]:
        if not isinstance(leaf, Tensor):
            raise RuntimeError(f"Expected tensors, got unsupported type {type(leaf)}")


def _only_tensors_differentiated(leaves) -> None:
    """torch's check of the differentiated arguments of grad, vjp and jacrev, before f runs."""
    for leaf in leaves:
        if not isinstance(leaf, Tensor):
            raise ValueError(f"Thing passed to transform API must be Tensor, got {type(leaf)}")


def _only_tensor_outputs(out_leaves, where: str) -> None:
    """torch's check of a reverse transform's outputs: at least one, and tensors only."""
    if not out_leaves or (len(out_leaves) == 1 and out_leaves[0] is None):
        raise RuntimeError(f"{where}: Expected f to be a function that has non-empty output (got output = "
                           f"{out_leaves})")
    for leaf in out_leaves:
        if not isinstance(leaf, Tensor):
            raise RuntimeError(f"{where}: expected f(*primals) to return only tensors, got unsupported type "
                               f"{type(leaf)}")


# ---------------------------------------------------------------- grad, vjp, jvp

@contextlib.contextmanager
def _transform_running(batching: bool = False):
    """Count a running transform, so that a user Function applied inside is held to torch's
    conditions for it (autograd.function._refuse_if_not_written_for_transforms)."""
    state = _function.func_transforms
    state.active += 1
    state.batching += batching
    try:
        yield
    finally:
        state.active -= 1
        state.batching -= batching


def _counted(wrapper, batching: bool = False):
    """``wrapper`` run as a transform (see _transform_running)."""
    def transform(*args, **kwargs):
        with _transform_running(batching):
            return wrapper(*args, **kwargs)

    return transform


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """Like ``grad``, returning ``(gradient, value)``; with ``has_aux``, ``(gradient, (value, aux))``."""
    import functools

    @functools.wraps(func)  # torch's wrapper keeps func's name and signature (make_fx names inputs by it)
    def wrapper(*args, **kwargs):
        outside_records = is_grad_enabled()
        return _unrecorded_outside(computed(outside_records, *args, **kwargs), outside_records)

    def computed(outside_records, *args, **kwargs):
        numbers = _argnums_tuple(argnums, len(args), "grad_and_value(f)(*args)")
        with enable_grad(), _transform_running():
            flat_args = {}
            keeps_any = False
            args = list(args)
            for number in numbers:
                leaves, rebuild = _flatten(args[number])
                _only_tensors_differentiated(leaves)
                keeps = _keeps_graph(leaves)
                keeps_any = keeps_any or keeps
                aliases = [_alias(leaf) for leaf in leaves]
                flat_args[number] = (aliases, rebuild, keeps)
                args[number] = rebuild(aliases)
            with _vmap_frames.capturing(func):
                output, aux = _split_aux(func(*args, **kwargs), has_aux, "grad_and_value(f)(*args)", check_aux=False)
            if not isinstance(output, Tensor):
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got "
                                   f"{class_repr(type(output))}")
            if output.dim() != 0:
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got "
                                   f"tensor with {output.dim()} dims. Maybe you wanted to use the vjp or jacrev "
                                   "APIs instead?")
            if has_aux:  # torch checks the output first, then unwraps aux
                _aux_only_tensors(aux)
            # one backward pass for every differentiated argument
            everything = [leaf for number in numbers for leaf in flat_args[number][0]]
            outside = _outside_graph(outside_records, [output], everything)
            found = _grads([output], everything, None, create_graph=keeps_any or outside)
            gradients, at = [], 0
            for number in numbers:
                aliases, rebuild, keeps = flat_args[number]
                mine = found[at:at + len(aliases)]
                gradients.append(rebuild(mine if keeps else [_kept_if_outside(g, outside, everything) for g in mine]))
                at += len(aliases)
            _functional.retire_leaves(everything)
        gradient = tuple(gradients) if isinstance(argnums, tuple) else gradients[0]
        value = output if keeps_any or outside else _unwatched_detach(output)
        if has_aux and not keeps_any:
            aux = _aux_as_seen_outside(aux, outside_records, everything)
        if has_aux:
            return gradient, (value, aux)
        return gradient, value

    return wrapper


def grad(func, argnums=0, has_aux: bool = False):
    """The gradient of a scalar function with respect to its ``argnums`` argument(s):
    ``grad(f)(x)`` has ``x``'s structure and shapes. With ``has_aux`` ``f`` returns
    ``(output, aux)`` and ``grad`` returns ``(gradient, aux)``."""
    import functools

    both = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        gradient, value = both(*args, **kwargs)
        return (gradient, value[1]) if has_aux else gradient

    return wrapper


def vjp(func, *primals, has_aux: bool = False):
    """``(func(*primals), vjp_fn)``: ``vjp_fn(cotangents)`` returns the vector-Jacobian
    product with respect to each primal, as a tuple. With ``has_aux`` a third element, aux."""
    outside_records = is_grad_enabled()
    result = _vjp(func, *primals, has_aux=has_aux, outside_records=outside_records)
    if outside_records:
        return result
    vjp_fn = result[1]

    def unrecorded_vjp_fn(cotangents, retain_graph: bool = True, create_graph: bool | None = None):
        return _unrecorded_outside(vjp_fn(cotangents, retain_graph, create_graph), False)

    return (_unrecorded_outside(result[0], False), unrecorded_vjp_fn,
            *(_unrecorded_outside(result[2:], False)))


def _vjp(func, *primals, has_aux: bool = False, outside_records: bool = False):
    with enable_grad(), _transform_running():
        flat = [_flatten(primal) for primal in primals]
        _only_tensors_differentiated([leaf for leaves, _ in flat for leaf in leaves])
        aliases = [[_alias(leaf) for leaf in leaves] for leaves, _ in flat]
        keeps = _keeps_graph([leaf for leaves, _ in flat for leaf in leaves])
        outer_grad = any(isinstance(leaf, Tensor) and leaf.requires_grad for leaves, _ in flat for leaf in leaves)
        with _vmap_frames.capturing(func):
            output, aux = _split_aux(func(*[rebuild(a) for a, (_, rebuild) in zip(aliases, flat)]), has_aux,
                                     "vjp(f, *primals)")
    out_leaves, out_rebuild = _flatten(output)
    _only_tensor_outputs(out_leaves, "vjp(f, *primals)")
    all_aliases = [leaf for group in aliases for leaf in group]
    outside = not outer_grad and _outside_graph(outside_records, out_leaves, all_aliases)

    def vjp_fn(cotangents, retain_graph: bool = True, create_graph: bool | None = None):
        co_leaves, _ = _flatten(cotangents)
        if tree_structure(cotangents) != tree_structure(output):
            raise RuntimeError(f"Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {_spec_pprint(tree_structure(cotangents))}, primal "
                               f"output: {_spec_pprint(tree_structure(output))}")
        for co, out in zip(co_leaves, out_leaves):
            if tuple(co.shape) != tuple(out.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {_torch_repr(co.shape)} and "
                                   f"output[0] has a shape of {_torch_repr(out.shape)}.")
        graph = (keeps or outside or _keeps_graph(co_leaves)) if create_graph is None else create_graph
        with enable_grad():
            found = _grads(out_leaves, all_aliases, co_leaves, create_graph=graph)
        if graph and create_graph is None and not outer_grad and not any(co.requires_grad for co in co_leaves):
            found = [g if outside and _functional.reaches_outside([g], all_aliases) else _tangent_only(g)
                     for g in found]
        result, at = [], 0
        for group, (_, rebuild) in zip(aliases, flat):
            result.append(rebuild(found[at:at + len(group)]))
            at += len(group)
        return tuple(result)

    shown = out_rebuild([leaf if outer_grad or outside else _tangent_only(leaf) for leaf in out_leaves])
    if has_aux and not keeps:
        aux = _aux_as_seen_outside(aux, outside_records, all_aliases)
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def jvp(func, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``(func(*primals), J·tangents)``: the Jacobian-vector product, in forward mode — one run
    of ``func`` on dual tensors (autograd.forward_ad) carries the tangents along."""
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it should be valid to "
                           "call f(*primals)." if not isinstance(primals, tuple) else
                           "jvp(f, primals, tangents): Expected tangents to be a tuple. E.g. it should be valid to "
                           "call f(*primals).")
    if len(primals) != len(tangents):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have the same python "
                           f"structure, got {len(primals)} primals and {len(tangents)} tangents")
    primal_leaves = [leaf for primal in primals for leaf in _flatten(primal)[0]]
    tangent_leaves = [leaf for tangent in tangents for leaf in _flatten(tangent)[0]]
    if len(primal_leaves) != len(tangent_leaves):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have the same python "
                           "structure")
    for p, t in zip(primal_leaves, tangent_leaves):
        if isinstance(p, Tensor) and (not isinstance(t, Tensor) or tuple(p.shape) != tuple(t.shape)):
            raise RuntimeError("Trying to set a forward gradient that has a different size than that of the original "
                               f"Tensor, this is not supported. Tensor is of size {list(p.shape)} while the given "
                               f"forward gradient is of size {list(getattr(t, 'shape', ()))}.")
    outside_records = is_grad_enabled()
    if _forward_ad._level is not None:  # already inside a dual level (one at a time): the double-vjp way
        with _transform_running():
            return _unrecorded_outside(_jvp_by_double_vjp(func, primals, tangents, has_aux), outside_records)
    with _forward_ad.dual_level(), _transform_running():
        output, tangent_out, aux = _run_dual(func, primals, tangents, has_aux, "jvp(f, primals, tangents)")
    return _unrecorded_outside((output, tangent_out, aux) if has_aux else (output, tangent_out), outside_records)


def _run_dual(func, primals, tangents, has_aux: bool, where: str):
    """Inside a dual level: ``func`` on dual primals; ``(output, its tangents, aux)``, an output
    that does not depend on the primals getting zero tangents."""
    duals = []
    for primal, tangent in zip(primals, tangents):
        leaves, rebuild = _flatten(primal)
        made = [_forward_ad.make_dual(leaf, t) if isinstance(leaf, Tensor) else leaf
                for leaf, t in zip(leaves, _flatten(tangent)[0])]
        duals.append(rebuild(made))
    with _vmap_frames.capturing(func):
        output, aux = _split_aux(func(*duals), has_aux, where)
    out_leaves, out_rebuild = _flatten(output)
    primal_out, tangent_out = [], []
    for leaf in out_leaves:
        if not isinstance(leaf, Tensor):
            raise RuntimeError(f"{where}: expected f(*primals) to return only tensors, got unsupported type "
                               f"{type(leaf)}")
        primal, tangent = _forward_ad.unpack_dual(leaf)
        primal_out.append(primal)
        tangent_out.append(tangent if tangent is not None else leaf.detach().new_zeros(leaf.shape))
    return out_rebuild(primal_out), out_rebuild(tangent_out), aux


def _jvp_by_double_vjp(func, primals, tangents, has_aux: bool):
    """J·t as d/du ⟨Jᵀu, t⟩ through reverse mode, for a jvp inside an active dual level."""
    keeps = _keeps_graph([leaf for primal in primals for leaf in _flatten(primal)[0]])
    with enable_grad():
        result = vjp(func, *primals, has_aux=has_aux)
        output, vjp_fn = result[0], result[1]
        out_leaves, out_rebuild = _flatten(output)
        dummies = [leaf.detach().new_zeros(leaf.shape).requires_grad_(True) for leaf in out_leaves]
        pulled = vjp_fn(out_rebuild(dummies), create_graph=True)
        pulled_leaves = [leaf for group in pulled for leaf in _flatten(group)[0]]
        tangent_leaves = [leaf for tangent in tangents for leaf in _flatten(tangent)[0]]
        pairs = [(p, t) for p, t in zip(pulled_leaves, tangent_leaves) if p.requires_grad]
        if pairs:
            pushed = _grads([p for p, _ in pairs], dummies, [t for _, t in pairs], create_graph=keeps)
        else:
            pushed = [d.detach() for d in dummies]
    tangent_out = out_rebuild(pushed)
    return (output, tangent_out, result[2]) if has_aux else (output, tangent_out)


def linearize(func, *primals):
    """``(func(*primals), jvp_fn)``: ``jvp_fn(*tangents)`` is the Jacobian-vector product at
    ``primals`` (each call one forward-mode run of ``func``, as torch's linearize computes)."""
    with _transform_running():
        output = func(*primals)
    flat_primals = _flatten(primals)[0]

    def jvp_fn(*tangents):
        # torch's jvp_fn replays a graph traced for the primals' shapes, devices and dtypes: other
        # tangents are refused (a float64 tangent of a float32 primal too, which jvp itself takes)
        flat_tangents = _flatten(tangents)[0]
        if len(flat_tangents) != len(flat_primals) or type(tangents) is not type(primals):
            raise RuntimeError(f"Expected the tangents to have the same argspec as the primals: {len(flat_tangents)} "
                               f"tangents for {len(flat_primals)} primals")
        for index, (t, p) in enumerate(zip(flat_tangents, flat_primals)):
            for what in ("shape", "device", "dtype"):
                if isinstance(t, Tensor) and isinstance(p, Tensor) and getattr(t, what) != getattr(p, what):
                    raise RuntimeError(f"tangent:{index} with {what} {_torch_repr(getattr(t, what))} in flattened "
                                       f"pytree doesn't match the {what} {_torch_repr(getattr(p, what))} of the "
                                       "corresponding primal.")
        return jvp(func, primals, tangents)[1]

    return output, jvp_fn


def _torch_repr(value) -> str:
    """A shape, device or dtype as torch prints it in a message (torch.Size([3]), torch.float32)."""
    return repr(value).replace("chainrule.", "torch.")


# ---------------------------------------------------------------- Jacobians

def jacrev(func, argnums=0, *, has_aux: bool = False, chunk_size=None, _preallocate_and_copy: bool = False):
    """The Jacobian of ``func`` with respect to its ``argnums`` argument(s), shape
    ``output.shape + input.shape``: one batched reverse walk per output, its cotangents the
    identity's rows, ``chunk_size`` of them at a time (all when None), as torch vmaps the vjp
    (autograd.functional.jacobian over the arguments' leaves). Under an outer transform (inputs
    that require grad or carry tangents) it is one recorded reverse pass per output element."""
    if chunk_size is not None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool):
            raise TypeError(f"jacrev: `chunk_size` should be an int, got {type(chunk_size).__name__}")
        if chunk_size <= 0:
            raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    def wrapper(*args):
        outside_records = is_grad_enabled()
        return _unrecorded_outside(computed(outside_records, *args), outside_records)

    def computed(outside_records, *args):
        numbers = _argnums_tuple(argnums, len(args), "jacrev(f)(*args)")
        groups, leaves = [], []  # (argument number, how many leaves, rebuild) and all the leaves
        for number in numbers:
            arg_leaves, rebuild = _flatten(args[number])
            groups.append((number, len(arg_leaves), rebuild))
            leaves.extend(arg_leaves)
        _only_tensors_differentiated(leaves)
        found = {}

        def of_leaves(*new_leaves):
            call_args, at = list(args), 0
            for number, count, rebuild in groups:
                call_args[number] = rebuild(list(new_leaves[at:at + count]))
                at += count
            with _vmap_frames.capturing(func):  # torch words it as vjp
                output, found["aux"] = _split_aux(func(*call_args), has_aux, "vjp(f, *primals)")
            found["inside"] = new_leaves
            out_leaves, found["rebuild"] = _flatten(output)
            _only_tensor_outputs(out_leaves, "vjp(f, *primals)")
            _refuse_complex_outputs(out_leaves, "jacrev")
            return tuple(out_leaves)

        keeps = _keeps_graph(leaves)
        if keeps and not any(isinstance(x, Tensor) and x.requires_grad for x in leaves):
            # dual inputs (an outer jacfwd): aliases that require grad and keep their tangents
            leaves = [_alias(leaf) for leaf in leaves]
        # (vectorized: as torch's vmapped vjp, one tensor per input whose blocks require grad together)
        blocks = _functional._jacobian(of_leaves, tuple(leaves), create_graph=keeps, chunk_size=chunk_size,
                                       outside_records=outside_records, vectorize=True)
        per_output = []
        for row in blocks:  # one tuple per output leaf, one block per input leaf
            per_arg, at = [], 0
            for _, count, rebuild in groups:
                per_arg.append(rebuild(list(row[at:at + count])))
                at += count
            per_output.append(tuple(per_arg) if isinstance(argnums, tuple) else per_arg[0])
        jacobian = found["rebuild"](per_output)
        if has_aux and not keeps:
            found["aux"] = _aux_as_seen_outside(found["aux"], outside_records, found["inside"])
        return (jacobian, found["aux"]) if has_aux else jacobian

    return _counted(wrapper)


def jacfwd(func, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The Jacobian of ``func`` with respect to its ``argnums`` argument(s) in forward mode: one
    run of ``func`` on dual tensors per input element, each tangent a column of the Jacobian
    (shape ``output.shape + input.shape``, as ``jacrev``)."""

    def wrapper(*args):
        if randomness not in ("error", "different", "same"):  # torch checks it when called, as vmap's
            raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. "
                               f"Got {randomness}")
        outside_records = is_grad_enabled()
        if randomness != "error":
            return _unrecorded_outside(computed(outside_records, *args), outside_records)
        # torch's jacfwd vmaps its jvps: a random op inside is refused as vmap's default refuses it
        frame = _vmap_frames.VmapFrame(1, randomness)
        frame.transforms -= 1  # (torch's jvp runs inside its vmap: a grad-like transform, _vmap_frames.inner_transform)
        with _vmap_frames.entered(frame):
            return _unrecorded_outside(computed(outside_records, *args), outside_records)

    def computed(outside_records, *args):
        numbers = _argnums_tuple(argnums, len(args), "jacfwd(f)(*args)")
        groups, leaves = [], []  # (argument number, how many leaves, rebuild) and all the leaves
        for number in numbers:
            arg_leaves, rebuild = _flatten(args[number])
            groups.append((number, len(arg_leaves), rebuild))
            leaves.extend(arg_leaves)
        for leaf in leaves:
            if isinstance(leaf, Tensor) and not (leaf.is_floating_point() or leaf.is_complex()):
                raise ValueError(f"Expected primal to be floating point or complex, but got: {leaf.dtype}")
            if not isinstance(leaf, Tensor) or not leaf.is_floating_point():
                raise RuntimeError("jacfwd(f)(*args): Expected the differentiated arguments to be floating point "
                                   f"tensors, got {type(leaf).__name__ if not isinstance(leaf, Tensor) else leaf.dtype}")

        def of_leaves(*new_leaves):
            call_args, at = list(args), 0
            for number, count, rebuild in groups:
                call_args[number] = rebuild(list(new_leaves[at:at + count]))
                at += count
            with _vmap_frames.capturing(func):
                return func(*call_args)

        found = {}
        verdict = {}  # "outside": whether the output reaches a closed-over tensor requiring grad
        # (with randomness="different" each column draws its own numbers, as each of torch's vmapped
        # jvps does, in order: the columns' runs, not one run for all)
        if randomness != "different" and not any(_forward_ad.unpack_dual(leaf).tangent is not None
                                                  for leaf in leaves):
            by_rows = _jacobian_by_reverse(of_leaves, leaves, has_aux, outside_records, verdict)
            if by_rows is not None:
                found["output"], found["aux"], blocks_per_output = by_rows
                return _assemble_jacobian(found, blocks_per_output, groups, argnums, has_aux)
        zeros = [leaf.detach().new_zeros(leaf.shape) for leaf in leaves]
        # a tangent computed through a recorded inner transform (jacrev of a user Function) has a
        # graph; only an outer transform (inputs that require grad or carry tangents) may keep it
        keeps = _keeps_graph(leaves)
        columns = []  # per input leaf, per element: the output leaves' tangents
        for j, leaf in enumerate(leaves):
            per_element = []
            for k in range(leaf.numel()):
                basis = leaf.detach().new_zeros(leaf.numel())
                basis[k] = 1
                tangents = tuple(basis.reshape(leaf.shape) if i == j else zeros[i] for i in range(len(leaves)))
                output, tangent_out, aux = _jvp_with_aux(of_leaves, tuple(leaves), tangents, has_aux)
                found.setdefault("output", output)
                found.setdefault("aux", aux)
                # detached unless an outer transform differentiates, or grad mode is on at the call and
                # the output depends on a closed-over tensor requiring grad: torch's Jacobian keeps its
                # graph to that one (a gradient penalty through jacfwd reaches the weights). The reverse
                # path's run decided that (verdict), as a tangent's graph may hold leaves an inner
                # transform made for itself, which this path cannot tell from a closed-over parameter
                per_element.append([t if keeps else _kept_if_outside(t, verdict.get("outside", False), leaves)
                                    for t in _flatten(tangent_out)[0]])
            columns.append(per_element)
        if "output" not in found:  # every differentiated input is empty
            output, aux = _split_aux(of_leaves(*leaves), has_aux, "jvp(f, primals, tangents)")
            found["output"], found["aux"] = output, aux
        out_leaves = _flatten(found["output"])[0]
        _refuse_complex_outputs(out_leaves, "jacfwd")
        blocks_per_output = []
        for o, out_leaf in enumerate(out_leaves):
            blocks = []
            for leaf, per_element in zip(leaves, columns):
                shape = tuple(out_leaf.shape) + tuple(leaf.shape)
                if per_element:
                    block = _stack([element[o] for element in per_element], dim=-1).reshape(shape)
                else:
                    block = out_leaf.detach().new_zeros(shape)
                blocks.append(block)
            blocks_per_output.append(blocks)
        return _assemble_jacobian(found, blocks_per_output, groups, argnums, has_aux)

    # torch's jacfwd vmaps its jvps: a user Function inside must support vmap
    return _counted(wrapper, batching=True)


def _needs_a_users_jvp(outputs) -> bool:
    """Whether the graph holds a user's autograd.Function whose forward-mode rule jacfwd must run:
    one whose jvp may be all it has (no backward), or one that has not declared itself ready for
    torch.func's transforms (``generate_vmap_rule = True`` or a ``vmap`` staticmethod), where
    torch's jacfwd raises and the column-by-column path raises its error too. A declared Function
    with a backward promises, as torch's contract for these transforms, that its backward and
    jvp are the same derivative, so the reverse walk (batched, its backward row by row) gives the
    jvp's numbers without one forward run per input element. The promise is checked at each such
    node (_backward_agrees_with_jvp): torch's jacfwd runs the jvp, so a Function that breaks it
    (torch's own CubeGenVmap test Function does) gets its jvp's Jacobian, column by column."""
    roots = [out.grad_fn for out in outputs if out.grad_fn is not None]
    for node in _engine._topological_order(roots):
        cls = getattr(node, "_forward_cls", None)
        if cls is None or getattr(cls, "_array_forward", True):
            continue
        declared = cls.generate_vmap_rule is True or cls.vmap is not Function.vmap
        if not declared or cls.backward is Function.backward or cls.jvp is Function.jvp:
            return True
        if not _backward_agrees_with_jvp(node):
            return True
    return False


def _probe(shape, dtype, offset: int):
    """A fixed, uneven direction (values in [1, 2), no two neighbours equal) for the check below."""
    count = int(np.prod(shape, dtype=np.int64))
    return Tensor._make((1 + ((np.arange(count) + offset) % 7) / 7).astype(dtype).reshape(shape))


def _backward_agrees_with_jvp(node) -> bool:
    """Whether a user Function's backward and jvp are one derivative at ``node``: ⟨u, J t⟩ by its
    jvp equals ⟨Jᵀu, t⟩ by its backward, along fixed directions t and u (the directional check:
    one call of each, whatever the sizes). Anything that stops either call says no, and jacfwd
    then runs the jvp itself, as torch's does."""
    cls = node._forward_cls
    metas = list(node._input_meta)
    if node._tensor_positions is not None:  # jvp and backward take one value per argument, tensor or not
        metas = [None] * len(node.needs_input_grad)
        for meta, position in zip(node._input_meta, node._tensor_positions):
            metas[position] = meta
    floating = [meta is not None and meta[1] is not None and meta[1].kind == "f" for meta in metas]
    tangents = [_probe(*meta, offset=i) if is_float else None
                for i, (meta, is_float) in enumerate(zip(metas, floating))]
    out_meta = node._output_meta or ()
    cotangents = [None if dtype is None else _probe(shape, dtype, offset=3 + i) if dtype.kind == "f"
                  else Tensor._make(np.zeros(shape, dtype)) for i, (shape, dtype) in enumerate(out_meta)]
    try:
        with no_grad():
            pushed = _forward_ad.users_jvp(cls, node, tangents)
            pulled = cls.backward(node, *cotangents)
    except Exception:  # noqa: BLE001 - no agreement shown: the forward columns decide (and raise)
        return False
    pushed = pushed if isinstance(pushed, tuple) else (pushed,)
    pulled = pulled if isinstance(pulled, tuple) else (pulled,)
    forward_side = sum(float((u * jt).sum()) for u, jt in zip(cotangents, pushed)
                       if isinstance(jt, Tensor) and u is not None and u.is_floating_point())
    backward_side = sum(float((g * t).sum()) for g, t in zip(pulled, tangents)
                        if isinstance(g, Tensor) and t is not None)
    return abs(forward_side - backward_side) <= 1e-4 * max(1.0, abs(forward_side), abs(backward_side))


def _refuse_complex_outputs(out_leaves, where: str) -> None:
    for index, leaf in enumerate(out_leaves):
        if isinstance(leaf, Tensor) and leaf.is_complex():
            raise RuntimeError(f"{where}: Expected all outputs to be real but received complex tensor "
                               f"at flattened input idx: {index}")


def _jacobian_by_reverse(of_leaves, leaves, has_aux: bool, outside_records: bool = False, verdict=None):
    """jacfwd's Jacobian from one run of the function and reverse passes, or None where the
    columns of forward mode are the better (or the only) way: a complex output, an op the
    batched walk has no rule for, or — when the Jacobian must be recorded for an outer transform
    and its columns cannot be had by the double-vjp walk — many more outputs than inputs.

    chainrule derives every Jacobian-vector product from the reverse rules (forward_ad's
    _pushforward: each column costs about three reverse passes), so reverse passes give the
    same numbers cheaper, all rows or all columns at once by the batched walk, recorded when an
    outer transform differentiates through (hessian = jacfwd(jacrev(f)) and jacfwd(jacfwd(f))):
    rows (one walk with a cotangent per output element: the tutorial's 2,048-input jacfwd in
    milliseconds, not seconds) when the outputs are fewer than the inputs, else columns
    (``_columns_by_double_vjp``: a walk with a cotangent per input element — the 512-input
    Hessian's outer Jacobian has 16,384 outputs). A square Jacobian goes by columns too: they
    multiply as forward mode does (f'(x_i)·v_i), so an exact zero off the diagonal of an
    elementwise f's Jacobian takes the sign of f'(x_i) in its row, as torch's jvps give it,
    where a row's product (u_j·f'(x_j)) would take its column's. Blocks that depend on a closed-over tensor
    requiring grad keep their graph to it when grad mode is on at the call (``outside_records``);
    whether they do goes into ``verdict["outside"]`` for the forward columns, when given."""
    record = any(leaf.requires_grad for leaf in leaves)
    with enable_grad():
        stand_ins = [leaf.view_as(leaf) if leaf.requires_grad else leaf.detach().requires_grad_()
                     for leaf in leaves]
        output, aux = _split_aux(of_leaves(*stand_ins), has_aux, "jvp(f, primals, tangents)")
        out_leaves, out_rebuild = _flatten(output)
        _refuse_complex_outputs(out_leaves, "jacfwd")
        if not all(isinstance(out, Tensor) for out in out_leaves):
            return None
        outside = not record and _outside_graph(outside_records, out_leaves, stand_ins)
        if verdict is not None:
            verdict["outside"] = outside
        if _needs_a_users_jvp(out_leaves):
            return None
        recording = record or outside
        outputs = sum(out.numel() for out in out_leaves)
        inputs = sum(leaf.numel() for leaf in leaves)
        blocks_per_output = None
        if outputs >= inputs and _batched_walk.has_batched_rules(out_leaves):
            blocks_per_output = _columns_by_double_vjp(out_leaves, stand_ins, recording)
        if blocks_per_output is None:
            if recording and outputs > 3 * inputs:
                return None
            blocks_per_output = _blocks_by_rows(out_leaves, stand_ins, recording)
            if blocks_per_output is None:
                return None
    if not record:
        blocks_per_output = [[_kept_if_outside(block, outside, stand_ins) for block in blocks]
                             for blocks in blocks_per_output]
        output = out_rebuild([_kept_if_outside(out, outside, stand_ins) for out in out_leaves])
        if has_aux:
            aux_leaves, aux_rebuild = _flatten(aux)
            aux = aux_rebuild([_kept_if_outside(leaf, outside_records, stand_ins) for leaf in aux_leaves])
    return output, aux, blocks_per_output


def _blocks_by_rows(out_leaves, stand_ins, record: bool):
    """Per output leaf, per input leaf: the Jacobian block from the batched walk with a cotangent
    per output element (recorded under ``record``), or None where that walk declines the graph
    and nothing need be recorded."""
    blocks_per_output = []
    for out in out_leaves:
        rows = [None] * len(stand_ins)
        if out.requires_grad:
            rows = _batched_walk.jacobian_rows(out, stand_ins, create_graph=record)
            if rows is None and record:
                rows = _functional._rows_one_by_one(out, stand_ins, create_graph=True)
            if rows is None:
                return None
        blocks = []
        for row, leaf in zip(rows, stand_ins):
            shape = tuple(out.shape) + tuple(leaf.shape)
            if row is None:
                blocks.append(out.detach().new_zeros(shape))
            else:
                blocks.append(row.reshape(shape) if record else row.reshape(shape).detach())
        blocks_per_output.append(blocks)
    return blocks_per_output


def _columns_by_double_vjp(out_leaves, stand_ins, record: bool):
    """Per output leaf, per input leaf: the Jacobian block by columns, or None where the batched
    walk declines the graph. J v = d/du ⟨Jᵀu, v⟩: one recorded reverse pass with stand-in
    cotangents u, linear in u, then one batched walk over that pass per input leaf, its
    cotangents the identity's rows, gives the products with every basis vector v at once (what
    torch's jacfwd vmaps over its tangents), recorded under ``record``."""
    reached = [out for out in out_leaves if out.requires_grad]
    dummies = [out.detach().new_zeros(out.shape).requires_grad_() for out in reached]
    if _function.tracing_ops:  # the same for every slice of a vmap that records its ops (_vmap_batched)
        for dummy in dummies:
            _function.traced_constant(dummy)
    pulled = _engine.grad(reached, stand_ins, dummies, retain_graph=True, create_graph=True,
                          allow_unused=True) if reached else [None] * len(stand_ins)
    per_leaf = []  # per input leaf: per reached output, its columns (n, *out.shape), or None
    for leaf, g in zip(stand_ins, pulled):
        n = leaf.numel()
        if g is None or n == 0:
            per_leaf.append([None] * len(reached))
            continue
        if not g.requires_grad:  # Jᵀu is linear in u: a rule that recorded nothing (never silent zeros)
            return None
        seeds = _eye(n, dtype=leaf.dtype, device=leaf.device)  # (a diagonal view of a device array may be read-only)
        if _function.tracing_ops:  # (as the dummies)
            _function.traced_constant(seeds)
        found = _batched_walk.batched_backward((g,), dummies, (seeds.reshape((n,) + tuple(leaf.shape)),),
                                               retain_graph=True, create_graph=record)
        if found is None:
            return None
        per_leaf.append(found)
    blocks_per_output = []
    columns_of = dict(zip(map(id, reached), zip(*per_leaf))) if reached else {}
    for out in out_leaves:
        blocks = []
        for k, leaf in enumerate(stand_ins):
            shape = tuple(out.shape) + tuple(leaf.shape)
            column = columns_of[id(out)][k] if id(out) in columns_of else None
            if column is None:
                blocks.append(out.detach().new_zeros(shape))
                continue
            # the input's dims moved behind the output's, a view as torch's jacfwd gives (no copy)
            block = column.reshape(tuple(leaf.shape) + tuple(out.shape))
            block = block.permute(tuple(range(leaf.dim(), len(shape))) + tuple(range(leaf.dim())))
            blocks.append(block if record else block.detach())
        blocks_per_output.append(blocks)
    return blocks_per_output


def _assemble_jacobian(found, blocks_per_output, groups, argnums, has_aux: bool):
    """The per-output, per-input-leaf blocks in the structure of the output and the arguments."""
    out_rebuild = _flatten(found["output"])[1]
    per_output = []
    for blocks in blocks_per_output:
        per_arg, at = [], 0
        for _, count, rebuild in groups:
            per_arg.append(rebuild(blocks[at:at + count]))
            at += count
        per_output.append(tuple(per_arg) if isinstance(argnums, tuple) else per_arg[0])
    jacobian = out_rebuild(per_output)
    return (jacobian, found["aux"]) if has_aux else jacobian


def _jvp_with_aux(func, primals, tangents, has_aux: bool):
    result = jvp(func, primals, tangents, has_aux=has_aux)
    return (result[0], result[1], result[2]) if has_aux else (result[0], result[1], None)


def hessian(func, argnums=0):
    """Second derivatives: ``jacfwd(jacrev(func))``, shape ``input.shape + input.shape`` for a
    scalar function of one tensor."""
    return jacfwd(jacrev(func, argnums), argnums)


# ---------------------------------------------------------------- vmap

def _func_name(func) -> str:
    """How torch's vmap names ``func`` in its messages."""
    import functools

    if hasattr(func, "__name__"):
        return func.__name__
    if isinstance(func, functools.partial):
        return f"functools.partial({_func_name(func.func)}, ...)"
    return repr(func)


def _broadcast_to_and_flatten(prefix, spec):
    """torch's utils._pytree._broadcast_to_and_flatten: the leaves of ``prefix`` (``in_dims`` or
    ``out_dims``), each repeated over the leaves of the subtree of ``spec`` it stands for, or None
    where ``prefix`` is not a prefix of ``spec``'s structure (another node type, length or keys)."""
    found = []
    full = tree_unflatten([0] * spec.num_leaves, spec)
    try:
        tree_map_(lambda dim, subtree: found.extend([dim] * tree_structure(subtree).num_leaves), prefix, full)
    except ValueError:
        return None
    return found


def _flat_in_dims(func, in_dims, args) -> tuple:
    """(flat in_dims, flat args, args' spec) as torch's vmap checks them (_process_batched_inputs):
    ``in_dims`` a prefix of the arguments' pytree, each leaf an int or None that suits its input."""
    where = f"vmap({_func_name(func)}, in_dims={in_dims}, ...)(<inputs>)"  # torch's way to name the call
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(f"{where}: expected `in_dims` to be int or a (potentially nested) tuple matching the "
                         f"structure of inputs, got: {type(in_dims)}.")
    if not args:
        raise ValueError(f"vmap({_func_name(func)})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you "
                         "are trying to vmap over a function with no inputs. The latter is unsupported.")
    flat_args, spec = tree_flatten(args)
    flat_dims = _broadcast_to_and_flatten(in_dims, spec)
    if flat_dims is None:
        raise ValueError(f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims has structure "
                         f"{tree_structure(in_dims)!r} but inputs has structure {spec!r}.")
    for leaf, dim in zip(flat_args, flat_dims):
        if dim is not None and not isinstance(dim, int):
            raise ValueError(f"{where}: Got in_dim={dim} for an input but in_dim must be either an integer dimension "
                             "or None.")
        if dim is not None and not isinstance(leaf, Tensor):
            raise ValueError(f"{where}: Got in_dim={dim} for an input but the input is of type "
                             f"{class_repr(type(leaf))}. We cannot vmap over non-Tensor arguments, please "
                             "use None as the respective in_dim")
        if dim is not None and not -leaf.dim() <= dim < leaf.dim():
            raise ValueError(f"{where}: Got in_dim={dim} for some input, but that input is a Tensor of "
                             f"dimensionality {leaf.dim()} so expected in_dim to satisfy "
                             f"-{leaf.dim()} <= in_dim < {leaf.dim()}.")
    return flat_dims, flat_args, spec


def _flat_out_dims(func, out_dims, output) -> list:
    """out_dims per leaf of ``output`` as torch's vmap reads them (_unwrap_batched): a single Tensor
    takes an int, None or a 1-tuple; else ``out_dims`` must be a prefix of the output's pytree."""
    spec = tree_structure(output)
    if isinstance(output, Tensor):
        if isinstance(out_dims, int) or out_dims is None:
            return [out_dims]
        if isinstance(out_dims, tuple) and len(out_dims) == 1:
            return list(out_dims)
        found = None
    else:
        found = _broadcast_to_and_flatten(out_dims, spec)
    if found is None:
        raise ValueError(f"vmap({_func_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible "
                         f"with the structure of `outputs`. out_dims has structure {tree_structure(out_dims)!r} but "
                         f"outputs has structure {spec!r}.")
    return found


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """Map ``func`` over a dimension of its inputs (``in_dims``: one int/None, or one per
    argument, possibly nested like the argument) and stack the results along ``out_dims``: its
    ops run once on the batch where slice 0's record can be replayed (see the module docstring)."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. "
                           f"Got {randomness}")
    if chunk_size is not None and not chunk_size > 0:
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    if chunk_size is not None and (not isinstance(chunk_size, int) or isinstance(chunk_size, bool)):
        # torch fails on it later, splitting the inputs: a TypeError too
        raise TypeError(f"vmap: chunk_size should be None or an int, got {type(chunk_size).__name__}")

    def wrapper(*args, **kwargs):
        if not isinstance(out_dims, int) and any(dim is not None and not isinstance(dim, int)
                                                 for dim in tree_flatten(out_dims)[0]):
            raise ValueError(f"vmap({_func_name(func)}, ..., out_dims={out_dims}): `out_dims` must be an int, None or "
                             "a python collection of ints representing where in the outputs the vmapped dimension "
                             "should appear.")
        flat_dims, flat_args, spec = _flat_in_dims(func, in_dims, args)
        sizes = [leaf.size(dim) for leaf, dim in zip(flat_args, flat_dims) if dim is not None]
        if not sizes:
            raise ValueError("vmap: Expected at least one Tensor to vmap over")
        if len(set(sizes)) != 1:
            raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got "
                             f"sizes {sizes} for the mapped dimension")
        size = sizes[0]
        if size == 0:
            return _empty_batch(func, flat_args, flat_dims, spec, kwargs, out_dims, randomness)
        if chunk_size is None:
            return _flat_vmap(func, size, flat_dims, flat_args, spec, kwargs, out_dims, randomness)
        return _chunked_vmap(func, size, chunk_size, flat_dims, flat_args, spec, kwargs, out_dims, randomness)

    return _counted(wrapper, batching=True)


def _chunked_vmap(func, size: int, chunk_size: int, flat_dims, flat_args, spec, kwargs, out_dims, randomness: str):
    """vmap with ``chunk_size``, as torch's: the mapped inputs cut by ``tensor_split`` into chunks of
    ``chunk_size`` (the last one shorter), vmap run on each, and each result joined by ``cat`` along its
    out_dim (so the result's node is CatBackward0, one chunk or several); randomness="same" starts every
    chunk from the generator's state before the first."""
    bounds = tuple(range(chunk_size, size, chunk_size)) + (size,)
    pieces = [leaf.tensor_split(bounds, dim=dim)[:len(bounds)] if dim is not None else [leaf] * len(bounds)
              for leaf, dim in zip(flat_args, flat_dims)]
    rewind = _random.default_generator.get_state() if randomness == "same" else None
    chunks = []
    for at, stop in enumerate(bounds):
        if rewind is not None:
            _random.default_generator.set_state(rewind)
        chunk_args = [piece[at] for piece in pieces]
        chunks.append(_flat_vmap(func, stop - (bounds[at - 1] if at else 0), flat_dims, chunk_args, spec, kwargs,
                                 out_dims, randomness))
    leaves, out_spec = tree_flatten(chunks[0])
    dims = _flat_out_dims(func, out_dims, chunks[0])
    flat_chunks = [tree_flatten(chunk)[0] for chunk in chunks]
    # (torch cats every output, one chunk or many: cat's TypeError for a non-Tensor output or an out_dim of None)
    joined = [_cat([chunk[i] for chunk in flat_chunks], dim=dim) for i, dim in enumerate(dims)]
    return tree_unflatten(joined, out_spec)


def _flat_vmap(func, size: int, flat_dims, flat_args, spec, kwargs, out_dims, randomness: str):
    """vmap's run over a batch of ``size`` (> 0) slices of ``flat_args`` (``flat_dims`` says where)."""
    results = []
    # the frame tells operators with a vmap rule (torch.library.register_vmap) where slices came from
    rewind = _random.default_generator.get_state() if randomness == "same" else None
    frame = _vmap_frames.VmapFrame(size, randomness)

    def cut(i):
        frame.index, frame.draws_taken = i, 0
        if rewind is not None and i:
            _random.default_generator.set_state(rewind)
            for generator, state in frame.rewound_generators.values():
                generator.set_state(state)
        if i:
            frame.rewind_writes()
        return tree_unflatten([frame.keep(leaf) if dim is None else frame.cut(leaf, dim, i)
                               for leaf, dim in zip(flat_args, flat_dims)], spec)

    # slice 0's ops recorded, then replayed once on the whole batch (_vmap_batched), outside the
    # frame: the replay's ops are the batch's, not a slice's; a batch of one too, as torch runs its
    # batching rules on it (randomness="same": slice 0's draws stand for every slice's, as torch's one
    # draw does; a factory's are constants of the record, an op run per slice draws as slice 0 did;
    # "different": slice 0 draws dropout's mask for the whole batch, any other draw runs the slices)
    with _vmap_frames.entered(frame), _watching_batches():
        frame.note_closed_over(func)
        sliced = cut(0)
        token = _vmap_batched.start(frame)
        try:
            results.append(func(*sliced, **kwargs))
        finally:
            trace = _vmap_batched.stop(token)
        drawn = _random.default_generator.get_state() if rewind is not None else None
    # (a batched value read as a Python number by chainrule's own code: slice 0's, no replay)
    # (under randomness="different", a draw the replay cannot make for the batch: the slices draw)
    unreplayable = frame.values_read or (randomness == "different" and frame.drew_unrecorded)
    batched = None if unreplayable else _replayed(func, trace, flat_args, flat_dims, results[0], out_dims, size)
    if batched is not None:
        if not _vmap_batched.unrecorded_batched(trace):
            if drawn is not None:  # (the generator where one run of the function leaves it)
                _random.default_generator.set_state(drawn)
            return batched[0]  # the function ran once, as torch's vmap runs it
        # a batched value no recorded op made (argmax's: no Function) may have steered the
        # function's Python unseen: the last slice's own run checks the replay (slice 0's, of one)
        if size == 1:
            return batched[0] if _replay_agrees(batched[1], results[0]) else _stack_results(func, results, out_dims,
                                                                                             frame)
        with _vmap_frames.entered(frame), _watching_batches():
            last = func(*cut(size - 1), **kwargs)
        if _replay_agrees(batched[1], last):
            return batched[0]
        results.append(last)  # (the middle slices run below, then the last one is put last)
    with _vmap_frames.entered(frame), _watching_batches():
        stop = size - 1 if len(results) == 2 else size
        middle = [func(*cut(i), **kwargs) for i in range(1, stop)]
    results[1:1] = middle
    return _stack_results(func, results, out_dims, frame)


def _replayed(func, trace, flat_args, flat_dims, first, out_dims, size: int):
    """(vmap's results, the replay's values) from the replay of slice 0's ops on the batch
    (``_vmap_batched``), or None where it cannot stand for the slices' runs (vmap then runs the
    others one by one)."""
    frame = trace.frame
    if not trace.ok or frame.batched_results or frame._rewound_writes or frame.rewound_generators:
        return None
    leaves, spec = tree_flatten(first)
    try:
        dims = _flat_out_dims(func, out_dims, first)
    except ValueError:
        return None  # (the stacking raises it)
    tensors = []
    for leaf, dim in zip(leaves, dims):
        if isinstance(leaf, Tensor):
            tensors.append(leaf)
        elif dim is not None:
            return None
    found = _vmap_batched.replay(trace, flat_args, flat_dims, tensors, size)
    if found is None:
        return None
    values = found
    found = iter(found)
    stacked = []
    for leaf, dim in zip(leaves, dims):
        if not isinstance(leaf, Tensor):
            stacked.append(leaf)
            continue
        value = next(found)
        if dim is None:
            if value.batched:
                raise _batched_with_no_out_dim(func)
            stacked.append(leaf)
            continue
        rank = leaf.dim() + 1
        if not -rank <= dim < rank:
            return None
        if not value.batched and dim == 0:  # torch's _remove_batch_dim: an expanded view, ExpandBackward0
            stacked.append(leaf.expand(size, *leaf.shape))
        elif not value.batched:  # (torch's expand there mistakes the sizes or crashes: the stacked slices)
            stacked.append(_with_slices_conj_bit(_stack([leaf] * size, dim=dim), [leaf]))
        else:
            stacked.append(_with_slices_conj_bit(value.data.movedim(0, dim) if dim % rank else value.data, [leaf]))
    return tree_unflatten(stacked, spec), values


def _with_slices_conj_bit(batched: Tensor, slices) -> Tensor:
    """``batched``, vmap's result stacked from (or replayed for) ``slices``, with their conj bit: torch's
    batched tensor is one, so a function returning a conj view (``vmap(torch.conj)``) returns one."""
    if not batched._conj_bit and all(piece._conj_bit for piece in slices):
        batched._conj_bit = True
    return batched


def _replay_agrees(values, last) -> bool:
    """Whether the last slice's own results (``last``) are the replay's (``values``, batch dim first)."""
    leaves = [leaf for leaf in tree_flatten(last)[0] if isinstance(leaf, Tensor)]
    if len(leaves) != len(values):
        return False
    for leaf, value in zip(leaves, values):
        if value.batched:
            if tuple(value.data.shape[1:]) != tuple(leaf.shape) or not _vmap_batched.agrees(value.data, leaf, -1):
                return False
        elif not _vmap_batched.agrees(value.data.unsqueeze(0), leaf, 0):
            return False
    return True


class _BatchWatcher:
    """Stands where the profiler does (``autograd.function.active_profiler``) while a vmap runs, so
    that every op hands it its operands and results: a result computed from a batched operand is
    batched at that level (``_vmap_frames.note_results``), as torch's vmap makes it, which lets
    ``.item()``, ``bool()`` and in-place writes of it be refused as torch refuses them. An observer
    already there (a profiler, a FLOP counter) is set aside and each op runs through it."""

    observes_under = True  # a profiler started while it stands there goes under it (profiler.Recorder.start)
    walks_batched = True  # the engine's batched walk (jacrev's rows at once) runs under it, its ops seen

    def __init__(self, previous) -> None:
        self.previous = previous

    @property
    def _recording(self) -> bool:  # record_function's ranges go to the observer set aside
        return self.previous is not None and self.previous._recording

    def record_op(self, cls, inputs, params, user_function: bool = False):
        trace = _vmap_batched.active
        state = trace.generator_state() if trace is not None and trace.ok else None
        _function.active_profiler = self.previous
        try:
            if user_function:  # its forward runs per slice here; torch runs a vmap rule's below vmap
                with _vmap_frames.reads_allowed():
                    out = _function.run_intercepted(cls, inputs, params, user_function)
            else:
                out = _function.run_intercepted(cls, inputs, params, user_function)
        finally:
            _function.active_profiler = self
        _vmap_frames.note_results(inputs, params, out)
        if trace is not None and trace.ok:
            if user_function and not _vmap_batched.has_vmap_staticmethod(cls):
                if cls.generate_vmap_rule is True and not getattr(cls, "answers_vmap_itself", False):
                    _vmap_batched.record_user_call(trace, cls, inputs, params, out, state)
                else:
                    trace.ok = False
            else:
                trace.record(cls, inputs, params, out, state)
        return out

    def begin(self, name: str, inputs=(), *, user_annotation: bool = False):
        return self.previous.begin(name, inputs, user_annotation=user_annotation)

    def evaluate_function(self, node, previous):
        return None if self.previous is None else self.previous.evaluate_function(node, previous)

    def end(self, event) -> None:
        if self.previous is not None:
            self.previous.end(event)


@contextlib.contextmanager
def _watching_batches():
    """A _BatchWatcher in the profiler's place for the outermost running vmap (the ops' fast paths,
    which skip that place, step aside meanwhile, as they do for the profiler)."""
    if isinstance(_function.active_profiler, _BatchWatcher):
        yield
        return
    watcher = _BatchWatcher(_function.active_profiler)
    _function.active_profiler = watcher
    if watcher.previous is None:
        for switch in _profiler.recording_switches:
            switch(True)
    try:
        yield
    finally:
        _function.active_profiler = watcher.previous
        if watcher.previous is None:
            for switch in _profiler.recording_switches:
                switch(False)
        watcher.previous = None  # (a profiler started inside and left running carries on by itself)


def _empty_batch(func, flat_args, flat_dims, spec, kwargs, out_dims, randomness: str):
    """vmap over a batch of size 0: ``func`` runs once, inside the vmap's frame, on zero-filled slices
    for the structure, dtypes and shapes of its results (torch runs it once on the empty batch, so
    a batched result at out_dim None is refused as there); each mapped result is then empty along
    its out_dim."""
    def zero_slice(leaf, dim):
        if leaf.requires_grad:  # zeros on leaf's graph: a sum over the empty batch
            return leaf.sum(dim, keepdim=True)
        shape = list(leaf.shape)
        shape[dim] = 1
        return leaf.new_zeros(shape)

    frame = _vmap_frames.VmapFrame(0, randomness)
    with _vmap_frames.entered(frame), _watching_batches():
        frame.note_closed_over(func)
        sliced = tree_unflatten([frame.keep(leaf) if dim is None else frame.cut(zero_slice(leaf, dim), dim, 0)
                                 for leaf, dim in zip(flat_args, flat_dims)], spec)
        probe = func(*sliced, **kwargs)
    stacked = _stack_results(func, [probe], out_dims, frame)
    leaves, stacked_spec = tree_flatten(stacked)
    dims = _flat_out_dims(func, out_dims, stacked)
    return tree_unflatten([leaf if dim is None else leaf.narrow(dim, 0, 0) for leaf, dim in zip(leaves, dims)],
                          stacked_spec)


def _batched_with_no_out_dim(func) -> ValueError:
    name = _func_name(func)
    return ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")


def _stack_results(func, results, out_dims, frame=None):
    leaves_per_slice = [tree_flatten(result)[0] for result in results]
    spec = tree_structure(results[0])
    dims = _flat_out_dims(func, out_dims, results[0])
    name = _func_name(func)
    stacked = []
    for position, dim in enumerate(dims):
        column = [leaves[position] for leaves in leaves_per_slice]
        if dim is None:
            if frame is not None and any(isinstance(x, Tensor) and frame.holds_batched(x) for x in column):
                raise _batched_with_no_out_dim(func)
            stacked.append(column[0])
            continue
        if not all(isinstance(x, Tensor) for x in column):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(column[0])}. "
                             "Did you mean to set out_dims= to None for output?")
        rank = column[0].dim() + 1
        if not -rank <= dim < rank:  # torch's message, not stack's
            raise IndexError(f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {dim})")
        whole = frame.whole_of(column) if frame is not None else None  # a vmap rule's batched output, as torch
        same_input = frame.input_of(column) if frame is not None and whole is None else None
        if same_input is not None:  # the mapped input itself (an identity), as torch returns it: no copy
            source, at = same_input
            stacked.append(source if at % source.dim() == dim % source.dim() else source.movedim(at, dim))
            continue
        stacked.append(_with_slices_conj_bit(_stack(column, dim=dim), column) if whole is None
                       else whole[0].movedim(whole[1], dim))
    return tree_unflatten(stacked, spec)


# ---------------------------------------------------------------- modules as functions

def _owner(module, dotted: str):
    *path, leaf = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    return module, leaf


@contextlib.contextmanager
def _reparametrized(module, values: dict, tie_weights: bool, strict: bool):
    named = list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers(remove_duplicate=False))
    known = {name for name, _ in named}
    if strict:
        missing = sorted(known - set(values))
        unexpected = sorted(set(values) - known)
        if missing or unexpected:
            lines = [f"Error(s) in reparametrizing for {type(module).__name__}:"]
            if unexpected:
                lines.append("\tUnexpected key(s): " + ", ".join(repr(k) for k in unexpected) + ".")
            if missing:
                lines.append("\tMissing key(s): " + ", ".join(repr(k) for k in missing) + ".")
            raise RuntimeError("\n".join(lines))
    for value in values.values():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"{value} is not an instance of torch.Tensor")
    replacement = dict((name, values[name]) for name in known if name in values)
    if tie_weights:
        # a weight shared under two names takes the value given for either name; two different
        # tensors given for the names of one weight are ambiguous
        names_of = {}
        for name, tensor in named:
            names_of.setdefault(id(tensor), []).append(name)
        for names in names_of.values():
            if len({id(values[name]) for name in names if name in values}) > 1:
                raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, which are tied. "
                                 "Consider using tie_weights=False")
        by_identity = {id(tensor): values[name] for name, tensor in named if name in values}
        for name, tensor in named:
            if name not in replacement and id(tensor) in by_identity:
                replacement[name] = by_identity[id(tensor)]
    saved = []
    assigned = []
    try:
        for name, value in replacement.items():
            owner, leaf = _owner(module, name)
            table = owner._parameters if leaf in owner._parameters else owner._buffers
            saved.append((table, leaf, table[leaf]))
            table[leaf] = value
        for name in values:
            if name not in known:
                assigned.append(_assign_attribute(module, name, values[name]))
        yield
    finally:
        for owner, leaf, original in reversed(assigned):
            if original is _ABSENT:
                if hasattr(owner, leaf):
                    delattr(owner, leaf)
            else:
                setattr(owner, leaf, original)
        for table, leaf, original in reversed(saved):
            table[leaf] = original


_ABSENT = object()


def _assign_attribute(module, name: str, value):
    """A name that is no parameter or buffer is set as an attribute for the call, as torch's
    functional_call does: a parametrized tensor's name goes through its property (the
    parametrization's right_inverse), any other name is added and removed afterwards. Returns
    what to restore: (owner, attribute, its value before, or _ABSENT)."""
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        if not hasattr(owner, part):
            raise AttributeError(f"{owner._get_name()} has no attribute `{part}`")
        owner = getattr(owner, part)
    original = getattr(owner, leaf) if hasattr(owner, leaf) else _ABSENT
    if original is not _ABSENT and original is not None and not isinstance(original, Tensor):
        raise TypeError(f"attribute `{leaf}`: {original} is not an instance of torch.Tensor")
    setattr(owner, leaf, value)
    return owner, leaf, original


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """Call ``module`` with some of its parameters and buffers replaced by the given tensors
    (one dict, or a tuple of dicts, keyed by ``named_parameters`` names); the module is left as
    it was. Gradients flow to the given tensors, not to the module's own parameters."""
    if isinstance(parameter_and_buffer_dicts, dict):
        values = dict(parameter_and_buffer_dicts)
    else:
        values = {}
        for mapping in parameter_and_buffer_dicts:
            overlap = set(values) & set(mapping)
            if overlap:
                raise ValueError(f"{[key for key in mapping if key in values]} appeared in multiple dictionaries; behavior of "
                                 "functional call is ambiguous")
            values.update(mapping)
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with _reparametrized(module, values, tie_weights, strict):
        return module(*args, **(kwargs or {}))


def stack_module_state(models) -> tuple:
    """``(params, buffers)``: each parameter and buffer of identically built ``models`` stacked
    along a new first dimension, for ``vmap(functional_call)`` over an ensemble. The stacked
    parameters are new leaves (requiring grad when the originals did)."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if len({m.training for m in models}) != 1:
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    if len({type(m) for m in models}) != 1:
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    all_params = [dict(m.named_parameters()) for m in models]
    all_buffers = [dict(m.named_buffers()) for m in models]
    params = {name: _stacked_leaf([p[name] for p in all_params], name) for name in all_params[0]}
    buffers = {name: _stacked_leaf([b[name] for b in all_buffers], name) for name in all_buffers[0]}
    return params, buffers


def _stacked_leaf(tensors: list, name: str):
    """One stacked leaf: requiring grad when every part did; a mix is refused, as torch does,
    since the ensemble's gradients could not mean the same thing for every member."""
    requiring = [t.requires_grad for t in tensors]
    if any(requiring) and not all(requiring):
        raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
    return _stack([t.detach() for t in tensors]).requires_grad_(all(requiring))


def replace_all_batch_norm_modules_(root):
    """torch.func.replace_all_batch_norm_modules_: every batch norm under ``root`` (itself included)
    stops tracking running statistics (they become None), in place, so that it normalises with each
    batch's own statistics under vmap; returns ``root``."""
    from .nn.modules.batchnorm import _BatchNorm

    for module in root.modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
            module.track_running_stats = False
    return root


# ---------------------------------------------------------------- functionalize, rearrange
# the ``remove`` of each functionalize-wrapped call running, innermost last: make_fx's tracer records
# their writes out of place (and their views as copies for "mutations_and_views")
_functionalizing: list[str] = []


def functionalize(func, *, remove: str = "mutations"):
    """torch.func.functionalize: ``func`` with its mutations (and, with ``remove="mutations_and_views"``,
    its views) replaced by out-of-place ops when a tracer records it. Run eagerly, as here, the result
    computes what ``func`` computes and mutates its inputs as ``func`` does (torch copies the new
    values back into mutated inputs), so the function runs as it is."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}. "
                           "Valid options are:\n     remove='mutations': all inplace and out= operators will be "
                           "removed from the program, and replaced with their out-of-place equivalents.\n     "
                           "remove='mutations_and_views': In addition to the above, all aliasing operators "
                           "{view} will be replaced with their non-aliasing counterparts, {view}_copy.\n")
    import functools

    @functools.wraps(func)
    def functionalized(*args, **kwargs):
        _functionalizing.append(remove)
        try:
            return func(*args, **kwargs)
        finally:
            _functionalizing.pop()

    return functionalized


def _rearrange_side(text: str, side: str) -> list:
    """One side of a rearrange pattern as a list of groups: a group is a list of axis names, or the
    string "..." for the ellipsis; "()" and "1" are empty groups (a dim of size 1)."""
    groups, current = [], None
    for token in text.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            if current is not None:
                raise ValueError(f"Nested brackets are not allowed in the {side} of a rearrange pattern: {text!r}")
            current = []
        elif token == ")":
            if current is None:
                raise ValueError(f"Unbalanced brackets in the {side} of a rearrange pattern: {text!r}")
            groups.append(current)
            current = None
        elif token == "...":
            if current is None:
                groups.append("...")
            elif side == "right":  # "(a ...)": the ellipsis's dims merged with others
                current.append("...")
            else:
                raise ValueError("rearrange: an ellipsis inside brackets is only supported on the right side")
        elif token == "1":  # a dim of size 1 (inside brackets it multiplies by 1: nothing)
            if current is None:
                groups.append([])
        elif token.isidentifier():
            if current is None:
                groups.append([token])
            else:
                current.append(token)
        else:
            raise ValueError(f"Invalid axis identifier {token!r} in rearrange pattern")
    if current is not None:
        raise ValueError(f"Unbalanced brackets in the {side} of a rearrange pattern: {text!r}")
    names = [n for g in groups if g != "..." for n in g if n != "..."]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"Indexing expression contains duplicate dimension '{name}'")
    if sum(g == "..." or "..." in g for g in groups) > 1:
        raise ValueError("Ellipsis may appear at most once on each side of a rearrange pattern")
    return groups


def rearrange(tensor, pattern: str, **axes_lengths: int):
    """torch.func.rearrange: einops-style ``"a (b c) ... -> (a b) ... c"`` reshapes and permutes of
    one tensor (or a list/tuple of same-shaped tensors, stacked along a new first dim); sizes of split
    dims come from ``axes_lengths`` or are inferred, at most one unknown per group."""
    import math

    if isinstance(tensor, (list, tuple)):
        tensor = _stack(list(tensor))
    if "->" not in pattern:
        raise ValueError(f"rearrange pattern must contain '->': {pattern!r}")
    left_text, right_text = pattern.split("->", 1)
    left, right = _rearrange_side(left_text, "left"), _rearrange_side(right_text, "right")
    left_names = {n for g in left if g != "..." for n in g}
    right_names = {n for g in right if g != "..." for n in g if n != "..."}
    right_has_ellipsis = any(g == "..." or "..." in g for g in right)
    if left_names != right_names or (("..." in left) != right_has_ellipsis):
        raise ValueError("Identifiers only on one side of rearrange expression (should be on both): "
                         f"{(left_names ^ right_names) or {'...'}}")
    shape = tuple(tensor.shape)
    fixed = len(left) - ("..." in left)
    if ("..." in left and len(shape) < fixed) or ("..." not in left and len(shape) != fixed):
        raise ValueError(f"rearrange: the pattern's left side has {fixed} dims but the tensor has {len(shape)} "
                         f"(shape {list(shape)})")
    sizes: dict = {}
    ellipsis: tuple = ()
    position = 0
    for group in left:
        if group == "...":
            count = len(shape) - fixed
            ellipsis = shape[position:position + count]
            position += count
            continue
        size = shape[position]
        position += 1
        unknown = [n for n in group if n not in axes_lengths]
        if len(unknown) > 1:
            raise ValueError(f"rearrange: could not infer the sizes of {unknown} (give all but one in axes_lengths)")
        known = math.prod(axes_lengths[n] for n in group if n in axes_lengths)
        if unknown:
            if known == 0 or size % known:
                raise ValueError(f"inferred dimension does not evenly fit into larger dimension: {size} vs "
                                 f"{tuple(axes_lengths.get(n, '?') for n in group)}")
            sizes[unknown[0]] = size // known
        elif known != size:
            raise ValueError(f"rearrange: the sizes {tuple(axes_lengths[n] for n in group)} of the group "
                             f"{group} do not multiply to the dim's size {size}")
        sizes.update({n: axes_lengths[n] for n in group if n in axes_lengths})
    elementary = [f"...{i}" for i in range(len(ellipsis))]
    sizes.update(zip(elementary, ellipsis))

    def flat(groups) -> list:
        """The elementary axes of ``groups`` in order, the ellipsis's own dims in its place."""
        axes = []
        for group in groups:
            for name in (["..."] if group == "..." else group):
                axes.extend(elementary if name == "..." else [name])
        return axes

    source, target = flat(left), flat(right)
    out = tensor.reshape([sizes[n] for n in source]) if source else tensor.reshape(())
    out = out.permute([source.index(n) for n in target]) if target else out
    final_shape = []
    for group in right:
        if group == "...":
            final_shape.extend(ellipsis)
        else:
            final_shape.append(math.prod(sizes[n] for n in flat([group])))
    return out.reshape(final_shape)
