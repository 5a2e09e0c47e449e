"""torch.nn.utils._per_sample_grad.call_for_per_sample_grads and ExpandedWeight (opacus's
``grad_sample_mode="ew"``): per-sample gradients in ``param.grad_sample`` compared with torch 2.13's,
for every layer function ExpandedWeights handles, both loss reductions; torch's refusals word for word."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])

CASES = {
    "linear": (lambda nn: nn.Linear(4, 3), (5, 4)),
    "linear_3d_input": (lambda nn: nn.Linear(4, 3), (5, 2, 4)),
    "conv1d_strided": (lambda nn: nn.Conv1d(2, 2, 2, stride=2), (3, 2, 6)),
    "conv2d_grouped": (lambda nn: nn.Conv2d(4, 2, 3, padding=1, groups=2), (3, 4, 5, 5)),
    "embedding": (lambda nn: nn.Embedding(7, 3), "indices"),
    "group_norm": (lambda nn: nn.GroupNorm(2, 4), (3, 4, 5)),
    "layer_norm": (lambda nn: nn.LayerNorm(5), (3, 2, 5)),
    "instance_norm": (lambda nn: nn.InstanceNorm1d(4, affine=True), (3, 4, 6)),
}


def _per_sample(lib, case: str, loss_reduction: str, dtype_name: str):
    from importlib import import_module

    call = import_module(f"{lib.__name__}.nn.utils._per_sample_grad").call_for_per_sample_grads
    build, shape = CASES[case]
    rng = np.random.default_rng(0)
    module = build(lib.nn).to(getattr(lib, dtype_name))
    with lib.no_grad():
        for p in module.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape))))
    x = (lib.tensor(rng.integers(0, 7, (4, 6))) if shape == "indices"
         else lib.tensor(rng.standard_normal(shape)).to(getattr(lib, dtype_name)))
    out = call(module, loss_reduction=loss_reduction)(x)
    weights = lib.tensor(rng.standard_normal(tuple(out.shape))).to(out.dtype)
    loss = (out.tanh() * weights).sum() if loss_reduction == "sum" else (out.tanh() * weights).mean()
    loss.backward()
    assert all(p.grad is None for p in module.parameters())  # per-sample only, as torch
    return [(name, p.grad_sample.detach().numpy()) for name, p in module.named_parameters()]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("loss_reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_per_sample_gradients_match_torch(case, loss_reduction, dtype_name):
    ours = _per_sample(chainrule, case, loss_reduction, dtype_name)
    theirs = _per_sample(torch, case, loss_reduction, dtype_name)
    tolerance = 1e-5 if dtype_name == "float32" else 1e-11
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    for (name, mine), (_, reference) in zip(ours, theirs):
        assert mine.dtype == reference.dtype, name
        np.testing.assert_allclose(mine, reference, rtol=tolerance, atol=tolerance, err_msg=name)


def test_per_sample_gradients_sum_to_the_batch_gradient():
    from chainrule.nn.utils._per_sample_grad import call_for_per_sample_grads

    layer = chainrule.nn.Conv2d(2, 3, 3, dtype=chainrule.float64)
    x = chainrule.randn(4, 2, 5, 5, dtype=chainrule.float64)
    call_for_per_sample_grads(layer)(x).square().sum().backward()
    per_sample = [p.grad_sample.sum(0) for p in layer.parameters()]
    for p in layer.parameters():
        p.grad_sample = None
    layer(x).square().sum().backward()
    for summed, p in zip(per_sample, layer.parameters()):
        np.testing.assert_allclose(summed.numpy(), p.grad.numpy(), rtol=1e-12, atol=1e-12)


def _used_twice(lib) -> list:
    from importlib import import_module

    call = import_module(f"{lib.__name__}.nn.utils._per_sample_grad").call_for_per_sample_grads

    class Twice(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = lib.nn.Linear(2, 2, dtype=lib.float64)

        def forward(self, x):
            return self.layer(self.layer(x))

    model = Twice()
    with lib.no_grad():
        model.layer.weight.copy_(lib.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=lib.float64))
        model.layer.bias.copy_(lib.tensor([0.1, -0.3], dtype=lib.float64))
    x = lib.tensor([[1.0, 2.0], [-1.0, 0.5], [3.0, 0.0]], dtype=lib.float64)
    call(model)(x).sum().backward()
    return [p.grad_sample.numpy() for p in model.parameters()]


def test_a_layer_used_twice_sums_its_contributions():
    for mine, reference in zip(_used_twice(chainrule), _used_twice(torch)):
        np.testing.assert_allclose(mine, reference, rtol=1e-12)


def _expanded(lib, weight, batch_size, loss_reduction):
    from importlib import import_module

    return import_module(f"{lib.__name__}.nn.utils._expanded_weights").ExpandedWeight(weight, batch_size, loss_reduction)


def _refusal(lib, action) -> str:
    from importlib import import_module

    call = import_module(f"{lib.__name__}.nn.utils._per_sample_grad").call_for_per_sample_grads
    with pytest.raises(RuntimeError) as info:
        action(lib, call)
    return str(info.value)


@pytest.mark.parametrize("action", [
    lambda lib, call: call(lib.nn.Linear(2, 2), loss_reduction="max"),
    lambda lib, call: call(lib.nn.Linear(2, 2), batch_size=0),
    lambda lib, call: call(lib.nn.Linear(2, 2), batch_size=2.0),
    lambda lib, call: call("not a module"),
    lambda lib, call: call(lib.nn.Linear(2, 2))(lib.ones(3, 2), lib.ones(4, 2)),
    lambda lib, call: call(lib.nn.BatchNorm1d(3))(lib.ones(4, 3)),
    lambda lib, call: call(lib.nn.Linear(3, 2), batch_size=5)(lib.ones(4, 3)),
    lambda lib, call: call(lib.nn.Linear(3, 2))(lib.ones(0, 3)),
    lambda lib, call: lib.nn.functional.linear(
        lib.ones(2, 3), _expanded(lib, lib.nn.Parameter(lib.ones(2, 3)), 2, "sum"),
        _expanded(lib, lib.nn.Parameter(lib.ones(2)), 2, "mean")),
], ids=["reduction", "batch_size_zero", "batch_size_float", "not_a_module", "two_batch_sizes", "batch_norm",
        "batch_size_mismatch", "empty_batch", "mixed_reductions"])
def test_refusals_match_torch(action):
    assert _refusal(chainrule, action) == _refusal(torch, action)


@LIBS
def test_leftover_grad_samples_are_refused(lib):
    from importlib import import_module

    call = import_module(f"{lib.__name__}.nn.utils._per_sample_grad").call_for_per_sample_grads
    layer = lib.nn.Linear(2, 2)
    layer.weight.grad_sample = lib.ones(1)
    with pytest.raises(RuntimeError, match="Current Expanded Weights accumulates the gradients"):
        call(layer)


@LIBS
def test_expanded_weight_answers_for_its_original(lib):
    from importlib import import_module

    expanded_weight = import_module(f"{lib.__name__}.nn.utils._expanded_weights").ExpandedWeight
    weight = lib.nn.Parameter(lib.ones(3, 2, dtype=lib.float64))
    expanded = expanded_weight(weight, 4, "mean")
    assert (expanded.shape, expanded.dtype, expanded.device) == (weight.shape, weight.dtype, weight.device)
    assert expanded.data_ptr() == weight.data_ptr()
    assert (expanded.batch_size, expanded.loss_reduction, expanded.batch_first) == (4, "mean", True)
    with pytest.raises(RuntimeError, match="requires_grad"):
        expanded_weight(lib.ones(2), 4, "sum")
