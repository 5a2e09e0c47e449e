"""Small defects found by session 50's lanes (session 50, mendBY): warnings torch gives once per
call site shown once (no op resets the callers' warning registries), ..."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule
from chainrule import _config

torch = pytest.importorskip("torch")


# --- 1. a once-per-site warning is shown once ---------------------------------------------------

def _shown_in_loop(lib, call, times: int = 20) -> list[str]:
    """The warnings Python's default filter shows for ``times`` calls of ``call(lib)`` from one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(times):
            call(lib)
    return [str(w.message) for w in caught]


_ONCE_PER_SITE = {
    "std_mean": lambda lib: lib.std_mean(lib.ones(1, dtype=lib.float64)),
    "var": lambda lib: lib.var(lib.ones(1)),
    "std": lambda lib: lib.std(lib.ones(2, 1), dim=1),
    "var_mean": lambda lib: lib.var_mean(lib.ones(3), correction=3),
    "Tensor.var": lambda lib: lib.ones(1).var(),
    "Tensor.resize_as": lambda lib: lib.ones(4).resize_as(lib.ones(2, 2)),
    "Tensor.resize": lambda lib: lib.ones(4).resize(2, 2),
}


@pytest.mark.parametrize("name", sorted(_ONCE_PER_SITE))
def test_a_warning_from_one_line_is_shown_as_often_as_torch_shows_it(name):
    call = _ONCE_PER_SITE[name]
    ours, theirs = _shown_in_loop(chainrule, call), _shown_in_loop(torch, call)
    assert len(theirs) == 1
    assert ours == theirs


@pytest.fixture
def filter_mutations(monkeypatch):
    """How often the warnings filters change (catch_warnings, simplefilter and filterwarnings each bump
    the filters' version, which empties every caller's once-per-line registry)."""
    count = [0]
    mutated = warnings._filters_mutated

    def counting():
        count[0] += 1
        mutated()

    monkeypatch.setattr(warnings, "_filters_mutated", counting)
    return count


@pytest.mark.parametrize("name", ["std_mean", "var", "Tensor.resize_as"])
def test_the_op_leaves_the_warnings_filters_alone(name, filter_mutations):
    call = _ONCE_PER_SITE[name]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("default")
        before = filter_mutations[0]
        call(chainrule)
        call(chainrule)
        assert filter_mutations[0] == before


def test_an_empty_variance_is_still_nan_filled_and_quiet():
    for dims, keepdim in [((0,), False), ((0, 1), True), ((1,), False)]:
        x = np.zeros((0, 3), np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = chainrule.var(chainrule.from_numpy(x), dim=dims, keepdim=keepdim)
            theirs = torch.var(torch.from_numpy(x), dim=dims, keepdim=keepdim)
        assert [str(w.message) for w in caught if "Mean of empty slice" in str(w.message)] == []
        assert ours.dtype == chainrule.float32 and tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_sparse_indices_leave_the_filters_alone_unless_complex(filter_mutations):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("default")
        before = filter_mutations[0]
        chainrule.sparse_coo_tensor(chainrule.tensor([[0, 1]]), chainrule.tensor([1.0, 2.0]), (2,))
        assert filter_mutations[0] == before
    complex_indices = chainrule.sparse_coo_tensor(chainrule.tensor([[0j, 1 + 1j]]), chainrule.tensor([1.0, 2.0]))
    assert complex_indices._indices().tolist() == [[0, 1]]


def test_warn_once_still_warns_once_per_process():
    message = ("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument. "
               "(Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/TensorShape.cpp:4324.)")
    had = {m for m in _config._warned_once if m.startswith("torch.meshgrid")}
    _config._warned_once.difference_update(had)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            for _ in range(5):
                chainrule.meshgrid(chainrule.ones(2), chainrule.ones(3))
            chainrule.meshgrid(chainrule.ones(2), chainrule.ones(3))  # another line: still not again
        shown = [str(w.message) for w in caught if str(w.message).startswith("torch.meshgrid")]
        assert len(shown) == 1 and shown[0].split(" (Triggered")[0] == message.split(" (Triggered")[0]
    finally:
        _config._warned_once.update(had)


# --- 3. out= of torch's composite ops is a differentiable copy ----------------------------------

_COMPOSITE_OUT = {
    "tensordot": (lambda lib, a, out: lib.tensordot(a, a, dims=1, out=out), (3, 3)),
    "inner": (lambda lib, a, out: lib.inner(a, a, out=out), (3, 3)),
    "special.ndtr": (lambda lib, a, out: lib.special.ndtr(a, out=out), (3, 3)),
    "linalg.tensorinv": (lambda lib, a, out: lib.linalg.tensorinv(a, ind=1, out=out), (3, 3)),
    "linalg.tensorsolve": (lambda lib, a, out: lib.linalg.tensorsolve(a, a[0], out=out), (3,)),
    "linalg.cond": (lambda lib, a, out: lib.linalg.cond(a, out=out), ()),
    "linalg.norm": (lambda lib, a, out: lib.linalg.norm(a, out=out), ()),
    "linalg.matrix_norm nuc": (lambda lib, a, out: lib.linalg.matrix_norm(a, "nuc", out=out), ()),
    "norm nuc": (lambda lib, a, out: lib.norm(a, p="nuc", out=out), ()),
}
_NATIVE_OUT = {  # torch's own out= kernels: refused under autograd, whatever requires grad
    "norm fro": (lambda lib, a, out: lib.norm(a, p="fro", out=out), ()),
    "kron": (lambda lib, a, out: lib.kron(a, a, out=out), (9, 9)),
    "linalg.vector_norm": (lambda lib, a, out: lib.linalg.vector_norm(a, out=out), ()),
}
_MATRIX = np.array([[3.0, 0.5, -1.0], [0.25, 2.5, 0.75], [-0.5, 1.0, 4.0]])


def _out_call(lib, name, table, input_grad: bool, out_kind: str):
    """(error type and message, or None; out's values; input's gradient) of one out= call."""
    call, shape = table[name]
    a = lib.tensor(_MATRIX, requires_grad=input_grad)
    out = lib.zeros(shape, dtype=lib.float64, requires_grad=out_kind != "plain")
    if out_kind == "non-leaf":
        out = out * 1
    try:
        result = call(lib, a, out)
    except RuntimeError as error:
        return (type(error).__name__, str(error).split(" functions with out")[-1]), None, None
    assert result is out
    grad = None
    if result.requires_grad:
        result.sum().backward()
        grad = None if a.grad is None else a.grad.numpy()
    return None, result.detach().numpy(), grad


@pytest.mark.parametrize("out_kind", ["leaf", "non-leaf", "plain"])
@pytest.mark.parametrize("input_grad", [False, True])
@pytest.mark.parametrize("name", sorted(_COMPOSITE_OUT) + sorted(_NATIVE_OUT))
def test_out_of_a_composite_op_is_torchs_copy(name, input_grad, out_kind):
    table = _COMPOSITE_OUT if name in _COMPOSITE_OUT else _NATIVE_OUT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = _out_call(chainrule, name, table, input_grad, out_kind)
        theirs = _out_call(torch, name, table, input_grad, out_kind)
    assert ours[0] == theirs[0]
    for mine, torchs in zip(ours[1:], theirs[1:]):
        assert (mine is None) == (torchs is None)
        if mine is not None:
            np.testing.assert_allclose(mine, torchs, rtol=1e-12, atol=1e-12)


def test_a_composite_out_of_another_shape_is_resized_and_takes_the_gradient():
    results = []
    for lib in (chainrule, torch):
        a = lib.tensor(_MATRIX, requires_grad=True)
        out = lib.zeros(2, dtype=lib.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lib.special.ndtr(a, out=out)
        out.sum().backward()
        results.append((tuple(out.shape), type(out.grad_fn).__name__, a.grad.numpy(),
                        [str(w.message)[:60] for w in caught if "resized" in str(w.message)]))
    assert results[0][:2] == results[1][:2] and results[0][3] == results[1][3]
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-12)


# --- 2. mode of rows holding NaN: torch's values and indices ------------------------------------

def _with_nan(shape, fraction: float, ties: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    x[rng.random(shape) < fraction] = np.nan
    return x


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.6])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_mode_of_rows_with_nan_is_torchs(dtype, fraction, ties):
    for seed, shape in enumerate([(3, 4, 70), (5, 17), (4, 6, 9)]):
        x = _with_nan(shape, fraction, ties, seed)
        for dim in range(-1, len(shape)):
            ours = chainrule.mode(chainrule.from_numpy(x).to(getattr(chainrule, dtype)), dim)
            theirs = torch.mode(torch.from_numpy(x).to(getattr(torch, dtype)), dim)
            np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
            np.testing.assert_array_equal(ours.values.float().numpy(), theirs.values.float().numpy())


# --- 4. svd of tall float64 matrices: torch's signs ---------------------------------------------

@pytest.mark.parametrize("full_matrices", [False, True])
@pytest.mark.parametrize("shape", [(4, 3), (2, 4, 3), (6, 4), (8, 5), (9, 6), (12, 8), (5, 3), (5, 4), (3, 3)])
def test_svd_of_a_tall_float64_matrix_has_torchs_signs(shape, full_matrices):
    A = np.random.default_rng(sum(shape)).standard_normal(shape)
    ours = chainrule.linalg.svd(chainrule.from_numpy(A), full_matrices=full_matrices)
    theirs = torch.linalg.svd(torch.from_numpy(A), full_matrices=full_matrices)
    for mine, torchs in zip(ours, theirs):
        np.testing.assert_allclose(mine.numpy(), torchs.numpy(), atol=1e-10)
    U, S, V = chainrule.svd(chainrule.from_numpy(A), some=not full_matrices)
    tU, tS, tV = torch.svd(torch.from_numpy(A), some=not full_matrices)
    np.testing.assert_allclose(U.numpy(), tU.numpy(), atol=1e-10)
    np.testing.assert_allclose(V.numpy(), tV.numpy(), atol=1e-10)


def test_svd_through_qr_keeps_the_gradient():
    A = chainrule.from_numpy(np.random.default_rng(0).standard_normal((4, 3))).requires_grad_()
    assert chainrule.autograd.gradcheck(lambda a: chainrule.linalg.svd(a, full_matrices=False)[1], (A,))
    assert chainrule.autograd.gradcheck(lambda a: (lambda u, s, vh: (u @ vh, s))(*chainrule.linalg.svd(a, False)), (A,))
