"""torch 2.13's hop_db entries for the control flow users reach by public names (``torch.cond``,
``torch.while_loop``, ``torch._higher_order_ops.scan`` and ``map``, functorch's ``control_flow.map``),
run on chainrule and compared with torch: the entry's own function, with ``torch`` and ``map`` bound to
chainrule's, on torch's float64 sample; values, and gradients under one seeded cotangent where the sample's
tensors require grad. torch's side runs ``torch.cond``/``torch.while_loop`` themselves and, for
``scan`` and ``map``, torch's eager reference loops. The compiler-only entries are listed with why they are not run."""

import functools
import types

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip("the entries are torch 2.13's hop_db", allow_module_level=True)

from chainrule.utils._pytree import tree_leaves  # noqa: E402

RUN = ("scan.simple", "map.simple", "map.nested", "map.triple_nested", "cond.simple", "while_loop.simple")
NOT_RUN = {
    "invoke_subgraph.simple": "a compiler region marker (mark_compile_region): no eager semantics of its own",
    "invoke_quant.simple": "a compiler annotation for quantisation passes",
    "invoke_quant_packed.simple": "a compiler annotation for quantisation passes",
    "while_loop_stack_output.simple": "torch.export's internal form of while_loop (stacked per-step outputs), "
                                      "no public name",
    "auto_functionalize.simple": "the functionalisation pass's wrapper around a mutating custom op",
    "flex_attention.simple": "the traced HOP behind flex_attention (tests/compat/test_flex_attention.py covers "
                             "the public function)",
    "flex_attention_backward.simple": "a compiled backward kernel of flex_attention",
    "flex_attention_backward.explicit_buffers": "a compiled backward kernel of flex_attention",
    "local_map_hop.simple": "DTensor local_map under the compiler",
    "register_hook.simple": "the traced form of Tensor.register_hook",
    "inline_asm_elementwise.simple": "inline PTX/AMDGCN assembly: GPU compiler only",
}


@functools.cache
def _hop_db():
    """torch's hop_db, imported by the first test that reads it: importing it (and the parts of
    torch.testing._internal it loads) at collection cost each pytest-xdist worker about 5 s of CI."""
    from torch.testing._internal.hop_db import hop_db

    return hop_db


def _entry(name):
    return next(op for op in _hop_db() if f"{op.name}.{op.variant_test_name}" == name)


def _on_chainrule(function):
    """The entry's function with its module's ``torch`` and ``map`` (functorch's) bound to chainrule's;
    nested bodies defined inside take the same globals."""
    namespace = {**function.__globals__, "torch": chainrule, "map": chainrule._higher_order_ops.map}
    return types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                              function.__closure__)


class _TorchWithEagerReferences:
    """torch, except that its control-flow operators are their eager CPU implementations: the dense
    kernels of ``cond`` and ``while_loop``, and for ``scan`` and functorch's ``map`` the reference
    loops torch's own HOP tests compare with (``_fake_scan``, ``_fake_map``). Called from Python, the
    operators first trace their bodies with dynamo, seconds apiece: too slow for CI."""

    def __init__(self):
        from torch._higher_order_ops.cond import cond_op_dense
        from torch._higher_order_ops.scan import _fake_scan
        from torch._higher_order_ops.while_loop import while_loop_dense

        self.cond = lambda pred, true_fn, false_fn, operands: cond_op_dense(pred, true_fn, false_fn, tuple(operands))
        self._higher_order_ops = types.SimpleNamespace(
            scan=_fake_scan, while_loop=lambda cond_fn, body_fn, carried: while_loop_dense(cond_fn, body_fn, carried, ()))

    def __getattr__(self, name):
        return getattr(torch, name)


def _on_torch_references(function):
    from torch._higher_order_ops.map import _fake_map

    namespace = {**function.__globals__, "torch": _TorchWithEagerReferences(), "map": _fake_map}
    return types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                              function.__closure__)


def _to_chainrule(value):
    if isinstance(value, torch.Tensor):
        converted = chainrule.tensor(value.detach().numpy(), dtype=getattr(chainrule, str(value.dtype)[6:]))
        return converted.requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_chainrule(v) for v in value)
    return value


def test_every_hop_db_entry_is_run_or_skipped_with_a_reason():
    names = {f"{op.name}.{op.variant_test_name}" for op in _hop_db()}
    assert names == set(RUN) | set(NOT_RUN)


@pytest.mark.parametrize("name", RUN)
def test_hop_db_entry_matches_torch(name):
    op = _entry(name)
    # drawn requiring grad even where torch's entry says no autograd (scan): its reference loop is
    # differentiable, and so is chainrule's scan
    sample = next(iter(op.sample_inputs("cpu", torch.float64, requires_grad=True)))
    torch_args = [sample.input, *sample.args]
    ours_args = _to_chainrule(torch_args)
    expected = tree_leaves(_on_torch_references(op.op)(*torch_args))
    actual = tree_leaves(_on_chainrule(op.op)(*ours_args))
    assert [tuple(t.shape) for t in actual] == [tuple(t.shape) for t in expected]
    assert [str(t.dtype).split(".")[-1] for t in actual] == [str(t.dtype).split(".")[-1] for t in expected]
    for mine, theirs in zip(actual, expected):
        np.testing.assert_allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    torch_inputs = [t for t in tree_leaves(torch_args) if t.requires_grad]
    ours_inputs = [t for t in tree_leaves(ours_args) if t.requires_grad]
    if not torch_inputs:  # while_loop's sample: an int counter and a tensor that needs no grad
        return
    generator = np.random.default_rng(0)
    cotangents = [generator.standard_normal(tuple(t.shape)) for t in expected]
    expected_grads = torch.autograd.grad(expected, torch_inputs, [torch.tensor(c) for c in cotangents],
                                         allow_unused=True)
    actual_grads = chainrule.autograd.grad(actual, ours_inputs, [chainrule.tensor(c) for c in cotangents],
                                           allow_unused=True)
    for mine, theirs in zip(actual_grads, expected_grads):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dim, reverse", [(0, False), (1, True), (-1, False)])
def test_scan_over_a_dim_and_in_reverse_matches_torchs_reference(dim, reverse):
    from torch._higher_order_ops.scan import _fake_scan

    xs_values = np.arange(12.0).reshape(3, 4) / 7
    results = []
    for lib, scan in ((torch, _fake_scan), (chainrule, chainrule._higher_order_ops.scan)):
        xs = lib.tensor(xs_values, requires_grad=True)
        init = lib.zeros(xs_values.shape[0 if dim else 1], dtype=lib.float64)

        def combine(carry, x):
            return carry * 0.5 + x.sin(), (x * carry, carry.sum())

        carry, (ys, totals) = (scan(combine, init, xs, dim=dim, reverse=reverse) if lib is chainrule
                               else scan(combine, init, xs, dim, reverse))
        (gradient,) = lib.autograd.grad((carry.sum() + (ys * ys).sum() + totals.sum()), (xs,))
        results.append([t.detach().numpy() for t in (carry, ys, totals, gradient)])
    for mine, theirs in zip(results[1], results[0]):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)


def test_scan_over_an_empty_dim_raises_torchs_error():
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError) as raised:
            lib._higher_order_ops.scan(lambda c, x: (c + x, x), lib.zeros(3), lib.zeros(0, 3))
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
