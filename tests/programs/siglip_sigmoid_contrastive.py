"""SigLIP (Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training") against the CLIP softmax
loss, as the PyTorch reimplementations (open_clip's ``SigLipLoss``, the paper's pseudo-code) write
it, on synthetic image-caption pairs.

Two small encoders (a conv net over 3x10x10 images, a masked-mean bag of ``nn.Embedding`` tokens
for captions) map into one space, both ``F.normalize``-d. The sigmoid loss has a learnable
temperature ``t'`` (log-parameterised, ``t = exp(t')``, initial ``log 10``) and bias (initial -10):
``logits = img @ txt.t() * t_prime.exp() + b``, ``labels = 2 * torch.eye(n) - 1``,
``loss = -F.logsigmoid(labels * logits).sum() / n``; the paper's chunked form (each block of
negatives summed separately, positives only on the diagonal blocks) is checked to give the same
loss. The CLIP baseline: ``logit_scale`` initial ``log(1 / 0.07)``, symmetric ``F.cross_entropy``
over ``torch.arange(n)``. Both are trained at batch sizes 8 and 32, and scored by zero-shot
retrieval, recall@1 and @5 by ``topk`` in both directions over a held-out set.

The data: a latent of four continuous attributes (blob x, y, size, hue) renders a noisy image; the
caption names each attribute quantised to one of six bins, in shuffled order with filler words.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, BINS, N_FILLERS, CAPTION_LEN = 10, 6, 6, 8
PAD = 0
VOCAB = 1 + 4 * BINS + N_FILLERS


def make_pairs(n):
    z = rng.uniform(0.0, 1.0, size=(n, 4))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    images = rng.normal(0.0, 0.15, size=(n, 3, SIZE, SIZE))
    captions = np.full((n, CAPTION_LEN), PAD, dtype=np.int64)
    for i, (x, y, s, hue) in enumerate(z):
        width = 0.08 + 0.12 * s
        blob = np.exp(-((xx - (0.15 + 0.7 * x)) ** 2 + (yy - (0.15 + 0.7 * y)) ** 2) / (2 * width ** 2))
        colour = np.array([np.cos(2 * np.pi * hue), np.cos(2 * np.pi * (hue - 1 / 3)), np.cos(2 * np.pi * (hue - 2 / 3))])
        images[i] += colour[:, None, None] * blob
        words = [1 + a * BINS + min(int(v * BINS), BINS - 1) for a, v in enumerate((x, y, s, hue))]
        words += list(1 + 4 * BINS + rng.integers(0, N_FILLERS, size=rng.integers(0, 4)))
        rng.shuffle(words)
        captions[i, :len(words)] = words
    return torch.tensor(images, dtype=torch.float32), torch.from_numpy(captions)


class ImageEncoder(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, dim),
        )

    def forward(self, x):
        return self.net(x)


class TextEncoder(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 32, padding_idx=PAD)
        self.proj = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, dim))

    def forward(self, tokens):
        mask = (tokens != PAD).unsqueeze(-1).float()
        pooled = (self.embedding(tokens) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.proj(pooled)


class DualEncoder(nn.Module):
    def __init__(self, loss_type, dim=32):
        super().__init__()
        self.loss_type = loss_type
        self.image_encoder, self.text_encoder = ImageEncoder(dim), TextEncoder(dim)
        if loss_type == "sigmoid":
            self.t_prime = nn.Parameter(torch.tensor(math.log(10.0)))
            self.b = nn.Parameter(torch.tensor(-10.0))
        else:
            self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))

    def encode(self, images, captions):
        return F.normalize(self.image_encoder(images), dim=-1), F.normalize(self.text_encoder(captions), dim=-1)

    def loss(self, images, captions):
        img, txt = self.encode(images, captions)
        n = img.shape[0]
        if self.loss_type == "sigmoid":
            logits = img @ txt.t() * self.t_prime.exp() + self.b
            labels = 2 * torch.eye(n) - 1
            return -F.logsigmoid(labels * logits).sum() / n
        logits = self.logit_scale.exp() * img @ txt.t()
        targets = torch.arange(n)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def chunked_sigmoid_loss(img, txt, t_prime, b, chunks):
    """The paper's device-parallel form: each text chunk visits every image chunk in turn."""
    n = img.shape[0]
    total = torch.zeros(())
    for i, img_chunk in enumerate(img.chunk(chunks)):
        for j, txt_chunk in enumerate(txt.chunk(chunks)):
            logits = img_chunk @ txt_chunk.t() * t_prime.exp() + b
            labels = 2 * torch.eye(len(img_chunk)) - 1 if i == j else -torch.ones_like(logits)
            total = total + F.logsigmoid(labels * logits).sum()
    return -total / n


@torch.no_grad()
def recall_at(model, images, captions, ks=(1, 5)):
    model.eval()
    img, txt = model.encode(images, captions)
    model.train()
    sim = img @ txt.t()
    truth = torch.arange(len(img)).unsqueeze(1)
    out = {}
    for direction, scores in (("i2t", sim), ("t2i", sim.t())):
        top = scores.topk(max(ks), dim=1).indices
        for k in ks:
            out[f"{direction}@{k}"] = (top[:, :k] == truth).any(dim=1).float().mean().item()
    return out


train_images, train_captions = make_pairs(768)
test_images, test_captions = make_pairs(128)
print(f"images {tuple(train_images.shape)} captions {tuple(train_captions.shape)} vocab {VOCAB} "
      f"tokens per caption {(train_captions != PAD).sum(1).float().mean().item():.2f}")

probe = DualEncoder("sigmoid")
with torch.no_grad():
    img, txt = probe.encode(train_images[:32], train_captions[:32])
    print(f"unit norms {torch.allclose(img.norm(dim=-1), torch.ones(32))} "
          f"t {probe.t_prime.exp().item():.2f} b {probe.b.item():.1f} "
          f"initial loss {probe.loss(train_images[:32], train_captions[:32]).item():.3f}")
    full = probe.loss(train_images[:32], train_captions[:32])
    for chunks in (2, 4):
        chunked = chunked_sigmoid_loss(img, txt, probe.t_prime, probe.b, chunks)
        print(f"chunked over {chunks} devices equals the full loss {torch.allclose(full, chunked, rtol=1e-5)}")

STEPS = 240
results = {}
for batch_size in (8, 32):
    for loss_type in ("sigmoid", "softmax"):
        torch.manual_seed(seed + batch_size)
        model = DualEncoder(loss_type)
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
        running = 0.0
        for step in range(1, STEPS + 1):
            idx = torch.randint(0, len(train_images), (batch_size,))
            loss = model.loss(train_images[idx], train_captions[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
            if step % 120 == 0:
                extra = (f"t {model.t_prime.exp().item():.2f} b {model.b.item():.2f}" if loss_type == "sigmoid"
                         else f"scale {model.logit_scale.exp().item():.2f}")
                print(f"[{loss_type} bs={batch_size}] step {step} loss {running / 120:.4f} {extra}")
                running = 0.0
        recall = recall_at(model, test_images, test_captions)
        results[(loss_type, batch_size)] = recall
        print(f"[{loss_type} bs={batch_size}] " + " ".join(f"{k} {v:.3f}" for k, v in recall.items()))

print("FINAL " + " ".join(
    f"{loss_type[:3]}{bs}_{key.replace('@', 'r')}={recall[key]:.4f}"
    for (loss_type, bs), recall in results.items() for key in ("i2t@1", "i2t@5", "t2i@1")))
