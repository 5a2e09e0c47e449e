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


# A view used after its base (or a sibling view) changed in place carries the base's new graph,
# as torch regenerates a view's grad_fn: (name, base shape, view), for each view torch makes.
_VIEWS = [
    ("t", (3, 4), lambda h: h.t()),
    ("transpose", (2, 3, 4), lambda h: h.transpose(0, 2)),
    ("view", (3, 4), lambda h: h.view(2, 6)),
    ("reshape", (3, 4), lambda h: h.reshape(-1)),
    ("permute", (2, 3, 4), lambda h: h.permute(1, 2, 0)),
    ("narrow", (3, 4), lambda h: h.narrow(1, 1, 2)),
    ("slice", (3, 4), lambda h: h[1:, ::2]),
    ("select", (3, 4), lambda h: h.select(1, 2)),
    ("diagonal", (3, 4), lambda h: h.diagonal(1)),
    ("unsqueeze", (3, 4), lambda h: h.unsqueeze(1)),
    ("expand", (3, 1), lambda h: h.expand(3, 4)),
    ("squeeze", (3, 1, 4), lambda h: h.squeeze(1)),
    ("flatten", (2, 3, 4), lambda h: h.flatten(1)),
    ("view of a view", (3, 4), lambda h: h.t()[1:].unsqueeze(0)),
]


def _later_use_program(lib, a, make_view, write):
    h = a * 2
    view = make_view(h)
    if write == "base":
        h.mul_(3)
    elif write == "sibling":  # another view of h written in place
        h.view(-1)[1:-1:2].sin_()
    else:  # a sibling's __setitem__, with a value in the graph
        h.unsqueeze(0)[..., 0] = a[..., 0] ** 2
    saved = view * view.cos()  # the view saved, and as an out-of-place op's input
    other = (view * 0.5).sin()
    other.mul_(view)  # the view as an input of another in-place op
    return saved.sum() + other.sum() + (h * h).sum(), view


def _run_both(program, shape, *args):
    data = np.random.default_rng(3).standard_normal(shape)
    results = []
    for lib in (cr, torch):
        a = lib.tensor(data, requires_grad=True)
        loss, view = program(lib, a, *args)
        loss.backward()
        results.append((loss.item(), view.detach().numpy(), a.grad.numpy(), view.requires_grad))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("write", ["base", "sibling", "sibling setitem"])
@pytest.mark.parametrize("name, shape, make_view", _VIEWS, ids=[v[0] for v in _VIEWS])
def test_a_view_used_after_an_inplace_write_carries_the_new_graph_as_torch(name, shape, make_view, write):
    _run_both(_later_use_program, shape, make_view, write)


@pytest.mark.parametrize("write", ["base", "sibling setitem"])
def test_a_view_used_after_an_inplace_write_passes_gradcheck(write):
    a = cr.tensor(np.random.default_rng(4).standard_normal((3, 4)), requires_grad=True)
    assert cr.autograd.gradcheck(lambda a: _later_use_program(cr, a, _VIEWS[-1][2], write)[0], (a,))


def _outside_graph_program(lib, a):
    plain = lib.zeros(3, 4, dtype=a.dtype)  # outside the graph: its views do not require grad
    by_transpose, by_row = plain.t(), plain[2]
    by_row.copy_(a[0] * 3)  # the base joins the graph through a sibling view
    plain.mul_(a)  # then changes again in place
    return (by_transpose ** 2).sum(), by_transpose


def test_views_of_a_base_outside_the_graph_join_it_with_the_base_as_torch():
    _run_both(_outside_graph_program, (3, 4))


def test_a_view_used_before_the_write_keeps_its_graph_and_saved_values_are_checked_as_torch():
    data = np.random.default_rng(5).standard_normal((3, 4))
    grads = []
    for lib in (cr, torch):
        a = lib.tensor(data, requires_grad=True)
        h = a * 2
        view = h.t()
        before = (view * 3).sum()  # nothing saved from the view
        squares = (view * view).sum()  # the view saved, then changed under the node
        h.mul_(3)
        before.backward()
        grads.append(a.grad.numpy().copy())
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            squares.backward()
    np.testing.assert_array_equal(grads[0], grads[1])


def test_a_view_used_after_an_inplace_write_on_the_standin_device():
    from chainrule._backend import use_standin_cuda

    data = np.random.default_rng(6).standard_normal((3, 4))
    a = torch.tensor(data, requires_grad=True)
    _later_use_program(torch, a, _VIEWS[-1][2], "sibling")[0].backward()
    with use_standin_cuda():
        b = cr.tensor(data, requires_grad=True, device="cuda")
        loss, view = _later_use_program(cr, b, _VIEWS[-1][2], "sibling")
        loss.backward()
        assert view.device.type == "cuda"
        np.testing.assert_allclose(b.grad.cpu().numpy(), a.grad.numpy(), rtol=1e-12)


def _multi_view_use(lib, case):
    h = lib.ones(2, 4, dtype=lib.float64, requires_grad=True) * 2
    pieces = h.split(2, 1) if case.startswith("split") else h.unbind(0)
    h.mul_(3)
    if case.endswith("in place"):
        pieces[0].add_(1)
    else:
        pieces[1].sum()


@pytest.mark.parametrize("case, words", [
    ("split used", "of Split is a view and its base or another view of its base has been modified inplace"),
    ("unbind used", "of Unbind is a view and its base or another view of its base has been modified inplace"),
    ("split in place", "of Split is a view and is being modified inplace"),
])
def test_a_multi_output_view_used_after_its_base_changed_is_refused_as_torch(case, words):
    for lib in (torch, cr):
        with pytest.raises(RuntimeError, match=words):
            _multi_view_use(lib, case)


def test_views_of_a_buffer_outside_the_graph_filled_in_place_one_by_one():
    x = cr.tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)
    buffer = cr.zeros(1, 4, 3, dtype=x.dtype)
    rows = [buffer[:, t] for t in range(4)]  # all made before the buffer joins the graph
    rows[0].copy_(x)
    with pytest.raises(RuntimeError, match="leaf Variable"):  # as torch: the row's graph is unread
        rows[1].copy_(x * 2)
    rows[1][0] = x[0] * 2  # __setitem__ writes into a new view of it: not refused, in torch either
    for t, row in enumerate(rows[2:], 3):
        assert row.grad_fn is not None  # read: the row's graph is regenerated, and the write allowed
        row.copy_(x * t)
    assert rows[0].requires_grad and not rows[0].is_leaf
    (rows[2] ** 2 + buffer.sum()).sum().backward()  # d/dx_i of sum_j (9 x_j^2 + 10 sum_k x_k)
    np.testing.assert_allclose(x.grad.numpy(), 18 * x.detach().numpy() + 30, rtol=1e-12)  # torch's too


def _relaid_root_program(lib, a):
    h = a * 2
    row = h[0]  # its node keeps the key h[0]: h's layout changes below
    h.t_()
    h.mul_(3)
    return (row * row).sum() + (h[1] ** 2).sum(), row


def test_a_view_of_a_root_relaid_in_place_finds_its_elements_again():
    _run_both(_relaid_root_program, (3, 4))


def test_a_view_used_after_an_inplace_write_passes_gradgradcheck():
    a = cr.tensor(np.random.default_rng(7).standard_normal((3, 4)), requires_grad=True)
    assert cr.autograd.gradgradcheck(lambda a: _later_use_program(cr, a, _VIEWS[0][2], "sibling")[0], (a,))


_FUZZ_VIEWS = [lambda h: h.t() if h.dim() == 2 else h.transpose(0, -1), lambda h: h[1:],
               lambda h: h.narrow(-1, 0, 2), lambda h: h.unsqueeze(0), lambda h: h.select(0, 0),
               lambda h: h.flatten() if h.is_contiguous() else h[..., :1],
               lambda h: h.diagonal() if h.dim() >= 2 else h[:1], lambda h: h[..., ::2]]


def _random_program(lib, seed):
    """Six random steps over a tensor and its views (made from it or from each other): a new
    view, an in-place write on one of them, or a use of one in the loss."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((3, 4))
    a = lib.tensor(data, requires_grad=True)
    z = lib.tensor(data[0], requires_grad=True)
    live = [a * 2 if rng.random() < 0.8 else lib.zeros(3, 4, dtype=a.dtype)]
    loss = 0
    for _ in range(6):
        step, chosen = rng.random(), live[rng.integers(len(live))]
        if step < 0.35:
            live.append(_FUZZ_VIEWS[rng.integers(len(_FUZZ_VIEWS))](chosen))
        elif step < 0.7:
            write = rng.integers(4)
            if write == 0:
                chosen.mul_(1.5)
            elif write == 1:
                chosen.add_(z.sum() * 0.1)
            elif write == 2:
                chosen.mul_(a[0, 0])
            else:
                chosen[...] = chosen * a.sum() * 0.01
        else:
            loss = loss + ((chosen.clone() ** 2).sum() if rng.random() < 0.8 else (chosen * 3).sum())
    loss = loss + sum((view * view).sum() for view in live[-2:])
    loss.backward()
    return [loss.item()] + [t.grad.numpy() if t.grad is not None else None for t in (a, z)]


def test_random_programs_of_views_and_inplace_writes_match_torch():
    for seed in range(60):  # 60 programs: 34 run, 26 raise (in both libraries alike)
        outcomes = []
        for lib in (cr, torch):
            try:
                outcomes.append(_random_program(lib, seed))
            except RuntimeError as e:
                outcomes.append(str(e)[:40])
        ours, theirs = outcomes
        if isinstance(ours, str) or isinstance(theirs, str):
            assert ours == theirs, seed
            continue
        for mine, torchs in zip(ours, theirs):
            assert (mine is None) == (torchs is None), seed
            if mine is not None:
                np.testing.assert_allclose(mine, torchs, rtol=1e-10, atol=1e-12, err_msg=f"seed {seed}")
