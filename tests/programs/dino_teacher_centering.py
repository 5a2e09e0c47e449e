"""DINO (facebookresearch/dino ``main_dino.py``, ``vision_transformer.py``'s ``DINOHead``, ``utils.py``)
at tiny sizes, one process, on synthetic images.

As the repo writes it: ``DINOLoss`` with ``register_buffer("center", torch.zeros(1, out_dim))``, the
teacher temperature warm-up ``np.concatenate((np.linspace(...), np.ones(...) * teacher_temp))`` read
as a NumPy scalar dividing a tensor, ``F.softmax((teacher_output - self.center) / temp, dim=-1)``,
``.detach().chunk(2)``, student crops by ``chunk(self.ncrops)``, the multi-crop loop skipping
``v == iq`` with ``torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)`` summed into a
Python ``0``, and ``@torch.no_grad()`` ``update_center`` (``torch.sum(teacher_output, dim=0,
keepdim=True)``, ``self.center * m + batch_center * (1 - m)`` re-bound onto the buffer);
``DINOHead`` (``use_bn=True``, the repo's ``--use_bn_in_head`` for convnets) with ``trunc_normal_(std=.02)`` through ``self.apply`` and the last layer
``nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))`` with
``weight_g.data.fill_(1)`` and ``weight_g.requires_grad = False``; ``MultiCropWrapper``
(``backbone.fc, backbone.head = nn.Identity(), nn.Identity()``, crops grouped by resolution through
``torch.cumsum(torch.unique_consecutive(torch.tensor([inp.shape[-1] for inp in x]),
return_counts=True)[1], 0)``, a list sliced by 0-d tensors, ``torch.empty(0)`` grown by ``torch.cat``);
the teacher by ``load_state_dict(student.state_dict())`` with ``requires_grad = False``;
``get_params_groups``; NumPy ``cosine_scheduler``s for lr, weight decay (written into
``param_group["weight_decay"]``) and teacher momentum; ``clip_gradients`` (``p.grad.data.norm(2)``,
``clip_coef = clip / (param_norm + 1e-6)``, ``p.grad.data.mul_(clip_coef)``),
``cancel_gradients_last_layer`` (``p.grad = None`` for names containing "last_layer") and the EMA
``param_k.data.mul_(m).add_((1 - m) * param_q.detach().data)``. Then a kNN probe on the teacher
backbone. Data: 16x16 RGB images of four shapes; two global crops (16x16) and four local crops
(8x8) per image, by slicing and bilinear ``F.interpolate``.
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


# utils.py

def clip_gradients(model, clip):
    norms = []
    for name, p in model.named_parameters():  # noqa: B007 (the repo's loop)
        if p.grad is not None:
            param_norm = p.grad.data.norm(2)
            norms.append(param_norm.item())
            clip_coef = clip / (param_norm + 1e-6)
            if clip_coef < 1:
                p.grad.data.mul_(clip_coef)
    return norms


def cancel_gradients_last_layer(epoch, model, freeze_last_layer):
    if epoch >= freeze_last_layer:
        return
    for n, p in model.named_parameters():
        if "last_layer" in n:
            p.grad = None


def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0):
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)

    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / len(iters)))

    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


def get_params_groups(model):
    regularized = []
    not_regularized = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # we do not regularize biases nor Norm parameters
        if name.endswith(".bias") or len(param.shape) == 1:
            not_regularized.append(param)
        else:
            regularized.append(param)
    return [{'params': regularized}, {'params': not_regularized, 'weight_decay': 0.}]


class MultiCropWrapper(nn.Module):
    """
    Perform forward pass separately on each resolution input.
    The inputs corresponding to a single resolution are clubbed and single
    forward is run on the same resolution inputs. Hence we do several
    forward passes = number of different resolutions used. We then
    concatenate all the output features and run the head forward on these
    concatenated features.
    """
    def __init__(self, backbone, head):
        super(MultiCropWrapper, self).__init__()  # noqa: UP008 (the repo's spelling)
        # disable layers dedicated to ImageNet labels classification
        backbone.fc, backbone.head = nn.Identity(), nn.Identity()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        # convert to list
        if not isinstance(x, list):
            x = [x]
        idx_crops = torch.cumsum(torch.unique_consecutive(
            torch.tensor([inp.shape[-1] for inp in x]),
            return_counts=True,
        )[1], 0)
        start_idx, output = 0, torch.empty(0).to(x[0].device)
        for end_idx in idx_crops:
            _out = self.backbone(torch.cat(x[start_idx: end_idx]))
            # The output is a tuple with XCiT model. See:
            # https://github.com/facebookresearch/xcit/blob/master/xcit.py#L404-L405
            if isinstance(_out, tuple):
                _out = _out[0]
            # accumulate outputs
            output = torch.cat((output, _out))
            start_idx = end_idx
        # Run the head forward on the concatenated features.
        return self.head(output)


# vision_transformer.py

class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, use_bn=False, norm_last_layer=True, nlayers=3, hidden_dim=2048, bottleneck_dim=256):
        super().__init__()
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            self.mlp = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers = [nn.Linear(in_dim, hidden_dim)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            for _ in range(nlayers - 2):
                layers.append(nn.Linear(hidden_dim, hidden_dim))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_dim))
                layers.append(nn.GELU())
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        self.apply(self._init_weights)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad = False

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.mlp(x)
        x = nn.functional.normalize(x, dim=-1, p=2)
        x = self.last_layer(x)
        return x


# main_dino.py

class DINOLoss(nn.Module):
    def __init__(self, out_dim, ncrops, warmup_teacher_temp, teacher_temp,
                 warmup_teacher_temp_epochs, nepochs, student_temp=0.1,
                 center_momentum=0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.register_buffer("center", torch.zeros(1, out_dim))
        # we apply a warm up for the teacher temperature because
        # a too high temperature makes the training instable at the beginning
        self.teacher_temp_schedule = np.concatenate((
            np.linspace(warmup_teacher_temp,
                        teacher_temp, warmup_teacher_temp_epochs),
            np.ones(nepochs - warmup_teacher_temp_epochs) * teacher_temp
        ))

    def forward(self, student_output, teacher_output, epoch):
        """
        Cross-entropy between softmax outputs of the teacher and student networks.
        """
        student_out = student_output / self.student_temp
        student_out = student_out.chunk(self.ncrops)

        # teacher centering and sharpening
        temp = self.teacher_temp_schedule[epoch]
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1)
        teacher_out = teacher_out.detach().chunk(2)

        total_loss = 0
        n_loss_terms = 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    # we skip cases where student and teacher operate on the same view
                    continue
                loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
                total_loss += loss.mean()
                n_loss_terms += 1
        total_loss /= n_loss_terms
        self.update_center(teacher_output)
        return total_loss

    @torch.no_grad()
    def update_center(self, teacher_output):
        """
        Update center used for teacher output.
        """
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        batch_center = batch_center / len(teacher_output)

        # ema update
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


class SmallConvNet(nn.Module):
    """A resolution-agnostic backbone with a torchvision-style ``fc``."""
    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed_dim = 32
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def make_images(n):
    """16x16 RGB: a square, a cross, a ring or a diagonal bar, in a random colour at a random place."""
    yy, xx = np.mgrid[0:16, 0:16]
    y = rng.randint(0, 4, n)
    imgs = np.zeros((n, 3, 16, 16), dtype=np.float32)
    for i in range(n):
        cy, cx = rng.randint(5, 11, 2)
        if y[i] == 0:
            shape = (abs(yy - cy) <= 3) & (abs(xx - cx) <= 3)
        elif y[i] == 1:
            shape = ((abs(yy - cy) <= 4) & (abs(xx - cx) <= 1)) | ((abs(xx - cx) <= 4) & (abs(yy - cy) <= 1))
        elif y[i] == 2:
            r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            shape = (r > 2.0) & (r < 4.2)
        else:
            shape = (abs((yy - cy) - (xx - cx)) <= 1) & (abs(yy - cy) <= 4)
        colour = rng.uniform(0.3, 1.0, 3)
        imgs[i] = colour[:, None, None] * shape + 0.1 * rng.randn(3, 16, 16)
    return torch.from_numpy(imgs), torch.from_numpy(y)


class DataAugmentationDINO:
    """Two global crops and ``local_crops_number`` local ones, tensors only: crop by slicing, resize by
    bilinear interpolation, random flip, brightness jitter."""
    def __init__(self, local_crops_number):
        self.local_crops_number = local_crops_number

    def _crop(self, x, lo, hi, size):
        c = int(torch.randint(lo, hi + 1, (1,)))
        top, left = (int(v) for v in torch.randint(0, 16 - c + 1, (2,)))
        x = F.interpolate(x[:, :, top:top + c, left:left + c], size=(size, size), mode='bilinear', align_corners=False)
        flip = torch.rand(x.shape[0]) < 0.5
        x = torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)
        return x * (0.8 + 0.4 * torch.rand(x.shape[0], 1, 1, 1))

    def __call__(self, image):
        crops = [self._crop(image, 12, 16, 16), self._crop(image, 12, 16, 16)]
        for _ in range(self.local_crops_number):
            crops.append(self._crop(image, 5, 9, 8))
        return crops


x_train, y_train = make_images(384)
x_test, y_test = make_images(128)

out_dim, epochs, batch_size, local_crops_number = 64, 10, 32, 4
freeze_last_layer, clip_grad = 1, 3.0
data_loader = [slice(i, i + batch_size) for i in range(0, len(x_train), batch_size)]

student = MultiCropWrapper(SmallConvNet(), DINOHead(32, out_dim, use_bn=True, norm_last_layer=True,
                                                    hidden_dim=64, bottleneck_dim=32))
teacher = MultiCropWrapper(SmallConvNet(), DINOHead(32, out_dim, use_bn=True, hidden_dim=64, bottleneck_dim=32))
# teacher and student start with the same weights
teacher.load_state_dict(student.state_dict())
# there is no backpropagation through the teacher, so no need for gradients
for p in teacher.parameters():
    p.requires_grad = False
print(f"last layer: weight_g {tuple(student.head.last_layer.weight_g.shape)} frozen: "
      f"{not student.head.last_layer.weight_g.requires_grad}  weight_v {tuple(student.head.last_layer.weight_v.shape)}")

dino_loss = DINOLoss(
    out_dim,
    local_crops_number + 2,  # total number of crops = 2 global crops + local_crops_number
    0.04,  # warmup_teacher_temp
    0.07,  # teacher_temp
    3,  # warmup_teacher_temp_epochs
    epochs,
)
params_groups = get_params_groups(student)
optimizer = torch.optim.AdamW(params_groups)  # to use with ViTs
print(f"param groups: {[len(g['params']) for g in optimizer.param_groups]}  "
      f"temp schedule: {[round(float(t), 3) for t in dino_loss.teacher_temp_schedule[:4]]}")

lr_schedule = cosine_scheduler(5e-3 * batch_size / 256., 1e-5, epochs, len(data_loader), warmup_epochs=2)
wd_schedule = cosine_scheduler(0.04, 0.4, epochs, len(data_loader))
momentum_schedule = cosine_scheduler(0.9, 1, epochs, len(data_loader))
transform = DataAugmentationDINO(local_crops_number)

for epoch in range(epochs):
    perm = torch.randperm(len(x_train))
    losses, grad_norms = [], []
    for it, batch in enumerate(data_loader):
        # update weight decay and learning rate according to their schedule
        it = len(data_loader) * epoch + it  # global training iteration
        for i, param_group in enumerate(optimizer.param_groups):
            param_group["lr"] = lr_schedule[it]
            if i == 0:  # only the first group is regularized
                param_group["weight_decay"] = wd_schedule[it]

        images = transform(x_train[perm[batch]])
        teacher_output = teacher(images[:2])  # only the 2 global views pass through the teacher
        student_output = student(images)
        loss = dino_loss(student_output, teacher_output, epoch)

        if not math.isfinite(loss.item()):
            raise SystemExit("Loss is {}, stopping training".format(loss.item()))  # noqa: UP032

        # student update
        optimizer.zero_grad()
        param_norms = None
        loss.backward()
        param_norms = clip_gradients(student, clip_grad)
        cancel_gradients_last_layer(epoch, student, freeze_last_layer)
        optimizer.step()

        # EMA update for the teacher
        with torch.no_grad():
            m = momentum_schedule[it]  # momentum parameter
            for param_q, param_k in zip(student.parameters(), teacher.parameters()):
                param_k.data.mul_(m).add_((1 - m) * param_q.detach().data)
        losses.append(loss.item())
        grad_norms.append(max(param_norms))
    if epoch % 3 == 0 or epoch == epochs - 1:
        print(f"Epoch: [{epoch}/{epochs}] loss: {np.mean(losses):.4f} lr: {optimizer.param_groups[0]['lr']:.6f} "
              f"wd: {optimizer.param_groups[0]['weight_decay']:.4f} max grad norm: {np.mean(grad_norms):.3f}")

last_layer_moved = not torch.equal(student.head.last_layer.weight_v, teacher.head.last_layer.weight_v)
print(f"last layer trained after epoch {freeze_last_layer}: {last_layer_moved}  "
      f"weight_g still ones: {bool((student.head.last_layer.weight_g == 1).all())}")


# teacher outputs: not collapsed to one dimension (entropy well below log(out_dim)), not uniform
@torch.no_grad()
def teacher_stats(x):
    probs = F.softmax((teacher(x) - dino_loss.center) / dino_loss.teacher_temp_schedule[-1], dim=-1)
    entropy = -(probs * torch.log(probs + 1e-12)).sum(-1).mean().item()
    used = probs.argmax(-1).unique().numel()
    return entropy, used


entropy, used = teacher_stats(x_test)


@torch.no_grad()
def knn_accuracy(k=10):
    bank = F.normalize(teacher.backbone(x_train), dim=1)
    queries = F.normalize(teacher.backbone(x_test), dim=1)
    _, idx = (queries @ bank.T).topk(k, dim=1)
    votes = F.one_hot(y_train[idx], 4).sum(1)
    return (votes.argmax(1) == y_test).float().mean().item()


knn = knn_accuracy()
print(f"FINAL loss={np.mean(losses):.4f} center_norm={dino_loss.center.norm().item():.4f} "
      f"teacher_entropy={entropy:.4f} prototypes_used={used} knn_acc={knn:.4f}")
