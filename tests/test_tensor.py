"""Tensor attributes and methods, conversions and repr, compared with torch."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch

import chainrule

LIBS = [chainrule, torch]


def A(lib):
    return lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def _norm(value):
    if hasattr(value, "detach"):
        return (tuple(value.shape), str(value.dtype).split(".")[-1], value.detach().numpy().tolist(),
                value.requires_grad, value.is_leaf)
    return str(value).replace("torch", "chainrule") if not isinstance(value, (int, float, bool, list, tuple)) else value


def _run(fn):
    out = []
    for lib in LIBS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out.append(_norm(fn(lib)))
            except Exception as exc:
                out.append(("error", type(exc).__name__))
    return out


def _set_grad(lib, make):
    x = lib.ones(2, requires_grad=True)
    x.grad = make(lib)
    return x.grad


def _set_data(lib, value):
    x = lib.ones(2, requires_grad=True)
    x.data = value
    return x


CASES = {
    "shape": lambda l: tuple(A(l).shape),
    "size": lambda l: A(l).size(),
    "size dim": lambda l: A(l).size(-1),
    "size out of range": lambda l: A(l).size(2),
    "dim ndim numel nelement": lambda l: (A(l).dim(), A(l).ndim, A(l).numel(), A(l).nelement()),
    "T": lambda l: A(l).T,
    "T 3-d": lambda l: tuple(l.ones(2, 3, 4).T.shape),
    "mT": lambda l: tuple(l.ones(2, 3, 4).mT.shape),
    "mT 1-d": lambda l: l.ones(2).mT,
    "item": lambda l: A(l)[0, 1].item(),
    "item int": lambda l: l.tensor([3]).item(),
    "item bool": lambda l: l.tensor(True).item(),
    "item many": lambda l: A(l).item(),
    "tolist": lambda l: A(l).tolist(),
    "tolist 0-d": lambda l: l.tensor(2.5).tolist(),
    "numpy requires grad": lambda l: l.ones(2, requires_grad=True).numpy(),
    "numpy force": lambda l: l.ones(2, requires_grad=True).numpy(force=True).tolist(),
    "numpy shares": lambda l: (lambda t: (t.numpy().__setitem__(0, 5.0), t.tolist())[1])(l.zeros(2)),
    "detach": lambda l: (l.ones(2, requires_grad=True) * 2).detach(),
    "detach shares": lambda l: (lambda x: (x.detach().add_(1), x.tolist())[1])(l.ones(2, requires_grad=True)),
    "clone": lambda l: l.ones(2, requires_grad=True).clone(),
    "data": lambda l: l.ones(2, requires_grad=True).data,
    "data shares": lambda l: (lambda x: (x.data.mul_(3), x.tolist())[1])(l.ones(2, requires_grad=True)),
    "data set": lambda l: _set_data(l, l.zeros(3)),
    "data set float64": lambda l: _set_data(l, l.zeros(3, dtype=l.float64)),
    "requires_grad_": lambda l: l.ones(2).requires_grad_(),
    "requires_grad_ kw": lambda l: l.ones(2).requires_grad_(requires_grad=True),
    "requires_grad_ non-leaf": lambda l: (l.ones(2, requires_grad=True) * 2).requires_grad_(False),
    "requires_grad_ int": lambda l: l.ones(2, dtype=l.int64).requires_grad_(),
    "grad set": lambda l: _set_grad(l, lambda l: l.zeros(2)),
    "grad set shape": lambda l: _set_grad(l, lambda l: l.zeros(3)),
    "grad set dtype": lambda l: _set_grad(l, lambda l: l.zeros(2, dtype=l.float64)),
    "grad set type": lambda l: _set_grad(l, lambda l: [1.0, 2.0]),
    "grad set None": lambda l: _set_grad(l, lambda l: None),
    "to dtype": lambda l: A(l).to(l.float64),
    "to dtype kw": lambda l: A(l).to(dtype=l.int32),
    "to device": lambda l: A(l).to("cpu"),
    "to device dtype": lambda l: A(l).to("cpu", l.float64),
    "to other": lambda l: A(l).to(l.ones(1, dtype=l.int64)),
    "to same is self": lambda l: (lambda a: a.to(l.float32) is a)(A(l)),
    "to copy": lambda l: (lambda a: a.to(l.float32, copy=True) is a)(A(l)),
    "conversions": lambda l: [str(getattr(A(l), m)().dtype).split(".")[1] for m in
                              ("float", "double", "long", "int", "bool", "half", "short", "byte")],
    "to keeps graph": lambda l: type(l.ones(2, requires_grad=True).double().grad_fn).__name__,
    "contiguous": lambda l: (A(l).T.is_contiguous(), A(l).T.contiguous().is_contiguous()),
    "__array__": lambda l: np.asarray(A(l)).tolist(),
    "__array__ dtype": lambda l: np.asarray(A(l), dtype=np.float64).dtype.name,
    "__array__ requires grad": lambda l: np.asarray(l.ones(2, requires_grad=True)),
    "dlpack": lambda l: np.from_dlpack(A(l)).tolist(),
    "dlpack requires grad": lambda l: np.from_dlpack(l.ones(2, requires_grad=True)),
    "to memory_format": lambda l: A(l).to(memory_format=l.contiguous_format),
    "to non_blocking copy": lambda l: A(l).to(l.float64, non_blocking=True, copy=True),
    "to device object": lambda l: A(l).to(l.device("cpu")),
    "device": lambda l: str(A(l).device),
    "is_leaf": lambda l: (l.ones(2).is_leaf, l.ones(2, requires_grad=True).is_leaf,
                          (l.ones(2, requires_grad=True) * 2).is_leaf, (l.ones(2) * 2).is_leaf),
    "len": lambda l: len(A(l)),
    "len 0-d": lambda l: len(l.tensor(1.0)),
    "bool": lambda l: bool(l.tensor([1])),
    "bool ambiguous": lambda l: bool(A(l)),
    "int": lambda l: int(l.tensor(2.7)),
    "float": lambda l: float(l.tensor([2.5])),
    "index": lambda l: [1, 2, 3][l.tensor(1)],
    "format": lambda l: f"{l.tensor(2.5):.2f}",
    "type": lambda l: A(l).type(),
    "element_size": lambda l: A(l).element_size(),
    "stride": lambda l: (A(l).stride(), A(l).T.stride()),
    "Size repr": lambda l: repr(A(l).shape),
    "Size numel": lambda l: A(l).shape.numel(),
    "Size slice": lambda l: repr(A(l).shape[1:]),
    "iter": lambda l: [t.tolist() for t in A(l)],
    "contains": lambda l: (2 in A(l), 7 in A(l)),
    "eq None": lambda l: A(l) == None,  # noqa: E711
    "deepcopy": lambda l: copy.deepcopy(l.ones(2, requires_grad=True)),
    "deepcopy non-leaf": lambda l: copy.deepcopy(l.ones(2, requires_grad=True) * 2),
    "pickle": lambda l: pickle.loads(pickle.dumps(l.ones(2, requires_grad=True))),
    "non-leaf grad": lambda l: (l.ones(2, requires_grad=True) * 2).grad,
    "Tensor(data)": lambda l: l.Tensor([1, 2]),
    "Tensor(sizes)": lambda l: l.Tensor(2, 3).shape,
    "Tensor(Size)": lambda l: l.Tensor(l.Size([2, 3])).shape,
    "Tensor()": lambda l: l.Tensor(),
    "new": lambda l: l.ones(2, dtype=l.int32).new(2, 2).shape,
    "is_floating_point": lambda l: (A(l).is_floating_point(), l.tensor([1]).is_floating_point()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tensor_api_matches_torch(name):
    ours, ref = _run(CASES[name])
    assert ours == ref


def test_messages():
    x = chainrule.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Use tensor.detach\(\).numpy\(\) instead"):
        x.numpy()
    with pytest.raises(RuntimeError, match=r"size '\[3\]' to a tensor of size '\[2\]'"):
        x.grad = chainrule.zeros(3)
    with pytest.raises(RuntimeError, match="a gradient with dtype 'double' to a tensor with grad_dtype 'Float'"):
        x.grad = chainrule.zeros(2, dtype=chainrule.float64)
    with pytest.raises(TypeError, match="expected to be a Tensor or None"):
        x.grad = [1.0, 2.0]
    with pytest.raises(RuntimeError, match="only supported on matrices"):
        _ = x.mT
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)"):
        x.size(1)


def test_numpy_and_dlpack_share_memory():
    t = chainrule.zeros(3)
    t.numpy()[1] = 2.0
    assert t.tolist() == [0.0, 2.0, 0.0]
    view = np.from_dlpack(t)
    assert np.shares_memory(view, t.numpy())


def test_register_hook_and_retain_grad_exist():
    x = chainrule.ones(2, requires_grad=True)
    y = x * 2
    y.retain_grad()
    seen = []
    x.register_hook(seen.append)
    y.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0] and seen[0].tolist() == [2.0, 2.0]


# ------------------------------------------------------------------ repr
REPR_CASES = [
    ("[1.0, -2.5]", {}),
    ("[1, 2, 3]", {}),
    ("[-1, 100, 2]", {}),
    ("[1., 2., 3.]", {}),
    ("[1e-5, 1.0]", {}),
    ("[1e10, 1.0]", {}),
    ("[0.001, 1000.]", {}),
    ("[0.001, 10000.]", {}),
    ("[123456.0, 1.5]", {}),
    ("[[1.5, -2.25], [100.125, 3.]]", {}),
    ("[0.1, 0.2, 0.3]", {}),
    ("[1e8, 1.]", {}),
    ("[1e-10, 1e-12]", {}),
    ("[1.23456789e-3]", {}),
    ("[-0.0, 0.0]", {}),
    ("[float('nan'), 1.5, float('inf')]", {}),
    ("[float('nan'), 2., float('-inf')]", {}),
    ("[True, False]", {}),
    ("3.5", {}),
    ("-7", {}),
    ("True", {}),
    ("[]", {}),
    ("[[], []]", {}),
    ("[[1., 2.], [3., 4.]]", {"requires_grad": True}),
    ("[1., 2.]", {"dtype": "float64"}),
    ("2.5", {"dtype": "float64"}),
    ("[]", {"dtype": "float64"}),
    ("[]", {"dtype": "int64"}),
    ("[1, 2]", {"dtype": "int32"}),
    ("[1.5, 2.]", {"dtype": "float16"}),
    ("[[0.5] * 30] * 2", {}),
    ("list(range(2000))", {"dtype": "float32"}),
    ("[[i * 1.5 for i in range(40)] for _ in range(40)]", {}),
    ("[[[1., 2.], [3., 4.]], [[5., 6.], [7., 8.]]]", {}),
    ("[list(range(10))] * 3", {"dtype": "float64", "requires_grad": True}),
]


@pytest.mark.parametrize("src,kwargs", REPR_CASES, ids=[c[0][:30] + str(c[1]) for c in REPR_CASES])
def test_repr_matches_torch(src, kwargs):
    outs = []
    for lib in LIBS:
        kw = dict(kwargs)
        if "dtype" in kw:
            kw["dtype"] = getattr(lib, kw["dtype"])
        outs.append(repr(lib.tensor(eval(src), **kw)).replace("torch.", "chainrule."))
    assert outs[0] == outs[1]


def test_repr_of_results_matches_torch():
    def reprs(lib):
        x = lib.tensor([1.5, -2.0], requires_grad=True)
        return [repr(x * 2), repr((x * 2).sum()), repr(lib.zeros(2, 0)),
                repr(lib.arange(12.0).reshape(3, 4) * 1.5), repr(x.double()), repr(-x)]

    assert reprs(chainrule) == [r.replace("torch.", "chainrule.") for r in reprs(torch)]


def test_repr_matches_torch_on_random_tensors():
    rng = np.random.default_rng(0)
    kinds = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32, "bool": np.bool_,
             "f16": np.float16}
    for trial in range(200):
        ndim = int(rng.integers(0, 4))
        shape = tuple(int(s) for s in rng.integers(1, 40 if trial % 5 == 0 else 6, ndim))
        kind = str(rng.choice(list(kinds)))
        values = rng.standard_normal(shape) * 10.0 ** int(rng.integers(-6, 10))
        if rng.random() < 0.3:
            values = np.round(values)
        if kind in ("f32", "f64", "f16") and values.size and rng.random() < 0.2:
            values.flat[0] = np.nan
            values.flat[-1] = -np.inf
        with np.errstate(all="ignore"):
            array = np.array(values.clip(-1e9, 1e9).astype(kinds[kind]) if kind[0] == "i"
                             else values.astype(kinds[kind]))
        grad_mode = int(rng.integers(0, 3)) if kind in ("f32", "f64") else 0
        outs = []
        for lib in LIBS:
            t = lib.from_numpy(array.copy())
            if grad_mode:
                t.requires_grad_()
                if grad_mode == 2:
                    t = t * 1
            outs.append(repr(t).replace("torch.", "chainrule."))
        assert outs[0] == outs[1], (kind, shape)


# torch 2.13 warns (once per process) when float()/complex() takes a scalar out of a tensor that is
# being recorded; item(), int(), bool() and format() do not, nor anything under no_grad
_SCALAR_CONVERSIONS = {
    "float": (lambda x: float(x), True),
    "float of a result": (lambda x: float(x * 2), True),
    "complex": (lambda x: complex(x), True),
    "math.exp": (lambda x: __import__("math").exp(x), True),
    "percent format": (lambda x: "%.3f" % x, True),  # noqa: UP031 - the idiom old scripts use
    "item": (lambda x: x.item(), False),
    "int": (lambda x: int(x), False),
    "bool": (lambda x: bool(x), False),
    "format": (lambda x: f"{x:.2f}", False),
    "float of a detached": (lambda x: float(x.detach()), False),
}


@pytest.mark.parametrize("conversion", _SCALAR_CONVERSIONS, ids=list(_SCALAR_CONVERSIONS))
def test_a_scalar_taken_out_of_the_graph_warns_as_torch(conversion, monkeypatch):
    import warnings

    convert, warns = _SCALAR_CONVERSIONS[conversion]
    x = chainrule.ones((), requires_grad=True)
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with chainrule.no_grad():
            convert(x)
        assert caught == []
        convert(x)
        convert(x)  # once per process
    assert [str(w.message) for w in caught] == (
        ["Converting a tensor with requires_grad=True to a scalar may lead to unexpected behavior.\n"
         "Consider using tensor.detach() first. (Triggered internally at "
         "/__w/pytorch/pytorch/torch/csrc/autograd/generated/python_variable_methods.cpp:822.)"] if warns else [])
    assert all(w.filename == __file__ for w in caught)
