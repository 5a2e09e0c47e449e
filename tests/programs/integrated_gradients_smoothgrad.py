"""Gradient attribution methods as captum's algorithms compute them, written by hand: Integrated
Gradients (Sundararajan et al.) with ``torch.linspace(0, 1, steps)`` alphas, the scaled inputs
batched as one ``baseline + alphas.view(-1, 1) * (x - baseline)``, gradients by
``torch.autograd.grad(outputs.sum(), inputs)``, Riemann left/right/middle sums and
``torch.trapezoid``, the completeness check (attributions summing to ``f(x) - f(baseline)``) in
float32 and float64 (``model.double()``); SmoothGrad with ``torch.randn_like`` noise scaled by the
input's range, NoiseTunnel's ``smoothgrad_sq`` and ``vargrad``; input x gradient; GradientSHAP with
random baselines and ``torch.rand`` alphas; occlusion by ``F.unfold`` of the image into sliding
windows, each window zeroed in a batched forward, and ``F.fold`` of the score drops divided by
``F.fold`` of the window counts, against a plain double loop over the windows.

Two models: an MLP on tabular data whose label depends on three of twelve features (the
attributions must put their mass there), and a small CNN on 12x12 images whose class is set by
a bright patch in one of four quadrants (occlusion and IG must find that quadrant).
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(11)

# ---- tabular: y = [x0 + 2 x1 - 1.5 x2 > 0] ----
N_FEATURES, INFORMATIVE = 12, 3
x_tab = torch.from_numpy(rng.randn(1024, N_FEATURES).astype(np.float32))
y_tab = (x_tab[:, 0] + 2 * x_tab[:, 1] - 1.5 * x_tab[:, 2] > 0).long()

mlp = nn.Sequential(nn.Linear(N_FEATURES, 32), nn.Tanh(), nn.Linear(32, 32), nn.Softplus(), nn.Linear(32, 2))
optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-2, weight_decay=1e-4)
for step in range(1, 301):
    index = torch.randint(0, 1024, (128,))
    loss = F.cross_entropy(mlp(x_tab[index]), y_tab[index])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"mlp step {step} loss {loss.item():.4f}")
with torch.no_grad():
    mlp_accuracy = (mlp(x_tab).argmax(1) == y_tab).float().mean().item()
print(f"mlp accuracy {mlp_accuracy:.3f}")


def integrated_gradients(forward_fn, inputs, baselines, target, n_steps=50, method="riemann_trapezoid"):
    """IG for a batch: all n_steps scaled copies of every input go through one forward pass."""
    if method == "riemann_trapezoid":
        alphas = torch.linspace(0, 1, n_steps, dtype=inputs.dtype)
    elif method == "riemann_left":
        alphas = torch.arange(n_steps, dtype=inputs.dtype) / n_steps
    elif method == "riemann_right":
        alphas = torch.arange(1, n_steps + 1, dtype=inputs.dtype) / n_steps
    else:  # riemann_middle
        alphas = (torch.arange(n_steps, dtype=inputs.dtype) + 0.5) / n_steps
    shape = (n_steps,) + (1,) * inputs.dim()
    scaled = baselines.unsqueeze(0) + alphas.view(shape) * (inputs - baselines).unsqueeze(0)
    scaled = scaled.reshape(-1, *inputs.shape[1:]).requires_grad_(True)
    outputs = forward_fn(scaled)
    selected = outputs.gather(1, target.repeat(n_steps).unsqueeze(1))
    (grads,) = torch.autograd.grad(selected.sum(), scaled)
    grads = grads.view(n_steps, *inputs.shape)
    if method == "riemann_trapezoid":
        avg_grads = torch.trapezoid(grads, x=alphas, dim=0)
    else:
        avg_grads = grads.mean(dim=0)
    return (inputs - baselines) * avg_grads


def convergence_delta(forward_fn, attributions, inputs, baselines, target):
    with torch.no_grad():
        start = forward_fn(baselines).gather(1, target[:, None]).squeeze(1)
        end = forward_fn(inputs).gather(1, target[:, None]).squeeze(1)
    return attributions.flatten(1).sum(1) - (end - start)


inputs = x_tab[:64]
target = y_tab[:64]
baselines = torch.zeros_like(inputs)
print("method        mean |delta|")
deltas = {}
for method, steps in (("riemann_left", 32), ("riemann_right", 32), ("riemann_middle", 32),
                      ("riemann_trapezoid", 32), ("riemann_trapezoid", 128)):
    attributions = integrated_gradients(mlp, inputs, baselines, target, steps, method)
    delta = convergence_delta(mlp, attributions, inputs, baselines, target).abs().mean().item()
    deltas[(method, steps)] = delta
    print(f"{method:18s} {steps:4d} {delta:.2e}")
print("middle/trapezoid beat left and right:",
      max(deltas[("riemann_middle", 32)], deltas[("riemann_trapezoid", 32)])
      < min(deltas[("riemann_left", 32)], deltas[("riemann_right", 32)]))

mlp64 = mlp.double()
ig64 = integrated_gradients(mlp64, inputs.double(), baselines.double(), target, 256)
delta64 = convergence_delta(mlp64, ig64, inputs.double(), baselines.double(), target).abs().max().item()
print(f"float64 trapezoid, 256 steps: max |delta| {delta64:.1e}")
mlp.float()

ig = integrated_gradients(mlp, inputs, baselines, target, 64)
ig_share = (ig.abs()[:, :INFORMATIVE].sum() / ig.abs().sum()).item()
ranking = ig.abs().mean(0).argsort(descending=True)[:INFORMATIVE].sort().values
print("top features by mean |IG|:", ranking.tolist(), f"share on the informative ones {ig_share:.3f}")


def input_x_gradient(forward_fn, inputs, target):
    inputs = inputs.clone().requires_grad_()
    forward_fn(inputs).gather(1, target[:, None]).sum().backward()
    return inputs * inputs.grad


def noise_tunnel(forward_fn, inputs, target, nt_type="smoothgrad", nt_samples=25, stdevs=0.15):
    """SmoothGrad and its variants: gradients of noisy copies, averaged (or squared, or the variance)."""
    sigma = stdevs * (inputs.amax(dim=tuple(range(1, inputs.dim())), keepdim=True)
                      - inputs.amin(dim=tuple(range(1, inputs.dim())), keepdim=True))
    grads = []
    for _ in range(nt_samples):
        noisy = (inputs + torch.randn_like(inputs) * sigma).requires_grad_(True)
        score = forward_fn(noisy).gather(1, target[:, None]).sum()
        grads.append(torch.autograd.grad(score, noisy)[0])
    grads = torch.stack(grads)
    if nt_type == "smoothgrad":
        return grads.mean(0)
    if nt_type == "smoothgrad_sq":
        return (grads ** 2).mean(0)
    return grads.var(0, unbiased=False)  # vargrad


def gradient_shap(forward_fn, inputs, baseline_dist, target, n_samples=20, stdevs=0.09):
    """Expected gradients: random baselines from a distribution, random points on the path."""
    total = torch.zeros_like(inputs)
    for _ in range(n_samples):
        idx = torch.randint(0, baseline_dist.size(0), (inputs.size(0),))
        base = baseline_dist[idx]
        alpha = torch.rand(inputs.size(0), *([1] * (inputs.dim() - 1)))
        point = (base + alpha * (inputs + stdevs * torch.randn_like(inputs) - base)).requires_grad_()
        (grad,) = torch.autograd.grad(forward_fn(point).gather(1, target[:, None]).sum(), point)
        total += grad * (inputs - base)
    return total / n_samples


def share(attr):
    attr = attr.abs()
    return (attr[:, :INFORMATIVE].sum() / attr.sum()).item()


shares = {
    "input_x_gradient": share(input_x_gradient(mlp, inputs, target)),
    "smoothgrad": share(noise_tunnel(mlp, inputs, target, "smoothgrad")),
    "smoothgrad_sq": share(noise_tunnel(mlp, inputs, target, "smoothgrad_sq")),
    "vargrad": share(noise_tunnel(mlp, inputs, target, "vargrad")),
    "gradient_shap": share(gradient_shap(mlp, inputs, x_tab[512:], target)),
}
for name, value in shares.items():
    print(f"{name:16s} share on the informative features {value:.3f}")

# ---- images: the class is the quadrant of a bright 3x3 patch ----
SIDE = 12


def make_images(n):
    images = 0.3 * rng.rand(n, 1, SIDE, SIDE).astype(np.float32)
    labels = rng.randint(0, 4, size=n)
    centres = np.zeros((n, 2), dtype=np.int64)
    for i, label in enumerate(labels):
        row = rng.randint(1, SIDE // 2 - 1) + (SIDE // 2) * (label // 2)
        col = rng.randint(1, SIDE // 2 - 1) + (SIDE // 2) * (label % 2)
        images[i, 0, row - 1:row + 2, col - 1:col + 2] += 1.0
        centres[i] = (row, col)
    return torch.from_numpy(images), torch.from_numpy(labels), torch.from_numpy(centres)


x_img, y_img, _ = make_images(512)
x_val, y_val, centres = make_images(32)
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 6 * 6, 4))
optimizer = torch.optim.Adam(cnn.parameters(), lr=3e-3)
for epoch in range(1, 5):
    for index in torch.randperm(512).split(64):
        loss = F.cross_entropy(cnn(x_img[index]), y_img[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"cnn epoch {epoch} loss {loss.item():.4f}")
cnn.eval()
with torch.no_grad():
    cnn_accuracy = (cnn(x_val).argmax(1) == y_val).float().mean().item()
print(f"cnn accuracy {cnn_accuracy:.3f}")


def occlusion(forward_fn, images, target, window=3, stride=1, fill=0.0):
    """Score drop when each window is replaced by ``fill``, averaged over the windows covering a pixel."""
    n, c, h, w = images.shape
    with torch.no_grad():
        base = forward_fn(images).gather(1, target[:, None])
        ones = torch.ones(1, c * window * window, 1)
        patches = F.unfold(images, window, stride=stride)  # (n, c*k*k, L)
        n_windows = patches.size(-1)
        # one mask per window: column l of window l's unfolded form set, folded back to an image
        windows = torch.eye(n_windows).unsqueeze(1).expand(n_windows, c * window * window, n_windows)
        masks = F.fold(windows, (h, w), window, stride=stride)  # (L, c, h, w)
        occluded = images.unsqueeze(1) * (1 - masks) + fill * masks  # (n, L, c, h, w)
        scores = forward_fn(occluded.view(-1, c, h, w)).view(n, n_windows, -1)
        drop = base - scores.gather(2, target.view(n, 1, 1).expand(n, n_windows, 1)).squeeze(2)
        summed = F.fold((drop.unsqueeze(1) * ones), (h, w), window, stride=stride)
        counts = F.fold(ones.expand(1, -1, n_windows), (h, w), window, stride=stride)
    return summed / counts


def occlusion_loop(forward_fn, images, target, window=3, fill=0.0):
    n, c, h, w = images.shape
    total = torch.zeros_like(images)
    counts = torch.zeros(1, 1, h, w)
    with torch.no_grad():
        base = forward_fn(images).gather(1, target[:, None]).squeeze(1)
        for top in range(h - window + 1):
            for left in range(w - window + 1):
                occluded = images.clone()
                occluded[:, :, top:top + window, left:left + window] = fill
                drop = base - forward_fn(occluded).gather(1, target[:, None]).squeeze(1)
                total[:, :, top:top + window, left:left + window] += drop.view(n, 1, 1, 1)
                counts[:, :, top:top + window, left:left + window] += 1
    return total / counts


sample, sample_target = x_val[:8], y_val[:8]
occ = occlusion(cnn, sample, sample_target)
occ_loop = occlusion_loop(cnn, sample, sample_target)
print("occlusion maps", tuple(occ.shape), "unfold/fold equals the loop:", torch.allclose(occ, occ_loop, atol=1e-5))


def hit_rate(attr_maps, centres, radius=2):
    peak = attr_maps.flatten(1).argmax(1)
    rows, cols = peak // SIDE, peak % SIDE
    return ((rows - centres[:, 0]).abs().le(radius) & (cols - centres[:, 1]).abs().le(radius)).float().mean().item()


occ_all = occlusion(cnn, x_val, y_val)
ig_img = integrated_gradients(cnn, x_val, torch.zeros_like(x_val), y_val, 32)
img_delta = convergence_delta(cnn, ig_img, x_val, torch.zeros_like(x_val), y_val).abs().mean().item()
sg_img = noise_tunnel(cnn, x_val, y_val, "smoothgrad_sq", nt_samples=10)
occ_hit, ig_hit, sg_hit = hit_rate(occ_all, centres), hit_rate(ig_img.abs(), centres), hit_rate(sg_img, centres)
print(f"peak on the patch: occlusion {occ_hit:.3f} IG {ig_hit:.3f} SmoothGrad^2 {sg_hit:.3f}; "
      f"image IG mean |delta| below 0.05: {img_delta < 0.05}")

print(f"FINAL mlp_accuracy={mlp_accuracy:.4f} ig_share={ig_share:.4f} smoothgrad_share={shares['smoothgrad']:.4f} "
      f"shap_share={shares['gradient_shap']:.4f} ig_delta={deltas[('riemann_trapezoid', 128)]:.6f} "
      f"cnn_accuracy={cnn_accuracy:.4f} occ_hit={occ_hit:.4f} ig_hit={ig_hit:.4f}")
