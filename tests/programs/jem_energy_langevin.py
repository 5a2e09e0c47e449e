"""JEM, "Your classifier is secretly an energy based model" (wgrathwohl/JEM train_wrn_ebm.py), on 2-d blobs.

The classifier's ``logits.logsumexp(1)`` as the negative energy and ``t.gather(logits, 1, y[:, None])``
for the class-conditional one (``CCF``), a replay buffer made by ``t.FloatTensor(n, d).uniform_(-1, 1)``
with ``t.randint`` draws and reinitialisation where ``t.rand(bs) < reinit_freq``, SGLD as the
repository writes it (``f.eval()``, ``t.autograd.Variable(init_sample, requires_grad=True)``,
``t.autograd.grad(f(x_k, y=y).sum(), [x_k], retain_graph=True)[0]``, ``x_k.data += sgld_lr * f_prime +
sgld_std * t.randn_like(x_k)``, ``f.train()``, ``x_k.detach()`` written back into the buffer), the
contrastive ``-(fp - fq)`` plus ``nn.CrossEntropyLoss()``, the ``L.abs().item() > 1e8`` divergence
guard, Adam; then test accuracy, energies of data against uniform noise, and samples drawn from
noise (unconditional, and conditional on a class, classified back). The repository's WideResNet is a
tanh MLP here and ``sgld_lr`` is 0.1, not 1.0: on the open 2-d plane the chains otherwise run away.
"""

import os

import numpy as np
import torch as t
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
t.manual_seed(seed)
rng = np.random.default_rng(seed)


class Args:
    n_classes = 4
    data_dim = 2
    batch_size = 32
    buffer_size = 500
    reinit_freq = 0.05
    sgld_lr = 0.1
    sgld_std = 0.01
    n_steps = 10
    p_x_weight = 1.0
    lr = 3e-3
    n_iters = 150


args = Args()
CENTERS = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]], dtype=np.float32)


def make_blobs(n):
    y = rng.integers(0, args.n_classes, size=n)
    x = CENTERS[y] + 0.12 * rng.standard_normal((n, 2)).astype(np.float32)
    return t.from_numpy(x.astype(np.float32)), t.from_numpy(y.astype(np.int64))


class F(nn.Module):
    def __init__(self, n_classes=4, hidden=64, dropout_rate=0.1):
        super().__init__()
        self.f = nn.Sequential(
            nn.Linear(args.data_dim, hidden), nn.Tanh(), nn.Dropout(dropout_rate),
            nn.Linear(hidden, hidden), nn.Tanh(),
        )
        self.energy_output = nn.Linear(hidden, 1)
        self.class_output = nn.Linear(hidden, n_classes)

    def forward(self, x, y=None):
        penult_z = self.f(x)
        return self.energy_output(penult_z).squeeze()

    def classify(self, x):
        penult_z = self.f(x)
        return self.class_output(penult_z).squeeze()


class CCF(F):
    def forward(self, x, y=None):
        logits = self.classify(x)
        if y is None:
            return logits.logsumexp(1)
        else:
            return t.gather(logits, 1, y[:, None])


def init_random(args, bs):
    return t.FloatTensor(bs, args.data_dim).uniform_(-1, 1)


def get_sample_q(args):
    def sample_p_0(replay_buffer, bs, y=None):
        if len(replay_buffer) == 0:
            return init_random(args, bs), []
        buffer_size = len(replay_buffer)
        inds = t.randint(0, buffer_size, (bs,))
        buffer_samples = replay_buffer[inds]
        random_samples = init_random(args, bs)
        choose_random = (t.rand(bs) < args.reinit_freq).float()[:, None]
        samples = choose_random * random_samples + (1 - choose_random) * buffer_samples
        return samples, inds

    def sample_q(f, replay_buffer, y=None, n_steps=args.n_steps):
        """this func takes in replay_buffer now so we have the option to sample from
        scratch (i.e. replay_buffer==[]).  See test_wrn_ebm.py for example.
        """
        f.eval()
        # get batch size
        bs = args.batch_size if y is None else y.size(0)
        # generate initial samples and buffer inds of those samples (if buffer is used)
        init_sample, buffer_inds = sample_p_0(replay_buffer, bs=bs, y=y)
        x_k = t.autograd.Variable(init_sample, requires_grad=True)
        # sgld
        for _k in range(n_steps):
            f_prime = t.autograd.grad(f(x_k, y=y).sum(), [x_k], retain_graph=True)[0]
            x_k.data += args.sgld_lr * f_prime + args.sgld_std * t.randn_like(x_k)
        f.train()
        final_samples = x_k.detach()
        # update replay buffer
        if len(replay_buffer) > 0:
            replay_buffer[buffer_inds] = final_samples.cpu()
        return final_samples

    return sample_q


x_train, y_train = make_blobs(512)
x_test, y_test = make_blobs(256)

f = CCF(n_classes=args.n_classes)
sample_q = get_sample_q(args)
replay_buffer = init_random(args, args.buffer_size)
print("buffer:", tuple(replay_buffer.shape), replay_buffer.dtype,
      "in [-1, 1]:", bool((replay_buffer.abs() <= 1).all()))

optim = t.optim.Adam(f.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=0.0)

for it in range(args.n_iters):
    inds = t.randint(0, len(x_train), (args.batch_size,))
    x_lab, y_lab = x_train[inds], y_train[inds]
    x_p_d = x_lab

    L = 0.
    x_q = sample_q(f, replay_buffer)
    if it == 0:
        # SGLD's autograd.grad reached only x_k: the parameters have no gradient yet
        print("after sampling, parameter grads are None:", all(p.grad is None for p in f.parameters()),
              "train mode restored:", f.training, "sample requires grad:", x_q.requires_grad)
    fp_all = f(x_p_d)
    fq_all = f(x_q)
    fp = fp_all.mean()
    fq = fq_all.mean()

    l_p_x = -(fp - fq)
    L += args.p_x_weight * l_p_x

    logits = f.classify(x_lab)
    l_p_y_given_x = nn.CrossEntropyLoss()(logits, y_lab)
    acc = (logits.max(1)[1] == y_lab).float().mean()
    L += l_p_y_given_x

    # break if the loss diverged...easier for poppa to run experiments this way
    if L.abs().item() > 1e8:
        print("BAD BOIIIIIIIIII")
        1 / 0  # noqa: B018  (the repository stops this way)

    optim.zero_grad()
    L.backward()
    optim.step()

    if (it + 1) % 50 == 0:
        print(f"P(x) | {it + 1}: f(x_p_d)={fp.item():.4f} f(x_q)={fq.item():.4f} d={fp.item() - fq.item():.4f} "
              f"| P(y|x): loss={l_p_y_given_x.item():.4f} acc={acc.item():.4f}")

f.eval()
with t.no_grad():
    test_acc = (f.classify(x_test).argmax(1) == y_test).float().mean().item()
    noise = init_random(args, 256)
    energy_gap = (f(x_test).mean() - f(noise).mean()).item()

# fresh chains from noise, longer than in training
samples = sample_q(f, [], n_steps=40)
dist = t.cdist(samples, t.from_numpy(CENTERS)).min(1)[0]
near = (dist < 0.35).float().mean().item()
y_cond = t.arange(args.n_classes).repeat_interleave(8)
cond_samples = sample_q(f, [], y=y_cond, n_steps=40)
with t.no_grad():
    f.eval()
    cond_acc = (f.classify(cond_samples).argmax(1) == y_cond).float().mean().item()
print("samples:", tuple(samples.shape), "conditional:", tuple(cond_samples.shape), "train mode after:", f.training)
print(f"test acc {test_acc:.4f} energy gap {energy_gap:.4f} near a blob {near:.4f} conditional acc {cond_acc:.4f}")
print(f"FINAL test_acc={test_acc:.4f} energy_gap={energy_gap:.4f} near={near:.4f} cond_acc={cond_acc:.4f}")
