"""torch.distributed on MPI: process groups, collectives and a torchrun-like launcher.

Start ranks with ``python -m chainrule.distributed.run --nproc-per-node N script.py`` (or
``chainrule run -n N script.py``, ``mpiexec -n N python script.py``, ``srun python script.py``);
each calls ``init_process_group()``. mpi4py is imported only then, so ``import chainrule`` never
starts MPI. See docs/distributed.md.
"""

from . import _mpi
from ._all_to_all import all_to_all, all_to_all_single, reduce_scatter
from ._backend_names import Backend, get_default_backend_for_device, is_backend_available
from ._errors import DistBackendError, DistError, DistNetworkError, DistStoreError
from ._grad_bucket import GradBucket
from ._groups import get_backend_config, monitored_barrier, new_subgroups, new_subgroups_by_enumeration
from ._object_collectives import gather_object, recv_object_list, scatter_object_list, send_object_list
from ._p2p_batch import P2POp, batch_isend_irecv
from ._store import FileStore, HashStore, PrefixStore, Store, TCPStore
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
           "reduce_scatter_tensor", "scatter", "send",
           # the rest of torch's collective API (session 14)
           "Backend", "DistBackendError", "DistError", "DistNetworkError", "DistStoreError", "FileStore",
           "HashStore", "P2POp", "PrefixStore", "Store", "TCPStore", "all_to_all", "all_to_all_single",
           "batch_isend_irecv", "gather_object", "get_backend_config", "get_default_backend_for_device",
           "is_backend_available", "monitored_barrier", "new_subgroups", "new_subgroups_by_enumeration",
           "recv_object_list", "reduce_scatter", "scatter_object_list", "send_object_list",
           # DDP communication hooks and Join (session 14)
           "GradBucket"]
