"""SIREN, as vsitzmann/siren's explore_siren notebook writes it, on a small synthetic "cameraman".

``get_mgrid`` by ``torch.linspace`` + ``torch.meshgrid`` (no ``indexing``: torch's warning) +
``torch.stack(..., dim=-1).reshape(-1, dim)``; ``SineLayer`` with ``omega_0=30`` and its uniform init under
``torch.no_grad()`` (``-1 / in_features`` for the first layer, ``np.sqrt(6 / in_features) / omega_0`` after);
``Siren.forward`` making ``coords.clone().detach().requires_grad_(True)`` a leaf; ``forward_with_activations``
with ``retain_grad()`` on intermediates keyed by ``str(layer.__class__)``; ``gradient(y, x)`` by
``torch.autograd.grad(y, [x], grad_outputs=torch.ones_like(y), create_graph=True)``, ``divergence`` and
``laplace`` by looping ``autograd.grad`` over dimensions; the ``ImageFitting`` ``Dataset`` read by
``next(iter(DataLoader(..., batch_size=1, pin_memory=True)))`` with ``img.permute(1, 2, 0).view(-1, 1)``;
fitting the image (``((model_output - ground_truth)**2).mean()``, ``"Step %d, Total loss %0.6f"``); then the
Poisson problem: ``PoissonEqn`` with Sobel gradients and a Laplacian made as scipy.ndimage makes them
(written here in NumPy), ``torch.stack((grads_x, grads_y), dim=-1).view(-1, 2)``, a dict of ground truths,
``gradients_mse`` on the network's input gradients. For comparison a ReLU MLP on Fourier positional
encodings (``torch.cat`` of ``sin``/``cos`` at powers of two), and a plain ReLU MLP, whose Laplacian by
double backward is exactly zero: the paper's case for the sine.
"""

import math
import os
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def get_mgrid(sidelen, dim=2):
    '''Generates a flattened grid of (x,y,...) coordinates in a range of -1 to 1.
    sidelen: int
    dim: int'''
    tensors = tuple(dim * [torch.linspace(-1, 1, steps=sidelen)])
    mgrid = torch.stack(torch.meshgrid(*tensors), dim=-1)
    mgrid = mgrid.reshape(-1, dim)
    return mgrid


class SineLayer(nn.Module):
    # See paper sec. 3.2, final paragraph, and supplement Sec. 1.5 for discussion of omega_0.

    # If is_first=True, omega_0 is a frequency factor which simply multiplies the activations before the
    # nonlinearity. Different signals may require different omega_0 in the first layer - this is a
    # hyperparameter.

    # If is_first=False, then the weights will be divided by omega_0 so as to keep the magnitude of
    # activations constant, but boost gradients to the weight matrix (see supplement Sec. 1.5)

    def __init__(self, in_features, out_features, bias=True,
                 is_first=False, omega_0=30):
        super().__init__()
        self.omega_0 = omega_0
        self.is_first = is_first

        self.in_features = in_features
        self.linear = nn.Linear(in_features, out_features, bias=bias)

        self.init_weights()

    def init_weights(self):
        with torch.no_grad():
            if self.is_first:
                self.linear.weight.uniform_(-1 / self.in_features,
                                            1 / self.in_features)
            else:
                self.linear.weight.uniform_(-np.sqrt(6 / self.in_features) / self.omega_0,
                                            np.sqrt(6 / self.in_features) / self.omega_0)

    def forward(self, input):
        return torch.sin(self.omega_0 * self.linear(input))

    def forward_with_intermediate(self, input):
        # For visualization of activation distributions
        intermediate = self.omega_0 * self.linear(input)
        return torch.sin(intermediate), intermediate


class Siren(nn.Module):
    def __init__(self, in_features, hidden_features, hidden_layers, out_features, outermost_linear=False,
                 first_omega_0=30, hidden_omega_0=30.):
        super().__init__()

        self.net = []
        self.net.append(SineLayer(in_features, hidden_features,
                                  is_first=True, omega_0=first_omega_0))

        for i in range(hidden_layers):  # noqa: B007  (the notebook's loop)
            self.net.append(SineLayer(hidden_features, hidden_features,
                                      is_first=False, omega_0=hidden_omega_0))

        if outermost_linear:
            final_linear = nn.Linear(hidden_features, out_features)

            with torch.no_grad():
                final_linear.weight.uniform_(-np.sqrt(6 / hidden_features) / hidden_omega_0,
                                             np.sqrt(6 / hidden_features) / hidden_omega_0)

            self.net.append(final_linear)
        else:
            self.net.append(SineLayer(hidden_features, out_features,
                                      is_first=False, omega_0=hidden_omega_0))

        self.net = nn.Sequential(*self.net)

    def forward(self, coords):
        coords = coords.clone().detach().requires_grad_(True)  # allows to take derivative w.r.t. input
        output = self.net(coords)
        return output, coords

    def forward_with_activations(self, coords, retain_grad=False):
        '''Returns not only model output, but also intermediate activations.
        Only used for visualizing activations later!'''
        activations = OrderedDict()

        activation_count = 0
        x = coords.clone().detach().requires_grad_(True)
        activations['input'] = x
        for i, layer in enumerate(self.net):  # noqa: B007
            if isinstance(layer, SineLayer):
                x, intermed = layer.forward_with_intermediate(x)

                if retain_grad:
                    x.retain_grad()
                    intermed.retain_grad()

                activations['_'.join((str(layer.__class__), "%d" % activation_count))] = intermed  # noqa: UP031
                activation_count += 1
            else:
                x = layer(x)

                if retain_grad:
                    x.retain_grad()

            activations['_'.join((str(layer.__class__), "%d" % activation_count))] = x  # noqa: UP031
            activation_count += 1

        return activations


def laplace(y, x):
    grad = gradient(y, x)
    return divergence(grad, x)


def divergence(y, x):
    div = 0.
    for i in range(y.shape[-1]):
        div += torch.autograd.grad(y[..., i], x, torch.ones_like(y[..., i]), create_graph=True)[0][..., i:i + 1]
    return div


def gradient(y, x, grad_outputs=None):
    if grad_outputs is None:
        grad_outputs = torch.ones_like(y)
    grad = torch.autograd.grad(y, [x], grad_outputs=grad_outputs, create_graph=True)[0]
    return grad


# ----------------------------------------------------------------- the image, and scipy.ndimage's filters in NumPy
SIDE = 32


def synthetic_cameraman(sidelength):
    """A smooth background, a few Gaussian blobs and a disk with a soft edge, in [0, 1]: (1, H, W)."""
    u = np.linspace(-1, 1, sidelength)
    yy, xx = np.meshgrid(u, u, indexing="ij")
    img = 0.3 + 0.2 * np.sin(2.0 * xx + 1.0) * np.cos(1.5 * yy)
    for cx, cy, s, a in rng.uniform([-0.7, -0.7, 0.15, -0.3], [0.7, 0.7, 0.35, 0.4], size=(3, 4)):
        img += a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s ** 2))
    img += 0.25 / (1 + np.exp(-(0.45 - np.sqrt((xx - 0.2) ** 2 + (yy + 0.3) ** 2)) / 0.04))
    return np.clip(img, 0, 1)[None].astype(np.float32)


def _correlate1d(a, weights, axis):
    # scipy.ndimage's default mode='reflect' is NumPy's 'symmetric' (the edge sample repeated)
    pad = [(0, 0)] * a.ndim
    pad[axis] = (1, 1)
    padded = np.pad(a, pad, mode="symmetric")
    n = a.shape[axis]
    return sum(w * np.take(padded, np.arange(k, k + n), axis=axis) for k, w in enumerate(weights))


def sobel(a, axis):
    out = _correlate1d(a, [-1, 0, 1], axis)
    for other in range(a.ndim):
        if other != axis:
            out = _correlate1d(out, [1, 2, 1], other)
    return out


def ndimage_laplace(a):
    return sum(_correlate1d(a, [1, -2, 1], axis) for axis in range(a.ndim))


def get_cameraman_tensor(sidelength):
    img = torch.from_numpy(synthetic_cameraman(sidelength))
    return (img - 0.5) / 0.5  # Normalize(torch.Tensor([0.5]), torch.Tensor([0.5]))


class ImageFitting(Dataset):
    def __init__(self, sidelength):
        super().__init__()
        img = get_cameraman_tensor(sidelength)
        self.pixels = img.permute(1, 2, 0).view(-1, 1)
        self.coords = get_mgrid(sidelength, 2)

    def __len__(self):
        return 1

    def __getitem__(self, idx):
        if idx > 0:
            raise IndexError

        return self.coords, self.pixels


class PoissonEqn(Dataset):
    def __init__(self, sidelength):
        super().__init__()
        img = get_cameraman_tensor(sidelength)

        # Compute gradient and laplacian
        grads_x = sobel(img.numpy(), axis=1).squeeze(0)[..., None]
        grads_y = sobel(img.numpy(), axis=2).squeeze(0)[..., None]
        grads_x, grads_y = torch.from_numpy(grads_x), torch.from_numpy(grads_y)

        self.grads = torch.stack((grads_x, grads_y), dim=-1).view(-1, 2)
        self.laplace = ndimage_laplace(img.numpy()).squeeze(0)[..., None]
        self.laplace = torch.from_numpy(self.laplace)

        self.pixels = img.permute(1, 2, 0).view(-1, 1)
        self.coords = get_mgrid(sidelength, 2)

    def __len__(self):
        return 1

    def __getitem__(self, idx):
        return self.coords, {'pixels': self.pixels, 'grads': self.grads, 'laplace': self.laplace}


def gradients_mse(model_output, coords, gt_gradients):
    # compute gradients on the model
    gradients = gradient(model_output, coords)
    # compare them with the ground-truth
    gradients_loss = torch.mean((gradients - gt_gradients).pow(2).sum(-1))
    return gradients_loss


# ----------------------------------------------------------------- fitting an image
cameraman = ImageFitting(SIDE)
dataloader = DataLoader(cameraman, batch_size=1, pin_memory=True, num_workers=0)

img_siren = Siren(in_features=2, out_features=1, hidden_features=64,
                  hidden_layers=2, outermost_linear=True)
first = img_siren.net[0].linear.weight
print(f"first layer weight in [{first.min().item():.4f}, {first.max().item():.4f}], "
      f"hidden bound {np.sqrt(6 / 64) / 30:.5f}")

total_steps = 120  # Since the whole image is our dataset, this just means 120 gradient descent steps.
steps_til_summary = 40

optim = torch.optim.Adam(lr=1e-4, params=img_siren.parameters())

model_input, ground_truth = next(iter(dataloader))
print(f"model_input {tuple(model_input.shape)}, ground_truth {tuple(ground_truth.shape)}")

for step in range(total_steps):
    model_output, coords = img_siren(model_input)
    loss = ((model_output - ground_truth)**2).mean()

    if not step % steps_til_summary:
        print("Step %d, Total loss %0.6f" % (step, loss))  # noqa: UP031
        img_grad = gradient(model_output, coords)
        img_laplacian = laplace(model_output, coords)
        print(f"  gradient {tuple(img_grad.shape)} norm {img_grad.norm(dim=-1).mean().item():.4f}, "
              f"laplacian {tuple(img_laplacian.shape)} mean |.| {img_laplacian.abs().mean().item():.4f}")

    optim.zero_grad()
    loss.backward()
    optim.step()

with torch.no_grad():
    siren_mse = ((img_siren.net(model_input) - ground_truth) ** 2).mean().item()
psnr = 10 * math.log10(4.0 / siren_mse)  # the image spans [-1, 1]
print(f"siren: mse {siren_mse:.6f}, psnr {psnr:.2f} dB")

# the Laplacian by divergence-of-gradient against the sum of second derivatives taken one by one
model_output, coords = img_siren(model_input[:, :64])
lap = laplace(model_output, coords)
g = gradient(model_output, coords)
d2x = torch.autograd.grad(g[..., 0], coords, torch.ones_like(g[..., 0]), retain_graph=True)[0][..., 0:1]
d2y = torch.autograd.grad(g[..., 1], coords, torch.ones_like(g[..., 1]))[0][..., 1:2]
lap_gap = (lap - (d2x + d2y)).abs().max().item() / lap.abs().max().item()
print(f"laplace {tuple(lap.shape)} against d2x + d2y: relative gap {lap_gap:.2e}")

activations = img_siren.forward_with_activations(model_input[:, :16], retain_grad=True)
names = list(activations)
print(f"{len(names)} activations: {names[0]}, {names[1]}, {names[-1]}")
out = activations[names[-1]]
out.sum().backward()
retained = [name for name in names[1:] if activations[name].grad is not None]
print(f"{len(retained)} of {len(names) - 1} intermediates retained a gradient; "
      f"input grad {tuple(activations['input'].grad.shape)}")
img_siren.zero_grad()

# ----------------------------------------------------------------- a ReLU MLP on positional encodings


class PosEncodingReLU(nn.Module):
    def __init__(self, num_frequencies=6, hidden=64):
        super().__init__()
        self.num_frequencies = num_frequencies
        self.net = nn.Sequential(nn.Linear(2 + 4 * num_frequencies, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 1))

    def forward(self, coords):
        coords = coords.clone().detach().requires_grad_(True)
        encoded = [coords]
        for i in range(self.num_frequencies):
            encoded.append(torch.sin((2 ** i) * np.pi * coords))
            encoded.append(torch.cos((2 ** i) * np.pi * coords))
        return self.net(torch.cat(encoded, dim=-1)), coords


plain_relu = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
coords = model_input.clone().detach().requires_grad_(True)
plain_out = plain_relu(coords)
plain_lap = laplace(plain_out, coords)
print(f"plain relu: laplacian {tuple(plain_lap.shape)}, all zero {bool((plain_lap == 0).all())}, "
      f"gradient norm {gradient(plain_out, coords).norm(dim=-1).mean().item():.4f}")

relu_pe = PosEncodingReLU()
optim = torch.optim.Adam(lr=1e-3, params=relu_pe.parameters())
for _ in range(total_steps):
    model_output, coords = relu_pe(model_input)
    loss = ((model_output - ground_truth)**2).mean()
    optim.zero_grad()
    loss.backward()
    optim.step()
model_output, coords = relu_pe(model_input)
relu_mse = ((model_output - ground_truth) ** 2).mean().item()
relu_lap = laplace(model_output, coords).abs().mean().item()
print(f"relu+PE: mse {relu_mse:.6f}, psnr {10 * math.log10(4.0 / relu_mse):.2f} dB, "
      f"mean |laplacian| {relu_lap:.4f}")

# ----------------------------------------------------------------- Poisson: fitting the image from its gradients
cameraman_poisson = PoissonEqn(SIDE)
dataloader = DataLoader(cameraman_poisson, batch_size=1, pin_memory=True, num_workers=0)

poisson_siren = Siren(in_features=2, out_features=1, hidden_features=64,
                      hidden_layers=2, outermost_linear=True)
optim = torch.optim.Adam(lr=1e-3, params=poisson_siren.parameters())

model_input, gt = next(iter(dataloader))
gt = {key: value for key, value in gt.items()}
print(f"gt: {', '.join(f'{k} {tuple(v.shape)}' for k, v in gt.items())}")

for step in range(total_steps):
    model_output, coords = poisson_siren(model_input)
    train_loss = gradients_mse(model_output, coords, gt['grads'])

    if not step % steps_til_summary:
        print("Step %d, Total loss %0.6f" % (step, train_loss))  # noqa: UP031

    optim.zero_grad()
    train_loss.backward()
    optim.step()

model_output, coords = poisson_siren(model_input)
poisson_grad_loss = gradients_mse(model_output, coords, gt['grads']).item()
# the reconstruction is known up to a constant (and the gradients' grid scale): compare after fitting both
with torch.no_grad():
    out = model_output.squeeze(-1) - model_output.mean()
    pix = gt['pixels'].view(-1) - gt['pixels'].mean()
    scale = (out * pix).sum() / (out * out).sum()
    corr = ((out * pix).sum() / (out.norm() * pix.norm())).item()
print(f"poisson: gradient loss {poisson_grad_loss:.4f}, correlation with the image {corr:.4f}, "
      f"scale {scale.item():.4f}")

print(f"FINAL siren_psnr={psnr:.3f} relu_pe_psnr={10 * math.log10(4.0 / relu_mse):.3f} relu_laplacian={relu_lap:.1f} "
      f"poisson_grad_loss={poisson_grad_loss:.4f} poisson_corr={corr:.4f} laplace_ok={float(lap_gap < 1e-4):.1f}")
