"""`chainrule explain` and `chainrule gradcheck`: good input, --jacobian, and one-line errors."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import chainrule
from chainrule.cli import main

_RUN_CLI = "import sys; from chainrule.cli import main; sys.exit(main(sys.argv[1:]))"


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_worked_example(capsys):
    code, out, err = _run(capsys, "explain", "(x + y) * max(y, z)", "--at", "x=1", "y=2", "z=0")
    assert code == 0 and err == ""
    forward, backward = out.split("\n\n", 1)
    assert forward.splitlines() == [
        "forward:", "  x = 1.0", "  y = 2.0", "  z = 0.0", "  x + y = 3.0", "  max(y, z) = 2.0",
        "  f = (x + y) * max(y, z) = 6.0",
    ]
    assert "[1] f = (x + y) * max(y, z)  MulBackward0" in backward
    assert "sends to x + y: 2.0" in backward and "sends to max(y, z): 3.0" in backward
    assert "y receives 2.0 + 3.0 = 5.0" in backward
    assert backward.rstrip().splitlines()[-1] == "gradients: ∂f/∂x = 2.0, ∂f/∂y = 5.0, ∂f/∂z = 0.0"


def test_explain_constructors_and_seed(capsys):
    argv = ["explain", "sum(tanh(W * x + b))", "--at", "W=randn(3,", "4)", "x=[1, 2, 3, 4]",
            "b=zeros(4)", "--seed", "3"]
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    W = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    w_line = next(ln for ln in out.splitlines() if ln.startswith("  W = (3, 4) "))
    shown_w = [float(v) for v in w_line.split("[[")[1].rstrip("]").replace("], [", ", ").split(", ")]
    np.testing.assert_array_equal(np.array(shown_w, dtype=np.float32), W.ravel())
    z = W * np.arange(1, 5, dtype=np.float32)
    grad_b = (1 - np.tanh(z) ** 2).sum(0)
    line = next(ln for ln in out.splitlines() if ln.startswith("gradients:"))
    shown = line.split("∂f/∂b = (4,) [")[1].rstrip("]").split(", ")
    np.testing.assert_allclose([float(v) for v in shown], grad_b, rtol=1e-5)
    # the same seed gives the same output; another seed does not
    assert _run(capsys, *argv)[1] == out
    assert _run(capsys, *argv[:-1], "4")[1] != out


@pytest.mark.parametrize("value, expected", [
    ("eye(2)", [[1.0, 0.0], [0.0, 1.0]]),
    ("ones(2)", [1.0, 1.0]),
    ("arange(3)", [0.0, 1.0, 2.0]),
    ("tensor([1.5, -2])", [1.5, -2.0]),
    ("-3", -3.0),
    ("rand(2)", None),
])
def test_at_constructors(value, expected):
    from chainrule.commands.explain import make_inputs

    t = make_inputs([f"v={value}"], 0, chainrule.float32)["v"]
    assert t.dtype == chainrule.float32 and t.requires_grad and t.name == "v"
    if expected is not None:
        np.testing.assert_array_equal(t.detach().numpy(), np.array(expected, dtype=np.float32))
    else:
        assert t.shape == (2,) and ((t.detach().numpy() >= 0) & (t.detach().numpy() < 1)).all()


def test_vector_output_and_jacobian(capsys):
    code, out, _ = _run(capsys, "explain", "tanh(W @ x + b)", "--at", "W=randn(3,4)", "x=randn(4)",
                        "b=zeros(3)", "--jacobian")
    assert code == 0
    assert "f has shape (3,): explaining the shape-convention gradient of sum(f)" in out
    jac = out[out.index("Jacobian, rows"):]
    assert "∂f/∂W: shape (3, 3, 4)" in jac and "∂f/∂x: shape (3, 4)" in jac and "∂f/∂b: shape (3, 3)" in jac
    assert "shape-convention gradient 1ᵀJ = ∂sum(f)/∂b (shape (3,))" in jac
    # tanh's local Jacobian is diagonal: 1 - tanh(z)²
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 4)).astype(np.float32)
    x = rng.standard_normal(4).astype(np.float32)
    local = next(ln for ln in jac.splitlines() if ln.startswith("local Jacobian of tanh(W @ x + b)"))
    assert local.endswith("(3, 3), diagonal (an elementwise op)")
    diag_line = jac.splitlines()[jac.splitlines().index(local) + 1]
    shown = [float(v) for v in diag_line.split("[")[1].rstrip("]").split(", ")]
    np.testing.assert_allclose(shown, 1 - np.tanh(W @ x) ** 2, rtol=1e-5)
    # the Jacobian w.r.t. b is that same diagonal matrix, printed row by row
    b_block = jac[jac.index("∂f/∂b"):].splitlines()[1:4]
    rows = [[float(v) for v in ln.strip().strip("[],").split(", ")] for ln in b_block]
    np.testing.assert_allclose(rows, np.diag(1 - np.tanh(W @ x) ** 2), rtol=1e-5, atol=1e-7)


def test_graph_dot_output(capsys, tmp_path):
    path = tmp_path / "g.dot"
    code, out, _ = _run(capsys, "explain", "x * y", "--at", "x=2", "y=3", "--graph", str(path))
    assert code == 0 and f"graph written to {path}" in out
    text = path.read_text(encoding="utf-8")
    assert "MulBackward0" in text and '"x\\n()"' in text


def test_graph_svg_without_dot_fails_before_printing(capsys, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, out, err = _run(capsys, "explain", "x * y", "--at", "x=2", "y=3", "--graph", str(tmp_path / "g.svg"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "`dot` program" in err


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_svg(capsys, tmp_path):
    pytest.importorskip("graphviz")
    path = tmp_path / "g.svg"
    code, _, _ = _run(capsys, "explain", "x * y", "--at", "x=2", "y=3", "--graph", str(path))
    svg = path.read_text(encoding="utf-8")
    assert code == 0 and "<svg" in svg and "MulBackward0" in svg and ">f</text>" in svg


@pytest.mark.parametrize("expression, at, message", [
    ("(x + q) * y", ["x=1", "y=2"], "unknown name 'q'.*column 6: \\(x \\+ »q«\\) \\* y"),
    ("x.exp()", ["x=1"], "attribute access at column 1"),
    ("(lambda: x)()", ["x=1"], "not a lambda at column 2"),
    ("(x + ", ["x=1"], "syntax error at column"),
    ("x[0]", ["x=[1, 2]"], "indexing is not allowed"),
    ("__import__('os')", ["x=1"], "function '__import__' is not allowed"),
    ("W @ v", ["W=randn(3,4)", "v=[1, 2]"], "cannot compute 'W @ v'.*column 1"),
    ("x + 'a'", ["x=1"], "only numbers are allowed"),
    ("x + y", ["x=1", "y=open(1)"], "unknown constructor"),
    ("x + 1", ["x=1", "x=2"], "binds 'x' twice"),
    ("x + y", ["y=1", "x=1", "x=2", "y=2"], "binds 'y' twice"),
    ("2 + 3", [], "does not depend on any --at value"),
])
def test_bad_input_is_one_line_exit_2(capsys, expression, at, message):
    argv = ["explain", expression] + (["--at", *at] if at else [])
    code, out, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule explain: error: ")
    assert re.search(message, lines[0]), lines[0]


def test_bad_input_subprocess_has_no_traceback():
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-c", _RUN_CLI, "explain", "foo(x)", "--at", "x=1"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "function 'foo' is not allowed" in result.stderr


def test_gradcheck_pass_and_fail(capsys):
    code, out, _ = _run(capsys, "gradcheck", "sum(tanh(W @ x + b))", "--at", "W=randn(3,4)",
                        "x=randn(4)", "b=zeros(3)")
    assert code == 0
    assert out.rstrip().splitlines()[-1].startswith("PASSED")
    assert "in float64" in out and "W: ok  worst |analytical - numerical| = " in out
    # |x| at 0: autograd says 0, central differences say 0 too; sqrt at 0 disagrees (inf vs huge)
    code, out, _ = _run(capsys, "gradcheck", "sqrt(x)", "--at", "x=[0.0, 1.0]")
    assert code == 1
    assert "x: FAIL" in out and "∂f[0]/∂x[0]" in out
    assert out.rstrip().splitlines()[-1].startswith("FAILED")


def test_gradcheck_bad_input(capsys):
    code, _, err = _run(capsys, "gradcheck", "x +* y", "--at", "x=1", "y=1")
    assert code == 2 and err.startswith("chainrule gradcheck: error: syntax error")


def test_module_entry_points_report_bad_input_in_one_line():
    import subprocess
    import sys

    for module in ("chainrule", "chainrule.cli"):
        proc = subprocess.run([sys.executable, "-m", module, "explain", "x +", "--at", "x=1"],
                              capture_output=True, text=True)
        assert proc.returncode == 2, (module, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_truncated_expression_points_past_its_end(capsys):
    from chainrule.cli import main

    assert main(["explain", "x +", "--at", "x=1"]) == 2
    assert "x +»«" in capsys.readouterr().err
