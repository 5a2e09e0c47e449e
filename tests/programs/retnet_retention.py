"""RetNet (Sun et al. 2023) multi-scale retention as Jamie-Stirling/RetNet writes it, with torchscale's
per-head decays, in its three forms: parallel, recurrent and chunkwise, checked equal, then trained
on a copy task.

``SimpleRetention`` heads with ``nn.Parameter(torch.randn(hidden, head) / hidden)`` projections, the
decay ``gamma = 1 - 2 ** (-5 - torch.arange(heads))`` (``.tolist()`` into per-head floats), the ``D``
matrix from ``torch.tril`` and ``torch.exp((n - m) * math.log(gamma))`` with ``masked_fill(..., 0)``,
xPos (``register_buffer('scale', ...)``, ``fixed_pos_embedding`` by ``torch.einsum("i , j -> i j")``,
``rotate_every_two`` by ``torch.stack((-x2, x1), dim=-1).flatten(-2)``, ``duplicate_interleave`` by
``view``/``repeat``/``view``, ``downscale=True`` keys and position offsets), the recurrent state update
``s_n = gamma * s_n_1 + K.transpose(-1, -2) @ V``, the chunkwise form (``D[-1].view(1, chunk, 1)``,
``gamma ** chunk_size``, an ``e`` tensor filled per row in a loop), ``MultiScaleRetention`` with
``torch.cat`` of heads, ``nn.GroupNorm(heads, v_dim)`` over ``reshape(-1, v_dim)`` and the swish gate
``lambda x: x * torch.sigmoid(x)``, pre-LayerNorm blocks with GELU FFNs; per-layer state lists
``torch.zeros(...).unsqueeze(0).repeat(batch, 1, 1)``. Training: AdamW, ``clip_grad_norm_``, loss on
the copied half only; evaluation by recurrent greedy decoding.
"""
# ruff: noqa: UP008  (the repository's super(Class, self))

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def fixed_pos_embedding(x):
    seq_len, dim = x.shape
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim) / dim))
    sinusoid_inp = (
        torch.einsum("i , j -> i j", torch.arange(0, seq_len, dtype=torch.float), inv_freq).to(x)
    )
    return torch.sin(sinusoid_inp), torch.cos(sinusoid_inp)


def rotate_every_two(x):
    x1 = x[:, :, ::2]
    x2 = x[:, :, 1::2]
    x = torch.stack((-x2, x1), dim=-1)
    return x.flatten(-2)  # in einsum notation: rearrange(x, '... d j -> ... (d j)')\


def duplicate_interleave(m):
    """
    A simple version of `torch.repeat_interleave` for duplicating a matrix while interleaving the copy.
    """
    dim0 = m.shape[0]
    m = m.view(-1, 1)  # flatten the matrix
    m = m.repeat(1, 2)  # repeat all elements into the 2nd dimension
    m = m.view(dim0, -1)  # reshape into a matrix, interleaving the copy
    return m


def apply_rotary_pos_emb(x, sin, cos, scale=1):
    sin, cos = map(lambda t: duplicate_interleave(t * scale), (sin, cos))
    # einsum notation for lambda t: repeat(t[offset:x.shape[1]+offset,:], "n d -> () n () (d j)", j=2)
    return (x * cos) + (rotate_every_two(x) * sin)


class XPOS(nn.Module):
    def __init__(self, head_dim, scale_base=512):
        super().__init__()
        self.head_dim = head_dim
        self.scale_base = scale_base
        self.register_buffer(
            "scale", (torch.arange(0, head_dim, 2) + 0.4 * head_dim) / (1.4 * head_dim)
        )

    def forward(self, x, offset=0, downscale=False):
        length = x.shape[1]
        min_pos = 0
        max_pos = length + offset + min_pos
        scale = self.scale ** torch.arange(min_pos, max_pos, 1).to(self.scale).div(self.scale_base)[:, None]
        sin, cos = fixed_pos_embedding(scale)

        if scale.shape[0] > length:
            scale = scale[-length:]
            sin = sin[-length:]
            cos = cos[-length:]

        if downscale:
            scale = 1 / scale

        x = apply_rotary_pos_emb(x, sin, cos, scale)
        return x


class SimpleRetention(nn.Module):
    def __init__(self, hidden_size, gamma, head_size=None, double_v_dim=False):
        """
        Simple retention mechanism based on the paper
        "Retentive Network: A Successor to Transformer for Large Language Models"[https://arxiv.org/pdf/2307.08621.pdf]
        """
        super(SimpleRetention, self).__init__()

        self.hidden_size = hidden_size
        if head_size is None:
            head_size = hidden_size
        self.head_size = head_size

        self.v_dim = head_size * 2 if double_v_dim else head_size
        self.gamma = gamma

        self.W_Q = nn.Parameter(torch.randn(hidden_size, head_size) / hidden_size)
        self.W_K = nn.Parameter(torch.randn(hidden_size, head_size) / hidden_size)
        self.W_V = nn.Parameter(torch.randn(hidden_size, self.v_dim) / hidden_size)

        self.xpos = XPOS(head_size)

    def forward(self, X):
        """
        Parallel (default) representation of the retention mechanism.
        X: (batch_size, sequence_length, hidden_size)
        """
        sequence_length = X.shape[1]
        D = self._get_D(sequence_length).to(self.W_Q.device)

        Q = (X @ self.W_Q)
        K = (X @ self.W_K)

        Q = self.xpos(Q)
        K = self.xpos(K, downscale=True)

        V = X @ self.W_V
        ret = (Q @ K.permute(0, 2, 1)) * D.unsqueeze(0)

        return ret @ V

    def forward_recurrent(self, x_n, s_n_1, n):
        """
        Recurrent representation of the retention mechanism.
        x_n: (batch_size, 1, hidden_size)
        s_n_1: (batch_size, hidden_size, v_dim)
        """

        Q = (x_n @ self.W_Q)
        K = (x_n @ self.W_K)

        Q = self.xpos(Q, n + 1)
        K = self.xpos(K, n + 1, downscale=True)

        V = x_n @ self.W_V

        # K: (batch_size, 1, hidden_size)
        # V: (batch_size, 1, v_dim)
        # s_n = gamma * s_n_1 + K^T @ V

        s_n = self.gamma * s_n_1 + (K.transpose(-1, -2) @ V)

        return (Q @ s_n), s_n

    def forward_chunkwise(self, x_i, r_i_1, i):
        """
        Chunkwise representation of the retention mechanism.
        x_i: (batch_size, chunk_size, hidden_size)
        r_i_1: (batch_size, hidden_size, v_dim)
        """
        batch, chunk_size, _ = x_i.shape
        D = self._get_D(chunk_size)

        Q = (x_i @ self.W_Q)
        K = (x_i @ self.W_K)

        Q = self.xpos(Q, i * chunk_size)
        K = self.xpos(K, i * chunk_size, downscale=True)

        V = x_i @ self.W_V

        r_i = (K.transpose(-1, -2) @ (V * D[-1].view(1, chunk_size, 1))) + (self.gamma ** chunk_size) * r_i_1

        inner_chunk = ((Q @ K.transpose(-1, -2)) * D.unsqueeze(0)) @ V

        # e[i,j] = gamma ** (i+1)
        e = torch.zeros(batch, chunk_size, 1)

        for _i in range(chunk_size):
            e[:, _i, :] = self.gamma ** (_i + 1)

        cross_chunk = (Q @ r_i_1) * e

        return inner_chunk + cross_chunk, r_i

    def _get_D(self, sequence_length):
        n = torch.arange(sequence_length).unsqueeze(1)
        m = torch.arange(sequence_length).unsqueeze(0)

        # gamma ** (n - m) below the diagonal, 0 above it (where the exponent is negative)
        causal = torch.tril(torch.ones(sequence_length, sequence_length)).bool()
        D = torch.exp((n - m) * math.log(self.gamma)).masked_fill(~causal, 0)
        return D


class MultiScaleRetention(nn.Module):
    def __init__(self, hidden_size, heads, double_v_dim=False):
        """
        Multi-scale retention mechanism based on the paper
        "Retentive Network: A Successor to Transformer for Large Language Models"[https://arxiv.org/pdf/2307.08621.pdf]
        """
        super(MultiScaleRetention, self).__init__()
        self.hidden_size = hidden_size
        self.v_dim = hidden_size * 2 if double_v_dim else hidden_size
        self.heads = heads
        assert hidden_size % heads == 0, "hidden_size must be divisible by heads"
        self.head_size = hidden_size // heads
        self.head_v_dim = hidden_size * 2 if double_v_dim else hidden_size

        # torchscale's decays: 1 - 1/32, 1 - 1/64, ...
        self.gammas = (1 - 2 ** (-5 - torch.arange(heads, dtype=torch.float))).detach().cpu().tolist()

        self.swish = lambda x: x * torch.sigmoid(x)
        self.W_G = nn.Parameter(torch.randn(hidden_size, self.v_dim) / hidden_size)
        self.W_O = nn.Parameter(torch.randn(self.v_dim, hidden_size) / hidden_size)
        self.group_norm = nn.GroupNorm(heads, self.v_dim)

        self.retentions = nn.ModuleList([
            SimpleRetention(self.hidden_size, gamma, self.head_size, double_v_dim) for gamma in self.gammas
        ])

    def forward(self, X):
        """
        parallel representation of the multi-scale retention mechanism
        """

        # apply each individual retention mechanism to X
        Y = []
        for i in range(self.heads):
            Y.append(self.retentions[i](X))

        Y = torch.cat(Y, dim=2)
        Y_shape = Y.shape
        Y = self.group_norm(Y.reshape(-1, self.v_dim)).reshape(Y_shape)

        return (self.swish(X @ self.W_G) * Y) @ self.W_O

    def forward_recurrent(self, x_n, s_n_1s, n):
        """
        recurrent representation of the multi-scale retention mechanism
        x_n: (batch_size, 1, hidden_size)
        s_n_1s: (batch_size, heads, head_size, head_size)

        """

        # apply each individual retention mechanism to a slice of X
        Y = []
        s_ns = []
        for i in range(self.heads):
            y, s_n = self.retentions[i].forward_recurrent(
                x_n[:, :, :], s_n_1s[i], n
            )
            Y.append(y)
            s_ns.append(s_n)

        Y = torch.cat(Y, dim=2)
        Y_shape = Y.shape
        Y = self.group_norm(Y.reshape(-1, self.v_dim)).reshape(Y_shape)

        return (self.swish(x_n @ self.W_G) * Y) @ self.W_O, s_ns

    def forward_chunkwise(self, x_i, r_i_1s, i):
        """
        chunkwise representation of the multi-scale retention mechanism
        x_i: (batch_size, chunk_size, hidden_size)
        r_i_1s: (batch_size, heads, head_size, head_size)
        """
        batch, chunk_size, _ = x_i.shape

        # apply each individual retention mechanism to a slice of X
        Y = []
        r_is = []
        for j in range(self.heads):
            y, r_i = self.retentions[j].forward_chunkwise(
                x_i[:, :, :], r_i_1s[j], i
            )
            Y.append(y)
            r_is.append(r_i)

        Y = torch.cat(Y, dim=2)
        Y_shape = Y.shape
        Y = self.group_norm(Y.reshape(-1, self.v_dim)).reshape(Y_shape)

        return (self.swish(x_i @ self.W_G) * Y) @ self.W_O, r_is


class RetNet(nn.Module):
    def __init__(self, layers, hidden_dim, ffn_size, heads, double_v_dim=False):
        super(RetNet, self).__init__()
        self.layers = layers
        self.hidden_dim = hidden_dim
        self.ffn_size = ffn_size
        self.heads = heads
        self.v_dim = hidden_dim * 2 if double_v_dim else hidden_dim

        self.retentions = nn.ModuleList([
            MultiScaleRetention(hidden_dim, heads, double_v_dim)
            for _ in range(layers)
        ])
        self.ffns = nn.ModuleList([
            nn.Sequential(
                nn.Linear(hidden_dim, ffn_size),
                nn.GELU(),
                nn.Linear(ffn_size, hidden_dim)
            )
            for _ in range(layers)
        ])
        self.layer_norms_1 = nn.ModuleList([
            nn.LayerNorm(hidden_dim)
            for _ in range(layers)
        ])
        self.layer_norms_2 = nn.ModuleList([
            nn.LayerNorm(hidden_dim)
            for _ in range(layers)
        ])

    def forward(self, X):
        """
        X: (batch_size, sequence_length, hidden_size)
        """
        for i in range(self.layers):
            Y = self.retentions[i](self.layer_norms_1[i](X)) + X

            X = self.ffns[i](self.layer_norms_2[i](Y)) + Y

        return X

    def forward_recurrent(self, x_n, s_n_1s, n):
        """
        X: (batch_size, sequence_length, hidden_size)
        s_n_1s: list of lists of tensors of shape (batch_size, hidden_size // heads, hidden_size // heads)

        """
        s_ns = []
        for i in range(self.layers):
            # list index out of range
            o_n, s_n = self.retentions[i].forward_recurrent(self.layer_norms_1[i](x_n), s_n_1s[i], n)
            y_n = o_n + x_n
            s_ns.append(s_n)
            x_n = self.ffns[i](self.layer_norms_2[i](y_n)) + y_n

        return x_n, s_ns

    def forward_chunkwise(self, x_i, r_i_1s, i):
        """
        X: (batch_size, sequence_length, hidden_size)
        r_i_1s: list of lists of tensors of shape (batch_size, hidden_size // heads, hidden_size // heads)

        """
        r_is = []
        for j in range(self.layers):
            o_i, r_i = self.retentions[j].forward_chunkwise(self.layer_norms_1[j](x_i), r_i_1s[j], i)
            y_i = o_i + x_i
            r_is.append(r_i)
            x_i = self.ffns[j](self.layer_norms_2[j](y_i)) + y_i

        return x_i, r_is


class RetNetLM(nn.Module):
    def __init__(self, vocab, layers, hidden_dim, ffn_size, heads):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden_dim)
        self.retnet = RetNet(layers, hidden_dim, ffn_size, heads)
        self.lm_head = nn.Linear(hidden_dim, vocab)

    def initial_states(self, batch_size):
        heads, head = self.retnet.heads, self.retnet.hidden_dim // self.retnet.heads
        return [
            [torch.zeros(head, head).unsqueeze(0).repeat(batch_size, 1, 1) for _ in range(heads)]
            for _ in range(self.retnet.layers)
        ]

    def forward(self, ids):
        return self.lm_head(self.retnet(self.embed(ids)))

    def forward_recurrent(self, ids):
        states = self.initial_states(ids.shape[0])
        outs = []
        for n in range(ids.shape[1]):
            y, states = self.retnet.forward_recurrent(self.embed(ids[:, n:n + 1]), states, n)
            outs.append(y)
        return self.lm_head(torch.cat(outs, dim=1))

    def forward_chunkwise(self, ids, chunk_size):
        states = self.initial_states(ids.shape[0])
        outs = []
        for i in range(ids.shape[1] // chunk_size):
            y, states = self.retnet.forward_chunkwise(self.embed(ids[:, i * chunk_size:(i + 1) * chunk_size]), states, i)
            outs.append(y)
        return self.lm_head(torch.cat(outs, dim=1))


VOCAB, COPY = 6, 6   # tokens 0..5 to copy; SEP = 6, EOS = 7
SEP, EOS = VOCAB, VOCAB + 1
SEQ = 2 * COPY + 4   # [x (6), SEP, x (6), EOS, EOS, EOS] = 16 tokens, 4 chunks of 4


def make_batch(n):
    x = torch.randint(0, VOCAB, (n, COPY))
    sep = torch.full((n, 1), SEP)
    eos = torch.full((n, 3), EOS)
    return torch.cat([x, sep, x, eos], dim=1)


model = RetNetLM(VOCAB + 2, layers=2, hidden_dim=32, ffn_size=64, heads=4)
print(f"gammas {[round(g, 6) for g in model.retnet.retentions[0].gammas]}, "
      f"params {sum(p.numel() for p in model.parameters())}")

# the three forms of the same untrained network on the same batch
check = make_batch(4)
with torch.no_grad():
    parallel = model(check)
    recurrent = model.forward_recurrent(check)
    chunkwise = model.forward_chunkwise(check, chunk_size=4)
recurrent_diff = (parallel - recurrent).abs().max().item()
chunkwise_diff = (parallel - chunkwise).abs().max().item()
print(f"parallel {tuple(parallel.shape)} against recurrent and chunkwise: "
      f"agree {recurrent_diff < 1e-4 and chunkwise_diff < 1e-4}")

optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
STEPS = 150
for step in range(1, STEPS + 1):
    model.train()
    batch = make_batch(32)
    logits = model(batch[:, :-1])
    # the copied half only: the targets after SEP
    loss = F.cross_entropy(logits[:, COPY:2 * COPY].reshape(-1, VOCAB + 2), batch[:, COPY + 1:2 * COPY + 1].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: loss {loss.item():.4f}")

model.eval()
val = make_batch(64)
with torch.no_grad():
    logits = model(val[:, :-1])
    val_loss = F.cross_entropy(logits[:, COPY:2 * COPY].reshape(-1, VOCAB + 2),
                               val[:, COPY + 1:2 * COPY + 1].reshape(-1)).item()
    token_acc = (logits[:, COPY:2 * COPY].argmax(-1) == val[:, COPY + 1:2 * COPY + 1]).float().mean().item()

    # greedy decoding in the recurrent form: feed the prompt, then the model's own tokens
    states = model.initial_states(val.shape[0])
    prompt = val[:, :COPY + 1]
    for n in range(COPY + 1):
        y, states = model.retnet.forward_recurrent(model.embed(prompt[:, n:n + 1]), states, n)
    generated = []
    for n in range(COPY + 1, 2 * COPY + 1):
        token = model.lm_head(y).argmax(-1)
        generated.append(token)
        y, states = model.retnet.forward_recurrent(model.embed(token), states, n)
    generated = torch.cat(generated, dim=1)
    seq_acc = (generated == val[:, :COPY]).all(dim=1).float().mean().item()

    trained_recurrent = (model(val) - model.forward_recurrent(val)).abs().max().item()
    trained_chunkwise = (model(val) - model.forward_chunkwise(val, chunk_size=4)).abs().max().item()
print(f"trained forms agree {max(trained_recurrent, trained_chunkwise) < 1e-3}; "
      f"greedy recurrent copies {int(seq_acc * 64)} of 64 sequences exactly")
print(f"FINAL val_loss={val_loss:.4f} token_acc={token_acc:.4f} seq_acc={seq_acc:.4f} "
      f"recurrent_diff={recurrent_diff:.6f} chunkwise_diff={chunkwise_diff:.6f}")
