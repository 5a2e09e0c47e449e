"""Optimizer: parameter groups, per-parameter state and torch-format state dicts.

Updates run on the parameters' arrays in place (NumPy in-place ops, no graph), and bump each
parameter's version counter like torch's in-place ops.
"""

from __future__ import annotations

import copy
import functools
import inspect
import numbers
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from itertools import chain

import numpy as np

from .. import _dtype
from .._backend import array_module, to_device
from ..accelerator import current_accelerator
from ..autograd.grad_mode import enable_grad, no_grad
from ..autograd.profiler import record_function
from ..ops.compat import class_repr, typename
from ..tensor import Tensor
from ..utils.hooks import RemovableHandle

__all__ = ["Optimizer", "register_optimizer_step_pre_hook", "register_optimizer_step_post_hook", "required"]


def _profiled(method):
    """``method`` as a profiler range named as torch names it (``Optimizer.step#SGD.step``): the
    in-place updates inside are no ops of their own, so without it their time has no row."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with record_function(f"Optimizer.{name}#{type(self).__name__}.{name}"):
            return method(self, *args, **kwargs)

    return wrapper


# hooks every optimizer's step runs (torch.optim.optimizer's register_optimizer_step_*_hook)
_global_optimizer_pre_hooks: OrderedDict = OrderedDict()
_global_optimizer_post_hooks: OrderedDict = OrderedDict()

_HOOK_TABLES = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                "_optimizer_load_state_dict_post_hooks")


def register_optimizer_step_pre_hook(hook) -> RemovableHandle:
    """``hook(optimizer, args, kwargs)`` before every optimizer's step, before its own pre-hooks;
    it may return replacement ``(args, kwargs)``."""
    handle = RemovableHandle(_global_optimizer_pre_hooks)
    _global_optimizer_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook) -> RemovableHandle:
    """``hook(optimizer, args, kwargs)`` after every optimizer's step, after its own post-hooks."""
    handle = RemovableHandle(_global_optimizer_post_hooks)
    _global_optimizer_post_hooks[handle.id] = hook
    return handle


def _register(table: OrderedDict, hook, prepend: bool = False) -> RemovableHandle:
    handle = RemovableHandle(table)
    table[handle.id] = hook
    if prepend:
        table.move_to_end(handle.id, last=False)
    return handle


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class of all optimizers (torch.optim.Optimizer).

    ``params`` is an iterable of Tensors or of dicts with a ``'params'`` entry and per-group
    options that override ``defaults``.
    """

    def __init__(self, params, defaults: dict) -> None:
        # torch refuses these only at the first step (set_grad_enabled() of a non-bool); said here
        # instead, before the optimizer exists, naming the optimizer and the flag
        for flag in ("differentiable",):
            if flag in defaults and not isinstance(defaults[flag], bool):
                raise TypeError(f"{type(self).__name__}: {flag} must be a bool, got {defaults[flag]!r}")
        self.defaults = defaults
        for table in _HOOK_TABLES:
            setattr(self, table, OrderedDict())
        self._patch_step_function()
        # keyed by parameter (Tensors hash by identity); a defaultdict(dict) as torch's, which users
        # print and which wrappers such as Lookahead rebuild as one
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {typename(params)}")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        blocks = []
        for i, group in enumerate(self.param_groups):
            options = [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
            blocks.append("\n".join([f"Parameter Group {i}", *options]))
        # torch leaves an empty line between two groups
        return f"{type(self).__name__} (\n" + "\n\n".join(blocks) + "\n)"

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (with its own options) to ``param_groups``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {class_repr(type(param_group))}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        _split_param_names(param_group)
        owner = type(self).__name__
        for index, param in enumerate(param_group["params"]):
            if not isinstance(param, Tensor):
                raise TypeError(f"{owner}: optimizer can only optimize Tensors, but one of the params is "
                                f"{type(param).__name__}")
            # a differentiable optimizer's parameters are usually computed (torch allows non-leaves there)
            if not (param.is_leaf or param.retains_grad or self.defaults.get("differentiable")):
                raise ValueError(f"{owner}: can't optimize a non-leaf Tensor (params[{index}] is the result of "
                                 f"{type(param.grad_fn).__name__}; pass the leaf it was computed from, or its "
                                 ".detach().requires_grad_())")
        if self.param_groups and ("param_names" in param_group) != ("param_names" in self.param_groups[0]):
            with_names = "with names" if "param_names" in param_group else "without names"
            raise ValueError(f"{owner}: all optimizer param groups should be with/without names. cannot add param "
                             f"group {with_names} to the optimizer (give params as (name, tensor) pairs in every "
                             "group or in none)")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        if len({id(p) for p in param_group["params"]}) != len(param_group["params"]):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    @_profiled
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros in place."""
        if not hasattr(self, "_zero_grad_profile_name"):
            # a subclass that skipped Optimizer.__init__ (a Lookahead wrapper) gets its step hooked
            # here, as torch's zero_grad does: its later steps run the step hooks
            self._patch_step_function()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif holds_values_inside(p.grad) or p.grad.is_sparse:
                    p.grad.zero_()  # a sparse gradient's entries go too, not only its dense backing
                else:
                    p.grad._data[...] = 0

    def __getstate__(self) -> dict:
        # torch pickles these three only: hooks (often lambdas, bound methods) are not carried
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for table in _HOOK_TABLES:
            if table not in self.__dict__:
                setattr(self, table, OrderedDict())
        self._patch_step_function()
        self.defaults.setdefault("differentiable", False)

    # ---------------------------------------------------------------- hooks
    @staticmethod
    def profile_hook_step(func):
        """``func`` (a class's ``step``) running the global and this optimizer's step pre-hooks and
        post-hooks around it, inside the profiler range torch names ``Optimizer.step#<class>.step``."""

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            self = args[0]
            with record_function(f"Optimizer.step#{type(self).__name__}.step"):
                for pre_hook in chain(_global_optimizer_pre_hooks.values(), self._optimizer_step_pre_hooks.values()):
                    result = pre_hook(self, args, kwargs)
                    if result is not None:
                        if isinstance(result, tuple) and len(result) == 2:
                            args, kwargs = result
                        else:
                            raise RuntimeError(f"{func} must return None or a tuple of (new_args, new_kwargs), "
                                               f"but got {result}.")
                out = func(*args, **kwargs)
                self._optimizer_step_code()
                for post_hook in chain(self._optimizer_step_post_hooks.values(), _global_optimizer_post_hooks.values()):
                    post_hook(self, args, kwargs)
                return out

        return wrapper

    def _patch_step_function(self) -> None:
        """Wrap this class's ``step`` once in ``profile_hook_step``, as torch does at construction:
        a subclass's own ``step`` (an optimizer written outside chainrule) runs the hooks too."""
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{type(self).__name__}.zero_grad"
        if not getattr(type(self).step, "hooked", None):
            type(self).step = self.profile_hook_step(type(self).step)
            type(self).step.hooked = True

    @staticmethod
    def _group_tensors_by_device_and_dtype(tensorlistlist, with_indices: bool = False) -> dict:
        """The foreach grouping torch's optimizers use (torch.utils._foreach_utils'), which optimizers
        written outside torch call through this class."""
        from ..utils._foreach_utils import _group_tensors_by_device_and_dtype

        return _group_tensors_by_device_and_dtype(tensorlistlist, with_indices)

    def _optimizer_step_code(self) -> None:
        """An empty method called after every step, for profilers and debuggers to trace (torch's)."""

    def register_step_pre_hook(self, hook) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` before each ``step``; it may return ``(new_args, new_kwargs)``."""
        return _register(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` after each ``step``."""
        return _register(self._optimizer_step_post_hooks, hook)

    def register_state_dict_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer)`` before ``state_dict`` builds the dict."""
        return _register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict)`` after ``state_dict``; a dict it returns is returned instead."""
        return _register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict)`` before ``load_state_dict`` reads it; a dict it returns is loaded instead."""
        return _register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer)`` after ``load_state_dict``."""
        return _register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    def step(self, closure: Callable | None = None):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._check_group(group)
            _check_capturable(self, group)
            _check_fused_params(group)
            if group.get("differentiable") or self.defaults.get("differentiable"):
                _refuse_differentiable_in_place(self, group)
                _warn_unrecorded_differentiable_step(self, group)
            _check_real_lr(self, group)
        for group in self.param_groups:
            if self._sparse_gradient_error is not None and any(p.grad.is_sparse for p in _params_with_grad(group)):
                raise RuntimeError(self._sparse_gradient_error)
            group = _plain_numbers(group)
            # a sparse parameter too: its entries, not only its dense backing, must take the step
            wrappers = [p for p in _params_with_grad(group) if holds_values_inside(p) or p.is_sparse]
            if wrappers:
                with no_grad():
                    for p in wrappers:
                        self._step_wrapper(p, group)
                group = {**group, "params": [p for p in group["params"] if not any(p is w for w in wrappers)]}
            self._step_group(group)
        return loss

    def _step_group(self, group: dict) -> None:
        raise NotImplementedError

    def _check_group(self, group: dict) -> None:
        """An optimizer's own refusals of a group's options at the step (torch's step raising them
        midway), raised before any group steps."""

    def _step_wrapper(self, p: Tensor, group: dict) -> None:
        """Step one wrapper subclass parameter (``holds_values_inside``) in tensor ops, torch's
        single-tensor step, so its ``__torch_dispatch__`` runs each op on the values it holds (its
        state made by its handler too, ``zeros_like(p)``). Runs under no_grad."""
        raise NotImplementedError(f"{type(self).__name__} does not step a wrapper subclass parameter "
                                  f"({type(p).__name__}) yet")

    def _accelerator_graph_capture_health_check(self) -> None:
        """torch's check at the top of an optimizer's ``step``, which optimizers written outside torch
        call too (timm's NAdamW, Adopt, AdamWLegacy). chainrule never captures CUDA graphs, so the
        only outcome left is torch's warning: every group asks for ``capturable`` on a machine with
        a GPU, and the step runs uncaptured."""
        accelerator = current_accelerator(check_available=True)
        if accelerator is None or accelerator.type not in ("cuda", "xpu"):
            return
        if (not getattr(self, "_warned_capturable_if_run_uncaptured", False)
                and all(group["capturable"] for group in self.param_groups)):
            device = accelerator.type.upper()
            warnings.warn(
                "This instance was constructed with capturable=True or some of all the param_groups came with "
                f"capturable=True, but step() is running without {device} graph capture. If you never intend to "
                "graph-capture this instance, capturable=True can impair performance, and you should set "
                "capturable=False.", stacklevel=2)
            self._warned_capturable_if_run_uncaptured = True

    def _cuda_graph_capture_health_check(self) -> None:
        """The check's old name, which torch keeps with a DeprecationWarning at every call."""
        warnings.warn("Use _accelerator_graph_capture_health_check instead", DeprecationWarning, stacklevel=2)
        self._accelerator_graph_capture_health_check()

    # ---------------------------------------------------------------- state dicts
    def state_dict(self) -> dict:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}`` as torch."""
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        index = {}
        groups = []
        start = 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for offset, p in enumerate(group["params"]):
                index.setdefault(id(p), start + offset)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        # a key that is no parameter (SPAM's 'current_step' beside the per-parameter entries) is kept as it is
        state = {index[id(p)] if isinstance(p, Tensor) else p: s for p, s in self.state.items()
                 if id(p) in index or not isinstance(p, Tensor)}
        state_dict = {"state": state, "param_groups": groups}
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            hook_result = post_hook(self, state_dict)
            if hook_result is not None:
                state_dict = hook_result
        return state_dict

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a dict from ``state_dict()``: the groups are copied; state tensors are cast to each
        parameter's dtype, and one that has it already is shared with the dict, as torch's."""
        state_dict = state_dict.copy()
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            hook_result = pre_hook(self, state_dict)
            if hook_result is not None:
                state_dict = hook_result
        # torch deep-copies the groups but takes the state's tensors as they are: its cast
        # ``value.to(dtype=param.dtype, device=param.device)`` returns a tensor that already matches, so
        # two optimizers loaded from one live state_dict() step the same exp_avg (only the containers
        # around the tensors are new)
        saved_groups = _copy_state(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for group, saved in zip(self.param_groups, saved_groups):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 "optimizer's group")
        id_map = {}
        for group, saved in zip(self.param_groups, saved_groups):
            for p, i in zip(group["params"], saved["params"]):
                id_map[i] = p
        state = defaultdict(dict)
        for key, value in _from_foreign(state_dict["state"]).items():
            if key in id_map:
                p = id_map[key]
                state[p] = {k: _cast_state(k, v, p) for k, v in value.items()}
                if self._step_is_tensor and isinstance(state[p].get("step"), numbers.Real):
                    # an older torch saved the step as a number: now a float32 0-d tensor, as torch's setstate
                    state[p]["step"] = Tensor._make(np.array(state[p]["step"], dtype=np.float32))
            else:  # state that belongs to no parameter is loaded as it is, as torch's
                state[key] = value
        missing_defaults = self._flag_defaults()
        # the loaded groups are new dicts in a new list, as torch's: a wrapper that shared our list
        # (SAM's base optimizer, Lookahead) is left holding the old groups until it re-shares
        loaded_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            loaded = dict(saved)
            loaded["params"] = group["params"]
            if "param_names" in group and "param_names" not in loaded:  # a dict saved without names keeps ours
                loaded["param_names"] = group["param_names"]
            for key, default in missing_defaults.items():  # flags added after the dict was written
                loaded.setdefault(key, default)
            loaded_groups.append(loaded)
        # through __setstate__, as torch: a subclass's own (Sophia's ``group.setdefault("maximize", False)``)
        # fills in what its older state dicts lack
        self.__setstate__({"state": state, "param_groups": loaded_groups})
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    # torch's own optimizers that count steps in a float32 0-d tensor turn a loaded number into one
    # (their __setstate__); the base class keeps the state as loaded, so an optimizer written outside
    # torch that counts in an int (torch-optimizer's, pytorch_optimizer's) still has an int after a
    # round trip and its `addcdiv_(-step_size, ...)` still gets a Python number
    _step_is_tensor = False
    # the RuntimeError torch's optimizer raises in step when a parameter has a sparse gradient
    # (nn.Embedding(sparse=True)); None where it steps on them (SGD, Adagrad, SparseAdam)
    _sparse_gradient_error: str | None = None
    # how torch's step fails on a complex lr (a LambdaLR's ``(1 - it / max_it) ** 0.9`` past
    # max_it): the op of its update that first meets the number refuses it (see _check_real_lr);
    # None where that was not checked against torch (the update then fails as it fails)
    _complex_lr_refusal: str | None = None
    # whether torch's foreach step refuses differentiable=True (its multi-tensor kernels assert no autograd)
    _foreach_refuses_autograd = True
    # whether that refusal comes before the foreach step returns on a group with no gradient (Adadelta's,
    # Adagrad's and Adamax's assert first; the others return on empty lists first)
    _foreach_refuses_autograd_unstepped = False

    def _flag_defaults(self) -> dict:
        """The value each option takes in a loaded group that lacks it (a state dict from before the
        option existed): the constructor's default, the behaviour from before the flag (maximize False,
        foreach None), as torch's ``__setstate__`` fills them in; an option the constructor does not
        take (AdamW's decoupled weight decay) keeps this optimizer's value."""
        parameters = inspect.signature(type(self).__init__).parameters
        return {key: parameters[key].default if key in parameters
                and parameters[key].default is not inspect.Parameter.empty else value
                for key, value in self.defaults.items()}


def _copy_state(value):
    if isinstance(value, Tensor):
        return Tensor._make(value._data.copy())
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor from torch's state_dict
        return Tensor._make(np.array(value.detach().numpy(), copy=True))
    if isinstance(value, dict):
        return {k: _copy_state(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_state(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy_state(v) for v in value)
    return copy.copy(value)


def _from_foreign(value):
    """``value`` with every tensor of another framework (a state dict from real torch) copied into a
    chainrule tensor; chainrule tensors and other values are kept, in new containers."""
    if isinstance(value, dict):
        return {k: _from_foreign(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_foreign(v) for v in value)
    if not isinstance(value, Tensor) and hasattr(value, "detach") and hasattr(value, "numpy"):
        return Tensor._make(np.array(value.detach().numpy(), copy=True))
    return value


def _cast_state(key: str | None, value, param: Tensor):
    """Loaded state joins its parameter's device, and a floating-point parameter's dtype (whatever its
    own dtype: integer, bool and complex state too), as in torch (``step`` stays as it is; a complex
    parameter's real state, NAdam's ``mu_product``, stays real).
    Tensors inside lists, tuples and dicts (SOAP's list of eigenbases) are cast alike, as torch's."""
    if isinstance(value, dict):
        return {k: _cast_state(k, v, param) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(None, v, param) for v in value)
    if key != "step" and isinstance(value, Tensor):
        if value._data.dtype != param._data.dtype and param._data.dtype.kind in _dtype.FLOAT_KINDS:
            if value._data.dtype.kind in _dtype.FLOAT_KINDS:
                value = Tensor._make(value._data.astype(param._data.dtype))
            else:  # integer, bool and complex state too, complex with torch's warning that it drops the
                value = value.detach().to(dtype=param.dtype)  # imaginary part
        if type(value._data) is not type(param._data):
            value = Tensor._make(to_device(value._data, param.device))
    return value


def holds_values_inside(t: Tensor) -> bool:
    """Whether ``t`` is a wrapper subclass (``_make_wrapper_subclass``): its values live in its attributes,
    so an optimizer updates it with tensor ops, which its ``__torch_dispatch__`` answers, not on its array."""
    return t._wrapper_strides is not None


def _wrapper_gradient(p: Tensor, group: dict, *, decoupled: bool = False) -> Tensor:
    """The gradient a ``_step_wrapper`` steps ``p`` by, in tensor ops: negated under ``maximize``,
    plus L2 weight decay; ``decoupled`` (AdamW's) instead shrinks ``p`` itself by lr·weight_decay
    first. (Rprop's group has no weight_decay.)"""
    grad = -p.grad if group["maximize"] else p.grad
    weight_decay = group.get("weight_decay", 0)
    if weight_decay != 0:
        if decoupled:
            p.mul_(1 - group["lr"] * weight_decay)
        else:
            grad = grad.add(p, alpha=weight_decay)
    return grad


def _params_with_grad(group: dict) -> Iterable[Tensor]:
    for p in group["params"]:
        if p.grad is not None:
            yield p


# elements per block of ``in_blocks``: a block of each operand and the float64 temporaries of the
# float32 fused multiply-adds stay in a core's L2 cache (2^16 measured best of 2^12..2^17, a 10^6
# element Adam update 2.5 times faster than on the whole arrays)
BLOCK_SIZE = 1 << 16


def in_blocks(update, arrays: tuple, **numbers) -> None:
    """``update(*arrays, **numbers)`` on successive blocks of ``BLOCK_SIZE`` elements of the arrays
    (C-contiguous NumPy arrays of one shape, or None) rather than on them whole: an elementwise update
    computes the same bits either way, but its temporaries (one per step of torch's op sequence,
    float64 ones for each float32 fused multiply-add) then stay in cache instead of streaming
    through memory. Other arrays (device arrays, strided views, broadcast shapes) are updated whole."""
    first = arrays[0]
    size = first.size
    if size <= BLOCK_SIZE or not all(a is None or type(a) is np.ndarray and a.shape == first.shape
                                     and a.flags.c_contiguous for a in arrays):
        update(*arrays, **numbers)
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]  # (None: an optional buffer not kept)
    for start in range(0, size, BLOCK_SIZE):
        stop = start + BLOCK_SIZE
        update(*(None if a is None else a[start:stop] for a in flat), **numbers)


# elements of a parameter small enough to join ``in_few_updates``'s concatenation: below it the
# Python cost of one update per parameter (a dozen NumPy calls, microseconds each) outweighs copying
# its arrays in and out (200 Adam parameters of 100 elements: 3.5 ms a step one by one, ~1 ms packed)
PACKED_SIZE = 1 << 12
# fewer small parameters than this (of one dtype and step) are updated one by one: the concatenation
# and the copies back cost more than the few updates they save (benchmarks/overhead.py's mlp_step, six
# SGD parameters: 14.35M instructions for 5 steps one by one, 14.58M packed)
PACKED_COUNT = 8


def in_few_updates(update, rows: list, written: tuple) -> None:
    """``update(*arrays, **scalars)`` for each ``(scalars, arrays)`` of ``rows`` (one per parameter,
    its arrays as ``in_blocks`` takes them), the small parameters that share one ``scalars`` dict
    (the same object) and a dtype updated once over their concatenation: an elementwise update
    gives the same bits on a concatenation as on each piece. ``written`` indexes the arrays the
    update writes in place, copied back into each piece. Large parameters, and arrays that are not
    C-contiguous NumPy arrays of one dtype and shape, go through ``in_blocks`` one by one; so does
    every row, in order, when an array the update writes shares memory with another (updated one
    after the other, a later row would see an earlier one's writes)."""
    if len(rows) < PACKED_COUNT:  # too few to pack any: one by one, without the scan below
        for scalars, arrays in rows:
            in_blocks(update, arrays, **scalars)
        return
    packable, written_owners, read_owners, count = [], set(), set(), 0
    for _, arrays in rows:
        first = arrays[0]
        small = type(first) is np.ndarray and first.size <= PACKED_SIZE and first.flags.c_contiguous
        if small:  # (the others C-contiguous too: the strides of ``first``, cheaper than their flags)
            dtype, shape, strides = first.dtype, first.shape, first.strides
        for index, a in enumerate(arrays):
            if a is None:
                continue
            if small and (type(a) is not np.ndarray or a.dtype is not dtype or a.shape != shape
                          or a.strides != strides):
                small = False
            base = getattr(a, "base", None)
            if index in written:
                written_owners.add(id(a if base is None else base))
                count += 1
            else:  # (read only: gradients may share memory with each other)
                read_owners.add(id(a if base is None else base))
        packable.append(small)
    if len(written_owners) != count or not written_owners.isdisjoint(read_owners):
        packable = [False] * len(rows)
    batches: dict = {}  # (id(scalars), dtype): (scalars, the arrays of the small parameters updated with them)
    for (scalars, arrays), small in zip(rows, packable):
        if small:
            batches.setdefault((id(scalars), arrays[0].dtype), (scalars, []))[1].append(arrays)
        else:
            in_blocks(update, arrays, **scalars)
    for scalars, batch in batches.values():
        if len(batch) < PACKED_COUNT:
            for arrays in batch:
                update(*arrays, **scalars)
            continue
        columns = list(zip(*batch))
        flat = [None if column[0] is None else np.concatenate(column, axis=None) for column in columns]
        update(*flat, **scalars)
        for index in written:
            if flat[index] is None:
                continue
            start = 0
            for a in columns[index]:
                stop = start + a.size
                a.reshape(-1)[...] = flat[index][start:stop]
                start = stop


def _start_state(state: dict) -> None:
    """A parameter's first step: its 0-d float32 ``step`` goes in first, as torch's state lists it
    first (``state_dict()`` printed, ``state.items()`` iterated), before the buffers the caller adds."""
    state["step"] = Tensor._make(np.zeros((), dtype=np.float32))  # on the CPU, as torch's


def _step_tensor(state: dict) -> float:
    """Increment the state's 0-d float32 ``step`` tensor (torch keeps it as a tensor) and return it."""
    step = state.get("step")
    if step is None:
        step = state["step"] = Tensor._make(np.zeros((), dtype=np.float32))
    step._data[...] += 1
    return float(step._data)


def _zero_state(state: dict, w, *names: str) -> None:
    """On a parameter's first step: a 0-d float32 ``step`` and zero buffers ``names`` shaped like ``w``
    (``names[0]`` present means the state is already set up)."""
    if names[0] in state:
        return
    state["step"] = Tensor._make(np.zeros((), dtype=np.float32))  # on the CPU, as torch's
    xp = array_module(w)
    for name in names:
        state[name] = Tensor._make(xp.zeros_like(w))  # on the parameter's device


def _split_param_names(param_group: dict) -> None:
    """``params`` given as (name, tensor) pairs, as torch takes ``model.named_parameters()``: the
    tensors stay in ``params`` and the names go to ``param_names``."""
    params = param_group["params"]
    names = [p[0] for p in params if isinstance(p, tuple)]
    if not names:
        return
    if len(names) != len(params):
        raise ValueError("all optimizer params should be with/without names. Some param names are missing")
    param_group["params"] = [p[1] for p in params]
    param_group["param_names"] = names


# per hyper-parameter: torch's words (its message reads "Invalid learning rate: -1.0") and the
# interval the value must lie in, (low, high, low included, high included); None is unbounded
_HYPER_PARAMETERS = {
    "lr": ("Invalid learning rate", 0.0, None, True, False),
    "eps": ("Invalid epsilon value", 0.0, None, True, False),
    "weight_decay": ("Invalid weight_decay value", 0.0, None, True, False),
    "momentum": ("Invalid momentum value", 0.0, None, True, False),
    "alpha": ("Invalid alpha value", 0.0, None, True, False),
    "lr_decay": ("Invalid lr_decay value", 0.0, None, True, False),
    "initial_accumulator_value": ("Invalid initial_accumulator_value value", 0.0, None, True, False),
    "momentum_decay": ("Invalid momentum_decay value", 0.0, None, True, False),
    "rho": ("Invalid rho value", 0.0, 1.0, True, True),
}


def _check_hyper_parameters(optimizer: Optimizer, boolean_alpha: tuple = ("weight_decay",), only_below: bool = False,
                            **values) -> None:
    """Check an optimizer's hyper-parameters by name (``_HYPER_PARAMETERS``), before anything is
    built, as torch's constructors do (``_check_range``). ``boolean_alpha``: the names torch's step
    passes as the ``alpha`` of an add (``g + weight_decay * w``), which refuses True with a
    RuntimeError; ``only_below``: torch's SGD, whose checks read ``lr < 0.0``."""
    owner = type(optimizer).__name__
    for name, value in values.items():
        if name == "lr":
            check_one_element(value, "lr")
        if name in boolean_alpha and value is True:
            raise RuntimeError(f"{owner}: {name} must be a number, got the bool True (torch's step refuses "
                               "a Boolean alpha)")
        label, low, high, low_included, high_included = _HYPER_PARAMETERS[name]
        _check_range(value, label, low, high, low_included, high_included, only_below=only_below)


def _check_range(value, label: str, low: float | None = 0.0, high: float | None = None, low_included: bool = True,
                 high_included: bool = False, only_below: bool = False) -> None:
    """torch's check that ``value`` lies in the interval from ``low`` to ``high``, compared as its
    optimizers compare (``not 0.0 <= lr``, ``not 0.0 <= beta < 1.0``, ``not 0.0 >= beta2_decay``,
    the bound on the left where it is the first comparison; ``only_below``: SGD's
    ``lr < 0.0``, which NaN passes). A value outside raises torch's ``ValueError("<label>: <value>")``
    (``label`` is its words, "Invalid learning rate"); one that does not compare (None, a string) the
    comparison's own TypeError, and a tensor of several elements its truth value's RuntimeError."""
    if only_below:
        inside = not value < low
    else:
        inside = ((low is None or (low <= value if low_included else low < value))
                  and (high is None or (high >= value if high_included else high > value)))
    if not inside:
        raise ValueError(f"{label}: {value}")


def _as_number(owner: str, name: str, value) -> float:
    """A hyper-parameter as a float: a real number or a 1-element Tensor (torch takes tensor
    learning rates and betas), else a TypeError naming the optimizer and the argument."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{owner}: Tensor {name} must be 1-element, got shape {tuple(value.shape)}")
        return float(value.item())
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{owner}: {name} must be a number or a 1-element Tensor, got {type(value).__name__} {value!r}")


def check_one_element(value, name: str) -> None:
    """torch's check of a tensor hyper-parameter (Adam's, Adafactor's and Muon's ``lr`` and betas)."""
    if isinstance(value, Tensor) and value.numel() != 1:
        raise ValueError(f"Tensor {name} must be 1-element")


def _check_adam_args(optimizer: Optimizer, lr, eps, betas, weight_decay, l2_weight_decay: bool = True) -> None:
    """The argument checks the Adam family shares, in torch's order with torch's messages (betas
    indexed as torch indexes them, so a number or a 1-tuple fails as there); ``l2_weight_decay``:
    the decay is added to the gradient (not decoupled), so a bool True fails as in torch."""
    boolean_alpha = ("weight_decay",) if l2_weight_decay else ()
    _check_hyper_parameters(optimizer, boolean_alpha, lr=lr, eps=eps)
    _check_range(betas[0], "Invalid beta parameter at index 0", 0.0, 1.0)
    _check_range(betas[1], "Invalid beta parameter at index 1", 0.0, 1.0)
    _check_hyper_parameters(optimizer, boolean_alpha, weight_decay=weight_decay)


def _plain_numbers(group: dict) -> dict:
    """``group`` with its 1-element Tensor hyper-parameters (a tensor ``lr``, tensor ``betas``) as
    floats for the NumPy update, as torch's step reads them with ``.item()``; the group itself keeps
    the tensors (a scheduler may write into them)."""
    if not any(isinstance(v, Tensor) or isinstance(v, tuple) and any(isinstance(e, Tensor) for e in v)
               for k, v in group.items() if k != "params"):
        return group
    plain = dict(group)
    for key, value in group.items():
        if key == "params":
            continue
        if key == "lr" and isinstance(value, Tensor) and value.is_floating_point():
            # a NumPy scalar of the tensor's dtype: torch's step computes lr / bias_correction,
            # 1 - lr * weight_decay, ... as 0-d tensors, rounding each to a float32 lr's precision,
            # and NumPy's scalar arithmetic rounds alike (a float64 parameter's update sees those roundings)
            plain[key] = np.dtype(value._data.dtype).type(value.item())
        elif isinstance(value, Tensor):
            plain[key] = float(value.item())
        elif isinstance(value, tuple):
            plain[key] = tuple(float(e.item()) if isinstance(e, Tensor) else e for e in value)
    return plain


def _foreach_step_lr(lr, foreach):
    """The lr a step size is computed from: torch's foreach Adamax and NAdam read a tensor lr with
    ``.item()`` (``_get_value``) and compute their step sizes in double, where their for-loops compute
    them in the tensor's float32 (``_plain_numbers``' NumPy scalar)."""
    return float(lr) if foreach else lr


# what torch's capturable check names, per optimiser: its single-tensor and its foreach step
_CAPTURED_TENSORS = {"NAdam": ("params, mu_products and state_steps", "params, mu_products, and state_steps"),
                     "ASGD": ("params, mus, etas, and state_steps",) * 2}
_CAPTURE_DEVICES = ['cuda', 'xpu', 'hpu', 'privateuseone']
# optimisers whose step lists 'xla' among the devices: single-tensor steps but Adadelta's, and
# RMSprop's and Rprop's foreach steps too
_XLA_LISTED = ({(name, False) for name in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax", "ASGD", "RMSprop", "Rprop")}
               | {("RMSprop", True), ("Rprop", True)})


# torch's ScalarType and C++ names of a parameter's dtype, as its errors print them
_SCALAR_TYPE_NAMES = {"float32": ("Float", "float", "ComplexFloat"), "float64": ("Double", "double", "ComplexDouble"),
                      "float16": ("Half", "c10::Half", "ComplexHalf"), "bfloat16": ("BFloat16", "c10::BFloat16", "ComplexFloat")}


def _check_real_lr(optimizer, group: dict) -> None:
    """torch's error for a complex lr, raised before any parameter or state changes (torch's is
    raised midway, by the first op of the update given the number): ``alpha`` where it is an add's
    alpha (SGD, Adadelta), ``overflow`` where it is cast to the parameter's dtype (Adam, RMSprop,
    Adagrad, ...), ``cast`` where a complex tensor is written into the real parameter (AdamW, RAdam),
    ``real`` where Python's float() reads it (ASGD). A fused step's own TypeError is left as it is."""
    lr = group.get("lr")
    if not isinstance(lr, (complex, np.complexfloating)) or group.get("fused") or optimizer._complex_lr_refusal is None:
        return
    params = [p for p in group["params"] if p.grad is not None]
    if not params:
        return
    scalar, cpp, complex_scalar = _SCALAR_TYPE_NAMES.get(params[0].dtype.name, ("Float", "float", "ComplexFloat"))
    refusal = optimizer._complex_lr_refusal
    if refusal == "alpha":
        raise RuntimeError("For non-complex input tensors, argument alpha must not be a complex number.")
    if refusal == "overflow":
        raise RuntimeError(f"value cannot be converted to type {cpp} without overflow")
    if refusal == "real":
        raise TypeError("must be real number, not complex")
    raise RuntimeError(f"result type {complex_scalar} can't be cast to the desired output type {scalar}")


def _check_capturable(optimizer: Optimizer, group: dict) -> None:
    """torch's check of ``capturable`` (any true value): a captured step (CUDA graphs) needs every
    parameter on the GPU. torch raises AssertionError at the step, with its message (here followed
    by the fix), after creating the state; chainrule raises before anything changes. Like torch's, it
    looks only at parameters with a gradient: a step with none moves nothing and raises nothing."""
    if not group.get("capturable") or group.get("fused"):  # torch's fused kernels take no capturable
        return
    for p in group["params"]:
        if p.grad is not None and p.device.type == "cpu":
            name = type(optimizer).__name__
            foreach = bool(group.get("foreach"))
            tensors = _CAPTURED_TENSORS.get(name, ("params and state_steps",) * 2)[foreach]
            devices = _CAPTURE_DEVICES + ["xla"] * ((name, foreach) in _XLA_LISTED)
            raise AssertionError(f"If capturable=True, {tensors} must be on supported devices: {devices}. "
                                 f"({name}: a captured step runs on CUDA graphs; leave capturable=False on the CPU)")


def _check_fused_flags(fused, foreach, differentiable) -> None:
    """torch's checks of the implementation flags (fused=True itself runs everywhere: the fused
    CuPy kernels on the GPU, the NumPy step on the CPU)."""
    if fused and differentiable:
        raise RuntimeError("`fused` does not support `differentiable`")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


# the devices torch's fused kernels run on, as its message lists them
_FUSED_DEVICES = ['mps', 'cuda', 'xpu', 'hpu', 'cpu', 'mtia', 'privateuseone']


def _check_fused_params(group: dict) -> None:
    """torch's fused kernels take real floating-point parameters only (its RuntimeError at the step,
    here raised before any parameter or state changes)."""
    if not group.get("fused"):
        return
    for p in _params_with_grad(group):
        if not p.is_floating_point():
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported "
                               f"devices: {_FUSED_DEVICES} but {p.dtype} and {p.device.type} (fused=False takes "
                               "complex parameters)")


def _refuse_differentiable_in_place(optimizer: Optimizer, group: dict) -> None:
    """torch's differentiable=True runs the step with grad mode on (the optimizer's default, not the
    group's): its foreach kernels refuse autograd (an AssertionError; SGD's do not ask), and updating a
    parameter that requires grad in place is autograd's in-place error on a leaf or a view of one."""
    params = list(_params_with_grad(group))
    if ((params or optimizer._foreach_refuses_autograd_unstepped) and group.get("foreach")
            and group.get("differentiable") and optimizer._foreach_refuses_autograd):
        raise AssertionError("_foreach ops don't support autograd")
    if not optimizer.defaults.get("differentiable"):
        return
    for p in params:
        if p.requires_grad and p._is_view() and p._base.is_leaf:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
        if p.requires_grad and p.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def _warn_unrecorded_differentiable_step(optimizer: Optimizer, group: dict) -> None:
    """torch's differentiable=True records the step in autograd (meta-learning differentiates
    through it); chainrule's step gives torch's values but is not recorded. That only matters when a
    gradient carries a graph of its own (computed with create_graph=True): said once, not silently."""
    if not group.get("differentiable") or getattr(optimizer, "_warned_unrecorded_step", False):
        return
    if any(p.grad.requires_grad for p in _params_with_grad(group)):
        warnings.warn(f"{type(optimizer).__name__}(differentiable=True): chainrule's optimizer step is not recorded "
                      "by autograd, so no gradient flows through step() into the gradients' graph (torch's "
                      "differentiable step records it); the updated values are torch's", stacklevel=3)
        optimizer._warned_unrecorded_step = True
