"""parameters_to_vector / vector_to_parameters: one flat vector for all parameters."""

from __future__ import annotations

from ...ops.shape import cat
from ...tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters) -> Tensor:
    """Concatenate the flattened parameters into one vector (differentiable, like torch's)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into the parameters' data (shares nothing with ``vec``)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    parameters = list(parameters)
    # checked before any parameter changes (torch fails midway, in the view of the first parameter
    # the vector runs short for): that view's error, word for word
    pointer = 0
    for param in parameters:
        if vec.numel() - pointer < param.numel():
            raise RuntimeError(f"shape '{list(param.shape)}' is invalid for input of size "
                               f"{max(vec.numel() - pointer, 0)}")
        pointer += param.numel()
    pointer = 0
    data = vec._data
    for param in parameters:
        n = param.numel()
        param.data = Tensor._make(data[pointer:pointer + n].reshape(param._data.shape).astype(param._data.dtype))
        pointer += n
