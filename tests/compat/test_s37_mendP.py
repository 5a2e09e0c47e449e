"""Compared with torch 2.13: bad arguments refused in torch's words where the probe
tools/torch_bad_arguments_trial.py still found chainrule wording them otherwise (torch's Python
functions and methods, whose refusals are Python's or those of the C function they hand their
arguments to), and the calls those refusals must keep taking."""

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def outcome(lib, call):
    """What ``call(lib, x)`` does on a float32 (2, 6) tensor ``x`` of ``lib``: ("ok", its result as a
    list) or (the exception's type name, its message)."""
    x = lib.arange(12, dtype=lib.float32).reshape(2, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.lu's deprecation, stft's missing window: compared elsewhere)
        try:
            result = call(lib, x)
        except Exception as error:  # noqa: BLE001 - any refusal is compared
            return type(error).__name__, str(error)
    if isinstance(result, (tuple, list)):
        return "ok", [item.tolist() if hasattr(item, "tolist") else item for item in result]
    return "ok", result.tolist() if hasattr(result, "tolist") else result


def assert_alike(call) -> None:
    """``call`` raises the same exception type and message on torch and chainrule, or gives the same result."""
    assert outcome(chainrule, call) == outcome(torch, call)


# the functions torch removed in 1.9 keep their Python signatures, which bind (or refuse) first
REMOVED = {
    "eig(x, no_such_keyword=1)": lambda L, x: L.eig(x, no_such_keyword=1),
    "eig(x, x, x)": lambda L, x: L.eig(x, x, x),
    "eig(x, e=1)": lambda L, x: L.eig(x, e=1),
    "symeig(x, no_such_keyword=1)": lambda L, x: L.symeig(x, no_such_keyword=1),
    "symeig(x, x, x, x)": lambda L, x: L.symeig(x, x, x, x),
    "symeig(x, out=1)": lambda L, x: L.symeig(x, out=1),
    "matrix_rank(x, no_such_keyword=1)": lambda L, x: L.matrix_rank(x, no_such_keyword=1),
    "matrix_rank(x, 1, True, x)": lambda L, x: L.matrix_rank(x, 1, True, x),
    "matrix_rank(x, symmetric=True)": lambda L, x: L.matrix_rank(x, symmetric=True),
    "x.eig(no_such_keyword=1)": lambda L, x: x.eig(no_such_keyword=1),
    "x.eig(True, x)": lambda L, x: x.eig(True, x),
    "x.eig(True)": lambda L, x: x.eig(True),
    "x.symeig(x, x)": lambda L, x: x.symeig(x, x),
    "x.symeig(eigenvectors=True)": lambda L, x: x.symeig(eigenvectors=True),
    "x.solve(x, x)": lambda L, x: x.solve(x, x),
    "x.solve(no_such_keyword=1)": lambda L, x: x.solve(no_such_keyword=1),
    "x.solve(x)": lambda L, x: x.solve(x),
    "x.lstsq()": lambda L, x: x.lstsq(),
    "x.lstsq(other=x)": lambda L, x: x.lstsq(other=x),
}


@pytest.mark.parametrize("case", REMOVED)
def test_removed_functions_bind_torchs_python_signatures_first(case):
    assert_alike(REMOVED[case])


def test_removed_functions_are_named_as_torchs():
    assert chainrule.eig.__name__ == torch.eig.__name__ == "eig"
    assert chainrule.symeig.__name__ == torch.symeig.__name__ == "_symeig"
    assert chainrule.matrix_rank.__name__ == torch.matrix_rank.__name__
    for name in ("eig", "symeig", "solve", "lstsq"):
        assert getattr(chainrule.Tensor, name).__qualname__ == getattr(torch.Tensor, name).__qualname__


# torch.lu and Tensor.lu hand their tensor on positionally and their flags by keyword to _lu_with_info
LU = {
    "lu('a')": lambda L, x: L.lu("a"),
    "lu(None)": lambda L, x: L.lu(None),
    "lu(x, 1.5)": lambda L, x: L.lu(x, 1.5),
    "lu(x, [0, 1])": lambda L, x: L.lu(x, [0, 1]),
    "lu(x, pivot=None)": lambda L, x: L.lu(x, pivot=None),
    "x.lu('a')": lambda L, x: x.lu("a"),
    "x.lu(None)": lambda L, x: x.lu(None),
    "x.lu(True, True, x)": lambda L, x: x.lu(True, True, x),
    "x.lu(out=x)": lambda L, x: x.lu(out=x),
    "x.lu(get_infos=1)": lambda L, x: x.lu(get_infos=1)[0].shape,
    "x[:, :2].lu()": lambda L, x: x[:, :2].lu(),
    "x[:, :2].lu(get_infos=True)": lambda L, x: x[:, :2].lu(get_infos=True),
    "lu(x[:, :2], True, True)": lambda L, x: L.lu(x[:, :2], True, True),
}


@pytest.mark.parametrize("case", LU)
def test_lu_refuses_in_lu_with_infos_words(case):
    assert_alike(LU[case])


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_lu_warns_only_once_its_arguments_are_taken(lib):
    lib.set_warn_always(True)  # (torch's TORCH_WARN_ONCE, on every call)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(TypeError, match="_lu_with_info"):
                lib.lu(lib.eye(2), 1.5)
            lib.lu(lib.eye(2))
    finally:
        lib.set_warn_always(False)
    assert [str(w.message).startswith("torch.lu is deprecated") for w in caught] == [True]


RRELU = {
    "rrelu(x, 1.5)": lambda L, x: L.rrelu(x, 1.5),
    "rrelu_(x, 1.5)": lambda L, x: L.rrelu_(x.clone(), 1.5),
    "F.rrelu(x, 0.5, 0.1, training=True)": lambda L, x: L.nn.functional.rrelu(x, 0.5, 0.1, training=True),
    "RReLU(0.5, 0.1)(x)": lambda L, x: L.nn.RReLU(0.5, 0.1)(x),
    "F.rrelu(x, inf)": lambda L, x: L.nn.functional.rrelu(x, float("inf")),
    "F.rrelu(x, 0.5, 0.5)": lambda L, x: L.nn.functional.rrelu(x, 0.5, 0.5),
}


@pytest.mark.parametrize("case", RRELU)
def test_rrelu_bounds_refused_in_torchs_words(case):
    assert_alike(RRELU[case])


# torch.stft (Python) pads by n_fft // 2 first, then hands everything but center and pad_mode to
# _VF.stft; Tensor.stft calls torch.stft, Tensor.istft calls torch.istft, positionally
STFT = {
    "stft(x, 1.5)": lambda L, x: L.stft(x, 1.5),
    "stft(x, [0, 1])": lambda L, x: L.stft(x, [0, 1]),
    "stft(x, None)": lambda L, x: L.stft(x, None),
    "stft(x, 4, 1.5, return_complex=True)": lambda L, x: L.stft(x, 4, 1.5, return_complex=True),
    "stft(x, 1.5, center=False)": lambda L, x: L.stft(x, 1.5, center=False),
    "stft(x, 4, center=False, return_complex='a')": lambda L, x: L.stft(x, 4, center=False, return_complex="a"),
    "stft(x, 4, window='a', return_complex=True)": lambda L, x: L.stft(x, 4, window="a", return_complex=True),
    "stft(x, 4)": lambda L, x: L.stft(x, 4),
    "x.stft('a')": lambda L, x: x.stft("a"),
    "x.stft(None)": lambda L, x: x.stft(None),
    "x.stft(1.5)": lambda L, x: x.stft(1.5),
    "x.stft(4, hop_length=2.0, return_complex=True)": lambda L, x: x.stft(4, hop_length=2.0, return_complex=True),
    "x.stft(4, 2, return_complex=True)": lambda L, x: x.stft(4, 2, return_complex=True).abs(),
    "x.istft('a')": lambda L, x: x.istft("a"),
    "x.istft(1.5)": lambda L, x: x.istft(1.5),
    "x.istft(None)": lambda L, x: x.istft(None),
    "x.istft(4, 'a')": lambda L, x: x.istft(4, "a"),
    "x.istft(4, length=[1])": lambda L, x: x.istft(4, length=[1]),
    "x.istft(4)": lambda L, x: x.istft(4),
    "x.istft(no_such_keyword=1)": lambda L, x: x.istft(no_such_keyword=1),
    "x.istft(*[x] * 9)": lambda L, x: x.istft(*[x] * 9),
}


@pytest.mark.parametrize("case", STFT)
def test_stft_and_istft_refuse_as_torchs_python_and_parser(case):
    assert_alike(STFT[case])


def test_istft_method_inverts_stft_as_torchs():
    signal = [float(v) for v in range(16)]
    results = []
    for lib in (chainrule, torch):
        x = lib.tensor(signal, dtype=lib.float64)
        window = lib.hann_window(8, dtype=lib.float64)
        spectrum = x.stft(8, 2, window=window, return_complex=True)
        results.append(spectrum.istft(8, 2, window=window, length=16).tolist())
    assert results[0] == pytest.approx(results[1], abs=1e-12)


# Tensor.unflatten is torch's Python method (no NumPy names; TensorBase.unflatten's positions);
# Tensor.stride its C method, of one signature
UNFLATTEN_AND_STRIDE = {
    "x.unflatten('a')": lambda L, x: x.unflatten("a"),
    "x.unflatten(no_such_keyword=1)": lambda L, x: x.unflatten(no_such_keyword=1),
    "x.unflatten(*[x] * 9)": lambda L, x: x.unflatten(*[x] * 9),
    "x.unflatten(axis=1, sizes=(3, 2))": lambda L, x: x.unflatten(axis=1, sizes=(3, 2)),
    "unflatten(x, axis=1, sizes=(3, 2))": lambda L, x: L.unflatten(x, axis=1, sizes=(3, 2)),
    "x.unflatten(1, ())": lambda L, x: x.unflatten(1, ()),
    "x.unflatten(1.5, (3, 2))": lambda L, x: x.unflatten(1.5, (3, 2)),
    "x.unflatten(1, 'ab')": lambda L, x: x.unflatten(1, "ab"),
    "x.unflatten(1, (3, 'a'))": lambda L, x: x.unflatten(1, (3, "a")),
    "x.unflatten(dim=1.5, sizes=(3, 2))": lambda L, x: x.unflatten(dim=1.5, sizes=(3, 2)),
    "x.unflatten(1, 6)": lambda L, x: x.unflatten(1, 6),
    "x.unflatten(-1, (3, -1))": lambda L, x: x.unflatten(-1, (3, -1)),
    "x.stride('a')": lambda L, x: x.stride("a"),
    "x.stride(1.5)": lambda L, x: x.stride(1.5),
    "x.stride([0, 1])": lambda L, x: x.stride([0, 1]),
    "x.stride(no_such_keyword=1)": lambda L, x: x.stride(no_such_keyword=1),
    "x.stride(1, 2)": lambda L, x: x.stride(1, 2),
    "x.stride(5)": lambda L, x: x.stride(5),
    "x.stride()": lambda L, x: x.stride(),
    "x.stride(None)": lambda L, x: x.stride(None),
    "x.stride(dim=-1)": lambda L, x: x.stride(dim=-1),
    "x.t().stride(0)": lambda L, x: x.t().stride(0),
}


@pytest.mark.parametrize("case", UNFLATTEN_AND_STRIDE)
def test_unflatten_and_stride_refuse_as_torch(case):
    assert_alike(UNFLATTEN_AND_STRIDE[case])


# what users print, run where chainrule answers ``import torch`` (tests/programs/_alias) and with torch
PRINTED = """
import torch
x = torch.ones(2, 3)
for value in (x.dtype, torch.bfloat16, torch.float8_e4m3fn, torch.Size([2, 3]), x.shape, torch.Size(), torch.strided,
              torch.sparse_coo, torch.channels_last, torch.contiguous_format, torch.finfo(torch.float32),
              torch.iinfo(torch.int8), torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.int32),
              [torch.int64], torch.get_default_dtype(), x.device, torch.max(torch.ones(2, 2), 0)):
    print(str(value))
    print(repr(value))
print(f"{torch.float16}", "{}".format(torch.uint8))
for call in (lambda: torch.ones(2, 2) @ torch.ones(2, 2, dtype=torch.float64),
             lambda: torch.ones(2, dtype=torch.int64).add_(torch.ones(2)),
             lambda: torch.ones(3, dtype=torch.float32).view(torch.float64)):
    try:
        call()
    except Exception as error:
        print(type(error).__name__, error)
"""


def _printed(pythonpath: str) -> str:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": pythonpath}
    done = subprocess.run([sys.executable, "-c", PRINTED], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reprs_print_torchs_names_where_chainrule_answers_import_torch():
    import os

    source = os.path.dirname(os.path.dirname(chainrule.__file__))
    alias = os.path.join(os.path.dirname(os.path.dirname(__file__)), "programs", "_alias")
    theirs = _printed(os.path.dirname(os.path.dirname(torch.__file__)))
    ours = _printed(os.pathsep.join([alias, source]))
    assert "torch.Size([2, 3])" in theirs and "torch.return_types.max(" in theirs
    assert ours == theirs


def test_reprs_name_chainrule_where_it_was_imported_as_itself():
    # (this process holds the real torch: chainrule is not answering ``import torch``)
    assert repr(chainrule.float32) == "chainrule.float32" and str(chainrule.Size([2])) == "chainrule.Size([2])"
    assert repr(chainrule.channels_last) == "chainrule.channels_last" and repr(chainrule.strided) == "chainrule.strided"
    assert repr(chainrule.max(chainrule.ones(2, 2), 0)).startswith("chainrule.return_types.max(")


DEFAULT_DTYPE_AND_LAYOUT = {
    "set_default_dtype(int32)": lambda L, x: L.set_default_dtype(L.int32),
    "set_default_dtype(complex64)": lambda L, x: L.set_default_dtype(L.complex64),
    "set_default_dtype(bool)": lambda L, x: L.set_default_dtype(L.bool),
    "set_default_dtype(float)": lambda L, x: L.set_default_dtype(float),
    "set_default_dtype('float64')": lambda L, x: L.set_default_dtype("float64"),
    "set_default_dtype(None)": lambda L, x: L.set_default_dtype(None),
    "ones(2, layout=float32)": lambda L, x: L.ones(2, layout=L.float32),
    "zeros(2, 3, layout='a')": lambda L, x: L.zeros(2, 3, layout="a"),
    "full((2,), 1.0, layout=1)": lambda L, x: L.full((2,), 1.0, layout=1),
    "x.new_zeros(2, layout=float32)": lambda L, x: x.new_zeros(2, layout=L.float32),
    "arange(3, layout=float32)": lambda L, x: L.arange(3, layout=L.float32),
    "eye(2, layout=float32)": lambda L, x: L.eye(2, layout=L.float32),
    "empty(2, layout=None)": lambda L, x: L.empty(2, layout=None).shape,
    "randn(2, layout=strided)": lambda L, x: L.randn(2, layout=L.strided).shape,
}


@pytest.mark.parametrize("case", DEFAULT_DTYPE_AND_LAYOUT)
def test_default_dtype_and_layout_refused_in_torchs_words(case):
    try:
        assert_alike(DEFAULT_DTYPE_AND_LAYOUT[case])
    finally:
        chainrule.set_default_dtype(chainrule.float32)
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("name", ["float64", "float16", "bfloat16"])
def test_set_default_dtype_still_takes_each_floating_dtype(name):
    try:
        chainrule.set_default_dtype(getattr(chainrule, name))
        assert chainrule.tensor([1.5]).dtype is getattr(chainrule, name)
    finally:
        chainrule.set_default_dtype(chainrule.float32)


# one kernel's words for two functions, torch's braces and missing comma, infer_scalar_type's RuntimeError
MESSAGES = {
    "nanquantile(x, 1.5)": lambda L, x: L.nanquantile(x, 1.5),
    "x.nanquantile(-0.5)": lambda L, x: x.nanquantile(-0.5),
    "nanquantile(x, [[0.5]] tensor)": lambda L, x: L.nanquantile(x, L.tensor([[0.5]])),
    "nanquantile(x, [1.5] tensor)": lambda L, x: L.nanquantile(x, L.tensor([1.5])),
    "nanquantile(x, 0.5, interpolation='a')": lambda L, x: L.nanquantile(x, 0.5, interpolation="a"),
    "nanquantile(x, float64 q)": lambda L, x: L.nanquantile(x, L.tensor(0.5, dtype=L.float64)),
    "nanquantile(int64, 0.5)": lambda L, x: L.nanquantile(L.ones(2, dtype=L.int64), 0.5),
    "nanquantile(empty, 0.5)": lambda L, x: L.nanquantile(L.ones(0), 0.5),
    "nanquantile(x, 'a')": lambda L, x: L.nanquantile(x, "a"),
    "quantile(x, 1.5)": lambda L, x: L.quantile(x, 1.5),
    "nanquantile(x, 0.25, dim=1)": lambda L, x: L.nanquantile(x, 0.25, dim=1),
    "x.sum_to_size([0, 1])": lambda L, x: x.sum_to_size([0, 1]),
    "x.sum_to_size(2, 4)": lambda L, x: x.sum_to_size(2, 4),
    "x.sum_to_size(1, 6)": lambda L, x: x.sum_to_size(1, 6),
    "rms_norm(x, [0, 1])": lambda L, x: L.rms_norm(x, [0, 1]),
    "F.rms_norm(x, [4])": lambda L, x: L.nn.functional.rms_norm(x, [4]),
    "F.layer_norm(x, [4])": lambda L, x: L.nn.functional.layer_norm(x, [4]),
    "F.rms_norm(x, [6])": lambda L, x: L.nn.functional.rms_norm(x, [6], eps=1e-6).sum().item() == 0,
    "tensor(None)": lambda L, x: L.tensor(None),
    "as_tensor(None)": lambda L, x: L.as_tensor(None),
    "asarray(None)": lambda L, x: L.asarray(None),
    "tensor([1, None])": lambda L, x: L.tensor([1, None]),
    "tensor([[1], [None]])": lambda L, x: L.tensor([[1], [None]]),
    "tensor(object())": lambda L, x: L.tensor(object()),
    "as_tensor([1, object()])": lambda L, x: L.as_tensor([1, object()]),
    "tensor('a')": lambda L, x: L.tensor("a"),
    "tensor(b'a')": lambda L, x: L.tensor(b"a"),
    "tensor([1, 'a'])": lambda L, x: L.tensor([1, "a"]),
}


@pytest.mark.parametrize("case", MESSAGES)
def test_messages_in_torchs_words(case):
    assert_alike(MESSAGES[case])


# a Device argument is a device, its string or an index to torch's parser, which reads the string first
DEVICES = {
    "x.xpu(1.5)": lambda L, x: x.xpu(1.5),
    "x.xpu('a')": lambda L, x: x.xpu("a"),
    "x.xpu([0, 1])": lambda L, x: x.xpu([0, 1]),
    "x.xpu(*[x] * 9)": lambda L, x: x.xpu(*[x] * 9),
    "x.xpu(no_such_keyword=1)": lambda L, x: x.xpu(no_such_keyword=1),
    "x.xpu(None, 1)": lambda L, x: x.xpu(None, 1),
    "x.xpu()": lambda L, x: x.xpu(),
    "x.is_pinned('a')": lambda L, x: x.is_pinned("a"),
    "x.is_pinned(1.5)": lambda L, x: x.is_pinned(1.5),
    "x.is_pinned([0, 1])": lambda L, x: x.is_pinned([0, 1]),
    "x.is_pinned(True)": lambda L, x: x.is_pinned(True),
    "x.is_pinned(x)": lambda L, x: x.is_pinned(x),
    "x.is_pinned('cuda')": lambda L, x: x.is_pinned("cuda"),
    "x.is_pinned()": lambda L, x: x.is_pinned(),
    "ones(2, device=True)": lambda L, x: L.ones(2, device=True),
    "ones(2, device=[0])": lambda L, x: L.ones(2, device=[0]),
    "ones(2, device='a')": lambda L, x: L.ones(2, device="a"),
    "ones(2, device='cpu')": lambda L, x: L.ones(2, device="cpu"),
    "zeros(2, device=device('cpu'))": lambda L, x: L.zeros(2, device=L.device("cpu")),
    "empty(2, device=1.5)": lambda L, x: L.empty(2, device=1.5),
    "arange(3, device=[0])": lambda L, x: L.arange(3, device=[0]),
}


@pytest.mark.parametrize("case", DEVICES)
def test_device_arguments_refused_in_torchs_words(case):
    assert_alike(DEVICES[case])
