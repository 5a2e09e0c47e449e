"""The torch.func tutorials "Model ensembling" and "Neural Tangent Kernels", shrunk.

Ensembling: ``stack_module_state(models)``, a stateless ``copy.deepcopy(models[0]).to('meta')``
base for ``functional_call``, ``vmap(fmodel)`` over a minibatch per model and
``vmap(fmodel, in_dims=(0, 0, None))`` over one shared minibatch, each checked with
``torch.allclose`` against the Python loop; then the stacked ensemble trained by
``vmap(grad(...))``. NTK: ``vmap(jacrev(fnet_single), (None, 0))`` Jacobians with
``j.flatten(2)`` contracted by ``einsum('Naf,Mbf->NMab')`` (and the 'trace' / 'diagonal'
expressions), against the NTK-vector-product variant built from ``vjp`` and ``jvp`` under
nested ``vmap``s; all must agree.
"""

import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, jacrev, jvp, stack_module_state, vjp, vmap

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
device = 'cpu'


# ---- Model ensembling ----
class SimpleMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = x.flatten(1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        x = F.relu(x)
        x = self.fc3(x)
        return x


num_models = 5
data = torch.randn(20, 16, 1, 8, 8, device=device)
targets = torch.randint(10, (320,), device=device)
models = [SimpleMLP().to(device) for _ in range(num_models)]

minibatches = data[:num_models]
predictions_diff_minibatch_loop = [model(minibatch) for model, minibatch in zip(models, minibatches)]

minibatch = data[0]
predictions2 = [model(minibatch) for model in models]

params, buffers = stack_module_state(models)

base_model = copy.deepcopy(models[0])
base_model = base_model.to('meta')


def fmodel(params, buffers, x):
    return functional_call(base_model, (params, buffers), (x,))


print([p.size(0) for p in params.values()])  # show the leading 'num_models' dimension
assert minibatches.shape == (num_models, 16, 1, 8, 8)  # verify minibatch has leading dimension of size 'num_models'
print(base_model.fc1.weight.device, base_model.fc1.weight.is_meta, params['fc1.weight'].requires_grad)

predictions1_vmap = vmap(fmodel)(params, buffers, minibatches)

# verify the ``vmap`` predictions match the
assert torch.allclose(predictions1_vmap, torch.stack(predictions_diff_minibatch_loop), atol=1e-3, rtol=1e-5)

predictions2_vmap = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, minibatch)

assert torch.allclose(predictions2_vmap, torch.stack(predictions2), atol=1e-3, rtol=1e-5)
print('ensemble predictions', tuple(predictions1_vmap.shape), tuple(predictions2_vmap.shape))
ensemble_gap = (predictions1_vmap - torch.stack(predictions_diff_minibatch_loop)).abs().max().item()

# train the stacked ensemble: every model on its own minibatches, one vmap per step
params = {k: v.detach() for k, v in params.items()}


def loss_fn(params, buffers, x, y):
    return F.cross_entropy(fmodel(params, buffers, x), y)


ensemble_grad = vmap(grad(loss_fn), in_dims=(0, 0, 0, 0))
rule = torch.randn(64, 10)
labels = (data.flatten(2) @ rule).argmax(-1)
for step in range(60):
    which = torch.arange(num_models) + (step % 3) * num_models
    grads = ensemble_grad(params, buffers, data[which], labels[which])
    params = {k: params[k] - 0.2 * grads[k] for k in params}
    if step % 20 == 0:
        losses = vmap(loss_fn)(params, buffers, data[which], labels[which])
        print(f"step {step} losses {[round(v, 3) for v in losses.tolist()]}")

held_out = data[15:].flatten(0, 1)
logits = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, held_out)
ensemble_acc = (logits.mean(0).argmax(-1) == labels[15:].flatten()).float().mean().item()
single_acc = (logits.argmax(-1) == labels[15:].flatten()).float().mean().item()
print(f"ensemble acc {ensemble_acc:.3f} mean single acc {single_acc:.3f}")


# ---- Neural Tangent Kernels ----
class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, (3, 3))
        self.conv2 = nn.Conv2d(4, 4, (3, 3))
        self.conv3 = nn.Conv2d(4, 4, (3, 3))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = x.relu()
        x = self.conv2(x)
        x = x.relu()
        x = self.conv3(x)
        x = x.flatten(1)
        x = self.fc(x)
        return x


x_train = torch.randn(6, 3, 8, 8, device=device)
x_test = torch.randn(3, 3, 8, 8, device=device)
net = CNN().to(device)

# Detaching the parameters because we won't be calling Tensor.backward().
params = {k: v.detach() for k, v in net.named_parameters()}


def fnet_single(params, x):
    return functional_call(net, params, (x.unsqueeze(0),)).squeeze(0)


def empirical_ntk_jacobian_contraction(fnet_single, params, x1, x2, compute='full'):
    # Compute J(x1)
    jac1 = vmap(jacrev(fnet_single), (None, 0))(params, x1)
    jac1 = jac1.values()
    jac1 = [j.flatten(2) for j in jac1]

    # Compute J(x2)
    jac2 = vmap(jacrev(fnet_single), (None, 0))(params, x2)
    jac2 = jac2.values()
    jac2 = [j.flatten(2) for j in jac2]

    # Compute J(x1) @ J(x2).T
    einsum_expr = None
    if compute == 'full':
        einsum_expr = 'Naf,Mbf->NMab'
    elif compute == 'trace':
        einsum_expr = 'Naf,Maf->NM'
    elif compute == 'diagonal':
        einsum_expr = 'Naf,Maf->NMa'
    else:
        assert False  # noqa: B011  (the tutorial's own line)

    result = torch.stack([torch.einsum(einsum_expr, j1, j2) for j1, j2 in zip(jac1, jac2)])
    result = result.sum(0)
    return result


def empirical_ntk_ntk_vps(func, params, x1, x2, compute='full'):
    def get_ntk(x1, x2):
        def func_x1(params):
            return func(params, x1)

        def func_x2(params):
            return func(params, x2)

        output, vjp_fn = vjp(func_x1, params)

        def get_ntk_slice(vec):
            # This computes ``vec @ J(x2).T``
            # `vec` is some unit vector (a single slice of the Identity matrix)
            vjps = vjp_fn(vec)
            # This computes ``J(X1) @ vjps``
            _, jvps = jvp(func_x2, (params,), vjps)
            return jvps

        # Here's our identity matrix
        basis = torch.eye(output.numel(), dtype=output.dtype, device=output.device).view(output.numel(), -1)
        return vmap(get_ntk_slice)(basis)

    # ``get_ntk(x1, x2)`` computes the NTK for a single data point x1, x2
    # Since the x1, x2 inputs to ``empirical_ntk_ntk_vps`` are batched,
    # we actually wish to compute the NTK between every pair of data points
    # between {x1} and {x2}. That's what the ``vmaps`` here do.
    result = vmap(vmap(get_ntk, (None, 0)), (0, None))(x1, x2)

    if compute == 'full':
        return result
    if compute == 'trace':
        return torch.einsum('NMKK->NM', result)
    if compute == 'diagonal':
        return torch.einsum('NMKK->NMK', result)


result = empirical_ntk_jacobian_contraction(fnet_single, params, x_train, x_test)
print(result.shape)
result = empirical_ntk_jacobian_contraction(fnet_single, params, x_train, x_test, 'trace')
print(result.shape)

result_from_jacobian_contraction = empirical_ntk_jacobian_contraction(fnet_single, params, x_test, x_train)
result_from_ntk_vps = empirical_ntk_ntk_vps(fnet_single, params, x_test, x_train)
assert torch.allclose(result_from_jacobian_contraction, result_from_ntk_vps, atol=1e-5)

trace_from_jacobian = empirical_ntk_jacobian_contraction(fnet_single, params, x_test, x_train, 'trace')
trace_from_vps = empirical_ntk_ntk_vps(fnet_single, params, x_test, x_train, 'trace')
diagonal_from_jacobian = empirical_ntk_jacobian_contraction(fnet_single, params, x_test, x_train, 'diagonal')
diagonal_from_vps = empirical_ntk_ntk_vps(fnet_single, params, x_test, x_train, 'diagonal')
assert torch.allclose(trace_from_jacobian, trace_from_vps, atol=1e-5)
assert torch.allclose(diagonal_from_jacobian, diagonal_from_vps, atol=1e-5)
assert torch.allclose(diagonal_from_jacobian.sum(-1), trace_from_jacobian, rtol=1e-4, atol=1e-5)
print(result_from_ntk_vps.shape, trace_from_vps.shape, diagonal_from_vps.shape)

# the NTK of a point with itself is a Gram matrix: symmetric positive semi-definite
self_ntk = empirical_ntk_jacobian_contraction(fnet_single, params, x_test, x_test)[0, 0]
eigenvalues = torch.linalg.eigvalsh(self_ntk)
ntk_gap = (result_from_jacobian_contraction - result_from_ntk_vps).abs().max().item()
relative_trace = (trace_from_jacobian / trace_from_jacobian.abs().mean()).std().item()
print(f"FINAL ensemble_acc={ensemble_acc:.4f} single_acc={single_acc:.4f} "
      f"ensemble_gap={ensemble_gap:.6f} ntk_gap={ntk_gap:.6f} "
      f"min_eig_sign={float(eigenvalues.min() > -1e-4):.1f} trace_spread={relative_trace:.4f}")
