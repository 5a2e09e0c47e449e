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


def _shown(value, lib):
    if isinstance(value, lib.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype).rsplit(".", 1)[-1])
    if isinstance(value, (list, tuple)):
        return type(value).__name__, tuple(_shown(item, lib) for item in value)
    if type(value).__name__ in ("dtype", "layout", "device"):
        return str(value).rsplit(".", 1)[-1]
    return type(value).__name__, value


def _logged(lib, call):
    dispatch = __import__(f"{lib.__name__}.utils._python_dispatch", fromlist=["TorchDispatchMode"])
    logged = []

    class Log(dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            logged.append((str(func), _shown(args, lib), {key: _shown(value, lib) for key, value in kwargs.items()}))
            return func(*args, **kwargs)

    x = lib.arange(12, dtype=lib.float32).reshape(3, 4) / 7
    with Log():
        result = call(lib, x)
    return logged, result


LOGGED_CALLS = {
    "prod_dim": lambda lib, x: lib.prod(x, 1),
    "prod_neg_dim_keepdim": lambda lib, x: lib.prod(x, -2, True),
    "prod_dtype": lambda lib, x: lib.prod(x, dtype=lib.float64),
    "prod_integer": lambda lib, x: lib.prod(x.long(), -1),
    "prod_out": lambda lib, x: lib.prod(x, 1, out=lib.empty(3)),
    "prod_out_dtype": lambda lib, x: lib.prod(x, 1, dtype=lib.float64, out=lib.empty(3, dtype=lib.float64)),
    "logcumsumexp_neg_dim": lambda lib, x: lib.logcumsumexp(x, -1),
    "logcumsumexp_out": lambda lib, x: lib.logcumsumexp(x, dim=0, out=lib.empty(3, 4)),
    "softmax_dtype": lambda lib, x: lib.softmax(x, 1, dtype=lib.float64),
    "log_softmax_dtype": lambda lib, x: lib.log_softmax(x, 0, dtype=lib.float64),
    "vector_norm_int_ord": lambda lib, x: lib.linalg.vector_norm(x, 3, dim=1),
    "vector_norm_all_dims_given": lambda lib, x: lib.linalg.vector_norm(x, float("inf"), dim=(0, 1)),
    "vector_norm_neg_dim": lambda lib, x: lib.linalg.vector_norm(x, 1, dim=-1, keepdim=True),
    "linalg_norm": lambda lib, x: lib.linalg.norm(x, dim=1),
    "norm_p": lambda lib, x: lib.norm(x, 2, 1),
}


@pytest.mark.parametrize("call", list(LOGGED_CALLS))
def test_a_modes_log_shows_torchs_overload_and_arguments(call):
    # 13 functional and 13 norm calls probed: 13 -> 2 and 8 -> 1 differing; 30 out= calls: 17 -> 12
    expected, expected_result = _logged(torch, LOGGED_CALLS[call])
    got, result = _logged(cr, LOGGED_CALLS[call])
    assert got == expected
    np.testing.assert_allclose(result.numpy(), expected_result.numpy(), rtol=1e-6)
