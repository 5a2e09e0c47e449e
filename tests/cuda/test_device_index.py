"""Device names and indices as torch treats them: ``device(...)`` parses by torch's grammar (same
errors, same messages as torch 2.13), any index is fine to construct, and using a device the
machine lacks raises — on a machine without CUDA as torch's CPU build does (AssertionError /
RuntimeError), on the one-device stand-in with CUDA's "invalid device ordinal" — never a tensor
silently made on another device."""

import pytest

import chainrule
from chainrule._backend import use_standin_cuda

torch = pytest.importorskip("torch")

NO_GPU = not chainrule.cuda.is_available()

VALID = ["cpu", "cuda", "cuda:0", "cuda:5", "cuda:127", "cpu:0", "cpu:1", "meta", "mps", "xla:0", "hip:2"]
INVALID = ["cuda:-1", "cuda:x", "cuda:0:1", "cuda:", "cuda: 1", "cuda:01", "cuda:+1", " cuda", "cuda ", "cuda:1.0",
           "cpu:-1", "", "CUDA", "gpu", "cuda:99999999999999999999", ":0", "cuda:٣", "cuda\n", "cu da"]


def _outcome(call):
    """(exception type name, message) of ``call()``, or ("ok", str(result))."""
    try:
        return "ok", str(call())
    except Exception as error:  # noqa: BLE001 (comparing torch's exception with ours)
        return type(error).__name__, str(error)


@pytest.mark.parametrize("text", VALID + INVALID)
def test_device_strings_parse_as_torch(text):
    ours, theirs = _outcome(lambda: chainrule.device(text)), _outcome(lambda: torch.device(text))
    assert ours == theirs


@pytest.mark.parametrize("args", [("cuda", 1), ("cuda", 0), ("cpu", 0), ("cuda", -1), ("cuda:1", 1), ("cuda", "1"),
                                  ("cuda", True), ("cuda", 1.0), ("mps", 3)],
                         ids=repr)
def test_device_with_an_index_argument_as_torch(args):
    ours, theirs = _outcome(lambda: chainrule.device(*args)), _outcome(lambda: torch.device(*args))
    assert ours[0] == theirs[0]
    if ours[0] in ("ok", "RuntimeError"):
        assert ours[1] == theirs[1]
    else:  # torch's TypeError lists its overloads; ours names the argument as its first line does
        assert ours[1] == theirs[1].splitlines()[0]


def test_a_device_keeps_its_index_and_compares():
    assert chainrule.device("cuda", 3) == chainrule.device("cuda:3") != chainrule.device("cuda:2")
    assert str(chainrule.device("cuda:7")) == "cuda:7" and chainrule.device("cuda:7").index == 7
    assert repr(chainrule.device(chainrule.device("cuda:2"))) == "device(type='cuda', index=2)"


@pytest.mark.skipif(not NO_GPU, reason="compares with torch's CPU-only answers")
@pytest.mark.parametrize("use", [
    lambda lib: lib.zeros(2, device="cuda:5"), lambda lib: lib.zeros(2, device="cuda"),
    lambda lib: lib.tensor([1.0], device=lib.device("cuda", 1)), lambda lib: lib.ones(2).to("cuda:3"),
    lambda lib: lib.nn.Linear(2, 2).to("cuda:4"), lambda lib: lib.randn(2, device="cuda:0"),
], ids=["zeros cuda:5", "zeros cuda", "tensor device(cuda, 1)", "to cuda:3", "Module.to cuda:4", "randn cuda:0"])
def test_without_cuda_using_a_cuda_device_raises_as_cpu_torch(use):
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        use(torch)
    # torch raises AssertionError here and RuntimeError elsewhere (.cuda(3)); chainrule's error is both
    with pytest.raises(AssertionError, match="needs CuPy") as caught:
        use(chainrule)
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.skipif(not NO_GPU, reason="compares with torch's CPU-only answers")
def test_without_cuda_an_int_device_names_the_missing_accelerator():
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
            lib.device(1)
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
            lib.zeros(2, device=0)


@pytest.mark.parametrize("kind", ["mps", "xla"])  # meta is a device now (tests/test_meta_device.py)
def test_a_device_type_chainrule_lacks_is_named_when_used(kind):
    assert chainrule.device(kind).type == kind  # constructing it is fine, as in torch
    with pytest.raises(NotImplementedError, match=f"chainrule has no '{kind}' backend"):
        chainrule.zeros(2, device=kind)
    with pytest.raises(RuntimeError, match=f"chainrule has no '{kind}' backend"):  # NotImplementedError is one
        chainrule.ones(2).to(kind)


# ------------------------------------------------------------------------ the one-device stand-in
@pytest.fixture
def one_gpu():
    with use_standin_cuda():
        assert chainrule.cuda.device_count() == 1
        try:
            yield
        finally:
            chainrule.set_default_device(None)


ORDINAL = "CUDA error: invalid device ordinal: cuda:{} was asked for, but this machine has 1 CUDA device"


@pytest.mark.parametrize("use", [
    lambda: chainrule.zeros(2, device="cuda:1"), lambda: chainrule.empty(3, device="cuda:5"),
    lambda: chainrule.tensor([1.0, 2.0], device=chainrule.device("cuda", 1)),
    lambda: chainrule.arange(3, device="cuda:2"), lambda: chainrule.randn(2, device="cuda:1"),
    lambda: chainrule.full((2,), 3.0, device="cuda:4"), lambda: chainrule.zeros(2, device=7),
    lambda: chainrule.ones(2).to("cuda:1"), lambda: chainrule.ones(2).cuda(3),
    lambda: chainrule.ones(2).to(device="cuda:2", dtype=chainrule.float64),
    lambda: chainrule.zeros(2, device="cuda").to("cuda:1"), lambda: chainrule.nn.Linear(2, 2).to("cuda:6"),
    lambda: chainrule.nn.Linear(2, 2).cuda(1), lambda: chainrule.zeros_like(chainrule.ones(2), device="cuda:1"),
    lambda: chainrule.cuda.set_device(1), lambda: chainrule.cuda.set_device("cuda:2"),
    lambda: chainrule.cuda.device(1).__enter__(),
], ids=["zeros", "empty", "tensor", "arange", "randn", "full", "int device", "to", "cuda(3)", "to with dtype",
        "to from cuda:0", "Module.to", "Module.cuda", "zeros_like", "set_device int", "set_device str",
        "cuda.device"])
def test_an_index_the_machine_lacks_raises_invalid_ordinal(one_gpu, use):
    with pytest.raises(RuntimeError, match="CUDA error: invalid device ordinal"):
        use()


def test_the_ordinal_error_names_the_device_and_the_count(one_gpu):
    with pytest.raises(RuntimeError) as caught:
        chainrule.zeros(2, device="cuda:5")
    assert str(caught.value).startswith(ORDINAL.format(5)) and "(cuda:0 to cuda:0)" in str(caught.value)


def test_device_zero_and_the_current_device_work(one_gpu):
    for where in ("cuda", "cuda:0", chainrule.device("cuda", 0), 0):
        assert str(chainrule.zeros(2, device=where).device) == "cuda:0"
    assert str(chainrule.ones(2).to("cuda:0").device) == "cuda:0" and str(chainrule.ones(2).cuda(0).device) == "cuda:0"
    chainrule.cuda.set_device(0)
    chainrule.cuda.set_device(-1)  # ignored, as in torch
    with chainrule.cuda.device(0):
        assert chainrule.cuda.current_device() == 0
    with pytest.raises(ValueError, match="Expected a cuda device, but got: cpu"):
        chainrule.cuda.set_device("cpu")


def test_device_properties_of_a_missing_gpu_raise_torchs_assertion(one_gpu):
    assert chainrule.cuda.get_device_name(0)
    for call in (chainrule.cuda.get_device_name, chainrule.cuda.get_device_properties,
                 chainrule.cuda.get_device_capability):
        with pytest.raises(AssertionError, match="Invalid device id"):
            call(1)


def test_a_failed_move_changes_nothing(one_gpu):
    model = chainrule.nn.Linear(2, 2)
    before = {name: (str(p.device), p.detach().numpy().copy()) for name, p in model.named_parameters()}
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        model.to("cuda:3")
    assert {name: str(p.device) for name, p in model.named_parameters()} == {n: d for n, (d, _) in before.items()}


def test_to_an_int_is_an_accelerator_index_as_torch():
    # DDP scripts move by local rank: model.to(gpu_id), x.to(gpu_id)
    if NO_GPU:
        for lib in (chainrule, torch):
            with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
                lib.ones(2).to(0)
    with use_standin_cuda():
        x = chainrule.ones(2).to(0)
        assert x.device == chainrule.device("cuda", 0)
        assert chainrule.nn.Linear(2, 1).to(0).weight.device == chainrule.device("cuda:0")
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError, match="Device index must not be negative"):
            lib.ones(2).to(-1)
