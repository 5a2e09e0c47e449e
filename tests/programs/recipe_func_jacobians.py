"""The torch.func tutorials "Jacobians, Hessians, hvp, vhp, and more: composing function transforms"
and "Per-sample-gradients", in the tutorials' order (their timing cells left out): the Jacobian
of ``predict(weight, bias, x) = F.linear(x, weight, bias).tanh()`` row by row with
``torch.autograd.grad`` over unit vectors, then by ``vmap(vjp_fn)(unit_vectors)``, by
``jacrev(predict, argnums=2)``, per ``argnums=(0, 1)``, by ``jacfwd`` on a tall and a wide problem;
Hessians by ``hessian``, ``jacfwd(jacfwd(...))``, ``jacrev(jacrev(...))`` and
``jacfwd(jacrev(...))``; batched Jacobians by ``vmap(jacrev(predict, argnums=2), in_dims=(None,
None, 0))`` against ``jacrev`` of the output summed over the batch + ``movedim(1, 0)``, batched
Hessians by ``vmap(hessian(...))``; ``hvp`` by ``jvp(grad(f), primals, tangents)`` against
``vjp(grad(f), ...)``; each compared by ``torch.allclose`` with ``torch.autograd.functional``'s
``jacobian``/``hessian``/``hvp``/``vhp``. Then per-sample gradients of the tutorial's
``SimpleCNN`` (shrunk to 12x12 inputs) by a loop of per-sample ``torch.autograd.grad`` against
``vmap(grad(compute_loss), in_dims=(None, None, 0, 0))`` over ``functional_call(model, (params,
buffers), (batch,))``, used to take a few clipped-mean SGD steps. The tutorials seed 0 for their
printouts; the later parts use the program's seed.
"""

import os
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

seed = int(os.environ.get("PROGRAM_SEED", "0"))
_ = torch.manual_seed(0)


def predict(weight, bias, x):
    return F.linear(x, weight, bias).tanh()


D = 16
weight = torch.randn(D, D)
bias = torch.randn(D)
x = torch.randn(D)  # feature vector


def compute_jac(xp):
    jacobian_rows = [torch.autograd.grad(predict(weight, bias, xp), xp, vec)[0] for vec in unit_vectors]
    return torch.stack(jacobian_rows)


xp = x.clone().requires_grad_()
unit_vectors = torch.eye(D)
jacobian = compute_jac(xp)
print(jacobian.shape)
print(jacobian[0])  # show first row

_, vjp_fn = vjp(partial(predict, weight, bias), x)
(ft_jacobian,) = vmap(vjp_fn)(unit_vectors)
# let's confirm both methods compute the same result
assert torch.allclose(ft_jacobian, jacobian)
ft_jacobian = jacrev(predict, argnums=2)(weight, bias, x)
# Confirm by running the following:
assert torch.allclose(ft_jacobian, jacobian)
print("vmap(vjp) and jacrev agree with the loop:", torch.allclose(ft_jacobian, jacobian))

# jacobians with respect to several arguments
ft_jac_weight, ft_jac_bias = jacrev(predict, argnums=(0, 1))(weight, bias, x)
print(ft_jac_weight.shape, ft_jac_bias.shape)
af_jac = torch.autograd.functional.jacobian(predict, (weight, bias, x))
print(len(af_jac), [tuple(j.shape) for j in af_jac])
assert torch.allclose(af_jac[0], ft_jac_weight)
assert torch.allclose(af_jac[1], ft_jac_bias)
assert torch.allclose(af_jac[2], jacobian)

# reverse mode vs forward mode: the same answers on a tall and a wide problem
torch.manual_seed(seed)
for Din, Dout in ((32, 256), (256, 32)):
    weight = torch.randn(Dout, Din)
    bias = torch.randn(Dout)
    x = torch.randn(Din)
    print(weight.shape)
    jf = jacfwd(predict, argnums=2)(weight, bias, x)
    jr = jacrev(predict, argnums=2)(weight, bias, x)
    print(f"Dout {Dout}, Din {Din}: jacfwd {tuple(jf.shape)} equals jacrev: {torch.allclose(jf, jr, atol=1e-6)}")
jac_norm = jr.norm().item()

# Hessians
Din = 64
Dout = 8
weight = torch.randn(Dout, Din)
bias = torch.randn(Dout)
x = torch.randn(Din)
hess_api = hessian(predict, argnums=2)(weight, bias, x)
hess_fwdfwd = jacfwd(jacfwd(predict, argnums=2), argnums=2)(weight, bias, x)
hess_revrev = jacrev(jacrev(predict, argnums=2), argnums=2)(weight, bias, x)
hess_fwdrev = jacfwd(jacrev(predict, argnums=2), argnums=2)(weight, bias, x)
print(hess_api.shape)
print("hessian == jacfwd(jacfwd) == jacrev(jacrev) == jacfwd(jacrev):",
      torch.allclose(hess_api, hess_fwdfwd, atol=1e-6), torch.allclose(hess_api, hess_revrev, atol=1e-6),
      torch.allclose(hess_api, hess_fwdrev, atol=1e-6))


def predict_first_output(x):
    return predict(weight, bias, x)[0]


af_hess = torch.autograd.functional.hessian(predict_first_output, x)
hess_diff = (af_hess - hess_api[0]).abs().max().item()
print("autograd.functional.hessian agrees:", torch.allclose(af_hess, hess_api[0], atol=1e-6), tuple(af_hess.shape))

# batch Jacobian and batch Hessian
batch_size = 16
Din = 31
Dout = 33
weight = torch.randn(Dout, Din)
print(f"weight shape = {weight.shape}")
bias = torch.randn(Dout)
x = torch.randn(batch_size, Din)
compute_batch_jacobian = vmap(jacrev(predict, argnums=2), in_dims=(None, None, 0))
batch_jacobian0 = compute_batch_jacobian(weight, bias, x)


def predict_with_output_summed(weight, bias, x):
    return predict(weight, bias, x).sum(0)


batch_jacobian1 = jacrev(predict_with_output_summed, argnums=2)(weight, bias, x).movedim(1, 0)
assert torch.allclose(batch_jacobian0, batch_jacobian1)
print(batch_jacobian0.shape, "batched jacobians agree:", torch.allclose(batch_jacobian0, batch_jacobian1))
compute_batch_hessian = vmap(hessian(predict, argnums=2), in_dims=(None, None, 0))
batch_hess = compute_batch_hessian(weight, bias, x)
print(batch_hess.shape)
loop_hess = torch.stack([hessian(predict, argnums=2)(weight, bias, xi) for xi in x])
print("vmap(hessian) equals the loop:", torch.allclose(batch_hess, loop_hess, atol=1e-4))


# Hessian-vector products
def hvp(f, primals, tangents):
    return jvp(grad(f), primals, tangents)[1]


def f(x):
    return x.sin().sum()


x = torch.randn(2048)
tangent = torch.randn(2048)
result = hvp(f, (x,), (tangent,))


def hvp_revrev(f, primals, tangents):
    _, vjp_fn = vjp(grad(f), *primals)
    return vjp_fn(*tangents)


result_hvp_revrev = hvp_revrev(f, (x,), (tangent,))
assert torch.allclose(result, result_hvp_revrev[0])
_, af_hvp = torch.autograd.functional.hvp(f, x, tangent)
_, af_vhp = torch.autograd.functional.vhp(f, x, tangent)
exact = -x.sin() * tangent
hvp_diff = max((result - exact).abs().max().item(), (af_hvp - exact).abs().max().item(),
               (af_vhp - exact).abs().max().item())
print("hvp: jvp(grad) == vjp(grad) == autograd.functional.hvp == vhp == -sin(x) * v:",
      torch.allclose(result, af_hvp), torch.allclose(af_hvp, af_vhp), hvp_diff < 1e-5)


# -- Per-sample gradients
class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()  # noqa: UP008  (the tutorial's spelling)
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.fc1 = nn.Linear(256, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def loss_fn(predictions, targets):
    return F.nll_loss(predictions, targets)


device = "cuda" if torch.cuda.is_available() else "cpu"
batch_size = 32
data = torch.randn(batch_size, 1, 12, 12, device=device)
targets = torch.randint(10, (batch_size,), device=device)
data += targets.float().view(-1, 1, 1, 1) / 5 * torch.linspace(-1, 1, 12)  # learnable: the class is a ramp
model = SimpleCNN().to(device=device)
predictions = model(data)  # move the entire mini-batch through the model
loss = loss_fn(predictions, targets)
loss.backward()  # back propagate the 'average' gradient of this mini-batch


def compute_grad(sample, target):
    sample = sample.unsqueeze(0)  # prepend batch dimension for processing
    target = target.unsqueeze(0)
    prediction = model(sample)
    loss = loss_fn(prediction, target)
    return torch.autograd.grad(loss, list(model.parameters()))


def compute_sample_grads(data, targets):
    """manually process each sample with per sample gradient"""
    sample_grads = [compute_grad(data[i], targets[i]) for i in range(batch_size)]
    sample_grads = zip(*sample_grads)
    sample_grads = [torch.stack(shards) for shards in sample_grads]
    return sample_grads


per_sample_grads = compute_sample_grads(data, targets)
print(per_sample_grads[1].shape)

params = {k: v.detach() for k, v in model.named_parameters()}
buffers = {k: v.detach() for k, v in model.named_buffers()}


def compute_loss(params, buffers, sample, target):
    batch = sample.unsqueeze(0)
    targets = target.unsqueeze(0)
    predictions = functional_call(model, (params, buffers), (batch,))
    loss = loss_fn(predictions, targets)
    return loss


ft_compute_grad = grad(compute_loss)
ft_compute_sample_grad = vmap(ft_compute_grad, in_dims=(None, None, 0, 0))
ft_per_sample_grads = ft_compute_sample_grad(params, buffers, data, targets)
print(list(ft_per_sample_grads), [tuple(g.shape) for g in ft_per_sample_grads.values()])
for per_sample_grad, ft_per_sample_grad in zip(per_sample_grads, ft_per_sample_grads.values()):
    assert torch.allclose(per_sample_grad, ft_per_sample_grad, atol=3e-3, rtol=1e-5)
psg_diff = max((a - b).abs().max().item() for a, b in zip(per_sample_grads, ft_per_sample_grads.values()))
mean_diff = max((g.mean(0) - p.grad).abs().max().item()
                for g, p in zip(ft_per_sample_grads.values(), model.parameters()))
print("vmap(grad) equals the loop:", psg_diff < 1e-5, "and its mean is the batch gradient:", mean_diff < 1e-5)

# a few steps with per-sample clipping (each sample's gradient scaled to norm <= 1), on the dict
for step in range(30):
    g = ft_compute_sample_grad(params, buffers, data, targets)
    norms = torch.stack([v.flatten(1).norm(dim=1) for v in g.values()]).norm(dim=0)
    scale = (1.0 / (norms + 1e-6)).clamp(max=1.0)
    params = {k: v - 0.2 * (g[k] * scale.view(-1, *[1] * (g[k].dim() - 1))).mean(0) for k, v in params.items()}
    if step % 10 == 0:
        with torch.no_grad():
            print(f"step {step} loss {loss_fn(functional_call(model, (params, buffers), (data,)), targets).item():.4f}")
with torch.no_grad():
    final_loss = loss_fn(functional_call(model, (params, buffers), (data,)), targets).item()

print(f"FINAL jac_norm={jac_norm:.4f} hess_diff={hess_diff:.6f} hvp_diff={hvp_diff:.6f} "
      f"psg_diff={psg_diff:.6f} clipped_loss={final_loss:.4f}")
