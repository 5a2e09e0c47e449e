"""Session 30, lane progAB (whole programs of linear algebra and classical ML): fixes found while
writing them, each checked against torch on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# multinomial without replacement asked for more samples than there are non-zero weights: torch
# takes the top keys of weights / exponential draws by topk, and the zero weights, all tied at key
# 0, come out in the order its topk (nth_element or partial_sort) leaves them, not index order
@pytest.mark.parametrize("weights", [
    [0.1, 0.0, 0.3, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
    [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.5] + [0.0] * 199,
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multinomial_without_replacement_past_the_non_zero_weights_matches_torch(weights, dtype):
    n = len(weights)
    for seed in range(6):
        for num_samples in sorted({2, 3, n // 2, n}):
            torch.manual_seed(seed)
            expected = torch.multinomial(torch.tensor(weights, dtype=getattr(torch, dtype)), num_samples)
            chainrule.manual_seed(seed)
            got = chainrule.multinomial(chainrule.tensor(weights, dtype=getattr(chainrule, dtype)), num_samples)
            assert got.tolist() == expected.tolist(), (seed, num_samples)


def test_multinomial_without_replacement_rows_with_zero_weights_match_torch():
    weights = np.zeros((4, 9), dtype=np.float32)
    weights[0, [1, 4]] = [0.2, 0.8]
    weights[1, :] = 1.0
    weights[2, 8] = 3.0
    weights[3, [0, 2, 3]] = [1.0, 1.0, 2.0]
    for seed in range(5):
        torch.manual_seed(seed)
        expected = torch.multinomial(torch.from_numpy(weights), 6)
        chainrule.manual_seed(seed)
        got = chainrule.multinomial(chainrule.tensor(weights), 6)
        assert got.tolist() == expected.tolist(), seed
