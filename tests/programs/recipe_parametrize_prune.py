"""The pytorch.org tutorials "Parametrizations" (Mario Lezcano) and "Pruning" (Michela Paganini),
in the tutorials' order and with the checks they print: ``symmetric(X)`` by ``triu``, ``Symmetric``
and ``Skew`` registered by ``parametrize.register_parametrization`` on ``nn.Linear``/``nn.Conv2d``,
the parametrized module's repr, ``layer.parametrizations.weight.original``, a printing
parametrization recomputed on every access and once inside ``parametrize.cached()``, chained
``Skew`` + ``CayleyMap`` (``torch.linalg.solve``) and ``Skew``/``Symmetric`` + ``MatrixExponential``
(``torch.matrix_exp``, ``torch.linalg.eigvalsh``), ``right_inverse`` used by ``layer.weight = X``,
a shape-changing parametrization refused without ``unsafe=True``,
``remove_parametrizations(leave_parametrized=True/False)``; ``torch.nn.utils.parametrizations``
``orthogonal``, ``spectral_norm`` and ``weight_norm`` on Linear layers (``original0``/``original1``),
a small orthogonal-RNN-style model trained through its parametrizations; then the pruning
tutorial's LeNet: ``prune.random_unstructured``, ``named_parameters``/``named_buffers``
(``weight_orig``, ``weight_mask``), ``_forward_pre_hooks``, ``l1_unstructured(amount=3)`` on the
bias, iterative ``ln_structured(n=2, dim=0)``, ``prune.remove``, pruning many parameters in a loop,
``global_unstructured`` with ``prune.L1Unstructured`` and the printed per-layer sparsity, and a
custom ``BasePruningMethod`` with ``PRUNING_TYPE`` and ``compute_mask``. The tutorials' printouts of
random tensors are drawn with a fixed seed (so every seed prints the same layout); the trained part
uses the program's seed.
"""
# ruff: noqa: B007, UP032  (the pruning tutorial's own `for name, module in ...named_modules()` and `"...".format`)

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from torch.nn.utils import prune
from torch.nn.utils.parametrizations import orthogonal, spectral_norm, weight_norm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(0)  # the tutorials' printouts


def symmetric(X):
    return X.triu() + X.triu(1).transpose(-1, -2)


X = torch.rand(3, 3)
A = symmetric(X)
assert torch.allclose(A, A.T)  # A is symmetric
print(A)


class LinearSymmetric(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(n_features, n_features))

    def forward(self, x):
        A = symmetric(self.weight)
        return x @ A


layer = LinearSymmetric(3)
out = layer(torch.rand(8, 3))
print(out.shape)


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


layer = nn.Linear(3, 3)
parametrize.register_parametrization(layer, "weight", Symmetric())
A = layer.weight
assert torch.allclose(A, A.T)  # A is symmetric
print(A)  # Quick visual check


class Skew(nn.Module):
    def forward(self, X):
        A = X.triu(1)
        return A - A.transpose(-1, -2)


cnn = nn.Conv2d(in_channels=5, out_channels=8, kernel_size=3)
parametrize.register_parametrization(cnn, "weight", Skew())
# Print a few kernels
print(cnn.weight[0, 1])
print(cnn.weight[2, 2])

layer = nn.Linear(3, 3)
print(f"Unparametrized:\n{layer}")
parametrize.register_parametrization(layer, "weight", Symmetric())
print(f"\nParametrized:\n{layer}")
print(layer.parametrizations)
print(layer.parametrizations.weight)
print(layer.parametrizations.weight[0])
print(sorted(dict(layer.named_parameters())))
print(layer.parametrizations.weight.original)
symmetric = Symmetric()
weight_orig = layer.parametrizations.weight.original
print(torch.dist(layer.weight, symmetric(weight_orig)))
print(type(layer).__name__, type(layer).__bases__[0].__name__, parametrize.is_parametrized(layer),
      parametrize.is_parametrized(layer, "bias"))


class NoisyParametrization(nn.Module):
    def forward(self, X):
        print("Computing the Parametrization")
        return X


layer = nn.Linear(4, 4)
parametrize.register_parametrization(layer, "weight", NoisyParametrization())
print("Here, layer.weight is recomputed every time we call it")
foo = layer.weight + layer.weight.T
bar = layer.weight.sum()
with parametrize.cached():
    print("Here, it is computed just the first time layer.weight is called")
    foo = layer.weight + layer.weight.T
    bar = layer.weight.sum()


class CayleyMap(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.register_buffer("Id", torch.eye(n))

    def forward(self, X):
        # (I + X)(I - X)^{-1}
        return torch.linalg.solve(self.Id - X, self.Id + X)


layer = nn.Linear(3, 3)
parametrize.register_parametrization(layer, "weight", Skew())
parametrize.register_parametrization(layer, "weight", CayleyMap(3))
X = layer.weight
cayley_err = torch.dist(X.T @ X, torch.eye(3))
print(f"Cayley: |X^T X - I| < 1e-5: {bool(cayley_err < 1e-5)}")  # X is orthogonal


class MatrixExponential(nn.Module):
    def forward(self, X):
        return torch.matrix_exp(X)


layer_orthogonal = nn.Linear(3, 3)
parametrize.register_parametrization(layer_orthogonal, "weight", Skew())
parametrize.register_parametrization(layer_orthogonal, "weight", MatrixExponential())
X = layer_orthogonal.weight
print(f"matrix_exp of skew: |X^T X - I| < 1e-5: {bool(torch.dist(X.T @ X, torch.eye(3)) < 1e-5)}")

layer_spd = nn.Linear(3, 3)
parametrize.register_parametrization(layer_spd, "weight", Symmetric())
parametrize.register_parametrization(layer_spd, "weight", MatrixExponential())
X = layer_spd.weight
print(torch.dist(X, X.T))  # X is symmetric
print((torch.linalg.eigvalsh(X) > 0.0).all())  # X is positive definite
print(layer_spd.parametrizations.weight)


class Symmetric(nn.Module):  # noqa: F811  (the tutorial redefines it with a right_inverse)
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu()


layer = nn.Linear(3, 3)
parametrize.register_parametrization(layer, "weight", Symmetric())
X = torch.rand(3, 3)
X = X + X.T  # X is now symmetric
layer.weight = X  # Initialize layer.weight to be X
print(torch.dist(layer.weight, X))  # layer.weight == X


class Skew(nn.Module):  # noqa: F811
    def forward(self, X):
        A = X.triu(1)
        return A - A.transpose(-1, -2)

    def right_inverse(self, A):
        # We assume that A is skew-symmetric
        # We take the upper-triangular elements, as these are those used in the forward
        return A.triu(1)


layer = nn.Linear(3, 3)
parametrize.register_parametrization(layer, "weight", Skew())
X = torch.rand(3, 3)
X = X - X.T  # X is now skew-symmetric
layer.weight = X  # Initialize layer.weight to be X
print(torch.dist(layer.weight, X))  # layer.weight == X


# a parametrization that changes the shape must say unsafe=True
class RowsOf(nn.Module):
    def forward(self, X):
        return X.reshape(2, -1)


holder = nn.Module()
holder.weight = nn.Parameter(torch.arange(6.0))
try:
    parametrize.register_parametrization(holder, "weight", RowsOf())
except ValueError as e:
    print("without unsafe:", type(e).__name__, "shape" in str(e))
parametrize.register_parametrization(holder, "weight", RowsOf(), unsafe=True)
print("unsafe:", holder.weight.shape, holder.parametrizations.weight.original.shape)
print(holder.weight)

layer = nn.Linear(3, 3)
print("Before:")
print(layer)
print(layer.weight)
parametrize.register_parametrization(layer, "weight", Skew())
print("\nParametrized:")
print(layer)
print(layer.weight)
parametrize.remove_parametrizations(layer, "weight")
print("\nAfter. Weight has skew-symmetric values but it is unconstrained:")
print(layer)
print(layer.weight)

layer = nn.Linear(3, 3)
print("Before:")
print(layer)
print(layer.weight)
parametrize.register_parametrization(layer, "weight", Skew())
print("\nParametrized:")
print(layer)
print(layer.weight)
parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
print("\nAfter. Same as Before:")
print(layer)
print(layer.weight)

# torch.nn.utils.parametrizations
orth_linear = orthogonal(nn.Linear(20, 40))
print(orth_linear)
Q = orth_linear.weight
orth_err = torch.dist(Q.T @ Q, torch.eye(20)).item()
print(f"orthogonal: |Q^T Q - I| < 1e-4: {orth_err < 1e-4}")
snm = spectral_norm(nn.Linear(20, 40))
print(snm)
print(snm.parametrizations.weight.original.shape, sorted(n for n, _ in snm.parametrizations.weight[0].named_buffers()))
for _ in range(15):
    snm(torch.randn(2, 20))
sigma = torch.linalg.matrix_norm(snm.weight, 2).item()
print(f"spectral_norm: sigma {sigma:.3f}")
wn = weight_norm(nn.Linear(20, 40))
print(wn)
print(wn.parametrizations.weight.original0.size(), wn.parametrizations.weight.original1.size())
wn_err = torch.dist(wn.weight, wn.parametrizations.weight.original1).item()
print(f"weight_norm keeps the weight: {wn_err < 1e-5}")

# training through parametrizations: an orthogonal map recovered from rotated data
torch.manual_seed(seed)
n = 8
target = torch.linalg.qr(torch.randn(n, n))[0]
x = torch.randn(256, n)
y = x @ target.T
model = nn.Sequential(orthogonal(nn.Linear(n, n, bias=False)), spectral_norm(nn.Linear(n, n)))
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for step in range(151):
    loss = F.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 50 == 0:
        print(f"step {step} loss {loss.item():.4f}")
W = model[0].weight
train_orth_err = torch.dist(W.T @ W, torch.eye(n)).item()
print(f"still orthogonal after training: {train_orth_err < 1e-4}")
fit_loss = loss.item()

# -- the pruning tutorial
torch.manual_seed(seed)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        # 1 input image channel, 6 output channels, 3x3 square conv kernel
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5x5 image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, int(x.nelement() / x.shape[0]))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = LeNet().to(device=device)
module = model.conv1
print([name for name, _ in module.named_parameters()], list(module.named_buffers()))
prune.random_unstructured(module, name="weight", amount=0.3)
print([name for name, _ in module.named_parameters()], [name for name, _ in module.named_buffers()])
print("zeros in conv1.weight", int((module.weight == 0).sum()), "of", module.weight.nelement())
print("weight is a plain attribute now:", type(module.weight).__name__, "weight" in dict(module.named_parameters()))
print(len(module._forward_pre_hooks), "forward pre-hook")
prune.l1_unstructured(module, name="bias", amount=3)
print([name for name, _ in module.named_parameters()], [name for name, _ in module.named_buffers()])
print("bias mask", module.bias_mask, "zeros", int((module.bias == 0).sum()))
print(len(module._forward_pre_hooks), "forward pre-hooks")
prune.ln_structured(module, name="weight", amount=0.5, n=2, dim=0)
print("channels left", int((module.weight.abs().sum(dim=(1, 2, 3)) != 0).sum()), "of 6")
for hook in module._forward_pre_hooks.values():
    if hook._tensor_name == "weight":
        break
print(type(hook).__name__, [type(h).__name__ for h in hook])
print(sorted(model.state_dict().keys()))
prune.remove(module, "weight")
print([name for name, _ in module.named_parameters()], [name for name, _ in module.named_buffers()])

new_model = LeNet()
for name, module in new_model.named_modules():
    # prune 20% of connections in all 2D-conv layers
    if isinstance(module, torch.nn.Conv2d):
        prune.l1_unstructured(module, name="weight", amount=0.2)
    # prune 40% of connections in all linear layers
    elif isinstance(module, torch.nn.Linear):
        prune.l1_unstructured(module, name="weight", amount=0.4)
print(sorted(dict(new_model.named_buffers()).keys()))  # to verify that all masks exist

model = LeNet()
parameters_to_prune = (
    (model.conv1, "weight"),
    (model.conv2, "weight"),
    (model.fc1, "weight"),
    (model.fc2, "weight"),
    (model.fc3, "weight"),
)
prune.global_unstructured(parameters_to_prune, pruning_method=prune.L1Unstructured, amount=0.2)
for name in ("conv1", "conv2", "fc1", "fc2", "fc3"):
    w = getattr(model, name).weight
    print("Sparsity in {}.weight: {:.2f}%".format(name, 100.0 * float(torch.sum(w == 0)) / float(w.nelement())))
total_zero = sum(float(torch.sum(getattr(model, n).weight == 0)) for n in ("conv1", "conv2", "fc1", "fc2", "fc3"))
total = sum(float(getattr(model, n).weight.nelement()) for n in ("conv1", "conv2", "fc1", "fc2", "fc3"))
global_sparsity = 100.0 * total_zero / total
print(f"Global sparsity: {global_sparsity:.2f}%")
logits = model(torch.randn(4, 1, 26, 26))
print("pruned LeNet output", logits.shape)


class FooBarPruningMethod(prune.BasePruningMethod):
    """Prune every other entry in a tensor"""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        mask = default_mask.clone()
        mask.view(-1)[::2] = 0
        return mask


def foobar_unstructured(module, name):
    FooBarPruningMethod.apply(module, name)
    return module


model = LeNet()
foobar_unstructured(model.fc3, name="bias")
print(model.fc3.bias_mask)
foobar_zero = int((model.fc3.bias == 0).sum())

print(f"FINAL fit_loss={fit_loss:.4f} sigma={sigma:.4f} orth_err={train_orth_err:.6f} "
      f"global_sparsity={global_sparsity:.2f} foobar_zero={foobar_zero}")
