"""Sketch-RNN (Ha & Eck 2017) in the widely copied alexis-jacq/Pytorch-Sketch-RNN layout, on synthetic
stroke-5 sketches: circles, squares and zigzags drawn with noise as (dx, dy, p1, p2, p3).

``make_batch`` pads stroke-3 sequences into a ``(Nmax, batch, 5)`` tensor (sequence first, not
batch_first) in a legacy ``Variable``. The encoder is a bidirectional ``nn.LSTM`` (with the reference's
``dropout`` on a single layer, which torch warns about) whose final hidden state ``torch.split(hidden, 1,
0)`` is joined by ``torch.cat([hidden_forward.squeeze(0), hidden_backward.squeeze(0)], 1)`` into the
``mu`` and ``sigma_hat`` heads; ``z = mu + sigma * N`` with ``N = torch.normal(torch.zeros(z_size),
torch.ones(z_size))``. The decoder LSTM starts from ``torch.split(F.tanh(self.fc_hc(z)),
dec_hidden_size, 1)`` and reads ``torch.cat([batch_init, z_stack], 2)`` with ``z`` ``torch.stack``-ed
along time behind a start-of-sequence row; its output goes through ``torch.split(y, 6, 1)`` into a
bivariate-Gaussian mixture (``F.softmax`` without ``dim`` on pi, as the reference calls it, with torch's
implicit-dimension warning, ``torch.exp`` sigmas, ``torch.tanh`` rho) and a pen-state softmax. The
reconstruction loss is the hand-written bivariate normal pdf under ``torch.log(1e-5 + ...)`` masked by
the lengths, plus the pen cross-entropy; the KL term is annealed by ``eta_step = 1 - (1 - eta_min) *
R ** step`` and floored at ``KL_min`` by ``torch.max``; ``nn.utils.clip_grad_norm_``, one Adam per
network with the reference's ``lr_decay`` over ``param_groups``. Conditional generation samples the
mixture component by ``np.random.choice`` on a temperature-adjusted pi and the offset by
``np.random.multivariate_normal`` (and by a hand-written correlated normal draw from
``torch.randn``), the pen state by ``torch.multinomial``.

Checked: the validation reconstruction loss against the untrained model's, the KL term, and the
hand-written bivariate log-density against ``torch.distributions.MultivariateNormal(...).log_prob``.
"""

# ruff: noqa: UP008, B007, UP031  (the repository's own spelling: super(Class, self), `for i in range(Nmax)`, a %-formatted value)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim
from torch.autograd import Variable

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
use_cuda = torch.cuda.is_available()


class HParams:
    def __init__(self):
        self.enc_hidden_size = 48
        self.dec_hidden_size = 96
        self.Nz = 16
        self.M = 5
        self.dropout = 0.9
        self.batch_size = 40
        self.eta_min = 0.01
        self.R = 0.995
        self.KL_min = 0.2
        self.wKL = 0.5
        self.lr = 0.002
        self.lr_decay = 0.9999
        self.min_lr = 0.00001
        self.grad_clip = 1.0
        self.temperature = 0.4


hp = HParams()


# ----------------------------------------------------------------------------- synthetic sketches
def draw(kind):
    """Absolute points of one shape, then stroke-3 offsets (dx, dy, pen lifted after this point)."""
    if kind == 0:  # circle
        n = np.random.randint(12, 19)
        radius = np.random.uniform(0.6, 1.0)
        angle = np.linspace(0, 2 * np.pi, n) + np.random.uniform(0, 2 * np.pi)
        points = radius * np.stack([np.cos(angle), np.sin(angle)], 1)
    elif kind == 1:  # square, three points a side
        side = np.random.uniform(0.8, 1.4)
        corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]) * side
        points = np.concatenate([np.linspace(corners[i], corners[i + 1], 4)[:-1] for i in range(4)] + [corners[-1:]])
    else:  # zigzag
        n = np.random.randint(5, 9)
        height = np.random.uniform(0.4, 0.8)
        points = np.stack([np.linspace(0, 2, n), height * (np.arange(n) % 2)], 1)
    points = points + np.random.normal(0, 0.03, points.shape)
    offsets = np.diff(points, axis=0)
    seq = np.zeros((len(offsets), 3))
    seq[:, :2] = offsets
    seq[-1, 2] = 1
    return seq


kinds = np.random.randint(0, 3, 420)
data = [draw(k) for k in kinds]
scale = np.std(np.concatenate([seq[:, :2] for seq in data]).ravel())
data = [np.concatenate([seq[:, :2] / scale, seq[:, 2:]], 1) for seq in data]
train_data, valid_data = data[:360], data[360:]
Nmax = max(len(seq) for seq in data)
print(f"{len(train_data)} train / {len(valid_data)} validation sketches, normalising scale computed")


def make_batch(batch_size, source=None):
    source = train_data if source is None else source
    batch_idx = np.random.choice(len(source), batch_size) if len(source) != batch_size else np.arange(batch_size)
    batch_sequences = [source[idx] for idx in batch_idx]
    strokes = []
    lengths = []
    for seq in batch_sequences:
        len_seq = len(seq[:, 0])
        new_seq = np.zeros((Nmax, 5))
        new_seq[:len_seq, :2] = seq[:, :2]
        new_seq[: len_seq - 1, 2] = 1 - seq[:-1, 2]
        new_seq[:len_seq, 3] = seq[:, 2]
        new_seq[(len_seq - 1):, 4] = 1
        new_seq[len_seq - 1, 2:4] = 0
        lengths.append(len(seq[:, 0]))
        strokes.append(new_seq)
    batch = Variable(torch.from_numpy(np.stack(strokes, 1)).float())
    return batch, lengths


# ----------------------------------------------------------------------------- model
class EncoderRNN(nn.Module):
    def __init__(self):
        super(EncoderRNN, self).__init__()
        # bidirectional lstm:
        self.lstm = nn.LSTM(5, hp.enc_hidden_size, dropout=hp.dropout, bidirectional=True)
        # create mu and sigma from lstm's last output:
        self.fc_mu = nn.Linear(2 * hp.enc_hidden_size, hp.Nz)
        self.fc_sigma = nn.Linear(2 * hp.enc_hidden_size, hp.Nz)
        # active dropout:
        self.train()

    def forward(self, inputs, batch_size, hidden_cell=None):
        if hidden_cell is None:
            # then must init with zeros
            hidden = torch.zeros(2, batch_size, hp.enc_hidden_size)
            cell = torch.zeros(2, batch_size, hp.enc_hidden_size)
            hidden_cell = (hidden, cell)
        _, (hidden, cell) = self.lstm(inputs.float(), hidden_cell)
        # hidden is (2, batch_size, hidden_size), we want (batch_size, 2*hidden_size):
        hidden_forward, hidden_backward = torch.split(hidden, 1, 0)
        hidden_cat = torch.cat([hidden_forward.squeeze(0), hidden_backward.squeeze(0)], 1)
        # mu and sigma:
        mu = self.fc_mu(hidden_cat)
        sigma_hat = self.fc_sigma(hidden_cat)
        sigma = torch.exp(sigma_hat / 2.0)
        # N ~ N(0,1)
        z_size = mu.size()
        N = torch.normal(torch.zeros(z_size), torch.ones(z_size))
        z = mu + sigma * N
        # mu and sigma_hat are needed for LKL loss
        return z, mu, sigma_hat


class DecoderRNN(nn.Module):
    def __init__(self):
        super(DecoderRNN, self).__init__()
        # to init hidden and cell from z:
        self.fc_hc = nn.Linear(hp.Nz, 2 * hp.dec_hidden_size)
        # unidirectional lstm:
        self.lstm = nn.LSTM(hp.Nz + 5, hp.dec_hidden_size, dropout=hp.dropout)
        # create proba distribution parameters from hiddens:
        self.fc_params = nn.Linear(hp.dec_hidden_size, 6 * hp.M + 3)

    def forward(self, inputs, z, hidden_cell=None):
        if hidden_cell is None:
            # then we must init from z
            hidden, cell = torch.split(F.tanh(self.fc_hc(z)), hp.dec_hidden_size, 1)
            hidden_cell = (hidden.unsqueeze(0).contiguous(), cell.unsqueeze(0).contiguous())
        outputs, (hidden, cell) = self.lstm(inputs, hidden_cell)
        # in training we feed the lstm with the whole input in one shot
        # and use all outputs contained in 'outputs', while in generate
        # mode we just feed with the last generated sample:
        if self.training:
            y = self.fc_params(outputs.view(-1, hp.dec_hidden_size))
        else:
            y = self.fc_params(hidden.view(-1, hp.dec_hidden_size))
        # separate pen and mixture params:
        params = torch.split(y, 6, 1)
        params_mixture = torch.stack(params[:-1])  # trajectory
        params_pen = params[-1]  # pen up/down
        # identify mixture params:
        pi, mu_x, mu_y, sigma_x, sigma_y, rho_xy = torch.split(params_mixture, 1, 2)
        # preprocess params::
        if self.training:
            len_out = Nmax + 1
        else:
            len_out = 1

        pi = F.softmax(pi.transpose(0, 1).squeeze()).view(len_out, -1, hp.M)
        sigma_x = torch.exp(sigma_x.transpose(0, 1).squeeze()).view(len_out, -1, hp.M)
        sigma_y = torch.exp(sigma_y.transpose(0, 1).squeeze()).view(len_out, -1, hp.M)
        rho_xy = torch.tanh(rho_xy.transpose(0, 1).squeeze()).view(len_out, -1, hp.M)
        mu_x = mu_x.transpose(0, 1).squeeze().contiguous().view(len_out, -1, hp.M)
        mu_y = mu_y.transpose(0, 1).squeeze().contiguous().view(len_out, -1, hp.M)
        q = F.softmax(params_pen).view(len_out, -1, 3)
        return pi, mu_x, mu_y, sigma_x, sigma_y, rho_xy, q, hidden, cell


def lr_decay(optimizer):
    """Decay learning rate by a factor of lr_decay"""
    for param_group in optimizer.param_groups:
        if param_group["lr"] > hp.min_lr:
            param_group["lr"] *= hp.lr_decay
    return optimizer


def sample_bivariate_normal(mu_x, mu_y, sigma_x, sigma_y, rho_xy, greedy=False):
    # inputs must be floats
    if greedy:
        return mu_x, mu_y
    mean = [mu_x, mu_y]
    sigma_x *= np.sqrt(hp.temperature)
    sigma_y *= np.sqrt(hp.temperature)
    cov = [[sigma_x * sigma_x, rho_xy * sigma_x * sigma_y], [rho_xy * sigma_x * sigma_y, sigma_y * sigma_y]]
    x = np.random.multivariate_normal(mean, cov, 1)
    return x[0][0], x[0][1]


class Model:
    def __init__(self):
        self.encoder = EncoderRNN()
        self.decoder = DecoderRNN()
        self.encoder_optimizer = optim.Adam(self.encoder.parameters(), hp.lr)
        self.decoder_optimizer = optim.Adam(self.decoder.parameters(), hp.lr)
        self.eta_step = hp.eta_min

    def make_target(self, batch, lengths):
        eos = torch.stack([torch.Tensor([0, 0, 0, 0, 1])] * batch.size()[1]).unsqueeze(0)
        batch = torch.cat([batch, eos], 0)
        mask = torch.zeros(Nmax + 1, batch.size()[1])
        for indice, length in enumerate(lengths):
            mask[:length, indice] = 1
        dx = torch.stack([batch.data[:, :, 0]] * hp.M, 2)
        dy = torch.stack([batch.data[:, :, 1]] * hp.M, 2)
        p1 = batch.data[:, :, 2]
        p2 = batch.data[:, :, 3]
        p3 = batch.data[:, :, 4]
        p = torch.stack([p1, p2, p3], 2)
        return mask, dx, dy, p

    def forward_losses(self, batch, lengths, batch_size):
        # encode:
        z, self.mu, self.sigma = self.encoder(batch, batch_size)
        # create start of sequence:
        sos = torch.stack([torch.Tensor([0, 0, 1, 0, 0])] * batch_size).unsqueeze(0)
        # had sos at the begining of the batch:
        batch_init = torch.cat([sos, batch], 0)
        # expend z to be ready to concatenate with inputs:
        z_stack = torch.stack([z] * (Nmax + 1))
        # inputs is concatenation of z and batch_inputs
        inputs = torch.cat([batch_init, z_stack], 2)
        # decode:
        self.pi, self.mu_x, self.mu_y, self.sigma_x, self.sigma_y, self.rho_xy, self.q, _, _ = self.decoder(inputs, z)
        # prepare targets:
        mask, dx, dy, p = self.make_target(batch, lengths)
        LKL = self.kullback_leibler_loss(batch_size)
        LR = self.reconstruction_loss(mask, dx, dy, p, batch_size)
        return LR, LKL

    def train(self, step):
        self.encoder.train()
        self.decoder.train()
        batch, lengths = make_batch(hp.batch_size)
        # update eta for LKL:
        self.eta_step = 1 - (1 - hp.eta_min) * hp.R ** step
        LR, LKL = self.forward_losses(batch, lengths, hp.batch_size)
        loss = LR + LKL
        # prepare optimizers:
        self.encoder_optimizer.zero_grad()
        self.decoder_optimizer.zero_grad()
        # gradient step
        loss.backward()
        # gradient cliping
        nn.utils.clip_grad_norm_(self.encoder.parameters(), hp.grad_clip)
        nn.utils.clip_grad_norm_(self.decoder.parameters(), hp.grad_clip)
        # optim step
        self.encoder_optimizer.step()
        self.decoder_optimizer.step()
        self.encoder_optimizer = lr_decay(self.encoder_optimizer)
        self.decoder_optimizer = lr_decay(self.decoder_optimizer)
        return loss.item(), LR.item(), LKL.item()

    @torch.no_grad()
    def validation_losses(self):
        batch, lengths = make_batch(len(valid_data), valid_data)
        LR, LKL = self.forward_losses(batch, lengths, len(valid_data))
        # the KL itself, without the annealing weight and the floor
        kl = -0.5 * torch.mean(1 + self.sigma - self.mu ** 2 - torch.exp(self.sigma))
        return LR.item(), kl.item()

    def bivariate_normal_pdf(self, dx, dy):
        z_x = ((dx - self.mu_x) / self.sigma_x) ** 2
        z_y = ((dy - self.mu_y) / self.sigma_y) ** 2
        z_xy = (dx - self.mu_x) * (dy - self.mu_y) / (self.sigma_x * self.sigma_y)
        z = z_x + z_y - 2 * self.rho_xy * z_xy
        exp = torch.exp(-z / (2 * (1 - self.rho_xy ** 2)))
        norm = 2 * np.pi * self.sigma_x * self.sigma_y * torch.sqrt(1 - self.rho_xy ** 2)
        return exp / norm

    def reconstruction_loss(self, mask, dx, dy, p, batch_size):
        pdf = self.bivariate_normal_pdf(dx, dy)
        LS = -torch.sum(mask * torch.log(1e-5 + torch.sum(self.pi * pdf, 2))) / float(Nmax * batch_size)
        LP = -torch.sum(p * torch.log(self.q)) / float(Nmax * batch_size)
        return LS + LP

    def kullback_leibler_loss(self, batch_size):
        LKL = -0.5 * torch.sum(1 + self.sigma - self.mu ** 2 - torch.exp(self.sigma)) / float(hp.Nz * batch_size)
        KL_min = Variable(torch.Tensor([hp.KL_min])).detach()
        return hp.wKL * self.eta_step * torch.max(LKL, KL_min)

    def sample_next_state(self):
        def adjust_temp(pi_pdf):
            pi_pdf = np.log(pi_pdf) / hp.temperature
            pi_pdf -= pi_pdf.max()
            pi_pdf = np.exp(pi_pdf)
            pi_pdf /= pi_pdf.sum()
            return pi_pdf

        # get mixture indice:
        pi = self.pi.data[0, 0, :].cpu().numpy().astype(np.float64)
        pi = adjust_temp(pi)
        pi_idx = np.random.choice(hp.M, p=pi)
        # get pen state:
        q = torch.from_numpy(adjust_temp(self.q.data[0, 0, :].cpu().numpy().astype(np.float64)))
        q_idx = torch.multinomial(q, 1).item()
        # get mixture params:
        mu_x = self.mu_x.data[0, 0, pi_idx].item()
        mu_y = self.mu_y.data[0, 0, pi_idx].item()
        sigma_x = self.sigma_x.data[0, 0, pi_idx].item()
        sigma_y = self.sigma_y.data[0, 0, pi_idx].item()
        rho_xy = self.rho_xy.data[0, 0, pi_idx].item()
        x, y = sample_bivariate_normal(mu_x, mu_y, sigma_x, sigma_y, rho_xy, greedy=False)
        next_state = torch.zeros(5)
        next_state[0] = x
        next_state[1] = y
        next_state[q_idx + 2] = 1
        return next_state.view(1, 1, -1), x, y, q_idx == 1, q_idx == 2

    def conditional_generation(self, sketch):
        batch, lengths = make_batch(1, [sketch])
        # should remove dropouts:
        self.encoder.train(False)
        self.decoder.train(False)
        # encode:
        z, _, _ = self.encoder(batch, 1)
        sos = Variable(torch.Tensor([0, 0, 1, 0, 0]).view(1, 1, -1))
        s = sos
        seq_x, seq_y, seq_z = [], [], []
        hidden_cell = None
        for i in range(Nmax):
            input = torch.cat([s, z.unsqueeze(0)], 2)
            # decode:
            self.pi, self.mu_x, self.mu_y, self.sigma_x, self.sigma_y, self.rho_xy, self.q, hidden, cell = (
                self.decoder(input, z, hidden_cell)
            )
            hidden_cell = (hidden, cell)
            # sample from parameters:
            s, dx, dy, pen_down, eos = self.sample_next_state()
            seq_x.append(dx)
            seq_y.append(dy)
            seq_z.append(pen_down)
            if eos:
                break
        return np.stack([np.cumsum(seq_x), np.cumsum(seq_y), seq_z]).T


# ----------------------------------------------------------------------------- training
model = Model()
untrained_recon, untrained_kl = model.validation_losses()
print(f"untrained validation reconstruction {untrained_recon:.4f} KL {untrained_kl:.4f}")
STEPS = 150
for step in range(1, STEPS + 1):
    loss, LR, LKL = model.train(step)
    if step % 30 == 0:
        print("step", step, "loss", round(loss, 4), "LR", round(LR, 4), "LKL", round(LKL, 4), "eta",
              round(model.eta_step, 4), "lr", "%.6f" % model.encoder_optimizer.param_groups[0]["lr"])

recon, kl = model.validation_losses()
print(f"trained validation reconstruction {recon:.4f} KL {kl:.4f}")
assert recon < untrained_recon

# the hand-written bivariate density against torch.distributions on the trained mixture parameters
with torch.no_grad():
    batch, lengths = make_batch(len(valid_data), valid_data)
    model.forward_losses(batch, lengths, len(valid_data))
    _, dx, dy, _ = model.make_target(batch, lengths)
    # in log form: the pdf itself underflows to 0 far from a component
    z_x = ((dx - model.mu_x) / model.sigma_x) ** 2
    z_y = ((dy - model.mu_y) / model.sigma_y) ** 2
    z_xy = (dx - model.mu_x) * (dy - model.mu_y) / (model.sigma_x * model.sigma_y)
    one_minus_rho2 = 1 - model.rho_xy ** 2
    log_pdf = -(z_x + z_y - 2 * model.rho_xy * z_xy) / (2 * one_minus_rho2) - torch.log(
        2 * np.pi * model.sigma_x * model.sigma_y * torch.sqrt(one_minus_rho2))
    pdf_agrees = torch.allclose(torch.exp(log_pdf), model.bivariate_normal_pdf(dx, dy), rtol=1e-3, atol=1e-6)
    sx, sy, rho = model.sigma_x, model.sigma_y, model.rho_xy
    covariance = torch.stack([torch.stack([sx * sx, rho * sx * sy], -1), torch.stack([rho * sx * sy, sy * sy], -1)], -2)
    mvn = torch.distributions.MultivariateNormal(torch.stack([model.mu_x, model.mu_y], -1), covariance_matrix=covariance)
    reference = mvn.log_prob(torch.stack([dx, dy], -1))
    # hand-written correlated draw: x = mu_x + sx n1, y = mu_y + sy (rho n1 + sqrt(1 - rho^2) n2)
    n1, n2 = torch.randn(2, 20000)
    draws = torch.stack([2.0 + 0.5 * n1, -1.0 + 0.8 * (0.6 * n1 + (1 - 0.6 ** 2) ** 0.5 * n2)], 1)
    empirical_corr = torch.corrcoef(draws.T)[0, 1].item()
mvn_ok = pdf_agrees and torch.allclose(log_pdf, reference, atol=1e-3, rtol=1e-4)
print(f"hand-written log-density equals MultivariateNormal.log_prob {mvn_ok}, "
      f"max relative difference {((log_pdf - reference) / reference.abs().clamp(min=1)).abs().max().item():.2e}, shape {tuple(reference.shape)}; "
      f"correlated draw corr {empirical_corr:.2f}")

# conditional generation at temperature 0.4
lengths = []
for k in range(3):
    sketch = valid_data[k]
    generated = model.conditional_generation(sketch)
    lengths.append(len(generated))
print(f"generated {len(lengths)} sketches, mean length {np.mean(lengths):.1f} of at most {Nmax}")
print(f"FINAL recon={recon:.4f} recon_untrained={untrained_recon:.4f} kl={kl:.4f} mvn_ok={int(mvn_ok)}")
