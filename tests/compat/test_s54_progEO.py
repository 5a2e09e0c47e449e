"""Session 54, lane progEO: what the programs sliced_score_matching_ssm, tsne_gradient_descent and
soft_rasterizer_silhouette (and the probes around them) found, each fix pinned against torch."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _refusal(lib, build):
    """(exception class name, message) of ``build(lib)``'s refusal, and the target's values after it."""
    target = lib.arange(9.0).view(3, 3).requires_grad_(True)
    with pytest.raises(Exception) as info:
        build(target)
    return type(info.value).__name__, str(info.value), target.detach().tolist(), target._version


# ---------------------------------------------------------------- fill_diagonal_ on a leaf that requires grad
@pytest.mark.parametrize("build", [
    lambda t: t.fill_diagonal_(0.0),
    lambda t: t.fill_diagonal_(1, wrap=True),
    lambda t: t[:2].fill_diagonal_(0.0),
    lambda t: t.t().fill_diagonal_(0.0),
], ids=["leaf", "leaf-wrap", "sliced-view", "transposed-view"])
def test_fill_diagonal_on_a_leaf_that_requires_grad_refuses_as_a_view_of_it(build):
    # torch fills the diagonal through an as_strided view of self, so even the leaf itself is refused
    # in the words for a view of a leaf, before any value changes
    expected = _refusal(torch, build)
    assert expected[:2] == ("RuntimeError", "a view of a leaf Variable that requires grad is being used in an "
                                            "in-place operation.")
    assert _refusal(chainrule, build) == expected


def test_fill_diagonal_on_a_leaf_under_no_grad_and_on_a_non_leaf_still_writes():
    for lib in (torch, chainrule):
        leaf = lib.ones(3, 3, requires_grad=True)
        with lib.no_grad():
            leaf.fill_diagonal_(0.0)
        assert leaf.diagonal().tolist() == [0.0, 0.0, 0.0] and leaf.grad_fn is None
        y = (leaf * 2).fill_diagonal_(5.0)
        y.sum().backward()
        assert type(y.grad_fn).__name__ == "CopySlices" or y.grad_fn.name() == "torch::autograd::CopySlices"
        assert leaf.grad.tolist() == [[0.0, 2.0, 2.0], [2.0, 0.0, 2.0], [2.0, 2.0, 0.0]]
