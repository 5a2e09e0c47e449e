"""Random tensors and the Generators behind them: one on the CPU (torch's MT19937 stream) and one
per CUDA device (the device's array module: ``cupy.random`` on CuPy, the stand-in's on the stand-in).

As in torch, ``manual_seed`` seeds the CPU generator and every CUDA generator;
``cuda.manual_seed`` seeds only the current device's, so it never moves the CPU stream. A CUDA
generator's state is torch's (seed, offset) pair: ``offset`` counts the draws handed out since
seeding, and a device stream is started from ``(seed, offset)`` whenever the state is set or
read, so a state read before some draws replays them after ``set_state``.

The CPU stream is torch's (``mt19937_stream``): after the same ``manual_seed`` the CPU draws of
rand/uniform_, randn/normal_ (every floating dtype), randint/random_ and randperm are torch's, and
``get_rng_state`` is torch's 5056-byte state, loadable by either; so are bernoulli,
exponential_, cauchy_, log_normal_, geometric_, multinomial, and (in gamma_sampling and
count_sampling) _standard_gamma, _sample_dirichlet, poisson and binomial. CUDA streams differ
from torch's.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import math
import secrets
import warnings

import numpy as np

from .. import _dtype, _meta, _torch_function, _vmap_frames
from .._backend import array_module, cuda_available, cuda_module, has_expanded_dims, write_refusal, writeable
from .._backend import device as _device
from .._naming import in_torchs_words
from ..autograd import function as _function
from ..autograd.function import Function, without_derivative
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor, out_keyword_front, write_out
from . import cpu_sort_order
from ._arg_parser import check_float, check_int, int_list
from .creation import (
    _dt,
    _finish,
    _like_of_wrapper,
    _like_order,
    _shape_args,
    _sizes,
    _strided_only,
    _xp,
    empty_like,
    factory_args,
    factory_honours_out,
    out_dtype,
    refuse_dtype,
    sparse_like,
    write_factory_out,
)
from .elementwise import zeros_like_tensor
from .memory_format import preserved_strides
from .mt19937_stream import STATE_BYTES, MT19937Stream, from_double

__all__ = ["Generator", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
           "default_generator", "rand", "randn", "randint", "randperm", "rand_like", "randn_like",
           "randint_like", "normal", "bernoulli", "multinomial"]
__not_methods__ = {"Generator", "manual_seed", "seed", "initial_seed", "get_rng_state",
                   "set_rng_state", "default_generator", "rand", "randn", "randint", "randperm",
                   "rand_like", "randn_like", "randint_like"}
# methods only: torch has no torch.random_, torch.uniform_, torch.normal_, torch.bernoulli_ or
# torch.exponential_
__tensor_methods__ = {name: name for name in ("random_", "uniform_", "normal_", "bernoulli_", "exponential_")}
# torch.multinomial(..., out=) (BoTorch's batched_multinomial); the method takes no out=
__out_functions__ = {"multinomial": "long_samples", "bernoulli": "cast"}

# torch's default seed, for the CPU generator and each CUDA generator until one is seeded
DEFAULT_SEED = 67280421310721
_CUDA_STATE_BYTES = 16  # torch's CUDA generator state: seed and offset, two little-endian uint64


class Generator:
    """torch.Generator: an independent random stream on ``device`` ('cpu', or 'cuda'/'cuda:i'
    for a CUDA device's: its draws are made on that device, with no host copy).
    ``manual_seed`` returns the generator."""

    def __init__(self, device="cpu") -> None:
        object.__setattr__(self, "device", _generator_device(device))  # (read-only afterwards, as torch's)
        self._seed = DEFAULT_SEED
        if self.device.type == "cpu":
            self._rng = MT19937Stream(self._seed)
        else:
            self._offset = 0  # draws handed out since the device stream's (seed, offset) start
            self._stream = None  # (array module, its generator) once a draw has started one

    def manual_seed(self, seed: int) -> Generator:
        """Seed this generator with any 64-bit integer; a negative seed is taken modulo 2**64,
        so ``manual_seed(-1)`` and ``manual_seed(2**64 - 1)`` give the same stream, as in torch."""
        self._restart(_checked_seed(seed), 0)
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy; returns the seed."""
        self._restart(secrets.randbits(64), 0)  # any 64-bit seed from the OS's entropy, as torch
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        """The state as a CPU uint8 tensor (torch's ByteTensor), for ``set_state``."""
        if self.device.type == "cpu":
            return Tensor._make(self._rng.state_bytes(self._seed))
        # the next draw starts a device stream at exactly this (seed, offset), so that restoring
        # this state replays it (a live device stream's position cannot be read back)
        self._stream = None
        return Tensor._make(np.array([self._seed, self._offset], "<u8").view(np.uint8))

    def set_state(self, state: Tensor) -> Generator:
        if not isinstance(state, Tensor) or state._data.dtype != np.uint8 or type(state._data) is not np.ndarray:
            raise TypeError(f"RNG state must be a torch.ByteTensor (a CPU uint8 tensor from get_state()), got "
                            f"{_describe_state(state)}")
        raw = state._data.reshape(-1)
        if self.device.type == "cpu":
            if raw.size != STATE_BYTES:
                raise RuntimeError(f"Expected a CPUGeneratorImplState of size {STATE_BYTES} but found the input "
                                   f"RNG state size to be {raw.size}")
            self._seed = self._rng.load_state_bytes(raw)
            return self
        if raw.size != _CUDA_STATE_BYTES:
            raise RuntimeError(f"RNG state is wrong size: a CUDA generator's state is {_CUDA_STATE_BYTES} bytes "
                               f"(seed and offset), got {raw.size}")
        seed, offset = (builtins.int(v) for v in np.ascontiguousarray(raw).view("<u8"))
        self._restart(seed, offset)
        return self

    def clone_state(self) -> Generator:
        """A new generator on this one's device, starting where this one stands (torch's copy)."""
        return Generator(self.device).set_state(self.get_state())

    def get_offset(self) -> int:
        """A device generator's offset (here: the draws handed out since its seed); torch's CPU
        generator has none."""
        if self.device.type == "cpu":
            raise RuntimeError("CPU Generator does not use offset")
        return self._offset

    def set_offset(self, offset: int) -> Generator:
        if type(offset) is not builtins.int:  # (torch's check: a bool or float is no long either)
            raise RuntimeError(f"manual_offset expected a long, but got {type(offset).__name__}")
        if self.device.type == "cpu":
            raise RuntimeError("CPU Generator does not use offset")
        self._restart(self._seed, builtins.int(offset))
        return self

    def graphsafe_get_state(self) -> Generator:
        """torch's CUDA-graph-safe state: no generator here takes part in graph capture, so this is
        torch's refusal for a generator that does not (its CPU one's)."""
        raise NotImplementedError("graphsafe_get_state is not supported in this Generator")

    def graphsafe_set_state(self, state: Generator) -> Generator:
        if not isinstance(state, Generator):
            raise TypeError(f"expected a Generator, but got {type(state).__name__}")
        raise NotImplementedError("graphsafe_set_state is not supported in this Generator")

    def _restart(self, seed: int, offset: int) -> None:
        self._seed = seed
        if self.device.type == "cpu":
            self._rng.reseed(seed)
        else:
            self._offset, self._stream = offset, None

    def _device_stream(self, xp):
        """The device stream draws are made from (``xp.random``'s generator), started at (seed,
        offset) when there is none; each call is one draw and advances the offset."""
        stream = self._stream
        if stream is None or stream[0] is not xp:
            stream = self._stream = (xp, xp.random.default_rng([self._seed, self._offset]))
        self._offset += 1
        return stream[1]


# torch's Generator is its C class torch._C.Generator: its default repr and type() name that home
Generator.__module__ = "chainrule._C"
_dtype.as_torch_c_type(Generator, "torch._C.Generator")


def _checked_seed(seed) -> int:
    """A seed as the unsigned 64-bit integer torch keeps, or torch's error for one it refuses."""
    if not isinstance(seed, (builtins.int, np.integer)):
        raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
    seed = builtins.int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"manual_seed: seed {seed} does not fit in 64 bits "
                         "(expected -2**63 <= seed < 2**64); Overflow when unpacking long long")
    return seed % 2**64


# torch's refusal of a generator on a device type without one; the rest say "<TYPE> device type
# not an accelerator." (CUDA keeps chainrule's own message: the fix there is installing CuPy)
_NO_GENERATOR = {
    "mps": "Cannot execute getNewGenerator() without MPS backend.",
    "mtia": "Cannot execute getNewGenerator() without MTIA backend.",
    "xpu": "Cannot get XPU generator without ATen_xpu library.",
    "xla": "Cannot get XLA generator without torch_xla library.",
    "hpu": "Backend doesn`t support getNewGenerator()",
    "hip": "Backend doesn`t support getNewGenerator()",
}


def _generator_device(device) -> _device:
    if device is None:  # torch.Generator(device=None) is the CPU's, as torch.Generator()
        return _device("cpu")
    dev = _device(device)
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise RuntimeError(_NO_GENERATOR.get(dev.type, f"{dev.type.upper()} device type not an accelerator."))
    if not cuda_available():
        raise RuntimeError(f"Generator(device={str(dev)!r}) needs a CUDA GPU: CuPy is not installed or sees no "
                           "device (install it with pip install 'chainrule[cuda13]', see docs/gpu.md)")
    return dev if dev.index is not None else _device("cuda", _current_cuda_index())


def _describe_state(state) -> str:
    if isinstance(state, Tensor):
        return f"a {state.dtype} tensor on {state.device}"
    return type(state).__name__


def _current_cuda_index() -> int:
    return builtins.int(cuda_module().cuda.runtime.getDevice())


default_generator = Generator()
# torch seeds its default CPU generator from the operating system at start-up: an unseeded script
# draws other numbers on every run (a fresh Generator() keeps the fixed DEFAULT_SEED, as torch's)
default_generator.seed()


class _CudaGenerators:
    """The default generator of each CUDA device (torch.cuda.default_generators), made on first
    use and seeded with the last seed given to every device (``manual_seed``/``manual_seed_all``),
    as torch's lazily initialised CUDA generators are."""

    by_index: dict = {}
    seed_for_new = DEFAULT_SEED


def cuda_default_generator(index: int | None = None) -> Generator:
    """The default generator of CUDA device ``index`` (the current device when None)."""
    index = _current_cuda_index() if index is None else index
    generator = _CudaGenerators.by_index.get(index)
    if generator is None:
        generator = _CudaGenerators.by_index[index] = Generator(f"cuda:{index}")
        generator.manual_seed(_CudaGenerators.seed_for_new)
    return generator


def cuda_manual_seed_all(seed: int) -> None:
    """Seed every CUDA device's default generator, including those not made yet."""
    seed = _checked_seed(builtins.int(seed))
    _CudaGenerators.seed_for_new = seed
    for generator in _CudaGenerators.by_index.values():
        generator.manual_seed(seed)


def _rng(generator, xp=np):
    """The stream a draw on ``xp``'s device comes from: the CPU generator's for NumPy, else a
    CUDA generator's device stream (the current device's default generator unless one is given).
    A generator of the other device type is refused, as torch refuses it; so is any draw inside a
    vmap left in its default ``randomness="error"`` mode, as torch's vmap refuses it."""
    frames = _vmap_frames.running()
    if frames and any(frame.randomness == "error" for frame in frames):
        # a module built under vmap (its init draws) raises this in torch's words, without the
        # constructor's call in front (_naming): the complaint is the vmap's, not the arguments'
        raise in_torchs_words(RuntimeError(
            "vmap: called random operation while in randomness error mode. Please either use the 'same' or "
            "'different' randomness flags on vmap or perform the randomness operation out of vmap"))
    if xp is _meta.module:
        return _meta.random_stream  # shapes only: no generator advances, as on torch's meta device
    for frame in frames:  # (a draw whose batch's draw no replay stands for: the slices run one by one)
        if not frame.drawing_recorded:
            frame.drew_unrecorded = True
    if generator is not None:
        for frame in frames:
            frame.note_generator(generator)
    if xp is np:
        if generator is None:
            return default_generator._rng
        if generator.device.type != "cpu":
            raise RuntimeError(f"Expected a 'cpu' device type for generator but found '{generator.device.type}'")
        return generator._rng
    if generator is None:
        generator = cuda_default_generator(builtins.int(xp.cuda.runtime.getDevice()))
    elif generator.device.type != "cuda":
        raise RuntimeError(f"Expected a 'cuda' device type for generator but found '{generator.device.type}'")
    return generator._device_stream(xp)


def manual_seed(seed) -> Generator:
    """Seed the CPU generator and every CUDA device's (and so every random op that is not given
    a generator), as torch.manual_seed. Anything ``int()`` accepts is converted first (1.5 -> 1,
    "3" -> 3)."""
    generator = default_generator.manual_seed(builtins.int(seed))
    cuda_manual_seed_all(generator.initial_seed())
    return generator


def seed() -> int:
    """Seed the CPU generator from the operating system's entropy, and every CUDA device's with
    the same seed (torch.seed); returns it."""
    new_seed = default_generator.seed()
    cuda_manual_seed_all(new_seed)
    return new_seed


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(new_state: Tensor) -> None:
    default_generator.set_state(new_state)


def _float_dtype(dtype, kernel: str):
    """The NumPy dtype of a continuous distribution's draws; an integer or bool dtype is refused as
    torch's ``kernel`` refuses it."""
    dt = _dt(dtype)
    if dt.kind not in "fVc":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_dtype.scalar_name(_dtype.to_dtype(dtype))}\'')
    return dt


@factory_honours_out("rand")
def rand(*sizes, size=None, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
         pin_memory=False) -> Tensor:
    """Uniform on [0, 1)."""
    dtype, requires_grad = factory_args("rand", dtype, requires_grad, device, overloaded=True)
    _strided_only(layout, "rand")
    dt = _float_dtype(dtype, "check_uniform_bounds")
    xp = _xp(device)
    shape = _shape_args(_sizes(sizes, size))
    if dt.kind == "c":  # torch: real and imaginary parts each uniform on [0, 1)
        if xp is np:  # rand's values on view_as_real, in the parts' precision (24 bits for complex64)
            pairs = _rng(generator).random(shape + (2,), dtype=np.finfo(dt).dtype)
            return _finish(pairs.view(dt)[..., 0], requires_grad)
        return _finish(_complex_pairs(_rng(generator, xp).random(shape + (2,), dtype=np.float64), dt), requires_grad)
    if xp is np:  # torch's bits: 24 for float32 and below, 53 for float64
        drawn = _batch_drawn(lambda size: _rng(generator).random(size, dtype=dt), shape, requires_grad)
        return drawn if drawn is not None else _finish(_rng(generator).random(shape, dtype=dt), requires_grad)
    array = _rng(generator, xp).random(shape, dtype=np.float64).astype(dt)
    return _finish(array, requires_grad)


def _batch_drawn(draw, shape: tuple, requires_grad: builtins.bool) -> Tensor | None:
    """Inside a vmap under randomness="different", a random factory's result: the running slice's
    row of one draw of ``(B, *shape)`` for the batch (``_vmap_frames.slice_draw``, dropout's mask's
    mechanism), batched at that level as torch's batching rule makes it, so that the replay takes
    the batch's draw and the function runs once; None elsewhere (the usual draw)."""
    frames = _vmap_frames._frames
    if len(frames) != 1 or frames[0].randomness != "different":
        return None
    row = _vmap_frames.slice_draw(draw, shape)
    if row is None:
        return None
    made = Tensor._make(row)
    _vmap_frames.note_drawn(made)
    made._requires_grad = requires_grad
    return made


def _physical_layout_drawn(input: Tensor, values, requires_grad: builtins.bool) -> Tensor | None:
    """A random ``*_like`` of a batched tensor under randomness="different" (a slice cut along any dim, a
    view of it, an elementwise result of one, a transposed intermediate): torch's batching rule runs the op on that tensor (its batch dim
    moved to the front, a view), whose ``empty_like`` keeps its layout (made dense), and the in-place
    fill goes in memory order; ``values(t)`` is that fill of a tensor ``t`` of that layout
    (``uniform_values``, ``normal_values``), one draw for the batch (``_batch_drawn``). None elsewhere."""
    frames = _vmap_frames._frames
    if len(frames) != 1 or frames[0].randomness != "different":
        return None
    strides = _vmap_frames.physical_strides(input)
    if strides is None:
        return None
    shape = (frames[0].batch_size, *input.shape)
    order = sorted((d for d in builtins.range(len(shape)) if shape[d] != 1), key=lambda d: -abs(strides[d]))
    order += [d for d in builtins.range(len(shape)) if shape[d] == 1]

    def drawn(size):
        laid = np.empty(tuple(shape[d] for d in order), input._data.dtype).transpose(np.argsort(order))
        return values(Tensor._make(laid))

    return _batch_drawn(drawn, tuple(input.shape), requires_grad)


def _complex_pairs(pairs, dt):
    """(..., 2) float64 draws as complex numbers of dtype ``dt``: real from [..., 0], imag from [..., 1]."""
    return pairs.view(np.complex128)[..., 0].astype(dt)


@factory_honours_out("randn", resizes_first=True)
def randn(*sizes, size=None, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False) -> Tensor:
    """Standard normal."""
    dtype, requires_grad = factory_args("randn", dtype, requires_grad, device, overloaded=True)
    _strided_only(layout, "randn")
    dt = _float_dtype(dtype, "normal_kernel_cpu")
    xp = _xp(device)
    shape = _shape_args(_sizes(sizes, size))
    if dt.kind == "c":  # torch: variance 1 split evenly, real and imaginary parts each N(0, 1/2)
        if xp is np:  # normal_'s values on view_as_real, as torch's randn draws them
            pairs = _rng(generator).normal(0.0, 1 / math.sqrt(2), shape + (2,), dtype=np.finfo(dt).dtype)
            return _finish(pairs.view(dt)[..., 0], requires_grad)
        pairs = _rng(generator, xp).standard_normal(shape + (2,)) * np.sqrt(0.5)
        return _finish(_complex_pairs(pairs, dt), requires_grad)
    if xp is np:
        drawn = _batch_drawn(lambda size: _rng(generator).standard_normal(size, dtype=dt), shape, requires_grad)
        return drawn if drawn is not None else _finish(_rng(generator).standard_normal(shape, dtype=dt), requires_grad)
    array = _rng(generator, xp).standard_normal(shape).astype(dt)
    return _finish(array, requires_grad)


@factory_honours_out("randint")
def randint(low=None, high=None, size=None, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
            pin_memory=False) -> Tensor:
    """Integers uniform on [low, high); ``randint(high, size)`` is accepted too. int64 by default."""
    dtype, requires_grad = factory_args("randint", dtype, requires_grad, device, overloaded=True)
    _strided_only(layout, "randint")
    if dtype is not None and dtype.is_complex:
        raise RuntimeError("check_random_bounds handles only integral, floating-point and boolean types")
    if low is None:  # randint(high=n, size=s): torch's (high, size) signature called by keyword
        low = 0
    elif size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    low, high = check_int(low, "randint", "low"), check_int(high, "randint", "high")
    size = int_list(size, "randint", "size")
    _check_nonnegative(size)  # (torch makes the tensor before it draws: this comes first)
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    # torch's randint is random_ on a new tensor: from and to - 1 must be values of an integral dtype
    _check_integral_range(np.dtype(_dt(dtype, _dtype.int64)), low, high - 1)
    xp = _xp(device)
    if xp is np:  # (inside vmap under randomness="different": one draw for the batch, see _batch_drawn)
        dt = _dt(dtype, _dtype.int64)
        drawn = _batch_drawn(lambda shape: _rng(generator).integers(low, high, size=shape).astype(dt, copy=False),
                             tuple(size), requires_grad)
        if drawn is not None:
            return drawn
    array = _rng(generator, xp).integers(low, high, size=tuple(size))
    return _finish(array.astype(_dt(dtype, _dtype.int64), copy=False), requires_grad)


def _check_nonnegative(size: tuple) -> None:
    for n in size:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(size)}")


@factory_honours_out("randperm")
def randperm(n: int, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
             pin_memory=False) -> Tensor:
    """A random permutation of 0..n-1, drawn on ``device``'s generator stream."""
    dtype, requires_grad = factory_args("randperm", dtype, requires_grad, device, overloaded=True)
    _strided_only(layout, "randperm")
    refuse_dtype(dtype, "randperm", complex_too=True)
    n = check_int(n, "randperm", "n")
    _check_nonnegative((n,))
    _check_randperm_fits(n, _dt(dtype, _dtype.int64))
    xp = _xp(device)
    if xp is np:
        # inside vmap under randomness="different" one draw for the batch (_batch_drawn): torch's
        # batching rule draws the slices' permutations one after another
        dt = _dt(dtype, _dtype.int64)
        drawn = _batch_drawn(lambda shape: np.stack([_rng(generator).permutation(n) for _ in builtins.range(shape[0])]
                                                    ).reshape(shape).astype(dt, copy=False), (n,), requires_grad)
        if drawn is not None:
            return drawn
        array = _rng(generator).permutation(n)  # torch's CPU Fisher–Yates order
    else:
        # on the device, with no host copy: the order that sorts n uniform keys (CuPy's Generator
        # has no permutation; torch's CUDA randperm sorts random keys too)
        array = xp.argsort(_rng(generator, xp).random(n), kind="stable")
    return _finish(array.astype(_dt(dtype, _dtype.int64), copy=False), requires_grad)


def _check_randperm_fits(n: int, dt: np.dtype) -> None:
    """torch refuses a permutation whose largest value n - 1 its dtype cannot hold, before drawing:
    an integer dtype's maximum, and half precision's 2048 (every integer up to it exact)."""
    if dt.kind in "iu" and n - 1 > _integral_bounds(dt)[1]:
        raise RuntimeError(f"value cannot be converted to type {dt.name}_t without overflow")
    if dt == np.float16 and n > 2049:
        raise RuntimeError("n cannot be greater than 2049 for Half type.")


def _random_like(input: Tensor, memory_format, dtype, device, requires_grad, draw, fill_) -> Tensor:
    """A random ``*_like`` result as torch makes it: ``empty_like`` in the input's layout (preserve_format
    keeps a dense input's, see ``_like_order``), then the in-place sampler ``fill_`` over its memory. A
    row-major result is drawn directly: ``draw(shape)``."""
    if not input._data.size:  # nothing to draw: empty_like's layout (an empty input's strides, see _like)
        return empty_like(input, dtype=dtype, device=device, requires_grad=requires_grad, memory_format=memory_format)
    order = _like_order(input, memory_format)
    if order is None or order == tuple(builtins.range(len(order))):
        made = draw(tuple(input.shape))
        if _vmap_frames._frames and _vmap_frames.batched_value(made):  # (vmap's batch draw: see _batch_drawn)
            made._requires_grad = requires_grad
            return made
        return _finish(made._data, requires_grad)
    out = empty_like(input, dtype=dtype, device=device, memory_format=memory_format)
    fill_(out)
    return _finish(out._data, requires_grad)


def rand_like(input: Tensor, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None, pin_memory=False) -> Tensor:
    """rand_like(input, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
        memory_format=torch.preserve_format) -> Tensor

    Uniform samples on [0, 1) in a tensor of ``input``'s shape (and dtype, device unless given)
    (torch.rand_like)."""
    dtype, requires_grad = factory_args("rand_like", dtype, requires_grad, device, overloaded=True)
    _strided_only(layout, "rand_like")
    if _function.active_dispatch is not None:  # (a mode sees aten.rand_like, .generator with one)
        made = _like_of_wrapper("rand_like" if generator is None else "rand_like.generator", rand_like, (input,), dtype,
                                device, requires_grad, memory_format, generator)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    sparse_like(input, layout, memory_format, "uniform_")  # a sparse input: torch's refusal
    if _vmap_frames._frames and memory_format is None and dtype in (None, input.dtype) and device is None and \
            input._data.dtype in (np.float32, np.float64):
        drawn = _physical_layout_drawn(input, lambda t: uniform_values(t, 0.0, 1.0, generator), requires_grad)
        if drawn is not None:
            return drawn
    return _random_like(
        input, memory_format, dtype, device, requires_grad,
        lambda shape: rand(shape, generator=generator, dtype=dtype or input.dtype,
                           device=input.device if device is None else device),
        lambda out: uniform_(out, 0.0, 1.0, generator=generator))


def randn_like(input: Tensor, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None, pin_memory=False) -> Tensor:
    """randn_like(input, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
        memory_format=torch.preserve_format) -> Tensor

    Standard normal samples in a tensor of ``input``'s shape (and dtype, device unless given)
    (torch.randn_like)."""
    dtype, requires_grad = factory_args("randn_like", dtype, requires_grad, device, overloaded=True)
    _strided_only(layout, "randn_like")
    if _function.active_dispatch is not None:  # (a mode sees aten.randn_like, .generator with one)
        made = _like_of_wrapper("randn_like" if generator is None else "randn_like.generator", randn_like, (input,), dtype,
                                device, requires_grad, memory_format, generator)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    # a COO input: torch's refusal; a compressed one: normal samples at its entries
    made = sparse_like(input, layout, memory_format, "normal_", dtype, requires_grad,
                       lambda values: randn_like(values, generator=generator, dtype=dtype))
    if made is not None:
        return made
    if _vmap_frames._frames and memory_format is None and dtype in (None, input.dtype) and device is None and \
            input._data.dtype in (np.float32, np.float64):
        drawn = _physical_layout_drawn(input, lambda t: normal_values(t, 0.0, 1.0, generator), requires_grad)
        if drawn is not None:
            return drawn
    return _random_like(
        input, memory_format, dtype, device, requires_grad,
        lambda shape: randn(shape, generator=generator, dtype=dtype or input.dtype,
                            device=input.device if device is None else device),
        lambda out: normal_(out, 0.0, 1.0, generator=generator))


def randint_like(input: Tensor, low=None, high=None, *, generator=None, dtype=None, layout=None, device=None,
                 requires_grad=False, memory_format=None, pin_memory=False) -> Tensor:
    """randint_like(input, low=0, high, *, generator=None, dtype=None, layout=torch.strided, device=None,
        requires_grad=False, memory_format=torch.preserve_format) -> Tensor

    Random integers in [``low``, ``high``) in a tensor of ``input``'s shape (and dtype, device unless
    given) (torch.randint_like)."""
    # torch's overloads are (input, high) and (input, low, high): high alone may come by keyword
    # (Adahessian's randint_like(p, high=2)); low alone may not
    high_alone = low is None or high is None
    if high is None:
        if low is None:
            raise TypeError("randint_like() received an invalid combination of arguments - got (Tensor), "
                            "but expected one of:\n * (Tensor input, int low, int high)\n * (Tensor input, Tensor high)"
                            "\n * (Tensor input, int high)")
        low, high = 0, low
    elif low is None:
        low = 0
    given_high = high
    if high_alone and isinstance(high, Tensor):  # (input, Tensor high): any 0-d CPU tensor, its value truncated
        if high.ndim != 0 or high.device.type != "cpu":
            raise RuntimeError("high must be a scalar tensor and on CPU")
        high = builtins.int(high.item())
    _strided_only(layout, "randint_like")
    if _function.active_dispatch is not None:  # (a mode sees torch's overload: the bounds as given)
        made = _like_of_wrapper(_randint_like_overload(high_alone, given_high, generator), randint_like,
                                (input, given_high) if high_alone else (input, low, high), dtype, device,
                                requires_grad, memory_format, generator)
        if made is not _function.RUN_UNDISPATCHED:
            return made
    sparse_like(input, layout, memory_format, "random_.from")  # a sparse input: torch's refusal
    return _random_like(
        input, memory_format, dtype, device, requires_grad,
        lambda shape: randint(low, high, shape, generator=generator, dtype=dtype or input.dtype,
                              device=input.device if device is None else device),
        lambda out: random_(out, low, high, generator=generator))


def _randint_like_overload(high_alone: builtins.bool, high, generator) -> str:
    """torch's randint_like overload for the call: (input, high), its Tensor high, or (input, low, high),
    each with a generator its own."""
    if high_alone and isinstance(high, Tensor):
        return "randint_like.Tensor"
    if generator is not None:
        return "randint_like.generator" if high_alone else "randint_like.low_generator_dtype"
    return "randint_like" if high_alone else "randint_like.low_dtype"


def _batch_normal_sample(mean, std, generator) -> Tensor | None:
    """normal from a tensor mean and/or std inside one vmap under randomness="different": as torch's
    batching rule, one draw for the batch's shape, ``normal_(0, std)`` then ``+ mean`` (a tensor std:
    ``normal_(0, 1) * std + mean``), the noise the batch's draw (``_batch_drawn``) and the rest ops the
    replay runs on the batch; None elsewhere (the sample drawn by the Function, slice by slice)."""
    frames = _vmap_frames._frames
    if len(frames) != 1 or frames[0].randomness != "different":
        return None
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    dt = tensors[0]._data.dtype
    if any(type(t._data) is not np.ndarray or t._data.dtype != dt for t in tensors) or dt not in (np.float32, np.float64):
        return None
    shape = tuple(np.broadcast_shapes(*(tuple(t.shape) for t in tensors)))
    if isinstance(std, Tensor):
        noise = _batch_drawn(lambda size: _rng(generator).standard_normal(size, dtype=dt), shape, False)
    else:
        noise = _batch_drawn(lambda size: _rng(generator).normal(0.0, std, size, dtype=dt), shape, False)
    if noise is None:
        return None
    from ..autograd.grad_mode import no_grad

    with no_grad():
        return noise * std + mean if isinstance(std, Tensor) else noise + mean


def _draw_normal(mean, std, generator, dtype):
    """``mean + std * N(0, 1)`` on the arrays' device, broadcast, in ``dtype``. On the CPU as torch's
    normal: ``normal_(0, std)`` then ``+ mean`` for a float std, else ``normal_(0, 1) * std + mean``."""
    shape = np.broadcast_shapes(getattr(mean, "shape", ()), getattr(std, "shape", ()))
    xp = array_module(mean, std)
    if xp is not np:
        return (mean + std * _rng(generator, xp).standard_normal(shape)).astype(dtype)
    if np.dtype(dtype).kind == "c":  # normal_ on view_as_real: each part N(0, std²/2), the variance split evenly
        scale = 1.0 if isinstance(std, np.ndarray) else std
        parts = _rng(generator).normal(0.0, scale / math.sqrt(2), shape + (2,), dtype=np.finfo(dtype).dtype)
        noise = parts.view(dtype)[..., 0]
        return (noise * std + mean if isinstance(std, np.ndarray) else noise + mean).astype(dtype)
    if isinstance(std, np.ndarray):
        return (_rng(generator).standard_normal(shape, dtype=dtype) * std + mean).astype(dtype)
    return (_rng(generator).normal(0.0, std, shape, dtype=dtype) + mean).astype(dtype)


_NORMAL_RULE = "zero gradient for mean and std, as torch's (normal is not reparameterised: Normal.rsample is)"


class _NormalSample(Function):
    """A sample recorded from tensor mean and/or std; the three overloads differ in name,
    formula and which argument comes first (the tensor input, whose dtype the sample takes)."""
    label, rule = "normal", _NORMAL_RULE
    _array_forward = True

    @staticmethod
    def backward(ctx, grad):
        return zeros_like_tensor(grad)


class NormalTensorFloat(_NormalSample):
    node_name = "NormalBackward1"
    formula = "normal({0}, std)"

    @staticmethod
    def forward(ctx, mean, std, generator, sample=None):  # (sample: vmap's batch draw, _batch_normal_sample)
        return _draw_normal(mean, std, generator, mean.dtype) if sample is None else sample


class NormalFloatTensor(_NormalSample):
    node_name = "NormalBackward2"
    formula = "normal(mean, {0})"

    @staticmethod
    def forward(ctx, std, mean, generator, sample=None):
        return _draw_normal(mean, std, generator, std.dtype) if sample is None else sample


class NormalTensorTensor(_NormalSample):
    node_name = "NormalBackward3"
    formula = "normal({0}, {1})"
    forward = NormalTensorFloat.forward

    @staticmethod
    def backward(ctx, grad):
        zero = zeros_like_tensor(grad)
        return zero, zero  # the engine sums each to its input's shape


def _check_float_parameters(op: str, **values) -> None:
    """torch's parser's TypeError for a mean or std that is neither a tensor nor a real number (a
    str, a list), before the values are checked or anything is drawn."""
    for name, value in values.items():
        if not isinstance(value, Tensor):
            check_float(value, op, name)


def _check_std(std) -> None:
    """torch's refusal of a negative (or NaN) standard deviation, before anything is drawn."""
    if isinstance(std, Tensor):
        data = std._data
        if data.size and not bool((data >= 0).all()):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif not std >= 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, layout=None, device=None, pin_memory=False,
           requires_grad=False) -> Tensor:
    """Samples with the given mean(s) and std(s); tensors broadcast, as torch.normal. With float
    mean and std, ``size`` samples drawn on ``device`` (in ``dtype``). A sample from tensors that
    require grad is recorded (NormalBackward1/2/3) with torch's zero gradient for both."""
    if size is not None:  # only the float overload takes a size: torch's parser reads a 0-d tensor there as its number
        mean, std = (value.item() if isinstance(value, Tensor) and value.ndim == 0 and not value.requires_grad else value
                     for value in (mean, std))
    _check_float_parameters("normal", mean=mean, std=std)
    if isinstance(std, Tensor) and std._data.dtype.kind == "c":
        raise RuntimeError("normal expects standard deviation to be non-complex")
    _check_std(std)
    if isinstance(mean, Tensor) and mean._data.dtype.kind == "c" and mean.requires_grad and is_grad_enabled():
        raise RuntimeError("normal does not support automatic differentiation for outputs with complex dtype.")
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        if _vmap_frames._frames:
            _vmap_frames.refuse_same_randomness(mean, std)
        _tensor_overloads_only(mean, std, size, dtype=dtype, layout=layout, device=device, pin_memory=pin_memory,
                               requires_grad=requires_grad)
        # the samples take mean's dtype (std's when mean is a float): no kernel draws normals into integers
        _floating_only(mean if isinstance(mean, Tensor) else std, "normal_kernel_cpu")
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        sample = _batch_normal_sample(mean, std, generator) if _vmap_frames._frames else None
        drawn = {} if sample is None else {"generator": None, "sample": sample._data}
    if isinstance(mean, Tensor) and isinstance(std, Tensor):
        return NormalTensorTensor.apply(mean, std, **{"generator": generator, **drawn})
    if isinstance(mean, Tensor):
        return NormalTensorFloat.apply(mean, std=std, **{"generator": generator, **drawn})
    if isinstance(std, Tensor):
        return NormalFloatTensor.apply(std, mean=mean, **{"generator": generator, **drawn})
    size = int_list(size, "normal", "size", sized=False)  # torch's parser: ints only, not a single int
    if any(n < 0 for n in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(size)}: {list(size)}")
    _strided_only(layout, "normal")
    xp = _xp(device)
    dt = _float_dtype(dtype, "normal_kernel_cpu")
    if xp is np and dt.kind == "c":  # normal_ on view_as_real: each part N(mean, std²/2)
        pairs = _rng(generator).normal(mean, std / math.sqrt(2), tuple(size) + (2,), dtype=np.finfo(dt).dtype)
        return _finish(pairs.view(dt)[..., 0], requires_grad)
    if xp is np:
        drawn = _batch_drawn(lambda shape: _rng(generator).normal(mean, std, shape, dtype=dt), tuple(size),
                             requires_grad)
        return drawn if drawn is not None else _finish(_rng(generator).normal(mean, std, tuple(size), dtype=dt),
                                                       requires_grad)
    array = (mean + std * _rng(generator, xp).standard_normal(tuple(size))).astype(dt)
    return _finish(array, requires_grad)


_NORMAL_OVERLOADS = (
    " * (Tensor mean, Tensor std, *, torch.Generator generator = None, Tensor out = None)\n"
    " * (Tensor mean, float std = 1, *, torch.Generator generator = None, Tensor out = None)\n"
    " * (float mean, Tensor std, *, torch.Generator generator = None, Tensor out = None)\n"
    " * (float mean, float std, tuple of ints size, *, torch.Generator generator = None, Tensor out = None, "
    "torch.dtype dtype = None, torch.layout layout = None, torch.device device = None, bool pin_memory = False, "
    "bool requires_grad = False)\n")


def _tensor_overloads_only(mean, std, size, **factory_keywords) -> None:
    """torch's overloads taking a tensor mean or std have no size and none of a factory's
    keywords: its parser refuses them (those left at their defaults can't be told from absent)."""
    given = {name: value for name, value in factory_keywords.items() if value not in (None, False)}
    if size is None and not given:
        return
    got = [_dtype.parser_type_name(value) if isinstance(value, Tensor) else type(value).__name__
           for value in (mean, std)]
    got += [] if size is None else ["tuple"]
    got += [f"{name}={_keyword_type_name(name, value)}" for name, value in given.items()]
    raise TypeError(f"normal() received an invalid combination of arguments - got ({', '.join(got)}), but expected "
                    f"one of:\n{_NORMAL_OVERLOADS}")


def _keyword_type_name(name: str, value) -> str:
    """The type torch's parser prints for a factory keyword's value."""
    if name in ("dtype", "layout") or name == "device" and not isinstance(value, str):
        return f"torch.{name}"
    return type(value).__name__


def _normal_with_out(mean, std=1.0, size=None, *, out, **kwargs) -> Tensor:
    """torch.normal's ``out=``: from float mean and std a factory's (``out``'s dtype, resized
    silently); from tensors an op's output (written as any op's, with the resize warning)."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        return write_out(normal(mean, std, size, **kwargs), out, "normal")
    kwargs["dtype"] = out_dtype("normal", out, kwargs.get("dtype"))
    requires_grad = kwargs.pop("requires_grad", False)
    return write_factory_out(normal(mean, std, size, **kwargs), out, "aten::normal", requires_grad)


normal = out_keyword_front(normal, _normal_with_out)


class BernoulliSample(Function):
    """A draw from probabilities that require grad: recorded, with torch's zero gradient."""
    node_name = "BernoulliBackward0"
    label, rule, formula = "bernoulli", "zero gradient (a sample)", "bernoulli({0})"
    _array_forward = True

    @staticmethod
    def forward(ctx, probabilities, sample):
        return sample

    @staticmethod
    def backward(ctx, grad):
        return zeros_like_tensor(grad)


class BernoulliFloatSample(without_derivative("aten::bernoulli")):
    """``bernoulli(input, p)`` of an ``input`` that requires grad: torch records a node with no
    derivative (aten::bernoulli.p has none), whose backward raises rather than give a zero."""
    node_name = "torch::autograd::NotImplemented"
    label, rule, formula = "bernoulli", "none: torch defines no derivative, and backward raises", "bernoulli({0}, p)"

    @staticmethod
    def forward(ctx, input, sample):
        return sample


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """1 with probability ``input`` (or ``p``) per value. On the CPU torch's draws: a uniform of the
    input's precision (24 bits below float64) below each probability, or for a float ``p`` a
    double uniform below ``p``. Probabilities that require grad give a sample that does (with a
    zero gradient), as torch's."""
    if _vmap_frames._frames:
        _vmap_frames.refuse_same_randomness(input)
    if p is None:  # torch.bernoulli fills empty_like(input): the output's dtype is checked first
        _refuse_kernel(input, "bernoulli_tensor_cpu_self_", "c")
        _check_probabilities(input)
    else:
        _check_probability(p)
        _refuse_kernel(input, "bernoulli_scalar_cpu_", "c")
    sample = _bernoulli_sample(input, p, generator)
    if input.requires_grad:
        if p is None:
            return BernoulliSample.apply(input, sample=sample._data)
        return BernoulliFloatSample.apply(input, sample=sample._data)
    return sample


def _bernoulli_sample(input: Tensor, p, generator) -> Tensor:
    xp = array_module(input)
    data = input._data
    if xp is np:
        precision = np.float64 if p is not None or data.dtype == np.float64 else np.float32
        if data.flags.c_contiguous:  # (drawn in row-major order: one draw for vmap's batch)
            drawn = _batch_drawn(lambda size: _rng(generator).random(size, dtype=precision), data.shape, False)
            if drawn is not None:  # the comparison in ops, which the replay runs on the batch's draw
                return (drawn < (input if p is None else p)).to(input.dtype)
        uniforms = _rng(generator).random(data.shape, dtype=precision)
        return Tensor._make((uniforms < (data if p is None else p)).astype(data.dtype))
    probs = data if p is None else p
    return Tensor._make((_rng(generator, xp).random(data.shape) < probs).astype(data.dtype))


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """torch.multinomial: ``num_samples`` category indices per row of (unnormalised) weights."""
    data = input._data
    if data.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if data.dtype.kind not in "fV":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {_dtype.scalar_name(data.dtype)}")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > data.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if data.shape[-1] > 2 ** 24:  # torch's kernels index categories in float32, exact up to 2^24
        raise RuntimeError("number of categories cannot exceed 2^24")
    if _vmap_frames._frames:
        _vmap_frames.refuse_same_randomness(input)
    xp = array_module(data)
    if xp is not np:
        return Tensor._make(_multinomial_on_device(xp, data, num_samples, replacement, _rng(generator, xp)))
    if _vmap_frames._frames and (drawn := _multinomial_batch_drawn(input, num_samples, replacement, generator)) is not None:
        return drawn
    return Tensor._make(multinomial_on_cpu(data, num_samples, replacement, _rng(generator)))


def _multinomial_batch_drawn(input: Tensor, num_samples: int, replacement: builtins.bool, generator) -> Tensor | None:
    """Inside a vmap under randomness="different", multinomial as torch's batching rule runs it, once on
    the batch's rows ((B·rows, n)): the draws (a double uniform per sample with replacement, else one
    exponential race per weight) are one draw for the batch (``_vmap_frames.slice_draw``), and the
    categories they pick from the weights (``multinomial_picked``) an op that a vmap's replay runs on the
    batch, so the function runs once; a 1-d slice's races for a batch cut along its dim 1 fill that
    batch's memory in order, as torch's (no copy makes it row-major). None elsewhere."""
    frames = _vmap_frames._frames
    if len(frames) != 1 or frames[0].randomness != "different":
        return None
    data = input._data
    races, layout = not replacement or num_samples == 1, None
    if races and data.ndim == 1:  # (a 2-d slice's batch is reshaped to (B·rows, n): row-major whatever its layout)
        found = frames[0].storage_origin(input)
        if found is not None and found[1] % found[0].ndim:  # (the races fill the batch's (n, B) memory in order)
            batched = found[0]._data
            if type(batched) is not np.ndarray or batched.ndim != 2 or not batched.flags.c_contiguous:
                return None
            layout = (batched.shape, found[1] % 2)
        elif not data.flags.c_contiguous:
            return None
    if races:  # (the stream taken inside the draw: slice_draw's own, no draw the replay cannot stand for)
        exact = data.dtype.itemsize == 8

        def drawn(size):
            draw = from_double(_rng(generator).exponential_draws(1.0, size if layout is None else layout[0], exact),
                               data.dtype)
            return draw if layout is None else np.moveaxis(draw, layout[1], 0)

        row = _vmap_frames.slice_draw(drawn, data.shape)
    else:
        row = _vmap_frames.slice_draw(lambda size: _rng(generator).random(size), data.shape[:-1] + (num_samples,))
    if row is None:
        return None
    draws = Tensor._make(row)
    _vmap_frames.note_drawn(draws)
    out = multinomial_picked(input, draws, num_samples, replacement)
    _vmap_frames.note_drawn(out)
    if _function.tracing_ops:  # (a vmap's record: its replay picks the batch's from the batch's draws)
        _function.traced_elementwise(multinomial_picked, (input, draws, num_samples, replacement), out)
    return out


def multinomial_picked(input: Tensor, draws: Tensor, num_samples: int, replacement: builtins.bool) -> Tensor:
    """The categories ``draws`` pick from the weights ``input`` (..., n), row by row, the leading dims of
    the two broadcast (a vmap's batch in front): the largest ``num_samples`` of weight / race (races of
    the weights' shape), or per double uniform the first category whose cumulative weight reaches it."""
    data, found = input._data, draws._data
    n = data.shape[-1]
    lead = np.broadcast_shapes(data.shape[:-1], found.shape[:-1])
    rows = np.broadcast_to(data, lead + (n,)).reshape((-1, n))
    found = np.broadcast_to(found, lead + found.shape[-1:]).reshape((len(rows), -1))
    check_multinomial_weights(rows, num_samples, replacement)
    return Tensor._make(_picked(rows, found, num_samples, replacement).reshape(lead + (num_samples,)))


def _picked(rows: np.ndarray, draws: np.ndarray, num_samples: int, replacement: builtins.bool) -> np.ndarray:
    """multinomial's categories for 2-d ``rows`` of weights from ``draws``: exponential races of the rows'
    shape without replacement (or for one sample), else (rows, num_samples) double uniforms."""
    if not replacement or num_samples == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            keys = rows / draws
        # torch returns a fresh contiguous (rows, num_samples) tensor: neither argmax's added axis
        # (stride 0) nor a slice of the argsort may show through as strides
        if num_samples == 1:
            return np.argmax(keys, axis=1).astype(np.int64, copy=False).reshape(-1, 1)
        return np.ascontiguousarray(_top_keys(keys, num_samples), dtype=np.int64)
    out = np.empty((len(rows), num_samples), dtype=np.int64)
    for row, weights, uniforms in zip(out, rows, draws):
        row[:] = np.searchsorted(multinomial_cumulative_weights(weights), uniforms, side="left")
    return out


def multinomial_on_cpu(data: np.ndarray, num_samples: int, replacement: bool, stream) -> np.ndarray:
    """torch's CPU multinomial on a 1-d or 2-d array of weights, drawn from ``stream``: without
    replacement (or for one sample) the weights divided by exponential draws of their own dtype
    (in the memory order of ``empty_like(self)``, which ``.exponential_()`` fills: row-major for
    an expanded input), the largest ``num_samples`` keys first; with replacement per row the
    cumulative weights (summed in order, divided by their total, the last set to 1) and a double
    uniform per sample, the first category whose cumulative weight reaches it."""
    check_multinomial_weights(data, num_samples, replacement)
    rows = np.atleast_2d(data)
    if not replacement or num_samples == 1:
        exact = data.dtype.itemsize == 8
        # the races fill empty_like(weights): an expanded input's are laid out densely
        races = _in_memory_order(data, lambda shape: from_double(stream.exponential_draws(1.0, shape, exact),
                                                                   data.dtype),
                                 None if data.flags.c_contiguous else preserved_strides(data))
        out = _picked(rows, np.atleast_2d(races), num_samples, replacement)
    else:
        out = _picked(rows, stream.random((len(rows), num_samples)), num_samples, replacement)
    return out if data.ndim == 2 else out[0]


def _top_keys(keys: np.ndarray, num_samples: int) -> np.ndarray:
    """The indices of each row's ``num_samples`` largest keys in the order torch's ``topk`` gives
    them: zero weights all tie at key 0, and once the non-zero ones are drawn torch returns the
    zeros in its nth_element / partial_sort order, which ``cpu_sort_order`` replays."""
    out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    tied = cpu_sort_order.rows_with_ties(keys)
    if int(tied.sum()) * keys.shape[1] <= cpu_sort_order.REPLAY_LIMIT:
        for row in np.flatnonzero(tied):
            out[row] = cpu_sort_order.topk_order(keys[row].tolist(), num_samples, largest=True, sorted=True)
    return out


def multinomial_cumulative_weights(weights: np.ndarray) -> np.ndarray:
    """One row's cumulative weights as torch's with-replacement kernel makes them: summed in order
    in the weights' dtype (float32 for reduced precisions), divided by the total, the last set to
    exactly 1; returned as float64, in which torch compares them with its uniform draws."""
    cumulative = np.cumsum(weights, dtype=np.float32 if weights.dtype.itemsize < 4 else weights.dtype)
    cumulative /= cumulative[-1]
    cumulative[-1] = 1
    return cumulative.astype(np.float64)


def check_multinomial_weights(data: np.ndarray, num_samples: int, replacement: bool) -> None:
    """torch's checks on the weights, in its wording: the exponential path's checks whole; the
    with-replacement kernel's per entry (a NaN fails its ``>= 0`` test first)."""
    if not replacement and num_samples > data.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    rows = np.atleast_2d(data).astype(np.float64)
    if not replacement or num_samples == 1:
        if not np.all(np.isfinite(rows)) or np.any(rows < 0):
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if np.any(rows.sum(axis=1) == 0):
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        return
    for row in rows:
        negative, infinite = ~(row >= 0), np.isinf(row)
        if negative.any() or infinite.any():
            first_negative = np.argmax(negative) if negative.any() else len(row)
            if first_negative <= (np.argmax(infinite) if infinite.any() else len(row)):
                raise RuntimeError("invalid multinomial distribution (encountering probability entry < 0)")
            raise RuntimeError("invalid multinomial distribution (encountering probability entry = infinity or NaN)")
        if not row.sum() > 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")


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
        # u within half an ulp of 1 can round to r + 1 when shifted: the search then lands one
        # past the row's last category (a chance of about r·2⁻⁵³ a draw)
        xp.minimum(out, classes - 1, out=out)
    else:
        # exponential races: category c finishes at E_c / p_c with E_c ~ Exp(1); the first
        # num_samples finishers are a draw without replacement (torch's CUDA kernel does the same)
        races = -xp.log1p(-rng.random((rows, classes)))
        with np.errstate(divide="ignore"):
            races /= probs
        out = xp.argsort(races, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(xp.int64)
    return out if data.ndim == 2 else out[0]


# ---- in-place samplers (nn.init's, under no_grad; in the graph recorded as torch records them)
class RandomFill(Function):
    """``self`` filled in place with samples, recorded (as torch's UniformBackward0, BernoulliBackward1...)
    when ``self`` or the probabilities require grad: the samples depend on neither, so every input
    gets a zero gradient."""
    label, rule, formula = "random fill", "zero gradient (a sample)", "random fill({0})"
    _array_forward = True

    @staticmethod
    def forward(ctx, self, *probabilities, values):
        return values.astype(self.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return (zeros_like_tensor(grad),) * len(ctx.needs_input_grad)


def _fill_inplace(self: Tensor, draw, node_name: str, probabilities: Tensor | None = None) -> Tensor:
    """Fill ``self`` with ``draw()``'s values. While recording, a ``self`` (or ``probabilities``) that
    requires grad has the write recorded as torch's in-place ops are (a leaf refused before the draw,
    a view written through its base), under torch's node name for the fill."""
    if _vmap_frames._frames:
        _vmap_frames.refuse_different_inplace_randomness(self)
    inputs = (self,) if probabilities is None else (self, probabilities)
    if is_grad_enabled() and builtins.any(t._requires_grad for t in inputs):
        from .._methods import _inplace  # the in-place recording every op shares (it imports this module)

        return _inplace(self, lambda t: _function.name_node(
            RandomFill.apply(t, *inputs[1:], values=draw()), node_name))
    target = self._data
    if not writeable(target) or has_expanded_dims(target):
        # torch refuses an expanded view (MemOverlap::Yes) before drawing; into unfold windows
        # (TooHard) it draws for every element, each location keeping its last element's draw
        from .._methods import _overlapping_alias

        target = None if has_expanded_dims(self._data) else _overlapping_alias(self._data)
        if target is None:
            raise write_refusal(self._data)
    target[...] = draw().astype(self._data.dtype, copy=False)
    self._version_box[0] += 1
    return self


def _in_memory_order(data: np.ndarray, draw, strides: tuple | None = None):
    """``draw(shape)``'s values laid out as torch's CPU kernels fill a strided tensor: in memory
    order (outermost stride first), so a transposed tensor gets the draws a contiguous one would.
    Returned in ``data``'s own (logical) shape. ``strides``: those of the tensor torch fills, when
    it is not ``data`` itself but one made like it (dropout's ``empty_like(input)``)."""
    if data.flags.c_contiguous or data.ndim < 2:
        return draw(data.shape)
    strides = data.strides if strides is None else strides
    axes = sorted(range(data.ndim), key=lambda axis: -abs(strides[axis]))  # stable on ties
    values = draw(tuple(data.shape[axis] for axis in axes))
    return values.transpose(tuple(np.argsort(axes).tolist()))


def _refuse_kernel(self: Tensor, kernel: str, kinds: str) -> None:
    """torch's NotImplementedError for a random kernel with no version for ``self``'s dtype kind
    (most have none for complex: only uniform_ and normal_ fill view_as_real)."""
    if self._data.dtype.kind in kinds:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_dtype.scalar_name(self._data.dtype)}\'')


def _refuse_complex_bounds(self: Tensor, check: str) -> None:
    """random_ with bounds on a complex tensor: torch's bounds check refuses the dtype."""
    if self._data.dtype.kind == "c":
        raise RuntimeError(f"{check} handles only integral, floating-point and boolean types")


def _floating_only(self: Tensor, kernel: str) -> None:
    if self._data.dtype.kind not in _dtype.FLOAT_KINDS + "c":
        if array_module(self) is _meta.module:  # torch's meta kernels: uniform_ checks no dtype, normal_ its own way
            if kernel == "check_uniform_bounds":
                return
            raise RuntimeError(f"expected a floating-point or complex dtype, but got dtype=torch.{self.dtype.name}")
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_dtype.scalar_name(self.dtype)}\'')


def _asks_a_wrapper(fill):
    """An in-place random fill of a wrapper subclass (its values live in its attributes) goes to its
    handler as ``aten.<name>``, as torch's; ``fill`` otherwise."""
    @functools.wraps(fill)
    def filled(self: Tensor, *args, **kwargs) -> Tensor:
        if self._wrapper_strides is not None and _function.active_dispatch is not None and \
                _function.factory_dispatch(fill.__name__, fill, (self, *args), kwargs) is not _function.RUN_UNDISPATCHED:
            return self
        return fill(self, *args, **kwargs)

    return filled


def _float_arguments(*names: str):
    """Decorator: read a sampler's float arguments (uniform_'s ``from``/``to``, normal_'s
    ``mean``/``std``, ...) as torch's parser reads a double before the op runs: a number or a 0-d
    tensor that does not require grad, as a float; its TypeError otherwise, naming the argument and,
    when it was given positionally, its position (``x.uniform_(-eps, eps)`` with a (1, 1, 1) ``eps``
    is refused, not drawn from elementwise bounds)."""
    def decorate(sampler):
        @functools.wraps(sampler)
        def parsed(self: Tensor, *args, **kwargs) -> Tensor:
            op = sampler.__name__
            args = tuple(check_float(value, op, names[i], position=i + 1) if i < len(names) else value
                         for i, value in enumerate(args))
            for name in names:
                if name in kwargs:
                    kwargs[name] = check_float(kwargs[name], op, name)
            return sampler(self, *args, **kwargs)

        return parsed

    return decorate


def _from_to(op: str, keywords: dict, low, high) -> tuple:
    """torch names the bounds ``from`` and ``to`` (``x.uniform_(**{"from": 2, "to": 3})``), which
    Python can't spell as parameters: they arrive as keywords here."""
    for name in keywords:
        if name not in ("from", "to"):
            raise TypeError(f"{op}() got an unexpected keyword argument '{name}'")
    return keywords.get("from", low), keywords.get("to", high)


@_float_arguments("from", "to")
@_asks_a_wrapper
def uniform_(self: Tensor, a: builtins.float = 0.0, b: builtins.float = 1.0, /, *, generator=None,
             **from_to) -> Tensor:
    """uniform_(from=0, to=1, *, generator=None) -> Tensor

    Fills this tensor in place with samples uniform on [``from``, ``to``) (torch.Tensor.uniform_)."""
    # a and b are positional only: torch's binding takes its bounds as from= and to= alone (a= refused)
    a, b = _from_to("uniform_", from_to, a, b)
    _floating_only(self, "check_uniform_bounds")
    _check_uniform_bounds(self, a, b)
    return _fill_inplace(self, lambda: uniform_values(self, a, b, generator), "UniformBackward0")


_TYPE_META_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16"}


def _check_uniform_bounds(self: Tensor, low, high) -> None:
    """torch's check_uniform_bounds, on the real parts' dtype for a complex tensor."""
    real = self._data.real.dtype if self._data.dtype.kind == "c" else self._data.dtype
    if real.kind not in _dtype.FLOAT_KINDS:  # a meta integer tensor: torch's meta uniform_ checks nothing
        return
    largest = builtins.float(_dtype.finfo_of(real).max)
    for value, name in ((low, "from"), (high, "to")):
        if not -largest <= value <= largest:
            raise RuntimeError(f"{name} is out of bounds for {_TYPE_META_NAMES.get(real.name, real.name)}")
    if low > high:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={low:g} > to={high:g}")
    if high - low > largest:
        raise RuntimeError(f"uniform_ expects to-from <= std::numeric_limits<{_dtype.scalar_name(real)}>::max(), "
                           f"but found to={high:g} and from={low:g} which result in to-from to exceed the limit")


def uniform_values(self: Tensor, a, b, generator) -> np.ndarray:
    """What ``self.uniform_(a, b)`` fills in: on the CPU torch's values for the tensor's dtype."""
    xp = array_module(self)
    if xp is np:
        stream, data = _rng(generator), self._data
        if data.dtype.kind == "c":  # torch fills view_as_real: each real part, then its imaginary part
            real = data[..., None].view(data.real.dtype)
            parts = _in_memory_order(real, lambda shape: stream.uniform(a, b, shape, dtype=real.dtype))
            values = np.empty(data.shape, data.dtype)
            values.real, values.imag = parts[..., 0], parts[..., 1]
            return values
        return _in_memory_order(data, lambda shape: stream.uniform(a, b, shape, dtype=data.dtype))
    return a + (b - a) * _rng(generator, xp).random(self._data.shape)


@_float_arguments("mean", "std")
@_asks_a_wrapper
def normal_(self: Tensor, mean: builtins.float = 0.0, std: builtins.float = 1.0, *, generator=None) -> Tensor:
    """normal_(mean=0, std=1, *, generator=None) -> Tensor

    Fills this tensor in place with normal samples of the given ``mean`` and ``std``
    (torch.Tensor.normal_)."""
    _check_std(std)
    _floating_only(self, "normal_kernel_cpu")
    return _fill_inplace(self, lambda: normal_values(self, mean, std, generator), "NormalBackward0")


def normal_values(self: Tensor, mean, std, generator) -> np.ndarray:
    """What ``self.normal_(mean, std)`` fills in: on the CPU torch's values for the tensor's dtype
    (its 16-at-a-time path only for a contiguous tensor, as torch)."""
    xp = array_module(self)
    if xp is np:
        data, stream = self._data, _rng(generator)
        if data.dtype.kind == "c":  # torch fills view_as_real with N(mean, std²/2): the variance split evenly
            real = data[..., None].view(data.real.dtype)
            parts = _in_memory_order(real, lambda shape: stream.normal(
                mean, std / math.sqrt(2), shape, dtype=real.dtype, contiguous=data.flags.c_contiguous))
            values = np.empty(data.shape, data.dtype)
            values.real, values.imag = parts[..., 0], parts[..., 1]
            return values
        return _in_memory_order(data, lambda shape: stream.normal(mean, std, shape, dtype=data.dtype,
                                                                  contiguous=data.flags.c_contiguous))
    return mean + std * _rng(generator, xp).standard_normal(self._data.shape)


@_asks_a_wrapper
def bernoulli_(self: Tensor, p: builtins.float | Tensor = 0.5, *, generator=None) -> Tensor:
    """Fills ``self`` with 1 at probability ``p``: a float, or a tensor of probabilities that
    broadcasts to ``self``'s shape (torch's two overloads)."""
    xp = array_module(self)
    if isinstance(p, Tensor):
        _refuse_kernel(self, "bernoulli_tensor_cpu_self_", "c")
        _check_probabilities(p)
        probabilities = p.expand(self.shape)._data
        if xp is not np:
            return _fill_inplace(self, lambda: _rng(generator, xp).random(self._data.shape) < probabilities,
                                 "BernoulliBackward1", p)

        def draw():  # torch's CPU kernel draws a uniform of the probabilities' precision (24 bits below float64)
            precision = np.float64 if probabilities.dtype == np.float64 else np.float32
            stream = _rng(generator)
            return _in_memory_order(self._data, lambda shape: stream.random(shape, dtype=precision)) < probabilities

        return _fill_inplace(self, draw, "BernoulliBackward1", p)
    if isinstance(p, (str, bytes)) or p is None or isinstance(p, (tuple, list)):
        raise TypeError(f"bernoulli_() received an invalid combination of arguments - got "
                        f"({_dtype.parser_type_name(p)}), but expected one of:\n"
                        " * (Tensor p, *, torch.Generator generator = None)\n"
                        " * (float p = 0.5, *, torch.Generator generator = None)\n")
    p = _check_probability(p)
    _refuse_kernel(self, "bernoulli_scalar_cpu_", "c")
    # a double uniform below p, as torch's CPU kernel draws it
    return _fill_inplace(self, lambda: _in_memory_order(
        self._data, lambda shape: _rng(generator, xp).random(shape, dtype=np.float64) < p), "BernoulliBackward2")


def _check_probability(p) -> builtins.float:
    """A float probability, refused outside [0, 1] (nan too) as torch's ``bernoulli_`` refuses it."""
    p = builtins.float(p)
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p:g}")
    return p


def _check_probabilities(p: Tensor) -> None:
    """A tensor of probabilities: floating, each in [0, 1] (nan refused), as torch's CPU kernel
    checks them before drawing."""
    if p._data.dtype.kind not in _dtype.FLOAT_KINDS:
        raise NotImplementedError(f"\"bernoulli_tensor_cpu_p_\" not implemented for '{_dtype.scalar_name(p.dtype)}'")
    xp = array_module(p)
    if xp is np and not bool(((p._data >= 0) & (p._data <= 1)).all()):
        raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.  (Could this error message "
                           "be improved?  If so, please report an enhancement request to PyTorch.)")


@_asks_a_wrapper
def random_(self: Tensor, *bounds, **keywords) -> Tensor:
    """torch's three overloads: ``random_()`` (the dtype's whole range), ``random_(to)`` ([0, to))
    and ``random_(from, to)`` ([from, to), or from the dtype's largest exact integer when ``to``
    is None); the bounds positional or as ``from=``/``to=``, as torch's binding takes them. The
    arguments were checked against torch's three signatures (METHOD_SIGNATURES in _arg_parser.py):
    a call none of them takes never comes here."""
    generator = keywords.get("generator")
    named = [keywords[name] for name in ("from", "to") if name in keywords]
    given = tuple(None if value is None else builtins.int(value) for value in (*bounds, *named))
    xp = array_module(self)
    # torch's nodes: RandomBackward0 for random_(from, to), 1 for random_(to), 2 for random_()
    node_name = f"RandomBackward{2 - len(given)}"
    if not given:
        _refuse_kernel(self, "random_kernel_cpu", "c")
    if not given and xp is np:
        return _fill_inplace(self, lambda: _in_memory_order(
            self._data, lambda shape: _full_range_values(self._data.dtype, shape, _rng(generator))), node_name)
    if len(given) == 2:
        low, high = given
        dt = np.dtype(self._data.dtype)
        if high is not None and low >= high:
            raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
        _refuse_complex_bounds(self, "check_random_bounds" if high is not None else "random_from_to_impl")
        if high is None:  # from up to the dtype's largest exact integer
            high = (2 if dt.kind == "b" else builtins.int(np.iinfo(dt).max) + 1 if dt.kind in "iu"
                    else (1 << _dtype_digits(dt)) + 1)
        _check_integral_range(dt, low, high - 1)
    else:
        low, high = 0, given[0] if given else 2**24
        if given:
            if high <= 0:
                raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from=0 >= to={high}")
            _refuse_complex_bounds(self, "check_random_bounds")
            _check_integral_range(np.dtype(self._data.dtype), 0, high - 1)
    return _fill_inplace(self, lambda: _in_memory_order(
        self._data, lambda shape: _rng(generator, xp).integers(low, high, shape)), node_name)


# torch names an integral dtype by its C++ type in random_'s range errors
_CPP_INTEGRAL_NAMES = {"bool": "bool", "int8": "signed char", "uint8": "unsigned char", "int16": "short int",
                       "uint16": "short unsigned int", "int32": "int", "uint32": "unsigned int",
                       "int64": "long int", "uint64": "long unsigned int"}


def _check_integral_range(dt: np.dtype, low: int, highest: int) -> None:
    """torch's check_from_to_in_range: ``from`` and ``to - 1`` must be values of the dtype (the draws
    are written without wrapping); a floating dtype warns past its exact integers, ±2**digits."""
    if dt.kind in _dtype.FLOAT_KINDS:
        _check_floating_range(dt, low, highest)
        return
    if dt.kind not in "biu":
        return
    least, most = _integral_bounds(dt)
    for value, name in ((low, "from"), (highest, "to - 1")):
        if not least <= value <= most:
            raise RuntimeError(f"{name} is out of bounds for {_CPP_INTEGRAL_NAMES.get(dt.name, dt.name)}")


@functools.cache
def _integral_bounds(dt: np.dtype) -> tuple:
    """The least and largest value of a bool or integer dtype, as Python ints (np.iinfo costs
    ~1 us a call, twice in every randint)."""
    return (0, 1) if dt.kind == "b" else (builtins.int(np.iinfo(dt).min), builtins.int(np.iinfo(dt).max))


def _check_floating_range(dt: np.dtype, low: int, highest: int) -> None:
    type_name = _TYPE_META_NAMES.get(dt.name, dt.name)
    largest = builtins.float(_dtype.finfo_of(dt).max)
    for value, name in ((low, "from"), (highest, "to - 1")):
        if not -largest <= value <= largest:
            raise RuntimeError(f"{name} is out of bounds for {type_name}")
    digits = _dtype_digits(dt)
    for value, name, line in ((low, "from", 110), (highest, "to - 1", 111)):
        if not -(1 << digits) <= value <= 1 << digits:
            warnings.warn(f"{name} is out of bounds [-(2^{digits}), 2^{digits}]. Due to precision limitations "
                          f"{type_name} can support discrete uniform distribution only within this range. This "
                          "warning will become an error in version 1.7 release, please fix the code in advance "
                          "(Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/"
                          f"DistributionTemplates.h:{line}.)", UserWarning, stacklevel=_torch_function.user_stacklevel())


def _full_range_values(dt, shape, stream) -> np.ndarray:
    """torch's ``random_()``: [0, 2**mantissa] for floating dtypes, [0, max] for integers, a bit for
    bool; from random64 words for int64 and float64, 32-bit ones otherwise."""
    dt = np.dtype(dt)
    count = builtins.int(np.prod(shape))
    if dt == np.bool_:
        return (stream.words(count) & np.uint64(1)).astype(bool).reshape(shape)
    if dt.kind in "iu":
        span = builtins.int(np.iinfo(dt).max) + 1
    else:
        span = (1 << _dtype_digits(dt)) + 1
    draws = stream.words64(count) if dt in (np.int64, np.float64) else stream.words(count)
    return (draws % np.uint64(span)).astype(dt).reshape(shape)


def _dtype_digits(dt) -> int:
    """Significand bits (std::numeric_limits<T>::digits) of a floating dtype."""
    return {2: 11, 4: 24, 8: 53}[dt.itemsize] if dt.kind == "f" else 8  # bfloat16 has 8


def _continuous_only(self: Tensor, distribution: str, name: str) -> None:
    """torch's refusal to fill an integer, bool or complex tensor with a continuous distribution
    (only uniform_ and normal_ have complex kernels)."""
    if self._data.dtype.kind not in "fV":
        raise RuntimeError(f"{distribution} distribution is a continuous probability distribution. dtype must be a "
                           f"floating point but you specified {name}")


def _fill_from_doubles(self: Tensor, generator, draw_doubles, draw_on_device, node_name: str) -> Tensor:
    """Fill ``self`` in place: on the CPU with ``draw_doubles(stream, shape, exact)`` (torch's one
    double per value, in memory order, cast as torch casts), on a device with
    ``draw_on_device(rng, shape)``."""
    xp = array_module(self)
    if xp is np:
        dtype = self._data.dtype
        exact = dtype.itemsize == 8  # doubles only rounded to float32 or below need not be the C library's
        return _fill_inplace(self, lambda: _in_memory_order(
            self._data, lambda shape: from_double(draw_doubles(_rng(generator), shape, exact), dtype)), node_name)
    return _fill_inplace(self, lambda: draw_on_device(_rng(generator, xp), self._data.shape), node_name)


@_float_arguments("lambd")
@_asks_a_wrapper
def exponential_(self: Tensor, lambd: builtins.float = 1.0, *, generator=None) -> Tensor:
    """exponential_(lambd=1, *, generator=None) -> Tensor

    Fills this tensor in place with exponential samples of rate ``lambd`` (torch.Tensor.exponential_)."""
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd:g}")
    _continuous_only(self, "Exponential", _dtype.scalar_name(self._data.dtype))
    return _fill_from_doubles(self, generator, lambda stream, shape, exact: stream.exponential_draws(lambd, shape, exact),
                              lambda rng, shape: rng.exponential(1.0 / lambd, shape), "ExponentialBackward0")


@_float_arguments("median", "sigma")
@_asks_a_wrapper
def cauchy_(self: Tensor, median: builtins.float = 0.0, sigma: builtins.float = 1.0, *, generator=None) -> Tensor:
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma:g}")
    _continuous_only(self, "Cauchy", _CAUCHY_TYPE_NAMES.get(self._data.dtype.name, self._data.dtype.name))
    return _fill_from_doubles(self, generator, lambda stream, shape, exact: stream.cauchy_draws(median, sigma, shape, exact),
                              lambda rng, shape: median + sigma * _device_tan_of_centred_uniform(rng, shape), "CauchyBackward0")


def _device_tan_of_centred_uniform(rng, shape):
    """tan(π (u - 1/2)) on the device (CuPy's Generator has no standard_cauchy)."""
    u = rng.random(shape)
    return array_module(u).tan(np.pi * (u - 0.5))


def _device_log_normal(normals, mean, std):
    """exp(mean + std · z) of device normals (CuPy's Generator has no lognormal)."""
    return array_module(normals).exp(normals * std + mean)


# torch's Cauchy check names the C++ type (its Exponential check the scalar type)
_CAUCHY_TYPE_NAMES = {"int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
                      "uint8": "unsigned char", "bool": "bool", "complex64": "c10::complex<float>",
                      "complex128": "c10::complex<double>"}


@_float_arguments("mean", "std")
@_asks_a_wrapper
def log_normal_(self: Tensor, mean: builtins.float = 1.0, std: builtins.float = 2.0, *, generator=None) -> Tensor:
    if self._data.dtype.kind not in "fV":
        raise NotImplementedError(f'"log_normal_cpu" not implemented for \'{_dtype.scalar_name(self._data.dtype)}\'')
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std:g}")
    return _fill_from_doubles(self, generator, lambda stream, shape, exact: stream.log_normal_draws(mean, std, shape, exact),
                              lambda rng, shape: _device_log_normal(rng.standard_normal(shape), mean, std), "LogNormalBackward0")


@_float_arguments("p")
@_asks_a_wrapper
def geometric_(self: Tensor, p: builtins.float, *, generator=None) -> Tensor:
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p:g}")
    _refuse_kernel(self, "geometric_cpu", "bc")
    return _fill_from_doubles(self, generator, lambda stream, shape, exact: stream.geometric_draws(p, shape, exact),
                              lambda rng, shape: rng.geometric(p, shape), "GeometricBackward0")


@contextlib.contextmanager
def fork_rng(devices=None, enabled: builtins.bool = True, _caller: str = "fork_rng", _devices_kw: str = "devices",
             device_type=None):
    """torch.random.fork_rng: draws inside the block leave the random streams as they were: the
    CPU generator's and the default generators of the CUDA devices in ``devices`` (every device
    when None) are put back afterwards, even when the block raises. A forked device stream is set
    aside whole and the block draws from a fresh one started at the same (seed, offset), so the
    draws after the block are those of a run without it. ``enabled=False`` forks nothing."""
    if not enabled or device_type == "meta":
        yield
        return
    if devices is None:
        devices = range(_cuda_device_count())
        _warn_forking_every_device(len(devices), _caller, _devices_kw)
    generators = [cuda_default_generator(_device_index(d)) for d in devices]
    cpu_state = default_generator.get_state()
    saved = [(g._seed, g._offset, g._stream) for g in generators]
    for generator in generators:
        generator._stream = None
    try:
        yield
    finally:
        default_generator.set_state(cpu_state)
        for generator, (seed_, offset, stream) in zip(generators, saved):
            generator._seed, generator._offset, generator._stream = seed_, offset, stream


_fork_rng_warned_already = False


def _warn_forking_every_device(count: int, caller: str, devices_kw: str) -> None:
    """torch warns once per process when fork_rng, not told which devices, forks more than one GPU's
    generator (each fork initialises the device)."""
    global _fork_rng_warned_already
    if count <= 1 or _fork_rng_warned_already:
        return
    warnings.warn(
        f"CUDA reports that you have {count} available devices, and you have used {caller} without explicitly "
        "specifying which devices are being used. For safety, we initialize *every* CUDA device by default, which "
        "can be quite slow if you have a lot of CUDAs. If you know that you are only making use of a few CUDA "
        "devices, set the environment variable CUDA_VISIBLE_DEVICES or the "
        f"'{devices_kw}' keyword argument of {caller} with the set of devices you are actually using. For example, "
        "if you are using CPU only, set device.upper()_VISIBLE_DEVICES= or devices=[]; if you are using device 0 "
        "only, set CUDA_VISIBLE_DEVICES=0 or devices=[0].  To initialize all devices and suppress this warning, set "
        f"the '{devices_kw}' keyword argument to `range(torch.cuda.device_count())`.", UserWarning, stacklevel=4)
    _fork_rng_warned_already = True


def _cuda_device_count() -> int:
    return builtins.int(cuda_module().cuda.runtime.getDeviceCount()) if cuda_available() else 0


def _device_index(device) -> int:
    if isinstance(device, (builtins.int, np.integer)):
        return builtins.int(device)
    dev = _device(device)
    if dev.type != "cuda":
        raise ValueError(f"fork_rng: devices must be CUDA device indices, got {dev}")
    return dev.index if dev.index is not None else _current_cuda_index()
