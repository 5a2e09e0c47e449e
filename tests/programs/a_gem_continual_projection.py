"""Averaged GEM (Chaudhry et al., ICLR 2019) as facebookresearch/agem and the PyTorch GEM code
(facebookresearch/GradientEpisodicMemory ``model/gem.py``, and mammoth's ``agem.py``) write it, against
plain fine-tuning, on a stream of permuted synthetic tasks.

The tasks are "permuted MNIST" at toy size: one NumPy-seeded clustered 5-class problem in 24 dimensions
whose input features are shuffled by a fixed ``torch.randperm`` per task (task 0 unpermuted), seen once
in a single pass of batches of 10 (GEM's protocol). The learner is GEM's ``Net``: an ``MLP`` built from
a list of sizes, ``nn.CrossEntropyLoss``, its own ``optim.SGD(self.parameters(), lr)``, an episodic
memory allocated as ``torch.FloatTensor(n_tasks, n_memories, n_inputs)`` / ``torch.LongTensor(...)``
filled as a ring buffer by ``copy_`` of ``x.data[:effbsz]``, the ``grad_dims`` list of
``param.data.numel()``, and ``store_grad``/``overwrite_grad`` that copy each ``param.grad.data.view(-1)``
into (and back out of) slices ``[beg:en]`` of a flat ``torch.Tensor(sum(grad_dims), n_tasks)`` (mammoth's
``np.sum`` slice ends included). A-GEM's reference gradient is taken on a batch sampled from the
memories of all earlier tasks (``torch.cat`` + ``torch.randperm``); when ``torch.dot(g, g_ref) < 0`` the
gradient is projected, ``g - (g @ g_ref) / (g_ref @ g_ref) * g_ref``, and written back.

Checked: the flat vector written by ``store_grad`` equals ``torch.cat([p.grad.view(-1) ...])``; every
projected gradient has a non-negative dot with its reference; and A-GEM forgets less (mean drop of
accuracy on earlier tasks from their best, from the ``R[i][j]`` accuracy matrix) than fine-tuning.
"""

# ruff: noqa: UP008  (the code's own spelling: super(Net, self))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

N_INPUTS, N_OUTPUTS, N_TASKS = 24, 5, 4
N_TRAIN, N_TEST = 400, 300


class Args:
    n_layers = 2
    n_hiddens = 48
    lr = 0.1
    n_memories = 40
    batch_size = 10
    mem_batch = 40


# ----------------------------------------------------------------------------------- data
centres = np.random.randn(N_OUTPUTS, N_INPUTS).astype(np.float32) * 1.2


def sample(n):
    y = np.random.randint(0, N_OUTPUTS, size=n)
    x = centres[y] + np.random.randn(n, N_INPUTS).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y).long()


base_train, base_test = [sample(N_TRAIN) for _ in range(N_TASKS)], [sample(N_TEST) for _ in range(N_TASKS)]
perms = [torch.arange(N_INPUTS)] + [torch.randperm(N_INPUTS) for _ in range(N_TASKS - 1)]
tasks_tr = [(x[:, perms[t]], y) for t, (x, y) in enumerate(base_train)]
tasks_te = [(x[:, perms[t]], y) for t, (x, y) in enumerate(base_test)]


# ----------------------------------------------------------------------------------- model
class MLP(nn.Module):
    def __init__(self, sizes):
        super(MLP, self).__init__()
        layers = []
        for i in range(0, len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < (len(sizes) - 2):
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def store_grad(pp, grads, grad_dims, tid):
    """
    This stores parameter gradients of past tasks.
    pp: parameters
    grads: gradients
    grad_dims: list with number of parameters per layers
    tid: task id
    """
    # store the gradients
    grads[:, tid].fill_(0.0)
    cnt = 0
    for param in pp():
        if param.grad is not None:
            beg = 0 if cnt == 0 else sum(grad_dims[:cnt])
            en = np.sum(grad_dims[: cnt + 1])
            grads[beg:en, tid].copy_(param.grad.data.view(-1))
        cnt += 1


def overwrite_grad(pp, newgrad, grad_dims):
    """
    This is used to overwrite the gradients with a new gradient
    vector, whenever violations occur.
    pp: parameters
    newgrad: corrected gradient
    grad_dims: list storing number of parameters at each layer
    """
    cnt = 0
    for param in pp():
        if param.grad is not None:
            beg = 0 if cnt == 0 else sum(grad_dims[:cnt])
            en = sum(grad_dims[: cnt + 1])
            this_grad = newgrad[beg:en].contiguous().view(param.grad.data.size())
            param.grad.data.copy_(this_grad)
        cnt += 1


def project(gxy, ger):
    corr = torch.dot(gxy, ger) / torch.dot(ger, ger)
    return gxy - corr * ger


class Net(nn.Module):
    def __init__(self, n_inputs, n_outputs, n_tasks, args, agem=True):
        super(Net, self).__init__()
        nl, nh = args.n_layers, args.n_hiddens
        self.net = MLP([n_inputs] + [nh] * nl + [n_outputs])
        self.ce = nn.CrossEntropyLoss()
        self.n_outputs = n_outputs
        self.agem = agem
        self.opt = optim.SGD(self.parameters(), args.lr)

        self.n_memories = args.n_memories
        self.mem_batch = args.mem_batch
        # allocate episodic memory
        self.memory_data = torch.FloatTensor(n_tasks, self.n_memories, n_inputs)
        self.memory_labs = torch.LongTensor(n_tasks, self.n_memories)

        # allocate temporary synaptic memory
        self.grad_dims = []
        for param in self.parameters():
            self.grad_dims.append(param.data.numel())
        self.grads = torch.Tensor(sum(self.grad_dims), 2)

        # allocate counters
        self.observed_tasks = []
        self.old_task = -1
        self.mem_cnt = 0
        self.n_projected = 0
        self.min_dot_after = float("inf")
        self.flat_ok = True

    def forward(self, x, t):
        return self.net(x)

    def observe(self, x, t, y):
        # update memory
        if t != self.old_task:
            self.observed_tasks.append(t)
            self.old_task = t
            self.mem_cnt = 0

        # Update ring buffer storing examples from current task
        bsz = y.data.size(0)
        endcnt = min(self.mem_cnt + bsz, self.n_memories)
        effbsz = endcnt - self.mem_cnt
        self.memory_data[t, self.mem_cnt : endcnt].copy_(x.data[:effbsz])
        if bsz == 1:
            self.memory_labs[t, self.mem_cnt] = y.data[0]
        else:
            self.memory_labs[t, self.mem_cnt : endcnt].copy_(y.data[:effbsz])
        self.mem_cnt += effbsz
        if self.mem_cnt == self.n_memories:
            self.mem_cnt = 0

        past = self.observed_tasks[:-1]
        if self.agem and len(past) > 0:
            # reference gradient on a batch drawn from the memories of all earlier tasks
            self.zero_grad()
            mem_x = torch.cat([self.memory_data[tt] for tt in past])
            mem_y = torch.cat([self.memory_labs[tt] for tt in past])
            idx = torch.randperm(mem_x.size(0))[: self.mem_batch]
            ptloss = self.ce(self.forward(mem_x[idx], past[-1]), mem_y[idx])
            ptloss.backward()
            store_grad(self.parameters, self.grads, self.grad_dims, 1)

        # now compute the grad on the current minibatch
        self.zero_grad()
        loss = self.ce(self.forward(x, t), y)
        loss.backward()

        if self.agem and len(past) > 0:
            store_grad(self.parameters, self.grads, self.grad_dims, 0)
            flat = torch.cat([p.grad.view(-1) for p in self.parameters()])
            self.flat_ok = self.flat_ok and torch.equal(flat, self.grads[:, 0])
            g, g_ref = self.grads[:, 0], self.grads[:, 1]
            dot_prod = torch.dot(g, g_ref)
            if dot_prod.item() < 0:
                g_tilde = g - (g @ g_ref) / (g_ref @ g_ref) * g_ref
                assert torch.allclose(g_tilde, project(g, g_ref))
                # relative to the sizes of the vectors: zero up to float32 rounding
                rel = (torch.dot(g_tilde, g_ref) / (g_ref.norm() * g.norm())).item()
                self.min_dot_after = min(self.min_dot_after, rel)
                self.n_projected += 1
                self.grads[:, 0].copy_(g_tilde)
                overwrite_grad(self.parameters, self.grads[:, 0], self.grad_dims)
        self.opt.step()
        return loss.item()


def eval_tasks(model, tasks):
    model.eval()
    result = []
    with torch.no_grad():
        for i, (x, y) in enumerate(tasks):
            pred = model(x, i).max(1)[1]
            result.append((pred == y).float().mean().item())
    model.train()
    return result


def life_experience(model, args):
    R = []
    for t in range(N_TASKS):
        x_tr, y_tr = tasks_tr[t]
        losses = []
        for i in range(0, x_tr.size(0), args.batch_size):
            losses.append(model.observe(x_tr[i : i + args.batch_size], t, y_tr[i : i + args.batch_size]))
        R.append(eval_tasks(model, tasks_te))
        print(f"  task {t}: mean loss {np.mean(losses):.4f} acc " + " ".join(f"{a:.3f}" for a in R[-1]))
    R = torch.tensor(R)
    forgetting = (R[:-1, :-1].max(0)[0] - R[-1, :-1]).mean().item()
    return R, forgetting


results = {}
for name, agem in [("finetune", False), ("agem", True)]:
    torch.manual_seed(seed)
    model = Net(N_INPUTS, N_OUTPUTS, N_TASKS, Args, agem=agem)
    print(f"{name}: {sum(model.grad_dims)} parameters in {len(model.grad_dims)} tensors")
    R, forgetting = life_experience(model, Args)
    avg_acc = R[-1].mean().item()
    print(f"{name}: final average accuracy {avg_acc:.4f} forgetting {forgetting:.4f}")
    results[name] = (avg_acc, forgetting, model)

agem_model = results["agem"][2]
print(f"A-GEM projected {agem_model.n_projected} times; flat == torch.cat: {agem_model.flat_ok}")
dots_ok = agem_model.n_projected > 0 and agem_model.min_dot_after > -1e-5
print(
    f"FINAL finetune_acc={results['finetune'][0]:.4f} finetune_forgetting={results['finetune'][1]:.4f} "
    f"agem_acc={results['agem'][0]:.4f} agem_forgetting={results['agem'][1]:.4f} "
    f"agem_forgets_less={int(results['agem'][1] < results['finetune'][1])} "
    f"projected_dot_nonneg={int(dots_ok)} flat_grad_equal={int(agem_model.flat_ok)}"
)
