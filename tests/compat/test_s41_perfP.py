"""Speed fixes found by profiling the program corpus (session 41, lane perfP): what each must keep
true, against torch.

Importing chainrule runs one float64 product to fault in NumPy's OpenBLAS scratch buffer (small
products ran several times slower before a larger one had touched it): the products' values must
not depend on it, and a beta-VAE's layers must still give torch's values and gradients.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# beta_vae_tc's encoder and decoder at its batch of 128: (in_features, out_features)
_VAE_LAYERS = [(256, 256), (256, 128), (128, 8), (4, 128), (128, 256), (256, 256)]

# every product of those layers' forward and backward, in float32 and float64, hashed: the
# digest a fresh interpreter prints with and without chainrule imported first
_PRODUCTS_DIGEST = """
import hashlib, sys
import numpy as np
if sys.argv[1] == "chainrule":
    import chainrule  # noqa: F401
digest = hashlib.sha256()
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    for fan_in, fan_out in {layers}:
        x = rng.standard_normal((128, fan_in)).astype(dtype)
        w = rng.standard_normal((fan_out, fan_in)).astype(dtype)
        g = rng.standard_normal((128, fan_out)).astype(dtype)
        for product in (x @ w.T, g @ w, g.T @ x):
            digest.update(product.tobytes())
print(digest.hexdigest())
"""


def _digest(first_import: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    script = _PRODUCTS_DIGEST.format(layers=_VAE_LAYERS)
    done = subprocess.run([sys.executable, "-c", script, first_import], capture_output=True, text=True, env=env,
                          check=True)
    return done.stdout.strip()


def test_blas_scratch_fault_in_changes_no_product():
    # the same products, bit for bit, whether or not chainrule's import ran its product first
    with_chainrule = _digest("chainrule")
    assert len(with_chainrule) == 64
    assert with_chainrule == _digest("numpy")


def test_blas_scratch_fault_in_leaves_numpy_state():
    # the import's product draws no random numbers and leaves NumPy's error handling as it was
    script = ("import numpy as np\nnp.random.seed(3)\nstate = np.geterr()\nimport chainrule\n"
              "print(np.random.rand(), np.geterr() == state)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    np.random.seed(3)
    assert done.stdout.split() == [repr(float(np.random.rand())), "True"]


def _vae_step(lib, params, x):
    """beta_vae_tc's encoder and decoder (ReLU between the layers), the loss its Bernoulli
    likelihood gives, and the gradients of every weight and bias."""
    weights = [lib.tensor(w, requires_grad=True) for w, _ in params]
    biases = [lib.tensor(b, requires_grad=True) for _, b in params]
    h = lib.tensor(x)
    for i in range(3):
        h = lib.nn.functional.linear(h, weights[i], biases[i])
        if i < 2:
            h = lib.relu(h)
    mu = h[:, :4]
    z = mu
    for i in range(3, 6):
        z = lib.nn.functional.linear(z, weights[i], biases[i])
        if i < 5:
            z = lib.relu(z)
    loss = lib.nn.functional.binary_cross_entropy_with_logits(z, lib.tensor(x), reduction="sum") / 128
    loss.backward()
    return loss, h, z, weights, biases


def test_vae_layers_match_torch():
    rng = np.random.default_rng(1)
    params = [((rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(np.float32),
               (rng.standard_normal(fan_out) * 0.1).astype(np.float32)) for fan_in, fan_out in _VAE_LAYERS]
    x = (rng.random((128, 256)) < 0.2).astype(np.float32)
    ours = _vae_step(chainrule, params, x)
    theirs = _vae_step(torch, params, x)
    loss, h, z, weights, biases = ours
    t_loss, t_h, t_z, t_weights, t_biases = theirs
    assert h.grad_fn.name() == t_h.grad_fn.name() == "AddmmBackward0"
    assert z.grad_fn.name() == t_z.grad_fn.name()
    assert loss.dtype == chainrule.float32 and tuple(z.shape) == tuple(t_z.shape) == (128, 256)
    # the GEMMs are OpenBLAS's and MKL's: sums of 256 products in different orders
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-5)
    np.testing.assert_allclose(h.detach().numpy(), t_h.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(z.detach().numpy(), t_z.detach().numpy(), rtol=1e-4, atol=1e-4)
    for ours_p, theirs_p in zip(weights + biases, t_weights + t_biases):
        assert ours_p.grad.dtype == chainrule.float32
        np.testing.assert_allclose(ours_p.grad.numpy(), theirs_p.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_products_digest_script_covers_every_layer():
    # the digest hashes 3 products per layer and dtype: a script that hashed nothing would pass
    # the equality test above vacuously
    assert hashlib.sha256().hexdigest() != _digest("numpy")


# draws of every size class the stream serves: scalar normals (below 16), Box–Muller blocks with
# and without a remainder, float64 and float32 uniforms, integers over spans below and above 2**28,
# and the get_rng_state bytes after them
_DRAWS = [
    lambda lib, g: lib.randn(10, generator=g),
    lambda lib, g: lib.randn(64, generator=g),
    lambda lib, g: lib.randn(84, generator=g),
    lambda lib, g: lib.randn(5, 7, dtype=lib.float64, generator=g),
    lambda lib, g: lib.rand(64, generator=g),
    lambda lib, g: lib.rand(3, dtype=lib.float64, generator=g),
    lambda lib, g: lib.randint(0, 10, (20,), generator=g),
    lambda lib, g: lib.randint(0, 2**40, (9,), generator=g),
    lambda lib, g: lib.empty(700).uniform_(-2.0, 3.0, generator=g),
    lambda lib, g: lib.randperm(30, generator=g),
]


def test_generator_words_match_torch_stream():
    ours, theirs = chainrule.Generator().manual_seed(41), torch.Generator().manual_seed(41)
    for draw in _DRAWS:
        value, expected = draw(chainrule, ours), draw(torch, theirs)
        assert value.dtype.itemsize == expected.dtype.itemsize and tuple(value.shape) == tuple(expected.shape)
        assert value.numpy().tobytes() == expected.numpy().tobytes()
    assert ours.get_state().numpy().tobytes() == theirs.get_state().numpy().tobytes()


def test_dropout_and_noise_after_seed_match_torch():
    # c51_rainbow's noisy layer after manual_seed: its draws bit for bit, sign(x)·sqrt|x| and the
    # outer product to an ulp (torch's vectorised float32 sqrt is not correctly rounded in every
    # lane: 2 of these 10 values are an ulp off NumPy's), then a dropout mask from the same stream
    results = []
    for lib in (chainrule, torch):
        lib.manual_seed(7)
        x_in, x_out = lib.randn(10), lib.randn(84)
        draws = x_in.numpy().tobytes() + x_out.numpy().tobytes()
        scaled_in, scaled_out = (x.sign().mul_(x.abs().sqrt_()) for x in (x_in, x_out))
        dropped = lib.nn.functional.dropout(lib.ones(64, 64), 0.25)
        results.append((draws, scaled_out.ger(scaled_in).numpy(), dropped.numpy().tobytes()))
    (draws, noise, mask), (t_draws, t_noise, t_mask) = results
    assert draws == t_draws and mask == t_mask
    assert noise.dtype == t_noise.dtype and noise.shape == t_noise.shape == (84, 10)
    np.testing.assert_allclose(noise, t_noise, rtol=3e-7, atol=0)


@pytest.mark.parametrize("weight", [0.3, 1 - 0.999, 0.5, 0.75, -0.6, 2, 1e-7])
def test_foreach_lerp_under_no_grad_matches_torch(weight):
    # consistency_model_toy's target update: fused multiply-adds written into the arrays under
    # no_grad, bit for bit torch's, with the version counters bumped once, as torch's in-place op
    rng = np.random.default_rng(5)
    shapes = [(128, 34), (128,), (128, 128), (2, 128), (2,)]
    starts = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ends = [rng.standard_normal(s).astype(np.float32) * 3 for s in shapes]
    results = {}
    for lib in (chainrule, torch):
        targets = [lib.tensor(a, requires_grad=True) for a in starts]
        online = [lib.tensor(b) for b in ends]
        with lib.no_grad():
            returned = lib._foreach_lerp_(targets, online, weight)
        assert returned is None or returned is targets
        assert [t._version for t in targets] == [1] * len(shapes)
        assert all(t.requires_grad and t.grad_fn is None and t.dtype == lib.float32 for t in targets)
        results[lib] = [t.detach().numpy().tobytes() for t in targets]
    assert results[chainrule] == results[torch]


def test_foreach_lerp_other_cases_keep_per_tensor_path():
    # grad mode on a leaf that requires grad: torch's refusal, nothing written
    targets = [chainrule.ones(3, requires_grad=True)]
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        chainrule._foreach_lerp_(targets, [chainrule.zeros(3)], 0.5)
    assert targets[0].detach().numpy().tolist() == [1.0, 1.0, 1.0]
    # float64, a broadcasting end and a list of weights give torch's values
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    for make in (lambda lib: ([lib.tensor(a)], [lib.tensor(a[::-1].copy())], 0.25),
                 lambda lib: ([lib.tensor(a.astype(np.float32))], [lib.tensor(b.astype(np.float32))], 0.7),
                 lambda lib: ([lib.tensor(a.astype(np.float32))], [lib.tensor(a[::-1].astype(np.float32))], [0.9])):
        ours, theirs = make(chainrule), make(torch)
        with chainrule.no_grad():
            chainrule._foreach_lerp_(*ours)
        with torch.no_grad():
            torch._foreach_lerp_(*theirs)
        assert ours[0][0].numpy().tobytes() == theirs[0][0].numpy().tobytes()


def test_foreach_lerp_refuses_inference_tensor_before_writing():
    # torch's error; chainrule raises before the write (torch's foreach kernel writes, then its
    # version bump raises), as its per-tensor lerp_ did
    targets = {}
    for lib in (chainrule, torch):
        with lib.inference_mode():
            targets[lib] = lib.ones(3)
        with lib.no_grad(), pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
            lib._foreach_lerp_([targets[lib]], [lib.zeros(3)], 0.5)
    assert targets[chainrule].numpy().tolist() == [1.0, 1.0, 1.0]
