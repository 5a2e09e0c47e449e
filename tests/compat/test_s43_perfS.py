"""Fast paths taken where corpus programs were slow (session 43, lane perfS), each checked against
torch 2.13: what the fast path writes, and every rule of the general path it must keep (version
counters, views and their bases, grad-mode refusals, recorded nodes, errors).

* the common in-place call (``p.add_(g, alpha=-lr)``, ``t.mul_(0.5)``, ``t.clamp_(-1, 1)``,
  ``m.lerp_(g, 0.1)``, ``v.addcmul_(g, g, value=0.001)``, ``t.zero_()``, ``t.fill_(1.0)``) of one
  dtype and shape that records nothing: written straight into self's array with the NumPy calls the
  out-of-place op's forward makes, instead of running that op and copying its result.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# (name, call): each takes the module (torch or chainrule), self and two operands of self's shape
INPLACE_CALLS = [
    ("add_alpha", lambda t, a, b: t.add_(a, alpha=-0.1)),
    ("add_int_alpha", lambda t, a, b: t.add_(a, alpha=3)),
    ("add", lambda t, a, b: t.add_(a)),
    ("add_number", lambda t, a, b: t.add_(1e-8)),
    ("mul_number", lambda t, a, b: t.mul_(0.9)),
    ("mul_int", lambda t, a, b: t.mul_(3)),
    ("mul_tensor", lambda t, a, b: t.mul_(a)),
    ("clamp", lambda t, a, b: t.clamp_(-1, 1)),
    ("clamp_min", lambda t, a, b: t.clamp_(min=0.1)),
    ("clamp_max", lambda t, a, b: t.clamp_(max=-0.3)),
    ("clamp_crossed", lambda t, a, b: t.clamp_(2, 1)),
    ("lerp_near_self", lambda t, a, b: t.lerp_(a, 0.01)),
    ("lerp_near_end", lambda t, a, b: t.lerp_(a, 0.9)),
    ("addcmul", lambda t, a, b: t.addcmul_(a, b, value=0.1)),
    ("addcmul_square", lambda t, a, b: t.addcmul_(a, a)),
    ("zero", lambda t, a, b: t.zero_()),
    ("fill", lambda t, a, b: t.fill_(1 / 3)),
    ("fill_int", lambda t, a, b: t.fill_(7)),
    ("self_operand", lambda t, a, b: t.add_(t, alpha=0.5)),
    ("self_factors", lambda t, a, b: t.addcmul_(t, t, value=0.5)),
]
# float64 calls whose values torch rounds otherwise (its float64 kernels fuse the multiply-add):
# checked against chainrule's own out-of-place op instead
FLOAT64_ROUNDED_OTHERWISE = {"add_alpha", "add_int_alpha", "lerp_near_end", "addcmul", "addcmul_square",
                             "self_operand", "self_factors"}
OUT_OF_PLACE = {
    "add_alpha": lambda m, t, a, b: m.add(t, a, alpha=-0.1),
    "add_int_alpha": lambda m, t, a, b: m.add(t, a, alpha=3),
    "lerp_near_end": lambda m, t, a, b: m.lerp(t, a, 0.9),
    "addcmul": lambda m, t, a, b: m.addcmul(t, a, b, value=0.1),
    "addcmul_square": lambda m, t, a, b: m.addcmul(t, a, a),
    "self_operand": lambda m, t, a, b: m.add(t, t, alpha=0.5),
    "self_factors": lambda m, t, a, b: m.addcmul(t, t, t, value=0.5),
}
SHAPES = [(64,), (84,), (64, 84), ()]


def _values(shape, dtype, seed, special):
    values = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)
    if special and values.size >= 6:  # NaN, infinities, signed zeros and a value past float32's range
        values.reshape(-1)[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30]
    return values


def _written(module, call, arrays, requires_grad, under_no_grad):
    target, first, second = (module.tensor(array.copy()) for array in arrays)
    if requires_grad:
        target.requires_grad_(True)
    if under_no_grad:
        with module.no_grad():
            returned = call(target, first, second)
    else:
        returned = call(target, first, second)
    return returned is target, target.detach().numpy().copy(), target._version, target.requires_grad, target.grad_fn


@pytest.mark.parametrize("name, call", INPLACE_CALLS, ids=[name for name, _ in INPLACE_CALLS])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("special", [False, True], ids=["finite", "special"])
@pytest.mark.parametrize("requires_grad, under_no_grad", [(True, True), (False, True), (False, False)],
                         ids=["leaf_no_grad", "plain_no_grad", "plain_grad_mode"])
@pytest.mark.pairwise_in_ci(seed=61)
def test_unrecorded_inplace_float32_as_torch(name, call, shape, special, requires_grad, under_no_grad):
    arrays = [_values(shape, np.float32, seed, special) for seed in range(3)]
    ours = _written(chainrule, call, arrays, requires_grad, under_no_grad)
    theirs = _written(torch, call, arrays, requires_grad, under_no_grad)
    assert ours[0] and theirs[0]
    assert ours[1].dtype == theirs[1].dtype == np.float32
    assert ours[1].tobytes() == theirs[1].tobytes()  # bitwise, NaN and -0.0 included
    assert ours[2:4] == theirs[2:4]  # version and requires_grad
    assert ours[4] is None and theirs[4] is None


@pytest.mark.parametrize("name, call", INPLACE_CALLS, ids=[name for name, _ in INPLACE_CALLS])
@pytest.mark.parametrize("special", [False, True], ids=["finite", "special"])
def test_unrecorded_inplace_float64(name, call, special):
    arrays = [_values((64, 84), np.float64, seed, special) for seed in range(3)]
    ours = _written(chainrule, call, arrays, True, True)
    if name in FLOAT64_ROUNDED_OTHERWISE:
        expected = OUT_OF_PLACE[name](chainrule, *(chainrule.tensor(a) for a in arrays)).numpy()
        reference = _written(torch, call, arrays, True, True)
        np.testing.assert_allclose(ours[1], reference[1], rtol=1e-13, atol=1e-14)
    else:
        expected = _written(torch, call, arrays, True, True)[1]
    assert ours[1].dtype == np.float64
    assert ours[1].tobytes() == expected.tobytes()
    assert ours[2] == 1


@pytest.mark.parametrize("name, call", INPLACE_CALLS, ids=[name for name, _ in INPLACE_CALLS])
def test_unrecorded_inplace_bumps_the_version_its_views_share(name, call):
    results = []
    for module in (torch, chainrule):
        base = module.tensor(_values((4, 6), np.float32, 0, False))
        first, second = (module.tensor(_values((4, 6), np.float32, seed, False)) for seed in (1, 2))
        view = base.view(24)
        with module.no_grad():
            call(base, first, second)
            call(base, first, second)
        results.append((base._version, view._version, view.numpy().copy()))
    assert results[0][:2] == results[1][:2] == (2, 2)
    assert results[0][2].tobytes() == results[1][2].tobytes()


def test_unrecorded_inplace_on_a_view_under_no_grad_writes_the_base():
    results = []
    for module in (torch, chainrule):
        leaf = module.tensor(_values((8,), np.float32, 0, False), requires_grad=True)
        with module.no_grad():
            view = leaf[2:6]
            view.add_(module.ones(4), alpha=0.25)
            view.clamp_(-0.5, 0.5)
        results.append((leaf.detach().numpy().copy(), leaf._version, view._version))
    assert results[0][0].tobytes() == results[1][0].tobytes()
    assert results[0][1:] == results[1][1:] == (2, 2)


def test_recorded_inplace_keeps_torch_graph():
    # an operand that requires grad under grad mode: the general path records torch's node
    for call, node in [(lambda t, g: t.add_(g, alpha=-0.1), "AddBackward0"), (lambda t, g: t.mul_(g), "MulBackward0"),
                       (lambda t, g: t.lerp_(g, 0.3), "LerpBackward0"),
                       (lambda t, g: t.addcmul_(g, g, value=0.5), "AddcmulBackward0")]:
        grads = []
        for module in (torch, chainrule):
            target = module.tensor(_values((5,), np.float32, 0, False))
            operand = module.tensor(_values((5,), np.float32, 1, False), requires_grad=True)
            call(target, operand)
            assert target.grad_fn.name() == node and target.requires_grad
            target.sum().backward()
            grads.append(operand.grad.numpy())
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


def _refusal(module, call):
    try:
        call(module)
    except Exception as error:  # noqa: BLE001 (the class is what is compared)
        return type(error), str(error)
    return None


REFUSED_CALLS = [
    ("leaf_in_grad_mode", lambda m: m.ones(3, requires_grad=True).add_(m.ones(3), alpha=2)),
    ("leaf_clamp_in_grad_mode", lambda m: m.ones(3, requires_grad=True).clamp_(-1, 1)),
    ("leaf_zero_in_grad_mode", lambda m: m.ones(3, requires_grad=True).zero_()),
    ("leaf_fill_in_grad_mode", lambda m: m.ones(3, requires_grad=True).fill_(2.0)),
    ("integer_times_float", lambda m: m.ones(3, dtype=m.int64).mul_(0.5)),
    ("integer_clamped_at_float", lambda m: m.ones(3, dtype=m.int64).clamp_(0.5, 1.5)),
    ("float_alpha_into_integers", lambda m: m.ones(3, dtype=m.int64).add_(m.ones(3, dtype=m.int64), alpha=0.5)),
    ("bool_alpha", lambda m: m.ones(3).add_(m.ones(3), alpha=True)),
    ("no_bounds", lambda m: m.ones(3).clamp_()),
    ("lerp_end_of_another_dtype", lambda m: m.ones(3).lerp_(m.ones(3, dtype=m.float64), 0.5)),
    ("shape_grows", lambda m: m.ones(3).add_(m.ones(2, 3))),
    ("shapes_differ", lambda m: m.ones(3).mul_(m.ones(4))),
    ("fill_overflows", lambda m: m.ones(3).fill_(1e40)),
    ("alpha_overflows", lambda m: m.ones(3).add_(m.ones(3), alpha=1e40)),
    ("weight_overflows", lambda m: m.ones(3).lerp_(m.ones(3), 1e40)),
    ("inference_tensor_outside", lambda m: _inference_ones(m).mul_(2.0)),
    ("inference_tensor_zeroed_outside", lambda m: _inference_ones(m).zero_()),
]


def _inference_ones(module):
    with module.inference_mode():
        return module.ones(3)


@pytest.mark.parametrize("name, call", REFUSED_CALLS, ids=[name for name, _ in REFUSED_CALLS])
def test_refusals_as_torch(name, call):
    theirs = _refusal(torch, call)
    assert theirs is not None
    assert _refusal(chainrule, call) == theirs


def test_promoting_operands_take_the_general_path_as_torch():
    # a float64 operand into float32 self, a broadcast operand, a float16 self: values as torch's
    cases = [(lambda m: m.tensor(_values((4, 3), np.float32, 0, False)), lambda t, m: t.add_(
                 m.tensor(_values((4, 3), np.float64, 1, False)), alpha=0.3)),
             (lambda m: m.tensor(_values((4, 3), np.float32, 0, False)), lambda t, m: t.mul_(
                 m.tensor(_values((3,), np.float32, 1, False)))),
             (lambda m: m.tensor(_values((4, 3), np.float16, 0, False)), lambda t, m: t.clamp_(-1, 1)),
             (lambda m: m.tensor(_values((4, 3), np.float32, 0, False)), lambda t, m: t.fill_(m.tensor(2.5)))]
    for make, call in cases:
        written = []
        for module in (torch, chainrule):
            target = make(module)
            with module.no_grad():
                call(target, module)
            written.append((target.numpy().copy(), target._version))
        assert written[0][0].tobytes() == written[1][0].tobytes()
        assert written[0][1] == written[1][1]
