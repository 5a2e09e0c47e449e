"""s45 mendAI: what a TorchDispatchMode's handler gets for the common ops is torch's aten schema
(func's overload, positional args, kwargs), and calling ``func`` with arguments the handler changed
runs what it asked for. Each case runs the same mode under torch and chainrule."""

import numpy as np
import pytest
import torch as real_torch

import chainrule
from chainrule.utils import _python_dispatch


def _mode_class(lib):
    if lib is real_torch:
        from torch.utils._python_dispatch import TorchDispatchMode
        return TorchDispatchMode
    return _python_dispatch.TorchDispatchMode


def _show(value, lib):
    if isinstance(value, lib.Tensor):
        return f"T{list(value.shape)}:{str(value.dtype).split('.')[-1]}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v, lib) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(_show(v, lib) + ", " for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v, lib)}" for k, v in value.items()) + "}"
    return repr(value).replace("chainrule.", "torch.")


def _line_logger(lib, lines: list):
    """A logging mode of ``lib`` that appends ``func args kwargs`` (tensors by shape) to ``lines``."""
    class Log(_mode_class(lib)):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            lines.append(f"{func} {_show(tuple(args), lib)} {_show(kwargs, lib)}")
            return func(*args, **kwargs)

    return Log()


def _logged(lib, fn):
    """The lines a logging mode writes for ``fn(lib)``: ``func args kwargs``, tensors by shape."""
    lines = []
    lib.manual_seed(0)
    inputs = _inputs(lib)
    with _line_logger(lib, lines):
        fn(lib, inputs)
    return lines


def _inputs(lib):
    rng = np.random.default_rng(0)

    def t(*shape):
        return lib.tensor(rng.standard_normal(shape), dtype=lib.float32)

    return {"x": t(2, 3), "y": t(2, 3), "m": t(3, 4), "b1": t(5, 2, 3), "b2": t(5, 3, 4), "img": t(1, 2, 5, 5),
            "w": t(3, 2, 3, 3), "bias": t(3), "lw": t(4, 3), "lb": t(4), "emb": t(10, 3),
            "idx": lib.tensor([1, 0]), "tgt": lib.tensor([0, 2]), "x3": t(2, 3, 4)}


def F(lib):
    return lib.nn.functional


# (name, program): each op's line is torch's
CASES = {
    "transpose": lambda lib, a: a["x"].transpose(0, 1),
    "clone": lambda lib, a: a["x"].clone(),
    "contiguous_of_permute": lambda lib, a: a["x"].permute(1, 0).contiguous(),
    "sum_dim": lambda lib, a: a["x"].sum(1),
    "sum_all": lambda lib, a: a["x"].sum(),
    "sum_keepdim": lambda lib, a: a["x"].sum(1, keepdim=True),
    "sum_dtype": lambda lib, a: a["x"].sum(0, dtype=lib.float64),
    "mean_all": lambda lib, a: a["x"].mean(),
    "mean_dim": lambda lib, a: a["x"].mean(0),
    "mean_keepdim": lambda lib, a: a["x"].mean(1, keepdim=True),
    "softmax": lambda lib, a: a["x"].softmax(1),
    "log_softmax": lambda lib, a: a["x"].log_softmax(1),
    "view": lambda lib, a: a["x"].view(3, 2),
    "reshape": lambda lib, a: a["x"].reshape(3, 2),
    "flatten": lambda lib, a: a["x"].flatten(),
    "permute": lambda lib, a: a["x3"].permute(2, 0, 1),
    "unsqueeze": lambda lib, a: a["x"].unsqueeze(0),
    "squeeze_dim": lambda lib, a: a["x"].unsqueeze(0).squeeze(0),
    "expand": lambda lib, a: a["x"].expand(2, 2, 3),
    "repeat": lambda lib, a: a["x"].repeat(2, 1),
    "to_float64": lambda lib, a: a["x"].to(lib.float64),
    "double": lambda lib, a: a["x"].double(),
    "long_then_float": lambda lib, a: a["x"].long().float(),
    "type": lambda lib, a: a["x"].type(lib.float64),
    "mul_int": lambda lib, a: a["x"] * 2,
    "mul_float": lambda lib, a: a["x"] * 2.5,
    "mul_tensor": lambda lib, a: a["x"] * a["y"],
    "add_int": lambda lib, a: a["x"] + 1,
    "add_alpha": lambda lib, a: lib.add(a["x"], a["y"], alpha=2),
    "sub": lambda lib, a: a["x"] - a["y"],
    "sub_number": lambda lib, a: a["x"] - 1,
    "rsub": lambda lib, a: 1 - a["x"],
    "div": lambda lib, a: a["x"] / a["y"],
    "div_number": lambda lib, a: a["x"] / 2,
    "pow": lambda lib, a: a["x"] ** 2,
    "max_dim": lambda lib, a: a["x"].max(1),
    "max_dim_keepdim": lambda lib, a: a["x"].max(1, keepdim=True),
    "max_all": lambda lib, a: a["x"].max(),
    "min_dim": lambda lib, a: a["x"].min(1),
    "min_all": lambda lib, a: a["x"].min(),
    "amax": lambda lib, a: a["x"].amax(1),
    "amin_keepdim": lambda lib, a: a["x"].amin(0, keepdim=True),
    "var_dim": lambda lib, a: a["x"].var(1),
    "std_all": lambda lib, a: a["x"].std(),
    "norm": lambda lib, a: a["x"].norm(),
    "cat": lambda lib, a: lib.cat([a["x"], a["y"]]),
    "cat_dim": lambda lib, a: lib.cat([a["x"], a["y"]], 1),
    "stack": lambda lib, a: lib.stack([a["x"], a["y"]]),
    "stack_dim": lambda lib, a: lib.stack([a["x"], a["y"]], 1),
    "split": lambda lib, a: a["x"].split(1),
    "split_sizes": lambda lib, a: a["x3"].split([1, 3], 2),
    "chunk": lambda lib, a: a["x"].chunk(3, 1),
    "unbind": lambda lib, a: a["x"].unbind(0),
    "select": lambda lib, a: a["x"][0],
    "select_dim": lambda lib, a: a["x3"][:, 1],
    "select_ellipsis": lambda lib, a: a["x3"][..., 2],
    "slice": lambda lib, a: a["x"][:, 1:],
    "slice_step": lambda lib, a: a["x3"][:, :, 1:4:2],
    "narrow": lambda lib, a: a["x"].narrow(1, 0, 2),
    "index": lambda lib, a: a["x"][a["idx"]],
    "mm": lambda lib, a: lib.mm(a["x"], a["m"]),
    "matmul": lambda lib, a: a["x"] @ a["m"],
    "bmm": lambda lib, a: lib.bmm(a["b1"], a["b2"]),
    "linear": lambda lib, a: F(lib).linear(a["x"], a["lw"], a["lb"]),
    "conv2d": lambda lib, a: F(lib).conv2d(a["img"], a["w"], a["bias"], padding=1),
    "conv2d_stride": lambda lib, a: F(lib).conv2d(a["img"], a["w"], None, stride=2, dilation=2),
    "max_pool2d": lambda lib, a: F(lib).max_pool2d(a["img"], 2),
    "max_pool2d_stride": lambda lib, a: F(lib).max_pool2d(a["img"], 3, 1, 1),
    "layer_norm": lambda lib, a: F(lib).layer_norm(a["x"], (3,)),
    "embedding": lambda lib, a: F(lib).embedding(a["idx"], a["emb"]),
    "cross_entropy": lambda lib, a: F(lib).cross_entropy(a["x"], a["tgt"]),
    "nll_loss_sum": lambda lib, a: F(lib).nll_loss(a["x"].log_softmax(1), a["tgt"], reduction="sum"),
    "gelu": lambda lib, a: F(lib).gelu(a["x"]),
    "gelu_tanh": lambda lib, a: F(lib).gelu(a["x"], approximate="tanh"),
    "clamp": lambda lib, a: a["x"].clamp(-1, 1),
    "clamp_min": lambda lib, a: a["x"].clamp(min=0),
    "clamp_max": lambda lib, a: a["x"].clamp(max=0),
    "masked_fill": lambda lib, a: a["x"].masked_fill(a["x"] > 0, 0.0),
    "relu_exp_tanh": lambda lib, a: a["x"].relu().exp().tanh(),
    "where": lambda lib, a: lib.where(a["x"] > 0, a["x"], a["y"]),
    "in_place_add_mul": lambda lib, a: a["x"].clone().add_(a["y"]).mul_(2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_mode_sees_torchs_schema(name):
    assert _logged(chainrule, CASES[name]) == _logged(real_torch, CASES[name])


def _editing_mode(lib, edits):
    """A mode that rewrites the arguments of the ops named in ``edits`` and calls func with them."""
    seen = []

    class Edit(_mode_class(lib)):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            edit = edits.get(str(func))
            if edit is not None:
                seen.append(str(func))
                args, kwargs = edit(lib, list(args), kwargs)
            return func(*args, **kwargs)

    return Edit(), seen


def _set(position, value):
    def edit(lib, args, kwargs):
        args[position] = value(lib) if callable(value) else value
        return args, kwargs
    return edit


def _in_place_dim(lib, args, kwargs):
    args[1][0] = 0  # the handler's own list, edited in place
    return args, kwargs


EDITS = {
    "sum_dim": ({"aten.sum.dim_IntList": _set(1, [0])}, lambda lib, a: a["x"].sum(1)),
    "sum_dim_in_place": ({"aten.sum.dim_IntList": _in_place_dim}, lambda lib, a: a["x"].sum(1)),
    "softmax_dim": ({"aten._softmax.default": _set(1, 0)}, lambda lib, a: a["x"].softmax(1)),
    "view_shape": ({"aten.view.default": _set(1, [6, 1])}, lambda lib, a: a["x"].view(3, 2)),
    "mul_number": ({"aten.mul.Tensor": _set(1, 3)}, lambda lib, a: a["x"] * 2),
    "mul_other": ({"aten.mul.Tensor": _set(1, lambda lib: lib.ones(2, 3))}, lambda lib, a: a["x"] * 2),
    "select_index": ({"aten.select.int": _set(2, 1)}, lambda lib, a: a["x"][0]),
    "slice_end": ({"aten.slice.Tensor": _set(3, 2)}, lambda lib, a: a["x"][:, 1:]),
    "to_copy_dtype": ({"aten._to_copy.default": lambda lib, args, kw: (args, {**kw, "dtype": lib.float16})},
                      lambda lib, a: a["x"].double()),
    "max_dim": ({"aten.max.dim": _set(1, 0)}, lambda lib, a: a["x"].max(1).values),
    "conv_stride": ({"aten.convolution.default": _set(3, [2, 2])},
                    lambda lib, a: F(lib).conv2d(a["img"], a["w"], a["bias"], padding=1)),
    "layer_norm_eps": ({"aten.native_layer_norm.default": _set(4, 0.5)}, lambda lib, a: F(lib).layer_norm(a["x"], (3,))),
    "nll_reduction": ({"aten.nll_loss_forward.default": _set(3, 2)},
                      lambda lib, a: F(lib).nll_loss(a["x"].log_softmax(1), a["tgt"])),
    "cat_dim": ({"aten.cat.default": lambda lib, args, kwargs: ([*args, 1], kwargs)},
                lambda lib, a: lib.cat([a["x"], a["y"]])),
    "clamp_bounds": ({"aten.clamp.default": _set(2, 0.1)}, lambda lib, a: a["x"].clamp(-1, 1)),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_handler_that_changes_an_argument_gets_what_it_asked_for(name):
    edits, program = EDITS[name]
    results = []
    for lib in (chainrule, real_torch):
        mode, seen = _editing_mode(lib, edits)
        inputs = _inputs(lib)
        with mode:
            out = program(lib, inputs)
        assert seen == list(edits)  # the edited op reached the handler under torch's name
        results.append(out)
    ours, theirs = results
    assert ours.dtype == getattr(chainrule, str(theirs.dtype).split(".")[-1])
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def _flops(lib):
    """A FLOP counter as users write one: 2·m·k·n of each mm/addmm, read from args' shapes."""
    counts = {}

    class Count(_mode_class(lib)):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func)
            if name == "aten.mm.default":
                (m, k), n = args[0].shape, args[1].shape[1]
                counts[name] = counts.get(name, 0) + 2 * m * k * n
            elif name == "aten.addmm.default":
                (m, k), n = args[1].shape, args[2].shape[1]
                counts[name] = counts.get(name, 0) + 2 * m * k * n
            elif name == "aten.convolution.default":
                out = func(*args, **(kwargs or {}))
                counts[name] = counts.get(name, 0) + 2 * out.numel() * args[1][0].numel()
                return out
            return func(*args, **(kwargs or {}))

    a = _inputs(lib)
    for t in a.values():
        if t.is_floating_point():
            t.requires_grad_(True)
    with Count():
        lib.mm(a["x"], a["m"]).sum().backward()
        F(lib).linear(a["x"], a["lw"], a["lb"]).sum()
        F(lib).conv2d(a["img"], a["w"], a["bias"], stride=1, padding=1).sum()
    return counts, a["x"].grad.numpy()


def test_a_flop_counting_mode_reads_the_shapes_of_mms_arguments():
    ours, grad = _flops(chainrule)
    theirs, t_grad = _flops(real_torch)
    assert ours == theirs
    np.testing.assert_allclose(grad, t_grad, rtol=1e-6)


def test_a_passing_mode_keeps_gradients_and_values():
    def run(lib):
        class Pass(_mode_class(lib)):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                return func(*[list(a) if isinstance(a, list) else a for a in args], **dict(kwargs or {}))

        a = _inputs(lib)
        x = a["x3"].requires_grad_(True)
        with Pass():
            out = (x.sum(1, keepdim=True) * x.softmax(2)).permute(2, 0, 1)[1:, 0].max(1).values
            out = F(lib).layer_norm(out.reshape(1, -1), (out.numel(),)).sum() + x.norm()
        out.backward()
        return out.item(), x.grad.numpy()

    (value, grad), (t_value, t_grad) = run(chainrule), run(real_torch)
    assert value == pytest.approx(t_value, rel=1e-5)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-4, atol=1e-6)


def test_a_wrapper_subclass_sees_the_schema_and_runs_on_its_inner_tensors():
    lines = []

    class Wrapper(chainrule.Tensor):
        @staticmethod
        def __new__(cls, inner):
            out = chainrule.Tensor._make_wrapper_subclass(cls, inner.shape, dtype=inner.dtype)
            out.inner = inner
            return out

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            lines.append(str(func))
            unwrap = lambda v: v.inner if isinstance(v, Wrapper) else [unwrap(i) for i in v] if isinstance(v, list) else v  # noqa: E731
            out = func(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in (kwargs or {}).items()})
            return Wrapper(out) if isinstance(out, chainrule.Tensor) else out

    x = chainrule.tensor(np.arange(6.0).reshape(2, 3), dtype=chainrule.float32)
    w = Wrapper(x)
    out = chainrule.cat([w.sum(1, keepdim=True) * 2, w[:, 1:]], 1).softmax(1)
    expected = chainrule.cat([x.sum(1, keepdim=True) * 2, x[:, 1:]], 1).softmax(1)
    assert lines == ["aten.sum.dim_IntList", "aten.mul.Tensor", "aten.slice.Tensor", "aten.cat.default",
                     "aten._softmax.default"]
    np.testing.assert_allclose(out.inner.numpy(), expected.numpy())


def test_a_wrapper_swaps_a_tensor_that_stands_at_several_places():
    class Wrapper(chainrule.Tensor):
        @staticmethod
        def __new__(cls, inner):
            out = chainrule.Tensor._make_wrapper_subclass(cls, inner.shape, dtype=inner.dtype)
            out.inner = inner
            return out

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            unwrap = lambda v: v.inner if isinstance(v, Wrapper) else [unwrap(i) for i in v] if isinstance(v, list) else v  # noqa: E731
            out = func(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in (kwargs or {}).items()})
            assert not isinstance(out, Wrapper)  # the op ran on the inner tensors only
            return Wrapper(out)

    x = chainrule.tensor(np.arange(6.0).reshape(2, 3), dtype=chainrule.float32)
    w = Wrapper(x)
    np.testing.assert_allclose((w * w).inner.numpy(), (x * x).numpy())
    np.testing.assert_allclose(chainrule.cat([w, w], 1).inner.numpy(), chainrule.cat([x, x], 1).numpy())
