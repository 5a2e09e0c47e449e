"""The PyTorch tutorial "Text classification with the torchtext library" (beginner/text_sentiment_ngrams_tutorial)
with torchtext replaced by the few lines it stood for: a ``re`` tokenizer like ``basic_english``, a
vocabulary over ``collections.Counter`` with ``<unk>`` as the default index, ``text_pipeline`` /
``label_pipeline``, ``collate_batch`` building ``label_list``, ``text_list`` and ``offsets``
(``torch.tensor(offsets[:-1]).cumsum(dim=0)``, ``torch.cat(text_list)``), ``TextClassificationModel``
on ``nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)`` with ``init_weights``
(``uniform_(-initrange, initrange)``, ``fc.bias.data.zero_()``), ``CrossEntropyLoss``, ``SGD(lr=5)``,
``StepLR(optimizer, 1.0, gamma=0.1)`` stepped only when validation accuracy stalls,
``clip_grad_norm_(model.parameters(), 0.1)``, ``random_split`` into train/valid + ``to_map_style_dataset``-like
lists, ``DataLoader(collate_fn=collate_batch, shuffle=True)``, the tutorial's progress lines, and
``predict`` on new text by ``argmax(1).item() + 1``.

A synthetic AG_NEWS-like corpus (four topics of made-up headlines, labels 1..4, from a fixed
``random.Random``) stands in for the dataset; the sizes are tiny.
"""
# ruff: noqa: UP008, UP031, UP032, B007  (the tutorial's own spelling: super(Class, self), .format, %, enumerate)

import collections
import os
import random
import re
import time

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.dataset import random_split

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

TOPIC_WORDS = {
    1: ["president", "minister", "election", "government", "talks", "troops", "parliament", "iraq", "un", "peace"],
    2: ["season", "coach", "game", "team", "win", "cup", "league", "players", "score", "olympic"],
    3: ["shares", "profit", "market", "oil", "prices", "stocks", "company", "quarter", "bank", "dollar"],
    4: ["software", "internet", "microsoft", "computer", "space", "research", "users", "phone", "google", "web"],
}
COMMON = ["the", "a", "of", "to", "in", "on", "for", "with", "new", "says", "after", "report", "week", "first"]


def make_corpus(count, rng):
    items = []
    for _ in range(count):
        label = rng.randint(1, 4)
        words = []
        for _ in range(rng.randint(6, 14)):
            pick = rng.random()
            if pick < 0.45:
                words.append(rng.choice(TOPIC_WORDS[label]))
            elif pick < 0.55:
                words.append(rng.choice(TOPIC_WORDS[rng.randint(1, 4)]))
            else:
                words.append(rng.choice(COMMON))
        text = " ".join(words).capitalize() + rng.choice([".", "!", " -- AP", ", (Reuters)"])
        items.append((label, text))
    return items


corpus_rng = random.Random(1234)
train_iter = make_corpus(1200, corpus_rng)
test_iter = make_corpus(300, corpus_rng)
print(train_iter[0])

_patterns = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
_replacements = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_patterns_dict = list((re.compile(p), r) for p, r in zip(_patterns, _replacements))


def tokenizer(line):
    """torchtext's basic_english: lower-case, split punctuation off, split on whitespace."""
    line = line.lower()
    for pattern_re, replaced_str in _patterns_dict:
        line = pattern_re.sub(replaced_str, line)
    return line.split()


class Vocab:
    def __init__(self, counter, specials=("<unk>",)):
        self.itos = list(specials) + [token for token, _ in sorted(counter.items(), key=lambda x: (-x[1], x[0]))]
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        self.default_index = None

    def set_default_index(self, index):
        self.default_index = index

    def __len__(self):
        return len(self.itos)

    def __call__(self, tokens):
        return [self.stoi.get(token, self.default_index) for token in tokens]

    def __getitem__(self, token):
        return self.stoi.get(token, self.default_index)


def build_vocab_from_iterator(iterator, specials):
    counter = collections.Counter()
    for tokens in iterator:
        counter.update(tokens)
    return Vocab(counter, specials)


def yield_tokens(data_iter):
    for _, text in data_iter:
        yield tokenizer(text)


vocab = build_vocab_from_iterator(yield_tokens(train_iter), specials=["<unk>"])
vocab.set_default_index(vocab["<unk>"])
print(vocab(["here", "is", "an", "example"]), vocab(["the", "election", "game"]))

text_pipeline = lambda x: vocab(tokenizer(x))  # noqa: E731  (the tutorial's own lambdas)
label_pipeline = lambda x: int(x) - 1  # noqa: E731
print(text_pipeline("here is the an example"), label_pipeline("10"))


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(label_pipeline(_label))
        processed_text = torch.tensor(text_pipeline(_text), dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list.to(device), text_list.to(device), offsets.to(device)


dataloader = DataLoader(train_iter, batch_size=8, shuffle=False, collate_fn=collate_batch)
label, text, offsets = next(iter(dataloader))
print(label, text.shape, text.dtype, offsets, offsets.dtype)


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super(TextClassificationModel, self).__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        embedded = self.embedding(text, offsets)
        return self.fc(embedded)


num_class = len(set([label for (label, text) in train_iter]))
vocab_size = len(vocab)
emsize = 16
model = TextClassificationModel(vocab_size, emsize, num_class).to(device)
print(model)
print(num_class, vocab_size, model.embedding.mode, model.embedding.weight.abs().max().item() <= 0.5)


def train(dataloader):
    model.train()
    total_acc, total_count = 0, 0
    log_interval = 40
    start_time = time.time()

    for idx, (label, text, offsets) in enumerate(dataloader):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
        if idx % log_interval == 0 and idx > 0:
            elapsed = time.time() - start_time
            print(
                "| epoch {:3d} | {:5d}/{:5d} batches "
                "| accuracy {:8.3f}".format(epoch, idx, len(dataloader), total_acc / total_count)
            )
            total_acc, total_count = 0, 0
            start_time = time.time()
    return elapsed


def evaluate(dataloader):
    model.eval()
    total_acc, total_count = 0, 0

    with torch.no_grad():
        for idx, (label, text, offsets) in enumerate(dataloader):
            predicted_label = model(text, offsets)
            criterion(predicted_label, label)
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
    return total_acc / total_count


# Hyperparameters
EPOCHS = 6  # epoch
LR = 5  # learning rate
BATCH_SIZE = 16  # batch size for training

criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=LR)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.1)
total_accu = None
train_dataset = list(train_iter)  # to_map_style_dataset
test_dataset = list(test_iter)
num_train = int(len(train_dataset) * 0.95)
split_train_, split_valid_ = random_split(train_dataset, [num_train, len(train_dataset) - num_train])
print(len(split_train_), len(split_valid_), type(split_train_).__name__)

train_dataloader = DataLoader(split_train_, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch)
valid_dataloader = DataLoader(split_valid_, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch)
test_dataloader = DataLoader(test_dataset, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch)
print(len(train_dataloader), len(valid_dataloader), len(test_dataloader))

for epoch in range(1, EPOCHS + 1):
    epoch_start_time = time.time()
    train(train_dataloader)
    accu_val = evaluate(valid_dataloader)
    if total_accu is not None and total_accu > accu_val:
        scheduler.step()
    else:
        total_accu = accu_val
    print("-" * 59)
    print(
        "| end of epoch {:3d} | time: {:5.2f}s | "
        "valid accuracy {:8.3f} ".format(epoch, 0.0 * (time.time() - epoch_start_time), accu_val)
    )
    print("-" * 59)

print("Checking the results of test dataset.")
accu_test = evaluate(test_dataloader)
print("test accuracy {:8.3f}".format(accu_test))

ag_news_label = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tec"}


def predict(text, text_pipeline):
    with torch.no_grad():
        text = torch.tensor(text_pipeline(text))
        output = model(text, torch.tensor([0]))
        return output.argmax(1).item() + 1


examples = {
    1: "The president met the minister for peace talks after the election in parliament.",
    2: "The coach says the team will win the cup this season, players score in league game!",
    3: "Oil prices push shares and stocks higher, bank profit up for the quarter (Reuters)",
    4: "Microsoft and Google release new software for internet users and phone research.",
}
model = model.to("cpu")
correct = 0
for expected, example_text in examples.items():
    predicted = predict(example_text, text_pipeline)
    correct += int(predicted == expected)
    print("This is a %s news" % ag_news_label[expected], predicted == expected)

with torch.no_grad():
    bag_means = model.embedding(torch.tensor([[1, 2, 3], [4, 5, 6]]))
    bag_sums = nn.functional.embedding_bag(torch.tensor([1, 2, 3, 4]), model.embedding.weight, torch.tensor([0, 2]),
                                           mode="sum")
print(bag_means.shape, bag_sums.shape)

print(f"FINAL valid_acc={accu_val:.4f} test_acc={accu_test:.4f} examples_correct={correct}")
