"""The Adversarial Example Generation (FGSM) tutorial, shrunk: a small LeNet-style classifier
trained first (the tutorial loads a pretrained one), then attacked one test image at a time with
``data.requires_grad = True``, ``init_pred.item()`` skipping already-wrong images,
``model.zero_grad()``, ``data.grad.data`` and ``fgsm_attack`` (``.sign()``,
``torch.clamp(perturbed_image, 0, 1)``) on the image un-normalised by the ``denorm`` helper
(``torch.tensor(mean).to(device)`` + ``.view(1, -1, 1, 1)``), accuracy per epsilon, and the
adversarial examples collected with ``.squeeze().detach().cpu().numpy()``. Data are synthetic
16x16 "digits": ten fixed blurred glyphs with noise.
"""
# ruff: noqa: UP008, B006  (the tutorial's own spelling: super(Cls, self), str.format, list defaults)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

epsilons = [0, .05, .1, .15, .2, .25, .3]
use_cuda = True
print("CUDA Available: ", torch.cuda.is_available())
device = torch.device("cuda" if use_cuda and torch.cuda.is_available() else "cpu")

MEAN, STD = 0.1307, 0.3081
rng = np.random.RandomState(3)
glyphs = (rng.rand(10, 8, 8) > 0.5).astype(np.float32)


def make(n):
    labels = rng.randint(0, 10, size=n)
    images = np.kron(glyphs[labels], np.ones((2, 2), dtype=np.float32))[:, None]
    images = np.clip(0.8 * images + 0.25 * rng.randn(*images.shape), 0, 1).astype(np.float32)
    return torch.from_numpy((images - MEAN) / STD), torch.from_numpy(labels)


train_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(*make(512)), batch_size=64, shuffle=True)
test_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(*make(120)), batch_size=1, shuffle=True)


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(576, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


model = Net().to(device)
optimizer = optim.Adadelta(model.parameters(), lr=1.0)
for epoch in range(1, 4):
    model.train()
    for data, target in train_loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} train loss {loss.item():.4f}")

# Set the model in evaluation mode. In this case this is for the Dropout layers
model.eval()


# FGSM attack code
def fgsm_attack(image, epsilon, data_grad):
    # Collect the element-wise sign of the data gradient
    sign_data_grad = data_grad.sign()
    # Create the perturbed image by adjusting each pixel of the input image
    perturbed_image = image + epsilon*sign_data_grad
    # Adding clipping to maintain [0,1] range
    perturbed_image = torch.clamp(perturbed_image, 0, 1)
    # Return the perturbed image
    return perturbed_image


# restores the tensors to their original scale
def denorm(batch, mean=[0.1307], std=[0.3081]):
    if isinstance(mean, list):
        mean = torch.tensor(mean).to(device)
    if isinstance(std, list):
        std = torch.tensor(std).to(device)

    return batch * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)


def normalize(batch, mean=(0.1307,), std=(0.3081,)):
    # what transforms.Normalize((0.1307,), (0.3081,)) does to a batch
    mean = torch.as_tensor(mean, dtype=batch.dtype, device=batch.device)
    std = torch.as_tensor(std, dtype=batch.dtype, device=batch.device)
    return (batch - mean[None, :, None, None]) / std[None, :, None, None]


def test(model, device, test_loader, epsilon):

    # Accuracy counter
    correct = 0
    adv_examples = []

    # Loop over all examples in test set
    for data, target in test_loader:

        # Send the data and label to the device
        data, target = data.to(device), target.to(device)

        # Set requires_grad attribute of tensor. Important for Attack
        data.requires_grad = True

        # Forward pass the data through the model
        output = model(data)
        init_pred = output.max(1, keepdim=True)[1]  # get the index of the max log-probability

        # If the initial prediction is wrong, don't bother attacking, just move on
        if init_pred.item() != target.item():
            continue

        # Calculate the loss
        loss = F.nll_loss(output, target)

        # Zero all existing gradients
        model.zero_grad()

        # Calculate gradients of model in backward pass
        loss.backward()

        # Collect ``datagrad``
        data_grad = data.grad.data

        # Restore the data to its original scale
        data_denorm = denorm(data)

        # Call FGSM Attack
        perturbed_data = fgsm_attack(data_denorm, epsilon, data_grad)

        # Reapply normalization
        perturbed_data_normalized = normalize(perturbed_data)

        # Re-classify the perturbed image
        output = model(perturbed_data_normalized)

        # Check for success
        final_pred = output.max(1, keepdim=True)[1]  # get the index of the max log-probability
        if final_pred.item() == target.item():
            correct += 1
            # Special case for saving 0 epsilon examples
            if epsilon == 0 and len(adv_examples) < 5:
                adv_ex = perturbed_data.squeeze().detach().cpu().numpy()
                adv_examples.append((init_pred.item(), final_pred.item(), adv_ex))
        else:
            # Save some adv examples for visualization later
            if len(adv_examples) < 5:
                adv_ex = perturbed_data.squeeze().detach().cpu().numpy()
                adv_examples.append((init_pred.item(), final_pred.item(), adv_ex))

    # Calculate final accuracy for this epsilon
    final_acc = correct/float(len(test_loader))
    print(f"Epsilon: {epsilon}\tTest Accuracy = {correct} / {len(test_loader)} = {final_acc}")

    # Return the accuracy and an adversarial example
    return final_acc, adv_examples


accuracies = []
examples = []

# Run test for each epsilon
for eps in epsilons:
    acc, ex = test(model, device, test_loader, eps)
    accuracies.append(acc)
    examples.append(ex)

shapes = {ex[2].shape for row in examples for ex in row}
dtypes = {str(ex[2].dtype) for row in examples for ex in row}
print("examples", sum(len(row) for row in examples), sorted(shapes), sorted(dtypes))
drop = accuracies[0] - accuracies[-1]
print(f"FINAL acc_eps0={accuracies[0]:.4f} acc_eps20={accuracies[4]:.4f} acc_eps30={accuracies[-1]:.4f} drop={drop:.4f}")
