"""Session 47, lane progCO: gaps found by the fnet_fourier_mixing, encodec_residual_vq and
openai_es_antithetic corpus programs, each compared with torch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

DATA = np.random.default_rng(0).standard_normal((3, 4, 6)).astype(np.float32)
_COMPLEX_INPUT = ("irfft", "hfft", "irfft2", "hfft2", "irfftn", "hfftn")
_ONE_DIM = ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fftshift", "ifftshift")
_FFT_NAMES = _ONE_DIM + ("fft2", "ifft2", "rfft2", "irfft2", "hfft2", "ihfft2",
                         "fftn", "ifftn", "rfftn", "irfftn", "hfftn", "ihfftn")


def _fft_kwargs(name):
    if name in _ONE_DIM or name.endswith("n"):
        calls = [{"axis": 0}, {"axis": -1}, {"axis": 1, "norm": "ortho"}, {"dim": 0, "axis": 0}, {"keepdims": True}]
        if not name.startswith(_ONE_DIM[:6]) or name.endswith(("n", "shift")):
            calls += [{"axis": (0, 2)}, {"axis": [1, 2]}]
        return calls
    return [{"axis": (0, 1)}, {"axis": (-2, -1), "norm": "forward"}, {"dim": (0, 1), "axis": (0, 1)}]


def _fft_outcome(lib, name, kwargs):
    x = lib.from_numpy(DATA.copy())
    if name in _COMPLEX_INPUT:
        x = x.to(lib.complex64)
    try:
        out = getattr(lib.fft, name)(x, **kwargs)
    except Exception as error:  # the exception's type is what is compared
        return type(error).__name__
    return out.resolve_conj().numpy()


@pytest.mark.parametrize("name", _FFT_NAMES)
def test_fft_takes_numpy_axis_as_torch(name):
    """HF modeling_fnet's fftn helper calls torch.fft.fft(out, axis=axis): torch's parser renames axis."""
    for kwargs in _fft_kwargs(name):
        theirs, ours = _fft_outcome(torch, name, kwargs), _fft_outcome(chainrule, name, kwargs)
        if isinstance(theirs, str) or isinstance(ours, str):
            assert ours == theirs, (name, kwargs)
            continue
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (name, kwargs)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4, err_msg=f"{name} {kwargs}")


def test_fft_axis_given_with_positional_dim_is_a_type_error():
    for lib in (torch, chainrule):
        with pytest.raises(TypeError, match="axis"):
            lib.fft.fft(lib.ones(2, 3), None, 0, axis=0)


def test_fft_axis_gradient_matches_dim():
    x = chainrule.from_numpy(DATA.astype(np.float64)).requires_grad_(True)
    g_axis = chainrule.autograd.grad(chainrule.fft.fftn(x, axis=(1, 2)).real.pow(2).sum(), x)[0]
    g_dim = chainrule.autograd.grad(chainrule.fft.fftn(x, dim=(1, 2)).real.pow(2).sum(), x)[0]
    np.testing.assert_array_equal(g_axis.numpy(), g_dim.numpy())
    assert chainrule.autograd.gradcheck(lambda t: chainrule.fft.fft(t, axis=1).real, (x[:1, :3, :2].detach().requires_grad_(),))


_BOOL_REDUCE_KWARGS = ({"keepdim": True}, {"dim": None, "keepdim": True}, {"dim": (), "keepdim": True}, {"dim": []},
                       {"dim": (0,), "keepdim": True}, {"keepdim": False}, {"dim": -1, "keepdim": True},
                       {"dim": [0, -1], "keepdim": True})


@pytest.mark.parametrize("name", ["all", "any"])
@pytest.mark.parametrize("shape", [(3, 4), (), (0, 2), (2, 1, 3)])
@pytest.mark.parametrize("dtype", ["bool", "uint8", "float32", "int64"])
def test_all_any_keepdim_without_dim_and_empty_dims_as_torch(name, shape, dtype):
    """torch keeps every dim for keepdim=True with no dim, and reduces over nothing for dim=()."""
    for kwargs in _BOOL_REDUCE_KWARGS:
        outcomes = []
        for lib in (torch, chainrule):
            x = (lib.arange(int(np.prod(shape))).reshape(shape) % 3).to(getattr(lib, dtype))
            for call in (getattr(lib, name), getattr(type(x), name)):
                try:
                    out = call(x, **kwargs)
                    outcomes.append((tuple(out.shape), str(out.dtype).split(".")[-1], out.tolist()))
                except Exception as error:  # the exception's type is what is compared
                    outcomes.append(type(error).__name__)
        assert outcomes[2:] == outcomes[:2], (name, shape, dtype, kwargs)


MATRIX = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)

# more of torch's parser-bound functions and methods that rename axis=/keepdims= (x is 3x4 float)
_AXIS_CALLS = {
    "index_add": lambda lib, x, **k: lib.index_add(x, index=lib.tensor([0, 2]), source=lib.ones(2, 4), **k),
    "index_copy": lambda lib, x, **k: lib.index_copy(x, index=lib.tensor([0, 2]), source=lib.ones(2, 4), **k),
    "index_reduce": lambda lib, x, **k: lib.index_reduce(x, index=lib.tensor([0, 2]), source=lib.ones(2, 4),
                                                          reduce="prod", **k),
    "scatter_reduce": lambda lib, x, **k: lib.scatter_reduce(x, index=lib.zeros(3, 4, dtype=lib.long), src=x,
                                                              reduce="sum", **k),
    "select_scatter": lambda lib, x, **k: lib.select_scatter(x, lib.ones(4), index=0, **k),
    "slice_scatter": lambda lib, x, **k: lib.slice_scatter(x, lib.ones(1, 4), start=0, end=1, **k),
    "split_with_sizes": lambda lib, x, **k: lib.split_with_sizes(x, [1, 2], **k),
    "unsafe_chunk": lambda lib, x, **k: lib.unsafe_chunk(x, 2, **k),
    "unsafe_split": lambda lib, x, **k: lib.unsafe_split(x, 2, **k),
    "gradient": lambda lib, x, **k: lib.gradient(x, **k),
    "frobenius_norm": lambda lib, x, **k: lib.frobenius_norm(x, **k),
    "nuclear_norm": lambda lib, x, **k: lib.nuclear_norm(x, **k),
    "pairwise_distance": lambda lib, x, **k: lib.pairwise_distance(x, x + 1, **k),
    "linalg.cross": lambda lib, x, **k: lib.linalg.cross(x[:, :3], x[:, 1:], **k),
    "linalg.matrix_norm": lambda lib, x, **k: lib.linalg.matrix_norm(x[None], **k),
    "Tensor.index_add": lambda lib, x, **k: x.index_add(index=lib.tensor([0, 2]), source=lib.ones(2, 4), **k),
    "Tensor.scatter_reduce": lambda lib, x, **k: x.scatter_reduce(index=lib.zeros(3, 4, dtype=lib.long), src=x,
                                                                  reduce="amax", **k),
    "Tensor.split_with_sizes": lambda lib, x, **k: x.split_with_sizes([1, 2], **k),
    "Tensor.index_fill_": lambda lib, x, **k: x.index_fill_(index=lib.tensor([0]), value=1.0, **k),
    "Tensor.scatter_": lambda lib, x, **k: x.scatter_(index=lib.zeros(3, 4, dtype=lib.long), value=2.0, **k),
    "Tensor.squeeze_": lambda lib, x, **k: x[:1].clone().squeeze_(**k),
    "Tensor.unsqueeze_": lambda lib, x, **k: x.unsqueeze_(**k),
    "Tensor.index_copy_": lambda lib, x, **k: x.index_copy_(index=lib.tensor([0, 2]), source=lib.ones(2, 4), **k),
    "Tensor.index_add_": lambda lib, x, **k: x.index_add_(index=lib.tensor([0, 2]), source=lib.ones(2, 4), **k),
    "Tensor.index_reduce_": lambda lib, x, **k: x.index_reduce_(index=lib.tensor([0, 2]), source=lib.ones(2, 4),
                                                                reduce="prod", **k),
    "Tensor.scatter_add_": lambda lib, x, **k: x.scatter_add_(index=lib.zeros(3, 4, dtype=lib.long), src=x.clone(),
                                                              **k),
    "Tensor.scatter_reduce_": lambda lib, x, **k: x.scatter_reduce_(index=lib.zeros(3, 4, dtype=lib.long),
                                                                    src=x.clone(), reduce="sum", **k),
}
_AXIS_KWARGS = ({"axis": 0}, {"axis": 1, "keepdims": True}, {"dim": 1, "keepdims": True}, {"keepdims": True},
                {"dim": 0, "axis": 0})


def _axis_outcome(lib, name, kwargs):
    try:
        out = _AXIS_CALLS[name](lib, lib.from_numpy(MATRIX.copy()), **kwargs)
    except Exception as error:  # the exception's type is what is compared
        return type(error).__name__
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().double().numpy() for o in outs]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(_AXIS_CALLS))
def test_more_functions_and_methods_take_numpy_axis_as_torch(name):
    for kwargs in _AXIS_KWARGS:
        theirs, ours = _axis_outcome(torch, name, kwargs), _axis_outcome(chainrule, name, kwargs)
        if isinstance(theirs, str) or isinstance(ours, str):
            assert ours == theirs, (name, kwargs)
            continue
        assert len(ours) == len(theirs), (name, kwargs)
        for o, t in zip(ours, theirs):
            assert o.shape == t.shape, (name, kwargs)
            np.testing.assert_allclose(o, t, rtol=1e-5, atol=1e-5, err_msg=f"{name} {kwargs}")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (4,)])
def test_nuclear_norm_takes_one_int_for_both_dims_as_torch(shape):
    """torch.nuclear_norm's dim is int[2]: dim=1 means (1, 1), refused as 'dims must be different'."""
    calls = (((), {"dim": 0}), ((), {"dim": 1, "keepdim": True}), ((), {"dim": (0, 1)}), ((), {"dim": [0]}),
             ((), {"dim": (0, 1, 1)}), ((0,), {}), ((True,), {}), ((), {"keepdim": True}),
             ((), {"dim": (-1, 0), "keepdim": True}), ((), {"axis": 1}), ((), {"dim": np.int64(1)}),
             (((1, 0), True), {}), ((), {"dim": -1}))
    for args, kwargs in calls:
        outcomes = []
        for lib in (torch, chainrule):
            x = lib.arange(float(np.prod(shape))).reshape(shape)
            try:
                out = lib.nuclear_norm(x, *args, **kwargs)
                outcomes.append((tuple(out.shape), round(float(out.flatten()[0]), 3)))
            except Exception as error:
                outcomes.append((type(error).__name__, str(error).split("\n")[0]))
        assert outcomes[1] == outcomes[0], (shape, args, kwargs)


_FFT_ALL = ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "hfft2", "ihfft2", "rfft2", "irfft2",
            "fftn", "ifftn", "rfftn", "irfftn", "hfftn", "ihfftn")


@pytest.mark.parametrize("name", _FFT_ALL)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "complex64", "complex128"])
def test_fft_refusals_in_torchs_order_and_words(name, dtype):
    """Half inputs of n-d transforms: the bad dim first; complex inputs of rfft2/rfftn and
    ihfft2/ihfftn: torch's words, and ihfft's before its norm, ihfftn's after its dims and norm."""
    data = np.random.default_rng(2).standard_normal((2, 4, 6))
    for kwargs in ({}, {"norm": "bogus"}, {"dim": 5}):
        outcomes = []
        for lib in (torch, chainrule):
            x = lib.from_numpy(data.copy())
            x = lib.complex(x, x.flip(-1)).to(getattr(lib, dtype)) if dtype.startswith("complex") else x.to(getattr(lib, dtype))
            try:
                out = getattr(lib.fft, name)(x, **kwargs)
                outcomes.append((tuple(out.shape), str(out.dtype).split(".")[-1]))
            except Exception as error:
                outcomes.append((type(error).__name__, str(error).split("\n")[0]))
        assert outcomes[1] == outcomes[0], (name, dtype, kwargs)
