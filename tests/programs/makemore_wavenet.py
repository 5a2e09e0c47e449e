"""Andrej Karpathy's "Neural Networks: Zero to Hero", lecture 6, makemore part 5: building a WaveNet
(karpathy/nn-zero-to-hero lectures/makemore/makemore_part5_cnn1.ipynb) as the notebook runs it: the
hand-written layers ``Linear``, ``BatchNorm1d`` taking 3-d input over ``dim = (0, 1)``, ``Tanh``,
``Embedding`` (``self.weight[IX]``), ``FlattenConsecutive`` (``x.view(B, T//self.n, C*self.n)``, then
``x.squeeze(1)`` when ``x.shape[1] == 1``) and ``Sequential``; ``torch.manual_seed(42)`` before the
model; the hierarchical network over ``block_size = 8``, ``model.layers[-1].weight *= 0.1`` under
``torch.no_grad()``, minibatches by ``torch.randint(0, Xtr.shape[0], (batch_size,))``, the loss curve
``torch.tensor(lossi).view(-1, 100).mean(1)`` (100 in place of the notebook's 1000 for the short run),
``layer.training = False`` for evaluation and sampling, the layer-by-layer ``tuple(layer.out.shape)``
printout, and the notebook's shape demos (``torch.cat([e[:, ::2, :], e[:, 1::2, :]], dim=2)`` against
``e.view(4, 4, 20)``, a matmul over a 3-d batch).

A deterministic made-up list of names stands in for names.txt; 500 steps in place of 200000.
``torch.manual_seed(42)`` (the notebook's) fixes the model and the run whatever PROGRAM_SEED is;
the sampled names are printed by length (training lets float32 last bits grow).
"""
# ruff: noqa: E741, B007, C414, RUF005, E702, E703  (the notebook's own spelling)

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
print(len(words))
print(words[:8])

# build the vocabulary of characters and mappings to/from integers
chars = sorted(list(set("".join(words))))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}
vocab_size = len(itos)
print(itos)
print(vocab_size)

# build the dataset
block_size = 8  # context length: how many characters do we take to predict the next one?


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

Xtr, Ytr = build_dataset(words[:n1])  # 80%
Xdev, Ydev = build_dataset(words[n1:n2])  # 10%
Xte, Yte = build_dataset(words[n2:])  # 10%


for x, y in zip(Xtr[:20], Ytr[:20]):
    print("".join(itos[ix.item()] for ix in x), "-->", itos[y.item()])


# Near copy paste of the layers we have developed in Part 3

# -----------------------------------------------------------------------------------------------
class Linear:

    def __init__(self, fan_in, fan_out, bias=True):
        self.weight = torch.randn((fan_in, fan_out)) / fan_in**0.5  # note: kaiming init
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x):
        self.out = x @ self.weight
        if self.bias is not None:
            self.out += self.bias
        return self.out

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


# -----------------------------------------------------------------------------------------------
class BatchNorm1d:

    def __init__(self, dim, eps=1e-5, momentum=0.1):
        self.eps = eps
        self.momentum = momentum
        self.training = True
        # parameters (trained with backprop)
        self.gamma = torch.ones(dim)
        self.beta = torch.zeros(dim)
        # buffers (trained with a running 'momentum update')
        self.running_mean = torch.zeros(dim)
        self.running_var = torch.ones(dim)

    def __call__(self, x):
        # calculate the forward pass
        if self.training:
            if x.ndim == 2:
                dim = 0
            elif x.ndim == 3:
                dim = (0, 1)
            xmean = x.mean(dim, keepdim=True)  # batch mean
            xvar = x.var(dim, keepdim=True)  # batch variance
        else:
            xmean = self.running_mean
            xvar = self.running_var
        xhat = (x - xmean) / torch.sqrt(xvar + self.eps)  # normalize to unit variance
        self.out = self.gamma * xhat + self.beta
        # update the buffers
        if self.training:
            with torch.no_grad():
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * xmean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * xvar
        return self.out

    def parameters(self):
        return [self.gamma, self.beta]


# -----------------------------------------------------------------------------------------------
class Tanh:
    def __call__(self, x):
        self.out = torch.tanh(x)
        return self.out

    def parameters(self):
        return []


# -----------------------------------------------------------------------------------------------
class Embedding:

    def __init__(self, num_embeddings, embedding_dim):
        self.weight = torch.randn((num_embeddings, embedding_dim))

    def __call__(self, IX):
        self.out = self.weight[IX]
        return self.out

    def parameters(self):
        return [self.weight]


# -----------------------------------------------------------------------------------------------
class FlattenConsecutive:

    def __init__(self, n):
        self.n = n

    def __call__(self, x):
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        self.out = x
        return self.out

    def parameters(self):
        return []


# -----------------------------------------------------------------------------------------------
class Sequential:

    def __init__(self, layers):
        self.layers = layers

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        self.out = x
        return self.out

    def parameters(self):
        # get parameters of all layers and stretch them out into one list
        return [p for layer in self.layers for p in layer.parameters()]


torch.manual_seed(42);  # seed rng for reproducibility

# the notebook's shape demos
e = torch.randn(4, 8, 10)  # goal: want this to be (4, 4, 20) where consecutive 10-d vectors get concatenated
explicit = torch.cat([e[:, ::2, :], e[:, 1::2, :]], dim=2)  # (4, 4, 20)
print(explicit.shape, (e.view(4, 4, 20) == explicit).all().item())
print((torch.randn(4, 5, 6, 80) @ torch.randn(80, 200) + torch.randn(200)).shape)
print(torch.randn(4, 80).view(4, -1).shape, torch.randn(4, 4, 20).mean((0, 1), keepdim=True).shape)

torch.manual_seed(42);  # seed rng for reproducibility

# hierarchical network
n_embd = 24  # the dimensionality of the character embedding vectors
n_hidden = 128  # the number of neurons in the hidden layer of the MLP
model = Sequential([
    Embedding(vocab_size, n_embd),
    FlattenConsecutive(2), Linear(n_embd * 2, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh(),
    FlattenConsecutive(2), Linear(n_hidden * 2, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh(),
    FlattenConsecutive(2), Linear(n_hidden * 2, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh(),
    Linear(n_hidden, vocab_size),
])

# parameter init
with torch.no_grad():
    model.layers[-1].weight *= 0.1  # last layer make less confident

parameters = model.parameters()
print(sum(p.nelement() for p in parameters))  # number of parameters in total
for p in parameters:
    p.requires_grad = True

# look at a batch of just 4 examples
ix = torch.randint(0, Xtr.shape[0], (4,))
Xb, Yb = Xtr[ix], Ytr[ix]
logits = model(Xb)
print(Xb.shape)
for layer in model.layers:
    print(layer.__class__.__name__, ":", tuple(layer.out.shape))
print(model.layers[3].running_mean.shape)  # (1, 1, 128) from the 3-d batch

# same optimization as last time
max_steps = 500
batch_size = 32
lossi = []

for i in range(max_steps):

    # minibatch construct
    ix = torch.randint(0, Xtr.shape[0], (batch_size,))
    Xb, Yb = Xtr[ix], Ytr[ix]  # batch X,Y

    # forward pass
    logits = model(Xb)
    loss = F.cross_entropy(logits, Yb)  # loss function

    # backward pass
    for p in parameters:
        p.grad = None
    loss.backward()

    # update: simple SGD
    lr = 0.1 if i < 400 else 0.01  # step learning rate decay
    for p in parameters:
        p.data += -lr * p.grad

    # track stats
    if i % 100 == 0:  # print every once in a while
        print(f"{i:7d}/{max_steps:7d}: {loss.item():.4f}")
    lossi.append(loss.log10().item())

curve = torch.tensor(lossi).view(-1, 100).mean(1)
print(curve.shape, [round(v, 2) for v in curve.tolist()])

# put layers into eval mode (needed for batchnorm especially)
for layer in model.layers:
    layer.training = False


# evaluate the loss
@torch.no_grad()  # this decorator disables gradient tracking inside pytorch
def split_loss(split):
    x, y = {
        "train": (Xtr, Ytr),
        "val": (Xdev, Ydev),
        "test": (Xte, Yte),
    }[split]
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    print(split, loss.item())
    return loss.item()


train_loss = split_loss("train")
val_loss = split_loss("val")

# sample from the model
lengths = []
for _ in range(20):

    out = []
    context = [0] * block_size  # initialize with all ...
    while True:
        # forward pass the neural net
        logits = model(torch.tensor([context]))
        probs = F.softmax(logits, dim=1)
        # sample from the distribution
        ix = torch.multinomial(probs, num_samples=1).item()
        # shift the context window and track the samples
        context = context[1:] + [ix]
        out.append(ix)
        # if we sample the special '.' token, break
        if ix == 0:
            break

    lengths.append(len(out))
    print("sampled a name of length", len("".join(itos[i] for i in out)))

print(f"FINAL train_loss={train_loss:.4f} val_loss={val_loss:.4f} mean_length={sum(lengths) / len(lengths):.2f}")
