"""s45 progCC: autograd.grad/backward given fewer gradients than outputs raise torch's
"got N tensors and M gradients" (after checking the pairs they do have), as the hypernetwork
program's routed-gradient check would when a list is one short; each case runs on both."""

import pytest
import torch as real_torch

import chainrule


def _outcome(lib, case):
    z = lib.ones(4, requires_grad=True)
    c = lib.ones(4)
    cases = {
        "one_short": lambda: lib.autograd.grad([z * 2, z * 3], [z], grad_outputs=[lib.ones(4)]),
        "one_extra": lambda: lib.autograd.grad([z * 2], [z], grad_outputs=[lib.ones(4), lib.ones(4)]),
        "empty_list": lambda: lib.autograd.grad([z * 2, z * 3], [z], grad_outputs=[]),
        "empty_tuple": lambda: lib.autograd.grad([z * 2, z * 3], [z], grad_outputs=()),
        "one_tensor": lambda: lib.autograd.grad([z * 2, z * 3], [z], grad_outputs=lib.ones(4)),
        "short_bad_shape": lambda: lib.autograd.grad([z * 2, z * 3], [z], grad_outputs=[lib.ones(3)]),
        "none_scalars": lambda: lib.autograd.grad([z.sum(), z.sum()], [z]),
        "short_none_scalar": lambda: lib.autograd.grad([z.sum(), z.sum()], [z], grad_outputs=[None]),
        "short_none_vector": lambda: lib.autograd.grad([z * 2, z * 3], [z], grad_outputs=[None]),
        "short_constant_first": lambda: lib.autograd.grad([c, z * 3], [z], grad_outputs=[lib.ones(4)]),
        "short_constant_second": lambda: lib.autograd.grad([z * 2, c], [z], grad_outputs=[lib.ones(4)]),
        "backward_short": lambda: lib.autograd.backward([z * 2, z * 3], [lib.ones(4)]),
        "backward_extra": lambda: lib.autograd.backward([z * 2], [lib.ones(4), None]),
        "backward_one_tensor": lambda: lib.autograd.backward([z * 2, z * 3], grad_tensors=lib.ones(4)),
        "backward_scalars": lambda: lib.autograd.backward([z.sum(), z.sum()]),
        "positional_full": lambda: lib.autograd.grad((z * 2, z * 3), (z,), (lib.ones(4), lib.ones(4))),
    }
    try:
        result = cases[case]()
    except Exception as e:  # noqa: BLE001 - the exception is what is compared
        return type(e).__name__, str(e).replace("chainrule.", "torch.")
    grads = None if result is None else [g.tolist() for g in result]
    return "ok", grads, z.grad.tolist() if z.grad is not None else None


CASES = ["one_short", "one_extra", "empty_list", "empty_tuple", "one_tensor", "short_bad_shape", "none_scalars",
         "short_none_scalar", "short_none_vector", "short_constant_first", "short_constant_second",
         "backward_short", "backward_extra", "backward_one_tensor", "backward_scalars", "positional_full"]


@pytest.mark.parametrize("case", CASES)
def test_gradient_count_against_outputs_matches_torch(case):
    assert _outcome(chainrule, case) == _outcome(real_torch, case)


def test_a_short_gradient_list_changes_no_grad():
    z = chainrule.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="got 2 tensors and 1 gradients"):
        chainrule.autograd.backward([z * 2, z * 3], [chainrule.ones(3)])
    assert z.grad is None


def _batched_outcome(lib, case):
    z = lib.ones(4, requires_grad=True)
    cases = {
        "short": lambda: ([z * 2, z * 3], [lib.ones(2, 4)]),
        "short_none": lambda: ([z * 2, z * 3], [None]),
        "one_tensor": lambda: ([z * 2, z * 3], lib.ones(2, 4)),
        "full": lambda: ([z * 2, z * 3], [lib.ones(2, 4), lib.ones(2, 4)]),
        "full_sizes_differ": lambda: ([z * 2, z * 3], [lib.ones(2, 4), lib.ones(3, 4)]),
        "extra": lambda: ([z * 2], [lib.ones(2, 4), lib.ones(2, 4)]),
        "extra_bad_shape": lambda: ([z * 2], [lib.ones(2, 4), lib.ones(2, 3)]),
        "empty": lambda: ([z * 2, z * 3], []),
    }
    case_fn = cases[case]
    try:
        outputs, grad_outputs = case_fn()
        result = lib.autograd.grad(outputs, [z], grad_outputs=grad_outputs, is_grads_batched=True)
    except Exception as e:  # noqa: BLE001 - the exception is what is compared
        return type(e).__name__, str(e).replace("chainrule.", "torch.")
    return "ok", [g.tolist() for g in result]


@pytest.mark.parametrize("case", ["short", "short_none", "one_tensor", "full", "full_sizes_differ",
                                  "extra", "extra_bad_shape", "empty"])
@pytest.mark.filterwarnings("ignore")
def test_batched_gradient_count_against_outputs_matches_torch(case):
    assert _batched_outcome(chainrule, case) == _batched_outcome(real_torch, case)
