"""Fast paths taken where corpus programs were slow (session 43, lane perfU), each checked against
torch 2.13: what the fast path writes, and every rule of the general path it must keep (version
counters, views and their bases, grad-mode refusals, recorded nodes, errors).

* the unary in-place call that records nothing (c51_rainbow's noisy layers' ``x.abs().sqrt_()``,
  and ``reciprocal_``, ``floor_``, ``ceil_``, ``trunc_``) on a float32/float64 tensor: the op's own
  correctly rounded NumPy ufunc written into self's array, instead of running the out-of-place op
  and copying its result.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

UNARY_INPLACE = ["sqrt_", "reciprocal_", "floor_", "ceil_", "trunc_"]
SHAPES = [(64,), (5, 7), ()]


def _values(shape, dtype, seed, special):
    values = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)
    if special and values.size >= 8:  # NaN, infinities, signed zeros, tiny and huge values
        values.reshape(-1)[:8] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, 1e30, -2.5]
    return values


def _written(module, name, array, requires_grad, under_no_grad):
    target = module.tensor(array.copy())
    if requires_grad:
        target.requires_grad_(True)
    if under_no_grad:
        with module.no_grad():
            returned = getattr(target, name)()
    else:
        returned = getattr(target, name)()
    return (returned is target, target.detach().numpy().copy(), target._version, target.requires_grad,
            target.grad_fn)


@pytest.mark.parametrize("name", UNARY_INPLACE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("special", [False, True], ids=["finite", "special"])
@pytest.mark.parametrize("requires_grad, under_no_grad", [(True, True), (False, True), (False, False)],
                         ids=["leaf_no_grad", "plain_no_grad", "plain_grad_mode"])
def test_unrecorded_unary_inplace_as_torch(name, dtype, shape, special, requires_grad, under_no_grad):
    array = _values(shape, dtype, 0, special)
    ours = _written(chainrule, name, array, requires_grad, under_no_grad)
    theirs = _written(torch, name, array, requires_grad, under_no_grad)
    assert ours[0] and theirs[0]
    assert ours[1].dtype == theirs[1].dtype == dtype and ours[1].shape == theirs[1].shape
    nan = np.isnan(theirs[1])
    assert (np.isnan(ours[1]) == nan).all()
    if name == "sqrt_" and dtype == np.float32:
        # torch's float32 sqrt is an ulp off the correctly rounded value (NumPy's, chainrule's sqrt's)
        # in about one value of five: as chainrule's out-of-place sqrt, within that ulp
        np.testing.assert_allclose(ours[1][~nan], theirs[1][~nan], rtol=1.2e-7, atol=0)
    else:
        assert ours[1][~nan].tobytes() == theirs[1][~nan].tobytes()  # bitwise, -0.0 included
    # bitwise the out-of-place op's values (a NaN's sign bit included), which the general path wrote
    assert ours[1].tobytes() == getattr(chainrule, name[:-1])(chainrule.tensor(array)).numpy().tobytes()
    assert ours[2:4] == theirs[2:4]  # version and requires_grad
    assert ours[4] is None and theirs[4] is None


@pytest.mark.parametrize("name", UNARY_INPLACE)
def test_unrecorded_unary_inplace_bumps_the_version_its_views_share(name):
    results = []
    for module in (torch, chainrule):
        base = module.tensor(np.abs(_values((4, 6), np.float32, 0, False)) + 0.5)
        view = base.view(24)
        with module.no_grad():
            getattr(base, name)()
            getattr(view, name)()
        results.append((base._version, view._version, base.numpy().copy()))
    assert results[0][:2] == results[1][:2] == (2, 2)
    np.testing.assert_allclose(results[1][2], results[0][2], rtol=1.2e-7, atol=0)  # (sqrt's ulp: see above)


def test_unrecorded_sqrt_on_a_view_under_no_grad_writes_the_base():
    results = []
    for module in (torch, chainrule):
        leaf = module.tensor(np.abs(_values((8,), np.float32, 0, False)), requires_grad=True)
        with module.no_grad():
            view = leaf[2:6]
            view.sqrt_()
        results.append((leaf.detach().numpy().copy(), leaf._version, view._version, leaf.requires_grad))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1.2e-7, atol=0)  # (sqrt's ulp: see above)
    assert results[0][1:] == results[1][1:] == (1, 1, True)


def test_c51_scale_noise_as_torch():
    # c51_rainbow's factorised noise: x.sign().mul_(x.abs().sqrt_())
    x = _values((64,), np.float32, 3, False)
    ours = chainrule.tensor(x)
    ours = ours.sign().mul_(ours.abs().sqrt_()).numpy()
    theirs = torch.tensor(x)
    theirs = theirs.sign().mul_(theirs.abs().sqrt_()).numpy()
    assert ours.tobytes() == (np.sign(x) * np.sqrt(np.abs(x))).tobytes()
    np.testing.assert_allclose(ours, theirs, rtol=1.2e-7, atol=0)


@pytest.mark.parametrize("name, node", [("sqrt_", "SqrtBackward0"), ("reciprocal_", "ReciprocalBackward0"),
                                        ("floor_", "FloorBackward0")])
def test_recorded_unary_inplace_keeps_torch_graph(name, node):
    # a non-leaf that requires grad under grad mode: the general path records torch's node
    grads, values = [], []
    for module in (torch, chainrule):
        leaf = module.tensor(np.abs(_values((5,), np.float32, 0, False)) + 0.5, requires_grad=True)
        target = leaf * 2
        assert getattr(target, name)() is target
        assert target.grad_fn.name() == node and target._version == 1
        (target * module.arange(5.0)).sum().backward()
        grads.append(leaf.grad.numpy().copy())
        values.append(target.detach().numpy().tobytes())
    assert values[0] == values[1]
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


def _refusal(module, call):
    try:
        call(module)
    except Exception as error:  # noqa: BLE001 (the class is what is compared)
        return type(error), str(error)
    return None


def _inference_ones(module):
    with module.inference_mode():
        return module.ones(3)


REFUSED_CALLS = [
    ("leaf_in_grad_mode", lambda m: m.ones(3, requires_grad=True).sqrt_()),
    ("leaf_reciprocal_in_grad_mode", lambda m: m.ones(3, requires_grad=True).reciprocal_()),
    ("integer_sqrt", lambda m: m.ones(3, dtype=m.int64).sqrt_()),
    ("integer_reciprocal", lambda m: m.ones(3, dtype=m.int32).reciprocal_()),
    ("an_argument", lambda m: m.ones(3).sqrt_(2)),
    ("inference_tensor_outside", lambda m: _inference_ones(m).sqrt_()),
    ("saved_input_overwritten", lambda m: _sqrt_of_saved(m)),
]


def _sqrt_of_saved(module):
    leaf = module.ones(3, requires_grad=True)
    hidden = leaf * 2
    product = hidden * hidden  # saves hidden
    with module.no_grad():
        hidden.sqrt_()
    product.sum().backward()


@pytest.mark.parametrize("name, call", REFUSED_CALLS, ids=[name for name, _ in REFUSED_CALLS])
def test_refusals_as_torch(name, call):
    theirs = _refusal(torch, call)
    assert theirs is not None
    assert _refusal(chainrule, call) == theirs


def test_integer_floor_keeps_its_values_as_torch():
    # floor_/ceil_/trunc_ of an integer tensor (no float array to write into) take the general path
    for name in ("floor_", "ceil_", "trunc_"):
        results = []
        for module in (torch, chainrule):
            target = module.tensor([-3, 0, 7])
            getattr(target, name)()
            results.append((target.tolist(), str(target.dtype).rpartition(".")[2], target._version))
        assert results[0] == results[1]

