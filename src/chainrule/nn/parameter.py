"""nn.Parameter: a Tensor that a Module registers as one of its parameters."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor

__all__ = ["Parameter", "Buffer"]


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that ``Module.__setattr__`` registers.

    Like ``torch.nn.Parameter`` it shares memory with the tensor it is built from.
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            array = np.empty((0,), dtype=np.float32)
            version_box = [0]
        elif isinstance(data, Tensor):
            array = data._data
            version_box = data._version_box
        else:
            raise TypeError(f"Parameter(): argument 'data' must be Tensor, not {type(data).__name__}")
        param = object.__new__(cls)
        param._init(array)
        param._version_box = version_box
        param._set_requires_grad(requires_grad)
        return param

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        param = Parameter(Tensor._make(self._data.copy()), self._requires_grad)
        if self._grad is not None:
            param._grad = Tensor._make(self._grad._data.copy())
        param._name = self._name
        memo[id(self)] = param
        return param

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (np.asarray(self._data), self._requires_grad))


def _rebuild_parameter(array, requires_grad):
    return Parameter(Tensor._make(array), requires_grad)


class Buffer(Tensor):
    """``nn.Buffer(data, persistent=True)``: marks a tensor that ``Module.__setattr__`` registers as a buffer."""

    def __new__(cls, data: Tensor, *, persistent: bool = True):
        buffer = object.__new__(cls)
        buffer._init(data._data)
        buffer._version_box = data._version_box
        buffer.persistent = persistent
        return buffer

    def __init__(self, data: Tensor, *, persistent: bool = True) -> None:
        pass
