"""docs/fx.md stays true: its python block runs and prints the text block that follows it."""

import contextlib
import io

from tests.test_docs import DOCS, examples


def test_fx_doc_example_prints_what_the_doc_says():
    path = DOCS / "fx.md"
    cases = examples(path)
    assert cases
    namespace = {"__name__": "docs_fx"}
    for code, expected, line in cases:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{path}:{line}", "exec"), namespace)
        assert out.getvalue() == (expected or ""), f"fx.md:{line}: the printed output differs from the doc"
