"""pytorch/examples siamese_network and the contrastive-loss tutorials, shrunk: a pair Dataset that
picks same/different-class partners with ``torch.randint`` and ``random.randint`` over
``grouped_examples``, a backbone cut with ``nn.Sequential(*(list(net.children())[:-1]))``, its
``fc.in_features``, ``self.fc.apply(self.init_weights)`` with ``xavier_uniform_`` and
``m.bias.data.fill_(0.01)``, two heads: ``torch.cat`` of the two embeddings + ``BCELoss`` on a
Sigmoid (``torch.where(out > 0.5, 1, 0)`` accuracy, ``pred.eq(t.view_as(pred))``) and
``torch.abs(o1 - o2)`` + ``BCEWithLogitsLoss``; a hand-written ContrastiveLoss on
``F.pairwise_distance``; Adadelta + ``StepLR``. Data: synthetic 2-class-per-digit blobs.
"""

import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)

NUM_CLASSES, SIZE = 4, 12
rng = np.random.RandomState(0)
prototypes = rng.rand(NUM_CLASSES, 1, SIZE, SIZE) > 0.6


def make_split(n):
    labels = rng.randint(0, NUM_CLASSES, n)
    images = prototypes[labels] * 1.0 + 0.35 * rng.randn(n, 1, SIZE, SIZE)
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


class APP_MATCHER(Dataset):
    def __init__(self, data, targets):
        super().__init__()
        self.data, self.targets = data, targets
        self.group_examples()

    def group_examples(self):
        """Indices of the examples of each class, to draw pairs from."""
        np_arr = np.array(self.targets.clone())
        self.grouped_examples = {}
        for i in range(0, NUM_CLASSES):
            self.grouped_examples[i] = np.where(np_arr == i)[0]

    def __len__(self):
        return self.data.shape[0]

    def __getitem__(self, index):
        selected_class = random.randint(0, NUM_CLASSES - 1)
        random_index_1 = random.randint(0, self.grouped_examples[selected_class].shape[0] - 1)
        index_1 = self.grouped_examples[selected_class][random_index_1]
        image_1 = self.data[index_1].clone().float()

        # same class
        if index % 2 == 0:
            random_index_2 = random.randint(0, self.grouped_examples[selected_class].shape[0] - 1)
            while random_index_2 == random_index_1:
                random_index_2 = random.randint(0, self.grouped_examples[selected_class].shape[0] - 1)
            index_2 = self.grouped_examples[selected_class][random_index_2]
            image_2 = self.data[index_2].clone().float()
            target = torch.tensor(1, dtype=torch.float)
        # different class
        else:
            other_selected_class = random.randint(0, NUM_CLASSES - 1)
            while other_selected_class == selected_class:
                other_selected_class = random.randint(0, NUM_CLASSES - 1)
            random_index_2 = random.randint(0, self.grouped_examples[other_selected_class].shape[0] - 1)
            index_2 = self.grouped_examples[other_selected_class][random_index_2]
            image_2 = self.data[index_2].clone().float()
            target = torch.tensor(0, dtype=torch.float)
        return image_1, image_2, target


class SmallNet(nn.Module):
    """A classifier whose last child is ``fc``, cut off to serve as the backbone."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(64, 10)


class SiameseNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = SmallNet()
        self.fc_in_features = self.backbone.fc.in_features
        # remove the last layer (the classifier's fc)
        self.backbone = torch.nn.Sequential(*(list(self.backbone.children())[:-1]))
        self.fc = nn.Sequential(
            nn.Linear(self.fc_in_features * 2, 32),
            nn.ReLU(inplace=True),
            nn.Linear(32, 1),
        )
        self.sigmoid = nn.Sigmoid()
        self.backbone.apply(self.init_weights)
        self.fc.apply(self.init_weights)

    def init_weights(self, m):
        if isinstance(m, nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            m.bias.data.fill_(0.01)

    def forward_once(self, x):
        output = self.backbone(x)
        output = output.view(output.size()[0], -1)
        return output

    def forward(self, input1, input2):
        output1 = self.forward_once(input1)
        output2 = self.forward_once(input2)
        output = torch.cat((output1, output2), 1)
        output = self.fc(output)
        output = self.sigmoid(output)
        return output


class AbsDiffSiamese(nn.Module):
    """The other common head: a logit from the absolute difference of the embeddings."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 32), nn.ReLU(), nn.Linear(32, 16))
        self.out = nn.Linear(16, 1)

    def forward(self, x1, x2):
        o1, o2 = self.embed(x1), self.embed(x2)
        return self.out(torch.abs(o1 - o2)).squeeze(1), o1, o2


class ContrastiveLoss(torch.nn.Module):
    def __init__(self, margin=2.0):
        super().__init__()
        self.margin = margin

    def forward(self, output1, output2, label):
        # label 1 = same class here, so similar pairs are pulled together
        euclidean_distance = F.pairwise_distance(output1, output2, keepdim=True)
        loss_contrastive = torch.mean(label * torch.pow(euclidean_distance, 2)
                                      + (1 - label) * torch.pow(torch.clamp(self.margin - euclidean_distance, min=0.0), 2))
        return loss_contrastive


def train(model, device, train_loader, optimizer, epoch):
    model.train()
    criterion = nn.BCELoss()
    for batch_idx, (images_1, images_2, targets) in enumerate(train_loader):  # noqa: B007  (the example's own loop)
        images_1, images_2, targets = images_1.to(device), images_2.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = model(images_1, images_2).squeeze()
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
    print(f'Train Epoch: {epoch} [{len(train_loader.dataset)}/{len(train_loader.dataset)}]\tLoss: {loss.item():.6f}')


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    criterion = nn.BCELoss()
    with torch.no_grad():
        for (images_1, images_2, targets) in test_loader:
            images_1, images_2, targets = images_1.to(device), images_2.to(device), targets.to(device)
            outputs = model(images_1, images_2).squeeze()
            test_loss += criterion(outputs, targets).sum().item()  # sum up batch loss
            pred = torch.where(outputs > 0.5, 1, 0)  # get the index of the max log-probability
            correct += pred.eq(targets.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    print(f'Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)} '
          f'({100. * correct / len(test_loader.dataset):.0f}%)')
    return correct / len(test_loader.dataset)


device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
train_dataset = APP_MATCHER(*make_split(256))
test_dataset = APP_MATCHER(*make_split(128))
train_loader = DataLoader(train_dataset, batch_size=32, shuffle=True)
test_loader = DataLoader(test_dataset, batch_size=64, shuffle=False)

model = SiameseNetwork().to(device)
optimizer = optim.Adadelta(model.parameters(), lr=1.0)
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
for epoch in range(1, 5):
    train(model, device, train_loader, optimizer, epoch)
    accuracy = test(model, device, test_loader)
    scheduler.step()

# the abs-difference head with BCEWithLogits plus a contrastive term on the embeddings
abs_model = AbsDiffSiamese()
contrastive = ContrastiveLoss(margin=2.0)
bce = nn.BCEWithLogitsLoss()
optimizer = optim.Adam(abs_model.parameters(), lr=1e-2)
for epoch in range(1, 4):
    for images_1, images_2, targets in train_loader:
        logits, o1, o2 = abs_model(images_1, images_2)
        loss = bce(logits, targets) + 0.1 * contrastive(o1, o2, targets.unsqueeze(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"abs-diff epoch {epoch}: loss {loss.item():.4f}")
with torch.no_grad():
    correct = 0
    same_distance, other_distance = [], []
    for images_1, images_2, targets in test_loader:
        logits, o1, o2 = abs_model(images_1, images_2)
        correct += ((logits > 0).float() == targets).sum().item()
        distance = F.pairwise_distance(o1, o2)
        same_distance.append(distance[targets == 1])
        other_distance.append(distance[targets == 0])
    abs_accuracy = correct / len(test_dataset)
    gap = torch.cat(other_distance).mean() - torch.cat(same_distance).mean()
print(f"FINAL acc={accuracy:.4f} abs_acc={abs_accuracy:.4f} distance_gap={gap.item():.4f}")
