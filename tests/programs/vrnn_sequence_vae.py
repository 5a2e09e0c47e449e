"""Variational RNN (Chung et al., NeurIPS 2015) in the emited/VariationalRecurrentNeuralNetwork layout,
on synthetic binary sequences: one or two bits bouncing between the walls of a 12-bit row.

``phi_x``/``phi_z`` feature extractors, encoder/prior heads with an ``nn.Softplus`` std, a Sigmoid
Bernoulli decoder, and a one-step ``nn.GRU(h_dim + h_dim, h_dim, n_layers, bias)`` driven by a Python
loop over time with ``self.rnn(torch.cat([phi_x_t, phi_z_t], 1).unsqueeze(0), h)``; ``h[-1]`` feeds
every head. ``_reparameterized_sample`` draws ``torch.empty(size=std.size(), device=device,
dtype=torch.float).normal_()`` and returns ``eps.mul(std).add_(mean)``; ``_kld_gauss`` and
``_nll_bern`` are the repository's hand-written sums with ``EPS = torch.finfo(torch.float).eps`` inside
``torch.log``. ``reset_parameters`` redraws every weight by ``weight.data.normal_(0, stdv)``. Training:
the repository's ``data.squeeze().transpose(0, 1)`` to time-major batches from a ``DataLoader``,
``kld_loss + nll_loss``, ``nn.utils.clip_grad_norm_``, Adam, the ``'Train Epoch: {} [{}/{}
({:.0f}%)]'`` log line, a ``torch.no_grad()`` test pass averaged over ``len(test_loader.dataset)``,
``sample(seq_len)`` from the prior writing ``sample[t] = dec_mean_t.data``, and a ``state_dict``
round-trip through ``torch.save``/``torch.load`` into a fresh model.

Checked: test NLL and KL of the trained model against the untrained one's, and ``_kld_gauss`` against
``torch.distributions.kl_divergence(Normal(...), Normal(...)).sum()``.
"""

# ruff: noqa: UP008, UP032, B007  (the repository's own spelling: super(VRNN, self), '...'.format(...), `for i, (data, _) in enumerate(...)`)

import io
import os

import torch
import torch.nn as nn
import torch.utils.data
from torch.distributions import Normal, kl_divergence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
EPS = torch.finfo(torch.float).eps  # numerical logs


def bouncing_bits(n, seq_len=16, width=12):
    """(n, 1, seq_len, width) rows of 0/1: each sequence has one or two bits moving one cell a step
    and reflecting off the walls."""
    data = torch.zeros(n, seq_len, width)
    for i in range(n):
        for _ in range(int(torch.randint(1, 3, ()).item())):
            pos = int(torch.randint(0, width, ()).item())
            vel = 1 if torch.rand(()).item() < 0.5 else -1
            for t in range(seq_len):
                data[i, t, pos] = 1.0
                if not 0 <= pos + vel < width:
                    vel = -vel
                pos += vel
    return data.unsqueeze(1)


class VRNN(nn.Module):
    def __init__(self, x_dim, h_dim, z_dim, n_layers, bias=False):
        super(VRNN, self).__init__()

        self.x_dim = x_dim
        self.h_dim = h_dim
        self.z_dim = z_dim
        self.n_layers = n_layers

        # feature-extracting transformations
        self.phi_x = nn.Sequential(
            nn.Linear(x_dim, h_dim),
            nn.ReLU(),
            nn.Linear(h_dim, h_dim),
            nn.ReLU())
        self.phi_z = nn.Sequential(
            nn.Linear(z_dim, h_dim),
            nn.ReLU())

        # encoder
        self.enc = nn.Sequential(
            nn.Linear(h_dim + h_dim, h_dim),
            nn.ReLU(),
            nn.Linear(h_dim, h_dim),
            nn.ReLU())
        self.enc_mean = nn.Linear(h_dim, z_dim)
        self.enc_std = nn.Sequential(
            nn.Linear(h_dim, z_dim),
            nn.Softplus())

        # prior
        self.prior = nn.Sequential(
            nn.Linear(h_dim, h_dim),
            nn.ReLU())
        self.prior_mean = nn.Linear(h_dim, z_dim)
        self.prior_std = nn.Sequential(
            nn.Linear(h_dim, z_dim),
            nn.Softplus())

        # decoder
        self.dec = nn.Sequential(
            nn.Linear(h_dim + h_dim, h_dim),
            nn.ReLU(),
            nn.Linear(h_dim, h_dim),
            nn.ReLU())
        self.dec_mean = nn.Sequential(
            nn.Linear(h_dim, x_dim),
            nn.Sigmoid())

        # recurrence
        self.rnn = nn.GRU(h_dim + h_dim, h_dim, n_layers, bias)

    def forward(self, x):
        all_enc_mean, all_enc_std = [], []
        all_dec_mean = []
        kld_loss = 0
        nll_loss = 0

        h = torch.zeros(self.n_layers, x.size(1), self.h_dim, device=device)
        for t in range(x.size(0)):

            phi_x_t = self.phi_x(x[t])

            # encoder
            enc_t = self.enc(torch.cat([phi_x_t, h[-1]], 1))
            enc_mean_t = self.enc_mean(enc_t)
            enc_std_t = self.enc_std(enc_t)

            # prior
            prior_t = self.prior(h[-1])
            prior_mean_t = self.prior_mean(prior_t)
            prior_std_t = self.prior_std(prior_t)

            # sampling and reparameterization
            z_t = self._reparameterized_sample(enc_mean_t, enc_std_t)
            phi_z_t = self.phi_z(z_t)

            # decoder
            dec_t = self.dec(torch.cat([phi_z_t, h[-1]], 1))
            dec_mean_t = self.dec_mean(dec_t)

            # recurrence
            _, h = self.rnn(torch.cat([phi_x_t, phi_z_t], 1).unsqueeze(0), h)

            # computing losses
            kld_loss += self._kld_gauss(enc_mean_t, enc_std_t, prior_mean_t, prior_std_t)
            nll_loss += self._nll_bern(dec_mean_t, x[t])

            all_enc_std.append(enc_std_t)
            all_enc_mean.append(enc_mean_t)
            all_dec_mean.append(dec_mean_t)

        return kld_loss, nll_loss, (all_enc_mean, all_enc_std), all_dec_mean

    def prior_and_posterior(self, x):
        """The per-step Gaussian parameters of one pass, for checking the KL term."""
        enc_means, enc_stds, prior_means, prior_stds = [], [], [], []
        h = torch.zeros(self.n_layers, x.size(1), self.h_dim, device=device)
        for t in range(x.size(0)):
            phi_x_t = self.phi_x(x[t])
            enc_t = self.enc(torch.cat([phi_x_t, h[-1]], 1))
            prior_t = self.prior(h[-1])
            enc_means.append(self.enc_mean(enc_t))
            enc_stds.append(self.enc_std(enc_t))
            prior_means.append(self.prior_mean(prior_t))
            prior_stds.append(self.prior_std(prior_t))
            phi_z_t = self.phi_z(self._reparameterized_sample(enc_means[-1], enc_stds[-1]))
            _, h = self.rnn(torch.cat([phi_x_t, phi_z_t], 1).unsqueeze(0), h)
        return [torch.stack(v) for v in (enc_means, enc_stds, prior_means, prior_stds)]

    def sample(self, seq_len):
        sample = torch.zeros(seq_len, self.x_dim, device=device)

        h = torch.zeros(self.n_layers, 1, self.h_dim, device=device)
        for t in range(seq_len):

            # prior
            prior_t = self.prior(h[-1])
            prior_mean_t = self.prior_mean(prior_t)
            prior_std_t = self.prior_std(prior_t)

            # sampling and reparameterization
            z_t = self._reparameterized_sample(prior_mean_t, prior_std_t)
            phi_z_t = self.phi_z(z_t)

            # decoder
            dec_t = self.dec(torch.cat([phi_z_t, h[-1]], 1))
            dec_mean_t = self.dec_mean(dec_t)

            phi_x_t = self.phi_x(dec_mean_t)

            # recurrence
            _, h = self.rnn(torch.cat([phi_x_t, phi_z_t], 1).unsqueeze(0), h)

            sample[t] = dec_mean_t.data

        return sample

    def reset_parameters(self, stdv=1e-1):
        for weight in self.parameters():
            weight.data.normal_(0, stdv)

    def _reparameterized_sample(self, mean, std):
        """using std to sample"""
        eps = torch.empty(size=std.size(), device=device, dtype=torch.float).normal_()
        return eps.mul(std).add_(mean)

    def _kld_gauss(self, mean_1, std_1, mean_2, std_2):
        """Using std to compute KLD"""
        kld_element = (2 * torch.log(std_2 + EPS) - 2 * torch.log(std_1 + EPS) +
                       (std_1.pow(2) + (mean_1 - mean_2).pow(2)) /
                       std_2.pow(2) - 1)
        return 0.5 * torch.sum(kld_element)

    def _nll_bern(self, theta, x):
        return - torch.sum(x * torch.log(theta + EPS) + (1 - x) * torch.log(1 - theta - EPS))


# hyperparameters
x_dim = 12
h_dim = 32
z_dim = 4
n_layers = 1
n_epochs = 6
clip = 10
learning_rate = 3e-3
batch_size = 32
print_every = 4

train_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(bouncing_bits(256), torch.zeros(256)), batch_size=batch_size, shuffle=True)
test_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(bouncing_bits(64), torch.zeros(64)), batch_size=batch_size, shuffle=False)


def train(epoch):
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):

        # transforming data
        data = data.to(device)
        data = data.squeeze().transpose(0, 1)  # (seq, batch, elem)
        data = (data - data.min()) / (data.max() - data.min())

        # forward + backward + optimize
        optimizer.zero_grad()
        kld_loss, nll_loss, _, _ = model(data)
        loss = kld_loss + nll_loss
        loss.backward()
        optimizer.step()

        # grad norm clipping, only in pytorch version >= 1.10
        nn.utils.clip_grad_norm_(model.parameters(), clip)

        # printing
        if batch_idx % print_every == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\t KLD Loss: {:.6f} \t NLL Loss: {:.6f}'.format(
                epoch, batch_idx * batch_size, batch_size * (len(train_loader.dataset) // batch_size),
                100. * batch_idx / len(train_loader),
                kld_loss.item() / batch_size,
                nll_loss.item() / batch_size))

        train_loss += loss.item()

    print('====> Epoch: {} Average loss: {:.4f}'.format(
        epoch, train_loss / len(train_loader.dataset)))


def test(epoch, net):
    """uses test data to evaluate likelihood of the model"""
    mean_kld_loss, mean_nll_loss = 0, 0
    torch.manual_seed(1000 + seed)  # the same posterior draws for every model tested
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):

            data = data.to(device)
            data = data.squeeze().transpose(0, 1)
            data = (data - data.min()) / (data.max() - data.min())

            kld_loss, nll_loss, _, _ = net(data)
            mean_kld_loss += kld_loss.item()
            mean_nll_loss += nll_loss.item()

    mean_kld_loss /= len(test_loader.dataset)
    mean_nll_loss /= len(test_loader.dataset)

    print('====> Test set loss: KLD Loss = {:.4f}, NLL Loss = {:.4f} '.format(
        mean_kld_loss, mean_nll_loss))
    return mean_kld_loss, mean_nll_loss


model = VRNN(x_dim, h_dim, z_dim, n_layers)
model = model.to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
print(f"parameters: {sum(p.numel() for p in model.parameters())}, GRU bias {model.rnn.bias}")

untrained_kld, untrained_nll = test(0, model)
torch.manual_seed(seed)
for epoch in range(1, n_epochs + 1):
    train(epoch)
kld, nll = test(n_epochs, model)
assert nll < untrained_nll

# sampling from the prior
with torch.no_grad():
    sample = model.sample(16)
print(f"sample shape {tuple(sample.shape)}, mean bit probability {sample.mean().item():.3f}, "
      f"in [0, 1] {bool(((sample >= 0) & (sample <= 1)).all())}")

# the state_dict round-trip gives the same model
buffer = io.BytesIO()
torch.save(model.state_dict(), buffer)
buffer.seek(0)
restored = VRNN(x_dim, h_dim, z_dim, n_layers)
restored.reset_parameters()
missing = restored.load_state_dict(torch.load(buffer))
restored_kld, restored_nll = test(n_epochs, restored)
print(f"restored keys {len(restored.state_dict())} {missing}; same test losses "
      f"{restored_kld == kld and restored_nll == nll}")

# the hand-written KL against torch.distributions
with torch.no_grad():
    data = next(iter(test_loader))[0].squeeze().transpose(0, 1)
    enc_mean, enc_std, prior_mean, prior_std = model.prior_and_posterior(data)
    by_hand = model._kld_gauss(enc_mean, enc_std, prior_mean, prior_std)
    reference = kl_divergence(Normal(enc_mean, enc_std), Normal(prior_mean, prior_std)).sum()
    kl_ok = torch.allclose(by_hand, reference, rtol=1e-4)
print(f"_kld_gauss equals kl_divergence {kl_ok}, relative difference {((by_hand - reference) / reference).abs().item():.1e}")

print(f"FINAL nll={nll:.3f} nll_untrained={untrained_nll:.3f} kld={kld:.3f} kl_ok={int(kl_ok)}")
