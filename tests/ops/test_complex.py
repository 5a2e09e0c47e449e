"""Complex tensors as users reach for them: dtypes and promotion, creation, printing, views, torch's
errors, autograd's conjugate-Wirtinger convention, gradcheck on complex inputs, serialization, the
stand-in device, and a LLaMA-style rotary-embedding attention step run on torch and on chainrule."""

from __future__ import annotations

import io

import numpy as np
import pytest

import chainrule
from chainrule.testing.opinfo.complex import arithmetic_cases, crandn

from . import harness
from .harness import check_gradients, compare_with_torch, requires_torch, torch

ARITHMETIC = arithmetic_cases()


@requires_torch
@harness.parametrize(ARITHMETIC)
def test_existing_ops_on_complex_match_torch(case):
    compare_with_torch(case)


@harness.parametrize([c for c in ARITHMETIC if c.gradcheck])
def test_existing_ops_on_complex_gradcheck(case):
    check_gradients(case)


# ---------------------------------------------------------------- dtypes and promotion
@requires_torch
def test_dtype_names_flags_and_promotion_match_torch():
    names = ["float16", "float32", "float64", "int32", "int64", "bool", "complex64", "complex128"]
    for name in ["complex64", "complex128", "cfloat", "cdouble"]:
        ours, theirs = getattr(chainrule, name), getattr(torch, name)
        assert (ours.is_complex, ours.is_floating_point, ours.is_signed, ours.itemsize) == (
            theirs.is_complex, theirs.is_floating_point, theirs.is_signed, theirs.itemsize)
    for a in names:
        for b in names:
            if "float16" in (a, b) and ("complex64" in (a, b) or "complex128" in (a, b)):
                continue  # torch has complex32 (ComplexHalf) for these; chainrule has no complex32
            ours = chainrule.promote_types(getattr(chainrule, a), getattr(chainrule, b))
            assert ours.name == str(torch.promote_types(getattr(torch, a), getattr(torch, b))).split(".")[1], (a, b)


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("scalar", [1j, 2.5, 3])
def test_result_type_with_complex_operands_matches_torch(dtype, scalar):
    def result(lib):
        dims = lib.ones(2, dtype=getattr(lib, dtype))
        zero_d = lib.tensor(1 + 1j, dtype=lib.complex128)
        return [(dims + scalar * 1j).dtype, (dims * zero_d).dtype, (lib.ones(2, dtype=lib.cfloat) + scalar).dtype]

    assert [str(d).split(".")[1] for d in result(chainrule)] == [str(d).split(".")[1] for d in result(torch)]


@requires_torch
def test_python_complex_infers_the_default_complex_dtype():
    for lib in (chainrule, torch):
        assert str(lib.tensor(1 + 2j).dtype).endswith("complex64")
        assert str(lib.tensor([1, 2.5, 3j]).dtype).endswith("complex64")
        assert lib.get_default_dtype() is lib.float32
    previous = chainrule.get_default_dtype()
    chainrule.set_default_dtype(chainrule.float64)
    try:
        assert chainrule.tensor(1j).dtype is chainrule.complex128
    finally:
        chainrule.set_default_dtype(previous)
    assert chainrule.tensor([1.0], dtype=complex).dtype is chainrule.complex128


def test_creation_with_complex_dtypes():
    for make in (chainrule.zeros, chainrule.ones, chainrule.empty, chainrule.randn, chainrule.rand):
        t = make(2, 3, dtype=chainrule.cfloat)
        assert t.dtype is chainrule.complex64 and t.shape == (2, 3) and t.is_complex()
    assert chainrule.full((2,), 1 + 2j).dtype is chainrule.complex64
    draws = chainrule.randn(20000, dtype=chainrule.cdouble)
    # torch's complex normal: variance 1 split evenly over the real and imaginary parts
    assert abs(draws.real.var().item() - 0.5) < 0.03 and abs(draws.imag.var().item() - 0.5) < 0.03
    assert abs((draws.abs() ** 2).mean().item() - 1.0) < 0.05
    x = chainrule.randn(3)
    assert x.cfloat().dtype is chainrule.complex64 and x.cdouble().dtype is chainrule.complex128
    assert x.to(chainrule.cfloat).dtype is chainrule.complex64 and chainrule.is_complex(x.cfloat())
    assert not x.is_complex() and not chainrule.can_cast(chainrule.complex64, chainrule.float64)


@requires_torch
def test_printing_matches_torch():
    values = [[1 + 2j, 3 - 1j], [1e-5 + 2j, -0.25j]]
    for dtype in ("complex64", "complex128"):
        ours = repr(chainrule.tensor(values, dtype=getattr(chainrule, dtype)))
        theirs = repr(torch.tensor(values, dtype=getattr(torch, dtype)))
        assert ours.replace("chainrule.", "torch.") == theirs
    assert repr(chainrule.tensor(1.5 - 2j)) == repr(torch.tensor(1.5 - 2j))
    assert repr(chainrule.arange(8) * (1 + 1j)) == repr(torch.arange(8) * (1 + 1j))


# ---------------------------------------------------------------- views
def test_view_as_real_and_parts_share_memory():
    z = chainrule.tensor([1 + 2j, 3 - 4j])
    pairs = chainrule.view_as_real(z)
    pairs[0, 1] = 7.0
    assert z[0].item() == 1 + 7j
    z.real[1] = -3.0
    assert z[1].item() == -3 - 4j
    z.imag = chainrule.tensor([0.5, 0.25])
    assert z.tolist() == [1 + 0.5j, -3 + 0.25j]
    back = chainrule.view_as_complex(pairs)
    back[0] = 9j
    assert z[0].item() == 9j
    transposed = chainrule.view_as_real(chainrule.randn(3, 4, dtype=chainrule.cfloat).t())
    assert transposed.shape == (4, 3, 2) and transposed.stride() == (2, 8, 1)


@requires_torch
@pytest.mark.parametrize("build", [
    lambda lib: lib.randn(3, 4)[..., :2].t().contiguous().t(),  # last dim 2 but its stride is not 1
    lambda lib: lib.randn(3, 3),  # last dim not 2
    lambda lib: lib.randn(4, 2).to(lib.int32),
    lambda lib: lib.randn(3, 6)[:, 1:5].reshape(3, 2, 2)[:, :, :],
], ids=["stride", "size", "int", "odd_offset_stride_ok"])
def test_view_as_complex_errors_match_torch(build):
    outcomes = []
    for lib in (chainrule, torch):
        try:
            outcomes.append(tuple(lib.view_as_complex(build(lib)).shape))
        except (RuntimeError, TypeError) as error:
            outcomes.append(type(error))
    assert outcomes[0] == outcomes[1]


# ---------------------------------------------------------------- torch's errors
@requires_torch
@pytest.mark.parametrize("op", [
    lambda lib, z: z < z, lambda lib, z: z >= 0, lambda lib, z: z.max(), lambda lib, z: lib.amax(z, 0),
    lambda lib, z: z.argmax(), lambda lib, z: z.sort(), lambda lib, z: z.topk(1), lambda lib, z: lib.maximum(z, z),
    lambda lib, z: lib.relu(z), lambda lib, z: z.clamp(0, 1), lambda lib, z: z.floor(), lambda lib, z: z.round(),
    lambda lib, z: z.sign(), lambda lib, z: z.erf(), lambda lib, z: lib.imag(z.real),
    lambda lib, z: lib.view_as_real(z.real), lambda lib, z: lib.fft.rfft(z),
    lambda lib, z: lib.complex(z.real, z.real.double()),
    lambda lib, z: z.real.clone().add_(z),
], ids=["lt", "ge", "max", "amax", "argmax", "sort", "topk", "maximum", "relu", "clamp", "floor", "round", "sign",
        "erf", "imag_of_real", "view_as_real_of_real", "rfft_of_complex", "complex_mixed", "inplace_into_real"])
def test_ops_torch_refuses_on_complex_raise_its_error(op):
    caught = []
    for lib in (chainrule, torch):
        z = lib.tensor([1 + 2j, -1 - 0.5j, 3j])
        with pytest.raises(RuntimeError) as info:
            op(lib, z)
        caught.append(type(info.value))
    assert caught[0] is caught[1] or issubclass(caught[0], caught[1]), caught


def test_backward_of_a_complex_scalar_raises_torchs_error():
    z = chainrule.tensor([1 + 1j], requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for real scalar outputs"):
        (z * 2).sum().backward()


# ---------------------------------------------------------------- autograd convention
@requires_torch
def test_gradients_follow_torchs_conjugate_wirtinger_convention():
    rng = np.random.default_rng(3)
    x0, z0, w0 = rng.standard_normal(4), crandn(4, seed=1), crandn(4, seed=2)

    def run(lib):
        x = lib.tensor(x0.astype(np.float32), requires_grad=True)
        z = lib.tensor(z0.astype(np.complex64), requires_grad=True)
        w = lib.tensor(w0.astype(np.complex64), requires_grad=True)
        y = (x * z).exp() / w + z.sin() * w.conj() + z.abs() + lib.view_as_real(z).sum() + z.angle()
        loss = (y.abs() ** 2).sum() + (z @ w).real + (z * w).tanh().imag.sum()
        loss.backward()
        return [t.grad.numpy() for t in (x, z, w)]

    for ours, theirs in zip(run(chainrule), run(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_abs_gradient_is_zero_at_zero():
    z = chainrule.tensor([0j, 3 + 4j], requires_grad=True)
    z.abs().sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [0, 0.6 + 0.8j])


def test_gradcheck_catches_a_missing_conjugate():
    class Square(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad * 2 * a  # torch's convention needs grad * conj(2a)

    z = chainrule.tensor(crandn(3), requires_grad=True)
    assert not chainrule.autograd.gradcheck(Square.apply, (z,), raise_exception=False)
    assert not chainrule.autograd.gradcheck(Square.apply, (z,), raise_exception=False, fast_mode=True)
    assert chainrule.autograd.gradcheck(lambda a: a * a, (z,)) and chainrule.autograd.gradgradcheck(lambda a: a * a, (z,))


# ---------------------------------------------------------------- serialization
@requires_torch
def test_torch_checkpoints_with_complex_tensors_load(tmp_path):
    state = {"w": torch.randn(3, 2, dtype=torch.cfloat), "v": torch.randn(4, dtype=torch.cdouble)}
    torch.save(state, tmp_path / "state.pt")
    loaded = chainrule.load(tmp_path / "state.pt")
    for key, value in state.items():
        assert loaded[key].dtype.name == str(value.dtype).split(".")[1]
        np.testing.assert_array_equal(loaded[key].numpy(), value.numpy())


def test_complex_tensors_round_trip_through_save_and_load():
    for dtype in (chainrule.complex64, chainrule.complex128):  # safetensors C64; complex128 via the zip format
        state = {"w": chainrule.randn(3, 2, dtype=dtype)}
        buffer = io.BytesIO()
        chainrule.save(state, buffer)
        buffer.seek(0)
        loaded = chainrule.load(buffer)
        assert loaded["w"].dtype is dtype and chainrule.equal(loaded["w"], state["w"])


# ---------------------------------------------------------------- the stand-in device
def test_complex_ops_run_on_the_standin_device():
    from chainrule._backend import use_standin_cuda

    z0, x0 = crandn(4, 6), np.random.default_rng(5).standard_normal((4, 6))

    def run(device):
        z = chainrule.tensor(z0, device=device, requires_grad=True)
        x = chainrule.tensor(x0, device=device, requires_grad=True)
        y = (z * x).exp() / (z + 2) + chainrule.polar(x.abs(), x) + chainrule.view_as_real(z).sum(-1) + z.angle()
        y = y + chainrule.view_as_complex(chainrule.stack([x, x], -1)) @ chainrule.eye(6, device=device).cdouble()
        (y.abs() ** 2).sum().backward()
        return [t.detach().cpu().numpy() for t in (y, z.grad, x.grad)]

    cpu = run("cpu")
    with use_standin_cuda():
        device = run("cuda")
    for a, b in zip(cpu, device):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# ---------------------------------------------------------------- a whole program: LLaMA rotary embeddings
def _rope_attention(lib, x0: np.ndarray, wq0: np.ndarray, wk0: np.ndarray, steps: int = 3):
    """LLaMA's rotary embedding (precompute_freqs_cis, apply_rotary_emb) in one attention head,
    trained a few SGD steps; returns the losses and the final query weight."""
    batch, seq, dim = x0.shape
    n_heads, head_dim = 2, dim // 2
    freqs = 1.0 / (10000.0 ** (lib.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    t = lib.arange(seq, dtype=lib.float32)
    freqs = lib.outer(t, freqs).float()
    freqs_cis = lib.polar(lib.ones_like(freqs), freqs)  # complex64

    def apply_rotary_emb(xq, xk):
        xq_ = lib.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
        xk_ = lib.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
        shape = [d if i == 1 or i == xq_.ndim - 1 else 1 for i, d in enumerate(xq_.shape)]
        cis = freqs_cis.view(*shape)
        xq_out = lib.view_as_real(xq_ * cis).flatten(3)
        xk_out = lib.view_as_real(xk_ * cis).flatten(3)
        return xq_out.type_as(xq), xk_out.type_as(xk)

    wq = lib.tensor(wq0, requires_grad=True)
    wk = lib.tensor(wk0, requires_grad=True)
    x = lib.tensor(x0)
    optimizer = lib.optim.SGD([wq, wk], lr=0.1)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        xq = (x @ wq).view(batch, seq, n_heads, head_dim)
        xk = (x @ wk).view(batch, seq, n_heads, head_dim)
        xq, xk = apply_rotary_emb(xq, xk)
        scores = (xq.transpose(1, 2) @ xk.transpose(1, 2).transpose(2, 3)) / head_dim ** 0.5
        mask = lib.full((seq, seq), float("-inf")).triu(1)
        attention = lib.softmax(scores + mask, dim=-1)
        loss = (attention @ xk.transpose(1, 2)).pow(2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, wq.detach().numpy().copy()


@requires_torch
def test_llama_rotary_embedding_attention_matches_torch():
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 5, 8)).astype(np.float32)
    wq0 = (rng.standard_normal((8, 8)) * 0.3).astype(np.float32)
    wk0 = (rng.standard_normal((8, 8)) * 0.3).astype(np.float32)
    ours = _rope_attention(chainrule, x0, wq0, wk0)
    theirs = _rope_attention(torch, x0, wq0, wk0)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
    assert ours[0][-1] < ours[0][0]


@requires_torch
def test_assert_close_compares_both_parts_like_torch():
    messages = []
    for lib in (chainrule, torch):
        a, b = lib.tensor([1 + 1j, 2j]), lib.tensor([1 + 2j, 2j])
        with pytest.raises(AssertionError) as info:
            lib.testing.assert_close(a, b)
        messages.append(str(info.value))
        lib.testing.assert_close(a, a.clone())
    assert messages[0] == messages[1]
