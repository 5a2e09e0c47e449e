"""torch.multiprocessing's spawn and torch.version, as scripts use them."""

import os

import pytest

import chainrule
import chainrule.multiprocessing as mp


def _write_rank(rank, directory, scale):
    with open(os.path.join(directory, f"rank{rank}.txt"), "w") as f:
        f.write(str(float(chainrule.tensor([rank * scale]).sum())))


def _fail_on_one(rank):
    if rank == 1:
        raise ValueError("rank one is broken")


def _exit_with_three(rank):
    os._exit(3)


def test_spawn_runs_fn_with_each_rank_and_the_args(tmp_path):
    # fork keeps these API tests quick; the spawn start method is covered by the sharing tests below
    assert mp.spawn(_write_rank, args=(str(tmp_path), 2.5), nprocs=3, start_method="fork") is None
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["0.0", "2.5", "5.0"]


def test_spawn_raises_the_childs_error_in_the_parent():
    with pytest.raises(mp.ProcessRaisedException, match="rank one is broken") as info:
        mp.spawn(_fail_on_one, nprocs=2, start_method="fork")
    assert info.value.error_index == 1
    assert "Process 1 terminated with the following error" in str(info.value)


def test_spawn_reports_an_exit_code():
    with pytest.raises(mp.ProcessExitedException, match="terminated with exit code 3") as info:
        mp.spawn(_exit_with_three, nprocs=1, start_method="fork")
    assert info.value.exit_code == 3


def test_spawn_without_join_returns_the_context(tmp_path):
    context = mp.spawn(_write_rank, args=(str(tmp_path), 1.0), nprocs=2, join=False, start_method="fork")
    assert len(context.pids()) == 2
    while not context.join():
        pass
    assert len(list(tmp_path.iterdir())) == 2


def test_multiprocessing_reexports_the_standard_module_and_sharing_strategies():
    import multiprocessing

    assert mp.Process is multiprocessing.Process and mp.get_context is multiprocessing.get_context
    assert mp.get_sharing_strategy() in mp.get_all_sharing_strategies()
    mp.set_sharing_strategy("file_system")
    assert mp.get_sharing_strategy() == "file_system"
    mp.set_sharing_strategy("file_descriptor")
    assert chainrule.multiprocessing is mp


def test_version_answers_as_a_cpu_only_torch_without_a_gpu():
    assert chainrule.version.__version__ == chainrule.__version__
    if not chainrule.cuda.is_available():
        assert chainrule.version.cuda is None
    assert chainrule.version.hip is None


def _hogwild_worker(rank, model, steps):
    optimizer = chainrule.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        optimizer.zero_grad()
        model(chainrule.ones(1, 3)).sum().backward()  # d/dbias = 1: each step lowers the shared bias by 0.5
        optimizer.step()


def _add_rank(rank, tensor, queue):
    tensor.add_(rank + 1)
    queue.put(chainrule.full((2,), float(rank)))


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_hogwild_processes_train_the_same_shared_weights(start_method):
    model = chainrule.nn.Linear(3, 1)
    with chainrule.no_grad():
        model.bias.fill_(0.0)
    assert model.share_memory() is model
    assert all(p.is_shared() for p in model.parameters())
    mp.spawn(_hogwild_worker, args=(model, 4), nprocs=2, start_method=start_method)
    # the steps land on the parent's bias, not on a copy (which would leave it at 0). Hogwild's updates
    # race without a lock, in torch too: two processes may read the same value and one step is lost
    # (-2.5 instead of -4.0 once in a loaded clean-clone CI), so the sum is bounded, not exact
    assert -0.5 * 4 * 2 <= model.bias.item() <= -0.5


def test_a_shared_tensor_travels_by_name_and_others_by_value():
    context = mp.get_context("spawn")
    shared = chainrule.zeros(2).share_memory_()
    queue = context.SimpleQueue()
    workers = [context.Process(target=_add_rank, args=(rank, shared, queue)) for rank in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert shared.tolist() == [3.0, 3.0]
    received = sorted(queue.get().tolist() for _ in range(2))
    assert received == [[0.0, 0.0], [1.0, 1.0]] and not chainrule.zeros(1).is_shared()


# ---- the spawn start method with MPI installed: the ranks start as one MPI job ----
def _needs_mpi_job():
    if not mp._spawn_under_mpi():
        pytest.skip("needs mpi4py and mpiexec (the 'mpi' extra)")


def _all_reduce_rank(rank, directory, world_size):
    # torch's DDP tutorial: each spawned rank joins a gloo group of world_size by rank
    import chainrule.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "localhost", "29541"
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    total = chainrule.tensor([float(rank + 1)])
    dist.all_reduce(total)
    with open(os.path.join(directory, f"rank{rank}.txt"), "w") as f:
        f.write(f"{dist.get_rank()} {dist.get_world_size()} {total.item()}")
    dist.destroy_process_group()


def test_spawned_ranks_form_one_process_group(tmp_path):
    _needs_mpi_job()
    assert mp.spawn(_all_reduce_rank, args=(str(tmp_path), 2), nprocs=2) is None
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["0 2 3.0", "1 2 3.0"]


def test_an_mpi_spawned_rank_failing_raises_its_traceback_in_the_parent(tmp_path):
    _needs_mpi_job()
    with pytest.raises(mp.ProcessRaisedException, match="rank one is broken") as info:
        mp.spawn(_fail_on_one, nprocs=2)
    assert info.value.error_index == 1
    assert "Process 1 terminated with the following error" in str(info.value)
    context = mp.spawn(_write_rank, args=(str(tmp_path), 2.0), nprocs=2, join=False)
    while not context.join(timeout=0.5):
        pass
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["0.0", "2.0"]


_SHARE_WITH_A_SPAWNED_CHILD = """
import chainrule
import chainrule.multiprocessing as mp
from chainrule import _shared

def add_one(tensor):
    tensor.add_(1.0)

if __name__ == "__main__":
    shared = chainrule.zeros(3).share_memory_()
    child = mp.get_context("spawn").Process(target=add_one, args=(shared,))
    child.start()
    child.join()
    print(shared.tolist(), _shared.location(shared._data)[0])
"""


def test_a_segment_a_spawned_child_attached_to_is_unlinked_once_and_quietly(tmp_path):
    # the child shares its parent's resource tracker: attaching must not unregister the parent's
    # segment there, or the parent's unlink at exit makes the tracker print a KeyError traceback
    import subprocess
    import sys

    script = tmp_path / "share.py"
    script.write_text(_SHARE_WITH_A_SPAWNED_CHILD)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    values, segment = done.stdout.rsplit(" ", 1)
    assert values == "[1.0, 1.0, 1.0]"
    assert "KeyError" not in done.stderr and "resource_tracker" not in done.stderr, done.stderr
    assert not os.path.exists(f"/dev/shm/{segment.strip()}")
