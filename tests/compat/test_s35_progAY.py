"""What the three programs of session 35's lane progAY (prototypical_fewshot, pointer_net_tsp,
ft_transformer_tabular) showed chainrule answering differently from torch 2.13, each case run on
both libraries and compared."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _refusal(build):
    """The error type and message a user sees, or None when nothing is raised."""
    try:
        build()
    except Exception as error:  # the error is what is compared
        return type(error).__name__, str(error)
    return None


# --- the Sampler base class has no __init__ of its own in torch 2.13 ------------------------------
# torch dropped Sampler's deprecated data_source argument: a subclass that passes its dataset on to
# super().__init__ fails in object.__init__, and Sampler(...) with an argument is refused.


def _sampler_passing_its_dataset(lib):
    class EpisodeSampler(lib.utils.data.Sampler):
        def __init__(self, dataset):
            super().__init__(dataset)
            self.dataset = dataset

        def __iter__(self):
            yield [0, 1]

    return EpisodeSampler([10, 20, 30])


@pytest.mark.parametrize("build", [
    _sampler_passing_its_dataset,
    lambda lib: lib.utils.data.Sampler([1, 2, 3]),
    lambda lib: lib.utils.data.Sampler(data_source=[1, 2, 3]),
], ids=["subclass_super_init_with_dataset", "positional_data_source", "keyword_data_source"])
def test_sampler_refuses_a_data_source_as_torch(build):
    refused = _refusal(lambda: build(torch))
    assert refused is not None
    assert _refusal(lambda: build(chainrule)) == refused


def test_sampler_subclass_with_a_bare_super_init_still_feeds_a_batch_sampler():
    def batches(lib):
        class PairSampler(lib.utils.data.Sampler):
            def __init__(self, n):
                super().__init__()
                self.n = n

            def __iter__(self):
                for start in range(0, self.n, 2):
                    yield [start, start + 1]

            def __len__(self):
                return self.n // 2

        dataset = lib.utils.data.TensorDataset(lib.arange(6.0))
        loader = lib.utils.data.DataLoader(dataset, batch_sampler=PairSampler(6))
        return len(loader), [batch.tolist() for (batch,) in loader]

    assert batches(chainrule) == batches(torch)


# --- ReduceLROnPlateau's improvement test is torch's private _is_better ---------------------------
# A subclass that overrides _is_better (a custom notion of "improved") must steer the reductions, and
# there is no public is_better.


def _plateau_lrs_with_a_subclass_rule(lib):
    class ImprovesOnlyBelowHalf(lib.optim.lr_scheduler.ReduceLROnPlateau):
        def _is_better(self, a, best):
            return a < 0.5 and a < best

    parameter = lib.nn.Parameter(lib.zeros(2))
    optimizer = lib.optim.SGD([parameter], lr=1.0)
    scheduler = ImprovesOnlyBelowHalf(optimizer, patience=1, factor=0.5)
    lrs = []
    for metric in [0.9, 0.8, 0.7, 0.4, 0.3, 0.6, 0.6]:
        scheduler.step(metric)
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs, scheduler.best, hasattr(scheduler, "is_better")


def test_reduce_lr_on_plateau_consults_a_subclass_is_better_as_torch():
    assert _plateau_lrs_with_a_subclass_rule(chainrule) == _plateau_lrs_with_a_subclass_rule(torch)


# --- ReduceLROnPlateau.load_state_dict derives mode_worse again and refuses an unknown mode -------


def _plateau_loaded_from(lib, changes):
    parameter = lib.nn.Parameter(lib.zeros(1))
    source = lib.optim.lr_scheduler.ReduceLROnPlateau(lib.optim.SGD([parameter], lr=1.0), mode="max", patience=0)
    for metric in [1.0, 1.0, 2.0]:
        source.step(metric)
    state = {**source.state_dict(), **changes}
    target = lib.optim.lr_scheduler.ReduceLROnPlateau(lib.optim.SGD([parameter], lr=1.0))
    try:
        target.load_state_dict(state)
    except ValueError:
        # the message is chainrule's longer one; the type is torch's
        return "refused"
    target.step(1.5)
    return target.mode, target.mode_worse, target.best, target.num_bad_epochs, target.get_last_lr()


@pytest.mark.parametrize("changes", [{}, {"mode_worse": 0.0}, {"mode": "min"}, {"mode": "maximum"},
                                     {"threshold_mode": "relative"}],
                         ids=["as_saved", "stale_mode_worse", "mode_switched", "unknown_mode", "unknown_threshold_mode"])
def test_reduce_lr_on_plateau_load_state_dict_as_torch(changes):
    assert _plateau_loaded_from(chainrule, changes) == _plateau_loaded_from(torch, changes)
