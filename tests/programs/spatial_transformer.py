"""The Spatial Transformer Networks tutorial, shrunk: a localisation net (Conv2d, MaxPool2d,
ReLU(True)) regressing a 2x3 affine matrix whose last Linear starts at the identity through
``fc_loc[2].weight.data.zero_()`` and ``bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0],
dtype=torch.float))``, ``F.affine_grid(theta, x.size())`` + ``F.grid_sample(x, grid)`` (default
align_corners, with torch's warning), Dropout2d, ``F.dropout(x, training=self.training)``,
``F.log_softmax`` + ``F.nll_loss``, Adam, and the test loop with ``reduction='sum'``,
``output.max(1, keepdim=True)[1]`` and ``pred.eq(target.view_as(pred)).sum().item()``.
The "MNIST" is synthetic: ten 8x8 glyphs placed at random shifts and scales in 28x28 images.
"""
# ruff: noqa: UP008, UP032  (the tutorial's own spelling: super(Cls, self), str.format, list defaults)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

rng = np.random.RandomState(1)
glyphs = (rng.rand(10, 8, 8) > 0.55).astype(np.float32)


def make_images(n):
    labels = rng.randint(0, 10, size=n)
    images = np.zeros((n, 1, 28, 28), dtype=np.float32)
    for k, label in enumerate(labels):
        scale = 2
        glyph = np.kron(glyphs[label], np.ones((scale, scale), dtype=np.float32))
        size = glyph.shape[0]
        top, left = rng.randint(2, 28 - size - 1, size=2)
        images[k, 0, top:top + size, left:left + size] = glyph
    images += 0.05 * rng.randn(*images.shape).astype(np.float32)
    images = (images - 0.1307) / 0.3081
    return torch.from_numpy(images), torch.from_numpy(labels).long()


train_set = torch.utils.data.TensorDataset(*make_images(1024))
test_set = torch.utils.data.TensorDataset(*make_images(256))
train_loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=True)
test_loader = torch.utils.data.DataLoader(test_set, batch_size=64, shuffle=True)


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

        # Spatial transformer localization-network
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=7),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(8, 10, kernel_size=5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True)
        )

        # Regressor for the 3 * 2 affine matrix
        self.fc_loc = nn.Sequential(
            nn.Linear(10 * 3 * 3, 32),
            nn.ReLU(True),
            nn.Linear(32, 3 * 2)
        )

        # Initialize the weights/bias with identity transformation
        self.fc_loc[2].weight.data.zero_()
        self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    # Spatial transformer network forward function
    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 10 * 3 * 3)
        theta = self.fc_loc(xs)
        theta = theta.view(-1, 2, 3)

        grid = F.affine_grid(theta, x.size())
        x = F.grid_sample(x, grid)

        return x

    def forward(self, x):
        # transform the input
        x = self.stn(x)

        # Perform the usual forward pass
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


model = Net().to(device)
optimizer = optim.Adam(model.parameters(), lr=1e-3)


def train(epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)

        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % 8 == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))


def test():
    with torch.no_grad():
        model.eval()
        test_loss = 0
        correct = 0
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)

            # sum up batch loss
            test_loss += F.nll_loss(output, target, reduction='sum').item()
            # get the index of the max log-probability
            pred = output.max(1, keepdim=True)[1]
            correct += pred.eq(target.view_as(pred)).sum().item()

        test_loss /= len(test_loader.dataset)
        print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'
              .format(test_loss, correct, len(test_loader.dataset),
                      100. * correct / len(test_loader.dataset)))
        return test_loss, correct / len(test_loader.dataset)


def convert_image_np(inp):
    """Convert a Tensor to numpy image."""
    inp = inp.numpy().transpose((1, 2, 0))
    mean = np.array([0.1307])
    std = np.array([0.3081])
    inp = std * inp + mean
    inp = np.clip(inp, 0, 1)
    return inp


def visualize_stn():
    with torch.no_grad():
        # Get a batch of training data
        data = next(iter(test_loader))[0].to(device)

        input_tensor = data.cpu()
        transformed_input_tensor = model.stn(data).cpu()

        in_grid = convert_image_np(input_tensor[0])
        out_grid = convert_image_np(transformed_input_tensor[0])
        print('stn images', in_grid.shape, out_grid.shape, out_grid.dtype)
        theta = model.fc_loc(model.localization(data).view(-1, 90)).view(-1, 2, 3)
        return (theta - torch.tensor([[1., 0, 0], [0, 1, 0]], device=device)).abs().mean().item()


for epoch in range(1, 5 + 1):
    train(epoch)
    test_loss, test_acc = test()

theta_shift = visualize_stn()
identity = torch.tensor([[[1., 0, 0], [0, 1, 0]]])
grid = F.affine_grid(identity, (1, 1, 28, 28), align_corners=False)
image = test_set[0][0].unsqueeze(0)
same = F.grid_sample(image, grid, align_corners=False)
print('identity grid_sample max error {:.2e}'.format((same - image).abs().max().item()))
print(f"FINAL loss={test_loss:.4f} acc={test_acc:.4f} theta_shift={theta_shift:.4f}")
