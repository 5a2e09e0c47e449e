"""Session 48, lane progCY: what probing around the SVGP / SVGD / Sophia-Adafactor corpus programs found,
compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

FLOAT_DTYPES = ["float64", "float32", "float16", "bfloat16"]
INTEGER_DTYPES = ["int8", "int16", "int32", "int64", "uint8"]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("op", ["median", "nanmedian", "Tensor.median", "Tensor.nanmedian"])
def test_median_of_an_empty_tensor_stays_on_the_graph_like_torch(op, dtype):
    # torch's full reduction of no elements is NaN with a grad_fn, whose gradient is the empty tensor
    def run(lib):
        x = lib.zeros(0, 3, dtype=getattr(lib, dtype), requires_grad=True)
        name = op.split(".")[-1]
        out = getattr(x, name)() if op.startswith("Tensor.") else getattr(lib, name)(x)
        (grad,) = lib.autograd.grad(out, x)
        return out, grad

    ours, our_grad = run(chainrule)
    theirs, their_grad = run(torch)
    assert ours.grad_fn.name() == theirs.grad_fn.name()
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1] and ours.shape == theirs.shape == ()
    assert np.isnan(ours.float().item()) and np.isnan(theirs.float().item())
    assert tuple(our_grad.shape) == tuple(their_grad.shape) == (0, 3)
    assert str(our_grad.dtype).split(".")[-1] == dtype


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
@pytest.mark.parametrize("op", ["median", "nanmedian"])
def test_median_of_an_empty_integer_tensor_is_torchs_cast_nan(op, dtype):
    # torch fills NaN cast to the type: int32/int64's minimum, 0 for the narrower types
    ours = getattr(chainrule, op)(chainrule.zeros(0, dtype=getattr(chainrule, dtype)))
    theirs = getattr(torch, op)(torch.zeros(0, dtype=getattr(torch, dtype)))
    assert ours.item() == theirs.item()
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1] == dtype
    assert not ours.requires_grad


def test_median_of_an_empty_tensor_without_grad_has_no_grad_fn():
    for lib in (chainrule, torch):
        out = lib.median(lib.zeros(0))
        assert out.grad_fn is None and not out.requires_grad
