"""FiLM (Perez et al. 2018) visual reasoning on synthetic CLEVR-like scenes, written as
ethanjperez/film's model is.

The FiLM generator reads the question with ``nn.Embedding`` + ``nn.GRU(batch_first=True)``, takes
the hidden state at the last real token (``(question != NULL).sum(1) - 1`` then ``torch.gather``
on the outputs) and a linear layer gives every residual block its ``(gamma, beta)`` by
``.view(-1, n_blocks, 2 * C)`` and ``.chunk(2, dim=1)``. Each residual block concatenates coordinate
maps (``torch.meshgrid(torch.linspace(-1, 1, h), ..., indexing='ij')``, ``torch.stack``,
``expand``) to its input with ``torch.cat``, runs a 1x1 conv, a 3x3 conv into
``nn.BatchNorm2d(affine=False)`` and is modulated by ``gamma[:, :, None, None] * x +
beta[:, :, None, None]`` before its ReLU and skip connection. The classifier head: 1x1 conv,
``nn.AdaptiveMaxPool2d(1)``, ``flatten(1)`` and an MLP over the answers. Trained with Adam and
``weight_decay``; accuracy reported per question type (in this budget the relational "left of"
stays near its majority answer while the colour and existence questions learn), and for a
question-blind pass (every gamma 1, every beta 0) as a check that the answers need the question.

The data: 9x9 scenes of two or three objects with distinct shapes (a 3x3 square, cross or dot, one
per cell of a 3x3 grid) in red, green or blue, drawn with NumPy; questions from three templates ("is
there a red object left of the square", "what color is the dot", "is there a blue cross"), half of
the yes/no ones asked about what is there so that yes and no are about as common.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

GRID = 3
SIZE = 3 * GRID
COLORS = ["red", "green", "blue"]
SHAPES = ["square", "cross", "dot"]
ANSWERS = ["yes", "no", "red", "green", "blue"]
QUESTION_TYPES = ["left_of", "query_color", "exist"]
WORDS = ["<NULL>", "is", "there", "a", "object", "left", "of", "the", "what", "color", "?"] + COLORS + SHAPES
VOCAB = {w: i for i, w in enumerate(WORDS)}
NULL = VOCAB["<NULL>"]


def draw(image, shape, color, row, col):
    yy, xx = np.mgrid[-1:2, -1:2]
    if shape == "square":
        mask = np.ones((3, 3), dtype=bool)
    elif shape == "cross":
        mask = (yy == 0) | (xx == 0)
    else:
        mask = (yy == 0) & (xx == 0)
    image[COLORS.index(color), 3 * row:3 * row + 3, 3 * col:3 * col + 3][mask] = 1.0


def make_scene():
    n_objects = int(rng.integers(2, 4))
    shapes = rng.permutation(SHAPES)[:n_objects]
    cells = rng.permutation(GRID * GRID)[:n_objects]  # one object per cell of a grid: none overlap
    objects = []
    image = np.zeros((3, SIZE, SIZE), dtype=np.float32)
    for shape, cell in zip(shapes, cells):
        row, col = divmod(int(cell), GRID)
        color = COLORS[int(rng.integers(0, 3))]
        draw(image, shape, color, row, col)
        objects.append({"shape": str(shape), "color": color, "x": col})
    image += rng.normal(0.0, 0.1, size=image.shape).astype(np.float32)
    return image, objects


def make_question(objects, kind):
    present = [o["shape"] for o in objects]
    if kind == "left_of":
        shape = present[int(rng.integers(len(present)))]
        anchor = next(o for o in objects if o["shape"] == shape)
        left = [o["color"] for o in objects if o["x"] < anchor["x"]]
        # half the questions name a color that is left of the anchor (when one is): balanced answers
        color = left[int(rng.integers(len(left)))] if left and rng.random() < 0.5 else COLORS[int(rng.integers(3))]
        answer = any(o["color"] == color and o["x"] < anchor["x"] for o in objects)
        words = ["is", "there", "a", color, "object", "left", "of", "the", shape, "?"]
        return words, "yes" if answer else "no"
    if kind == "query_color":
        shape = present[int(rng.integers(len(present)))]
        return ["what", "color", "is", "the", shape, "?"], next(o["color"] for o in objects if o["shape"] == shape)
    if rng.random() < 0.5:
        chosen = objects[int(rng.integers(len(objects)))]
        color, shape = chosen["color"], chosen["shape"]
    else:
        color, shape = COLORS[int(rng.integers(3))], SHAPES[int(rng.integers(3))]
    answer = any(o["color"] == color and o["shape"] == shape for o in objects)
    return ["is", "there", "a", color, shape, "?"], "yes" if answer else "no"


def make_dataset(n, max_len=10):
    images = np.zeros((n, 3, SIZE, SIZE), dtype=np.float32)
    questions = np.full((n, max_len), NULL, dtype=np.int64)
    answers = np.zeros(n, dtype=np.int64)
    kinds = np.zeros(n, dtype=np.int64)
    for i in range(n):
        images[i], objects = make_scene()
        kinds[i] = i % len(QUESTION_TYPES)
        words, answer = make_question(objects, QUESTION_TYPES[kinds[i]])
        questions[i, :len(words)] = [VOCAB[w] for w in words]
        answers[i] = ANSWERS.index(answer)
    return (torch.from_numpy(images), torch.from_numpy(questions), torch.from_numpy(answers),
            torch.from_numpy(kinds))


class FiLMGen(nn.Module):
    def __init__(self, vocab_size, num_blocks, module_dim, embed_dim=32, hidden_dim=64):
        super().__init__()
        self.num_blocks, self.module_dim = num_blocks, module_dim
        self.encoder_embed = nn.Embedding(vocab_size, embed_dim)
        self.encoder_rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.decoder_linear = nn.Linear(hidden_dim, num_blocks * 2 * module_dim)
        # every block starts at gamma = 1, beta = 0 for every question: the identity modulation
        nn.init.zeros_(self.decoder_linear.weight)
        with torch.no_grad():
            self.decoder_linear.bias.zero_()
            self.decoder_linear.bias.view(num_blocks, 2, module_dim)[:, 0].fill_(1.0)

    def get_last_hidden(self, x, hs):
        idx = (x != NULL).sum(1) - 1
        idx = idx.view(-1, 1, 1).expand(-1, 1, hs.size(2))
        return hs.gather(1, idx).squeeze(1)

    def forward(self, x):
        hs, _ = self.encoder_rnn(self.encoder_embed(x))
        film = self.decoder_linear(self.get_last_hidden(x, hs))
        return film.view(-1, self.num_blocks, 2 * self.module_dim)


def coord_map(shape):
    h, w = shape
    y, x = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([x, y], dim=0)


class FiLMedResBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv1 = nn.Conv2d(dim + 2, dim, kernel_size=1)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(dim, affine=False)

    def forward(self, x, gamma, beta, coords):
        x = torch.cat([x, coords], 1)
        x = F.relu(self.conv1(x))
        residual = x
        out = self.bn2(self.conv2(x))
        out = gamma[:, :, None, None] * out + beta[:, :, None, None]
        return F.relu(out) + residual


class FiLMedNet(nn.Module):
    def __init__(self, num_blocks=3, dim=16, num_answers=len(ANSWERS)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3 + 2, dim, kernel_size=3, padding=1), nn.BatchNorm2d(dim), nn.ReLU())
        self.blocks = nn.ModuleList(FiLMedResBlock(dim) for _ in range(num_blocks))
        self.classifier = nn.Sequential(
            nn.Conv2d(dim + 2, 64, kernel_size=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
            nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, num_answers))
        self.register_buffer("coords", coord_map((SIZE, SIZE)))

    def forward(self, x, film):
        batch_coords = self.coords.unsqueeze(0).expand(x.size(0), -1, -1, -1)
        x = self.stem(torch.cat([x, batch_coords], 1))
        for i, block in enumerate(self.blocks):
            gamma, beta = film[:, i, :].chunk(2, dim=1)
            x = block(x, gamma, beta, batch_coords)
        return self.classifier(torch.cat([x, batch_coords], 1))


train_images, train_questions, train_answers, train_kinds = make_dataset(3200)
test_images, test_questions, test_answers, test_kinds = make_dataset(600)
print(f"train {tuple(train_images.shape)} questions {tuple(train_questions.shape)} vocab {len(VOCAB)} "
      f"answers {len(ANSWERS)}")
print("answer counts", torch.bincount(train_answers, minlength=len(ANSWERS)).tolist())
coords = coord_map((4, 3))
print(f"coord map {tuple(coords.shape)} x row {coords[0, 0].tolist()} y column {coords[1, :, 0].tolist()}")

film_gen = FiLMGen(len(VOCAB), num_blocks=3, module_dim=16)
filmed_net = FiLMedNet(num_blocks=3, dim=16)
print("parameters", sum(p.numel() for p in film_gen.parameters()), sum(p.numel() for p in filmed_net.parameters()),
      "block norm affine", filmed_net.blocks[0].bn2.affine, "weight", filmed_net.blocks[0].bn2.weight,
      "buffers", [n for n, _ in filmed_net.named_buffers()][:3])

params = list(film_gen.parameters()) + list(filmed_net.parameters())
optimizer = torch.optim.Adam(params, lr=3e-3, weight_decay=1e-5)


def evaluate(blind=False):
    film_gen.eval()
    filmed_net.eval()
    with torch.no_grad():
        film = film_gen(test_questions)
        if blind:
            gamma, beta = film.chunk(2, dim=2)
            film = torch.cat([torch.ones_like(gamma), torch.zeros_like(beta)], dim=2)
        pred = filmed_net(test_images, film).argmax(1)
    film_gen.train()
    filmed_net.train()
    correct = (pred == test_answers).float()
    per_type = [correct[test_kinds == k].mean().item() for k in range(len(QUESTION_TYPES))]
    return correct.mean().item(), per_type


EPOCHS, BATCH = 8, 32
for epoch in range(EPOCHS):
    order = torch.randperm(len(train_images))
    total, steps = 0.0, 0
    for start in range(0, len(order), BATCH):
        idx = order[start:start + BATCH]
        film = film_gen(train_questions[idx])
        scores = filmed_net(train_images[idx], film)
        loss = F.cross_entropy(scores, train_answers[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
        steps += 1
    if epoch % 2 == 1:
        acc, per_type = evaluate()
        print(f"epoch {epoch + 1:2d} loss {total / steps:.4f} test acc {acc:.3f} "
              + " ".join(f"{name} {a:.3f}" for name, a in zip(QUESTION_TYPES, per_type)))

acc, per_type = evaluate()
blind_acc, _ = evaluate(blind=True)
film = film_gen(test_questions[:8])
gamma, beta = film[:, 0, :].chunk(2, dim=1)
print(f"film {tuple(film.shape)} gamma {tuple(gamma.shape)} beta {tuple(beta.shape)} "
      f"gamma mean {gamma.mean().item():.3f}")
for name, a in zip(QUESTION_TYPES, per_type):
    print(f"accuracy {name:12s} {a:.3f}")
print(f"question-blind (gamma 1, beta 0) acc {blind_acc:.3f}")
print(f"FINAL acc={acc:.4f} left_of={per_type[0]:.4f} query_color={per_type[1]:.4f} exist={per_type[2]:.4f}")
