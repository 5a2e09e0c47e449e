"""Deformable DETR's multi-scale deformable attention (fundamentalvision/Deformable-DETR,
models/ops/functions/ms_deform_attn_func.py and models/ops/modules/ms_deform_attn.py) at tiny sizes,
on a synthetic keypoint-regression task.

``ms_deform_attn_core_pytorch`` is the repository's pure-PyTorch reference: the value is split per
level by ``value.split([H_ * W_ for H_, W_ in value_spatial_shapes], dim=1)`` (0-d long tensors from
iterating the ``spatial_shapes`` tensor), each level reshaped to ``(N*M, D, H, W)``, the sampling
locations mapped to a grid by ``2 * sampling_locations - 1`` and sampled by ``F.grid_sample(value_l_,
sampling_grid_l_, mode='bilinear', padding_mode='zeros', align_corners=False)``; the samples are
``torch.stack(..., dim=-2).flatten(-2)``-ed and summed against the attention weights. ``MSDeformAttn``
keeps the module's layout: ``_reset_parameters`` with ``constant_`` and ``xavier_uniform_`` and the
sinusoidal direction init of the ``sampling_offsets`` bias (``thetas.cos()``/``thetas.sin()`` scaled by
``grid_init.abs().max(-1, keepdim=True)[0]``, ``repeat``, ``*= i + 1``, assigned as a new
``nn.Parameter`` under ``torch.no_grad()``), ``F.softmax`` over levels x points, sampling locations
``reference_points[:, :, None, :, None, :] + sampling_offsets / offset_normalizer[None, None, None, :,
None, :]`` with ``offset_normalizer = torch.stack([input_spatial_shapes[..., 1],
input_spatial_shapes[..., 0]], -1)``, and the 4-d (box) reference branch.

Around it, the deformable_detr.py / deformable_transformer.py plumbing: padded images with a
``NestedTensor``-style mask downsampled by ``F.interpolate(m[None].float(), size=...).to(torch.bool)[0]``,
``input_proj`` as ``Conv2d`` + ``GroupNorm``, ``level_embed`` by ``normal_``, ``get_valid_ratio``,
``spatial_shapes`` by ``torch.as_tensor(..., dtype=torch.long)``, ``level_start_index`` by
``torch.cat((spatial_shapes.new_zeros((1, )), spatial_shapes.prod(1).cumsum(0)[:-1]))``, the encoder's
``get_reference_points`` (``torch.meshgrid`` of ``torch.linspace(0.5, H_ - 0.5, H_)`` divided by the
valid ratios), a value ``masked_fill(input_padding_mask[..., None], float(0))``, and a one-query decoder
with iterative box refinement (``inverse_sigmoid``, ``reference_points.detach()``).

Checked: the grid_sample route equals the CUDA kernel's bilinear gather (``h_im = loc_h * H - 0.5``,
the ``h_im > -1 && w_im > -1 && h_im < H && w_im < W`` guard, four corner weights) written as an explicit
loop; ``torch.autograd.gradcheck`` of the core in float64 through value, sampling locations and
attention weights (as the repository's ops/test.py does); and the keypoint L1 of a tiny
backbone + encoder + decoder falling under AdamW with ``clip_grad_norm_``.
"""

# ruff: noqa: UP032, B028  (the repository's own spelling: str.format, warnings.warn without stacklevel)

import math
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.init import constant_, normal_, xavier_uniform_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ------------------------------------------------------- models/ops/functions/ms_deform_attn_func.py
def ms_deform_attn_core_pytorch(value, value_spatial_shapes, sampling_locations, attention_weights):
    # for debug and test only,
    # need to use cuda version instead
    N_, S_, M_, D_ = value.shape
    _, Lq_, M_, L_, P_, _ = sampling_locations.shape
    value_list = value.split([H_ * W_ for H_, W_ in value_spatial_shapes], dim=1)
    sampling_grids = 2 * sampling_locations - 1
    sampling_value_list = []
    for lid_, (H_, W_) in enumerate(value_spatial_shapes):
        # N_, H_*W_, M_, D_ -> N_, H_*W_, M_*D_ -> N_, M_*D_, H_*W_ -> N_*M_, D_, H_, W_
        value_l_ = value_list[lid_].flatten(2).transpose(1, 2).reshape(N_ * M_, D_, H_, W_)
        # N_, Lq_, M_, P_, 2 -> N_, M_, Lq_, P_, 2 -> N_*M_, Lq_, P_, 2
        sampling_grid_l_ = sampling_grids[:, :, :, lid_].transpose(1, 2).flatten(0, 1)
        # N_*M_, D_, Lq_, P_
        sampling_value_l_ = F.grid_sample(value_l_, sampling_grid_l_,
                                          mode='bilinear', padding_mode='zeros', align_corners=False)
        sampling_value_list.append(sampling_value_l_)
    # (N_, Lq_, M_, L_, P_) -> (N_, M_, Lq_, L_, P_) -> (N_, M_, 1, Lq_, L_*P_)
    attention_weights = attention_weights.transpose(1, 2).reshape(N_ * M_, 1, Lq_, L_ * P_)
    output = (torch.stack(sampling_value_list, dim=-2).flatten(-2) * attention_weights).sum(-1).view(N_, M_ * D_, Lq_)
    return output.transpose(1, 2).contiguous()


def ms_deform_attn_gather_loop(value, value_spatial_shapes, level_start_index, sampling_locations,
                               attention_weights):
    """The CUDA kernel's ms_deform_attn_im2col_bilinear, one sample at a time."""
    N_, S_, M_, D_ = value.shape
    _, Lq_, M_, L_, P_, _ = sampling_locations.shape
    output = torch.zeros(N_, Lq_, M_, D_, dtype=value.dtype)
    for b in range(N_):
        for q in range(Lq_):
            for m in range(M_):
                for lvl in range(L_):
                    H, W = (int(s) for s in value_spatial_shapes[lvl])
                    start = int(level_start_index[lvl])
                    for p in range(P_):
                        loc_w = float(sampling_locations[b, q, m, lvl, p, 0])
                        loc_h = float(sampling_locations[b, q, m, lvl, p, 1])
                        weight = attention_weights[b, q, m, lvl, p]
                        h_im = loc_h * H - 0.5
                        w_im = loc_w * W - 0.5
                        if not (h_im > -1 and w_im > -1 and h_im < H and w_im < W):
                            continue
                        h_low, w_low = math.floor(h_im), math.floor(w_im)
                        lh, lw = h_im - h_low, w_im - w_low
                        hh, hw = 1 - lh, 1 - lw
                        val = torch.zeros(D_, dtype=value.dtype)
                        for (hi, wi, c) in ((h_low, w_low, hh * hw), (h_low, w_low + 1, hh * lw),
                                            (h_low + 1, w_low, lh * hw), (h_low + 1, w_low + 1, lh * lw)):
                            if 0 <= hi < H and 0 <= wi < W:
                                val += c * value[b, start + hi * W + wi, m]
                        output[b, q, m] += weight * val
    return output.view(N_, Lq_, M_ * D_)


# ------------------------------------------------------------- models/ops/modules/ms_deform_attn.py
def _is_power_of_2(n):
    if (not isinstance(n, int)) or (n < 0):
        raise ValueError("invalid input for _is_power_of_2: {} (type: {})".format(n, type(n)))
    return (n & (n - 1) == 0) and n != 0


class MSDeformAttn(nn.Module):
    def __init__(self, d_model=256, n_levels=4, n_heads=8, n_points=4):
        """
        Multi-Scale Deformable Attention Module
        :param d_model      hidden dimension
        :param n_levels     number of feature levels
        :param n_heads      number of attention heads
        :param n_points     number of sampling points per attention head per feature level
        """
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError('d_model must be divisible by n_heads, but got {} and {}'.format(d_model, n_heads))
        _d_per_head = d_model // n_heads
        # you'd better set _d_per_head to a power of 2 which is more efficient in our CUDA implementation
        if not _is_power_of_2(_d_per_head):
            warnings.warn("You'd better set d_model in MSDeformAttn to make the dimension of each attention head a power of 2 "
                          "which is more efficient in our CUDA implementation.")

        self.im2col_step = 64

        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points

        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)

        self._reset_parameters()

    def _reset_parameters(self):
        constant_(self.sampling_offsets.weight.data, 0.)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid_init = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid_init = (grid_init / grid_init.abs().max(-1, keepdim=True)[0]).view(self.n_heads, 1, 1, 2).repeat(1, self.n_levels, self.n_points, 1)
        for i in range(self.n_points):
            grid_init[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias = nn.Parameter(grid_init.view(-1))
        constant_(self.attention_weights.weight.data, 0.)
        constant_(self.attention_weights.bias.data, 0.)
        xavier_uniform_(self.value_proj.weight.data)
        constant_(self.value_proj.bias.data, 0.)
        xavier_uniform_(self.output_proj.weight.data)
        constant_(self.output_proj.bias.data, 0.)

    def forward(self, query, reference_points, input_flatten, input_spatial_shapes, input_level_start_index, input_padding_mask=None):
        """
        :param query                       (N, Length_{query}, C)
        :param reference_points            (N, Length_{query}, n_levels, 2), range in [0, 1], top-left (0,0), bottom-right (1, 1), including padding area
                                        or (N, Length_{query}, n_levels, 4), add additional (w, h) to form reference boxes
        :param input_flatten               (N, \\sum_{l=0}^{L-1} H_l \\cdot W_l, C)
        :param input_spatial_shapes        (n_levels, 2), [(H_0, W_0), (H_1, W_1), ..., (H_{L-1}, W_{L-1})]
        :param input_level_start_index     (n_levels, ), [0, H_0*W_0, H_0*W_0+H_1*W_1, H_0*W_0+H_1*W_1+H_2*W_2, ..., H_0*W_0+H_1*W_1+...+H_{L-1}*W_{L-1}]
        :param input_padding_mask          (N, \\sum_{l=0}^{L-1} H_l \\cdot W_l), True for padding elements, False for non-padding elements

        :return output                     (N, Length_{query}, C)
        """
        N, Len_q, _ = query.shape
        N, Len_in, _ = input_flatten.shape
        assert (input_spatial_shapes[:, 0] * input_spatial_shapes[:, 1]).sum() == Len_in

        value = self.value_proj(input_flatten)
        if input_padding_mask is not None:
            value = value.masked_fill(input_padding_mask[..., None], float(0))
        value = value.view(N, Len_in, self.n_heads, self.d_model // self.n_heads)
        sampling_offsets = self.sampling_offsets(query).view(N, Len_q, self.n_heads, self.n_levels, self.n_points, 2)
        attention_weights = self.attention_weights(query).view(N, Len_q, self.n_heads, self.n_levels * self.n_points)
        attention_weights = F.softmax(attention_weights, -1).view(N, Len_q, self.n_heads, self.n_levels, self.n_points)
        # N, Len_q, n_heads, n_levels, n_points, 2
        if reference_points.shape[-1] == 2:
            offset_normalizer = torch.stack([input_spatial_shapes[..., 1], input_spatial_shapes[..., 0]], -1)
            sampling_locations = reference_points[:, :, None, :, None, :] \
                + sampling_offsets / offset_normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            sampling_locations = reference_points[:, :, None, :, None, :2] \
                + sampling_offsets / self.n_points * reference_points[:, :, None, :, None, 2:] * 0.5
        else:
            raise ValueError(
                'Last dim of reference_points must be 2 or 4, but get {} instead.'.format(reference_points.shape[-1]))
        output = ms_deform_attn_core_pytorch(value, input_spatial_shapes, sampling_locations, attention_weights)
        output = self.output_proj(output)
        return output


# ----------------------------------------------------------------- models/deformable_transformer.py
def inverse_sigmoid(x, eps=1e-5):
    x = x.clamp(min=0, max=1)
    x1 = x.clamp(min=eps)
    x2 = (1 - x).clamp(min=eps)
    return torch.log(x1 / x2)


class DeformableTransformerEncoderLayer(nn.Module):
    def __init__(self, d_model=256, d_ffn=1024, dropout=0.1, n_levels=4, n_heads=8, n_points=4):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.activation = F.relu
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    @staticmethod
    def with_pos_embed(tensor, pos):
        return tensor if pos is None else tensor + pos

    def forward_ffn(self, src):
        src2 = self.linear2(self.dropout2(self.activation(self.linear1(src))))
        src = src + self.dropout3(src2)
        src = self.norm2(src)
        return src

    def forward(self, src, pos, reference_points, spatial_shapes, level_start_index, padding_mask=None):
        src2 = self.self_attn(self.with_pos_embed(src, pos), reference_points, src, spatial_shapes, level_start_index, padding_mask)
        src = src + self.dropout1(src2)
        src = self.norm1(src)
        return self.forward_ffn(src)


def get_reference_points(spatial_shapes, valid_ratios, device):
    reference_points_list = []
    for lvl, (H_, W_) in enumerate(spatial_shapes):
        ref_y, ref_x = torch.meshgrid(torch.linspace(0.5, H_ - 0.5, H_, dtype=torch.float32, device=device),
                                      torch.linspace(0.5, W_ - 0.5, W_, dtype=torch.float32, device=device),
                                      indexing='ij')
        ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * H_)
        ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * W_)
        ref = torch.stack((ref_x, ref_y), -1)
        reference_points_list.append(ref)
    reference_points = torch.cat(reference_points_list, 1)
    reference_points = reference_points[:, :, None] * valid_ratios[:, None]
    return reference_points


def get_valid_ratio(mask):
    _, H, W = mask.shape
    valid_H = torch.sum(~mask[:, :, 0], 1)
    valid_W = torch.sum(~mask[:, 0, :], 1)
    valid_ratio_h = valid_H.float() / H
    valid_ratio_w = valid_W.float() / W
    valid_ratio = torch.stack([valid_ratio_w, valid_ratio_h], -1)
    return valid_ratio


class MLP(nn.Module):
    """ Very simple multi-layer perceptron (also called FFN)"""

    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


def position_embedding_sine(mask, num_pos_feats=8, temperature=10000):
    not_mask = ~mask
    y_embed = not_mask.cumsum(1, dtype=torch.float32)
    x_embed = not_mask.cumsum(2, dtype=torch.float32)
    eps = 1e-6
    scale = 2 * math.pi
    y_embed = (y_embed - 0.5) / (y_embed[:, -1:, :] + eps) * scale
    x_embed = (x_embed - 0.5) / (x_embed[:, :, -1:] + eps) * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / num_pos_feats)
    pos_x = x_embed[:, :, :, None] / dim_t
    pos_y = y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos = torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
    return pos


class DeformableKeypointDETR(nn.Module):
    def __init__(self, hidden_dim=16, n_levels=3, n_heads=2, n_points=2, dec_layers=2):
        super().__init__()
        self.backbone = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(12, 16, 3, stride=2, padding=1), nn.ReLU()),
        ])
        num_channels = [8, 12, 16]
        self.input_proj = nn.ModuleList([
            nn.Sequential(nn.Conv2d(in_channels, hidden_dim, kernel_size=1), nn.GroupNorm(4, hidden_dim))
            for in_channels in num_channels])
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.constant_(proj[0].bias, 0)
        self.level_embed = nn.Parameter(torch.Tensor(n_levels, hidden_dim))
        normal_(self.level_embed)
        self.encoder = DeformableTransformerEncoderLayer(hidden_dim, 2 * hidden_dim, 0.0, n_levels, n_heads, n_points)
        self.query_embed = nn.Embedding(1, hidden_dim * 2)
        self.reference_points = nn.Linear(hidden_dim, 2)
        xavier_uniform_(self.reference_points.weight.data, gain=1.0)
        constant_(self.reference_points.bias.data, 0.)
        self.cross_attn = nn.ModuleList([MSDeformAttn(hidden_dim, n_levels, n_heads, n_points) for _ in range(dec_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(hidden_dim) for _ in range(dec_layers)])
        self.point_embed = nn.ModuleList([MLP(hidden_dim, hidden_dim, 2, 3) for _ in range(dec_layers)])
        for embed in self.point_embed:
            nn.init.constant_(embed.layers[-1].weight.data, 0)
            nn.init.constant_(embed.layers[-1].bias.data, 0)

    def forward(self, images, mask):
        srcs, masks, pos = [], [], []
        x = images
        for l, stage in enumerate(self.backbone):
            x = stage(x)
            m = F.interpolate(mask[None].float(), size=x.shape[-2:]).to(torch.bool)[0]
            srcs.append(self.input_proj[l](x))
            masks.append(m)
            pos.append(position_embedding_sine(m, num_pos_feats=srcs[-1].shape[1] // 2))

        src_flatten, mask_flatten, lvl_pos_embed_flatten, spatial_shapes = [], [], [], []
        for lvl, (src, m, pos_embed) in enumerate(zip(srcs, masks, pos)):
            bs, c, h, w = src.shape
            spatial_shapes.append((h, w))
            src = src.flatten(2).transpose(1, 2)
            m = m.flatten(1)
            pos_embed = pos_embed.flatten(2).transpose(1, 2)
            lvl_pos_embed = pos_embed + self.level_embed[lvl].view(1, 1, -1)
            lvl_pos_embed_flatten.append(lvl_pos_embed)
            src_flatten.append(src)
            mask_flatten.append(m)
        src_flatten = torch.cat(src_flatten, 1)
        mask_flatten = torch.cat(mask_flatten, 1)
        lvl_pos_embed_flatten = torch.cat(lvl_pos_embed_flatten, 1)
        spatial_shapes = torch.as_tensor(spatial_shapes, dtype=torch.long, device=src_flatten.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros((1, )), spatial_shapes.prod(1).cumsum(0)[:-1]))
        valid_ratios = torch.stack([get_valid_ratio(m) for m in masks], 1)

        reference_points = get_reference_points(spatial_shapes, valid_ratios, device=src_flatten.device)
        memory = self.encoder(src_flatten, lvl_pos_embed_flatten, reference_points, spatial_shapes,
                              level_start_index, mask_flatten)

        query_embed, tgt = torch.split(self.query_embed.weight, c, dim=1)
        query_embed = query_embed.unsqueeze(0).expand(bs, -1, -1)
        tgt = tgt.unsqueeze(0).expand(bs, -1, -1)
        reference_points = self.reference_points(query_embed).sigmoid()
        outputs = []
        for lid, (attn, norm) in enumerate(zip(self.cross_attn, self.norms)):
            reference_points_input = reference_points[:, :, None] * valid_ratios[:, None]
            tgt = norm(tgt + attn(tgt + query_embed, reference_points_input, memory, spatial_shapes,
                                  level_start_index, mask_flatten))
            tmp = self.point_embed[lid](tgt)
            new_reference_points = (tmp + inverse_sigmoid(reference_points)).sigmoid()
            outputs.append(new_reference_points)
            reference_points = new_reference_points.detach()
        return torch.stack(outputs)


# --------------------------------------------------------------------------------- 1. routes agree
N, M, D, Lq, P = 2, 2, 3, 4, 3
shapes = torch.as_tensor([(5, 6), (3, 3), (2, 1)], dtype=torch.long)
level_start_index = torch.cat((shapes.new_zeros((1, )), shapes.prod(1).cumsum(0)[:-1]))
S = int(sum([(H * W).item() for H, W in shapes]))
L = shapes.shape[0]
rng = np.random.RandomState(seed)
value = torch.from_numpy(rng.rand(N, S, M, D)).float() * 0.01
sampling_locations = torch.from_numpy(rng.rand(N, Lq, M, L, P, 2) * 1.3 - 0.15).float()
attention_weights = torch.from_numpy(rng.rand(N, Lq, M, L, P)).float() + 1e-5
attention_weights /= attention_weights.sum(-1, keepdim=True).sum(-2, keepdim=True)

out_grid = ms_deform_attn_core_pytorch(value.double(), shapes, sampling_locations.double(), attention_weights.double())
out_loop = ms_deform_attn_gather_loop(value.double(), shapes, level_start_index, sampling_locations.double(),
                                      attention_weights.double())
route_err = (out_grid - out_loop).abs().max().item()
out_float = ms_deform_attn_core_pytorch(value, shapes, sampling_locations, attention_weights)
float_rel = ((out_float.double() - out_loop).abs().max() / out_loop.abs().max()).item()
outside = ((sampling_locations < 0) | (sampling_locations > 1)).any(-1).sum().item()
print(f"core output {tuple(out_grid.shape)} levels {L} points outside {outside > 0} "
      f"grid_sample vs gather loop max err {route_err:.3e} float32 rel {float_rel:.3e}")

# ------------------------------------------------------------------ 2. gradients vs finite differences
value_d = (torch.rand(1, S, 2, 2, dtype=torch.float64) * 2 - 1).requires_grad_()
locations_d = (torch.rand(1, 2, 2, L, 2, 2, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
weights_d = torch.rand(1, 2, 2, L, 2, dtype=torch.float64)
weights_d = (weights_d / weights_d.sum((-1, -2), keepdim=True)).requires_grad_()
grad_ok = torch.autograd.gradcheck(ms_deform_attn_core_pytorch, (value_d, shapes, locations_d, weights_d),
                                   eps=1e-6, atol=1e-5, rtol=1e-3)
g_loc, = torch.autograd.grad(ms_deform_attn_core_pytorch(value_d, shapes, locations_d, weights_d).pow(2).sum(),
                             locations_d)
print(f"gradcheck value/locations/weights: {grad_ok} location grad norm {g_loc.norm().item():.4f}")

# ------------------------------------------------------------------ 3. the module and its init
attn = MSDeformAttn(d_model=16, n_levels=3, n_heads=4, n_points=2)
bias = attn.sampling_offsets.bias.detach().view(4, 3, 2, 2)
print("offset bias max-norm per head and point:", bias.abs().amax(-1)[:, 0].tolist(),
      "levels alike:", torch.equal(bias[:, :1].expand_as(bias), bias))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    MSDeformAttn(d_model=12, n_levels=1, n_heads=4, n_points=1)
print("non power of 2 head dim warns:", len(caught) == 1 and "power of 2" in str(caught[0].message))
try:
    MSDeformAttn(d_model=10, n_heads=4)
except ValueError as e:
    print("ValueError:", e)
query = torch.randn(N, Lq, 16)
flat = torch.randn(N, S, 16)
ref2 = torch.rand(N, Lq, L, 2)
ref4 = torch.cat([ref2, torch.full((N, Lq, L, 2), 0.5)], -1)
out2 = attn(query, ref2, flat, shapes, level_start_index)
out4 = attn(query, ref4, flat, shapes, level_start_index)
try:
    attn(query, ref2[..., :1], flat, shapes, level_start_index)
except ValueError as e:
    print("ValueError:", e)
print(f"module out {tuple(out2.shape)} box-reference out {tuple(out4.shape)}")

# ----------------------------------------------------------------------- 4. toy keypoint regression
IMG = 16


def make_batch(n, gen_rng):
    images = torch.zeros(n, 1, IMG, IMG)
    mask = torch.zeros(n, IMG, IMG, dtype=torch.bool)
    targets = torch.zeros(n, 2)
    yy, xx = np.mgrid[0:IMG, 0:IMG]
    for i in range(n):
        w = IMG if i % 2 == 0 else 12
        h = IMG if i % 4 < 2 else 12
        cx, cy = gen_rng.uniform(0.15, 0.85) * w, gen_rng.uniform(0.15, 0.85) * h
        blob = np.exp(-((xx - cx + 0.5) ** 2 + (yy - cy + 0.5) ** 2) / (2 * 1.5 ** 2))
        img = blob + 0.1 * gen_rng.randn(IMG, IMG)
        img[h:, :] = 0
        img[:, w:] = 0
        images[i, 0] = torch.from_numpy(img).float()
        mask[i, h:, :] = True
        mask[i, :, w:] = True
        targets[i] = torch.tensor([cx / w, cy / h])
    return images, mask, targets


train_images, train_mask, train_targets = make_batch(128, rng)
val_images, val_mask, val_targets = make_batch(32, rng)
model = DeformableKeypointDETR()
n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
print("number of params:", n_parameters)
param_dicts = [
    {"params": [p for n, p in model.named_parameters() if "backbone" not in n and "sampling_offsets" not in n and "reference_points" not in n]},
    {"params": [p for n, p in model.named_parameters() if "backbone" in n], "lr": 1e-3},
    {"params": [p for n, p in model.named_parameters() if "sampling_offsets" in n or "reference_points" in n], "lr": 3e-4},
]
optimizer = torch.optim.AdamW(param_dicts, lr=3e-3, weight_decay=1e-4)
lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)


@torch.no_grad()
def evaluate():
    model.eval()
    pred = model(val_images, val_mask)[-1, :, 0]
    model.train()
    return F.l1_loss(pred, val_targets).item()


val_before = evaluate()
print(f"val L1 before {val_before:.4f}")
EPOCHS, BS = 36, 32
for epoch in range(EPOCHS):
    perm = torch.randperm(train_images.shape[0])
    total = 0.0
    for it in range(0, train_images.shape[0], BS):
        idx = perm[it:it + BS]
        outputs = model(train_images[idx], train_mask[idx])
        loss = sum(F.l1_loss(out[:, 0], train_targets[idx]) for out in outputs)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total += loss.item()
    lr_scheduler.step()
    if epoch % 12 == 11:
        print(f"epoch {epoch + 1} train loss {total / (train_images.shape[0] // BS):.4f} val L1 {evaluate():.4f}")
val_after = evaluate()
print(f"val L1 after {val_after:.4f}")
print(f"FINAL route_err={route_err:.3e} float_rel={float_rel:.3e} gradcheck={int(grad_ok)} "
      f"val_l1_before={val_before:.4f} val_l1_after={val_after:.4f} l1_ratio={val_after / val_before:.4f}")
