"""Session 26, progG lane: bugs the published-program corpus (sac_continuous, deq_implicit,
tabular_embeddings, ncf_bpr, transe_kg) exposed, each checked against torch 2.13."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    try:
        result = call(lib)
    except Exception as error:  # compared by class and first line
        return "raised", type(error).__name__, str(error).splitlines()[0]
    return "ok", str(result.dtype).rpartition(".")[2], result.numpy().tolist()


# TransE-PyTorch's evaluation: torch.arange(end=entities_count, device=device), the (Number end)
# signature called by keyword, which chainrule refused for want of ``start``
@pytest.mark.parametrize("call", [
    lambda lib: lib.arange(end=5),
    lambda lib: lib.arange(end=5.5),
    lambda lib: lib.arange(end=4, dtype=lib.float64),
    lambda lib: lib.arange(end=3, out=lib.empty(3)),
    lambda lib: lib.arange(start=2, end=5),
    lambda lib: lib.arange(1, end=5, step=2),
    lambda lib: lib.arange(start=5),
    lambda lib: lib.arange(),
])
def test_arange_end_by_keyword(call):
    assert _outcome(chainrule, call) == _outcome(torch, call)


# TransE-PyTorch's corruption: torch.randint(high=2, size=heads.size(), device=device), the
# (high, size) signature by keyword, which chainrule refused for want of ``low``; the draws are
# torch's for a seed
@pytest.mark.parametrize("call", [
    lambda lib: lib.randint(high=2, size=(6,)),
    lambda lib: lib.randint(high=7, size=lib.Size([2, 3]), dtype=lib.int32),
    lambda lib: lib.randint(low=3, high=9, size=(5,)),
    lambda lib: lib.randint(3, high=9, size=(5,)),
    lambda lib: lib.randint(9, size=(5,)),
    lambda lib: lib.randint(high=2),
    lambda lib: lib.randint(low=2, size=(3,)),
])
def test_randint_high_by_keyword(call):
    def seeded(lib):
        lib.manual_seed(0)
        return call(lib)
    assert _outcome(chainrule, seeded) == _outcome(torch, seeded)
