"""torch.func / vmap corners against torch 2.13 (the s25 func3 lane): ``in_dims`` and ``out_dims`` matched
against the inputs' and outputs' pytrees as torch matches them (a list spec for a tuple input is refused),
and the checks torch makes of each leaf."""

import collections
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

XS = np.arange(6, dtype=np.float32).reshape(2, 3) - 1.5
YS = np.arange(8, dtype=np.float32).reshape(2, 4)


def _flat(result) -> list:
    if isinstance(result, dict):
        return [item for key in result for item in _flat(result[key])]
    if isinstance(result, (tuple, list)):
        return [item for part in result for item in _flat(part)]
    if hasattr(result, "detach"):
        return [(str(result.dtype).split(".")[-1], np.asarray(result.detach().numpy()))]
    return [result]


def _outcome(lib, case):
    """("ok", flat values) or (exception class name, its message)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's performance warnings for its batching fallbacks
        try:
            result = case(lib)
        except Exception as error:  # noqa: BLE001 - the class and message are what is compared
            return type(error).__name__, str(error)
    return "ok", _flat(result)


def _same(case):
    ours, theirs = _outcome(chainrule, case), _outcome(torch, case)
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] != "ok":
        assert ours[1] == theirs[1]
        return
    assert len(ours[1]) == len(theirs[1])
    for mine, other in zip(ours[1], theirs[1]):
        if isinstance(mine, tuple):
            assert mine[0] == other[0]
            np.testing.assert_allclose(mine[1], other[1], rtol=1e-6)
        else:
            assert mine == other


def _x(lib):
    return lib.tensor(XS)


def _y(lib):
    return lib.tensor(YS)


def _point(lib):
    return collections.namedtuple("Point", "x")(_x(lib))


STRUCTURES = {
    "a list spec for a tuple input": lambda lib: lib.func.vmap(lambda a, b: a + b[0], in_dims=(0, [0]))(_x(lib), (_x(lib),)),
    "a tuple spec for a list input": lambda lib: lib.func.vmap(lambda a, b: a + b[0], in_dims=(0, (0,)))(_x(lib), [_x(lib)]),
    "a dict spec for a tuple input": lambda lib: lib.func.vmap(lambda a, b: a + b[0], in_dims=(0, {"a": 0}))(
        _x(lib), (_x(lib),)),
    "a tuple spec for a dict input": lambda lib: lib.func.vmap(lambda a, b: a + b["a"], in_dims=(0, (0,)))(
        _x(lib), {"a": _x(lib)}),
    "other dict keys": lambda lib: lib.func.vmap(lambda a, b: a + b["a"], in_dims=(0, {"b": 0}))(_x(lib), {"a": _x(lib)}),
    "a longer list": lambda lib: lib.func.vmap(lambda a, b: a + b[0], in_dims=(0, [0, 0]))(_x(lib), [_x(lib)]),
    "a tuple spec for a tensor": lambda lib: lib.func.vmap(lambda a, b: a + b, in_dims=(0, (0,)))(_x(lib), _x(lib)),
    "a mismatch deeper down": lambda lib: lib.func.vmap(lambda a, b: a + b[0][0], in_dims=(0, ([0],)))(
        _x(lib), ((_x(lib),),)),
    "a tuple spec for a namedtuple": lambda lib: lib.func.vmap(lambda a, b: a + b[0], in_dims=(0, (0,)))(
        _x(lib), _point(lib)),
    "a float in_dim": lambda lib: lib.func.vmap(lambda a: a, in_dims=(0.0,))(_x(lib)),
    "a str in_dim in a list": lambda lib: lib.func.vmap(lambda a, b: a + b[0], in_dims=(0, ["x"]))(_x(lib), [_x(lib)]),
    "a list out_dims for a tuple output": lambda lib: lib.func.vmap(lambda a: (a, a), out_dims=[0, 0])(_x(lib)),
    "a tuple out_dims for a list output": lambda lib: lib.func.vmap(lambda a: [a, a], out_dims=(0, 0))(_x(lib)),
    "a str out_dims": lambda lib: lib.func.vmap(lambda a: a, out_dims="x")(_x(lib)),
    "a float among out_dims": lambda lib: lib.func.vmap(lambda a: (a, a), out_dims=(0, 1.0))(_x(lib)),
    "no inputs": lambda lib: lib.func.vmap(lambda: lib.zeros(2))(),
    # what matches still runs
    "None for a whole tuple": lambda lib: lib.func.vmap(lambda a, b: a + b[0], in_dims=(0, None))(_x(lib), (_x(lib),)),
    "None inside a list": lambda lib: lib.func.vmap(lambda a, b: a + b[0] + b[1], in_dims=(0, [None, 0]))(
        _x(lib), [_x(lib)[0], _x(lib)]),
    "an int for a whole tuple": lambda lib: lib.func.vmap(lambda a, b: a + b[0], in_dims=(0, 1))(_x(lib), (_x(lib),)),
    "dict specs by key": lambda lib: lib.func.vmap(lambda b: b["a"].sum() + b["b"].sum(), in_dims=({"b": 1, "a": 0},))(
        {"a": _x(lib), "b": _y(lib)}),
    "an OrderedDict input, a dict spec": lambda lib: lib.func.vmap(lambda b: b["a"] * 2, in_dims=({"a": 0},))(
        collections.OrderedDict(a=_x(lib))),
    "a deque input": lambda lib: lib.func.vmap(lambda b: b[0] * 2)(collections.deque([_x(lib)])),
    "a 1-tuple out_dims for a tensor": lambda lib: lib.func.vmap(lambda a: a, out_dims=(1,))(_x(lib)),
    "a dict out_dims prefix": lambda lib: lib.func.vmap(lambda a: {"x": a, "y": (a, a * 2)}, out_dims={"x": 1, "y": 0})(
        _x(lib)),
    "a nested out_dims prefix": lambda lib: lib.func.vmap(lambda a: (a, (a, a)), out_dims=(0, 1))(_x(lib)),
    "an empty batch, dict out_dims": lambda lib: lib.func.vmap(lambda a: {"p": a * 2}, out_dims={"p": 1})(
        lib.zeros(0, 3)),
}


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_vmap_matches_in_dims_and_out_dims_to_the_pytrees_as_torch(name):
    _same(STRUCTURES[name])
