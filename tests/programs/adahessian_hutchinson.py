"""AdaHessian (Yao et al., AAAI 2021) as amirgholami/adahessian writes it (``optim_adahessian.py``).

Hutchinson's estimate of the Hessian diagonal: ``loss.backward(create_graph=True)``, Rademacher vectors
``v = [2 * torch.randint_like(p, high=2) - 1 for p in params]`` and
``torch.autograd.grad(grads, params, grad_outputs=v, only_inputs=True, retain_graph=True)``, so
``E[v * Hv] = diag(H)``. ``get_trace`` keeps ``hv.abs()`` for 0/1/2-d tensors and spatially averages conv
kernels by ``torch.mean(hv.abs(), dim=[2, 3], keepdim=True)``; the ``Adahessian`` ``Optimizer``
subclass's ``step`` reads those traces: bias-corrected first moment of the gradient and second moment of
the trace (``addcmul_`` broadcasting the conv block), the Hessian power ``k``
(``(exp_hessian_diag_sq.sqrt() ** k) / math.sqrt(bias_correction2) ** k``) and the update by
``p.data = p.data - lr * (exp_avg / bias_correction1 / denom + weight_decay * p.data)``, all under
``@torch.no_grad()``, with the repo's check that every gradient has a ``grad_fn``.

Checked: on a small float64 tanh MLP the Hutchinson estimate (``z * Hz`` averaged over many samples)
converges to the exact Hessian diagonal from ``torch.func.hessian`` of the loss as a function of the flat
parameter vector (``functional_call`` on ``unflatten``-ed views), its error shrinking with the number of
samples; AdaHessian against Adam on an ill-conditioned least-squares problem (feature scales spanning two
decades), both losses reported; and a small CNN trained by AdaHessian with conv-kernel averaging.
"""

# ruff: noqa: UP008, UP032  (the repo's own spelling: super(Class, self), str.format)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, hessian

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


class Adahessian(torch.optim.Optimizer):
    """Implements the AdaHessian algorithm from "ADAHESSIAN: An Adaptive Second Order Optimizer for
    Machine Learning".

    Arguments:
        params (iterable): iterable of parameters to optimize or dicts defining parameter groups
        lr (float, optional): learning rate (default: 0.15)
        betas (Tuple[float, float], optional): coefficients used for computing running averages of
            gradient and the squared hessian trace (default: (0.9, 0.999))
        eps (float, optional): term added to the denominator to improve numerical stability (default: 1e-4)
        weight_decay (float, optional): weight decay (L2 penalty) (default: 0)
        hessian_power (float, optional): Hessian power (default: 1)
    """

    def __init__(self, params, lr=0.15, betas=(0.9, 0.999), eps=1e-4, weight_decay=0, hessian_power=1):
        if not 0.0 <= lr:
            raise ValueError("Invalid learning rate: {}".format(lr))
        if not 0.0 <= eps:
            raise ValueError("Invalid epsilon value: {}".format(eps))
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError("Invalid beta parameter at index 0: {}".format(betas[0]))
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError("Invalid beta parameter at index 1: {}".format(betas[1]))
        if not 0.0 <= hessian_power <= 1.0:
            raise ValueError("Invalid Hessian power value: {}".format(hessian_power))
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, hessian_power=hessian_power)
        super(Adahessian, self).__init__(params, defaults)

    def get_trace(self, params, grads):
        """Compute the Hessian vector product with a random vector v, at the current gradient point,
        i.e., compute the gradient of <gradsH, v>."""
        # Check backward was called with create_graph set to True
        for i, grad in enumerate(grads):
            if grad.grad_fn is None:
                raise RuntimeError("Gradient tensor {:} does not have grad_fn. When calling\n".format(i)
                                   + "\t\t\t  loss.backward(), make sure the option create_graph is\n"
                                   + "\t\t\t  set to True.")

        v = [2 * torch.randint_like(p, high=2) - 1 for p in params]

        hvs = torch.autograd.grad(grads, params, grad_outputs=v, only_inputs=True, retain_graph=True)

        hutchinson_trace = []
        for hv in hvs:
            param_size = hv.size()
            if len(param_size) <= 2:  # for 0/1/2D tensor
                # Hessian diagonal block size is 1 here.
                # We use that torch.abs(hv * vv) = hv.abs()
                tmp_output = hv.abs()
            elif len(param_size) == 4:  # Conv kernel
                # Hessian diagonal block size is 9 here: torch.sum() reduces the dim 2/3.
                # We use that torch.abs(hv * vv) = hv.abs()
                tmp_output = torch.mean(hv.abs(), dim=[2, 3], keepdim=True)
            hutchinson_trace.append(tmp_output)

        return hutchinson_trace

    @torch.no_grad()
    def step(self, gradsH=None, closure=None):
        loss = None
        if closure is not None:
            loss = closure()

        params, groups, grads = [], [], []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    params.append(p)
                    groups.append(group)
                    grads.append(p.grad)

        # get the Hessian diagonal
        hut_traces = self.get_trace(params, grads)

        for (p, group, grad, hut_trace) in zip(params, groups, grads, hut_traces):
            state = self.state[p]

            # State initialization
            if len(state) == 0:
                state["step"] = 0
                # Exponential moving average of gradient values
                state["exp_avg"] = torch.zeros_like(p.data)
                # Exponential moving average of Hessian diagonal square values
                state["exp_hessian_diag_sq"] = torch.zeros_like(p.data)

            exp_avg, exp_hessian_diag_sq = state["exp_avg"], state["exp_hessian_diag_sq"]
            beta1, beta2 = group["betas"]
            state["step"] += 1

            # Decay the first and second moment running average coefficient
            exp_avg.mul_(beta1).add_(grad.detach_(), alpha=1 - beta1)
            exp_hessian_diag_sq.mul_(beta2).addcmul_(hut_trace, hut_trace, value=1 - beta2)

            bias_correction1 = 1 - beta1 ** state["step"]
            bias_correction2 = 1 - beta2 ** state["step"]

            # make the square root, and the Hessian power
            k = group["hessian_power"]
            denom = ((exp_hessian_diag_sq.sqrt() ** k) / math.sqrt(bias_correction2) ** k).add_(group["eps"])

            # make update
            p.data = p.data - group["lr"] * (exp_avg / bias_correction1 / denom + group["weight_decay"] * p.data)

        return loss


# ------------------------------------------------ 1. Hutchinson vs the exact Hessian diagonal (float64)
class SmallMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 5)
        self.fc2 = nn.Linear(5, 1)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


mlp = SmallMLP().double()
X_small = torch.from_numpy(np.random.randn(32, 3))
y_small = torch.sin(X_small.sum(1, keepdim=True))

names = [n for n, _ in mlp.named_parameters()]
shapes = [p.shape for _, p in mlp.named_parameters()]
numels = [p.numel() for _, p in mlp.named_parameters()]
flat = torch.cat([p.detach().reshape(-1) for p in mlp.parameters()])


def loss_of_flat(theta):
    chunks = theta.split(numels)
    params = {n: c.unflatten(0, s) for n, c, s in zip(names, chunks, shapes)}
    return F.mse_loss(functional_call(mlp, params, (X_small,)), y_small)


H = hessian(loss_of_flat)(flat)
exact_diag = H.diagonal()
print(f"exact Hessian {tuple(H.shape)}, symmetric {torch.allclose(H, H.T)}, trace {exact_diag.sum().item():.4f}")

loss = F.mse_loss(mlp(X_small), y_small)
params = list(mlp.parameters())
grads = torch.autograd.grad(loss, params, create_graph=True)
n_samples = 400
estimate = [torch.zeros_like(p) for p in params]
errors = {}
for i in range(n_samples):
    zs = [torch.randint_like(p, high=2) * 2 - 1 for p in params]
    h_zs = torch.autograd.grad(grads, params, grad_outputs=zs, retain_graph=i < n_samples - 1)
    for e, h_z, z in zip(estimate, h_zs, zs):
        e.add_(h_z * z)
    if i + 1 in (10, 400):
        est_flat = torch.cat([e.reshape(-1) for e in estimate]) / (i + 1)
        errors[i + 1] = ((est_flat - exact_diag).norm() / exact_diag.norm()).item()
        print(f"hutchinson samples {i + 1:4d}: relative error {errors[i + 1]:.4f}")
trace_est = est_flat.sum().item()
print(f"trace estimate {trace_est:.4f}")

# ------------------------------------------------ 2. ill-conditioned least squares: AdaHessian vs Adam
n, d = 256, 8
scales = torch.logspace(0, 2, d)
A = torch.from_numpy(np.random.randn(n, d).astype(np.float32)) * scales
w_star = torch.from_numpy(np.random.randn(d, 1).astype(np.float32)) / scales.unsqueeze(1)
b = A @ w_star + 0.01 * torch.randn(n, 1)
print(f"condition number of A^T A {torch.linalg.cond(A.T @ A).item():.3e}")


def train_least_squares(make_optimizer, steps=150, second_order=False):
    torch.manual_seed(seed)
    model = nn.Linear(d, 1)
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(model(A), b)
        loss.backward(create_graph=second_order)
        optimizer.step()
    with torch.no_grad():
        return F.mse_loss(model(A), b).item()


loss_ada = train_least_squares(lambda p: Adahessian(p, lr=0.3), second_order=True)
loss_adam = train_least_squares(lambda p: torch.optim.Adam(p, lr=0.03))
print(f"least squares after 150 steps: adahessian {loss_ada:.3e} adam {loss_adam:.3e}")

try:
    bad = nn.Linear(2, 1)
    opt = Adahessian(bad.parameters())
    F.mse_loss(bad(torch.randn(4, 2)), torch.randn(4, 1)).backward()
    opt.step()
except RuntimeError as err:
    print("without create_graph:", str(err).splitlines()[0])


# ------------------------------------------------ 3. a small CNN with conv-kernel averaging
class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


imgs = torch.from_numpy(np.random.randn(64, 1, 8, 8).astype(np.float32))
labels = (np.random.rand(64) < 0.5).astype(np.int64)
imgs[labels == 1, :, 2:6, 2:6] += 1.5
labels = torch.from_numpy(labels)
cnn = SmallCNN()
optimizer = Adahessian(cnn.parameters(), lr=0.1, hessian_power=0.5, weight_decay=1e-4)
for epoch in range(1, 61):
    optimizer.zero_grad()
    loss = F.cross_entropy(cnn(imgs), labels)
    loss.backward(create_graph=True)
    optimizer.step()
    if epoch % 20 == 0:
        print(f"cnn epoch {epoch}: loss {loss.item():.4f}")
with torch.no_grad():
    cnn_acc = (cnn(imgs).argmax(1) == labels).float().mean().item()
conv_state = optimizer.state[cnn.conv1.weight]["exp_hessian_diag_sq"]
block_constant = torch.allclose(conv_state, conv_state[:, :, :1, :1].expand_as(conv_state))
print(f"cnn accuracy {cnn_acc:.4f}, conv second moment constant over each 3x3 block {block_constant}")

print(f"FINAL hutch_err_10={errors[10]:.4f} hutch_err_400={errors[400]:.4f} "
      f"log_loss_adahessian={math.log10(loss_ada):.4f} log_loss_adam={math.log10(loss_adam):.4f} "
      f"cnn_acc={cnn_acc:.4f} conv_block_constant={float(block_constant):.0f}")
