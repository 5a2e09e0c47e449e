"""s48 mendBK: torch.einsum's checks in at::native::einsum's order and words: every operand's count of
subscripts, then the output's subscripts, then per operand and subscript the sizes, where an ellipsis whose
dims do not broadcast with an earlier operand's raises torch's "dimension d covered by ellipsis in operand i"
RuntimeError (chainrule raised NumPy's ValueError "Size of label ..." or a broadcast RuntimeError). Each case runs
on torch and chainrule and compares the error or the values."""

import random

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _outcome(lib, equation, arrays):
    try:
        result = lib.einsum(equation, *[lib.tensor(a) for a in arrays])
    except Exception as error:  # noqa: BLE001 - the error itself is what is compared
        return type(error).__name__, str(error)
    return tuple(result.shape), result.numpy()


def _assert_same(equation, shapes, seed=0):
    gen = np.random.default_rng(seed)
    arrays = [gen.standard_normal(shape) for shape in shapes]
    expected, got = _outcome(real_torch, equation, arrays), _outcome(chainrule, equation, arrays)
    assert expected[0] == got[0], (equation, shapes, expected, got)
    if isinstance(expected[1], str):
        assert expected[1] == got[1]
    else:
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-12)
    return expected


ELLIPSIS_MISMATCH = [
    ("...,...", [(2, 3), (4, 3)]),
    ("i...,...", [(5, 2, 3), (4, 3)]),
    ("...,...,...->...", [(2,), (2, 1, 4), (2,)]),  # right-aligned: the third dim from the end
    ("...i,c...->...c", [(3, 3), (3, 4)]),
    ("a...b,...", [(1, 2, 3, 4), (3, 3)]),
    ("...,jj...", [(4,), (2, 2, 3)]),  # torch counts dims after the diagonal of jj: dimension 1
    ("...bd,c...b->b", [(3, 4, 3, 2, 2), (3, 4, 4, 1, 2)]),  # was a broadcast RuntimeError
    ("a...,,ab...", [(1, 4), (), (3, 3, 3, 2, 2)]),
]


@pytest.mark.parametrize("equation,shapes", ELLIPSIS_MISMATCH)
def test_ellipsis_that_does_not_broadcast_raises_torchs_error(equation, shapes):
    kind, message = _assert_same(equation, shapes)
    assert kind == "RuntimeError" and "covered by ellipsis" in message


ORDER = [
    ("i,i->j", [(2,), (3,)]),  # the output is checked before the sizes
    ("...,...->i", [(2,), (3,)]),
    ("ii,i...", [(2, 3), (2, 4)]),
    ("i...,i...", [(2, 3), (3, 4)]),  # a letter's mismatch before the ellipsis's
    ("...i,...i", [(2, 3), (3, 4)]),  # the ellipsis's before the letter's
    ("ij...,jk...->ik", [(2, 3, 1), (3, 4, 5)]),  # size 1 broadcasts
    ("...ii,...->...", [(1, 2, 3, 3), (4, 1, 1)]),
]


@pytest.mark.parametrize("equation,shapes", ORDER)
def test_checks_in_torchs_order(equation, shapes):
    _assert_same(equation, shapes)


def test_random_ellipsis_equations_as_torch():
    rng = random.Random(48)
    letters = "abcd"
    for case in range(300):
        subs = []
        for _ in range(rng.randint(1, 3)):
            term = [rng.choice(letters) for _ in range(rng.randint(0, 3))]
            term.insert(rng.randint(0, len(term)), "...")
            subs.append(term)
        size = {c: rng.choice([1, 2, 3]) for c in letters}
        shapes = []
        for sub in subs:
            shape = []
            for c in sub:
                if c == "...":
                    shape += [rng.choice([1, 2, 3]) for _ in range(rng.randint(0, 2))]
                else:
                    shape.append(size[c] if rng.random() < 0.9 else rng.choice([1, 2, 3]))
            shapes.append(tuple(shape))
        equation = ",".join("".join(sub) for sub in subs)
        if rng.random() < 0.5:
            used = sorted({c for sub in subs for c in sub if c != "..."})
            equation += "->..." + "".join(rng.sample(used, rng.randint(0, len(used))))
        _assert_same(equation, shapes, case)


def test_broadcast_ellipsis_gradients_still_check():
    gen = np.random.default_rng(0)
    a = chainrule.tensor(gen.standard_normal((3, 1, 2, 4)), requires_grad=True)
    b = chainrule.tensor(gen.standard_normal((2, 4, 5)), requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda x, y: chainrule.einsum("...ij,...jk->...ik", x, y), (a, b))
