"""The stores, Backend and the error classes of torch.distributed, against torch 2.13's own, in
one process (a TCPStore's server and its clients share the process over localhost sockets)."""

from __future__ import annotations

import datetime
import socket
import threading

import pytest
import torch
import torch.distributed as tdist

import chainrule.distributed as dist

SHORT = datetime.timedelta(seconds=0.2)


def _script(lib, store):
    """The same calls on either library's store; what each returns, or the error it raises."""
    results = []

    def attempt(fn):
        try:
            results.append(fn())
        except (RuntimeError, ValueError, TypeError) as exc:
            results.append(("raised", isinstance(exc, RuntimeError), isinstance(exc, ValueError)))

    attempt(lambda: store.set("a", "1"))
    attempt(lambda: store.set("b", b"\x00\xff"))
    attempt(lambda: (store.get("a"), store.get("b")))
    attempt(lambda: (store.add("n", 5), store.add("n", -2), store.get("n")))
    attempt(lambda: store.add("a", 1))  # a value that reads as a number counts on from it
    attempt(lambda: (store.check(["a"]), store.check(["a", "nope"]), store.check([])))
    attempt(lambda: store.compare_set("k", "", "v"))  # missing key, empty expectation: set
    attempt(lambda: store.compare_set("k2", "x", "v"))  # missing key otherwise: expected comes back
    attempt(lambda: store.compare_set("k", "v", "w"))
    attempt(lambda: store.compare_set("k", "zz", "q"))  # mismatch: the current value comes back
    attempt(lambda: store.get("k"))
    attempt(lambda: store.multi_set(["m1", "m2"], ["x", b"y"]))
    attempt(lambda: store.multi_get(["m1", "m2"]))
    attempt(lambda: (store.append("ap", "x"), store.append("ap", b"y"), store.get("ap")))
    attempt(lambda: store.timeout)
    store.set_timeout(SHORT)
    attempt(lambda: store.timeout)
    attempt(lambda: store.get("missing"))
    attempt(lambda: store.wait(["missing"], datetime.timedelta(seconds=0.1)))
    attempt(lambda: store.wait(["a", "b"]))
    attempt(lambda: store.set("i", 3))
    return results


@pytest.mark.parametrize("kind", ["HashStore", "PrefixStore", "FileStore", "TCPStore"])
def test_store_calls_answer_like_torchs(kind, tmp_path):
    def make(lib):
        if kind == "HashStore":
            return lib.HashStore()
        if kind == "PrefixStore":
            return lib.PrefixStore("job", lib.HashStore())
        if kind == "FileStore":
            return lib.FileStore(str(tmp_path / lib.__name__), 1)
        return lib.TCPStore("127.0.0.1", 0, 1, True, timeout=datetime.timedelta(seconds=5))

    assert _script(dist, make(dist)) == _script(tdist, make(tdist))


@pytest.mark.parametrize("kind", ["HashStore", "FileStore", "TCPStore"])
def test_deleting_and_counting_keys_like_torch(kind, tmp_path):
    def make(lib):
        if kind == "HashStore":
            return lib.HashStore()
        if kind == "FileStore":
            return lib.FileStore(str(tmp_path / lib.__name__), 1)
        return lib.TCPStore("127.0.0.1", 0, 1, True)

    def calls(store):
        store.set("a", "1")
        store.add("n", 2)
        # FileStore answers True for a key that is gone too, and counts its own reference key
        return store.num_keys(), store.delete_key("a"), store.delete_key("a"), store.num_keys()

    assert calls(make(dist)) == calls(make(tdist))


def test_missing_keys_raise_dist_store_error_after_the_timeout():
    store = dist.HashStore()
    store.set_timeout(SHORT)
    with pytest.raises(dist.DistStoreError, match="wait timeout after 200ms, keys: late"):
        store.get("late")
    # a key set by another thread while get() waits is returned at once
    threading.Timer(0.05, lambda: store.set("late", "here")).start()
    store.set_timeout(datetime.timedelta(seconds=10))
    assert store.get("late") == b"here"


def test_prefix_store_keeps_its_keys_under_the_prefix():
    base = dist.HashStore()
    prefixed = dist.PrefixStore("trainer", base)
    prefixed.set("x", "1")
    assert base.get("trainer/x") == b"1" and prefixed.get("x") == b"1"
    assert prefixed.underlying_store is base
    assert prefixed.add("c", 2) == 2 and base.get("trainer/c") == b"2"
    ours, theirs = dist.PrefixStore("p", dist.HashStore()), tdist.PrefixStore("p", tdist.HashStore())
    for store in (ours, theirs):
        store.set("k", "v")
    assert ours.num_keys() == theirs.num_keys()


def test_file_store_is_shared_through_its_file_and_removed_by_the_last_user(tmp_path):
    path = tmp_path / "store"
    first, second = dist.FileStore(str(path), 2), dist.FileStore(str(path), 2)
    first.set("k", b"from first")
    assert second.get("k") == b"from first"
    assert second.add("n", 3) == 3 and first.add("n", 1) == 4
    # torch's FileStore reads the same file format back only in torch; values and semantics match
    first.close()
    assert path.exists()
    second.close()
    assert not path.exists()


def test_tcp_store_serves_clients_and_waits_for_workers():
    with socket.socket() as probe:  # a free port for a master whose constructor blocks
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stores = {}
    master_thread = threading.Thread(target=lambda: stores.update(master=dist.TCPStore(
        "127.0.0.1", port, 3, True, timeout=datetime.timedelta(seconds=20))))
    master_thread.start()
    clients = [dist.TCPStore("127.0.0.1", port, 3, False) for _ in range(2)]
    master_thread.join(20)
    master = stores["master"]  # it returned: all three instances counted themselves
    assert master.port == port and master.get("init/") == b"3"
    clients[0].set("from client", "0")
    assert master.get("from client") == b"0" and clients[1].get("from client") == b"0"
    assert [c.add("count", 1) for c in (master, *clients)] == [1, 2, 3]
    # a blocked get on one client wakes when another client sets the key
    threading.Timer(0.1, lambda: clients[1].set("later", "now")).start()
    assert clients[0].get("later") == b"now"


def test_a_closed_tcp_store_master_frees_its_port():
    master = dist.TCPStore("127.0.0.1", 0, 1, True)
    port = master.port
    master.close()
    again = dist.TCPStore("127.0.0.1", port, 1, True)
    again.set("k", "v")
    assert again.get("k") == b"v" and again.port == port


def test_tcp_store_errors_like_torch():
    master = dist.TCPStore("127.0.0.1", 0, 1, True)
    with pytest.raises(dist.DistNetworkError, match="failed to bind"):
        dist.TCPStore("127.0.0.1", master.port, 1, True)
    with pytest.raises(dist.DistNetworkError, match=r"The client socket has timed out after 300ms while trying to "
                                                   r"connect to \(127.0.0.1, 1\)"):
        dist.TCPStore("127.0.0.1", 1, 2, False, timeout=datetime.timedelta(seconds=0.3))
    master.set_timeout(SHORT)
    with pytest.raises(dist.DistStoreError, match="wait timeout after 200ms, keys: nope"):
        master.get("nope")
    with pytest.raises(dist.DistStoreError, match="waiting for 2 workers"):
        dist.TCPStore("127.0.0.1", 0, 2, True, timeout=SHORT)


def test_error_classes_are_runtime_errors_as_in_torch():
    for name in ("DistError", "DistBackendError", "DistNetworkError", "DistStoreError"):
        ours, theirs = getattr(dist, name), getattr(tdist, name)
        assert [c.__name__ for c in ours.__mro__[:-3]] == [c.__name__ for c in theirs.__mro__[:-3]]


def test_backend_names_like_torch():
    for name in ("GLOO", "gloo", "Nccl", "mpi", "something"):
        assert dist.Backend(name) == tdist.Backend(name)
    assert dist.Backend.GLOO == "gloo" and dist.Backend.MPI == "mpi" and dist.Backend.UNDEFINED == "undefined"
    assert dist.Backend.backend_list[:7] == tdist.Backend.backend_list[:7]
    with pytest.raises(ValueError, match="Backend constructor parameter must be string-ish"):
        dist.Backend(3)
    for device in ("cpu", "cuda", "cuda:1", torch.device("cpu")):
        device_here = dist.get_default_backend_for_device(str(device))
        assert device_here == tdist.get_default_backend_for_device(device)
    with pytest.raises(ValueError, match="Default backend not registered for device : meta"):
        dist.get_default_backend_for_device("meta")
    # every built-in name runs here on MPI; nccl (between GPUs) does not
    assert [dist.is_backend_available(b) for b in ("gloo", "mpi", "cpu:gloo", "nccl", "unknown")] == [
        True, True, True, False, False]


def test_register_backend_adds_a_name(monkeypatch):
    monkeypatch.setattr(dist.Backend, "backend_list", list(dist.Backend.backend_list))
    monkeypatch.setattr(dist.Backend, "_plugins", dict(dist.Backend._plugins))
    monkeypatch.setattr(dist.Backend, "backend_capability", dict(dist.Backend.backend_capability))
    monkeypatch.setattr(dist.Backend, "default_device_backend_map", dict(dist.Backend.default_device_backend_map))
    dist.Backend.register_backend("dummy_s14", lambda *args: None, devices=["cpu"])
    try:
        assert dist.Backend.DUMMY_S14 == "dummy_s14" and "dummy_s14" in dist.Backend.backend_list
        assert dist.is_backend_available("dummy_s14")
        # recorded, not runnable: every process group here is an MPI communicator
        with pytest.raises(ValueError, match="unknown backend 'dummy_s14'"):
            dist.init_process_group("dummy_s14")
    finally:
        del dist.Backend.DUMMY_S14
    with pytest.raises(TypeError, match="func must be callable"):
        dist.Backend.register_backend("other_s14", None, devices=["cpu"])
    with pytest.warns(UserWarning, match="Device capability of warned_s14 unspecified"):
        dist.Backend.register_backend("warned_s14", lambda *args: None)
    del dist.Backend.WARNED_S14


def test_calls_before_init_raise_torchs_error():
    import chainrule

    for call in (dist.get_backend_config, dist.monitored_barrier,
                 lambda: dist.P2POp(dist.isend, chainrule.ones(1), 1),
                 lambda: dist.all_to_all_single(chainrule.zeros(2), chainrule.zeros(2)),
                 lambda: dist.gather_object(1, [None]), dist.distributed_c10d._get_default_store):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            call()
    with pytest.raises(ValueError, match="Invalid ``op``"):
        dist.P2POp(dist.send, chainrule.ones(1), 1)


def test_init_with_a_store_needs_rank_and_world_size_as_in_torch():
    store = dist.HashStore()
    with pytest.raises(AssertionError, match="world_size must be positive if using store"):
        dist.init_process_group("gloo", store=store)
    with pytest.raises(AssertionError, match="rank must be non-negative if using store"):
        dist.init_process_group("gloo", store=store, world_size=1)
    with pytest.raises(ValueError, match="Cannot specify both init_method and store"):
        dist.init_process_group("gloo", store=store, init_method="env://", world_size=1, rank=0)
    assert not dist.is_initialized()
