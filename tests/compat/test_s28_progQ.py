"""Fixes found while writing the progQ programs (hf_gpt2_conv1d, neural_cellular_automata,
jem_energy_langevin, autoformer_decomposition, lightning_style_trainer), each against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, fn):
    """(exception type name, message) or ('ok', shape) of ``fn(lib)``."""
    try:
        result = fn(lib)
    except Exception as error:  # noqa: BLE001 - the type itself is compared
        return type(error).__name__, str(error)
    return "ok", tuple(result.shape)


ADDMM_CASES = {
    # HF's Conv1D adds a (nf,) bias to x.view(-1, nx) @ weight: other inputs are refused in expand's words
    "input_with_more_dims": lambda t: t.addmm(t.ones(2, 2, 3), t.ones(2, 4), t.ones(4, 3)),
    "input_too_wide": lambda t: t.addmm(t.ones(4), t.ones(2, 4), t.ones(4, 3)),
    "input_square_wrong_rows": lambda t: t.addmm(t.ones(3, 3), t.ones(2, 4), t.ones(4, 3)),
    "mat1_vector": lambda t: t.addmm(t.ones(3), t.ones(4), t.ones(4, 3)),
    "mat2_vector": lambda t: t.addmm(t.ones(3), t.ones(2, 4), t.ones(4)),
    "mat1_3d": lambda t: t.addmm(t.ones(3), t.ones(2, 4, 1), t.ones(4, 3)),
    "shapes_do_not_multiply": lambda t: t.addmm(t.ones(3), t.ones(2, 4), t.ones(5, 3)),
    "column_bias_broadcasts": lambda t: t.addmm(t.ones(2, 1), t.ones(2, 4), t.ones(4, 3)),
    "scalar_bias_broadcasts": lambda t: t.addmm(t.ones(()), t.ones(2, 4), t.ones(4, 3)),
    "method_form": lambda t: t.ones(2, 2, 3).addmm(t.ones(2, 4), t.ones(4, 3)),
}


@pytest.mark.parametrize("case", sorted(ADDMM_CASES))
def test_addmm_checks_and_expands_input_as_torch(case):
    fn = ADDMM_CASES[case]
    assert _outcome(chainrule, fn) == _outcome(torch, fn)


def test_addmm_values_and_gradients_with_a_bias_vector():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((6,), (5, 4), (4, 6))]
    results = []
    for lib in (torch, chainrule):
        bias, x, w = (lib.tensor(a, requires_grad=True) for a in arrays)
        out = lib.addmm(bias, x, w, beta=0.5, alpha=2.0)
        (out * out).sum().backward()
        results.append([out.detach().numpy(), bias.grad.numpy(), x.grad.numpy(), w.grad.numpy()])
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


EXPAND_DTYPES = ["float32", "float64", "float16", "bool", "int64", "int32", "int8", "uint8", "bfloat16",
                 "complex64", "complex128"]


@pytest.mark.parametrize("dtype", EXPAND_DTYPES)
def test_expand_with_too_few_sizes_names_the_tensor_as_torch(dtype):
    # torch prints the legacy torch.FloatTensor where one exists, else CPUBoolType, CPUComplexFloatType...
    def fn(t):
        return t.zeros(2, 2, 3, dtype=getattr(t, dtype)).expand(2, 3)

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("dtype", ["float32", "bool", "complex64"])
def test_setitem_value_with_too_many_dims_names_it_as_torch(dtype):
    def fn(t):
        target = t.zeros(2, 3, dtype=getattr(t, dtype))
        target[0] = t.zeros(2, 2, 3, dtype=getattr(t, dtype))
        return target

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("mode", [1, 0, None, 1.0, "yes", np.bool_(True)], ids=repr)
def test_set_grad_enabled_takes_only_a_bool(mode):
    def fn(t):
        with t.set_grad_enabled(mode):
            pass
        return t.ones(1)

    assert _outcome(chainrule, fn) == _outcome(torch, fn)
    assert chainrule.is_grad_enabled()


def test_set_grad_enabled_with_a_tensor_refused_as_torch():
    ours = _outcome(chainrule, lambda t: t.set_grad_enabled(t.tensor(True)))
    theirs = _outcome(torch, lambda t: t.set_grad_enabled(t.tensor(True)))
    assert ours == theirs
    assert chainrule.is_grad_enabled()


@pytest.mark.parametrize("mode", [True, False])
def test_set_grad_enabled_bool_still_switches(mode):
    x = chainrule.ones(2, requires_grad=True)
    with chainrule.autograd.set_grad_enabled(mode):
        y = x * 2
    assert y.requires_grad is mode
    assert chainrule.is_grad_enabled()
