"""float32 vector norms added up in the order torch's CPU kernel adds them, to the last bit.

torch's ``linalg.vector_norm`` (and ``torch.norm``, which is it) accumulates a float32 norm in
float32 (``opmath_type<float>``), so the order of the additions shows in the last bits, and a
``max_norm`` renorm decides on them. Its kernel (aten/src/ATen/native/cpu/ReduceOpsKernel.cpp,
``norm_kernel_tensor_iterator_impl``) takes one of two paths:

* the 2-norm over dims that form one contiguous run at the end of memory (after TensorIterator
  merges them): eight float32 lanes (an AVX2 ``Vectorized<float>``) each sum their squares, the
  lanes are folded left to right, and the ``size % 8`` elements left over are added one by one:
  groups of four as ``acc + x*x`` (the compiler's unrolled, unfused copy of the loop), the last
  one to three as a fused multiply-add;
* any other order or dims (``binary_kernel_reduce``): one accumulator per output, ``acc + f(x)``
  over the reduced elements in memory order (smallest stride innermost), with ``f`` = ``x*x``,
  ``|x|`` or ``powf(|x|, p)`` and ``powf(acc, 1/p)`` (``sqrt`` for the 2-norm) at the end.

Both are replayed here with NumPy: a sequential add along an outer axis (NumPy adds those in
order, its pairwise summation serves only the innermost axis), ``powf`` as the float64 power
rounded to float32 (glibc's ``powf`` is within an ulp of it: 8 of 11,904 norms of other orders
than 1 and 2 stayed an ulp apart), a fused multiply-add as the float64 sum of the exact float64
square. Measured against torch 2.13 on this machine: the 2-norm of 1,000 rows for each length
1 to 49 and 63, 64, 65, 100, 127, 255, 1,000 and 1,023: every row matched.
"""

from __future__ import annotations

import math

import numpy as np

LANES = 8  # Vectorized<float>::size() in the AVX2 kernel torch's CPU dispatch picks for the norm
# binary_kernel_reduce splits a reduction this long (at::internal::GRAIN_SIZE) among threads,
# so beyond it the order depends on the thread count and NumPy's own sum is kept
GRAIN_SIZE = 32768
# NumPy adds in order one block of rows at a time, at ~15 ns a block, after a fixed ~6 us of
# setup: with few outputs that made x.norm() of 512 elements 8.3 -> 14.5 us, of 32,768 20 -> 99 us,
# and clip_grad_norm_ of a small MLP's 4 gradients 369 -> 518 us. Fewer outputs than this keep
# NumPy's pairwise order (within an ulp or two of torch's); the row norms of normalize, renorm and
# Embedding's max_norm, where the last bit decides a rescale, are replayed.
FEW_OUTPUTS = 16


def vector_norm(x: np.ndarray, ord: float, dims: tuple, keepdim: bool) -> np.ndarray | None:
    """The ``ord``-norm of float32 ``x`` over ``dims`` as torch's CPU kernel rounds it, or None
    where its order is not replayed (inf/-inf/0 norms round nothing; a long reduction)."""
    if not dims or x.size == 0 or ord == 0.0 or ord == np.inf or ord == -np.inf:
        return None
    shape = x.shape
    count = x.size // math.prod([shape[d] for d in dims])
    if count < FEW_OUTPUTS:
        return None
    out_shape = tuple([1 if d in dims else n for d, n in enumerate(shape)]) if keepdim else \
        tuple([n for d, n in enumerate(shape) if d not in dims])
    if dims[0] == x.ndim - len(dims) and x.flags.c_contiguous:  # (dims is sorted)
        rows, one_run = x.reshape(count, -1), True  # the trailing dims: torch's common case
    else:
        # TensorIterator drops size-1 dims and visits the reduced ones smallest stride first
        reduced = sorted((d for d in dims if shape[d] != 1), key=lambda d: (abs(x.strides[d]), shape[d]))
        kept = [d for d in range(x.ndim) if d not in dims]
        ones = [d for d in dims if shape[d] == 1]
        rows = np.transpose(x, kept + ones + reduced[::-1]).reshape(count, -1)
        one_run = _one_contiguous_run(x, reduced)
    if ord == 2.0 and one_run:
        return _lane_two_norm(rows).reshape(out_shape)
    if rows.shape[1] >= GRAIN_SIZE:
        return None
    # one column per output, its terms down it
    magnitude = np.abs(rows.T, order="C")
    if ord == 2.0:
        terms = np.multiply(magnitude, magnitude, out=magnitude)
    elif ord == 1.0:
        terms = magnitude
    else:
        terms = _powf(magnitude, np.float32(ord))
    total = _add_down(terms)
    if ord == 2.0:
        total = np.sqrt(total)
    elif ord != 1.0:
        total = _powf(total, np.float32(1.0) / np.float32(ord))
    return total.reshape(out_shape)


def _one_contiguous_run(x: np.ndarray, reduced: list) -> bool:
    # is_reduce_lastdim: the reduced dims merge into one whose stride is one element
    stride = x.itemsize
    for d in reduced:
        if x.strides[d] != stride:
            return False
        stride *= x.shape[d]
    return True


def _lane_two_norm(rows: np.ndarray) -> np.ndarray:
    count, length = rows.shape
    whole = length - length % LANES
    total = np.zeros(count, np.float32)
    if whole:
        # the elements as (blocks, rows * lanes), C-contiguous, so that each lane's squares are
        # added block after block; moved as one 32-byte item per block (NumPy copies those ten
        # times faster than a (blocks, rows, lanes) transpose of floats), squared in the copy
        lane_blocks = rows[:, :whole].view(np.dtype((np.void, LANES * rows.itemsize))).T.copy()
        squares = lane_blocks.view(np.float32).reshape(whole // LANES, -1)
        lanes = np.add.reduce(np.multiply(squares, squares, out=squares), axis=0)
        # the lanes folded left to right: (lanes, rows) C-contiguous, added down in order
        total = _add_down(np.ascontiguousarray(lanes.reshape(count, LANES).T))
    unfused_end = whole + (length - whole) // 4 * 4
    for d in range(whole, unfused_end):
        total = total + rows[:, d] * rows[:, d]
    if unfused_end < length:  # one rounding per element, as an FMA's (to inf past float32's range)
        squares = np.square(rows[:, unfused_end:], dtype=np.float64)  # exact
        with np.errstate(over="ignore"):
            for d in range(length - unfused_end):
                total = np.add(total, squares[:, d], dtype=np.float64).astype(np.float32)
    return np.sqrt(total)


def _add_down(columns: np.ndarray) -> np.ndarray:
    """Each column of C-contiguous ``columns`` added top to bottom. NumPy adds the rows of an
    (m, n > 1) array in order; a single column it would add pairwise, so it takes a running total."""
    return np.cumsum(columns[:, 0])[-1:] if columns.shape[1] == 1 else np.add.reduce(columns, axis=0)


def _powf(base: np.ndarray, exponent: np.float32) -> np.ndarray:
    with np.errstate(all="ignore"):  # powf's inf for 0 ** -p and its overflow, quietly
        return np.power(base.astype(np.float64), float(exponent)).astype(np.float32)
