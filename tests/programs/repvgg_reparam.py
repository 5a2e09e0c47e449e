"""RepVGG (Ding et al., CVPR 2021; DingXiaohan/RepVGG repvgg.py) structural re-parameterisation at toy size,
on a synthetic 4-class 12x12 image task.

The training-time ``RepVGGBlock`` is the repository's: a 3x3 ``conv_bn`` branch (an ``nn.Sequential`` with
``add_module('conv', ...)`` and ``add_module('bn', ...)``), a 1x1 ``conv_bn`` branch with ``padding - 3 // 2``,
and an identity ``BatchNorm2d`` branch only when ``out_channels == in_channels and stride == 1``, summed
before ``nn.ReLU``; grouped 3x3/1x1 convs (``groups=g``) on the layers the paper's ``g4_map`` picks.
``get_equivalent_kernel_bias`` fuses each branch by ``_fuse_bn_tensor`` (``std = (running_var +
eps).sqrt()``, ``t = (gamma / std).reshape(-1, 1, 1, 1)``, ``kernel * t, beta - running_mean * gamma / std``),
pads the 1x1 kernel by ``torch.nn.functional.pad(kernel1x1, [1, 1, 1, 1])``, builds the identity kernel from a
NumPy array (``kernel_value[i, i % input_dim, 1, 1] = 1``, ``torch.from_numpy(kernel_value).to(
branch.weight.device)``, kept as ``self.id_tensor``), and ``switch_to_deploy`` replaces the branches by one
``rbr_reparam`` conv (``param.detach_()``, ``self.__delattr__('rbr_dense')``, ``hasattr(self,
'rbr_identity')``); ``repvgg_model_convert`` walks ``model.modules()`` on a ``copy.deepcopy``. The network
follows ``RepVGG``: ``stage0`` then ``_make_stage`` stages of ``nn.ModuleList`` blocks (``strides = [stride] +
[1] * (num_blocks - 1)``), ``nn.AdaptiveAvgPool2d(output_size=1)``, ``out.view(out.size(0), -1)`` and a
``nn.Linear``. Training uses SGD with momentum + weight decay, ``CosineAnnealingLR`` and
``nn.CrossEntropyLoss(label_smoothing=0.1)``.

Checked: accuracy after training, that the deployed model's logits equal the multi-branch eval-mode logits
(max abs diff, float32 and again in float64), the per-block fused kernel against ``F.conv2d`` of the three
branches, the ``state_dict`` keys after deploy (only ``rbr_reparam`` and the head), the parameter counts
before and after, and that deploy-mode conversion leaves the training model untouched.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


def conv_bn(in_channels, out_channels, kernel_size, stride, padding, groups=1):
    result = nn.Sequential()
    result.add_module('conv', nn.Conv2d(in_channels=in_channels, out_channels=out_channels,
                                        kernel_size=kernel_size, stride=stride, padding=padding, groups=groups,
                                        bias=False))
    result.add_module('bn', nn.BatchNorm2d(num_features=out_channels))
    return result


class RepVGGBlock(nn.Module):

    def __init__(self, in_channels, out_channels, kernel_size,
                 stride=1, padding=0, dilation=1, groups=1, padding_mode='zeros', deploy=False):
        super(RepVGGBlock, self).__init__()  # noqa: UP008  (the repository's spelling)
        self.deploy = deploy
        self.groups = groups
        self.in_channels = in_channels

        assert kernel_size == 3
        assert padding == 1

        padding_11 = padding - kernel_size // 2

        self.nonlinearity = nn.ReLU()
        self.se = nn.Identity()

        if deploy:
            self.rbr_reparam = nn.Conv2d(in_channels=in_channels, out_channels=out_channels,
                                         kernel_size=kernel_size, stride=stride, padding=padding,
                                         dilation=dilation, groups=groups, bias=True, padding_mode=padding_mode)
        else:
            self.rbr_identity = (nn.BatchNorm2d(num_features=in_channels)
                                 if out_channels == in_channels and stride == 1 else None)
            self.rbr_dense = conv_bn(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                                     stride=stride, padding=padding, groups=groups)
            self.rbr_1x1 = conv_bn(in_channels=in_channels, out_channels=out_channels, kernel_size=1,
                                   stride=stride, padding=padding_11, groups=groups)

    def forward(self, inputs):
        if hasattr(self, 'rbr_reparam'):
            return self.nonlinearity(self.se(self.rbr_reparam(inputs)))

        if self.rbr_identity is None:
            id_out = 0
        else:
            id_out = self.rbr_identity(inputs)

        return self.nonlinearity(self.se(self.rbr_dense(inputs) + self.rbr_1x1(inputs) + id_out))

    #   This func derives the equivalent kernel and bias in a DIFFERENTIABLE way.
    #   You can get the equivalent kernel and bias at any time and do whatever you want,
    #   for example, apply some penalties or constraints during training, just like you do to the other models.
    #   May be useful for quantization or pruning.
    def get_equivalent_kernel_bias(self):
        kernel3x3, bias3x3 = self._fuse_bn_tensor(self.rbr_dense)
        kernel1x1, bias1x1 = self._fuse_bn_tensor(self.rbr_1x1)
        kernelid, biasid = self._fuse_bn_tensor(self.rbr_identity)
        return kernel3x3 + self._pad_1x1_to_3x3_tensor(kernel1x1) + kernelid, bias3x3 + bias1x1 + biasid

    def _pad_1x1_to_3x3_tensor(self, kernel1x1):
        if kernel1x1 is None:
            return 0
        else:
            return torch.nn.functional.pad(kernel1x1, [1, 1, 1, 1])

    def _fuse_bn_tensor(self, branch):
        if branch is None:
            return 0, 0
        if isinstance(branch, nn.Sequential):
            kernel = branch.conv.weight
            running_mean = branch.bn.running_mean
            running_var = branch.bn.running_var
            gamma = branch.bn.weight
            beta = branch.bn.bias
            eps = branch.bn.eps
        else:
            assert isinstance(branch, nn.BatchNorm2d)
            if not hasattr(self, 'id_tensor'):
                input_dim = self.in_channels // self.groups
                kernel_value = np.zeros((self.in_channels, input_dim, 3, 3), dtype=np.float32)
                for i in range(self.in_channels):
                    kernel_value[i, i % input_dim, 1, 1] = 1
                self.id_tensor = torch.from_numpy(kernel_value).to(branch.weight.device)
            kernel = self.id_tensor
            running_mean = branch.running_mean
            running_var = branch.running_var
            gamma = branch.weight
            beta = branch.bias
            eps = branch.eps
        std = (running_var + eps).sqrt()
        t = (gamma / std).reshape(-1, 1, 1, 1)
        return kernel * t, beta - running_mean * gamma / std

    def switch_to_deploy(self):
        if hasattr(self, 'rbr_reparam'):
            return
        kernel, bias = self.get_equivalent_kernel_bias()
        self.rbr_reparam = nn.Conv2d(in_channels=self.rbr_dense.conv.in_channels,
                                     out_channels=self.rbr_dense.conv.out_channels,
                                     kernel_size=self.rbr_dense.conv.kernel_size, stride=self.rbr_dense.conv.stride,
                                     padding=self.rbr_dense.conv.padding, dilation=self.rbr_dense.conv.dilation,
                                     groups=self.rbr_dense.conv.groups, bias=True)
        self.rbr_reparam.weight.data = kernel
        self.rbr_reparam.bias.data = bias
        for para in self.parameters():
            para.detach_()
        self.__delattr__('rbr_dense')
        self.__delattr__('rbr_1x1')
        if hasattr(self, 'rbr_identity'):
            self.__delattr__('rbr_identity')
        if hasattr(self, 'id_tensor'):
            self.__delattr__('id_tensor')
        self.deploy = True


class RepVGG(nn.Module):

    def __init__(self, num_blocks, num_classes=1000, width_multiplier=None, override_groups_map=None,
                 deploy=False):
        super(RepVGG, self).__init__()  # noqa: UP008
        assert len(width_multiplier) == 4
        self.deploy = deploy
        self.override_groups_map = override_groups_map or dict()
        assert 0 not in self.override_groups_map

        self.in_planes = min(8, int(8 * width_multiplier[0]))
        self.stage0 = RepVGGBlock(in_channels=3, out_channels=self.in_planes, kernel_size=3, stride=1, padding=1,
                                  deploy=self.deploy)
        self.cur_layer_idx = 1
        self.stage1 = self._make_stage(int(8 * width_multiplier[0]), num_blocks[0], stride=1)
        self.stage2 = self._make_stage(int(16 * width_multiplier[1]), num_blocks[1], stride=2)
        self.stage3 = self._make_stage(int(16 * width_multiplier[2]), num_blocks[2], stride=1)
        self.stage4 = self._make_stage(int(32 * width_multiplier[3]), num_blocks[3], stride=2)
        self.gap = nn.AdaptiveAvgPool2d(output_size=1)
        self.linear = nn.Linear(int(32 * width_multiplier[3]), num_classes)

    def _make_stage(self, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        blocks = []
        for stride in strides:
            cur_groups = self.override_groups_map.get(self.cur_layer_idx, 1)
            blocks.append(RepVGGBlock(in_channels=self.in_planes, out_channels=planes, kernel_size=3,
                                      stride=stride, padding=1, groups=cur_groups, deploy=self.deploy))
            self.in_planes = planes
            self.cur_layer_idx += 1
        return nn.ModuleList(blocks)

    def forward(self, x):
        out = self.stage0(x)
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4):
            for block in stage:
                out = block(out)
        out = self.gap(out)
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


optional_groupwise_layers = [2, 4, 6]
g4_map = {layer: 4 for layer in optional_groupwise_layers}


def create_RepVGG_toy(deploy=False):
    return RepVGG(num_blocks=[1, 2, 2, 1], num_classes=4, width_multiplier=[1, 1, 1, 1],
                  override_groups_map=g4_map, deploy=deploy)


#   Use this for converting a RepVGG model or a bigger model with RepVGG as its component
#   Use like this
#   model = create_RepVGG_A0(deploy=False)
#   train model or load weights
#   repvgg_model_convert(model, save_path='repvgg_deploy.pth')
#   If you want to preserve the original model, call with do_copy=True
def repvgg_model_convert(model: torch.nn.Module, save_path=None, do_copy=True):
    if do_copy:
        model = copy.deepcopy(model)
    for module in model.modules():
        if hasattr(module, 'switch_to_deploy'):
            module.switch_to_deploy()
    if save_path is not None:
        torch.save(model.state_dict(), save_path)
    return model


# ------------------------------------------------------------------ data: 4 classes of oriented stripes/blobs
def make_data(n, rs):
    yy, xx = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
    patterns = np.stack([np.sin(xx * 1.2), np.sin(yy * 1.2), np.sin((xx + yy) * 0.9),
                         np.exp(-((xx - 5.5) ** 2 + (yy - 5.5) ** 2) / 8.0) * 2 - 0.5]).astype(np.float32)
    labels = rs.randint(0, 4, size=n)
    colours = rs.uniform(0.5, 1.5, size=(n, 3, 1, 1)).astype(np.float32)
    x = patterns[labels][:, None] * colours + 2.0 * rs.randn(n, 3, 12, 12).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(labels).long()


rs = np.random.RandomState(seed)
x_train, y_train = make_data(384, rs)
x_test, y_test = make_data(256, rs)

model = create_RepVGG_toy()
n_params_train = sum(p.numel() for p in model.parameters())
print(f"train-time RepVGG: {n_params_train} parameters, "
      f"{sum(1 for m in model.modules() if isinstance(m, nn.Conv2d))} convs, "
      f"{sum(1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))} BNs")
groups = sorted({m.rbr_dense.conv.groups for m in model.modules() if isinstance(m, RepVGGBlock)})
print(f"conv groups used: {groups}")

criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
epochs, bs = 4, 32
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * (len(x_train) // bs))
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(len(x_train))
    total = 0.0
    for i in range(0, len(x_train), bs):
        idx = perm[i:i + bs]
        output = model(x_train[idx])
        loss = criterion(output, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
    print(f"epoch {epoch} loss {total / len(x_train):.4f} lr {scheduler.get_last_lr()[0]:.5f}")

model.eval()
with torch.no_grad():
    train_logits = model(x_test)
acc = (train_logits.argmax(1) == y_test).float().mean().item()
print(f"multi-branch eval accuracy {acc:.4f}")

# ------------------------------------------------------------------ per-block: fused kernel vs the three branches
block = model.stage1[0]
probe = torch.randn(2, block.in_channels, 6, 6)
with torch.no_grad():
    k, b = block.get_equivalent_kernel_bias()
    fused = F.conv2d(probe, k, b, stride=1, padding=1, groups=block.groups)
    branches = block.rbr_dense(probe) + block.rbr_1x1(probe) + block.rbr_identity(probe)
block_diff = (fused - branches).abs().max().item()
print(f"stage1[0] fused kernel {tuple(k.shape)} vs branches: max |diff| = {block_diff:.2e}")
k_grad, _ = model.stage2[1].get_equivalent_kernel_bias()
print(f"equivalent kernel differentiable: requires_grad={k_grad.requires_grad}, grad_fn set={k_grad.grad_fn is not None}")

# ------------------------------------------------------------------ deploy
keys_before = set(model.state_dict().keys())
deploy_model = repvgg_model_convert(model)
deploy_model.eval()
with torch.no_grad():
    deploy_logits = deploy_model(x_test)
deploy_diff = (deploy_logits - train_logits).abs().max().item()
deploy_acc = (deploy_logits.argmax(1) == y_test).float().mean().item()
print(f"deployed vs multi-branch logits: max |diff| = {deploy_diff:.2e}, accuracy {deploy_acc:.4f}")

keys_after = list(deploy_model.state_dict().keys())
expected = set()
for name, m in deploy_model.named_modules():
    if isinstance(m, RepVGGBlock):
        expected |= {f"{name}.rbr_reparam.weight", f"{name}.rbr_reparam.bias"}
expected |= {"linear.weight", "linear.bias"}
keys_ok = set(keys_after) == expected
print(f"state_dict after deploy: {len(keys_after)} keys (before {len(keys_before)}), only rbr_reparam + head: {keys_ok}")
print(f"first keys: {keys_after[:3]}")
n_params_deploy = sum(p.numel() for p in deploy_model.parameters())
print(f"parameters {n_params_train} -> {n_params_deploy}; convs after deploy "
      f"{sum(1 for m in deploy_model.modules() if isinstance(m, nn.Conv2d))}, BNs "
      f"{sum(1 for m in deploy_model.modules() if isinstance(m, nn.BatchNorm2d))}")
leaves = all(p.is_leaf and not p.grad_fn for p in deploy_model.parameters())
untouched = all(hasattr(m, 'rbr_dense') for m in model.modules() if isinstance(m, RepVGGBlock))
print(f"deployed parameters are leaves: {leaves}; the training model keeps its branches: {untouched}")

# the deploy-mode constructor, loaded from the converted weights
fresh = create_RepVGG_toy(deploy=True)
missing = fresh.load_state_dict(deploy_model.state_dict())
fresh.eval()
with torch.no_grad():
    fresh_equal = torch.equal(fresh(x_test), deploy_logits)
print(f"create_RepVGG_toy(deploy=True) loads it ({missing}), same logits: {fresh_equal}")

# ------------------------------------------------------------------ float64 check
model64 = copy.deepcopy(model).double().eval()
deploy64 = repvgg_model_convert(model64).eval()
with torch.no_grad():
    x64 = x_test[:32].double()
    diff64 = (deploy64(x64) - model64(x64)).abs().max().item()
print(f"float64: deployed vs multi-branch max |diff| = {diff64:.2e}")

equivalent = deploy_diff < 1e-4 and diff64 < 1e-10 and block_diff < 1e-5
print(f"FINAL acc={acc:.4f} deploy_acc={deploy_acc:.4f} equivalent={int(equivalent)} keys_ok={int(keys_ok)} "
      f"fresh_equal={int(fresh_equal)} params_train={n_params_train} params_deploy={n_params_deploy}")
