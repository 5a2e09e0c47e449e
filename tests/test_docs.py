"""docs/backprop.md stays true: every ```python block runs, and what it prints is the ```text
block that follows it (blocks share one namespace, in order, like a notebook)."""

import contextlib
import io
import pathlib
import re

import numpy as np
import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.S | re.M)


def blocks(path: pathlib.Path) -> list[tuple[str, str, int]]:
    """(language, body, line number) of every fenced block."""
    text = path.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]


def examples(path: pathlib.Path) -> list[tuple[str, str | None, int]]:
    """(code, expected output or None, line) for each python block; None: no text block follows."""
    found = blocks(path)
    result = []
    for i, (language, body, line) in enumerate(found):
        if language != "python":
            continue
        expected = found[i + 1][1] if i + 1 < len(found) and found[i + 1][0] == "text" else None
        result.append((body, expected, line))
    return result


@pytest.mark.parametrize("name", ["backprop.md"])
def test_doc_examples_print_what_the_doc_says(name):
    path = DOCS / name
    cases = examples(path)
    assert len(cases) >= 6
    namespace = {"__name__": f"docs_{name}"}
    for code, expected, line in cases:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), np.errstate(all="ignore"):
            exec(compile(code, f"{path}:{line}", "exec"), namespace)
        printed = out.getvalue()
        if expected is None:
            assert printed == "", f"{name}:{line} prints output but no ```text block follows it"
        else:
            assert printed == expected, f"{name}:{line}: the printed output differs from the doc"


def test_extractor_pairs_blocks(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("a\n```python\nprint(1)\n```\n\n```text\n1\n```\n```python\nx = 2\n```\n",
                   encoding="utf-8")
    assert examples(doc) == [("print(1)\n", "1\n", 2), ("x = 2\n", None, 9)]
