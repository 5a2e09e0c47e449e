"""float32 sums added up in the order torch's CPU kernel adds them, to the last bit.

torch's ``sum`` (and ``mean``, which is its sum divided by the count on the CPU, and
``sum_to_size``, which reduces a broadcast gradient by it) accumulates
float32 in float32 (aten/src/ATen/native/cpu/SumKernel.cpp, ``cascade_sum``), so the order of
the additions shows in the last bits where NumPy's pairwise sum adds in another. TensorIterator
hands the kernel a reduced dim and a kept one; it takes one of four paths:

* the reduced dim contiguous and at least one vector long (``vectorized_inner_sum``): the row
  as whole vectors of ``LANES`` floats, those as groups of four vectors (``row_sum``'s four
  interleaved accumulators), each of the ``4 * LANES`` accumulators adding its group after group
  in a cascade (``multi_row_sum``); the vectors left over added to the first accumulator, the
  four folded left to right; then the floats past the last whole vector added from zero one by
  one, and the ``LANES`` lanes after them, left to right;
* the kept dim contiguous and at least one vector long (``vectorized_outer_sum``): blocks of
  ``4 * LANES`` outputs add their rows in one cascade each; the outputs after the last block
  (vector by vector, then one by one: the same order) add theirs as ``row_sum`` does, rows
  ``i, i + 4, i + 8, ...`` in four cascades folded left to right, the rows past the last four
  into the first;
* otherwise the reduced dim the inner one (``scalar_inner_sum``): ``row_sum`` of each row;
* otherwise (``scalar_outer_sum``): groups of four outputs add their rows in one cascade each,
  the outputs left over as ``row_sum``.

A cascade (``multi_row_sum``) adds 16 terms (``2 ** max(4, ceil(log2(n)) // 4)`` of them) into
one accumulator, that into a second after every 16, the second into a third after every 256,
the third into a fourth after every 4,096, and at the end the last partial terms (from zero),
then the second, third and fourth accumulators. The output starts at zero and the kernel adds
its sum into it, so a sum is never -0.

``LANES``: ``Vectorized<float>::size()`` in the kernel torch's dispatch runs for ``sum``: 8
floats, on this AVX512 CPU (torch.backends.cpu.get_cpu_capability() "AVX512") as on AVX2 ones:
with 16 lanes the replay missed 5,028 of 17,823 sums that 8 lanes all matched, so torch's
AVX512 build runs its AVX2 sum kernel (a CPU without AVX2 was not measured).

Replayed here with NumPy in float32 (NumPy adds along an outer axis in order; its pairwise sum
serves only the innermost one): the reduction of one run of dims of an array laid out in memory
as its dims (or a permutation of them that keeps the kept dims in their order), size-1 dims
dropped as TensorIterator drops them. Only below ``GRAIN_SIZE`` elements: beyond it torch splits
a reduction among its threads, which changes the order of a reduction to one output and of an
outer reduction (the threads take slices of the outputs, which regroups the blocks of
``4 * LANES``), and the replay's moves cost more than the sum (a (256, 1024) row sum took
2.2-4.7x NumPy's time); there, and for any other strides, NumPy's pairwise order is kept. Below it
the replay costs some ten NumPy calls a sum, tens of microseconds where NumPy's sum takes one
or a few.
"""

from __future__ import annotations

import math

import numpy as np

LANES = 8  # Vectorized<float>::size() in the kernel torch's sum runs on AVX2 and AVX512 CPUs
ILP = 4  # row_sum's interleaved accumulators, and vectorized_outer_sum's vectors a block
GRAIN_SIZE = 32768  # at::internal::GRAIN_SIZE: past it parallel_reduce splits among threads
_ZERO = np.float32(0.0)


def sum_dims(x: np.ndarray, dims: tuple, keepdim: bool) -> np.ndarray | None:
    """float32 ``x`` summed over the sorted ``dims`` in torch's order, as a C-contiguous array,
    or None where that order is not replayed (see the module note)."""
    size = x.size
    if not dims or size == 0 or size >= GRAIN_SIZE:
        return None
    shape = x.shape
    if 1 in shape:  # TensorIterator drops the dims of size 1: sum without them, then shape the sum
        out_shape = [1 if d in dims else n for d, n in enumerate(shape)] if keepdim else \
            [n for d, n in enumerate(shape) if d not in dims]
        ones = [d for d, n in enumerate(shape) if n == 1]
        dims = tuple([d - sum(one < d for one in ones) for d in dims if shape[d] != 1])
        squeezed = x.reshape([n for n in shape if n != 1])  # (a view: size-1 dims' strides are free)
        total = sum_dims(squeezed, dims, False) if dims else squeezed + _ZERO
        return None if total is None else np.asarray(total).ravel().reshape(out_shape)
    if not x.flags.c_contiguous:
        # TensorIterator visits the dims in the input's memory order: sum the dims in that order
        # (where the kept dims lie in memory as in the output; where not, the output's strides
        # decide some of the order, and that is not replayed)
        order = sorted(range(x.ndim), key=lambda d: -x.strides[d])
        laid = x.transpose(order)
        kept = [d for d in order if d not in dims]
        if not laid.flags.c_contiguous or kept != sorted(kept):
            return None
        total = sum_dims(laid, tuple(sorted(order.index(d) for d in dims)), True)
        if total is None:
            return None
        # (ravel then reshape: C strides for the size-1 dims too, as torch's contiguous result has;
        # ascontiguousarray keeps whatever stride a size-1 dim had in the transposed view)
        total = np.ascontiguousarray(total.transpose(np.argsort(order))).ravel()
        return total.reshape([1 if d in dims else n for d, n in enumerate(shape)] if keepdim
                             else [n for d, n in enumerate(shape) if d not in dims])
    first, last = dims[0], dims[-1]
    if last - first + 1 != len(dims):  # not one run of dims
        return None
    reduced = math.prod(shape[first:last + 1])
    inner = math.prod(shape[last + 1:])
    if inner == 1:  # the trailing dims: one row an output
        total = inner_sum(x.reshape(-1, reduced))
    elif reduced == 1:
        total = x + _ZERO  # nothing to add: each output its one term (+0 for -0)
    else:
        total = outer_sum(x.reshape(-1, reduced, inner))
    if keepdim:
        return total.reshape(tuple(1 if first <= d <= last else n for d, n in enumerate(shape)))
    return total.reshape(shape[:first] + shape[last + 1:])


def inner_sum(rows: np.ndarray) -> np.ndarray:
    """Each row of a C-contiguous float32 (count, length) array added as torch's kernel adds a
    contiguous reduced dim, as a (count,) array."""
    count, length = rows.shape
    if length < LANES:
        return _row_sum(np.ascontiguousarray(rows.T)) + _ZERO
    vectors = length // LANES
    groups = vectors // ILP
    width = ILP * LANES
    if count == 1 and groups < 16:  # one row, no cascade flush: the fewest NumPy calls
        row = rows[0]
        if groups > 1:
            partial = np.add.reduce(row[:groups * width].reshape(groups, width), axis=0)
        else:
            partial = row[:width] if groups else np.zeros(width, np.float32)
        # the first accumulator, the vectors past the last group, the other accumulators, in order
        terms = np.concatenate((partial[:LANES], row[groups * width:vectors * LANES], partial[LANES:]))
        lanes = np.add.reduce(terms.reshape(-1, LANES), axis=0)
        # from zero: the floats past the last vector, then the lanes, left to right
        return np.add.accumulate(np.concatenate((row[vectors * LANES:], lanes)))[-1:] + _ZERO
    if count == 1:  # the groups of four vectors as (groups, width) already
        partial = _cascade(rows[0, :groups * width].reshape(groups, width)) if groups else np.zeros(width, np.float32)
    elif groups:
        # the groups of four vectors as (groups, count * width), C-contiguous, so that each
        # accumulator's terms run down a column; moved as one 128-byte item a group (NumPy copies
        # those many times faster than a (groups, count, width) transpose of floats)
        items = rows[:, :groups * width].view(np.dtype((np.void, width * rows.itemsize)))
        partial = _cascade(items.T.copy().view(np.float32).reshape(groups, count * width))
    else:
        partial = np.zeros(count * width, np.float32)
    # the first accumulator, the vectors past the last group of four, the other accumulators,
    # added in that order: one (terms, count, LANES) array added down
    partial = partial.reshape(count, ILP, LANES)
    extra = vectors - groups * ILP
    terms = np.empty((ILP + extra, count, LANES), np.float32)
    terms[0] = partial[:, 0]
    if extra:
        terms[1:1 + extra] = rows[:, groups * width:vectors * LANES].reshape(count, extra, LANES).transpose(1, 0, 2)
    terms[1 + extra:] = partial[:, 1:].transpose(1, 0, 2)
    lanes = np.add.reduce(terms.reshape(ILP + extra, count * LANES), axis=0).reshape(count, LANES)
    # from zero: the floats past the last vector, then the lanes, left to right
    tail = length - vectors * LANES
    if count == 1:
        return np.add.accumulate(np.concatenate((rows[0, vectors * LANES:], lanes[0])))[-1:] + _ZERO
    terms = np.empty((tail + LANES, count), np.float32)
    terms[:tail] = rows[:, vectors * LANES:].T
    terms[tail:] = lanes.T
    return np.add.reduce(terms, axis=0) + _ZERO


def outer_sum(blocks: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 (count, length, width) array added over its middle axis as
    torch's kernel adds a reduced dim beside a contiguous kept one, as a (count, width) array."""
    count, length, width = blocks.shape
    step = ILP * LANES if width >= LANES else ILP
    whole = width - width % step
    out = np.empty((count, width), np.float32)
    if count == 1:
        columns = blocks[0]
    else:  # (length, count, width): each output's terms down a column
        columns = np.ascontiguousarray(blocks.transpose(1, 0, 2))
    if whole:
        out[:, :whole] = _cascade(columns[:, :, :whole].reshape(length, -1) if count > 1
                                  else columns[:, :whole]).reshape(count, whole)
    if whole < width:
        part = columns[..., whole:].reshape(length, -1)
        out[:, whole:] = _row_sum(np.ascontiguousarray(part)).reshape(count, width - whole)
    return np.add(out, _ZERO, out=out)


def _row_sum(x: np.ndarray) -> np.ndarray:
    """``row_sum``: each column of a C-contiguous (length, columns) array added down, terms
    ``i, i + 4, ...`` in four cascades, the terms past the last four added to the first, the
    four folded left to right."""
    length, columns = x.shape
    groups = length // ILP
    if groups:
        partial = _cascade(x[:groups * ILP].reshape(groups, ILP * columns)).reshape(ILP, columns)
    else:
        partial = np.zeros((ILP, columns), np.float32)
    first = partial[0]
    for i in range(groups * ILP, length):
        first += x[i]
    for k in range(1, ILP):
        first += partial[k]
    return first


def _cascade(x: np.ndarray) -> np.ndarray:
    """``multi_row_sum``: each column of a C-contiguous (length, columns) array added down in
    torch's cascade of four accumulators."""
    length, columns = x.shape
    step = 1 << max(4, (length - 1).bit_length() // 4)
    if length < step:
        return _add_down(x)
    whole, tail = divmod(length, step)
    sums = np.add.reduce(x[:whole * step].reshape(whole, step, columns), axis=1)
    total = _add_down(x[whole * step:]) if tail else np.zeros(columns, np.float32)
    for _ in range(2):  # the second and third accumulators flush every `step` terms
        whole, tail = divmod(len(sums), step)
        if tail:
            total += _add_down(sums[whole * step:])
        if not whole:
            return total
        sums = np.add.reduce(sums[:whole * step].reshape(whole, step, columns), axis=1)
    total += _add_down(sums)
    return total


def _add_down(columns: np.ndarray) -> np.ndarray:
    """Each column of C-contiguous ``columns`` added top to bottom. NumPy adds the rows of an
    (m, n > 1) array in order; a single column it would add pairwise, so it takes a running total."""
    if len(columns) == 1:
        return columns[0].copy()
    return np.add.accumulate(columns[:, 0])[-1:] if columns.shape[1] == 1 else np.add.reduce(columns, axis=0)
