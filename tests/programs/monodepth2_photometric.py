"""Monodepth2 (Godard et al., ICCV 2019; nianticlabs/monodepth2 layers.py, trainer.py) at toy size.

Synthetic three-frame clips (frame ids 0, -1, 1) of a textured, tilted plane are rendered analytically:
the target camera sees the plane ``n . X = d``; each source camera is moved by a known small rotation and
translation, and every source pixel's ray is intersected with the plane and coloured by the same smooth
texture of the 3-d point, so warping the target by the true depth and pose must reproduce it. The model
follows the repository: ``BackprojectDepth`` (``np.meshgrid(..., indexing='xy')`` ->
``nn.Parameter(torch.from_numpy(...), requires_grad=False)``, ``torch.matmul(inv_K[:, :3, :3],
pix_coords)``), ``Project3D`` (``P = torch.matmul(K, T)[:, :3, :]``, ``pix_coords / (z + eps)``, in-place
normalisation of a permuted view to [-1, 1]), ``transformation_from_parameters`` with
``rot_from_axisangle`` and ``get_translation_matrix`` (``invert=(frame_id < 0)``), ``F.grid_sample(...,
padding_mode="border", align_corners=True)``, ``SSIM`` by ``nn.AvgPool2d(3, 1)`` + ``nn.ReflectionPad2d(1)``,
``compute_reprojection_loss`` (0.85 SSIM + 0.15 L1), per-pixel minimum reprojection ``torch.min(combined,
dim=1)`` with identity reprojection losses + ``torch.randn(...) * 0.00001`` automasking,
``get_smooth_loss`` on mean-normalised disparity, ``disp_to_depth``, a depth encoder-decoder with
``Conv3x3`` (reflection padding) + ELU, nearest ``upsample`` and skip ``torch.cat``, sigmoid disparities
at two scales upsampled by ``F.interpolate(mode="bilinear", align_corners=False)``, and a ``PoseDecoder``
(``out.mean(3).mean(2)``, ``0.01 * out.view(-1, 1, 1, 6)``); Adam + ``StepLR``.

Checked: ``rot_from_axisangle`` against Rodrigues in NumPy and the inverted transform against
``torch.linalg.inv``; backprojecting and projecting with the identity pose gives the identity sampling
grid; warping with the true depth and pose reproduces the target far better than the unwarped source;
the training loss falls; median-scaled depth error (abs rel) of the trained network.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

HEIGHT, WIDTH = 24, 64
BATCH = 4
FRAME_IDS = [0, -1, 1]
SCALES = [0, 1]
MIN_DEPTH, MAX_DEPTH = 0.1, 100.0


# ------------------------------------------------------------------------------------------------ layers.py
def disp_to_depth(disp, min_depth, max_depth):
    """Convert network's sigmoid output into depth prediction"""
    min_disp = 1 / max_depth
    max_disp = 1 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    depth = 1 / scaled_disp
    return scaled_disp, depth


def transformation_from_parameters(axisangle, translation, invert=False):
    """Convert the network's (axisangle, translation) output into a 4x4 matrix"""
    R = rot_from_axisangle(axisangle)
    t = translation.clone()

    if invert:
        R = R.transpose(1, 2)
        t *= -1

    T = get_translation_matrix(t)

    if invert:
        M = torch.matmul(R, T)
    else:
        M = torch.matmul(T, R)

    return M


def get_translation_matrix(translation_vector):
    """Convert a translation vector into a 4x4 transformation matrix"""
    T = torch.zeros(translation_vector.shape[0], 4, 4).to(device=translation_vector.device)

    t = translation_vector.contiguous().view(-1, 3, 1)

    T[:, 0, 0] = 1
    T[:, 1, 1] = 1
    T[:, 2, 2] = 1
    T[:, 3, 3] = 1
    T[:, :3, 3, None] = t

    return T


def rot_from_axisangle(vec):
    """Convert an axisangle rotation into a 4x4 transformation matrix
    (adapted from https://github.com/Wallacoloo/printipi)
    Input 'vec' has to be Bx1x3
    """
    angle = torch.norm(vec, 2, 2, True)
    axis = vec / (angle + 1e-7)

    ca = torch.cos(angle)
    sa = torch.sin(angle)
    C = 1 - ca

    x = axis[..., 0].unsqueeze(1)
    y = axis[..., 1].unsqueeze(1)
    z = axis[..., 2].unsqueeze(1)

    xs = x * sa
    ys = y * sa
    zs = z * sa
    xC = x * C
    yC = y * C
    zC = z * C
    xyC = x * yC
    yzC = y * zC
    zxC = z * xC

    rot = torch.zeros((vec.shape[0], 4, 4)).to(device=vec.device)

    rot[:, 0, 0] = torch.squeeze(x * xC + ca)
    rot[:, 0, 1] = torch.squeeze(xyC - zs)
    rot[:, 0, 2] = torch.squeeze(zxC + ys)
    rot[:, 1, 0] = torch.squeeze(xyC + zs)
    rot[:, 1, 1] = torch.squeeze(y * yC + ca)
    rot[:, 1, 2] = torch.squeeze(yzC - xs)
    rot[:, 2, 0] = torch.squeeze(zxC - ys)
    rot[:, 2, 1] = torch.squeeze(yzC + xs)
    rot[:, 2, 2] = torch.squeeze(z * zC + ca)
    rot[:, 3, 3] = 1

    return rot


class ConvBlock(nn.Module):
    """Layer to perform a convolution followed by ELU"""

    def __init__(self, in_channels, out_channels):
        super(ConvBlock, self).__init__()  # noqa: UP008
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x):
        out = self.conv(x)
        out = self.nonlin(out)
        return out


class Conv3x3(nn.Module):
    """Layer to pad and convolve input"""

    def __init__(self, in_channels, out_channels, use_refl=True):
        super(Conv3x3, self).__init__()  # noqa: UP008
        if use_refl:
            self.pad = nn.ReflectionPad2d(1)
        else:
            self.pad = nn.ZeroPad2d(1)
        self.conv = nn.Conv2d(int(in_channels), int(out_channels), 3)

    def forward(self, x):
        out = self.pad(x)
        out = self.conv(out)
        return out


class BackprojectDepth(nn.Module):
    """Layer to transform a depth image into a point cloud"""

    def __init__(self, batch_size, height, width):
        super(BackprojectDepth, self).__init__()  # noqa: UP008

        self.batch_size = batch_size
        self.height = height
        self.width = width

        meshgrid = np.meshgrid(range(self.width), range(self.height), indexing="xy")
        self.id_coords = np.stack(meshgrid, axis=0).astype(np.float32)
        self.id_coords = nn.Parameter(torch.from_numpy(self.id_coords), requires_grad=False)

        self.ones = nn.Parameter(torch.ones(self.batch_size, 1, self.height * self.width), requires_grad=False)

        self.pix_coords = torch.unsqueeze(torch.stack([self.id_coords[0].view(-1), self.id_coords[1].view(-1)], 0), 0)
        self.pix_coords = self.pix_coords.repeat(batch_size, 1, 1)
        self.pix_coords = nn.Parameter(torch.cat([self.pix_coords, self.ones], 1), requires_grad=False)

    def forward(self, depth, inv_K):
        cam_points = torch.matmul(inv_K[:, :3, :3], self.pix_coords)
        cam_points = depth.view(self.batch_size, 1, -1) * cam_points
        cam_points = torch.cat([cam_points, self.ones], 1)

        return cam_points


class Project3D(nn.Module):
    """Layer which projects 3D points into a camera with intrinsics K and at position T"""

    def __init__(self, batch_size, height, width, eps=1e-7):
        super(Project3D, self).__init__()  # noqa: UP008

        self.batch_size = batch_size
        self.height = height
        self.width = width
        self.eps = eps

    def forward(self, points, K, T):
        P = torch.matmul(K, T)[:, :3, :]

        cam_points = torch.matmul(P, points)

        pix_coords = cam_points[:, :2, :] / (cam_points[:, 2, :].unsqueeze(1) + self.eps)
        pix_coords = pix_coords.view(self.batch_size, 2, self.height, self.width)
        pix_coords = pix_coords.permute(0, 2, 3, 1)
        pix_coords[..., 0] /= self.width - 1
        pix_coords[..., 1] /= self.height - 1
        pix_coords = (pix_coords - 0.5) * 2
        return pix_coords


def upsample(x):
    """Upsample input tensor by a factor of 2"""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def get_smooth_loss(disp, img):
    """Computes the smoothness loss for a disparity image
    The color image is used for edge-aware smoothness
    """
    grad_disp_x = torch.abs(disp[:, :, :, :-1] - disp[:, :, :, 1:])
    grad_disp_y = torch.abs(disp[:, :, :-1, :] - disp[:, :, 1:, :])

    grad_img_x = torch.mean(torch.abs(img[:, :, :, :-1] - img[:, :, :, 1:]), 1, keepdim=True)
    grad_img_y = torch.mean(torch.abs(img[:, :, :-1, :] - img[:, :, 1:, :]), 1, keepdim=True)

    grad_disp_x *= torch.exp(-grad_img_x)
    grad_disp_y *= torch.exp(-grad_img_y)

    return grad_disp_x.mean() + grad_disp_y.mean()


class SSIM(nn.Module):
    """Layer to compute the SSIM loss between a pair of images"""

    def __init__(self):
        super(SSIM, self).__init__()  # noqa: UP008
        self.mu_x_pool = nn.AvgPool2d(3, 1)
        self.mu_y_pool = nn.AvgPool2d(3, 1)
        self.sig_x_pool = nn.AvgPool2d(3, 1)
        self.sig_y_pool = nn.AvgPool2d(3, 1)
        self.sig_xy_pool = nn.AvgPool2d(3, 1)

        self.refl = nn.ReflectionPad2d(1)

        self.C1 = 0.01**2
        self.C2 = 0.03**2

    def forward(self, x, y):
        x = self.refl(x)
        y = self.refl(y)

        mu_x = self.mu_x_pool(x)
        mu_y = self.mu_y_pool(y)

        sigma_x = self.sig_x_pool(x**2) - mu_x**2
        sigma_y = self.sig_y_pool(y**2) - mu_y**2
        sigma_xy = self.sig_xy_pool(x * y) - mu_x * mu_y

        SSIM_n = (2 * mu_x * mu_y + self.C1) * (2 * sigma_xy + self.C2)
        SSIM_d = (mu_x**2 + mu_y**2 + self.C1) * (sigma_x + sigma_y + self.C2)

        return torch.clamp((1 - SSIM_n / SSIM_d) / 2, 0, 1)


# ----------------------------------------------------------------------------------------------- networks
class DepthNet(nn.Module):
    """A two-level ResnetEncoder stand-in with the DepthDecoder's upconv/skip/dispconv structure"""

    def __init__(self, num_ch_enc=(12, 24, 32), scales=range(2)):
        super().__init__()
        self.scales = scales
        self.num_ch_enc = np.array(num_ch_enc)
        self.num_ch_dec = np.array([8, 16, 24])
        self.enc = nn.ModuleList([
            nn.Sequential(nn.Conv2d(3, num_ch_enc[0], 3, 2, 1), nn.ReLU(inplace=True)),
            nn.Sequential(nn.Conv2d(num_ch_enc[0], num_ch_enc[1], 3, 2, 1), nn.ReLU(inplace=True)),
            nn.Sequential(nn.Conv2d(num_ch_enc[1], num_ch_enc[2], 3, 2, 1), nn.ReLU(inplace=True)),
        ])
        self.convs = nn.ModuleDict()
        for i in range(2, -1, -1):
            num_ch_in = self.num_ch_enc[-1] if i == 2 else self.num_ch_dec[i + 1]
            self.convs[f"upconv_{i}_0"] = ConvBlock(num_ch_in, self.num_ch_dec[i])
            num_ch_in = self.num_ch_dec[i]
            if i > 0:
                num_ch_in += self.num_ch_enc[i - 1]
            self.convs[f"upconv_{i}_1"] = ConvBlock(num_ch_in, self.num_ch_dec[i])
        for s in self.scales:
            self.convs[f"dispconv_{s}"] = Conv3x3(self.num_ch_dec[s], 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, input_image):
        x = (input_image - 0.45) / 0.225
        input_features = []
        for layer in self.enc:
            x = layer(x)
            input_features.append(x)
        outputs = {}
        x = input_features[-1]
        for i in range(2, -1, -1):
            x = self.convs[f"upconv_{i}_0"](x)
            x = [upsample(x)]
            if i > 0:
                x += [input_features[i - 1]]
            x = torch.cat(x, 1)
            x = self.convs[f"upconv_{i}_1"](x)
            if i in self.scales:
                outputs[("disp", i)] = self.sigmoid(self.convs[f"dispconv_{i}"](x))
        return outputs


class PoseNet(nn.Module):
    """A pose encoder on a frame pair plus monodepth2's PoseDecoder head"""

    def __init__(self, num_frames_to_predict_for=1):
        super().__init__()
        self.num_frames_to_predict_for = num_frames_to_predict_for
        self.encoder = nn.Sequential(
            nn.Conv2d(6, 16, 3, 2, 1), nn.ReLU(True), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(True), nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(True)
        )
        self.convs = {}
        self.convs[("squeeze")] = nn.Conv2d(32, 32, 1)
        self.convs[("pose", 0)] = nn.Conv2d(32, 32, 3, 1, 1)
        self.convs[("pose", 1)] = nn.Conv2d(32, 6 * num_frames_to_predict_for, 1)
        self.relu = nn.ReLU()
        self.net = nn.ModuleList(list(self.convs.values()))

    def forward(self, pose_inputs):
        last_features = self.encoder((pose_inputs - 0.45) / 0.225)
        out = self.relu(self.convs["squeeze"](last_features))
        out = self.relu(self.convs[("pose", 0)](out))
        out = self.convs[("pose", 1)](out)
        out = out.mean(3).mean(2)
        out = 0.01 * out.view(-1, self.num_frames_to_predict_for, 1, 6)
        axisangle = out[..., :3]
        translation = out[..., 3:]
        return axisangle, translation


# ----------------------------------------------------------------------------------------- synthetic scenes
K_NORM = np.array([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
K_FULL = K_NORM.copy()
K_FULL[0, :] *= WIDTH
K_FULL[1, :] *= HEIGHT
INV_K = np.linalg.pinv(K_FULL)


def rodrigues(axisangle):
    angle = np.linalg.norm(axisangle)
    k = axisangle / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def texture(points, params):
    """A smooth RGB texture of 3-d points on the plane, the same for every camera"""
    freqs, phases, colours = params
    value = 0.5 + np.zeros((3,) + points.shape[1:])
    for f, ph, col in zip(freqs, phases, colours):
        wave = np.sin(f[0] * points[0] + f[1] * points[1] + ph)
        value += col[:, None, None] * wave[None]
    return np.clip(value, 0.0, 1.0)


def render(normal, dist, R, t, params):
    """Image of the plane normal . X = dist seen by the camera X_cam = R X + t, and the depth map"""
    xs, ys = np.meshgrid(np.arange(WIDTH), np.arange(HEIGHT), indexing="xy")
    pix = np.stack([xs, ys, np.ones_like(xs)], 0).reshape(3, -1).astype(np.float64)
    rays = INV_K[:3, :3].astype(np.float64) @ pix  # camera-frame rays, z = 1
    world_rays = R.T @ rays
    origin = -R.T @ t
    lam = (dist - normal @ origin) / (normal @ world_rays)
    points = origin[:, None] + lam[None] * world_rays
    depth = lam  # rays have unit z in the camera frame, so the ray parameter is the depth
    image = texture(points.reshape(3, HEIGHT, WIDTH), params)
    return image.astype(np.float32), depth.reshape(HEIGHT, WIDTH).astype(np.float32)


def make_clip():
    tilt = rng.uniform(-0.25, 0.25, size=2)
    normal = np.array([tilt[0], tilt[1] - 0.35, 1.0])
    normal /= np.linalg.norm(normal)
    dist = rng.uniform(3.0, 5.0)
    params = (rng.uniform(1.0, 3.0, size=(4, 2)) * rng.choice([-1, 1], size=(4, 2)), rng.uniform(0, 2 * math.pi, 4), rng.uniform(0.08, 0.2, size=(4, 3)))
    frames, depth0, poses = {}, None, {}
    for f in FRAME_IDS:
        if f == 0:
            R, t = np.eye(3), np.zeros(3)
        else:
            aa = np.array([0.0, 0.02 * f, 0.0]) + rng.uniform(-0.005, 0.005, 3)
            R = rodrigues(aa)
            t = np.array([-0.25 * f, 0.0, -0.3 * f]) + rng.uniform(-0.03, 0.03, 3)
            poses[f] = (aa, t)
        frames[f], depth = render(normal, dist, R, t, params)
        if f == 0:
            depth0 = depth
    return frames, depth0, poses


clips = [make_clip() for _ in range(24)]
val_clips = [make_clip() for _ in range(BATCH)]


def batch_inputs(batch):
    inputs = {}
    for f in FRAME_IDS:
        inputs[("color", f, 0)] = torch.from_numpy(np.stack([c[0][f] for c in batch]))
        inputs[("color_aug", f, 0)] = inputs[("color", f, 0)]
    for scale in SCALES:
        inputs[("color", 0, scale)] = F.interpolate(inputs[("color", 0, 0)], scale_factor=1 / 2**scale, mode="bilinear", align_corners=False) if scale else inputs[("color", 0, 0)]
    inputs[("K", 0)] = torch.from_numpy(K_FULL).unsqueeze(0).repeat(len(batch), 1, 1)
    inputs[("inv_K", 0)] = torch.from_numpy(INV_K).unsqueeze(0).repeat(len(batch), 1, 1)
    inputs["depth_gt"] = torch.from_numpy(np.stack([c[1] for c in batch]))[:, None]
    return inputs


backproject_depth = {0: BackprojectDepth(BATCH, HEIGHT, WIDTH)}
project_3d = {0: Project3D(BATCH, HEIGHT, WIDTH)}
ssim = SSIM()


def true_pose(batch, f):
    aa = torch.tensor(np.stack([c[2][f][0] for c in batch]), dtype=torch.float32)[:, None, None]
    t = torch.tensor(np.stack([c[2][f][1] for c in batch]), dtype=torch.float32)[:, None, None]
    return aa, t


# ----------------------------------------------------------------------------------------------- checks
aa = torch.tensor([[[0.3, -0.2, 0.5]], [[0.01, 0.02, -0.015]]], dtype=torch.float32)
tr = torch.tensor([[[0.1, 0.2, -0.3]], [[1.0, -0.5, 0.25]]], dtype=torch.float32)
M = transformation_from_parameters(aa, tr)
M_inv = transformation_from_parameters(aa, tr, invert=True)
rot_err = max(np.abs(M[i, :3, :3].numpy() - rodrigues(aa[i, 0].numpy().astype(np.float64))).max() for i in range(2))
inv_err = (M_inv - torch.linalg.inv(M)).abs().max().item()
print(f"rot_from_axisangle vs Rodrigues max diff {rot_err:.1e}, inverted transform vs linalg.inv {inv_err:.1e}")

inputs = batch_inputs(val_clips)
identity = torch.eye(4).unsqueeze(0).repeat(BATCH, 1, 1)
cam_points = backproject_depth[0](inputs["depth_gt"], inputs[("inv_K", 0)])
grid = project_3d[0](cam_points, inputs[("K", 0)], identity)
ys, xs = torch.meshgrid(torch.linspace(-1, 1, HEIGHT), torch.linspace(-1, 1, WIDTH), indexing="ij")
grid_err = (grid - torch.stack((xs, ys), -1)).abs().max().item()
print(f"identity pose reprojection vs identity grid: max diff {grid_err:.1e}")

warp_l1, ident_l1 = [], []
for f in FRAME_IDS[1:]:
    axisangle, translation = true_pose(val_clips, f)
    T = transformation_from_parameters(axisangle[:, 0], translation[:, 0])
    cam_points = backproject_depth[0](inputs["depth_gt"], inputs[("inv_K", 0)])
    pix_coords = project_3d[0](cam_points, inputs[("K", 0)], T)
    warped = F.grid_sample(inputs[("color", f, 0)], pix_coords, padding_mode="border", align_corners=True)
    inside = ((pix_coords.abs() <= 1).all(-1)).unsqueeze(1).float()
    warp_l1.append(((warped - inputs[("color", 0, 0)]).abs() * inside).sum() / (inside.sum() * 3))
    ident_l1.append(((inputs[("color", f, 0)] - inputs[("color", 0, 0)]).abs() * inside).sum() / (inside.sum() * 3))
warp_l1, ident_l1 = torch.stack(warp_l1).mean().item(), torch.stack(ident_l1).mean().item()
print(f"true depth + pose warp L1 {warp_l1:.4f} vs unwarped source L1 {ident_l1:.4f}")


# -------------------------------------------------------------------------------------------- trainer.py
class Opt:
    scales = SCALES
    frame_ids = FRAME_IDS
    height, width = HEIGHT, WIDTH
    min_depth, max_depth = MIN_DEPTH, MAX_DEPTH
    disparity_smoothness = 1e-3
    disable_automasking = False
    avg_reprojection = False


opt = Opt()
models = {"encoder_decoder": DepthNet(scales=SCALES), "pose": PoseNet()}
parameters_to_train = []
for m in models.values():
    parameters_to_train += list(m.parameters())
model_optimizer = torch.optim.Adam(parameters_to_train, 2e-3)
model_lr_scheduler = torch.optim.lr_scheduler.StepLR(model_optimizer, 3, 0.5)
num_scales = len(opt.scales)


def predict_poses(inputs):
    outputs = {}
    pose_feats = {f_i: inputs["color_aug", f_i, 0] for f_i in opt.frame_ids}
    for f_i in opt.frame_ids[1:]:
        if f_i < 0:
            pose_inputs = [pose_feats[f_i], pose_feats[0]]
        else:
            pose_inputs = [pose_feats[0], pose_feats[f_i]]
        axisangle, translation = models["pose"](torch.cat(pose_inputs, 1))
        outputs[("axisangle", 0, f_i)] = axisangle
        outputs[("translation", 0, f_i)] = translation
        outputs[("cam_T_cam", 0, f_i)] = transformation_from_parameters(axisangle[:, 0], translation[:, 0], invert=(f_i < 0))
    return outputs


def generate_images_pred(inputs, outputs):
    for scale in opt.scales:
        disp = outputs[("disp", scale)]
        disp = F.interpolate(disp, [opt.height, opt.width], mode="bilinear", align_corners=False)
        source_scale = 0
        _, depth = disp_to_depth(disp, opt.min_depth, opt.max_depth)
        outputs[("depth", 0, scale)] = depth
        for i, frame_id in enumerate(opt.frame_ids[1:]):  # noqa: B007  (the reference's loop)
            T = outputs[("cam_T_cam", 0, frame_id)]
            cam_points = backproject_depth[source_scale](depth, inputs[("inv_K", source_scale)])
            pix_coords = project_3d[source_scale](cam_points, inputs[("K", source_scale)], T)
            outputs[("sample", frame_id, scale)] = pix_coords
            outputs[("color", frame_id, scale)] = F.grid_sample(
                inputs[("color", frame_id, source_scale)], outputs[("sample", frame_id, scale)], padding_mode="border", align_corners=True
            )
            if not opt.disable_automasking:
                outputs[("color_identity", frame_id, scale)] = inputs[("color", frame_id, source_scale)]


def compute_reprojection_loss(pred, target):
    abs_diff = torch.abs(target - pred)
    l1_loss = abs_diff.mean(1, True)
    ssim_loss = ssim(pred, target).mean(1, True)
    reprojection_loss = 0.85 * ssim_loss + 0.15 * l1_loss
    return reprojection_loss


def compute_losses(inputs, outputs):
    losses = {}
    total_loss = 0
    for scale in opt.scales:
        loss = 0
        reprojection_losses = []
        source_scale = 0
        disp = outputs[("disp", scale)]
        color = inputs[("color", 0, scale)]
        target = inputs[("color", 0, source_scale)]
        for frame_id in opt.frame_ids[1:]:
            pred = outputs[("color", frame_id, scale)]
            reprojection_losses.append(compute_reprojection_loss(pred, target))
        reprojection_losses = torch.cat(reprojection_losses, 1)
        if not opt.disable_automasking:
            identity_reprojection_losses = []
            for frame_id in opt.frame_ids[1:]:
                pred = inputs[("color", frame_id, source_scale)]
                identity_reprojection_losses.append(compute_reprojection_loss(pred, target))
            identity_reprojection_losses = torch.cat(identity_reprojection_losses, 1)
            identity_reprojection_loss = identity_reprojection_losses
        reprojection_loss = reprojection_losses
        if not opt.disable_automasking:
            # add random numbers to break ties
            identity_reprojection_loss += torch.randn(identity_reprojection_loss.shape) * 0.00001
            combined = torch.cat((identity_reprojection_loss, reprojection_loss), dim=1)
        else:
            combined = reprojection_loss
        if combined.shape[1] == 1:
            to_optimise = combined
        else:
            to_optimise, idxs = torch.min(combined, dim=1)
        if not opt.disable_automasking:
            outputs[f"identity_selection/{scale}"] = (idxs > identity_reprojection_loss.shape[1] - 1).float()
        loss += to_optimise.mean()
        mean_disp = disp.mean(2, True).mean(3, True)
        norm_disp = disp / (mean_disp + 1e-7)
        smooth_loss = get_smooth_loss(norm_disp, color)
        loss += opt.disparity_smoothness * smooth_loss / (2**scale)
        total_loss += loss
        losses[f"loss/{scale}"] = loss
    total_loss /= num_scales
    losses["loss"] = total_loss
    return losses


def process_batch(inputs):
    outputs = models["encoder_decoder"](inputs["color_aug", 0, 0])
    outputs.update(predict_poses(inputs))
    generate_images_pred(inputs, outputs)
    losses = compute_losses(inputs, outputs)
    return outputs, losses


def compute_depth_errors(gt, pred):
    thresh = torch.max((gt / pred), (pred / gt))
    a1 = (thresh < 1.25).float().mean()
    abs_rel = torch.mean(torch.abs(gt - pred) / gt)
    return abs_rel, a1


def evaluate():
    for m in models.values():
        m.eval()
    with torch.no_grad():
        inputs = batch_inputs(val_clips)
        outputs, losses = process_batch(inputs)
        depth_pred = outputs[("depth", 0, 0)]
        depth_gt = inputs["depth_gt"]
        depth_pred *= torch.median(depth_gt) / torch.median(depth_pred)
        abs_rel, a1 = compute_depth_errors(depth_gt, depth_pred)
    for m in models.values():
        m.train()
    return losses["loss"].item(), abs_rel.item(), a1.item(), outputs["identity_selection/0"].mean().item()


val_loss0, abs_rel0, _, _ = evaluate()
print(f"before training: val loss {val_loss0:.4f}, abs_rel {abs_rel0:.4f}")
epochs = 6
for epoch in range(epochs):
    order = torch.randperm(len(clips)).tolist()
    running = 0.0
    for b in range(len(clips) // BATCH):
        inputs = batch_inputs([clips[k] for k in order[b * BATCH : (b + 1) * BATCH]])
        outputs, losses = process_batch(inputs)
        model_optimizer.zero_grad()
        losses["loss"].backward()
        model_optimizer.step()
        running += losses["loss"].item()
    model_lr_scheduler.step()
    val_loss, abs_rel, a1, selected = evaluate()
    print(f"epoch {epoch}: train loss {running / (len(clips) // BATCH):.4f}, val loss {val_loss:.4f}, abs_rel {abs_rel:.4f}, a1 {a1:.4f}, reprojection chosen {selected:.4f}")

checks = int(rot_err < 1e-5 and inv_err < 1e-5 and grid_err < 1e-4 and warp_l1 < 0.25 * ident_l1)
print(f"FINAL val_loss={val_loss:.4f} loss_drop={val_loss0 - val_loss:.4f} abs_rel={abs_rel:.4f} warp_l1={warp_l1:.4f} checks_ok={checks}")
