"""Views in another dtype than their base (view_as_real, view_as_complex, .real, .imag) after an
in-place write to the base, a sibling view or the view itself: their graphs are regenerated
from the base's as torch regenerates them (stale graphs gave silent wrong gradients before), and
a bit reinterpretation (``view(dtype)``) stays outside autograd, as torch's. torch 2.13 is the
oracle: the loss and every gradient must equal its own on the same program."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

# (name, view of h); names starting "c:" view a complex h built from a, the others a real h = 2a
_VIEWS = [
    ("c:view_as_real", lambda lib, h: lib.view_as_real(h)),
    ("c:view_as_real[0]", lambda lib, h: lib.view_as_real(h)[0]),
    ("c:view_as_real.transpose", lambda lib, h: lib.view_as_real(h).transpose(0, 2)),
    ("c:real", lambda lib, h: h.real),
    ("c:imag", lambda lib, h: h.imag),
    ("c:t().imag", lambda lib, h: h.t().imag),
    ("c:[1].imag", lambda lib, h: h[1].imag),
    ("view_as_complex", lambda lib, h: lib.view_as_complex(h.reshape(2, 2, 2))),
    ("view_as_complex[:, 1]", lambda lib, h: lib.view_as_complex(h.view(2, 2, 2))[:, 1]),
    ("c:view_as_complex(view_as_real)", lambda lib, h: lib.view_as_complex(lib.view_as_real(h))),
]
_WRITES = ["base", "sibling setitem", "view", "view by a graph value", "view setitem"]


def _program(lib, a, z, name, make_view, write):
    if name.startswith("c:"):
        h = lib.complex(a[:, :2] * 1.0, a[:, 2:] * 2.0)
    else:
        h = a * 2
    view = make_view(lib, h)
    if write == "base":
        h.mul_(3)
    elif write == "sibling setitem":
        h[1] = h[0] * 2
    elif write == "view":
        view.mul_(3)
    elif write == "view by a graph value":
        view.mul_(z[1])
    else:
        view[0] = lib.complex(z[0], z[1]) if view.is_complex() else z[0] * 2
    parts = lib.view_as_real(view) if view.is_complex() else view
    return (parts * parts.cos()).sum() + (h.abs() ** 2).sum(), view


def _run(lib, name, make_view, write):
    data = np.arange(1, 9, dtype=np.float64).reshape(2, 4) / 10
    a = lib.tensor(data, requires_grad=True)
    z = lib.tensor(data[0] * 3, requires_grad=True)
    loss, view = _program(lib, a, z, name, make_view, write)
    loss.backward()
    z_grad = None if z.grad is None else z.grad.numpy()
    return loss.item(), a.grad.numpy(), z_grad, view.requires_grad, view.dtype.is_complex


@pytest.mark.parametrize("write", _WRITES)
@pytest.mark.parametrize("name, make_view", _VIEWS, ids=[v[0] for v in _VIEWS])
def test_a_view_in_another_dtype_carries_the_base_s_new_graph_as_torch(name, make_view, write):
    ours, theirs = _run(cr, name, make_view, write), _run(torch, name, make_view, write)
    for mine, torchs in zip(ours, theirs):
        if mine is None or torchs is None:
            assert mine is None and torchs is None
        else:
            np.testing.assert_allclose(mine, torchs, rtol=1e-12)


@pytest.mark.parametrize("write", ["base", "view by a graph value", "view setitem"])
@pytest.mark.parametrize("index", [1, 3, 8])
def test_a_view_in_another_dtype_after_a_write_passes_gradcheck(index, write):
    name, make_view = _VIEWS[index]
    rng = np.random.default_rng(index)
    a = cr.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    z = cr.tensor(rng.standard_normal(4), requires_grad=True)
    assert cr.autograd.gradcheck(lambda a, z: _program(cr, a, z, name, make_view, write)[0], (a, z))


def _reinterpreted(lib, dtype_name, write):
    data = np.arange(1, 9, dtype=np.float64).reshape(2, 4) / 10
    a = lib.tensor(data, requires_grad=True)
    h = a * 2
    bits = h.view(getattr(lib, dtype_name))
    if write == "view":
        bits.mul_(3)
    else:
        h.mul_(3)
    loss = (h * h).sum()
    loss.backward()
    return bits.requires_grad, bits.grad_fn is None, h._version, a.grad.numpy()


@pytest.mark.parametrize("write", ["base", "view"])
@pytest.mark.parametrize("dtype_name", ["int64", "float32"])
def test_a_bit_reinterpretation_is_written_as_a_plain_tensor_as_torch(dtype_name, write):
    # torch: view(dtype) is a view outside autograd; writing it changes h's values, not its graph
    ours, theirs = _reinterpreted(cr, dtype_name, write), _reinterpreted(torch, dtype_name, write)
    assert ours[:3] == theirs[:3]
    np.testing.assert_array_equal(ours[3], theirs[3])


def test_a_bit_reinterpretation_written_with_a_graph_value_takes_its_own_graph_as_torch():
    nodes = []
    for lib in (cr, torch):
        h = lib.ones(2, 4, dtype=lib.float64, requires_grad=True) * 1
        bits = h.view(lib.float32)
        w = lib.ones(8, requires_grad=True)
        bits.mul_(w)
        nodes.append((type(bits.grad_fn).__name__, bits.requires_grad, type(h.grad_fn).__name__, h._version))
    assert nodes[0] == nodes[1]


def _reinterpretation(lib, dtype_name, requires_grad):
    x = lib.ones(4, requires_grad=requires_grad) * 1 if requires_grad else lib.ones(4)
    v = x.view(getattr(lib, dtype_name))
    w = v.view(2, -1)
    with lib.no_grad():
        v.add_(0)
    return (v._base is None, v._is_view(), v.requires_grad, v.grad_fn is None, v.data_ptr() == x.data_ptr(),
            x._version, w._base is v)


@pytest.mark.parametrize("dtype_name", ["float32", "int32", "float16"])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_a_bit_reinterpretation_has_no_base_as_torch(dtype_name, requires_grad):
    # even the same dtype: shared memory and version counter, but no view to autograd
    assert _reinterpretation(cr, dtype_name, requires_grad) == _reinterpretation(torch, dtype_name, requires_grad)
