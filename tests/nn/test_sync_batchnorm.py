"""nn.SyncBatchNorm in one process (no process group): torch's BatchNorm behaviour, and
convert_sync_batchnorm's module surgery. The multi-process equality with one BatchNorm over the
global batch is tests/distributed/test_distributed.py's sync_bn scenario."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _model(lib):
    return lib.nn.Sequential(lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(4),
                             lib.nn.Sequential(lib.nn.Flatten(), lib.nn.BatchNorm1d(36, momentum=None)))


def test_convert_sync_batchnorm_as_torch_and_equal_to_batchnorm_without_a_group():
    chainrule.manual_seed(0)
    ours_plain = _model(chainrule)
    theirs_plain = _model(torch)
    theirs_plain.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours_plain.state_dict().items()})
    ours = chainrule.nn.SyncBatchNorm.convert_sync_batchnorm(ours_plain)
    theirs = torch.nn.SyncBatchNorm.convert_sync_batchnorm(theirs_plain)
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours[1].weight is ours_plain[1].weight  # parameters are shared, as torch's
    x = np.random.default_rng(0).standard_normal((5, 3, 5, 5)).astype(np.float32)
    for _ in range(2):
        out, tout = ours(chainrule.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    # sum(out) (and sum(out²)) is constant through BatchNorm, its gradient only rounding noise: weight the outputs
    weights = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    (out * chainrule.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours[0].weight.grad.numpy(), theirs[0].weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value.numpy(), theirs.state_dict()[key].numpy(), rtol=1e-5, atol=1e-6)


def test_sync_batchnorm_errors_as_torch():
    for lib in (chainrule, torch):
        with pytest.raises(ValueError, match="expected at least 2D input \\(got 1D input\\)"):
            lib.nn.SyncBatchNorm(3)(lib.ones(3))
