"""s46 mendAV: what a TorchDispatchMode sees, continued from mendAO/mendAS: avg_pool<k>d with torch's schema
arguments (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, trailing defaults left
out) where it saw chainrule's own pool geometry and divisor array; F.interpolate and nn.Upsample as torch's one
upsample op (upsample_nearest2d, upsample_bilinear2d, _upsample_nearest_exact1d, _upsample_bicubic2d_aa, ...)
with (input, output_size[, align_corners], *scales) where it saw chainrule's resample with its tap plan;
torch.where's number operands as torch's scalar_tensor(value, dtype, layout, device), other first; a user's
item(), float(), int(), bool(), operator.index() and complex() of a tensor as torch's _local_scalar_dense."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402
from tests.compat._dispatch_checks import PassingMode as _Pass  # noqa: E402
from tests.compat._dispatch_checks import assert_a_handler_edit_reaches, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import F as _functional  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402

# ---- avg_pool2d / avg_pool3d (and avg_pool1d's unsqueeze, avg_pool2d, squeeze)
POOLS = {
    "default": lambda lib, a: _functional(lib).avg_pool2d(a["img"], 2),
    "stride": lambda lib, a: _functional(lib).avg_pool2d(a["img"], 2, 1),
    "stride_as_kernel": lambda lib, a: _functional(lib).avg_pool2d(a["img"], 2, 2),
    "all": lambda lib, a: _functional(lib).avg_pool2d(a["img"], 3, 2, 1, True, False, 3),
    "rectangular": lambda lib, a: _functional(lib).avg_pool2d(a["img"], (2, 3), stride=(1, 2)),
    "exclude_pad": lambda lib, a: _functional(lib).avg_pool2d(a["img"], 2, count_include_pad=False),
    "ceil": lambda lib, a: _functional(lib).avg_pool2d(a["img"], 2, ceil_mode=True),
    "padding": lambda lib, a: _functional(lib).avg_pool2d(a["img"], 3, padding=1),
    "unbatched": lambda lib, a: _functional(lib).avg_pool2d(a["img"][0], 2),
    "module": lambda lib, a: lib.nn.AvgPool2d(2)(a["img"]),
    "module_override": lambda lib, a: lib.nn.AvgPool2d(3, 1, 1, divisor_override=2)(a["img"]),
    "1d": lambda lib, a: _functional(lib).avg_pool1d(a["x3"], 2),
    "1d_all": lambda lib, a: _functional(lib).avg_pool1d(a["x3"], 2, 1, 1, True, False),
    "3d": lambda lib, a: _functional(lib).avg_pool3d(a["img"], 2),
    "3d_all": lambda lib, a: _functional(lib).avg_pool3d(a["img"], 2, 1, 1, False, True, 2),
    "3d_module": lambda lib, a: lib.nn.AvgPool3d((1, 2, 2))(a["img"].unsqueeze(0)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_a_mode_sees_avg_pool_as_torch_shows_it(name):
    assert _logged(chainrule, POOLS[name]) == _logged(real_torch, POOLS[name])


POOL_GRADIENTS = {
    "2d": lambda lib, x: _functional(lib).avg_pool2d(x.view(1, 2, 3, 4), 2, 1, 1, True, False).pow(2).sum(),
    "2d_override": lambda lib, x: _functional(lib).avg_pool2d(x.view(2, 3, 4), 3, 1, 1, divisor_override=5).sum(),
    "1d": lambda lib, x: _functional(lib).avg_pool1d(x.view(2, 3, 4), 3, 2, 1, True).pow(3).sum(),
    "3d": lambda lib, x: _functional(lib).avg_pool3d(x.view(1, 2, 3, 4), 2, 1, (0, 1, 1)).pow(2).sum(),
}


@pytest.mark.parametrize("name", sorted(POOL_GRADIENTS))
def test_avg_pool_under_a_passing_mode_keeps_values_and_gradients(name):
    assert_a_passing_mode_keeps(POOL_GRADIENTS[name], (6, 4), seed=3)


EDITS = {
    "avg_pool2d_kernel": ("aten.avg_pool2d.default", lambda args: (args[0], [3, 3], [1, 1], [1, 1], False, False),
                          lambda lib, x: _functional(lib).avg_pool2d(x, 2)),
    "avg_pool2d_override": ("aten.avg_pool2d.default", lambda args: (*args[:2], [], [0, 0], False, True, 3),
                            lambda lib, x: _functional(lib).avg_pool2d(x, 2)),
    "avg_pool3d_stride": ("aten.avg_pool3d.default", lambda args: (args[0], [1, 2, 2], [1, 1, 1]),
                          lambda lib, x: _functional(lib).avg_pool3d(x, 2)),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_handler_that_changes_avg_pools_arguments_gets_what_it_asked_for(name):
    assert_a_handler_edit_reaches(*EDITS[name], shape=(1, 2, 5, 6))


# ---- F.interpolate / nn.Upsample: torch's one upsample op, output size, align_corners for the interpolating
# modes, the scales as given (left out where a size was given or recompute_scale_factor asked)
UPSAMPLES = {
    "nearest_scale": lambda lib, a: _functional(lib).interpolate(a["img"], scale_factor=2),
    "nearest_size": lambda lib, a: _functional(lib).interpolate(a["img"], size=(7, 7)),
    "nearest_int_size": lambda lib, a: _functional(lib).interpolate(a["img"], size=7),
    "nearest_two_scales": lambda lib, a: _functional(lib).interpolate(a["img"], scale_factor=(2, 1.5)),
    "nearest_recompute": lambda lib, a: _functional(lib).interpolate(a["img"], scale_factor=2,
                                                                      recompute_scale_factor=True),
    "bilinear_size": lambda lib, a: _functional(lib).interpolate(a["img"], size=(7, 7), mode="bilinear"),
    "bilinear_scale": lambda lib, a: _functional(lib).interpolate(a["img"], scale_factor=2, mode="bilinear"),
    "bilinear_corners": lambda lib, a: _functional(lib).interpolate(a["img"], scale_factor=2, mode="bilinear",
                                                                     align_corners=True),
    "bicubic": lambda lib, a: _functional(lib).interpolate(a["img"], size=(7, 7), mode="bicubic"),
    "bicubic_down": lambda lib, a: _functional(lib).interpolate(a["img"], scale_factor=0.5, mode="bicubic",
                                                                 align_corners=True),
    "nearest_exact": lambda lib, a: _functional(lib).interpolate(a["img"], scale_factor=3, mode="nearest-exact"),
    "nearest_1d": lambda lib, a: _functional(lib).interpolate(a["x3"], scale_factor=2),
    "linear_1d": lambda lib, a: _functional(lib).interpolate(a["x3"], size=7, mode="linear"),
    "linear_1d_corners": lambda lib, a: _functional(lib).interpolate(a["x3"], scale_factor=2, mode="linear",
                                                                      align_corners=True),
    "nearest_3d": lambda lib, a: _functional(lib).interpolate(a["img"].unsqueeze(0), scale_factor=2),
    "trilinear": lambda lib, a: _functional(lib).interpolate(a["img"].unsqueeze(0), size=(2, 4, 4),
                                                              mode="trilinear"),
    "antialiased": lambda lib, a: _functional(lib).interpolate(a["img"], size=(3, 3), mode="bilinear",
                                                                antialias=True),
    "antialiased_bicubic": lambda lib, a: _functional(lib).interpolate(a["img"], scale_factor=0.5, mode="bicubic",
                                                                        antialias=True, align_corners=True),
    "upsample": lambda lib, a: lib.nn.Upsample(scale_factor=2, mode="bilinear")(a["img"]),
    "upsampling_nearest": lambda lib, a: lib.nn.UpsamplingNearest2d(scale_factor=2)(a["img"]),
    "upsampling_bilinear": lambda lib, a: lib.nn.UpsamplingBilinear2d(size=(6, 6))(a["img"]),
    "float64": lambda lib, a: _functional(lib).interpolate(a["img"].double(), scale_factor=2, mode="bilinear"),
    "float16": lambda lib, a: _functional(lib).interpolate(a["img"].half(), scale_factor=2, mode="bilinear"),
    "uint8": lambda lib, a: _functional(lib).interpolate((a["img"] * 10).abs().to(lib.uint8), scale_factor=2,
                                                          mode="bilinear"),
}


@pytest.mark.parametrize("name", sorted(UPSAMPLES))
def test_a_mode_sees_interpolate_as_torch_shows_it(name):
    assert _logged(chainrule, UPSAMPLES[name]) == _logged(real_torch, UPSAMPLES[name])


UPSAMPLE_GRADIENTS = {
    "nearest": lambda lib, x: _functional(lib).interpolate(x.view(1, 2, 3, 4), scale_factor=1.7).pow(2).sum(),
    "bilinear": lambda lib, x: _functional(lib).interpolate(x.view(1, 2, 3, 4), size=(5, 7), mode="bilinear")
    .pow(2).sum(),
    "bicubic_corners": lambda lib, x: _functional(lib).interpolate(x.view(1, 2, 3, 4), scale_factor=2,
                                                                    mode="bicubic", align_corners=True).pow(2).sum(),
    "linear": lambda lib, x: _functional(lib).interpolate(x.view(2, 3, 4), size=9, mode="linear").pow(3).sum(),
    "trilinear": lambda lib, x: _functional(lib).interpolate(x.view(1, 1, 2, 3, 4), scale_factor=2,
                                                              mode="trilinear").pow(2).sum(),
    "antialiased": lambda lib, x: _functional(lib).interpolate(x.view(1, 2, 3, 4), size=(2, 3), mode="bilinear",
                                                                antialias=True).pow(2).sum(),
}


@pytest.mark.parametrize("name", sorted(UPSAMPLE_GRADIENTS))
def test_interpolate_under_a_passing_mode_keeps_values_and_gradients(name):
    assert_a_passing_mode_keeps(UPSAMPLE_GRADIENTS[name], (6, 4), seed=5, grad_atol=1e-5)


def test_interpolate_without_gradients_under_a_passing_mode_gives_the_same_values():
    x = chainrule.tensor(np.random.default_rng(6).standard_normal((1, 2, 5, 6)), dtype=chainrule.float32)
    for mode, kwargs in (("nearest", {"scale_factor": 2.5}), ("bilinear", {"size": (4, 9)}),
                         ("bicubic", {"scale_factor": 1.5, "align_corners": True}), ("nearest-exact", {"size": 8})):
        plain = chainrule.nn.functional.interpolate(x, mode=mode, **kwargs)
        with _Pass():
            ours = chainrule.nn.functional.interpolate(x, mode=mode, **kwargs)
        np.testing.assert_array_equal(ours.numpy(), plain.numpy(), err_msg=mode)


UPSAMPLE_EDITS = {
    "nearest_size": ("aten.upsample_nearest2d.default", lambda args: (args[0], [4, 9]),
                     lambda lib, x: _functional(lib).interpolate(x, scale_factor=2)),
    "nearest_scales": ("aten.upsample_nearest2d.default", lambda args: (args[0], [7, 9], 1.4, 1.5),
                       lambda lib, x: _functional(lib).interpolate(x, size=(3, 3))),
    "bilinear_corners": ("aten.upsample_bilinear2d.default", lambda args: (args[0], args[1], True),
                         lambda lib, x: _functional(lib).interpolate(x, size=(7, 7), mode="bilinear")),
    "bicubic_size": ("aten.upsample_bicubic2d.default", lambda args: (args[0], [3, 4], False),
                     lambda lib, x: _functional(lib).interpolate(x, scale_factor=2, mode="bicubic")),
}


@pytest.mark.parametrize("name", sorted(UPSAMPLE_EDITS))
def test_a_handler_that_changes_interpolates_arguments_gets_what_it_asked_for(name):
    assert_a_handler_edit_reaches(*UPSAMPLE_EDITS[name], shape=(1, 2, 5, 6))


def test_the_outer_of_two_modes_sees_the_upsample_op_once():
    def logging(lib, tag, lines):
        class Log(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                  else _python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                lines.append(f"{tag} {func}")
                return func(*args, **(kwargs or {}))
        return Log()

    def run(lib):
        lines = []
        x = lib.ones(1, 1, 2, 2)
        with logging(lib, "outer", lines), logging(lib, "inner", lines):
            lib.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
        return lines

    assert run(chainrule) == run(real_torch)


# ---- torch.where with number operands: torch's scalar_tensor(value, dtype=<promoted>, layout=strided,
# device=cpu) for each, other first, then where.self
WHERES = {
    "other": lambda lib, a: lib.where(a["x"] > 0, a["x"], 0.0),
    "input": lambda lib, a: lib.where(a["x"] > 0, 1.0, a["x"]),
    "ints": lambda lib, a: lib.where(a["x"] > 0, 1, 0),
    "floats": lambda lib, a: lib.where(a["x"] > 0, 1.0, 0.0),
    "int_into_float": lambda lib, a: lib.where(a["x"] > 0, a["x"], 2),
    "method": lambda lib, a: a["x"].where(a["x"] > 0, 0.0),
    "float64": lambda lib, a: lib.where(a["x"] > 0, a["x"].double(), 0.5),
    "bool": lambda lib, a: lib.where(a["x"] > 0, a["x"], True),
    "promoted": lambda lib, a: lib.where(a["x"] > 0, a["x"].long(), 1.5),
    "tensors": lambda lib, a: lib.where(a["x"] > 0, a["x"], a["y"]),
}


@pytest.mark.parametrize("name", sorted(WHERES))
def test_a_mode_sees_where_with_numbers_as_torch_shows_it(name):
    assert _logged(chainrule, WHERES[name]) == _logged(real_torch, WHERES[name])


@pytest.mark.parametrize("name", sorted(WHERES))
def test_where_with_numbers_under_a_passing_mode_keeps_values_and_dtype(name):
    def run(lib, mode):
        from tests.compat.test_s45_mendAI import _inputs

        inputs = _inputs(lib)
        with mode:
            out = WHERES[name](lib, inputs)
        return str(out.dtype).split(".")[-1], out.numpy()

    (ours_dtype, ours), (plain_dtype, plain) = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext())
    their_dtype, theirs = run(real_torch, contextlib.nullcontext())
    assert ours_dtype == plain_dtype == their_dtype
    np.testing.assert_array_equal(ours, plain)
    np.testing.assert_array_equal(ours, theirs)


def test_where_with_a_number_under_a_passing_mode_keeps_the_gradient():
    def run(lib, mode):
        x = lib.tensor([[-1.0, 2.0], [3.0, -4.0]], requires_grad=True)
        with mode:
            out = (lib.where(x > 0, x, 0.5) * x).sum()
        out.backward()
        return out.item(), x.grad.numpy()

    (ours, our_grad), (theirs, their_grad) = run(chainrule, _Pass()), run(real_torch, contextlib.nullcontext())
    assert ours == theirs
    np.testing.assert_array_equal(our_grad, their_grad)


def test_a_handler_that_changes_where_s_scalar_tensor_gets_what_it_asked_for():
    def run(lib):
        class Edit(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                   else _python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if str(func) == "aten.scalar_tensor.default":
                    args = (7.0,)
                return func(*args, **(kwargs or {}))

        x = lib.tensor([[-1.0, 2.0], [3.0, -4.0]])
        with Edit():
            return lib.where(x > 0, x, 0.0).numpy()

    np.testing.assert_array_equal(run(chainrule), run(real_torch))


def test_where_refuses_a_number_the_same_way_under_a_mode():
    def refusal(lib, mode, value):
        try:
            with mode:
                lib.where(lib.tensor([True, False]), lib.tensor([1, 2], dtype=lib.uint8), value)
        except (TypeError, RuntimeError, OverflowError) as error:
            return type(error).__name__, str(error)
        return None

    for value in ("a", 300, 2 ** 70):
        expected = refusal(real_torch, contextlib.nullcontext(), value)
        assert expected is not None
        assert refusal(chainrule, contextlib.nullcontext(), value) == expected
        assert refusal(chainrule, _Pass(), value) == expected


# ---- a user's item() / float() / int() / bool() / index() / complex(): torch's aten._local_scalar_dense
def _scalars(lib):
    import operator

    s, i, c = lib.tensor(2.5), lib.tensor(3), lib.tensor(1 + 0j)
    return {"item": lambda: s.item(), "float": lambda: float(s), "int": lambda: int(s), "bool": lambda: bool(s),
            "index": lambda: operator.index(i), "range": lambda: list(range(i)), "complex": lambda: complex(c),
            "float_of_complex": lambda: float(c), "if": lambda: 1 if s else 0,
            "item_of_many": lambda: lib.ones(2).item(), "bool_of_many": lambda: bool(lib.ones(2)),
            "float_of_many": lambda: float(lib.ones(2)), "tolist": lambda: s.tolist(),
            "loss_item": lambda: (lib.ones(3) * 2).sum().item()}


@pytest.mark.parametrize("name", sorted(_scalars(chainrule)))
def test_a_mode_sees_a_users_scalar_read_as_torch_shows_it(name):
    def run(lib):
        lines = []

        class Log(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                  else _python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                lines.append(f"{func} {[str(a.dtype).split('.')[-1] if hasattr(a, 'dtype') else a for a in args]}")
                return func(*args, **(kwargs or {}))

        call = _scalars(lib)[name]
        with Log():
            try:
                value = call()
            except (RuntimeError, ValueError) as error:
                value = (type(error).__name__, str(error))
        return lines, value

    assert run(chainrule) == run(real_torch)


def test_a_handler_that_answers_local_scalar_dense_gives_the_users_number():
    def run(lib):
        class Answer(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                     else _python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if str(func) == "aten._local_scalar_dense.default":
                    return 7.0
                return func(*args, **(kwargs or {}))

        s = lib.tensor(2.5)
        with Answer():
            return s.item(), float(s), int(s), bool(s)

    assert run(chainrule) == run(real_torch)


def test_the_outer_of_two_modes_sees_local_scalar_dense_once():
    def run(lib):
        lines = []

        def logging(tag):
            class Log(real_torch.utils._python_dispatch.TorchDispatchMode if lib is real_torch
                      else _python_dispatch.TorchDispatchMode):
                def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                    lines.append(f"{tag} {func}")
                    return func(*args, **(kwargs or {}))
            return Log()

        s = lib.tensor(1.5)
        with logging("outer"), logging("inner"):
            value = s.item()
        return lines, value

    assert run(chainrule) == run(real_torch)
