"""Errors of chainrule's constructors that name the class and the arguments the user gave.

``naming_the_class(init)`` wraps a class's ``__init__`` (nn.Module and Distribution subclasses
install it from ``__init_subclass__``): a TypeError/ValueError/RuntimeError/IndexError raised
while building, often deep inside (a parameter's ``empty()``, a broadcast), gets the prefix
``Linear(in_features=2.5, out_features=2): ``, so the user sees which call and which value to fix.
The exception keeps its class, so code that catches torch's exception types still does. Python's
own TypeError for arguments that do not fit (missing, extra, unknown keyword) names the class torch's
does ("Conv2d.__init__() missing 1 required positional argument"), not chainrule's base (_Conv).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading

__all__ = ["built_for_the_user", "in_torchs_words", "naming_the_class"]


# how many chainrule constructors are running on this thread: only the outermost one (the class
# the user typed) names itself in an error, not the Linear a Transformer builds inside
_constructing = threading.local()


def naming_the_class(init):
    """``init`` whose TypeError/ValueError/RuntimeError/IndexError/AssertionError/ArithmeticError names the class and the arguments
    it was given, so ``nn.Linear(2.5, 2)`` says ``Linear(in_features=2.5, out_features=2): ...``
    rather than a bare complaint about a size deep inside; the exception's class is unchanged."""
    @functools.wraps(init)
    def constructor(self, *args, **kwargs):
        # (what init builds inside is built for the user: those constructors do not name themselves)
        with built_for_the_user() as depth:
            try:
                init(self, *args, **kwargs)
            except (TypeError, ValueError, RuntimeError, IndexError, AssertionError, ArithmeticError) as error:
                if isinstance(error, TypeError) and error.__traceback__.tb_next is None:
                    _name_the_call(error, init, type(self))
                # torch's own words already say which class (theirs, or one it built inside: InverseGamma's
                # Gamma): left as they are
                if type(self).__name__ in str(error):
                    error._names_its_class = True
                named = getattr(error, "_names_its_class", False)
                # an arithmetic error may carry an errno and its text (math's OverflowError): its text is the message
                plain = len(error.args) == 1 and isinstance(error.args[0], str)
                # a private class (``_SpectralNorm``) is built by a function the user called, never by the
                # user: its arguments are not theirs to read, so torch's words stay as they are
                public = not type(self).__name__.startswith("_")
                if depth == 0 and public and not named and (plain or isinstance(error, ArithmeticError)):
                    message = error.args[0] if plain else str(error)
                    error.args = (f"{type(self).__name__}({_arguments(init, self, args, kwargs)}): {message}",)
                raise
    return constructor


@contextlib.contextmanager
def built_for_the_user():
    """Constructors run inside do not name themselves in errors: the user called a factory
    (``Embedding.from_pretrained``), not the class, and never typed the arguments it passes on
    (``_weight=`` the whole table, ``_freeze=``); torch's words reach them as torch raises them.
    Yields how many constructors deep it was entered (naming_the_class reads it)."""
    depth = getattr(_constructing, "depth", 0)
    _constructing.depth = depth + 1
    try:
        yield depth
    finally:
        _constructing.depth = depth


def in_torchs_words(error: BaseException) -> BaseException:
    """``error``, raised in a constructor in torch's own words (torch raises it there too, bare):
    left without the prefix naming the class and its arguments."""
    error._names_its_class = True
    return error


def _name_the_call(error: TypeError, init, cls: type) -> None:
    """Python's own TypeError for arguments that do not fit ``init`` (missing, extra, unknown
    keyword) names the function's qualname ("_Conv.__init__() missing 1 required positional
    argument"), one of chainrule's classes; torch's names the class of its own that defines the
    __init__, most often the class itself (Conv2d, where chainrule's _Conv defines it). A class
    whose torch counterpart inherits its __init__ says where from in ``_torch_init_owner``
    ("_BatchNorm"), found up the MRO as far as the first class that defines an __init__ of its own."""
    code = getattr(init, "__code__", None)  # (a callable object as __init__ has none: left as it is)
    if code is None:
        return
    called = f"{code.co_qualname}()"
    message = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else ""
    if not message.startswith(called):
        return
    ours = [c for c in cls.__mro__ if c.__module__.startswith("chainrule.")]  # not a user's subclass
    owner = ours[0].__name__
    for c in ours:
        if "_torch_init_owner" in c.__dict__:
            owner = c._torch_init_owner
            break
        if "__init__" in c.__dict__:
            break
    error.args = (f"{owner}.__init__(){message[len(called):]}",)


def _arguments(init, self, args, kwargs) -> str:
    try:
        given = inspect.signature(init).bind_partial(self, *args, **kwargs).arguments
    except TypeError:  # arguments that do not fit the signature: the error says so already
        return ""
    return ", ".join(f"{name}={_short_repr(value)}" for name, value in list(given.items())[1:])


def _short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
