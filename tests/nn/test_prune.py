"""nn.utils.prune against torch: the masks of the deterministic methods (L1, Ln-structured,
custom, global), their composition, the module surgery and what training does with it."""

import numpy as np
import pytest

import chainrule
import chainrule.nn.utils.prune as prune

torch = pytest.importorskip("torch")
tprune = pytest.importorskip("torch.nn.utils.prune")


def _pair():
    chainrule.manual_seed(0)
    ours = chainrule.nn.Sequential(chainrule.nn.Conv2d(3, 6, 3), chainrule.nn.ReLU(), chainrule.nn.Flatten(),
                                   chainrule.nn.Linear(6 * 4 * 4, 5))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(6 * 4 * 4, 5))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def _same_state(ours, theirs):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].numpy(), value.numpy(), err_msg=key)


STEPS = {
    "l1_fraction": lambda p, m: p.l1_unstructured(m[0], "weight", amount=0.3),
    "l1_count": lambda p, m: p.l1_unstructured(m[3], "bias", amount=2),
    "ln_structured": lambda p, m: p.ln_structured(m[0], "weight", amount=0.5, n=2, dim=0),
    "ln_structured_l1_dim1": lambda p, m: p.ln_structured(m[0], "weight", amount=1, n=1, dim=1),
    "l1_then_ln": lambda p, m: (p.l1_unstructured(m[0], "weight", amount=0.2),
                                p.ln_structured(m[0], "weight", amount=2, n=2, dim=0),
                                p.l1_unstructured(m[0], "weight", amount=0.1)),
    "custom_then_l1": lambda p, m: (p.custom_from_mask(m[3], "bias", mask=_bias_mask(p)),
                                    p.l1_unstructured(m[3], "bias", amount=1)),
    "identity": lambda p, m: p.identity(m[3], "weight"),
    "global": lambda p, m: p.global_unstructured([(m[0], "weight"), (m[3], "weight"), (m[3], "bias")],
                                                 pruning_method=p.L1Unstructured, amount=0.25),
}


def _bias_mask(p):
    values = [1.0, 0.0, 1.0, 1.0, 0.0]
    return chainrule.tensor(values) if p is prune else torch.tensor(values)


@pytest.mark.parametrize("name", list(STEPS))
def test_pruning_matches_torch(name):
    ours, theirs = _pair()
    STEPS[name](prune, ours)
    STEPS[name](tprune, theirs)
    _same_state(ours, theirs)
    assert prune.is_pruned(ours) and tprune.is_pruned(theirs)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    out, tout = ours(chainrule.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    for (key, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)


def test_remove_makes_the_pruning_permanent_as_torch():
    ours, theirs = _pair()
    for p, m in ((prune, ours), (tprune, theirs)):
        p.l1_unstructured(m[0], "weight", amount=0.4)
        p.remove(m[0], "weight")
        assert not p.is_pruned(m)
        with pytest.raises(ValueError, match="has to be pruned before pruning can be removed"):
            p.remove(m[0], "weight")
    _same_state(ours, theirs)
    assert isinstance(ours[0].weight, chainrule.nn.Parameter)
    assert (ours[0].weight.detach().numpy() == 0).sum() == round(0.4 * ours[0].weight.numel())


def test_pruned_entries_stay_zero_through_training():
    ours, _ = _pair()
    prune.l1_unstructured(ours[3], "weight", amount=0.5)
    optimizer = chainrule.optim.SGD(ours.parameters(), lr=0.1)
    mask = ours[3].weight_mask.numpy().copy()
    for _ in range(3):
        optimizer.zero_grad()
        ours(chainrule.randn(4, 3, 6, 6)).pow(2).sum().backward()
        optimizer.step()
    assert (ours[3].weight.detach().numpy()[mask == 0] == 0).all()
    assert (ours[3].weight_orig.grad.numpy()[mask == 0] == 0).all()


def test_random_methods_prune_the_requested_amount():
    chainrule.manual_seed(3)
    layer = chainrule.nn.Linear(10, 8)
    prune.random_unstructured(layer, "weight", amount=0.25)
    assert int((layer.weight_mask.numpy() == 0).sum()) == 20
    prune.random_structured(layer, "weight", amount=3, dim=0)
    rows_pruned = (layer.weight_mask.numpy().sum(1) == 0).sum()
    assert rows_pruned >= 3 and int((layer.weight_mask.numpy() == 0).sum()) >= 30


def test_pruning_errors_match_torch():
    for p, lib in ((prune, chainrule), (tprune, torch)):
        layer = lib.nn.Linear(3, 2)
        with pytest.raises(ValueError, match="should either be a float in the range"):
            p.l1_unstructured(layer, "weight", amount=1.5)
        with pytest.raises(TypeError, match="Invalid type for amount"):
            p.l1_unstructured(layer, "weight", amount="half")
        with pytest.raises(ValueError, match="should be smaller than the number of parameters to prune"):
            p.l1_unstructured(layer, "weight", amount=7)
        assert "weight" in dict(layer.named_parameters())  # a failed pruning leaves the module as it was
        with pytest.raises(ValueError, match="Structured pruning can only be applied to multidimensional"):
            p.ln_structured(layer, "bias", amount=1, n=2, dim=0)
