"""float32 and float64 sums added up in the order torch's CPU kernel adds them, to the last bit.

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
AVX512 build runs its AVX2 sum kernel (a CPU without AVX2 was not measured). float64 takes the
same kernel with ``Vectorized<double>::size()`` 4 (``VECTOR_BYTES`` / 8): the replay matched
torch in 3,000 of 3,000 random float64 sums (1-3 dims, any dims, transposed) where NumPy's order
matched 660.

Replayed here with NumPy in the input's dtype (NumPy adds along an outer axis in order; its pairwise sum
serves only the innermost one), size-1 dims dropped as TensorIterator drops them: the reduction
of one run of dims of an array laid out in memory as its dims (or a permutation of them that
keeps the kept dims in their order) directly; any other layout (kept dims out of memory order,
dims that are not one run, strided inputs) as TensorIterator orders it (``_any_layout``: the
reduced dims first, innermost first, then the kept ones in the contiguous output's order,
neighbours coalesced; the first two dims are the kernel's 2-d loop, and each further reduced
position adds its loop's sums into the output in iteration order). Negative or zero strides keep
NumPy's order.

Past ``GRAIN_SIZE`` elements torch splits a reduction among its threads
(``at::get_num_threads()``: chainrule's ``_config.torch_intra_op_threads()``): a reduction to one
output (``two_pass_reduction``) cuts the iteration into ``min(threads, ceil(n / GRAIN_SIZE))``
chunks, each added into its own zeroed slot, the slots then summed; a reduction to several
(``parallel_dim_reduction``) gives each thread a slice of one kept dim, which changes no output's
order where the columns are rounded to 128 bytes (a contiguous kept dim) or the slice is of an
outer dim, and regroups the scalar outer sum's groups of four outputs otherwise (replayed chunk by
chunk). That replay is exact (tests/compat/test_s46_mendAR.py) but costs more than the sum may
(``LARGE``), so there NumPy's pairwise order is kept unless ``LARGE`` is set. Below it the replay
costs some ten NumPy calls a sum, tens of microseconds where NumPy's sum takes one or a few.
"""

from __future__ import annotations

import math

import numpy as np

from . import _config

VECTOR_BYTES = 32  # the AVX2 vector of the kernel torch's sum runs on AVX2 and AVX512 CPUs
LANES = VECTOR_BYTES // 4  # Vectorized<float>::size() there; Vectorized<double>::size() is 4
ILP = 4  # row_sum's interleaved accumulators, and vectorized_outer_sum's vectors a block
GRAIN_SIZE = 32768  # at::internal::GRAIN_SIZE: past it parallel_reduce splits among threads
REPLAYED = (np.dtype(np.float32), np.dtype(np.float64))  # the dtypes whose sums sum_dims replays
_ZERO = np.float32(0.0)  # (+0 keeps a float64 array float64)
# Past GRAIN_SIZE the order is replayed only where this is True. The replay is torch's to the bit
# there too (its thread split included), but NumPy adds the cascade's first level (vectors of 32
# floats, 16 by 16) in inner loops of 32 floats, and it cost more than the 1.5x NumPy's pairwise
# time a large sum may take: x.sum() 5.4x at 1e5 floats, 4.4x at 1e6; (n, n).sum(1) 1.9x-6.1x;
# (n, n).mean(0) 3.1x at 1e5, 1.5x at 1e6 and 4e6; (n, 100).mean(0) 1.8x-2.4x at 1e6-4e6.
LARGE = False


def sum_dims(x: np.ndarray, dims: tuple, keepdim: bool) -> np.ndarray | None:
    """float32 or float64 ``x`` summed over the sorted ``dims`` in torch's order, as a C-contiguous array,
    or None where that order is not replayed (see the module note)."""
    size = x.size
    if not dims or size == 0 or size >= GRAIN_SIZE and not LARGE:
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
            return _any_layout(x, dims, keepdim)
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
        return _any_layout(x, dims, keepdim)
    reduced = math.prod(shape[first:last + 1])
    inner = math.prod(shape[last + 1:])
    if inner == 1 and reduced == size and size >= GRAIN_SIZE:  # one output: split among threads
        total = _two_pass(x.reshape(-1))
    elif inner == 1:  # the trailing dims: one row an output
        total = inner_sum(x.reshape(-1, reduced))
    elif reduced == 1:
        total = x + _ZERO  # nothing to add: each output its one term (+0 for -0)
    else:
        total = outer_sum(x.reshape(-1, reduced, inner))
    if keepdim:
        return total.reshape(tuple(1 if first <= d <= last else n for d, n in enumerate(shape)))
    return total.reshape(shape[:first] + shape[last + 1:])


def inner_sum(rows: np.ndarray) -> np.ndarray:
    """Each row of a C-contiguous float32 or float64 (count, length) array added as torch's kernel adds a
    contiguous reduced dim, as a (count,) array."""
    n_lanes = VECTOR_BYTES // rows.itemsize  # Vectorized<scalar_t>::size()
    count, length = rows.shape
    if length < n_lanes:
        return _row_sum(np.ascontiguousarray(rows.T)) + _ZERO
    vectors = length // n_lanes
    groups = vectors // ILP
    width = ILP * n_lanes
    if 0 < groups < 4096 and (count <= 16 or count <= 32 and groups < 16):
        return _few_rows_sum(rows, vectors, groups)
    if groups < _SHORT_ROW_GROUPS and count > 1:
        return _short_rows_sum(rows, vectors, groups)
    if count == 1 and not groups:  # one row of under four vectors: the fewest NumPy calls
        row = rows[0]
        partial = np.zeros(width, rows.dtype)
        # the first accumulator, the vectors (none in a group of four), the other accumulators, in order
        terms = np.concatenate((partial[:n_lanes], row[:vectors * n_lanes], partial[n_lanes:]))
        lanes = np.add.reduce(terms.reshape(-1, n_lanes), axis=0)
        # from zero: the floats past the last vector, then the lanes, left to right
        return np.add.accumulate(np.concatenate((row[vectors * n_lanes:], lanes)))[-1:] + _ZERO
    if count == 1:  # the groups of four vectors as (groups, width) already
        partial = _cascade(rows[0, :groups * width].reshape(groups, width)) if groups else np.zeros(width, rows.dtype)
    elif groups:
        # the groups of four vectors as (groups, count * width), C-contiguous, so that each
        # accumulator's terms run down a column; moved as one 128-byte item a group (NumPy copies
        # those many times faster than a (groups, count, width) transpose of floats)
        items = rows[:, :groups * width].view(np.dtype((np.void, width * rows.itemsize)))
        partial = _cascade(items.T.copy().view(rows.dtype).reshape(groups, count * width))
    else:
        partial = np.zeros(count * width, rows.dtype)
    # the first accumulator, the vectors past the last group of four, the other accumulators,
    # added in that order: one (terms, count, n_lanes) array added down
    partial = partial.reshape(count, ILP, n_lanes)
    extra = vectors - groups * ILP
    terms = np.empty((ILP + extra, count, n_lanes), rows.dtype)
    terms[0] = partial[:, 0]
    if extra:
        terms[1:1 + extra] = rows[:, groups * width:vectors * n_lanes].reshape(count, extra, n_lanes).transpose(1, 0, 2)
    terms[1 + extra:] = partial[:, 1:].transpose(1, 0, 2)
    lanes = np.add.reduce(terms.reshape(ILP + extra, count * n_lanes), axis=0).reshape(count, n_lanes)
    # from zero: the floats past the last vector, then the lanes, left to right
    tail = length - vectors * n_lanes
    if count == 1:
        return np.add.accumulate(np.concatenate((rows[0, vectors * n_lanes:], lanes[0])))[-1:] + _ZERO
    terms = np.empty((tail + n_lanes, count), rows.dtype)
    terms[:tail] = rows[:, vectors * n_lanes:].T
    terms[tail:] = lanes.T
    return np.add.reduce(terms, axis=0) + _ZERO


def _few_rows_sum(rows: np.ndarray, vectors: int, groups: int) -> np.ndarray:
    """``inner_sum`` of a few rows with 1 to 4095 groups of four vectors (no cascade past its
    third level), each step one NumPy call on the rows as they lie: NumPy adds an array down a
    middle axis in order, and ``accumulate`` adds along a row in order. Fewer calls than the
    transposes below, where those are costlier than walking each row (past some 16 rows)."""
    n_lanes = VECTOR_BYTES // rows.itemsize  # Vectorized<scalar_t>::size()
    count = len(rows)
    width = ILP * n_lanes
    body = rows[:, :groups * width].reshape(count, groups, width)
    if groups < 16:  # one cascade level: each accumulator adds its groups in order
        acc = np.add.reduce(body, axis=1) if groups > 1 else body[:, 0]
    else:
        # the cascade's levels: the groups after the last 16, from zero; plus the sums of 16 groups
        # after the last 256, in order; plus the sums of 16 of those, in order
        whole = groups // 16
        chunks = np.add.reduce(body[:, :whole * 16].reshape(count, whole, 16, width), axis=2)
        acc = np.add.reduce(body[:, whole * 16:], axis=1) if groups > whole * 16 else None
        flushed = whole // 16
        for level in (chunks[:, flushed * 16:],
                      np.add.reduce(chunks[:, :flushed * 16].reshape(count, flushed, 16, width), axis=2)):
            if level.shape[1]:
                level = np.add.reduce(level, axis=1) if level.shape[1] > 1 else level[:, 0]
                acc = level if acc is None else acc + level
    # the first accumulator, the vectors past the last group of four, the other accumulators
    extra = vectors - groups * ILP
    if extra:
        acc = np.concatenate((acc[:, :n_lanes], rows[:, groups * width:vectors * n_lanes], acc[:, n_lanes:]), axis=1)
    lanes = np.add.reduce(acc.reshape(count, ILP + extra, n_lanes), axis=1)
    # from zero: the floats past the last vector, then the lanes, left to right
    if rows.shape[1] > vectors * n_lanes:
        lanes = np.concatenate((rows[:, vectors * n_lanes:], lanes), axis=1)
    return np.add.accumulate(lanes, axis=1)[:, -1] + _ZERO


# Rows of fewer groups of four vectors than this (float32 rows under 96 floats) are summed by
# ``_short_rows_sum``: its calls each cost a pass over the rows, so past two groups the transposing
# path's fewer passes won (one thread, loaded 2-core AVX2 machine: float64 (300, 64), four groups,
# 40 µs against 39; (100, 128), eight, 34 against 26).
_SHORT_ROW_GROUPS = 3


def _short_rows_sum(rows: np.ndarray, vectors: int, groups: int) -> np.ndarray:
    """``inner_sum`` of rows of fewer than ``_SHORT_ROW_GROUPS`` groups of four vectors: each step one
    NumPy call over all the rows' columns of one vector or group (the accumulators' groups added in
    order, the vectors past the last group into the first accumulator, the four folded left to right),
    then the floats past the last vector and the lanes added from zero, left to right, down a
    (terms, rows) copy. The same additions in the same order as the transposing path in
    ``inner_sum``, without its copies of the groups and accumulators (one thread, loaded 2-core AVX2
    machine, float32: (1000, 10) 21 µs instead of 60, (128, 10) 9.3 instead of 17, (300, 64) 30
    instead of 33)."""
    n_lanes = VECTOR_BYTES // rows.itemsize  # Vectorized<scalar_t>::size()
    count, length = rows.shape
    width = ILP * n_lanes
    if groups:
        acc = rows[:, :width]
        if groups > 1:
            acc = np.add(acc, rows[:, width:2 * width])
            for k in range(2, groups):
                acc += rows[:, k * width:(k + 1) * width]
        lanes = acc[:, :n_lanes]
    else:  # no group: the zero accumulators add nothing (the +0 below settles a zero's sign)
        acc = None
        lanes = np.zeros((count, n_lanes), rows.dtype)
    for vector in range(groups * ILP, vectors):
        lanes = lanes + rows[:, vector * n_lanes:(vector + 1) * n_lanes]
    if acc is not None:
        for j in range(1, ILP):
            lanes = lanes + acc[:, j * n_lanes:(j + 1) * n_lanes]
    tail = length - vectors * n_lanes
    terms = np.empty((tail + n_lanes, count), rows.dtype)
    terms[:tail] = rows[:, vectors * n_lanes:].T
    terms[tail:] = lanes.T
    return np.add.reduce(terms, axis=0) + _ZERO


def _two_pass(row: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 or float64 row of at least ``GRAIN_SIZE`` floats added as torch adds a
    reduction to one output (``two_pass_reduction``): ``parallel_for`` cuts the row into
    ``min(threads, ceil(n / GRAIN_SIZE))`` chunks of ``ceil(n / chunks)`` floats (the last one
    shorter), each thread adds its chunk (``inner_sum``) into its own slot of a zeroed buffer of
    ``threads`` floats, and that buffer is then summed (``inner_sum`` again) into the output."""
    threads = _config.torch_intra_op_threads()
    length = len(row)
    used = min(threads, -(-length // GRAIN_SIZE)) if length > GRAIN_SIZE else 1
    if used == 1:  # (one chunk: its sum plus the buffer's zeros is that sum)
        return inner_sum(row.reshape(1, length))
    chunk = -(-length // used)
    buffer = np.zeros((1, threads), row.dtype)
    for thread, start in enumerate(range(0, length, chunk)):
        buffer[0, thread] = inner_sum(row[start:start + chunk].reshape(1, -1))[0]
    return inner_sum(buffer)


def _any_layout(x: np.ndarray, dims: tuple, keepdim: bool) -> np.ndarray | None:
    """``x`` (no size-1 dims, positive strides) summed over ``dims`` in the order TensorIterator
    visits it whatever the layout: its dims sorted with the reduced ones first (innermost first by
    the input's strides), then the kept ones in the order of the contiguous output (the last
    innermost), neighbours coalesced where the input's strides allow; the kernel's 2-d loop takes
    the first two of those (the path chosen by their strides, as ``inner_sum``, ``outer_sum`` and
    their scalar forms), and every further reduced position (the second dim where it is reduced
    too, then the outer ones) adds its loop's sums into the output, in iteration order, from zero.
    None where the order is not replayed (overlapping or negative strides; past ``GRAIN_SIZE``,
    a reduction to one output over more than one dim)."""
    n_lanes = VECTOR_BYTES // x.itemsize  # Vectorized<scalar_t>::size()
    shape, strides = x.shape, x.strides
    if min(strides) <= 0:
        return None
    reduced = sorted(dims, key=lambda d: strides[d])
    order = reduced + [d for d in range(x.ndim - 1, -1, -1) if d not in dims]
    sizes, steps, kinds = [], [], []  # the iteration's dims, innermost first, after coalescing
    for d in order:
        is_reduced = d in dims
        if sizes and kinds[-1] == is_reduced and sizes[-1] * steps[-1] == strides[d]:
            sizes[-1] *= shape[d]
        else:
            sizes.append(shape[d])
            steps.append(strides[d])
            kinds.append(is_reduced)
    itemsize = x.itemsize
    outputs = x.size // math.prod(shape[d] for d in dims)
    if len(sizes) == 1:  # one reduced dim: a row
        if steps[0] == itemsize:
            row = np.lib.stride_tricks.as_strided(x, (sizes[0],), (steps[0],))
            total = _two_pass(row) if x.size >= GRAIN_SIZE else inner_sum(row.reshape(1, -1))
        elif x.size >= GRAIN_SIZE:
            return None
        else:
            column = np.lib.stride_tricks.as_strided(x, (sizes[0], 1), (steps[0], 0)).copy()
            total = _row_sum(column) + _ZERO
    else:
        n0, n1 = sizes[0], sizes[1]
        chunk = n1  # the 2-d loop's kept (or second reduced) dim as the threads split it
        vectorized_inner = steps[0] == itemsize and n0 >= n_lanes
        vectorized_outer = not vectorized_inner and steps[1] == itemsize and n1 >= n_lanes
        scalar_inner = not (vectorized_inner or vectorized_outer) and steps[0] < steps[1]
        if x.size >= GRAIN_SIZE:
            if outputs == 1:
                return None
            threads = _config.torch_intra_op_threads()
            if threads > 1 and not (vectorized_inner or vectorized_outer or scalar_inner):
                # parallel_dim_reduction splits the outermost kept dim at least `threads` long (else
                # the longest); splitting the 2-d loop's kept dim regroups the outputs in fours
                # unless the columns are rounded to 128 bytes (contiguous ones)
                kept = [i for i in range(len(sizes)) if not kinds[i]]
                split = next((i for i in reversed(kept) if sizes[i] >= threads), None)
                if split is None:
                    split = max(reversed(kept), key=lambda i: sizes[i])
                if split == 1 and steps[1] != itemsize:  # (not rounded): parallel_for's chunks
                    chunk = -(-n1 // min(threads, n1))
        # the view, outermost dim first: (outer..., n1, n0)
        view = np.lib.stride_tricks.as_strided(x, sizes[::-1], steps[::-1])
        if vectorized_inner:
            loops = inner_sum(np.ascontiguousarray(view).reshape(-1, n0))
        elif scalar_inner:
            loops = _row_sum(np.ascontiguousarray(view.reshape(-1, n0).T)) + _ZERO
        else:
            blocks = np.ascontiguousarray(np.swapaxes(view, -1, -2)).reshape(-1, n0, n1)
            loops = np.concatenate([outer_sum(np.ascontiguousarray(blocks[..., start:start + chunk]),
                                              vectorized_outer) for start in range(0, n1, chunk)], axis=-1)
        loops = loops.reshape(sizes[:0:-1])  # (outer..., n1): each 2-d loop's sums
        # every reduced position past the first dim adds into its output in iteration order
        axes = range(len(sizes) - 1)  # loops' axes, outermost first: iteration dim len(sizes) - 1 - a
        folded = [a for a in axes if kinds[len(sizes) - 1 - a]]
        if folded:
            kept_axes = [a for a in axes if not kinds[len(sizes) - 1 - a]]
            terms = np.ascontiguousarray(loops.transpose(folded + kept_axes))
            total = _add_down(terms.reshape(math.prod(loops.shape[a] for a in folded), -1))
        else:
            total = loops
    total = np.ascontiguousarray(total).ravel()  # the kept dims in the output's (C) order
    return total.reshape([1 if d in dims else n for d, n in enumerate(shape)] if keepdim
                         else [n for d, n in enumerate(shape) if d not in dims])


def outer_sum(blocks: np.ndarray, vectorized: bool = True) -> np.ndarray:
    """A C-contiguous float32 or float64 (count, length, width) array added over its middle axis as
    torch's kernel adds a reduced dim beside a contiguous kept one, as a (count, width) array
    (``vectorized`` False: as it adds one beside a strided kept one, in groups of four outputs)."""
    n_lanes = VECTOR_BYTES // blocks.itemsize  # Vectorized<scalar_t>::size()
    count, length, width = blocks.shape
    step = ILP * n_lanes if width >= n_lanes and vectorized else ILP
    whole = width - width % step
    out = np.empty((count, width), blocks.dtype)
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
    four folded left to right. (A sum of zeros may come out +0 where torch's is -0: every caller
    adds +0 to it, as the kernel's zeroed output does.)"""
    length, columns = x.shape
    groups = length // ILP
    if groups:
        partial = _cascade(x[:groups * ILP].reshape(groups, ILP * columns)).reshape(ILP, columns)
    else:
        partial = np.zeros((ILP, columns), x.dtype)
    # the first accumulator, the terms past the last four, the other accumulators: added in order
    terms = np.concatenate((partial[:1], x[groups * ILP:], partial[1:]))
    return np.add.reduce(terms, axis=0) if columns > 1 else np.add.accumulate(terms[:, 0])[-1:]


def _cascade(x: np.ndarray) -> np.ndarray:
    """``multi_row_sum``: each column of a C-contiguous (length, columns) array added down in
    torch's cascade of four accumulators."""
    length, columns = x.shape
    step = 1 << max(4, (length - 1).bit_length() // 4)
    if length < step:
        return _add_down(x)
    whole, tail = divmod(length, step)
    sums = np.add.reduce(x[:whole * step].reshape(whole, step, columns), axis=1)
    total = _add_down(x[whole * step:]) if tail else np.zeros(columns, x.dtype)
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
