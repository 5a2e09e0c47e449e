"""chainrule.distributed.tensor: torch's DTensor names, for code that checks for them.

Libraries (transformers' tensor-parallel and checkpoint code) import ``DTensor`` and the
placements at load and test ``isinstance(x, DTensor)`` on every parameter. chainrule has no
sharded tensor ops, so no tensor is a DTensor: ``from_local``, ``distribute_tensor`` and the
factories need a mesh as torch's do (torch's "No device mesh is currently active!" without one),
and with a mesh they raise NotImplementedError instead of computing something else.
"""

from __future__ import annotations

from ..._torch_function import disabled_torch_function_impl
from ...tensor import Tensor
from ..device_mesh import DeviceMesh
from .placement_types import Partial, Placement, Replicate, Shard

__all__ = ["DTensor", "distribute_tensor", "distribute_module", "Shard", "Replicate", "Partial", "Placement",
           "DeviceMesh", "ones", "empty", "full", "rand", "randn", "zeros"]

_NO_MESH = "No device mesh is currently active!"


def _refuse(what: str, device_mesh) -> None:
    if device_mesh is None:
        raise RuntimeError(_NO_MESH)
    raise NotImplementedError(f"{what}: chainrule has no sharded (DTensor) operations; run tensor-parallel code "
                              "on torch")


class DTensor(Tensor):
    """torch.distributed.tensor.DTensor: a tensor sharded over a DeviceMesh. Nothing in chainrule
    creates one, so ``isinstance(t, DTensor)`` is False for every chainrule tensor."""

    __torch_function__ = disabled_torch_function_impl  # chainrule's own subclass: ops give plain Tensors

    def __new__(cls, local_tensor, spec, *, requires_grad: bool):
        spec.tensor_meta  # noqa: B018 - torch reads the spec first: None fails with its AttributeError
        _refuse("DTensor", spec.mesh)

    @staticmethod
    def from_local(local_tensor, device_mesh=None, placements=None, *, run_check: bool = False, shape=None,
                   stride=None, grad_placements=None):
        _refuse("DTensor.from_local", device_mesh)


def distribute_tensor(tensor, device_mesh=None, placements=None, *, src_data_rank: int | None = 0):
    _refuse("distribute_tensor", device_mesh)


def distribute_module(module, device_mesh=None, partition_fn=None, input_fn=None, output_fn=None):
    _refuse("distribute_module", device_mesh)


def _factory(name):
    def factory(*size, requires_grad: bool = False, dtype=None, layout=None, device_mesh=None, placements=None):
        _refuse(f"torch.distributed.tensor.{name}", device_mesh)
    factory.__name__ = factory.__qualname__ = name
    return factory


ones, empty, full, rand, randn, zeros = (_factory(name) for name in ("ones", "empty", "full", "rand", "randn",
                                                                      "zeros"))
