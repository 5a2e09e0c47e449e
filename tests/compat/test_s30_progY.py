"""Session 30, lane progY (sequence-architecture programs): what those programs found chainrule doing
differently from torch 2.13, each checked against torch on the same code."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- jit.ScriptModule's submodules
def _script_block(lib):
    """RWKV-4's form: a ScriptModule subclass holding plain modules, one tagged with an attribute."""

    class Block(lib.jit.ScriptModule):
        def __init__(self):
            super().__init__()
            self.time_shift = lib.nn.ZeroPad2d((0, 0, 1, -1))
            self.key = lib.nn.Linear(4, 3, bias=False)
            self.key.scale_init = 0
            self.seq = lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.ReLU())

        @lib.jit.script_method
        def forward(self, x):
            return self.seq(self.key(self.time_shift(x)))

    class Wrapper(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = lib.nn.Linear(3, 2)

    return Wrapper()


def _module_table(model, lib):
    return [(name, "RecursiveScriptModule" in str(type(m)), getattr(m, "original_name", None),
             isinstance(m, lib.nn.Linear), isinstance(m, lib.jit.ScriptModule), hasattr(m, "scale_init"))
            for name, m in model.named_modules()]


def test_script_module_submodules_become_recursive_script_modules_as_on_torch():
    """torch compiles a ScriptModule subclass's submodules into RecursiveScriptModules when its
    __init__ returns; RWKV-4's RWKV_Init walks model.modules() and tells them apart by
    "RecursiveScriptModule" in str(type(mm)), so on chainrule (plain Linears) it zero-initialised 10
    matrices torch initialises orthogonally: its program's seed-0 val_loss was 0.9977, torch's 0.9699,
    now 0.9699 on both."""
    ours, theirs = _script_block(chainrule), _script_block(torch)
    assert _module_table(ours, chainrule) == _module_table(theirs, torch)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ours.block.original_name == theirs.block.original_name == "Block"
    assert ours.block.key.in_features == theirs.block.key.in_features == 4


def test_recursive_script_module_shares_the_module_and_runs_its_forward():
    torch.manual_seed(0)
    theirs = _script_block(torch)
    ours = _script_block(chainrule)
    ours.load_state_dict({k: chainrule.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = torch.randn(2, 5, 4)
    expected = theirs.block(x)
    got = ours.block(chainrule.tensor(x.numpy()))
    assert got.shape == tuple(expected.shape)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    # the scripted submodule's parameters are the model's: an init through it lands in the model
    for lib, model in ((torch, theirs), (chainrule, ours)):
        with lib.no_grad():
            lib.nn.init.zeros_(model.block.key.weight)
        assert float(model.state_dict()["block.key.weight"].abs().sum()) == 0.0
        model.eval()
        assert [m.training for m in model.modules()] == [False] * 8


def test_script_module_without_submodules_and_subclass_of_a_subclass():
    """Only the most derived __init__ scripts (torch's ScriptMeta), so a submodule added by a
    subclass's __init__ is scripted too."""
    def table(lib):
        class Base(lib.jit.ScriptModule):
            def __init__(self):
                super().__init__()
                self.a = lib.nn.Linear(2, 2)

        class Derived(Base):
            def __init__(self):
                super().__init__()
                self.b = lib.nn.Tanh()

        class Empty(lib.jit.ScriptModule):
            def __init__(self):
                super().__init__()
                self.state = [1, 2]

        return _module_table(Derived(), lib), repr(Derived()), repr(Empty()), Empty().state

    tables = [table(torch), table(chainrule)]
    assert tables[0] == tables[1]


def _scripted(lib, module):
    class Holder(lib.jit.ScriptModule):
        def __init__(self):
            super().__init__()
            self.inner = module

    return Holder().inner


@pytest.mark.parametrize("build, shape", [
    (lambda nn: nn.Conv1d(3, 4, 3, padding=1), (2, 3, 7)),
    (lambda nn: nn.BatchNorm1d(3), (4, 3)),
    (lambda nn: nn.GroupNorm(1, 3), (2, 3, 4)),
    (lambda nn: nn.Sequential(nn.Linear(3, 3), nn.Tanh()), (2, 3)),
    (lambda nn: nn.ConvTranspose1d(3, 2, 3), (2, 3, 5)),
])
def test_compiled_submodules_of_each_kind_load_torchs_state_and_agree(build, shape):
    """The compiled class mirrors the module's hierarchy, so methods calling super() (BatchNorm's
    _load_from_state_dict, the conv classes' forward helpers) run as in the original class."""
    theirs = _scripted(torch, build(torch.nn))
    ours = _scripted(chainrule, build(chainrule.nn))
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: chainrule.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = theirs(torch.tensor(x)).detach().numpy()
    got = ours(chainrule.tensor(x))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert got.grad_fn is not None
