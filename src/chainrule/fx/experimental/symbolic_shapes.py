"""torch.fx.experimental.symbolic_shapes: the size tests code imports from it.

chainrule traces with real sizes only (``make_fx(tracing_mode="real")``), so every size is a plain
int and every size test is an ordinary bool: each helper answers what torch's answers for sizes
that are not symbolic."""

from __future__ import annotations

__all__ = ["expect_true", "free_symbols", "guard_or_false", "guard_or_true", "guard_size_oblivious",
           "has_free_symbols", "is_concrete_bool", "is_concrete_int", "statically_known_true", "sym_eq"]


def guard_or_false(a) -> bool:
    """``a`` as a bool (False where torch could not decide a symbolic one)."""
    return bool(a)


def guard_or_true(a) -> bool:
    """``a`` as a bool (True where torch could not decide a symbolic one)."""
    return bool(a)


def statically_known_true(x) -> bool:
    """Whether ``x`` is known to hold: every concrete bool is known."""
    return bool(x)


def guard_size_oblivious(expr) -> bool:
    return bool(expr)


def expect_true(a, skip: int = 0) -> bool:
    return bool(a)


def is_concrete_int(a) -> bool:
    """Whether ``a`` is an int rather than a symbol: sizes here always are."""
    if not isinstance(a, int):
        raise AssertionError(f"Expected SymInt or int, got {type(a)}")
    return True


def is_concrete_bool(a) -> bool:
    if not isinstance(a, bool):
        raise AssertionError(f"Expected SymBool or bool, got {type(a)}")
    return True


def has_free_symbols(val) -> bool:
    """No size here holds a symbol."""
    return False


def free_symbols(val) -> set:
    return set()


def sym_eq(x, y):
    """``x == y``, element by element for tuples and lists of the same length."""
    if isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)):
        return len(x) == len(y) and all(sym_eq(a, b) for a, b in zip(x, y))
    return x == y
