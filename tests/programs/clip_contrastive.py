"""CLIP (openai/CLIP clip/model.py) at tiny sizes, trained contrastively on synthetic image-caption pairs.

The model as CLIP writes it: a ``LayerNorm`` subclass computing in float32 (``super().forward(
x.type(torch.float32))`` then ``.type(orig_type)``), ``QuickGELU`` (``x * torch.sigmoid(1.702 * x)``),
``ResidualAttentionBlock`` over ``nn.MultiheadAttention`` (sequence first, ``x.permute(1, 0, 2)  #
NLD -> LND``, ``need_weights=False``, ``attn_mask=self.attn_mask``) with an ``OrderedDict`` MLP
(``c_fc``/``gelu``/``c_proj``), ``build_attention_mask`` by ``torch.empty(L, L)``, ``fill_(float(
"-inf"))``, ``triu_(1)``; a ``VisionTransformer`` with a bias-free patch ``conv1``, ``reshape`` +
``permute(0, 2, 1)``, the class token by ``self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0],
1, x.shape[-1], ...)`` and ``torch.cat``, ``ln_post(x[:, 0, :]) @ self.proj``; ``encode_text`` taking
the features at the end-of-text token by ``x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @
self.text_projection``; ``initialize_parameters`` by ``nn.init.normal_`` on ``attn.in_proj_weight``,
``attn.out_proj.weight`` and the ``nn.Parameter(torch.empty(width, embed_dim))`` projection;
``logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))`` and ``.exp()``, normalised features by
``x / x.norm(dim=1, keepdim=True)`` (and ``F.normalize`` checked against it), ``logits_per_image =
logit_scale * image_features @ text_features.t()``, ``logits_per_text = logits_per_image.t()``. The
training loop: the symmetric ``F.cross_entropy(..., torch.arange(n))`` loss, open_clip's AdamW groups
(no decay for gains, biases and ``logit_scale``), the CLIP issue's ``torch.clamp_(model.logit_scale.data,
0, 4.6052)`` after each step; then zero-shot classification from prompt prototypes by ``(100.0 *
image_features @ text_features.T).softmax(dim=-1)`` and ``topk``, and image-to-text recall@k under
``torch.no_grad()``.

The data: 12 concepts (3 colours x 4 shapes) as 3x8x8 images with noise and as captions over a 12-word
vocabulary ("<sot> a photo of a red square <eot>" and shorter variants), made with NumPy.
"""

import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# --- the synthetic pairs ----------------------------------------------------------------------------
COLOURS = ["red", "green", "blue"]
SHAPES = ["square", "cross", "ring", "bar"]
WORDS = ["<pad>", "a", "photo", "of", "the"] + COLOURS + SHAPES
VOCAB = WORDS + ["<sot>", "<eot>"]  # as in CLIP, <eot> has the largest id, so text.argmax finds it
SOT, EOT = VOCAB.index("<sot>"), VOCAB.index("<eot>")
CONTEXT = 10
NUM_CLASSES = len(COLOURS) * len(SHAPES)

shape_masks = np.zeros((4, 8, 8), dtype=np.float32)
shape_masks[0, 2:6, 2:6] = 1
shape_masks[1, 3:5, :] = 1
shape_masks[1, :, 3:5] = 1
shape_masks[2, 1:7, 1:7] = 1
shape_masks[2, 2:6, 2:6] = 0
shape_masks[3, :, 1:3] = 1
colour_weights = np.eye(3, dtype=np.float32) * 1.5 + 0.25


def tokenize(texts, context_length=CONTEXT):
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        tokens = [SOT] + [VOCAB.index(word) for word in text.split()] + [EOT]
        result[i, :len(tokens)] = torch.tensor(tokens)
    return result


def make_pairs(n):
    labels = rng.integers(0, NUM_CLASSES, size=n)
    colours, shapes = labels // 4, labels % 4
    images = shape_masks[shapes][:, None] * colour_weights[colours][:, :, None, None]
    images = images + rng.normal(0.0, 0.6, size=images.shape).astype(np.float32)
    templates = ["a photo of a {} {}", "the {} {}", "{} {}", "a {} {}"]
    captions = [templates[rng.integers(0, len(templates))].format(COLOURS[c], SHAPES[s])
                for c, s in zip(colours, shapes)]
    return torch.from_numpy(images.astype(np.float32)), tokenize(captions), torch.from_numpy(labels)


# --- clip/model.py, the transformer parts ------------------------------------------------------------
class LayerNorm(nn.LayerNorm):
    """Subclass torch's LayerNorm to handle fp16."""

    def forward(self, x: torch.Tensor):
        orig_type = x.dtype
        ret = super().forward(x.type(torch.float32))
        return ret.type(orig_type)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int, attn_mask: torch.Tensor = None):
        super().__init__()

        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d_model, d_model * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(d_model * 4, d_model))
        ]))
        self.ln_2 = LayerNorm(d_model)
        self.attn_mask = attn_mask

    def attention(self, x: torch.Tensor):
        self.attn_mask = self.attn_mask.to(dtype=x.dtype, device=x.device) if self.attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=self.attn_mask)[0]

    def forward(self, x: torch.Tensor):
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, attn_mask: torch.Tensor = None):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x: torch.Tensor):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution: int, patch_size: int, width: int, layers: int, heads: int, output_dim: int):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=width, kernel_size=patch_size, stride=patch_size, bias=False)

        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)

        self.transformer = Transformer(width, layers, heads)

        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor):
        x = self.conv1(x)  # shape = [*, width, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1)  # shape = [*, width, grid ** 2]
        x = x.permute(0, 2, 1)  # shape = [*, grid ** 2, width]
        x = torch.cat([self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device), x], dim=1)  # shape = [*, grid ** 2 + 1, width]
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)

        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)  # LND -> NLD

        x = self.ln_post(x[:, 0, :])

        if self.proj is not None:
            x = x @ self.proj

        return x


class CLIP(nn.Module):
    def __init__(self, embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
                 context_length, vocab_size, transformer_width, transformer_heads, transformer_layers):
        super().__init__()

        self.context_length = context_length

        vision_heads = vision_width // 16
        self.visual = VisionTransformer(
            input_resolution=image_resolution,
            patch_size=vision_patch_size,
            width=vision_width,
            layers=vision_layers,
            heads=vision_heads,
            output_dim=embed_dim
        )

        self.transformer = Transformer(
            width=transformer_width,
            layers=transformer_layers,
            heads=transformer_heads,
            attn_mask=self.build_attention_mask()
        )

        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(self.context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)

        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))

        self.initialize_parameters()

    def initialize_parameters(self):
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)

        proj_std = (self.transformer.width ** -0.5) * ((2 * self.transformer.layers) ** -0.5)
        attn_std = self.transformer.width ** -0.5
        fc_std = (2 * self.transformer.width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

        if self.text_projection is not None:
            nn.init.normal_(self.text_projection, std=self.transformer.width ** -0.5)

    def build_attention_mask(self):
        # lazily create causal attention mask, with full attention between the vision tokens
        # pytorch uses additive attention mask; fill with -inf
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float("-inf"))
        mask.triu_(1)  # zero out the lower diagonal
        return mask

    @property
    def dtype(self):
        return self.visual.conv1.weight.dtype

    def encode_image(self, image):
        return self.visual(image.type(self.dtype))

    def encode_text(self, text):
        x = self.token_embedding(text).type(self.dtype)  # [batch_size, n_ctx, d_model]

        x = x + self.positional_embedding.type(self.dtype)
        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)  # LND -> NLD
        x = self.ln_final(x).type(self.dtype)

        # x.shape = [batch_size, n_ctx, transformer.width]
        # take features from the eot embedding (eot_token is the highest number in each sequence)
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

        return x

    def forward(self, image, text):
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)

        # normalized features
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)

        # cosine similarity as logits
        logit_scale = self.logit_scale.exp()
        logits_per_image = logit_scale * image_features @ text_features.t()
        logits_per_text = logits_per_image.t()

        # shape = [global_batch_size, global_batch_size]
        return logits_per_image, logits_per_text


# --- training -----------------------------------------------------------------------------------------
train_images, train_texts, train_labels = make_pairs(480)
val_images, val_texts, val_labels = make_pairs(288)

model = CLIP(embed_dim=16, image_resolution=8, vision_layers=1, vision_width=32, vision_patch_size=2,
             context_length=CONTEXT, vocab_size=len(VOCAB), transformer_width=32, transformer_heads=4,
             transformer_layers=1)
mask = model.transformer.resblocks[0].attn_mask
print(f"logit_scale {model.logit_scale.item():.4f} (exp {model.logit_scale.exp().item():.2f}), "
      f"text mask {tuple(mask.shape)} -inf above the diagonal {bool(torch.isinf(mask).sum() == CONTEXT * (CONTEXT - 1) // 2)}, "
      f"vision heads {model.visual.transformer.resblocks[0].attn.num_heads}, "
      f"eot positions {train_texts[:4].argmax(dim=-1).tolist()}")

exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or 'logit_scale' in n  # noqa: E731
include = lambda n, p: not exclude(n, p)  # noqa: E731
named_parameters = list(model.named_parameters())
gain_or_bias_params = [p for n, p in named_parameters if exclude(n, p) and p.requires_grad]
rest_params = [p for n, p in named_parameters if include(n, p) and p.requires_grad]
optimizer = torch.optim.AdamW(
    [
        {"params": gain_or_bias_params, "weight_decay": 0.},
        {"params": rest_params, "weight_decay": 0.2},
    ],
    lr=2e-3, betas=(0.9, 0.98), eps=1e-6,
)
print(f"groups: {len(gain_or_bias_params)} without decay, {len(rest_params)} with decay")

EPOCHS, BATCH = 16, 48
for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(train_images))
    total = 0.0
    for b in range(len(train_images) // BATCH):
        idx = perm[b * BATCH:(b + 1) * BATCH]
        images, texts = train_images[idx], train_texts[idx]
        logits_per_image, logits_per_text = model(images, texts)
        ground_truth = torch.arange(len(images), dtype=torch.long)
        loss = (F.cross_entropy(logits_per_image, ground_truth) + F.cross_entropy(logits_per_text, ground_truth)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        torch.clamp_(model.logit_scale.data, 0, 4.6052)
        total += loss.item()
    if epoch % 2 == 1:
        print(f"epoch {epoch}: contrastive loss {total / (len(train_images) // BATCH):.4f}, "
              f"logit scale {model.logit_scale.exp().item():.2f}")

# --- evaluation: zero-shot classification and retrieval ------------------------------------------------
model.eval()
with torch.no_grad():
    image_features = model.encode_image(val_images)
    text_features = model.encode_text(val_texts)
    normalised = F.normalize(image_features, dim=-1)
    image_features /= image_features.norm(dim=-1, keepdim=True)
    text_features /= text_features.norm(dim=-1, keepdim=True)
    print(f"F.normalize matches the division: {torch.allclose(normalised, image_features, atol=1e-6)}")

    prompts = tokenize([f"a photo of a {c} {s}" for c in COLOURS for s in SHAPES])
    class_features = model.encode_text(prompts)
    class_features /= class_features.norm(dim=-1, keepdim=True)
    similarity = (100.0 * image_features @ class_features.T).softmax(dim=-1)
    values, indices = similarity[0].topk(3)
    zero_shot_acc = (similarity.argmax(dim=-1) == val_labels).float().mean().item()
    top3 = similarity.topk(3, dim=-1).indices
    zero_shot_top3 = (top3 == val_labels[:, None]).any(dim=1).float().mean().item()

    retrieval = image_features @ text_features.t()
    recalls = {}
    for k in (1, 5):
        retrieved = retrieval.topk(k, dim=1).indices
        recalls[k] = (val_labels[retrieved] == val_labels[:, None]).any(dim=1).float().mean().item()
    val_logits_per_image, _ = model(val_images, val_texts)
    ground_truth = torch.arange(len(val_images))
    val_loss = F.cross_entropy(val_logits_per_image, ground_truth).item()

print(f"top-3 probabilities of the first image sum to {values.sum().item():.4f}, indices {tuple(indices.shape)}")
print(f"FINAL val_loss={val_loss:.4f} zero_shot_acc={zero_shot_acc:.4f} zero_shot_top3={zero_shot_top3:.4f} "
      f"recall1={recalls[1]:.4f} recall5={recalls[5]:.4f} logit_scale={model.logit_scale.exp().item():.4f}")
