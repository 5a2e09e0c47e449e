"""pytorch/examples mnist_hogwild, shrunk: ``mp.set_start_method('spawn', force=True)``,
``model.share_memory()`` (gradients are allocated lazily, so they are not shared), ``mp.Process``
workers each running ``train(rank, args, model, device, dataset, dataloader_kwargs)`` with
``torch.manual_seed(args.seed + rank)``, their own ``DataLoader`` and SGD over the one shared
model (Hogwild: lock-free updates), ``p.join()``, then ``test`` in the parent on the parameters the
workers wrote; ``argparse.Namespace`` args, ``F.nll_loss(reduction='sum')`` test loss,
``pred.eq(target.view_as(pred)).sum().item()``. Data: a synthetic 8x8 image task from NumPy.
The printed numbers depend on how the workers interleave; the accuracy does not, much.
"""

import argparse
import os

import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = x.view(-1, 16 * 2 * 2)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def make_dataset(rng, n):
    # four classes: a bright bar in one of the image's four quadrants, plus noise
    y = rng.randint(0, 4, n)
    x = 1.0 * rng.randn(n, 1, 8, 8)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 0, 4 * r + 1:4 * r + 3, 4 * c:4 * c + 4] += 1.0
    return TensorDataset(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))


def train(rank, args, model, device, dataset, dataloader_kwargs):
    torch.manual_seed(args.seed + rank)

    train_loader = torch.utils.data.DataLoader(dataset, **dataloader_kwargs)

    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    for epoch in range(1, args.epochs + 1):
        train_epoch(epoch, args, model, device, train_loader, optimizer)


def test(args, model, device, dataset, dataloader_kwargs):
    torch.manual_seed(args.seed)

    test_loader = torch.utils.data.DataLoader(dataset, **dataloader_kwargs)

    return test_epoch(model, device, test_loader)


def train_epoch(epoch, args, model, device, data_loader, optimizer):
    model.train()
    pid = os.getpid()
    for batch_idx, (data, target) in enumerate(data_loader):
        optimizer.zero_grad()
        output = model(data.to(device))
        loss = F.nll_loss(output, target.to(device))
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0 and args.dry_run:
            print(f'{pid}\tTrain Epoch: {epoch} \tLoss: {loss.item():.6f}')
            break


def test_epoch(model, device, data_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in data_loader:
            output = model(data.to(device))
            test_loss += F.nll_loss(output, target.to(device), reduction='sum').item()  # sum up batch loss
            pred = output.max(1)[1]  # get the index of the max log-probability
            correct += pred.eq(target.to(device)).sum().item()

    test_loss /= len(data_loader.dataset)
    print(f'Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(data_loader.dataset)} ({100. * correct / len(data_loader.dataset):.0f}%)')
    return test_loss, correct / len(data_loader.dataset)


if __name__ == '__main__':
    args = argparse.Namespace(batch_size=32, test_batch_size=100, epochs=4, lr=0.05, momentum=0.5,
                              seed=int(os.environ.get("PROGRAM_SEED", "0")), log_interval=10,
                              num_processes=2, dry_run=False)
    device = torch.device("cpu")
    rng = np.random.RandomState(0)
    dataset1, dataset2 = make_dataset(rng, 512), make_dataset(rng, 200)
    kwargs = {'batch_size': args.batch_size, 'shuffle': True}

    torch.manual_seed(args.seed)
    mp.set_start_method('spawn', force=True)

    model = Net().to(device)
    model.share_memory()  # gradients are allocated lazily, so they are not shared here
    before = [p.detach().clone() for p in model.parameters()]
    print('shared:', all(p.is_shared() for p in model.parameters()))

    processes = []
    for rank in range(args.num_processes):
        p = mp.Process(target=train, args=(rank, args, model, device, dataset1, kwargs))
        # We first train the model across `num_processes` processes
        p.start()
        processes.append(p)
    for p in processes:
        p.join()
    print('exit codes:', [p.exitcode for p in processes])
    moved = sum(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))
    print('parameters changed by the workers:', moved, 'of', len(before))

    # Once training is complete, we can test the model
    test_kwargs = {'batch_size': args.test_batch_size, 'shuffle': False}
    test_loss, accuracy = test(args, model, device, dataset2, test_kwargs)
    print(f"FINAL test_loss={test_loss:.4f} accuracy={accuracy:.4f}")
