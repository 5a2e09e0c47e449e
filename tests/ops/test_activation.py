"""Activations: forward and gradient vs torch.nn.functional, gradcheck and gradgradcheck in float64,
edge policy at the kinks, and error cases.

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/activation.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""

import numpy as np
import pytest

import chainrule
import chainrule.ops.activation as A

from .harness import (
    requires_torch,
)

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the oracle is optional
    torch = F = None


def _f(lib, name):
    """torch.nn.functional.<name> for torch, chainrule.ops.activation.<name> for chainrule."""
    return getattr(A if lib is chainrule else F, name)



# torch's values of the derivative at the kinks themselves
KINKS = [
    ("relu", {}, [-1.0, 0.0, 1.0]),
    ("leaky_relu", {"negative_slope": 0.1}, [-1.0, 0.0, 1.0]),
    ("relu6", {}, [0.0, 3.0, 6.0, 7.0]),
    ("hardtanh", {}, [-1.0, 0.0, 1.0]),
    ("elu", {"alpha": 0.7}, [0.0]),
    ("hardsigmoid", {}, [-3.0, 0.0, 3.0]),
    ("hardswish", {}, [-3.0, 0.0, 3.0]),
    ("softshrink", {}, [-0.5, 0.0, 0.5]),
    ("hardshrink", {}, [-0.5, 0.0, 0.5]),
    ("softplus", {"threshold": 1.0}, [1.0, 2.0]),
]


@requires_torch
@pytest.mark.parametrize("name,kwargs,values", KINKS, ids=[k[0] for k in KINKS])
def test_edge_policy_matches_torch(name, kwargs, values):
    ours = chainrule.tensor(values, requires_grad=True)
    theirs = torch.tensor(values, requires_grad=True)
    getattr(A, name)(ours, **kwargs).sum().backward()
    getattr(F, name)(theirs, **kwargs).sum().backward()
    assert ours.grad.tolist() == pytest.approx(theirs.grad.tolist())


def test_threshold_edge():
    x = chainrule.tensor([0.5, 1.0, 1.5], requires_grad=True)
    y = chainrule.threshold(x, 1.0, 9.0)
    y.sum().backward()
    assert y.tolist() == [9.0, 9.0, 1.5]
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "selu", "celu", "silu", "mish", "hardtanh",
                                  "relu6", "hardsigmoid", "hardswish"])
def test_inplace_variant(name):
    x = chainrule.tensor([-2.0, -0.5, 0.5, 2.0])
    expected = getattr(A, name)(x).tolist()
    out = getattr(A, name)(x, inplace=True)
    assert out is x and x.tolist() == pytest.approx(expected) and x._version == 1


def test_relu_inplace_method_and_graph():
    x = chainrule.tensor([-1.0, 2.0], requires_grad=True)
    y = x * 2
    y.relu_()
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 2.0]


def test_stable_for_large_inputs():
    x = chainrule.tensor([-1000.0, -50.0, 50.0, 1000.0], requires_grad=True)
    ls = A.logsigmoid(x)
    sp = A.softplus(x)
    (ls.sum() + sp.sum() + A.mish(x).sum() + A.silu(x).sum()).backward()
    assert np.isfinite(ls.detach().numpy()).all() and ls.tolist()[0] == -1000.0
    assert np.isfinite(sp.detach().numpy()).all() and sp.tolist()[-1] == 1000.0
    assert np.isfinite(x.grad.numpy()).all()


def test_keeps_dtype():
    for name in ["relu", "gelu", "silu", "elu", "softplus", "logsigmoid", "hardswish"]:
        assert getattr(A, name)(chainrule.ones(3, dtype=chainrule.float64)).dtype is chainrule.float64
        assert getattr(A, name)(chainrule.ones(3)).dtype is chainrule.float32
    assert A.relu(chainrule.tensor([-1, 2])).dtype is chainrule.int64


def test_backward_records_nothing_without_create_graph():
    x = chainrule.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y = A.gelu(x)
    (g,) = chainrule.autograd.grad(y.sum(), x)
    assert not g.requires_grad
    (g2,) = chainrule.autograd.grad(A.gelu(x).sum(), x, create_graph=True)
    assert g2.requires_grad


def _raises_like_torch(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn(chainrule, A)
    if torch is not None:
        with pytest.raises(exc):
            fn(torch, F)


ERRORS = [
    ("glu_odd", lambda lib, f: f.glu(lib.ones(3, 3), 1), RuntimeError, "Halving dimension must be even"),
    ("glu_dim", lambda lib, f: f.glu(lib.ones(3, 4), 2), IndexError, "Dimension out of range"),
    ("gelu_approx", lambda lib, f: f.gelu(lib.ones(3), approximate="fast"), RuntimeError, "approximate argument"),
    ("prelu_channels", lambda lib, f: f.prelu(lib.ones(2, 4), lib.ones(3)), RuntimeError, "Mismatch of parameter numbers"),
    ("softshrink_negative", lambda lib, f: f.softshrink(lib.ones(3), -1.0), RuntimeError, "lambda must be in range"),
    ("hardtanh_bounds", lambda lib, f: f.hardtanh(lib.ones(3), 2.0, 1.0), ValueError, "min_val cannot be greater"),
    ("relu_leaf_inplace", lambda lib, f: f.relu(lib.ones(3, requires_grad=True), inplace=True), RuntimeError, "leaf Variable"),
]


@pytest.mark.parametrize("fn,exc,match", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(fn, exc, match):
    _raises_like_torch(fn, exc, match)


def test_rrelu_training_draws_slopes_in_range():
    chainrule.manual_seed(0)
    x = chainrule.tensor([-1.0] * 200 + [2.0], requires_grad=True)
    y = chainrule.rrelu(x, 0.1, 0.3, training=True)
    y.sum().backward()
    slopes = -y.detach().numpy()[:200]
    assert (slopes >= 0.1).all() and (slopes <= 0.3).all() and slopes.std() > 0
    np.testing.assert_allclose(x.grad.numpy()[:200], slopes, rtol=1e-6)
    assert y.tolist()[-1] == 2.0 and x.grad.tolist()[-1] == 1.0
