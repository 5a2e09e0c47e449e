"""Transformer-XL (Dai et al. 2019) as kimiyoung/transformer-xl's pytorch/mem_transformer.py writes it,
trained as a character language model on a synthetic corpus with long-range repeats.

Sequence-first ``[len, bsz]`` tensors throughout; ``PositionalEmbedding`` with an ``inv_freq`` buffer,
``torch.ger`` and ``pos_emb[:, None, :]``; ``PositionwiseFF`` with ``nn.ReLU(inplace=True)`` and a
post-LayerNorm; ``RelPartialLearnableMultiHeadAttn``: ``torch.cat([mems, w], 0)``, ``torch.chunk(w_heads,
3, dim=-1)``, the old tuple-operand einsums ``torch.einsum('ibnd,jbnd->ijbn', (q, k))`` with the
``r_w_bias``/``r_r_bias`` parameters, ``_rel_shift`` by a zero pad column, ``torch.cat``, ``.view`` and
``x_padded[1:].view_as(x)`` (checked against an explicit gather of relative positions),
``attn_score.mul_(self.scale)``, ``attn_mask.any().item()`` and ``masked_fill(attn_mask[:, :, :, None],
-float('inf'))`` after ``.float()``; ``MemTransformerLM`` with ``init_mems`` of ``torch.empty(0)``
(concatenated with 3-d hiddens, as torch allows for 1-d empty tensors), ``_update_mems`` under
``torch.no_grad()`` with ``.detach()`` (called with the repository's swapped ``mlen, qlen``), the mask
``torch.triu(word_emb.new_ones(qlen, klen), diagonal=1 + mlen).byte()[:, :, None]`` turned to bool,
``torch.arange(klen - 1, -1, -1.0)`` positions with ``clamp_(max=...)``, ``forward(data, target,
*mems)`` returning ``[loss] + new_mems``; ``weights_init`` through ``apply`` by
``m.__class__.__name__.find(...)``; the train loop's ``mems = ret[1:]``, ``loss.float().mean().type_as(
loss)``, ``clip_grad_norm_(..., 0.25)``, Adam + ``CosineAnnealingLR``; evaluation with the memory
lengthened by ``reset_length`` against no memory at all.

The corpus: documents of 50-90 letters, each drawn from its own random 3 of 12 letters, so the
memory of earlier segments says which letters are in play.
"""
# ruff: noqa: UP004, UP008, B007  (the repository's super(Class, self), class X(object) and unused loop names)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

LETTERS = "abcdefghijkl"


def make_corpus(n_docs):
    # each document draws its letters from its own random 3-letter subset: memory of the previous
    # segment says which letters are in play before the current segment has shown them
    docs = []
    for _ in range(n_docs):
        subset = rng.choice(list(LETTERS), size=3, replace=False)
        docs.append("".join(rng.choice(subset, size=rng.integers(50, 90))))
    return "\n".join(docs) + "\n"


class PositionalEmbedding(nn.Module):
    def __init__(self, demb):
        super(PositionalEmbedding, self).__init__()

        self.demb = demb

        inv_freq = 1 / (10000 ** (torch.arange(0.0, demb, 2.0) / demb))
        self.register_buffer('inv_freq', inv_freq)

    def forward(self, pos_seq, bsz=None):
        sinusoid_inp = torch.ger(pos_seq, self.inv_freq)
        pos_emb = torch.cat([sinusoid_inp.sin(), sinusoid_inp.cos()], dim=-1)

        if bsz is not None:
            return pos_emb[:, None, :].expand(-1, bsz, -1)
        else:
            return pos_emb[:, None, :]


class PositionwiseFF(nn.Module):
    def __init__(self, d_model, d_inner, dropout, pre_lnorm=False):
        super(PositionwiseFF, self).__init__()

        self.d_model = d_model
        self.d_inner = d_inner
        self.dropout = dropout

        self.CoreNet = nn.Sequential(
            nn.Linear(d_model, d_inner), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(d_inner, d_model),
            nn.Dropout(dropout),
        )

        self.layer_norm = nn.LayerNorm(d_model)

        self.pre_lnorm = pre_lnorm

    def forward(self, inp):
        if self.pre_lnorm:
            core_out = self.CoreNet(self.layer_norm(inp))
            output = core_out + inp
        else:
            core_out = self.CoreNet(inp)
            output = self.layer_norm(inp + core_out)

        return output


class RelMultiHeadAttn(nn.Module):
    def __init__(self, n_head, d_model, d_head, dropout, dropatt=0,
                 tgt_len=None, ext_len=None, mem_len=None, pre_lnorm=False):
        super(RelMultiHeadAttn, self).__init__()

        self.n_head = n_head
        self.d_model = d_model
        self.d_head = d_head
        self.dropout = dropout

        self.qkv_net = nn.Linear(d_model, 3 * n_head * d_head, bias=False)

        self.drop = nn.Dropout(dropout)
        self.dropatt = nn.Dropout(dropatt)
        self.o_net = nn.Linear(n_head * d_head, d_model, bias=False)

        self.layer_norm = nn.LayerNorm(d_model)

        self.scale = 1 / (d_head ** 0.5)

        self.pre_lnorm = pre_lnorm

    def _rel_shift(self, x, zero_triu=False):
        zero_pad = torch.zeros((x.size(0), 1, *x.size()[2:]),
                               device=x.device, dtype=x.dtype)
        x_padded = torch.cat([zero_pad, x], dim=1)

        x_padded = x_padded.view(x.size(1) + 1, x.size(0), *x.size()[2:])

        x = x_padded[1:].view_as(x)

        if zero_triu:
            ones = torch.ones((x.size(0), x.size(1)))
            x = x * torch.tril(ones, x.size(1) - x.size(0))[:, :, None, None]

        return x


class RelPartialLearnableMultiHeadAttn(RelMultiHeadAttn):
    def __init__(self, *args, **kwargs):
        super(RelPartialLearnableMultiHeadAttn, self).__init__(*args, **kwargs)

        self.r_net = nn.Linear(self.d_model, self.n_head * self.d_head, bias=False)

    def forward(self, w, r, r_w_bias, r_r_bias, attn_mask=None, mems=None):
        qlen, rlen, bsz = w.size(0), r.size(0), w.size(1)

        if mems is not None:
            cat = torch.cat([mems, w], 0)
            if self.pre_lnorm:
                w_heads = self.qkv_net(self.layer_norm(cat))
            else:
                w_heads = self.qkv_net(cat)
            r_head_k = self.r_net(r)

            w_head_q, w_head_k, w_head_v = torch.chunk(w_heads, 3, dim=-1)
            w_head_q = w_head_q[-qlen:]
        else:
            if self.pre_lnorm:
                w_heads = self.qkv_net(self.layer_norm(w))
            else:
                w_heads = self.qkv_net(w)
            r_head_k = self.r_net(r)

            w_head_q, w_head_k, w_head_v = torch.chunk(w_heads, 3, dim=-1)

        klen = w_head_k.size(0)

        w_head_q = w_head_q.view(qlen, bsz, self.n_head, self.d_head)           # qlen x bsz x n_head x d_head
        w_head_k = w_head_k.view(klen, bsz, self.n_head, self.d_head)           # qlen x bsz x n_head x d_head
        w_head_v = w_head_v.view(klen, bsz, self.n_head, self.d_head)           # qlen x bsz x n_head x d_head

        r_head_k = r_head_k.view(rlen, self.n_head, self.d_head)                # qlen x n_head x d_head

        #### compute attention score
        rw_head_q = w_head_q + r_w_bias                                         # qlen x bsz x n_head x d_head
        AC = torch.einsum('ibnd,jbnd->ijbn', (rw_head_q, w_head_k))             # qlen x klen x bsz x n_head

        rr_head_q = w_head_q + r_r_bias
        BD = torch.einsum('ibnd,jnd->ijbn', (rr_head_q, r_head_k))              # qlen x klen x bsz x n_head
        BD = self._rel_shift(BD)

        # [qlen x klen x bsz x n_head]
        attn_score = AC + BD
        attn_score.mul_(self.scale)

        #### compute attention probability
        if attn_mask is not None and attn_mask.any().item():
            if attn_mask.dim() == 2:
                attn_score = attn_score.float().masked_fill(
                    attn_mask[None, :, :, None], -float('inf')).type_as(attn_score)
            elif attn_mask.dim() == 3:
                attn_score = attn_score.float().masked_fill(
                    attn_mask[:, :, :, None], -float('inf')).type_as(attn_score)

        # [qlen x klen x bsz x n_head]
        attn_prob = F.softmax(attn_score, dim=1)
        attn_prob = self.dropatt(attn_prob)

        #### compute attention vector
        attn_vec = torch.einsum('ijbn,jbnd->ibnd', (attn_prob, w_head_v))

        # [qlen x bsz x n_head x d_head]
        attn_vec = attn_vec.contiguous().view(
            attn_vec.size(0), attn_vec.size(1), self.n_head * self.d_head)

        ##### linear projection
        attn_out = self.o_net(attn_vec)
        attn_out = self.drop(attn_out)

        if self.pre_lnorm:
            ##### residual connection
            output = w + attn_out
        else:
            ##### residual connection + layer normalization
            output = self.layer_norm(w + attn_out)

        return output


class RelPartialLearnableDecoderLayer(nn.Module):
    def __init__(self, n_head, d_model, d_head, d_inner, dropout, **kwargs):
        super(RelPartialLearnableDecoderLayer, self).__init__()

        self.dec_attn = RelPartialLearnableMultiHeadAttn(n_head, d_model, d_head, dropout, **kwargs)
        self.pos_ff = PositionwiseFF(d_model, d_inner, dropout, pre_lnorm=kwargs.get('pre_lnorm'))

    def forward(self, dec_inp, r, r_w_bias, r_r_bias, dec_attn_mask=None, mems=None):
        output = self.dec_attn(dec_inp, r, r_w_bias, r_r_bias, attn_mask=dec_attn_mask, mems=mems)
        output = self.pos_ff(output)

        return output


class MemTransformerLM(nn.Module):
    def __init__(self, n_token, n_layer, n_head, d_model, d_head, d_inner,
                 dropout, dropatt, tie_weight=True, tgt_len=None, ext_len=None, mem_len=None,
                 clamp_len=-1, pre_lnorm=False):
        super(MemTransformerLM, self).__init__()
        self.n_token = n_token

        self.d_embed = d_model
        self.d_model = d_model
        self.n_head = n_head
        self.d_head = d_head

        self.word_emb = nn.Embedding(n_token, d_model)
        self.emb_scale = d_model ** 0.5

        self.drop = nn.Dropout(dropout)

        self.n_layer = n_layer

        self.tgt_len = tgt_len
        self.mem_len = mem_len
        self.ext_len = ext_len
        self.max_klen = tgt_len + ext_len + mem_len

        self.layers = nn.ModuleList()
        for i in range(n_layer):
            self.layers.append(
                RelPartialLearnableDecoderLayer(
                    n_head, d_model, d_head, d_inner, dropout,
                    tgt_len=tgt_len, ext_len=ext_len, mem_len=mem_len,
                    dropatt=dropatt, pre_lnorm=pre_lnorm)
            )

        self.out_layer = nn.Linear(d_model, n_token)
        if tie_weight:
            self.out_layer.weight = self.word_emb.weight

        self.clamp_len = clamp_len

        self._create_params()

    def _create_params(self):
        self.pos_emb = PositionalEmbedding(self.d_model)
        self.r_w_bias = nn.Parameter(torch.Tensor(self.n_head, self.d_head))
        self.r_r_bias = nn.Parameter(torch.Tensor(self.n_head, self.d_head))

    def reset_length(self, tgt_len, ext_len, mem_len):
        self.tgt_len = tgt_len
        self.mem_len = mem_len
        self.ext_len = ext_len

    def init_mems(self):
        if self.mem_len > 0:
            mems = []
            param = next(self.parameters())
            for i in range(self.n_layer + 1):
                empty = torch.empty(0, dtype=param.dtype, device=param.device)
                mems.append(empty)

            return mems
        else:
            return None

    def _update_mems(self, hids, mems, qlen, mlen):
        # does not deal with None
        if mems is None:
            return None

        # mems is not None
        assert len(hids) == len(mems), 'len(hids) != len(mems)'

        # There are `mlen + qlen` steps that can be cached into mems
        # For the next step, the last `ext_len` of the `qlen` tokens
        # will be used as the extended context. Hence, we only cache
        # the tokens from `mlen + qlen - self.ext_len - self.mem_len`
        # to `mlen + qlen - self.ext_len`.
        with torch.no_grad():
            new_mems = []
            end_idx = mlen + max(0, qlen - 0 - self.ext_len)
            beg_idx = max(0, end_idx - self.mem_len)
            for i in range(len(hids)):

                cat = torch.cat([mems[i], hids[i]], dim=0)
                new_mems.append(cat[beg_idx:end_idx].detach())

        return new_mems

    def _forward(self, dec_inp, mems=None):
        qlen, bsz = dec_inp.size()

        word_emb = self.word_emb(dec_inp) * self.emb_scale

        mlen = mems[0].size(0) if mems is not None else 0
        klen = mlen + qlen
        dec_attn_mask = torch.triu(
            word_emb.new_ones(qlen, klen), diagonal=1 + mlen).byte()[:, :, None].bool()

        hids = []
        pos_seq = torch.arange(klen - 1, -1, -1.0, device=word_emb.device,
                               dtype=word_emb.dtype)
        if self.clamp_len > 0:
            pos_seq.clamp_(max=self.clamp_len)
        pos_emb = self.pos_emb(pos_seq)

        core_out = self.drop(word_emb)
        pos_emb = self.drop(pos_emb)

        hids.append(core_out)
        for i, layer in enumerate(self.layers):
            mems_i = None if mems is None else mems[i]
            core_out = layer(core_out, pos_emb, self.r_w_bias,
                             self.r_r_bias, dec_attn_mask=dec_attn_mask, mems=mems_i)
            hids.append(core_out)

        core_out = self.drop(core_out)

        new_mems = self._update_mems(hids, mems, mlen, qlen)

        return core_out, new_mems

    def forward(self, data, target, *mems):
        # nn.DataParallel does not allow size(0) tensors to be broadcasted.
        # So, have to initialize size(0) mems inside the model forward.
        # Moreover, have to return new_mems to allow nn.DataParallel to piece
        # them together.
        if not mems:
            mems = self.init_mems()

        tgt_len = target.size(0)
        hidden, new_mems = self._forward(data, mems=mems)

        pred_hid = hidden[-tgt_len:]
        logit = self.out_layer(pred_hid.view(-1, pred_hid.size(-1)))
        loss = F.cross_entropy(logit, target.contiguous().view(-1), reduction='none').view(tgt_len, -1)

        if new_mems is None:
            return [loss]
        else:
            return [loss] + new_mems


def init_weight(weight):
    nn.init.normal_(weight, 0.0, 0.02)


def init_bias(bias):
    nn.init.constant_(bias, 0.0)


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Linear') != -1:
        if hasattr(m, 'weight') and m.weight is not None:
            init_weight(m.weight)
        if hasattr(m, 'bias') and m.bias is not None:
            init_bias(m.bias)
    elif classname.find('Embedding') != -1:
        if hasattr(m, 'weight'):
            init_weight(m.weight)
    elif classname.find('LayerNorm') != -1:
        if hasattr(m, 'weight'):
            nn.init.normal_(m.weight, 1.0, 0.02)
        if hasattr(m, 'bias') and m.bias is not None:
            init_bias(m.bias)
    elif classname.find('TransformerLM') != -1:
        if hasattr(m, 'r_w_bias'):
            init_weight(m.r_w_bias)
        if hasattr(m, 'r_r_bias'):
            init_weight(m.r_r_bias)


class LMOrderedIterator(object):
    def __init__(self, data, bsz, bptt):
        self.bsz = bsz
        self.bptt = bptt

        # Work out how cleanly we can divide the dataset into bsz parts.
        self.n_step = data.size(0) // bsz

        # Trim off any extra elements that wouldn't cleanly fit (remainders).
        data = data.narrow(0, 0, self.n_step * bsz)

        # Evenly divide the data across the bsz batches.
        self.data = data.view(bsz, -1).t().contiguous()

    def get_batch(self, i, bptt=None):
        if bptt is None:
            bptt = self.bptt
        seq_len = min(bptt, self.data.size(0) - 1 - i)

        end_idx = i + seq_len
        beg_idx = max(0, i)

        data = self.data[beg_idx:end_idx]
        target = self.data[i + 1:i + 1 + seq_len]

        return data, target, seq_len

    def __iter__(self):
        for i in range(0, self.data.size(0) - 1, self.bptt):
            yield self.get_batch(i)


vocab = sorted(set(LETTERS + "\n"))
stoi = {ch: i for i, ch in enumerate(vocab)}
train_text, valid_text = make_corpus(48), make_corpus(8)
train_data = torch.tensor([stoi[c] for c in train_text], dtype=torch.long)
valid_data = torch.tensor([stoi[c] for c in valid_text], dtype=torch.long)

TGT_LEN, MEM_LEN, BSZ = 12, 12, 8
model = MemTransformerLM(len(vocab), n_layer=2, n_head=2, d_model=32, d_head=16, d_inner=64,
                         dropout=0.0, dropatt=0.0, tgt_len=TGT_LEN, ext_len=0, mem_len=MEM_LEN,
                         clamp_len=20)
model.apply(weights_init)
model.word_emb.apply(weights_init)  # ensure embedding init is not overridden by out_layer in case of weight sharing
n_params = sum(p.numel() for p in model.parameters())
print(f"vocab {len(vocab)}, params {n_params}, tied {model.out_layer.weight is model.word_emb.weight}")

# _rel_shift against relative positions gathered by index: entry [i, j] must hold position (klen-1) - (mlen+i-j)
attn = model.layers[0].dec_attn
qlen, mlen = 5, 3
klen = qlen + mlen
scores = torch.randn(qlen, klen, 2, 3)
shifted = attn._rel_shift(scores)
i_idx = torch.arange(qlen)[:, None]
j_idx = torch.arange(klen)[None, :]
src = (klen - 1) - (mlen + i_idx - j_idx)
valid = (j_idx <= i_idx + mlen)
gathered = torch.gather(scores, 1, src.clamp(min=0, max=klen - 1)[:, :, None, None].expand(-1, -1, 2, 3))
shift_err = (shifted - gathered)[valid].abs().max().item()
print(f"rel_shift {tuple(shifted.shape)} matches gathered positions on {int(valid.sum())} of {qlen * klen} entries")

tr_iter = LMOrderedIterator(train_data, BSZ, TGT_LEN)
va_iter = LMOrderedIterator(valid_data, 4, TGT_LEN)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
EPOCHS = 6
max_step = EPOCHS * ((tr_iter.data.size(0) - 1 + TGT_LEN - 1) // TGT_LEN)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max_step, eta_min=0.0)

train_step = 0
for epoch in range(1, EPOCHS + 1):
    model.train()
    mems = tuple()
    total_loss, n_batches = 0.0, 0
    for batch, (data, target, seq_len) in enumerate(tr_iter):
        model.zero_grad()
        ret = model(data, target, *mems)
        loss, mems = ret[0], ret[1:]
        loss = loss.float().mean().type_as(loss)
        loss.backward()
        total_loss += loss.float().item()
        n_batches += 1

        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        train_step += 1
        scheduler.step()
    print(f"epoch {epoch}: {n_batches} segments, train loss {total_loss / n_batches:.4f}, "
          f"mems {len(mems)} x {tuple(mems[0].shape)} detached {all(not m.requires_grad for m in mems)}")


def evaluate(eval_iter, mem_len):
    model.eval()
    model.reset_length(TGT_LEN, 0, mem_len)
    total_len, total_loss = 0, 0.
    with torch.no_grad():
        mems = tuple()
        for i, (data, target, seq_len) in enumerate(eval_iter):
            ret = model(data, target, *mems)
            loss, mems = ret[0], ret[1:]
            loss = loss.mean()
            total_loss += seq_len * loss.float().item()
            total_len += seq_len
    model.reset_length(TGT_LEN, 0, MEM_LEN)
    return total_loss / total_len


val_mem = evaluate(va_iter, 2 * MEM_LEN)
val_nomem = evaluate(va_iter, 0)
print(f"valid loss with memory {val_mem:.4f}, without {val_nomem:.4f}")
print(f"FINAL train_loss={total_loss / n_batches:.4f} val_loss={val_mem:.4f} val_nomem={val_nomem:.4f} "
      f"mem_gain={val_nomem - val_mem:.4f} rel_shift_err={shift_err:.6f}")
