"""Forward-mode AD through in-place writes on views, against torch: a view's tangent is the same
view of its base's tangent, so a write into the view lands in the base's tangent (and one into
the base is read through every view)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


import torch.autograd.forward_ad as th_fwad  # noqa: E402

import chainrule  # noqa: E402
import chainrule.autograd.forward_ad as cr_fwad  # noqa: E402


def _both(make):
    """``make(lib, fwad)`` run on chainrule and on torch."""
    return make(chainrule, cr_fwad), make(torch, th_fwad)


def _assert_same(ours, theirs):
    if isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_same(a, b)
    elif theirs is None:
        assert ours is None
    else:
        assert isinstance(ours, chainrule.Tensor) and isinstance(theirs, torch.Tensor)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert ours.numpy().tobytes() == theirs.detach().numpy().tobytes(), (ours, theirs)


def _other(lib, fwad):
    return fwad.make_dual(lib.tensor([7., 8., 9.]), lib.tensor([10., 20., 30.]))


WRITES = {
    "select_zero_": lambda lib, fwad, y: y[0].zero_(),
    "select_mul_": lambda lib, fwad, y: y[0].mul_(3),
    "slice_fill_": lambda lib, fwad, y: y[:, 1:].fill_(2.),
    "select_setitem": lambda lib, fwad, y: y[0].__setitem__(0, 5.),
    "setitem_dual": lambda lib, fwad, y: y.__setitem__(0, _other(lib, fwad)),
    "narrow_add_": lambda lib, fwad, y: y.narrow(1, 0, 2).add_(1),
    "diagonal_mul_": lambda lib, fwad, y: y.diagonal().mul_(2),
    "t_mul_": lambda lib, fwad, y: y.t().mul_(2),
    "view_mul_": lambda lib, fwad, y: y.view(6).mul_(3),
    "reshape_mul_": lambda lib, fwad, y: y.reshape(3, 2).mul_(3),
    "unsqueeze_mul_": lambda lib, fwad, y: y.unsqueeze(0).mul_(3),
    "squeeze_mul_": lambda lib, fwad, y: y[0:1].squeeze(0).mul_(4),
    "flatten_mul_": lambda lib, fwad, y: y.flatten().mul_(4),
    "as_strided_mul_": lambda lib, fwad, y: y.as_strided((2,), (3,)).mul_(4),
    "view_of_view_zero_": lambda lib, fwad, y: y[1][1:].zero_(),
    "copy_plain": lambda lib, fwad, y: y[0].copy_(lib.tensor([7., 8., 9.])),
    "copy_sibling_view": lambda lib, fwad, y: y[0].copy_(y[1]),
    "copy_dual": lambda lib, fwad, y: y[0].copy_(_other(lib, fwad)),
    "mul_dual": lambda lib, fwad, y: y[0].mul_(_other(lib, fwad)),
    "sub_sibling_view": lambda lib, fwad, y: y[0].sub_(y[1], alpha=2),
    "addcmul_": lambda lib, fwad, y: y[0].addcmul_(y[1], y[1]),
    "lerp_": lambda lib, fwad, y: y[0].lerp_(y[1], 0.5),
    "clamp_": lambda lib, fwad, y: y[0].clamp_(2, 2.5),
    "exp_": lambda lib, fwad, y: y[:, 0].exp_(),
    "index_put_": lambda lib, fwad, y: y[0].index_put_((lib.tensor([0, 2]),), lib.tensor(9.)),
    "masked_fill_": lambda lib, fwad, y: y[0].masked_fill_(lib.tensor([True, False, True]), 0.),
    "chunk_mul_": lambda lib, fwad, y: y.chunk(3, 1)[1].mul_(5),
    "unbind_mul_": lambda lib, fwad, y: y.unbind(0)[1].mul_(5),
    "split_zero_": lambda lib, fwad, y: y.split(1, 0)[1].zero_(),
    "base_mul_read_view": lambda lib, fwad, y: (lambda view: (y.mul_(2), view)[1])(y[0]),
    "base_zero_read_view": lambda lib, fwad, y: (lambda view: (y.zero_(), view)[1])(y[0]),
    "view_write_read_other_view": lambda lib, fwad, y: (y[0].mul_(2), y[:, 0])[1],
}


@pytest.mark.parametrize("name", list(WRITES))
def test_a_write_through_a_view_reaches_the_base_tangent(name):
    def run(lib, fwad):
        x = lib.tensor([[1., 2., 3.], [4., 5., 6.]])
        with fwad.dual_level():
            y = fwad.make_dual(x, lib.arange(6.).reshape(2, 3) + 1).clone()
            view = WRITES[name](lib, fwad, y)
            found = list(fwad.unpack_dual(y))
            if view is not None:
                found += list(fwad.unpack_dual(view))
            return found

    _assert_same(*_both(run))


@pytest.mark.parametrize("write", ["copy_", "add_"])
def test_a_dual_written_into_a_view_of_a_plain_tensor_gives_the_base_a_tangent(write):
    def run(lib, fwad):
        with fwad.dual_level():
            x = lib.zeros(2, 3)
            getattr(x[0], write)(_other(lib, fwad))
            return [fwad.unpack_dual(x).tangent, fwad.unpack_dual(x[0]).tangent, fwad.unpack_dual(x[1]).tangent]

    _assert_same(*_both(run))


def test_a_view_made_before_its_base_had_a_tangent_reads_the_base_tangent():
    def run(lib, fwad):
        with fwad.dual_level():
            x = lib.zeros(2, 3)
            view = x[1]
            x.copy_(fwad.make_dual(lib.ones(2, 3), lib.ones(2, 3) * 3))
            return [fwad.unpack_dual(view).tangent, fwad.unpack_dual(x).primal, fwad.unpack_dual(x).tangent]

    ours, theirs = _both(run)
    _assert_same(ours, theirs)
    with cr_fwad.dual_level():
        y = cr_fwad.make_dual(chainrule.ones(2), chainrule.ones(2)).clone()
        assert cr_fwad.unpack_dual(cr_fwad.unpack_dual(y).primal).tangent is None  # a primal carries none


def _f_select_then_zero(x):
    y = x.clone()
    y[0].mul_(3)
    y[1:].zero_()
    return y


def _f_copy_into_slice(x):
    y = x.new_zeros(4)
    y[1:3].copy_(x[:2] * 2)
    return y


def _f_add_into_flat_view(x):
    y = x * 1
    y.view(-1)[2:].add_(x.view(-1)[:2] ** 2)
    return y


@pytest.mark.parametrize("fn", [_f_select_then_zero, _f_copy_into_slice, _f_add_into_flat_view])
def test_jvp_and_jacfwd_of_functions_writing_views(fn):
    def run(lib, fwad):
        x = lib.arange(4.) + 1
        primal, tangent = lib.func.jvp(fn, (x,), (lib.arange(4.) * 2 + 1,))
        return [primal, tangent, lib.func.jacfwd(fn)(x)]

    _assert_same(*_both(run))


@pytest.mark.parametrize("case", ["dual_input_view_out", "plain_input_dual_view_out", "dual_input_plain_out"])
def test_out_is_refused_under_forward_ad_as_torch_refuses_it(case):
    def run(lib, fwad):
        with fwad.dual_level():
            y = fwad.make_dual(lib.ones(2, 3), lib.ones(2, 3)).clone()
            before = y.clone()
            source, out = {"dual_input_view_out": (y[1], y[0]),
                           "plain_input_dual_view_out": (lib.ones(3), y[0]),
                           "dual_input_plain_out": (y[1], lib.zeros(3))}[case]
            with pytest.raises(NotImplementedError) as refusal:
                lib.mul(source, 2, out=out)
            # (torch writes out before its check refuses; chainrule refuses first, as its errors do)
            unchanged = bool((y == before).all())
            return str(refusal.value), unchanged

    (ours, unchanged), (theirs, _) = _both(run)
    assert ours == theirs
    assert unchanged


# ---------------------------------------------------------------- copy_ into a view, second order
def _tree(fn, depth):
    """A node's name with its next_functions' trees, ``depth`` levels down (None for a missing edge)."""
    if fn is None:
        return None
    if depth == 0:
        return fn.name()
    return fn.name(), [_tree(child, depth - 1) for child, _ in fn.next_functions]


_COPIES_INTO_VIEWS = {
    "t": lambda b, c: b.t().copy_(c),
    "transpose": lambda b, c: b.transpose(0, 1).copy_(c),
    "select": lambda b, c: b[0].copy_(c[0]),
    "slice": lambda b, c: b[1:].copy_(c[1:]),
    "diagonal": lambda b, c: b.diagonal().copy_(c[0]),
    "view": lambda b, c: b.view(9).copy_(c.reshape(9)),
    "strided": lambda b, c: b.view(-1)[::2].copy_(c.reshape(-1)[:5]),
    "broadcast": lambda b, c: b[1:].copy_(c[0]),
    "t_then_slice": lambda b, c: b.t()[1:].copy_(c[1:]),
    "unsqueeze": lambda b, c: b.unsqueeze(0).copy_(c.unsqueeze(0)),
    # other ops CopySlices absorbs: its recorded backward is the same for each
    "mul_scalar_into_t": lambda b, c: b.t().mul_(2),
    "zero_into_select": lambda b, c: b[1].zero_(),
    "fill_tensor_into_select": lambda b, c: b[1].fill_(c[0, 0]),
    "clamp_into_view": lambda b, c: b.view(9).clamp_(0),
}


@pytest.mark.parametrize("case", list(_COPIES_INTO_VIEWS))
def test_copy_into_a_view_records_torch_second_order_graph(case):
    def run(lib):
        rng = np.random.default_rng(0)
        a, c = (lib.tensor(rng.standard_normal((3, 3)), requires_grad=True) for _ in range(2))
        b = a.clone()
        _COPIES_INTO_VIEWS[case](b, c)
        grad_a, grad_c = lib.autograd.grad((b * b).sum(), (a, c), create_graph=True, allow_unused=True)
        loss = (grad_a * grad_a).sum() + (0 if grad_c is None else (grad_c * grad_c).sum())
        second = lib.autograd.grad(loss, (a, c), allow_unused=True)
        return ([_tree(b.grad_fn, 2), _tree(grad_a.grad_fn, 3), grad_c is not None and _tree(grad_c.grad_fn, 3)],
                [grad_a, grad_c, *second])

    (ours, our_grads), (theirs, their_grads) = run(chainrule), run(torch)
    assert ours == theirs
    for g, tg in zip(our_grads, their_grads):
        assert (g is None) == (tg is None)
        if g is not None:
            np.testing.assert_array_equal(g.detach().numpy(), tg.detach().numpy())


# ---------------------------------------------------------------- writes reading partly overlapping memory
_OVERLAPPING_WRITES = {
    "add_": lambda t: t[1:].add_(t[:-1]),
    "add_reversed": lambda t: t[:-1].add_(t[1:]),
    "mul_": lambda t: t[1:].mul_(t[:-1]),
    "sub_": lambda t: t[2:].sub_(t[:-2]),
    "div_": lambda t: t[1:].div_(t[:-1] + 1),
    "pow_": lambda t: t[1:].pow_(t[:-1]),
    "copy_": lambda t: t[1:].copy_(t[:-1]),
    "copy_reversed": lambda t: t[:-1].copy_(t[1:]),
    "clamp_": lambda t: t[1:].clamp_(t[:-1]),
    "lerp_": lambda t: t[1:].lerp_(t[:-1], 0.5),
    "addcmul_": lambda t: t[1:].addcmul_(t[:-1], t[:-1]),
    "addcmul_second": lambda t: t[1:].addcmul_(t[1:].clone(), t[:-1]),
    "masked_fill_": lambda t: t[1:].masked_fill_(t[:-1] > 2, 0.),
    "rows_of_a_matrix": lambda t: t.view(2, 3)[:, :2].add_(t.view(2, 3)[:, 1:]),
    # allowed: the same elements, a layout torch does not judge, another root, a 0-d element
    "add_same_view": lambda t: t[1:].add_(t[1:]),
    "copy_self": lambda t: t.copy_(t),
    "add_strided": lambda t: t[::2].add_(t[1::2]),
    "add_expanded": lambda t: t[1:].add_(t[:1].expand(5)),
    "add_0d_element": lambda t: t[1:].add_(t[0]),
    "add_base_into_view": lambda t: t[:3].add_(t.view(2, 3)[0]),
    # out= of an elementwise op
    "add_out": lambda t: chainrule_or_torch(t).add(t[:-1], 1, out=t[1:]),
    "mul_out": lambda t: chainrule_or_torch(t).mul(t[:-1], t[1:], out=t[1:]),
    "neg_out": lambda t: chainrule_or_torch(t).neg(t[2:], out=t[:-2]),
    "maximum_out": lambda t: chainrule_or_torch(t).maximum(t[:-1], t[1:], out=t[1:]),
    "add_out_same": lambda t: chainrule_or_torch(t).add(t, 1, out=t),
    "abs_out_same_view": lambda t: chainrule_or_torch(t).abs(t[1:], out=t[1:]),
    "exp_out": lambda t: chainrule_or_torch(t).exp(t[:-1], out=t[1:]),
    "sigmoid_out": lambda t: chainrule_or_torch(t).sigmoid(t[:-1], out=t[1:]),
    "sqrt_out_same_view": lambda t: chainrule_or_torch(t).sqrt(t[1:], out=t[1:]),
}


def chainrule_or_torch(t):
    return chainrule if isinstance(t, chainrule.Tensor) else torch


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("case", list(_OVERLAPPING_WRITES))
def test_a_write_reading_partly_overlapping_memory_is_refused_as_torch_refuses_it(case, grad):
    def run(lib):
        t = lib.arange(6.)
        base = t
        if grad:
            base = lib.arange(6., requires_grad=True)
            t = base * 1
        try:
            _OVERLAPPING_WRITES[case](t)
        except RuntimeError as refusal:
            return type(refusal), str(refusal), t.tolist(), t._version
        return None, None, t.tolist(), t._version

    assert run(chainrule) == run(torch)
