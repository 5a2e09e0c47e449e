"""Found by the d2l.ai programs (tests/programs/d2l_*.py) and their preliminaries: what a student of
"Dive into Deep Learning" calls beside the programs, compared with torch."""

from __future__ import annotations

import inspect
import pydoc

import pytest

import chainrule
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")

_NAMESPACES = [("", chainrule, torch), ("nn.functional", F, torch.nn.functional),
               ("linalg", chainrule.linalg, torch.linalg), ("special", chainrule.special, torch.special)]


def _public_functions(ours, theirs):
    for name in sorted(set(dir(ours)) & set(dir(theirs))):
        if name.startswith("_"):
            continue
        mine, real = getattr(ours, name), getattr(theirs, name)
        if callable(mine) and callable(real) and not isinstance(mine, type) and not isinstance(real, type):
            yield name, mine, real


@pytest.mark.parametrize("label, ours, theirs", _NAMESPACES, ids=[n or "torch" for n, _, _ in _NAMESPACES])
def test_public_functions_are_routines_where_torchs_are(label, ours, theirs):
    # help() documents a routine (its signature and docstring); anything else as an instance of its
    # class: d2l's "Documentation" section runs help(torch.ones)
    differ = [name for name, mine, real in _public_functions(ours, theirs)
              if inspect.isroutine(real) and not inspect.isroutine(mine)]
    assert differ == []


@pytest.mark.parametrize("name", ["ones", "tanh", "cat"])
def test_help_documents_the_function_not_its_wrapper_class(name):
    ours = pydoc.render_doc(getattr(chainrule, name), renderer=pydoc.plaintext)
    theirs = pydoc.render_doc(getattr(torch, name), renderer=pydoc.plaintext)
    # torch's C++ built-ins show `name(...)` and their docstring; ours the function's signature
    assert f"\n{name}(" in theirs
    assert f"\n{name}(" in ours
    assert "class BuiltinFunction" not in ours and "Method resolution order" not in ours


def test_public_functions_still_do_not_bind_in_a_class_body():
    class Holder:
        act = chainrule.tanh

    class TorchHolder:
        act = torch.tanh

    assert Holder().act is chainrule.tanh and Holder.act is chainrule.tanh
    assert TorchHolder().act is torch.tanh
    assert Holder().act(chainrule.tensor([0.5])).item() == pytest.approx(torch.tanh(torch.tensor([0.5])).item())


def _container_dict_types(nn):
    def seq():
        return nn.Sequential(nn.ReLU(), nn.Tanh(), nn.ReLU())

    def mlist():
        return nn.ModuleList([nn.ReLU(), nn.Tanh()])

    linear = nn.Linear(2, 2)
    made = {"linear": linear, "sequential": seq(), "slice": seq()[0:2]}
    deleted = seq()
    del deleted[0]
    inserted = seq()
    inserted.insert(1, nn.ReLU())
    popped = seq()
    popped.pop(1)
    list_deleted = mlist()
    del list_deleted[0]
    list_inserted = mlist()
    list_inserted.insert(0, nn.ReLU())
    made.update(deleted=deleted, inserted=inserted, popped=popped, list_deleted=list_deleted,
                list_inserted=list_inserted)
    types = {name: type(module._modules).__name__ for name, module in made.items()}
    types.update(parameters=type(linear._parameters).__name__, buffers=type(linear._buffers).__name__,
                 forward_hooks=type(linear._forward_hooks).__name__)
    return types


def test_module_tables_are_the_dict_types_torch_uses():
    # d2l's MySequential fills self._modules[str(idx)] and the book shows its type; torch keeps
    # _parameters/_buffers/_modules as dicts (a deletion from a container makes an OrderedDict)
    assert _container_dict_types(chainrule.nn) == _container_dict_types(torch.nn)


def test_dir_of_distributions_lists_torchs_names():
    # d2l's "Documentation" section prints dir(torch.distributions): chainrule's internal modules
    # (discrete, relaxed, transformed_families) and two families torch keeps in their modules showed
    ours = {name for name in dir(chainrule.distributions) if not name.startswith("_")}
    theirs = {name for name in dir(torch.distributions) if not name.startswith("_")}
    assert ours == theirs
    assert sorted(chainrule.distributions.__all__) == sorted(torch.distributions.__all__)
    from chainrule.distributions.relaxed_bernoulli import LogitRelaxedBernoulli
    from chainrule.distributions.relaxed_categorical import ExpRelaxedCategorical

    assert ExpRelaxedCategorical.__name__ == "ExpRelaxedCategorical"
    assert LogitRelaxedBernoulli.__name__ == "LogitRelaxedBernoulli"


def _ranges():
    import numpy as np

    rng = np.random.RandomState(1)
    ranges = [(-8.0, 8.0, 0.1), (-8.0, 1.0, 0.1), (-5, 5, 0.01), (0, 5, 0.1), (10.0, -3.0, -0.37),
              (0, 1, float("inf")), (-1e300, 1e300, 1e299), (-1e38, 1e39, 1e37)]
    for _ in range(60):
        start = float(np.round(rng.randn() * 10, rng.randint(0, 4)))
        step = float(np.round(rng.rand() * 0.5 + 0.01, rng.randint(2, 5))) * (1 if rng.rand() < 0.8 else -1)
        ranges.append((start, start + step * rng.randint(1, 300) + step * rng.rand(), step))
    return ranges


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_arange_gives_torchs_values_bit_for_bit(dtype):
    import warnings

    import numpy as np

    differ = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # values beyond the dtype become ±inf quietly, as torch's
        for start, end, step in _ranges():
            ours = chainrule.arange(start, end, step, dtype=getattr(chainrule, dtype)).numpy()
            theirs = torch.arange(start, end, step, dtype=getattr(torch, dtype)).numpy()
            if ours.dtype != theirs.dtype or not np.array_equal(ours, theirs):
                differ.append((start, end, step))
    assert differ == []


def test_relu_gradient_over_d2l_arange_counts_torchs_positive_values():
    # d2l's activation plots: torch.arange(-8.0, 8.0, 0.1)[80] is 4.4e-16 (an fma in torch's kernel),
    # so relu's gradient is 1 there: 80 ones, where chainrule's plain start + i·step gave 0 and 79
    x = chainrule.arange(-8.0, 8.0, 0.1, requires_grad=True)
    chainrule.relu(x).backward(chainrule.ones_like(x))
    tx = torch.arange(-8.0, 8.0, 0.1, requires_grad=True)
    torch.relu(tx).backward(torch.ones_like(tx))
    assert x.grad.sum().item() == tx.grad.sum().item() == 80.0
    assert x[80].item() == tx[80].item() > 0
