"""Session 30, lane jit2: small differences from torch 2.13 the first wave noticed, each checked
against torch on the same calls."""

import numpy as np
import pytest

import chainrule
from tests._profile import LONG

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- torch.linalg's argument parser
def _linalg_names() -> list:
    return sorted(name for name in dir(torch.linalg)
                  if not name.startswith("_") and name[0].islower() and callable(getattr(torch.linalg, name)))


# calls torch's parser refuses: nothing, a string for the matrix, an unknown keyword, a second
# positional a keyword-only function does not take, too many positionals, a keyword of the wrong name
_BAD_CALLS = {
    "nothing": lambda lib, A, B: ((), {}),
    "string": lambda lib, A, B: (("s",), {}),
    "unknown_keyword": lambda lib, A, B: ((A,), {"bogus": 1}),
    "two_and_unknown_keyword": lambda lib, A, B: ((A, B), {"bogus": 1}),
    "string_second": lambda lib, A, B: ((A, "s"), {}),
    "nine_positionals": lambda lib, A, B: ((A, B, 1, 2, 3, 4, 5, 6, 7), {}),
    "keyword_A": lambda lib, A, B: ((A,), {"A": A}),
}


def _outcome(lib, name: str, call: str) -> str:
    A = lib.eye(3) + 0.1
    B = lib.ones(3, 2)
    args, kwargs = _BAD_CALLS[call](lib, A, B)
    try:
        getattr(lib.linalg, name)(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the class and words are what is compared
        return f"{type(error).__name__}: {error}"
    return "ran"


@pytest.mark.parametrize("call", sorted(_BAD_CALLS))
@pytest.mark.parametrize("name", _linalg_names())
def test_linalg_refuses_arguments_as_torch_does(name, call):
    assert _outcome(chainrule, name, call) == _outcome(torch, name, call)


@pytest.mark.parametrize("kwargs", [{}, {"left": True}, {"upper": 1}])
def test_solve_triangular_needs_upper_as_torch_says(kwargs):
    def outcome(lib):
        A = lib.eye(3)
        try:
            lib.linalg.solve_triangular(A, lib.ones(3, 2), **kwargs)
        except TypeError as error:
            return str(error)
        return "ran"

    assert outcome(chainrule) == outcome(torch)
    assert outcome(torch) != "ran"


@pytest.mark.parametrize("p", ["s", "NUC", 3, 2.5, 0, "fro", "nuc", 1, -2, float("inf")])
def test_linalg_cond_names_an_invalid_order_as_torch_does(p):
    def outcome(lib):
        A = lib.tensor([[2.0, 1.0], [0.5, 3.0]])
        try:
            return lib.linalg.cond(A, p).item()
        except RuntimeError as error:
            return str(error)

    ours, theirs = outcome(chainrule), outcome(torch)
    assert ours == pytest.approx(theirs, rel=1e-5) if isinstance(theirs, float) else ours == theirs


# ---------------------------------------------------------------- scripted modules
def _scripted_model(lib):
    class Model(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = lib.nn.Linear(2, 2)
            self.seq = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU())

        def reset_parameters(self):
            self.l.reset_parameters()

        def forward(self, x):
            return self.seq(self.l(x))

    return lib.jit.script(Model())


def _script_module(lib):
    class Block(lib.jit.ScriptModule):
        def __init__(self):
            super().__init__()
            self.l = lib.nn.Linear(2, 2)
            self.seq = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU())
            self.ml = lib.nn.ModuleList([lib.nn.Linear(2, 2)])

        def plain_method(self):
            return "plain"

        @lib.jit.script_method
        def forward(self, x):
            return self.seq(self.l(x))

    return Block()


# what a user does with a compiled module after building it; each is run on a fresh one
_SCRIPTED_STATEMENTS = [
    "m.reset_parameters()", "m.l.reset_parameters()", "m.seq.append(nn.ReLU())", "tuple(m.l.weight.shape)",
    "m.newmod = nn.Linear(2, 2)", "m.l = nn.Linear(2, 2)", "m.seq = None", "m.seq.extra = nn.ReLU()",
    "m.foo = 3", "m.new = nn.Parameter(lib.ones(1))", "m.l.weight = nn.Parameter(lib.zeros(2, 2))",
    "m.seq[0] = nn.Linear(2, 2)", "type(m.seq[0]).__name__", "type(m.seq[-1]).__name__", "type(m.seq[0:1]).__name__",
    "len(m.seq)", "[type(x).__name__ for x in m.seq]", "[type(x).__name__ for x in m.seq.children()]",
    "m.seq[0].weight is m.seq._modules['0'].weight", "m.seq[0].reset_parameters()", "type(m).__name__",
    "m.original_name if type(m).__name__ == 'RecursiveScriptModule' else 'subclass'", "m.seq.original_name",
]


def _statement_outcome(lib, build, statement: str) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        m = build(lib)
    try:
        return repr(eval(compile(statement, "<statement>", "eval" if "=" not in statement.replace("==", "")
                                 else "exec"), {"m": m, "nn": lib.nn, "lib": lib}))
    except Exception as error:  # noqa: BLE001 - the class and words are what is compared
        return f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("statement", _SCRIPTED_STATEMENTS)
@pytest.mark.parametrize("build", [_scripted_model, _script_module], ids=["jit.script(model)", "ScriptModule"])
def test_scripted_modules_refuse_and_answer_as_torch_does(build, statement):
    assert _statement_outcome(chainrule, build, statement) == _statement_outcome(torch, build, statement)


def test_scripted_module_keeps_methods_its_compiled_code_calls_and_computes_as_torch():
    def build(lib):
        class Inner(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.l = lib.nn.Linear(3, 3)

            def step(self, x):
                return self.l(x).tanh()

            def unused_helper(self):
                return 0

            @lib.jit.export
            def exported(self, x):
                return x * 2

        class Outer(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = Inner()

            def forward(self, x):
                return self.inner.step(x)

        return lib.jit.script(Outer())

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ours, theirs = build(chainrule), build(torch)
    ours.load_state_dict({k: chainrule.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = [[0.5, -1.0, 2.0]]
    assert ours(chainrule.tensor(x)).tolist()[0] == pytest.approx(theirs(torch.tensor(x)).tolist()[0], abs=1e-6)
    assert ours.inner.exported(chainrule.tensor(x)).tolist() == theirs.inner.exported(torch.tensor(x)).tolist()
    for scripted in (ours, theirs):
        with pytest.raises(AttributeError, match="'RecursiveScriptModule' object has no attribute 'unused_helper'"):
            scripted.inner.unused_helper()


def test_jit_deprecation_warnings_are_hidden_from_a_users_script_as_torchs(tmp_path):
    # torch attributes them to its own lines, so Python's default filters show them only under
    # "always" (pytest, -W): a user's script sees none, with either library
    import subprocess
    import sys

    program = ("import {lib} as torch\n"
               "class Block(torch.jit.ScriptModule):\n"
               "    def __init__(self):\n"
               "        super().__init__()\n"
               "        self.l = torch.nn.Linear(2, 2)\n"
               "    @torch.jit.script_method\n"
               "    def forward(self, x):\n"
               "        return self.l(x)\n"
               "Block()\n"
               "torch.jit.script(torch.nn.Linear(2, 2))\n"
               "torch.jit.trace(torch.nn.Linear(2, 2), torch.ones(1, 2))\n")

    def stderr(lib, *options):
        script = tmp_path / f"{lib}_script.py"  # (torch compiles script_methods from their source file)
        script.write_text(program.format(lib=lib))
        run = subprocess.run([sys.executable, *options, str(script)], capture_output=True, text=True, check=True)
        return sorted({line.split("DeprecationWarning: ")[1] for line in run.stderr.splitlines()
                       if "DeprecationWarning: " in line})

    expected = sorted(f"`torch.jit.{name}` is deprecated. Please switch to `torch.compile` or `torch.export`."
                      for name in ("script", "script_method", "trace", "trace_method"))
    assert stderr("chainrule") == []
    assert stderr("chainrule", "-W", "always") == expected
    if LONG:  # torch's two fresh interpreters (its import and jit compile) are most of this test's time
        assert stderr("torch") == []
        assert stderr("torch", "-W", "always") == expected


# ---------------------------------------------------------------- batch norm's float32 rounding
@pytest.mark.parametrize("module, shape", [("BatchNorm1d", (8, 16, 50)), ("BatchNorm2d", (8, 16, 10, 10)),
                                           ("BatchNorm2d", (2, 5, 3, 3)), ("BatchNorm3d", (4, 8, 4, 5, 6))])
def test_batch_norm_training_rounds_as_torchs_cpu_kernel(module, shape):
    # torch: float64 sums, mean and var_sum/N in float32, 1/σ from float64, and the output as one
    # fused multiply-add x·α + β per channel: every output and running statistic bit for bit
    rng = np.random.default_rng(0)
    channels = shape[1]
    weight, bias = (rng.standard_normal(channels).astype(np.float32) for _ in range(2))
    ours, theirs = getattr(chainrule.nn, module)(channels), getattr(torch.nn, module)(channels)
    ours.weight.data, ours.bias.data = chainrule.tensor(weight), chainrule.tensor(bias)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(weight))
        theirs.bias.copy_(torch.from_numpy(bias))
    for _ in range(3):
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        np.testing.assert_array_equal(ours(chainrule.tensor(x)).detach().numpy(),
                                      theirs(torch.from_numpy(x)).detach().numpy())
    np.testing.assert_array_equal(ours.running_mean.numpy(), theirs.running_mean.numpy())
    np.testing.assert_array_equal(ours.running_var.numpy(), theirs.running_var.numpy())
