"""Two tutorials a new user runs first (pytorch.org): the Quickstart (a ``NeuralNetwork`` of
``nn.Flatten`` + an ``nn.Sequential`` of Linear/ReLU, its ``train``/``test`` loops with the
``f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]"`` and ``f"Accuracy: {(100*correct):>0.1f}%"`` lines,
``(pred.argmax(1) == y).type(torch.float).sum().item()``, ``torch.save(model.state_dict(),
"model.pth")`` and ``load_state_dict(torch.load("model.pth", weights_only=True))``, a prediction
read off ``classes[pred[0].argmax(0)]``) and the Transfer Learning tutorial's ``train_model``
(train/val phases with ``torch.set_grad_enabled(phase == 'train')``, ``torch.max(outputs, 1)``,
``running_corrects += torch.sum(preds == labels.data)``, ``running_corrects.double() /
dataset_sizes[phase]`` formatted by ``f"{epoch_acc:.4f}"``, the best weights by
``copy.deepcopy(model.state_dict())``, ``lr_scheduler.StepLR(step_size=7, gamma=0.1)``), used to
fine-tune a small "pretrained" backbone whose head is replaced by ``model.fc = nn.Linear(num_ftrs,
2)``, then as a fixed feature extractor (``param.requires_grad = False``). Synthetic images made with
NumPy stand in for FashionMNIST and hymenoptera; the backbone is pretrained here on a 10-class task.
For the small data the Quickstart uses lr=1e-2 and prints every 5th batch (the tutorial: 1e-3, 100th),
and train_model runs 9 epochs (its 25).
"""

import copy
import os
import tempfile

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
workdir = tempfile.mkdtemp()
os.chdir(workdir)

# ten clothing-like classes: a per-class pattern of bars plus noise, 28x28 grayscale in [0, 1]
rng = np.random.RandomState(3)
patterns = (rng.rand(10, 7, 7) > 0.6).astype("float32")


class SyntheticFashion(Dataset):
    """(image (1, 28, 28) float32, label int), as torchvision's FashionMNIST with ToTensor gives."""

    def __init__(self, count, noise_seed):
        noise = np.random.RandomState(noise_seed)
        self.labels = noise.randint(0, 10, count)
        images = np.kron(patterns[self.labels], np.ones((1, 4, 4), "float32"))
        images = 0.7 * images + 0.3 * noise.rand(count, 28, 28).astype("float32")
        self.images = images[:, None]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return torch.from_numpy(self.images[idx]), int(self.labels[idx])


training_data = SyntheticFashion(1024, 10)
test_data = SyntheticFashion(256, 11)

# -- Quickstart
batch_size = 64

# the data loaders
train_dataloader = DataLoader(training_data, batch_size=batch_size)
test_dataloader = DataLoader(test_data, batch_size=batch_size)

for X, y in test_dataloader:
    print(f"Shape of X [N, C, H, W]: {X.shape}")
    print(f"Shape of y: {y.shape} {y.dtype}")
    break

# the accelerator (CUDA, MPS, MTIA, XPU) when there is one, else the CPU
device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
print(f"Using {device} device")


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28*28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10)
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


model = NeuralNetwork().to(device)
print(model)

loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)

        # the prediction error
        pred = model(X)
        loss = loss_fn(pred, y)

        # backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        if batch % 5 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return correct, test_loss


epochs = 5
for t in range(epochs):
    print(f"Epoch {t+1}\n-------------------------------")
    train(train_dataloader, model, loss_fn, optimizer)
    quick_acc, quick_loss = test(test_dataloader, model, loss_fn)
print("Done!")

torch.save(model.state_dict(), "model.pth")
print("Saved PyTorch Model State to model.pth")

model = NeuralNetwork().to(device)
model.load_state_dict(torch.load("model.pth", weights_only=True))

classes = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

model.eval()
x, y = test_data[0][0], test_data[0][1]
with torch.no_grad():
    x = x.to(device)
    pred = model(x)
    predicted, actual = classes[pred[0].argmax(0)], classes[y]
    print(f'Predicted: "{predicted}", Actual: "{actual}"')
reloaded_acc, _ = test(test_dataloader, model, loss_fn)
print("reloaded model agrees", reloaded_acc == quick_acc)


# -- Transfer Learning: a small "pretrained" backbone in place of resnet18
class TinyResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16),
                                    nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


pretrained = TinyResNet()
pretrain_opt = torch.optim.SGD(pretrained.parameters(), lr=0.05, momentum=0.9)
pretrained.train()
for X, y in DataLoader(training_data, batch_size=batch_size, shuffle=True):
    pretrain_opt.zero_grad()
    loss_fn(pretrained(X), y).backward()
    pretrain_opt.step()
torch.save(pretrained.state_dict(), "tinyresnet_pretrained.pth")


def pretrained_backbone():
    model = TinyResNet()
    model.load_state_dict(torch.load("tinyresnet_pretrained.pth", weights_only=True))
    return model


# the two-class task ("ants" and "bees"): classes 0-4 against 5-9 of fresh images
class TwoClass(Dataset):
    def __init__(self, count, noise_seed):
        self.base = SyntheticFashion(count, noise_seed)

    def __len__(self):
        return len(self.base)

    def __getitem__(self, idx):
        image, label = self.base[idx]
        return image, int(label >= 5)


image_datasets = {"train": TwoClass(192, 20), "val": TwoClass(96, 21)}
dataloaders = {x: DataLoader(image_datasets[x], batch_size=16, shuffle=True) for x in ["train", "val"]}
dataset_sizes = {x: len(image_datasets[x]) for x in ["train", "val"]}
class_names = ["ants", "bees"]
print(dataset_sizes, class_names)


def train_model(model, criterion, optimizer, scheduler, num_epochs=25):
    best_model_wts = copy.deepcopy(model.state_dict())
    best_acc = 0.0

    for epoch in range(num_epochs):
        print(f"Epoch {epoch}/{num_epochs - 1}")
        print("-" * 10)

        # a training and a validation phase per epoch
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()  # training mode
            else:
                model.eval()   # evaluation mode

            running_loss = 0.0
            running_corrects = 0

            # over the data
            for inputs, labels in dataloaders[phase]:
                inputs = inputs.to(device)
                labels = labels.to(device)

                # the parameter gradients to zero
                optimizer.zero_grad()

                # forward, recording history in training only
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)

                    # backward + optimize in training only
                    if phase == "train":
                        loss.backward()
                        optimizer.step()

                # statistics
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == "train":
                scheduler.step()

            epoch_loss = running_loss / dataset_sizes[phase]
            epoch_acc = running_corrects.double() / dataset_sizes[phase]

            print(f"{phase} Loss: {epoch_loss:.4f} Acc: {epoch_acc:.4f}")

            # a deep copy of the best model so far
            if phase == "val" and epoch_acc > best_acc:
                best_acc = epoch_acc
                best_model_wts = copy.deepcopy(model.state_dict())

        print()

    print("Training complete")  # (the tutorial's elapsed time left out: wall-clock numbers are not compared)
    print(f"Best val Acc: {best_acc:4f}")

    # the best weights back in the model
    model.load_state_dict(best_model_wts)
    return model, best_acc


# fine-tuning the whole network
model_ft = pretrained_backbone()
num_ftrs = model_ft.fc.in_features
# the new head: two outputs here, nn.Linear(num_ftrs, len(class_names)) in general
model_ft.fc = nn.Linear(num_ftrs, 2)

model_ft = model_ft.to(device)

criterion = nn.CrossEntropyLoss()

# every parameter is optimized
optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.01, momentum=0.9)

# the learning rate decays by a factor of 0.1 every 7 epochs
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=7, gamma=0.1)

model_ft, best_ft = train_model(model_ft, criterion, optimizer_ft, exp_lr_scheduler, num_epochs=9)

# the backbone as a fixed feature extractor: only the new head learns
model_conv = pretrained_backbone()
for param in model_conv.parameters():
    param.requires_grad = False

# a new module's parameters have requires_grad=True by default
num_ftrs = model_conv.fc.in_features
model_conv.fc = nn.Linear(num_ftrs, 2)

model_conv = model_conv.to(device)

criterion = nn.CrossEntropyLoss()

# only the final layer's parameters are optimized, unlike before
optimizer_conv = torch.optim.SGD(model_conv.fc.parameters(), lr=0.01, momentum=0.9)

# the learning rate decays by a factor of 0.1 every 7 epochs
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_conv, step_size=7, gamma=0.1)

model_conv, best_conv = train_model(model_conv, criterion, optimizer_conv, exp_lr_scheduler, num_epochs=9)
print(sum(p.requires_grad for p in model_conv.parameters()), optimizer_conv.param_groups[0]["lr"])

print(f"FINAL quick_acc={quick_acc:.4f} quick_loss={quick_loss:.4f} best_ft={best_ft.item():.4f} "
      f"best_conv={best_conv.item():.4f}")
