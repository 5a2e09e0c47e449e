"""Neural spline flows (Durkan, Bekasov, Murray and Papamakarios, 2019) on two moons.

``bayesiains/nflows``'s ``rational_quadratic.py`` as written, in a small coupling flow: bin
widths and heights by ``F.softmax`` with a minimum, knots by ``torch.cumsum`` +
``F.pad(cumwidths, pad=(1, 0), mode="constant", value=0.0)`` with the ends pinned by
``cumwidths[..., 0] = left``, derivatives by ``F.softplus``, linear tails by padding the
unnormalised derivatives and writing ``np.log(np.exp(1 - min_derivative) - 1)`` into both ends,
``searchsorted`` as ``bin_locations[..., -1] += eps`` then
``torch.sum(inputs[..., None] >= bin_locations, dim=-1) - 1``, ``gather(-1, bin_idx)[..., 0]``,
the closed-form forward and the inverse by the stable quadratic root ``(2 * c) / (-b -
torch.sqrt(discriminant))``, ``torch.log(derivative_numerator) - 2 * torch.log(denominator)``,
identity tails by boolean masks (``outputs[outside_interval_mask] = inputs[outside_interval_mask]``
and the tuple assignment ``(outputs[inside_interval_mask], logabsdet[inside_interval_mask]) =
...``). Four alternating coupling layers with MLP conditioners are trained by maximum likelihood
(Adam, standard-normal base) on two moons made with NumPy; printed: the invertibility error, the
test NLL against a fitted Gaussian's, and the moon structure of samples drawn through the inverse.
"""

import os

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3


def searchsorted(bin_locations, inputs, eps=1e-6):
    bin_locations[..., -1] += eps
    return torch.sum(inputs[..., None] >= bin_locations, dim=-1) - 1


def unconstrained_rational_quadratic_spline(
    inputs,
    unnormalized_widths,
    unnormalized_heights,
    unnormalized_derivatives,
    inverse=False,
    tails="linear",
    tail_bound=1.0,
    min_bin_width=DEFAULT_MIN_BIN_WIDTH,
    min_bin_height=DEFAULT_MIN_BIN_HEIGHT,
    min_derivative=DEFAULT_MIN_DERIVATIVE,
):
    inside_interval_mask = (inputs >= -tail_bound) & (inputs <= tail_bound)
    outside_interval_mask = ~inside_interval_mask

    outputs = torch.zeros_like(inputs)
    logabsdet = torch.zeros_like(inputs)

    if tails == "linear":
        unnormalized_derivatives = F.pad(unnormalized_derivatives, pad=(1, 1))
        constant = np.log(np.exp(1 - min_derivative) - 1)
        unnormalized_derivatives[..., 0] = constant
        unnormalized_derivatives[..., -1] = constant

        outputs[outside_interval_mask] = inputs[outside_interval_mask]
        logabsdet[outside_interval_mask] = 0
    else:
        raise RuntimeError("{} tails are not implemented.".format(tails))  # noqa: UP032  (nflows' spelling)

    if torch.any(inside_interval_mask):
        (
            outputs[inside_interval_mask],
            logabsdet[inside_interval_mask],
        ) = rational_quadratic_spline(
            inputs=inputs[inside_interval_mask],
            unnormalized_widths=unnormalized_widths[inside_interval_mask, :],
            unnormalized_heights=unnormalized_heights[inside_interval_mask, :],
            unnormalized_derivatives=unnormalized_derivatives[inside_interval_mask, :],
            inverse=inverse,
            left=-tail_bound,
            right=tail_bound,
            bottom=-tail_bound,
            top=tail_bound,
            min_bin_width=min_bin_width,
            min_bin_height=min_bin_height,
            min_derivative=min_derivative,
        )

    return outputs, logabsdet


def rational_quadratic_spline(
    inputs,
    unnormalized_widths,
    unnormalized_heights,
    unnormalized_derivatives,
    inverse=False,
    left=0.0,
    right=1.0,
    bottom=0.0,
    top=1.0,
    min_bin_width=DEFAULT_MIN_BIN_WIDTH,
    min_bin_height=DEFAULT_MIN_BIN_HEIGHT,
    min_derivative=DEFAULT_MIN_DERIVATIVE,
):
    if torch.min(inputs) < left or torch.max(inputs) > right:
        raise ValueError("Input to a transform is not within its domain")

    num_bins = unnormalized_widths.shape[-1]

    if min_bin_width * num_bins > 1.0:
        raise ValueError("Minimal bin width too large for the number of bins")
    if min_bin_height * num_bins > 1.0:
        raise ValueError("Minimal bin height too large for the number of bins")

    widths = F.softmax(unnormalized_widths, dim=-1)
    widths = min_bin_width + (1 - min_bin_width * num_bins) * widths
    cumwidths = torch.cumsum(widths, dim=-1)
    cumwidths = F.pad(cumwidths, pad=(1, 0), mode="constant", value=0.0)
    cumwidths = (right - left) * cumwidths + left
    cumwidths[..., 0] = left
    cumwidths[..., -1] = right
    widths = cumwidths[..., 1:] - cumwidths[..., :-1]

    derivatives = min_derivative + F.softplus(unnormalized_derivatives)

    heights = F.softmax(unnormalized_heights, dim=-1)
    heights = min_bin_height + (1 - min_bin_height * num_bins) * heights
    cumheights = torch.cumsum(heights, dim=-1)
    cumheights = F.pad(cumheights, pad=(1, 0), mode="constant", value=0.0)
    cumheights = (top - bottom) * cumheights + bottom
    cumheights[..., 0] = bottom
    cumheights[..., -1] = top
    heights = cumheights[..., 1:] - cumheights[..., :-1]

    if inverse:
        bin_idx = searchsorted(cumheights, inputs)[..., None]
    else:
        bin_idx = searchsorted(cumwidths, inputs)[..., None]

    input_cumwidths = cumwidths.gather(-1, bin_idx)[..., 0]
    input_bin_widths = widths.gather(-1, bin_idx)[..., 0]

    input_cumheights = cumheights.gather(-1, bin_idx)[..., 0]
    delta = heights / widths
    input_delta = delta.gather(-1, bin_idx)[..., 0]

    input_derivatives = derivatives.gather(-1, bin_idx)[..., 0]
    input_derivatives_plus_one = derivatives[..., 1:].gather(-1, bin_idx)[..., 0]

    input_heights = heights.gather(-1, bin_idx)[..., 0]

    if inverse:
        a = (inputs - input_cumheights) * (
            input_derivatives + input_derivatives_plus_one - 2 * input_delta
        ) + input_heights * (input_delta - input_derivatives)
        b = input_heights * input_derivatives - (inputs - input_cumheights) * (
            input_derivatives + input_derivatives_plus_one - 2 * input_delta
        )
        c = -input_delta * (inputs - input_cumheights)

        discriminant = b.pow(2) - 4 * a * c
        assert (discriminant >= 0).all()

        root = (2 * c) / (-b - torch.sqrt(discriminant))
        outputs = root * input_bin_widths + input_cumwidths

        theta_one_minus_theta = root * (1 - root)
        denominator = input_delta + (
            (input_derivatives + input_derivatives_plus_one - 2 * input_delta)
            * theta_one_minus_theta
        )
        derivative_numerator = input_delta.pow(2) * (
            input_derivatives_plus_one * root.pow(2)
            + 2 * input_delta * theta_one_minus_theta
            + input_derivatives * (1 - root).pow(2)
        )
        logabsdet = torch.log(derivative_numerator) - 2 * torch.log(denominator)

        return outputs, -logabsdet
    else:
        theta = (inputs - input_cumwidths) / input_bin_widths
        theta_one_minus_theta = theta * (1 - theta)

        numerator = input_heights * (
            input_delta * theta.pow(2) + input_derivatives * theta_one_minus_theta
        )
        denominator = input_delta + (
            (input_derivatives + input_derivatives_plus_one - 2 * input_delta)
            * theta_one_minus_theta
        )
        outputs = input_cumheights + numerator / denominator

        derivative_numerator = input_delta.pow(2) * (
            input_derivatives_plus_one * theta.pow(2)
            + 2 * input_delta * theta_one_minus_theta
            + input_derivatives * (1 - theta).pow(2)
        )
        logabsdet = torch.log(derivative_numerator) - 2 * torch.log(denominator)

        return outputs, logabsdet


class PiecewiseRationalQuadraticCoupling(nn.Module):
    """Transforms the masked-out features by a spline whose parameters the others predict."""

    def __init__(self, mask, hidden_features=32, num_bins=8, tail_bound=3.0):
        super().__init__()
        self.register_buffer("mask", mask)
        self.num_bins = num_bins
        self.tail_bound = tail_bound
        self.hidden_features = hidden_features
        n_identity = int((mask <= 0).sum())
        n_transform = int((mask > 0).sum())
        self.transform_net = nn.Sequential(
            nn.Linear(n_identity, hidden_features), nn.ReLU(),
            nn.Linear(hidden_features, hidden_features), nn.ReLU(),
            nn.Linear(hidden_features, n_transform * (3 * num_bins - 1)),
        )

    def _coupling(self, inputs, inverse):
        identity_split = inputs[:, self.mask <= 0]
        transform_split = inputs[:, self.mask > 0]
        params = self.transform_net(identity_split)
        params = params.view(inputs.shape[0], transform_split.shape[1], 3 * self.num_bins - 1)
        unnormalized_widths = params[..., :self.num_bins] / np.sqrt(self.hidden_features)
        unnormalized_heights = params[..., self.num_bins:2 * self.num_bins] / np.sqrt(self.hidden_features)
        unnormalized_derivatives = params[..., 2 * self.num_bins:]
        transformed, logabsdet = unconstrained_rational_quadratic_spline(
            transform_split, unnormalized_widths, unnormalized_heights, unnormalized_derivatives,
            inverse=inverse, tails="linear", tail_bound=self.tail_bound,
        )
        outputs = torch.empty_like(inputs)
        outputs[:, self.mask <= 0] = identity_split
        outputs[:, self.mask > 0] = transformed
        return outputs, logabsdet.sum(dim=1)

    def forward(self, inputs):
        return self._coupling(inputs, inverse=False)

    def inverse(self, inputs):
        return self._coupling(inputs, inverse=True)


class Flow(nn.Module):
    def __init__(self, num_layers=4):
        super().__init__()
        masks = [torch.tensor([1.0, 0.0]) if i % 2 == 0 else torch.tensor([0.0, 1.0]) for i in range(num_layers)]
        self.transforms = nn.ModuleList([PiecewiseRationalQuadraticCoupling(m) for m in masks])

    def log_prob(self, x):
        total_logabsdet = torch.zeros(x.shape[0])
        for transform in self.transforms:
            x, logabsdet = transform(x)
            total_logabsdet = total_logabsdet + logabsdet
        base = -0.5 * x.pow(2).sum(1) - x.shape[1] * 0.5 * np.log(2 * np.pi)
        return base + total_logabsdet

    def inverse(self, z):
        total_logabsdet = torch.zeros(z.shape[0])
        for transform in reversed(self.transforms):
            z, logabsdet = transform.inverse(z)
            total_logabsdet = total_logabsdet + logabsdet
        return z, total_logabsdet

    def sample(self, n):
        return self.inverse(torch.randn(n, 2))[0]


def make_moons(n, noise=0.08):
    n_out = n // 2
    n_in = n - n_out
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))], 1)
    inner = np.stack([1 - np.cos(np.linspace(0, np.pi, n_in)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5], 1)
    x = np.concatenate([outer, inner]) + rng.normal(scale=noise, size=(n, 2))
    x = (x - np.array([0.5, 0.25])) * 1.5  # centred, about unit scale
    return torch.tensor(x[rng.permutation(n)], dtype=torch.float32)


x_train = make_moons(512)
x_test = make_moons(256)
mean, cov = x_train.mean(0), torch.cov(x_train.T)
gaussian_nll = -torch.distributions.MultivariateNormal(mean, cov).log_prob(x_test).mean().item()

flow = Flow(num_layers=4)
print(f"transforms {len(flow.transforms)}, parameters {sum(p.numel() for p in flow.parameters())}")

# the spline alone: forward then inverse is the identity, inside and outside the tail bound
with torch.no_grad():
    u = torch.linspace(-4, 4, 41)[:, None].repeat(1, 3)
    w, h, d = torch.randn(41, 3, 8), torch.randn(41, 3, 8), torch.randn(41, 3, 7)
    y, ld = unconstrained_rational_quadratic_spline(u, w, h, d, tail_bound=3.0)
    u_back, ld_back = unconstrained_rational_quadratic_spline(y, w, h, d, inverse=True, tail_bound=3.0)
    spline_err = (u_back - u).abs().max().item()
    logdet_err = (ld + ld_back).abs().max().item()
print(f"spline round trip: max error below 1e-3 {spline_err < 1e-3}, log-determinants cancel to 1e-3 {logdet_err < 1e-3}")

optimizer = torch.optim.Adam(flow.parameters(), lr=5e-3)
STEPS, BATCH = 300, 128
for step in range(1, STEPS + 1):
    idx = torch.randint(0, x_train.shape[0], (BATCH,))
    loss = -flow.log_prob(x_train[idx]).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"step {step}: nll {loss.item():.4f}")

with torch.no_grad():
    test_nll = -flow.log_prob(x_test).mean().item()
    z = x_test
    for transform in flow.transforms:
        z, _ = transform(z)
    x_back, _ = flow.inverse(z)
    inv_err = (x_back - x_test).abs().max().item()
    samples = flow.sample(1000)
    # samples from the moons are far from their centre of mass: the middle (0, 0) sits in a gap
    sample_radius = samples.norm(dim=1).median().item()
    data_radius = x_test.norm(dim=1).median().item()
print(f"test nll {test_nll:.4f} (fitted Gaussian {gaussian_nll:.4f}), invertibility error {inv_err:.2e}, "
      f"median radius of samples {sample_radius:.3f} vs data {data_radius:.3f}")
print(f"FINAL test_nll={test_nll:.4f} gaussian_nll={gaussian_nll:.4f} inv_err={inv_err:.4f} "
      f"sample_radius={sample_radius:.4f}")
