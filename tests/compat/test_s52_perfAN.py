"""Session 52, lane perfAN: torch.mode of rows longer than 16 holding a NaN, replayed for all rows
at once (cpu_sort_order.mode_index_long_rows) instead of one std::sort replay per row."""

import numpy as np
import pytest
import torch

import chainrule
from chainrule.ops import cpu_sort_order


def _rows(seed: int, count: int, n: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pool = np.array([0.0, -0.0, 1.0, 2.0, -1.0, np.inf, -np.inf, np.nan])
    rows = rng.choice(pool, (count, n)) if seed % 2 else rng.integers(0, 4, (count, n)).astype(float)
    rows[rng.random(rows.shape) < [0.02, 0.1, 0.5][seed % 3]] = np.nan
    rows[::3, 0] = np.nan  # a NaN first, where the insertion sort's front jump passes it
    rows[1::4, -1] = np.nan
    return rows.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed, count, n", [(0, 20, 17), (1, 32, 128), (2, 16, 64), (3, 40, 33), (4, 18, 300)])
def test_rows_at_once_give_the_per_row_replay(seed, count, n, dtype):
    rows = _rows(seed, count, n, dtype)
    expected = [cpu_sort_order.mode_index(row) for row in rows.tolist()]
    np.testing.assert_array_equal(cpu_sort_order.mode_index_long_rows(rows), expected)


def test_few_rows_take_the_per_row_replay(monkeypatch):
    rows = _rows(5, 3, 50, np.float64)
    replayed = cpu_sort_order.mode_index_long_rows(rows)
    monkeypatch.setattr(cpu_sort_order, "_ROWS_AT_ONCE_FROM", 0)
    np.testing.assert_array_equal(cpu_sort_order.mode_index_long_rows(rows), replayed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, dim", [((32, 128), -1), ((8, 16, 64), -1), ((64, 20), 0), ((3, 17, 24), 1),
                                        ((2, 40), -1)])
def test_mode_with_nan_matches_torch(shape, dim, dtype):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 6, shape).astype(dtype)
    x[rng.random(shape) < 0.05] = np.nan
    x.reshape(-1)[::97] = np.inf
    expected_values, expected_indices = torch.mode(torch.from_numpy(x), dim)
    values, indices = chainrule.mode(chainrule.from_numpy(x.copy()), dim)
    np.testing.assert_array_equal(values.numpy(), expected_values.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    assert indices.dtype == chainrule.int64


def test_sort_rows_without_nan_is_unchanged_by_nan_unordered():
    rows = np.random.default_rng(6).integers(0, 5, (24, 70)).astype(np.float32)
    np.testing.assert_array_equal(cpu_sort_order.sort_rows(rows, descending=False, nan_unordered=True),
                                  cpu_sort_order.sort_rows(rows, descending=False))


# ---------------------------------------------------------------- eval-mode float32 batch norm, nothing recording
@pytest.mark.parametrize("shape, layout", [((32, 128), "contiguous"), ((8, 16, 64), "contiguous"),
                                           ((4, 3, 5, 5), "channels_last"), ((6, 4, 7), "transposed"),
                                           ((2, 5), "contiguous")])
@pytest.mark.parametrize("affine", ["weight_and_bias", "weight", "none"])
@pytest.mark.parametrize("grad_mode", ["no_grad", "inference_mode", "nothing_requires_grad"])
def test_unrecorded_eval_batch_norm_is_torchs_and_the_recorded_paths(shape, layout, affine, grad_mode):
    rng = np.random.default_rng(len(shape) * 10 + shape[1])
    c = shape[1]
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    arrays = {"running_mean": rng.standard_normal(c).astype(np.float32),
              "running_var": rng.random(c).astype(np.float32) + 0.1,
              "weight": rng.standard_normal(c).astype(np.float32), "bias": rng.standard_normal(c).astype(np.float32)}

    def run(lib, mode):
        xt = lib.from_numpy(x.copy())
        if layout == "channels_last":
            xt = xt.contiguous(memory_format=lib.channels_last)
        elif layout == "transposed":
            xt = xt.transpose(0, -1).contiguous().transpose(0, -1)
        t = {k: lib.from_numpy(v.copy()) for k, v in arrays.items()}
        weight = lib.nn.Parameter(t["weight"]) if affine != "none" else None
        bias = lib.nn.Parameter(t["bias"]) if affine == "weight_and_bias" else None
        context = {"no_grad": lib.no_grad, "inference_mode": lib.inference_mode,
                   "nothing_requires_grad": lib.enable_grad, "recorded": lib.enable_grad}[mode]()
        if mode == "nothing_requires_grad":
            weight, bias = (p.detach() if p is not None else None for p in (weight, bias))
        with context:
            y = lib.nn.functional.batch_norm(xt, t["running_mean"], t["running_var"], weight, bias, training=False)
        return y

    expected, got, recorded = run(torch, grad_mode), run(chainrule, grad_mode), run(chainrule, "recorded")
    assert got.grad_fn is None and not got.requires_grad
    assert got.is_inference() == expected.is_inference()
    assert tuple(got.stride()) == tuple(expected.stride()) == tuple(recorded.stride())
    np.testing.assert_array_equal(got.numpy().view(np.uint32), recorded.detach().numpy().view(np.uint32))
    if layout == "contiguous":  # (torch's kernel on strided inputs rounds otherwise on some elements)
        np.testing.assert_array_equal(got.numpy().view(np.uint32), expected.numpy().view(np.uint32))


def test_eval_batch_norm_under_a_profiler_still_records_its_ops():
    x = chainrule.randn(4, 3)
    with chainrule.no_grad(), chainrule.autograd.profiler.profile() as prof:
        chainrule.nn.functional.batch_norm(x, chainrule.zeros(3), chainrule.ones(3), training=False)
    # (one node since mendCO's EvalBatchNorm, recorded under torch's op name)
    assert any("native_batch_norm" in event.name for event in prof.function_events)


def test_unrecorded_eval_batch_norm_warns_as_the_recorded_path():
    # inf · 0 and the like are NumPy warnings the ops' applies silence; only 1/sqrt(0) of the
    # running variance, computed outside them, warns (as before the array path)
    import warnings

    x = chainrule.tensor([[np.inf, 1.0], [np.nan, -np.inf]], dtype=chainrule.float32)
    messages = []
    for context in (chainrule.no_grad, chainrule.enable_grad):
        weight = chainrule.zeros(2, requires_grad=context is chainrule.enable_grad)
        with warnings.catch_warnings(record=True) as caught, context():
            warnings.simplefilter("always")
            chainrule.nn.functional.batch_norm(x, chainrule.zeros(2), chainrule.zeros(2), weight, None,
                                               training=False, eps=0.0)
        messages.append(sorted(str(w.message) for w in caught))
    assert messages[0] == messages[1] == ["divide by zero encountered in divide"]


# ---------------------------------------------------------------- check_float
@pytest.mark.parametrize("value", [1e-5, 0.0, -2.5, float("nan"), float("inf")])
def test_check_float_returns_a_python_float_as_given(value):
    from chainrule.ops._arg_parser import check_float

    got = check_float(value, "layer_norm", "eps", position=5)
    assert type(got) is float and (got == value or (got != got and value != value))
