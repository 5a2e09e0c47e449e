"""Hugging Face's modeling_gpt2.py at tiny sizes, written the way that file writes it, trained like run_clm.

``Conv1D`` (weight ``(nx, nf)``, ``torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)``,
``size_out = x.size()[:-1] + (self.nf,)``), ``GPT2Attention`` with ``c_attn(x).split(self.split_size,
dim=2)``, ``_split_heads`` by ``view`` + ``permute(0, 2, 1, 3)`` and ``_merge_heads`` back, the
non-persistent ``bias`` buffer ``torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n)``
sliced by ``[:, :, key_length - query_length:key_length, :key_length]``, the scale by
``torch.full([], value.size(-1) ** 0.5, dtype=..., device=...)``, ``torch.finfo(dtype).min`` as the
mask value in ``torch.where(causal_mask, attn_weights.to(attn_weights.dtype), mask_value)``, the
padding ``attention_mask[:, None, None, :]`` turned into ``(1.0 - mask) * finfo.min``,
``NewGELUActivation`` (checked against ``F.gelu(approximate='tanh')``), ``_init_weights`` with
``c_proj.weight`` rescaled by ``1 / sqrt(2 * n_layer)``, tied ``lm_head``, the shifted
``CrossEntropyLoss`` on ``view(-1, size(-1))``; run_clm's AdamW with ``no_decay`` groups,
``get_linear_schedule_with_warmup`` as a ``LambdaLR`` over ``functools.partial``,
``clip_grad_norm_``; generation with ``past_key_values`` (the cached greedy run must equal the
uncached one) and left-padded batched scoring. The corpus: an order-1 Markov chain over 16 tokens.
"""

import math
import os
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import CrossEntropyLoss
from torch.optim.lr_scheduler import LambdaLR

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


class GPT2Config:
    def __init__(self, vocab_size=16, n_positions=32, n_embd=32, n_layer=2, n_head=4, n_inner=None,
                 resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, layer_norm_epsilon=1e-5,
                 initializer_range=0.02, scale_attn_weights=True, use_cache=True):
        self.vocab_size = vocab_size
        self.n_positions = n_positions
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_inner = n_inner
        self.resid_pdrop = resid_pdrop
        self.embd_pdrop = embd_pdrop
        self.attn_pdrop = attn_pdrop
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.scale_attn_weights = scale_attn_weights
        self.use_cache = use_cache
        self.max_position_embeddings = n_positions
        self.hidden_size = n_embd
        self.num_attention_heads = n_head
        self.num_hidden_layers = n_layer


class Conv1D(nn.Module):
    """
    1D-convolutional layer as defined by Radford et al. for OpenAI GPT (and also used in GPT-2).

    Basically works like a linear layer but the weights are transposed.
    """

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.nx = nx
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))
        nn.init.normal_(self.weight, std=0.02)

    def __repr__(self) -> str:
        return "Conv1D(nf={nf}, nx={nx})".format(**self.__dict__)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        x = x.view(size_out)
        return x


class NewGELUActivation(nn.Module):
    """
    Implementation of the GELU activation function currently in Google BERT repo (identical to OpenAI GPT). Also see
    the Gaussian Error Linear Units paper: https://arxiv.org/abs/1606.08415
    """

    def forward(self, input):
        return 0.5 * input * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (input + 0.044715 * torch.pow(input, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, config, layer_idx=None):
        super().__init__()
        max_positions = config.max_position_embeddings
        self.register_buffer(
            "bias",
            torch.tril(torch.ones((max_positions, max_positions), dtype=torch.bool)).view(
                1, 1, max_positions, max_positions
            ),
            persistent=False,
        )
        self.register_buffer("masked_bias", torch.tensor(-1e4), persistent=False)

        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        self.split_size = self.embed_dim
        if self.head_dim * self.num_heads != self.embed_dim:
            raise ValueError(
                f"`embed_dim` must be divisible by num_heads (got `embed_dim`: {self.embed_dim} and `num_heads`:"
                f" {self.num_heads})."
            )

        self.scale_attn_weights = config.scale_attn_weights
        self.layer_idx = layer_idx

        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)

        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def _attn(self, query, key, value, attention_mask=None, head_mask=None):
        attn_weights = torch.matmul(query, key.transpose(-1, -2))

        if self.scale_attn_weights:
            attn_weights = attn_weights / torch.full(
                [], value.size(-1) ** 0.5, dtype=attn_weights.dtype, device=attn_weights.device
            )

        # if only "normal" attention layer implements causal mask
        query_length, key_length = query.size(-2), key.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length : key_length, :key_length]
        mask_value = torch.finfo(attn_weights.dtype).min
        # Need to be a tensor, otherwise we get error: `RuntimeError: expected scalar type float but found double`.
        # Need to be on the same device, otherwise `RuntimeError: ..., x and y to be on the same device`
        mask_value = torch.full([], mask_value, dtype=attn_weights.dtype, device=attn_weights.device)
        attn_weights = torch.where(causal_mask, attn_weights.to(attn_weights.dtype), mask_value)

        if attention_mask is not None:
            # Apply the attention mask
            attn_weights = attn_weights + attention_mask

        attn_weights = nn.functional.softmax(attn_weights, dim=-1)

        # Downcast (if necessary) back to V's dtype (if in mixed-precision) -- No-Op otherwise
        attn_weights = attn_weights.type(value.dtype)
        attn_weights = self.attn_dropout(attn_weights)

        # Mask heads if we want to
        if head_mask is not None:
            attn_weights = attn_weights * head_mask

        attn_output = torch.matmul(attn_weights, value)

        return attn_output, attn_weights

    def _split_heads(self, tensor, num_heads, attn_head_size):
        """
        Splits hidden_size dim into attn_head_size and num_heads
        """
        new_shape = tensor.size()[:-1] + (num_heads, attn_head_size)
        tensor = tensor.view(new_shape)
        return tensor.permute(0, 2, 1, 3)  # (batch, head, seq_length, head_features)

    def _merge_heads(self, tensor, num_heads, attn_head_size):
        """
        Merges attn_head_size dim and num_attn_heads dim into hidden_size
        """
        tensor = tensor.permute(0, 2, 1, 3).contiguous()
        new_shape = tensor.size()[:-2] + (num_heads * attn_head_size,)
        return tensor.view(new_shape)

    def forward(self, hidden_states, layer_past=None, attention_mask=None, head_mask=None, use_cache=False,
                output_attentions=False):
        query, key, value = self.c_attn(hidden_states).split(self.split_size, dim=2)

        query = self._split_heads(query, self.num_heads, self.head_dim)
        key = self._split_heads(key, self.num_heads, self.head_dim)
        value = self._split_heads(value, self.num_heads, self.head_dim)

        if layer_past is not None:
            past_key, past_value = layer_past
            key = torch.cat((past_key, key), dim=-2)
            value = torch.cat((past_value, value), dim=-2)

        if use_cache is True:
            present = (key, value)
        else:
            present = None

        attn_output, attn_weights = self._attn(query, key, value, attention_mask, head_mask)

        attn_output = self._merge_heads(attn_output, self.num_heads, self.head_dim)
        attn_output = self.c_proj(attn_output)
        attn_output = self.resid_dropout(attn_output)

        outputs = (attn_output, present)
        if output_attentions:
            outputs += (attn_weights,)

        return outputs  # a, present, (attentions)


class GPT2MLP(nn.Module):
    def __init__(self, intermediate_size, config):
        super().__init__()
        embed_dim = config.hidden_size
        self.c_fc = Conv1D(intermediate_size, embed_dim)
        self.c_proj = Conv1D(embed_dim, intermediate_size)
        self.act = NewGELUActivation()
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states):
        hidden_states = self.c_fc(hidden_states)
        hidden_states = self.act(hidden_states)
        hidden_states = self.c_proj(hidden_states)
        hidden_states = self.dropout(hidden_states)
        return hidden_states


class GPT2Block(nn.Module):
    def __init__(self, config, layer_idx=None):
        super().__init__()
        hidden_size = config.hidden_size
        inner_dim = config.n_inner if config.n_inner is not None else 4 * hidden_size

        self.ln_1 = nn.LayerNorm(hidden_size, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx=layer_idx)
        self.ln_2 = nn.LayerNorm(hidden_size, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(inner_dim, config)

    def forward(self, hidden_states, layer_past=None, attention_mask=None, head_mask=None, use_cache=False,
                output_attentions=False):
        residual = hidden_states
        hidden_states = self.ln_1(hidden_states)
        attn_outputs = self.attn(
            hidden_states,
            layer_past=layer_past,
            attention_mask=attention_mask,
            head_mask=head_mask,
            use_cache=use_cache,
            output_attentions=output_attentions,
        )
        attn_output = attn_outputs[0]  # output_attn: a, present, (attentions)
        outputs = attn_outputs[1:]
        # residual connection
        hidden_states = attn_output + residual

        residual = hidden_states
        hidden_states = self.ln_2(hidden_states)
        feed_forward_hidden_states = self.mlp(hidden_states)
        # residual connection
        hidden_states = residual + feed_forward_hidden_states

        if use_cache:
            outputs = (hidden_states,) + outputs
        else:
            outputs = (hidden_states,) + outputs[1:]

        return outputs  # hidden_states, present, (attentions, cross_attentions)


class GPT2PreTrainedModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config

    @property
    def dtype(self):
        return next(self.parameters()).dtype

    def post_init(self):
        self.apply(self._init_weights)

    def _init_weights(self, module):
        """Initialize the weights."""
        if isinstance(module, (nn.Linear, Conv1D)):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

        # Reinitialize selected weights subject to the OpenAI GPT-2 Paper Scheme:
        #   > A modified initialization which accounts for the accumulation on the residual path with model depth. Scale
        #   > the weights of residual layers at initialization by a factor of 1/√N where N is the # of residual layers.
        for name, p in module.named_parameters():
            if name == "c_proj.weight":
                # Special Scaled Initialization --> There are 2 Layer Norms per Transformer Block
                p.data.normal_(mean=0.0, std=(self.config.initializer_range / math.sqrt(2 * self.config.n_layer)))


class GPT2Model(GPT2PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_dim = config.hidden_size

        self.wte = nn.Embedding(config.vocab_size, self.embed_dim)
        self.wpe = nn.Embedding(config.max_position_embeddings, self.embed_dim)

        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        self.ln_f = nn.LayerNorm(self.embed_dim, eps=config.layer_norm_epsilon)

        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, position_ids=None, use_cache=None,
                output_attentions=False):
        input_shape = input_ids.size()
        input_ids = input_ids.view(-1, input_shape[-1])
        batch_size = input_ids.shape[0]
        device = input_ids.device

        if past_key_values is None:
            past_length = 0
            past_key_values = tuple([None] * len(self.h))
        else:
            past_length = past_key_values[0][0].size(-2)
        if position_ids is None:
            position_ids = torch.arange(past_length, input_shape[-1] + past_length, dtype=torch.long, device=device)
            position_ids = position_ids.unsqueeze(0)

        # GPT2Attention mask.
        if attention_mask is not None:
            attention_mask = attention_mask.view(batch_size, -1)
            # We create a 3D attention mask from a 2D tensor mask.
            # Sizes are [batch_size, 1, 1, to_seq_length]
            attention_mask = attention_mask[:, None, None, :]
            # Since attention_mask is 1.0 for positions we want to attend and 0.0 for
            # masked positions, this operation will create a tensor which is 0.0 for
            # positions we want to attend and the dtype's smallest value for masked positions.
            attention_mask = attention_mask.to(dtype=self.dtype)  # fp16 compatibility
            attention_mask = (1.0 - attention_mask) * torch.finfo(self.dtype).min

        inputs_embeds = self.wte(input_ids)
        position_embeds = self.wpe(position_ids)
        hidden_states = inputs_embeds + position_embeds
        hidden_states = self.drop(hidden_states)

        output_shape = (-1,) + input_shape[1:] + (hidden_states.size(-1),)

        presents = () if use_cache else None
        all_self_attentions = () if output_attentions else None
        for block, layer_past in zip(self.h, past_key_values):
            outputs = block(hidden_states, layer_past=layer_past, attention_mask=attention_mask, use_cache=use_cache,
                            output_attentions=output_attentions)
            hidden_states = outputs[0]
            if use_cache is True:
                presents = presents + (outputs[1],)
            if output_attentions:
                all_self_attentions = all_self_attentions + (outputs[2 if use_cache else 1],)

        hidden_states = self.ln_f(hidden_states)
        hidden_states = hidden_states.view(output_shape)
        return hidden_states, presents, all_self_attentions


class GPT2LMHeadModel(GPT2PreTrainedModel):
    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, position_ids=None, labels=None,
                use_cache=None, output_attentions=False):
        hidden_states, presents, attentions = self.transformer(
            input_ids, past_key_values=past_key_values, attention_mask=attention_mask, position_ids=position_ids,
            use_cache=use_cache, output_attentions=output_attentions,
        )
        lm_logits = self.lm_head(hidden_states)

        loss = None
        if labels is not None:
            # Shift so that tokens < n predict n
            shift_logits = lm_logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()
            # Flatten the tokens
            loss_fct = CrossEntropyLoss()
            loss = loss_fct(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))
        return {"loss": loss, "logits": lm_logits, "past_key_values": presents, "attentions": attentions}


def _get_linear_schedule_with_warmup_lr_lambda(current_step: int, *, num_warmup_steps: int, num_training_steps: int):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    lr_lambda = partial(
        _get_linear_schedule_with_warmup_lr_lambda,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
    )
    return LambdaLR(optimizer, lr_lambda, last_epoch)


# ---- the corpus: an order-1 Markov chain, each token mostly followed by one successor ----
VOCAB, BLOCK = 16, 24
successor = rng.permutation(VOCAB)


def sample_sequences(n, length):
    seqs = np.empty((n, length), dtype=np.int64)
    seqs[:, 0] = rng.integers(0, VOCAB, size=n)
    for t in range(1, length):
        noise = rng.random(n) < 0.1
        seqs[:, t] = np.where(noise, rng.integers(0, VOCAB, size=n), successor[seqs[:, t - 1]])
    return torch.from_numpy(seqs)


train_ids = sample_sequences(512, BLOCK)
valid_ids = sample_sequences(64, BLOCK)

config = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4)
model = GPT2LMHeadModel(config)

print("c_attn:", model.transformer.h[0].attn.c_attn)
print("bias buffer in state_dict:", "transformer.h.0.attn.bias" in model.state_dict(),
      "in buffers:", "transformer.h.0.attn.bias" in dict(model.named_buffers()))
print("lm_head tied:", model.lm_head.weight is model.transformer.wte.weight)
print("parameters:", sum(p.numel() for p in model.parameters()))
c_proj_std = torch.stack([blk.attn.c_proj.weight.std() for blk in model.transformer.h]).mean().item()
c_fc_std = torch.stack([blk.mlp.c_fc.weight.std() for blk in model.transformer.h]).mean().item()
print(f"c_proj std / c_fc std: {c_proj_std / c_fc_std:.2f}")

probe = torch.randn(4, 7, 32)
print("NewGELU == gelu(tanh):", torch.allclose(NewGELUActivation()(probe), F.gelu(probe, approximate="tanh"),
                                                atol=1e-6))
conv = model.transformer.h[0].mlp.c_fc
print("Conv1D == F.linear(weight.t()):", torch.allclose(conv(probe), F.linear(probe, conv.weight.t(), conv.bias),
                                                       atol=1e-6))

# run_clm: weight decay everywhere but biases and LayerNorm weights
no_decay = ["bias", "ln_1.weight", "ln_2.weight", "ln_f.weight"]
optimizer_grouped_parameters = [
    {
        "params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
        "weight_decay": 0.01,
    },
    {
        "params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
        "weight_decay": 0.0,
    },
]
print("group sizes:", [len(g["params"]) for g in optimizer_grouped_parameters])
optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=3e-3)
num_epochs, per_device_batch_size = 4, 32
num_update_steps_per_epoch = math.ceil(len(train_ids) / per_device_batch_size)
max_train_steps = num_epochs * num_update_steps_per_epoch
lr_scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=8, num_training_steps=max_train_steps)

completed_steps = 0
for epoch in range(num_epochs):
    model.train()
    perm = torch.randperm(len(train_ids))
    total_loss = 0.0
    for step in range(num_update_steps_per_epoch):
        batch = train_ids[perm[step * per_device_batch_size:(step + 1) * per_device_batch_size]]
        outputs = model(input_ids=batch, labels=batch)
        loss = outputs["loss"]
        total_loss += loss.detach().float()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        completed_steps += 1

    model.eval()
    losses = []
    with torch.no_grad():
        for i in range(0, len(valid_ids), 32):
            batch = valid_ids[i:i + 32]
            outputs = model(input_ids=batch, labels=batch)
            losses.append(outputs["loss"].repeat(batch.size(0)))
    losses = torch.cat(losses)
    eval_loss = torch.mean(losses)
    try:
        perplexity = math.exp(eval_loss)
    except OverflowError:
        perplexity = float("inf")
    print(f"epoch {epoch}: train_loss {total_loss.item() / num_update_steps_per_epoch:.4f} "
          f"eval_loss {eval_loss.item():.4f} perplexity: {perplexity:.3f} lr {lr_scheduler.get_last_lr()[0]:.6f}")

print("steps:", completed_steps, "final lr:", lr_scheduler.get_last_lr())


# ---- generation: greedy decoding with and without past_key_values ----
@torch.no_grad()
def greedy_generate(model, input_ids, max_new_tokens, use_cache=True):
    past_key_values = None
    for _ in range(max_new_tokens):
        model_inputs = input_ids[:, -1:] if past_key_values is not None else input_ids
        outputs = model(input_ids=model_inputs, past_key_values=past_key_values, use_cache=use_cache)
        next_token_logits = outputs["logits"][:, -1, :]
        if use_cache:
            past_key_values = outputs["past_key_values"]
        next_tokens = torch.argmax(next_token_logits, dim=-1)
        input_ids = torch.cat([input_ids, next_tokens[:, None]], dim=-1)
    return input_ids, past_key_values


prompt = valid_ids[:6, :4]
cached, past = greedy_generate(model, prompt, 12, use_cache=True)
plain, _ = greedy_generate(model, prompt, 12, use_cache=False)
print("cached == uncached:", torch.equal(cached, plain))
print("past shapes:", len(past), tuple(past[0][0].shape))
follows = (cached[:, 4:] == torch.from_numpy(successor)[cached[:, 3:-1]]).float().mean().item()
print(f"generated tokens following the chain: {follows:.3f}")

# left-padded batch scoring: the padded rows must score their real tokens as the unpadded ones
with torch.no_grad():
    rows = valid_ids[:3, :10]
    attention_mask = torch.ones(3, 12, dtype=torch.long)
    attention_mask[:, :2] = 0
    padded = torch.cat([torch.zeros(3, 2, dtype=torch.long), rows], dim=1)
    position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
    padded_logits = model(input_ids=padded, attention_mask=attention_mask, position_ids=position_ids)["logits"]
    plain_logits = model(input_ids=rows)["logits"]
    pad_gap = (padded_logits[:, 2:] - plain_logits).abs().max().item()
    print("left padding agrees:", pad_gap < 1e-4)
    out = model(input_ids=rows, output_attentions=True)
    attn = out["attentions"][0]
    print("attention rows sum to 1:", torch.allclose(attn.sum(-1), torch.ones_like(attn.sum(-1)), atol=1e-5),
          "upper triangle zero:", bool((attn.triu(1) == 0).all()))

print(f"FINAL eval_loss={eval_loss.item():.4f} perplexity={perplexity:.4f} follows={follows:.4f}")
