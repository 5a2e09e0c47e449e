"""torch's ``__torch_function__`` protocol: the mode stack, the argument check, and the dispatch.

Every public op (``chainrule.add``, ``Tensor.add``, ``x + y``, ``F.relu``, ...) is a thin wrapper
made by ``dispatching``: with no ``TorchFunctionMode`` active and only plain arguments (Tensors,
Parameters, numbers, dtypes, ...) it calls the op at once; otherwise it hands the call to the
innermost mode, then to the arguments' ``__torch_function__`` (subclasses before their
superclasses, else left to right), as torch does. The ops call each other through their modules'
functions, not the wrappers, and a mode is off while its own handler runs, so what a mode sees is
the calls the user's code made, not chainrule's internals (torch's C++ internals are invisible
too).

Kept below every other layer: tensor.py registers Tensor as a plain type, and the wiring package
wraps the public names once every op is bound.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import types

from ._dtype import c_type_name

__all__ = [
    "DisableTorchFunction", "DisableTorchFunctionSubclass", "disabled_torch_function_impl", "dispatching",
    "handle_torch_function", "has_torch_function", "has_torch_function_unary", "has_torch_function_variadic",
    "redispatch_function",
]


class _Flags:
    """The dispatch state the wrappers read on every call (one flag, modes_live, on the fast path)."""

    __slots__ = ("modes_live", "arguments_off", "mode_dispatch_off")

    def __init__(self) -> None:
        self.modes_live = False  # a mode is on the stack and mode dispatch is not disabled
        self.arguments_off = False  # under DisableTorchFunction(Subclass): arguments' handlers skipped
        self.mode_dispatch_off = False  # under DisableTorchFunction: modes skipped too


flags = _Flags()
wired = False  # set by the package once every public name is wrapped (linalg's lazy names wrap after that)
mode_stack: list = []  # innermost last
# watchers called with True when a mode or an overriding Tensor subclass first appears (tensor.py's
# dispatching properties), with False when the last mode leaves and no such subclass exists
arming_watchers: list = []
_overriding_subclass_seen = False


class _DisabledTorchFunctionImpl:
    """torch._C._disabled_torch_function_impl: as a class's ``__torch_function__`` it opts that class
    out of the protocol (nn.Parameter's, so ops on parameters return plain Tensors). An instance, not
    a function, so that reading it through an instance does not bind it (torch's is a builtin)."""

    __name__ = __qualname__ = "_disabled_torch_function_impl"

    def __call__(self, func, types, args=(), kwargs=None):
        with DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))

    def __repr__(self) -> str:
        return "<built-in function _disabled_torch_function_impl>"


disabled_torch_function_impl = _DisabledTorchFunctionImpl()


# types whose instances never override: looked up in this set before anything else. Tensor, Parameter
# and any class seen to lack (or disable) __torch_function__ are added as they are met
PLAIN: set = {int, float, bool, complex, str, bytes, type(None), type(Ellipsis), slice, range, type}
_SEQUENCES = (list, tuple)
# chainrule's own classes whose handler routes calls internally (a sparse COO tensor's function forms to
# its methods): torch's tensors of them are plain, so neither has_torch_function nor a mode's ``types`` sees them
INTERNAL: set = set()


def _overrides(value) -> bool:
    """Whether ``value`` (not of a PLAIN type) or, for a list/tuple, one of its items overrides."""
    kind = type(value)
    if kind in _SEQUENCES or (issubclass(kind, tuple) and kind not in PLAIN and not hasattr(kind, "__torch_function__")):
        return any(type(item) not in PLAIN and _type_overrides(type(item)) for item in value)
    return _type_overrides(kind)


def _type_overrides(kind: type) -> bool:
    handler = getattr(kind, "__torch_function__", None)
    if handler is None or handler is disabled_torch_function_impl:
        if not issubclass(kind, _SEQUENCES):
            PLAIN.add(kind)
        return False
    return True


def note_tensor_subclass(cls: type) -> None:
    """Called by Tensor.__init_subclass__: a subclass that keeps a working ``__torch_function__``
    (the inherited default included) makes ops on its instances dispatch."""
    global _overriding_subclass_seen
    if "__torch_dispatch__" in cls.__dict__ and "__torch_function__" not in cls.__dict__:
        # as torch: a class answering ops below autograd (a wrapper subclass) does not also take them above it
        cls.__torch_function__ = disabled_torch_function_impl
    if getattr(cls, "__torch_function__", None) is disabled_torch_function_impl:
        PLAIN.add(cls)
        return
    if "__torch_function__" not in cls.__dict__ and any(base in INTERNAL for base in cls.__mro__[1:]):
        # a subclass of one of chainrule's internally routed classes (nn.Parameter of a sparse tensor)
        # routes as its base does: it arms no dispatch for dense ops
        INTERNAL.add(cls)
        return
    if not _overriding_subclass_seen:
        _overriding_subclass_seen = True
        _notify(True)


def add_arming_watcher(watcher) -> None:
    """Register ``watcher`` and tell it the current state at once: an overriding subclass defined
    before the watcher exists (one defined while the package imports) must still arm it."""
    arming_watchers.append(watcher)
    if _overriding_subclass_seen or flags.modes_live:
        watcher(True)


def _notify(armed: bool) -> None:
    for watcher in arming_watchers:
        watcher(armed)


def _refresh() -> None:
    live = bool(mode_stack) and not flags.mode_dispatch_off
    if live != flags.modes_live:
        flags.modes_live = live
        if not _overriding_subclass_seen:
            _notify(live)


def push_mode(mode) -> None:
    mode_stack.append(mode)
    _refresh()


def pop_mode():
    if not mode_stack:
        raise RuntimeError("Trying to pop from an empty mode stack")
    mode = mode_stack.pop()
    _refresh()
    return mode


class _Disabled:
    """Shared by the two context managers: set the flags on entry, restore the previous ones on exit."""

    _modes_too = False

    def __enter__(self):
        self._saved = (flags.arguments_off, flags.mode_dispatch_off)
        flags.arguments_off = True
        if self._modes_too:
            flags.mode_dispatch_off = True
            _refresh()
        return self

    def __exit__(self, *exc) -> None:
        flags.arguments_off, flags.mode_dispatch_off = self._saved
        _refresh()


class DisableTorchFunctionSubclass(_Disabled):
    """torch._C.DisableTorchFunctionSubclass: inside it, arguments' ``__torch_function__`` are not
    consulted (modes still are); Tensor's default handler runs the op this way."""


class DisableTorchFunction(_Disabled):
    """torch._C.DisableTorchFunction: inside it, neither modes nor arguments' handlers are consulted."""

    _modes_too = True


def is_torch_function_enabled() -> bool:
    return not flags.arguments_off


def is_torch_function_mode_enabled() -> bool:
    return flags.modes_live


# ---------------------------------------------------------------------------- the checks and dispatch
def _overloaded(values) -> list:
    """The arguments whose types override, one per type, subclasses before their superclasses,
    otherwise in the order met (torch's _get_overloaded_args); list/tuple arguments are looked in."""
    found: list = []
    for value in values:
        kind = type(value)
        if kind in PLAIN:
            continue
        if kind in _SEQUENCES or (issubclass(kind, tuple) and not hasattr(kind, "__torch_function__")):
            _add_overloaded(found, (item for item in value if type(item) not in PLAIN))
        else:
            _add_overloaded(found, (value,))
    return found


def _add_overloaded(found: list, candidates) -> None:
    for value in candidates:
        kind = type(value)
        if not _has_handler(kind) or any(type(old) is kind for old in found):
            continue
        position = next((i for i, old in enumerate(found) if issubclass(kind, type(old))), len(found))
        found.insert(position, value)


def _relevant(args: tuple, kwargs: dict | None):
    return args if not kwargs else (*args, *kwargs.values())


# set by redispatch_function: the next has_torch_function check answers False, once
_skip_one_hop = False


def has_torch_function(relevant_args) -> bool:
    """torch.overrides.has_torch_function: a mode is active or one of ``relevant_args`` (or an item of a
    list/tuple among them) overrides ``__torch_function__`` (plain Tensors and Parameters do not)."""
    global _skip_one_hop
    if _skip_one_hop:
        _skip_one_hop = False
        return False
    if flags.modes_live:
        return True
    if flags.arguments_off:
        return False
    return (any(type(value) not in PLAIN and _overrides(value) for value in relevant_args)
            and any(type(value) not in INTERNAL for value in _overloaded(relevant_args)))


def has_torch_function_unary(value) -> bool:
    return has_torch_function((value,))


def has_torch_function_variadic(*values) -> bool:
    return has_torch_function(values)


def _qualified_name(func) -> str:
    owner = getattr(func, "__torch_owner__", None) or getattr(func, "__module__", None) or ""
    return f"{owner}.{getattr(func, '__name__', func)}" if owner else str(getattr(func, "__name__", func))


def dispatch(public, args: tuple, kwargs: dict | None, overloaded: list | None = None):
    """Hand ``public(*args, **kwargs)`` to the innermost mode (off while its handler runs), then to
    each overloaded argument's ``__torch_function__`` until one returns something other than
    NotImplemented; torch's TypeError if none does."""
    kwargs = {} if kwargs is None else kwargs
    if overloaded is None:
        overloaded = [] if flags.arguments_off else _overloaded(_relevant(args, kwargs))
    kinds = tuple(type(value) for value in overloaded if type(value) not in INTERNAL)
    tried = []
    if flags.modes_live:
        mode = pop_mode()
        try:
            result = mode.__torch_function__(public, kinds, args, kwargs)
        finally:
            push_mode(mode)
        if result is not NotImplemented:
            return result
        tried.append(f"  - mode object {mode!r}")
    for value in overloaded:
        result = value.__torch_function__(public, kinds, args, kwargs)
        if result is not NotImplemented:
            return result
        tried.append(f"  - tensor subclass {type(value)}")
    if not tried:  # nothing to dispatch to after all (an argument's handler was disabled): run the op
        with DisableTorchFunctionSubclass():
            return public(*args, **kwargs)
    raise TypeError(f"Multiple dispatch failed for '{_qualified_name(public)}'; all __torch_function__ handlers "
                    "returned NotImplemented:\n\n" + "\n".join(tried)
                    + "\n\nFor more information, try re-running with TORCH_LOGS=not_implemented")


def handle_torch_function(public_api, relevant_args, *args, **kwargs):
    """torch.overrides.handle_torch_function: dispatch ``public_api(*args, **kwargs)`` to the active mode,
    then to every type among ``relevant_args`` with a ``__torch_function__`` (plain Tensors' default
    handler included, as torch's Python implementation does)."""
    overloaded: list = []
    _add_overloaded(overloaded, (value for value in relevant_args if _has_handler(type(value))))
    if not flags.modes_live and not overloaded:
        raise TypeError(f"no implementation found for '{_qualified_name(public_api)}' on types that implement "
                        f"__torch_function__: {[type(value) for value in overloaded]}")
    return dispatch(public_api, args, kwargs, overloaded)


def redispatch_function(func, types, args, kwargs):
    """torch.overrides.redispatch_function: call ``func`` skipping one level of ``__torch_function__``
    dispatch (its own), while the calls inside it dispatch as usual. A built-in function runs its
    implementation; a Python function that checks ``has_torch_function`` finds that check False once."""
    global _skip_one_hop
    kwargs = {} if kwargs is None else kwargs
    implementation = None
    if getattr(func, "__torch_dispatching__", False):
        implementation = func.__wrapped__
    elif isinstance(getattr(func, "__self__", None), property):  # a dispatched property's __get__
        getter = func.__self__.fget
        implementation = getattr(getter, "__wrapped__", getter)
    if implementation is not None:
        # torch's built-ins run in C++, where nothing dispatches again: neither must chainrule's
        # Python internals (the modes and subclasses see the calls the user's code makes)
        with DisableTorchFunction():
            return implementation(*args, **kwargs)
    saved, _skip_one_hop = _skip_one_hop, True
    try:
        return func(*args, **kwargs)
    finally:
        _skip_one_hop = saved


def _has_handler(kind: type) -> bool:
    handler = getattr(kind, "__torch_function__", None)
    return handler is not None and handler is not disabled_torch_function_impl


# ---------------------------------------------------------------------------- the public wrappers
def _arguments_override(values) -> bool:
    """Whether dispatch is due to an argument (argument handlers on, one of them overriding)."""
    return not flags.arguments_off and any(type(value) not in PLAIN and _overrides(value) for value in values)


# The wrappers' source, compiled under a file name that marks their frames as interpreter plumbing:
# CPython's warnings machinery skips frames of files named like importlib's bootstrap when it counts
# ``stacklevel`` (the only such hook before 3.12's skip_file_prefixes), so an op's warning still
# points at the user's line, as torch's (whose dispatch is C++ and has no Python frame) do.
#
# The fast path reads one flag and looks each argument's class up in a set; keywords (rarer in hot
# code) take a second function, so the common call passes no empty dict on; the operators name
# their two operands instead of packing them. The op's own call sits in a try (free until it
# raises): an AttributeError read off a non-tensor argument becomes torch's TypeError, Python's
# refusal to bind a method's arguments torch's words for it, NumPy's MemoryError torch's
# RuntimeError (argument_refusal, binding_refusal, out_of_memory); dispatched calls are the
# handlers' own business and are left as they raise.
_WRAPPER_SOURCE = """
def _binary_wrapper(impl, handed):
    def public(self=not_given, other=not_given):
        if state.modes_live or ((self.__class__ not in plain or other.__class__ not in plain)
                                and arguments_override((self, other))):
            return dispatch(handed or public, (self, other), None)
        return impl(self, other)
    return public


def _general_wrapper(impl, handed, face_type=None, numpy_names=False, spell=None):
    face = None
    hand_over = dispatch
    if spell is not None:  # torch's own spelling of the call, for the handlers (nn/_handler_arguments.py)
        def hand_over(public, args, kwargs):
            return dispatch(*spell(public, args, kwargs or {}))
    def public(*args, **kwargs):
        if kwargs:
            # (each side asked only when one of its classes is not plain, as the positional path
            # below: arguments_override answers False for plain classes alone)
            if state.modes_live or (not plain.issuperset(map(type, args)) and arguments_override(args)) or (
                    not plain.issuperset(map(type, kwargs.values())) and arguments_override(kwargs.values())):
                return hand_over(handed or face, args, kwargs)
            try:
                return impl(*args, **kwargs)
            except TypeError as error:
                renamed = numpy_input_names(impl, len(args), kwargs, error) if numpy_names else None
                if renamed is None:
                    refusal = binding_refusal(face, impl, args, kwargs, error)
                    if refusal is None:
                        raise
                    raise refusal from None
            except AttributeError as error:
                refusal = argument_refusal(face, impl, args, kwargs, error)
                if refusal is None:
                    raise
                raise refusal from None
            except MemoryError as error:
                raise out_of_memory(face, impl, error) from None
            return impl(*args, **renamed)
        if state.modes_live:
            return hand_over(handed or face, args, None)
        for value in args:
            if value.__class__ not in plain and arguments_override(args):
                return hand_over(handed or face, args, None)
        try:
            return impl(*args)
        except AttributeError as error:
            refusal = argument_refusal(face, impl, args, kwargs, error)
            if refusal is None:
                raise
            raise refusal from None
        except TypeError as error:
            refusal = binding_refusal(face, impl, args, None, error)
            if refusal is None:
                raise
            raise refusal from None
        except MemoryError as error:
            raise out_of_memory(face, impl, error) from None
    face = public if face_type is None else face_type(public)
    return face
"""

# torch's argument parser takes NumPy's names for a C function's input (x, a, x1) and other (x2)
NUMPY_INPUT_NAMES = {"x": "input", "a": "input", "x1": "input", "x2": "other"}


def _numpy_input_names(impl, given_positionally: int, kwargs: dict, error: TypeError):
    """``kwargs`` with NumPy's names for ``input``/``other`` renamed to impl's own, when ``error`` is
    Python's refusal of one of them (raised as the call bound its arguments, before any work); else
    None. Only a failed call of a built-in or a Tensor method comes here: the common call pays nothing.
    A name the first ``given_positionally`` arguments already fill is not renamed into (``x.abs(a=1)``:
    self is the input, and torch refuses the keyword)."""
    aliases = kwargs.keys() & NUMPY_INPUT_NAMES.keys()
    message = str(error)
    # Python's refusals while binding: the alias unknown, or (past a **kwargs front) its name missing
    if not aliases or not any(f"unexpected keyword argument '{alias}'" in message or (
            "required positional argument" in message and f"'{NUMPY_INPUT_NAMES[alias]}'" in message)
            for alias in aliases):
        return None
    try:
        parameters = inspect.signature(impl).parameters
    except (TypeError, ValueError):
        return None
    renamed = dict(kwargs)
    filled = list(parameters)[:given_positionally]
    for alias in sorted(aliases):
        name = NUMPY_INPUT_NAMES[alias]
        if alias in parameters or name not in parameters or name in renamed or name in filled:
            return None
        renamed[name] = renamed.pop(alias)
    return renamed


# (inside the package's directory, so that the profiler's with_stack leaves these frames out too)
WRAPPER_FILE = os.path.join(os.path.dirname(__file__), "<dispatch wrapper, hidden from warnings as importlib._bootstrap is>")


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller of this function name the first
    frame outside chainrule: the user's line, however deep inside chainrule the warning starts
    (decorators such as the autocast policy add frames that a counted stacklevel would miss)."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, stacklevel = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(package):
        # (the __torch_function__ wrappers' frames are skipped by warnings itself: not counted)
        stacklevel += frame.f_code.co_filename != WRAPPER_FILE
        frame = frame.f_back
    return stacklevel


# the Tensor class, set by tensor.py (this module sits below it)
TENSOR_TYPE: type = object


def _argument_names(impl) -> list:
    try:
        parameters = inspect.signature(impl).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def argument_refusal(public, impl, args: tuple, kwargs: dict, error: AttributeError, name: str | None = None):
    """torch's TypeError for an argument that is no tensor where the op reads one as a tensor, or None.

    An op given None, a str, a list... where it takes a Tensor fails reading a tensor's attribute
    (``x._data``) off it; torch's argument parser refuses such a call with a TypeError naming the
    argument. The AttributeError says which object it read (``error.obj``): when that is one of the
    call's arguments, or an item of a list or tuple argument, and no tensor, the user passed the wrong
    kind of value and gets torch's TypeError. Any other AttributeError is chainrule's own and
    propagates unchanged. Runs only when the op raised, so the call itself pays nothing.
    """
    if error.name is None:  # raised by hand, not by reading an attribute off an object
        return None
    culprit = error.obj
    if isinstance(culprit, TENSOR_TYPE):
        return None
    name = name or getattr(public, "__name__", None) or getattr(impl, "__name__", "op")
    if getattr(public, "__module__", None) == "chainrule.special" and not name.startswith("special_"):
        name = f"special_{name}"  # torch.special's functions are aten's special_* ops, named so
    is_method = getattr(public, "__torch_owner__", None) == "torch.Tensor"
    kind = c_type_name(culprit)  # (as torch's parser prints it: numpy.ndarray, torch.dtype)
    if is_method and args and args[0] is culprit:
        return descriptor_refusal(name, culprit)
    if "generator" in kwargs and kwargs["generator"] is culprit:  # (get() would name it for any None)
        # before the positional search: a small int given as generator is the same object as an
        # equal int argument (CPython caches them), which would be named in its place
        return TypeError(f"{name}(): argument 'generator' must be torch.Generator, not {kind}")
    names = _argument_names(impl)
    for index, value in enumerate(args):
        shown = index if is_method else index + 1  # torch counts a method's arguments after self
        label = f"'{names[index]}' (position {shown})" if index < len(names) else f"(position {shown})"
        if value is culprit:
            return TypeError(f"{name}(): argument {label} must be Tensor, not {kind}")
        item = _item_index(value, culprit)
        if item is not None:
            return TypeError(f"{name}(): expected Tensor as element {item} in argument {index}, but got {kind}")
    for key, value in kwargs.items():
        if value is culprit:
            return TypeError(f"{name}(): argument '{key}' must be Tensor, not {kind}")
        item = _item_index(value, culprit)
        if item is not None:
            return TypeError(f"{name}(): expected Tensor as element {item} in argument '{key}', but got {kind}")
    return None


def out_of_memory(public, impl, error: MemoryError) -> RuntimeError:
    """torch's RuntimeError for an allocation the machine cannot make (a hostile size such as 2**31
    rows): NumPy raises MemoryError, which torch code does not expect from an op."""
    name = getattr(public, "__name__", None) or getattr(impl, "__name__", "op")
    return RuntimeError(f"{name}(): not enough memory: {error or 'the allocation failed'}")


def _item_index(value, culprit):
    """Where ``culprit`` is in a list or tuple argument, or None."""
    if type(value) in _SEQUENCES:
        for index, item in enumerate(value):
            if item is culprit:
                return index
    return None


# Python's own refusals to bind a call's arguments (the impl's frame never started)
_BINDING_REFUSAL = re.compile(r"\(\) (takes |missing \d+ required |got an unexpected keyword argument |"
                              r"got multiple values for argument )")

# an op's own check of a typed argument, worded as torch's parser words it but for where it was given
_UNPOSITIONED = re.compile(r"(\w+)\(\): argument '(\w+)' must be ")


def _positioned(method: bool, impl, args: tuple, error: TypeError):
    """``error``, an op's own refusal of an argument's type ("argument 'dim' must be int, not str"),
    with torch's "(position N)" where the call gave that argument positionally, or None. torch counts
    a method's arguments after self, a function's from 1."""
    match = _UNPOSITIONED.match(str(error))
    if match is None:
        return None
    names = _argument_names(impl)
    index = names.index(match[2]) if match[2] in names else len(args)
    if index >= len(args) or (method and index == 0):
        return None
    text = str(error)
    return TypeError(f"{text[:match.end(2) + 1]} (position {index if method else index + 1}){text[match.end(2) + 1:]}")


# ops._arg_parser.method_binding_refusal and function_binding_refusal, and the Tensor methods torch
# writes in Python (set there: this module sits below the ops)
method_binding_refusal = function_binding_refusal = dispatched_binding_refusal = None
python_methods: frozenset = frozenset()


def binding_refusal(public, impl, args: tuple, kwargs: dict | None, error: TypeError):
    """torch's TypeError where Python refused to bind a Tensor method's or a C function's arguments,
    or None. Python counts self and names the impl ("add() takes 2 positional arguments but 3 were
    given"); torch's parser counts the arguments after self and names the method ("add_() takes 1
    positional argument but 2 were given"), and checks the types of those given before it misses
    one. A Python function keeps Python's words, but for the name of the branch a boolean_dispatch
    picked (or that dispatch's RuntimeError). Runs only when the op raised, so the call itself pays
    nothing."""
    method = getattr(public, "__torch_owner__", None) == "torch.Tensor"
    if method and (not args or not isinstance(args[0], TENSOR_TYPE)) and public.__name__ not in python_methods:
        # torch's C methods are descriptors on TensorBase: called off the class, they want a tensor first
        if not args:
            return TypeError(f"unbound method TensorBase.{public.__name__}() needs an argument")
        return descriptor_refusal(public.__name__, args[0])
    if method_binding_refusal is None:
        return None
    # (a C function's call is parsed by torch as a method's is; a Python function's words are Python's,
    # naming the function torch's boolean_dispatch picked where it built one)
    if not (method or isinstance(public, BuiltinFunction)):
        return dispatched_binding_refusal(public, args, kwargs or {}, error) if _BINDING_REFUSAL.search(
            str(error)) else None
    if not _BINDING_REFUSAL.search(str(error)):
        # (a method torch writes in Python hands its arguments on by keyword: its refusals give no position)
        return None if method and public.__name__ in python_methods else _positioned(method, impl, args, error)
    # raised by the signature parser (ops/_arg_parser.py): torch's words already, not Python's
    last = error.__traceback__
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    if last is not None and last.tb_frame.f_globals.get("__name__") == "chainrule.ops._arg_parser":
        return None
    if not method:
        return function_binding_refusal(public, impl, args, kwargs or {})
    return method_binding_refusal(public.__name__, impl, args, kwargs or {}, error)


def descriptor_refusal(name: str, value) -> TypeError:
    """torch's words for a Tensor method or operator of its C TensorBase called off the class on
    what is not a tensor (``Tensor.add(2.5, t)``, ``Tensor.view([1])``): CPython's descriptor
    check, naming torch's class and the value's type as CPython prints it (numpy.ndarray,
    torch.dtype)."""
    return TypeError(f"descriptor '{name}' for 'torch._C.TensorBase' objects doesn't apply to a "
                     f"'{c_type_name(value)}' object")


# what a Python operator called off the class was not given (``Tensor.__add__()``): the operator
# answers in torch's words (see _methods._no_self), and NotImplemented for a missing other
NOT_GIVEN = object()

_wrapper_namespace = {"not_given": NOT_GIVEN, "state": flags, "plain": PLAIN, "dispatch": dispatch, "arguments_override": _arguments_override,
                      "numpy_input_names": _numpy_input_names, "argument_refusal": argument_refusal,
                      "binding_refusal": binding_refusal, "out_of_memory": out_of_memory}
exec(compile(_WRAPPER_SOURCE, WRAPPER_FILE, "exec"), _wrapper_namespace)
_binary_wrapper = _wrapper_namespace["_binary_wrapper"]
_general_wrapper = _wrapper_namespace["_general_wrapper"]

# ops._arg_parser.checked_signature (set there: this module sits below the ops): given an impl and
# where it is public, the impl checking its arguments against torch's signatures first, or the impl
signature_check = None

# impl -> its dispatching wrapper, so that a function public in two namespaces (torch.bilinear and
# F.bilinear) stays one object
_WRAPPED: dict = {}


class BuiltinFunction(functools.partial):
    """A public function that, like torch's C++ built-ins (``torch.tanh``, ``torch.linalg.inv``,
    ``F.conv2d``), does not bind as a method when a class body stores it (``act = torch.tanh``;
    ``self.act(x)`` calls ``tanh(x)``). A partial with nothing bound: called at a function's cost
    (vectorcall), signature and attributes those of the function, pickled by name as a function is."""

    __slots__ = ()

    def __reduce__(self):
        return self.__qualname__

    def __repr__(self) -> str:
        return f"<built-in function {self.__name__}>"

    def __get__(self, instance, owner=None):
        # never binds, as torch's C++ functions do not. Being a (non-binding) method descriptor also
        # makes inspect.isroutine true, as for torch's built-ins, so help(torch.ones) documents the
        # function (its signature and docstring) rather than this class; and it keeps Python
        # 3.14's partial, which binds like a function, from binding
        return self


def as_builtin(function, home: tuple[str, str]):
    """``function`` (one that does not dispatch) as a BuiltinFunction public at ``home``."""
    face = BuiltinFunction(function)
    functools.update_wrapper(face, function)
    face.__module__, face.__qualname__ = home
    return face


def dispatching(impl, owner: str | None = None, handed=None, binary: bool = False, name: str | None = None,
                home: tuple[str, str] | None = None, builtin: bool = False, spell=None):
    """The public face of ``impl``: dispatches when a mode is active or an argument overrides,
    else calls ``impl`` directly. ``handed`` is the function modes and handlers receive when it is not
    the wrapper itself (``x + y`` hands them ``Tensor.add``, as torch does); ``binary`` marks a Python
    operator, always called as ``(self, other)``; ``name`` the special method's name, where its
    function has another (``__getitem__`` is ``getitem``); ``home`` the module and qualified name
    where the wrapper is public, so that pickle finds it there; ``builtin`` makes it a
    BuiltinFunction, which does not bind in a class body, as torch's C++ functions do not; ``spell``
    re-spells a call, ``(public, args, kwargs) -> (public, args, kwargs)``, as torch hands it to the
    handlers (and names the function it hands them)."""
    if getattr(impl, "__torch_dispatching__", False):
        return impl
    # a method is its own object, as torch.Tensor.add is not torch.add
    # (a method and a function of one name and impl are two wrappers: Tensor.absolute is not torch.absolute)
    key = (impl, handed, owner == "torch.Tensor", builtin) if name is None else (impl, handed, name,
                                                                                 owner == "torch.Tensor")
    # (the wrapper calls the impl checking torch's signatures first, where there is one; it shows the
    # impl. Such a check names its function: clip and clamp, one impl, are two wrappers, as in torch)
    called = impl if home is None or signature_check is None else signature_check(impl, home)
    if called is not impl:
        key = (*key, home)
    if key in _WRAPPED:
        return _WRAPPED[key]
    if binary:
        public = _binary_wrapper(called, handed)
    else:
        # torch's parser takes NumPy's names on its C functions and Tensor methods
        public = _general_wrapper(called, handed, BuiltinFunction if builtin else None,
                                  numpy_names=builtin or owner == "torch.Tensor", spell=spell)
    try:
        functools.update_wrapper(public, impl)
    except AttributeError:  # a builtin or partial without some of the attributes
        pass
    if name is not None:
        public.__name__ = name
    if hasattr(impl, "__wrapped__") and owner != "torch.Tensor":
        # a namespace function that is itself a wrapper with a signature of its own (torch's out=
        # keyword): the outermost object shows it too, as inspect.signature(..., follow_wrapped=False)
        # reads it (a method's wrapped op, an in-place one's say, is followed instead); a wrapper that
        # passes every argument on (*args, **kwargs: legacy flags, an autocast policy) shows what it wraps
        signature = inspect.signature(impl, follow_wrapped=False)
        if all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()):
            signature = inspect.signature(impl)
        public.__signature__ = signature
    if home is not None:
        public.__module__, public.__qualname__ = home
    public.__torch_dispatching__ = True
    if owner is not None:
        public.__torch_owner__ = owner
    _WRAPPED[key] = public
    return public


def wrap_module(module, owner: str, skip=frozenset(), builtin=lambda name: False,
                spelling=lambda name, impl: None, aliases=frozenset()) -> None:
    """Replace ``module``'s public functions by their dispatching wrappers (those in ``skip`` and
    those torch does not dispatch stay as they are). ``builtin(name)``: whether torch's function of
    that name is a C++ built-in, which does not bind in a class body — so neither does ours;
    ``spelling(name, impl)``: how torch spells a call to the handlers (see ``dispatching``), or None;
    ``aliases``: the names that torch makes functions of their own, where ``module`` binds another's."""
    for name, value in list(vars(module).items()):
        if name.startswith("_") or not is_function(value) or isinstance(value, BuiltinFunction):
            continue
        home = (module.__name__, name)
        if name in skip or value.__module__ == __name__:
            # (this module's own checks, re-exported by nn.functional, never dispatch)
            if builtin(name) and isinstance(value, types.FunctionType):
                # (a C function torch does not dispatch still parses its arguments first: frombuffer)
                checked = value if signature_check is None else signature_check(value, home)
                setattr(module, name, as_builtin(checked, home))
            continue
        # an alias torch makes a function of its own (torch.arccos is not torch.acos) gets its own
        # wrapper, named as it is called, so that its refusals name it
        alias = name if name in aliases and getattr(value, "__name__", name) != name else None
        setattr(module, name, dispatching(value, owner, home=home, builtin=builtin(name), spell=spelling(name, value),
                                          name=alias))


# torch's public functions written in Python (they bind as methods in a class body); the rest of the
# top level, and all of torch.linalg/fft/special, are C++ built-ins. nn.functional is the other way
# round: Python functions but for the built-ins below. Checked against torch in
# tests/compat/test_builtin_functions.py.
PYTHON_FUNCTIONS_AT_TOP_LEVEL = frozenset({
    "are_deterministic_algorithms_enabled", "atleast_1d", "atleast_2d", "atleast_3d", "block_diag",
    "broadcast_shapes", "broadcast_tensors", "cartesian_prod", "cdist", "chain_matmul", "compile", "cond", "eig",
    "einsum", "from_dlpack", "get_default_device", "get_deterministic_debug_mode", "get_device_module",
    "get_float32_matmul_precision", "get_rng_state", "initial_seed", "is_deterministic_algorithms_warn_only_enabled",
    "is_storage", "is_tensor", "is_warn_always_enabled", "load", "lstsq", "lu", "manual_seed", "matrix_rank",
    "meshgrid", "norm", "pca_lowrank", "save", "seed", "set_default_device", "set_default_dtype",
    "set_default_tensor_type", "set_deterministic_debug_mode", "set_float32_matmul_precision", "set_printoptions",
    "set_rng_state", "set_warn_always", "solve", "split", "stft", "svd_lowrank", "sym_float", "sym_int", "sym_ite", "sym_max", "sym_min", "sym_not", "sym_sqrt",
    "sym_sum", "symeig", "tensordot", "typename",
    "unique", "unique_consecutive", "unravel_index", "use_deterministic_algorithms", "vmap", "while_loop",
})
BUILTINS_IN_FUNCTIONAL = frozenset({
    "adaptive_avg_pool1d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "bilinear", "celu_", "channel_shuffle",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "cosine_similarity",
    "elu_", "gelu", "hardshrink", "hardtanh_", "has_torch_function", "has_torch_function_unary",
    "has_torch_function_variadic", "leaky_relu_", "linear", "logsigmoid", "native_channel_shuffle", "one_hot",
    "pairwise_distance", "pdist", "pixel_shuffle", "pixel_unshuffle", "prelu", "relu_", "rrelu_",
    "scaled_dot_product_attention", "selu_", "softplus", "softshrink", "threshold_",
})


def rewrap_captured(classes) -> None:
    """Classes that captured a public function at their definition (``_fn = staticmethod(F.relu)``,
    before the wiring wrapped it) call the dispatching wrapper instead, as torch's modules call F's."""
    for cls in classes:
        for name, value in list(vars(cls).items()):
            if isinstance(value, staticmethod):
                wrapper = _WRAPPED.get((value.__func__, None, False, False)) \
                    or _WRAPPED.get((value.__func__, None, False, True))
                if wrapper is not None:
                    setattr(cls, name, staticmethod(wrapper))


_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType, functools.partial)


def is_function(value) -> bool:
    return isinstance(value, _FUNCTION_TYPES)


# torch's checks are C++ built-ins, one object in torch.overrides and torch.nn.functional
has_torch_function, has_torch_function_unary, has_torch_function_variadic = (
    as_builtin(check, ("chainrule.overrides", check.__name__))
    for check in (has_torch_function, has_torch_function_unary, has_torch_function_variadic))
