"""Every op case in the test registry, run on chainrule and torch: node names, contiguity, dtypes.

The registry is every ``OpCase`` defined at module level in ``tests/ops/test_*.py``. For each
output, ``grad_fn.name()`` must equal torch's (where torch records one), ``is_contiguous()`` must
equal torch's (internal layouts never leak: ``out.view(n, -1)`` works wherever it works in torch),
and the dtype must match.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import chainrule

from . import harness
from .harness import OpCase, _as_list, _make, requires_torch, torch


def _registry() -> list[OpCase]:
    package = importlib.import_module(__package__)
    cases: dict[str, OpCase] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("test_") or info.name == "test_registry_compat":
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, list):
                for case in value:
                    if isinstance(case, OpCase):
                        cases.setdefault(f"{info.name}:{case.id}", case)
    return [cases[k] for k in sorted(cases)]


REGISTRY = _registry()

# Deliberate differences, each with its reason. Keys are OpCase names.
NODE_NAME_ALLOWED: dict[str, str] = {}


def _run_both(case: OpCase):
    ours = _as_list(case.fn(chainrule, *_make(chainrule, case, "float32")))
    theirs = _as_list(case.fn(torch, *_make(torch, case, "float32")))
    assert len(ours) == len(theirs), f"{case.id}: {len(ours)} outputs vs torch's {len(theirs)}"
    return ours, theirs


@requires_torch
@harness.parametrize(REGISTRY)
def test_output_metadata_matches_torch(case):
    ours, theirs = _run_both(case)
    for k, (o, t) in enumerate(zip(ours, theirs)):
        if not hasattr(t, "is_contiguous"):
            continue
        assert o.is_contiguous() == t.is_contiguous(), (
            f"{case.id} output {k}: is_contiguous() {o.is_contiguous()} vs torch {t.is_contiguous()} "
            f"(strides {o.stride()} vs {t.stride()})")
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"{case.id} output {k}: dtype"
        if t.grad_fn is not None and case.name not in NODE_NAME_ALLOWED:
            ours_name = o.grad_fn.name() if o.grad_fn is not None else None
            assert ours_name == t.grad_fn.name(), f"{case.id} output {k}: grad_fn {ours_name} vs torch {t.grad_fn.name()}"


def test_registry_is_populated():
    assert len(REGISTRY) > 300
