"""Session 46 lane mendAT: numerics and conversions, bitwise against torch (skipped without it)."""
import warnings

import numpy as np
import pytest

import chainrule

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
