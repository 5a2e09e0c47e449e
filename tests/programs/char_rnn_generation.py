"""The "NLP From Scratch: Generating Names with a Character-Level RNN" tutorial (pytorch.org, Sean
Robertson): an ``RNN`` module of three ``nn.Linear`` layers over ``torch.cat((category, input,
hidden), 1)`` with ``nn.Dropout(0.1)`` and ``nn.LogSoftmax(dim=1)``; one-hot tensors built by
``tensor[li][0][all_letters.find(letter)] = 1``; targets by ``torch.LongTensor`` with an EOS index,
``target_line_tensor.unsqueeze_(-1)``; the loss summed into ``torch.Tensor([0])`` by ``loss += l``;
the manual update ``p.data.add_(p.grad.data, alpha=-learning_rate)``; sampling under
``torch.no_grad()`` with ``output.topk(1)``, ``topi[0][0]`` compared with an int and
``all_letters[topi]`` indexing a string by a 0-d tensor. Made-up name lists for three "languages"
stand in for the data download; fewer iterations (1000 of 100000) with a higher learning rate;
the sampled names are printed by length (their letters change with the seed).
"""
# ruff: noqa: UP008, UP031, E741, A001, B007  (the tutorial's own spelling: super(RNN, self), %-formatting, `l`, `iter`, unused `i`)

import os
import random
import string

import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)

all_letters = string.ascii_letters + " .,;'-"
n_letters = len(all_letters) + 1  # plus the EOS marker

# three made-up "languages" with their own letter habits
category_lines = {
    "Arvish": ["Arvanen", "Baskonen", "Corvanen", "Davinen", "Elvanen", "Forsanen", "Galvinen", "Harvonen",
               "Ilvanen", "Jarvinen", "Korvanen", "Larsonen", "Marvinen", "Norvanen", "Orsanen", "Parvinen"],
    "Bellic": ["Abelli", "Bonetti", "Carelli", "Donati", "Esposti", "Fabbri", "Galetti", "Moretti",
               "Ianelli", "Lombardi", "Marini", "Nardelli", "Orsini", "Pellini", "Rinaldi", "Santelli"],
    "Coskic": ["Abrosk", "Bulosk", "Chovask", "Drovisk", "Esmask", "Frolosk", "Grusk", "Haskovsk",
               "Ivosk", "Jablonsk", "Kovask", "Lubosk", "Mirosk", "Novosk", "Orlosk", "Petrosk"],
}
all_categories = list(category_lines)
n_categories = len(all_categories)
print("# categories:", n_categories, all_categories)


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size

        self.i2h = nn.Linear(n_categories + input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(n_categories + input_size + hidden_size, output_size)
        self.o2o = nn.Linear(hidden_size + output_size, output_size)
        self.dropout = nn.Dropout(0.1)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, category, input, hidden):
        input_combined = torch.cat((category, input, hidden), 1)
        hidden = self.i2h(input_combined)
        output = self.i2o(input_combined)
        output_combined = torch.cat((hidden, output), 1)
        output = self.o2o(output_combined)
        output = self.dropout(output)
        output = self.softmax(output)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


# a random item from a list
def randomChoice(l):
    return l[random.randint(0, len(l) - 1)]


# a random category, and a random line of it
def randomTrainingPair():
    category = randomChoice(all_categories)
    line = randomChoice(category_lines[category])
    return category, line


# the category as a one-hot vector
def categoryTensor(category):
    li = all_categories.index(category)
    tensor = torch.zeros(1, n_categories)
    tensor[0][li] = 1
    return tensor


# a one-hot matrix of the first to the last letter (no EOS) of the input
def inputTensor(line):
    tensor = torch.zeros(len(line), 1, n_letters)
    for li in range(len(line)):
        letter = line[li]
        tensor[li][0][all_letters.find(letter)] = 1
    return tensor


# ``LongTensor`` of the second letter to the end (EOS) for the target
def targetTensor(line):
    letter_indexes = [all_letters.find(line[li]) for li in range(1, len(line))]
    letter_indexes.append(n_letters - 1)  # EOS
    return torch.LongTensor(letter_indexes)


# the category, input and target tensors of a random (category, line) pair
def randomTrainingExample():
    category, line = randomTrainingPair()
    category_tensor = categoryTensor(category)
    input_line_tensor = inputTensor(line)
    target_line_tensor = targetTensor(line)
    return category_tensor, input_line_tensor, target_line_tensor


criterion = nn.NLLLoss()

learning_rate = 0.005


def train(category_tensor, input_line_tensor, target_line_tensor):
    target_line_tensor.unsqueeze_(-1)
    hidden = rnn.initHidden()

    rnn.zero_grad()

    loss = torch.Tensor([0])  # ``loss = 0`` works too

    for i in range(input_line_tensor.size(0)):
        output, hidden = rnn(category_tensor, input_line_tensor[i], hidden)
        l = criterion(output, target_line_tensor[i])
        loss += l

    loss.backward()

    for p in rnn.parameters():
        p.data.add_(p.grad.data, alpha=-learning_rate)

    return output, loss.item() / input_line_tensor.size(0)


rnn = RNN(n_letters, 128, n_letters)

n_iters = 1000
print_every = 125
plot_every = 100
all_losses = []
total_loss = 0  # reset every ``plot_every`` iterations

for iter in range(1, n_iters + 1):
    output, loss = train(*randomTrainingExample())
    total_loss += loss

    if iter % print_every == 0:
        # (the tutorial's timeSince(start) left out: wall-clock numbers are not compared)
        print('(%d %d%%) %.4f' % (iter, iter / n_iters * 100, loss))

    if iter % plot_every == 0:
        all_losses.append(total_loss / plot_every)
        total_loss = 0

max_length = 20


# a name sampled from a category and a starting letter
def sample(category, start_letter='A'):
    with torch.no_grad():  # no history to track while sampling
        category_tensor = categoryTensor(category)
        input = inputTensor(start_letter)
        hidden = rnn.initHidden()

        output_name = start_letter

        for i in range(max_length):
            output, hidden = rnn(category_tensor, input[0], hidden)
            topv, topi = output.topk(1)
            topi = topi[0][0]
            if topi == n_letters - 1:
                break
            else:
                letter = all_letters[topi]
                output_name += letter
            input = inputTensor(letter)

        return output_name


# several samples of one category, one per starting letter
def samples(category, start_letters='ABC'):
    names = []
    for start_letter in start_letters:
        name = sample(category, start_letter)
        print(category, start_letter, len(name), name[0] == start_letter)
        names.append(name)
    return names


sampled = samples('Arvish', 'RUS') + samples('Bellic', 'GER') + samples('Coskic', 'SPA')
endings = {"Arvish": "nen", "Bellic": "i", "Coskic": "sk"}
in_style = sum(name.endswith(endings[category]) for category, names in
               (("Arvish", sampled[:3]), ("Bellic", sampled[3:6]), ("Coskic", sampled[6:])) for name in names)

print(f"FINAL first_loss={all_losses[0]:.4f} last_loss={sum(all_losses[-3:]) / 3:.4f} in_style={in_style}")
