"""Compare torch and chainrule on what users do between NumPy and tensors.

Each case is a small function of the library module (``torch`` or ``chainrule``) run on both, seeded
alike, under a time limit, with warnings recorded. What it returns is described library-neutrally
(a tensor: its dtype, shape and values; a NumPy array: its dtype, shape and values; a scalar: its
Python or NumPy type and value; lists and tuples element by element) and the descriptions compared.

Families of cases:

* ``from_numpy`` / ``as_tensor`` / ``tensor`` of arrays of every NumPy dtype; memory sharing (a write
  through the array read through the tensor, and back); non-writeable arrays (torch's UserWarning),
  negative strides (ValueError), byte-swapped, object, string, datetime and longdouble arrays;
* ``Tensor.numpy()`` (shared memory, ``force=True``, the requires_grad refusal), ``np.asarray``,
  ``np.array``, ``__array__(dtype)``;
* NumPy scalars on either side of Python operators with tensors (result type and dtype);
* NumPy ufuncs and functions applied to tensors (what type comes back);
* lists mixing NumPy scalars, 0-d arrays and tensors given to ``tensor`` (dtype inference), and
  ``np.array`` of lists of tensors;
* indexing and index assignment with NumPy ints, bools, arrays and lists of NumPy ints;
* sizes, dims and counts given as NumPy ints;
* ``tolist`` / ``item`` element types, ``int()`` / ``float()`` / ``bool()`` / ``complex()`` of tensors.

Kinds per case:

    same                    both returned the same description (and the same warning classes)
    values_differ           same types and dtypes, other values or shapes
    type_differs            what came back is another type (a tensor against an ndarray, float against
                            np.float64, ...)
    dtype_differs           both tensors (or arrays), other dtypes
    warning_differs         same results, but one library warned and the other not
    error_class_differs     both raised, chainrule's exception is not an instance of torch's class
    torch_only_raised
    chainrule_only_raised

    python tools/torch_numpy_interop_trial.py run --out /tmp/npi
    python tools/torch_numpy_interop_trial.py show --out /tmp/npi --kind dtype_differs
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from torch_oracle import time_limit  # noqa: E402

SECONDS_PER_CASE = 5
KINDS = ("same", "values_differ", "type_differs", "dtype_differs", "warning_differs", "error_class_differs",
         "torch_only_raised", "chainrule_only_raised")

NUMPY_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                "uint64", "bool", "complex64", "complex128")
TENSOR_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
                 "complex64", "complex128")
NUMPY_SCALARS = {"np.float64(2)": lambda: np.float64(2), "np.float32(2)": lambda: np.float32(2),
                 "np.float16(2)": lambda: np.float16(2), "np.int64(3)": lambda: np.int64(3),
                 "np.int32(3)": lambda: np.int32(3), "np.int8(3)": lambda: np.int8(3),
                 "np.uint8(3)": lambda: np.uint8(3), "np.bool_(True)": lambda: np.bool_(True),
                 "np.complex128(1j)": lambda: np.complex128(1j), "np.array(2.0)": lambda: np.array(2.0)}
OPERATORS = {"s*t": lambda s, t: s * t, "t*s": lambda s, t: t * s, "s+t": lambda s, t: s + t,
             "t+s": lambda s, t: t + s, "s-t": lambda s, t: s - t, "t/s": lambda s, t: t / s,
             "s/t": lambda s, t: s / t, "t**s": lambda s, t: t ** s, "t<s": lambda s, t: t < s,
             "s==t": lambda s, t: s == t, "t//s": lambda s, t: t // s}


class CaseTimeout(Exception):
    pass


def _array(dtype, shape=(2, 3)):
    values = np.arange(int(np.prod(shape))).reshape(shape) % 3
    return values.astype(dtype)


def _write_through_array(make):
    """The tensor after writing into the array it was made from: shared memory shows the write."""
    def case(lib):
        array = _array("float32")
        tensor = make(lib, array)
        array[0, 0] = 9
        return tensor
    return case


def _write_through_tensor(make):
    def case(lib):
        array = _array("float32")
        tensor = make(lib, array)
        tensor[0, 0] = 9
        return array
    return case


def _tensor(lib, dtype_name, values=((1.5, -2.0), (0.0, 3.0))):
    return lib.tensor(values).to(getattr(lib, dtype_name))


def conversion_cases():
    cases = {}
    for name in NUMPY_DTYPES:
        cases[f"from_numpy[{name}]"] = lambda lib, n=name: lib.from_numpy(_array(n))
        cases[f"as_tensor[{name}]"] = lambda lib, n=name: lib.as_tensor(_array(n))
        cases[f"tensor[{name}]"] = lambda lib, n=name: lib.tensor(_array(n))
        cases[f"from_numpy[{name}, 0-d]"] = lambda lib, n=name: lib.from_numpy(np.array(1, dtype=n))
        cases[f"tensor[np scalar {name}]"] = lambda lib, n=name: lib.tensor(np.dtype(n).type(1))
        cases[f"as_tensor[np scalar {name}]"] = lambda lib, n=name: lib.as_tensor(np.dtype(n).type(1))
        cases[f"Tensor[{name}]"] = lambda lib, n=name: lib.Tensor(_array(n))
    makers = {"from_numpy": lambda lib, a: lib.from_numpy(a), "as_tensor": lambda lib, a: lib.as_tensor(a),
              "tensor": lambda lib, a: lib.tensor(a),
              "as_tensor(dtype=float64)": lambda lib, a: lib.as_tensor(a, dtype=lib.float64),
              "as_tensor(dtype=float32)": lambda lib, a: lib.as_tensor(a, dtype=lib.float32)}
    for label, make in makers.items():
        cases[f"shares: array write -> {label}"] = _write_through_array(make)
        cases[f"shares: {label} write -> array"] = _write_through_tensor(make)
        cases[f"non-writeable -> {label}"] = lambda lib, m=make: m(lib, _read_only(_array("float32")))
        cases[f"negative strides -> {label}"] = lambda lib, m=make: m(lib, _array("float32")[::-1])
        cases[f"big-endian -> {label}"] = lambda lib, m=make: m(lib, _array(">f4"))
        cases[f"object array -> {label}"] = lambda lib, m=make: m(lib, np.array([1, "a"], dtype=object))
        cases[f"object array of floats -> {label}"] = lambda lib, m=make: m(lib, np.array([1.0, 2.0], dtype=object))
        cases[f"string array -> {label}"] = lambda lib, m=make: m(lib, np.array(["a", "b"]))
        cases[f"datetime64 -> {label}"] = lambda lib, m=make: m(lib, np.array(["2020-01-01"], dtype="datetime64[D]"))
        cases[f"longdouble -> {label}"] = lambda lib, m=make: m(lib, np.ones(2, dtype=np.longdouble))
        cases[f"fortran order -> {label} strides"] = lambda lib, m=make: m(lib, np.asfortranarray(
            _array("float32"))).stride()
        cases[f"column slice -> {label} strides"] = lambda lib, m=make: m(lib, _array("float32", (3, 4))[:, ::2]).stride()
        cases[f"zero-size -> {label}"] = lambda lib, m=make: m(lib, np.zeros((0, 3), np.float32))
    cases["from_numpy(list)"] = lambda lib: lib.from_numpy([1.0, 2.0])
    cases["from_numpy(np.float32 scalar)"] = lambda lib: lib.from_numpy(np.float32(1))
    cases["tensor(array, requires_grad)"] = lambda lib: lib.tensor(_array("float32"), requires_grad=True).requires_grad
    cases["tensor(int array, requires_grad)"] = lambda lib: lib.tensor(_array("int64"), requires_grad=True)
    cases["new_tensor(array)"] = lambda lib: lib.zeros(2, dtype=lib.float64).new_tensor(_array("float32"))
    cases["tensor(array, dtype=float16)"] = lambda lib: lib.tensor(_array("float64"), dtype=lib.float16)
    cases["FloatTensor(array)"] = lambda lib: lib.FloatTensor(_array("float64"))
    cases["LongTensor(array)"] = lambda lib: lib.LongTensor(_array("int32"))
    return cases


def _read_only(array):
    array.setflags(write=False)
    return array


def to_numpy_cases():
    cases = {}
    for name in TENSOR_DTYPES:
        cases[f"numpy()[{name}]"] = lambda lib, n=name: _tensor(lib, n).numpy()
        cases[f"np.asarray[{name}]"] = lambda lib, n=name: np.asarray(_tensor(lib, n))
        cases[f"np.array[{name}]"] = lambda lib, n=name: np.array(_tensor(lib, n))
        cases[f"__array__(float64)[{name}]"] = lambda lib, n=name: _tensor(lib, n).__array__(np.float64)
        cases[f"np.asarray(dtype=int32)[{name}]"] = lambda lib, n=name: np.asarray(_tensor(lib, n), dtype=np.int32)
        cases[f"tolist[{name}]"] = lambda lib, n=name: _tensor(lib, n).tolist()
        cases[f"item[{name}]"] = lambda lib, n=name: _tensor(lib, n)[0, 0].item()
        cases[f"int()[{name}]"] = lambda lib, n=name: int(_tensor(lib, n)[0, 0])
        cases[f"float()[{name}]"] = lambda lib, n=name: float(_tensor(lib, n)[0, 0])
        cases[f"bool()[{name}]"] = lambda lib, n=name: bool(_tensor(lib, n)[0, 0])
        cases[f"complex()[{name}]"] = lambda lib, n=name: complex(_tensor(lib, n)[0, 0])
        cases[f"float() of [1]-tensor[{name}]"] = lambda lib, n=name: float(_tensor(lib, n)[0, :1])
        cases[f"0-d tolist[{name}]"] = lambda lib, n=name: _tensor(lib, n)[0, 0].tolist()
    cases["float() of 2 elements"] = lambda lib: float(lib.ones(2))
    cases["bool() of 2 elements"] = lambda lib: bool(lib.ones(2))
    cases["int() of empty"] = lambda lib: int(lib.ones(0))
    cases["numpy() shares: tensor write"] = lambda lib: _numpy_then_write(lib)
    cases["numpy() shares: array write"] = lambda lib: _numpy_array_write(lib)
    cases["numpy() of requires_grad"] = lambda lib: lib.ones(2, requires_grad=True).numpy()
    cases["numpy(force=True) of requires_grad"] = lambda lib: lib.ones(2, requires_grad=True).numpy(force=True)
    cases["np.asarray of requires_grad"] = lambda lib: np.asarray(lib.ones(2, requires_grad=True))
    cases["np.array of requires_grad"] = lambda lib: np.array(lib.ones(2, requires_grad=True))
    cases["numpy() of non-contiguous strides"] = lambda lib: lib.ones(3, 4).t().numpy().strides
    cases["numpy() of expanded strides"] = lambda lib: lib.ones(3, 1).expand(3, 4).numpy().strides
    cases["numpy() of a view writes back"] = lambda lib: _numpy_view_write(lib)
    cases["np.asarray shares"] = lambda lib: _asarray_shares(lib)
    cases["np.array copies"] = lambda lib: _array_copies(lib)
    cases["numpy() of a non-leaf"] = lambda lib: (lib.ones(2, requires_grad=True) * 2).numpy()
    cases["numpy() under no_grad"] = lambda lib: _numpy_under_no_grad(lib)
    cases["detach().numpy()"] = lambda lib: (lib.ones(2, requires_grad=True) * 2).detach().numpy()
    cases["np.array([t1, t2])"] = lambda lib: np.array([lib.ones(2), lib.zeros(2)])
    cases["np.array([0-d, 0-d])"] = lambda lib: np.array([lib.tensor(1.5), lib.tensor(2.5)])
    cases["np.array([t, t]) requires_grad"] = lambda lib: np.array([lib.ones(2, requires_grad=True)])
    cases["np.stack([t1, t2])"] = lambda lib: np.stack([lib.ones(2), lib.zeros(2)])
    cases["np.concatenate([t1, t2])"] = lambda lib: np.concatenate([lib.ones(2), lib.zeros(2)])
    cases["np.float32(0-d tensor)"] = lambda lib: np.float32(lib.tensor(1.5))
    cases["np.float64(0-d tensor)"] = lambda lib: np.float64(lib.tensor(1.5))
    cases["np.int64(0-d tensor)"] = lambda lib: np.int64(lib.tensor(3))
    cases["array.__setitem__(tensor)"] = lambda lib: _array_setitem(lib)
    cases["np.asarray(Size)"] = lambda lib: np.asarray(lib.ones(2, 3).shape)
    cases["np.zeros(Size)"] = lambda lib: np.zeros(lib.ones(2, 3).shape).shape
    return cases


def _numpy_then_write(lib):
    tensor = lib.zeros(3)
    array = tensor.numpy()
    tensor[0] = 5
    return array


def _numpy_array_write(lib):
    tensor = lib.zeros(3)
    tensor.numpy()[1] = 7
    return tensor


def _numpy_view_write(lib):
    tensor = lib.zeros(3, 4)
    tensor.t().numpy()[0, 1] = 4
    return tensor


def _asarray_shares(lib):
    tensor = lib.zeros(3)
    np.asarray(tensor)[2] = 1
    return tensor


def _array_copies(lib):
    tensor = lib.zeros(3)
    np.array(tensor)[2] = 1
    return tensor


def _numpy_under_no_grad(lib):
    with lib.no_grad():
        return lib.ones(2, requires_grad=True).numpy()


def _array_setitem(lib):
    array = np.zeros(3, dtype=np.float32)
    array[1] = lib.tensor(2.5)
    array[:2] = lib.tensor([1.0, 2.0])
    return array


def scalar_cases():
    cases = {}
    for scalar_name, scalar in NUMPY_SCALARS.items():
        for tensor_dtype in ("float32", "int64", "float16", "bool"):
            for op_name, op in OPERATORS.items():
                cases[f"{op_name} s={scalar_name} t={tensor_dtype}"] = (
                    lambda lib, s=scalar, td=tensor_dtype, o=op: o(s(), _tensor(lib, td, ((1, 2), (3, 4)))))
        cases[f"requires_grad {scalar_name}*t"] = lambda lib, s=scalar: _scalar_grad(lib, s())
        cases[f"t.add({scalar_name})"] = lambda lib, s=scalar: lib.ones(2).add(s())
        cases[f"torch.mul(t, {scalar_name})"] = lambda lib, s=scalar: lib.mul(lib.ones(2, dtype=lib.int32), s())
        cases[f"t.pow({scalar_name})"] = lambda lib, s=scalar: lib.ones(2).pow(s())
        cases[f"full(2, {scalar_name})"] = lambda lib, s=scalar: lib.full((2,), s())
        cases[f"clamp(t, max={scalar_name})"] = lambda lib, s=scalar: lib.arange(4).clamp(max=s())
        cases[f"t += {scalar_name}"] = lambda lib, s=scalar: _iadd(lib, s())
        cases[f"masked_fill(t, {scalar_name})"] = lambda lib, s=scalar: lib.zeros(2).masked_fill(
            lib.tensor([True, False]), s())
        cases[f"where(c, t, {scalar_name})"] = lambda lib, s=scalar: lib.where(
            lib.tensor([True, False]), lib.zeros(2), s())
    return cases


def _scalar_grad(lib, scalar):
    tensor = lib.ones(2, requires_grad=True)
    out = scalar * tensor
    out.sum().backward() if out.dtype.is_floating_point else None
    return out, tensor.grad


def _iadd(lib, scalar):
    tensor = lib.ones(2)
    tensor += scalar
    return tensor


def ufunc_cases():
    def x(lib):
        return lib.tensor([[0.5, -1.0], [2.0, 3.0]])

    functions = {
        "np.exp(t)": lambda t: np.exp(t), "np.add(t, 1)": lambda t: np.add(t, 1),
        "np.add(t, t)": lambda t: np.add(t, t), "np.sqrt(abs t)": lambda t: np.sqrt(abs(t)),
        "np.sum(t)": lambda t: np.sum(t), "np.mean(t)": lambda t: np.mean(t),
        "np.max(t)": lambda t: np.max(t), "np.maximum(t, 0)": lambda t: np.maximum(t, 0),
        "np.matmul(t, t)": lambda t: np.matmul(t, t), "np.dot(t, t)": lambda t: np.dot(t, t),
        "np.where(t > 0, t, 0)": lambda t: np.where(t > 0, t, 0), "np.isnan(t)": lambda t: np.isnan(t),
        "np.clip(t, 0, 1)": lambda t: np.clip(t, 0, 1), "np.argmax(t)": lambda t: np.argmax(t),
        "np.linalg.norm(t)": lambda t: np.linalg.norm(t), "np.allclose(t, t)": lambda t: np.allclose(t, t),
        "np.testing.assert_allclose": lambda t: np.testing.assert_allclose(t, t),
        "np.round(t)": lambda t: np.round(t), "np.abs(t)": lambda t: np.abs(t),
        "np.transpose(t)": lambda t: np.transpose(t), "np.reshape(t, -1)": lambda t: np.reshape(t, -1),
        "np.shape(t)": lambda t: np.shape(t), "np.ndim(t)": lambda t: np.ndim(t), "np.size(t)": lambda t: np.size(t),
        "np.sort(t)": lambda t: np.sort(t), "np.unique(t)": lambda t: np.unique(t),
        "np.float32 array + t": lambda t: np.ones(2, np.float32) + t[0],
        "t + np.float32 array": lambda t: t[0] + np.ones(2, np.float32),
        "t * np.float64 array": lambda t: t[0] * np.ones(2),
        "np.int64 array * t": lambda t: np.ones(2, np.int64) * t[0],
        "t == np array": lambda t: t[0] == np.ones(2, np.float32),
        "np.exp(requires_grad t)": lambda t: np.exp(t.requires_grad_()),
        "np.isclose(t, t)": lambda t: np.isclose(t, t), "np.cumsum(t)": lambda t: np.cumsum(t),
        "np.mean(t, axis=0)": lambda t: np.mean(t, axis=0), "np.sum(t, axis=1)": lambda t: np.sum(t, axis=1),
        "np.prod(t)": lambda t: np.prod(t), "np.std(t)": lambda t: np.std(t),
        "np.histogram(t)": lambda t: np.histogram(t, bins=2)[0], "np.nonzero(t)": lambda t: np.nonzero(t),
        "np.float32(t[0, 0])": lambda t: np.float32(t[0, 0]),
        "np.square(t)": lambda t: np.square(t), "np.negative(t)": lambda t: np.negative(t),
        "np.equal(t, t)": lambda t: np.equal(t, t), "np.sign(t)": lambda t: np.sign(t),
    }
    return {name: (lambda lib, f=function: f(x(lib))) for name, function in functions.items()}


def list_cases():
    items = {
        "[np.float32(1), 2]": lambda lib: [np.float32(1), 2],
        "[np.float64(1), 2]": lambda lib: [np.float64(1), 2],
        "[np.float16(1), np.float16(2)]": lambda lib: [np.float16(1), np.float16(2)],
        "[np.int32(1), 2]": lambda lib: [np.int32(1), 2],
        "[np.int8(1), np.int8(2)]": lambda lib: [np.int8(1), np.int8(2)],
        "[np.uint8(1), 2]": lambda lib: [np.uint8(1), 2],
        "[np.bool_(True), False]": lambda lib: [np.bool_(True), False],
        "[1, np.float32(2.5)]": lambda lib: [1, np.float32(2.5)],
        "[np.int64(1), 2.5]": lambda lib: [np.int64(1), 2.5],
        "[np.complex64(1j), 2]": lambda lib: [np.complex64(1j), 2],
        "[np.array(1.0), 2]": lambda lib: [np.array(1.0), 2],
        "[np.array(1, int32), np.array(2, int32)]": lambda lib: [np.array(1, np.int32), np.array(2, np.int32)],
        "[np.array([1, 2]), np.array([3, 4])]": lambda lib: [np.array([1, 2]), np.array([3, 4])],
        "[np.array([1., 2.], f4), [3, 4]]": lambda lib: [np.array([1.0, 2.0], np.float32), [3, 4]],
        "[tensor(1.), 2]": lambda lib: [lib.tensor(1.0), 2],
        "[tensor(1, int32), tensor(2, int32)]": lambda lib: [lib.tensor(1, dtype=lib.int32), lib.tensor(2, dtype=lib.int32)],
        "[tensor(1.5, f64), 2]": lambda lib: [lib.tensor(1.5, dtype=lib.float64), 2],
        "[tensor([1., 2.]), tensor([3., 4.])]": lambda lib: [lib.ones(2), lib.zeros(2)],
        "[[np.float32(1)], [2.0]]": lambda lib: [[np.float32(1)], [2.0]],
        "[np.float32(1), tensor(2.)]": lambda lib: [np.float32(1), lib.tensor(2.0)],
        "(np.int64(1), np.int64(2))": lambda lib: (np.int64(1), np.int64(2)),
        "[np.float64(nan)]": lambda lib: [np.float64("nan")],
        "[np.int64(2**40)]": lambda lib: [np.int64(2 ** 40)],
        "[np.uint64(2**63)]": lambda lib: [np.uint64(2 ** 63)],
    }
    cases = {}
    for label, build in items.items():
        cases[f"tensor({label})"] = lambda lib, b=build: lib.tensor(b(lib))
        cases[f"as_tensor({label})"] = lambda lib, b=build: lib.as_tensor(b(lib))
        cases[f"tensor({label}, dtype=float64)"] = lambda lib, b=build: lib.tensor(b(lib), dtype=lib.float64)
    return cases


def index_cases():
    def x(lib):
        return lib.arange(12.0).reshape(3, 4)

    reads = {
        "t[np.int64(1)]": lambda t: t[np.int64(1)], "t[np.int32(1)]": lambda t: t[np.int32(1)],
        "t[np.uint8(1)]": lambda t: t[np.uint8(1)], "t[np.int64(-1)]": lambda t: t[np.int64(-1)],
        "t[np.array([0, 2])]": lambda t: t[np.array([0, 2])],
        "t[np.array([0, 2], int32)]": lambda t: t[np.array([0, 2], np.int32)],
        "t[np.array([True, False, True])]": lambda t: t[np.array([True, False, True])],
        "t[np.array([1, 0, 1], uint8)]": lambda t: t[np.array([1, 0, 1], np.uint8)],
        "t[np.bool_(True)]": lambda t: t[np.bool_(True)], "t[np.bool_(False)]": lambda t: t[np.bool_(False)],
        "t[[np.int64(0), np.int64(2)]]": lambda t: t[[np.int64(0), np.int64(2)]],
        "t[np.array(1)]": lambda t: t[np.array(1)],
        "t[np.int64(1), np.int64(0)]": lambda t: t[np.int64(1), np.int64(0)],
        "t[np.int64(0):np.int64(2)]": lambda t: t[np.int64(0):np.int64(2)],
        "t[::np.int64(2)]": lambda t: t[::np.int64(2)],
        "t[:, np.array([1, 3])]": lambda t: t[:, np.array([1, 3])],
        "t[np.array([[0], [1]]), np.array([0, 1])]": lambda t: t[np.array([[0], [1]]), np.array([0, 1])],
        "t[np.array([5])]": lambda t: t[np.array([5])],
        "t[np.array([0.0])]": lambda t: t[np.array([0.0])],
        "t[np.float64(1)]": lambda t: t[np.float64(1)],
        "t[np.array([], int64)]": lambda t: t[np.array([], np.int64)],
        "t[np.array(t > 5)]": lambda t: t[np.array(t > 5)],
        "t[(np.int64(1),)]": lambda t: t[(np.int64(1),)],
        "t[np.int64(1)][np.int64(2)]": lambda t: t[np.int64(1)][np.int64(2)],
        "t[..., np.int64(1)]": lambda t: t[..., np.int64(1)],
        "t[None, np.int64(1)]": lambda t: t[None, np.int64(1)],
        "index_select(0, np array)": lambda t: t.index_select(0, np.array([0, 1])),
        "gather(np array)": lambda t: t.gather(1, np.array([[0], [1], [2]])),
    }
    writes = {
        "t[np.int64(1)] = 5": lambda t: t.__setitem__(np.int64(1), 5),
        "t[np.int32(1), np.int64(2)] = 5": lambda t: t.__setitem__((np.int32(1), np.int64(2)), 5),
        "t[np.array([0, 1])] = 5": lambda t: t.__setitem__(np.array([0, 1]), 5),
        "t[np.array([True, False, True])] = 0": lambda t: t.__setitem__(np.array([True, False, True]), 0),
        "t[np.int64(1)] = np.float64(2.5)": lambda t: t.__setitem__(np.int64(1), np.float64(2.5)),
        "t[0] = np.array([1, 2, 3, 4])": lambda t: t.__setitem__(0, np.array([1, 2, 3, 4])),
        "t[0] = np.ones(4, float64)": lambda t: t.__setitem__(0, np.ones(4)),
        "t[0, 0] = np.array(7)": lambda t: t.__setitem__((0, 0), np.array(7)),
        "t[[np.int64(0), np.int64(2)]] = 1": lambda t: t.__setitem__([np.int64(0), np.int64(2)], 1),
        "t[np.array(t > 5)] = -1": lambda t: t.__setitem__(np.array(t > 5), -1),
        "t[0] = np.ones(3) (wrong shape)": lambda t: t.__setitem__(0, np.ones(3)),
    }
    cases = {name: (lambda lib, f=read: f(x(lib))) for name, read in reads.items()}
    for name, write in writes.items():
        cases[name] = lambda lib, w=write: _written(x(lib), w)
    return cases


def _written(tensor, write):
    write(tensor)
    return tensor


def size_cases():
    def x(lib):
        return lib.arange(6.0).reshape(2, 3)

    i2, i3 = np.int64(2), np.int32(3)
    calls = {
        "zeros(np.int64(3))": lambda lib: lib.zeros(np.int64(3)),
        "zeros((np.int64(2), np.int32(3)))": lambda lib: lib.zeros((i2, i3)),
        "ones(np.int32(2), np.int64(2))": lambda lib: lib.ones(np.int32(2), np.int64(2)),
        "zeros(np.array([2, 3]))": lambda lib: lib.zeros(np.array([2, 3])),
        "zeros(np.array(3))": lambda lib: lib.zeros(np.array(3)),
        "zeros(np.float64(3))": lambda lib: lib.zeros(np.float64(3)),
        "zeros(np.uint8(3))": lambda lib: lib.zeros(np.uint8(3)),
        "empty(np.int64(2)).shape": lambda lib: lib.empty(np.int64(2)).shape,
        "randn(np.int64(2)).shape": lambda lib: lib.randn(np.int64(2)).shape,
        "rand((np.int64(2),)).shape": lambda lib: lib.rand((i2,)).shape,
        "randint(0, np.int64(5), (np.int64(3),))": lambda lib: lib.randint(0, np.int64(5), (np.int64(3),)),
        "randperm(np.int64(4))": lambda lib: lib.randperm(np.int64(4)),
        "arange(np.int64(5))": lambda lib: lib.arange(np.int64(5)),
        "arange(np.float32(1.5))": lambda lib: lib.arange(np.float32(1.5)),
        "arange(np.int32(1), np.int64(5), np.int8(2))": lambda lib: lib.arange(np.int32(1), np.int64(5), np.int8(2)),
        "linspace(0, 1, np.int64(5))": lambda lib: lib.linspace(0, 1, np.int64(5)),
        "linspace(np.float64(0), np.float64(1), 3)": lambda lib: lib.linspace(np.float64(0), np.float64(1), 3),
        "eye(np.int64(2))": lambda lib: lib.eye(np.int64(2)),
        "full((np.int64(2),), 1.5)": lambda lib: lib.full((i2,), 1.5),
        "view(np.int32(2), -1)": lambda lib: x(lib).view(np.int32(2), -1),
        "view((np.int64(3), np.int64(2)))": lambda lib: x(lib).view((np.int64(3), np.int64(2))),
        "reshape(np.int64(3), -1)": lambda lib: x(lib).reshape(np.int64(3), -1),
        "reshape(np.array([3, 2]))": lambda lib: x(lib).reshape(tuple(np.array([3, 2]))),
        "sum(dim=np.int64(0))": lambda lib: x(lib).sum(dim=np.int64(0)),
        "sum(np.int64(1), keepdim=True)": lambda lib: x(lib).sum(np.int64(1), keepdim=True),
        "mean(dim=(np.int64(0),))": lambda lib: x(lib).mean(dim=(np.int64(0),)),
        "transpose(np.int64(0), np.int64(1))": lambda lib: x(lib).transpose(np.int64(0), np.int64(1)),
        "permute(np.int64(1), np.int64(0))": lambda lib: x(lib).permute(np.int64(1), np.int64(0)),
        "expand(np.int64(4), 2, 3)": lambda lib: x(lib).expand(np.int64(4), 2, 3),
        "repeat(np.int64(2), 1)": lambda lib: x(lib).repeat(np.int64(2), 1),
        "unsqueeze(np.int64(0))": lambda lib: x(lib).unsqueeze(np.int64(0)),
        "squeeze(np.int64(0))": lambda lib: x(lib)[:1].squeeze(np.int64(0)),
        "narrow(0, np.int64(0), np.int64(1))": lambda lib: x(lib).narrow(0, np.int64(0), np.int64(1)),
        "select(np.int64(1), np.int64(2))": lambda lib: x(lib).select(np.int64(1), np.int64(2)),
        "topk(np.int64(2))": lambda lib: x(lib).topk(np.int64(2)).values,
        "split(np.int64(1))": lambda lib: x(lib).split(np.int64(1)),
        "chunk(np.int64(2), dim=1)": lambda lib: x(lib).chunk(np.int64(2), dim=1),
        "cat(dim=np.int64(1))": lambda lib: lib.cat([x(lib), x(lib)], dim=np.int64(1)),
        "stack(dim=np.int64(0))": lambda lib: lib.stack([x(lib), x(lib)], dim=np.int64(0)),
        "flatten(np.int64(0))": lambda lib: x(lib).flatten(np.int64(0)),
        "new_zeros(np.int64(2))": lambda lib: x(lib).new_zeros(np.int64(2)),
        "new_full((np.int64(2),), np.float64(1))": lambda lib: x(lib).new_full((i2,), np.float64(1)),
        "roll(np.int64(1), np.int64(1))": lambda lib: x(lib).roll(np.int64(1), np.int64(1)),
        "softmax(dim=np.int64(1))": lambda lib: x(lib).softmax(dim=np.int64(1)),
        "argmax(dim=np.int64(1))": lambda lib: x(lib).argmax(dim=np.int64(1)),
        "size(np.int64(1))": lambda lib: x(lib).size(np.int64(1)),
        "tril(np.int64(1))": lambda lib: x(lib).tril(np.int64(1)),
        "diagonal(np.int64(1))": lambda lib: x(lib).diagonal(np.int64(1)),
        "unflatten(1, (np.int64(3), 1))": lambda lib: x(lib).unflatten(1, (np.int64(3), 1)),
        "F.one_hot(t, np.int64(4))": lambda lib: lib.nn.functional.one_hot(lib.tensor([0, 2]), np.int64(4)),
        "nn.Linear(np.int64(3), np.int64(2))": lambda lib: lib.nn.Linear(np.int64(3), np.int64(2)).weight.shape,
        "nn.Conv1d(np.int64(1), 2, np.int64(3))": lambda lib: lib.nn.Conv1d(np.int64(1), 2, np.int64(3)).weight.shape,
        "F.pad(t, (np.int64(1), np.int64(1)))": lambda lib: lib.nn.functional.pad(x(lib), (np.int64(1), np.int64(1))),
        "F.interpolate(size=np.int64(4))": lambda lib: lib.nn.functional.interpolate(x(lib)[None], size=np.int64(4)),
        "manual_seed(np.int64(3))": lambda lib: (lib.manual_seed(np.int64(3)), lib.rand(2))[1],
        "Size((np.int64(2), 3))": lambda lib: lib.Size((np.int64(2), 3)),
        "to(dtype) of np.float64 scalar": lambda lib: lib.tensor(np.float64(1)).dtype,
        "t.shape == (np.int64(2), 3)": lambda lib: x(lib).shape == (np.int64(2), 3),
    }
    return calls


def all_cases():
    families = {"convert": conversion_cases(), "to_numpy": to_numpy_cases(), "scalars": scalar_cases(),
                "ufuncs": ufunc_cases(), "lists": list_cases(), "index": index_cases(), "sizes": size_cases()}
    return {f"{family}: {name}": case for family, cases in families.items() for name, case in cases.items()}


# ----------------------------------------------------------------------------------------------
# running and describing
# ----------------------------------------------------------------------------------------------

def _plain(values):
    """NaN-safe, JSON-safe values: complex as [real, imag], NaN as the string 'nan'."""
    if isinstance(values, list):
        return [_plain(item) for item in values]
    if isinstance(values, complex):
        return [_plain(values.real), _plain(values.imag)]
    if isinstance(values, float) and values != values:
        return "nan"
    if isinstance(values, float):
        return round(values, 4)
    if isinstance(values, np.generic):
        # tolist()/item() must give Python scalars: a NumPy one is named, so it differs
        return f"np.{type(values).__name__}({_plain(values.item())})"
    return values


def describe(value, lib):
    """A library-neutral, JSON-able description of what a case returned."""
    if isinstance(value, lib.Tensor):
        detached = value.detach()
        if str(value.dtype).endswith("bfloat16"):
            detached = detached.float()
        return {"type": "Tensor", "dtype": str(value.dtype).rpartition(".")[2], "shape": list(value.shape),
                "values": _plain(detached.tolist()), "requires_grad": value.requires_grad}
    if isinstance(value, np.ndarray):
        return {"type": "ndarray", "dtype": str(value.dtype), "shape": list(value.shape),
                "values": _plain(value.tolist()) if value.dtype != object else repr(value.tolist())}
    if isinstance(value, np.generic):
        return {"type": f"np.{type(value).__name__}", "value": _plain(value.item())}
    if isinstance(value, lib.Size):
        return {"type": "Size", "value": _plain(list(value))}
    if isinstance(value, lib.dtype):
        return {"type": "dtype", "value": str(value).rpartition(".")[2]}
    if isinstance(value, (list, tuple)):
        return {"type": type(value).__name__ if type(value) in (list, tuple) else "namedtuple",
                "items": [describe(item, lib) for item in value]}
    if isinstance(value, (bool, int, float, complex, str, type(None))):
        return {"type": type(value).__name__, "value": _plain(value)}
    return {"type": type(value).__name__}


def run_case(case, lib):
    import chainrule

    lib.manual_seed(0)
    chainrule.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with time_limit(SECONDS_PER_CASE, CaseTimeout):
                value = case(lib)
            outcome = {"result": describe(value, lib)}
        except Exception as exc:  # each case's exception is an outcome to compare
            outcome = {"error": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
                       "message": str(exc)[:300]}
    outcome["warnings"] = sorted({w.category.__name__ for w in caught
                                  if not issubclass(w.category, DeprecationWarning)})
    return outcome


def _first_difference(want, got):
    """(kind, detail) for the first place two descriptions differ, or None."""
    if want.get("type") != got.get("type"):
        return "type_differs", f"{got.get('type')}, torch {want.get('type')}"
    if "items" in want:
        if len(want["items"]) != len(got["items"]):
            return "values_differ", f"{len(got['items'])} items, torch {len(want['items'])}"
        for want_item, got_item in zip(want["items"], got["items"]):
            difference = _first_difference(want_item, got_item)
            if difference:
                return difference
        return None
    if want.get("dtype") != got.get("dtype"):
        return "dtype_differs", f"{got.get('dtype')}, torch {want.get('dtype')}"
    for key in ("shape", "values", "value", "requires_grad"):
        # repr tells 1 from 1.0 and True from 1: tolist's element types are compared too
        if repr(want.get(key)) != repr(got.get(key)):
            return "values_differ", f"{key}: {str(got.get(key))[:120]}, torch {str(want.get(key))[:120]}"
    return None


def classify(torch_outcome, chainrule_outcome):
    if "error" in torch_outcome and "error" in chainrule_outcome:
        if torch_outcome["error"] in chainrule_outcome["mro"]:
            return "same", ""
        return "error_class_differs", f"{chainrule_outcome['error']}, torch {torch_outcome['error']}"
    if "error" in torch_outcome:
        return "torch_only_raised", f"torch {torch_outcome['error']}: {torch_outcome['message'][:160]}"
    if "error" in chainrule_outcome:
        return "chainrule_only_raised", f"{chainrule_outcome['error']}: {chainrule_outcome['message'][:160]}"
    difference = _first_difference(torch_outcome["result"], chainrule_outcome["result"])
    if difference:
        return difference
    if torch_outcome["warnings"] != chainrule_outcome["warnings"]:
        return "warning_differs", f"{chainrule_outcome['warnings']}, torch {torch_outcome['warnings']}"
    return "same", ""


def run(out: str, filter_text: str | None) -> None:
    import torch

    import chainrule

    records = []
    for name, case in all_cases().items():
        if filter_text and not re.search(filter_text, name):
            continue
        torch_outcome = run_case(case, torch)
        chainrule_outcome = run_case(case, chainrule)
        kind, detail = classify(torch_outcome, chainrule_outcome)
        records.append({"case": name, "kind": kind, "detail": detail, "torch": torch_outcome,
                        "chainrule": chainrule_outcome})
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "cases.json"), "w") as handle:
        json.dump(records, handle, indent=1, default=repr)
    counts = collections.Counter(record["kind"] for record in records)
    print(f"{len(records)} cases")
    for kind in KINDS:
        print(f"  {kind:24s} {counts.get(kind, 0)}")
    groups = collections.Counter((record["kind"], record["case"].split(":")[0], record["detail"][:70])
                                 for record in records if record["kind"] != "same")
    print("biggest groups (kind, family, detail):")
    for (kind, family, detail), count in groups.most_common(25):
        print(f"  {count:4d}  {kind:22s} {family:9s} {detail}")


def show(out: str, kind: str) -> None:
    with open(os.path.join(out, "cases.json")) as handle:
        records = json.load(handle)
    for record in records:
        if record["kind"] == kind:
            print(f"{record['case']}\n    {record['detail']}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--filter", help="a regular expression over case names")
    show_parser = commands.add_parser("show")
    show_parser.add_argument("--out", required=True)
    show_parser.add_argument("--kind", required=True, choices=KINDS)
    arguments = parser.parse_args(argv)
    if arguments.command == "run":
        run(arguments.out, arguments.filter)
    else:
        show(arguments.out, arguments.kind)


if __name__ == "__main__":
    main()
