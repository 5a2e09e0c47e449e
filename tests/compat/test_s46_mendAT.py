"""Session 46 lane mendAT: numerics and conversions, bitwise against torch (skipped without it)."""
import warnings

import numpy as np
import pytest

import chainrule
from chainrule.ops.cpu_features import AVX512_CORE

torch = pytest.importorskip("torch")


def _bits(t) -> list:
    a = np.ascontiguousarray(np.asarray(t.detach().numpy()))
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.itemsize]).ravel().tolist()


def _same_bits(make, dtype_name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # var's "degrees of freedom is <= 0", alike in both
        expected = make(torch, getattr(torch, dtype_name))
        got = make(chainrule, getattr(chainrule, dtype_name))
    assert _bits(got) == _bits(expected)


def _ulps_apart(got, expected) -> np.ndarray:
    """How many float steps each element of ``got`` lies from ``expected`` (same-signed finite
    values; infinities and NaNs must sit in the same places, as 0)."""
    g, e = (np.ascontiguousarray(np.asarray(t.detach().numpy())).ravel() for t in (got, expected))
    assert g.dtype == e.dtype and np.array_equal(np.isnan(g), np.isnan(e))
    assert np.array_equal(g[~np.isfinite(e)], e[~np.isfinite(e)])
    finite = np.isfinite(e)
    signed = {4: np.int32, 8: np.int64}[g.itemsize]
    assert np.array_equal(np.signbit(g[finite]) | (g[finite] == 0), np.signbit(e[finite]) | (e[finite] == 0))
    steps = np.zeros(g.shape, np.int64)
    steps[finite] = np.abs(g[finite].view(signed).astype(np.int64) - e[finite].view(signed).astype(np.int64))
    return steps


# torch.log on CPU is MKL's vector log (vsLn/vdLn through ATen's vml). On the AVX-512 CPUs this
# suite ran on until session 53, its last bit was that of chainrule's log (float64's log, rounded
# to float32 for float32), and the logit/BCE tests below held to the bit there. On a CPU without
# AVX-512 (AVX2), MKL takes another routine (the same bits with ATEN_CPU_CAPABILITY=default: MKL's
# choice, not ATen's vector width): measured on an AMD EPYC (AVX2 + FMA), torch.log of 200,000
# uniform values in [0, 100) differed from the float64-rounded log in 6,461 float32 and 29 float64
# elements, each by one ulp. Not replayed: MKL's routine is a vendor's, its order unknown.
_LOG_IS_REPLAYED = AVX512_CORE


# ---------------------------------------------------------------- item 1: the sign of an empty reduction's NaN
_EMPTY = {
    # sum / 0: x86's default NaN (negative)
    "mean_dim": lambda m, dt: m.zeros(3, 0, dtype=dt).mean(1),
    "mean_all": lambda m, dt: m.zeros(0, dtype=dt).mean(),
    "mean_keepdim": lambda m, dt: m.zeros(0, 4, dtype=dt).mean(0, keepdim=True),
    "mse_loss": lambda m, dt: m.nn.functional.mse_loss(m.zeros(0, dtype=dt), m.zeros(0, dtype=dt)),
    "l1_loss": lambda m, dt: m.nn.functional.l1_loss(m.zeros(0, dtype=dt), m.zeros(0, dtype=dt)),
    "bce": lambda m, dt: m.nn.functional.binary_cross_entropy(m.zeros(0, dtype=dt), m.zeros(0, dtype=dt)),
    # torch's fill with a (positive) quiet NaN
    "var": lambda m, dt: m.zeros(3, 0, dtype=dt).var(1),
    "var_all": lambda m, dt: m.zeros(0, dtype=dt).var(),
    "var_keepdim": lambda m, dt: m.zeros(0, 4, dtype=dt).var(0, keepdim=True, correction=0),
    "std": lambda m, dt: m.zeros(3, 0, dtype=dt).std(1),
    "var_mean": lambda m, dt: m.stack(m.var_mean(m.zeros(3, 0, dtype=dt), 1)),
    "std_mean": lambda m, dt: m.stack(m.std_mean(m.zeros(0, dtype=dt))),
    "cross_entropy": lambda m, dt: m.nn.functional.cross_entropy(m.zeros(0, 3, dtype=dt), m.zeros(0, dtype=m.long)),
    "nll_loss_weight": lambda m, dt: m.nn.functional.nll_loss(m.zeros(0, 3, dtype=dt), m.zeros(0, dtype=m.long),
                                                              weight=m.ones(3, dtype=dt)),
    # unchanged, beside them: 0/0 after the reduction of something, and every target ignored
    "std_no_dof": lambda m, dt: m.zeros(1, 4, dtype=dt).std(0, correction=2),
    "nanmean": lambda m, dt: m.zeros(3, 0, dtype=dt).nanmean(1),
    "nll_all_ignored": lambda m, dt: m.nn.functional.nll_loss(m.zeros(2, 3, dtype=dt), m.tensor([-100, -100])),
    "sum_over_zero": lambda m, dt: m.zeros(0, dtype=dt).sum() / 0,
}


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(_EMPTY))
def test_empty_reduction_nan_sign(case, dtype_name):
    _same_bits(_EMPTY[case], dtype_name)


def test_empty_half_mean_nan_sign():
    _same_bits(lambda m, dt: m.zeros(3, 0, dtype=dt).mean(1), "float16")


# ---------------------------------------------------------------- item 2: binary_cross_entropy's gradients, logit
def _bce_grads(m, dtype_name, reduction, weighted, create_graph):
    rng = np.random.default_rng(1)
    dtype = getattr(m, dtype_name)
    p = m.tensor(rng.random((6, 5)) * 0.98 + 0.01, dtype=dtype, requires_grad=True)
    t = m.tensor(rng.random((6, 5)), dtype=dtype, requires_grad=True)
    scale = m.tensor(rng.random((6, 5)), dtype=dtype)
    kwargs = {"weight": scale} if weighted else {}
    loss = m.nn.functional.binary_cross_entropy(p, t, reduction=reduction, **kwargs)
    if reduction == "none":
        loss = (loss * scale).sum()
    grads = m.autograd.grad(loss, (p, t), create_graph=create_graph)
    if not create_graph:
        return grads
    return grads + m.autograd.grad((grads[0] * grads[0]).sum() + grads[1].sum() * 0.5, (p, t))


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_binary_cross_entropy_gradients_bitwise(dtype_name, reduction, weighted, create_graph):
    """torch weighs and divides by the count after the elementwise gradient formula (and its
    target gradient is -logit(p)): the gradients match to the bit, first and second order."""
    expected = _bce_grads(torch, dtype_name, reduction, weighted, create_graph)
    got = _bce_grads(chainrule, dtype_name, reduction, weighted, create_graph)
    # (float64 on a CPU without AVX-512: all four gradients to the bit on an AMD EPYC, MKL's double
    # log being off the rounded one in 29 of 200,000 values, none of these 30)
    if _LOG_IS_REPLAYED or dtype_name == "float64":
        for e, g in zip(expected, got):
            assert _bits(g) == _bits(e)
        return
    # float32 on a CPU without AVX-512: the target gradient, -logit(p), takes torch.log's last bit
    # from MKL's AVX2 log (see _LOG_IS_REPLAYED); measured on an AMD EPYC: 2 or 3 of its 30
    # elements one ulp off, every other gradient (the input's, both second-order ones) to the bit
    for i, (e, g) in enumerate(zip(expected, got)):
        if i == 1:
            steps = _ulps_apart(g, e)
            assert steps.max() <= 1 and np.count_nonzero(steps) <= 6
        else:
            assert _bits(g) == _bits(e)


def test_binary_cross_entropy_one_node_and_weight_refused():
    p = chainrule.tensor([0.2, 0.7], requires_grad=True)
    t = chainrule.tensor([0.0, 1.0])
    loss = chainrule.nn.functional.binary_cross_entropy(p, t, weight=chainrule.tensor([1.0, 2.0]))
    assert type(loss.grad_fn).__name__ == "BinaryCrossEntropyBackward0"
    assert type(loss.grad_fn.next_functions[0][0]).__name__ == "AccumulateGrad"  # as torch's: no inner nodes
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        chainrule.nn.functional.binary_cross_entropy(p, t, weight=chainrule.tensor([1.0, 2.0], requires_grad=True))


@pytest.mark.parametrize("eps", [None, 1e-6, 0.05])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_logit_bitwise(dtype_name, eps):
    """torch's logit is log(p / (1 - p)) with torch.log's last bit, not log(p) - log1p(-p)."""
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.random(1003), [0.0, 1.0, 0.5, 1e-30, 1 - 1e-7]])
    make = lambda m, dt: m.logit(m.tensor(values, dtype=dt), eps)  # noqa: E731
    if _LOG_IS_REPLAYED:
        _same_bits(make, dtype_name)
        return
    # a CPU without AVX-512: torch.log's last bit is MKL's AVX2 log's (see _LOG_IS_REPLAYED);
    # measured on an AMD EPYC: float32 66-69 of these 1,008 values one ulp off, float64 1; the
    # infinities at 0 and 1 in place, nothing further than one ulp
    steps = _ulps_apart(make(chainrule, getattr(chainrule, dtype_name)), make(torch, getattr(torch, dtype_name)))
    assert steps.max() <= 1
    assert np.count_nonzero(steps) <= {"float32": 120, "float64": 4}[dtype_name]


# ---------------------------------------------------------------- item 4: a size-1 dim's stride in a binary op's result
_ODD = {
    "mul_number": lambda m, x: x.mul(1.5),
    "times_number": lambda m, x: x * 1.5,
    "plus_number": lambda m, x: x + 1,
    "reflected_minus": lambda m, x: 2 - x,
    "over_number": lambda m, x: x / 2,
    "times_0d": lambda m, x: x.mul(m.tensor(1.5)),
    "times_broadcast": lambda m, x: x * m.ones(10),
    "plus_self": lambda m, x: x + x,  # (one shape, torch-contiguous: a fresh contiguous result)
}


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("case", sorted(_ODD))
def test_size_one_dim_stride_of_binary_op(case, requires_grad):
    """torch's TensorIterator sorts a size-1 dim among the others by its stride: a (2, 3, 1, 10) of
    strides (30, 10, 1, 1) times a number keeps them, where NumPy's row-major result had (30, 10, 10, 1)."""
    def run(m):
        x = m.empty_strided((2, 3, 1, 10), (30, 10, 1, 1)).fill_(1.0).requires_grad_(requires_grad)
        return tuple(_ODD[case](m, x).stride())

    assert run(chainrule) == run(torch)
