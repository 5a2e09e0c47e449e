"""nn names added in session 6, each run on chainrule and on torch with the same parameters and
compared: AdaptiveLogSoftmaxWithLoss (training steps), the fractional/3-d pooling modules, and the
deprecated nn.init aliases."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _copy_parameters(ours, theirs) -> None:
    state = {name: chainrule.tensor(value.detach().numpy()) for name, value in theirs.state_dict().items()}
    ours.load_state_dict(state)


def test_adaptive_log_softmax_trains_like_torch():
    def build(lib):
        return lib.nn.AdaptiveLogSoftmaxWithLoss(16, 20, cutoffs=[4, 10], div_value=2.0, head_bias=True)

    torch.manual_seed(0)
    theirs = build(torch)
    ours = build(chainrule)
    _copy_parameters(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 16)).astype(np.float32)
    target = np.array([0, 3, 4, 9, 10, 19, 2, 15, 5, 11, 1, 18])
    optimizers = [lib.optim.SGD(model.parameters(), lr=0.5) for lib, model in ((chainrule, ours), (torch, theirs))]
    for _ in range(3):
        results = []
        for lib, model, optimizer in zip((chainrule, torch), (ours, theirs), optimizers):
            optimizer.zero_grad()
            output, loss = model(lib.tensor(x), lib.tensor(target))
            loss.backward()
            optimizer.step()
            results.append((output.detach().numpy(), loss.item()))
        np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
        assert results[0][1] == pytest.approx(results[1][1], rel=1e-5)
    for method in ("log_prob", "predict"):
        ours_out = getattr(ours, method)(chainrule.tensor(x)).detach().numpy()
        theirs_out = getattr(theirs, method)(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(ours_out, theirs_out, rtol=1e-5, atol=1e-6)
    single = ours(chainrule.tensor(x[0]), chainrule.tensor(target[0]))
    assert single.output.shape == () and single.loss.item() == pytest.approx(-single.output.item())


@pytest.mark.parametrize("call, error, match", [
    (lambda lib: lib.nn.AdaptiveLogSoftmaxWithLoss(8, 10, []), ValueError, "length larger than 0"),
    (lambda lib: lib.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3]), ValueError, "sorted in an increasing order"),
    (lambda lib: lib.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3])(lib.zeros(2, 8), lib.tensor([1, 10])),
     RuntimeError, r"Target values should be in \[0, 9\]"),
    (lambda lib: lib.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3])(lib.zeros(2, 8), lib.tensor([1])),
     RuntimeError, "same size in the batch dimension"),
    (lambda lib: lib.nn.FractionalMaxPool2d(2), ValueError, "requires specifying either an output size"),
])
def test_module_errors_match_torch(call, error, match):
    for lib in (chainrule, torch):
        with pytest.raises(error, match=match):
            call(lib)


def test_fractional_max_pool_modules_match_torch_with_fixed_samples():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    samples = rng.random((2, 3, 2)).astype(np.float32)
    outs = []
    for lib in (chainrule, torch):
        pool = lib.nn.FractionalMaxPool2d((2, 2), output_ratio=(0.5, 0.6), return_indices=True,
                                          _random_samples=lib.tensor(samples))
        inp = lib.tensor(x, requires_grad=True)
        out, indices = pool(inp)
        out.sum().backward()
        outs.append((out.detach().numpy(), indices.numpy(), inp.grad.numpy()))
        unbatched = lib.nn.FractionalMaxPool2d(3, output_size=(4, 4), _random_samples=lib.tensor(samples[:1]))
        outs[-1] += (unbatched(lib.tensor(x[0])).numpy(),)
    for ours, theirs in zip(*outs):
        np.testing.assert_array_equal(ours, theirs)
    # without fixed samples the windows are random but the shape is fixed
    drawn = chainrule.nn.FractionalMaxPool3d(2, output_size=(2, 3, 2))(chainrule.randn(1, 2, 5, 6, 5))
    assert drawn.shape == (1, 2, 2, 3, 2)


def test_lp_pool3d_and_max_unpool3d_modules_match_torch():
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 6, 4)).astype(np.float32)
    outs = []
    for lib in (chainrule, torch):
        pooled, indices = lib.nn.MaxPool3d(2, return_indices=True)(lib.tensor(x))
        outs.append((lib.nn.LPPool3d(2, (2, 3, 2))(lib.tensor(x)).numpy(),
                     lib.nn.MaxUnpool3d(2)(pooled, indices).numpy()))
    for ours, theirs in zip(*outs):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)


@pytest.mark.parametrize("name, args", [("eye", ()), ("dirac", ()), ("sparse", (0.5,)), ("uniform", ()),
                                        ("kaiming_normal", ())])
def test_deprecated_init_aliases_warn_and_fill(name, args):
    shape = (4, 4, 3) if name == "dirac" else (4, 4)
    for lib in (chainrule, torch):
        weight = lib.empty(shape)
        with pytest.warns(FutureWarning, match=f"`nn.init.{name}` is now deprecated in favor of `nn.init.{name}_`"):
            result = getattr(lib.nn.init, name)(weight, *args)
        assert result is weight
    if name in ("eye", "dirac"):
        ours = getattr(chainrule.nn.init, name + "_")(chainrule.empty(shape)).numpy()
        np.testing.assert_array_equal(ours, getattr(torch.nn.init, name + "_")(torch.empty(shape)).numpy())


@pytest.mark.parametrize("channels, size", [(5, 3), (7, 4), (3, 5), (1, 2)])
def test_cross_map_lrn2d_matches_torchs_forward_and_its_legacy_backward(channels, size):
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((2, channels, 3, 4))
    grad = rng.standard_normal(x.shape)
    results = []
    for lib in (chainrule, torch):
        inp = lib.tensor(x, requires_grad=True)
        out = lib.nn.CrossMapLRN2d(size, alpha=0.5, beta=0.7, k=1.5)(inp)
        out.backward(lib.tensor(grad))
        results.append((out.detach().numpy(), inp.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    for lib in (chainrule, torch):
        with pytest.raises(ValueError, match="Expected input to be 4D, got 3D instead"):
            lib.nn.CrossMapLRN2d(3)(lib.zeros(2, 3, 4))
    assert repr(chainrule.nn.CrossMapLRN2d(3)) == repr(torch.nn.CrossMapLRN2d(3))
