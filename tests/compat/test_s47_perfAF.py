"""Session 47, lane perfAF: the ops made faster for the corpus programs, checked against torch on the
paths the change took.

float32/float16 erf (``torch.erf``, exact ``F.gelu`` and its gradient) now runs in cache-sized blocks
with in-place temporaries and integer positions for the small-|x| series: inputs longer than one
block, with both branches (|x| < 0.5 and beyond) and the edge values in every block, must agree with
torch as before and not depend on where the block boundaries fall.
"""

import numpy as np
import pytest
import torch

import chainrule
from chainrule.ops import _special

BLOCK = _special._ERF_SINGLE_BLOCK
EDGES = np.array([0.0, -0.0, np.inf, -np.inf, 0.5, -0.5, 0.49999997, 1e-38, -1e-45, 3.0, -6.0], np.float32)


def _inputs(size: int, dtype) -> np.ndarray:
    """Normal draws spread over both branches, with the edge values scattered through."""
    rng = np.random.default_rng(size)
    x = (rng.standard_normal(size) * 1.5).astype(np.float32)
    count = min(size, EDGES.size)
    x[rng.choice(size, count, replace=False)] = EDGES[:count]
    return x.astype(dtype)


@pytest.mark.parametrize("size", [1, 7, BLOCK - 1, BLOCK, 2 * BLOCK + 3])
def test_erf_float32_matches_torch_across_blocks(size):
    x = _inputs(size, np.float32)
    ours = chainrule.erf(chainrule.tensor(x)).numpy()
    theirs = torch.erf(torch.tensor(x)).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-7)
    assert np.array_equal(np.signbit(ours), np.signbit(theirs))  # erf(-0.) = -0.


def test_erf_float16_matches_torch():
    x = _inputs(BLOCK + 11, np.float16)
    ours = chainrule.erf(chainrule.tensor(x)).numpy()
    theirs = torch.erf(torch.tensor(x)).numpy()
    assert ours.dtype == np.float16
    np.testing.assert_allclose(ours.astype(np.float32), theirs.astype(np.float32), rtol=0, atol=1e-3)


def test_erf_nan_propagates():
    x = _inputs(BLOCK + 5, np.float32)
    x[[3, BLOCK + 1]] = np.nan
    ours = chainrule.erf(chainrule.tensor(x)).numpy()
    assert np.array_equal(np.isnan(ours), np.isnan(torch.erf(torch.tensor(x)).numpy()))


def test_erf_does_not_depend_on_block_boundaries():
    # each element's arithmetic is its own: a long input's values are its pieces' values, bit for bit
    x = _inputs(2 * BLOCK + 100, np.float32)
    whole = chainrule.erf(chainrule.tensor(x)).numpy()
    for start, stop in [(0, 1), (5, 40), (BLOCK - 3, BLOCK + 3), (BLOCK + 50, 2 * BLOCK + 100)]:
        piece = chainrule.erf(chainrule.tensor(x[start:stop])).numpy()
        assert whole[start:stop].tobytes() == piece.tobytes()


def test_erf_of_a_strided_input_equals_its_contiguous_copy():
    x = _inputs(40 * 30 * 50, np.float32).reshape(40, 30, 50)
    view = x.transpose(2, 0, 1)[:, ::2, 1:]
    ours = chainrule.erf(chainrule.tensor(x)).permute(2, 0, 1)[:, ::2, 1:]
    strided = _special.erf(view)
    assert strided.shape == view.shape
    assert strided.tobytes() == np.ascontiguousarray(ours.numpy()).tobytes()
    np.testing.assert_allclose(strided, torch.erf(torch.tensor(view)).numpy(), rtol=0, atol=2e-7)


def test_erf_of_a_0d_and_an_empty_input():
    assert chainrule.erf(chainrule.tensor(0.25)).shape == ()
    np.testing.assert_allclose(chainrule.erf(chainrule.tensor(0.25)).item(), torch.erf(torch.tensor(0.25)).item(),
                               rtol=0, atol=2e-7)
    assert chainrule.erf(chainrule.zeros(3, 0, 2)).shape == (3, 0, 2)


def test_gelu_forward_and_gradient_match_torch_on_a_multi_block_input():
    # finite: at ±inf torch's gelu gives nan where chainrule's gives inf (forward at +inf), left as found
    x = np.nan_to_num(_inputs(3 * 40 * 512, np.float32), posinf=30.0, neginf=-30.0).reshape(3, 40, 512)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    ours_x = chainrule.tensor(x, requires_grad=True)
    ours = chainrule.nn.functional.gelu(ours_x)
    ours.backward(chainrule.tensor(g))
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.gelu(theirs_x)
    theirs.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=2e-6)
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("make", [lambda x: x.permute(2, 0, 1), lambda x: x[:, ::2, 1:].transpose(0, 2)])
def test_gelu_and_erf_keep_a_strided_inputs_layout_as_torch(make):
    x = _inputs(40 * 30 * 50, np.float32).reshape(40, 30, 50)
    ours_x, theirs_x = make(chainrule.tensor(x)), make(torch.tensor(x))
    for ours, theirs in [(chainrule.nn.functional.gelu(ours_x), torch.nn.functional.gelu(theirs_x)),
                         (chainrule.erf(ours_x), torch.erf(theirs_x))]:
        assert ours.is_contiguous() == theirs.is_contiguous()
        assert ours.stride() == theirs.stride()
