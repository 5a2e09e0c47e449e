"""Federated averaging as the FedAvg/FedProx reference code writes it (shaoxiongji/federated-
learning models/Fed.py + models/Update.py, Xtra-Computing/NIID-Bench experiments.py, litian96's
FedProx proximal term), at tiny sizes on synthetic four-class blobs: a non-IID Dirichlet label
split (NIID-Bench's ``partition_data`` 'noniid-labeldir' with ``np.random.dirichlet(np.repeat(
beta, n_parties))``, ``np.cumsum`` cut points and ``np.split``), clients as ``DatasetSplit``
wrappers and ``torch.utils.data.Subset``s, local SGD epochs on ``copy.deepcopy(net_glob)``, the
FedProx term ``(mu / 2) * torch.norm(param - global_weight_collector[i]) ** 2`` (against ``mu / 2
* sum((w - w_g.detach()) ** 2)``, and its gradient against ``mu * (w - w_g)``), ``FedAvg`` over
``state_dict()``s by ``w_avg[k] += w[i][k]`` + ``torch.div`` (against ``torch.stack([...]).mean(0)``)
and NIID-Bench's data-size-weighted sums, BatchNorm running buffers averaged and
``num_batches_tracked`` summed as the int64 it is, ``load_state_dict`` of the averaged dict,
``state_dict()`` tensors aliasing the live parameters; checks that global accuracy rises and that
FedAvg with one client and one full-batch step equals one plain SGD step.
"""
# ruff: noqa: B007, UP034  (the repositories' own spelling: unused loop indices, torch.norm((a - b)))

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class Args:
    num_users = 8
    frac = 0.5
    local_ep = 2
    local_bs = 32
    lr = 0.01
    momentum = 0.5
    epochs = 10
    beta = 0.5
    mu = 0.01


args = Args()

# ---- synthetic data: four Gaussian classes in 8-d, overlapping ----
rng = np.random.RandomState(0)
num_classes, dim = 4, 8
centers = rng.randn(num_classes, dim) * 0.8
y_np = rng.randint(0, num_classes, 2000)
x_np = (centers[y_np] + rng.randn(2000, dim)).astype(np.float32)
x_np[:, :2] = np.tanh(x_np[:, :2]) * 2          # a nonlinearity the MLP has to learn around
dataset_train = TensorDataset(torch.from_numpy(x_np[:1600]), torch.from_numpy(y_np[:1600]))
dataset_test = TensorDataset(torch.from_numpy(x_np[1600:]), torch.from_numpy(y_np[1600:]))
y_train = y_np[:1600]


# ---- NIID-Bench partition_data, 'noniid-labeldir' ----
def partition_data(y_train, n_parties, beta, rng):
    min_size = 0
    min_require_size = 10
    K = num_classes
    N = y_train.shape[0]
    net_dataidx_map = {}
    while min_size < min_require_size:
        idx_batch = [[] for _ in range(n_parties)]
        for k in range(K):
            idx_k = np.where(y_train == k)[0]
            rng.shuffle(idx_k)
            proportions = rng.dirichlet(np.repeat(beta, n_parties))
            proportions = np.array([p * (len(idx_j) < N / n_parties) for p, idx_j in zip(proportions, idx_batch)])
            proportions = proportions / proportions.sum()
            proportions = (np.cumsum(proportions) * len(idx_k)).astype(int)[:-1]
            idx_batch = [idx_j + idx.tolist() for idx_j, idx in zip(idx_batch, np.split(idx_k, proportions))]
            min_size = min([len(idx_j) for idx_j in idx_batch])
    for j in range(n_parties):
        rng.shuffle(idx_batch[j])
        net_dataidx_map[j] = idx_batch[j]
    return net_dataidx_map


dict_users = partition_data(y_train, args.num_users, args.beta, np.random.RandomState(1))
for j in range(args.num_users):
    counts = np.bincount(y_train[dict_users[j]], minlength=num_classes)
    print(f"client {j}: {len(dict_users[j])} samples, label counts {counts.tolist()}")


# ---- models/Nets.py ----
class MLP(nn.Module):
    def __init__(self, dim_in, dim_hidden, dim_out):
        super().__init__()
        self.layer_input = nn.Linear(dim_in, dim_hidden)
        self.bn = nn.BatchNorm1d(dim_hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout()
        self.layer_hidden = nn.Linear(dim_hidden, dim_out)

    def forward(self, x):
        x = x.view(-1, x.shape[1])
        x = self.layer_input(x)
        x = self.bn(x)
        x = self.dropout(x)
        x = self.relu(x)
        x = self.layer_hidden(x)
        return x


# ---- models/Update.py ----
class DatasetSplit(Dataset):
    def __init__(self, dataset, idxs):
        self.dataset = dataset
        self.idxs = list(idxs)

    def __len__(self):
        return len(self.idxs)

    def __getitem__(self, item):
        image, label = self.dataset[self.idxs[item]]
        return image, label


class LocalUpdate:
    def __init__(self, args, dataset=None, idxs=None, mu=0.0):
        self.args = args
        self.mu = mu
        self.loss_func = nn.CrossEntropyLoss()
        self.ldr_train = DataLoader(DatasetSplit(dataset, idxs), batch_size=self.args.local_bs, shuffle=True)

    def train(self, net, global_net):
        net.train()
        optimizer = torch.optim.SGD(net.parameters(), lr=self.args.lr, momentum=self.args.momentum)
        global_weight_collector = list(global_net.parameters())
        epoch_loss = []
        for iter in range(self.args.local_ep):
            batch_loss = []
            for batch_idx, (images, labels) in enumerate(self.ldr_train):
                net.zero_grad()
                log_probs = net(images)
                loss = self.loss_func(log_probs, labels)
                if self.mu > 0:
                    # for fedprox
                    fed_prox_reg = 0.0
                    for param_index, param in enumerate(net.parameters()):
                        fed_prox_reg += ((self.mu / 2) * torch.norm((param - global_weight_collector[param_index])) ** 2)
                    loss += fed_prox_reg
                loss.backward()
                optimizer.step()
                batch_loss.append(loss.item())
            epoch_loss.append(sum(batch_loss) / len(batch_loss))
        return net.state_dict(), sum(epoch_loss) / len(epoch_loss)


# ---- models/Fed.py ----
def FedAvg(w):
    w_avg = copy.deepcopy(w[0])
    for k in w_avg.keys():
        for i in range(1, len(w)):
            w_avg[k] += w[i][k]
        w_avg[k] = torch.div(w_avg[k], len(w))
    return w_avg


def fedavg_stack(w):
    """The same mean by torch.stack, BatchNorm's step counter summed as an integer."""
    out = {}
    for k in w[0].keys():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.stack([wi[k] for wi in w]).sum(0)
        else:
            out[k] = torch.stack([wi[k].float() for wi in w]).mean(0)
    return out


def fedavg_weighted(w, sizes):
    """NIID-Bench: global_para[key] += net_para[key] * fed_avg_freqs[idx]."""
    total_data_points = sum(sizes)
    fed_avg_freqs = [s / total_data_points for s in sizes]
    global_para = {}
    for idx, net_para in enumerate(w):
        if idx == 0:
            for key in net_para:
                global_para[key] = net_para[key] * fed_avg_freqs[idx]
        else:
            for key in net_para:
                global_para[key] += net_para[key] * fed_avg_freqs[idx]
    return global_para


def test_img(net_g, datatest):
    net_g.eval()
    test_loss = 0
    correct = 0
    data_loader = DataLoader(datatest, batch_size=128)
    with torch.no_grad():
        for idx, (data, target) in enumerate(data_loader):
            log_probs = net_g(data)
            test_loss += F.cross_entropy(log_probs, target, reduction='sum').item()
            y_pred = log_probs.data.max(1, keepdim=True)[1]
            correct += y_pred.eq(target.data.view_as(y_pred)).long().cpu().sum()
    test_loss /= len(data_loader.dataset)
    accuracy = 100.00 * correct / len(data_loader.dataset)
    return accuracy, test_loss


# state_dict() hands back tensors sharing storage with the parameters: why FedAvg deep-copies
probe_net = MLP(dim, 16, num_classes)
sd = probe_net.state_dict()
with torch.no_grad():
    probe_net.layer_input.weight.add_(1.0)
aliased = bool(torch.equal(sd['layer_input.weight'], probe_net.layer_input.weight))
print("state_dict aliases parameters:", aliased, "requires_grad:", sd['layer_input.weight'].requires_grad,
      "keys:", list(sd.keys()))

# averaging routes agree on real client weights, and the int64 counter survives load_state_dict
w_demo = [MLP(dim, 16, num_classes).state_dict() for _ in range(3)]
for i, w in enumerate(w_demo):
    w['bn.num_batches_tracked'] += i + 1
    w['bn.running_mean'] += i
avg_a, avg_b = FedAvg(w_demo), fedavg_stack(w_demo)
avg_c = fedavg_weighted(w_demo, [10, 10, 10])
avg_err = max(max((avg_a[k].float() - avg_b[k].float()).abs().max().item() for k in avg_a if "num_batches" not in k),
              max((avg_a[k].float() - avg_c[k].float()).abs().max().item() for k in avg_a if "num_batches" not in k))
print("averaged dtypes:", avg_a['bn.num_batches_tracked'].dtype, avg_b['bn.num_batches_tracked'].dtype,
      avg_c['bn.num_batches_tracked'].dtype, "counter", avg_a['bn.num_batches_tracked'].item(),
      avg_b['bn.num_batches_tracked'].item())
loaded = MLP(dim, 16, num_classes)
loaded.load_state_dict(avg_c)
print("loaded counter", loaded.bn.num_batches_tracked.dtype, loaded.bn.num_batches_tracked.item(),
      "running_mean offset", round(loaded.bn.running_mean.mean().item(), 4))

# the two FedProx spellings agree, and the proximal gradient is mu * (w - w_global)
net_a = MLP(dim, 16, num_classes)
net_g = copy.deepcopy(net_a)
with torch.no_grad():
    for p in net_a.parameters():
        p.add_(0.1 * torch.randn_like(p))
prox_norm = sum((args.mu / 2) * torch.norm(p - g) ** 2 for p, g in zip(net_a.parameters(), net_g.parameters()))
prox_sum = args.mu / 2 * sum(((w - w_g.detach()) ** 2).sum() for w, w_g in zip(net_a.parameters(), net_g.parameters()))
grads = torch.autograd.grad(prox_sum, list(net_a.parameters()))
prox_grad_err = max((g - args.mu * (p - q)).abs().max().item()
                    for g, p, q in zip(grads, net_a.parameters(), net_g.parameters()))
prox_err = abs(prox_norm.item() - prox_sum.item())
print(f"prox spellings agree: {prox_err < 1e-6} gradient is mu*(w-w_g): {prox_grad_err < 1e-6}")

# FedAvg with one client and one full-batch local step is plain SGD
one = MLP(dim, 16, num_classes)
one.dropout.p = 0.0
plain = copy.deepcopy(one)
one_args = copy.copy(args)
one_args.local_ep, one_args.local_bs, one_args.momentum = 1, 64, 0.0
local = LocalUpdate(args=one_args, dataset=dataset_train, idxs=list(range(64)))
w, _ = local.train(net=copy.deepcopy(one), global_net=one)
one.load_state_dict(FedAvg([copy.deepcopy(w)]))
opt = torch.optim.SGD(plain.parameters(), lr=args.lr)
plain.train()
xb, yb = dataset_train[:64]
opt.zero_grad()
F.cross_entropy(plain(xb), yb).backward()
opt.step()
one_client_err = max((a.float() - b.float()).abs().max().item()
                     for a, b in zip(one.state_dict().values(), plain.state_dict().values()))
print(f"one client, one step == SGD: {one_client_err < 1e-6} counter {one.bn.num_batches_tracked.item()}")


def run(algorithm, mu):
    net_glob = MLP(dim, 32, num_classes)
    net_glob.train()
    w_glob = net_glob.state_dict()
    sel = np.random.RandomState(2)
    accs = []
    for iter in range(args.epochs):
        loss_locals, w_locals, sizes = [], [], []
        m = max(int(args.frac * args.num_users), 1)
        idxs_users = sel.choice(range(args.num_users), m, replace=False)
        for idx in idxs_users:
            local = LocalUpdate(args=args, dataset=Subset(dataset_train, dict_users[idx]),
                                idxs=range(len(dict_users[idx])), mu=mu)
            w, loss = local.train(net=copy.deepcopy(net_glob), global_net=net_glob)
            w_locals.append(copy.deepcopy(w))
            loss_locals.append(copy.deepcopy(loss))
            sizes.append(len(dict_users[idx]))
        w_glob = FedAvg(w_locals) if algorithm == "fedavg" else fedavg_weighted(w_locals, sizes)
        net_glob.load_state_dict(w_glob)
        acc_test, loss_test = test_img(net_glob, dataset_test)
        accs.append(acc_test.item())
        loss_avg = sum(loss_locals) / len(loss_locals)
        print(f"{algorithm} round {iter:3d}, clients {len(idxs_users)}, average loss {loss_avg:.3f}, "
              f"test accuracy {acc_test:.2f}")
        net_glob.train()
    return accs, net_glob


fedavg_accs, fedavg_net = run("fedavg", 0.0)
fedprox_accs, fedprox_net = run("fedprox", args.mu)
print("counter dtype after rounds:", fedprox_net.bn.num_batches_tracked.dtype)

def early_late(accs):
    return sum(accs[:2]) / 2, sum(accs[-3:]) / 3


fedavg_early, fedavg_late = early_late(fedavg_accs)
fedprox_early, fedprox_late = early_late(fedprox_accs)
print(f"accuracy rising (first two rounds -> last three): fedavg {fedavg_late > fedavg_early} "
      f"fedprox {fedprox_late > fedprox_early}")
print(f"FINAL fedavg_acc_early={fedavg_early:.2f} fedavg_acc_late={fedavg_late:.2f} "
      f"fedprox_acc_early={fedprox_early:.2f} fedprox_acc_late={fedprox_late:.2f} "
      f"fedavg_gain={fedavg_late - fedavg_early:.2f} fedprox_gain={fedprox_late - fedprox_early:.2f} "
      f"one_client_err={one_client_err:.2e} avg_err={avg_err:.2e} prox_err={prox_err:.2e} "
      f"prox_grad_err={prox_grad_err:.2e} aliased={int(aliased)} "
      f"rising={int(fedavg_late > fedavg_early and fedprox_late > fedprox_early)}")
