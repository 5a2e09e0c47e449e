"""SuperPoint (magicleap/SuperPointPretrainedNetwork, SuperGlue's superpoint.py) and LoFTR's coarse
matching (zju3dv/LoFTR) at toy size, trained on synthetic image pairs related by a known homography.

Images are 40x40 grey renderings of a smooth random sinusoid background plus two filled convex
quadrilaterals; the second image of a pair is the first rendered through a random near-identity
homography ``H`` (every pixel evaluated at ``H^-1 p``), so the quadrilaterals' corners (the keypoint
labels, as in SuperPoint's Synthetic Shapes) and every coarse cell's correspondence are known exactly.

``SuperPointNet`` is the magicleap layout at toy width: ``conv1a``..``conv4b`` with ``nn.MaxPool2d(2, 2)``
down to 1/8, the detector head ``convPa``/``convPb`` with 65 channels (64 cell positions + a dustbin),
the descriptor head ``convDa``/``convDb`` normalised by ``desc.div(torch.unsqueeze(dn, 1))``. The
detector is trained by ``F.cross_entropy`` on labels from ``labels2Dto3D`` (the dustbin where a cell
has no corner), and the heatmap is ``F.softmax(semi, 1)`` with the dustbin dropped, ``F.pixel_shuffle(...,
8)`` back to full resolution (against the reference's ``reshape``/``transpose`` ``depth_to_space``),
SuperGlue's ``simple_nms`` by ``F.max_pool2d`` comparison, ``remove_borders``, ``top_k_keypoints`` and
``sample_descriptors`` by ``F.grid_sample(..., align_corners=True)`` + ``F.normalize``; keypoints are
matched by the magicleap ``nn_match_two_way`` (mutual nearest neighbours on ``sqrt(2 - 2 d1^T d2)``).

The coarse descriptor map feeds LoFTR's ``CoarseMatching`` (dual-softmax): ``feat / feat.shape[-1]**.5``,
``sim_matrix = torch.einsum("nlc,nsc->nls", ...) / temperature``, ``F.softmax(sim, 1) * F.softmax(sim,
2)``, ``get_coarse_match`` by threshold and mutual nearest (``conf == conf.max(dim=2, keepdim=True)[0]``
both ways, ``mask.max(dim=2)``, ``torch.where``), and ``compute_coarse_loss`` (``-torch.log`` of the
clamped confidence at the ground-truth matches from ``spvs_coarse``-style warping of cell centres).

Checked: the coarse match precision and the keypoint match precision (reprojection error under 3 px)
on held-out pairs before and after training, the detector's corner recall, that ``pixel_shuffle`` equals
the reference's reshape route, and that ``grid_sample(align_corners=True)`` descriptors equal direct
indexing at integer cell positions.
"""

# ruff: noqa: UP008  (the reference's own spelling: super(SuperPointNet, self))

import os

import numpy as np
import torch
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SIZE = 40
CELL = 8
HC = SIZE // CELL


# ----------------------------------------------------------------------------- synthetic pairs
def random_homography():
    """A near-identity perspective warp about the image centre (pixel coordinates, x then y)."""
    c = (SIZE - 1) / 2.0
    angle = rng.uniform(-0.25, 0.25)
    scale = rng.uniform(0.9, 1.1)
    A = np.array([[scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-3, 3)],
                  [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-3, 3)],
                  [rng.uniform(-1e-3, 1e-3), rng.uniform(-1e-3, 1e-3), 1.0]])
    T = np.array([[1, 0, c], [0, 1, c], [0, 0, 1.0]])
    return T @ A @ np.linalg.inv(T)


def warp_points(H, pts):
    pts_h = np.concatenate([pts, np.ones((len(pts), 1))], 1) @ H.T
    return pts_h[:, :2] / pts_h[:, 2:3]


def random_quad(x0, x1):
    cx, cy = rng.uniform(x0 + 7, x1 - 7), rng.uniform(9, SIZE - 9)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 4) + np.arange(4) * 0.6) % (2 * np.pi)
    angles = np.sort(angles)
    radius = rng.uniform(5, 7, 4)
    return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1)


def inside_convex(poly, px, py):
    sign = None
    for k in range(len(poly)):
        ax, ay = poly[k]
        bx, by = poly[(k + 1) % len(poly)]
        cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
        sign = cross >= 0 if sign is None else sign & (cross >= 0)
    return sign


def render(scene, H):
    """The scene seen through H: the value at pixel p is the scene's at H^-1 p."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    src = warp_points(np.linalg.inv(H), np.stack([xx.ravel(), yy.ravel()], 1))
    px, py = src[:, 0], src[:, 1]
    img = np.zeros(len(px))
    for (wx, wy, phase, amp) in scene["waves"]:
        img += amp * np.sin(wx * px + wy * py + phase)
    for poly, value in zip(scene["quads"], scene["values"]):
        img = np.where(inside_convex(poly, px, py), value, img)
    return img.reshape(SIZE, SIZE)


def make_pairs(n):
    images0, images1, homographies, corners0, corners1 = [], [], [], [], []
    for _ in range(n):
        scene = {
            "waves": [(rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0, 2 * np.pi), 0.25)
                      for _ in range(3)],
            "quads": [random_quad(0, SIZE / 2), random_quad(SIZE / 2, SIZE)],
            "values": [rng.uniform(0.6, 1.0), rng.uniform(-1.0, -0.6)],
        }
        H = random_homography()
        images0.append(render(scene, np.eye(3)))
        images1.append(render(scene, H))
        pts = np.concatenate(scene["quads"], 0)
        corners0.append(pts)
        corners1.append(warp_points(H, pts))
        homographies.append(H)
    to_t = lambda a: torch.from_numpy(np.stack(a)[:, None].astype(np.float32))  # noqa: E731
    return to_t(images0), to_t(images1), np.stack(homographies), corners0, corners1


def labels2Dto3D(corners_list):
    """SuperPoint's detector target: per 8x8 cell the index of its corner pixel, 64 (dustbin) if none."""
    labels = torch.full((len(corners_list), HC, HC), CELL * CELL, dtype=torch.long)
    for b, corners in enumerate(corners_list):
        pix = np.round(corners).astype(np.int64)
        for x, y in pix:
            if 0 <= x < SIZE and 0 <= y < SIZE:
                labels[b, y // CELL, x // CELL] = int((y % CELL) * CELL + x % CELL)
    return labels


def spvs_coarse(H_batch):
    """LoFTR-style coarse supervision: cell centres of image 0 warped into image 1's grid."""
    ys, xs = torch.meshgrid(torch.arange(HC), torch.arange(HC), indexing="ij")
    centres = (torch.stack([xs, ys], -1).reshape(-1, 2).double() * CELL + (CELL - 1) / 2.0).numpy()
    conf_gt = torch.zeros(len(H_batch), HC * HC, HC * HC)
    for b, H in enumerate(H_batch):
        warped = np.floor((warp_points(H, centres) + 0.5) / CELL).astype(np.int64)
        valid = ((warped >= 0) & (warped < HC)).all(1)
        i_ids = torch.arange(HC * HC)[torch.from_numpy(valid)]
        j_ids = torch.from_numpy(warped[valid, 1] * HC + warped[valid, 0])
        conf_gt[b, i_ids, j_ids] = 1
    return conf_gt


# ----------------------------------------------------------------------------- SuperPoint
class SuperPointNet(torch.nn.Module):
    """Pytorch definition of SuperPoint Network (toy widths)."""

    def __init__(self):
        super(SuperPointNet, self).__init__()
        self.relu = torch.nn.ReLU(inplace=True)
        self.pool = torch.nn.MaxPool2d(kernel_size=2, stride=2)
        c1, c2, c3, c4, c5, d1 = 8, 16, 16, 32, 32, 16
        self.conv1a = torch.nn.Conv2d(1, c1, kernel_size=3, stride=1, padding=1)
        self.conv1b = torch.nn.Conv2d(c1, c1, kernel_size=3, stride=1, padding=1)
        self.conv2a = torch.nn.Conv2d(c1, c2, kernel_size=3, stride=1, padding=1)
        self.conv2b = torch.nn.Conv2d(c2, c2, kernel_size=3, stride=1, padding=1)
        self.conv3a = torch.nn.Conv2d(c2, c3, kernel_size=3, stride=1, padding=1)
        self.conv3b = torch.nn.Conv2d(c3, c3, kernel_size=3, stride=1, padding=1)
        self.conv4a = torch.nn.Conv2d(c3, c4, kernel_size=3, stride=1, padding=1)
        self.conv4b = torch.nn.Conv2d(c4, c4, kernel_size=3, stride=1, padding=1)
        self.convPa = torch.nn.Conv2d(c4, c5, kernel_size=3, stride=1, padding=1)
        self.convPb = torch.nn.Conv2d(c5, 65, kernel_size=1, stride=1, padding=0)
        self.convDa = torch.nn.Conv2d(c4, c5, kernel_size=3, stride=1, padding=1)
        self.convDb = torch.nn.Conv2d(c5, d1, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        x = self.relu(self.conv1a(x))
        x = self.relu(self.conv1b(x))
        x = self.pool(x)
        x = self.relu(self.conv2a(x))
        x = self.relu(self.conv2b(x))
        x = self.pool(x)
        x = self.relu(self.conv3a(x))
        x = self.relu(self.conv3b(x))
        x = self.pool(x)
        x = self.relu(self.conv4a(x))
        x = self.relu(self.conv4b(x))
        cPa = self.relu(self.convPa(x))
        semi = self.convPb(cPa)
        cDa = self.relu(self.convDa(x))
        coarse = self.convDb(cDa)
        dn = torch.norm(coarse, p=2, dim=1)  # Compute the norm.
        desc = coarse.div(torch.unsqueeze(dn, 1))  # Divide by norm to normalize.
        return semi, desc, coarse


def heatmap_from_semi(semi):
    dense = F.softmax(semi, 1)
    nodust = dense[:, :-1]
    return F.pixel_shuffle(nodust, CELL)[:, 0]


def heatmap_reference(semi):
    """magicleap's route: exp / sum, drop the dustbin, transpose and reshape to full resolution."""
    dense = torch.exp(semi)
    dense = dense / (torch.sum(dense, dim=1, keepdim=True) + 1e-5)
    nodust = dense[:, :-1, :, :]
    b, _, hc, wc = nodust.shape
    nodust = nodust.permute(0, 2, 3, 1).reshape(b, hc, wc, CELL, CELL)
    return nodust.permute(0, 1, 3, 2, 4).reshape(b, hc * CELL, wc * CELL)


def simple_nms(scores, nms_radius: int):
    """Fast Non-maximum suppression to remove nearby points"""
    assert nms_radius >= 0

    def max_pool(x):
        return torch.nn.functional.max_pool2d(x, kernel_size=nms_radius * 2 + 1, stride=1, padding=nms_radius)

    zeros = torch.zeros_like(scores)
    max_mask = scores == max_pool(scores)
    for _ in range(2):
        supp_mask = max_pool(max_mask.float()) > 0
        supp_scores = torch.where(supp_mask, zeros, scores)
        new_max_mask = supp_scores == max_pool(supp_scores)
        max_mask = max_mask | (new_max_mask & (~supp_mask))
    return torch.where(max_mask, scores, zeros)


def remove_borders(keypoints, scores, border: int, height: int, width: int):
    """Removes keypoints too close to the border"""
    mask_h = (keypoints[:, 0] >= border) & (keypoints[:, 0] < (height - border))
    mask_w = (keypoints[:, 1] >= border) & (keypoints[:, 1] < (width - border))
    mask = mask_h & mask_w
    return keypoints[mask], scores[mask]


def top_k_keypoints(keypoints, scores, k: int):
    if k >= len(keypoints):
        return keypoints, scores
    scores, indices = torch.topk(scores, k, dim=0)
    return keypoints[indices], scores


def sample_descriptors(keypoints, descriptors, s: int = 8):
    """Interpolate descriptors at keypoint locations"""
    b, c, h, w = descriptors.shape
    keypoints = keypoints - s / 2 + 0.5
    keypoints /= torch.tensor([(w * s - s / 2 - 0.5), (h * s - s / 2 - 0.5)],
                              ).to(keypoints)[None]
    keypoints = keypoints * 2 - 1  # normalize to (-1, 1)
    args = {"align_corners": True} if torch.__version__ >= "1.3" else {}
    descriptors = torch.nn.functional.grid_sample(
        descriptors, keypoints.view(b, 1, -1, 2), mode="bilinear", **args)
    descriptors = torch.nn.functional.normalize(
        descriptors.reshape(b, c, -1), p=2, dim=1)
    return descriptors


def detect(net, image, keypoint_threshold=0.005, nms_radius=2, max_keypoints=24, remove_border=2):
    semi, desc, _ = net(image)
    scores = heatmap_from_semi(semi)
    scores = simple_nms(scores, nms_radius)
    keypoints = [torch.nonzero(s > keypoint_threshold) for s in scores]
    scores = [s[tuple(k.t())] for s, k in zip(scores, keypoints)]
    keypoints, scores = list(zip(*[
        remove_borders(k, s, remove_border, SIZE, SIZE) for k, s in zip(keypoints, scores)]))
    keypoints, scores = list(zip(*[
        top_k_keypoints(k, s, max_keypoints) for k, s in zip(keypoints, scores)]))
    keypoints = [torch.flip(k, [1]).float() for k in keypoints]
    descriptors = [sample_descriptors(k[None], d[None], CELL)[0] for k, d in zip(keypoints, desc)]
    return keypoints, scores, descriptors


def nn_match_two_way(desc1, desc2, nn_thresh):
    """magicleap: mutual nearest neighbours with a distance threshold (desc: D x N, unit columns)."""
    if desc1.shape[1] == 0 or desc2.shape[1] == 0:
        return torch.zeros((3, 0))
    dmat = torch.mm(desc1.t(), desc2)
    dmat = torch.sqrt(2 - 2 * torch.clamp(dmat, -1, 1))
    idx = torch.argmin(dmat, dim=1)
    scores = dmat[torch.arange(dmat.shape[0]), idx]
    keep = scores < nn_thresh
    idx2 = torch.argmin(dmat, dim=0)
    keep_bi = torch.arange(len(idx)) == idx2[idx]
    keep = torch.logical_and(keep, keep_bi)
    m_idx1 = torch.arange(desc1.shape[1])[keep]
    m_idx2 = idx[keep]
    return torch.stack([m_idx1.float(), m_idx2.float(), scores[keep]])


# ----------------------------------------------------------------------------- LoFTR coarse matching
class CoarseMatching(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.thr = config["thr"]
        self.temperature = config["dsmax_temperature"]

    def forward(self, feat_c0, feat_c1, data):
        feat_c0, feat_c1 = map(lambda feat: feat / feat.shape[-1] ** .5, [feat_c0, feat_c1])
        sim_matrix = torch.einsum("nlc,nsc->nls", feat_c0, feat_c1) / self.temperature
        conf_matrix = F.softmax(sim_matrix, 1) * F.softmax(sim_matrix, 2)
        data.update({"conf_matrix": conf_matrix})
        data.update(**self.get_coarse_match(conf_matrix, data))

    @torch.no_grad()
    def get_coarse_match(self, conf_matrix, data):
        mask = conf_matrix > self.thr
        mask = mask \
            * (conf_matrix == conf_matrix.max(dim=2, keepdim=True)[0]) \
            * (conf_matrix == conf_matrix.max(dim=1, keepdim=True)[0])
        mask_v, all_j_ids = mask.max(dim=2)
        b_ids, i_ids = torch.where(mask_v)
        j_ids = all_j_ids[b_ids, i_ids]
        mconf = conf_matrix[b_ids, i_ids, j_ids]
        return {"b_ids": b_ids, "i_ids": i_ids, "j_ids": j_ids, "mconf": mconf}


def compute_coarse_loss(conf, conf_gt):
    pos_mask = conf_gt == 1
    conf = torch.clamp(conf, 1e-6, 1 - 1e-6)
    loss_pos = - torch.log(conf[pos_mask])
    return loss_pos.mean()


def flatten_feat(feat):
    return feat.flatten(2).transpose(1, 2)  # rearrange('n c h w -> n (h w) c')


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(net, matcher, pairs):
    image0, image1, Hs, corners0, _ = pairs
    net.eval()
    _, _, coarse0 = net(image0)
    _, _, coarse1 = net(image1)
    data = {}
    matcher(flatten_feat(coarse0), flatten_feat(coarse1), data)
    conf_gt = spvs_coarse(Hs)
    correct = conf_gt[data["b_ids"], data["i_ids"], data["j_ids"]]
    coarse_prec = correct.sum().item() / max(len(correct), 1)

    kps0, _, descs0 = detect(net, image0)
    kps1, _, descs1 = detect(net, image1)
    good, total, found = 0, 0, 0
    for b in range(len(image0)):
        matches = nn_match_two_way(descs0[b], descs1[b], nn_thresh=0.9)
        idx0 = matches[0].long()
        idx1 = matches[1].long()
        warped = torch.from_numpy(warp_points(Hs[b], kps0[b][idx0].double().numpy()))
        err = (warped - kps1[b][idx1].double()).norm(dim=1)
        good += int((err < 3).sum())
        total += len(idx0)
        truth = torch.from_numpy(corners0[b])
        if len(kps0[b]):
            found += int((torch.cdist(truth, kps0[b].double()).min(1)[0] < 3).sum())
    net.train()
    return coarse_prec, good / max(total, 1), found / sum(len(c) for c in corners0), total / len(image0)


train_pairs = make_pairs(48)
test_pairs = make_pairs(64)
train_labels0 = labels2Dto3D(train_pairs[3])
train_labels1 = labels2Dto3D(train_pairs[4])
train_conf_gt = spvs_coarse(train_pairs[2])

net = SuperPointNet()
matcher = CoarseMatching({"thr": 0.05, "dsmax_temperature": 0.1})
optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)

c0, k0, r0, n0 = evaluate(net, matcher, test_pairs)
print(f"before: coarse precision {c0:.3f}  keypoint precision {k0:.3f}  corner recall {r0:.3f}  matches/pair {n0:.1f}")

batch_size = 8
for epoch in range(15):
    perm = torch.randperm(len(train_labels0))
    total_det, total_match = 0.0, 0.0
    for start in range(0, len(perm), batch_size):
        idx = perm[start:start + batch_size]
        semi0, _, coarse0 = net(train_pairs[0][idx])
        semi1, _, coarse1 = net(train_pairs[1][idx])
        loss_det = F.cross_entropy(semi0, train_labels0[idx]) + F.cross_entropy(semi1, train_labels1[idx])
        data = {}
        matcher(flatten_feat(coarse0), flatten_feat(coarse1), data)
        loss_match = compute_coarse_loss(data["conf_matrix"], train_conf_gt[idx])
        loss = loss_det + loss_match
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_det += loss_det.item()
        total_match += loss_match.item()
    n_batches = len(perm) // batch_size
    print(f"epoch {epoch}: detector loss {total_det / n_batches:.4f}  coarse loss {total_match / n_batches:.4f}")

c1, k1, r1, n1 = evaluate(net, matcher, test_pairs)
print(f"after: coarse precision {c1:.3f}  keypoint precision {k1:.3f}  corner recall {r1:.3f}  matches/pair {n1:.1f}")

# checks: pixel_shuffle against the reference's reshape, grid_sample against direct indexing
with torch.no_grad():
    semi, desc, _ = net(test_pairs[0][:4])
    shuffle_err = (heatmap_from_semi(semi) - heatmap_reference(semi)).abs().max().item()
    cells = torch.randint(0, HC, (4, 10, 2))
    grid = cells.float() / (HC - 1) * 2 - 1
    sampled = F.grid_sample(desc, grid.view(4, 1, -1, 2), mode="bilinear", align_corners=True)[:, :, 0]
    direct = torch.stack([desc[b][:, cells[b, :, 1], cells[b, :, 0]] for b in range(4)])
    sample_err = (sampled - direct).abs().max().item()
print(f"pixel_shuffle vs reshape max err {shuffle_err:.2e}, grid_sample vs indexing max err {sample_err:.2e}")
agree = float(shuffle_err < 1e-4 and sample_err < 1e-5)

print(f"FINAL coarse_prec={c1:.4f} kp_prec={k1:.4f} recall={r1:.4f} "
      f"coarse_gain={c1 - c0:.4f} agree={agree:.0f}")
