"""Run Python's own protocols on torch's tensors and modules and on chainrule's, and compare.

Code written for torch copies tensors (``copy.copy``/``copy.deepcopy``), pickles them, hashes them,
compares them with None, iterates them, indexes lists with them, rounds them, sums them with the
builtin ``sum``, assigns into slices and masks. Each case below is one small function of the library
module (``lib`` is ``torch`` or ``chainrule``), run on both, seeded alike, under a time limit; what it
returns is reduced to plain data (a tensor to its class name, dtype, shape, values and
requires_grad; a Python value to its type and value) and compared. Kinds per case:

    same                   both returned equal data, or both raised and chainrule's exception is an
                           instance of torch's builtin class
    values_differ          both returned, same types, other values (dtype, shape, values, flags)
    type_differs           both returned, and a returned class differs (Parameter vs Tensor, int vs
                           float, a tensor where torch gives a Python number)
    error_class_differs    both raised, another builtin class
    torch_only_raised      torch refused and chainrule returned something
    chainrule_only_raised  chainrule refused what torch ran

    python tools/torch_python_protocols_trial.py run --out /tmp/protocols
    python tools/torch_python_protocols_trial.py run --out /tmp/protocols --filter deepcopy
    python tools/torch_python_protocols_trial.py show --out /tmp/protocols --kind values_differ

``run`` writes ``cases.json`` and prints the counts per kind and per group (the case name's prefix).
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import math
import operator
import os
import pickle
import re
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import time_limit  # noqa: E402

# generous: torch's first optimizer step imports torch._dynamo, seconds on a busy machine
SECONDS_PER_CASE = 30
KINDS = ("same", "values_differ", "type_differs", "error_class_differs", "torch_only_raised",
         "chainrule_only_raised")


class CaseTimeout(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# what a case returned, as plain data


def _is_tensor(value, lib) -> bool:
    return isinstance(value, lib.Tensor)


def reduced(value, lib, depth=0):
    """``value`` as JSON-able data: tensors by class, dtype, shape, values and requires_grad;
    modules by class and state; other objects by type name and repr of plain values."""
    if depth > 6:
        return ["...", type(value).__name__]
    if _is_tensor(value, lib):
        detached = value.detach()
        values = detached.tolist() if detached.numel() <= 64 else ["sum", float(detached.double().sum())]
        return ["tensor", type(value).__name__, str(value.dtype).rpartition(".")[2], list(value.shape),
                _plain(values), bool(value.requires_grad)]
    if isinstance(value, lib.nn.Module):
        return ["module", type(value).__name__, reduced(dict(value.state_dict()), lib, depth + 1)]
    if isinstance(value, (bool, int, float, complex, str, type(None))):
        return [type(value).__name__, _plain(value)]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__ if type(value) in (list, tuple) else "sequence",
                [reduced(item, lib, depth + 1) for item in value]]
    if isinstance(value, dict):
        return ["dict", [[str(key), reduced(item, lib, depth + 1)] for key, item in value.items()]]
    if isinstance(value, lib.dtype):
        return ["dtype", str(value).rpartition(".")[2]]
    if isinstance(value, lib.device):
        return ["device", str(value)]
    return ["object", type(value).__name__, repr(value)[:80]]


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, complex):
        return [_plain(value.real), _plain(value.imag)]
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _types(data):
    """The class names in reduced data, in order (what type_differs compares)."""
    if not isinstance(data, list) or not data:
        return []
    head = data[0]
    if head == "tensor":
        return [data[1]]
    if head == "module":
        return [data[1]] + _types(data[2])
    if head in ("list", "tuple", "sequence"):
        return [head] + [name for item in data[1] for name in _types(item)]
    if head == "dict":
        return ["dict"] + [name for _, item in data[1] for name in _types(item)]
    if head == "object":
        return [data[1]]
    return [head]


# ----------------------------------------------------------------------------------------------
# the cases: name -> function(lib) returning something to compare

CASES: dict = {}


def case(name):
    def register(function):
        CASES[name] = function
        return function
    return register


def _leaf(lib):
    lib.manual_seed(0)
    x = lib.arange(6.0).reshape(2, 3).requires_grad_()
    (x * 2).sum().backward()
    return x


# copy and deepcopy ---------------------------------------------------------------------------

@case("copy.copy/leaf_with_grad")
def _(lib):
    x = _leaf(lib)
    y = copy.copy(x)
    return y, y.grad, y.requires_grad, y.is_leaf


@case("copy.deepcopy/leaf_with_grad")
def _(lib):
    x = _leaf(lib)
    y = copy.deepcopy(x)
    return y, y.grad, y.is_leaf, y.data_ptr() != x.data_ptr(), y.grad is x.grad


@case("copy.deepcopy/non_leaf")
def _(lib):
    x = _leaf(lib)
    return copy.deepcopy(x * 2)


@case("copy.copy/non_leaf")
def _(lib):
    x = _leaf(lib)
    return copy.copy(x * 2)


@case("copy.deepcopy/views_share_base_in_memo")
def _(lib):
    base = lib.arange(6.0)
    a, b = base[:3], base[2:]
    c, d = copy.deepcopy([a, b])
    c[2] = 100
    return c, d


@case("copy.deepcopy/same_tensor_twice")
def _(lib):
    x = lib.ones(3)
    a, b = copy.deepcopy([x, x])
    return a is b


@case("copy.deepcopy/parameter")
def _(lib):
    p = lib.nn.Parameter(lib.ones(2, 2))
    q = copy.deepcopy(p)
    return q, type(q).__name__, q.is_leaf


@case("copy.copy/parameter")
def _(lib):
    p = lib.nn.Parameter(lib.ones(2, 2))
    q = copy.copy(p)
    return q, type(q).__name__


@case("copy.deepcopy/parameter_with_grad")
def _(lib):
    p = lib.nn.Parameter(lib.ones(2))
    (p * 3).sum().backward()
    q = copy.deepcopy(p)
    return q.grad, type(q).__name__


@case("copy.deepcopy/module_tied_weights")
def _(lib):
    lib.manual_seed(0)
    embed = lib.nn.Embedding(4, 3)
    head = lib.nn.Linear(3, 4, bias=False)
    head.weight = embed.weight
    model = lib.nn.Sequential(embed, head)
    clone = copy.deepcopy(model)
    return clone[0].weight is clone[1].weight, clone[0].weight is model[0].weight, len(list(clone.parameters()))


@case("copy.deepcopy/module_shared_submodule")
def _(lib):
    lib.manual_seed(0)
    layer = lib.nn.Linear(2, 2)
    model = lib.nn.Sequential(layer, layer)
    clone = copy.deepcopy(model)
    return clone[0] is clone[1], len(list(clone.parameters()))


@case("copy.deepcopy/optimizer")
def _(lib):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1, momentum=0.9)
    (p * 2).sum().backward()
    opt.step()
    clone = copy.deepcopy(opt)
    state = clone.state[clone.param_groups[0]["params"][0]]
    return clone.param_groups[0]["params"][0] is not p, state["momentum_buffer"], clone.param_groups[0]["lr"]


@case("copy.deepcopy/buffer_requires_grad_false")
def _(lib):
    x = lib.zeros(2, dtype=lib.int64)
    y = copy.deepcopy(x)
    y += 1
    return x, y


@case("copy.deepcopy/dtype_device_size")
def _(lib):
    return copy.deepcopy(lib.float16), copy.deepcopy(lib.device("cpu")), copy.deepcopy(lib.Size([2, 3]))


@case("copy.copy/shares_storage")
def _(lib):
    x = lib.zeros(3)
    y = copy.copy(x)
    y[0] = 5
    return x


# pickle ---------------------------------------------------------------------------------------

@case("pickle/tensor")
def _(lib):
    return pickle.loads(pickle.dumps(lib.arange(4.0).reshape(2, 2)))


@case("pickle/tensor_requires_grad")
def _(lib):
    y = pickle.loads(pickle.dumps(lib.ones(2, requires_grad=True)))
    return y, y.is_leaf


@case("pickle/non_leaf")
def _(lib):
    x = lib.ones(2, requires_grad=True)
    return pickle.loads(pickle.dumps(x * 2))


@case("pickle/parameter")
def _(lib):
    q = pickle.loads(pickle.dumps(lib.nn.Parameter(lib.ones(2))))
    return q, type(q).__name__


@case("pickle/parameter_no_grad")
def _(lib):
    q = pickle.loads(pickle.dumps(lib.nn.Parameter(lib.ones(2), requires_grad=False)))
    return q, q.requires_grad


@case("pickle/size")
def _(lib):
    s = pickle.loads(pickle.dumps(lib.Size([2, 3])))
    return type(s).__name__, tuple(s)


@case("pickle/dtype")
def _(lib):
    return pickle.loads(pickle.dumps(lib.bfloat16)) is lib.bfloat16


@case("pickle/device")
def _(lib):
    return str(pickle.loads(pickle.dumps(lib.device("cpu"))))


@case("pickle/module")
def _(lib):
    lib.manual_seed(0)
    return pickle.loads(pickle.dumps(lib.nn.Linear(2, 3)))


@case("pickle/view_and_base")
def _(lib):
    base = lib.arange(4.0)
    a, b = pickle.loads(pickle.dumps([base, base[1:]]))
    a[1] = 10
    return b


@case("pickle/int_tensor")
def _(lib):
    return pickle.loads(pickle.dumps(lib.tensor([1, 2], dtype=lib.int16)))


# hash, equality with None and str, membership -------------------------------------------------

@case("hash/tensor_is_identity")
def _(lib):
    x = lib.ones(2)
    return hash(x) == id(x), hash(x) == hash(lib.ones(2))


@case("hash/in_set_and_dict")
def _(lib):
    x = lib.ones(2)
    return len({x, x, lib.ones(2)}), {x: 1}[x]


@case("hash/parameter")
def _(lib):
    p = lib.nn.Parameter(lib.ones(2))
    return hash(p) == id(p)


@case("eq/None")
def _(lib):
    return lib.ones(2) == None  # noqa: E711


@case("ne/None")
def _(lib):
    return lib.ones(2) != None  # noqa: E711


@case("eq/str")
def _(lib):
    return lib.ones(2) == "a"


@case("eq/list")
def _(lib):
    return lib.ones(2) == [1, 2]


@case("contains/number")
def _(lib):
    return 2 in lib.arange(4), 7 in lib.arange(4)


@case("contains/tensor")
def _(lib):
    return lib.tensor(2) in lib.arange(4), lib.tensor([9, 1]) in lib.arange(4)


@case("contains/str")
def _(lib):
    return "a" in lib.arange(4)


@case("contains/float_in_int")
def _(lib):
    return 2.0 in lib.arange(4), 2.5 in lib.arange(4)


# len, iter, bool ------------------------------------------------------------------------------

@case("len/0d")
def _(lib):
    return len(lib.tensor(1.0))


@case("len/2d")
def _(lib):
    return len(lib.ones(3, 2))


@case("iter/0d")
def _(lib):
    return list(iter(lib.tensor(1.0)))


@case("iter/rows_are_views")
def _(lib):
    x = lib.zeros(2, 2)
    for row in x:
        row += 1
    return x


@case("iter/1d_items")
def _(lib):
    return list(lib.arange(3))


@case("iter/requires_grad_rows")
def _(lib):
    x = lib.ones(2, 2, requires_grad=True)
    rows = list(x)
    return rows[0], rows[0].grad_fn is not None, type(rows[0].grad_fn).__name__


@case("unpack/rows")
def _(lib):
    a, b = lib.arange(4).reshape(2, 2)
    return a, b


@case("bool/empty")
def _(lib):
    return bool(lib.ones(0))


@case("bool/multi")
def _(lib):
    return bool(lib.ones(2))


@case("bool/one_element")
def _(lib):
    return bool(lib.zeros(1, 1)), bool(lib.tensor([3]))


@case("bool/nan")
def _(lib):
    return bool(lib.tensor(float("nan")))


@case("if/multi")
def _(lib):
    return 1 if lib.ones(3) else 0


@case("not/multi")
def _(lib):
    return not lib.ones(3)


# index, range, int, float, complex ------------------------------------------------------------

@case("index/int_1_element")
def _(lib):
    return operator.index(lib.tensor([3]))


@case("index/int_0d")
def _(lib):
    return operator.index(lib.tensor(3))


@case("index/float")
def _(lib):
    return operator.index(lib.tensor(3.0))


@case("index/bool")
def _(lib):
    return operator.index(lib.tensor(True))


@case("index/multi")
def _(lib):
    return operator.index(lib.tensor([1, 2]))


@case("range/int_tensor")
def _(lib):
    return list(range(lib.tensor(3)))


@case("range/float_tensor")
def _(lib):
    return list(range(lib.tensor(3.0)))


@case("list_index/int_tensor")
def _(lib):
    return [10, 20, 30][lib.tensor(1)]


@case("list_index/float_tensor")
def _(lib):
    return [10, 20, 30][lib.tensor(1.0)]


@case("list_slice/int_tensor")
def _(lib):
    return [10, 20, 30][lib.tensor(1):]


@case("hex/int_tensor")
def _(lib):
    return hex(lib.tensor(255))


@case("int/float_tensor")
def _(lib):
    return int(lib.tensor(2.7)), int(lib.tensor(-2.7))


@case("int/multi")
def _(lib):
    return int(lib.ones(2))


@case("float/int_tensor")
def _(lib):
    return float(lib.tensor([5]))


@case("complex/float_tensor")
def _(lib):
    return complex(lib.tensor(1.5))


@case("int/nan")
def _(lib):
    return int(lib.tensor(float("nan")))


# math, round, divmod, abs, neg ----------------------------------------------------------------

@case("math.floor/float")
def _(lib):
    return math.floor(lib.tensor(2.5)), math.floor(lib.tensor(-2.5))


@case("math.ceil/float")
def _(lib):
    return math.ceil(lib.tensor(2.5))


@case("math.trunc/float")
def _(lib):
    return math.trunc(lib.tensor(-2.5))


@case("math.floor/multi")
def _(lib):
    return math.floor(lib.tensor([2.5, 1.5]))


@case("math.floor/int_tensor")
def _(lib):
    return math.floor(lib.tensor(3))


@case("math.sqrt/0d")
def _(lib):
    return math.sqrt(lib.tensor(4.0))


@case("math.isclose/0d")
def _(lib):
    return math.isclose(lib.tensor(1.0), 1.0)


@case("round/0d")
def _(lib):
    return round(lib.tensor(2.5)), round(lib.tensor(3.5))


@case("round/multi")
def _(lib):
    return round(lib.tensor([0.5, 1.5, 2.4]))


@case("round/ndigits")
def _(lib):
    return round(lib.tensor([1.2345, 2.5551]), 2)


@case("round/ndigits_0d")
def _(lib):
    return round(lib.tensor(1.2345), 2)


@case("round/int_tensor")
def _(lib):
    return round(lib.tensor([1, 2]))


@case("round/requires_grad")
def _(lib):
    x = lib.tensor([1.26], requires_grad=True)
    return round(x, 1)


@case("divmod/tensor_int")
def _(lib):
    return divmod(lib.tensor([7, -7]), 3)


@case("divmod/int_tensor")
def _(lib):
    return divmod(7, lib.tensor([3, -3]))


@case("divmod/float")
def _(lib):
    return divmod(lib.tensor([7.5, -7.5]), 2.0)


@case("abs/int")
def _(lib):
    return abs(lib.tensor([-2, 3]))


@case("abs/bool")
def _(lib):
    return abs(lib.tensor([True, False]))


@case("neg/bool")
def _(lib):
    return -lib.tensor([True, False])


@case("neg/uint8")
def _(lib):
    return -lib.tensor([1, 2], dtype=lib.uint8)


@case("pos/bool")
def _(lib):
    return +lib.tensor([True, False])


@case("invert/bool")
def _(lib):
    return ~lib.tensor([True, False])


@case("invert/float")
def _(lib):
    return ~lib.tensor([1.0])


@case("pow/rpow_int")
def _(lib):
    return 2 ** lib.tensor([1, 2])


@case("rfloordiv/int")
def _(lib):
    return 7 // lib.tensor([2, 3])


@case("rmod/float")
def _(lib):
    return 7.5 % lib.tensor([2.0, -2.0])


@case("rshift/int")
def _(lib):
    return 8 >> lib.tensor([1, 2]), 1 << lib.tensor([1, 2])


@case("rand_/bool_int")
def _(lib):
    return True & lib.tensor([True, False]), 3 | lib.tensor([4, 1]), 3 ^ lib.tensor([1, 2])


# builtins over tensors ------------------------------------------------------------------------

@case("sum/list_of_tensors")
def _(lib):
    return sum([lib.ones(2), lib.arange(2.0)])


@case("sum/1d")
def _(lib):
    return sum(lib.arange(4))


@case("sum/requires_grad")
def _(lib):
    x = lib.ones(2, requires_grad=True)
    return sum([x, x])


@case("max/1d")
def _(lib):
    return max(lib.tensor([3, 1, 2]))


@case("min/1d")
def _(lib):
    return min(lib.tensor([3.0, 1.0, 2.0]))


@case("sorted/1d")
def _(lib):
    return sorted(lib.tensor([3, 1, 2]))


@case("reversed/1d")
def _(lib):
    return list(reversed(lib.tensor([3, 1, 2])))


@case("reversed/2d")
def _(lib):
    return reversed(lib.arange(4).reshape(2, 2))


@case("reversed/0d")
def _(lib):
    return reversed(lib.tensor(3))


@case("dunder_reversed/1d")
def _(lib):
    return lib.tensor([3, 1, 2]).__reversed__()


@case("any_all/1d")
def _(lib):
    return any(lib.tensor([0, 1])), all(lib.tensor([0, 1]))


@case("enumerate_zip/1d")
def _(lib):
    return list(enumerate(lib.tensor([5, 6]))), list(zip(lib.tensor([1, 2]), lib.tensor([3, 4])))


@case("list/2d")
def _(lib):
    return list(lib.arange(4).reshape(2, 2))


@case("tuple_unpack_star/1d")
def _(lib):
    first, *rest = lib.arange(3)
    return first, rest


@case("map_float/1d")
def _(lib):
    return list(map(float, lib.tensor([1, 2])))


@case("min/key")
def _(lib):
    return min([lib.tensor(3.0), lib.tensor(1.0)])


@case("max/mixed_python")
def _(lib):
    return max(lib.tensor(3.0), 2)


# matmul with lists ----------------------------------------------------------------------------

@case("matmul/tensor_at_list")
def _(lib):
    return lib.ones(2, 2) @ [1.0, 2.0]


@case("matmul/list_at_tensor")
def _(lib):
    return [1.0, 2.0] @ lib.ones(2, 2)


@case("matmul/tensor_at_int")
def _(lib):
    return lib.ones(2) @ 2


@case("matmul/inplace")
def _(lib):
    a = lib.ones(2, 2)
    a @= lib.ones(2, 2)
    return a


# augmented assignment -------------------------------------------------------------------------

@case("iadd/leaf_requires_grad")
def _(lib):
    a = lib.ones(2, requires_grad=True)
    a += 1
    return a


@case("iadd/leaf_requires_grad_no_grad")
def _(lib):
    a = lib.ones(2, requires_grad=True)
    with lib.no_grad():
        a += 1
    return a, a.is_leaf


@case("iadd/slice")
def _(lib):
    a = lib.zeros(3)
    a[0] += 1
    a[1:] *= 0
    return a


@case("iadd/slice_of_non_leaf")
def _(lib):
    x = lib.ones(3, requires_grad=True)
    y = x * 2
    y[0] += 1
    y.sum().backward()
    return y, x.grad, type(y.grad_fn).__name__


@case("iadd/same_object")
def _(lib):
    a = lib.zeros(2)
    before = id(a)
    a += 1
    return id(a) == before, a._version


@case("iadd/int_by_float")
def _(lib):
    a = lib.zeros(2, dtype=lib.int64)
    a += 1.5
    return a


@case("imul/bool")
def _(lib):
    a = lib.tensor([True, False])
    a *= lib.tensor([True, True])
    return a


@case("itruediv/int")
def _(lib):
    a = lib.tensor([4, 2])
    a /= 2
    return a


@case("ifloordiv/int")
def _(lib):
    a = lib.tensor([5, 3])
    a //= 2
    return a


@case("ipow/float")
def _(lib):
    a = lib.tensor([2.0, 3.0])
    a **= 2
    return a


@case("iadd/broadcast_to_bigger")
def _(lib):
    a = lib.zeros(2)
    a += lib.ones(3, 2)
    return a


@case("imod/int")
def _(lib):
    a = lib.tensor([5, -5])
    a %= 3
    return a


@case("iand/bool")
def _(lib):
    a = lib.tensor([True, True])
    a &= lib.tensor([True, False])
    a |= lib.tensor([False, False])
    a ^= lib.tensor([True, False])
    return a


@case("ilshift/int")
def _(lib):
    a = lib.tensor([1, 2])
    a <<= 1
    a >>= lib.tensor([0, 1])
    return a


# __setitem__ ----------------------------------------------------------------------------------

@case("setitem/tensor_value")
def _(lib):
    a = lib.zeros(2, 3)
    a[0] = lib.arange(3.0)
    return a


@case("setitem/list_value")
def _(lib):
    a = lib.zeros(2, 3)
    a[1] = [1, 2, 3]
    return a


@case("setitem/bool_mask_scalar")
def _(lib):
    a = lib.arange(4.0)
    a[a > 1] = 0
    return a


@case("setitem/bool_mask_tensor")
def _(lib):
    a = lib.arange(4.0)
    a[a > 1] = lib.tensor([9.0, 8.0])
    return a


@case("setitem/bool_list_mask")
def _(lib):
    a = lib.arange(3.0)
    a[[True, False, True]] = 5
    return a


@case("setitem/ellipsis")
def _(lib):
    a = lib.zeros(2, 2)
    a[...] = 3
    return a


@case("setitem/none")
def _(lib):
    a = lib.zeros(2, 2)
    a[None] = 1
    return a


@case("setitem/none_and_index")
def _(lib):
    a = lib.zeros(2, 2)
    a[None, 0] = lib.tensor([1.0, 2.0])
    return a


@case("setitem/index_tensor")
def _(lib):
    a = lib.zeros(4)
    a[lib.tensor([0, 2])] = lib.tensor([1.0, 2.0])
    return a


@case("setitem/list_index")
def _(lib):
    a = lib.zeros(4)
    a[[1, 3]] = 7
    return a


@case("setitem/0d_index_tensor")
def _(lib):
    a = lib.zeros(3)
    a[lib.tensor(1)] = 4
    return a


@case("setitem/wrong_shape")
def _(lib):
    a = lib.zeros(2, 3)
    a[0] = lib.ones(2)
    return a


@case("setitem/float_index")
def _(lib):
    a = lib.zeros(3)
    a[1.0] = 1
    return a


@case("setitem/float_tensor_index")
def _(lib):
    a = lib.zeros(3)
    a[lib.tensor([1.0])] = 1
    return a


@case("setitem/leaf_requires_grad")
def _(lib):
    a = lib.zeros(3, requires_grad=True)
    a[0] = 1
    return a


@case("setitem/value_requires_grad")
def _(lib):
    a = lib.zeros(3)
    v = lib.tensor(2.0, requires_grad=True)
    a[0] = v
    a.sum().backward()
    return a, v.grad, type(a.grad_fn).__name__


@case("setitem/double_value_into_float")
def _(lib):
    a = lib.zeros(2)
    a[:] = lib.tensor([1.5, 2.5], dtype=lib.float64)
    return a


@case("setitem/none_value")
def _(lib):
    a = lib.zeros(2)
    a[0] = None
    return a


@case("setitem/out_of_range")
def _(lib):
    a = lib.zeros(2)
    a[5] = 1
    return a


@case("setitem/0d")
def _(lib):
    a = lib.tensor(1.0)
    a[()] = 5
    return a


@case("getitem/out_of_range")
def _(lib):
    return lib.zeros(2)[5]


@case("getitem/str")
def _(lib):
    return lib.zeros(2)["a"]


# __format__ -----------------------------------------------------------------------------------

@case("format/multi_empty_spec")
def _(lib):
    return format(lib.tensor([1.0, 2.0]), "") == str(lib.tensor([1.0, 2.0]))


@case("format/multi_spec")
def _(lib):
    return format(lib.tensor([1.0, 2.0]), ".2f")


@case("format/fstring_1_element")
def _(lib):
    return f"{lib.tensor([1.5]):.2f}"


# dir, isinstance, type ------------------------------------------------------------------------

_DIR_NAMES = ("T", "H", "mT", "mH", "grad", "grad_fn", "requires_grad", "is_leaf", "data", "shape", "dtype",
              "device", "ndim", "names", "layout", "is_cuda", "backward", "register_hook", "retain_grad",
              "numpy", "tolist", "item", "size", "stride", "storage_offset", "untyped_storage", "view",
              "reshape", "add_", "__torch_function__", "__array__", "__dlpack__", "__deepcopy__",
              "__reduce_ex__", "__setstate__", "__contains__", "__reversed__", "__format__", "__index__",
              "__len__", "__iter__", "__hash__", "__array_priority__", "__matmul__", "__rmatmul__",
              "__floordiv__", "__rfloordiv__", "__rpow__", "__ipow__", "__abs__", "__neg__", "__invert__",
              "__and__", "__rlshift__", "__rrshift__", "__array_wrap__", "__cuda_array_interface__",
              "output_nr", "_version", "_base", "is_sparse", "is_quantized", "is_meta", "itemsize", "nbytes")


@case("dir/tensor_names")
def _(lib):
    names = set(dir(lib.ones(2)))
    return [name for name in _DIR_NAMES if name not in names]


@case("dir/parameter_names")
def _(lib):
    names = set(dir(lib.nn.Parameter(lib.ones(2))))
    return [name for name in _DIR_NAMES if name not in names]


@case("isinstance/parameter")
def _(lib):
    p = lib.nn.Parameter(lib.ones(2))
    return isinstance(p, lib.Tensor), isinstance(p, lib.nn.Parameter), issubclass(lib.nn.Parameter, lib.Tensor)


@case("isinstance/subclass")
def _(lib):
    class Mine(lib.Tensor):
        pass

    m = lib.ones(2).as_subclass(Mine)
    return isinstance(m, lib.Tensor), type(m).__name__, type(m + 1).__name__, type(m[0]).__name__


@case("type/op_on_parameter")
def _(lib):
    p = lib.nn.Parameter(lib.ones(2))
    return [type(v).__name__ for v in (p * 2, p[0], p.detach(), p.data, p.view(2), p.clone(), p.t() if p.dim() < 2
                                       else p, -p, p + p, p.sum(), lib.add(p, 1), p.to(lib.float64),
                                       p.float(), p.cpu())]


@case("type/parameter_repr_head")
def _(lib):
    return repr(lib.nn.Parameter(lib.ones(1))).split("(")[0]


@case("type/tensor_class_name")
def _(lib):
    return type(lib.ones(1)).__name__, lib.Tensor.__name__, lib.nn.Parameter.__name__


@case("isinstance/int_float_number")
def _(lib):
    import numbers
    return isinstance(lib.tensor(1), numbers.Number), isinstance(lib.tensor(1), int)


@case("type/size_is_tuple")
def _(lib):
    s = lib.ones(2, 3).shape
    return isinstance(s, tuple), type(s + (4,)).__name__, type(s[0:1]).__name__, s == (2, 3), type(s[0]).__name__


@case("type/size_hash")
def _(lib):
    return hash(lib.Size([2, 3])) == hash((2, 3))


@case("type/dtype_hash_eq")
def _(lib):
    return {lib.float32: 1}[lib.float], lib.float32 == "float32"


@case("type/device_eq_str")
def _(lib):
    return lib.device("cpu") == "cpu", lib.ones(1).device == lib.device("cpu")


# comparison protocols -------------------------------------------------------------------------

@case("lt/None")
def _(lib):
    return lib.ones(2) < None


@case("lt/str")
def _(lib):
    return lib.ones(2) < "a"


@case("eq/tuple")
def _(lib):
    return lib.ones(2) == (1, 1)


@case("eq/python_number_reflected")
def _(lib):
    return 1 == lib.ones(2), 1.0 < lib.ones(2)


@case("list_remove/tensor")
def _(lib):
    a, b = lib.ones(2), lib.zeros(2)
    items = [a, b]
    items.remove(b)
    return len(items)


@case("list_index/tensor_in_list")
def _(lib):
    a, b = lib.ones(2), lib.zeros(2)
    return [a, b].index(b)


@case("in_list/tensor_in_list")
def _(lib):
    a, b = lib.ones(2), lib.zeros(2)
    return b in [a, b]


# ----------------------------------------------------------------------------------------------


def _outcome(function, lib, seed=0):
    try:
        lib.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with time_limit(SECONDS_PER_CASE, CaseTimeout):
                value = function(lib)
            return None, reduced(value, lib)
    except CaseTimeout as exc:
        return exc, None
    except Exception as exc:
        return exc, None


def builtin_class(exc) -> type:
    for klass in type(exc).__mro__:
        if klass.__module__ == "builtins":
            return klass
    return Exception


def _describe(exc) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def classify(name):
    import torch

    import chainrule

    function = CASES[name]
    torch_error, torch_value = _outcome(function, torch)
    chainrule_error, chainrule_value = _outcome(function, chainrule)
    record = {"case": name}
    if torch_error is not None:
        record["torch"] = _describe(torch_error)
    else:
        record["torch_value"] = torch_value
    if chainrule_error is not None:
        record["chainrule"] = _describe(chainrule_error)
    else:
        record["chainrule_value"] = chainrule_value
    if torch_error is not None and chainrule_error is not None:
        same = isinstance(chainrule_error, builtin_class(torch_error))
        record["kind"] = "same" if same else "error_class_differs"
    elif torch_error is not None:
        record["kind"] = "torch_only_raised"
    elif chainrule_error is not None:
        record["kind"] = "chainrule_only_raised"
    elif torch_value == chainrule_value:
        record["kind"] = "same"
    elif _types(torch_value) != _types(chainrule_value):
        record["kind"] = "type_differs"
    else:
        record["kind"] = "values_differ"
    return record


def run(out, pattern=None):
    os.makedirs(out, exist_ok=True)
    records = [classify(name) for name in CASES if not pattern or re.search(pattern, name)]
    with open(os.path.join(out, "cases.json"), "w") as handle:
        json.dump(records, handle, indent=1)
    print(count_table(records))
    print()
    print(groups_table(records))


def count_table(records) -> str:
    by_group = collections.defaultdict(collections.Counter)
    for record in records:
        by_group[record["case"].split("/")[0]][record["kind"]] += 1
    totals = collections.Counter(record["kind"] for record in records)
    lines = ["| group | " + " | ".join(KINDS) + " | all |", "|---" * (len(KINDS) + 2) + "|"]
    for group, counts in sorted(by_group.items()) + [("**all**", totals)]:
        lines.append(f"| {group} | " + " | ".join(str(counts[kind]) for kind in KINDS)
                     + f" | {sum(counts.values())} |")
    return "\n".join(lines)


def groups_table(records) -> str:
    return "\n".join(f"{record['kind']:22s} {record['case']}" for record in records if record["kind"] != "same")


def show(out, kind, pattern=None):
    with open(os.path.join(out, "cases.json")) as handle:
        records = json.load(handle)
    for record in records:
        if record["kind"] == kind and (not pattern or re.search(pattern, json.dumps(record))):
            print(json.dumps(record))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--filter", help="regular expression searched in the case name")
    show_parser = commands.add_parser("show")
    show_parser.add_argument("--out", required=True)
    show_parser.add_argument("--kind", required=True, choices=KINDS)
    show_parser.add_argument("--filter", help="regular expression searched in the record")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.filter)
    else:
        show(args.out, args.kind, args.filter)


if __name__ == "__main__":
    main()
