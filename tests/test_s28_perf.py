"""Session 28 (perf): per-op fast paths return what the general paths return, and what torch does.

Each fast path below skips work only where the skipped step cannot change the answer; these tests
compare it with torch on the same inputs (values bit for bit, dtype, layout, grad_fn name,
gradient) and, where the general path is still in the code, with that path.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule._opmath import (
    add_number,
    divide_by_number,
    fused_addcdiv,
    fused_addcmul,
    fused_lerp,
    fused_multiply_add_float32,
    multiply_by_number,
)

torch = pytest.importorskip("torch")


def _bits(array) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint32)


def _random(seed: int, *shape, order: str = "C") -> np.ndarray:
    values = np.asarray(np.random.default_rng(seed).standard_normal(shape), np.float32)
    return np.asfortranarray(values) if order == "F" else values


# ---------------------------------------------------------------- tanh's float32 backward
def _torch_tanh_backward(grad: np.ndarray, output: np.ndarray) -> np.ndarray:
    """torch's tanh backward rule on our forward's output (NumPy's and torch's float32 tanh differ
    in the last bit for some inputs, so the rule is compared on one output)."""
    return torch.ops.aten.tanh_backward(torch.from_numpy(grad), torch.from_numpy(output)).numpy()


@pytest.mark.parametrize("shape", [(16,), (3, 5), (), (0, 4), (4, 1, 3)])
def test_tanh_backward_is_torchs_to_the_bit(shape):
    x = np.asarray(_random(0, *shape) * 3)
    g = np.asarray(_random(1, *shape))
    ours = cr.from_numpy(x.copy()).requires_grad_(True)
    y = ours.tanh()
    assert type(y.grad_fn).__name__ == type(torch.from_numpy(x).requires_grad_(True).tanh().grad_fn).__name__
    y.backward(cr.from_numpy(g.copy()))
    expected = _torch_tanh_backward(g, y.detach().numpy().copy())
    assert ours.grad.dtype == cr.float32 and ours.grad.shape == expected.shape
    assert (_bits(ours.grad.numpy()) == _bits(expected)).all()


def test_tanh_backward_of_a_transposed_gradient_is_torchs():
    x = _random(2, 6, 7)
    g = _random(3, 7, 6).T
    ours = cr.from_numpy(x.copy()).requires_grad_(True)
    y = ours.tanh()
    y.backward(cr.from_numpy(g))
    theirs = torch.from_numpy(x.copy()).requires_grad_(True)
    theirs.tanh().backward(torch.from_numpy(g))
    assert (_bits(ours.grad.numpy()) == _bits(_torch_tanh_backward(g, y.detach().numpy().copy()))).all()
    assert ours.grad.stride() == theirs.grad.stride()


def test_tanh_double_backward_still_records_torchs_node():
    x = _random(4, 5)
    ours = cr.from_numpy(x.copy()).requires_grad_(True)
    theirs = torch.from_numpy(x.copy()).requires_grad_(True)
    (grad_ours,) = cr.autograd.grad(ours.tanh().sum(), ours, create_graph=True)
    (grad_theirs,) = torch.autograd.grad(theirs.tanh().sum(), theirs, create_graph=True)
    assert type(grad_ours.grad_fn).__name__ == type(grad_theirs.grad_fn).__name__
    np.testing.assert_allclose(grad_ours.detach().numpy(), grad_theirs.detach().numpy(), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- the float32 fused multiply-add
def _general_fma(x, y, z):
    """fused_multiply_add_float32's general path (its code before this session): the operator's
    product, the sum in place where z fits the product's shape, rounded once."""
    wide = x.astype(np.float64) * y
    if wide.shape == np.broadcast_shapes(wide.shape, np.shape(z)):
        wide += z
    else:
        wide = wide + z
    return wide.astype(np.float32)


@pytest.mark.parametrize("x_shape, y_shape, z_shape, order", [
    ((2003,), (), (2003,), "C"),
    ((20, 30), (20, 30), (20, 30), "C"),
    ((20, 30), (20, 30), (20, 30), "F"),  # the in-place product keeps only a row-major layout
    ((20, 30), (30,), (20, 30), "C"),
    ((20, 1), (20, 30), (30,), "C"),  # y broadcasts x: the operator's path
    ((), (), (), "C"),
])
def test_fused_multiply_add_fast_path_is_the_general_path_and_torchs_addcmul(x_shape, y_shape, z_shape, order):
    x = _random(4, *x_shape, order=order)
    y = _random(5, *y_shape, order=order) if y_shape else np.float64(np.float32(-0.37))
    z = _random(6, *z_shape)
    ours, general = fused_multiply_add_float32(x, y, z), _general_fma(x, y, z)
    assert type(ours) is type(general) and ours.dtype == np.float32
    assert np.shape(ours) == np.shape(general) and (_bits(ours) == _bits(general)).all()
    if type(general) is np.ndarray:
        assert ours.strides == general.strides
    # torch's addcmul(z, x, y) is the same fused multiply-add, rounded once
    expected = torch.addcmul(torch.from_numpy(np.array(z)), torch.from_numpy(np.array(x)),
                             torch.from_numpy(np.array(y, dtype=np.float32)))
    assert (_bits(ours) == _bits(expected.numpy())).all()


def test_fused_multiply_add_into_out_is_the_general_path():
    x, z = _random(7, 50, 40), _random(8, 50, 40)
    out = np.empty((50, 40), np.float32)
    assert fused_multiply_add_float32(x, np.float64(0.3), z, out=out) is out
    assert (_bits(out) == _bits(_general_fma(x, np.float64(0.3), z))).all()


@pytest.mark.parametrize("weight", [0.1, 0.9])
def test_fused_lerp_and_addcmul_still_torchs(weight):
    start, end = _random(9, 31, 7), _random(10, 31, 7)
    expected = torch.from_numpy(start).lerp(torch.from_numpy(end), weight).numpy()
    assert (_bits(fused_lerp(start, end, weight)) == _bits(expected)).all()
    expected = torch.from_numpy(start).addcmul(torch.from_numpy(end), torch.from_numpy(end), value=weight).numpy()
    assert (_bits(fused_addcmul(start, end, end, weight)) == _bits(expected)).all()


# ---------------------------------------------------------------- in place into an optimizer's buffer
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(37, 5), ()])
def test_in_place_helpers_write_what_the_copies_return(dtype, shape):
    start, end, divisor = (np.asarray(np.abs(_random(seed, *shape)) + 0.5).astype(dtype) for seed in (12, 13, 14))
    cases = [
        (lambda out: fused_lerp(start if out is None else out, end, 0.1, out=out), torch.lerp, (end, 0.1)),
        (lambda out: fused_lerp(start if out is None else out, end, 0.9, out=out), torch.lerp, (end, 0.9)),
        (lambda out: fused_addcdiv(start if out is None else out, end, divisor, -0.01, out=out),
         lambda s, a, b: torch.addcdiv(s, a, b, value=-0.01), (end, divisor)),
        (lambda out: multiply_by_number(start if out is None else out, 0.999, out=out), torch.mul, (0.999,)),
        (lambda out: divide_by_number(start if out is None else out, 0.3, out=out), torch.div, (0.3,)),
        (lambda out: add_number(start if out is None else out, 1e-8, out=out), torch.add, (1e-8,)),
    ]
    for run, torch_op, args in cases:
        copied = np.asarray(run(None))
        place = start.copy()
        written = run(place)
        assert written is place and written.dtype == copied.dtype == dtype
        assert written.tobytes() == copied.tobytes()
        torch_args = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        expected = torch_op(torch.from_numpy(start.copy()), *torch_args).numpy()
        if dtype == np.float32:  # torch's CPU kernels round float32 as these helpers do
            assert written.tobytes() == np.asarray(expected).tobytes()
        else:
            np.testing.assert_allclose(written, expected, rtol=2e-3 if dtype == np.float16 else 1e-12)


# ---------------------------------------------------------------- optimizer steps, as the workloads run them
@pytest.fixture
def torchs_sqrt(monkeypatch):
    """NumPy's float32 sqrt replaced by torch's (MKL's, not correctly rounded), so that Adam's
    step is compared on the rest of its arithmetic (as tests/compat/test_s27_fixes4.py does)."""
    numpy_sqrt = np.sqrt

    def sqrt(array, *args, **kwargs):
        array = np.asarray(array)
        if array.dtype != np.float32 or array.ndim == 0 or args or kwargs:
            return numpy_sqrt(array, *args, **kwargs)
        return torch.from_numpy(np.ascontiguousarray(array)).sqrt().numpy()

    monkeypatch.setattr(np, "sqrt", sqrt)


def _steps(lib, optimizer_name: str, kwargs: dict, steps: int = 4) -> list:
    """Parameters of several shapes (a 0-d one among them) after each of ``steps`` steps on fixed
    gradients."""
    shapes = [(16, 8), (16,), (), (3, 1)]
    params = [lib.tensor(_random(20 + i, *shape), requires_grad=True) for i, shape in enumerate(shapes)]
    optimizer = getattr(lib.optim, optimizer_name)(params, **kwargs)
    history = []
    for step in range(steps):
        for i, (p, shape) in enumerate(zip(params, shapes)):
            p.grad = lib.tensor(_random(100 * step + i, *shape))
        optimizer.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history


@pytest.mark.parametrize("optimizer_name, kwargs", [
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 1e-2, "amsgrad": True}),
    ("Adam", {"lr": 1e-2, "weight_decay": 1e-2}),
    ("Adam", {"lr": 1e-2, "weight_decay": 0.1, "maximize": True}),
])
def test_optimizer_steps_are_torchs_to_the_bit(optimizer_name, kwargs, torchs_sqrt):
    ours, theirs = _steps(cr, optimizer_name, kwargs), _steps(torch, optimizer_name, kwargs)
    for step_ours, step_theirs in zip(ours, theirs):
        for a, b in zip(step_ours, step_theirs):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert (_bits(a) == _bits(b)).all()


# ---------------------------------------------------------------- TensorIterator's output layout
def _layouts(lib, seed: int):
    """Operands of shape (3, 4, 5) in several layouts, as (name, tensor) pairs."""
    base = _random(seed, 3, 4, 5)
    t = lib.from_numpy(base.copy())
    permuted = lib.from_numpy(np.ascontiguousarray(base.transpose(2, 0, 1)).copy()).permute(1, 2, 0)
    return [
        ("contiguous", t),
        ("permuted", permuted),
        ("transposed", lib.from_numpy(np.ascontiguousarray(base.transpose(0, 2, 1)).copy()).transpose(1, 2)),
        ("expanded", lib.from_numpy(base[:, :1, :].copy()).expand(3, 4, 5)),
        ("expanded row", lib.from_numpy(base[0, 0].copy()).expand(3, 4, 5)),
        ("sliced", lib.from_numpy(np.repeat(base, 2, axis=2).copy())[:, :, ::2]),
    ]


@pytest.mark.parametrize("op", ["add", "mul", "sub", "div", "maximum"])
def test_binary_results_are_laid_out_as_torchs(op):
    ours, theirs = _layouts(cr, 15), _layouts(torch, 15)
    for name_a, a in ours:
        for name_b, b in ours:
            a_t = dict(theirs)[name_a]
            b_t = dict(theirs)[name_b]
            out, expected = getattr(cr, op)(a, b), getattr(torch, op)(a_t, b_t)
            assert out.stride() == expected.stride(), (op, name_a, name_b)
            assert (_bits(out.numpy()) == _bits(expected.numpy())).all(), (op, name_a, name_b)


# ---------------------------------------------------------------- dropout's mask from the uniforms' bits
@pytest.mark.parametrize("threshold", [0.9, 0.5, 0.1, 1 - 2**-53, 2**-53, 0.0, -0.5, 1.0, 1.5, float("nan")])
def test_uniforms_below_a_threshold_decided_on_their_bits_are_the_doubles_comparison(threshold):
    from chainrule.ops.mt19937_stream import MT19937Stream

    by_bits, by_doubles = MT19937Stream(7), MT19937Stream(7)
    for size in [(1000,), (3, 4, 5), ()]:
        mask, expected = by_bits.double_uniforms_below(size, threshold), by_doubles.random(size) < threshold
        assert type(mask) is type(expected) and np.shape(mask) == np.shape(expected)
        assert (np.asarray(mask) == np.asarray(expected)).all()
    assert (by_bits.words(4) == by_doubles.words(4)).all()  # both streams left at the same place


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("transposed", [False, True])
def test_dropout_masks_are_torchs_after_manual_seed(p, transposed):
    x = np.abs(_random(16, 6, 40)) + 1
    ours, theirs = cr.from_numpy(x.copy()).requires_grad_(True), torch.from_numpy(x.copy()).requires_grad_(True)
    input_ours, input_theirs = (ours.t(), theirs.t()) if transposed else (ours, theirs)
    cr.manual_seed(3)
    torch.manual_seed(3)
    out, expected = cr.nn.functional.dropout(input_ours, p), torch.nn.functional.dropout(input_theirs, p)
    assert type(out.grad_fn).__name__ == type(expected.grad_fn).__name__
    assert (_bits(out.detach().numpy()) == _bits(expected.detach().numpy())).all()
    out.sum().backward()
    expected.sum().backward()
    assert (_bits(ours.grad.numpy()) == _bits(theirs.grad.numpy())).all()


# ---------------------------------------------------------------- the engine's wrapper test
def test_plain_tensor_class_has_no_torch_dispatch_so_the_engine_may_skip_the_lookup():
    # autograd/engine.py's _is_wrapper answers a plain Tensor without looking __torch_dispatch__ up
    assert getattr(cr.Tensor, "__torch_dispatch__", None) is None


def test_fan_out_and_accumulation_match_torch_for_plain_and_wrapper_tensors():
    x = _random(17, 4, 3)
    ours, theirs = cr.from_numpy(x.copy()).requires_grad_(True), torch.from_numpy(x.copy()).requires_grad_(True)
    for t in (ours, theirs):
        y = t * 2
        (y.tanh() + y.sin() * y + y[1:].sum()).sum().backward()  # y fans out three ways
        (t * 3).sum().backward()  # a second backward accumulates into .grad
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-6)
    from chainrule.autograd.engine import _is_wrapper

    class Wrapper(cr.Tensor):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    assert not _is_wrapper(ours) and _is_wrapper(cr.Tensor._make(x).as_subclass(Wrapper))


def test_in_place_helpers_refuse_a_read_only_array_as_the_copies_did():
    start = _random(18, 5)
    start.flags.writeable = False
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        multiply_by_number(start, 0.5, out=start)
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        fused_addcdiv(start, start, np.ones(5, np.float32), 0.1, out=start)
