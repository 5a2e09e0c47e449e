"""torch names added in session 6 that the op registry cannot cover (memory sharing, storage,
DLPack, buffers, strided creation, control flow, errors), each compared with torch where torch
answers: the same small program run on both."""

from __future__ import annotations

import array
import inspect
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(fn):
    return fn(chainrule), fn(torch)


# ---------------------------------------------------------------- as_strided and storage
def test_as_strided_writes_through_and_shares_storage():
    for lib in (chainrule, torch):
        x = lib.arange(12.0)
        window = x.as_strided((3, 3), (3, 1), 1)
        window[0, 0] = 100.0
        assert x[1].item() == 100.0
        assert window.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        assert x[4:].untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        assert x.clone().untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
        assert x.untyped_storage().nbytes() == 48 and x.untyped_storage().size() == 48
        lib.storage._reset_warn_typed_storage_removal()  # both warn once a process
        with pytest.warns(UserWarning, match="TypedStorage is deprecated"):
            typed = x[2:].storage()
        assert typed.size() == len(typed) == 12 and typed.element_size() == 4 and typed[1] == 100.0
        assert typed.data_ptr() == x.untyped_storage().data_ptr()


def test_as_strided_offset_defaults_to_the_views_own():
    ours, theirs = _both(lambda lib: lib.arange(10.0)[3:].as_strided((2, 2), (2, 1)))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("args, match", [
    (((2, 2), (1, 2), 20), "out of bounds for storage of size 48"),
    (((2, 2), (1,)), "mismatch in length of strides and shape"),
    (((2,), (-1,)), "Negative strides"),
])
def test_as_strided_errors_match_torch(args, match):
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match=match):
            lib.as_strided(lib.zeros(3, 4), *args)


def test_empty_strided_has_the_strides():
    for lib in (chainrule, torch):
        t = lib.empty_strided((2, 3), (1, 2), dtype=lib.float64, requires_grad=True)
        assert t.stride() == (1, 2) and t.shape == (2, 3) and t.dtype == lib.float64
        assert t.requires_grad and t.is_leaf and not t.is_contiguous()


# ---------------------------------------------------------------- scatter views: errors
@pytest.mark.parametrize("call, error, match", [
    (lambda lib, x: lib.slice_scatter(x, lib.ones(3, 3), 1, 0, 2), RuntimeError, "src size = \\[3, 3\\], slice size"),
    (lambda lib, x: lib.select_scatter(x, lib.ones(3), 1, 5), IndexError, "index 5 out of range"),
    (lambda lib, x: lib.select_scatter(x, lib.ones(4), 1, 0), RuntimeError, "expected src to have a size equal"),
    (lambda lib, x: lib.diagonal_scatter(x, lib.ones(2)), RuntimeError, "expected src to have a size equal"),
    (lambda lib, x: lib.diagonal_scatter(x, lib.ones(3), 0, 1, 1), RuntimeError, "diagonal dimensions cannot be identical"),
])
def test_scatter_errors_match_torch(call, error, match):
    for lib in (chainrule, torch):
        with pytest.raises(error, match=match):
            call(lib, lib.zeros(3, 4))


def test_slice_scatter_casts_src_to_the_input_dtype():
    ours, theirs = _both(lambda lib: lib.slice_scatter(lib.zeros(2, 3), lib.ones(2, 1, dtype=lib.float64), 1, 2))
    assert ours.dtype == chainrule.float32 and theirs.dtype == torch.float32
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_functionalised_slice_write_trains_like_torch():
    # x[:, 1] = y rewritten as select_scatter, inside a small model: the same gradients as torch's in-place write
    def program(lib):
        lib.manual_seed(0)
        w = lib.tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True)
        y = lib.tensor([0.5, -0.25, 2.0], requires_grad=True)
        h = lib.select_scatter(w.tanh(), y * 3, 1, 1)
        h = lib.diagonal_scatter(h, h.diagonal().exp())
        h = lib.slice_scatter(h, h[:, :2] ** 2, 1, 2)
        h.sum().backward()
        return h.detach().numpy(), w.grad.numpy(), y.grad.numpy()

    for ours, theirs in zip(program(chainrule), program(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# ---------------------------------------------------------------- buffers and DLPack
def test_frombuffer_shares_memory_with_the_buffer():
    raw = bytearray(np.arange(4, dtype=np.int32).tobytes())
    ours = chainrule.frombuffer(raw, dtype=chainrule.int32, count=2, offset=4)
    theirs = torch.frombuffer(bytearray(raw), dtype=torch.int32, count=2, offset=4)
    assert ours.tolist() == theirs.tolist() == [1, 2]
    ours[0] = 7
    assert np.frombuffer(raw, dtype=np.int32)[1] == 7
    doubles = chainrule.frombuffer(array.array("d", [1.5, 2.5]), dtype=chainrule.float64)
    assert doubles.tolist() == [1.5, 2.5]


@pytest.mark.parametrize("buffer, kwargs, match", [
    (bytearray(3), {}, "must be a multiple of element size"),
    (bytearray(8), {"count": 3}, "must not be greater than actual buffer length"),
    (bytearray(8), {"offset": 8}, "must be non-negative and no greater than buffer length"),
    (bytearray(0), {}, "must not be 0"),
])
def test_frombuffer_errors_match_torch(buffer, kwargs, match):
    for lib in (chainrule, torch):
        with pytest.raises(ValueError, match=match):
            lib.frombuffer(buffer, dtype=lib.int32, **kwargs)


def test_frombuffer_warns_on_a_read_only_buffer(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())  # (it warns once per process, as torch's)
    with pytest.warns(UserWarning, match="not writable"):
        chainrule.frombuffer(b"\x01\x02", dtype=chainrule.int8)


def test_dlpack_round_trips_with_torch_and_numpy_sharing_memory():
    source = torch.arange(6.0).reshape(2, 3)
    ours = chainrule.from_dlpack(source)
    ours[0, 0] = 42.0
    assert source[0, 0].item() == 42.0 and ours.shape == (2, 3)
    back = torch.from_dlpack(chainrule.to_dlpack(ours))
    assert back.data_ptr() == source.data_ptr()
    from_capsule = chainrule.from_dlpack(torch.utils.dlpack.to_dlpack(source))
    assert from_capsule.data_ptr() == source.data_ptr()
    array = np.arange(3, dtype=np.int64)
    assert chainrule.from_dlpack(array).data_ptr() == array.ctypes.data
    exported = torch.from_dlpack(chainrule.arange(4))
    assert exported.tolist() == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="from_dlpack received an invalid capsule"):  # torch's words for a list
        chainrule.from_dlpack([1, 2])


def test_from_dlpack_on_the_standin_device_keeps_data_on_the_device():
    from chainrule._backend import use_standin_cuda

    with use_standin_cuda():
        x = chainrule.arange(4.0, device="cuda")
        assert chainrule.from_dlpack(x).device.type == "cuda"


# ---------------------------------------------------------------- control flow
def test_cond_takes_the_branch_and_its_gradient():
    def program(lib, flag):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        # torch.cond's eager result is the branch's; torch's own cond compiles it, so the oracle runs the branch
        if lib is torch:
            y = (x.sin() * 2) if flag else (x.cos() + x)
        else:
            y = lib.cond(lib.tensor(flag), lambda a: a.sin() * 2, lambda a: a.cos() + a, (x,))
        y.sum().backward()
        return y.detach().numpy(), x.grad.numpy()

    for flag in (True, False):
        for ours, theirs in zip(program(chainrule, flag), program(torch, flag)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_cond_and_while_loop_errors():
    with pytest.raises(RuntimeError, match="single-element tensor"):
        chainrule.cond(chainrule.tensor([True, False]), lambda: 1, lambda: 2)
    with pytest.raises(RuntimeError, match="tuple or list"):
        chainrule.cond(True, lambda a: a, lambda a: a, chainrule.ones(1))
    with pytest.raises(RuntimeError, match="does not match carried input 0"):
        chainrule.while_loop(lambda x: x.sum() < 3, lambda x: x.double() + 1, (chainrule.zeros(2),))


def test_while_loop_matches_a_python_loop_on_torch():
    i, total = chainrule.while_loop(lambda i, s: i < 5, lambda i, s: (i + 1, s + i * 0.5),
                                    (chainrule.tensor(0), chainrule.zeros(2)))
    assert i.item() == 5 and total.tolist() == [5.0, 5.0]
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    (y,) = chainrule.while_loop(lambda y: y.sum() < 20, lambda y: (y * 2,), (x,))
    y.sum().backward()
    assert y.tolist() == [8.0, 16.0] and x.grad.tolist() == [8.0, 8.0]


# ---------------------------------------------------------------- names, queries, deprecations
def test_top_level_aliases_are_the_same_functions():
    assert chainrule.vmap is chainrule.func.vmap
    # the top-level spellings are torch's C++ built-ins and nn.functional's are Python functions: two
    # objects over one op (the top-level ones do not bind in a class body), as in torch
    # (ctc_loss, triplet_margin_loss and embedding_bag are not here: torch's top level takes ATen's
    # arguments for them; tests/compat/test_top_level_losses.py, test_s27_fixes4.py)
    for name in ("rms_norm",):
        top, functional = getattr(chainrule, name), getattr(chainrule.nn.functional, name)
        assert top is not functional and inspect.unwrap(top) is inspect.unwrap(functional)
        assert (getattr(torch, name) is getattr(torch.nn.functional, name)) is False
    # (row_stack is vstack's alias, a function of its own as in torch, which names it in its refusals)
    assert chainrule.row_stack is not chainrule.vstack and chainrule.row_stack.__name__ == "row_stack"
    assert chainrule.newaxis is None and torch.newaxis is None


def test_queries_match_torch():
    for lib in (chainrule, torch):
        x = lib.zeros(2, 3)
        assert lib.get_device(x) == -1
        assert lib.is_same_size(x, lib.ones(2, 3)) and not lib.is_same_size(x, lib.ones(3, 2))
        assert lib.is_signed(x) and not lib.is_signed(x.to(lib.uint8))
        assert lib.is_nonzero(lib.tensor([1.0])) and not lib.is_nonzero(lib.tensor(0))
        assert not lib.is_inference(x) and not x.is_inference()
        assert lib.detach(x.requires_grad_()).requires_grad is False
        assert lib.typename(3) == "int"
        assert lib.zero_(lib.ones(2)).tolist() == [0.0, 0.0]
        assert lib.fill_(lib.ones(2), 3).tolist() == [3.0, 3.0]
        with pytest.warns(UserWarning, match="volatile was removed"):
            assert x.volatile is False
    assert chainrule.typename(chainrule.zeros(1, dtype=chainrule.int64)) == "torch.LongTensor"


def test_range_is_inclusive_warns_and_checks_its_step():
    for lib in (chainrule, torch):
        with pytest.warns(UserWarning, match="torch.range is deprecated"):
            r = lib.range(1, 4)
        assert r.tolist() == [1.0, 2.0, 3.0, 4.0] and r.dtype == lib.float32
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="step must be nonzero"):
                lib.range(0, 3, 0)
            with pytest.raises(RuntimeError, match="inconsistent with step sign"):
                lib.range(0, 3, -1)
            with pytest.raises(TypeError, match="missing 1 required positional arguments"):
                lib.range(3)


@pytest.mark.parametrize("call, error, match", [
    (lambda lib: lib.unravel_index(lib.tensor([1.0]), (2, 3)), TypeError, "to be integer dtype"),
    (lambda lib: lib.unravel_index(lib.tensor([1]), (2, -3)), ValueError, "cannot have negative values"),
    (lambda lib: lib.dsplit(lib.zeros(2, 3), 2), RuntimeError, "at least 3 dimension"),
    (lambda lib: lib.dsplit(lib.zeros(2, 3, 4), 3), RuntimeError, "not divisible by the split_size 3"),
    (lambda lib: lib.split_with_sizes(lib.zeros(5), [2, 2]), RuntimeError, "to sum exactly to 5"),
    (lambda lib: lib.tensor([1.0]) << 1, NotImplementedError, "lshift_cpu"),
    (lambda lib: lib.fill(lib.zeros(2), lib.ones(2)), RuntimeError, "0-dimension value tensor"),
])
def test_errors_match_torch(call, error, match):
    for lib in (chainrule, torch):
        with pytest.raises(error, match=match):
            call(lib)


# ---------------------------------------------------------------- linalg: removed names, singular *_ex inputs
def test_removed_tensor_solve_and_lstsq_raise_torchs_message():
    for lib in (chainrule, torch):
        A = lib.eye(2)
        with pytest.raises(RuntimeError, match="deprecated since version 1.9 and is now removed. `torch.solve`"):
            A.solve(A)
        with pytest.raises(RuntimeError, match="`torch.lstsq` is deprecated in favor of `torch.linalg.lstsq`"):
            A.lstsq(A)


def test_inv_ex_and_solve_ex_report_singular_matrices():
    for lib in (chainrule, torch):
        A = lib.stack([lib.eye(2), lib.zeros(2, 2)])
        inverse, info = lib.linalg.inv_ex(A)
        assert info.tolist() == [0, 1] and info.dtype == lib.int32
        assert inverse[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
        assert lib.linalg.solve_ex(A, lib.ones(2, 2)).info.tolist() == [0, 1]
        with pytest.raises(lib.linalg.LinAlgError, match=r"\(Batch element 1\): The diagonal element 1 is zero"):
            lib.linalg.inv_ex(A, check_errors=True)
    with pytest.raises(RuntimeError, match="but got 48 != 24"):
        chainrule.linalg.tensorsolve(chainrule.randn(6, 4, 2, 3, 4), chainrule.randn(6, 4), dims=(0, 2))
    with pytest.raises(RuntimeError, match="must be greater than or equal to tau.shape"):
        chainrule.linalg.householder_product(chainrule.randn(4, 3), chainrule.randn(4))


def test_deprecated_linalg_names_warn_as_torch(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())  # (each warns once per process, as torch's)
    A = chainrule.eye(3) * 2
    for call in (lambda: chainrule.lu(A), lambda: chainrule.triangular_solve(chainrule.ones(3, 1), A),
                 lambda: chainrule.lu_solve(chainrule.ones(3, 1), *chainrule.linalg.lu_factor(A))):
        with pytest.warns(UserWarning, match="is deprecated in favor of torch.linalg"):
            call()


# ---------------------------------------------------------------- sampling
def test_poisson_and_binomial_moments_and_generator():
    rates = chainrule.full((20000,), 3.5)
    draws = chainrule.poisson(rates, generator=chainrule.Generator().manual_seed(1))
    again = chainrule.poisson(rates, generator=chainrule.Generator().manual_seed(1))
    assert draws.dtype == chainrule.float32 and chainrule.equal(draws, again)
    assert abs(draws.mean().item() - 3.5) < 0.1 and abs(draws.var().item() - 3.5) < 0.2
    count, prob = chainrule.full((20000,), 10.0), chainrule.full((20000,), 0.3)
    successes = chainrule.binomial(count, prob)
    assert abs(successes.mean().item() - 3.0) < 0.1 and abs(successes.var().item() - 2.1) < 0.15
    assert 0 <= successes.min().item() and successes.max().item() <= 10


@pytest.mark.parametrize("call, error, match", [
    (lambda lib: lib.poisson(lib.tensor([-1.0])), RuntimeError, "expected rate to be non-negative"),
    (lambda lib: lib.poisson(lib.tensor([1])), NotImplementedError, "not implemented for 'Long'"),
    (lambda lib: lib.binomial(lib.tensor([5]), lib.tensor([0.5])), ValueError, "floating-point dtypes for count"),
    (lambda lib: lib.binomial(lib.tensor([5.0]), lib.tensor([0.5], dtype=lib.float64)), RuntimeError,
     "Found dtype Double but expected Float"),
])
def test_sampling_errors_match_torch(call, error, match):
    for lib in (chainrule, torch):
        with pytest.raises(error, match=match):
            call(lib)


@pytest.mark.parametrize("call, error, match", [
    (lambda lib: lib.histogramdd(lib.arange(6).reshape(3, 2), bins=2), NotImplementedError, "not implemented for 'Long'"),
    (lambda lib: lib.histogramdd(lib.zeros(5, 2, dtype=lib.float64), bins=[3, 4], weight=lib.ones(5)), RuntimeError,
     r"same dtype, but got input\(double\), and weight\(float\)"),
])
def test_histogramdd_errors_match_torch(call, error, match):
    for lib in (chainrule, torch):
        with pytest.raises(error, match=match):
            call(lib)


def test_hostile_inputs_are_refused_with_torchs_errors():
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            lib.unravel_index(lib.tensor([1]), (0,))
        with pytest.raises(ValueError, match="does not implement Python buffer protocol"):
            lib.frombuffer("abc", dtype=lib.int8)
        with pytest.raises(RuntimeError):
            lib.as_strided(lib.zeros(3), (2**62, 2**62), (1, 1))
    for lib in (chainrule, torch):
        capsule = torch.utils.dlpack.to_dlpack(torch.arange(3.0))
        lib.from_dlpack(capsule)
        with pytest.raises(RuntimeError, match="can be consumed only once"):
            lib.from_dlpack(capsule)
