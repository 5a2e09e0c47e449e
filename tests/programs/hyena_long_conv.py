"""The Hyena operator (Poli et al. 2023) as HazyResearch/safari's standalone_hyena.py writes it, trained
on a long-lag recall task.

``fftconv`` (``torch.fft.rfft(k, n=fft_size) / fft_size``, ``u.to(dtype=k.dtype)``,
``torch.fft.irfft(u_f * k_f, n=fft_size, norm="forward")[..., :seqlen]``, ``+ u * D.unsqueeze(-1)``),
``OptimModule.register`` (a buffer when ``lr=0.0``, else a Parameter carrying an ``_optim`` dict set by
``setattr``), ``PositionalEmbedding`` from ``torch.linspace`` and the complex ``torch.exp(-1j * f * w)``
split by ``.real``/``.imag``, ``Sin`` activations with a trainable frequency shared across the filter
MLP, ``nn.Sequential.append``, ``ExponentialModulation`` by ``torch.exp(-t * self.deltas.abs())``,
``_optim`` tags set through ``c.state_dict().items()`` + ``getattr``, ``HyenaOperator`` with
``in_proj``, the short depthwise ``nn.Conv1d(inner_width, inner_width, 3, padding=2,
groups=inner_width)`` cut to ``[..., :l_filter]``, ``*x, v = uc.split(self.d_model, dim=1)``, einops'
rearranges written as ``view``/``permute``/``transpose``, the gating loop over ``reversed(x[1:])``;
safari's optimizer setup (parameters without ``_optim`` first, then one ``add_param_group`` per
distinct ``frozenset(hp.items())``). ``fftconv`` is also checked against a direct causal convolution.

The task: the target at step ``t`` is the input token at ``t - 20``, which only a long filter reaches.
"""
# ruff: noqa: C414, UP008, B007, B009, B010  (safari's sorted(list(...)), super(Class, self), setattr/getattr of "_optim", unused loop names)

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def fftconv(u, k, D):
    seqlen = u.shape[-1]
    fft_size = 2 * seqlen

    k_f = torch.fft.rfft(k, n=fft_size) / fft_size
    u_f = torch.fft.rfft(u.to(dtype=k.dtype), n=fft_size)

    if len(u.shape) > 3:
        k_f = k_f.unsqueeze(1)
    y = torch.fft.irfft(u_f * k_f, n=fft_size, norm="forward")[..., :seqlen]

    out = y + u * D.unsqueeze(-1)
    return out.to(dtype=u.dtype)


class OptimModule(nn.Module):
    """ Interface for Module that allows registering buffers/parameters with configurable optimizer hyperparameters """

    def register(self, name, tensor, lr=None, wd=0.0):
        """Register a tensor with a configurable learning rate and 0 weight decay"""

        if lr == 0.0:
            self.register_buffer(name, tensor)
        else:
            self.register_parameter(name, nn.Parameter(tensor))

            optim = {}
            if lr is not None:
                optim["lr"] = lr
            if wd is not None:
                optim["weight_decay"] = wd
            setattr(getattr(self, name), "_optim", optim)


class Sin(nn.Module):
    def __init__(self, dim, w=10, train_freq=True):
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(1, dim)) if train_freq else w * torch.ones(1, dim)

    def forward(self, x):
        return torch.sin(self.freq * x)


class PositionalEmbedding(OptimModule):
    def __init__(self, emb_dim: int, seq_len: int, lr_pos_emb: float = 1e-5, **kwargs):
        """Complex exponential positional embeddings for Hyena filters."""
        super().__init__()

        self.seq_len = seq_len
        # The time embedding fed to the filteres is normalized so that t_f = 1
        t = torch.linspace(0, 1, self.seq_len)[None, :, None]  # 1, L, 1

        if emb_dim > 1:
            bands = (emb_dim - 1) // 2
        # To compute the right embeddings we use the "proper" linspace
        t_rescaled = torch.linspace(0, seq_len - 1, seq_len)[None, :, None]
        w = 2 * math.pi * t_rescaled / seq_len  # 1, L, 1

        f = torch.linspace(1e-4, bands - 1, bands)[None, None]
        z = torch.exp(-1j * f * w)
        z = torch.cat([t, z.real, z.imag], dim=-1)
        self.register("z", z, lr=lr_pos_emb)
        self.register("t", t, lr=0.0)

    def forward(self, L):
        return self.z[:, :L], self.t[:, :L]


class ExponentialModulation(OptimModule):
    def __init__(
        self,
        d_model,
        fast_decay_pct=0.3,
        slow_decay_pct=1.5,
        target=1e-2,
        modulation_lr=0.0,
        modulate: bool = True,
        shift: float = 0.0,
        **kwargs
    ):
        super().__init__()
        self.modulate = modulate
        self.shift = shift
        max_decay = math.log(target) / fast_decay_pct
        min_decay = math.log(target) / slow_decay_pct
        deltas = torch.linspace(min_decay, max_decay, d_model)[None, None]
        self.register("deltas", deltas, lr=modulation_lr)

    def forward(self, t, x):
        if self.modulate:
            decay = torch.exp(-t * self.deltas.abs())
            x = x * (decay + self.shift)
        return x


class HyenaFilter(OptimModule):
    def __init__(
        self,
        d_model,
        emb_dim=3,  # dim of input to MLP, augments with positional encoding
        order=16,  # width of the implicit MLP
        fused_fft_conv=False,
        seq_len=1024,
        lr=1e-3,
        lr_pos_emb=1e-5,
        dropout=0.0,
        w=1,  # frequency of periodic activations
        wd=0,  # weight decay of kernel parameters
        bias=True,
        num_inner_mlps=2,
        normalized=False,
        **kwargs
    ):
        """
        Implicit long filter with modulation.

        Args:
            d_model: number of channels in the input
            emb_dim: dimension of the positional encoding (`emb_dim` - 1) // 2 is the number of bands
            order: width of the FFN
            num_inner_mlps: number of inner linear layers inside filter MLP
        """
        super().__init__()
        self.d_model = d_model
        self.use_bias = bias
        self.fused_fft_conv = fused_fft_conv
        self.bias = nn.Parameter(torch.randn(self.d_model))
        self.dropout = nn.Dropout(dropout)

        act = Sin(dim=order, w=w)
        self.emb_dim = emb_dim
        assert emb_dim % 2 != 0 and emb_dim >= 3, "emb_dim must be odd and greater or equal to 3 (time, sine and cosine)"
        self.seq_len = seq_len

        self.pos_emb = PositionalEmbedding(emb_dim, seq_len, lr_pos_emb)

        self.implicit_filter = nn.Sequential(
            nn.Linear(emb_dim, order),
            act,
        )
        for i in range(num_inner_mlps):
            self.implicit_filter.append(nn.Linear(order, order))
            self.implicit_filter.append(act)

        self.implicit_filter.append(nn.Linear(order, d_model, bias=False))

        self.modulation = ExponentialModulation(d_model, **kwargs)

        self.normalized = normalized
        for c in self.implicit_filter.children():
            for name, v in c.state_dict().items():
                optim = {"weight_decay": wd, "lr": lr}
                setattr(getattr(c, name), "_optim", optim)

    def filter(self, L, *args, **kwargs):
        z, t = self.pos_emb(L)
        h = self.implicit_filter(z)
        h = self.modulation(t, h)
        return h

    def forward(self, x, L, k=None, bias=None, *args, **kwargs):
        if k is None:
            k = self.filter(L)

        # Ensure compatibility with filters that return a tuple
        k = k[0] if type(k) is tuple else k

        y = fftconv(x, k, bias)
        return y


class HyenaOperator(nn.Module):
    def __init__(
        self,
        d_model,
        l_max,
        order=2,
        filter_order=64,
        dropout=0.0,
        filter_dropout=0.0,
        **filter_args,
    ):
        r"""
        Hyena operator described in the paper https://arxiv.org/pdf/2302.10866.pdf

        Args:
            d_model (int): Dimension of the input and output embeddings (width of the layer)
            l_max: (int): Maximum input sequence length. Defaults to None
            order: (int): Depth of the Hyena recurrence. Defaults to 2
            dropout: (float): Dropout probability. Defaults to 0.0
            filter_dropout: (float): Dropout probability for the filter. Defaults to 0.0
        """
        super().__init__()
        self.d_model = d_model
        self.l_max = l_max
        self.order = order
        inner_width = d_model * (order + 1)
        self.dropout = nn.Dropout(dropout)
        self.in_proj = nn.Linear(d_model, inner_width)
        self.out_proj = nn.Linear(d_model, d_model)

        self.short_filter = nn.Conv1d(
            inner_width,
            inner_width,
            3,
            padding=2,
            groups=inner_width
        )
        self.filter_fn = HyenaFilter(
            d_model * (order - 1),
            order=filter_order,
            seq_len=l_max,
            channels=1,
            dropout=filter_dropout,
            **filter_args
        )

    def forward(self, u, *args, **kwargs):
        l = u.size(-2)  # noqa: E741  (the repository's name)
        l_filter = min(l, self.l_max)
        u = self.in_proj(u)
        u = u.transpose(1, 2)  # rearrange(u, 'b l d -> b d l')

        uc = self.short_filter(u)[..., :l_filter]
        *x, v = uc.split(self.d_model, dim=1)

        k = self.filter_fn.filter(l_filter)[0]
        # rearrange(k, 'l (o d) -> o d l', o=self.order - 1)
        k = k.view(l_filter, self.order - 1, self.d_model).permute(1, 2, 0)
        bias = self.filter_fn.bias.view(self.order - 1, self.d_model)  # rearrange '(o d) -> o d'

        for o, x_i in enumerate(reversed(x[1:])):
            v = self.dropout(v * x_i)
            v = self.filter_fn(v, l_filter, k=k[o], bias=bias[o])

        y = (v * x[0]).transpose(1, 2)  # rearrange(v * x[0], 'b d l -> b l d')

        y = self.out_proj(y)
        return y


class HyenaLM(nn.Module):
    def __init__(self, vocab, d_model, l_max, n_layer=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList([HyenaOperator(d_model, l_max, order=2, filter_order=32, emb_dim=17, w=10, lr=3e-3) for _ in range(n_layer)])
        self.norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(n_layer)])
        self.head = nn.Linear(d_model, vocab)

    def forward(self, ids):
        x = self.embed(ids)
        for norm, layer in zip(self.norms, self.layers):
            x = x + layer(norm(x))
        return self.head(x)


def setup_optimizer(model, lr, weight_decay):
    # safari's src/utils/optim: parameters tagged with _optim get their own groups
    all_parameters = list(model.parameters())
    params = [p for p in all_parameters if not hasattr(p, "_optim")]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    hps = [getattr(p, "_optim") for p in all_parameters if hasattr(p, "_optim")]
    hps = [dict(s) for s in sorted(list(dict.fromkeys(frozenset(hp.items()) for hp in hps)))]
    for hp in hps:
        params = [p for p in all_parameters if getattr(p, "_optim", None) == hp]
        optimizer.add_param_group({"params": params, **hp})
    return optimizer


VOCAB, SEQ, LAG = 8, 64, 20

# fftconv against a direct causal convolution on random inputs
u = torch.randn(2, 3, SEQ)
k = torch.randn(3, SEQ)
D = torch.randn(3)
direct = torch.stack([(u[..., :t + 1] * k[:, :t + 1].flip(-1)).sum(-1) for t in range(SEQ)], dim=-1) + u * D[:, None]
fft_diff = (fftconv(u, k, D) - direct).abs().max().item()
print(f"fftconv {tuple(u.shape)} against direct causal convolution: agree {fft_diff < 1e-4}")

model = HyenaLM(VOCAB, 16, SEQ)
optimizer = setup_optimizer(model, lr=3e-3, weight_decay=0.01)
print(f"params {sum(p.numel() for p in model.parameters())}, buffers {[n for n, _ in model.named_buffers()][:2]}, "
      f"param groups {len(optimizer.param_groups)} with lrs {[g['lr'] for g in optimizer.param_groups]}")

STEPS = 200
for step in range(1, STEPS + 1):
    model.train()
    ids = torch.randint(0, VOCAB, (16, SEQ))
    logits = model(ids)
    loss = F.cross_entropy(logits[:, LAG:].reshape(-1, VOCAB), ids[:, :-LAG].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    ids = torch.randint(0, VOCAB, (64, SEQ))
    logits = model(ids)
    val_loss = F.cross_entropy(logits[:, LAG:].reshape(-1, VOCAB), ids[:, :-LAG].reshape(-1)).item()
    acc = (logits[:, LAG:].argmax(-1) == ids[:, :-LAG]).float().mean().item()
    filt = model.layers[0].filter_fn.filter(SEQ)[0]
print(f"filter {tuple(filt.shape)}; recall at lag {LAG}: accuracy {acc:.3f}")
print(f"FINAL val_loss={val_loss:.4f} acc={acc:.4f} fft_diff={fft_diff:.6f} filter_norm={filt.norm().item():.4f}")
