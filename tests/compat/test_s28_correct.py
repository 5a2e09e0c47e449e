"""Session 28, lane correct: gaps other lanes found, each checked against torch 2.13 on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- NLL's saved tensors
_NLL_CASES = [
    ("nll_loss", (4, 3), {}),
    ("nll_loss", (4, 3), {"reduction": "none"}),
    ("nll_loss", (4, 3), {"reduction": "sum", "ignore_index": 2}),
    ("nll_loss", (4, 3), {"weight": True}),
    ("nll_loss", (4, 3), {"weight": True, "reduction": "none"}),
    ("nll_loss", (2, 3, 2, 2), {}),
    ("nll_loss", (2, 3, 2, 2), {"weight": True, "reduction": "sum"}),
    ("cross_entropy", (4, 3), {}),
    ("cross_entropy", (4, 3), {"weight": True, "ignore_index": 1}),
    ("cross_entropy", (2, 3, 2, 2), {"reduction": "sum"}),
    ("nll_loss", (3,), {}),
]


def _nll_inputs(lib, shape, kwargs):
    x = (lib.arange(float(np.prod(shape))).reshape(shape) / 5 - 1).requires_grad_()
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target = lib.tensor(np.arange(int(np.prod(target_shape))).reshape(target_shape) % classes)
    kwargs = dict(kwargs)
    if kwargs.get("weight"):
        kwargs["weight"] = lib.linspace(0.5, 2.0, classes)
    return x, target, kwargs


def _packed_saved(lib, name, shape, kwargs):
    x, target, kwargs = _nll_inputs(lib, shape, kwargs)
    packed = []

    def pack(tensor):
        packed.append((tuple(tensor.shape), str(tensor.dtype).split(".")[1]))
        return tensor

    with lib.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = getattr(lib.nn.functional, name)(x, target, **kwargs)
    loss.sum().backward()
    return packed, x.grad.numpy()


@pytest.mark.parametrize(("name", "shape", "kwargs"), _NLL_CASES)
def test_nll_node_packs_self_target_weight_and_total_weight_as_torch(name, shape, kwargs):
    """torch's NllLossBackward0 saves self, target, weight (when given) and total_weight, so
    saved_tensors_hooks pack each of them (chainrule packed self alone)."""
    expected, expected_grad = _packed_saved(torch, name, shape, kwargs)
    got, grad = _packed_saved(chainrule, name, shape, kwargs)
    assert got == expected
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "shape", "kwargs"), _NLL_CASES)
def test_nll_saved_attributes_read_as_torchs(name, shape, kwargs):
    """_saved_target is the caller's target, _saved_weight its weight, and _saved_total_weight is
    0 unreduced and the summed row weights for 'sum' and 'mean'."""
    results = []
    for lib in (torch, chainrule):
        x, target, kw = _nll_inputs(lib, shape, kwargs)
        node = getattr(lib.nn.functional, name)(x, target, **kw).grad_fn
        results.append((node.name(), node._saved_target is target,
                        node._saved_weight is kw.get("weight"), float(node._saved_total_weight)))
    assert results[1] == results[0]


@pytest.mark.parametrize("which", ["target", "weight"])
@pytest.mark.parametrize("name", ["nll_loss", "cross_entropy"])
def test_writing_the_target_or_weight_in_place_before_backward_raises_as_torch(name, which):
    messages = []
    for lib in (torch, chainrule):
        x, target, kwargs = _nll_inputs(lib, (4, 3), {"weight": True})
        loss = getattr(lib.nn.functional, name)(x, target, **kwargs)
        (target if which == "target" else kwargs["weight"]).add_(1 if which == "target" else 1.0)
        with pytest.raises(RuntimeError) as error:
            loss.backward()
        messages.append(str(error.value))
    assert messages[1] == messages[0]
    assert "modified by an inplace operation" in messages[0]
