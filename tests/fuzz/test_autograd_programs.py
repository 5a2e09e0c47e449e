"""A differential fuzzer of the autograd engine's semantics: random small programs run on torch and on
chainrule with the same inputs, compared step by step.

A program (``draw_program`` in ``_autograd_programs.py``, drawn from its family and seed alone) makes
leaves (float32/float64, 0-d, empty, transposed, strided; some requiring grad, some made under a
grad mode), ops and views of them (view, slicing, transpose, expand, unsqueeze, narrow, select,
unbind, split, as_strided), in-place ops on views and bases (add_, mul_, copy_, zero_, clamp_, relu_,
exp_, index_put_, masked_fill_; under no_grad too), detach, detach_, requires_grad_, retain_grad,
hooks (tensor hooks returning None or a new gradient, post-accumulate-grad hooks, Node hooks and
pre-hooks, removed again), ``.grad`` read (second order) and assigned (None, another shape), and
``backward`` / ``autograd.grad`` calls (gradient, retain_graph, create_graph, inputs, allow_unused,
materialize_grads, grad_outputs, only_inputs; the same call twice). After every step we compare the
error (torch's builtin class and its message's first clause), the warnings, the hook calls (which,
in what order, with what gradients) and every value's state: values, shape, dtype, strides,
requires_grad, is_leaf, grad_fn's name, _version (counted from the value's making), is_inference,
retains_grad, ``.grad`` (values and grad_fn) of leaves and retaining tensors. A step that raises on
torch must raise alike on chainrule and leave the same state.

The families weight the vocabulary (views and in-place ops, hooks, backward calls, grad modes, all
mixed). CI runs ``CI_CASES`` seeds a family (about 2.5 s of calls on the loaded 2-core machine, besides torch's
one-time warm-up at the first program);
``CHAINRULE_LONG_TESTS=1`` runs ``LONG_CASES``. ``python -m tests.fuzz.test_autograd_programs N
[family ...]`` runs N seeds a family and prints the mismatches, for hunting (``--all``: the listed
ones too). A mismatch found and not fixed goes into ``OPEN`` (its program's repr -> the reason), a
whole kind of them into ``OPEN_KINDS``, so that a new one fails CI.
"""

from __future__ import annotations

import sys

import pytest

import chainrule

from ._autograd_programs import FAMILIES, draw_program, first_difference, run_program
from ._differential import Differential

CI_CASES, LONG_CASES = 24, 1000

# program repr -> why it differs: the open defects, found and not fixed yet
OPEN: dict[str, str] = {}


def _made_in_inference_mode_requiring_grad(program) -> bool:
    return any(step.op == "leaf" and step.mode == "inference" and step.args[3] for step in program.steps)


def _any_mode(program, mode) -> bool:
    return any(step.mode == mode for step in program.steps)


# (reason, test of (program, problem)): whole kinds of open defect, found and not fixed yet
OPEN_KINDS = [
    ("an inference tensor that requires grad (made so under inference_mode) used outside it: torch's ops give "
     "results that do not require grad (and a 0-d one's mean raises sum()'s out= error); chainrule records them",
     lambda program, problem: _made_in_inference_mode_requiring_grad(program)
     and ("requires_grad" in problem or "raises" in problem or "grad" in problem)),
    ("torch's zero_/clamp_/mul_/copy_ of an inference tensor outside inference_mode raise after writing (the "
     "values change); chainrule raises before writing, as add_ does in torch",
     lambda program, problem: _any_mode(program, "inference") and ".values:" in problem
     and any(k in problem.split(":")[0] for k in ("zero_", "clamp_", "mul_", "add_", "relu_", "exp_", "masked_fill_",
                                                  "index_put_", "copy_"))),
    ("a view made before its base's requires_grad_(), the base written in place before that call, or an unbind/"
     "split piece: torch regenerates the view's grad_fn from the version it was made at (or refuses the piece as "
     "made in no_grad mode); chainrule's view counts from the requires_grad_() call",
     lambda program, problem: "requires_grad_(" in problem.split(":")[0]
     and any(k in problem for k in (".is_leaf:", ".grad_fn:", ".requires_grad:", "RuntimeError"))
     and any(s.op == "inplace" or s.op == "view" and s.args[0] in ("unbind", "split") for s in program.steps)),
    ("torch's gradients alias the tensors they came from (SumBackward0 returns an expand of its incoming "
     "gradient, autograd.grad of an output for itself returns grad_outputs): an in-place op on one shows in "
     "the other's values and _version; chainrule's are separate tensors",
     lambda program, problem: any(step.op in ("grad", "grad_of") for step in program.steps)
     and ("._version:" in problem or ".values:" in problem or "can't detach views in-place" in problem)),
    ("an in-place op through a view made by expand (NumPy's broadcast_to, read-only) where torch's write "
     "touches each element once (a slice of size 1 on the expanded dim): chainrule refuses the write",
     lambda program, problem: "non-writable" in problem or "more than one element of the written-to" in problem),
    ("a second backward through an in-place op on a 0-d view (t(), unsqueeze) of a tensor made with grad off: "
     "torch's CopySlices was freed by the first and refuses, chainrule's runs again",
     lambda program, problem: "torch raised RuntimeError: trying to backward through the graph a second time, "
     "chainrule did not" in problem and any(s.op == "inplace" for s in program.steps)),
    ("tensor hooks and an as_strided view / autograd.grad of a leaf output: torch calls the hooks of the "
     "tensor the view was made of (and of a leaf that is the output), chainrule does not",
     lambda program, problem: "hooks: 0 items vs torch" in problem),
    ("an in-place op on a view made under no_grad whose elements overlap (an expand's): torch refuses the "
     "no_grad view first ('A view was created in no_grad mode'), chainrule's overlap check comes first",
     lambda program, problem: "A view was created in no_grad mode" in problem
     and "more than one element of the written-to tensor" in problem),
    ("a view whose base (or a detach()ed alias of it) changed in place without the view's autograd seeing it "
     "(under no_grad, through detach(), an empty base, after requires_grad_(False)): torch regenerates the "
     "view's grad_fn (AsStridedBackward0) from the shared version counter, chainrule keeps the view's own",
     lambda program, problem: "vs torch 'AsStridedBackward0'" in problem),
    ("a gradient through a tensor detach_()ed after the graph used it (torch's saved tensors see the "
     "detached one, chainrule's keep theirs)",
     lambda program, problem: ".grad:" in problem and any(s.op == "detach_" for s in program.steps)),
    ("as_strided of a view whose storage is no single block, or of an expanded one: chainrule refuses it, or "
     "frees the graph another way",
     lambda program, problem: any(s.op == "view" and s.args[0] == "as_strided" for s in program.steps)
     and ("as_strided" in problem or "backward through the graph a second time" in problem
          or ".grad:" in problem or ".grad_fn:" in problem)),
    ("a tensor made in inference mode (or a view of one) and autograd: which error torch raises first, and "
     "a view's requires_grad under inference_mode",
     lambda program, problem: _any_mode(program, "inference")
     and ("message:" in problem or ".requires_grad:" in problem or ".grad:" in problem)),    ("copy_ into a view made under no_grad, with grad mode on: torch refuses it ('A view was created in no_grad "
     "mode and is being modified inplace'), chainrule's copy_ path writes",
     lambda program, problem: "a view was created in no_grad mode and is being modified inplace with grad mode "
     "enabled, chainrule did not" in problem),
    ("detach_() of a tensor a graph saved: torch's backward then refuses the saved tensor ('trying to use a saved "
     "tensor that has been detached in-place'), and views of it stop requiring grad; chainrule's keep theirs",
     lambda program, problem: any(s.op == "detach_" for s in program.steps)
     and ("detached in-place" in problem or ".requires_grad: True vs torch False" in problem)),
    ("the strides of autograd.grad's results (and of a gradient a node hook sees): torch's kernels' layouts "
     "(an expand's zero strides, a transposed leaf's), chainrule's own",
     lambda program, problem: ".stride" in problem and any(s.op == "grad" for s in program.steps)),
]


def mismatch(program) -> str | None:
    """How chainrule's run of ``program`` differs from torch's, or None."""
    import torch

    return first_difference(program, run_program(program, chainrule), run_program(program, torch))


FUZZER = Differential(list(FAMILIES), draw_program, mismatch, OPEN, OPEN_KINDS, CI_CASES, LONG_CASES)
known, hunt = FUZZER.known, FUZZER.hunt


@pytest.mark.parametrize("family", list(FAMILIES))
def test_autograd_programs_agree_with_torch(family):
    pytest.importorskip("torch")
    found = FUZZER.unlisted(family)
    assert not found, "\n".join(found)


if __name__ == "__main__":
    FUZZER.main(sys.argv[1:])
