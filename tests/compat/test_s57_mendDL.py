"""Session 57, lane mendDL: torch's layouts for conj()'s view, conj_physical and a single element's
stride under preserve_format; torch's names and arguments in a dispatch mode's log of out= calls."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _pair(shape, perm, step=None, dtype=np.complex64, seed=0):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    made = []
    for lib in (torch, cr):
        x = lib.tensor(a).permute(*perm)
        made.append(x[..., ::step] if step else x)
    return made


# row-major but for a size-1 dim's stride; dense permuted with size-1 dims; a single element's 1-d stride
LAYOUTS = [((1, 5, 4, 2), (0, 1, 2, 3), None), ((5, 1, 4, 2), (1, 0, 2, 3), None),
           ((3, 3, 1, 1), (1, 2, 3, 0), None), ((2, 3), (1, 0), 2), ((2,), (0,), 2)]


@pytest.mark.parametrize("shape,perm,step", LAYOUTS)
def test_conj_view_and_conj_physical_keep_a_dense_inputs_strides(shape, perm, step):
    x_torch, x_cr = _pair(shape, perm, step)
    assert x_cr.stride() == x_torch.stride()
    for op in ("conj", "conj_physical"):
        expected, got = getattr(torch, op)(x_torch), getattr(cr, op)(x_cr)
        assert got.stride() == expected.stride(), op
        assert got.is_conj() == expected.is_conj()
        np.testing.assert_array_equal(got.resolve_conj().numpy(), expected.resolve_conj().numpy())
    resolved_torch, resolved_cr = torch.conj(x_torch).resolve_conj(), cr.conj(x_cr).resolve_conj()
    assert resolved_cr.stride() == resolved_torch.stride()


def test_conj_gradient_keeps_the_size_one_dims_stride():
    x_torch, x_cr = _pair((1, 5, 4, 2), (0, 1, 2, 3))
    grads = []
    for lib, x in ((torch, x_torch), (cr, x_cr)):
        leaf = x.detach().requires_grad_()
        (lib.conj(leaf) * x.detach()).sum().abs().backward()
        grads.append(leaf.grad)
    assert grads[1].stride() == grads[0].stride()
    assert grads[1].is_conj() == grads[0].is_conj()
    np.testing.assert_allclose(grads[1].resolve_conj().numpy(), grads[0].resolve_conj().numpy(), rtol=1e-6)


def test_preserve_format_keeps_a_single_elements_stride():
    x_torch = torch.arange(4.0)[::2][:1]
    x_cr = cr.arange(4.0)[::2][:1]
    for name in ("nan_to_num", "deg2rad"):
        assert getattr(cr, name)(x_cr).stride() == getattr(torch, name)(x_torch).stride() == (2,)
    assert x_cr.to(cr.float64).stride() == x_torch.to(torch.float64).stride()
