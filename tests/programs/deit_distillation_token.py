"""DeiT (Touvron et al. 2021), "Training data-efficient image transformers & distillation through
attention", as facebookresearch/deit and timm write it, on a small synthetic image task.

A timm-style ``VisionTransformer`` (``PatchEmbed`` by a strided ``Conv2d`` + ``flatten(2).transpose(1, 2)``,
``qkv`` reshaped ``(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)``, ``q @ k.transpose(-2, -1) * scale``,
``DropPath`` by ``x.new_empty(shape).bernoulli_(keep_prob)`` + ``div_``, ``torch.linspace`` drop-path
rates read by ``.item()``, ``trunc_normal_`` init through ``apply(_init_weights)``) and DeiT's
``DistilledVisionTransformer``: cls **and** distillation tokens ``torch.cat((cls_tokens, dist_token, x),
dim=1)``, two heads, training returning both, inference their average. A CNN teacher
(Conv2d + BatchNorm2d, ``AdaptiveAvgPool2d``, SGD + momentum) is trained first and frozen
(``eval()``, ``requires_grad_(False)``). DeiT's ``DistillationLoss`` compares none, soft
(``F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction='sum', log_target=True) * T * T
/ s.numel()``, checked against the probability-target form) and hard distillation
(``teacher(x).argmax(dim=1)``), with ``CrossEntropyLoss(label_smoothing=0.1)``, timm's
``param_groups_weight_decay`` (no decay for 1-d parameters and ``no_weight_decay()`` names) in
``torch.optim.AdamW``, a ``LinearLR`` warm-up into ``CosineAnnealingLR`` by ``SequentialLR``, timm's
``RandomErasing`` written by hand (``random.uniform``, log-uniform aspect ratio, per-pixel
``torch.empty(...).normal_()`` patches), ``TensorDataset``/``DataLoader(drop_last=True)``, and
``@torch.no_grad()`` evaluation with timm's top-k ``accuracy`` (``pred.t()``, ``eq``, ``expand_as``).
"""

import math
import os
import random
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.init import trunc_normal_
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)
np_rng = np.random.default_rng(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# --- data: 4 classes of oriented stripes in a random 8x8 window of a noisy 16x16 colour image ---
IMG, NUM_CLASSES = 16, 4


def make_images(n):
    images = np_rng.normal(0.0, 0.6, size=(n, 3, IMG, IMG)).astype(np.float32)
    labels = np_rng.integers(0, NUM_CLASSES, size=n)
    yy, xx = np.mgrid[0:8, 0:8]
    patterns = [np.sin(yy * 1.6), np.sin(xx * 1.6), np.sin((xx + yy) * 1.1), np.sin((xx - yy) * 1.1)]
    for i in range(n):
        top, left = np_rng.integers(0, IMG - 8, size=2)
        colour = np_rng.uniform(0.5, 1.5, size=(3, 1, 1))
        images[i, :, top:top + 8, left:left + 8] += colour * patterns[labels[i]]
    return torch.from_numpy(images), torch.from_numpy(labels)


train_x, train_y = make_images(384)
test_x, test_y = make_images(400)
print(f"train {tuple(train_x.shape)} test {tuple(test_x.shape)} classes {NUM_CLASSES}")


# --- timm's RandomErasing, by hand ---
class RandomErasing:
    def __init__(self, probability=0.25, min_area=0.02, max_area=1 / 3, min_aspect=0.3, max_count=1):
        self.probability = probability
        self.min_area = min_area
        self.max_area = max_area
        max_aspect = 1 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
        self.max_count = max_count
        self.erased = 0

    def _erase(self, img, chan, img_h, img_w, dtype):
        if random.random() > self.probability:
            return
        area = img_h * img_w
        for _ in range(self.max_count):
            for _attempt in range(10):
                target_area = random.uniform(self.min_area, self.max_area) * area
                aspect_ratio = math.exp(random.uniform(*self.log_aspect_ratio))
                h = int(round(math.sqrt(target_area * aspect_ratio)))
                w = int(round(math.sqrt(target_area / aspect_ratio)))
                if w < img_w and h < img_h:
                    top = random.randint(0, img_h - h)
                    left = random.randint(0, img_w - w)
                    img[:, top:top + h, left:left + w] = torch.empty((chan, h, w), dtype=dtype).normal_()
                    self.erased += 1
                    break

    def __call__(self, input):
        if len(input.size()) == 3:
            self._erase(input, *input.size(), input.dtype)
        else:
            batch_size, chan, img_h, img_w = input.size()
            for i in range(batch_size):
                self._erase(input[i], chan, img_h, img_w, input.dtype)
        return input


# --- timm's VisionTransformer and DeiT's distilled variant ---
def drop_path(x, drop_prob: float = 0.0, training: bool = False, scale_by_keep: bool = True):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)


class PatchEmbed(nn.Module):
    def __init__(self, img_size=16, patch_size=4, in_chans=3, embed_dim=32):
        super().__init__()
        self.num_patches = (img_size // patch_size) * (img_size // patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, num_heads=2, qkv_bias=True, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        return self.proj_drop(x)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2.0, drop_path=0.0, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class VisionTransformer(nn.Module):
    def __init__(self, img_size=16, patch_size=4, in_chans=3, num_classes=4, embed_dim=32, depth=2,
                 num_heads=2, mlp_ratio=2.0, drop_rate=0.0, drop_path_rate=0.1,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6)):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]  # stochastic depth decay rule
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, drop_path=dpr[i], norm_layer=norm_layer)
                                      for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def forward_features(self, x):
        B = x.shape[0]
        x = self.patch_embed(x)
        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.blocks(x)
        return self.norm(x)[:, 0]

    def forward(self, x):
        return self.head(self.forward_features(x))


class DistilledVisionTransformer(VisionTransformer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dist_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        num_patches = self.patch_embed.num_patches
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 2, self.embed_dim))
        self.head_dist = nn.Linear(self.embed_dim, self.num_classes) if self.num_classes > 0 else nn.Identity()

        trunc_normal_(self.dist_token, std=0.02)
        trunc_normal_(self.pos_embed, std=0.02)
        self.head_dist.apply(self._init_weights)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"pos_embed", "cls_token", "dist_token"}

    def forward_features(self, x):
        B = x.shape[0]
        x = self.patch_embed(x)

        cls_tokens = self.cls_token.expand(B, -1, -1)  # stole cls_tokens impl from Phil Wang, thanks
        dist_token = self.dist_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, dist_token, x), dim=1)

        x = x + self.pos_embed
        x = self.pos_drop(x)

        for blk in self.blocks:
            x = blk(x)

        x = self.norm(x)
        return x[:, 0], x[:, 1]

    def forward(self, x):
        x, x_dist = self.forward_features(x)
        x = self.head(x)
        x_dist = self.head_dist(x_dist)
        if self.training:
            return x, x_dist
        else:
            # during inference, return the average of both classifier predictions
            return (x + x_dist) / 2


class TeacherCNN(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.fc(torch.flatten(x, 1))


class DistillationLoss(torch.nn.Module):
    """The base criterion plus a distillation term from the frozen teacher on the dist head."""

    def __init__(self, base_criterion, teacher_model, distillation_type, alpha, tau):
        super().__init__()
        self.base_criterion = base_criterion
        self.teacher_model = teacher_model
        assert distillation_type in ["none", "soft", "hard"]
        self.distillation_type = distillation_type
        self.alpha = alpha
        self.tau = tau

    def forward(self, inputs, outputs, labels):
        outputs_kd = None
        if not isinstance(outputs, torch.Tensor):
            # assume that the model outputs a tuple of [outputs, outputs_kd]
            outputs, outputs_kd = outputs
        base_loss = self.base_criterion(outputs, labels)
        if self.distillation_type == "none":
            return base_loss

        if outputs_kd is None:
            raise ValueError("When knowledge distillation is enabled, the model is expected to return a "
                             "Tuple[Tensor, Tensor] with the output of the class_token and the dist_token")
        # don't backprop throught the teacher
        with torch.no_grad():
            teacher_outputs = self.teacher_model(inputs)

        if self.distillation_type == "soft":
            T = self.tau
            # taken from https://github.com/peterliht/knowledge-distillation-pytorch/blob/master/model/net.py#L100
            # with slight modifications
            distillation_loss = F.kl_div(
                F.log_softmax(outputs_kd / T, dim=1),
                F.log_softmax(teacher_outputs / T, dim=1),
                reduction="sum",
                log_target=True,
            ) * (T * T) / outputs_kd.numel()
        elif self.distillation_type == "hard":
            distillation_loss = F.cross_entropy(outputs_kd, teacher_outputs.argmax(dim=1))

        loss = base_loss * (1 - self.alpha) + distillation_loss * self.alpha
        return loss


def param_groups_weight_decay(model, weight_decay=1e-5, no_weight_decay_list=()):
    no_weight_decay_list = set(no_weight_decay_list)
    decay = []
    no_decay = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or name in no_weight_decay_list:
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    maxk = min(max(topk), output.size()[1])
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.reshape(1, -1).expand_as(pred))
    return [correct[:min(k, maxk)].reshape(-1).float().sum(0) * 100.0 / batch_size for k in topk]


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    output = model(x.to(device))
    acc1, acc2 = accuracy(output, y.to(device), topk=(1, 2))
    return acc1.item(), acc2.item(), output


# --- the teacher: a small CNN, trained first ---
loader = DataLoader(TensorDataset(train_x, train_y), batch_size=64, shuffle=True, drop_last=True)
print(f"batches per epoch {len(loader)}")
teacher = TeacherCNN(NUM_CLASSES).to(device)
optimizer = torch.optim.SGD(teacher.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
for epoch in range(8):
    teacher.train()
    running = 0.0
    for images, targets in loader:
        loss = F.cross_entropy(teacher(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item()
    if epoch % 4 == 3:
        print(f"teacher epoch {epoch + 1} loss {running / len(loader):.4f}")
teacher_acc, _, teacher_logits = evaluate(teacher, test_x, test_y)
teacher.requires_grad_(False)
print(f"teacher test acc@1 {teacher_acc:.2f}, frozen {not any(p.requires_grad for p in teacher.parameters())}")

# --- soft distillation: the log_target form agrees with the probability-target form ---
s = torch.randn(8, NUM_CLASSES)
t = torch.randn(8, NUM_CLASSES)
T = 3.0
log_target_form = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="sum", log_target=True)
prob_target_form = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="sum")
batchmean = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
print(f"kl_div log_target agrees {torch.allclose(log_target_form, prob_target_form)}, "
      f"sum / batch == batchmean {torch.allclose(log_target_form / 8, batchmean)}")


def train_student(distillation_type, epochs=12, warmup_epochs=2):
    torch.manual_seed(seed + 1)
    random.seed(seed + 1)
    model = DistilledVisionTransformer(num_classes=NUM_CLASSES).to(device)
    groups = param_groups_weight_decay(model, weight_decay=0.05, no_weight_decay_list=model.no_weight_decay())
    optimizer = torch.optim.AdamW(groups, lr=5e-3)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup_epochs)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs - warmup_epochs, eta_min=1e-5)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[warmup_epochs])
    criterion = DistillationLoss(nn.CrossEntropyLoss(label_smoothing=0.1), teacher, distillation_type, alpha=0.5, tau=3.0)
    eraser = RandomErasing(probability=0.25)
    lrs = []
    for epoch in range(epochs):
        model.train()
        running = 0.0
        for images, targets in loader:
            images = eraser(images.clone())
            outputs = model(images)
            loss = criterion(images, outputs, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
        if epoch % 6 == 5:
            print(f"[{distillation_type}] epoch {epoch + 1} loss {running / len(loader):.4f} "
                  f"lr {optimizer.param_groups[0]['lr']:.6f}")
    return model, lrs, eraser.erased, len(groups[0]["params"]), len(groups[1]["params"])


results = {}
for distillation_type in ["none", "soft", "hard"]:
    model, lrs, erased, n_no_decay, n_decay = train_student(distillation_type)
    acc1, acc2, output = evaluate(model, test_x, test_y)
    with torch.no_grad():
        cls_feat, dist_feat = model.forward_features(test_x)
        cls_logits, dist_logits = model.head(cls_feat), model.head_dist(dist_feat)
        average = (cls_logits + dist_logits) / 2
        cls_acc = (cls_logits.argmax(dim=1) == test_y).float().mean().item() * 100
        dist_acc = (dist_logits.argmax(dim=1) == test_y).float().mean().item() * 100
        agreement = (output.argmax(dim=1) == teacher_logits.argmax(dim=1)).float().mean().item() * 100
        token_cos = F.cosine_similarity(model.cls_token.flatten(), model.dist_token.flatten(), dim=0).item()
    print(f"[{distillation_type}] groups no-decay {n_no_decay} decay {n_decay}, erased {erased} images, "
          f"warm-up lr {lrs[0]:.6f} -> peak {max(lrs):.6f}")
    print(f"[{distillation_type}] eval output is the heads' average {torch.allclose(output, average, atol=1e-6)}, "
          f"acc@1 {acc1:.2f} acc@2 {acc2:.2f} cls head {cls_acc:.2f} dist head {dist_acc:.2f} "
          f"agreement with teacher {agreement:.2f} cos(cls, dist token) {token_cos:.3f}")
    results[distillation_type] = acc1

print(f"FINAL teacher={teacher_acc:.2f} none={results['none']:.2f} soft={results['soft']:.2f} "
      f"hard={results['hard']:.2f}")
