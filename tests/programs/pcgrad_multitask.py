"""PCGrad ("Gradient Surgery for Multi-Task Learning", Yu et al. 2020) as WeiCheng Tseng's
Pytorch-PCGrad (pcgrad.py) writes it, on a two-task regression with a shared trunk and two heads.

The wrapper as the repo writes it: ``PCGrad(optimizer, reduction='mean')`` with ``zero_grad`` as
``self._optim.zero_grad(set_to_none=True)``; ``_pack_grad`` running ``obj.backward(retain_graph=True)``
per objective on one graph; ``_retrieve_grad`` cloning ``p.grad`` and, for a parameter a task never
reaches (the other task's head: ``p.grad is None``), ``torch.zeros_like(p).to(p.device)`` with a
zero ``has_grad`` mask; ``_flatten_grad`` by ``torch.cat([g.flatten() for g in grads])``;
``_project_conflicting`` with ``torch.stack(has_grads).prod(0).bool()`` as the shared mask,
``copy.deepcopy(grads)``, ``random.shuffle(grads)`` (seeded), ``torch.dot(g_i, g_j)`` compared with 0
and ``g_i -= (g_i_g_j) * g_j / (g_j.norm()**2)`` in place, ``merged_grad[shared] = torch.stack([g[shared]
for g in pc_grad]).mean(dim=0)`` and ``merged_grad[~shared] = ... .sum(dim=0)``; ``_unflatten_grad``
by ``np.prod(shape)`` lengths (NumPy integers as slice bounds) and ``.view(shape).clone()``;
``_set_grad`` writing ``p.grad``. The repo's own ``MultiHeadTestNet`` check, then training against
summed losses from the same start, with the projection checked to leave conflicting gradients
orthogonal.

The data: inputs and two targets that pull a narrow shared feature different ways, made with NumPy.
"""
# ruff: noqa: E701, UP039, F841  (the repo's one-line else, class PCGrad(), unused num_task)

import copy
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)


# --- pcgrad.py ------------------------------------------------------------------------------------------
class PCGrad():
    def __init__(self, optimizer, reduction='mean'):
        self._optim, self._reduction = optimizer, reduction
        return

    @property
    def optimizer(self):
        return self._optim

    def zero_grad(self):
        '''
        clear the gradient of the parameters
        '''

        return self._optim.zero_grad(set_to_none=True)

    def step(self):
        '''
        update the parameters with the gradient
        '''

        return self._optim.step()

    def pc_backward(self, objectives):
        '''
        calculate the gradient of the parameters

        input:
        - objectives: a list of objectives
        '''

        grads, shapes, has_grads = self._pack_grad(objectives)
        pc_grad = self._project_conflicting(grads, has_grads)
        pc_grad = self._unflatten_grad(pc_grad, shapes[0])
        self._set_grad(pc_grad)
        return

    def _project_conflicting(self, grads, has_grads, shapes=None):
        shared = torch.stack(has_grads).prod(0).bool()
        pc_grad, num_task = copy.deepcopy(grads), len(grads)
        for g_i in pc_grad:
            random.shuffle(grads)
            for g_j in grads:
                g_i_g_j = torch.dot(g_i, g_j)
                if g_i_g_j < 0:
                    g_i -= (g_i_g_j) * g_j / (g_j.norm()**2)
        merged_grad = torch.zeros_like(grads[0]).to(grads[0].device)
        if self._reduction:
            merged_grad[shared] = torch.stack([g[shared]
                                           for g in pc_grad]).mean(dim=0)
        elif self._reduction == 'sum':
            merged_grad[shared] = torch.stack([g[shared]
                                           for g in pc_grad]).sum(dim=0)
        else: exit('invalid reduction method')

        merged_grad[~shared] = torch.stack([g[~shared]
                                            for g in pc_grad]).sum(dim=0)
        return merged_grad

    def _set_grad(self, grads):
        '''
        set the modified gradients to the network
        '''

        idx = 0
        for group in self._optim.param_groups:
            for p in group['params']:
                # if p.grad is None: continue
                p.grad = grads[idx]
                idx += 1
        return

    def _pack_grad(self, objectives):
        '''
        pack the gradient of the parameters of the network for each objective

        output:
        - grad: a list of the gradient of the parameters
        - shape: a list of the shape of the parameters
        - has_grad: a list of mask represent whether the parameter has gradient
        '''

        grads, shapes, has_grads = [], [], []
        for obj in objectives:
            self._optim.zero_grad(set_to_none=True)
            obj.backward(retain_graph=True)
            grad, shape, has_grad = self._retrieve_grad()
            grads.append(self._flatten_grad(grad, shape))
            has_grads.append(self._flatten_grad(has_grad, shape))
            shapes.append(shape)
        return grads, shapes, has_grads

    def _unflatten_grad(self, grads, shapes):
        unflatten_grad, idx = [], 0
        for shape in shapes:
            length = np.prod(shape)
            unflatten_grad.append(grads[idx:idx + length].view(shape).clone())
            idx += length
        return unflatten_grad

    def _flatten_grad(self, grads, shapes):
        flatten_grad = torch.cat([g.flatten() for g in grads])
        return flatten_grad

    def _retrieve_grad(self):
        '''
        get the gradient of the parameters of the network with specific
        objective

        output:
        - grad: a list of the gradient of the parameters
        - shape: a list of the shape of the parameters
        - has_grad: a list of mask represent whether the parameter has gradient
        '''

        grad, shape, has_grad = [], [], []
        for group in self._optim.param_groups:
            for p in group['params']:
                # if p.grad is None: continue
                # tackle the multi-head scenario
                if p.grad is None:
                    shape.append(p.shape)
                    grad.append(torch.zeros_like(p).to(p.device))
                    has_grad.append(torch.zeros_like(p).to(p.device))
                    continue
                shape.append(p.grad.shape)
                grad.append(p.grad.clone())
                has_grad.append(torch.ones_like(p).to(p.device))
        return grad, shape, has_grad


# --- the repo's __main__ check --------------------------------------------------------------------------
class TestNet(nn.Module):
    def __init__(self):
        super().__init__()
        self._linear = nn.Linear(3, 4)

    def forward(self, x):
        return self._linear(x)


class MultiHeadTestNet(nn.Module):
    def __init__(self):
        super().__init__()
        self._linear = nn.Linear(3, 2)
        self._head1 = nn.Linear(2, 4)
        self._head2 = nn.Linear(2, 4)

    def forward(self, x):
        feat = self._linear(x)
        return self._head1(feat), self._head2(feat)


x, y = torch.randn(2, 3), torch.randn(2, 4)
net = TestNet()
y_pred = net(x)
pc_adam = PCGrad(optim.Adam(net.parameters()))
pc_adam.zero_grad()
loss1_fn, loss2_fn = nn.L1Loss(), nn.MSELoss()
loss1, loss2 = loss1_fn(y_pred, y), loss2_fn(y_pred, y)

pc_adam.pc_backward([loss1, loss2])
for p in net.parameters():
    print("single head grad", tuple(p.grad.shape), p.grad.dtype, p.grad.is_contiguous())

print('-' * 80)
x, y = torch.randn(2, 3), torch.randn(2, 4)
net = MultiHeadTestNet()
y_pred_1, y_pred_2 = net(x)
pc_adam = PCGrad(optim.Adam(net.parameters()))
pc_adam.zero_grad()
loss1_fn, loss2_fn = nn.MSELoss(), nn.MSELoss()
loss1, loss2 = loss1_fn(y_pred_1, y), loss2_fn(y_pred_2, y)

pc_adam.pc_backward([loss1, loss2])
head_grads = []
for p in net.parameters():
    print("multi head grad", tuple(p.grad.shape))
    head_grads.append(p.grad)
# each head is reached by one task only: its merged gradient is that task's own, summed with zeros
loss1.backward(retain_graph=True)
print("head1 gradient kept", torch.allclose(head_grads[2], net._head1.weight.grad),
      "head2 gradient untouched by task 1", torch.count_nonzero(head_grads[4]).item() > 0)

# --- the projection on two conflicting vectors ------------------------------------------------------------
g1, g2 = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([-1.0, 1.0, 0.0])
projected = PCGrad(optim.SGD([nn.Parameter(torch.zeros(3))], lr=0.1))._project_conflicting(
    [g1.clone(), g2.clone()], [torch.ones(3), torch.ones(3)])
print("projected", [round(v, 4) for v in projected.tolist()])

# --- the data: two regression targets sharing a trunk -------------------------------------------------------
rng = np.random.RandomState(0)
inputs_np = rng.randn(384, 8).astype(np.float32)
directions = rng.randn(8, 2).astype(np.float32) / np.sqrt(8)
projections = inputs_np @ directions
target1_np = np.tanh(2 * projections[:, :1]) + 0.05 * rng.randn(384, 1).astype(np.float32)
target2_np = np.tanh(2 * projections[:, 1:]) - np.tanh(2 * projections[:, :1]) + 0.05 * rng.randn(384, 1).astype(np.float32)
inputs = torch.from_numpy(inputs_np)
target1, target2 = torch.from_numpy(target1_np), torch.from_numpy(target2_np.astype(np.float32))
train_x, test_x = inputs[:256], inputs[256:]
train_t1, test_t1, train_t2, test_t2 = target1[:256], target1[256:], target2[:256], target2[256:]


class SharedTrunk(nn.Module):
    """A narrow shared feature (2 units) the two tasks must compete for."""

    def __init__(self, hidden=32, shared=2):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, shared), nn.Tanh())
        self.head1 = nn.Linear(shared, 1)
        self.head2 = nn.Linear(shared, 1)

    def forward(self, x):
        feature = self.trunk(x)
        return self.head1(feature), self.head2(feature)


@torch.no_grad()
def evaluate(model):
    pred1, pred2 = model(test_x)
    return F.mse_loss(pred1, test_t1).item(), F.mse_loss(pred2, test_t2).item()


def conflicts(model, batch):
    """How often the two tasks' gradients on the shared trunk point against each other."""
    pred1, pred2 = model(batch[0])
    loss_1, loss_2 = F.mse_loss(pred1, batch[1]), F.mse_loss(pred2, batch[2])
    trunk = list(model.trunk.parameters())
    grad_1 = torch.cat([g.flatten() for g in torch.autograd.grad(loss_1, trunk, retain_graph=True)])
    grad_2 = torch.cat([g.flatten() for g in torch.autograd.grad(loss_2, trunk)])
    return (torch.dot(grad_1, grad_2) < 0).item()


start = SharedTrunk()
initial_state = copy.deepcopy(start.state_dict())
STEPS, BATCH = 300, 32
order = torch.randint(0, 256, (STEPS, BATCH))

results = {}
for method in ("pcgrad", "sum"):
    model = SharedTrunk()
    model.load_state_dict(initial_state)
    if method == "pcgrad":
        optimizer = PCGrad(optim.Adam(model.parameters(), lr=3e-3))
    else:
        optimizer = optim.Adam(model.parameters(), lr=3e-3)
    conflicting = 0
    for step in range(STEPS):
        index = order[step]
        batch = (train_x[index], train_t1[index], train_t2[index])
        if step % 10 == 0:
            conflicting += conflicts(model, batch)
        pred1, pred2 = model(batch[0])
        losses = [F.mse_loss(pred1, batch[1]), F.mse_loss(pred2, batch[2])]
        optimizer.zero_grad()
        if method == "pcgrad":
            optimizer.pc_backward(losses)
        else:
            sum(losses).backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"{method} step {step} task1 {losses[0].item():.4f} task2 {losses[1].item():.4f}")
    results[method] = evaluate(model)
    print(f"{method} test task1 {results[method][0]:.4f} task2 {results[method][1]:.4f} "
          f"conflicting checks {conflicting}/{STEPS // 10}")
    if method == "pcgrad":
        grads = [p.grad for p in model.parameters()]
        print("pcgrad leaves grads", len(grads), all(g is not None for g in grads), type(optimizer.optimizer).__name__)

print(f"FINAL pcgrad_task1={results['pcgrad'][0]:.4f} pcgrad_task2={results['pcgrad'][1]:.4f} "
      f"sum_task1={results['sum'][0]:.4f} sum_task2={results['sum'][1]:.4f} projected0={projected[0].item():.4f}")
