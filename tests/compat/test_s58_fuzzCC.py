"""Regressions of the autograd-semantics fuzzer (tests/fuzz/test_autograd_programs.py, session 58 lane
fuzzCC): each one a mismatch the fuzzer found, cut down to the step that differed, compared with torch."""

from __future__ import annotations

import warnings

import pytest

import chainrule
from chainrule.autograd import engine
from tests.fuzz._autograd_programs import draw_program, first_difference, run_program

torch = pytest.importorskip("torch")

LIBS = (torch, chainrule)


def _raised(call) -> str | None:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the class and message are compared
        return f"{type(error).__name__}: {error}"
    return None


def _agree(program_family: str, seed: int) -> None:
    program = draw_program(program_family, seed)
    assert first_difference(program, run_program(program, chainrule), run_program(program, torch)) is None


# ---------------------------------------------------------------- backward(inputs=) and its warning
def _refusals_of_inputs_not_requiring_grad(lib) -> tuple:
    x = lib.ones(3, requires_grad=True)
    y = (x * 2).sum()
    constant = lib.ones(3)
    return (_raised(lambda: y.backward(inputs=[constant], retain_graph=True)),
            _raised(lambda: y.backward(inputs=[constant * 2], retain_graph=True)),
            _raised(lambda: lib.autograd.grad(y, [constant], retain_graph=True)))


def test_backward_inputs_that_do_not_require_grad_get_retain_grads_refusal():
    ours = _refusals_of_inputs_not_requiring_grad(chainrule)
    assert ours == _refusals_of_inputs_not_requiring_grad(torch)
    assert "can't retain_grad" in ours[0]


def test_reference_cycle_warning_waits_for_a_backward_that_runs(monkeypatch):
    monkeypatch.setattr(engine, "_reference_cycle_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # refused (the output requires no grad): torch warns nothing, and still warns at the next call
        assert _raised(lambda: chainrule.ones(2).sum().backward(create_graph=True)) is not None
        refused = len(caught)
        x = chainrule.ones(2, requires_grad=True)
        (x * x).sum().backward(create_graph=True)
    assert refused == 0
    assert ["reference cycle" in str(w.message) for w in caught] == [True]


@pytest.mark.parametrize("family, seed", [("grad_modes", 5), ("backward_calls", 24)])
def test_fuzzed_backward_inputs_programs(family, seed):
    _agree(family, seed)


# ---------------------------------------------------------------- AccumulateGrad
def _grads_after_leaves_stop_requiring_grad(lib) -> list:
    x, w = lib.ones(3, requires_grad=True), lib.ones(3, requires_grad=True)
    calls = []
    x.register_post_accumulate_grad_hook(lambda t: calls.append("x"))
    y = (x * w * 2).sum()
    x.requires_grad_(False)
    w.detach_()
    y.backward()
    return [x.grad, w.grad, calls]


def test_a_leaf_that_stopped_requiring_grad_gets_no_gradient():
    assert _grads_after_leaves_stop_requiring_grad(chainrule) == _grads_after_leaves_stop_requiring_grad(torch)


@pytest.mark.parametrize("family, seed", [("hooks", 144), ("backward_calls", 79)])
def test_fuzzed_programs_of_leaves_that_stopped_requiring_grad(family, seed):
    _agree(family, seed)


def _second_gradients(lib) -> list:
    """A .grad made under create_graph, then a plain backward's gradient added into it; and a leaf whose
    assigned .grad is laid out otherwise (the layout-contract warning)."""
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward(create_graph=True)
    first = x.grad
    (x * 2).sum().backward()
    leaf = lib.ones(3, 2).t().detach().requires_grad_()
    leaf.grad = lib.ones(2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (leaf * 2).sum().backward()
    return [x.grad is first, x.grad.grad_fn.name(), x.grad.tolist(),
            [str(w.message).split("\n")[:2] for w in caught if "layout contract" in str(w.message)]]


def test_a_plain_backward_adds_into_grad_in_place_and_checks_its_layout(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())  # (torch's warning is once a process)
    ours = _second_gradients(chainrule)
    theirs = _second_gradients(torch)
    # torch's once may be spent by an earlier test of the process
    assert ours[:3] == theirs[:3] and ours[3] in (theirs[3], [])
    assert len(ours[3]) == 1


@pytest.mark.parametrize("family, seed", [("grad_modes", 80), ("backward_calls", 44)])
def test_fuzzed_programs_adding_into_grad(family, seed):
    _agree(family, seed)


# ---------------------------------------------------------------- a view made under no_grad as an output
def _differentiating_a_no_grad_view(lib) -> list:
    x = lib.ones(2, 3, requires_grad=True)
    with lib.no_grad():
        view = (x * 2).t()
    return [view.requires_grad, view.is_leaf, _raised(lambda: view.backward(lib.ones(3, 2))),
            _raised(lambda: lib.autograd.grad(view, [x], lib.ones(3, 2))), _raised(lambda: view.sum().backward()),
            x.grad]


def test_a_view_made_under_no_grad_is_no_root_of_backward():
    ours = _differentiating_a_no_grad_view(chainrule)
    assert ours == _differentiating_a_no_grad_view(torch)
    assert "element 0 of tensors does not require grad" in ours[2]


@pytest.mark.parametrize("family, seed", [("views_inplace", 68), ("mixed", 752)])
def test_fuzzed_programs_differentiating_a_no_grad_view(family, seed):
    _agree(family, seed)


def _retained_before_a_refused_input(lib) -> list:
    x = lib.ones(3, requires_grad=True)
    hidden = x * 2
    message = _raised(lambda: (hidden * 3).sum().backward(inputs=[hidden, lib.ones(3)]))
    return [message, hidden.retains_grad, hidden.grad, x.grad]


def test_backward_inputs_are_retained_in_turn_up_to_a_refused_one():
    assert _retained_before_a_refused_input(chainrule) == _retained_before_a_refused_input(torch)


@pytest.mark.parametrize("family, seed", [("hooks", 215), ("grad_modes", 183)])
def test_fuzzed_programs_retaining_inputs(family, seed):
    _agree(family, seed)


# ---------------------------------------------------------------- reshapes of an empty tensor are views
def _empty_views(lib) -> list:
    leaf = lib.zeros(0, 3, requires_grad=True)
    view = leaf.unsqueeze(0)
    seen = [_raised(lambda: view.add_(0.5)), view._is_view(), leaf.reshape(3, 0)._is_view()]
    with lib.no_grad():
        seen.append(leaf.unsqueeze(0).expand(2, 0, 3).requires_grad)
    plain = lib.zeros(0, 3)
    alias = plain.unsqueeze(0)
    with lib.no_grad():
        plain.clamp_(-1, 1)
    alias.add_(alias)
    return [*seen, plain._version, alias._version]


def test_reshapes_of_an_empty_tensor_are_views_sharing_its_version():
    assert _empty_views(chainrule) == _empty_views(torch)


@pytest.mark.parametrize("family, seed", [("views_inplace", 177), ("views_inplace", 385), ("grad_modes", 72),
                                          ("hooks", 27)])
def test_fuzzed_programs_viewing_empty_tensors(family, seed):
    _agree(family, seed)


# ---------------------------------------------------------------- an in-place op's saved result
def _backward_after_changing_a_saved_result(lib, op: str) -> list:
    x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = getattr(x * 1, op)()
    untouched = _raised(lambda: y.sum().backward(retain_graph=True))
    y.mul_(2)
    return [untouched, _raised(lambda: y.sum().backward()), x.grad.tolist()]


@pytest.mark.parametrize("op", ["exp_", "relu_", "sigmoid_", "tanh_"])
def test_an_in_place_ops_saved_result_is_checked_for_later_writes(op):
    ours = _backward_after_changing_a_saved_result(chainrule, op)
    assert ours == _backward_after_changing_a_saved_result(torch, op)
    assert "modified by an inplace operation" in ours[1]


@pytest.mark.parametrize("family, seed", [("views_inplace", 123), ("views_inplace", 138)])
def test_fuzzed_programs_changing_a_saved_result(family, seed):
    _agree(family, seed)


# ---------------------------------------------------------------- an expanded view regenerated after its base changed
def _expanded_view_after_its_base_changed(lib) -> list:
    x = lib.ones(2, 3, requires_grad=True)
    total = x.sum()
    expanded = total.unsqueeze(0).expand(2)
    total.mul_(3)
    part = expanded.narrow(0, 0, 1)
    part.sum().backward(retain_graph=True)
    (expanded * lib.tensor([1.0, 2.0])).sum().backward()
    return [x.grad.tolist(), part.grad_fn.name(), expanded.grad_fn.name(), tuple(expanded.shape), expanded.stride()]


def test_an_expanded_view_regenerated_after_its_base_changed_keeps_its_shape():
    assert _expanded_view_after_its_base_changed(chainrule) == _expanded_view_after_its_base_changed(torch)


def _create_graph_grads_of_leaves(lib) -> list:
    dense = lib.ones(3, 2).t().detach().requires_grad_()
    strided = lib.ones(6)[::2].detach().requires_grad_()
    empty = lib.zeros(3, 0).t().detach().requires_grad_()
    for leaf in (dense, strided, empty):
        (leaf * leaf).sum().backward(create_graph=True)
    return [dense.grad.grad_fn.name(), dense.grad.stride(), strided.grad.grad_fn.name(), strided.grad.stride(),
            empty.grad.grad_fn.name()]


def test_create_graph_gradient_of_a_leaf_that_is_not_dense_is_a_clone():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the reference-cycle warning)
        assert _create_graph_grads_of_leaves(chainrule) == _create_graph_grads_of_leaves(torch)
