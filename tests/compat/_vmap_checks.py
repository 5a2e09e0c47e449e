"""Shared probes of chainrule.func.vmap's record-and-replay for the vmap test files: a function that counts
its calls (torch's vmap calls ``f`` once; chainrule's runs it again per slice where its replay cannot follow)."""


class Counting:
    """A function that counts its calls (torch's vmap calls it once)."""

    def __init__(self, func) -> None:
        self.func, self.calls = func, 0

    def __call__(self, *args):
        self.calls += 1
        return self.func(*args)


def mapped(lib, build, arrays, grad: int = 0, randomness: str = "error", seed: int | None = None):
    """vmap of ``build(lib)`` (or of its ``grad``-th derivative's sum of squares) over ``arrays``, after
    ``lib.manual_seed(seed)`` where a seed is given: (the result as an array, how many times the function ran)."""
    counted = Counting(build(lib))
    f = counted
    if grad:
        f = lib.func.grad(lambda *a: counted(*a).sum())
    if grad == 2:
        first = f
        f = lib.func.grad(lambda *a: (first(*a) ** 2).sum())
    inputs = [lib.tensor(a) for a in arrays]
    if seed is not None:
        lib.manual_seed(seed)
    out = lib.func.vmap(f, randomness=randomness)(*inputs)
    return out.detach().numpy(), counted.calls
