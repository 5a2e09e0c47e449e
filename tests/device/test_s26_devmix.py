"""CPU and CUDA tensors in one program, on the stand-in GPU path (session 26, lane devmix).

torch allows exactly one CPU/CUDA mix: a 0-dim CPU tensor in an elementwise op with CUDA tensors
(a scalar, passed to the kernel by value), and its engine hands that input a gradient on the CPU
(validate_outputs moves a 0-dim gradient to its input's device). Any other CPU tensor among CUDA
ones raises "Expected all tensors to be on the same device". torch has no CUDA here: the values are
checked against the same program on the CPU, and the device words are torch's own.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

MIXED = r"Expected all tensors to be on the same device, but found at least two devices"


def _data(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("op", ["add", "radd", "sub", "mul", "div", "pow", "maximum", "where", "lerp", "atan2",
                                "add_", "eq"])
def test_a_0dim_cpu_tensor_is_a_scalar_for_cuda_tensors(cuda, op):
    calls = {
        "add": lambda x, s: x + s, "radd": lambda x, s: s + x, "sub": lambda x, s: s - x,
        "mul": lambda x, s: x * s, "div": lambda x, s: x / s, "pow": lambda x, s: x.abs() ** s,
        "maximum": lambda x, s: chainrule.maximum(x, s), "where": lambda x, s: chainrule.where(x > 0, x, s),
        "lerp": lambda x, s: chainrule.lerp(x, x * 2, s), "atan2": lambda x, s: chainrule.atan2(x, s),
        "add_": lambda x, s: x.clone().add_(s), "eq": lambda x, s: x == s,
    }
    data = _data(3, 4)
    results = {}
    for device in ("cpu", "cuda"):
        x = chainrule.tensor(data, device=device)
        results[device] = calls[op](x, chainrule.tensor(0.5))  # the scalar always on the CPU
    assert results["cuda"].device.type == "cuda"
    assert results["cuda"].dtype == results["cpu"].dtype
    np.testing.assert_allclose(results["cuda"].cpu().numpy(), results["cpu"].numpy(), rtol=1e-6)


def test_a_cpu_tensor_of_one_dim_or_a_0dim_cuda_tensor_with_cpu_ones_is_torchs_runtime_error(cuda):
    x = chainrule.randn(3, device="cuda")
    with pytest.raises(RuntimeError, match=MIXED):
        x + chainrule.tensor([0.5])  # one element, but one dim: not a scalar
    with pytest.raises(RuntimeError, match=MIXED):
        chainrule.tensor(0.5, device="cuda") + chainrule.randn(3)  # only a CPU scalar joins the other device


def test_the_gradient_of_a_0dim_cpu_input_of_a_cuda_op_is_on_the_cpu(cuda):
    grads = {}
    for device in ("cpu", "cuda"):
        y = chainrule.tensor(_data(3), device=device, requires_grad=True)
        w = chainrule.tensor(2.0, requires_grad=True)  # a CPU leaf in both runs
        (y * w).sum().backward()
        grads[device] = (y.grad, w.grad)
    assert grads["cuda"][0].device.type == "cuda"
    assert grads["cuda"][1].device.type == "cpu"
    assert grads["cuda"][1].item() == pytest.approx(grads["cpu"][1].item(), rel=1e-6)


def test_a_cpu_graph_behind_a_0dim_cpu_scalar_gets_cpu_gradients(cuda):
    # v (CPU, 2 elements) -> a 0-dim sum -> a factor of a CUDA op: v's gradient must arrive on the
    # CPU (a CUDA gradient would meet v's CPU saved values in MulBackward0 and be refused)
    grads = {}
    for device in ("cpu", "cuda"):
        y = chainrule.tensor(_data(3), device=device)
        v = chainrule.tensor([1.0, 2.0], requires_grad=True)
        (chainrule.exp(y) * (v * v).sum()).sum().backward()
        grads[device] = v.grad
    assert grads["cuda"].device.type == "cpu"
    np.testing.assert_allclose(grads["cuda"].numpy(), grads["cpu"].numpy(), rtol=1e-6)


def test_second_order_through_a_0dim_cpu_factor_of_a_cuda_op(cuda):
    y = chainrule.tensor(_data(3), device="cuda")
    w = chainrule.tensor(1.5, requires_grad=True)
    (g,) = chainrule.autograd.grad((y * w * w).sum(), w, create_graph=True)
    assert g.device.type == "cpu" and g.requires_grad
    g.backward()
    assert w.grad.device.type == "cpu"
    # d/dw (2 w sum(y)) = 2 sum(y)
    assert w.grad.item() == pytest.approx(2 * float(_data(3).sum()), rel=1e-5)


def test_type_as_takes_the_other_tensors_device_and_dtype(cuda):
    # torch's type_as is self.to(other.options()): transformer_translation's greedy decoding
    # (torch.ones(1, 1).type_as(src.data), src on CUDA) concatenates it with CUDA tokens
    index = chainrule.tensor([1], device="cuda")
    moved = chainrule.ones(1, 1).type_as(index)
    assert (moved.device.type, moved.dtype) == ("cuda", chainrule.int64)
    back = chainrule.ones(2, device="cuda").type_as(chainrule.tensor([1.0], dtype=chainrule.float64))
    assert (back.device.type, back.dtype) == ("cpu", chainrule.float64)
    x = chainrule.ones(2)
    assert x.type_as(chainrule.zeros(1)) is x  # nothing to change: self, as torch's to()


def test_legacy_new_makes_a_tensor_on_selfs_device(cuda):
    x = chainrule.randn(2, 3, device="cuda", dtype=chainrule.float64)
    for made, shape in ((x.new(4, 2), (4, 2)), (x.new([1, 2]), (2,)), (x.new(), (0,))):
        assert (made.device.type, made.dtype, tuple(made.shape)) == ("cuda", chainrule.float64, shape)
    assert x.new([1, 2]).cpu().tolist() == [1.0, 2.0]
    assert chainrule.ones(1).new(3).device.type == "cpu"


@pytest.mark.parametrize("where", [("cpu", "cuda"), ("cuda", "cpu")])
def test_stft_and_istft_with_the_window_on_another_device_are_torchs_error(cuda, where):
    # ctc_speech under set_default_device('cuda'): a torch.from_numpy wave (CPU) with a Hann window
    # made on the default device
    signal, window = where
    x = chainrule.randn(400, device=signal)
    spectrum = chainrule.randn(33, 11, dtype=chainrule.complex64, device=signal)
    named = {"cpu": "cpu", "cuda": "cuda:0"}
    words = f"input and window must be on the same device but got self on {named[signal]} and window on {named[window]}"
    with pytest.raises(RuntimeError, match=f"^stft {words}$"):
        chainrule.stft(x, n_fft=64, window=chainrule.hann_window(64, device=window), return_complex=True)
    with pytest.raises(RuntimeError, match=f"^istft {words}$"):
        chainrule.istft(spectrum, n_fft=64, window=chainrule.hann_window(64, device=window))


def test_the_stft_window_check_matches_torchs_words_on_the_meta_device():
    torch = pytest.importorskip("torch")
    for library in (torch, chainrule):
        x = library.randn(400)
        with pytest.raises(RuntimeError) as caught:
            library.stft(x, n_fft=64, window=library.hann_window(64, device="meta"), return_complex=True)
        if library is torch:
            want = str(caught.value)
    assert str(caught.value) == want
