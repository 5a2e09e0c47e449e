"""Session 29, lane progW: chainrule gaps found around the whole programs pytorch_examples_vae_mnist_cli,
gpt2_sampling_utils and tabnet_sparsemax, each checked against torch 2.13 on the same calls."""

import inspect

import pytest

import chainrule

torch = pytest.importorskip("torch")

NO_ACCELERATOR = not chainrule.accelerator.is_available()


def _outcome(lib, call):
    """What a call gives: ('ok', value) or (exception class name, first line of its message)."""
    try:
        return "ok", call(lib)
    except Exception as e:  # noqa: BLE001  (the class and text are what is compared)
        return type(e).__name__, str(e).splitlines()[0]


def _enter(lib, index):
    with lib.accelerator.device_index(index) as value:
        return value


@pytest.mark.skipif(not NO_ACCELERATOR, reason="compares with torch's answers on a machine without one")
@pytest.mark.parametrize("index", [None, 0, -1, "cuda:0"])
def test_accelerator_device_index_context_matches_torch(index):
    # torch.accelerator.device_index was missing (AttributeError); torch's is a no-op for None and
    # refuses any index when there is no accelerator, a non-int one with a TypeError
    assert _outcome(chainrule, lambda lib: _enter(lib, index)) == _outcome(torch, lambda lib: _enter(lib, index))


def test_accelerator_device_index_is_a_class_taking_one_positional_argument():
    assert isinstance(chainrule.accelerator.device_index, type)
    def parameters(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert parameters(chainrule.accelerator.device_index) == parameters(torch.accelerator.device_index)


@pytest.mark.skipif(not NO_ACCELERATOR, reason="compares with torch's answers on a machine without one")
@pytest.mark.parametrize("name", ["memory_allocated", "max_memory_allocated", "memory_reserved",
                                  "max_memory_reserved", "memory_stats", "get_memory_info", "empty_cache",
                                  "empty_host_cache", "current_stream", "reset_peak_memory_stats"])
def test_accelerator_memory_and_stream_queries_refuse_without_an_accelerator_as_torch(name):
    # memory_allocated/max_memory_allocated/memory_reserved answered 0 and empty_cache None where
    # torch raises; max_memory_reserved, memory_stats, get_memory_info, empty_host_cache and
    # current_stream were missing
    expected = _outcome(torch, lambda lib: getattr(lib.accelerator, name)())
    assert expected[0] == "RuntimeError"
    assert _outcome(chainrule, lambda lib: getattr(lib.accelerator, name)()) == expected


_GENERATOR_MISUSES = {
    "multinomial": lambda lib: lib.multinomial(lib.ones(3), 1, generator=1),
    "Tensor.multinomial": lambda lib: lib.ones(3).multinomial(2, generator="g"),
    "Tensor.normal_": lambda lib: lib.ones(3).normal_(generator=1),
    "Tensor.uniform_": lambda lib: lib.ones(3).uniform_(generator=0),
    "Tensor.exponential_": lambda lib: lib.ones(3).exponential_(generator=1),
    "Tensor.cauchy_": lambda lib: lib.ones(3).cauchy_(generator=1),
    "poisson": lambda lib: lib.poisson(lib.ones(2), generator=1),
}


@pytest.mark.parametrize("call", _GENERATOR_MISUSES.values(), ids=_GENERATOR_MISUSES.keys())
def test_a_generator_that_is_no_generator_is_named_as_torch_names_it(call):
    # torch.multinomial(probs, 1, generator=1) blamed 'num_samples' ("must be Tensor, not int"):
    # the int 1 given as generator is the very object passed as num_samples
    assert _outcome(chainrule, call) == _outcome(torch, call)


# torch's overloaded factories answer with their 'invalid combination of arguments' listing, which
# chainrule reproduces since session 36's signature table took them
_OVERLOADED_GENERATOR_MISUSES = {
    "randn": lambda lib: lib.randn(2, generator=1),
    "randperm": lambda lib: lib.randperm(3, generator=1),
    "bernoulli": lambda lib: lib.bernoulli(lib.ones(2) * 0.5, generator=1),
}


@pytest.mark.parametrize("call", _OVERLOADED_GENERATOR_MISUSES.values(), ids=_OVERLOADED_GENERATOR_MISUSES.keys())
def test_a_generator_that_is_no_generator_raises_torch_type_error_in_overloaded_factories(call):
    assert _outcome(chainrule, call) == _outcome(torch, call)


def _custom_function(lib, backward_result):
    class Custom(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return backward_result(lib, grad)

    return Custom


_BAD_GRADIENTS = {
    "too short": (lambda lib, g: (g[:1], None), (2,)),
    "second input, other shape": (lambda lib, g: (g, lib.ones(4, 5)), (3, 4)),
    "second input, a row": (lambda lib, g: (g, g.sum(0)), (3, 2)),
    # broadcastable to the input: summed back to its shape, no error
    "larger, broadcastable": (lambda lib, g: (lib.ones(5, 2), None), (2,)),
}


@pytest.mark.parametrize("backward_result,shape", _BAD_GRADIENTS.values(), ids=_BAD_GRADIENTS.keys())
def test_a_backward_gradient_of_the_wrong_shape_is_refused_in_torch_words(backward_result, shape):
    # a custom Function's backward returning a gradient that does not fit its input (as Sparsemax's
    # can if its support size is squeezed wrong) raised chainrule's own text; torch's engine says
    # "Function CustomBackward returned an invalid gradient at index 0 - got [1] but expected shape
    # compatible with [2]"
    def run(lib):
        x, y = lib.ones(shape, requires_grad=True), lib.ones(shape, requires_grad=True)
        _custom_function(lib, backward_result).apply(x, y).sum().backward()
        return tuple(x.grad.shape)

    assert _outcome(chainrule, run) == _outcome(torch, run)


def test_a_generator_on_device_none_is_the_cpu_one_as_torch():
    # torch.Generator(device=None) raised chainrule.device's TypeError; torch gives a CPU generator
    draws = []
    for lib in (chainrule, torch):
        generator = lib.Generator(device=None).manual_seed(7)
        assert str(generator.device) == "cpu"
        draws.append(lib.rand(4, generator=generator).tolist())
    assert draws[0] == draws[1]


@pytest.mark.parametrize("device", ["meta", "meta:0", "mps", "xpu", "mtia", "hpu", "lazy", "ipu", "vulkan"])
def test_a_generator_on_a_device_type_without_one_is_refused_as_torch(device):
    # these said "Generator(device='meta') needs a CUDA GPU: CuPy is not installed...", and with a
    # GPU present a meta generator was made
    assert _outcome(chainrule, lambda lib: lib.Generator(device=device)) == _outcome(
        torch, lambda lib: lib.Generator(device=device))


def test_an_xla_generator_is_refused_with_the_first_sentence_of_torch_message():
    kind, message = _outcome(torch, lambda lib: lib.Generator(device="xla"))
    assert _outcome(chainrule, lambda lib: lib.Generator(device="xla")) == (kind, message.split(" This error")[0])
