"""s45 perfAA: the small-tensor shortcuts keep torch's values, graphs and streams.

``outer``/``ger`` of two plain tensors records reshape's view and ``Mul`` straight away (no public
reshape and mul dispatched inside); a generator's ``get_state`` tests a fresh key against the last
seed's key bytes kept, and reads the engine's state through one view per stream; the rejection
samplers' ``DoubleCursor`` saves and restores the engine's state memory, not the ``.state`` dict.
Each case runs on torch and on chainrule and compares."""

import copy
import pickle

import numpy as np
import pytest
import torch as real_torch

import chainrule
from chainrule.utils import _python_dispatch

LIBS = (real_torch, chainrule)


def _graph(node):
    if node is None:
        return None
    return (node.name(), tuple(_graph(child) for child, _ in node.next_functions))


@pytest.mark.parametrize("method", ["outer", "ger"])
@pytest.mark.parametrize("dtypes", [("float32", "float32"), ("float64", "float64"), ("float32", "float64"),
                                    ("int64", "float32"), ("int64", "int64")])
@pytest.mark.parametrize("grads", [(True, True), (True, False), (False, True), (False, False)])
def test_outer_values_graph_and_gradients_as_torch(method, dtypes, grads):
    results = []
    for lib in LIBS:
        a = lib.tensor(np.linspace(-1.5, 2.0, 5), dtype=getattr(lib, dtypes[0]))
        b = lib.tensor(np.linspace(0.5, -3.0, 4), dtype=getattr(lib, dtypes[1]))
        floating = (a.is_floating_point(), b.is_floating_point())
        a.requires_grad_(grads[0] and floating[0])
        b.requires_grad_(grads[1] and floating[1])
        out = getattr(a, method)(b)
        grads_out = None
        if out.requires_grad:
            weight = lib.arange(out.numel(), dtype=out.dtype).reshape(out.shape)
            (out * weight).sum().backward()
            grads_out = [None if t.grad is None else t.grad.numpy().copy() for t in (a, b)]
        results.append((out.detach().numpy(), str(out.dtype).split(".")[-1], tuple(out.shape), out.stride(),
                        out.is_contiguous(), _graph(out.grad_fn), grads_out))
    expected, got = results
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1:5] == expected[1:5]
    if dtypes[0] == dtypes[1]:  # (a mixed pair's mul records a ToCopyBackward0 cast in chainrule: _pair's, any binary op's)
        assert got[5] == expected[5]
    if expected[6] is None:
        assert got[6] is None
    else:
        for mine, theirs in zip(got[6], expected[6]):
            assert (mine is None) == (theirs is None)
            if theirs is not None:
                np.testing.assert_allclose(mine, theirs, rtol=1e-6)


def test_outer_of_strided_vectors_and_views_as_torch():
    results = []
    for lib in LIBS:
        base = lib.arange(12.0, requires_grad=True)
        a, b = base[::3], base[1::2]
        out = lib.outer(a, b)
        out.sum().backward()
        results.append((out.detach().numpy(), out.stride(), _graph(out.grad_fn), base.grad.numpy()))
        c = lib.arange(4.0)
        view = lib.outer(c, c)
        c.add_(1)  # the result is new memory, not a view of c
        results.append(view.numpy())
    np.testing.assert_array_equal(results[2][0], results[0][0])
    assert results[2][1:3] == results[0][1:3]
    np.testing.assert_array_equal(results[2][3], results[0][3])
    np.testing.assert_array_equal(results[3], results[1])


def test_outer_double_backward_and_gradcheck():
    a = chainrule.randn(3, dtype=chainrule.float64, requires_grad=True)
    b = chainrule.randn(4, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.outer, (a, b))
    assert chainrule.autograd.gradgradcheck(chainrule.ger, (a, b))


def test_outer_errors_as_torch():
    for args in ((2, 3), (3,)), ((3,), (2, 2)):
        messages = []
        for lib in LIBS:
            with pytest.raises(RuntimeError) as caught:
                lib.ones(*args[0]).outer(lib.ones(*args[1]))
            messages.append(str(caught.value))
        assert messages[1] == messages[0]


def test_outer_under_a_function_mode_and_a_subclass():
    seen = []

    class Recording(chainrule.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    a, b = chainrule.arange(3.0), chainrule.arange(4.0)
    with Recording():
        out = chainrule.outer(a, b)
    assert seen[0] == "outer"
    np.testing.assert_array_equal(out.numpy(), np.outer(np.arange(3.0), np.arange(4.0)))

    class Sub(chainrule.Tensor):
        pass

    sub = a.as_subclass(Sub)
    product = sub.ger(b)
    assert type(product) is Sub
    np.testing.assert_array_equal(product.numpy(), np.outer(np.arange(3.0), np.arange(4.0)))


def test_outer_under_a_dispatch_mode_sees_torchs_aten_calls():
    calls = []
    for lib in LIBS:
        if lib is real_torch:
            from torch.utils._python_dispatch import TorchDispatchMode
        else:
            TorchDispatchMode = _python_dispatch.TorchDispatchMode

        class Recording(TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self.seen = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.seen.append(str(func.overloadpacket).split(".")[-1])
                return func(*args, **(kwargs or {}))

        a, b = lib.arange(3.0, requires_grad=True), lib.arange(4.0)
        with Recording() as mode:
            lib.outer(a, b)
        calls.append(mode.seen)
    assert calls[1] == calls[0]


def _state(generator):
    return generator.get_state().numpy().tobytes()


def test_get_state_as_torch_fresh_seeded_drawn_and_twisted():
    generators = [lib.Generator() for lib in LIBS]
    assert _state(generators[1]) == _state(generators[0])
    assert _state(generators[1]) == _state(generators[0])  # asked again: the kept key bytes
    for seed in (5, 7, 5, 2**40 + 5):  # another seed, then the first again, then one of the same low bits
        for generator in generators:
            generator.manual_seed(seed)
        assert _state(generators[1]) == _state(generators[0])
        for count in (1, 623, 624):  # 1 + 623 words: the position back at 624 on a twisted key
            for lib, generator in zip(LIBS, generators):
                lib.randint(0, 10, (count,), generator=generator)
            assert _state(generators[1]) == _state(generators[0])
    fresh = [lib.Generator().manual_seed(11) for lib in LIBS]
    other = [lib.Generator().manual_seed(12) for lib in LIBS]
    for _ in range(2):  # two fresh generators of different seeds asked in turn
        assert _state(fresh[1]) == _state(fresh[0])
        assert _state(other[1]) == _state(other[0])


def test_set_state_then_get_state_and_draws_as_torch():
    states = []
    for lib in LIBS:
        generator = lib.Generator().manual_seed(3)
        saved = generator.get_state()
        first = lib.randn(40, generator=generator)
        generator.set_state(saved)
        again = lib.randn(40, generator=generator)
        states.append((first.numpy(), again.numpy(), _state(generator)))
    np.testing.assert_array_equal(states[1][0], states[0][0])
    np.testing.assert_array_equal(states[1][1], states[0][1])
    assert states[1][2] == states[0][2]


def test_a_copied_or_pickled_generator_reads_its_own_state():
    generator = chainrule.Generator().manual_seed(4)
    generator.get_state()  # the stream's state view made
    chainrule.rand(5, generator=generator)
    for twin in (copy.deepcopy(generator), pickle.loads(pickle.dumps(generator))):
        assert _state(twin) == _state(generator)
        np.testing.assert_array_equal(chainrule.rand(7, generator=twin).numpy(),
                                      chainrule.rand(7, generator=copy.deepcopy(generator)).numpy())
        chainrule.rand(3, generator=twin)
        assert _state(twin) != _state(generator)


@pytest.mark.parametrize("sampler", ["poisson", "binomial", "gamma", "dirichlet"])
def test_rejection_samplers_leave_the_stream_as_torch(sampler):
    results = []
    for lib in LIBS:
        generator = lib.Generator().manual_seed(21)
        rates = lib.tensor([0.5, 3.0, 12.0, 40.0, 150.0], dtype=lib.float64)
        if sampler == "poisson":
            values = lib.poisson(rates, generator=generator)
        elif sampler == "binomial":
            values = lib.binomial(lib.tensor([5.0, 20.0, 300.0]), lib.tensor([0.2, 0.5, 0.9]), generator=generator)
        elif sampler == "gamma":
            values = lib._standard_gamma(rates, generator=generator)
        else:
            values = lib._sample_dirichlet(rates.reshape(1, -1), generator=generator)
        after = lib.rand(6, generator=generator, dtype=lib.float64)
        results.append((values.numpy(), after.numpy(), _state(generator)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    np.testing.assert_array_equal(results[1][1], results[0][1])
    assert results[1][2] == results[0][2]


@pytest.mark.parametrize("dtype", [None, "int16", "float32"])
def test_randperm_and_randint_on_a_generator_as_torch(dtype):
    results = []
    for lib in LIBS:
        kwargs = {} if dtype is None else {"dtype": getattr(lib, dtype)}
        generator = lib.Generator().manual_seed(9)
        perms = [lib.randperm(n, generator=generator, **kwargs) for n in (0, 1, 5, 100, 300)]
        ints = [lib.randint(0, 10, (16,), generator=generator, **kwargs),
                lib.randint(-3, 2**11, (3, 4), generator=generator, **kwargs)]
        results.append(([(p.numpy(), str(p.dtype)) for p in perms + ints], _state(generator)))
    for (mine, mine_dtype), (theirs, theirs_dtype) in zip(results[1][0], results[0][0]):
        np.testing.assert_array_equal(mine, theirs)
        assert mine_dtype.split(".")[-1] == theirs_dtype.split(".")[-1]
    assert results[1][1] == results[0][1]


def test_randperm_refusals_as_torch():
    for kwargs in ({"dtype": "int8", "n": 200}, {"dtype": "uint8", "n": 300}, {"dtype": "float16", "n": 3000}):
        messages = []
        for lib in LIBS:
            with pytest.raises(RuntimeError) as caught:
                lib.randperm(kwargs["n"], dtype=getattr(lib, kwargs["dtype"]))
            messages.append(str(caught.value))
        assert messages[1] == messages[0]
