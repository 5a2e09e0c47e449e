"""Relation Networks (Santoro et al., 2017) on a small synthetic Sort-of-CLEVR, in the style of
kimhc6028/relational-networks.

The data: 18x18 images, a 4x4 square or a disc (the square less its corners) in each of four colours,
each in its own cell of a 3x3 grid and shifted inside it, on black, drawn with NumPy; for each image, questions encoded as 9-vectors (the
colour one-hot, relational or not, the question's subtype one-hot). Non-relational: the shape of
the object of that colour, whether it is on the left, whether it is at the top. Relational: the
shape of the object closest to it, of the one furthest from it, and how many objects share its
shape. Eight answers: square, circle, yes, no, 1..4.

The model: a CNN with ``BatchNorm2d`` and max pooling to a 3x3 grid of object features (one per cell), each with its
coordinates appended from ``torch.meshgrid(torch.linspace(-1, 1, d), ..., indexing='ij')`` stacked
and ``expand``-ed over the batch; all ordered object pairs by ``unsqueeze``/``expand`` along two
dims and ``torch.cat`` with the question (checked against kimhc6028's ``repeat`` version); the
g-MLP on the ``view(mb * n * n, -1)`` pairs, summed over pairs; the f-MLP with ``F.dropout`` and
``F.log_softmax``; ``F.nll_loss``, Adam. The repo's accuracy bookkeeping:
``output.data.max(1)[1]``, ``pred.eq(label.data).cpu().sum()``, ``correct * 100. / len(label)``.
A CNN+MLP baseline sees the same features flattened. Accuracy is reported separately for the
relational and the non-relational questions.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, CELL, OBJECT, NUM_COLOURS, QUESTION_DIM, NUM_ANSWERS = 18, 6, 4, 4, 9, 8
COLOURS = np.array([[1.0, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.2, 1.0], [1.0, 0.8, 0.1]], dtype=np.float32)
SQUARE, CIRCLE, YES, NO = 0, 1, 2, 3  # answers; counts 1..4 are answers 4..7
CORNERS = np.zeros((OBJECT, OBJECT), dtype=bool)
CORNERS[[0, 0, -1, -1], [0, -1, 0, -1]] = True


def make_image():
    """Four objects in distinct cells of a 3x3 grid, each shifted inside its cell by up to 2 pixels."""
    image = np.zeros((3, SIZE, SIZE), dtype=np.float32)
    cells = rng.choice((SIZE // CELL) ** 2, size=NUM_COLOURS, replace=False)
    centres, shapes = [], []
    for colour, cell in enumerate(cells):
        top = (cell // (SIZE // CELL)) * CELL + int(rng.integers(0, CELL - OBJECT + 1))
        left = (cell % (SIZE // CELL)) * CELL + int(rng.integers(0, CELL - OBJECT + 1))
        shape = int(rng.integers(0, 2))
        inside = np.ones((OBJECT, OBJECT), dtype=bool) if shape == SQUARE else ~CORNERS
        patch = image[:, top:top + OBJECT, left:left + OBJECT]
        patch[:, inside] = COLOURS[colour][:, None]
        centres.append((top + OBJECT / 2, left + OBJECT / 2))
        shapes.append(shape)
    return image, np.array(centres), np.array(shapes)


def question_vector(colour, relational, subtype):
    q = np.zeros(QUESTION_DIM, dtype=np.float32)
    q[colour] = 1
    q[NUM_COLOURS + relational] = 1
    q[NUM_COLOURS + 2 + subtype] = 1
    return q


def answer(centres, shapes, colour, relational, subtype):
    if not relational:
        if subtype == 0:
            return shapes[colour]
        if subtype == 1:
            return YES if centres[colour][1] < SIZE / 2 else NO
        return YES if centres[colour][0] < SIZE / 2 else NO
    distances = np.linalg.norm(centres - centres[colour], axis=1)
    if subtype == 0:
        distances[colour] = np.inf
        return shapes[int(distances.argmin())]
    if subtype == 1:
        return shapes[int(distances.argmax())]
    return 4 + int((shapes == shapes[colour]).sum()) - 1


def make_dataset(num_images, questions_per_image=4):
    images, questions, answers, relational_flags = [], [], [], []
    for _ in range(num_images):
        image, centres, shapes = make_image()
        for k in range(questions_per_image):
            relational = k % 2
            colour, subtype = int(rng.integers(0, NUM_COLOURS)), int(rng.integers(0, 3))
            images.append(image)
            questions.append(question_vector(colour, relational, subtype))
            answers.append(answer(centres, shapes, colour, relational, subtype))
            relational_flags.append(relational)
    return (torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(questions)),
            torch.from_numpy(np.array(answers)), torch.from_numpy(np.array(relational_flags, dtype=bool)))


class ConvInputModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.batchNorm1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.batchNorm2 = nn.BatchNorm2d(16)

    def forward(self, img):
        x = F.max_pool2d(self.batchNorm1(F.relu(self.conv1(img))), 2)  # 18 -> 9
        return F.max_pool2d(self.batchNorm2(F.relu(self.conv2(x))), 3)  # 9 -> 3: one cell each


class FCOutputModel(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, NUM_ANSWERS)

    def forward(self, x):
        x = F.relu(self.fc2(x))
        x = F.dropout(x, p=0.2, training=self.training)
        return F.log_softmax(self.fc3(x), dim=1)


class BasicModel(nn.Module):
    def train_(self, input_img, input_qst, label):
        self.optimizer.zero_grad()
        output = self(input_img, input_qst)
        loss = F.nll_loss(output, label)
        loss.backward()
        self.optimizer.step()
        pred = output.data.max(1)[1]
        correct = pred.eq(label.data).cpu().sum()
        accuracy = correct * 100. / len(label)
        return accuracy, loss

    def predict(self, input_img, input_qst):
        with torch.no_grad():
            return self(input_img, input_qst).max(1)[1]


class RN(BasicModel):
    def __init__(self, hidden=64, lr=3e-3):
        super().__init__()
        self.conv = ConvInputModel()
        object_dim = 16 + 2
        self.g = nn.Sequential(
            nn.Linear(2 * object_dim + QUESTION_DIM, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )
        self.f_fc1 = nn.Linear(hidden, hidden)
        self.fcout = FCOutputModel(hidden)
        self.optimizer = optim.Adam(self.parameters(), lr=lr)

    def objects(self, img):
        x = self.conv(img)  # (mb, c, d, d)
        mb, n_channels, d = x.size()[0], x.size()[1], x.size()[2]
        x_flat = x.view(mb, n_channels, d * d).permute(0, 2, 1)
        coords = torch.linspace(-1, 1, d)
        yy, xx = torch.meshgrid(coords, coords, indexing='ij')
        coord = torch.stack([xx, yy], dim=-1).view(1, d * d, 2)
        return torch.cat([x_flat, coord.expand(mb, -1, -1)], 2)

    def pairs(self, x_flat, qst):
        mb, n, _ = x_flat.shape
        x_i = x_flat.unsqueeze(1).expand(-1, n, -1, -1)  # object j along dim 2
        x_j = x_flat.unsqueeze(2).expand(-1, -1, n, -1)  # object i along dim 1
        q = qst.unsqueeze(1).unsqueeze(2).expand(-1, n, n, -1)
        return torch.cat([x_i, x_j, q], dim=3)

    def pairs_by_repeat(self, x_flat, qst):
        """kimhc6028's spelling: the question glued to x_j, everything materialised by repeat."""
        n = x_flat.size(1)
        qst = torch.unsqueeze(qst, 1)
        qst = qst.repeat(1, n, 1)
        qst = torch.unsqueeze(qst, 2)
        x_i = torch.unsqueeze(x_flat, 1)
        x_i = x_i.repeat(1, n, 1, 1)
        x_j = torch.unsqueeze(x_flat, 2)
        x_j = torch.cat([x_j, qst], 3)
        x_j = x_j.repeat(1, 1, n, 1)
        return torch.cat([x_i, x_j], 3)

    def forward(self, img, qst):
        x_flat = self.objects(img)
        mb, n = x_flat.size(0), x_flat.size(1)
        x_full = self.pairs(x_flat, qst)
        x_ = self.g(x_full.view(mb * n * n, -1))
        x_g = x_.view(mb, n * n, -1).sum(1)
        x_f = F.relu(self.f_fc1(x_g))
        return self.fcout(x_f)


class CNN_MLP(BasicModel):
    def __init__(self, hidden=64, lr=3e-3):
        super().__init__()
        self.conv = ConvInputModel()
        self.fc1 = nn.Linear(16 * 3 * 3 + QUESTION_DIM, hidden)
        self.fcout = FCOutputModel(hidden)
        self.optimizer = optim.Adam(self.parameters(), lr=lr)

    def forward(self, img, qst):
        x = self.conv(img)
        x = x.view(x.size(0), -1)
        x = torch.cat((x, qst), 1)
        return self.fcout(F.relu(self.fc1(x)))


train_img, train_qst, train_ans, train_rel = make_dataset(600)
test_img, test_qst, test_ans, test_rel = make_dataset(150)
print(f"train {tuple(train_img.shape)} questions {tuple(train_qst.shape)} relational {train_rel.float().mean().item():.2f}")
print("answer counts", torch.bincount(train_ans, minlength=NUM_ANSWERS).tolist())

probe = RN()
probe.eval()
with torch.no_grad():
    x_flat = probe.objects(test_img[:4])
    by_expand, by_repeat = probe.pairs(x_flat, test_qst[:4]), probe.pairs_by_repeat(x_flat, test_qst[:4])
    reordered = torch.cat([by_expand[..., :18], by_expand[..., 18:36], by_expand[..., 36:]], 3)
print(f"objects {tuple(x_flat.shape)} pairs {tuple(by_expand.shape)} "
      f"expand equals repeat {torch.equal(reordered, by_repeat)} coordinates {[[round(v, 3) for v in xy] for xy in x_flat[0, :3, -2:].tolist()]}")


def run(model, epochs=8, batch_size=64):
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(train_img))
        accuracies = []
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            accuracy, loss = model.train_(train_img[idx], train_qst[idx], train_ans[idx])
            accuracies.append(accuracy.item())
        if epoch in (1, epochs):
            print(f"{type(model).__name__} epoch {epoch}: train accuracy {sum(accuracies) / len(accuracies):.0f}% loss {loss.item():.4f}")
    model.eval()
    pred = model.predict(test_img, test_qst)
    correct = pred.eq(test_ans)
    return correct[test_rel].float().mean().item(), correct[~test_rel].float().mean().item()


results = {}
for build in (RN, CNN_MLP):
    torch.manual_seed(seed + 1)
    model = build()
    relational, non_relational = run(model)
    name = type(model).__name__.lower()
    results[f"{name}_rel"], results[f"{name}_nonrel"] = relational, non_relational
    print(f"{type(model).__name__}: relational {relational:.3f} non-relational {non_relational:.3f}")

print("FINAL " + " ".join(f"{key}={value:.4f}" for key, value in results.items()))
