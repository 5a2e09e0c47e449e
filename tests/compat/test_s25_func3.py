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
            np.testing.assert_allclose(mine[1], other[1], rtol=1e-4, atol=1e-5)  # (the trial's tolerance)
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


# ---------------------------------------------------------------- reading batched results inside vmap

RS = np.array([[3.0, 1.0, 2.0], [0.5, 4.0, -1.0]], dtype=np.float32)

# results no autograd Function makes (indices, comparisons, counts): batched where their input is
DERIVED = {
    "sort indices": lambda lib, a: a.sort().indices[0],
    "topk indices": lambda lib, a: a.topk(1).indices[0],
    "argsort": lambda lib, a: a.argsort()[0],
    "max(dim) indices": lambda lib, a: a.max(0).indices,
    "kthvalue indices": lambda lib, a: a.kthvalue(1).indices,
    "mode indices": lambda lib, a: a.mode().indices,
    "cummax indices": lambda lib, a: a.cummax(0).indices[0],
    "isclose": lambda lib, a: lib.isclose(a, a)[0],
    "count_nonzero": lambda lib, a: a.count_nonzero(),
    "searchsorted": lambda lib, a: lib.searchsorted(lib.tensor([0.0, 1.0, 2.0]), a)[0],
    "bucketize": lambda lib, a: lib.bucketize(a, lib.tensor([0.0, 1.0]))[0],
    # unbatched ones still read as numbers
    "sort values of a factory tensor": lambda lib, a: lib.tensor([2.0, 1.0]).sort().indices[0],
    "isclose of factory tensors": lambda lib, a: lib.isclose(lib.ones(1), lib.ones(1))[0],
}
READS = {"item": lambda t: t.item(), "bool": bool, "int": int, "float": float}


def _read_inside_vmap(derive, read):
    return lambda lib: lib.func.vmap(lambda a: a * 0 + read(derive(lib, a)))(lib.tensor(RS))


@pytest.mark.parametrize("read", sorted(READS))
@pytest.mark.parametrize("name", sorted(DERIVED))
def test_reading_a_derived_batched_value_inside_vmap_is_refused_as_torch(name, read):
    _same(_read_inside_vmap(DERIVED[name], READS[read]))


OTHER_READS = {
    "torch.equal": lambda lib, a: a * 0 + lib.equal(a, a),
    "torch.allclose": lambda lib, a: a * 0 + lib.allclose(a, a),
    "torch.equal of factory tensors": lambda lib, a: a * 0 + lib.equal(lib.ones(2), lib.ones(2)),
    "is_nonzero": lambda lib, a: a * 0 + a[0].is_nonzero(),
    "range of an index": lambda lib, a: a * len(range(a.argmax())),
    "a list indexed by a tensor": lambda lib, a: a * [1, 2, 3][a.argmax()],
    "a boolean mask": lambda lib, a: a[a > 0],
    "an unbatched boolean mask": lambda lib, a: a[lib.tensor([True, False, True])],
    "a batched tensor index": lambda lib, a: a[a.argmax()],
}


@pytest.mark.parametrize("name", sorted(OTHER_READS))
def test_python_values_of_batched_tensors_inside_vmap_as_torch(name):
    _same(lambda lib: lib.func.vmap(lambda a: OTHER_READS[name](lib, a))(lib.tensor(RS)))


# ---------------------------------------------------------------- rrelu and gaussian_nll_loss under vmap

NEGATIVES = np.array([[3.0, 1.0, -2.0], [0.5, -4.0, -1.0]], dtype=np.float32)


def _functional(lib):
    return lib.nn.functional


RANDOMISH = {
    # torch's vmap supports no rrelu, in any randomness or mode, batched input or not
    "rrelu training": (lambda lib, a: _functional(lib).rrelu(a, training=True), "error"),
    "rrelu training, different": (lambda lib, a: _functional(lib).rrelu(a, training=True), "different"),
    "rrelu training, same": (lambda lib, a: _functional(lib).rrelu(a, training=True), "same"),
    "rrelu eval": (lambda lib, a: _functional(lib).rrelu(a), "error"),
    "rrelu in place": (lambda lib, a: _functional(lib).rrelu(a.clone(), training=True, inplace=True), "different"),
    "torch.rrelu": (lambda lib, a: lib.rrelu(a), "error"),
    "RReLU module": (lambda lib, a: lib.nn.RReLU()(a), "different"),
    "rrelu of an unbatched tensor": (lambda lib, a: a + _functional(lib).rrelu(lib.ones(3)), "error"),
    # its ``if torch.any(var < 0):`` is data-dependent control flow on a batched var
    "gaussian_nll_loss": (lambda lib, a: _functional(lib).gaussian_nll_loss(a, a * 0.5, a.abs() + 0.1), "error"),
    "gaussian_nll_loss, negative var": (lambda lib, a: _functional(lib).gaussian_nll_loss(a, a * 0.5, a), "error"),
    "gaussian_nll_loss, none": (
        lambda lib, a: _functional(lib).gaussian_nll_loss(a, a * 0.5, a.abs() + 0.1, reduction="none"), "error"),
    "gaussian_nll_loss, a factory var": (
        lambda lib, a: _functional(lib).gaussian_nll_loss(a, a * 0.5, lib.ones(1)), "error"),
    "gaussian_nll_loss, a float var": (lambda lib, a: _functional(lib).gaussian_nll_loss(a, a * 0.5, 0.5), "error"),
}


@pytest.mark.parametrize("name", sorted(RANDOMISH))
def test_rrelu_and_gaussian_nll_loss_under_vmap_as_torch(name):
    body, randomness = RANDOMISH[name]
    _same(lambda lib: lib.func.vmap(lambda a: body(lib, a), randomness=randomness)(lib.tensor(NEGATIVES)))


def test_gaussian_nll_loss_with_an_unbatched_var_under_vmap():
    _same(lambda lib: lib.func.vmap(lambda a, v: _functional(lib).gaussian_nll_loss(a, a * 0.5, v), in_dims=(0, None))(
        lib.tensor(NEGATIVES), lib.tensor(NEGATIVES[0]).abs() + 0.1))


# ---------------------------------------------------------------- in-place writes of batched values into unbatched tensors

IN_PLACE = {
    "copysign_": lambda lib, y, a: y.copysign_(a),
    "atan2_": lambda lib, y, a: y.atan2_(a),
    "arctan2_": lambda lib, y, a: y.arctan2_(a),
    "bitwise_or_": lambda lib, y, a: y.long().bitwise_or_(a.long()),
    "gcd_": lambda lib, y, a: y.long().gcd_(a.long()),
    "hypot_": lambda lib, y, a: y.hypot_(a),
    "xlogy_": lambda lib, y, a: y.xlogy_(a),
    "eq_": lambda lib, y, a: y.eq_(a),
    "heaviside_": lambda lib, y, a: y.heaviside_(a),
    "logical_and_": lambda lib, y, a: y.logical_and_(a),
    "clamp_min_": lambda lib, y, a: y.clamp_min_(a),
    "masked_fill_, a batched mask": lambda lib, y, a: y.masked_fill_(a > 0, 1.0),
    "masked_fill_, a batched value": lambda lib, y, a: y.masked_fill_(y > 0, a[0]),
    "index_put_": lambda lib, y, a: y.index_put_((lib.tensor([0]),), a[:1]),
    "index_fill_": lambda lib, y, a: y.index_fill_(0, lib.tensor([0]), a[0]),
    "put_": lambda lib, y, a: y.put_(lib.tensor([0]), a[:1]),
    "addmv_": lambda lib, y, a: y.addmv_(lib.ones(3, 3), a),
    "set_": lambda lib, y, a: y.set_(a),
    "a tensor-indexed setitem": lambda lib, y, a: y.__setitem__(lib.tensor([0]), a[:1]),
    "a setitem by a batched mask": lambda lib, y, a: y.__setitem__(a > 0, 1.0),
    ".data.add_": lambda lib, y, a: y.data.add_(a),
    "scatter_add_": lambda lib, y, a: y.scatter_add_(0, lib.tensor([0]), a[:1]),
}


def _writes_into_a_factory_tensor(body):
    def case(lib):
        def f(a):
            y = lib.ones(3)
            body(lib, y, a)
            return a * 2

        return lib.func.vmap(f)(lib.tensor(NEGATIVES))

    return case


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_in_place_write_of_a_batched_value_into_an_unbatched_tensor_as_torch(name):
    _same(_writes_into_a_factory_tensor(IN_PLACE[name]))


# ---------------------------------------------------------------- out= inside vmap

OUT_CALLS = {
    "sin into an unbatched out": lambda lib, a: lib.sin(a, out=lib.empty(3)),
    "sin into a batched out": lambda lib, a: lib.sin(a, out=a.clone()),
    "sin of an unbatched tensor into a batched out": lambda lib, a: lib.sin(lib.ones(3), out=a.clone()),
    "sin, nothing batched": lambda lib, a: lib.sin(lib.ones(3), out=lib.empty(3)),
    "sum over a dim": lambda lib, a: lib.sum(a, 0, out=lib.empty(())),
    "add": lambda lib, a: lib.add(a, 1, out=lib.empty(3)),
    "mul": lambda lib, a: lib.mul(a, 2, out=lib.empty(3)),
    "pow, a number exponent": lambda lib, a: lib.pow(a, 2, out=lib.empty(3)),
    "pow, a tensor exponent": lambda lib, a: lib.pow(a, a, out=lib.empty(3)),
    "matmul": lambda lib, a: lib.matmul(lib.ones(3, 3), a, out=lib.empty(3)),
    "cat": lambda lib, a: lib.cat([a, a], out=lib.empty(6)),
    "stack": lambda lib, a: lib.stack([a, a], out=lib.empty(2, 3)),
    "sort": lambda lib, a: lib.sort(a, out=(lib.empty(3), lib.empty(3, dtype=lib.long))),
    "max over a dim": lambda lib, a: lib.max(a, 0, out=(lib.empty(()), lib.empty((), dtype=lib.long))),
    "topk": lambda lib, a: lib.topk(a, 1, out=(lib.empty(1), lib.empty(1, dtype=lib.long))),
    "mean": lambda lib, a: lib.mean(a, 0, out=lib.empty(())),
    "linalg.vector_norm": lambda lib, a: lib.linalg.vector_norm(a, out=lib.empty(())),
    "cumsum": lambda lib, a: lib.cumsum(a, 0, out=lib.empty(3)),
    "maximum": lambda lib, a: lib.maximum(a, a, out=lib.empty(3)),
    "clamp": lambda lib, a: lib.clamp(a, 0, out=lib.empty(3)),
}


@pytest.mark.parametrize("name", sorted(OUT_CALLS))
def test_out_variants_inside_vmap_as_torch(name):
    _same(lambda lib: lib.func.vmap(lambda a: (OUT_CALLS[name](lib, a), a * 2)[1])(lib.tensor(NEGATIVES)))


# ---------------------------------------------------------------- unbatched in-place writes land once

def _writes_once(body, in_dims=0, unmapped=False):
    def case(lib):
        y, count = lib.zeros(3), lib.ones(())

        def f(a, *rest):
            result = body(lib, a, y, count, rest)
            return a * 2 if result is None else result

        result = lib.func.vmap(f, in_dims=in_dims)(*((lib.tensor(NEGATIVES), y) if unmapped else (lib.tensor(NEGATIVES),)))
        return result, y, count

    return case


ONCE = {
    "add_": _writes_once(lambda lib, a, y, c, rest: y.add_(1) and None),
    "a read before the write": _writes_once(lambda lib, a, y, c, rest: (a * y, y.add_(1))[0]),
    "a read after the write": _writes_once(lambda lib, a, y, c, rest: (y.add_(1), a * y)[1]),
    "two writes": _writes_once(lambda lib, a, y, c, rest: (y.add_(1), y.mul_(3)) and None),
    "a view's write": _writes_once(lambda lib, a, y, c, rest: y[0:2].add_(1) and None),
    "y[0] += 1": _writes_once(lambda lib, a, y, c, rest: y.__setitem__(0, y[0] + 1)),
    "a 0-d counter": _writes_once(lambda lib, a, y, c, rest: c.add_(1) and None),
    "an unbatched tensor operand": _writes_once(lambda lib, a, y, c, rest: y.add_(lib.ones(3)) and None),
    "copy_ of a function of itself": _writes_once(lambda lib, a, y, c, rest: y.copy_(y + 1) and None),
    "index_add_": _writes_once(lambda lib, a, y, c, rest: y.index_add_(0, lib.tensor([0]), lib.ones(1)) and None),
    "an unmapped input": _writes_once(lambda lib, a, y, c, rest: rest[0].add_(2) and None, in_dims=(0, None),
                                      unmapped=True),
    "nested vmaps": lambda lib: (lambda y: (lib.func.vmap(lambda a: lib.func.vmap(lambda b: (y.add_(1), b * 2)[1])(a))(
        lib.tensor(NEGATIVES).reshape(2, 3, 1)), y))(lib.zeros(3)),
    "an outer slice written in an inner vmap": lambda lib: lib.func.vmap(
        lambda a: (lambda z: (lib.func.vmap(lambda b: (z.add_(1), b)[1])(lib.ones(2)), z)[1])(a.clone()))(
        lib.tensor(NEGATIVES)),
}


@pytest.mark.parametrize("name", sorted(ONCE))
def test_an_unbatched_in_place_write_inside_vmap_lands_once_as_torch(name):
    _same(ONCE[name])


# ---------------------------------------------------------------- writes into captured tensors inside grad transforms

def _batch_norm_jacobian(transform, train=True, replace=False):
    def case(lib):
        lib.manual_seed(0)
        model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4))
        model.train(train)
        if replace:
            lib.func.replace_all_batch_norm_modules_(model)
        return getattr(lib.func, transform)(model)(lib.tensor(NEGATIVES))

    return case


BATCH_NORM = {
    "jacfwd, training": _batch_norm_jacobian("jacfwd"),
    "jacrev, training": _batch_norm_jacobian("jacrev"),
    "jacfwd, eval": _batch_norm_jacobian("jacfwd", train=False),
    "jacrev, batch norms replaced": _batch_norm_jacobian("jacrev", replace=True),
}


@pytest.mark.parametrize("name", sorted(BATCH_NORM))
def test_jacobians_of_a_model_with_batch_norm_as_torch(name):
    _same(BATCH_NORM[name])


CAPTURED_WRITES = {
    "add_ of a number": lambda lib, y, a: y.add_(1),
    "add_ of the input": lambda lib, y, a: y.add_(a),
    "mul_": lambda lib, y, a: y.mul_(2),
    "copy_": lambda lib, y, a: y.copy_(a),
    "fill_": lambda lib, y, a: y.fill_(1.0),
    "zero_": lambda lib, y, a: y.zero_(),
    "setitem": lambda lib, y, a: y.__setitem__(0, 1.0),
    "exp_": lambda lib, y, a: y.exp_(),
    "pow_": lambda lib, y, a: y.pow_(2),
    "masked_fill_": lambda lib, y, a: y.masked_fill_(y > 0, 1.0),
    "index_add_": lambda lib, y, a: y.index_add_(0, lib.tensor([0]), lib.ones(1)),
    "+=": lambda lib, y, a: y.__iadd__(1),
    "a view's add_": lambda lib, y, a: y[0:2].add_(1),
    ".data.add_": lambda lib, y, a: y.data.add_(1),
    ".detach().add_": lambda lib, y, a: y.detach().add_(1),
    "a tensor made inside": lambda lib, y, a: lib.zeros(3).add_(1),
}


def _captured_write(transform, body):
    def case(lib):
        y, x = lib.zeros(3), lib.tensor(NEGATIVES[0])

        def f(a):
            body(lib, y, a)
            return (a * 2).sum()

        if transform == "jvp":
            result = lib.func.jvp(f, (x,), (x,))
        elif transform == "vjp":
            result = lib.func.vjp(f, x)[0]
        else:
            result = getattr(lib.func, transform)(f)(x)
        return result, y

    return case


@pytest.mark.parametrize("name", sorted(CAPTURED_WRITES))
def test_writing_a_captured_tensor_inside_grad_as_torch(name):
    _same(_captured_write("grad", CAPTURED_WRITES[name]))


@pytest.mark.parametrize("transform", ["vjp", "jvp", "jacrev", "jacfwd"])
@pytest.mark.parametrize("name", ["add_ of a number", "setitem", ".detach().add_", "a tensor made inside"])
def test_writing_a_captured_tensor_inside_the_other_transforms_as_torch(name, transform):
    _same(_captured_write(transform, CAPTURED_WRITES[name]))
