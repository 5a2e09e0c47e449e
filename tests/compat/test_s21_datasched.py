"""torch.utils.data and torch.optim.lr_scheduler against torch 2.13: the differences
tools/torch_data_sched_trial.py found in session 21, in our own words. Expected values were read
from torch 2.13 (CPU); where torch is importable the test also asks it."""

import pytest

import chainrule
from chainrule.utils import data


# ---- RandomSampler on a given generator: torch draws one more (empty) permutation per epoch ----
def test_random_sampler_on_a_generator_advances_it_as_torch_between_epochs():
    # torch 2.13: randperm(9) for the epoch, then randperm(9)[:0] once the epoch is read to its end
    generator = chainrule.Generator().manual_seed(105)
    sampler = data.RandomSampler(range(9), generator=generator)
    assert [list(sampler), list(sampler)] == [[1, 6, 5, 0, 8, 2, 7, 3, 4], [6, 7, 2, 0, 1, 8, 5, 3, 4]]


def test_shuffled_loader_on_a_generator_gives_torchs_second_epoch():
    loader = data.DataLoader(list(range(9)), batch_size=4, shuffle=True, drop_last=True,
                             generator=chainrule.Generator().manual_seed(105))
    epochs = [[batch.tolist() for batch in loader] for _ in range(2)]
    torch = pytest.importorskip("torch")
    expected_loader = torch.utils.data.DataLoader(list(range(9)), batch_size=4, shuffle=True, drop_last=True,
                                                  generator=torch.Generator().manual_seed(105))
    assert epochs == [[batch.tolist() for batch in expected_loader] for _ in range(2)]
