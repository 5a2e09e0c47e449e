"""chainrule.distributed.device_mesh: torch's DeviceMesh, the grid of ranks a DTensor lives on.

A mesh needs the default process group; torch starts one from the ``env://`` variables when none
is running, and so does this one (chainrule's ranks are MPI's, see ``init_process_group``).
Without ``RANK`` set, construction fails with torch's message.
"""

from __future__ import annotations

import os

import numpy as np

from .distributed_c10d import get_rank, init_process_group, is_initialized

__all__ = ["DeviceMesh", "init_device_mesh"]


def _ensure_process_group() -> None:
    if is_initialized():
        return
    for variable in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if variable not in os.environ:
            raise ValueError(f"Error initializing torch.distributed using env:// rendezvous: environment "
                             f"variable {variable} expected, but not set")
    init_process_group()


class DeviceMesh:
    """An n-dimensional grid of global ranks (``mesh``) on one device type."""

    def __init__(self, device_type: str, mesh=None, *, mesh_dim_names: tuple[str, ...] | None = None,
                 backend_override=None, _init_backend: bool = True, _rank: int | None = None) -> None:
        _ensure_process_group()
        ranks = np.asarray(mesh.numpy() if hasattr(mesh, "numpy") else mesh, dtype=np.int64)
        if mesh_dim_names is not None and len(mesh_dim_names) != ranks.ndim:
            raise RuntimeError(f"mesh_dim_names {mesh_dim_names} should have the same length as mesh.ndim "
                               f"{ranks.ndim}")
        self.device_type = device_type
        self.mesh_dim_names = tuple(mesh_dim_names) if mesh_dim_names is not None else None
        self._ranks = ranks
        self._rank = get_rank() if _rank is None else _rank

    @property
    def mesh(self):
        from ..ops.creation import tensor
        return tensor(self._ranks)

    @property
    def ndim(self) -> int:
        return self._ranks.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._ranks.shape)

    def size(self, mesh_dim: int | None = None) -> int:
        return int(self._ranks.size if mesh_dim is None else self._ranks.shape[mesh_dim])

    def get_rank(self) -> int:
        return self._rank

    def __repr__(self) -> str:
        names = f", mesh_dim_names={self.mesh_dim_names}" if self.mesh_dim_names else ""
        return f"DeviceMesh('{self.device_type}', {self._ranks.tolist()}{names})"


def init_device_mesh(device_type: str, mesh_shape: tuple[int, ...], *, mesh_dim_names: tuple[str, ...] | None = None,
                     backend_override=None) -> DeviceMesh:
    """A mesh of ``mesh_shape`` over ranks 0..N-1 in row-major order."""
    if mesh_dim_names is not None and len(set(mesh_dim_names)) != len(mesh_dim_names):
        raise RuntimeError("Each mesh_dim_name must be unique.", f"Found repeated mesh_dim_name in mesh_dim_names "
                           f"{mesh_dim_names}")
    if mesh_dim_names is not None and len(mesh_shape) != len(mesh_dim_names):
        raise RuntimeError("mesh_shape and mesh_dim_names should have same length!",
                           f"Found len(mesh_dim_names): {len(mesh_dim_names)} and len(mesh_shape):{len(mesh_shape)}.")
    return DeviceMesh(device_type, np.arange(int(np.prod(mesh_shape))).reshape(mesh_shape),
                      mesh_dim_names=mesh_dim_names)
