"""Interpretability idioms (Grad-CAM, guided backprop, influence functions), against torch 2.13.

Found writing the gradcam_guided_backprop, integrated_gradients_smoothgrad, influence_functions_lissa
and activation_maximization programs and probing the idioms around them:

* a module's full backward hook gets one ``grad_input`` entry per positional argument, as
  torch's BackwardHook packs it: None for a non-tensor, zeros (the input's shape and dtype) for a
  tensor that needs no gradient while another input does; chainrule gave one entry per tensor
  needing a gradient. What a hook returns is checked as torch's node hook checks it (type and
  size, "hook 'hook' ..."), and a hook of a module none of whose inputs needs a gradient may
  return only Nones; a backward pre-hook returning the wrong count is refused;
* two different tensors over one array (``x`` and ``x.detach()``, as
  ``autograd.functional.hessian(f, (x, x))`` makes them) saved by an op were both taken for the
  first input, so under ``create_graph`` the rule's graph went to the wrong one: the Hessian of
  ``(a * b).sum()`` at ``(x, x)`` came out as ``[[I, 0], [I, 0]]`` instead of ``[[0, I], [I, 0]]``.
"""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (torch, chainrule)


def _outcome(fn, lib):
    try:
        return "ok", fn(lib)
    except Exception as error:  # noqa: BLE001 - the class and text are what is compared
        return type(error).__name__, str(error)


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "detach"):
        return ("tensor", str(value.dtype).split(".")[-1], value.detach().tolist())
    return value


def _same_in_both(fn):
    ours, theirs = _outcome(fn, chainrule), _outcome(fn, torch)
    assert _plain(ours) == _plain(theirs)
    return theirs


def _two_input_module(lib, body):
    class Pair(lib.nn.Module):
        def forward(self, a, b, c=None):
            return body(a, b, c)

    return Pair()


def _grad_inputs(lib, body, make_args, make_kwargs=lambda lib: {}):
    module = _two_input_module(lib, body)
    seen = []
    module.register_full_backward_hook(lambda mod, grad_input, grad_output: seen.append(grad_input))
    module(*make_args(lib), **make_kwargs(lib)).sum().backward()
    return seen


GRAD_INPUT_CASES = {
    "second tensor needs no gradient": (
        lambda a, b, c: a * b,
        lambda lib: (lib.ones(2, requires_grad=True), lib.full((2,), 3.0))),
    "first tensor needs no gradient": (
        lambda a, b, c: a * b,
        lambda lib: (lib.full((2,), 3.0), lib.ones(2, requires_grad=True))),
    "an integer index": (
        lambda a, b, c: a[b],
        lambda lib: (lib.ones(3, requires_grad=True), lib.tensor([0, 2]))),
    "a float64 tensor beside": (
        lambda a, b, c: a * b.float(),
        lambda lib: (lib.ones(2, requires_grad=True), lib.ones(2, dtype=lib.float64))),
    "a non-tensor argument": (
        lambda a, b, c: a * b,
        lambda lib: (lib.ones(2, requires_grad=True), 3.0)),
    "a non-tensor then a tensor": (
        lambda a, b, c: a * b * c,
        lambda lib: (lib.ones(2, requires_grad=True), 3.0, lib.full((2,), 2.0))),
}


@pytest.mark.parametrize("name", GRAD_INPUT_CASES)
def test_full_backward_hook_grad_input_has_one_entry_per_positional_argument(name):
    body, make_args = GRAD_INPUT_CASES[name]
    kind, seen = _same_in_both(lambda lib: _grad_inputs(lib, body, make_args))
    assert kind == "ok" and len(seen) == 1


def test_tensors_passed_by_keyword_are_not_in_grad_input():
    kind, seen = _same_in_both(lambda lib: _grad_inputs(
        lib, lambda a, b, c: a * b * c, lambda lib: (lib.ones(2, requires_grad=True), 3.0),
        lambda lib: {"c": lib.full((2,), 2.0, requires_grad=True)}))
    assert kind == "ok" and len(seen[0]) == 2


def _hook_returning(lib, make_result, input_requires_grad=True):
    lib.manual_seed(0)
    module = lib.nn.Linear(2, 2)
    module.register_full_backward_hook(lambda mod, grad_input, grad_output: make_result(lib, grad_input))
    x = lib.ones(1, 2, requires_grad=input_requires_grad)
    module(x).sum().backward()
    return x.grad if input_requires_grad else module.bias.grad


@pytest.mark.parametrize("make_result", [
    lambda lib, gi: (gi[0].double(),),
    lambda lib, gi: (lib.ones(3),),
    lambda lib, gi: [gi[0] * 2],
    lambda lib, gi: (None,),
    lambda lib, gi: (gi[0], gi[0]),
], ids=["changed type", "changed size", "a list", "None", "too many"])
def test_what_a_full_backward_hook_returns_is_checked_as_torch_checks_it(make_result):
    _same_in_both(lambda lib: _hook_returning(lib, make_result))


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("make_result", [
    lambda lib, gi: (lib.ones(1, 2),),
    lambda lib, gi: (None,),
    lambda lib, gi: None,
], ids=["a tensor", "all None", "None"])
def test_a_hook_of_a_module_whose_inputs_need_no_gradient_may_return_only_nones(make_result):
    kind, _ = _same_in_both(lambda lib: _hook_returning(lib, make_result, input_requires_grad=False))
    assert kind == ("RuntimeError" if make_result(torch, (None,)) not in (None, (None,)) else "ok")


def test_a_size_changed_by_a_hook_is_refused_for_a_tensor_that_needs_no_gradient_too():
    def run(lib):
        module = _two_input_module(lib, lambda a, b, c: a * b)
        module.register_full_backward_hook(lambda mod, grad_input, grad_output: (grad_input[0], lib.ones(5)))
        a = lib.ones(2, requires_grad=True)
        module(a, lib.ones(2)).sum().backward()
        return a.grad

    assert _same_in_both(run)[0] == "RuntimeError"


def test_a_backward_pre_hook_returning_the_wrong_count_is_refused():
    def run(lib):
        module = lib.nn.Linear(2, 2)
        module.register_full_backward_pre_hook(lambda mod, grad_output: (grad_output[0], grad_output[0]))
        module(lib.ones(1, 2, requires_grad=True)).sum().backward()

    assert _same_in_both(run)[0] == "RuntimeError"


def test_two_tensors_over_one_array_keep_their_own_graphs_under_create_graph():
    def run(lib):
        x = lib.tensor([1.0, 2.0])
        a, b = x.detach().requires_grad_(), x.detach().requires_grad_()
        grad_a, grad_b = lib.autograd.grad((a * b * b).sum(), (a, b), create_graph=True)
        return [grad_a, grad_b, lib.autograd.grad(grad_a.sum(), (a, b), allow_unused=True, retain_graph=True),
                lib.autograd.grad(grad_b.sum(), (a, b), allow_unused=True)]

    _same_in_both(run)


@pytest.mark.parametrize("func", [
    lambda a, b: (a * b).sum(),
    lambda a, b: (a * a * b).sum(),
    lambda a, b: (a - b).pow(2).sum(),
    lambda a, b: torch_or_chainrule(a).dot(a, b),
    lambda a, b: (a / b).sum(),
], ids=["a*b", "a*a*b", "(a-b)^2", "dot", "a/b"])
def test_hessian_at_the_same_tensor_twice_is_torchs(func):
    _same_in_both(lambda lib: lib.autograd.functional.hessian(func, (lib.tensor([1.0, 2.0]),) * 2))


def torch_or_chainrule(tensor):
    return chainrule if isinstance(tensor, chainrule.Tensor) else torch


def test_an_op_on_three_tensors_two_of_them_over_one_array():
    def run(lib):
        x = lib.tensor([1.0, 2.0])
        a, b = x.detach().requires_grad_(), x.detach().requires_grad_()
        w = lib.tensor([0.5, 3.0], requires_grad=True)
        (grad_b,) = lib.autograd.grad(lib.addcmul(w, a, b).sum(), (b,), create_graph=True)
        return lib.autograd.grad(grad_b.sum(), (a, b, w), allow_unused=True)

    _same_in_both(run)


def _two_outputs(lib, materialize, seen):
    class Two(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, grad_doubled, grad_tripled):
            seen.append((grad_doubled is None, grad_tripled is None))
            parts = [g * k for g, k in ((grad_doubled, 2), (grad_tripled, 3)) if g is not None]
            return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    return Two


@pytest.mark.parametrize("materialize", [False, True])
@pytest.mark.parametrize("used", [0, 1])
def test_set_materialize_grads_false_hands_backward_none_for_an_unused_output(materialize, used):
    def run(lib):
        seen = []
        x = lib.ones(2, requires_grad=True)
        outputs = _two_outputs(lib, materialize, seen).apply(x)
        return [lib.autograd.grad(outputs[used].sum(), x), seen]

    _same_in_both(run)


@pytest.mark.parametrize("make_outputs", [
    lambda lib, x: (x * 2, x * 3),
    lambda lib, x: (x * 2, lib.ones(3)),
    lambda lib, x: (x * 2, 3),
], ids=["unused output", "output needing no gradient", "non-tensor output"])
def test_full_backward_hooks_see_none_for_an_output_no_gradient_reached(make_outputs):
    def run(lib):
        class Split(lib.nn.Module):
            def forward(self, x):
                return make_outputs(lib, x)

        module, seen = Split(), []
        module.register_full_backward_pre_hook(lambda mod, grad_output: seen.append(("pre", grad_output)))
        module.register_full_backward_hook(lambda mod, grad_input, grad_output: seen.append((grad_input, grad_output)))
        x = lib.ones(2, requires_grad=True)
        module(x)[0].sum().backward()
        return seen

    _same_in_both(run)


@pytest.mark.parametrize("scale", [None, 10.0], ids=["observing", "scaling"])
def test_full_backward_hooks_stay_silent_in_a_double_backward_reaching_only_the_inputs(scale):
    def run(lib):
        class Square(lib.nn.Module):
            def forward(self, x):
                return x * x

        module, seen = Square(), []

        def hook(mod, grad_input, grad_output):
            seen.append(grad_input[0].tolist())
            return None if scale is None else (grad_input[0] * scale,)

        module.register_full_backward_hook(hook)
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (grad,) = lib.autograd.grad(module(x).sum(), x, create_graph=True)
        grad.sum().backward()
        return [grad, x.grad, seen]

    _same_in_both(run)
