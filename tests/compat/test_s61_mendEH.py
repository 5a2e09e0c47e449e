"""Lane mendEH (session 61): torch.func.vmap against torch's batching rules.

addmv of mapped vectors by an unmapped matrix: torch's rule leaves the batch dim of the product behind and
scales it there (alpha·mv is MulBackward1 under the PermuteBackward0 that moves the batch dim to the front).
Inputs are multiples of 1/4 and the scalars dyadic, so every product is exact and the bits compared are the
ops' order, not a BLAS's summation order.
"""
import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _dyadic(rng, shape):
    return (rng.integers(-12, 13, shape) / 4).astype(np.float32)


def _graph(node):
    """The node names of the graph under ``node``, depth first."""
    if node is None:
        return None
    return (node.name(), tuple(_graph(child) for child, _ in node.next_functions))


def _addmv_run(lib, arrays, in_dims, alpha, beta):
    tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = lib.func.vmap(lambda i, m, v: lib.addmv(i, m, v, alpha=alpha, beta=beta), in_dims=in_dims)(*tensors)
    out.backward(lib.tensor(np.arange(out.numel(), dtype=np.float32).reshape(tuple(out.shape)) / 4))
    return (out.detach().numpy(), out.stride(), _graph(out.grad_fn).__repr__().replace("torch::autograd::", ""),
            [None if t.grad is None else t.grad.numpy() for t in tensors])


@pytest.mark.parametrize("input_mapped", [False, True])
@pytest.mark.parametrize("alpha, beta", [(2.5, 0), (0.5, 0), (2.5, 0.75), (-1.25, 1), (1, 0)])
def test_addmv_of_mapped_vectors_scales_before_the_batch_dim_moves(input_mapped, alpha, beta):
    rng = np.random.default_rng(61)
    size, n, m = 3, 4, 2
    arrays = [_dyadic(rng, (size, n) if input_mapped else (n,)), _dyadic(rng, (n, m)), _dyadic(rng, (size, m))]
    in_dims = (0 if input_mapped else None, None, 0)
    ours = _addmv_run(chainrule, arrays, in_dims, alpha, beta)
    theirs = _addmv_run(real_torch, arrays, in_dims, alpha, beta)
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[1:3] == theirs[1:3]
    for mine, torch_grad in zip(ours[3], theirs[3]):
        assert (mine is None) == (torch_grad is None)
        if mine is not None:
            np.testing.assert_array_equal(mine, torch_grad)


def test_unary_ops_after_mapped_mv_keep_the_batch_dim_behind():
    rng = np.random.default_rng(7)
    mat, vectors = _dyadic(rng, (5, 2)), _dyadic(rng, (3, 2))
    for op in ("neg", "exp"):
        found = []
        for lib in (chainrule, real_torch):
            m = lib.tensor(mat, requires_grad=True)
            out = lib.func.vmap(lambda v, lib=lib, m=m, op=op: getattr(lib.mv(m, v), op)())(lib.tensor(vectors))
            found.append((out.stride(), repr(_graph(out.grad_fn)).replace("torch::autograd::", "")))
        assert found[0] == found[1], op


_REDUCTIONS = {
    "prod()": lambda lib, t: lib.prod(t), "prod(0)": lambda lib, t: lib.prod(t, 0),
    "prod(-1, keepdim)": lambda lib, t: lib.prod(t, -1, keepdim=True),
    "prod(0, float64)": lambda lib, t: lib.prod(t, 0, dtype=lib.float64),
    "nansum()": lambda lib, t: lib.nansum(t), "nansum(0, keepdim)": lambda lib, t: lib.nansum(t, 0, keepdim=True),
    "nansum((0,), float64)": lambda lib, t: lib.nansum(t, (0,), dtype=lib.float64),
    "logsumexp(0)": lambda lib, t: lib.logsumexp(t, 0), "logsumexp(-1, keepdim)": lambda lib, t: lib.logsumexp(t, -1, True),
}


def _reduction_run(lib, name, array):
    x = lib.tensor(array, requires_grad=True)
    out = lib.func.vmap(lambda t: _REDUCTIONS[name](lib, t))(x)
    out.backward(lib.ones_like(out))
    return out, x.grad


@pytest.mark.parametrize("slice_shape", [(), (4,), (2, 3)])
@pytest.mark.parametrize("name", sorted(_REDUCTIONS))
def test_prod_nansum_logsumexp_run_once_on_the_batch(name, slice_shape):
    """One op on the batch with torch's nodes (a 0-d slice made a column, UnsqueezeBackward0; a whole
    slice's prod along its flattened row, ProdBackward1 over ViewBackward0), not a stack of slices."""
    rng = np.random.default_rng(61)
    array = (rng.integers(1, 7, (3, *slice_shape)) * rng.choice([-0.5, 0.5], (3, *slice_shape))).astype(np.float32)
    if name.startswith("nansum") and array.size > 2:
        array.flat[1] = np.nan
    ours, our_grad = _reduction_run(chainrule, name, array)
    theirs, their_grad = _reduction_run(real_torch, name, array)
    assert repr(_graph(ours.grad_fn)) == repr(_graph(theirs.grad_fn))
    assert (tuple(ours.shape), ours.stride(), str(ours.dtype).split(".")[1]) == \
        (tuple(theirs.shape), theirs.stride(), str(theirs.dtype).split(".")[1])
    if name.startswith("logsumexp"):  # (torch's exp is SLEEF's: its last bits are not NumPy's)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(our_grad.numpy(), their_grad.numpy(), rtol=1e-6)
        return
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    np.testing.assert_array_equal(our_grad.numpy(), their_grad.numpy())


def test_prod_of_integer_slices_runs_once_on_the_batch(monkeypatch):
    from chainrule import _vmap_batched

    stacked = []
    monkeypatch.setattr(_vmap_batched, "_stack_rows", lambda rows: stacked.append(rows))  # (the per-slice fallback's)
    x = np.arange(-3, 3, dtype=np.int64)
    ours = chainrule.func.vmap(lambda t: chainrule.prod(t, 0, keepdim=True))(chainrule.tensor(x))
    theirs = real_torch.func.vmap(lambda t: real_torch.prod(t, 0, keepdim=True))(real_torch.tensor(x))
    assert (ours.numpy().tolist(), str(ours.dtype).split(".")[1]) == (theirs.numpy().tolist(), str(theirs.dtype).split(".")[1])
    assert stacked == []


def _stacked_lstm_cells(lib, nested: bool, given_state: bool):
    lib.manual_seed(0)
    cells = [lib.nn.LSTMCell(3, 2) for _ in range(2)]
    params = {name: lib.stack([dict(c.named_parameters())[name].detach() for c in cells]) for name, _ in
              cells[0].named_parameters()}
    base = lib.nn.LSTMCell(3, 2).to("meta")
    x = lib.ones((2, 2, 4, 3) if nested else (2, 4, 3))
    h = lib.zeros(x.shape[:-1] + (2,))

    def step(p, x, h):
        return lib.func.functional_call(base, p, (x, (h, h)) if given_state else (x,))[0]

    inner = lib.func.vmap(step, in_dims=(None, 0, 0)) if nested else step
    return lambda: lib.func.vmap(inner)(params, x, h)


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("given_state", [False, True])
def test_vmapped_lstm_cell_is_refused_as_torch_refuses_it(nested, given_state):
    # (its hidden state is a list of tensors, which torch's per-slice fallback cannot take)
    for lib in (real_torch, chainrule):
        with pytest.raises(RuntimeError, match=r"^Batching rule not implemented for aten::lstm_cell\. We could not "
                                               r"generate a fallback\.$"):
            _stacked_lstm_cells(lib, nested, given_state)()


def test_lstm_cell_function_is_refused_under_vmap_but_runs_on_unbatched_operands():
    w_ih, w_hh = np.ones((8, 3), np.float32) / 4, np.ones((8, 2), np.float32) / 4
    for lib in (real_torch, chainrule):
        weights = (lib.tensor(w_ih), lib.tensor(w_hh))
        with pytest.raises(RuntimeError, match="aten::lstm_cell"):
            lib.func.vmap(lambda x, lib=lib, weights=weights: lib.lstm_cell(x, (x[:, :2], x[:, :2]), *weights)[0])(
                lib.ones(2, 4, 3))
        shared = lib.func.vmap(lambda t, lib=lib, weights=weights: lib.lstm_cell(lib.ones(1, 3), (lib.ones(1, 2),) * 2,
                                                                                 *weights)[0] + t)(lib.ones(2))
        assert tuple(shared.shape) == (2, 1, 2)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_vmapped_elu_has_eager_elus_bits(alpha):
    """vmap's elu is eager elu's (its last bits torch's SLEEF expm1 would give differ from both alike)."""
    array = (np.random.default_rng(61).standard_normal((3, 5, 7)) * 3).astype(np.float32)
    found = []
    for run in (lambda f, t: f(t), lambda f, t: chainrule.func.vmap(f)(t)):
        x = chainrule.tensor(array, requires_grad=True)
        out = run(lambda t: chainrule.nn.functional.elu(t, alpha), x)
        out.backward(chainrule.ones_like(out))
        found.append((out.detach().numpy(), x.grad.numpy()))
    np.testing.assert_array_equal(found[0][0], found[1][0])
    np.testing.assert_array_equal(found[0][1], found[1][1])
    theirs = real_torch.nn.functional.elu(real_torch.tensor(array), alpha).numpy()
    np.testing.assert_allclose(found[1][0], theirs, rtol=2e-7, atol=1e-7)


_PROD_INPUTS = {
    "no zeros": [[1.5, -0.3, 2.7], [0.9, 1.1, -4.2]],
    "one zero": [[1.5, 0.0, 2.7], [0.9, 1.1, -4.2]],
    "a zero per row": [[1.5, 0.0, 2.7], [0.0, 1.1, -4.2]],
    "two zeros in a row": [[0.0, 0.0, 2.7], [0.9, 1.1, -4.2]],
}


@pytest.mark.parametrize("case", sorted(_PROD_INPUTS))
@pytest.mark.parametrize("dim", [None, 0, -1])
def test_prod_gradient_rounds_as_torchs(case, dim):
    """torch's prod_backward: grad · (result / input) without zeros, else the products of the elements before
    and after each one (exclusive cumprods); also each row of jacrev's batched walk and vmap's."""
    array = np.array(_PROD_INPUTS[case], dtype=np.float32) * np.float32(1.3)
    found = []
    for lib in (chainrule, real_torch):
        x = lib.tensor(array, requires_grad=True)
        out = lib.prod(x) if dim is None else lib.prod(x, dim)
        out.backward(lib.ones_like(out) * 0.7)
        f = (lambda t, lib=lib: lib.prod(t)) if dim is None else (lambda t, lib=lib: lib.prod(t, dim))
        jacobian = lib.func.jacrev(f)(lib.tensor(array))
        rows = lib.tensor(array, requires_grad=True)
        lib.func.vmap(f)(rows).sum().backward()
        found.append((x.grad.numpy(), jacobian.numpy(), rows.grad.numpy()))
    for mine, theirs in zip(*found):
        np.testing.assert_array_equal(mine, theirs)


def test_prod_with_two_zeros_differentiates_twice_as_torch():
    array = np.array([0.0, 0.0, 3.0, -2.0])
    found = []
    for lib in (chainrule, real_torch):
        x = lib.tensor(array, requires_grad=True)
        (first,) = lib.autograd.grad(lib.prod(x), x, create_graph=True)
        (second,) = lib.autograd.grad(first.sum(), x)
        found.append((first.detach().numpy(), second.numpy()))
    np.testing.assert_array_equal(found[0][0], found[1][0])
    np.testing.assert_array_equal(found[0][1], found[1][1])
