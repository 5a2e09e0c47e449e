"""Softmax and log-softmax over many short rows (a classifier's 10 classes, attention's 64 keys).

On the CPU their row maximum reduces a transposed copy of each cached block of rows instead of
NumPy's row-at-a-time reduction of a short last axis. A maximum is exact, so the row maxima must
equal NumPy's whole-array ``max`` bit for bit (infinities and NaN included, across block
boundaries), and the softmaxes must match torch in value and gradient. No timings are asserted.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import reduce as reduce_ops

torch = pytest.importorskip("torch")


def _logits(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 4
    flat = x.reshape(-1, shape[-1])
    flat[1, 3] = np.inf
    flat[2, :] = -np.inf  # a row with no finite logit: NaN, as in torch
    flat[4, 0] = np.nan
    flat[5, :] = 0.0  # ties: every element is the maximum
    return x


# rows x columns: one block; several blocks (the last one short); wide rows (NumPy's own reduction);
# too few rows for the transposed route
@pytest.mark.parametrize("shape", [(128, 10), (5000, 10), (1100, 64), (40, 65), (8, 10)])
def test_row_max_equals_numpy_max(shape):
    x = _logits(shape, 0)
    np.testing.assert_array_equal(reduce_ops._row_max(x), np.max(x, axis=1, keepdims=True))
    # a strided view (every other column) takes the same route
    view = x[:, ::2]
    np.testing.assert_array_equal(reduce_ops._row_max(view), np.max(view, axis=1, keepdims=True))


@pytest.mark.parametrize("shape", [(128, 10), (5000, 10), (4, 3, 64, 64), (300, 7)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_many_short_rows_matches_torch(name, shape):
    x = _logits(shape, 1)
    finite = np.isfinite(x).all(axis=-1)  # rows whose gradient is compared (inf rows give NaN both ways)
    x_cr = chainrule.from_numpy(x.copy()).requires_grad_(True)
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    y_cr = getattr(chainrule, name)(x_cr, -1)
    y_t = getattr(torch, name)(x_t, -1)
    np.testing.assert_allclose(y_cr.detach().numpy(), y_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    weights = np.random.default_rng(2).standard_normal(shape).astype(np.float32) * finite[..., None]
    (y_cr * chainrule.from_numpy(weights)).nan_to_num().sum().backward()
    (y_t * torch.from_numpy(weights)).nan_to_num().sum().backward()
    np.testing.assert_allclose(x_cr.grad.numpy()[finite], x_t.grad.numpy()[finite], rtol=1e-4, atol=1e-5)
