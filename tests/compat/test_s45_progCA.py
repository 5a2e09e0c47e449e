"""Session 45, lane progCA: what the AFT / transfer-learning / SNGAN corpus programs' probes found.

``nn.utils.spectral_norm`` and ``nn.utils.weight_norm`` on a name that is not a parameter of the module
(a buffer, a plain attribute) raise torch's ``KeyError`` (torch looks the name up in, or deletes it from,
``module._parameters``), and ``weight_norm`` of a ``None`` parameter (``Linear(bias=False)``'s ``bias``)
raises torch's ``TypeError`` from ``norm_except_dim``; chainrule raises them before moving anything.
"""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, case):
    try:
        module = case(lib)
    except Exception as error:  # noqa: BLE001  (the exception is the result compared)
        return ("raises", type(error).__name__, str(error))
    return ("returns", sorted(module.state_dict()))


MODULES = {
    "linear": lambda lib: lib.nn.Linear(3, 2),
    "linear_no_bias": lambda lib: lib.nn.Linear(3, 2, bias=False),
    "batchnorm": lambda lib: lib.nn.BatchNorm1d(3),
}
NORMS = {
    "spectral_norm": lambda lib: lib.nn.utils.spectral_norm,
    "weight_norm": lambda lib: lib.nn.utils.weight_norm,
}


@pytest.mark.parametrize("norm", sorted(NORMS))
@pytest.mark.parametrize("module", sorted(MODULES))
@pytest.mark.parametrize("name", ["weight", "bias", "running_mean", "foo"])
def test_norm_hook_on_a_name_that_is_not_a_parameter_matches_torch(norm, module, name):
    def case(lib):
        lib.manual_seed(0)
        return NORMS[norm](lib)(MODULES[module](lib), name=name)

    assert _outcome(chainrule, case) == _outcome(torch, case)


@pytest.mark.parametrize("norm", sorted(NORMS))
def test_refused_norm_hook_leaves_the_module_unchanged(norm):
    module = chainrule.nn.BatchNorm1d(3)
    before = sorted(module.state_dict())
    with pytest.raises(KeyError):
        NORMS[norm](chainrule)(module, name="running_mean")
    assert sorted(module.state_dict()) == before
    assert not module._forward_pre_hooks
