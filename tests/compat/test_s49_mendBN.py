"""s49 mendBN: what a TorchDispatchMode sees, continued from mendBG. F.linear of a batch whose rows are no view
as torch's bmm against the expanded weight; F.embedding_bag as ATen's one _embedding_bag or
_embedding_bag_forward_only; ``Tensor.to`` as one aten._to_copy with the kwargs of the overload torch's parser
matched (memory formats as objects); a mixed-dtype operand as it was (TensorIterator casts inside the op);
``~bool`` as bitwise_not; label smoothing's weighted mean as torch's subclass-like branch; the zero biases of a
bias-less oneDNN LSTM; the Conjugate fallback's clone of a conjugated input; in-place alpha dropout's
AddBackward0. Each logged sequence is recorded live from torch."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from tests.compat._dispatch_checks import PassingMode as _Pass  # noqa: E402
from tests.compat._dispatch_checks import assert_a_handler_edit_reaches, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402


def _z(lib, a):
    return lib.complex(a["x"], a["y"])


PROGRAMS = {
    # F.linear (and a recorded matmul) of a batch whose rows are no view: expand, view, bmm, _unsafe_view
    "linear_transposed_batch": lambda lib, a: lib.nn.functional.linear(a["x3"].transpose(0, 1), a["m"]),
    "linear_transposed_batch_bias": lambda lib, a: lib.nn.functional.linear(a["x3"].transpose(0, 1), a["m"],
                                                                            a["bias"]),
    "linear_transposed_batch_recorded": lambda lib, a: lib.nn.functional.linear(
        a["x3"].requires_grad_().transpose(0, 1), a["m"], a["bias"]),
    "linear_transposed_batch_weight_recorded": lambda lib, a: lib.nn.functional.linear(
        a["x3"].transpose(0, 1), a["m"].requires_grad_(), a["bias"]),
    "matmul_transposed_batch_recorded": lambda lib, a: lib.matmul(a["x3"].requires_grad_().transpose(0, 1),
                                                                  a["m"].t()),
    # embedding_bag: ATen's one op, by whether the weight requires grad
    "embedding_bag_mean": lambda lib, a: lib.nn.functional.embedding_bag(lib.tensor([1, 2, 4, 5]), a["emb"],
                                                                         lib.tensor([0, 2])),
    "embedding_bag_sum": lambda lib, a: lib.nn.functional.embedding_bag(lib.tensor([1, 2, 4, 5]), a["emb"],
                                                                        lib.tensor([0, 2]), mode="sum"),
    "embedding_bag_max": lambda lib, a: lib.nn.functional.embedding_bag(lib.tensor([1, 2, 4, 5]), a["emb"],
                                                                        lib.tensor([0, 2]), mode="max"),
    "embedding_bag_2d": lambda lib, a: lib.nn.functional.embedding_bag(lib.tensor([[1, 2], [4, 5]]), a["emb"]),
    "embedding_bag_recorded": lambda lib, a: lib.nn.functional.embedding_bag(
        lib.tensor([1, 2, 4, 5]), a["emb"].requires_grad_(), lib.tensor([0, 2])),
    "embedding_bag_module": lambda lib, a: lib.nn.EmbeddingBag(10, 3)(lib.tensor([[1, 2], [4, 5]])),
    "embedding_bag_per_sample_weights": lambda lib, a: lib.nn.functional.embedding_bag(
        lib.tensor([1, 2, 4, 5]), a["emb"], lib.tensor([0, 2]), mode="sum",
        per_sample_weights=lib.tensor([1., 2., 3., 4.])),
    "embedding_bag_padding_idx": lambda lib, a: lib.nn.functional.embedding_bag(
        lib.tensor([1, 2, 4, 5]), a["emb"], lib.tensor([0, 2]), padding_idx=-6),
    "embedding_bag_include_last_offset": lambda lib, a: lib.nn.functional.embedding_bag(
        lib.tensor([1, 2, 4, 5]), a["emb"], lib.tensor([0, 1, 4]), mode="sum", include_last_offset=True),
    # Tensor.to: _to_copy's kwargs as the overload torch's parser matched
    "to_channels_last": lambda lib, a: a["img"].to(memory_format=lib.channels_last),
    "to_dtype_channels_last": lambda lib, a: a["img"].to(lib.float64, memory_format=lib.channels_last),
    "to_device_channels_last": lambda lib, a: a["img"].to("cpu", memory_format=lib.channels_last),
    "to_device_dtype_channels_last": lambda lib, a: a["img"].to("cpu", lib.float64,
                                                                memory_format=lib.channels_last),
    "to_other_channels_last": lambda lib, a: a["img"].to(a["x"].double(), memory_format=lib.channels_last),
    "to_copy_channels_last": lambda lib, a: a["img"].to(lib.float32, copy=True, memory_format=lib.channels_last),
    "to_keyword_dtype_channels_last": lambda lib, a: a["img"].to(dtype=lib.float64, memory_format=lib.channels_last),
    "to_contiguous_format": lambda lib, a: a["img"].to(memory_format=lib.contiguous_format),
    "to_channels_last_recorded": lambda lib, a: a["img"].requires_grad_().to(memory_format=lib.channels_last),
    "to_channels_last_and_back": lambda lib, a: a["img"].to(memory_format=lib.channels_last).to(
        memory_format=lib.contiguous_format),
    "to_other": lambda lib, a: a["img"].to(a["x"].double()),
    "to_device_dtype": lambda lib, a: a["img"].to("cpu", lib.float64),
    "to_copy": lambda lib, a: a["img"].to(lib.float32, copy=True),
    "to_copy_alone": lambda lib, a: a["img"].to(copy=True),
    "double_channels_last": lambda lib, a: a["img"].double(memory_format=lib.channels_last),
    "int_channels_last": lambda lib, a: a["img"].int(memory_format=lib.channels_last),
    "long_of_recorded": lambda lib, a: a["x"].requires_grad_().long(),
    # mixed dtypes: the operand as it was
    "div_by_integer_sum": lambda lib, a: a["x"].sum() / a["idx"].sum(),
    "mul_float64": lambda lib, a: a["x"] * a["x"].double(),
    "mul_float64_recorded": lambda lib, a: a["x"].requires_grad_() * a["y"].double(),
    "maximum_float64": lambda lib, a: lib.maximum(a["x"], a["y"].double()),
    "where_number": lambda lib, a: lib.where(a["x"] > 0, a["x"].long(), 1.5),
    # ~ and logical_not reach the mode
    "invert_bool": lambda lib, a: ~(a["x"] > 0),
    "invert_int": lambda lib, a: ~a["idx"],
    "logical_not": lambda lib, a: lib.logical_not(a["x"]),
    # label smoothing
    "label_smoothing_mean": lambda lib, a: lib.nn.functional.cross_entropy(a["x"], a["tgt"], label_smoothing=0.1),
    "label_smoothing_ignore": lambda lib, a: lib.nn.functional.cross_entropy(a["x"], a["tgt"], ignore_index=2,
                                                                             label_smoothing=0.2),
    "label_smoothing_weighted_mean": lambda lib, a: lib.nn.functional.cross_entropy(a["x"], a["tgt"], a["bias"],
                                                                                    label_smoothing=0.2),
    "label_smoothing_weighted_ignored": lambda lib, a: lib.nn.functional.cross_entropy(
        a["x"].requires_grad_(), lib.tensor([1, 2]), a["bias"], label_smoothing=0.2, ignore_index=2),
    # a bias-less oneDNN LSTM: torch's zeros for the biases
    "lstm_without_bias": lambda lib, a: lib.nn.LSTM(4, 2, bias=False)(a["x3"]),
    "lstm_without_bias_two_layers": lambda lib, a: lib.nn.LSTM(4, 2, bias=False, num_layers=2)(a["x3"]),
    # the Conjugate fallback: a conjugated input cloned before the op
    "conj_add": lambda lib, a: lib.conj(_z(lib, a)) + 1,
    "conj_method_mul": lambda lib, a: _z(lib, a).conj() * 2,
    "conj_sum": lambda lib, a: _z(lib, a).conj().sum(0),
    "conj_cat": lambda lib, a: lib.cat([_z(lib, a).conj(), _z(lib, a)]),
    "conj_mm": lambda lib, a: (lambda z: z @ z.t())(_z(lib, a).conj()),
    "conj_view": lambda lib, a: _z(lib, a).conj().view(6),
    "conj_recorded": lambda lib, a: lib.complex(a["x"].requires_grad_(), a["y"]).conj().exp(),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_mode_sees_torchs_aten_sequence(name):
    assert _logged(chainrule, PROGRAMS[name]) == _logged(real_torch, PROGRAMS[name])


# ---- values and gradients under a passing mode
@pytest.mark.parametrize("name,shape", [
    ("linear", (3, 4, 5)), ("matmul", (3, 4, 5)), ("embedding_bag", (10, 3)), ("to", (2, 3, 4, 5)),
    ("mixed", (3, 4)), ("smoothing", (4, 5)), ("conj", (3, 4)), ("where", (3, 4)),
])
def test_under_a_passing_mode_the_value_and_gradient_stay(name, shape):
    def program(lib, x):
        if name == "linear":
            w = lib.arange(15.0).reshape(3, 5) / 10
            return (lib.nn.functional.linear(x.transpose(0, 1), w, lib.ones(3)) ** 2).sum()
        if name == "matmul":
            return lib.matmul(x.transpose(0, 1), lib.arange(10.0).reshape(5, 2) / 7).sin().sum()
        if name == "embedding_bag":
            bags = lib.nn.functional.embedding_bag(lib.tensor([1, 2, 4, 5, 9]), x, lib.tensor([0, 2]), mode="max")
            return (bags * lib.arange(3.0)).sum() + lib.nn.functional.embedding_bag(
                lib.tensor([[1, 3], [0, 9]]), x, padding_idx=3).pow(2).sum()
        if name == "to":
            y = x.to(lib.float64, memory_format=lib.channels_last)
            return (y * lib.arange(5.0, dtype=lib.float64)).sum().float() + x.to(copy=True).exp().sum()
        if name == "mixed":
            return (x * lib.arange(4, dtype=lib.int64) / lib.tensor(3)).sum() + (x.double() * x).sum().float()
        if name == "smoothing":
            return lib.nn.functional.cross_entropy(x, lib.tensor([1, 0, 4, 2]), lib.arange(1.0, 6.0),
                                                   label_smoothing=0.15, ignore_index=4)
        if name == "where":
            return lib.where(x > 0, x, 2.5).pow(2).sum()
        z = lib.complex(x, x * 2).conj()
        return (z + 1).abs().sum()

    assert_a_passing_mode_keeps(program, shape, seed=5)


@pytest.mark.parametrize("inplace", [False, True])
def test_alpha_dropout_in_place_records_torchs_node_and_draws(inplace):
    def run(lib, mode):
        lib.manual_seed(3)
        x = lib.tensor(np.random.default_rng(0).standard_normal((4, 5)), dtype=lib.float32, requires_grad=True)
        with mode:
            out = lib.nn.functional.alpha_dropout(x * 1, 0.3, training=True, inplace=inplace)
        (out * lib.arange(5.0)).sum().backward()
        return out.detach().numpy(), x.grad.numpy(), out.grad_fn.name()

    ours, plain = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext())
    theirs = run(real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours[:2], plain[:2], theirs[:2]):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_array_equal(got, expected)
    assert ours[2] == plain[2] == theirs[2]


def test_to_with_copy_records_torchs_node():
    for lib in (chainrule, real_torch):
        x = lib.ones(2, 3, requires_grad=True)
        y = x.t().to(copy=True)
        assert y.grad_fn.name() == "ToCopyBackward0"
        assert y.stride() == (1, 3)
        assert y.to(lib.int64, copy=True).dtype == lib.int64


@pytest.mark.parametrize("op,edit,program", [
    ("aten.bmm.default", lambda args: (args[0], args[1] * 2),
     lambda lib, x: lib.nn.functional.linear(x.transpose(0, 1), lib.ones(2, 4))),
    ("aten._embedding_bag_forward_only.default", lambda args: (args[0], args[1], args[2], False, 0),
     lambda lib, x: lib.nn.functional.embedding_bag(lib.tensor([[1, 2], [0, 3]]), x[0, 0])),
    ("aten._to_copy.default", lambda args: (args[0] * 3,),
     lambda lib, x: x.to(memory_format=lib.channels_last)),
])
def test_a_handler_that_edits_the_args_gets_what_it_asked_for(op, edit, program):
    assert_a_handler_edit_reaches(op, edit, program, (2, 3, 5, 4))


def test_a_bias_less_lstm_under_a_passing_mode_keeps_values_and_gradients():
    def run(lib, mode):
        lib.manual_seed(0)
        module = lib.nn.LSTM(3, 4, bias=False, num_layers=2, bidirectional=True)
        x = lib.tensor(np.random.default_rng(1).standard_normal((5, 2, 3)), dtype=lib.float32, requires_grad=True)
        with mode:
            out, (h, c) = module(x)
        (out.pow(2).sum() + (h * c).sum()).backward()
        return [out.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in module.parameters()]

    ours, plain = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext())
    theirs = run(real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours, plain, theirs):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_linear_of_a_transposed_batch_gradchecks_under_a_mode():
    rng = np.random.default_rng(7)
    x = chainrule.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    w = chainrule.tensor(rng.standard_normal((5, 4)))
    b = chainrule.tensor(rng.standard_normal(5), requires_grad=True)

    def run(x, b):
        with _Pass():
            return chainrule.nn.functional.linear(x.transpose(0, 1), w, b)

    assert chainrule.autograd.gradcheck(run, (x, b))
