"""The stand-in fails where CuPy fails: implicit host conversion, host arrays mixed in."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.testing import standin

xp = standin.module


def test_refuses_implicit_conversion_to_numpy():
    a = xp.arange(3.0)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.zeros(3) + np.array(a)


@pytest.mark.parametrize("host", [np.float32(2.0) * np.ones(3, np.float32), np.asarray(2.0, np.float32)],
                         ids=["1-d", "0-d"])
def test_refuses_numpy_arrays_in_functions_ufuncs_operators_and_indexing(host):
    a = xp.ones(3, dtype=np.float32)
    for mix in (lambda: a * host, lambda: host * a, lambda: xp.maximum(a, host), lambda: np.add(a, host),
                lambda: xp.where(a > 0, a, host), lambda: xp.concatenate([a, host.reshape(-1)])):
        with pytest.raises(TypeError, match=r"Unsupported type <class 'numpy.ndarray'>"):
            mix()
    with pytest.raises(TypeError, match="Unsupported type"):
        a[np.array([0, 1])]
    with pytest.raises(TypeError, match="Unsupported type"):
        a[...] = np.ones(3)


def test_accepts_python_and_numpy_scalars_and_dispatches_numpy_calls():
    a = xp.arange(4.0)
    out = np.exp(a * 2 + np.float32(1.0))  # NumPy's ufuncs and functions dispatch to the device
    assert type(out) is xp.ndarray
    assert type(np.sum(a)) is xp.ndarray and np.sum(a).ndim == 0  # reductions stay 0-d arrays
    assert type(a.max()) is xp.ndarray and type(a[1]) is xp.ndarray
    assert not hasattr(a, "__array_interface__") and not hasattr(a.flags, "writeable")


def test_explicit_copies_are_counted():
    standin.reset_transfers()
    a = xp.asarray(np.arange(3.0))  # host -> device
    b = xp.zeros(3) + a  # device work: no copy
    assert standin.transfers() == 1
    assert isinstance(xp.asnumpy(b), np.ndarray) and isinstance(b.get(), np.ndarray)
    assert float(b[1]) == 1.0 and b.sum().item() == 3.0 and b.tolist() == [0.0, 1.0, 2.0]
    assert standin.transfers() == 6


def test_cuda_namespace_bits():
    assert xp.cuda.runtime.getDeviceCount() == 1
    xp.cuda.Device(0).synchronize()
    pool = xp.get_default_memory_pool()
    pool.free_all_blocks()
    assert pool.used_bytes() >= 0 and pool.total_bytes() >= 0
    assert xp.get_array_module(xp.ones(1)) is xp and xp.get_array_module(np.ones(1)) is np


def test_a_views_base_is_the_one_array_that_owns_its_memory_as_cupys():
    # the engine tells gradients that share memory apart by their base's identity, and steals a
    # sole view's memory by its base's reference count: a fresh wrapper per .base read broke both
    owner = xp.arange(24.0)
    views = [owner.reshape(4, 6), owner.reshape(4, 6)[1:, ::2], owner.reshape(4, 6).T, owner[3:], owner.view(),
             xp.reshape(owner, (2, 12)), owner.reshape(2, 3, 4).transpose(2, 0, 1)[0]]
    assert owner.base is None
    assert all(v.base is owner for v in views)
    # CuPy's as_strided makes a new array on x's memory (ndarray(..., memptr=x.data)): no base
    windows = xp.lib.stride_tricks.as_strided(owner, (3, 3), (8, 8))
    assert windows.base is None and windows[1:].base is windows and windows[1:][:, 1:].base is windows
    assert owner.copy().base is None and (owner + 1).base is None and owner[xp.asarray([0, 1])].base is None
    del owner
    assert views[0].base.shape == (24,)  # a view keeps its owner alive, as CuPy's do
