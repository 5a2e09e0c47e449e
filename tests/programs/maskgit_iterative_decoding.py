"""MaskGIT (Chang et al. 2022; google-research/maskgit, dome272/MaskGIT-pytorch) at tiny sizes.

A bidirectional transformer over 4x4 grids of VQ token ids (codebook of 16, plus a ``[MASK]`` id and
an ``sos`` id as dome272's ``VQGANTransformer`` lays them out): ``BidirectionalTransformer`` with
``nn.Embedding`` tokens, a ``trunc_normal_`` position ``nn.Parameter``, post-norm ``Encoder`` blocks
around ``nn.MultiheadAttention(batch_first=True)``, the ``Token_Prediction`` head and logits tied to
the token embedding (``torch.matmul(embed, self.tok_emb.weight.T) + self.bias``), ``weights_init``
through ``apply`` by class name. Training: a masking ratio per sample from the cosine schedule
``cos(pi / 2 * r)`` on ``torch.rand``, the masked set as the top-``r`` of random scores (a
``topk`` threshold ``gather``-ed per sample, checked against lucidrains' double-``argsort`` ranks),
``torch.where(mask, mask_token_id, ids)`` inputs, ``F.cross_entropy`` on ``(B, C, N)`` logits with
``ignore_index=-1`` and ``label_smoothing=0.1``, AdamW(betas=(0.9, 0.96)) with a ``LambdaLR``
warm-up. Decoding: ``sample_good`` with T steps, ``torch.multinomial`` on the softmax, confidences
``take_along_dim``-ed, ``torch.where`` with ``inf`` for known tokens, ``mask_len`` from the schedule
(``torch.floor``, ``torch.maximum``/``torch.minimum``), ``mask_by_random_topk`` with
``torch.log(probs) + temperature * Gumbel(0, 1).sample(probs.shape)``, ``torch.sort`` and the cut-off
by ``gather`` (against ``take_along_dim``). Data: the token grids of six scenes with 10% of the tokens
replaced at random, whose exact likelihood scores decoded grids against uniform random ones.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
rng = np.random.RandomState(1234)  # the scenes are the same for every seed

NUM_CODEBOOK_VECTORS = 16
NUM_IMAGE_TOKENS = 16  # a 4x4 latent grid
NUM_SCENES = 6
NOISE = 0.1
_CONFIDENCE_OF_KNOWN_TOKENS = torch.Tensor([torch.inf])

SCENES = torch.from_numpy(rng.randint(0, NUM_CODEBOOK_VECTORS, size=(NUM_SCENES, NUM_IMAGE_TOKENS)))


def sample_token_grids(n, generator_rng):
    """z_indices as a VQGAN encoder would give them: a scene's tokens, some replaced at random."""
    scene = generator_rng.randint(0, NUM_SCENES, size=n)
    z = SCENES.numpy()[scene].copy()
    noisy = generator_rng.rand(n, NUM_IMAGE_TOKENS) < NOISE
    z[noisy] = generator_rng.randint(0, NUM_CODEBOOK_VECTORS, size=int(noisy.sum()))
    return torch.from_numpy(z).long()


def data_nll(z):
    """-log p(z) under the generating process (a mixture of the scenes with uniform corruption)."""
    match = (z[:, None, :] == SCENES[None, :, :]).float()  # (n, scenes, tokens)
    p_tok = match * (1 - NOISE) + NOISE / NUM_CODEBOOK_VECTORS
    log_p = torch.log(p_tok).sum(-1) - math.log(NUM_SCENES)
    return -torch.logsumexp(log_p, dim=1)


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Linear") != -1 and classname.find("NonDynamicallyQuantizable") == -1:
        nn.init.trunc_normal_(m.weight.data, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif classname.find("Embedding") != -1:
        nn.init.trunc_normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("LayerNorm") != -1:
        nn.init.constant_(m.weight, 1.0)
        nn.init.constant_(m.bias, 0)


class Encoder(nn.Module):
    def __init__(self, dim=768, hidden_dim=3072, heads=8):
        super(Encoder, self).__init__()  # noqa: UP008
        self.MultiHeadAttention = nn.MultiheadAttention(dim, num_heads=heads, batch_first=True, dropout=0.1)
        self.LayerNorm1 = nn.LayerNorm(dim, eps=1e-12)
        self.LayerNorm2 = nn.LayerNorm(dim, eps=1e-12)
        self.MLP = nn.Sequential(*[
            nn.Linear(in_features=dim, out_features=hidden_dim),
            nn.GELU(),
            nn.Linear(in_features=hidden_dim, out_features=dim),
            nn.Dropout(p=0.1),
        ])
        self.dropout = nn.Dropout(p=0.1)

    def forward(self, x):
        attn, _ = self.MultiHeadAttention(x, x, x, need_weights=False)
        attn = self.dropout(attn)
        x = x.add(attn)
        x = self.LayerNorm1(x)
        mlp = self.MLP(x)
        x = x.add(mlp)
        x = self.LayerNorm2(x)
        return x


class BidirectionalTransformer(nn.Module):
    def __init__(self, args):
        super(BidirectionalTransformer, self).__init__()  # noqa: UP008
        self.num_image_tokens = args["num_image_tokens"]
        self.tok_emb = nn.Embedding(args["num_codebook_vectors"] + 2, args["dim"])
        self.pos_emb = nn.init.trunc_normal_(nn.Parameter(torch.zeros(args["num_image_tokens"] + 1, args["dim"])), 0., 0.02)
        self.blocks = nn.Sequential(*[Encoder(args["dim"], args["hidden_dim"], args["heads"]) for _ in range(args["n_layers"])])
        self.Token_Prediction = nn.Sequential(*[
            nn.Linear(in_features=args["dim"], out_features=args["dim"]),
            nn.GELU(),
            nn.LayerNorm(args["dim"], eps=1e-12),
        ])
        self.bias = nn.Parameter(torch.zeros(self.num_image_tokens + 1, args["num_codebook_vectors"] + 2))
        self.ln = nn.LayerNorm(args["dim"], eps=1e-12)
        self.drop = nn.Dropout(p=0.1)
        self.apply(weights_init)

    def forward(self, x):
        token_embeddings = self.tok_emb(x)
        t = token_embeddings.shape[1]
        position_embeddings = self.pos_emb[:t, :]
        embed = self.drop(self.ln(token_embeddings + position_embeddings))
        embed = self.blocks(embed)
        embed = self.Token_Prediction(embed)
        logits = torch.matmul(embed, self.tok_emb.weight.T) + self.bias
        return logits


class VQGANTransformer(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.num_image_tokens = args["num_image_tokens"]
        self.sos_token = args["num_codebook_vectors"] + 1
        self.mask_token_id = args["num_codebook_vectors"]
        self.num_codebook_vectors = args["num_codebook_vectors"]
        self.choice_temperature = 4.5
        self.gamma = self.gamma_func("cosine")
        self.transformer = BidirectionalTransformer(args)

    @staticmethod
    def gamma_func(mode="cosine"):
        if mode == "linear":
            return lambda r: 1 - r
        elif mode == "cosine":
            return lambda r: np.cos(r * np.pi / 2)
        elif mode == "square":
            return lambda r: 1 - r ** 2
        else:
            raise NotImplementedError

    def random_mask(self, z_indices):
        """A masking ratio per sample, the masked set the top-r of random scores."""
        B, N = z_indices.shape
        r = torch.rand(B)
        num_token_masked = torch.clamp(torch.ceil(torch.cos(r * math.pi / 2) * N), min=1).long()
        scores = torch.rand(B, N)
        top = scores.topk(N, dim=1).values  # descending
        threshold = top.gather(1, (num_token_masked - 1).unsqueeze(1))
        mask = scores >= threshold
        # lucidrains' route: the rank of each score among its row, by a double argsort
        ranks = scores.argsort(dim=-1, descending=True).argsort(dim=-1)
        mask_by_rank = ranks < num_token_masked.unsqueeze(1)
        return mask, mask_by_rank, num_token_masked

    def forward(self, z_indices):
        mask, mask_by_rank, num_token_masked = self.random_mask(z_indices)
        a_indices = torch.where(mask, self.mask_token_id, z_indices)
        sos_tokens = torch.ones(z_indices.shape[0], 1, dtype=torch.long, device=z_indices.device) * self.sos_token
        a_indices = torch.cat((sos_tokens, a_indices), dim=1)
        labels = torch.where(mask, z_indices, -1)
        logits = self.transformer(a_indices)[:, 1:, :self.num_codebook_vectors]
        return logits, labels, mask, mask_by_rank, num_token_masked

    @staticmethod
    def mask_by_random_topk(mask_len, probs, temperature=1.0):
        confidence = torch.log(probs) + temperature * torch.distributions.gumbel.Gumbel(0, 1).sample(probs.shape)
        sorted_confidence, _ = torch.sort(confidence, dim=-1)
        # Obtains cut off threshold given the mask lengths.
        cut_off = torch.gather(sorted_confidence, -1, mask_len.to(torch.long))
        cut_off_along = torch.take_along_dim(sorted_confidence, mask_len.to(torch.long), dim=-1)
        # Masks tokens with lower confidence.
        masking = (confidence < cut_off)
        return masking, bool(torch.equal(cut_off, cut_off_along))

    @torch.no_grad()
    def sample_good(self, num=1, T=8, mode="cosine"):
        self.transformer.eval()
        N = self.num_image_tokens
        inputs = torch.zeros((num, N), dtype=torch.long).fill_(self.mask_token_id)
        sos_tokens = torch.ones(inputs.shape[0], 1, dtype=torch.long) * self.sos_token
        inputs = torch.cat((sos_tokens, inputs), dim=1)

        unknown_number_in_the_beginning = torch.sum(inputs == self.mask_token_id, dim=-1)
        gamma = self.gamma_func(mode)
        cur_ids = inputs
        masked_counts = []
        cutoffs_agree = True
        for t in range(T):
            logits = self.transformer(cur_ids)[..., :self.num_codebook_vectors]
            probs = F.softmax(logits, dim=-1)
            sampled_ids = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).view(num, N + 1)

            unknown_map = (cur_ids == self.mask_token_id)
            sampled_ids = torch.where(unknown_map, sampled_ids, cur_ids)

            ratio = 1. * (t + 1) / T
            mask_ratio = gamma(ratio)

            selected_probs = torch.squeeze(torch.take_along_dim(probs, torch.unsqueeze(sampled_ids, -1).clamp(max=self.num_codebook_vectors - 1), -1), -1)
            selected_probs = torch.where(unknown_map, selected_probs, _CONFIDENCE_OF_KNOWN_TOKENS)

            mask_len = torch.unsqueeze(torch.floor(unknown_number_in_the_beginning * mask_ratio), 1)
            mask_len = torch.maximum(torch.zeros_like(mask_len), torch.minimum(torch.sum(unknown_map, dim=-1, keepdim=True) - 1, mask_len))

            masking, agree = self.mask_by_random_topk(mask_len, selected_probs, temperature=self.choice_temperature * (1. - ratio))
            cutoffs_agree = cutoffs_agree and agree
            cur_ids = torch.where(masking, self.mask_token_id, sampled_ids)
            masked_counts.append((cur_ids == self.mask_token_id).sum(dim=-1))

        self.transformer.train()
        return cur_ids[:, 1:], torch.stack(masked_counts, dim=1), cutoffs_agree


@torch.no_grad()
def masked_accuracy(model, z, mask):
    model.eval()
    a_indices = torch.where(mask, model.mask_token_id, z)
    sos = torch.full((z.shape[0], 1), model.sos_token, dtype=torch.long)
    logits = model.transformer(torch.cat((sos, a_indices), dim=1))[:, 1:, :model.num_codebook_vectors]
    model.train()
    pred = logits.argmax(-1)
    return (pred[mask] == z[mask]).float().mean().item()


args = dict(num_image_tokens=NUM_IMAGE_TOKENS, num_codebook_vectors=NUM_CODEBOOK_VECTORS,
            dim=32, hidden_dim=64, heads=4, n_layers=2)
model = VQGANTransformer(args)
print(f"parameters: {sum(p.numel() for p in model.parameters())}")

data_rng = np.random.RandomState(seed)
train_z = sample_token_grids(512, data_rng)
val_z = sample_token_grids(128, np.random.RandomState(seed + 100))
val_mask = torch.rand(val_z.shape) < 0.5
val_mask[:, 0] = True

# the schedule's masked counts for a few ratios
for r in (0.0, 0.25, 0.5, 0.75):
    print(f"gamma({r:.2f}) = {model.gamma(r):.4f} -> {math.floor(model.gamma(r) * NUM_IMAGE_TOKENS)} of {NUM_IMAGE_TOKENS} masked")

decay, no_decay = [], []
for name, p in model.named_parameters():
    (no_decay if p.dim() < 2 or name.endswith("pos_emb") else decay).append(p)
optim = torch.optim.AdamW([{"params": decay, "weight_decay": 4.5e-2}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=2e-3, betas=(0.9, 0.96))
warmup = 30
scheduler = torch.optim.lr_scheduler.LambdaLR(optim, lambda step: min(1.0, (step + 1) / warmup))

acc_before = masked_accuracy(model, val_z, val_mask)
print(f"masked-token accuracy before training: {acc_before:.4f}")

batch_size, steps = 32, 300
routes_agree = True
counts_ok = True
for step in range(steps):
    idx = torch.randint(0, train_z.shape[0], (batch_size,))
    z = train_z[idx]
    logits, labels, mask, mask_by_rank, num_masked = model(z)
    routes_agree = routes_agree and torch.equal(mask, mask_by_rank)
    counts_ok = counts_ok and torch.equal(mask.sum(1), num_masked)
    loss = F.cross_entropy(logits.permute(0, 2, 1), labels, ignore_index=-1, label_smoothing=0.1)
    optim.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    scheduler.step()
    if step % 100 == 0 or step == steps - 1:
        acc = masked_accuracy(model, val_z, val_mask)
        print(f"step {step:4d} loss {loss.item():.4f} val masked acc {acc:.4f} lr {scheduler.get_last_lr()[0]:.6f}")

acc_after = masked_accuracy(model, val_z, val_mask)
print(f"masked-token accuracy after training: {acc_after:.4f}")
print(f"masks: topk threshold equals argsort ranks: {routes_agree}, masked counts as drawn: {counts_ok}")

T = 8
samples, masked_counts, cutoffs_agree = model.sample_good(num=64, T=T)
expected, unknown = [], NUM_IMAGE_TOKENS
for t in range(T):
    unknown = max(0, min(unknown - 1, math.floor(NUM_IMAGE_TOKENS * model.gamma((t + 1) / T))))
    expected.append(unknown)
schedule_ok = bool((masked_counts == torch.tensor(expected)[None, :]).all())
fixed_per_step = [NUM_IMAGE_TOKENS - expected[0]] + [expected[t - 1] - expected[t] for t in range(1, T)]
print(f"tokens still masked after each step: {masked_counts[0].tolist()}")
print(f"tokens fixed per step: {fixed_per_step} (schedule followed by every sample: {schedule_ok})")
print(f"cut-off by gather equals take_along_dim: {cutoffs_agree}")

nll_decoded = data_nll(samples).mean().item()
nll_random = data_nll(torch.randint(0, NUM_CODEBOOK_VECTORS, samples.shape)).mean().item()
nll_data = data_nll(val_z).mean().item()
nearest = (samples[:, None, :] == SCENES[None]).float().mean(-1).max(1).values.mean().item()
print(f"NLL per grid: decoded {nll_decoded:.3f}  data {nll_data:.3f}  uniform random {nll_random:.3f}")
print(f"decoded grids agree with their nearest scene on {nearest:.3f} of tokens")

ok = (routes_agree and counts_ok and schedule_ok and cutoffs_agree and acc_after > acc_before + 0.3
      and nll_decoded < nll_random)
print(f"FINAL acc_before={acc_before:.4f} acc_after={acc_after:.4f} nll_decoded={nll_decoded:.4f} "
      f"nll_random={nll_random:.4f} nearest_scene={nearest:.4f} ok={int(ok)}")
