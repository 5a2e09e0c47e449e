"""s46 mendAS: what a TorchDispatchMode sees, continued from mendAI/mendAK/mendAO, and x[key] = number read as
torch reads it. A number written by setitem is checked as torch checks it before anything is written (with a
mode or without): a Python int beyond int64 is torch's ValueError, a value an integer dtype cannot hold (or
NaN, infinity, a complex with an imaginary part into a real dtype, a finite value beyond float32 into float32
or complex64) torch's RuntimeError naming the C++ type; it wrote 0 or a wrapped value, or raised Python's
TypeError/OverflowError."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from chainrule.utils import _python_dispatch  # noqa: E402


class _Pass(_python_dispatch.TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def _written(lib, dtype, value, key, mode):
    target = lib.zeros(2, 3, dtype=getattr(lib, dtype))
    try:
        with mode:
            target[key] = value
    except (TypeError, ValueError, RuntimeError, OverflowError) as error:
        return type(error).__name__, str(error)
    return target.to(lib.float64 if dtype == "bfloat16" else target.dtype).tolist()


NUMBERS = [2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1, 2 ** 70, 1j, 1 + 0j, 1e300, 70000.0, 1e39, -129, -256,
           255.7, float("inf"), float("nan"), np.int64(5), np.float64(1e300), np.complex128(1j), True, 3.9, -1.5,
           2 ** 31, complex(0, 1e39)]
DTYPES = ["float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
          "complex64", "complex128"]


@pytest.mark.parametrize("key", [0, False, (slice(None), 1)], ids=["int", "false", "column"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_number_written_by_setitem_is_checked_as_torch_checks_it(dtype, key):
    for value in NUMBERS:
        expected = _written(real_torch, dtype, value, key, contextlib.nullcontext())
        with np.errstate(over="ignore"):
            got = _written(chainrule, dtype, value, key, contextlib.nullcontext())
            under_a_mode = _written(chainrule, dtype, value, key, _Pass())
        np.testing.assert_equal(got, expected, err_msg=f"{dtype} {value!r}")  # (nan equal to nan)
        np.testing.assert_equal(under_a_mode, expected, err_msg=f"{dtype} {value!r} under a mode")


def test_a_refused_number_leaves_the_tensor_and_its_version_as_they_were():
    target = chainrule.arange(6).reshape(2, 3)
    version = target._version
    for value in (2 ** 70, 1j, float("nan"), 1e300):
        with pytest.raises((ValueError, RuntimeError)):
            target[0] = value
    assert target._version == version
    assert target.tolist() == [[0, 1, 2], [3, 4, 5]]
