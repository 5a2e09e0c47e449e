"""DeBERTa-v2's disentangled attention (HF modeling_deberta_v2, microsoft/DeBERTa) on a tiny MLM.

``build_relative_position`` from ``torch.arange`` differences, ``make_log_bucket_position`` (``torch.sign``,
``torch.where((rel < mid) & (rel > -mid), torch.tensor(mid - 1).type_as(rel), torch.abs(rel))``,
``torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)) + mid``),
``transpose_for_scores`` into ``(batch * heads, seq, d)`` for ``torch.bmm``, content-to-position and
position-to-content scores gathered by ``torch.gather(c2p_att, dim=-1, index=c2p_pos.squeeze(0).expand([...]))``
on ``torch.clamp(relative_pos + att_span, 0, att_span * 2 - 1)`` (against an advanced-indexing + ``einsum``
reference), the ``scale_factor`` scale ``torch.sqrt(torch.tensor(d, dtype=torch.float) * scale_factor)``,
shared position keys through ``query_proj``/``key_proj`` of the LayerNorm'd relative embeddings with
``.repeat(b, 1, 1)``, the ``XSoftmax`` ``autograd.Function`` (``~mask`` filled with ``torch.finfo(dtype).min``,
``masked_fill_`` of the output, backward ``output * (grad - (grad * output).sum(-1, keepdim=True))``) against
``F.softmax`` and ``gradcheck``, the extended mask ``m.unsqueeze(1).unsqueeze(2) * m...unsqueeze(-1)``; with
relative attention off the layer equals ``F.scaled_dot_product_attention``; the MLM (tied decoder, GELU head,
AdamW) on paired tokens learns with relative positions what the position-free model cannot.
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

PAD, MASK, VOCAB = 0, 1, 18


class DebertaV2Config:
    def __init__(self, relative_attention=True, vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64, max_relative_positions=16, position_buckets=8,
                 pos_att_type=("c2p", "p2c"), share_att_key=True, layer_norm_eps=1e-7, hidden_dropout_prob=0.0,
                 attention_probs_dropout_prob=0.0):
        self.relative_attention = relative_attention
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_relative_positions = max_relative_positions
        self.position_buckets = position_buckets
        self.pos_att_type = list(pos_att_type)
        self.share_att_key = share_att_key
        self.layer_norm_eps = layer_norm_eps
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob


def make_log_bucket_position(relative_pos, bucket_size, max_position):
    sign = torch.sign(relative_pos)
    mid = bucket_size // 2
    abs_pos = torch.where(
        (relative_pos < mid) & (relative_pos > -mid),
        torch.tensor(mid - 1).type_as(relative_pos),
        torch.abs(relative_pos),
    )
    log_pos = (
        torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)) + mid
    )
    bucket_pos = torch.where(abs_pos <= mid, relative_pos.type_as(log_pos), log_pos * sign)
    return bucket_pos


def build_relative_position(query_layer, key_layer, bucket_size=-1, max_position=-1):
    query_size = query_layer.size(-2)
    key_size = key_layer.size(-2)
    q_ids = torch.arange(query_size, dtype=torch.long, device=query_layer.device)
    k_ids = torch.arange(key_size, dtype=torch.long, device=key_layer.device)
    rel_pos_ids = q_ids[:, None] - k_ids[None, :]
    if bucket_size > 0 and max_position > 0:
        rel_pos_ids = make_log_bucket_position(rel_pos_ids, bucket_size, max_position)
    rel_pos_ids = rel_pos_ids.to(torch.long)
    rel_pos_ids = rel_pos_ids[:query_size, :]
    rel_pos_ids = rel_pos_ids.unsqueeze(0)
    return rel_pos_ids


class XSoftmax(torch.autograd.Function):
    """Masked softmax, optimised for memory in the original repository."""

    @staticmethod
    def forward(ctx, input, mask, dim):
        ctx.dim = dim
        rmask = ~(mask.to(torch.bool))
        output = input.masked_fill(rmask, torch.tensor(torch.finfo(input.dtype).min))
        output = torch.softmax(output, ctx.dim)
        output.masked_fill_(rmask, 0)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        inputGrad = output * (grad_output - (grad_output * output).sum(ctx.dim, keepdim=True))
        return inputGrad, None, None


def scaled_size_sqrt(query_layer, scale_factor):
    return torch.sqrt(torch.tensor(query_layer.size(-1), dtype=torch.float) * scale_factor)


class DisentangledSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query_proj = nn.Linear(config.hidden_size, self.all_head_size, bias=True)
        self.key_proj = nn.Linear(config.hidden_size, self.all_head_size, bias=True)
        self.value_proj = nn.Linear(config.hidden_size, self.all_head_size, bias=True)

        self.share_att_key = config.share_att_key
        self.pos_att_type = config.pos_att_type if config.pos_att_type is not None else []
        self.relative_attention = config.relative_attention

        if self.relative_attention:
            self.position_buckets = config.position_buckets
            self.max_relative_positions = config.max_relative_positions
            self.pos_ebd_size = self.max_relative_positions
            if self.position_buckets > 0:
                self.pos_ebd_size = self.position_buckets
            self.pos_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def transpose_for_scores(self, x, attention_heads):
        new_x_shape = x.size()[:-1] + (attention_heads, -1)
        x = x.view(new_x_shape)
        return x.permute(0, 2, 1, 3).contiguous().view(-1, x.size(1), x.size(-1))

    def forward(self, hidden_states, attention_mask, relative_pos=None, rel_embeddings=None):
        query_layer = self.transpose_for_scores(self.query_proj(hidden_states), self.num_attention_heads)
        key_layer = self.transpose_for_scores(self.key_proj(hidden_states), self.num_attention_heads)
        value_layer = self.transpose_for_scores(self.value_proj(hidden_states), self.num_attention_heads)

        rel_att = None
        # Take the dot product between "query" and "key" to get the raw attention scores.
        scale_factor = 1
        if "c2p" in self.pos_att_type:
            scale_factor += 1
        if "p2c" in self.pos_att_type:
            scale_factor += 1
        if not self.relative_attention:
            scale_factor = 1
        scale = scaled_size_sqrt(query_layer, scale_factor)
        attention_scores = torch.bmm(query_layer, key_layer.transpose(-1, -2) / scale.to(dtype=query_layer.dtype))
        if self.relative_attention:
            rel_embeddings = self.pos_dropout(rel_embeddings)
            rel_att = self.disentangled_attention_bias(query_layer, key_layer, relative_pos, rel_embeddings,
                                                       scale_factor)

        if rel_att is not None:
            attention_scores = attention_scores + rel_att
        attention_scores = attention_scores.view(
            -1, self.num_attention_heads, attention_scores.size(-2), attention_scores.size(-1)
        )

        attention_probs = XSoftmax.apply(attention_scores, attention_mask, -1)
        attention_probs = self.dropout(attention_probs)
        context_layer = torch.bmm(
            attention_probs.view(-1, attention_probs.size(-2), attention_probs.size(-1)), value_layer
        )
        context_layer = (
            context_layer.view(-1, self.num_attention_heads, context_layer.size(-2), context_layer.size(-1))
            .permute(0, 2, 1, 3)
            .contiguous()
        )
        new_context_layer_shape = context_layer.size()[:-2] + (-1,)
        context_layer = context_layer.view(new_context_layer_shape)
        return context_layer, attention_probs

    def positional_layers(self, query_layer, rel_embeddings):
        att_span = self.pos_ebd_size
        rel_embeddings = rel_embeddings[0 : att_span * 2, :].unsqueeze(0)
        pos_query_layer = self.transpose_for_scores(
            self.query_proj(rel_embeddings), self.num_attention_heads
        ).repeat(query_layer.size(0) // self.num_attention_heads, 1, 1)
        pos_key_layer = self.transpose_for_scores(self.key_proj(rel_embeddings), self.num_attention_heads).repeat(
            query_layer.size(0) // self.num_attention_heads, 1, 1
        )
        return pos_query_layer, pos_key_layer

    def disentangled_attention_bias(self, query_layer, key_layer, relative_pos, rel_embeddings, scale_factor):
        if relative_pos is None:
            relative_pos = build_relative_position(
                query_layer, key_layer, bucket_size=self.position_buckets, max_position=self.max_relative_positions
            )
        if relative_pos.dim() == 2:
            relative_pos = relative_pos.unsqueeze(0).unsqueeze(0)
        elif relative_pos.dim() == 3:
            relative_pos = relative_pos.unsqueeze(1)
        # bsz x height x query x key
        elif relative_pos.dim() != 4:
            raise ValueError(f"Relative position ids must be of dim 2 or 3 or 4. {relative_pos.dim()}")

        att_span = self.pos_ebd_size
        relative_pos = relative_pos.to(device=query_layer.device, dtype=torch.long)
        pos_query_layer, pos_key_layer = self.positional_layers(query_layer, rel_embeddings)

        score = 0
        # content->position
        if "c2p" in self.pos_att_type:
            scale = scaled_size_sqrt(pos_key_layer, scale_factor)
            c2p_att = torch.bmm(query_layer, pos_key_layer.transpose(-1, -2))
            c2p_pos = torch.clamp(relative_pos + att_span, 0, att_span * 2 - 1)
            c2p_att = torch.gather(
                c2p_att,
                dim=-1,
                index=c2p_pos.squeeze(0).expand([query_layer.size(0), query_layer.size(1), relative_pos.size(-1)]),
            )
            score += c2p_att / scale.to(dtype=c2p_att.dtype)

        # position->content
        if "p2c" in self.pos_att_type:
            scale = scaled_size_sqrt(pos_query_layer, scale_factor)
            r_pos = relative_pos
            p2c_pos = torch.clamp(-r_pos + att_span, 0, att_span * 2 - 1)
            p2c_att = torch.bmm(key_layer, pos_query_layer.transpose(-1, -2))
            p2c_att = torch.gather(
                p2c_att,
                dim=-1,
                index=p2c_pos.squeeze(0).expand([query_layer.size(0), key_layer.size(-2), key_layer.size(-2)]),
            ).transpose(-1, -2)
            score += p2c_att / scale.to(dtype=p2c_att.dtype)

        return score


class DebertaV2SelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states


class DebertaV2Layer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = DisentangledSelfAttention(config)
        self.attention_output = DebertaV2SelfOutput(config)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)

    def forward(self, hidden_states, attention_mask, relative_pos=None, rel_embeddings=None):
        self_output, att_matrix = self.self(hidden_states, attention_mask, relative_pos=relative_pos,
                                            rel_embeddings=rel_embeddings)
        attention_output = self.attention_output(self_output, hidden_states)
        intermediate_output = F.gelu(self.intermediate(attention_output))
        layer_output = self.LayerNorm(self.output(intermediate_output) + attention_output)
        return layer_output, att_matrix


class DebertaV2Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([DebertaV2Layer(config) for _ in range(config.num_hidden_layers)])
        self.relative_attention = config.relative_attention
        if self.relative_attention:
            self.max_relative_positions = config.max_relative_positions
            self.position_buckets = config.position_buckets
            pos_ebd_size = self.max_relative_positions * 2
            if self.position_buckets > 0:
                pos_ebd_size = self.position_buckets * 2
            self.rel_embeddings = nn.Embedding(pos_ebd_size, config.hidden_size)
            self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps, elementwise_affine=True)

    def get_rel_embedding(self):
        rel_embeddings = self.rel_embeddings.weight if self.relative_attention else None
        if rel_embeddings is not None:
            rel_embeddings = self.LayerNorm(rel_embeddings)
        return rel_embeddings

    def get_attention_mask(self, attention_mask):
        if attention_mask.dim() <= 2:
            extended_attention_mask = attention_mask.unsqueeze(1).unsqueeze(2)
            attention_mask = extended_attention_mask * extended_attention_mask.squeeze(-2).unsqueeze(-1)
        elif attention_mask.dim() == 3:
            attention_mask = attention_mask.unsqueeze(1)
        return attention_mask

    def get_rel_pos(self, hidden_states):
        if self.relative_attention:
            return build_relative_position(hidden_states, hidden_states, bucket_size=self.position_buckets,
                                           max_position=self.max_relative_positions)
        return None

    def forward(self, hidden_states, attention_mask):
        attention_mask = self.get_attention_mask(attention_mask)
        relative_pos = self.get_rel_pos(hidden_states)
        rel_embeddings = self.get_rel_embedding() if self.relative_attention else None
        for layer_module in self.layer:
            hidden_states, _ = layer_module(hidden_states, attention_mask, relative_pos=relative_pos,
                                            rel_embeddings=rel_embeddings)
        return hidden_states


class DebertaV2ForMaskedLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        # position_biased_input=False: DeBERTa-v2 adds no absolute position embeddings
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=PAD)
        self.embed_norm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.encoder = DebertaV2Encoder(config)
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def forward(self, input_ids, attention_mask, labels=None):
        embeddings = self.embed_norm(self.word_embeddings(input_ids))
        embeddings = embeddings * attention_mask.unsqueeze(-1).to(embeddings.dtype)
        sequence_output = self.encoder(embeddings, attention_mask)
        hidden = self.transform_norm(F.gelu(self.transform(sequence_output)))
        logits = torch.matmul(hidden, self.word_embeddings.weight.t()) + self.bias
        loss = None
        if labels is not None:
            loss = nn.CrossEntropyLoss()(logits.view(-1, self.config.vocab_size), labels.view(-1))
        return loss, logits


def make_batch(batch_size, pairs_min=3, pairs_max=6):
    """Tokens come in equal pairs (a a b b ...); one token per sequence is masked, the target is its twin."""
    length = 2 * pairs_max
    input_ids = np.full((batch_size, length), PAD, dtype=np.int64)
    labels = np.full((batch_size, length), -100, dtype=np.int64)
    for i in range(batch_size):
        pairs = rng.integers(pairs_min, pairs_max + 1)
        tokens = np.repeat(rng.integers(2, VOCAB, size=pairs), 2)
        input_ids[i, :2 * pairs] = tokens
        position = rng.integers(0, 2 * pairs)
        labels[i, position] = tokens[position]
        input_ids[i, position] = MASK
    input_ids = torch.from_numpy(input_ids)
    return input_ids, (input_ids != PAD).long(), torch.from_numpy(labels)


# the log buckets of relative positions
relative = build_relative_position(torch.zeros(1, 12, 4), torch.zeros(1, 12, 4), bucket_size=8, max_position=16)
print(f"relative positions {tuple(relative.shape)} {relative.dtype}, row 0 {relative[0, 0].tolist()}")
print(f"row 11 {relative[0, 11].tolist()}")
buckets = make_log_bucket_position(torch.arange(-40, 41), 8, 16)
print(f"buckets span [{int(buckets.min())}, {int(buckets.max())}] dtype {buckets.dtype}")

# XSoftmax against F.softmax on the valid entries, values and gradients, and gradcheck of its backward
scores = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
valid = torch.from_numpy(rng.random((2, 1, 5, 5)) > 0.3)
probs = XSoftmax.apply(scores, valid, -1)
reference = F.softmax(scores.masked_fill(~valid, -math.inf), dim=-1).nan_to_num(0.0)
weights = torch.randn(2, 3, 5, 5, dtype=torch.float64)
(grad_x,) = torch.autograd.grad((probs * weights).sum(), scores)
(grad_ref,) = torch.autograd.grad((reference * weights).sum(), scores)
xsoftmax_err = max((probs - reference).abs().max().item(), (grad_x - grad_ref).abs().max().item())
xsoftmax_ok = torch.autograd.gradcheck(lambda s: XSoftmax.apply(s, valid, -1), (scores,))
print(f"XSoftmax vs softmax err {xsoftmax_err:.2e}, gradcheck {xsoftmax_ok}")

# the gathered c2p/p2c scores against advanced indexing
config = DebertaV2Config()
attention = DisentangledSelfAttention(config)
rel_embeddings = nn.LayerNorm(config.hidden_size)(torch.randn(2 * config.position_buckets, config.hidden_size))
hidden = torch.randn(3, 10, config.hidden_size)
query_layer = attention.transpose_for_scores(attention.query_proj(hidden), config.num_attention_heads)
key_layer = attention.transpose_for_scores(attention.key_proj(hidden), config.num_attention_heads)
with torch.no_grad():
    bias = attention.disentangled_attention_bias(query_layer, key_layer, None, rel_embeddings, 3)
    pos_query_layer, pos_key_layer = attention.positional_layers(query_layer, rel_embeddings)
    rel = build_relative_position(query_layer, key_layer, 8, 16)[0]
    index = torch.clamp(rel + attention.pos_ebd_size, 0, attention.pos_ebd_size * 2 - 1)
    c2p = torch.einsum("bid,bijd->bij", query_layer, pos_key_layer[:, index])
    p2c = torch.einsum("bjd,bijd->bij", key_layer, pos_query_layer[:, index])
    gather_err = (bias - (c2p + p2c) / math.sqrt(query_layer.size(-1) * 3)).abs().max().item()
print(f"disentangled bias {tuple(bias.shape)}, gather vs indexing err {gather_err:.2e}")

# with relative attention off the layer is plain scaled dot-product attention
plain = DisentangledSelfAttention(DebertaV2Config(relative_attention=False))
input_ids, attention_mask, _ = make_batch(4)
hidden = torch.randn(4, input_ids.size(1), 32)
mask4 = DebertaV2Encoder(DebertaV2Config(relative_attention=False)).get_attention_mask(attention_mask)
context, _ = plain(hidden, mask4)


def heads(x):
    return x.view(4, -1, 2, 16).transpose(1, 2)


sdpa = F.scaled_dot_product_attention(heads(plain.query_proj(hidden)), heads(plain.key_proj(hidden)),
                                      heads(plain.value_proj(hidden)),
                                      attn_mask=attention_mask.bool()[:, None, None, :])
sdpa = sdpa.transpose(1, 2).reshape(4, -1, 32)
rows = attention_mask.bool()
plain_err = (context[rows] - sdpa[rows]).abs().max().item()
padded_zero = bool((context[~rows] == 0).all().item())
print(f"positions off: disentangled vs sdpa err {plain_err:.2e}, XSoftmax zeroes padded rows {padded_zero}")


def train(model, steps=150):
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    for step in range(1, steps + 1):
        input_ids, attention_mask, labels = make_batch(32)
        loss, _ = model(input_ids, attention_mask, labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            print(f"  step {step}: loss {loss.item():.4f}")
    return model


@torch.no_grad()
def evaluate(model, batches=4):
    model.eval()
    correct = total = 0
    losses = []
    for _ in range(batches):
        input_ids, attention_mask, labels = make_batch(64)
        loss, logits = model(input_ids, attention_mask, labels)
        losses.append(loss)
        target = labels != -100
        correct += (logits.argmax(-1)[target] == labels[target]).sum().item()
        total += target.sum().item()
    model.train()
    return torch.stack(losses).mean().item(), correct / total


print("deberta (relative c2p + p2c):")
deberta = train(DebertaV2ForMaskedLM(DebertaV2Config()))
print(f"  parameters {sum(p.numel() for p in deberta.parameters())}")
deberta_loss, deberta_acc = evaluate(deberta)
print("plain attention (positions off):")
baseline = train(DebertaV2ForMaskedLM(DebertaV2Config(relative_attention=False)))
print(f"  parameters {sum(p.numel() for p in baseline.parameters())}")
plain_loss, plain_acc = evaluate(baseline)
print(f"masked-token accuracy: deberta {deberta_acc:.4f} (loss {deberta_loss:.4f}), "
      f"plain {plain_acc:.4f} (loss {plain_loss:.4f})")
print(f"FINAL deberta_loss={deberta_loss:.4f} deberta_acc={deberta_acc:.4f} plain_acc={plain_acc:.4f} "
      f"xsoftmax_err={xsoftmax_err:.6f} gather_err={gather_err:.6f} plain_err={plain_err:.6f}")
