"""torch.distributed.algorithms on 2 ranks: Join and DistributedDataParallel.join on uneven inputs
(rank 0 has 3 batches, rank 1 has 5), DDP communication hooks and model averaging. The same script
(join_worker.py) runs on torch's gloo and on chainrule, and every outcome must match: final
parameters, buffers and gradients, counts, hook calls, errors."""

from __future__ import annotations

import math
import os

import pytest
from _gloo_oracle import run_on_gloo_and_mpi  # this folder is on sys.path (no __init__.py)

import chainrule.distributed.algorithms.join as ours

torch_distributed = pytest.importorskip("torch.distributed")
torch_join = pytest.importorskip("torch.distributed.algorithms.join")

HERE = os.path.dirname(__file__)
WORKER = os.path.join(HERE, "join_worker.py")


def _close(found, expected, where: str) -> None:
    """Equal structure and text; floats equal to float32 rounding (NumPy and torch sum in
    different orders)."""
    if isinstance(expected, float):
        assert math.isclose(found, expected, rel_tol=1e-5, abs_tol=1e-6), f"{where}: {found} vs torch {expected}"
    elif isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected), f"{where}: {found} vs torch {expected}"
        for index, (a, b) in enumerate(zip(found, expected)):
            _close(a, b, f"{where}[{index}]")
    elif isinstance(expected, dict):
        assert found.keys() == expected.keys(), where
        for key in expected:
            _close(found[key], expected[key], f"{where}.{key}")
    else:
        assert found == expected, f"{where}: {found!r} vs torch {expected!r}"


@pytest.mark.skipif(not torch_distributed.is_available() or not torch_distributed.is_gloo_available(),
                    reason="this torch has no gloo backend to compare with")
def test_join_comm_hooks_and_averaging_match_torch_gloo(tmp_path):
    pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "chainrule[mpi]"')
    theirs, found = run_on_gloo_and_mpi(WORKER, tmp_path)
    for rank in range(2):
        _close(found[rank], theirs[rank], f"rank {rank}")
    # what the comparison covers, said outright: uneven steps, one final model, the count of
    # training ranks shared from the last joiner, and the errors of early termination
    assert [f["bn steps"] for f in found] == [3, 5]
    assert found[0]["bn state"] == found[1]["bn state"]
    assert found[0]["unused state"] == found[1]["unused state"]
    assert [f["counter alone"] for f in found] == [[[6.0], ["main", "main", "post False"]], [[8.0], ["post True"]]]
    assert [f["with ddp"][0] for f in found] == [[8.0], [8.0]]
    assert found[0]["throw"][:3] == ["RuntimeError", "Rank 0 exhausted all inputs.", 3]
    assert found[0]["own hook"][0] == [["my state", 0, True, 10, [[2], [2, 4]], [[2], [2, 4]]]]
    assert found[0]["hook twice"] == ["RuntimeError", "register_comm_hook or register_builtin_comm_hook can only "
                                      "be called once."]
    assert found[1]["throw"][:3] == ["RuntimeError", "Detected at least one rank that exhausted inputs. "
                                     "Throwing across all ranks.", 3]


def _joinable_class(module, group):
    class Toy(module.Joinable):
        def __init__(self):
            super().__init__()

        def join_hook(self, **kwargs):
            return module.JoinHook()

        @property
        def join_device(self):
            return "cpu"

        @property
        def join_process_group(self):
            return group

    return Toy


@pytest.mark.parametrize("library", [ours, torch_join], ids=["chainrule", "torch"])
def test_errors_before_any_communication(library):
    with pytest.raises(ValueError, match="^The join context manager requires at least one joinable$"):
        library.Join([])
    first, second = _joinable_class(library, "group a")(), _joinable_class(library, "group b")()
    with pytest.raises(ValueError, match="^Using join context manager with multiple process groups$"):
        library.Join([first, second])
    with pytest.raises(TypeError, match="abstract"):
        library.Joinable()


def test_notify_needs_the_joinable_constructor():
    for library in (ours, torch_join):
        class Forgetful(_joinable_class(library, None)):
            def __init__(self):
                pass  # never runs Joinable.__init__

        with pytest.raises(AssertionError, match="constructor calls the ``Joinable`` constructor"):
            library.Join.notify_join_context(Forgetful())


def test_a_joinable_outside_join_does_not_communicate():
    # not inside an enabled Join: notify_join_context is a no-op returning None, as in torch
    for library in (ours, torch_join):
        assert library.Join.notify_join_context(_joinable_class(library, None)()) is None
        hook = library.JoinHook()
        assert hook.main_hook() is None and hook.post_hook(True) is None


def test_future_names_its_value_type_as_torchs():
    # hooks are annotated ``-> torch.futures.Future[torch.Tensor]``; DDP compares that annotation
    import torch

    import chainrule

    assert chainrule.futures.Future[chainrule.Tensor] == chainrule.futures.Future[chainrule.Tensor]
    assert torch.futures.Future[torch.Tensor] == torch.futures.Future[torch.Tensor]
    assert isinstance(chainrule.futures.Future[chainrule.Tensor](), chainrule.futures.Future)


def test_grad_bucket_views_its_flat_buffer():
    import chainrule
    from chainrule.distributed import GradBucket

    weight, bias = chainrule.nn.Parameter(chainrule.zeros(2, 3)), chainrule.nn.Parameter(chainrule.zeros(2))
    bucket = GradBucket(1, 2, chainrule.arange(8, dtype=chainrule.float32), [weight, bias])
    assert bucket.index() == 1 and bucket.is_last() and bucket.parameters() == [weight, bias]
    gradients = bucket.gradients()
    assert [list(g.shape) for g in gradients] == [[2, 3], [2]]
    assert gradients[1].tolist() == [6.0, 7.0]
    gradients[0].mul_(0)  # a hook may compress in place: the views write through to the buffer
    assert bucket.buffer().tolist() == [0.0] * 6 + [6.0, 7.0]
    replacement = chainrule.ones(8, dtype=chainrule.float16)
    bucket.set_buffer(replacement)
    assert bucket.buffer() is replacement and not GradBucket(0, 2, replacement, [weight, bias]).is_last()
