"""``chainrule explain`` under any string: the seen failures as a table, then random and
grammar-based fuzzing. Every input either explains (exit 0) or is rejected in one short line with
exit 2; nothing hangs, nothing prints a traceback, nothing is executed. CI runs a fixed budget with
a fixed seed; ``CHAINRULE_FUZZ=long`` runs 20 times more."""

import functools
import os
import random
import signal
import string

import pytest

from chainrule import cli
from chainrule.cli import main
from chainrule.commands import explain

LONG = os.environ.get("CHAINRULE_FUZZ") == "long"
RANDOM_BUDGET = 1000 * (20 if LONG else 1)
GRAMMAR_BUDGET = 1000 * (20 if LONG else 1)


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def _explain(capsys, expression: str, at=("x=[1.5, -2, 3]", "y=2", "W=randn(2, 3)")):
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)  # a hang detector, not a timing assertion
    try:
        code = main(["explain", "--at", *at, "--", expression])
    finally:
        signal.alarm(0)
    out, err = capsys.readouterr()
    if code != 0:
        assert code == 2, (expression[:200], err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chainrule explain: error: "), (expression[:200], err)
        assert len(lines[0]) < 700, len(lines[0])
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize("expression, message", [
    ("x * 9**9**9", None),                             # hung computing a 370-million-digit integer
    ("x * 10**400", None),                             # OverflowError traceback
    ("x * 1e308**2", None),                            # OverflowError traceback
    ("-" * 100_000 + "x", "characters long"),          # MemoryError in the parser
    ("+".join(["x"] * 200_000), "characters long"),    # a 1 MB x+x+...: RecursionError
    ("(" * 500 + "x" + ")" * 500, "too many nested parentheses"),
    ("exp(" * 100 + "x" + ")" * 100, "nests more than"),
    ("-" * 200 + "x", "nests more than"),
    ("x * " + "9" * 5000, "too long|characters long"),
    ("sum(x" + ", 1" * 30 + ")", "cannot compute"),
    ("x." + "a" * 20_000, "characters long"),          # an error that repeated the whole input
], ids=lambda v: v[:24] if isinstance(v, str) else None)
def test_seen_failures(capsys, expression, message):
    code, out, err = _explain(capsys, expression)
    if message is None:
        assert code == 0 and "gradients:" in out
    else:
        assert code == 2
        import re

        assert re.search(message, err), err


def test_intermediate_results_are_bounded_before_they_are_computed(capsys):
    for expression in ("sum(outer(v, v))", "sum(v + tensor_column)", "sum(matmul(outer(u, u), u))"):
        at = ("v=randn(2000)", "u=randn(1001)", "tensor_column=zeros(2000, 1)")
        code, _, err = _explain(capsys, expression, at=at)
        assert code == 2 and "would have" in err, (expression, err)


def test_long_inputs_are_never_repeated_whole(capsys):
    code, _, err = _explain(capsys, "x + " + "q" * 1500)
    assert code == 2 and "unknown name" in err and len(err) < 400


@pytest.mark.parametrize("value, message", [
    ("randn(100000, 100000)", "10,000,000,000 elements"),
    ("zeros(10**6, 10**6)", "expected a number"),
    ("ones(1e300)", "elements"),
    ("arange(0, 1e12)", "elements"),
    ("eye(10000000)", "elements"),
    ("randn(-1)", "bad arguments"),
    ("randn(1e400)", "bad arguments"),
    ("[" * 1000 + "1" + "]" * 1000, "too many nested parentheses"),
    ("[" * 100 + "1" + "]" * 100, "nests more than"),
    ("[" + "1," * 60_000 + "1]", "characters long"),
    ("1" * 5000, "Exceeds the limit"),
    ("1" * 400, "too large"),
], ids=lambda v: v[:24] if isinstance(v, str) else None)
def test_at_values_are_bounded(capsys, value, message):
    import re

    code, _, err = _explain(capsys, "x", at=(f"x={value}",))
    assert code == 2 and re.search(message, err), err


def test_python_syntax_warnings_do_not_leak(capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, err = _explain(capsys, "1if x")
    assert code == 2 and "SyntaxWarning" not in err


def test_seed_must_be_non_negative(capsys):
    assert main(["explain", "x", "--at", "x=randn(2)", "--seed", "-1"]) == 2
    assert "--seed must be a non-negative integer" in capsys.readouterr().err


def test_jacobian_size_is_bounded(capsys):
    code, out, err = _explain(capsys, "tanh(x)", at=("x=randn(2000)",))
    assert code == 0
    assert main(["explain", "tanh(x)", "--at", "x=randn(2000)", "--jacobian"]) == 2
    assert "--jacobian would have 4,000,000 entries" in capsys.readouterr().err


def test_run_time_is_bounded(capsys, monkeypatch):
    monkeypatch.setattr(explain, "MAX_SECONDS", 1)
    real = explain.Expression.evaluate

    def slow(self, *args, **kwargs):
        import time

        time.sleep(5)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(explain.Expression, "evaluate", slow)
    assert main(["explain", "x", "--at", "x=1"]) == 2
    assert "gave up after 1 s" in capsys.readouterr().err


# ------------------------------------------------------------------ fuzzing
_SENTINEL = "chainrule_fuzz_sentinel"
_TOKENS = ["x", "y", "W", "(", ")", "+", "-", "*", "/", "**", "@", ",", "[", "]", ".", "=", "1", "0", "2.5",
           "1e308", "9", "exp", "sum", "max", "softmax", "dim", "__import__", "'os'", "open", "lambda", ":",
           "__class__", "eval", " ", "\n", "\\", "\x00", "é", "∂", "if", "else", "for", "in", "not", "{", "}"]
_ATOMS = ["x", "y", "W", "x", "y", "W", "1", "0", "2.5", "-3", "1e308", "1e-320", "0.0", "9**9**9", "10**400",
          "True", "'s'"]
_UNARY = ["exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs", "sin", "cos", "square", "sum", "mean",
          "softmax", "log_softmax", "norm", "max", "min", "t"]
_BINARY_FUNCS = ["matmul", "dot", "maximum", "minimum", "pow", "mv", "mm", "outer", "max", "min"]
_FORBIDDEN = [f"__import__('os').mkdir('{_SENTINEL}')", f"open('{_SENTINEL}', 'w')", "x.__class__",
              "eval('1')", "(lambda: 1)()", "[c for c in x]", "x[0]", "exec('1')", "globals()", "y if x else y",
              "(z := x)", "f'{x}'", "x.exp()"]


def _grammar(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth <= 0 or roll < 0.25:
        return rng.choice(_ATOMS)
    if roll < 0.5:
        return f"{_grammar(rng, depth - 1)} {rng.choice(['+', '-', '*', '/', '**', '@'])} {_grammar(rng, depth - 1)}"
    if roll < 0.6:
        return f"-({_grammar(rng, depth - 1)})"
    if roll < 0.8:
        keyword = rng.choice(["", "", ", dim=0", ", dim=-1", ", dim=5", ", keepdim=True", ", dim=1.5"])
        return f"{rng.choice(_UNARY)}({_grammar(rng, depth - 1)}{keyword})"
    if roll < 0.95:
        return f"{rng.choice(_BINARY_FUNCS)}({_grammar(rng, depth - 1)}, {_grammar(rng, depth - 1)})"
    return rng.choice(_FORBIDDEN)


@pytest.fixture
def one_parser(monkeypatch):
    """Build the argument parser once: the fuzz budget goes to the expressions, not to argparse."""
    monkeypatch.setattr(cli, "build_parser", functools.lru_cache(cli.build_parser))


def test_random_strings(capsys, tmp_path, monkeypatch, one_parser):
    monkeypatch.chdir(tmp_path)
    rng = random.Random("chainrule-explain-random")
    codes = {0: 0, 2: 0}
    for _ in range(RANDOM_BUDGET):
        if rng.random() < 0.5:
            text = "".join(rng.choice(_TOKENS) for _ in range(rng.randint(1, 30)))
        else:
            text = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 40)))
        codes[_explain(capsys, text)[0]] += 1
    assert not os.path.exists(_SENTINEL)
    assert codes[2] > 0
    print(f"random: {RANDOM_BUDGET} strings, exit codes {codes}")


def test_grammar_expressions(capsys, tmp_path, monkeypatch, one_parser):
    monkeypatch.chdir(tmp_path)
    rng = random.Random("chainrule-explain-grammar")
    codes = {0: 0, 2: 0}
    for _ in range(GRAMMAR_BUDGET):
        codes[_explain(capsys, _grammar(rng, rng.randint(1, 4)))[0]] += 1
    assert not os.path.exists(_SENTINEL)
    assert codes[0] > GRAMMAR_BUDGET // 20 and codes[2] > GRAMMAR_BUDGET // 20, codes
    print(f"grammar: {GRAMMAR_BUDGET} expressions, exit codes {codes}")
