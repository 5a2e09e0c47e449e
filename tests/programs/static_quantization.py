"""The pytorch.org "(beta) Static Quantization with Eager Mode in PyTorch" tutorial, at tiny sizes.

The tutorial's MobileNetV2 pieces (``ConvBNReLU`` as an ``nn.Sequential`` subclass,
``InvertedResidual`` with a depthwise conv and a residual through ``nn.quantized.FloatFunctional``'s
``skip_add.add``, ``QuantStub``/``DeQuantStub`` around the network, ``x.mean([2, 3])`` pooling, a
``Dropout`` + ``Linear`` classifier) and its ``fuse_model`` (``torch.ao.quantization.fuse_modules``
of ``['0', '1', '2']`` and of each conv with its BatchNorm, ``inplace=True``), trained briefly on
synthetic 12x12 stroke images. Then post-training static quantization twice, as the tutorial does:
``default_qconfig`` (per-tensor MinMax observers) and ``get_default_qconfig('x86')`` (histogram
activations, per-channel weights): ``prepare(inplace=True)`` with the observer-laden block printed,
calibration by ``evaluate`` on training batches, ``convert(inplace=True)`` with the quantized block
printed, ``print_size_of_model`` by ``torch.save(model.state_dict(), "temp.p")`` +
``os.path.getsize``, and float vs int8 accuracy.
"""
# ruff: noqa: UP008, E721, UP004, UP031, F841  (the tutorial's own spelling: super(ConvBNReLU, self),
# type(m) == ConvBNReLU, AverageMeter(object), %-formatted prints, the unused loss in evaluate)

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
        fuse_modules = torch.ao.quantization.fuse_modules
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

print('\n Inverted Residual Block: Before fusion \n\n', float_model.features[1].conv)
float_top1 = evaluate(float_model, criterion, test_loader, neval_batches=num_eval_batches)
print('Evaluation accuracy on %d images, %2.2f' % (num_eval_batches * 64, float_top1.avg))
float_size = print_size_of_model(float_model)

# ------------------------------------------------------------------ post-training static quantization
myModel = copy.deepcopy(float_model)
myModel.eval()

# Fuse Conv, bn and relu
myModel.fuse_model()

# Note fusion of Conv+BN+Relu and Conv+Relu
print('\n Inverted Residual Block: After fusion\n\n', myModel.features[1].conv)
with torch.no_grad():
    fused_gap = (myModel(test_images) - float_model(test_images)).abs().max().item()
print(f"fusion changes the outputs by at most 1e-4: {fused_gap < 1e-4}")

# Specify quantization configuration
# Start with simple min/max range estimation and per-tensor quantization of weights
myModel.qconfig = torch.ao.quantization.default_qconfig
print(myModel.qconfig)
torch.ao.quantization.prepare(myModel, inplace=True)

# Calibrate first
print('Post Training Quantization Prepare: Inserting Observers')
print('\n Inverted Residual Block:After observer insertion \n\n', myModel.features[1].conv)

# Calibrate with the training set
evaluate(myModel, criterion, train_loader, neval_batches=num_calibration_batches)
print('Post Training Quantization: Calibration done')

# Convert to quantized model
torch.ao.quantization.convert(myModel, inplace=True)
print('Post Training Quantization: Convert done')
print('\n Inverted Residual Block: After fusion and quantization, note fused modules: \n\n',
      myModel.features[1].conv)

print("Size of model after quantization")
quantized_size = print_size_of_model(myModel)

top1 = evaluate(myModel, criterion, test_loader, neval_batches=num_eval_batches)
print('Evaluation accuracy on %d images, %2.2f' % (num_eval_batches * 64, top1.avg))

# ------------------------------------------------------------------ per-channel, x86 qconfig
per_channel_quantized_model = copy.deepcopy(float_model)
per_channel_quantized_model.eval()
per_channel_quantized_model.fuse_model()
# The old 'fbgemm' is still available but 'x86' is the recommended default.
per_channel_quantized_model.qconfig = torch.ao.quantization.get_default_qconfig('x86')
print(per_channel_quantized_model.qconfig)

torch.ao.quantization.prepare(per_channel_quantized_model, inplace=True)
evaluate(per_channel_quantized_model, criterion, train_loader, num_calibration_batches)
torch.ao.quantization.convert(per_channel_quantized_model, inplace=True)
print(per_channel_quantized_model.features[0])
print(per_channel_quantized_model.classifier)
print(type(per_channel_quantized_model.features[1].skip_add).__name__)
per_channel_top1 = evaluate(per_channel_quantized_model, criterion, test_loader, num_eval_batches)
print('Evaluation accuracy on %d images, %2.2f' % (num_eval_batches * 64, per_channel_top1.avg))

with torch.no_grad():
    float_logits = float_model(test_images)
    quantized_logits = per_channel_quantized_model(test_images)
    quantized_input = per_channel_quantized_model.quant(test_images[:2])
print(quantized_input.dtype, quantized_input.qscheme(), quantized_input.int_repr().dtype)
agreement = (float_logits.argmax(1) == quantized_logits.argmax(1)).float().mean().item()
logit_gap = F.mse_loss(quantized_logits, float_logits).item()
print(f"argmax agreement float vs int8: {agreement:.4f}")

print(f"FINAL float_acc={float_top1.avg.item():.2f} ptq_acc={top1.avg.item():.2f} "
      f"per_channel_acc={per_channel_top1.avg.item():.2f} size_ratio={quantized_size / float_size:.4f} "
      f"argmax_agreement={agreement:.4f} logit_mse={logit_gap:.5f}")
