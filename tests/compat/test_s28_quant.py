"""Session 28, quant lane: quantized tensors and dynamic quantization, compared with torch.

quantize_per_tensor / quantize_per_channel must store the integers torch stores (its x86 kernels'
float steps), print as torch prints, and refuse the ops torch has no quantized kernel for;
quantize_dynamic must swap in modules whose outputs equal torch's (Linear bit for bit; the LSTM
within float rounding of the gate nonlinearities) and whose state_dict torch.save writes and
torch.load reads.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")


def _values(seed: int = 0, n: int = 20000) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 3).astype(np.float32)


@pytest.mark.parametrize("dtype_name", ["qint8", "quint8", "qint32"])
@pytest.mark.parametrize("scale", [0.1, 0.013, 0.0471, 1 / 3, 0.0025, 0.7])
def test_quantize_per_tensor_stores_torchs_integers(dtype_name, scale):
    x = _values()
    zero_point = 3
    ours = chainrule.quantize_per_tensor(chainrule.from_numpy(x), scale, zero_point, getattr(chainrule, dtype_name))
    theirs = torch.quantize_per_tensor(torch.from_numpy(x), scale, zero_point, getattr(torch, dtype_name))
    np.testing.assert_array_equal(ours.int_repr().numpy(), theirs.int_repr().numpy())
    np.testing.assert_array_equal(ours.dequantize().numpy(), theirs.dequantize().numpy())
    assert ours.int_repr().dtype.name == str(theirs.int_repr().dtype).removeprefix("torch.")
    assert (ours.q_scale(), ours.q_zero_point()) == (theirs.q_scale(), theirs.q_zero_point())
    assert ours.dtype is getattr(chainrule, dtype_name) and ours.is_quantized and ours.requires_grad is False


def test_quantize_per_channel_matches_torch():
    x = _values(1, 4 * 50).reshape(4, 50)
    scales, zero_points = [0.1, 0.02, 0.35, 0.0471], [0, 1, 7, 3]

    def make(lib, dtype):
        return lib.quantize_per_channel(lib.from_numpy(x), lib.tensor(scales, dtype=lib.float64),
                                        lib.tensor(zero_points), 0, dtype)
    for name in ("qint8", "quint8"):
        ours, theirs = make(chainrule, getattr(chainrule, name)), make(torch, getattr(torch, name))
        np.testing.assert_array_equal(ours.int_repr().numpy(), theirs.int_repr().numpy())
        np.testing.assert_array_equal(ours.dequantize().numpy(), theirs.dequantize().numpy())
        np.testing.assert_array_equal(ours.q_per_channel_scales().numpy(), theirs.q_per_channel_scales().numpy())
        np.testing.assert_array_equal(ours.q_per_channel_zero_points().numpy(),
                                      theirs.q_per_channel_zero_points().numpy())
        assert ours.q_per_channel_axis() == theirs.q_per_channel_axis() == 0
        assert repr(ours.qscheme()) == repr(theirs.qscheme()) == "torch.per_channel_affine"


def _sample(lib):
    return lib.tensor([[-1.0, 0.3, 2.5], [0.05, 0.15, -0.25]])


@pytest.mark.parametrize("make", [
    lambda lib: lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.qint8),
    lambda lib: lib.quantize_per_tensor(_sample(lib), 0.1, 0, lib.qint32),
    lambda lib: lib.quantize_per_tensor(_sample(lib), lib.tensor(0.1), lib.tensor(3), lib.quint8),
    lambda lib: lib.quantize_per_channel(_sample(lib), lib.tensor([0.1, 0.2], dtype=lib.float64),
                                         lib.tensor([0, 1]), 0, lib.quint8),
    lambda lib: lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.qint8)[0],
    lambda lib: lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.qint8).view(-1),
    lambda lib: lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.qint8).t(),
    lambda lib: lib.relu(lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.qint8)),
    lambda lib: lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.qint8).mean(),
    lambda lib: lib.cat([lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.qint8)] * 2),
])
def test_repr_and_layout_ops_as_torch(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert repr(make(chainrule)).replace("chainrule.", "torch.") == repr(make(torch))


def _outcome(lib, call):
    try:
        result = call(lib)
    except Exception as error:  # noqa: BLE001  (the class and message are what is compared)
        return type(error).__name__, str(error).split(" This could be because")[0].split("\nException raised")[0]
    return "returned", repr(result).replace("chainrule.", "torch.")


def _q(lib):
    return lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.qint8)


@pytest.mark.parametrize("call", [
    lambda lib: _q(lib) + _q(lib),
    lambda lib: _q(lib) - _q(lib),
    lambda lib: _q(lib) * 2,
    lambda lib: _q(lib).sum(),
    lambda lib: _q(lib).exp(),
    lambda lib: lib.matmul(_q(lib), _q(lib).t()),
    lambda lib: _q(lib).q_per_channel_scales(),
    lambda lib: lib.quantize_per_channel(_sample(lib), lib.tensor([0.1, 0.2], dtype=lib.float64),
                                         lib.tensor([0, 1]), 0, lib.quint8).q_scale(),
    lambda lib: lib.quantize_per_tensor(_sample(lib), 0.1, 3, lib.float32),
    lambda lib: lib.quantize_per_tensor(_sample(lib).double(), 0.1, 3, lib.qint8),
    lambda lib: lib.quantize_per_tensor(_sample(lib).long(), 0.1, 3, lib.qint8),
    lambda lib: _q(lib).float(),
    lambda lib: _q(lib).numpy(),
    lambda lib: _q(lib).tolist(),
    lambda lib: _q(lib)[0, 1].item(),
    lambda lib: lib.dequantize(_q(lib)),
    lambda lib: _sample(lib).dequantize(),
    lambda lib: _q(lib) == _q(lib),
    lambda lib: _q(lib).int_repr(),
    lambda lib: (lib.qint8.itemsize, lib.qint32.itemsize, lib.qint8.is_floating_point, _q(lib).element_size()),
    lambda lib: (lib.per_tensor_affine, lib.per_channel_affine, lib.per_tensor_symmetric),
])
def test_errors_and_answers_as_torch(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _outcome(chainrule, call) == _outcome(torch, call)


def test_engine_names_as_torch():
    assert chainrule.backends.quantized.engine == torch.backends.quantized.engine
    assert chainrule.backends.quantized.supported_engines == torch.backends.quantized.supported_engines


def _float_model(lib, hidden: int = 6):
    class LanguageModel(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = lib.nn.Embedding(10, 8)
            self.rnn = lib.nn.LSTM(8, hidden, 2)
            self.decoder = lib.nn.Linear(hidden, 4)

        def forward(self, x):
            output, _ = self.rnn(self.encoder(x))
            return self.decoder(output)
    return LanguageModel()


def _twin_models():
    torch.manual_seed(0)
    theirs = _float_model(torch)
    ours = _float_model(chainrule)
    ours.load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


def test_quantize_dynamic_lstm_model_matches_torch():
    ours, theirs = _twin_models()
    quantized_ours = chainrule.ao.quantization.quantize_dynamic(ours, {chainrule.nn.LSTM, chainrule.nn.Linear},
                                                                dtype=chainrule.qint8)
    quantized_theirs = torch.ao.quantization.quantize_dynamic(theirs, {torch.nn.LSTM, torch.nn.Linear},
                                                              dtype=torch.qint8)
    assert repr(quantized_ours) == repr(quantized_theirs)
    assert quantized_ours is not ours and isinstance(ours.decoder, chainrule.nn.Linear)
    tokens = np.random.default_rng(0).integers(0, 10, (7, 3))
    with torch.no_grad():
        expected = quantized_theirs(torch.from_numpy(tokens)).numpy()
        float_output = theirs(torch.from_numpy(tokens)).numpy()
    got = quantized_ours(chainrule.from_numpy(tokens)).numpy()
    assert got.dtype == np.float32
    # measured: 3e-8 (the gates' sigmoid/tanh in NumPy vs torch's vectorised ones), against a
    # quantization error (quantized vs float) of about 1e-3
    assert np.abs(got - expected).max() < 1e-6
    assert np.abs(got - expected).max() < np.abs(expected - float_output).max() / 100


@pytest.mark.parametrize("seed", range(4))
def test_dynamic_linear_equals_torch_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((16, 32)).astype(np.float32)
    bias = rng.standard_normal(16).astype(np.float32)
    x = (rng.standard_normal((5, 10, 32)) * 2 + 0.3).astype(np.float32)

    def quantized(lib):
        layer = lib.nn.Linear(32, 16)
        layer.weight.data, layer.bias.data = lib.from_numpy(weight.copy()), lib.from_numpy(bias.copy())
        return lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(layer), {lib.nn.Linear}, dtype=lib.qint8)
    ours, theirs = quantized(chainrule), quantized(torch)
    np.testing.assert_array_equal(ours[0].weight().int_repr().numpy(), theirs[0].weight().int_repr().numpy())
    assert ours[0].weight().q_scale() == theirs[0].weight().q_scale()
    np.testing.assert_array_equal(ours(chainrule.from_numpy(x)).numpy(), theirs(torch.from_numpy(x)).detach().numpy())


def test_qconfig_spec_forms_and_inplace():
    for lib in (chainrule, torch):
        model = lib.nn.Sequential(lib.nn.Linear(4, 4), lib.nn.Sequential(lib.nn.Linear(4, 2)))
        by_name = lib.ao.quantization.quantize_dynamic(model, {"1": lib.ao.quantization.default_dynamic_qconfig})
        assert type(by_name[0]).__name__ == "Linear" and by_name[0].__class__.__module__.endswith("linear")
        assert by_name[1][0]._get_name() == "DynamicQuantizedLinear"
        default = lib.ao.quantization.quantize_dynamic(model)
        assert default[0]._get_name() == default[1][0]._get_name() == "DynamicQuantizedLinear"
        assert model[0]._get_name() == "Linear"
        same = lib.ao.quantization.quantize_dynamic(model, {lib.nn.Linear}, inplace=True)
        assert same is model and model[0]._get_name() == "DynamicQuantizedLinear"
        bare = lib.nn.Linear(3, 2)
        assert lib.ao.quantization.quantize_dynamic(bare)._get_name() == "Linear"  # the root is never swapped


def test_state_dict_saves_smaller_and_torch_reads_it(tmp_path):
    ours, _ = _twin_models()
    quantized = chainrule.ao.quantization.quantize_dynamic(ours, {chainrule.nn.LSTM, chainrule.nn.Linear})
    state = quantized.state_dict()
    assert list(state)[:5] == ["encoder.weight", "rnn._all_weight_values.0.param", "rnn._all_weight_values.1.param",
                               "decoder.scale", "decoder.zero_point"]
    chainrule.save(ours.state_dict(), tmp_path / "float.pt")
    chainrule.save(state, tmp_path / "quantized.pt")
    wide = chainrule.nn.Sequential(chainrule.nn.Linear(128, 128))
    chainrule.save(wide.state_dict(), tmp_path / "wide.pt")
    chainrule.save(chainrule.ao.quantization.quantize_dynamic(wide).state_dict(), tmp_path / "wide_q.pt")
    assert os.path.getsize(tmp_path / "wide_q.pt") < os.path.getsize(tmp_path / "wide.pt") / 3
    loaded_by_torch = torch.load(tmp_path / "quantized.pt")  # weights_only: torch's own globals only
    weight, bias = loaded_by_torch["decoder._packed_params._packed_params"]
    ours_weight = state["decoder._packed_params._packed_params"][0]
    assert weight.dtype == torch.qint8 and weight.q_scale() == ours_weight.q_scale()
    np.testing.assert_array_equal(weight.int_repr().numpy(), ours_weight.int_repr().numpy())
    assert loaded_by_torch["decoder._packed_params.dtype"] == torch.qint8
    # and back: a fresh quantized model loads the file and computes the same outputs
    fresh = chainrule.ao.quantization.quantize_dynamic(_twin_models()[0], {chainrule.nn.LSTM, chainrule.nn.Linear})
    fresh.load_state_dict(chainrule.load(tmp_path / "quantized.pt"))
    tokens = chainrule.from_numpy(np.arange(12).reshape(4, 3) % 10)
    np.testing.assert_array_equal(fresh(tokens).numpy(), quantized(tokens).numpy())


def test_torch_written_quantized_linear_state_loads(tmp_path):
    torch.manual_seed(1)
    theirs = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(6, 3)))
    torch.save(theirs.state_dict(), tmp_path / "torch_q.pt")
    ours = chainrule.ao.quantization.quantize_dynamic(chainrule.nn.Sequential(chainrule.nn.Linear(6, 3)))
    ours.load_state_dict(chainrule.load(tmp_path / "torch_q.pt"))
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(ours(chainrule.from_numpy(x)).numpy(), theirs(torch.from_numpy(x)).detach().numpy())


def test_quantize_dynamic_warns_as_torch():
    def warned(lib):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(lib.nn.Linear(2, 2)))
        return {(w.category.__name__, str(w.message)) for w in caught if w.category is DeprecationWarning}
    assert warned(chainrule) == warned(torch) and warned(chainrule)


def test_quantize_dynamic_moves_the_generator_as_torch():
    # torch's dynamic LSTM constructor fills its weights with randn draws before from_float replaces them
    def next_draws(lib):
        lib.manual_seed(0)
        model = lib.nn.Sequential(lib.nn.LSTM(5, 7, 2, bidirectional=True), lib.nn.Linear(7, 3))
        lib.ao.quantization.quantize_dynamic(model, {lib.nn.LSTM, lib.nn.Linear})
        return lib.randn(4).tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert next_draws(chainrule) == next_draws(torch)


def test_bidirectional_batch_first_lstm_matches_torch():
    torch.manual_seed(3)
    theirs = torch.nn.LSTM(5, 7, 2, batch_first=True, bidirectional=True)
    ours = chainrule.nn.LSTM(5, 7, 2, batch_first=True, bidirectional=True)
    ours.load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized_theirs = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(theirs), {torch.nn.LSTM})
        quantized_ours = chainrule.ao.quantization.quantize_dynamic(chainrule.nn.Sequential(ours), {chainrule.nn.LSTM})
    x = np.random.default_rng(4).standard_normal((3, 6, 5)).astype(np.float32)
    h0 = np.random.default_rng(5).standard_normal((4, 3, 7)).astype(np.float32)
    c0 = np.random.default_rng(6).standard_normal((4, 3, 7)).astype(np.float32)
    with torch.no_grad():
        out_t, (h_t, c_t) = quantized_theirs[0](torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    out_o, (h_o, c_o) = quantized_ours[0](chainrule.from_numpy(x), (chainrule.from_numpy(h0), chainrule.from_numpy(c0)))
    for got, expected in ((out_o, out_t), (h_o, h_t), (c_o, c_t)):
        assert tuple(got.shape) == tuple(expected.shape)
        assert np.abs(got.numpy() - expected.numpy()).max() < 1e-5


@pytest.mark.parametrize("attribute", ["T", "mT", "data"])
def test_layout_properties_stay_quantized(attribute):
    def read(lib):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return repr(getattr(_q(lib), attribute)).replace("chainrule.", "torch.")
    assert read(chainrule) == read(torch)


def test_deepcopy_keeps_quantization():
    import copy

    def copied(lib):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(lib.nn.Linear(4, 3)))
            per_channel = lib.quantize_per_channel(_sample(lib), lib.tensor([0.1, 0.2], dtype=lib.float64),
                                                   lib.tensor([0, 1]), 0, lib.quint8)
        weight = copy.deepcopy(model)[0].weight()
        return (weight.dtype.name if lib is chainrule else str(weight.dtype).removeprefix("torch."),
                weight.q_scale() == model[0].weight().q_scale(),
                repr(copy.deepcopy(per_channel)).replace("chainrule.", "torch."))
    assert copied(chainrule) == copied(torch)


@pytest.mark.parametrize("expression", ["qint8.is_signed", "quint8.is_signed", "qint32.is_signed", "quint4x2.is_signed"])
def test_quantized_dtypes_refuse_is_signed_as_torch(expression):
    def read(lib):
        try:
            return eval(f"lib.{expression}")
        except RuntimeError as error:
            return str(error)

    assert read(chainrule) == read(torch) == "isSignedType not supported for quantized types"


@pytest.mark.parametrize("engine", ["none", "qnnpack", "onednn", "fbgemm", "x86", "bogus", 3])
def test_quantized_engine_assignment_is_checked_as_torch(engine):
    def assign(lib):
        before = lib.backends.quantized.engine
        try:
            lib.backends.quantized.engine = engine
            return lib.backends.quantized.engine
        except RuntimeError as error:
            return str(error)
        finally:
            lib.backends.quantized.engine = before

    assert assign(chainrule) == assign(torch)
