"""The pytorch.org "A Gentle Introduction to torch.autograd" tutorial and the "Autograd mechanics" notes,
as a reader tries them: ``Q = 3*a**3 - b**2`` with ``Q.backward(gradient=external_grad)`` and
``9*a**2 == a.grad``, ``requires_grad`` flowing through ops, freezing a network by
``param.requires_grad = False`` and ``requires_grad_(False)`` before replacing its head, the graph
walked from ``loss.grad_fn`` through ``next_functions`` and printed by node name, saved tensors
(``y.grad_fn._saved_self`` is ``x``, ``_saved_result`` equals but is not ``y``, ``_saved_exponent``,
``_raw_saved_self`` with ``register_hooks(pack, unpack)``), ``torch.autograd.graph.saved_tensors_hooks``
(printing, counting, and saving to disk with ``torch.save``/``torch.load`` through temporary files),
``save_on_cpu``, ``register_multi_grad_hook`` (``mode="all"`` and ``"any"``), ``Node.register_hook`` and
``register_prehook``, ``retain_grad`` and ``is_leaf``, the in-place correctness check (``_version`` and
the "modified by an inplace operation" ``RuntimeError``), ``torch.autograd.set_detect_anomaly(True)``
naming the node that returned nan; then a training loop that uses them: a frozen first layer, a
replaced head, ``retain_grad`` on the hidden activation, a pack hook counting saved tensors and a
multi-grad hook seeing every step.
"""

import os
import tempfile
import uuid
import warnings

import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# -- A Gentle Introduction: differentiation in autograd
a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)
Q = 3 * a**3 - b**2
external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)
print(9 * a**2 == a.grad)
print(-2 * b == b.grad)

# -- Exclusion from the DAG
x = torch.rand(5, 5)
y = torch.rand(5, 5)
z = torch.rand((5, 5), requires_grad=True)
a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")

model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
model.fc = nn.Linear(16, 4)
for param in model.parameters():
    param.requires_grad = False
model.fc = nn.Linear(16, 4)
print("trainable after replacing fc:", [name for name, p in model.named_parameters() if p.requires_grad])
model[2].requires_grad_(True)
print("after requires_grad_(True) on [2]:", [name for name, p in model.named_parameters() if p.requires_grad])
model[2].requires_grad_(False)


# -- the graph, walked through next_functions
def walk(fn, depth=0, seen=None):
    seen = set() if seen is None else seen
    if fn is None or fn in seen:
        return
    seen.add(fn)
    line = "  " * depth + type(fn).__name__ if not hasattr(fn, "name") else "  " * depth + fn.name()
    if hasattr(fn, "variable"):
        line += f" variable{tuple(fn.variable.shape)}"
    print(line)
    for next_fn, _ in fn.next_functions:
        walk(next_fn, depth + 1, seen)


w = torch.randn(3, 4, requires_grad=True)
bias = torch.randn(3, requires_grad=True)
inp = torch.randn(2, 4)
loss = torch.tanh(inp @ w.t() + bias).pow(2).mean()
walk(loss.grad_fn)
print("leaves:", w.is_leaf, inp.is_leaf, loss.is_leaf, "grad_fn of a leaf:", w.grad_fn)

# -- saved tensors
x = torch.randn(5, requires_grad=True)
y = x.pow(2)
print("_saved_self equals x:", x.equal(y.grad_fn._saved_self), "is x:", y.grad_fn._saved_self is x)
print("_saved_exponent:", y.grad_fn._saved_exponent)
y = x.exp()
print("_saved_result equals y:", y.equal(y.grad_fn._saved_result), "is y:", y.grad_fn._saved_result is y)
y = x.pow(2)
packed = []
y.grad_fn._raw_saved_self.register_hooks(lambda t: packed.append(t.shape) or t, lambda t: t * 1)
print("raw saved hooks packed:", packed, "type:", type(y.grad_fn._raw_saved_self).__name__)
y.sum().backward()
print("x.grad == 2x:", torch.allclose(x.grad, 2 * x))


def pack_hook(x):
    print("Packing", x)
    return x


def unpack_hook(x):
    print("Unpacking", x)
    return x


a = torch.ones(5, requires_grad=True)
b = torch.ones(5, requires_grad=True) * 2
with torch.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook):
    y = a * b
y.sum().backward()
print("a.grad:", a.grad)

tmp_dir_obj = tempfile.TemporaryDirectory()
tmp_dir = tmp_dir_obj.name
files = []


class SelfDeletingTempFile:
    def __init__(self):
        self.name = os.path.join(tmp_dir, str(uuid.uuid4()))


def pack_to_disk(tensor):
    temp_file = SelfDeletingTempFile()
    torch.save(tensor, temp_file.name)
    files.append(temp_file.name)
    return temp_file


def unpack_from_disk(temp_file):
    return torch.load(temp_file.name, weights_only=True)


x = torch.randn(5, requires_grad=True)
with torch.autograd.graph.saved_tensors_hooks(pack_to_disk, unpack_from_disk):
    y = x.pow(2).sin()
y.sum().backward()
print("saved to disk:", len(files), "files; grad matches:",
      torch.allclose(x.grad, torch.cos(x.detach() ** 2) * 2 * x.detach()))
tmp_dir_obj.cleanup()

x = torch.randn(4, requires_grad=True)
with torch.autograd.graph.save_on_cpu(pin_memory=False):
    y = (x * x).exp()
y.sum().backward()
print("save_on_cpu grad matches:", torch.allclose(x.grad, 2 * x.detach() * torch.exp(x.detach() ** 2)))

# -- hooks on several tensors and on nodes
a = torch.randn(3, requires_grad=True)
b = torch.randn(3, requires_grad=True)
c = torch.randn(3, requires_grad=True)
seen = []
handle = torch.autograd.graph.register_multi_grad_hook(
    (a, b, c), lambda grads: seen.append(["None" if g is None else tuple(g.shape) for g in grads]))
(a * b).sum().backward()
print("multi grad hook (all):", seen)
handle.remove()
seen_any = []
handle = torch.autograd.graph.register_multi_grad_hook((a, b), lambda grad: seen_any.append(tuple(grad.shape)),
                                                       mode="any")
(a * 3).sum().backward()
print("multi grad hook (any):", seen_any)
handle.remove()

x = torch.randn(2, 3, requires_grad=True)
y = x.sigmoid()
node_calls = []
y.grad_fn.register_prehook(lambda grad_outputs: node_calls.append(("prehook", len(grad_outputs))))
y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: node_calls.append(
    ("hook", len(grad_inputs), tuple(grad_inputs[0].shape))))
h = y * 2
h.retain_grad()
h.sum().backward()
print("node hooks:", node_calls, "retained grad:", h.grad.tolist(), "is_leaf:", h.is_leaf)

# -- in-place correctness checks
a = torch.randn(3, requires_grad=True)
b = a.sigmoid()
print("version before:", b._version)
b.add_(1)
print("version after add_:", b._version)
try:
    b.sum().backward()
except RuntimeError as e:
    print("RuntimeError:", e)
c = a.clone()
c.mul_(2)
c.sum().backward()
print("clone then in-place is fine:", torch.equal(a.grad, torch.full((3,), 2.)))

# -- anomaly detection
x = torch.tensor([0.0, 1.0], requires_grad=True)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with torch.autograd.set_detect_anomaly(True):
        try:
            y = torch.sqrt(x) * 0.0
            (torch.sqrt(x - x.detach()) * x).sum().backward()
        except RuntimeError as e:
            print("RuntimeError:", e)
print("anomaly mode off again:", torch.is_anomaly_enabled())

# -- a training loop that uses them
torch.manual_seed(seed)
X = torch.randn(128, 8)
Y = (X[:, :4].sum(1) > 0).long() + 2 * (X[:, 4] * X[:, 5] > 0).long()
net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))
pretrain = torch.optim.Adam(net.parameters(), lr=0.01)
for _ in range(30):
    pretrain.zero_grad()
    nn.functional.cross_entropy(net(X), Y).backward()
    pretrain.step()
pretrain.zero_grad()
net[0].requires_grad_(False)
net[4] = nn.Linear(32, 4)
optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.2, momentum=0.9)
stats = {"packed": 0, "multi": 0}


def count_pack(t):
    stats["packed"] += 1
    return t


hook_handle = torch.autograd.graph.register_multi_grad_hook(
    tuple(net[4].parameters()), lambda grads: stats.__setitem__("multi", stats["multi"] + 1))
for step in range(60):
    optimizer.zero_grad()
    with torch.autograd.graph.saved_tensors_hooks(count_pack, lambda t: t):
        hidden = net[:4](X)
        hidden.retain_grad()
        loss = nn.functional.cross_entropy(net[4](hidden), Y)
    loss.backward()
    optimizer.step()
    if step % 20 == 0:
        print(f"step {step} loss {loss.item():.4f} hidden grad norm {hidden.grad.norm().item():.4f}")
hook_handle.remove()
print("frozen layer has no grad:", net[0].weight.grad is None, "multi hook calls:", stats["multi"],
      "saved tensors packed per step:", stats["packed"] // 60)
with torch.no_grad():
    logits = net(X)
    final_loss = nn.functional.cross_entropy(logits, Y).item()
    accuracy = (logits.argmax(1) == Y).float().mean().item()
print(f"FINAL loss={final_loss:.4f} accuracy={accuracy:.4f}")
