"""chainrule.types: torch.types, the type aliases torch's signatures and user annotations name
(``_int``, ``_size``, ``Number``, ``Device``, ``_TensorOrTensors``, ...). ``SymInt``/``SymFloat``/
``SymBool`` are the top-level classes (torch.types names torch.SymInt), of which no value chainrule
makes is an instance: its sizes are always plain ints."""

from __future__ import annotations

import os
import typing
from collections.abc import Sequence
from typing import IO, Any, Union  # noqa: F401  (torch.types re-exports them)

from ._backend import device
from ._dtype import dtype
from ._layout import layout
from ._symbolic_sizes import SymBool, SymFloat, SymInt
from .storage import UntypedStorage
from .tensor import Size, Tensor

__all__ = ["Device", "FileLike", "Number", "Storage"]

_bool = bool
_complex = complex
_float = float
_int = int
_str = str
_bytes = bytes
_dtype = dtype
_device = device
_layout = layout
_size = Size | list[int] | tuple[int, ...]
_symsize = Size | Sequence[int]
_dispatchkey = str

# Number is typing.Union (not int | float | bool) so that annotations compare equal to torch's form
Number: typing.TypeAlias = Union[int, float, bool]  # noqa: UP007
_Number = (int, float, bool)
Device: typing.TypeAlias = Union[device, str, int, None]  # noqa: UP007
IntLikeType = int
FloatLikeType = float
BoolLikeType = bool
py_sym_types = (SymInt, SymFloat, SymBool)
PySymType = Union[SymInt, SymFloat, SymBool]  # noqa: UP007
FileLike = Union[str, os.PathLike, IO[bytes]]  # noqa: UP007
_TensorOrTensors = Tensor | Sequence[Tensor]
_TensorOrOptionalTensors = Tensor | Sequence[Tensor | None]
Storage = UntypedStorage
