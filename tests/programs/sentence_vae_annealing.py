"""A sentence VAE (Bowman et al., "Generating Sentences from a Continuous Space") in the style of
timbmg/Sentence-VAE, on synthetic template sentences.

A GRU encoder reads the padded batch through ``pack_padded_sequence(..., enforce_sorted=False)``
and its last hidden state gives ``mean``/``logv``; ``z = mean + torch.randn_like(std) * std``
(the reparameterisation trick); the decoder GRU starts from ``latent2hidden(z)`` and reads the
``<sos>``-shifted sentence with word dropout (``torch.rand(...) < p`` positions that are not
``<pad>``/``<sos>`` replaced by ``<unk>`` with ``masked_fill``); the loss is
``F.cross_entropy(..., ignore_index=PAD, reduction='sum')`` plus the KL term weighted by the
logistic annealing schedule ``1 / (1 + exp(-k * (step - x0)))``. Greedy decoding from the prior and
from posterior means, and a linear interpolation between two sentences' latent codes.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SPECIALS = ["<pad>", "<unk>", "<sos>", "<eos>"]
SUBJECTS = ["the cat", "a dog", "my friend", "the old man", "a bird"]
VERBS = ["sees", "likes", "follows", "finds"]
OBJECTS = ["the ball", "a tree", "the red house", "some food", "the river"]
ENDINGS = ["", "today", "again", "in the park"]
words = sorted({w for phrase in SUBJECTS + VERBS + OBJECTS + ENDINGS for w in phrase.split()})
itos = SPECIALS + words
stoi = {w: i for i, w in enumerate(itos)}
PAD, UNK, SOS, EOS = (stoi[s] for s in SPECIALS)
VOCAB = len(itos)


def make_sentences(n):
    sentences = []
    for _ in range(n):
        parts = [SUBJECTS[rng.integers(len(SUBJECTS))], VERBS[rng.integers(len(VERBS))],
                 OBJECTS[rng.integers(len(OBJECTS))], ENDINGS[rng.integers(len(ENDINGS))]]
        sentences.append(" ".join(p for p in parts if p).split())
    return sentences


def encode(sentences):
    inputs = [torch.tensor([SOS] + [stoi[w] for w in s]) for s in sentences]
    targets = [torch.tensor([stoi[w] for w in s] + [EOS]) for s in sentences]
    lengths = torch.tensor([len(t) for t in targets])
    return (pad_sequence(inputs, batch_first=True, padding_value=PAD),
            pad_sequence(targets, batch_first=True, padding_value=PAD), lengths)


class SentenceVAE(nn.Module):
    def __init__(self, vocab, embed=24, hidden=48, latent=8, word_dropout=0.3):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=PAD)
        self.encoder = nn.GRU(embed, hidden, batch_first=True)
        self.decoder = nn.GRU(embed, hidden, batch_first=True)
        self.hidden2mean = nn.Linear(hidden, latent)
        self.hidden2logv = nn.Linear(hidden, latent)
        self.latent2hidden = nn.Linear(latent, hidden)
        self.outputs2vocab = nn.Linear(hidden, vocab)
        self.word_dropout = word_dropout
        self.latent = latent

    def encode(self, targets, lengths):
        packed = pack_padded_sequence(self.embedding(targets), lengths, batch_first=True, enforce_sorted=False)
        _, hidden = self.encoder(packed)
        hidden = hidden.squeeze(0)
        return self.hidden2mean(hidden), self.hidden2logv(hidden)

    def decode(self, inputs, z):
        if self.training and self.word_dropout > 0:
            drop = torch.rand(inputs.size()) < self.word_dropout
            drop = drop & (inputs != PAD) & (inputs != SOS)
            inputs = inputs.masked_fill(drop, UNK)
        hidden = self.latent2hidden(z).unsqueeze(0)
        outputs, _ = self.decoder(self.embedding(inputs), hidden)
        return self.outputs2vocab(outputs)

    def forward(self, inputs, targets, lengths):
        mean, logv = self.encode(targets, lengths)
        std = torch.exp(0.5 * logv)
        z = mean + torch.randn_like(std) * std
        return self.decode(inputs, z), mean, logv

    @torch.no_grad()
    def greedy(self, z, max_length=8):
        hidden = self.latent2hidden(z).unsqueeze(0)
        token = torch.full((z.size(0), 1), SOS, dtype=torch.long)
        generated = []
        for _ in range(max_length):
            output, hidden = self.decoder(self.embedding(token), hidden)
            token = self.outputs2vocab(output).argmax(-1)
            generated.append(token)
        return torch.cat(generated, dim=1)


def kl_weight(step, k=0.02, x0=150):
    return float(1 / (1 + np.exp(-k * (step - x0))))


def to_words(row):
    out = []
    for i in row.tolist():
        if i == EOS:
            break
        out.append(itos[i])
    return " ".join(out)


train_inputs, train_targets, train_lengths = encode(make_sentences(320))
test_inputs, test_targets, test_lengths = encode(make_sentences(64))
print(f"vocab {VOCAB} train {tuple(train_targets.shape)} lengths {train_lengths.min().item()}-{train_lengths.max().item()}")

model = SentenceVAE(VOCAB)
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
BATCH, step = 32, 0
for epoch in range(8):
    model.train()
    order = torch.randperm(len(train_targets))
    sums = [0.0, 0.0]
    for start in range(0, len(order), BATCH):
        index = order[start:start + BATCH]
        logits, mean, logv = model(train_inputs[index], train_targets[index], train_lengths[index])
        nll = F.cross_entropy(logits.reshape(-1, VOCAB), train_targets[index].reshape(-1), ignore_index=PAD, reduction="sum")
        kl = -0.5 * torch.sum(1 + logv - mean.pow(2) - logv.exp())
        loss = (nll + kl_weight(step) * kl) / len(index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        sums[0] += nll.item()
        sums[1] += kl.item()
    if epoch % 2 == 1:
        print(f"epoch {epoch} nll {sums[0] / len(order):.4f} kl {sums[1] / len(order):.4f} "
              f"kl weight {kl_weight(step):.4f}")

model.eval()
with torch.no_grad():
    mean, logv = model.encode(test_targets, test_lengths)
    logits = model.decode(test_inputs, mean)
    nll = F.cross_entropy(logits.reshape(-1, VOCAB), test_targets.reshape(-1), ignore_index=PAD, reduction="sum").item()
    kl = (-0.5 * torch.sum(1 + logv - mean.pow(2) - logv.exp())).item()
    valid = test_targets != PAD
    teacher_acc = (logits.argmax(-1)[valid] == test_targets[valid]).float().mean().item()
    decoded = model.greedy(mean, max_length=test_targets.size(1))
    exact = sum(to_words(d) == to_words(t) for d, t in zip(decoded, test_targets)) / len(test_targets)
    from_prior = model.greedy(torch.randn(4, model.latent))
    prior_valid = sum(any(to_words(row).startswith(s + " ") for s in SUBJECTS) for row in from_prior) / len(from_prior)
    steps = torch.linspace(0, 1, 5).unsqueeze(1)
    path = mean[0:1] * (1 - steps) + mean[1:2] * steps
    interpolated = model.greedy(path)
    ends_match = (to_words(interpolated[0]) == to_words(decoded[0])) + (to_words(interpolated[-1]) == to_words(decoded[1]))
elbo = -(nll + kl) / len(test_targets)
print(f"test nll per sentence {nll / len(test_targets):.4f} kl {kl / len(test_targets):.4f} elbo {elbo:.4f}")
print(f"prior samples {len(from_prior)} interpolation steps {len(interpolated)} ends match {ends_match}")
print(f"FINAL elbo={elbo:.4f} nll={nll / len(test_targets):.4f} kl={kl / len(test_targets):.4f} "
      f"token_acc={teacher_acc:.4f} greedy_exact={exact:.4f} prior_subject_ok={prior_valid:.4f}")
