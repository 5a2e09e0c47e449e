"""Session 33, lane progAO (DARTS, Slot Attention and Griffin-Lim programs): fixes found while
writing the lane's programs and reading the code they follow, each checked against torch 2.13 on
the same inputs."""

import warnings

import numpy as np
import pytest

import chainrule
from chainrule.ops import _arg_parser
from tests._fresh_process import batched

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- the deprecated scalar-first overloads
# quark0/darts' Architect: ``p.data.add_(R, v)`` and ``g.data.sub_(eta, ig.data)`` with ``R`` a 0-d tensor
# (``r / _concat(vector).norm()``); torch's parser reads a 0-d tensor that does not require grad as the Number
_SCALAR_FIRST_CALLS = {
    "Tensor.add_ 0-d": lambda m, p, v: p.add_(m.tensor(0.5), v),
    "Tensor.sub_ 0-d": lambda m, p, v: p.sub_(2 * m.tensor(0.25), v),
    "Tensor.add 0-d": lambda m, p, v: p.add(m.tensor(0.5), v),
    "add 0-d": lambda m, p, v: m.add(p, m.tensor(-1.5), v),
    "Tensor.addcmul_ 0-d": lambda m, p, v: p.addcmul_(m.tensor(0.5), v, v),
    "Tensor.addcmul 0-d": lambda m, p, v: p.addcmul(m.tensor(0.5), v, v),
    "Tensor.add_ 0-d float64": lambda m, p, v: p.add_(m.tensor(0.5, dtype=m.float64), v),
    "int Tensor.add_ 0-d int": lambda m, p, v: p.long().add_(m.tensor(2), v.long()),
}


@pytest.mark.parametrize("call", _SCALAR_FIRST_CALLS, ids=list(_SCALAR_FIRST_CALLS))
def test_a_zero_dim_tensor_is_the_scalar_of_the_deprecated_overload(call, monkeypatch):
    monkeypatch.setattr(_arg_parser, "_deprecated_overload_warned", False)
    results = []
    for lib in (chainrule, torch):
        p, v = lib.tensor([1.0, -2.0, 3.0]), lib.tensor([0.5, 4.0, -1.0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _SCALAR_FIRST_CALLS[call](lib, p, v)
        results.append((out.dtype.__repr__().split(".")[-1], out.tolist()))
    assert results[0] == results[1]


@pytest.mark.parametrize("scalar", ["requires_grad", "one_element_1d"])
def test_a_tensor_that_is_not_a_number_to_the_parser_is_still_refused(scalar):
    """A 0-d tensor that requires grad, or a 1-element 1-d one, matches no overload: TypeError in both."""
    for lib in (chainrule, torch):
        p, v = lib.ones(3), lib.arange(3.0)
        alpha = lib.tensor(0.5, requires_grad=True) if scalar == "requires_grad" else lib.tensor([0.5])
        with pytest.raises(TypeError):
            p.add_(alpha, v)


def test_a_fractional_zero_dim_alpha_for_an_integer_tensor_is_torchs_runtime_error(monkeypatch):
    monkeypatch.setattr(_arg_parser, "_deprecated_overload_warned", False)
    for lib in (chainrule, torch):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="argument alpha must not be a floating point number"):
                lib.ones(3, dtype=lib.int64).add_(lib.tensor(0.5), lib.ones(3, dtype=lib.int64))


_WORDED_CALLS = {
    "Tensor.add_": lambda m, p, v: p.add_(0.5, v),
    "Tensor.sub_": lambda m, p, v: p.sub_(0.5, v),
    "Tensor.addcmul_": lambda m, p, v: p.addcmul_(0.5, v, v),
    "Tensor.addcdiv_": lambda m, p, v: p.addcdiv_(0.5, v, v + 1),
    "Tensor.add": lambda m, p, v: p.add(0.5, v),
    "add": lambda m, p, v: m.add(p, 0.5, v),
    "sub": lambda m, p, v: m.sub(p, 0.5, v),
}


def _first_warning(lib, call):
    p, v = lib.ones(3), lib.arange(3.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _WORDED_CALLS[call](lib, p, v)
    return [str(w.message).split(" (Triggered internally")[0] for w in caught]


_CALL_SOURCE = {
    "Tensor.add_": "p.add_(0.5, v)",
    "Tensor.sub_": "p.sub_(0.5, v)",
    "Tensor.addcmul_": "p.addcmul_(0.5, v, v)",
    "Tensor.addcdiv_": "p.addcdiv_(0.5, v, v + 1)",
    "Tensor.add": "p.add(0.5, v)",
    "add": "torch.add(p, 0.5, v)",
    "sub": "torch.sub(p, 0.5, v)",
}
# each call the first of a fresh torch process
_torch_runs = batched(lambda lib: {call: ("import warnings, torch\n"
                                          "p, v = torch.ones(3), torch.arange(3.0)\n"
                                          "with warnings.catch_warnings(record=True) as caught:\n"
                                          "    warnings.simplefilter('always')\n"
                                          f"    ({source})\n"
                                          "print(repr([str(w.message).split(' (Triggered internally')[0] for w in caught]))\n")
                                   for call, source in _CALL_SOURCE.items()}, libraries=("torch",))


@pytest.mark.parametrize("call", _WORDED_CALLS, ids=list(_WORDED_CALLS))
def test_the_deprecation_names_the_in_place_method_and_the_functions_signature(call, monkeypatch):
    """torch's warning names ``add_(Number alpha, Tensor other)`` for ``p.add_(0.5, v)`` (chainrule
    said ``add``), and the function's signature, ``input`` and ``out`` included, for
    ``torch.add(p, 0.5, v)``. (Each call is the first of its process in torch, as here.)"""
    monkeypatch.setattr(_arg_parser, "_deprecated_overload_warned", False)
    ours = _first_warning(chainrule, call)
    assert repr(ours) == _torch_runs("torch")[call].output().strip()


def test_the_darts_finite_difference_step_runs_as_the_repo_writes_it(monkeypatch):
    """The Architect's ``_hessian_vector_product`` parameter moves, legacy overloads and all: same values."""
    monkeypatch.setattr(_arg_parser, "_deprecated_overload_warned", False)
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 3)).astype(np.float32)
    vector = rng.normal(size=(4, 3)).astype(np.float32)
    moved = []
    for lib in (chainrule, torch):
        p, v = lib.nn.Parameter(lib.tensor(weights)), lib.tensor(vector)
        R = 1e-2 / v.norm()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p.data.add_(R, v)
            plus = p.detach().clone()
            p.data.sub_(2 * R, v)
            minus = p.detach().clone()
        moved.append((plus.numpy(), minus.numpy()))
    for ours, theirs in zip(*moved):
        np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------- addcmul/addcdiv refuse a number operand
_NUMBER_OPERAND_CALLS = {
    "addcmul input": ("addcmul(): argument 'input' (position 1) must be Tensor, not float",
                      lambda m, p, v: m.addcmul(1.0, v, v)),
    "Tensor.addcmul tensor2": ("addcmul(): argument 'tensor2' (position 2) must be Tensor, not int",
                               lambda m, p, v: p.addcmul(v, 2)),
    "addcmul tensor2": ("addcmul(): argument 'tensor2' (position 3) must be Tensor, not int",
                        lambda m, p, v: m.addcmul(p, v, 2)),
    "Tensor.addcdiv_ tensor2": ("addcdiv_(): argument 'tensor2' (position 2) must be Tensor, not int",
                                lambda m, p, v: p.addcdiv_(v, 2)),
    "addcdiv tensor2 with value": ("addcdiv(): argument 'tensor2' (position 3) must be Tensor, not float",
                                   lambda m, p, v: m.addcdiv(p, v, 2.0, value=0.5)),
    "Tensor.addcdiv tensor2 keyword": ("addcdiv(): argument 'tensor2' must be Tensor, not int",
                                       lambda m, p, v: p.addcdiv(v, tensor2=3)),
}


@pytest.mark.parametrize("call", _NUMBER_OPERAND_CALLS, ids=list(_NUMBER_OPERAND_CALLS))
def test_addcmul_and_addcdiv_refuse_a_number_where_torch_reads_a_tensor(call):
    """chainrule broadcast a number given as ``tensor2`` (or ``input``) and returned a result; torch's
    parser refuses it, naming the argument and its position (after self for a method)."""
    message, fn = _NUMBER_OPERAND_CALLS[call]
    for lib in (torch, chainrule):
        p, v = lib.ones(3), lib.arange(3.0)
        with pytest.raises(TypeError) as caught:
            fn(lib, p, v)
        assert str(caught.value) == message
        assert p.tolist() == [1.0, 1.0, 1.0]  # refused before the in-place write
