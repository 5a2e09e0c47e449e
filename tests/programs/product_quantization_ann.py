"""Product quantization for approximate nearest-neighbour search (Jegou, Douze and Schmid, 2011).

FAISS's ``IndexPQ`` and ``IndexIVFPQ`` recipe in plain torch on clustered synthetic vectors: the
vectors are split into ``M`` sub-spaces by ``view``/``unflatten``; each sub-space gets a k-means
codebook (``torch.cdist``, ``argmin``, centroid sums by ``index_add_`` and counts by
``scatter_reduce_(reduce="sum")``, empty clusters re-seeded from the points farthest from their
centroid by ``topk``); codes are stored as ``torch.uint8``. Queries are answered by asymmetric
distance computation: a (queries, M, 256)-shaped table of squared distances read at the codes by
``torch.gather`` and summed, the best candidates by ``torch.topk(largest=False)``, scored by
recall 1@10 against exact search, with ``torch.kthvalue`` checking the exact k-th distance. An
inverted file on a coarse quantizer groups the database: lists by ``torch.sort(stable=True)``, their
sizes by ``torch.unique(return_inverse=True, return_counts=True)``, list offsets by ``cumsum`` and
``torch.bucketize`` mapping a sorted position back to its list; residuals are product-quantized and
searched in the ``nprobe`` nearest lists. Codebooks round-trip through ``torch.save``/``torch.load``
on an ``io.BytesIO``. Finally the codebooks are fine-tuned by gradient descent on a soft assignment
(``softmax`` over negative distances) and the hard quantization error must drop.
"""

import io
import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

DIM, M, KSUB = 32, 8, 256
DSUB = DIM // M
N_BASE, N_QUERY, N_CLUSTERS = 2000, 100, 24

# clustered data: Gaussian blobs of different spreads, queries drawn like the base
centers = torch.from_numpy(rng.normal(0, 1.0, size=(N_CLUSTERS, DIM)).astype(np.float32))
spreads = torch.from_numpy(rng.uniform(0.3, 0.7, size=(N_CLUSTERS, 1)).astype(np.float32))
labels = torch.randint(N_CLUSTERS, (N_BASE + N_QUERY,))
data = centers[labels] + spreads[labels] * torch.randn(N_BASE + N_QUERY, DIM)
base, queries = data[:N_BASE], data[N_BASE:]
print(f"database {tuple(base.shape)} {base.dtype}, queries {tuple(queries.shape)}")


def kmeans(x, k, iters=4, generator=None):
    """Lloyd's algorithm; an empty cluster takes the point farthest from its centroid (FAISS splits)."""
    n = x.shape[0]
    centroids = x[torch.randperm(n, generator=generator)[:k]].clone()
    reseeded = 0
    for _ in range(iters):
        dist = torch.cdist(x, centroids) ** 2
        assign = dist.argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.zeros(k, dtype=x.dtype).scatter_reduce_(0, assign, torch.ones(n), reduce="sum")
        empty = counts == 0
        centroids = torch.where(empty.unsqueeze(1), centroids, sums / counts.clamp(min=1).unsqueeze(1))
        if empty.any():
            far = dist.gather(1, assign.unsqueeze(1)).squeeze(1).topk(int(empty.sum())).indices
            centroids[empty] = x[far] + 1e-3 * torch.randn(len(far), x.shape[1], generator=generator)
            reseeded += int(empty.sum())
    assign = torch.cdist(x, centroids).argmin(dim=1)
    return centroids, assign, reseeded


class ProductQuantizer:
    def __init__(self, dim, m, ksub):
        self.dim, self.m, self.ksub = dim, m, ksub
        self.codebooks = torch.empty(m, ksub, dim // m)

    def train(self, x, generator=None):
        subs = x.unflatten(1, (self.m, -1))  # (n, m, dsub)
        total = 0
        for j in range(self.m):
            self.codebooks[j], _, reseeded = kmeans(subs[:, j].contiguous(), self.ksub, generator=generator)
            total += reseeded
        return total

    def encode(self, x):
        subs = x.view(x.shape[0], self.m, -1).transpose(0, 1)  # (m, n, dsub)
        codes = torch.cdist(subs, self.codebooks).argmin(dim=2)  # batched over the sub-spaces
        return codes.t().to(torch.uint8)

    def decode(self, codes):
        idx = codes.long()
        parts = [self.codebooks[j][idx[:, j]] for j in range(self.m)]
        return torch.cat(parts, dim=1)

    def distance_tables(self, q):
        subs = q.view(q.shape[0], self.m, -1).transpose(0, 1)  # (m, nq, dsub)
        return (torch.cdist(subs, self.codebooks) ** 2).permute(1, 0, 2)  # (nq, m, ksub)

    def adc(self, tables, codes):
        """Asymmetric distances of every query to every code: table entries gathered and summed."""
        nq = tables.shape[0]
        index = codes.long().t().unsqueeze(0).expand(nq, -1, -1)  # (nq, m, n)
        return torch.gather(tables, 2, index).sum(dim=1)  # (nq, n)


def recall_1_at(found, truth_nn):
    """FAISS's 1-recall@R: the true nearest neighbour is among the R returned."""
    return (found == truth_nn.unsqueeze(1)).any(dim=1).float().mean().item()


# --- exact search ---
exact = torch.cdist(queries, base) ** 2
K = 10
exact_d, exact_i = exact.topk(K, dim=1, largest=False)
kth_d, kth_i = torch.kthvalue(exact, K, dim=1)
assert torch.equal(kth_i, exact_i[:, -1]) and torch.allclose(kth_d, exact_d[:, -1])
truth_nn = exact_i[:, 0]
print(f"exact {K}-NN: mean {K}-th distance {kth_d.mean().item():.3f}")

# --- IndexPQ: train, encode, search by ADC ---
gen = torch.Generator().manual_seed(seed)
pq = ProductQuantizer(DIM, M, KSUB)
reseeded = pq.train(base, generator=gen)
codes = pq.encode(base)
assert codes.dtype == torch.uint8 and codes.shape == (N_BASE, M)
recon = pq.decode(codes)
pq_mse = ((recon - base) ** 2).sum(dim=1).mean().item()
print(f"PQ{M}x{int(np.log2(KSUB))}: codes {tuple(codes.shape)} {codes.dtype}, reconstruction MSE {pq_mse:.4f}, "
      f"empty clusters re-seeded {reseeded}")
tables = pq.distance_tables(queries)
approx = pq.adc(tables, codes)
# the ADC distance is the exact distance to the reconstruction
assert torch.allclose(approx, torch.cdist(queries, recon) ** 2, rtol=1e-4, atol=1e-3)
_, pq_i = approx.topk(K, dim=1, largest=False)
recall_pq = recall_1_at(pq_i, truth_nn)
recall_1_1 = recall_1_at(pq_i[:, :1], truth_nn)
compression = base.element_size() * DIM / (codes.element_size() * M)
print(f"IndexPQ recall 1@1 {recall_1_1:.3f} 1@10 {recall_pq:.3f}, compression {compression:.0f}x")

# --- codebooks round-trip through torch.save / torch.load ---
buffer = io.BytesIO()
torch.save({"codebooks": pq.codebooks, "m": M, "ksub": KSUB}, buffer)
size = buffer.tell()
buffer.seek(0)
state = torch.load(buffer)
assert torch.equal(state["codebooks"], pq.codebooks) and state["m"] == M
restored = ProductQuantizer(DIM, state["m"], state["ksub"])
restored.codebooks = state["codebooks"]
assert torch.equal(restored.encode(base), codes)
print(f"codebooks saved in {size} bytes and restored: same codes {torch.equal(restored.encode(base), codes)}")

# --- IndexIVFPQ: coarse lists, residual PQ, search nprobe lists ---
NLIST, NPROBE = 16, 4
coarse, list_of, _ = kmeans(base, NLIST, iters=10, generator=gen)
lists, inverse, sizes = torch.unique(list_of, return_inverse=True, return_counts=True)
order = torch.sort(list_of, stable=True).indices
offsets = torch.zeros(NLIST + 1, dtype=torch.long)
offsets[lists + 1] = sizes
offsets = offsets.cumsum(0)
position_list = torch.bucketize(torch.arange(N_BASE), offsets[1:], right=True)
assert torch.equal(position_list, list_of[order])
assert torch.equal(lists[inverse], list_of)
print(f"inverted file: {NLIST} lists, {len(lists)} non-empty, largest {sizes.max().item() / N_BASE:.3f} of the base")
residuals = base - coarse[list_of]
ivfpq = ProductQuantizer(DIM, M, KSUB)
ivfpq.train(residuals, generator=gen)
ivf_codes = ivfpq.encode(residuals)[order]
ivf_ids = order
coarse_d = torch.cdist(queries, coarse) ** 2
probe = coarse_d.topk(NPROBE, dim=1, largest=False).indices
found = torch.full((N_QUERY, K), -1, dtype=torch.long)
scanned = 0
for qi in range(N_QUERY):
    cand_d, cand_i = [], []
    for li in probe[qi].tolist():
        lo, hi = offsets[li].item(), offsets[li + 1].item()
        if hi == lo:
            continue
        table = ivfpq.distance_tables((queries[qi] - coarse[li]).unsqueeze(0))
        cand_d.append(ivfpq.adc(table, ivf_codes[lo:hi])[0])
        cand_i.append(ivf_ids[lo:hi])
    cand_d, cand_i = torch.cat(cand_d), torch.cat(cand_i)
    scanned += len(cand_i)
    top = cand_d.topk(min(K, len(cand_d)), largest=False).indices
    found[qi, :len(top)] = cand_i[top]
recall_ivf = recall_1_at(found, truth_nn)
print(f"IndexIVFPQ nprobe={NPROBE}: recall 1@10 {recall_ivf:.3f}, scanned {scanned / (N_QUERY * N_BASE):.3f} of the base")

# --- fine-tune the codebooks through a soft assignment ---
codebooks = pq.codebooks.clone().requires_grad_(True)
optimizer = torch.optim.Adam([codebooks], lr=1e-2)
subs = base.view(N_BASE, M, DSUB).transpose(0, 1)  # (m, n, dsub)
temperature = 0.01


def hard_mse(cb):
    idx = torch.cdist(subs, cb).argmin(dim=2)  # (m, n)
    picked = torch.stack([cb[j][idx[j]] for j in range(M)])
    return ((picked - subs) ** 2).sum(dim=(0, 2)).mean().item()


before = hard_mse(codebooks.detach())
STEPS = 30
for step in range(STEPS):
    x = subs
    d = torch.cdist(x, codebooks) ** 2  # (m, n, ksub)
    weights = torch.softmax(-d / temperature, dim=-1)
    hard = torch.nn.functional.one_hot(d.argmin(dim=-1), KSUB).to(weights.dtype)
    # straight-through: the forward uses the hard codes, the gradient flows through the soft ones
    assignment = hard + weights - weights.detach()
    quantized = torch.bmm(assignment, codebooks)  # (m, n, dsub)
    loss = ((quantized - x) ** 2).sum(dim=(0, 2)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 10 == 0:
        print(f"fine-tune step {step} straight-through quantization loss {loss.item():.4f}")
after = hard_mse(codebooks.detach())
finetune_ratio = after / before
print(f"hard quantization MSE {before:.4f} -> {after:.4f} (ratio {finetune_ratio:.4f})")
with torch.no_grad():
    pq.codebooks = codebooks.detach().clone()
    codes = pq.encode(base)
    _, pq_i = pq.adc(pq.distance_tables(queries), codes).topk(K, dim=1, largest=False)
recall_ft = recall_1_at(pq_i, truth_nn)
print(f"IndexPQ after fine-tuning: recall 1@10 {recall_ft:.3f}")
print(f"FINAL recall_pq={recall_pq:.4f} recall_ivf={recall_ivf:.4f} recall_ft={recall_ft:.4f} "
      f"mse_ratio={finetune_ratio:.4f} compression={compression:.1f}")
