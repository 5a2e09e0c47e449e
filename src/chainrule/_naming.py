"""Errors of chainrule's constructors that name the class and the arguments the user gave.

``naming_the_class(init)`` wraps a class's ``__init__`` (nn.Module and Distribution subclasses
install it from ``__init_subclass__``): a TypeError/ValueError/RuntimeError/IndexError raised
while building, often deep inside (a parameter's ``empty()``, a broadcast), gets the prefix
``Linear(in_features=2.5, out_features=2): ``, so the user sees which call and which value to fix.
The exception keeps its class, so code that catches torch's exception types still does.
"""

from __future__ import annotations

import functools
import inspect
import threading

__all__ = ["naming_the_class"]


# how many chainrule constructors are running on this thread: only the outermost one (the class
# the user typed) names itself in an error, not the Linear a Transformer builds inside
_constructing = threading.local()


def naming_the_class(init):
    """``init`` whose TypeError/ValueError/RuntimeError/IndexError/AssertionError/ArithmeticError names the class and the arguments
    it was given, so ``nn.Linear(2.5, 2)`` says ``Linear(in_features=2.5, out_features=2): ...``
    rather than a bare complaint about a size deep inside; the exception's class is unchanged."""
    @functools.wraps(init)
    def constructor(self, *args, **kwargs):
        depth = getattr(_constructing, "depth", 0)
        _constructing.depth = depth + 1
        try:
            init(self, *args, **kwargs)
        except (TypeError, ValueError, RuntimeError, IndexError, AssertionError, ArithmeticError) as error:
            # torch's own words already say which class (theirs, or one it built inside: InverseGamma's
            # Gamma): left as they are
            if type(self).__name__ in str(error):
                error._names_its_class = True
            named = getattr(error, "_names_its_class", False)
            # an arithmetic error may carry an errno and its text (math's OverflowError): its text is the message
            plain = len(error.args) == 1 and isinstance(error.args[0], str)
            if depth == 0 and not named and (plain or isinstance(error, ArithmeticError)):
                message = error.args[0] if plain else str(error)
                error.args = (f"{type(self).__name__}({_arguments(init, self, args, kwargs)}): {message}",)
            raise
        finally:
            _constructing.depth = depth
    return constructor


def _arguments(init, self, args, kwargs) -> str:
    try:
        given = inspect.signature(init).bind_partial(self, *args, **kwargs).arguments
    except TypeError:  # arguments that do not fit the signature: the error says so already
        return ""
    return ", ".join(f"{name}={_short_repr(value)}" for name, value in list(given.items())[1:])


def _short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
