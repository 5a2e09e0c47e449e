"""The namespaces nearly every torch script touches first answer as torch does on this CPU-only
machine: cuda, backends, accelerator, threads, determinism, compile/jit, constants, finfo/iinfo."""

import importlib
import math
import warnings

import numpy as np
import pytest
import torch

import chainrule

# torch here is a CPU build, as chainrule is without CuPy: both must give the same answers
NO_GPU = not chainrule.cuda.is_available()


@pytest.mark.skipif(not NO_GPU, reason="compares with torch's CPU-only answers")
@pytest.mark.parametrize("call", ["is_available()", "device_count()", "is_initialized()", "memory_allocated()",
                                  "max_memory_allocated()", "memory_reserved()", "max_memory_reserved()",
                                  "is_bf16_supported()", "get_arch_list()", "manual_seed(3)",
                                  "manual_seed_all(-1)", "seed()", "seed_all()", "empty_cache()",
                                  "set_device(-1)"])
def test_cuda_queries_answer_like_cpu_torch(call):
    assert eval("chainrule.cuda." + call) == eval("torch.cuda." + call)


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a GPU")
@pytest.mark.parametrize("call", ["current_device()", "synchronize()", "get_device_name()",
                                  "get_device_properties(0)", "get_device_capability()", "init()"])
def test_cuda_calls_that_need_a_device_raise_assertion_error_like_torch(call):
    with pytest.raises(AssertionError):
        eval("torch.cuda." + call)
    with pytest.raises(AssertionError, match="no CUDA GPU is available"):
        eval("chainrule.cuda." + call)


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a GPU")
def test_cuda_event_and_cuda_seeding_without_gpu():
    with pytest.raises(RuntimeError):
        torch.cuda.Event(enable_timing=True)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        chainrule.cuda.Event(enable_timing=True)
    # without a GPU the CUDA seed leaves the CPU stream alone, as in torch
    chainrule.manual_seed(5)
    first = chainrule.rand(3)
    chainrule.manual_seed(5)
    chainrule.cuda.manual_seed_all(123)
    assert chainrule.equal(chainrule.rand(3), first)


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a GPU")
def test_accelerator_like_cpu_torch():
    for name in ("is_available", "current_accelerator", "device_count"):
        assert getattr(chainrule.accelerator, name)() == getattr(torch.accelerator, name)()
    for name in ("current_device_index", "synchronize"):
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
            getattr(chainrule.accelerator, name)()


def test_backends_flags_are_settable_and_importable_as_modules():
    import chainrule.backends.cudnn as cudnn

    assert cudnn is chainrule.backends.cudnn
    for module in ("cudnn", "mps", "mkldnn", "openmp"):
        assert getattr(chainrule.backends, module).is_available() is False
    assert chainrule.backends.mps.is_built() is False
    assert chainrule.backends.cuda.is_built() is (importlib.util.find_spec("cupy") is not None)
    defaults = {"benchmark": False, "deterministic": False, "enabled": True, "allow_tf32": True}
    for flag, value in defaults.items():
        assert getattr(cudnn, flag) == value == getattr(torch.backends.cudnn, flag)
    assert chainrule.backends.cuda.matmul.allow_tf32 is torch.backends.cuda.matmul.allow_tf32
    try:
        cudnn.benchmark = True
        chainrule.backends.cuda.matmul.allow_tf32 = True
        assert chainrule.backends.cudnn.benchmark is True
        assert chainrule.backends.cuda.matmul.allow_tf32 is True
    finally:
        cudnn.benchmark = False
        chainrule.backends.cuda.matmul.allow_tf32 = False
    chainrule.backends.cuda.enable_flash_sdp(False)
    assert chainrule.backends.cuda.flash_sdp_enabled() is False
    chainrule.backends.cuda.enable_flash_sdp(True)
    assert chainrule.backends.cpu.get_cpu_capability() in ("DEFAULT", "AVX2", "AVX512")


def _thread_settings_restored(monkeypatch) -> None:
    """set_num_threads records the count it was given (torch's intra-op count from then on): put
    chainrule's record back after the test, as the process had it."""
    from chainrule import _config

    for name in ("_blas_limits", "_thread_budget", "_requested_threads"):
        monkeypatch.setattr(_config, name, getattr(_config, name))


def test_num_threads_controls_numpy_blas(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    _thread_settings_restored(monkeypatch)
    original = chainrule.get_num_threads()
    try:
        chainrule.set_num_threads(1)
        assert chainrule.get_num_threads() == 1
        blas = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(n == 1 for n in blas)
    finally:
        chainrule.set_num_threads(original)
    assert chainrule.get_num_threads() == original
    with pytest.raises(RuntimeError, match="positive integer"):
        chainrule.set_num_threads(0)


def test_num_threads_without_threadpoolctl_warns_and_keeps_going(monkeypatch):
    import sys

    _thread_settings_restored(monkeypatch)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # makes `import threadpoolctl` fail
    with pytest.warns(UserWarning, match=r'pip install "chainrule\[threads\]"'):
        chainrule.set_num_threads(2)
    assert chainrule.get_num_threads() >= 1


def test_interop_threads_and_determinism_and_matmul_precision_are_recorded():
    original = chainrule.get_num_interop_threads()
    chainrule.set_num_interop_threads(3)
    assert chainrule.get_num_interop_threads() == 3
    chainrule.set_num_interop_threads(original)
    assert chainrule.are_deterministic_algorithms_enabled() is torch.are_deterministic_algorithms_enabled()
    chainrule.use_deterministic_algorithms(True, warn_only=True)
    assert chainrule.are_deterministic_algorithms_enabled() and chainrule.is_deterministic_algorithms_warn_only_enabled()
    chainrule.use_deterministic_algorithms(False)
    assert chainrule.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == "highest"
    chainrule.set_float32_matmul_precision("high")
    assert chainrule.get_float32_matmul_precision() == "high"
    chainrule.set_float32_matmul_precision("highest")
    with pytest.raises(ValueError, match="'highest', 'high' or 'medium'"):
        chainrule.set_float32_matmul_precision("fast")


def test_compile_and_jit_return_their_argument_and_run_eagerly():
    model = chainrule.nn.Linear(3, 2)
    # a module comes back wrapped, as torch's OptimizedModule (tests/compat/test_compiler_names.py)
    assert chainrule.compile(model)._orig_mod is model
    assert chainrule.compile(mode="max-autotune")(model)._orig_mod is model

    @chainrule.compile
    def double(x):
        return x * 2

    assert double(chainrule.tensor([1.0])).item() == 2.0
    # a scripted module is torch's RecursiveScriptModule, sharing the module's parameters
    # (tests/compat/test_s30_jit2.py compares it with torch's)
    scripted = chainrule.jit.script(model)
    assert type(scripted).__name__ == "RecursiveScriptModule" and scripted.weight is model.weight
    assert chainrule.jit.script(double) is double
    assert chainrule.jit.trace(model, chainrule.zeros(1, 3)) is model
    assert chainrule.jit.is_scripting() is False and chainrule.jit.is_tracing() is False
    assert chainrule.jit.ignore(double) is double and chainrule.jit.ignore(drop=True)(double) is double
    with pytest.raises(NotImplementedError, match="chainrule.save"):
        chainrule.jit.save(model, "model.pt")


def test_jit_script_module_subclass_runs_its_script_methods_eagerly():
    # the old TorchScript form model zoos use (a block subclassing jit.ScriptModule with an
    # @jit.script_method forward that calls a plain method): a Module, trained and evaluated as one
    class Block(chainrule.jit.ScriptModule):
        def __init__(self):
            super().__init__()
            self.p = 0.5
            self.linear = chainrule.nn.Linear(2, 2)

        def keep(self):
            return True

        @chainrule.jit.script_method
        def forward(self, x):
            if self.training and self.keep():
                return self.linear(x)
            return self.linear(x) * self.p

    block = Block()
    assert isinstance(block, chainrule.nn.Module)
    assert list(block.state_dict()) == ["linear.weight", "linear.bias"]
    x = chainrule.ones(1, 2)
    trained = block(x)
    assert block.eval()(x).tolist() == (trained * 0.5).tolist()


def test_constants_finfo_iinfo_match_torch():
    for name in ("inf", "nan", "pi", "e"):
        a, b = getattr(chainrule, name), getattr(torch, name)
        assert (math.isnan(a) and math.isnan(b)) or a == b
    for dtype in ("float16", "float32", "float64"):
        mine, theirs = chainrule.finfo(getattr(chainrule, dtype)), torch.finfo(getattr(torch, dtype))
        for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(mine, field) == getattr(theirs, field), (dtype, field)
    assert repr(chainrule.finfo(chainrule.float32)) == repr(torch.finfo(torch.float32))
    assert chainrule.finfo().eps == torch.finfo().eps
    for dtype in ("uint8", "int8", "int16", "int32", "int64"):
        mine, theirs = chainrule.iinfo(getattr(chainrule, dtype)), torch.iinfo(getattr(torch, dtype))
        assert (mine.bits, mine.min, mine.max) == (theirs.bits, theirs.min, theirs.max)
    with pytest.raises(TypeError):
        chainrule.finfo(chainrule.int64)


def test_public_submodules_are_reachable_by_attribute():
    assert chainrule.nn.utils.clip_grad_norm_ is importlib.import_module("chainrule.nn.utils").clip_grad_norm_
    assert callable(chainrule.nn.utils.parameters_to_vector)
    for path in ("nn.functional", "nn.init", "nn.utils", "nn.modules", "nn.parameter", "optim.lr_scheduler",
                 "utils.data", "autograd", "cuda", "cuda.amp", "amp", "backends", "backends.cudnn",
                 "accelerator", "distributions", "testing", "linalg", "special", "fft", "jit", "onnx"):
        obj = chainrule
        for part in path.split("."):
            obj = getattr(obj, part)
        assert obj is importlib.import_module("chainrule." + path), path


def test_linalg_special_fft_namespaces():
    x = np.array([[3.0, 1.0], [2.0, 4.0]], np.float32)
    for name in ("norm", "inv", "det", "matrix_norm"):
        mine = getattr(chainrule.linalg, name)(chainrule.tensor(x)).numpy()
        np.testing.assert_allclose(mine, getattr(torch.linalg, name)(torch.tensor(x)).numpy(), rtol=1e-6)
    assert issubclass(chainrule.linalg.LinAlgError, RuntimeError)
    values = chainrule.linalg.eigvals(chainrule.tensor(x)).numpy()  # s7: eig/eigvals exist, complex as torch's
    np.testing.assert_allclose(values, torch.linalg.eigvals(torch.tensor(x)).numpy(), rtol=1e-6)
    with pytest.raises(AttributeError):
        chainrule.linalg.np  # noqa: B018 - ops/linalg.py's imports are not torch.linalg names
    v = np.array([-2.0, -0.5, 0.0, 0.3, 1.0, 2.5], np.float32)
    p = np.array([0.1, 0.25, 0.5, 0.75, 0.9, 0.99], np.float32)
    for name, values in [("expit", v), ("erfc", v), ("exp2", v), ("expm1", v), ("log1p", p), ("sinc", v),
                         ("ndtr", v), ("entr", p), ("logit", p), ("round", v * 3)]:
        mine = getattr(chainrule.special, name)(chainrule.tensor(values)).numpy()
        np.testing.assert_allclose(mine, getattr(torch.special, name)(torch.tensor(values)).numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(chainrule.special.xlog1py(chainrule.tensor(p), chainrule.tensor(v + 2)).numpy(),
                               torch.special.xlog1py(torch.tensor(p), torch.tensor(v + 2)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(chainrule.special.logit(chainrule.tensor(p), eps=0.2).numpy(),
                               torch.special.logit(torch.tensor(p), eps=0.2).numpy(), rtol=1e-6)
    np.testing.assert_allclose(chainrule.special.bessel_j0(chainrule.tensor(v)).numpy(),
                               torch.special.bessel_j0(torch.tensor(v)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(chainrule.fft.rfft(chainrule.tensor(v)).numpy(), torch.fft.rfft(torch.tensor(v)).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_special_compositions_have_gradients():
    x = chainrule.tensor([0.3, 1.7], dtype=chainrule.float64, requires_grad=True)
    for name in ("logit", "sinc", "ndtr", "entr", "erfc"):
        fn = getattr(chainrule.special, name)
        assert chainrule.autograd.gradcheck(lambda t, fn=fn: fn(t / 2), (x,)), name


def test_rnn_flatten_parameters_is_accepted():
    lstm = chainrule.nn.LSTM(3, 4)
    before = [p.detach().numpy().copy() for p in lstm.parameters()]
    assert lstm.flatten_parameters() is None
    assert all(np.array_equal(a, p.detach().numpy()) for a, p in zip(before, lstm.parameters()))
    chainrule.nn.GRU(3, 4).flatten_parameters()


def test_cpu_autocast_lowers_matmul_and_disables_itself_for_other_dtypes_like_torch():
    x = chainrule.ones(2, 2)
    with chainrule.autocast("cpu", enabled=False):
        assert (x @ x).dtype == chainrule.float32
    with pytest.warns(UserWarning, match="CPU Autocast only supports dtypes of torch.bfloat16, torch.float16"):
        with chainrule.autocast("cpu", dtype=chainrule.float32):
            assert (x @ x).dtype == chainrule.float32
    with chainrule.autocast("cpu"):  # torch's CPU default is bfloat16
        assert (x @ x).dtype == chainrule.bfloat16
    with chainrule.amp.autocast("cpu", dtype=chainrule.float16):
        assert (x @ x).dtype == chainrule.float16
    assert (x @ x).dtype == chainrule.float32
    with pytest.raises(RuntimeError, match="device type at start of device string: tpu"):  # torch's message
        chainrule.autocast("tpu")

    @chainrule.autocast("cpu", enabled=False)
    def matmul(a):
        return a @ a

    assert matmul(x).shape == (2, 2)


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a GPU")
def test_cuda_autocast_and_grad_scaler_disable_themselves_without_gpu_like_torch():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast("cuda"):
            pass
        with chainrule.autocast("cuda"):
            pass
        with chainrule.cuda.amp.autocast():
            pass
    assert sum("CUDA is not available" in str(w.message) for w in caught) == 3
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = chainrule.cuda.amp.GradScaler()
    assert scaler.is_enabled() is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.cuda.amp.GradScaler().is_enabled() is False


def _train_with_scaler(lib, scaler, steps=4, poison_step=None):
    model = lib.nn.Linear(3, 1)
    with lib.no_grad():
        model.weight.copy_(lib.tensor([[0.1, -0.2, 0.3]]))
        model.bias.fill_(0.05)
    optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
    x = lib.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    y = lib.tensor([[1.0], [0.0]])
    scales = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        if step == poison_step:
            loss = loss * float("inf")
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scales.append(scaler.get_scale())
    return model.weight.detach().numpy(), scales


def test_grad_scaler_matches_torch_on_cpu_including_overflow_skip():
    for poison in (None, 2):
        options = dict(init_scale=1024.0, growth_interval=2)
        with np.errstate(invalid="ignore"):  # the poisoned step computes inf * 0 on purpose
            mine = _train_with_scaler(chainrule, chainrule.amp.GradScaler("cpu", **options), poison_step=poison)
        theirs = _train_with_scaler(torch, torch.amp.GradScaler("cpu", **options), poison_step=poison)
        np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-6)
        assert mine[1] == theirs[1]
    scaler = chainrule.amp.GradScaler("cpu", init_scale=8.0)
    assert scaler.state_dict()["scale"] == 8.0
    disabled = chainrule.amp.GradScaler("cpu", enabled=False)
    loss = chainrule.tensor(2.0)
    assert disabled.scale(loss) is loss and disabled.get_scale() == 1.0


def test_checkpoint_gives_the_gradients_of_the_plain_computation():
    layer = chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.Tanh(), chainrule.nn.Linear(4, 2))
    x = chainrule.randn(5, 3, requires_grad=True)
    grads = []
    for run in (lambda: layer(x),
                lambda: chainrule.utils.checkpoint.checkpoint(layer, x, use_reentrant=False),
                lambda: chainrule.utils.checkpoint.checkpoint_sequential(layer, 2, x, use_reentrant=False)):
        layer.zero_grad()
        x.grad = None
        run().pow(2).sum().backward()
        grads.append([x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in layer.parameters()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            np.testing.assert_array_equal(a, b)


def test_hub_reexports_tqdm_or_a_stand_in_that_counts_progress_on_stderr(monkeypatch, capsys):
    # scripts write ``from torch.hub import tqdm`` (pytorch/examples' vision_transformer)
    import sys

    from chainrule import hub

    assert hub.tqdm is torch.hub.tqdm  # the installed tqdm, found as torch finds it
    monkeypatch.delattr(hub, "tqdm")
    monkeypatch.setitem(sys.modules, "tqdm", None)  # tqdm not installed
    with hub.tqdm(total=8, unit="B") as bar:
        bar.update(2)
        bar.update(2)
    assert capsys.readouterr().err == "\r25.0%\r50.0%\n"
    with hub.tqdm(disable=True) as bar:
        bar.update(5)
    assert capsys.readouterr().err == "" and bar.n == 0


def test_hub_anomaly_default_device_is_complex(monkeypatch):
    monkeypatch.setattr(chainrule.hub, "_hub_dir", None)  # restored after the test
    assert chainrule.hub.get_dir().endswith("hub")
    chainrule.hub.set_dir("/tmp/chainrule-hub")
    assert chainrule.hub.get_dir() == "/tmp/chainrule-hub"
    assert chainrule.is_anomaly_enabled() is torch.is_anomaly_enabled() is False
    chainrule.set_anomaly_enabled(True)
    try:
        assert chainrule.is_anomaly_enabled() is True
    finally:
        chainrule.set_anomaly_enabled(False)
    assert chainrule.get_default_device() == chainrule.device("cpu") and str(torch.get_default_device()) == "cpu"
    chainrule.set_default_device("cpu")
    if not chainrule.cuda.is_available():  # device='cuda' needs CuPy and a GPU: a clear error now
        with pytest.raises(RuntimeError, match="cuda"):
            chainrule.set_default_device("cuda")
    assert chainrule.is_complex(chainrule.zeros(2)) is torch.is_complex(torch.zeros(2)) is False
