"""XLNet's permutation language model with two-stream relative attention (zihangdai/xlnet, HF modeling_xlnet idioms).

A factorisation order from ``torch.randperm``, its ranks by ``torch.argsort``, the last K tokens of the order as
partial-prediction targets, ``perm_mask`` (token j hidden from i where j is a target not earlier than i in the order;
non-targets see each other) and a one-hot ``target_mapping`` built by comparisons and ``scatter_``; the model in HF's
time-major layout: ``XLNetRelativeAttention`` with head projections ``torch.einsum("ibh,hnd->ibnd", h, self.q)``,
``rel_attn_core`` (``ac`` with ``r_w_bias``, ``bd`` with ``r_r_bias`` against the relative encodings, ``rel_shift_bnij``
by reshape + slice + ``torch.index_select``, ``attn_score - 1e30 * torch.einsum("ijbn->bnij", attn_mask)``, softmax over
dim 3, ``torch.einsum("bnij,jbnd->ibnd", ...)``), ``post_attention`` by ``torch.einsum("ibnd,hnd->ibh", ...)``, the
content stream under ``non_tgt_mask`` (``-torch.eye(qlen)``, ``> 0``) and the query stream under ``attn_mask``, started
from ``mask_emb.expand(...)`` and moved to and from target slots by ``torch.einsum("mbnd,mlb->lbnd", q_head_g,
target_mapping)``; sinusoid relative encodings by ``torch.einsum("i,d->id", pos_seq, inv_freq)`` over
``torch.arange(klen, -qlen, -1.0)``. Checks: the rel_shift equals gathering scores by relative distance, a target's
query-stream output has exactly zero gradient (``torch.autograd.grad``) for its own token embedding and for tokens
after it in the order and a non-zero one for the tokens before it, and the loss falls on progressions.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB = 16
SEQ = 8
NUM_PREDICT = 3


class XLNetRelativeAttention(nn.Module):
    def __init__(self, d_model, n_head, d_head, layer_norm_eps=1e-12):
        super().__init__()
        self.n_head = n_head
        self.d_head = d_head
        self.d_model = d_model
        self.scale = 1 / (d_head ** 0.5)

        self.q = nn.Parameter(torch.FloatTensor(d_model, self.n_head, self.d_head))
        self.k = nn.Parameter(torch.FloatTensor(d_model, self.n_head, self.d_head))
        self.v = nn.Parameter(torch.FloatTensor(d_model, self.n_head, self.d_head))
        self.o = nn.Parameter(torch.FloatTensor(d_model, self.n_head, self.d_head))
        self.r = nn.Parameter(torch.FloatTensor(d_model, self.n_head, self.d_head))

        self.r_r_bias = nn.Parameter(torch.FloatTensor(self.n_head, self.d_head))
        self.r_w_bias = nn.Parameter(torch.FloatTensor(self.n_head, self.d_head))

        self.layer_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)

    @staticmethod
    def rel_shift_bnij(x, klen=-1):
        x_size = x.shape

        x = x.reshape(x_size[0], x_size[1], x_size[3], x_size[2])
        x = x[:, :, 1:, :]
        x = x.reshape(x_size[0], x_size[1], x_size[2], x_size[3] - 1)
        # Note: the tensor-slice form was faster in my testing than torch.index_select
        #       However, tracing doesn't like the nature of the slice, and if klen changes
        #       during the run then it'll fail, whereas index_select will be fine.
        x = torch.index_select(x, 3, torch.arange(klen, device=x.device, dtype=torch.long))
        return x

    def rel_attn_core(self, q_head, k_head_h, v_head_h, k_head_r, attn_mask=None):
        """Core relative positional attention operations."""
        # content based attention score
        ac = torch.einsum("ibnd,jbnd->bnij", q_head + self.r_w_bias, k_head_h)

        # position based attention score
        bd = torch.einsum("ibnd,jbnd->bnij", q_head + self.r_r_bias, k_head_r)
        bd = self.rel_shift_bnij(bd, klen=ac.shape[3])

        attn_score = (ac + bd) * self.scale
        if attn_mask is not None:
            attn_score = attn_score - 1e30 * torch.einsum("ijbn->bnij", attn_mask)

        attn_prob = nn.functional.softmax(attn_score, dim=3)
        attn_vec = torch.einsum("bnij,jbnd->ibnd", attn_prob, v_head_h)
        return attn_vec

    def post_attention(self, h, attn_vec, residual=True):
        """Post-attention processing."""
        attn_out = torch.einsum("ibnd,hnd->ibh", attn_vec, self.o)
        if residual:
            attn_out = attn_out + h
        output = self.layer_norm(attn_out)
        return output

    def forward(self, h, g, attn_mask_h, attn_mask_g, r, target_mapping=None):
        # Two-stream attention with relative positional encoding.
        # content heads
        q_head_h = torch.einsum("ibh,hnd->ibnd", h, self.q)
        k_head_h = torch.einsum("ibh,hnd->ibnd", h, self.k)
        v_head_h = torch.einsum("ibh,hnd->ibnd", h, self.v)

        # positional heads
        k_head_r = torch.einsum("ibh,hnd->ibnd", r.type(self.r.dtype), self.r)

        # core attention ops
        attn_vec_h = self.rel_attn_core(q_head_h, k_head_h, v_head_h, k_head_r, attn_mask=attn_mask_h)
        output_h = self.post_attention(h, attn_vec_h)

        # query-stream query head
        q_head_g = torch.einsum("ibh,hnd->ibnd", g, self.q)
        if target_mapping is not None:
            q_head_g = torch.einsum("mbnd,mlb->lbnd", q_head_g, target_mapping)
            attn_vec_g = self.rel_attn_core(q_head_g, k_head_h, v_head_h, k_head_r, attn_mask=attn_mask_g)
            attn_vec_g = torch.einsum("lbnd,mlb->mbnd", attn_vec_g, target_mapping)
        else:
            attn_vec_g = self.rel_attn_core(q_head_g, k_head_h, v_head_h, k_head_r, attn_mask=attn_mask_g)
        output_g = self.post_attention(g, attn_vec_g)
        return output_h, output_g


class XLNetFeedForward(nn.Module):
    def __init__(self, d_model, d_inner, layer_norm_eps=1e-12):
        super().__init__()
        self.layer_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.layer_1 = nn.Linear(d_model, d_inner)
        self.layer_2 = nn.Linear(d_inner, d_model)
        self.activation_function = nn.GELU()

    def forward(self, inp):
        output = self.layer_2(self.activation_function(self.layer_1(inp)))
        return self.layer_norm(output + inp)


class XLNetLayer(nn.Module):
    def __init__(self, d_model, n_head, d_head, d_inner):
        super().__init__()
        self.rel_attn = XLNetRelativeAttention(d_model, n_head, d_head)
        self.ff = XLNetFeedForward(d_model, d_inner)

    def forward(self, output_h, output_g, attn_mask_h, attn_mask_g, r, target_mapping=None):
        output_h, output_g = self.rel_attn(output_h, output_g, attn_mask_h, attn_mask_g, r, target_mapping)
        return self.ff(output_h), self.ff(output_g)


class XLNetLMHeadModel(nn.Module):
    def __init__(self, vocab_size=VOCAB, d_model=32, n_layer=2, n_head=2, d_inner=64):
        super().__init__()
        self.d_model = d_model
        self.word_embedding = nn.Embedding(vocab_size, d_model)
        self.mask_emb = nn.Parameter(torch.FloatTensor(1, 1, d_model))
        self.layer = nn.ModuleList([XLNetLayer(d_model, n_head, d_model // n_head, d_inner) for _ in range(n_layer)])
        self.lm_loss = nn.Linear(d_model, vocab_size, bias=True)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        std = 0.05
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        elif isinstance(module, XLNetRelativeAttention):
            for param in [module.q, module.k, module.v, module.o, module.r, module.r_r_bias, module.r_w_bias]:
                param.data.normal_(mean=0.0, std=std)
        elif isinstance(module, XLNetLMHeadModel):
            module.mask_emb.data.normal_(mean=0.0, std=std)

    @staticmethod
    def positional_embedding(pos_seq, inv_freq, bsz=None):
        sinusoid_inp = torch.einsum("i,d->id", pos_seq, inv_freq)
        pos_emb = torch.cat([torch.sin(sinusoid_inp), torch.cos(sinusoid_inp)], dim=-1)
        pos_emb = pos_emb[:, None, :]
        if bsz is not None:
            pos_emb = pos_emb.expand(-1, bsz, -1)
        return pos_emb

    def relative_positional_encoding(self, qlen, klen, bsz=None):
        # create relative positional encoding.
        freq_seq = torch.arange(0, self.d_model, 2.0, dtype=torch.int64).float()
        inv_freq = 1 / torch.pow(10000, (freq_seq / self.d_model))
        beg, end = klen, -qlen  # attn_type == "bi"
        fwd_pos_seq = torch.arange(beg, end, -1.0, dtype=torch.int64).float()
        return self.positional_embedding(fwd_pos_seq, inv_freq, bsz)

    def forward(self, input_ids=None, inputs_embeds=None, perm_mask=None, target_mapping=None, labels=None):
        # the original code for XLNet uses shapes [len, bsz] with the batch dimension at the end
        if input_ids is not None:
            input_ids = input_ids.transpose(0, 1).contiguous()
            qlen, bsz = input_ids.shape[0], input_ids.shape[1]
            word_emb_k = self.word_embedding(input_ids)
        else:
            word_emb_k = inputs_embeds.transpose(0, 1).contiguous()
            qlen, bsz = word_emb_k.shape[0], word_emb_k.shape[1]
        perm_mask = perm_mask.permute(1, 2, 0).contiguous()
        target_mapping = target_mapping.permute(1, 2, 0).contiguous()
        klen = qlen

        # data mask: input mask & perm mask
        data_mask = perm_mask
        attn_mask = data_mask[:, :, :, None]
        attn_mask = (attn_mask > 0).to(word_emb_k.dtype)
        non_tgt_mask = -torch.eye(qlen).to(attn_mask)
        non_tgt_mask = ((attn_mask + non_tgt_mask[:, :, None, None]) > 0).to(attn_mask)

        output_h = word_emb_k
        word_emb_q = self.mask_emb.expand(target_mapping.shape[0], bsz, -1)
        output_g = word_emb_q
        pos_emb = self.relative_positional_encoding(qlen, klen, bsz=bsz)

        for layer_module in self.layer:
            output_h, output_g = layer_module(output_h, output_g, non_tgt_mask, attn_mask, pos_emb, target_mapping)

        output = output_g.permute(1, 0, 2).contiguous()  # [bsz, num_predict, d_model]
        logits = self.lm_loss(output)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))
        return loss, logits, output


def make_permutation_inputs(bsz, seqlen, num_predict):
    """A factorisation order per example; its last num_predict tokens are the targets."""
    perm = torch.stack([torch.randperm(seqlen) for _ in range(bsz)])  # perm[b, r] = position at rank r
    rank = torch.argsort(perm, dim=1)  # rank[b, i] = rank of position i
    is_target = rank >= seqlen - num_predict
    # non-targets get rank -1: they see each other, and no target
    rank_eff = torch.where(is_target, rank, torch.full_like(rank, -1))
    perm_mask = ((rank_eff[:, None, :] >= rank_eff[:, :, None]) & is_target[:, None, :]).float()
    target_pos = perm[:, seqlen - num_predict:]  # in factorisation order
    target_mapping = torch.zeros(bsz, num_predict, seqlen).scatter_(2, target_pos.unsqueeze(-1), 1.0)
    return perm, rank, perm_mask, target_mapping, target_pos


def make_tokens(bsz, seqlen):
    start = rng.integers(0, VOCAB, size=(bsz, 1))
    step = rng.integers(1, 4, size=(bsz, 1))
    return torch.from_numpy((start + step * np.arange(seqlen)[None, :]) % VOCAB)


model = XLNetLMHeadModel()

# ---- rel_shift against a direct gather by relative distance
x = torch.randn(2, 2, 5, 10)  # (b, n, qlen, qlen + klen) over positions klen .. -qlen + 1
shifted = XLNetRelativeAttention.rel_shift_bnij(x, klen=5)
i_idx = torch.arange(5)[:, None]
j_idx = torch.arange(5)[None, :]
gathered = torch.gather(x, 3, (5 - i_idx + j_idx).expand(2, 2, 5, 5))
shift_err = (shifted - gathered).abs().max().item()
print(f"rel_shift_bnij equals the gather by relative distance: max diff {shift_err:.2e}")

# ---- the two-stream information flow, by autograd.grad on the embeddings
perm, rank, perm_mask, target_mapping, target_pos = make_permutation_inputs(1, SEQ, NUM_PREDICT)
tokens = make_tokens(1, SEQ)
emb = model.word_embedding(tokens).detach().requires_grad_(True)
_, _, out_g = model(inputs_embeds=emb, perm_mask=perm_mask, target_mapping=target_mapping)
flow_ok = True
for k in range(NUM_PREDICT):
    (grad,) = torch.autograd.grad(out_g[0, k].pow(2).sum(), emb, retain_graph=True)
    per_token = grad[0].abs().sum(-1)
    pos = int(target_pos[0, k])
    before = rank[0] < rank[0, pos]
    own = per_token[pos].item()
    after = per_token[~before].sum().item()
    min_before = per_token[before].min().item()
    flow_ok = flow_ok and own == 0.0 and after == 0.0 and min_before > 0.0
    print(f"target {k} at position {pos} (rank {int(rank[0, pos])}): own grad {own:.1f} later tokens {after:.1f} "
          f"earlier tokens min {'>0' if min_before > 0 else '0'} ({int(before.sum())} of them)")

# ---- training on arithmetic progressions mod VOCAB, predicting the last NUM_PREDICT of each order
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
first_loss = None
for step in range(1, 201):
    perm, rank, perm_mask, target_mapping, target_pos = make_permutation_inputs(32, SEQ, NUM_PREDICT)
    tokens = make_tokens(32, SEQ)
    labels = torch.gather(tokens, 1, target_pos)
    loss, logits, _ = model(tokens, perm_mask=perm_mask, target_mapping=target_mapping, labels=labels)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if first_loss is None:
        first_loss = loss.item()
    if step % 50 == 0:
        print(f"step {step} loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    perm, rank, perm_mask, target_mapping, target_pos = make_permutation_inputs(128, SEQ, NUM_PREDICT)
    tokens = make_tokens(128, SEQ)
    labels = torch.gather(tokens, 1, target_pos)
    val_loss, logits, _ = model(tokens, perm_mask=perm_mask, target_mapping=target_mapping, labels=labels)
    val_acc = (logits.argmax(-1) == labels).float().mean().item()
print(f"val loss {val_loss.item():.4f} acc {val_acc:.4f} (uniform {math.log(VOCAB):.4f})")

ok = shift_err < 1e-6 and flow_ok
print(f"FINAL first_loss={first_loss:.4f} val_loss={val_loss.item():.4f} val_acc={val_acc:.4f} checks_ok={int(ok)}")
