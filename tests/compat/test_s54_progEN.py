"""s54 progEN: what the ACT / Diffusion Policy / RLHF-PPO programs found, against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape, num_samples, replacement", [
    ((4, 8), 1, False), ((4, 8), 3, False), ((8,), 1, False), ((8,), 3, False), ((4, 8), 1, True),
    ((4, 8), 2, True), ((1, 5), 5, False),
])
def test_multinomial_returns_torch_strides(shape, num_samples, replacement):
    # PPO samples ``torch.multinomial(probs, 1)`` per token: torch's result is a fresh contiguous
    # tensor, not argmax's added axis (stride 0) nor a slice of a sort of all categories
    weights = np.random.RandomState(0).rand(*shape).astype(np.float32) + 0.1
    torch.manual_seed(1)
    expected = torch.multinomial(torch.tensor(weights), num_samples, replacement)
    chainrule.manual_seed(1)
    got = chainrule.multinomial(chainrule.tensor(weights), num_samples, replacement)
    assert got.tolist() == expected.tolist()
    assert got.stride() == expected.stride()
    assert got.is_contiguous() and got.view(-1).shape[0] == expected.numel()
