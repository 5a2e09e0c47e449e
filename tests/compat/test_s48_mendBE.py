"""Lane mendBE (session 48): torch's conj bit decided by who conjugates, not by a walk of the stack.

The public ``conj``/``Tensor.conj``/``mH``/``H``/``adjoint()`` mark their result as torch's lazy conj
view does; chainrule's own rules conjugate through ``ops.elementwise._conj``, which sets no bit. The
bit then travels as torch's does: views, ``detach()``, ``.data``, a Parameter, pickle and
torch.save keep it, copies and arithmetic drop it, a leaf's ``.grad`` through ConjBackward0 keeps it.
"""

import ast
import copy
import io
import pathlib
import pickle
import re

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_VALUES = [1 + 2j, 3 - 4j, -0.5j]


def _save_load(lib, t):
    buffer = io.BytesIO()
    lib.save(t, buffer)
    buffer.seek(0)
    return lib.load(buffer)


# what a user does with a complex tensor z, each run on torch and on chainrule
_DERIVED = {
    "conj": lambda lib, z: z.conj(),
    "function conj": lambda lib, z: lib.conj(z),
    "conj twice": lambda lib, z: z.conj().conj(),
    "slice": lambda lib, z: z.conj()[0:2],
    "element": lambda lib, z: z.conj()[0],
    "view": lambda lib, z: z.conj().view(3),
    "reshape": lambda lib, z: z.conj().reshape(3),
    "detach": lambda lib, z: z.conj().detach(),
    "data": lambda lib, z: z.conj().data,
    "clone": lambda lib, z: z.conj().clone(),
    "contiguous": lambda lib, z: z.conj().contiguous(),
    "unsqueeze": lambda lib, z: z.conj().unsqueeze(0),
    "t": lambda lib, z: z.conj().unsqueeze(0).t(),
    "expand": lambda lib, z: z.conj().expand(2, 3),
    "to same dtype": lambda lib, z: z.conj().to(z.dtype),
    "to other dtype": lambda lib, z: z.conj().to(lib.complex128),
    "real part": lambda lib, z: z.conj().real,
    "imag part": lambda lib, z: z.conj().imag,
    "times one": lambda lib, z: z.conj() * 1,
    "exp": lambda lib, z: z.conj().exp(),
    "sum": lambda lib, z: z.conj().sum(),
    "squeeze": lambda lib, z: z.conj().squeeze(),
    "narrow": lambda lib, z: z.conj().narrow(0, 0, 2),
    "select": lambda lib, z: z.conj().select(0, 1),
    "permute": lambda lib, z: z.conj().permute(0),
    "split": lambda lib, z: z.conj().split(2)[0],
    "unbind": lambda lib, z: z.conj().unbind()[1],
    "flip": lambda lib, z: z.conj().flip(0),
    "diagonal": lambda lib, z: z.view(3, 1).conj().diagonal(),
    "as_strided": lambda lib, z: z.conj().as_strided((2,), (1,)),
    "unfold": lambda lib, z: z.conj().unfold(0, 2, 1),
    "stack": lambda lib, z: lib.stack([z.conj()]),
    "deepcopy": lambda lib, z: copy.deepcopy(z.conj()),
    "pickle": lambda lib, z: pickle.loads(pickle.dumps(z.conj())),
    "save and load": lambda lib, z: _save_load(lib, z.conj()),
    "Parameter": lambda lib, z: lib.nn.Parameter(z.conj()),
    "Buffer": lambda lib, z: lib.nn.Buffer(z.conj()),
    "ihfftn over one dim": lambda lib, z: lib.fft.ihfftn(z.real),
    "ihfftn over two dims": lambda lib, z: lib.fft.ihfftn(z.real.view(1, 3)),
    "detach then conj": lambda lib, z: z.conj().detach().conj(),
    "conj of a slice": lambda lib, z: z[1:].conj(),
    "conj of a view": lambda lib, z: z.view(3).conj(),
    "conj of real": lambda lib, z: z.real.conj(),
    "mH": lambda lib, z: z.view(3, 1).mH,
    "H": lambda lib, z: z.view(3, 1).H,
    "adjoint": lambda lib, z: z.view(3, 1).adjoint(),
    "mT": lambda lib, z: z.view(3, 1).mT,
    "mH twice": lambda lib, z: z.view(3, 1).mH.mH,
    "resolve_conj": lambda lib, z: z.conj().resolve_conj(),
    "resolve_neg": lambda lib, z: z.conj().resolve_neg(),
    "conj_physical": lambda lib, z: z.conj_physical(),
    "conj_physical_ of a conj view": lambda lib, z: z.clone().conj().conj_physical_(),
    "ifft of real": lambda lib, z: lib.fft.ifft(z.real),
    "fft of real": lambda lib, z: lib.fft.fft(z.real),
    "ihfft": lambda lib, z: lib.fft.ihfft(z.real),
    "ihfft2": lambda lib, z: lib.fft.ihfft2(z.real.view(1, 3)),
    "vdot": lambda lib, z: lib.vdot(z, z),
    "vecdot": lambda lib, z: lib.linalg.vecdot(z, z),
}


def _outcome(lib, make):
    z = lib.tensor(_VALUES)
    result = make(lib, z)
    return ((result.is_conj(), lib.is_conj(result), result.dtype.is_complex),
            result.resolve_conj().resolve_neg().detach().numpy())  # (torch's .imag of a conj view: its neg bit)


@pytest.mark.parametrize("name", list(_DERIVED))
def test_is_conj_and_values_as_torch(name):
    (expected_bits, expected), (got_bits, got) = _outcome(torch, _DERIVED[name]), _outcome(chainrule, _DERIVED[name])
    assert got_bits == expected_bits
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)  # (float32 fft: pocketfft's rounding)


@pytest.mark.parametrize("name", ["detach", "slice", "reshape", "Parameter", "save and load", "pickle", "ihfft",
                                  "ifft of real", "mH", "clone", "detach then conj", "mH twice"])
def test_view_as_real_and_numpy_refusals_as_torch(name):
    def outcome(lib, read):
        try:
            return "value", np.asarray(read(_DERIVED[name](lib, lib.tensor(_VALUES)).detach())).tolist()
        except RuntimeError as error:
            return "RuntimeError", str(error)

    for read in (lambda t: torch.view_as_real(t) if isinstance(t, torch.Tensor) else chainrule.view_as_real(t),
                 lambda t: t.numpy()):
        assert outcome(chainrule, read) == outcome(torch, read)


def test_view_as_dtype_of_a_conj_view_refused_as_torch():
    for dtype in ("complex64", "float32", "complex128"):
        with pytest.raises(RuntimeError) as expected:
            torch.tensor(_VALUES).conj().view(getattr(torch, dtype))
        with pytest.raises(RuntimeError) as got:
            chainrule.tensor(_VALUES).conj().view(getattr(chainrule, dtype))
        assert str(got.value) == str(expected.value)
    assert chainrule.tensor(_VALUES).conj().resolve_conj().view(chainrule.float32).tolist() == \
        torch.tensor(_VALUES).conj().resolve_conj().view(torch.float32).tolist()


def test_autograd_grad_of_conj_as_torch():
    def grads(lib):
        z = lib.tensor(_VALUES, requires_grad=True)
        through = lib.autograd.grad((z.conj() * 2).real.sum(), z)[0]
        direct = lib.autograd.grad(z.conj(), z, lib.tensor([1 + 1j, 2, 3j]))[0]
        return [(g.is_conj(), g.resolve_conj().tolist()) for g in (through, direct)]

    assert grads(chainrule) == grads(torch)


def test_conj_of_real_is_the_tensor_itself():
    x = chainrule.tensor([1.0, -2.0])
    assert chainrule.conj(x) is x and x.conj() is x and not x.conj().is_conj()
    assert repr(chainrule.tensor([1 + 2j]).conj()) == repr(torch.tensor([1 + 2j]).conj())


# ---------------------------------------------------------------- a leaf's gradient through conj
_LOSSES = {
    "conj": lambda lib, z: (z.conj() * lib.tensor([1 + 1j, 2j, 1.0])).real.sum(),
    "conj then abs": lambda lib, z: z.conj().abs().sum(),
    "mH": lambda lib, z: (z.view(3, 1).mH @ z.view(3, 1)).real.sum(),
    "adjoint": lambda lib, z: (z.view(3, 1).adjoint() * 2).real.sum(),
    "conj twice": lambda lib, z: (z.conj() + z.conj()).real.sum(),
    "conj_physical": lambda lib, z: (z.conj_physical() * 2j).real.sum(),
    "vdot": lambda lib, z: lib.vdot(z, z).real,
    "logcumsumexp": lambda lib, z: lib.logcumsumexp(z, 0).abs().sum(),
    "hfft": lambda lib, z: lib.fft.hfft(z).sum(),
    "hfftn over one dim": lambda lib, z: lib.fft.hfftn(z, dim=(0,)).sum(),
    "atanh": lambda lib, z: z.atanh().abs().sum(),
    "exp": lambda lib, z: z.exp().real.sum(),
}


@pytest.mark.parametrize("name", list(_LOSSES))
def test_leaf_grad_is_conj_as_torch(name):
    def grad(lib):
        z = lib.tensor(_VALUES, requires_grad=True)
        _LOSSES[name](lib, z).backward()
        return z.grad.is_conj(), z.grad.resolve_conj().detach().numpy()

    (expected_conj, expected), (got_conj, got) = grad(torch), grad(chainrule)
    assert got_conj == expected_conj
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["hfft2", "hfftn", "hfftn over one dim"])
def test_hermitian_fft_leaf_grad_as_torch(name):
    # torch conjugates after a C2C over all but the last dim: over two dims the leaf's grad is no conj view
    call = {"hfft2": lambda lib, z: lib.fft.hfft2(z), "hfftn": lambda lib, z: lib.fft.hfftn(z),
            "hfftn over one dim": lambda lib, z: lib.fft.hfftn(z, dim=(1,))}[name]

    def grad(lib):
        z = lib.tensor([1 + 2j, 3 - 4j, -0.5j, 2.0], requires_grad=True)
        (call(lib, z.view(2, 2)) * lib.tensor([[1.0, 2.0], [3.0, -1.0]])).sum().backward()
        return z.grad.is_conj(), z.grad.resolve_conj().numpy()

    (expected_conj, expected), (got_conj, got) = grad(torch), grad(chainrule)
    assert got_conj == expected_conj
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["conj", "conj_physical", "mH", "adjoint", "vdot", "logcumsumexp", "hfft"])
def test_gradcheck_through_conj(name):
    z = chainrule.tensor(_VALUES, dtype=chainrule.complex128, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda z: _LOSSES[name](chainrule, z), (z,))


def test_conj_physical_node_and_accumulated_grad():
    z = chainrule.tensor(_VALUES, requires_grad=True)
    assert type(chainrule.conj_physical(z).grad_fn).__name__ == "ConjPhysicalBackward0"
    assert type(z.conj().grad_fn).__name__ == "ConjBackward0"
    # a second backward adds into the kept conj view's values: the sum, as torch's
    for lib in (torch, chainrule):
        z = lib.tensor(_VALUES, requires_grad=True)
        for _ in range(2):
            (z.conj() * lib.tensor([1 + 1j, 2j, 1.0])).real.sum().backward()
        if lib is torch:
            expected = z.grad.resolve_conj().numpy()
    np.testing.assert_allclose(z.grad.resolve_conj().numpy(), expected)


# ---------------------------------------------------------------- torch.save / load both ways
def test_save_writes_torchs_conj_metadata_and_loads_it():
    buffer = io.BytesIO()
    chainrule.save({"c": chainrule.tensor(_VALUES).conj(), "z": chainrule.tensor(_VALUES)}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer)
    assert loaded["c"].is_conj() and not loaded["z"].is_conj()
    assert loaded["c"].resolve_conj().tolist() == torch.tensor(_VALUES).conj().tolist()
    buffer = io.BytesIO()
    torch.save({"c": torch.tensor(_VALUES).conj()}, buffer)
    buffer.seek(0)
    back = chainrule.load(buffer)
    assert back["c"].is_conj() and back["c"].resolve_conj().tolist() == torch.tensor(_VALUES).conj().tolist()


# ---------------------------------------------------------------- who sees the public conj
def test_torch_function_mode_sees_the_users_conj():
    from chainrule.overrides import TorchFunctionMode

    seen = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func.__name__)
            return func(*args, **(kwargs or {}))

    z = chainrule.tensor(_VALUES)
    with Record():
        marked = z.conj()
        also = chainrule.conj(z)
    assert seen == ["conj", "conj"] and marked.is_conj() and also.is_conj()


def test_subclass_override_sees_conj_and_result_is_marked():
    calls = []

    class Logged(chainrule.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            calls.append(func.__name__)
            return super().__torch_function__(func, types, args, kwargs or {})

    z = chainrule.tensor(_VALUES).as_subclass(Logged)
    assert z.conj().is_conj() and "conj" in calls


# forward and backward of complex ops that never ask for conj: none of chainrule's code may reach the
# public conj (nor mH/H/adjoint), whose result carries the bit
_INTERNAL = {
    "vdot": lambda lib, z: lib.vdot(z, z).real,
    "vecdot": lambda lib, z: lib.linalg.vecdot(z, z).real,
    "atanh": lambda lib, z: z.atanh().abs().sum(),
    "mul": lambda lib, z: (z * z).abs().sum(),
    "matmul": lambda lib, z: (z.view(3, 1) @ z.view(1, 3)).abs().sum(),
    "logsumexp": lambda lib, z: z.logsumexp(0).abs(),
    "logcumsumexp": lambda lib, z: lib.logcumsumexp(z, 0).abs().sum(),
    "cov": lambda lib, z: lib.cov(z.view(1, 3)).abs().sum(),
    "var": lambda lib, z: z.var(),
    "lerp": lambda lib, z: lib.lerp(z, z * 2, z).abs().sum(),
    "addcdiv": lambda lib, z: lib.addcdiv(z, z, z + 5, value=0.5).abs().sum(),
    "polar": lambda lib, z: lib.polar(z.abs(), z.angle()).abs().sum(),
    "hfft": lambda lib, z: lib.fft.hfft(z).sum(),
    "ihfft": lambda lib, z: lib.fft.ihfft(z.real).abs().sum(),
    "fft": lambda lib, z: lib.fft.fft(z).abs().sum(),
    "det": lambda lib, z: lib.linalg.det(lib.outer(z, z) + 3 * lib.eye(3)).abs(),
    "inv": lambda lib, z: lib.linalg.inv(lib.outer(z, z) + 3 * lib.eye(3)).abs().sum(),
    "svd": lambda lib, z: lib.linalg.svdvals(lib.outer(z, z) + lib.eye(3)).sum(),
    "cholesky": lambda lib, z: lib.linalg.cholesky(lib.outer(z, z.sgn()) * 0 + 2 * lib.eye(3) + 0j).abs().sum(),
}


@pytest.mark.parametrize("name", list(_INTERNAL))
def test_no_internal_call_reaches_the_public_conj(name, monkeypatch):
    calls = []

    def recording(attribute, original, is_property=False):
        if is_property:
            return property(lambda self: calls.append(attribute) or original.fget(self))
        return lambda *args, **kwargs: calls.append(attribute) or original(*args, **kwargs)

    for attribute in ("conj", "adjoint"):
        monkeypatch.setattr(chainrule.Tensor, attribute, recording(attribute, getattr(chainrule.Tensor, attribute)))
    for attribute in ("mH", "H"):
        monkeypatch.setattr(chainrule.Tensor, attribute, recording(attribute, chainrule.Tensor.__dict__[attribute], True))
    monkeypatch.setattr(chainrule, "conj", recording("torch.conj", chainrule.conj))
    z = chainrule.tensor(_VALUES, dtype=chainrule.complex128, requires_grad=True)
    loss = _INTERNAL[name](chainrule, z)
    loss.backward()
    assert calls == []
    tz = torch.tensor(_VALUES, dtype=torch.complex128, requires_grad=True)
    _INTERNAL[name](torch, tz).backward()
    assert tz.grad.is_conj() == z.grad.is_conj()
    np.testing.assert_allclose(z.grad.resolve_conj().numpy(), tz.grad.resolve_conj().numpy(), rtol=1e-6, atol=1e-9)


_SRC = pathlib.Path(chainrule.__file__).parent
# receivers whose .conj/.adjoint are no tensor's: array modules, a Function's ctx, the Tensor class
# itself (torch.adjoint = Tensor.adjoint, bound once)
_NOT_TENSORS = {"xp", "np", "numpy", "cupy", "ctx", "Tensor", "array_module(z)"}


_ATTRIBUTE_TEXT = re.compile(r"\.\s*(?:\\\s*)?(?:conj|mH|H|adjoint)\b")


def test_no_module_of_chainrule_calls_conj_as_a_method():
    """chainrule's code conjugates tensors with ``elementwise._conj`` and arrays with ``xp.conj``: a
    ``.conj()``/``.mH``/``.H``/``.adjoint()`` on a tensor is the public, bit-setting one (and on an
    array reads the same as it)."""
    found = []
    for path in sorted(_SRC.rglob("*.py")):
        relative = path.relative_to(_SRC).as_posix()
        if relative.startswith("testing/"):  # the op registry's samples are users' code
            continue
        source = path.read_text(encoding="utf-8")
        # only a file whose text has such an attribute can hold one (a dot, perhaps a line continuation,
        # then the name): parsing every file took this test 23 s of a loaded CI run, the few that match 1 s
        if not _ATTRIBUTE_TEXT.search(source):
            continue
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Attribute) and node.attr in ("conj", "mH", "H", "adjoint")
                    and isinstance(node.ctx, ast.Load) and ast.unparse(node.value) not in _NOT_TENSORS):
                found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_the_stack_walk_is_gone():
    from chainrule.ops import complex as complex_ops

    assert not hasattr(complex_ops, "_asked_by_user") and not hasattr(complex_ops, "_CONJ_CALLERS")


# ---------------------------------------------------------------- a sweep of complex ops
_RNG = np.random.default_rng(48)
_MATRIX = _RNG.standard_normal((3, 3)) + 1j * _RNG.standard_normal((3, 3)) + 3 * np.eye(3)
_VECTOR = _RNG.standard_normal(4) + 1j * _RNG.standard_normal(4)
_SWEEP = {
    "conj": lambda lib, z: z.conj(), "conj_physical": lambda lib, z: lib.conj_physical(z),
    "exp": lambda lib, z: z.exp(), "log": lambda lib, z: z.log(), "sqrt": lambda lib, z: z.sqrt(),
    "atanh": lambda lib, z: z.atanh(), "asinh": lambda lib, z: z.asinh(), "sinc": lambda lib, z: lib.sinc(z),
    "abs": lambda lib, z: z.abs(), "angle": lambda lib, z: z.angle(), "sgn": lambda lib, z: z.sgn(),
    "div": lambda lib, z: z / (z.abs() + 1), "prod": lambda lib, z: z.prod(), "cumprod": lambda lib, z: z.cumprod(0),
    "logsumexp": lambda lib, z: z.logsumexp(0), "logcumsumexp": lambda lib, z: lib.logcumsumexp(z, 0),
    "vdot": lambda lib, z: lib.vdot(z, z), "vecdot": lambda lib, z: lib.linalg.vecdot(z, z),
    "mH matmul": lambda lib, z: z.view(-1, 1).mH @ z.view(-1, 1), "adjoint": lambda lib, z: z.view(-1, 1).adjoint() * 2,
    "H": lambda lib, z: z.view(-1, 1).H * 2, "lerp": lambda lib, z: lib.lerp(z, z * 2, 0.3 + 0.1j),
    "addcmul": lambda lib, z: lib.addcmul(z, z, z, value=0.5), "addcdiv": lambda lib, z: lib.addcdiv(z, z, z + 5, value=0.5),
    "var": lambda lib, z: z.var(), "cov": lambda lib, z: lib.cov(z.view(2, -1)), "polar": lambda lib, z: lib.polar(z.abs(), z.angle()),
    "ifft": lambda lib, z: lib.fft.ifft(z), "hfft": lambda lib, z: lib.fft.hfft(z), "ihfft": lambda lib, z: lib.fft.ihfft(z.real),
    "ifft of real": lambda lib, z: lib.fft.ifft(z.real), "hfft2": lambda lib, z: lib.fft.hfft2(z.view(2, 2)),
    "ihfft2": lambda lib, z: lib.fft.ihfft2(z.real.view(2, 2)), "norm": lambda lib, z: lib.linalg.norm(z),
    "det": lambda lib, z: lib.linalg.det(lib.tensor(_MATRIX) + lib.outer(z[:3], z[1:])),
    "slogdet": lambda lib, z: lib.linalg.slogdet(lib.tensor(_MATRIX) + lib.outer(z[:3], z[1:]))[1],
    "inv": lambda lib, z: lib.linalg.inv(lib.tensor(_MATRIX) + lib.outer(z[:3], z[1:])),
    "eigvals": lambda lib, z: lib.linalg.eigvals(lib.tensor(_MATRIX) + lib.outer(z[:3], z[1:])).abs(),
    "cholesky": lambda lib, z: lib.linalg.cholesky(lib.tensor(_MATRIX @ _MATRIX.conj().T) + lib.outer(z[:3], z[:3].conj())),
    "pinv": lambda lib, z: lib.linalg.pinv(lib.outer(z[:3], z[1:]) + lib.tensor(_MATRIX)),
}


def _loss(out):
    out = out.resolve_conj()
    return (out * out.conj().detach()).real.sum() if out.is_complex() else (out * out.detach()).sum()


@pytest.mark.parametrize("name", list(_SWEEP))
def test_complex_op_sweep_as_torch(name):
    results = []
    for lib in (torch, chainrule):
        z = lib.tensor(_VECTOR, requires_grad=True)
        out = _SWEEP[name](lib, z)
        _loss(out).backward()
        results.append((out.is_conj(), z.grad.is_conj(), out.detach().resolve_conj().numpy(), z.grad.resolve_conj().numpy()))
    (out_conj, grad_conj, out, grad), expected = results[1], results[0]
    assert (out_conj, grad_conj) == expected[:2]
    np.testing.assert_allclose(out, expected[2], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(grad, expected[3], rtol=1e-6, atol=1e-8)
    z = chainrule.tensor(_VECTOR, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda z: _SWEEP[name](chainrule, z).resolve_conj(), (z,))
