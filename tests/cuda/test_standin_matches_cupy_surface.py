"""The CuPy stand-in has only what real CuPy 14.2 has (``chainrule._cupy_surface``, read off an
installed CuPy by ``tools/gen_cupy_namespace.py``), and behaves as CuPy documents where it differs
from NumPy; every ``xp.<name>(...)`` chainrule's device code calls exists there with the keywords
it passes; and the ops that used NumPy-only names now give the CPU's answers on the device."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import chainrule as torch
from chainrule import _cupy_surface as surface
from chainrule import _standin
from chainrule._backend import accumulate, amax_with_initial, broadcast_solve, ufunc_at, use_standin_cuda

SRC = Path(__file__).resolve().parents[2] / "src" / "chainrule"


@pytest.fixture
def cp():
    with use_standin_cuda() as module:
        yield module


def test_the_surface_is_cupy_14_2s():
    assert surface.VERSION.startswith("14.2.")
    assert {"cupy", "cupy.linalg", "cupy.fft", "cupy.random", "cupy.lib.stride_tricks", "cupyx",
            "cupyx.scipy.special", "cupy.cuda", "cupy.cuda.runtime"} <= set(surface.NAMES)
    assert "scatter_add" in surface.NAMES["cupyx"] and "scatter_add" not in surface.NAMES["cupy"]
    # CuPy's Generator has no normal/permutation/choice, and its ufuncs take no order=/where=
    assert "normal" not in surface.ATTRIBUTES["random.Generator"]
    assert "standard_normal" in surface.ATTRIBUTES["random.Generator"]
    assert surface.KEYWORDS["cupy.exp"] == ("out", "casting", "dtype")
    assert "initial" not in surface.KEYWORDS["cupy.max"]
    assert surface.UFUNCS["add"][2] >= {"reduce", "accumulate", "reduceat", "at"}
    assert "accumulate" not in surface.UFUNCS["maximum"][2] and "at" not in surface.UFUNCS["multiply"][2]
    assert surface.KEYWORDS["ElementwiseKernel()"][:4] == ("in_params", "out_params", "operation", "name")
    assert "shared_mem" in surface.KEYWORDS["RawKernel.__call__"]
    assert "disable_timing" in surface.KEYWORDS["cuda.Event()"]


@pytest.mark.parametrize("name", ["errstate", "einsum_path", "nanquantile", "geomspace", "insert", "vecdot",
                                  "object_", "float128"])
def test_a_numpy_name_cupy_lacks_is_not_there(cp, name):
    assert hasattr(np, name)
    with pytest.raises(AttributeError, match=f"'{name}'.*CuPy 14.2"):
        getattr(cp, name)


def test_keywords_cupy_does_not_take_raise_type_error(cp):
    a, b = cp.ones((2, 3)), cp.zeros((2, 3))
    with pytest.raises(TypeError, match="order"):
        cp.subtract(a, b, order="C")
    with pytest.raises(TypeError, match="where"):
        cp.exp(a, where=a > 0)
    with pytest.raises(TypeError, match="initial"):
        cp.max(a, initial=0)
    with pytest.raises(TypeError, match="initial"):
        a.max(initial=0)
    with pytest.raises(TypeError, match="where"):
        cp.add.reduce(a, where=a > 0)
    with pytest.raises(TypeError, match="where"):
        cp.sum(a, where=a > 0)
    assert float(cp.sum(a, axis=0, keepdims=True).sum()) == 6.0  # what CuPy takes still works


def test_ndarray_and_generator_members_cupy_lacks_raise(cp):
    a = cp.ones(3)
    for name in ("resize", "setflags", "getfield", "to_device"):
        with pytest.raises(AttributeError, match=name):
            getattr(a, name)
    rng = cp.random.default_rng(0)
    for name in ("normal", "permutation", "choice", "shuffle"):
        with pytest.raises(AttributeError, match=name):
            getattr(rng, name)
    assert rng.standard_normal((2, 2), dtype=np.float32).dtype == np.float32


def test_ufunc_methods_exist_only_where_cupy_implements_them(cp):
    a = cp.ones((2, 3))
    for call in (lambda: cp.maximum.accumulate(a, axis=1), lambda: cp.logaddexp.accumulate(a),
                 lambda: cp.maximum.reduce(a), lambda: cp.multiply.reduceat(a, cp.arange(2)),
                 lambda: cp.multiply.at(a, cp.arange(2), 2.0)):
        with pytest.raises(NotImplementedError, match="not supported in CuPy"):
            call()
    with pytest.raises(TypeError, match="atomics"):  # no CUDA atomic add for int8
        cp.add.at(cp.zeros(3, dtype=np.int8), cp.asarray(np.array([0, 0])), 1)
    cp.add.at(a, (cp.asarray(np.array([0, 0])),), 1.0)
    assert a.get()[0].tolist() == [3.0, 3.0, 3.0]


def test_cupy_semantics_out_of_bounds_indices_wrap(cp):
    # CuPy's integer-array indexing wraps around instead of raising (checking would sync)
    x = cp.asarray(np.arange(3.0))
    assert x[cp.asarray(np.array([1, 3]))].get().tolist() == [1.0, 0.0]
    x[cp.asarray(np.array([1, 3]))] = 10.0
    assert x.get().tolist() == [10.0, 10.0, 2.0]
    with pytest.raises(IndexError):  # a Python integer is checked on the host, as in NumPy
        x[3]


def test_cupy_semantics_linalg_reports_nothing_unless_asked(cp):
    singular = cp.zeros((2, 2))
    assert np.isnan(cp.linalg.inv(singular).get()).all()  # no LinAlgError by default on the GPU
    with _standin.cupyx.errstate(linalg="raise"):
        with pytest.raises(np.linalg.LinAlgError):
            cp.linalg.inv(singular)
    with pytest.raises(ValueError, match="b must have"):  # CuPy's solve does not broadcast batch dims
        cp.linalg.solve(cp.ones((2, 2)), cp.ones((3, 2, 1)))


# ---- the seam's helpers against NumPy --------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "int8", "uint8", "int64", "complex64"])
@pytest.mark.parametrize("name", ["add", "multiply", "maximum"])
def test_ufunc_at_on_the_device_equals_numpys(cp, dtype, name):
    if name == "maximum" and dtype == "complex64":
        pytest.skip("no complex maximum in torch's scatter_reduce either")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, (4, 5)).astype(dtype)
    for key in ((rng.integers(-4, 4, 9), rng.integers(0, 5, 9)), (slice(None), np.array([1, 1, 4, 1]))):
        values = rng.integers(1, 3, a[key].shape).astype(dtype)
        expected = a.copy()
        getattr(np, name).at(expected, key, values)
        for layout in (np.ascontiguousarray, np.asfortranarray):
            got = cp.asarray(layout(a))
            ufunc_at(cp, name, got, tuple(cp.asarray(k) if isinstance(k, np.ndarray) else k for k in key),
                     cp.asarray(values))
            np.testing.assert_array_equal(got.get(), expected)


@pytest.mark.parametrize("name", ["maximum", "minimum", "logaddexp"])
def test_accumulate_on_the_device_equals_numpys(cp, name):
    x = np.random.default_rng(1).standard_normal((3, 11, 2))
    x[1, 4, 0] = np.nan
    for axis in (0, 1, -1):
        with np.errstate(invalid="ignore"):
            expected = getattr(np, name).accumulate(x, axis=axis)
            got = accumulate(cp, name, cp.asarray(x), axis).get()
        np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)


def test_amax_with_initial_and_linalg_solve_on_the_device(cp):
    for shape, axis in (((3, 0), 1), ((3, 0), 0), ((0,), None), ((2, 3), (0, 1))):
        a = np.abs(np.random.default_rng(2).standard_normal(shape))
        for keepdims in (True, False):
            expected = np.max(a, axis=axis, keepdims=keepdims, initial=0)
            got = amax_with_initial(cp, cp.asarray(a), axis, keepdims, 0).get()
            assert got.shape == expected.shape and np.array_equal(got, expected)
    a = np.eye(3) * 2 + 0.1
    b = np.ones((4, 3, 2))
    np.testing.assert_allclose(broadcast_solve(cp, cp.asarray(a), cp.asarray(b)).get(), np.linalg.solve(a, b))


# ---- the ops that used names CuPy lacks, on the device against the CPU ------------------------

def _both(fn, *tensors):
    """(on the CPU, on the device, whether the device result is contiguous)."""
    with use_standin_cuda():
        on_device = fn(*(t.to("cuda") for t in tensors))
        return fn(*tensors), on_device.cpu(), on_device.is_contiguous()


@pytest.mark.parametrize("op", [
    lambda x: torch.nn.functional.layer_norm(x.mT, (3,)),  # an F-ordered input: order= was passed to a ufunc
    lambda x: torch.nn.functional.logsigmoid(x.mT),
    lambda x: torch.logsumexp(x, 1),
    lambda x: torch.linalg.vector_norm(x, float("inf"), dim=1),
    lambda x: torch.cummax(x, 1)[0], lambda x: torch.cummax(x, 1)[1], lambda x: torch.cummin(x, 0)[1],
    lambda x: torch.logcumsumexp(x, 1),
    lambda x: torch.mode(x.round(), 1)[1],
    lambda x: (x + 2).scatter(0, torch.tensor([[0, 1, 0, 0]], device=x.device), x[:1], reduce="multiply"),
    lambda x: x.scatter_reduce(0, torch.tensor([[0, 1, 0, 1], [0, 0, 2, 1]], device=x.device), x[:2], "prod"),
    lambda x: (x * 3).to(torch.int8).scatter_add(0, torch.tensor([[0, 1, 0, 0], [0, 0, 2, 1]], device=x.device),
                                                 (x[:2] * 2).to(torch.int8)),  # no CUDA atomic add for int8
    lambda x: torch.linalg.solve(x[:, :3] + 3 * torch.eye(3, device=x.device), x[:, :2].expand(2, 3, 2)),
    lambda x: torch.linalg.solve_triangular(x[:, :3].triu() + 3 * torch.eye(3, device=x.device),
                                            x[:, :2].expand(2, 3, 2), upper=True),
], ids=["layer_norm", "logsigmoid", "logsumexp", "norm_inf", "cummax", "cummax_index",
        "cummin_index", "logcumsumexp", "mode", "scatter_multiply", "scatter_reduce_prod", "scatter_add_int8",
        "solve_broadcast", "solve_triangular_broadcast"])
def test_op_on_the_device_equals_the_cpu(op):
    x = torch.tensor(np.random.default_rng(3).standard_normal((3, 4)), dtype=torch.float32)
    on_cpu, on_device, contiguous = _both(op, x)
    assert on_device.dtype == on_cpu.dtype and on_device.shape == on_cpu.shape
    np.testing.assert_allclose(on_device.numpy(), on_cpu.numpy(), rtol=1e-5, atol=1e-6)
    assert contiguous or not on_cpu.is_contiguous()  # layer_norm/logsigmoid: C order out of an F-ordered input


@pytest.mark.parametrize("call", [lambda a: torch.linalg.inv(a), lambda a: torch.linalg.solve(a, a[:, :1] + 1)],
                         ids=["inv", "solve"])
def test_a_singular_matrix_raises_on_the_device_as_on_the_cpu(call):
    with use_standin_cuda():
        with pytest.raises(RuntimeError, match="singular"):
            call(torch.zeros(3, 3))
        with pytest.raises(RuntimeError, match="singular"):
            call(torch.zeros(3, 3, device="cuda"))


# ---- every xp.<name>(...) in chainrule exists in CuPy 14.2, with the keywords passed ----------

_ARRAY_MODULE_SOURCES = {"array_module", "module_for_device", "cuda_module", "_cupy", "_xp", "_array_module"}
_SUBMODULES = {("linalg",): "cupy.linalg", ("fft",): "cupy.fft", ("random",): "cupy.random",
               ("lib", "stride_tricks"): "cupy.lib.stride_tricks", ("cuda",): "cupy.cuda",
               ("cuda", "runtime"): "cupy.cuda.runtime"}
_UFUNC_METHODS = ("reduce", "accumulate", "reduceat", "outer", "at")


def _chain(node) -> list | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id] + parts[::-1] if isinstance(node, ast.Name) else None


def _resolve(chain: list) -> tuple:
    """('cupy.linalg', 'solve', None) for xp.linalg.solve; ('cupy', 'maximum', 'accumulate') for
    xp.maximum.accumulate."""
    rest = chain[1:]
    for prefix in sorted(_SUBMODULES, key=len, reverse=True):
        if tuple(rest[:len(prefix)]) == prefix and len(rest) > len(prefix):
            name = rest[len(prefix)]
            return _SUBMODULES[prefix], name, None
    method = rest[1] if len(rest) > 1 and rest[1] in _UFUNC_METHODS else None
    return "cupy", rest[0], method


def _is_numpy_test(test, names) -> bool | None:
    """True for ``xp is np``, False for ``xp is not np`` (xp an array-module name), else None."""
    if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.Name)
            and test.left.id in names and isinstance(test.comparators[0], ast.Name)
            and test.comparators[0].id in ("np", "numpy") and isinstance(test.ops[0], (ast.Is, ast.IsNot))):
        return isinstance(test.ops[0], ast.Is)
    return None


class _DeviceCalls(ast.NodeVisitor):
    """``xp.<...>`` uses in code that can run on the device: ``xp`` bound by ``array_module(...)``
    (or a parameter named xp); the body of ``if xp is np:`` and what follows
    ``if xp is not np: ... return`` are the CPU's and skipped."""

    def __init__(self) -> None:
        self.names: list[set] = [set()]
        self.found: list[tuple[int, list, list]] = []

    def visit_FunctionDef(self, node) -> None:
        names = set(self.names[-1])
        names.update(a.arg for a in node.args.args + node.args.kwonlyargs if a.arg == "xp")
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Call):
                func = sub.value.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if called in _ARRAY_MODULE_SOURCES:
                    names.update(t.id for t in sub.targets if isinstance(t, ast.Name))
        self.names.append(names)
        self._visit_block(node.body)
        self.names.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _visit_block(self, statements) -> None:
        for statement in statements:
            self.visit(statement)
            if (isinstance(statement, ast.If) and _is_numpy_test(statement.test, self.names[-1]) is False
                    and statement.body and isinstance(statement.body[-1], (ast.Return, ast.Raise))):
                return  # ``if xp is not np: ... return``: the rest of the block runs on the CPU only

    def visit_If(self, node) -> None:
        numpy_branch = _is_numpy_test(node.test, self.names[-1])
        if numpy_branch is None:
            self.visit(node.test)
            self._visit_block(node.body)
            self._visit_block(node.orelse)
        else:
            self._visit_block(node.orelse if numpy_branch else node.body)

    def visit_IfExp(self, node) -> None:
        numpy_branch = _is_numpy_test(node.test, self.names[-1])
        if numpy_branch is None:
            self.generic_visit(node)
        else:
            self.visit(node.orelse if numpy_branch else node.body)

    def visit_Call(self, node) -> None:
        chain = _chain(node.func)
        if chain and chain[0] in self.names[-1] and len(chain) >= 2:
            self.found.append((node.lineno, chain, [k.arg for k in node.keywords if k.arg is not None]))
            for argument in node.args + [k.value for k in node.keywords]:
                self.visit(argument)
            return
        self.generic_visit(node)

    def visit_Attribute(self, node) -> None:
        chain = _chain(node)
        if chain and chain[0] in self.names[-1] and len(chain) >= 2:
            self.found.append((node.lineno, chain, []))
            return
        self.generic_visit(node)


def _device_uses():
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if path.name in ("_standin.py", "_cupy_surface.py") or not any(
                source in text for source in _ARRAY_MODULE_SOURCES):
            continue
        scan = _DeviceCalls()
        scan.visit(ast.parse(text))
        for line, chain, keywords in scan.found:
            yield f"{path.relative_to(SRC)}:{line}", chain, keywords


def test_every_xp_name_and_keyword_chainrule_uses_is_in_cupy_14_2():
    problems, seen = [], 0
    for where, chain, keywords in _device_uses():
        namespace, name, method = _resolve(chain)
        if name == "lib" or (namespace == "cupy" and name in ("transfers", "reset_transfers")):
            continue
        seen += 1
        dotted = ".".join(chain)
        if name not in surface.NAMES[namespace]:
            problems.append(f"{where}: {dotted}: {namespace} has no {name}")
            continue
        if method is not None:
            if method not in surface.UFUNCS.get(name, (0, 0, frozenset()))[2]:
                problems.append(f"{where}: {dotted}: CuPy has no {name}.{method}")
            allowed = surface.UFUNC_METHODS[method]
        else:
            allowed = surface.KEYWORDS.get(f"{namespace}.{name}")
        if allowed is not None:
            problems += [f"{where}: {dotted}({k}=): CuPy's takes {allowed}" for k in keywords if k not in allowed]
    assert seen > 500  # the scan finds the device code (about a thousand uses)
    assert not problems, "\n".join(problems)


def test_the_scan_catches_what_it_is_for():
    code = '''
def op(x):
    xp = array_module(x)
    if xp is np:
        return xp.errstate()
    y = xp.maximum.accumulate(x, axis=0)
    if xp is not np:
        return xp.subtract(x, y, order="C")
    return xp.einsum_path(x)
'''
    scan = _DeviceCalls()
    scan.visit(ast.parse(code))
    found = [(".".join(chain), keywords) for _, chain, keywords in scan.found]
    assert found == [("xp.maximum.accumulate", ["axis"]), ("xp.subtract", ["order"])]


def test_the_special_functions_chainrule_takes_from_cupyx_are_there():
    import re

    names = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'cupy_name = "[^"]*", "(\w+)"', text))
        names |= set(re.findall(r'on_device\("[^"]+", "(\w+)"', text))
    assert {"gammaln", "digamma", "erfinv", "zeta"} <= names
    assert names <= surface.NAMES["cupyx.scipy.special"], names - surface.NAMES["cupyx.scipy.special"]


def test_a_matrix_that_is_not_positive_definite_fails_on_the_device_as_on_the_cpu():
    # cuSOLVER's potrf leaves finite numbers behind when it fails: only its info says so
    not_pd = torch.tensor([[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    with use_standin_cuda():
        for device in ("cpu", "cuda"):
            with pytest.raises(RuntimeError, match="not positive-definite"):
                torch.linalg.cholesky(not_pd.to(device))
        on_cpu = torch.linalg.cholesky_ex(not_pd)
        on_device = torch.linalg.cholesky_ex(not_pd.to("cuda"))
        assert int(on_device.info) == int(on_cpu.info) == 2
        np.testing.assert_allclose(on_device.L.cpu().numpy(), on_cpu.L.numpy())
