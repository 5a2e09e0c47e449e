"""nn.utils: gradient clipping and parameter vectors, compared with torch."""

import math

import numpy as np
import pytest

import chainrule
import chainrule.nn as nn
from chainrule.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters

torch = pytest.importorskip("torch")


def grads_pair(scale=1.0):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) * scale for s in [(3, 4), (4,), (2, 2, 2)]]
    ours, theirs = [], []
    for a in arrays:
        p = nn.Parameter(chainrule.zeros(*a.shape))
        p.grad = chainrule.tensor(a.copy())
        q = torch.nn.Parameter(torch.zeros(*a.shape))
        q.grad = torch.tensor(a.copy())
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3, math.inf, "inf"])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    ours, theirs = grads_pair()
    total_o = clip_grad_norm_(ours, max_norm, norm_type=float(norm_type))
    total_t = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=float(norm_type))
    assert isinstance(total_o, chainrule.Tensor) and total_o.dtype is chainrule.float32
    assert total_o.item() == pytest.approx(total_t.item(), rel=1e-5)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_single_tensor_none_grads_and_nonfinite():
    p = nn.Parameter(chainrule.zeros(2))
    p.grad = chainrule.tensor([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    assert np.allclose(p.grad.numpy(), [0.6, 0.8], atol=1e-5)
    assert clip_grad_norm_([nn.Parameter(chainrule.zeros(2))], 1.0).item() == 0.0
    p.grad = chainrule.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    q = torch.nn.Parameter(torch.zeros(2))
    q.grad = torch.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(q, 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_on_model_after_backward():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    model(chainrule.randn(16, 4)).pow(2).sum().mul(100).backward()
    total = clip_grad_norm_(model.parameters(), 1.0)
    after = math.sqrt(sum(float((p.grad * p.grad).sum()) for p in model.parameters()))
    assert total.item() > 1.0 and after == pytest.approx(1.0, rel=1e-4)


def test_clip_grad_value_matches_torch():
    ours, theirs = grads_pair(scale=3.0)
    clip_grad_value_(ours, 1.5)
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, q in zip(ours, theirs):
        assert np.array_equal(p.grad.numpy(), q.grad.numpy())


def test_parameters_to_vector_and_back():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = parameters_to_vector(model.parameters())
    assert vec.shape == (11,)
    expected = np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])
    assert np.array_equal(vec.detach().numpy(), expected)
    vec.sum().backward()  # differentiable, as torch's
    assert np.all(model[0].weight.grad.numpy() == 1)
    new = chainrule.arange(11, dtype=chainrule.float32)
    vector_to_parameters(new, model.parameters())
    assert model[0].weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert model[1].bias.tolist() == [10.0]
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        vector_to_parameters([1.0], model.parameters())


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 0])
def test_clip_grad_norm_on_the_gpu_stand_in(norm_type):
    # nanoGPT's train.py clips every step on 'cuda': the norms are taken on the device and the total
    # comes back on the gradients' device, as torch returns it
    from chainrule._backend import use_standin_cuda

    chainrule.manual_seed(0)
    host = nn.Linear(4, 3)
    host(chainrule.randn(5, 4)).pow(2).sum().backward()
    expected = clip_grad_norm_(host.parameters(), 1e9, norm_type=norm_type).item()
    with use_standin_cuda():
        model = nn.Linear(4, 3)
        model.load_state_dict(host.state_dict())
        model.weight.grad, model.bias.grad = host.weight.grad.cuda(), host.bias.grad.cuda()
        total = clip_grad_norm_(model.parameters(), 0.5, norm_type=norm_type)
        assert total.device.type == "cuda"
        assert math.isclose(total.item(), expected, rel_tol=1e-6)
        clipped = clip_grad_norm_(model.parameters(), 1e9, norm_type=norm_type).item()
        assert math.isclose(clipped, min(expected, 0.5), rel_tol=1e-5) or norm_type == 0


def test_clip_grad_norm_of_mixed_dtypes_and_empty_inputs_as_torch():
    # one norm per (device, dtype) group, stacked with type promotion; nothing to clip: torch.tensor(0.)
    def clip(lib):
        params = [lib.ones(3, dtype=lib.float16, requires_grad=True), lib.ones(2, dtype=lib.float64, requires_grad=True)]
        for p in params:
            p.grad = lib.full_like(p, 3.0)
        return lib.nn.utils.clip_grad_norm_(params, 1.0), params

    (total, params), (their_total, theirs) = clip(chainrule), clip(torch)
    assert total.dtype.itemsize == their_total.dtype.itemsize == 8 and total.item() == their_total.item()
    for p, q in zip(params, theirs):
        assert p.grad.dtype.itemsize == q.grad.dtype.itemsize
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    empty = clip_grad_norm_([], 1.0)
    assert empty.item() == torch.nn.utils.clip_grad_norm_([], 1.0).item() == 0.0 and empty.dtype == chainrule.float32
    with pytest.warns(UserWarning, match="`parameters` is an empty generator, no gradient clipping will occur."):
        torch.nn.utils.clip_grad_norm_((p for p in []), 1.0)
    with pytest.warns(UserWarning, match="`parameters` is an empty generator, no gradient clipping will occur."):
        clip_grad_norm_((p for p in []), 1.0)


@pytest.mark.parametrize("clip", [lambda lib, ps: lib.nn.utils.clip_grad_norm_(ps, 1.0, foreach=True),
                                  lambda lib, ps: lib.nn.utils.clip_grad_value_(ps, 1.0, foreach=True)])
def test_foreach_true_on_a_device_without_foreach_raises_torchs_error(clip):
    def params(lib):
        p = lib.ones(3, device="meta", requires_grad=True)
        p.grad = lib.ones(3, device="meta")
        return [p]

    with pytest.raises(RuntimeError) as theirs:
        clip(torch, params(torch))
    with pytest.raises(RuntimeError) as ours:
        clip(chainrule, params(chainrule))
    assert str(ours.value) == str(theirs.value) == "foreach=True was passed, but can't use the foreach API on meta tensors"
