"""The order torch's CPU kernels leave tied elements in, step for step.

torch's unstable ``sort``, ``topk``, ``kthvalue`` and ``mode`` hand (value, index) pairs to
libstdc++'s ``std::sort`` / ``std::nth_element`` / ``std::partial_sort`` or to ATen's own
quickselect. Where values tie, which index comes first is whatever those exact algorithms do, and
torch's users see it (``topk`` of integer scores, ``argsort`` of a bool mask). This module replays
the algorithms on one row: each function permutes ``items`` (original indices) in place, comparing
them through ``keys`` (the row's values), and answers what the C++ would have answered.

They run in Python (``sort_rows`` and ``nth_element_rows``, of many rows, in NumPy), so callers
use them only on rows that hold ties (elsewhere every algorithm agrees; unsorted ``topk``, whose
nth_element order differs from a sort's even without ties, replays every row) and of bounded
size (``REPLAY_LIMIT``, ``ROWS_AT_ONCE_LIMIT``), falling back to a stable order beyond it.
"""

from __future__ import annotations

import numpy as np

# the most elements (summed over the rows that need it) one call replays; beyond it NumPy's stable
# order stands (a replay costs a few microseconds per element: 0.13 s for a row of 20,000)
REPLAY_LIMIT = 100_000
# the same for ``sort_rows``, which replays all rows together in NumPy (about 1 microsecond per element)
ROWS_AT_ONCE_LIMIT = 2_000_000

_INSERTION_THRESHOLD = 16  # libstdc++'s _S_threshold
INSERTION_THRESHOLD = _INSERTION_THRESHOLD  # (rows no longer than it: mode_index_rows)


def less_than(keys: list, descending: bool):
    """torch's KeyValueComp: NaN is the largest value, ties are not "less"."""
    if descending:
        return lambda a, b: (keys[a] != keys[a] and keys[b] == keys[b]) or keys[a] > keys[b]
    return lambda a, b: (keys[a] == keys[a] and keys[b] != keys[b]) or keys[a] < keys[b]


def plain_less_than(keys: list):
    """mode's comparison: the values' own ``<``, under which a NaN is neither less nor greater."""
    return lambda a, b: keys[a] < keys[b]


# ---------------------------------------------------------------- libstdc++ <bits/stl_algo.h>
def _lg(n: int) -> int:
    return n.bit_length() - 1


def _move_median_to_first(a, result, x, y, z, comp) -> None:
    if comp(a[x], a[y]):
        if comp(a[y], a[z]):
            pick = y
        elif comp(a[x], a[z]):
            pick = z
        else:
            pick = x
    elif comp(a[x], a[z]):
        pick = x
    elif comp(a[y], a[z]):
        pick = z
    else:
        pick = y
    a[result], a[pick] = a[pick], a[result]


def _unguarded_partition(a, first, last, pivot, comp) -> int:
    while True:
        while comp(a[first], a[pivot]):
            first += 1
        last -= 1
        while comp(a[pivot], a[last]):
            last -= 1
        if not first < last:
            return first
        a[first], a[last] = a[last], a[first]
        first += 1


def _unguarded_partition_pivot(a, first, last, comp) -> int:
    middle = first + (last - first) // 2
    _move_median_to_first(a, first, first + 1, middle, last - 1, comp)
    return _unguarded_partition(a, first + 1, last, first, comp)


def _unguarded_linear_insert(a, last, comp) -> None:
    value = a[last]
    before = last - 1
    while comp(value, a[before]):
        a[last] = a[before]
        last = before
        before -= 1
    a[last] = value


def _insertion_sort(a, first, last, comp) -> None:
    if first == last:
        return
    for i in range(first + 1, last):
        if comp(a[i], a[first]):
            value = a[i]
            a[first + 1:i + 1] = a[first:i]
            a[first] = value
        else:
            _unguarded_linear_insert(a, i, comp)


def _adjust_heap(a, first, hole, length, value, comp) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if comp(a[first + child], a[first + child - 1]):
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2  # __push_heap
    while hole > top and comp(a[first + parent], value):
        a[first + hole] = a[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[first + hole] = value


def _make_heap(a, first, last, comp) -> None:
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(a, first, parent, length, a[first + parent], comp)
        if parent == 0:
            return
        parent -= 1


def _pop_heap(a, first, last, result, comp) -> None:
    value = a[result]
    a[result] = a[first]
    _adjust_heap(a, first, 0, last - first, value, comp)


def _heap_select(a, first, middle, last, comp) -> None:
    _make_heap(a, first, middle, comp)
    for i in range(middle, last):
        if comp(a[i], a[first]):
            _pop_heap(a, first, middle, i, comp)


def _sort_heap(a, first, last, comp) -> None:
    while last - first > 1:
        last -= 1
        _pop_heap(a, first, last, last, comp)


def partial_sort(a: list, middle: int, comp) -> None:
    """``std::partial_sort(a.begin(), a.begin() + middle, a.end(), comp)``."""
    _heap_select(a, 0, middle, len(a), comp)
    _sort_heap(a, 0, middle, comp)


def _introsort_loop(a, first, last, depth, comp) -> None:
    while last - first > _INSERTION_THRESHOLD:
        if depth == 0:
            _heap_select(a, first, last, last, comp)
            _sort_heap(a, first, last, comp)
            return
        depth -= 1
        cut = _unguarded_partition_pivot(a, first, last, comp)
        _introsort_loop(a, cut, last, depth, comp)
        last = cut


def sort(a: list, comp, last: int | None = None) -> None:
    """``std::sort(a.begin(), a.begin() + last, comp)`` (introsort, then a final insertion sort)."""
    last = len(a) if last is None else last
    if last < 2:
        return
    _introsort_loop(a, 0, last, 2 * _lg(last), comp)
    if last > _INSERTION_THRESHOLD:
        _insertion_sort(a, 0, _INSERTION_THRESHOLD, comp)
        for i in range(_INSERTION_THRESHOLD, last):
            _unguarded_linear_insert(a, i, comp)
    else:
        _insertion_sort(a, 0, last, comp)


def sort_rows(rows: np.ndarray, descending: bool, nan_unordered: bool = False) -> np.ndarray:
    """``sort`` of every row of a 2-d array at once: the indices std::sort leaves each row in.

    The introsort's partitions run for all segments of all rows together on NumPy arrays (the rows
    laid end to end, a segment never crossing a row's end), so a batch of rows costs a few dozen
    array operations per level rather than a Python loop per comparison (PointNet++'s ball query
    sorts thousands of tied rows per step). A partition swaps the k-th element from the left that
    is not less than the pivot with the k-th from the right that the pivot is not less than, for as
    long as the first lies left of the second, so the swaps and the cut follow from the two lists
    taken before any swap. The final insertion sort, moving an element only past strictly greater
    ones, is a stable sort of what the partitions left. A row whose recursion reaches the depth
    limit (where std::sort heap-sorts) is replayed by ``sort``.

    With ``nan_unordered`` (ascending only) the comparison is mode's plain ``<``, under which a NaN
    is neither less nor greater than anything: the partitions compare the same way, and the rows
    holding a NaN get their final insertion sort replayed (``_final_insertion_sort_rows``)."""
    count, n = rows.shape
    ranks = np.unique(rows, return_inverse=True)[1].reshape(-1)  # NaNs tie, as the largest value
    keys = -ranks if descending else ranks
    with_nan = None
    if nan_unordered and rows.dtype.kind == "f":
        with_nan = np.isnan(rows).any(axis=1)
        if with_nan.any():  # ranks compare as the values do, a NaN as NaN
            keys = np.where(np.isnan(rows).reshape(-1), np.nan, ranks)
        else:
            with_nan = None
    items = np.tile(np.arange(n), count)
    first = np.arange(0, count * n, n) if n > _INSERTION_THRESHOLD else np.zeros(0, dtype=np.int64)
    last = first + n
    depth = 2 * _lg(max(n, 1))
    while len(first) and depth:
        depth -= 1
        _median_to_first(keys, items, first, first + 1, first + (last - first) // 2, last - 1)
        cut = _partition_segments(keys, items, first, last)
        first, last = np.concatenate([cut, first]), np.concatenate([last, cut])
        longer = last - first > _INSERTION_THRESHOLD
        first, last = first[longer], last[longer]
    keys, items = keys.reshape(count, n), items.reshape(count, n)
    order = np.take_along_axis(items, np.argsort(keys, axis=1, kind="stable"), axis=1)
    replay = np.unique(first // n)  # segments left at the depth limit
    if with_nan is not None:
        nan_rows = np.flatnonzero(with_nan)
        order[nan_rows], ran_off = _final_insertion_sort_rows(keys[nan_rows], items[nan_rows])
        replay = np.union1d(replay, nan_rows[ran_off])
    for row in replay:
        replayed = list(range(n))
        keys_of_row = rows[row].tolist()
        sort(replayed, plain_less_than(keys_of_row) if with_nan is not None else less_than(keys_of_row, descending))
        order[row] = replayed
    return order


def _insertion_sort_rows(values: np.ndarray, items: np.ndarray, length: int) -> None:
    """``_insertion_sort`` of the first ``length`` columns of every row at once, in place, under
    ``<`` (NaN compares false both ways): each step runs on all rows together. A NaN stops the
    elements moving left past it, but not one smaller than the first element, which goes to the
    front."""
    line = np.arange(len(values))[:, None]
    for i in range(1, length):
        value = values[:, i:i + 1]
        # _insertion_sort: to the front if less than the first, else _unguarded_linear_insert, which
        # moves left past the elements it is less than, stopping at the first (from the right) it is not
        stops = ~(value < values[:, :i])
        destination = np.where(value[:, 0] < values[:, 0], 0, i - np.argmax(stops[:, ::-1], axis=1))[:, None]
        columns = np.arange(i + 1)
        source = np.where(columns < destination, columns, np.where(columns == destination, i, columns - 1))
        values[:, :i + 1], items[:, :i + 1] = values[line, source], items[line, source]


def _final_insertion_sort_rows(keys: np.ndarray, items: np.ndarray) -> tuple:
    """std::sort's final insertion sort (``_insertion_sort`` of the first 16, then
    ``_unguarded_linear_insert`` of each later element) of rows that the partitions left as
    ``keys``/``items`` (2-d, NaN among the keys), under ``<``: (the items' order, which rows the
    unguarded insert would run off the front of, whose order is not given). Past the first 16 no
    element moves to the front, so none moves past a NaN, nor moves a NaN: each stretch between
    NaNs ends up stably sorted. Changes ``keys`` and ``items``."""
    count, n = keys.shape
    _insertion_sort_rows(keys, items, min(n, _INSERTION_THRESHOLD))
    nan = np.isnan(keys)
    stretch = np.cumsum(nan, axis=1)  # a NaN opens its stretch and stays first in it
    order = np.lexsort((np.where(nan, -1.0, keys), stretch), axis=-1)
    # an element past the first 16 less than everything before it, no NaN among them, runs off the front
    running_min = np.minimum.accumulate(np.where(nan, np.inf, keys), axis=1)
    ran_off = ((keys[:, 1:] < running_min[:, :-1]) & (stretch[:, 1:] == 0))[:, _INSERTION_THRESHOLD - 1:].any(axis=1)
    return np.take_along_axis(items, order, axis=1), ran_off


def _swap(keys, items, i, j) -> None:
    keys[i], keys[j] = keys[j], keys[i]
    items[i], items[j] = items[j], items[i]


def _median_to_first(keys, items, result, x, y, z) -> None:
    """``_move_median_to_first`` for many segments: a transcription of its branches."""
    kx, ky, kz = keys[x], keys[y], keys[z]
    pick = np.where(kx < ky,
                    np.where(ky < kz, y, np.where(kx < kz, z, x)),
                    np.where(kx < kz, x, np.where(ky < kz, z, y)))
    _swap(keys, items, result, pick)


def _ragged(first, last):
    """Every position of segments [first, last) in one flat array, each segment's run in it
    starting at ``starts``, and each position's segment."""
    lengths = last - first
    segment = np.repeat(np.arange(len(first)), lengths)
    starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) + (first - starts)[segment], starts, segment


def _partition_segments(keys, items, first, last) -> np.ndarray:
    """``_unguarded_partition(first + 1, last, pivot=first)`` for many segments (each longer than
    the insertion threshold); returns the cuts."""
    position, starts, segment = _ragged(first, last)
    value = keys[position]
    pivot = keys[first][segment]
    stops_left = ~(value < pivot)
    stops_left[starts] = False  # the left scan starts after the pivot
    stops_right = ~(pivot < value)  # the pivot itself stops the right scan (unguarded)
    # each segment's stops form one run of the flat lists, in order
    left, right = position[stops_left], position[stops_right]
    left_count = np.add.reduceat(stops_left, starts, dtype=np.int64)
    right_count = np.add.reduceat(stops_right, starts, dtype=np.int64)
    left_start = np.cumsum(left_count) - left_count
    right_end = np.cumsum(right_count) - 1  # the rightmost stop of each segment comes first
    pair, _, pair_segment = _ragged(np.zeros(len(first), dtype=np.int64), np.minimum(left_count, right_count))
    left_of_pair = left[left_start[pair_segment] + pair]
    right_of_pair = right[right_end[pair_segment] - pair]
    swapped = left_of_pair < right_of_pair  # true for a prefix of each segment's pairs
    _swap(keys, items, left_of_pair[swapped], right_of_pair[swapped])
    swaps = np.bincount(pair_segment[swapped], minlength=len(first))
    # after the last swap the left scan stops at the next left stop, or at the last right stop
    # (which now holds a swapped-in element not less than the pivot), whichever comes first
    next_left = np.where(swaps < left_count, left[np.minimum(left_start + swaps, len(left) - 1)], last)
    last_right = right[np.maximum(right_end - np.maximum(swaps - 1, 0), 0)]
    return np.where(swaps == 0, next_left, np.minimum(next_left, last_right))


def nth_element(a: list, nth: int, comp) -> None:
    """``std::nth_element(a.begin(), a.begin() + nth, a.end(), comp)`` (introselect)."""
    first, last = 0, len(a)
    if first == last or nth == last:
        return
    depth = 2 * _lg(last - first)
    while last - first > 3:
        if depth == 0:
            _heap_select(a, first, nth + 1, last, comp)
            a[first], a[nth] = a[nth], a[first]
            return
        depth -= 1
        cut = _unguarded_partition_pivot(a, first, last, comp)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(a, first, last, comp)


def nth_element_rows(rows: np.ndarray, nth: int, descending: bool) -> np.ndarray:
    """``nth_element`` at ``nth`` of every row of a 2-d array, by torch's KeyValueComp (descending:
    the largest first): the indices each row is left in.

    Each partition (median of three, then the unguarded partition, keeping the side that holds
    ``nth``) runs on NumPy arrays: on one row at a time for a few rows, else, as ``sort_rows`` does
    for the introsort, on all rows' segments together (fewer calls per level, each on more
    elements). Once a segment is at most 3 long, the final insertion sort of it is a stable sort.
    A row that reaches the depth limit (where std::nth_element heap-selects) is replayed by
    ``nth_element``."""
    count, n = rows.shape
    if rows.dtype.kind == "f" and not np.isnan(rows).any():
        keys = (-rows if descending else rows.copy()).reshape(-1)  # (-0.0 and 0.0 tie, as in torch)
    else:
        ranks = np.unique(rows, return_inverse=True)[1].reshape(-1)  # NaNs tie, as the largest value
        keys = -ranks if descending else ranks
    items = np.tile(np.arange(n), count)
    depth = 2 * _lg(max(n, 1))
    if count < _ROWS_TOGETHER:
        left_at_limit = [row for row in range(count)
                         if not _nth_element_row(keys[row * n:(row + 1) * n], items[row * n:(row + 1) * n], nth, depth)]
    else:
        left_at_limit = _nth_element_segments(keys, items, count, n, nth, depth)
    order = items.reshape(count, n)
    for row in left_at_limit:
        replayed = list(range(n))
        nth_element(replayed, nth, less_than(rows[row].tolist(), descending))
        order[row] = replayed
    return order


# the rows from which nth_element_rows partitions all rows' segments together (measured on rows of
# 1,000 at nth 49: one at a time took 0.74x the time of together for 8 rows, 1.09x for 16, 1.49x for 64)
_ROWS_TOGETHER = 16


def _nth_element_row(keys: np.ndarray, items: np.ndarray, nth: int, depth: int) -> bool:
    """nth_element on one row's ``keys`` and ``items`` (views, permuted in place); False when the
    depth limit is reached, leaving the row to be replayed."""
    first, last = 0, len(keys)
    while last - first > 3:
        if depth == 0:
            return False
        depth -= 1
        middle = first + (last - first) // 2
        kx, ky, kz = keys[first + 1], keys[middle], keys[last - 1]  # _move_median_to_first's branches
        if kx < ky:
            pick = middle if ky < kz else last - 1 if kx < kz else first + 1
        else:
            pick = first + 1 if kx < kz else last - 1 if ky < kz else middle
        keys[first], keys[pick] = keys[pick], keys[first]
        items[first], items[pick] = items[pick], items[first]
        # _unguarded_partition(first + 1, last, pivot=first): the k-th left stop (not less than the
        # pivot) swaps with the k-th right stop (the pivot not less than it, the pivot itself last)
        # while it lies left of it; see _partition_segments
        pivot = keys[first]
        segment = keys[first + 1:last]
        left = np.flatnonzero(segment >= pivot) + (first + 1)
        right = np.flatnonzero(segment <= pivot)[::-1] + (first + 1)
        pairs = min(len(left), len(right))
        swaps = int(np.count_nonzero(left[:pairs] < right[:pairs]))
        if swaps:
            lefts, rights = left[:swaps], right[:swaps]
            keys[lefts], keys[rights] = keys[rights], keys[lefts]
            items[lefts], items[rights] = items[rights], items[lefts]
        next_left = int(left[swaps]) if swaps < len(left) else last
        cut = min(next_left, int(right[swaps - 1])) if swaps else next_left
        if cut <= nth:
            first = cut
        else:
            last = cut
    moved = np.argsort(keys[first:last], kind="stable")  # the final insertion sort
    items[first:last] = items[first:last][moved]
    return True


def _nth_element_segments(keys: np.ndarray, items: np.ndarray, count: int, n: int, nth: int, depth: int) -> list:
    """nth_element on every row of ``keys`` and ``items`` (rows of ``n`` laid end to end) together;
    returns the rows left at the depth limit."""
    starts = np.arange(0, count * n, n)
    first, last, target = starts.copy(), starts + n, starts + nth
    active = np.flatnonzero(last - first > 3)
    while len(active) and depth:
        depth -= 1
        a_first, a_last = first[active], last[active]
        _median_to_first(keys, items, a_first, a_first + 1, a_first + (a_last - a_first) // 2, a_last - 1)
        cut = _partition_segments(keys, items, a_first, a_last)
        right = cut <= target[active]
        first[active] = np.where(right, cut, a_first)
        last[active] = np.where(right, a_last, cut)
        active = active[last[active] - first[active] > 3]
    position, _, segment = _ragged(first, last)  # the final insertion sorts: stable, within segments
    moved = np.lexsort((keys[position], segment))
    items[position] = items[position[moved]]
    return active.tolist()


# ---------------------------------------------------------------- the kernels' own steps
def topk_order(keys: list, k: int, largest: bool, sorted: bool) -> list:
    """The indices torch's CPU ``topk`` returns for one row (``topk_impl_loop``): a partial sort
    when k·64 <= the row's length, else nth_element at k - 1 and, when sorted, a sort of the first
    k - 1."""
    items = list(range(len(keys)))
    if k == 0:
        return []
    comp = less_than(keys, descending=largest)
    if k * 64 <= len(keys):
        partial_sort(items, k, comp)
    else:
        nth_element(items, k - 1, comp)
        if sorted:
            sort(items, comp, last=k - 1)
    return items[:k]


def kthvalue_index(keys: list, k: int) -> int:
    """The index torch's CPU ``kthvalue`` returns (ATen's quick_select_template, 0-based ``k``),
    its median-of-three quickselect swapping values and indices together."""
    values = list(keys)
    items = list(range(len(keys)))

    def greater_or_nan(x, y):
        return (x != x and y == y) or x > y

    def swap(i, j):
        values[i], values[j] = values[j], values[i]
        items[i], items[j] = items[j], items[i]

    low, high = 0, len(values) - 1
    while True:
        if high <= low:
            return items[k]
        if high == low + 1:
            if greater_or_nan(values[low], values[high]):
                swap(low, high)
            return items[k]
        swap(low + (high - low) // 2, low + 1)
        if greater_or_nan(values[low + 1], values[high]):
            swap(low + 1, high)
        if greater_or_nan(values[low], values[high]):
            swap(low, high)
        if greater_or_nan(values[low + 1], values[low]):
            swap(low + 1, low)
        i, j = low + 1, high
        pivot = values[low]
        while True:
            i += 1
            while greater_or_nan(pivot, values[i]):
                i += 1
            j -= 1
            while greater_or_nan(values[j], pivot):
                j -= 1
            if j < i:
                break
            swap(i, j)
        swap(low, j)
        if j <= k:
            low = i
        if j >= k:
            high = j - 1


def mode_index(keys: list) -> int:
    """The index torch's CPU ``mode`` returns: (value, index) pairs std::sort-ed by value alone,
    the last pair of the first longest run."""
    items = list(range(len(keys)))
    sort(items, plain_less_than(keys))
    best_count, best, count = 0, items[0], 0
    for position, item in enumerate(items):
        count += 1
        if position == len(items) - 1 or keys[item] != keys[items[position + 1]]:
            if count > best_count:
                best_count, best = count, item
            count = 0
    return best


def mode_index_rows(rows: np.ndarray) -> np.ndarray:
    """``mode_index`` of every row of a 2-d array of rows no longer than the insertion threshold
    (where std::sort is one insertion sort), NaNs and all, at once: each step of the insertion sort
    runs on all rows together. A NaN compares false both ways, so it stops the elements moving left
    past it, but not one smaller than the first element, which goes to the front; runs are read as
    mode_index reads them (a NaN never equals its neighbour)."""
    values, items = rows.copy(), np.broadcast_to(np.arange(rows.shape[1]), rows.shape).copy()
    _insertion_sort_rows(values, items, rows.shape[1])
    return items[np.arange(len(rows)), _first_longest_run_ends(values)]


_ROWS_AT_ONCE_FROM = 16


def mode_index_long_rows(rows: np.ndarray) -> np.ndarray:
    """``mode_index`` of every row of a 2-d array at once, NaNs and all: std::sort's order under
    ``<`` from ``sort_rows``, its runs read as mode_index reads them. Fewer rows than
    ``_ROWS_AT_ONCE_FROM`` replay one at a time, which costs less there (``sort_rows``' few hundred
    microseconds of array calls against about 70 microseconds per row of 128)."""
    if len(rows) < _ROWS_AT_ONCE_FROM:
        return np.array([mode_index(row) for row in rows.tolist()], dtype=np.int64).reshape(len(rows))
    order = sort_rows(rows, descending=False, nan_unordered=True)
    return order[np.arange(len(rows)), _first_longest_run_ends(np.take_along_axis(rows, order, axis=1))]


def _first_longest_run_ends(values: np.ndarray) -> np.ndarray:
    """Each row's position of the last element of its first longest run of equal values (a NaN
    never equals its neighbour)."""
    count, n = values.shape
    differs = values[:, 1:] != values[:, :-1]
    edge = np.ones((count, 1), dtype=bool)
    positions = np.arange(n)
    start = np.maximum.accumulate(np.where(np.concatenate([edge, differs], 1), positions, 0), axis=1)
    ends = np.concatenate([differs, edge], 1)
    return np.argmax(np.where(ends, positions - start + 1, 0), axis=1)


def rows_with_ties_or_nan(rows: np.ndarray) -> np.ndarray:
    """Which rows of a 2-d array hold two equal values or a NaN: the rows whose order after torch's
    std::sort by ``<`` NumPy's stable sort does not give (a NaN compares false against every value,
    so the sort leaves values around it unsorted; mode reads its runs from that order)."""
    chosen = rows_with_ties(rows)
    if rows.dtype.kind == "f":
        chosen |= np.isnan(rows).any(axis=1)
    return chosen


def rows_with_ties(rows: np.ndarray) -> np.ndarray:
    """Which rows of a 2-d array hold two equal values (NaNs count as equal, as they tie in torch's
    comparisons)."""
    if rows.shape[1] < 2:
        return np.zeros(rows.shape[0], dtype=bool)
    ordered = np.sort(rows, axis=1)
    equal = ordered[:, 1:] == ordered[:, :-1]
    if ordered.dtype.kind in "fc":
        equal |= np.isnan(ordered[:, 1:]) & np.isnan(ordered[:, :-1])
    return equal.any(axis=1)
