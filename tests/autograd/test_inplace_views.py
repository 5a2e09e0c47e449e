"""In-place ops on views of a tensor in the graph write through to the base, as torch's
CopySlices does: values and gradients equal torch's, for views made by indexing and for views
made by transpose, view, flatten, permute, narrow (a model zoo's ``x += pos_emb`` on a tokenizer's
``flatten(2).transpose(-2, -1)`` output)."""

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


def _reshaping_program(lib, w, pos):
    h = w * 2  # (2, 3, 4): a conv output's (N, C, L)
    tokens = h.flatten(1).view(2, 3, 4).transpose(-2, -1)  # (N, L, C), a view of h
    tokens += pos  # broadcast over the batch
    first = (tokens.clone() ** 2).sum()  # read before h changes again (a clone: pow saves its input)
    h[0].permute(1, 0).mul_(w[1].t())  # a view of an indexed view
    h.narrow(2, 1, 2).tanh_()
    return first + (h * w).sum(), h


def test_inplace_on_reshaping_views_matches_torch():
    rng = np.random.default_rng(0)
    data, pos_data = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 3))
    results = []
    for lib in (cr, torch):
        w = lib.tensor(data, requires_grad=True)
        pos = lib.tensor(pos_data, requires_grad=True)
        loss, h = _reshaping_program(lib, w, pos)
        loss.backward()
        results.append((loss.item(), h.detach().numpy(), w.grad.numpy(), pos.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_inplace_on_reshaping_views_passes_gradcheck():
    rng = np.random.default_rng(1)
    w = cr.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    pos = cr.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert cr.autograd.gradcheck(lambda w, pos: _reshaping_program(cr, w, pos)[0], (w, pos))


def test_inplace_on_an_expanded_view_refuses_as_torch_does():
    h = cr.ones(1, 3, requires_grad=True) * 1.0
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        h.expand(2, 3).mul_(2)
    assert h.tolist() == [[1.0] * 3]


def _two_views_program(lib, w, z):
    h = w * 2
    by_transpose, by_index = h.t(), h[1]  # both taken before either write
    by_transpose.mul_(3)  # rewrites h: the row view's graph must see it
    by_index.add_(z)  # a view of a tensor outside the graph taking a result in it
    plain = lib.zeros(3, 4, dtype=w.dtype)
    plain.t()[1:3] = z.reshape(2, 2).repeat(1, 3)[:, :3]
    column = h.diagonal()
    column[0] = 0.5  # __setitem__ into a view writes through the base too
    return (h ** 2).sum() + (by_index ** 3).sum() + (plain * plain).sum(), h


def test_views_taken_before_an_earlier_write_through_see_it_as_torch():
    rng = np.random.default_rng(2)
    data, z_data = rng.standard_normal((3, 4)), rng.standard_normal(4)
    results = []
    for lib in (cr, torch):
        w = lib.tensor(data, requires_grad=True)
        z = lib.tensor(z_data, requires_grad=True)
        loss, h = _two_views_program(lib, w, z)
        loss.backward()
        results.append((loss.item(), h.detach().numpy(), w.grad.numpy(), z.grad.numpy(), h._version))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    w = cr.tensor(data, requires_grad=True)
    z = cr.tensor(z_data, requires_grad=True)
    assert cr.autograd.gradcheck(lambda w, z: _two_views_program(cr, w, z)[0], (w, z))


def _refusal(lib, case, leaf, inner):
    if case == "leaf view":
        leaf.t().mul_(2)
    elif case == "leaf view setitem":
        leaf.t()[0] = 2.0
    elif case == "no_grad view":
        with lib.no_grad():
            view = inner.t()
        view.mul_(2)
    elif case == "no_grad view setitem":
        with lib.no_grad():
            view = inner.t()
        view[0] = 2.0
    elif case == "unbind":
        inner.unbind(0)[1].add_(1)
    elif case == "split":
        inner.split(2, 1)[0].relu_()
    elif case == "chunk":
        inner.chunk(3, 1)[2].zero_()


@pytest.mark.parametrize("case, words", [
    ("leaf view", "a view of a leaf Variable that requires grad"),
    ("leaf view setitem", "a view of a leaf Variable that requires grad"),
    ("no_grad view", "created in no_grad mode and is being modified inplace with grad mode enabled"),
    ("no_grad view setitem", "created in no_grad mode and is being modified inplace with grad mode enabled"),
    ("unbind", "of Unbind is a view and is being modified inplace"),
    ("split", "of Split is a view and is being modified inplace"),
    ("chunk", "of Split is a view and is being modified inplace"),
])
def test_inplace_on_views_torch_refuses_is_refused_before_any_write(case, words):
    leaf = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match=words):
        _refusal(torch, case, leaf, leaf * 1.0)
    leaf = cr.ones(2, 3, dtype=cr.float64, requires_grad=True)
    inner = leaf * 1.0
    with pytest.raises(RuntimeError, match=words):
        _refusal(cr, case, leaf, inner)
    assert leaf.tolist() == inner.tolist() == [[1.0] * 3] * 2
    assert leaf._version == 0
