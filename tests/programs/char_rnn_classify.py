"""The "NLP From Scratch: Classifying Names with a Character-Level RNN" tutorial, both editions, on
synthetic names (made from per-language syllables, accents included, from a fixed seed):
``unicodeToAscii`` by ``unicodedata.normalize('NFD', s)`` dropping category ``'Mn'``,
``letterToTensor``/``lineToTensor`` one-hot by ``torch.zeros(len(line), 1, n_letters)`` and
``tensor[li][0][letterToIndex(letter)] = 1``; the hand-written ``RNN`` (``i2h``/``i2o`` on
``torch.cat((input, hidden), 1)``, ``nn.LogSoftmax(dim=1)``, ``initHidden``) trained one random
example at a time with ``nn.NLLLoss`` and manual SGD ``p.data.add_(p.grad.data, alpha=-learning_rate)``,
``categoryFromOutput`` by ``output.topk(1)`` + ``top_i[0].item()``, a confusion matrix
``torch.zeros(n, n)`` normalised row by row ``confusion[i] / confusion[i].sum()``, ``predict`` with
``topk(n_predictions, 1, True)``; then the newer ``CharRNN`` on ``nn.RNN`` (``hidden[0]``), a
``Dataset`` split by ``random_split([.85, .15], generator=torch.Generator().manual_seed(2024))``,
minibatches by ``np.array_split``, summed losses, ``clip_grad_norm_(..., 3)`` and ``optim.SGD``.
"""

import os
import random
import string
import time
import unicodedata

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
random.seed(seed)
torch.manual_seed(seed)

# ---------------------------------------------------------------- data (in place of data/names/*.txt)
SYLLABLES = {
    "Italian": (["Ro", "Bel", "Cas", "Fe", "Lu", "Ma", "Ric"], ["ss", "tt", "l", "nz", "cc"], ["ini", "elli", "ano", "etti", "one"]),
    "Polish": (["Ko", "Wi", "Now", "Szy", "Le", "Zió"], ["wal", "śn", "ak", "rz", "mań"], ["ski", "czyk", "ewicz", "ska", "ak"]),
    "Japanese": (["Ta", "Ya", "Su", "Ka", "Mo", "Hi"], ["ka", "ma", "zu", "ki", "na"], ["moto", "shi", "da", "ta", "ra"]),
    "Irish": (["O'", "Mc", "Mac", "Fitz"], ["Bri", "Don", "Carth", "Ken", "Gal"], ["an", "ell", "y", "agh", "ne"]),
    "French": (["Bé", "Du", "Le", "Ro", "Chè", "Fa"], ["rn", "ch", "ss", "bl", "v"], ["ard", "eau", "ier", "ère", "ette"]),
    "Spanish": (["Nú", "Gar", "Fer", "Ro", "Ló", "Ca"], ["ñ", "rc", "nánd", "dríg", "p"], ["ez", "ia", "es", "o", "uez"]),
}


def make_names(rng, language, n):
    starts, middles, ends = SYLLABLES[language]
    names = set()
    while len(names) < n:
        mid = "".join(rng.choice(middles) for _ in range(rng.randint(0, 2)))
        names.add(rng.choice(starts) + mid + rng.choice(ends))
    return sorted(names)


all_letters = string.ascii_letters + " .,;'"
n_letters = len(all_letters)


# Turn a Unicode string to plain ASCII, thanks to https://stackoverflow.com/a/518232/2809427
def unicodeToAscii(s):
    return ''.join(
        c for c in unicodedata.normalize('NFD', s)
        if unicodedata.category(c) != 'Mn'
        and c in all_letters
    )


print(unicodeToAscii('Ślusàrski'))

# Build the category_lines dictionary, a list of names per language
category_lines = {}
all_categories = []
data_rng = random.Random(1234)
for category in SYLLABLES:
    all_categories.append(category)
    lines = [unicodeToAscii(line) for line in make_names(data_rng, category, 60)]
    category_lines[category] = lines

n_categories = len(all_categories)
print(n_categories, sum(len(v) for v in category_lines.values()))
print(category_lines['Italian'][:3])


# Find letter index from all_letters, e.g. "a" = 0
def letterToIndex(letter):
    return all_letters.find(letter)


# Just for demonstration, turn a letter into a <1 x n_letters> Tensor
def letterToTensor(letter):
    tensor = torch.zeros(1, n_letters)
    tensor[0][letterToIndex(letter)] = 1
    return tensor


# Turn a line into a <line_length x 1 x n_letters>,
# or an array of one-hot letter vectors
def lineToTensor(line):
    tensor = torch.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][letterToIndex(letter)] = 1
    return tensor


print(letterToTensor('J').nonzero().tolist())
print(lineToTensor('Jones').size())


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()

        self.hidden_size = hidden_size

        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = self.i2h(combined)
        output = self.i2o(combined)
        output = self.softmax(output)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


n_hidden = 128
rnn = RNN(n_letters, n_hidden, n_categories)

input = lineToTensor('Albert')
hidden = torch.zeros(1, n_hidden)
output, next_hidden = rnn(input[0], hidden)
print(output.shape, next_hidden.shape)


def categoryFromOutput(output):
    top_n, top_i = output.topk(1)
    category_i = top_i[0].item()
    return all_categories[category_i], category_i


def randomChoice(l):
    return l[random.randint(0, len(l) - 1)]


def randomTrainingExample():
    category = randomChoice(all_categories)
    line = randomChoice(category_lines[category])
    category_tensor = torch.tensor([all_categories.index(category)], dtype=torch.long)
    line_tensor = lineToTensor(line)
    return category, line, category_tensor, line_tensor


criterion = nn.NLLLoss()
learning_rate = 0.005  # If you set this too high, it might explode. If too low, it might not learn


def train(category_tensor, line_tensor):
    hidden = rnn.initHidden()

    rnn.zero_grad()

    for i in range(line_tensor.size()[0]):
        output, hidden = rnn(line_tensor[i], hidden)

    loss = criterion(output, category_tensor)
    loss.backward()

    # Add parameters' gradients to their values, multiplied by learning rate
    for p in rnn.parameters():
        p.data.add_(p.grad.data, alpha=-learning_rate)

    return output, loss.item()


n_iters = 2000
print_every = 500
plot_every = 100

# Keep track of losses for plotting
current_loss = 0
all_losses = []

for iter in range(1, n_iters + 1):
    category, line, category_tensor, line_tensor = randomTrainingExample()
    output, loss = train(category_tensor, line_tensor)
    current_loss += loss

    # Print ``iter`` number, loss, name and guess
    if iter % print_every == 0:
        guess, guess_i = categoryFromOutput(output)
        print('%d %d%% %.4f' % (iter, iter / n_iters * 100, loss))  # noqa: UP031  (the tutorial's line, less its clock)

    # Add current loss avg to list of losses
    if iter % plot_every == 0:
        all_losses.append(current_loss / plot_every)
        current_loss = 0

# Keep track of correct guesses in a confusion matrix
confusion = torch.zeros(n_categories, n_categories)
n_confusion = 300


# Just return an output given a line
def evaluate(line_tensor):
    hidden = rnn.initHidden()

    for i in range(line_tensor.size()[0]):
        output, hidden = rnn(line_tensor[i], hidden)

    return output


# Go through a bunch of examples and record which are correctly guessed
for i in range(n_confusion):  # noqa: B007  (the tutorial's own loop)
    category, line, category_tensor, line_tensor = randomTrainingExample()
    output = evaluate(line_tensor)
    guess, guess_i = categoryFromOutput(output)
    category_i = all_categories.index(category)
    confusion[category_i][guess_i] += 1

# Normalize by dividing every row by its sum
for i in range(n_categories):
    confusion[i] = confusion[i] / confusion[i].sum()

rnn_accuracy = confusion.diag().mean().item()
print('confusion', tuple(confusion.shape), 'rows sum to one', bool(torch.allclose(confusion.sum(1), torch.ones(n_categories))))


def predict(input_line, n_predictions=3):
    print('\n> %s' % input_line)  # noqa: UP031
    with torch.no_grad():
        output = evaluate(lineToTensor(input_line))

        # Get top N categories
        topv, topi = output.topk(n_predictions, 1, True)
        predictions = []

        for i in range(n_predictions):
            value = topv[0][i].item()
            category_index = topi[0][i].item()
            print('(%.2f)' % value)  # noqa: UP031
            predictions.append([value, all_categories[category_index]])
    return predictions


predict('Dovesky')
rnn_losses = all_losses
print(len(predict('Satoshi', 2)))


# ---------------------------------------------------------------- the newer edition: nn.RNN, a Dataset, minibatches
class NamesDataset(Dataset):

    def __init__(self, category_lines):
        self.load_time = time.localtime
        labels_set = set()  # set of all classes

        self.data = []
        self.data_tensors = []
        self.labels = []
        self.labels_tensors = []

        for label, lines in category_lines.items():
            labels_set.add(label)
            for name in lines:
                self.data.append(name)
                self.data_tensors.append(lineToTensor(name))
                self.labels.append(label)

        # Cache the tensor representation of the labels
        self.labels_uniq = sorted(labels_set)
        for idx in range(len(self.labels)):
            temp_tensor = torch.tensor([self.labels_uniq.index(self.labels[idx])], dtype=torch.long)
            self.labels_tensors.append(temp_tensor)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        data_item = self.data[idx]
        data_label = self.labels[idx]
        data_tensor = self.data_tensors[idx]
        label_tensor = self.labels_tensors[idx]

        return label_tensor, data_tensor, data_label, data_item


alldata = NamesDataset(category_lines)
print(f"loaded {len(alldata)} items of data")
print(f"example = {alldata[0][0].tolist()} {tuple(alldata[0][1].shape)}")

train_set, test_set = torch.utils.data.random_split(alldata, [.85, .15], generator=torch.Generator().manual_seed(2024))
print(f"train examples = {len(train_set)}, validation examples = {len(test_set)}")


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()

        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        output = self.h2o(hidden[0])
        output = self.softmax(output)

        return output


char_rnn = CharRNN(n_letters, n_hidden, len(alldata.labels_uniq))
print(char_rnn)


def label_from_output(output, output_labels):
    top_n, top_i = output.topk(1)
    label_i = top_i[0].item()
    return output_labels[label_i], label_i


def train_batches(rnn, training_data, n_epoch=10, n_batch_size=64, report_every=50, learning_rate=0.2, criterion=nn.NLLLoss()):
    """
    Learn on a batch of training_data for a specified number of iterations and reporting thresholds
    """
    # Keep track of losses for plotting
    current_loss = 0
    all_losses = []
    rnn.train()
    optimizer = torch.optim.SGD(rnn.parameters(), lr=learning_rate)

    print(f"training on data set with n = {len(training_data)}")

    for iter in range(1, n_epoch + 1):
        rnn.zero_grad()  # clear the gradients

        # create some minibatches
        # we cannot use dataloaders because each of our names is a different length
        batches = list(range(len(training_data)))
        random.shuffle(batches)
        batches = np.array_split(batches, len(batches) // n_batch_size)

        for idx, batch in enumerate(batches):  # noqa: B007  (the tutorial's own loop)
            batch_loss = 0
            for i in batch:  # for each example in this batch
                (label_tensor, text_tensor, label, text) = training_data[i]
                output = rnn.forward(text_tensor)
                loss = criterion(output, label_tensor)
                batch_loss += loss

            # optimize parameters
            batch_loss.backward()
            nn.utils.clip_grad_norm_(rnn.parameters(), 3)
            optimizer.step()
            optimizer.zero_grad()

            current_loss += batch_loss.item() / len(batch)

        all_losses.append(current_loss / len(batches))
        if iter % report_every == 0:
            print(f"{iter} ({iter / n_epoch:.0%}): \t average batch loss = {all_losses[-1]:.4f}")
        current_loss = 0

    return all_losses


all_losses = train_batches(char_rnn, train_set, n_epoch=12, n_batch_size=32, learning_rate=0.1, report_every=4)


def evaluate_set(rnn, testing_data, classes):
    confusion = torch.zeros(len(classes), len(classes))

    rnn.eval()  # set to eval mode
    with torch.no_grad():  # do not record the gradients during eval phase
        for i in range(len(testing_data)):
            (label_tensor, text_tensor, label, text) = testing_data[i]
            output = rnn(text_tensor)
            guess, guess_i = label_from_output(output, classes)
            label_i = classes.index(label)
            confusion[label_i][guess_i] += 1

    # Normalize by dividing every row by its sum
    for i in range(len(classes)):
        denom = confusion[i].sum()
        if denom > 0:
            confusion[i] = confusion[i] / denom
    return confusion


confusion2 = evaluate_set(char_rnn, test_set, classes=alldata.labels_uniq)
print(f"FINAL rnn_loss={sum(rnn_losses[-5:]) / 5:.4f} rnn_acc={rnn_accuracy:.4f} char_rnn_loss={all_losses[-1]:.4f} char_rnn_acc={confusion2.diag().mean().item():.4f}")
