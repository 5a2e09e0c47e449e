"""Leaf gradient layouts and pow's gradient bits (session 55, lane mendDC): mean's gradient divided
after the expansion, two gradients summed in the first one's strides, unary ops' size-1 strides,
pow's rule in torch's order."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _permuted(lib, shape, perm):
    # a leaf whose size-1 dims' strides are not a fresh tensor's
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 7
    return lib.tensor(data).permute(*perm).detach().requires_grad_()


LEAF_CASES = [
    # (mean's gradient: torch divides the expanded gradient into a fresh tensor it then takes over)
    ("mean_dim", (3, 1), (1, 0), lambda x: x.mean(-1).sum()),
    ("mean_dim", (1, 2), (1, 0), lambda x: x.mean(-1).sum()),  # (a mean over a size-1 dim divides by 1)
    ("mean_dim", (3, 3, 2, 1), (3, 2, 1, 0), lambda x: x.mean(-1).sum()),
    # (x * x: the two gradients summed in the first one's strides, torch's in-place InputBuffer sum)
    ("square", (1, 1, 1, 2), (3, 2, 1, 0), lambda x: (x * x).sum()),
    ("square", (3, 1, 2, 2), (2, 1, 3, 0), lambda x: (x * x).sum()),
    # (pow(x, 2)'s rule: 2 * x.pow(1), whose pow gives a row-major x a fresh row-major result)
    ("permuted_pow", (1, 4), (0, 1), lambda x: (x.permute(1, 0).contiguous() ** 2).sum()),
    ("permuted_pow", (4, 1), (0, 1), lambda x: (x.permute(1, 0).contiguous() ** 2).sum()),
    ("permuted_pow", (1, 2, 1, 1), (0, 1, 2, 3), lambda x: (x.permute(3, 2, 1, 0).contiguous() ** 2).sum()),
]


@pytest.mark.parametrize("name, shape, perm, loss", LEAF_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LEAF_CASES)])
def test_a_leaf_gradient_has_torchs_strides(name, shape, perm, loss):
    # each differed from torch's .grad strides (the probe over test_s54_mendCZ's leaves: 13 of 282
    # and 19 of 283 differing -> 0 and 1)
    grads = []
    for lib in (torch, chainrule):
        x = _permuted(lib, shape, perm)
        loss(x).backward()
        grads.append((x.stride(), x.grad.stride(), x.grad.numpy()))
    (torch_leaf, torch_strides, want), (leaf, strides, got) = grads
    assert leaf == torch_leaf
    assert strides == torch_strides
    np.testing.assert_array_equal(got, want)


UNARY = {"neg": lambda x: -x, "abs": lambda x: x.abs(), "exp": lambda x: x.exp(), "pow3": lambda x: x ** 3}


@pytest.mark.parametrize("op", list(UNARY))
def test_a_unary_op_keeps_a_dense_inputs_size_1_strides(op):
    # TensorIterator's fast set-up: a dense input's strides, size-1 dims' included (a number in the
    # op, as number_layout assumed, would sort them among the others); neg and abs followed NumPy
    for shape, perm in (((2, 1, 2), (1, 2, 0)), ((1, 2, 3, 1), (0, 2, 1, 3)), ((1, 2, 3, 1), (2, 3, 0, 1))):
        strides = []
        for lib in (torch, chainrule):
            x = _permuted(lib, shape, perm).detach()
            strides.append((x.stride(), UNARY[op](x).stride()))
        assert strides[1] == strides[0], (shape, perm)
    x = [lib.tensor(np.ones((1, 3, 2, 1), np.float32)).contiguous(memory_format=lib.channels_last)
         for lib in (torch, chainrule)]
    assert UNARY[op](x[1]).stride() == UNARY[op](x[0]).stride()


def _pow_grads(lib, base, exponent, upstream, dtype):
    b = lib.tensor(base.astype(dtype), requires_grad=True)
    e = lib.tensor(exponent.astype(dtype), requires_grad=True)
    (b ** e).backward(lib.tensor(upstream.astype(dtype)))
    return b.grad.numpy(), e.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_gradients_multiply_in_torchs_order(dtype):
    # torch's pow_backward_self is grad * (e * x.pow(e - 1)) and pow_backward_exponent grad * where(.., 0,
    # result * log(x)); chainrule multiplied grad by e (by the result) first: base gradient 2 of 40
    # float64 (1 float32) and exponent gradient 9 of 40 float64 bytes differed. Integer bases and exponents:
    # x.pow(e - 1) is exact in every pow kernel, so only the order of the products shows
    rng = np.random.default_rng(5)
    base = rng.choice([3.0, 5.0, 6.0, 7.0, -3.0, 0.0, 2.0, 4.0], (40,))
    exponent = rng.choice([0.0, 1.0, 2.0, 3.0], (40,))
    upstream = rng.standard_normal(40)
    (want_base, want_exponent), (got_base, got_exponent) = (
        _pow_grads(lib, base, exponent, upstream, dtype) for lib in (torch, chainrule))
    assert got_base.tobytes() == want_base.tobytes()
    if dtype == np.float64 and torch.backends.cpu.get_cpu_capability() == "AVX2":
        # (log's last bit is the kernel's: NumPy's and torch's float64 log agree on these bases with AVX2,
        # as measured; float32's log differs from torch's SLEEF in a few of them)
        assert got_exponent.tobytes() == want_exponent.tobytes()
    else:
        np.testing.assert_allclose(got_exponent, want_exponent, rtol=1e-6)


def _arrays():
    a = np.arange(24, dtype=np.float32)
    return {
        "size1_transposed": a.reshape(6, 4)[:1].T,  # strides (4, 16): torch keeps (1, 4)
        "newaxis": a.reshape(4, 6)[:, None, :],  # a 0 stride on the size-1 dim, kept
        "newaxis_transposed": a.reshape(4, 6).T[None],
        "broadcast": np.broadcast_to(a[:4], (3, 4)),  # NumPy's copy came out column-major
        "size1_row": a[:6].reshape(6, 1).T,
        "transposed": a.reshape(4, 6).T,
        "sliced": a.reshape(4, 6)[:, ::2],
    }


@pytest.mark.parametrize("dtype", [None, "float64"])
def test_tensor_of_an_ndarray_copies_it_as_torch_does(dtype):
    # torch.tensor(ndarray) clones from_numpy's view with preserve_format; 5 of 23 arrays differed
    for name, array in _arrays().items():
        made = [lib.tensor(array, dtype=None if dtype is None else getattr(lib, dtype)) for lib in (torch, chainrule)]
        assert made[1].stride() == made[0].stride(), name
        assert made[1].is_contiguous() == made[0].is_contiguous(), name
        np.testing.assert_array_equal(made[1].numpy(), made[0].numpy())
