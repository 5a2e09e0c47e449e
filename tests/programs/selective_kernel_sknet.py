"""Selective Kernel Networks (Li et al. 2019, "Selective Kernel Networks"; implus/SKNet, and the
pppLang/SKNet and developer0hye/SKNet-PyTorch ``SKConv`` ports) on a synthetic scale task.

``SKConv`` splits the input into ``M`` branches of grouped 3x3 convolutions with dilation 1..M
(``groups=32`` in the paper, scaled down here), each ``Conv2d`` + ``BatchNorm2d`` + ``ReLU``;
the branch outputs are stacked by ``torch.stack(feats, dim=1)`` (B, M, C, H, W), fused by a sum
over the branch dim, squeezed by ``nn.AdaptiveAvgPool2d(1)``, reduced by ``nn.Linear`` +
``nn.BatchNorm1d`` + ``nn.ReLU``, and expanded back by one ``nn.Linear`` per branch held in an
``nn.ModuleList``; ``torch.softmax`` over the branch dim (``dim=1``) gives the attention that
selects the kernel, applied by ``(feats * attn).sum(dim=1)``. An ``SKUnit`` wraps it in a 1x1 ->
SK -> 1x1 bottleneck with a projection shortcut; the net is trained by SGD with Nesterov momentum,
``CosineAnnealingLR`` and ``CrossEntropyLoss(label_smoothing=0.1)`` to tell squares of four sizes
apart.

Checks: the attention weights sum to 1 over the branches; the dilation-2 3x3 branch equals a 5x5
convolution whose kernel is the dilated kernel scattered into zeros (``w5[..., ::2, ::2] = w3``);
pppLang's loop form (``unsqueeze_(dim=1)`` + ``torch.cat``, ``squeeze_()``) and developer0hye's
``functools.reduce`` + ``chunk`` form agree with the stacked form.
"""

import os
from functools import reduce

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IMG = 16
SIZES = (1, 2, 3, 5)


class SKConv(nn.Module):
    def __init__(self, features, M=2, G=8, r=4, stride=1, L=8):
        super().__init__()
        d = max(int(features / r), L)
        self.M = M
        self.features = features
        self.convs = nn.ModuleList([])
        for i in range(M):
            self.convs.append(nn.Sequential(
                nn.Conv2d(features, features, kernel_size=3, stride=stride, padding=1 + i, dilation=1 + i,
                          groups=G, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=True),
            ))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(features, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(inplace=True))
        self.fcs = nn.ModuleList([])
        for _ in range(M):
            self.fcs.append(nn.Linear(d, features))
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x, return_attention=False):
        batch_size = x.shape[0]
        feats = torch.stack([conv(x) for conv in self.convs], dim=1)  # B, M, C, H, W
        feats_U = torch.sum(feats, dim=1)
        feats_S = self.gap(feats_U).view(batch_size, self.features)
        feats_Z = self.fc(feats_S)
        attention_vectors = torch.stack([fc(feats_Z) for fc in self.fcs], dim=1)  # B, M, C
        attention_vectors = self.softmax(attention_vectors)
        attention_vectors = attention_vectors.view(batch_size, self.M, self.features, 1, 1)
        feats_V = (feats * attention_vectors).sum(dim=1)
        if return_attention:
            return feats_V, attention_vectors
        return feats_V


def sk_forward_pppLang(sk, x):
    """pppLang/SKNet's loop: each branch ``unsqueeze_(dim=1)`` and concatenated."""
    for i, conv in enumerate(sk.convs):
        fea = conv(x).unsqueeze_(dim=1)
        if i == 0:
            feas = fea
        else:
            feas = torch.cat([feas, fea], dim=1)
    fea_U = torch.sum(feas, dim=1)
    fea_s = sk.gap(fea_U).squeeze_(-1).squeeze_(-1)
    fea_z = sk.fc(fea_s)
    for i, fc in enumerate(sk.fcs):
        vector = fc(fea_z).unsqueeze_(dim=1)
        if i == 0:
            attention_vectors = vector
        else:
            attention_vectors = torch.cat([attention_vectors, vector], dim=1)
    attention_vectors = sk.softmax(attention_vectors)
    attention_vectors = attention_vectors.unsqueeze(-1).unsqueeze(-1)
    return (feas * attention_vectors).sum(dim=1)


def sk_forward_reduce(sk, x):
    """developer0hye/SKNet-PyTorch: ``reduce`` sums, one attention tensor ``chunk``-ed per branch."""
    batch_size = x.size(0)
    output = [conv(x) for conv in sk.convs]
    U = reduce(lambda a, b: a + b, output)
    s = sk.gap(U)
    z = sk.fc(s.flatten(1))
    a_b = torch.cat([fc(z) for fc in sk.fcs], dim=1)
    a_b = a_b.reshape(batch_size, sk.M, sk.features, -1)
    a_b = F.softmax(a_b, dim=1)
    a_b = list(a_b.chunk(sk.M, dim=1))
    a_b = list(map(lambda t: t.reshape(batch_size, sk.features, 1, 1), a_b))
    V = list(map(lambda t, w: t * w, output, a_b))
    return reduce(lambda a, b: a + b, V)


class SKUnit(nn.Module):
    def __init__(self, in_features, out_features, mid_features, M=2, G=8, r=4, stride=1, L=8):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_features, mid_features, 1, stride=1, bias=False),
            nn.BatchNorm2d(mid_features),
            nn.ReLU(inplace=True),
        )
        self.conv2_sk = SKConv(mid_features, M=M, G=G, r=r, stride=stride, L=L)
        self.conv3 = nn.Sequential(
            nn.Conv2d(mid_features, out_features, 1, stride=1, bias=False),
            nn.BatchNorm2d(out_features),
        )
        if stride == 1 and in_features == out_features:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_features, out_features, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_features),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        residual = x
        out = self.conv1(x)
        out = self.conv2_sk(out)
        out = self.conv3(out)
        return self.relu(out + self.shortcut(residual))


class SKNetTiny(nn.Module):
    def __init__(self, class_num=len(SIZES), M=3, G=8):
        super().__init__()
        self.basic_conv = nn.Sequential(
            nn.Conv2d(3, 16, 3, 1, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        self.stage_1 = nn.Sequential(SKUnit(16, 32, 16, M=M, G=G, stride=1), nn.ReLU())
        self.stage_2 = nn.Sequential(SKUnit(32, 48, 16, M=M, G=G, stride=2), nn.ReLU())
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(48, class_num)

    def forward(self, x):
        fea = self.basic_conv(x)
        fea = self.stage_1(fea)
        fea = self.stage_2(fea)
        fea = self.gap(fea)
        fea = torch.squeeze(fea, dim=(2, 3))
        return self.classifier(fea)


def make_squares(n, rng):
    labels = rng.integers(0, len(SIZES), size=n)
    images = 0.3 * rng.standard_normal((n, 3, IMG, IMG)).astype(np.float32)
    for i, c in enumerate(labels):
        size = SIZES[c]
        color = rng.uniform(0.5, 1.5, size=(3, 1, 1))
        for _ in range(3):
            r0, c0 = rng.integers(0, IMG - size + 1, size=2)
            images[i, :, r0:r0 + size, c0:c0 + size] += color
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


rng = np.random.default_rng(seed)

# the dilation-2 3x3 branch is a 5x5 conv with the dilated kernel scattered into it
sk = SKConv(16, M=3, G=4)
sk.eval()
branch = sk.convs[1][0]
w3 = branch.weight.detach()
w5 = torch.zeros(w3.shape[0], w3.shape[1], 5, 5)
w5[..., ::2, ::2] = w3
x = torch.randn(2, 16, 9, 9, requires_grad=True)
y_dil = branch(x)
y_5x5 = F.conv2d(x, w5, padding=2, groups=branch.groups)
g_dil = torch.autograd.grad(y_dil.sin().sum(), x)[0]
g_5x5 = torch.autograd.grad(y_5x5.sin().sum(), x)[0]
w3_3 = sk.convs[2][0].weight.detach()
w7 = torch.zeros(w3_3.shape[0], w3_3.shape[1], 7, 7)
w7[..., ::3, ::3] = w3_3
y_7x7 = F.conv2d(x, w7, padding=3, groups=4)
dilation_err = max((y_dil - y_5x5).abs().max().item(), (g_dil - g_5x5).abs().max().item(),
                   (sk.convs[2][0](x) - y_7x7).abs().max().item())
print(f"dilated 3x3 (d=2, d=3) vs scattered 5x5/7x7 {tuple(y_dil.shape)}: err {dilation_err:.2e}")

# the three SKConv formulations agree, and the attention is a distribution over branches
with torch.no_grad():
    v, attn = sk(x, return_attention=True)
    v_loop = sk_forward_pppLang(sk, x)
    v_reduce = sk_forward_reduce(sk, x)
form_err = max((v - v_loop).abs().max().item(), (v - v_reduce).abs().max().item())
print(f"SKConv stack vs loop vs reduce {tuple(v.shape)}: err {form_err:.2e}, attention {tuple(attn.shape)}")

model = SKNetTiny()
print(f"SKNetTiny parameters: {sum(p.numel() for p in model.parameters())}")
train_x, train_y = make_squares(384, rng)
test_x, test_y = make_squares(256, rng)

EPOCHS = 6
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS, eta_min=1e-4)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(test_x)
        loss = F.cross_entropy(logits, test_y).item()
        acc = (logits.argmax(dim=1) == test_y).float().mean().item()
    model.train()
    return loss, acc


loss_start, acc_start = evaluate()
for epoch in range(EPOCHS):
    perm = torch.randperm(train_x.size(0))
    running, batches = 0.0, 0
    for i in range(0, train_x.size(0), 32):
        idx = perm[i:i + 32]
        outputs = model(train_x[idx])
        loss = criterion(outputs, train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item()
        batches += 1
    scheduler.step()
    print(f"epoch {epoch} loss {running / batches:.4f} lr {optimizer.param_groups[0]['lr']:.5f}")

loss_end, acc_end = evaluate()

# the trained network's attention: every (sample, channel) sums to 1 over branches
model.eval()
with torch.no_grad():
    h = model.stage_1[0].conv1(model.basic_conv(test_x[:64]))
    _, attn = model.stage_1[0].conv2_sk(h, return_attention=True)
attn_sum_err = (attn.sum(dim=1) - 1).abs().max().item()
branch_share = attn.mean(dim=(0, 2, 3, 4))
print(f"attention {tuple(attn.shape)} sums to 1 over branches: err {attn_sum_err:.2e}; "
      f"mean share per dilation {[round(s, 3) for s in branch_share.tolist()]}")
print(f"test loss {loss_start:.4f} -> {loss_end:.4f}, accuracy {acc_start:.4f} -> {acc_end:.4f}")
print(f"FINAL test_loss={loss_end:.4f} acc={acc_end:.4f} attn_sum_err={attn_sum_err:.3e} "
      f"dilation_err={dilation_err:.3e} form_err={form_err:.3e}")
