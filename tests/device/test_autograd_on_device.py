"""Autograd machinery added since the last GPU run, on 'cuda' (the stand-in): the recorded
torch.normal overloads, out= on the matmul family, second order (func.hessian, jacrev of jacrev,
vmap, autograd.functional.hessian: the recorded batched walk), split/chunk/unbind's multi-output
node and writes through views. Each gives the CPU's numbers (tests elsewhere compare the CPU with
torch) and makes no host copy where a GPU would need none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule

rng = np.random.default_rng(0)
X = rng.standard_normal(5).astype(np.float32)
M = rng.standard_normal((6, 4)).astype(np.float32)


def _both(fn, *arrays):
    """fn's results on the CPU and on 'cuda' (each a list of NumPy arrays), and the number of host
    copies fn made on the device; the inputs are moved before counting."""
    from chainrule.testing import standin

    results = []
    for device in ("cpu", "cuda"):
        inputs = [chainrule.tensor(a, device=device) for a in arrays]
        standin.reset_transfers()
        out = fn(*inputs)
        copies = standin.transfers()
        outs = out if isinstance(out, (tuple, list)) else [out]
        assert all(t.device.type == device for t in outs)
        results.append([t.detach().cpu().numpy() for t in outs])
    return results[0], results[1], copies


def _assert_close(cpu, device, tolerance=1e-5):
    for a, b in zip(cpu, device, strict=True):
        np.testing.assert_allclose(b, a, rtol=tolerance, atol=tolerance)


def _f(x):
    # (no prod: its backward asks the host whether any factor is zero, as torch's does)
    return (x.sin() * x).sum() + (x[:-1] * x[1:]).exp().sum()


def _pieces(x):
    # split's, chunk's and unbind's one node of several outputs, differentiated twice
    a, b = x.split([2, 3])
    c, d = x.chunk(2)
    return (a * a).sum() * b.sum() + c.exp().sum() * d.sum() + x.unbind(0)[1] ** 3


SECOND_ORDER = {
    "func.hessian": lambda x: chainrule.func.hessian(_f)(x),
    "jacrev(jacrev)": lambda x: chainrule.func.jacrev(chainrule.func.jacrev(_f))(x),
    "jacfwd(jacrev)": lambda x: chainrule.func.jacfwd(chainrule.func.jacrev(_f))(x),
    "autograd.functional.hessian": lambda x: chainrule.autograd.functional.hessian(_f, x),
    "autograd.functional.hessian vectorize": lambda x: chainrule.autograd.functional.hessian(_f, x, vectorize=True),
    "hessian of split/chunk/unbind": lambda x: chainrule.func.hessian(_pieces)(x),
    "vmap of grad": lambda x: chainrule.func.vmap(chainrule.func.grad(lambda r: (r.sin() * r).sum()))(x[None] * x[:, None]),
}


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_on_the_device_gives_the_cpus_numbers_with_no_host_copy(cuda, name):
    cpu, device, copies = _both(SECOND_ORDER[name], X)
    _assert_close(cpu, device)
    assert copies == 0


@pytest.mark.parametrize("name", ["func.hessian", "hessian of split/chunk/unbind"])
def test_the_device_hessian_matches_torch(cuda, name):
    fn = {"func.hessian": (_f, torch.func.hessian), "hessian of split/chunk/unbind": (_pieces, torch.func.hessian)}[name]
    theirs = fn[1](fn[0])(torch.tensor(X)).numpy()
    ours = SECOND_ORDER[name](chainrule.tensor(X, device="cuda")).cpu().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_create_graph_through_split_and_unbind_on_the_device(cuda):
    def penalty(m):
        m = m.requires_grad_(True)
        rows = m.unbind(0)
        left, right = m.split(2, dim=1)
        loss = sum((r.tanh() * (i + 1)).sum() for i, r in enumerate(rows)) + (left * right).square().sum()
        (grad,) = chainrule.autograd.grad(loss, m, create_graph=True)
        (second,) = chainrule.autograd.grad(grad.square().sum(), m)
        return grad, second

    cpu, device, copies = _both(penalty, M)
    _assert_close(cpu, device)
    assert copies == 0


def test_writes_through_views_on_the_device(cuda):
    # a view read after its base changed in place carries the base's new graph (torch's CopySlices)
    def program(m):
        leaf = m.requires_grad_(True)
        base = leaf * 1.0
        view = base[1:, :2]
        base.mul_(3)
        column = base[:, 3]
        column.add_(leaf[:, 0])
        (view.square().sum() + base.sin().sum()).backward()
        return view, base, leaf.grad

    cpu, device, copies = _both(program, M)
    _assert_close(cpu, device)
    assert copies == 0


def test_recorded_normal_overloads_on_the_device(cuda):
    mean = chainrule.tensor(X, device="cuda", requires_grad=True)
    std = chainrule.tensor(np.abs(X) + 0.5, device="cuda", requires_grad=True)
    cuda.reset_transfers()
    both, of_mean, of_std = chainrule.normal(mean, std), chainrule.normal(mean, 2.0), chainrule.normal(1.0, std)
    (both.sum() + of_mean.sum() + of_std.square().sum()).backward()
    assert cuda.transfers() == 2  # torch's check that std >= 0 (a host read, on CUDA too), once per std tensor
    names = [type(t.grad_fn).__name__ for t in (both, of_mean, of_std)]
    theirs = torch.tensor(X, requires_grad=True), torch.tensor(np.abs(X) + 0.5, requires_grad=True)
    assert names == [type(t.grad_fn).__name__ for t in (torch.normal(*theirs), torch.normal(theirs[0], 2.0),
                                                       torch.normal(1.0, theirs[1]))]
    assert all(t.is_cuda for t in (both, of_mean, of_std, mean.grad, std.grad))
    # torch's rules give zero gradients (a draw is not reparameterised), as zeros of the input's shape
    (torch.normal(*theirs).sum() + torch.normal(theirs[0], 2.0).sum() + torch.normal(1.0, theirs[1]).sum()).backward()
    np.testing.assert_array_equal(mean.grad.cpu().numpy(), theirs[0].grad.numpy())
    np.testing.assert_array_equal(std.grad.cpu().numpy(), theirs[1].grad.numpy())


OUT_OPS = {
    "matmul": (lambda a, b, c, out: chainrule.matmul(a, b, out=out), (6, 3)),
    "mm": (lambda a, b, c, out: chainrule.mm(a, b, out=out), (6, 3)),
    "bmm": (lambda a, b, c, out: chainrule.bmm(a.expand(2, 6, 4), b.expand(2, 4, 3), out=out), (2, 6, 3)),
    "addmm": (lambda a, b, c, out: chainrule.addmm(c, a, b, beta=0.5, alpha=2.0, out=out), (6, 3)),
}


@pytest.mark.parametrize("op", OUT_OPS)
def test_out_of_the_matmul_family_on_the_device(cuda, op):
    fn, shape = OUT_OPS[op]
    b = rng.standard_normal((4, 3)).astype(np.float32)
    c = rng.standard_normal((6, 3)).astype(np.float32)

    def program(a, b, c):
        out = chainrule.empty(shape, device=a.device)
        result = fn(a, b, c, out)
        assert result is out
        return out

    cpu, device, copies = _both(program, M, b, c)
    _assert_close(cpu, device)
    assert copies == 0


def test_as_strided_keeps_its_storage_offset_on_the_device(cuda):
    # CuPy's as_strided makes a new array on the memory with no base (ndarray(..., memptr=x.data)),
    # as the stand-in does; chainrule notes the result's root where it calls as_strided
    for device in ("cpu", "cuda"):
        x = chainrule.arange(12.0, device=device)
        window = x.as_strided((3, 3), (1, 1), 2)
        assert window.storage_offset() == 2 and window[1:].storage_offset() == 3
        assert window.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        assert window.as_strided((2, 2), (2, 1)).cpu().tolist() == [[2.0, 3.0], [4.0, 5.0]]


def test_the_other_as_strided_views_share_their_source_storage_on_the_device(cuda):
    theirs_z = torch.randn(3, 4, dtype=torch.complex64)[1:]
    theirs_x = torch.arange(10.0)[2:]
    expected = (torch.view_as_real(theirs_z).storage_offset(), theirs_x.unfold(0, 3, 2).storage_offset())
    for device in ("cpu", "cuda"):
        z = chainrule.randn(3, 4, dtype=chainrule.complex64, device=device)[1:]
        x = chainrule.arange(10.0, device=device)[2:]
        pairs, windows = chainrule.view_as_real(z), x.unfold(0, 3, 2)
        assert (pairs.storage_offset(), windows.storage_offset()) == expected == (8, 2)
        assert pairs.untyped_storage().data_ptr() == z.untyped_storage().data_ptr()
        assert windows.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        target = chainrule.zeros(4, device=device)
        target.set_(x.untyped_storage(), 3, (2,), (3,))
        assert target.storage_offset() == 3 and target.cpu().tolist() == [3.0, 6.0]


def test_the_noted_roots_go_with_their_views(cuda):
    import gc

    from chainrule import storage

    before = len(storage._strided_roots)
    x = chainrule.arange(12.0, device="cuda")
    views = [x.as_strided((2, 2), (1, 1), k) for k in range(4)]
    assert len(storage._strided_roots) > before
    del views
    gc.collect()
    assert len(storage._strided_roots) == before  # no entry (and no root) outlives its view


OVERLAPPING_WRITES = {
    "expand add_": lambda d: chainrule.ones(1, 4, device=d).expand(3, 4).add_(1),
    "broadcast_to copy_": lambda d: chainrule.broadcast_to(chainrule.ones(4, device=d), (3, 4)).copy_(
        chainrule.ones(3, 4, device=d)),
    "expand of a leaf's clone mul_": lambda d: chainrule.ones(4, 1, device=d, requires_grad=True).clone().expand(
        4, 3).mul_(2),
}


@pytest.mark.parametrize("case", OVERLAPPING_WRITES)
def test_an_in_place_write_into_an_expanded_view_raises_on_the_device_as_on_the_cpu(cuda, case):
    # CuPy has no read-only arrays: without the stride check the GPU would race on the shared
    # element where torch (and the CPU) refuse
    for device in ("cpu", "cuda"):
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor refers to a single "
                                               "memory location"):
            OVERLAPPING_WRITES[case](device)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        torch.ones(1, 4).expand(3, 4).add_(1)  # torch refuses it in the same words


def test_hessian_through_logcumsumexp_stays_on_the_device(cuda):
    # the recorded gradient builds its pairwise block on the gradient's device
    def hessian(x):
        return chainrule.func.hessian(lambda v: chainrule.logcumsumexp(v, 0).sum())(x)

    cpu, device, copies = _both(hessian, X.astype(np.float64))
    _assert_close(cpu, device, 1e-10)
    assert copies == 0
