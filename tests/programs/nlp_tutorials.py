"""The "Deep Learning for NLP with Pytorch" tutorials (pytorch.org, Robert Guthrie), one after the
other: the bag-of-words language classifier (``make_bow_vector`` by ``vec[word_to_ix[word]] += 1``,
``nn.Linear`` + ``F.log_softmax``, ``nn.NLLLoss``, the parameters and the "creo" column printed
before and after training), word embeddings (``nn.Embedding(2, 5)`` looked up by
``torch.tensor([...], dtype=torch.long)``), the N-gram language model on Sonnet 2 (``embeds.view((1,
-1))``, the list of epoch losses), the CBOW exercise, and sequence models (an ``nn.LSTM(3, 3)`` fed
step by step and all at once, then the LSTM part-of-speech tagger with
``embeds.view(len(sentence), 1, -1)``, ``lstm_out.view(len(sentence), -1)``, ``tag_scores`` printed
under ``torch.no_grad()``). The tutorials' data and epoch counts. Tensors whose signs change with the
seed are printed as lists with their ``grad_fn.name()`` (a tensor's repr pads its columns for a
minus sign, which would change the printed line's shape from seed to seed).
"""
# ruff: noqa: UP008, B007  (the tutorials' own spelling: super(Cls, self), `for sent, tags in ...`)

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# -- Deep Learning with PyTorch: a bag-of-words classifier, Spanish or English
data = [("me gusta comer en la cafeteria".split(), "SPANISH"),
        ("Give it to me".split(), "ENGLISH"),
        ("No creo que sea una buena idea".split(), "SPANISH"),
        ("No it is not a good idea to get lost at sea".split(), "ENGLISH")]

test_data = [("Yo creo que si".split(), "SPANISH"),
             ("it is lost on me".split(), "ENGLISH")]

# each word of the vocabulary gets its index into the bag-of-words vector
word_to_ix = {}
for sent, _ in data + test_data:
    for word in sent:
        if word not in word_to_ix:
            word_to_ix[word] = len(word_to_ix)
print(word_to_ix)

VOCAB_SIZE = len(word_to_ix)
NUM_LABELS = 2


class BoWClassifier(nn.Module):  # an nn.Module subclass

    def __init__(self, num_labels, vocab_size):
        super(BoWClassifier, self).__init__()

        # the affine map A x + b: vocab_size counts in, one score per label out
        self.linear = nn.Linear(vocab_size, num_labels)

        # log_softmax has no parameters, so nothing more is needed here

    def forward(self, bow_vec):
        # the linear layer, then log_softmax over the labels
        return F.log_softmax(self.linear(bow_vec), dim=1)


def make_bow_vector(sentence, word_to_ix):
    vec = torch.zeros(len(word_to_ix))
    for word in sentence:
        vec[word_to_ix[word]] += 1
    return vec.view(1, -1)


def make_target(label, label_to_ix):
    return torch.LongTensor([label_to_ix[label]])


model = BoWClassifier(NUM_LABELS, VOCAB_SIZE)

# the model knows its parameters: A first, then b
for param in model.parameters():
    print(type(param).__name__, param.shape, param.tolist())

# one forward pass on a bag-of-words vector, without building a graph
with torch.no_grad():
    sample = data[0]
    bow_vector = make_bow_vector(sample[0], word_to_ix)
    log_probs = model(bow_vector)
    print(log_probs)

label_to_ix = {"SPANISH": 0, "ENGLISH": 1}

# the test data before training, for a before-and-after
with torch.no_grad():
    for instance, label in test_data:
        bow_vec = make_bow_vector(instance, word_to_ix)
        log_probs = model(bow_vec)
        print(log_probs)

# the column of A for "creo"
print(next(model.parameters())[:, word_to_ix["creo"]].tolist())

loss_function = nn.NLLLoss()
optimizer = optim.SGD(model.parameters(), lr=0.1)

# 100 passes over four sentences
for epoch in range(100):
    for instance, label in data:
        # gradients accumulate: clear them before each instance
        model.zero_grad()

        # the bag-of-words vector and the target's index
        bow_vec = make_bow_vector(instance, word_to_ix)
        target = make_target(label, label_to_ix)

        # the forward pass
        log_probs = model(bow_vec)

        # the loss, its gradients, and the update
        loss = loss_function(log_probs, target)
        loss.backward()
        optimizer.step()

with torch.no_grad():
    bow_correct = 0
    for instance, label in test_data:
        bow_vec = make_bow_vector(instance, word_to_ix)
        log_probs = model(bow_vec)
        print(log_probs)
        bow_correct += int(log_probs.argmax(1).item() == label_to_ix[label])

# the Spanish entry went up, the English one down
print(next(model.parameters())[:, word_to_ix["creo"]].tolist())
creo = next(model.parameters())[:, word_to_ix["creo"]]
creo_gap = (creo[0] - creo[1]).item()

# -- Word Embeddings: encoding lexical semantics
word_to_ix = {"hello": 0, "world": 1}
embeds = nn.Embedding(2, 5)  # 2 words in vocab, 5 dimensional embeddings
lookup_tensor = torch.tensor([word_to_ix["hello"]], dtype=torch.long)
hello_embed = embeds(lookup_tensor)
print(hello_embed.tolist(), hello_embed.grad_fn.name())

# an N-gram language model: two words of context predict the next
CONTEXT_SIZE = 2
EMBEDDING_DIM = 10
# Shakespeare's Sonnet 2
test_sentence = """When forty winters shall besiege thy brow,
And dig deep trenches in thy beauty's field,
Thy youth's proud livery so gazed on now,
Will be a totter'd weed of small worth held:
Then being asked, where all thy beauty lies,
Where all the treasure of thy lusty days;
To say, within thine own deep sunken eyes,
Were an all-eating shame, and thriftless praise.
How much more praise deserv'd thy beauty's use,
If thou couldst answer 'This fair child of mine
Shall sum my count, and make my old excuse,'
Proving his beauty by succession thine!
This were to be new made when thou art old,
And see thy blood warm when thou feel'st it cold.""".split()
# a list of ([word_i-CONTEXT_SIZE, ..., word_i-1], target word) tuples (no tokenizing)
ngrams = [
    (
        [test_sentence[i - j - 1] for j in range(CONTEXT_SIZE)],
        test_sentence[i]
    )
    for i in range(CONTEXT_SIZE, len(test_sentence))
]
# the first 3, to see what they look like
print(ngrams[:3])

vocab = set(test_sentence)
word_to_ix = {word: i for i, word in enumerate(vocab)}


class NGramLanguageModeler(nn.Module):

    def __init__(self, vocab_size, embedding_dim, context_size):
        super(NGramLanguageModeler, self).__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.linear1 = nn.Linear(context_size * embedding_dim, 128)
        self.linear2 = nn.Linear(128, vocab_size)

    def forward(self, inputs):
        embeds = self.embeddings(inputs).view((1, -1))
        out = F.relu(self.linear1(embeds))
        out = self.linear2(out)
        log_probs = F.log_softmax(out, dim=1)
        return log_probs


losses = []
loss_function = nn.NLLLoss()
model = NGramLanguageModeler(len(vocab), EMBEDDING_DIM, CONTEXT_SIZE)
optimizer = optim.SGD(model.parameters(), lr=0.001)

for epoch in range(10):
    total_loss = 0
    for context, target in ngrams:

        # the context's words as a tensor of indices
        context_idxs = torch.tensor([word_to_ix[w] for w in context], dtype=torch.long)

        # gradients accumulate: clear the last instance's
        model.zero_grad()

        # the forward pass: log probabilities of the next word
        log_probs = model(context_idxs)

        # the loss against the target word, in a tensor
        loss = loss_function(log_probs, torch.tensor([word_to_ix[target]], dtype=torch.long))

        # the backward pass and the update
        loss.backward()
        optimizer.step()

        # the loss as a Python number
        total_loss += loss.item()
    losses.append(total_loss)
print(losses)  # down on every pass over the data

# the embedding of one word
print(model.embeddings.weight[word_to_ix["beauty"]].shape)

# -- the exercise: Continuous Bag-of-Words, two words each side predict the middle one
CONTEXT_SIZE = 2  # 2 words to the left, 2 to the right
raw_text = """We are about to study the idea of a computational process.
Computational processes are abstract beings that inhabit computers.
As they evolve, processes manipulate other abstract things called data.
The evolution of a process is directed by a pattern of rules
called a program. People create programs to direct processes. In effect,
we conjure the spirits of the computer with our spells.""".split()

# a set of raw_text: each word once
vocab = set(raw_text)
vocab_size = len(vocab)

word_to_ix = {word: i for i, word in enumerate(vocab)}
data = []
for i in range(CONTEXT_SIZE, len(raw_text) - CONTEXT_SIZE):
    context = (
        [raw_text[i - j - 1] for j in range(CONTEXT_SIZE)]
        + [raw_text[i + j + 1] for j in range(CONTEXT_SIZE)]
    )
    target = raw_text[i]
    data.append((context, target))
print(data[:5])


class CBOW(nn.Module):

    def __init__(self, vocab_size, embedding_dim):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.linear = nn.Linear(embedding_dim, vocab_size)

    def forward(self, inputs):
        # the sum of the context's embeddings, mapped to a score per word
        embeds = self.embeddings(inputs).sum(dim=0).view(1, -1)
        return F.log_softmax(self.linear(embeds), dim=1)


def make_context_vector(context, word_to_ix):
    idxs = [word_to_ix[w] for w in context]
    return torch.tensor(idxs, dtype=torch.long)


make_context_vector(data[0][0], word_to_ix)  # example

model = CBOW(vocab_size, EMBEDDING_DIM)
optimizer = optim.SGD(model.parameters(), lr=0.05)
cbow_losses = []
for epoch in range(20):
    total_loss = 0
    for context, target in data:
        model.zero_grad()
        log_probs = model(make_context_vector(context, word_to_ix))
        loss = loss_function(log_probs, torch.tensor([word_to_ix[target]], dtype=torch.long))
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    cbow_losses.append(total_loss)
print(len(cbow_losses), cbow_losses[0] > cbow_losses[-1])

# -- Sequence Models and Long Short-Term Memory Networks
lstm = nn.LSTM(3, 3)  # input dim 3, output dim 3
inputs = [torch.randn(1, 3) for _ in range(5)]  # a sequence of length 5

# the hidden state, then the sequence one element at a time
hidden = (torch.randn(1, 1, 3),
          torch.randn(1, 1, 3))
for i in inputs:
    # after each step, hidden holds the hidden state
    out, hidden = lstm(i.view(1, 1, -1), hidden)

# or the whole sequence at once: out holds every hidden state, hidden the last one (to go on
# with the sequence later, pass it back in)
inputs = torch.cat(inputs).view(len(inputs), 1, -1)
hidden = (torch.randn(1, 1, 3), torch.randn(1, 1, 3))  # a fresh hidden state
out, hidden = lstm(inputs, hidden)
print(out.grad_fn.name(), out.tolist())
print([state.grad_fn.name() for state in hidden], [state.tolist() for state in hidden])


# an LSTM part-of-speech tagger
def prepare_sequence(seq, to_ix):
    idxs = [to_ix[w] for w in seq]
    return torch.tensor(idxs, dtype=torch.long)


training_data = [
    # tags: DET - determiner, NN - noun, V - verb (here "The" is a determiner)
    ("The dog ate the apple".split(), ["DET", "NN", "V", "DET", "NN"]),
    ("Everybody read that book".split(), ["NN", "V", "DET", "NN"])
]
word_to_ix = {}
# each word gets the next free index
for sent, tags in training_data:
    for word in sent:
        if word not in word_to_ix:  # a word not yet seen
            word_to_ix[word] = len(word_to_ix)  # its index
print(word_to_ix)
tag_to_ix = {"DET": 0, "NN": 1, "V": 2}  # the tags' indices

# real taggers use 32 or 64 dimensions: small ones show the weights move in training
EMBEDDING_DIM = 6
HIDDEN_DIM = 6


class LSTMTagger(nn.Module):

    def __init__(self, embedding_dim, hidden_dim, vocab_size, tagset_size):
        super(LSTMTagger, self).__init__()
        self.hidden_dim = hidden_dim

        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)

        # word embeddings in, hidden states of size hidden_dim out
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)

        # from hidden state space to tag space
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        tag_scores = F.log_softmax(tag_space, dim=1)
        return tag_scores


model = LSTMTagger(EMBEDDING_DIM, HIDDEN_DIM, len(word_to_ix), len(tag_to_ix))
loss_function = nn.NLLLoss()
optimizer = optim.SGD(model.parameters(), lr=0.1)

# the scores before training (no graph needed)
with torch.no_grad():
    inputs = prepare_sequence(training_data[0][0], word_to_ix)
    tag_scores = model(inputs)
    print(tag_scores)

for epoch in range(300):  # 300 epochs for toy data; a real set needs far fewer
    for sentence, tags in training_data:
        # gradients accumulate: clear them before each instance
        model.zero_grad()

        # the inputs as tensors of word indices
        sentence_in = prepare_sequence(sentence, word_to_ix)
        targets = prepare_sequence(tags, tag_to_ix)

        # the forward pass
        tag_scores = model(sentence_in)

        # the loss, its gradients, and the update
        loss = loss_function(tag_scores, targets)
        loss.backward()
        optimizer.step()

# the scores after training
with torch.no_grad():
    inputs = prepare_sequence(training_data[0][0], word_to_ix)
    tag_scores = model(inputs)

    # element i, j: the score of tag j for word i; the predicted sequence is 0 1 2 0 1
    print(tag_scores)
    print(tag_scores.argmax(1).tolist())
    pos_nll = sum(loss_function(model(prepare_sequence(s, word_to_ix)), prepare_sequence(t, tag_to_ix)).item()
                  for s, t in training_data)

print(f"FINAL bow_correct={bow_correct} creo_gap={creo_gap:.4f} ngram_loss={losses[-1]:.4f} "
      f"cbow_loss={cbow_losses[-1]:.4f} pos_nll={pos_nll:.4f}")
