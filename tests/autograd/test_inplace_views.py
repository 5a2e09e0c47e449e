"""In-place ops on views made by indexing a tensor in the graph write through to the base,
as torch's CopySlices does: values and gradients equal torch's."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _program(lib, w):
    h = w * 2
    h[:, 0] += 1
    h[1].mul_(w[0])
    h[0, :1].clamp_(max=1.1)
    h[0, 1:].exp_()  # last: torch forbids changing exp_'s saved output afterwards
    return (h ** 2).sum(), h


def test_inplace_on_index_views_matches_torch():
    data = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    results = []
    for lib in (cr, torch):
        w = lib.tensor(data, requires_grad=True)
        loss, h = _program(lib, w)
        loss.backward()
        results.append((h.detach().numpy(), w.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)


def test_inplace_on_index_views_passes_gradcheck():
    w = cr.tensor(np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]), requires_grad=True)
    assert cr.autograd.gradcheck(lambda w: _program(cr, w)[0], (w,))


def test_view_of_a_leaf_is_refused():
    w = cr.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w[0].mul_(2)
    assert w.tolist() == [[1.0] * 3] * 2


def test_views_from_reshaping_still_refuse_clearly():
    h = cr.ones(2, 3, requires_grad=True) * 1.0
    view = h.t()
    with pytest.raises(RuntimeError, match="only for views made by indexing"):
        view.mul_(2)
    assert h.tolist() == [[1.0] * 3] * 2
