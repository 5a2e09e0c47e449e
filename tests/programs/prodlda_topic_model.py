"""ProdLDA (Srivastava & Sutton 2017, "Autoencoding Variational Inference for Topic Models") in the
style of the AVITM PyTorch port and Pyro's ProdLDA tutorial, on a bag-of-words corpus drawn from
planted topics.

The encoder is ``nn.Linear`` + ``F.softplus`` twice with ``nn.Dropout``, then mean and log-variance heads
each normalised by ``nn.BatchNorm1d(K, affine=False)``. The Dirichlet(alpha) prior is replaced by its
Laplace approximation, a logistic normal whose mean and variance AVITM computes from ``torch.log(alpha)``
and its mean; the posterior is sampled by ``torch.distributions.Normal(mu, sigma).rsample()`` and mapped to
topic proportions by ``F.softmax``. The product-of-experts decoder is
``F.log_softmax(bn(beta(theta)), dim=1)`` with ``nn.BatchNorm1d(V, affine=False)`` and a bias-free
``beta``; the loss is ``-(bow * log_probs).sum(1)`` plus the closed-form KL of two diagonal Gaussians,
trained by Adam with ``betas=(0.99, 0.999)``. After ``model.eval()`` the topic-word matrix (from
``beta.weight.T`` through the decoder) is matched to the planted topics by cosine similarity, once by a
normalised matmul and once by ``torch.cdist`` of unit vectors; the two routes must agree.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

NUM_TOPICS, VOCAB, NUM_DOCS, DOC_LEN = 5, 100, 1200, 60


def make_corpus():
    # each planted topic puts most of its mass on its own block of 20 words, a little everywhere else
    topics = np.full((NUM_TOPICS, VOCAB), 0.02 / VOCAB)
    for k in range(NUM_TOPICS):
        topics[k, k * 20:(k + 1) * 20] += rng.dirichlet(np.full(20, 1.0)) * 0.98
    topics /= topics.sum(1, keepdims=True)
    doc_topics = rng.dirichlet(np.full(NUM_TOPICS, 0.3), size=NUM_DOCS)
    word_probs = doc_topics @ topics
    counts = np.stack([rng.multinomial(DOC_LEN, p / p.sum()) for p in word_probs])
    return torch.from_numpy(counts.astype(np.float32)), torch.from_numpy(topics.astype(np.float32))


class Encoder(nn.Module):
    def __init__(self, vocab_size, num_topics, hidden, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(vocab_size, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fcmu = nn.Linear(hidden, num_topics)
        self.fclv = nn.Linear(hidden, num_topics)
        # NB: BatchNorm for mu and logvar keeps the posterior from collapsing onto the prior
        self.bnmu = nn.BatchNorm1d(num_topics, affine=False)
        self.bnlv = nn.BatchNorm1d(num_topics, affine=False)

    def forward(self, inputs):
        h = F.softplus(self.fc1(inputs))
        h = F.softplus(self.fc2(h))
        h = self.drop(h)
        logtheta_loc = self.bnmu(self.fcmu(h))
        logtheta_logvar = self.bnlv(self.fclv(h))
        return logtheta_loc, logtheta_logvar


class Decoder(nn.Module):
    def __init__(self, vocab_size, num_topics, dropout):
        super().__init__()
        self.beta = nn.Linear(num_topics, vocab_size, bias=False)
        self.bn = nn.BatchNorm1d(vocab_size, affine=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, inputs):
        inputs = self.drop(inputs)
        # the log-softmax of a normalised weighted sum of topic logits: a product of experts
        return F.log_softmax(self.bn(self.beta(inputs)), dim=1)


class ProdLDA(nn.Module):
    def __init__(self, vocab_size, num_topics, hidden=64, dropout=0.2, alpha=1.0):
        super().__init__()
        self.num_topics = num_topics
        self.encoder = Encoder(vocab_size, num_topics, hidden, dropout)
        self.decoder = Decoder(vocab_size, num_topics, dropout)
        # Laplace approximation of Dirichlet(alpha) in the softmax basis (AVITM)
        a = torch.full((1, num_topics), alpha)
        prior_mean = torch.log(a) - torch.log(a).mean(1, keepdim=True)
        prior_var = (1.0 / a) * (1 - 2.0 / num_topics) + (1.0 / (num_topics * num_topics)) * (1.0 / a).sum(1, keepdim=True)
        self.register_buffer("prior_mean", prior_mean)
        self.register_buffer("prior_var", prior_var)
        self.register_buffer("prior_logvar", prior_var.log())

    def forward(self, bow):
        mu, logvar = self.encoder(bow)
        sigma = (0.5 * logvar).exp()
        z = Normal(mu, sigma).rsample() if self.training else mu
        theta = F.softmax(z, dim=1)
        log_probs = self.decoder(theta)
        return log_probs, mu, logvar

    def kl(self, mu, logvar):
        var_division = logvar.exp() / self.prior_var
        diff = mu - self.prior_mean
        diff_term = diff * diff / self.prior_var
        logvar_division = self.prior_logvar - logvar
        return 0.5 * ((var_division + diff_term + logvar_division).sum(1) - self.num_topics)

    def loss(self, bow):
        log_probs, mu, logvar = self(bow)
        nl = -(bow * log_probs).sum(1)
        kld = self.kl(mu, logvar)
        return (nl + kld).mean(), nl, kld

    def topic_words(self):
        """the topic-word distributions: each one-hot theta through beta (rows of ``beta.weight.T``) and
        the decoder's running batch statistics"""
        with torch.no_grad():
            return self.decoder(torch.eye(self.num_topics)).exp()


def perplexity(model, bow):
    model.eval()
    with torch.no_grad():
        _, nl, kld = model.loss(bow)
    model.train()
    return math.exp(((nl + kld).sum() / bow.sum()).item())


counts, planted = make_corpus()
train, test = counts[:1000], counts[1000:]
print(f"corpus {tuple(counts.shape)} words per doc {int(counts.sum(1)[0])} planted topics {tuple(planted.shape)}")

model = ProdLDA(VOCAB, NUM_TOPICS)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.99, 0.999))
batch_size, epochs = 100, 25
start_ppl = perplexity(model, test)
print(f"test perplexity before training {start_ppl:.2f}")
for epoch in range(epochs):
    perm = torch.randperm(train.shape[0])
    total, total_kl = 0.0, 0.0
    for i in range(0, train.shape[0], batch_size):
        bow = train[perm[i:i + batch_size]]
        loss, _, kld = model.loss(bow)
        assert kld.min().item() >= -1e-5, "KL of two Gaussians is non-negative"
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * bow.shape[0]
        total_kl += kld.sum().item()
    if epoch % 5 == 4:
        print(f"epoch {epoch + 1:2d} loss {total / train.shape[0]:.3f} kl {total_kl / train.shape[0]:.3f} "
              f"test perplexity {perplexity(model, test):.2f}")

model.eval()
final_ppl = perplexity(model, test)
model.eval()
_, _, test_kl = model.loss(test)
topic_word = model.topic_words()
assert topic_word.shape == (NUM_TOPICS, VOCAB) and model.decoder.beta.weight.T.shape == (NUM_TOPICS, VOCAB)
learned = F.normalize(topic_word, dim=1)
truth = F.normalize(planted, dim=1)
cos = truth @ learned.T
best_cos = cos.max(dim=1).values
via_cdist = 1 - torch.cdist(truth, learned) ** 2 / 2
route_err = (via_cdist - cos).abs().max().item()
top_words = topic_word.topk(5, dim=1).indices
print(f"dominant word block of each topic's top words {sorted((top_words // 20).mode(dim=1).values.tolist())}")
print(f"best-match cosine per planted topic {[round(c, 3) for c in best_cos.tolist()]}")
print(f"matmul and cdist cosines agree to {route_err:.1e}; test KL min {test_kl.min().item():.4f}")
assert route_err < 1e-4
assert test_kl.min().item() >= -1e-5
assert final_ppl < start_ppl

print(f"FINAL perplexity={final_ppl:.3f} topic_cos={best_cos.mean().item():.4f} "
      f"kl={test_kl.mean().item():.4f} ppl_ratio={final_ppl / start_ppl:.4f}")
