"""Andrej Karpathy's "Neural Networks: Zero to Hero", lecture 4, makemore part 3: activations,
gradients and BatchNorm (karpathy/nn-zero-to-hero lectures/makemore/makemore_part3_bn.ipynb) as the
notebook runs it: the initial loss against ``-torch.tensor(1/27.0).log()``, the tanh saturation
``(h.abs() > 0.99)``, the ``torch.randn(1000, 10)`` / ``10**0.5`` scaling demo, the kaiming-scaled
``W1 = torch.randn(...) * (5/3)/((n_embd * block_size)**0.5)``, a hand-written batch norm
(``bnmeani = hpreact.mean(0, keepdim=True)``, ``bnstdi = hpreact.std(0, keepdim=True)``, running
statistics under ``torch.no_grad()``, calibrated after training), minibatches drawn by
``torch.randint(0, Xtr.shape[0], (batch_size,), generator=g)``; then the "PyTorch-ified" classes
``Linear``, ``BatchNorm1d`` (``x.var(0, keepdim=True)``, ``torch.sqrt(xvar + self.eps)``) and
``Tanh`` keeping ``.out``, ``layers[-1].gamma *= 0.1`` under ``torch.no_grad()``,
``layer.out.retain_grad()``, the update-to-data ratios ``((lr*p.grad).std() / p.data.std()).log10().item()``,
and the statistics the notebook plots, printed (``'%+.2f' % t.mean()`` of 0-d tensors,
``(t.abs() > 0.97).float().mean()*100``, ``torch.histogram(t, density=True)``, ``torch.histc``),
eval mode and names sampled with ``manual_seed(2147483647 + 10)``.

A deterministic made-up list of names stands in for names.txt; 300 steps of each training in
place of 200000 (the notebook itself breaks the second one after 1000). As in the notebook every
draw but one demo comes from the seeded generator ``g``, so the run does not depend on PROGRAM_SEED;
the sampled names are printed by length (training lets float32 last bits grow).
"""
# ruff: noqa: E741, B007, C414, UP031, RUF005  (the notebook's own spelling)

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
block_size = 3  # context length: how many characters do we take to predict the next one?


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

# the loss a uniform guess gets, and what over-confident random logits give
print(-torch.tensor(1 / 27.0).log())
logits = torch.tensor([0.0, 0.0, 0.0, 0.0])
probs = torch.softmax(logits, dim=0)
loss = -probs[2].log()
print(probs, loss)

# MLP revisited
n_embd = 10  # the dimensionality of the character embedding vectors
n_hidden = 200  # the number of neurons in the hidden layer of the MLP

g = torch.Generator().manual_seed(2147483647)  # for reproducibility
C = torch.randn((vocab_size, n_embd), generator=g)
W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5 / 3) / ((n_embd * block_size) ** 0.5)
# b1 = torch.randn(n_hidden, generator=g) * 0.01
W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.01
b2 = torch.randn(vocab_size, generator=g) * 0

# BatchNorm parameters
bngain = torch.ones((1, n_hidden))
bnbias = torch.zeros((1, n_hidden))
bnmean_running = torch.zeros((1, n_hidden))
bnstd_running = torch.ones((1, n_hidden))

parameters = [C, W1, W2, b2, bngain, bnbias]
print(sum(p.nelement() for p in parameters))  # number of parameters in total
for p in parameters:
    p.requires_grad = True

# same optimization as last time
max_steps = 300
batch_size = 32
lossi = []

for i in range(max_steps):
    # minibatch construct
    ix = torch.randint(0, Xtr.shape[0], (batch_size,), generator=g)
    Xb, Yb = Xtr[ix], Ytr[ix]  # batch X,Y

    # forward pass
    emb = C[Xb]  # embed the characters into vectors
    embcat = emb.view(emb.shape[0], -1)  # concatenate the vectors
    # Linear layer
    hpreact = embcat @ W1  # + b1 # hidden layer pre-activation
    # BatchNorm layer
    # -------------------------------------------------------------
    bnmeani = hpreact.mean(0, keepdim=True)
    bnstdi = hpreact.std(0, keepdim=True)
    hpreact = bngain * (hpreact - bnmeani) / bnstdi + bnbias
    with torch.no_grad():
        bnmean_running = 0.999 * bnmean_running + 0.001 * bnmeani
        bnstd_running = 0.999 * bnstd_running + 0.001 * bnstdi
    # -------------------------------------------------------------
    # Non-linearity
    h = torch.tanh(hpreact)  # hidden layer
    logits = h @ W2 + b2  # output layer
    loss = F.cross_entropy(logits, Yb)  # loss function

    # backward pass
    for p in parameters:
        p.grad = None
    loss.backward()

    # update
    lr = 0.1 if i < 200 else 0.01  # step learning rate decay
    for p in parameters:
        p.data += -lr * p.grad

    # track stats
    if i % 100 == 0:  # print every once in a while
        print(f"{i:7d}/{max_steps:7d}: {loss.item():.4f}")
    lossi.append(loss.log10().item())

print("saturated tanh units in the last batch: %.2f%%" % ((h.abs() > 0.99).float().mean() * 100))
print(torch.tensor(lossi).view(-1, 30).mean(1).shape)

# calibrate the batch norm at the end of training
with torch.no_grad():
    # pass the training set through
    emb = C[Xtr]
    embcat = emb.view(emb.shape[0], -1)
    hpreact = embcat @ W1  # + b1
    # measure the mean/std over the entire training set
    bnmean = hpreact.mean(0, keepdim=True)
    bnstd = hpreact.std(0, keepdim=True)
print(bnmean.shape, bnstd.shape)
print("running vs calibrated mean: max |diff| %.3f" % (bnmean - bnmean_running).abs().max())


@torch.no_grad()  # this decorator disables gradient tracking
def split_loss(split, mean, std):
    x, y = {
        "train": (Xtr, Ytr),
        "val": (Xdev, Ydev),
        "test": (Xte, Yte),
    }[split]
    emb = C[x]  # (N, block_size, n_embd)
    embcat = emb.view(emb.shape[0], -1)  # concat into (N, block_size * n_embd)
    hpreact = embcat @ W1  # + b1
    hpreact = bngain * (hpreact - mean) / std + bnbias
    h = torch.tanh(hpreact)  # (N, n_hidden)
    logits = h @ W2 + b2  # (N, vocab_size)
    loss = F.cross_entropy(logits, y)
    print(split, loss.item())
    return loss.item()


split_loss("train", bnmean, bnstd)
bn_val = split_loss("val", bnmean, bnstd)
split_loss("train", bnmean_running, bnstd_running)
split_loss("val", bnmean_running, bnstd_running)

# why the 1/sqrt(fan_in): a Gaussian through a random layer
x = torch.randn(1000, 10)
w = torch.randn(10, 200) / 10**0.5
y = x @ w
print("x std %.1f, y std %.1f" % (x.std(), y.std()))


# SUMMARY + PYTORCHIFYING -----------
class Linear:

    def __init__(self, fan_in, fan_out, bias=True):
        self.weight = torch.randn((fan_in, fan_out), generator=g) / fan_in**0.5
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x):
        self.out = x @ self.weight
        if self.bias is not None:
            self.out += self.bias
        return self.out

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


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
            xmean = x.mean(0, keepdim=True)  # batch mean
            xvar = x.var(0, keepdim=True)  # batch variance
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


class Tanh:
    def __call__(self, x):
        self.out = torch.tanh(x)
        return self.out

    def parameters(self):
        return []


n_embd = 10  # the dimensionality of the character embedding vectors
n_hidden = 100  # the number of neurons in the hidden layer of the MLP
g = torch.Generator().manual_seed(2147483647)  # for reproducibility

C = torch.randn((vocab_size, n_embd), generator=g)
layers = [
    Linear(n_embd * block_size, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh(),
    Linear(n_hidden, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh(),
    Linear(n_hidden, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh(),
    Linear(n_hidden, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh(),
    Linear(n_hidden, vocab_size, bias=False), BatchNorm1d(vocab_size),
]

with torch.no_grad():
    # last layer: make less confident
    layers[-1].gamma *= 0.1
    # all other layers: apply gain
    for layer in layers[:-1]:
        if isinstance(layer, Linear):
            layer.weight *= 5 / 3

parameters = [C] + [p for layer in layers for p in layer.parameters()]
print(sum(p.nelement() for p in parameters))  # number of parameters in total
for p in parameters:
    p.requires_grad = True

# same optimization as last time
max_steps = 200000
batch_size = 32
lossi = []
ud = []

for i in range(max_steps):

    # minibatch construct
    ix = torch.randint(0, Xtr.shape[0], (batch_size,), generator=g)
    Xb, Yb = Xtr[ix], Ytr[ix]  # batch X,Y

    # forward pass
    emb = C[Xb]  # embed the characters into vectors
    x = emb.view(emb.shape[0], -1)  # concatenate the vectors
    for layer in layers:
        x = layer(x)
    loss = F.cross_entropy(x, Yb)  # loss function

    # backward pass
    for layer in layers:
        layer.out.retain_grad()  # AFTER_DEBUG: would take out retain_graph
    for p in parameters:
        p.grad = None
    loss.backward()

    # update
    lr = 0.1 if i < 150000 else 0.01  # step learning rate decay
    for p in parameters:
        p.data += -lr * p.grad

    # track stats
    if i % 100 == 0:  # print every once in a while
        print(f"{i:7d}/{max_steps:7d}: {loss.item():.4f}")
    lossi.append(loss.log10().item())
    with torch.no_grad():
        ud.append([((lr * p.grad).std() / p.data.std()).log10().item() for p in parameters])

    if i >= 300:
        break  # AFTER_DEBUG: would take out obviously to run full optimization

# visualize histograms: the forward pass activations
for i, layer in enumerate(layers[:-1]):  # note: exclude the output layer
    if isinstance(layer, Tanh):
        t = layer.out
        print("layer %d (%10s): mean %+.2f, std %.2f, saturated: %.2f%%" % (
            i, layer.__class__.__name__, t.mean(), t.std(), (t.abs() > 0.97).float().mean() * 100))
        hy, hx = torch.histogram(t, density=True)
        print("  histogram: %d bins over [%.2f, %.2f], peak density %.2f" % (hy.numel(), hx[0], hx[-1], hy.max()))

# the backward pass gradients
for i, layer in enumerate(layers[:-1]):  # note: exclude the output layer
    if isinstance(layer, Tanh):
        t = layer.out.grad
        print("layer %d (%10s): mean %+f, std %e" % (i, layer.__class__.__name__, t.mean(), t.std()))
        hy, hx = torch.histogram(t, density=True)
        counts = torch.histc(t, bins=50, min=-0.005, max=0.005)
        print("  histogram: %d bins, histc in range %d of %d" % (hy.numel(), counts.sum().item(), t.numel()))

# the weights' gradients
for i, p in enumerate(parameters):
    t = p.grad
    if p.ndim == 2:
        print("weight %10s | mean %+f | std %e | grad:data ratio %e" % (tuple(p.shape), t.mean(), t.std(), t.std() / p.std()))

# the update-to-data ratios over training (the notebook plots them against -3)
for i, p in enumerate(parameters):
    if p.ndim == 2:
        print("param %d %10s: log10 update:data ratio over the last 100 steps %.2f" % (
            i, tuple(p.shape), sum(ud[j][i] for j in range(len(ud) - 100, len(ud))) / 100))

print(len(lossi), torch.tensor(lossi[:300]).view(-1, 30).mean(1).shape)

# put layers into eval mode
for layer in layers:
    layer.training = False


@torch.no_grad()
def split_loss_layers(split):
    x, y = {"train": (Xtr, Ytr), "val": (Xdev, Ydev), "test": (Xte, Yte)}[split]
    emb = C[x]  # (N, block_size, n_embd)
    x = emb.view(emb.shape[0], -1)  # concat into (N, block_size * n_embd)
    for layer in layers:
        x = layer(x)
    loss = F.cross_entropy(x, y)
    print(split, loss.item())
    return loss.item()


deep_train = split_loss_layers("train")
deep_val = split_loss_layers("val")

# sample from the model
g = torch.Generator().manual_seed(2147483647 + 10)
lengths = []
for _ in range(20):
    out = []
    context = [0] * block_size  # initialize with all ...
    while True:
        # forward pass the neural net
        emb = C[torch.tensor([context])]  # (1,block_size,n_embd)
        x = emb.view(emb.shape[0], -1)  # concatenate the vectors
        for layer in layers:
            x = layer(x)
        logits = x
        probs = F.softmax(logits, dim=1)
        # sample from the distribution
        ix = torch.multinomial(probs, num_samples=1, generator=g).item()
        # shift the context window and track the samples
        context = context[1:] + [ix]
        out.append(ix)
        # if we sample the special '.' token, break
        if ix == 0:
            break
    lengths.append(len(out))
    print("sampled a name of length", len("".join(itos[i] for i in out)))

print(f"FINAL bn_val={bn_val:.4f} deep_train={deep_train:.4f} deep_val={deep_val:.4f} "
      f"mean_length={sum(lengths) / len(lengths):.2f}")
