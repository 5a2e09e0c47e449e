"""Session 30, lane progAA (data pipelines, parametrizations, torch.func): fixes found while writing
the lane's programs, each checked against torch 2.13 on the same inputs."""

import numpy as np
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


# ---------------------------------------------------------------- pack_padded_sequence's lengths
@pytest.mark.parametrize("lengths", ["list2d", "tensor2d", "tensor0d"])
def test_pack_padded_sequence_lengths_not_1d_says_torchs_words(lengths):
    def call(lib):
        given = {"list2d": [[3], [1]], "tensor2d": lib.tensor([[3], [1]]), "tensor0d": lib.tensor(3)}[lengths]
        return lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(2, 3), given, batch_first=True)

    ours, theirs = _raised(lambda: call(chainrule)), _raised(lambda: call(torch))
    assert ours == theirs
    assert theirs[1].startswith("'lengths' argument should be a 1D CPU int64 tensor")


def test_pack_padded_sequence_lengths_as_list_or_tensor_still_pack_as_torch():
    values = [[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]]
    for lengths in ([3, 2], "tensor"):
        packed = [lib.nn.utils.rnn.pack_padded_sequence(
            lib.tensor(values), lib.tensor([3, 2]) if lengths == "tensor" else lengths, batch_first=True)
            for lib in (chainrule, torch)]
        assert packed[0].data.tolist() == packed[1].data.tolist()
        assert packed[0].batch_sizes.tolist() == packed[1].batch_sizes.tolist()


# ---------------------------------------------------------------- errors of private modules
@pytest.mark.parametrize("build", [
    lambda lib: lib.nn.utils.parametrizations.spectral_norm(lib.nn.Linear(3, 4), n_power_iterations=0),
    lambda lib: lib.nn.utils.parametrizations.spectral_norm(lib.nn.Linear(3, 4), n_power_iterations=-2),
])
def test_an_error_raised_inside_a_private_module_keeps_torchs_message(build):
    """chainrule names a module's class and arguments in its constructor's errors; for a private one
    (``_SpectralNorm``, built by ``spectral_norm``), that prefixed the whole weight's repr to torch's
    'Expected n_power_iterations to be positive, but got n_power_iterations=0'."""
    assert _raised(lambda: build(chainrule)) == _raised(lambda: build(torch))


# ---------------------------------------------------------------- a DataLoader over an IterableDataset
@pytest.mark.parametrize(("batch_size", "drop_last"), [(None, False), (1, False), (3, False), (1, True), (3, True)])
def test_loader_over_an_iterable_dataset_holds_torchs_samplers(batch_size, drop_last):
    """torch gives such a loader an ``_InfiniteConstantSampler`` and, when batching, a ``BatchSampler``
    over it; chainrule held None in both, so code reading ``loader.sampler`` or
    ``loader.batch_sampler.batch_size`` (as Lightning does) found nothing."""

    def describe(lib, data):
        class Stream(data.IterableDataset):
            def __iter__(self):
                return iter(range(7))

        loader = data.DataLoader(Stream(), batch_size=batch_size, drop_last=drop_last)
        batch_sampler = loader.batch_sampler
        return (type(loader.sampler).__name__, type(batch_sampler).__name__,
                None if batch_sampler is None else (batch_sampler.batch_size, batch_sampler.drop_last),
                [b.tolist() if hasattr(b, "tolist") else b for b in loader])

    assert describe(chainrule, cr_data) == describe(torch, torch_data)


def test_infinite_constant_sampler_yields_none_as_torchs():
    import itertools

    from torch.utils.data.dataloader import _InfiniteConstantSampler as Theirs

    from chainrule.utils.data.dataloader import _InfiniteConstantSampler as Ours

    assert list(itertools.islice(Ours(), 4)) == list(itertools.islice(Theirs(), 4)) == [None] * 4
    assert isinstance(Ours(), cr_data.Sampler)


# ---------------------------------------------------------------- torch.func: stack_module_state, functional_call
def test_stack_module_state_refuses_models_that_disagree_on_requires_grad():
    def stack(lib):
        lib.manual_seed(0)
        models = [lib.nn.Linear(2, 1), lib.nn.Linear(2, 1)]
        models[0].weight.requires_grad_(False)
        return lib.func.stack_module_state(models)

    ours, theirs = _raised(lambda: stack(chainrule)), _raised(lambda: stack(torch))
    assert ours == theirs == (RuntimeError, "Expected weight from each model to have the same .requires_grad")


def test_stack_module_state_stacks_frozen_models_as_torch():
    def stack(lib):
        lib.manual_seed(0)
        models = [lib.nn.Linear(2, 1).requires_grad_(False) for _ in range(3)]
        params, _ = lib.func.stack_module_state(models)
        return {name: (p.requires_grad, p.is_leaf, p.tolist()) for name, p in params.items()}

    assert stack(chainrule) == stack(torch)


def _scaled_module(lib):
    class Scaled(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = lib.nn.Linear(2, 1)

        def forward(self, x):
            return self.l(x) * (self.scale if hasattr(self, "scale") else 1)

    lib.manual_seed(0)
    return Scaled()


def test_functional_call_sets_a_name_that_is_no_parameter_as_an_attribute_for_the_call():
    """torch's functional_call sets any other name as an attribute during the call and removes it
    after; chainrule ignored it, so a module reading ``self.scale`` ran without it."""
    def call(lib):
        module = _scaled_module(lib)
        out = lib.func.functional_call(module, {"scale": lib.tensor(10.0)}, (lib.ones(1, 2),))
        return out.tolist(), hasattr(module, "scale")

    assert call(chainrule) == call(torch)


@pytest.mark.parametrize("values", [
    lambda lib: {"foo.bar": lib.tensor(1.0)},
    lambda lib: {"training": lib.tensor(1.0)},
    lambda lib: {"l.weight": 3},
])
def test_functional_call_refuses_what_torch_refuses(values):
    def call(lib):
        return lib.func.functional_call(_scaled_module(lib), values(lib), (lib.ones(1, 2),))

    assert _raised(lambda: call(chainrule)) == _raised(lambda: call(torch))


def test_functional_call_with_a_parametrized_name_assigns_through_right_inverse_as_torch():
    """The documented way to bypass a parametrization: the value given for ``weight`` goes through
    the property, as in torch; chainrule ran the module's own weight_norm weight instead."""
    def call(lib):
        lib.manual_seed(0)
        module = lib.nn.utils.parametrizations.weight_norm(lib.nn.Linear(3, 2))
        x = lib.arange(6.0).view(2, 3) / 6
        out = lib.func.functional_call(module, {"weight": lib.ones(2, 3)}, (x,))
        return out, module(x)

    (ours, ours_after), (theirs, theirs_after) = call(chainrule), call(torch)
    assert torch.allclose(torch.tensor(ours.tolist()), theirs, atol=1e-6)
    assert torch.allclose(torch.tensor(ours_after.tolist()), theirs_after, atol=1e-6)


# ---------------------------------------------------------------- default_collate / default_convert refusals
@pytest.mark.parametrize("call", [
    lambda lib, data: data.default_collate([np.array(["2020-01-01"], dtype="datetime64[D]")]),
    lambda lib, data: data.default_convert(np.array(["2020-01-01"], dtype="datetime64[D]")),
    lambda lib, data: data.default_collate([np.arange(3)[::-1]]),
    lambda lib, data: data.default_convert(np.arange(3)[::-1]),
    lambda lib, data: data.default_collate([lib.zeros(2), np.zeros(2)]),
    lambda lib, data: data.default_collate(lib.arange(4).view(2, 2)),
    lambda lib, data: data.default_collate([np.zeros(2, dtype=">f4")]),
])
def test_default_collate_refuses_as_torch(call):
    """torch's collate converts arrays by torch.as_tensor and stacks by torch.stack, so their
    refusals are theirs: a datetime64 array, a negative stride or a big-endian array (chainrule
    copied them), a NumPy
    array among tensors (an AttributeError here), a Tensor given as the batch (stacked here)."""
    assert _raised(lambda: call(chainrule, cr_data)) == _raised(lambda: call(torch, torch_data))


def test_default_collate_of_arrays_and_tensors_still_batches_as_torch():
    def batches(lib, data):
        return [data.default_collate([np.arange(3.0)[::2], np.ones(2)]).tolist(),
                data.default_collate([np.zeros((2, 2)).T, np.ones((2, 2))]).tolist(),
                data.default_collate((lib.zeros(1), lib.ones(1))).tolist(),
                str(data.default_collate([np.float32(1), np.float32(2)]).dtype).split(".")[-1]]

    assert batches(chainrule, cr_data) == batches(torch, torch_data)


# ---------------------------------------------------------------- vmap's randomness error inside a constructor
def test_module_built_under_vmap_raises_torchs_randomness_error_unprefixed():
    """A Linear built inside a vmapped function draws its init: torch's RuntimeError reads the
    same whether the draw is the user's or a constructor's; chainrule put 'Linear(in_features=3,
    out_features=1): ' in front."""
    def call(lib):
        return lib.vmap(lambda x: lib.nn.Linear(3, 1)(x))(lib.ones(2, 3))

    ours, theirs = _raised(lambda: call(chainrule)), _raised(lambda: call(torch))
    assert ours == theirs
    assert theirs[1].startswith("vmap: called random operation while in randomness error mode")
