"""HRNet for pose estimation (HRNet/deep-high-resolution-net.pytorch, ``lib/models/pose_hrnet.py``) at toy size.

Images are 32x32 with three synthetic "joints" (a red, a green and a blue blob joined by faint limbs on a
noisy background); the targets are Gaussian heatmaps at 1/4 resolution built in NumPy as the reference's
``JointsDataset.generate_target`` does (``tmp_size = sigma * 3``, clipped windows ``g_x``/``g_y``/``img_x``/
``img_y``, ``target_weight`` zero for a joint outside the map). The network keeps the reference's
structure: a strided stem, ``BasicBlock`` (``expansion = 1``, ``BN_MOMENTUM = 0.1``, in-place ``out += residual``),
``_make_transition_layer`` (``None`` where channels agree, strided 3x3 convs for a new branch) and
``HighResolutionModule`` with ``_make_branches`` and ``_make_fuse_layers`` (an ``nn.ModuleList`` of
``nn.ModuleList``s holding ``None`` on the diagonal, 1x1 conv + BN + ``nn.Upsample(scale_factor=2 ** (j - i),
mode='nearest')`` from lower resolutions, chains of strided 3x3 conv + BN (+ ReLU) to them), and a 1x1
``final_layer``. ``JointsMSELoss(use_target_weight=True)`` splits ``output.reshape((batch_size, num_joints,
-1)).split(1, 1)``; Adam with ``MultiStepLR``. ``get_max_preds`` decodes heatmaps (argmax over the flattened
map, ``% width`` and ``// width``, masked by ``maxvals > 0``) in NumPy as the reference does and in torch,
and the two must agree; ``accuracy`` is the reference's PCK (``calc_dists`` normalised, ``dist_acc`` at 0.5).

Checked: PCK on held-out images rising with training, the NumPy and torch decoders agreeing, and the fused
high-resolution output keeping the input branch's shape.
"""

# ruff: noqa: UP008, UP032  B007  (the reference's own spelling: super(Class, self), str.format, an unused loop index)

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

BN_MOMENTUM = 0.1
IMAGE_SIZE = 32
HEATMAP_SIZE = 8
NUM_JOINTS = 3
SIGMA = 1


def generate_target(joints, joints_vis):
    target_weight = np.ones((NUM_JOINTS, 1), dtype=np.float32)
    target_weight[:, 0] = joints_vis[:, 0]
    target = np.zeros((NUM_JOINTS, HEATMAP_SIZE, HEATMAP_SIZE), dtype=np.float32)
    tmp_size = SIGMA * 3
    feat_stride = IMAGE_SIZE / HEATMAP_SIZE
    for joint_id in range(NUM_JOINTS):
        mu_x = int(joints[joint_id][0] / feat_stride + 0.5)
        mu_y = int(joints[joint_id][1] / feat_stride + 0.5)
        ul = [int(mu_x - tmp_size), int(mu_y - tmp_size)]
        br = [int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1)]
        if ul[0] >= HEATMAP_SIZE or ul[1] >= HEATMAP_SIZE or br[0] < 0 or br[1] < 0:
            target_weight[joint_id] = 0
            continue
        size = 2 * tmp_size + 1
        x = np.arange(0, size, 1, np.float32)
        y = x[:, np.newaxis]
        x0 = y0 = size // 2
        g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * SIGMA**2))
        g_x = max(0, -ul[0]), min(br[0], HEATMAP_SIZE) - ul[0]
        g_y = max(0, -ul[1]), min(br[1], HEATMAP_SIZE) - ul[1]
        img_x = max(0, ul[0]), min(br[0], HEATMAP_SIZE)
        img_y = max(0, ul[1]), min(br[1], HEATMAP_SIZE)
        v = target_weight[joint_id]
        if v > 0.5:
            target[joint_id][img_y[0]:img_y[1], img_x[0]:img_x[1]] = g[g_y[0]:g_y[1], g_x[0]:g_x[1]]
    return target, target_weight


def make_sample():
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    image = 0.15 * rng.randn(3, IMAGE_SIZE, IMAGE_SIZE).astype(np.float32)
    joints = rng.uniform(3, IMAGE_SIZE - 4, size=(NUM_JOINTS, 2)).astype(np.float32)
    for a, b in ((0, 1), (1, 2)):
        for t in np.linspace(0, 1, 24):
            px, py = (1 - t) * joints[a] + t * joints[b]
            image[:, int(py), int(px)] += 0.3
    for j in range(NUM_JOINTS):
        blob = np.exp(-((xx - joints[j, 0]) ** 2 + (yy - joints[j, 1]) ** 2) / 4.0)
        image[j] += 1.5 * blob
    vis = np.ones((NUM_JOINTS, 1), dtype=np.float32)
    target, target_weight = generate_target(joints, vis)
    return image, target, target_weight, joints


train = [make_sample() for _ in range(96)]
test = [make_sample() for _ in range(32)]


def stack(samples):
    return tuple(torch.from_numpy(np.stack(parts)) for parts in zip(*samples))


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super(BasicBlock, self).__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        residual = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        out = self.relu(out)
        return out


class HighResolutionModule(nn.Module):
    def __init__(self, num_branches, blocks, num_blocks, num_inchannels, num_channels, fuse_method,
                 multi_scale_output=True):
        super(HighResolutionModule, self).__init__()
        self._check_branches(num_branches, blocks, num_blocks, num_inchannels, num_channels)
        self.num_inchannels = num_inchannels
        self.fuse_method = fuse_method
        self.num_branches = num_branches
        self.multi_scale_output = multi_scale_output
        self.branches = self._make_branches(num_branches, blocks, num_blocks, num_channels)
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU(True)

    def _check_branches(self, num_branches, blocks, num_blocks, num_inchannels, num_channels):
        if num_branches != len(num_blocks):
            error_msg = 'NUM_BRANCHES({}) <> NUM_BLOCKS({})'.format(num_branches, len(num_blocks))
            raise ValueError(error_msg)
        if num_branches != len(num_channels):
            error_msg = 'NUM_BRANCHES({}) <> NUM_CHANNELS({})'.format(num_branches, len(num_channels))
            raise ValueError(error_msg)

    def _make_one_branch(self, branch_index, block, num_blocks, num_channels, stride=1):
        downsample = None
        if stride != 1 or self.num_inchannels[branch_index] != num_channels[branch_index] * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.num_inchannels[branch_index], num_channels[branch_index] * block.expansion,
                          kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(num_channels[branch_index] * block.expansion, momentum=BN_MOMENTUM),
            )
        layers = []
        layers.append(block(self.num_inchannels[branch_index], num_channels[branch_index], stride, downsample))
        self.num_inchannels[branch_index] = num_channels[branch_index] * block.expansion
        for i in range(1, num_blocks[branch_index]):
            layers.append(block(self.num_inchannels[branch_index], num_channels[branch_index]))
        return nn.Sequential(*layers)

    def _make_branches(self, num_branches, block, num_blocks, num_channels):
        branches = []
        for i in range(num_branches):
            branches.append(self._make_one_branch(i, block, num_blocks, num_channels))
        return nn.ModuleList(branches)

    def _make_fuse_layers(self):
        if self.num_branches == 1:
            return None
        num_branches = self.num_branches
        num_inchannels = self.num_inchannels
        fuse_layers = []
        for i in range(num_branches if self.multi_scale_output else 1):
            fuse_layer = []
            for j in range(num_branches):
                if j > i:
                    fuse_layer.append(
                        nn.Sequential(
                            nn.Conv2d(num_inchannels[j], num_inchannels[i], 1, 1, 0, bias=False),
                            nn.BatchNorm2d(num_inchannels[i]),
                            nn.Upsample(scale_factor=2 ** (j - i), mode='nearest'),
                        )
                    )
                elif j == i:
                    fuse_layer.append(None)
                else:
                    conv3x3s = []
                    for k in range(i - j):
                        if k == i - j - 1:
                            num_outchannels_conv3x3 = num_inchannels[i]
                            conv3x3s.append(
                                nn.Sequential(
                                    nn.Conv2d(num_inchannels[j], num_outchannels_conv3x3, 3, 2, 1, bias=False),
                                    nn.BatchNorm2d(num_outchannels_conv3x3),
                                )
                            )
                        else:
                            num_outchannels_conv3x3 = num_inchannels[j]
                            conv3x3s.append(
                                nn.Sequential(
                                    nn.Conv2d(num_inchannels[j], num_outchannels_conv3x3, 3, 2, 1, bias=False),
                                    nn.BatchNorm2d(num_outchannels_conv3x3),
                                    nn.ReLU(True),
                                )
                            )
                    fuse_layer.append(nn.Sequential(*conv3x3s))
            fuse_layers.append(nn.ModuleList(fuse_layer))
        return nn.ModuleList(fuse_layers)

    def get_num_inchannels(self):
        return self.num_inchannels

    def forward(self, x):
        if self.num_branches == 1:
            return [self.branches[0](x[0])]
        for i in range(self.num_branches):
            x[i] = self.branches[i](x[i])
        x_fuse = []
        for i in range(len(self.fuse_layers)):
            y = x[0] if i == 0 else self.fuse_layers[i][0](x[0])
            for j in range(1, self.num_branches):
                if i == j:
                    y = y + x[j]
                else:
                    y = y + self.fuse_layers[i][j](x[j])
            x_fuse.append(self.relu(y))
        return x_fuse


class PoseHighResolutionNet(nn.Module):
    def __init__(self, stages=({"NUM_BRANCHES": 2, "NUM_CHANNELS": [8, 16]},
                               {"NUM_BRANCHES": 3, "NUM_CHANNELS": [8, 16, 32]})):
        super(PoseHighResolutionNet, self).__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        pre_stage_channels = [16]
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, cfg in enumerate(stages):
            num_channels = cfg["NUM_CHANNELS"]
            self.transitions.append(self._make_transition_layer(pre_stage_channels, num_channels))
            module = HighResolutionModule(cfg["NUM_BRANCHES"], BasicBlock, [1] * cfg["NUM_BRANCHES"],
                                          list(num_channels), num_channels, "SUM",
                                          multi_scale_output=i < len(stages) - 1)
            self.stages.append(module)
            pre_stage_channels = module.get_num_inchannels()
        self.final_layer = nn.Conv2d(pre_stage_channels[0], NUM_JOINTS, kernel_size=1, stride=1, padding=0)

    def _make_transition_layer(self, num_channels_pre_layer, num_channels_cur_layer):
        num_branches_cur = len(num_channels_cur_layer)
        num_branches_pre = len(num_channels_pre_layer)
        transition_layers = []
        for i in range(num_branches_cur):
            if i < num_branches_pre:
                if num_channels_cur_layer[i] != num_channels_pre_layer[i]:
                    transition_layers.append(
                        nn.Sequential(
                            nn.Conv2d(num_channels_pre_layer[i], num_channels_cur_layer[i], 3, 1, 1, bias=False),
                            nn.BatchNorm2d(num_channels_cur_layer[i]),
                            nn.ReLU(inplace=True),
                        )
                    )
                else:
                    transition_layers.append(None)
            else:
                conv3x3s = []
                for j in range(i + 1 - num_branches_pre):
                    inchannels = num_channels_pre_layer[-1]
                    outchannels = num_channels_cur_layer[i] if j == i - num_branches_pre else inchannels
                    conv3x3s.append(
                        nn.Sequential(
                            nn.Conv2d(inchannels, outchannels, 3, 2, 1, bias=False),
                            nn.BatchNorm2d(outchannels),
                            nn.ReLU(inplace=True),
                        )
                    )
                transition_layers.append(nn.Sequential(*conv3x3s))
        return nn.ModuleList(transition_layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        y_list = [x]
        for transition, stage in zip(self.transitions, self.stages):
            x_list = []
            for i in range(len(transition)):
                src = y_list[i] if i < len(y_list) else y_list[-1]
                if transition[i] is not None:
                    x_list.append(transition[i](src))
                else:
                    x_list.append(src)
            y_list = stage(x_list)
        return self.final_layer(y_list[0])


class JointsMSELoss(nn.Module):
    def __init__(self, use_target_weight):
        super(JointsMSELoss, self).__init__()
        self.criterion = nn.MSELoss(reduction='mean')
        self.use_target_weight = use_target_weight

    def forward(self, output, target, target_weight):
        batch_size = output.size(0)
        num_joints = output.size(1)
        heatmaps_pred = output.reshape((batch_size, num_joints, -1)).split(1, 1)
        heatmaps_gt = target.reshape((batch_size, num_joints, -1)).split(1, 1)
        loss = 0
        for idx in range(num_joints):
            heatmap_pred = heatmaps_pred[idx].squeeze()
            heatmap_gt = heatmaps_gt[idx].squeeze()
            if self.use_target_weight:
                loss += 0.5 * self.criterion(
                    heatmap_pred.mul(target_weight[:, idx]),
                    heatmap_gt.mul(target_weight[:, idx]),
                )
            else:
                loss += 0.5 * self.criterion(heatmap_pred, heatmap_gt)
        return loss / num_joints


def get_max_preds(batch_heatmaps):
    """get predictions from score maps (the reference's NumPy version)"""
    assert isinstance(batch_heatmaps, np.ndarray), 'batch_heatmaps should be numpy.ndarray'
    assert batch_heatmaps.ndim == 4, 'batch_images should be 4-ndim'
    batch_size = batch_heatmaps.shape[0]
    num_joints = batch_heatmaps.shape[1]
    width = batch_heatmaps.shape[3]
    heatmaps_reshaped = batch_heatmaps.reshape((batch_size, num_joints, -1))
    idx = np.argmax(heatmaps_reshaped, 2)
    maxvals = np.amax(heatmaps_reshaped, 2)
    maxvals = maxvals.reshape((batch_size, num_joints, 1))
    idx = idx.reshape((batch_size, num_joints, 1))
    preds = np.tile(idx, (1, 1, 2)).astype(np.float32)
    preds[:, :, 0] = (preds[:, :, 0]) % width
    preds[:, :, 1] = np.floor((preds[:, :, 1]) / width)
    pred_mask = np.tile(np.greater(maxvals, 0.0), (1, 1, 2))
    pred_mask = pred_mask.astype(np.float32)
    preds *= pred_mask
    return preds, maxvals


def get_max_preds_torch(batch_heatmaps):
    batch_size, num_joints, _, width = batch_heatmaps.shape
    heatmaps_reshaped = batch_heatmaps.reshape(batch_size, num_joints, -1)
    maxvals, idx = torch.max(heatmaps_reshaped, dim=2, keepdim=True)
    preds = idx.repeat(1, 1, 2).float()
    preds[:, :, 0] = preds[:, :, 0] % width
    preds[:, :, 1] = torch.floor(preds[:, :, 1] / width)
    preds *= (maxvals > 0.0).repeat(1, 1, 2).float()
    return preds, maxvals


def calc_dists(preds, target, normalize):
    preds = preds.astype(np.float32)
    target = target.astype(np.float32)
    dists = np.zeros((preds.shape[1], preds.shape[0]))
    for n in range(preds.shape[0]):
        for c in range(preds.shape[1]):
            if target[n, c, 0] > 1 and target[n, c, 1] > 1:
                normed_preds = preds[n, c, :] / normalize[n]
                normed_targets = target[n, c, :] / normalize[n]
                dists[c, n] = np.linalg.norm(normed_preds - normed_targets)
            else:
                dists[c, n] = -1
    return dists


def dist_acc(dists, thr=0.5):
    """Return percentage below threshold while ignoring values with a -1"""
    dist_cal = np.not_equal(dists, -1)
    num_dist_cal = dist_cal.sum()
    if num_dist_cal > 0:
        return np.less(dists[dist_cal], thr).sum() * 1.0 / num_dist_cal
    else:
        return -1


def accuracy(output, target, thr=0.5):
    h, w = output.shape[2], output.shape[3]
    pred, _ = get_max_preds(output)
    target, _ = get_max_preds(target)
    norm = np.ones((pred.shape[0], 2)) * np.array([h, w]) / 10
    dists = calc_dists(pred, target, norm)
    acc = [dist_acc(dists[i], thr) for i in range(NUM_JOINTS)]
    valid = [a for a in acc if a >= 0]
    return float(np.mean(valid)) if valid else 0.0


model = PoseHighResolutionNet()
criterion = JointsMSELoss(use_target_weight=True)
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [10, 14], 0.1)
for s, stage in enumerate(model.stages):
    print(f"fuse layers of stage {s + 2}: {[[type(m).__name__ for m in row] for row in stage.fuse_layers]}")
print(f"parameters: {sum(p.numel() for p in model.parameters())}")

test_images, test_targets, test_weights, _ = stack(test)


@torch.no_grad()
def validate():
    model.eval()
    output = model(test_images)
    loss = criterion(output, test_targets, test_weights).item()
    acc = accuracy(output.numpy(), test_targets.numpy())
    preds_np, maxvals_np = get_max_preds(output.numpy())
    preds_t, maxvals_t = get_max_preds_torch(output)
    agree = float(np.abs(preds_np - preds_t.numpy()).max() + np.abs(maxvals_np - maxvals_t.numpy()).max())
    model.train()
    return loss, acc, agree, output.shape


loss0, acc0, _, shape = validate()
print(f"output shape {tuple(shape)} before training: loss {loss0:.5f} PCK {acc0:.3f}")
BATCH = 16
for epoch in range(16):
    perm = rng.permutation(len(train))
    for b in range(0, len(train), BATCH):
        images, targets, weights, _ = stack([train[k] for k in perm[b:b + BATCH]])
        outputs = model(images)
        loss = criterion(outputs, targets, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    lr_scheduler.step()
    if epoch % 5 == 4:
        val_loss, acc, _, _ = validate()
        print(f"Epoch: [{epoch}] loss {loss.item():.5f} val loss {val_loss:.5f} PCK {acc:.3f}")

val_loss, acc, agree, _ = validate()
print(f"after training: val loss {val_loss:.5f} PCK {acc:.3f} decoder disagreement {agree}")
print(f"FINAL pck={acc:.4f} pck_gain={acc - acc0:.4f} val_loss={val_loss:.6f} decode_diff={agree:.4f}")
