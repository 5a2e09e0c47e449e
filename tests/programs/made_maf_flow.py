"""MADE and MAF as karpathy/pytorch-made (made.py, run.py, check_masks.py) and the Masked
Autoregressive Flow of Papamakarios et al. (as karpathy/pytorch-normalizing-flows and
ikostrikov/pytorch-flows stack it) write them, at tiny sizes:

- ``MaskedLinear(nn.Linear)`` with ``register_buffer('mask', torch.ones(out_features, in_features))``,
  ``self.mask.data.copy_(torch.from_numpy(mask.astype(np.uint8).T))`` and ``F.linear(input, self.mask *
  self.weight, self.bias)``; connectivity by ``rng.randint(self.m[l-1].min(), self.nin-1, size=...)`` and
  ``self.m[l-1][:,None] <= self.m[l][None,:]``, order shuffling with ``num_masks`` cycled through
  ``update_masks`` (connectivity-agnostic training), the output mask replicated for ``nout = k * nin``;
- check_masks.py's autoregressive test: one output's gradient w.r.t. the input by ``backward()``, its
  nonzero pattern against the ordering;
- MADE on binary vectors with ``F.binary_cross_entropy_with_logits(xbhat, xb, reduction='sum')``, test
  likelihood averaged over masks with ``torch.zeros_like`` and ``torch.sigmoid``;
- MAF: MADE layers giving ``mu, alpha = out.chunk(2, dim=1)``, ``u = (x - mu) * torch.exp(-alpha)``,
  log-det ``-torch.sum(alpha, dim=1)``, layers stacked with ``torch.flip(x, dims=(1,))`` between,
  density ``Normal(0, 1).log_prob(z).sum(1) + log_det``, Adam, sampling by the inverse loop over
  dimensions (``x[:, i] = u[:, i] * torch.exp(alpha[:, i]) + mu[:, i]``) checked to invert the density
  direction, and the density's integral over a ``torch.meshgrid`` of a 2-d model.
"""
# ruff: noqa: E741, B007  (made.py's own spelling: l for the layer index, the unused sample index s)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# ---- made.py ----
class MaskedLinear(nn.Linear):
    """ same as Linear except has a configurable mask on the weights """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer('mask', torch.ones(out_features, in_features))

    def set_mask(self, mask):
        self.mask.data.copy_(torch.from_numpy(mask.astype(np.uint8).T))

    def forward(self, input):
        return F.linear(input, self.mask * self.weight, self.bias)


class MADE(nn.Module):
    def __init__(self, nin, hidden_sizes, nout, num_masks=1, natural_ordering=False):
        """
        nin: integer; number of inputs
        hidden sizes: a list of integers; number of units in hidden layers
        nout: integer; number of outputs, which usually collectively parameterize some kind of 1D distribution
              note: if nout is e.g. 2x larger than nin (perhaps the mean and std), then the first nin
              will be all the means and the second nin will be stds. i.e. output dimensions depend on the
              same input dimensions in "chunks" and should be carefully decoded downstream appropriately.
              the output of running the tests for this file makes this a bit more clear with examples.
        num_masks: can be used to train ensemble over orderings/connections
        natural_ordering: force natural ordering of dimensions, don't use random permutations
        """

        super().__init__()
        self.nin = nin
        self.nout = nout
        self.hidden_sizes = hidden_sizes
        assert self.nout % self.nin == 0, "nout must be integer multiple of nin"

        # define a simple MLP neural net
        self.net = []
        hs = [nin] + hidden_sizes + [nout]
        for h0, h1 in zip(hs, hs[1:]):
            self.net.extend([
                MaskedLinear(h0, h1),
                nn.ReLU(),
            ])
        self.net.pop()  # pop the last ReLU for the output layer
        self.net = nn.Sequential(*self.net)

        # seeds for orders/connectivities of the model ensemble
        self.natural_ordering = natural_ordering
        self.num_masks = num_masks
        self.seed = 0  # for cycling through num_masks orderings

        self.m = {}
        self.update_masks()  # builds the initial self.m connectivity
        # note, we could also precompute the masks and cache them, but this
        # could get memory expensive for large number of masks.

    def update_masks(self):
        if self.m and self.num_masks == 1:
            return  # only a single seed, skip for efficiency
        L = len(self.hidden_sizes)

        # fetch the next seed and construct a random stream
        rng = np.random.RandomState(self.seed)
        self.seed = (self.seed + 1) % self.num_masks

        # sample the order of the inputs and the connectivity of all neurons
        self.m[-1] = np.arange(self.nin) if self.natural_ordering else rng.permutation(self.nin)
        for l in range(L):
            self.m[l] = rng.randint(self.m[l - 1].min(), self.nin - 1, size=self.hidden_sizes[l])

        # construct the mask matrices
        masks = [self.m[l - 1][:, None] <= self.m[l][None, :] for l in range(L)]
        masks.append(self.m[L - 1][:, None] < self.m[-1][None, :])

        # handle the case where nout = nin * k, for integer k > 1
        if self.nout > self.nin:
            k = int(self.nout / self.nin)
            # replicate the mask across the other outputs
            masks[-1] = np.concatenate([masks[-1]] * k, axis=1)

        # set the masks in all MaskedLinear layers
        layers = [l for l in self.net.modules() if isinstance(l, MaskedLinear)]
        for l, m in zip(layers, masks):
            l.set_mask(m)

    def forward(self, x):
        return self.net(x)


# ---- check_masks.py: output k may depend only on inputs earlier in the ordering ----
def check_autoregressive(nin, hiddens, nout, num_masks, natural_ordering):
    model = MADE(nin, hiddens, nout, num_masks=num_masks, natural_ordering=natural_ordering)
    failures = 0
    for _ in range(num_masks):
        model.update_masks()  # (the next ordering)
        res = []
        for k in range(nout):
            xtr = torch.randn(1, nin, requires_grad=True)
            xtrhat = model(xtr)
            loss = xtrhat[0, k]
            loss.backward()

            depends = (xtr.grad[0].numpy() != 0).astype(np.uint8)
            depends_ix = list(np.where(depends)[0])
            isok = k % nin not in depends_ix
            res.append((len(depends_ix), k, depends_ix, isok))
            failures += not isok
        # the first variable in the ordering depends on nothing, every other only on earlier ones
        order = model.m[-1]
        failures += res[int(np.argmin(order))][0] != 0
        failures += sum(bool(set(deps) - {i for i in range(nin) if order[i] < order[k % nin]})
                        for _, k, deps, _ in res)
    return failures


print("autoregressive check failures:",
      check_autoregressive(6, [20, 20], 6, 2, False), check_autoregressive(4, [12], 8, 3, True))

# ---- MADE on binary vectors (run.py with a binarised toy in place of MNIST) ----
rng = np.random.RandomState(0)
nin = 10
prototypes = (rng.rand(4, nin) < 0.5).astype(np.float32)
flips = (rng.rand(1200, nin) < 0.08).astype(np.float32)
binary = np.abs(prototypes[rng.randint(0, 4, 1200)] - flips)
xtr, xte = torch.from_numpy(binary[:1000]), torch.from_numpy(binary[1000:])

made = MADE(nin, [48, 48], nin, num_masks=2, natural_ordering=False)
print("number of model parameters:", sum([np.prod(p.size()) for p in made.parameters()]))
print("mask buffer:", made.net[0].mask.dtype, tuple(made.net[0].mask.shape), "ones", int(made.net[0].mask.sum()))
opt = torch.optim.Adam(made.parameters(), 1e-2, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=6, gamma=0.1)


def run_epoch(split, upto=None):
    torch.set_grad_enabled(split == 'train')  # enable/disable grad for efficiency of forwarding test batches
    made.train() if split == 'train' else made.eval()
    nsamples = 1 if split == 'train' else 2
    x = xtr if split == 'train' else xte
    N, D = x.size()
    B = 100  # batch size
    nsteps = N // B if upto is None else min(N // B, upto)
    lossfs = []
    for step in range(nsteps):

        # fetch the next batch of data
        xb = x[step * B:step * B + B]

        # get the logits, potentially run the same batch a number of times, resampling each time
        xbhat = torch.zeros_like(xb)
        for s in range(nsamples):
            # perform order/connectivity-agnostic training by resampling the masks
            if step % 1 == 0 or split == 'test':  # if in test, cycle masks every time
                made.update_masks()
            # forward the model
            xbhat += made(xb)
        xbhat /= nsamples

        # evaluate the binary cross entropy loss
        loss = F.binary_cross_entropy_with_logits(xbhat, xb, reduction='sum') / B
        lossf = loss.data.item()
        lossfs.append(lossf)

        # backward/update
        if split == 'train':
            opt.zero_grad()
            loss.backward()
            opt.step()

    torch.set_grad_enabled(True)
    return np.mean(lossfs)


for epoch in range(12):
    train_loss = run_epoch('train')
    scheduler.step()
    if epoch % 4 == 3:
        print(f"epoch {epoch} train loss {train_loss:.4f} test loss {run_epoch('test'):.4f}")
made_test_nll = run_epoch('test')
with torch.no_grad():
    made.update_masks()
    probs = torch.sigmoid(made(xte))
print(f"MADE test nll {made_test_nll:.4f} (bits/dim {made_test_nll / nin / np.log(2):.4f}), "
      f"probabilities in (0, 1): {bool(((probs > 0) & (probs < 1)).all())}")


# ---- MAF: MADE layers as affine autoregressive transforms, stacked with flips ----
class MAFLayer(nn.Module):
    def __init__(self, dim, hidden, reverse):
        super().__init__()
        self.dim = dim
        self.made = MADE(dim, [hidden, hidden], 2 * dim, num_masks=1, natural_ordering=True)
        self.reverse = reverse

    def forward(self, x):
        """density direction: x -> u, all dimensions at once"""
        mu, alpha = self.made(x).chunk(2, dim=1)
        u = (x - mu) * torch.exp(-alpha)
        log_det = -torch.sum(alpha, dim=1)
        if self.reverse:
            u = torch.flip(u, dims=(1,))
        return u, log_det

    def inverse(self, u):
        """sampling direction: u -> x, one dimension at a time"""
        if self.reverse:
            u = torch.flip(u, dims=(1,))
        x = torch.zeros_like(u)
        for i in range(self.dim):
            mu, alpha = self.made(x).chunk(2, dim=1)
            x[:, i] = u[:, i] * torch.exp(alpha[:, i]) + mu[:, i]
        return x


class MAF(nn.Module):
    def __init__(self, dim, hidden, n_layers):
        super().__init__()
        self.layers = nn.ModuleList([MAFLayer(dim, hidden, reverse=i % 2 == 1) for i in range(n_layers)])
        self.base = Normal(0, 1)

    def log_prob(self, x):
        log_det = torch.zeros(x.size(0))
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return self.base.log_prob(x).sum(1) + log_det, x

    @torch.no_grad()
    def sample(self, n):
        u = self.base.sample((n, self.layers[0].dim))
        for layer in reversed(self.layers):
            u = layer.inverse(u)
        return u


def banana(n, rng):
    """a curved 3-d density: x1 ~ N(0, 1), x2 = x1^2 / 2 + noise, x3 depends on both"""
    x1 = rng.randn(n)
    x2 = 0.5 * x1 ** 2 + 0.4 * rng.randn(n)
    x3 = np.sin(x1) - 0.5 * x2 + 0.3 * rng.randn(n)
    return np.stack([x1, x2, x3], 1).astype(np.float32)


data_rng = np.random.RandomState(1)
train_x = torch.from_numpy(banana(1024, data_rng))
test_x = torch.from_numpy(banana(512, data_rng))
flow = MAF(3, 32, n_layers=3)
optimizer = torch.optim.Adam(flow.parameters(), lr=3e-3, weight_decay=1e-5)
for step in range(1, 301):
    idx = torch.randint(0, train_x.size(0), (128,))
    logp, _ = flow.log_prob(train_x[idx])
    loss = -logp.mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        with torch.no_grad():
            test_logp = flow.log_prob(test_x)[0].mean().item()
        print(f"maf step {step} loss {loss.item():.4f} test log-likelihood {test_logp:.4f}")

with torch.no_grad():
    test_logp, z = flow.log_prob(test_x)
    test_ll = test_logp.mean().item()
    # the inverse undoes the density direction
    x_back = z
    for layer in reversed(flow.layers):
        x_back = layer.inverse(x_back)
    inverse_error = (x_back - test_x).abs().max().item()
    samples = flow.sample(2000)
    sample_mean_x2 = samples[:, 1].mean().item()
print(f"MAF test log-likelihood {test_ll:.4f}, inverse error below 1e-3: {inverse_error < 1e-3}, "
      f"z mean {z.mean().item():.3f} std {z.std().item():.3f}")
print(f"samples: x2 mean {sample_mean_x2:.3f} (data {train_x[:, 1].mean().item():.3f})")

# a 2-d MAF's density integrates to about 1 over a grid
flow2 = MAF(2, 16, n_layers=2)
opt2 = torch.optim.Adam(flow2.parameters(), lr=3e-3)
for _ in range(150):
    loss2 = -flow2.log_prob(train_x[torch.randint(0, 1024, (128,)), :2])[0].mean()
    opt2.zero_grad()
    loss2.backward()
    opt2.step()
grid = torch.linspace(-5, 7, 121)
gx, gy = torch.meshgrid(grid, grid, indexing='ij')
with torch.no_grad():
    density = flow2.log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))[0].exp()
mass = (density.sum() * (grid[1] - grid[0]) ** 2).item()
print(f"2-d MAF loss {loss2.item():.4f}, mass on the grid {mass:.3f}")
print(f"FINAL made_nll={made_test_nll:.4f} maf_ll={test_ll:.4f} sample_x2={sample_mean_x2:.3f} mass={mass:.3f}")
