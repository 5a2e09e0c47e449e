"""Lane progDT (session 50): found by the ``dimenet_directional_message`` program's probes.

``out=`` under autograd is refused with the name torch's autograd layer gives: the ATen kernel the
call reaches (``aten::arange``, ``linalg_vector_norm``, ``_linalg_solve_ex``, ``mul`` for ``outer``,
``cat`` for ``hstack``...), and for ``arange``/``range`` before a wrongly sized ``out`` is resized
(which would raise "cannot resize variables that require grad" instead); the unary special ops
(``special.sinc``, ``special.psi``...) name themselves instead of "op"."""

from __future__ import annotations

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _matrix(lib):
    return lib.eye(3) + 0.1 * lib.ones(3, 3)


# name: call given the library and a maker of zeros that require grad
CASES = {
    "arange": lambda L, z: L.arange(3, out=z(3)),
    "arange other count": lambda L, z: L.arange(5, out=z(3)),
    "arange start step": lambda L, z: L.arange(0, 3, 1, out=z(3)),
    "range": lambda L, z: L.range(0, 2, out=z(3)),
    "range other count": lambda L, z: L.range(0, 4, out=z(2)),
    "diag of a matrix": lambda L, z: L.diag(_matrix(L), out=z(3)),
    "diag of a vector": lambda L, z: L.diag(L.ones(3), out=z(3, 3)),
    "linalg.solve": lambda L, z: L.linalg.solve(_matrix(L), L.ones(3), out=z(3)),
    "linalg.solve batched": lambda L, z: L.linalg.solve(_matrix(L)[None], L.ones(1, 3, 1), out=z(1, 3, 1)),
    "linalg.vector_norm": lambda L, z: L.linalg.vector_norm(_matrix(L), dim=0, out=z(3)),
    "norm dim": lambda L, z: L.norm(_matrix(L), dim=0, out=z(3)),
    "norm inf dim": lambda L, z: L.norm(_matrix(L), float("inf"), dim=0, out=z(3)),
    "linalg.inv": lambda L, z: L.linalg.inv(_matrix(L), out=z(3, 3)),
    "inverse": lambda L, z: L.inverse(_matrix(L), out=z(3, 3)),
    "linalg.inv_ex": lambda L, z: L.linalg.inv_ex(_matrix(L), out=(z(3, 3), L.empty((), dtype=L.int32))),
    "linalg.cholesky": lambda L, z: L.linalg.cholesky(_matrix(L), out=z(3, 3)),
    "linalg.cholesky_ex": lambda L, z: L.linalg.cholesky_ex(_matrix(L), out=(z(3, 3), L.empty((), dtype=L.int32))),
    "linalg.pinv": lambda L, z: L.linalg.pinv(_matrix(L), out=z(3, 3)),
    "linalg.multi_dot": lambda L, z: L.linalg.multi_dot([_matrix(L), _matrix(L), _matrix(L)], out=z(3, 3)),
    "chain_matmul": lambda L, z: L.chain_matmul(_matrix(L), _matrix(L), out=z(3, 3)),
    "linalg.eigvalsh": lambda L, z: L.linalg.eigvalsh(_matrix(L), out=z(3)),
    "linalg.eigh": lambda L, z: L.linalg.eigh(_matrix(L), out=(z(3), z(3, 3))),
    "linalg.svdvals": lambda L, z: L.linalg.svdvals(_matrix(L), out=z(3)),
    "linalg.svd": lambda L, z: L.linalg.svd(_matrix(L), out=(z(3, 3), z(3), z(3, 3))),
    "linalg.qr": lambda L, z: L.linalg.qr(_matrix(L), out=(z(3, 3), z(3, 3))),
    "linalg.eig": lambda L, z: L.linalg.eig(_matrix(L), out=(z(3).to(L.complex64), z(3, 3).to(L.complex64))),
    "linalg.lu_factor": lambda L, z: L.linalg.lu_factor(_matrix(L), out=(z(3, 3), L.empty(3, dtype=L.int32))),
    "linalg.lu_solve": lambda L, z: L.linalg.lu_solve(_matrix(L), L.arange(1, 4, dtype=L.int32), _matrix(L),
                                                      out=z(3, 3)),
    "linalg.ldl_factor": lambda L, z: L.linalg.ldl_factor(_matrix(L), out=(z(3, 3), L.empty(3, dtype=L.int32))),
    "linalg.solve_triangular": lambda L, z: L.linalg.solve_triangular(_matrix(L), L.ones(3, 1), upper=True,
                                                                      out=z(3, 1)),
    "linalg.householder_product": lambda L, z: L.linalg.householder_product(_matrix(L), L.ones(2), out=z(3, 3)),
    "linalg.vecdot": lambda L, z: L.linalg.vecdot(_matrix(L), _matrix(L), out=z(3)),
    "cross": lambda L, z: L.cross(_matrix(L), _matrix(L), dim=1, out=z(3, 3)),
    "linalg.cross": lambda L, z: L.linalg.cross(_matrix(L), _matrix(L), out=z(3, 3)),
    "outer": lambda L, z: L.outer(L.ones(3), L.ones(3), out=z(3, 3)),
    "ger": lambda L, z: L.ger(L.ones(3), L.ones(3), out=z(3, 3)),
    "kron": lambda L, z: L.kron(L.ones(1), L.ones(3), out=z(3)),
    "special.expit": lambda L, z: L.special.expit(_matrix(L), out=z(3, 3)),
    "special.sinc": lambda L, z: L.special.sinc(_matrix(L), out=z(3, 3)),
    "special.psi": lambda L, z: L.special.psi(_matrix(L), out=z(3, 3)),
    "lgamma": lambda L, z: L.lgamma(_matrix(L), out=z(3, 3)),
    "hstack": lambda L, z: L.hstack([L.ones(3)], out=z(3)),
    "vstack": lambda L, z: L.vstack([L.ones(3)], out=z(1, 3)),
    "row_stack": lambda L, z: L.row_stack([L.ones(3)], out=z(1, 3)),
    "dstack": lambda L, z: L.dstack([L.ones(3)], out=z(1, 3, 1)),
    "column_stack": lambda L, z: L.column_stack([L.ones(3)], out=z(3, 1)),
    "float_power": lambda L, z: L.float_power(L.ones(3), 2, out=z(3).double()),
    "true_divide": lambda L, z: L.true_divide(L.ones(3), 2, out=z(3)),
    "negative": lambda L, z: L.negative(L.ones(3), out=z(3)),
    "linspace": lambda L, z: L.linspace(0, 1, 3, out=z(3)),
    "add": lambda L, z: L.add(L.ones(3), L.ones(3), out=z(3)),
    "linalg.eigvals": lambda L, z: L.linalg.eigvals(L.eye(3), out=L.zeros(3, dtype=L.complex64, requires_grad=True)),
    "histogram hist": lambda L, z: L.histogram(L.tensor([0.0, 1.0, 2.0]), 2, out=(z(2), L.zeros(3))),
    "histogram bin_edges": lambda L, z: L.histogram(L.tensor([0.0, 1.0, 2.0]), 2, out=(L.zeros(2), z(3))),
}


def _refusal(lib, call):
    def zeros_requiring_grad(*shape):
        return lib.zeros(*shape, requires_grad=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.range's deprecation, torch.chain_matmul's)
        try:
            call(lib, zeros_requiring_grad)
        except Exception as error:  # noqa: BLE001 (the refusal is what is compared)
            return type(error).__name__, str(error)
    return None


@pytest.mark.parametrize("name", list(CASES))
def test_out_under_autograd_refusal_names_torchs_kernel(name):
    expected = _refusal(torch, CASES[name])
    assert expected is not None and "functions with out=... arguments" in expected[1]
    assert _refusal(chainrule, CASES[name]) == expected


@pytest.mark.parametrize("name", ["arange", "arange other count", "range", "special.sinc", "special.psi",
                                  "linalg.solve", "diag of a vector"])
def test_the_same_calls_write_out_without_autograd(name):
    def zeros(lib):
        return lambda *shape: lib.zeros(*shape)

    results = []
    for lib in (torch, chainrule):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made = CASES[name](lib, zeros(lib))
        made = made if isinstance(made, tuple) else (made,)
        results.append([m.numpy() for m in made])
    for mine, theirs in zip(*results[::-1]):
        assert mine.shape == theirs.shape and mine.dtype.name == theirs.dtype.name
        assert (abs(mine - theirs) <= 1e-6 * (1 + abs(theirs))).all()


@pytest.mark.parametrize("shape", [(3,), (), (2, 3, 3), (3, 3, 2)])
def test_fill_diagonal_refusals_are_torchs_words(shape):
    def refusal(lib):
        with pytest.raises(RuntimeError) as caught:
            lib.zeros(shape).fill_diagonal_(1)
        return str(caught.value)

    assert refusal(chainrule) == refusal(torch)


@pytest.mark.parametrize("op", ["complex", "polar"])
def test_complex_and_polar_refuse_a_grad_out_before_its_dtype(op):
    def refusal(lib):
        with pytest.raises(RuntimeError) as caught:
            getattr(lib, op)(lib.ones(3), lib.ones(3), out=lib.zeros(3, requires_grad=True))
        return str(caught.value)

    assert refusal(chainrule) == refusal(torch)


@pytest.mark.parametrize("how", ["linalg.vector_norm", "norm", "method"])
@pytest.mark.parametrize("rows", [[[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
def test_two_norm_double_backward_at_a_zero_row_is_torchs(how, rows):
    # torch's norm_backward, grad * (x / norm).masked_fill_(norm == 0, 0), differentiated again at a zero
    # norm gives nan (0 * (-x / 0**2)); the first gradient is 0 there. DimeNet's |cross| at collinear atoms.
    def grads(lib):
        x = lib.tensor(rows, dtype=lib.float64, requires_grad=True)
        if how == "linalg.vector_norm":
            y = lib.linalg.vector_norm(x, dim=-1)
        elif how == "norm":
            y = lib.norm(x, dim=-1)
        else:
            y = x.norm(dim=-1)
        (first,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
        (second,) = lib.autograd.grad((first * first).sum(), x)
        return first.detach().numpy(), second.numpy()

    for mine, theirs in zip(grads(chainrule), grads(torch)):
        assert mine.shape == theirs.shape
        assert ((mine == theirs) | (mine != mine) & (theirs != theirs)).all()


@pytest.mark.parametrize("input_requires_grad", [False, True])
def test_histc_writes_an_out_that_requires_grad_as_torch(input_requires_grad):
    # histc has no derivative formula: torch's autograd never sees it, so its out may require grad
    def histogram(lib):
        out = lib.zeros(3, requires_grad=True)
        made = lib.histc(lib.tensor([0.0, 1.0, 2.0, 2.0], requires_grad=input_requires_grad), 3, out=out)
        return made is out, made.tolist(), made.requires_grad, made.grad_fn is None, made.is_leaf

    assert histogram(chainrule) == histogram(torch)
