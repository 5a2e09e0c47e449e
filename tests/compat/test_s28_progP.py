"""Session 28, lane progP: error messages met around the metric-learning, StyleGAN2, MobileNet and
ALiBi programs' idioms, each compared with torch 2.13 on the same call."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(library, call):
    with pytest.raises(Exception) as raised:
        call(library)
    return type(raised.value).__name__, str(raised.value)


# ---------------------------------------------------------------- adaptive pools' negative sizes
@pytest.mark.parametrize("call", [
    lambda lib: lib.nn.functional.adaptive_avg_pool1d(lib.zeros(1, 2, 3), -1),
    lambda lib: lib.nn.functional.adaptive_avg_pool2d(lib.zeros(1, 2, 3, 3), -1),
    lambda lib: lib.nn.functional.adaptive_avg_pool2d(lib.zeros(1, 2, 3, 3), (2, -1)),
    lambda lib: lib.nn.functional.adaptive_avg_pool3d(lib.zeros(1, 2, 3, 3, 3), -1),
    lambda lib: lib.nn.functional.adaptive_avg_pool3d(lib.zeros(2, 3, 3, 3), (1, -2, 3)),
    lambda lib: lib.nn.AdaptiveAvgPool2d(-1)(lib.zeros(1, 2, 3, 3)),
    lambda lib: lib.nn.functional.adaptive_max_pool2d(lib.zeros(1, 2, 3, 3), -1),
], ids=["avg1d", "avg2d", "avg2d-pair", "avg3d", "avg3d-unbatched", "module", "max2d"])
def test_adaptive_pool_negative_output_size_says_what_torch_says(call):
    # torch's avg kernels name themselves (1-d runs as 2-d over (1, size)) and print the sizes in braces
    assert _error(chainrule, call) == _error(torch, call)


# ---------------------------------------------------------------- BLAS in-place ops' size check
@pytest.mark.parametrize("call", [
    lambda lib: lib.zeros(3).addmm_(lib.zeros(3, 2), lib.zeros(2, 3)),
    lambda lib: lib.zeros(1, 3).addmm_(lib.zeros(3, 2), lib.zeros(2, 3)),
    lambda lib: lib.zeros(3, 3).baddbmm_(lib.zeros(2, 3, 2), lib.zeros(2, 2, 3)),
    lambda lib: lib.zeros(1).addmv_(lib.zeros(3, 2), lib.zeros(2)),
    lambda lib: lib.addmv_(lib.zeros(1), lib.zeros(3, 2), lib.zeros(2)),
    lambda lib: lib.zeros(3).add_(lib.zeros(3, 3)),
], ids=["addmm_", "addmm_-row", "baddbmm_", "addmv_", "torch.addmv_", "add_"])
def test_in_place_blas_ops_refuse_a_broadcast_self_in_torch_words(call):
    assert _error(chainrule, call) == _error(torch, call)


def test_refused_addmm_leaves_self_unchanged():
    ours = chainrule.ones(1, 3)
    with pytest.raises(RuntimeError, match="Bad in-place call"):
        ours.addmm_(chainrule.ones(3, 2), chainrule.ones(2, 3))
    assert ours.tolist() == [[1.0, 1.0, 1.0]]
    assert ours._version == 0


def test_addmm_in_place_of_the_right_shape_matches_torch():
    values = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    ours = chainrule.tensor(values)
    theirs = torch.tensor(values)
    a, b = [[1.0, 2.0], [3.0, 4.0]], [[0.5, 0.0, 1.0], [-1.0, 2.0, 0.5]]
    ours.addmm_(chainrule.tensor(a), chainrule.tensor(b), beta=1, alpha=-2)
    theirs.addmm_(torch.tensor(a), torch.tensor(b), beta=1, alpha=-2)
    assert ours.tolist() == theirs.tolist()


# ---------------------------------------------------------------- add-a-product ops expand their input
@pytest.mark.parametrize("call", [
    lambda lib: lib.addmm(lib.zeros(2, 2), lib.zeros(3, 2), lib.zeros(2, 3)),
    lambda lib: lib.addmm(lib.zeros(3, 2), lib.zeros(3, 2), lib.zeros(2, 3)),
    lambda lib: lib.baddbmm(lib.zeros(2, 2), lib.zeros(2, 3, 2), lib.zeros(2, 2, 3)),
    lambda lib: lib.addbmm(lib.zeros(2, 2), lib.zeros(2, 3, 2), lib.zeros(2, 2, 3)),
    lambda lib: lib.addr(lib.zeros(2, 2), lib.zeros(3), lib.zeros(3)),
    lambda lib: lib.addr(lib.zeros(1, 3, 3), lib.zeros(3), lib.zeros(3)),
    lambda lib: lib.addmv(lib.zeros(2), lib.zeros(3, 2), lib.zeros(2)),
], ids=["addmm", "addmm-first-dim", "baddbmm", "addbmm", "addr", "addr-3d-input", "addmv"])
def test_add_a_product_ops_refuse_an_input_they_cannot_expand_as_torch(call):
    # torch expands input to the product's shape (reporting the last mismatching dim), it does not
    # broadcast the two; addr with a 3-d input was accepted and returned a 3-d result
    assert _error(chainrule, call) == _error(torch, call)


@pytest.mark.parametrize("call", [
    lambda lib: lib.zeros(3).addr_(lib.zeros(3), lib.zeros(3)),
    lambda lib: lib.tensor(1.0).addr_(lib.zeros(3), lib.ones(3)),
    lambda lib: lib.zeros(1, 3).addr_(lib.zeros(3), vec2=lib.ones(3)),
    lambda lib: lib.zeros(2, 2).addr_(lib.zeros(3), lib.ones(3)),
    lambda lib: lib.zeros(2, 2).addmm_(lib.zeros(3, 2), lib.zeros(2, 3)),
    lambda lib: lib.zeros(2, 2).addmm_(lib.zeros(3, 2), lib.zeros(3, 3)),
    lambda lib: lib.zeros(2, 2).baddbmm_(lib.zeros(2, 3, 2), lib.zeros(2, 2, 3)),
    lambda lib: lib.zeros(2).addmv_(lib.zeros(3, 2), lib.zeros(2)),
], ids=["addr_-1d", "addr_-0d", "addr_-row", "addr_-other", "addmm_-other", "addmm_-bad-mats", "baddbmm_-other",
        "addmv_-other"])
def test_in_place_add_a_product_ops_check_self_first_as_torch(call):
    assert _error(chainrule, call) == _error(torch, call)


def test_addr_in_place_and_out_of_place_values_match_torch():
    rows, cols = [1.0, -2.0, 0.5], [3.0, 0.25]
    ours = chainrule.ones(3, 2).addr_(chainrule.tensor(rows), chainrule.tensor(cols), beta=2, alpha=0.5)
    theirs = torch.ones(3, 2).addr_(torch.tensor(rows), torch.tensor(cols), beta=2, alpha=0.5)
    assert ours.tolist() == theirs.tolist()
    ours = chainrule.addr(chainrule.ones(1, 2), chainrule.tensor(rows), chainrule.tensor(cols))
    theirs = torch.addr(torch.ones(1, 2), torch.tensor(rows), torch.tensor(cols))
    assert ours.tolist() == theirs.tolist()
