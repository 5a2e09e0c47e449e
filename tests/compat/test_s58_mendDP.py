"""Session 58, lane mendDP: torch's out overloads in a dispatch mode's log (a (values, indices) pair of
outs under torch's two keywords, vector_norm/norm's linalg_vector_norm.out, a composite's result copied in
by copy_)."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

from tests.compat.test_s57_mendDL import _logged  # noqa: E402


def _pair_out(lib, shape, dtype=None):
    return lib.empty(*shape, dtype=dtype or lib.float32), lib.empty(*shape, dtype=lib.long)


OUT_CALLS = {
    "cummax": lambda lib, x: lib.cummax(x, 1, out=_pair_out(lib, (3, 4))),
    "cummin": lambda lib, x: lib.cummin(x, 0, out=_pair_out(lib, (3, 4))),
    "max_dim": lambda lib, x: lib.max(x, 1, out=_pair_out(lib, (3,))),
    "min_dim_keepdim": lambda lib, x: lib.min(x, 1, keepdim=True, out=_pair_out(lib, (3, 1))),
    "sort": lambda lib, x: lib.sort(x, 1, out=_pair_out(lib, (3, 4))),
    "topk": lambda lib, x: lib.topk(x, 2, out=_pair_out(lib, (3, 2))),
    "median_dim": lambda lib, x: lib.median(x, 1, out=_pair_out(lib, (3,))),
    "mode": lambda lib, x: lib.mode(x, 1, out=_pair_out(lib, (3,))),
    "kthvalue": lambda lib, x: lib.kthvalue(x, 2, 1, out=_pair_out(lib, (3,))),
    "vector_norm": lambda lib, x: lib.linalg.vector_norm(x, 2, dim=1, out=lib.empty(3)),
    "norm": lambda lib, x: lib.norm(x, 2, 1, out=lib.empty(3)),
    "linalg_norm_composite": lambda lib, x: lib.linalg.norm(x, dim=1, out=lib.empty(3)),
    "matrix_norm_composite": lambda lib, x: lib.linalg.matrix_norm(x, out=lib.empty(())),
}


@pytest.mark.parametrize("call", list(OUT_CALLS))
def test_an_out_calls_log_shows_torchs_out_overload(call):
    # 35 out= calls probed under a logging mode: 23 -> 11 differing (these 13 among the 12 fixed and
    # matrix_norm's copy_, which torch's composite out= ends in)
    expected, expected_result = _logged(torch, OUT_CALLS[call])
    got, result = _logged(cr, OUT_CALLS[call])
    assert got == expected
    for ours, theirs in zip(result if isinstance(result, tuple) else (result,),
                            expected_result if isinstance(expected_result, tuple) else (expected_result,)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_a_pair_of_outs_handed_on_reaches_the_outer_mode_and_fills_the_outs():
    # a handler that passes the call on with its keywords: the outs it was handed are the ones written
    seen = []

    class Outer(cr.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append((str(func), sorted(kwargs or {})))
            return func(*args, **(kwargs or {}))

    class Inner(cr.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    x = cr.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    values, indices = _pair_out(cr, (2,))
    with Outer(), Inner():
        cr.max(x, 1, out=(values, indices))
    assert ("aten.max.dim_max", ["max", "max_values"]) in seen
    assert values.tolist() == [3.0, 5.0] and indices.tolist() == [0, 1]


MEAN_DTYPES = [("float32", "float64", 1), ("float64", "float32", None), ("float16", "float32", (0, 1)),
               ("bfloat16", "float32", -1), ("float32", "float32", 1), ("complex64", "complex128", 0)]


@pytest.mark.parametrize("source,dtype,dim", MEAN_DTYPES)
def test_mean_with_a_dtype_is_one_op_on_its_input(source, dtype, dim):
    # torch's mean(dtype=) is one mean.dim/mean.default given the dtype: one MeanBackward on the input, no
    # ToCopyBackward0 and no _to_copy in a mode's log (probe of 72 dtype/dim/keepdim cases: 72 -> 9 differing;
    # left: a real input's complex mean, whose backward torch refuses, and float32 -> float16's rounding)
    a = np.random.default_rng(3).standard_normal((3, 4))
    found = []
    for lib in (torch, cr):
        x = lib.tensor(a).to(getattr(lib, source)).requires_grad_()
        kwargs = {} if dim is None else {"dim": dim}
        y = lib.mean(x, dtype=getattr(lib, dtype), **kwargs)
        nodes = [type(node).__name__ for node, _ in y.grad_fn.next_functions]
        y.abs().sum().backward()
        logged, _ = _logged(lib, lambda l, t, kw=kwargs: l.mean(t.to(getattr(l, source)), dtype=getattr(l, dtype), **kw))
        found.append((y.grad_fn.name(), nodes, str(y.dtype).split(".")[-1], str(x.grad.dtype).split(".")[-1], logged,
                      y.detach().to(lib.complex128).numpy(), x.grad.to(lib.complex128).numpy()))
    expected, got = found
    assert got[:5] == expected[:5]
    np.testing.assert_allclose(got[5], expected[5], rtol=1e-6)
    np.testing.assert_allclose(got[6], expected[6], rtol=1e-6)


CLAMP_CALLS = {
    "normalize": lambda lib, x: lib.nn.functional.normalize(x),
    "normalize_p1_dim0": lambda lib, x: lib.nn.functional.normalize(x, 1, 0),
    "normalize_out": lambda lib, x: lib.nn.functional.normalize(x, out=lib.empty(3, 4)),
    "clamp_min": lambda lib, x: x.clamp_min(0.1),
    "clamp_max": lambda lib, x: lib.clamp_max(x, 0.1),
    "clamp_min_tensor": lambda lib, x: lib.clamp_min(x, lib.tensor(0.1)),
    "clamp_max_tensor": lambda lib, x: lib.clamp_max(x, lib.tensor([0.1, 0.2, 0.3, 0.4])),
    "clamp_tensor_min": lambda lib, x: lib.clamp(x, min=lib.tensor(0.1)),
    "clamp_tensors": lambda lib, x: lib.clamp(x, lib.tensor(0.1), lib.tensor(0.5)),
    "clamp_min_in_place": lambda lib, x: x.clone().clamp_min_(0.5),
    "clamp_max_in_place": lambda lib, x: x.clone().clamp_max_(0.5),
}


@pytest.mark.parametrize("call", list(CLAMP_CALLS))
def test_clamp_min_and_max_reach_a_mode_as_torchs_overloads(call):
    # F.normalize's clamp_min (clamp_min_ under out=, as torch's Python writes it), clamp_min/clamp_max's
    # Scalar and Tensor overloads, clamp.Tensor (probe of 21 calls: 20 -> 3 differing; left: an integer
    # input's float bound, cast before the op, and the order of a backward's ge and scalar_tensor)
    expected, expected_result = _logged(torch, CLAMP_CALLS[call])
    got, result = _logged(cr, CLAMP_CALLS[call])
    assert got == expected
    np.testing.assert_allclose(result.numpy(), expected_result.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name,dim,shape", [("ihfft2", (1,), (4, 4)), ("ihfftn", (0,), (3, 6)), ("ihfftn", [-1], (4, 4))])
def test_ihfftn_over_one_dim_writes_its_out(name, dim, shape):
    # torch 2.13 leaves this out unwritten: fft_ihfftn_impl's one-dim branch calls
    # at::conj_physical_out(tmp, out), whose first argument is the out, so it writes conj(out) into its
    # own temporary and returns the caller's out untouched (a zero-size out even stays zero-size).
    # That is torch's bug (every other transform, and ihfftn over two dims, fills its out), so chainrule
    # keeps the documented behaviour: out holds the transform, as torch's result without out= has it.
    a = np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32)
    out = cr.zeros(*shape, dtype=cr.complex64)
    result = getattr(cr.fft, name)(cr.tensor(a), dim=dim, out=out)
    expected = getattr(torch.fft, name)(torch.tensor(a), dim=dim)
    assert result is out and out.shape == expected.shape and out.stride() == (shape[1], 1)  # (sized: kept)
    np.testing.assert_allclose(out.numpy(), expected.resolve_conj().numpy(), rtol=1e-5, atol=1e-6)


# sliced (non-dense) complex inputs, permuted or not; an expanded one keeps the dense layout (torch keeps
# its stride 0: not matched, its memory is not shared)
SLICED = [((2, 3, 4), (0, 1, 2), 2), ((2, 3, 4), (2, 0, 1), 2), ((4, 3), (1, 0), 3), ((5,), (0,), 2),
          ((3, 1, 4), (1, 2, 0), 2)]


@pytest.mark.parametrize("shape,perm,step", SLICED)
def test_conj_of_a_sliced_input_keeps_its_strides(shape, perm, step):
    # probe of 400 random permuted/sliced shapes x (conj, conj method, resolve_conj, clone, contiguous,
    # a leaf's gradient through conj): 484 of 2400 differing -> 162, all the gradient's (left alone)
    a = np.random.default_rng(7).standard_normal(shape) + 1j * np.random.default_rng(8).standard_normal(shape)
    found = []
    for lib in (torch, cr):
        x = lib.tensor(a.astype(np.complex64)).permute(*perm)[..., ::step]
        y = lib.conj(x)
        found.append((x.stride(), y.stride(), y.is_conj(), x.conj().stride(), y.resolve_conj().stride(),
                      y.contiguous().stride(), y.clone().stride(), y.resolve_conj().numpy()))
    expected, got = found
    assert got[:7] == expected[:7]
    np.testing.assert_array_equal(got[7], expected[7])
