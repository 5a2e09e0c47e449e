"""The idioms of the FocalNet, CCNet and CondInst programs, each against torch: values, gradients,
strides and node names of the pieces the programs build their checks on."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _grads_and_outputs(fn, *arrays):
    """Run ``fn(lib, *leaves)`` on both libraries; backward a fixed cosine weighting of the
    outputs; return per library (outputs, grads, strides, node names)."""
    results = []
    for lib in LIBS:
        leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
        outs = fn(lib, *leaves)
        outs = outs if isinstance(outs, tuple) else (outs,)
        total = sum((o * lib.tensor(np.cos(np.arange(o.numel())).reshape(o.shape).astype(np.float32))).sum()
                    for o in outs)
        total.backward()
        results.append(([o.detach().numpy() for o in outs], [t.grad.numpy() for t in leaves],
                        [o.stride() for o in outs], [type(o.grad_fn).__name__ for o in outs]))
    return results


def _assert_same(results, rtol=1e-5, atol=1e-6):
    (ours, our_grads, our_strides, our_nodes), (theirs, their_grads, their_strides, their_nodes) = results
    assert our_strides == their_strides and our_nodes == their_nodes
    for a, b in zip(ours + our_grads, theirs + their_grads):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("h, bw", [(1, 1), (4, 6)])
def test_ccnet_inf_diagonal_mask_as_torch(h, bw):
    masks = [-lib.diag(lib.tensor(float("inf")).repeat(h), 0).unsqueeze(0).repeat(bw, 1, 1)
             for lib in LIBS]
    ours, theirs = (m.numpy() for m in masks)
    assert masks[0].shape == tuple(masks[1].shape) and masks[0].dtype == chainrule.float32
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))  # -0.0 off the diagonal


def test_ccnet_criss_cross_softmax_as_torch():
    b, c, h, w = 2, 3, 4, 5
    rng = np.random.default_rng(0)

    def criss_cross(lib, q, k):
        q_h = q.permute(0, 3, 1, 2).contiguous().view(b * w, -1, h).permute(0, 2, 1)
        k_h = k.permute(0, 3, 1, 2).contiguous().view(b * w, -1, h)
        inf = -lib.diag(lib.tensor(float("inf")).repeat(h), 0).unsqueeze(0).repeat(b * w, 1, 1)
        energy_h = (lib.bmm(q_h, k_h) + inf).view(b, w, h, h).permute(0, 2, 1, 3)
        q_w = q.permute(0, 2, 1, 3).contiguous().view(b * h, -1, w).permute(0, 2, 1)
        k_w = k.permute(0, 2, 1, 3).contiguous().view(b * h, -1, w)
        energy_w = lib.bmm(q_w, k_w).view(b, h, w, w)
        attention = lib.nn.functional.softmax(lib.cat([energy_h, energy_w], 3), 3)
        return attention, attention[:, :, :, 0:h].permute(0, 2, 1, 3).contiguous().view(b * w, h, h)

    results = _grads_and_outputs(criss_cross, *rng.standard_normal((2, b, c, h, w)).astype(np.float32))
    _assert_same(results)
    attention = results[0][0][0]
    np.testing.assert_allclose(attention.sum(3), 1.0, atol=1e-6)
    assert (attention[:, np.arange(h), :, np.arange(h)] == 0).all()


def test_focalnet_split_after_permute_as_torch():
    C, level = 4, 2
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 2 * C + level + 1)).astype(np.float32)

    def split(lib, x):
        q, ctx, gates = lib.split(x.permute(0, 3, 1, 2).contiguous(), (C, C, level + 1), 1)
        ctx_all = ctx * gates[:, 0:1] + ctx.mean(2, keepdim=True).mean(3, keepdim=True) * gates[:, level:]
        return q, ctx_all

    _assert_same(_grads_and_outputs(split, x))


def test_focalnet_drop_path_mask_as_torch():
    masks = []
    for lib in LIBS:
        lib.manual_seed(5)
        x = lib.ones(64, 3, 2)
        masks.append(x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(0.7).div_(0.7).numpy())
    assert masks[0].shape == (64, 1, 1)
    np.testing.assert_array_equal(masks[0], masks[1])


def test_condinst_grouped_dynamic_conv_as_torch_and_as_a_loop():
    n, c_in, c_out, H, W = 3, 4, 2, 5, 6
    rng = np.random.default_rng(2)
    arrays = (rng.standard_normal((n, c_in, H * W)).astype(np.float32),
              rng.standard_normal((n * c_out, c_in, 1, 1)).astype(np.float32),
              rng.standard_normal((n, c_out)).astype(np.float32))

    def grouped(lib, x, w, b):
        return lib.nn.functional.relu(lib.nn.functional.conv2d(x.reshape(1, -1, H, W), w, bias=b.reshape(-1), groups=n))

    def looped(lib, x, w, b):
        return lib.cat([lib.nn.functional.relu(lib.nn.functional.conv2d(
            x[k].reshape(1, c_in, H, W), w[k * c_out:(k + 1) * c_out], b[k])) for k in range(n)], 1)

    results = _grads_and_outputs(grouped, *arrays)
    _assert_same(results)
    loop = _grads_and_outputs(looped, *arrays)[0]
    for a, b in zip(results[0][0] + results[0][1], loop[0] + loop[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factor", [2, 4])
def test_condinst_aligned_bilinear_as_torch(factor):
    def aligned_bilinear(lib, x):
        h, w = x.shape[2:]
        x = lib.nn.functional.pad(x, pad=(0, 1, 0, 1), mode="replicate")
        x = lib.nn.functional.interpolate(x, size=(factor * h + 1, factor * w + 1), mode="bilinear", align_corners=True)
        x = lib.nn.functional.pad(x, pad=(factor // 2, 0, factor // 2, 0), mode="replicate")
        return x[:, :, :factor * h, :factor * w]

    _assert_same(_grads_and_outputs(aligned_bilinear, np.random.default_rng(3).standard_normal((2, 1, 3, 4)).astype(np.float32)))


# depthwise input gradients take their own path (one product per offset, added in offset order)
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", [
    ((2, 3, 7, 6), 3, 1, 1, 1), ((3, 4, 9, 8), 5, 2, 2, 1), ((1, 2, 8, 7), 3, 1, 0, 2), ((2, 3, 5, 5, 4), 3, 2, 1, 1)])
def test_depthwise_conv_gradients_and_transpose_as_torch(shape, kernel, stride, padding, dilation):
    d = len(shape) - 2
    c = shape[1]
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((c, 1) + (kernel,) * d).astype(np.float32)

    def depthwise(lib, x, w):
        conv = lib.nn.functional.conv2d if d == 2 else lib.nn.functional.conv3d
        y = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=c)
        transpose = lib.nn.functional.conv_transpose2d if d == 2 else lib.nn.functional.conv_transpose3d
        return y, transpose(y, w, stride=stride, padding=padding, dilation=dilation, groups=c)

    _assert_same(_grads_and_outputs(depthwise, x, w), rtol=1e-4, atol=1e-5)
