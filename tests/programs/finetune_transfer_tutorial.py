"""The official "Transfer Learning for Computer Vision" and "Finetuning TorchVision Models" tutorials,
without torchvision: a small ResNet-shaped CNN (``conv1``/``bn1``/``relu``/``layer1``/``layer2``/``avgpool``/
``fc``) stands in for ``models.resnet18(weights='IMAGENET1K_V1')``.

"Pretraining": the CNN learns synthetic task A (four texture classes: horizontal stripes, vertical stripes,
checkerboards, blobs) and is saved by ``torch.save(model.state_dict(), buf)`` into an ``io.BytesIO``. Task B is
the tutorial's "ants vs bees": two classes (horizontal- vs vertical-striped images with three times task A's
noise), with a 24-image train set and a val set in ``dataloaders = {x:
DataLoader(image_datasets[x], batch_size=4, shuffle=True) for x in ['train', 'val']}``.

Three runs of the tutorials' ``train_model`` (``for phase in ['train', 'val']``, ``model.train()``/
``model.eval()``, ``with torch.set_grad_enabled(phase == 'train')``, ``_, preds = torch.max(outputs, 1)``,
``running_corrects += torch.sum(preds == labels.data)``, ``running_corrects.double() / dataset_sizes[phase]``,
``best_model_wts = copy.deepcopy(model.state_dict())``, ``val_acc_history``, ``lr_scheduler.StepLR(step_size=7,
gamma=0.1)``, ``time.time()`` printouts): finetuning the whole reloaded network with a new ``model.fc =
nn.Linear(num_ftrs, 2)``; feature extraction (``set_parameter_requires_grad``: ``param.requires_grad = False``
for every parameter, then the new ``fc``, ``params_to_update`` gathered by ``named_parameters()`` with
``requires_grad``); and the same network from scratch.

Checked: the reloaded state_dict equals the saved one; feature extraction leaves every frozen parameter equal
to the pretrained one (``torch.equal``) while ``model.train()`` still moves BatchNorm's running statistics;
only ``fc.weight``/``fc.bias`` are updated; the best weights reloaded by ``load_state_dict(best_model_wts)``
reproduce the best val accuracy; the val accuracies of the three runs.
"""

import copy
import io
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
SIZE = 16


def texture(kind, freq, colour, noise):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == 0:
        pattern = np.sin(freq * yy + phase)
    elif kind == 1:
        pattern = np.sin(freq * xx + phase)
    elif kind == 2:
        pattern = np.sin(freq * xx + phase) * np.sin(freq * yy + phase)
    else:
        cy, cx = rng.uniform(4, SIZE - 4, size=2)
        pattern = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0) * 2 - 0.5
    image = colour[:, None, None] * pattern[None] + noise * rng.randn(3, SIZE, SIZE)
    return image.astype(np.float32)


def task_a(n):
    labels = rng.randint(0, 4, size=n)
    images = np.stack([texture(k, rng.uniform(0.8, 1.4), rng.uniform(0.5, 1.0, size=3), 0.4) for k in labels])
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


def task_b(n):
    # "ants" (0): horizontal stripes, "bees" (1): vertical stripes, with three times the noise
    labels = rng.randint(0, 2, size=n)
    images = np.stack([texture(k, rng.uniform(0.8, 1.4), rng.uniform(0.5, 1.0, size=3), 1.2)
                       for k in labels])
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = BasicBlock(8, 8)
        self.layer2 = BasicBlock(8, 16, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def train_model(model, dataloaders, dataset_sizes, criterion, optimizer, scheduler, num_epochs=25):
    since = time.time()

    val_acc_history = []
    best_model_wts = copy.deepcopy(model.state_dict())
    best_acc = 0.0

    for epoch in range(num_epochs):
        print(f'Epoch {epoch}/{num_epochs - 1}')
        print('-' * 10)

        for phase in ['train', 'val']:
            if phase == 'train':
                model.train()
            else:
                model.eval()

            running_loss = 0.0
            running_corrects = 0

            for inputs, labels in dataloaders[phase]:
                inputs = inputs.to(device)
                labels = labels.to(device)

                optimizer.zero_grad()

                with torch.set_grad_enabled(phase == 'train'):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)

                    if phase == 'train':
                        loss.backward()
                        optimizer.step()

                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == 'train':
                scheduler.step()

            epoch_loss = running_loss / dataset_sizes[phase]
            epoch_acc = running_corrects.double() / dataset_sizes[phase]

            print(f'{phase} Loss: {epoch_loss:.4f} Acc: {epoch_acc:.4f}')

            if phase == 'val' and epoch_acc > best_acc:
                best_acc = epoch_acc
                best_model_wts = copy.deepcopy(model.state_dict())
            if phase == 'val':
                val_acc_history.append(epoch_acc)

        print()

    time_elapsed = time.time() - since
    print(f'Training complete in {time_elapsed // 60:.0f}m {time_elapsed % 60:.2f}s')
    print(f'Best val Acc: {best_acc:4f}')

    model.load_state_dict(best_model_wts)
    return model, val_acc_history, best_acc


def evaluate(model, loader):
    model.eval()
    corrects = 0
    with torch.no_grad():
        for inputs, labels in loader:
            _, preds = torch.max(model(inputs), 1)
            corrects += torch.sum(preds == labels.data)
    return corrects.double() / len(loader.dataset)


def set_parameter_requires_grad(model, feature_extracting):
    if feature_extracting:
        for param in model.parameters():
            param.requires_grad = False


# ---- "pretraining" on task A ----
pre_sets = {'train': task_a(256), 'val': task_a(128)}
pre_loaders = {x: DataLoader(pre_sets[x], batch_size=32, shuffle=True) for x in ['train', 'val']}
pre_sizes = {x: len(pre_sets[x]) for x in ['train', 'val']}
pretrained = TinyResNet(num_classes=4).to(device)
pre_opt = optim.SGD(pretrained.parameters(), lr=0.05, momentum=0.9)
pretrained, _, pre_acc = train_model(pretrained, pre_loaders, pre_sizes, nn.CrossEntropyLoss(), pre_opt,
                                     lr_scheduler.StepLR(pre_opt, step_size=7, gamma=0.1), num_epochs=6)
buf = io.BytesIO()
torch.save(pretrained.state_dict(), buf)
saved_state = copy.deepcopy(pretrained.state_dict())


def load_pretrained():
    buf.seek(0)
    model = TinyResNet(num_classes=4)
    model.load_state_dict(torch.load(buf, weights_only=True))
    return model


reloaded = load_pretrained()
reload_equal = int(all(torch.equal(v, saved_state[k]) for k, v in reloaded.state_dict().items()))
print(f'task A val acc {pre_acc:.4f}, reloaded state_dict equal: {reload_equal}, keys {len(saved_state)}')

# ---- task B: ants vs bees ----
image_datasets = {'train': task_b(24), 'val': task_b(96)}
dataloaders = {x: DataLoader(image_datasets[x], batch_size=4, shuffle=True) for x in ['train', 'val']}
dataset_sizes = {x: len(image_datasets[x]) for x in ['train', 'val']}
class_names = ['ants', 'bees']
print(f"dataset sizes train {dataset_sizes['train']} val {dataset_sizes['val']}, classes {len(class_names)}")
criterion = nn.CrossEntropyLoss()
NUM_EPOCHS = 10

# finetuning the convnet
model_ft = load_pretrained()
num_ftrs = model_ft.fc.in_features
model_ft.fc = nn.Linear(num_ftrs, len(class_names))
model_ft = model_ft.to(device)
optimizer_ft = optim.SGD(model_ft.parameters(), lr=0.01, momentum=0.9)
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=7, gamma=0.1)
model_ft, hist_ft, best_ft = train_model(model_ft, dataloaders, dataset_sizes, criterion, optimizer_ft,
                                         exp_lr_scheduler, num_epochs=NUM_EPOCHS)
final_lr_ft = optimizer_ft.param_groups[0]['lr']

# convnet as fixed feature extractor
model_conv = load_pretrained()
feature_extract = True
set_parameter_requires_grad(model_conv, feature_extract)
model_conv.fc = nn.Linear(num_ftrs, 2)
model_conv = model_conv.to(device)

params_to_update = model_conv.parameters()
print("Params to learn:")
if feature_extract:
    params_to_update = []
    for name, param in model_conv.named_parameters():
        if param.requires_grad:
            params_to_update.append(param)
            print("\t", name)
else:
    for name, param in model_conv.named_parameters():
        if param.requires_grad:
            print("\t", name)
n_trainable = sum(p.numel() for p in params_to_update)
n_frozen = sum(p.numel() for p in model_conv.parameters() if not p.requires_grad)
print(f'trainable {n_trainable} frozen {n_frozen}')

optimizer_conv = optim.SGD(params_to_update, lr=0.01, momentum=0.9)
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_conv, step_size=7, gamma=0.1)
model_conv, hist_conv, best_conv = train_model(model_conv, dataloaders, dataset_sizes, criterion, optimizer_conv,
                                               exp_lr_scheduler, num_epochs=NUM_EPOCHS)
frozen_equal = int(all(torch.equal(p, saved_state[name]) for name, p in model_conv.named_parameters()
                       if not name.startswith('fc.')))
bn_moved = int(not torch.equal(model_conv.bn1.running_mean, saved_state['bn1.running_mean']))
frozen_grads_none = int(all(p.grad is None for p in model_conv.parameters() if not p.requires_grad))
print(f'feature extractor: frozen params equal {frozen_equal}, bn running stats moved {bn_moved}, '
      f'frozen grads None {frozen_grads_none}')

# the same network from scratch
scratch_model = TinyResNet(num_classes=2).to(device)
scratch_optimizer = optim.SGD(scratch_model.parameters(), lr=0.01, momentum=0.9)
scratch_scheduler = lr_scheduler.StepLR(scratch_optimizer, step_size=7, gamma=0.1)
scratch_model, scratch_hist, best_scratch = train_model(scratch_model, dataloaders, dataset_sizes, criterion,
                                                        scratch_optimizer, scratch_scheduler, num_epochs=NUM_EPOCHS)

ohist = [h.cpu().numpy() for h in hist_conv]
shist = [h.cpu().numpy() for h in scratch_hist]
print("val acc per epoch, feature extraction:", " ".join(f"{h:.3f}" for h in ohist))
print("val acc per epoch, from scratch:      ", " ".join(f"{h:.3f}" for h in shist))

reeval_ft = evaluate(model_ft, dataloaders['val'])
best_reproduced = int(abs(reeval_ft.item() - best_ft.item()) < 1e-12)
print(f'best finetuned weights reloaded: val acc {reeval_ft:.4f} (best {best_ft:.4f})')

print(f"FINAL best_ft={best_ft:.4f} best_conv={best_conv:.4f} best_scratch={best_scratch:.4f} "
      f"mean_val_conv={np.mean(ohist):.4f} mean_val_scratch={np.mean(shist):.4f} pre_acc={pre_acc:.4f} "
      f"reload_equal={reload_equal} frozen_equal={frozen_equal} bn_moved={bn_moved} "
      f"frozen_grads_none={frozen_grads_none} best_reproduced={best_reproduced} final_lr_ft={final_lr_ft:.6f}")
