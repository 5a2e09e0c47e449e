"""Session 26, lane progH: what the pytorch.org tutorial programs (tests/programs/tutorial_*,
bilstm_crf, nlp_tutorials) found, each checked against torch."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _lstm_output_node(lib, dtype, **kwargs):
    lib.manual_seed(0)
    lstm = lib.nn.LSTM(3, 4, **kwargs).to(dtype)
    out, (h_n, c_n) = lstm(lib.randn(5, 2, 3).to(dtype))
    return out.grad_fn.name(), h_n.grad_fn.name(), [f.name() for f, _ in out.grad_fn.next_functions if f][:2]


@pytest.mark.parametrize("kwargs", [{}, {"bidirectional": True}, {"num_layers": 2}, {"proj_size": 2}])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_lstm_output_node_is_named_as_torch_names_it(dtype, kwargs):
    # the Sequence Models tutorial prints an LSTM's output: grad_fn=<MkldnnRnnLayerBackward0> in torch
    # (float32/bfloat16 on the CPU, no projection); the fused node now carries that name
    ours = _lstm_output_node(chainrule, getattr(chainrule, dtype), **kwargs)
    theirs = _lstm_output_node(torch, getattr(torch, dtype), **kwargs)
    if "proj_size" in kwargs:  # torch leaves oneDNN for a projection: a composition, not one node, whose
        # last node (the steps stacked) names chainrule's fused one (lane mendDE, session 55)
        assert theirs[0] == "StackBackward0" and ours[0] == "StackBackward0"
    elif dtype == "bfloat16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        # oneDNN has no bfloat16 kernels for this CPU (none without AVX-512 or AVX2-VNNI-2, as an AMD
        # EPYC with AVX2): torch composes the layer as for float64, its last node naming chainrule's
        assert ours[0] == theirs[0]
        assert "MkldnnRnnLayerBackward0" not in (ours[0], *ours[2], theirs[0], *theirs[2])
    else:
        assert ours[0] == theirs[0]
        assert ours[2] == theirs[2]


def test_lstm_output_repr_names_torchs_node():
    chainrule.manual_seed(0)
    out, _ = chainrule.nn.LSTM(3, 3)(chainrule.randn(5, 1, 3))
    assert repr(out).endswith("grad_fn=<MkldnnRnnLayerBackward0>)")


def test_lstm_cell_is_not_named_after_onednn():
    # torch's LSTMCell is a composition (MulBackward0 / AddBackward0), never the oneDNN layer
    h, c = chainrule.nn.LSTMCell(3, 4)(chainrule.randn(2, 3))
    assert h.grad_fn.name() != "MkldnnRnnLayerBackward0" and c.grad_fn.name() != "MkldnnRnnLayerBackward0"


def test_float64_lstm_is_named_as_torchs_last_node():
    out, _ = chainrule.nn.LSTM(3, 4).double()(chainrule.randn(5, 2, 3, dtype=chainrule.float64))
    assert out.grad_fn.name() == "StackBackward0"  # (torch's composition ends stacking the steps)


@pytest.mark.parametrize("call", [
    lambda x: x.t_(), lambda x: x.transpose_(0, 1), lambda x: x.swapaxes_(0, 1), lambda x: x.swapdims_(1, 0),
    lambda x: x.squeeze_(), lambda x: x.squeeze_(0), lambda x: x.squeeze_(-1), lambda x: x.squeeze_((0, 1)),
    lambda x: x.unsqueeze_(0), lambda x: x.unsqueeze_(-1), lambda x: x.as_strided_((2, 1), (1, 1)),
])
def test_inplace_view_nodes_are_named_as_torchs(call):
    # torch records its in-place views under their own overloads' names (t_: TBackward1,
    # squeeze_(dim): SqueezeBackward4), with the out-of-place node's saved attributes
    def node(lib):
        x = lib.ones(2, 1, requires_grad=True).clone()
        return call(x).grad_fn

    ours, theirs = node(chainrule), node(torch)
    assert ours.name() == theirs.name() and type(ours).__name__ == type(theirs).__name__
    theirs_saved = sorted(a for a in dir(theirs) if a.startswith("_saved_"))
    assert sorted(a for a in dir(ours) if a.startswith("_saved_")) == theirs_saved
    for attribute in theirs_saved:
        assert getattr(ours, attribute) == getattr(theirs, attribute)


def test_inplace_transpose_keeps_the_gradient():
    values = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    grads = []
    for lib in (chainrule, torch):
        x = lib.tensor(values, requires_grad=True)
        y = x.clone()
        y.t_()
        (y * lib.arange(6.0).view(3, 2)).sum().backward()
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1]


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("kwargs", [{}, {"bidirectional": True}, {"num_layers": 2}])
def test_batch_first_output_node_is_named_as_torchs(name, kwargs):
    # torch's GRU/RNN transpose a batch_first output in place (TransposeBackward1), its LSTM not
    def node(lib):
        lib.manual_seed(0)
        out, _ = getattr(lib.nn, name)(3, 4, batch_first=True, **kwargs)(lib.randn(2, 5, 3))
        return out.grad_fn, out.stride()

    (ours, our_strides), (theirs, their_strides) = node(chainrule), node(torch)
    assert ours.name() == theirs.name() and our_strides == their_strides
    assert (ours._saved_dim0, ours._saved_dim1) == (theirs._saved_dim0, theirs._saved_dim1)


@pytest.mark.parametrize("offset", [None, 0, 1])
def test_as_strided_saves_the_storage_offset_as_given(offset):
    # torch's _saved_storage_offset is the optional argument as given: None when left out
    def saved(lib):
        x = lib.ones(4, requires_grad=True).clone()[1:]
        return x.as_strided((2, 1), (1, 1), offset).grad_fn._saved_storage_offset

    assert saved(chainrule) == saved(torch)
