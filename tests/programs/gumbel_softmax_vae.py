"""A categorical VAE with the Gumbel-Softmax trick as YongfeiYan/Gumbel_Softmax_VAE
(gumbel_softmax_vae.py) writes it, on binarised 8x8 synthetic images: hand-written
``sample_gumbel`` (``-torch.log(-torch.log(U + eps) + eps)`` on ``torch.rand``), the straight-through
``gumbel_softmax`` (``y.max(dim=-1)``, ``torch.zeros_like(y).view(-1, shape[-1])``, ``y_hard.scatter_(1,
ind.view(-1, 1), 1)``, ``(y_hard - y).detach() + y``) against ``F.gumbel_softmax(logits, tau=temp,
hard=True)`` (one-hot outputs, the soft sample's gradient, argmax frequencies near ``softmax(logits)``),
the encoder/decoder of Linear + ReLU + Sigmoid, the loss ``F.binary_cross_entropy(recon_x, x,
reduction='sum') / batch`` + the KL to a uniform prior ``torch.sum(qy * torch.log(qy * categorical_dim +
1e-20), dim=-1).mean()``, temperature annealing ``np.maximum(temp * np.exp(-ANNEAL_RATE * batch_idx),
temp_min)`` (a NumPy float dividing the logits), Adam, a test pass under ``torch.no_grad()``,
decoding random one-hot codes made with ``np_y[range(M), np.random.choice(categorical_dim, M)] = 1``;
then ``torch.distributions.RelaxedOneHotCategorical`` (``rsample``, ``log_prob``) and
``OneHotCategorical`` (``sample``, ``log_prob``, ``entropy``) on the trained posterior.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

latent_dim = 4
categorical_dim = 5  # one-of-K vector
image_size = 8 * 8
temp_min = 0.5
ANNEAL_RATE = 0.01


# ---- data: four stroke prototypes, shifted and binarised ----
def make_images(n, rng):
    base = np.zeros((4, 8, 8), dtype=np.float32)
    base[0, 1:7, 3] = 1  # vertical bar
    base[1, 3, 1:7] = 1  # horizontal bar
    base[2, np.arange(1, 7), np.arange(1, 7)] = 1  # diagonal
    base[3, 1:7, 1] = base[3, 1:7, 6] = base[3, 1, 1:7] = base[3, 6, 1:7] = 1  # box
    kinds = rng.randint(0, 4, n)
    shifts = rng.randint(-1, 2, (n, 2))
    images = np.stack([np.roll(base[k], tuple(s), axis=(0, 1)) for k, s in zip(kinds, shifts)])
    noisy = np.clip(images * 0.9 + rng.rand(n, 8, 8) * 0.25, 0, 1)
    return (noisy > 0.5).astype(np.float32)[:, None]


data_rng = np.random.RandomState(0)
train_images = torch.from_numpy(make_images(1024, data_rng))
test_images = torch.from_numpy(make_images(256, data_rng))
print("images:", tuple(train_images.shape), "mean", round(train_images.mean().item(), 4))
train_loader = DataLoader(TensorDataset(train_images, torch.zeros(1024)), batch_size=64, shuffle=True)
test_loader = DataLoader(TensorDataset(test_images, torch.zeros(256)), batch_size=64, shuffle=False)


def sample_gumbel(shape, eps=1e-20):
    U = torch.rand(shape)
    return -torch.log(-torch.log(U + eps) + eps)


def gumbel_softmax_sample(logits, temperature):
    y = logits + sample_gumbel(logits.size())
    return F.softmax(y / temperature, dim=-1)


def gumbel_softmax(logits, temperature, hard=False):
    """
    ST-gumple-softmax
    input: [*, n_class]
    return: flatten --> [*, n_class] an one-hot vector
    """
    y = gumbel_softmax_sample(logits, temperature)

    if not hard:
        return y.view(-1, latent_dim * categorical_dim)

    shape = y.size()
    _, ind = y.max(dim=-1)
    y_hard = torch.zeros_like(y).view(-1, shape[-1])
    y_hard.scatter_(1, ind.view(-1, 1), 1)
    y_hard = y_hard.view(*shape)
    # Set gradients w.r.t. y_hard gradients w.r.t. y
    y_hard = (y_hard - y).detach() + y
    return y_hard.view(-1, latent_dim * categorical_dim)


# ---- the hand-written sampler against F.gumbel_softmax ----
logits = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.0]]).repeat(4000, 1)
target_probs = F.softmax(logits[0], dim=-1)
mine = gumbel_softmax(logits.view(-1, latent_dim, categorical_dim), 0.5, hard=True).view(-1, categorical_dim)
theirs = F.gumbel_softmax(logits, tau=0.5, hard=True)
for name, sample in (("hand-written", mine), ("F.gumbel_softmax", theirs)):
    one_hot = bool(((sample == 0) | (sample == 1)).all()) and bool((sample.sum(-1) == 1).all())
    freq_gap = (sample.float().mean(0) - target_probs).abs().max().item()
    print(f"{name}: one-hot {one_hot}, argmax frequencies within 0.05 of softmax(logits): {freq_gap < 0.05}")

# the straight-through estimator: the hard sample's gradient is the soft sample's
probe_logits = torch.randn(3, categorical_dim, requires_grad=True)
weights = torch.randn(3, categorical_dim)
torch.manual_seed(seed + 1)
hard = F.gumbel_softmax(probe_logits, tau=0.7, hard=True)
(hard * weights).sum().backward()
grad_hard = probe_logits.grad.clone()
probe_logits.grad = None
torch.manual_seed(seed + 1)
soft = F.gumbel_softmax(probe_logits, tau=0.7, hard=False)
(soft * weights).sum().backward()
print("hard sample is the soft sample's argmax:", torch.equal(hard.argmax(-1), soft.argmax(-1)),
      "same gradient:", torch.allclose(grad_hard, probe_logits.grad, atol=1e-6))


class VAE_gumbel(nn.Module):
    def __init__(self, temp):
        super().__init__()
        self.fc1 = nn.Linear(image_size, 96)
        self.fc2 = nn.Linear(96, 48)
        self.fc3 = nn.Linear(48, latent_dim * categorical_dim)
        self.fc4 = nn.Linear(latent_dim * categorical_dim, 48)
        self.fc5 = nn.Linear(48, 96)
        self.fc6 = nn.Linear(96, image_size)
        self.relu = nn.ReLU()
        self.sigmoid = nn.Sigmoid()

    def encode(self, x):
        h1 = self.relu(self.fc1(x))
        h2 = self.relu(self.fc2(h1))
        return self.relu(self.fc3(h2))

    def decode(self, z):
        h4 = self.relu(self.fc4(z))
        h5 = self.relu(self.fc5(h4))
        return self.sigmoid(self.fc6(h5))

    def forward(self, x, temp, hard):
        q = self.encode(x.view(-1, image_size))
        q_y = q.view(q.size(0), latent_dim, categorical_dim)
        z = gumbel_softmax(q_y, temp, hard)
        return self.decode(z), F.softmax(q_y, dim=-1).reshape(*q.size())


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, qy):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, image_size), reduction='sum') / x.shape[0]

    log_ratio = torch.log(qy * categorical_dim + 1e-20)
    KLD = torch.sum(qy * log_ratio, dim=-1).mean()

    return BCE + KLD


temp = 1.0
model = VAE_gumbel(temp)
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)


def train(epoch, hard):
    model.train()
    train_loss = 0
    temp = 1.0
    for batch_idx, (data, _) in enumerate(train_loader):
        optimizer.zero_grad()
        recon_batch, qy = model(data, temp, hard)
        loss = loss_function(recon_batch, data, qy)
        loss.backward()
        train_loss += loss.item() * len(data)
        optimizer.step()
        if batch_idx % 4 == 1:
            temp = np.maximum(temp * np.exp(-ANNEAL_RATE * batch_idx), temp_min)
    return train_loss / len(train_loader.dataset), temp


def test(epoch, temp, hard):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            recon_batch, qy = model(data, temp, hard)
            test_loss += loss_function(recon_batch, data, qy).item() * len(data)
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n], recon_batch.view(-1, 1, 8, 8)[:n]])
    return test_loss / len(test_loader.dataset), comparison


for epoch in range(1, 9):
    hard = epoch > 4  # soft samples first, then the straight-through hard ones
    train_loss, temp = train(epoch, hard)
    test_loss, comparison = test(epoch, temp, hard)
    print(f"====> Epoch: {epoch} hard {hard} Average loss: {train_loss:.4f} temp {float(temp):.4f} "
          f"Test set loss: {test_loss:.4f} comparison {tuple(comparison.shape)}")

# decode random codes, as run() does after each epoch
M = 16 * latent_dim
np_y = np.zeros((M, categorical_dim), dtype=np.float32)
np_y[range(M), np.random.choice(categorical_dim, M)] = 1
np_y = np.reshape(np_y, [M // latent_dim, latent_dim, categorical_dim])
sample = torch.from_numpy(np_y).view(M // latent_dim, latent_dim * categorical_dim)
with torch.no_grad():
    decoded = model.decode(sample)
print("decoded samples:", tuple(decoded.view(M // latent_dim, 1, 8, 8).shape),
      "in (0, 1):", bool(((decoded > 0) & (decoded < 1)).all()))

# the trained posterior as torch.distributions
with torch.no_grad():
    q = model.encode(test_images.view(-1, image_size))
    q_y = q.view(q.size(0), latent_dim, categorical_dim)
    relaxed = torch.distributions.RelaxedOneHotCategorical(torch.tensor(0.5), logits=q_y)
    z = relaxed.rsample()
    relaxed_lp = relaxed.log_prob(z)
    categorical = torch.distributions.OneHotCategorical(logits=q_y)
    codes = categorical.sample()
    code_lp = categorical.log_prob(codes)
    entropy = categorical.entropy().sum(-1).mean().item()
    uniform_kl = torch.distributions.kl_divergence(
        categorical, torch.distributions.OneHotCategorical(probs=torch.full_like(q_y, 1 / categorical_dim)))
    by_hand_kl = torch.sum(F.softmax(q_y, -1) * torch.log(F.softmax(q_y, -1) * categorical_dim + 1e-20), -1)
print("relaxed:", tuple(relaxed.batch_shape), tuple(relaxed.event_shape), "simplex:",
      bool(torch.allclose(z.sum(-1), torch.ones(z.shape[:-1]), atol=1e-5)), "finite log_prob:",
      bool(torch.isfinite(relaxed_lp).all()))
print("one-hot codes:", tuple(codes.shape), "log_prob <= 0:", bool((code_lp <= 0).all()),
      "KL matches the hand-written term:", bool(torch.allclose(uniform_kl, by_hand_kl, atol=1e-4)))
print(f"FINAL test_loss={test_loss:.4f} train_loss={train_loss:.4f} entropy={entropy:.4f}")
