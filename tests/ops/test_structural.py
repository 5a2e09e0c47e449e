"""unique, repeat_interleave, meshgrid, rot90, diff, isin, block_diag, diag_embed, ...: what the
registry's generic samples do not show — torch's errors for bad input, and whole programs that
use these ops the way scripts do, run on chainrule and on torch and compared.

The forward/gradient comparisons of every sample live in the registry
(``chainrule/testing/opinfo/structural.py``, run by ``test_op_db.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

from .harness import requires_torch, torch

pytestmark = requires_torch


def _raises_like_torch(fn, *arrays):
    """``fn(lib, *tensors)`` raises on both libraries: the same exception type, and a message that
    holds torch's (ours may name the op first, or the sizes after; a tensor torch prints is not compared)."""
    with pytest.raises(Exception) as theirs:
        fn(torch, *[torch.tensor(a) for a in arrays])
    with pytest.raises(type(theirs.value)) as ours:
        fn(chainrule, *[chainrule.tensor(a) for a in arrays])
    expected = str(theirs.value).split("\n")[0].split(" got: ")[0]
    assert expected in str(ours.value)


X = np.arange(12.0).reshape(3, 4)

ERRORS = {
    "repeat_interleave_negative_int": (lambda lib, x: x.repeat_interleave(-1), [X]),
    "repeat_interleave_negative_count": (lambda lib, x: x.repeat_interleave(lib.tensor([1, -2, 3]), dim=0), [X]),
    "repeat_interleave_wrong_count": (lambda lib, x: x.repeat_interleave(lib.tensor([1, 2]), dim=0), [X]),
    "repeat_interleave_2d_counts": (lambda lib, x: x.repeat_interleave(lib.ones(3, 1, dtype=lib.long), dim=0), [X]),
    "repeat_interleave_float_counts": (lambda lib, x: x.repeat_interleave(lib.tensor([1.0, 2.0, 3.0]), dim=0),
                                       [X]),
    "repeat_interleave_dim": (lambda lib, x: x.repeat_interleave(2, dim=2), [X]),
    "meshgrid_2d": (lambda lib, x: lib.meshgrid(x, x, indexing="ij"), [np.ones((2, 2))]),
    "meshgrid_indexing": (lambda lib, x: lib.meshgrid(x, indexing="ab"), [np.ones(2)]),
    "meshgrid_nothing": (lambda lib: lib.meshgrid([], indexing="ij"), []),
    "cartesian_prod_2d": (lambda lib, x: lib.cartesian_prod(x, x), [X]),
    "combinations_2d": (lambda lib, x: lib.combinations(x), [X]),
    "combinations_negative_r": (lambda lib, x: lib.combinations(x, -1), [X[0]]),
    "tril_indices_negative_row": (lambda lib: lib.tril_indices(-1, 2), []),
    "triu_indices_negative_col": (lambda lib: lib.triu_indices(2, -3), []),
    "block_diag_3d": (lambda lib, x: lib.block_diag(x, x), [np.ones((2, 2, 2))]),
    "rot90_same_dims": (lambda lib, x: lib.rot90(x, 1, [0, 0]), [X]),
    "rot90_1d": (lambda lib, x: lib.rot90(x), [X[0]]),
    "rot90_three_dims": (lambda lib, x: lib.rot90(x, 1, [0, 1, 0]), [X]),
    "rot90_dim_out_of_range": (lambda lib, x: lib.rot90(x, 1, [0, 2]), [X]),
    "diff_0d": (lambda lib, x: lib.diff(x), [np.array(1.0)]),
    "diff_negative_n": (lambda lib, x: lib.diff(x, n=-1), [X]),
    "diff_prepend_rank": (lambda lib, x, p: lib.diff(x, prepend=p), [X, np.ones(3)]),
    "diag_embed_same_dims": (lambda lib, x: lib.diag_embed(x, 0, 1, 1), [X]),
    "unique_dim_out_of_range": (lambda lib, x: lib.unique(x, dim=3), [X]),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch(name):
    fn, arrays = ERRORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _raises_like_torch(fn, *arrays)


def test_isin_needs_a_tensor():
    with pytest.raises(TypeError, match="isin"):
        chainrule.isin([1, 2], chainrule.tensor([1]))
    with pytest.raises(TypeError, match="isin"):
        chainrule.isin(1, 2)


def test_meshgrid_without_indexing_warns_and_uses_ij(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())  # (it warns once per process, as torch's)
    a, b = chainrule.arange(3), chainrule.arange(2)
    with pytest.warns(UserWarning, match="indexing"):
        grid_x, grid_y = chainrule.meshgrid(a, b)
    assert tuple(grid_x.shape) == (3, 2) and tuple(grid_y.shape) == (3, 2)


def test_unique_values_carry_no_gradient():
    x = chainrule.tensor([1.0, 2.0, 1.0], requires_grad=True)
    values, inverse = x.unique(return_inverse=True)
    assert not values.requires_grad and values.grad_fn is None
    assert inverse.dtype == chainrule.int64 and inverse.tolist() == [0, 1, 0]


def test_unique_nan_is_a_value_of_its_own():
    # NaN never equals NaN in torch's unique: each NaN is returned, counted once, with its own index
    _compare(lambda lib: lib.unique(lib.tensor([1.0, float("nan"), 1.0, float("nan")]), return_inverse=True,
                                    return_counts=True))


def test_unique_of_an_empty_axis():
    _compare(lambda lib: lib.unique(lib.zeros(0, 3), dim=0, return_inverse=True, return_counts=True))
    _compare(lambda lib: lib.unique_consecutive(lib.zeros(0, 3), dim=0, return_counts=True))
    _raises_like_torch(lambda lib, x: lib.unique(x, dim=1), np.zeros((0, 3)))


def _compare(program, rtol=1e-5, atol=1e-6):
    """``program(lib)`` returns a list of tensors; chainrule's must equal torch's (values and dtype)."""
    ours, theirs = program(chainrule), program(torch)
    ours, theirs = (list(r) if isinstance(r, (list, tuple)) else [r] for r in (ours, theirs))
    assert len(ours) == len(theirs)
    for k, (o, t) in enumerate(zip(ours, theirs)):
        assert tuple(o.shape) == tuple(t.shape), f"result {k}: shape {tuple(o.shape)} vs {tuple(t.shape)}"
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"result {k}: dtype"
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"result {k}")


def test_program_vocabulary_from_token_ids():
    """Build a vocabulary from a batch of token ids, remap them, count them and expand a batch by lengths."""
    ids = np.array([[5, 3, 9, 3], [9, 9, 1, 5]])
    lengths = np.array([3, 1])
    features = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)

    def program(lib):
        tokens = lib.tensor(ids)
        vocab, remapped, counts = tokens.unique(return_inverse=True, return_counts=True)
        frequent = vocab[counts > 1]
        mask = lib.isin(tokens, frequent)
        row_of_each_token = lib.repeat_interleave(lib.tensor(lengths))
        x = lib.tensor(features, requires_grad=True)
        expanded = x.repeat_interleave(lib.tensor(lengths), dim=0)
        loss = (expanded * lib.arange(4.0)).sum() + (x.repeat_interleave(2, dim=1) ** 2).mean()
        loss.backward()
        runs = lib.unique_consecutive(lib.tensor([1, 1, 2, 2, 2, 1]), return_counts=True)
        return [vocab, remapped, counts, mask, row_of_each_token, expanded, x.grad, *runs]

    _compare(program)


def test_program_grid_and_pairs():
    """A coordinate grid (meshgrid 'xy' as matplotlib scripts use it), all pairs of points, and the
    upper-triangle entries of their distance matrix."""
    def program(lib):
        xs, ys = lib.linspace(-1, 1, 5), lib.linspace(0, 2, 3)
        gx, gy = lib.meshgrid(xs, ys, indexing="xy")
        points = lib.stack([gx.reshape(-1), gy.reshape(-1)], 1).requires_grad_(True)
        distances = lib.cdist(points, points)
        rows, cols = lib.triu_indices(points.shape[0], points.shape[0], 1)
        upper = distances[rows, cols]
        pairs = lib.combinations(lib.arange(4.0), 2)
        product = lib.cartesian_prod(lib.arange(2), lib.arange(3))
        upper.sum().backward()
        return [gx, gy, upper, pairs, product, points.grad, lib.tril_indices(3, 3)]

    _compare(program, rtol=1e-4, atol=1e-5)


def test_program_augment_and_difference():
    """rot90 augmentation of an image batch, block-diagonal masks, diag_embed of scores, diff of a
    cumulative series with prepend, moveaxis to channels-last: forward and gradients."""
    rng = np.random.default_rng(1)
    images = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    scores = rng.standard_normal((2, 3)).astype(np.float32)

    def program(lib):
        x = lib.tensor(images, requires_grad=True)
        s = lib.tensor(scores, requires_grad=True)
        rotated = [lib.rot90(x, k, dims=(2, 3)) for k in range(4)]
        channels_last = lib.moveaxis(x, 1, -1)
        mask = lib.block_diag(lib.ones(2, 2), lib.ones(1, 3), lib.tensor(5.0))
        embedded = lib.diag_embed(s.softmax(-1), offset=1)
        series = s.cumsum(-1)
        velocity = lib.diff(series, prepend=lib.zeros(2, 1))
        total = sum(r.sum() * (k + 1) for k, r in enumerate(rotated)) + (embedded ** 2).sum() + \
            (velocity * lib.arange(3.0)).sum() + (channels_last[..., 0] ** 2).sum()
        total.backward()
        return [*rotated, channels_last, mask, embedded, velocity, x.grad, s.grad, s.diagflat()]

    _compare(program)
