"""Random tensors and the Generator behind them (NumPy's PCG64, seeded by ``manual_seed``).

Streams differ from torch's, so seeded runs are reproducible within chainrule, not bit-equal
to torch's; tests compare against torch by copying data, never by sharing seeds.
"""

from __future__ import annotations

import builtins

import numpy as np

from .. import _dtype
from .._backend import array_module
from ..tensor import Tensor
from .creation import _dt, _finish, _shape_args, _sizes, _strided_only, _xp

__all__ = ["Generator", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
           "default_generator", "rand", "randn", "randint", "randperm", "rand_like", "randn_like",
           "randint_like", "normal", "bernoulli", "multinomial", "uniform_", "normal_",
           "bernoulli_", "random_", "exponential_"]
__not_methods__ = {"Generator", "manual_seed", "seed", "initial_seed", "get_rng_state",
                   "set_rng_state", "default_generator", "rand", "randn", "randint", "randperm",
                   "rand_like", "randn_like", "randint_like"}


class Generator:
    """torch.Generator: an independent random stream; ``manual_seed`` returns the generator."""

    def __init__(self, device="cpu") -> None:
        self._seed = 67280421310721
        self._rng = np.random.default_rng(self._seed)
        self._device_rngs = {}

    def manual_seed(self, seed: int) -> Generator:
        """Seed this generator with any 64-bit integer; a negative seed is taken modulo 2**64,
        so ``manual_seed(-1)`` and ``manual_seed(2**64 - 1)`` give the same stream, as in torch."""
        if not isinstance(seed, (builtins.int, np.integer)):
            raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
        seed = builtins.int(seed)
        if not -(2**63) <= seed < 2**64:
            raise ValueError(f"manual_seed: seed {seed} does not fit in 64 bits "
                             "(expected -2**63 <= seed < 2**64); Overflow when unpacking long long")
        self._seed = seed % 2**64
        self._rng = np.random.default_rng(self._seed)
        self._device_rngs = {}
        return self

    def seed(self) -> int:
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self._rng = np.random.default_rng(self._seed)
        self._device_rngs = {}
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        import json

        state = json.dumps(self._rng.bit_generator.state).encode()
        return Tensor._make(np.frombuffer(state, dtype=np.uint8).copy())

    def set_state(self, state: Tensor) -> Generator:
        import json

        self._rng.bit_generator.state = json.loads(bytes(state._data.astype(np.uint8)).decode())
        return self


default_generator = Generator()


def _rng(generator, xp=np) -> np.random.Generator:
    """The generator's stream on ``xp``'s device: draws for a device tensor are made there (no
    host-to-device copy), from a stream seeded like the host one but not equal to it (as torch's
    CUDA and CPU streams differ)."""
    generator = generator or default_generator
    if xp is np:
        return generator._rng
    rng = generator._device_rngs.get(xp)
    if rng is None:
        rng = generator._device_rngs[xp] = xp.random.default_rng(generator._seed)
    return rng


def manual_seed(seed) -> Generator:
    """Seed the default generator (and so every random op that is not given a generator).
    Like torch.manual_seed, anything ``int()`` accepts is converted first (1.5 -> 1, "3" -> 3)."""
    return default_generator.manual_seed(builtins.int(seed))


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(state: Tensor) -> None:
    default_generator.set_state(state)


def _float_dtype(dtype, op: str):
    dt = _dt(dtype)
    if dt.kind != "f":
        # torch's error type and wording for a continuous distribution of an integer dtype
        raise NotImplementedError(f'"{op}" not implemented for \'{_dtype.to_dtype(dtype).name}\' '
                                  "(rand and randn need a floating-point dtype)")
    return dt


def rand(*sizes, size=None, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
         pin_memory=False) -> Tensor:
    """Uniform on [0, 1)."""
    _strided_only(layout, "rand")
    dt = _float_dtype(dtype, "rand")
    xp = _xp(device)
    array = _rng(generator, xp).random(_shape_args(_sizes(sizes, size)), dtype=np.float64).astype(dt)
    return _finish(array, requires_grad)


def randn(*sizes, size=None, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False) -> Tensor:
    """Standard normal."""
    _strided_only(layout, "randn")
    dt = _float_dtype(dtype, "randn")
    xp = _xp(device)
    array = _rng(generator, xp).standard_normal(_shape_args(_sizes(sizes, size))).astype(dt)
    return _finish(array, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Integers uniform on [low, high); ``randint(high, size)`` is accepted too. int64 by default."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    xp = _xp(device)
    array = _rng(generator, xp).integers(low, high, size=tuple(size)).astype(_dt(dtype, _dtype.int64))
    return _finish(array, requires_grad)


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of 0..n-1, drawn on ``device``'s generator stream."""
    xp = _xp(device)
    if xp is np:
        array = _rng(generator).permutation(n)
    else:
        # on the device, with no host copy: the order that sorts n uniform keys (CuPy's Generator
        # has no permutation; torch's CUDA randperm sorts random keys too)
        array = xp.argsort(_rng(generator, xp).random(n), kind="stable")
    return _finish(array.astype(_dt(dtype, _dtype.int64)), requires_grad)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    return rand(tuple(input.shape), generator=generator, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    return randn(tuple(input.shape), generator=generator, dtype=dtype or input.dtype,
                 device=device or input.device, requires_grad=requires_grad)


def randint_like(input: Tensor, low, high=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device)


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Samples with the given mean(s) and std(s); tensors broadcast, as torch.normal. With float
    mean and std, ``size`` samples drawn on ``device`` (in ``dtype``)."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        m = mean._data if isinstance(mean, Tensor) else mean
        s = std._data if isinstance(std, Tensor) else std
        shape = np.broadcast_shapes(getattr(m, "shape", ()), getattr(s, "shape", ()))
        dt = (mean if isinstance(mean, Tensor) else std)._data.dtype
        return Tensor._make((m + s * _rng(generator, array_module(m, s)).standard_normal(shape)).astype(dt))
    xp = _xp(device)
    array = (mean + std * _rng(generator, xp).standard_normal(tuple(size))).astype(_float_dtype(dtype, "normal"))
    return _finish(array, requires_grad)


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    xp = array_module(input)
    probs = input._data if p is None else p
    return Tensor._make((_rng(generator, xp).random(input._data.shape) < probs).astype(input._data.dtype))


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """torch.multinomial: ``num_samples`` category indices per row of (unnormalised) weights."""
    data = input._data
    if data.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {_dtype_name(data)}")
    if data.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > data.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    xp = array_module(data)
    if xp is not np:
        return Tensor._make(_multinomial_on_device(xp, data, num_samples, replacement, _rng(generator, xp)))
    probs = np.atleast_2d(data.astype(np.float64))
    rng = _rng(generator)
    rows = []
    for p in probs:
        p = p / p.sum()
        rows.append(rng.choice(len(p), size=num_samples, replace=replacement, p=p))
    out = np.array(rows, dtype=np.int64)
    return Tensor._make(out if input._data.ndim == 2 else out[0])


def _dtype_name(array) -> str:
    return _dtype.to_dtype(array.dtype).name.capitalize().replace("Int64", "Long").replace("Int32", "Int")


def _multinomial_on_device(xp, data, num_samples: int, replacement: bool, rng):
    """multinomial drawn on the device, every row at once, with no host copy. The weights are
    not checked for negatives, NaN or a zero sum (that would make the host wait for the device;
    torch's CUDA kernel asserts on the device instead)."""
    probs = data.astype(xp.float64).reshape(-1, data.shape[-1])
    rows, classes = probs.shape
    if replacement:
        # inverse CDF: the first category whose cumulative weight exceeds u; the CDF is divided by
        # its own last entry so it ends at exactly 1 > u, and a zero-weight category never wins
        cdf = xp.cumsum(probs, axis=1)
        cdf /= cdf[:, -1:]
        u = rng.random((rows, num_samples))
        # one searchsorted over all rows: row r's CDF and draws shifted into [r, r + 1]
        shift = xp.arange(rows, dtype=xp.float64)[:, None]
        flat = xp.searchsorted((cdf + shift).reshape(-1), (u + shift).reshape(-1), side="right")
        out = flat.reshape(rows, num_samples) - xp.arange(rows)[:, None] * classes
    else:
        # exponential races: category c finishes at E_c / p_c with E_c ~ Exp(1); the first
        # num_samples finishers are a draw without replacement (torch's CUDA kernel does the same)
        races = -xp.log1p(-rng.random((rows, classes)))
        with np.errstate(divide="ignore"):
            races /= probs
        out = xp.argsort(races, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(xp.int64)
    return out if data.ndim == 2 else out[0]


# ---- in-place samplers, used by nn.init (always under no_grad, so no graph is involved)
def _fill_inplace(self: Tensor, values: np.ndarray) -> Tensor:
    self._data[...] = values.astype(self._data.dtype, copy=False)
    self._version_box[0] += 1
    return self


def uniform_(self: Tensor, a: builtins.float = 0.0, b: builtins.float = 1.0, *, generator=None) -> Tensor:
    return _fill_inplace(self, _rng(generator, array_module(self)).uniform(a, b, self._data.shape))


def normal_(self: Tensor, mean: builtins.float = 0.0, std: builtins.float = 1.0, *, generator=None) -> Tensor:
    return _fill_inplace(self, mean + std * _rng(generator, array_module(self)).standard_normal(self._data.shape))


def bernoulli_(self: Tensor, p: builtins.float = 0.5, *, generator=None) -> Tensor:
    return _fill_inplace(self, _rng(generator, array_module(self)).random(self._data.shape) < p)


def random_(self: Tensor, low: int = 0, high=None, *, generator=None) -> Tensor:
    if high is None:
        low, high = 0, low if low else 2**24
    return _fill_inplace(self, _rng(generator, array_module(self)).integers(low, high, self._data.shape))


def exponential_(self: Tensor, lambd: builtins.float = 1.0, *, generator=None) -> Tensor:
    return _fill_inplace(self, _rng(generator, array_module(self)).exponential(1.0 / lambd, self._data.shape))



def _fork_rng(enabled: builtins.bool):
    if not enabled:
        yield
        return
    generator = default_generator
    cpu_state = generator.get_state()
    # device streams (CuPy's generators) have no portable state to copy: the block gets fresh ones
    # (lazily seeded as after manual_seed), and the untouched originals are put back afterwards
    device_streams, generator._device_rngs = generator._device_rngs, {}
    try:
        yield
    finally:
        generator.set_state(cpu_state)
        generator._device_rngs = device_streams


def fork_rng(devices=None, enabled: builtins.bool = True, _caller: str = "fork_rng", _devices_kw: str = "devices",
             device_type=None):
    """torch.random.fork_rng: a context manager whose block's draws leave the random streams where
    they were: the CPU stream's state is saved and restored; the device streams of the default
    generator are set aside and the block draws from fresh ones. ``devices`` is accepted for
    torch's signature (every device stream is forked); ``enabled=False`` forks nothing."""
    import contextlib

    return contextlib.contextmanager(_fork_rng)(enabled)
