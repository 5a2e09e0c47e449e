"""Session 62, lane mendEP: torch 2.13's ``grad_fn._saved_*`` attributes of the nodes that lacked
them (prelu, cdist, trace, linalg_cross and the linalg decompositions), fresh empty tensors' strides,
and negative dims saved as torch's unsigned values, each checked against torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _spd(n, seed=0, dtype=np.float32):
    a = np.random.RandomState(seed).randn(n, n)
    return (a @ a.T + n * np.eye(n)).astype(dtype)


def _array(*shape, seed=0, dtype=np.float32):
    return np.random.RandomState(seed).randn(*shape).astype(dtype)


def _plain(value):
    """A saved value as plain data (a tensor: shape, dtype, strides, requires_grad and |values|
    rounded: a factor's signs are LAPACK's choice), compared between the two libraries."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, float):
        return round(value, 5)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        values = np.abs(value.detach().resolve_conj().numpy().astype(np.complex128))
        return (tuple(value.shape), str(value.dtype).rpartition(".")[2], tuple(value.stride()), value.requires_grad,
                np.round(values, 3).tolist())
    return value


def _saved(lib, make, arrays, grads):
    """The node's name, the _saved_/_raw_saved_ names it lists and their values, then what each
    reads once backward has freed the graph (torch's RuntimeError for every saved tensor)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tensors = [lib.tensor(a).requires_grad_(g) for a, g in zip(arrays, grads)]
        out = make(lib, *tensors)
    node = out.grad_fn
    names = sorted(n for n in dir(node) if n.startswith(("_saved_", "_raw_saved_")))
    before = {n: _plain(getattr(node, n)) for n in names if n.startswith("_saved_")}
    try:
        (out.real if out.is_complex() else out).sum().backward()
    except RuntimeError as error:  # (qr's mode='r' has no derivative: the same error in both)
        return node.name(), names, before, str(error)
    after = {}
    for name in before:
        try:
            after[name] = _plain(getattr(node, name))
        except RuntimeError as error:
            after[name] = type(error).__name__
    return node.name(), names, before, after


S, A, B = _spd(4), _array(3, 4), _array(4, 3, seed=1)
LOWER = np.linalg.cholesky(_spd(4)).astype(np.float32)
_CASES = {
    "prelu_1d": (lambda L, x, w: L.nn.functional.prelu(x, w), (_array(5), _array(1, seed=2)), (True, True)),
    "prelu_shared": (lambda L, x, w: L.nn.functional.prelu(x, w), (A, _array(1, seed=2)), (True, True)),
    "prelu_channels": (lambda L, x, w: L.nn.functional.prelu(x, w), (_array(2, 3, 4), _array(3, seed=2)), (True, True)),
    "cdist": (lambda L, a, b: L.cdist(a, b, p=1.5), (A, _array(2, 4, seed=1)), (True, False)),
    "trace": (lambda L, a: L.trace(a), (A,), (True,)),
    "cross": (lambda L, a, b: L.linalg.cross(a, b), (_array(2, 3), _array(2, 3, seed=1)), (True, False)),
    "cross_neg_dim": (lambda L, a, b: L.linalg.cross(a, b, dim=-2), (_array(3, 2), _array(3, 2, seed=1)), (True, True)),
    "cholesky": (lambda L, a: L.linalg.cholesky(a, upper=True), (S,), (True,)),
    "cholesky_old": (lambda L, a: L.cholesky(a), (S,), (True,)),
    "cholesky_solve": (lambda L, b, u: L.cholesky_solve(b, u), (B, LOWER), (False, True)),
    "cholesky_inverse": (lambda L, u: L.cholesky_inverse(u), (LOWER,), (True,)),
    "solve_triangular": (lambda L, a, b: L.linalg.solve_triangular(a, b, upper=False, left=False, unitriangular=True),
                         (LOWER, A), (False, True)),
    "qr": (lambda L, a: L.linalg.qr(a, mode="complete")[1], (A,), (True,)),
    "qr_r": (lambda L, a: L.linalg.qr(a, mode="r")[1], (A,), (True,)),
    "eigh": (lambda L, a: L.linalg.eigh(a)[0], (S,), (True,)),
    "eig": (lambda L, a: L.linalg.eig(a)[0], (S,), (True,)),
    "svd": (lambda L, a: L.linalg.svd(a)[1], (A,), (True,)),
    "svdvals": (lambda L, a: L.linalg.svdvals(a), (A,), (True,)),
    "inv": (lambda L, a: L.linalg.inv(a), (S,), (True,)),
    "pinv": (lambda L, a: L.linalg.pinv(a), (A,), (True,)),
    "lstsq": (lambda L, a, b: L.linalg.lstsq(a, b)[0], (S, B), (True, True)),
    "lu_factor": (lambda L, a: L.linalg.lu_factor(a)[0], (S,), (True,)),
    "lu": (lambda L, a: L.linalg.lu(a)[1], (A,), (True,)),
    "det": (lambda L, a: L.linalg.det(a), (_array(2, 3, 3, dtype=np.float64),), (True,)),
    "det_transposed": (lambda L, a: L.linalg.det(a.mT), (_array(3, 3),), (True,)),
    "slogdet": (lambda L, a: L.linalg.slogdet(a)[1], (_array(3, 3, seed=3),), (True,)),
    "solve": (lambda L, a, b: L.linalg.solve(a, b), (_array(3, 3, seed=3), _array(3, 2)), (True, False)),
    "matrix_exp": (lambda L, a: L.linalg.matrix_exp(a), (S / 10,), (True,)),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_saved_attributes_match_torch(case):
    make, arrays, grads = _CASES[case]
    assert _saved(chainrule, make, arrays, grads) == _saved(torch, make, arrays, grads)


def _empty_layouts(lib):
    """Empty tensors of several layouts, built the same way in both libraries."""
    return {
        "transposed": lib.zeros(4, 0, 3).permute(2, 0, 1),
        "channels_last": lib.zeros(2, 3, 0, 4).contiguous(memory_format=lib.channels_last),
        "sliced": lib.zeros(5, 2)[1:4, 2:],
        "expanded": lib.zeros(1, 0).expand(3, 0),
        "zero_first": lib.zeros(0, 3).t(),
    }


_LIKE_OPS = {
    "empty_like": lambda lib, t: lib.empty_like(t),
    "zeros_like": lambda lib, t: lib.zeros_like(t, dtype=lib.float64),
    "ones_like": lambda lib, t: lib.ones_like(t),
    "full_like": lambda lib, t: lib.full_like(t, 2.0),
    "rand_like": lambda lib, t: lib.rand_like(t, requires_grad=True),
    "randn_like": lambda lib, t: lib.randn_like(t),
    "clone": lambda lib, t: t.clone(),
    "double": lambda lib, t: t.double(),
    "to": lambda lib, t: t.to(lib.int32),
    "contiguous_format": lambda lib, t: lib.empty_like(t, memory_format=lib.contiguous_format),
}


@pytest.mark.parametrize("op", sorted(_LIKE_OPS))
def test_empty_like_results_keep_an_empty_inputs_strides(op):
    # torch counts an empty tensor contiguous, so dense: preserve_format copies its strides as they are
    make = _LIKE_OPS[op]
    ours, theirs = _empty_layouts(chainrule), _empty_layouts(torch)
    for name in ours:
        assert ours[name].stride() == theirs[name].stride(), name  # (the inputs agree)
        a, b = make(chainrule, ours[name]), make(torch, theirs[name])
        assert (name, tuple(a.shape), a.stride(), a.requires_grad, a.is_contiguous()) == \
            (name, tuple(b.shape), b.stride(), b.requires_grad, b.is_contiguous())


_DIM_CASES = {
    "narrow_whole_dim": lambda lib, x: x.narrow(-3, 0, 2),
    "narrow_whole_last": lambda lib, x: x.narrow(-1, 0, 4),
    "logcumsumexp": lambda lib, x: x.logcumsumexp(-2),
    "logcumsumexp_0d": lambda lib, x: x[0, 0, 0].logcumsumexp(-1),
    "diag_embed": lambda lib, x: lib.diag_embed(x, -1, 0, -1),
    "diag_embed_default": lambda lib, x: lib.diag_embed(x),
    "diagonal_negative_offset": lambda lib, x: x.diagonal(-1, 0, -1),
}


@pytest.mark.parametrize("case", sorted(_DIM_CASES))
def test_negative_dims_saved_as_torchs_unsigned_values(case):
    def saved(lib):
        x = lib.tensor(_array(2, 3, 4), requires_grad=True)
        out = _DIM_CASES[case](lib, x)
        node = out.grad_fn
        names = sorted(n for n in dir(node) if n.startswith("_saved_"))
        values = [(n, _plain(getattr(node, n))) for n in names]
        out.sum().backward()  # (the numbers outlive the freed graph)
        return node.name(), values, [(n, getattr(node, n)) for n in names if n != "_saved_self" and n != "_saved_result"]

    assert saved(chainrule) == saved(torch)
