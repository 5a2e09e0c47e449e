"""Every op case in the test registry, run on chainrule and torch: node names, contiguity, dtypes.

The registry is every ``OpCase`` defined at module level in ``tests/ops/test_*.py``. For each
output, ``grad_fn.name()`` must equal torch's (where torch records one), ``is_contiguous()`` must
equal torch's (internal layouts never leak: ``out.view(n, -1)`` works wherever it works in torch),
and the dtype must match.
"""

from __future__ import annotations

import importlib
import pkgutil

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

# Deliberate differences, each with its reason: OpCase name prefix -> why.
_FOLDED = "torch's node is named after its internal folding (view/unsafe_view/bmm/permute); ours after the op"
NODE_NAME_ALLOWED: dict[str, str] = {
    "matmul": _FOLDED,
    "multi_dot": _FOLDED,
    "chain_matmul": _FOLDED,
    "matrix_power": _FOLDED,
    "einsum": _FOLDED,
    "tensordot": _FOLDED,
    "inner": _FOLDED,
    "rdiv": "torch computes number / x as reciprocal(x) * number (MulBackward0); ours divides in one node",
    "pad_circular": "torch pads circularly with slice copies (CopySlices), which has no op name to match",
    "avg_pool1d": "torch runs 1-d pooling as unsqueeze, 2-d pool, squeeze (SqueezeBackward1); ours pools 1-d directly",
    "max_pool1d": "as avg_pool1d",
    "adaptive_avg_pool1d": "as avg_pool1d",
    "adaptive_max_pool1d": "as avg_pool1d",
    "max_unpool1d": "as avg_pool1d",
    "max_pool2d_unbatched": "torch's kernel takes unbatched input; ours adds a batch dim and squeezes it off",
    "avg_pool2d_unbatched": "as max_pool2d_unbatched",
    "adaptive_max_pool2d_unbatched": "as max_pool2d_unbatched",
    "unfold_unbatched": "as max_pool2d_unbatched",
}
# torch's einsum returns whatever layout its internal permute/bmm plan leaves; ours is always
# contiguous (which only ever lets more .view() calls succeed)
CONTIGUITY_ALLOWED: dict[str, str] = {
    "einsum": "layout of torch's einsum follows its internal plan",
    "solve_batch_vector": "torch leaves a batch of solved vectors in LAPACK's column layout",
}


def _allowed(table: dict, name: str) -> bool:
    return any(name.startswith(prefix) for prefix in table)


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
        assert o.is_contiguous() == t.is_contiguous() or _allowed(CONTIGUITY_ALLOWED, case.name), (
            f"{case.id} output {k}: is_contiguous() {o.is_contiguous()} vs torch {t.is_contiguous()} "
            f"(strides {o.stride()} vs {t.stride()})")
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"{case.id} output {k}: dtype"
        if t.grad_fn is not None and not _allowed(NODE_NAME_ALLOWED, case.name):
            ours_name = o.grad_fn.name() if o.grad_fn is not None else None
            assert ours_name == t.grad_fn.name(), f"{case.id} output {k}: grad_fn {ours_name} vs torch {t.grad_fn.name()}"


def test_registry_is_populated():
    assert len(REGISTRY) > 300
