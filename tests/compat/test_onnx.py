"""onnx.export of layer stacks: the file passes onnx.checker and onnx's reference evaluator
reproduces the model's outputs; anything else raises NotImplementedError naming the layer."""

import numpy as np
import pytest

import chainrule

onnx = pytest.importorskip("onnx")
from onnx.reference import ReferenceEvaluator  # noqa: E402

nn = chainrule.nn


def _round_trip(model, example, tmp_path, check_inputs):
    path = str(tmp_path / "model.onnx")
    chainrule.onnx.export(model, (example,), path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    loaded = onnx.load(path)
    onnx.checker.check_model(loaded)
    session = ReferenceEvaluator(loaded)
    model.eval()
    for x in check_inputs:
        (out,) = session.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_cnn_stack_round_trips(tmp_path):
    chainrule.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding="same", groups=2, dilation=2), nn.LeakyReLU(0.1), nn.AvgPool2d(2),
        nn.Flatten(), nn.Sequential(nn.Linear(24, 10), nn.Dropout(0.5), nn.Tanh()),
        nn.Linear(10, 3), nn.LogSoftmax(dim=1))
    model.train()
    model(chainrule.randn(8, 1, 8, 8))  # give BatchNorm running statistics of its own
    _round_trip(model, chainrule.randn(5, 1, 8, 8), tmp_path, [chainrule.randn(3, 1, 8, 8)])
    assert model.training is False  # left in eval mode by the check above, not by export


def test_export_restores_training_mode_and_covers_1d_layers(tmp_path):
    model = nn.Sequential(nn.Conv1d(2, 3, 3, stride=2), nn.ELU(), nn.MaxPool1d(2, ceil_mode=True),
                          nn.Flatten(), nn.Linear(6, 4), nn.Sigmoid(), nn.Identity(), nn.Softmax(dim=-1))
    model.train()
    chainrule.onnx.export(model, chainrule.randn(2, 2, 10), str(tmp_path / "m.onnx"))
    assert model.training is True
    _round_trip(model, chainrule.randn(2, 2, 10), tmp_path, [chainrule.randn(4, 2, 10)])


def test_single_layer_and_returned_proto(tmp_path):
    proto = chainrule.onnx.export(nn.Linear(3, 2), chainrule.randn(1, 3), None)
    assert isinstance(proto, onnx.ModelProto) and proto.producer_name == "chainrule"
    assert chainrule.onnx.is_in_onnx_export() is False


@pytest.mark.parametrize("model,example", [
    (nn.Bilinear(3, 3, 2), chainrule.randn(2, 3)),
    (nn.Bilinear(3, 3, 2), (chainrule.randn(2, 3), chainrule.randn(2, 3))),  # several inputs: RNNs only
    (nn.LSTM(3, 4), (chainrule.randn(2, 3, 3), chainrule.randn(1, 3, 4))),  # h0 without c0
    (nn.Sequential(nn.Linear(3, 3), nn.GELU()), chainrule.randn(2, 3)),
    (nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), chainrule.randn(1, 1, 5, 5)),
])
def test_unsupported_models_raise_not_implemented(model, example):
    with pytest.raises(NotImplementedError, match="onnx.export"):
        chainrule.onnx.export(model, example, None)


def _flat(value) -> list:
    return [t for item in value for t in _flat(item)] if isinstance(value, tuple) else [value]


@pytest.mark.parametrize("model,args", [
    (nn.LSTM(3, 4, num_layers=2), (chainrule.randn(5, 2, 3), (chainrule.randn(2, 2, 4), chainrule.randn(2, 2, 4)))),
    (nn.GRU(3, 4, num_layers=2, bidirectional=True), (chainrule.randn(5, 2, 3), chainrule.randn(4, 2, 4))),
    (nn.GRU(3, 4, bidirectional=True, batch_first=True), (chainrule.randn(2, 5, 3),)),
    (nn.RNN(3, 4, num_layers=2, bias=False), (chainrule.randn(5, 2, 3), chainrule.randn(2, 2, 4))),
])
def test_recurrent_layers_export_with_their_state_and_every_output(model, args, tmp_path):
    # word_language_model exports (input, hidden) -> (output, hidden): one graph input per tensor
    # given, one output per tensor returned, each named and with its own dynamic axes
    path = str(tmp_path / "rnn.onnx")
    inputs = _flat(args)
    input_names = ["x", "h0", "c0"][:len(inputs)]
    outputs = _flat(model(*args))
    output_names = ["y", "h_n", "c_n"][:len(outputs)]
    sequence_batch = 0 if model.batch_first else 1  # the states are (layers, batch, hidden) either way
    batch_dim = {name: {sequence_batch if name in ("x", "y") else 1: "batch"} for name in input_names + output_names}
    chainrule.onnx.export(model, args, path, input_names=input_names, output_names=output_names,
                          dynamic_axes=batch_dim)
    loaded = onnx.load(path)
    onnx.checker.check_model(loaded)
    assert [i.name for i in loaded.graph.input] == input_names
    assert [o.name for o in loaded.graph.output] == output_names
    assert loaded.graph.input[0].type.tensor_type.shape.dim[sequence_batch].dim_param == "batch"
    # run on a batch of another size than the example's
    fresh = [chainrule.randn(*[3 if d == (sequence_batch if i == 0 else 1) else n for d, n in enumerate(t.shape)])
             for i, t in enumerate(inputs)]
    fresh_args = (fresh[0], tuple(fresh[1:])) if len(fresh) == 3 else tuple(fresh)
    got = ReferenceEvaluator(loaded).run(None, dict(zip(input_names, (t.numpy() for t in fresh))))
    expected = [t.detach().numpy() for t in _flat(model(*fresh_args))]
    assert len(got) == len(expected) and all(abs(e).max() > 0 for e in expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_embedding_gathers_rows(tmp_path):
    model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(12, 2))
    tokens = chainrule.tensor([[1, 2, 3, 9], [0, 0, 5, 4]])
    proto = chainrule.onnx.export(model, tokens, None, input_names=["tokens"])
    (out,) = ReferenceEvaluator(proto).run(None, {"tokens": tokens.numpy()})
    np.testing.assert_allclose(out, model(tokens).detach().numpy(), rtol=1e-5, atol=1e-6)
