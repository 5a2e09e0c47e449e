"""DoRA (Liu et al., ICML 2024: weight-decomposed low-rank adaptation) as HF peft writes it
(``peft/tuners/lora/layer.py``: ``LoraLayer.update_layer``, ``Linear.forward``/``merge``/``unmerge``,
``DoraLinearLayer``) and as the NVlabs/DoRA reference writes the paper's layer, at tiny sizes.

A base MLP is pretrained on one synthetic regression task; the finetuning task shifts its teacher (a
low-rank change of the hidden weights and a per-row rescale, the kind of change DoRA's magnitude
vector can express). The base ``nn.Linear`` layers are wrapped in place (``named_modules`` +
``setattr`` on the parent, peft's ``_replace_module``) by a ``Linear`` holding the frozen
``base_layer`` (``requires_grad_(False)``), ``lora_A``/``lora_B`` as ``nn.ModuleDict``s of bias-free
Linears (``nn.init.kaiming_uniform_(A, a=math.sqrt(5))``, ``nn.init.zeros_(B)``), ``lora_dropout`` on
the LoRA input, ``scaling = lora_alpha / r``, and for DoRA a ``lora_magnitude_vector`` whose weight is
``torch.linalg.norm(W + scaling * B @ A, dim=1)`` as an ``nn.Parameter``. DoRA's forward computes the
LoRA weight through ``torch.eye`` (``lora_B(lora_A(x_eye)).T``), ``.detach()``es the weight norm as
the paper prescribes, and adds ``(mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result *
scaling``. Only adapter parameters train (peft's ``_mark_only_adapters_as_trainable``: a ``"lora_"``
name filter over ``named_parameters``), with AdamW.

Checked: at init the DoRA model's output equals the base model's; the peft layer equals the paper's
layer (``m = W.norm(p=2, dim=1, keepdim=True)``, ``m * (W + BA) / ||W + BA||.detach()``) in output and in
the gradients of A, B and m; merging (``dora_factor * (W + delta)``, the weight norm cached) gives the
unmerged outputs and unmerging restores the base weight; finetuning reduces the loss, DoRA's loss after
N steps is reported beside LoRA's of the same rank (and the frozen base's); an adapters-only
``state_dict`` saved by ``torch.save`` and loaded with ``strict=False`` into a freshly wrapped base
reproduces the finetuned outputs.
"""

import io
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

D_IN, HIDDEN, D_OUT = 16, 48, 8
RANK, ALPHA = 4, 8
N_TRAIN, N_TEST = 384, 256
STEPS = 150


# ----------------------------------------------------------------------------------- data
rng = np.random.RandomState(seed)
T1 = rng.randn(HIDDEN, D_IN).astype(np.float32) / math.sqrt(D_IN)
T2 = 3.0 * rng.randn(D_OUT, HIDDEN).astype(np.float32) / math.sqrt(HIDDEN)
U, V = rng.randn(HIDDEN, 2).astype(np.float32), rng.randn(2, D_IN).astype(np.float32)
T1_shift = (1.0 + 0.4 * rng.rand(HIDDEN, 1).astype(np.float32)) * (T1 + 0.25 * U @ V / math.sqrt(D_IN))


def teacher(x, w1):
    return np.tanh(x @ w1.T) @ T2.T


def split(n, w1):
    x = rng.randn(n, D_IN).astype(np.float32)
    y = teacher(x, w1) + 0.02 * rng.randn(n, D_OUT).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))


xa, ya = split(N_TRAIN, T1)
xb, yb = split(N_TRAIN, T1_shift)
xb_test, yb_test = split(N_TEST, T1_shift)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D_IN, HIDDEN)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(HIDDEN, D_OUT)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


base = MLP()
opt = torch.optim.Adam(base.parameters(), lr=1e-2)
for _ in range(300):
    loss = F.mse_loss(base(xa), ya)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"pretrained base: task A mse {loss.item():.5f}")
base_state = {k: v.clone() for k, v in base.state_dict().items()}


# ----------------------------------------------------------------------------------- peft's layers
def transpose(weight, fan_in_fan_out):
    if not fan_in_fan_out:
        return weight
    return weight.T


class DoraLinearLayer(nn.Module):
    def __init__(self, fan_in_fan_out):
        super().__init__()
        self.fan_in_fan_out = fan_in_fan_out

    def get_weight_norm(self, weight, lora_weight, scaling) -> torch.Tensor:
        # calculate L2 norm of weight matrix, column-wise
        weight = transpose(weight, self.fan_in_fan_out)
        weight = weight + scaling * lora_weight
        weight_norm = torch.linalg.norm(weight, dim=1).to(weight.dtype)
        return weight_norm

    def update_layer(self, *, base_layer, lora_A, lora_B, scaling) -> None:
        weight = base_layer.weight
        lora_weight = lora_B @ lora_A
        weight_norm = self.get_weight_norm(weight, lora_weight, scaling)
        self.weight = nn.Parameter(weight_norm, requires_grad=True)

    def forward(self, x, *, lora_A, lora_B, scaling, base_layer, base_result=None):
        x_eye = torch.eye(lora_A.weight.shape[1], device=lora_A.weight.device, dtype=x.dtype)
        lora_weight = lora_B(lora_A(x_eye)).T

        magnitude = self.weight
        weight = base_layer.weight.to(x.dtype)
        weight_norm = self.get_weight_norm(weight, lora_weight.detach(), scaling)
        # see section 4.3 of DoRA (https://huggingface.co/papers/2402.09353)
        # "[...] we suggest treating ||V +∆V ||_c in Eq. (5) as a constant, thereby detaching it from
        # the gradient graph. [...]"
        weight_norm = weight_norm.detach()
        mag_norm_scale = (magnitude / weight_norm).view(1, -1)

        lora_result = lora_B(lora_A(x))

        bias = None
        if base_result is not None:
            bias = base_layer.bias
            if bias is not None:
                base_result = base_result - bias
        else:
            base_result = F.linear(x, transpose(weight, self.fan_in_fan_out))

        result_dora = (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * scaling
        return result_dora

    def __repr__(self) -> str:
        rep = super().__repr__()
        return "lora.dora." + rep


class Linear(nn.Module):
    adapter_layer_names = ("lora_A", "lora_B", "lora_magnitude_vector")

    def __init__(self, base_layer, adapter_name="default", r=8, lora_alpha=8, lora_dropout=0.0,
                 use_dora=False, fan_in_fan_out=False):
        super().__init__()
        self.base_layer = base_layer
        self.r, self.lora_alpha, self.scaling = {}, {}, {}
        self.lora_dropout = nn.ModuleDict({})
        self.lora_A = nn.ModuleDict({})
        self.lora_B = nn.ModuleDict({})
        self.lora_magnitude_vector = nn.ModuleDict()
        self.use_dora = {}
        self.merged_adapters = []
        self._caches = {}
        self.fan_in_fan_out = fan_in_fan_out
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.active_adapter = adapter_name
        self.update_layer(adapter_name, r, lora_alpha, lora_dropout, use_dora)

    def update_layer(self, adapter_name, r, lora_alpha, lora_dropout, use_dora):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[adapter_name] = r
        self.lora_alpha[adapter_name] = lora_alpha
        if lora_dropout > 0.0:
            lora_dropout_layer = nn.Dropout(p=lora_dropout)
        else:
            lora_dropout_layer = nn.Identity()
        self.lora_dropout.update(nn.ModuleDict({adapter_name: lora_dropout_layer}))
        self.lora_A[adapter_name] = nn.Linear(self.in_features, r, bias=False)
        self.lora_B[adapter_name] = nn.Linear(r, self.out_features, bias=False)
        self.scaling[adapter_name] = lora_alpha / r
        self.reset_lora_parameters(adapter_name)
        if use_dora:
            self.dora_init(adapter_name)
            self.use_dora[adapter_name] = True
        else:
            self.use_dora[adapter_name] = False

    def reset_lora_parameters(self, adapter_name):
        nn.init.kaiming_uniform_(self.lora_A[adapter_name].weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B[adapter_name].weight)

    def dora_init(self, adapter_name):
        dora_layer = DoraLinearLayer(fan_in_fan_out=self.fan_in_fan_out)
        lora_A = self.lora_A[adapter_name].weight
        lora_B = self.lora_B[adapter_name].weight
        scaling = self.scaling[adapter_name]
        dora_layer.update_layer(base_layer=self.base_layer, lora_A=lora_A, lora_B=lora_B, scaling=scaling)
        self.lora_magnitude_vector[adapter_name] = dora_layer

    @property
    def merged(self):
        return bool(self.merged_adapters)

    def get_delta_weight(self, adapter):
        weight_A = self.lora_A[adapter].weight
        weight_B = self.lora_B[adapter].weight
        return transpose(weight_B @ weight_A, self.fan_in_fan_out) * self.scaling[adapter]

    def merge(self, safe_merge=False):
        active_adapter = self.active_adapter
        base_layer = self.base_layer
        if not self.use_dora[active_adapter]:
            base_layer.weight.data += self.get_delta_weight(active_adapter)
        else:
            delta_weight = self.get_delta_weight(active_adapter)
            weight_norm = (
                self.lora_magnitude_vector[active_adapter]
                .get_weight_norm(base_layer.weight, transpose(delta_weight, self.fan_in_fan_out), scaling=1)
                .detach()
            )
            # We need to cache weight_norm because it has to be based on the original weights. We
            # cannot calculate it on the fly based on the merged weights when unmerging because its a
            # different value
            self._caches[f"{active_adapter}-weight_norm"] = weight_norm
            dora_factor = self.lora_magnitude_vector[active_adapter].weight / weight_norm
            dora_factor = transpose(dora_factor.view(-1, 1), self.fan_in_fan_out)
            new_weight = dora_factor * (base_layer.weight.data + delta_weight)
            base_layer.weight.data = new_weight
        self.merged_adapters.append(active_adapter)

    def unmerge(self):
        while len(self.merged_adapters) > 0:
            active_adapter = self.merged_adapters.pop()
            weight = self.base_layer.weight
            delta_weight = self.get_delta_weight(active_adapter)
            if not self.use_dora[active_adapter]:
                weight.data -= delta_weight
            else:
                weight_norm = self._caches.pop(f"{active_adapter}-weight_norm")
                dora_factor = self.lora_magnitude_vector[active_adapter].weight / weight_norm
                weight_orig = weight.data / dora_factor.view(-1, 1) - delta_weight
                weight.data = weight_orig

    def forward(self, x):
        if self.merged:
            return self.base_layer(x)
        result = self.base_layer(x)
        active_adapter = self.active_adapter
        lora_A = self.lora_A[active_adapter]
        lora_B = self.lora_B[active_adapter]
        dropout = self.lora_dropout[active_adapter]
        scaling = self.scaling[active_adapter]
        x = x.to(lora_A.weight.dtype)
        if not self.use_dora[active_adapter]:
            result = result + lora_B(lora_A(dropout(x))) * scaling
        else:
            if isinstance(dropout, nn.Identity) or not self.training:
                base_result = result
            else:
                x = dropout(x)
                base_result = None
            result = result + self.lora_magnitude_vector[active_adapter](
                x, lora_A=lora_A, lora_B=lora_B, scaling=scaling, base_layer=self.base_layer,
                base_result=base_result,
            )
        return result


def _get_submodules(model, key):
    parent = model.get_submodule(".".join(key.split(".")[:-1]))
    target_name = key.split(".")[-1]
    target = model.get_submodule(key)
    return parent, target, target_name


def get_peft_model(model, target_modules, r, lora_alpha, lora_dropout, use_dora):
    key_list = [key for key, _ in model.named_modules()]
    for key in key_list:
        if not any(key.endswith(t) for t in target_modules):
            continue
        parent, target, target_name = _get_submodules(model, key)
        new_module = Linear(target, r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, use_dora=use_dora)
        setattr(parent, target_name, new_module)
    # _mark_only_adapters_as_trainable
    for n, p in model.named_parameters():
        if "lora_" not in n:
            p.requires_grad = False
    return model


def fresh_base():
    model = MLP()
    model.load_state_dict(base_state)
    return model


# ----------------------------------------------------------------------------------- the paper's layer
class DoRALayer(nn.Module):
    """NVlabs/DoRA's formulation: W' = m * (W + BA) / ||W + BA||_c, the norm a constant."""

    def __init__(self, linear, lora_A, lora_B, scaling):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.m = nn.Parameter(self.weight.norm(p=2, dim=1, keepdim=True))
        self.lora_A = nn.Parameter(lora_A.detach().clone())
        self.lora_B = nn.Parameter(lora_B.detach().clone())
        self.scaling = scaling

    def forward(self, x):
        lora = torch.matmul(self.lora_B, self.lora_A) * self.scaling
        adapted = self.weight + lora
        column_norm = adapted.norm(p=2, dim=1, keepdim=True).detach()
        norm_adapted = adapted / column_norm
        calc_weights = self.m * norm_adapted
        return F.linear(x, calc_weights, self.bias)


def trainable_count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def finetune(model, steps=STEPS, lr=1e-2):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    first = None
    for _ in range(steps):
        loss = F.mse_loss(model(xb), yb)
        if first is None:
            first = loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        test = F.mse_loss(model(xb_test), yb_test).item()
    return first, loss.item(), test


# at init DoRA is the base model
base.eval()
dora = get_peft_model(fresh_base(), ["fc1", "fc2"], RANK, ALPHA, 0.05, use_dora=True).eval()
with torch.no_grad():
    init_diff = (dora(xb_test) - base(xb_test)).abs().max().item()
    base_test = F.mse_loss(base(xb_test), yb_test).item()
n_train_dora = trainable_count(dora)
print(dora.fc1)
print(f"dora model: {n_train_dora} trainable of {sum(p.numel() for p in dora.parameters())} parameters")
print(f"init: max |dora - base| {init_diff:.2e}, frozen base test mse {base_test:.5f}")

# peft's layer against the paper's, with a non-zero B so the two differ from the base
layer = Linear(nn.Linear(D_IN, HIDDEN), r=RANK, lora_alpha=ALPHA, use_dora=True).eval()
with torch.no_grad():
    layer.lora_B["default"].weight.normal_(0, 0.1)
    layer.lora_magnitude_vector["default"].weight.mul_(1.0 + 0.2 * torch.rand(HIDDEN))
paper = DoRALayer(layer.base_layer, layer.lora_A["default"].weight, layer.lora_B["default"].weight,
                  layer.scaling["default"])
with torch.no_grad():
    paper.m.copy_(layer.lora_magnitude_vector["default"].weight.view(-1, 1))
x = xb[:32]
out_peft, out_paper = layer(x), paper(x)
(out_peft ** 2).sum().backward()
(out_paper ** 2).sum().backward()
route_diff = (out_peft - out_paper).abs().max().item()
grad_diff = max(
    (layer.lora_A["default"].weight.grad - paper.lora_A.grad).abs().max().item(),
    (layer.lora_B["default"].weight.grad - paper.lora_B.grad).abs().max().item(),
    (layer.lora_magnitude_vector["default"].weight.grad - paper.m.grad.view(-1)).abs().max().item(),
)
grad_scale = paper.lora_B.grad.abs().max().item()
print(f"peft vs paper layer: output diff {route_diff:.2e}, gradient diff {grad_diff / grad_scale:.2e} (relative)")

# finetuning: DoRA against LoRA of the same rank, same adapter init
torch.manual_seed(seed + 1)
dora = get_peft_model(fresh_base(), ["fc1", "fc2"], RANK, ALPHA, 0.05, use_dora=True)
torch.manual_seed(seed + 1)
lora = get_peft_model(fresh_base(), ["fc1", "fc2"], RANK, ALPHA, 0.05, use_dora=False)
dora_first, dora_last, dora_test = finetune(dora)
lora_first, lora_last, lora_test = finetune(lora)
print(f"dora: train mse {dora_first:.5f} -> {dora_last:.5f}, test {dora_test:.5f}")
print(f"lora: train mse {lora_first:.5f} -> {lora_last:.5f}, test {lora_test:.5f}")
frozen = all(
    torch.equal(p, base_state[n.replace("base_layer.", "")])
    for n, p in dora.named_parameters() if "base_layer" in n
)

# merge / unmerge
with torch.no_grad():
    unmerged_out = dora(xb_test)
    fc1_weight = dora.fc1.base_layer.weight.detach().clone()
    for module in dora.modules():
        if isinstance(module, Linear):
            module.merge()
    merged_out = dora(xb_test)
    merge_diff = (merged_out - unmerged_out).abs().max().item()
    for module in dora.modules():
        if isinstance(module, Linear):
            module.unmerge()
    unmerge_diff = (dora.fc1.base_layer.weight - fc1_weight).abs().max().item()
    again_diff = (dora(xb_test) - unmerged_out).abs().max().item()
print(f"merge: max |merged - unmerged| {merge_diff:.2e}, unmerged weight diff {unmerge_diff:.2e}")

# adapters-only state dict through torch.save, loaded into a freshly wrapped base
adapter_state = {k: v for k, v in dora.state_dict().items() if "lora_" in k}
buffer = io.BytesIO()
torch.save(adapter_state, buffer)
buffer.seek(0)
loaded = torch.load(buffer, weights_only=True)
torch.manual_seed(seed + 2)
restored = get_peft_model(fresh_base(), ["fc1", "fc2"], RANK, ALPHA, 0.05, use_dora=True).eval()
result = restored.load_state_dict(loaded, strict=False)
with torch.no_grad():
    restore_diff = (restored(xb_test) - unmerged_out).abs().max().item()
print(f"adapter state dict: {len(adapter_state)} tensors, {len(result.missing_keys)} missing keys, "
      f"{len(result.unexpected_keys)} unexpected, max output diff {restore_diff:.2e}")

print(
    f"FINAL init_diff={init_diff:.2e} route_diff={route_diff:.2e} grad_diff={grad_diff / grad_scale:.2e} "
    f"base_test={base_test:.5f} dora_first={dora_first:.5f} dora_last={dora_last:.5f} dora_test={dora_test:.5f} "
    f"lora_last={lora_last:.5f} lora_test={lora_test:.5f} dora_over_lora={dora_last / lora_last:.4f} "
    f"dora_improves={int(dora_test < 0.5 * base_test)} frozen={int(frozen)} merge_diff={merge_diff:.2e} "
    f"unmerge_diff={unmerge_diff:.2e} again_diff={again_diff:.2e} restore_diff={restore_diff:.2e} "
    f"adapter_tensors={len(adapter_state)} trainable={n_train_dora}"
)
