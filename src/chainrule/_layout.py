"""torch.layout: how a tensor's elements are stored (``x.layout``; ``layout=`` arguments)."""

from __future__ import annotations

from ._dtype import as_torch_c_type, package_prefix

__all__ = ["layout", "strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "jagged"]


class layout:
    """A storage layout; compared by identity, printed as ``chainrule.<name>`` (``torch.<name>`` where
    chainrule answers ``import torch``)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return package_prefix() + self._name

    def __reduce__(self):
        return self._name  # unpickles to the module attribute of that name: the same object


strided = layout("strided")
sparse_coo = layout("sparse_coo")
sparse_csr = layout("sparse_csr")
sparse_csc = layout("sparse_csc")
sparse_bsr = layout("sparse_bsr")
sparse_bsc = layout("sparse_bsc")
jagged = layout("jagged")
as_torch_c_type(layout, "torch.layout", creatable=False)


def not_on_sparse(kernel: str) -> str:
    """torch's words for a kernel it has no sparse COO version of."""
    return (f"Could not run 'aten::{kernel}' with arguments from the 'SparseCPU' backend. This could be because the "
            "operator doesn't exist for this backend, or was omitted during the selective/custom build process (if "
            "using custom build).")
