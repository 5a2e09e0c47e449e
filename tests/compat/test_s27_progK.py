"""Session 27, lane progK: chainrule bugs found by the fast.ai and pytorch.org recipe programs
(fastai_matmul_scratch, fastai_init_hooks, recipe_parametrize_prune, recipe_saving_loading,
recipe_func_jacobians, recipe_channels_last_amp), each checked against torch 2.13."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(lib, call):
    try:
        call(lib)
    except Exception as e:  # noqa: BLE001  (the class is what is compared)
        return type(e), str(e)
    return None


@pytest.mark.parametrize("call", [
    lambda lib: lib.zeros(2, 3, 4).to(memory_format=lib.channels_last),
    lambda lib: lib.zeros(2, 3, 4, 5, 6).to(memory_format=lib.channels_last),
    lambda lib: lib.zeros(2, 3, 4).contiguous(memory_format=lib.channels_last),
    lambda lib: lib.zeros(2, 3, 4).to(memory_format=lib.channels_last_3d),
    lambda lib: lib.zeros(2, 3, 4, 5).contiguous(memory_format=lib.channels_last_3d),
    lambda lib: lib.zeros(2, 3, 4).clone(memory_format=lib.channels_last),
    lambda lib: lib.zeros(2, 3, 4, 5, 6).clone(memory_format=lib.channels_last),
    lambda lib: lib.empty(2, 3, 4, memory_format=lib.channels_last),
    lambda lib: lib.empty_like(lib.zeros(2, 3, 4), memory_format=lib.channels_last),
], ids=["to", "to-rank5", "contiguous", "to-3d", "contiguous-3d", "clone", "clone-rank5", "empty", "empty_like"])
def test_channels_last_of_the_wrong_rank_raises_torchs_message(call):
    # the Channels Last tutorial, as a user tries it on a 3-d tensor: torch's RuntimeError text
    # exactly ("required rank 4 tensor to use channels_last format"), whichever op asks
    expected = _error(torch, call)
    assert expected is not None and expected[0] is RuntimeError
    assert _error(chainrule, call) == expected
