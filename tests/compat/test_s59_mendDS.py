"""Session 59, lane mendDS: torch's one op in a dispatch mode's log where chainrule computes a composite
(nansum, aminmax, nanmean's steps, softmax's out=, an integer tensor's promoting clamp) and the order of clamp's backward formulas."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

from tests.compat.test_s57_mendDL import _logged, _shown  # noqa: E402


def _values(result):
    return [np.asarray(t.tolist()) for t in (result if isinstance(result, tuple) else (result,))]


COMPOSITE_CALLS = {
    "nansum": lambda lib, x: lib.nansum(x),
    "nansum_dim": lambda lib, x: lib.nansum(x, 1),
    "nansum_dims_keepdim": lambda lib, x: lib.nansum(x, (0, 1), keepdim=True),
    "nansum_none_keepdim": lambda lib, x: lib.nansum(x, None, True),
    "nansum_dtype": lambda lib, x: lib.nansum(x, -1, dtype=lib.float64),
    "nansum_integer": lambda lib, x: lib.nansum(x.long(), 0),
    "nansum_method": lambda lib, x: x.nansum(-1),
    "nansum_out": lambda lib, x: lib.nansum(x, 1, out=lib.empty(3)),
    "nansum_out_wider": lambda lib, x: lib.nansum(x, 1, out=lib.empty(3, dtype=lib.float64)),
    "nanmean_dim": lambda lib, x: lib.nanmean(x, 1),
    "nanmean_keepdim_dtype": lambda lib, x: lib.nanmean(x, (0, 1), keepdim=True, dtype=lib.float64),
    "nanmean_out": lambda lib, x: lib.nanmean(x, 1, out=lib.empty(3)),
    "softmax_out": lambda lib, x: lib.softmax(x, 1, out=lib.empty(3, 4)),
    "log_softmax_out": lambda lib, x: lib.log_softmax(x, -1, out=lib.empty(3, 4)),
    "softmax_out_dtype": lambda lib, x: lib.softmax(x, 0, dtype=lib.float64, out=lib.empty(3, 4, dtype=lib.float64)),
    "log_softmax_out_dtype": lambda lib, x: lib.log_softmax(x, 0, dtype=lib.float64,
                                                            out=lib.empty(3, 4, dtype=lib.float64)),
    "aminmax": lambda lib, x: lib.aminmax(x),
    "aminmax_dim_zero_keepdim": lambda lib, x: lib.aminmax(x, dim=0, keepdim=True),
    "aminmax_out": lambda lib, x: lib.aminmax(x, dim=1, out=(lib.empty(3), lib.empty(3))),
    "aminmax_out_all": lambda lib, x: lib.aminmax(x, out=(lib.empty(()), lib.empty(()))),
    "clamp_min_integer_at_float": lambda lib, x: lib.clamp_min(x.long(), 0.5),
    "clamp_min_integer_at_int": lambda lib, x: lib.clamp_min(x.long(), 1),
    "clamp_max_integer_at_float": lambda lib, x: lib.clamp_max(x.long(), 0.5),
    "clamp_integer_at_float": lambda lib, x: lib.clamp(x.long(), 0.5, 2),
    "clamp_integer_max_only": lambda lib, x: lib.clamp(x.long(), None, 0.5),
    "clamp_min_method_integer": lambda lib, x: x.long().clamp_min(0.5),
}


@pytest.mark.parametrize("call", list(COMPOSITE_CALLS))
def test_a_composite_is_logged_as_torchs_one_op(call):
    # 47 calls probed under a logging mode (forward and backward logs): 44 -> 16 differing
    expected, expected_result = _logged(torch, COMPOSITE_CALLS[call])
    got, result = _logged(cr, COMPOSITE_CALLS[call])
    assert got == expected
    for ours, theirs in zip(_values(result), _values(expected_result)):
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def _backward_log(lib, forward):
    dispatch = __import__(f"{lib.__name__}.utils._python_dispatch", fromlist=["TorchDispatchMode"])
    logged = []

    class Log(dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            logged.append((str(func), _shown(args, lib)))
            return func(*args, **(kwargs or {}))

    x = (lib.arange(12, dtype=lib.float32).reshape(3, 4) / 7 - 0.5).requires_grad_()
    low = (x.detach()[0] - 0.1).requires_grad_()
    high = (x.detach()[1] + 0.2).requires_grad_()
    y = forward(lib, x, low, high)
    with Log():
        y.sum().backward()
    return logged, [t.grad for t in (x, low, high)]


BACKWARDS = {
    "clamp_min": lambda lib, x, low, high: lib.clamp_min(x, 0.1),
    "clamp_max": lambda lib, x, low, high: lib.clamp_max(x, 0.1),
    "clamp_both": lambda lib, x, low, high: lib.clamp(x, -0.1, 0.1),
    "clamp_min_tensor": lambda lib, x, low, high: lib.clamp_min(x, low),
    "clamp_max_tensor": lambda lib, x, low, high: lib.clamp_max(x, high),
    "clamp_tensors": lambda lib, x, low, high: lib.clamp(x, low, high),
    "clamp_low_tensor": lambda lib, x, low, high: lib.clamp(x, low),
}


@pytest.mark.parametrize("case", list(BACKWARDS))
def test_clamps_backward_makes_its_zero_first_and_the_bounds_gradients_before_the_inputs(case):
    expected, expected_grads = _backward_log(torch, BACKWARDS[case])
    got, grads = _backward_log(cr, BACKWARDS[case])
    # (torch's ones_like seed shows its memory_format as torch's own object)
    assert [entry for entry in got if "ones_like" not in entry[0]] == \
        [entry for entry in expected if "ones_like" not in entry[0]]
    for ours, theirs in zip(grads, expected_grads):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ---- torch.utils.checkpoint: torch's refusals of an explicit context_fn=None; the device autocast rerun
def _checkpointed(lib, use_reentrant, **kwargs):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    try:
        lib.utils.checkpoint.checkpoint(lambda t: (t * 2).sin(), x, use_reentrant=use_reentrant, **kwargs).sum().backward()
    except (ValueError, TypeError) as error:
        return type(error).__name__, str(error)
    return x.grad.tolist()


CHECKPOINT_CALLS = [(True, {"context_fn": None}), (True, {"debug": 0}), (True, {"debug": None}),
                    (False, {"context_fn": None}), (False, {"context_fn": None, "debug": True}),
                    (True, {}), (False, {}), (True, {"debug": False})]


@pytest.mark.parametrize("use_reentrant,kwargs", CHECKPOINT_CALLS)
def test_checkpoint_refuses_an_explicit_context_fn_none_as_torch(use_reentrant, kwargs):
    # 36 use_reentrant x context_fn/debug/keyword calls: 8 -> 0 differing (torch tests `is not noop_context_fn`
    # and `debug is not False`; its non-reentrant form calls the None it is given)
    expected = _checkpointed(torch, use_reentrant, **kwargs)
    got = _checkpointed(cr, use_reentrant, **kwargs)
    if isinstance(expected, list):
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    elif expected[0] == "TypeError":  # (CPython's wording of calling None)
        assert got[0] == "TypeError"
    else:
        assert got == expected


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpoint_rerun_restores_the_inputs_device_autocast_state(use_reentrant):
    # torch's checkpoint keeps the autocast state of its inputs' device (_infer_device_type) beside the CPU's and
    # reruns under both; on the stand-in 'cuda' the rerun now sees the forward's cuda flag and dtype
    from chainrule._backend import use_standin_cuda

    seen = []

    def segment(t):
        seen.append((cr.is_autocast_enabled("cuda"), cr.get_autocast_dtype("cuda"), cr.is_autocast_enabled("cpu")))
        return (t * 2).sin()

    with use_standin_cuda():
        x = cr.tensor([1.0, 2.0], device="cuda", requires_grad=True)
        with cr.autocast("cuda", dtype=cr.bfloat16):
            y = cr.utils.checkpoint.checkpoint(segment, x, use_reentrant=use_reentrant)
        y.float().sum().backward()
        assert not cr.is_autocast_enabled("cuda")
    assert seen == [(True, cr.bfloat16, False)] * 2
    assert x.grad is not None


# ---- torch.fft: a result NumPy hands back contiguous but for a size-1 dim's stride
FFT_LAYOUTS = [("hfft", 1), ("irfft", 1), ("hfft", 2), ("fft", None), ("ifft", 1), ("rfft", None), ("ihfft", 1)]


@pytest.mark.parametrize("name,n", FFT_LAYOUTS)
def test_an_fft_over_a_size_one_dim_of_a_sliced_input_has_torchs_strides(name, n):
    # fft layout probe (35 shapes x all dim orders x 4 slicings x 14 transforms x n/s): 203 of 18,600 differing
    # -> 17 (left: hfftn over every dim with s= where size-1 dims tie in stride)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 1, 2)) + 1j * rng.standard_normal((4, 1, 2))
    if name in ("rfft", "ihfft"):
        a = a.real
    results = []
    for lib in (torch, cr):
        x = lib.tensor(a.astype(np.complex64 if np.iscomplexobj(a) else np.float32)).permute(0, 2, 1)[::2]
        results.append(getattr(lib.fft, name)(x, n=n, dim=-1))
    expected, got = results
    assert got.stride() == expected.stride() and got.shape == expected.shape
    np.testing.assert_allclose(got.resolve_conj().numpy(), expected.resolve_conj().numpy(), rtol=1e-5, atol=1e-6)
