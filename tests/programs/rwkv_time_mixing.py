"""RWKV-4 (BlinkDL/RWKV-LM) in its two forms: the "GPT mode" model of RWKV-v4/src/model.py, trained,
and the "RNN mode" of RWKV_in_150_lines.py, run one token at a time on the trained weights.

GPT mode: ``torch.jit.ScriptModule`` blocks with ``@torch.jit.script_method``, token shift by
``nn.ZeroPad2d((0, 0, 1, -1))``, the "fancy init" under ``torch.no_grad()`` (per-channel
``decay_speed[h] = ...`` item writes, the zigzag ``time_first``, ``time_mix`` by ``torch.pow(x,
ratio)`` on a ``torch.ones(1, 1, n_embd)`` filled per index), ``x * self.time_mix_k + xx * (1 -
self.time_mix_k)``, the WKV kernel (wkv_cuda.cu's forward) written as a Python loop over time on the
whole batch with the stable ``torch.maximum``/``torch.exp`` update of ``(p, q, o)`` and ``w =
-torch.exp(time_decay)``, channel mixing with ``torch.square(torch.relu(k))``, ``RWKV_Init`` (class and
``scale_init`` driven ``orthogonal_``/``zeros_``/``normal_``, the parameter found by ``id``), and
``L2Wrap``, the ``autograd.Function`` that returns the loss and pushes the largest logit toward 0 by
``gy.scatter_(-1, ids, maxx * factor)``. Training: Adam(betas=(0.9, 0.99)) with the trainer's
exponential lr decay written into ``param_groups``.

RNN mode: the weights through ``torch.save(model.state_dict())``/``torch.load``, ``squeeze()`` of the
``.time_`` tensors and ``-torch.exp(...)`` of ``time_decay``, a ``types.SimpleNamespace`` tree built
from the dotted keys, ``F.layer_norm`` by hand, the ``state`` matrix with ``state[5*i+4] = -1e30``,
``rw @ xr`` matrix-vector products and the ``max(pp, ww)`` update; its per-token logits must equal
GPT mode's on the same sequences. The corpus: an order-2 Markov chain over 12 tokens.
"""
# ruff: noqa: E741, E711, B007  (the repositories' own spelling: state == None, unused loop names)

import math
import os
import tempfile
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB = 12
TABLE = rng.integers(0, VOCAB, size=(VOCAB, VOCAB))


def sample_sequences(n, length):
    seqs = np.empty((n, length), dtype=np.int64)
    seqs[:, :2] = rng.integers(0, VOCAB, size=(n, 2))
    for t in range(2, length):
        nxt = TABLE[seqs[:, t - 2], seqs[:, t - 1]]
        noise = rng.random(n) < 0.1
        seqs[:, t] = np.where(noise, rng.integers(0, VOCAB, size=n), nxt)
    return torch.from_numpy(seqs)


########################################################################################################
# GPT mode (RWKV-v4/src/model.py)
########################################################################################################

def RWKV_Init(model, args):  # fancy initialization of all lin & emb layer in the model
    for mm in model.modules():
        if "RecursiveScriptModule" in str(type(mm)):
            if mm.original_name not in ["Linear"]:
                continue
            ww = None
            for name, param in mm.named_parameters():
                if name == "weight":
                    ww = param
        else:
            m = mm
            if not isinstance(m, (nn.Linear, nn.Embedding)):
                continue
            ww = m.weight
        with torch.no_grad():
            name = "[unknown weight]"
            for name, parameter in model.named_parameters():  # find the name of the weight
                if id(ww) == id(parameter):
                    break

            shape = ww.shape
            gain = 1.0
            scale = 1.0  # extra scale for gain

            if isinstance(m, nn.Embedding):
                gain = math.sqrt(max(shape[0], shape[1]))
                if shape[0] == args.vocab_size and shape[1] == args.n_embd:  # token emb?
                    scale = 1e-4
                else:
                    scale = 0

            if isinstance(m, nn.Linear):
                if shape[0] > shape[1]:
                    gain = math.sqrt(shape[0] / shape[1])
                if shape[0] == args.vocab_size and shape[1] == args.n_embd:  # final projection?
                    scale = 0.5

            if hasattr(m, "scale_init"):
                scale = m.scale_init

            gain *= scale
            if scale == -999:
                nn.init.eye_(ww)
            elif gain == 0:
                # zero init is great for some RWKV matrices
                nn.init.zeros_(ww)
            elif gain > 0:
                nn.init.orthogonal_(ww, gain=gain)
            else:
                nn.init.normal_(ww, mean=0.0, std=-scale)


def RUN_WKV(B, T, C, w, u, k, v):
    # wkv_cuda.cu's forward kernel, one thread per (b, c) there, here one step per token on all of them
    w = -torch.exp(w.contiguous())
    p = torch.zeros(B, C)
    q = torch.zeros(B, C)
    o = torch.full((B, C), -1e38)
    y = []
    for i in range(T):
        kk = k[:, i]
        vv = v[:, i]
        no = torch.maximum(o, u + kk)
        A = torch.exp(o - no)
        B_ = torch.exp(u + kk - no)
        y.append((A * p + B_ * vv) / (A * q + B_))
        no = torch.maximum(w + o, kk)
        A = torch.exp(w + o - no)
        B_ = torch.exp(kk - no)
        p = A * p + B_ * vv
        q = A * q + B_
        o = no
    return torch.stack(y, dim=1)


class RWKV_TimeMix(torch.jit.ScriptModule):
    def __init__(self, config, layer_id):
        super().__init__()
        self.layer_id = layer_id
        self.ctx_len = config.ctx_len
        self.n_embd = config.n_embd

        attn_sz = config.n_embd

        with torch.no_grad():  # fancy init
            ratio_0_to_1 = (layer_id / (config.n_layer - 1))  # 0 to 1
            ratio_1_to_almost0 = (1.0 - (layer_id / config.n_layer))  # 1 to ~0

            # fancy time_decay
            decay_speed = torch.ones(attn_sz)
            for h in range(attn_sz):
                decay_speed[h] = -5 + 8 * (h / (attn_sz - 1)) ** (0.7 + 1.3 * ratio_0_to_1)
            self.time_decay = nn.Parameter(decay_speed)
            # print(layer_id, self.time_decay.flatten()[:3].cpu().numpy(), '...', self.time_decay.flatten()[-3:].cpu().numpy())

            # fancy time_first
            zigzag = (torch.tensor([(i + 1) % 3 - 1 for i in range(attn_sz)]) * 0.5)
            self.time_first = nn.Parameter(torch.ones(attn_sz) * math.log(0.3) + zigzag)

            # fancy time_mix
            x = torch.ones(1, 1, config.n_embd)
            for i in range(config.n_embd):
                x[0, 0, i] = i / config.n_embd
            self.time_mix_k = nn.Parameter(torch.pow(x, ratio_1_to_almost0))
            self.time_mix_v = nn.Parameter(torch.pow(x, ratio_1_to_almost0) + 0.3 * ratio_0_to_1)
            self.time_mix_r = nn.Parameter(torch.pow(x, 0.5 * ratio_1_to_almost0))

        self.time_shift = nn.ZeroPad2d((0, 0, 1, -1))

        self.key = nn.Linear(config.n_embd, attn_sz, bias=False)
        self.value = nn.Linear(config.n_embd, attn_sz, bias=False)
        self.receptance = nn.Linear(config.n_embd, attn_sz, bias=False)

        self.output = nn.Linear(attn_sz, config.n_embd, bias=False)

        self.key.scale_init = 0
        self.receptance.scale_init = 0
        self.output.scale_init = 0

    @torch.jit.script_method
    def jit_func(self, x):

        # Mix x with the previous timestep to produce xk, xv, xr
        xx = self.time_shift(x)
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xv = x * self.time_mix_v + xx * (1 - self.time_mix_v)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)

        # Use xk, xv, xr to produce k, v, r
        k = self.key(xk)
        v = self.value(xv)
        r = self.receptance(xr)
        sr = torch.sigmoid(r)

        return sr, k, v

    def forward(self, x):
        B, T, C = x.size()  # x = (Batch,Time,Channel)

        sr, k, v = self.jit_func(x)

        rwkv = sr * RUN_WKV(B, T, C, self.time_decay, self.time_first, k, v)
        rwkv = self.output(rwkv)
        return rwkv


class RWKV_ChannelMix(torch.jit.ScriptModule):
    def __init__(self, config, layer_id):
        super().__init__()
        self.layer_id = layer_id

        self.time_shift = nn.ZeroPad2d((0, 0, 1, -1))

        with torch.no_grad():  # fancy init of time_mix
            ratio_1_to_almost0 = (1.0 - (layer_id / config.n_layer))  # 1 to ~0

            x = torch.ones(1, 1, config.n_embd)
            for i in range(config.n_embd):
                x[0, 0, i] = i / config.n_embd

            self.time_mix_k = nn.Parameter(torch.pow(x, ratio_1_to_almost0))
            self.time_mix_r = nn.Parameter(torch.pow(x, ratio_1_to_almost0))

        hidden_sz = 4 * config.n_embd
        self.key = nn.Linear(config.n_embd, hidden_sz, bias=False)
        self.receptance = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.value = nn.Linear(hidden_sz, config.n_embd, bias=False)

        self.value.scale_init = 0
        self.receptance.scale_init = 0

    @torch.jit.script_method
    def forward(self, x):
        xx = self.time_shift(x)
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)

        k = self.key(xk)
        k = torch.square(torch.relu(k))
        kv = self.value(k)

        rkv = torch.sigmoid(self.receptance(xr)) * kv
        return rkv


class GPTConfig:
    def __init__(self, vocab_size, ctx_len, **kwargs):
        self.vocab_size = vocab_size
        self.ctx_len = ctx_len
        for k, v in kwargs.items():
            setattr(self, k, v)


class Block(nn.Module):
    def __init__(self, config, layer_id):
        super().__init__()
        self.config = config
        self.layer_id = layer_id

        self.ln1 = nn.LayerNorm(config.n_embd)
        self.ln2 = nn.LayerNorm(config.n_embd)

        if self.layer_id == 0:
            self.ln0 = nn.LayerNorm(config.n_embd)

        self.att = RWKV_TimeMix(config, layer_id)
        self.ffn = RWKV_ChannelMix(config, layer_id)

    def forward(self, x):
        if self.layer_id == 0:
            x = self.ln0(x)
        x = x + self.att(self.ln1(x))
        x = x + self.ffn(self.ln2(x))
        return x


class L2Wrap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, loss, y):
        ctx.save_for_backward(y)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        y = ctx.saved_tensors[0]
        # to encourage the logits to be close to 0
        factor = 1e-4 / (y.shape[0] * y.shape[1])
        maxx, ids = torch.max(y, -1, keepdim=True)
        gy = torch.zeros_like(y)
        gy.scatter_(-1, ids, maxx * factor)
        return (grad_output, gy)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.step = 0
        self.config = config

        self.emb = nn.Embedding(config.vocab_size, config.n_embd)

        self.blocks = nn.Sequential(*[Block(config, i) for i in range(config.n_layer)])

        self.ln_out = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

        self.ctx_len = config.ctx_len

        RWKV_Init(self, config)

    def get_ctx_len(self):
        return self.ctx_len

    def forward(self, idx, targets=None):
        idx = idx.to(self.emb.weight.device)

        self.step += 1
        B, T = idx.size()
        assert T <= self.ctx_len, "Cannot forward, because len(input) > model ctx_len."

        x = self.emb(idx)
        x = self.blocks(x)
        x = self.ln_out(x)
        x = self.head(x)

        loss = None
        if targets is not None:
            loss = F.cross_entropy(x.view(-1, x.size(-1)), targets.to(x.device).view(-1))

        return L2Wrap.apply(loss, x), x


########################################################################################################
# RNN mode (RWKV_in_150_lines.py)
########################################################################################################

class RWKV_RNN(torch.jit.ScriptModule):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.eval()  # set torch to inference mode

        w = torch.load(args.MODEL_NAME, map_location='cpu')
        for k in w.keys():
            if '.time_' in k:
                w[k] = w[k].squeeze()
            if '.time_decay' in k:
                w[k] = -torch.exp(w[k].float())  # the real time decay is like e^{-e^x}
            else:
                w[k] = w[k].float()  # convert to f32 type

        self.w = types.SimpleNamespace()  # set self.w from w
        self.w.blocks = {}
        for k in w.keys():  # example: "blocks.0.att.time_first" => self.w.blocks[0].att.time_first
            parts = k.split('.')
            last = parts.pop()
            here = self.w
            for p in parts:
                if p.isdigit():
                    p = int(p)
                    if p not in here:
                        here[p] = types.SimpleNamespace()
                    here = here[p]
                else:
                    if not hasattr(here, p):
                        setattr(here, p, types.SimpleNamespace())
                    here = getattr(here, p)
            setattr(here, last, w[k])

    def layer_norm(self, x, w):
        return F.layer_norm(x, (self.args.n_embd,), weight=w.weight, bias=w.bias)

    @torch.jit.script_method
    def channel_mixing(self, x, state, i: int, time_mix_k, time_mix_r, kw, vw, rw):
        xk = x * time_mix_k + state[5 * i + 0] * (1 - time_mix_k)
        xr = x * time_mix_r + state[5 * i + 0] * (1 - time_mix_r)
        state[5 * i + 0] = x
        r = torch.sigmoid(rw @ xr)
        k = torch.square(torch.relu(kw @ xk))  # square relu, primer paper
        return r * (vw @ k)

    @torch.jit.script_method
    def time_mixing(self, x, state, i: int, time_mix_k, time_mix_v, time_mix_r, time_first, time_decay, kw, vw, rw, ow):
        xk = x * time_mix_k + state[5 * i + 1] * (1 - time_mix_k)
        xv = x * time_mix_v + state[5 * i + 1] * (1 - time_mix_v)
        xr = x * time_mix_r + state[5 * i + 1] * (1 - time_mix_r)
        state[5 * i + 1] = x
        r = torch.sigmoid(rw @ xr)
        k = kw @ xk
        v = vw @ xv

        aa = state[5 * i + 2]
        bb = state[5 * i + 3]
        pp = state[5 * i + 4]
        ww = time_first + k
        qq = torch.maximum(pp, ww)
        e1 = torch.exp(pp - qq)
        e2 = torch.exp(ww - qq)
        a = e1 * aa + e2 * v
        b = e1 * bb + e2
        wkv = a / b
        ww = pp + time_decay
        qq = torch.maximum(ww, k)
        e1 = torch.exp(ww - qq)
        e2 = torch.exp(k - qq)
        state[5 * i + 2] = e1 * aa + e2 * v
        state[5 * i + 3] = e1 * bb + e2
        state[5 * i + 4] = qq
        return ow @ (r * wkv)

    def forward(self, token, state):
        with torch.no_grad():
            if state == None:
                state = torch.zeros(self.args.n_layer * 5, self.args.n_embd)
                for i in range(self.args.n_layer):
                    state[5 * i + 4] = -1e30  # -infinity

            x = self.w.emb.weight[token]
            x = self.layer_norm(x, self.w.blocks[0].ln0)
            for i in range(self.args.n_layer):
                att = self.w.blocks[i].att
                x = x + self.time_mixing(self.layer_norm(x, self.w.blocks[i].ln1), state, i,
                                         att.time_mix_k, att.time_mix_v, att.time_mix_r, att.time_first, att.time_decay,
                                         att.key.weight, att.value.weight, att.receptance.weight, att.output.weight)
                ffn = self.w.blocks[i].ffn
                x = x + self.channel_mixing(self.layer_norm(x, self.w.blocks[i].ln2), state, i,
                                            ffn.time_mix_k, ffn.time_mix_r,
                                            ffn.key.weight, ffn.value.weight, ffn.receptance.weight)

            x = self.w.head.weight @ self.layer_norm(x, self.w.ln_out)
            return x.float(), state


CTX_LEN, BATCH, STEPS = 16, 16, 100
config = GPTConfig(VOCAB, CTX_LEN, n_layer=2, n_embd=32)
model = GPT(config)
n_zero = sum(int((p == 0).all()) for p in model.parameters())
print(f"params {sum(p.numel() for p in model.parameters())}, zero-initialised matrices {n_zero}, "
      f"time_decay[0] ends {model.blocks[0].att.time_decay[0].item():.1f}/{model.blocks[0].att.time_decay[-1].item():.1f}")

lr_init, lr_final = 4e-3, 4e-4
optimizer = torch.optim.Adam(model.parameters(), lr=lr_init, betas=(0.9, 0.99), eps=1e-8)
train_data = sample_sequences(BATCH * 20, CTX_LEN + 1)
val_data = sample_sequences(32, CTX_LEN + 1)
for step in range(1, STEPS + 1):
    model.train()
    progress = (step - 1) / STEPS
    lr = lr_init * math.exp(math.log(lr_final / lr_init) * progress)
    for param_group in optimizer.param_groups:
        param_group['lr'] = lr
    start = ((step - 1) * BATCH) % len(train_data)
    batch = train_data[start:start + BATCH]
    x, y = batch[:, :-1].contiguous(), batch[:, 1:].contiguous()  # the dataset's dix[:-1], dix[1:]
    loss, _ = model(x, y)
    model.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 25 == 0:
        print(f"step {step}: loss {loss.item():.4f} lr {lr:.2e}")

model.eval()
with torch.no_grad():
    val_loss, gpt_logits = model(val_data[:, :-1].contiguous(), val_data[:, 1:].contiguous())
    val_loss = val_loss.item()
    acc = (gpt_logits[:, 1:].argmax(-1) == val_data[:, 2:]).float().mean().item()

# RNN mode on the saved weights, one token at a time
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'rwkv-tiny.pth')
    torch.save(model.state_dict(), path)
    args = types.SimpleNamespace()
    args.MODEL_NAME = path
    args.n_layer = config.n_layer
    args.n_embd = config.n_embd
    rnn = RWKV_RNN(args)

rnn_err = 0.0
for b in range(4):
    state = None
    for t in range(CTX_LEN):
        out, state = rnn.forward(int(val_data[b, t]), state)
        rnn_err = max(rnn_err, (out - gpt_logits[b, t]).abs().max().item())
print(f"RNN mode on {len(rnn.w.blocks)} blocks, state {tuple(state.shape)}: "
      f"per-token logits match GPT mode {rnn_err < 1e-4}")

# greedy continuation in RNN mode, carrying the state
hits = 0
for b in range(4):
    state = None
    for t in range(6):
        out, state = rnn.forward(int(val_data[b, t]), state)
    seq = val_data[b, :6].tolist()
    for _ in range(10):
        token = int(torch.argmax(out))
        seq.append(token)
        out, state = rnn.forward(token, state)
    hits += sum(int(seq[t] == TABLE[seq[t - 2], seq[t - 1]]) for t in range(6, 16))
print(f"greedy RNN continuation follows the chain {hits} of 40")
print(f"FINAL val_loss={val_loss:.4f} acc={acc:.4f} rnn_err={rnn_err:.6f} greedy_follow={hits / 40:.4f}")
