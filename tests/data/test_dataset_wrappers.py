"""StackDataset, ChainDataset, Subset.__getitems__ and random_split against torch.utils.data."""

import pytest
import torch

import chainrule
from chainrule.utils.data import (
    ChainDataset,
    DataLoader,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from tests.test_data import assert_same


def _pair(lib):
    return (lib.arange(12, dtype=lib.float32).reshape(6, 2),), lib.arange(6)


@pytest.mark.parametrize("named", [False, True])
def test_stack_dataset_batches_match_torch(named):
    def loader(lib, data):
        (x,), y = _pair(lib)
        images, labels = data.TensorDataset(x), data.TensorDataset(y)
        stacked = data.StackDataset(image=images, label=labels) if named else data.StackDataset(images, labels)
        assert len(stacked) == 6
        return list(data.DataLoader(stacked, batch_size=4))

    ours = loader(chainrule, chainrule.utils.data)
    theirs = loader(torch, torch.utils.data)
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        assert_same(a, b)


def test_stack_dataset_getitem_and_errors_match_torch():
    data = StackDataset([1, 2, 3], "abc")
    assert data[1] == torch.utils.data.StackDataset([1, 2, 3], "abc")[1] == (2, "b")
    assert StackDataset(a=[1, 2], b="xy").__getitems__([1, 0]) == [{"a": 2, "b": "y"}, {"a": 1, "b": "x"}]
    for args, kwargs in [(([1, 2], [1]), {}), ((), {}), (([1],), {"b": [2]})]:
        with pytest.raises(ValueError) as theirs:
            torch.utils.data.StackDataset(*args, **kwargs)
        with pytest.raises(ValueError) as ours:
            StackDataset(*args, **kwargs)
        assert str(ours.value) == str(theirs.value)


class Count(IterableDataset):
    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


def test_chain_dataset_and_adding_iterable_datasets():
    chained = ChainDataset([Count(0, 3), Count(10, 12)])
    assert list(chained) == [0, 1, 2, 10, 11] and len(chained) == 5
    added = Count(0, 2) + Count(5, 6)
    assert isinstance(added, ChainDataset) and list(added) == [0, 1, 5]
    assert [b.tolist() for b in DataLoader(chained, batch_size=2)] == [[0, 1], [2, 10], [11]]
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        list(ChainDataset([[1, 2]]))


def test_subset_fetches_batches_through_getitems():
    data = TensorDataset(chainrule.arange(10))
    calls = []

    class Recording(Subset):
        def __getitems__(self, indices):
            calls.append(list(indices))
            return super().__getitems__(indices)

    subset = Recording(data, [9, 7, 5, 3])
    batches = [b[0].tolist() for b in DataLoader(subset, batch_size=3, collate_fn=chainrule.utils.data.default_collate)]
    assert batches == [[9, 7, 5], [3]] and calls == [[0, 1, 2], [3]]
    assert Subset([10, 20, 30], [2, 0]).__getitems__([0, 1]) == [30, 10]

    class OverridesGetitemOnly(Subset):
        def __getitem__(self, idx):
            return 0

    with pytest.raises(NotImplementedError, match="overrides __getitem__ but not __getitems__"):
        OverridesGetitemOnly([1, 2], [0])


def test_an_augmenting_tensor_dataset_subclass_sees_every_sample():
    class Doubled(TensorDataset):
        def __getitem__(self, index):
            return tuple(t[index] * 2 for t in self.tensors)

    data = Doubled(chainrule.arange(5))
    for loader in (DataLoader(data, batch_size=2), DataLoader(Subset(data, [4, 0, 1]), batch_size=2),
                   DataLoader(data, batch_size=2, num_workers=1)):
        assert not loader._fast
    assert [b[0].tolist() for b in DataLoader(Subset(data, [4, 0, 1]), batch_size=2)] == [[8, 0], [2]]
    plain = DataLoader(Subset(TensorDataset(chainrule.arange(5)), [4, 0, 1]), batch_size=2)
    assert plain._fast and [b[0].tolist() for b in plain] == [[4, 0], [1]]


@pytest.mark.parametrize("n,fractions", [(10, [0.5, 0.5]), (7, [0.3, 0.3, 0.4]), (101, [0.8, 0.1, 0.1]),
                                         (3, [0.25, 0.75])])
def test_random_split_fraction_lengths_match_torch(n, fractions):
    ours = random_split(list(range(n)), fractions, generator=chainrule.Generator().manual_seed(0))
    theirs = torch.utils.data.random_split(list(range(n)), fractions, generator=torch.Generator().manual_seed(0))
    assert [len(part) for part in ours] == [len(part) for part in theirs]
    assert sorted(i for part in ours for i in part.indices) == list(range(n))
