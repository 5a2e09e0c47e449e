"""The pytorch.org tutorials "Channels Last Memory Format" and "Automatic Mixed Precision", as a
CPU-only user runs them: strides of ``torch.empty(N, C, H, W)`` before and after
``x.to(memory_format=torch.channels_last)``, back by ``torch.contiguous_format``,
``x.contiguous(memory_format=torch.channels_last)``, ``is_contiguous(memory_format=...)`` (the
ambiguous ``(4, 1, 4, 4)`` case), ``torch.empty(..., memory_format=torch.channels_last)``, the
format kept by ``clone``/``empty_like``/elementwise ops, ``permute`` into NHWC,
``torch.channels_last_3d``; the tutorial's ``Conv2d(8, 4, 3)`` on a channels-last
``torch.randint(1, 10, (2, 8, 4, 4), dtype=torch.float32, requires_grad=True)`` input, and a small
CNN moved by ``model.to(memory_format=torch.channels_last)`` (conv, BatchNorm2d, ReLU, MaxPool2d
outputs and the weights' gradients keep the format; the same losses as the contiguous model).
Then the AMP recipe with ``device = 'cpu'``: ``make_model`` of Linear+ReLU, the default-precision
loop, ``torch.autocast(device_type=device, dtype=torch.bfloat16)`` (the output bfloat16, the
``MSELoss`` float32), ``torch.amp.GradScaler("cpu", enabled=use_amp)`` with ``scale``/``step``/
``update``, ``unscale_`` + ``clip_grad_norm_``, and the checkpoint of model, optimizer and
``scaler.state_dict()`` saved and resumed.
"""

import io
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# -- Channels Last Memory Format
N, C, H, W = 10, 3, 32, 32
x = torch.empty(N, C, H, W)
print(x.stride())  # Outputs: (3072, 1024, 32, 1)
x = x.to(memory_format=torch.channels_last)
print(x.shape)  # Outputs: (10, 3, 32, 32) as dimensions order preserved
print(x.stride())  # Outputs: (3072, 1, 96, 3)
x = x.to(memory_format=torch.contiguous_format)
print(x.stride())  # Outputs: (3072, 1024, 32, 1)
x = x.contiguous(memory_format=torch.channels_last)
print(x.stride())  # Outputs: (3072, 1, 96, 3)
print(x.is_contiguous(memory_format=torch.channels_last))  # Outputs: True
print(x.is_contiguous())  # Outputs: False
special_x = torch.empty(4, 1, 4, 4)
print(special_x.is_contiguous(memory_format=torch.channels_last))  # Outputs: True
print(special_x.is_contiguous(memory_format=torch.contiguous_format))  # Outputs: True
x = torch.empty(N, C, H, W, memory_format=torch.channels_last)
print(x.stride())  # Outputs: (3072, 1, 96, 3)
x = torch.randn(N, C, H, W).contiguous(memory_format=torch.channels_last)
for name, y in (("clone", x.clone()), ("empty_like", torch.empty_like(x)), ("zeros_like", torch.zeros_like(x)),
                ("x * 2 + 1", x * 2 + 1), ("relu", torch.relu(x)), ("x + contiguous", x + x.contiguous()),
                ("clone(contiguous_format)", x.clone(memory_format=torch.contiguous_format))):
    print(f"{name}: {y.stride()} channels_last {y.is_contiguous(memory_format=torch.channels_last)}")
nhwc = torch.randn(N, H, W, C)
x = nhwc.permute(0, 3, 1, 2)
print("NHWC permuted:", x.shape, x.stride(), x.is_contiguous(memory_format=torch.channels_last))
v = torch.empty(2, 3, 4, 5, 6).to(memory_format=torch.channels_last_3d)
print("channels_last_3d:", v.stride(), v.is_contiguous(memory_format=torch.channels_last_3d))
try:
    torch.empty(2, 3, 4).to(memory_format=torch.channels_last)
except RuntimeError as e:
    print("RuntimeError:", e)

model = torch.nn.Conv2d(8, 4, 3)
model = model.to(memory_format=torch.channels_last)  # Module parameters need to be channels last
print("conv weight:", model.weight.stride(), model.weight.is_contiguous(memory_format=torch.channels_last))
input = torch.randint(1, 10, (2, 8, 4, 4), dtype=torch.float32, requires_grad=True)
input = input.to(memory_format=torch.channels_last)
out = model(input)
print(out.shape, out.is_contiguous(memory_format=torch.channels_last))  # Outputs: True
out.sum().backward()
print("weight grad channels_last:", model.weight.grad.is_contiguous(memory_format=torch.channels_last))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x, trace=None):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        if trace is not None:
            trace.append(("conv1-bn-relu-pool", x))
        x = self.pool(F.relu(self.conv2(x)))
        if trace is not None:
            trace.append(("conv2-relu-pool", x))
        x = torch.flatten(x, 1)
        return self.fc(x)


gen = torch.Generator().manual_seed(1234)
images = torch.randn(64, 3, 16, 16, generator=gen)
labels = torch.randint(0, 10, (64,), generator=gen)
images += labels.view(-1, 1, 1, 1) * 0.3 * torch.linspace(-1, 1, 16)
contiguous_net = Net()
cl_net = Net()
cl_net.load_state_dict(contiguous_net.state_dict())
cl_net = cl_net.to(memory_format=torch.channels_last)
trace = []
cl_net(images.to(memory_format=torch.channels_last), trace)
for name, t in trace:
    print(f"{name}: {tuple(t.shape)} channels_last {t.is_contiguous(memory_format=torch.channels_last)}")
losses = {}
for name, net, inputs in (("contiguous", contiguous_net, images),
                          ("channels_last", cl_net, images.contiguous(memory_format=torch.channels_last))):
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
    for _ in range(20):
        loss = F.cross_entropy(net(inputs), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    losses[name] = loss.item()
    print(f"{name}: loss {loss.item():.4f}, conv1 weight channels_last "
          f"{net.conv1.weight.is_contiguous(memory_format=torch.channels_last)}")
format_diff = abs(losses["contiguous"] - losses["channels_last"])
print(f"same training either way: {format_diff < 1e-2}")


# -- Automatic Mixed Precision, as on a CPU-only machine
def make_model(in_size, out_size, num_layers):
    layers = []
    for _ in range(num_layers - 1):
        layers.append(torch.nn.Linear(in_size, in_size))
        layers.append(torch.nn.ReLU())
    layers.append(torch.nn.Linear(in_size, out_size))
    return torch.nn.Sequential(*tuple(layers))


batch_size = 32
in_size = 64
out_size = 64
num_layers = 3
num_batches = 8
epochs = 3
device = "cuda" if torch.cuda.is_available() else "cpu"
torch.set_default_device(device)
# Creates data in default precision.
data = [torch.randn(batch_size, in_size) for _ in range(num_batches)]
targets = [d[:, :out_size].tanh() * 2 for d in data]  # a learnable target
loss_fn = torch.nn.MSELoss()

torch.manual_seed(seed)
net = make_model(in_size, out_size, num_layers)
opt = torch.optim.SGD(net.parameters(), lr=1.0)
for epoch in range(epochs):
    for input, target in zip(data, targets):
        output = net(input)
        loss = loss_fn(output, target)
        loss.backward()
        opt.step()
        opt.zero_grad()  # set_to_none=True here can modestly improve performance
    print(f"Default precision: epoch {epoch} loss {loss.item():.4f}")
default_loss = loss.item()

for input, target in zip(data[:1], targets[:1]):
    # Runs the forward pass under ``autocast``.
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        output = net(input)
        # output is bfloat16 because linear layers ``autocast`` to bfloat16.
        assert output.dtype is torch.bfloat16
        loss = loss_fn(output, target)
        print("under autocast:", output.dtype, loss.dtype, torch.is_autocast_enabled(device),
              torch.get_autocast_dtype(device))
    print("after autocast:", torch.is_autocast_enabled(device), net(input).dtype)
    # Exits ``autocast`` before backward().
    loss.backward()
    print("gradients in", net[0].weight.grad.dtype)
    opt.zero_grad()

use_amp = True
torch.manual_seed(seed)
net = make_model(in_size, out_size, num_layers)
opt = torch.optim.SGD(net.parameters(), lr=1.0)
scaler = torch.amp.GradScaler(device, enabled=use_amp)
print("scaler:", scaler.is_enabled(), scaler.get_scale(), scaler.get_growth_factor(), scaler.get_backoff_factor(),
      scaler.get_growth_interval())
for epoch in range(epochs):
    for input, target in zip(data, targets):
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_amp):
            output = net(input)
            loss = loss_fn(output, target)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
    print(f"Mixed precision: epoch {epoch} loss {loss.item():.4f} ({loss.dtype}) scale {scaler.get_scale():.1f}")
amp_loss = loss.item()

# Inspecting/modifying gradients (e.g., clipping)
for _ in range(1):
    for input, target in zip(data, targets):
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            output = net(input)
            loss = loss_fn(output, target)
        scaler.scale(loss).backward()
        # Unscales the gradients of optimizer's assigned parameters in-place
        scaler.unscale_(opt)
        # Since the gradients of optimizer's assigned parameters are now unscaled, clips as usual.
        total_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.1)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
print(f"clipped: last total norm {total_norm.item():.3f}, loss {loss.item():.4f}")

# Saving/Resuming
checkpoint = {"model": net.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict()}
print(sorted(checkpoint["scaler"]), checkpoint["scaler"]["scale"], checkpoint["scaler"]["_growth_tracker"])
buffer = io.BytesIO()
torch.save(checkpoint, buffer)
buffer.seek(0)
checkpoint = torch.load(buffer, map_location=lambda storage, loc: storage, weights_only=True)
net2 = make_model(in_size, out_size, num_layers)
opt2 = torch.optim.SGD(net2.parameters(), lr=1.0)
scaler2 = torch.amp.GradScaler(device)
net2.load_state_dict(checkpoint["model"])
opt2.load_state_dict(checkpoint["optimizer"])
scaler2.load_state_dict(checkpoint["scaler"])
print("resumed scaler:", scaler2.get_scale() == scaler.get_scale(), scaler2.state_dict() == scaler.state_dict())
torch.set_default_device("cpu")

print(f"FINAL default_loss={default_loss:.4f} amp_loss={amp_loss:.4f} cl_loss={losses['channels_last']:.4f} "
      f"format_diff={format_diff:.6f}")
