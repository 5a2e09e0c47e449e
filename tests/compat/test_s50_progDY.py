"""Session 50, lane progDY: fixes found by the corpus programs mistral_rolling_kv_cache and
prefix_tuning_past_kv (and the probes around them), each compared with torch."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(lib, fn):
    with pytest.raises(Exception) as info:
        fn(lib)
    return type(info.value).__name__, str(info.value)


@pytest.mark.parametrize("dim", [None, 0, 2, -1, -2, -3])
def test_repeat_interleave_counts_mismatch_names_the_dim_as_passed_like_torch(dim):
    # torch's message prints ``input.size(-1)`` for dim=-1, not the wrapped dim
    def call(lib):
        lib.repeat_interleave(lib.zeros(3, 4, 2), lib.tensor([1, 2, 3, 4, 5]), dim=dim)

    expected = _error(torch, call)
    assert expected[0] == "RuntimeError"
    assert _error(chainrule, call) == expected


@pytest.mark.parametrize("dim", [0, 1, -1, -2])
def test_repeat_interleave_tensor_counts_still_match_torch(dim):
    x = torch.arange(24.0).reshape(3, 4, 2)
    reps = torch.arange(x.shape[dim]) % 3
    expected = torch.repeat_interleave(x, reps, dim=dim)
    got = chainrule.repeat_interleave(chainrule.tensor(x.numpy()), chainrule.tensor(reps.numpy()), dim=dim)
    assert tuple(got.shape) == tuple(expected.shape)
    assert (got.numpy() == expected.numpy()).all()
