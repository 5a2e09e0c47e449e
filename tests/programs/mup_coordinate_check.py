"""muP (Yang et al., "Tensor Programs V"; microsoft/mup) and its coordinate check, written by hand at tiny widths.

The model is mup's ``examples/MLP`` network: ``fc_1``/``fc_2`` bias-free ``nn.Linear``s initialised by
``nn.init.kaiming_normal_(w, a=1, mode='fan_in')`` (standard deviation ``1/sqrt(fan_in)``) and ``fc_3`` a
``MuReadout`` (an ``nn.Linear`` subclass that zero-initialises through ``self.weight.data[:] = 0`` in its own
``reset_parameters`` and multiplies its input by ``output_mult / width_mult()``). ``set_base_shapes`` is
done as mup does it: a base model (width 32) and a delta model (width 64) are built, a dimension is
"infinite" where their shapes differ, and every parameter gets an ``infshape`` attribute whose
``width_mult()`` is its fan-in's width over the base's. ``MuAdam`` splits the parameter groups by
``p.infshape.ninf()``: matrix-like parameters (both dimensions infinite) get ``lr / width_mult`` in their
own group, vector-like ones keep ``lr``.

The coordinate check is mup's ``get_coord_data``: for widths 32..256 and a few seeds, a forward hook on
every named module records ``output.abs().mean().item()`` at each of a few Adam steps (``handle.remove()``
afterwards). Under the standard parametrisation (PyTorch's default init, one Adam learning rate, a plain
readout) the coordinates after training grow with width; under muP they stay flat. Then the same
learning rate trains every width.

Checked: the largest spread (max over widths / min over widths) of any layer's coordinate size after
the last step, under muP (within a small factor) and under SP (growing with width), and that the loss falls at every
width with one learning rate under muP.
"""

import math
import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import Adam

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

D_IN, NUM_CLASSES, BASE_WIDTH, DELTA_WIDTH = 32, 10, 32, 64
WIDTHS = [32, 64, 128, 256]
LR = 0.01

# a fixed random teacher labels Gaussian inputs
teacher = rng.normal(size=(D_IN, NUM_CLASSES)) / math.sqrt(D_IN)
X_np = rng.normal(size=(512, D_IN)).astype(np.float32)
Y_np = np.argmax(np.tanh(X_np @ teacher) + 0.1 * rng.normal(size=(512, NUM_CLASSES)), axis=1)
X, Y = torch.from_numpy(X_np), torch.from_numpy(Y_np)


# ----------------------------------------------------------------------------------- mup pieces by hand
class InfDim:
    def __init__(self, base_dim, dim):
        self.base_dim = base_dim
        self.dim = dim

    def isinf(self):
        return self.base_dim is not None

    def width_mult(self):
        return self.dim / self.base_dim if self.isinf() else 1


class InfShape(tuple):
    def ninf(self):
        return sum(1 for dim in self if dim.isinf())

    def width_mult(self):
        # the fan-in dimension's multiplier (dimension 1 of a Linear weight), else the fan-out's
        for dim in reversed(self):
            if dim.isinf():
                return dim.width_mult()
        return 1

    def __repr__(self):
        return "InfShape(" + ", ".join(f"{d.dim}/{d.base_dim}" if d.isinf() else str(d.dim) for d in self) + ")"


def set_base_shapes(model, base, delta):
    base_shapes = {name: p.shape for name, p in base.named_parameters()}
    delta_shapes = {name: p.shape for name, p in delta.named_parameters()}
    for name, p in model.named_parameters():
        b, d = base_shapes[name], delta_shapes[name]
        p.infshape = InfShape(InfDim(bd if bd != dd else None, pd) for pd, bd, dd in zip(p.shape, b, d))
    return model


class MuReadout(nn.Linear):
    def __init__(self, *args, readout_zero_init=False, output_mult=1.0, **kwargs):
        self.output_mult = output_mult
        self.readout_zero_init = readout_zero_init
        super().__init__(*args, **kwargs)

    def reset_parameters(self):
        if self.readout_zero_init:
            self.weight.data[:] = 0
            if self.bias is not None:
                self.bias.data[:] = 0
        else:
            super().reset_parameters()

    def width_mult(self):
        assert hasattr(self.weight, "infshape"), (
            "Please call set_base_shapes(...). If using torch.nn.DataParallel, "
            "switch to distributed training with torch.nn.parallel.DistributedDataParallel instead")
        return self.weight.infshape.width_mult()

    def forward(self, x):
        return super().forward(self.output_mult * x / self.width_mult())


def MuAdam(params, lr, **kwargs):
    new_param_groups = []
    for param_group in [{"params": list(params)}]:
        param_group.setdefault("lr", lr)
        matrix_like_p = defaultdict(list)
        vector_like_p = []
        for p in param_group["params"]:
            assert hasattr(p.infshape, "ninf"), "A parameter with no infshape: call set_base_shapes first"
            if p.infshape.ninf() == 2:
                matrix_like_p[p.infshape.width_mult()].append(p)
            elif p.infshape.ninf() > 2:
                raise NotImplementedError("more than 2 inf dimensions")
            else:
                vector_like_p.append(p)
        for width_mult, group in matrix_like_p.items():
            new_group = {k: v for k, v in param_group.items() if k != "params"}
            new_group["params"] = group
            new_group["lr"] /= width_mult
            new_param_groups.append(new_group)
        new_group = {k: v for k, v in param_group.items() if k != "params"}
        new_group["params"] = vector_like_p
        new_param_groups.append(new_group)
    return Adam(new_param_groups, **kwargs)


class MLP(nn.Module):
    def __init__(self, width=128, num_classes=NUM_CLASSES, nonlin=F.relu, output_mult=1.0, input_mult=1.0, mup=True):
        super().__init__()
        self.nonlin = nonlin
        self.input_mult = input_mult
        self.output_mult = output_mult
        self.mup = mup
        self.fc_1 = nn.Linear(D_IN, width, bias=False)
        self.fc_2 = nn.Linear(width, width, bias=False)
        if mup:
            self.fc_3 = MuReadout(width, num_classes, bias=False, output_mult=output_mult, readout_zero_init=True)
            self.reset_parameters()
        else:
            self.fc_3 = nn.Linear(width, num_classes, bias=False)  # PyTorch's default init everywhere

    def reset_parameters(self):
        nn.init.kaiming_normal_(self.fc_1.weight, a=1, mode="fan_in")
        self.fc_1.weight.data /= self.input_mult ** 0.5
        nn.init.kaiming_normal_(self.fc_2.weight, a=1, mode="fan_in")
        nn.init.zeros_(self.fc_3.weight)

    def forward(self, x):
        out = self.nonlin(self.fc_1(x) * self.input_mult ** 0.5)
        out = self.nonlin(self.fc_2(out))
        return self.fc_3(out)


def make_model(width, mup):
    model = MLP(width=width, mup=mup)
    if mup:
        set_base_shapes(model, MLP(width=BASE_WIDTH, mup=True), MLP(width=DELTA_WIDTH, mup=True))
    return model


def make_optimizer(model, mup, lr):
    return MuAdam(model.parameters(), lr=lr) if mup else Adam(model.parameters(), lr=lr)


# ----------------------------------------------------------------------------------- coordinate check
def _record_coords(records, width, modulename, t):
    def f(module, input, output):
        records.append(dict(module=modulename, t=t, width=width, l1=output.abs().mean().item()))
    return f


def get_coord_data(mup, nsteps=4, nseeds=2, batch_size=64):
    records = []
    for width in WIDTHS:
        for s in range(nseeds):
            torch.manual_seed(1000 * seed + s)
            model = make_model(width, mup)
            optimizer = make_optimizer(model, mup, LR)
            for t in range(nsteps):
                remove_hooks = []
                for name, module in model.named_modules():
                    if name:
                        remove_hooks.append(module.register_forward_hook(_record_coords(records, width, name, t)))
                index = torch.randint(0, X.size(0), (batch_size,))
                loss = F.cross_entropy(model(X[index]), Y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                for handle in remove_hooks:
                    handle.remove()
            assert all(not m._forward_hooks for m in model.modules())
    return records


def coord_table(records, t):
    table = defaultdict(list)
    for r in records:
        if r["t"] == t:
            table[(r["module"], r["width"])].append(r["l1"])
    return {key: float(np.mean(v)) for key, v in table.items()}


spreads = {}
for mup in (False, True):
    label = "muP" if mup else "SP"
    records = get_coord_data(mup)
    last = max(r["t"] for r in records)
    first_table, table = coord_table(records, 0), coord_table(records, last)
    for module in ("fc_1", "fc_2", "fc_3"):
        row = " ".join(f"{table[(module, w)]:.4f}" for w in WIDTHS)
        print(f"{label} {module} l1 at t={last} over widths {WIDTHS}: {row} (t=0 width 256: {first_table[(module, 256)]:.4f})")
    growth = max(table[(m, WIDTHS[-1])] / table[(m, WIDTHS[0])] for m in ("fc_1", "fc_2", "fc_3"))
    spreads[label] = max(max(table[(m, w)] for w in WIDTHS) / min(table[(m, w)] for w in WIDTHS) for m in ("fc_1", "fc_2", "fc_3"))
    print(f"{label}: {len(records)} records, largest width-{WIDTHS[-1]}/width-{WIDTHS[0]} coordinate ratio {growth:.4f}, "
          f"largest max/min over widths {spreads[label]:.4f}")

probe = make_model(64, True)
print("infshapes:", {name: repr(p.infshape) for name, p in probe.named_parameters()})
print("MuAdam groups (lr, n params):", [(round(g["lr"], 6), len(g["params"])) for g in make_optimizer(probe, True, LR).param_groups])

# ----------------------------------------------------------------------------------- one lr for every width
drops = []
for width in WIDTHS:
    torch.manual_seed(seed)
    model = make_model(width, True)
    optimizer = make_optimizer(model, True, LR)
    with torch.no_grad():
        loss0 = F.cross_entropy(model(X), Y).item()
    for _ in range(40):
        index = torch.randint(0, X.size(0), (64,))
        loss = F.cross_entropy(model(X[index]), Y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits = model(X)
        loss1 = F.cross_entropy(logits, Y).item()
        acc = (logits.argmax(1) == Y).float().mean().item()
    drops.append(loss0 - loss1)
    print(f"muP width {width}: loss {loss0:.4f} -> {loss1:.4f} acc {acc:.4f}")

print(f"FINAL mup_spread={spreads['muP']:.4f} sp_spread={spreads['SP']:.4f} min_loss_drop={min(drops):.4f} "
      f"mean_loss_drop={np.mean(drops):.4f} final_acc={acc:.4f}")
