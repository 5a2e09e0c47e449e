"""Session 60, lane mendEC: einsum's gradient strides on size-1 dims and empty leaves' gradients laid
out as torch's (AccumulateGrad's layout contract)."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _grad_strides(lib, equation, arrays):
    operands = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = lib.einsum(equation, *operands)
    out.backward(lib.tensor(np.ones(tuple(out.shape), np.float32)))
    return [out.stride()] + [t.grad.stride() for t in operands]


@pytest.mark.parametrize("equation, shapes", [
    ("... i d, ... j d -> ... i j", [(2, 1, 5, 4), (3, 6, 4)]),  # a broadcast (size-1) dim
    ("bij,bjk->bik", [(1, 3, 1), (1, 1, 4)]),
    ("ij,jk->ik", [(3, 1), (1, 4)]),
    ("bij,bkj->bik", [(2, 1, 5), (2, 3, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 1)]),
    ("... i d, ... j d -> ... i j", [(2, 0, 3), (2, 4, 3)]),  # an empty operand
    ("bij,bjk->bik", [(2, 0, 3), (2, 3, 4)]),
])
def test_einsum_gradient_strides_as_torch(equation, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    assert _grad_strides(chainrule, equation, arrays) == _grad_strides(torch, equation, arrays)


@pytest.mark.parametrize("op, shapes", [("bmm", [(0, 3, 4), (0, 4, 5)]), ("bmm", [(2, 0, 4), (2, 4, 5)]),
                                        ("matmul", [(0, 4), (4, 3)]), ("mm", [(0, 3), (3, 2)])])
def test_empty_leaf_gradient_takes_the_leafs_strides(op, shapes):
    def strides(lib):
        leaves = [lib.tensor(np.zeros(shape, np.float32), requires_grad=True) for shape in shapes]
        out = getattr(lib, op)(*leaves)
        out.backward(lib.ones_like(out))
        return [leaf.stride() for leaf in leaves], [leaf.grad.stride() for leaf in leaves]

    assert strides(chainrule) == strides(torch)


def _implicit_dim_warnings(lib):
    """What a program sees of the softmax modules' implicit-dim warning under the default filters:
    two modules called from two lines, three times each, and F.softmax from two lines."""
    x = lib.ones(2, 3)
    softmax, log_softmax = lib.nn.Softmax(), lib.nn.LogSoftmax()
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for _ in range(3):
            softmax(x)
            softmax(x)
            log_softmax(x)
            lib.nn.functional.softmax(x)
            lib.nn.functional.softmax(x)
    return caught


def test_softmax_modules_implicit_dim_warning_names_the_module_machinery():
    ours, theirs = _implicit_dim_warnings(chainrule), _implicit_dim_warnings(torch)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    # the modules' two (softmax, log_softmax) name chainrule's module machinery, as torch's name its own;
    # F.softmax's two name this file's two calling lines
    places = [w.filename.replace("\\", "/").rsplit("/", 3)[-3:] for w in ours]
    this_file = __file__.replace("\\", "/").rsplit("/", 3)[-3:]
    assert places == [["nn", "modules", "module.py"]] * 2 + [this_file] * 2


@pytest.mark.parametrize("equation, count", [
    ("i!,jk->ik", 1), ("i!->i", 2), ("ij,j#->i", 1), ("i.j,jk", 1), ("...i...", 1), ("i j!", 1),
    (" i, j!", 1), ("i..", 1), ("ij,jk,", 2), ("ij->i...j...", 1), ("i j->i!", 1), ("ij , k", 1),
])
def test_einsum_reports_the_first_fault_of_torchs_scan(equation, count):
    def refusal(lib):
        with pytest.raises(RuntimeError) as caught:
            lib.einsum(equation, *[lib.ones(2, 3)] * count)
        return str(caught.value).split("\n")[0]

    assert refusal(chainrule) == refusal(torch)


@pytest.mark.parametrize("call", [
    lambda lib: lib.ones(2, 3, 4).unbind(axis=(0, 2), keepdims=True),
    lambda lib: lib.unbind(lib.ones(2, 3), axis="a", keepdims=True),
    lambda lib: lib.ones(2, 3).unbind(axis=None, keepdims=(1,)),
    lambda lib: lib.ones(2, 3).unbind(axis=0, keepdims=True),  # an int: the unknown keyword is named
    lambda lib: lib.mode(lib.ones(2, 3), dim=(0, 1), bogus=1),
])
def test_numpy_keywords_refused_in_torchs_order(call):
    """torch's parser checks each parameter's type (``axis`` read as ``dim``) before it names an unknown keyword."""
    def refusal(lib):
        with pytest.raises(TypeError) as caught:
            call(lib)
        return str(caught.value)

    assert refusal(chainrule) == refusal(torch)


@pytest.mark.parametrize("batch", [
    lambda: [np.float32(1), np.str_("a")],  # a NumPy string scalar after a number: as_tensor's refusal
    lambda: [np.int64(1), np.bytes_(b"a")],
])
def test_default_collate_of_a_numpy_string_scalar_later_in_the_batch(batch):
    from torch.utils.data import default_collate as torch_collate

    from chainrule.utils.data import default_collate

    def refusal(collate):
        with pytest.raises(TypeError) as caught:
            collate(batch())
        return str(caught.value)

    assert refusal(default_collate) == refusal(torch_collate)


def test_as_tensor_of_numbers_and_a_numpy_string_scalar():
    def refusal(lib):
        with pytest.raises(TypeError) as caught:
            lib.as_tensor([np.float64(1), np.str_("abc")])
        return str(caught.value)

    assert refusal(chainrule) == refusal(torch)
