"""Session 29, lane correct2: small differences from torch 2.13 the first wave noticed, each checked
against torch on the same inputs (values, or the exception's type and words)."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(fn, lib):
    """What ``fn(lib)`` gives: ('ok', values) or (exception type name, message)."""
    try:
        out = fn(lib)
    except Exception as error:  # noqa: BLE001 - the exception itself is what is compared
        return type(error).__name__, str(error)
    if isinstance(out, (tuple, list)):
        return "ok", [np.asarray(t.tolist()).tolist() for t in out]
    return "ok", np.asarray(out.tolist()).tolist()


def _same_as_torch(fn):
    assert _outcome(fn, chainrule) == _outcome(fn, torch)


# ---------------------------------------------------------------- flip's dims
def _x(lib):
    return lib.arange(6.0).reshape(2, 3)


_FLIP_CASES = {
    "function, int": lambda lib: lib.flip(_x(lib), 1),
    "function, int by keyword": lambda lib: lib.flip(_x(lib), dims=1),
    "function, float": lambda lib: lib.flip(_x(lib), 1.0),
    "function, None": lambda lib: lib.flip(_x(lib), None),
    "function, bool": lambda lib: lib.flip(_x(lib), True),
    "function, numpy int": lambda lib: lib.flip(_x(lib), np.int64(1)),
    "function, 0-d tensor": lambda lib: lib.flip(_x(lib), lib.tensor(1)),
    "function, two ints": lambda lib: lib.flip(_x(lib), 0, 1),
    "function, no dims": lambda lib: lib.flip(_x(lib)),
    "function, list": lambda lib: lib.flip(_x(lib), [1]),
    "function, tuple by keyword": lambda lib: lib.flip(input=_x(lib), dims=(0, 1)),
    "function, empty tuple": lambda lib: lib.flip(_x(lib), ()),
    "function, float element first": lambda lib: lib.flip(_x(lib), [1.0]),
    "function, float element second": lambda lib: lib.flip(_x(lib), [0, 1.0]),
    "function, str element second": lambda lib: lib.flip(_x(lib), [0, "a"]),
    "function, bool element first": lambda lib: lib.flip(_x(lib), [True]),
    "function, numpy int element": lambda lib: lib.flip(_x(lib), [np.int64(1)]),
    "function, unknown keyword": lambda lib: lib.flip(_x(lib), [1], foo=1),
    "function, out": lambda lib: lib.flip(_x(lib), [1], out=None),
    "function, dim out of range": lambda lib: lib.flip(_x(lib), [5]),
    "method, int": lambda lib: _x(lib).flip(1),
    "method, ints": lambda lib: _x(lib).flip(0, 1),
    "method, repeated int": lambda lib: _x(lib).flip(0, 0),
    "method, int by keyword": lambda lib: _x(lib).flip(dims=1),
    "method, list by keyword": lambda lib: _x(lib).flip(dims=[1]),
    "method, int and keyword": lambda lib: _x(lib).flip(1, dims=0),
    "method, float": lambda lib: _x(lib).flip(1.0),
    "method, None": lambda lib: _x(lib).flip(None),
    "method, bool": lambda lib: _x(lib).flip(True),
    "method, numpy int": lambda lib: _x(lib).flip(np.int64(1)),
    "method, 0-d tensor": lambda lib: _x(lib).flip(lib.tensor(1)),
    "method, int then float": lambda lib: _x(lib).flip(0, 1.0),
    "method, no dims": lambda lib: _x(lib).flip(),
    "method, empty tuple": lambda lib: _x(lib).flip(()),
    "method, unknown keyword": lambda lib: _x(lib).flip(1, foo=1),
    "method, dim out of range": lambda lib: _x(lib).flip(5),
}


@pytest.mark.parametrize("case", list(_FLIP_CASES))
def test_flip_dims_parsed_as_torch(case):
    _same_as_torch(_FLIP_CASES[case])


def test_flip_method_gradient_matches_torch():
    grads = []
    for lib in (chainrule, torch):
        x = lib.arange(6.0).reshape(2, 3).requires_grad_()
        (x.flip(1) * lib.arange(6.0).reshape(2, 3)).sum().backward()
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1]


# ---------------------------------------------------------------- broadcast_tensors takes tensors, not a list
def _a(lib):
    return lib.ones(2, 1)


def _b(lib):
    return lib.ones(3)


_BROADCAST_CASES = {
    "tensors": lambda lib: lib.broadcast_tensors(_a(lib), _b(lib)),
    "one tensor": lambda lib: lib.broadcast_tensors(_a(lib)),
    "nothing": lambda lib: lib.broadcast_tensors(),
    "a list": lambda lib: lib.broadcast_tensors([_a(lib), _b(lib)]),
    "a tuple": lambda lib: lib.broadcast_tensors((_a(lib), _b(lib))),
    "a list of one": lambda lib: lib.broadcast_tensors([_a(lib)]),
    "an empty list": lambda lib: lib.broadcast_tensors([]),
    "an int second": lambda lib: lib.broadcast_tensors(_a(lib), 1),
    "an int first": lambda lib: lib.broadcast_tensors(1, _a(lib)),
    "None second": lambda lib: lib.broadcast_tensors(_a(lib), None),
    "an ndarray second": lambda lib: lib.broadcast_tensors(_a(lib), np.ones(2)),
    "a list second": lambda lib: lib.broadcast_tensors(_a(lib), [_b(lib)]),
    "shapes that do not broadcast": lambda lib: lib.broadcast_tensors(lib.ones(2), lib.ones(3)),
}


@pytest.mark.parametrize("case", list(_BROADCAST_CASES))
def test_broadcast_tensors_arguments_as_torch(case):
    _same_as_torch(_BROADCAST_CASES[case])


# ---------------------------------------------------------------- the legacy constructors' data and keywords
def _shape_and_dtype(fn):
    def made(lib):
        out = fn(lib)
        return lib.tensor(list(out.shape) + [str(out.dtype).rpartition(".")[2] == "float32"])
    return made


_LEGACY_CASES = {
    "LongTensor, a str second": lambda lib: lib.LongTensor([1, "a"]),
    "LongTensor, a str first": lambda lib: lib.LongTensor(["a"]),
    "LongTensor, a str in the second row": lambda lib: lib.LongTensor([[1], ["a"]]),
    "LongTensor, None second": lambda lib: lib.LongTensor([1, None]),
    "IntTensor, a str second": lambda lib: lib.IntTensor([1, "a"]),
    "BoolTensor, a str second": lambda lib: lib.BoolTensor([1, "a"]),
    "Tensor, a str second": lambda lib: lib.Tensor([1, "a"]),
    "Tensor, None second": lambda lib: lib.Tensor([1, None]),
    "Tensor, a str first": lambda lib: lib.Tensor(["a"]),
    "Tensor, a str": lambda lib: lib.Tensor("a"),
    "FloatTensor, a str first": lambda lib: lib.FloatTensor(["a"]),
    "DoubleTensor, a str second": lambda lib: lib.DoubleTensor([1, "a"]),
    "LongTensor, numbers": lambda lib: lib.LongTensor([1, 2, np.int64(3)]),
    "Tensor, numbers and bools": lambda lib: lib.Tensor([[1, 2.5], [True, np.float32(0.5)]]),
    "Tensor, size by keyword": _shape_and_dtype(lambda lib: lib.Tensor(size=(2, 3))),
    "Tensor, a list size by keyword": _shape_and_dtype(lambda lib: lib.Tensor(size=[2, 3])),
    "Tensor, a Size by keyword": _shape_and_dtype(lambda lib: lib.Tensor(size=lib.Size([2]))),
    "Tensor, an int size by keyword": lambda lib: lib.Tensor(size=2),
    "Tensor, a size both ways": lambda lib: lib.Tensor(2, size=(3,)),
    "LongTensor, size by keyword": _shape_and_dtype(lambda lib: lib.LongTensor(size=(2, 3))),
    "Tensor, data by keyword": lambda lib: lib.Tensor(data=[1.0]),
    "Tensor, data and size by keyword": lambda lib: lib.Tensor(data=[1.0], size=(2,)),
    "Tensor, a dtype": lambda lib: lib.Tensor([1.0], dtype=lib.float64),
    "Tensor, sizes and a dtype": lambda lib: lib.Tensor(2, 3, dtype=lib.float64),
    "Tensor, three sizes and a dtype": lambda lib: lib.Tensor(2, 3, 4, dtype=lib.float64),
    "Tensor, only a dtype": lambda lib: lib.Tensor(dtype=lib.float64),
    "Tensor, a size and a dtype by keyword": lambda lib: lib.Tensor(size=(2, 3), dtype=lib.float64),
    "Tensor, a Size and a dtype": lambda lib: lib.Tensor(lib.Size([2]), dtype=lib.float64),
    "Tensor, a tensor and a dtype": lambda lib: lib.Tensor(lib.ones(2), dtype=lib.float64),
    "Tensor, requires_grad": lambda lib: lib.Tensor([1.0], requires_grad=True),
    "Tensor, a dtype and requires_grad": lambda lib: lib.Tensor([1.0], dtype=lib.float64, requires_grad=True),
    "Tensor, a dtype and a device": lambda lib: lib.Tensor([1.0], dtype=lib.float64, device="cpu"),
    "Tensor, an unknown keyword": lambda lib: lib.Tensor(2, 3, foo=1),
    "LongTensor, a dtype": lambda lib: lib.LongTensor([1], dtype=lib.float64),
    "Tensor, data on the cpu": lambda lib: lib.Tensor([1.0], device="cpu"),
    "Tensor, sizes on the cpu": _shape_and_dtype(lambda lib: lib.Tensor(2, 3, device="cpu")),
    "Tensor, nothing on the cpu": _shape_and_dtype(lambda lib: lib.Tensor(device="cpu")),
    "Tensor, data on the meta device": lambda lib: lib.Tensor([1.0], device="meta"),
    "Tensor, a tensor and a device": lambda lib: lib.Tensor(lib.ones(2), device="cpu"),
}


@pytest.mark.parametrize("case", list(_LEGACY_CASES))
def test_legacy_constructor_as_torch(case):
    _same_as_torch(_LEGACY_CASES[case])


def test_new_keeps_the_dtype_and_refuses_what_torch_refuses():
    for lib in (chainrule, torch):
        made = lib.ones(2, dtype=lib.float64).new([1, 2])
        assert str(made.dtype).endswith("float64") and made.tolist() == [1.0, 2.0]
    _same_as_torch(lambda lib: lib.ones(2, dtype=lib.int32).new([1, "a"]))


# ---------------------------------------------------------------- sparse COO with a dense addend
def _sparse(lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note on its invariant checks
        return lib.sparse_coo_tensor(lib.tensor([[0, 1], [1, 0]]), lib.tensor([1.0, 2.0]), (2, 2))


def _dense(lib, *shape, dtype=None):
    return lib.ones(*(shape or (2, 2)), dtype=dtype)


def _densified(fn):
    def made(lib):
        out = fn(lib)
        assert out.layout == lib.strided and str(out.dtype).rpartition(".")[2] in ("float32", "float64")
        return out.to(lib.float64)
    return made


_SPARSE_ADDITION_CASES = {
    "sparse + dense": lambda lib: _sparse(lib) + _dense(lib),
    "dense + sparse": _densified(lambda lib: _dense(lib) + _sparse(lib)),
    "float64 dense + sparse": _densified(lambda lib: _dense(lib, 2, 2, dtype=lib.float64) + _sparse(lib)),
    "sparse + float64 dense": lambda lib: _sparse(lib) + _dense(lib, 2, 2, dtype=lib.float64),
    "add(sparse, dense)": lambda lib: lib.add(_sparse(lib), _dense(lib)),
    "add(dense, sparse)": _densified(lambda lib: lib.add(_dense(lib), _sparse(lib))),
    "add(sparse, dense, alpha=2)": lambda lib: lib.add(_sparse(lib), _dense(lib), alpha=2),
    "sparse.add(dense)": lambda lib: _sparse(lib).add(_dense(lib)),
    "dense.add(sparse)": _densified(lambda lib: _dense(lib).add(_sparse(lib))),
    "sparse - dense": lambda lib: _sparse(lib) - _dense(lib),
    "dense - sparse": _densified(lambda lib: _dense(lib) - _sparse(lib)),
    "sub(sparse, dense)": lambda lib: lib.sub(_sparse(lib), _dense(lib)),
    "sparse + broadcasting dense": lambda lib: _sparse(lib) + _dense(lib, 2),
    "broadcasting dense + sparse": lambda lib: _dense(lib, 2) + _sparse(lib),
    "broadcasting dense - sparse": lambda lib: _dense(lib, 2) - _sparse(lib),
    "sparse + number": lambda lib: _sparse(lib) + 1,
    "number + sparse": lambda lib: 1 + _sparse(lib),
    "number - sparse": lambda lib: 1 - _sparse(lib),
    "add(number, sparse)": lambda lib: lib.add(1, _sparse(lib)),
    "dense += sparse": _densified(lambda lib: _dense(lib).add_(_sparse(lib))),
    "sparse += dense": lambda lib: _sparse(lib).add_(_dense(lib)),
    "sparse + sparse": _densified(lambda lib: (_sparse(lib) + _sparse(lib)).to_dense()),
}


@pytest.mark.parametrize("case", list(_SPARSE_ADDITION_CASES))
def test_sparse_coo_and_dense_addition_as_torch(case):
    _same_as_torch(_SPARSE_ADDITION_CASES[case])


def test_dense_plus_sparse_gradient_matches_torch():
    grads = []
    for lib in (chainrule, torch):
        w = lib.arange(4.0).reshape(2, 2).requires_grad_()
        ((w + _sparse(lib)) * w).sum().backward()
        grads.append(w.grad.tolist())
    assert grads[0] == grads[1]


# ---------------------------------------------------------------- a complex lr in step
def _lambda_lr_run(lib, name, kwargs):
    """SGD/Adam/AdamW under a LambdaLR whose ``(1 - it / max_it) ** 0.9`` turns complex past max_it:
    the weights and lrs of each step, then what the failing step raised."""
    weight = lib.nn.Parameter(lib.ones(3))
    optimizer = getattr(lib.optim, name)([weight], lr=0.1, **kwargs)
    scheduler = lib.optim.lr_scheduler.LambdaLR(optimizer, lambda it: (1 - it / 2) ** 0.9)
    seen = []
    for _ in range(4):
        (weight * weight).sum().backward()
        try:
            optimizer.step()
        except Exception as error:  # noqa: BLE001 - the exception itself is what is compared
            return seen, (type(error).__name__, str(error))
        optimizer.zero_grad()
        scheduler.step()
        seen.append((weight.tolist(), optimizer.param_groups[0]["lr"]))
    return seen, None


@pytest.mark.parametrize("name, kwargs", [("SGD", {}), ("SGD", {"momentum": 0.9}), ("Adam", {}), ("AdamW", {}),
                                          ("Adam", {"foreach": False}), ("AdamW", {"foreach": False})])
def test_lambda_lr_turning_complex_fails_the_step_as_torch(name, kwargs):
    ours, theirs = _lambda_lr_run(chainrule, name, kwargs), _lambda_lr_run(torch, name, kwargs)
    assert theirs[1] is not None and ours[1] == theirs[1]
    assert len(ours[0]) == len(theirs[0])
    for (our_weights, our_lr), (their_weights, their_lr) in zip(ours[0], theirs[0]):
        assert our_weights == pytest.approx(their_weights, rel=1e-6) and our_lr == pytest.approx(their_lr)


_OPTIMIZERS_REFUSING_A_COMPLEX_LR = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adadelta", "Adagrad", "ASGD",
                                     "RMSprop", "Rprop"]


def _complex_lr_step(lib, name, dtype_name):
    weight = lib.nn.Parameter(lib.ones(3, dtype=getattr(lib, dtype_name)))
    optimizer = getattr(lib.optim, name)([weight], lr=0.1)
    optimizer.param_groups[0]["lr"] = -0.05 + 0.01j
    (weight * weight).sum().backward()
    try:
        optimizer.step()
    except Exception as error:  # noqa: BLE001 - the exception itself is what is compared
        return (type(error).__name__, str(error)), weight
    return None, weight


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("name", _OPTIMIZERS_REFUSING_A_COMPLEX_LR)
def test_complex_lr_step_error_as_torch_and_nothing_changed(name, dtype_name):
    ours, weight = _complex_lr_step(chainrule, name, dtype_name)
    theirs, _ = _complex_lr_step(torch, name, dtype_name)
    assert theirs is not None and ours == theirs
    assert weight.tolist() == [1.0, 1.0, 1.0]  # chainrule refuses before the update (torch midway)


# ---------------------------------------------------------------- jacfwd's signed zeros
_JACFWD_FUNCTIONS = {
    "abs": lambda lib: lib.abs,
    "sin": lambda lib: lib.sin,
    "x * x": lambda lib: lambda x: x * x,
    "x * -x": lambda lib: lambda x: x * (-x),
    "square": lambda lib: lambda x: x.square(),
    "sqrt(x ** 2 + 1)": lambda lib: lambda x: (x ** 2 + 1).sqrt(),
    "gelu": lambda lib: lib.nn.functional.gelu,
    "x * 0": lambda lib: lambda x: x * 0,
    "where": lambda lib: lambda x: lib.where(x > 0, x, lib.zeros_like(x)),
    "x @ W (more outputs)": lambda lib: lambda x: lib.outer(x, lib.tensor([1.0, -1.0, 0.0, 2.0, -3.0])).flatten(),
}


@pytest.mark.parametrize("case", list(_JACFWD_FUNCTIONS))
def test_jacfwd_zeros_carry_torchs_signs(case):
    def jacobian(lib):
        return lib.func.jacfwd(_JACFWD_FUNCTIONS[case](lib))(lib.tensor([1.0, -2.0, 0.0, 3.0])).flatten().tolist()
    ours, theirs = jacobian(chainrule), jacobian(torch)
    assert ours == pytest.approx(theirs, rel=1e-6)
    # the exact zeros, each with its sign
    assert [np.copysign(1.0, v) for v in ours if v == 0] == [np.copysign(1.0, v) for v in theirs if v == 0]
    assert [i for i, v in enumerate(ours) if v == 0] == [i for i, v in enumerate(theirs) if v == 0]


# ---------------------------------------------------------------- atleast_*d's words for a non-tensor
@pytest.mark.parametrize("name", ["atleast_1d", "atleast_2d", "atleast_3d"])
@pytest.mark.parametrize("second", [np.ones(2), 1, np.int64(1), None], ids=["ndarray", "int", "numpy int", "None"])
def test_atleast_names_a_non_tensor_as_torch(name, second):
    _same_as_torch(lambda lib: getattr(lib, name)(lib.ones(2), second))
