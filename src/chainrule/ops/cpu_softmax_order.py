"""float32 log-softmax sums and logs rounded nearer the way torch's CPU kernel rounds them.

torch's ``log_softmax`` over the last dim (aten/src/ATen/native/cpu/LogSoftmaxKernelImpl.h,
``serial_vec_log_softmax_lastdim_range``, compiled for AVX512 where the CPU has it) takes each
row's maximum, adds ``exp(x - max)`` up in the lanes of one ``Vectorized<float>``
(``map_reduce_all``: lane ``i`` adds elements ``i, i + L, i + 2L, ...`` in order, then the lanes
are folded by halves; a row shorter than ``L`` is added left to right), takes Sleef's ``logf``
of the sum and writes ``(x - max) - log(sum)``. Along any other dim
(``serial_vec_logsoftmax_range``) each output adds its terms down the dim in order.

Replayed here where it is cheap: the left-to-right sum of rows shorter than a vector (NumPy adds
fewer than 8 in order itself, 8 to 15 pairwise); on an AVX2 CPU the lanes of rows of 8 to 15, one
vector and a part of another (NumPy's pairwise sum left 43-54 % of 2000 rows of each length an
ulp or two from torch's, the replay 11-14 %); and the log as float64's rounded to float32 (Sleef's
``logf`` is that value but for about 0.15 % of inputs; NumPy's float32 ``log`` misses it far more
often). Left as NumPy computes them, measured on this machine: the lane order of
longer rows (replayed with NumPy it made the forward 15-65 % slower) and the ``exp``, NumPy's
where torch's is Sleef's ``expf`` (a replay of its polynomial, some thirty passes over the data,
matched torch's log-softmax on every row tried); the exp alone leaves about 10 % of rows an ulp
or two from torch's.
"""

from __future__ import annotations

import numpy as np

from .cpu_features import AVX512_CORE

# torch dispatches its softmax kernels to AVX512 (16 floats a vector) where the CPU has the
# AVX512 subsets its build asks for, else to AVX2 (8 floats)
LANES = 16 if AVX512_CORE else 8


def row_sum(rows: np.ndarray) -> np.ndarray:
    """Each row of a float32 (count, length) array added up as torch's ``map_reduce_all`` adds
    it where that costs no more than NumPy's own sum, as a (count, 1) column: left to right for
    rows shorter than one vector; in torch's lanes for rows of 8 to 15 on an AVX2 CPU (one vector
    and a part of another); NumPy's pairwise order for longer ones (see the module note)."""
    count, length = rows.shape
    if length < 8 or length >= 16:  # NumPy adds fewer than eight elements left to right too
        return np.add.reduce(rows, axis=1, keepdims=True)
    if length < LANES:
        return add_in_order(rows)
    return add_in_lanes(rows)


def add_in_order(rows: np.ndarray) -> np.ndarray:
    """Each row of a (count, length) array added left to right, as a (count, 1) column."""
    count, length = rows.shape
    if count == 1:  # NumPy would add a single column pairwise: a running total instead
        return np.cumsum(rows[0])[-1:].reshape(1, 1)
    # NumPy adds the rows of an (m, n > 1) array down, in order
    return np.add.reduce(np.ascontiguousarray(rows.T), axis=0).reshape(count, 1)


def add_in_lanes(rows: np.ndarray) -> np.ndarray:
    """Each row of a (count, length) array, ``LANES <= length < 2 * LANES``, added as torch's
    ``map_reduce_all`` adds it, as a (count, 1) column: lane ``i`` holds element ``i`` plus element
    ``i + LANES`` where the row has one, then the lanes are folded by halves (``vec_reduce_all``:
    lane ``i`` plus lane ``i + LANES / 2``, and so on down to one)."""
    count, length = rows.shape
    columns = rows.T.copy()  # a lane's elements of every row side by side; added to in place
    lanes = columns[:LANES]
    lanes[:length - LANES] += columns[LANES:]
    while len(lanes) > 1:
        half = len(lanes) // 2
        lanes = lanes[:half] + lanes[half:]
    return lanes.reshape(count, 1)


def logf(values: np.ndarray) -> np.ndarray:
    """float32 ``values``' log as Sleef's ``logf`` gives it, but where Sleef misses the correctly
    rounded value (about 0.15 % of inputs)."""
    return np.log(values, dtype=np.float64).astype(np.float32)


def half_softmax_vectorized(outer: int, inner: int, threads: int) -> np.ndarray:
    """Which (outer, inner) columns torch's half-precision softmax along a dim that is not the
    last (SoftMaxKernel.cpp's ``_vec_softmax`` for BFloat16/Half) computes in its vectorized
    branch, as an (outer, inner) bool array. ``at::parallel_for`` cuts the ``outer * inner``
    columns into ``threads`` runs of ``ceil(n / threads)``; each run walks its columns, taking
    ``Vectorized<scalar_t>::size()`` (2 * LANES) at once where they stay inside both the run and
    the inner row, else one. A vectorized column keeps its exps in float32 and rounds only the
    quotient; a scalar one writes each exp to the half-precision output first (measured against
    torch 2.13 on AVX512, 1 and 2 threads, bfloat16 and float16: every element equal)."""
    step = 2 * LANES
    n = outer * inner
    idx = np.arange(n)
    chunk = -(-n // max(1, min(threads, n)))
    run_start = idx // chunk * chunk
    row_start = idx // inner * inner
    start = np.maximum(run_start, row_start)
    stop = np.minimum(np.minimum(run_start + chunk, row_start + inner), n)
    return ((idx - start) < (stop - start) // step * step).reshape(outer, inner)
