"""DeepSDF's auto-decoder (Park et al. 2019) on 2-D circles and boxes with analytic signed distances.

In the style of facebookresearch/DeepSDF (`train_deep_sdf.py`, `networks/deep_sdf_decoder.py`,
`reconstruct.py`): per-shape latent codes in `nn.Embedding(num_scenes, latent_size, max_norm=1.0)`
initialised by `torch.nn.init.normal_(lat_vecs.weight.data, 0.0, 1.0 / math.sqrt(latent_size))`, a
`Decoder` of `nn.utils.parametrizations.weight_norm(nn.Linear(...))` layers built by `setattr` and read
by `getattr`, the latent+xyz skip `torch.cat([x, input], 1)` at a middle layer, `F.dropout(training=
self.training)` and a final `nn.Tanh`; an `SDFSamples` `Dataset` returning `(samples, idx)` half from
the inside and half from the outside (`torch.randperm` picks), `indices.unsqueeze(-1).repeat(1, n).view(-1)`,
`torch.chunk` batch splits each with its own `backward()`, `torch.clamp` of SDFs to +-delta,
`L1Loss(reduction="sum") / num_sdf_samples`, code regularisation `torch.sum(torch.norm(batch_vecs, dim=1))`
with the warm-up `min(1, epoch / 100)`, Adam on two param groups (decoder, codes) with the repository's
`StepLearningRateSchedule` written into `param_group["lr"]`, `clip_grad_norm_`; then test-time
reconstruction of unseen shapes with the decoder frozen by `requires_grad_(False)` and `eval()`:
a fresh latent `torch.ones(1, latent_size).normal_(mean=0, std=0.01)` with `requires_grad = True`,
`latent.expand(num_samples, -1)`, lr dropped by 10 halfway, `1e-4 * torch.mean(latent.pow(2))`.
Check: the Embedding lookup equals `F.embedding(..., max_norm=1.0)` (outputs and the renormed rows).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.data as data_utils

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

latent_size = 8
clamp_dist = 0.1
num_samp_per_scene = 128
scene_per_batch = 4
batch_split = 2
num_epochs = 60
code_bound = 1.0
code_reg_lambda = 1e-4


# --- shapes: discs and axis-aligned boxes, their exact signed distances
def sdf_circle(p, c, r):
    return np.linalg.norm(p - c, axis=1) - r


def sdf_box(p, c, half):
    q = np.abs(p - c) - half
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(np.max(q, axis=1), 0.0)
    return outside + inside


def make_shape(kind, size, centre):
    if kind == "circle":
        return lambda p: sdf_circle(p, centre, size)
    return lambda p: sdf_box(p, centre, np.array([size, 0.7 * size]))


def sample_sdf(shape, n):
    """DeepSDF-style samples: most near the surface (perturbed), some uniform, as rows x, y, sdf."""
    uniform = rng.uniform(-1, 1, (n, 2))
    near = rng.uniform(-1, 1, (8 * n, 2))
    d = shape(near)
    near = near[np.argsort(np.abs(d))[:n]] + rng.normal(0, 0.03, (n, 2))
    pts = np.concatenate([near, uniform])
    return np.concatenate([pts, shape(pts)[:, None]], 1).astype(np.float32)


train_specs = [(k, s, rng.uniform(-0.2, 0.2, 2)) for k in ("circle", "box") for s in (0.3, 0.4, 0.5, 0.6, 0.7)]
test_specs = [("circle", 0.45, np.array([0.1, -0.1])), ("box", 0.55, np.array([-0.1, 0.05]))]
train_shapes = [make_shape(*spec) for spec in train_specs]
test_shapes = [make_shape(*spec) for spec in test_specs]
num_scenes = len(train_shapes)


class SDFSamples(data_utils.Dataset):
    """Each item: a subsample of one scene's SDF samples, half inside (sdf < 0) and half outside."""

    def __init__(self, shapes, subsample):
        self.subsample = subsample
        self.loaded_data = []
        for shape in shapes:
            samples = torch.from_numpy(sample_sdf(shape, 2048))
            pos = samples[samples[:, 2] >= 0]
            neg = samples[samples[:, 2] < 0]
            self.loaded_data.append([pos, neg])

    def __len__(self):
        return len(self.loaded_data)

    def __getitem__(self, idx):
        pos_tensor, neg_tensor = self.loaded_data[idx]
        half = int(self.subsample / 2)
        sample_pos = pos_tensor[torch.randperm(pos_tensor.shape[0])[:half]]
        sample_neg = neg_tensor[torch.randperm(neg_tensor.shape[0])[:half]]
        return torch.cat([sample_pos, sample_neg], 0), idx


class Decoder(nn.Module):
    def __init__(self, latent_size, dims, dropout=None, dropout_prob=0.0, latent_in=(), use_tanh=False):
        super().__init__()
        dims = [latent_size + 2] + dims + [1]
        self.num_layers = len(dims)
        self.latent_in = latent_in
        for layer in range(0, self.num_layers - 1):
            if layer + 1 in latent_in:
                out_dim = dims[layer + 1] - dims[0]
            else:
                out_dim = dims[layer + 1]
            setattr(self, "lin" + str(layer),
                    nn.utils.parametrizations.weight_norm(nn.Linear(dims[layer], out_dim)))
        self.use_tanh = use_tanh
        if use_tanh:
            self.tanh = nn.Tanh()
        self.relu = nn.ReLU()
        self.dropout_prob = dropout_prob
        self.dropout = dropout
        self.th = nn.Tanh()

    def forward(self, input):
        x = input
        for layer in range(0, self.num_layers - 1):
            lin = getattr(self, "lin" + str(layer))
            if layer in self.latent_in:
                x = torch.cat([x, input], 1)
            x = lin(x)
            if layer == self.num_layers - 2 and self.use_tanh:
                x = self.tanh(x)
            if layer < self.num_layers - 2:
                x = self.relu(x)
                if self.dropout is not None and layer in self.dropout:
                    x = F.dropout(x, p=self.dropout_prob, training=self.training)
        if hasattr(self, "th"):
            x = self.th(x)
        return x


class StepLearningRateSchedule:
    def __init__(self, initial, interval, factor):
        self.initial, self.interval, self.factor = initial, interval, factor

    def get_learning_rate(self, epoch):
        return self.initial * (self.factor ** (epoch // self.interval))


def adjust_learning_rate(lr_schedules, optimizer, epoch):
    for i, param_group in enumerate(optimizer.param_groups):
        param_group["lr"] = lr_schedules[i].get_learning_rate(epoch)


decoder = Decoder(latent_size, [64, 64, 64, 64], dropout=[0, 1, 2, 3], dropout_prob=0.05, latent_in=[2])
lat_vecs = nn.Embedding(num_scenes, latent_size, max_norm=code_bound)
torch.nn.init.normal_(lat_vecs.weight.data, 0.0, 1.0 / math.sqrt(latent_size))
print(decoder.lin2)
print(f"decoder parameters {sum(p.numel() for p in decoder.parameters())} codes {tuple(lat_vecs.weight.shape)}")

# --- check: the max_norm lookup is F.embedding's renorm, which rescales the looked-up rows in place
with torch.no_grad():
    idx = torch.tensor([0, 3, 3, 7, 1, 2, 4, 5, 6, 8, 9, 9])
    table = lat_vecs.weight.detach().clone()
    norms_before = table.norm(dim=1)
    looked_up = lat_vecs(idx)
    functional = F.embedding(idx, table, max_norm=code_bound)
    embed_err = max((looked_up - functional).abs().max().item(), (lat_vecs.weight - table).abs().max().item())
    renormed = int((norms_before[idx.unique()] > code_bound).sum())
    max_row = lat_vecs.weight[idx].norm(dim=1).max().item()
print(f"embedding vs F.embedding err {embed_err:.2e}, renormed rows {renormed}, max looked-up norm {max_row:.4f}")

sdf_dataset = SDFSamples(train_shapes, num_samp_per_scene)
sdf_loader = data_utils.DataLoader(sdf_dataset, batch_size=scene_per_batch, shuffle=True, num_workers=0, drop_last=True)
loss_l1 = torch.nn.L1Loss(reduction="sum")
lr_schedules = [StepLearningRateSchedule(3e-3, 30, 0.5), StepLearningRateSchedule(3e-3, 30, 0.5)]
optimizer_all = torch.optim.Adam([
    {"params": decoder.parameters(), "lr": lr_schedules[0].get_learning_rate(0)},
    {"params": lat_vecs.parameters(), "lr": lr_schedules[1].get_learning_rate(0)},
])

epoch_losses = []
for epoch in range(1, num_epochs + 1):
    decoder.train()
    adjust_learning_rate(lr_schedules, optimizer_all, epoch)
    epoch_loss = 0.0
    for sdf_data, indices in sdf_loader:
        sdf_data = sdf_data.reshape(-1, 3)
        num_sdf_samples = sdf_data.shape[0]
        sdf_data.requires_grad = False
        xyz = sdf_data[:, 0:2]
        sdf_gt = sdf_data[:, 2].unsqueeze(1)
        sdf_gt = torch.clamp(sdf_gt, -clamp_dist, clamp_dist)
        xyz = torch.chunk(xyz, batch_split)
        indices = torch.chunk(indices.unsqueeze(-1).repeat(1, num_samp_per_scene).view(-1), batch_split)
        sdf_gt = torch.chunk(sdf_gt, batch_split)
        batch_loss = 0.0
        optimizer_all.zero_grad()
        for i in range(batch_split):
            batch_vecs = lat_vecs(indices[i])
            input = torch.cat([batch_vecs, xyz[i]], dim=1)
            pred_sdf = decoder(input)
            pred_sdf = torch.clamp(pred_sdf, -clamp_dist, clamp_dist)
            chunk_loss = loss_l1(pred_sdf, sdf_gt[i]) / num_sdf_samples
            l2_size_loss = torch.sum(torch.norm(batch_vecs, dim=1))
            reg_loss = (code_reg_lambda * min(1, epoch / 100) * l2_size_loss) / num_sdf_samples
            chunk_loss = chunk_loss + reg_loss
            chunk_loss.backward()
            batch_loss += chunk_loss.item()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer_all.step()
        epoch_loss += batch_loss
    epoch_losses.append(epoch_loss / len(sdf_loader))
    if epoch % 20 == 0:
        print(f"epoch {epoch} loss {epoch_losses[-1]:.5f} lr {optimizer_all.param_groups[0]['lr']:.5f} "
              f"code norm {lat_vecs.weight.norm(dim=1).mean().item():.3f}")

max_code_norm = lat_vecs.weight.detach().norm(dim=1).max().item()


def reconstruct(decoder, num_iterations, latent_size, test_sdf, stat, clamp_dist, num_samples=256, lr=5e-3, l2reg=True):
    def adjust_learning_rate(initial_lr, optimizer, num_iterations, decreased_by, adjust_lr_every):
        lr = initial_lr * ((1 / decreased_by) ** (num_iterations // adjust_lr_every))
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr

    decreased_by = 10
    adjust_lr_every = int(num_iterations / 2)
    latent = torch.ones(1, latent_size).normal_(mean=0, std=stat)
    latent.requires_grad = True
    optimizer = torch.optim.Adam([latent], lr=lr)
    loss_l1 = torch.nn.L1Loss()
    loss = None
    for e in range(num_iterations):
        decoder.eval()
        sdf_data = test_sdf[torch.randint(0, test_sdf.shape[0], (num_samples,))]
        xyz = sdf_data[:, 0:2]
        sdf_gt = sdf_data[:, 2].unsqueeze(1)
        sdf_gt = torch.clamp(sdf_gt, -clamp_dist, clamp_dist)
        adjust_learning_rate(lr, optimizer, e, decreased_by, adjust_lr_every)
        optimizer.zero_grad()
        latent_inputs = latent.expand(num_samples, -1)
        inputs = torch.cat([latent_inputs, xyz], 1)
        pred_sdf = decoder(inputs)
        pred_sdf = torch.clamp(pred_sdf, -clamp_dist, clamp_dist)
        loss = loss_l1(pred_sdf, sdf_gt)
        if l2reg:
            loss += 1e-4 * torch.mean(latent.pow(2))
        loss.backward()
        optimizer.step()
    return loss.item(), latent


def sdf_error(latent, samples):
    with torch.no_grad():
        pred = decoder(torch.cat([latent.expand(samples.shape[0], -1), samples[:, :2]], 1))
        gt = torch.clamp(samples[:, 2:3], -clamp_dist, clamp_dist)
        err = (torch.clamp(pred, -clamp_dist, clamp_dist) - gt).abs().mean().item()
        sign_acc = ((pred < 0) == (samples[:, 2:3] < 0)).float().mean().item()
    return err, sign_acc


optimizer_all.zero_grad()
decoder.requires_grad_(False)
frozen = all(not p.requires_grad for p in decoder.parameters())
mean_code = lat_vecs.weight.detach().mean(0, keepdim=True)
recon_errs, base_errs, sign_accs = [], [], []
for k, shape in enumerate(test_shapes):
    test_sdf = torch.from_numpy(sample_sdf(shape, 1024))
    held_out = torch.from_numpy(sample_sdf(shape, 512))
    final_loss, latent = reconstruct(decoder, 150, latent_size, test_sdf, 0.01, clamp_dist)
    err, sign_acc = sdf_error(latent.detach(), held_out)
    base_err, _ = sdf_error(mean_code, held_out)
    recon_errs.append(err)
    base_errs.append(base_err)
    sign_accs.append(sign_acc)
    print(f"test shape {k} ({test_specs[k][0]}) loss {final_loss:.4f} sdf err {err:.4f} "
          f"mean-code err {base_err:.4f} sign acc {sign_acc:.3f}")

loss_first = sum(epoch_losses[:3]) / 3
loss_last = sum(epoch_losses[-3:]) / 3
no_decoder_grads = all(p.grad is None for p in decoder.parameters())
print(f"decoder frozen {frozen}, no decoder grads after reconstruction {no_decoder_grads}")
print(f"FINAL loss_first={loss_first:.5f} loss_last={loss_last:.5f} loss_ratio={loss_last / loss_first:.4f} "
      f"recon_err={np.mean(recon_errs):.4f} mean_code_err={np.mean(base_errs):.4f} "
      f"sign_acc={np.mean(sign_accs):.4f} max_code_norm={max_code_norm:.4f} embed_err={embed_err:.2e}")
