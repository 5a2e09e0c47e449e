"""A mutation fuzzer for ``chainrule.load``: mutated valid checkpoints either load or raise the
documented error, and never crash, hang or allocate beyond a bound of the file's size.

Seeds: a chainrule safetensors checkpoint, a PyTorch zip checkpoint and one in torch's legacy
format (both written by chainrule.save, which torch.load reads). Mutations: bit flips, interesting
bytes, truncations, splices between files, header edits (safetensors JSON fields), and pickle
edits inside a zip whose CRCs are then recomputed so the unpickler itself is exercised. CI runs
a fixed budget with a fixed seed; ``CHAINRULE_FUZZ=long`` runs 50 times more.
"""

import io
import json
import os
import pickle
import random
import signal
import struct
import tracemalloc
import warnings
import zipfile

import pytest

import chainrule

LONG = os.environ.get("CHAINRULE_FUZZ") == "long"
BUDGET = 1200 * (50 if LONG else 1)  # per seed format; CI total: 3,300 files
MEMORY_SAMPLE = 10  # measure the allocation peak of every 10th file
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, ord("-"), ord("9"), ord("["), ord("{"), ord('"')]


def _state():
    model = chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.ReLU(), chainrule.nn.Linear(4, 2))
    optimizer = chainrule.optim.Adam(model.parameters())
    model(chainrule.ones(2, 3)).sum().backward()
    optimizer.step()
    return {"epoch": 3, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "names": ["a", "b"], "ints": chainrule.arange(5), "flags": chainrule.tensor([True, False]),
            "half": chainrule.ones(2, dtype=chainrule.float16)}


def _safetensors_seed() -> bytes:
    from chainrule import _safetensors

    buffer = io.BytesIO()
    _safetensors.write(_state(), buffer)
    return buffer.getvalue()


def _zip_seed() -> bytes:
    from chainrule import _torch_zip

    return _torch_zip.dumps(_state())


def _legacy_seed() -> bytes:
    buffer = io.BytesIO()
    chainrule.save(_state(), buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def _rezip(data: bytes, edit) -> bytes:
    """The archive with its data.pkl replaced by ``edit(data.pkl)`` and valid CRCs."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            content = source.read(info)
            archive.writestr(info.filename, edit(content) if info.filename.endswith("data.pkl") else content)
    return out.getvalue()


def _mutate_bytes(rng: random.Random, data: bytes, other: bytes) -> bytes:
    data = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # interesting bytes
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.choice(INTERESTING)
    elif kind == 2:  # truncation
        del data[rng.randrange(len(data)):]
    elif kind == 3:  # splice a chunk of another file in
        start = rng.randrange(len(other))
        chunk = other[start:start + rng.randint(1, 64)]
        at = rng.randrange(len(data))
        data[at:at + (len(chunk) if rng.random() < 0.5 else 0)] = chunk
    else:  # delete or duplicate a chunk
        at, n = rng.randrange(len(data)), rng.randint(1, 64)
        if rng.random() < 0.5:
            del data[at:at + n]
        else:
            data[at:at] = data[at:at + n]
    return bytes(data)


_EDITS = [lambda r: -1, lambda r: 2**63, lambda r: 2**64 + r.randrange(9), lambda r: r.randrange(-5, 100),
          lambda r: 2**32, lambda r: "F32", lambda r: "I64", lambda r: None, lambda r: [], lambda r: {},
          lambda r: [2**31, 2**31, 2**31], lambda r: True, lambda r: 1.5, lambda r: "x" * 50]


def _edit_header(rng: random.Random, data: bytes) -> bytes:
    """A safetensors file with one field of its JSON header (or of the stored structure) replaced."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    metadata = header.get("__metadata__", {})
    structure = json.loads(metadata["chainrule"])
    target = structure if rng.random() < 0.3 else header
    paths = []

    def walk(node, path):
        paths.append(path)
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            walk(child, path + [key])

    walk(target, [])
    path = rng.choice(paths[1:])
    parent = target
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(_EDITS)(rng)
    metadata["chainrule"] = json.dumps(structure)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data[8 + size:]


def _mutate(rng: random.Random, fmt: str, seed: bytes, other: bytes) -> bytes:
    if fmt == "safetensors-header":
        return _edit_header(rng, seed)
    if fmt == "zip-pickle":
        return _rezip(seed, lambda pkl: _mutate_bytes(rng, pkl, other))
    return _mutate_bytes(rng, seed, other)


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def _load_one(data: bytes, measure: bool):
    """("ok" | "error", peak bytes or None) for one file; anything else escapes and fails the test."""
    peak, loaded = None, None
    if measure:
        tracemalloc.start()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)  # a hang detector, not a timing assertion: no load comes near it
    try:
        loaded = chainrule.load(io.BytesIO(data))
        outcome = "ok"
    except RuntimeError as exc:
        assert str(exc).startswith("chainrule.load: "), str(exc)
        assert "\n" not in str(exc) and len(str(exc)) < 1000
        outcome = "error"
    except pickle.UnpicklingError as exc:
        assert str(exc).startswith("Weights only load failed"), str(exc)
        outcome = "refused"
    finally:
        signal.alarm(0)
        if measure:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    return outcome, peak, (loaded if outcome == "ok" else None)


def _same(got, want) -> bool:
    """Equal structure and, for tensors, equal dtype, shape and bytes."""
    if isinstance(want, chainrule.Tensor):
        return (isinstance(got, chainrule.Tensor) and got.dtype == want.dtype and got.shape == want.shape
                and got.numpy().tobytes() == want.numpy().tobytes())
    if isinstance(want, dict):
        return type(got) is type(want) and list(got) == list(want) and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(map(_same, got, want))
    return type(got) is type(want) and got == want


@pytest.mark.parametrize("fmt", ["safetensors-bytes", "safetensors-header", "zip-bytes", "zip-pickle",
                                 "legacy-bytes"])
def test_mutated_checkpoints_load_or_raise_the_documented_error(fmt):
    safetensors, zipped = _safetensors_seed(), _zip_seed()
    seed, other = (safetensors, zipped) if fmt.startswith("safetensors") else (zipped, safetensors)
    if fmt == "legacy-bytes":  # torch's pre-1.6 format: five pickles, then the storages' raw bytes
        seed, other = _legacy_seed(), zipped
    expected = chainrule.load(io.BytesIO(seed))
    assert expected["epoch"] == 3
    rng = random.Random(f"chainrule-fuzz-{fmt}")
    outcomes = {"ok": 0, "error": 0, "refused": 0}
    budget = {"safetensors-header": BUDGET // 2, "zip-pickle": BUDGET // 2, "legacy-bytes": BUDGET // 4}.get(
        fmt, BUDGET // 2 + BUDGET // 4)
    worst = 0
    for i in range(budget):
        data = _mutate(rng, fmt, seed, other)
        outcome, peak, loaded = _load_one(data, measure=i % MEMORY_SAMPLE == 0)
        outcomes[outcome] += 1
        if fmt == "zip-bytes" and outcome == "ok":
            # every byte the loader reads is under a CRC (or is a header field it checks): a file that
            # still loads changed only what does not matter, never the values
            assert _same(loaded, expected), (fmt, i)
        if peak is not None:
            # a file claiming GiBs in a few KiB would blow far past this; the buffer, parsed
            # header and unpickled containers cost a small multiple of the file
            bound = 8 * len(data) + 512 * 1024
            assert peak <= bound, (fmt, i, peak, len(data))
            worst = max(worst, peak - len(data))
    assert outcomes["error"] + outcomes["refused"] > budget // 4, outcomes  # the mutations do bite
    print(f"{fmt}: {budget} files, {outcomes}, worst sampled peak {worst / 1024:.0f} KiB over the file size")


def test_huge_claims_allocate_nothing():
    """Files claiming 2**40-element tensors or 10**12-entry structures, measured."""
    claims = []
    for shape in ([2**40], [2**20, 2**20], [2**62, 4]):
        text = json.dumps({"a": {"dtype": "F64", "shape": shape, "data_offsets": [0, 8]}}).encode()
        claims.append(struct.pack("<Q", len(text)) + text + b"\0" * 8)
    claims.append(_rezip(_zip_seed(), lambda pkl: pkl.replace(b"K\x05\x85", b"J\x00\x00\x00\x40\x85")))
    # BYTEARRAY8 of 2**60 bytes: the pure-Python unpickler would allocate it before reading (weights-only
    # loading refuses the opcode, as torch's; the legacy format's dry run reads it, and is measured below)
    bytearray8 = b"\x80\x05\x96" + struct.pack("<Q", 2**60) + b"ab."
    claims.append(_rezip(_zip_seed(), lambda pkl: bytearray8))
    for data in claims:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 5"
            outcome, peak, _ = _load_one(data, measure=True)
        assert outcome in ("error", "refused") and peak <= 8 * len(data) + 512 * 1024, (outcome, peak)
    from chainrule import _torch_zip

    tracemalloc.start()
    with pytest.raises(pickle.UnpicklingError, match="BYTEARRAY8 claims"):
        _torch_zip._DryRun(_torch_zip._View(bytearray(bytearray8)), len(bytearray8)).load()
    assert tracemalloc.get_traced_memory()[1] <= 512 * 1024
    tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["safetensors", "zip"])
def test_loading_costs_the_file_size_plus_a_constant(fmt):
    """Tensors are views of the one buffer the file is read into: measured, the peak is the
    file's size plus tens of KiB (40 MB files: +12 KiB safetensors, +47 KiB zip)."""
    from chainrule import _safetensors, _torch_zip

    state = {f"layer{i}.weight": chainrule.randn(256, 256) for i in range(16)}  # 4 MiB
    if fmt == "zip":
        data = _torch_zip.dumps(state)
    else:
        buffer = io.BytesIO()
        _safetensors.write(state, buffer)
        data = buffer.getvalue()
    tracemalloc.start()
    loaded = chainrule.load(io.BytesIO(data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(loaded) == 16
    assert peak <= len(data) + 256 * 1024, (peak, len(data))
