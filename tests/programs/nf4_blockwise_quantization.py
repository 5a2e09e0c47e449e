"""QLoRA's 4-bit NormalFloat (Dettmers et al., 2023) in pure torch, following bitsandbytes' algorithm
(``create_normal_map``, ``quantize_4bit``/``dequantize_4bit`` with blocksize 64, double quantization of the
absmax) and ``MatMul4Bit``, with PEFT-style LoRA adapters trained on the frozen quantized base.

The NF4 code is rebuilt from the normal quantiles (``Normal(0, 1).icdf(torch.linspace(offset, 0.5, 9)[:-1])``
for the positive half, 7 negative, an exact zero, ``sort().values`` and ``/= max()``) and checked against the
table bitsandbytes hard-codes. Weights are split into blocks by ``w.view(-1, 64)``, scaled by their absmax
(``abs().amax(1, keepdim=True)``), and mapped to the nearest code by ``torch.bucketize(x, midpoints)``, which
must equal ``torch.argmin((x.unsqueeze(-1) - code).abs(), -1)``. Two 4-bit codes are packed per ``uint8``
(``(hi << 4) | lo``) and unpacked by ``>> 4`` and ``& 0xF``. The absmax of each block is quantized again
(double quantization): the mean is subtracted and the rest goes blockwise to ``int8``. NF4 is compared with
a uniform 4-bit absmax code on the same normal weights.

A frozen two-layer "pretrained" MLP is quantized and wrapped in ``Linear4bit`` layers calling a custom
``autograd.Function`` (dequantise in forward; ``grad_output @ W`` in backward, ``None`` for the packed
weight). LoRA adapters (``lora_A`` kaiming-uniform, ``lora_B`` zeros, ``scaling = lora_alpha / r``) are
trained by AdamW to fit a low-rank shift of the teacher; the same adapters on the full-precision base are the
reference. The Function's input gradient is checked against autograd through ``F.linear`` on the dequantised
weight.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

BLOCKSIZE = 64
BLOCKSIZE_DQ = 32
D_IN, D_HID, D_OUT = 64, 128, 16
RANK, LORA_ALPHA = 4, 8
STEPS = 120

# bitsandbytes/functional.py, get_4bit_type("nf4")
NF4_TABLE = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
]


def create_normal_map(offset=0.9677083):
    norm = torch.distributions.Normal(0.0, 1.0)
    v1 = norm.icdf(torch.linspace(offset, 0.5, 9)[:-1]).tolist()
    v3 = (-norm.icdf(torch.linspace(offset, 0.5, 8)[:-1])).tolist()
    values = torch.Tensor(v1 + [0.0] + v3)
    values = values.sort().values
    values /= values.max()
    return values


code = create_normal_map()
table = torch.tensor(NF4_TABLE)
print(f"NF4 code: {code.numel()} values, matches bitsandbytes' table {torch.allclose(code, table, atol=1e-6)}, "
      f"zero exact {bool((code == 0).any())}")
code = table  # the library's own values from here on
midpoints = (code[1:] + code[:-1]) / 2


def quantize_blockwise(w, code, blocksize=BLOCKSIZE):
    blocks = w.reshape(-1).view(-1, blocksize)
    absmax = blocks.abs().amax(1, keepdim=True)
    normed = blocks / absmax
    idx = torch.bucketize(normed, (code[1:] + code[:-1]) / 2)
    return idx, absmax.squeeze(1)


def pack_4bit(idx):
    q = idx.reshape(-1).to(torch.uint8)
    return (q[0::2] << 4) | q[1::2]


def unpack_4bit(packed):
    hi = packed >> 4
    lo = packed & 0xF
    return torch.stack((hi, lo), dim=-1).view(-1)


def double_quantize(absmax, blocksize=BLOCKSIZE_DQ):
    offset = absmax.mean()
    centred = (absmax - offset).view(-1, blocksize)
    absmax2 = centred.abs().amax(1, keepdim=True)
    q8 = torch.round(centred / absmax2 * 127).to(torch.int8)
    return q8, absmax2, offset


def double_dequantize(q8, absmax2, offset):
    return (q8.float() / 127 * absmax2).view(-1) + offset


class QuantState:
    def __init__(self, absmax, shape, code, blocksize, nested=None):
        self.absmax = absmax
        self.shape = shape
        self.code = code
        self.blocksize = blocksize
        self.nested = nested


def quantize_4bit(w, compress_statistics=True):
    idx, absmax = quantize_blockwise(w, code)
    packed = pack_4bit(idx)
    if compress_statistics:
        q8, absmax2, offset = double_quantize(absmax)
        state = QuantState(q8, w.shape, code, BLOCKSIZE, nested=(absmax2, offset))
    else:
        state = QuantState(absmax, w.shape, code, BLOCKSIZE)
    return packed, state


def dequantize_4bit(packed, state):
    absmax = state.absmax
    if state.nested is not None:
        absmax = double_dequantize(absmax, *state.nested)
    values = state.code[unpack_4bit(packed).long()].view(-1, state.blocksize)
    return (values * absmax.unsqueeze(1)).view(state.shape)


# ------------------------------------------------------------------------------ the quantizer itself
w_test = torch.from_numpy(rng.randn(D_HID, D_IN).astype(np.float32)) * 0.1
idx, absmax = quantize_blockwise(w_test, code)
normed = (w_test.reshape(-1, BLOCKSIZE) / absmax[:, None])
idx_argmin = torch.argmin((normed.unsqueeze(-1) - code).abs(), -1)
print(f"bucketize == argmin: {torch.equal(idx, idx_argmin)}, dtype {idx.dtype}, "
      f"codes used {torch.unique(idx).numel()} of 16")
packed = pack_4bit(idx)
print(f"packed {tuple(packed.shape)} {packed.dtype}, round trip {torch.equal(unpack_4bit(packed).long(), idx.view(-1))}")

# uniform 4-bit absmax code on the same weights, for comparison
uniform = torch.linspace(-1, 1, 16)
u_idx, _ = quantize_blockwise(w_test, uniform)
w_uniform = (uniform[u_idx] * absmax[:, None]).view_as(w_test)
packed_w, state_plain = quantize_4bit(w_test, compress_statistics=False)
_, state_dq = quantize_4bit(w_test, compress_statistics=True)
w_nf4 = dequantize_4bit(packed_w, state_plain)
w_nf4_dq = dequantize_4bit(packed_w, state_dq)
err_nf4 = (w_nf4 - w_test).abs().mean().item()
err_dq = (w_nf4_dq - w_test).abs().mean().item()
err_uniform = (w_uniform - w_test).abs().mean().item()
absmax_err = (double_dequantize(*double_quantize(absmax)) - absmax).abs().max().item()
bits_plain = (packed.numel() * 8 + absmax.numel() * 32) / w_test.numel()
bits_dq = (packed.numel() * 8 + absmax.numel() * 8 + (absmax.numel() // BLOCKSIZE_DQ + 1) * 32) / w_test.numel()
print(f"mean |error|: nf4 {err_nf4:.6f}, nf4+dq {err_dq:.6f}, uniform int4 {err_uniform:.6f}")
print(f"bits per parameter: {bits_plain:.3f} -> {bits_dq:.3f} with double quantization")


# ------------------------------------------------------------------------------ MatMul4Bit and LoRA
class MatMul4Bit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, B, out=None, bias=None, quant_state=None):
        ctx.state = quant_state
        ctx.dtype_A, ctx.dtype_bias = A.dtype, None if bias is None else bias.dtype
        ctx.save_for_backward(B)
        return F.linear(A, dequantize_4bit(B, quant_state).to(A.dtype), bias)

    @staticmethod
    def backward(ctx, grad_output):
        req_gradA, _, _, req_gradBias, _ = ctx.needs_input_grad
        (B,) = ctx.saved_tensors
        grad_A, grad_bias = None, None
        if req_gradBias:
            grad_bias = grad_output.reshape(-1, grad_output.shape[-1]).sum(0).to(ctx.dtype_bias)
        if req_gradA:
            grad_A = torch.matmul(grad_output, dequantize_4bit(B, ctx.state).to(grad_output.dtype))
        return grad_A, None, None, grad_bias, None


def matmul_4bit(A, B, quant_state, out=None, bias=None):
    return MatMul4Bit.apply(A, B, out, bias, quant_state)


class Linear4bit(nn.Linear):
    def __init__(self, linear, compress_statistics=True):
        super().__init__(linear.in_features, linear.out_features, bias=linear.bias is not None)
        packed, state = quantize_4bit(linear.weight.data, compress_statistics=compress_statistics)
        del self.weight
        self.register_buffer("weight_packed", packed)
        self.quant_state = state
        if self.bias is not None:
            self.bias.data.copy_(linear.bias.data)

    def forward(self, x):
        return matmul_4bit(x, self.weight_packed, self.quant_state, bias=self.bias)


class LoraLayer(nn.Module):
    def __init__(self, base_layer, r=RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0):
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False)
        self.lora_dropout = nn.Dropout(p=lora_dropout) if lora_dropout > 0.0 else nn.Identity()
        self.scaling = lora_alpha / r
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x):
        result = self.base_layer(x)
        return result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


class Net(nn.Module):
    def __init__(self, fc1, fc2):
        super().__init__()
        self.fc1 = fc1
        self.fc2 = fc2

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


base_fc1, base_fc2 = nn.Linear(D_IN, D_HID), nn.Linear(D_HID, D_OUT)
with torch.no_grad():
    base_fc1.weight.copy_(torch.from_numpy(rng.randn(D_HID, D_IN).astype(np.float32)) / math.sqrt(D_IN))
    base_fc2.weight.copy_(torch.from_numpy(rng.randn(D_OUT, D_HID).astype(np.float32)) / math.sqrt(D_HID))

# the task: the base shifted by a rank-2 change in each layer
x_train = torch.from_numpy(rng.randn(512, D_IN).astype(np.float32))
delta1 = torch.from_numpy((rng.randn(D_HID, 2) @ rng.randn(2, D_IN)).astype(np.float32)) * 0.05
delta2 = torch.from_numpy((rng.randn(D_OUT, 2) @ rng.randn(2, D_HID)).astype(np.float32)) * 0.05
with torch.no_grad():
    y_train = F.linear(F.relu(F.linear(x_train, base_fc1.weight + delta1, base_fc1.bias)),
                       base_fc2.weight + delta2, base_fc2.bias)

q_fc1, q_fc2 = Linear4bit(base_fc1), Linear4bit(base_fc2)
print(f"Linear4bit buffers: {[(n, tuple(b.shape), str(b.dtype)) for n, b in q_fc1.named_buffers()]}, "
      f"parameters {[n for n, _ in q_fc1.named_parameters()]}")

# the custom Function's gradient against autograd through the dequantised weight
xa = x_train[:8].clone().requires_grad_()
xb = x_train[:8].clone().requires_grad_()
g_out = torch.randn(8, D_HID)
q_fc1(xa).backward(g_out)
F.linear(xb, dequantize_4bit(q_fc1.weight_packed, q_fc1.quant_state), q_fc1.bias).backward(g_out)
grad_gap = (xa.grad - xb.grad).abs().max().item()
print(f"MatMul4Bit grad_A == autograd: {torch.allclose(xa.grad, xb.grad, atol=1e-5)}")


def train_lora(fc1, fc2):
    torch.manual_seed(seed + 1)
    model = Net(LoraLayer(fc1), LoraLayer(fc2))
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=3e-3, weight_decay=0.0)
    with torch.no_grad():
        start = F.mse_loss(model(x_train), y_train).item()
    for step in range(1, STEPS + 1):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x_train), y_train)
        loss.backward()
        optimizer.step()
        if step % 40 == 0:
            print(f"  step {step:4d} loss {loss.item():.5f}")
    n_trainable = sum(p.numel() for p in trainable)
    return start, loss.item(), n_trainable


print("LoRA on the full-precision base")
fp_start, fp_loss, n_train = train_lora(base_fc1, base_fc2)
print("LoRA on the NF4 base (QLoRA)")
q_start, q_loss, _ = train_lora(q_fc1, q_fc2)
print(f"trainable parameters {n_train}; loss {fp_start:.5f} -> {fp_loss:.5f} (full-precision base), "
      f"{q_start:.5f} -> {q_loss:.5f} (nf4 base)")
print(f"FINAL err_nf4={err_nf4 * 100:.4f} err_dq={err_dq * 100:.4f} err_uniform={err_uniform * 100:.4f} "
      f"nf4_gain={err_uniform / err_nf4:.4f} absmax_err={absmax_err * 100:.4f} bits_dq={bits_dq:.4f} fp_loss={fp_loss * 100:.4f} "
      f"q_loss={q_loss * 100:.4f} q_gap={(q_loss - fp_loss) * 100:.4f} q_start={q_start * 100:.4f} grad_gap={grad_gap:.6f}")
