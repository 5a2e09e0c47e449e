"""``out=`` on the matrix products (the tensors tutorial's ``torch.matmul(t, t.T, out=y3)``).

torch writes a gemm straight into ``out``, so mm/bmm/mv/matmul/addmm/... take no cast: ``out``
must already have the result's dtype. outer, addr and kron are elementwise and cast as ``mul``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

rng = np.random.default_rng(11)
A, B, V = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(3)
C = rng.standard_normal((2, 4))

PRODUCTS = {
    "matmul": lambda lib, t, out: lib.matmul(t(A), t(B), out=out),
    "matmul_batched": lambda lib, t, out: lib.matmul(t(A).expand(5, 2, 3), t(B), out=out),
    "matmul_vectors": lambda lib, t, out: lib.matmul(t(V), t(V), out=out),
    "mm": lambda lib, t, out: lib.mm(t(A), t(B), out=out),
    "bmm": lambda lib, t, out: lib.bmm(t(A)[None], t(B)[None], out=out),
    "mv": lambda lib, t, out: lib.mv(t(A), t(V), out=out),
    "dot": lambda lib, t, out: lib.dot(t(V), t(V), out=out),
    "vdot": lambda lib, t, out: lib.vdot(t(V), t(V), out=out),
    "addmm": lambda lib, t, out: lib.addmm(t(C), t(A), t(B), beta=0.5, alpha=2, out=out),
    "addmv": lambda lib, t, out: lib.addmv(t(C[:, 0]), t(A), t(V), out=out),
    "baddbmm": lambda lib, t, out: lib.baddbmm(t(C)[None], t(A)[None], t(B)[None], out=out),
    "outer": lambda lib, t, out: lib.outer(t(V), t(V), out=out),
    "addr": lambda lib, t, out: lib.addr(t(np.eye(3)), t(V), t(V), alpha=3, out=out),
    "kron": lambda lib, t, out: lib.kron(t(A), t(V), out=out),
}


def _run(lib, fn, out_dtype, out_shape):
    """The product of float32 inputs written into an ``out`` of ``out_dtype``: (value, refusal)."""
    def as_tensor(x):
        return lib.tensor(x, dtype=lib.float32)

    out = lib.zeros(out_shape, dtype=getattr(lib, out_dtype))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the resize warning, checked apart
            result = fn(lib, as_tensor, out)
    except RuntimeError as error:
        return None, str(error), out
    assert result is out
    return result.numpy(), None, out


@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("out_dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("out_shape", [(0,), (7,)], ids=["empty", "resized"])
def test_out_matches_torch_in_value_dtype_and_refusal(name, out_dtype, out_shape):
    ours, our_error, our_out = _run(chainrule, PRODUCTS[name], out_dtype, out_shape)
    theirs, their_error, _ = _run(torch, PRODUCTS[name], out_dtype, out_shape)
    assert our_error == their_error
    if their_error is None:
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    else:  # refused before writing: out keeps its shape and zeros
        assert tuple(our_out.shape) == out_shape and not our_out.numpy().any()


def test_the_resize_warning_names_the_callers_line():
    a = chainrule.ones(2, 3)
    with pytest.warns(UserWarning, match="was resized since it had shape") as caught:
        chainrule.matmul(a, a.T, out=chainrule.empty(5))
    assert caught[0].filename == __file__


def test_out_refuses_a_recorded_product():
    x = chainrule.ones(3, requires_grad=True)
    out = chainrule.zeros(())
    with pytest.raises(RuntimeError, match=r"^matmul\(\): functions with out=\.\.\. arguments don't support"):
        chainrule.matmul(x, x, out=out)
    assert out.item() == 0.0
