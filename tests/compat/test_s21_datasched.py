"""torch.utils.data and torch.optim.lr_scheduler against torch 2.13: the differences
tools/torch_data_sched_trial.py found in session 21, in our own words. Expected values were read
from torch 2.13 (CPU), so these tests need no torch."""

import pytest

import chainrule
from chainrule.utils import data


# ---- RandomSampler on a given generator: torch draws one more (empty) permutation per epoch ----
def test_random_sampler_on_a_generator_advances_it_as_torch_between_epochs():
    # torch 2.13: randperm(9) for the epoch, then randperm(9)[:0] once the epoch is read to its end
    generator = chainrule.Generator().manual_seed(105)
    sampler = data.RandomSampler(range(9), generator=generator)
    assert [list(sampler), list(sampler)] == [[1, 6, 5, 0, 8, 2, 7, 3, 4], [6, 7, 2, 0, 1, 8, 5, 3, 4]]


def test_shuffled_loader_on_a_generator_gives_torchs_later_epochs():
    loader = data.DataLoader(list(range(9)), batch_size=4, shuffle=True, drop_last=True,
                             generator=chainrule.Generator().manual_seed(105))
    epochs = [[batch.tolist() for batch in loader] for _ in range(3)]
    # torch 2.13's three epochs (the base seed, then randperm(9) and randperm(9)[:0], per epoch)
    assert epochs == [[[5, 2, 8, 0], [6, 3, 1, 7]], [[4, 8, 3, 0], [7, 5, 1, 2]], [[2, 0, 5, 1], [4, 7, 3, 8]]]


# ---- lr_scheduler: torch's warnings, and the state they leave ----------------------------------
def _sgd(lib):
    first, second = lib.nn.Parameter(lib.ones(2)), lib.nn.Parameter(lib.ones(3))
    return lib.optim.SGD([{"params": [first]}, {"params": [second], "lr": 0.5}], lr=0.1, momentum=0.9)


def _user_warnings(program):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        program()
    return [str(w.message) for w in caught if w.category is UserWarning]


def test_scheduler_step_before_optimizer_step_warns_once_as_torch():
    optimizer = _sgd(chainrule)
    scheduler = chainrule.optim.lr_scheduler.StepLR(optimizer, 2)
    messages = _user_warnings(lambda: (scheduler.step(), scheduler.step()))
    assert len(messages) == 1 and messages[0].startswith("Detected call of `lr_scheduler.step()` before "
                                                         "`optimizer.step()`")
    in_order = _sgd(chainrule)
    scheduler = chainrule.optim.lr_scheduler.StepLR(in_order, 2)
    assert _user_warnings(lambda: (in_order.step(), scheduler.step())) == []
    assert in_order.step._wrapped_by_lr_sched  # torch's marker, which training frameworks look for


def test_scheduler_get_lr_outside_step_and_epoch_argument_warn_as_torch():
    optimizer = _sgd(chainrule)
    scheduler = chainrule.optim.lr_scheduler.CosineAnnealingLR(optimizer, 5)
    assert _user_warnings(scheduler.get_lr) == ["To get the last learning rate computed by the scheduler, "
                                                "please use `get_last_lr()`."]
    optimizer.step()
    assert _user_warnings(lambda: scheduler.step(3)) == [chainrule.optim.lr_scheduler.EPOCH_DEPRECATION_WARNING]
    plateau = chainrule.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    assert _user_warnings(lambda: plateau.step(1.0, 4)) == [chainrule.optim.lr_scheduler.EPOCH_DEPRECATION_WARNING]
    assert "_get_lr_called_within_step" in scheduler.state_dict()


# torch 2.13's lrs: the linear anneal of the loaded state (the constructor's cosine gave others)
EXPECTED_SWALR_LRS = [0.0875, 0.3875, 0.075, 0.275, 0.0625, 0.1625]


def test_swalr_state_dict_carries_its_anneal_strategy_as_torch():
    def loaded(lib):
        source = lib.optim.swa_utils.SWALR(_sgd(lib), 0.05, anneal_epochs=4, anneal_strategy="linear")
        state = source.state_dict()
        optimizer = _sgd(lib)
        target = lib.optim.swa_utils.SWALR(optimizer, 0.05, anneal_epochs=4, anneal_strategy="cos")
        target.load_state_dict(state)
        lrs = []
        for _ in range(3):
            optimizer.step()
            target.step()
            lrs += target.get_last_lr()
        return state["_anneal_strategy"], lrs

    strategy, lrs = loaded(chainrule)
    assert strategy == "linear"
    assert lrs == pytest.approx(EXPECTED_SWALR_LRS)


def test_sequential_lr_restarts_a_member_without_counting_a_step_as_torch():
    def step_counts(lib):
        optimizer = _sgd(lib)
        schedulers = lib.optim.lr_scheduler
        members = [schedulers.ConstantLR(optimizer, 0.5, total_iters=2), schedulers.StepLR(optimizer, 2, 0.5)]
        sequential = schedulers.SequentialLR(optimizer, members, milestones=[3])
        for _ in range(5):
            optimizer.step()
            sequential.step()
        return [member._step_count for member in members], sequential.get_last_lr()

    counts, lrs = step_counts(chainrule)
    # torch 2.13: the milestone's restart (epoch 3) is no step ([3, 4] before), and these lrs
    assert counts == [3, 3] and lrs == pytest.approx([0.05, 0.25])


# ---- default_convert / default_collate: a NumPy scalar or 0-d array stays 0-d ------------------
def test_default_convert_keeps_numpy_scalars_and_0d_arrays_0d_as_torch():
    import numpy as np

    converted = data.default_convert([np.int32(3), np.float64(0.5), np.array(2.0, dtype=np.float32)])
    assert [(tuple(t.shape), str(t.dtype)) for t in converted] == [
        ((), "chainrule.int32"), ((), "chainrule.float64"), ((), "chainrule.float32")]
    assert [t.item() for t in converted] == [3, 0.5, 2.0]
    batch = data.default_collate([np.array(2.0, dtype=np.float32), np.array(3.0, dtype=np.float32)])
    assert tuple(batch.shape) == (2,) and batch.tolist() == [2.0, 3.0]  # (2, 1) before
    loader = data.DataLoader([{"y": np.float32(1.5)}], batch_size=None)
    assert tuple(next(iter(loader))["y"].shape) == ()


# ---- DistributedSampler without a process group -------------------------------------------------
def test_distributed_sampler_without_a_process_group_raises_torchs_value_error():
    with pytest.raises(ValueError, match="Default process group has not been initialized, please make sure to "
                                         "call init_process_group"):
        data.DistributedSampler(range(4))
    assert list(data.DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False)) == [1, 3, 0]


# ---- pin_memory without an accelerator: torch's warning from each new iterator -----------------
def test_pin_memory_without_an_accelerator_warns_as_torch():
    if chainrule.accelerator.is_available():
        pytest.skip("an accelerator is present: torch pins and gives no warning")
    loader = data.DataLoader(list(range(4)), batch_size=2, pin_memory=True)
    messages = _user_warnings(lambda: [list(loader), list(loader)])
    assert messages == ["'pin_memory' argument is set as true but no accelerator is found, then device pinned "
                        "memory won't be used."] * 2
    assert _user_warnings(lambda: list(data.DataLoader(list(range(4)), batch_size=2))) == []


# ---- default_collate of Python numbers: torch.tensor(batch)'s dtype ----------------------------
def test_default_collate_of_an_int_then_a_float_is_a_float_tensor_as_torch():
    batch = data.default_collate([2, 1.5])
    assert batch.dtype == chainrule.float32 and batch.tolist() == [2.0, 1.5]  # int64 [2, 1] before
    assert data.default_collate([1.5, 2]).dtype == chainrule.float64  # a float first: torch's float64
    assert data.default_collate([True, 2, False]).tolist() == [1, 2, 0]


# ---- SubsetRandomSampler yields the items of its indices, as torch -----------------------------
def test_subset_random_sampler_yields_its_indices_items_as_torch():
    sampler = data.SubsetRandomSampler(chainrule.tensor([3, 5, 7]), generator=chainrule.Generator().manual_seed(0))
    drawn = list(sampler)
    assert all(isinstance(i, chainrule.Tensor) and i.dim() == 0 for i in drawn)  # ints before
    assert [int(i) for i in drawn] == [7, 3, 5]  # torch 2.13's order for this seed


# ---- WeightedRandomSampler.weights is a float64 tensor, read each epoch ------------------------
def test_weighted_random_sampler_weights_are_a_float64_tensor_read_each_epoch():
    sampler = data.WeightedRandomSampler([1.0, 2.0, 0.5], 4, generator=chainrule.Generator().manual_seed(2))
    assert isinstance(sampler.weights, chainrule.Tensor) and sampler.weights.dtype == chainrule.float64
    assert sampler.weights.tolist() == [1.0, 2.0, 0.5]  # a NumPy array before
    sampler.weights = chainrule.tensor([0.0, 0.0, 1.0], dtype=chainrule.float64)
    assert list(sampler) == [2, 2, 2, 2]


# ---- argument errors: torch's classes -----------------------------------------------------------
def test_prefetch_factor_zero_with_workers_is_torchs_assertion_error():
    loader = data.DataLoader(list(range(3)), num_workers=1, prefetch_factor=0)  # accepted, as torch
    with pytest.raises(AssertionError, match="prefetch_factor must be greater than 0"):
        iter(loader)  # a ValueError before


@pytest.mark.parametrize("build", [
    lambda: list(data.RandomSampler(range(3), generator=5)),
    lambda: list(data.RandomSampler(range(3), replacement=True, generator=5)),
    lambda: list(data.SubsetRandomSampler([1, 2], generator=5)),
    lambda: list(data.WeightedRandomSampler([1.0, 2.0], 2, generator=5)),
    lambda: data.random_split(range(4), [2, 2], generator=5),
], ids=["RandomSampler", "RandomSampler_replacement", "SubsetRandomSampler", "WeightedRandomSampler", "random_split"])
def test_a_generator_that_is_no_generator_is_a_type_error_as_torch(build):
    with pytest.raises(TypeError, match="generator must be a Generator"):  # AttributeError 'device' before
        build()


# ---- an IterableDataset that yields more than its len(): torch's warning -----------------------
class _LongerThanItSays(data.IterableDataset):
    def __iter__(self):
        return iter(range(5))

    def __len__(self):
        return 3


def test_iterable_dataset_yielding_more_than_its_len_warns_as_torch():
    loader = data.DataLoader(_LongerThanItSays(), batch_size=None)
    assert len(loader) == 3  # torch warns only after len(loader) was read, once per batch past it
    messages = _user_warnings(lambda: list(loader))
    assert len(messages) == 2 and messages[0].startswith("Length of IterableDataset ")  # torch has no space before "(when"
    assert messages[0].endswith("was reported to be 3(when accessing len(dataloader)), but 4 samples have been "
                                "fetched. ")
    assert _user_warnings(lambda: list(data.DataLoader(_LongerThanItSays(), batch_size=None))) == []


# ---- a tensor lr stays the group's own tensor, filled in place, as torch -----------------------
@pytest.mark.parametrize("build", [
    lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=8),
    lambda s, o: s.ReduceLROnPlateau(o, patience=0),
    lambda s, o: s.StepLR(o, 1, 0.5),
], ids=["OneCycleLR", "ReduceLROnPlateau", "StepLR"])
def test_a_tensor_lr_is_filled_in_place_and_get_last_lr_is_a_copy(build):
    parameter = chainrule.nn.Parameter(chainrule.ones(2))
    parameter.grad = chainrule.ones(2)
    lr = chainrule.tensor(0.05)
    optimizer = chainrule.optim.Adam([parameter], lr=lr)
    scheduler = build(chainrule.optim.lr_scheduler, optimizer)
    optimizer.step()
    scheduler.step(2.0) if isinstance(scheduler, chainrule.optim.lr_scheduler.ReduceLROnPlateau) else scheduler.step()
    assert optimizer.param_groups[0]["lr"] is lr  # replaced by a float (OneCycleLR) or a new tensor before
    last = scheduler.get_last_lr()[0]
    assert last is not lr and float(last) == float(lr) != 0.05
