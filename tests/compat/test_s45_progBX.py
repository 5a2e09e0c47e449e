"""Session 45, lane progBX: what the InfoGAN / SSD / Linformer-Nystrom corpus programs' probes found.

torch.autograd.Variable parsed as torch's THPVariable_pynew parses it (no data is an empty tensor of the
default dtype, flags must be integers, volatile with requires_grad is a ValueError, unknown keywords are
TypeErrors, integer data requiring grad gets the constructor's wording), and index_fill's refusal of a
value tensor that is not 0-d is torch's RuntimeError.
"""

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _outcome(lib, case):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = case(lib)
        except Exception as error:  # noqa: BLE001  (the exception is the result compared)
            result = ("raises", type(error).__name__, str(error))
        else:
            if hasattr(value, "shape"):
                value = (str(value.dtype).split(".")[-1], tuple(value.shape), value.tolist(),
                         value.requires_grad, value.is_leaf)
            result = ("returns", value)
    return result, [(w.category.__name__, str(w.message)) for w in caught]


VARIABLE_CASES = {
    "no data": lambda l: l.autograd.Variable(),
    "None data": lambda l: l.autograd.Variable(None),
    "None data requiring grad": lambda l: l.autograd.Variable(None, requires_grad=True),
    "only requires_grad": lambda l: l.autograd.Variable(requires_grad=True),
    "positional flag": lambda l: l.autograd.Variable(l.zeros(2), True),
    "integer flag": lambda l: l.autograd.Variable(l.zeros(2), 1),
    "None flag": lambda l: l.autograd.Variable(l.zeros(2), requires_grad=None),
    "string flag": lambda l: l.autograd.Variable(l.zeros(2), requires_grad="x"),
    "float flag": lambda l: l.autograd.Variable(l.zeros(2), requires_grad=1.0),
    "volatile and requires_grad": lambda l: l.autograd.Variable(l.zeros(2), True, True),
    "volatile": lambda l: l.autograd.Variable(l.zeros(2), volatile=True),
    "unknown keyword": lambda l: l.autograd.Variable(l.zeros(2), requires_grad=True, foo=1),
    "data by keyword": lambda l: l.autograd.Variable(data=l.ones(2)),
    "ints requiring grad": lambda l: l.autograd.Variable(l.ones(2, dtype=l.long), requires_grad=True),
    "ints not requiring grad": lambda l: l.autograd.Variable(l.ones(2, dtype=l.long), False),
    "complex requiring grad": lambda l: l.autograd.Variable(l.ones(2, dtype=l.complex64), requires_grad=True),
    "list data": lambda l: l.autograd.Variable([1.0]),
    "requires_grad_ on ints keeps its own words": lambda l: l.ones(2, dtype=l.long).requires_grad_(),
}


@pytest.mark.parametrize("name", list(VARIABLE_CASES))
def test_variable_matches_torch(name):
    ours, theirs = (_outcome(lib, VARIABLE_CASES[name]) for lib in LIBS)
    assert ours == theirs


def test_variable_of_none_follows_the_default_dtype():
    results = []
    for lib in LIBS:
        previous = lib.get_default_dtype()
        lib.set_default_dtype(lib.float64)
        try:
            results.append(str(lib.autograd.Variable().dtype).split(".")[-1])
        finally:
            lib.set_default_dtype(previous)
    assert results == ["float64", "float64"]


INDEX_FILL_CASES = {
    "1-d value": lambda l: l.zeros(3).index_fill_(0, l.tensor([1]), l.tensor([2.0])),
    "2-d value": lambda l: l.zeros(3).index_fill_(0, l.tensor([1]), l.tensor([[2.0]])),
    "out of place 1-d value": lambda l: l.zeros(3).index_fill(0, l.tensor([1]), l.tensor([2.0])),
    "function 1-d value": lambda l: l.index_fill(l.zeros(3), 0, l.tensor([1]), l.tensor([2.0])),
    "1-d value requiring grad": lambda l: l.zeros(3, requires_grad=True).index_fill(
        0, l.tensor([1]), l.tensor([2.0], requires_grad=True)),
    "0-d value": lambda l: l.zeros(2, 3).index_fill_(1, l.tensor([0, 2]), l.tensor(-1.5)),
    "number value": lambda l: l.zeros(4).index_fill_(0, l.tensor([1, 3]), 2),
}


@pytest.mark.parametrize("name", list(INDEX_FILL_CASES))
def test_index_fill_value_checks_match_torch(name):
    ours, theirs = (_outcome(lib, INDEX_FILL_CASES[name]) for lib in LIBS)
    assert ours == theirs


NAN = float("nan")
SVD_NAN_CASES = {
    "linalg.svd": lambda l: l.linalg.svd(l.tensor([[NAN, 1.0], [0.0, 1.0]])),
    "linalg.svd float64": lambda l: l.linalg.svd(l.tensor([[NAN, 1.0], [0.0, 1.0]], dtype=l.float64)),
    "linalg.svd complex": lambda l: l.linalg.svd(l.tensor([[NAN, 1.0], [0.0, 1.0]], dtype=l.complex64)),
    "linalg.svd tall": lambda l: l.linalg.svd(l.tensor([[NAN, 1.0], [0.0, 1.0], [1.0, 1.0]])),
    "linalg.svd requiring grad": lambda l: l.linalg.svd(l.tensor([[NAN, 1.0], [0.0, 1.0]], requires_grad=True)),
    "linalg.svd batch element 1": lambda l: l.linalg.svd(l.tensor([[[1.0, 0.0], [0.0, 1.0]], [[NAN, 1.0], [0.0, 1.0]]])),
    "linalg.svd batch element 0": lambda l: l.linalg.svd(l.tensor([[[NAN, 1.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])),
    "linalg.svdvals": lambda l: l.linalg.svdvals(l.tensor([[NAN, 1.0], [0.0, 1.0]])),
    "torch.svd": lambda l: l.svd(l.tensor([[NAN, 1.0], [0.0, 1.0]])),
    "linalg.pinv": lambda l: l.linalg.pinv(l.tensor([[NAN, 1.0], [0.0, 1.0]])),
    "linalg.pinv batched": lambda l: l.linalg.pinv(l.tensor([[[1.0, 0.0], [0.0, 1.0]], [[NAN, 1.0], [0.0, 1.0]]])),
    "pinverse": lambda l: l.pinverse(l.tensor([[NAN, 1.0], [0.0, 1.0]])),
    "matrix_norm 2": lambda l: l.linalg.matrix_norm(l.tensor([[NAN, 1.0], [0.0, 1.0]]), ord=2),
    "matrix_norm nuc": lambda l: l.linalg.matrix_norm(l.tensor([[NAN, 1.0], [0.0, 1.0]]), ord="nuc"),
    "norm nuc": lambda l: l.norm(l.tensor([[NAN, 1.0], [0.0, 1.0]]), p="nuc"),
    "matrix_rank": lambda l: l.linalg.matrix_rank(l.tensor([[NAN, 1.0], [0.0, 1.0]])),
    "cond": lambda l: l.linalg.cond(l.tensor([[NAN, 1.0], [0.0, 1.0]])),
    "pinv hermitian goes through eigh": lambda l: l.linalg.pinv(l.tensor([[NAN, 1.0], [0.0, 1.0]]), hermitian=True),
    "finite input unchanged": lambda l: l.linalg.svdvals(l.tensor([[3.0, 0.0], [0.0, 4.0]])),
}


@pytest.mark.parametrize("name", list(SVD_NAN_CASES))
def test_svd_of_a_matrix_with_nan_raises_torchs_linalg_error(name):
    (ours, ours_warnings), (theirs, theirs_warnings) = (_outcome(lib, SVD_NAN_CASES[name]) for lib in LIBS)
    assert ours == theirs and ours_warnings == theirs_warnings
    if ours[0] == "raises":
        with pytest.raises(chainrule.linalg.LinAlgError):
            SVD_NAN_CASES[name](chainrule)


SDPA_INPUT_CASES = {
    "key float64": lambda l: l.nn.functional.scaled_dot_product_attention(
        l.ones(2, 5, 4), l.ones(2, 6, 4, dtype=l.float64), l.ones(2, 6, 3)),
    "long query": lambda l: l.nn.functional.scaled_dot_product_attention(
        l.ones(2, 3, dtype=l.long), l.ones(2, 3), l.ones(2, 3)),
    "half, bfloat16, complex": lambda l: l.nn.functional.scaled_dot_product_attention(
        l.ones(2, 3, dtype=l.float16), l.ones(2, 3, dtype=l.bfloat16), l.ones(2, 3, dtype=l.complex64)),
    "1-d inputs": lambda l: l.nn.functional.scaled_dot_product_attention(l.ones(4), l.ones(4), l.ones(4)),
    "1-d key": lambda l: l.nn.functional.scaled_dot_product_attention(l.ones(2, 3), l.ones(3), l.ones(2, 3)),
    "1-d query and a dtype mismatch: the dtype first": lambda l: l.nn.functional.scaled_dot_product_attention(
        l.ones(3), l.ones(2, 3, dtype=l.float64), l.ones(2, 3)),
    "0-d value": lambda l: l.nn.functional.scaled_dot_product_attention(l.ones(2, 3), l.ones(2, 3), l.tensor(1.0)),
    "integer mask after the inputs": lambda l: l.nn.functional.scaled_dot_product_attention(
        l.ones(2, 3), l.ones(2, 3), l.ones(2, 3), attn_mask=l.ones(2, 2, dtype=l.long)),
    "valid inputs": lambda l: l.nn.functional.scaled_dot_product_attention(
        l.arange(6.0).reshape(2, 3), l.arange(6.0).reshape(2, 3) / 4, l.ones(2, 3)),
}


@pytest.mark.parametrize("name", list(SDPA_INPUT_CASES))
def test_scaled_dot_product_attention_input_checks_match_torch(name):
    ours, theirs = (_outcome(lib, SDPA_INPUT_CASES[name]) for lib in LIBS)
    assert ours == theirs


NORM_CASES = {
    "matrix_norm of a 1-d long tensor: the rank first": lambda l: l.linalg.matrix_norm(l.ones(3, dtype=l.long)),
    "matrix_norm of a long matrix, three dims: the dtype first": lambda l: l.linalg.matrix_norm(
        l.ones(2, 2, dtype=l.long), dim=(0, 1, 2)),
    "matrix_norm three dims": lambda l: l.linalg.matrix_norm(l.ones(2, 2, 2), dim=(0, 1, 2)),
    "matrix_norm one dim": lambda l: l.linalg.matrix_norm(l.ones(2, 2), dim=[0]),
    "matrix_norm the same dim twice once wrapped": lambda l: l.linalg.matrix_norm(l.ones(2, 2), dim=(0, -2)),
    "matrix_norm nuc the same dim twice": lambda l: l.linalg.matrix_norm(l.ones(2, 2), "nuc", dim=(1, 1)),
    "matrix_norm dim out of range": lambda l: l.linalg.matrix_norm(l.ones(2, 2), dim=(0, 2)),
    "matrix_norm nuc": lambda l: l.linalg.matrix_norm(l.eye(2) * 3, "nuc"),
    "nuclear_norm of a 1-d tensor": lambda l: l.nuclear_norm(l.ones(3)),
    "nuclear_norm of a long matrix": lambda l: l.nuclear_norm(l.ones(3, 2, dtype=l.long)),
    "nuclear_norm three dims": lambda l: l.nuclear_norm(l.ones(3, 2, 2), dim=(0, 1, 2)),
    "nuclear_norm one dim": lambda l: l.nuclear_norm(l.ones(3, 2), dim=(0,)),
    "nuclear_norm the same dim twice": lambda l: l.nuclear_norm(l.ones(3, 2), dim=(0, 0)),
    "nuclear_norm dim out of range": lambda l: l.nuclear_norm(l.ones(3, 2), dim=(0, 5)),
    "nuclear_norm": lambda l: l.nuclear_norm(l.eye(2) * 3),
    "nuclear_norm keepdim positional": lambda l: l.nuclear_norm(l.eye(2) * 3, True),
    "nuclear_norm dims keepdim": lambda l: l.nuclear_norm(l.ones(2, 3, 2), dim=(0, -1), keepdim=True),
    "nuclear_norm out": lambda l: l.nuclear_norm(l.eye(2) * 3, out=l.empty(0)),
    "nuclear_norm dims out": lambda l: l.nuclear_norm(l.eye(2) * 3, dim=(0, 1), out=l.empty(0)),
    "frobenius_norm": lambda l: l.frobenius_norm(l.eye(2), dim=(0, 1)),
    "frobenius_norm out": lambda l: l.frobenius_norm(l.eye(2), dim=(0, 1), out=l.empty(0)),
    "frobenius_norm dim out of range": lambda l: l.frobenius_norm(l.eye(2), dim=(0, 5)),
    "norm nuc does not warn": lambda l: l.norm(l.eye(2), p="nuc"),
    "norm fro over two dims does not warn": lambda l: l.norm(l.eye(2), p="fro", dim=(0, 1)),
}


@pytest.mark.parametrize("name", list(NORM_CASES))
def test_matrix_norm_checks_and_deprecated_norm_warnings_match_torch(name):
    # torch's deprecation warnings are TORCH_WARN_ONCE: under warn-always both libraries give them every call
    outcomes = []
    for lib in LIBS:
        previous = lib.is_warn_always_enabled()
        lib.set_warn_always(True)
        try:
            outcomes.append(_outcome(lib, NORM_CASES[name]))
        finally:
            lib.set_warn_always(previous)
    ours, theirs = outcomes
    if ours[0][0] == "returns" and theirs[0][0] == "returns":  # SVD roundoff: compare the values by closeness
        assert ours[0][1][:2] == theirs[0][1][:2] and ours[1] == theirs[1]
        assert torch.allclose(torch.tensor(ours[0][1][2]), torch.tensor(theirs[0][1][2]))
    else:
        assert ours == theirs
