"""Autograd semantics as users drive them, found different from torch by
tools/torch_autograd_semantics_trial.py (docs/compatibility-trials.md, session 21)."""

import chainrule as torch


def test_unbind_of_a_1d_tensor_gives_views_that_see_later_writes():
    x = torch.arange(6.0)
    first, second = x.unbind(0)[:2]
    with torch.no_grad():
        x.add_(10)
    assert second.item() == 11.0 and first.item() == 10.0
    assert second._base is x and second._version == x._version == 1
    second.data.mul_(2)
    assert x[1].item() == 22.0
