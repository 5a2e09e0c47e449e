"""The compiled ``out=`` front (tensor.out_keyword_front): it takes exactly the parameters of the
function it fronts plus ``out``, passes every argument through unchanged, sends only calls given
an ``out`` to the writing path, and keeps the name, docstring and signature users see."""

import inspect

import pytest

import chainrule
from chainrule.ops import reduce
from chainrule.tensor import out_keyword_front

_SENTINEL = object()


def _record(*args, out, **kwargs):
    return ("with_out", args, kwargs, out)


def positional_only(a, b=2, /, c=_SENTINEL, *, d=4):
    return (a, b, c, d)


def variadic(a, *rest, flag=False, **options):
    return (a, rest, flag, options)


def declares_out(input, *, scale=1, out=None):
    return (input, scale, out)


def no_parameters():
    return "nothing"


# function, call arguments, keyword arguments, what the plain function returns for them
CASES = [
    (positional_only, (1,), {}, (1, 2, _SENTINEL, 4)),
    (positional_only, (1, 5, 6), {"d": 7}, (1, 5, 6, 7)),
    (positional_only, (1,), {"c": 3}, (1, 2, 3, 4)),
    (variadic, (1, 2, 3), {"flag": True, "k": "v"}, (1, (2, 3), True, {"k": "v"})),
    (variadic, (1,), {}, (1, (), False, {})),
    (declares_out, (9,), {"scale": 3}, (9, 3, None)),
    (no_parameters, (), {}, "nothing"),
]


@pytest.mark.parametrize("fn,args,kwargs,expected", CASES)
def test_without_out_is_the_plain_call(fn, args, kwargs, expected):
    front = out_keyword_front(fn, _record)
    result = front(*args, **kwargs)
    assert result == expected
    assert front.__name__ == fn.__name__ and front.__wrapped__ is fn and front.honours_out


def test_the_plain_call_keeps_default_objects():
    assert out_keyword_front(positional_only, _record)(1)[2] is _SENTINEL


@pytest.mark.parametrize("fn,args,kwargs,_", CASES)
def test_with_out_goes_to_the_writing_path(fn, args, kwargs, _):
    tag, passed_args, passed_kwargs, out = out_keyword_front(fn, _record)(*args, **kwargs, out="target")
    assert tag == "with_out" and out == "target"
    # the same call the plain function would have seen, defaults filled in
    signature = inspect.signature(fn)
    passed, asked = signature.bind(*passed_args, **passed_kwargs), signature.bind(*args, **kwargs)
    passed.apply_defaults()
    asked.apply_defaults()
    assert passed.arguments == asked.arguments


def test_wrong_calls_raise_as_the_plain_function_would():
    front = out_keyword_front(positional_only, _record)
    with pytest.raises(TypeError, match="positional_only"):
        front(a=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'e'"):
        front(1, e=2)
    with pytest.raises(TypeError, match="positional_only"):
        front()


def test_namespace_sum_matches_the_plain_op_and_still_writes_out():
    x = chainrule.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert chainrule.sum(x, 1).tolist() == reduce.sum(x, 1).tolist() == [3.0, 7.0]
    assert chainrule.sum(x, dim=0, keepdim=True).tolist() == [[4.0, 6.0]]
    out = chainrule.empty(2)
    assert chainrule.sum(x, 0, out=out) is out and out.tolist() == [4.0, 6.0]
    assert "out" in inspect.signature(chainrule.sum, follow_wrapped=False).parameters
