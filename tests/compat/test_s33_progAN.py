"""Ranking, second-order optimisation and memory-network idioms, against torch 2.13.

Found writing the learning_to_rank, kfac_optimizer and neural_turing_machine programs and probing
the idioms around them:

* the in-place view ops (``t_``, ``transpose_``, ``squeeze_``, ``unsqueeze_``, ``swapdims_``,
  ``swapaxes_``, ``as_strided_``) ran on a leaf that requires grad, on a view of one, on a view made
  under ``no_grad`` and on one of ``chunk``'s or ``unbind``'s outputs; torch refuses each as it refuses
  every in-place op (K-FAC's patch extraction calls ``transpose_`` on ``unfold`` views: on the
  ``.data`` of an input it runs, on the input itself it is refused);
* ``F.cosine_similarity`` (the NTM's content addressing) refused an integer or bool input with
  ``linalg.vector_norm``'s words and accepted a complex one; torch checks the common dtype first
  ("expected common dtype to be floating point, yet common dtype is Long") and casts an integer
  input to it, so ``cosine_similarity(long, float)`` is a float result;
* ``F.binary_cross_entropy`` / ``nn.BCELoss`` (the NTM's loss) took a target outside [0, 1] (or
  NaN); torch's kernel refuses it, checking element by element, the input before the target;
* the exponent's gradient of ``torch.pow(0.0, a)`` / ``0 ** a`` (a number base of zero, as in
  sharpening a weighting with a zero entry by a learned power) was NaN everywhere; torch's rule
  gives 0 where ``a >= 0`` and ``0 ** a * log 0 = -inf`` where ``a < 0``;
* ``detach_()`` on a view refused only a view of a tensor that requires grad, with the first
  sentence of torch's message; torch refuses every (differentiable) view, a plain tensor's slice,
  ``view``, ``t()`` or ``unbind`` output too, with its whole message (the DDP bucket-view hint);
* ``logcumsumexp`` (ListMLE), ``cumprod``, ``cummax``, ``cummin``, ``kron`` (the K-FAC check),
  ``outer`` (the NTM's erase) and ``take_along_dim`` refused a missing or mistyped argument in
  Python's words ("missing 1 required positional argument: 'dim'"; "argument 'dim' must be int"
  without "(position 2)"); they now go through torch's argument parser's signatures;
* the deprecated scalar-first overloads called in place (K-FAC repos' ``p.data.add_(-lr, d_p)``,
  ``buf.mul_(momentum).add_(1, d_p)``; hand-written Adam's ``addcmul_(1 - beta2, g, g)``) warned
  in the out-of-place name ("This overload of add is deprecated"); torch names ``add_``.
"""

from __future__ import annotations

import pytest

import chainrule
from tests._fresh_process import batched

torch = pytest.importorskip("torch")

LIBS = (torch, chainrule)


def _outcome(fn, lib):
    try:
        result = fn(lib)
    except Exception as error:  # noqa: BLE001 - the class and text are what is compared
        return type(error).__name__, str(error)
    return "ok", tuple(result.shape), result.requires_grad, type(result.grad_fn).__name__ if result.grad_fn else None


def _under_no_grad(make):
    def view(lib):
        base = make(lib)
        with lib.no_grad():
            return base[:, :]
    return view


TARGETS = {
    "leaf": lambda lib: lib.ones(2, 3, requires_grad=True),
    "parameter": lambda lib: lib.nn.Parameter(lib.ones(2, 3)),
    "view of a leaf": lambda lib: lib.ones(2, 3, requires_grad=True)[:, :],
    "view of a view of a leaf": lambda lib: lib.ones(2, 3, requires_grad=True)[:, :][:, :],
    "expanded leaf": lambda lib: lib.ones(1, 3, requires_grad=True).expand(2, 3),
    "view made under no_grad": _under_no_grad(lambda lib: lib.ones(2, 3) * lib.ones(1, requires_grad=True)),
    "chunk output": lambda lib: (lib.ones(2, 6, requires_grad=True) * 1).chunk(2, 1)[0],
    "unbind output": lambda lib: (lib.ones(2, 3, 1, requires_grad=True) * 1).unbind(0)[0],
    # accepted by torch: a non-leaf, its view, a parameter's .data, a view of a tensor outside the graph
    "non-leaf": lambda lib: lib.ones(2, 3, requires_grad=True) * 1,
    "view of a non-leaf": lambda lib: (lib.ones(2, 3, requires_grad=True) * 1)[:, :],
    "parameter data": lambda lib: lib.nn.Parameter(lib.ones(2, 3)).data,
    "view of a plain tensor": lambda lib: lib.ones(2, 3)[:, :],
}
INPLACE_VIEWS = {
    "t_": lambda t: t.t_(),
    "transpose_": lambda t: t.transpose_(0, 1),
    "squeeze_": lambda t: t.squeeze_(),
    "unsqueeze_": lambda t: t.unsqueeze_(0),
    "swapdims_": lambda t: t.swapdims_(0, 1),
    "swapaxes_": lambda t: t.swapaxes_(1, 0),
    "as_strided_": lambda t: t.as_strided_((2,), (1,)),
}


@pytest.mark.parametrize("op", INPLACE_VIEWS)
@pytest.mark.parametrize("target", TARGETS)
def test_inplace_view_ops_are_refused_where_torch_refuses_an_inplace_op(target, op):
    expected, actual = (_outcome(lambda lib: INPLACE_VIEWS[op](TARGETS[target](lib)), lib) for lib in LIBS)
    assert actual == expected


@pytest.mark.parametrize("op", ["transpose_", "t_", "unsqueeze_"])
def test_inplace_view_ops_on_a_leaf_run_under_no_grad(op):
    def run(lib):
        leaf = lib.ones(2, 3, requires_grad=True)
        with lib.no_grad():
            return INPLACE_VIEWS[op](leaf)
    assert _outcome(run, chainrule) == _outcome(run, torch)


def test_kfac_patch_extraction_transposes_unfold_views_in_place():
    def patches(lib, through_data):
        x = lib.arange(2 * 2 * 4 * 4, dtype=lib.float32).reshape(2, 2, 4, 4).requires_grad_()
        source = lib.nn.functional.pad(x, (1, 1, 1, 1))
        if through_data:
            source = source.data
        cols = source.unfold(2, 3, 1).unfold(3, 3, 1)
        cols = cols.transpose_(1, 2).transpose_(2, 3).contiguous()
        return cols.view(cols.size(0), cols.size(1), cols.size(2), -1)

    expected, actual = patches(torch, True), patches(chainrule, True)
    assert tuple(actual.shape) == tuple(expected.shape)
    assert actual.tolist() == expected.tolist()
    # a view of the graph's (non-leaf) padded input is transposed in place and stays differentiable
    expected, actual = patches(torch, False), patches(chainrule, False)
    assert actual.requires_grad and expected.requires_grad
    assert actual.tolist() == expected.tolist()


COSINE_CASES = {
    "long, long": (("long", (3,)), ("long", (3,)), {}),
    "long, float": (("long", (3,)), ("float32", (3,)), {}),
    "bool, long": (("bool", (3,)), ("long", (3,)), {}),
    "float16, long": (("float16", (3,)), ("long", (3,)), {}),
    "float64, int32": (("float64", (2, 3)), ("int32", (1, 3)), {"dim": 1}),
    "long, long, negative eps": (("long", (3,)), ("long", (3,)), {"eps": -1.0}),
    "long, long, shapes differ": (("long", (3,)), ("long", (4,)), {}),
    "long, long, dim out of range": (("long", (3,)), ("long", (3,)), {"dim": 3}),
    "complex64, float": (("complex64", (3,)), ("float32", (3,)), {}),
    "float, float, negative eps": (("float32", (3,)), ("float32", (3,)), {"eps": -1.0}),
}


@pytest.mark.parametrize("case", COSINE_CASES)
def test_cosine_similarity_checks_and_casts_the_common_dtype(case):
    (dtype1, shape1), (dtype2, shape2), kwargs = COSINE_CASES[case]
    kwargs = {"dim": 0, **kwargs}

    def run(lib):
        x1 = (lib.arange(1, 1 + _numel(shape1)) % 3).reshape(shape1).to(getattr(lib, dtype1))
        x2 = (lib.arange(2, 2 + _numel(shape2)) % 4).reshape(shape2).to(getattr(lib, dtype2))
        result = lib.nn.functional.cosine_similarity(x1, x2, **kwargs)
        return str(result.dtype).split(".")[-1], result.tolist()

    expected, actual = (_result_or_error(run, lib) for lib in LIBS)
    if expected[0] == "ok":
        assert actual[0] == "ok" and actual[1][0] == expected[1][0]
        assert actual[1][1] == pytest.approx(expected[1][1], rel=1e-3)
    else:
        assert actual == expected


def _numel(shape):
    count = 1
    for size in shape:
        count *= size
    return count


def _result_or_error(fn, lib):
    try:
        return "ok", fn(lib)
    except Exception as error:  # noqa: BLE001 - the class and text are what is compared
        return type(error).__name__, str(error)


BCE_CASES = {
    "target above one": ([0.5, 0.5], [0.0, 2.0]),
    "target below zero": ([0.5, 0.5], [-0.5, 1.0]),
    "target NaN": ([0.5, 0.5], [0.0, float("nan")]),
    "target just above one": ([0.5, 0.5], [0.0, 1.0000001]),
    "negative zero target": ([0.5, 0.5], [0.0, -0.0]),
    "bad target first": ([0.5, 1.5], [2.0, 0.0]),
    "bad input first": ([1.5, 0.5], [0.0, 2.0]),
    "both bad in one element": ([1.5, 0.5], [2.0, 0.0]),
}


@pytest.mark.parametrize("module", [False, True])
@pytest.mark.parametrize("case", BCE_CASES)
def test_binary_cross_entropy_refuses_a_target_outside_zero_one(case, module):
    probabilities, target = BCE_CASES[case]

    def run(lib):
        loss = lib.nn.BCELoss() if module else lib.nn.functional.binary_cross_entropy
        return loss(lib.tensor(probabilities), lib.tensor(target)).item()

    expected, actual = (_result_or_error(run, lib) for lib in LIBS)
    if expected[0] == "ok":
        assert actual[0] == "ok" and actual[1] == pytest.approx(expected[1], rel=1e-6)
    else:
        assert actual == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spelling", ["torch.pow(0.0, a)", "0 ** a", "torch.pow(0, a)"])
def test_zero_base_power_gradient_wrt_the_exponent(spelling, dtype):
    exponents = [2.0, 0.0, -1.0, 0.5, float("nan"), float("inf"), float("-inf")]

    def run(lib):
        a = lib.tensor(exponents, dtype=getattr(lib, dtype), requires_grad=True)
        power = {"torch.pow(0.0, a)": lambda: lib.pow(0.0, a), "0 ** a": lambda: 0 ** a,
                 "torch.pow(0, a)": lambda: lib.pow(0, a)}[spelling]()
        power.backward(lib.tensor([1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0], dtype=getattr(lib, dtype)))
        return power.grad_fn.name(), a.grad.tolist()

    expected, actual = run(torch), run(chainrule)
    assert actual[0] == expected[0]
    assert str(actual[1]) == str(expected[1])  # nan and the infinities compared as printed


def test_zero_base_power_gradient_is_differentiable():
    def run(lib):
        a = lib.tensor([2.0, -1.0, 0.0], dtype=lib.float64, requires_grad=True)
        (first,) = lib.autograd.grad(lib.pow(0.0, a).sum(), a, create_graph=True)
        return str(first.tolist()), first.requires_grad

    assert run(chainrule) == run(torch)


DETACH_TARGETS = {
    "slice of a plain tensor": lambda lib: lib.ones(2, 3)[:, :],
    "view of a plain tensor": lambda lib: lib.ones(2, 3).view(6),
    "transpose of a plain tensor": lambda lib: lib.ones(2, 3).t(),
    "unbind output": lambda lib: lib.ones(2, 3).unbind(0)[0],
    "slice of a non-leaf": lambda lib: (lib.ones(2, 3, requires_grad=True) * 1)[0],
    "slice of a detached leaf": lambda lib: lib.ones(2, 3, requires_grad=True).detach()[0],
    "dtype view": lambda lib: lib.ones(2, 3, requires_grad=True).view(lib.int32),
    "data": lambda lib: lib.ones(2, 3, requires_grad=True).data,
    "reshape copy": lambda lib: lib.ones(2, 3).t().reshape(6),
    "non-leaf": lambda lib: lib.ones(2, 3, requires_grad=True) * 1,
}


@pytest.mark.parametrize("target", DETACH_TARGETS)
def test_detach_in_place_refuses_every_view(target):
    def run(lib):
        result = DETACH_TARGETS[target](lib).detach_()
        return result.requires_grad, result.grad_fn is None

    assert _result_or_error(run, chainrule) == _result_or_error(run, torch)


PARSER_CALLS = {
    "logcumsumexp()": lambda lib, x: lib.logcumsumexp(x),
    "logcumsumexp(x, None)": lambda lib, x: lib.logcumsumexp(x, None),
    "logcumsumexp(x, 0.5)": lambda lib, x: lib.logcumsumexp(x, 0.5),
    "logcumsumexp(x, dim='a')": lambda lib, x: lib.logcumsumexp(x, dim="a"),
    "x.logcumsumexp()": lambda lib, x: x.logcumsumexp(),
    "x.logcumsumexp(None)": lambda lib, x: x.logcumsumexp(None),
    "logcumsumexp(x, 0, out=)": lambda lib, x: lib.logcumsumexp(x, 0, out=lib.empty(2, 3)),
    "cumprod(x, 0.5)": lambda lib, x: lib.cumprod(x, 0.5),
    "cumprod(x, 0, dtype=float64)": lambda lib, x: lib.cumprod(x, 0, dtype=lib.float64),
    "cummax()": lambda lib, x: lib.cummax(x),
    "cummax(x, 0.5)": lambda lib, x: lib.cummax(x, 0.5),
    "x.cummin(dim=1)": lambda lib, x: x.cummin(dim=1).values,
    "cummin()": lambda lib, x: lib.cummin(x),
    "kron()": lambda lib, x: lib.kron(x),
    "kron(x, x)": lambda lib, x: lib.kron(x, x),
    "outer()": lambda lib, x: lib.outer(x[0]),
    "outer(a, 0.5)": lambda lib, x: lib.outer(x[0], 0.5),
    "x.outer(y)": lambda lib, x: x[0].outer(x[1]),
    "take_along_dim()": lambda lib, x: lib.take_along_dim(x),
    "take_along_dim(x, i, 0.5)": lambda lib, x: lib.take_along_dim(x, lib.tensor([[0], [1]]), 0.5),
    "take_along_dim(x, i, 1)": lambda lib, x: lib.take_along_dim(x, lib.tensor([[0], [1]]), 1),
}


@pytest.mark.parametrize("call", PARSER_CALLS)
def test_argument_parser_refusals_of_cumulative_and_product_ops(call):
    def run(lib):
        return PARSER_CALLS[call](lib, lib.tensor([[1.0, 3.0, 2.0], [2.0, 0.5, 4.0]])).reshape(-1).tolist()

    expected, actual = (_result_or_error(run, lib) for lib in LIBS)
    if expected[0] == "ok":
        assert actual[0] == "ok"
        assert actual[1] == pytest.approx(expected[1], rel=1e-6)
    else:
        assert actual == expected


INPLACE_SCALAR_FIRST = {
    "add_": "x.add_(-0.5, y)",
    "sub_": "x.sub_(2, y)",
    "addcmul_": "x.addcmul_(0.5, y, y)",
    "addcdiv_": "x.addcdiv_(2, y, y + 1)",
    "add (method)": "x.add(3, y)",
}
_WARNING_PROBE = """
import warnings
import {lib} as torch
x, y = torch.ones(3), torch.arange(3.0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    result = {call}
print(repr((result.tolist(), [str(w.message).split(" (Triggered internally")[0] for w in caught])))
"""


# torch warns once per process, so each call runs first in a fresh interpreter of each library
_fresh_runs = batched(lambda lib: {call: _WARNING_PROBE.format(lib=lib, call=source)
                                   for call, source in INPLACE_SCALAR_FIRST.items()})


@pytest.mark.parametrize("call", INPLACE_SCALAR_FIRST)
def test_scalar_first_overload_warns_in_the_name_called(call):
    assert _fresh_runs("chainrule")[call].output() == _fresh_runs("torch")[call].output()
