"""The one prepared check of chainrule's GPU path, for a machine with an NVIDIA GPU and CuPy.

    python scripts/gpu_check.py            # on the GPU machine, from the repository root
    python scripts/gpu_check.py --dry-run  # anywhere: the same code path on the CPU, small and quick

It needs no installation: it puts the repository's ``src`` (and the root, for the test registry's
fallback) on sys.path itself. It prints a short summary, section by section, and writes it to
``$OUT/gpu_check.txt`` (with the full results in ``$OUT/gpu_check.json``) when ``$OUT`` is set:

1. environment: Python, NumPy, CuPy and CUDA versions, the GPU, torch;
2. every op case of the registry on the device against the CPU, forward and gradients;
3. one training step of each model type (MLP, CNN, GRU, LSTM, transformer) on the device against
   the CPU: the loss and every parameter after the optimiser's step;
4. host transfers during one training step (the method is described in that section's docstring),
   then during a step with clip_grad_norm_ and each optimizer (and GradScaler): torch's own reads only;
5. the fused CuPy kernels against their NumPy references (the multi-tensor Adam too);
6. issue 12's later parts: the fused cross-entropy and layer-norm dispatch against the CPU, the
   multi-tensor Adam against one launch per parameter, randperm/multinomial drawn on the device
   with no host transfer, ``load``'s map_location, a float16 autocast step with GradScaler, and
   ``chainrule train --device cuda --nprocs 2`` (when mpi4py and scikit-learn are there);
7. what sessions 8-11 added, which no GPU had run: norms with a float16/bfloat16 input and float32
   parameters (mixed, as on the CPU; against torch CUDA when it is installed), float16 batch norm,
   autocast's dtypes for conv and the norms (torch CUDA's, when there), LSTM with proj_size (BPTT,
   double backward), packed batches, the recurrent argument checks, the recorded torch.normal
   overloads, out= on matmul/mm/bmm/addmm, second order (func.hessian, jacrev of jacrev,
   autograd.functional.hessian, vmap), split/chunk/unbind and writes through views, each against
   the CPU with its host transfers counted;
8. collectives on cuda tensors in an MPI world of size 1 (this process), a DDP step of a module
   on the GPU against the same step without DDP and on the CPU (both need mpi4py), and the CUDA
   random streams (cuda.manual_seed repeats device draws and leaves the CPU stream alone, ...);
9. the implicit-GEMM convolution kernels (``ops/_cuda_conv.py``, on by default) against the
   im2col path on the device and the CPU maps, forward and both gradients, for a table of
   geometries, then ``nn.Conv2d`` forward and backward with the switch on against off, and the
   bench conv2d timed with it off and on (torch beside it);
10. with two GPUs or more: each model's step on cuda:1 while GPU 0 is current, a model split over two;
11. the whole programs of tests/programs with ``torch.set_default_device('cuda')``, each judged
    against its calibration (exit status, printed line shapes, FINAL values inside their bands),
    every one on a GPU within ``--programs-seconds`` (those that fail as torch does last), a fixed
    few in a dry run;
12. the benchmark table (chainrule against torch CUDA, issue 12's workloads).

Each section catches its own exceptions and reports them; the script as a whole does not stop
until every section has run. With ``--dry-run`` the device is the CPU (or ``--device``; 'cuda' with ``--standin``), the
benchmark runs small shapes on the CPU, the registry is cut to ``--limit`` cases, and the kernel
section compares the references with themselves: it exercises the harness, not a GPU.
``--standin`` runs device='cuda' on the seam's NumPy-backed stand-in for CuPy
(``chainrule._backend.use_standin_cuda``), which refuses implicit host conversions and counts
every host transfer: ``--dry-run --standin --device cuda`` is the GPU code path without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "src", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
# the processes it starts (train --nprocs, MPI ranks) import this chainrule too, installed or not
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

import contextlib  # noqa: E402

import numpy as np  # noqa: E402

import chainrule  # noqa: E402
from chainrule import _backend  # noqa: E402
from chainrule.ops import _cuda_kernels as kernels  # noqa: E402

FAILURES_SHOWN = 12


class Report:
    """The printed summary, line by line, and the full results for the JSON file."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.results: dict = {}

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def section(self, title: str, run, *args) -> None:
        """Run one section; an exception ends the section, reported, never the script."""
        self.line(f"== {title}")
        start = time.perf_counter()
        try:
            run(self, *args)
        except Exception as exc:
            self.line(f"   SECTION FAILED: {_error(exc)}")
            for frame in traceback.format_tb(exc.__traceback__)[-3:]:
                self.line("   " + frame.strip().splitlines()[0])
            self.results.setdefault("section_failures", []).append({"section": title, "error": _error(exc)})
        self.line(f"   ({time.perf_counter() - start:.1f} s)")


def _error(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}"[:300]


def _cupy():
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---- 1. environment ----

def environment(report: Report, options) -> None:
    env = {"python": platform.python_version(), "numpy": np.__version__, "device": options.device,
           "dry_run": options.dry_run}
    cp = _cupy()
    if cp is not None:
        env["cupy"] = cp.__version__
        try:
            env["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
            env["cuda_driver"] = cp.cuda.runtime.driverGetVersion()
        except Exception as exc:
            env["cuda_error"] = _error(exc)
    env["chainrule_cuda_available"] = chainrule.cuda.is_available()
    if env["chainrule_cuda_available"]:
        props = chainrule.cuda.get_device_properties(0)
        env["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, sm_{props.major}{props.minor}"
        env["gpu_count"] = chainrule.cuda.device_count()
    torch = _torch()
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_cuda"] = torch.cuda.is_available() and torch.cuda.get_device_name(0)
    report.results["environment"] = env
    for key, value in env.items():
        report.line(f"   {key}: {value}")


# ---- 2. the registry, device against CPU ----

def registry_cases(limit: int | None) -> tuple[list, str]:
    """The op cases: the OpInfo registry when present, else the test suite's registry."""
    try:
        from chainrule.testing.opinfo import op_db
    except ImportError:
        from tests.ops.test_registry_compat import REGISTRY

        cases, source = list(REGISTRY), "tests.ops.test_registry_compat.REGISTRY"
    else:
        cases = [case for entry in op_db
                 for case in (entry.sample_cases() if hasattr(entry, "sample_cases") else entry.samples())]
        source = "chainrule.testing.opinfo.op_db"
    return (cases[:limit] if limit else cases), source


def _case_id(case) -> str:
    return getattr(case, "id", None) or getattr(case, "name", repr(case))


def _wants_grad(case, i: int, x) -> bool:
    grad = getattr(case, "grad", None)
    if grad is not None:
        return bool(grad[i])
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def _as_list(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _host(value) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def run_case(case, device: str) -> tuple[list, list]:
    """Forward outputs and input gradients (as NumPy arrays) of one case on ``device``, in
    float32; the gradient is that of Σ_k ⟨out_k, w_k⟩ for fixed random w_k."""
    chainrule.manual_seed(0)
    tensors, leaves = [], []
    for i, x in enumerate(case.inputs):
        if not isinstance(x, np.ndarray):
            tensors.append(x)
            continue
        array = np.array(x, dtype=np.float32 if x.dtype.kind == "f" else x.dtype, order="C")  # keeps 0-d
        t = chainrule.from_numpy(array).to(device)
        if _wants_grad(case, i, x):
            t.requires_grad_(True)
            leaves.append(t)
        tensors.append(t)
    # tensors the case makes inside fn (index tensors, masks, eye(n)) go to the device too, as the
    # inputs did; without this a case fails on a device mix-up of the harness, not of the op
    chainrule.set_default_device(None if device == "cpu" else device)
    try:
        outputs = _as_list(case.fn(chainrule, *tensors))
    finally:
        chainrule.set_default_device(None)
    total = None
    for k, out in enumerate(outputs):
        if getattr(out, "requires_grad", False) and out.dtype.is_floating_point:
            weight = np.random.default_rng(k).standard_normal(tuple(out.shape)).astype(np.float32)
            term = (out * chainrule.from_numpy(weight).to(device)).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    grads = [None if leaf.grad is None else _host(leaf.grad) for leaf in leaves]
    return [_host(out) for out in outputs], grads


def _compare(case, ours: list, reference: list, what: str) -> None:
    if len(ours) != len(reference):
        raise AssertionError(f"{what}: {len(ours)} values on the device, {len(reference)} on the CPU")
    rtol, atol = max(getattr(case, "rtol", 1e-4), 1e-4), max(getattr(case, "atol", 1e-5), 1e-5)
    for k, (o, r) in enumerate(zip(ours, reference)):
        if (o is None) != (r is None):
            raise AssertionError(f"{what} {k}: {'None' if o is None else 'a value'} on the device, "
                                 f"{'None' if r is None else 'a value'} on the CPU")
        if o is None:
            continue
        if o.shape != r.shape or o.dtype != r.dtype:
            raise AssertionError(f"{what} {k}: {o.dtype}{o.shape} on the device, {r.dtype}{r.shape} on the CPU")
        if o.dtype.kind in "fc":
            np.testing.assert_allclose(o, r, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{what} {k}")
        else:
            np.testing.assert_array_equal(o, r, err_msg=f"{what} {k}")


def registry(report: Report, options) -> None:
    cases, source = registry_cases(options.limit)
    report.line(f"   {len(cases)} cases from {source}, on {options.device} against cpu")
    passed, failures = 0, []
    deadline = time.perf_counter() + options.registry_seconds
    for ran, case in enumerate(cases):
        if time.perf_counter() > deadline:
            report.line(f"   stopped at the {options.registry_seconds:.0f} s budget after {ran} cases")
            break
        try:
            with warnings.catch_warnings():  # the registry's edge cases warn by design (empty var, ...)
                warnings.simplefilter("ignore")
                cpu_out, cpu_grads = run_case(case, "cpu")
        except Exception as exc:  # the CPU path itself fails: not a device problem, but say so
            failures.append((_case_id(case), "on the CPU already: " + _error(exc)))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out, grads = run_case(case, options.device)
            _compare(case, out, cpu_out, "output")
            _compare(case, grads, cpu_grads, "gradient of input")
            passed += 1
        except Exception as exc:
            failures.append((_case_id(case), _error(exc)))
    report.results["registry"] = {"source": source, "cases": len(cases), "passed": passed,
                                  "failed": len(failures), "failures": failures}
    report.line(f"   passed {passed}, failed {len(failures)}")
    # grouped by error, the first case of each named, so a few lines say where the GPU path breaks
    by_error: dict[str, list] = {}
    for name, error in failures:
        by_error.setdefault(error, []).append(name)
    ranked = sorted(by_error.items(), key=lambda item: -len(item[1]))
    for error, names in ranked[:FAILURES_SHOWN]:
        report.line(f"   FAIL {len(names):4d} × {error[:160]}  (first: {names[0]})")
    if len(ranked) > FAILURES_SHOWN:
        report.line(f"   ... and {len(ranked) - FAILURES_SHOWN} more distinct errors (all in gpu_check.json)")
    if failures:
        families = Counter(name.split("[")[0].split("_")[0] for name, _ in failures)  # conv2d_s2_p1 -> conv2d
        listed = ", ".join(f"{family} {count}" for family, count in sorted(families.items())[:50])
        report.line(f"   failing cases by op family: {listed}{' ...' if len(families) > 50 else ''}")


# ---- 3. a training step of each model type ----

def _models(nn):
    """name -> (build, input shape, optimiser name): small models, one of each family."""

    class Recurrent(nn.Module):
        def __init__(self, cell) -> None:
            super().__init__()
            self.rnn = cell(8, 16, batch_first=True)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    class Transformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # bias=False: the key projection's bias has a zero gradient in exact arithmetic (softmax
            # ignores a shift shared by a row's scores), so AdamW turns its rounding noise into a full
            # lr-sized step whose sign differs between devices (1e-3 apart after one step)
            self.encoder = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True,
                                                      bias=False)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            return self.head(self.encoder(x).mean(1))

    return {
        "MLP": (lambda: nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10)), (8, 20), "SGD"),
        "CNN": (lambda: nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                      nn.Linear(8 * 8 * 8, 10)), (4, 1, 16, 16), "SGD"),
        "GRU": (lambda: Recurrent(nn.GRU), (4, 5, 8), "Adam"),
        "LSTM": (lambda: Recurrent(nn.LSTM), (4, 5, 8), "Adam"),
        "Transformer": (Transformer, (4, 6, 16), "AdamW"),
    }


def training_step(build, shape, optimizer_name: str, device: str, step_hook=None) -> tuple[float, dict]:
    """One step of cross-entropy training on ``device``; returns the loss and the parameters after
    the step. ``step_hook`` (if given) wraps the step, e.g. to count host transfers in it."""
    chainrule.manual_seed(0)
    model = build().to(device)
    rng = np.random.default_rng(0)
    x = chainrule.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(device)
    y = chainrule.from_numpy(rng.integers(0, 10, shape[0])).to(device)
    optimizer = getattr(chainrule.optim, optimizer_name)(model.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        loss = chainrule.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    loss = step_hook(step) if step_hook is not None else step()
    return float(loss.item()), {name: _host(p) for name, p in model.named_parameters()}


def _model_steps(report: Report, device: str, where: str = "", also_ok=lambda: True) -> dict:
    """One training step of each model type on ``device`` against the CPU, a line each; ``where``
    is printed after the model's name, ``also_ok()`` is a further condition of success."""
    outcome = {}
    for name, (build, shape, optimizer_name) in _models(chainrule.nn).items():
        try:
            cpu_loss, cpu_params = training_step(build, shape, optimizer_name, "cpu")
            loss, params = training_step(build, shape, optimizer_name, device)
            worst = max(float(np.max(np.abs(params[k] - cpu_params[k]))) for k in cpu_params)
            ok = abs(loss - cpu_loss) <= 1e-4 * max(1.0, abs(cpu_loss)) and worst <= 1e-4 and also_ok()
            outcome[name] = {"ok": ok, "loss": loss, "cpu_loss": cpu_loss, "max_param_diff": worst}
            report.line(f"   {'ok  ' if ok else 'FAIL'} {name}{where} ({optimizer_name}): loss {loss:.6f} vs cpu "
                        f"{cpu_loss:.6f}, parameters differ by at most {worst:.2e}")
        except Exception as exc:
            outcome[name] = {"ok": False, "error": _error(exc)}
            report.line(f"   FAIL {name}{where}: {_error(exc)}")
    return outcome


def models(report: Report, options) -> None:
    report.results["models"] = _model_steps(report, options.device)


# ---- 4. host transfers in a training step ----

class HostTransferCounter:
    """Counts the calls that copy an array of ``array_type`` (cupy.ndarray on a GPU) to the host
    while active.

    CuPy has no hook for its device-to-host copies (``ndarray.get``, ``item``, ``tolist``,
    ``__float__``... are C methods of an extension type, and cannot be wrapped). So the counter
    watches calls from Python code instead: on Python ≥ 3.12 through ``sys.monitoring``'s CALL
    event, which sees every call with its callable and first argument, counting ``float/int/
    bool/complex(a)``, ``numpy.asarray/array(a)``, ``cupy.asnumpy(a)`` and ``a.get/item/tolist()``
    for an array ``a`` of that type; on older Pythons through ``sys.setprofile``'s C-call events
    (method calls only). What neither sees is a conversion CPython makes without a call in
    Python code (``if a:``, ``range(a)``, ``f"{a}"``); the CPU stand-in array of the test suite,
    which refuses every implicit conversion, covers those in CI.
    """

    CONVERTERS_BY_NAME = {"get", "item", "tolist", "asnumpy", "__float__", "__int__", "__bool__", "__array__"}

    def __init__(self, array_type) -> None:
        self.array_type = array_type
        self.calls: list[str] = []
        self.converters = {float, int, bool, complex}
        if array_type is not np.ndarray:  # numpy.asarray of a NumPy array copies nothing
            self.converters |= {np.asarray, np.array, np.asanyarray}

    def _converts(self, func, arg0) -> bool:
        if isinstance(arg0, self.array_type):
            return func in self.converters or getattr(func, "__name__", None) in self.CONVERTERS_BY_NAME
        owner = getattr(func, "__self__", None)
        return isinstance(owner, self.array_type) and getattr(func, "__name__", None) in self.CONVERTERS_BY_NAME

    def _record(self, func) -> None:
        frame = sys._getframe(2)  # the monitored code that made the call (under on_call/on_event)
        self.calls.append(f"{getattr(func, '__name__', func)} at {frame.f_code.co_filename}:{frame.f_lineno}")

    def run(self, step):
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:
            return self._run_monitored(monitoring, step)
        return self._run_profiled(step)

    def _run_monitored(self, monitoring, step):
        tool = monitoring.PROFILER_ID
        monitoring.use_tool_id(tool, "chainrule gpu_check")

        def on_call(code, offset, func, arg0):
            if self._converts(func, arg0):
                self._record(func)

        try:
            monitoring.register_callback(tool, monitoring.events.CALL, on_call)
            monitoring.set_events(tool, monitoring.events.CALL)
            return step()
        finally:
            monitoring.set_events(tool, 0)
            monitoring.register_callback(tool, monitoring.events.CALL, None)
            monitoring.free_tool_id(tool)

    def _run_profiled(self, step):
        def on_event(frame, event, arg):
            if event == "c_call" and self._converts(arg, None):
                self._record(arg)

        previous = sys.getprofile()
        sys.setprofile(on_event)
        try:
            return step()
        finally:
            sys.setprofile(previous)


def _device_module(device: str):
    """The array module behind ``device``: CuPy or the seam's stand-in for 'cuda', else None."""
    if not device.startswith("cuda"):
        return None
    cuda_module = getattr(_backend, "cuda_module", None)
    return cuda_module() if cuda_module is not None else _cupy()


def host_transfers(report: Report, options) -> None:
    xp = _device_module(options.device)
    array_type = xp.ndarray if xp is not None else np.ndarray
    # the stand-in counts every copy itself, implicit conversions included
    standin_count = getattr(xp, "transfers", None)
    method = "sys.monitoring CALL" if hasattr(sys, "monitoring") else "sys.setprofile c_call (method calls only)"
    report.line(f"   counting conversions of {array_type.__module__}.{array_type.__name__} to the host ({method}"
                f"{'; and the stand-in counter' if standin_count else ''})")
    counts = {}
    for name, (build, shape, optimizer_name) in _models(chainrule.nn).items():
        counter = HostTransferCounter(array_type)
        standin_counts = []

        def counted_step(step, counter=counter, standin_counts=standin_counts):
            start = standin_count() if standin_count else 0
            loss = counter.run(step)
            if standin_count:
                standin_counts.append(standin_count() - start)
            return loss

        try:
            training_step(build, shape, optimizer_name, options.device, step_hook=counted_step)
        except Exception as exc:
            counts[name] = {"error": _error(exc)}
            report.line(f"   FAIL {name}: {_error(exc)}")
            continue
        counts[name] = {"transfers": len(counter.calls), "where": counter.calls[:20]}
        where = f" (first: {counter.calls[0]})" if counter.calls else ""
        if standin_counts:
            counts[name]["standin_transfers"] = standin_counts[0]
            where += f"; the stand-in counted {standin_counts[0]}"
        report.line(f"   {name}: {len(counter.calls)} host transfers in one step{where}")
    counts["clipped steps"] = _clipped_step_transfers(report, options.device, array_type, standin_count)
    report.results["host_transfers"] = counts


# (optimizer, keywords, host reads per step that torch's own algorithm makes for the two parameters)
CLIPPED_STEP_OPTIMIZERS = [
    ("SGD", dict(lr=0.1, momentum=0.9), 0), ("Adam", dict(lr=0.01), 0), ("Adam", dict(lr=0.01, foreach=True), 0),
    ("Adam", dict(lr=0.01, fused=True), 0), ("Adam", dict(lr=0.01, capturable=True), 0), ("AdamW", dict(lr=0.01), 0),
    ("RMSprop", dict(lr=0.01), 0), ("Adagrad", dict(lr=0.01), 0), ("Adadelta", dict(lr=1.0), 0),
    ("Adamax", dict(lr=0.01), 0), ("NAdam", dict(lr=0.01), 0), ("RAdam", dict(lr=0.01), 0), ("ASGD", dict(lr=0.01), 0),
    ("Rprop", dict(lr=0.01), 0),
    ("Adafactor", dict(lr=0.01), 4),  # torch's too: param.norm().item() and update.norm().item() per parameter
    ("GradScaler+AdamW", dict(lr=0.01), 1),  # torch's step() reads found_inf once per device
]


def _clipped_step(device: str, name: str, kwargs: dict):
    """A linear model's second training step with clip_grad_norm_ and optimizer ``name`` (the first
    made the optimizer's state), as a function to count; GradScaler+X runs X under a GradScaler."""
    rng = np.random.default_rng(0)
    weight = chainrule.from_numpy(rng.standard_normal((5, 4)).astype(np.float32)).to(device).requires_grad_()
    bias = chainrule.from_numpy(rng.standard_normal(4).astype(np.float32)).to(device).requires_grad_()
    x = chainrule.from_numpy(rng.standard_normal((6, 5)).astype(np.float32)).to(device)
    scaled = name.startswith("GradScaler+")
    optimizer = getattr(chainrule.optim, name.removeprefix("GradScaler+"))([weight, bias], **kwargs)
    scaler = chainrule.amp.GradScaler(device.split(":")[0], init_scale=1024.0) if scaled else None

    def step():
        optimizer.zero_grad()
        loss = ((x @ weight + bias).tanh() ** 2).mean()
        if scaler is None:
            loss.backward()
            chainrule.nn.utils.clip_grad_norm_([weight, bias], 0.05)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            chainrule.nn.utils.clip_grad_norm_([weight, bias], 0.05)
            scaler.step(optimizer)
            scaler.update()
        return loss

    step()
    return step


def _clipped_step_transfers(report: Report, device: str, array_type, standin_count) -> dict:
    """clip_grad_norm_ then each optimizer's step: torch's own host reads and no more (judged on a
    device only: on the CPU every array is a host array)."""
    on_device = device.startswith("cuda")
    counts = {}
    for name, kwargs, torchs in CLIPPED_STEP_OPTIMIZERS:
        if kwargs.get("capturable") and not on_device:
            continue  # torch refuses a capturable step off the GPU
        label = f"clip_grad_norm_ + {name}" + "".join(f" {key}" for key in kwargs if key != "lr")
        try:
            step = _clipped_step(device, name, kwargs)
            counter = HostTransferCounter(array_type)
            start = standin_count() if standin_count else 0
            counter.run(step)
            copies = standin_count() - start if standin_count else len(counter.calls)
        except Exception as exc:
            counts[label] = {"error": _error(exc)}
            report.line(f"   FAIL {label}: {_error(exc)}")
            continue
        counts[label] = {"transfers": copies, "torch": torchs, "where": counter.calls[:8]}
        verdict = "FAIL " if on_device and copies > torchs else ""
        where = f" (first: {counter.calls[0]})" if verdict and counter.calls else ""
        report.line(f"   {verdict}{label}: {copies} host transfers in one step, torch's {torchs}{where}")
    return counts


# ---- 5. fused kernels against their references ----

class _ReferencesAsKernels:
    """The references under the kernels' names, for the dry run's harness check."""

    def __getattr__(self, name):
        return getattr(kernels, name + "_reference")


def _kernel_checks(impl, xp, asnumpy) -> dict:
    """Max relative error of each kernel against its reference on fixed inputs."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((256, 1000)) * 4).astype(np.float32)
    target = rng.integers(0, 1000, 256)
    target[::9] = -100
    w, b = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    grad = rng.standard_normal(x.shape).astype(np.float32)

    def err(got, want) -> float:
        got, want = asnumpy(got), np.asarray(want)
        return float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))

    gx = xp.asarray(x)
    errors = {"softmax": err(impl.softmax(gx, -1), kernels.softmax_reference(x, -1)),
              "log_softmax": err(impl.log_softmax(gx, -1), kernels.log_softmax_reference(x, -1))}
    loss, lse = impl.cross_entropy(gx, xp.asarray(target))
    ref_loss, ref_lse = kernels.cross_entropy_reference(x, target)
    errors["cross_entropy"] = max(err(loss, ref_loss), err(lse, ref_lse))
    errors["cross_entropy_backward"] = err(
        impl.cross_entropy_backward(xp.asarray(np.float32(1.0)), gx, xp.asarray(target), lse),
        kernels.cross_entropy_backward_reference(np.float32(1.0), x, target, ref_lse))
    y, mean, rstd = impl.layer_norm(gx, 1, xp.asarray(w), xp.asarray(b))
    ref = kernels.layer_norm_reference(x, 1, w, b)
    errors["layer_norm"] = max(err(got, want) for got, want in zip((y, mean, rstd), ref))
    got = impl.layer_norm_backward(xp.asarray(grad), gx, mean, rstd, xp.asarray(w), True)
    want = kernels.layer_norm_backward_reference(grad, x, ref[1], ref[2], w, True)
    errors["layer_norm_backward"] = max(err(g, r) for g, r in zip(got, want))
    for approximate in ("none", "tanh"):
        errors[f"gelu_{approximate}"] = err(impl.gelu(gx, approximate), kernels.gelu_reference(x, approximate))
        errors[f"gelu_backward_{approximate}"] = err(impl.gelu_backward(xp.asarray(grad), gx, approximate),
                                                     kernels.gelu_backward_reference(grad, x, approximate))
    params = [x[:4].copy(), w.copy()]
    moments = [[np.zeros_like(p) for p in params] for _ in range(3)]
    on_device = [xp.asarray(p) for p in params]
    device_moments = [[xp.zeros_like(p) for p in on_device] for _ in range(3)]
    adam = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True)
    for step in (1, 2, 3):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        kernels.adam_step_reference(params, grads, moments[0], moments[1], [step] * 2,
                                    max_exp_avg_sqs=moments[2], **adam)
        impl.adam_step(on_device, [xp.asarray(g) for g in grads], device_moments[0], device_moments[1], [step] * 2,
                       max_exp_avg_sqs=device_moments[2], **adam)
    errors["adam_step"] = max(err(got, want) for got, want in zip(on_device, params))
    # the multi-tensor Adam: one launch over tensors of several sizes, an empty one too
    params = [x[:4].copy(), w.copy(), x[0, :1].copy(), np.zeros(0, np.float32)]
    moments = [[np.zeros_like(p) for p in params] for _ in range(2)]
    on_device = [xp.asarray(p) for p in params]
    device_moments = [[xp.zeros_like(p) for p in on_device] for _ in range(2)]
    for step in (1, 2, 3):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        kernels.adam_step_reference(params, grads, moments[0], moments[1], [step] * 4, **adam)
        impl.adam_multi_tensor_step(on_device, [xp.asarray(g) for g in grads], device_moments[0], device_moments[1],
                                    [step] * 4, **adam)
    errors["adam_multi_tensor_step"] = max(err(got, want) for got, want in zip(on_device[:3], params[:3]))
    return errors


def fused_kernels(report: Report, options) -> None:
    cp = _cupy()
    if cp is not None and chainrule.cuda.is_available() and not options.dry_run:
        impl, xp, asnumpy, label = kernels, cp, cp.asnumpy, "CuPy kernels"
    else:
        impl, xp, asnumpy, label = _ReferencesAsKernels(), np, np.asarray, "references against themselves (no GPU)"
    errors = _kernel_checks(impl, xp, asnumpy)
    tolerance = 1e-4
    report.results["kernels"] = {"compared": label, "max_relative_error": errors}
    bad = {name: e for name, e in errors.items() if not e <= tolerance}
    report.line(f"   {label}: {len(errors) - len(bad)} of {len(errors)} within {tolerance:g}; "
                f"worst {max(errors, key=errors.get)} {max(errors.values()):.1e}")
    for name, e in bad.items():
        report.line(f"   FAIL {name}: max relative error {e:.2e}")


# ---- 6. issue 12's later parts ----

def _check(report: Report, outcome: dict, name: str, check) -> None:
    """Run one check: it returns a short detail, or raises (AssertionError: a wrong result)."""
    try:
        detail = check()
        outcome[name] = {"ok": True, "detail": detail}
        report.line(f"   ok   {name}: {detail}")
    except Exception as exc:
        outcome[name] = {"ok": False, "error": _error(exc)}
        report.line(f"   FAIL {name}: {_error(exc)}")


def _transfers_during(device: str, fn):
    """fn()'s result and the host copies of device arrays it made (as section 4 counts them)."""
    xp = _device_module(device)
    counter = HostTransferCounter(xp.ndarray if xp is not None else np.ndarray)
    standin_count = getattr(xp, "transfers", None)
    start = standin_count() if standin_count else 0
    out = counter.run(fn)
    return out, max(len(counter.calls), (standin_count() - start) if standin_count else 0)


def later_parts(report: Report, options) -> None:
    """The fused cross-entropy and layer-norm dispatch, the multi-tensor Adam, random draws on the
    device, load's map_location, float16 autocast, and train --device --nprocs."""
    device = options.device
    F = chainrule.nn.functional
    rng = np.random.default_rng(0)
    outcome: dict = {}

    def fused_losses():
        x = rng.standard_normal((64, 100)).astype(np.float32)
        target = rng.integers(0, 100, 64)
        target[::5] = -100
        results = []
        for dev in ("cpu", device):
            logits = chainrule.tensor(x, device=dev, requires_grad=True)
            norm = chainrule.nn.LayerNorm(100).to(dev)
            loss = F.cross_entropy(norm(logits), chainrule.tensor(target, device=dev))
            loss.backward()
            results.append((loss.item(), _host(logits.grad), type(loss.grad_fn).__name__))
        (cpu_loss, cpu_grad, _), (loss, grad, node) = results
        diff = float(np.max(np.abs(grad - cpu_grad)))
        assert abs(loss - cpu_loss) <= 1e-5 * max(1.0, abs(cpu_loss)) and diff <= 1e-5, (loss, cpu_loss, diff)
        return f"layer_norm + cross_entropy: loss {loss:.6f} vs cpu {cpu_loss:.6f}, gradient within {diff:.1e} ({node})"

    def multi_tensor_adam():
        states = []
        inputs = rng.standard_normal((16, 32)).astype(np.float32)
        for foreach in (None, False):
            chainrule.manual_seed(0)
            model = chainrule.nn.Sequential(chainrule.nn.Linear(32, 64), chainrule.nn.ReLU(),
                                            chainrule.nn.Linear(64, 10)).to(device)
            optimizer = chainrule.optim.AdamW(model.parameters(), lr=0.01, foreach=foreach)
            x = chainrule.tensor(inputs, device=device)
            for _ in range(3):
                optimizer.zero_grad()
                model(x).square().mean().backward()
                optimizer.step()
            states.append([_host(p) for p in model.parameters()])
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(*states))
        assert diff <= 1e-6, diff
        return f"one launch per step (foreach default) equals one per parameter (foreach=False) within {diff:.1e}"

    def random_on_device():
        chainrule.cuda.manual_seed(0)
        weights = chainrule.tensor([[1.0, 0.0, 3.0]], device=device)
        (perm, draws), copies = _transfers_during(device, lambda: (
            chainrule.randperm(10000, device=device), chainrule.multinomial(weights, 30000, replacement=True)))
        assert sorted(_host(perm).tolist()) == list(range(10000))
        frequencies = np.bincount(_host(draws)[0], minlength=3) / 30000
        assert np.allclose(frequencies, [0.25, 0.0, 0.75], atol=0.02), frequencies
        assert copies == 0, f"{copies} host transfers"
        return f"randperm a permutation, multinomial frequencies {np.round(frequencies, 3).tolist()}, 0 host transfers"

    def map_location():
        import io

        buffer = io.BytesIO()
        chainrule.save({"w": chainrule.arange(4.0, device=device)}, buffer)
        restored = chainrule.load(io.BytesIO(buffer.getvalue()))["w"]
        on_cpu = chainrule.load(io.BytesIO(buffer.getvalue()), map_location="cpu")["w"]
        mapped = chainrule.load(io.BytesIO(buffer.getvalue()), map_location={str(restored.device): "cpu"})["w"]
        assert restored.device.type == "cuda" and on_cpu.device.type == "cpu" and mapped.device.type == "cpu"
        assert _host(restored).tolist() == on_cpu.tolist() == [0.0, 1.0, 2.0, 3.0]
        return f"restored on {restored.device}; map_location 'cpu' and a dict give the CPU"

    def autocast_step(lower=chainrule.float16):
        chainrule.manual_seed(0)
        model = chainrule.nn.Sequential(chainrule.nn.Linear(64, 128), chainrule.nn.ReLU(),
                                        chainrule.nn.Linear(128, 10)).to(device)
        x = chainrule.tensor(rng.standard_normal((32, 64)).astype(np.float32), device=device)
        y = chainrule.tensor(rng.integers(0, 10, 32), device=device)
        with chainrule.no_grad():
            full = F.cross_entropy(model(x), y).item()
        scaler = chainrule.amp.GradScaler("cuda")
        optimizer = chainrule.optim.SGD(model.parameters(), lr=0.1)
        with chainrule.autocast("cuda", dtype=lower):
            hidden = model[0](x)
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        assert hidden.dtype == lower and loss.dtype == chainrule.float32, (hidden.dtype, loss.dtype)
        assert all(p.grad.dtype == chainrule.float32 for p in model.parameters())
        tolerance = 1e-2 if lower is chainrule.float16 else 3e-2  # bfloat16 keeps 8 bits of mantissa
        assert abs(loss.item() - full) <= tolerance * max(1.0, abs(full)), (loss.item(), full)
        return (f"linear in {lower}, loss in float32 ({loss.item():.4f} vs {full:.4f} in float32), "
                "float32 gradients")

    def train_nprocs():
        import importlib.util
        import tempfile

        if options.dry_run:
            return "skipped in a dry run (two MPI ranks take ~20 s; tests/device/test_train_nprocs_device.py runs them)"
        if importlib.util.find_spec("mpi4py") is None or importlib.util.find_spec("sklearn") is None:
            return "skipped: needs mpi4py and scikit-learn"
        from chainrule.cli import main as cli

        saved = os.environ.get("CHAINRULE_STANDIN_CUDA")
        if options.standin:
            os.environ["CHAINRULE_STANDIN_CUDA"] = "1"  # the ranks' 'cuda' is the stand-in too
        with tempfile.TemporaryDirectory() as out, contextlib.ExitStack() as restore:
            restore.callback(lambda: os.environ.pop("CHAINRULE_STANDIN_CUDA", None) if saved is None
                             else os.environ.__setitem__("CHAINRULE_STANDIN_CUDA", saved))
            code = cli(["train", "--model", "mlp", "--limit", "200", "--epochs", "1", "--device", device,
                        "--nprocs", "2", "--out", out])
            assert code == 0, f"exit status {code}"
            state = chainrule.load(Path(out) / "model.safetensors")["state_dict"]
        return f"2 ranks trained on {device}; the checkpoint's tensors load back on {next(iter(state.values())).device}"

    checks = {"fused cross-entropy and layer norm": fused_losses, "multi-tensor Adam": multi_tensor_adam,
              "randperm and multinomial on the device": random_on_device, "load map_location": map_location,
              "autocast float16 step": autocast_step,
              "autocast bfloat16 step": lambda: autocast_step(chainrule.bfloat16),
              "train --nprocs 2 on the device": train_nprocs}
    if not device.startswith("cuda"):
        checks = {k: v for k, v in checks.items() if k in ("fused cross-entropy and layer norm", "multi-tensor Adam")}
        report.line(f"   device {device}: the device-only checks are skipped")
    for name, check in checks.items():
        _check(report, outcome, name, check)
    report.results["later_parts"] = outcome


# ---- 7. what sessions 8-11 added, on the device ----

def _torch_cuda():
    """torch when it has a GPU (the GPU machine's torch CUDA build), else None."""
    torch = _torch()
    return torch if torch is not None and torch.cuda.is_available() else None


def _max_difference(ours: list, reference: list) -> float:
    """The largest absolute difference over pairs of arrays of one shape (inf for a shape mismatch)."""
    worst = 0.0
    for a, b in zip(ours, reference, strict=True):
        if a.shape != b.shape:
            return float("inf")
        if a.size:
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
    return worst


def _norm_step(lib, name: str, dtype: str, device: str, x: np.ndarray):
    """One forward and backward of a norm whose parameters are float32 and whose input is ``dtype``:
    the output's dtype and [output, input gradient, parameter gradients, running statistics]."""
    nn = lib.nn
    module = {"BatchNorm2d": lambda: nn.BatchNorm2d(6), "BatchNorm2d eval": lambda: nn.BatchNorm2d(6).eval(),
              "LayerNorm": lambda: nn.LayerNorm((3, 5)), "GroupNorm": lambda: nn.GroupNorm(3, 6)}[name]()
    with lib.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype == lib.float32:  # away from the 1/0 defaults, the same in both libraries
                t.copy_(lib.tensor(np.linspace(0.5, 1.5, t.numel(), dtype=np.float32).reshape(tuple(t.shape))))
    module = module.to(device)
    xt = lib.tensor(x, device=device).to(getattr(lib, dtype)).requires_grad_(True)
    y = module(xt)
    (y.float() * lib.tensor(np.linspace(-1, 1, x.size, dtype=np.float32).reshape(x.shape), device=device)).sum().backward()
    tensors = [y, xt.grad, *(p.grad for p in module.parameters()), *(b for b in module.buffers() if b.dtype.is_floating_point)]
    return str(y.dtype).split(".")[-1], [t.detach().float().cpu().numpy() for t in tensors]


def later_features(report: Report, options) -> None:
    """Features added in sessions 8-11 that the GPU had not run: norms with a float16/bfloat16 input
    and float32 parameters (mixed, as on the CPU; against torch CUDA when it is here), float16
    batch norm, autocast's dtypes for conv and the norms, LSTM with proj_size (BPTT, packed
    batches, double backward), the recurrent argument checks, the recorded torch.normal overloads,
    out= on the matmul family, second order (hessian, jacrev of jacrev, vmap, functional.hessian),
    split/chunk/unbind's multi-output node and writes through views; each against the CPU."""
    device = options.device
    outcome: dict = {}
    if not device.startswith("cuda"):
        report.line(f"   device {device}: these checks need a cuda device (or --standin); skipped")
        report.results["later_features"] = outcome
        return
    torch_cuda = _torch_cuda()
    rng = np.random.default_rng(0)
    image = rng.standard_normal((4, 6, 3, 5)).astype(np.float32)

    def mixed_norms(dtype):
        worst, versus_torch = 0.0, []
        for name in ("BatchNorm2d", "BatchNorm2d eval", "LayerNorm", "GroupNorm"):
            cpu_dtype, cpu = _norm_step(chainrule, name, dtype, "cpu", image)
            out_dtype, ours = _norm_step(chainrule, name, dtype, device, image)
            assert out_dtype == cpu_dtype == dtype, f"{name}: {out_dtype} on the device, {cpu_dtype} on the cpu"
            worst = max(worst, _max_difference(ours, cpu))
            if torch_cuda is None:
                continue
            try:
                torch_dtype, theirs = _norm_step(torch_cuda, name, dtype, "cuda", image)
            except Exception as exc:  # torch's CUDA may refuse a mix its CPU takes: say so
                versus_torch.append(f"{name} torch CUDA raises {_error(exc)[:80]}")
                continue
            assert torch_dtype == out_dtype, f"{name}: torch CUDA returns {torch_dtype}, chainrule {out_dtype}"
            versus_torch.append(f"{name} {_max_difference(ours, theirs):.1e}")
        assert worst <= 5e-2, worst
        against = ("; against torch CUDA: " + ", ".join(versus_torch)) if versus_torch else "; no torch CUDA here"
        return f"BatchNorm (train, eval), LayerNorm, GroupNorm out in {dtype}, within {worst:.1e} of the cpu{against}"

    def half_batch_norm():
        results = []
        for dev in ("cpu", device):
            module = chainrule.nn.BatchNorm2d(6).to(dev).half()
            x = chainrule.tensor(image, device=dev).half().requires_grad_(True)
            y = module(x)
            y.float().square().sum().backward()
            assert y.dtype == x.grad.dtype == module.weight.grad.dtype == chainrule.float16
            results.append([_host(t).astype(np.float32) for t in (y, x.grad, module.weight.grad, module.running_var)])
        # the CPU rounds where torch's CPU kernels round (mean and 1/σ kept in float16); the device
        # computes in float32 and rounds once, as torch's CUDA kernels: a few float16 ulps apart
        diff = max(float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))) for a, b in zip(*results) if a.size)
        assert diff <= 5e-2, diff
        return f"output, gradients and running_var in float16, within {diff:.1e} (relative past 1) of the cpu"

    def autocast_norms():
        def dtypes(lib, dev, count=lambda step: (step(), 0)):
            lib.manual_seed(0)
            nn = lib.nn
            modules = [m.to(dev) for m in (nn.Conv2d(6, 4, 3), nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.LayerNorm(4))]
            x = lib.tensor(image, device=dev)

            def step():
                conv, batch, group, layer = modules
                with lib.autocast("cuda"):
                    h = conv(x)
                    b = batch(h)
                    g, out = group(b), layer(b.transpose(1, 3))
                (g.sum() + out.sum()).backward()
                return h, b, g, out

            outputs, copies = count(step)
            grads = {str(p.grad.dtype).split(".")[-1] for m in modules for p in m.parameters()}
            return ([str(t.dtype).split(".")[-1] for t in outputs], grads), copies

        ours, copies = dtypes(chainrule, device, lambda step: _transfers_during(device, step))
        expected = (["float16", "float16", "float32", "float32"], {"float32"})
        source = "torch's lists"
        if torch_cuda is not None:
            expected, source = dtypes(torch_cuda, "cuda")[0], "torch CUDA"
        assert ours == expected and copies == 0, f"{ours} where {source} give {expected}; {copies} host transfers"
        return f"conv, batch norm, group norm, layer norm in {ours[0]} (as {source}), float32 gradients, " \
               f"{copies} host transfers"

    def lstm_projection():
        x = rng.standard_normal((6, 4, 3)).astype(np.float32)
        results, copies = [], 0
        for dev in ("cpu", device):
            chainrule.manual_seed(0)
            lstm = chainrule.nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True).to(dev)
            xt = chainrule.tensor(x, device=dev, requires_grad=True)

            def step(lstm=lstm, xt=xt):
                output, (h_n, c_n) = lstm(xt)
                (grad_x,) = chainrule.autograd.grad(output.sin().sum() + (c_n * c_n).sum(), xt, create_graph=True)
                (grad_x.square().sum() + h_n.sum()).backward()
                return [output, h_n, c_n, grad_x, xt.grad, *(p.grad for p in lstm.parameters())]

            out, made = _transfers_during(dev, step) if dev != "cpu" else (step(), 0)
            copies += made
            results.append([_host(t) for t in out])
        diff = _max_difference(results[1], results[0])
        assert diff <= 1e-4 and copies == 0, (diff, copies)
        return f"2 layers, bidirectional, proj_size 2: outputs, states, gradients and double backward within " \
               f"{diff:.1e} of the cpu, {copies} host transfers"

    def packed_layers():
        lengths = [3, 5, 1, 4]
        x = rng.standard_normal((4, 5, 3)).astype(np.float32)
        from chainrule.nn.utils import rnn as rnn_utils

        differences = []
        for name, build in (("LSTM(proj_size=2)", lambda: chainrule.nn.LSTM(3, 5, proj_size=2, batch_first=True,
                                                                             bidirectional=True)),
                            ("GRU", lambda: chainrule.nn.GRU(3, 5, num_layers=2, batch_first=True))):
            results = []
            for dev in ("cpu", device):
                chainrule.manual_seed(0)
                module = build().to(dev)
                xt = chainrule.tensor(x, device=dev, requires_grad=True)
                packed = rnn_utils.pack_padded_sequence(xt, lengths, batch_first=True, enforce_sorted=False)
                output, _ = module(packed)
                padded, _ = rnn_utils.pad_packed_sequence(output, batch_first=True)
                padded.sin().sum().backward()
                results.append([_host(padded), _host(xt.grad), *(_host(p.grad) for p in module.parameters())])
            differences.append(f"{name} {_max_difference(results[1], results[0]):.1e}")
            assert _max_difference(results[1], results[0]) <= 1e-4, differences[-1]
        return f"on a packed batch, the largest difference from the cpu: {', '.join(differences)}"

    def recurrent_checks():
        cases = {"LSTM h0 too wide": lambda: chainrule.nn.LSTM(3, 4)(chainrule.zeros(2, 1, 3), (
                     chainrule.zeros(1, 1, 5), chainrule.zeros(1, 1, 4))),
                 "GRU input of float64": lambda: chainrule.nn.GRU(3, 4)(chainrule.zeros(2, 1, 3, dtype=chainrule.float64)),
                 "LSTMCell c0 of another batch": lambda: chainrule.nn.LSTMCell(3, 4)(chainrule.zeros(2, 3), (
                     chainrule.zeros(2, 4), chainrule.zeros(3, 4))),
                 "RNN input of the wrong width": lambda: chainrule.nn.RNN(3, 4)(chainrule.zeros(2, 1, 5))}
        for name, case in cases.items():
            raised = []
            for dev in ("cpu", device):
                chainrule.set_default_device(None if dev == "cpu" else dev)
                try:
                    case()
                    raised.append(None)
                except Exception as exc:
                    raised.append(f"{type(exc).__name__}: {exc}")
                finally:
                    chainrule.set_default_device(None)
            assert raised[0] is not None and raised[0] == raised[1], f"{name}: {raised}"
        return f"{len(cases)} bad calls raise on the device what they raise on the cpu"

    def normal_overloads():
        mean = chainrule.tensor(image[0, 0], device=device, requires_grad=True)
        std = chainrule.tensor(np.abs(image[0, 1]) + 0.5, device=device, requires_grad=True)
        draws, copies = _transfers_during(device, lambda: (
            chainrule.normal(mean, std), chainrule.normal(mean, 2.0), chainrule.normal(1.0, std)))
        sum(d.sum() for d in draws).backward()
        names = [type(d.grad_fn).__name__ for d in draws]
        assert names == ["NormalBackward3", "NormalBackward1", "NormalBackward2"], names
        assert all(d.device == mean.device for d in draws) and not np.any(_host(mean.grad)) and not np.any(_host(std.grad))
        return f"{', '.join(names)} on {mean.device}, zero gradients as torch's, {copies} host transfers " \
               "(torch's std >= 0 check reads the host)"

    def out_matmul():
        a = rng.standard_normal((6, 4)).astype(np.float32)
        b = rng.standard_normal((4, 3)).astype(np.float32)
        c = rng.standard_normal((6, 3)).astype(np.float32)
        ops = {"matmul": (lambda a, b, c, out: chainrule.matmul(a, b, out=out), (6, 3)),
               "mm": (lambda a, b, c, out: chainrule.mm(a, b, out=out), (6, 3)),
               "bmm": (lambda a, b, c, out: chainrule.bmm(a.expand(2, 6, 4), b.expand(2, 4, 3), out=out), (2, 6, 3)),
               "addmm": (lambda a, b, c, out: chainrule.addmm(c, a, b, beta=0.5, alpha=2.0, out=out), (6, 3))}
        worst, copies = 0.0, 0
        for fn, shape in ops.values():
            results = []
            for dev in ("cpu", device):
                args = [chainrule.tensor(v, device=dev) for v in (a, b, c)]
                out = chainrule.empty(shape, device=dev)
                result, made = _transfers_during(dev, lambda fn=fn, args=args, out=out: fn(*args, out))
                copies += made if dev != "cpu" else 0
                assert result is out and out.device == args[0].device
                results.append([_host(out)])
            worst = max(worst, _max_difference(results[1], results[0]))
        assert worst <= 1e-4 and copies == 0, (worst, copies)
        return f"matmul, mm, bmm, addmm with out= within {worst:.1e} of the cpu, {copies} host transfers"

    def second_order():
        x = rng.standard_normal(5).astype(np.float32)
        func = chainrule.func

        def f(t):
            return (t.sin() * t).sum() + (t[:-1] * t[1:]).exp().sum()

        def pieces(t):
            a, b = t.split([2, 3])
            c, d = t.chunk(2)
            return (a * a).sum() * b.sum() + c.exp().sum() * d.sum() + t.unbind(0)[1] ** 3

        programs = {"func.hessian": lambda t: func.hessian(f)(t),
                    "jacrev(jacrev)": lambda t: func.jacrev(func.jacrev(f))(t),
                    "autograd.functional.hessian": lambda t: chainrule.autograd.functional.hessian(f, t),
                    "vmap(grad)": lambda t: func.vmap(func.grad(lambda r: (r.sin() * r).sum()))(t[None] * t[:, None]),
                    "hessian of split/chunk/unbind": lambda t: func.hessian(pieces)(t)}
        worst, copies = 0.0, 0
        for program in programs.values():
            cpu = _host(program(chainrule.tensor(x)))
            xt = chainrule.tensor(x, device=device)
            ours, made = _transfers_during(device, lambda program=program, xt=xt: program(xt))
            copies += made
            assert ours.device == xt.device
            worst = max(worst, _max_difference([_host(ours)], [cpu]) / max(1.0, float(np.max(np.abs(cpu)))))
        assert worst <= 1e-4 and copies == 0, (worst, copies)
        return f"{', '.join(programs)} within {worst:.1e} (relative) of the cpu, {copies} host transfers"

    def views():
        m = rng.standard_normal((6, 4)).astype(np.float32)

        def program(leaf):
            base = leaf * 1.0
            view = base[1:, :2]
            base.mul_(3)
            base[:, 3].add_(leaf[:, 0])
            rows = base.unbind(0)
            (view.square().sum() + base.sin().sum() + rows[2].sum()).backward()
            return [view, base, leaf.grad]

        cpu = [_host(t) for t in program(chainrule.tensor(m, requires_grad=True))]
        leaf = chainrule.tensor(m, device=device, requires_grad=True)
        ours, copies = _transfers_during(device, lambda: program(leaf))
        diff = _max_difference([_host(t) for t in ours], cpu)
        assert diff <= 1e-5 and copies == 0, (diff, copies)
        try:  # CuPy has no read-only arrays: the overlap check must refuse before the write races
            chainrule.ones(1, 4, device=device).expand(3, 4).add_(1)
        except RuntimeError as exc:
            assert "more than one element" in str(exc), _error(exc)
        else:
            raise AssertionError("an in-place add into an expanded view ran")
        return f"a view read after its base changed in place, unbind of the result: within {diff:.1e}, " \
               f"{copies} host transfers; an in-place add into an expanded view raises torch's error"

    checks = {"mixed-precision norms float16": lambda: mixed_norms("float16"),
              "mixed-precision norms bfloat16": lambda: mixed_norms("bfloat16"), "float16 batch norm": half_batch_norm,
              "autocast conv and norms": autocast_norms, "LSTM proj_size": lstm_projection,
              "packed recurrent layers": packed_layers, "recurrent argument checks": recurrent_checks,
              "torch.normal overloads": normal_overloads, "out= on the matmul family": out_matmul,
              "second order": second_order, "writes through views": views}
    for name, check in checks.items():
        _check(report, outcome, name, check)
    report.results["later_features"] = outcome


# ---- 8. distributed and CUDA random streams ----

def distributed_and_random(report: Report, options) -> None:
    """Collectives of an MPI world of size 1 (this process: MPI's singleton start) on a cuda
    tensor, staged through the host and written back in place; a DDP step of a module on the GPU
    (device_ids=[0]) against the same step without DDP and on the CPU; and the CUDA generators:
    cuda.manual_seed repeats device draws and leaves the CPU stream alone, manual_seed seeds both,
    get/set_rng_state replays, a Generator(device='cuda') is its own stream, fork_rng is transparent,
    and no draw copies to the host."""
    import importlib.util

    device = options.device
    outcome: dict = {}
    if not device.startswith("cuda"):
        report.line(f"   device {device}: these checks need a cuda device (or --standin); skipped")
        report.results["distributed_and_random"] = outcome
        return
    F = chainrule.nn.functional

    x = chainrule.ones(64, 32, device=device)
    weights = chainrule.tensor([1.0, 2.0, 3.0, 4.0], device=device)

    def device_draws():
        return [chainrule.rand(100, device=device), chainrule.randn(10, 10, device=device),
                chainrule.randint(0, 1000, (50,), device=device), chainrule.randperm(200, device=device),
                chainrule.multinomial(weights, 3), chainrule.empty(40, device=device).normal_(),
                chainrule.empty(40, device=device).uniform_(-1, 1), chainrule.bernoulli(x * 0.5),
                F.dropout(x, 0.5, training=True)]

    def host(draws):
        return [_host(d) for d in draws]

    def same(a, b) -> bool:
        return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))

    def cuda_random_streams():
        chainrule.manual_seed(0)
        cpu_reference = [_host(chainrule.rand(5)) for _ in range(2)]
        chainrule.manual_seed(0)
        runs, cpu, copies = [], [], 0
        for _ in range(2):
            cpu.append(_host(chainrule.rand(5)))
            chainrule.cuda.manual_seed(1234)
            draws, made = _transfers_during(device, device_draws)
            copies += made
            runs.append(host(draws))
        assert same(*runs), "cuda.manual_seed did not repeat the device draws"
        assert same(cpu, cpu_reference), "cuda.manual_seed moved the CPU stream"
        assert copies == 0, f"{copies} host transfers while drawing"
        chainrule.manual_seed(1234)
        assert same(host(device_draws()), runs[0]), "manual_seed did not seed the device generator"
        state = chainrule.cuda.get_rng_state()
        first = host(device_draws())
        chainrule.cuda.set_rng_state(state)
        assert same(host(device_draws()), first), "set_rng_state did not replay the draws"
        generator = chainrule.Generator(device=device).manual_seed(1234)
        chainrule.cuda.manual_seed(1234)
        mine = _host(chainrule.randn(1000, device=device, generator=generator))
        assert np.array_equal(mine, _host(chainrule.randn(1000, device=device))), "Generator(device='cuda')"
        chainrule.cuda.manual_seed(5)
        device_draws()
        with chainrule.random.fork_rng(devices=[0]):
            device_draws()
        after_fork = host(device_draws())
        chainrule.cuda.manual_seed(5)
        device_draws()
        assert same(host(device_draws()), after_fork), "fork_rng changed the device stream"
        values = np.concatenate([a.ravel().astype(np.float64) for a in runs[0][:2]])
        return (f"repeatable, CPU stream untouched, 0 host transfers; rand mean {values[:100].mean():.3f}, "
                f"randn std {values[100:].std():.3f}; get/set_rng_state, Generator(device='cuda'), fork_rng ok")

    _check(report, outcome, "CUDA random streams", cuda_random_streams)
    if importlib.util.find_spec("mpi4py") is None:
        report.line("   skipped the collectives and DDP: they need mpi4py (pip install 'chainrule[mpi]')")
        report.results["distributed_and_random"] = outcome
        return
    import chainrule.distributed as dist
    from chainrule.nn.parallel import DistributedDataParallel

    started_here = not dist.is_initialized()
    if started_here:
        dist.init_process_group("gloo")  # a world of size 1: this process, no launcher

    def collectives():
        rng = np.random.default_rng(3)
        values = rng.standard_normal((64, 33)).astype(np.float32)
        for op, expected in ((dist.ReduceOp.SUM, values), (dist.ReduceOp.AVG, values), (dist.ReduceOp.MAX, values)):
            t = chainrule.tensor(values, device=device)
            memory = t._data
            dist.all_reduce(t, op=op)
            assert t._data is memory and t.device.type == "cuda", f"all_reduce {op} did not stay in place"
            assert np.allclose(_host(t), expected), f"all_reduce {op}"
        t = chainrule.tensor(values, device=device)
        dist.broadcast(t.t(), src=0)
        out = chainrule.zeros(64, 33, device=device)
        dist.all_gather_into_tensor(out, chainrule.tensor(values, device=device))
        scattered = chainrule.zeros(64, 33, device=device)
        dist.reduce_scatter_tensor(scattered, chainrule.tensor(values, device=device))
        gathered = [chainrule.zeros(64, 33, device=device)]
        work = dist.all_gather(gathered, chainrule.tensor(values, device=device), async_op=True)
        work.wait()
        for result in (t, out, scattered, gathered[0]):
            assert result.device.type == "cuda" and np.array_equal(_host(result), values)
        return (f"world size {dist.get_world_size()}: all_reduce SUM/AVG/MAX in place, broadcast of a view, "
                "all_gather(_into_tensor), reduce_scatter_tensor on cuda tensors")

    def ddp_step():
        rng = np.random.default_rng(4)
        x, y = rng.standard_normal((32, 20)).astype(np.float32), rng.integers(0, 10, 32)
        results = {}
        for name, dev, wrap in (("ddp", device, True), ("plain", device, False), ("cpu", "cpu", False)):
            chainrule.manual_seed(0)
            model = chainrule.nn.Sequential(chainrule.nn.Linear(20, 64), chainrule.nn.ReLU(),
                                            chainrule.nn.Linear(64, 10)).to(dev)
            if wrap:
                model = DistributedDataParallel(model, device_ids=[0], bucket_cap_mb=0.001)
                assert len(model._buckets) > 1, "expected several buckets"
            optimizer = chainrule.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for _ in range(2):
                optimizer.zero_grad()
                F.cross_entropy(model(chainrule.tensor(x, device=dev)), chainrule.tensor(y, device=dev)).backward()
                optimizer.step()
            results[name] = [_host(p) for p in model.parameters()]
        same_device = max(float(np.max(np.abs(a - b))) for a, b in zip(results["ddp"], results["plain"]))
        against_cpu = max(float(np.max(np.abs(a - b))) for a, b in zip(results["ddp"], results["cpu"]))
        assert same_device <= 1e-6 and against_cpu <= 1e-4, (same_device, against_cpu)
        return (f"2 SGD steps, several buckets: equal to the step without DDP within {same_device:.1e}, "
                f"to the CPU within {against_cpu:.1e}")

    try:
        _check(report, outcome, "collectives on cuda tensors", collectives)
        _check(report, outcome, "DDP step on cuda", ddp_step)
    finally:
        if started_here:
            dist.destroy_process_group()
    report.results["distributed_and_random"] = outcome


# ---- 9. implicit-GEMM convolution kernels ----

# (label, N, C, O, kernel, stride, pad_lo, pad_hi, dilation, groups, spatial input, dtype):
# small enough for the CPU emulation of the kernels to run the same table in CI
# (tests/cuda/test_conv_kernels.py), the bench's shape last
CONV_GEOMETRIES = [
    ("3×3 p1", 2, 8, 16, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, (12, 13), "float32"),
    ("stride 2", 2, 8, 12, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1, (13, 12), "float32"),
    ("dilation 2", 2, 4, 8, (3, 3), (1, 1), (2, 2), (2, 2), (2, 2), 1, (11, 13), "float32"),
    ("groups 2", 2, 8, 12, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 2, (10, 9), "float32"),
    ("depthwise", 2, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 8, (12, 12), "float32"),
    ("asymmetric pad", 2, 4, 6, (4, 2), (1, 1), (1, 0), (2, 1), (1, 1), 1, (9, 10), "float32"),
    ("1×1", 2, 64, 130, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1, (5, 7), "float32"),
    ("7×7 stride 2", 1, 3, 16, (7, 7), (2, 2), (3, 3), (3, 3), (1, 1), 1, (23, 25), "float32"),
    ("odd tiles", 3, 7, 66, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, (13, 11), "float32"),
    ("N=1", 1, 5, 6, (3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1, (9, 8), "float32"),
    ("float64", 2, 6, 10, (3, 3), (2, 1), (1, 1), (1, 1), (1, 2), 2, (11, 12), "float64"),
    ("conv1d", 2, 8, 16, (5,), (2,), (2,), (2,), (1,), 1, (61,), "float32"),
    ("bench 64→64 3×3", 64, 64, 64, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, (56, 56), "float32"),
]


# float32 sums of up to C·K = 576 products (200704 in the bench's filter gradient), in another
# order than cuBLAS's: errors relative to the largest entry. The TF32 tiling is held to the same
# float32 tolerance against the maps of its operands rounded to TF32 (``round_to_tf32``).
CONV_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


def _conv_checks(impl, maps, xp, asnumpy, small: bool, tf32: bool = False) -> tuple[dict, list]:
    """Max relative error of each geometry's three maps (``impl``: forward, input gradient,
    filter gradient) against the same maps of ``maps`` on the device (im2col) and on the CPU;
    and the names of those over ``CONV_TOLERANCE``. With ``tf32``, of the float32 geometries
    only, against the maps of the operands rounded to TF32."""
    from chainrule.ops._cuda_conv import round_to_tf32
    from chainrule.ops.conv import _Geometry

    rng = np.random.default_rng(0)
    errors, failed = {}, []
    for label, n, c, o, kernel, stride, lo, hi, dilation, groups, spatial, dtype in CONV_GEOMETRIES:
        if small and label.startswith("bench") or tf32 and dtype != "float32":
            continue
        geo = _Geometry(kernel, stride, lo, hi, dilation, groups, spatial)
        x = rng.standard_normal((n, c, *spatial)).astype(dtype)
        w = rng.standard_normal((o, c // groups, *kernel)).astype(dtype)
        grad = rng.standard_normal((n, o, *geo.out_shape)).astype(dtype)
        dx, dw, dgrad = xp.asarray(x), xp.asarray(w), xp.asarray(grad)
        ours = (impl.conv_forward(dx, dw, geo), impl.conv_input(dgrad, dw, geo, c),
                impl.conv_weight(dx, dgrad, geo, w.shape))
        if tf32:  # the references see what the tensor cores see
            x, w, grad = (asnumpy(round_to_tf32(a)) for a in (x, w, grad))
            dx, dw, dgrad = xp.asarray(x), xp.asarray(w), xp.asarray(grad)
        device = (maps._conv(dx, dw, geo), maps._conv_input(dgrad, dw, geo, c), maps._conv_weight(dx, dgrad, geo, w.shape))
        cpu = (maps._conv(x, w, geo), maps._conv_input(grad, w, geo, c), maps._conv_weight(x, grad, geo, w.shape))
        for what, got, on_device, on_cpu in zip(("forward", "input grad", "filter grad"), ours, device, cpu):
            name = f"{label} ({'tf32' if tf32 else dtype}) {what}"
            got = asnumpy(got)
            if got.shape != on_cpu.shape:
                errors[name] = float("inf")
            else:
                errors[name] = max(float(np.max(np.abs(got - asnumpy(on_device)))),
                                   float(np.max(np.abs(got - on_cpu)))) / max(1.0, float(np.max(np.abs(on_cpu))))
            if not errors[name] <= CONV_TOLERANCE[dtype]:
                failed.append(name)
    return errors, failed


def _conv_program(device: str, flag: bool, cuda_flags) -> list:
    """The loss and the gradients (first and, through a gradient penalty, second order) of a small
    convolutional network on ``device`` with the implicit-GEMM switch set to ``flag``."""
    nn = chainrule.nn
    cuda_flags.conv.implicit_gemm = flag
    chainrule.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Conv2d(24, 24, 3, padding=2, dilation=2, groups=4),
                        nn.ConvTranspose2d(24, 8, 3, stride=2, padding=1, output_padding=1)).to(device)
    row_conv = nn.Conv1d(8, 4, 5, stride=2).to(device)
    x = chainrule.randn(4, 16, 19, 21).to(device).requires_grad_(True)
    h = net(x)
    loss = row_conv(h.reshape(h.shape[0], h.shape[1], -1)).tanh().square().sum()
    params = [x, *net.parameters(), *row_conv.parameters()]
    grads = chainrule.autograd.grad(loss, params, create_graph=True)
    penalty = sum((g * g).sum() for g in grads[:3])
    second = chainrule.autograd.grad(penalty, params, allow_unused=True)
    return [t.detach().cpu().numpy() for t in (loss, *grads, *second) if t is not None]


def conv_kernels(report: Report, options) -> None:
    """The kernels against im2col and the CPU, then nn.Conv2d end to end and the bench, off and on."""
    from chainrule.backends import cuda as cuda_flags
    from chainrule.ops import _cuda_conv, conv

    cp = _cupy()
    on_gpu = cp is not None and chainrule.cuda.is_available() and not options.dry_run
    if on_gpu:
        impl, xp, asnumpy, label = _cuda_conv, cp, cp.asnumpy, "implicit-GEMM kernels"
    else:  # the harness only: the im2col maps against themselves
        impl = type("Im2colAsKernels", (), {"conv_forward": staticmethod(conv._conv),
                                             "conv_input": staticmethod(conv._conv_input),
                                             "conv_weight": staticmethod(conv._conv_weight)})
        xp, asnumpy, label = np, np.asarray, "im2col against itself (no GPU)"
    errors, failed = _conv_checks(impl, conv, xp, asnumpy, small=not on_gpu)
    report.results["conv_kernels"] = {"compared": label, "max_relative_error": errors}
    report.line(f"   {label}: {len(errors) - len(failed)} of {len(errors)} within tolerance (float32 1e-4, "
                f"float64 1e-10); worst {max(errors, key=errors.get)} {max(errors.values()):.1e}")
    for name in failed:
        report.line(f"   FAIL {name}: max relative error {errors[name]:.2e}")
    device = options.device if on_gpu or options.standin else "cpu"
    saved, saved_tensor_cores = _cuda_conv.enabled, _cuda_conv.tensor_cores
    if on_gpu:  # the TF32 tensor-core tiling (conv.tensor_cores) against its rounded operands
        _cuda_conv.set_tensor_cores(True)
        try:
            tf32_errors, tf32_failed = _conv_checks(impl, conv, xp, asnumpy, small=False, tf32=True)
        finally:
            _cuda_conv.set_tensor_cores(saved_tensor_cores)
        report.results["conv_kernels"]["tf32_max_relative_error"] = tf32_errors
        report.line(f"   TF32 tiling: {len(tf32_errors) - len(tf32_failed)} of {len(tf32_errors)} within 1e-4 of the "
                    f"maps of TF32-rounded operands; worst {max(tf32_errors, key=tf32_errors.get)} "
                    f"{max(tf32_errors.values()):.1e}")
        for name in tf32_failed:
            report.line(f"   FAIL {name}: max relative error {tf32_errors[name]:.2e}")
    try:
        # a small network (Conv2d, ConvTranspose2d, Conv1d, biases) with a gradient penalty:
        # backward and double backward, the switch on against off
        outcomes = {flag: _conv_program(device, flag, cuda_flags) for flag in (False, True)}
        worst = max(float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))
                    for a, b in zip(outcomes[True], outcomes[False]))
        report.results["conv_kernels"]["program_on_against_off"] = worst
        report.line(f"   {'ok  ' if worst <= 1e-4 else 'FAIL'} conv network backward and double backward, "
                    f"implicit_gemm on against off: max relative error {worst:.1e}")
        # the bench conv, the switch off then on
        from chainrule import benchmark_cuda

        size = "small" if options.dry_run else "full"
        reps = options.reps or (2 if options.dry_run else benchmark_cuda.DEFAULT_REPS["conv2d"])
        warmup = 1 if options.dry_run else benchmark_cuda.WARMUP
        bench_device = "cpu" if options.dry_run else options.device
        timings = {}
        # im2col, the kernels in float32 (FP32 on the CUDA cores), the kernels in TF32 (tensor cores)
        for variant, (flag, tensor_cores) in {"im2col": (False, False), "implicit GEMM": (True, False),
                                              "implicit GEMM, TF32": (True, True)}.items():
            cuda_flags.conv.implicit_gemm = flag
            cuda_flags.conv.tensor_cores = tensor_cores
            libs = None if not flag else {"chainrule": chainrule}
            timings[variant] = benchmark_cuda.run_workload("conv2d", reps, bench_device, size, libs, warmup)
        torch_ms = timings["im2col"].get("torch_ms")
        report.results["conv_kernels"]["bench"] = timings
        for name in timings:
            ms = timings[name].get("chainrule_ms")
            ratio = f", {ms / torch_ms:.2f}× torch's {torch_ms:.2f} ms" if ms and torch_ms else ""
            errors_seen = [v for k, v in timings[name].items() if k.endswith("_error")]
            report.line(f"   conv2d bench ({bench_device}, {size}), {name}: "
                        + (f"{ms:.2f} ms{ratio}" if ms else f"failed: {errors_seen}"))
    finally:
        _cuda_conv.set_enabled(saved)
        _cuda_conv.set_tensor_cores(saved_tensor_cores)


# ---- 11. the whole programs on the device ----

# (name) -> why the program fails with torch.set_default_device('cuda') under torch too: it mixes
# CPU tensors it makes itself (torch.from_numpy, which the default device does not move; a CPU
# Generator for DataLoader's or random_split's randperm) with CUDA ones. chainrule raises torch's
# error there; the section reports these apart from real failures.
TORCH_FAILS_TOO: dict[str, str] = {  # (read off the stand-in's run of every program, 2026-12-03)
    "actor_critic": "its torch.from_numpy data stay on the CPU",
    "alibi_xpos_transformer": "its torch.from_numpy token ids stay on the CPU",
    "amp_gradscaler_accumulation": "its torch.from_numpy data stay on the CPU",
    "autoformer_decomposition": "its torch.from_numpy data, indexed by a default-device randperm",
    "barlow_twins": "its torch.from_numpy data, indexed by a default-device randperm",
    "bayes_by_backprop": "its torch.from_numpy data stay on the CPU (its DEVICE is 'cpu')",
    "bucketed_collate_padding": "a CPU torch.Generator() draws randperm for the default device",
    "byol_ema": "its torch.from_numpy data stay on the CPU",
    "capsule_net": "its torch.from_numpy data stay on the CPU",
    "centernet_heatmaps": "its torch.from_numpy data stay on the CPU",
    "char_rnn_classify": "a CPU torch.Generator() draws randperm for the default device",
    "char_rnn_generation": "its torch.LongTensor targets are CPU tensors (the legacy constructors ignore the default device)",
    "checkpoint_resume": "a CPU torch.Generator() draws randperm for the default device",
    "clip_contrastive": "its torch.from_numpy data, indexed by a default-device randperm",
    "compile_amp": "its torch.from_numpy data stay on the CPU",
    "conformer_block": "its torch.from_numpy data stay on the CPU",
    "conv_autoencoder": "its torch.from_numpy data stay on the CPU",
    "convmixer_patches": "its torch.from_numpy data stay on the CPU",
    "ctc_speech": "its torch.from_numpy waves meet the stft window made on the default device",
    "custom_function": "its torch.from_numpy data stay on the CPU",
    "custom_optimizers": "a CPU torch.Generator() draws randint for the default device",
    "d2l_mlp_regularisation": "it calls .numpy() on its CUDA weights",
    "d2l_optimization": "its torch.from_numpy data stay on the CPU",
    "d2l_preliminaries_builders": "it calls .numpy() and np.asarray on CUDA tensors (as written too: try_gpu() picks 'cuda')",
    "data_pipeline": "a CPU torch.Generator() draws randperm for the default device",
    "dataloader_recipes": "a CPU torch.Generator() draws randperm for the default device",
    "dcgan": "its torch.from_numpy data stay on the CPU",
    "ddpm_toy": "its torch.from_numpy data stay on the CPU",
    "deepfm_ctr": "a CPU torch.Generator() draws random_split's randperm for the default device",
    "deeplab_aspp": "its torch.from_numpy data, indexed by a default-device randperm",
    "deformable_conv_offsets": "its torch.from_numpy data, indexed by a default-device randperm",
    "deq_implicit": "its model and data go to its own device 'cpu', its gradient-check target to the default",
    "detection_box_ops": "its torch.from_numpy data, indexed by a default-device randperm",
    "dino_teacher_centering": "its torch.from_numpy data, indexed by a default-device randperm",
    "distill_data_utils": "its WeightedRandomSampler gets default-device weights and a CPU Generator",
    "distributions_vi": "its torch.from_numpy data stay on the CPU",
    "dp_sgd_func": "its torch.from_numpy data stay on the CPU",
    "dqn_reinforce": "its torch.from_numpy data stay on the CPU",
    "dynamic_quantization": "quantize_dynamic of its default-device model: torch's dynamic quantized kernels are CPU-only",
    "edm_karras_sampler": "its torch.from_numpy data, indexed by a default-device randint",
    "embeddingbag_recsys": "its torch.from_numpy data stay on the CPU",
    "eval_modes": "its torch.from_numpy data stay on the CPU",
    "fno_fourier": "its torch.from_numpy data stay on the CPU",
    "forward_ad_double_backward": "its custom Function calls .numpy() on CUDA tensors",
    "forward_forward": "its torch.from_numpy data stay on the CPU",
    "func_ensembling_ntk": "its data are made with its own device='cpu'",
    "func_hessian_newton": "its torch.from_numpy data stay on the CPU",
    "functional_call_hypernetwork": "its torch.from_numpy data stay on the CPU",
    "fx_conv_bn_fusion": "its torch.from_numpy data stay on the CPU",
    "gcn_gat": "its torch.from_numpy data stay on the CPU",
    "glow_flow": "its torch.from_numpy data stay on the CPU",
    "gmm_em_sinkhorn": "its torch.from_numpy data stay on the CPU",
    "gp_regression": "it calls .numpy() on a default-device linspace",
    "gpt2_sampling_utils": "its torch.from_numpy data, indexed by a default-device randint",
    "gpt_kv_cache": "its torch.from_numpy data stay on the CPU",
    "graphsage_scatter": "its torch.from_numpy features, indexed by torch.tensor edge ids on the default device",
    "gumbel_softmax_vae": "its torch.from_numpy data stay on the CPU",
    "hamiltonian_nn": "it calls .numpy() on its CUDA trajectory",
    "hf_gpt2_conv1d": "its torch.from_numpy data, indexed by a default-device randperm",
    "hmc_bayes_logreg": "its torch.from_numpy data stay on the CPU",
    "hooks": "its torch.from_numpy data stay on the CPU",
    "image_augment_ops": "its torch.from_numpy images meet an affine grid made on the default device",
    "imbalanced_sampling": "a CPU torch.Generator() draws random_split's randperm for the default device",
    "instant_ngp_hash_grid": "its torch.from_numpy data stay on the CPU",
    "iqn_quantile_dqn": "its torch.from_numpy data stay on the CPU",
    "iterable_dataset_sharding": "its torch.from_numpy data stay on the CPU",
    "jem_energy_langevin": "its torch.from_numpy data, indexed by a default-device randint",
    "kalman_filter_em": "its torch.from_numpy data stay on the CPU",
    "kernel_ridge_nystrom": "its torch.from_numpy kernel matrix meets a default-device torch.eye",
    "knowledge_distillation": "its torch.from_numpy data stay on the CPU (as written too: a CPU batch meets its accelerator models)",
    "lightning_style_trainer": "its torch.from_numpy data stay on the CPU",
    "llama2c_model": "its torch.from_numpy token ids stay on the CPU",
    "longformer_sliding_window": "its torch.from_numpy lengths meet a default-device arange",
    "lora_finetune": "its torch.from_numpy data stay on the CPU",
    "lr_finder_onecycle": "its torch.from_numpy data stay on the CPU",
    "lucidrains_ddpm_unet": "its torch.from_numpy data, indexed by a default-device randint",
    "made_maf_flow": "it calls .numpy() on a CUDA gradient",
    "mae_random_masking": "its torch.from_numpy data stay on the CPU",
    "makemore_backprop_ninja": "a CPU torch.Generator() draws randn for the default device",
    "makemore_batchnorm": "a CPU torch.Generator() draws randn for the default device",
    "makemore_bigram": "a CPU torch.Generator() draws multinomial for the default device",
    "makemore_mlp": "a CPU torch.Generator() draws randn for the default device",
    "makemore_wavenet": "its seed-42 name samples come from the CUDA generator's stream, not the CPU one calibrated",
    "mamba_selective_scan": "its torch.from_numpy token ids stay on the CPU",
    "maml_sinusoid": "its torch.from_numpy data stay on the CPU",
    "memory_tricks": "its torch.from_numpy data stay on the CPU",
    "metric_learning": "its torch.from_numpy data stay on the CPU",
    "mixture_density": "its torch.from_numpy data stay on the CPU",
    "mixup_cutmix_ema": "its torch.from_numpy labels make CPU targets, compared with a default-device ones(16)",
    "mlp_classifier": "its torch.from_numpy data stay on the CPU",
    "mobilenet_efficientnet": "its torch.from_numpy images, indexed by a default-device randperm",
    "moco_queue": "its torch.from_numpy images, indexed by a default-device randperm",
    "moe_topk": "its torch.from_numpy data stay on the CPU",
    "nanogpt": "its model goes to its device 'cpu', its probe batch to the default",
    "nbeats_forecasting": "its torch.from_numpy data stay on the CPU",
    "ncf_bpr": "its torch.from_numpy interaction matrix, indexed by default-device ids",
    "neural_cellular_automata": "its torch.from_numpy target stays on the CPU",
    "nlp_tutorials": "its torch.LongTensor targets stay on the CPU (a legacy constructor), its log-probs do not",
    "nmf_ica_tensor_decomp": "its torch.from_numpy data stay on the CPU",
    "parametrizations_orthogonal": "its torch.from_numpy data, indexed by a default-device randperm",
    "pca_procrustes_whitening": "its torch.from_numpy data stay on the CPU",
    "pcgrad_multitask": "its torch.from_numpy data, indexed by a default-device randperm",
    "perceiver_io": "its torch.from_numpy images, indexed by a default-device randperm",
    "pinn_burgers": "its torch.from_numpy collocation points stay on the CPU",
    "pix2pix_patchgan": "its torch.from_numpy images, indexed by a default-device randperm",
    "pixelcnn_masked": "its torch.from_numpy data stay on the CPU",
    "pointnet": "its torch.from_numpy data stay on the CPU",
    "ppo_continuous": "its model goes to its own device 'cpu' (cuda = False)",
    "profiler_benchmark_recipes": "its default-device model allocates CUDA memory: conv2d's cpu_memory_usage is 0",
    "pyg_message_passing": "its torch.from_numpy data stay on the CPU",
    "qat_mobilenet_style": "its torch.from_numpy data stay on the CPU",
    "raft_correlation_warp": "its torch.from_numpy images put the sampling grid on the CPU, the features not",
    "realnvp_flow": "its torch.from_numpy data stay on the CPU",
    "recipe_channels_last_amp": "a CPU torch.Generator() draws randn for the default device",
    "recipe_parametrize_prune": "its CUDA reprs wrap device='cuda:0' onto extra lines; pruning follows the CUDA init stream",
    "recipe_saving_loading": "its torch.from_numpy data stay on the CPU",
    "regression_scheduler": "its torch.from_numpy data stay on the CPU",
    "reproducibility_recipe": "a CPU torch.Generator() draws randint for the default device",
    "resnet_blocks": "its torch.from_numpy data stay on the CPU",
    "rnn_lm": "torch.tensor lengths land on the default device; packing wants them on the CPU",
    "roi_align_two_stage": "its anchors are made with device='cpu', its strides by torch.empty(()) on the default device",
    "rwkv_time_mixing": "its torch.from_numpy validation ids stay on the CPU",
    "sac_continuous": "its actor calls .numpy() on CUDA tensors",
    "sam_optimizer": "a CPU torch.Generator() draws randperm for the default device",
    "segformer_mix_ffn": "its torch.from_numpy data stay on the CPU",
    "seq2seq_attention": "its torch.from_numpy data stay on the CPU",
    "set_transformer": "its torch.from_numpy data stay on the CPU",
    "siamese_network": "its torch.from_numpy data stay on the CPU",
    "simclr_contrastive": "its torch.from_numpy data stay on the CPU",
    "siren_implicit": "its torch.from_numpy image stays on the CPU",
    "sparse_autoencoder": "its torch.from_numpy data stay on the CPU",
    "sparse_coo_gcn": "its torch.from_numpy adjacency meets a sparse identity made on the default device",
    "spatial_transformer": "its torch.from_numpy test image meets an affine grid made on the default device",
    "static_quantization": "its torch.from_numpy data stay on the CPU",
    "stft_audio_classifier": "its torch.from_numpy waves meet the stft window made on the default device",
    "stochastic_depth_layerscale": "its torch.from_numpy images, indexed by a default-device randperm",
    "stylegan2_modulated_conv": "its torch.from_numpy data stay on the CPU",
    "swin_window_attention": "its torch.from_numpy images, indexed by a default-device randperm",
    "t5_relative_attention": "its torch.from_numpy token ids stay on the CPU",
    "tabnet_sparsemax": "its torch.from_numpy data, indexed by a default-device randperm",
    "tabular_embeddings": "its torch.from_numpy values meet default-device searchsorted boundaries",
    "tacotron_location_attention": "its torch.from_numpy data stay on the CPU",
    "tensor_network_mps": "its torch.from_numpy data stay on the CPU",
    "text_classification_bag": "it moves its model to 'cpu' to predict, its torch.tensor inputs go to the default device",
    "time_sequence_lstm": "its torch.from_numpy data stay on the CPU",
    "timm_convnext_training": "its torch.from_numpy images, indexed by a default-device randperm",
    "transe_kg": "its torch.from_numpy triples stay on the CPU",
    "transformer_classifier": "its torch.from_numpy data stay on the CPU",
    "transformer_xl_memory": "its torch.Tensor(...) biases stay on the CPU (a legacy constructor); init_mems follows them",
    "tutorial_basics": "its model goes to the accelerator, its DataLoader's torch.from_numpy batches stay on the CPU",
    "tutorial_blitz": "it calls .numpy() on a default-device tensor",
    "tutorial_quickstart_finetune": "its torch.from_numpy batches stay on the CPU",
    "tutorial_with_examples": "its own device='cpu' data meet default-device weights",
    "vae": "its torch.from_numpy data stay on the CPU",
    "vit_patches": "its torch.from_numpy data stay on the CPU",
    "vqvae": "its EMA codebook sum is a torch.Tensor(...), which stays on the CPU (a legacy constructor)",
    "wavenet_tcn": "its torch.from_numpy waves stay on the CPU",
    "whisper_style_audio": "its torch.from_numpy tokens, indexed by a default-device randperm",
    "word2vec_sgns": "its torch.from_numpy data stay on the CPU",
    "yolo_v1_loss_nms": "its model goes to DEVICE ('cuda' when available), its torch.from_numpy probe batch stays on the CPU",
}
# a dry run (CI) runs one fast program (float64, LBFGS's closure, made on the default device): the
# section's harness, at the cost of one run of a few seconds
DRY_RUN_PROGRAMS = ("lbfgs_curve_fit",)


def _program_harness():
    """tests/programs/run.py, imported from the repository (the corpus is not installed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("programs_run", ROOT / "tests" / "programs" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclass looks its module up there)
    spec.loader.exec_module(module)
    return module


def program_order(names, expected: dict) -> list:
    """The order the programs start in: fastest first (torch's calibrated seconds), the programs of
    TORCH_FAILS_TOO after all the others. Their outcome is known, so when the budget ends first it
    is they that are left 'not run', not programs that have never run on a device."""
    def torch_seconds(name: str) -> float:
        return min(expected.get(name, {}).get("torch_seconds") or [0.0])

    return sorted(names, key=lambda name: (name in TORCH_FAILS_TOO, torch_seconds(name)))


def judge_program(harness, device_run, expected: dict) -> tuple[str, list]:
    """A device run's status against the program's calibration (its entry of expected.json), as its
    CPU run is judged in tests/programs: 'same' when it exits cleanly, prints torch's line shapes
    and fixed integers (the lines naming a device aside) and every FINAL value lies in its band;
    'differs' when it exits cleanly otherwise; 'fails' when it does not. A device run is one more
    draw, as chainrule's CPU run is, so it is not held to the CPU run's values (no CPU rerun)."""
    problems = harness.calibration_problems(device_run, expected, on_device=True)
    status = "same" if not problems else "differs" if device_run.returncode == 0 else "fails"
    return status, problems


def whole_programs(report: Report, options) -> None:
    """Each program of tests/programs with ``torch.set_default_device(device)`` before it runs (and
    CUDA available, so programs that pick 'cuda' themselves go there too), judged against its
    calibration (``judge_program``). A failure of a program in TORCH_FAILS_TOO is the program's own;
    with torch CUDA installed, torch runs any other failing program the same way, to tell them apart.
    A dry run takes DRY_RUN_PROGRAMS; a GPU runs every program in ``program_order``, several at a time,
    until --programs-seconds has passed: those not started by then are reported 'not run'."""
    from concurrent.futures import ThreadPoolExecutor

    if not options.device.startswith("cuda"):
        report.line(f"   device {options.device}: skipped (the programs run on the CPU in tests/programs)")
        return
    harness = _program_harness()
    expected = json.loads((ROOT / "tests" / "programs" / "expected.json").read_text())
    names = list(DRY_RUN_PROGRAMS) if options.dry_run else program_order(harness.program_names(), expected)
    workers = 2 if options.dry_run else max(1, min(12, (os.cpu_count() or 2) - 2))  # (one BLAS thread each)
    torch_cuda = _torch_cuda() is not None and not options.standin
    known = sum(name in TORCH_FAILS_TOO for name in names)
    report.line(f"   {len(names)} programs{' (a dry run: a fixed few)' if options.dry_run else ''} with "
                f"set_default_device({options.device!r}), judged against their calibrated bands, {workers} at a "
                f"time ({known} that fail as torch does last), budget {options.programs_seconds:.0f} s"
                f"{'; torch CUDA reruns unexplained failures' if torch_cuda else ''}")
    deadline = time.perf_counter() + options.programs_seconds

    def run(name: str):
        if time.perf_counter() > deadline:
            return None
        return harness.run_program(name, "chainrule", standin_cuda=options.standin, default_device=options.device)

    with ThreadPoolExecutor(workers) as pool:  # (started in submission order: program_order's)
        runs = {name: pool.submit(run, name) for name in names}
        results = {name: future.result() for name, future in runs.items()}
    outcome, counts = {}, Counter()
    for name in names:
        device_run = results[name]
        if device_run is None:
            outcome[name] = {"status": "not run"}
            counts["not run"] += 1
            continue
        status, problems = judge_program(harness, device_run, expected[name])
        error = device_run.stderr.strip().splitlines()[-1][:200] if device_run.returncode and device_run.stderr.strip() \
            else ""
        if status == "fails" and name in TORCH_FAILS_TOO:
            status = "fails as torch does"
        elif status == "fails" and torch_cuda and time.perf_counter() < deadline + 60:
            # a failure nobody has explained yet: does torch CUDA fail on this program too?
            torch_run = harness.run_program(name, "torch", default_device=options.device)
            status = "fails as torch does" if torch_run.returncode else status
        counts[status] += 1
        outcome[name] = {"status": status, "final": device_run.final, "seconds": round(device_run.seconds, 1),
                         "problems": problems[:5], "error": error}
        finals = " ".join(f"{k}={v:.4g}" for k, v in (device_run.final or {}).items())
        mark = "ok  " if status in ("same", "fails as torch does") else "FAIL"
        detail = (f"FINAL {finals}" if status == "same" else
                  error or "; ".join(problems[:2])[:300]) + (f" ({TORCH_FAILS_TOO[name]})" if name in TORCH_FAILS_TOO
                                                             and status == "fails as torch does" else "")
        report.line(f"   {mark} {name}: {status}, {device_run.seconds:.1f} s: {detail}")
    report.line("   programs: " + ", ".join(f"{counts[k]} {k}" for k in ("same", "differs", "fails", "fails as torch does",
                                                                            "not run") if counts[k])
                + f" of {len(names)}")
    report.results["programs"] = {"counts": dict(counts), "programs": outcome}


# ---- 10. benchmarks ----

def several_gpus(report: Report, options) -> None:
    """With two GPUs or more: each model's step on cuda:1 while GPU 0 is current, and a model split
    over cuda:0 and cuda:1, against the CPU (the stand-in pretends two GPUs in a dry run)."""
    import contextlib

    from chainrule._backend import use_standin_cuda

    two = use_standin_cuda(devices=2) if options.standin else contextlib.nullcontext()
    with two:
        count = chainrule.cuda.device_count() if options.device.startswith("cuda") else 0
        if count < 2:
            report.line(f"   skipped: {count} GPU{'' if count == 1 else 's'} here (this section needs two)")
            report.results["gpus"] = {"skipped": count}
            return
        outcome = _model_steps(report, "cuda:1", " on cuda:1", lambda: chainrule.cuda.current_device() == 0)

        def split_step(devices):
            chainrule.manual_seed(0)
            nn = chainrule.nn
            first = nn.Sequential(nn.Linear(32, 64), nn.ReLU()).to(devices[0])
            second = nn.Linear(64, 10).to(devices[1])
            params = list(first.parameters()) + list(second.parameters())
            optimizer = chainrule.optim.Adam(params, lr=0.01)
            rng = np.random.default_rng(0)
            x = chainrule.from_numpy(rng.standard_normal((16, 32)).astype(np.float32)).to(devices[0])
            y = chainrule.from_numpy(rng.integers(0, 10, 16)).to(devices[1])
            loss = chainrule.nn.functional.cross_entropy(second(first(x).to(devices[1])), y)
            loss.backward()
            optimizer.step()
            return float(loss.item()), [_host(p) for p in params], [str(p.device) for p in params]

        try:
            cpu_loss, cpu_params, _ = split_step(("cpu", "cpu"))
            loss, params, where = split_step(("cuda:0", "cuda:1"))
            worst = max(float(np.max(np.abs(a - b))) for a, b in zip(params, cpu_params))
            ok = abs(loss - cpu_loss) <= 1e-4 * max(1.0, abs(cpu_loss)) and worst <= 1e-4 and \
                where == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
            outcome["split"] = {"ok": ok, "loss": loss, "cpu_loss": cpu_loss, "max_param_diff": worst}
            report.line(f"   {'ok  ' if ok else 'FAIL'} a model split over cuda:0 and cuda:1 (Adam): loss {loss:.6f} "
                        f"vs cpu {cpu_loss:.6f}, parameters differ by at most {worst:.2e}")
        except Exception as exc:
            outcome["split"] = {"ok": False, "error": _error(exc)}
            report.line(f"   FAIL split model: {_error(exc)}")
    report.results["gpus"] = outcome


def benchmarks(report: Report, options) -> None:
    from chainrule import benchmark_cuda

    report.line("   " + benchmark_cuda.gpu_description())
    size = "small" if options.dry_run else "full"
    reps = options.reps or (2 if options.dry_run else None)
    # a dry run times the CPU: torch has no stand-in, and the stand-in has no CUDA events
    device = "cpu" if options.dry_run else options.device
    results = benchmark_cuda.run_cuda_benchmarks(device=device, size=size, reps=reps,
                                                 warmup=1 if options.dry_run else benchmark_cuda.WARMUP)
    report.results["benchmarks"] = results
    for line in benchmark_cuda.format_table(results).splitlines():
        report.line("   " + line)


SECTIONS = {"environment": environment, "registry": registry, "models": models,
            "transfers": host_transfers, "kernels": fused_kernels, "later": later_parts,
            "recent": later_features, "distributed": distributed_and_random, "conv": conv_kernels, "gpus": several_gpus,
            "programs": whole_programs, "bench": benchmarks}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the code path on the CPU: small, quick, no GPU")
    parser.add_argument("--standin", action="store_true",
                        help="device='cuda' on the seam's NumPy-backed CuPy stand-in (use with --dry-run)")
    parser.add_argument("--device", default=None, help="the device checked against cpu (default cuda; cpu in a dry run "
                        "without --standin)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many registry cases (dry run: 40)")
    parser.add_argument("--registry-seconds", type=float, default=150.0, help="time budget of the registry section")
    parser.add_argument("--reps", type=int, default=None, help="timed steps per benchmark workload")
    parser.add_argument("--programs-seconds", type=float, default=300.0,
                        help="time budget of the whole-programs section (programs not started by then are not run)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    options = parser.parse_args(argv)
    if options.device is None:  # the stand-in is there to run 'cuda': a dry run with it checks that
        options.device = "cpu" if options.dry_run and not options.standin else "cuda"
    if options.dry_run and options.limit is None:
        options.limit = 40
    return options


def _standin(options, report: Report):
    """The seam's stand-in as the 'cuda' module for the run, when asked for and there."""
    use_standin = getattr(_backend, "use_standin_cuda", None)
    if not options.standin:
        return contextlib.nullcontext()
    if use_standin is None:
        report.line("   --standin: this chainrule's seam has no use_standin_cuda; running without it")
        return contextlib.nullcontext()
    return use_standin()


def _no_gpu_reason() -> str | None:
    """Why device='cuda' cannot run here (None when it can): CuPy missing, or CuPy without a
    usable device (no driver, no GPU), in words for the report."""
    if chainrule.cuda.is_available():
        return None
    cp = _cupy()
    if cp is None:
        return "CuPy is not installed (pip install 'chainrule[cuda13]', see docs/gpu.md)"
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy's CUDARuntimeError, e.g. cudaErrorInsufficientDriver without a driver
        return f"CuPy {cp.__version__} sees no device ({_error(exc)})"
    return f"CuPy {cp.__version__} sees {count} devices"


def main(argv=None) -> int:
    """0 when every check ran on the device; 2 when device='cuda' has no GPU under it (a real run
    then stops after the environment: every other check would only fail the same way)."""
    options = parse_args(argv)
    report = Report()
    started = time.perf_counter()
    report.line(f"chainrule GPU check ({'dry run, ' if options.dry_run else ''}"
                f"{'stand-in, ' if options.standin else ''}device {options.device})")
    titles = {"environment": "environment", "registry": "registry: device against cpu",
              "models": "training step of each model type: device against cpu",
              "transfers": "host transfers in one training step", "kernels": "fused kernels against references",
              "later": "fused dispatch, multi-tensor Adam, device random, map_location, autocast, train --nprocs",
              "recent": "sessions 8-11 on the device: mixed-precision norms, LSTM proj_size, packed batches, "
                        "normal, out=, second order, views",
              "distributed": "collectives and DDP on cuda (an MPI world of size 1), CUDA random streams",
              "conv": "implicit-GEMM conv kernels against im2col and the CPU; conv2d bench off and on",
              "gpus": "several GPUs: steps on cuda:1 while GPU 0 is current, a model split over two",
              "programs": "whole programs (tests/programs) with set_default_device, judged against their calibration",
              "bench": "benchmarks: chainrule against torch"}
    no_gpu = None
    with _standin(options, report):
        if options.device.startswith("cuda"):
            no_gpu = _no_gpu_reason()
        for name in options.sections.split(","):
            if no_gpu and not options.dry_run and name != "environment":
                break
            report.section(titles[name], SECTIONS[name], options)
    if no_gpu:
        report.results["no_gpu"] = no_gpu
        report.line(f"no GPU: {no_gpu}; the device checks need one"
                    + ("" if options.dry_run else " (for the code path without one: --dry-run --standin)"))
    report.line(f"done in {time.perf_counter() - started:.0f} s")
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_check.txt").write_text("\n".join(report.lines) + "\n")
        (Path(out) / "gpu_check.json").write_text(json.dumps(report.results, indent=1, default=str))
    return 2 if no_gpu else 0


if __name__ == "__main__":
    sys.exit(main())
