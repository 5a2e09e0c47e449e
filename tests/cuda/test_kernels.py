"""The fused CuPy kernels' NumPy references against chainrule's CPU ops, and the kernels against
their references: on a GPU where CuPy sees one, and always with the kernels' CUDA C compiled for
the CPU (``emulated_cupy``), so a logic error in a kernel fails in CI too."""

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F
from chainrule.ops import _cuda_kernels as kernels

from . import emulated_cupy

rng = np.random.default_rng(0)


def _leaf(array):
    return chainrule.tensor(array, requires_grad=True)


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_references_match_the_cpu_ops(dim):
    x = rng.standard_normal((3, 5, 7)).astype(np.float32) * 4
    np.testing.assert_allclose(kernels.softmax_reference(x, dim), F.softmax(chainrule.tensor(x), dim).numpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(kernels.log_softmax_reference(x, dim),
                               F.log_softmax(chainrule.tensor(x), dim).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_references_match_the_cpu_op_and_its_gradient(reduction):
    logits = rng.standard_normal((6, 10)).astype(np.float32) * 3
    target = np.array([1, 9, -100, 0, 4, 4])
    loss, lse = kernels.cross_entropy_reference(logits, target, reduction=reduction)
    x = _leaf(logits)
    expected = F.cross_entropy(x, chainrule.tensor(target), reduction=reduction)
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    grad_loss = np.linspace(0.5, 1.5, 6).astype(np.float32) if reduction == "none" else np.float32(0.7)
    expected.backward(chainrule.tensor(grad_loss))
    grad = kernels.cross_entropy_backward_reference(grad_loss, logits, target, lse, reduction=reduction)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert not grad[2].any()  # the ignored row


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_references_match_the_cpu_op_and_its_gradients(affine):
    x = rng.standard_normal((4, 3, 8)).astype(np.float32) * 2 + 1
    weight = rng.standard_normal((3, 8)).astype(np.float32) if affine else None
    bias = rng.standard_normal((3, 8)).astype(np.float32) if affine else None
    y, mean, rstd = kernels.layer_norm_reference(x, 2, weight, bias, eps=1e-5)
    leaves = [_leaf(a) if a is not None else None for a in (x, weight, bias)]
    expected = F.layer_norm(leaves[0], (3, 8), leaves[1], leaves[2], eps=1e-5)
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert mean.shape == rstd.shape == (4,)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    expected.backward(chainrule.tensor(grad))
    grad_x, grad_weight, grad_bias = kernels.layer_norm_backward_reference(grad, x, mean, rstd, weight, affine)
    np.testing.assert_allclose(grad_x, leaves[0].grad.numpy(), rtol=1e-4, atol=1e-5)
    if affine:
        np.testing.assert_allclose(grad_weight, leaves[1].grad.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(grad_bias, leaves[2].grad.numpy(), rtol=1e-5, atol=1e-5)
    else:
        assert grad_weight is None and grad_bias is None


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_references_match_the_cpu_op_and_its_gradient(approximate):
    x_np = np.linspace(-6, 6, 41).astype(np.float32)
    x = _leaf(x_np)
    y = F.gelu(x, approximate=approximate)
    np.testing.assert_allclose(kernels.gelu_reference(x_np, approximate), y.detach().numpy(), rtol=1e-5, atol=1e-6)
    grad = np.cos(x_np).astype(np.float32)
    y.backward(chainrule.tensor(grad))
    np.testing.assert_allclose(kernels.gelu_backward_reference(grad, x_np, approximate), x.grad.numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer, options", [
    ("Adam", {}), ("Adam", {"weight_decay": 0.1, "amsgrad": True}), ("AdamW", {"weight_decay": 0.1}),
    ("AdamW", {"maximize": True, "amsgrad": True})])
def test_adam_reference_matches_the_cpu_optimizer_over_three_steps(optimizer, options):
    shapes = [(4, 3), (3,)]
    params = [chainrule.nn.Parameter(chainrule.tensor(rng.standard_normal(s).astype(np.float32))) for s in shapes]
    ref = [p.detach().numpy().copy() for p in params]
    moments = [[np.zeros_like(w) for w in ref] for _ in range(3)]
    opt = getattr(chainrule.optim, optimizer)(params, lr=0.01, betas=(0.8, 0.9), eps=1e-6, **options)
    defaults = opt.param_groups[0]
    for step in range(1, 4):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = chainrule.tensor(g)
        opt.step()
        kernels.adam_step_reference(
            ref, grads, moments[0], moments[1], [step] * len(ref), lr=0.01, beta1=0.8, beta2=0.9, eps=1e-6,
            weight_decay=defaults["weight_decay"], decoupled=optimizer == "AdamW", maximize=defaults["maximize"],
            max_exp_avg_sqs=moments[2] if defaults["amsgrad"] else None)
    # the CPU step rounds as torch's CPU kernels do (fused multiply-adds in addcmul/lerp); the
    # reference is the device kernel's plain float32 arithmetic: their last bits may differ (by
    # 1-2 ulp in some elements, depending on the draws), a wrong formula by far more (an update is ~1e-2)
    for p, w in zip(params, ref):
        np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-6, atol=1e-7)


def test_kernels_refuse_arrays_that_are_not_on_the_gpu():
    x = np.ones((2, 3), np.float32)
    assert not kernels.available(x)
    with pytest.raises(TypeError, match=r"_cuda_kernels\.softmax: expected CuPy float32 or float64 arrays, "
                                        r"got numpy\.ndarray"):
        kernels.softmax(x)
    with pytest.raises(TypeError, match="adam_step"):
        kernels.adam_step([x], [x], [x], [x], [1], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8)


# ---- each kernel against its reference: on a GPU, and emulated on the CPU ----

@pytest.fixture(params=["gpu", "emulated"], scope="module")
def cupy_module(request, tmp_path_factory):
    """CuPy on a GPU; or the kernels' CUDA C compiled for the CPU (``emulated_cupy``)."""
    if request.param == "gpu":
        if not chainrule.cuda.is_available():
            pytest.skip("needs CuPy and a CUDA GPU")
        import cupy

        yield cupy
        return
    if emulated_cupy.COMPILER is None:
        pytest.skip("the emulation needs a C++ compiler (g++)")
    emulated = emulated_cupy.EmulatedCupy(tmp_path_factory.mktemp("kernels"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "_cupy", lambda: emulated)
        patch.setattr(kernels, "_modules", {})
        patch.setattr(kernels, "_elementwise", {})
        # three warps per block instead of up to 32: OS threads are slow at barriers, and three
        # still exercise the strided row loops, the cross-warp reduction and a partial last step
        patch.setattr(kernels, "_block_size", lambda cols: 96)
        patch.setattr(kernels, "_address", lambda array: array.ctypes.data)
        # few blocks, so the multi-tensor kernel's grid-stride loop takes several turns
        patch.setattr(kernels, "_grid", lambda total: (min(-(-total // 96), 3), 96))
        yield emulated


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape, dim", [((7, 1000), -1), ((2, 3, 5), 1), ((4, 2500), -1), ((), 0)])
def test_softmax_kernels_match_references(cupy_module, shape, dim, dtype, tol):
    cp = cupy_module
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    np.testing.assert_allclose(cp.asnumpy(kernels.softmax(cp.asarray(x), dim)), kernels.softmax_reference(x, dim),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(cp.asnumpy(kernels.log_softmax(cp.asarray(x), dim)),
                               kernels.log_softmax_reference(x, dim), rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("classes", [10, 1000])
def test_cross_entropy_kernels_match_references(cupy_module, reduction, classes):
    cp = cupy_module
    logits = (rng.standard_normal((64, classes)) * 3).astype(np.float32)
    target = rng.integers(0, classes, 64)
    target[::7] = -100
    loss, lse = kernels.cross_entropy(cp.asarray(logits), cp.asarray(target), reduction=reduction)
    ref_loss, ref_lse = kernels.cross_entropy_reference(logits, target, reduction=reduction)
    np.testing.assert_allclose(cp.asnumpy(loss), ref_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cp.asnumpy(lse), ref_lse, rtol=1e-5, atol=1e-5)
    grad_loss = np.linspace(0.5, 1.5, 64).astype(np.float32) if reduction == "none" else np.float32(0.7)
    grad = kernels.cross_entropy_backward(cp.asarray(grad_loss), cp.asarray(logits), cp.asarray(target), lse,
                                          reduction=reduction)
    # the target column is grad·(p − 1) with p near 1 for a confident row: the kernel's lse (|lse|
    # up to ~10, a float32 ulp of 1e-6) and CUDA's expf differ from NumPy's by a few ulps, so
    # p − 1 is off by ~1e-6 absolute there (9.3e-7 seen on an H200); 4e-6 covers grad_loss ≤ 1.5
    np.testing.assert_allclose(cp.asnumpy(grad), kernels.cross_entropy_backward_reference(
        grad_loss, logits, target, ref_lse, reduction=reduction), rtol=1e-5, atol=4e-6)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape, normalized_ndim", [((32, 512), 1), ((4, 3, 8), 2), ((5, 3000), 1)])
def test_layer_norm_kernels_match_references(cupy_module, shape, normalized_ndim, affine):
    cp = cupy_module
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    normalized = shape[len(shape) - normalized_ndim:]
    weight = rng.standard_normal(normalized).astype(np.float32) if affine else None
    bias = rng.standard_normal(normalized).astype(np.float32) if affine else None
    on_gpu = [None if a is None else cp.asarray(a) for a in (x, weight, bias)]
    y, mean, rstd = kernels.layer_norm(on_gpu[0], normalized_ndim, on_gpu[1], on_gpu[2])
    ref = kernels.layer_norm_reference(x, normalized_ndim, weight, bias)
    for got, want in zip((y, mean, rstd), ref):
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-4, atol=1e-5)
    grad = rng.standard_normal(shape).astype(np.float32)
    got = kernels.layer_norm_backward(cp.asarray(grad), on_gpu[0], mean, rstd, on_gpu[1], affine)
    want = kernels.layer_norm_backward_reference(grad, x, ref[1], ref[2], weight, affine)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if w is not None:
            np.testing.assert_allclose(cp.asnumpy(g), w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_kernels_match_references(cupy_module, approximate):
    cp = cupy_module
    x = np.linspace(-8, 8, 1001).astype(np.float32)
    grad = np.cos(x).astype(np.float32)
    np.testing.assert_allclose(cp.asnumpy(kernels.gelu(cp.asarray(x), approximate)),
                               kernels.gelu_reference(x, approximate), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cp.asnumpy(kernels.gelu_backward(cp.asarray(grad), cp.asarray(x), approximate)),
                               kernels.gelu_backward_reference(grad, x, approximate), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("amsgrad, decoupled, maximize", [(False, False, False), (True, True, True)])
def test_adam_kernel_matches_reference(cupy_module, amsgrad, decoupled, maximize):
    cp = cupy_module
    shapes = [(64, 32), (32,), (1,)]
    ref = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    moments = [[np.zeros_like(w) for w in ref] for _ in range(3)]
    gpu = [cp.asarray(w) for w in ref]
    gpu_moments = [[cp.zeros_like(w) for w in gpu] for _ in range(3)]
    options = dict(lr=0.01, beta1=0.8, beta2=0.9, eps=1e-6, weight_decay=0.1, decoupled=decoupled, maximize=maximize)
    for step in range(1, 4):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        kernels.adam_step_reference(ref, grads, moments[0], moments[1], [step] * 3,
                                    max_exp_avg_sqs=moments[2] if amsgrad else None, **options)
        kernels.adam_step(gpu, [cp.asarray(g) for g in grads], gpu_moments[0], gpu_moments[1], [step] * 3,
                          max_exp_avg_sqs=gpu_moments[2] if amsgrad else None, **options)
    for got, want in zip(gpu, ref):
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("amsgrad, decoupled, maximize", [(False, False, False), (True, True, True)])
def test_multi_tensor_adam_matches_reference(cupy_module, amsgrad, decoupled, maximize):
    """One launch over a group: tensors of many sizes (an empty one too), a strided gradient, a
    parameter that joined later (another step count) and a strided parameter (its own launch)."""
    cp = cupy_module
    shapes = [(64, 32), (32,), (1,), (0,), (7, 5), (3, 4)]
    ref = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    moments = [[np.zeros_like(w) for w in ref] for _ in range(3)]
    gpu = [cp.asarray(w) for w in ref]
    gpu[5] = cp.asarray(np.asfortranarray(ref[5]))  # not C-contiguous: updated by the per-parameter kernel
    gpu_moments = [[cp.zeros_like(w) for w in gpu] for _ in range(3)]
    options = dict(lr=0.01, beta1=0.8, beta2=0.9, eps=1e-6, weight_decay=0.1, decoupled=decoupled, maximize=maximize)
    for step in range(1, 4):
        steps = [step] * 4 + [step + 2, step]
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        kernels.adam_step_reference(ref, grads, moments[0], moments[1], steps,
                                    max_exp_avg_sqs=moments[2] if amsgrad else None, **options)
        gpu_grads = [cp.asarray(g) for g in grads]
        gpu_grads[4] = cp.asarray(np.asfortranarray(grads[4]))
        kernels.adam_multi_tensor_step(gpu, gpu_grads, gpu_moments[0], gpu_moments[1], steps,
                                       max_exp_avg_sqs=gpu_moments[2] if amsgrad else None, **options)
    for got, want in zip(gpu + gpu_moments[0] + gpu_moments[1], ref + moments[0] + moments[1]):
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-6, atol=1e-7)
