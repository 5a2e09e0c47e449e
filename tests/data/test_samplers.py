"""Samplers are lazy (memory independent of num_samples), and their index streams and lengths
match torch.utils.data's wherever torch's are deterministic."""

import itertools
import tracemalloc

import numpy as np
import pytest
import torch

import chainrule
from chainrule.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
)

HUGE = int(1e10)  # as int64 indices: 75 GiB if materialised


def _peak_bytes(consume):
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_random_sampler_with_huge_num_samples_is_lazy():
    sampler = RandomSampler(range(10), replacement=True, num_samples=HUGE,
                            generator=chainrule.Generator().manual_seed(0))
    assert len(sampler) == HUGE == len(torch.utils.data.RandomSampler(range(10), replacement=True, num_samples=HUGE))
    drawn = []
    peak = _peak_bytes(lambda: drawn.extend(itertools.islice(sampler, 20_000)))
    assert peak < 2_000_000
    counts = np.bincount(drawn, minlength=10)
    assert set(drawn) == set(range(10)) and counts.min() > 1_700  # uniform: about 2000 each

    batches = BatchSampler(sampler, 3, drop_last=False)
    assert len(batches) == HUGE // 3 + 1 == len(torch.utils.data.BatchSampler(range(HUGE), 3, False))
    first = []
    assert _peak_bytes(lambda: first.extend(itertools.islice(batches, 100))) < 2_000_000
    assert all(len(b) == 3 and all(isinstance(i, int) and 0 <= i < 10 for i in b) for b in first)


def test_dataloader_over_a_huge_sampler_starts_at_once():
    data = TensorDataset(chainrule.arange(10.0))
    loader = DataLoader(data, batch_size=4,
                        sampler=RandomSampler(data, replacement=True, num_samples=HUGE))
    assert len(loader) == HUGE // 4
    batches = []
    assert _peak_bytes(lambda: batches.extend(itertools.islice(loader, 50))) < 4_000_000
    assert all(b[0].shape == (4,) for b in batches)


def test_random_sampler_without_replacement_repeats_permutations():
    sampler = RandomSampler(range(7), num_samples=HUGE, generator=chainrule.Generator().manual_seed(1))
    passes = np.array(list(itertools.islice(sampler, 21))).reshape(3, 7)
    for permutation in passes:
        assert sorted(permutation) == list(range(7))
    assert len({tuple(p) for p in passes}) > 1
    short = list(RandomSampler(range(7), num_samples=10, generator=chainrule.Generator().manual_seed(1)))
    assert sorted(short[:7]) == list(range(7)) and len(set(short[7:])) == 3


def test_random_sampler_generator_reproducibility_and_fresh_epochs():
    def epochs(seed):
        sampler = RandomSampler(range(50), generator=chainrule.Generator().manual_seed(seed))
        return [list(sampler) for _ in range(2)]

    first, again = epochs(3), epochs(3)
    assert first == again and first[0] != first[1] and first[0] != epochs(4)[0]
    assert all(sorted(order) == list(range(50)) for order in first)
    chainrule.manual_seed(9)
    a = list(RandomSampler(range(50)))
    chainrule.manual_seed(9)
    assert a == list(RandomSampler(range(50)))


@pytest.mark.parametrize("indices", [[9, 4, 7, 1], np.array([9, 4, 7, 1]), chainrule.tensor([9, 4, 7, 1])])
def test_subset_random_sampler(indices):
    sampler = SubsetRandomSampler(indices, generator=chainrule.Generator().manual_seed(0))
    order = list(sampler)
    # torch yields indices[i] itself: an int of a list, a NumPy integer of an array, a 0-d tensor of a tensor
    assert sorted(int(i) for i in order) == [1, 4, 7, 9]
    assert all(type(i) is type(indices[0]) for i in order)
    assert len(sampler) == 4 == len(torch.utils.data.SubsetRandomSampler([9, 4, 7, 1]))
    assert order == list(SubsetRandomSampler(indices, generator=chainrule.Generator().manual_seed(0)))


def test_weighted_sampler_streams_draws_in_proportion():
    weights = [1.0, 2.0, 0.0, 7.0]
    sampler = WeightedRandomSampler(weights, HUGE, generator=chainrule.Generator().manual_seed(0))
    assert len(sampler) == HUGE == len(torch.utils.data.WeightedRandomSampler(weights, HUGE))
    drawn = []
    assert _peak_bytes(lambda: drawn.extend(itertools.islice(sampler, 100_000))) < 8_000_000
    frequencies = np.bincount(drawn, minlength=4) / len(drawn)
    assert frequencies[2] == 0
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.0, 0.7], atol=0.01)


def test_weighted_sampler_without_replacement_puts_zero_weights_last():
    for seed in range(5):
        drawn = list(WeightedRandomSampler([0.0, 3.0, 0.0, 1.0], 4, replacement=False,
                                           generator=chainrule.Generator().manual_seed(seed)))
        theirs = list(torch.utils.data.WeightedRandomSampler([0.0, 3.0, 0.0, 1.0], 4, False))
        # torch's order among the zero weights is unspecified (it varies with their count)
        assert sorted(drawn[:2]) == sorted(theirs[:2]) == [1, 3] and sorted(drawn[2:]) == sorted(theirs[2:])
    heavy_first = sum(list(WeightedRandomSampler([1.0, 20.0], 1, replacement=False,
                                                 generator=chainrule.Generator().manual_seed(s)))[0] == 1
                      for s in range(200))
    assert heavy_first > 170  # 20/21 of the time


@pytest.mark.parametrize("weights,num_samples,replacement", [
    ([1.0, -1.0], 1, True), ([0.0, 0.0], 1, True), ([1.0, float("nan")], 1, True), ([1.0, float("inf")], 1, True),
    ([1.0, 1.0], 3, False),
])
def test_weighted_sampler_errors_match_torch(weights, num_samples, replacement):
    with pytest.raises(RuntimeError) as theirs:
        list(torch.utils.data.WeightedRandomSampler(weights, num_samples, replacement))
    with pytest.raises(RuntimeError) as ours:
        list(WeightedRandomSampler(weights, num_samples, replacement))
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (10, 10, False), (0, 2, False),
                                                    (10_001, 3000, False), (10_001, 3000, True), (9000, 4096, False)])
def test_sequential_batches_match_torch_across_chunk_boundaries(n, batch_size, drop_last):
    want = list(torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), batch_size, drop_last))
    ours = BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == want and len(ours) == len(want)
    assert [b.tolist() for b in ours._index_batches()] == want
    plain = BatchSampler(list(range(n)), batch_size, drop_last)  # a sampler without chunks
    assert list(plain) == want and len(plain) == len(want)
    assert list(SequentialSampler(range(n))) == list(torch.utils.data.SequentialSampler(range(n)))


def test_shuffled_loader_visits_every_index_once_across_chunks():
    n = 10_001
    loader = DataLoader(TensorDataset(chainrule.arange(n)), batch_size=7, shuffle=True,
                        generator=chainrule.Generator().manual_seed(0))
    seen = np.concatenate([batch[0].numpy() for batch in loader])
    assert len(loader) == 1429 and np.array_equal(np.sort(seen), np.arange(n))
    assert not np.array_equal(seen, np.arange(n))


def test_lengths_match_torch():
    data = list(range(23))
    pairs = [
        (RandomSampler(data), torch.utils.data.RandomSampler(data)),
        (RandomSampler(data, num_samples=5), torch.utils.data.RandomSampler(data, num_samples=5)),
        (RandomSampler(data, True, 40), torch.utils.data.RandomSampler(data, True, 40)),
        (BatchSampler(RandomSampler(data), 5, True), torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(data), 5, True)),
        (WeightedRandomSampler([1.0] * 23, 7, False), torch.utils.data.WeightedRandomSampler([1.0] * 23, 7, False)),
    ]
    for ours, theirs in pairs:
        assert len(ours) == len(theirs) == len(list(ours)) == len(list(theirs))
