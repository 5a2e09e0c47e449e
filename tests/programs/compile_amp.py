"""The PyTorch 2 performance recipe as tutorials and training templates write it on a CPU box:
``torch.set_float32_matmul_precision('high')``, ``torch.backends.cuda.matmul.allow_tf32 = True``,
``torch.backends.cudnn.allow_tf32 = True``, ``model = torch.compile(model)`` (here with
``backend="eager"``, which runs dynamo without a C compiler), training steps under
``torch.autocast(device_type="cpu", dtype=torch.bfloat16)`` (matmul outputs in bfloat16, the loss
in float32), ``torch.amp.GradScaler("cuda", enabled=False)`` passthrough (``scale``, ``step``,
``update``, ``unscale_`` + ``clip_grad_norm_``) next to an enabled ``torch.amp.GradScaler("cpu")``
(``get_scale``), ``optimizer.zero_grad(set_to_none=True)``, ``torch.inference_mode()`` evaluation (chainrule has no inference tensors, so ``is_inference()`` is not asked),
``torch.save(compiled.state_dict())`` with its ``_orig_mod.`` keys, stripped with
``removeprefix`` to load into a plain model, and ``compiled._orig_mod is model``. Data: a synthetic
tabular classification problem from NumPy.
"""

import io
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

torch.set_float32_matmul_precision('high')
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
print('matmul precision:', torch.get_float32_matmul_precision())
device_type = 'cuda' if torch.cuda.is_available() else 'cpu'


class MLP(nn.Module):
    def __init__(self, d_in=20, hidden=64, n_classes=5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, n_classes))

    def forward(self, x):
        return self.net(x)


def make_data(n, rng, w):
    x = rng.randn(n, 20).astype(np.float32)
    y = np.argmax(np.tanh(x @ w) + 0.1 * rng.randn(n, 5), axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)


rng = np.random.RandomState(0)
w = rng.randn(20, 5)
x_train, y_train = make_data(2048, rng, w)
x_test, y_test = make_data(512, rng, w)

model = MLP()
compiled = torch.compile(model, backend="eager")
print('compiled wraps the model:', compiled._orig_mod is model, type(compiled).__name__)
optimizer = torch.optim.AdamW(compiled.parameters(), lr=3e-3, weight_decay=0.01)
scaler = torch.amp.GradScaler("cuda", enabled=False)  # fp16 on a GPU would enable it; bf16 needs none
cpu_scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
print('scalers:', scaler.is_enabled(), cpu_scaler.is_enabled(), cpu_scaler.get_scale())

for epoch in range(6):
    compiled.train()
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 128):
        idx = perm[i:i + 128]
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
            logits = compiled(x_train[idx])
            loss = F.cross_entropy(logits, y_train[idx])
        if i == 0 and epoch == 0:
            print('autocast dtypes: logits', logits.dtype, 'loss', loss.dtype)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(compiled.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
    if epoch % 2 == 1:
        print(f'epoch {epoch} loss {loss.item():.4f}')

# one step through the enabled CPU scaler: scaled loss, unscaled gradients, finite step
x, y = x_train[:128], y_train[:128]
optimizer.zero_grad(set_to_none=True)
loss = F.cross_entropy(compiled(x), y)
scaled = cpu_scaler.scale(loss)
print('scaled loss over loss:', round(scaled.item() / loss.item()))
scaled.backward()
cpu_scaler.step(optimizer)
cpu_scaler.update()
print('scale after a finite step:', cpu_scaler.get_scale())

compiled.eval()
with torch.inference_mode():
    logits = compiled(x_test)
    test_acc = (logits.argmax(1) == y_test).float().mean().item()
    print('inference-mode outputs require grad:', logits.requires_grad)
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
        bf16_acc = (compiled(x_test).argmax(1) == y_test).float().mean().item()

buffer = io.BytesIO()
torch.save(compiled.state_dict(), buffer)
buffer.seek(0)
state_dict = torch.load(buffer, weights_only=True)
print('saved keys:', sorted(state_dict)[:2])
unwanted_prefix = '_orig_mod.'
state_dict = {k.removeprefix(unwanted_prefix): v for k, v in state_dict.items()}
plain = MLP()
plain.load_state_dict(state_dict)
plain.eval()
with torch.no_grad():
    print('plain model agrees with compiled:', torch.allclose(plain(x_test), logits, atol=1e-5))
print(f"FINAL test_acc={test_acc:.4f} bf16_acc={bf16_acc:.4f}")
