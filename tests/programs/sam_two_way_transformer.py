"""Segment Anything (facebookresearch/segment-anything, ``modeling/*.py``) at toy size, on synthetic shapes.

Images are 30x30 with two or three coloured squares and discs on a noisy background; a prompt is one
foreground point inside a shape (sometimes with a background point beside it) and its target is that
shape's mask. The model keeps SAM's pieces and names: ``Sam.preprocess`` (``pixel_mean``/``pixel_std``
buffers, ``F.pad`` to ``img_size``), a tiny convolutional image encoder with SAM's neck (1x1 and 3x3
``nn.Conv2d(bias=False)`` each followed by ``LayerNorm2d``), the ``PromptEncoder`` with
``PositionEmbeddingRandom`` (the ``positional_encoding_gaussian_matrix`` buffer, ``coords = 2 * coords -
1``, ``coords @ matrix``, ``2 * np.pi * coords``, ``torch.cat([torch.sin(coords), torch.cos(coords)],
dim=-1)``, the dense grid by ``grid.cumsum(dim=0) - 0.5``), ``_embed_points`` (``points + 0.5``, the padding
point with label -1, ``point_embedding[labels == -1] = 0.0`` and ``+= self.not_a_point_embed.weight``),
``no_mask_embed`` expanded over the embedding grid, the ``TwoWayTransformer`` (``TwoWayAttentionBlock`` with
``skip_first_layer_pe``, ``Attention(downsample_rate=2)`` with ``_separate_heads``/``_recombine_heads``,
``MLPBlock``), and the ``MaskDecoder`` (iou and mask tokens, ``torch.repeat_interleave(image_embeddings,
tokens.shape[0], dim=0)``, ``src.transpose(1, 2).view(b, c, h, w)``, ``nn.ConvTranspose2d`` +
``LayerNorm2d`` upscaling, hypernetwork ``MLP``s stacked by ``torch.stack(hyper_in_list, dim=1)``, ``(hyper_in
@ upscaled_embedding.view(b, c, h * w)).view(b, -1, h, w)``, the IoU head, ``multimask_output`` slices), and
``postprocess_masks`` by two ``F.interpolate(..., mode="bilinear", align_corners=False)`` around the crop.

Training follows the SAM paper's recipe at toy scale: focal + dice loss (the focal term is a per-pixel
mean here, weighted 2:1) on the best of the three multimask outputs for half the prompts, the single mask
otherwise, and an MSE loss teaching the IoU head the masks' real IoU; AdamW with a linear warm-up and
``clip_grad_norm_``.

Checked: the mask IoU on held-out prompts before and after training; the dense positional encoding equals
``forward_with_coords`` at the pixel centres; ``Attention`` equals ``F.scaled_dot_product_attention`` on the
projected heads; the IoU head's predictions correlate with the real IoU.
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

ORIG = 30
IMG_SIZE = 32
PATCH = 4
EMBED_DIM = 32


def make_sample():
    yy, xx = np.mgrid[0:ORIG, 0:ORIG]
    image = 0.2 * rng.randn(3, ORIG, ORIG).astype(np.float32) + 0.5
    masks = []
    for _ in range(rng.randint(2, 4)):
        r = rng.randint(4, 7)
        cy, cx = rng.randint(r, ORIG - r, size=2)
        if rng.rand() < 0.5:
            region = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
        else:
            region = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        colour = rng.uniform(0, 1, size=3)
        image[:, region] = colour[:, None] + 0.1 * rng.randn(3, region.sum())
        for m in masks:
            m &= ~region
        masks.append(region.copy())
    masks = [m for m in masks if m.sum() >= 6]
    points, labels, targets = [], [], []
    for m in masks:
        ys, xs = np.nonzero(m)
        k = rng.randint(len(ys))
        pts = [[xs[k], ys[k]]]
        lbl = [1]
        if rng.rand() < 0.5:  # a background click as well
            bys, bxs = np.nonzero(~m)
            j = rng.randint(len(bys))
            pts.append([bxs[j], bys[j]])
            lbl.append(0)
        else:
            pts.append([0, 0])
            lbl.append(-1)  # SAM pads point batches with label -1
        points.append(pts)
        labels.append(lbl)
        targets.append(m)
    return (
        (image * 255).clip(0, 255).astype(np.float32),
        np.array(points, dtype=np.float32),
        np.array(labels, dtype=np.int64),
        np.stack(targets).astype(np.float32),
    )


train_set = [make_sample() for _ in range(48)]
test_set = [make_sample() for _ in range(16)]


class LayerNorm2d(nn.Module):
    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        x = self.weight[:, None, None] * x + self.bias[:, None, None]
        return x


class MLPBlock(nn.Module):
    def __init__(self, embedding_dim, mlp_dim, act=nn.GELU):
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x):
        return self.lin2(self.act(self.lin1(x)))


class ImageEncoder(nn.Module):
    """A small conv stand-in for SAM's ViT, ending in SAM's neck."""

    def __init__(self, img_size=IMG_SIZE, patch_size=PATCH, embed_dim=48, out_chans=EMBED_DIM):
        super().__init__()
        self.img_size = img_size
        self.patch_embed = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(embed_dim, embed_dim, 3, padding=1), LayerNorm2d(embed_dim), nn.GELU())
            for _ in range(2)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x):
        x = self.patch_embed(x)
        for blk in self.blocks:
            x = x + blk(x)
        return self.neck(x)


class PositionEmbeddingRandom(nn.Module):
    def __init__(self, num_pos_feats: int = 64, scale=None) -> None:
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.register_buffer(
            "positional_encoding_gaussian_matrix",
            scale * torch.randn((2, num_pos_feats)),
        )

    def _pe_encoding(self, coords):
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * np.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size):
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        grid = torch.ones((h, w), device=device, dtype=torch.float32)
        y_embed = grid.cumsum(dim=0) - 0.5
        x_embed = grid.cumsum(dim=1) - 0.5
        y_embed = y_embed / h
        x_embed = x_embed / w
        pe = self._pe_encoding(torch.stack([x_embed, y_embed], dim=-1))
        return pe.permute(2, 0, 1)  # C x H x W

    def forward_with_coords(self, coords_input, image_size):
        coords = coords_input.clone()
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self._pe_encoding(coords.to(torch.float))  # B x N x C


class PromptEncoder(nn.Module):
    def __init__(self, embed_dim, image_embedding_size, input_image_size):
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.num_point_embeddings = 4  # pos/neg point + 2 box corners
        point_embeddings = [nn.Embedding(1, embed_dim) for i in range(self.num_point_embeddings)]
        self.point_embeddings = nn.ModuleList(point_embeddings)
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self):
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, points, labels, pad):
        points = points + 0.5  # Shift to center of pixel
        if pad:
            padding_point = torch.zeros((points.shape[0], 1, 2), device=points.device)
            padding_label = -torch.ones((labels.shape[0], 1), device=labels.device)
            points = torch.cat([points, padding_point], dim=1)
            labels = torch.cat([labels, padding_label], dim=1)
        point_embedding = self.pe_layer.forward_with_coords(points, self.input_image_size)
        point_embedding[labels == -1] = 0.0
        point_embedding[labels == -1] += self.not_a_point_embed.weight
        point_embedding[labels == 0] += self.point_embeddings[0].weight
        point_embedding[labels == 1] += self.point_embeddings[1].weight
        return point_embedding

    def _get_device(self):
        return self.point_embeddings[0].weight.device

    def forward(self, points):
        coords, labels = points
        bs = coords.shape[0]
        sparse_embeddings = torch.empty((bs, 0, self.embed_dim), device=self._get_device())
        point_embeddings = self._embed_points(coords, labels, pad=True)
        sparse_embeddings = torch.cat([sparse_embeddings, point_embeddings], dim=1)
        dense_embeddings = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
            bs, -1, self.image_embedding_size[0], self.image_embedding_size[1]
        )
        return sparse_embeddings, dense_embeddings


class Attention(nn.Module):
    """
    An attention layer that allows for downscaling the size of the embedding
    after projection to queries, keys, and values.
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        assert self.internal_dim % num_heads == 0, "num_heads must divide embedding_dim."

        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x, num_heads: int):
        b, n, c = x.shape
        x = x.reshape(b, n, num_heads, c // num_heads)
        return x.transpose(1, 2)  # B x N_heads x N_tokens x C_per_head

    def _recombine_heads(self, x):
        b, n_heads, n_tokens, c_per_head = x.shape
        x = x.transpose(1, 2)
        return x.reshape(b, n_tokens, n_heads * c_per_head)  # B x N_tokens x C

    def forward(self, q, k, v):
        # Input projections
        q = self.q_proj(q)
        k = self.k_proj(k)
        v = self.v_proj(v)

        # Separate into heads
        q = self._separate_heads(q, self.num_heads)
        k = self._separate_heads(k, self.num_heads)
        v = self._separate_heads(v, self.num_heads)

        # Attention
        _, _, _, c_per_head = q.shape
        attn = q @ k.permute(0, 1, 3, 2)  # B x N_heads x N_tokens x N_tokens
        attn = attn / math.sqrt(c_per_head)
        attn = torch.softmax(attn, dim=-1)

        # Get output
        out = attn @ v
        out = self._recombine_heads(out)
        out = self.out_proj(out)
        return out


class TwoWayAttentionBlock(nn.Module):
    def __init__(self, embedding_dim, num_heads, mlp_dim=2048, activation=nn.ReLU,
                 attention_downsample_rate=2, skip_first_layer_pe=False):
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe):
        # Self attention block
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            attn_out = self.self_attn(q=q, k=q, v=queries)
            queries = queries + attn_out
        queries = self.norm1(queries)

        # Cross attention block, tokens attending to image embedding
        q = queries + query_pe
        k = keys + key_pe
        attn_out = self.cross_attn_token_to_image(q=q, k=k, v=keys)
        queries = queries + attn_out
        queries = self.norm2(queries)

        # MLP block
        mlp_out = self.mlp(queries)
        queries = queries + mlp_out
        queries = self.norm3(queries)

        # Cross attention block, image embedding attending to tokens
        q = queries + query_pe
        k = keys + key_pe
        attn_out = self.cross_attn_image_to_token(q=k, k=q, v=queries)
        keys = keys + attn_out
        keys = self.norm4(keys)

        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth, embedding_dim, num_heads, mlp_dim, activation=nn.ReLU,
                 attention_downsample_rate=2):
        super().__init__()
        self.depth = depth
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.layers = nn.ModuleList()
        for i in range(depth):
            self.layers.append(
                TwoWayAttentionBlock(
                    embedding_dim=embedding_dim,
                    num_heads=num_heads,
                    mlp_dim=mlp_dim,
                    activation=activation,
                    attention_downsample_rate=attention_downsample_rate,
                    skip_first_layer_pe=(i == 0),
                )
            )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding, image_pe, point_embedding):
        # BxCxHxW -> BxHWxC == B x N_image_tokens x C
        bs, c, h, w = image_embedding.shape
        image_embedding = image_embedding.flatten(2).permute(0, 2, 1)
        image_pe = image_pe.flatten(2).permute(0, 2, 1)

        queries = point_embedding
        keys = image_embedding
        for layer in self.layers:
            queries, keys = layer(queries=queries, keys=keys, query_pe=point_embedding, key_pe=image_pe)

        q = queries + point_embedding
        k = keys + image_pe
        attn_out = self.final_attn_token_to_image(q=q, k=k, v=keys)
        queries = queries + attn_out
        queries = self.norm_final_attn(queries)
        return queries, keys


class MLP(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, num_layers, sigmoid_output=False):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))
        self.sigmoid_output = sigmoid_output

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        if self.sigmoid_output:
            x = F.sigmoid(x)
        return x


class MaskDecoder(nn.Module):
    def __init__(self, *, transformer_dim, transformer, num_multimask_outputs=3, activation=nn.GELU,
                 iou_head_depth=3, iou_head_hidden_dim=256):
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            [MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for i in range(self.num_mask_tokens)]
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                multimask_output):
        masks, iou_pred = self.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse_prompt_embeddings,
            dense_prompt_embeddings=dense_prompt_embeddings,
        )
        if multimask_output:
            mask_slice = slice(1, None)
        else:
            mask_slice = slice(0, 1)
        masks = masks[:, mask_slice, :, :]
        iou_pred = iou_pred[:, mask_slice]
        return masks, iou_pred

    def predict_masks(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings):
        # Concatenate output tokens
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(sparse_prompt_embeddings.size(0), -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        # Expand per-image data in batch direction to be per-mask
        src = torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0)
        src = src + dense_prompt_embeddings
        pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
        b, c, h, w = src.shape

        # Run the transformer
        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : (1 + self.num_mask_tokens), :]

        # Upscale mask embeddings and predict masks using the mask tokens
        src = src.transpose(1, 2).view(b, c, h, w)
        upscaled_embedding = self.output_upscaling(src)
        hyper_in_list = []
        for i in range(self.num_mask_tokens):
            hyper_in_list.append(self.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :]))
        hyper_in = torch.stack(hyper_in_list, dim=1)
        b, c, h, w = upscaled_embedding.shape
        masks = (hyper_in @ upscaled_embedding.view(b, c, h * w)).view(b, -1, h, w)

        # Generate mask quality predictions
        iou_pred = self.iou_prediction_head(iou_token_out)
        return masks, iou_pred


class Sam(nn.Module):
    mask_threshold: float = 0.0
    image_format: str = "RGB"

    def __init__(self, image_encoder, prompt_encoder, mask_decoder,
                 pixel_mean=(123.675, 116.28, 103.53), pixel_std=(58.395, 57.12, 57.375)):
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.register_buffer("pixel_mean", torch.Tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.Tensor(pixel_std).view(-1, 1, 1), False)

    def preprocess(self, x):
        x = (x - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        padh = self.image_encoder.img_size - h
        padw = self.image_encoder.img_size - w
        x = F.pad(x, (0, padw, 0, padh))
        return x

    def postprocess_masks(self, masks, input_size, original_size):
        masks = F.interpolate(
            masks,
            (self.image_encoder.img_size, self.image_encoder.img_size),
            mode="bilinear",
            align_corners=False,
        )
        masks = masks[..., : input_size[0], : input_size[1]]
        masks = F.interpolate(masks, original_size, mode="bilinear", align_corners=False)
        return masks

    def forward(self, image, point_coords, point_labels, multimask_output):
        image_embeddings = self.image_encoder(self.preprocess(image).unsqueeze(0))
        sparse_embeddings, dense_embeddings = self.prompt_encoder(points=(point_coords, point_labels))
        low_res_masks, iou_predictions = self.mask_decoder(
            image_embeddings=image_embeddings,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_embeddings,
            dense_prompt_embeddings=dense_embeddings,
            multimask_output=multimask_output,
        )
        masks = self.postprocess_masks(low_res_masks, image.shape[-2:], image.shape[-2:])
        return masks, iou_predictions, low_res_masks


emb = IMG_SIZE // PATCH
sam = Sam(
    image_encoder=ImageEncoder(),
    prompt_encoder=PromptEncoder(EMBED_DIM, (emb, emb), (IMG_SIZE, IMG_SIZE)),
    mask_decoder=MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=EMBED_DIM, mlp_dim=64, num_heads=2),
        transformer_dim=EMBED_DIM,
        iou_head_depth=3,
        iou_head_hidden_dim=32,
    ),
)
print(f"parameters: {sum(p.numel() for p in sam.parameters())}")

# the dense grid encoding is forward_with_coords at the pixel centres of the embedding grid
with torch.no_grad():
    pe = sam.prompt_encoder.get_dense_pe()[0]
    ys, xs = torch.meshgrid(torch.arange(emb), torch.arange(emb), indexing="ij")
    centres = torch.stack([xs, ys], dim=-1).reshape(1, -1, 2).float() + 0.5
    pe_coords = sam.prompt_encoder.pe_layer.forward_with_coords(centres, (emb, emb))
    pe_err = (pe.flatten(1).t() - pe_coords[0]).abs().max().item()
print(f"dense pe vs coords: {pe_err:.2e}")

# SAM's Attention against scaled_dot_product_attention on the same projections
attn_layer = sam.mask_decoder.transformer.layers[0].cross_attn_token_to_image
with torch.no_grad():
    qx, kx = torch.randn(3, 7, EMBED_DIM), torch.randn(3, emb * emb, EMBED_DIM)
    ours = attn_layer(qx, kx, kx)
    heads = [attn_layer._separate_heads(p(x), attn_layer.num_heads)
             for p, x in ((attn_layer.q_proj, qx), (attn_layer.k_proj, kx), (attn_layer.v_proj, kx))]
    ref = attn_layer.out_proj(attn_layer._recombine_heads(F.scaled_dot_product_attention(*heads)))
    attn_err = (ours - ref).abs().max().item()
print(f"attention vs sdpa: {attn_err:.2e} internal_dim={attn_layer.internal_dim}")


def sigmoid_focal_loss(inputs, targets, num_masks, alpha: float = 0.25, gamma: float = 2):
    prob = inputs.sigmoid()
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss.flatten(1).mean(1).sum() / num_masks


def dice_loss(inputs, targets, num_masks):
    inputs = inputs.sigmoid()
    inputs = inputs.flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * (inputs * targets).sum(1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    loss = 1 - (numerator + 1) / (denominator + 1)
    return loss.sum() / num_masks


def mask_iou(pred, target):
    inter = (pred & target).flatten(1).sum(1).float()
    union = (pred | target).flatten(1).sum(1).float()
    return inter / union.clamp(min=1)


def as_tensors(sample):
    image, points, labels, targets = sample
    return (torch.from_numpy(image), torch.from_numpy(points), torch.from_numpy(labels),
            torch.from_numpy(targets))


@torch.no_grad()
def evaluate():
    sam.eval()
    ious, preds, reals = [], [], []
    for sample in test_set:
        image, points, labels, targets = as_tensors(sample)
        masks, iou_predictions, _ = sam(image, points, labels, multimask_output=False)
        iou = mask_iou(masks[:, 0] > sam.mask_threshold, targets > 0.5)
        ious.append(iou)
        preds.append(iou_predictions[:, 0])
        reals.append(iou)
    sam.train()
    ious, preds, reals = torch.cat(ious), torch.cat(preds), torch.cat(reals)
    corr = torch.corrcoef(torch.stack([preds, reals]))[0, 1].item()
    return ious.mean().item(), corr


miou_start, _ = evaluate()
print(f"mIoU before training: {miou_start:.4f}")

optimizer = torch.optim.AdamW(sam.parameters(), lr=3e-3, weight_decay=0.01)
STEPS, WARMUP = 160, 10
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / WARMUP))
for step in range(STEPS):
    idx = rng.randint(len(train_set), size=2)
    loss = 0.0
    for i in idx:
        image, points, labels, targets = as_tensors(train_set[i])
        multimask = bool(rng.rand() < 0.5)
        masks, iou_predictions, _ = sam(image, points, labels, multimask_output=multimask)
        tgt = targets[:, None].expand_as(masks)
        per_mask = F.binary_cross_entropy_with_logits(masks, tgt, reduction="none").mean((2, 3))
        if multimask:  # back-propagate only the best of the three (lowest loss) masks
            best = per_mask.argmin(1)
            rows = torch.arange(masks.shape[0])
            masks, iou_predictions = masks[rows, best][:, None], iou_predictions[rows, best][:, None]
        num_masks = masks.shape[0]
        with torch.no_grad():
            real_iou = mask_iou(masks[:, 0] > 0, targets > 0.5)
        loss = loss + (2 * sigmoid_focal_loss(masks[:, 0], targets, num_masks)
                       + dice_loss(masks[:, 0], targets, num_masks)
                       + F.mse_loss(iou_predictions[:, 0], real_iou))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    if (step + 1) % 40 == 0:
        miou, corr = evaluate()
        print(f"step {step + 1}: loss {loss.item():.4f} test mIoU {miou:.4f}")

miou, corr = evaluate()
print(f"mIoU after training: {miou:.4f} iou-head correlation {corr:.4f}")
print(f"FINAL miou={miou:.4f} miou_gain={miou - miou_start:.4f} iou_corr={corr:.4f} "
      f"pe_err={pe_err:.6f} attn_err={attn_err:.6f}")
