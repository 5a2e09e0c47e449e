"""Medusa (Cai et al. 2024) in the layout of FasterDecoding/Medusa, on a frozen tiny Llama-style LM.

A synthetic language (an order-1 Markov chain over 16 tokens with peaked transitions) trains a tiny
Llama (``LlamaRMSNorm`` with its float32 variance and ``torch.rsqrt``, rotary embeddings with
``cos_cached``/``sin_cached`` buffers indexed by ``position_ids``, ``rotate_half``, a SiLU-gated MLP,
``_make_causal_mask`` by ``torch.full(finfo.min)`` + ``masked_fill_`` + ``torch.cat`` of past zeros
+ ``expand``). The base is then frozen and run under ``torch.inference_mode()``; its last hidden state,
``outputs[0].clone()``, feeds ``medusa_num_heads`` heads, each ``nn.Sequential(*([ResBlock(hidden)] *
medusa_num_layers), nn.Linear(hidden, vocab, bias=False))`` with ``ResBlock`` = ``x + SiLU(Linear(x))``
(weight ``zeros_``-initialised) and the last linear copied from ``lm_head`` by ``weight.data[:] =``.
train_legacy.py's loss: head ``i`` predicts token ``t + 2 + i`` (``logits[i, :, : -(2 + i)]`` against
``labels[..., 2 + i :]``, each ``CrossEntropyLoss``), with top-1 accuracies by ``topk(1)`` +
``eq(...).any(-1)``.

Decoding as medusa_model.py's ``medusa_generate`` at temperature 0: ``generate_medusa_buffers`` for a
sparse tree of ``medusa_choices`` (``torch.eye`` + column 0 + ancestor rows for the tree attention
mask, ``tree_indices`` as ``choice[-1] + TOPK * depth + 1``, ``medusa_position_ids``, and
``retrieve_indices`` padded with -2 and shifted by one behind a zero column), a preallocated KV cache
(``KVCache`` over one ``past_key_values_data`` tensor with ``current_length`` 0-d views of a long
tensor, ``narrow`` by a tensor length, ``index_select`` + ``copy_`` of the accepted path), the tree
mask written into the causal mask by ``mask[:, :, -L:, -L:][medusa_mask == 0] = mask.min()``,
``generate_candidates`` (``argmax`` of the base logits, ``topk`` per head, ``candidates[tree_indices]``,
``tree_candidates_ext[retrieve_indices]``), ``tree_decoding`` gathers by ``retrieve_indices``, and
``evaluate_posterior``'s greedy acceptance ``torch.cumprod(candidates[:, 1:] == argmax, dim=1).sum(1)``.

Checked: the tree mask's row sums are the depths plus one; Medusa's greedy output equals the base
model's plain greedy tokens exactly, before and after training the heads; the average accepted length
(tokens per base-model call) after training is above 1 and no lower than the untrained heads' (equal where
the greedy path is a fixed point the copied ``lm_head`` already predicts); and each head's loss falls.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import CrossEntropyLoss

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB, SEQ_LEN, N_SEQ = 16, 48, 384
HIDDEN, N_LAYERS, N_HEADS, INTERMEDIATE = 32, 2, 4, 64
MAX_POSITIONS = 96
TOPK = 4  # medusa/model/utils.py uses 10 for a 32k vocabulary
IGNORE_TOKEN_ID = -100
PROMPT_LEN, MAX_NEW = 8, 32

# a sparse tree over three heads (the shape of medusa_choices.py's mc_sim_7b_63, cut down)
medusa_choices = [[0], [1], [2], [0, 0], [0, 1], [1, 0], [2, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]]


# ----------------------------------------------------------------------------------- data
def make_language():
    logits = rng.normal(0.0, 4.0, size=(VOCAB, VOCAB))
    table = np.exp(logits)
    return table / table.sum(-1, keepdims=True)


def sample_corpus(table, n):
    seqs = np.zeros((n, SEQ_LEN), dtype=np.int64)
    seqs[:, 0] = rng.integers(0, VOCAB, size=n)
    for t in range(1, SEQ_LEN):
        probs = table[seqs[:, t - 1]]
        u = rng.random((n, 1))
        seqs[:, t] = np.minimum((probs.cumsum(-1) < u).sum(-1), VOCAB - 1)
    return torch.from_numpy(seqs)


table = make_language()
data = sample_corpus(table, N_SEQ)
print(f"corpus: {N_SEQ} sequences of {SEQ_LEN} tokens over {VOCAB} symbols")


# ----------------------------------------------------------------------------------- the base model
class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        t = torch.arange(max_position_embeddings, dtype=self.inv_freq.dtype)
        freqs = torch.einsum("i,j->ij", t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos()[None, None, :, :], persistent=False)
        self.register_buffer("sin_cached", emb.sin()[None, None, :, :], persistent=False)

    def forward(self, x, seq_len=None):
        return (
            self.cos_cached[:, :, :seq_len, ...].to(dtype=x.dtype),
            self.sin_cached[:, :, :seq_len, ...].to(dtype=x.dtype),
        )


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids):
    cos = cos.squeeze(1).squeeze(0)  # [seq_len, dim]
    sin = sin.squeeze(1).squeeze(0)
    cos = cos[position_ids].unsqueeze(1)  # [bs, 1, seq_len, dim]
    sin = sin[position_ids].unsqueeze(1)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


class KVCache:
    """medusa/model/kv_cache.py: a view of one preallocated buffer and a 0-d current length."""

    def __init__(self, data, current_length):
        self.data = data
        self.current_length = current_length

    @property
    def shape(self):
        return (self.data.shape[0], self.data.shape[1], self.current_length.item(), self.data.shape[3])

    def copy(self, indices, prev_length, dim=2):
        tgt = self.data.index_select(dim, indices)
        dst = self.data.narrow(dim, prev_length, tgt.shape[dim])
        dst.copy_(tgt, non_blocking=True)
        self.current_length.fill_(prev_length + tgt.shape[dim])

    def cat(self, tensor, dim=2):
        dst = self.data.narrow(dim, self.current_length, tensor.shape[dim])
        dst.copy_(tensor)
        self.current_length.add_(tensor.shape[dim])
        return torch.narrow(self.data, 2, 0, self.current_length)


def initialize_past_key_values(model):
    past_key_values_data = torch.zeros(
        N_LAYERS * 2, 1, N_HEADS, MAX_POSITIONS, HIDDEN // N_HEADS, dtype=model.lm_head.weight.dtype
    )
    current_length_data = torch.zeros(N_LAYERS * 2, dtype=torch.long, device="cpu")
    past_key_values = [] * N_LAYERS
    for i in range(N_LAYERS):
        past_key_values.append([KVCache(past_key_values_data[i * 2 + j], current_length_data[i * 2 + j]) for j in range(2)])
    return past_key_values, past_key_values_data, current_length_data


class LlamaAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.num_heads = N_HEADS
        self.head_dim = HIDDEN // N_HEADS
        self.q_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.k_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.v_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.o_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.rotary_emb = LlamaRotaryEmbedding(self.head_dim, max_position_embeddings=MAX_POSITIONS)

    def forward(self, hidden_states, attention_mask=None, position_ids=None, past_key_value=None):
        bsz, q_len, _ = hidden_states.size()
        query_states = self.q_proj(hidden_states).view(bsz, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(bsz, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(bsz, q_len, self.num_heads, self.head_dim).transpose(1, 2)

        kv_seq_len = key_states.shape[-2]
        if past_key_value is not None:
            kv_seq_len += past_key_value[0].shape[-2]
        cos, sin = self.rotary_emb(value_states, seq_len=kv_seq_len)
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin, position_ids)
        if past_key_value is not None:
            key_states = past_key_value[0].cat(key_states, dim=2)
            value_states = past_key_value[1].cat(value_states, dim=2)

        attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) / math.sqrt(self.head_dim)
        if attention_mask is not None:
            attn_weights = attn_weights + attention_mask
            attn_weights = torch.max(attn_weights, torch.tensor(torch.finfo(attn_weights.dtype).min))
        attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
        attn_output = torch.matmul(attn_weights, value_states)
        attn_output = attn_output.transpose(1, 2).reshape(bsz, q_len, HIDDEN)
        return self.o_proj(attn_output)


class LlamaMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(HIDDEN, INTERMEDIATE, bias=False)
        self.up_proj = nn.Linear(HIDDEN, INTERMEDIATE, bias=False)
        self.down_proj = nn.Linear(INTERMEDIATE, HIDDEN, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = LlamaAttention()
        self.mlp = LlamaMLP()
        self.input_layernorm = LlamaRMSNorm(HIDDEN)
        self.post_attention_layernorm = LlamaRMSNorm(HIDDEN)

    def forward(self, hidden_states, attention_mask=None, position_ids=None, past_key_value=None):
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states = self.self_attn(hidden_states, attention_mask, position_ids, past_key_value)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states)
        return residual + hidden_states


def _make_causal_mask(input_ids_shape, dtype, device, past_key_values_length=0):
    bsz, tgt_len = input_ids_shape
    mask = torch.full((tgt_len, tgt_len), torch.finfo(dtype).min, device=device)
    mask_cond = torch.arange(mask.size(-1), device=device)
    mask.masked_fill_(mask_cond < (mask_cond + 1).view(mask.size(-1), 1), 0)
    mask = mask.to(dtype)
    if past_key_values_length > 0:
        mask = torch.cat([torch.zeros(tgt_len, past_key_values_length, dtype=dtype, device=device), mask], dim=-1)
    return mask[None, None, :, :].expand(bsz, 1, tgt_len, tgt_len + past_key_values_length)


class LlamaModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList([LlamaDecoderLayer() for _ in range(N_LAYERS)])
        self.norm = LlamaRMSNorm(HIDDEN)
        self.medusa_mask = None

    def _prepare_decoder_attention_mask(self, input_shape, inputs_embeds, past_key_values_length):
        combined_attention_mask = None
        if input_shape[-1] > 1:
            combined_attention_mask = _make_causal_mask(
                input_shape, inputs_embeds.dtype, inputs_embeds.device, past_key_values_length=past_key_values_length
            )
        if self.medusa_mask is not None:
            medusa_mask = self.medusa_mask
            medusa_len = medusa_mask.size(-1)
            combined_attention_mask[:, :, -medusa_len:, -medusa_len:][medusa_mask == 0] = combined_attention_mask.min()
        return combined_attention_mask

    def forward(self, input_ids, past_key_values=None, position_ids=None):
        batch_size, seq_length = input_ids.shape
        past_key_values_length = 0
        if past_key_values is not None:
            past_key_values_length = past_key_values[0][0].shape[2]
        if position_ids is None:
            position_ids = torch.arange(past_key_values_length, seq_length + past_key_values_length, dtype=torch.long)
            position_ids = position_ids.unsqueeze(0).view(-1, seq_length)
        else:
            position_ids = position_ids.view(-1, seq_length).long()
        inputs_embeds = self.embed_tokens(input_ids)
        attention_mask = self._prepare_decoder_attention_mask((batch_size, seq_length), inputs_embeds, past_key_values_length)
        hidden_states = inputs_embeds
        for idx, decoder_layer in enumerate(self.layers):
            past_key_value = past_key_values[idx] if past_key_values is not None else None
            hidden_states = decoder_layer(hidden_states, attention_mask, position_ids, past_key_value)
        return (self.norm(hidden_states),)


class LlamaForCausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = LlamaModel()
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(self, input_ids, past_key_values=None, position_ids=None):
        return self.lm_head(self.model(input_ids, past_key_values, position_ids)[0])


base_model = LlamaForCausalLM()
opt = torch.optim.AdamW(base_model.parameters(), lr=3e-3, weight_decay=0.0)
for step in range(160):
    idx = torch.randint(0, N_SEQ, (32,))
    batch = data[idx]
    logits = base_model(batch)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 40 == 0 or step == 159:
        print(f"base step {step:3d} loss {loss.item():.4f}")
base_loss = loss.item()
base_model.eval()
base_model.requires_grad_(False)


# ----------------------------------------------------------------------------------- Medusa heads
class ResBlock(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.linear = nn.Linear(hidden_size, hidden_size)
        # Initialize as an identity mapping
        torch.nn.init.zeros_(self.linear.weight)
        # Use SiLU activation to keep consistent with the Llama model
        self.act = nn.SiLU()

    def forward(self, x):
        return x + self.act(self.linear(x))


class MedusaModel(nn.Module):
    def __init__(self, base_model, medusa_num_heads=3, medusa_num_layers=1):
        super().__init__()
        self.base_model = base_model
        self.hidden_size = base_model.lm_head.weight.shape[-1]
        self.vocab_size = base_model.lm_head.weight.shape[0]
        self.medusa = medusa_num_heads
        self.medusa_num_layers = medusa_num_layers
        self.medusa_head = nn.ModuleList(
            [
                nn.Sequential(
                    *([ResBlock(self.hidden_size)] * medusa_num_layers),
                    nn.Linear(self.hidden_size, self.vocab_size, bias=False),
                )
                for _ in range(medusa_num_heads)
            ]
        )
        for i in range(medusa_num_heads):
            # Initialize the weights of each medusa_head using the base model's weights
            self.medusa_head[i][-1].weight.data[:] = base_model.lm_head.weight.data[:]

    def forward(self, input_ids=None, past_key_values=None, output_orig=False, position_ids=None):
        with torch.inference_mode():
            outputs = self.base_model.model(input_ids, past_key_values=past_key_values, position_ids=position_ids)
            if output_orig:
                orig = self.base_model.lm_head(outputs[0])
        # Clone the output hidden states
        hidden_states = outputs[0].clone()
        medusa_logits = []
        for i in range(self.medusa):
            medusa_logits.append(self.medusa_head[i](hidden_states))
        if output_orig:
            return torch.stack(medusa_logits, dim=0), outputs, orig
        return torch.stack(medusa_logits, dim=0)


# ----------------------------------------------------------------------------------- tree buffers
def pad_path(path, length, pad_value=-2):
    return path + [pad_value] * (length - len(path))


def generate_medusa_buffers(medusa_choices, device="cpu"):
    sorted_medusa_choices = sorted(medusa_choices, key=lambda x: (len(x), x))
    medusa_len = len(sorted_medusa_choices) + 1

    depth_counts = []
    prev_depth = 0
    for path in sorted_medusa_choices:
        depth = len(path)
        if depth != prev_depth:
            depth_counts.append(0)
        depth_counts[depth - 1] += 1
        prev_depth = depth

    medusa_attn_mask = torch.eye(medusa_len, medusa_len)
    medusa_attn_mask[:, 0] = 1
    start = 0
    for i in range(len(depth_counts)):
        for j in range(depth_counts[i]):
            cur_medusa_choice = sorted_medusa_choices[start + j]
            if len(cur_medusa_choice) == 1:
                continue
            ancestor_idx = []
            for c in range(len(cur_medusa_choice) - 1):
                ancestor_idx.append(sorted_medusa_choices.index(cur_medusa_choice[: c + 1]) + 1)
            medusa_attn_mask[j + start + 1, ancestor_idx] = 1
        start += depth_counts[i]

    medusa_tree_indices = torch.zeros(medusa_len, dtype=torch.long)
    medusa_tree_indices[0] = 0
    start = 0
    for i in range(len(depth_counts)):
        for j in range(depth_counts[i]):
            cur_medusa_choice = sorted_medusa_choices[start + j]
            medusa_tree_indices[start + j + 1] = cur_medusa_choice[-1] + TOPK * i + 1
        start += depth_counts[i]

    medusa_position_ids = torch.zeros(medusa_len, dtype=torch.long)
    start = 0
    for i in range(len(depth_counts)):
        medusa_position_ids[start + 1 : start + depth_counts[i] + 1] = i + 1
        start += depth_counts[i]

    retrieve_indices_nest = []
    retrieve_paths = []
    for i in range(len(sorted_medusa_choices)):
        cur_medusa_choice = sorted_medusa_choices[-i - 1]
        retrieve_indice = []
        if cur_medusa_choice in retrieve_paths:
            continue
        else:
            for c in range(len(cur_medusa_choice)):
                retrieve_indice.append(sorted_medusa_choices.index(cur_medusa_choice[: c + 1]))
                retrieve_paths.append(cur_medusa_choice[: c + 1])
        retrieve_indices_nest.append(retrieve_indice)
    max_length = max([len(x) for x in retrieve_indices_nest])
    retrieve_indices = [pad_path(path, max_length) for path in retrieve_indices_nest]
    retrieve_indices = torch.tensor(retrieve_indices, dtype=torch.long)
    retrieve_indices = retrieve_indices + 1
    retrieve_indices = torch.cat([torch.zeros((retrieve_indices.shape[0], 1), dtype=torch.long), retrieve_indices], dim=1)

    medusa_buffers = {
        "medusa_attn_mask": medusa_attn_mask.unsqueeze(0).unsqueeze(0),
        "tree_indices": medusa_tree_indices,
        "medusa_position_ids": medusa_position_ids,
        "retrieve_indices": retrieve_indices,
    }
    medusa_buffers = {
        k: v.clone().to(device) if isinstance(v, torch.Tensor) else torch.tensor(v, device=device)
        for k, v in medusa_buffers.items()
    }
    return medusa_buffers


medusa_buffers = generate_medusa_buffers(medusa_choices)
tree_mask = medusa_buffers["medusa_attn_mask"][0, 0]
mask_ok = torch.equal(tree_mask.sum(1).long(), medusa_buffers["medusa_position_ids"] + 1)
print(f"tree: {tree_mask.shape[0]} nodes, {medusa_buffers['retrieve_indices'].shape[0]} paths "
      f"of length {medusa_buffers['retrieve_indices'].shape[1]}, mask rows = depth + 1: {mask_ok}")


# ----------------------------------------------------------------------------------- decoding
def reset_medusa_mode(model):
    model.base_model.model.medusa_mask = None


def initialize_medusa(input_ids, model, medusa_attn_mask, past_key_values):
    medusa_logits, outputs, logits = model(input_ids, past_key_values=past_key_values, output_orig=True)
    model.base_model.model.medusa_mask = medusa_attn_mask
    return medusa_logits, logits


def generate_candidates(medusa_logits, logits, tree_indices, retrieve_indices):
    # Greedy decoding: Select the most probable candidate from the original logits.
    candidates_logit = torch.argmax(logits[:, -1]).unsqueeze(0)
    # Extract the TOPK candidates from the medusa logits.
    candidates_medusa_logits = torch.topk(medusa_logits[:, 0, -1], TOPK, dim=-1).indices
    candidates = torch.cat([candidates_logit, candidates_medusa_logits.view(-1)], dim=-1)
    tree_candidates = candidates[tree_indices]
    tree_candidates_ext = torch.cat([tree_candidates, torch.zeros((1), dtype=torch.long, device=tree_candidates.device)], dim=0)
    cart_candidates = tree_candidates_ext[retrieve_indices]
    tree_candidates = tree_candidates.unsqueeze(0)
    return cart_candidates, tree_candidates


def tree_decoding(model, tree_candidates, past_key_values, medusa_position_ids, input_ids, retrieve_indices):
    position_ids = medusa_position_ids + input_ids.shape[1]
    tree_medusa_logits, outputs, tree_logits = model(
        tree_candidates, output_orig=True, past_key_values=past_key_values, position_ids=position_ids
    )
    logits = tree_logits[0, retrieve_indices]
    medusa_logits = tree_medusa_logits[:, 0, retrieve_indices]
    return medusa_logits, logits, outputs


def evaluate_posterior(logits, candidates):
    # Find the tokens that match the maximum logits for each position in the sequence
    posterior_mask = (candidates[:, 1:] == torch.argmax(logits[:, :-1], dim=-1)).int()
    candidates_accept_length = (torch.cumprod(posterior_mask, dim=1)).sum(dim=1)
    accept_length = candidates_accept_length.max()
    if accept_length == 0:
        best_candidate = torch.tensor(0, dtype=torch.long, device=candidates.device)
    else:
        best_candidate = torch.argmax(candidates_accept_length).to(torch.long)
    return best_candidate, accept_length


def update_inference_inputs(input_ids, candidates, best_candidate, accept_length, retrieve_indices, logits,
                            medusa_logits, new_token, past_key_values_data, current_length_data):
    prev_input_len = input_ids.shape[1]
    select_indices = retrieve_indices[best_candidate, : accept_length + 1] + prev_input_len
    input_ids = torch.cat([input_ids, candidates[None, best_candidate, : accept_length + 1]], dim=-1)
    tgt = past_key_values_data[..., select_indices, :]
    dst = past_key_values_data[..., prev_input_len : prev_input_len + tgt.shape[-2], :]
    dst.copy_(tgt, non_blocking=True)
    current_length_data.fill_(prev_input_len + tgt.shape[-2])
    logits = logits[None, best_candidate, accept_length : accept_length + 1]
    medusa_logits = medusa_logits[:, None, best_candidate, accept_length : accept_length + 1]
    new_token += accept_length + 1
    return input_ids, logits, medusa_logits, new_token


@torch.no_grad()
def medusa_generate(model, input_ids, max_new_tokens):
    past_key_values, past_key_values_data, current_length_data = initialize_past_key_values(model.base_model)
    current_length_data.zero_()
    reset_medusa_mode(model)
    input_len = input_ids.shape[1]
    medusa_logits, logits = initialize_medusa(input_ids, model, medusa_buffers["medusa_attn_mask"], past_key_values)
    new_token = 0
    steps = 0
    while new_token < max_new_tokens:
        candidates, tree_candidates = generate_candidates(
            medusa_logits, logits, medusa_buffers["tree_indices"], medusa_buffers["retrieve_indices"]
        )
        medusa_logits, logits, outputs = tree_decoding(
            model, tree_candidates, past_key_values, medusa_buffers["medusa_position_ids"], input_ids,
            medusa_buffers["retrieve_indices"],
        )
        best_candidate, accept_length = evaluate_posterior(logits, candidates)
        input_ids, logits, medusa_logits, new_token = update_inference_inputs(
            input_ids, candidates, best_candidate, accept_length, medusa_buffers["retrieve_indices"], logits,
            medusa_logits, new_token, past_key_values_data, current_length_data,
        )
        steps += 1
    reset_medusa_mode(model)
    return input_ids[0, input_len : input_len + max_new_tokens], int(new_token) / steps


@torch.no_grad()
def base_greedy(model, input_ids, max_new_tokens):
    for _ in range(max_new_tokens):
        next_token = model(input_ids)[:, -1].argmax(-1, keepdim=True)
        input_ids = torch.cat([input_ids, next_token], dim=-1)
    return input_ids[0, -max_new_tokens:]


prompts = [data[i, :PROMPT_LEN].unsqueeze(0) for i in range(6)]
references = [base_greedy(base_model, p, MAX_NEW) for p in prompts]


def decode_all(model):
    exact, accept = 0, []
    for prompt, reference in zip(prompts, references):
        tokens, mean_accept = medusa_generate(model, prompt, MAX_NEW)
        exact += int(torch.equal(tokens, reference))
        accept.append(mean_accept)
    return exact / len(prompts), sum(accept) / len(accept)


model = MedusaModel(base_model, medusa_num_heads=3, medusa_num_layers=1)
exact_before, accept_before = decode_all(model)
print(f"untrained heads: greedy match {exact_before:.3f}, tokens per step {accept_before:.3f}")


# ----------------------------------------------------------------------------------- training the heads
def compute_loss(model, input_ids, labels):
    logits = model(input_ids=input_ids)
    loss = 0
    loss_fct = CrossEntropyLoss()
    log = {}
    medusa = logits.shape[0]
    for i in range(medusa):
        medusa_logits = logits[i, :, : -(2 + i)].contiguous()
        medusa_labels = labels[..., 2 + i :].contiguous()
        medusa_logits = medusa_logits.view(-1, logits.shape[-1])
        medusa_labels = medusa_labels.view(-1)
        loss_i = loss_fct(medusa_logits, medusa_labels)
        loss += loss_i
        not_ignore = medusa_labels.ne(IGNORE_TOKEN_ID)
        medusa_labels = medusa_labels[not_ignore]
        for k in range(1, 2):
            _, topk = medusa_logits.topk(k, dim=-1)
            topk = topk[not_ignore]
            correct = topk.eq(medusa_labels.unsqueeze(-1)).any(-1)
            log[f"medusa{i}_top{k}"] = correct.float().mean().item()
        log[f"medusa{i}_loss"] = loss_i.item()
    return loss, log


optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"trainable parameters: {trainable}")
first_log = None
for step in range(120):
    idx = torch.randint(0, N_SEQ, (32,))
    batch = data[idx]
    labels = batch.clone()
    labels[:, :2] = IGNORE_TOKEN_ID  # the prompt part is not trained on, as the chat template masks it
    loss, log = compute_loss(model, batch, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if first_log is None:
        first_log = log
    if step % 30 == 0 or step == 119:
        print(f"heads step {step:3d} loss {loss.item():.4f} " + " ".join(f"{k} {v:.3f}" for k, v in log.items() if "top" in k))
last_log = log
falling = all(last_log[f"medusa{i}_loss"] < first_log[f"medusa{i}_loss"] for i in range(model.medusa))
print(f"head losses falling: {falling}")

model.eval()
exact_after, accept_after = decode_all(model)
print(f"trained heads: greedy match {exact_after:.3f}, tokens per step {accept_after:.3f}")
heads_help = accept_after > 1.0 and accept_after >= accept_before
print(f"trained heads accept more than one token per step, and no fewer than untrained heads: {heads_help}")

print(f"FINAL base_loss={base_loss:.4f} head0_loss={last_log['medusa0_loss']:.4f} head2_loss={last_log['medusa2_loss']:.4f} "
      f"head0_top1={last_log['medusa0_top1']:.4f} greedy_match_before={exact_before:.4f} greedy_match={exact_after:.4f} "
      f"accept_before={accept_before:.4f} accept_len={accept_after:.4f} heads_help={int(heads_help)} losses_fall={int(falling)} "
      f"tree_mask_ok={int(mask_ok)}")
