"""Universal style transfer by whitening and colouring transforms (Li et al. 2017), pytorch-WCT style.

The ``WCT`` module as sunshineatnoon/PytorchWCT's ``util.py`` writes it, at one level and tiny
sizes: an encoder/decoder pair (``nn.ReflectionPad2d((1, 1, 1, 1))`` + Conv2d + ReLU, a 1x1
first conv, ``nn.MaxPool2d(2, 2)`` down and ``nn.UpsamplingNearest2d(scale_factor=2)`` up) trained
for reconstruction with a pixel + feature loss; ``whiten_and_color`` on ``.double()`` features
viewed as ``C x (H*W)``: ``torch.mean(cF, 1)`` + ``unsqueeze(1).expand_as`` centring, the
covariance ``torch.mm(cF, cF.t()).div(n - 1) + eps * torch.eye(C).double()``,
``torch.svd(..., some=False)`` with the eigenvalue threshold loop, ``torch.diag(c_e[0:k].pow(-0.5))``
whitening and ``pow(0.5)`` colouring, the style mean added back; the same transform by
``torch.linalg.eigh`` (ascending eigenvalues, ``torch.flip``-ped); ``alpha`` blending and
``csF.resize_(ccsF.size()).copy_(ccsF)`` under ``torch.no_grad()``. Checks: the whitened features'
covariance is the identity on the kept subspace, the coloured features carry the style's
covariance and mean, the eigh and svd routes agree, ``alpha = 0`` returns the content, and the
decoder's reconstruction loss falls.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

IMAGE = 32


def make_content(n):
    yy, xx = np.mgrid[0:IMAGE, 0:IMAGE] / IMAGE
    images = np.zeros((n, 3, IMAGE, IMAGE))
    for i in range(n):
        img = rng.uniform(0.2, 0.8, size=(3, 1, 1)) + np.zeros((3, IMAGE, IMAGE))
        for _ in range(rng.randint(2, 5)):
            cy, cx = rng.uniform(0, 1, size=2)
            radius = rng.uniform(0.1, 0.3)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
            img = img + rng.uniform(-0.6, 0.6, size=(3, 1, 1)) * blob
        images[i] = np.clip(img + 0.1 * rng.randn(3, IMAGE, IMAGE), 0, 1)
    return torch.from_numpy(images.astype(np.float32))


def make_style(n):
    yy, xx = np.mgrid[0:IMAGE, 0:IMAGE] / IMAGE
    images = np.zeros((n, 3, IMAGE, IMAGE))
    for i in range(n):
        angle = rng.uniform(0, np.pi)
        freq = rng.uniform(3, 8)
        wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
        colour_a, colour_b = rng.uniform(0, 1, size=(2, 3, 1, 1))
        images[i] = np.clip(colour_a + (colour_b - colour_a) * (wave > 0) + 0.05 * rng.randn(3, IMAGE, IMAGE), 0, 1)
    return torch.from_numpy(images.astype(np.float32))


class encoder2(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 1, 1, 0)
        self.reflecPad1 = nn.ReflectionPad2d((1, 1, 1, 1))
        self.conv2 = nn.Conv2d(3, 16, 3, 1, 0)
        self.relu2 = nn.ReLU(inplace=True)
        self.reflecPad3 = nn.ReflectionPad2d((1, 1, 1, 1))
        self.conv3 = nn.Conv2d(16, 16, 3, 1, 0)
        self.relu3 = nn.ReLU(inplace=True)
        self.maxPool = nn.MaxPool2d(kernel_size=2, stride=2, return_indices=False)
        self.reflecPad4 = nn.ReflectionPad2d((1, 1, 1, 1))
        self.conv4 = nn.Conv2d(16, 24, 3, 1, 0)
        self.relu4 = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.conv1(x)
        out = self.reflecPad1(out)
        out = self.conv2(out)
        out = self.relu2(out)
        out = self.reflecPad3(out)
        out = self.conv3(out)
        pool = self.relu3(out)
        out = self.maxPool(pool)
        out = self.reflecPad4(out)
        out = self.conv4(out)
        out = self.relu4(out)
        return out


class decoder2(nn.Module):
    def __init__(self):
        super().__init__()
        self.reflecPad5 = nn.ReflectionPad2d((1, 1, 1, 1))
        self.conv5 = nn.Conv2d(24, 16, 3, 1, 0)
        self.relu5 = nn.ReLU(inplace=True)
        self.unpool = nn.UpsamplingNearest2d(scale_factor=2)
        self.reflecPad6 = nn.ReflectionPad2d((1, 1, 1, 1))
        self.conv6 = nn.Conv2d(16, 16, 3, 1, 0)
        self.relu6 = nn.ReLU(inplace=True)
        self.reflecPad7 = nn.ReflectionPad2d((1, 1, 1, 1))
        self.conv7 = nn.Conv2d(16, 3, 3, 1, 0)

    def forward(self, x):
        out = self.reflecPad5(x)
        out = self.conv5(out)
        out = self.relu5(out)
        out = self.unpool(out)
        out = self.reflecPad6(out)
        out = self.conv6(out)
        out = self.relu6(out)
        out = self.reflecPad7(out)
        out = self.conv7(out)
        return out


class WCT(nn.Module):
    def __init__(self, eps=1e-8, threshold=0.00001):
        super().__init__()
        self.e2 = encoder2()
        self.d2 = decoder2()
        self.eps = eps
        self.threshold = threshold

    def whiten_and_color(self, cF, sF):
        cFSize = cF.size()
        c_mean = torch.mean(cF, 1)  # c x (h x w)
        c_mean = c_mean.unsqueeze(1).expand_as(cF)
        cF = cF - c_mean

        contentConv = torch.mm(cF, cF.t()).div(cFSize[1] - 1) + self.eps * torch.eye(cFSize[0]).double()
        c_u, c_e, c_v = torch.svd(contentConv, some=False)

        k_c = cFSize[0]
        for i in range(cFSize[0]):
            if c_e[i] < self.threshold:
                k_c = i
                break

        sFSize = sF.size()
        s_mean = torch.mean(sF, 1)
        sF = sF - s_mean.unsqueeze(1).expand_as(sF)
        styleConv = torch.mm(sF, sF.t()).div(sFSize[1] - 1)
        s_u, s_e, s_v = torch.svd(styleConv, some=False)

        k_s = sFSize[0]
        for i in range(sFSize[0]):
            if s_e[i] < self.threshold:
                k_s = i
                break

        c_d = (c_e[0:k_c]).pow(-0.5)
        step1 = torch.mm(c_v[:, 0:k_c], torch.diag(c_d))
        step2 = torch.mm(step1, (c_v[:, 0:k_c].t()))
        whiten_cF = torch.mm(step2, cF)

        s_d = (s_e[0:k_s]).pow(0.5)
        targetFeature = torch.mm(torch.mm(torch.mm(s_v[:, 0:k_s], torch.diag(s_d)), (s_v[:, 0:k_s].t())), whiten_cF)
        targetFeature = targetFeature + s_mean.unsqueeze(1).expand_as(targetFeature)
        self.last = dict(whiten_cF=whiten_cF, c_v=c_v[:, 0:k_c], k_c=k_c, k_s=k_s, styleConv=styleConv)
        return targetFeature

    def whiten_and_color_eigh(self, cF, sF):
        """The same transform by torch.linalg.eigh (ascending eigenvalues, flipped to descending)."""
        c_mean = cF.mean(1, keepdim=True)
        cF = cF - c_mean
        contentConv = cF @ cF.T / (cF.shape[1] - 1) + self.eps * torch.eye(cF.shape[0], dtype=cF.dtype)
        c_e, c_v = torch.linalg.eigh(contentConv)
        c_e, c_v = torch.flip(c_e, [0]), torch.flip(c_v, [1])
        keep = c_e > self.threshold
        c_e, c_v = c_e[keep], c_v[:, keep]
        whiten_cF = c_v @ torch.diag(c_e.pow(-0.5)) @ c_v.T @ cF

        s_mean = sF.mean(1, keepdim=True)
        sF = sF - s_mean
        styleConv = sF @ sF.T / (sF.shape[1] - 1)
        s_e, s_v = torch.linalg.eigh(styleConv)
        keep = s_e > self.threshold
        s_e, s_v = s_e[keep], s_v[:, keep]
        return s_v @ torch.diag(s_e.sqrt()) @ s_v.T @ whiten_cF + s_mean

    def transform(self, cF, sF, csF, alpha):
        cF = cF.double()
        sF = sF.double()
        C = cF.size(0)
        cFView = cF.view(C, -1)
        sFView = sF.view(C, -1)

        targetFeature = self.whiten_and_color(cFView, sFView)
        targetFeature = targetFeature.view_as(cF)
        ccsF = alpha * targetFeature + (1.0 - alpha) * cF
        ccsF = ccsF.float().unsqueeze(0)
        with torch.no_grad():
            csF.resize_(ccsF.size()).copy_(ccsF)
        return csF


wct = WCT(eps=1e-10, threshold=1e-7)
content = make_content(48)
style = make_style(48)
train_images = torch.cat([content[:32], style[:32]])
test_images = torch.cat([content[32:], style[32:]])

# --- the encoder/decoder trained for reconstruction: pixel loss + feature loss
optimizer = torch.optim.Adam(list(wct.e2.parameters()) + list(wct.d2.parameters()), lr=2e-3)
mse = nn.MSELoss()
feature_weight = 1.0


def reconstruction_loss(images):
    features = wct.e2(images)
    recon = wct.d2(features)
    return mse(recon, images) + feature_weight * mse(wct.e2(recon), features)


with torch.no_grad():
    recon_before = mse(wct.d2(wct.e2(test_images)), test_images).item()
print(f"untrained test pixel loss {recon_before:.5f}")
batch_size = 16
for epoch in range(8):
    perm = torch.randperm(len(train_images))
    running = 0.0
    for start in range(0, len(train_images), batch_size):
        batch = train_images[perm[start:start + batch_size]]
        loss = reconstruction_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item() * len(batch)
    with torch.no_grad():
        test_pixel = mse(wct.d2(wct.e2(test_images)), test_images).item()
    print(f"epoch {epoch} train loss {running / len(train_images):.5f} test pixel loss {test_pixel:.5f}")

# --- whitening and colouring on one content/style pair at a time
wct.eval()
white_errs, colour_errs, mean_errs, route_errs, blend_errs = [], [], [], [], []
content_dists, stylised_dists = [], []
csF = torch.Tensor()
for pair in range(4):
    with torch.no_grad():
        cF = wct.e2(content[40 + pair:41 + pair]).data.squeeze(0)
        sF = wct.e2(style[40 + pair:41 + pair]).data.squeeze(0)
    C = cF.size(0)
    csF = wct.transform(cF, sF, csF, 1.0)
    last = wct.last
    whiten = last["whiten_cF"]
    white_cov = whiten @ whiten.t() / (whiten.size(1) - 1)
    projector = last["c_v"] @ last["c_v"].t()
    white_errs.append((white_cov - projector).abs().max().item())
    out = csF.squeeze(0).double().view(C, -1)
    out_centred = out - out.mean(1, keepdim=True)
    out_cov = out_centred @ out_centred.t() / (out.size(1) - 1)
    colour_errs.append((out_cov - last["styleConv"]).abs().max().item() / last["styleConv"].abs().max().item())
    mean_errs.append((out.mean(1) - sF.double().view(C, -1).mean(1)).abs().max().item())
    by_eigh = wct.whiten_and_color_eigh(cF.double().view(C, -1), sF.double().view(C, -1))
    by_svd = wct.whiten_and_color(cF.double().view(C, -1), sF.double().view(C, -1))
    route_errs.append((by_eigh - by_svd).abs().max().item())
    blend = wct.transform(cF, sF, torch.Tensor(), 0.0)
    blend_errs.append((blend.squeeze(0) - cF).abs().max().item())
    # the decoded stylised image: its features' covariance against the style's and the content's
    with torch.no_grad():
        stylised = wct.d2(csF)
        feats = wct.e2(stylised).squeeze(0).double().view(C, -1)
    feats = feats - feats.mean(1, keepdim=True)
    cov_of = feats @ feats.t() / (feats.size(1) - 1)
    content_centred = cF.double().view(C, -1) - cF.double().view(C, -1).mean(1, keepdim=True)
    content_cov = content_centred @ content_centred.t() / (content_centred.size(1) - 1)
    style_norm = last["styleConv"].norm()
    content_dists.append(((content_cov - last["styleConv"]).norm() / style_norm).item())
    stylised_dists.append(((cov_of - last["styleConv"]).norm() / style_norm).item())
    print(f"pair {pair}: kept {last['k_c']} content / {last['k_s']} style eigenvalues of {C}, "
          f"whitened cov err {white_errs[-1]:.2e}, coloured cov rel err {colour_errs[-1]:.2e}, "
          f"eigh vs svd {route_errs[-1]:.2e}, distance to the style cov: content {content_dists[-1]:.3f}, stylised {stylised_dists[-1]:.3f}")

print(f"FINAL recon_before={recon_before:.5f} recon_after={test_pixel:.5f} white_err={max(white_errs):.6f} "
      f"colour_err={max(colour_errs):.6f} mean_err={max(mean_errs):.6f} route_err={max(route_errs):.6f} "
      f"blend_err={max(blend_errs):.6f} stylised_dist={float(np.mean(stylised_dists)):.4f}")
