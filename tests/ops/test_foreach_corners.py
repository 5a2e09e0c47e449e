"""torch._foreach_norm / _max / _pow / _clamp_min / _clamp_max / _lerp / _sign / _addcmul / _addcdiv
in the forms optimizer code uses (a number, a number per tensor, a tensor per tensor, a 1-d tensor of
scalars, in place) and their refusals (an empty tensor's max, an integer tensor's norm), each
compared with torch 2.13: result dtypes, shapes and values, or error type and message."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_SELF = [[1.0, -2.0, 3.0], [[0.5, -4.0], [2.0, 0.0]], 0.25]
_OTHER = [[2.0, 1.0, -1.0], [[1.0, 2.0], [-3.0, 0.5]], -1.5]
_POSITIVE = [[0.5, 0.5, 2.0], [[2.0, 1.0], [1.0, 3.0]], 4.0]


def _list(lib, values):
    return [lib.tensor(np.array(v, dtype=np.float32)) for v in values]


def _in_place(op, *args):
    def call(lib, xs):
        getattr(lib, op)(xs, *(a(lib) if callable(a) else a for a in args))
        return xs
    return call


def _out_of_place(op, *args):
    return lambda lib, xs: getattr(lib, op)(xs, *(a(lib) if callable(a) else a for a in args))


def _others(lib):
    return _list(lib, _OTHER)


def _weights(lib):
    return _list(lib, [[0.25, 0.5, 1.0], [[0.0, 1.0], [0.75, 2.0]], -0.5])


CASES = {
    "norm": _out_of_place("_foreach_norm"),
    "norm ord 1": _out_of_place("_foreach_norm", 1),
    "norm ord inf": _out_of_place("_foreach_norm", float("inf")),
    "norm ord 3, float64": lambda lib, xs: lib._foreach_norm(xs, 3, dtype=lib.float64),
    "max": _out_of_place("_foreach_max"),
    "pow number": lambda lib, xs: lib._foreach_pow(_list(lib, _POSITIVE), 2.5),
    "pow number per tensor": lambda lib, xs: lib._foreach_pow(_list(lib, _POSITIVE), [2.0, 0.5, -1.0]),
    "pow tensors": lambda lib, xs: lib._foreach_pow(_list(lib, _POSITIVE), _others(lib)),
    "pow number base": lambda lib, xs: lib._foreach_pow(2.0, xs),
    "pow_ tensors": lambda lib, xs: _in_place("_foreach_pow_", _others)(lib, _list(lib, _POSITIVE)),
    "clamp_min number": _out_of_place("_foreach_clamp_min", 0.5),
    "clamp_min per tensor": _out_of_place("_foreach_clamp_min", [0.0, 1.0, 0.5]),
    "clamp_min tensors": _out_of_place("_foreach_clamp_min", _others),
    "clamp_max number": _out_of_place("_foreach_clamp_max", 0.5),
    "clamp_max tensors": _out_of_place("_foreach_clamp_max", _others),
    "clamp_min_": _in_place("_foreach_clamp_min_", 0.0),
    "clamp_max_ tensors": _in_place("_foreach_clamp_max_", _others),
    "lerp number": _out_of_place("_foreach_lerp", _others, 0.25),
    "lerp tensors": _out_of_place("_foreach_lerp", _others, _weights),
    "lerp number per tensor": _out_of_place("_foreach_lerp", _others, [0.25, 0.75, 2.0]),
    "lerp_ tensors": _in_place("_foreach_lerp_", _others, _weights),
    "sign": _out_of_place("_foreach_sign"),
    "sign_": _in_place("_foreach_sign_"),
    "addcmul number": _out_of_place("_foreach_addcmul", _others, _weights, 0.5),
    "addcmul numbers": _out_of_place("_foreach_addcmul", _others, _weights, [0.5, 2.0, -1.0]),
    "addcmul tensor of scalars": _out_of_place("_foreach_addcmul", _others, _weights,
                                               lambda lib: lib.tensor([0.5, 2.0, -1.0])),
    "addcmul_ tensor of scalars": _in_place("_foreach_addcmul_", _others, _weights,
                                            lambda lib: lib.tensor([0.5, 2.0, -1.0])),
    "addcdiv tensor of scalars": lambda lib, xs: lib._foreach_addcdiv(
        xs, _others(lib), _list(lib, _POSITIVE), lib.tensor([0.5, 2.0, -1.0])),
    "addcdiv_ tensor of scalars": lambda lib, xs: _in_place(
        "_foreach_addcdiv_", _others, lambda lib: _list(lib, _POSITIVE), lambda lib: lib.tensor([0.5, 2, -1.0]))(lib, xs),
    # refusals
    "addcmul tensor of scalars, wrong length": _out_of_place("_foreach_addcmul", _others, _weights,
                                                             lambda lib: lib.tensor([0.5, 2.0])),
    "pow numbers, wrong length": _out_of_place("_foreach_pow", [2.0]),
    "lerp lists of different lengths": lambda lib, xs: lib._foreach_lerp(xs, _others(lib)[:2], 0.5),
    "max of an empty tensor": lambda lib, xs: lib._foreach_max([xs[0], lib.zeros(2, 0)]),
    "norm of an integer tensor": lambda lib, xs: lib._foreach_norm([lib.tensor([3, 4])]),
    "norm of a bool tensor, dtype given": lambda lib, xs: lib._foreach_norm([lib.tensor([True])], dtype=lib.float32),
}


def _outcome(lib, case):
    try:
        results = CASES[case](lib, _list(lib, _SELF))
    except Exception as error:  # the error is the outcome compared
        return type(error).__name__, str(error).split("\n")[0]
    return "ok", [(str(t.dtype).split(".")[-1], tuple(t.shape), np.asarray(t.tolist(), dtype=np.float64))
                  for t in results]


@pytest.mark.parametrize("case", CASES)
def test_foreach_as_torch(case):
    assert_same_outcome(_outcome(chainrule, case), _outcome(torch, case))


def assert_same_outcome(ours, theirs):
    """Two ``(kind, detail)`` outcomes of one foreach case: the same error, or lists of tensors of
    the same dtypes and shapes whose values agree."""
    (ours_kind, ours), (theirs_kind, theirs) = ours, theirs
    assert ours_kind == theirs_kind, (ours, theirs)
    if theirs_kind != "ok":
        assert ours == theirs
        return
    assert [o[:2] for o in ours] == [t[:2] for t in theirs]
    for (_, _, mine), (_, _, their) in zip(ours, theirs):
        np.testing.assert_allclose(mine, their, rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("call", [lambda lib: lib.norm(lib.tensor([1, 2])),
                                  lambda lib: lib.linalg.vector_norm(lib.tensor([1, 2]), dtype=lib.float64),
                                  lambda lib: lib.linalg.matrix_norm(lib.tensor([[1, 2]], dtype=lib.uint8)),
                                  lambda lib: lib.tensor([True]).norm(p=1)])
def test_norms_of_integer_tensors_raise_as_torch(call):
    errors = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as raised:
            call(lib)
        errors.append(str(raised.value))
    assert errors[0] == errors[1]
