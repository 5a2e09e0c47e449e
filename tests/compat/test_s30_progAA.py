"""Session 30, lane progAA (data pipelines, parametrizations, torch.func): fixes found while writing
the lane's programs, each checked against torch 2.13 on the same inputs."""

import pytest

import chainrule
from chainrule.utils import data as cr_data

torch = pytest.importorskip("torch")
from torch.utils import data as torch_data  # noqa: E402  (after the importorskip that guards it)


def _raised(fn):
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


# ---------------------------------------------------------------- IterableDataset is abstract
@pytest.mark.parametrize("make", [
    lambda data: data.IterableDataset(),
    lambda data: data.IterableDataset() + data.IterableDataset(),
    lambda data: type("NoIter", (data.IterableDataset,), {})(),
    lambda data: data.DataLoader(data.IterableDataset(), shuffle=True),
])
def test_iterable_dataset_without_iter_cannot_be_made_as_in_torch(make):
    """torch's IterableDataset is an ``Iterable`` whose ``__iter__`` is abstract; chainrule's could be
    instantiated, so ``IterableDataset() + ...`` gave a ChainDataset and a DataLoader over it raised
    the shuffle ValueError instead of torch's TypeError."""
    assert _raised(lambda: make(cr_data)) == _raised(lambda: make(torch_data))


def test_iterable_dataset_subclass_still_streams_and_chains():
    def make(data):
        class Range(data.IterableDataset):
            def __init__(self, start, end):
                super().__init__()
                self.start, self.end = start, end

            def __iter__(self):
                return iter(range(self.start, self.end))

        return Range

    ours, theirs = make(cr_data), make(torch_data)
    assert isinstance(ours(0, 2), cr_data.Dataset)
    assert list(ours(0, 3) + ours(5, 7)) == list(theirs(0, 3) + theirs(5, 7))
    assert [b.tolist() for b in cr_data.DataLoader(ours(0, 7), batch_size=3)] == \
        [b.tolist() for b in torch_data.DataLoader(theirs(0, 7), batch_size=3)]


# ---------------------------------------------------------------- TensorDataset's message
def test_tensor_dataset_size_mismatch_message_is_torchs():
    ours = _raised(lambda: cr_data.TensorDataset(chainrule.zeros(3), chainrule.zeros(4)))
    theirs = _raised(lambda: torch_data.TensorDataset(torch.zeros(3), torch.zeros(4)))
    assert ours == theirs == (AssertionError, "Size mismatch between tensors")
