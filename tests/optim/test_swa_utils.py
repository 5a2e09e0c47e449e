"""torch.optim.swa_utils: averaged weights, the SWA lr schedule and update_bn, against torch."""

import warnings

import numpy as np
import pytest

import chainrule
from chainrule.optim import swa_utils

torch = pytest.importorskip("torch")

STEPS = 6


def _model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _copy_weights(source, target):
    """chainrule's initial weights into a torch model, so both train from the same point."""
    for a, b in zip(source.state_dict().values(), target.state_dict().values()):
        b.copy_(torch.from_numpy(np.array(a.numpy())))


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)) for _ in range(STEPS)]


def _train_and_average(lib, make_averaged, reference=None):
    lib.manual_seed(0)
    model = _model(lib)
    if reference is not None:
        _copy_weights(reference, model)
    averaged = make_averaged(lib, model)
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in _batches():
        opt.zero_grad()
        lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y)).backward()
        opt.step()
        averaged.update_parameters(model)
    return model, averaged


AVERAGERS = {
    "swa": lambda lib, m: lib.optim.swa_utils.AveragedModel(m),
    "swa_buffers": lambda lib, m: lib.optim.swa_utils.AveragedModel(m, use_buffers=True),
    "ema_multi": lambda lib, m: lib.optim.swa_utils.AveragedModel(
        m, multi_avg_fn=lib.optim.swa_utils.get_ema_multi_avg_fn(0.9)),
    "ema_single": lambda lib, m: lib.optim.swa_utils.AveragedModel(
        m, avg_fn=lib.optim.swa_utils.get_ema_avg_fn(0.8)),
    "custom_avg_fn": lambda lib, m: lib.optim.swa_utils.AveragedModel(
        m, avg_fn=lambda avg, cur, n: 0.5 * avg + 0.5 * cur),
}


@pytest.mark.parametrize("name", list(AVERAGERS))
def test_averaged_model_matches_torch(name):
    _, ours = _train_and_average(chainrule, AVERAGERS[name])
    _, theirs = _train_and_average(torch, AVERAGERS[name], reference=_model_with_chainrule_init())
    assert int(ours.n_averaged) == int(theirs.n_averaged) == STEPS
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value.numpy(), theirs.state_dict()[key].numpy(), rtol=2e-5, atol=2e-6,
                                   err_msg=key)
    x = np.random.default_rng(5).standard_normal((5, 4)).astype(np.float32)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(chainrule.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def _model_with_chainrule_init():
    chainrule.manual_seed(0)
    return _model(chainrule)


def test_update_bn_recomputes_the_statistics_as_torch():
    _, ours = _train_and_average(chainrule, AVERAGERS["swa"])
    _, theirs = _train_and_average(torch, AVERAGERS["swa"], reference=_model_with_chainrule_init())
    rng = np.random.default_rng(9)
    data = [rng.standard_normal((10, 4)).astype(np.float32) for _ in range(3)]
    ours.train(False)
    swa_utils.update_bn([(chainrule.tensor(x), 0) for x in data], ours)
    torch.optim.swa_utils.update_bn([(torch.tensor(x), 0) for x in data], theirs)
    assert ours.training is False
    bn, tbn = ours.module[1], theirs.module[1]
    assert bn.momentum == tbn.momentum == 0.1
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-4, atol=1e-5)
    assert int(bn.num_batches_tracked) == int(tbn.num_batches_tracked) == 3


@pytest.mark.parametrize("kw", [dict(swa_lr=0.05), dict(swa_lr=[0.05, 0.01], anneal_epochs=3,
                                                            anneal_strategy="linear"),
                                dict(swa_lr=0.02, anneal_epochs=0)], ids=str)
def test_swalr_matches_torch(kw):
    sequences = []
    for lib in (chainrule, torch):
        params = [lib.zeros(2, requires_grad=True), lib.zeros(1, requires_grad=True)]
        opt = lib.optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.3}], lr=0.1)
        sched = lib.optim.swa_utils.SWALR(opt, **kw)
        lrs = [sched.get_last_lr()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(14):
                opt.step()
                sched.step()
                lrs.append(sched.get_last_lr())
        sequences.append(np.array(lrs, dtype=float))
    np.testing.assert_allclose(sequences[0], sequences[1], rtol=1e-12)


def test_swa_errors_match_torch():
    for lib in (chainrule, torch):
        opt = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.1)
        with pytest.raises(ValueError, match="anneal_strategy must be one of"):
            lib.optim.swa_utils.SWALR(opt, swa_lr=0.1, anneal_strategy="exp")
        with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0"):
            lib.optim.swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=-1)
