"""Session 30, quant3 lane: quantization-aware training compared with torch.

Fake quantization must give torch's floats bit for bit (they are what the trained weights and
the converted integers are computed from) and torch's straight-through gradient; the fake
quantizers must track the same statistics, choose the same scales and zero points, and print
and save as torch's do.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.filterwarnings("ignore:Please use quant_min:UserWarning"),
              pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")]


def _same_floats(ours, theirs) -> int:
    """How many elements differ (NaN equal to NaN)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    return int((~((ours == theirs) | (np.isnan(ours) & np.isnan(theirs)))).sum())


def _with_edges(values: np.ndarray, scale: float, quant_max: int) -> np.ndarray:
    # NaN, both infinities, signed zeros, exact halves (round half to even) and the clamp boundary
    values.flat[:10] = [np.nan, np.inf, -np.inf, 0.0, -0.0, scale * 0.5, scale * 1.5, -scale * 2.5,
                        scale * quant_max, scale * (quant_max + 0.5)]
    return values


def _run_both(fn_name, values, grad, *args, torch_args=None, chainrule_args=None):
    results = []
    for lib, extra in ((torch, torch_args), (chainrule, chainrule_args)):
        x = lib.tensor(values, requires_grad=True)
        y = getattr(lib, fn_name)(x, *(extra if extra is not None else args))
        y.backward(lib.tensor(grad))
        results.append((y.detach().numpy(), x.grad.numpy(), type(y.grad_fn).__name__))
    return results


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("scale,zero_point,quant_min,quant_max",
                         [(0.1, 3, 0, 255), (0.0371, 0, -128, 127), (0.013, 64, 0, 127), (1.7, -3, -8, 7)])
@pytest.mark.parametrize("tensor_qparams", [False, True])
def test_fake_quantize_per_tensor_matches_torch_bit_for_bit(dtype, scale, zero_point, quant_min, quant_max,
                                                            tensor_qparams):
    # a seed of the case's own (str's hash() differs from process to process with PYTHONHASHSEED)
    rng = np.random.default_rng(zlib.crc32(repr((dtype, scale, tensor_qparams)).encode()))
    values = _with_edges((rng.standard_normal(2000) * 3).astype(dtype), scale, quant_max)
    grad = rng.standard_normal(2000).astype(dtype)
    if tensor_qparams:  # the overload taking one-element tensors has its own node name
        torch_args = (torch.tensor(scale), torch.tensor(zero_point), quant_min, quant_max)
        ours_args = (chainrule.tensor(scale), chainrule.tensor(zero_point), quant_min, quant_max)
    else:
        torch_args = ours_args = (scale, zero_point, quant_min, quant_max)
    (t_out, t_grad, t_node), (c_out, c_grad, c_node) = _run_both(
        "fake_quantize_per_tensor_affine", values, grad, torch_args=torch_args, chainrule_args=ours_args)
    assert _same_floats(c_out, t_out) == 0
    assert _same_floats(c_grad, t_grad) == 0
    assert c_node == t_node


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("zero_point_dtype", ["int32", "float32"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_fake_quantize_per_channel_matches_torch_bit_for_bit(dtype, zero_point_dtype, axis):
    rng = np.random.default_rng(axis + 3 * len(dtype) + len(zero_point_dtype))
    values = (rng.standard_normal((4, 5, 6)) * 3).astype(dtype)
    values[0, 0, :3] = [np.nan, np.inf, -np.inf]  # this kernel sends all three to quant_min
    grad = rng.standard_normal(values.shape).astype(dtype)
    channels = values.shape[axis]
    scale = rng.uniform(0.01, 0.5, channels).astype(np.float32)
    zero_point = rng.integers(0, 20, channels).astype(zero_point_dtype)
    if zero_point_dtype == "float32":
        zero_point += rng.uniform(-0.5, 0.5, channels).astype(np.float32)
    (t_out, t_grad, t_node), (c_out, c_grad, c_node) = _run_both(
        "fake_quantize_per_channel_affine", values, grad,
        torch_args=(torch.tensor(scale), torch.tensor(zero_point), axis, 0, 63),
        chainrule_args=(chainrule.tensor(scale), chainrule.tensor(zero_point), axis, 0, 63))
    assert _same_floats(c_out, t_out) == 0
    assert _same_floats(c_grad, t_grad) == 0
    assert c_node == t_node


def _error_of(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return type(error), str(error)
    return None


_X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
_FAKE_QUANTIZE_ERRORS = [
    lambda lib: lib.fake_quantize_per_tensor_affine(lib.tensor(_X), 0.1, 3, 10, 5),
    lambda lib: lib.fake_quantize_per_tensor_affine(lib.tensor(_X), 0.1, 300, 0, 255),
    lambda lib: lib.fake_quantize_per_tensor_affine(lib.tensor(_X).long(), 0.1, 3, 0, 255),
    lambda lib: lib.fake_quantize_per_tensor_affine(lib.tensor(_X), lib.tensor([0.1, 0.2]), lib.tensor(3), 0, 255),
    lambda lib: lib.fake_quantize_per_channel_affine(lib.tensor(_X), lib.ones(3),
                                                     lib.zeros(3, dtype=lib.int64), 0, 0, 255),
    lambda lib: lib.fake_quantize_per_channel_affine(lib.tensor(_X), lib.ones(3, dtype=lib.float64),
                                                     lib.zeros(3, dtype=lib.int32), 0, 0, 255),
    lambda lib: lib.fake_quantize_per_channel_affine(lib.tensor(_X), lib.ones(4), lib.zeros(3, dtype=lib.int32),
                                                     0, 0, 255),
    lambda lib: lib.fake_quantize_per_channel_affine(lib.tensor(_X), lib.ones(4), lib.zeros(4, dtype=lib.int32),
                                                     0, 0, 255),
    lambda lib: lib.fake_quantize_per_channel_affine(lib.tensor(_X), lib.ones(3), lib.zeros(3, dtype=lib.int32),
                                                     2, 0, 255),
    lambda lib: lib.fake_quantize_per_channel_affine(lib.tensor(_X), lib.ones(3),
                                                     lib.full((3,), 300, dtype=lib.int32), 0, 0, 255),
    lambda lib: lib.fake_quantize_per_channel_affine(lib.tensor(_X), lib.ones(3), lib.zeros(3, dtype=lib.int32),
                                                     0, 5, 2),
    lambda lib: lib.fake_quantize_per_channel_affine(lib.tensor(_X), lib.ones(3), lib.zeros(3, dtype=lib.int32),
                                                     -2, 0, 255),
]


@pytest.mark.parametrize("index", range(len(_FAKE_QUANTIZE_ERRORS)))
def test_fake_quantize_errors_match_torch(index):
    theirs = _error_of(lambda: _FAKE_QUANTIZE_ERRORS[index](torch))
    ours = _error_of(lambda: _FAKE_QUANTIZE_ERRORS[index](chainrule))
    assert theirs is not None
    assert ours[0].__name__ == theirs[0].__name__ and ours[1] == theirs[1]


def test_fake_quantize_gradient_is_the_derivative_where_the_clamp_holds():
    # outside [quant_min, quant_max] the output is constant, so the straight-through gradient (0
    # there) is the true derivative and finite differences must agree; inside, the STE passes the
    # gradient unchanged, which torch defines and the comparisons above check
    below = -1.0 - chainrule.rand(6, dtype=chainrule.float64)
    above = 60.0 + chainrule.rand(6, dtype=chainrule.float64)  # beyond 255 steps of either scale
    x = chainrule.cat([below, above]).requires_grad_()
    assert chainrule.autograd.gradcheck(lambda t: chainrule.fake_quantize_per_tensor_affine(t, 0.1, 0, 0, 255), (x,))
    channels = chainrule.tensor([0.1, 0.2], dtype=chainrule.float32)
    zeros = chainrule.zeros(2, dtype=chainrule.int32)
    assert chainrule.autograd.gradcheck(
        lambda t: chainrule.fake_quantize_per_channel_affine(t, channels, zeros, 1, 0, 255), (x.view(6, 2),))
    # in range: the gradient is the upstream one, element for element
    inside = chainrule.tensor([0.05, 1.0, 2.0], requires_grad=True)
    chainrule.fake_quantize_per_tensor_affine(inside, 0.1, 0, 0, 255).sum().backward()
    np.testing.assert_array_equal(inside.grad.numpy(), np.ones(3, np.float32))


def _fake_quantizer_trace(lib, maker_name, backend=None, part=None):
    """A fake quantizer's repr, state_dict keys, and per call its output, input gradient, scale,
    zero point and node name over six calls that switch the observer and fake quantization off and
    on again as a QAT schedule does."""
    quantization = lib.ao.quantization
    make = getattr(quantization.get_default_qat_qconfig(backend), part) if backend else getattr(quantization,
                                                                                                maker_name)
    fake_quantizer = make()
    trace = [repr(fake_quantizer).replace("chainrule", "torch"), list(fake_quantizer.state_dict())]
    rng = np.random.default_rng(len(maker_name) + len(backend or ""))
    weight_like = part == "weight" or "weight" in maker_name
    switches = {2: quantization.disable_observer, 3: quantization.disable_fake_quant,
                4: quantization.enable_fake_quant, 5: quantization.enable_observer}
    for step in range(6):
        shape = (4, 3, 5) if weight_like else (6, 7)
        values = (rng.standard_normal(shape) * (1 + step) + (0.5 if step % 2 else 0)).astype(np.float32)
        if step in switches:
            fake_quantizer.apply(switches[step])
        x = lib.tensor(values, requires_grad=True)
        y = fake_quantizer(x)
        y.backward(lib.tensor(rng.standard_normal(shape).astype(np.float32)))
        trace.append((y.detach().numpy().copy(), x.grad.numpy().copy(), fake_quantizer.scale.numpy().copy(),
                      fake_quantizer.zero_point.numpy().copy(), type(y.grad_fn).__name__))
    scale, zero_point = fake_quantizer.calculate_qparams()
    trace += [repr(fake_quantizer).replace("chainrule", "torch"), scale.numpy(), zero_point.numpy(),
              {key: value.numpy().copy() for key, value in fake_quantizer.state_dict().items()}]
    return trace


_FAKE_QUANTIZERS = [("default_fake_quant", None, None), ("default_weight_fake_quant", None, None),
                    ("default_per_channel_weight_fake_quant", None, None),
                    ("default_fused_act_fake_quant", None, None), ("default_fused_wt_fake_quant", None, None),
                    ("fused_wt_fake_quant_range_neg_127_to_127", None, None),
                    ("fused_per_channel_wt_fake_quant_range_neg_127_to_127", None, None),
                    ("x86", "x86", "activation"), ("x86", "x86", "weight"), ("qnnpack", "qnnpack", "activation"),
                    ("qnnpack", "qnnpack", "weight"), ("fbgemm", "fbgemm", "weight")]


def _assert_same_trace(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for our_item, their_item in zip(ours, theirs):
        if isinstance(their_item, dict):
            assert list(our_item) == list(their_item)
            for key in their_item:
                np.testing.assert_array_equal(our_item[key], their_item[key], err_msg=key)
                assert our_item[key].dtype == their_item[key].dtype, key
        elif isinstance(their_item, tuple):
            for ours_part, theirs_part in zip(our_item, their_item):
                if isinstance(theirs_part, str):
                    assert ours_part == theirs_part
                else:
                    assert _same_floats(ours_part, theirs_part) == 0
        elif isinstance(their_item, np.ndarray):
            np.testing.assert_array_equal(our_item, their_item)
            assert our_item.dtype == their_item.dtype
        else:
            assert our_item == their_item


@pytest.mark.parametrize("maker_name,backend,part", _FAKE_QUANTIZERS)
def test_fake_quantizers_track_torch_through_a_qat_schedule(maker_name, backend, part):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _fake_quantizer_trace(torch, maker_name, backend, part)
        ours = _fake_quantizer_trace(chainrule, maker_name, backend, part)
    _assert_same_trace(ours, theirs)


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
@pytest.mark.parametrize("version", [0, 1])
def test_default_qat_qconfigs_name_torchs_fake_quantizers(backend, version):
    ours = chainrule.ao.quantization.get_default_qat_qconfig(backend, version)
    theirs = torch.ao.quantization.get_default_qat_qconfig(backend, version)
    assert repr(ours).replace("chainrule", "torch") == repr(theirs)
    assert type(ours.activation()).__name__ == type(theirs.activation()).__name__


def test_qat_qconfig_constants_and_errors_match_torch():
    for name in ("default_qat_qconfig", "default_qat_qconfig_v2"):
        ours = getattr(chainrule.ao.quantization, name)
        assert repr(ours).replace("chainrule", "torch") == repr(getattr(torch.ao.quantization, name))
    for lib_call in (lambda q: q.get_default_qat_qconfig("cuda"), lambda q: q.get_default_qat_qconfig("x86", 2),
                     lambda q: q.FakeQuantize(quant_min=-1, quant_max=255),
                     lambda q: q.FakeQuantize(quant_min=0, quant_max=256),
                     lambda q: q.FakeQuantize(quant_min=5, quant_max=2),
                     lambda q: q.FusedMovingAvgObsFakeQuantize(observer=q.MinMaxObserver)):
        theirs = _error_of(lambda call=lib_call: call(torch.ao.quantization))
        ours = _error_of(lambda call=lib_call: call(chainrule.ao.quantization))
        assert theirs is not None and ours == theirs


def test_fake_quantizer_state_dict_round_trips_per_channel_qparams():
    make = chainrule.ao.quantization.default_per_channel_weight_fake_quant
    trained = make()
    trained(chainrule.randn(5, 3))
    fresh = make()
    fresh.load_state_dict(trained.state_dict())
    np.testing.assert_array_equal(fresh.scale.numpy(), trained.scale.numpy())
    assert fresh.scale.shape == (5,) and fresh.zero_point.dtype is chainrule.int32
    # torch accepts the same state_dict into a fresh module
    theirs = torch.ao.quantization.default_per_channel_weight_fake_quant()
    theirs.load_state_dict({key: torch.from_numpy(value.numpy()) for key, value in trained.state_dict().items()})
    np.testing.assert_array_equal(theirs.scale.numpy(), trained.scale.numpy())


def _qat_net(lib):
    nn, quantization = lib.nn, lib.ao.quantization

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.quant = quantization.QuantStub()
            self.conv1, self.bn1, self.relu1 = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)
            self.conv3, self.relu3 = nn.Conv2d(4, 4, 1), nn.ReLU()
            self.fc, self.relu4, self.fc2 = nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3)
            self.dequant = quantization.DeQuantStub()

        def forward(self, x):
            x = self.quant(x)
            x = self.relu1(self.bn1(self.conv1(x)))
            x = self.relu3(self.conv3(self.bn2(self.conv2(x))))
            return self.dequant(self.fc2(self.relu4(self.fc(x.reshape(x.shape[0], -1)))))

    return Net()


_FUSIONS = [["conv1", "bn1", "relu1"], ["conv2", "bn2"], ["conv3", "relu3"], ["fc", "relu4"]]


def _prepared(lib, float_state, backend):
    quantization = lib.ao.quantization
    net = _qat_net(lib)
    net.load_state_dict({key: lib.tensor(value) for key, value in float_state.items()})
    net.train()
    net = quantization.fuse_modules_qat(net, _FUSIONS)
    name, version = backend
    net.qconfig = (quantization.default_qat_qconfig if name == "default"
                   else quantization.get_default_qat_qconfig(name, version))
    return quantization.prepare_qat(net)


@pytest.mark.parametrize("backend", [("x86", 1), ("qnnpack", 1), ("x86", 0), ("default", None)])
def test_prepare_qat_and_convert_match_torch(backend):
    """fuse_modules_qat + prepare_qat build torch's modules (reprs and state_dict keys); a QAT
    schedule (observers off after 3 batches, BatchNorm frozen after 4) gives torch's outputs to 1e-6; the
    converted model, from the same trained state, gives torch's reprs and integers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        float_state = {key: value.numpy().copy() for key, value in _qat_net(torch).state_dict().items()}
        rng = np.random.default_rng(0)
        batches = [rng.standard_normal((6, 2, 6, 6)).astype(np.float32) for _ in range(6)]
        theirs, ours = _prepared(torch, float_state, backend), _prepared(chainrule, float_state, backend)
        assert repr(ours).replace("chainrule", "torch") == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for step, batch in enumerate(batches):
            for net, lib in ((theirs, torch), (ours, chainrule)):
                if step == 3:
                    net.apply(lib.ao.quantization.disable_observer)
                if step == 4:
                    net.apply(lib.ao.nn.intrinsic.qat.freeze_bn_stats)
            their_out = theirs(torch.tensor(batch)).detach().numpy()
            our_out = ours(chainrule.tensor(batch)).detach().numpy()
            # train-mode BatchNorm2d rounds its batch statistics a last bit apart from torch's (a
            # BatchNorm matter, not QAT's: plain BatchNorm2d shows it), and the running statistics
            # carry that bit on after the freeze
            np.testing.assert_allclose(our_out, their_out, rtol=0, atol=1e-6)
        # convert from one trained state, so the comparison is of the QAT -> quantized path alone
        ours.load_state_dict({key: chainrule.tensor(value.numpy()) for key, value in theirs.state_dict().items()})
        theirs_q = torch.ao.quantization.convert(theirs.eval())
        ours_q = chainrule.ao.quantization.convert(ours.eval())
        assert repr(ours_q).replace("chainrule", "torch") == repr(theirs_q)
        assert list(ours_q.state_dict()) == list(theirs_q.state_dict())
        for name in ("conv1", "conv2", "conv3", "fc", "fc2"):
            np.testing.assert_array_equal(getattr(ours_q, name).weight().int_repr().numpy(),
                                          getattr(theirs_q, name).weight().int_repr().numpy(), err_msg=name)
        for batch in batches:
            np.testing.assert_array_equal(ours_q(chainrule.tensor(batch)).numpy(), theirs_q(torch.tensor(batch)).numpy())


def test_qat_modules_train_and_freeze_as_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lib in (torch, chainrule):
            qconfig = lib.ao.quantization.get_default_qat_qconfig("x86")
            layer = lib.ao.nn.intrinsic.qat.ConvBnReLU2d(3, 4, 3, qconfig=qconfig)
            assert layer.bn.training and not layer.freeze_bn
            layer.apply(lib.ao.nn.intrinsic.qat.freeze_bn_stats)
            layer.train()
            assert not layer.bn.training and layer.freeze_bn and layer.training  # a frozen BN stays in eval
            layer.apply(lib.ao.nn.intrinsic.qat.update_bn_stats)
            assert layer.bn.training
        for call in (lambda lib: lib.ao.nn.qat.Linear(3, 2),
                     lambda lib: lib.ao.nn.intrinsic.ConvBn2d(lib.nn.Conv2d(3, 4, 3), lib.nn.ReLU()),
                     lambda lib: lib.ao.quantization.prepare_qat(lib.nn.Linear(2, 2).eval()),
                     lambda lib: lib.ao.quantization.fuse_modules_qat(
                         lib.nn.Sequential(lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(5)), ["0", "1"])):
            theirs, ours = _error_of(lambda call=call: call(torch)), _error_of(lambda call=call: call(chainrule))
            assert theirs is not None and ours == theirs


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("per_tensor", [False, True])
def test_depthwise_quantized_conv_matches_torch(stride, relu, per_tensor):
    # groups == channels runs fbgemm's depthwise kernel; its integers must be torch's too
    rng = np.random.default_rng(stride + 2 * relu + 4 * per_tensor)
    channels = 16
    x = (rng.standard_normal((4, channels, 12, 12)) * 2).astype(np.float32)
    w = (rng.standard_normal((channels, 1, 3, 3)) * 0.7).astype(np.float32)
    b = (rng.standard_normal(channels) * 0.5).astype(np.float32)
    w_scales = (np.abs(w).reshape(channels, -1).max(1) / 127).astype(np.float32)
    outputs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lib in (torch, chainrule):
            if per_tensor:
                qw = lib.quantize_per_tensor(lib.tensor(w), float(w_scales.max()), 0, lib.qint8)
            else:
                qw = lib.quantize_per_channel(lib.tensor(w), lib.tensor(w_scales.astype(np.float64)),
                                              lib.zeros(channels, dtype=lib.int64), 0, lib.qint8)
            cls = lib.ao.nn.intrinsic.quantized.ConvReLU2d if relu else lib.ao.nn.quantized.Conv2d
            conv = cls(channels, channels, 3, stride=stride, padding=1, groups=channels)
            conv.set_weight_bias(qw, lib.tensor(b))
            conv.scale, conv.zero_point = 0.04, 0 if relu else 64
            outputs.append(conv(lib.quantize_per_tensor(lib.tensor(x), 0.03, 70, lib.quint8)).int_repr().numpy())
    np.testing.assert_array_equal(outputs[1], outputs[0])


def test_prepare_qat_warns_its_deprecation_at_the_callers_line_as_torch():
    def user_warnings(lib):
        model = lib.nn.Sequential(lib.ao.quantization.QuantStub(), lib.nn.Linear(2, 2))
        model.qconfig = lib.ao.quantization.get_default_qat_qconfig("x86")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lib.ao.quantization.prepare_qat(model)
        return [(w.category, str(w.message)) for w in caught if w.filename == __file__]

    theirs = [item for item in user_warnings(torch) if item[0] is DeprecationWarning]
    ours = [item for item in user_warnings(chainrule) if item[0] is DeprecationWarning]
    assert theirs and ours == theirs


def test_torch_nn_spellings_of_the_qat_modules_are_torch_ao_nn_ones():
    for lib in (torch, chainrule):
        assert lib.nn.qat.Linear is lib.ao.nn.qat.Linear
        assert lib.nn.qat.Conv2d is lib.ao.nn.qat.Conv2d
        assert lib.nn.intrinsic.qat.freeze_bn_stats is lib.ao.nn.intrinsic.qat.freeze_bn_stats
        assert lib.nn.intrinsic.qat.ConvBnReLU2d is lib.ao.nn.intrinsic.qat.ConvBnReLU2d
        assert lib.ao.quantization.fake_quantize.FakeQuantize is lib.ao.quantization.FakeQuantize
        assert lib.quantization.FakeQuantize is lib.ao.quantization.FakeQuantize


@pytest.mark.parametrize("kind", ["Conv2d", "ConvReLU2d", "ConvBn2d", "ConvBnReLU2d"])
def test_qat_conv_to_float_matches_torch(kind):
    rng = np.random.default_rng(len(kind))
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lib in (torch, chainrule):
            qconfig = lib.ao.quantization.default_qat_qconfig
            module = lib.ao.nn.qat if kind == "Conv2d" else lib.ao.nn.intrinsic.qat
            layer = getattr(module, kind)(3, 4, 3, bias=True, qconfig=qconfig)
            state = {key: lib.tensor(rng.standard_normal(tuple(value.shape)).astype(np.float32))
                     for key, value in layer.state_dict().items() if key.endswith(("weight", "bias", "running_mean"))}
            if "Bn" in kind:
                state["bn.running_var"] = lib.tensor(np.linspace(0.5, 2, 4, dtype=np.float32))
            layer.load_state_dict(state, strict=False)
            rng = np.random.default_rng(len(kind))  # the same values for the other library
            float_layer = layer.to_float()
            conv = float_layer[0] if kind.endswith("ReLU2d") else float_layer
            results.append((repr(float_layer).replace("chainrule", "torch"), float_layer.training,
                            conv.weight.detach().numpy(), conv.bias.detach().numpy()))
    (their_repr, their_mode, their_w, their_b), (our_repr, our_mode, our_w, our_b) = results
    assert our_repr == their_repr and our_mode == their_mode
    np.testing.assert_array_equal(our_w, their_w)
    np.testing.assert_array_equal(our_b, their_b)


def test_fused_fake_quantizer_edge_inputs_as_torch():
    def outcomes(lib):
        quantization = lib.ao.quantization
        calls = (
            lambda: quantization.FusedMovingAvgObsFakeQuantize(
                observer=quantization.MovingAveragePerChannelMinMaxObserver, ch_axis=1, quant_min=-128, quant_max=127,
                dtype=lib.qint8, qscheme=lib.per_channel_symmetric)(lib.ones(3, 4)),
            lambda: quantization.default_fused_per_channel_wt_fake_quant()(lib.ones(3)),
        )
        results = [_error_of(call) for call in calls]
        # an empty batch changes neither the statistics nor the qparams
        fake_quantizer = quantization.default_fused_act_fake_quant()
        fake_quantizer(lib.full((2, 3), 2.0))
        empty_out = fake_quantizer(lib.ones(0, 3))
        state = {key: value.numpy().tolist() for key, value in fake_quantizer.state_dict().items()}
        return results, tuple(empty_out.shape), state

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (their_errors, their_shape, their_state), (our_errors, our_shape, our_state) = outcomes(torch), outcomes(chainrule)
    assert all(error is not None for error in their_errors)
    assert [(t.__name__, m) for t, m in our_errors] == [(t.__name__, m) for t, m in their_errors]
    assert our_shape == their_shape and our_state == their_state
