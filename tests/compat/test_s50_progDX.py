"""Lane progDX (session 50): what the Soft MoE / FiBiNET / DNC corpus programs' probes found.

The 2-norm's backward at a zero vector is taken as 0 (torch's choice); differentiated again, torch's
``grad * (x / norm).masked_fill_(norm == 0, 0)`` gives nan there (the division's backward meets
0 / 0), and so do everything built on it (``torch.norm``, ``linalg.vector_norm``/``norm``/
``matrix_norm('fro')``, ``F.normalize``, ``F.cosine_similarity``). chainrule guarded the denominator
and gave 0: a second derivative torch does not give.
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_UPSTREAM = np.array([[0.3, 0.7, -0.2], [1.1, 1.3, 0.4], [0.5, -0.6, 0.9]])
_INPUTS = {
    "zero_row": np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 1.0], [1.0, 0.0, -2.0]]),
    "all_zero": np.zeros((3, 3)),
    "no_zero_norm": np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 1.0], [1.0, 0.0, -2.0]]),
}
_NORMS = {
    "norm_dim1": lambda lib, a: lib.norm(a, 2, 1, keepdim=True),
    "norm_all": lambda lib, a: lib.norm(a).reshape(1),
    "tensor_norm": lambda lib, a: a.norm(p=2, dim=-1),
    "vector_norm_dim0": lambda lib, a: lib.linalg.vector_norm(a, dim=0),
    "linalg_norm": lambda lib, a: lib.linalg.norm(a, dim=1),
    "matrix_norm_fro": lambda lib, a: lib.linalg.matrix_norm(a[None]).reshape(1),
    "normalize": lambda lib, a: lib.nn.functional.normalize(a, dim=1),
    "cosine_similarity": lambda lib, a: lib.nn.functional.cosine_similarity(
        a, lib.tensor(_UPSTREAM, dtype=a.dtype), dim=1),
}


def _second_derivative(lib, fn, values, dtype):
    a = lib.tensor(values, dtype=getattr(lib, dtype), requires_grad=True)
    out = fn(lib, a)
    weights = lib.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(tuple(out.shape)), dtype=out.dtype)
    (first,) = lib.autograd.grad((out * weights).sum(), a, create_graph=True)
    (second,) = lib.autograd.grad((first * lib.tensor(_UPSTREAM, dtype=first.dtype)).sum(), a)
    return out.detach().numpy(), first.detach().numpy(), second.numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(_INPUTS))
@pytest.mark.parametrize("name", sorted(_NORMS))
def test_two_norm_second_derivative_at_zero_vector_as_torch(name, case, dtype):
    expected = _second_derivative(torch, _NORMS[name], _INPUTS[case], dtype)
    got = _second_derivative(chainrule, _NORMS[name], _INPUTS[case], dtype)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert np.array_equal(np.isnan(g), np.isnan(e))


def test_two_norm_first_derivative_at_zero_vector_stays_zero_and_quiet():
    # the unguarded 0 / 0 of the masked branch must neither leak into the gradient nor warn
    import warnings

    for lib in (torch, chainrule):
        a = lib.tensor(_INPUTS["zero_row"], requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lib.norm(a, 2, 1).sum().backward()
        np.testing.assert_array_equal(a.grad[0].numpy(), np.zeros(3))
        assert np.isfinite(a.grad.numpy()).all()


def test_two_norm_gradcheck_away_from_zero():
    x = chainrule.tensor(np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 1.0]]), requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.norm(t, 2, 1), (x,))
    assert chainrule.autograd.gradgradcheck(lambda t: chainrule.norm(t, 2, 1), (x,))
