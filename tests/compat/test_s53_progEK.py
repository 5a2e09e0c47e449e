"""Session 53, lane progEK: the idioms of the evoformer_triangle_updates, revnet_reversible_blocks and
ddsp_harmonic_noise_synth programs, pinned against torch (their probes found no difference to fix;
these keep it so while the programs run outside CI's subset).

Each case is one function of the library (``torch`` or ``chainrule``), run on both with the same
NumPy inputs and compared: values and gradients.
"""
import math

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(case, *arrays):
    """case(lib, *tensors) -> list of arrays, on torch and on chainrule."""
    return [[np.asarray(a) for a in case(lib, *[lib.from_numpy(x.copy()) for x in arrays])]
            for lib in (torch, chainrule)]


def _assert_close(ours_and_torch, rtol=1e-5, atol=1e-6):
    theirs, ours = ours_and_torch
    assert len(theirs) == len(ours)
    for t, o in zip(theirs, ours):
        assert t.shape == o.shape
        np.testing.assert_allclose(o, t, rtol=rtol, atol=atol)


def _triangle_products(lib, a, b):
    a.requires_grad_()
    b.requires_grad_()
    weights = lib.from_numpy(np.linspace(-1, 1, 2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3))
    incoming = lib.einsum("bkic,bkjc->bijc", a, b)
    outgoing_t = lib.einsum("bikc,bjkc->bijc", a.transpose(1, 2), b.transpose(1, 2))
    outer = lib.einsum("bsic,bsjd->bijcd", a, b).flatten(-2) / a.shape[1]
    ga, gb = lib.autograd.grad((incoming * weights).sum() + outer.sum(), (a, b))
    return [incoming.detach().numpy(), outgoing_t.detach().numpy(), outer.detach().numpy(),
            ga.numpy(), gb.numpy()]


def test_triangle_update_einsums_and_outer_product_mean_match_torch():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 2, 4, 4, 3), dtype=np.float32)
    results = _both(_triangle_products, a, b)
    _assert_close(results)
    # the incoming contraction is the outgoing one on the transposed pair tensor
    np.testing.assert_allclose(results[1][0], results[1][1], rtol=1e-6, atol=1e-6)


def _reversible_grads(lib, x, w_f, w_g):
    """A RevNet block through a Function that keeps only its output and rebuilds its input in
    backward, with dropout replayed from the RNG state recorded in forward."""
    w_f, w_g = w_f.requires_grad_(), w_g.requires_grad_()
    states = {}

    def f(h, name, weight, replay=False):
        if not replay:
            states[name] = lib.get_rng_state()
            return lib.nn.functional.dropout(lib.tanh(h @ weight), 0.25)
        with lib.random.fork_rng(devices=[]):
            lib.set_rng_state(states[name])
            return lib.nn.functional.dropout(lib.tanh(h @ weight), 0.25)

    class Reversible(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x1, x2 = lib.chunk(x, 2, dim=1)
            with lib.no_grad():
                y1 = x1 + f(x2, "f", w_f)
                y2 = x2 + f(y1, "g", w_g)
            y = lib.cat([y1, y2], dim=1)
            ctx.save_for_backward(y.detach())
            return y

        @staticmethod
        def backward(ctx, dy):
            y, = ctx.saved_tensors
            y1, y2 = lib.chunk(y, 2, dim=1)
            dy1, dy2 = lib.chunk(dy, 2, dim=1)
            with lib.enable_grad():
                y1.requires_grad = True
                gy1 = f(y1, "g", w_g, replay=True)
                lib.autograd.backward(gy1, dy2)
            with lib.no_grad():
                x2 = y2 - gy1
                dx1 = dy1 + y1.grad
            with lib.enable_grad():
                x2.requires_grad_()
                fx2 = f(x2, "f", w_f, replay=True)
                lib.autograd.backward(fx2, dx1, retain_graph=True)
            with lib.no_grad():
                ctx.rebuilt = lib.cat([y1 - fx2, x2.detach()], dim=1)
                return lib.cat([dx1, dy2 + x2.grad], dim=1)

    lib.manual_seed(7)
    x_rev = x.clone().requires_grad_()
    (Reversible.apply(x_rev) ** 2).sum().backward()
    rev = [x_rev.grad.numpy(), w_f.grad.numpy().copy(), w_g.grad.numpy().copy()]
    w_f.grad = w_g.grad = None
    lib.manual_seed(7)
    x_plain = x.clone().requires_grad_()
    x1, x2 = lib.chunk(x_plain, 2, dim=1)
    y1 = x1 + f(x2, "f", w_f)
    y2 = x2 + f(y1, "g", w_g)
    (lib.cat([y1, y2], dim=1) ** 2).sum().backward()
    plain = [x_plain.grad.numpy(), w_f.grad.numpy(), w_g.grad.numpy()]
    return rev + plain


def test_reversible_function_rebuilding_its_input_in_backward_matches_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6), dtype=np.float32)
    w_f, w_g = rng.standard_normal((2, 3, 3), dtype=np.float32)
    results = _both(_reversible_grads, x, w_f, w_g)
    _assert_close(results, rtol=1e-5, atol=1e-5)
    # the reversible gradients are the stored-activation ones: dropout replayed the same masks
    for rev, plain in zip(results[1][:3], results[1][3:]):
        np.testing.assert_allclose(rev, plain, rtol=1e-5, atol=1e-6)


def _ddsp_pieces(lib, signal, kernel, magnitudes, f0):
    F = lib.nn.functional
    signal.requires_grad_()
    magnitudes.requires_grad_()
    # frequency sampling of a filter: irfft of the magnitudes, centred, windowed, padded, uncentred
    amp = lib.fft.irfft(lib.view_as_complex(lib.stack([magnitudes, lib.zeros_like(magnitudes)], -1)))
    size = amp.shape[-1]
    amp = lib.roll(amp, size // 2, -1) * lib.hann_window(size, dtype=lib.float64).to(amp)
    impulse = lib.roll(F.pad(amp, (0, 64 - size)), -size // 2, -1)
    padded, kernel_padded = F.pad(signal, (0, 64)), F.pad(impulse, (64, 0))
    convolved = lib.fft.irfft(lib.fft.rfft(padded) * lib.fft.rfft(kernel_padded))[..., 64:]
    direct = F.conv1d(F.pad(signal.unsqueeze(1), (8, 0)), kernel.flip(-1).view(1, 1, -1)).squeeze(1)
    by_fft = lib.fft.irfft(lib.fft.rfft(F.pad(signal, (0, 64))) * lib.fft.rfft(F.pad(F.pad(kernel, (0, 55)), (64, 0))))
    # harmonic phases from linearly upsampled frames
    pitch = F.interpolate(f0.permute(0, 2, 1), size=f0.shape[1] * 8, mode="linear").permute(0, 2, 1)
    omega = lib.cumsum(2 * math.pi * pitch / 8000, 1) * lib.arange(1, 5).to(pitch)
    spectrum = lib.stft(convolved, 16, 4, 16, lib.hann_window(16, dtype=lib.float64).to(convolved), True,
                        normalized=True, return_complex=True).abs()
    loss = spectrum.mean() + (lib.sin(omega) * (pitch * lib.arange(1, 5).to(pitch) < 4000).float()).sum()
    g_signal, g_mag = lib.autograd.grad(loss, (signal, magnitudes))
    return [convolved.detach().numpy(), by_fft[..., 64:].detach().numpy(), direct.detach().numpy(),
            spectrum.detach().numpy(), g_signal.numpy(), g_mag.numpy()]


def test_ddsp_filtered_noise_fft_convolution_and_stft_loss_match_torch():
    rng = np.random.default_rng(2)
    signal = rng.standard_normal((3, 64), dtype=np.float32)
    kernel = rng.standard_normal(9, dtype=np.float32)
    magnitudes = rng.uniform(0.1, 1.0, (3, 9)).astype(np.float32)
    f0 = rng.uniform(100, 900, (3, 6, 1)).astype(np.float32)
    results = _both(_ddsp_pieces, signal, kernel, magnitudes, f0)
    _assert_close(results, rtol=1e-4, atol=1e-5)
    # FFT convolution is the causal direct convolution with the flipped kernel
    np.testing.assert_allclose(results[1][1], results[1][2], rtol=1e-4, atol=1e-5)


def _graph(fn_out):
    """Node names of a graph, depth first from its output (revnet's GroupNorm walked by a user)."""
    names, stack, seen = [], [fn_out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def _group_norm_case(lib, x, w, b, channels_last):
    if channels_last:
        x = x.contiguous(memory_format=lib.channels_last)
    x, w, b = x.requires_grad_(), w.requires_grad_(), b.requires_grad_()
    out = lib.nn.functional.group_norm(x, 2, w, b)
    weights = lib.from_numpy(np.linspace(-1, 2, out.numel(), dtype=np.float32).reshape(tuple(out.shape)))
    grads = lib.autograd.grad((out ** 2 * weights).sum(), (x, w, b), create_graph=True)
    second = lib.autograd.grad(sum((g ** 2).sum() for g in grads), (x, w, b))
    return [out.detach().numpy(), np.asarray(out.stride()), *(g.detach().numpy() for g in grads),
            *(g.numpy() for g in second)]


@pytest.mark.parametrize("channels_last", [False, True])
def test_group_norm_with_affine_is_one_node_of_input_weight_and_bias_as_torch(channels_last):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 2, 3), dtype=np.float32)
    w, b = rng.standard_normal((2, 4), dtype=np.float32)
    _assert_close(_both(lambda lib, *t: _group_norm_case(lib, *t, channels_last), x, w, b), rtol=1e-4, atol=1e-5)
    graphs = [_graph(lib.nn.functional.group_norm(lib.from_numpy(x).requires_grad_(), 2,
                                                  lib.from_numpy(w).requires_grad_(),
                                                  lib.from_numpy(b).requires_grad_()))
              for lib in (torch, chainrule)]
    assert graphs[1] == graphs[0] == ["NativeGroupNormBackward0"] + ["AccumulateGrad"] * 3
