"""torch's autograd.Function database, run on chainrule: every OpInfo of
``torch.testing._internal.autograd_function_db`` (custom Functions in the functorch style) through
tools/torch_autograd_function_trial.py in float32 — forward, backward, grad of grad, forward AD,
the inplace variant, and torch.func's grad, vjp, jvp, jacrev, jacfwd, vmap and their compositions
(jacfwd of jacrev among them) — on chainrule twins of the Functions built from torch's own source.
Every entry must agree with torch. The full trial (float64 too) runs outside CI:
``python tools/torch_autograd_function_trial.py run --out DIR``."""

from __future__ import annotations

import pytest

from tests.compat.trial_tools import load_tool

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip(f"the trial's expectations are torch 2.13's, not {torch.__version__}'s", allow_module_level=True)


# autograd_function_db's entries in torch 2.13 (test_every_db_entry_is_covered notices a new one)
ENTRIES = ["NumpyCubeAutogradFunction", "NumpyExpMarkDirtyAutogradFunction", "NumpyMulAutogradFunction",
           "NumpyCubeNotComposableAutogradFunction", "NumpySortAutogradFunction", "NumpyTakeAutogradFunction",
           "SelectAutogradFunction", "CubeGenVmapAutogradFunction", "MulGenVmapAutogradFunction",
           "SortGenVmapAutogradFunction", "SelectGenVmapAutogradFunction", "ScaleGradGenVmapAutogradFunction",
           "ZeroGradientsGenVmapAutogradFunction", "ForwardHasDefaultArgsAutogradFunction"]


@pytest.fixture(scope="module")
def results():
    return load_tool("torch_autograd_function_trial").trial(dtypes=("float32",))


def test_every_db_entry_is_covered():
    from torch.testing._internal.autograd_function_db import autograd_function_db

    assert sorted(info.name for info in autograd_function_db) == sorted(ENTRIES)


@pytest.mark.parametrize("name", ENTRIES)
def test_autograd_function_db_entries_agree_with_torch(results, name):
    rows = [row for row in results if row["op"] == name]
    assert len(rows) >= 15, f"{name}: the trial ran only {len(rows)} entries"
    differing = [f"{row['entry']}: {row['kind']} {row['detail']}" for row in rows if row["kind"] != "same"]
    assert not differing, "\n".join(differing)
