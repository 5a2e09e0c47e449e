"""HF T5 (transformers' modeling_t5) at tiny sizes, trained on a copy task and decoded greedily.

``T5Attention._relative_position_bucket`` as modeling_t5 writes it (``torch.abs``, ``torch.log(
relative_position.float() / max_exact) / math.log(max_distance / max_exact)``, ``.to(torch.long)``,
``torch.min(..., torch.full_like(...))``, ``torch.where(is_small, ...)``, the bidirectional and the
causal forms), ``compute_bias`` with ``nn.Embedding(num_buckets, n_heads)`` and ``permute([2, 0, 1]).
unsqueeze(0)``, attention without the 1/sqrt(d) scale, the bias computed by the first layer and
passed on, an extended mask added as ``(1.0 - mask) * torch.finfo(dtype).min``, ``T5LayerNorm``
(RMS, no bias, variance in float32), ``T5DenseGatedActDense`` with ``gelu_new`` (the tanh form),
an encoder-decoder sharing one embedding, ``_shift_right`` (``input_ids.new_zeros``,
``[..., 1:] = input_ids[..., :-1].clone()``, ``masked_fill_(== -100, pad)``), the tied head's
``d_model ** -0.5`` rescale, ``CrossEntropyLoss(ignore_index=-100)``, Adam training and greedy decoding.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

PAD, EOS, VOCAB = 0, 1, 12


class NewGELUActivation(nn.Module):
    def forward(self, input):
        return 0.5 * input * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (input + 0.044715 * torch.pow(input, 3.0))))


class T5Config:
    def __init__(self, vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                 relative_attention_num_buckets=8, relative_attention_max_distance=16, dropout_rate=0.0,
                 layer_norm_epsilon=1e-6, is_decoder=False, pad_token_id=PAD, decoder_start_token_id=PAD):
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.d_kv = d_kv
        self.d_ff = d_ff
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.is_decoder = is_decoder
        self.pad_token_id = pad_token_id
        self.decoder_start_token_id = decoder_start_token_id


class T5LayerNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        """Construct a layernorm module in the T5 style. No bias and no subtraction of mean."""
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        # T5 uses a layer_norm which only scales and doesn't shift; the variance is computed in fp32
        variance = hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)

        if self.weight.dtype in [torch.float16, torch.bfloat16]:
            hidden_states = hidden_states.to(self.weight.dtype)

        return self.weight * hidden_states


class T5DenseGatedActDense(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = NewGELUActivation()

    def forward(self, hidden_states):
        hidden_gelu = self.act(self.wi_0(hidden_states))
        hidden_linear = self.wi_1(hidden_states)
        hidden_states = hidden_gelu * hidden_linear
        hidden_states = self.dropout(hidden_states)
        if (
            isinstance(self.wo.weight, torch.Tensor)
            and hidden_states.dtype != self.wo.weight.dtype
            and self.wo.weight.dtype != torch.int8
        ):
            hidden_states = hidden_states.to(self.wo.weight.dtype)
        hidden_states = self.wo(hidden_states)
        return hidden_states


class T5LayerFF(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.DenseReluDense = T5DenseGatedActDense(config)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden_states):
        forwarded_states = self.layer_norm(hidden_states)
        forwarded_states = self.DenseReluDense(forwarded_states)
        hidden_states = hidden_states + self.dropout(forwarded_states)
        return hidden_states


class T5Attention(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False):
        super().__init__()
        self.is_decoder = config.is_decoder
        self.has_relative_attention_bias = has_relative_attention_bias
        self.relative_attention_num_buckets = config.relative_attention_num_buckets
        self.relative_attention_max_distance = config.relative_attention_max_distance
        self.d_model = config.d_model
        self.key_value_proj_dim = config.d_kv
        self.n_heads = config.num_heads
        self.dropout = config.dropout_rate
        self.inner_dim = self.n_heads * self.key_value_proj_dim

        self.q = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.k = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.v = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.o = nn.Linear(self.inner_dim, self.d_model, bias=False)

        if self.has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.relative_attention_num_buckets, self.n_heads)

    @staticmethod
    def _relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
        relative_buckets = 0
        if bidirectional:
            num_buckets //= 2
            relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
            relative_position = torch.abs(relative_position)
        else:
            relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
        # now relative_position is in the range [0, inf)

        # half of the buckets are for exact increments in positions
        max_exact = num_buckets // 2
        is_small = relative_position < max_exact

        # The other half of the buckets are for logarithmically bigger bins in positions up to max_distance
        relative_position_if_large = max_exact + (
            torch.log(relative_position.float() / max_exact)
            / math.log(max_distance / max_exact)
            * (num_buckets - max_exact)
        ).to(torch.long)
        relative_position_if_large = torch.min(
            relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1)
        )

        relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
        return relative_buckets

    def compute_bias(self, query_length, key_length, device=None):
        """Compute binned relative position bias"""
        if device is None:
            device = self.relative_attention_bias.weight.device
        context_position = torch.arange(query_length, dtype=torch.long, device=device)[:, None]
        memory_position = torch.arange(key_length, dtype=torch.long, device=device)[None, :]
        relative_position = memory_position - context_position  # shape (query_length, key_length)
        relative_position_bucket = self._relative_position_bucket(
            relative_position,  # shape (query_length, key_length)
            bidirectional=(not self.is_decoder),
            num_buckets=self.relative_attention_num_buckets,
            max_distance=self.relative_attention_max_distance,
        )
        values = self.relative_attention_bias(relative_position_bucket)  # shape (query_length, key_length, num_heads)
        values = values.permute([2, 0, 1]).unsqueeze(0)  # shape (1, num_heads, query_length, key_length)
        return values

    def forward(self, hidden_states, mask=None, key_value_states=None, position_bias=None):
        batch_size, seq_length = hidden_states.shape[:2]
        is_cross_attention = key_value_states is not None

        query_states = self.q(hidden_states).view(batch_size, -1, self.n_heads, self.key_value_proj_dim).transpose(1, 2)
        current_states = key_value_states if is_cross_attention else hidden_states
        key_states = self.k(current_states).view(batch_size, -1, self.n_heads, self.key_value_proj_dim).transpose(1, 2)
        value_states = self.v(current_states).view(batch_size, -1, self.n_heads, self.key_value_proj_dim).transpose(1, 2)

        # compute scores, equivalent of torch.einsum("bnqd,bnkd->bnqk", query_states, key_states)
        scores = torch.matmul(query_states, key_states.transpose(3, 2))

        if position_bias is None:
            key_length = key_states.shape[-2]
            if not self.has_relative_attention_bias:
                position_bias = torch.zeros(
                    (1, self.n_heads, seq_length, key_length), device=scores.device, dtype=scores.dtype
                )
            else:
                position_bias = self.compute_bias(seq_length, key_length, device=scores.device)

            if mask is not None:
                causal_mask = mask[:, :, :, : key_states.shape[-2]]
                position_bias = position_bias + causal_mask

        position_bias_masked = position_bias
        scores += position_bias_masked

        # (batch_size, n_heads, seq_length, key_length)
        attn_weights = nn.functional.softmax(scores.float(), dim=-1).type_as(scores)
        attn_weights = nn.functional.dropout(attn_weights, p=self.dropout, training=self.training)

        attn_output = torch.matmul(attn_weights, value_states)
        attn_output = attn_output.transpose(1, 2).contiguous()
        attn_output = attn_output.view(batch_size, -1, self.inner_dim)
        attn_output = self.o(attn_output)
        return attn_output, position_bias


class T5LayerSelfAttention(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False):
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_attention_bias=has_relative_attention_bias)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden_states, attention_mask=None, position_bias=None):
        normed_hidden_states = self.layer_norm(hidden_states)
        attention_output, position_bias = self.SelfAttention(
            normed_hidden_states, mask=attention_mask, position_bias=position_bias)
        hidden_states = hidden_states + self.dropout(attention_output)
        return hidden_states, position_bias


class T5LayerCrossAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.EncDecAttention = T5Attention(config, has_relative_attention_bias=False)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden_states, key_value_states, attention_mask=None, position_bias=None):
        normed_hidden_states = self.layer_norm(hidden_states)
        attention_output, position_bias = self.EncDecAttention(
            normed_hidden_states, mask=attention_mask, key_value_states=key_value_states, position_bias=position_bias)
        layer_output = hidden_states + self.dropout(attention_output)
        return layer_output, position_bias


class T5Block(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False):
        super().__init__()
        self.is_decoder = config.is_decoder
        self.layer = nn.ModuleList()
        self.layer.append(T5LayerSelfAttention(config, has_relative_attention_bias=has_relative_attention_bias))
        if self.is_decoder:
            self.layer.append(T5LayerCrossAttention(config))
        self.layer.append(T5LayerFF(config))

    def forward(self, hidden_states, attention_mask=None, position_bias=None, encoder_hidden_states=None,
                encoder_attention_mask=None, encoder_decoder_position_bias=None):
        hidden_states, position_bias = self.layer[0](hidden_states, attention_mask=attention_mask,
                                                     position_bias=position_bias)
        if self.is_decoder and encoder_hidden_states is not None:
            hidden_states, encoder_decoder_position_bias = self.layer[1](
                hidden_states, key_value_states=encoder_hidden_states, attention_mask=encoder_attention_mask,
                position_bias=encoder_decoder_position_bias)
        hidden_states = self.layer[-1](hidden_states)
        return hidden_states, position_bias, encoder_decoder_position_bias


class T5Stack(nn.Module):
    def __init__(self, config, embed_tokens=None):
        super().__init__()
        self.embed_tokens = embed_tokens
        self.is_decoder = config.is_decoder
        self.block = nn.ModuleList(
            [T5Block(config, has_relative_attention_bias=bool(i == 0)) for i in range(config.num_layers)]
        )
        self.final_layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, input_ids, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        inputs_embeds = self.embed_tokens(input_ids)
        batch_size, seq_length = input_ids.size()
        dtype = inputs_embeds.dtype
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, seq_length, device=inputs_embeds.device)
        if self.is_decoder:
            seq_ids = torch.arange(seq_length, device=inputs_embeds.device)
            causal = seq_ids[None, None, :].repeat(batch_size, seq_length, 1) <= seq_ids[None, :, None]
            extended = causal.to(attention_mask.dtype)[:, None, :, :] * attention_mask[:, None, None, :]
        else:
            extended = attention_mask[:, None, None, :]
        extended = extended.to(dtype=dtype)
        extended = (1.0 - extended) * torch.finfo(dtype).min

        encoder_extended = None
        if encoder_hidden_states is not None:
            if encoder_attention_mask is None:
                encoder_attention_mask = torch.ones(encoder_hidden_states.shape[:2], device=inputs_embeds.device)
            encoder_extended = (1.0 - encoder_attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

        position_bias = None
        encoder_decoder_position_bias = None
        hidden_states = self.dropout(inputs_embeds)
        for layer_module in self.block:
            hidden_states, position_bias, encoder_decoder_position_bias = layer_module(
                hidden_states, attention_mask=extended, position_bias=position_bias,
                encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_extended,
                encoder_decoder_position_bias=encoder_decoder_position_bias)
        hidden_states = self.final_layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)
        return hidden_states


class T5ForConditionalGeneration(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model_dim = config.d_model
        self.shared = nn.Embedding(config.vocab_size, config.d_model)

        encoder_config = T5Config(**{**vars(config), "is_decoder": False})
        self.encoder = T5Stack(encoder_config, self.shared)
        decoder_config = T5Config(**{**vars(config), "is_decoder": True})
        self.decoder = T5Stack(decoder_config, self.shared)

        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.shared.weight
        self._init_weights()

    def _init_weights(self):
        # the T5 initialisation (Mesh TensorFlow): factor 1.0 throughout
        factor = 1.0
        d_model, d_kv, n_heads, d_ff = self.config.d_model, self.config.d_kv, self.config.num_heads, self.config.d_ff
        self.shared.weight.data.normal_(mean=0.0, std=factor * 1.0)
        for module in self.modules():
            if isinstance(module, T5DenseGatedActDense):
                module.wi_0.weight.data.normal_(mean=0.0, std=factor * ((d_model) ** -0.5))
                module.wi_1.weight.data.normal_(mean=0.0, std=factor * ((d_model) ** -0.5))
                module.wo.weight.data.normal_(mean=0.0, std=factor * ((d_ff) ** -0.5))
            elif isinstance(module, T5Attention):
                module.q.weight.data.normal_(mean=0.0, std=factor * ((d_model * d_kv) ** -0.5))
                module.k.weight.data.normal_(mean=0.0, std=factor * (d_model ** -0.5))
                module.v.weight.data.normal_(mean=0.0, std=factor * (d_model ** -0.5))
                module.o.weight.data.normal_(mean=0.0, std=factor * ((n_heads * d_kv) ** -0.5))
                if module.has_relative_attention_bias:
                    module.relative_attention_bias.weight.data.normal_(mean=0.0, std=factor * ((d_model) ** -0.5))

    def _shift_right(self, input_ids):
        decoder_start_token_id = self.config.decoder_start_token_id
        pad_token_id = self.config.pad_token_id

        shifted_input_ids = input_ids.new_zeros(input_ids.shape)
        shifted_input_ids[..., 1:] = input_ids[..., :-1].clone()
        shifted_input_ids[..., 0] = decoder_start_token_id

        # replace possible -100 values in labels by `pad_token_id`
        shifted_input_ids.masked_fill_(shifted_input_ids == -100, pad_token_id)
        return shifted_input_ids

    def forward(self, input_ids, attention_mask=None, decoder_input_ids=None, labels=None, encoder_outputs=None):
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask=attention_mask)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self._shift_right(labels)
        sequence_output = self.decoder(decoder_input_ids, encoder_hidden_states=encoder_outputs,
                                       encoder_attention_mask=attention_mask)
        # Rescale output before projecting on vocab (tied embeddings)
        sequence_output = sequence_output * (self.model_dim ** -0.5)
        lm_logits = self.lm_head(sequence_output)

        loss = None
        if labels is not None:
            loss_fct = nn.CrossEntropyLoss(ignore_index=-100)
            loss = loss_fct(lm_logits.view(-1, lm_logits.size(-1)), labels.view(-1))
        return loss, lm_logits, encoder_outputs


def make_batch(n, min_len=3, max_len=7):
    """Copy task: the source is random tokens 2..VOCAB-1 then EOS, padded; labels copy it, -100 at the padding."""
    max_total = max_len + 1
    input_ids = np.full((n, max_total), PAD, dtype=np.int64)
    labels = np.full((n, max_total), -100, dtype=np.int64)
    for i in range(n):
        length = rng.integers(min_len, max_len + 1)
        tokens = rng.integers(2, VOCAB, size=length)
        input_ids[i, :length] = tokens
        input_ids[i, length] = EOS
        labels[i, :length + 1] = input_ids[i, :length + 1]
    input_ids = torch.from_numpy(input_ids)
    return input_ids, (input_ids != PAD).long(), torch.from_numpy(labels)


# the buckets for a span of relative positions, both directions
positions = torch.arange(-20, 21)
bidirectional = T5Attention._relative_position_bucket(positions, bidirectional=True, num_buckets=8, max_distance=16)
causal = T5Attention._relative_position_bucket(positions, bidirectional=False, num_buckets=8, max_distance=16)
print(f"bidirectional buckets {bidirectional.tolist()}")
print(f"causal buckets {causal.tolist()} dtype {bidirectional.dtype}")

config = T5Config()
model = T5ForConditionalGeneration(config)
bias = model.encoder.block[0].layer[0].SelfAttention.compute_bias(5, 7)
print(f"compute_bias shape {tuple(bias.shape)}, tied head {model.lm_head.weight is model.shared.weight}, "
      f"parameters {sum(p.numel() for p in model.parameters())}")

example = torch.tensor([[5, 6, 7, -100]])
print(f"shift_right {model._shift_right(example).tolist()}")

optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for step in range(1, 151):
    input_ids, attention_mask, labels = make_batch(16)
    loss, _, _ = model(input_ids, attention_mask=attention_mask, labels=labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: loss {loss.item():.4f}")


@torch.no_grad()
def greedy_decode(model, input_ids, attention_mask, max_length):
    model.eval()
    encoder_outputs = model.encoder(input_ids, attention_mask=attention_mask)
    decoder_input_ids = torch.full((input_ids.size(0), 1), model.config.decoder_start_token_id, dtype=torch.long)
    for _ in range(max_length):
        _, logits, _ = model(input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                             encoder_outputs=encoder_outputs)
        next_token = logits[:, -1, :].argmax(-1, keepdim=True)
        decoder_input_ids = torch.cat([decoder_input_ids, next_token], dim=-1)
    model.train()
    return decoder_input_ids[:, 1:]


input_ids, attention_mask, labels = make_batch(32)
with torch.no_grad():
    model.eval()
    eval_loss = model(input_ids, attention_mask=attention_mask, labels=labels)[0].item()
decoded = greedy_decode(model, input_ids, attention_mask, input_ids.size(1))
valid = labels != -100
token_acc = ((decoded == labels) & valid).sum().item() / valid.sum().item()
exact = ((decoded == labels) | ~valid).all(dim=1).float().mean().item()
print(f"greedy decode {tuple(decoded.shape)}: token accuracy {token_acc:.4f}, exact copies {exact:.4f}")
print(f"FINAL eval_loss={eval_loss:.4f} token_acc={token_acc:.4f} exact={exact:.4f}")
