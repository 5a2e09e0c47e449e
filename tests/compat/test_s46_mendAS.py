"""s46 mendAS: what a TorchDispatchMode sees, continued from mendAI/mendAK/mendAO, and x[key] = number read as
torch reads it. A number written by setitem is checked as torch checks it before anything is written (with a
mode or without): a Python int beyond int64 is torch's ValueError, a value an integer dtype cannot hold (or
NaN, infinity, a complex with an imaginary part into a real dtype, a finite value beyond float32 into float32
or complex64) torch's RuntimeError naming the C++ type; it wrote 0 or a wrapped value, or raised Python's
TypeError/OverflowError."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402
from tests.compat._dispatch_checks import PassingMode as _Pass  # noqa: E402
from tests.compat._dispatch_checks import assert_a_handler_edit_reaches, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import F as _functional  # noqa: E402


def _written(lib, dtype, value, key, mode):
    target = lib.zeros(2, 3, dtype=getattr(lib, dtype))
    try:
        with mode:
            target[key] = value
    except (TypeError, ValueError, RuntimeError, OverflowError) as error:
        return type(error).__name__, str(error)
    return target.to(lib.float64 if dtype == "bfloat16" else target.dtype).tolist()


NUMBERS = [2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1, 2 ** 70, 1j, 1 + 0j, 1e300, 70000.0, 1e39, -129, -256,
           255.7, float("inf"), float("nan"), np.int64(5), np.float64(1e300), np.complex128(1j), True, 3.9, -1.5,
           2 ** 31, complex(0, 1e39)]
DTYPES = ["float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
          "complex64", "complex128"]


@pytest.mark.parametrize("key", [0, False, (slice(None), 1)], ids=["int", "false", "column"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_number_written_by_setitem_is_checked_as_torch_checks_it(dtype, key):
    for value in NUMBERS:
        expected = _written(real_torch, dtype, value, key, contextlib.nullcontext())
        with np.errstate(over="ignore"):
            got = _written(chainrule, dtype, value, key, contextlib.nullcontext())
            under_a_mode = _written(chainrule, dtype, value, key, _Pass())
        np.testing.assert_equal(got, expected, err_msg=f"{dtype} {value!r}")  # (nan equal to nan)
        np.testing.assert_equal(under_a_mode, expected, err_msg=f"{dtype} {value!r} under a mode")


def test_a_refused_number_leaves_the_tensor_and_its_version_as_they_were():
    target = chainrule.arange(6).reshape(2, 3)
    version = target._version
    for value in (2 ** 70, 1j, float("nan"), 1e300):
        with pytest.raises((ValueError, RuntimeError)):
            target[0] = value
    assert target._version == version
    assert target.tolist() == [[0, 1, 2], [3, 4, 5]]


# ---- batch norm: torch's reserve (empty.memory_format([0], uint8)) and one native_batch_norm with its eight
# arguments, train and eval; the module's reset (zero_, fill_(1), zero_) and num_batches_tracked.add_(1)
def _batch_norm_module(train, momentum=0.1):
    def program(lib, a):
        module = lib.nn.BatchNorm2d(2, momentum=momentum)
        module.train(train)
        return module(a["img"]), module(a["img"] * 2)
    return program


BATCH_NORM = {
    "module_train": _batch_norm_module(True),
    "module_eval": _batch_norm_module(False),
    "module_made": lambda lib, a: lib.nn.BatchNorm1d(3),
    "module_reset": lambda lib, a: lib.nn.BatchNorm1d(3).reset_running_stats(),
    "module_without_affine": lambda lib, a: lib.nn.BatchNorm1d(3, affine=False)(a["x"]),
    "functional_train": lambda lib, a: lib.nn.functional.batch_norm(a["x"], lib.zeros(3), lib.ones(3), a["bias"],
                                                                     a["bias"], training=True),
    "functional_eval": lambda lib, a: lib.nn.functional.batch_norm(a["x"], lib.zeros(3), lib.ones(3), a["bias"],
                                                                    a["bias"], training=False, eps=1e-3),
    "functional_without_statistics": lambda lib, a: lib.nn.functional.batch_norm(a["x"], None, None, training=True),
    "functional_3d": lambda lib, a: lib.nn.functional.batch_norm(a["x3"], None, None, a["bias"], None, True, 0.2),
    "torch_batch_norm": lambda lib, a: lib.batch_norm(a["img"], None, None, lib.zeros(2), lib.ones(2), False, 0.1,
                                                      1e-5, False),
}


@pytest.mark.parametrize("name", sorted(BATCH_NORM))
def test_a_mode_sees_batch_norm_as_torch_shows_it(name):
    from tests.compat.test_s45_mendAI import _logged

    assert _logged(chainrule, BATCH_NORM[name]) == _logged(real_torch, BATCH_NORM[name])


def _trained(lib, train, momentum, mode):
    """A BatchNorm2d's outputs, input and parameter gradients and buffers after two steps."""
    lib.manual_seed(0)
    module = lib.nn.BatchNorm2d(3, momentum=momentum)
    module.train(train)
    with lib.no_grad():
        module.weight.copy_(lib.tensor([0.5, 1.5, -1.0]))
        module.bias.copy_(lib.tensor([0.1, -0.2, 0.3]))
        module.running_mean.copy_(lib.tensor([0.2, 0.0, -0.1]))
        module.running_var.copy_(lib.tensor([1.5, 0.5, 2.0]))
    x = lib.tensor(np.random.default_rng(1).standard_normal((4, 3, 2, 5)), dtype=lib.float32, requires_grad=True)
    with mode:
        out = module(x) * module(x * 2 + 1)
    out.pow(2).sum().backward()
    return [out.detach().numpy(), x.grad.numpy(), module.weight.grad.numpy(), module.bias.grad.numpy(),
            module.running_mean.numpy(), module.running_var.numpy(), module.num_batches_tracked.numpy()]


@pytest.mark.parametrize("train,momentum", [(True, 0.1), (True, None), (False, 0.1)])
def test_batch_norm_under_a_passing_mode_keeps_values_gradients_and_statistics(train, momentum):
    ours = _trained(chainrule, train, momentum, _Pass())
    plain = _trained(chainrule, train, momentum, contextlib.nullcontext())
    theirs = _trained(real_torch, train, momentum, contextlib.nullcontext())
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_a_handler_that_changes_batch_norms_eps_gets_what_it_asked_for():
    def run(lib):
        class Edit(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                   else _python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if str(func) == "aten.native_batch_norm.default":
                    seen.append(len(func(*args, **(kwargs or {}))))
                    args = (*args[:7], 0.5)
                return func(*args, **(kwargs or {}))

        seen = []
        x = lib.tensor(np.random.default_rng(2).standard_normal((4, 3)), dtype=lib.float32)
        with Edit():
            out = lib.nn.functional.batch_norm(x, None, None, training=True)
        assert seen == [3]  # (output, save_mean, save_invstd)
        return out.numpy()

    np.testing.assert_allclose(run(chainrule), run(real_torch), rtol=1e-5, atol=1e-6)


def test_the_outer_of_two_modes_sees_native_batch_norm_once():
    lines = []

    def logging(tag):
        class Log(_python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                lines.append(f"{tag} {func}")
                return func(*args, **(kwargs or {}))
        return Log()

    x = chainrule.ones(4, 3) * chainrule.arange(4.0)[:, None]
    with logging("outer"), logging("inner"):
        out = chainrule.nn.functional.batch_norm(x, None, None, training=True)
    assert [line for line in lines if "batch_norm" in line] == ["inner aten.native_batch_norm.default",
                                                               "outer aten.native_batch_norm.default"]
    np.testing.assert_allclose(out.numpy(), chainrule.nn.functional.batch_norm(x, None, None, training=True).numpy())


# ---- softplus (beta and threshold by position, left out where they are the schema's int defaults),
# torch.constant_pad_nd's value as given (left out where it is the default 0), and reflect/replicate pads
# with a negative side (torch's one reflection_pad<k>d / replication_pad<k>d, not pad, slice, alias, clone)
SCHEMAS = {
    "softplus": lambda lib, a: _functional(lib).softplus(a["x"]),
    "softplus_beta": lambda lib, a: _functional(lib).softplus(a["x"], beta=2),
    "softplus_float_beta": lambda lib, a: _functional(lib).softplus(a["x"], beta=1.0),
    "softplus_threshold": lambda lib, a: _functional(lib).softplus(a["x"], threshold=5),
    "softplus_both": lambda lib, a: _functional(lib).softplus(a["x"], 2, 10),
    "softplus_module": lambda lib, a: lib.nn.Softplus()(a["x"]),
    "constant_pad_nd": lambda lib, a: lib.constant_pad_nd(a["x"], (1, 1)),
    "constant_pad_nd_int_zero": lambda lib, a: lib.constant_pad_nd(a["x"], [1, 1], 0),
    "constant_pad_nd_float_zero": lambda lib, a: lib.constant_pad_nd(a["x"], [1, 1], 0.0),
    "constant_pad_nd_value": lambda lib, a: lib.constant_pad_nd(a["x"], [1, 1], value=2),
    "constant_pad_nd_of_integers": lambda lib, a: lib.constant_pad_nd(a["idx"], [1, 2], -1),
    "f_pad_still_a_float": lambda lib, a: _functional(lib).pad(a["x"], (1, 1), value=2),
    "reflect_negative": lambda lib, a: _functional(lib).pad(a["img"], (-1, 1, 1, 0), mode="reflect"),
    "replicate_negative": lambda lib, a: _functional(lib).pad(a["img"], (-1, 1, 1, 0), mode="replicate"),
    "reflect_1d_negative": lambda lib, a: _functional(lib).pad(a["x3"], (2, -1), mode="reflect"),
    "replicate_3d_negative": lambda lib, a: _functional(lib).pad(a["img"].unsqueeze(0), (1, 0, -1, 1, 0, -1),
                                                                 mode="replicate"),
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_a_mode_sees_the_call_as_torch_shows_it(name):
    from tests.compat.test_s45_mendAI import _logged

    assert _logged(chainrule, SCHEMAS[name]) == _logged(real_torch, SCHEMAS[name])


SCHEMA_GRADIENTS = {
    "softplus": lambda lib, x: _functional(lib).softplus(x * 3, beta=2, threshold=1).pow(2).sum(),
    "constant_pad_nd": lambda lib, x: lib.constant_pad_nd(x, [1, 2], 1.5).pow(2).sum(),
    "reflect_negative": lambda lib, x: _functional(lib).pad(x.view(1, 3, 4), (2, -1), mode="reflect").pow(2).sum(),
    "replicate_negative": lambda lib, x: _functional(lib).pad(x.view(1, 1, 3, 4), (-1, 2, 1, -1),
                                                              mode="replicate").pow(3).sum(),
}


@pytest.mark.parametrize("name", sorted(SCHEMA_GRADIENTS))
def test_a_passing_mode_keeps_their_values_and_gradients(name):
    assert_a_passing_mode_keeps(SCHEMA_GRADIENTS[name], (3, 4), seed=3)


EDITS = {
    "softplus_beta": ("aten.softplus.default", lambda args: (args[0], 3.0, 1.0),
                      lambda lib, x: _functional(lib).softplus(x, beta=2)),
    "constant_pad_nd_value": ("aten.constant_pad_nd.default", lambda args: (args[0], args[1], 7.0),
                              lambda lib, x: lib.constant_pad_nd(x, [1, 1])),
    "reflect_negative_pad": ("aten.reflection_pad1d.default", lambda args: (args[0], [1, -2]),
                             lambda lib, x: _functional(lib).pad(x, (-1, 1), mode="reflect")),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_handler_that_changes_their_arguments_gets_what_it_asked_for(name):
    assert_a_handler_edit_reaches(*EDITS[name], shape=(2, 4))


# ---- dropout in training: torch's noise, empty_like(input), bernoulli_.float(noise, 1 - p) (left out at
# 0.5), div_.Scalar(noise, 1 - p), then the mul, with the draws dropout makes without a mode
DROPOUT = {
    "functional": lambda lib, a: _functional(lib).dropout(a["x"], 0.5, training=True),
    "functional_p": lambda lib, a: _functional(lib).dropout(a["x3"], 0.2),
    "module": lambda lib, a: lib.nn.Dropout(0.3)(a["x"]),
    "in_place": lambda lib, a: _functional(lib).dropout(a["x"].clone(), 0.4, inplace=True),
    "eval": lambda lib, a: lib.nn.Dropout(0.3).eval()(a["x"]),
    "p_one": lambda lib, a: _functional(lib).dropout(a["x"], 1.0),
    "torch_dropout": lambda lib, a: lib.dropout(a["x"], 0.25, True),
}


@pytest.mark.parametrize("name", sorted(DROPOUT))
def test_a_mode_sees_dropout_as_torch_shows_it(name):
    from tests.compat.test_s45_mendAI import _logged

    assert _logged(chainrule, DROPOUT[name]) == _logged(real_torch, DROPOUT[name])


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "float64"])
def test_dropout_under_a_passing_mode_draws_what_it_draws_without_one(layout):
    def run(lib, mode):
        data = np.random.default_rng(5).standard_normal((6, 7))
        x = lib.tensor(data, dtype=lib.float64 if layout == "float64" else lib.float32)
        x = (x.t() if layout == "transposed" else x).requires_grad_(True)
        lib.manual_seed(11)
        with mode:
            out = _functional(lib).dropout(x, 0.35) * 2
        out.pow(2).sum().backward()
        return out.detach().numpy(), x.grad.numpy()

    ours, plain, theirs = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()), \
        run(real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


# ---- group norm: torch's one native_group_norm(input, weight, bias, N, C, HxW, group, eps), affine or not
GROUP_NORM = {
    "functional": lambda lib, a: _functional(lib).group_norm(a["img"], 2),
    "functional_affine": lambda lib, a: _functional(lib).group_norm(a["img"], 1, a["bias"][:2], a["bias"][1:],
                                                                    eps=1e-3),
    "functional_3d": lambda lib, a: _functional(lib).group_norm(a["x3"], 3),
    "module_without_affine": lambda lib, a: lib.nn.GroupNorm(1, 2, affine=False)(a["img"]),
}


@pytest.mark.parametrize("name", sorted(GROUP_NORM))
def test_a_mode_sees_group_norm_as_torch_shows_it(name):
    from tests.compat.test_s45_mendAI import _logged

    assert _logged(chainrule, GROUP_NORM[name]) == _logged(real_torch, GROUP_NORM[name])


@pytest.mark.parametrize("shape,groups", [((4, 6, 5), 3), ((2, 4, 3, 3), 2), ((0, 4, 3), 2)])
def test_group_norm_under_a_passing_mode_keeps_values_and_gradients(shape, groups):
    def run(lib, mode):
        x = lib.tensor(np.random.default_rng(6).standard_normal(shape), dtype=lib.float32, requires_grad=True)
        weight = lib.tensor(np.linspace(-1, 2, shape[1]), dtype=lib.float32, requires_grad=True)
        bias = lib.tensor(np.linspace(0.5, -0.5, shape[1]), dtype=lib.float32, requires_grad=True)
        with mode:
            out = lib.nn.functional.group_norm(x * 2, groups, weight, bias)
        (out.pow(2) * 0.5 + out).sum().backward()
        return [out.detach().numpy(), x.grad.numpy(), weight.grad.numpy(), bias.grad.numpy()]

    ours, plain, theirs = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()), \
        run(real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_native_group_norm_gives_a_handler_torchs_three_results():
    def run(lib):
        class Look(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                   else _python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                result = func(*args, **(kwargs or {}))
                if str(func) == "aten.native_group_norm.default":
                    seen.append([tuple(r.shape) for r in result])
                return result

        seen = []
        x = lib.tensor(np.random.default_rng(7).standard_normal((3, 4, 5)), dtype=lib.float32)
        with Look():
            lib.nn.functional.group_norm(x, 2)
        return seen

    assert run(chainrule) == run(real_torch) == [[(3, 4, 5), (3, 2), (3, 2)]]
