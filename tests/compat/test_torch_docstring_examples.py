"""What running torch 2.13's own docstring examples on chainrule found (tools/torch_docstring_trial.py),
each case in our own words and compared with torch: calling forms, errors, layouts and names the
examples use."""

# ruff: noqa: B023  (the lambdas built in loops are called at once, inside their own iteration)

import inspect

import numpy as np
import pytest
import torch

import chainrule
import chainrule.nn.functional as F

LIBS = (chainrule, torch)


def _outcome(call):
    """(type name, message) of what ``call`` raises, or ("ok", result)."""
    try:
        return "ok", call()
    except Exception as error:  # noqa: BLE001 - the exception itself is compared
        return type(error).__name__, str(error)


# ---------------------------------------------------------------- atleast_Nd's calling forms
@pytest.mark.parametrize("name", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast_takes_a_tuple_several_tensors_or_nothing(name):
    results = []
    for lib in LIBS:
        f = getattr(lib, name)
        x, y = lib.tensor(0.5), lib.tensor([1.0, 2.0])
        results.append([f(), f((x, y)), f([x]), f(x, y), f(y)])
    for mine, theirs in zip(*results):
        if isinstance(theirs, tuple):
            assert isinstance(mine, tuple) and len(mine) == len(theirs)
            for a, b in zip(mine, theirs):
                assert tuple(a.shape) == tuple(b.shape)
        else:
            assert tuple(mine.shape) == tuple(theirs.shape)
    for bad in (3, [3]):
        ours, theirs = (_outcome(lambda: getattr(lib, name)(bad))[0] for lib in LIBS)
        assert ours == theirs == "TypeError"


def test_is_storage():
    for lib in LIBS:
        t = lib.ones(2)
        assert lib.is_storage(t.untyped_storage()) and not lib.is_storage(t) and not lib.is_storage([1])


def test_native_channel_shuffle_shuffles_as_channel_shuffle():
    x = np.arange(16.0, dtype=np.float32).reshape(1, 4, 2, 2)
    ours = F.native_channel_shuffle(chainrule.tensor(x), 2)
    theirs = torch.nn.functional.native_channel_shuffle(torch.tensor(x), 2)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # torch's own op, not channel_shuffle under another name (torch.native_channel_shuffle is not F.channel_shuffle)
    assert chainrule.native_channel_shuffle is F.native_channel_shuffle
    assert F.native_channel_shuffle is not F.channel_shuffle
    assert (torch.native_channel_shuffle is torch.nn.functional.native_channel_shuffle
            and torch.nn.functional.native_channel_shuffle is not torch.nn.functional.channel_shuffle)


# ---------------------------------------------------------------- grad_dtype
def test_grad_dtype_casts_accumulated_gradients_and_checks_assignments():
    for lib in LIBS:
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        assert x.grad_dtype == lib.float32
        x.grad_dtype = lib.float16
        (x * 3).sum().backward()
        (x * 3).sum().backward()
        assert x.grad.dtype == lib.float16 and x.grad.tolist() == [6.0, 6.0]
        kind, message = _outcome(lambda: setattr(x, "grad_dtype", lib.float64))
        assert kind == "RuntimeError" and "already a gradient" in message
        x.grad = None
        x.grad_dtype = None
        x.grad = lib.ones(2, dtype=lib.float64)  # any dtype once grad_dtype is None
        assert x.grad.dtype == lib.float64
        y = lib.ones(2, requires_grad=True)
        kind, message = _outcome(lambda: setattr(y, "grad", lib.ones(2, dtype=lib.float16)))
        assert kind == "RuntimeError" and "grad_dtype" in message
        non_leaf = y * 1
        assert _outcome(lambda: non_leaf.grad_dtype)[0] == "RuntimeError"
        assert _outcome(lambda: setattr(y, "grad_dtype", "float"))[0] == "RuntimeError"


# ---------------------------------------------------------------- the gradient layout contract
def _grad_strides(lib, enforce: bool):
    element = np.dtype(np.float32).itemsize
    p = lib.empty(2, 3, 4).permute(2, 0, 1).requires_grad_()
    with lib.autograd.enforce_grad_layout_policy(enforce):
        (p * 2).sum().backward()
    c = lib.randn(2, 3, 4, 5).to(memory_format=lib.channels_last).requires_grad_()
    (c * c).sum().backward()
    w = lib.randn(3, 4).t().requires_grad_()
    (lib.randn(5, 4) @ w).sum().backward()
    e = lib.randn(1, 3).expand(4, 3).detach().requires_grad_()
    (e * 2).sum().backward()
    return [tuple(t.grad.stride()) for t in (p, c, w, e)], element


@pytest.mark.parametrize("enforce", [True, False])
def test_a_leafs_gradient_takes_the_leafs_strides_as_torch(enforce):
    ours, theirs = (_grad_strides(lib, enforce)[0] for lib in LIBS)
    assert ours == theirs


# ---------------------------------------------------------------- overrides
def _scaled_mul_log(lib, use_mode: bool):
    from_overrides = lib.overrides
    calls = []

    def scaled_mul(a, b):
        if from_overrides.has_torch_function((a, b)):
            return from_overrides.handle_torch_function(scaled_mul, (a, b), a, b)
        return a * b + 1

    class Logging(lib.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args, kwargs=None):
            calls.append(func.__name__)
            return from_overrides.redispatch_function(func, types, args, kwargs)

    class Mode(from_overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args, kwargs=None):
            calls.append(func.__name__)
            with self:
                return from_overrides.redispatch_function(func, types, args, kwargs)

    if use_mode:
        with Mode():
            result = scaled_mul(lib.tensor([3.0]), lib.tensor([4.0]))
    else:
        result = scaled_mul(Logging(lib.tensor([3.0])), Logging(lib.tensor([4.0])))
    return calls, result.tolist(), type(result).__name__


@pytest.mark.parametrize("use_mode", [False, True])
def test_redispatch_function_skips_one_level_as_torch(use_mode):
    assert _scaled_mul_log(chainrule, use_mode) == _scaled_mul_log(torch, use_mode)


def test_get_testing_overrides_gives_dummies_with_signatures():
    dummies = chainrule.overrides.get_testing_overrides()
    assert dummies[chainrule.add](1, 2) == -1
    assert list(inspect.signature(dummies[F.relu]).parameters) == ["input", "inplace"]
    assert set(dummies) >= {chainrule.add, F.relu, chainrule.Tensor.add}


# ---------------------------------------------------------------- errors torch names
@pytest.mark.parametrize("op", ["allclose", "isclose", "gcd", "lcm", "fmod", "remainder", "floor_divide"])
def test_shapes_that_do_not_broadcast_raise_runtime_error(op):
    outcomes = []
    for lib in LIBS:
        a, b = lib.ones(5, 2, dtype=lib.long), lib.ones(2, 5, dtype=lib.long)
        outcomes.append(_outcome(lambda: getattr(lib, op)(a, b)))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("polynomial", ["chebyshev_polynomial_t", "hermite_polynomial_he", "laguerre_polynomial_l"])
def test_polynomials_with_shapes_that_do_not_broadcast(polynomial):
    outcomes = [_outcome(lambda: getattr(lib.special, polynomial)(lib.ones(5, 2), lib.ones(2, 5))) for lib in LIBS]
    assert outcomes[0] == outcomes[1]


@pytest.mark.filterwarnings("ignore:Using torch.cross without specifying the dim")
def test_linalg_cross_is_along_the_last_dim():
    x = np.random.default_rng(0).standard_normal((2, 3, 3))
    y = np.random.default_rng(1).standard_normal((1, 3, 3))
    for kwargs in ({}, {"dim": 1}):
        ours = chainrule.linalg.cross(chainrule.tensor(x), chainrule.tensor(y), **kwargs)
        theirs = torch.linalg.cross(torch.tensor(x), torch.tensor(y), **kwargs)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    out = chainrule.empty(3, dtype=chainrule.float64)
    chainrule.linalg.cross(chainrule.tensor(x[0, 0]), chainrule.tensor(y[0, 0]), out=out)
    np.testing.assert_allclose(out.numpy(), np.cross(x[0, 0], y[0, 0]), rtol=1e-12)
    for call in (lambda lib: lib.linalg.cross(lib.ones(3, 5), lib.ones(3, 5)),
                 lambda lib: lib.linalg.cross(lib.ones(5, 2), lib.ones(2, 5)),
                 lambda lib: lib.cross(lib.ones(5, 2), lib.ones(2, 5)),
                 lambda lib: lib.linalg.cross(lib.ones(3), lib.ones(2, 3))):
        assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))
    gradient = chainrule.autograd.gradcheck(lambda a, b: chainrule.linalg.cross(a, b),
                                            (chainrule.tensor(x, requires_grad=True),
                                             chainrule.tensor(y, requires_grad=True)))
    assert gradient


def test_singular_inverses_raise_linalg_error_naming_the_pivot_and_batch_element():
    def calls(lib):
        a = lib.eye(3)
        a[-1, -1] = 0
        return [lambda: lib.linalg.inv(a), lambda: lib.linalg.inv(lib.stack([lib.eye(3), a])),
                lambda: lib.linalg.inv(lib.tensor([[1.0, 2.0], [2.0, 4.0]])),
                lambda: lib.linalg.solve(a, lib.ones(3)),
                lambda: lib.linalg.solve(lib.stack([lib.eye(3), a, a]), lib.ones(3, 3)),
                lambda: lib.cholesky_inverse(a), lambda: lib.cholesky_inverse(lib.stack([lib.eye(3), a]))]
    for mine, theirs in zip(calls(chainrule), calls(torch)):
        with pytest.raises(chainrule.linalg.LinAlgError) as ours:
            mine()
        with pytest.raises(torch.linalg.LinAlgError) as reference:
            theirs()
        assert str(ours.value) == str(reference.value)
        assert isinstance(ours.value, RuntimeError)


# ---------------------------------------------------------------- layouts of new tensors
def _layouts(lib):
    x = lib.randn(2, 3, 4, 5)
    xc = x.to(memory_format=lib.channels_last)
    made = [lib.empty((2, 3, 4, 5), memory_format=lib.channels_last),
            lib.empty((2, 3, 4, 5, 6), memory_format=lib.channels_last_3d),
            lib.empty_like(x, memory_format=lib.channels_last), lib.empty_like(xc), lib.zeros_like(xc),
            lib.ones_like(xc, memory_format=lib.contiguous_format), lib.full_like(xc, 2.0),
            lib.zeros_like(x.permute(3, 1, 0, 2)), lib.ones_like(x[:, :, ::2])]
    values = [t.tolist() for t in made[4:7]]
    errors = [_outcome(lambda: lib.empty((2, 3, 4), memory_format=lib.channels_last)),
              _outcome(lambda: lib.empty((2, 3, 4, 5), memory_format=lib.preserve_format))]
    return [tuple(t.stride()) for t in made], values, errors


def test_factories_and_likes_lay_tensors_out_as_torch():
    assert _layouts(chainrule) == _layouts(torch)


def _dim_orders(lib):
    return [_outcome(lambda: lib.empty((2, 3, 5, 7), memory_format=lib.channels_last).dim_order()),
            _outcome(lambda: lib.empty((1, 2, 3, 4)).dim_order(ambiguity_check=True)),
            _outcome(lambda: lib.empty((1, 2, 3, 4)).dim_order(ambiguity_check=[lib.contiguous_format,
                                                                                  lib.channels_last])),
            _outcome(lambda: lib.empty((1, 2, 3, 4)).dim_order(ambiguity_check="ILLEGAL")),
            _outcome(lambda: lib.empty((2, 3, 4, 5)).dim_order(ambiguity_check=True))]


def test_dim_order_and_its_ambiguity_check():
    assert _dim_orders(chainrule) == _dim_orders(torch)


# ---------------------------------------------------------------- torch.testing
def _made(lib):
    from_testing = lib.testing
    lib.manual_seed(0)
    values = [from_testing.make_tensor((2, 3), dtype=dt, device="cpu").tolist()
              for dt in (lib.float32, lib.float64, lib.float16, lib.int64, lib.uint8, lib.bool, lib.complex64)]
    values.append(from_testing.make_tensor(3, 4, dtype=lib.float32, device="cpu", low=-1, high=1,
                                           noncontiguous=True).tolist())
    values.append(from_testing.make_tensor(5, dtype=lib.int64, device="cpu", low=-2, high=2,
                                           exclude_zero=True).tolist())
    errors = [_outcome(lambda: from_testing.make_tensor(3, dtype=lib.float32, device="cpu", low=3, high=1))[0],
              _outcome(lambda: from_testing.make_tensor(3, dtype=lib.int64, device="cpu", requires_grad=True))[0]]
    return values, errors


def test_make_tensor_draws_torchs_values():
    assert _made(chainrule) == _made(torch)


def test_assert_close_compares_numpy_arrays():
    expected = np.array([1e0, 1e-1, 1e-2])
    chainrule.testing.assert_close(np.arccos(np.cos(expected)), expected)
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        chainrule.testing.assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    with pytest.raises(TypeError, match="No comparison pair"):
        chainrule.testing.assert_close(np.array([1.0, 2.0]), chainrule.tensor([1.0, 2.0], dtype=chainrule.float64))


# ---------------------------------------------------------------- nn.LinearCrossEntropyLoss
def _linear_cross_entropy(lib):
    lib.manual_seed(283)
    loss = lib.nn.LinearCrossEntropyLoss(5, 10, out_features=(4, 3))
    x = lib.randn(2, 5, requires_grad=True)
    target = lib.randint(0, 10, (2, 4, 3))
    out = loss(x, target)
    out.backward()
    probabilities = lib.randn(2, 10, 4, 3).softmax(dim=1)
    soft = loss(x, probabilities)
    smoothed = lib.nn.LinearCrossEntropyLoss(6, 7, bias=True, reduction="none", label_smoothing=0.1)
    x2 = lib.randn(4, 6, requires_grad=True)
    each = smoothed(x2, lib.tensor([0, 3, 6, 2]))
    each.sum().backward()
    errors = [_outcome(lambda: lib.nn.functional.linear_cross_entropy(lib.randn(2, 3, 6), lib.randn(7, 6),
                                                                      lib.zeros(2, dtype=lib.long)))[1],
              _outcome(lambda: lib.nn.functional.linear_cross_entropy(
                  lib.randn(4, 6), lib.randn(7, 6), lib.randn(4, 7).softmax(1), ignore_index=1))[1]]
    return ([out.item(), soft.item(), *each.tolist()], [x.grad, loss.linear.weight.grad, x2.grad,
                                                         smoothed.linear.bias.grad], repr(loss), errors)


def test_linear_cross_entropy_loss_matches_torch():
    ours, theirs = _linear_cross_entropy(chainrule), _linear_cross_entropy(torch)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    for mine, reference in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(mine.numpy(), reference.numpy(), rtol=1e-4, atol=1e-6)
    assert ours[2] == theirs[2] and ours[3] == theirs[3]


def test_linear_cross_entropy_gradcheck():
    rng = np.random.default_rng(0)
    x = chainrule.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = chainrule.tensor(rng.standard_normal((5, 2, 4)), requires_grad=True)
    b = chainrule.tensor(rng.standard_normal((5, 2)), requires_grad=True)
    target = chainrule.tensor(rng.integers(0, 5, (3, 2)))
    assert chainrule.autograd.gradcheck(
        lambda x, w, b: F.linear_cross_entropy(x, w, target, linear_bias=b, label_smoothing=0.2), (x, w, b))


# ---------------------------------------------------------------- torch.func
REARRANGEMENTS = [("a b c -> c b a", {}), ("a (b1 b2) c -> a b1 b2 c", {"b1": 3}), ("... c -> c ...", {}),
                  ("a b c -> a (b c) 1", {}), ("a b c -> (a b c)", {}), ("a b c -> a () b c", {}),
                  ("a ... -> (a ...)", {}), ("(a b) c d -> a b c d", {"a": 1})]


@pytest.mark.parametrize("pattern, lengths", REARRANGEMENTS)
def test_rearrange_matches_torch(pattern, lengths):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    ours = chainrule.func.rearrange(chainrule.tensor(x), pattern, **lengths)
    theirs = torch.func.rearrange(torch.tensor(x), pattern, **lengths)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_rearrange_of_a_list_gradient_and_errors():
    stacked = chainrule.func.rearrange([chainrule.ones(2), chainrule.zeros(2)], "n a -> a n")
    assert stacked.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    x = chainrule.randn(3, 2, requires_grad=True, dtype=chainrule.float64)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.func.rearrange(t, "a b -> (b a)"), (x,))
    for pattern, lengths in (("a b c -> a b", {}), ("a a c -> a c", {}), ("a (b b2) c -> a b b2 c", {"b": 2})):
        ours = _outcome(lambda: chainrule.func.rearrange(chainrule.ones(2, 3, 4), pattern, **lengths))[0]
        theirs = _outcome(lambda: torch.func.rearrange(torch.ones(2, 3, 4), pattern, **lengths))[0]
        assert ours == "ValueError" and theirs in ("ValueError", "DimensionBindError")


def test_functionalize_runs_the_function_as_it_is():
    def f(a):
        b = a.clone()
        b.add_(1)
        a.mul_(2)
        return b

    results = []
    for lib in LIBS:
        t = lib.ones(2)
        results.append((lib.func.functionalize(f)(t).tolist(), t.tolist()))
        assert _outcome(lambda: lib.func.functionalize(f, remove="all"))[0] == "RuntimeError"
    assert results[0] == results[1]


# ---------------------------------------------------------------- from_dlpack of a bare capsule
def test_from_dlpack_of_a_capsule_shares_writable_memory():
    for lib in LIBS:
        source = torch.arange(24.0).reshape(4, 6)[1:, ::2]  # a strided view with an offset
        shared = lib.from_dlpack(torch.utils.dlpack.to_dlpack(source))
        shared[0, 0] = -9.0  # torch writes through; NumPy's reader would have made the memory read-only
        assert source[0, 0].item() == -9.0 and shared.tolist() == source.tolist()
    ours = chainrule.arange(3)
    shared = chainrule.from_dlpack(chainrule.utils.dlpack.to_dlpack(ours))
    shared[1] = 7
    assert ours.tolist() == [0, 7, 2]
    for dtype in (torch.bool, torch.complex64, torch.int16, torch.float16):
        source = torch.ones(2, 0, dtype=dtype) if dtype is torch.int16 else torch.ones(3, dtype=dtype)
        ours = chainrule.from_dlpack(torch.utils.dlpack.to_dlpack(source))
        assert str(ours.dtype) == str(source.dtype).replace("torch", "chainrule") and ours.shape == source.shape


def test_from_dlpack_keeps_a_read_only_versioned_capsule_read_only():
    array = np.arange(3.0)
    array.flags.writeable = False
    shared = chainrule.from_dlpack(array.__dlpack__(max_version=(1, 0)))
    assert not shared.numpy().flags.writeable
    writable = chainrule.from_dlpack(np.arange(3.0).__dlpack__(max_version=(1, 0)))
    assert writable.numpy().flags.writeable


# ---------------------------------------------------------------- random *_like in the input's layout
@pytest.mark.parametrize("make", [
    lambda lib, x: lib.rand_like(x),
    lambda lib, x: lib.randn_like(x),
    lambda lib, x: lib.randn_like(x, dtype=lib.float64),
    lambda lib, x: lib.randn_like(x, dtype=lib.float16),
    lambda lib, x: lib.randint_like(x, 10),
    lambda lib, x: lib.randint_like(x.long(), -5, 5),
    lambda lib, x: lib.rand_like(x, memory_format=lib.contiguous_format),
    lambda lib, x: lib.randn_like(x.transpose(0, 1)),
    lambda lib, x: lib.rand_like(x, requires_grad=True),
])
def test_random_like_keeps_the_layout_and_torchs_values(make):
    results = []
    for lib in LIBS:
        lib.manual_seed(0)
        made = make(lib, lib.empty(2, 3, 4, 5).to(memory_format=lib.channels_last))
        results.append((made.detach().numpy(), made.stride(), made.requires_grad, made.is_leaf))
    (ours, our_strides, *our_flags), (theirs, their_strides, *their_flags) = results
    np.testing.assert_array_equal(ours, theirs)
    assert our_strides == their_strides and our_flags == their_flags


def test_uniform_and_normal_refuse_integer_tensors_as_torch():
    for call in (lambda lib: lib.zeros(3, dtype=lib.long).uniform_(),
                 lambda lib: lib.zeros(3, dtype=lib.bool).uniform_(),
                 lambda lib: lib.zeros(3, dtype=lib.int32).normal_(),
                 lambda lib: lib.zeros(3, dtype=lib.int32).normal_(0.0, -1.0),
                 lambda lib: lib.rand_like(lib.zeros(1, 2, 2, 2, dtype=lib.long).to(memory_format=lib.channels_last))):
        assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))


# ---------------------------------------------------------------- uniform_: ranges near the dtype's limits, bounds
@pytest.mark.parametrize("low, high", [(-8e307, 8e307), (0.0, 1.7e308), (-1e300, 1e300), (-1e200, 1e200)])
def test_uniform_over_a_huge_float64_range_gives_torchs_finite_values(low, high):
    results = []
    for lib in LIBS:
        lib.manual_seed(0)
        results.append(lib.empty(1000, dtype=lib.float64).uniform_(low, high).numpy())
    assert np.isfinite(results[0]).all()
    np.testing.assert_array_equal(*results)


def test_make_tensor_float64_full_range_is_torchs():
    results = []
    for lib in LIBS:
        lib.manual_seed(0)
        info = lib.finfo(lib.float64)
        results.append(lib.testing.make_tensor((50,), dtype=lib.float64, device="cpu", low=info.min,
                                               high=info.max).numpy())
    assert np.isfinite(results[0]).all()
    np.testing.assert_array_equal(*results)


@pytest.mark.parametrize("low, high", [(2.0, 1.0), (-1e308, 1e308), (-7e4, 7e4), (0.0, 3.5e38), (-2e38, 2e38),
                                       (0.0, float("inf")), (float("nan"), 1.0)])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16", "complex64"])
def test_uniform_checks_its_bounds_as_torch(low, high, dtype):
    ours, theirs = (_outcome(lambda: lib.empty(3, dtype=getattr(lib, dtype)).uniform_(low, high) is None)
                    for lib in LIBS)
    assert ours == theirs


@pytest.mark.parametrize("make", [lambda lib: lib.empty(3, dtype=lib.complex64),
                                  lambda lib: lib.empty(3, 4, dtype=lib.complex128).t(),
                                  lambda lib: lib.empty(2, 3, dtype=lib.complex64)[:, ::2]])
def test_uniform_of_a_complex_tensor_fills_real_and_imaginary_parts_as_torch(make):
    results = []
    for lib in LIBS:
        lib.manual_seed(0)
        results.append(make(lib).uniform_(-2.0, 3.0).numpy())
    np.testing.assert_array_equal(*results)


# ---------------------------------------------------------------- torch.cpu.get_capabilities
def test_cpu_capabilities_agree_with_torchs_where_reported():
    ours, theirs = chainrule.cpu.get_capabilities(), torch.cpu.get_capabilities()
    assert ours["architecture"] == theirs["architecture"]
    assert ours.get("avx2", False) == theirs.get("avx2", False)
    for name, value in ours.items():
        assert theirs[name] == value, name
    with pytest.raises(TypeError):
        ours["avx2"] = False  # immutable, as torch's MappingProxyType


def test_generator_repr_is_torchs_default_one():
    for lib in LIBS:
        generator = lib.Generator()
        assert repr(generator) == f"<{lib.__name__}._C.Generator object at {hex(id(generator))}>"
        assert repr(lib.manual_seed(0)).startswith(f"<{lib.__name__}._C.Generator object at 0x")


# ---------------------------------------------------------------- serialization.skip_data
def test_skip_data_saves_the_layout_with_zero_bytes(tmp_path):
    path = tmp_path / "skipped.pt"
    state = {"w": chainrule.randn(2, 3), "b": chainrule.arange(4, dtype=chainrule.int16)}
    with chainrule.serialization.skip_data():
        chainrule.save(state, path)
    for lib in LIBS:  # torch reads the file: same keys, shapes and dtypes, every value zero
        loaded = lib.load(path, weights_only=True)
        assert loaded["w"].shape == (2, 3) and loaded["b"].tolist() == [0, 0, 0, 0]
        assert not loaded["w"].any() and str(loaded["b"].dtype).endswith("int16")
    for lib in LIBS:
        with lib.serialization.skip_data():
            outcome = _outcome(lambda: lib.save(lib.ones(2), tmp_path / "legacy.pt",
                                                _use_new_zipfile_serialization=False))
        assert outcome[0] == "RuntimeError" and "skip_data" in outcome[1]
    chainrule.save(state, path)  # outside the block the bytes are written again
    assert chainrule.load(path)["w"].tolist() == state["w"].tolist()


# ---------------------------------------------------------------- Store.barrier
def test_store_barrier_counts_members_in_torchs_keys():
    import datetime
    import threading

    for lib in LIBS:
        store = lib.distributed.HashStore()
        store.barrier("alone", 1)
        assert store.list_keys() == ["alone/last_member", "alone/num_members"]
        assert store.get("alone/num_members") == b"1"
        assert _outcome(lambda: store.barrier("short", 2, datetime.timedelta(milliseconds=50)))[0] == "DistStoreError"
    store = chainrule.distributed.HashStore()
    passed = []
    workers = [threading.Thread(target=lambda: passed.append(store.barrier("pair", 2))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert passed == [None, None]


# ---------------------------------------------------------------- eigh / eigvalsh of a Hermitian matrix
def test_eigvalsh_of_a_complex_hermitian_matrix_is_real_and_torchs():
    results = []
    for lib in LIBS:
        lib.manual_seed(0)
        A = lib.randn(3, 4, 4, dtype=lib.complex128)
        A = (A + A.mH).requires_grad_()
        values, vectors = lib.linalg.eigh(A)
        ((values ** 2).sum() + (vectors.abs() ** 2 * lib.arange(4.0)).sum()).backward()
        results.append((lib.linalg.eigvalsh(A.detach()).numpy(), values.detach().numpy(), A.grad.numpy(),
                        str(values.dtype).split(".")[-1]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-9, atol=1e-12)
    assert results[0][3] == results[1][3] == "float64"


def test_eigh_gradcheck_complex():
    def eigenvalues_and_gauge_free_vectors(X):
        values, vectors = chainrule.linalg.eigh(X + X.mH)
        return values, vectors.abs()

    X = chainrule.randn(3, 3, dtype=chainrule.complex128, requires_grad=True)
    assert chainrule.autograd.gradcheck(eigenvalues_and_gauge_free_vectors, (X,))
    assert chainrule.autograd.gradcheck(lambda X: chainrule.linalg.eigvalsh(X + X.mH), (X,))


def test_linalg_inv_takes_complex_input_and_refuses_integers_as_torch():
    inverses = [lib.linalg.inv(2j * lib.eye(2, dtype=lib.complex64)) for lib in LIBS]
    assert [str(inverse.dtype).split(".")[-1] for inverse in inverses] == ["complex64", "complex64"]
    assert inverses[0].tolist() == inverses[1].tolist() == [[-0.5j, 0j], [0j, -0.5j]]
    for lib in LIBS:
        assert _outcome(lambda: lib.linalg.inv(lib.eye(2, dtype=lib.int64)))[0] == "RuntimeError"


# ---------------------------------------------------------------- autograd.graph.region_activation_memory_budget
def test_region_activation_memory_budget_checks_the_budget_as_torch():
    for bad in (True, "0.5", 1.5, -0.1):
        ours, theirs = (_outcome(lambda: lib.autograd.graph.region_activation_memory_budget(bad)) for lib in LIBS)
        assert ours == theirs
    # chainrule's compile runs eagerly: the block is accepted there and changes nothing
    layer = chainrule.nn.Linear(3, 2)
    x = chainrule.ones(1, 3)
    with chainrule.autograd.graph.region_activation_memory_budget(0.0):
        y = layer(x)
    assert y.tolist() == layer(x).tolist()


def test_assert_close_without_subclasses_refuses_a_parameter_against_a_tensor():
    for allow in (True, False):
        ours, theirs = (_outcome(lambda: lib.testing.assert_close(
            lib.nn.Parameter(lib.ones(2)), [lib.ones(2)][0], allow_subclasses=allow)) for lib in LIBS)
        assert ours[0] == theirs[0]
        if not allow:
            assert ours[0] == "TypeError" and "No comparison pair" in ours[1]
    for lib in LIBS:  # the same type on both sides still compares
        lib.testing.assert_close({"a": [lib.ones(2)]}, {"a": [lib.ones(2)]}, allow_subclasses=False)


# ---------------------------------------------------------------- deterministic mode refuses what torch refuses
@pytest.mark.parametrize("call", [
    lambda lib: lib.zeros(3).put_(lib.tensor([0]), lib.tensor([1.0])),
    lambda lib: lib.zeros(3).put(lib.tensor([0]), lib.tensor([1.0])),
    lambda lib: lib.zeros(3).put_(lib.tensor([0]), lib.tensor([1.0]), accumulate=True),
    lambda lib: lib.nn.functional.max_unpool1d(lib.ones(1, 1, 2), lib.tensor([[[0, 3]]]), 2),
    lambda lib: lib.nn.MaxUnpool2d(2)(lib.ones(1, 1, 1, 1), lib.tensor([[[[3]]]])),
    lambda lib: lib.nn.functional.max_unpool3d(lib.ones(1, 1, 1, 1, 1), lib.tensor([[[[[0]]]]]), 2),
])
def test_deterministic_mode_refuses_the_ops_torch_refuses_on_the_cpu(call):
    import warnings

    for lib in LIBS:
        lib.use_deterministic_algorithms(True)
        try:
            outcome = _outcome(lambda: call(lib))
            lib.use_deterministic_algorithms(True, warn_only=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                call(lib)
            warned = [str(w.message).split(" (Triggered")[0] for w in caught]
        finally:
            lib.use_deterministic_algorithms(False)
        if lib is chainrule:
            ours = (outcome[0], outcome[1] if outcome[0] != "ok" else None, warned)
        else:
            assert ours == (outcome[0], outcome[1] if outcome[0] != "ok" else None, warned)
    assert _outcome(lambda: call(chainrule))[0] == "ok"  # off again: no refusal


# ---------------------------------------------------------------- to_sparse_csc
@pytest.mark.parametrize("rows", [[[0.0, 2, 0], [1, 0, 3], [0, 0, 4], [5, 0, 0]], [[0.0, 0, 0], [0, 0, 0]]])
def test_to_sparse_csc_is_torchs(rows):
    import warnings

    shown = []
    for lib in LIBS:
        dense = lib.tensor(rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch: "Sparse CSC tensor support is in beta state"
            sparse = dense.to_sparse_csc()
            via_layout = dense.to_sparse(layout=lib.sparse_csc)
        assert sparse.to_dense().equal(dense) and via_layout.layout is lib.sparse_csc
        shown.append((repr(sparse).replace(lib.__name__, "torch"), sparse._nnz(), sparse.ccol_indices().tolist(),
                      sparse.row_indices().tolist(), sparse.values().tolist()))
    assert shown[0] == shown[1]
    assert _outcome(lambda: chainrule.ones(2, 2, 1).to_sparse_csc())[0] == "RuntimeError"
