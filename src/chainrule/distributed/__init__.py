"""torch.distributed on MPI: process groups, collectives and a torchrun-like launcher.

Start ranks with ``python -m chainrule.distributed.run --nproc-per-node N script.py`` (or
``chainrule run -n N script.py``, ``mpiexec -n N python script.py``, ``srun python script.py``);
each calls ``init_process_group()``. mpi4py is imported only then, so ``import chainrule`` never
starts MPI. See docs/distributed.md.
"""

from . import _mpi
from .distributed_c10d import (
    BACKENDS,
    DEFAULT_TIMEOUT,
    GroupMember,
    ProcessGroup,
    ReduceOp,
    Work,
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    destroy_process_group,
    gather,
    get_backend,
    get_global_rank,
    get_group_rank,
    get_process_group_ranks,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    irecv,
    is_available,
    is_gloo_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
    is_torchelastic_launched,
    isend,
    new_group,
    recv,
    reduce,
    reduce_scatter_tensor,
    scatter,
    send,
)

# a torchrun script may read LOCAL_RANK right after `import torch.distributed`, before
# init_process_group: fill it in from mpiexec's or srun's variables (no MPI call here)
_mpi.export_torchrun_environment()

__all__ = ["BACKENDS", "DEFAULT_TIMEOUT", "GroupMember", "ProcessGroup", "ReduceOp", "Work", "all_gather",
           "all_gather_into_tensor", "all_gather_object", "all_reduce", "barrier", "broadcast",
           "broadcast_object_list", "destroy_process_group", "gather", "get_backend", "get_global_rank",
           "get_group_rank", "get_process_group_ranks", "get_rank", "get_world_size", "group",
           "init_process_group", "irecv", "is_available", "is_gloo_available", "is_initialized", "is_mpi_available",
           "is_nccl_available", "is_torchelastic_launched", "isend", "new_group", "recv", "reduce",
           "reduce_scatter_tensor", "scatter", "send"]
