"""The "(beta) Building a Convolution/Batch Norm fuser in FX" tutorial on a small CNN trained on
batches from the ``IterableDataset`` example of the ``torch.utils.data`` docs:
``get_worker_info()`` splitting ``range(start, end)`` across ``num_workers=2`` inside ``__iter__``
(and by a ``worker_init_fn`` that edits ``worker_info.dataset``); ``fx.symbolic_trace``,
``dict(fx_model.named_modules())``, a walk over ``fx_model.graph.nodes`` matching
``node.op == 'call_module'`` BatchNorm2d nodes whose ``node.args[0]`` is a Conv2d used once,
``torch.nn.utils.fusion.fuse_conv_bn_eval``, ``setattr`` on the parent found by
``node.target.rsplit('.', 1)``, ``node.replace_all_uses_with``, ``fx_model.graph.erase_node``,
``graph.lint()``, ``recompile()``, ``delete_all_unused_submodules()``, ``print(fx_model.code)``; the fused model equals the unfused one in
eval mode (``torch.testing.assert_close``), including the tutorial's nested/wrapped toy ``M``.
"""

import copy
import math
import os
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# ---------------------------------------------------------------- the fuser
def _parent_name(target: str) -> tuple[str, str]:
    """
    Splits a qualname into parent path and last atom.
    For example, `foo.bar.baz` -> (`foo.bar`, `baz`)
    """
    *parent, name = target.rsplit('.', 1)
    return parent[0] if parent else '', name


def replace_node_module(node: fx.Node, modules: dict[str, Any], new_module: torch.nn.Module):
    assert isinstance(node.target, str)
    parent_name, name = _parent_name(node.target)
    setattr(modules[parent_name], name, new_module)


def fuse(model: torch.nn.Module) -> torch.nn.Module:
    model = copy.deepcopy(model)
    # The first step of most FX passes is to symbolically trace our model to
    # obtain a `GraphModule`.
    fx_model: fx.GraphModule = fx.symbolic_trace(model)
    modules = dict(fx_model.named_modules())

    # The `Graph` is a list of `Node` objects: iterate over them.
    for node in fx_model.graph.nodes:
        # The type of node is determined by `Node.op`.
        if node.op != 'call_module':  # If our current node isn't calling a Module then we can ignore it.
            continue
        # For call sites, `Node.target` represents the module being called. Check that it is a
        # batch norm, and that `Node.args[0]` (its input) is a convolution.
        prev = node.args[0]
        if not isinstance(prev, fx.Node) or prev.op != 'call_module':
            continue
        if type(modules[node.target]) is nn.BatchNorm2d and type(modules[prev.target]) is nn.Conv2d:
            if len(prev.users) > 1:  # Output of conv is used by other nodes
                continue
            conv = modules[prev.target]
            bn = modules[node.target]
            fused_conv = fuse_conv_bn_eval(conv, bn)
            replace_node_module(prev, modules, fused_conv)
            # As we've folded the batch norm into the conv, we need to replace all uses
            # of the batch norm with the conv.
            node.replace_all_uses_with(prev)
            # Now that all uses of the batch norm have been replaced, we can
            # safely remove the batch norm.
            fx_model.graph.erase_node(node)
    fx_model.graph.lint()
    # After we've modified our graph, we need to recompile our graph in order
    # to keep the generated code in sync.
    fx_model.recompile()
    return fx_model


# ---------------------------------------------------------------- the docs' IterableDataset
class MyIterableDataset(torch.utils.data.IterableDataset):
    def __init__(self, start, end):
        super(MyIterableDataset).__init__()  # noqa: UP008  (the docs' own line)
        assert end > start, "this example code only works with end >= start"
        self.start = start
        self.end = end

    def __iter__(self):
        worker_info = torch.utils.data.get_worker_info()
        if worker_info is None:  # single-process data loading, return the full iterator
            iter_start = self.start
            iter_end = self.end
        else:  # in a worker process
            # split workload
            per_worker = int(math.ceil((self.end - self.start) / float(worker_info.num_workers)))
            worker_id = worker_info.id
            iter_start = self.start + worker_id * per_worker
            iter_end = min(iter_start + per_worker, self.end)
        return iter(range(iter_start, iter_end))


class RangeDataset(torch.utils.data.IterableDataset):
    """The same range, split by worker_init_fn instead."""

    def __init__(self, start, end):
        super().__init__()
        self.start = start
        self.end = end

    def __iter__(self):
        return iter(range(self.start, self.end))


def worker_init_fn(worker_id):
    worker_info = torch.utils.data.get_worker_info()
    dataset = worker_info.dataset  # the dataset copy in this worker process
    overall_start = dataset.start
    overall_end = dataset.end
    # configure the dataset to only process the split workload
    per_worker = int(math.ceil((overall_end - overall_start) / float(worker_info.num_workers)))
    worker_id = worker_info.id
    dataset.start = overall_start + worker_id * per_worker
    dataset.end = min(dataset.start + per_worker, overall_end)


def make_example(index):
    """An 8x8 image with a bright blob in one quadrant (the label), from a seed of its own."""
    rng = np.random.RandomState(index)
    label = index % 4
    image = rng.normal(0.0, 0.5, size=(1, 8, 8)).astype(np.float32)
    r, c = divmod(label, 2)
    image[0, 4 * r + rng.randint(0, 3):4 * r + rng.randint(0, 3) + 2, 4 * c + 1:4 * c + 3] += 2.0
    return torch.from_numpy(image), label


class BlobStream(torch.utils.data.IterableDataset):
    def __init__(self, start, end):
        super().__init__()
        self.start, self.end = start, end

    def __iter__(self):
        worker_info = torch.utils.data.get_worker_info()
        if worker_info is None:
            iter_start, iter_end = self.start, self.end
        else:
            per_worker = int(math.ceil((self.end - self.start) / float(worker_info.num_workers)))
            iter_start = self.start + worker_info.id * per_worker
            iter_end = min(iter_start + per_worker, self.end)
        for index in range(iter_start, iter_end):
            yield make_example(index)


# ---------------------------------------------------------------- the model
class WrappedBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.mod = nn.BatchNorm2d(1)

    def forward(self, x):
        return self.mod(x)


class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 1)
        self.bn1 = nn.BatchNorm2d(1)
        self.conv2 = nn.Conv2d(1, 1, 1)
        self.nested = nn.Sequential(
            nn.BatchNorm2d(1),
            nn.Conv2d(1, 1, 1),
        )
        self.wrapped = WrappedBatchNorm()

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.conv2(x)
        x = self.nested(x)
        x = self.wrapped(x)
        return x


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, stride=1):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallNet(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.stem = ConvBNReLU(1, 8)
        self.block = nn.Sequential(ConvBNReLU(8, 16, stride=2), ConvBNReLU(16, 16))
        self.conv = nn.Conv2d(16, 16, 1)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.block(x)
        x = F.relu(self.bn(self.conv(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def count(model, kind):
    return sum(1 for m in model.modules() if type(m) is kind)


def main():
    ds = MyIterableDataset(start=3, end=7)
    # Single-process loading
    print(list(torch.utils.data.DataLoader(ds, num_workers=0)))
    # Multi-process loading with two worker processes
    print(list(torch.utils.data.DataLoader(ds, num_workers=2)))
    # With even more workers
    print(sorted(int(t) for t in torch.utils.data.DataLoader(ds, num_workers=3)))
    # Directly doing multi-process loading yields duplicate data
    print(list(torch.utils.data.DataLoader(RangeDataset(3, 7), num_workers=2)))
    # Multi-process loading with the custom `worker_init_fn`
    print(list(torch.utils.data.DataLoader(RangeDataset(3, 7), num_workers=2, worker_init_fn=worker_init_fn)))

    # the tutorial's toy model: nested and wrapped batch norms stay, conv1 + bn1 fuse
    model = M()
    model.eval()
    fused_model = fuse(model)
    print(fused_model.code)
    inp = torch.randn(5, 1, 1, 1)
    torch.testing.assert_close(fused_model(inp), model(inp))

    # train a small CNN on the stream
    net = SmallNet()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loader = torch.utils.data.DataLoader(BlobStream(0, 1024), batch_size=32, num_workers=2)
    for epoch in range(3):
        net.train()
        seen, total_loss, correct = 0, 0.0, 0
        for images, labels in loader:
            logits = net(images)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += labels.size(0)
            total_loss += loss.item() * labels.size(0)
            correct += (logits.argmax(1) == labels).sum().item()
        print(f"epoch {epoch} samples {seen} loss {total_loss / seen:.4f} acc {correct / seen:.4f}")
    train_loss = total_loss / seen

    net.eval()
    fx_net = fuse(net)
    fx_net.delete_all_unused_submodules()  # the erased batch norms' modules go too
    print(type(fx_net).__name__, 'batch norms', count(net, nn.BatchNorm2d), '->', count(fx_net, nn.BatchNorm2d),
          'convs', count(fx_net, nn.Conv2d), 'fused conv has bias', fx_net.get_submodule('stem.0').bias is not None)
    ops = [node.op for node in fx_net.graph.nodes]
    print('nodes', len(ops), {op: ops.count(op) for op in sorted(set(ops))})
    print(fx_net.code.strip())

    test_loader = torch.utils.data.DataLoader(BlobStream(5000, 5512), batch_size=128, num_workers=2)
    seen, correct, fused_correct, max_diff = 0, 0, 0, 0.0
    with torch.no_grad():
        for images, labels in test_loader:
            out, fused_out = net(images), fx_net(images)
            torch.testing.assert_close(fused_out, out, rtol=1e-4, atol=1e-4)
            max_diff = max(max_diff, (fused_out - out).abs().max().item())
            seen += labels.size(0)
            correct += (out.argmax(1) == labels).sum().item()
            fused_correct += (fused_out.argmax(1) == labels).sum().item()
    print(f"test samples {seen} fused equals unfused {correct == fused_correct} within 1e-4 {max_diff < 1e-4}")
    print(f"FINAL train_loss={train_loss:.4f} test_acc={correct / seen:.4f} fused_acc={fused_correct / seen:.4f}")


if __name__ == "__main__":
    main()
