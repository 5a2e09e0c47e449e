"""The Learn-the-Basics pages a new user reads after the Quickstart (pytorch.org): Datasets &
DataLoaders (a map-style ``Dataset`` subclass, ``torch.randint(len(data), size=(1,)).item()``
sampling, ``next(iter(dataloader))``, ``img.squeeze()``), Transforms (the one-hot
``Lambda(lambda y: torch.zeros(10, dtype=torch.float).scatter_(0, torch.tensor(y), value=1))``),
Build the Model (``print(model)``, ``nn.Softmax(dim=1)(logits)``, ``pred_probab.argmax(1)``, the layers
one at a time on ``torch.rand(3, 28, 28)``: ``nn.Flatten``, ``nn.Linear``, ``nn.ReLU`` printed before
and after, ``nn.Sequential``, ``named_parameters()`` with ``param.size()``), Optimization (the
``train_loop``/``test_loop`` with ``torch.no_grad()`` and ``model.train()``/``model.eval()``) and Save
& Load (``torch.save(model.state_dict())``, ``torch.save(model)`` + ``torch.load(...,
weights_only=False)``). Synthetic images made with NumPy stand in for FashionMNIST; tensors whose
signs change with the seed are printed as lists (a tensor's repr pads its columns for a minus sign).
"""

import os
import tempfile

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
os.chdir(tempfile.mkdtemp())

labels_map = {
    0: "T-Shirt",
    1: "Trouser",
    2: "Pullover",
    3: "Dress",
    4: "Coat",
    5: "Sandal",
    6: "Shirt",
    7: "Sneaker",
    8: "Bag",
    9: "Ankle Boot",
}

rng = np.random.RandomState(4)
patterns = (rng.rand(10, 7, 7) > 0.6).astype("float32")


class Lambda:
    """torchvision.transforms.Lambda: a user function as a transform."""

    def __init__(self, lambd):
        self.lambd = lambd

    def __call__(self, x):
        return self.lambd(x)


class CustomImageDataset(Dataset):
    """The Datasets page's custom dataset: ``__len__``, and ``__getitem__`` applying the transforms."""

    def __init__(self, count, noise_seed, transform=None, target_transform=None):
        noise = np.random.RandomState(noise_seed)
        self.img_labels = noise.randint(0, 10, count)
        images = np.kron(patterns[self.img_labels], np.ones((1, 4, 4), "float32"))
        self.images = (0.7 * images + 0.3 * noise.rand(count, 28, 28)).astype("float32")[:, None]
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self):
        return len(self.img_labels)

    def __getitem__(self, idx):
        image = torch.from_numpy(self.images[idx])
        label = int(self.img_labels[idx])
        if self.transform:
            image = self.transform(image)
        if self.target_transform:
            label = self.target_transform(label)
        return image, label


training_data = CustomImageDataset(768, 40)
test_data = CustomImageDataset(256, 41)

# -- Datasets & DataLoaders
cols, rows = 3, 3
for i in range(1, cols * rows + 1):  # noqa: B007  (the tutorial's own loop: i places the subplot)
    sample_idx = torch.randint(len(training_data), size=(1,)).item()
    img, label = training_data[sample_idx]
    assert img.squeeze().shape == (28, 28) and labels_map[label] in labels_map.values()

train_dataloader = DataLoader(training_data, batch_size=64, shuffle=True)
test_dataloader = DataLoader(test_data, batch_size=64, shuffle=True)

train_features, train_labels = next(iter(train_dataloader))
print(f"Feature batch shape: {train_features.size()}")
print(f"Labels batch shape: {train_labels.size()}")
img = train_features[0].squeeze()
label = train_labels[0]
print(img.shape, label.dtype)

# -- Transforms: a one-hot target
ds = CustomImageDataset(
    16, 42,
    target_transform=Lambda(lambda y: torch.zeros(10, dtype=torch.float).scatter_(0, torch.tensor(y), value=1))
)
image, one_hot = ds[0]
print(one_hot.dtype, one_hot.shape, one_hot.sum().item(), one_hot.argmax().item() == ds.img_labels[0])

# -- Build the Model
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
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


model = NeuralNetwork().to(device)
print(model)

X = torch.rand(1, 28, 28, device=device)
logits = model(X)
pred_probab = nn.Softmax(dim=1)(logits)
y_pred = pred_probab.argmax(1)
print(f"Predicted class: {y_pred}")

input_image = torch.rand(3, 28, 28)
print(input_image.size())

flatten = nn.Flatten()
flat_image = flatten(input_image)
print(flat_image.size())

layer1 = nn.Linear(in_features=28*28, out_features=20)
hidden1 = layer1(flat_image)
print(hidden1.size())

print(f"Before ReLU: {hidden1.tolist()}\n\n")
hidden1 = nn.ReLU()(hidden1)
print(f"After ReLU: {hidden1}")

seq_modules = nn.Sequential(
    flatten,
    layer1,
    nn.ReLU(),
    nn.Linear(20, 10)
)
input_image = torch.rand(3, 28, 28)
logits = seq_modules(input_image)

softmax = nn.Softmax(dim=1)
pred_probab = softmax(logits)
print(pred_probab.shape, torch.allclose(pred_probab.sum(1), torch.ones(3)))

print(f"Model structure: {model}\n\n")

for name, param in model.named_parameters():
    print(f"Layer: {name} | Size: {param.size()} | Values : {param[:2].shape} \n")

# -- Optimizing Model Parameters
learning_rate = 1e-2
batch_size = 64
epochs = 4

loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)


def train_loop(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    # training mode: matters for batch normalization and dropout, set here as good practice
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        # prediction and loss
        pred = model(X)
        loss = loss_fn(pred, y)

        # backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        if batch % 4 == 0:
            loss, current = loss.item(), batch * batch_size + len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test_loop(dataloader, model, loss_fn):
    # evaluation mode, and no gradients: nothing is recorded for backpropagation
    model.eval()
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0

    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()

    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return correct, test_loss


for t in range(epochs):
    print(f"Epoch {t+1}\n-------------------------------")
    train_loop(train_dataloader, model, loss_fn, optimizer)
    accuracy, test_loss = test_loop(test_dataloader, model, loss_fn)
print("Done!")

# -- Save and Load the Model: weights only, then the whole model
torch.save(model.state_dict(), "model_weights.pth")

model2 = NeuralNetwork()
model2.load_state_dict(torch.load("model_weights.pth", weights_only=True))
model2.eval()

torch.save(model, "model.pth")
model3 = torch.load("model.pth", weights_only=False)
model3.eval()

with torch.no_grad():
    X, y = next(iter(DataLoader(test_data, batch_size=256)))
    same = [torch.equal(model.eval()(X), m(X)) for m in (model2, model3)]
print(type(model3).__name__, same)

print(f"FINAL accuracy={accuracy:.4f} test_loss={test_loss:.4f}")
