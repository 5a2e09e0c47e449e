"""The idioms of the PoolFormer, FEDformer and MelGAN programs, each against torch: values, gradients,
strides and node names of the pieces the programs build their checks on."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _run_both(fn, *arrays):
    """``fn(lib, *leaves)`` on both libraries; backward a fixed cosine weighting of the outputs;
    per library: (output values, leaf gradients, output strides, node names)."""
    results = []
    for lib in LIBS:
        leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
        outs = fn(lib, *leaves)
        outs = outs if isinstance(outs, tuple) else (outs,)
        total = sum((o * lib.tensor(np.cos(np.arange(o.numel())).reshape(o.shape).astype(np.float32))).sum()
                    for o in outs)
        total.backward()
        results.append(([o.detach().numpy() for o in outs], [t.grad.resolve_conj().numpy() for t in leaves],
                        [o.stride() for o in outs], [o.grad_fn.name() for o in outs]))
    return results


def _assert_same(results, rtol=1e-5, atol=1e-6):
    (ours, our_grads, our_strides, our_nodes), (theirs, their_grads, their_strides, their_nodes) = results
    assert our_nodes == their_nodes
    assert our_strides == their_strides
    for a, b in zip(ours + our_grads, theirs + their_grads):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _crandn(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


# --- PoolFormer: the pooling token mixer, GroupNorm(1, C) and the layer scale
@pytest.mark.parametrize("pool_size", [3, 5])
def test_poolformer_token_mixer_with_group_norm_and_layer_scale(pool_size):
    def block(lib, x, scale, weight, bias):
        pool = lib.nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2, count_include_pad=False)
        normed = lib.nn.functional.group_norm(x, 1, weight, bias)
        return x + scale.unsqueeze(-1).unsqueeze(-1) * (pool(normed) - normed)

    _assert_same(_run_both(block, _randn(2, 4, 7, 6), _randn(4, seed=1), _randn(4, seed=2), _randn(4, seed=3)),
                 rtol=1e-4, atol=1e-5)


def test_drop_path_mask_from_new_empty_bernoulli_draws_torchs_numbers():
    masks = []
    for lib in LIBS:
        lib.manual_seed(3)
        x = lib.ones(16, 3, 2, 2)
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(0.7)
        masks.append((x * mask.div_(0.7)).numpy())
    np.testing.assert_array_equal(masks[0], masks[1])


# --- FEDformer: the Fourier block's per-mode complex einsum into a zero spectrum, and the cross attention
def _fourier_block(lib, x, weights):
    index = [1, 3, 4, 6]
    batch, length, heads, width = x.shape
    xq = x.permute(0, 2, 3, 1)
    x_ft = lib.fft.rfft(xq, dim=-1)
    out_ft = lib.zeros(batch, heads, width, length // 2 + 1, dtype=lib.cfloat)
    for wi, i in enumerate(index):
        out_ft[:, :, :, wi] = lib.einsum("bhi,hio->bho", x_ft[:, :, :, i], weights[:, :, :, wi])
    return lib.fft.irfft(out_ft, n=length).view(batch, length, -1)


def _fourier_cross_attention(lib, x, weights):
    index = [1, 3, 4, 6]
    batch, length, heads, width = x.shape
    xq = x.permute(0, 2, 3, 1)
    xq_ft = lib.fft.rfft(xq, dim=-1)
    gathered = lib.zeros(batch, heads, width, len(index), dtype=lib.cfloat)
    for i, j in enumerate(index):
        gathered[:, :, :, i] = xq_ft[:, :, :, j]
    scores = lib.einsum("bhex,bhey->bhxy", gathered, gathered).tanh()
    mixed = lib.einsum("bhex,heox->bhox", lib.einsum("bhxy,bhey->bhex", scores, gathered), weights)
    out_ft = lib.zeros(batch, heads, width, length // 2 + 1, dtype=lib.cfloat)
    for i, j in enumerate(index):
        out_ft[:, :, :, j] = mixed[:, :, :, i]
    return lib.fft.irfft(out_ft / width / width, n=length)


@pytest.mark.parametrize("block", [_fourier_block, _fourier_cross_attention])
@pytest.mark.parametrize("length", [12, 15])
def test_fedformer_fourier_blocks(block, length):
    x = _randn(2, length, 2, 3) * 0.5
    weights = _crandn(2, 3, 3, 4, seed=1) * 0.3
    _assert_same(_run_both(block, x, weights), rtol=1e-4, atol=1e-5)


def test_complex_rand_draws_torchs_numbers():
    draws = []
    for lib in LIBS:
        lib.manual_seed(4)
        draws.append(lib.rand(2, 3, 4, dtype=lib.cfloat).numpy())
    np.testing.assert_array_equal(draws[0], draws[1])


def test_moving_average_by_replicate_padding_and_avg_pool1d():
    def decompose(lib, x):
        front = x[:, 0:1, :].repeat(1, 6, 1)
        end = x[:, -1:, :].repeat(1, 6, 1)
        trend = lib.nn.AvgPool1d(13, stride=1, padding=0)(lib.cat([front, x, end], dim=1).permute(0, 2, 1))
        return x - trend.permute(0, 2, 1)

    _assert_same(_run_both(decompose, _randn(2, 20, 3)))


# --- MelGAN: weight norm (hook and parametrization), reflection padding, grouped strided convs
@pytest.mark.parametrize("kind", ["Conv1d", "ConvTranspose1d"])
def test_deprecated_weight_norm_names_warning_and_gradients(kind):
    results = []
    for lib in LIBS:
        lib.manual_seed(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = lib.nn.utils.weight_norm(getattr(lib.nn, kind)(4, 6, 3))
        module.weight.data.normal_(0.0, 0.02)  # MelGAN's weights_init: undone by the pre-forward hook
        x = lib.tensor(_randn(2, 4, 9))
        y = lib.nn.functional.leaky_relu(module(lib.nn.ReflectionPad1d(2)(x)), 0.2)
        y.pow(2).sum().backward()
        results.append((y.detach().numpy(), module.weight_g.grad.numpy(), module.weight_v.grad.numpy(),
                        list(module.state_dict()), [str(w.message) for w in caught]))
    for ours, theirs in zip(*results):
        if isinstance(ours, np.ndarray):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
        else:
            assert ours == theirs


def test_parametrized_weight_norm_on_a_grouped_strided_conv():
    results = []
    for lib in LIBS:
        lib.manual_seed(1)
        conv = lib.nn.utils.parametrizations.weight_norm(
            lib.nn.Conv1d(8, 16, kernel_size=41, stride=4, padding=20, groups=2))
        x = lib.tensor(_randn(2, 8, 64), requires_grad=True)
        y = lib.nn.LeakyReLU(0.2, True)(conv(x))
        y.pow(2).sum().backward()
        g = conv.parametrizations.weight.original0
        v = conv.parametrizations.weight.original1
        effective = (conv.weight - g * v / v.norm(dim=(1, 2), keepdim=True)).abs().max().item()
        results.append((y.detach().numpy(), x.grad.numpy(), g.grad.numpy(), y.grad_fn.name()))
        assert effective < 1e-6
    for ours, theirs in zip(*results):
        if isinstance(ours, np.ndarray):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
        else:
            assert ours == theirs


def test_multiscale_downsampling_excludes_padding():
    _assert_same(_run_both(lambda lib, x: lib.nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)(x),
                           _randn(3, 1, 11)))


# --- writing complex values into a real tensor: torch's copy kernel warns (once a process) on every path
_WRITES = {
    "copy_": lambda lib, z: lib.zeros(3).copy_(z),
    "setitem_slice": lambda lib, z: _assigned(lib.zeros(2, 3), (slice(None), 0), z[:2]),
    "setitem_int": lambda lib, z: _assigned(lib.zeros(2, 3), 0, z),
    "setitem_0d": lambda lib, z: _assigned(lib.zeros(2, 3), 0, z[1]),
    "view_copy_": lambda lib, z: lib.zeros(3, 2)[:, 1].copy_(z),
    "as_tensor": lambda lib, z: lib.as_tensor(z, dtype=lib.float32),
    "as_tensor_ndarray": lambda lib, z: lib.as_tensor(z.numpy(), dtype=lib.float32),
    "tensor_ndarray_to_int": lambda lib, z: lib.tensor(z.numpy(), dtype=lib.int32),
    "tensor_ndarray_to_bool": lambda lib, z: lib.tensor(z.numpy(), dtype=lib.bool),
    "to": lambda lib, z: z.to(lib.float64),
    "copy_into_bool": lambda lib, z: lib.zeros(3, dtype=lib.bool).copy_(z),
}


def _assigned(target, key, value):
    target[key] = value
    return target


@pytest.mark.parametrize("write", sorted(_WRITES))
def test_complex_into_real_writes_warn_as_torch(write):
    results = []
    for lib in LIBS:
        lib.set_warn_always(True)  # (the once-a-process warning on every call, in both libraries)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = _WRITES[write](lib, lib.tensor(np.array([1 + 2j, -3 + 0.5j, 0.25 - 1j], np.complex64)))
        finally:
            lib.set_warn_always(False)
        results.append((out.numpy(), [(w.category, str(w.message)) for w in caught]))
    (ours, our_warnings), (theirs, their_warnings) = results
    np.testing.assert_array_equal(ours, theirs)
    assert our_warnings == their_warnings
