"""Prefix tuning as HF peft writes it (``PrefixEncoder`` + ``PeftModel.get_prompt``) on a frozen tiny GPT-2.

A GPT-2-style causal LM (``c_attn`` split into q/k/v, ``_split_heads`` by ``view`` + ``permute``,
``layer_past`` joined by ``torch.cat((past_key, key), dim=-2)``, the ``bias`` ``tril`` buffer read at
``[:, :, key_length - query_length : key_length, :key_length]``, ``torch.where(causal_mask, w, mask_value)``
with ``torch.finfo(w.dtype).min``, the extended padding mask ``(1.0 - attention_mask) * torch.finfo(dtype).min``,
``position_ids`` from ``past_length``) is pretrained on a mixture of two order-2 Markov chains, then frozen by
``requires_grad_(False)``. peft's ``PrefixEncoder`` reparameterises the virtual tokens with an
``Embedding`` + ``Linear``/``Tanh``/``Linear`` MLP; ``get_prompt`` expands ``prompt_tokens`` over the
batch, ``view(batch, num_virtual_tokens, num_layers * 2, num_attention_heads, token_dim // heads)``,
``permute([2, 0, 3, 1, 4]).split(2)`` into per-layer ``(key, value)``, and the forward prepends
``torch.ones(batch, num_virtual_tokens)`` to the attention mask.

Checks: a zero-length prefix gives the base model's logits; a right-padded batch gives each sequence's
own logits; after prefix tuning on one of the two chains only the prefix encoder's parameters changed
(``state_dict`` tensors compared with ``torch.equal``) and the task loss fell.
"""

import copy
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB = 12
TABLES = [rng.integers(0, VOCAB, size=(VOCAB, VOCAB)) for _ in range(2)]


def markov(table, n):
    out = list(rng.integers(0, VOCAB, size=2))
    for _ in range(n - 2):
        out.append(int(rng.integers(0, VOCAB)) if rng.random() < 0.1 else int(table[out[-2], out[-1]]))
    return out


def batch(tables, n, seqlen):
    rows = [markov(tables[int(rng.integers(0, len(tables)))], seqlen + 1) for _ in range(n)]
    data = torch.tensor(rows, dtype=torch.long)
    return data[:, :-1].contiguous(), data[:, 1:].contiguous()


class GPT2Config:
    def __init__(self, vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4):
        self.vocab_size = vocab_size
        self.n_positions = n_positions
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head


class GPT2Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        max_positions = config.n_positions
        self.register_buffer(
            "bias",
            torch.tril(torch.ones((max_positions, max_positions), dtype=torch.bool)).view(
                1, 1, max_positions, max_positions
            ),
            persistent=False,
        )
        self.embed_dim = config.n_embd
        self.num_heads = config.n_head
        self.head_dim = self.embed_dim // self.num_heads
        self.split_size = self.embed_dim
        self.c_attn = nn.Linear(self.embed_dim, 3 * self.embed_dim)
        self.c_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def _split_heads(self, tensor, num_heads, attn_head_size):
        new_shape = tensor.size()[:-1] + (num_heads, attn_head_size)
        tensor = tensor.view(new_shape)
        return tensor.permute(0, 2, 1, 3)  # (batch, head, seq_length, head_features)

    def _merge_heads(self, tensor, num_heads, attn_head_size):
        tensor = tensor.permute(0, 2, 1, 3).contiguous()
        new_shape = tensor.size()[:-2] + (num_heads * attn_head_size,)
        return tensor.view(new_shape)

    def _attn(self, query, key, value, attention_mask=None):
        attn_weights = torch.matmul(query, key.transpose(-1, -2))
        attn_weights = attn_weights / torch.full(
            [], value.size(-1) ** 0.5, dtype=attn_weights.dtype, device=attn_weights.device
        )
        query_length, key_length = query.size(-2), key.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length: key_length, :key_length]
        mask_value = torch.finfo(attn_weights.dtype).min
        mask_value = torch.full([], mask_value, dtype=attn_weights.dtype, device=attn_weights.device)
        attn_weights = torch.where(causal_mask, attn_weights.to(attn_weights.dtype), mask_value)
        if attention_mask is not None:
            attn_weights = attn_weights + attention_mask
        attn_weights = nn.functional.softmax(attn_weights, dim=-1)
        attn_output = torch.matmul(attn_weights, value)
        return attn_output, attn_weights

    def forward(self, hidden_states, layer_past=None, attention_mask=None):
        query, key, value = self.c_attn(hidden_states).split(self.split_size, dim=2)
        query = self._split_heads(query, self.num_heads, self.head_dim)
        key = self._split_heads(key, self.num_heads, self.head_dim)
        value = self._split_heads(value, self.num_heads, self.head_dim)
        if layer_past is not None:
            past_key, past_value = layer_past
            key = torch.cat((past_key, key), dim=-2)
            value = torch.cat((past_value, value), dim=-2)
        attn_output, _ = self._attn(query, key, value, attention_mask)
        attn_output = self._merge_heads(attn_output, self.num_heads, self.head_dim)
        return self.c_proj(attn_output)


class GPT2Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = GPT2Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * config.n_embd, config.n_embd))

    def forward(self, hidden_states, layer_past=None, attention_mask=None):
        hidden_states = hidden_states + self.attn(self.ln_1(hidden_states), layer_past, attention_mask)
        return hidden_states + self.mlp(self.ln_2(hidden_states))


class GPT2LMHeadModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList([GPT2Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def forward(self, input_ids, past_key_values=None, attention_mask=None, labels=None):
        input_shape = input_ids.size()
        batch_size = input_ids.shape[0]
        if past_key_values is None:
            past_length = 0
            past_key_values = tuple([None] * len(self.h))
        else:
            past_length = past_key_values[0][0].size(-2)
        position_ids = torch.arange(past_length, input_shape[-1] + past_length, dtype=torch.long)
        position_ids = position_ids.unsqueeze(0)
        if attention_mask is not None:
            attention_mask = attention_mask.view(batch_size, -1)
            attention_mask = attention_mask[:, None, None, :]
            attention_mask = attention_mask.to(dtype=self.wte.weight.dtype)
            attention_mask = (1.0 - attention_mask) * torch.finfo(self.wte.weight.dtype).min
        hidden_states = self.wte(input_ids) + self.wpe(position_ids)
        for block, layer_past in zip(self.h, past_key_values):
            hidden_states = block(hidden_states, layer_past=layer_past, attention_mask=attention_mask)
        logits = self.lm_head(self.ln_f(hidden_states))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100)
        return loss, logits


class PrefixTuningConfig:
    def __init__(self, num_virtual_tokens, token_dim, num_layers, num_attention_heads,
                 encoder_hidden_size, prefix_projection=True, inference_mode=False):
        self.num_virtual_tokens = num_virtual_tokens
        self.token_dim = token_dim
        self.num_layers = num_layers
        self.num_attention_heads = num_attention_heads
        self.encoder_hidden_size = encoder_hidden_size
        self.prefix_projection = prefix_projection
        self.inference_mode = inference_mode
        self.num_transformer_submodules = 1


class PrefixEncoder(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.prefix_projection = config.prefix_projection
        token_dim = config.token_dim
        num_layers = config.num_layers
        encoder_hidden_size = config.encoder_hidden_size
        num_virtual_tokens = config.num_virtual_tokens
        if self.prefix_projection and not config.inference_mode:
            # Use a two-layer MLP to encode the prefix
            self.embedding = torch.nn.Embedding(num_virtual_tokens, token_dim)
            self.transform = torch.nn.Sequential(
                torch.nn.Linear(token_dim, encoder_hidden_size),
                torch.nn.Tanh(),
                torch.nn.Linear(encoder_hidden_size, num_layers * 2 * token_dim),
            )
        else:
            self.embedding = torch.nn.Embedding(num_virtual_tokens, num_layers * 2 * token_dim)

    def forward(self, prefix: torch.Tensor):
        if self.prefix_projection:
            prefix_tokens = self.embedding(prefix)
            past_key_values = self.transform(prefix_tokens)
        else:
            past_key_values = self.embedding(prefix)
        return past_key_values


class PeftModelForCausalLM(torch.nn.Module):
    def __init__(self, model, peft_config):
        super().__init__()
        self.base_model = model
        self.peft_config = peft_config
        for param in self.base_model.parameters():
            param.requires_grad_(False)
        self.prompt_encoder = PrefixEncoder(peft_config)
        self.prompt_tokens = torch.arange(
            peft_config.num_virtual_tokens * peft_config.num_transformer_submodules
        ).long()

    def get_prompt(self, batch_size):
        peft_config = self.peft_config
        prompt_encoder = self.prompt_encoder
        prompt_tokens = self.prompt_tokens.unsqueeze(0).expand(batch_size, -1).to(prompt_encoder.embedding.weight.device)
        prompt_tokens = prompt_tokens[:, : peft_config.num_virtual_tokens]
        if peft_config.inference_mode:
            past_key_values = prompt_encoder.embedding.weight.repeat(batch_size, 1, 1)
        else:
            past_key_values = prompt_encoder(prompt_tokens)
        past_key_values = past_key_values.view(
            batch_size,
            peft_config.num_virtual_tokens,
            peft_config.num_layers * 2,
            peft_config.num_attention_heads,
            peft_config.token_dim // peft_config.num_attention_heads,
        )
        past_key_values = past_key_values.permute([2, 0, 3, 1, 4]).split(peft_config.num_transformer_submodules * 2)
        return past_key_values

    def forward(self, input_ids, attention_mask=None, labels=None):
        batch_size = input_ids.shape[0]
        if attention_mask is not None:
            # concat prompt attention mask
            prefix_attention_mask = torch.ones(batch_size, self.peft_config.num_virtual_tokens).to(attention_mask.device)
            attention_mask = torch.cat((prefix_attention_mask, attention_mask), dim=1)
        past_key_values = self.get_prompt(batch_size)
        return self.base_model(input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                               labels=labels)

    def print_trainable_parameters(self):
        trainable_params, all_param = 0, 0
        for _, param in self.named_parameters():
            all_param += param.numel()
            if param.requires_grad:
                trainable_params += param.numel()
        print(f"trainable params: {trainable_params:,d} || all params: {all_param:,d} "
              f"|| trainable%: {100 * trainable_params / all_param:.4f}")
        return trainable_params


config = GPT2Config()
base = GPT2LMHeadModel(config)
SEQ = 16

# --- pretrain the base model on the mixture of both chains
opt = torch.optim.AdamW(base.parameters(), lr=1e-2)
for step in range(200):
    x, y = batch(TABLES, 16, SEQ)
    loss, _ = base(x, labels=y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 50 == 0 or step == 199:
        print(f"pretrain step {step}: loss {loss.item():.4f}")
base.eval()


def peft_config(n):
    return PrefixTuningConfig(num_virtual_tokens=n, token_dim=config.n_embd, num_layers=config.n_layer,
                              num_attention_heads=config.n_head, encoder_hidden_size=24)


# --- a zero-length prefix is the base model
x, y = batch(TABLES, 4, SEQ)
empty = PeftModelForCausalLM(base, peft_config(0))
pkv = empty.get_prompt(4)
with torch.no_grad():
    _, base_logits = base(x)
    _, empty_logits = empty(x, attention_mask=torch.ones_like(x))
zero_prefix_err = (base_logits - empty_logits).abs().max().item()
print(f"zero prefix: {len(pkv)} layers of {tuple(pkv[0].shape)}, max err {zero_prefix_err:.2e}")

# --- prefix tuning on chain 1 only
torch.manual_seed(seed + 1)
model = PeftModelForCausalLM(base, peft_config(4))
n_trainable = model.print_trainable_parameters()
before = copy.deepcopy(model.state_dict())
print("prompt shapes:", [tuple(t.shape) for t in model.get_prompt(2)])
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
val_x, val_y = batch(TABLES[1:], 64, SEQ)


def evaluate():
    with torch.no_grad():
        loss, _ = model(val_x, attention_mask=torch.ones_like(val_x), labels=val_y)
    return loss.item()


val_first = evaluate()
losses = []
for step in range(100):
    x, y = batch(TABLES[1:], 16, SEQ)
    # right padding: the last few positions of some rows are padding, masked and ignored
    lengths = torch.from_numpy(rng.integers(SEQ - 4, SEQ + 1, size=16))
    attention_mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).long()
    labels = y.masked_fill(attention_mask == 0, -100)
    loss, _ = model(x, attention_mask=attention_mask, labels=labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 25 == 0 or step == 99:
        print(f"prefix step {step}: loss {loss.item():.4f}")
val_last = evaluate()
with torch.no_grad():
    base_val, _ = base(val_x, labels=val_y)
print(f"chain-1 val loss: base {base_val.item():.4f}, prefix before {val_first:.4f}, after {val_last:.4f}")

after = model.state_dict()
changed = sorted({k.split(".")[0] for k in after if not torch.equal(before[k], after[k])})
frozen_same = all(torch.equal(before[k], after[k]) for k in after if k.startswith("base_model."))
prefix_changed = all(not torch.equal(before[k], after[k]) for k in after if k.startswith("prompt_encoder."))
print(f"changed: {changed}, base frozen {frozen_same}, every prefix tensor moved {prefix_changed}")

# --- a right-padded batch gives each row its own logits
with torch.no_grad():
    a, b = val_x[0, :SEQ], val_x[1, :SEQ - 5]
    padded = torch.stack([a, torch.cat([b, torch.zeros(5, dtype=torch.long)])])
    mask = torch.ones_like(padded)
    mask[1, SEQ - 5:] = 0
    _, batch_logits = model(padded, attention_mask=mask)
    _, a_logits = model(a[None], attention_mask=torch.ones(1, SEQ, dtype=torch.long))
    _, b_logits = model(b[None], attention_mask=torch.ones(1, SEQ - 5, dtype=torch.long))
pad_err = max((batch_logits[0] - a_logits[0]).abs().max().item(),
              (batch_logits[1, :SEQ - 5] - b_logits[0]).abs().max().item())
print(f"padded batch vs single rows max err {pad_err:.2e}")

checks = float(zero_prefix_err < 1e-5 and frozen_same and prefix_changed and changed == ["prompt_encoder"]
               and pad_err < 1e-4)
print(f"FINAL base_loss={base_val.item():.4f} val_first={val_first:.4f} val_last={val_last:.4f} "
      f"train_last={np.mean(losses[-10:]):.4f} trainable={n_trainable} checks={checks:.0f}")
