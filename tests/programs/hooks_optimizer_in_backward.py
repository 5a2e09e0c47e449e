"""The newer hook APIs training code reaches for, on a small MLP classifier and a distillation run.

1. The tutorial "How to save memory by fusing the optimizer step into the backward pass": one
   ``Adam`` per parameter in a dict, stepped from ``p.register_post_accumulate_grad_hook(hook)`` with
   ``optimizer_dict[param].step()`` + ``zero_grad()`` inside the hook, so no ``p.grad`` survives the
   backward; it must take the same steps as one ``Adam`` over the model (``torch.equal``).
2. Module hooks with their newer keywords: ``register_forward_pre_hook(with_kwargs=True)`` rewriting a
   keyword argument, ``register_forward_hook(with_kwargs=True, always_call=True)`` seeing the kwargs
   and running even when the forward raises, ``prepend=True`` ordering, ``register_full_backward_pre_hook``
   scaling ``grad_output`` (the gradient reaching the layer's parameters scales with it), the global
   ``nn.modules.module.register_module_forward_hook`` counting every module call, and the
   ``RemovableHandle``s (``handle.remove()``, as context managers), and the global
   ``register_module_parameter_registration_hook``/``register_module_module_registration_hook``
   seeing a model being built (a returned Parameter replacing the registered one).
3. ``model.get_submodule("blocks.1.fc")``, ``get_parameter``, ``set_submodule`` swapping an activation.
4. Feature distillation: a trained teacher frozen by ``requires_grad_(False)`` + ``eval()`` and run under
   ``torch.inference_mode()``, intermediate features captured by a forward hook on both networks, the
   student trained on ``F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction='batchmean') * T * T``
   (and the ``log_target=True`` form checked equal) + ``CrossEntropyLoss(label_smoothing=0.1)`` +
   ``F.mse_loss`` of a projection of the student's hidden layer onto the teacher's; top-k accuracy by
   ``torch.topk``.

The data: a five-class problem of Gaussian blobs with a nonlinear twist, made with NumPy.
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

C, D, N = 5, 10, 600
centers = rng.normal(scale=2.0, size=(C, D))
labels = rng.integers(0, C, size=N)
X_np = centers[labels] + rng.normal(scale=1.6, size=(N, D))
X_np[:, 0] += np.sin(X_np[:, 1] * 1.5)
X = torch.tensor(X_np, dtype=torch.float32)
Y = torch.tensor(labels)
X_train, Y_train, X_test, Y_test = X[:480], Y[:480], X[480:], Y[480:]


class Block(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.fc = nn.Linear(d_in, d_out)
        self.act = nn.ReLU()

    def forward(self, x, scale=1.0):
        return self.act(self.fc(x)) * scale


class MLP(nn.Module):
    def __init__(self, width, depth=2):
        super().__init__()
        self.blocks = nn.ModuleList([Block(D if i == 0 else width, width) for i in range(depth)])
        self.head = nn.Linear(width, C)

    def forward(self, x):
        for block in self.blocks:
            x = block(x, scale=1.0)
        return self.head(x)


def batches(generator, batch=48):
    perm = torch.randperm(X_train.shape[0], generator=generator)
    for i in range(0, len(perm), batch):
        idx = perm[i:i + batch]
        yield X_train[idx], Y_train[idx]


def topk_accuracy(logits, target, ks=(1, 2)):
    _, pred = logits.topk(max(ks), dim=1, largest=True, sorted=True)
    correct = pred.eq(target.view(-1, 1).expand_as(pred))
    return [correct[:, :k].any(dim=1).float().mean().item() for k in ks]


# --- 1. optimizer step fused into the backward -------------------------------------------------------
torch.manual_seed(seed + 1)
base = MLP(32)
plain = copy.deepcopy(base)
fused = copy.deepcopy(base)

plain_opt = torch.optim.Adam(plain.parameters(), lr=3e-3, weight_decay=1e-4)
optimizer_dict = {p: torch.optim.Adam([p], lr=3e-3, weight_decay=1e-4) for p in fused.parameters()}
hook_calls = [0]


def optimizer_hook(parameter) -> None:
    hook_calls[0] += 1
    optimizer_dict[parameter].step()
    optimizer_dict[parameter].zero_grad()


handles = [p.register_post_accumulate_grad_hook(optimizer_hook) for p in fused.parameters()]
g_plain, g_fused = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
for _ in range(3):
    for (xb, yb), (xf, yf) in zip(batches(g_plain), batches(g_fused)):
        plain_opt.zero_grad()
        F.cross_entropy(plain(xb), yb).backward()
        plain_opt.step()
        F.cross_entropy(fused(xf), yf).backward()
grads_left = sum(p.grad is not None for p in fused.parameters())
same = all(torch.equal(a, b) for a, b in zip(plain.parameters(), fused.parameters()))
for h in handles:
    h.remove()
with torch.no_grad():
    acc_fused = topk_accuracy(fused(X_test), Y_test)[0]
print(f"optimizer in backward: hook calls {hook_calls[0]}, grads left {grads_left}, equal to plain Adam: {same}, "
      f"test acc {acc_fused:.4f}")

# --- 2. module hooks with kwargs, always_call, prepend, backward pre-hooks --------------------------------
model = copy.deepcopy(fused)
order = []


def pre_hook(module, args, kwargs):
    order.append("pre")
    kwargs = dict(kwargs)
    kwargs["scale"] = 2.0
    return args, kwargs


def first_pre_hook(module, args):
    order.append("first")


def post_hook(module, args, kwargs, output):
    order.append(f"post scale={kwargs.get('scale')}")
    return output


block0 = model.blocks[0]
h_pre = block0.register_forward_pre_hook(pre_hook, with_kwargs=True)
h_first = block0.register_forward_pre_hook(first_pre_hook, prepend=True)
h_post = block0.register_forward_hook(post_hook, with_kwargs=True, always_call=True)
with torch.no_grad():
    doubled = block0(X_test[:4], scale=1.0)
    h_pre.remove()
    single = block0(X_test[:4], scale=1.0)
print("hook order:", order)
print(f"pre-hook rewrote scale: {torch.allclose(doubled, 2 * single)}")
order.clear()
try:
    block0(X_test[:4, :3])
except RuntimeError:
    print(f"forward raised; always_call post hook ran: {order}")
h_first.remove()
h_post.remove()

seen = {}


def backward_pre_hook(module, grad_output):
    seen[type(module).__name__] = grad_output[0].abs().sum().item()
    return (grad_output[0] * 0.5,)


xb, yb = X_train[:64], Y_train[:64]
model.zero_grad()
F.cross_entropy(model(xb), yb).backward()
g_ref = model.head.weight.grad.clone()
h_bwd = model.head.register_full_backward_pre_hook(backward_pre_hook)
model.zero_grad()
F.cross_entropy(model(xb), yb).backward()
h_bwd.remove()
print(f"backward pre-hook saw {list(seen)}, head grad halved: {torch.allclose(model.head.weight.grad, 0.5 * g_ref)}")

calls = {}


def count_calls(module, args, output):
    calls[type(module).__name__] = calls.get(type(module).__name__, 0) + 1


with nn.modules.module.register_module_forward_hook(count_calls):
    with torch.no_grad():
        model(X_test)
print("global forward hook calls:", dict(sorted(calls.items())))

# registration hooks, as deferred-init tools use them: every parameter and submodule of a model being
# built is seen, and a returned value replaces the one registered (here each bias, which the layer's
# reset_parameters then initialises in place)
registered = []


def zero_biases(module, name, param):
    registered.append(f"{type(module).__name__}.{name}")
    if name == "bias":
        return nn.Parameter(torch.zeros_like(param))
    return None


def count_submodules(module, name, submodule):
    registered.append(f"{type(module).__name__}[{name}]")


with nn.modules.module.register_module_parameter_registration_hook(zero_biases), \
        nn.modules.module.register_module_module_registration_hook(count_submodules):
    built = MLP(8)
print(f"registration hooks saw {len(registered)} registrations: {registered[:4]}, "
      f"{sum(p.numel() for p in built.parameters())} parameters built")

# --- 3. submodule access by name --------------------------------------------------------------------
fc = model.get_submodule("blocks.1.fc")
weight = model.get_parameter("blocks.1.fc.weight")
print(f"get_submodule is the block's fc: {fc is model.blocks[1].fc}, get_parameter shape {tuple(weight.shape)}")
model.set_submodule("blocks.1.act", nn.LeakyReLU(0.1))
print("swapped:", model.blocks[1].act)
try:
    model.get_submodule("blocks.7.fc")
except AttributeError as err:
    print("missing submodule:", err)

# --- 4. distillation with a frozen teacher and hooked features ---------------------------------------------
torch.manual_seed(seed + 2)
teacher = MLP(64, depth=3)
t_opt = torch.optim.AdamW(teacher.parameters(), lr=3e-3)
g = torch.Generator().manual_seed(seed + 3)
for _ in range(12):
    for xb, yb in batches(g):
        t_opt.zero_grad()
        F.cross_entropy(teacher(xb), yb).backward()
        t_opt.step()
teacher.requires_grad_(False)
teacher.eval()
with torch.inference_mode():
    t_top1, t_top2 = topk_accuracy(teacher(X_test), Y_test)
print(f"teacher top1 {t_top1:.4f} top2 {t_top2:.4f}")

features = {}


def save_feature(name):
    def hook(module, args, output):
        features[name] = output
    return hook


teacher.blocks[1].register_forward_hook(save_feature("teacher"))
T = 4.0
ce = nn.CrossEntropyLoss(label_smoothing=0.1)
results = {}
for mode in ("ce_only", "kd", "kd_feature"):
    torch.manual_seed(seed + 4)
    student = MLP(16, depth=2)
    student.blocks[1].register_forward_hook(save_feature("student"))
    projector = nn.Linear(16, 64)
    opt = torch.optim.Adam(list(student.parameters()) + list(projector.parameters()), lr=3e-3)
    g = torch.Generator().manual_seed(seed + 5)
    for _ in range(6):
        for xb, yb in batches(g):
            with torch.inference_mode():
                t_logits = teacher(xb)
            t_feature = features["teacher"].clone()  # an inference tensor: cloned outside the mode
            s_logits = student(xb)
            loss = ce(s_logits, yb)
            if mode != "ce_only":
                t_logits = t_logits.clone()
                kd = F.kl_div(F.log_softmax(s_logits / T, dim=1), F.softmax(t_logits / T, dim=1),
                              reduction="batchmean") * T * T
                kd_log = F.kl_div(F.log_softmax(s_logits / T, dim=1), F.log_softmax(t_logits / T, dim=1),
                                  reduction="batchmean", log_target=True) * T * T
                assert torch.allclose(kd, kd_log, rtol=1e-5, atol=1e-6)
                loss = 0.3 * loss + 0.7 * kd
            if mode == "kd_feature":
                loss = loss + 0.5 * F.mse_loss(projector(features["student"]), t_feature)
            opt.zero_grad()
            loss.backward()
            opt.step()
    student.eval()
    with torch.no_grad():
        top1, top2 = topk_accuracy(student(X_test), Y_test)
    results[mode] = top1
    print(f"student {mode:10s} top1 {top1:.4f} top2 {top2:.4f} last loss {loss.item():.4f}")

print(f"FINAL fused_acc={acc_fused:.4f} fused_equal={int(same)} teacher={t_top1:.4f} "
      f"ce_only={results['ce_only']:.4f} kd={results['kd']:.4f} kd_feature={results['kd_feature']:.4f}")
