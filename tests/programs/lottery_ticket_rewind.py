"""Iterative magnitude pruning with weight rewinding, as facebookresearch/open_lth writes it (a
``Mask`` dict, ``PrunedModel`` with the masks as buffers applied by ``param.data *= mask`` after each
optimizer step, ``sparse_global`` pruning a fraction of the remaining weights by one global magnitude
threshold) on a small MLP and synthetic 4-class data. The threshold is found by
``torch.cat([p.abs()[m.bool()] ...]).kthvalue(k)`` and checked against ``torch.quantile(...,
interpolation='nearest')`` and NumPy's sort (open_lth's own spelling); the rewind point is the
iteration-k ``copy.deepcopy(model.state_dict())``; 3 rounds at 20% each. A second route trains the
same tickets through ``torch.nn.utils.prune.custom_from_mask`` (``weight_orig``/``weight_mask``,
``prune.is_pruned``, ``prune.remove``) and must reach the same weights. Checks: the two mask routes
agree, the sparsity is exactly the integer schedule, and the sparse net's accuracy stays close to
the dense one's; a randomly re-initialised ticket (the paper's control) is reported beside it.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import prune

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(11)
D, C = 16, 4
centres = rng.randn(C, D).astype(np.float32) * 1.2


def make(n):
    y = rng.randint(0, C, size=n)
    x = centres[y] + rng.randn(n, D).astype(np.float32)
    x = np.tanh(x) + 0.1 * x ** 2  # a nonlinear warp so the MLP has work to do
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y).long()


x_train, y_train = make(800)
x_test, y_test = make(400)


class MLP(nn.Module):
    def __init__(self, plan=(64, 64), outputs=C):
        super().__init__()
        layers = []
        current = D
        for size in plan:
            layers.append(nn.Linear(current, size))
            current = size
        self.fc_layers = nn.ModuleList(layers)
        self.fc = nn.Linear(current, outputs)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        for layer in self.fc_layers:
            x = F.relu(layer(x))
        return self.fc(x)

    @property
    def prunable_layer_names(self):
        return [name + ".weight" for name, module in self.named_modules()
                if isinstance(module, nn.Linear)]


class PrunedModel(nn.Module):
    """open_lth's pruning/pruned_model.py."""

    @staticmethod
    def to_mask_name(name):
        return "mask_" + name.replace(".", "___")

    def __init__(self, model, mask):
        super().__init__()
        self.model = model
        for k, v in mask.items():
            self.register_buffer(PrunedModel.to_mask_name(k), v.float())
        self._apply_mask()

    def _apply_mask(self):
        for name, param in self.model.named_parameters():
            if hasattr(self, PrunedModel.to_mask_name(name)):
                param.data *= getattr(self, PrunedModel.to_mask_name(name))

    def forward(self, x):
        self._apply_mask()
        return self.model.forward(x)


def ones_mask(model):
    return {name: torch.ones_like(p) for name, p in model.named_parameters()
            if name in model.prunable_layer_names}


def sparse_global(fraction, trained_model, current_mask):
    """open_lth's pruning/sparse_global.py, with the threshold three ways."""
    weights = {k: v.clone().detach() for k, v in trained_model.state_dict().items()
               if k in current_mask}
    remaining = int(sum(m.sum().item() for m in current_mask.values()))
    n_prune = int(np.ceil(fraction * remaining))
    alive = torch.cat([w.abs()[current_mask[k].bool()].flatten() for k, w in weights.items()])
    threshold = alive.kthvalue(n_prune).values
    q = torch.quantile(alive, (n_prune - 1) / (alive.numel() - 1), interpolation="nearest")
    np_threshold = np.sort(alive.numpy())[n_prune - 1]
    agree = bool(threshold.item() == q.item() == float(np_threshold))
    new_mask = {k: torch.where(w.abs() > threshold, current_mask[k], torch.zeros_like(w))
                for k, w in weights.items()}
    return new_mask, n_prune, agree


def evaluate(model):
    model.eval()
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    model.train()
    return acc


def make_loader(round_index):
    g = torch.Generator().manual_seed(1000 + round_index)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train),
                                       batch_size=50, shuffle=True, generator=g)


ITERATIONS = 160
REWIND_ITERATION = 20


def train(model, round_index, after_step=None, save_at=None):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    saved = None
    it = 0
    while it < ITERATIONS:
        for x, y in make_loader(round_index * 100 + it):
            if save_at is not None and it == save_at:
                saved = copy.deepcopy(model.state_dict())
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            it += 1
            if it == ITERATIONS:
                break
    return loss.item(), saved


# ---- dense run, saving the rewind point ---------------------------------------------------------
dense = MLP()
init_state = copy.deepcopy(dense.state_dict())
dense_loss, rewind_state = train(dense, 0, save_at=REWIND_ITERATION)
dense_acc = evaluate(dense)
print(f"dense: loss {dense_loss:.4f} test acc {dense_acc:.4f}, rewind point at iteration {REWIND_ITERATION} "
      f"({len(rewind_state)} tensors)")

mask = ones_mask(dense)
total = int(sum(m.numel() for m in mask.values()))
trained = dense
expected_remaining = total
max_route_diff = 0.0
thresholds_agree = True
sparsity_exact = True
sparse_acc = dense_acc
for level in range(1, 4):
    mask, n_prune, agree = sparse_global(0.2, trained, mask)
    thresholds_agree &= agree
    expected_remaining -= int(np.ceil(0.2 * expected_remaining))

    # route A: open_lth's PrunedModel with masks as buffers
    model = MLP()
    model.load_state_dict(rewind_state)
    pruned = PrunedModel(model, mask)
    loss_a, _ = train(pruned, level, after_step=pruned._apply_mask)
    acc_a = evaluate(pruned)

    # route B: torch.nn.utils.prune.custom_from_mask on the same rewound weights
    model_b = MLP()
    model_b.load_state_dict(rewind_state)
    for name, module in model_b.named_modules():
        if isinstance(module, nn.Linear):
            prune.custom_from_mask(module, name="weight", mask=mask[name + ".weight"])
    names_b = sorted(n for n, _ in model_b.named_parameters())
    pruned_flags = [prune.is_pruned(model_b), "fc.weight_orig" in names_b,
                    "fc.weight_mask" in dict(model_b.named_buffers())]
    loss_b, _ = train(model_b, level)
    acc_b = evaluate(model_b)
    diffs = []
    for name, module in model_b.named_modules():
        if isinstance(module, nn.Linear):
            wa = dict(pruned.model.named_parameters())[name + ".weight"].detach()
            diffs.append((wa - module.weight.detach()).abs().max().item())
    route_diff = max(diffs)
    max_route_diff = max(max_route_diff, route_diff)
    for module in model_b.modules():
        if isinstance(module, nn.Linear):
            prune.remove(module, "weight")
    remaining = int(sum((p != 0).sum().item() for n, p in model_b.named_parameters() if n.endswith("weight")))
    mask_count = int(sum(m.sum().item() for m in mask.values()))
    print(f"level {level}: pruned {n_prune}, remaining {mask_count}/{total} "
          f"(density {mask_count / total:.4f}, after remove {remaining}), pruned flags {pruned_flags}, "
          f"loss A {loss_a:.4f} B {loss_b:.4f}, acc A {acc_a:.4f} B {acc_b:.4f}, route diff {route_diff:.2e}")
    sparsity_exact &= mask_count == expected_remaining == remaining
    trained = pruned.model
    sparse_acc = acc_a

# a random re-initialisation of the final ticket (the paper's control)
control = MLP()
control_pruned = PrunedModel(control, mask)
train(control_pruned, 3, after_step=control_pruned._apply_mask)
control_acc = evaluate(control_pruned)
init_distance = sum((init_state[k] - rewind_state[k]).norm().item() for k in init_state)
print(f"random-reinit control acc {control_acc:.4f}; init -> rewind point distance {init_distance:.4f}")

density = expected_remaining / total
checks_ok = float(sparsity_exact and thresholds_agree and max_route_diff < 1e-5
                  and abs(sparse_acc - dense_acc) < 0.05)
print(f"FINAL dense_acc={dense_acc:.4f} sparse_acc={sparse_acc:.4f} control_acc={control_acc:.4f} "
      f"density={density:.4f} route_diff={max_route_diff:.2e} checks_ok={checks_ok:.0f}")
