"""What the programs memn2n_babi, gaussian_splatting_2d and unfold_patch_ops led to, session 35
(lane progAW), each case checked against torch 2.13 on the same inputs.

1. ``F.fold``/``nn.Fold`` refuse an input that is not 2-d or 3-d with col2im's own words, checked
   after the kernel, stride, dilation and padding, as torch checks them.
2. The determinant's gradient at a singular matrix (det exactly 0): torch's plain backward gives
   zeros and a recorded (``create_graph``) one the cofactor matrix; batches mix both with the
   invertible matrices' ``det(A) A^-T``."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(case, lib):
    with pytest.raises(Exception) as caught:
        case(lib)
    return type(caught.value).__name__, str(caught.value)


# --- 1. fold's rank check ----------------------------------------------------------------------
FOLD_REFUSALS = {
    "1-d input": lambda lib: lib.nn.functional.fold(lib.ones(4), 3, 2),
    "0-d input": lambda lib: lib.nn.functional.fold(lib.tensor(1.0), 3, 2),
    "4-d input": lambda lib: lib.nn.functional.fold(lib.ones(1, 4, 4, 1), 3, 2),
    "4-d input with an empty batch": lambda lib: lib.nn.functional.fold(lib.ones(0, 4, 4, 1), 3, 2),
    "nn.Fold on a 4-d input": lambda lib: lib.nn.Fold(3, 2)(lib.ones(1, 4, 4, 1)),
    "1-d input with an empty output size": lambda lib: lib.nn.functional.fold(lib.ones(4), 0, 2),
    # the geometry is checked before the rank
    "1-d input and a zero stride": lambda lib: lib.nn.functional.fold(lib.ones(4), 3, 2, stride=0),
    "1-d input and a 3-d output size": lambda lib: lib.nn.functional.fold(lib.ones(4), (3, 3, 3), 2),
    "3-d input with no channels": lambda lib: lib.nn.functional.fold(lib.ones(1, 0, 4), 3, 2),
}


@pytest.mark.parametrize("name", list(FOLD_REFUSALS))
def test_fold_refuses_an_input_of_the_wrong_rank_in_torchs_words(name):
    case = FOLD_REFUSALS[name]
    assert _error(case, chainrule) == _error(case, torch)


# --- 2. det's gradient at singular matrices ----------------------------------------------------
SINGULAR = {
    "2x2 of rank 1": [[1.0, 2.0], [2.0, 4.0]],
    "3x3 of rank 2": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
    "3x3 of rank 1": [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]],
    "zero": [[0.0, 0.0], [0.0, 0.0]],
    "batch of an invertible and a singular one": [[[2.0, 1.0], [1.0, 3.0]], [[1.0, 2.0], [2.0, 4.0]]],
    "batch of a singular and an invertible one": [[[-1.0, 2.0], [2.0, -4.0]], [[0.0, 1.0], [1.0, 0.0]]],
}


def _det_gradients(lib, matrices, dtype, create_graph):
    A = lib.tensor(matrices, dtype=getattr(lib, dtype), requires_grad=True)
    batch = A.shape[:-2]
    weights = lib.arange(1, 1 + int(np.prod(batch)), dtype=A.dtype).reshape(batch)  # a different grad per matrix
    out = (lib.linalg.det(A) * weights).sum()
    (gradient,) = lib.autograd.grad(out, A, create_graph=create_graph)
    if not create_graph:
        return gradient.numpy(), None
    (second,) = lib.autograd.grad((gradient ** 2).sum(), A)
    return gradient.detach().numpy(), second.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(SINGULAR))
def test_det_backward_at_a_singular_matrix_is_torchs(name, dtype):
    ours, _ = _det_gradients(chainrule, SINGULAR[name], dtype, create_graph=False)
    theirs, _ = _det_gradients(torch, SINGULAR[name], dtype, create_graph=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(SINGULAR))
def test_det_double_backward_at_a_singular_matrix_is_torchs(name, dtype):
    ours, ours_second = _det_gradients(chainrule, SINGULAR[name], dtype, create_graph=True)
    theirs, theirs_second = _det_gradients(torch, SINGULAR[name], dtype, create_graph=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    zero_singular_values = [int((lib.linalg.svdvals(lib.tensor(SINGULAR[name], dtype=getattr(lib, dtype))) == 0)
                                .sum()) for lib in (torch, chainrule)]
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512") and zero_singular_values[0] > max(
            zero_singular_values[1], 1):
        # without AVX-512 (an AMD EPYC with AVX2) torch's float32 SVD of the rank-1 matrix (MKL's
        # LAPACK) returns its two small singular values as exact zeros (chainrule's: 1.3e-15 and 0;
        # float64's: 9.4e-16 and 2.2e-16), and the SVD's double backward divides by the gap between
        # them: NaN everywhere. MKL_CBWR=COMPATIBLE, AVX or SSE4_2 left those zeros as they were, so
        # which of MKL's paths differs from the AVX-512 machines' is not pinned down here.
        # chainrule's stays the limit torch's float64 gives
        assert np.isnan(theirs_second).all()
        _, float64_second = _det_gradients(torch, SINGULAR[name], "float64", create_graph=True)
        np.testing.assert_allclose(ours_second, float64_second, rtol=1e-3, atol=1e-3)
        return
    # the zero matrix's second derivative passes through 0/0 in both: NaN where torch's is
    np.testing.assert_allclose(ours_second, theirs_second, rtol=1e-3, atol=1e-3, equal_nan=True)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_det_recorded_gradient_at_a_singular_complex_matrix_is_the_conjugate_cofactor_matrix(dtype):
    matrices = [[[1 + 1j, 2], [2 + 2j, 4]], [[1j, 2], [3, 4]]]
    gradients = []
    for lib in (chainrule, torch):
        A = lib.tensor(matrices, dtype=getattr(lib, dtype), requires_grad=True)
        (gradient,) = lib.autograd.grad(lib.linalg.det(A).sum().real, A, create_graph=True)
        gradients.append(gradient.detach().numpy())
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-4, atol=1e-4)
    # conj(det(A) A^-T): the adjugate's transpose, conjugated
    np.testing.assert_allclose(gradients[0][0], np.conj([[4, -(2 + 2j)], [-2, 1 + 1j]]), atol=1e-4)


def test_det_gradient_of_invertible_matrices_is_unchanged_and_gradchecks():
    A = chainrule.tensor([[[2.0, 1.0], [1.0, 3.0]], [[0.5, -1.0], [2.0, 1.0]]], dtype=chainrule.float64,
                         requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.linalg.det, (A,))
    assert chainrule.autograd.gradgradcheck(chainrule.linalg.det, (A,))


# --- 3. F.linear's addmm path: a 1-d weight and a bias that does not fit ------------------------
# (gaussian_splatting_2d's densification replaces parameters by larger ones: a layer whose weight
# grew while its bias did not is refused as torch refuses it)
def _grown_weight(lib):
    layer = lib.nn.Linear(3, 2)
    layer.weight = lib.nn.Parameter(lib.ones(5, 3))
    return layer(lib.ones(4, 3))


LINEAR_CASES = {
    "2-d input, bias too short": lambda lib: lib.nn.functional.linear(lib.ones(1, 3), lib.ones(5, 3), lib.ones(2)),
    "1-d input, bias too short": lambda lib: lib.nn.functional.linear(lib.ones(3), lib.ones(5, 3), lib.ones(2)),
    "3-d input, bias too short": lambda lib: lib.nn.functional.linear(lib.ones(2, 4, 3), lib.ones(5, 3), lib.ones(2)),
    "empty batch, bias too short": lambda lib: lib.nn.functional.linear(lib.ones(0, 3), lib.ones(5, 3), lib.ones(2)),
    "2-d bias of the wrong rows": lambda lib: lib.nn.functional.linear(lib.ones(4, 3), lib.ones(5, 3), lib.ones(3, 5)),
    "1-d weight with a bias": lambda lib: lib.nn.functional.linear(lib.ones(4, 3), lib.ones(3), lib.ones(1)),
    "1-d weight of the wrong length with a bias": lambda lib: lib.nn.functional.linear(lib.ones(4, 2), lib.ones(3),
                                                                                        lib.ones(1)),
    "1-d weight, 3-d input, 1-d bias": lambda lib: lib.nn.functional.linear(lib.ones(2, 4, 3), lib.ones(3), lib.ones(4)),
    "Linear whose weight grew": _grown_weight,
    # the matmul path (no addmm): the bias is added to the product, so these pass or broadcast
    "1-d weight, 0-d bias": lambda lib: lib.nn.functional.linear(lib.ones(2, 4, 3), lib.ones(3), lib.ones(())),
    "3-d input, 2-d bias": lambda lib: lib.nn.functional.linear(lib.ones(2, 4, 3), lib.ones(5, 3), lib.ones(4, 5)),
    "non-contiguous input, bias too short": lambda lib: lib.nn.functional.linear(
        lib.ones(2, 4, 3).transpose(0, 1), lib.ones(5, 3), lib.ones(2)),
}


def _outcome(case, lib):
    try:
        return ("ok", case(lib).tolist())
    except RuntimeError as error:
        return ("error", str(error))


@pytest.mark.parametrize("name", list(LINEAR_CASES))
def test_linear_checks_its_bias_and_weight_as_torchs_addmm_does(name):
    case = LINEAR_CASES[name]
    assert _outcome(case, chainrule) == _outcome(case, torch)


# --- 4. meshgrid reads the dtypes before the ranks ---------------------------------------------
MESHGRID_MIXED = {
    "a 2-d float tensor, then a 1-d int64 one": lambda lib: lib.meshgrid(lib.ones(2, 2), lib.arange(3), indexing="ij"),
    "a 1-d int64 tensor, then a 2-d float one": lambda lib: lib.meshgrid(lib.arange(3), lib.ones(2, 2), indexing="ij"),
    "a 1-d float tensor, a 2-d float one, a 1-d int64 one": lambda lib: lib.meshgrid(
        lib.arange(3.0), lib.ones(2, 2), lib.arange(2), indexing="xy"),
}


@pytest.mark.parametrize("name", list(MESHGRID_MIXED))
def test_meshgrid_refuses_mixed_dtypes_before_a_tensor_of_too_many_dims(name):
    case = MESHGRID_MIXED[name]
    assert _error(case, chainrule) == _error(case, torch)
