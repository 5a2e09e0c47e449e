# ruff: noqa: UP006, UP045 - torch.jit.isinstance is given typing.List/Dict/Optional, as scripted code writes them
"""Torch names and behaviours MONAI reaches, compared with torch 2.13 (without MONAI).

- ``torch.utils.data._utils.collate``: ``collate`` with a ``collate_fn_map``, the per-type
  functions, ``default_collate_fn_map`` (MONAI registers MetaTensor in it, and ``default_collate``
  must then use it), ``np_str_obj_array_pattern``.
- ``torch.optim.lr_scheduler._LRScheduler`` (the old name of the base class).
- ``torch.backends.__allow_nonbracketed_mutation``, ``disable_global_flags``, ``flags_frozen``.
- ``torch.jit.isinstance`` (BasicUNet's ``torch.jit.isinstance(x, List[int])``-style checks).
- ``F.interpolate(mode="area")`` of a 5-D volume (MONAI's Resize).
- ``F.instance_norm`` refuses one spatial element per channel in training.
"""

from __future__ import annotations

import collections
import importlib
import re
import warnings
from typing import Dict, List, Optional, Tuple  # noqa: UP035 - the typing names torch.jit.isinstance is given

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _plain(value):
    """A collated batch as plain Python: tensors as (dtype name, values), containers by type name."""
    if isinstance(value, (chainrule.Tensor, torch.Tensor)):
        return ("tensor", str(value.dtype).split(".")[-1], value.tolist())
    if isinstance(value, dict):
        return (type(value).__name__, {k: _plain(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_plain(v) for v in value])
    return value


class _Tagged:
    def __init__(self, value):
        self.value = value


def _collated(lib):
    from_module = __import__(f"{lib.__name__}.utils.data._utils.collate", fromlist=["collate"])
    batch = [{"x": lib.tensor([1.0, 2.0]), "n": 3, "f": 0.5, "b": True, "s": "a", "a": np.array([1, 2], dtype=np.int32),
              "g": np.float32(2.5), "pair": (1, lib.tensor([7])), "od": collections.OrderedDict(k=[1, 2])},
             {"x": lib.tensor([3.0, 4.0]), "n": 4, "f": 1.5, "b": False, "s": "b", "a": np.array([3, 4], dtype=np.int32),
              "g": np.float32(3.5), "pair": (2, lib.tensor([8])), "od": collections.OrderedDict(k=[3, 4])}]
    default = _plain(from_module.default_collate(batch))
    # a library's own type registered in the shared map reaches default_collate everywhere
    from_module.default_collate_fn_map[_Tagged] = lambda samples, *, collate_fn_map=None: sum(s.value for s in samples)
    try:
        registered = lib.utils.data.default_collate([[_Tagged(2), 1], [_Tagged(5), 2]])
    finally:
        del from_module.default_collate_fn_map[_Tagged]
    plain_collate = _plain(from_module.collate([[1.5, 2], [2.5, 3]], collate_fn_map={float: from_module.collate_float_fn, int: from_module.collate_int_fn}))
    try:
        from_module.collate([1, 2])
        unmapped = "ran"
    except TypeError as error:
        unmapped = str(error)
    try:
        from_module.default_collate([np.array(["a"]), np.array(["b"])])
        strings = "ran"
    except TypeError as error:
        strings = str(error)
    return (default, _plain(registered), plain_collate, unmapped, strings,
            from_module.np_str_obj_array_pattern.pattern, from_module.default_collate_err_msg_format,
            sorted(t.__name__ if isinstance(t, type) else str(t) for t in from_module.default_collate_fn_map))


def test_collate_module_under_torchs_path():
    ours, theirs = _collated(chainrule), _collated(torch)
    assert ours[:7] == theirs[:7]
    # the map's keys: the same types, but chainrule.Tensor for torch.Tensor
    assert ours[7] == theirs[7]


def test_default_collate_is_the_same_function_under_both_paths():
    from chainrule.utils.data._utils import collate as under_utils

    assert under_utils.default_collate is chainrule.utils.data.default_collate
    # utils.data.collate is reached by import only (torch.utils.data binds no `collate`)
    assert under_utils.default_collate_fn_map is importlib.import_module("chainrule.utils.data.collate").default_collate_fn_map
    assert chainrule.utils.data._utils.collate is under_utils


def test_old_scheduler_base_class_name():
    def schedule(lib):
        class Halving(lib.optim.lr_scheduler._LRScheduler):
            def get_lr(self):
                return [group["lr"] * 0.5 for group in self.optimizer.param_groups]

        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(1))], lr=1.0)
        scheduler = Halving(opt)
        lrs = []
        for _ in range(3):
            opt.step()
            scheduler.step()
            lrs.append(opt.param_groups[0]["lr"])
        return lrs, issubclass(lib.optim.lr_scheduler._LRScheduler, lib.optim.lr_scheduler.LRScheduler)

    assert schedule(chainrule) == schedule(torch)


def _unfreeze(lib):
    # the flag is a global of the functions' module: torch.backends is a wrapper module whose own
    # attributes are not those globals, so setattr on it changes nothing
    lib.backends.flags_frozen.__globals__["_" + "_allow_nonbracketed_mutation_flag"] = True


def test_backend_flag_mutation_guard():
    def states(lib):
        # from the unfrozen state, whatever an earlier test in this process left: importing torch's
        # testing internals (the op_db ledger tests do) calls torch.backends.disable_global_flags()
        _unfreeze(lib)
        seen = [lib.backends.flags_frozen()]
        with lib.backends.__allow_nonbracketed_mutation():
            lib.backends.cudnn.deterministic = True
            seen.append(lib.backends.flags_frozen())
        lib.backends.cudnn.deterministic = False
        lib.backends.disable_global_flags()
        seen.append(lib.backends.flags_frozen())
        with lib.backends.__allow_nonbracketed_mutation():
            seen.append(lib.backends.flags_frozen())
        seen.append(lib.backends.flags_frozen())
        _unfreeze(lib)
        return seen

    assert states(chainrule) == states(torch)


JIT_ISINSTANCE_CASES = [
    ([1, 2], List[int]), ([1, "a"], List[int]), ([[1], [2, 3]], List[List[int]]), ({"a": 1}, Dict[str, int]),
    ({"a": [1.0]}, Dict[str, List[float]]), ({1: 1}, Dict[str, int]), ((1, "a"), Tuple[int, str]),
    ((1, 2, 3), Tuple[int, int]), (None, Optional[int]), (3, Optional[int]), ("x", Optional[int]),
    ([2], Optional[List[int]]), (3, (str, int)), (3.0, float), (3, float), (True, int), ([], List[str]),
]


@pytest.mark.parametrize("value, target", JIT_ISINSTANCE_CASES, ids=[str(i) for i in range(len(JIT_ISINSTANCE_CASES))])
def test_jit_isinstance_checks_container_elements(value, target):
    def outcome(lib):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            answer = lib.jit.isinstance(value, target)
        return answer, [str(w.message) for w in caught]

    assert outcome(chainrule) == outcome(torch)


@pytest.mark.parametrize("target", [list, List, dict, Dict, tuple, Optional], ids=str)
def test_jit_isinstance_refuses_bare_containers(target):
    def message(lib):
        with pytest.raises(RuntimeError) as info:
            lib.jit.isinstance([1], target)
        return str(info.value)

    assert message(chainrule) == message(torch)


def test_jit_isinstance_of_a_tensor():
    assert chainrule.jit.isinstance(chainrule.ones(2), chainrule.Tensor)
    assert chainrule.jit.isinstance([chainrule.ones(2)], List[chainrule.Tensor])
    assert not chainrule.jit.isinstance([chainrule.ones(2), 1], List[chainrule.Tensor])


@pytest.mark.parametrize("size", [(4, 5, 3), (9, 2, 7), (6, 6, 6)])
def test_area_interpolation_of_a_volume(size):
    data = np.random.default_rng(3).standard_normal((2, 3, 6, 7, 5))

    def run(lib):
        x = lib.tensor(data, requires_grad=True)
        out = lib.nn.functional.interpolate(x, size=size, mode="area")
        (out * lib.arange(out.numel(), dtype=lib.float64).reshape(out.shape)).sum().backward()
        return out.detach().numpy(), x.grad.numpy()

    for ours, theirs in zip(run(chainrule), run(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    x = chainrule.tensor(data, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.nn.functional.interpolate(t, size=size, mode="area"), (x,))


def _norm_refusal(lib, shape, module):
    x = lib.ones(shape)
    try:
        if module:
            lib.nn.InstanceNorm3d(shape[1], affine=True)(x)
        else:
            lib.nn.functional.instance_norm(x)
        return "ran"
    except ValueError as error:
        return re.sub(r"\b(torch|chainrule)\.Size", "Size", str(error))


@pytest.mark.parametrize("shape, module", [((1, 4, 1, 1, 1), True), ((2, 4), False), ((2, 3, 1), False),
                                           ((1, 2, 2, 1, 1), True)])
def test_instance_norm_needs_more_than_one_spatial_element(shape, module):
    assert _norm_refusal(chainrule, shape, module) == _norm_refusal(torch, shape, module)


def test_instance_norm_with_running_stats_in_eval_takes_one_element():
    def run(lib):
        norm = lib.nn.InstanceNorm3d(2, track_running_stats=True).eval()
        return norm(lib.full((1, 2, 1, 1, 1), 3.0)).tolist()

    assert run(chainrule) == run(torch)
