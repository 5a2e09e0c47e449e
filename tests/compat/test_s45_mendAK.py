"""s45 mendAK: what a TorchDispatchMode sees, continued from mendAI. The arguments as the user wrote
them (softmax(-1), view(-1), squeeze(), x.t()), ops that reached no mode (argmax, arange, the
torch.tensor literal's lift_fresh, *_like factories) and ops shown as their own form (addmm as mm + add,
topk/sort/cumsum/index_select/scatter/mse_loss with chainrule's params). Each case runs the same
logging mode under torch and chainrule (mendAI's harness) and compares the lines."""

import numpy as np
import pytest
import torch as real_torch

import chainrule
from tests.compat.test_s45_mendAI import F, _inputs, _logged, _mode_class

CASES = {
    "t": lambda lib, a: a["x"].t(),
    "t_function": lambda lib, a: lib.t(a["x"]),
    "softmax_negative": lambda lib, a: a["x"].softmax(-1),
    "log_softmax_negative": lambda lib, a: F(lib).log_softmax(a["x"], dim=-1),
    "sum_negative": lambda lib, a: a["x"].sum(-1),
    "sum_every_dim_named": lambda lib, a: a["x"].sum((0, 1)),
    "sum_negative_keepdim": lambda lib, a: a["x3"].sum((-1, 0), keepdim=True),
    "mean_negative": lambda lib, a: a["x"].mean(-1),
    "view_minus_one": lambda lib, a: a["x"].view(-1),
    "view_minus_one_inside": lambda lib, a: a["x"].view(3, -1),
    "reshape_minus_one": lambda lib, a: a["x"].reshape(-1, 2),
    "squeeze_all": lambda lib, a: a["x"].unsqueeze(0).squeeze(),
    "squeeze_negative": lambda lib, a: a["x"].unsqueeze(-1).squeeze(-1),
    "argmax": lambda lib, a: a["x"].argmax(1),
    "argmax_all": lambda lib, a: a["x"].argmax(),
    "argmin_keepdim": lambda lib, a: a["x"].argmin(0, keepdim=True),
    "addmm": lambda lib, a: lib.addmm(a["lb"], a["x"], a["lw"].t()),
    "tensor_literal": lambda lib, a: lib.tensor([1.0, 2.0]),
    "gather_of_a_literal": lambda lib, a: a["x"].gather(1, lib.tensor([[0, 1], [2, 0]])),
    "scatter": lambda lib, a: lib.zeros(2, 3).scatter(1, a["tgt"].view(2, 1), a["x"]),
    "scatter_value": lambda lib, a: lib.zeros(2, 3).scatter(-1, a["tgt"].view(2, 1), 1.5),
    "scatter_add": lambda lib, a: lib.zeros(2, 3).scatter_add(1, a["tgt"].view(2, 1), a["x"]),
    "index_select": lambda lib, a: a["x"].index_select(-1, a["idx"]),
    "topk": lambda lib, a: a["x"].topk(2),
    "topk_smallest": lambda lib, a: a["x"].topk(1, 0, largest=False),
    "sort": lambda lib, a: a["x"].sort(1),
    "sort_descending": lambda lib, a: a["x"].sort(0, descending=True),
    "sort_stable": lambda lib, a: a["x"].sort(stable=True),
    "cumsum": lambda lib, a: a["x"].cumsum(1),
    "cumsum_dtype": lambda lib, a: a["x"].cumsum(-1, dtype=lib.float64),
    "cumprod": lambda lib, a: a["x"].cumprod(0),
    "mse_loss": lambda lib, a: F(lib).mse_loss(a["x"], a["y"]),
    "mse_loss_sum": lambda lib, a: F(lib).mse_loss(a["x"], a["y"], reduction="sum"),
    "arange": lambda lib, a: lib.arange(5),
    "arange_start": lambda lib, a: lib.arange(1, 5),
    "arange_step": lambda lib, a: lib.arange(0, 1, 0.25),
    "arange_dtype": lambda lib, a: lib.arange(5, dtype=lib.float32),
    "zeros_like": lambda lib, a: lib.zeros_like(a["x"]),
    "ones_like_dtype": lambda lib, a: lib.ones_like(a["x"], dtype=lib.float64),
    "empty_like_shape": lambda lib, a: lib.empty_like(a["x"]).shape,
    "full_like": lambda lib, a: lib.full_like(a["x"], 2.0),
    "factories": lambda lib, a: (lib.zeros(2, 3), lib.ones(2), lib.full((2, 2), 3.0), lib.empty(2, 3).shape),
    "comparisons_and_where": lambda lib, a: lib.where(a["x"] > 0, a["x"] == a["y"], a["x"] < 0),
    "activations": lambda lib, a: (F(lib).silu(a["x"]), F(lib).relu(a["x"]), a["x"].sigmoid()),
    "nll_loss": lambda lib, a: F(lib).nll_loss(a["x"], a["tgt"]),
    "unary_chain": lambda lib, a: (-a["x"]).abs().log().sqrt().rsqrt(),
    "in_place_arithmetic": lambda lib, a: a["x"].clone().sub_(1).div_(a["y"]).mul_(2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_mode_sees_the_call_as_torch_shows_it(name):
    assert _logged(chainrule, CASES[name]) == _logged(real_torch, CASES[name])


def _passing(lib, program):
    """``program``'s value and its inputs' gradients, run under a mode that calls func with what it got."""
    class Pass(_mode_class(lib)):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    inputs = _inputs(lib)
    leaves = [inputs[k].requires_grad_(True) for k in ("x", "lw", "lb", "x3")]
    with Pass():
        out = program(lib, inputs)
    out.backward()
    return out.detach().numpy(), [leaf.grad.numpy() for leaf in leaves[:3]]


GRADIENTS = {
    "addmm_t_and_views": lambda lib, a: (lib.addmm(a["lb"], a["x"].view(-1).view(2, -1), a["lw"].t())
                                         .softmax(-1) * lib.arange(4)).sum(),
    "reductions_negative": lambda lib, a: (a["x"].log_softmax(-1).mean(-1) + a["x"].sum(-1)).sum()
    + a["lw"].sum() + a["lb"].sum(),
    "sort_topk_cumsum_scatter": lambda lib, a: (a["x"].sort(1).values.cumsum(-1).sum() + a["x"].topk(2).values.sum()
                                                + lib.zeros(2, 3).scatter_add(1, a["tgt"].view(2, 1), a["x"][:, :1]).sum()
                                                + a["x"].index_select(-1, lib.tensor([2, 0])).sum()
                                                + (a["lw"] * 1).sum() + a["lb"].sum()),
}


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_a_passing_mode_keeps_values_and_gradients(name):
    (ours, our_grads), (theirs, their_grads) = _passing(chainrule, GRADIENTS[name]), _passing(real_torch, GRADIENTS[name])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    for got, expected in zip(our_grads, their_grads):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _editing(lib, name, edit, program):
    class Edit(_mode_class(lib)):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            args, kwargs = list(args), dict(kwargs or {})
            if str(func) == name:
                seen.append(name)
                edit(args, kwargs)
            return func(*args, **kwargs)

    seen = []
    inputs = _inputs(lib)
    with Edit():
        out = program(lib, inputs)
    assert seen == [name]
    return out.detach().numpy()


def _set(position, value):
    def edit(args, kwargs):
        args[position] = value
    return edit


EDITS = {
    "softmax_dim": ("aten._softmax.default", _set(1, 0), lambda lib, a: a["x"].softmax(-1)),
    "view_shape": ("aten.view.default", _set(1, [-1, 1]), lambda lib, a: a["x"].view(-1)),
    "t_as_transpose_free": ("aten.t.default", lambda args, kwargs: None, lambda lib, a: a["x"].t() * 1),
    "sum_dims": ("aten.sum.dim_IntList", _set(1, [0]), lambda lib, a: a["x"].sum(-1)),
    "argmax_dim": ("aten.argmax.default", _set(1, 0), lambda lib, a: a["x"].argmax(1)),
    "cumsum_dim": ("aten.cumsum.default", _set(1, 0), lambda lib, a: a["x"].cumsum(1)),
    "topk_k": ("aten.topk.default", _set(1, 1), lambda lib, a: a["x"].topk(2).values),
    "addmm_bias": ("aten.addmm.default", lambda args, kwargs: args.__setitem__(0, args[0] * 0),
                   lambda lib, a: lib.addmm(a["lb"], a["x"], a["lw"].t())),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_handler_that_changes_an_argument_gets_what_it_asked_for(name):
    op, edit, program = EDITS[name]
    ours = _editing(chainrule, op, edit, program)
    theirs = _editing(real_torch, op, edit, program)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_a_literal_reaches_a_wrapper_subclass_free_mode_once_and_keeps_requires_grad():
    lines = []

    class Log(chainrule.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            lines.append(str(func))
            return func(*args, **(kwargs or {}))

    with Log():
        made = chainrule.tensor([1.0, 2.0], requires_grad=True)
    assert lines == ["aten.lift_fresh.default"]
    assert made.requires_grad and made.is_leaf
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype can require gradients"):
        with Log():
            chainrule.tensor([1, 2], requires_grad=True)


def test_a_note_left_by_an_op_that_never_ran_is_not_shown_for_the_next_one():
    from chainrule.autograd import function

    lines = []

    class Log(chainrule.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            lines.append((str(func), list(args[1:])))
            return func(*args, **(kwargs or {}))

    x = chainrule.ones(2, 3).t()
    with Log():
        with pytest.raises(RuntimeError):
            x.view(-1)  # refused (not viewable) after its note, before its op runs
        x.softmax(1)
        x.reshape(6)  # a copy: clone, then _unsafe_view of the shape worked out
    assert lines[0] == ("aten._softmax.default", [1, False])
    assert lines[1:] == [("aten.clone.default", []), ("aten._unsafe_view.default", [[6]])]
    assert function.given_arguments is None



def test_batch_norm_in_training_runs_under_a_mode_and_updates_its_running_statistics():
    """BatchNorm's forward fills a dict its caller reads after (the batch statistics): a mode's handler
    that runs the op in its own form must run it on that dict, not a copy (KeyError: 'mean' before)."""
    def run(lib):
        class Pass(_mode_class(lib)):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                return func(*args, **(kwargs or {}))

        a = _inputs(lib)
        mean, var = lib.zeros(3), lib.ones(3)
        with Pass():
            out = F(lib).batch_norm(a["x"], mean, var, training=True)
            F(lib).batch_norm(a["x"], None, None, training=True)
        return out.numpy(), mean.numpy(), var.numpy()

    for ours, theirs in zip(run(chainrule), run(real_torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
