"""Named result tuples of the ops that return several tensors, as ``torch.return_types``.

``x.max(dim=1)`` returns ``chainrule.return_types.max(values=..., indices=...)``: a tuple (so it
unpacks and indexes) whose fields are also attributes, printed the way torch prints its own.
"""

from __future__ import annotations

import collections

from ._dtype import package_prefix

__all__ = ["max", "min", "sort", "topk", "kthvalue", "mode", "median", "nanmedian", "cummax", "cummin",
           "aminmax", "slogdet", "linalg_slogdet", "histogram", "linalg_cholesky_ex", "linalg_qr", "qr", "linalg_eigh", "linalg_svd",
           "svd", "linalg_lstsq", "linalg_lu_factor", "linalg_lu_factor_ex", "linalg_lu"]


def _repr(self) -> str:
    fields = ",\n".join(f"{name}={value!r}" for name, value in zip(self._fields, self))
    return f"{package_prefix()}return_types.{type(self).__name__}(\n{fields})"


def _structseq(name: str, fields: tuple):
    cls = type(name, (collections.namedtuple(name, fields),), {"__slots__": (), "__repr__": _repr,
                                                                 "__module__": __name__})
    cls.__qualname__ = name
    return cls


_VALUES_INDICES = ("values", "indices")
max = _structseq("max", _VALUES_INDICES)
min = _structseq("min", _VALUES_INDICES)
sort = _structseq("sort", _VALUES_INDICES)
topk = _structseq("topk", _VALUES_INDICES)
kthvalue = _structseq("kthvalue", _VALUES_INDICES)
mode = _structseq("mode", _VALUES_INDICES)
median = _structseq("median", _VALUES_INDICES)
nanmedian = _structseq("nanmedian", _VALUES_INDICES)
cummax = _structseq("cummax", _VALUES_INDICES)
cummin = _structseq("cummin", _VALUES_INDICES)
aminmax = _structseq("aminmax", ("min", "max"))
slogdet = _structseq("slogdet", ("sign", "logabsdet"))
linalg_slogdet = _structseq("linalg_slogdet", ("sign", "logabsdet"))
histogram = _structseq("histogram", ("hist", "bin_edges"))
linalg_cholesky_ex = _structseq("linalg_cholesky_ex", ("L", "info"))
linalg_qr = _structseq("linalg_qr", ("Q", "R"))
qr = _structseq("qr", ("Q", "R"))
linalg_eigh = _structseq("linalg_eigh", ("eigenvalues", "eigenvectors"))
linalg_eig = _structseq("linalg_eig", ("eigenvalues", "eigenvectors"))
geqrf = _structseq("geqrf", ("a", "tau"))
linalg_ldl_factor = _structseq("linalg_ldl_factor", ("LD", "pivots"))
linalg_ldl_factor_ex = _structseq("linalg_ldl_factor_ex", ("LD", "pivots", "info"))
linalg_svd = _structseq("linalg_svd", ("U", "S", "Vh"))
svd = _structseq("svd", ("U", "S", "V"))
linalg_lstsq = _structseq("linalg_lstsq", ("solution", "residuals", "rank", "singular_values"))
linalg_lu_factor = _structseq("linalg_lu_factor", ("LU", "pivots"))
linalg_lu_factor_ex = _structseq("linalg_lu_factor_ex", ("LU", "pivots", "info"))
linalg_lu = _structseq("linalg_lu", ("P", "L", "U"))
frexp = _structseq("frexp", ("mantissa", "exponent"))
linalg_inv_ex = _structseq("linalg_inv_ex", ("inverse", "info"))
linalg_solve_ex = _structseq("linalg_solve_ex", ("result", "info"))
lu_unpack = _structseq("lu_unpack", ("P", "L", "U"))
triangular_solve = _structseq("triangular_solve", ("solution", "cloned_coefficient"))
histogramdd = _structseq("histogramdd", ("hist", "bin_edges"))
