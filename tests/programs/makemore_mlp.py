"""Andrej Karpathy's "Neural Networks: Zero to Hero", lecture 3, makemore part 2: the Bengio et al.
2003 MLP language model (karpathy/nn-zero-to-hero lectures/makemore/makemore_part2_mlp.ipynb) as the
notebook runs it: the dataset of ``block_size = 3`` contexts, a 2-d embedding ``C[X]`` with
``F.one_hot(torch.tensor(5), num_classes=27).float() @ C``, ``torch.cat(torch.unbind(emb, 1), 1)``,
``a.view(3, 3, 2)`` and ``a.storage()``, ``emb.view(-1, 6) @ W1 + b1``, the hand-written loss
against ``F.cross_entropy``; then ``build_dataset`` on a ``random.seed(42); random.shuffle(words)``
80/10/10 split, ``g = torch.Generator().manual_seed(2147483647)`` parameters (``C = torch.randn((27,
10), generator=g)``...), ``p.requires_grad = True``, the learning-rate search over ``lre =
torch.linspace(-3, 0, 1000); lrs = 10**lre`` with minibatches ``torch.randint(0, Xtr.shape[0], (32,))``,
training with ``p.data += -lr * p.grad`` and a step decay, ``lossi.append(loss.log10().item())``,
train/dev losses under ``torch.no_grad()`` and names sampled with ``torch.multinomial(probs,
num_samples=1, generator=g)`` from ``manual_seed(2147483647 + 10)``.

A deterministic made-up list of names stands in for names.txt; fewer steps than the notebook's
200000. The minibatches come from the global generator (PROGRAM_SEED), so the sampled names change
with the seed: they are printed by length.
"""
# ruff: noqa: E741, B007, C414  (the notebook's own spelling: sorted(list(set(...))), unused loop names)

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
print(words[:8])
print(len(words))

# build the vocabulary of characters and mappings to/from integers
chars = sorted(list(set("".join(words))))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}
print(itos)

# build the dataset
block_size = 3  # context length: how many characters do we take to predict the next one?
X, Y = [], []
for w in words[:5]:
    context = [0] * block_size
    for ch in w + ".":
        ix = stoi[ch]
        X.append(context)
        Y.append(ix)
        print("".join(itos[i] for i in context), "--->", itos[ix])
        context = context[1:] + [ix]  # crop and append

X = torch.tensor(X)
Y = torch.tensor(Y)
print(X.shape, X.dtype, Y.shape, Y.dtype)

C = torch.randn((27, 2))
print(C[5].tolist() == (F.one_hot(torch.tensor(5), num_classes=27).float() @ C).tolist())
print(C[[5, 6, 7]].shape, torch.equal(C[[5, 6, 7]][0], C[5]))
print(C[torch.tensor([5, 6, 7, 7, 7, 7])].shape)
print(C[X].shape)
print(X[13, 2], torch.equal(C[X][13, 2], C[X[13, 2]]))
emb = C[X]
print(emb.shape)

W1 = torch.randn((6, 100))
b1 = torch.randn(100)
print(torch.cat([emb[:, 0, :], emb[:, 1, :], emb[:, 2, :]], 1).shape)
print(len(torch.unbind(emb, 1)))
print(torch.cat(torch.unbind(emb, 1), 1).shape)
a = torch.arange(18)
print(a.shape)
print(a.view(2, 9))
print(a.view(9, 2))
print(a.view(3, 3, 2))
print(a.storage())
h = torch.tanh(emb.view(-1, 6) @ W1 + b1)
print(h.shape)
W2 = torch.randn((100, 27))
b2 = torch.randn(27)
logits = h @ W2 + b2
print(logits.shape)
counts = logits.exp()
prob = counts / counts.sum(1, keepdims=True)
print(prob.shape, prob[0].sum())
loss = -prob[torch.arange(X.shape[0]), Y].log().mean()
print(loss)
print(F.cross_entropy(logits, Y))

# ------------ now made respectable :) ---------------


def build_dataset(words):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]  # crop and append

    X = torch.tensor(X)
    Y = torch.tensor(Y)
    print(X.shape, Y.shape)
    return X, Y


random.seed(42)
random.shuffle(words)
n1 = int(0.8 * len(words))
n2 = int(0.9 * len(words))

Xtr, Ytr = build_dataset(words[:n1])
Xdev, Ydev = build_dataset(words[n1:n2])
Xte, Yte = build_dataset(words[n2:])

g = torch.Generator().manual_seed(2147483647)  # for reproducibility
C = torch.randn((27, 10), generator=g)
W1 = torch.randn((30, 200), generator=g)
b1 = torch.randn(200, generator=g)
W2 = torch.randn((200, 27), generator=g)
b2 = torch.randn(27, generator=g)
parameters = [C, W1, b1, W2, b2]
print(sum(p.nelement() for p in parameters))  # number of parameters in total
for p in parameters:
    p.requires_grad = True

lre = torch.linspace(-3, 0, 1000)
lrs = 10**lre
print(lre[0].item(), lre[-1].item(), lrs[0].item(), lrs[-1].item())

# the learning-rate search: one step at each of the 1000 rates, from a fresh copy of the parameters
lri = []
lossi = []
search = [p.detach().clone().requires_grad_() for p in parameters]
for i in range(1000):
    ix = torch.randint(0, Xtr.shape[0], (32,))
    emb = search[0][Xtr[ix]]  # (32, 3, 10)
    h = torch.tanh(emb.view(-1, 30) @ search[1] + search[2])  # (32, 200)
    logits = h @ search[3] + search[4]  # (32, 27)
    loss = F.cross_entropy(logits, Ytr[ix])
    for p in search:
        p.grad = None
    loss.backward()
    lr = lrs[i]
    for p in search:
        p.data += -lr * p.grad
    lri.append(lre[i])
    lossi.append(loss.item())
# the "plot" of loss against the exponent, smoothed over 50 steps
smoothed = torch.tensor(lossi).view(-1, 50).mean(1)
for k in range(0, 20, 4):
    print(f"lr exponent {lri[k * 50 + 25].item():.2f}: loss {smoothed[k].item():.3f}")
print(smoothed.shape, smoothed.argmin().item() < 20)

lri = []
lossi = []
stepi = []
for i in range(1500):
    # minibatch construct
    ix = torch.randint(0, Xtr.shape[0], (32,))

    # forward pass
    emb = C[Xtr[ix]]  # (32, 3, 10)
    h = torch.tanh(emb.view(-1, 30) @ W1 + b1)  # (32, 200)
    logits = h @ W2 + b2  # (32, 27)
    loss = F.cross_entropy(logits, Ytr[ix])

    # backward pass
    for p in parameters:
        p.grad = None
    loss.backward()

    # update
    lr = 0.1 if i < 1000 else 0.01
    for p in parameters:
        p.data += -lr * p.grad

    # track stats
    stepi.append(i)
    lossi.append(loss.log10().item())
    if i % 300 == 0:
        print(i, loss.item())
print(loss.item())
print(len(stepi), torch.tensor(lossi[-100:]).mean().item())


@torch.no_grad()
def split_loss(X, Y):
    emb = C[X]  # (N, 3, 10)
    h = torch.tanh(emb.view(-1, 30) @ W1 + b1)  # (N, 200)
    logits = h @ W2 + b2  # (N, 27)
    return F.cross_entropy(logits, Y)


train_loss = split_loss(Xtr, Ytr)
dev_loss = split_loss(Xdev, Ydev)
print(train_loss)
print(dev_loss)

# training a 2-d embedding would be visualised here: print a few rows instead
print(C[:3].shape, C.data[stoi["a"]].shape)

# sample from the model
g = torch.Generator().manual_seed(2147483647 + 10)
lengths = []
for _ in range(20):
    out = []
    context = [0] * block_size  # initialize with all ...
    while True:
        emb = C[torch.tensor([context])]  # (1,block_size,d)
        h = torch.tanh(emb.view(1, -1) @ W1 + b1)
        logits = h @ W2 + b2
        probs = F.softmax(logits, dim=1)
        ix = torch.multinomial(probs, num_samples=1, generator=g).item()
        context = context[1:] + [ix]
        out.append(ix)
        if ix == 0:
            break
    lengths.append(len(out))
    print("sampled a name of length", len("".join(itos[i] for i in out)))

print(f"FINAL train_loss={train_loss.item():.4f} dev_loss={dev_loss.item():.4f} "
      f"mean_length={sum(lengths) / len(lengths):.2f}")
