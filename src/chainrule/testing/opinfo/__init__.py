"""The op registry: one ``OpInfo`` per public op, with sample inputs the generic tests iterate.

PyTorch's ``torch.testing._internal.opinfo`` is the model. Each entry names a public function
(``name``), the ops module that implements it (``family``), the Tensor methods and operators it
also covers, and a ``samples`` callable returning ``OpCase``s: a function ``fn(lib, *tensors)``
written once against the API chainrule shares with torch, and its inputs as NumPy arrays. The
generic tests in ``tests/ops/test_op_db.py`` run every sample on chainrule and on torch (values,
dtypes, contiguity, node names, gradients) and through float64 gradcheck/gradgradcheck;
``tests/test_op_coverage.py`` fails when a public function or Tensor method has no entry.

Adding an op is one ``OpInfo(...)`` appended to ``op_db`` in ``<family>.py``::

    OpInfo("hypot", "elementwise", methods=("hypot",),
           samples=lambda: [OpCase("hypot", lambda lib, a, b: lib.hypot(a, b), [randn(3, 4), randn(4, seed=1)])])

Families whose cases are generated as one matrix (conv, pool) or were written as one table keep
them in a cached ``_cases()`` and hand each entry its slice with ``select``.

Sample arrays are built only when ``samples()`` is called, so importing the registry is cheap.
NumPy only: torch, the oracle, is imported by the tests, never here.
"""

from __future__ import annotations

from .core import (
    OpCase,
    OpInfo,
    cached,
    distinct,
    noncontig,
    positive,
    randn,
    rng,
    select,
    thin_gradchecks,
)

__all__ = ["OpCase", "OpInfo", "op_db", "lookup", "select", "randn", "positive", "distinct", "noncontig", "rng",
           "thin_gradchecks", "cached", "FAMILIES"]

from . import (
    activation,
    bucketing,
    compat,
    complex,
    conv,
    creation,
    decompositions,
    elementwise,
    fft,
    fractional_pool,
    index,
    linalg,
    loss,
    masked,
    nn_functional,
    nn_missing,
    nn_toplevel,
    normalization,
    pool,
    reduce,
    sampling,
    scatter_views,
    shape,
    special,
    special_functions,
    special_polynomials,
    statistics,
    structural,
    triplet,
)

FAMILIES = (elementwise, reduce, shape, index, linalg, activation, pool, conv, creation, loss,
            normalization, nn_functional, special, bucketing, sampling, triplet, decompositions, nn_missing,
            structural, statistics, special_functions, special_polynomials, complex, fft, scatter_views, compat,
            fractional_pool, nn_toplevel, masked)

op_db: list[OpInfo] = [entry for family in FAMILIES for entry in family.op_db]


def lookup(name: str) -> OpInfo:
    """The entry for a public name, else for an alias, else for a Tensor method or operator."""
    for matches in (lambda e: name == e.name, lambda e: name in e.aliases, lambda e: name in e.methods):
        for entry in op_db:
            if matches(entry):
                return entry
    raise KeyError(f"no OpInfo entry for {name!r}: add one in chainrule/testing/opinfo/<family>.py")
