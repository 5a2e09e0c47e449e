"""torch's CPU random stream: MT19937 seeded as torch seeds it, and torch's CPU draws made from it.

torch's CPU generator is a 32-bit Mersenne Twister seeded with ``init_genrand`` from the low 32
bits of the 64-bit seed (so seeds 5 and 2**32 + 5 give one stream). NumPy's ``MT19937`` bit
generator is the same engine, so its state is set to torch's seeded key and its raw 32-bit words
are torch's ``random()``; ``random64()`` is two words, the first the high half. On those words
the draws below repeat torch's CPU kernels (ATen's uniform_real, normal_fill, uniform_int_from_to,
randperm, and the one-double-per-value exponential, cauchy, log-normal and geometric kernels),
vectorised, so after ``manual_seed`` the values are torch's. torch's scalar kernels call the C
library's log, exp, ...; NumPy's own float64 kernels differ from it in the last bit for some
values, so those calls go through ``libm`` (NumPy's kernel where it was found to agree). The
rejection samplers (gamma_sampling, count_sampling) read double uniforms one at a time from a
``DoubleCursor`` (gamma runs the scalar normal sampler on them, with the stream's cached value).

Speed notes. float32 normal_fill repeats avx_mathfun's log and sincos rounding for rounding; each
fused multiply-add is four native NumPy passes (widen, multiply, add in float64, round to float32),
selects are integer masks (np.where and masked ufuncs cost ~10× a pass on random masks), and the
work runs on per-chunk buffers that stay in cache; those functions are only ever fed Box–Muller's
inputs (1 - u and 2π·u for the 2**24 float32 uniforms), on which they were checked against the
step-by-step version for every input. A float32 normal_ of a few values (16 to 496) reads those
transforms from a table made ahead on the stream's next words (``_NormalLookahead``): its ~120
NumPy calls are then paid once per table of up to 2048 words, not once per draw. randperm's
dependent swaps are resolved with one sort and pointer jumping (``_fisher_yates_order``) rather
than a Python loop.

``MT19937Stream`` answers the calls chainrule's random ops make of a NumPy ``Generator``
(``random``, ``uniform``, ``standard_normal``, ``integers``, ``permutation``); any other
distribution NumPy's Generator has (choice, hypergeometric, ...) comes from a NumPy Generator
seeded with words of this stream, so it is reproducible after ``manual_seed`` though not torch's.
"""

from __future__ import annotations

import ctypes
import math
import os
import struct
import sys
import threading

import numpy as np

MERSENNE_STATE_N = 624
# torch's CPU state (CPUGeneratorImplState): initial seed u64, left i32, seeded i32, next u64, the
# 624 state words as u64, normal_x, normal_y, normal_rho (f64), normal_is_valid (i32, padded to 8),
# then the cached float normal (f32) and its valid flag (bool), padded to 5056 bytes
STATE_BYTES = 5056
LEGACY_STATE_BYTES = 5048
_WORDS_AT = 24
_DOUBLE_NORMAL_AT = _WORDS_AT + 8 * MERSENNE_STATE_N  # normal_x, normal_y, normal_rho, normal_is_valid
_FLOAT_NORMAL_AT = LEGACY_STATE_BYTES  # next_float_normal_sample, is_next_float_normal_sample_valid
_VECTORISED_NORMAL_MIN = 16  # torch's normal_ fills 16 at a time from this size (contiguous tensors)
_PAIRS_IN_PYTHON = 8  # scalar normals (fewer than 16 values) of up to 8 pairs: Python floats, not arrays
_BLOCKS_PER_CHUNK = 2048  # Box–Muller temporaries of 64-128 KiB: they stay in cache and are reused
# a small float32 normal_ reads its transforms from a table of the stream's next words: 128 of them
# after a seed, a state set or another draw, twice as many each time a table is used up, up to 2048
_LOOKAHEAD_WORDS = (128, 2048)
_LOOKAHEAD_MAX_DRAW = 512  # the most words a draw takes from the table (a larger one transforms its own)


def seeded_key(seed: int) -> np.ndarray:
    """MT19937's ``init_genrand`` key for the low 32 bits of ``seed``, as torch's mt19937 seeds."""
    ahead = _ahead()
    if ahead is not None and hasattr(ahead[0], "_legacy_seeding"):
        # NumPy's init_genrand (RandomState's seeding, in C: ~1 us against ~550 us for the loop
        # below, most of a manual_seed), read from the engine's state memory
        engine, state, lock = ahead
        with lock:
            engine._legacy_seeding(seed & 0xFFFFFFFF)
            return state[:-1].copy()
    return _seeded_key_in_python(seed)


_LAST_SEEDED_KEY: list = [None, b""]  # [seed, its key's bytes]: a fresh generator's get_state asks again and again


def _seeded_key_bytes(seed: int) -> bytes:
    """``seeded_key(seed)``'s bytes, the last seed's kept: the test of whether a stream's key is still
    its seed's (get_state's) costs a compare, not a seeding."""
    if _LAST_SEEDED_KEY[0] != seed:
        _LAST_SEEDED_KEY[:] = seed, seeded_key(seed).tobytes()
    return _LAST_SEEDED_KEY[1]


def _seeded_key_in_python(seed: int) -> np.ndarray:
    key = np.empty(MERSENNE_STATE_N, dtype=np.uint32)
    word = seed & 0xFFFFFFFF
    for index in range(MERSENNE_STATE_N):  # 624 steps once per seeding: each depends on the last
        key[index] = word
        word = (1812433253 * (word ^ (word >> 30)) + index + 1) & 0xFFFFFFFF
    return key


class MT19937Stream:
    """One CPU generator's stream: the Mersenne Twister, plus torch's cached second Box–Muller
    value of its scalar normal sampler (part of torch's state)."""

    def __init__(self, seed: int) -> None:
        # NumPy's MT19937() costs ~80 us (it hashes OS entropy into 624 words, which reseed then
        # overwrites): a stream takes the engine of one that was collected where there is one
        # (a sampler's per-epoch stream, a Generator made per batch), every word of it reseeded
        try:
            self._engine = _SPARE_ENGINES.pop()
        except IndexError:
            self._engine = np.random.MT19937()
        self._lookahead = None  # a _NormalLookahead once a small float32 normal_ is drawn
        self.reseed(seed)

    def __del__(self) -> None:
        engine = self.__dict__.get("_engine")
        self._lookahead = None  # (it holds the engine too)
        # only an engine nothing else holds (this stream's dict, ``engine`` and the call's
        # argument) is handed on: one still in use elsewhere must not be reseeded under it
        if (engine is not None and _SPARE_ENGINES is not None and len(_SPARE_ENGINES) < _SPARE_MAX
                and sys.getrefcount(engine) == 3):
            _SPARE_ENGINES.append(engine)

    def __getstate__(self) -> dict:
        # a copy or a pickle makes its own lookahead and state view: these watch this engine's memory
        return {**self.__dict__, "_lookahead": None, "_memory": None}

    def _state_memory(self) -> np.ndarray:
        """The engine's state memory in place (``_state_memory``), made once per stream (~6 us a
        view: most of a small ``get_state``)."""
        memory = self.__dict__.get("_memory")
        if memory is None:
            memory = self._memory = _state_memory(self._engine)
        return memory

    def reseed(self, seed: int) -> None:
        # position 624: the next word twists the freshly seeded key first, as torch's left == 1
        if hasattr(self._engine, "_legacy_seeding"):
            # NumPy's init_genrand (RandomState's seeding, in C: ~3 us against ~550 us for the
            # loop in _seeded_key_in_python), which also sets the position to 624
            self._engine._legacy_seeding(seed & 0xFFFFFFFF)
        else:
            self._engine.state = {"bit_generator": "MT19937",
                                  "state": {"key": seeded_key(seed), "pos": MERSENNE_STATE_N}}
        self._fresh_seed = seed  # the key is this seed's, untwisted, while the position is 624
        self.cached_double_normal = None
        self.cached_float_normal = None

    def double_cursor(self, expected: int) -> DoubleCursor:
        """A cursor handing out this stream's double uniforms one at a time, for torch's rejection
        samplers (whose number of draws is known only as they run); ``close()`` leaves the stream
        just past the ones taken."""
        return DoubleCursor(self, expected)

    # ---- raw words
    def words(self, count: int) -> np.ndarray:
        """``count`` of torch's ``random()`` (32-bit words), as uint32."""
        # the engine's raw outputs are its 32-bit words, each in a uint64: the words a Generator's
        # full-range uint32 integers() would give, without its bounds handling (38.6 -> 4.5 µs
        # for 20 words), which every draw of a small tensor paid
        return self._engine.random_raw(count).astype(np.uint32)

    def words64(self, count: int) -> np.ndarray:
        """``count`` of torch's ``random64()``: two words each, the first the high half."""
        joined = self.words(2 * count).view(np.uint64)
        if sys.byteorder == "little":  # each pair read as one uint64 has its first word low: swap
            second = joined >> np.uint64(32)
            joined <<= np.uint64(32)
            joined |= second
        return joined

    # ---- torch's state bytes
    def state_bytes(self, initial_seed: int) -> np.ndarray:
        key, pos = self._key_and_position()
        untouched = (pos == MERSENNE_STATE_N and self._fresh_seed is not None
                     and key.tobytes() == _seeded_key_bytes(self._fresh_seed))
        out = bytearray(STATE_BYTES)
        # torch counts ``left`` down to 1 before the next twist; a freshly seeded engine has next 0
        struct.pack_into("<QiiQ", out, 0, initial_seed, MERSENNE_STATE_N + 1 - pos, 1, 0 if untouched else pos)
        np.frombuffer(out, "<u8", MERSENNE_STATE_N, _WORDS_AT)[:] = key
        if self.cached_double_normal is not None:
            struct.pack_into("<d", out, _DOUBLE_NORMAL_AT + 8, self.cached_double_normal)
            struct.pack_into("<i", out, _DOUBLE_NORMAL_AT + 24, 1)
        if self.cached_float_normal is not None:
            struct.pack_into("<f?", out, _FLOAT_NORMAL_AT, self.cached_float_normal, True)
        return np.frombuffer(out, dtype=np.uint8)  # (writable: the bytearray is its own)

    def load_state_bytes(self, raw: np.ndarray) -> int:
        """Load torch's state bytes (checked by the caller for size); returns the initial seed."""
        raw = np.ascontiguousarray(raw).tobytes()
        initial_seed = int(np.frombuffer(raw, "<u8", 1, 0)[0])
        left = int(np.frombuffer(raw, "<i4", 1, 8)[0])
        key = np.frombuffer(raw, "<u8", MERSENNE_STATE_N, _WORDS_AT).astype(np.uint32)
        next_word = int(np.frombuffer(raw, "<u8", 1, 16)[0])
        if not 1 <= left <= MERSENNE_STATE_N or next_word > MERSENNE_STATE_N:
            raise RuntimeError("Invalid mt19937 state")  # torch's check and words
        self._fresh_seed = initial_seed if next_word == 0 else None
        if _ahead() is not None:  # written in place: the .state setter costs ~30 us
            state = self._state_memory()
            state[:-1] = key
            state[-1] = MERSENNE_STATE_N + 1 - left
        else:
            self._engine.state = {"bit_generator": "MT19937",
                                  "state": {"key": key, "pos": MERSENNE_STATE_N + 1 - left}}
        valid = int(np.frombuffer(raw, "<i4", 1, _DOUBLE_NORMAL_AT + 24)[0])
        self.cached_double_normal = float(np.frombuffer(raw, "<f8", 1, _DOUBLE_NORMAL_AT + 8)[0]) if valid else None
        self.cached_float_normal = None
        if len(raw) == STATE_BYTES and raw[_FLOAT_NORMAL_AT + 4]:
            self.cached_float_normal = float(np.frombuffer(raw, "<f4", 1, _FLOAT_NORMAL_AT)[0])
        return initial_seed

    def saved_position(self):
        """The engine's state, for ``restore_position`` to put back: a copy of its memory (the
        ``.state`` property's dict costs ~30 us each way)."""
        return self._state_memory().copy() if _ahead() is not None else self._engine.state

    def restore_position(self, saved) -> None:
        if _ahead() is not None:
            np.copyto(self._state_memory(), saved)
        else:
            self._engine.state = saved

    def _key_and_position(self) -> tuple:
        """The engine's 624 key words (uint32) and its position."""
        if _ahead() is not None:  # read in place: the .state getter costs ~30 us
            state = self._state_memory()
            return state[:-1].copy(), int(state[-1])
        state = self._engine.state["state"]
        return state["key"], int(state["pos"])

    # ---- torch's draws
    def random(self, size=None, dtype=np.float64, out=None):
        """Uniform on [0, 1): 24 random bits a float32 (or half) value, 53 (of random64) a float64."""
        return _delivered(self.uniform(0.0, 1.0, size, dtype), out)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        """torch's uniform_(low, high): ``u * (high - low) + low`` in the dtype's accumulation type
        (float32 for float32 and below), fused (torch's kernel is compiled with FMA), rounded once
        more to ``dtype``."""
        dtype = np.dtype(dtype)
        count = math.prod(_shape(size))
        if dtype == np.float64:
            bits = self.words64(count)
            bits &= np.uint64((1 << 53) - 1)
            acc, scale = np.float64, 2.0 ** -53
        else:
            bits = self.words(count)
            bits &= np.uint32((1 << 24) - 1)
            acc, scale = np.float32, 2.0 ** -24
        # the bounds rounded to the accumulation type, float32 for float16 and bfloat16 too (not to
        # the half dtype first: that differed from torch's draws in 1 of 3 values)
        low, high = acc(low), acc(high)
        values = bits.astype(acc)
        values *= acc(scale)
        if low != 0 or high != 1:
            values = fused_multiply_add(values, high - low, low)
        values = values.astype(dtype, copy=False)
        if dtype.itemsize < 4:
            # a draw that rounds up to ``high`` in half or bfloat16 is ``low`` instead, as torch's
            # kernel keeps [low, high) half-open
            values[values == dtype.type(high)] = dtype.type(low)
        values = values.reshape(_shape(size))
        return values[()] if size is None else values

    def double_uniforms_below(self, size, threshold: float):
        """``random(size) < threshold`` (torch's ``bernoulli_(p)`` of a number: a double uniform below
        it), decided on each uniform's 53 random bits, without forming the doubles: ``u = bits·2**-53``
        exactly, so ``u < t`` exactly when ``bits < t·2**53`` (a power of two: exact), that is when
        ``bits < ceil(t·2**53)``. The same words are taken from the stream."""
        bits = self.words64(math.prod(_shape(size)))
        bits &= np.uint64((1 << 53) - 1)
        if not threshold > 0:  # (nan too: no uniform is below it)
            limit = 0
        else:  # (every uniform is below 1 or more: bits < 2**53 always)
            limit = math.ceil(min(threshold, 1.0) * 2.0 ** 53)
        # (compared after the reshape, as random()'s values were: a 0-d result is a NumPy bool)
        return bits.reshape(_shape(size)) < np.uint64(limit)

    def unfused_uniform(self, low, high, size) -> np.ndarray:
        """Doubles ``u * (high - low) + low`` of random64 uniforms, rounded twice: torch's
        uniform_real_distribution<double> in its kernels built without FMA (rrelu's)."""
        bits = self.words64(math.prod(_shape(size)))
        bits &= np.uint64((1 << 53) - 1)
        values = bits.astype(np.float64)
        values *= 2.0 ** -53
        values *= high - low
        values += low
        return values.reshape(_shape(size))

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return _delivered(self.normal(0.0, 1.0, size, dtype), out)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=np.float64, contiguous=True):
        """torch's normal_(loc, scale) filling a tensor of ``size`` (in memory order): from 16
        values on (contiguous), Box–Muller on blocks of 16 uniforms of the dtype; below that (or
        strided), one double-precision sample per value, each pair's second value cached."""
        shape = _shape(size)
        count = math.prod(shape)
        if not isinstance(loc, (int, float)) or not isinstance(scale, (int, float)):
            values = self.normal(0.0, 1.0, np.broadcast_shapes(np.shape(loc), np.shape(scale), shape), np.float64)
            return values * scale + loc
        dtype = np.dtype(dtype)
        if count >= _VECTORISED_NORMAL_MIN and contiguous:
            values = (self._normal_blocks(count, dtype, loc, scale) if dtype.itemsize >= 4
                      else self._normal_blocks_rounded_up(count, loc, scale).astype(dtype))
        else:
            values = from_double(fused_multiply_add(self._normal_scalars(count), scale, loc), dtype)
        values = values.reshape(shape)
        return values[()] if size is None else values

    def _normal_blocks(self, count: int, dtype, loc, scale) -> np.ndarray:
        """normal_fill: uniforms for every value, Box–Muller on each block of 16 (value j of a
        block with j + 8), and when ``count`` is not a multiple of 16 the last 16 values redrawn
        from 16 fresh uniforms and transformed again."""
        acc = np.float64 if dtype == np.float64 else np.float32
        whole = count - count % 16
        if acc is np.float32 and count <= _LOOKAHEAD_MAX_DRAW - 16:
            if self._lookahead is None:
                self._lookahead = _NormalLookahead.watching(self._engine)
            if self._lookahead:
                return self._lookahead.normal(count, loc, scale).astype(dtype, copy=False)
        if whole == count:
            blocks = self.uniform(0.0, 1.0, count, acc).reshape(-1, 16)
        else:
            # the 16 fresh uniforms follow the ``count`` drawn in the stream: drawn with them, and
            # transformed as one more row of the same call (a call costs ~120 NumPy calls)
            uniforms = self.uniform(0.0, 1.0, count + 16, acc)
            blocks = np.concatenate((uniforms[:whole], uniforms[count:])).reshape(-1, 16)
        rows = np.empty_like(blocks)
        scratch = _Float32Scratch(8 * min(len(blocks), _BLOCKS_PER_CHUNK)) if acc is np.float32 else None
        for start in range(0, len(blocks), _BLOCKS_PER_CHUNK):  # cache-sized temporaries
            chunk = slice(start, start + _BLOCKS_PER_CHUNK)
            scratch = scratch and scratch.resize(8 * len(blocks[chunk]))
            _box_muller_16(blocks[chunk], rows[chunk], acc, loc, scale, scratch)
        if whole == count:
            values = rows.reshape(-1)
        else:  # the last row's values go over the last 16 places
            values = np.empty(count, dtype=acc)
            values[:whole] = rows[:-1].reshape(-1)
            values[count - 16:] = rows[-1]
        return values.astype(dtype, copy=False)

    def _normal_blocks_rounded_up(self, count: int, loc, scale) -> np.ndarray:
        """Half and bfloat16's normal_ from 16 values: float32 uniforms for a whole number of
        blocks of 16, each block transformed by the float32 kernel, the last block's values
        written over the last 16 places (so a remainder costs 16 - count % 16 more uniforms, not
        16 as for float32); returned as float32, for the caller to round."""
        blocks = -(-count // 16)
        uniforms = self.uniform(0.0, 1.0, 16 * blocks, np.float32).reshape(blocks, 16)
        transformed = np.empty((blocks, 16), dtype=np.float32)
        _box_muller_16(uniforms, transformed, np.float32, loc, scale)
        values = transformed.reshape(-1)[:count].copy()
        values[count - 16:] = transformed[-1]
        return values

    def _normal_scalars(self, count: int) -> np.ndarray:
        """torch's scalar normal_distribution<double>: a cached value first, then pairs of random64
        uniforms (u1, u2) give r·cos θ and r·sin θ, r = sqrt(-2 log(1 - u2)), θ = 2π u1; an odd
        count leaves the last sin cached. The C library's log1p, cos and sin (Python's math), as
        torch's scalar code calls them: NumPy's own float64 kernels differ in the last bit."""
        values = np.empty(count, dtype=np.float64)
        start = 0
        if count and self.cached_double_normal is not None:
            values[0], start, self.cached_double_normal = self.cached_double_normal, 1, None
        pairs = (count - start + 1) // 2
        if pairs <= _PAIRS_IN_PYTHON:
            both = self._normal_pairs_in_python(pairs)
        else:
            u = self.uniform(0.0, 1.0, 2 * pairs, np.float64).reshape(pairs, 2)
            radius = np.sqrt(-2.0 * libm(math.log1p, -u[:, 1]))
            theta = 2.0 * np.pi * u[:, 0]
            both = np.stack([radius * libm(math.cos, theta), radius * libm(math.sin, theta)], axis=1).reshape(-1)
        if pairs:
            values[start:] = both[:count - start]
            if (count - start) % 2:
                self.cached_double_normal = float(both[-1])
        return values

    def _normal_pairs_in_python(self, pairs: int) -> list:
        """``_normal_scalars``' pairs one at a time on Python floats, the same operations in the
        same order (a random64 uniform is its 53 low bits times 2**-53, exact either way): for a
        few pairs (torch.randn(10)) the arrays' setup cost ~20 NumPy calls, these a few us."""
        words = self._engine.random_raw(4 * pairs).tolist()
        low_bits, two_pi, values = (1 << 53) - 1, 2.0 * math.pi, []
        for i in range(0, 4 * pairs, 4):
            u1 = ((words[i] << 32 | words[i + 1]) & low_bits) * 2.0 ** -53
            u2 = ((words[i + 2] << 32 | words[i + 3]) & low_bits) * 2.0 ** -53
            radius = math.sqrt(-2.0 * math.log1p(-u2))
            theta = two_pi * u1
            values += (radius * math.cos(theta), radius * math.sin(theta))
        return values

    # ---- torch's one-double-per-value kernels (exponential_, cauchy_, log_normal_, geometric_):
    # each value a double computed with the C library's functions, cast to the tensor's dtype by
    # the caller (``from_double``)
    def exponential_draws(self, lambd, size, exact: bool = True) -> np.ndarray:
        """-1/λ · log1p(-u) of a double uniform u per value."""
        return (-1.0 / lambd) * libm(math.log1p, -self.uniform(0.0, 1.0, size, np.float64), exact)

    def cauchy_draws(self, median, sigma, size, exact: bool = True) -> np.ndarray:
        """median + sigma · tan(π (u - 1/2)), the multiply-add fused as torch's kernel is compiled."""
        return fused_multiply_add(libm(math.tan, np.pi * (self.uniform(0.0, 1.0, size, np.float64) - 0.5), exact),
                                  sigma, median)

    def log_normal_draws(self, mean, std, size, exact: bool = True) -> np.ndarray:
        """exp of the scalar normal sampler's mean + std · z (its cache taken and left as torch's)."""
        count = math.prod(_shape(size))
        normals = fused_multiply_add(self._normal_scalars(count), std, mean)
        return libm(math.exp, normals, exact).reshape(_shape(size))

    def geometric_draws(self, p, size, exact: bool = True) -> np.ndarray:
        """ceil(log(u) / log1p(-p)) of a double uniform u per value (trials up to the first success)."""
        return np.ceil(libm(math.log, self.uniform(0.0, 1.0, size, np.float64), exact) / math.log1p(-p))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        """torch's random_(low, high): ``word % (high - low) + low``, a random64 word when the range
        reaches 2**28 (torch 2.13's CPU kernel; measured: 2**28 - 1 takes a 32-bit word, 2**28 a 64-bit
        one, in every integer and double dtype), else a 32-bit one. ``integers(n)`` is [0, n), as NumPy's."""
        if high is None:
            low, high = 0, low
        low, high = int(low), int(high) + bool(endpoint)
        span = high - low
        shape = _shape(size)
        count = math.prod(shape)
        if span < 2**28 and -2**63 <= low and high <= 2**63:
            # the common draw (randint(0, 10, (16,)): 3.4 -> 1.6 us): the engine's raw words, each a
            # 32-bit word in a uint64 (see ``words``), reduced in place, are int64 values as they are
            values = self._engine.random_raw(count)
            values %= np.uint64(span)
            values = values.view(np.int64)
            if low:
                values += low
            if dtype is not np.int64:
                values = values.astype(dtype, copy=False)
            return values[0].item() if size is None else values.reshape(shape)
        draws = self.words64(count) if span >= 2**28 else self.words(count)
        draws %= draws.dtype.type(span)
        if high > 2**63:  # past int64: Python ints
            values = np.asarray(draws.astype(object) + low)
        else:
            values = draws.astype(np.int64)
            values += low
        values = values.astype(dtype, copy=False).reshape(shape)
        return values[()].item() if size is None else values

    def permutation(self, x):
        """torch's CPU randperm(n): a Fisher–Yates pass swapping i with i + random() % (n - i);
        from n ≥ 2**32 / 20 torch's inside-out variant on random64 words. An array is permuted
        along its first axis by such an order."""
        if not isinstance(x, (int, np.integer)):
            x = np.asarray(x)
            return x[self.permutation(len(x))]
        return randperm_order(self, int(x))

    def shuffle(self, x) -> None:
        x[...] = x[self.permutation(len(x))]

    def __getattr__(self, name):
        # other distributions (gamma, poisson, binomial, choice, ...): NumPy's, from a Generator
        # seeded with four words of this stream, so they follow manual_seed
        if name.startswith("_"):
            raise AttributeError(name)
        seeded = np.random.Generator(np.random.PCG64(self.words(4).astype(np.uint32)))
        return getattr(seeded, name)


class _NormalLookahead:
    """float32 normal_fill's transforms of a stream's next words, made in one pass, for draws of a
    few values (randn(64) made ~120 NumPy calls on its own 64 words).

    Box–Muller's float32 kernel transforms each uniform on its own: the radius from 1 - u[j] of a
    block's first eight, cos and sin of 2π·u[j + 8] of its last eight, and which a word becomes
    depends only on where a draw starts. So every word ahead gets all three, and a draw gathers
    the ones its blocks use and multiplies them, as ``_box_muller_16_float32`` does on those words
    (the same elementwise steps, so the same bits). The words ahead come from a second engine set
    to the stream's state (one shared by all streams, ``_ahead()``); the stream's own engine moves
    only by the words each draw uses. The table is good while that engine's state (its 624 words and
    position, read in place) is the one the last draw left: anything else that moved or set it
    (another draw, a seed, set_state) makes a new table, of the smallest size again."""

    def __init__(self, engine) -> None:
        self._engine, self._state = engine, _state_memory(engine)  # the stream's engine, its state memory
        self._left_at = None  # the stream's state bytes where the table's unused words start
        self._size = self._cursor = 0  # the table's words, and the first unused one
        self._scratch = None  # the table (floats 2, 3 and 4) and the buffers it is made in
        self._rows = {}  # count (not a multiple of 16) -> the positions of its blocks' words

    @classmethod
    def watching(cls, engine):
        """A lookahead on ``engine``, or False where NumPy's MT19937 state memory is not the
        mt19937_state layout (the 624 key words, then the position) that ``.state`` reads back."""
        return _ahead() is not None and cls(engine)

    def normal(self, count: int, loc, scale) -> np.ndarray:
        """``_normal_blocks``' float32 values for ``count`` (16 or more, below the lookahead's
        limit), taking the same words from the stream."""
        needed = count if count % 16 == 0 else count + 16
        if self._state.tobytes() != self._left_at:
            self._transform_ahead(needed, _LOOKAHEAD_WORDS[0])
        elif self._cursor + needed > self._size:
            self._transform_ahead(needed, min(2 * self._size, _LOOKAHEAD_WORDS[1]))
        start, self._cursor = self._cursor, self._cursor + needed
        self._engine.random_raw(needed)
        self._left_at = self._state.tobytes()
        radius, cos, sin = self._scratch.floats[2:5]
        if count % 16 == 0:  # the blocks are the words in order: views of the table
            radius, cos, sin = (a[start:start + count].reshape(-1, 16) for a in (radius, cos, sin))
            radius, cos, sin = radius[:, :8], cos[:, 8:], sin[:, 8:]
        else:
            first, second = self._rows.get(count) or self._row_positions(count)
            radius, cos, sin = radius.take(first + start), cos.take(second + start), sin.take(second + start)
        rows = np.empty((len(radius), 16), dtype=np.float32)
        for half, trig in ((rows[:, :8], cos), (rows[:, 8:], sin)):
            if scale == 1 and loc == 0:
                np.multiply(radius, trig, out=half)
            else:
                product = np.multiply(radius, trig)
                _fma_into(half, product, _widened_constant(scale), _widened_constant(loc),
                          np.empty(product.shape, _f64))
        if count % 16 == 0:
            return rows.reshape(-1)
        values = np.empty(count, dtype=np.float32)
        values[:count - count % 16] = rows[:-1].reshape(-1)
        values[count - 16:] = rows[-1]
        return values

    def _row_positions(self, count: int) -> tuple:
        # the whole blocks' words, then the 16 fresh ones after the ``count`` drawn (as _normal_blocks)
        whole = count - count % 16
        words = np.concatenate((np.arange(whole, dtype=np.intp), np.arange(count, count + 16, dtype=np.intp)))
        words = words.reshape(-1, 16)
        positions = self._rows[count] = (np.ascontiguousarray(words[:, :8]), np.ascontiguousarray(words[:, 8:]))
        return positions

    def _transform_ahead(self, needed: int, size: int) -> None:
        """The radius (scratch float 2), cos (3) and sin (4) of the stream's next ``size`` words
        (``needed`` at least), with the steps and buffers of ``_box_muller_16_float32``."""
        size = max(size, needed)
        ahead, ahead_state, lock = _ahead()
        with lock:  # (one engine serves every stream's table)
            np.copyto(ahead_state, self._state)
            words = ahead.random_raw(size).astype(np.uint32)
        words &= np.uint32((1 << 24) - 1)  # uniform()'s float32 values: 24 bits times 2**-24
        uniforms = words.astype(np.float32)
        uniforms *= np.float32(2.0 ** -24)
        scratch = self._scratch = _Float32Scratch(size) if self._scratch is None else self._scratch.resize(size)
        u1, theta, radius, cos, sin = scratch.floats[:5]
        np.subtract(_ONE, uniforms, out=u1)
        np.multiply(_TWO_PI, uniforms, out=theta)
        _log_float32_into(u1, radius, scratch)
        radius *= _MINUS_TWO
        np.sqrt(radius, out=radius)
        _sincos_float32_into(theta, sin, cos, scratch)
        self._size, self._cursor = size, 0
        self._left_at = self._state.tobytes()


_AHEAD: list = []  # [(engine, its state memory, lock)] once made, [None] where the layout differs
_SPARE_ENGINES: list = []  # the MT19937 engines of collected streams, for new streams to take
_SPARE_MAX = 8


def _fresh_lock_in_child() -> None:
    # a fork (a DataLoader worker) taken while another thread held the lock would leave the
    # child's copy held forever; the child's engine is its own, so a new lock is safe
    if _AHEAD and _AHEAD[0] is not None:
        engine, state, _ = _AHEAD[0]
        _AHEAD[0] = (engine, state, threading.Lock())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)


def _ahead():
    """The engine every lookahead draws its words ahead on, with its state memory and a lock;
    None where NumPy's MT19937 state memory is not laid out as expected (checked once, here)."""
    if not _AHEAD:
        engine = np.random.MT19937(2013)
        engine.random_raw(700)  # past a twist: a position and key words that are not the seed's
        state, known = _state_memory(engine), engine.state["state"]
        laid_out = int(state[-1]) == int(known["pos"]) and np.array_equal(state[:-1], known["key"])
        _AHEAD.append((engine, state, threading.Lock()) if laid_out else None)
    return _AHEAD[0]


def _state_memory(engine) -> np.ndarray:
    """NumPy MT19937 ``engine``'s state struct in place, as 625 uint32: key[624], then pos."""
    words = ctypes.c_uint32 * (MERSENNE_STATE_N + 1)
    return np.ctypeslib.as_array(words.from_address(engine.ctypes.state_address))


class DoubleCursor:
    """Double uniforms (random64, 53 bits) drawn ahead into the list ``values`` (``grow()``
    appends another block) for a sampler that reads them by its own index, or one at a time
    (``uniform()``). ``close(taken)`` puts the engine back and redraws exactly the words of the
    uniforms used."""

    def __init__(self, stream: MT19937Stream, expected: int) -> None:
        self.stream = stream
        self._start = stream.saved_position()
        self._block = max(int(expected), 64)
        self.values = stream.uniform(0.0, 1.0, self._block, np.float64).tolist()

        self.taken = 0  # read by ``uniform()``

    def grow(self) -> list:
        self.values.extend(self.stream.uniform(0.0, 1.0, self._block, np.float64).tolist())
        return self.values

    def uniform(self) -> float:
        """The next uniform, for samplers that take them one call at a time."""
        if self.taken == len(self.values):
            self.grow()
        self.taken += 1
        return self.values[self.taken - 1]

    def close(self, taken: int | None = None) -> None:
        self.stream.restore_position(self._start)
        self.stream.words(2 * (self.taken if taken is None else taken))


def _box_muller_16(blocks: np.ndarray, out: np.ndarray, acc, loc, scale, scratch=None) -> None:
    """normal_fill_16 on rows of 16 uniforms, into ``out``: value j and j + 8 from u1 = 1 - u[j],
    u2 = u[j + 8]. float32 takes torch's vectorised kernel's log and sincos (the cephes
    polynomials of avx_mathfun.h), whose results the libm's correctly rounded ones differ from in
    the last bit; float64 torch's scalar loop, on the C library's functions."""
    if acc is np.float32:
        _box_muller_16_float32(blocks, out, scratch or _Float32Scratch(8 * len(blocks)), loc, scale)
        return
    # float64 calls the C library's log, cos and sin (NumPy's own kernels differ in the last bit)
    radius = libm(math.log, np.subtract(1.0, blocks[:, :8]))
    radius *= -2.0
    np.sqrt(radius, out=radius)
    theta = np.multiply(2.0 * np.pi, blocks[:, 8:])
    cos = libm(math.cos, theta)
    sin = libm(math.sin, theta)
    for half, trig in ((out[:, :8], cos), (out[:, 8:], sin)):
        trig *= radius
        half[...] = trig if scale == 1 and loc == 0 else fused_multiply_add(trig, scale, loc)


_f32 = np.float32
_f64 = np.float64


def _float32_constant(value) -> np.ndarray:
    """``value`` rounded to float32, as a 0-d float32 array: NumPy's ufuncs take a 0-d array of the
    other operand's dtype at about half the per-call cost of a NumPy scalar (2.9 against 4.0-6.9 us
    on 32 values), which is most of the cost of a small draw."""
    return np.array(value, _f32)


def _widened_constant(value) -> np.ndarray:
    """``value`` rounded to float32, as a 0-d float64 array: a factor or addend of the float64
    passes inside ``_fma_into``."""
    return np.array(_f32(value), _f64)


_LOG_POLYNOMIAL = [_widened_constant(c) for c in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1,
                                                  -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                                                  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)]
_COS_POLYNOMIAL = [_widened_constant(c) for c in (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)]
_SIN_POLYNOMIAL = [_widened_constant(c) for c in (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)]
# π/4 in three parts: the first two multiply in float32, the third inside a fused multiply-add
_PI_OVER_4_PARTS = [_float32_constant(-0.78515625), _float32_constant(-2.4187564849853515625e-4),
                    _widened_constant(-3.77489497744594108e-8)]
_ONE, _HALF, _MINUS_HALF, _MINUS_TWO = (_float32_constant(c) for c in (1, 0.5, -0.5, -2))
_TWO_PI = _float32_constant(2.0 * np.pi)  # 2π rounded to float32 first, as torch
_SQRT_HALF = _float32_constant(0.707106781186547524)
_LN2_HIGH, _LN2_LOW = _float32_constant(0.693359375), _float32_constant(-2.12194440e-4)
_FOUR_OVER_PI = _float32_constant(1.27323954473516)
_SIGN_BIT_SHIFT = np.array(29, np.int32)  # bit 2 (value 4) of an octant moved to the float32 sign bit
# the integer operands of the bit manipulations, 0-d arrays of their arrays' dtypes for the same reason
_INT32 = {value: np.array(value, np.int32) for value in (1, 2, 4, ~1)}
_UINT32 = {value: np.array(value, np.uint32) for value in (23, 0x807FFFFF, 0x3F000000)}
_EXPONENT_BIAS = _float32_constant(126)


class _Float32Scratch:
    """Flat temporaries for one chunk of the float32 transform, made once and reused by every
    chunk, so each step writes into memory that is already in cache."""

    def __init__(self, size: int) -> None:
        self.wide = np.empty(size, _f64)  # the exact float64 product inside each fused multiply-add
        self.widened = np.empty(size, _f64)  # a float32 factor used in several multiply-adds, widened once
        self.floats = [np.empty(size, _f32) for _ in range(7)]
        self.ints = np.empty(size, np.int32)
        self.more_ints = np.empty(size, np.int32)
        self.mask = np.empty(size, bool)

    def resize(self, size: int) -> _Float32Scratch:
        return self if size == len(self.wide) else _Float32Scratch(size)


def _fma_into(out, a, b, c, wide):
    """``out = a * b + c`` for float32 values, rounded once: ``a`` widened to float64 times ``b``
    (a ``_widened_constant``, or float32 values already widened) is exact, and the float64 sum is rounded to
    float32 as it is stored. Native float64 passes and plain casts: NumPy's mixed-dtype loops
    cost about twice as much."""
    np.copyto(wide, a)
    wide *= b
    wide += c
    np.copyto(out, wide, casting="same_kind")
    return out


def _box_muller_16_float32(blocks: np.ndarray, out: np.ndarray, scratch: _Float32Scratch, loc, scale) -> None:
    rows = blocks.shape[0]
    u1, theta, radius, cos, sin = (a.reshape(rows, 8) for a in scratch.floats[:5])
    np.subtract(_ONE, blocks[:, :8], out=u1)
    np.multiply(_TWO_PI, blocks[:, 8:], out=theta)
    _log_float32_into(u1.reshape(-1), radius.reshape(-1), scratch)
    radius *= _MINUS_TWO
    np.sqrt(radius, out=radius)
    _sincos_float32_into(theta.reshape(-1), sin.reshape(-1), cos.reshape(-1), scratch)
    for half, trig in ((out[:, :8], cos), (out[:, 8:], sin)):
        if scale == 1 and loc == 0:
            np.multiply(radius, trig, out=half)
        else:
            np.multiply(radius, trig, out=trig)
            _fma_into(trig, trig, _widened_constant(scale), _widened_constant(loc), scratch.wide.reshape(rows, 8))
            half[...] = trig


def _log_float32_into(x: np.ndarray, out: np.ndarray, scratch: _Float32Scratch) -> np.ndarray:
    """Natural log of normal positive float32 values (here 1 - u ≥ 2**-24) as avx_mathfun's
    log256_ps computes it, with the multiply-adds fused as torch's build fuses them: x = m·2^e with
    m in [√½, √2), then log(m) by a degree-9 polynomial in m - 1 and e·ln 2 added in two parts.
    Reads ``x`` (flat, float32) and writes ``out``; its temporaries are the scratch's floats 3, 5
    and 6, ints, mask, wide and widened."""
    wide, widened, mask = scratch.wide, scratch.widened, scratch.mask
    exponent, m, y, m_squared = scratch.floats[5], scratch.floats[6], scratch.floats[3], out
    bits = scratch.ints.view(np.uint32)
    np.right_shift(x.view(np.uint32), _UINT32[23], out=bits)
    np.subtract(bits, _EXPONENT_BIAS, out=exponent, dtype=_f32)  # small integers, exact in float32
    np.bitwise_and(x.view(np.uint32), _UINT32[0x807FFFFF], out=bits)
    bits |= _UINT32[0x3F000000]
    mantissa = bits.view(_f32)  # in [0.5, 1)
    np.less(mantissa, _SQRT_HALF, out=mask)
    np.subtract(exponent, mask, out=exponent, dtype=_f32)
    np.subtract(mantissa, _ONE, out=m)
    # below √½ m - 1 + m, else m - 1 + 0: a multiply by the mask, as a select (np.where, or a
    # masked ufunc) costs ten times as much on random masks
    np.multiply(mantissa, mask, out=y, dtype=_f32)
    m += y
    np.copyto(widened, m)
    _fma_into(y, m, _LOG_POLYNOMIAL[0], _LOG_POLYNOMIAL[1], wide)
    for coefficient in _LOG_POLYNOMIAL[2:]:
        _fma_into(y, y, widened, coefficient, wide)
    y *= m
    np.multiply(m, m, out=m_squared)
    tail = mantissa  # the mantissa is spent: its buffer takes e·(-2.12e-4)
    np.multiply(exponent, _LN2_LOW, out=tail)
    np.copyto(widened, m_squared)
    _fma_into(y, y, widened, tail, wide)
    # the last two multiply-adds have products exact in float32 (a power of two; |e| ≤ 24 times
    # ln 2's 9-bit high part), so fused or not they round once, and plain float32 steps do
    m_squared *= _MINUS_HALF
    y += m_squared
    y += m
    np.multiply(exponent, _LN2_HIGH, out=out)
    out += y
    return out


def _sincos_float32_into(x: np.ndarray, sin: np.ndarray, cos: np.ndarray, scratch: _Float32Scratch) -> None:
    """sin and cos of non-negative float32 values (Box–Muller's angles) as avx_mathfun's
    sincos256_ps computes them: reduced by the nearest even multiple j of π/4 (in three parts),
    then cephes' sin and cos polynomials, swapped and signed by j. Writes ``sin`` and ``cos``
    (flat); its temporaries are the scratch's floats 5 and 6, ints, wide and widened."""
    wide, widened, octant, flips = scratch.wide, scratch.widened, scratch.ints, scratch.more_ints
    reduced, z = scratch.floats[5], scratch.floats[6]
    np.multiply(x, _FOUR_OVER_PI, out=reduced)  # 4/π, truncated to an integer
    np.copyto(octant, reduced, casting="unsafe")
    octant += _INT32[1]
    octant &= _INT32[~1]
    np.copyto(z, octant, casting="unsafe")  # exact: small integers
    # j ≤ 8 has 4 bits and the first two parts of π/4 8 and 11: those products are exact in
    # float32, so their multiply-adds round once without fusing; the third part's is fused
    np.multiply(z, _PI_OVER_4_PARTS[0], out=reduced)
    reduced += x
    np.multiply(z, _PI_OVER_4_PARTS[1], out=cos)
    reduced += cos
    _fma_into(reduced, z, _PI_OVER_4_PARTS[2], reduced, wide)
    np.multiply(reduced, reduced, out=z)
    np.copyto(widened, z)
    _fma_into(cos, z, _COS_POLYNOMIAL[0], _COS_POLYNOMIAL[1], wide)
    _fma_into(cos, cos, widened, _COS_POLYNOMIAL[2], wide)
    cos *= z
    np.multiply(z, _HALF, out=sin)
    np.copyto(wide, cos)
    wide *= widened
    wide -= sin  # fma(c·z, z, -(z/2))
    np.copyto(cos, wide, casting="same_kind")
    cos += _ONE
    _fma_into(sin, z, _SIN_POLYNOMIAL[0], _SIN_POLYNOMIAL[1], wide)
    _fma_into(sin, sin, widened, _SIN_POLYNOMIAL[2], wide)
    sin *= z
    np.copyto(widened, reduced)
    _fma_into(sin, sin, widened, reduced, wide)
    # j & 2 (octants 2 and 6) swaps the polynomials, by an xor under an all-ones mask (cheaper
    # than a select); sin's sign flips with j & 4, cos's with ~(j - 2) & 4
    np.bitwise_and(octant, _INT32[2], out=flips)
    flips >>= _INT32[1]
    np.negative(flips, out=flips)
    difference = z.view(np.int32)
    np.bitwise_xor(sin.view(np.int32), cos.view(np.int32), out=difference)
    difference &= flips
    sin.view(np.int32)[...] ^= difference
    cos.view(np.int32)[...] ^= difference
    np.bitwise_and(octant, _INT32[4], out=flips)
    flips <<= _SIGN_BIT_SHIFT
    sin.view(np.int32)[...] ^= flips
    octant -= _INT32[2]
    np.invert(octant, out=octant)
    octant &= _INT32[4]
    octant <<= _SIGN_BIT_SHIFT
    cos.view(np.int32)[...] ^= octant


def libm(function, values, exact: bool = True) -> np.ndarray:
    """``function`` (one of Python's math functions, the C library's) on each float64 value:
    torch's scalar kernels call the C library, whose last bit NumPy's own kernels do not always
    give. NumPy's kernel is used where it gives the C library's values (checked once on a
    sample), or where ``exact`` is False: for values then rounded to float32 or below, whose
    rounding a last-bit difference in the double changes once in about 2**29 values."""
    values = np.asarray(values, dtype=np.float64)
    if not exact or _numpy_gives_libm(function):
        with np.errstate(all="ignore"):
            return _NUMPY_TWINS[function](values)
    listed = values.reshape(-1).tolist()
    try:
        flat = np.fromiter(map(function, listed), np.float64, values.size)
    except (ValueError, OverflowError):  # log(0), exp(1000): math raises where C returns -inf, inf
        flat = np.fromiter(map(_edge_safe(function), listed), np.float64, values.size)
    return flat.reshape(values.shape)


_NUMPY_TWINS = {math.log: np.log, math.log1p: np.log1p, math.exp: np.exp, math.cos: np.cos, math.sin: np.sin,
                math.tan: np.tan}
# where each function is compared: the arguments the samplers give it
_SAMPLE_ARGUMENTS = {math.log: lambda u: u, math.log1p: lambda u: -u, math.exp: lambda u: (u - 0.5) * 60,
                     math.cos: lambda u: u * 2 * math.pi, math.sin: lambda u: u * 2 * math.pi,
                     math.tan: lambda u: (u - 0.5) * math.pi}
_AGREES: dict = {}


def _numpy_gives_libm(function) -> bool:
    """Whether NumPy's kernel gives the C library's value on 4096 sample arguments (NumPy's own
    log, log1p, exp and tan differ in a few values in a hundred where they differ at all)."""
    agrees = _AGREES.get(function)
    if agrees is None:
        arguments = _SAMPLE_ARGUMENTS[function](np.random.default_rng(2013).random(4096))
        expected = np.fromiter(map(function, arguments.tolist()), np.float64, arguments.size)
        agrees = _AGREES[function] = bool(np.array_equal(_NUMPY_TWINS[function](arguments), expected))
    return agrees
def _edge_safe(function):
    """``function`` returning NumPy's answer (-inf, inf, nan) where math raises."""
    twin = _NUMPY_TWINS[function]

    def guarded(x: float) -> float:
        try:
            return function(x)
        except (ValueError, OverflowError):
            with np.errstate(all="ignore"):
                return float(twin(x))

    return guarded


def from_double(values, dtype) -> np.ndarray:
    """Doubles cast to ``dtype`` as torch's static_cast: half and bfloat16 through float32 (their
    constructors take a float), so rounded twice."""
    dtype = np.dtype(dtype)
    values = np.asarray(values)
    if dtype.kind in "fV" and dtype.itemsize < 4:
        values = values.astype(np.float32)
    return values.astype(dtype, copy=False)


def fused_multiply_add(a, b, c):
    """``a * b + c`` rounded once, as the FMA instruction torch's CPU kernels are compiled to use.
    float32: the product is exact in float64. float64: Dekker's exact product and Knuth's exact
    sum, whose residues are added last (correctly rounded but for rare near-ties)."""
    a = np.asarray(a)
    if b == 1 and c == 0:
        return a
    if a.dtype != np.float64:
        return (a.astype(np.float64) * np.float64(b) + np.float64(c)).astype(a.dtype)
    b, c = np.float64(b), np.float64(c)
    if not (np.isfinite(b) and np.isfinite(c)):
        return a * b + c  # an infinite scale or shift (cauchy_(sigma=inf)): no rounding left to get right
    if max(abs(b), abs(c)) > 2.0**960:
        # Veltkamp's split of b would overflow to inf (NaN halves: uniform_ over a range near float64's
        # limit): the same sum, scaled by a power of two (exact both ways), rounds the same
        return fused_multiply_add(a, b * 2.0**-64, c * 2.0**-64) * 2.0**64
    product = a * b
    a_high, a_low = _split(a)
    b_high, b_low = _split(b)
    product_error = ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + a_low * b_low
    total = product + c
    virtual = total - product
    sum_error = (product - (total - virtual)) + (c - virtual)
    return total + (product_error + sum_error)


def _split(x):
    """Veltkamp's split of float64 ``x`` into two halves of 26 bits whose sum is ``x``."""
    scaled = 134217729.0 * x  # 2**27 + 1
    high = scaled - (scaled - x)
    return high, x - high


def randperm_order(stream: MT19937Stream, n: int) -> np.ndarray:
    """The permutation torch's CPU randperm gives for ``n``: below 2**32 / 20 a Fisher–Yates pass
    swapping i with i + random() % (n - i); from there torch's inside-out variant on random64
    words. The words are drawn at once and the swaps resolved without a per-swap loop."""
    if n < 2**32 // 20:
        spans = np.arange(n, 1, -1, dtype=np.uint32)
        offsets = stream.words(max(n - 1, 0)) % spans
        if n <= _SEQUENTIAL_SWAPS_MAX:
            return _swap_in_order(offsets.tolist(), n)
        return _fisher_yates_order(offsets, n)
    picks = (stream.words64(n) % np.arange(1, n + 1, dtype=np.uint64)).tolist()
    order = [0] * n
    for i, z in enumerate(picks):  # inside-out Fisher–Yates
        order[i] = order[z]
        order[z] = i
    return np.array(order, dtype=np.int64)


_SEQUENTIAL_SWAPS_MAX = 128  # below this a Python loop over the swaps beats the array passes


def _swap_in_order(offsets: list, n: int) -> np.ndarray:
    order = list(range(n))
    for i, offset in enumerate(offsets):
        j = i + offset
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


def _fisher_yates_order(offsets: np.ndarray, n: int) -> np.ndarray:
    """The order the swaps (k, t_k = k + offsets[k]), k = 0..n-2, leave, found by array passes.

    Step k fixes position k for good (later steps touch only positions after their own), so
    ``order[k]`` is what position t_k holds just before step k: the value the previous step with
    target t_k put there, or t_k itself when none did. A step puts there what its own position
    held, ``held[k]``; that is ``held`` of the last earlier step that targeted position k, or k.
    Those links point to earlier steps, so every ``held`` is the root of a chain, found by pointer
    jumping; the steps grouped by target (one sort of (target, step) keys) give both links."""
    steps = n - 1
    index = np.int32 if n < 2**31 else np.int64
    shift = n.bit_length()
    key_type = np.uint32 if 2 * shift <= 32 else np.uint64
    step = np.arange(steps, dtype=index)
    targets = step + offsets.astype(index)
    keys = targets.astype(key_type)
    keys <<= key_type(shift)
    keys |= step.astype(key_type)
    keys.sort()
    writer = (keys & key_type((1 << shift) - 1)).astype(index)  # steps by target, then by step
    keys >>= key_type(shift)
    target = keys.astype(index)
    new_target = np.empty(steps, dtype=bool)
    new_target[0] = True
    np.not_equal(target[1:], target[:-1], out=new_target[1:])
    # position k before step k: the last step of group k that is not step k itself (t_k = k
    # puts step k last in its group)
    not_self = writer != target
    last_before_self = np.empty(steps, dtype=bool)
    last_before_self[-1] = True
    last_before_self[:-1] = new_target[1:] | ~not_self[1:]
    last_before_self &= not_self
    held = np.arange(n, dtype=index)  # held[n - 1]: what the last position ends with
    held[target[last_before_self]] = writer[last_before_self]
    unresolved = np.flatnonzero(held != np.arange(n, dtype=index))
    while unresolved.size:
        up = held[held[unresolved]]
        held[unresolved] = up
        unresolved = unresolved[held[up] != up]
    # in sorted order: what the step before in the same group left (held by that step), or the
    # target itself for a group's first step; the select is arithmetic (np.where costs ~10× a pass)
    found = held[np.roll(writer, 1)]
    target -= found
    target *= new_target
    found += target
    order = np.empty(n, dtype=np.int64)
    order[writer] = found
    order[n - 1] = held[n - 1]
    return order


def _shape(size) -> tuple:
    if size is None:
        return ()
    if isinstance(size, (int, np.integer)):
        return (int(size),)
    return tuple(map(int, size))


def _delivered(draws, out):
    """``draws``, or ``out`` filled with them (NumPy's ``out=`` convention for the Generator methods)."""
    if out is None:
        return draws
    out[...] = draws
    return out
