"""PSMNet (Chang & Chen, CVPR 2018) in the JiaRenChang/PSMNet layout, on synthetic shifted stereo pairs.

The reference's modules at toy width: ``convbn``/``convbn_3d`` (conv + BatchNorm without bias),
``BasicBlock`` with ``out += x``, ``feature_extraction`` (``firstconv``, ``_make_layer`` residual
stages, a spatial pyramid of ``nn.AvgPool2d`` branches upsampled by ``F.interpolate(mode='bilinear')``
and ``torch.cat``-ed into ``lastconv``) shared by both views; the concatenation cost volume
``torch.zeros(B, 2C, maxdisp // 4, H, W)`` filled by slicing, ``cost[:, :C, i, :, i:] =
refimg_fea[:, :, :, i:]`` and ``cost[:, C:, i, :, i:] = targetimg_fea[:, :, :, :-i]``; ``dres0``/``dres1``
and three stacked ``hourglass`` modules (stride-2 ``Conv3d``, ``ConvTranspose3d(output_padding=1)``,
``F.relu(..., inplace=True)`` on the pre/post skips), ``classif1..3`` summed in cascade, upsampled by
``F.interpolate(cost, [maxdisp, H, W], mode='trilinear')``, ``torch.squeeze(cost, 1)`` and
``disparityregression`` (``torch.sum(x * self.disp.data, 1, keepdim=True)`` over
``F.softmax(-cost, dim=1)``, the soft argmin). Initialisation is the reference's loop over
``self.modules()`` (``normal_(0, math.sqrt(2. / n))``), training its ``0.5 / 0.7 / 1.0``-weighted
``F.smooth_l1_loss(output[mask], disp_true[mask], size_average=True)`` on ``mask = disp_true <
maxdisp`` with Adam(betas=(0.9, 0.999)), testing ``torch.mean(torch.abs(output[mask] - disp_true[mask]))``.

Pairs are rendered from textures: a background plane at disparity d0 and a fronto-parallel rectangle
at d1 > d0, the right view shifted by the disparity of each layer.

Checked: the end-point error on held-out pairs falls below 0.8 of its untrained value (the EPE of
the best constant, the median disparity, is printed beside it), and the soft argmin of a sharply peaked cost volume equals its argmin.
"""

# ruff: noqa: UP008  (the reference's own spelling: super(Class, self))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

H, W, MAXDISP = 16, 32, 16


# ----------------------------------------------------------------------------------- submodule.py
def convbn(in_planes, out_planes, kernel_size, stride, pad, dilation):
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride,
                                   padding=dilation if dilation > 1 else pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_planes))


def convbn_3d(in_planes, out_planes, kernel_size, stride, pad):
    return nn.Sequential(nn.Conv3d(in_planes, out_planes, kernel_size=kernel_size, padding=pad, stride=stride, bias=False),
                         nn.BatchNorm3d(out_planes))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample, pad, dilation):
        super(BasicBlock, self).__init__()
        self.conv1 = nn.Sequential(convbn(inplanes, planes, 3, stride, pad, dilation), nn.ReLU(inplace=True))
        self.conv2 = convbn(planes, planes, 3, 1, pad, dilation)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.conv1(x)
        out = self.conv2(out)
        if self.downsample is not None:
            x = self.downsample(x)
        out += x
        return out


class disparityregression(nn.Module):
    def __init__(self, maxdisp):
        super(disparityregression, self).__init__()
        self.disp = torch.Tensor(np.reshape(np.array(range(maxdisp)), [1, maxdisp, 1, 1]))

    def forward(self, x):
        out = torch.sum(x * self.disp.data, 1, keepdim=True)
        return out


class feature_extraction(nn.Module):
    def __init__(self):
        super(feature_extraction, self).__init__()
        self.inplanes = 8
        self.firstconv = nn.Sequential(convbn(3, 8, 3, 2, 1, 1), nn.ReLU(inplace=True),
                                       convbn(8, 8, 3, 1, 1, 1), nn.ReLU(inplace=True))
        self.layer1 = self._make_layer(BasicBlock, 8, 1, 1, 1, 1)
        self.layer2 = self._make_layer(BasicBlock, 16, 1, 2, 1, 1)
        self.layer3 = self._make_layer(BasicBlock, 16, 1, 1, 1, 2)
        self.branch1 = nn.Sequential(nn.AvgPool2d((4, 4), stride=(4, 4)), convbn(16, 4, 1, 1, 0, 1), nn.ReLU(inplace=True))
        self.branch2 = nn.Sequential(nn.AvgPool2d((2, 2), stride=(2, 2)), convbn(16, 4, 1, 1, 0, 1), nn.ReLU(inplace=True))
        self.lastconv = nn.Sequential(convbn(40, 16, 3, 1, 1, 1), nn.ReLU(inplace=True),
                                      nn.Conv2d(16, 8, kernel_size=1, padding=0, stride=1, bias=False))

    def _make_layer(self, block, planes, blocks, stride, pad, dilation):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),)
        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample, pad, dilation))
        self.inplanes = planes * block.expansion
        for _i in range(1, blocks):
            layers.append(block(self.inplanes, planes, 1, None, pad, dilation))
        return nn.Sequential(*layers)

    def forward(self, x):
        output = self.firstconv(x)
        output = self.layer1(output)
        output_raw = self.layer2(output)
        output_skip = self.layer3(output_raw)

        output_branch1 = self.branch1(output_skip)
        output_branch1 = F.interpolate(output_branch1, (output_skip.size()[2], output_skip.size()[3]), mode="bilinear", align_corners=False)
        output_branch2 = self.branch2(output_skip)
        output_branch2 = F.interpolate(output_branch2, (output_skip.size()[2], output_skip.size()[3]), mode="bilinear", align_corners=False)

        output_feature = torch.cat((output_raw, output_skip, output_branch2, output_branch1), 1)
        output_feature = self.lastconv(output_feature)
        return output_feature


# ----------------------------------------------------------------------------------- stackhourglass.py
class hourglass(nn.Module):
    def __init__(self, inplanes):
        super(hourglass, self).__init__()
        self.conv1 = nn.Sequential(convbn_3d(inplanes, inplanes * 2, kernel_size=3, stride=2, pad=1), nn.ReLU(inplace=True))
        self.conv2 = convbn_3d(inplanes * 2, inplanes * 2, kernel_size=3, stride=1, pad=1)
        self.conv3 = nn.Sequential(convbn_3d(inplanes * 2, inplanes * 2, kernel_size=3, stride=2, pad=1), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(convbn_3d(inplanes * 2, inplanes * 2, kernel_size=3, stride=1, pad=1), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.ConvTranspose3d(inplanes * 2, inplanes * 2, kernel_size=3, padding=1, output_padding=1, stride=2, bias=False),
                                   nn.BatchNorm3d(inplanes * 2))  # +conv2
        self.conv6 = nn.Sequential(nn.ConvTranspose3d(inplanes * 2, inplanes, kernel_size=3, padding=1, output_padding=1, stride=2, bias=False),
                                   nn.BatchNorm3d(inplanes))  # +x

    def forward(self, x, presqu, postsqu):
        out = self.conv1(x)  # in:1/4 out:1/8
        pre = self.conv2(out)  # in:1/8 out:1/8
        if postsqu is not None:
            pre = F.relu(pre + postsqu, inplace=True)
        else:
            pre = F.relu(pre, inplace=True)

        out = self.conv3(pre)  # in:1/8 out:1/16
        out = self.conv4(out)  # in:1/16 out:1/16

        if presqu is not None:
            post = F.relu(self.conv5(out) + presqu, inplace=True)  # in:1/16 out:1/8
        else:
            post = F.relu(self.conv5(out) + pre, inplace=True)

        out = self.conv6(post)  # in:1/8 out:1/4
        return out, pre, post


class PSMNet(nn.Module):
    def __init__(self, maxdisp):
        super(PSMNet, self).__init__()
        self.maxdisp = maxdisp
        self.feature_extraction = feature_extraction()
        self.dres0 = nn.Sequential(convbn_3d(16, 8, 3, 1, 1), nn.ReLU(inplace=True),
                                   convbn_3d(8, 8, 3, 1, 1), nn.ReLU(inplace=True))
        self.dres1 = nn.Sequential(convbn_3d(8, 8, 3, 1, 1), nn.ReLU(inplace=True),
                                   convbn_3d(8, 8, 3, 1, 1))
        self.dres2 = hourglass(8)
        self.dres3 = hourglass(8)
        self.dres4 = hourglass(8)
        self.classif1 = nn.Sequential(convbn_3d(8, 8, 3, 1, 1), nn.ReLU(inplace=True),
                                      nn.Conv3d(8, 1, kernel_size=3, padding=1, stride=1, bias=False))
        self.classif2 = nn.Sequential(convbn_3d(8, 8, 3, 1, 1), nn.ReLU(inplace=True),
                                      nn.Conv3d(8, 1, kernel_size=3, padding=1, stride=1, bias=False))
        self.classif3 = nn.Sequential(convbn_3d(8, 8, 3, 1, 1), nn.ReLU(inplace=True),
                                      nn.Conv3d(8, 1, kernel_size=3, padding=1, stride=1, bias=False))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2. / n))
            elif isinstance(m, nn.Conv3d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.kernel_size[2] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2. / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm3d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, left, right):
        refimg_fea = self.feature_extraction(left)
        targetimg_fea = self.feature_extraction(right)

        # matching
        cost = torch.zeros(refimg_fea.size()[0], refimg_fea.size()[1] * 2, self.maxdisp // 4, refimg_fea.size()[2], refimg_fea.size()[3])
        for i in range(self.maxdisp // 4):
            if i > 0:
                cost[:, :refimg_fea.size()[1], i, :, i:] = refimg_fea[:, :, :, i:]
                cost[:, refimg_fea.size()[1]:, i, :, i:] = targetimg_fea[:, :, :, :-i]
            else:
                cost[:, :refimg_fea.size()[1], i, :, :] = refimg_fea
                cost[:, refimg_fea.size()[1]:, i, :, :] = targetimg_fea
        cost = cost.contiguous()

        cost0 = self.dres0(cost)
        cost0 = self.dres1(cost0) + cost0

        out1, pre1, post1 = self.dres2(cost0, None, None)
        out1 = out1 + cost0
        out2, pre2, post2 = self.dres3(out1, pre1, post1)
        out2 = out2 + cost0
        out3, pre3, post3 = self.dres4(out2, pre1, post2)
        out3 = out3 + cost0

        cost1 = self.classif1(out1)
        cost2 = self.classif2(out2) + cost1
        cost3 = self.classif3(out3) + cost2

        if self.training:
            cost1 = F.interpolate(cost1, [self.maxdisp, left.size()[2], left.size()[3]], mode="trilinear", align_corners=False)
            cost2 = F.interpolate(cost2, [self.maxdisp, left.size()[2], left.size()[3]], mode="trilinear", align_corners=False)

            cost1 = torch.squeeze(cost1, 1)
            pred1 = F.softmax(-cost1, dim=1)
            pred1 = disparityregression(self.maxdisp)(pred1)

            cost2 = torch.squeeze(cost2, 1)
            pred2 = F.softmax(-cost2, dim=1)
            pred2 = disparityregression(self.maxdisp)(pred2)

        cost3 = F.interpolate(cost3, [self.maxdisp, left.size()[2], left.size()[3]], mode="trilinear", align_corners=False)
        cost3 = torch.squeeze(cost3, 1)
        pred3 = F.softmax(-cost3, dim=1)
        pred3 = disparityregression(self.maxdisp)(pred3)

        if self.training:
            return pred1, pred2, pred3
        else:
            return pred3


# ----------------------------------------------------------------------------------- synthetic stereo
def texture(h, w):
    """Blobs of two pixels, smoothed: random dots at half resolution, upsampled and blurred."""
    t = rng.rand(3, h // 2 + 2, w // 2 + 2).repeat(2, axis=1).repeat(2, axis=2)
    t = 0.25 * t[:, :, :-2] + 0.5 * t[:, :, 1:-1] + 0.25 * t[:, :, 2:]
    t = 0.25 * t[:, :-2] + 0.5 * t[:, 1:-1] + 0.25 * t[:, 2:]
    return t[:, :h, :w].astype(np.float32)


def make_pairs(n):
    lefts = np.zeros((n, 3, H, W), dtype=np.float32)
    rights = np.zeros((n, 3, H, W), dtype=np.float32)
    disps = np.zeros((n, H, W), dtype=np.float32)
    for k in range(n):
        d0, d1 = rng.randint(2, 7), rng.randint(8, 14)
        bg = texture(H, W + MAXDISP)
        lefts[k] = bg[:, :, :W]
        rights[k] = bg[:, :, d0:d0 + W]
        disps[k] = d0
        fh, fw = rng.randint(6, 12), rng.randint(8, 14)
        y0, x0 = rng.randint(0, H - fh + 1), rng.randint(d1, W - fw + 1)
        fg = texture(fh, fw) * 0.8 + 0.2
        lefts[k][:, y0:y0 + fh, x0:x0 + fw] = fg
        rights[k][:, y0:y0 + fh, x0 - d1:x0 - d1 + fw] = fg
        disps[k][y0:y0 + fh, x0:x0 + fw] = d1
    mean = np.array([0.5, 0.5, 0.5], dtype=np.float32).reshape(1, 3, 1, 1)
    return torch.from_numpy((lefts - mean) / 0.25), torch.from_numpy((rights - mean) / 0.25), torch.from_numpy(disps)


def train(model, optimizer, imgL, imgR, disp_L):
    model.train()
    disp_true = disp_L
    # ---------
    mask = disp_true < MAXDISP
    mask.detach_()
    # ----
    optimizer.zero_grad()
    output1, output2, output3 = model(imgL, imgR)
    output1 = torch.squeeze(output1, 1)
    output2 = torch.squeeze(output2, 1)
    output3 = torch.squeeze(output3, 1)
    loss = 0.5 * F.smooth_l1_loss(output1[mask], disp_true[mask], size_average=True) \
        + 0.7 * F.smooth_l1_loss(output2[mask], disp_true[mask], size_average=True) \
        + F.smooth_l1_loss(output3[mask], disp_true[mask], size_average=True)
    loss.backward()
    optimizer.step()
    return loss.data


def test(model, imgL, imgR, disp_true):
    model.eval()
    mask = disp_true < MAXDISP
    with torch.no_grad():
        output3 = model(imgL, imgR)
    output = torch.squeeze(output3.data.cpu(), 1)
    if len(disp_true[mask]) == 0:
        loss = 0
    else:
        loss = torch.mean(torch.abs(output[mask] - disp_true[mask]))  # end-point-error
    bad3 = (torch.abs(output[mask] - disp_true[mask]) > 3).float().mean()
    return loss.data.cpu(), bad3


# ----------------------------------------------------------------------------------- soft argmin check
cost = torch.rand(2, MAXDISP, 5, 7)
target = torch.randint(0, MAXDISP, (2, 1, 5, 7))
cost = cost.scatter(1, target, -20.0)
soft = disparityregression(MAXDISP)(F.softmax(-cost, dim=1))
hard = torch.argmin(cost, dim=1, keepdim=True).float()
soft_ok = bool(torch.allclose(soft, hard, atol=1e-4)) and torch.equal(hard.long(), target)
print(f"soft argmin == argmin on a peaked volume: {soft_ok} (max diff {(soft - hard).abs().max().item():.2e})")

# ----------------------------------------------------------------------------------- main.py
model = PSMNet(MAXDISP)
print(f"Number of model parameters: {sum([p.data.nelement() for p in model.parameters()])}")
optimizer = torch.optim.Adam(model.parameters(), lr=0.003, betas=(0.9, 0.999))

val_L, val_R, val_D = make_pairs(8)
epe0, bad0 = test(model, val_L, val_R, val_D)
const = torch.mean(torch.abs(val_D - val_D.median()))
print(f"untrained: EPE {epe0.item():.4f} >3px {bad0.item():.4f}, constant-median EPE {const.item():.4f}")

epochs, batches, batch_size = 8, 12, 4
for epoch in range(1, epochs + 1):
    total_train_loss = 0
    for _batch_idx in range(batches):
        imgL, imgR, disp_L = make_pairs(batch_size)
        loss = train(model, optimizer, imgL, imgR, disp_L)
        total_train_loss += loss
    epe, bad = test(model, val_L, val_R, val_D)
    print(f"epoch {epoch} total training loss = {total_train_loss / batches:.3f}, val EPE {epe:.4f} >3px {bad:.4f}")

improved = int(epe.item() < 0.8 * epe0.item())
print(f"FINAL epe={epe.item():.4f} bad3={bad.item():.4f} train_loss={(total_train_loss / batches).item():.4f} "
      f"improved={improved} soft_argmin_ok={int(soft_ok)}")
