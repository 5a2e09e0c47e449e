"""Session 56, mendDH: circular padding's node is named as torch's last node of its slice copies
(CopySlices), values and gradients unchanged."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# (input shape, pad): one, two and three padded dims, a one-sided pad, a negative (cropping) side
_CIRCULAR_CASES = [((2, 3, 5), (1, 2)), ((2, 3, 5), (2, 0)), ((1, 2, 4, 5), (2, 1, 0, 3)),
                   ((1, 2, 4, 5), (-1, 2, 1, 0)), ((1, 2, 3, 4, 5), (1, 1, 1, 1, 1, 1)), ((3, 5), (1, 1))]


def _circular(lib, shape: tuple, pad: tuple):
    x = np.random.default_rng(len(shape) + sum(pad)).standard_normal(shape).astype(np.float32)
    leaf = lib.tensor(x, requires_grad=True)
    out = lib.nn.functional.pad(leaf * 2, pad, mode="circular")
    seed = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(lib.tensor(seed))
    return out, leaf


@pytest.mark.parametrize("shape, pad", _CIRCULAR_CASES)
def test_circular_pad_node_is_named_as_torchs_last_slice_copy(shape, pad):
    theirs, their_leaf = _circular(torch, shape, pad)
    ours, our_leaf = _circular(chainrule, shape, pad)
    assert ours.grad_fn.name() == theirs.grad_fn.name() == "torch::autograd::CopySlices"
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
    assert np.array_equal(ours.detach().numpy(), theirs.detach().numpy())
    assert ours.stride() == theirs.stride()
    assert np.array_equal(our_leaf.grad.numpy(), their_leaf.grad.numpy())


@pytest.mark.parametrize("k", [1, 2, 3])
def test_circular_conv_reads_the_padded_input_through_copy_slices(k):
    names = []
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        conv = getattr(lib.nn, f"Conv{k}d")(2, 3, 3, padding=1, padding_mode="circular")
        y = conv(lib.ones(1, 2, *([4] * k), requires_grad=True))
        names.append([node.name() for node, _ in y.grad_fn.next_functions])
    assert names[0] == names[1]


def test_circular_pad_under_vmap_records_the_same_node():
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 5)).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        leaf = lib.tensor(x, requires_grad=True)
        y = lib.func.vmap(lambda t, lib=lib: lib.nn.functional.pad(t, (1, 2, 1, 0), mode="circular"))(leaf)
        y.backward(lib.tensor(np.arange(y.numel(), dtype=np.float32).reshape(tuple(y.shape))))
        results.append((y.grad_fn.name(), y.detach().numpy(), leaf.grad.numpy()))
    (their_name, their_y, their_grad), (our_name, our_y, our_grad) = results
    assert our_name == their_name
    assert np.array_equal(our_y, their_y) and np.array_equal(our_grad, their_grad)
