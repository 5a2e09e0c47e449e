"""parameters_to_vector / vector_to_parameters: one flat vector for all parameters."""

from __future__ import annotations

from ...ops.shape import cat
from ...tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters) -> Tensor:
    """Concatenate the flattened parameters into one vector (differentiable, like torch's): each
    one by ``view(-1)``, so a parameter that is not contiguous (channels-last) raises torch's error."""
    return cat([p.view(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Make consecutive slices of ``vec`` (along its first dim) the parameters' data, as torch's
    ``param.data = vec[pointer:pointer + n].view_as(param).data``: each parameter becomes a view of
    ``vec`` (writing to ``vec`` later changes it) with ``vec``'s dtype."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    parameters = list(parameters)
    # every view is made before any parameter changes (torch fails midway, at the view of the
    # first parameter the vector runs short for): that view's error, word for word
    pieces = []
    pointer = 0
    for param in parameters:
        n = param.numel()
        pieces.append(vec[pointer:pointer + n].view_as(param))
        pointer += n
    for param, piece in zip(parameters, pieces):
        param.data = piece.data
