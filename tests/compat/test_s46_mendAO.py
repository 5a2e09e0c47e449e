"""s46 mendAO: what a TorchDispatchMode sees, continued from mendAI/mendAK. copy_, fill_ and zero_ reach a
mode as torch's one aten op (not as where/filled), as do nn.init's ones_/zeros_ (fill_.Scalar, zero_),
nn.LayerNorm's affine op (native_layer_norm with weight and bias), masked_fill_/clamp_ under torch's
overloads, and addmm with beta/alpha (torch's addmm.default with them as kwargs, not mm + mul + add).
The overload caches hold their functions weakly: a function made afresh at each call (fill_diagonal_'s)
no longer grows them under a long-running mode. Each case runs mendAI's logging mode under torch and
chainrule and compares the lines."""

import gc

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.autograd import function as _function  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402
from tests.compat.test_s45_mendAI import F, _inputs, _logged, _mode_class  # noqa: E402

CASES = {
    "copy_": lambda lib, a: lib.zeros(2, 3).copy_(a["x"]),
    "copy_broadcast": lambda lib, a: lib.zeros(2, 3).copy_(a["bias"]),
    "copy_into_another_dtype": lambda lib, a: lib.zeros(2, 3, dtype=lib.float64).copy_(a["x"]),
    "copy_non_blocking": lambda lib, a: lib.zeros(2, 3).copy_(a["x"], non_blocking=True),
    "fill_": lambda lib, a: a["x"].clone().fill_(2.0),
    "fill_int": lambda lib, a: a["x"].clone().fill_(2),
    "fill_tensor": lambda lib, a: a["x"].clone().fill_(lib.tensor(2.0)),
    "zero_": lambda lib, a: a["x"].clone().zero_(),
    "zero_of_a_view": lambda lib, a: a["x"].clone()[0].zero_(),
    "layer_norm_module": lambda lib, a: lib.nn.LayerNorm(3)(a["x"]),
    "layer_norm_affine": lambda lib, a: F(lib).layer_norm(a["x3"], (4,), a["lb"], a["lb"] * 2),
    "init_ones_zeros": lambda lib, a: (lib.nn.init.ones_(lib.empty(3)), lib.nn.init.zeros_(lib.empty(2)),
                                       lib.nn.init.constant_(lib.empty(2), 0.5)),
    "masked_fill_scalar": lambda lib, a: a["x"].clone().masked_fill_(a["x"] > 0, 1.0),
    "masked_fill_tensor": lambda lib, a: a["x"].clone().masked_fill_(a["x"] > 0, lib.tensor(1.0)),
    "clamp_": lambda lib, a: a["x"].clone().clamp_(-0.5, 0.5),
    "clamp_min_keyword": lambda lib, a: a["x"].clone().clamp_(min=0),
    "clamp_max_keyword": lambda lib, a: a["x"].clone().clamp_(max=0),
    "clamp_tensor_bound": lambda lib, a: a["x"].clone().clamp_(min=a["bias"]),
    "clamp_tensor_max": lambda lib, a: a["x"].clone().clamp_(max=a["bias"]),
    "add_alpha_": lambda lib, a: a["x"].clone().add_(a["y"], alpha=2),
    "addmm_alpha": lambda lib, a: lib.addmm(a["lb"], a["x"], a["lw"].t(), alpha=2),
    "addmm_beta_alpha": lambda lib, a: lib.addmm(a["lb"], a["x"], a["lw"].t(), beta=0.5, alpha=2),
    "addmm_beta_zero": lambda lib, a: lib.addmm(a["lb"], a["x"], a["lw"].t(), beta=0),
    "addmm_unscaled": lambda lib, a: lib.addmm(a["lb"], a["x"], a["lw"].t(), beta=1, alpha=1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_mode_sees_the_write_as_torch_shows_it(name):
    assert _logged(chainrule, CASES[name]) == _logged(real_torch, CASES[name])


def _passing(lib, program):
    """``program``'s value and its inputs' gradients, run under a mode that calls func with what it got."""
    class Pass(_mode_class(lib)):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    lib.manual_seed(0)
    inputs = _inputs(lib)
    leaves = [inputs[k].requires_grad_(True) for k in ("x", "lw", "lb")]
    with Pass():
        out = program(lib, inputs)
    out.backward()
    return out.detach().numpy(), [None if leaf.grad is None else leaf.grad.numpy() for leaf in leaves]


GRADIENTS = {
    "copy_into_a_buffer": lambda lib, a: (lib.zeros(2, 3).copy_(a["x"] * 2) * a["lb"][:3]).sum(),
    "fill_tensor": lambda lib, a: (a["x"] * 1).fill_(a["lb"].sum()).sum() + a["lw"].sum(),
    "zero_then_add": lambda lib, a: ((a["x"] * 2).zero_() + a["x"]).sum() + (a["lw"] * a["lb"][:, None]).sum(),
    "addmm_scaled": lambda lib, a: lib.addmm(a["lb"], a["x"], a["lw"].t(), beta=0.5, alpha=2).softmax(-1)[:, 0].sum(),
    "layer_norm_module": lambda lib, a: (lib.nn.LayerNorm(3)(a["x"]) * a["lw"][:2, :]).sum() + a["lb"].sum(),
}


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_a_passing_mode_keeps_values_and_gradients(name):
    (ours, our_grads), (theirs, their_grads) = _passing(chainrule, GRADIENTS[name]), _passing(real_torch, GRADIENTS[name])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    for got, expected in zip(our_grads, their_grads):
        assert (got is None) == (expected is None)
        if got is not None:
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _editing(lib, name, edit, program):
    class Edit(_mode_class(lib)):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            args, kwargs = list(args), dict(kwargs or {})
            if str(func) == name:
                seen.append(name)
                edit(lib, args, kwargs)
            return func(*args, **kwargs)

    seen = []
    inputs = _inputs(lib)
    with Edit():
        out = program(lib, inputs)
    assert seen == [name]
    return out.detach().numpy()


EDITS = {
    "addmm_alpha": ("aten.addmm.default", lambda lib, args, kwargs: kwargs.update(alpha=3),
                    lambda lib, a: lib.addmm(a["lb"], a["x"], a["lw"].t(), beta=0.5, alpha=2)),
    "copy_source": ("aten.copy_.default", lambda lib, args, kwargs: args.__setitem__(1, args[1] * 0 + 7),
                    lambda lib, a: lib.zeros(2, 3).copy_(a["x"])),
    "fill_value": ("aten.fill_.Scalar", lambda lib, args, kwargs: args.__setitem__(1, -1.5),
                   lambda lib, a: a["x"].clone().fill_(2.0)),
    "clamp_bound": ("aten.clamp_.default", lambda lib, args, kwargs: args.__setitem__(1, 0.25),
                    lambda lib, a: a["x"].clone().clamp_(min=0)),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_handler_that_changes_an_argument_gets_what_it_asked_for(name):
    op, edit, program = EDITS[name]
    np.testing.assert_allclose(_editing(chainrule, op, edit, program), _editing(real_torch, op, edit, program),
                               rtol=1e-5, atol=1e-6)


def test_a_copy_seen_by_the_outer_of_two_modes_reaches_it_once():
    lines = []

    def logging(tag):
        class Log(_python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                lines.append(f"{tag} {func}")
                return func(*args, **(kwargs or {}))
        return Log()

    target, source = chainrule.zeros(2, 3), chainrule.ones(2, 3)
    with logging("outer"), logging("inner"):
        target.copy_(source)
        target.zero_()
    assert lines == ["inner aten.copy_.default", "outer aten.copy_.default",
                     "inner aten.zero_.default", "outer aten.zero_.default"]
    assert target.sum().item() == 0


class _Pass(_python_dispatch.TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def _entries(cache) -> int:
    return sum(len(kept) for kept in cache.values())


def test_a_function_made_afresh_at_each_call_does_not_grow_the_factory_cache():
    def made_for_one_call():
        def make(*args):
            return chainrule.zeros(2)
        return make

    with _Pass():
        _function.factory_dispatch("zeros", made_for_one_call(), ([2],), {})
        gc.collect()
        before = _entries(_python_dispatch._factory_overloads)
        for _ in range(50):
            made = _function.factory_dispatch("zeros", made_for_one_call(), ([2],), {})
        gc.collect()
    assert made.shape == (2,)
    assert _entries(_python_dispatch._factory_overloads) == before


def test_an_in_place_function_made_afresh_at_each_call_does_not_grow_the_in_place_cache():
    target = chainrule.zeros(3)

    def made_for_one_call():
        def added(t):
            return t + 1
        return added

    def run(t, function, *args, **kwargs):
        t._data[...] = function(t, *args, **kwargs)._data
        return t

    with _Pass():
        _function.inplace_dispatch(made_for_one_call(), target, (), {}, run)
        gc.collect()
        before = _entries(_python_dispatch._inplace_overloads)
        for _ in range(50):
            _function.inplace_dispatch(made_for_one_call(), target, (), {}, run)
        gc.collect()
    assert _entries(_python_dispatch._inplace_overloads) == before
    np.testing.assert_array_equal(target.numpy(), np.full(3, 51.0, dtype=np.float32))


def test_fill_diagonal_under_a_mode_keeps_the_caches_and_its_values():
    x = chainrule.zeros(3, 3)
    with _Pass():
        x.fill_diagonal_(1.0)
        gc.collect()
        before = _entries(_python_dispatch._inplace_overloads) + _entries(_python_dispatch._factory_overloads)
        for _ in range(30):
            x.fill_diagonal_(2.0)
        gc.collect()
    after = _entries(_python_dispatch._inplace_overloads) + _entries(_python_dispatch._factory_overloads)
    assert after == before
    np.testing.assert_array_equal(x.numpy(), 2 * np.eye(3, dtype=np.float32))
