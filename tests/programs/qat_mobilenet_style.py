"""The pytorch.org "(beta) Static Quantization with Eager Mode in PyTorch" tutorial's
quantization-aware training section, at tiny sizes.

The tutorial's MobileNetV2 pieces (``ConvBNReLU`` as an ``nn.Sequential`` subclass,
``InvertedResidual`` with a depthwise conv and a residual through ``nn.quantized.FloatFunctional``,
``QuantStub``/``DeQuantStub``) trained briefly in float on synthetic 12x12 stroke images, then QAT
as the tutorial runs it: ``fuse_model(is_qat=True)`` by ``torch.ao.quantization.fuse_modules_qat``
(the BatchNorms kept inside ``ConvBnReLU2d``/``ConvBn2d``), ``qconfig =
get_default_qat_qconfig('x86')`` (fused moving-average fake quantizers, per-channel weights),
``prepare_qat(inplace=True)`` with the fake-quantized block printed, a few epochs of SGD with
``model.apply(torch.ao.quantization.disable_observer)`` after epoch 3 and
``model.apply(torch.nn.intrinsic.qat.freeze_bn_stats)`` after epoch 2, and after each epoch
``convert(qat_model.eval(), inplace=False)`` evaluated in int8; float vs int8 accuracy.
"""
# ruff: noqa: UP008, E721, UP004, UP031, UP032, F841  (the tutorial's own spelling: super(ConvBNReLU, self),
# type(m) == ConvBNReLU, AverageMeter(object), %- and .format-formatted prints, the unused loss in evaluate)

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


# ------------------------------------------------------------------ data: four kinds of stroke
def make_images(n):
    """12x12 images of a horizontal bar, a vertical bar, a diagonal or a cross, at random places,
    with noise; the label is the kind."""
    images = rng.normal(0.0, 0.4, (n, 1, 12, 12)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    for image, label in zip(images, labels):
        row, col = rng.integers(2, 10, 2)
        if label == 0:
            image[0, row, 1:11] += 1.5
        elif label == 1:
            image[0, 1:11, col] += 1.5
        elif label == 2:
            image[0, np.arange(12), np.arange(12)] += 1.5
        else:
            image[0, row, 2:10] += 1.5
            image[0, 2:10, col] += 1.5
    return torch.from_numpy(images), torch.from_numpy(labels)


train_images, train_labels = make_images(384)
test_images, test_labels = make_images(256)


def data_loader(images, labels, batch_size):
    return [(images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(images), batch_size)]


# ------------------------------------------------------------------ the tutorial's model, small
def _make_divisible(v, divisor, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_planes, out_planes, kernel_size=3, stride=1, groups=1):
        padding = (kernel_size - 1) // 2
        super(ConvBNReLU, self).__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes, momentum=0.1),
            # Replace with ReLU
            nn.ReLU(inplace=False)
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super(InvertedResidual, self).__init__()
        self.stride = stride
        assert stride in [1, 2]

        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup

        layers = []
        if expand_ratio != 1:
            # pw
            layers.append(ConvBNReLU(inp, hidden_dim, kernel_size=1))
        layers.extend([
            # dw
            ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            # pw-linear
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup, momentum=0.1),
        ])
        self.conv = nn.Sequential(*layers)
        # Replace torch.add with floatfunctional
        self.skip_add = nn.quantized.FloatFunctional()

    def forward(self, x):
        if self.use_res_connect:
            return self.skip_add.add(x, self.conv(x))
        else:
            return self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=4, width_mult=1.0, inverted_residual_setting=None, round_nearest=8):
        super(MobileNetV2, self).__init__()
        block = InvertedResidual
        input_channel = 16
        last_channel = 128

        if inverted_residual_setting is None:
            inverted_residual_setting = [
                # t, c, n, s
                [1, 16, 1, 1],
                [4, 32, 2, 2],
            ]

        input_channel = _make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features = [ConvBNReLU(1, input_channel, stride=1)]
        for t, c, n, s in inverted_residual_setting:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(block(input_channel, output_channel, stride, expand_ratio=t))
                input_channel = output_channel
        features.append(ConvBNReLU(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.quant = torch.ao.quantization.QuantStub()
        self.dequant = torch.ao.quantization.DeQuantStub()
        self.classifier = nn.Sequential(
            nn.Dropout(0.2),
            nn.Linear(self.last_channel, num_classes),
        )

        # weight initialization
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.quant(x)
        x = self.features(x)
        x = x.mean([2, 3])
        x = self.classifier(x)
        x = self.dequant(x)
        return x

    # Fuse Conv+BN and Conv+BN+Relu modules prior to quantization
    # This operation does not change the numerics
    def fuse_model(self, is_qat=False):
        fuse_modules = torch.ao.quantization.fuse_modules_qat if is_qat else torch.ao.quantization.fuse_modules
        for m in self.modules():
            if type(m) == ConvBNReLU:
                fuse_modules(m, ['0', '1', '2'], inplace=True)
            if type(m) == InvertedResidual:
                for idx in range(len(m.conv)):
                    if type(m.conv[idx]) == nn.Conv2d:
                        fuse_modules(m.conv, [str(idx), str(idx + 1)], inplace=True)


class AverageMeter(object):
    """Computes and stores the average and current value"""
    def __init__(self, name, fmt=':f'):
        self.name = name
        self.fmt = fmt
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)

        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))

        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


def evaluate(model, criterion, data_loader, neval_batches):
    model.eval()
    top1 = AverageMeter('Acc@1', ':6.2f')
    cnt = 0
    with torch.no_grad():
        for image, target in data_loader:
            output = model(image)
            loss = criterion(output, target)
            cnt += 1
            acc1, = accuracy(output, target, topk=(1,))
            top1.update(acc1[0], image.size(0))
            if cnt >= neval_batches:
                return top1
    return top1


def print_size_of_model(model):
    torch.save(model.state_dict(), "temp.p")
    size = os.path.getsize("temp.p")
    print("Size (KB):", size / 1e3)
    os.remove('temp.p')
    return size


# ------------------------------------------------------------------ train the float model
float_model = MobileNetV2()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(float_model.parameters(), lr=0.01)
train_loader = data_loader(train_images, train_labels, 32)
for epoch in range(3):
    float_model.train()
    for image, target in train_loader:
        loss = criterion(float_model(image), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch + 1}: train loss {loss.item():.4f}")

float_model.eval()
test_loader = data_loader(test_images, test_labels, 64)
num_eval_batches = len(test_loader)
num_calibration_batches = 4

float_top1 = evaluate(float_model, criterion, test_loader, neval_batches=num_eval_batches)
print('Evaluation accuracy on %d images, %2.2f' % (num_eval_batches * 64, float_top1.avg))

# ------------------------------------------------------------------ quantization-aware training
def train_one_epoch(model, criterion, optimizer, data_loader, device, ntrain_batches):
    model.train()
    top1 = AverageMeter('Acc@1', ':6.2f')
    avgloss = AverageMeter('Loss', '1.5f')

    cnt = 0
    for image, target in data_loader:
        cnt += 1
        image, target = image.to(device), target.to(device)
        output = model(image)
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        acc1, = accuracy(output, target, topk=(1,))
        top1.update(acc1[0], image.size(0))
        avgloss.update(loss, image.size(0))
        if cnt >= ntrain_batches:
            print('Loss', avgloss.avg)
            print('Training: * Acc@1 {top1.avg:.3f}'.format(top1=top1))
            return
    print('Full imagenet train set:  * Acc@1 {top1.global_avg:.3f}'.format(top1=top1))
    return


qat_model = copy.deepcopy(float_model)
qat_model.train()  # the tutorial's freshly loaded model is in train mode, as prepare_qat requires
qat_model.fuse_model(is_qat=True)

optimizer = torch.optim.SGD(qat_model.parameters(), lr=0.01, momentum=0.9)
# The old 'fbgemm' is still available but 'x86' is the recommended default.
qat_model.qconfig = torch.ao.quantization.get_default_qat_qconfig('x86')

torch.ao.quantization.prepare_qat(qat_model, inplace=True)
print('Inverted Residual Block: After preparation for QAT, note fake-quantization modules \n',
      qat_model.features[1].conv)

num_train_batches = 6
qat_accuracies = []
for nepoch in range(5):
    train_one_epoch(qat_model, criterion, optimizer, train_loader, torch.device('cpu'), num_train_batches)
    if nepoch > 2:
        # Freeze quantizer parameters
        qat_model.apply(torch.ao.quantization.disable_observer)
    if nepoch > 1:
        # Freeze batch norm mean and variance estimates
        qat_model.apply(torch.nn.intrinsic.qat.freeze_bn_stats)

    # Check the accuracy after each epoch
    quantized_model = torch.ao.quantization.convert(qat_model.eval(), inplace=False)
    quantized_model.eval()
    top1 = evaluate(quantized_model, criterion, test_loader, neval_batches=num_eval_batches)
    qat_accuracies.append(top1.avg.item())
    print('Epoch %d :Evaluation accuracy on %d images, %2.2f' % (nepoch, num_eval_batches * 64, top1.avg))

print(quantized_model.features[0])
print(type(quantized_model.features[1].conv[0]).__name__, type(quantized_model.features[1].conv[1]).__name__)
bn_frozen = all(not m.bn.training for m in qat_model.modules() if hasattr(m, 'freeze_bn') and m.freeze_bn)
observers_off = all(int(m.observer_enabled[0]) == 0 for m in qat_model.modules()
                    if isinstance(m, torch.ao.quantization.FakeQuantizeBase))
print(f"batch norms frozen: {bn_frozen}, observers off: {observers_off}")

with torch.no_grad():
    float_logits = float_model(test_images)
    qat_float_logits = qat_model(test_images)
    quantized_logits = quantized_model(test_images)
agreement = (qat_float_logits.argmax(1) == quantized_logits.argmax(1)).float().mean().item()
fake_vs_int8 = F.mse_loss(quantized_logits, qat_float_logits).item()
print(f"argmax agreement fake-quantized vs int8: {agreement:.4f}")

print(f"FINAL float_acc={float_top1.avg.item():.2f} qat_int8_acc={qat_accuracies[-1]:.2f} "
      f"best_qat_acc={max(qat_accuracies):.2f} argmax_agreement={agreement:.4f} fake_vs_int8_mse={fake_vs_int8:.6f}")
