"""Session 33, lane progAP: what the wav2vec 2.0, Temporal Fusion Transformer and DenseNet programs
found different from torch 2.13, each checked against torch on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- the legacy constructors given a tensor
# fairseq's GradMultiply returns ``x.new(x)`` from its forward: torch's legacy constructor given a
# tensor returns an alias (the same memory and version counter, on the graph as AliasBackward0, in the
# tensor's own dtype), where chainrule made a detached copy in the default dtype.


def _legacy_report(make_alias, lib):
    """What a user can see of ``make_alias(lib, source)``: its values and dtype, its grad_fn, whether a
    write through it shows in the source, the versions, and the gradient that reaches the source."""
    source = lib.arange(6.0).view(2, 3).requires_grad_(True)
    through = source * 1
    alias = make_alias(lib, through)
    report = {"values": alias.tolist(), "dtype": str(alias.dtype).split(".")[-1], "type": type(alias).__name__,
              "grad_fn": type(alias.grad_fn).__name__, "stride": alias.stride()}
    (alias * lib.arange(6.0).view(alias.shape)).sum().backward()
    report["grad"] = source.grad.tolist()
    with lib.no_grad():
        plain = lib.arange(4).view(2, 2)
        aliased = make_alias(lib, plain) if make_alias is not _float_tensor else make_alias(lib, plain.float())
        aliased[0, 0] = 7
        report["plain"] = (aliased.tolist(), str(aliased.dtype).split(".")[-1], aliased._version)
        report["written through"] = plain.tolist() if make_alias is not _float_tensor else None
    return report


def _float_tensor(lib, t):
    return lib.FloatTensor(t)


class _Subclass:
    """A user subclass without __init__ of its own, made per library."""

    classes: dict = {}

    @classmethod
    def of(cls, lib):
        if lib not in cls.classes:
            cls.classes[lib] = type("MyTensor", (lib.Tensor,), {})
        return cls.classes[lib]


_LEGACY_CASES = {
    "x.new(x)": lambda lib, t: t.new(t),
    "Tensor(t)": lambda lib, t: lib.Tensor(t),
    "subclass(t)": lambda lib, t: _Subclass.of(lib)(t),
    "FloatTensor(t)": _float_tensor,
    "x.new(a strided slice)": lambda lib, t: t.new(t.t()),
}


@pytest.mark.parametrize("case", _LEGACY_CASES)
def test_legacy_constructor_given_a_tensor_is_torchs_alias(case):
    make = _LEGACY_CASES[case]
    assert _legacy_report(make, chainrule) == _legacy_report(make, torch)


@pytest.mark.parametrize("other", ["long", "double"])
def test_new_given_a_tensor_of_another_dtype_is_torchs_type_error(other):
    def outcome(lib):
        try:
            lib.ones(2).new(lib.ones(2, dtype=getattr(lib, other)))
        except TypeError as error:
            return str(error)
        return "no error"

    assert outcome(chainrule) == outcome(torch)



# ---------------------------------------------------------------- the gradient of overwritten elements
# wav2vec 2.0 masks distractors equal to the positive by ``logits[1:][neg_is_pos] = float("-inf")``:
# torch's index_put backward writes zeros where the write landed (grad.index_put(indices, 0)), where
# chainrule multiplied by a 0/1 mask, giving -0 for a negative gradient and nan for an inf or nan one
# (a sqrt or log at the written values sends one).
_MASK = [[True, False, True], [False, False, False]]

_WRITE_CASES = {
    "mask, -inf": lambda lib, y: y.__setitem__(lib.tensor(_MASK), float("-inf")),
    "mask through a slice": lambda lib, y: y[1:].__setitem__(lib.tensor(_MASK[:1]), 0.5),
    "mask, 0-d tensor value": lambda lib, y: y.__setitem__(lib.tensor(_MASK), lib.tensor(9.0)),
    "one element": lambda lib, y: y.__setitem__((0, 1), 3.0),
    "index tensor": lambda lib, y: y.__setitem__(lib.tensor([0, 1]), 3.0),
    "columns by slice": lambda lib, y: y.__setitem__((slice(None), slice(1, None)), 0.0),
}


def _grad_after_write(write, upstream, lib):
    x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    y = x.clone()
    write(lib, y)
    y.backward(lib.full((2, 3), upstream))
    return [repr(v) for v in x.grad.flatten().tolist()]


@pytest.mark.parametrize("upstream", [-1.0, float("inf"), float("nan")])
@pytest.mark.parametrize("case", _WRITE_CASES)
def test_overwritten_elements_get_torchs_zero_gradient(case, upstream):
    write = _WRITE_CASES[case]
    assert _grad_after_write(write, upstream, chainrule) == _grad_after_write(write, upstream, torch)


def test_double_backward_through_an_overwrite_names_torchs_node():
    def report(lib):
        x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        y = x.clone()
        y[lib.tensor(_MASK)] = 0.0
        (g,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
        g.sum().backward()
        return type(g.grad_fn).__name__, g.tolist(), x.grad.tolist()

    assert report(chainrule) == report(torch)


# ---------------------------------------------------------------- the non-reentrant checkpoint recomputes
# torchvision's memory-efficient DenseNet checkpoints its bottleneck with use_reentrant=False. torch
# reruns the segment in backward, so a BatchNorm there updates its running statistics twice
# (pytorch/pytorch#96136) and forward hooks fire twice; chainrule kept the activations and reran
# nothing.


def _checkpointed_batchnorm(lib, backwards):
    lib.manual_seed(0)
    calls = []
    norm, conv = lib.nn.BatchNorm2d(3), lib.nn.Conv2d(3, 4, 1, bias=False)
    conv.register_forward_hook(lambda module, args, out: calls.append("conv"))

    def segment(*inputs):
        return conv(lib.relu(norm(lib.cat(inputs, 1))))

    a = lib.randn(4, 1, 5, 5, requires_grad=True)
    b = lib.randn(4, 2, 5, 5)
    out = lib.utils.checkpoint.checkpoint(segment, a, b, use_reentrant=False)
    for i in range(backwards):
        out.pow(2).sum().backward(retain_graph=i < backwards - 1)
    return {"batches tracked": norm.num_batches_tracked.item(), "running mean": norm.running_mean.tolist(),
            "hook calls": len(calls), "input grad": a.grad.flatten().tolist()[:6],
            "weight grad": conv.weight.grad.flatten().tolist()}


@pytest.mark.parametrize("backwards", [1, 2])
def test_non_reentrant_checkpoint_reruns_the_segment_in_each_backward(backwards):
    ours, theirs = _checkpointed_batchnorm(chainrule, backwards), _checkpointed_batchnorm(torch, backwards)
    assert (ours["batches tracked"], ours["hook calls"]) == (theirs["batches tracked"], theirs["hook calls"])
    for key in ("running mean", "input grad", "weight grad"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6)


def test_non_reentrant_checkpoint_still_differentiates_twice():
    def second_order(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        w = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = lib.utils.checkpoint.checkpoint(lambda a: (a * a * w).sin().sum(), x, use_reentrant=False)
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        return [t.tolist() for t in (g, *lib.autograd.grad(g.sum(), (x, w)))]

    for ours, theirs in zip(second_order(chainrule), second_order(torch)):
        assert ours == pytest.approx(theirs, rel=1e-5)


def test_non_reentrant_checkpoint_redraws_the_forwards_dropout_mask():
    def grads(lib):
        lib.manual_seed(0)
        linear = lib.nn.Linear(6, 6)
        x = lib.randn(8, 6, requires_grad=True)
        out = lib.utils.checkpoint.checkpoint(lambda t: lib.nn.functional.dropout(linear(t), 0.5), x,
                                              use_reentrant=False)
        out.sum().backward()
        return out.tolist(), linear.weight.grad.tolist(), x.grad.tolist()

    for ours, theirs in zip(grads(chainrule), grads(torch)):
        assert np.asarray(ours) == pytest.approx(np.asarray(theirs), rel=1e-5, abs=1e-6)
