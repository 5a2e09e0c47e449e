"""torch 2.13's own custom-operator database (``torch.testing._internal.custom_op_db``) run on chainrule
through tools/torch_custom_op_trial.py: chainrule's twins of its operators, built from torch's source,
must agree with torch on every OpInfo's samples (float32, float64 and int64: forward, vjp, double
backward, func.grad and vmap(grad) in float64, vmap through register_vmap, meta tensors through register_fake,
opcheck, argument errors, the schema and torch.ops access), on the file's fake-kernel-only operators,
and on the custom-op definitions torch refuses. Differences kept on purpose are listed below with their
reasons. The whole trial (more dtypes, gradcheck): ``python tools/torch_custom_op_trial.py run --out DIR``."""


import pytest

from tests.compat.trial_tools import load_tool

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
if not torch.__version__.startswith("2.13."):
    pytest.skip(f"the trial compares with torch 2.13, not {torch.__version__}", allow_module_level=True)


# custom_op_db's OpInfos in torch 2.13 (test_every_custom_op_db_entry_is_covered notices a new one)
OPINFOS = ["NumpyCubeCustomOp", "NumpyMulCustomOp", "NumpyMulScalarCustomOp", "NumpySortCustomOp",
           "NumpyTakeCustomOp", "NumpyNonzeroCustomOp", "NumpyNMSCustomOp", "NumpyViewCopyCustomOp",
           "NumpyCatCustomOp", "NumpySplitCopyCustomOp", "NumpySplitCopyWithIntCustomOp"]

# entries allowed to differ, by rule, each with its reason
KNOWN_DIFFERENCES = [
    (lambda row: row["entry"].endswith("/opcheck") and row["opinfo"] in ("NumpyNonzeroCustomOp", "NumpyNMSCustomOp")
     and "'test_faketensor': 'SKIPPED'" in row["detail"],
     "a fake kernel asking get_ctx() for a data-dependent size: torch's FakeTensor traces an unbacked size, "
     "chainrule has no symbolic sizes and its opcheck reports SKIPPED"),
    (lambda row: row["entry"] == "schema_errors/returns_input" and "torch._library.custom_ops" in row["detail"],
     "torch's aliasing error names its own torch._library.custom_ops module as the implementation's; chainrule "
     "names the module that defined the operator"),
    (lambda row: row["entry"].endswith("/vmap_nested") and row["kind"] == "differ"
     and row["detail"].startswith("output: strides"),
     "a vmap of a vmap: torch's inner rule sees both batch dims and its output (numpy_mul's: a movedim view) "
     "comes back as it is; chainrule's outer vmap stacks the inner vmaps' results; values, dtype, shape agree"),
    (lambda row: row["entry"] == "schema_errors/bad_schema_text" and row["kind"] == "differ",
     "chainrule reads schema text with patterns, not torch's lexer: a malformed schema raises the same RuntimeError, "
     "but names another token (\"expected '->' but found 'eof'\" for torch's \"expected ) but found 'arrow'\")"),
    (lambda row: row["entry"] == "bool/samples" and row["kind"] == "skipped",
     "torch's own sample function for numpy_nonzero fails for bool (result type Long can't be cast to Bool)"),
]


@pytest.fixture(scope="module")
def results():
    module = load_tool("torch_custom_op_trial")
    # gradcheck is left to the full trial (finite differences on both libraries: most of the time);
    # double_backward compares second derivatives with torch's here
    checks = tuple(check for check in module.ALL_CHECKS if check != "gradcheck")
    return module.trial(dtypes=("float32", "float64", "int64"), checks=checks)


def test_every_custom_op_db_entry_is_covered():
    from torch.testing._internal.custom_op_db import custom_op_db

    assert [info.name for info in custom_op_db] == OPINFOS


def test_twins_are_defined_from_torchs_source_without_errors(results):
    failed = [f"{row['entry']}: {row['detail']}" for row in results if row["opinfo"] == "definitions"]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("name", [*OPINFOS, "extras"])
def test_custom_op_db_entries_agree_with_torch(results, name):
    rows = [row for row in results if row["opinfo"] == name]
    assert len(rows) >= 10, f"{name}: the trial ran only {len(rows)} entries"
    differing = [f"{row['entry']}: {row['kind']} {row['detail']}" for row in rows
                 if row["kind"] != "same" and not any(rule(row) for rule, _ in KNOWN_DIFFERENCES)]
    assert not differing, "\n".join(differing)
