"""Error messages and argument handling, session 34 (lane mendA), each checked against torch 2.13.

A case is a function of the library (``torch`` or ``chainrule``); what a user sees of it (its
value, or its error's type and message) must be torch's. torch here has no GPU: on the stand-in
'cuda' device chainrule must raise torch's CPU error with the device's own names in it."""

from __future__ import annotations

import warnings

import pytest

import chainrule
from chainrule._backend import use_standin_cuda
from tests._fresh_process import batched

torch = pytest.importorskip("torch")


def _outcome(case, lib, on_standin_cuda=False):
    """What ``case(lib)`` shows a user: ("ok", its tensor (or tuple of tensors) as lists) or ("error",
    the exception's type, its message), with the warnings it gives (category and message) last."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if on_standin_cuda:
                with use_standin_cuda():
                    result = case(lib)
            else:
                result = case(lib)
            shown = ("ok", [r.tolist() for r in result] if isinstance(result, tuple) else result.tolist())
        except Exception as error:  # the error is part of what is compared
            shown = ("error", type(error).__name__, str(error))
    return (*shown, [(w.category.__name__, str(w.message)) for w in caught])


def assert_as_torch(case):
    assert _outcome(case, chainrule) == _outcome(case, torch)


# --- 1. device errors name torch's op and its device's kernel ------------------------------------

COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"]
COMPARISON_FORMS = {
    "function": lambda lib, op, a, b: getattr(lib, op)(a, b),
    "method": lambda lib, op, a, b: getattr(a, op)(b),
    "operator": lambda lib, op, a, b: getattr(a, f"__{op}__")(b),  # (a == b: torch's eq)
}


@pytest.mark.parametrize("op, form", [(op, form) for op in COMPARISONS for form in COMPARISON_FORMS
                                      if form != "operator" or not op.startswith("logical")])
def test_a_comparison_across_devices_names_torchs_op(op, form):
    """A 'cuda' tensor compared with a CPU one (not 0-d): the error names torch's op (``eq``), not
    NumPy's ufunc (``equal``, ``less``...)."""
    def case(lib):
        return COMPARISON_FORMS[form](lib, op, lib.tensor([1.0, 2.0], device="cuda"), lib.tensor([1.0, 3.0]))

    _, kind, message, _ = _outcome(case, chainrule, on_standin_cuda=True)
    assert kind == "RuntimeError"
    assert message.startswith("Expected all tensors to be on the same device, but found at least two devices, "
                              "cuda:0 and cpu!")
    assert message.endswith(f"(when checking the arguments of {getattr(torch, op).__name__})")


NEXTAFTER_OPERANDS = {
    "int64": lambda lib, device: (lib.tensor([1, 2], device=device), lib.tensor([2, 1], device=device)),
    "bool": lambda lib, device: (lib.tensor([True, False], device=device), lib.tensor([True, True], device=device)),
    "int64 and a 0-d CPU int64": lambda lib, device: (lib.tensor([1, 2], device=device), lib.tensor(3)),
    "int32 and int64": lambda lib, device: (lib.tensor([1, 2], dtype=lib.int32, device=device),
                                            lib.tensor([3, 4], device=device)),
}


@pytest.mark.parametrize("operands", NEXTAFTER_OPERANDS.values(), ids=NEXTAFTER_OPERANDS.keys())
def test_nextafter_of_non_floating_tensors_names_the_kernel_of_their_device(operands):
    """torch's CUDA kernel is nextafter_cuda; on the CPU its error is torch's as it is."""
    def case(device):
        return lambda lib: lib.nextafter(*operands(lib, device))

    on_cpu = _outcome(case("cpu"), torch)
    assert on_cpu[:2] == ("error", "NotImplementedError") and '"nextafter_cpu"' in on_cpu[2]
    assert _outcome(case("cpu"), chainrule) == on_cpu
    on_cuda = _outcome(case("cuda"), chainrule, on_standin_cuda=True)
    assert on_cuda == (on_cpu[0], on_cpu[1], on_cpu[2].replace('"nextafter_cpu"', '"nextafter_cuda"'), on_cpu[3])


@pytest.mark.parametrize("op, dtype", [("nextafter", "int64"), ("gcd", "float32"), ("lcm", "float32")])
def test_a_refused_dtype_comes_after_the_broadcast_check(op, dtype):
    """TensorIterator broadcasts before its kernel looks at the dtype: shapes that do not broadcast
    are the error, whatever the dtype."""
    assert_as_torch(lambda lib: getattr(lib, op)(lib.tensor([1, 2], dtype=getattr(lib, dtype)),
                                                 lib.tensor([1, 2, 3], dtype=getattr(lib, dtype))))


# --- 2. the deprecated scalar-first overloads of addcmul and addcdiv -----------------------------

DEPRECATED_CALLS = {
    "torch.addcmul": "torch.addcmul(p, 0.5, v, v)",
    "torch.addcdiv": "torch.addcdiv(p, 0.5, v, v + 1)",
    "torch.addcmul with out=": "torch.addcmul(p, 0.5, v, v, out=torch.empty(3))",
    "torch.addcdiv with a 0-d value": "torch.addcdiv(p, torch.tensor(0.5), v, v + 1)",
    "Tensor.addcmul": "p.addcmul(0.5, v, v)",
    "Tensor.addcdiv_": "p.addcdiv_(0.5, v, v + 1)",
}


def _first_calls_of_a_process(lib_name: str) -> dict[str, str]:
    """Each call's script: its values and warnings as the first deprecated overload of a fresh
    process (torch warns once per process for all of them), the warnings' file included: the
    caller's. (torch's message ends with the C++ line that warned, which chainrule has none of.)"""
    return {call: (f"import warnings, {lib_name} as torch\n"
                   "p, v = torch.ones(3), torch.arange(3.0)\n"
                   "with warnings.catch_warnings(record=True) as caught:\n"
                   "    warnings.simplefilter('always')\n"
                   f"    values = ({call}).tolist()\n"
                   "print(repr((values, [(w.category.__name__, str(w.message).split(' (Triggered internally')[0], w.filename)\n"
                   "                     for w in caught])))\n")
            for call in DEPRECATED_CALLS.values()}


_fresh_runs = batched(_first_calls_of_a_process)


@pytest.mark.parametrize("call", DEPRECATED_CALLS.values(), ids=DEPRECATED_CALLS.keys())
def test_the_deprecated_overload_warns_in_the_words_of_the_form_called(call):
    """torch.addcmul(p, 0.5, v, v) warns with the function's signature (``input``, ``out``); the
    methods with theirs."""
    assert _fresh_runs("chainrule")[call].output() == _fresh_runs("torch")[call].output()


ADD_PRODUCT_REFUSALS = {
    "p.addcmul_(0.5, v, 2)": lambda lib, p, v: p.addcmul_(0.5, v, 2),
    "p.addcdiv_(0.5, v, 2)": lambda lib, p, v: p.addcdiv_(0.5, v, 2),
    "p.addcmul(0.5, v, 2)": lambda lib, p, v: p.addcmul(0.5, v, 2),
    "p.addcmul_('a', v, v)": lambda lib, p, v: p.addcmul_("a", v, v),
    "p.addcmul_(v, v, 2)": lambda lib, p, v: p.addcmul_(v, v, 2),
    "p.addcmul_(0.5, v, v, value=2)": lambda lib, p, v: p.addcmul_(0.5, v, v, value=2),
    "p.addcmul_(v, v, value='a')": lambda lib, p, v: p.addcmul_(v, v, value="a"),
    "p.addcmul_(grad-requiring 0-d, v, v)": lambda lib, p, v: p.addcmul_(lib.tensor(0.5, requires_grad=True), v, v),
    "p.addcdiv_('a')": lambda lib, p, v: p.addcdiv_("a"),
    "torch.addcmul(p, 0.5, v, 2)": lambda lib, p, v: lib.addcmul(p, 0.5, v, 2),
    "torch.addcdiv(p, 0.5, v, 2)": lambda lib, p, v: lib.addcdiv(p, 0.5, v, 2),
    "torch.addcmul(p, 0.5, v, v, value=2)": lambda lib, p, v: lib.addcmul(p, 0.5, v, v, value=2),
    "torch.addcmul(p)": lambda lib, p, v: lib.addcmul(p),
    "torch.addcdiv(p, v, v, valu=1)": lambda lib, p, v: lib.addcdiv(p, v, v, valu=1),
    "torch.full((2,), grad-requiring 0-d)": lambda lib, p, v: lib.full((2,), lib.tensor(1.0, requires_grad=True)),
    "torch.histc(p, 4, grad-requiring 0-d, 1)": lambda lib, p, v: lib.histc(p, 4, lib.tensor(0.0, requires_grad=True), 1),
}


@pytest.mark.parametrize("call", ADD_PRODUCT_REFUSALS)
def test_a_refused_call_of_addcmul_or_addcdiv_is_worded_as_torch(call):
    """A Scalar argument is a number or a 0-d tensor that does not require grad, as torch's parser
    takes it; the deprecated overload is hidden from the messages, as in torch."""
    assert_as_torch(lambda lib: ADD_PRODUCT_REFUSALS[call](lib, lib.ones(3), lib.arange(3.0)))


# --- 3. torch's parser words the refusals of argsort, roll, diff, log2, unique and ger ------------

PARSER_CALLS = {
    "argsort()": lambda lib, x, v: lib.argsort(),
    "argsort(x, 0.5)": lambda lib, x, v: lib.argsort(x, 0.5),
    "argsort(x, 0, 1)": lambda lib, x, v: lib.argsort(x, 0, 1),
    "argsort(x, stable=1)": lambda lib, x, v: lib.argsort(x, stable=1),
    "argsort(x, stable=None)": lambda lib, x, v: lib.argsort(x, stable=None),
    "x.argsort(0.5)": lambda lib, x, v: x.argsort(0.5),
    "argsort(x, 0, True, True)": lambda lib, x, v: lib.argsort(x, 0, True, True),
    "argsort(x, foo=1)": lambda lib, x, v: lib.argsort(x, foo=1),
    "argsort(x, stable=True, dim=0)": lambda lib, x, v: lib.argsort(x, stable=True, dim=0),
    "roll(x)": lambda lib, x, v: lib.roll(x),
    "x.roll()": lambda lib, x, v: x.roll(),
    "x.roll(1.5)": lambda lib, x, v: x.roll(1.5),
    "roll(x, 1, 0.5)": lambda lib, x, v: lib.roll(x, 1, 0.5),
    "roll(x, 1, 0, 2)": lambda lib, x, v: lib.roll(x, 1, 0, 2),
    "roll(x, 1, dims=None)": lambda lib, x, v: lib.roll(x, 1, dims=None),
    "diff()": lambda lib, x, v: lib.diff(),
    "diff(x, 0.5)": lambda lib, x, v: lib.diff(x, 0.5),
    "diff(x, 1, 'a')": lambda lib, x, v: lib.diff(x, 1, "a"),
    "diff(x, 1, 0, 5)": lambda lib, x, v: lib.diff(x, 1, 0, 5),
    "diff(x, n=1.5)": lambda lib, x, v: lib.diff(x, n=1.5),
    "x.diff(None)": lambda lib, x, v: x.diff(None),
    "diff(x, 1, 0, x, x, x)": lambda lib, x, v: lib.diff(x, 1, 0, x, x, x),
    "log2()": lambda lib, x, v: lib.log2(),
    "log2(2)": lambda lib, x, v: lib.log2(2),
    "log2([1.0])": lambda lib, x, v: lib.log2([1.0]),
    "log2(x, x)": lambda lib, x, v: lib.log2(x, x),
    "x.log2(1)": lambda lib, x, v: x.log2(1),
    "x.log2(foo=1)": lambda lib, x, v: x.log2(foo=1),
    "unique(x, sorted=2)": lambda lib, x, v: lib.unique(x, sorted=2),
    "unique(x, 2)": lambda lib, x, v: lib.unique(x, 2),
    "unique(x, return_counts=1)": lambda lib, x, v: lib.unique(x, return_counts=1),
    "unique(x, return_inverse=None)": lambda lib, x, v: lib.unique(x, return_inverse=None),
    "x.unique(sorted=2)": lambda lib, x, v: x.unique(sorted=2),
    "unique(x, dim=0.5)": lambda lib, x, v: lib.unique(x, dim=0.5),
    "x.unique(dim='a')": lambda lib, x, v: x.unique(dim="a"),
    "unique(x, dim=0, sorted=2)": lambda lib, x, v: lib.unique(x, dim=0, sorted=2),
    "unique([1, 2])": lambda lib, x, v: lib.unique([1, 2]),
    "unique(x, True, True, True, 0)": lambda lib, x, v: lib.unique(x, True, True, True, 0),
    "relu(x, True)": lambda lib, x, v: lib.relu(x, True),
    "relu(x, inplace=True)": lambda lib, x, v: lib.relu(x, inplace=True),
    "x.relu(True)": lambda lib, x, v: x.relu(True),
    "x.relu_(True)": lambda lib, x, v: x.relu_(True),
    "F.relu(x, True), and x after": lambda lib, x, v: (lib.nn.functional.relu(x - 2, True), x),
    "ger()": lambda lib, x, v: lib.ger(),
    "ger(v)": lambda lib, x, v: lib.ger(v),
    "ger(v, 2)": lambda lib, x, v: lib.ger(v, 2),
    "v.ger(2)": lambda lib, x, v: v.ger(2),
    "ger(v, v, v)": lambda lib, x, v: lib.ger(v, v, v),
    "ger(v, vec3=v)": lambda lib, x, v: lib.ger(v, vec3=v),
}


@pytest.mark.parametrize("call", PARSER_CALLS)
def test_argument_refusals_are_worded_by_torchs_parser(call):
    """Python's own binding messages ("missing 1 required positional argument: 'shifts'") or NumPy's
    ("'float' object cannot be interpreted as an integer") where torch's parser has its words; a
    method torch binds without arguments (x.log2(1)) is refused in CPython's words for it. torch.relu
    takes no ``inplace`` (nn.functional's relu does): chainrule's wrote x in place."""
    assert_as_torch(lambda lib: PARSER_CALLS[call](lib, lib.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]]),
                                                   lib.tensor([1.0, 2.0])))


# --- 4. a method's arity is counted after self, as torch's parser counts it ----------------------

METHOD_ARITY_CALLS = {
    "p.add(v, 0.5)": lambda p, v: p.add(v, 0.5),
    "p.sub(v, 0.5)": lambda p, v: p.sub(v, 0.5),
    "p.mul(v, 2)": lambda p, v: p.mul(v, 2),
    "p.add_(v, 0.5)": lambda p, v: p.add_(v, 0.5),
    "p.mul_(v, v)": lambda p, v: p.mul_(v, v),
    "p.maximum(v, v)": lambda p, v: p.maximum(v, v),
    "p.atan2(v, v)": lambda p, v: p.atan2(v, v),
    "p.hypot(v, v)": lambda p, v: p.hypot(v, v),
    "p.dot(v, v)": lambda p, v: p.dot(v, v),
    "p.mul()": lambda p, v: p.mul(),
    "p.add(v, foo=1)": lambda p, v: p.add(v, foo=1),
    "p.clone(1)": lambda p, v: p.clone(1),
    "p.numpy(1)": lambda p, v: p.numpy(1),
    "p.size(0, 1)": lambda p, v: p.size(0, 1),
    "p.exp(1)": lambda p, v: p.exp(1),
    "p.abs(1)": lambda p, v: p.abs(1),
    "p.neg(1)": lambda p, v: p.neg(1),
    "p.sqrt(1)": lambda p, v: p.sqrt(1),
    "p.floor(1)": lambda p, v: p.floor(1),
    "p.exp_(1)": lambda p, v: p.exp_(1),
    "p.t(1)": lambda p, v: p.t(1),
    "p.exp(foo=1)": lambda p, v: p.exp(foo=1),
    "p.neg(foo=1)": lambda p, v: p.neg(foo=1),
    "p.detach(1)": lambda p, v: p.detach(1),
    "p.item(1)": lambda p, v: p.item(1),
    "p.tolist(1)": lambda p, v: p.tolist(1),
    "p.dim(1)": lambda p, v: p.dim(1),
    "p.numel(1)": lambda p, v: p.numel(1),
    "p.split(1, 0, 5)": lambda p, v: p.split(1, 0, 5),
}


@pytest.mark.parametrize("call", METHOD_ARITY_CALLS)
def test_a_methods_arity_refusal_counts_the_arguments_after_self(call):
    """Python counts self ("add() takes 2 positional arguments but 3 were given"); torch's parser
    does not, and a method of no arguments is refused in CPython's METH_NOARGS words. torch's
    methods written in Python (split) keep Python's words."""
    assert_as_torch(lambda lib: METHOD_ARITY_CALLS[call](lib.ones(3), lib.arange(3.0)))


# --- 5. GroupNorm's own check is torch's, bare ---------------------------------------------------

GROUP_NORM_ARGUMENTS = {
    "3 groups of 4 channels": (3, 4),
    "4 groups of 2 channels": (4, 2),
    "2.5 groups": (2.5, 4),
    "0 groups": (0, 4),
    "a str of groups": ("a", 4),
    "None groups": (None, 4),
    "2 groups of 4 channels": (2, 4),
}


@pytest.mark.parametrize("arguments", GROUP_NORM_ARGUMENTS.values(), ids=GROUP_NORM_ARGUMENTS.keys())
def test_group_norms_divisibility_check_is_torchs_bare_message(arguments):
    """torch raises its ValueError (or what ``%`` raises) with no call in front: the constructor's
    prefix naming the class and its arguments is for errors from deep inside, not for torch's own."""
    assert_as_torch(lambda lib: lib.nn.GroupNorm(*arguments).weight)
