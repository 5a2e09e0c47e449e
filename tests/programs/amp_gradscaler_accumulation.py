"""The automatic mixed precision recipe ("Automatic Mixed Precision examples" in the torch docs) on
CPU, with gradient accumulation, as training templates write it.

``torch.autocast(device_type="cpu", dtype=torch.bfloat16)`` around the forward and the loss only;
``torch.amp.GradScaler("cpu")`` (enabled on CPU in torch 2.x) with ``init_scale`` and
``growth_interval``; micro-batches with ``loss = loss / accum_steps`` and
``scaler.scale(loss).backward()``; every ``accum_steps`` micro-batches ``scaler.unscale_(optimizer)``
then ``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=False)``, ``scaler.step(optimizer)``,
``scaler.update()`` and ``optimizer.zero_grad(set_to_none=True)``. An injected ``inf`` gradient makes
the scaler skip that step and halve its scale; ``scaler.state_dict()`` / ``load_state_dict`` into a
fresh scaler. Inside autocast: ``x.dtype`` after ``Linear``, ``LayerNorm`` and ``softmax`` (all
bfloat16 on CPU in torch 2.13: its CPU fp32 list does not hold them) and of the loss (float32),
``torch.is_autocast_enabled()`` (the CUDA flag, False) against ``torch.is_autocast_enabled("cpu")``,
``torch.get_autocast_dtype("cpu")``, a nested ``autocast(enabled=False)``. The accumulated gradient is checked against one full-batch
gradient in float32, and the trained model is evaluated in float32 and as ``model.to(torch.bfloat16)``.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# ----------------------------------------------------------------- data: 4 classes in 16-d
N, D_IN, CLASSES = 512, 16, 4
centres = rng.normal(0, 1.0, size=(CLASSES, D_IN))
labels_np = rng.integers(0, CLASSES, size=N)
features_np = centres[labels_np] + rng.normal(0, 1.0, size=(N, D_IN))
features = torch.from_numpy(features_np.astype(np.float32))
labels = torch.from_numpy(labels_np)
train_x, train_y = features[:384], labels[:384]
test_x, test_y = features[384:], labels[384:]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D_IN, 64)
        self.norm = nn.LayerNorm(64)
        self.fc2 = nn.Linear(64, 64)
        self.head = nn.Linear(64, CLASSES)

    def forward(self, x, trace=None):
        h = self.fc1(x)
        if trace is not None:
            trace["linear"] = h.dtype
        h = self.norm(h)
        if trace is not None:
            trace["layer_norm"] = h.dtype
        h = F.gelu(h)
        h = self.fc2(h) + h
        out = self.head(F.relu(h))
        if trace is not None:
            trace["softmax"] = F.softmax(out, dim=-1).dtype
            trace["residual"] = h.dtype
        return out


model = Net()
reference = copy.deepcopy(model)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, growth_interval=8)
print("scaler enabled", scaler.is_enabled(), "initial scale", scaler.get_scale())
print("outside autocast: enabled", torch.is_autocast_enabled(), "cpu dtype", torch.get_autocast_dtype("cpu"))

with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
    trace = {}
    probe = model(train_x[:4], trace=trace)
    probe_loss = F.cross_entropy(probe, train_y[:4])
    print("inside autocast: enabled", torch.is_autocast_enabled(), torch.is_autocast_enabled("cpu"),
          "cpu dtype", torch.get_autocast_dtype("cpu"))
    print("dtypes:", ", ".join(f"{k} {v}" for k, v in trace.items()), "| logits", probe.dtype,
          "| loss", probe_loss.dtype)
    with torch.autocast(device_type="cpu", enabled=False):
        inner = model.fc1(train_x[:4])
        print("nested autocast(enabled=False): linear", inner.dtype, "enabled", torch.is_autocast_enabled())
    mm = torch.mm(train_x[:4], model.fc1.weight.t())
    print("torch.mm", mm.dtype, "exp", torch.exp(mm).dtype, "sum", mm.sum().dtype,
          "addmm", torch.addmm(model.fc1.bias, train_x[:4], model.fc1.weight.t()).dtype)
print("after the block: enabled", torch.is_autocast_enabled(), "params", model.fc1.weight.dtype)

# ----------------------------------------------------------------- accumulated gradient == full batch
accum_steps = 4
micro = 32
batch_x, batch_y = train_x[:accum_steps * micro], train_y[:accum_steps * micro]
reference.zero_grad()
F.cross_entropy(reference(batch_x), batch_y).backward()
full_grads = [p.grad.clone() for p in reference.parameters()]
reference.zero_grad(set_to_none=True)
for i in range(accum_steps):
    xb = batch_x[i * micro:(i + 1) * micro]
    yb = batch_y[i * micro:(i + 1) * micro]
    loss = F.cross_entropy(reference(xb), yb) / accum_steps
    loss.backward()
accum_gap = max((p.grad - g).abs().max().item() for p, g in zip(reference.parameters(), full_grads))
print(f"accumulated vs full-batch grad: max gap {accum_gap:.2e}")
reference.zero_grad(set_to_none=True)
print("grads after zero_grad(set_to_none=True):", all(p.grad is None for p in reference.parameters()))

# ----------------------------------------------------------------- training with the scaler
EPOCHS = 6
history = []
skipped = 0
step_count = 0
norms = []
for epoch in range(EPOCHS):
    perm = torch.randperm(train_x.size(0))
    running = 0.0
    for i in range(train_x.size(0) // micro):
        idx = perm[i * micro:(i + 1) * micro]
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            output = model(train_x[idx])
            loss = F.cross_entropy(output, train_y[idx])
            loss = loss / accum_steps
        scaler.scale(loss).backward()
        running += loss.item() * accum_steps
        if (i + 1) % accum_steps == 0:
            if epoch == 2 and i + 1 == accum_steps:
                model.head.weight.grad[0, 0] = float("inf")   # an overflow the scaler must catch
            scale_before = scaler.get_scale()
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0, error_if_nonfinite=False)
            norms.append(norm.item())
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step_count += 1
            if scaler.get_scale() < scale_before:
                skipped += 1
                print(f"epoch {epoch}: step skipped, grad norm {norm.item()}, scale {scale_before} -> {scaler.get_scale()}")
    history.append(running / (train_x.size(0) // micro))
    print(f"epoch {epoch}: loss {history[-1]:.4f} scale {scaler.get_scale():.0f}")

state = scaler.state_dict()
print("scaler state keys", sorted(state), "growth_tracker", state["_growth_tracker"])
restored = torch.amp.GradScaler("cpu")
restored.load_state_dict(state)
print("restored scale", restored.get_scale(), "growth_factor", restored.get_growth_factor(),
      "backoff_factor", restored.get_backoff_factor(), "growth_interval", restored.get_growth_interval())
print("AdamW steps taken", optimizer.state[model.fc1.weight]["step"].item(), "of", step_count)

# ----------------------------------------------------------------- evaluation: float32, autocast, bfloat16 weights
model.eval()
with torch.no_grad():
    logits32 = model(test_x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits_ac = model(test_x)
    acc32 = (logits32.argmax(1) == test_y).float().mean().item()
    acc_ac = (logits_ac.argmax(1) == test_y).float().mean().item()
    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)
    logits_bf16 = model_bf16(test_x.to(torch.bfloat16))
    acc_bf16 = (logits_bf16.argmax(1) == test_y).float().mean().item()
    bf16_gap = (logits_bf16.float() - logits32).abs().max().item()
    agree = (logits_bf16.argmax(1) == logits32.argmax(1)).float().mean().item()
print("eval dtypes: float32", logits32.dtype, "autocast", logits_ac.dtype, "bf16 model", logits_bf16.dtype,
      model_bf16.fc1.weight.dtype)
print(f"accuracy float32 {acc32:.4f} autocast {acc_ac:.4f} bf16 weights {acc_bf16:.4f}; "
      f"bf16 logit gap {bf16_gap:.3f}, argmax agreement {agree:.4f}")
print(f"FINAL loss={history[-1]:.4f} acc={acc32:.4f} acc_bf16={acc_bf16:.4f} skipped={skipped} "
      f"accum_gap={accum_gap:.6f} agree={agree:.4f}")
