"""AlphaFold2's Invariant Point Attention and structure module (Jumper et al. 2021), in the idioms of
aqlaboratory/openfold and lucidrains/invariant-point-attention, on toy backbones.

Frames come from three backbone points by Gram–Schmidt (``rigid_from_3_points``: ``F.normalize``,
``torch.cross(e1, e2, dim=-1)``, rotation matrices by ``torch.stack([e1, e2, e3], dim=-1)``). The
``InvariantPointAttention`` layer projects scalar queries/keys/values and 3-d query/key/value points in
each residue's local frame, moves the points to the global frame by
``torch.einsum('...ij,...hpj->...hpi', R, p) + t``, adds to the scalar logits a pair bias and the
squared-distance term weighted by ``F.softplus(head_weights)``, and returns the attended values, the
points moved back to the local frames (with their ``torch.linalg.vector_norm``) and the attended pair
features. The structure module applies IPA, a transition and a backbone update a few times with shared
weights from identity frames: the update is a quaternion ``F.pad(bcd, (1, 0), value=1.0)`` normalised to
a rotation, composed on the right of the current frame; rotations are detached between blocks (openfold's
``stop_rot_gradient``). The loss is the clamped FAPE (``torch.clamp(d, max=10)`` in Å, over a length
scale of 10) averaged over blocks; Adam trains it. The pair features are radial functions of the true
Cα distances, so the module has to turn distances into coordinates.

Checked: the IPA output is unchanged when every frame is moved by one random global rotation and
translation (error printed), the predicted rotations stay orthonormal (error of ``R^T R - I``), the
determinant stays 1, and the FAPE falls during training.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_RES, C_S, C_Z, HEADS, C_HIDDEN, P_QK, P_V, N_BLOCKS = 12, 32, 16, 4, 8, 4, 4, 3
TRANS_SCALE = 10.0


def make_backbones(n, n_res):
    """Cα random walks with 3.8 Å steps, N and C placed 1.46 / 1.52 Å off Cα in random directions."""
    steps = rng.normal(size=(n, n_res, 3))
    steps = 3.8 * steps / np.linalg.norm(steps, axis=-1, keepdims=True)
    ca = np.cumsum(steps, axis=1)
    ca -= ca.mean(axis=1, keepdims=True)
    dir_n = rng.normal(size=(n, n_res, 3))
    dir_c = rng.normal(size=(n, n_res, 3))
    n_atom = ca + 1.46 * dir_n / np.linalg.norm(dir_n, axis=-1, keepdims=True)
    c_atom = ca + 1.52 * dir_c / np.linalg.norm(dir_c, axis=-1, keepdims=True)
    return [torch.from_numpy(a).float() for a in (n_atom, ca, c_atom)]


def rigid_from_3_points(x1, x2, x3):
    """AlphaFold's Algorithm 21: the frame at x2 with e1 along x3 - x2 and e2 in the x1 plane."""
    v1 = x3 - x2
    v2 = x1 - x2
    e1 = F.normalize(v1, dim=-1)
    u2 = v2 - e1 * (e1 * v2).sum(dim=-1, keepdim=True)
    e2 = F.normalize(u2, dim=-1)
    e3 = torch.cross(e1, e2, dim=-1)
    rot = torch.stack([e1, e2, e3], dim=-1)
    return rot, x2


def quat_to_rot(quat):
    """Rotation matrices (..., 3, 3) from unit quaternions (..., 4) with the real part first."""
    a, b, c, d = quat.unbind(-1)
    return torch.stack([
        torch.stack([a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)], dim=-1),
        torch.stack([2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)], dim=-1),
        torch.stack([2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d], dim=-1),
    ], dim=-2)


def apply_frames(rot, trans, points):
    """Local points (b, n, h, p, 3) to the global frame."""
    return torch.einsum("...ij,...hpj->...hpi", rot, points) + trans[..., None, None, :]


def invert_apply_frames(rot, trans, points):
    """Global points (b, n, h, p, 3) into each residue's local frame."""
    return torch.einsum("...ji,...hpj->...hpi", rot, points - trans[..., None, None, :])


class InvariantPointAttention(nn.Module):
    def __init__(self, c_s, c_z, c_hidden, no_heads, no_qk_points, no_v_points, eps=1e-8):
        super().__init__()
        self.c_hidden, self.no_heads = c_hidden, no_heads
        self.no_qk_points, self.no_v_points = no_qk_points, no_v_points
        self.eps = eps
        self.linear_q = nn.Linear(c_s, c_hidden * no_heads)
        self.linear_kv = nn.Linear(c_s, 2 * c_hidden * no_heads)
        self.linear_q_points = nn.Linear(c_s, no_heads * no_qk_points * 3)
        self.linear_kv_points = nn.Linear(c_s, no_heads * (no_qk_points + no_v_points) * 3)
        self.linear_b = nn.Linear(c_z, no_heads)
        self.head_weights = nn.Parameter(torch.full((no_heads,), math.log(math.e - 1)))  # softplus^-1(1)
        concat_out_dim = no_heads * (c_z + c_hidden + no_v_points * 4)
        self.linear_out = nn.Linear(concat_out_dim, c_s)

    def forward(self, s, z, rot, trans):
        b, n, _ = s.shape
        h = self.no_heads
        q = self.linear_q(s).view(b, n, h, self.c_hidden)
        k, v = self.linear_kv(s).view(b, n, h, 2 * self.c_hidden).split(self.c_hidden, dim=-1)

        q_pts = apply_frames(rot, trans, self.linear_q_points(s).view(b, n, h, self.no_qk_points, 3))
        kv_pts = apply_frames(rot, trans, self.linear_kv_points(s).view(b, n, h, -1, 3))
        k_pts, v_pts = torch.split(kv_pts, [self.no_qk_points, self.no_v_points], dim=-2)

        a = torch.einsum("bihc,bjhc->bhij", q, k) * math.sqrt(1.0 / (3 * self.c_hidden))
        a = a + math.sqrt(1.0 / 3) * self.linear_b(z).permute(0, 3, 1, 2)

        pt_att = (q_pts.unsqueeze(2) - k_pts.unsqueeze(1)).pow(2).sum(dim=-1)  # (b, i, j, h, p)
        head_weights = F.softplus(self.head_weights).view(1, 1, 1, h, 1)
        head_weights = head_weights * math.sqrt(1.0 / (3 * (self.no_qk_points * 9.0 / 2)))
        pt_att = torch.sum(pt_att * head_weights, dim=-1) * (-0.5)
        a = torch.softmax(a + math.sqrt(1.0 / 3) * pt_att.permute(0, 3, 1, 2), dim=-1)

        o = torch.einsum("bhij,bjhc->bihc", a, v).reshape(b, n, -1)
        o_pt = torch.einsum("bhij,bjhpx->bihpx", a, v_pts)
        o_pt = invert_apply_frames(rot, trans, o_pt)
        o_pt_norm = torch.linalg.vector_norm(o_pt, dim=-1)
        o_pair = torch.einsum("bhij,bijc->bihc", a, z).reshape(b, n, -1)
        feats = [o, *torch.unbind(o_pt.reshape(b, n, -1, 3), dim=-1), o_pt_norm.reshape(b, n, -1), o_pair]
        return self.linear_out(torch.cat(feats, dim=-1))


class BackboneUpdate(nn.Module):
    def __init__(self, c_s):
        super().__init__()
        self.linear = nn.Linear(c_s, 6)

    def forward(self, s, rot, trans):
        bcd, t_update = self.linear(s).split(3, dim=-1)
        quat = F.pad(bcd, (1, 0), value=1.0)
        quat = quat / torch.linalg.vector_norm(quat, dim=-1, keepdim=True)
        rot_update = quat_to_rot(quat)
        new_trans = trans + torch.einsum("...ij,...j->...i", rot, t_update * TRANS_SCALE)
        return rot @ rot_update, new_trans


class StructureModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer_norm_s = nn.LayerNorm(C_S)
        self.layer_norm_z = nn.LayerNorm(C_Z)
        self.linear_in = nn.Linear(C_S, C_S)
        self.ipa = InvariantPointAttention(C_S, C_Z, C_HIDDEN, HEADS, P_QK, P_V)
        self.layer_norm_ipa = nn.LayerNorm(C_S)
        self.transition = nn.Sequential(nn.Linear(C_S, C_S), nn.ReLU(), nn.Linear(C_S, C_S))
        self.layer_norm_transition = nn.LayerNorm(C_S)
        self.bb_update = BackboneUpdate(C_S)

    def forward(self, s, z):
        b, n, _ = s.shape
        s = self.linear_in(self.layer_norm_s(s))
        z = self.layer_norm_z(z)
        rot = torch.eye(3).expand(b, n, 3, 3)
        trans = s.new_zeros(b, n, 3)
        frames = []
        for _ in range(N_BLOCKS):
            s = self.layer_norm_ipa(s + self.ipa(s, z, rot, trans))
            s = self.layer_norm_transition(s + self.transition(s))
            rot, trans = self.bb_update(s, rot, trans)
            frames.append((rot, trans))
            rot = rot.detach()  # openfold's stop_rot_gradient between blocks
        return frames


class Embedder(nn.Module):
    """Residue-index single features and radial-basis pair features of the true Cα distances."""

    def __init__(self):
        super().__init__()
        self.index_embedding = nn.Embedding(N_RES, C_S)
        self.register_buffer("centers", torch.linspace(0.0, 30.0, C_Z), persistent=False)
        self.pair_proj = nn.Linear(C_Z, C_Z)

    def forward(self, ca):
        b, n, _ = ca.shape
        s = self.index_embedding(torch.arange(n)).expand(b, n, C_S)
        dist = torch.cdist(ca, ca)
        rbf = torch.exp(-((dist[..., None] - self.centers) / 2.0) ** 2)
        return s, self.pair_proj(rbf)


def fape(pred_rot, pred_trans, true_rot, true_trans, clamp=10.0, length_scale=10.0, eps=1e-4):
    """Frame-aligned point error of the Cα positions (the frame origins) in every frame."""
    pred_local = torch.einsum("bjxi,bjkx->bjki", pred_rot, pred_trans[:, None] - pred_trans[:, :, None])
    true_local = torch.einsum("bjxi,bjkx->bjki", true_rot, true_trans[:, None] - true_trans[:, :, None])
    d = torch.sqrt(((pred_local - true_local) ** 2).sum(-1) + eps)
    return torch.clamp(d, max=clamp).mean() / length_scale


n_atom, ca_atom, c_atom = make_backbones(96, N_RES)
true_rot, true_trans = rigid_from_3_points(n_atom, ca_atom, c_atom)
det = torch.linalg.det(true_rot)
print(f"{true_rot.shape[0]} backbones of {N_RES} residues: frame orthonormality error "
      f"{(true_rot.transpose(-1, -2) @ true_rot - torch.eye(3)).abs().max().item():.2e}, "
      f"det range [{det.min().item():.4f}, {det.max().item():.4f}]")

# invariance of IPA under one global rotation + translation of every frame
ipa = InvariantPointAttention(C_S, C_Z, C_HIDDEN, HEADS, P_QK, P_V)
s_probe, z_probe = torch.randn(2, N_RES, C_S), torch.randn(2, N_RES, N_RES, C_Z)
rot_probe, trans_probe = true_rot[:2], true_trans[:2]
global_rot = quat_to_rot(F.normalize(torch.randn(4), dim=-1))
global_trans = torch.randn(3) * 5
with torch.no_grad():
    out = ipa(s_probe, z_probe, rot_probe, trans_probe)
    out_moved = ipa(s_probe, z_probe, global_rot @ rot_probe, trans_probe @ global_rot.T + global_trans)
invariance_err = (out - out_moved).abs().max().item()
print(f"IPA output {tuple(out.shape)} under a global rigid motion: max abs change {invariance_err:.2e}")
assert invariance_err < 1e-3

embedder, model = Embedder(), StructureModule()
params = list(embedder.parameters()) + list(model.parameters())
optimizer = torch.optim.Adam(params, lr=1e-3)
val_idx = torch.arange(80, 96)


def evaluate():
    with torch.no_grad():
        s, z = embedder(ca_atom[val_idx])
        rot, trans = model(s, z)[-1]
        return fape(rot, trans, true_rot[val_idx], true_trans[val_idx]).item(), rot


fape_start, _ = evaluate()
print(f"start: validation FAPE {fape_start:.4f}")
STEPS = 150
for step in range(1, STEPS + 1):
    idx = torch.randint(0, 80, (8,))
    s, z = embedder(ca_atom[idx])
    frames = model(s, z)
    loss = torch.stack([fape(r, t, true_rot[idx], true_trans[idx]) for r, t in frames]).mean()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: FAPE over blocks {loss.item():.4f}")

fape_end, pred_rot = evaluate()
ortho_err = (pred_rot.transpose(-1, -2) @ pred_rot - torch.eye(3)).abs().max().item()
det = torch.linalg.det(pred_rot)
assert (det - 1).abs().max().item() < 1e-3
print(f"end: validation FAPE {fape_end:.4f} (ratio {fape_end / fape_start:.3f}), "
      f"rotation orthonormality error {ortho_err:.2e}")
print(f"FINAL fape={fape_end:.4f} fape_ratio={fape_end / fape_start:.4f} invariance_err={invariance_err:.2e} "
      f"ortho_err={ortho_err:.2e}")
