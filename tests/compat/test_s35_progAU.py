"""Found while writing the detr_set_prediction, convlstm_sequence and show_attend_tell programs.

Multi-head attention projects like torch's _in_projection_packed: when the key and the value are
one tensor (encoder-decoder attention, DETR's decoder over its memory), the key/value projection
is one linear over the stacked key and value weights, so a memory of the wrong width fails with
torch's "mat1 and mat2 shapes cannot be multiplied (.. and E x 2E)", not a single weight's E x E.
A batched LSTMCell takes its hx as torch's lstm_cell binding does: exactly a pair of tensors.
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(35)
E, HEADS = 8, 2


def _raised(fn):
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


def _same_error(build):
    torch.manual_seed(0)
    chainrule.manual_seed(0)
    theirs = _raised(lambda: build(torch))
    ours = _raised(lambda: build(chainrule))
    assert ours == theirs


@pytest.mark.parametrize("batch_first", [True, False])
def test_cross_attention_memory_of_the_wrong_width_fails_in_torchs_words(batch_first):
    def build(lib):
        attention = lib.nn.MultiheadAttention(E, HEADS, batch_first=batch_first)
        memory = lib.zeros(2, 5, E - 2)
        return attention(lib.zeros(2, 3, E), memory, memory)

    _same_error(build)


def test_transformer_decoder_memory_of_the_wrong_width_fails_in_torchs_words():
    def build(lib):
        decoder = lib.nn.TransformerDecoder(lib.nn.TransformerDecoderLayer(E, HEADS, batch_first=True), 1)
        return decoder(lib.zeros(2, 3, E), lib.zeros(2, 5, E - 2))

    _same_error(build)


def test_functional_attention_with_key_as_value_fails_in_torchs_words():
    def build(lib):
        weight, bias = lib.zeros(3 * E, E), lib.zeros(3 * E)
        out_weight, out_bias = lib.zeros(E, E), lib.zeros(E)
        memory = lib.zeros(5, 2, E + 1)
        return lib.nn.functional.multi_head_attention_forward(
            lib.zeros(3, 2, E), memory, memory, E, HEADS, weight, bias, None, None, False, 0.0,
            out_weight, out_bias)

    _same_error(build)


@pytest.mark.parametrize("kind", ["self", "cross", "separate key and value"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_packed_projections_give_torchs_outputs_and_gradients(kind, batch_first):
    query = RNG.standard_normal((2, 3, E) if batch_first else (3, 2, E)).astype(np.float32)
    memory = RNG.standard_normal((2, 5, E) if batch_first else (5, 2, E)).astype(np.float32)
    other = RNG.standard_normal(memory.shape).astype(np.float32)
    in_weight = RNG.standard_normal((3 * E, E)).astype(np.float32) / 3
    in_bias = RNG.standard_normal(3 * E).astype(np.float32)

    def run(lib):
        attention = lib.nn.MultiheadAttention(E, HEADS, batch_first=batch_first)
        with lib.no_grad():
            attention.in_proj_weight.copy_(lib.tensor(in_weight))
            attention.in_proj_bias.copy_(lib.tensor(in_bias))
            attention.out_proj.weight.copy_(lib.tensor(in_weight[:E]))
        q = lib.tensor(query, requires_grad=True)
        m = lib.tensor(memory, requires_grad=True)
        if kind == "self":
            out, weights = attention(q, q, q)
        elif kind == "cross":
            out, weights = attention(q, m, m)
        else:
            out, weights = attention(q, m, lib.tensor(other))
        (out * out).sum().backward()
        m_grad = None if m.grad is None else m.grad.numpy()
        return out.detach().numpy(), weights.detach().numpy(), q.grad.numpy(), m_grad, \
            attention.in_proj_weight.grad.numpy(), attention.in_proj_bias.grad.numpy()

    for ours, theirs in zip(run(chainrule), run(torch)):
        if theirs is None:
            assert ours is None
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


# A batched LSTMCell hands hx to torch's lstm_cell, which takes exactly a pair of tensors: one
# tensor, or a tuple of one or three, is refused (an unbatched hx is indexed in Python instead).
@pytest.mark.parametrize("make_hx", [
    lambda lib: (lib.zeros(2, 4),),
    lambda lib: (lib.zeros(2, 4),) * 3,
    lambda lib: [lib.zeros(2, 4)],
    lambda lib: (),
    lambda lib: lib.zeros(2, 4),
    lambda lib: lib.zeros(2, 2, 4),
], ids=["one", "three", "list of one", "empty", "tensor", "stacked tensor"])
def test_batched_lstm_cell_takes_a_pair_of_states_as_torch(make_hx):
    def build(lib):
        return lib.nn.LSTMCell(3, 4)(lib.zeros(2, 3), make_hx(lib))

    _same_error(build)


def test_batched_lstm_cell_checks_the_pair_before_the_input_width_as_torch():
    _same_error(lambda lib: lib.nn.LSTMCell(3, 4)(lib.zeros(2, 5), (lib.zeros(2, 4),)))
