"""The pytorch.org state_dict recipes beyond the basic checkpoint, as users combine them: "What is a
state_dict" (``optimizer.state_dict()`` before and after a step: ``state`` keyed by integers, the
``param_groups`` entries), "Saving and loading multiple models in one file" (``torch.save`` of a
dict of two models and two optimizers, ``torch.load(map_location="cpu", weights_only=True)``),
"Warmstarting model using parameters from a different model" (``load_state_dict(strict=False)``
returning ``missing_keys``/``unexpected_keys``, keys renamed by a dict comprehension), "Zeroing out
gradients" (``model.zero_grad()`` against ``optimizer.zero_grad(set_to_none=False)`` and the default
``set_to_none=True``, ``p.grad is None``), the ``nn.Module`` state hooks (``register_state_dict_pre_hook``,
``register_state_dict_post_hook`` editing the dict, ``register_load_state_dict_pre_hook`` renaming an
old key, ``_register_load_state_dict_pre_hook``, ``register_load_state_dict_post_hook`` clearing
``missing_keys``), ``get_extra_state``/``set_extra_state`` (a ``_extra_state`` key), the
``_metadata`` version and a ``_load_from_state_dict`` override migrating version-1 checkpoints,
``state_dict(prefix=..., keep_vars=True)``, ``load_state_dict(assign=True)`` (the loaded tensors
become the parameters), and a model trained, checkpointed mid-run and resumed to the same result.
"""

import io
import os
import tempfile

import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class TheModelClass(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


x = torch.randn(60, 4)
y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).long() + (x[:, 3] > 0.5).long()

# -- What is a state_dict
model = TheModelClass()
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
print("Model's state_dict:")
for param_tensor in model.state_dict():
    print(param_tensor, "\t", model.state_dict()[param_tensor].size())
print("Optimizer's state_dict:")
for var_name in optimizer.state_dict():
    print(var_name, "\t", optimizer.state_dict()[var_name])
nn.functional.cross_entropy(model(x), y).backward()
optimizer.step()
state = optimizer.state_dict()["state"]
print("after a step: state keys", sorted(state), "entries", sorted(state[0]),
      "momentum_buffer shape", tuple(state[0]["momentum_buffer"].shape))
print("metadata versions:", model.state_dict()._metadata[""], model.state_dict()._metadata["bn"])

# -- Zeroing out gradients
print("grads before zeroing:", all(p.grad is not None for p in model.parameters()))
optimizer.zero_grad(set_to_none=False)
print("zero_grad(set_to_none=False): all zeros", all(p.grad is not None and not p.grad.any() for p in model.parameters()))
nn.functional.cross_entropy(model(x), y).backward()
model.zero_grad()
print("model.zero_grad(): None", all(p.grad is None for p in model.parameters()))
nn.functional.cross_entropy(model(x), y).backward()
optimizer.zero_grad()
print("optimizer.zero_grad(): None", all(p.grad is None for p in model.parameters()))

# -- Saving and loading multiple models in one file
modelA, modelB = TheModelClass(), TheModelClass()
optimizerA = optim.SGD(modelA.parameters(), lr=0.001, momentum=0.9)
optimizerB = optim.Adam(modelB.parameters(), lr=0.01)
for m, opt in ((modelA, optimizerA), (modelB, optimizerB)):
    nn.functional.cross_entropy(m(x), y).backward()
    opt.step()
with tempfile.TemporaryDirectory() as tmp:
    PATH = os.path.join(tmp, "models.tar")
    torch.save({
        "modelA_state_dict": modelA.state_dict(),
        "modelB_state_dict": modelB.state_dict(),
        "optimizerA_state_dict": optimizerA.state_dict(),
        "optimizerB_state_dict": optimizerB.state_dict(),
    }, PATH)
    checkpoint = torch.load(PATH, map_location="cpu", weights_only=True)
modelA2, modelB2 = TheModelClass(), TheModelClass()
optimizerA2 = optim.SGD(modelA2.parameters(), lr=0.5)
optimizerB2 = optim.Adam(modelB2.parameters())
modelA2.load_state_dict(checkpoint["modelA_state_dict"])
modelB2.load_state_dict(checkpoint["modelB_state_dict"])
optimizerA2.load_state_dict(checkpoint["optimizerA_state_dict"])
optimizerB2.load_state_dict(checkpoint["optimizerB_state_dict"])
modelA2.eval()
modelB2.eval()
print("checkpoint keys:", sorted(checkpoint))
print("loaded lr:", optimizerA2.param_groups[0]["lr"], optimizerB2.param_groups[0]["lr"],
      "Adam step:", optimizerB2.state_dict()["state"][0]["step"].item())
print("loaded models equal:", all(torch.equal(a, b) for a, b in zip(modelA.state_dict().values(),
                                                                    modelA2.state_dict().values())),
      all(torch.equal(a, b) for a, b in zip(modelB.state_dict().values(), modelB2.state_dict().values())))


# -- Warmstarting model using parameters from a different model
class NetB(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.head = nn.Linear(16, 5)


netB = NetB()
result = netB.load_state_dict(modelA.state_dict(), strict=False)
print("missing_keys:", result.missing_keys)
print("unexpected_keys:", result.unexpected_keys)
print("fc1 warm-started:", torch.equal(netB.fc1.weight, modelA.fc1.weight))
renamed = {k.replace("fc2", "head"): v for k, v in modelA.state_dict().items() if not k.startswith("bn")}
try:
    netB.load_state_dict(renamed)
except RuntimeError as e:
    print("RuntimeError:", e)
renamed = {k: v for k, v in renamed.items() if k.startswith("fc1")}
print("renamed:", netB.load_state_dict(renamed, strict=False))

# -- state_dict(prefix=, keep_vars=)
sd = model.state_dict(prefix="backbone.", keep_vars=True)
print("prefixed keys:", list(sd)[:3], "keep_vars Parameter:", isinstance(sd["backbone.fc1.weight"], nn.Parameter),
      "requires_grad:", sd["backbone.fc1.weight"].requires_grad)
print("detached by default:", model.state_dict()["fc1.weight"].requires_grad)

# -- state_dict and load_state_dict hooks
calls = []


def pre_hook(module, prefix, keep_vars):
    calls.append(("state_dict_pre", prefix, keep_vars))


def post_hook(module, state_dict, prefix, local_metadata):
    calls.append(("state_dict_post", prefix))
    state_dict[prefix + "scale"] = torch.tensor(2.0)


def load_pre_hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    calls.append(("load_pre", prefix, strict))
    for key in [k for k in state_dict if k.endswith(".w")]:  # checkpoints from before the rename
        state_dict[key[:-2] + ".weight"] = state_dict.pop(key)
    state_dict.pop(prefix + "scale", None)


def private_load_pre_hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    calls.append(("_load_pre", prefix))


def load_post_hook(module, incompatible_keys):
    calls.append(("load_post", list(incompatible_keys.missing_keys)))
    incompatible_keys.missing_keys.clear()


small = nn.Sequential(nn.Linear(3, 2))
h1 = small.register_state_dict_pre_hook(pre_hook)
h2 = small.register_state_dict_post_hook(post_hook)
sd = small.state_dict()
print("post hook added:", list(sd))
h3 = small.register_load_state_dict_pre_hook(load_pre_hook)
h4 = small._register_load_state_dict_pre_hook(private_load_pre_hook)
h5 = small.register_load_state_dict_post_hook(load_post_hook)
old_style = {"0.w": torch.ones(2, 3), "0.bias": torch.zeros(2)}
print("load_state_dict:", small.load_state_dict({"0.w": torch.ones(2, 3), "scale": torch.tensor(2.0)}, strict=True))
print("post hook cleared missing 0.bias; weight loaded:", torch.equal(small[0].weight, torch.ones(2, 3)))
for handle in (h1, h2, h3, h4, h5):
    handle.remove()
calls_printed = [c[0] for c in calls]
print("hook calls:", calls_printed)
print("after remove:", list(small.state_dict()))
try:
    small.load_state_dict(old_style)
except RuntimeError as e:
    print("RuntimeError:", e)


# -- get_extra_state / set_extra_state
class Scaler(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.count = 0
        self.name = "scaler"

    def get_extra_state(self):
        return {"count": self.count, "name": self.name}

    def set_extra_state(self, state):
        self.count = state["count"]
        self.name = state["name"]


s = Scaler()
s.count = 7
sd = s.state_dict()
print("extra state keys:", list(sd), sd["_extra_state"])
buffer = io.BytesIO()
torch.save(sd, buffer)
buffer.seek(0)
s2 = Scaler()
s2.load_state_dict(torch.load(buffer, weights_only=True))
print("extra state restored:", s2.count, s2.name)


# -- versioned modules: _version and _load_from_state_dict
class Versioned(nn.Module):
    _version = 2

    def __init__(self):
        super().__init__()
        self.register_buffer("running", torch.zeros(3))
        self.register_buffer("steps", torch.tensor(0))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and prefix + "steps" not in state_dict:
            state_dict[prefix + "steps"] = torch.tensor(-1)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


v = Versioned()
sd = v.state_dict()
print("version in metadata:", sd._metadata[""]["version"])
old = {"running": torch.ones(3)}
v.load_state_dict(old)
print("version-1 checkpoint migrated: steps", v.steps.item(), "running", v.running.tolist())

# -- load_state_dict(assign=True)
target = TheModelClass()
weight_before = target.fc1.weight
loaded = {k: v.clone() for k, v in model.state_dict().items()}
target.load_state_dict(loaded, assign=True)
print("assign=True: new Parameter", target.fc1.weight is not weight_before,
      "is a Parameter", isinstance(target.fc1.weight, nn.Parameter),
      "shares the loaded storage", target.fc1.weight.data_ptr() == loaded["fc1.weight"].data_ptr(),
      "requires_grad", target.fc1.weight.requires_grad)
copy_target = TheModelClass()
weight_before = copy_target.fc1.weight
copy_target.load_state_dict(loaded)
print("assign=False keeps the Parameter:", copy_target.fc1.weight is weight_before)


# -- a general checkpoint mid-training, resumed
def run(epochs, resume_from=None):
    torch.manual_seed(seed + 1)
    net = TheModelClass()
    opt = optim.Adam(net.parameters(), lr=0.02)
    sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    start = 0
    if resume_from is not None:
        ckpt = torch.load(resume_from, map_location="cpu", weights_only=True)
        net.load_state_dict(ckpt["model_state_dict"])
        opt.load_state_dict(ckpt["optimizer_state_dict"])
        sched.load_state_dict(ckpt["scheduler_state_dict"])
        start = ckpt["epoch"] + 1
    net.train()
    for epoch in range(start, epochs):  # noqa: B007 (returned: the checkpoint's epoch)
        for i in range(0, 60, 20):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x[i:i + 20]), y[i:i + 20])
            loss.backward()
            opt.step()
        sched.step()
    return net, opt, sched, epoch, loss


with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "ckpt.pt")
    net, opt, sched, epoch, loss = run(15)
    torch.save({"epoch": epoch, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(),
                "scheduler_state_dict": sched.state_dict(), "loss": loss}, path)
    full, _, _, _, full_loss = run(30)
    resumed, _, _, _, resumed_loss = run(30, resume_from=path)
print("resumed equals uninterrupted:", all(torch.equal(a, b) for a, b in zip(full.state_dict().values(),
                                                                              resumed.state_dict().values())))
full.eval()
with torch.no_grad():
    logits = full(x)
    eval_loss = nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).float().mean().item()
print(f"FINAL loss={eval_loss:.4f} accuracy={accuracy:.4f} train_loss={full_loss.item():.4f}")
