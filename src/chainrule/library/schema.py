"""Operator schemas: ``foo(Tensor x, float k=2.0) -> Tensor``, inferred from a function's type
annotations (torch.library.infer_schema) or parsed from text (``Library.define``), and used to bind
a call's arguments as torch's dispatcher does, with its error messages."""

from __future__ import annotations

import collections.abc
import inspect
import re
import typing
from dataclasses import dataclass
from types import GenericAlias, UnionType

import numpy as np

from .. import _dtype
from .._backend import device
from ..tensor import Tensor

__all__ = ["Argument", "FunctionSchema", "Return", "infer_schema", "parse_schema"]

Number = typing.Union[int, float, bool]  # noqa: UP007 - torch.types.Number: the annotation for a Scalar argument


def _sequence_forms(element) -> tuple:
    return (typing.Sequence[element], typing.List[element], GenericAlias(collections.abc.Sequence, (element,)),  # noqa: UP006
            GenericAlias(list, (element,)))


def _parameter_types() -> dict:
    """annotation -> schema type, for the forms torch accepts: the base type, Optional, a sequence,
    and (for some) a sequence of optionals or an optional sequence."""
    table: dict = {}
    # (annotation, schema name, sequence allowed, sequence of optionals, optional sequence)
    for base, name, sequence, of_optional, optional_sequence in (
            (Tensor, "Tensor", True, True, False), (int, "SymInt", True, False, True),
            (float, "float", True, False, True), (bool, "bool", True, False, True), (str, "str", False, False, False),
            (Number, "Scalar", True, False, False), (_dtype.dtype, "ScalarType", False, False, False),
            (device, "Device", False, False, False)):
        table[base] = name
        table[typing.Optional[base]] = f"{name}?"  # noqa: UP045
        if sequence:
            table.update(dict.fromkeys(_sequence_forms(base), f"{name}[]"))
        if of_optional:
            table.update(dict.fromkeys(_sequence_forms(typing.Optional[base]), f"{name}?[]"))  # noqa: UP045
        if optional_sequence:
            table.update({typing.Optional[form]: f"{name}[]?" for form in _sequence_forms(base)})  # noqa: UP045
    return table


PARAMETER_TYPES = _parameter_types()
RETURN_TYPES = {Tensor: "Tensor", typing.List[Tensor]: "Tensor[]", list[Tensor]: "Tensor[]",  # noqa: UP006
                int: "SymInt", float: "float", bool: "bool", Number: "Scalar"}


def _normalise(annotation):
    """``X | None`` (a types.UnionType) as typing.Optional[X], the form the tables hold."""
    if isinstance(annotation, UnionType):
        return typing.Union[annotation.__args__]  # noqa: UP007
    return annotation


def _default_text(value) -> str | None:
    """A default as schema text (torch's spelling), None for a kind of value a schema cannot hold."""
    if value is None or isinstance(value, (int, float, bool)):
        return str(value)
    if isinstance(value, (str, device)):
        return f'"{value}"'
    if isinstance(value, _dtype.dtype):
        return value.name
    if isinstance(value, list) and all(isinstance(v, (int, float, bool)) for v in value):
        return f"[{', '.join(str(v) for v in value)}]"  # read from schema text; infer_schema refuses lists
    return None


def infer_schema(prototype_function, /, *, mutates_args, op_name: str | None = None, tags=None) -> str:
    """torch.library.infer_schema: the schema of ``prototype_function`` from its type annotations,
    e.g. ``(Tensor x, float k) -> Tensor``; with ``op_name`` it starts with the name. ``mutates_args``
    names the Tensor arguments the function writes to (or is "unknown": every Tensor argument)."""
    signature = inspect.signature(prototype_function)
    hints = _resolved_hints(prototype_function)

    def fail(what: str):
        raise ValueError(f"infer_schema(func): {what} Got func with signature {signature})")

    if not isinstance(mutates_args, str):
        mutates_args = tuple(mutates_args)
    elif mutates_args != "unknown":
        raise ValueError("mutates_args must either be a sequence of the names of the arguments that are mutated "
                         "or the string 'unknown'. ")
    params, seen, keyword_only_started = [], set(), False
    for index, (name, parameter) in enumerate(signature.parameters.items()):
        if parameter.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            fail("We do not support positional-only args, varargs, or varkwargs.")
        if parameter.kind == inspect.Parameter.KEYWORD_ONLY and not keyword_only_started:
            params.append("*")
            keyword_only_started = True
        if parameter.annotation is inspect.Parameter.empty:
            fail(f"Parameter {name} must have a type annotation.")
        annotation = _normalise(hints.get(name, parameter.annotation))
        schema_type = PARAMETER_TYPES.get(annotation)
        if schema_type is None:
            if typing.get_origin(annotation) is tuple:
                fail(f"Parameter {name} has unsupported type {parameter.annotation}. We do not support Tuple "
                     "inputs in schema. As a workaround, please try to use List instead.")
            fail(f"Parameter {name} has unsupported type {parameter.annotation}. "
                 f"The valid types are: {list(dict.fromkeys(PARAMETER_TYPES.values()))}.")
        mutated = mutates_args == "unknown" or name in mutates_args
        if mutated and not schema_type.startswith("Tensor"):
            if mutates_args != "unknown":
                fail(f"Parameter {name} is in mutable_args but only Tensors or collections of Tensors can be "
                     "mutated")
        elif mutated:
            schema_type = f"Tensor(a{index}!){schema_type[len('Tensor'):]}"
        seen.add(name)
        if parameter.default is inspect.Parameter.empty:
            params.append(f"{schema_type} {name}")
        else:
            text = None if isinstance(parameter.default, list) else _default_text(parameter.default)
            if text is None:
                fail(f"Parameter {name} has an unsupported default value type {type(parameter.default)}. "
                     "Please file an issue on GitHub so we can prioritize this.")
            params.append(f"{schema_type} {name}={text}")
    if mutates_args != "unknown":
        unseen = set(mutates_args) - seen
        if unseen:
            fail(f"{unseen} in mutates_args were not found in the custom op's signature. mutates_args should "
                 "contain the names of all args that the custom op mutates, or just the string 'unknown' if you "
                 "don't know.")
    returns = _return_text(_normalise(hints.get("return", signature.return_annotation)), fail)
    return f"{op_name or ''}({', '.join(params)}) -> {returns}"


def _resolved_hints(function) -> dict:
    """The annotations with strings (``from __future__ import annotations``) evaluated."""
    try:
        return typing.get_type_hints(function)
    except Exception:  # an annotation that is no type: reported per parameter below
        return {}


def _return_text(annotation, fail) -> str:
    if annotation is None or annotation is type(None):
        return "()"
    if annotation is inspect.Parameter.empty:
        fail("No return type annotation was provided. Please add one.")
    if typing.get_origin(annotation) is tuple:
        parts = typing.get_args(annotation)
        if any(part not in RETURN_TYPES for part in parts):
            fail(f"Return has unsupported type {annotation}. The valid types are: {list(RETURN_TYPES.values())}.")
        text = ", ".join(RETURN_TYPES[part] for part in parts)
        return f"(({text}))" if len(parts) == 1 else f"({text})"
    if annotation not in RETURN_TYPES:
        fail(f"Return has unsupported type {annotation}. The valid types are: {list(RETURN_TYPES.values())}.")
    return RETURN_TYPES[annotation]


# ---- schema text -> FunctionSchema
@dataclass(frozen=True)
class Argument:
    """One argument of a schema: ``Tensor(a!) out`` is name "out", type "Tensor", mutable."""

    name: str
    type: str
    default_value: object = inspect.Parameter.empty
    kwarg_only: bool = False
    is_write: bool = False
    alias: str | None = None

    def has_default_value(self) -> bool:
        return self.default_value is not inspect.Parameter.empty

    def __str__(self) -> str:
        alias = f"({self.alias}{'!' if self.is_write else ''})" if self.alias else ""
        base, rest = (self.type[:6], self.type[6:]) if self.type.startswith("Tensor") else (self.type, "")
        text = f"{base}{alias}{rest} {self.name}"
        if self.has_default_value():
            text += f"={_default_text(self.default_value)}"
        return text


@dataclass(frozen=True)
class Return:
    type: str
    alias: str | None = None
    is_write: bool = False

    def __str__(self) -> str:
        alias = f"({self.alias}{'!' if self.is_write else ''})" if self.alias else ""
        return f"{self.type[:6]}{alias}{self.type[6:]}" if self.type.startswith("Tensor") else self.type


@dataclass(frozen=True)
class FunctionSchema:
    """torch.FunctionSchema: ``name`` ("mylib::foo"), ``overload_name``, ``arguments``, ``returns``."""

    name: str
    overload_name: str
    arguments: tuple[Argument, ...]
    returns: tuple[Return, ...]

    def __str__(self) -> str:
        parts, keyword_only = [], False
        for argument in self.arguments:
            if argument.kwarg_only and not keyword_only:
                parts.append("*")
                keyword_only = True
            parts.append(str(argument))
        name = self.name + (f".{self.overload_name}" if self.overload_name else "")
        if len(self.returns) == 1:
            returns = str(self.returns[0])
        else:
            returns = f"({', '.join(str(r) for r in self.returns)})"
        return f"{name}({', '.join(parts)}) -> {returns}"

    @property
    def mutated_arguments(self) -> set[str]:
        return {a.name for a in self.arguments if a.is_write}


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE = re.compile(r"^(?P<base>[A-Za-z_][A-Za-z0-9_]*)(?:\((?P<alias>[a-z][A-Za-z0-9_]*)(?P<write>!)?\))?"
                   r"(?P<suffix>(?:\?|\[\d*\])*)$")


def _parse_error(expected: str, text: str, position: int) -> RuntimeError:
    found = text[position] if position < len(text) else "eof"
    return RuntimeError(f"expected {expected} but found '{found}' here:\n{text}\n{' ' * position}~ <--- HERE")


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "([" and 1 or (char in ")]" and -1 or 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _parse_default(text: str, type_text: str):
    if text == "None":
        return None
    if text in ("True", "False"):
        return text == "True"
    if text.startswith('"') or text.startswith("'"):
        return text[1:-1]
    if text.startswith("["):
        return [_parse_default(item, type_text.split("[")[0]) for item in _split_top_level(text[1:-1])]
    if type_text.startswith("ScalarType"):
        return getattr(_dtype, text)
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_schema(text: str, qualified_name: str | None = None) -> FunctionSchema:
    """A schema from its text, ``name.overload(args) -> returns`` or, with ``qualified_name`` given
    (``mylib::foo``), the nameless ``(args) -> returns``."""
    body = text.strip()
    open_paren = body.find("(")
    head = body[:open_paren] if open_paren >= 0 else body
    if qualified_name is None:
        match = _IDENTIFIER.match(head)
        if not match:
            raise _parse_error("ident", body, 0)
        if match.end() < len(head) and head[match.end()] != ".":
            raise _parse_error("eof", body, match.end())
        name, _, overload = head.partition(".")
    else:
        if head.strip():
            raise _parse_error("eof", body, 0)
        name, _, overload = qualified_name.partition(".")
    arrow = body.rfind("->")
    close_paren = body.rfind(")", 0, arrow if arrow >= 0 else len(body))
    if open_paren < 0 or arrow < 0 or close_paren < open_paren:
        raise _parse_error("'->'", body, len(body))
    arguments, keyword_only = [], False
    for part in _split_top_level(body[open_paren + 1:close_paren]):
        if part == "*":
            keyword_only = True
            continue
        declaration, _, default = part.partition("=")
        type_text, _, argument_name = declaration.strip().rpartition(" ")
        match = _TYPE.match(type_text)
        if not match or not _IDENTIFIER.fullmatch(argument_name):
            raise _parse_error("a type and a name", body, body.find(part))
        arguments.append(Argument(
            argument_name, match["base"] + match["suffix"],
            _parse_default(default.strip(), match["base"]) if default else inspect.Parameter.empty,
            keyword_only, bool(match["write"]), match["alias"]))
    returns_text = body[arrow + 2:].strip()
    if returns_text.startswith("(") and returns_text.endswith(")"):
        returns_text = returns_text[1:-1]
        if returns_text.startswith("(") and returns_text.endswith(")"):  # "((Tensor))": a one-tuple
            returns_text = returns_text[1:-1]
    returns = []
    for part in _split_top_level(returns_text):
        match = _TYPE.match(part.split(" ")[0])
        if not match:
            raise _parse_error("a return type", body, arrow + 2)
        returns.append(Return(match["base"] + match["suffix"], match["alias"], bool(match["write"])))
    return FunctionSchema(name, overload, tuple(arguments), tuple(returns))


# ---- binding a call's arguments, with the dispatcher's errors
def _fits(value, schema_type: str) -> bool:
    if schema_type.endswith("?"):
        return value is None or _fits(value, schema_type[:-1])
    if schema_type.endswith("]"):
        if not isinstance(value, (list, tuple)):
            return schema_type.startswith(("SymInt", "int")) and isinstance(value, int)  # int[2] takes one int
        element = schema_type[:schema_type.index("[")]
        return all(_fits(v, element) for v in value)
    base = schema_type
    # NumPy's scalars pass as Python's do (torch reads them through __index__ and __float__):
    # np.cumsum's split points given to an int[] argument
    if base == "Tensor":
        return isinstance(value, Tensor)
    if base in ("SymInt", "int"):
        return isinstance(value, (int, np.integer))
    if base == "float":
        return isinstance(value, (int, float, np.integer, np.floating))
    if base == "bool":
        return isinstance(value, (bool, np.bool_))
    if base == "str":
        return isinstance(value, str)
    if base == "Scalar":
        return isinstance(value, (int, float, complex, bool))
    if base == "ScalarType":
        return isinstance(value, _dtype.dtype)
    if base == "Device":
        return isinstance(value, (device, str, int))
    return True  # a type chainrule does not check (Layout, MemoryFormat, ...)


class _Declaration:
    """"Declaration: <schema>", as torch's binding errors end, formatted when an error shows it."""

    __slots__ = ("schema",)

    def __init__(self, schema) -> None:
        self.schema = schema

    def __format__(self, spec: str) -> str:
        return f"Declaration: {self.schema}"


_PYTHON_TYPE_NAMES = {"SymInt": "int", "Scalar": "number", "ScalarType": "int"}


def _python_type_name(schema_type: str) -> str:
    """A schema type as torch's argument errors name it: ``Tensor[]`` is 'List[Tensor]',
    ``Tensor?`` 'Optional[Tensor]', ``SymInt`` 'int', ``Scalar`` 'number'."""
    if schema_type.endswith("?"):
        return f"Optional[{_python_type_name(schema_type[:-1])}]"
    if schema_type.endswith("]"):
        return f"List[{_python_type_name(schema_type[:schema_type.index('[')])}]"
    return _PYTHON_TYPE_NAMES.get(schema_type, schema_type)


def bind(schema: FunctionSchema, args: tuple, kwargs: dict) -> list:
    """Every argument's value in schema order (defaults filled in), or torch's RuntimeError."""
    declared = _Declaration(schema)  # the schema's text is formatted only for an error
    qualified = schema.name + (f".{schema.overload_name}" if schema.overload_name else "")
    positional = [a for a in schema.arguments if not a.kwarg_only]
    if len(args) > len(positional) or len(args) + len(kwargs) > len(schema.arguments):
        raise RuntimeError(f"{qualified}() expected at most {len(positional)} argument(s) but received "
                           f"{len(args) + len(kwargs)} argument(s). {declared}")
    names = {a.name for a in schema.arguments}
    for key in kwargs:
        if key not in names:
            raise RuntimeError(f"{qualified}() got an unexpected keyword argument '{key}'. {declared}")
    values = []
    for position, argument in enumerate(schema.arguments):
        if position < len(args):
            if argument.name in kwargs:
                raise RuntimeError(f"{qualified}() got multiple values for argument '{argument.name}'. {declared}")
            value = args[position]
        elif argument.name in kwargs:
            value = kwargs[argument.name]
        elif argument.has_default_value():
            value = argument.default_value
        else:
            raise RuntimeError(f"{qualified}() is missing value for argument '{argument.name}'. {declared}")
        if not _fits(value, argument.type):
            raise RuntimeError(f"{qualified}() Expected a value of type '{_python_type_name(argument.type)}' for argument "
                               f"'{argument.name}' but instead found type '{type(value).__name__}'.\n"
                               f"Position: {position}\nValue: {value!r}\n{declared}")
        values.append(value)
    return values
