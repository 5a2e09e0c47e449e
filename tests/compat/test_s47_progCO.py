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
