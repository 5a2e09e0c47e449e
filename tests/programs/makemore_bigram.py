"""Andrej Karpathy's "Neural Networks: Zero to Hero", lecture 2, makemore part 1: the bigram
character-level language model (karpathy/nn-zero-to-hero lectures/makemore/makemore_part1_bigrams.ipynb)
as the notebook runs it. The count model: ``N = torch.zeros((27, 27), dtype=torch.int32)`` filled by
``N[ix1, ix2] += 1``, ``p = N[0].float()``, names drawn by ``torch.multinomial(p, num_samples=1,
replacement=True, generator=g).item()`` from ``g = torch.Generator().manual_seed(2147483647)``,
``P = (N+1).float(); P /= P.sum(1, keepdims=True)`` (the ``keepdims`` spelling), the log likelihood
summed in a Python float from 0-d tensors and printed by ``f'{log_likelihood=}'``. Then the neural
network: ``F.one_hot(xs, num_classes=27).float()``, ``W = torch.randn((27, 27), generator=g,
requires_grad=True)``, ``logits.exp()``, ``counts / counts.sum(1, keepdims=True)``,
``-probs[torch.arange(num), ys].log().mean() + 0.01*(W**2).mean()``, ``W.grad = None``,
``W.data += -50 * W.grad`` and names sampled from the trained net.

A deterministic made-up list of names (syllables drawn by Python's ``random`` with a fixed seed)
stands in for names.txt; fewer gradient steps than the notebook's. Every draw here comes from the
seeded generator ``g``, as in the notebook, so the printed names do not depend on PROGRAM_SEED and
must come out exactly as torch's.
"""
# ruff: noqa: E741, B007, RUF001  (the notebook's own spelling)

import os
import random

import torch
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def make_names(count=320):
    """Name-like words from syllables; every letter a-z appears (the notebook's 27 characters)."""
    rng = random.Random(7)
    onsets = ["b", "br", "c", "ch", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "qu", "r", "s",
              "sh", "t", "th", "v", "w", "x", "y", "z", ""]
    vowels = ["a", "e", "i", "o", "u", "y", "ai", "ia", "ie", "ea"]
    codas = ["", "", "", "n", "l", "r", "s", "h", "x", "nn", "lyn", "ah", "el", "ie", "a", "o", "k", "z"]
    names = set()
    while len(names) < count:
        syllables = rng.choice([1, 2, 2, 2, 3])
        name = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables)) + rng.choice(codas)
        if 2 <= len(name) <= 10:
            names.add(name)
    return sorted(sorted(names), key=lambda name: rng.random())


words = make_names()
print(words[:10])
print(len(words))
print(min(len(w) for w in words))
print(max(len(w) for w in words))

# -- bigram counts in a dictionary
b = {}
for w in words:
    chs = ["<S>"] + list(w) + ["<E>"]
    for ch1, ch2 in zip(chs, chs[1:]):
        bigram = (ch1, ch2)
        b[bigram] = b.get(bigram, 0) + 1
print(sorted(b.items(), key=lambda kv: -kv[1])[:5])

# -- the counts in a 2-d int32 tensor
N = torch.zeros((27, 27), dtype=torch.int32)
chars = sorted(list(set("".join(words))))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}

for w in words:
    chs = ["."] + list(w) + ["."]
    for ch1, ch2 in zip(chs, chs[1:]):
        ix1 = stoi[ch1]
        ix2 = stoi[ch2]
        N[ix1, ix2] += 1

print(N[0])
print(N.dtype, N.sum().item(), N.max().item())
p = N[0].float()
p = p / p.sum()
print(p)

g = torch.Generator().manual_seed(2147483647)
ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
print(ix, itos[ix])

g = torch.Generator().manual_seed(2147483647)
p = torch.rand(3, generator=g)
p = p / p.sum()
print(p)
print(torch.multinomial(p, num_samples=100, replacement=True, generator=g))

P = (N + 1).float()
P /= P.sum(1, keepdims=True)
print(P.shape, P[0].sum().item())

g = torch.Generator().manual_seed(2147483647)
for i in range(10):
    out = []
    ix = 0
    while True:
        p = P[ix]
        ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
        out.append(itos[ix])
        if ix == 0:
            break
    print("".join(out))

# -- the quality of the model: the average negative log likelihood of the training set
log_likelihood = 0.0
n = 0
for w in words:
    chs = ["."] + list(w) + ["."]
    for ch1, ch2 in zip(chs, chs[1:]):
        ix1 = stoi[ch1]
        ix2 = stoi[ch2]
        prob = P[ix1, ix2]
        logprob = torch.log(prob)
        log_likelihood += logprob
        n += 1
print(f"{log_likelihood=}")
nll = -log_likelihood
print(f"{nll=}")
print(f"{nll/n}")
count_nll = (nll / n).item()

# -- the training set of bigrams (x, y) of the first word
xs, ys = [], []
for w in words[:1]:
    chs = ["."] + list(w) + ["."]
    for ch1, ch2 in zip(chs, chs[1:]):
        ix1 = stoi[ch1]
        ix2 = stoi[ch2]
        print(ch1, ch2)
        xs.append(ix1)
        ys.append(ix2)
xs = torch.tensor(xs)
ys = torch.tensor(ys)
print(xs, ys)

xenc = F.one_hot(xs, num_classes=27).float()
print(xenc.shape, xenc.dtype)
W = torch.randn((27, 1))
print((xenc @ W).shape)

logits = xenc @ W  # log-counts
counts = logits.exp()  # equivalent N
probs = counts / counts.sum(1, keepdims=True)
print(probs.shape)

# randomly initialize 27 neurons' weights. each neuron receives 27 inputs
g = torch.Generator().manual_seed(2147483647)
W = torch.randn((27, 27), generator=g)
xenc = F.one_hot(xs, num_classes=27).float()  # input to the network: one-hot encoding
logits = xenc @ W  # predict log-counts
counts = logits.exp()  # counts, equivalent to N
probs = counts / counts.sum(1, keepdims=True)  # probabilities for next character
print(probs.shape, probs[0].sum().item())

nlls = torch.zeros(len(xs))
for i in range(len(xs)):
    # i-th bigram:
    x = xs[i].item()  # input character index
    y = ys[i].item()  # label character index
    print("--------")
    print(f"bigram example {i+1}: {itos[x]}{itos[y]} (indexes {x},{y})")
    print("input to the neural net:", x)
    print("output probabilities from the neural net:", probs[i])
    print("label (actual next character):", y)
    p = probs[i, y]
    print("probability assigned by the net to the the correct character:", p.item())
    logp = torch.log(p)
    print("log likelihood:", logp.item())
    nll = -logp
    print("negative log likelihood:", nll.item())
    nlls[i] = nll

print("=========")
print("average negative log likelihood, i.e. loss =", nlls.mean().item())

# --------- !!! OPTIMIZATION !!! yay --------------
g = torch.Generator().manual_seed(2147483647)
W = torch.randn((27, 27), generator=g, requires_grad=True)
for k in range(3):
    # forward pass
    xenc = F.one_hot(xs, num_classes=27).float()
    logits = xenc @ W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    loss = -probs[torch.arange(len(xs)), ys].log().mean()
    print(loss.item())
    # backward pass
    W.grad = None  # set to zero the gradient
    loss.backward()
    W.data += -0.1 * W.grad

# --------- !!! OPTIMIZATION !!! yay, but this time actually --------------
# create the dataset
xs, ys = [], []
for w in words:
    chs = ["."] + list(w) + ["."]
    for ch1, ch2 in zip(chs, chs[1:]):
        ix1 = stoi[ch1]
        ix2 = stoi[ch2]
        xs.append(ix1)
        ys.append(ix2)
xs = torch.tensor(xs)
ys = torch.tensor(ys)
num = xs.nelement()
print("number of examples: ", num)

# initialize the 'network'
g = torch.Generator().manual_seed(2147483647)
W = torch.randn((27, 27), generator=g, requires_grad=True)

# gradient descent
for k in range(60):
    # forward pass
    xenc = F.one_hot(xs, num_classes=27).float()  # input to the network: one-hot encoding
    logits = xenc @ W  # predict log-counts
    counts = logits.exp()  # counts, equivalent to N
    probs = counts / counts.sum(1, keepdims=True)  # probabilities for next character
    loss = -probs[torch.arange(num), ys].log().mean() + 0.01 * (W**2).mean()
    if k % 10 == 0:
        print(loss.item())

    # backward pass
    W.grad = None  # set to zero the gradient
    loss.backward()

    # update
    W.data += -50 * W.grad
print(loss.item())
nn_loss = loss.item()

# finally, sample from the 'neural net' model
g = torch.Generator().manual_seed(2147483647)
for i in range(10):
    out = []
    ix = 0
    while True:
        xenc = F.one_hot(torch.tensor([ix]), num_classes=27).float()
        logits = xenc @ W  # predict log-counts
        counts = logits.exp()  # counts, equivalent to N
        p = counts / counts.sum(1, keepdims=True)  # probabilities for next character
        ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
        out.append(itos[ix])
        if ix == 0:
            break
    print("".join(out))

print(f"FINAL count_nll={count_nll:.4f} nn_loss={nn_loss:.4f}")
