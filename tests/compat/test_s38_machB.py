"""Session 38, lane machB: what differs from torch on a CPU without AVX-512 (an AMD EPYC with AVX2
and FMA), where torch's vector kernels are its AVX2 ones, oneDNN has no bfloat16 kernels and MKL
takes its non-Intel code paths."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.ops import cpu_softmax_order

torch = pytest.importorskip("torch")


# --- log_softmax: torch's AVX2 kernel adds a row of 8 to 15 in the lanes of one vector ---------

def _lanes_then_halves(row: np.ndarray, lanes: int) -> np.float32:
    """torch's map_reduce_all of one float32 row of ``lanes`` to ``2 * lanes - 1`` elements, written
    out: lane i holds row[i] (+ row[i + lanes]), then lane i += lane i + half, half by half."""
    acc = [row[i] + row[i + lanes] if i + lanes < len(row) else row[i] for i in range(lanes)]
    while len(acc) > 1:
        half = len(acc) // 2
        acc = [acc[i] + acc[i + half] for i in range(half)]
    return acc[0]


@pytest.mark.parametrize("length", range(cpu_softmax_order.LANES, 2 * cpu_softmax_order.LANES))
@pytest.mark.parametrize("count", [1, 3, 200])
def test_add_in_lanes_adds_as_torchs_vector_reduction(length, count):
    rows = (np.random.default_rng(length).standard_normal((count, length)) * 1e3).astype(np.float32)
    before = rows.copy()
    got = cpu_softmax_order.add_in_lanes(rows)
    assert got.shape == (count, 1) and got.dtype == np.float32
    expected = [_lanes_then_halves(row, cpu_softmax_order.LANES) for row in rows]
    np.testing.assert_array_equal(got[:, 0], np.array(expected, np.float32))
    np.testing.assert_array_equal(rows, before)  # the caller's terms (the kept softmax) untouched


@pytest.mark.parametrize("length", range(8, 16))
def test_rows_of_8_to_15_take_torchs_order_for_this_cpu(length):
    rows = np.random.default_rng(length).random((50, length), dtype=np.float32)
    # an AVX-512 kernel holds such a row in one vector (left to right); an AVX2 one in 8 lanes
    expected = (cpu_softmax_order.add_in_order(rows) if cpu_softmax_order.LANES == 16
                else cpu_softmax_order.add_in_lanes(rows))
    np.testing.assert_array_equal(cpu_softmax_order.row_sum(rows), expected)
    assert cpu_softmax_order.LANES == (16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8)


@pytest.mark.parametrize("length", range(8, 16))
def test_log_softmax_rows_of_8_to_15_and_their_gradient_against_torch(length):
    # the mendI test's rows (NumPy's pairwise sum left 43-54 % of them apart from torch on an AVX2
    # CPU, the lanes 11-14 %: the rest is NumPy's float32 exp, not Sleef's)
    x = (np.random.default_rng(length).standard_normal((2000, length)) * 3).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, requires_grad=True)
        out = lib.log_softmax(t, -1)
        out.backward(lib.ones_like(out))
        results.append((out.detach().numpy(), t.grad.numpy(), out.grad_fn.name()))
    (theirs, their_grad, their_node), (ours, our_grad, our_node) = results
    assert (ours != theirs).any(-1).mean() < 0.15
    np.testing.assert_allclose(ours, theirs, rtol=4e-7, atol=4e-7)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-5, atol=1e-5)
    assert our_node == their_node


# --- bfloat16 LSTM: oneDNN only where it has bfloat16 kernels for the CPU ---------------------

@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_lstm_takes_onednns_name_exactly_where_torch_takes_onednn(dtype):
    names = []
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        out, _ = lib.nn.LSTM(3, 4).to(getattr(lib, dtype))(lib.randn(5, 2, 3).to(getattr(lib, dtype)))
        names.append(out.grad_fn.name())
    onednn = dtype == "float32" or torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert (names[0] == "MkldnnRnnLayerBackward0") is onednn
    assert names[1] == ("MkldnnRnnLayerBackward0" if onednn else "StackBackward0")
