"""MiDaS's training losses (Ranftl et al., "Towards Robust Monocular Depth Estimation", TPAMI 2020;
the loss.py published with isl-org/MiDaS) on a toy monocular-depth task.

``compute_scale_and_shift`` solves the per-image 2x2 least-squares system built from
``torch.sum(mask * prediction * prediction, (1, 2))`` and its siblings in closed form, guarded by
``valid = det.nonzero()`` (and by ``det > 0`` as later forks do) and written into ``torch.zeros_like`` results through that (K, 1) index;
``reduction_batch_based`` (``if divisor == 0: return 0``) and ``reduction_image_based``
(``image_loss[valid] = image_loss[valid] / M[valid]``); ``mse_loss`` with ``2 * M``; ``gradient_loss``
with ``torch.mul(mask, diff)``, ``torch.abs`` of shifted differences and ``torch.mul(mask_x, grad_x)``;
``GradientLoss`` over scales by ``prediction[:, ::step, ::step]`` with ``step = pow(2, scale)``;
``ScaleAndShiftInvariantLoss`` with name-mangled private members (``self.__data_loss``) and a
``prediction_ssi`` property. The trimmed variant: ``normalize_prediction_robust`` (median by
``torch.median(..., dim=1).values`` over ``view(valid.sum(), -1)`` rows, mean absolute deviation
clamped by ``torch.clamp(min=1e-6)``), ``trimmed_mae_loss`` by ``res[mask.bool()]`` and
``torch.sort(...)[: int(len(res) * (1.0 - trim))]``, ``TrimmedProcrustesLoss``.

Checked: the closed-form scale and shift equal ``torch.linalg.lstsq`` of ``[prediction, 1]`` against the
target per image (an empty mask and a constant prediction take the ``det == 0`` path to zeros); both
losses are invariant to a positive scale + shift of the prediction, with batch-based and image-based
reduction; and a tiny encoder-decoder with MiDaS's non-negative head learns the relative depth of
synthetic scenes (ground plane, boxes, invalid sky and holes; the head without its inner ReLU, which
dies for some seeds at this size, and ``non_negative=False``), its aligned error and delta < 1.25
accuracy improving under Adam.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ---------------------------------------------------------------------------------- loss.py
def compute_scale_and_shift(prediction, target, mask):
    # system matrix: A = [[a_00, a_01], [a_10, a_11]]
    a_00 = torch.sum(mask * prediction * prediction, (1, 2))
    a_01 = torch.sum(mask * prediction, (1, 2))
    a_11 = torch.sum(mask, (1, 2))

    # right hand side: b = [b_0, b_1]
    b_0 = torch.sum(mask * prediction * target, (1, 2))
    b_1 = torch.sum(mask * target, (1, 2))

    # solution: x = A^-1 . b = [[a_11, -a_01], [-a_10, a_00]] / (a_00 * a_11 - a_01 * a_10) . b
    x_0 = torch.zeros_like(b_0)
    x_1 = torch.zeros_like(b_1)

    det = a_00 * a_11 - a_01 * a_01
    valid = det.nonzero()

    x_0[valid] = (a_11[valid] * b_0[valid] - a_01[valid] * b_1[valid]) / det[valid]
    x_1[valid] = (-a_01[valid] * b_0[valid] + a_00[valid] * b_1[valid]) / det[valid]

    return x_0, x_1


def compute_scale_and_shift_positive(prediction, target, mask):
    """The later forks' version (DPT, ZoeDepth): a bool guard, A must be positive definite."""
    a_00 = torch.sum(mask * prediction * prediction, (1, 2))
    a_01 = torch.sum(mask * prediction, (1, 2))
    a_11 = torch.sum(mask, (1, 2))
    b_0 = torch.sum(mask * prediction * target, (1, 2))
    b_1 = torch.sum(mask * target, (1, 2))
    x_0 = torch.zeros_like(b_0)
    x_1 = torch.zeros_like(b_1)
    det = a_00 * a_11 - a_01 * a_01
    # A needs to be a positive definite matrix.
    valid = det > 0
    x_0[valid] = (a_11[valid] * b_0[valid] - a_01[valid] * b_1[valid]) / det[valid]
    x_1[valid] = (-a_01[valid] * b_0[valid] + a_00[valid] * b_1[valid]) / det[valid]
    return x_0, x_1


def reduction_batch_based(image_loss, M):
    # average of all valid pixels of the batch

    # avoid division by 0 (if sum(M) = sum(sum(mask)) = 0: sum(image_loss) = 0)
    divisor = torch.sum(M)

    if divisor == 0:
        return 0
    else:
        return torch.sum(image_loss) / divisor


def reduction_image_based(image_loss, M):
    # mean of average of valid pixels of an image

    # avoid division by 0 (if M = sum(mask) = 0: image_loss = 0)
    valid = M.nonzero()

    image_loss[valid] = image_loss[valid] / M[valid]

    return torch.mean(image_loss)


def mse_loss(prediction, target, mask, reduction=reduction_batch_based):

    M = torch.sum(mask, (1, 2))
    res = prediction - target
    image_loss = torch.sum(mask * res * res, (1, 2))

    return reduction(image_loss, 2 * M)


def gradient_loss(prediction, target, mask, reduction=reduction_batch_based):

    M = torch.sum(mask, (1, 2))

    diff = prediction - target
    diff = torch.mul(mask, diff)

    grad_x = torch.abs(diff[:, :, 1:] - diff[:, :, :-1])
    mask_x = torch.mul(mask[:, :, 1:], mask[:, :, :-1])
    grad_x = torch.mul(mask_x, grad_x)

    grad_y = torch.abs(diff[:, 1:, :] - diff[:, :-1, :])
    mask_y = torch.mul(mask[:, 1:, :], mask[:, :-1, :])
    grad_y = torch.mul(mask_y, grad_y)

    image_loss = torch.sum(grad_x, (1, 2)) + torch.sum(grad_y, (1, 2))

    return reduction(image_loss, M)


def trimmed_mae_loss(prediction, target, mask, trim=0.2):
    M = torch.sum(mask, (1, 2))
    res = prediction - target

    res = res[mask.bool()].abs()

    trimmed, _ = torch.sort(res.view(-1), descending=False)[: int(len(res) * (1.0 - trim))]

    return trimmed.sum() / (2 * M.sum())


def normalize_prediction_robust(target, mask):
    ssum = torch.sum(mask, (1, 2))
    valid = ssum > 0

    m = torch.zeros_like(ssum)
    s = torch.ones_like(ssum)

    m[valid] = torch.median((mask[valid] * target[valid]).view(valid.sum(), -1), dim=1).values
    target = target - m.view(-1, 1, 1)

    sq = torch.sum(mask * target.abs(), (1, 2))
    s[valid] = torch.clamp((sq[valid] / ssum[valid]), min=1e-6)

    return target / (s.view(-1, 1, 1))


class MSELoss(nn.Module):
    def __init__(self, reduction='batch-based'):
        super().__init__()

        if reduction == 'batch-based':
            self.__reduction = reduction_batch_based
        else:
            self.__reduction = reduction_image_based

    def forward(self, prediction, target, mask):
        return mse_loss(prediction, target, mask, reduction=self.__reduction)


class GradientLoss(nn.Module):
    def __init__(self, scales=4, reduction='batch-based'):
        super().__init__()

        if reduction == 'batch-based':
            self.__reduction = reduction_batch_based
        else:
            self.__reduction = reduction_image_based

        self.__scales = scales

    def forward(self, prediction, target, mask):
        total = 0

        for scale in range(self.__scales):
            step = pow(2, scale)

            total += gradient_loss(prediction[:, ::step, ::step], target[:, ::step, ::step],
                                   mask[:, ::step, ::step], reduction=self.__reduction)

        return total


class TrimmedMAELoss(nn.Module):
    def __init__(self, trim=0.2):
        super().__init__()
        self.__trim = trim

    def forward(self, prediction, target, mask):
        return trimmed_mae_loss(prediction, target, mask, trim=self.__trim)


class ScaleAndShiftInvariantLoss(nn.Module):
    def __init__(self, alpha=0.5, scales=4, reduction='batch-based'):
        super().__init__()

        self.__data_loss = MSELoss(reduction=reduction)
        self.__regularization_loss = GradientLoss(scales=scales, reduction=reduction)
        self.__alpha = alpha

        self.__prediction_ssi = None

    def forward(self, prediction, target, mask):

        scale, shift = compute_scale_and_shift(prediction, target, mask)
        self.__prediction_ssi = scale.view(-1, 1, 1) * prediction + shift.view(-1, 1, 1)

        total = self.__data_loss(self.__prediction_ssi, target, mask)
        if self.__alpha > 0:
            total += self.__alpha * self.__regularization_loss(self.__prediction_ssi, target, mask)

        return total

    def __get_prediction_ssi(self):
        return self.__prediction_ssi

    prediction_ssi = property(__get_prediction_ssi)


class TrimmedProcrustesLoss(nn.Module):
    def __init__(self, alpha=0.5, scales=4, trim=0.2, reduction="batch-based"):
        super().__init__()

        self.__data_loss = TrimmedMAELoss(trim=trim)
        self.__regularization_loss = GradientLoss(scales=scales, reduction=reduction)
        self.__alpha = alpha
        self.__prediction_ssi = None

    def forward(self, prediction, target, mask):
        self.__prediction_ssi = normalize_prediction_robust(prediction, mask)
        target_ = normalize_prediction_robust(target, mask)

        total = self.__data_loss(self.__prediction_ssi, target_, mask)
        if self.__alpha > 0:
            total += self.__alpha * self.__regularization_loss(
                self.__prediction_ssi, target_, mask
            )

        return total

    def __get_prediction_ssi(self):
        return self.__prediction_ssi

    prediction_ssi = property(__get_prediction_ssi)


# --------------------------------------------------------------------------- toy scenes
H = W = 24


def make_scenes(n, rng):
    """Disparity of a ground plane rising toward the bottom plus boxes standing on it; the image is
    a shaded, textured rendering (nearer is brighter, texture frequency grows with distance); the
    sky rows and random holes are invalid (mask 0)."""
    rows = np.arange(H)[:, None] + 0.5
    images = np.zeros((n, 1, H, W), np.float32)
    disparity = np.zeros((n, H, W), np.float32)
    masks = np.zeros((n, H, W), np.float32)
    for i in range(n):
        horizon = rng.randint(5, 9)
        disp = np.where(rows > horizon, (rows - horizon) / (H - horizon), 0.0) * np.ones((1, W))
        for _ in range(rng.randint(1, 3)):
            x0 = rng.randint(0, W - 6)
            w = rng.randint(4, 8)
            base = rng.randint(horizon + 5, H)
            h = rng.randint(4, 9)
            d = (base - horizon) / (H - horizon)
            disp[max(base - h, 0):base, x0:x0 + w] = np.maximum(disp[max(base - h, 0):base, x0:x0 + w], d)
        valid = (disp > 0).astype(np.float32)
        hy, hx = rng.randint(0, H - 4), rng.randint(0, W - 4)
        valid[hy:hy + 3, hx:hx + 3] = 0
        texture = 0.5 + 0.5 * np.sin(np.arange(W)[None, :] * (1.5 - disp) * 2.0 + rng.uniform(0, 6))
        images[i, 0] = 0.3 + 0.7 * disp * (0.6 + 0.4 * texture) + 0.05 * rng.randn(H, W)
        disparity[i] = disp
        masks[i] = valid
    return torch.from_numpy(images), torch.from_numpy(disparity), torch.from_numpy(masks)


rng = np.random.RandomState(seed)
train_x, train_d, train_m = make_scenes(96, rng)
val_x, val_d, val_m = make_scenes(32, rng)

# --------------------------------------------------------- 1. closed form vs torch.linalg.lstsq
prediction = torch.rand(6, H, W) * 2
target = 3.0 * prediction + 0.5 + 0.1 * torch.randn(6, H, W)
mask = (torch.rand(6, H, W) > 0.3).float()
mask[4] = 0  # an empty mask
prediction[5] = 1.25  # a constant prediction: singular system
scale, shift = compute_scale_and_shift(prediction, target, mask)
scale_nz, shift_nz = compute_scale_and_shift_positive(prediction, target, mask)
lstsq_err = 0.0
for b in range(4):
    sel = mask[b].bool()
    A = torch.stack([prediction[b][sel], torch.ones(int(sel.sum()))], dim=1).double()
    solution = torch.linalg.lstsq(A, target[b][sel].double()[:, None]).solution[:, 0]
    lstsq_err = max(lstsq_err, (solution - torch.stack([scale[b], shift[b]]).double()).abs().max().item())
det_guard = float(scale[4] == 0 and shift[4] == 0 and scale[5] == 0 and shift[5] == 0)
nonzero_same = torch.equal(scale[:4], scale_nz[:4]) and torch.equal(shift[:4], shift_nz[:4])
print(f"scale {scale[0].item():.3f} shift {shift[0].item():.3f} closed form vs lstsq max err {lstsq_err:.3e}, "
      f"det guard zeros {det_guard}, det > 0 guard same {nonzero_same}")

# ------------------------------------------------------- 2. invariance to scale + shift (two routes)
pred = torch.rand(4, H, W) + 0.1
tgt = val_d[:4]
msk = val_m[:4]
invariance = {}
for name, loss_fn in (("ssi_batch", ScaleAndShiftInvariantLoss(reduction='batch-based')),
                      ("ssi_image", ScaleAndShiftInvariantLoss(reduction='image-based')),
                      ("trim", TrimmedProcrustesLoss())):
    base = loss_fn(pred, tgt, msk)
    moved = loss_fn(2.5 * pred + 0.75, tgt, msk)
    invariance[name] = (abs(base.item() - moved.item()) / base.item(), base.item())
    print(f"{name}: loss {base.item():.6f} after scale+shift {moved.item():.6f}")
inv_rel = max(v[0] for v in invariance.values())
aligned = ScaleAndShiftInvariantLoss()
aligned(pred, tgt, msk)
ssi_direct = compute_scale_and_shift(pred, tgt, msk)
ssi_err = (aligned.prediction_ssi - (ssi_direct[0].view(-1, 1, 1) * pred + ssi_direct[1].view(-1, 1, 1))).abs().max().item()
print(f"prediction_ssi property matches: {ssi_err == 0.0}")


# ------------------------------------------------------------------------------ 3. toy depth
class TinyMiDaS(nn.Module):
    def __init__(self, features=16, non_negative=True):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(1, features, 3, padding=1), nn.ReLU(True))
        self.layer2 = nn.Sequential(nn.Conv2d(features, 2 * features, 3, stride=2, padding=1), nn.ReLU(True))
        self.layer3 = nn.Sequential(nn.Conv2d(2 * features, 2 * features, 3, stride=2, padding=1), nn.ReLU(True))
        self.refine = nn.Conv2d(2 * features, features, 3, padding=1)
        self.head = nn.Sequential(
            nn.Conv2d(features, features // 2, kernel_size=3, stride=1, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(features // 2, 16, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(16, 1, kernel_size=1, stride=1, padding=0),
            nn.ReLU(True) if non_negative else nn.Identity(),
        )
        # a positive start: a non-negative head that outputs zeros everywhere has no scale to fit
        nn.init.constant_(self.head[3].bias, 1.0)

    def forward(self, x):
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        path = F.interpolate(l3, scale_factor=2, mode="bilinear", align_corners=True) + l2
        path = F.relu(self.refine(path))
        return torch.squeeze(self.head(path), dim=1)


@torch.no_grad()
def evaluate(model):
    model.eval()
    pred = model(val_x)
    model.train()
    s, t = compute_scale_and_shift(pred, val_d, val_m)
    pred_aligned = s.view(-1, 1, 1) * pred + t.view(-1, 1, 1)
    valid = val_m.bool()
    abs_err = (pred_aligned[valid] - val_d[valid]).abs().mean().item()
    ratio = torch.max(pred_aligned[valid].clamp(min=1e-3) / val_d[valid], val_d[valid] / pred_aligned[valid].clamp(min=1e-3))
    delta1 = (ratio < 1.25).float().mean().item()
    return abs_err, delta1


model = TinyMiDaS(non_negative=False)
criterion = ScaleAndShiftInvariantLoss(alpha=0.5, scales=4, reduction='batch-based')
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
err_before, delta_before = evaluate(model)
print(f"before: aligned abs err {err_before:.4f} delta1 {delta_before:.4f}")
for epoch in range(30):
    perm = torch.randperm(train_x.shape[0])
    total = 0.0
    for it in range(0, train_x.shape[0], 16):
        idx = perm[it:it + 16]
        loss = criterion(model(train_x[idx]), train_d[idx], train_m[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 10 == 9:
        err, delta = evaluate(model)
        print(f"epoch {epoch + 1} ssi loss {total / 6:.5f} aligned abs err {err:.4f} delta1 {delta:.4f}")
err_after, delta_after = evaluate(model)
print(f"trimmed procrustes loss on validation {TrimmedProcrustesLoss()(model(val_x), val_d, val_m).item():.4f}")
print(f"FINAL lstsq_err={lstsq_err:.3e} det_guard={det_guard:.0f} nonzero_same={int(nonzero_same)} inv_rel={inv_rel:.3e} "
      f"err_before={err_before:.4f} err_after={err_after:.4f} delta1_before={delta_before:.4f} "
      f"delta1_after={delta_after:.4f}")
