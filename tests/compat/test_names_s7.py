"""s7 names: torch's device modules (cpu, mps, xpu), top-level switches and exceptions,
torch.signal.windows, torch.quasirandom.SobolEngine, the ATen spellings of nn ops, and
geqrf/ormqr/vander — each beside torch's answer on the same inputs."""

import warnings

import numpy as np
import pytest
import torch

import chainrule
from chainrule.autograd import gradcheck


# ---- device modules: what a script asks before it picks a device
@pytest.mark.parametrize("expression", [
    "lib.cpu.is_available()", "lib.cpu.device_count()", "lib.cpu.current_device()", "lib.cpu.is_initialized()",
    "lib.cpu.synchronize()", "lib.cpu.set_device('cpu')", "lib.cpu.Event().query()",
    "lib.mps.is_available()", "lib.mps.device_count()", "lib.mps.manual_seed(0)",
    "lib.backends.mps.is_available()", "lib.backends.mps.is_built()",
    "lib.xpu.is_available()", "lib.xpu.device_count()", "lib.xpu.is_initialized()", "lib.xpu.manual_seed(0)",
    "lib.xpu.manual_seed_all(0)", "lib.xpu.seed()", "lib.xpu.empty_cache()", "lib.xpu.memory_allocated()",
    "lib.xpu.is_bf16_supported()", "lib.is_warn_always_enabled()",
    "lib.zeros(2).is_xpu", "lib.zeros(2).is_mps", "lib.zeros(2).is_nested", "lib.zeros(2).is_sparse_csr",
    "lib.zeros(2).is_xla", "lib.zeros(2).is_ipu", "lib.zeros(2).is_mtia", "lib.zeros(2).is_maia",
])
def test_device_queries_answer_as_torch(expression):
    assert eval(expression, {"lib": chainrule}) == eval(expression, {"lib": torch})


@pytest.mark.parametrize("expression", [
    "lib.mps.synchronize()", "lib.mps.empty_cache()", "lib.mps.seed()", "lib.mps.current_allocated_memory()",
    "lib.backends.mps.is_macos13_or_newer()", "lib.xpu.synchronize()", "lib.xpu.current_device()",
    "lib.xpu.get_device_name()", "lib.xpu.set_device(0)", "lib.zeros(2).xpu()",
])
def test_what_needs_a_missing_device_raises_as_torch(expression):
    with pytest.raises(Exception) as theirs:
        eval(expression, {"lib": torch})
    with pytest.raises(type(theirs.value)) as ours:
        eval(expression, {"lib": chainrule})
    assert str(ours.value) == str(theirs.value)


def test_device_module_idiom_runs_unchanged():
    # the idiom of device-agnostic training scripts: the module named by the device type
    for lib in (torch, chainrule):
        device_type = "cuda" if lib.cuda.is_available() else "cpu"
        module = getattr(lib, device_type)
        module.synchronize()
        assert module.device_count() >= 1
        with module.stream(module.current_stream()):
            pass
        event = lib.cpu.Event()
        event.record()
        event.wait()
        assert event.query()


def test_cpu_amp_spellings_warn_and_work_as_torch():
    for lib in (torch, chainrule):
        with pytest.warns(FutureWarning, match=r"torch.amp.autocast\('cpu'"):
            context = lib.cpu.amp.autocast()
        with context:
            out = lib.ones(2, 3) @ lib.ones(3, 2)
        assert str(out.dtype).endswith("bfloat16")
        with pytest.warns(FutureWarning, match=r"torch.amp.GradScaler\('cpu'"):
            lib.cpu.amp.GradScaler()


def test_top_level_exceptions_scaler_and_switches():
    assert issubclass(chainrule.OutOfMemoryError, RuntimeError)
    assert chainrule.cuda.OutOfMemoryError is chainrule.OutOfMemoryError
    assert chainrule.GradScaler is chainrule.amp.GradScaler
    try:  # scripts catch it around a step to retry with a smaller batch
        raise chainrule.cuda.OutOfMemoryError("CUDA out of memory")
    except chainrule.OutOfMemoryError as error:
        assert "out of memory" in str(error)
    chainrule.set_warn_always(True)
    try:
        assert chainrule.is_warn_always_enabled()
    finally:
        chainrule.set_warn_always(False)
    assert chainrule.set_flush_denormal(True) is False  # NumPy cannot switch the CPU's flush-to-zero mode
    assert np.float32(1e-40) != 0  # and subnormals stay


# ---- torch.signal.windows
WINDOWS = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_hamming", "hamming", "hann",
           "kaiser", "nuttall"]


@pytest.mark.parametrize("name", WINDOWS)
def test_signal_windows_match_torch(name):
    for M in (0, 1, 2, 5, 16):
        for sym in (True, False):
            for dtype in ("float32", "float64"):
                theirs = getattr(torch.signal.windows, name)(M, sym=sym, dtype=getattr(torch, dtype))
                ours = getattr(chainrule.signal.windows, name)(M, sym=sym, dtype=getattr(chainrule, dtype))
                assert ours.dtype == getattr(chainrule, dtype) and tuple(ours.shape) == tuple(theirs.shape)
                np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=3e-7)


def test_signal_window_options_and_errors_match_torch():
    cases = [("general_cosine", dict(a=[0.5, 0.3, 0.2])), ("exponential", dict(tau=0.5, center=2.0, sym=False)),
             ("gaussian", dict(std=2.5)), ("kaiser", dict(beta=3.0, sym=False)), ("general_hamming", dict(alpha=0.6))]
    for name, options in cases:
        theirs = getattr(torch.signal.windows, name)(7, **options)
        ours = getattr(chainrule.signal.windows, name)(7, **options)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=3e-7)
    bad = [("hann", (-1,), {}), ("hann", (3,), {"dtype": "int64"}), ("gaussian", (3,), {"std": 0}),
           ("exponential", (3,), {"tau": 0}), ("exponential", (3,), {"center": 1.0}), ("kaiser", (3,), {"beta": -1}),
           ("general_cosine", (3,), {"a": 3}), ("general_cosine", (3,), {"a": []})]
    for name, args, options in bad:
        torch_options = {k: getattr(torch, v) if k == "dtype" else v for k, v in options.items()}
        ours_options = {k: getattr(chainrule, v) if k == "dtype" else v for k, v in options.items()}
        with pytest.raises(Exception) as theirs:
            getattr(torch.signal.windows, name)(*args, **torch_options)
        with pytest.raises(type(theirs.value)) as ours:
            getattr(chainrule.signal.windows, name)(*args, **ours_options)
        assert str(ours.value) == str(theirs.value).replace("torch.", "chainrule.")


# ---- torch.quasirandom.SobolEngine
def test_unscrambled_sobol_points_equal_torch():
    for dimension in (1, 3, 10):
        theirs, ours = torch.quasirandom.SobolEngine(dimension), chainrule.quasirandom.SobolEngine(dimension)
        for n in (1, 3, 8):
            np.testing.assert_array_equal(ours.draw(n).numpy(), theirs.draw(n).numpy())
        np.testing.assert_array_equal(ours.draw(4, dtype=chainrule.float64).numpy(),
                                      theirs.draw(4, dtype=torch.float64).numpy())
        ours.fast_forward(5)
        theirs.fast_forward(5)
        np.testing.assert_array_equal(ours.draw(2).numpy(), theirs.draw(2).numpy())
        assert ours.num_generated == theirs.num_generated and repr(ours) == repr(theirs).replace("torch", "chainrule")
        ours.reset()
        theirs.reset()
        np.testing.assert_array_equal(ours.draw_base2(3).numpy(), theirs.draw_base2(3).numpy())


def test_sobol_errors_and_scrambled_draws():
    for lib in (torch, chainrule):
        with pytest.raises(ValueError, match=r"Supported range of dimensionality for SobolEngine is \[1, 21201\]"):
            lib.quasirandom.SobolEngine(0)
        engine = lib.quasirandom.SobolEngine(2)
        engine.draw(3)
        with pytest.raises(ValueError, match="require n to be a power of 2. 3 points have been previously generated"):
            engine.draw_base2(2)
    # scrambled: chainrule's own draws (torch's generator is not chainrule's), repeatable from a seed
    # or from chainrule.manual_seed, inside [0, 1), and still one point per dyadic cell
    a = chainrule.quasirandom.SobolEngine(3, scramble=True, seed=7).draw(16).numpy()
    b = chainrule.quasirandom.SobolEngine(3, scramble=True, seed=7).draw(16).numpy()
    np.testing.assert_array_equal(a, b)
    assert ((a >= 0) & (a < 1)).all()
    for column in a.T:
        assert sorted(np.floor(column * 16).astype(int)) == list(range(16))
    chainrule.manual_seed(3)
    c = chainrule.quasirandom.SobolEngine(3, scramble=True).draw(4).numpy()
    chainrule.manual_seed(3)
    np.testing.assert_array_equal(c, chainrule.quasirandom.SobolEngine(3, scramble=True).draw(4).numpy())


# ---- ATen spellings beyond the registry's samples
def test_in_place_top_level_forms_write_into_the_input():
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    for name, args in [("celu_", (0.5,)), ("selu_", ()), ("threshold_", (0.1, -1.0)), ("rrelu_", (0.1, 0.3, False))]:
        ours, theirs = chainrule.tensor(data), torch.tensor(data)
        assert getattr(chainrule, name)(ours, *args) is ours
        getattr(torch, name)(theirs, *args)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)
    for name in ("dropout_", "alpha_dropout_", "feature_dropout_", "feature_alpha_dropout_"):
        x = chainrule.tensor(data)
        assert getattr(chainrule, name)(x, 0.5, True) is x
    x = chainrule.tensor(data)
    chainrule.dropout_(x, 0.5, True)
    kept = x.numpy() != 0
    np.testing.assert_allclose(x.numpy()[kept], 2 * data[kept], rtol=1e-6)
    for lib in (torch, chainrule):
        y = lib.ones(2, 3, requires_grad=True) * 2
        assert lib.detach_(y) is y and not y.requires_grad
        z = lib.zeros(5)
        assert tuple(lib.resize_as_(z, lib.zeros(2, 2)).shape) == (2, 2)
        w = lib.arange(6.0)
        assert lib.as_strided_(w, (2, 2), (1, 2)) is w
        assert w.tolist() == [[0.0, 2.0], [1.0, 3.0]]


def test_native_dropout_training_mask_and_gradient():
    chainrule.manual_seed(0)
    x = chainrule.ones(200, 50, requires_grad=True)
    output, mask = chainrule.native_dropout(x, 0.3, True)
    assert mask.dtype == chainrule.bool and type(output.grad_fn).__name__ == "NativeDropoutBackward0"
    np.testing.assert_allclose(output.detach().numpy(), mask.numpy() / 0.7, rtol=1e-6)
    assert abs(mask.float().mean().item() - 0.7) < 0.02
    output.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), mask.numpy() / 0.7, rtol=1e-6)


def test_native_batch_norm_statistics_and_running_update_match_torch():
    data = np.random.default_rng(1).standard_normal((6, 3, 2)).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        mean, var = lib.zeros(3), lib.ones(3)
        out, save_mean, save_invstd = lib.native_batch_norm(lib.tensor(data), None, None, mean, var, True, 0.2, 1e-5)
        results.append([t.detach().numpy() for t in (out, save_mean, save_invstd, mean, var)])
    for ours, theirs in zip(*reversed(results)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_empty_permuted_layout_and_errors_match_torch():
    for size, layout in [((2, 3, 4), (0, 2, 1)), ((2, 3, 4, 5), (0, 2, 3, 1)), ((3,), (0,))]:
        ours, theirs = chainrule.empty_permuted(size, layout), torch.empty_permuted(size, layout)
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.stride() == theirs.stride()
    for size, layout in [((2, 3), (0, 0)), ((2, 3), (0, 1, 2))]:
        with pytest.raises(RuntimeError) as theirs:
            torch.empty_permuted(size, layout)
        with pytest.raises(RuntimeError) as ours:
            chainrule.empty_permuted(size, layout)
        assert str(ours.value) == str(theirs.value)


def test_segment_reduce_empty_segments_initial_and_errors_match_torch():
    data = [1.0, 2.0, 3.0, 4.0, 5.0]
    for reduce in ("sum", "mean", "max", "amax", "min", "amin", "prod"):
        for options in (dict(lengths=[2, 0, 3]), dict(offsets=[0, 2, 2, 5]), dict(lengths=[2, 0, 3], initial=2.0)):
            theirs = torch.segment_reduce(torch.tensor(data), reduce,
                                          **{k: torch.tensor(v) if isinstance(v, list) else v for k, v in options.items()})
            ours = chainrule.segment_reduce(chainrule.tensor(data), reduce, **{
                k: chainrule.tensor(v) if isinstance(v, list) else v for k, v in options.items()})
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    for reduce, options in [("sum", {}), ("foo", {"lengths": [5]}), ("sum", {"lengths": [2, 1]})]:
        with pytest.raises(RuntimeError) as theirs:
            torch.segment_reduce(torch.tensor(data), reduce, **{k: torch.tensor(v) for k, v in options.items()})
        with pytest.raises(RuntimeError) as ours:
            chainrule.segment_reduce(chainrule.tensor(data), reduce, **{k: chainrule.tensor(v) for k, v in options.items()})
        assert str(ours.value) == str(theirs.value)


def test_lstm_function_matches_the_module_of_the_same_weights():
    torch.manual_seed(0)
    module = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True)
    x, h0, c0 = torch.randn(3, 2, 4), torch.randn(4, 2, 5), torch.randn(4, 2, 5)
    expected, (h_n, c_n) = module(x, (h0, c0))
    weights = [chainrule.tensor(w.detach().numpy()) for w in module._flat_weights]
    output, h, c = chainrule.lstm(chainrule.tensor(x.numpy()), (chainrule.tensor(h0.numpy()), chainrule.tensor(c0.numpy())),
                                  weights, True, 2, 0.0, False, True, False)
    for ours, theirs in ((output, expected), (h, h_n), (c, c_n)):
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


# ---- geqrf / ormqr / vander
def test_geqrf_records_and_refuses_a_gradient_as_torch():
    data = np.random.default_rng(2).standard_normal((4, 3))
    for lib in (torch, chainrule):
        a, tau = lib.geqrf(lib.tensor(data, requires_grad=True))
        assert a.requires_grad and type(a.grad_fn).__name__ == "GeqrfBackward0"
        with pytest.raises(NotImplementedError, match="the derivative for 'geqrf' is not implemented."):
            a.sum().backward()
    for bad in (np.ones(3), np.ones((3, 3), dtype=np.int64)):
        with pytest.raises(Exception) as theirs:
            torch.geqrf(torch.tensor(bad))
        with pytest.raises(type(theirs.value)) as ours:
            chainrule.geqrf(chainrule.tensor(bad))
        assert str(ours.value) == str(theirs.value)


def test_ormqr_recovers_the_qr_product_and_gradchecks():
    data = np.random.default_rng(3).standard_normal((2, 5, 3))
    a, tau = chainrule.geqrf(chainrule.tensor(data))
    r = chainrule.triu(a[..., :3, :])
    # Q (the first 3 columns, via ormqr on the identity) times R is the input again
    q = chainrule.ormqr(a, tau, chainrule.eye(5, 3, dtype=chainrule.float64).expand(2, 5, 3))
    np.testing.assert_allclose((q @ r).numpy(), data, atol=1e-12)
    other = chainrule.tensor(np.random.default_rng(4).standard_normal((2, 3, 5)), requires_grad=True)
    assert gradcheck(lambda A, T, C: chainrule.ormqr(A, T, C, left=False, transpose=True),
                     (a.detach().requires_grad_(), tau.detach().requires_grad_(), other))


def test_vander_is_differentiable_where_torch_213_fails_its_own_check():
    x = chainrule.tensor([0.5, -1.0, 2.0], dtype=chainrule.float64, requires_grad=True)
    for options in ({}, {"N": 4, "increasing": True}):
        assert gradcheck(lambda t, options=options: chainrule.vander(t, **options), (x,))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.vander(torch.tensor([0.5, -1.0], requires_grad=True)).sum().backward()
    for bad, options in ((np.ones((2, 2)), {}), (np.ones(2), {"N": -1})):
        with pytest.raises(RuntimeError) as theirs:
            torch.vander(torch.tensor(bad), **options)
        with pytest.raises(RuntimeError) as ours:
            chainrule.vander(chainrule.tensor(bad), **options)
        assert str(ours.value) == str(theirs.value)


def test_warnings_stay_quiet_for_the_new_names():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chainrule.quasirandom.SobolEngine(2).draw(3)  # SciPy's power-of-2 warning is not torch's
        chainrule.signal.windows.hann(4)


# ---- Categorical.sample: one uniform per draw through each row's cumulative probabilities
def _chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = counts.sum() * probs
    kept = expected > 0
    return float((((counts - expected) ** 2)[kept] / expected[kept]).sum())


@pytest.mark.parametrize("rows, draws", [(3, (20000,)), (500, (40,))], ids=["per_row_search", "batched_search"])
def test_categorical_frequencies_follow_the_probabilities(rows, draws):
    rng = np.random.default_rng(5)
    probs = rng.random((rows, 6))
    probs[:, 2] = 0  # never drawn
    probs /= probs.sum(-1, keepdims=True)
    chainrule.manual_seed(11)
    samples = chainrule.distributions.Categorical(probs=chainrule.tensor(probs)).sample(draws)
    assert tuple(samples.shape) == draws + (rows,) and samples.dtype == chainrule.int64
    values = samples.numpy()
    assert not (values == 2).any() and values.min() >= 0 and values.max() <= 5
    # chi-square with 4 degrees of freedom (the zero-probability class adds nothing): 99.99th percentile 23.5.
    # Pooled over rows the expected share of a class is the rows' mean probability (a sum of multinomials
    # varies less than one multinomial, so the bound is conservative)
    pooled = np.bincount(values.reshape(-1), minlength=6)
    assert _chi_square(pooled, probs.mean(0)) < 23.5
    if draws[0] >= 10000:  # enough draws to test each row on its own
        for r in range(rows):
            assert _chi_square(np.bincount(values[:, r], minlength=6), probs[r]) < 23.5


def test_categorical_draws_repeat_under_manual_seed_and_follow_logits_batches():
    d = chainrule.distributions.Categorical(logits=chainrule.randn(4, 3, 5))
    chainrule.manual_seed(2)
    first = d.sample((7,)).numpy()
    chainrule.manual_seed(2)
    np.testing.assert_array_equal(d.sample((7,)).numpy(), first)
    assert first.shape == (7, 4, 3)
    one = chainrule.distributions.Categorical(probs=chainrule.tensor([0.0, 0.0, 1.0]))
    assert one.sample((50,)).numpy().tolist() == [2] * 50 and tuple(one.sample().shape) == ()


def test_categorical_samples_on_the_standin_device():
    with chainrule._backend.use_standin_cuda():
        probs = chainrule.tensor([[0.1, 0.0, 0.9], [0.5, 0.5, 0.0]], device="cuda")
        samples = chainrule.distributions.Categorical(probs=probs).sample((1000,))
        assert samples.device.type == "cuda"
        values = samples.cpu().numpy()
    assert not (values[:, 0] == 1).any() and not (values[:, 1] == 2).any()
    assert abs((values[:, 0] == 2).mean() - 0.9) < 0.05


# ---- small names scripts reach for
def test_device_module_lookup_and_deterministic_debug_mode_match_torch():
    for device in ("cpu", "cuda:1", "mps", "xpu"):
        assert chainrule.get_device_module(device).__name__ == torch.get_device_module(device).__name__.replace(
            "torch", "chainrule")
    assert chainrule.get_device_module().__name__ == "chainrule.cpu"  # no accelerator here, as torch's answer
    assert torch.get_device_module().__name__ == "torch.cpu"
    for mode in ("warn", 2, "default", 1, 0):
        for lib in (torch, chainrule):
            lib.set_deterministic_debug_mode(mode)
        assert chainrule.get_deterministic_debug_mode() == torch.get_deterministic_debug_mode()
        assert chainrule.are_deterministic_algorithms_enabled() == torch.are_deterministic_algorithms_enabled()
    for bad in ("x", 5):
        with pytest.raises(RuntimeError) as theirs:
            torch.set_deterministic_debug_mode(bad)
        with pytest.raises(RuntimeError) as ours:
            chainrule.set_deterministic_debug_mode(bad)
        assert str(ours.value) == str(theirs.value)


def test_small_tensor_methods_match_torch():
    for lib in (torch, chainrule):
        x = lib.tensor([1, 5, -3], dtype=lib.int32)
        assert str(x.char().dtype).endswith("int8")
        assert x.bitwise_not_() is x and x.tolist() == [-2, -6, 2]
        assert x.const_data_ptr() == x.data_ptr()
    assert chainrule.zeros(2).record_stream(None) is None  # accepted; CuPy's pool keeps no record
    assert int(chainrule.nn.attention.SDPBackend.MATH) == int(torch.nn.attention.SDPBackend.MATH)
    with chainrule.nn.attention.sdpa_kernel(chainrule.nn.attention.SDPBackend.MATH):
        q = chainrule.ones(1, 2, 3)
        assert tuple(chainrule.nn.functional.scaled_dot_product_attention(q, q, q).shape) == (1, 2, 3)


def test_backends_cuda_sdp_kernel_sets_and_restores_the_switches_as_torch():
    for lib in (torch, chainrule):
        with pytest.warns(FutureWarning, match="sdp_kernel"):
            with lib.backends.cuda.sdp_kernel(enable_flash=False, enable_mem_efficient=False):
                assert not lib.backends.cuda.flash_sdp_enabled() and lib.backends.cuda.math_sdp_enabled()
                assert not lib.backends.cuda.mem_efficient_sdp_enabled()
        assert lib.backends.cuda.flash_sdp_enabled() and lib.backends.cuda.mem_efficient_sdp_enabled()
        assert lib.backends.cuda.SDPBackend is lib.nn.attention.SDPBackend
    assert chainrule.backends.cuda.is_flash_attention_available() is False


def test_every_distribution_module_is_an_attribute_after_import_as_in_torch():
    for name in ("beta", "binomial", "cauchy", "chi2", "dirichlet", "geometric", "gumbel", "half_cauchy", "half_normal",
                 "laplace", "log_normal", "multinomial", "one_hot_categorical", "poisson", "relaxed_bernoulli",
                 "relaxed_categorical", "studentT"):
        theirs, ours = getattr(torch.distributions, name), getattr(chainrule.distributions, name)
        classes = [n for n in dir(theirs) if n[0].isupper() and getattr(theirs, n).__module__ == theirs.__name__]
        for cls in classes:
            # the package re-exports what torch's does (not LogitRelaxedBernoulli/ExpRelaxedCategorical)
            if hasattr(torch.distributions, cls):
                assert getattr(ours, cls) is getattr(chainrule.distributions, cls)
            else:
                assert getattr(ours, cls).__name__ == cls and not hasattr(chainrule.distributions, cls)
