"""Checkpoints crossing between chainrule and PyTorch, as users move them: ``chainrule.save`` read by
real ``torch.load`` (weights_only=True, its default) and ``torch.save`` read by ``chainrule.load``,
over a table of objects each built by the same code on both libraries; whole training states
(model + optimizer) resumed on the other side; safetensors files both ways through the real
``safetensors`` package. Tensors are compared bit for bit, with dtype, shape, strides and which
tensors share a storage."""

import io
import pickle
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import chainrule
from chainrule._torch_zip import _root

torch = pytest.importorskip("torch")

DTYPES = ["float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool",
          "complex64", "complex128", "uint16", "uint32", "uint64"]


def _values(lib, name):
    """A 2 x 3 tensor of ``name`` with the dtype's edge values (signed zero, inf, nan, extremes)."""
    dtype = getattr(lib, name)
    if name == "bool":
        return lib.tensor([[True, False, True], [False, False, True]])
    if name.startswith("complex"):
        return lib.tensor([[1 + 2j, -0.0 - 1j, float("inf") + 0j], [0.5j, -3.25 + 0j, float("nan") * 1j]],
                          dtype=dtype)
    if name.startswith(("float", "bfloat")):
        return lib.tensor([[0.5, -0.0, float("inf")], [-float("inf"), float("nan"), -3.25]], dtype=dtype)
    info = np.iinfo(name)
    return lib.tensor([[info.min, info.max, 0], [1, 7, info.max - 1]], dtype=dtype)


def _every_dtype(lib):
    return {name: _values(lib, name) for name in DTYPES}


def _zero_d_and_empty(lib):
    return {"scalar": lib.tensor(3.5), "int scalar": lib.tensor(-7), "bool scalar": lib.tensor(True),
            "empty": lib.zeros(0), "empty 3-d": lib.zeros(2, 0, 3, dtype=lib.int64), "ones 1-d": lib.ones(1)}


def _views(lib):
    """Views of one storage stay views of one storage in the file, with torch's offsets and strides."""
    base = lib.arange(24, dtype=lib.float32).reshape(4, 6)
    return OrderedDict([("base", base), ("transposed", base.t()), ("row", base[1]), ("strided", base[:, 1::2]),
                        ("narrowed", base.narrow(0, 1, 2)), ("expanded", base[2:3].expand(3, 6)),
                        ("alone", lib.arange(10, dtype=lib.int32)[2:7:2]), ("detached", base.detach())])


def _containers(lib):
    t = lib.arange(4, dtype=lib.float64)
    inner = OrderedDict([("z", t * 2), ("a", [t, (1, 2.5)])])
    return {"list": [t, 1, 2.5, None, "text", True, b"bytes"], "tuple": (t[:2], (lib.ones(2, dtype=lib.int16),)),
            "ordered": inner, "int keys": {0: t, 5: {"step": 3}}, "deep": {"a": {"b": {"c": [[t[1:]]]}}},
            "set": {1, 2}, "dtype": lib.bfloat16, "size": lib.Size([2, 3]), "device": lib.device("cpu"),
            "big int": 2**70, "float": float("nan"), "complex": 1 - 2j}


def _state_dict_with_metadata(lib):
    state = OrderedDict([("weight", lib.ones(2, 3)), ("bias", lib.zeros(2))])
    state._metadata = OrderedDict([("", {"version": 1}), ("sub", {"version": 2})])
    return state


def _parameters(lib):
    return {"param": lib.nn.Parameter(lib.arange(3, dtype=lib.float32)),
            "frozen": lib.nn.Parameter(lib.ones(2, 2), requires_grad=False),
            "leaf requiring grad": lib.ones(3, requires_grad=True)}


OBJECTS = {"every dtype": _every_dtype, "0-d and empty": _zero_d_and_empty, "views": _views,
           "containers": _containers, "state dict metadata": _state_dict_with_metadata, "parameters": _parameters}


# ------------------------------------------------------------------------ comparing across libraries
def _is_torch(value) -> bool:
    return isinstance(value, torch.Tensor)


def _bits(t) -> np.ndarray:
    """The tensor's elements as raw bits in C order (bfloat16 as uint16), from either library."""
    if _is_torch(t):
        t = t.detach()
        if t.dtype == torch.bfloat16:
            return t.contiguous().view(torch.int16).numpy().view(np.uint16)
        if t.dtype in (torch.uint16, torch.uint32, torch.uint64):
            wide = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}[t.dtype]
            return t.contiguous().view(wide).numpy().view(str(t.dtype).replace("torch.", ""))
        return np.ascontiguousarray(t.numpy())
    array = t._data
    if array.dtype.name == "bfloat16":
        array = array.view(np.uint16)
    return np.ascontiguousarray(array)


def _dtype_name(dtype) -> str:
    return str(dtype).split(".")[-1]


def assert_same(got, want, where="object", tensors=None):
    """``got`` equals ``want`` (either from torch or chainrule): types by name, tensors bit for bit with
    dtype, shape, stride, requires_grad and Parameter-ness. Tensors are collected into ``tensors``."""
    if isinstance(want, (torch.Tensor, chainrule.Tensor)):
        assert isinstance(got, (torch.Tensor, chainrule.Tensor)), f"{where}: {type(got)}"
        assert type(got).__name__ == type(want).__name__, f"{where}: {type(got)} vs {type(want)}"
        assert _dtype_name(got.dtype) == _dtype_name(want.dtype), f"{where}: {got.dtype} vs {want.dtype}"
        assert tuple(got.shape) == tuple(want.shape), f"{where}: {got.shape} vs {want.shape}"
        if want.numel():  # chainrule's stride() of an empty tensor is NumPy's, not torch's (3, 3, 1) for (2, 0, 3)
            assert tuple(got.stride()) == tuple(want.stride()), f"{where}: strides {got.stride()} vs {want.stride()}"
        assert got.requires_grad == want.requires_grad, where
        a, b = _bits(got), _bits(want)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"{where}: {a} vs {b}"
        if tensors is not None:
            tensors.append((where, got, want))
        return
    if isinstance(want, float) and want != want:
        assert isinstance(got, float) and got != got, where
        return
    if isinstance(want, (chainrule.dtype, torch.dtype, chainrule.device, torch.device)):
        assert isinstance(got, (chainrule.dtype, torch.dtype, chainrule.device, torch.device)), where
        assert str(got).split(".")[-1] == str(want).split(".")[-1], f"{where}: {got} vs {want}"
        return
    assert type(got).__name__ == type(want).__name__, f"{where}: {type(got)} vs {type(want)}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} vs {list(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]", tensors)
        if hasattr(want, "_metadata"):
            assert got._metadata == want._metadata, where
    elif isinstance(want, (list, tuple)) and type(want).__name__ != "Size":
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]", tensors)
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


def _shares(t, u) -> bool:
    """One storage: torch's untyped storage; for chainrule the NumPy array that owns both."""
    if _is_torch(t):
        return t.untyped_storage().data_ptr() == u.untyped_storage().data_ptr()
    return _root(t._data) is _root(u._data)


def assert_same_sharing(tensors):
    """Two loaded tensors share a storage exactly when the two reference tensors do."""
    for i, (where, got, want) in enumerate(tensors):
        for where2, got2, want2 in tensors[i + 1:]:
            if want.numel() and want2.numel():
                assert _shares(got, got2) == _shares(want, want2), f"{where} and {where2}"


# ------------------------------------------------------------------------ chainrule -> torch -> chainrule
@pytest.mark.parametrize("build", OBJECTS.values(), ids=OBJECTS.keys())
@pytest.mark.parametrize("target", ["path", "BytesIO"])
def test_chainrule_saves_and_torch_loads_with_weights_only(tmp_path, build, target):
    ours, theirs = build(chainrule), build(torch)
    if target == "path":
        chainrule.save(ours, tmp_path / "ours.pt")
        got = torch.load(tmp_path / "ours.pt")  # weights_only=True: torch's default
    else:
        buffer = io.BytesIO()
        chainrule.save(ours, buffer)
        buffer.seek(0)
        got = torch.load(buffer, weights_only=True)
    tensors = []
    assert_same(got, theirs, tensors=tensors)
    assert_same_sharing(tensors)
    if target == "path":  # torch's memory-mapped loading needs its 64-byte record alignment
        assert_same(torch.load(tmp_path / "ours.pt", mmap=True), theirs)


@pytest.mark.parametrize("build", OBJECTS.values(), ids=OBJECTS.keys())
def test_torch_saves_and_chainrule_loads(tmp_path, build):
    ours, theirs = build(chainrule), build(torch)
    torch.save(theirs, tmp_path / "theirs.pt")
    loaded, reference = [], []
    assert_same(chainrule.load(tmp_path / "theirs.pt"), ours, tensors=loaded)
    assert_same(theirs, ours, tensors=reference)  # torch's own tensors, in the same order
    assert_same_sharing([(where, got, want) for (where, got, _), (_, want, _) in zip(loaded, reference)])


@pytest.mark.parametrize("build", OBJECTS.values(), ids=OBJECTS.keys())
def test_chainrule_to_torch_to_chainrule_round_trip(tmp_path, build):
    ours = build(chainrule)
    chainrule.save(ours, tmp_path / "a.pt")
    torch.save(torch.load(tmp_path / "a.pt"), tmp_path / "b.pt")
    tensors = []
    assert_same(chainrule.load(tmp_path / "b.pt"), ours, tensors=tensors)


def _legacy_objects(lib):
    """What torch's legacy format holds and torch reads back: not uint16/32/64 (torch 2.13 writes them
    there but its own loader fails on them), so chainrule refuses to write them there."""
    objects = {name: build(lib) for name, build in OBJECTS.items()}
    for name in ("uint16", "uint32", "uint64"):
        del objects["every dtype"][name]
    return objects


def test_legacy_format_both_ways(tmp_path):
    """_use_new_zipfile_serialization=False: torch's pre-1.6 format, written and read on both sides."""
    ours, theirs = _legacy_objects(chainrule), _legacy_objects(torch)
    chainrule.save(ours, tmp_path / "ours.pt", _use_new_zipfile_serialization=False)
    torch.save(theirs, tmp_path / "theirs.pt", _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(tmp_path / "ours.pt")
    tensors = []
    assert_same(torch.load(tmp_path / "ours.pt"), theirs, tensors=tensors)  # weights_only=True
    assert_same_sharing(tensors)
    loaded, reference = [], []
    assert_same(chainrule.load(tmp_path / "theirs.pt"), ours, tensors=loaded)
    assert_same(theirs, ours, tensors=reference)
    assert_same_sharing([(where, got, want) for (where, got, _), (_, want, _) in zip(loaded, reference)])
    assert_same(chainrule.load(tmp_path / "ours.pt"), ours)


def test_legacy_format_refuses_what_torch_cannot_read_back(tmp_path):
    with pytest.raises(pickle.PicklingError, match="legacy format.*can't hold a uint16 tensor"):
        chainrule.save({"u": chainrule.tensor([1], dtype=chainrule.uint16)}, tmp_path / "u.pt",
                       _use_new_zipfile_serialization=False)
    assert not (tmp_path / "u.pt").exists()


def test_files_have_torch_layout(tmp_path):
    chainrule.save({"w": chainrule.ones(3)}, tmp_path / "model.pt")
    archive = zipfile.ZipFile(tmp_path / "model.pt")
    assert archive.namelist() == ["model/data.pkl", "model/.format_version", "model/.storage_alignment",
                                  "model/byteorder", "model/data/0", "model/version",
                                  "model/.data/serialization_id"]  # torch's writer adds it on closing
    for info in archive.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
    info = archive.getinfo("model/data/0")
    data = open(tmp_path / "model.pt", "rb").read()
    name_length, extra_length = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    assert (info.header_offset + 30 + name_length + extra_length) % 64 == 0, "records aligned as torch's"
    pickled = archive.read("model/data.pkl")
    assert b"chainrule" not in pickled, "the pickle names torch's globals only"


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_protocols_load_as_torch_files_of_that_protocol_do(tmp_path, protocol):
    chainrule.save({"w": chainrule.arange(3.0), "n": 1}, tmp_path / "p.pt", pickle_protocol=protocol)
    # torch's weights-only unpickler has no FRAME opcode (protocol 4+): such files need weights_only=False on
    # both libraries, which refuse them alike otherwise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # both: "Detected pickle protocol 4 in the checkpoint"
        assert chainrule.load(tmp_path / "p.pt", weights_only=protocol < 4)["n"] == 1
        got = torch.load(tmp_path / "p.pt", weights_only=protocol < 4)
        if protocol >= 4:
            for lib in (chainrule, torch):
                with pytest.raises(pickle.UnpicklingError, match="(?s)Weights only load failed.*Unsupported operand 149"):
                    lib.load(tmp_path / "p.pt")
    assert got["n"] == 1 and torch.equal(got["w"], torch.arange(3.0))


class _Unseekable(io.RawIOBase):
    """A write-only stream (a pipe, a socket): zipfile writes data descriptors after each record."""

    def __init__(self) -> None:
        self.chunks = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def test_a_stream_that_cannot_seek_gets_a_file_torch_reads():
    stream = _Unseekable()
    chainrule.save({"w": chainrule.arange(4.0), "n": 2}, stream)
    data = b"".join(stream.chunks)
    got = torch.load(io.BytesIO(data))
    assert got["n"] == 2 and torch.equal(got["w"], torch.arange(4.0))
    assert chainrule.load(io.BytesIO(data))["n"] == 2


def test_bad_save_arguments_raise_before_writing(tmp_path):
    with pytest.raises(ValueError, match="pickle_protocol"):
        chainrule.save({}, tmp_path / "x.pt", pickle_protocol=1)
    with pytest.raises(ValueError, match="pickle_module"):
        chainrule.save({}, tmp_path / "x.pt", pickle_module=object())
    assert not (tmp_path / "x.pt").exists()
    for lib in (chainrule, torch):  # torch's error for a missing folder
        with pytest.raises(RuntimeError, match="Parent directory .*missing does not exist"):
            lib.save({}, tmp_path / "missing" / "x.pt")
    with pytest.raises(IsADirectoryError):
        chainrule.save({}, tmp_path)


def test_cuda_tensors_keep_their_location_for_torch(tmp_path):
    """A tensor saved from 'cuda' (the stand-in here) is recorded as torch records it, so torch.load on a
    CPU-only machine says what torch says, and map_location='cpu' brings the values."""
    from chainrule._backend import use_standin_cuda

    with use_standin_cuda():
        chainrule.save({"w": chainrule.arange(3.0, device="cuda")}, tmp_path / "gpu.pt")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device"):
            torch.load(tmp_path / "gpu.pt")
    assert torch.equal(torch.load(tmp_path / "gpu.pt", map_location="cpu")["w"], torch.arange(3.0))


# ------------------------------------------------------------------------ whole training states
def _model(lib):
    lib.manual_seed(0)
    # (no BatchNorm right after a Linear: that bias's gradient is rounding noise, which Adam scales up to lr)
    model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.ReLU(), lib.nn.BatchNorm1d(8), lib.nn.Linear(8, 3))
    with lib.no_grad():  # the same weights on both sides, whatever each library's initialiser draws
        for i, p in enumerate(model.parameters()):
            p.copy_(lib.linspace(-0.5, 0.5, p.numel()).reshape(p.shape) * (i + 1))
    return model


def _batch(lib):
    x = lib.linspace(-2, 2, 24).reshape(6, 4)
    return x, lib.tensor([0, 1, 2, 0, 1, 2])


def _train(lib, model, optimizer, steps):
    x, y = _batch(lib)
    for _ in range(steps):
        optimizer.zero_grad()
        lib.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("direction", ["chainrule to torch", "torch to chainrule"])
@pytest.mark.parametrize("optimizer", ["Adam", "SGD"])
def test_training_resumes_on_the_other_library(tmp_path, direction, optimizer):
    """Train two steps on one side, save model + optimizer with its save, resume on the other side
    with its load and load_state_dict, train two more: the same weights as four steps on one side."""
    first, second = (chainrule, torch) if direction == "chainrule to torch" else (torch, chainrule)
    options = {"lr": 0.05, "momentum": 0.9} if optimizer == "SGD" else {"lr": 0.01}

    def setup(lib):
        model = _model(lib)
        return model, getattr(lib.optim, optimizer)(model.parameters(), **options)

    model, opt = setup(first)
    _train(first, model, opt, 2)
    first.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, tmp_path / "ckpt.pt")
    checkpoint = second.load(tmp_path / "ckpt.pt")  # weights_only=True on both sides
    assert checkpoint["epoch"] == 2
    resumed, resumed_opt = setup(second)
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    _train(second, resumed, resumed_opt, 2)

    reference, reference_opt = setup(second)
    _train(second, reference, reference_opt, 4)
    for (name, got), want in zip(resumed.state_dict().items(), reference.state_dict().values()):
        got, want = _bits(got).astype(np.float64), _bits(want).astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)


# ------------------------------------------------------------------------ whole-module pickles
def test_a_chainrule_module_pickle_is_refused_by_torch_with_its_class_named(tmp_path):
    """torch.save(model) pickles the model's class; torch can't rebuild chainrule's classes with
    weights_only=True and says which global it refused: move weights with state_dict()."""
    chainrule.save(_model(chainrule), tmp_path / "model.pt")
    with pytest.raises(pickle.UnpicklingError, match="chainrule.nn.modules.container.Sequential"):
        torch.load(tmp_path / "model.pt")
    # trusted, torch imports chainrule's classes but hands them its own tensors: refused by name
    with pytest.raises(TypeError, match=r"chainrule.nn.modules.linear.Linear is a chainrule module, but its "
                                        r"parameters were rebuilt as torch.nn.parameter.Parameter.*state_dict"):
        torch.load(tmp_path / "model.pt", weights_only=False)
    model = chainrule.load(tmp_path / "model.pt", weights_only=False)  # chainrule itself rebuilds it
    with chainrule.serialization.safe_globals([chainrule.nn.Sequential, chainrule.nn.Linear, chainrule.nn.ReLU,
                                               chainrule.nn.BatchNorm1d]):
        assert type(chainrule.load(tmp_path / "model.pt")) is chainrule.nn.Sequential  # classes the user allowed
    x, _ = _batch(chainrule)
    model.eval()
    twin = _model(chainrule).eval()
    np.testing.assert_array_equal(model(x).detach().numpy(), twin(x).detach().numpy())


def test_a_torch_module_pickle_names_the_class_and_the_fix(tmp_path):
    torch.save(_model(torch), tmp_path / "model.pt")
    with pytest.raises(pickle.UnpicklingError, match="(?s)Weights only load failed.*torch.nn.modules.container"):
        chainrule.load(tmp_path / "model.pt")
    with pytest.raises(RuntimeError, match="torch.nn.modules.container.Sequential.*state_dict"):
        chainrule.load(tmp_path / "model.pt", weights_only=False)


# ------------------------------------------------------------------------ safetensors both ways
SAFETENSORS_DTYPES = [name for name in DTYPES if name != "complex128"]  # safetensors has no C128


def test_chainrule_safetensors_files_load_in_the_safetensors_package(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")  # the "checkpoint" extra
    ours = {name: _values(chainrule, name) for name in SAFETENSORS_DTYPES}
    ours["transposed"] = chainrule.arange(6.0).reshape(2, 3).t()
    ours["empty"] = chainrule.zeros(0, 2)
    ours["scalar"] = chainrule.tensor(2.5)
    chainrule.save(ours, tmp_path / "ours.safetensors")
    got = safetensors_torch.load_file(tmp_path / "ours.safetensors")
    want = {name: _values(torch, name) for name in SAFETENSORS_DTYPES}
    want.update(transposed=torch.arange(6.0).reshape(2, 3).t().contiguous(), empty=torch.zeros(0, 2),
                scalar=torch.tensor(2.5))
    assert sorted(got) == sorted(want)
    for name in want:
        assert_same(got[name], want[name], name)


def test_safetensors_package_files_load_in_chainrule(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    theirs = {name: _values(torch, name) for name in SAFETENSORS_DTYPES}
    safetensors_torch.save_file(theirs, tmp_path / "theirs.safetensors", metadata={"format": "pt"})
    got = chainrule.load(tmp_path / "theirs.safetensors")
    assert sorted(got) == sorted(theirs)
    for name in theirs:
        assert_same(got[name], _values(chainrule, name), name)
