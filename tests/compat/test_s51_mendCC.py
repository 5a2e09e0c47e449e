"""vmap where session 50 left it (session 51, mendCC): multinomial under randomness="different" drawn
once for the batch (the function runs once, torch's numbers bitwise); median() of each slice
differentiated outside the vmap sends the gradient to the returned index, as torch's batching rule
(median(dim) of the flattened slices) does; a batched value read as a Python number while a grad-like
transform runs inside the vmap (``vmap(grad(lambda x: x[x.argmax()]))``, ``.item()``, ``bool()``) is
refused in torch's words for that case."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

from ._vmap_checks import mapped  # noqa: E402

_rng = np.random.default_rng(5151)
_P = _rng.random((3, 5))
_P2 = _rng.random((3, 2, 5))
_X = _rng.standard_normal((3, 6))

# ---------------------------------------------------------------- multinomial

MULTINOMIAL = {
    "replacement": (lambda lib: lambda p: lib.multinomial(p, 4, replacement=True), _P, 0),
    "races": (lambda lib: lambda p: lib.multinomial(p, 3), _P, 0),
    "one_sample": (lambda lib: lambda p: lib.multinomial(p, 1), _P, 0),
    "rows_races": (lambda lib: lambda p: lib.multinomial(p, 3), _P2, 0),
    "rows_replacement": (lambda lib: lambda p: lib.multinomial(p, 7, True), _P2, 0),
    "float32": (lambda lib: lambda p: lib.multinomial(p.float(), 3), _P, 0),
    "intermediate": (lambda lib: lambda p: lib.multinomial(p.exp(), 4, True), _P, 0),
    "expanded_rows": (lambda lib: lambda p: lib.multinomial(p.reshape(1, 5).expand(2, 5), 2), _P, 0),
    "then_rand": (lambda lib: lambda p: lib.multinomial(p, 3).double() + lib.rand(3, dtype=lib.float64), _P, 0),
    "races_in_dim_1": (lambda lib: lambda p: lib.multinomial(p, 3), _P.T.copy(), 1),
    "replacement_in_dim_1": (lambda lib: lambda p: lib.multinomial(p, 3, True), _P.T.copy(), 1),
    "rows_races_in_dim_1": (lambda lib: lambda p: lib.multinomial(p, 3), np.moveaxis(_P2, 0, 1).copy(), 1),
}


def _vmapped(lib, build, array, in_dims, seed: int = 7):
    calls = [0]
    f = build(lib)

    def counted(*args):
        calls[0] += 1
        return f(*args)

    lib.manual_seed(seed)
    out = lib.func.vmap(counted, in_dims=in_dims, randomness="different")(lib.tensor(array))
    return out.numpy(), calls[0], lib.rand(2, dtype=lib.float64).numpy()


@pytest.mark.parametrize("name", sorted(MULTINOMIAL))
def test_multinomial_is_one_draw_for_the_batch(name, per_slice_ops):
    build, array, in_dims = MULTINOMIAL[name]
    ours, our_calls, our_next = _vmapped(chainrule, build, array, in_dims)
    theirs, their_calls, their_next = _vmapped(torch, build, array, in_dims)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_next, their_next)  # (the generator left where torch's is)


def test_multinomial_refuses_a_later_slice_as_torch():
    """The batch's weights are checked (slice 0's alone passed): torch's error from the bad slice."""
    bad = _P.copy()
    bad[1, 2] = -1.0
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        with pytest.raises(RuntimeError, match="probability tensor contains either `inf`, `nan` or element < 0"):
            lib.func.vmap(lambda p, lib=lib: lib.multinomial(p, 3), randomness="different")(lib.tensor(bad))


def test_multinomial_under_grad_indexes_the_batch(per_slice_ops):
    build = lambda lib: lambda p: p[lib.multinomial(p, 2, True)] * p[0]  # noqa: E731
    ours, our_calls = mapped(chainrule, build, (_P,), grad=1, randomness="different", seed=3)
    theirs, their_calls = mapped(torch, build, (_P,), grad=1, randomness="different", seed=3)
    assert our_calls == their_calls == 1
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- median() differentiated outside the vmap

_TIES = np.array([[1.0, 2.0, 2.0, 3.0], [5.0, 5.0, 1.0, 0.0], [4.0, 4.0, 4.0, 4.0]])

MEDIAN = {
    "median": lambda lib: lambda a: lib.median(a),
    "median_of_intermediate": lambda lib: lambda a: lib.median(a * 2),
    "median_of_matrix": lambda lib: lambda a: a.reshape(2, 2).median(),
    "nanmedian": lambda lib: lambda a: lib.nanmedian(a),
    "nanmedian_of_matrix": lambda lib: lambda a: a.reshape(2, 2).nanmedian(),
}


@pytest.mark.parametrize("name", sorted(MEDIAN))
def test_median_gradient_outside_the_vmap_goes_to_the_index(name, per_slice_ops):
    found = {}
    for lib in (chainrule, torch):
        x = lib.tensor(_TIES, requires_grad=True)
        y = lib.func.vmap(MEDIAN[name](lib))(x)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        found[lib] = (y.detach().numpy(), x.grad.numpy(), y.grad_fn.name())
    assert per_slice_ops == []
    np.testing.assert_array_equal(found[chainrule][0], found[torch][0])
    np.testing.assert_array_equal(found[chainrule][1], found[torch][1])
    assert found[chainrule][2] == found[torch][2] == ("NanmedianBackward1" if "nan" in name else "MedianBackward1")


@pytest.mark.parametrize("grad", [0, 1])
@pytest.mark.parametrize("name", ["nanmedian", "nanmedian_dim"])
def test_nanmedian_replays_on_the_batch(name, grad, per_slice_ops):
    build = {"nanmedian": lambda lib: lambda a: lib.nanmedian(a) * 2.0,
             "nanmedian_dim": lambda lib: lambda a: lib.nanmedian(a.reshape(2, 2), 1).values}[name]
    arrays = (np.array([[1.0, 3.0, np.nan, 3.0], [5.0, 5.0, 1.0, 0.0], [4.0, 4.0, 4.0, 4.0]]),)
    ours, our_calls = mapped(chainrule, build, arrays, grad)
    theirs, their_calls = mapped(torch, build, arrays, grad)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)


def test_median_inside_grad_still_splits_among_ties(per_slice_ops):
    """vmap(grad(median)): the grad is inside the vmap, torch's median() rule splits among ties."""
    ours, our_calls = mapped(chainrule, MEDIAN["median"], (_TIES,), grad=1)
    theirs, their_calls = mapped(torch, MEDIAN["median"], (_TIES,), grad=1)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)


def test_median_outside_the_vmap_jacobian_and_gradcheck():
    x = _rng.standard_normal((3, 5))
    ours = chainrule.func.jacrev(chainrule.func.vmap(chainrule.median))(chainrule.tensor(x)).numpy()
    theirs = torch.func.jacrev(torch.func.vmap(torch.median))(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(ours, theirs)
    leaf = chainrule.tensor(x, requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.func.vmap(lambda a: chainrule.median(a * a)), (leaf,))


# ---------------------------------------------------------------- a value read under a grad inside the vmap

READS = {
    "index_by_argmax": lambda lib: lambda a: a[a.argmax()],
    "index_by_argmax_in_list": lambda lib: lambda a: a[[a.argmax()]],
    "index_by_argmax_and_none": lambda lib: lambda a: a[a.argmax(), None],
    "index_two_dims": lambda lib: lambda a: a.reshape(2, 3)[a.argmax() % 2, 1],
    "index_after_slice": lambda lib: lambda a: a.reshape(2, 3)[:, a.argmax() % 3],
    "index_from_detached": lambda lib: lambda a: a[a.detach().argmax()],
    "item": lambda lib: lambda a: a * a.sum().item(),
    "float": lambda lib: lambda a: a * float(a.sum()),
    "control_flow": lambda lib: lambda a: a * 2 if a.sum() > 0 else a,
}
TRANSFORMS = {
    "grad": lambda lib, f: lib.func.grad(lambda a: f(a).sum()),
    "jacrev": lambda lib, f: lib.func.jacrev(f),
    "jacfwd": lambda lib, f: lib.func.jacfwd(lambda a: f(a).sum()),
    "none": lambda lib, f: f,
    "inner_vmap": lambda lib, f: lambda a: lib.func.vmap(lambda b: f(a) * b)(a[:2]),
}


def _outcome(lib, read: str, transform: str):
    f = TRANSFORMS[transform](lib, READS[read](lib))
    try:
        out = lib.func.vmap(f)(lib.tensor(_X))
    except RuntimeError as error:
        return str(error)
    return out.detach().numpy()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("read", sorted(READS))
def test_value_read_under_a_transform_inside_vmap_as_torch(read, transform):
    ours, theirs = _outcome(chainrule, read, transform), _outcome(torch, read, transform)
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        assert not isinstance(ours, str), ours
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_index_by_a_batched_integer_under_grad_over_another_argument():
    """The grad need not differentiate the indexed tensor: any grad inside the vmap refuses the read."""
    w = _rng.standard_normal(6)
    messages = []
    for lib in (chainrule, torch):
        f = lib.func.vmap(lib.func.grad(lambda w, a: (w * w[a.argmax()]).sum()), in_dims=(None, 0))
        with pytest.raises(RuntimeError) as error:
            f(lib.tensor(w), lib.tensor(_X))
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("vmap: It looks like you're either (1) calling .item() on a Tensor")


# ---------------------------------------------------------------- rand_like / randn_like in torch's batched layout

_IMAGE = _rng.standard_normal((4, 3, 5)).astype(np.float32)
_IMAGE64 = _rng.standard_normal((4, 3, 5))

LIKE_INPUTS = {
    "slice": lambda lib: lambda a: a,
    "elementwise": lambda lib: lambda a: a * 2,
    "elementwise_chain": lambda lib: lambda a: (a + 1).exp(),
    "transposed_slice": lambda lib: lambda a: a.t(),
    "transposed_elementwise": lambda lib: lambda a: (a * 2).t(),
    "matmul": lambda lib: lambda a: a @ a.t(),
    "narrowed_slice": lambda lib: lambda a: a[:, 1:],
}


@pytest.mark.parametrize("in_dim", [0, 1, 2])
@pytest.mark.parametrize("factory", ["rand_like", "randn_like"])
@pytest.mark.parametrize("name", sorted(LIKE_INPUTS))
def test_random_like_draws_in_torchs_batched_layout(name, factory, in_dim, per_slice_ops):
    def build(lib):
        made = LIKE_INPUTS[name](lib)
        return lambda a: getattr(lib, factory)(made(a))

    found = [_vmapped(lib, build, _IMAGE, in_dim) for lib in (chainrule, torch)]
    assert found[0][1] == found[1][1] == 1
    assert per_slice_ops == []
    assert found[0][0].dtype == found[1][0].dtype
    np.testing.assert_array_equal(found[0][0], found[1][0])
    np.testing.assert_array_equal(found[0][2], found[1][2])


@pytest.mark.parametrize("in_dim", [0, 1, 2])
@pytest.mark.parametrize("factory", ["rand_like", "randn_like"])
def test_random_like_under_grad_in_torchs_batched_layout(factory, in_dim, per_slice_ops):
    def build(lib):
        return lambda a: a * getattr(lib, factory)(a)

    found = []
    for lib in (chainrule, torch):
        calls = [0]

        def f(a, lib=lib, calls=calls):
            calls[0] += 1
            return build(lib)(a).sum()

        lib.manual_seed(11)
        out = lib.func.vmap(lib.func.grad(f), in_dims=in_dim, randomness="different")(lib.tensor(_IMAGE64))
        found.append((out.numpy(), calls[0]))
    assert found[0][1] == found[1][1] == 1
    np.testing.assert_array_equal(found[0][0], found[1][0])


# ---------------------------------------------------------------- indexing with a batched index

_T = _rng.standard_normal((3, 4, 5))
_I = _rng.integers(0, 4, (3, 3))
_J = _rng.integers(0, 5, (3, 3))
_I2 = _rng.integers(0, 4, (3, 2, 3))
_NEG = -_rng.integers(1, 5, (3, 3))

INDEXING = {
    "rows": (lambda lib: lambda a, i, j: a[i], (_T, _I, _J)),
    "later_dim": (lambda lib: lambda a, i, j: a[:, j], (_T, _I, _J)),
    "two_arrays": (lambda lib: lambda a, i, j: a[i, j], (_T, _I, _J)),
    "new_axis_after": (lambda lib: lambda a, i, j: a[i, :, None], (_T, _I, _J)),
    "ellipsis": (lambda lib: lambda a, i, j: a[..., j], (_T, _I, _J)),
    "matrix_index": (lambda lib: lambda a, i, j: a[i], (_T, _I2, _J)),
    "negative": (lambda lib: lambda a, i, j: a[i], (_T, _NEG, _J)),
    "computed_index": (lambda lib: lambda a, i, j: a[i + 0], (_T, _I, _J)),
    "unbatched_tensor": (lambda lib: lambda a, i, j: a[0][i] * a[1, 0], (_T, _I, _J)),
    "then_matrix_index": (lambda lib: lambda a, i, j: a[:, j][i], (_T, _I, _J)),
    "remainder_index": (lambda lib: lambda a, i, j: a[i % 2, (7 % (j + 1)) % 5], (_T, _I, _J)),
}


# (x[i, :, None] under grad: its record's key is no array the record saw made, so f runs per slice; left)
@pytest.mark.parametrize(("name", "grad"), [(name, grad) for name in sorted(INDEXING) for grad in (0, 1, 2)
                                            if not (name == "new_axis_after" and grad)])
def test_batched_index_reads_the_batch_at_once(name, grad, per_slice_ops):
    build, arrays = INDEXING[name]
    if grad:  # (the index arrays are no differentiable inputs: closed over per call, as a float input's own)
        ours, our_calls = mapped(chainrule, lambda lib: lambda a, i, j: build(lib)(a, i, j) ** 2, arrays, grad)
        theirs, their_calls = mapped(torch, lambda lib: lambda a, i, j: build(lib)(a, i, j) ** 2, arrays, grad)
    else:
        ours, our_calls = mapped(chainrule, build, arrays)
        theirs, their_calls = mapped(torch, build, arrays)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_batched_index_passes_gradcheck_through_vmap():
    i, j = chainrule.tensor(_I), chainrule.tensor(_J)
    x = chainrule.tensor(_T[:, :3, :4], requires_grad=True)
    i, j = i % 3, j % 4

    def f(x):
        return chainrule.func.vmap(lambda a, p, q: (a[p] * a[:, q].sum()).sin())(x, i, j)

    assert chainrule.autograd.gradcheck(f, (x,))
    assert chainrule.autograd.gradgradcheck(f, (x,))


# ---------------------------------------------------------------- max() / min() / amax / amin under vmap

_EXTREMES = np.array([[1.0, 3.0, 2.0, 3.0], [5.0, 5.0, 1.0, 0.0], [4.0, 4.0, 4.0, 4.0], [1.0, np.nan, 2.0, np.nan]])

EXTREMES = {
    "max": lambda lib: lambda a: a.max() * a,
    "min": lambda lib: lambda a: lib.min(a) * a,
    "max_of_matrix": lambda lib: lambda a: a.reshape(2, 2).max() * a,
    "amax": lambda lib: lambda a: a.amax() * a,
    "amax_dim": lambda lib: lambda a: a.reshape(2, 2).amax(1) * a.reshape(2, 2),
    "amin_keepdim": lambda lib: lambda a: a.reshape(2, 2).amin(0, keepdim=True) * a.reshape(2, 2),
}


@pytest.mark.parametrize("grad", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(EXTREMES))
def test_extremes_replay_on_the_batch(name, grad, per_slice_ops):
    ours, our_calls = mapped(chainrule, EXTREMES[name], (_EXTREMES,), grad)
    theirs, their_calls = mapped(torch, EXTREMES[name], (_EXTREMES,), grad)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(("name", "node"), [("max", "MaxBackward0"), ("min", "MinBackward0")])
def test_max_of_each_slice_differentiated_outside_goes_to_the_index(name, node, per_slice_ops):
    found = {}
    for lib in (chainrule, torch):
        x = lib.tensor(_EXTREMES[:3], requires_grad=True)
        y = lib.func.vmap(lambda a, lib=lib: getattr(lib, name)(a))(x)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        found[lib] = (y.detach().numpy(), x.grad.numpy(), y.grad_fn.name())
    assert per_slice_ops == []
    np.testing.assert_array_equal(found[chainrule][0], found[torch][0])
    np.testing.assert_array_equal(found[chainrule][1], found[torch][1])
    assert found[chainrule][2] == found[torch][2] == node
