"""The PyTorch DDP tutorial ("Getting Started with Distributed Data Parallel") and its
multi-process training recipe, shrunk: ``mp.spawn(demo_fn, args=(world_size,), nprocs=world_size,
join=True)``; ``setup``/``cleanup`` with ``os.environ['MASTER_ADDR']``/``['MASTER_PORT']``,
``dist.init_process_group("gloo", rank=rank, world_size=world_size)`` and
``dist.destroy_process_group()``; ``DistributedDataParallel(model)``; a ``DistributedSampler``
with ``set_epoch`` per epoch; ``dist.all_reduce`` of the summed loss and sample count, and of the
correct count for a global accuracy; the tutorial's checkpoint demo (rank 0 saves
``ddp_model.state_dict()``, ``dist.barrier()``, every rank loads it with
``map_location``); ``dist.get_rank()``/``get_world_size()``; rank 0 prints. Data: two Gaussian
blobs in 8 dimensions from NumPy.
"""

import os
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.optim as optim
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def setup(rank, world_size):
    os.environ['MASTER_ADDR'] = 'localhost'
    os.environ['MASTER_PORT'] = os.environ.get('PROGRAM_PORT', '29533')

    # initialize the process group
    dist.init_process_group("gloo", rank=rank, world_size=world_size)


def cleanup():
    dist.destroy_process_group()


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.net1 = nn.Linear(8, 16)
        self.relu = nn.ReLU()
        self.net2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.net2(self.relu(self.net1(x)))


def make_dataset(n):
    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, n)
    x = rng.randn(n, 8) * 1.5 + (2 * y[:, None] - 1) * 0.6
    return TensorDataset(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))


def demo_basic(rank, world_size, seed, checkpoint_path):
    setup(rank, world_size)
    torch.manual_seed(seed)  # the same initial model on every rank (DDP broadcasts rank 0's anyway)

    model = ToyModel()
    ddp_model = DDP(model)

    dataset = make_dataset(512)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(dataset, batch_size=16, sampler=sampler)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(ddp_model.parameters(), lr=0.05, momentum=0.9)

    for epoch in range(3):
        sampler.set_epoch(epoch)
        totals = torch.zeros(2)
        for x, y in loader:
            optimizer.zero_grad()
            outputs = ddp_model(x)
            loss = loss_fn(outputs, y)
            loss.backward()
            optimizer.step()
            totals += torch.tensor([loss.item() * len(y), len(y)])
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        if rank == 0:
            print(f"epoch {epoch} mean loss {totals[0].item() / totals[1].item():.4f} "
                  f"over {int(totals[1].item())} samples")

    # the tutorial's checkpoint demo: rank 0 saves, everyone waits, everyone loads
    if rank == 0:
        torch.save(ddp_model.state_dict(), checkpoint_path)
    dist.barrier()
    map_location = {'cuda:%d' % 0: 'cpu'}  # noqa: UP031  (the tutorial's spelling)
    ddp_model.load_state_dict(torch.load(checkpoint_path, map_location=map_location, weights_only=True))

    # replicas must hold the same parameters: compare every rank's sum with rank 0's
    checksum = torch.stack([p.detach().sum() for p in ddp_model.parameters()]).sum().reshape(1)
    reference = checksum.clone()
    dist.broadcast(reference, src=0)
    in_sync = torch.tensor([float(torch.allclose(checksum, reference))])
    dist.all_reduce(in_sync, op=dist.ReduceOp.MIN)

    ddp_model.eval()
    correct = torch.zeros(2)
    with torch.no_grad():
        for x, y in loader:
            correct += torch.tensor([float((ddp_model(x).argmax(1) == y).sum()), float(len(y))])
    dist.all_reduce(correct)
    if rank == 0:
        print(f"rank {dist.get_rank()} of {dist.get_world_size()}: replicas in sync: {bool(in_sync.item())}")
        with open(os.path.join(os.path.dirname(checkpoint_path), "result.txt"), "w") as f:
            f.write(f"{totals[0].item() / totals[1].item():.4f} {correct[0].item() / correct[1].item():.4f}")
    cleanup()


def run_demo(demo_fn, world_size):
    seed = int(os.environ.get("PROGRAM_SEED", "0"))
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint_path = os.path.join(tmp, "model.checkpoint")
        mp.spawn(demo_fn,
                 args=(world_size, seed, checkpoint_path),
                 nprocs=world_size,
                 join=True)
        with open(os.path.join(tmp, "result.txt")) as f:
            loss, accuracy = (float(v) for v in f.read().split())
    print(f"FINAL loss={loss:.4f} accuracy={accuracy:.4f}")


if __name__ == "__main__":
    n_gpus = torch.cuda.device_count()
    world_size = 2
    print(f"Running basic DDP example on {world_size} CPU processes ({n_gpus} GPUs seen).")
    run_demo(demo_basic, world_size)
