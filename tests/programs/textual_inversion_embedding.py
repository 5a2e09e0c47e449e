"""Textual inversion the way diffusers' examples/textual_inversion script does it, on a toy model.

A frozen toy text encoder (word ``nn.Embedding`` + position embedding + a tiny
``nn.TransformerEncoder`` + final ``nn.LayerNorm``, pooled over the non-pad tokens) gains a
placeholder token: the embedding is resized by a new ``nn.Embedding(n + 1, d)`` whose rows are
copied under ``torch.no_grad()`` and whose new row starts from the initializer token's.
Everything but the token embedding is frozen by ``requires_grad_(False)``; the weights are kept in
``orig_embeds_params = ...weight.data.clone()``; AdamW (weight decay 1e-2) on the embedding's
parameters; after each step the rows of ``index_no_updates`` (a bool mask with the placeholder's
entry ``False``) are written back from the saved copy under ``torch.no_grad()``;
``torch.nn.utils.clip_grad_norm_``.  The frozen "UNet" is the ideal noise predictor of a DDPM
(``torch.cumprod`` schedule, ``add_noise`` with ``flatten`` + ``unsqueeze(-1)``) for latents
decoded linearly from the pooled condition, and the training latents are those of the prompts
written with a hidden concept vector, so the loss's optimum is that concept.
Checks: every other embedding row ``torch.equal`` to its original, the learned row's cosine to
the concept rises, the noise-prediction loss falls; the learned embedding saved and reloaded.
"""

import os
import random
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

imagenet_templates_small = [
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a good photo of a {}",
]


class ToyTokenizer:
    def __init__(self, words, model_max_length=8):
        self.vocab = {"<pad>": 0}
        for w in words:
            self.vocab.setdefault(w, len(self.vocab))
        self.model_max_length = model_max_length

    def __len__(self):
        return len(self.vocab)

    def add_tokens(self, tokens):
        added = 0
        for t in tokens:
            if t not in self.vocab:
                self.vocab[t] = len(self.vocab)
                added += 1
        return added

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab[t] for t in tokens]

    def encode(self, text):
        return [self.vocab[w] for w in text.split()]

    def __call__(self, text, padding="max_length", truncation=True, max_length=None):
        ids = self.encode(text)[: max_length or self.model_max_length]
        ids = ids + [0] * ((max_length or self.model_max_length) - len(ids))
        return {"input_ids": torch.tensor(ids, dtype=torch.long)}


class ToyTextEncoder(nn.Module):
    def __init__(self, vocab_size, hidden=16, max_len=8):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, hidden)
        self.position_embedding = nn.Embedding(max_len, hidden)
        layer = nn.TransformerEncoderLayer(hidden, nhead=2, dim_feedforward=32, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.final_layer_norm = nn.LayerNorm(hidden)

    def get_input_embeddings(self):
        return self.token_embedding

    def resize_token_embeddings(self, new_num_tokens):
        old = self.token_embedding
        n, d = old.weight.shape
        new = nn.Embedding(new_num_tokens, d)
        with torch.no_grad():
            new.weight[:n] = old.weight
        self.token_embedding = new
        return new

    def forward(self, input_ids):
        pad = input_ids == 0
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        x = self.encoder(x, src_key_padding_mask=pad)
        x = self.final_layer_norm(x)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(1) / keep.sum(1)
        return x, pooled


class DDPMScheduler:
    def __init__(self, num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02):
        self.num_train_timesteps = num_train_timesteps
        self.betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)

    def add_noise(self, original_samples, noise, timesteps):
        alphas_cumprod = self.alphas_cumprod.to(device=original_samples.device, dtype=original_samples.dtype)
        sqrt_alpha_prod = alphas_cumprod[timesteps] ** 0.5
        sqrt_alpha_prod = sqrt_alpha_prod.flatten()
        while len(sqrt_alpha_prod.shape) < len(original_samples.shape):
            sqrt_alpha_prod = sqrt_alpha_prod.unsqueeze(-1)
        sqrt_one_minus_alpha_prod = (1 - alphas_cumprod[timesteps]) ** 0.5
        sqrt_one_minus_alpha_prod = sqrt_one_minus_alpha_prod.flatten()
        while len(sqrt_one_minus_alpha_prod.shape) < len(original_samples.shape):
            sqrt_one_minus_alpha_prod = sqrt_one_minus_alpha_prod.unsqueeze(-1)
        return sqrt_alpha_prod * original_samples + sqrt_one_minus_alpha_prod * noise


class ToyUNet(nn.Module):
    """The ideal noise predictor for latents ``decode(condition)``: frozen, no parameters learned."""

    def __init__(self, scheduler, hidden=16, latent=16):
        super().__init__()
        self.decode = nn.Linear(hidden, latent)
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.clone())

    def forward(self, noisy_latents, timesteps, encoder_hidden_states):
        x0_pred = self.decode(encoder_hidden_states)
        abar = self.alphas_cumprod[timesteps].unsqueeze(-1)
        return (noisy_latents - abar.sqrt() * x0_pred) / (1 - abar).sqrt()


words = sorted({w for t in imagenet_templates_small for w in t.split() if w != "{}"} | {"toy", "cat", "dog"})
tokenizer = ToyTokenizer(words)
text_encoder = ToyTextEncoder(len(tokenizer)).to(device)
noise_scheduler = DDPMScheduler()
unet = ToyUNet(noise_scheduler).to(device)

# the hidden concept: mostly "cat", a little "toy", and something no word has
g = torch.Generator().manual_seed(1234)
with torch.no_grad():
    w = text_encoder.get_input_embeddings().weight
    cat, toy = w[tokenizer.vocab["cat"]], w[tokenizer.vocab["toy"]]
    concept = 0.7 * cat + 0.4 * toy + 0.5 * torch.randn(w.shape[1], generator=g)

# add the placeholder token and initialise it from the initializer token
placeholder_token, initializer_token = "<cat-toy>", "toy"
num_added_tokens = tokenizer.add_tokens([placeholder_token])
assert num_added_tokens == 1
initializer_token_id = tokenizer.encode(initializer_token)[0]
placeholder_token_ids = tokenizer.convert_tokens_to_ids([placeholder_token])
text_encoder.resize_token_embeddings(len(tokenizer))
token_embeds = text_encoder.get_input_embeddings().weight.data
with torch.no_grad():
    for token_id in placeholder_token_ids:
        token_embeds[token_id] = token_embeds[initializer_token_id].clone()
print(f"vocab {len(tokenizer)} (+{num_added_tokens}), placeholder id {placeholder_token_ids[0]}, "
      f"initializer id {initializer_token_id}, embedding {tuple(token_embeds.shape)}")


def prompt_ids(template, token=placeholder_token):
    return tokenizer(template.format(token), padding="max_length", truncation=True,
                     max_length=tokenizer.model_max_length)["input_ids"]


# the "images": latents of the prompts written with the concept in the placeholder's row
with torch.no_grad():
    saved_row = token_embeds[placeholder_token_ids[0]].clone()
    token_embeds[placeholder_token_ids[0]] = concept
    ids = torch.stack([prompt_ids(t) for t in imagenet_templates_small])
    latents_bank = unet.decode(text_encoder(ids)[1])
    token_embeds[placeholder_token_ids[0]] = saved_row
print(f"latent bank {tuple(latents_bank.shape)}, norm {latents_bank.norm(dim=1).mean().item():.3f}")

# freeze everything but the token embedding
unet.requires_grad_(False)
text_encoder.encoder.requires_grad_(False)
text_encoder.final_layer_norm.requires_grad_(False)
text_encoder.position_embedding.requires_grad_(False)
trainable = [n for n, p in text_encoder.named_parameters() if p.requires_grad]
assert trainable == ["token_embedding.weight"], trainable
print(f"trainable: {trainable}")

optimizer = torch.optim.AdamW(text_encoder.get_input_embeddings().parameters(), lr=3e-2,
                              betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-08)
lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
orig_embeds_params = text_encoder.get_input_embeddings().weight.data.clone()


def cosine_to_concept():
    row = text_encoder.get_input_embeddings().weight[placeholder_token_ids[0]].detach()
    return F.cosine_similarity(row, concept, dim=0).item()


eval_gen = torch.Generator().manual_seed(99)
eval_t = torch.randint(0, noise_scheduler.num_train_timesteps, (64,), generator=eval_gen).long()
eval_noise = torch.randn(64, latents_bank.shape[1], generator=eval_gen)
eval_which = torch.arange(64) % len(imagenet_templates_small)


def eval_loss():
    with torch.no_grad():
        ids = torch.stack([prompt_ids(imagenet_templates_small[i]) for i in eval_which.tolist()])
        latents = latents_bank[eval_which]
        noisy = noise_scheduler.add_noise(latents, eval_noise, eval_t)
        pred = unet(noisy, eval_t, text_encoder(ids)[1])
        return F.mse_loss(pred.float(), eval_noise.float(), reduction="mean").item()


loss_start, cos_start = eval_loss(), cosine_to_concept()
print(f"start: eval loss {loss_start:.4f}, cosine to concept {cos_start:.4f}")

text_encoder.train()
max_train_steps, train_batch_size = 240, 8
for step in range(max_train_steps):
    which = [random.randrange(len(imagenet_templates_small)) for _ in range(train_batch_size)]
    texts = [random.choice(imagenet_templates_small) for _ in range(train_batch_size)]
    input_ids = torch.stack([prompt_ids(t) for t in texts]).to(device)
    latents = latents_bank[which]
    noise = torch.randn_like(latents)
    bsz = latents.shape[0]
    timesteps = torch.randint(0, noise_scheduler.num_train_timesteps, (bsz,), device=latents.device)
    timesteps = timesteps.long()
    noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
    encoder_hidden_states = text_encoder(input_ids)[1].to(dtype=torch.float32)
    model_pred = unet(noisy_latents, timesteps, encoder_hidden_states)
    target = noise
    loss = F.mse_loss(model_pred.float(), target.float(), reduction="mean")
    loss.backward()
    torch.nn.utils.clip_grad_norm_(text_encoder.get_input_embeddings().parameters(), 1.0)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad()

    # make sure we don't update any embedding weights besides the newly added token
    index_no_updates = torch.ones((len(tokenizer),), dtype=torch.bool)
    index_no_updates[min(placeholder_token_ids): max(placeholder_token_ids) + 1] = False
    with torch.no_grad():
        text_encoder.get_input_embeddings().weight[index_no_updates] = orig_embeds_params[index_no_updates]
    if step % 60 == 0 or step == max_train_steps - 1:
        print(f"step {step:3d} loss {loss.detach().item():.4f} lr {lr_scheduler.get_last_lr()[0]:.4f} "
              f"cos {cosine_to_concept():.4f}")

loss_end, cos_end = eval_loss(), cosine_to_concept()
weight = text_encoder.get_input_embeddings().weight
others_equal = all(torch.equal(weight[i], orig_embeds_params[i]) for i in range(len(tokenizer))
                   if i not in placeholder_token_ids)
assert others_equal
moved = (weight[placeholder_token_ids[0]] - orig_embeds_params[placeholder_token_ids[0]]).norm().item()
assert moved > 0

with tempfile.TemporaryDirectory() as tmp:
    learned_embeds = weight[min(placeholder_token_ids): max(placeholder_token_ids) + 1]
    learned_embeds_dict = {placeholder_token: learned_embeds.detach().cpu()}
    path = os.path.join(tmp, "learned_embeds.bin")
    torch.save(learned_embeds_dict, path)
    loaded = torch.load(path, weights_only=True)
assert torch.equal(loaded[placeholder_token][0], weight[placeholder_token_ids[0]].detach())
print(f"saved {list(loaded)} {tuple(loaded[placeholder_token].shape)}, row moved {moved:.4f}")
print(f"end: eval loss {loss_end:.4f}, cosine to concept {cos_end:.4f}")
assert loss_end < loss_start and cos_end > cos_start
print(f"FINAL loss_ratio={loss_end / loss_start:.4f} cos_gain={cos_end - cos_start:.4f} "
      f"others_equal={int(others_equal)}")
