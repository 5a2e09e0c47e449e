"""DataLoader with worker processes: same batches as in-process loading and as torch, per-worker
seeding and sharding, errors and dead workers reported, no process left behind."""

import multiprocessing
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import chainrule
from chainrule.utils.data import DataLoader, IterableDataset, TensorDataset, get_worker_info
from tests.test_data import assert_same

from . import workers_helpers as helpers


@pytest.fixture(autouse=True)
def fail_instead_of_hanging():
    """A hung DataLoader fails the test after 60 s instead of hanging the suite."""
    def fail(signum, frame):
        raise TimeoutError("DataLoader worker test did not finish within 60 s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _gone(pid):
    """True once the process has exited and been reaped (no zombie left in /proc)."""
    return not os.path.exists(f"/proc/{pid}")


def _batches(loader):
    return [b.tolist() if hasattr(b, "tolist") else b for b in loader]


class TorchSharded(torch.utils.data.IterableDataset):
    """helpers.Sharded for torch's DataLoader."""

    def __init__(self, lengths):
        self.lengths = lengths

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        shards = range(len(self.lengths)) if info is None else [info.id]
        for k in shards:
            yield from (k * 100 + j for j in range(self.lengths[k]))


@pytest.mark.parametrize("kwargs", [dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None),
                                    dict(batch_size=4, prefetch_factor=1), dict(batch_size=1, prefetch_factor=5)])
def test_map_style_batches_equal_in_process_loading_and_torch(kwargs):
    in_process_kwargs = {k: v for k, v in kwargs.items() if k != "prefetch_factor"}
    in_process = list(DataLoader(helpers.Items(11), **in_process_kwargs))
    with_workers = list(DataLoader(helpers.Items(11), num_workers=2, **kwargs))
    theirs = list(torch.utils.data.DataLoader(helpers.Items(11, lib=torch), **in_process_kwargs))
    assert len(with_workers) == len(in_process) == len(theirs)
    for ours, plain, want in zip(with_workers, in_process, theirs):
        assert_same(ours, want)
        assert_same(plain, want)


def test_shuffled_order_does_not_depend_on_workers():
    x = chainrule.arange(40.0).reshape(20, 2)
    data = TensorDataset(x, chainrule.arange(20))

    def epoch(num_workers):
        loader = DataLoader(data, batch_size=6, shuffle=True, num_workers=num_workers,
                            generator=chainrule.Generator().manual_seed(7))
        return [[t.tolist() for t in batch] for batch in loader]

    assert epoch(2) == epoch(0)


@pytest.mark.parametrize("kwargs", [dict(batch_size=2), dict(batch_size=2, drop_last=True), dict(batch_size=None),
                                    dict(batch_size=3, prefetch_factor=1)])
def test_iterable_dataset_sharded_by_worker_info_matches_torch(kwargs):
    lengths = [7, 3]
    ours = _batches(DataLoader(helpers.Sharded(lengths), num_workers=2, **kwargs))
    theirs = _batches(torch.utils.data.DataLoader(TorchSharded(lengths), num_workers=2, **kwargs))
    assert ours == theirs and len(ours) > 3


def test_get_worker_info_seeds_and_worker_init_fn():
    assert get_worker_info() is None
    loader = DataLoader(helpers.WhoAmI(8), batch_size=None, num_workers=2, worker_init_fn=helpers.record_worker_init,
                        generator=chainrule.Generator().manual_seed(3))
    samples = list(loader)
    assert [s["index"] for s in samples] == list(range(8))
    assert [s["worker"] for s in samples] == [0, 1] * 4  # round-robin, returned in order
    by_worker = {s["worker"]: s for s in samples}
    assert {s["init"] for s in samples} == {0, 1} and all(s["init"] == s["worker"] for s in samples)
    assert all(s["num_workers"] == 2 and s["dataset_is_copy"] for s in samples)
    # each worker's seed is base_seed + worker_id, and chainrule's generator is seeded with it
    assert by_worker[1]["seed"] == by_worker[0]["seed"] + 1
    assert all(s["initial_seed"] == s["seed"] for s in samples)
    assert by_worker[0]["pid"] != by_worker[1]["pid"] != os.getpid()
    for stream in ("random", "numpy", "chainrule"):
        assert by_worker[0][stream] != by_worker[1][stream], f"workers share the {stream} stream"

    again = list(DataLoader(helpers.WhoAmI(8), batch_size=None, num_workers=2,
                            generator=chainrule.Generator().manual_seed(3)))
    for a, b in zip(samples, again):
        assert (a["seed"], a["random"], a["numpy"], a["chainrule"]) == (b["seed"], b["random"], b["numpy"],
                                                                       b["chainrule"])
    other = next(iter(DataLoader(helpers.WhoAmI(8), batch_size=None, num_workers=2,
                                 generator=chainrule.Generator().manual_seed(4))))
    assert other["seed"] != samples[0]["seed"] and other["numpy"] != samples[0]["numpy"]


def test_worker_error_is_reraised_naming_the_worker_with_the_original_traceback():
    loader = DataLoader(helpers.Items(8, fail_at=5), batch_size=2, num_workers=2)
    iterator = iter(loader)
    assert [b["label"].tolist() for b in (next(iterator), next(iterator))] == [[0, 1], [2, 3]]
    with pytest.raises(ValueError) as caught:
        next(iterator)
    message = str(caught.value)
    assert message.startswith("Caught ValueError in DataLoader worker process 0.\n"
                              "Original Traceback (most recent call last):\n")
    assert "workers_helpers.py" in message and "ValueError: sample 5 is broken" in message
    assert next(iterator)["label"].tolist() == [6, 7], "loading goes on after a failed batch, as in torch"
    with pytest.raises(StopIteration):
        next(iterator)


def test_key_errors_stay_readable_and_odd_exceptions_become_runtime_errors():
    with pytest.raises(KeyError) as caught:
        next(iter(DataLoader(helpers.Items(4, fail_at=0, error=KeyError), num_workers=1)))
    assert "Caught KeyError in DataLoader worker process 0.\nOriginal Traceback" in str(caught.value)
    with pytest.raises(RuntimeError, match="Caught NeedsTwoArguments in DataLoader worker process 0"):
        next(iter(DataLoader(helpers.RaisesOddException(), num_workers=1)))


def test_worker_init_fn_error_is_reported_for_its_worker():
    loader = DataLoader(helpers.Items(4), num_workers=2, worker_init_fn=helpers.failing_worker_init)
    with pytest.raises(ValueError, match="Caught ValueError in DataLoader worker process 0(.|\n)*"
                                         "worker_init_fn refuses worker 0"):
        next(iter(loader))


@pytest.mark.parametrize("how,error,match", [
    ("graph", RuntimeError, "Cowardly refusing to serialize non-leaf tensor which requires_grad"),
    # Python 3.11 says AttributeError, later versions PicklingError
    ("lambda", (pickle.PicklingError, AttributeError), r"in DataLoader worker process 1\.(.|\n)*Can't pickle"),
])
def test_a_batch_that_cannot_cross_processes_is_an_error_not_a_hang(how, error, match):
    iterator = iter(DataLoader(helpers.Misbehaves(4, at=1, how=how), batch_size=None, num_workers=2))
    assert next(iterator) == 0
    with pytest.raises(error, match=match):
        next(iterator)


def test_tensors_cross_processes_by_pickling():
    leaf = next(iter(DataLoader(helpers.Misbehaves(2, at=0, how="leaf"), batch_size=None, num_workers=1)))
    assert leaf.requires_grad and leaf.is_leaf and leaf.tolist() == [1.0, 1.0]
    view = chainrule.arange(12, dtype=chainrule.int16).reshape(3, 4)[1:, ::2]
    copy = pickle.loads(pickle.dumps(view))
    assert copy.dtype == chainrule.int16 and copy.tolist() == view.tolist()
    param = pickle.loads(pickle.dumps(chainrule.nn.Parameter(chainrule.ones(2))))
    assert isinstance(param, chainrule.nn.Parameter) and param.requires_grad


def test_timeout_raises_torchs_runtime_error():
    loader = DataLoader(helpers.Misbehaves(4, at=1, how="sleep", delay=2.0), batch_size=None, num_workers=1,
                        timeout=0.2)
    iterator = iter(loader)
    assert next(iterator) == 0
    with pytest.raises(RuntimeError, match=r"^DataLoader timed out after 0.2 seconds$"):
        next(iterator)


@pytest.mark.parametrize("how,match", [
    ("kill", r"DataLoader worker \(pid \d+\) is killed by signal: Killed"),
    ("exit", r"DataLoader worker \(pid \d+\) exited unexpectedly with exit code 3"),
])
def test_a_dead_worker_raises_runtime_error(how, match):
    iterator = iter(DataLoader(helpers.Misbehaves(6, at=3, how=how), batch_size=None, num_workers=2))
    workers = list(iterator._workers)
    # batches the dying worker made just before may be lost with it, so the error can come early
    with pytest.raises(RuntimeError, match=match):
        list(iterator)
    assert all(_gone(w.pid) for w in workers), "the surviving worker is shut down and reaped"


def test_abandoned_iterator_shuts_its_workers_down():
    iterator = iter(DataLoader(helpers.Items(100), batch_size=2, num_workers=2))
    next(iterator)
    pids = [w.pid for w in iterator._workers]
    del iterator
    assert all(_gone(pid) for pid in pids)
    assert not [p for p in multiprocessing.active_children() if p.pid in pids]


def test_an_exception_in_the_training_loop_leaves_no_worker_behind():
    seen = set()

    def train():
        for batch in DataLoader(helpers.Pids(), batch_size=1, num_workers=2):
            seen.update(batch.tolist())
            if len(seen) == 2:
                raise ArithmeticError("loss is nan")

    with pytest.raises(ArithmeticError):
        train()
    assert len(seen) == 2 and all(_gone(pid) for pid in seen)


def _exited(pid):
    """Gone, or a zombie waiting for a reaper that is not ours to be (init, after reparenting)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_workers_exit_when_the_main_process_is_killed():
    script = textwrap.dedent("""
        import os, signal
        from chainrule.utils.data import DataLoader
        from tests.data.workers_helpers import Pids
        iterator = iter(DataLoader(Pids(), batch_size=None, num_workers=2, persistent_workers=True))
        print(*(w.pid for w in iterator._workers), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    root = pathlib.Path(__file__).parents[2]
    source = pathlib.Path(chainrule.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(root)])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50, env=env)
    assert result.returncode == -signal.SIGKILL, result.stderr
    pids = [int(pid) for pid in result.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 8  # workers look for their parent once a second
    while not all(_exited(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_exited(pid) for pid in pids)


def test_persistent_workers_survive_epochs_and_restart_cleanly():
    loader = DataLoader(helpers.WhoAmI(6), batch_size=None, num_workers=2, persistent_workers=True)
    first = [(s["index"], s["pid"]) for s in loader]
    iterator = iter(loader)
    next(iterator)  # abandon the second epoch after one sample
    third = [(s["index"], s["pid"]) for s in loader]
    assert first == third and [index for index, _ in first] == list(range(6))
    pids = {pid for _, pid in first}
    assert len(pids) == 2 and all(not _gone(pid) for pid in pids)
    del loader, iterator
    assert all(_gone(pid) for pid in pids)


def test_persistent_workers_with_an_iterable_dataset():
    loader = DataLoader(helpers.Sharded([5, 2]), batch_size=2, num_workers=2, persistent_workers=True)
    theirs = _batches(torch.utils.data.DataLoader(TorchSharded([5, 2]), batch_size=2, num_workers=2))
    assert _batches(loader) == _batches(loader) == theirs


def test_prefetch_factor_bounds_the_batches_in_flight():
    iterator = iter(DataLoader(helpers.Items(40), batch_size=1, num_workers=2, prefetch_factor=3))
    labels = []
    for batch in iterator:
        labels.append(batch["label"].item())
        assert iterator._send_idx - iterator._rcvd_idx <= 3 * 2
    assert labels == list(range(40))


def test_out_of_order_delivery_still_delivers_every_batch():
    loader = DataLoader(helpers.Misbehaves(12, at=0, how="sleep", delay=1.0), batch_size=None, num_workers=2,
                        in_order=False)
    got = [int(b) for b in loader]
    assert sorted(got) == list(range(12)) and got[0] != 0


def test_spawn_start_method_gives_the_same_batches_as_fork():
    signal.alarm(120)  # spawned workers import chainrule afresh: slow to start on a busy machine

    def epoch(context):
        loader = DataLoader(helpers.WhoAmI(6), batch_size=None, num_workers=2, multiprocessing_context=context,
                            worker_init_fn=helpers.record_worker_init, generator=chainrule.Generator().manual_seed(1))
        return [{k: v for k, v in sample.items() if k != "pid"} for sample in loader]

    spawned = epoch(multiprocessing.get_context("spawn"))
    assert spawned == epoch("fork")
    assert [sample["worker"] for sample in spawned] == [0, 1] * 3 and spawned[0]["init"] == 0


@pytest.mark.parametrize("kwargs,error", [
    (dict(prefetch_factor=2), ValueError),
    (dict(persistent_workers=True), ValueError),
    (dict(multiprocessing_context="spawn"), ValueError),
    (dict(num_workers=1, multiprocessing_context="teleport"), ValueError),
    (dict(num_workers=1, multiprocessing_context=3), TypeError),
    (dict(num_workers=1, prefetch_factor=-1), ValueError),
    (dict(timeout=-1), ValueError),
])
def test_worker_argument_errors_match_torch(kwargs, error):
    with pytest.raises(error) as theirs:
        torch.utils.data.DataLoader(list(range(4)), **kwargs)
    with pytest.raises(error) as ours:
        DataLoader(list(range(4)), **kwargs)
    assert str(ours.value).replace("chainrule", "torch") == str(theirs.value).replace(
        "torch.multiprocessing", "multiprocessing")


def test_loader_settings_are_frozen_after_construction_as_in_torch():
    loader = DataLoader(list(range(4)), batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute should not be set after DataLoader is initialized"):
        loader.batch_size = 3
    loader.num_workers = 1  # not one of the frozen settings, as in torch
    assert _batches(loader) == [[0, 1], [2, 3]]


def test_iterable_dataset_in_main_process_sees_no_worker_info():
    class Probe(IterableDataset):
        def __iter__(self):
            yield get_worker_info() is None

    assert list(DataLoader(Probe(), batch_size=None)) == [True]
