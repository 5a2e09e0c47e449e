"""torch.distributed's key-value stores: ``HashStore`` (one process), ``FileStore`` (processes
sharing a file), ``TCPStore`` (a server in the ``is_master`` process, clients over sockets) and
``PrefixStore`` (a namespace inside another store).

Keys are strings; values are bytes (a ``str`` value is stored UTF-8 encoded). ``get`` and
``wait`` block until the keys exist, raising ``DistStoreError`` after the store's timeout;
``add`` keeps a decimal counter, as torch's does, so ``get`` of a counter reads ``b"3"``.
Nothing is ever unpickled: values travel as raw bytes in length-prefixed frames.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import socket
import struct
import threading
import time

from ._errors import DistNetworkError, DistStoreError

__all__ = ["Store", "HashStore", "FileStore", "PrefixStore", "TCPStore"]

# torch's default store timeout (c10d::Store::kDefaultTimeout)
DEFAULT_STORE_TIMEOUT = datetime.timedelta(seconds=300)


def _as_bytes(value, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what}: value must be str or bytes, got {type(value).__name__}")


def _check_key(key, what: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{what}: key must be a str, got {type(key).__name__}")
    return key


def _counter(current: bytes | None, amount: int, key: str) -> bytes:
    try:
        total = (int(current) if current is not None else 0) + int(amount)
    except ValueError:
        raise ValueError(f"add: key {key!r} holds {current!r}, which is not an integer counter") from None
    return str(total).encode()


def _compare_set(current: bytes | None, expected: bytes, desired: bytes) -> tuple[bytes, bool]:
    """torch's compare_set: a missing key is set only when ``expected`` is empty (the result is then
    ``desired``; otherwise ``expected`` comes back); a present key only when it equals ``expected``."""
    if current is None:
        return (desired, True) if expected == b"" else (expected, False)
    return (desired, True) if current == expected else (current, False)


def _milliseconds(timeout: datetime.timedelta) -> int:
    return int(timeout.total_seconds() * 1000)


class Store:
    """The base class of torch's stores: a key-value table shared by the ranks of a job, which
    ``init_process_group`` (in torch) uses to exchange addresses. A subclass implements the
    ``_``-prefixed primitives; everything else is built on them."""

    def __init__(self, timeout: datetime.timedelta = DEFAULT_STORE_TIMEOUT) -> None:
        self._timeout = timeout

    # ---- what a store implements
    def _read(self, keys: list[str]) -> list[bytes | None]:
        raise NotImplementedError(f"{type(self).__name__} does not implement reading keys")

    def _update(self, change):
        """Apply ``change(table_view) -> result`` atomically, where ``table_view`` reads and writes keys."""
        raise NotImplementedError(f"{type(self).__name__} does not implement updating keys")

    def _all_keys(self) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} does not list its keys")

    def _pause(self, seconds: float) -> None:
        time.sleep(min(seconds, 0.01))

    # ---- torch's API
    @property
    def timeout(self) -> datetime.timedelta:
        return self._timeout

    def set_timeout(self, timeout: datetime.timedelta) -> None:
        if not isinstance(timeout, datetime.timedelta):
            raise TypeError(f"set_timeout: timeout must be a datetime.timedelta, got {type(timeout).__name__}")
        self._timeout = timeout

    def set(self, key: str, value) -> None:
        key, value = _check_key(key, "set"), _as_bytes(value, "set")
        self._update(lambda table: table.put(key, value))

    def get(self, key: str) -> bytes:
        self.wait([_check_key(key, "get")])
        return self._read([key])[0]

    def add(self, key: str, amount: int) -> int:
        key = _check_key(key, "add")
        return int(self._update(lambda table: table.put(key, _counter(table.get(key), amount, key))))

    def append(self, key: str, value) -> None:
        key, value = _check_key(key, "append"), _as_bytes(value, "append")
        self._update(lambda table: table.put(key, (table.get(key) or b"") + value))

    def compare_set(self, key: str, expected_value, desired_value) -> bytes:
        key = _check_key(key, "compare_set")
        expected, desired = _as_bytes(expected_value, "compare_set"), _as_bytes(desired_value, "compare_set")

        def change(table):
            result, replace = _compare_set(table.get(key), expected, desired)
            if replace:
                table.put(key, desired)
            return result

        return self._update(change)

    def delete_key(self, key: str) -> bool:
        key = _check_key(key, "delete_key")
        return self._update(lambda table: table.delete(key))

    def check(self, keys: list[str]) -> bool:
        return all(value is not None for value in self._read([_check_key(k, "check") for k in keys]))

    def num_keys(self) -> int:
        return len(self._all_keys())

    def list_keys(self) -> list[str]:
        return sorted(self._all_keys())

    def multi_set(self, keys: list[str], values: list) -> None:
        if len(keys) != len(values):
            raise ValueError(f"multi_set: {len(keys)} keys but {len(values)} values")
        pairs = [(_check_key(k, "multi_set"), _as_bytes(v, "multi_set")) for k, v in zip(keys, values)]

        def change(table):
            for key, value in pairs:
                table.put(key, value)

        self._update(change)

    def multi_get(self, keys: list[str]) -> list[bytes]:
        self.wait(list(keys))
        return self._read(list(keys))

    def wait(self, keys: list[str], timeout: datetime.timedelta | None = None) -> None:
        """Block until every key exists; ``DistStoreError`` after ``timeout`` (the store's by default)."""
        timeout = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout.total_seconds()
        keys = [_check_key(k, "wait") for k in keys]
        while True:
            missing = [k for k, v in zip(keys, self._read(keys)) if v is None]
            if not missing:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise DistStoreError(f"wait timeout after {_milliseconds(timeout)}ms, keys: "
                                     f"{', '.join(missing)}")
            self._pause(left)

    def barrier(self, key: str, world_size: int, timeout: datetime.timedelta | None = None) -> None:
        """Block until ``world_size`` workers have called barrier with ``key`` (``DistStoreError`` after
        ``timeout``, the store's by default). As torch's: each caller counts itself in
        ``<key>/num_members``; the last one sets ``<key>/last_member``, which every caller waits for."""
        key = _check_key(key, "barrier")
        members = self.add(f"{key}/num_members", 1)
        if members == world_size:
            self.set(f"{key}/last_member", str(members))
        self.wait([f"{key}/last_member"], timeout)

    def has_extended_api(self) -> bool:
        return True


class _DictView:
    """What ``Store._update``'s change function sees: reads and writes of one table."""

    def __init__(self, table: dict[str, bytes]) -> None:
        self.table = table

    def get(self, key: str) -> bytes | None:
        return self.table.get(key)

    def put(self, key: str, value: bytes) -> bytes:
        self.table[key] = value
        return value

    def delete(self, key: str) -> bool:
        return self.table.pop(key, None) is not None


class HashStore(Store):
    """An in-process store (a dict behind a lock): threads of one process share it."""

    def __init__(self) -> None:
        super().__init__()
        self._table: dict[str, bytes] = {}
        self._changed = threading.Condition()

    def _read(self, keys):
        with self._changed:
            return [self._table.get(k) for k in keys]

    def _update(self, change):
        with self._changed:
            result = change(_DictView(self._table))
            self._changed.notify_all()
        return result

    def _all_keys(self):
        with self._changed:
            return list(self._table)

    def _pause(self, seconds):
        # a change between the caller's read and this wait is not missed for long: wake often
        with self._changed:
            self._changed.wait(min(seconds, 0.05))


class FileStore(Store):
    """A store in a file that every process of the job opens (a shared filesystem for several
    nodes). Each change appends a record under an exclusive ``flock``; a reader replays the file.
    As in torch, each ``FileStore`` object counts itself in the file, and the last one closed
    (or garbage-collected) removes the file, so a later job starts afresh; that count is a key,
    which ``num_keys`` includes as torch's does."""

    _REFCOUNT_KEY = "cleanup/refcount"

    def __init__(self, file_name: str, world_size: int = -1) -> None:
        super().__init__()
        self.path = os.fspath(file_name)
        self._world_size = world_size
        self._closed = True
        # the file must be creatable now: torch fails in its constructor too
        with open(self.path, "ab"):
            pass
        self._closed = False
        self.add(self._REFCOUNT_KEY, 1)

    def _replay(self, handle) -> dict[str, bytes]:
        handle.seek(0)
        data = handle.read()
        table: dict[str, bytes] = {}
        at = 0
        while at + 9 <= len(data):
            kind, key_length, value_length = struct.unpack_from("<cII", data, at)
            at += 9
            key = data[at:at + key_length].decode()
            at += key_length
            if kind == b"S":
                table[key] = data[at:at + value_length]
            else:
                table.pop(key, None)
            at += value_length
        return table

    def _locked(self, exclusive: bool, work):
        with open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                return work(handle)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, keys):
        table = self._locked(False, self._replay)
        return [table.get(k) for k in keys]

    def _update(self, change):
        def work(handle):
            table = self._replay(handle)
            view = _DictView(table)
            records = []
            original_put, original_delete = view.put, view.delete

            def put(key, value):
                records.append(struct.pack("<cII", b"S", len(key.encode()), len(value)) + key.encode() + value)
                return original_put(key, value)

            def delete(key):
                existed = original_delete(key)
                if existed:
                    records.append(struct.pack("<cII", b"D", len(key.encode()), 0) + key.encode())
                return existed

            view.put, view.delete = put, delete
            result = change(view)
            if records:
                handle.seek(0, os.SEEK_END)
                handle.write(b"".join(records))
                handle.flush()
            return result

        return self._locked(True, work)

    def _all_keys(self):
        return list(self._locked(False, self._replay))

    def delete_key(self, key: str) -> bool:
        # torch's FileStore appends the deletion and answers True whether or not the key existed
        super().delete_key(key)
        return True

    def close(self) -> None:
        """Drop this object's count; the last one removes the file."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.add(self._REFCOUNT_KEY, -1) <= 0:
                os.remove(self.path)
        except OSError:
            pass

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the modules close() needs may be gone
            pass


class PrefixStore(Store):
    """Every key of ``store`` under ``prefix + "/"``: separate namespaces in one store."""

    def __init__(self, prefix: str, store: Store) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"PrefixStore: store must be a torch.distributed.Store, got {type(store).__name__}")
        super().__init__(store.timeout)
        self.prefix = prefix
        self.underlying_store = store

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def set(self, key, value):
        self.underlying_store.set(self._key(_check_key(key, "set")), value)

    def get(self, key):
        return self.underlying_store.get(self._key(_check_key(key, "get")))

    def add(self, key, amount):
        return self.underlying_store.add(self._key(_check_key(key, "add")), amount)

    def append(self, key, value):
        self.underlying_store.append(self._key(_check_key(key, "append")), value)

    def compare_set(self, key, expected_value, desired_value):
        return self.underlying_store.compare_set(self._key(_check_key(key, "compare_set")), expected_value,
                                                 desired_value)

    def delete_key(self, key):
        return self.underlying_store.delete_key(self._key(_check_key(key, "delete_key")))

    def check(self, keys):
        return self.underlying_store.check([self._key(_check_key(k, "check")) for k in keys])

    def wait(self, keys, timeout=None):
        self.underlying_store.wait([self._key(_check_key(k, "wait")) for k in keys], timeout)

    def multi_set(self, keys, values):
        self.underlying_store.multi_set([self._key(_check_key(k, "multi_set")) for k in keys], values)

    def multi_get(self, keys):
        return self.underlying_store.multi_get([self._key(_check_key(k, "multi_get")) for k in keys])

    def num_keys(self):
        # torch counts the underlying store's keys, every prefix included
        return self.underlying_store.num_keys()

    def list_keys(self):
        start = f"{self.prefix}/"
        return [k[len(start):] for k in self.underlying_store.list_keys() if k.startswith(start)]

    @property
    def timeout(self):
        return self.underlying_store.timeout

    def set_timeout(self, timeout):
        self.underlying_store.set_timeout(timeout)


# ------------------------------------------------------------------------------ TCPStore
# a frame: a count of parts, then each part as its length and bytes (all lengths little-endian u32)
def _send_frame(sock: socket.socket, parts: list[bytes]) -> None:
    sock.sendall(struct.pack("<I", len(parts)) + b"".join(struct.pack("<I", len(p)) + p for p in parts))


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError("the TCPStore connection was closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive_frame(sock: socket.socket) -> list[bytes]:
    (count,) = struct.unpack("<I", _receive_exactly(sock, 4))
    parts = []
    for _ in range(count):
        (length,) = struct.unpack("<I", _receive_exactly(sock, 4))
        parts.append(_receive_exactly(sock, length))
    return parts


class _TCPStoreServer:
    """The master's table, served to clients by one thread per connection. ``wait`` requests
    block here (on a condition), so a waiting client costs no polling traffic."""

    def __init__(self, host: str, port: int) -> None:
        self.store = HashStore()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((host, port))
        except OSError as exc:
            self.listener.close()
            raise DistNetworkError(f"The server socket has failed to bind to {host}:{port}: {exc.strerror}") from None
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, name="chainrule-tcpstore-server", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            while True:
                try:
                    request = _receive_frame(connection)
                except (ConnectionError, OSError, struct.error):
                    return
                try:
                    reply = [b"ok"] + self._answer(request)
                except (DistStoreError, ValueError, TypeError) as exc:
                    reply = [b"error", type(exc).__name__.encode(), str(exc).encode()]
                try:
                    _send_frame(connection, reply)
                except OSError:
                    return

    def _answer(self, request: list[bytes]) -> list[bytes]:
        op, args = request[0].decode(), request[1:]
        store = self.store
        # values are bytes, not text: only the key positions are read as keys
        keys = [a.decode("utf-8", "replace") for a in args]
        if op == "set":
            store.set(keys[0], args[1])
            return []
        if op == "read":
            return [b"" if v is None else b"1" + v for v in store._read(keys)]
        if op == "add":
            return [str(store.add(keys[0], int(args[1]))).encode()]
        if op == "append":
            store.append(keys[0], args[1])
            return []
        if op == "compare_set":
            return [store.compare_set(keys[0], args[1], args[2])]
        if op == "delete_key":
            return [b"1" if store.delete_key(keys[0]) else b""]
        if op == "multi_set":
            half = len(args) // 2
            store.multi_set(keys[:half], list(args[half:]))
            return []
        if op == "keys":
            return [k.encode() for k in store._all_keys()]
        if op == "wait":
            milliseconds, names = int(args[0]), keys[1:]
            store.wait(names, datetime.timedelta(milliseconds=milliseconds))
            return []
        raise ValueError(f"TCPStore: unknown request {op!r}")

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone would leave the port bound
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


class TCPStore(Store):
    """torch.distributed.TCPStore: ``is_master=True`` starts the server on ``host_name:port``
    (``port=0`` picks a free one, read back from ``.port``); every instance, the master's too, is
    a client of it over a socket. With ``wait_for_workers`` the master's constructor waits until
    ``world_size`` instances have connected."""

    def __init__(self, host_name: str, port: int, world_size: int | None = None, is_master: bool = False,
                 timeout: datetime.timedelta = DEFAULT_STORE_TIMEOUT, wait_for_workers: bool = True,
                 multi_tenant: bool = False, master_listen_fd: int | None = None, use_libuv: bool = True) -> None:
        super().__init__(timeout)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"TCPStore: port must be an integer in [0, 65535], got {port!r}")
        self.host = host_name
        self.libuvBackend = False  # a Python socket server, not libuv
        self._server = _TCPStoreServer(host_name, port) if is_master else None
        self.port = self._server.port if self._server is not None else port
        self._lock = threading.Lock()  # one request at a time on this instance's socket
        self._socket = self._connect()
        if wait_for_workers and world_size is not None and world_size > 0:
            # as torch's: every instance counts itself under "init/" (a key num_keys sees), and
            # the master's constructor returns once world_size instances have
            self.add(self._INIT_KEY, 1)
            if is_master:
                self._wait_for_workers(world_size)

    def _connect(self) -> socket.socket:
        seconds = self._timeout.total_seconds()
        deadline = time.monotonic() + seconds
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=max(deadline - time.monotonic(), 0.01))
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except OSError:
                if time.monotonic() >= deadline:
                    raise DistNetworkError(f"The client socket has timed out after {_milliseconds(self._timeout)}ms "
                                           f"while trying to connect to ({self.host}, {self.port}).") from None
                time.sleep(0.05)

    _INIT_KEY = "init/"

    def _wait_for_workers(self, world_size: int) -> None:
        deadline = time.monotonic() + self._timeout.total_seconds()
        while int(self.get(self._INIT_KEY)) < world_size:
            if time.monotonic() >= deadline:
                raise DistStoreError(f"Timed out after {_milliseconds(self._timeout)}ms waiting for "
                                     f"{world_size} workers to connect to the TCPStore at {self.host}:{self.port}")
            time.sleep(0.02)

    def _request(self, op: str, *parts: bytes) -> list[bytes]:
        with self._lock:
            try:
                _send_frame(self._socket, [op.encode(), *parts])
                reply = _receive_frame(self._socket)
            except (ConnectionError, OSError) as exc:
                raise DistNetworkError(f"TCPStore: the connection to {self.host}:{self.port} failed: {exc}") from None
        if reply[0] == b"error":
            kind = {"DistStoreError": DistStoreError, "TypeError": TypeError}.get(reply[1].decode(), ValueError)
            raise kind(reply[2].decode())
        return reply[1:]

    def close(self) -> None:
        """Disconnect; the master also stops accepting connections (its port is free again)."""
        self._socket.close()
        if self._server is not None:
            self._server.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - a half-built store, or modules gone at interpreter exit
            pass

    def _read(self, keys):
        return [v[1:] if v else None for v in self._request("read", *(k.encode() for k in keys))]

    def _all_keys(self):
        return [k.decode() for k in self._request("keys")]

    def set(self, key, value):
        self._request("set", _check_key(key, "set").encode(), _as_bytes(value, "set"))

    def add(self, key, amount):
        return int(self._request("add", _check_key(key, "add").encode(), str(int(amount)).encode())[0])

    def append(self, key, value):
        self._request("append", _check_key(key, "append").encode(), _as_bytes(value, "append"))

    def compare_set(self, key, expected_value, desired_value):
        return self._request("compare_set", _check_key(key, "compare_set").encode(),
                             _as_bytes(expected_value, "compare_set"), _as_bytes(desired_value, "compare_set"))[0]

    def delete_key(self, key):
        return self._request("delete_key", _check_key(key, "delete_key").encode())[0] == b"1"

    def multi_set(self, keys, values):
        if len(keys) != len(values):
            raise ValueError(f"multi_set: {len(keys)} keys but {len(values)} values")
        self._request("multi_set", *(_check_key(k, "multi_set").encode() for k in keys),
                      *(_as_bytes(v, "multi_set") for v in values))

    def wait(self, keys, timeout=None):
        timeout = self._timeout if timeout is None else timeout
        self._request("wait", str(_milliseconds(timeout)).encode(), *(_check_key(k, "wait").encode() for k in keys))
