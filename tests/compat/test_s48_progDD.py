"""Compared with torch 2.13: gaps the progDD corpus programs' probes found (score_sde_pc_sampler,
diffwave_vocoder, deepspeech2_rnn_bn): F.ctc_loss / nn.CTCLoss refusing non-integral length tensors and
mixed or float length lists as torch.ctc_loss's two overloads do, before any other check."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

I_LENGTHS = [6, 5, 4]
T_LENGTHS = [3, 2, 1]


def _ctc_outcome(lib, make_lengths, **kwargs):
    """What F.ctc_loss and nn.CTCLoss(reduction='none') do on the same log-probs: their losses and
    gradient, or (exception type, message)."""
    rng = np.random.RandomState(1)
    log_probs = lib.tensor(rng.randn(6, 3, 5).astype(np.float32)).log_softmax(-1)
    if kwargs.pop("zero_dim", False):
        log_probs = lib.tensor(1.0)
    log_probs.requires_grad_(True)
    targets = lib.tensor([1, 2, 2, 3, 1, 4])
    input_lengths, target_lengths = make_lengths(lib)
    try:
        loss = lib.nn.functional.ctc_loss(log_probs, targets, input_lengths, target_lengths, **kwargs)
        losses = lib.nn.CTCLoss(reduction="none", **kwargs)(log_probs, targets, input_lengths, target_lengths)
    except Exception as error:  # noqa: BLE001 - any refusal is compared
        return type(error).__name__, str(error)
    loss.backward()
    return "ok", round(loss.item(), 5), np.round(losses.detach().numpy(), 5).tolist(), \
        np.round(log_probs.grad.numpy(), 5).tolist()


LENGTHS = {
    "float input_lengths": lambda L: (L.tensor(I_LENGTHS, dtype=L.float32), L.tensor(T_LENGTHS)),
    "double target_lengths": lambda L: (L.tensor(I_LENGTHS), L.tensor(T_LENGTHS, dtype=L.float64)),
    "both float": lambda L: (L.tensor(I_LENGTHS, dtype=L.float32), L.tensor(T_LENGTHS, dtype=L.float64)),
    "bool input_lengths": lambda L: (L.tensor([True, True, True]), L.tensor([1, 1, 1])),
    "bool target_lengths": lambda L: (L.tensor(I_LENGTHS), L.tensor([True, True, True])),
    "complex input_lengths": lambda L: (L.tensor(I_LENGTHS, dtype=L.complex64), L.tensor(T_LENGTHS)),
    "float tensor and list": lambda L: (L.tensor(I_LENGTHS, dtype=L.float32), T_LENGTHS),
    "list and float tensor": lambda L: (I_LENGTHS, L.tensor(T_LENGTHS, dtype=L.float32)),
    "list and int tensor": lambda L: (I_LENGTHS, L.tensor(T_LENGTHS)),
    "int tensor and list": lambda L: (L.tensor(I_LENGTHS), T_LENGTHS),
    "float list": lambda L: ([6.0, 5.0, 4.0], T_LENGTHS),
    "list holding a float tensor": lambda L: ([L.tensor(6.0), 5, 4], T_LENGTHS),
    # still taken, as torch takes them
    "int lists": lambda L: (I_LENGTHS, T_LENGTHS),
    "int tuples": lambda L: (tuple(I_LENGTHS), tuple(T_LENGTHS)),
    "int32 tensors": lambda L: (L.tensor(I_LENGTHS, dtype=L.int32), L.tensor(T_LENGTHS, dtype=L.int32)),
    "int8 and uint8 tensors": lambda L: (L.tensor(I_LENGTHS, dtype=L.int8), L.tensor(T_LENGTHS, dtype=L.uint8)),
    "int16 tensors": lambda L: (L.tensor(I_LENGTHS, dtype=L.int16), L.tensor(T_LENGTHS, dtype=L.int16)),
}


@pytest.mark.parametrize("case", sorted(LENGTHS))
def test_ctc_loss_lengths_as_torch(case):
    make = LENGTHS[case]
    assert _ctc_outcome(chainrule, make) == _ctc_outcome(torch, make)


@pytest.mark.parametrize("kwargs", [{"blank": 9}, {"zero_dim": True}, {"zero_infinity": True, "reduction": "sum"}])
def test_ctc_loss_integral_check_comes_first(kwargs):
    # torch checks the lengths' dtype before the blank's range and log_probs' dims
    def make(L):
        return L.tensor(I_LENGTHS, dtype=L.float32), L.tensor(T_LENGTHS)

    ours, theirs = _ctc_outcome(chainrule, make, **dict(kwargs)), _ctc_outcome(torch, make, **dict(kwargs))
    assert ours == theirs
    assert ours == ("RuntimeError", "input_lengths must be integral")


def test_ctc_loss_bad_reduction_before_lengths():
    # F.ctc_loss maps the reduction to its enum in Python, before torch.ctc_loss sees the lengths
    def make(L):
        return L.tensor(I_LENGTHS, dtype=L.float32), T_LENGTHS

    assert _ctc_outcome(chainrule, make, reduction="avg") == _ctc_outcome(torch, make, reduction="avg")


# constructors that raise torch's own words: bare, without naming_the_class's "Class(args): " in front
CONSTRUCTOR_REFUSALS = {
    "Hardtanh(20, 0)": lambda nn: nn.Hardtanh(20, 0),
    "Hardtanh(1, 1)": lambda nn: nn.Hardtanh(1, 1),
    "Hardtanh(min_val=2.0, max_val=-2.0)": lambda nn: nn.Hardtanh(min_val=2.0, max_val=-2.0),
    "AdaptiveLogSoftmaxWithLoss(8, 10, [])": lambda nn: nn.AdaptiveLogSoftmaxWithLoss(8, 10, []),
    "AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3])": lambda nn: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3]),
    "AdaptiveLogSoftmaxWithLoss(8, 10, [5, 12])": lambda nn: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5, 12]),
    "Unflatten(1, 3)": lambda nn: nn.Unflatten(1, 3),
    "Unflatten(1, (2, 2.5))": lambda nn: nn.Unflatten(1, (2, 2.5)),
    "FractionalMaxPool2d(2, output_ratio=1.5)": lambda nn: nn.FractionalMaxPool2d(2, output_ratio=1.5),
    "FractionalMaxPool2d(2, output_ratio=(0.5, 1.5))": lambda nn: nn.FractionalMaxPool2d(2, output_ratio=(0.5, 1.5)),
    "FractionalMaxPool3d(2, output_ratio=2)": lambda nn: nn.FractionalMaxPool3d(2, output_ratio=2),
    "FractionalMaxPool2d(2, output_size=3, output_ratio=0.5)":
        lambda nn: nn.FractionalMaxPool2d(2, output_size=3, output_ratio=0.5),
    "Sequential(3)": lambda nn: nn.Sequential(3),
    "Sequential(ReLU(), 'x')": lambda nn: nn.Sequential(nn.ReLU(), "x"),
    "ModuleDict({'a': 3})": lambda nn: nn.ModuleDict({"a": 3}),
    "ModuleDict({1: ReLU()})": lambda nn: nn.ModuleDict({1: nn.ReLU()}),
    "Conv2d(4, 6, 3, padding='foo')": lambda nn: nn.Conv2d(4, 6, 3, padding="foo"),
    "Conv1d(4, 6, 3, padding='full')": lambda nn: nn.Conv1d(4, 6, 3, padding="full"),
}


def _refusal(lib, build):
    try:
        build(lib.nn)
    except Exception as error:  # noqa: BLE001 - any refusal is compared
        return type(error).__name__, str(error)
    return "built", None


@pytest.mark.parametrize("case", sorted(CONSTRUCTOR_REFUSALS))
def test_constructor_refusal_in_torchs_words(case):
    build = CONSTRUCTOR_REFUSALS[case]
    theirs = _refusal(torch, build)
    assert theirs[0] != "built"
    assert _refusal(chainrule, build) == theirs


def test_constructor_refusal_from_deep_inside_still_names_the_call():
    # naming_the_class's prefix stays for what is raised deep inside (a parameter's empty())
    kind, message = _refusal(chainrule, lambda nn: nn.Linear(-1, 2))
    assert kind == "RuntimeError"
    assert message.startswith("Linear(in_features=-1, out_features=2): ")


# torch.cov / Tensor.cov: correction is parsed as an int (TypeError for a float, a bool, a str, None;
# ValueError past int64), and negative weights are refused in torch's words (no "but got")
COV_CALLS = {
    "fweights -1": lambda L: L.cov(L.ones(2, 2), fweights=L.tensor([-1, 1])),
    "fweights -3 int32": lambda L: L.cov(L.ones(2, 2), fweights=L.tensor([1, -3], dtype=L.int32)),
    "aweights -1": lambda L: L.cov(L.ones(2, 2), aweights=L.tensor([-1.0, 1.0])),
    "aweights -2.5 float64": lambda L: L.cov(L.ones(2, 2), aweights=L.tensor([-2.5, 1.0], dtype=L.float64)),
    "correction 0.5": lambda L: L.cov(L.arange(8.0).view(2, 4), correction=0.5),
    "correction True": lambda L: L.cov(L.arange(8.0).view(2, 4), correction=True),
    "correction 'a'": lambda L: L.cov(L.arange(8.0).view(2, 4), correction="a"),
    "correction None": lambda L: L.cov(L.arange(8.0).view(2, 4), correction=None),
    "correction 2**70": lambda L: L.cov(L.arange(8.0).view(2, 4), correction=2**70),
    "method correction 0.5": lambda L: L.arange(8.0).view(2, 4).cov(correction=0.5),
    "correction float on 3-d input": lambda L: L.cov(L.ones(2, 2, 2), correction=1.5),
    # still taken
    "correction 0": lambda L: L.cov(L.arange(8.0).view(2, 4), correction=0),
    "correction 2": lambda L: L.cov(L.arange(8.0).view(2, 4), correction=2),
    "correction 0-d int tensor": lambda L: L.cov(L.arange(8.0).view(2, 4), correction=L.tensor(1)),
    "correction numpy int": lambda L: L.cov(L.arange(8.0).view(2, 4), correction=np.int64(1)),
    "method correction 0": lambda L: L.arange(8.0).view(2, 4).cov(correction=0),
}


def _cov_outcome(lib, call):
    try:
        result = call(lib)
    except Exception as error:  # noqa: BLE001 - any refusal is compared
        return type(error).__name__, str(error)
    return "ok", np.round(result.numpy(), 5).tolist()


@pytest.mark.parametrize("case", sorted(COV_CALLS))
def test_cov_arguments_as_torch(case):
    call = COV_CALLS[case]
    assert _cov_outcome(chainrule, call) == _cov_outcome(torch, call)


# torch.cuda.amp.custom_fwd / custom_bwd (deprecated spellings of amp.custom_fwd(device_type='cuda')),
# amp_definitely_not_available, autocast's .device; amp.custom_fwd/custom_bwd in torch's steps
def _name(dtype):
    return str(dtype).split(".")[-1]


def _custom_function_run(lib, autocast_dtype, enabled):
    import warnings

    events = []

    class Cast(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu", cast_inputs=lib.float32)
        def forward(ctx, x, d):
            events.append(("fwd", _name(x.dtype), _name(d["a"].dtype), [_name(t.dtype) for t in d["l"]],
                           lib.is_autocast_enabled("cpu"), _name(ctx._dtype), ctx._fwd_used_autocast))
            return (x * 2).to(x.dtype)

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            events.append(("bwd", _name(g.dtype), lib.is_autocast_enabled("cpu"), _name(lib.get_autocast_dtype("cpu"))))
            return g * 2, None

    class Plain(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu")
        def forward(ctx, x):
            events.append(("fwd2", lib.is_autocast_enabled("cpu"), _name(ctx._dtype), ctx._fwd_used_autocast))
            return x * 2

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            events.append(("bwd2", lib.is_autocast_enabled("cpu"), _name(lib.get_autocast_dtype("cpu"))))
            return g * 2

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class Legacy(lib.autograd.Function):
            @staticmethod
            @lib.cuda.amp.custom_fwd(cast_inputs=lib.float32)
            def forward(ctx, x):
                return x * 3

            @staticmethod
            @lib.cuda.amp.custom_bwd
            def backward(ctx, g):
                return g * 3

    events.append(sorted(f"{w.category.__name__}: {w.message}" for w in caught))
    x = lib.ones(2, dtype=lib.bfloat16, requires_grad=True)
    w = lib.ones(2, requires_grad=True)
    with lib.autocast("cpu", dtype=autocast_dtype, enabled=enabled):
        y = Cast.apply(x, {"a": lib.ones(1, dtype=lib.float64), "l": [lib.ones(1, dtype=lib.bfloat16),
                                                                       lib.ones(1, dtype=lib.int64)]})
        z = Plain.apply(w)
        v = Legacy.apply(w)
    (y.float().sum() + z.sum() + v.sum()).backward()
    events.append((x.grad.tolist(), w.grad.tolist()))
    return events


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("dtype_name", ["bfloat16", "float16"])
def test_custom_fwd_bwd_steps_as_torch(dtype_name, enabled):
    ours = _custom_function_run(chainrule, getattr(chainrule, dtype_name), enabled)
    theirs = _custom_function_run(torch, getattr(torch, dtype_name), enabled)
    assert ours == theirs


def _cuda_amp_surface(lib):
    import inspect
    import warnings

    out = [sorted(lib.cuda.amp.__all__), lib.cuda.amp.amp_definitely_not_available(),
           str(inspect.signature(lib.cuda.amp.custom_fwd)), str(inspect.signature(lib.cuda.amp.custom_bwd)),
           lib.cuda.amp.custom_fwd.__name__, lib.autocast("cpu").device, lib.amp.autocast("cuda", enabled=False).device]
    for call in (lambda: lib.cuda.amp.custom_bwd(), lambda: lib.cuda.amp.custom_fwd(lambda c: c, device_type="cuda")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                call()
            except TypeError as error:
                out.append(str(error))
        out.append([str(w.message) for w in caught])
    return out


def test_cuda_amp_surface_as_torch():
    assert _cuda_amp_surface(chainrule) == _cuda_amp_surface(torch)


# F.hardtanh compares its bounds in Python first (Python's TypeError for a str or None, ValueError when
# reversed); F.hardtanh_ is torch's op itself: no order check, reversed bounds clamp everything to max_val
HARDTANH_CALLS = {
    "hardtanh(x, 'a', 1.0)": lambda L, x: L.nn.functional.hardtanh(x, "a", 1.0),
    "hardtanh(x, 0.0, 'b')": lambda L, x: L.nn.functional.hardtanh(x, 0.0, "b"),
    "hardtanh(x, None, 1.0)": lambda L, x: L.nn.functional.hardtanh(x, None, 1.0),
    "hardtanh(x, 2.0, 1.0)": lambda L, x: L.nn.functional.hardtanh(x, 2.0, 1.0),
    "hardtanh(x, 2.0, 1.0, inplace=True)": lambda L, x: L.nn.functional.hardtanh(x.clone(), 2.0, 1.0, inplace=True),
    "hardtanh_(x, 2.0, 1.0)": lambda L, x: L.nn.functional.hardtanh_(x.clone(), 2.0, 1.0),
    "hardtanh_(x, 'a', 1.0)": lambda L, x: L.nn.functional.hardtanh_(x.clone(), "a", 1.0),
    "hardtanh_(int, 5, 1)": lambda L, x: L.nn.functional.hardtanh_(L.tensor([-3, 0, 25]), 5, 1),
    "hardtanh_(x[1:3], 2.0, 1.0) base": lambda L, x: (lambda b: (L.nn.functional.hardtanh_(b[1:3], 2.0, 1.0), b)[1])(
        x.clone()),
    "hardtanh_(x, nan, 1.0)": lambda L, x: L.nn.functional.hardtanh_(x.clone(), float("nan"), 1.0),
    "hardtanh_(x, 0.0, 1.0)": lambda L, x: L.nn.functional.hardtanh_(x.clone(), 0.0, 1.0),
    "relu6(x, inplace=True)": lambda L, x: L.nn.functional.relu6(x.clone(), inplace=True),
}


def _hardtanh_outcome(lib, call):
    x = lib.tensor([-3.0, -0.5, 0.0, 0.5, 1.0, 3.0, 25.0])
    try:
        result = call(lib, x)
    except Exception as error:  # noqa: BLE001 - any refusal is compared
        return type(error).__name__, str(error)
    return "ok", str(result.dtype).split(".")[-1], np.nan_to_num(result.double().numpy(), nan=9e9).tolist()


@pytest.mark.parametrize("case", sorted(HARDTANH_CALLS))
def test_hardtanh_bounds_as_torch(case):
    call = HARDTANH_CALLS[case]
    assert _hardtanh_outcome(chainrule, call) == _hardtanh_outcome(torch, call)


@pytest.mark.parametrize("bounds", [(2.0, 1.0), (0.0, 1.0)])
def test_hardtanh_inplace_gradient_and_node_as_torch(bounds):
    def run(lib):
        t = lib.tensor([-3.0, -0.5, 0.0, 0.5, 1.0, 3.0, 25.0], requires_grad=True)
        y = lib.nn.functional.hardtanh_(t * 1, *bounds)
        y.sum().backward()
        return type(y.grad_fn).__name__, y.tolist(), t.grad.tolist()

    assert run(chainrule) == run(torch)


# in-place leaky_relu with a negative (or NaN) slope: the values as torch's, and a backward that refuses in
# torch's words (its LeakyReluBackward1 takes the gradient from the result)
LEAKY_IN_PLACE = {
    "leaky_relu(inplace=True) -0.5": lambda L, t: L.nn.functional.leaky_relu(t * 1, -0.5, inplace=True),
    "leaky_relu_ -0.5": lambda L, t: L.nn.functional.leaky_relu_(t * 1, -0.5),
    "LeakyReLU(-0.1, inplace=True)": lambda L, t: L.nn.LeakyReLU(-0.1, inplace=True)(t * 1),
    "view of a non-leaf, -0.5": lambda L, t: (lambda b: (L.nn.functional.leaky_relu(b[0:2], -0.5, inplace=True),
                                                         b)[1])(t * 1),
    "float64, -0.5": lambda L, t: L.nn.functional.leaky_relu(t.double() * 1, -0.5, inplace=True),
    "nan slope": lambda L, t: L.nn.functional.leaky_relu(t * 1, float("nan"), inplace=True),
    # still differentiable
    "slope 0": lambda L, t: L.nn.functional.leaky_relu(t * 1, 0.0, inplace=True),
    "slope 0.2": lambda L, t: L.nn.functional.leaky_relu(t * 1, 0.2, inplace=True),
    "out of place -0.5": lambda L, t: L.nn.functional.leaky_relu(t, -0.5),
}


def _leaky_outcome(lib, call):
    t = lib.tensor([-1.0, 2.0, 0.0], requires_grad=True)
    y = call(lib, t)
    forward = (type(y.grad_fn).__name__, np.nan_to_num(y.detach().double().numpy(), nan=9e9).tolist())
    try:
        y.sum().backward()
    except RuntimeError as error:
        return forward, str(error)
    return forward, t.grad.tolist()


@pytest.mark.parametrize("case", sorted(LEAKY_IN_PLACE))
def test_leaky_relu_in_place_negative_slope_as_torch(case):
    call = LEAKY_IN_PLACE[case]
    assert _leaky_outcome(chainrule, call) == _leaky_outcome(torch, call)
