"""Lane mendT (session 38): differences from torch left noted by earlier sessions — bad arguments
refused in torch's words — each proven against torch on the same call."""

import warnings

import pytest

import chainrule
import chainrule.nn.functional as chainrule_functional

torch = pytest.importorskip("torch")
torch_functional = pytest.importorskip("torch.nn.functional")


def _outcome(call):
    """("ok", "") where ``call()`` returned, else its exception's class name and message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except Exception as exc:  # the subject: whatever each library raises
            return type(exc).__name__, str(exc)
    return "ok", ""


def _assert_same_refusal(call):
    """``call(library, functional)`` raises on chainrule what it raises on torch, class and words."""
    expected = _outcome(lambda: call(torch, torch_functional))
    assert expected[0] != "ok"
    assert _outcome(lambda: call(chainrule, chainrule_functional)) == expected


# ---------------------------------------------------------------- boolean_dispatch's refusals
# torch builds unique, unique_consecutive, lu and the max pools' return_indices choice with
# boolean_dispatch: a flag picks one of two Python functions, and Python's refusal names the one picked
_DISPATCHED = [(False, "unique"), (False, "unique_consecutive"), (False, "lu"),
               *((True, f"{pool}{d}d") for pool in ("max_pool", "adaptive_max_pool") for d in (1, 2, 3)),
               (True, "fractional_max_pool2d"), (True, "fractional_max_pool3d")]


def _operand(lib, name):
    shape = {"1": (1, 2, 6), "2": (1, 2, 6, 6), "3": (1, 1, 4, 4, 4)}.get(name[-2], (3, 3))
    return lib.ones(shape)


def _dispatched(lib, functional, pooled, name):
    return getattr(functional if pooled else lib, name)


_BAD_DISPATCHED_CALLS = {
    "unknown_keyword": lambda f, x, lib: f(x, no_such_keyword=1),
    "unknown_keyword_flag_set": lambda f, x, lib: f(x, True, True, True, no_such_keyword=1),
    "foreign_keyword_flag_by_keyword": lambda f, x, lib: f(x, return_inverse=True, get_infos=True,
                                                          return_indices=True, return_counts=True, stray=1),
    "tensors_as_flags": lambda f, x, lib: f(*(x,) * 10),
    "true_tensor_flags": lambda f, x, lib: f(x, 2, *(lib.tensor([1.0]),) * 8),
    "false_tensor_flags": lambda f, x, lib: f(x, 2, *(lib.tensor([0.0]),) * 8),
    "too_many_true": lambda f, x, lib: f(x, 2, True, True, True, True, True, True, True, True),
    "too_many_false": lambda f, x, lib: f(x, 2, 0, 0, 1, False, False, 1, 1, 1, 1),
    "nothing": lambda f, x, lib: f(),
}


@pytest.mark.parametrize("pooled, name", _DISPATCHED)
@pytest.mark.parametrize("pattern", sorted(_BAD_DISPATCHED_CALLS))
def test_boolean_dispatch_refusals_name_the_branch_torch_picks(pooled, name, pattern):
    """"_return_output() got an unexpected keyword argument", "max_pool2d_with_indices() takes from 2
    to 7 positional arguments", and the RuntimeError of a several-element tensor read as the flag."""
    bad_call = _BAD_DISPATCHED_CALLS[pattern]
    _assert_same_refusal(lambda lib, functional: bad_call(_dispatched(lib, functional, pooled, name),
                                                          _operand(lib, name), lib))


def test_boolean_dispatch_functions_still_compute_what_torch_does():
    """The renaming is only of refusals: the flags still pick torch's results."""
    values = [3.0, 1.0, 3.0, 2.0, 2.0, 2.0]
    ours, theirs = chainrule.tensor(values), torch.tensor(values)
    for args, kwargs in [((), {}), ((True, True, True), {}), ((), {"return_counts": True})]:
        got = chainrule.unique(ours, *args, **kwargs)
        expected = torch.unique(theirs, *args, **kwargs)
        got, expected = (got, expected) if isinstance(expected, tuple) else ((got,), (expected,))
        assert [g.tolist() for g in got] == [e.tolist() for e in expected]
    got = chainrule_functional.max_pool1d(chainrule.tensor([[[1.0, 5.0, 2.0, 4.0]]]), 2, return_indices=True)
    expected = torch_functional.max_pool1d(torch.tensor([[[1.0, 5.0, 2.0, 4.0]]]), 2, return_indices=True)
    assert [g.tolist() for g in got] == [e.tolist() for e in expected]
    assert str(got[1].dtype).split(".")[-1] == str(expected[1].dtype).split(".")[-1]
