"""chainrule.utils.data against torch.utils.data: order, shuffling, batching, collate, splits."""

from collections import OrderedDict, namedtuple

import numpy as np
import pytest
import torch

import chainrule
from chainrule.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
)

Point = namedtuple("Point", "x y")


def _np(value):
    return value._data if isinstance(value, chainrule.Tensor) else value.numpy()


def assert_same(ours, theirs):
    """Same nested structure, types, dtypes and values as torch's."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, chainrule.Tensor)
        assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
        np.testing.assert_array_equal(_np(ours), _np(theirs))
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs)
        for key in theirs:
            assert_same(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    else:
        assert ours == theirs


class Items(Dataset):
    """Samples of every kind default_collate handles, built from one index."""

    def __init__(self, n, lib):
        self.n, self.lib = n, lib

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": self.lib.full((2, 3), float(i)), "label": i, "weight": i / 2, "flag": i % 2 == 0,
                "name": f"item{i}", "pair": (np.float32(i), np.arange(3) + i), "point": Point(i, [i, -i])}


def make_stream(base):
    class Stream(base):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    return Stream


Stream, TorchStream = make_stream(IterableDataset), make_stream(torch.utils.data.IterableDataset)


def _tensors(lib, n=10):
    x = lib.arange(n * 3, dtype=lib.float32).reshape(n, 3)
    return x, lib.arange(n) % 4


@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (3, False), (3, True), (10, False), (20, True),
                                                  (4, False)])
def test_sequential_batches_match_torch(batch_size, drop_last):
    ours = DataLoader(TensorDataset(*_tensors(chainrule)), batch_size=batch_size, drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*_tensors(torch)),
                                         batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    got, want = list(ours), list(theirs)
    assert len(got) == len(want) == len(ours)
    for a, b in zip(got, want):
        assert_same(a, b)


def test_collate_nesting_matches_torch():
    ours = list(DataLoader(Items(5, chainrule), batch_size=2))
    theirs = list(torch.utils.data.DataLoader(Items(5, torch), batch_size=2))
    assert len(ours) == 3
    for a, b in zip(ours, theirs):
        assert_same(a, b)


@pytest.mark.parametrize("batch", [
    [1, 2, 3], [1.5, 2.5], [True, False], ["a", "b"], [np.float64(1.0), np.float64(2.0)],
    [np.int32(3), np.int32(4)], [np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)],
    [(1, "a"), (2, "b")], [[1, 2], [3, 4]], [OrderedDict(b=1, a=2.0), OrderedDict(b=3, a=4.0)],
    [Point(1, 2.0), Point(3, 4.0)],
])
def test_default_collate_matches_torch(batch):
    assert_same(default_collate(batch), torch.utils.data.default_collate(batch))


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([chainrule.zeros(2), chainrule.zeros(3)])


def test_collate_keeps_the_graph_of_tensors_that_require_grad():
    w = chainrule.ones(3, requires_grad=True)
    batch = default_collate([w * 2, w * 3])
    batch.sum().backward()
    np.testing.assert_array_equal(w.grad._data, np.full(3, 5.0, np.float32))


def test_shuffle_is_reproducible_with_a_generator_and_covers_everything():
    data = TensorDataset(*_tensors(chainrule, 50))

    def epoch_orders(seed, epochs=2):
        loader = DataLoader(data, batch_size=8, shuffle=True, generator=chainrule.Generator().manual_seed(seed))
        return [np.concatenate([_np(y) * 0 + _np(x)[:, 0] // 3 for x, y in loader]) for _ in range(epochs)]

    first, second = epoch_orders(1), epoch_orders(1)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    for order in first:
        np.testing.assert_array_equal(np.sort(order), np.arange(50))
    assert not np.array_equal(first[0], first[1]), "each epoch draws a new order"
    assert not np.array_equal(first[0], epoch_orders(2)[0])
    assert not np.array_equal(first[0], np.arange(50))


def test_shuffle_without_generator_follows_manual_seed():
    data = list(range(30))
    chainrule.manual_seed(5)
    a = [int(b) for batch in DataLoader(data, batch_size=4, shuffle=True) for b in _np(batch)]
    chainrule.manual_seed(5)
    b = [int(b) for batch in DataLoader(data, batch_size=4, shuffle=True) for b in _np(batch)]
    assert a == b and sorted(a) == data


def test_fast_path_equals_the_per_item_path():
    x, y = _tensors(chainrule, 23)
    fast = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True,
                      generator=chainrule.Generator().manual_seed(3))
    slow = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True, collate_fn=lambda b: default_collate(b),
                      generator=chainrule.Generator().manual_seed(3))
    assert fast._fast and not slow._fast
    for a, b in zip(fast, slow):
        for ta, tb in zip(a, b):
            np.testing.assert_array_equal(_np(ta), _np(tb))
            assert ta.dtype == tb.dtype


def test_samplers_and_batch_sampler_match_torch():
    seq = list(BatchSampler(SequentialSampler(range(10)), 3, False))
    assert seq == list(torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(10)), 3, False))
    assert len(BatchSampler(range(10), 3, True)) == 3 and list(BatchSampler(range(10), 3, True))[-1] == [6, 7, 8]
    loader = DataLoader(list(range(10)), batch_sampler=BatchSampler(SequentialSampler(range(10)), 4, False))
    assert [list(_np(b)) for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    sub = DataLoader(TensorDataset(*_tensors(chainrule)), sampler=SubsetRandomSampler([1, 5, 7]), batch_size=2)
    rows = np.concatenate([_np(x)[:, 0] // 3 for x, _ in sub])
    assert sorted(rows.tolist()) == [1, 5, 7]
    drawn = list(RandomSampler(range(4), replacement=True, num_samples=9,
                               generator=chainrule.Generator().manual_seed(0)))
    assert len(drawn) == 9 and set(drawn) <= set(range(4))
    assert len(list(RandomSampler(range(4), num_samples=10))) == 10
    weighted = list(WeightedRandomSampler([0.0, 1.0, 0.0, 1.0], 20))
    assert set(weighted) <= {1, 3}


def test_len_of_loader_and_batch_size_none():
    data = TensorDataset(*_tensors(chainrule, 7))
    assert len(DataLoader(data, batch_size=2)) == 4
    assert len(DataLoader(data, batch_size=2, drop_last=True)) == 3
    single = list(DataLoader(data, batch_size=None))
    assert len(single) == 7 and single[0][0].shape == (3,)
    assert_same(list(DataLoader([np.arange(2)], batch_size=None)),
                list(torch.utils.data.DataLoader([np.arange(2)], batch_size=None)))


def test_empty_dataset_gives_no_batches():
    data = TensorDataset(chainrule.zeros(0, 3), chainrule.zeros(0))
    assert len(DataLoader(data, batch_size=4)) == 0 and list(DataLoader(data, batch_size=4)) == []


def test_iterable_dataset_batches_match_torch():
    for drop_last in (False, True):
        ours = [_np(b).tolist() for b in DataLoader(Stream(7), batch_size=3, drop_last=drop_last)]
        theirs = [b.tolist() for b in torch.utils.data.DataLoader(TorchStream(7), batch_size=3, drop_last=drop_last)]
        assert ours == theirs
        assert len(DataLoader(Stream(7), batch_size=3, drop_last=drop_last)) == len(theirs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=2, batch_sampler=BatchSampler(range(4), 2, False)), "mutually exclusive"),
    (dict(shuffle=True, sampler=SequentialSampler(range(4))), "sampler option is mutually exclusive with shuffle"),
    (dict(batch_size=None, drop_last=True), "mutually exclusive with drop_last"),
    (dict(num_workers=-1), "num_workers option should be non-negative"),
    (dict(batch_size=0), "batch_size should be a positive integer value"),
])
def test_loader_argument_errors_match_torch(kwargs, match):
    with pytest.raises(ValueError, match=match):
        torch.utils.data.DataLoader(list(range(4)), **kwargs)
    with pytest.raises(ValueError, match=match):
        DataLoader(list(range(4)), **kwargs)


def test_sampler_argument_errors():
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        BatchSampler(range(3), 2, drop_last=None)


def test_tensor_dataset_and_subset_and_concat():
    x, y = _tensors(chainrule)
    data = TensorDataset(x, y)
    assert len(data) == 10 and _np(data[-1][0]).tolist() == [27.0, 28.0, 29.0]
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(x, y[:3])
    sub = Subset(data, [9, 0, 4])
    assert len(sub) == 3 and int(_np(sub[0][1])) == 9 - 8
    rows = [(_np(b[0])[:, 0] // 3).tolist() for b in DataLoader(sub, batch_size=2)]
    assert rows == [[9, 0], [4]]
    both = ConcatDataset([sub, data])
    assert len(both) == 13 and _np(both[3][0]).tolist() == _np(data[0][0]).tolist()
    assert _np(both[-1][0]).tolist() == _np(data[9][0]).tolist()
    assert len(sub + data) == 13


def test_random_split_lengths_fractions_and_reproducibility():
    data = list(range(10))
    parts = random_split(data, [3, 7], generator=chainrule.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(parts[0].indices + parts[1].indices) == data
    again = random_split(data, [3, 7], generator=chainrule.Generator().manual_seed(0))
    assert again[0].indices == parts[0].indices
    fractions = random_split(data, [0.33, 0.33, 0.34])
    want = torch.utils.data.random_split(data, [0.33, 0.33, 0.34])
    assert [len(p) for p in fractions] == [len(p) for p in want] == [4, 3, 3]
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(data, [3, 3])
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        torch.utils.data.random_split(data, [3, 3])


def test_package_exports():
    assert chainrule.utils.data.DataLoader is DataLoader


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_old_iterator_next_method_fails_naming_torchs_iterator_class(lib):
    # pre-1.13 scripts call ``iter(loader).next()``; the AttributeError they now get names the
    # iterator class, and users search for torch's words
    loader = lib.utils.data.DataLoader(lib.utils.data.TensorDataset(lib.arange(4)), batch_size=2)
    with pytest.raises(AttributeError, match="'_SingleProcessDataLoaderIter' object has no attribute 'next'"):
        iter(loader).next()
    assert type(iter(loader)) is lib.utils.data.dataloader._SingleProcessDataLoaderIter
