"""Session 53, perfAO: per-call cost of small norms, activations and unsqueeze, the same bits.

gelu's float32 kernels take 0-d array constants (pinned here to the bits they gave before), layer
norm's row statistics take cached constants, batch norm reads sizes off the arrays, sigmoid works
in place on its fresh temporary, unsqueeze skips naming an unrecorded output; layer norm's node
keeps its bias (grad_fn._saved_bias) as torch's does.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import _special
from chainrule.ops.normalization import _row_constants

torch = pytest.importorskip("torch")


def _bits(array) -> int:
    """The sum of the float32 values' bit patterns: one number that changes with any output bit."""
    return int(np.ascontiguousarray(array, np.float32).view(np.uint32).astype(np.uint64).sum())


def _inputs():
    gen = np.random.default_rng(53)
    x = (gen.standard_normal((8, 64, 5)) * 3).astype(np.float32)
    g = gen.standard_normal((8, 64, 5)).astype(np.float32)
    w, b, mean = (gen.standard_normal(64).astype(np.float32) for _ in range(3))
    var = gen.uniform(0.2, 2.0, 64).astype(np.float32)
    return x, g, w, b, mean, var


def test_gelu_float32_kernels_keep_their_bits():
    # (sums taken at 8bdec9b8, before the constants became 0-d arrays; the kernels are IEEE
    # arithmetic and table look-ups only, the same on any CPU)
    x, g, *_ = _inputs()
    assert _bits(_special.gelu_float32(x)) == 5256312308486
    # (the backward's sum since mendCT, whose 1/√pi is oneDNN's: torch's gelu_backward's on AVX2)
    assert _bits(_special.gelu_backward_float32(g, x)) == 5415393402057
    special = np.array([0.0, -0.0, 1e-40, -1e-40, 5.6, -5.6, 100.0, -100.0, np.inf, -np.inf, np.nan], np.float32)
    with np.errstate(all="ignore"):  # (as the op calls them: inf and nan pass through the polynomials)
        forward = _special.gelu_float32(special)
        backward = _special.gelu_backward_float32(np.ones_like(special), special)
    assert forward.view(np.uint32).tolist() == [0, 2147483648, 35681, 2147519329, 1085485875, 2147483648, 1120403456,
                                                2147483648, 4290772992, 2143289344, 2143289344]
    assert backward.view(np.uint32).tolist() == [1056964608, 1056964608, 1056964608, 1056964608, 1065353219,
                                                 3032481792, 1065353216, 0, 4290772992, 4290772992, 2143289344]


def test_eval_batch_norm_output_and_gradients_equal_torch_bitwise():
    x, g, w, b, mean, var = _inputs()
    results = []
    for lib in (chainrule, torch):
        t = lib.tensor(x, requires_grad=True)
        weight, bias = lib.tensor(w, requires_grad=True), lib.tensor(b, requires_grad=True)
        y = lib.nn.functional.batch_norm(t, lib.tensor(mean), lib.tensor(var), weight, bias, training=False)
        y.backward(lib.tensor(g))
        results.append([a.detach().numpy() for a in (y, t.grad, weight.grad, bias.grad)])
    for ours, theirs in zip(*results):
        assert ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize("shape", [(32, 128), (3, 5, 7), (1, 1), (0, 4)])
def test_layer_norm_values_and_gradients_close_to_torch(shape):
    gen = np.random.default_rng(sum(shape))
    x = gen.standard_normal(shape).astype(np.float32)
    w, b = gen.standard_normal(shape[-1]).astype(np.float32), gen.standard_normal(shape[-1]).astype(np.float32)
    results = []
    for lib in (chainrule, torch):
        t, weight, bias = (lib.tensor(a, requires_grad=True) for a in (x, w, b))
        y = lib.nn.functional.layer_norm(t, (shape[-1],), weight, bias, eps=0.25)
        y.sum().backward()
        results.append([a.detach().numpy() for a in (y, t.grad, weight.grad, bias.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_layer_norm_constants_are_cached_read_only_and_exact():
    row_mean, length, eps, one = _row_constants(128, np.dtype(np.float32), 1e-5)
    assert _row_constants(128, np.dtype(np.float32), 1e-5)[0] is row_mean
    assert not row_mean.flags.writeable and row_mean.dtype == np.float32 and row_mean.shape == (128,)
    assert length.item() == 128 and eps.item() == np.float32(1e-5) and one.item() == 1.0
    assert _row_constants(5, np.dtype(np.float64), 0.1)[2].dtype == np.float64


def _saved_bias_cases(lib):
    x = lib.randn(4, 8, requires_grad=True)
    w, b = lib.randn(8, requires_grad=True), lib.randn(8, requires_grad=True)
    constant = lib.randn(8)
    computed = b * 2
    return [(lib.nn.functional.layer_norm(x, (8,), w, bias), bias) for bias in (b, constant, computed)]


def test_layer_norm_saves_its_bias_as_torch():
    for lib in (chainrule, torch):
        for y, bias in _saved_bias_cases(lib):
            assert y.grad_fn._saved_bias is bias
    x = chainrule.randn(4, 8, requires_grad=True)
    assert chainrule.nn.functional.layer_norm(x, (8,)).grad_fn._saved_bias is None


def test_layer_norm_bias_changed_in_place_refuses_backward_as_torch():
    messages = []
    for lib in (chainrule, torch):
        x = lib.randn(4, 8, requires_grad=True)
        w, b = lib.randn(8, requires_grad=True), lib.randn(8, requires_grad=True)
        y = lib.nn.functional.layer_norm(x, (8,), w, b)
        with lib.no_grad():
            b.add_(1)
        with pytest.raises(RuntimeError) as error:
            y.sum().backward()
        messages.append(str(error.value).split(":")[0])
    assert messages[0] == messages[1]


def test_sigmoid_and_silu_close_to_torch_with_extremes():
    values = np.array([0.0, -0.0, 1e-40, -88.0, -89.0, -104.0, 88.0, 100.0, np.inf, -np.inf, 3.5, -3.5], np.float32)
    for name in ("sigmoid", "silu"):
        ours_t = chainrule.tensor(values, requires_grad=True)
        theirs_t = torch.tensor(values, requires_grad=True)
        ours = (chainrule.sigmoid if name == "sigmoid" else chainrule.nn.functional.silu)(ours_t)
        theirs = (torch.sigmoid if name == "sigmoid" else torch.nn.functional.silu)(theirs_t)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=0)
        ours.sum().backward()
        theirs.sum().backward()
        np.testing.assert_allclose(ours_t.grad.numpy(), theirs_t.grad.numpy(), rtol=1e-6, atol=1e-45)
    # a 0-d input keeps the scalar path
    assert chainrule.sigmoid(chainrule.tensor(0.0)).item() == 0.5


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "empty"])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_unsqueeze_strides_and_node_as_torch(layout, requires_grad):
    shape = (0, 4) if layout == "empty" else (3, 4)
    data = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    seen = []
    for lib in (chainrule, torch):
        t = lib.tensor(data, requires_grad=requires_grad)
        t = t.transpose(0, 1) if layout == "transposed" else t[:, ::2] if layout == "sliced" else t
        rows = []
        for dim in range(-t.ndim - 1, t.ndim + 1):
            y = t.unsqueeze(dim)
            node = y.grad_fn
            rows.append((tuple(y.shape), y.stride(), None if node is None else (type(node).__name__, node._saved_dim)))
        seen.append(rows)
    assert seen[0] == seen[1]
