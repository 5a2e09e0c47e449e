"""HuBERT masked prediction (fairseq ``hubert.py``, Hugging Face ``HubertModel``) at tiny sizes on synthetic "speech".

The model is written in HF's layout: ``HubertFeatureEncoder`` (a bias-free ``nn.Conv1d`` stack, the first
layer ``HubertGroupNormConvLayer`` with ``nn.GroupNorm(num_groups=C, num_channels=C, affine=True)``, the
others ``HubertNoLayerNormConvLayer``, ``nn.GELU`` after each), ``HubertFeatureProjection`` (``LayerNorm`` on
the conv features, ``nn.Linear``, ``Dropout``), span masking by HF's numpy ``_compute_mask_indices``
(``np.random.choice(..., replace=False)`` starts, dummy-padded spans, ``np.broadcast_to`` offsets,
``np.put_along_axis``) filled by ``hidden_states[mask_time_indices] = self.masked_spec_embed.to(dtype)`` with
``nn.Parameter(torch.FloatTensor(dim).uniform_())``, ``HubertPositionalConvEmbedding`` (a grouped
``nn.Conv1d`` under fairseq's ``nn.utils.weight_norm(conv, name="weight", dim=2)``, ``HubertSamePadLayer``
removing the even kernel's extra frame), post-LN ``HubertEncoderLayer``s with the hand-written
``HubertAttention`` (``q_proj(x) * self.scaling``, ``_shape`` by ``view`` + ``transpose(1, 2)``, ``bmm``).

The targets are HuBERT's first iteration: k-means on MFCC-like features. The features: frames by
``Tensor.unfold``, a Hann window, ``torch.fft.rfft(...).abs() ** 2``, triangular mel filters, ``log``, and a
DCT-II matrix; k-means by ``torch.cdist(...).argmin(-1)`` and centroid sums by ``index_add_``, and the labels
dumped by simple_kmeans' ``ApplyKmeans`` (``x.pow(2).sum(1, keepdim=True) - 2 * torch.matmul(x, C) + Cnorm``),
which must agree with the ``cdist`` assignment. The logits are fairseq's cosine similarity to label
embeddings over a temperature, ``F.cosine_similarity(x.unsqueeze(2), label_embs, dim=-1) / 0.1``, and the loss
``F.cross_entropy`` on the masked frames only (``pred_nomask_weight = 0``).

Checked: the masked share of frames against the exact expectation of the span sampler (each frame's
hit probability from the hypergeometric count of starts covering it); that the loss's gradient reaches the
logits only on masked frames, reaches the projected features only on unmasked frames (masked rows were
overwritten), and that ``masked_spec_embed.grad`` equals the sum of the encoder input's gradient over the
masked rows; and masked accuracy on held-out utterances before and after training.
"""

# ruff: noqa: UP004  (simple_kmeans' own spelling: class ApplyKmeans(object))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
rng = np.random.default_rng(seed)

SAMPLES = 1600
WIN, HOP = 40, 20
PHONES = np.array([[0.020, 0.061], [0.034, 0.120], [0.052, 0.015], [0.075, 0.180], [0.105, 0.042], [0.150, 0.090]])


def make_utterances(n):
    t = np.arange(SAMPLES)
    wavs = np.zeros((n, SAMPLES), dtype=np.float32)
    for i in range(n):
        start = 0
        while start < SAMPLES:
            length = int(rng.integers(160, 400))
            f1, f2 = PHONES[rng.integers(len(PHONES))]
            seg = t[start:start + length]
            wavs[i, start:start + length] = (np.sin(2 * np.pi * f1 * seg + rng.uniform(0, 2 * np.pi))
                                             + 0.6 * np.sin(2 * np.pi * f2 * seg + rng.uniform(0, 2 * np.pi)))
            start += length
        wavs[i] *= rng.uniform(0.5, 2.0)
    wavs += 0.1 * rng.normal(size=wavs.shape).astype(np.float32)
    wav = torch.from_numpy(wavs)
    return (wav - wav.mean(-1, keepdim=True)) / torch.sqrt(wav.var(-1, keepdim=True) + 1e-7)


# ----------------------------------------------------------------------------------- MFCC + k-means
def hz_to_mel(f):
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


def mfcc_like(wav, n_mels=16, n_mfcc=10, sample_rate=1.0):
    frames = wav.unfold(-1, WIN, HOP)  # (B, T, WIN)
    window = torch.hann_window(WIN, periodic=True)
    power = torch.fft.rfft(frames * window, dim=-1).abs() ** 2  # (B, T, WIN // 2 + 1)
    freqs = torch.linspace(0, sample_rate / 2, WIN // 2 + 1) * 8000.0
    mel_points = torch.linspace(hz_to_mel(torch.tensor(0.0)), hz_to_mel(torch.tensor(4000.0)), n_mels + 2)
    hz_points = mel_to_hz(mel_points)
    lower, center, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    up = (freqs[None, :] - lower) / (center - lower)
    down = (upper - freqs[None, :]) / (upper - center)
    fbank = torch.clamp(torch.min(up, down), min=0.0)  # (n_mels, F)
    log_mel = torch.log(power @ fbank.T + 1e-6)
    n = torch.arange(n_mels, dtype=torch.float32)
    k = torch.arange(n_mfcc, dtype=torch.float32).unsqueeze(1)
    dct = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)  # DCT-II, (n_mfcc, n_mels)
    dct[0] *= 1 / math.sqrt(2.0)
    return log_mel @ dct.T  # (B, T, n_mfcc)


def learn_kmeans(feats, n_clusters, n_iter=25):
    init = torch.randperm(feats.size(0))[:n_clusters]
    centroids = feats[init].clone()
    for _ in range(n_iter):
        assign = torch.cdist(feats, centroids).argmin(-1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, feats)
        counts = torch.bincount(assign, minlength=n_clusters).unsqueeze(1).to(feats.dtype)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    inertia = torch.cdist(feats, centroids).min(-1).values.pow(2).mean()
    return centroids, inertia


class ApplyKmeans(object):
    def __init__(self, cluster_centers):
        self.C = cluster_centers.t().contiguous()
        self.Cnorm = (self.C ** 2).sum(0, keepdim=True)

    def __call__(self, x):
        dist = x.pow(2).sum(1, keepdim=True) - 2 * torch.matmul(x, self.C) + self.Cnorm
        return dist.argmin(dim=1).cpu().numpy()


# ----------------------------------------------------------------------------------- masking (HF)
def _compute_mask_indices(shape, mask_prob, mask_length, min_masks=0):
    batch_size, sequence_length = shape
    if mask_length < 1:
        raise ValueError("`mask_length` has to be bigger than 0.")
    epsilon = np.random.rand(1).item()

    def compute_num_masked_span(input_length):
        num_masked_span = int(mask_prob * input_length / mask_length + epsilon)
        num_masked_span = max(num_masked_span, min_masks)
        if num_masked_span * mask_length > sequence_length:
            num_masked_span = sequence_length // mask_length
        if input_length - (mask_length - 1) < num_masked_span:
            num_masked_span = max(input_length - (mask_length - 1), 0)
        return num_masked_span

    input_lengths = [sequence_length for _ in range(batch_size)]
    spec_aug_mask = np.zeros((batch_size, sequence_length), dtype=bool)
    spec_aug_mask_idxs = []
    max_num_masked_span = compute_num_masked_span(sequence_length)
    for input_length in input_lengths:
        num_masked_span = compute_num_masked_span(input_length)
        spec_aug_mask_idx = np.random.choice(np.arange(input_length - (mask_length - 1)), num_masked_span, replace=False)
        dummy_mask_idx = sequence_length - 1 if len(spec_aug_mask_idx) == 0 else spec_aug_mask_idx[0]
        spec_aug_mask_idx = np.concatenate(
            [spec_aug_mask_idx, np.ones(max_num_masked_span - num_masked_span, dtype=np.int32) * dummy_mask_idx])
        spec_aug_mask_idxs.append(spec_aug_mask_idx)
    spec_aug_mask_idxs = np.array(spec_aug_mask_idxs)
    spec_aug_mask_idxs = np.broadcast_to(spec_aug_mask_idxs[:, :, None], (batch_size, max_num_masked_span, mask_length))
    spec_aug_mask_idxs = spec_aug_mask_idxs.reshape(batch_size, max_num_masked_span * mask_length)
    offsets = np.arange(mask_length)[None, None, :]
    offsets = np.broadcast_to(offsets, (batch_size, max_num_masked_span, mask_length)).reshape(
        batch_size, max_num_masked_span * mask_length)
    spec_aug_mask_idxs = spec_aug_mask_idxs + offsets
    if spec_aug_mask_idxs.max() > sequence_length - 1:
        spec_aug_mask_idxs[spec_aug_mask_idxs > sequence_length - 1] = sequence_length - 1
    np.put_along_axis(spec_aug_mask, spec_aug_mask_idxs, 1, -1)
    return spec_aug_mask


def expected_mask_share(sequence_length, num_spans, mask_length):
    """P(frame t masked) when ``num_spans`` distinct starts are drawn from ``L - m + 1``: 1 - C(N - c_t, k) / C(N, k)."""
    n_starts = sequence_length - (mask_length - 1)
    total = 0.0
    for t in range(sequence_length):
        covering = min(t, n_starts - 1) - max(0, t - mask_length + 1) + 1
        total += 1.0 - math.comb(n_starts - covering, num_spans) / math.comb(n_starts, num_spans)
    return total / sequence_length


# ----------------------------------------------------------------------------------- model (HF layout)
class HubertConfig:
    conv_dim = (32, 32, 32)
    conv_kernel = (10, 3, 3)
    conv_stride = (5, 2, 2)
    conv_bias = False
    hidden_size = 48
    num_hidden_layers = 2
    num_attention_heads = 4
    intermediate_size = 96
    num_conv_pos_embeddings = 8
    num_conv_pos_embedding_groups = 4
    layer_norm_eps = 1e-5
    feat_proj_dropout = 0.0
    hidden_dropout = 0.0
    attention_dropout = 0.0
    mask_time_prob = 0.65
    mask_time_length = 5
    final_dim = 24
    logit_temp = 0.1


class HubertGroupNormConvLayer(nn.Module):
    def __init__(self, config, layer_id=0):
        super().__init__()
        self.in_conv_dim = config.conv_dim[layer_id - 1] if layer_id > 0 else 1
        self.out_conv_dim = config.conv_dim[layer_id]
        self.conv = nn.Conv1d(self.in_conv_dim, self.out_conv_dim, kernel_size=config.conv_kernel[layer_id],
                              stride=config.conv_stride[layer_id], bias=config.conv_bias)
        self.activation = nn.GELU()
        self.layer_norm = nn.GroupNorm(num_groups=self.out_conv_dim, num_channels=self.out_conv_dim, affine=True)

    def forward(self, hidden_states):
        hidden_states = self.conv(hidden_states)
        hidden_states = self.layer_norm(hidden_states)
        return self.activation(hidden_states)


class HubertNoLayerNormConvLayer(nn.Module):
    def __init__(self, config, layer_id=0):
        super().__init__()
        self.in_conv_dim = config.conv_dim[layer_id - 1] if layer_id > 0 else 1
        self.out_conv_dim = config.conv_dim[layer_id]
        self.conv = nn.Conv1d(self.in_conv_dim, self.out_conv_dim, kernel_size=config.conv_kernel[layer_id],
                              stride=config.conv_stride[layer_id], bias=config.conv_bias)
        self.activation = nn.GELU()

    def forward(self, hidden_states):
        return self.activation(self.conv(hidden_states))


class HubertFeatureEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        conv_layers = [HubertGroupNormConvLayer(config, layer_id=0)] + [
            HubertNoLayerNormConvLayer(config, layer_id=i + 1) for i in range(len(config.conv_dim) - 1)]
        self.conv_layers = nn.ModuleList(conv_layers)

    def forward(self, input_values):
        hidden_states = input_values[:, None]
        for conv_layer in self.conv_layers:
            hidden_states = conv_layer(hidden_states)
        return hidden_states


class HubertFeatureProjection(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_dim[-1], config.hidden_size)
        self.dropout = nn.Dropout(config.feat_proj_dropout)

    def forward(self, hidden_states):
        hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.projection(hidden_states)
        return self.dropout(hidden_states)


class HubertSamePadLayer(nn.Module):
    def __init__(self, num_conv_pos_embeddings):
        super().__init__()
        self.num_pad_remove = 1 if num_conv_pos_embeddings % 2 == 0 else 0

    def forward(self, hidden_states):
        if self.num_pad_remove > 0:
            hidden_states = hidden_states[:, :, : -self.num_pad_remove]
        return hidden_states


class HubertPositionalConvEmbedding(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel_size=config.num_conv_pos_embeddings,
                              padding=config.num_conv_pos_embeddings // 2, groups=config.num_conv_pos_embedding_groups)
        std = math.sqrt(4 / (config.num_conv_pos_embeddings * config.hidden_size))
        nn.init.normal_(self.conv.weight, mean=0, std=std)
        nn.init.constant_(self.conv.bias, 0)
        self.conv = nn.utils.weight_norm(self.conv, name="weight", dim=2)
        self.padding = HubertSamePadLayer(config.num_conv_pos_embeddings)
        self.activation = nn.GELU()

    def forward(self, hidden_states):
        hidden_states = hidden_states.transpose(1, 2)
        hidden_states = self.conv(hidden_states)
        hidden_states = self.padding(hidden_states)
        hidden_states = self.activation(hidden_states)
        return hidden_states.transpose(1, 2)


class HubertAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim ** -0.5
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def _shape(self, tensor, seq_len, bsz):
        return tensor.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, hidden_states):
        bsz, tgt_len, _ = hidden_states.size()
        query_states = self.q_proj(hidden_states) * self.scaling
        key_states = self._shape(self.k_proj(hidden_states), -1, bsz)
        value_states = self._shape(self.v_proj(hidden_states), -1, bsz)
        proj_shape = (bsz * self.num_heads, -1, self.head_dim)
        query_states = self._shape(query_states, tgt_len, bsz).view(*proj_shape)
        key_states = key_states.reshape(*proj_shape)
        value_states = value_states.reshape(*proj_shape)
        attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))
        attn_weights = nn.functional.softmax(attn_weights, dim=-1)
        attn_probs = nn.functional.dropout(attn_weights, p=self.dropout, training=self.training)
        attn_output = torch.bmm(attn_probs, value_states)
        attn_output = attn_output.view(bsz, self.num_heads, tgt_len, self.head_dim).transpose(1, 2)
        attn_output = attn_output.reshape(bsz, tgt_len, self.embed_dim)
        return self.out_proj(attn_output)


class HubertFeedForward(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = nn.GELU()
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states):
        hidden_states = self.intermediate_act_fn(self.intermediate_dense(hidden_states))
        return self.output_dropout(self.output_dense(hidden_states))


class HubertEncoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = HubertAttention(config.hidden_size, config.num_attention_heads, config.attention_dropout)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = HubertFeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states):
        attn_residual = hidden_states
        hidden_states = self.dropout(self.attention(hidden_states))
        hidden_states = self.layer_norm(attn_residual + hidden_states)
        hidden_states = hidden_states + self.feed_forward(hidden_states)
        return self.final_layer_norm(hidden_states)


class HubertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.pos_conv_embed = HubertPositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList([HubertEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states):
        position_embeddings = self.pos_conv_embed(hidden_states)
        hidden_states = hidden_states + position_embeddings
        hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states


class HubertForPretraining(nn.Module):
    def __init__(self, config, num_classes):
        super().__init__()
        self.config = config
        self.feature_extractor = HubertFeatureEncoder(config)
        self.feature_projection = HubertFeatureProjection(config)
        self.masked_spec_embed = nn.Parameter(torch.FloatTensor(config.hidden_size).uniform_())
        self.encoder = HubertEncoder(config)
        self.final_proj = nn.Linear(config.hidden_size, config.final_dim)
        self.label_embs_concat = nn.Parameter(torch.FloatTensor(num_classes, config.final_dim))
        nn.init.uniform_(self.label_embs_concat)

    def _mask_hidden_states(self, hidden_states, mask_time_indices=None):
        batch_size, sequence_length, hidden_size = hidden_states.size()
        if mask_time_indices is None and self.training:
            mask_time_indices = _compute_mask_indices((batch_size, sequence_length), self.config.mask_time_prob,
                                                      self.config.mask_time_length, min_masks=2)
            mask_time_indices = torch.tensor(mask_time_indices, device=hidden_states.device, dtype=torch.bool)
        if mask_time_indices is not None:
            hidden_states[mask_time_indices] = self.masked_spec_embed.to(hidden_states.dtype)
        return hidden_states, mask_time_indices

    def forward(self, input_values, mask_time_indices=None, keep=None):
        extract_features = self.feature_extractor(input_values)
        extract_features = extract_features.transpose(1, 2)
        projected = self.feature_projection(extract_features)
        hidden_states = projected.clone()
        hidden_states, mask_time_indices = self._mask_hidden_states(hidden_states, mask_time_indices)
        hidden_states = self.encoder(hidden_states)
        x = self.final_proj(hidden_states)
        logits = F.cosine_similarity(x.unsqueeze(2), self.label_embs_concat, dim=-1) / self.config.logit_temp
        if keep is not None:
            keep.update(projected=projected, logits=logits)
        return logits, mask_time_indices


def masked_loss(logits, targets, mask):
    logit_m = logits[mask]
    target_m = targets[mask]
    loss = F.cross_entropy(logit_m, target_m)
    correct = (logit_m.argmax(-1) == target_m).sum().item()
    return loss, correct, target_m.numel()


# ----------------------------------------------------------------------------------- data and labels
NUM_CLASSES = 8
train_wavs = make_utterances(48)
test_wavs = make_utterances(16)
train_mfcc = mfcc_like(train_wavs)
test_mfcc = mfcc_like(test_wavs)
mu, sigma = train_mfcc.reshape(-1, train_mfcc.size(-1)).mean(0), train_mfcc.reshape(-1, train_mfcc.size(-1)).std(0)
train_mfcc, test_mfcc = (train_mfcc - mu) / sigma, (test_mfcc - mu) / sigma
flat = train_mfcc.reshape(-1, train_mfcc.size(-1))
centroids, inertia = learn_kmeans(flat, NUM_CLASSES)
apply_kmeans = ApplyKmeans(centroids)
dumped = apply_kmeans(flat)
cdist_labels = torch.cdist(flat, centroids).argmin(-1)
km_agree = float((torch.from_numpy(dumped) == cdist_labels).float().mean())
train_targets = cdist_labels.view(train_mfcc.shape[:2])
test_targets = torch.from_numpy(apply_kmeans(test_mfcc.reshape(-1, test_mfcc.size(-1)))).view(test_mfcc.shape[:2])
cluster_sizes = torch.bincount(train_targets.flatten(), minlength=NUM_CLASSES)
print(f"mfcc {tuple(train_mfcc.shape)} kmeans {NUM_CLASSES} clusters inertia {inertia.item():.4f} "
      f"smallest cluster {cluster_sizes.min().item() / train_targets.numel():.4f} ApplyKmeans==cdist {km_agree:.4f}")

config = HubertConfig()
model = HubertForPretraining(config, NUM_CLASSES)
with torch.no_grad():
    frames = model.feature_extractor(train_wavs[:2])
print(f"audio {tuple(train_wavs.shape)} -> features {tuple(frames.shape)}, labels {tuple(train_targets.shape)}; "
      f"pos_conv weight_g {tuple(model.encoder.pos_conv_embed.conv.weight_g.shape)} "
      f"weight_v {tuple(model.encoder.pos_conv_embed.conv.weight_v.shape)}")
T = frames.size(-1)

# ----------------------------------------------------------------------------------- the span mask's share
np.random.seed(seed + 1)
n_spans_low = int(config.mask_time_prob * T / config.mask_time_length)
draws = [_compute_mask_indices((64, T), config.mask_time_prob, config.mask_time_length, min_masks=2) for _ in range(8)]
p_high = config.mask_time_prob * T / config.mask_time_length - n_spans_low
expected = ((1 - p_high) * expected_mask_share(T, n_spans_low, config.mask_time_length)
            + p_high * expected_mask_share(T, n_spans_low + 1, config.mask_time_length))
observed = float(np.mean([d.mean() for d in draws]))
print(f"mask: {T} frames, spans of {config.mask_time_length}, {n_spans_low} or {n_spans_low + 1} starts; "
      f"masked share {observed:.4f} expected {expected:.4f} (nominal prob {config.mask_time_prob})")

# ----------------------------------------------------------------------------------- where the gradient goes
np.random.seed(seed + 2)
model.train()
keep = {}
probe_logits, probe_mask = model(train_wavs[:4], keep=keep)
keep["projected"].retain_grad()
probe_logits.retain_grad()
loss, _, _ = masked_loss(probe_logits, train_targets[:4], probe_mask)
loss.backward()
logit_grad_rows = probe_logits.grad.abs().sum(-1) > 0
proj_grad_rows = keep["projected"].grad.abs().sum(-1) > 0
logit_grad_on_masked_only = bool(torch.equal(logit_grad_rows, probe_mask))
proj_grad_off_masked = bool((keep["projected"].grad[probe_mask] == 0).all())
print(f"probe: masked frames {probe_mask.sum().item()} of {probe_mask.numel()}; logits grad only on masked "
      f"{logit_grad_on_masked_only}; projected-feature grad zero on masked rows {proj_grad_off_masked}, "
      f"nonzero rows {proj_grad_rows.sum().item()}")

# masked_spec_embed's gradient is the encoder input's gradient summed over the masked rows
model.zero_grad()
features = model.feature_projection(model.feature_extractor(train_wavs[:4]).transpose(1, 2))
filled = features.clone()
filled[probe_mask] = model.masked_spec_embed
filled.retain_grad()
x = model.final_proj(model.encoder(filled))
logits = F.cosine_similarity(x.unsqueeze(2), model.label_embs_concat, dim=-1) / config.logit_temp
loss2, _, _ = masked_loss(logits, train_targets[:4], probe_mask)
loss2.backward()
emb_grad_err = (model.masked_spec_embed.grad - filled.grad[probe_mask].sum(0)).abs().max().item()
print(f"same loss by hand {abs(loss2.item() - loss.item()) < 1e-5}; mask_emb grad vs masked-row sum max err {emb_grad_err:.2e}")
model.zero_grad()

# ----------------------------------------------------------------------------------- training
np.random.seed(seed + 3)
eval_mask = torch.tensor(_compute_mask_indices((len(test_wavs), T), config.mask_time_prob, config.mask_time_length,
                                               min_masks=2), dtype=torch.bool)


@torch.no_grad()
def evaluate():
    model.eval()
    logits, _ = model(test_wavs, mask_time_indices=eval_mask)
    loss, correct, count = masked_loss(logits, test_targets, eval_mask)
    unmasked_acc = (logits[~eval_mask].argmax(-1) == test_targets[~eval_mask]).float().mean().item()
    return loss.item(), correct / count, unmasked_acc


loss0, acc0, _ = evaluate()
print(f"before training: masked loss {loss0:.4f} masked acc {acc0:.4f}")
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
STEPS, BATCH = 60, 8
for step in range(STEPS):
    model.train()
    index = torch.randint(0, len(train_wavs), (BATCH,))
    logits, mask = model(train_wavs[index])
    loss, correct, count = masked_loss(logits, train_targets[index], mask)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    optimizer.step()
    if step % 15 == 0 or step == STEPS - 1:
        print(f"step {step} loss {loss.item():.4f} masked acc {correct / count:.4f} grad {grad_norm.item():.3f}")

loss1, acc1, unmasked_acc = evaluate()
print(f"after training: masked loss {loss1:.4f} masked acc {acc1:.4f} (unmasked acc {unmasked_acc:.4f}, "
      f"chance {1 / NUM_CLASSES:.4f})")
checks = int(logit_grad_on_masked_only) + int(proj_grad_off_masked) + int(emb_grad_err < 1e-5) + int(km_agree > 0.99)
print(f"FINAL masked_acc={acc1:.4f} acc_gain={acc1 - acc0:.4f} masked_loss={loss1:.4f} mask_share={observed:.4f} "
      f"mask_share_err={abs(observed - expected):.4f} inertia={inertia.item():.4f} checks={checks}")
