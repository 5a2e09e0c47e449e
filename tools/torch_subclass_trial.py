"""Run torch's own tensor-subclass test helpers on torch and on chainrule, and compare what users do with them.

torch 2.13 ships the subclasses its tests use in ``torch/testing/_internal/``: ``common_subclass.py``
(``subclass_db``: NonWrapperTensor, LoggingTensor, SparseTensor, DiagTensorBelow, the wrappers with custom
sizes and strides, RedispatchTensor; SubclassWithTensorFactory), ``two_tensor.py`` (TwoTensor, TwoTensorMode),
``logging_tensor.py`` (LoggingTensor, LoggingTensorMode, capture_logs), ``custom_tensor.py``
(ConstantExtraMetadataTensor, CustomTensorPlainOut) and ``subclasses.py`` (WrapperSubclass). The trial runs
one scenario script twice, each in its own process: once with the real torch and its modules, once with
``import torch`` answered by chainrule (tests/programs/_alias) and each helper module's SOURCE, read from
torch's installation and compiled as ``torch.testing._internal.<name>``, so every ``torch`` it names is
chainrule. Nothing of torch is imported in the chainrule process.

Each subject (a subclass instance built from the same NumPy values) goes through: construction, ``repr``,
arithmetic with a plain tensor and with itself, matmul, reductions, indexing and views, an in-place add,
``detach``/``clone``/``to``, ``.backward()`` and ``autograd.grad`` (the subclass as input and as an
``nn.Parameter`` of ``nn.Linear``), ``torch.func.grad``, ``__tensor_flatten__``/``__tensor_unflatten__``,
``copy.deepcopy`` and ``torch.save``/``torch.load``. Then the dispatch modes (LoggingTensorMode through
``capture_logs_with_logging_tensor_mode``, TwoTensorMode) and LoggingTensor's logged op sequence.

A result is compared by structure: its type's name (does the subclass propagate?), shape, dtype,
``requires_grad``, and the values of every inner tensor (``__tensor_flatten__``'s, or the attribute the
helper keeps them in); a raised exception by type and message. Logged lines are compared in full (chainrule
hands handlers aten overloads under torch's names).

    python tools/torch_subclass_trial.py run --out /tmp/subclasstrial [--filter TwoTensor]

Writes ``DIR/results.json`` and ``DIR/summary.md`` and prints the counts. Kinds: ``same``, ``differ``,
``chainrule_raised`` (torch answered), ``torch_raised`` (torch raised, chainrule did not, or raised another
type), ``both_raised`` (same type), ``skipped`` (listed in SKIPS, with the reason).
"""

from __future__ import annotations

import argparse
import collections
import copy
import importlib
import importlib.abc
import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALIAS = os.path.join(ROOT, "tests", "programs", "_alias")
HELPERS = ("logging_tensor", "two_tensor", "common_subclass", "custom_tensor", "subclasses")

# (subject, check) -> why the pair is not compared
SKIPS: dict[tuple[str, str], str] = {}

torch = None  # the library under trial, bound in run_side
helpers: dict = {}
import_errors: dict = {}  # helper module -> why it did not load


# ------------------------------------------------------------------ loading torch's helper sources on chainrule
class _HelperSources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``torch.testing._internal.<helper>`` with torch's file, compiled where torch is chainrule."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torch.testing._internal":
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        package, _, name = fullname.rpartition(".")
        if package == "torch.testing._internal" and name in HELPERS:
            return importlib.util.spec_from_loader(fullname, self, origin=os.path.join(self.directory, name + ".py"))
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        if module.__name__ == "torch.testing._internal":
            module.__path__ = []
            return
        filename = module.__spec__.origin
        with open(filename, encoding="utf-8") as source:
            code = compile(source.read(), filename, "exec")
        module.__file__ = filename
        exec(code, module.__dict__)


def _torch_helper_directory() -> str:
    """torch/testing/_internal of the installed torch, found without importing torch."""
    spec = importlib.util.find_spec("torch")
    return os.path.join(spec.submodule_search_locations[0], "testing", "_internal")


def load_library(lib: str, helper_directory: str, source: str | None = None) -> None:
    global torch
    if lib == "chainrule":
        sys.path.insert(0, source or os.path.join(ROOT, "src"))
        sys.path.insert(0, ALIAS)
        sys.meta_path.insert(0, _HelperSources(helper_directory))
    torch = importlib.import_module("torch")
    if lib == "chainrule" and not torch.__name__.startswith("chainrule"):
        raise RuntimeError("the chainrule side imported the real torch")
    for name in HELPERS:
        try:
            module = importlib.import_module(f"torch.testing._internal.{name}")
        except Exception as error:  # noqa: BLE001  (a helper that does not load is a finding; its cases raise)
            import_errors[name] = f"{type(error).__name__}: {error}"
            continue
        helpers.update({k: v for k, v in vars(module).items() if not k.startswith("__")})


# ------------------------------------------------------------------ describing a result on either library
INNER_ATTRIBUTES = ("elem", "t", "diag", "values", "indices", "src", "a", "b", "elem1", "elem2")


def _dtype_name(dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def describe(value, depth: int = 0):
    """A library-neutral picture of ``value``: plain data, NumPy arrays for tensor values."""
    if isinstance(value, torch.Tensor):
        kind = type(value)
        picture = {"type": kind.__name__, "shape": list(value.shape), "dtype": _dtype_name(value.dtype),
                   "requires_grad": bool(value.requires_grad)}
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            picture["values"] = value.detach().numpy().copy()
            return picture
        inner_names = None
        if hasattr(value, "__tensor_flatten__"):
            inner_names = list(value.__tensor_flatten__()[0])
        else:
            inner_names = [n for n in INNER_ATTRIBUTES if isinstance(value.__dict__.get(n, None) if hasattr(value, "__dict__") else None, torch.Tensor)]
            if not inner_names and isinstance(getattr(value, "elem", None), torch.Tensor):
                inner_names = ["elem"]
        if inner_names and depth < 3:
            picture["inner"] = {n: describe(getattr(value, n), depth + 1) for n in inner_names}
        elif not inner_names:
            with torch._C.DisableTorchFunction():
                picture["values"] = np.asarray(torch.Tensor.detach(value).numpy()).copy()
        return picture
    if isinstance(value, (list, tuple)):
        return [describe(v, depth) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v, depth) for k, v in value.items()}
    if isinstance(value, (torch.dtype,)):
        return _dtype_name(value)
    if isinstance(value, (torch.Size,)):
        return list(value)
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    if isinstance(value, type):
        return value.__name__
    return repr(value)


# ------------------------------------------------------------------ subjects
def _values(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def plain(shape=(3, 3), seed=0, requires_grad=False):
    return torch.tensor(_values(shape, seed), requires_grad=requires_grad)


def _two(x):
    return helpers["TwoTensor"](x, x * 2)


SUBJECTS = {
    "NonWrapperTensor": lambda x: helpers["NonWrapperTensor"](x),
    "RedispatchTensor": lambda x: helpers["RedispatchTensor"](x),
    "LoggingTensor": lambda x: helpers["LoggingTensor"](x),
    "LoggingTensorReentrant": lambda x: helpers["LoggingTensorReentrant"](x),
    "SparseTensor": lambda x: helpers["SparseTensor"].from_dense(x.relu()),
    "DiagTensorBelow": lambda x: helpers["DiagTensorBelow"](x[0]),
    "WrapperTensorWithCustomSizes": lambda x: helpers["WrapperTensorWithCustomSizes"](x),
    "WrapperTensorWithCustomStrides": lambda x: helpers["WrapperTensorWithCustomStrides"](x),
    "SubclassWithTensorFactory": lambda x: helpers["SubclassWithTensorFactory"](x),
    "TwoTensor": _two,
    "ConstantExtraMetadataTensor": lambda x: helpers["ConstantExtraMetadataTensor"](x),
    "CustomTensorPlainOut": lambda x: helpers["CustomTensorPlainOut"](x, x * 3),
    "WrapperSubclass": lambda x: helpers["WrapperSubclass"](x),
}

# subjects whose inner tensors may require grad (the wrapper then carries it)
GRAD_THROUGH_INNER = {"TwoTensor", "ConstantExtraMetadataTensor", "CustomTensorPlainOut", "WrapperSubclass",
                      "SubclassWithTensorFactory"}


def subject(name, shape=(3, 3), seed=0):
    return SUBJECTS[name](plain(shape, seed))


def subject_requiring_grad(name, seed=0):
    """The subject as a differentiable leaf: the wrapper built with requires_grad=True where its class
    takes it, else built from inner tensors that require grad, else made a leaf with requires_grad_."""
    x = plain((3, 3), seed)
    if name in ("LoggingTensor", "LoggingTensorReentrant"):
        return helpers[name](x, requires_grad=True)
    if name in ("WrapperTensorWithCustomSizes", "WrapperTensorWithCustomStrides"):
        return helpers[name](x, requires_grad=True)
    if name == "DiagTensorBelow":
        return helpers[name](x[0], requires_grad=True)
    if name in GRAD_THROUGH_INNER:
        return SUBJECTS[name](x.requires_grad_())
    return SUBJECTS[name](x).requires_grad_()


# ------------------------------------------------------------------ checks: what users do with a subclass
def check_construct(name):
    return subject(name)


def check_repr(name):
    return repr(subject(name))


def check_add_plain(name):
    return subject(name) + plain(seed=1)


def check_mul_self(name):
    x = subject(name)
    return x * x


def check_torch_add_alpha(name):
    return torch.add(subject(name), plain(seed=2), alpha=2)


def check_matmul(name):
    return subject(name) @ plain(seed=3)


def check_mm_functional(name):
    return torch.mm(plain(seed=3), subject(name))


def check_sum(name):
    return subject(name).sum()


def check_mean_dim(name):
    return subject(name).mean(dim=1)


def check_relu_exp(name):
    return torch.exp(torch.relu(subject(name)))


def check_index_row(name):
    return subject(name)[0]


def check_index_slice(name):
    return subject(name)[:, 1:]


def check_view(name):
    return subject(name).view(9)


def check_transpose(name):
    return subject(name).t()


def check_inplace_add(name):
    x = subject(name)
    y = x.add_(plain(seed=4))
    return [y is x, x]


def check_detach(name):
    return subject(name).detach()


def check_clone(name):
    return subject(name).clone()


def check_to_float64(name):
    return subject(name).to(torch.float64)


def check_size_stride(name):
    x = subject(name)
    return [list(x.size()), list(x.stride()), x.dim(), x.numel(), x.is_contiguous()]


def check_backward(name):
    x = subject_requiring_grad(name)
    (x * x).sum().backward()
    leaves = [x] if x.is_leaf else [getattr(x, n) for n in x.__tensor_flatten__()[0]]
    return [leaf.grad for leaf in leaves]


def check_autograd_grad(name):
    x = subject_requiring_grad(name)
    out = (x.sin() * plain(seed=5)).sum()
    return list(torch.autograd.grad(out, x))


def check_linear_weight(name):
    """The subject as nn.Linear's weight (an nn.Parameter of the subclass): forward, backward."""
    linear = torch.nn.Linear(3, 3, bias=False)
    linear.weight = torch.nn.Parameter(subject(name))
    out = linear(plain((2, 3), seed=6))
    out.sum().backward()
    return [type(linear.weight).__name__, out, linear.weight.grad]


def check_linear_input(name):
    linear = torch.nn.Linear(3, 2)
    with torch.no_grad():
        linear.weight.copy_(plain((2, 3), seed=7))
        linear.bias.copy_(plain((2,), seed=8))
    return linear(subject(name))


def check_func_grad(name):
    return torch.func.grad(lambda t: (t * t).sum())(subject(name))


def check_flatten_unflatten(name):
    x = subject(name)
    if not hasattr(x, "__tensor_flatten__"):
        return "no __tensor_flatten__"
    names, meta = x.__tensor_flatten__()
    rebuilt = type(x).__tensor_unflatten__({n: getattr(x, n) for n in names}, meta, x.size(), x.stride())
    return [names, describe(meta), rebuilt]


def check_deepcopy(name):
    x = subject(name)
    y = copy.deepcopy(x)
    return [y is x, y]


def check_save_load(name):
    buffer = io.BytesIO()
    torch.save(subject(name), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def check_cat_stack(name):
    x = subject(name)
    return [torch.cat([x, x]), torch.stack([x, x], dim=1)]


def check_max_dim(name):
    return list(subject(name).max(dim=1))


def check_split(name):
    return list(subject(name).split(2, dim=1))


def check_softmax(name):
    return torch.nn.functional.softmax(subject(name), dim=-1)


def check_where(name):
    x = subject(name)
    return torch.where(x > 0, x, torch.zeros_like(x))


def check_expand_contiguous(name):
    return subject(name)[:1].expand(3, 3).contiguous()


def check_new_zeros_float(name):
    x = subject(name)
    return [x.new_zeros(2), x.double(), x.float()]


def check_inplace_mul_no_grad(name):
    x = subject(name)
    with torch.no_grad():
        x.mul_(2)
    return x


def check_sgd_step(name):
    """Two SGD steps of a linear layer whose weight is the subject (an nn.Parameter of the subclass)."""
    linear = torch.nn.Linear(3, 2, bias=False)
    linear.weight = torch.nn.Parameter(SUBJECTS[name](plain((2, 3), seed=9)))
    optimizer = torch.optim.SGD(linear.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        optimizer.zero_grad()
        linear(plain((4, 3), seed=10)).pow(2).sum().backward()
        optimizer.step()
    return linear.weight


def check_adamw_step(name):
    """Two AdamW steps (amsgrad) of a linear layer whose weight is the subject."""
    linear = torch.nn.Linear(3, 2, bias=False)
    linear.weight = torch.nn.Parameter(SUBJECTS[name](plain((2, 3), seed=9)))
    optimizer = torch.optim.AdamW(linear.parameters(), lr=0.1, amsgrad=True)
    for _ in range(2):
        optimizer.zero_grad()
        linear(plain((4, 3), seed=10)).pow(2).sum().backward()
        optimizer.step()
    return linear.weight


def check_scalar_item(name):
    return subject(name).sum().item()


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}


# ------------------------------------------------------------------ modes and logs
def _op_names(lines) -> list[str]:
    """The aten ops of LoggingTensor's log lines ("$2: f32[3] = torch._ops.aten.mul.Tensor($0, $1)"): what
    is compared. The arguments are chainrule's op's own (docs/extending.md), a deliberate difference."""
    return [line.split(" = ", 1)[1].split("(", 1)[0] if " = " in line else line for line in lines]


def _logged(block):
    with helpers["capture_logs"]() as logs:
        result = block()
    return [_op_names(logs), result]


def scenario_logging_tensor_logs_arithmetic():
    x = helpers["LoggingTensor"](plain(seed=0))
    y = plain(seed=1)
    return _logged(lambda: (x * y + x).sum())


def scenario_logging_tensor_logs_matmul_relu():
    x = helpers["LoggingTensor"](plain(seed=0))
    return _logged(lambda: torch.relu(x @ x.t()))


def scenario_logging_tensor_logs_views():
    x = helpers["LoggingTensor"](plain(seed=0))
    return _logged(lambda: x.view(9)[2:].unsqueeze(0))


def scenario_logging_tensor_logs_backward():
    x = helpers["LoggingTensor"](plain(seed=0), requires_grad=True)

    def run():
        (x * x).sum().backward()
        return x.grad
    return _logged(run)


def scenario_logging_tensor_mode_logs():
    def run():
        a = plain(seed=0)
        return torch.matmul(a, a).sin().sum()
    with helpers["capture_logs_with_logging_tensor_mode"]() as logs:
        result = run()
    return [_op_names(logs), result]


def scenario_logging_tensor_mode_factories():
    with helpers["capture_logs_with_logging_tensor_mode"]() as logs:
        result = torch.ones(2, 3) + torch.zeros(2, 3)
    return [_op_names(logs), result]


def scenario_two_tensor_mode_factories():
    with helpers["TwoTensorMode"]():
        made = torch.ones(2, 2)
        result = made * 3
    return [made, result]


def scenario_two_tensor_mixed_types():
    a = _two(plain(seed=0))
    c = helpers["ConstantExtraMetadataTensor"](plain(seed=1))
    return a + c


def scenario_two_tensor_grad_is_two_tensor():
    a = plain(seed=0).requires_grad_()
    b = plain(seed=1).requires_grad_()
    t = helpers["TwoTensor"](a, b)
    out = (t.cos() * 2).sum()
    out.backward()
    return [out, a.grad, b.grad]


def scenario_two_tensor_as_leaf_grad():
    t = helpers["TwoTensor"](plain(seed=0), plain(seed=1), requires_grad=True)
    (t * t).sum().backward()
    return t.grad


def scenario_constant_metadata_kept():
    x = helpers["ConstantExtraMetadataTensor"](plain(seed=0))
    x.add_constant(3)
    y = x * 2
    return [x.constant_attribute, y.constant_attribute, list(x.get_complicated_metadata()),
            x.__tensor_flatten__()[1]]


def scenario_non_wrapper_extra_state():
    x = helpers["NonWrapperTensor"](plain(seed=0))
    y = x.exp()
    z = torch.add(y, 1)
    return [y.extra_state, z.extra_state, copy.deepcopy(z).extra_state]


def scenario_redispatch_call_log():
    log = []
    x = helpers["RedispatchTensor"](plain(seed=0), call_log=log)
    y = torch.sin(x) + x
    return [[(name, [t.__name__ for t in types]) for name, types in log], y]


def scenario_sparse_to_dense_roundtrip():
    s = helpers["SparseTensor"].from_dense(plain(seed=0).relu())
    return [s.sparse_to_dense(), s.values, s.indices]


def scenario_wrapper_validate_methods():
    class Overrides(helpers["WrapperTensorWithCustomSizes"]):
        def size(self, *dims):
            return super().size(*dims)
    try:
        Overrides(plain(seed=0))
    except RuntimeError as error:
        return str(error)
    return "accepted"


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}


# ------------------------------------------------------------------ one side
def _outcome(fn, *args):
    try:
        return {"ok": describe(fn(*args))}
    except Exception as error:  # noqa: BLE001  (every failure is a finding)
        return {"raised": type(error).__name__, "message": str(error).splitlines()[0] if str(error) else "",
                "where": traceback.format_exc().splitlines()[-3:]}


def run_side(lib: str, helper_directory: str, out: str, name_filter: str | None, source: str | None = None) -> None:
    load_library(lib, helper_directory, source)
    torch.manual_seed(0)
    results = {f"import/{name}": {"ok": import_errors.get(name, "loaded")} for name in HELPERS}
    for subject_name in SUBJECTS:
        for check_name, check in CHECKS.items():
            key = f"{subject_name}/{check_name}"
            if name_filter and name_filter not in key:
                continue
            results[key] = _outcome(check, subject_name)
    for scenario_name, scenario in SCENARIOS.items():
        key = f"scenario/{scenario_name}"
        if name_filter and name_filter not in key:
            continue
        results[key] = _outcome(scenario)
    with open(out, "wb") as handle:
        pickle.dump(results, handle)


# ------------------------------------------------------------------ comparison
def _difference(expected, got, path="") -> str | None:
    """Where ``got`` first departs from ``expected`` (None when they agree)."""
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        if not (isinstance(expected, np.ndarray) and isinstance(got, np.ndarray)):
            return f"{path}: {type(expected).__name__} vs {type(got).__name__}"
        if expected.shape != got.shape:
            return f"{path}: shape {expected.shape} vs {got.shape}"
        if expected.dtype != got.dtype:
            return f"{path}: dtype {expected.dtype} vs {got.dtype}"
        if expected.size and not np.allclose(expected, got, rtol=1e-5, atol=1e-6, equal_nan=True):
            return f"{path}: values differ by {np.nanmax(np.abs(expected.astype(float) - got.astype(float))):.3g}"
        return None
    if isinstance(expected, dict) and isinstance(got, dict):
        if set(expected) != set(got):
            return f"{path}: keys {sorted(expected)} vs {sorted(got)}"
        for k in expected:
            found = _difference(expected[k], got[k], f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{path}: length {len(expected)} vs {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            found = _difference(e, g, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(expected, float) and isinstance(got, float) and np.isclose(expected, got, rtol=1e-5, atol=1e-6):
        return None  # (a float32 sum's last bit depends on the order of its additions)
    if expected != got:
        return f"{path}: {str(expected)[:200]!r} vs {str(got)[:200]!r}"
    return None


def classify(key: str, torch_result: dict, chainrule_result: dict) -> dict:
    subject_name, _, check_name = key.partition("/")
    if (subject_name, check_name) in SKIPS:
        return {"kind": "skipped", "detail": SKIPS[(subject_name, check_name)]}
    if "raised" in torch_result:
        if "raised" in chainrule_result and chainrule_result["raised"] == torch_result["raised"]:
            same_message = chainrule_result["message"] == torch_result["message"]
            return {"kind": "both_raised", "detail": "" if same_message else
                    f"messages: {torch_result['message'][:160]!r} vs {chainrule_result['message'][:160]!r}"}
        return {"kind": "torch_raised", "detail": f"torch {torch_result['raised']}: {torch_result['message'][:160]}; "
                f"chainrule {chainrule_result.get('raised', 'answered')}"}
    if "raised" in chainrule_result:
        return {"kind": "chainrule_raised", "detail": f"{chainrule_result['raised']}: {chainrule_result['message'][:200]}",
                "where": chainrule_result["where"]}
    found = _difference(torch_result["ok"], chainrule_result["ok"])
    return {"kind": "differ" if found else "same", "detail": found or ""}


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def run(out: str, name_filter: str | None, source: str | None = None) -> dict:
    os.makedirs(out, exist_ok=True)
    helper_directory = _torch_helper_directory()
    sides = {}
    for lib in ("torch", "chainrule"):
        path = os.path.join(out, f"{lib}.pkl")
        command = [sys.executable, os.path.abspath(__file__), "side", "--lib", lib, "--helpers", helper_directory,
                   "--out", path] + (["--filter", name_filter] if name_filter else []) + \
            (["--src", source] if source and lib == "chainrule" else [])
        environment = dict(os.environ, PYTHONPATH="")
        subprocess.run(command, check=True, env=environment, cwd=ROOT)
        with open(path, "rb") as handle:
            sides[lib] = pickle.load(handle)
    results = {key: classify(key, sides["torch"][key], sides["chainrule"][key]) for key in sides["torch"]}
    counts = collections.Counter(r["kind"] for r in results.values())
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump({"counts": counts, "results": results,
                   "torch": _jsonable(sides["torch"]), "chainrule": _jsonable(sides["chainrule"])}, handle, indent=1,
                  default=str)
    lines = ["| case | kind | detail |", "|---|---|---|"]
    lines += [f"| {key} | {r['kind']} | {r['detail'][:200]} |" for key, r in results.items() if r["kind"] != "same"]
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write(f"{dict(counts)}\n\n" + "\n".join(lines) + "\n")
    return {"counts": dict(counts), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run both sides and compare")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--filter", default=None, help="only cases whose 'subject/check' contains this text")
    run_parser.add_argument("--src", default=None, help="the chainrule source tree to run (default: this checkout's src)")
    side_parser = commands.add_parser("side", help="(internal) one library's results")
    side_parser.add_argument("--lib", choices=("torch", "chainrule"), required=True)
    side_parser.add_argument("--helpers", required=True)
    side_parser.add_argument("--out", required=True)
    side_parser.add_argument("--filter", default=None)
    side_parser.add_argument("--src", default=None)
    args = parser.parse_args()
    if args.command == "side":
        run_side(args.lib, args.helpers, args.out, args.filter, args.src)
        return
    report = run(args.out, args.filter, args.src)
    for key, r in report["results"].items():
        if r["kind"] != "same":
            print(f"{r['kind']:17s} {key}: {r['detail'][:180]}")
    print(report["counts"])


if __name__ == "__main__":
    main()
