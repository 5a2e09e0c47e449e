"""Session 30, lane jit2: small differences from torch 2.13 the first wave noticed, each checked
against torch on the same calls."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- torch.linalg's argument parser
def _linalg_names() -> list:
    return sorted(name for name in dir(torch.linalg)
                  if not name.startswith("_") and name[0].islower() and callable(getattr(torch.linalg, name)))


# calls torch's parser refuses: nothing, a string for the matrix, an unknown keyword, a second
# positional a keyword-only function does not take, too many positionals, a keyword of the wrong name
_BAD_CALLS = {
    "nothing": lambda lib, A, B: ((), {}),
    "string": lambda lib, A, B: (("s",), {}),
    "unknown_keyword": lambda lib, A, B: ((A,), {"bogus": 1}),
    "two_and_unknown_keyword": lambda lib, A, B: ((A, B), {"bogus": 1}),
    "string_second": lambda lib, A, B: ((A, "s"), {}),
    "nine_positionals": lambda lib, A, B: ((A, B, 1, 2, 3, 4, 5, 6, 7), {}),
    "keyword_A": lambda lib, A, B: ((A,), {"A": A}),
}


def _outcome(lib, name: str, call: str) -> str:
    A = lib.eye(3) + 0.1
    B = lib.ones(3, 2)
    args, kwargs = _BAD_CALLS[call](lib, A, B)
    try:
        getattr(lib.linalg, name)(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the class and words are what is compared
        return f"{type(error).__name__}: {error}"
    return "ran"


@pytest.mark.parametrize("call", sorted(_BAD_CALLS))
@pytest.mark.parametrize("name", _linalg_names())
def test_linalg_refuses_arguments_as_torch_does(name, call):
    assert _outcome(chainrule, name, call) == _outcome(torch, name, call)


@pytest.mark.parametrize("kwargs", [{}, {"left": True}, {"upper": 1}])
def test_solve_triangular_needs_upper_as_torch_says(kwargs):
    def outcome(lib):
        A = lib.eye(3)
        try:
            lib.linalg.solve_triangular(A, lib.ones(3, 2), **kwargs)
        except TypeError as error:
            return str(error)
        return "ran"

    assert outcome(chainrule) == outcome(torch)
    assert outcome(torch) != "ran"


@pytest.mark.parametrize("p", ["s", "NUC", 3, 2.5, 0, "fro", "nuc", 1, -2, float("inf")])
def test_linalg_cond_names_an_invalid_order_as_torch_does(p):
    def outcome(lib):
        A = lib.tensor([[2.0, 1.0], [0.5, 3.0]])
        try:
            return lib.linalg.cond(A, p).item()
        except RuntimeError as error:
            return str(error)

    ours, theirs = outcome(chainrule), outcome(torch)
    assert ours == pytest.approx(theirs, rel=1e-5) if isinstance(theirs, float) else ours == theirs
