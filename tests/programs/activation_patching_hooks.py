"""Mechanistic interpretability with plain hooks: the TransformerLens idioms written without the library.

A tiny attention-only transformer (two layers of four heads, ``LayerNorm`` before each attention and a final
``ln_final`` + unembedding) is trained on a planted induction task: ``[BOS, s, s]`` for a random token string
``s``, so that the second copy can be predicted only by looking back at what followed the current token the
first time. Activation points are ``HookPoint`` modules (an identity ``nn.Module``), as in TransformerLens, and
everything else is ordinary torch hooks:

- ``register_forward_hook`` caching every ``hook_z`` (per-head outputs) and residual stream into a dict;
- activation patching: a forward hook that *returns* a modified tensor, writing one head's clean output into a
  corrupted run, scored by the logit difference between the clean and the corrupted answer, normalised to
  0 (corrupted) .. 1 (clean);
- ``register_forward_pre_hook(..., with_kwargs=True)`` on a block called with a keyword argument, returning
  ``(args, kwargs)`` to patch the block's whole residual input (which must give the clean metric back);
- attribution patching: grad x (clean - corrupted) activation, with the gradients caught once by
  ``Tensor.register_hook`` on the cached activations and once by ``register_full_backward_hook`` on the hook
  points (the two must agree);
- a logit lens through ``ln_final`` and ``W_U`` on each residual stream (the last must equal the model's logits);
- every hook handle ``.remove()``d, after which the model must give its unhooked output.

Checked: the induction accuracy after training, and the correlation over heads between attribution patching
and activation patching.
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

D_VOCAB, N_CTX_HALF = 16, 8
N_CTX = 2 * N_CTX_HALF + 1
D_MODEL, N_HEADS, D_HEAD, N_LAYERS = 48, 4, 12, 2
BOS = 0


class HookPoint(nn.Module):
    """An identity module: a place to hang forward and backward hooks on an activation."""

    def forward(self, x):
        return x


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_Q = nn.Parameter(torch.empty(N_HEADS, D_MODEL, D_HEAD))
        self.W_K = nn.Parameter(torch.empty(N_HEADS, D_MODEL, D_HEAD))
        self.W_V = nn.Parameter(torch.empty(N_HEADS, D_MODEL, D_HEAD))
        self.W_O = nn.Parameter(torch.empty(N_HEADS, D_HEAD, D_MODEL))
        self.b_Q = nn.Parameter(torch.zeros(N_HEADS, D_HEAD))
        self.b_K = nn.Parameter(torch.zeros(N_HEADS, D_HEAD))
        self.b_V = nn.Parameter(torch.zeros(N_HEADS, D_HEAD))
        self.b_O = nn.Parameter(torch.zeros(D_MODEL))
        for w in (self.W_Q, self.W_K, self.W_V, self.W_O):
            nn.init.normal_(w, std=0.02 * 4)
        self.register_buffer("IGNORE", torch.tensor(-1e5))
        self.hook_pattern = HookPoint()
        self.hook_z = HookPoint()

    def forward(self, x):
        q = torch.einsum("bpd,hde->bphe", x, self.W_Q) + self.b_Q
        k = torch.einsum("bpd,hde->bphe", x, self.W_K) + self.b_K
        v = torch.einsum("bpd,hde->bphe", x, self.W_V) + self.b_V
        attn_scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(D_HEAD)
        mask = torch.triu(torch.ones(x.size(1), x.size(1), dtype=torch.bool), diagonal=1)
        attn_scores = torch.where(mask, self.IGNORE, attn_scores)
        pattern = self.hook_pattern(attn_scores.softmax(dim=-1))
        z = self.hook_z(torch.einsum("bkhe,bhqk->bqhe", v, pattern))
        return torch.einsum("bqhe,hem->bqm", z, self.W_O) + self.b_O


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D_MODEL)
        self.attn = Attention()
        self.hook_resid_pre = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid, *, attn_scale=1.0):
        resid = self.hook_resid_pre(resid)
        return self.hook_resid_post(resid + attn_scale * self.attn(self.ln1(resid)))


class AttnOnlyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_E = nn.Parameter(torch.randn(D_VOCAB, D_MODEL) / math.sqrt(D_MODEL))
        self.W_pos = nn.Parameter(torch.randn(N_CTX, D_MODEL) * 0.02)
        self.blocks = nn.ModuleList([Block() for _ in range(N_LAYERS)])
        self.ln_final = nn.LayerNorm(D_MODEL)
        self.W_U = nn.Parameter(torch.randn(D_MODEL, D_VOCAB) / math.sqrt(D_MODEL))
        self.b_U = nn.Parameter(torch.zeros(D_VOCAB))

    def forward(self, tokens):
        resid = self.W_E[tokens] + self.W_pos[: tokens.size(1)]
        for block in self.blocks:
            resid = block(resid, attn_scale=1.0)
        return self.unembed(resid)

    def unembed(self, resid):
        return self.ln_final(resid) @ self.W_U + self.b_U


def make_batch(n, generator):
    half = generator.randint(1, D_VOCAB, size=(n, N_CTX_HALF))
    tokens = np.concatenate([np.zeros((n, 1), dtype=np.int64), half, half], axis=1)
    return torch.from_numpy(tokens.astype(np.int64))


# ----------------------------------------------------------------------------------- training
model = AttnOnlyTransformer()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
for step in range(1, 401):
    tokens = make_batch(32, rng)
    logits = model(tokens)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, D_VOCAB), tokens[:, 1:].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.4f}")

model.eval()
test_tokens = make_batch(256, rng)
with torch.no_grad():
    logits = model(test_tokens)
second_half = slice(N_CTX_HALF + 1, N_CTX - 1)
predictions = logits[:, second_half].argmax(dim=-1)
induction_acc = (predictions == test_tokens[:, N_CTX_HALF + 2:]).float().mean().item()
first_half_loss = F.cross_entropy(logits[:, 1:N_CTX_HALF].reshape(-1, D_VOCAB),
                                  test_tokens[:, 2:N_CTX_HALF + 1].reshape(-1)).item()
print(f"induction accuracy {induction_acc:.4f} first-half loss {first_half_loss:.4f} "
      f"(chance {math.log(D_VOCAB - 1):.4f})")
for p in model.parameters():
    p.requires_grad_(False)

# ----------------------------------------------------------------------------------- clean / corrupted prompts
# predict the token after position ANSWER_POS of the second copy; the corruption changes what followed
# that token in the first copy, so the induction answer changes with it
N_PROMPTS, K = 24, 4
clean_tokens = make_batch(N_PROMPTS, rng)[:, : N_CTX_HALF + 2 + K]
corrupted_tokens = clean_tokens.clone()
clean_answer = clean_tokens[:, K + 2]
corrupt_answer = (clean_answer + torch.from_numpy(rng.randint(1, D_VOCAB - 1, size=N_PROMPTS))) % (D_VOCAB - 1) + 1
corrupt_answer = torch.where(corrupt_answer == clean_answer, corrupt_answer % (D_VOCAB - 1) + 1, corrupt_answer)
corrupted_tokens[:, K + 2] = corrupt_answer
assert (corrupt_answer != clean_answer).all()


def logits_to_logit_diff(logits):
    final = logits[:, -1, :]
    correct = final.gather(1, clean_answer.unsqueeze(1)).squeeze(1)
    wrong = final.gather(1, corrupt_answer.unsqueeze(1)).squeeze(1)
    return (correct - wrong).mean()


cache = {}
handles = []


def save_hook(name):
    def hook(module, input, output):
        cache[name] = output.detach()
    return hook


hook_points = {name: module for name, module in model.named_modules() if isinstance(module, HookPoint)}
for name, module in hook_points.items():
    handles.append(module.register_forward_hook(save_hook(name)))
with torch.no_grad():
    clean_logits = model(clean_tokens)
clean_cache = dict(cache)
with torch.no_grad():
    corrupted_logits = model(corrupted_tokens)
corrupted_cache = dict(cache)
for handle in handles:
    handle.remove()
handles.clear()
print(f"cached {len(clean_cache)} activations, hook_z shape {tuple(clean_cache['blocks.0.attn.hook_z'].shape)}")

CLEAN_DIFF = logits_to_logit_diff(clean_logits).item()
CORRUPTED_DIFF = logits_to_logit_diff(corrupted_logits).item()
print(f"clean logit diff {CLEAN_DIFF:.4f} corrupted logit diff {CORRUPTED_DIFF:.4f}")


def patching_metric(logits):
    return (logits_to_logit_diff(logits) - CORRUPTED_DIFF) / (CLEAN_DIFF - CORRUPTED_DIFF)


# ----------------------------------------------------------------------------------- activation patching
def patch_head_z(head_index, clean_z):
    def hook(module, input, output):
        output = output.clone()
        output[:, :, head_index, :] = clean_z[:, :, head_index, :]
        return output
    return hook


activation_patch = torch.zeros(N_LAYERS, N_HEADS)
for layer in range(N_LAYERS):
    hook_point = model.blocks[layer].attn.hook_z
    for head in range(N_HEADS):
        handle = hook_point.register_forward_hook(
            patch_head_z(head, clean_cache[f"blocks.{layer}.attn.hook_z"]))
        with torch.no_grad():
            activation_patch[layer, head] = patching_metric(model(corrupted_tokens))
        handle.remove()
for layer in range(N_LAYERS):
    print(f"activation patching layer {layer}: " + " ".join(f"{v:+.3f}" for v in activation_patch[layer].tolist()))


# a pre-hook with kwargs that patches the whole residual input of the last block must restore the clean run
def patch_resid_pre(module, args, kwargs):
    assert kwargs["attn_scale"] == 1.0
    return (clean_cache[f"blocks.{N_LAYERS - 1}.hook_resid_pre"],), dict(kwargs)


handle = model.blocks[-1].register_forward_pre_hook(patch_resid_pre, with_kwargs=True)
with torch.no_grad():
    resid_patched = patching_metric(model(corrupted_tokens)).item()
handle.remove()
print(f"residual pre-hook patch metric {resid_patched:.4f}")
assert abs(resid_patched - 1.0) < 1e-4

# ----------------------------------------------------------------------------------- attribution patching
z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(N_LAYERS)]
grad_cache = {}
module_grad_cache = {}


def forward_cache_hook(name):
    def hook(module, input, output):
        cache[name] = output

        def backward_hook(grad):
            grad_cache[name] = grad.detach()
        output.register_hook(backward_hook)
    return hook


def module_backward_hook(name):
    def hook(module, grad_input, grad_output):
        module_grad_cache[name] = grad_output[0].detach()
    return hook


for name in z_names:
    handles.append(hook_points[name].register_forward_hook(forward_cache_hook(name)))
    handles.append(hook_points[name].register_full_backward_hook(module_backward_hook(name)))
embed_input = model.W_E[corrupted_tokens].detach().requires_grad_(True)


def run_from_embeddings(embedded):
    resid = embedded + model.W_pos[: embedded.size(1)]
    for block in model.blocks:
        resid = block(resid, attn_scale=1.0)
    return model.unembed(resid)


value = patching_metric(run_from_embeddings(embed_input))
value.backward()
for handle in handles:
    handle.remove()
handles.clear()
print(f"corrupted metric with grad {value.item():+.4f}; gradients caught by tensor hooks {len(grad_cache)}, "
      f"module hooks {len(module_grad_cache)}")
max_hook_gap = max((grad_cache[n] - module_grad_cache[n]).abs().max().item() for n in z_names)
assert max_hook_gap < 1e-6, max_hook_gap

attribution_patch = torch.zeros(N_LAYERS, N_HEADS)
for layer, name in enumerate(z_names):
    delta = clean_cache[name] - corrupted_cache[name]
    attribution_patch[layer] = (delta * grad_cache[name]).sum(dim=(0, 1, 3))
for layer in range(N_LAYERS):
    print(f"attribution patching layer {layer}: " + " ".join(f"{v:+.3f}" for v in attribution_patch[layer].tolist()))
stacked = torch.stack([attribution_patch.flatten(), activation_patch.flatten()])
correlation = torch.corrcoef(stacked)[0, 1].item()
print(f"correlation attribution vs activation patching {correlation:.4f}")

# ----------------------------------------------------------------------------------- logit lens
cache.clear()
for layer in range(N_LAYERS):
    handles.append(model.blocks[layer].hook_resid_post.register_forward_hook(save_hook(f"blocks.{layer}.hook_resid_post")))
with torch.no_grad():
    final_logits = model(clean_tokens)
    lens_diffs = [logits_to_logit_diff(model.unembed(cache[f"blocks.{layer}.hook_resid_post"])).item()
                  for layer in range(N_LAYERS)]
    embed_diff = logits_to_logit_diff(model.unembed(model.W_E[clean_tokens] + model.W_pos[: clean_tokens.size(1)])).item()
for handle in handles:
    handle.remove()
print(f"logit lens: embed {embed_diff:+.3f} " + " ".join(
    f"layer{layer} {d:+.3f}" for layer, d in enumerate(lens_diffs)))
assert abs(lens_diffs[-1] - logits_to_logit_diff(final_logits).item()) < 1e-4

# all hooks gone: the model gives its plain output again
cache.clear()
with torch.no_grad():
    again = model(clean_tokens)
print(f"hooks left {sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())}, "
      f"cache entries after removal {len(cache)}, same logits {torch.equal(again, clean_logits)}")
print(f"FINAL induction_acc={induction_acc:.4f} clean_diff={CLEAN_DIFF:.4f} correlation={correlation:.4f} "
      f"lens_gain={lens_diffs[-1] - lens_diffs[0]:.4f}")
