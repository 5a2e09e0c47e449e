"""torchvision's DenseNet (models/densenet.py) as written there, at a tiny size on synthetic shapes,
trained memory-efficiently and loaded from a legacy checkpoint.

``_DenseLayer`` with ``bn_function`` on ``torch.cat(inputs, 1)``, ``any_requires_grad``, ``@torch.jit.unused``
``call_checkpoint_bottleneck`` running ``cp.checkpoint(closure, *input, use_reentrant=False)``, the
``@torch.jit._overload_method`` forward stubs, the ``torch.jit.is_scripting()`` guard,
``F.dropout(..., training=self.training)``; ``_DenseBlock(nn.ModuleDict)`` with ``_version = 2``
iterating ``self.items()``; ``_Transition(nn.Sequential)`` filled by attribute assignment with
``nn.AvgPool2d(kernel_size=2, stride=2)``; ``nn.Sequential(OrderedDict([...]))`` grown by
``features.add_module("denseblock%d" % (i + 1), block)``; the init loop (``kaiming_normal_``,
``nn.init.constant_`` for BatchNorm and the classifier bias); ``F.relu(features, inplace=True)`` +
``F.adaptive_avg_pool2d`` + ``torch.flatten``. ``memory_efficient=True`` must give
``memory_efficient=False``'s loss and gradients; its recomputation in backward updates the
checkpointed BatchNorms' running statistics a second time (pytorch/pytorch#96136), which the
program prints. A legacy checkpoint (``norm.1.weight`` names, no ``num_batches_tracked``, no
``_metadata``) saved by ``torch.save`` and read by ``torch.load(weights_only=True)`` is renamed by
torchvision's ``_load_state_dict`` regex and loaded strictly. Trained with SGD (momentum, nesterov,
weight decay) and ``CosineAnnealingLR``.

The data: noisy 24x24 RGB images of a square, a disc, a cross and a ring, made with NumPy.
"""
# ruff: noqa: UP006, UP035, UP031, F811, B007  (torchvision's own List[Tensor], "denseblock%d" % (i + 1),
# overloaded forward stubs and `for name, layer in self.items()`)

import io
import os
import re
from collections import OrderedDict
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, NUM_CLASSES = 24, 4


def make_shapes(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = rng.normal(0.0, 0.3, size=(n, 3, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    for i, label in enumerate(labels):
        cy, cx = rng.uniform(8, SIZE - 8, size=2)
        r = rng.uniform(4.0, 6.5)
        d = np.hypot(yy - cy, xx - cx)
        if label == 0:
            mask = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
        elif label == 1:
            mask = d < r
        elif label == 2:
            mask = ((np.abs(yy - cy) < r) & (np.abs(xx - cx) < 1.5)) | ((np.abs(xx - cx) < r) & (np.abs(yy - cy) < 1.5))
        else:
            mask = (d < r) & (d > r - 2.0)
        images[i][:, mask] += rng.uniform(0.6, 1.2, size=(3, 1)).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels)


class _DenseLayer(nn.Module):
    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int, drop_rate: float,
                 memory_efficient: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)

        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)

        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def bn_function(self, inputs: List[Tensor]) -> Tensor:
        concated_features = torch.cat(inputs, 1)
        bottleneck_output = self.conv1(self.relu1(self.norm1(concated_features)))  # noqa: T484
        return bottleneck_output

    # todo: rewrite when torchscript supports any
    def any_requires_grad(self, input: List[Tensor]) -> bool:
        for tensor in input:
            if tensor.requires_grad:
                return True
        return False

    @torch.jit.unused  # noqa: T484
    def call_checkpoint_bottleneck(self, input: List[Tensor]) -> Tensor:
        def closure(*inputs):
            return self.bn_function(inputs)

        return cp.checkpoint(closure, *input, use_reentrant=False)

    @torch.jit._overload_method  # noqa: F811
    def forward(self, input: List[Tensor]) -> Tensor:  # noqa: D102
        pass

    @torch.jit._overload_method  # noqa: F811
    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        pass

    # torchscript does not yet support *args, so we overload method
    # allowing it to take either a List[Tensor] or single Tensor
    def forward(self, input: Tensor) -> Tensor:  # noqa: F811
        if isinstance(input, Tensor):
            prev_features = [input]
        else:
            prev_features = input

        if self.memory_efficient and self.any_requires_grad(prev_features):
            if torch.jit.is_scripting():
                raise Exception("Memory Efficient not supported in JIT")

            bottleneck_output = self.call_checkpoint_bottleneck(prev_features)
        else:
            bottleneck_output = self.bn_function(prev_features)

        new_features = self.conv2(self.relu2(self.norm2(bottleneck_output)))
        if self.drop_rate > 0:
            new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class _DenseBlock(nn.ModuleDict):
    _version = 2

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int, drop_rate: float,
                 memory_efficient: bool = False) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(
                num_input_features + i * growth_rate,
                growth_rate=growth_rate,
                bn_size=bn_size,
                drop_rate=drop_rate,
                memory_efficient=memory_efficient,
            )
            self.add_module("denselayer%d" % (i + 1), layer)

    def forward(self, init_features: Tensor) -> Tensor:
        features = [init_features]
        for name, layer in self.items():
            new_features = layer(features)
            features.append(new_features)
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(self, growth_rate=8, block_config=(3, 3), num_init_features=16, bn_size=2, drop_rate=0.0,
                 num_classes=NUM_CLASSES, memory_efficient=False) -> None:
        super().__init__()
        # First convolution
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
                ]
            )
        )

        # Each denseblock
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(
                num_layers=num_layers,
                num_input_features=num_features,
                bn_size=bn_size,
                growth_rate=growth_rate,
                drop_rate=drop_rate,
                memory_efficient=memory_efficient,
            )
            self.features.add_module("denseblock%d" % (i + 1), block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                trans = _Transition(num_input_features=num_features, num_output_features=num_features // 2)
                self.features.add_module("transition%d" % (i + 1), trans)
                num_features = num_features // 2

        # Final batch norm
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))

        # Linear layer
        self.classifier = nn.Linear(num_features, num_classes)

        # Official init from torch repo.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x)
        out = F.relu(features, inplace=True)
        out = F.adaptive_avg_pool2d(out, (1, 1))
        out = torch.flatten(out, 1)
        out = self.classifier(out)
        return out


def _load_state_dict(model: nn.Module, state_dict) -> int:
    # '.'s are no longer allowed in module names, but previous _DenseLayer
    # has keys 'norm.1', 'relu.1', 'conv.1', 'norm.2', 'relu.2', 'conv.2'.
    # They are also in the checkpoints in model_urls. This pattern is used
    # to find such keys.
    pattern = re.compile(
        r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
    )
    renamed = 0
    for key in list(state_dict.keys()):
        res = pattern.match(key)
        if res:
            new_key = res.group(1) + res.group(2)
            state_dict[new_key] = state_dict[key]
            del state_dict[key]
            renamed += 1
    model.load_state_dict(state_dict)
    return renamed


def legacy_checkpoint(model: nn.Module) -> bytes:
    """The model's weights as a pre-0.4 torchvision checkpoint: 'norm.1'-style names, no
    num_batches_tracked, a plain OrderedDict without _metadata."""
    legacy = OrderedDict()
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        legacy[re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)] = value.clone()
    buffer = io.BytesIO()
    torch.save(legacy, buffer)
    return buffer.getvalue()


train_x, train_y = make_shapes(192)
test_x, test_y = make_shapes(96)
print(f"data {tuple(train_x.shape)} classes {torch.bincount(train_y, minlength=NUM_CLASSES).tolist()}")

efficient = DenseNet(memory_efficient=True)
plain = DenseNet(memory_efficient=False)
plain.load_state_dict(efficient.state_dict())
state = efficient.state_dict()
print(f"state_dict entries {len(state)} block version {state._metadata['features.denseblock1']['version']} "
      f"first layer keys {[k for k in state if k.startswith('features.denseblock1.denselayer1.')][:3]}")
print("features", list(efficient.features._modules.keys()))
print("scripting", torch.jit.is_scripting(), "transition", [type(m).__name__ for m in efficient.features.transition1])

# one training step's loss and gradients: checkpointed against plain
images, labels = train_x[:32], train_y[:32]
losses = []
for model in (efficient, plain):
    model.train()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    losses.append(loss)
grad_diff = max((a.grad - b.grad).abs().max().item() for a, b in zip(efficient.parameters(), plain.parameters()))
print(f"loss equal {torch.allclose(losses[0], losses[1])} gradients equal {grad_diff < 1e-5} "
      f"(all {sum(p.grad is not None for p in efficient.parameters())} parameters have grads)")
norm1_eff = efficient.features.denseblock1.denselayer2.norm1
norm1_plain = plain.features.denseblock1.denselayer2.norm1
print(f"checkpointed norm1 batches tracked {norm1_eff.num_batches_tracked.item()} "
      f"plain {norm1_plain.num_batches_tracked.item()} norm2 {efficient.features.denseblock1.denselayer2.norm2.num_batches_tracked.item()} "
      f"running means equal {torch.allclose(norm1_eff.running_mean, norm1_plain.running_mean)}")
with torch.no_grad():
    efficient.eval()
    plain.eval()
    print("no-grad eval takes the plain path, outputs equal", torch.allclose(efficient(test_x[:8]), plain(test_x[:8]), atol=1e-5))

model = DenseNet(memory_efficient=True)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
EPOCHS, BATCH = 5, 32
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(len(train_x))
    total, correct = 0.0, 0
    for start in range(0, len(train_x), BATCH):
        index = order[start:start + BATCH]
        logits = model(train_x[index])
        loss = F.cross_entropy(logits, train_y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(index)
        correct += (logits.argmax(1) == train_y[index]).sum().item()
    scheduler.step()
    print(f"epoch {epoch} loss {total / len(train_x):.4f} acc {correct / len(train_x):.4f} lr {scheduler.get_last_lr()[0]:.4f}")

model.eval()
with torch.no_grad():
    logits = model(test_x)
    test_loss = F.cross_entropy(logits, test_y).item()
    test_acc = (logits.argmax(1) == test_y).float().mean().item()

blob = legacy_checkpoint(model)
legacy = torch.load(io.BytesIO(blob), weights_only=True)
print(f"legacy keys {len(legacy)} e.g. {[k for k in legacy if 'denselayer1.' in k][:2]} metadata {hasattr(legacy, '_metadata')}")
restored = DenseNet(memory_efficient=False)
renamed = _load_state_dict(restored, legacy)
restored.eval()
with torch.no_grad():
    same = torch.equal(restored(test_x), logits)
tracked = sum(m.num_batches_tracked.item() for m in restored.modules() if isinstance(m, nn.BatchNorm2d))
print(f"renamed {renamed} keys, restored logits equal {same}, num_batches_tracked after a legacy load {tracked}")
print(f"FINAL test_loss={test_loss:.4f} test_acc={test_acc:.4f} grad_diff={grad_diff:.2e}")
