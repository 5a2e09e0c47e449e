"""wav2vec 2.0's pre-training pieces as fairseq writes them, at tiny sizes on synthetic "speech".

The conv feature encoder (``ConvFeatureExtractionModel``'s blocks: a bias-free ``nn.Conv1d`` with
``kaiming_normal_``, ``nn.Dropout``, ``nn.GroupNorm(C, C)`` on the first layer only, ``nn.GELU``), its
gradient scaled by ``GradMultiply`` (an ``autograd.Function`` returning ``x.new(x)``), the feature
penalty ``features.float().pow(2).mean()``, ``LayerNorm`` + projection; span masking from
``torch.rand`` starts filled with a learned ``mask_emb`` by ``x[mask_indices] = self.mask_emb``; a
convolutional positional embedding under ``parametrizations.weight_norm(dim=2)`` with an even kernel
trimmed by ``SamePad``; a ``TransformerEncoderLayer`` context network. ``GumbelVectorQuantizer``:
``weight_proj`` logits per group, ``F.gumbel_softmax(x.float(), tau=self.curr_temp, hard=True)`` with
the temperature annealed per update by ``max(max_temp * temp_decay ** num_updates, min_temp)``, the
hard code perplexity from ``scatter_`` one-hots and the soft ``prob_perplexity`` by
``torch.exp(-torch.sum(p * torch.log(p + 1e-7), dim=-1))`` feeding the diversity loss. The
contrastive loss over sampled distractors (``torch.randint`` indices pushed past the positive by
``neg_idxs[neg_idxs >= tszs] += 1``), ``torch.cosine_similarity(x.unsqueeze(0), targets, dim=-1) /
kappa``, distractors equal to the positive masked by ``logits[1:][neg_is_pos] = float("-inf")``, and
``F.cross_entropy`` against class 0 on the masked frames.

The data: utterances made with NumPy as runs of "phones", each a two-partial tone from a small
inventory, with noise; normalised per utterance as the feature extractor does.
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

SAMPLES = 1600
PHONES = np.array([[0.020, 0.055], [0.031, 0.090], [0.045, 0.012], [0.064, 0.140], [0.083, 0.037], [0.110, 0.071]])


def make_utterances(n):
    t = np.arange(SAMPLES)
    wavs = np.zeros((n, SAMPLES), dtype=np.float32)
    for i in range(n):
        start = 0
        while start < SAMPLES:
            length = int(rng.integers(240, 480))
            f1, f2 = PHONES[rng.integers(len(PHONES))]
            seg = t[start:start + length]
            wavs[i, start:start + length] = (np.sin(2 * np.pi * f1 * seg + rng.uniform(0, 2 * np.pi))
                                             + 0.5 * np.sin(2 * np.pi * f2 * seg + rng.uniform(0, 2 * np.pi)))
            start += length
        wavs[i] *= rng.uniform(0.5, 2.0)
    wavs += 0.1 * rng.normal(size=wavs.shape).astype(np.float32)
    wav = torch.from_numpy(wavs)
    return (wav - wav.mean(-1, keepdim=True)) / torch.sqrt(wav.var(-1, keepdim=True) + 1e-7)


class GradMultiply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        res = x.new(x)
        return res

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


class ConvFeatureExtractionModel(nn.Module):
    def __init__(self, conv_layers, dropout=0.0, conv_bias=False):
        super().__init__()

        def block(n_in, n_out, k, stride, is_group_norm=False):
            def make_conv():
                conv = nn.Conv1d(n_in, n_out, k, stride=stride, bias=conv_bias)
                nn.init.kaiming_normal_(conv.weight)
                return conv

            if is_group_norm:
                return nn.Sequential(make_conv(), nn.Dropout(p=dropout), nn.GroupNorm(n_out, n_out, affine=True), nn.GELU())
            return nn.Sequential(make_conv(), nn.Dropout(p=dropout), nn.GELU())

        in_d = 1
        self.conv_layers = nn.ModuleList()
        for i, (dim, k, stride) in enumerate(conv_layers):
            self.conv_layers.append(block(in_d, dim, k, stride, is_group_norm=i == 0))
            in_d = dim

    def forward(self, x):
        x = x.unsqueeze(1)  # BxT -> BxCxT
        for conv in self.conv_layers:
            x = conv(x)
        return x


class SamePad(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x):
        if self.remove > 0:
            x = x[:, :, : -self.remove]
        return x


class GumbelVectorQuantizer(nn.Module):
    def __init__(self, dim, num_vars, temp, groups, vq_dim):
        super().__init__()
        self.groups = groups
        self.num_vars = num_vars
        var_dim = vq_dim // groups
        self.vars = nn.Parameter(torch.FloatTensor(1, groups * num_vars, var_dim))
        nn.init.uniform_(self.vars)
        self.weight_proj = nn.Linear(dim, groups * num_vars)
        nn.init.normal_(self.weight_proj.weight, mean=0, std=1)
        nn.init.zeros_(self.weight_proj.bias)
        self.max_temp, self.min_temp, self.temp_decay = temp
        self.curr_temp = self.max_temp

    def set_num_updates(self, num_updates):
        self.curr_temp = max(self.max_temp * self.temp_decay ** num_updates, self.min_temp)

    def forward(self, x):
        result = {"num_vars": self.num_vars * self.groups}
        bsz, tsz, fsz = x.shape
        x = x.reshape(-1, fsz)
        x = self.weight_proj(x)
        x = x.view(bsz * tsz * self.groups, -1)

        _, k = x.max(-1)
        hard_x = x.new_zeros(*x.shape).scatter_(-1, k.view(-1, 1), 1.0).view(bsz * tsz, self.groups, -1)
        hard_probs = torch.mean(hard_x.float(), dim=0)
        result["code_perplexity"] = torch.exp(-torch.sum(hard_probs * torch.log(hard_probs + 1e-7), dim=-1)).sum()

        avg_probs = torch.softmax(x.view(bsz * tsz, self.groups, -1).float(), dim=-1).mean(dim=0)
        result["prob_perplexity"] = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-7), dim=-1)).sum()
        result["temp"] = self.curr_temp

        if self.training:
            x = F.gumbel_softmax(x.float(), tau=self.curr_temp, hard=True).type_as(x)
        else:
            x = hard_x
        x = x.view(bsz * tsz, -1)
        x = x.unsqueeze(-1) * self.vars
        x = x.view(bsz * tsz, self.groups, self.num_vars, -1)
        x = x.sum(-2)
        result["x"] = x.view(bsz, tsz, -1)
        result["codes"] = k.view(bsz, tsz, self.groups)
        return result


def compute_span_mask(bsz, tsz, mask_prob, mask_length):
    """Span starts drawn by ``torch.rand``; each start masks ``mask_length`` frames."""
    starts = torch.rand(bsz, tsz - mask_length + 1) < mask_prob / mask_length
    mask = torch.zeros(bsz, tsz, dtype=torch.bool)
    for offset in range(mask_length):
        mask[:, offset:offset + tsz - mask_length + 1] |= starts
    return mask


class Wav2Vec2Model(nn.Module):
    def __init__(self, conv_layers, embed_dim=32, final_dim=16, num_negatives=8, logit_temp=0.1,
                 feature_grad_mult=0.1, latent_vars=12, latent_groups=2, latent_temp=(2.0, 0.5, 0.97),
                 mask_prob=0.5, mask_length=3, conv_pos=8, conv_pos_groups=4):
        super().__init__()
        self.feature_extractor = ConvFeatureExtractionModel(conv_layers)
        self.embed = conv_layers[-1][0]
        self.layer_norm = nn.LayerNorm(self.embed)
        self.post_extract_proj = nn.Linear(self.embed, embed_dim)
        self.feature_grad_mult = feature_grad_mult
        self.mask_prob, self.mask_length = mask_prob, mask_length
        self.n_negatives = num_negatives
        self.logit_temp = logit_temp
        self.mask_emb = nn.Parameter(torch.FloatTensor(embed_dim).uniform_())
        self.quantizer = GumbelVectorQuantizer(self.embed, latent_vars, latent_temp, latent_groups, final_dim)
        self.project_q = nn.Linear(final_dim, final_dim)

        pos_conv = nn.Conv1d(embed_dim, embed_dim, kernel_size=conv_pos, padding=conv_pos // 2, groups=conv_pos_groups)
        std = math.sqrt(4 / (conv_pos * embed_dim))
        nn.init.normal_(pos_conv.weight, mean=0, std=std)
        nn.init.constant_(pos_conv.bias, 0)
        pos_conv = nn.utils.parametrizations.weight_norm(pos_conv, name="weight", dim=2)
        self.pos_conv = nn.Sequential(pos_conv, SamePad(conv_pos), nn.GELU())
        self.encoder = nn.TransformerEncoderLayer(embed_dim, nhead=2, dim_feedforward=64, dropout=0.0,
                                                  activation="gelu", batch_first=True)
        self.encoder_norm = nn.LayerNorm(embed_dim)
        self.final_proj = nn.Linear(embed_dim, final_dim)

    def set_num_updates(self, num_updates):
        self.quantizer.set_num_updates(num_updates)

    def sample_negatives(self, y):
        bsz, tsz, fsz = y.shape
        y = y.reshape(-1, fsz)
        with torch.no_grad():
            tszs = torch.arange(tsz).unsqueeze(-1).expand(-1, self.n_negatives).flatten()
            neg_idxs = torch.randint(low=0, high=tsz - 1, size=(bsz, self.n_negatives * tsz))
            neg_idxs[neg_idxs >= tszs] += 1
            for i in range(1, bsz):
                neg_idxs[i] += i * tsz
        negs = y[neg_idxs.view(-1)]
        negs = negs.view(bsz, tsz, self.n_negatives, fsz).permute(2, 0, 1, 3)  # to NxBxTxC
        return negs, neg_idxs

    def compute_preds(self, x, y, negatives):
        neg_is_pos = (y == negatives).all(-1)
        y = y.unsqueeze(0)
        targets = torch.cat([y, negatives], dim=0)
        logits = torch.cosine_similarity(x.float().unsqueeze(0), targets.float(), dim=-1) / self.logit_temp
        if neg_is_pos.any():
            logits[1:][neg_is_pos] = float("-inf")
        return logits, neg_is_pos

    def forward(self, source, mask=True):
        if self.feature_grad_mult > 0:
            features = self.feature_extractor(source)
            if self.feature_grad_mult != 1.0:
                features = GradMultiply.apply(features, self.feature_grad_mult)
        else:
            with torch.no_grad():
                features = self.feature_extractor(source)
        features_pen = features.float().pow(2).mean()
        features = features.transpose(1, 2)
        features = self.layer_norm(features)
        unmasked_features = features.clone()
        x = self.post_extract_proj(features)

        bsz, tsz, _ = x.shape
        mask_indices = compute_span_mask(bsz, tsz, self.mask_prob, self.mask_length) if mask else None
        if mask_indices is not None:
            x[mask_indices] = self.mask_emb

        x_conv = self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        x = self.encoder_norm(self.encoder(x + x_conv))

        q = self.quantizer(unmasked_features)
        y = self.project_q(q["x"])
        negs, _ = self.sample_negatives(y)
        x = self.final_proj(x)
        logits, neg_is_pos = self.compute_preds(x, y, negs)
        return {"logits": logits, "mask_indices": mask_indices, "features_pen": features_pen,
                "neg_is_pos": neg_is_pos, **{k: v for k, v in q.items() if k != "x"}}


def wav2vec_losses(model, net_output, loss_weights=(0.1, 10.0)):
    logits = net_output["logits"]  # (1 + K) x B x T
    mask = net_output["mask_indices"]
    picked = logits.permute(1, 2, 0)[mask]  # M x (1 + K)
    target = picked.new_zeros(picked.size(0), dtype=torch.long)
    contrastive = F.cross_entropy(picked, target, reduction="sum") / picked.size(0)
    num_vars = net_output["num_vars"]
    diversity = (num_vars - net_output["prob_perplexity"]) / num_vars
    loss = contrastive + loss_weights[0] * diversity + loss_weights[1] * net_output["features_pen"]
    with torch.no_grad():
        correct = (picked.argmax(-1) == 0).sum().item()
    return loss, contrastive, diversity, correct, picked.size(0)


conv_layers = [(32, 10, 5), (32, 3, 2), (32, 3, 2), (32, 2, 2)]
model = Wav2Vec2Model(conv_layers)
train_wavs = make_utterances(96)
test_wavs = make_utterances(24)
with torch.no_grad():
    frames = model.feature_extractor(train_wavs[:2])
print(f"audio {tuple(train_wavs.shape)} -> features {tuple(frames.shape)} "
      f"group norm {type(model.feature_extractor.conv_layers[0][2]).__name__}")
print("quantizer codebook", tuple(model.quantizer.vars.shape), "pos_conv weight_g", tuple(model.pos_conv[0].parametrizations.weight.original0.shape))

probe = torch.randn(6, 12)
hard = F.gumbel_softmax(probe, tau=0.7, hard=True)
print(f"gumbel hard one-hot {bool((hard.sum(-1) == 1).all())} values {sorted(set(hard.flatten().tolist()))}")

optimizer = torch.optim.Adam(model.parameters(), lr=5e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
STEPS, BATCH = 96, 8
for step in range(STEPS):
    model.train()
    model.set_num_updates(step)
    index = torch.randint(0, len(train_wavs), (BATCH,))
    out = model(train_wavs[index])
    loss, contrastive, diversity, correct, count = wav2vec_losses(model, out)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    optimizer.step()
    if step % 8 == 0 or step == STEPS - 1:
        print(f"step {step} tau {out['temp']:.4f} loss {loss.item():.4f} contrastive {contrastive.item():.4f} "
              f"diversity {diversity.item():.4f} code_ppl {out['code_perplexity'].item():.3f} "
              f"acc {correct / count:.3f} masked {count} grad {grad_norm.item():.3f}")

print("gradient reached mask_emb", model.mask_emb.grad is not None, "and the codebook", model.quantizer.vars.grad is not None)

model.eval()
with torch.no_grad():
    out = model(test_wavs)
    loss, contrastive, diversity, correct, count = wav2vec_losses(model, out)
    inf_share = torch.isinf(out["logits"][1:]).float().mean().item()
    codes_used = len(torch.unique(out["codes"][..., 0])) + len(torch.unique(out["codes"][..., 1]))
print(f"eval masked {count} distractors equal to the positive {out['neg_is_pos'].sum().item()} "
      f"(-inf share {inf_share:.4f})")
print(f"FINAL contrastive={contrastive.item():.4f} acc={correct / count:.4f} diversity={diversity.item():.4f} "
      f"code_ppl={out['code_perplexity'].item():.4f} prob_ppl={out['prob_perplexity'].item():.4f} "
      f"features_pen={out['features_pen'].item():.4f} code_usage={codes_used / out['num_vars']:.4f}")
