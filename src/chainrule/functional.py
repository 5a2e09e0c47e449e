"""chainrule.functional: torch.functional's public names, the very objects of the top level.

torch defines einsum, stft, split, norm and the rest of this list in ``torch/functional.py`` and
re-exports them, so ``torch.functional.einsum is torch.einsum``; libraries key dictionaries on
either spelling (opt_einsum_fx collects ``{torch.functional.einsum, torch.einsum}`` to find einsum
nodes in an fx graph). chainrule's are defined by the ops families; this module names the top
level's (``__torch_function__``-dispatching) objects, so it is imported after the package wires them.
"""

from . import (  # noqa: F401
    atleast_1d,
    atleast_2d,
    atleast_3d,
    block_diag,
    broadcast_shapes,
    broadcast_tensors,
    cartesian_prod,
    cdist,
    chain_matmul,
    einsum,
    istft,
    lu,
    meshgrid,
    norm,
    pca_lowrank,
    split,
    stft,
    svd_lowrank,
    tensordot,
    unique,
    unique_consecutive,
    unravel_index,
)

__all__ = [
    "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_shapes", "broadcast_tensors", "cartesian_prod",
    "block_diag", "cdist", "chain_matmul", "einsum", "istft", "lu", "norm", "meshgrid", "pca_lowrank",
    "split", "stft", "svd_lowrank", "tensordot", "unique", "unique_consecutive", "unravel_index",
]
