"""Session 51, lane mendCH: a full max()/min()/median()/nanmedian()'s gradient under torch.func takes torch's
``mask * (grad / count)`` (a NaN or infinite incoming gradient reaches the untied elements as NaN), as does an
∞-norm's always (NaN elements counted as maximal); and indexing under vmap runs f once."""
import itertools

import numpy as np
import pytest
import torch

import chainrule

from ._vmap_checks import mapped

NAN, INF = float("nan"), float("inf")
DATA = {"ties": [3., 1., 3., 2.], "nan": [3., NAN, 3., 0.], "all_tied": [1., 1., 1.], "mid_ties": [1., 2., 2., 3.],
        "nan_mid_ties": [1., NAN, 2., 2., 3.]}


def _same(ours, theirs) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    np.testing.assert_array_equal(ours, theirs)
    keep = ~np.isnan(theirs)  # (and -0.0 where torch has it)
    np.testing.assert_array_equal(np.signbit(ours) & keep, np.signbit(theirs) & keep)


def _gradient_by(lib, f, data, mode, second_scale=2):
    """The gradient of the scalar ``f`` at ``data`` by ``mode``: .backward(), or torch.func's grad, vjp,
    jacrev, or vmap(grad) over two copies (the second scaled by ``second_scale``)."""
    x = lib.tensor(data, dtype=lib.float64)
    if mode == "backward":
        x.requires_grad_()
        f(x).backward()
        return x.grad.numpy()
    if mode == "grad":
        return lib.func.grad(f)(x).numpy()
    if mode == "vjp":
        _, vjp_fn = lib.func.vjp(f, x)
        return vjp_fn(lib.tensor(1.0, dtype=lib.float64))[0].numpy()
    if mode == "jacrev":
        return lib.func.jacrev(f)(x).numpy()
    return lib.func.vmap(lib.func.grad(f))(lib.stack([x, second_scale * x])).numpy()


def _gradient(lib, op, data, scale, mode):
    reduce = getattr(lib, op)

    def f(x):
        out = reduce(x)
        return (out * scale).sum() if scale is not None else (out * x).sum()

    return _gradient_by(lib, f, data, mode)


@pytest.mark.parametrize("op,case,scale,mode", list(itertools.product(
    ["max", "min", "median", "nanmedian"], sorted(DATA), [NAN, INF, -INF, 2.0, -3.0, None],
    ["backward", "grad", "vjp", "jacrev", "vmap_grad"])))
@pytest.mark.pairwise_in_ci(seed=61)
def test_full_extremum_gradient_matches_torch_for_nonfinite_incoming_gradients(op, case, scale, mode):
    # torch's evenly_distribute_backward: zeros filled at the mask on plain CPU tensors, mask * (grad / count)
    # on functorch's wrapped ones (a NaN/inf gradient makes every other element NaN); finite ones agree bitwise
    _same(_gradient(chainrule, op, DATA[case], scale, mode), _gradient(torch, op, DATA[case], scale, mode))


def test_nanmedian_times_input_under_grad_is_nan_everywhere_as_torch():
    def f(lib):
        return lib.func.grad(lambda x: (lib.nanmedian(x) * x).sum())(lib.tensor([1., NAN, 2., 2., 3.],
                                                                                dtype=lib.float64))
    out = f(chainrule).numpy()
    assert np.isnan(out).all()
    _same(out, f(torch).numpy())


@pytest.mark.parametrize("data,scale,order,dim,mode", list(itertools.product(
    [[3., NAN, 1., 2.], [3., -3., 1., 2.], [1., 2., -2., 0.5], [0., 0., 0., 0.]], [NAN, INF, 2.0, -1.0],
    [INF, -INF], [None, 0], ["backward", "grad", "vmap_grad"])))
@pytest.mark.pairwise_in_ci(seed=61)
def test_infinity_norm_gradient_is_mask_times_share_as_torch(data, scale, order, dim, mode):
    def run(lib):
        def f(x):
            return lib.linalg.vector_norm(x, order, dim) * scale

        return _gradient_by(lib, f, data, mode, second_scale=1)

    _same(run(chainrule), run(torch))


def test_finite_gradients_at_ties_keep_their_values_and_gradcheck():
    x = chainrule.tensor([3., 1., 3., 2.], dtype=chainrule.float64, requires_grad=True)
    for op in (chainrule.max, chainrule.min, chainrule.median, chainrule.nanmedian):
        assert chainrule.autograd.gradcheck(lambda t, op=op: op(t * chainrule.tensor([1., 2., 3., 4.], dtype=t.dtype)),
                                            (x,))
    for mode in ("backward", "grad", "vmap_grad"):
        _same(_gradient(chainrule, "max", [3., 1., 3., 2.], -2.0, mode), _gradient(torch, "max", [3., 1., 3., 2.],
                                                                                     -2.0, mode))


_SLICES = np.arange(24.).reshape(4, 3, 2)
_AT = np.array([0, 1, 1, 0])
_KEYS = {"x[i, 1]": lambda x, i: x[i, 1], "x[1, j]": lambda x, i: x[1, i], "x[i, -1]": lambda x, i: x[i, -1],
         "x[i, 1:]": lambda x, i: x[i, 1:] * 2, "x[:, i]": lambda x, i: x[:, i].sum(0)}


@pytest.mark.parametrize("key", sorted(_KEYS))
def test_integers_slices_and_a_batched_index_under_vmap_run_f_once(key, per_slice_ops):


    ours, calls = mapped(chainrule, lambda lib: _KEYS[key], [_SLICES, _AT])
    theirs, torch_calls = mapped(torch, lambda lib: _KEYS[key], [_SLICES, _AT])
    np.testing.assert_array_equal(ours, theirs)
    assert (calls, per_slice_ops) == (torch_calls, [])


@pytest.mark.parametrize("key", ["x[i, 1]", "x[1, j]"])
def test_batched_index_read_under_grad_in_vmap_refused_as_torch(key):


    errors = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as caught:
            mapped(lib, lambda lib: _KEYS[key], [_SLICES, _AT], grad=1)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
