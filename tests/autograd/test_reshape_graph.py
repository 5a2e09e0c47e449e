"""reshape of a tensor whose strides cannot express the new shape copies it, and records torch's
graph for that: UnsafeViewBackward0 over CloneBackward0 (a contiguous clone, viewed), not a view
of the input; a reshape that can view records ViewBackward0 (or _reshape_alias's) and is a view."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

_CASES = [
    ("transposed, must copy", lambda x: x.transpose(0, 1), (2, 12)),
    ("sliced and transposed, must copy", lambda x: x[:, :, ::2].transpose(0, 2), (-1,)),
    ("sliced, views", lambda x: x[:, :, ::2], (-1,)),
    ("contiguous, views", lambda x: x * 1, (6, 4)),
    ("transposed, views", lambda x: x.transpose(1, 2), (3, 2, 4)),
]


def _describe(lib, make, shape):
    x = lib.tensor(np.arange(24.0).reshape(3, 2, 4), requires_grad=True)
    y = make(x).reshape(*shape)
    top = y.grad_fn
    saved = sorted((k, tuple(getattr(top, k))) for k in dir(top) if k.startswith("_saved_self_sym_sizes"))
    chain, node = [], top
    while node is not None and type(node).__name__ != "AccumulateGrad":  # the node names down to x
        chain.append(type(node).__name__)
        node = node.next_functions[0][0]
    (y * y.sin()).sum().backward()
    return chain, saved, y._is_view(), y.is_contiguous(), y.tolist(), x.grad.numpy().round(12).tolist()


@pytest.mark.parametrize("name, make, shape", _CASES, ids=[c[0] for c in _CASES])
def test_reshape_records_torch_s_graph(name, make, shape):
    assert _describe(cr, make, shape) == _describe(torch, make, shape)


def test_reshape_that_copies_passes_gradcheck():
    x = cr.tensor(np.random.default_rng(0).standard_normal((3, 2, 4)), requires_grad=True)
    assert cr.autograd.gradgradcheck(lambda x: (x.transpose(0, 1).reshape(2, 12) ** 3).sum(), (x,))
