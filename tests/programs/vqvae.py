"""VQ-VAE the way zalandoresearch's notebook (vq-vae.ipynb) and rosinality's vq-vae-2-pytorch write it,
on small synthetic bar images: a strided Conv2d encoder with a residual stack, a codebook
``nn.Embedding(K, D)`` initialised by ``weight.data.uniform_(-1/K, 1/K)``, distances
``torch.sum(z**2, dim=1, keepdim=True) + torch.sum(w**2, dim=1) - 2 * torch.matmul(z, w.t())``,
``torch.argmin(...).unsqueeze(1)`` into ``encodings.scatter_(1, idx, 1)`` (and ``F.one_hot``, which must
agree), ``permute(0, 2, 3, 1).contiguous()`` in and out of channels-last, the straight-through estimator
``quantized = inputs + (quantized - inputs).detach()``, the commitment loss, the perplexity
``torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))``, and the EMA variant whose codebook
lives in buffers updated under ``torch.no_grad()`` with ``mul_``/``add_`` and Laplace smoothing (its codebook
started from a batch of encoder outputs, as lucidrains' vector-quantize-pytorch does; its perplexity by
``bincount(minlength=K)``). zalando's own EMA quantizer, which reassigns ``nn.Parameter``s and buffers each
step, is checked once. Both trained variants use Adam and must reconstruct with a used codebook.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def make_images(n, size=16):
    """Each image: one horizontal and one vertical bar at random rows/columns, values in [-0.5, 0.5]."""
    images = np.zeros((n, 1, size, size), dtype=np.float32)
    rows = rng.integers(0, size, size=n)
    cols = rng.integers(0, size, size=n)
    for i in range(n):
        images[i, 0, rows[i], :] = 1.0
        images[i, 0, :, cols[i]] = 1.0
    return torch.from_numpy(images - 0.5)


train_images = make_images(512)
test_images = make_images(128)
data_variance = torch.var(train_images + 0.5)


# ----------------------------------------------------------------- zalando's VectorQuantizer
class VectorQuantizer(nn.Module):
    def __init__(self, num_embeddings, embedding_dim, commitment_cost):
        super(VectorQuantizer, self).__init__()  # noqa: UP008  (the notebook's spelling)
        self._embedding_dim = embedding_dim
        self._num_embeddings = num_embeddings
        self._embedding = nn.Embedding(self._num_embeddings, self._embedding_dim)
        self._embedding.weight.data.uniform_(-1 / self._num_embeddings, 1 / self._num_embeddings)
        self._commitment_cost = commitment_cost

    def forward(self, inputs):
        # convert inputs from BCHW -> BHWC
        inputs = inputs.permute(0, 2, 3, 1).contiguous()
        input_shape = inputs.shape
        flat_input = inputs.view(-1, self._embedding_dim)
        distances = (torch.sum(flat_input**2, dim=1, keepdim=True)
                     + torch.sum(self._embedding.weight**2, dim=1)
                     - 2 * torch.matmul(flat_input, self._embedding.weight.t()))
        encoding_indices = torch.argmin(distances, dim=1).unsqueeze(1)
        encodings = torch.zeros(encoding_indices.shape[0], self._num_embeddings, device=inputs.device)
        encodings.scatter_(1, encoding_indices, 1)
        quantized = torch.matmul(encodings, self._embedding.weight).view(input_shape)
        e_latent_loss = F.mse_loss(quantized.detach(), inputs)
        q_latent_loss = F.mse_loss(quantized, inputs.detach())
        loss = q_latent_loss + self._commitment_cost * e_latent_loss
        quantized = inputs + (quantized - inputs).detach()
        avg_probs = torch.mean(encodings, dim=0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        # convert quantized from BHWC -> BCHW
        return loss, quantized.permute(0, 3, 1, 2).contiguous(), perplexity, encodings


class VectorQuantizerEMA(nn.Module):
    def __init__(self, num_embeddings, embedding_dim, commitment_cost, decay, epsilon=1e-5):
        super(VectorQuantizerEMA, self).__init__()  # noqa: UP008
        self._embedding_dim = embedding_dim
        self._num_embeddings = num_embeddings
        self._embedding = nn.Embedding(self._num_embeddings, self._embedding_dim)
        self._embedding.weight.data.normal_()
        self._commitment_cost = commitment_cost
        self.register_buffer("_ema_cluster_size", torch.zeros(num_embeddings))
        self._ema_w = nn.Parameter(torch.Tensor(num_embeddings, self._embedding_dim))
        self._ema_w.data.normal_()
        self._decay = decay
        self._epsilon = epsilon

    def forward(self, inputs):
        inputs = inputs.permute(0, 2, 3, 1).contiguous()
        input_shape = inputs.shape
        flat_input = inputs.view(-1, self._embedding_dim)
        distances = (torch.sum(flat_input**2, dim=1, keepdim=True)
                     + torch.sum(self._embedding.weight**2, dim=1)
                     - 2 * torch.matmul(flat_input, self._embedding.weight.t()))
        encoding_indices = torch.argmin(distances, dim=1).unsqueeze(1)
        encodings = torch.zeros(encoding_indices.shape[0], self._num_embeddings, device=inputs.device)
        encodings.scatter_(1, encoding_indices, 1)
        quantized = torch.matmul(encodings, self._embedding.weight).view(input_shape)

        # use EMA to update the embedding vectors
        if self.training:
            self._ema_cluster_size = self._ema_cluster_size * self._decay + \
                (1 - self._decay) * torch.sum(encodings, 0)
            # Laplace smoothing of the cluster size
            n = torch.sum(self._ema_cluster_size.data)
            self._ema_cluster_size = (
                (self._ema_cluster_size + self._epsilon)
                / (n + self._num_embeddings * self._epsilon) * n)
            dw = torch.matmul(encodings.t(), flat_input)
            self._ema_w = nn.Parameter(self._ema_w * self._decay + (1 - self._decay) * dw)
            self._embedding.weight = nn.Parameter(self._ema_w / self._ema_cluster_size.unsqueeze(1))

        e_latent_loss = F.mse_loss(quantized.detach(), inputs)
        loss = self._commitment_cost * e_latent_loss
        quantized = inputs + (quantized - inputs).detach()
        avg_probs = torch.mean(encodings, dim=0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        return loss, quantized.permute(0, 3, 1, 2).contiguous(), perplexity, encodings


# ----------------------------------------------------------------- rosinality's Quantize (EMA in buffers)
class Quantize(nn.Module):
    def __init__(self, dim, n_embed, decay=0.99, eps=1e-5):
        super().__init__()
        self.dim = dim
        self.n_embed = n_embed
        self.decay = decay
        self.eps = eps
        embed = torch.randn(dim, n_embed)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(n_embed))
        self.register_buffer("embed_avg", embed.clone())
        # lucidrains' vector-quantize-pytorch: the codebook starts from a batch of encoder outputs
        self.register_buffer("initted", torch.tensor([False]))

    def forward(self, input):
        flatten = input.reshape(-1, self.dim)
        if self.training and not self.initted:
            with torch.no_grad():
                samples = flatten[torch.randperm(flatten.shape[0])[:self.n_embed]]
                self.embed.data.copy_(samples.t())
                self.embed_avg.data.copy_(samples.t())
                self.cluster_size.data.fill_(1)
                self.initted.data.copy_(torch.tensor([True]))
        dist = (flatten.pow(2).sum(1, keepdim=True) - 2 * flatten @ self.embed
                + self.embed.pow(2).sum(0, keepdim=True))
        _, embed_ind = (-dist).max(1)
        embed_onehot = F.one_hot(embed_ind, self.n_embed).type(flatten.dtype)
        embed_ind = embed_ind.view(*input.shape[:-1])
        quantize = self.embed_code(embed_ind)

        if self.training:
            embed_onehot_sum = embed_onehot.sum(0)
            embed_sum = flatten.transpose(0, 1) @ embed_onehot
            with torch.no_grad():
                self.cluster_size.data.mul_(self.decay).add_(embed_onehot_sum, alpha=1 - self.decay)
                self.embed_avg.data.mul_(self.decay).add_(embed_sum, alpha=1 - self.decay)
                n = self.cluster_size.sum()
                cluster_size = (self.cluster_size + self.eps) / (n + self.n_embed * self.eps) * n
                embed_normalized = self.embed_avg / cluster_size.unsqueeze(0)
                self.embed.data.copy_(embed_normalized)

        diff = (quantize.detach() - input).pow(2).mean()
        quantize = input + (quantize - input).detach()
        return quantize, diff, embed_ind

    def embed_code(self, embed_id):
        return F.embedding(embed_id, self.embed.transpose(0, 1))


# ----------------------------------------------------------------- encoder / decoder
class Residual(nn.Module):
    def __init__(self, in_channels, num_hiddens, num_residual_hiddens):
        super(Residual, self).__init__()  # noqa: UP008
        self._block = nn.Sequential(
            nn.ReLU(True),
            nn.Conv2d(in_channels, num_residual_hiddens, kernel_size=3, stride=1, padding=1, bias=False),
            nn.ReLU(True),
            nn.Conv2d(num_residual_hiddens, num_hiddens, kernel_size=1, stride=1, bias=False))

    def forward(self, x):
        return x + self._block(x)


class ResidualStack(nn.Module):
    def __init__(self, in_channels, num_hiddens, num_residual_layers, num_residual_hiddens):
        super(ResidualStack, self).__init__()  # noqa: UP008
        self._num_residual_layers = num_residual_layers
        self._layers = nn.ModuleList([Residual(in_channels, num_hiddens, num_residual_hiddens)
                                      for _ in range(self._num_residual_layers)])

    def forward(self, x):
        for i in range(self._num_residual_layers):
            x = self._layers[i](x)
        return F.relu(x)


class Encoder(nn.Module):
    def __init__(self, in_channels, num_hiddens, num_residual_layers, num_residual_hiddens):
        super(Encoder, self).__init__()  # noqa: UP008
        self._conv_1 = nn.Conv2d(in_channels, num_hiddens // 2, kernel_size=4, stride=2, padding=1)
        self._conv_2 = nn.Conv2d(num_hiddens // 2, num_hiddens, kernel_size=4, stride=2, padding=1)
        self._conv_3 = nn.Conv2d(num_hiddens, num_hiddens, kernel_size=3, stride=1, padding=1)
        self._residual_stack = ResidualStack(num_hiddens, num_hiddens, num_residual_layers, num_residual_hiddens)

    def forward(self, inputs):
        x = F.relu(self._conv_1(inputs))
        x = F.relu(self._conv_2(x))
        x = self._conv_3(x)
        return self._residual_stack(x)


class Decoder(nn.Module):
    def __init__(self, in_channels, num_hiddens, num_residual_layers, num_residual_hiddens):
        super(Decoder, self).__init__()  # noqa: UP008
        self._conv_1 = nn.Conv2d(in_channels, num_hiddens, kernel_size=3, stride=1, padding=1)
        self._residual_stack = ResidualStack(num_hiddens, num_hiddens, num_residual_layers, num_residual_hiddens)
        self._conv_trans_1 = nn.ConvTranspose2d(num_hiddens, num_hiddens // 2, kernel_size=4, stride=2, padding=1)
        self._conv_trans_2 = nn.ConvTranspose2d(num_hiddens // 2, 1, kernel_size=4, stride=2, padding=1)

    def forward(self, inputs):
        x = self._conv_1(inputs)
        x = self._residual_stack(x)
        x = F.relu(self._conv_trans_1(x))
        return self._conv_trans_2(x)


class Model(nn.Module):
    def __init__(self, num_hiddens, num_residual_layers, num_residual_hiddens, num_embeddings, embedding_dim,
                 commitment_cost, decay=0):
        super(Model, self).__init__()  # noqa: UP008
        self._encoder = Encoder(1, num_hiddens, num_residual_layers, num_residual_hiddens)
        self._pre_vq_conv = nn.Conv2d(num_hiddens, embedding_dim, kernel_size=1, stride=1)
        self._commitment_cost = commitment_cost
        if decay > 0.0:
            self._vq_vae = Quantize(embedding_dim, num_embeddings, decay=decay)
        else:
            self._vq_vae = VectorQuantizer(num_embeddings, embedding_dim, commitment_cost)
        self._decoder = Decoder(embedding_dim, num_hiddens, num_residual_layers, num_residual_hiddens)

    def forward(self, x):
        z = self._encoder(x)
        z = self._pre_vq_conv(z)
        if isinstance(self._vq_vae, Quantize):
            # rosinality's VQVAE: quantise channels-last, then back to BCHW
            quantized, diff, embed_ind = self._vq_vae(z.permute(0, 2, 3, 1))
            quantized = quantized.permute(0, 3, 1, 2)
            loss = self._commitment_cost * diff
            avg_probs = torch.bincount(embed_ind.flatten(), minlength=self._vq_vae.n_embed).float()
            avg_probs = avg_probs / embed_ind.numel()
            perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        else:
            loss, quantized, perplexity, _ = self._vq_vae(z)
        x_recon = self._decoder(quantized)
        return loss, x_recon, perplexity


# ----------------------------------------------------------------- checks before training
vq = VectorQuantizer(16, 8, 0.25)
print("codebook init in [-1/K, 1/K]:", bool(vq._embedding.weight.abs().max() <= 1 / 16))
z = torch.randn(2, 8, 4, 4, requires_grad=True)
vq_loss, quantized, perplexity, encodings = vq(z)
flat = z.permute(0, 2, 3, 1).reshape(-1, 8)
indices = torch.cdist(flat, vq._embedding.weight).argmin(1)
print("scatter_ encodings equal one_hot:",
      torch.equal(encodings, F.one_hot(indices, num_classes=16).float()),
      "rows sum to one:", bool((encodings.sum(1) == 1).all()))
print("quantized shape:", tuple(quantized.shape), "contiguous:", quantized.is_contiguous())
quantized.sum().backward()
print("straight-through gradient is the identity:", torch.equal(z.grad, torch.ones_like(z)))
print("forward value is the codebook's:", torch.allclose(
    quantized.permute(0, 2, 3, 1).reshape(-1, 8), vq._embedding.weight[indices], atol=1e-6))
zalando_ema = VectorQuantizerEMA(16, 8, 0.25, decay=0.99)
old_weight = zalando_ema._embedding.weight
ema_loss, ema_quantized, _, _ = zalando_ema(torch.randn(2, 8, 4, 4))
print("zalando EMA: new codebook Parameter:", zalando_ema._embedding.weight is not old_weight,
      "leaf:", zalando_ema._embedding.weight.is_leaf,
      "cluster size sums to", round(zalando_ema._ema_cluster_size.sum().item(), 3),
      "buffer:", "_ema_cluster_size" in dict(zalando_ema.named_buffers()))
ema_q = Quantize(8, 16)
ema_q.train()
before = ema_q.embed.clone()
out, diff, ind = ema_q(torch.randn(4, 4, 4, 8))
out, diff, ind = ema_q(torch.randn(4, 4, 4, 8))
print("EMA codebook moved under no_grad:", not torch.equal(before, ema_q.embed),
      "initialised:", bool(ema_q.initted),
      "buffers need no grad:", not ema_q.embed.requires_grad, "codes shape:", tuple(ind.shape))


# ----------------------------------------------------------------- training
def train(model, steps, batch_size=32, lr=2e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, amsgrad=False)
    model.train()
    train_res_recon_error, train_res_perplexity = [], []
    for i in range(steps):
        idx = torch.randint(0, train_images.shape[0], (batch_size,))
        data = train_images[idx]
        optimizer.zero_grad()
        vq_loss, data_recon, perplexity = model(data)
        recon_error = F.mse_loss(data_recon, data) / data_variance
        loss = recon_error + vq_loss
        loss.backward()
        optimizer.step()
        train_res_recon_error.append(recon_error.item())
        train_res_perplexity.append(perplexity.item())
        if (i + 1) % 100 == 0:
            print("%d iterations" % (i + 1))  # noqa: UP031  (the notebook's spelling)
            print("recon_error: %.3f" % np.mean(train_res_recon_error[-100:]))  # noqa: UP031
            print("perplexity: %.3f" % np.mean(train_res_perplexity[-100:]))  # noqa: UP031
    return model


def evaluate(model):
    model.eval()
    with torch.no_grad():
        vq_loss, recon, perplexity = model(test_images)
        return (F.mse_loss(recon, test_images) / data_variance).item(), perplexity.item()


results = {}
for name, decay in (("vq", 0.0), ("ema", 0.9)):
    print(f"--- {name}")
    model = Model(num_hiddens=32, num_residual_layers=1, num_residual_hiddens=8, num_embeddings=32,
                  embedding_dim=8, commitment_cost=0.25, decay=decay)
    train(model, 200)
    results[name] = evaluate(model)
    print(f"{name} test recon error {results[name][0]:.4f} perplexity {results[name][1]:.2f}")

print(f"FINAL vq_recon={results['vq'][0]:.4f} vq_perplexity={results['vq'][1]:.3f} "
      f"ema_recon={results['ema'][0]:.4f} ema_perplexity={results['ema'][1]:.3f}")
