"""TTT-Linear (Sun et al., "Learning to (Learn at Test Time)", 2024) as test-time-training/ttt-lm-pytorch
writes it, in a tiny causal LM on a synthetic Markov-chain language.

The sequence-modelling layer's hidden state is a linear model ``W1``/``b1`` per head, updated once per
mini-batch of ``mini_batch_size`` tokens by a gradient step on a self-supervised reconstruction loss:
``Z1 = XK @ W1 + b1`` is pushed through a per-head LayerNorm (``ln_fwd``) towards ``XV - XK``. The inner
gradient is written analytically, ``ln_fused_l2_bwd`` (LayerNorm backward fused with the L2 loss, with
``x.var(dim=-1, keepdim=True, unbiased=False)``), as the repo does. The inner learning rate is learned per
token: ``get_eta`` takes ``F.sigmoid`` of ``torch.einsum("bnkc,hdc->bhnkd", X, learnable_ttt_lr_weight)`` +
bias, scales it by ``ttt_base_lr / head_dim`` and by ``token_idx = 1.0 / torch.arange(1, K + 1)`` (a
non-persistent buffer) plus a learnable offset through ``torch.clamp_min``, broadcast by
``torch.broadcast_to``. ``compute_mini_batch`` runs in the dual form (``torch.tril(XQ @ X1.transpose(-2, -1))``,
``b1_bar = b1_init - torch.tril(eta) @ grad``, ``W1_last`` from the last row of ``eta``) or the primal form
(per-token ``torch.einsum("bhki,bhkj->bhkij", ...)`` outer products accumulated by a ``tril`` einsum), and
the repo's ``scan`` carries the ``params_dict`` over mini-batches (``out[i] = y`` into a preallocated tensor).
The layer's ``W1`` init is ``torch.normal(0, 0.02, size=...)``, its LayerNorm parameters ``torch.tile``-d from
``nn.LayerNorm(head_dim)``'s, its output goes through ``post_norm`` and ``o_proj``; blocks are pre-norm
residual with a SwiGLU MLP, trained by AdamW.

Checked: the dual form equals the primal form and a literal per-token loop (each token's ``W`` from the
mini-batch's start minus its ``eta``-weighted outer products); the analytic inner gradient equals
``torch.autograd.grad(..., create_graph=True)`` and ``torch.func.grad`` (for ``Z1`` and for ``W1``/``b1``);
the outer gradients of a model whose inner gradient comes from autograd (``create_graph=True``) equal those
of the analytic one; and the outer LM loss falls towards the chain's entropy.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


class TTTConfig:
    vocab_size = 16
    hidden_size = 32
    intermediate_size = 48
    num_hidden_layers = 2
    num_attention_heads = 2
    mini_batch_size = 4
    ttt_base_lr = 1.0
    use_dual_form = True
    inner_grad = "analytic"
    initializer_range = 0.02


# ----------------------------------------------------------------------------------- data
SEQ_LEN, BATCH, STEPS = 16, 16, 80
logits_np = np.random.randn(TTTConfig.vocab_size, TTTConfig.vocab_size) * 2.5
trans = np.exp(logits_np) / np.exp(logits_np).sum(1, keepdims=True)
entropy = float(-(trans * np.log(trans)).sum(1).mean())


def get_batch(n):
    seqs = np.zeros((n, SEQ_LEN + 1), dtype=np.int64)
    seqs[:, 0] = np.random.randint(0, TTTConfig.vocab_size, size=n)
    for t in range(1, SEQ_LEN + 1):
        u = np.random.rand(n, 1)
        seqs[:, t] = (trans[seqs[:, t - 1]].cumsum(1) < u).sum(1).clip(0, TTTConfig.vocab_size - 1)
    seqs = torch.from_numpy(seqs)
    return seqs[:, :-1], seqs[:, 1:]


# ----------------------------------------------------------------------------------- ttt ops
def ln_fwd(x, gamma, beta, eps=1e-6):
    "Batch forward for LayerNorm."
    # Mean and variance computation
    mu = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    # Normalization
    std = torch.sqrt(var + eps)
    x_hat = (x - mu) / std
    # Scale and shift
    y = gamma * x_hat + beta
    return y


def ln_fused_l2_bwd(x, l2_target, gamma, beta, eps=1e-6):
    "Batch backward for LayerNorm fused with L2 loss."
    D = x.shape[-1]
    # Mean and variance computation
    mu = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    # Normalization
    std = torch.sqrt(var + eps)
    x_hat = (x - mu) / std
    # Scale and shift
    y = gamma * x_hat + beta
    grad_output = y - l2_target
    grad_x_hat = grad_output * gamma
    z = (
        (1.0 / D)
        * (
            D * grad_x_hat
            - grad_x_hat.sum(dim=-1, keepdim=True)
            - x_hat * (grad_x_hat * x_hat).sum(dim=-1, keepdim=True)
        )
        / std
    )
    return z


def inner_loss(Z1, target, gamma, beta):
    return 0.5 * ((ln_fwd(Z1, gamma, beta) - target) ** 2).sum()


def scan(f, init, xs, out):
    """Minic jax.lax.scan function."""
    carry = init
    num_items = len(next(iter(xs.values())))
    for i in range(num_items):
        x = {key: tensor[i] for key, tensor in xs.items()}
        carry, y = f(carry, x)
        out[i] = y
    return carry


class TTTLinear(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.width // self.num_heads
        self.mini_batch_size = config.mini_batch_size

        token_idx = 1.0 / torch.arange(1, self.mini_batch_size + 1)
        self.register_buffer("token_idx", token_idx, persistent=False)
        self.learnable_token_idx = nn.Parameter(torch.zeros((self.mini_batch_size,)))

        self.q_proj = nn.Linear(self.width, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(self.width, self.num_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(self.width, self.num_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, self.width, bias=False)

        linear_weight_data = nn.Linear(self.width, 1, bias=True).weight.data
        self.learnable_ttt_lr_weight = nn.Parameter(
            torch.stack(
                [torch.normal(0, 0.02, size=linear_weight_data.shape) for _ in range(self.num_heads)], dim=0
            )
        )
        linear_bias_data = nn.Linear(self.width, 1, bias=True).bias.data
        self.learnable_ttt_lr_bias = nn.Parameter(
            torch.stack([torch.zeros_like(linear_bias_data) for _ in range(self.num_heads)], dim=0)
        )

        ln_weight_data = nn.LayerNorm(self.head_dim).weight.data
        self.ttt_norm_weight = nn.Parameter(torch.tile(ln_weight_data.unsqueeze(0), (self.num_heads, 1)))
        ln_bias_data = nn.LayerNorm(self.head_dim).bias.data
        self.ttt_norm_bias = nn.Parameter(torch.tile(ln_bias_data.unsqueeze(0), (self.num_heads, 1)))
        self.post_norm = nn.LayerNorm(self.width, eps=1e-6)

        self.W1 = nn.Parameter(torch.normal(0, 0.02, size=(self.num_heads, self.head_dim, self.head_dim)))
        self.b1 = nn.Parameter(torch.zeros(self.num_heads, 1, self.head_dim))

    def get_eta(self, X, mini_batch_size):
        # [B, num_heads, num_mini_batch, mini_batch_size, 1]
        ttt_lr = torch.einsum(
            "bnkc,hdc->bhnkd", X, self.learnable_ttt_lr_weight
        ) + self.learnable_ttt_lr_bias.reshape(1, -1, 1, 1, 1)
        ttt_lr = F.sigmoid(ttt_lr)
        # [B, num_heads, num_mini_batch, 1, mini_batch_size]
        ttt_lr = ttt_lr.permute(0, 1, 2, 4, 3)
        ttt_lr_eta = self.config.ttt_base_lr * ttt_lr / self.head_dim
        token_idx = self.token_idx + self.learnable_token_idx
        token_idx = torch.clamp_min(token_idx, 0.0)
        B, num_mini_batch = X.shape[0], X.shape[1]
        token_eta = torch.broadcast_to(
            token_idx.reshape(1, 1, 1, mini_batch_size, 1),
            (B, self.num_heads, num_mini_batch, mini_batch_size, 1),
        )
        # [B, num_heads, num_mini_batch, mini_batch_size, mini_batch_size]
        eta = token_eta * ttt_lr_eta
        return eta, token_eta, ttt_lr_eta

    def get_qkv_projections(self, hidden_states):
        B, L, _ = hidden_states.shape
        XQ, XK, XV = self.q_proj(hidden_states), self.k_proj(hidden_states), self.v_proj(hidden_states)
        XQ = XQ.reshape(B, L, self.num_heads, self.head_dim).transpose(1, 2)
        XK = XK.reshape(B, L, self.num_heads, self.head_dim).transpose(1, 2)
        XV = XV.reshape(B, L, self.num_heads, self.head_dim).transpose(1, 2)
        return XQ, XK, XV

    def get_ttt_inputs(self, hidden_states):
        B, L, _ = hidden_states.shape
        num_mini_batch = L // self.mini_batch_size
        X = hidden_states.reshape(B, num_mini_batch, self.mini_batch_size, self.width)
        XQ, XK, XV = self.get_qkv_projections(hidden_states)
        XQ = XQ.reshape(B, self.num_heads, num_mini_batch, self.mini_batch_size, self.head_dim)
        XK = XK.reshape(B, self.num_heads, num_mini_batch, self.mini_batch_size, self.head_dim)
        XV = XV.reshape(B, self.num_heads, num_mini_batch, self.mini_batch_size, self.head_dim)
        eta, token_eta, ttt_lr_eta = self.get_eta(X, self.mini_batch_size)
        return {"XQ": XQ, "XK": XK, "XV": XV, "eta": eta, "token_eta": token_eta, "ttt_lr_eta": ttt_lr_eta}

    def inner_grad(self, Z1, target, ln_weight, ln_bias):
        if self.config.inner_grad == "autograd":
            loss = inner_loss(Z1, target, ln_weight, ln_bias)
            return torch.autograd.grad(loss, Z1, create_graph=True)[0]
        return ln_fused_l2_bwd(Z1, target, ln_weight, ln_bias)

    def ttt(self, inputs, mini_batch_size, use_dual_form):
        B = inputs["XV"].shape[0]
        num_mini_batch = inputs["XV"].shape[2]
        L = inputs["XV"].shape[2] * inputs["XV"].shape[3]
        device = inputs["XV"].device
        dtype = inputs["XV"].dtype

        def compute_mini_batch(params_dict, inputs):
            # [B, nh, f, f], nh=num_heads, f=head_dim
            W1_init = params_dict["W1_states"]
            # [B, nh, 1, f]
            b1_init = params_dict["b1_states"]

            # [B,nh,K,f], K=mini_batch_size
            XQ_mini_batch = inputs["XQ"]
            XV_mini_batch = inputs["XV"]
            XK_mini_batch = inputs["XK"]
            # [B, nh, K, 1]
            eta_mini_batch = inputs["eta"]
            token_eta_mini_batch = inputs["token_eta"]
            ttt_lr_eta_mini_batch = inputs["ttt_lr_eta"]

            X1 = XK_mini_batch
            # [B,nh,K,f] @ [B,nh,f,f] -> [B,nh,K,f]
            Z1 = X1 @ W1_init + b1_init
            reconstruction_target = XV_mini_batch - XK_mini_batch

            ln_weight = self.ttt_norm_weight.reshape(self.num_heads, 1, self.head_dim)
            ln_bias = self.ttt_norm_bias.reshape(self.num_heads, 1, self.head_dim)
            # [B,nh,K,f]
            grad_l_wrt_Z1 = self.inner_grad(Z1, reconstruction_target, ln_weight, ln_bias)

            if use_dual_form:
                # [B,nh,K,K]
                Attn1 = torch.tril(XQ_mini_batch @ X1.transpose(-2, -1))
                # [B,nh,1,f] - [B,nh,K,K] @ [B,nh,K,f] -> [B,nh,K,f]
                b1_bar = b1_init - torch.tril(eta_mini_batch) @ grad_l_wrt_Z1
                # [B,nh,K,f] @ [B,nh,f,f] - ([B,nh,K,1] * [B,nh,K,K]) @ [B,nh,K,f] + [B,nh,K,f]
                Z1_bar = XQ_mini_batch @ W1_init - (eta_mini_batch * Attn1) @ grad_l_wrt_Z1 + b1_bar

                last_eta_mini_batch = eta_mini_batch[:, :, -1, :, None]
                # [B,nh,f,f] - [B,nh,f,K] @ [B,nh,K,f]
                W1_last = W1_init - (last_eta_mini_batch * X1).transpose(-1, -2) @ grad_l_wrt_Z1
                # [B,nh,1,f]
                b1_last = b1_init - torch.sum(last_eta_mini_batch * grad_l_wrt_Z1, dim=-2, keepdim=True)
            else:
                ttt_lr_eta_mini_batch = torch.broadcast_to(
                    ttt_lr_eta_mini_batch,
                    (*ttt_lr_eta_mini_batch.shape[:2], mini_batch_size, mini_batch_size),
                )
                # [B, nh, K, f, f]
                grad_W1 = torch.einsum("bhki,bhkj->bhkij", X1, grad_l_wrt_Z1)
                grad_W1 = torch.einsum("bhnk,bhkij->bhnij", torch.tril(ttt_lr_eta_mini_batch), grad_W1)
                grad_b1 = torch.einsum("bhnk,bhki->bhni", torch.tril(ttt_lr_eta_mini_batch), grad_l_wrt_Z1)

                W1_bar = W1_init.unsqueeze(2) - grad_W1 * token_eta_mini_batch.unsqueeze(-1)
                b1_bar = b1_init - grad_b1 * token_eta_mini_batch
                # [B, nh, K, 1, f] @ [B, nh, K, f, f]
                Z1_bar = (XQ_mini_batch.unsqueeze(3) @ W1_bar).squeeze(3) + b1_bar
                W1_last = W1_bar[:, :, -1]
                b1_last = b1_bar[:, :, -1:]

            Z1_bar = ln_fwd(Z1_bar, ln_weight, ln_bias)
            XQW_mini_batch = XQ_mini_batch + Z1_bar

            last_param_dict = {"W1_states": W1_last, "b1_states": b1_last}
            return last_param_dict, XQW_mini_batch

        init_params_dict = {
            "W1_states": torch.tile(self.W1.unsqueeze(0), dims=(B, 1, 1, 1)),
            "b1_states": torch.tile(self.b1.unsqueeze(0), dims=(B, 1, 1, 1)),
        }
        # [B,num_heads, num_mini_batch, mini_batch_size, f] -> [num_mini_batch, B, num_heads, mini_batch_size, f]
        inputs = tree_map(lambda x: x.permute(2, 0, 1, 3, 4), inputs)
        # allocate output tensor
        XQW_batch = torch.empty(
            (num_mini_batch, B, self.num_heads, mini_batch_size, self.head_dim), device=device, dtype=dtype
        )
        batch_params_dict = scan(compute_mini_batch, init_params_dict, inputs, XQW_batch)
        # [num_mini_batch, B, num_heads, mini_batch_size, head_dim] -> [B, num_mini_batch, mini_batch_size, num_heads, head_dim]
        XQW_batch = XQW_batch.permute(1, 0, 3, 2, 4)
        # [B, L, C]
        XQW_batch = XQW_batch.reshape(B, L, self.width)
        return XQW_batch, batch_params_dict

    def forward(self, hidden_states):
        inputs = self.get_ttt_inputs(hidden_states)
        output_hidden_states, _ = self.ttt(inputs, self.mini_batch_size, self.config.use_dual_form)
        output_hidden_states = self.post_norm(output_hidden_states)
        output_hidden_states = self.o_proj(output_hidden_states)
        return output_hidden_states


def tree_map(fn, inputs):
    return {key: fn(value) for key, value in inputs.items()}


def primal_loop(layer, hidden_states):
    """Each token's own linear model: the mini-batch's starting W minus its eta-weighted outer products."""
    inputs = layer.get_ttt_inputs(hidden_states)
    B, nh, n_mb, K, f = inputs["XQ"].shape
    W = layer.W1.unsqueeze(0).repeat(B, 1, 1, 1)
    b = layer.b1.unsqueeze(0).repeat(B, 1, 1, 1)
    gamma = layer.ttt_norm_weight.reshape(nh, 1, f)
    beta = layer.ttt_norm_bias.reshape(nh, 1, f)
    outs = []
    for m in range(n_mb):
        xq, xk, xv = inputs["XQ"][:, :, m], inputs["XK"][:, :, m], inputs["XV"][:, :, m]
        lr = inputs["ttt_lr_eta"][:, :, m, 0]  # [B, nh, K]
        tok = inputs["token_eta"][:, :, m, :, 0]  # [B, nh, K]
        g = ln_fused_l2_bwd(xk @ W + b, xv - xk, gamma, beta)
        rows = []
        for n in range(K):
            gW = torch.zeros_like(W)
            gb = torch.zeros_like(b)
            for k in range(n + 1):
                gW = gW + lr[:, :, k, None, None] * xk[:, :, k, :, None] * g[:, :, k, None, :]
                gb = gb + lr[:, :, k, None, None] * g[:, :, k : k + 1, :]
            W_n = W - tok[:, :, n, None, None] * gW
            b_n = b - tok[:, :, n, None, None] * gb
            rows.append(xq[:, :, n : n + 1] @ W_n + b_n)
        outs.append(xq + ln_fwd(torch.cat(rows, dim=2), gamma, beta))
        W, b = W_n, b_n
    out = torch.stack(outs, dim=2)  # [B, nh, n_mb, K, f]
    return out.permute(0, 2, 3, 1, 4).reshape(B, n_mb * K, nh * f)


# ----------------------------------------------------------------------------------- model
class SwiGluMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.seq_norm = nn.LayerNorm(config.hidden_size)
        self.seq_modeling_block = TTTLinear(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size)
        self.mlp = SwiGluMLP(config)

    def forward(self, hidden_states):
        hidden_states = hidden_states + self.seq_modeling_block(self.seq_norm(hidden_states))
        return hidden_states + self.mlp(self.ffn_norm(hidden_states))


class TTTForCausalLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([Block(config) for _ in range(config.num_hidden_layers)])
        self.norm = nn.LayerNorm(config.hidden_size)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)

    def forward(self, input_ids, labels=None):
        hidden_states = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        logits = self.lm_head(self.norm(hidden_states))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.reshape(-1))
        return logits, loss


config = TTTConfig()
model = TTTForCausalLM(config)
print(f"TTT-Linear LM: {sum(p.numel() for p in model.parameters())} parameters")

# ---- the analytic inner gradient against autograd and torch.func
layer = model.layers[0].seq_modeling_block
with torch.no_grad():
    layer.ttt_norm_weight.normal_(1.0, 0.1)
    layer.ttt_norm_bias.normal_(0.0, 0.1)
x_probe = torch.randn(2, SEQ_LEN, config.hidden_size)
inp = layer.get_ttt_inputs(x_probe)
X1, XV = inp["XK"][:, :, 0].detach(), inp["XV"][:, :, 0].detach()
gamma = layer.ttt_norm_weight.detach().reshape(2, 1, -1)
beta = layer.ttt_norm_bias.detach().reshape(2, 1, -1)
W1, b1 = layer.W1.detach().clone().requires_grad_(True), layer.b1.detach().clone()
Z1 = X1 @ W1 + b1
target = XV - X1
analytic = ln_fused_l2_bwd(Z1, target, gamma, beta)
by_autograd = torch.autograd.grad(inner_loss(Z1, target, gamma, beta), Z1, create_graph=True)[0]
by_func = torch.func.grad(inner_loss)(Z1.detach(), target, gamma, beta)
gW_func, gb_func = torch.func.grad(lambda W, b: inner_loss(X1 @ W + b, target, gamma, beta), argnums=(0, 1))(
    W1.detach(), b1
)
gW_analytic = (X1.transpose(-1, -2) @ analytic).sum(0)
gb_analytic = analytic.sum(dim=(0, 2), keepdim=True)[0]


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


err_inner = max(
    rel_err(analytic, by_autograd),
    rel_err(analytic, by_func),
    rel_err(gW_analytic, gW_func),
    rel_err(gb_analytic, gb_func),
)
# the second-order path: differentiating the inner gradient's norm through create_graph
hvp = torch.autograd.grad(by_autograd.pow(2).sum(), W1)[0]
hvp_analytic = torch.autograd.grad(ln_fused_l2_bwd(X1 @ W1 + b1, target, gamma, beta).pow(2).sum(), W1)[0]
err_second = rel_err(hvp_analytic, hvp)
inner_ok = err_inner < 1e-4 and err_second < 1e-4
print(f"inner gradient: analytic == autograd == torch.func: {inner_ok}")

# ---- dual form == primal form == per-token loop
with torch.no_grad():
    dual, params_dual = layer.ttt(inp, config.mini_batch_size, use_dual_form=True)
    primal, params_primal = layer.ttt(inp, config.mini_batch_size, use_dual_form=False)
    looped = primal_loop(layer, x_probe)
err_forms = max(
    (dual - primal).abs().max().item(),
    (dual - looped).abs().max().item(),
    (params_dual["W1_states"] - params_primal["W1_states"]).abs().max().item(),
    (params_dual["b1_states"] - params_primal["b1_states"]).abs().max().item(),
)
forms_ok = err_forms < 1e-4
print(f"dual form == primal form == per-token loop: {forms_ok} {tuple(dual.shape)}")

# ---- outer gradients through the analytic inner step == through autograd(create_graph=True)
x_ids, y_ids = get_batch(4)
grads = {}
for mode in ("analytic", "autograd"):
    config.inner_grad = mode
    model.zero_grad()
    model(x_ids, y_ids)[1].backward()
    grads[mode] = [p.grad.clone() for p in model.parameters()]
config.inner_grad = "analytic"
outer_err = max(
    ((a - b).abs().max() / (b.abs().max() + 1e-12)).item()
    for a, b in zip(grads["analytic"], grads["autograd"])
)
outer_ok = outer_err < 1e-3
print(f"outer gradients, analytic inner step == autograd inner step: {outer_ok}")

# ---- train the LM
model.zero_grad()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01, betas=(0.9, 0.95))
eval_x, eval_y = get_batch(64)


@torch.no_grad()
def evaluate():
    model.eval()
    loss = model(eval_x, eval_y)[1].item()
    model.train()
    return loss


first = evaluate()
print(
    f"step 0 eval loss {first:.4f} (uniform {math.log(config.vocab_size):.4f}, chain entropy {entropy:.4f})"
)
for step in range(1, STEPS + 1):
    x_ids, y_ids = get_batch(BATCH)
    _, loss = model(x_ids, y_ids)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 20 == 0:
        print(f"step {step} train loss {loss.item():.4f} eval loss {evaluate():.4f}")
last = evaluate()

print(
    f"FINAL first_loss={first:.4f} final_loss={last:.4f} loss_falls={int(last < first - 0.3)} "
    f"dual_eq_primal={int(forms_ok)} analytic_eq_autograd={int(inner_ok)} outer_grads_equal={int(outer_ok)}"
)
