"""Layer-wise Relevance Propagation in the layout of the LRP tutorial (Montavon et al., heatmapping.org's
``tutorial.py`` for VGG-16), on a tiny CNN trained to tell horizontal from vertical bars.

Each 12x12 image holds a bar (horizontal for class 0, vertical for class 1) inside a fixed 4x4 region, a
class-independent bright 2x2 distractor somewhere else, and uniform background noise. The network is a
VGG-like ``features`` ``nn.Sequential`` (Conv2d/ReLU/MaxPool2d) and a ``classifier`` (Linear/ReLU/Dropout/
Linear) after ``torch.flatten``, trained by Adam.

The explanation is the tutorial's: ``layers = list(model._modules['features']) + toconv(list(
model._modules['classifier']))`` (the Linears turned into Conv2d by reshaping their weights, whose forward
must equal the model's), activations ``A`` collected layer by layer, the target one-hot ``T`` of shape
``[N, 2, 1, 1]``, and relevance propagated back by the gradient trick: ``A[l] = (A[l].data).requires_grad_(
True)``, max-pooling treated as ``torch.nn.AvgPool2d(2)``, ``z = incr(newlayer(layers[l], rho).forward(
A[l]))``, ``s = (R[l+1] / z).data``, ``(z * s).sum().backward()``, ``c = A[l].grad``, ``R[l] = (A[l] *
c).data``, with ``newlayer`` a ``copy.deepcopy`` whose ``weight``/``bias`` become ``nn.Parameter(g(...))``
(the tutorial's ``try``/``except AttributeError``); LRP-gamma in the lower layers, LRP-epsilon in the middle,
LRP-0 at the top, and the z^B rule at the pixels (``lb``/``hb`` bounds, ``p.clamp(min=0)``/``p.clamp(max=0)``).

Checked: relevance conservation (the pixel relevances sum to the target logit) on a bias-free copy with
LRP-0/gamma and eps -> 0; the same gradient-trick LRP equal to an explicit per-layer matrix formula
(``F.unfold`` patches, ``Wf @ P``, ``Wf.t() @ s`` folded back by ``F.fold``) on the trained model with its
biases and the epsilon rule; the epsilon rule absorbing relevance; and the trained CNN's positive
relevance concentrated in the 4x4 region that decides the class.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

H = W = 12
REGION = (slice(2, 6), slice(2, 6))


def make_images(n):
    X = np.random.uniform(0.0, 0.3, size=(n, 1, H, W)).astype(np.float32)
    y = np.random.randint(0, 2, size=n)
    for i in range(n):
        k = np.random.randint(0, 4)
        if y[i] == 0:
            X[i, 0, 2 + k, 2:6] = 0.9
        else:
            X[i, 0, 2:6, 2 + k] = 0.9
        while True:  # a distractor outside the region
            r, c = np.random.randint(0, H - 1), np.random.randint(0, W - 1)
            if r >= 7 or c >= 7:
                break
        X[i, 0, r:r + 2, c:c + 2] = 0.9
    # (pixels strictly inside the z^B bounds [0, 1]: a patch at the upper bound under all-negative weights
    # would make that rule's denominator exactly 0 where the relevance is 0, and 0 / 0 is NaN)
    return torch.from_numpy(X), torch.from_numpy(y).long()


X_train, y_train = make_images(800)
X_test, y_test = make_images(64)


class SmallVGG(nn.Module):
    def __init__(self, num_classes=2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 3 * 3, 32), nn.ReLU(True), nn.Dropout(p=0.2), nn.Linear(32, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


model = SmallVGG()
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
for epoch in range(8):
    model.train()
    perm = torch.randperm(X_train.size(0))
    total = 0.0
    for start in range(0, X_train.size(0), 64):
        idx = perm[start:start + 64]
        loss = F.cross_entropy(model(X_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.numel()
    if epoch % 2 == 1:
        print(f"epoch {epoch} loss {total / X_train.size(0):.4f}")
model.eval()
with torch.no_grad():
    acc = (model(X_test).argmax(1) == y_test).float().mean().item()
print(f"test accuracy {acc:.4f}")


# ----------------------------------------------------------------------------------- the tutorial's utils
def newlayer(layer, g):
    layer = copy.deepcopy(layer)
    try:
        layer.weight = nn.Parameter(g(layer.weight))
    except AttributeError:
        pass
    try:
        layer.bias = nn.Parameter(g(layer.bias))
    except AttributeError:
        pass
    return layer


def toconv(layers):
    newlayers = []
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            newlayer = None
            if i == 0:
                m, n = 16, layer.weight.shape[0]
                newlayer = nn.Conv2d(m, n, 3)
                newlayer.weight = nn.Parameter(layer.weight.reshape(n, m, 3, 3))
            else:
                m, n = layer.weight.shape[1], layer.weight.shape[0]
                newlayer = nn.Conv2d(m, n, 1)
                newlayer.weight = nn.Parameter(layer.weight.reshape(n, m, 1, 1))
            newlayer.bias = nn.Parameter(layer.bias)
            newlayers += [newlayer]
        else:
            newlayers += [layer]
    return newlayers


def rules(l, L):
    if l <= 2:
        return (lambda p: p + 0.25 * p.clamp(min=0)), (lambda z: z + 1e-9)
    if l <= L - 3:
        return (lambda p: p), (lambda z: z + 1e-9 + 0.25 * ((z ** 2).mean() ** .5).data)
    return (lambda p: p), (lambda z: z + 1e-9)


def lrp(model, X, T, rule=rules, lowest=0.0, highest=1.0):
    layers = list(model._modules['features']) + toconv(list(model._modules['classifier']))
    L = len(layers)
    A = [X] + [None] * L
    for l in range(L):
        A[l + 1] = layers[l].forward(A[l])
    R = [None] * L + [(A[-1] * T).data]
    for l in range(1, L)[::-1]:
        A[l] = (A[l].data).requires_grad_(True)
        if isinstance(layers[l], torch.nn.MaxPool2d):
            layers[l] = torch.nn.AvgPool2d(2)
        if isinstance(layers[l], torch.nn.Conv2d) or isinstance(layers[l], torch.nn.AvgPool2d):
            rho, incr = rule(l, L)
            z = incr(newlayer(layers[l], rho).forward(A[l]))  # step 1
            s = (R[l + 1] / z).data                          # step 2
            (z * s).sum().backward()
            c = A[l].grad                                    # step 3
            R[l] = (A[l] * c).data                           # step 4
        else:
            R[l] = R[l + 1]
    A[0] = (A[0].data).requires_grad_(True)
    lb = (A[0].data * 0 + lowest).requires_grad_(True)
    hb = (A[0].data * 0 + highest).requires_grad_(True)
    z = layers[0].forward(A[0]) + 1e-9                                    # step 1 (a)
    z -= newlayer(layers[0], lambda p: p.clamp(min=0)).forward(lb)       # step 1 (b)
    z -= newlayer(layers[0], lambda p: p.clamp(max=0)).forward(hb)       # step 1 (c)
    s = (R[1] / z).data                                                   # step 2
    (z * s).sum().backward()
    c, cp, cm = A[0].grad, lb.grad, hb.grad                               # step 3
    R[0] = (A[0] * c + lb * cp + hb * cm).data                            # step 4
    return R, A[-1].data, layers


# ----------------------------------------------------------------------------------- explicit matrices
def explicit_conv(layer, a, R, rho, incr):
    k, p = layer.kernel_size[0], layer.padding[0]
    P = F.unfold(a, k, padding=p)
    Wf = rho(layer.weight.data).reshape(layer.out_channels, -1)
    z = incr(Wf @ P + rho(layer.bias.data).view(1, -1, 1))
    s = R.reshape(R.size(0), R.size(1), -1) / z
    c = F.fold(Wf.t() @ s, a.shape[-2:], k, padding=p)
    return a * c


def explicit_avgpool(a, R, incr):
    n, ch, h, w = a.shape
    P = F.unfold(a, 2, stride=2).reshape(n, ch, 4, -1)
    z = incr(P.mean(2))
    s = R.reshape(n, ch, -1) / z
    cP = (s / 4).unsqueeze(2).expand(n, ch, 4, s.size(-1)).reshape(n, ch * 4, -1)
    return a * F.fold(cP, (h, w), 2, stride=2)


def explicit_lrp(model, X, T, rule=rules, lowest=0.0, highest=1.0):
    with torch.no_grad():
        layers = list(model._modules['features']) + toconv(list(model._modules['classifier']))
        L = len(layers)
        A = [X]
        for layer in layers:
            A.append(layer(A[-1]))
        R = (A[-1] * T)
        for l in range(1, L)[::-1]:
            if isinstance(layers[l], nn.Conv2d):
                R = explicit_conv(layers[l], A[l], R, *rule(l, L))
            elif isinstance(layers[l], nn.MaxPool2d):
                R = explicit_avgpool(A[l], R, rule(l, L)[1])
        first = layers[0]
        k, p = first.kernel_size[0], first.padding[0]
        Wf = first.weight.reshape(first.out_channels, -1)
        Wp, Wm = Wf.clamp(min=0), Wf.clamp(max=0)
        Px, Pl, Ph = (F.unfold(t, k, padding=p) for t in (X, torch.full_like(X, lowest), torch.full_like(X, highest)))
        z = Wf @ Px + 1e-9 - Wp @ Pl - Wm @ Ph
        s = R.reshape(R.size(0), R.size(1), -1) / z
        fold = lambda t: F.fold(t, X.shape[-2:], k, padding=p)  # noqa: E731
        return X * fold(Wf.t() @ s) - lowest * fold(Wp.t() @ s) - highest * fold(Wm.t() @ s)


# ----------------------------------------------------------------------------------- checks
with torch.no_grad():
    layers = list(model._modules['features']) + toconv(list(model._modules['classifier']))
    out = X_test
    for layer in layers:
        out = layer(out)
    toconv_same = torch.allclose(out.flatten(1), model(X_test), atol=1e-5)
print(f"toconv network {tuple(out.shape)} == model: {toconv_same}")

pred = model(X_test).argmax(1)
T = F.one_hot(pred, 2).float().reshape(-1, 2, 1, 1)
R, logits, _ = lrp(model, X_test, T)
print(f"relevance per layer: {[tuple(r.shape) for r in R]}")

# conservation: no biases, LRP-0 above the gamma layers, eps -> 0
nobias = copy.deepcopy(model)
for m in nobias.modules():
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)
R0, logits0, _ = lrp(nobias, X_test, T, rule=lambda l, L: rules(l, L) if l <= 2 else ((lambda p: p), (lambda z: z + 1e-9)))
target_logit = (logits0 * T).sum((1, 2, 3))
conservation_err = ((R0[0].sum((1, 2, 3)) - target_logit).abs() / target_logit.abs().clamp(min=1e-3)).max().item()
print(f"conservation on the bias-free copy: max relative error {conservation_err:.2e}")

# the epsilon rule absorbs relevance (its denominators grow), so less reaches the pixels
Reps, logits_eps, _ = lrp(nobias, X_test, T, rule=lambda l, L: ((lambda p: p), (lambda z: z + 0.5 * z.sign() + 1e-9)))
eps_kept = (Reps[0].sum() / (logits_eps * T).sum()).item()
print(f"epsilon rule keeps {eps_kept:.4f} of the relevance")

R_explicit = explicit_lrp(model, X_test, T)
explicit_err = ((R_explicit - R[0]).abs().max() / R[0].abs().max()).item()
print(f"gradient trick vs explicit matrices: max relative difference {explicit_err:.2e}")

pos = R[0].clamp(min=0)[:, 0]
region_frac = (pos[:, REGION[0], REGION[1]].sum((1, 2)) / pos.sum((1, 2)).clamp(min=1e-12)).mean().item()
print(f"positive relevance in the 4x4 region: {region_frac:.4f} (uniform would be {16 / (H * W):.4f})")

print(f"FINAL acc={acc:.4f} toconv_same={int(toconv_same)} conserved={int(conservation_err < 1e-3)} "
      f"explicit_agree={int(explicit_err < 1e-4)} eps_kept={eps_kept:.4f} region_frac={region_frac:.4f} "
      f"concentrated={int(region_frac > 3 * 16 / (H * W))}")
