"""EfficientViT (Cai et al. 2023) at toy size: ReLU linear attention classifying synthetic images.

In the style of mit-han-lab/efficientvit (`models/nn/ops.py`, `models/nn/act.py`, `models/nn/norm.py`,
`models/efficientvit/backbone.py`, `cls.py`): `val2tuple`, `get_same_padding`, `build_act`/`build_norm` from
registries of classes (`nn.Hardswish`, `nn.ReLU6`, `functools.partial(nn.GELU, approximate="tanh")`,
`nn.BatchNorm2d`), `ConvLayer` (`nn.Dropout2d`, `nn.Conv2d(..., padding=padding, dilation=..., groups=...,
bias=use_bias)`, norm, act), `DSConv`, `MBConv` (expand 1x1, depthwise 3x3 `groups=mid_channels`, project with
no activation), `ResidualBlock` + `IdentityLayer` shortcuts, and `LiteMLA`: a 1x1 qkv `ConvLayer`, multi-scale
tokens by `nn.Conv2d(3 * total_dim, 3 * total_dim, scale, padding=get_same_padding(scale), groups=3 * total_dim)`
then `nn.Conv2d(3 * total_dim, 3 * total_dim, 1, groups=3 * heads)`, `torch.cat(multi_scale_qkv, dim=1)`, the
ReLU linear attention in float32 under `@torch.autocast(device_type="cpu", enabled=False)` (`qkv.float()` for
half types, `torch.reshape(qkv, (B, -1, 3 * self.dim, H * W))`, `k.transpose(-1, -2)`, the padding trick
`v = F.pad(v, (0, 0, 0, 1), mode="constant", value=1)` giving numerator and denominator from one `torch.matmul`,
`out[:, :, :-1] / (out[:, :, -1:] + self.eps)`, `.to(qkv.dtype)`), the quadratic branch for few tokens
(`att_map / (torch.sum(att_map, dim=2, keepdim=True) + self.eps)`), `EfficientViTBlock`; a `ClsHead`
(`nn.AdaptiveAvgPool2d(1)`, `torch.flatten`, `nn.Linear`), AdamW without weight decay on norms/biases, a
warm-up + cosine `LambdaLR`, `CrossEntropyLoss(label_smoothing=0.1)`, `clip_grad_norm_`, `eval()` accuracy,
and inference under `torch.autocast("cpu", dtype=torch.bfloat16)`.
Checks: the padded-matmul linear attention equals the explicit `(q^T (k^T v)) / (q^T (k^T 1))` form and the
quadratic ReLU-kernel attention; the bfloat16-autocast logits agree with float32 in argmax.
"""
# ruff: noqa: UP031  (the repository's spelling: output_dict["stage%d" % stage_id])

import math
import os
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

num_classes = 4
img_size = 16
n_train, n_test = 256, 128
batch_size = 32
epochs = 6


def make_images(n):
    ys = rng.randint(0, num_classes, n)
    yy, xx = np.meshgrid(np.arange(img_size), np.arange(img_size), indexing="ij")
    imgs = np.zeros((n, 3, img_size, img_size), np.float32)
    for i, y in enumerate(ys):
        phase = rng.uniform(0, 2 * np.pi)
        freq = rng.uniform(0.6, 1.0)
        if y == 0:
            pat = np.sin(freq * xx + phase)
        elif y == 1:
            pat = np.sin(freq * yy + phase)
        elif y == 2:
            pat = np.sin(freq * (xx + yy) / 1.4 + phase)
        else:
            cy, cx = rng.uniform(4, 12, 2)
            pat = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 12.0) * 2 - 0.5
        colour = rng.uniform(0.5, 1.0, 3)
        imgs[i] = colour[:, None, None] * pat[None] + rng.normal(0, 0.5, (3, img_size, img_size))
    return torch.from_numpy(imgs), torch.from_numpy(ys.astype(np.int64))


x_train, y_train = make_images(n_train)
x_test, y_test = make_images(n_test)


def val2tuple(x, min_len: int = 1, idx_repeat: int = -1) -> tuple:
    x = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(x) > 0:
        x[idx_repeat:idx_repeat] = [x[idx_repeat] for _ in range(min_len - len(x))]
    return tuple(x)


def get_same_padding(kernel_size):
    if isinstance(kernel_size, tuple):
        return tuple([get_same_padding(ks) for ks in kernel_size])
    assert kernel_size % 2 > 0, "kernel size should be odd number"
    return kernel_size // 2


REGISTERED_ACT_DICT = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "silu": nn.SiLU,
    "gelu": partial(nn.GELU, approximate="tanh"),
}
REGISTERED_NORM_DICT = {"bn2d": nn.BatchNorm2d, "ln": nn.LayerNorm}


def build_act(name, **kwargs):
    if name in REGISTERED_ACT_DICT:
        return REGISTERED_ACT_DICT[name](**kwargs)
    return None


def build_norm(name="bn2d", num_features=None, **kwargs):
    if name == "ln":
        kwargs["normalized_shape"] = num_features
    else:
        kwargs["num_features"] = num_features
    if name in REGISTERED_NORM_DICT:
        return REGISTERED_NORM_DICT[name](**kwargs)
    return None


class ConvLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, dilation=1, groups=1, use_bias=False,
                 dropout=0, norm="bn2d", act_func="relu"):
        super().__init__()
        padding = get_same_padding(kernel_size)
        padding *= dilation
        self.dropout = nn.Dropout2d(dropout, inplace=False) if dropout > 0 else None
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, kernel_size),
                              stride=(stride, stride), padding=padding, dilation=(dilation, dilation),
                              groups=groups, bias=use_bias)
        self.norm = build_norm(norm, num_features=out_channels)
        self.act = build_act(act_func)

    def forward(self, x):
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.conv(x)
        if self.norm:
            x = self.norm(x)
        if self.act:
            x = self.act(x)
        return x


class IdentityLayer(nn.Module):
    def forward(self, x):
        return x


class ResidualBlock(nn.Module):
    def __init__(self, main, shortcut):
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def forward(self, x):
        if self.main is None:
            return x
        if self.shortcut is None:
            return self.main(x)
        return self.main(x) + self.shortcut(x)


class DSConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, use_bias=False,
                 norm=("bn2d", "bn2d"), act_func=("relu6", None)):
        super().__init__()
        use_bias = val2tuple(use_bias, 2)
        norm = val2tuple(norm, 2)
        act_func = val2tuple(act_func, 2)
        self.depth_conv = ConvLayer(in_channels, in_channels, kernel_size, stride, groups=in_channels,
                                    norm=norm[0], act_func=act_func[0], use_bias=use_bias[0])
        self.point_conv = ConvLayer(in_channels, out_channels, 1, norm=norm[1], act_func=act_func[1],
                                    use_bias=use_bias[1])

    def forward(self, x):
        return self.point_conv(self.depth_conv(x))


class MBConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, mid_channels=None, expand_ratio=6,
                 use_bias=False, norm=("bn2d", "bn2d", "bn2d"), act_func=("relu6", "relu6", None)):
        super().__init__()
        use_bias = val2tuple(use_bias, 3)
        norm = val2tuple(norm, 3)
        act_func = val2tuple(act_func, 3)
        mid_channels = mid_channels or round(in_channels * expand_ratio)
        self.inverted_conv = ConvLayer(in_channels, mid_channels, 1, stride=1, norm=norm[0], act_func=act_func[0],
                                       use_bias=use_bias[0])
        self.depth_conv = ConvLayer(mid_channels, mid_channels, kernel_size, stride=stride, groups=mid_channels,
                                    norm=norm[1], act_func=act_func[1], use_bias=use_bias[1])
        self.point_conv = ConvLayer(mid_channels, out_channels, 1, norm=norm[2], act_func=act_func[2],
                                    use_bias=use_bias[2])

    def forward(self, x):
        x = self.inverted_conv(x)
        x = self.depth_conv(x)
        x = self.point_conv(x)
        return x


class LiteMLA(nn.Module):
    r"""Lightweight multi-scale linear attention"""

    def __init__(self, in_channels, out_channels, heads=None, heads_ratio=1.0, dim=8, use_bias=False,
                 norm=(None, "bn2d"), act_func=(None, None), kernel_func="relu", scales=(5,), eps=1.0e-15):
        super().__init__()
        self.eps = eps
        heads = int(in_channels // dim * heads_ratio) if heads is None else heads
        total_dim = heads * dim
        use_bias = val2tuple(use_bias, 2)
        norm = val2tuple(norm, 2)
        act_func = val2tuple(act_func, 2)
        self.dim = dim
        self.qkv = ConvLayer(in_channels, 3 * total_dim, 1, use_bias=use_bias[0], norm=norm[0],
                             act_func=act_func[0])
        self.aggreg = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(3 * total_dim, 3 * total_dim, scale, padding=get_same_padding(scale),
                          groups=3 * total_dim, bias=use_bias[0]),
                nn.Conv2d(3 * total_dim, 3 * total_dim, 1, groups=3 * heads, bias=use_bias[0]),
            )
            for scale in scales
        ])
        self.kernel_func = build_act(kernel_func, inplace=False)
        self.proj = ConvLayer(total_dim * (1 + len(scales)), out_channels, 1, use_bias=use_bias[1], norm=norm[1],
                              act_func=act_func[1])

    @torch.autocast(device_type="cpu", enabled=False)
    def relu_linear_att(self, qkv: torch.Tensor) -> torch.Tensor:
        B, _, H, W = list(qkv.size())

        if qkv.dtype in (torch.float16, torch.bfloat16):
            qkv = qkv.float()

        qkv = torch.reshape(qkv, (B, -1, 3 * self.dim, H * W))
        q, k, v = (qkv[:, :, 0: self.dim], qkv[:, :, self.dim: 2 * self.dim], qkv[:, :, 2 * self.dim:])

        # lightweight linear attention
        q = self.kernel_func(q)
        k = self.kernel_func(k)

        # linear matmul
        trans_k = k.transpose(-1, -2)

        v = F.pad(v, (0, 0, 0, 1), mode="constant", value=1)
        vk = torch.matmul(v, trans_k)
        out = torch.matmul(vk, q)
        if out.dtype == torch.bfloat16:
            out = out.float()
        out = out[:, :, :-1] / (out[:, :, -1:] + self.eps)

        out = torch.reshape(out, (B, -1, H, W))
        return out

    @torch.autocast(device_type="cpu", enabled=False)
    def relu_quadratic_att(self, qkv: torch.Tensor) -> torch.Tensor:
        B, _, H, W = list(qkv.size())

        qkv = torch.reshape(qkv, (B, -1, 3 * self.dim, H * W))
        q, k, v = (qkv[:, :, 0: self.dim], qkv[:, :, self.dim: 2 * self.dim], qkv[:, :, 2 * self.dim:])

        q = self.kernel_func(q)
        k = self.kernel_func(k)

        att_map = torch.matmul(k.transpose(-1, -2), q)  # b h n n
        original_dtype = att_map.dtype
        if original_dtype in [torch.float16, torch.bfloat16]:
            att_map = att_map.float()
        att_map = att_map / (torch.sum(att_map, dim=2, keepdim=True) + self.eps)  # b h n n
        att_map = att_map.to(original_dtype)
        out = torch.matmul(v, att_map)  # b h d n

        out = torch.reshape(out, (B, -1, H, W))
        return out

    def multi_scale_qkv(self, x):
        qkv = self.qkv(x)
        multi_scale_qkv = [qkv]
        for op in self.aggreg:
            multi_scale_qkv.append(op(qkv))
        return torch.cat(multi_scale_qkv, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # generate multi-scale q, k, v
        qkv = self.multi_scale_qkv(x)

        H, W = list(qkv.size())[-2:]
        if H * W > self.dim:
            out = self.relu_linear_att(qkv).to(qkv.dtype)
        else:
            out = self.relu_quadratic_att(qkv)
        out = self.proj(out)
        return out


class EfficientViTBlock(nn.Module):
    def __init__(self, in_channels, heads_ratio=1.0, dim=8, expand_ratio=4, scales=(5,), norm="bn2d",
                 act_func="hswish"):
        super().__init__()
        self.context_module = ResidualBlock(
            LiteMLA(in_channels=in_channels, out_channels=in_channels, heads_ratio=heads_ratio, dim=dim,
                    norm=(None, norm), scales=scales),
            IdentityLayer(),
        )
        local_module = MBConv(in_channels=in_channels, out_channels=in_channels, expand_ratio=expand_ratio,
                              use_bias=(True, True, False), norm=(None, None, norm),
                              act_func=(act_func, act_func, None))
        self.local_module = ResidualBlock(local_module, IdentityLayer())

    def forward(self, x):
        x = self.context_module(x)
        x = self.local_module(x)
        return x


class EfficientViTBackbone(nn.Module):
    def __init__(self, width_list, depth_list, in_channels=3, dim=8, expand_ratio=4, norm="bn2d",
                 act_func="hswish"):
        super().__init__()
        self.width_list = []
        self.input_stem = nn.Sequential(
            ConvLayer(in_channels, width_list[0], stride=2, norm=norm, act_func=act_func),
            ResidualBlock(DSConv(width_list[0], width_list[0], norm=norm, act_func=(act_func, None)),
                          IdentityLayer()),
        )
        in_channels = width_list[0]
        self.width_list.append(in_channels)
        self.stages = nn.ModuleList()
        for w, d in zip(width_list[1:2], depth_list[1:2]):
            stage = []
            for i in range(d):
                stride = 2 if i == 0 else 1
                block = MBConv(in_channels, w, stride=stride, expand_ratio=expand_ratio, norm=norm,
                               act_func=(act_func, act_func, None))
                block = ResidualBlock(block, IdentityLayer() if stride == 1 and in_channels == w else None)
                stage.append(block)
                in_channels = w
            self.stages.append(nn.Sequential(*stage))
            self.width_list.append(in_channels)
        for w, d in zip(width_list[2:], depth_list[2:]):
            stage = [ResidualBlock(MBConv(in_channels, w, stride=1, expand_ratio=expand_ratio,
                                          use_bias=(True, True, False), norm=(None, None, norm),
                                          act_func=(act_func, act_func, None)), None)]
            in_channels = w
            for _ in range(d):
                stage.append(EfficientViTBlock(in_channels, dim=dim, expand_ratio=expand_ratio, norm=norm,
                                               act_func=act_func))
            self.stages.append(nn.Sequential(*stage))
            self.width_list.append(in_channels)

    def forward(self, x):
        output_dict = {"input": x}
        output_dict["stage0"] = x = self.input_stem(x)
        for stage_id, stage in enumerate(self.stages, 1):
            output_dict["stage%d" % stage_id] = x = stage(x)
        output_dict["stage_final"] = x
        return output_dict


class ClsHead(nn.Module):
    def __init__(self, in_channels, width, n_classes, dropout=0.0, norm="bn2d", act_func="hswish"):
        super().__init__()
        self.conv = ConvLayer(in_channels, width, 1, norm=norm, act_func=act_func)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(width, n_classes)

    def forward(self, feed_dict):
        x = self.conv(feed_dict["stage_final"])
        x = torch.flatten(self.pool(x), 1)
        return self.linear(self.dropout(x))


class EfficientViTCls(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        return self.head(self.backbone(x))


backbone = EfficientViTBackbone(width_list=[8, 16, 32], depth_list=[1, 1, 2], dim=8)
model = EfficientViTCls(backbone, ClsHead(32, 48, num_classes, dropout=0.1))
mla = backbone.stages[1][1].context_module.main
print(mla.aggreg[0])
print(mla.kernel_func, backbone.stages[1][1].local_module.main.depth_conv.act)
n_params = sum(p.numel() for p in model.parameters())
print(f"parameters {n_params} heads {mla.aggreg[0][1].groups // 3} dim {mla.dim}")

# --- check: the padded-matmul linear attention against the explicit and the quadratic forms
with torch.no_grad():
    model.eval()
    feats = backbone.stages[0](backbone.input_stem(x_test[:8]))
    feats = backbone.stages[1][0](feats)
    qkv = mla.multi_scale_qkv(feats)
    B, _, H, W = qkv.shape
    lin = mla.relu_linear_att(qkv)
    quad = mla.relu_quadratic_att(qkv)
    heads_qkv = qkv.reshape(B, -1, 3 * mla.dim, H * W).transpose(-1, -2)  # b h n 3d
    q, k, v = heads_qkv.split(mla.dim, dim=-1)
    q, k = F.relu(q), F.relu(k)
    kv = k.transpose(-1, -2) @ v  # b h d d
    num = q @ kv
    den = q @ k.sum(dim=2).unsqueeze(-1)
    explicit = (num / (den + mla.eps)).transpose(-1, -2).reshape(B, -1, H, W)
    att_err = max((lin - explicit).abs().max().item(), (lin - quad).abs().max().item())
    model.train()
print(f"linear attention tokens {H * W} vs explicit/quadratic err {att_err:.2e} shape {tuple(lin.shape)}")

decay, no_decay = [], []
for name, param in model.named_parameters():
    if param.ndim <= 1 or name.endswith(".bias"):
        no_decay.append(param)
    else:
        decay.append(param)
optimizer = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0},
                               {"params": decay, "weight_decay": 0.05}], lr=3e-3, betas=(0.9, 0.999))
steps_per_epoch = n_train // batch_size
total_steps = epochs * steps_per_epoch
warmup_steps = steps_per_epoch


def lr_lambda(step):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        acc = (logits.argmax(1) == y_test).float().mean().item()
        loss = F.cross_entropy(logits, y_test).item()
    model.train()
    return loss, acc


init_loss, init_acc = evaluate()
losses = []
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(n_train)
    running = 0.0
    for i in range(steps_per_epoch):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        out = model(x_train[idx])
        loss = criterion(out, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimizer.step()
        scheduler.step()
        running += loss.item()
    losses.append(running / steps_per_epoch)
    if epoch % 2 == 1:
        test_loss, test_acc = evaluate()
        print(f"epoch {epoch + 1} train loss {losses[-1]:.4f} test loss {test_loss:.4f} acc {test_acc:.3f} "
              f"lr {scheduler.get_last_lr()[0]:.5f}")

final_loss, final_acc = evaluate()
model.eval()
with torch.no_grad():
    logits32 = model(x_test)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits16 = model(x_test)
        att_dtype = mla.relu_linear_att(mla.multi_scale_qkv(feats)).dtype
        qkv_dtype = mla.multi_scale_qkv(feats).dtype
agree = (logits16.argmax(1) == logits32.argmax(1)).float().mean().item()
bf16_gap = (logits16.float() - logits32).abs().max().item()
print(f"autocast logits {logits16.dtype} qkv {qkv_dtype} attention {att_dtype} argmax agreement {agree:.3f}")
print(f"FINAL loss_first={losses[0]:.4f} loss_last={losses[-1]:.4f} init_test_loss={init_loss:.4f} "
      f"test_loss={final_loss:.4f} test_acc={final_acc:.4f} bf16_agree={agree:.4f} bf16_gap={bf16_gap:.4f} "
      f"att_err={att_err:.2e}")
