"""Regressions found by the data pipeline fuzzer (tests/fuzz/test_data_pipeline.py): each case as torch
gives it, compared with torch where it is installed."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(thunk):
    try:
        return "gives", thunk()
    except Exception as error:  # noqa: BLE001 - the error is what we compare
        return type(error).__name__, str(error)


def _longer_than_it_says(lib):
    class LongerThanItSays(lib.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(3))

        def __len__(self):
            return 1

    return LongerThanItSays()


def test_iterable_dataset_length_warning_is_worded_as_torchs():
    messages = []
    for lib in (chainrule, torch):
        loader = lib.utils.data.DataLoader(_longer_than_it_says(lib), batch_size=None)
        assert len(loader) == 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert list(loader) == [0, 1, 2]
        messages.append([str(w.message).split(" object at ", 1)[1].split(">", 1)[1] for w in caught])
    # torch's message has no space before "(when"
    assert messages[0] == messages[1] == [
        f" was reported to be 1(when accessing len(dataloader)), but {n} samples have been fetched. " for n in (2, 3)]


def test_timeout_without_workers_raises_torchs_assertion_after_drawing_the_base_seed():
    outcomes = []
    for lib in (chainrule, torch):
        generator = lib.Generator().manual_seed(5)
        loader = lib.utils.data.DataLoader(list(range(4)), batch_size=2, timeout=1, generator=generator)
        outcomes.append((_outcome(lambda loader=loader: iter(loader)),
                         lib.randint(0, 10**6, (2,), generator=generator).tolist()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == ("AssertionError", "_SingleProcessDataLoaderIter requires timeout == 0")


def _collated(lib, batch):
    outcome = _outcome(lambda: lib.utils.data.default_collate(batch))
    if outcome[0] != "gives":
        return outcome
    return str(outcome[1].dtype).split(".")[-1], outcome[1].tolist()


NUMPY_THEN_OTHER = [
    lambda lib: [np.array([1, 2]), (lib.tensor([3, 4]), 0.5)],  # as_tensor: "only one element tensors ..."
    lambda lib: [np.array([1.0, 2.0]), {"a": 1}],  # as_tensor: "Could not infer dtype of dict"
    lambda lib: [np.array([1, 2]), [3, 4]],
    lambda lib: [np.array([1, 2]), np.float32(3)],
    lambda lib: [np.array([1.0, 2.0]), lib.tensor([3.0, 4.0])],
    lambda lib: [np.array([1, 2]), np.array(["a", "b"])],
    lambda lib: [np.array([1, 2]), "ab"],
]


@pytest.mark.parametrize("make", NUMPY_THEN_OTHER, ids=["tuple", "dict", "list", "numpy_scalar", "tensor", "str_array", "str"])
def test_default_collate_of_an_array_then_something_else_converts_as_torch_as_tensor(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "a list of numpy.ndarrays is extremely slow"
        assert _collated(chainrule, make(chainrule)) == _collated(torch, make(torch))


FLOAT_THEN_OTHER = [
    [1.5, (2, 0.5)],  # torch.tensor(batch, dtype=float64): "must be real number, not tuple"
    [1.5, "2"],
    [1.5, None],
    [1.5, [1]],
    [1.5, True],
    [1.5, np.float32(2)],
    [1.5, np.int64(2)],
    [0.25, 3, -1.0],
]


@pytest.mark.parametrize("batch", FLOAT_THEN_OTHER, ids=str)
def test_default_collate_of_a_float_then_something_else_converts_as_torch_tensor(batch):
    assert _collated(chainrule, batch) == _collated(torch, batch)


def test_default_collate_of_a_float_then_a_tensor_converts_as_torch_tensor():
    assert _collated(chainrule, [1.5, chainrule.tensor(2.0)]) == _collated(torch, [1.5, torch.tensor(2.0)])


class _Attributed(list):
    pass


CONVERTED = [
    lambda: collections.defaultdict(list, a=np.array([1]), b=[np.float32(2)]),  # was: TypeError building it
    lambda: collections.OrderedDict(b=np.array([1, 2]), a=1),
    lambda: _Attributed([np.array(1), 2]),  # a list subclass: copied, so kept
    lambda: collections.deque([np.array(1), "a"]),
    lambda: range(3),  # range([...]) fails: a plain list
    lambda: (np.array(1), (np.array([2]), "x")),
    lambda: np.bytes_(b"ab"),  # torch.as_tensor's error
    lambda: np.matrix([[1, 2]]),
    lambda: np.ma.masked_array([1, 2]),  # NumPy's, not numpy's own module: left alone
]


def _convert_outcome(lib, value):
    outcome = _outcome(lambda: lib.utils.data.default_convert(value))
    if outcome[0] != "gives":
        return outcome
    return type(outcome[1]).__name__, repr(outcome[1]).replace("torch", "LIB").replace("chainrule", "LIB")


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("make", CONVERTED, ids=["defaultdict", "OrderedDict", "list_subclass", "deque", "range",
                                                 "tuple", "np_bytes", "np_matrix", "masked_array"])
def test_default_convert_keeps_containers_as_torch(make):
    assert _convert_outcome(chainrule, make()) == _convert_outcome(torch, make())


def _batches(lib, dataset, **kwargs):
    lib.manual_seed(0)
    loader = lib.utils.data.DataLoader(dataset, **kwargs)
    return _outcome(lambda: [b.tolist() for b in loader])


@pytest.mark.parametrize("num_samples", [1, 5, 40])
def test_random_sampler_with_replacement_over_an_empty_dataset_raises_torchs_error(num_samples):
    outcomes = [_batches(lib, lib.utils.data.TensorDataset(lib.zeros(0, 2)), batch_size=2,
                         sampler=lib.utils.data.RandomSampler(range(0), replacement=True, num_samples=num_samples))
                for lib in (chainrule, torch)]
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] == ("RuntimeError", "random_ expects 'from' to be less than 'to', but got from=0 >= to=0")


NUMPY_SCALAR_THEN_OTHER = [
    [np.float64(1), (1, 2)],  # torch.as_tensor(batch): "must be real number, not tuple"
    [np.float32(1), 2.5],
    [np.int64(1), 2],
    [np.float64(1.5), "2"],
    [np.float64(1), None],
    [np.bool_(True), 1],
    [np.float16(1), [1]],
    [np.float32(1), np.float64(2)],
]


@pytest.mark.parametrize("batch", NUMPY_SCALAR_THEN_OTHER, ids=str)
def test_default_collate_of_a_numpy_scalar_then_something_else_converts_as_torch_as_tensor(batch):
    assert _collated(chainrule, batch) == _collated(torch, batch)
