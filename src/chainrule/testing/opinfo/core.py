"""The registry's building blocks: OpCase, OpInfo and the sample-input helpers.

The family modules import these from here, and the package imports the families, so the
package is never imported half-built by one of its own modules.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["OpCase", "OpInfo", "select", "randn", "positive", "distinct", "noncontig", "rng",
           "thin_gradchecks", "cached"]


@dataclasses.dataclass
class OpCase:
    """One op on one set of sample inputs."""

    name: str
    fn: Callable
    inputs: Sequence  # NumPy arrays (float inputs are differentiated) or other constants
    grad: Sequence[bool] | None = None  # which inputs require grad (default: every float array)
    gradcheck: bool = True  # run the float64 finite-difference checks on this case
    gradgradcheck: bool = True
    atol: float = 1e-5
    rtol: float = 1e-4
    check_dtype: bool = True

    @property
    def id(self) -> str:
        shapes = ",".join(str(tuple(a.shape)) if isinstance(a, np.ndarray) else repr(a) for a in self.inputs)
        return f"{self.name}[{shapes}]"


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One public op: where it lives, the names it answers to, and its sample inputs."""

    name: str  # the public name under chainrule: "add", "linalg.solve", "nn.functional.layer_norm", "Tensor.T"
    family: str  # the op family: its module under chainrule/ops ("elementwise"), or nn.functional's group
    samples: Callable[[], list[OpCase]]
    methods: tuple[str, ...] = ()  # Tensor methods and operators it covers ("add", "__add__", "add_")
    aliases: tuple[str, ...] = ()  # other public names of the same function ("absolute" for "abs")
    supports_autograd: bool = True  # False: outputs carry no gradient (comparisons, integer results)
    supports_gradgrad: bool = True  # False: gradgradcheck is skipped for every sample

    def sample_cases(self) -> list[OpCase]:
        """The samples, with the gradient checks switched off where the op has no (second) derivative."""
        cases = self.samples()
        if not self.supports_autograd:
            cases = [dataclasses.replace(c, gradcheck=False, gradgradcheck=False) for c in cases]
        elif not self.supports_gradgrad:
            cases = [dataclasses.replace(c, gradgradcheck=False) for c in cases]
        return cases


def select(table: Callable[[], list[OpCase]], *patterns: str) -> Callable[[], list[OpCase]]:
    """A lazy ``samples`` callable: the cases of ``table()`` whose name matches a pattern.

    A pattern is a case name or an ``fnmatch`` glob (``"conv2d_s*"``); families whose cases are
    generated as one matrix keep that matrix in one function and hand each entry its slice.
    """

    def samples() -> list[OpCase]:
        return [c for c in table() if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]

    return samples


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def randn(*shape, seed: int = 0, low_gap: float = 0.0) -> np.ndarray:
    """Standard normal float64 samples; ``low_gap`` pushes values away from 0 (for kinks)."""
    x = rng(seed).standard_normal(shape)
    if low_gap:
        x = np.where(np.abs(x) < low_gap, np.sign(x + 1e-12) * (low_gap + np.abs(x)), x)
    return x


def positive(*shape, seed: int = 0) -> np.ndarray:
    return rng(seed).uniform(0.5, 2.0, shape)


def distinct(*shape, seed: int = 0) -> np.ndarray:
    """Values with no ties and gaps of at least 0.01 (max, sort and pooling need tie-free input)."""
    n = int(np.prod(shape)) if shape else 1
    values = rng(seed).permutation(n).astype(np.float64) * 0.1 - n * 0.05
    return values.reshape(shape)


def noncontig(array: np.ndarray) -> np.ndarray:
    """The same values laid out non-contiguously (a transposed copy viewed back)."""
    if array.ndim < 2:
        wide = np.empty((array.size * 2,) if array.ndim else (2,), dtype=array.dtype)
        view = wide[::2] if array.ndim else wide[0]
        view[...] = array
        return view
    return np.ascontiguousarray(array.swapaxes(0, -1)).swapaxes(0, -1)


def thin_gradchecks(cases: list[OpCase], step: int | None = None) -> list[OpCase]:
    """Keep the float64 gradient checks on every ``step``-th case only (on none when ``step`` is None).

    The other cases are still compared with torch, gradients included; big generated matrices
    (conv, pool) finite-difference a spread of their cases to keep the suite's time bounded.
    """
    return [c if step is not None and i % step == 0 else dataclasses.replace(c, gradcheck=False, gradgradcheck=False)
            for i, c in enumerate(cases)]


def cached(build: Callable[[], list[OpCase]]) -> Callable[[], list[OpCase]]:
    """Build a family's case table once, on first use."""
    return functools.cache(build)


# The family modules import the names above, so they are imported after them.
