"""End-To-End Memory Networks (Sukhbaatar et al., 2015) on synthetic bAbI-style stories.

Three task types in the style of bAbI: a single supporting fact ("mary went to the kitchen ...
where is mary"), two supporting facts ("john picked up the football ... john went to the office ...
where is the football") and two-argument relations ("the office is north of the kitchen ... what
is the office north of", which only the position encoding can tell from "what is north of the
office"). The model is the paper's MemN2N with everything the paper adds to it:

- ``nn.Embedding(vocab, d, padding_idx=0)`` for every embedding, so the nil word embeds to zero and
  gets no gradient;
- the position encoding ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)`` weighting the words of a sentence;
- temporal encoding: learned ``T_A``/``T_C`` rows per memory slot, the most recent sentence first;
- three hops with adjacent weight tying (``A_{k+1} = C_k``, ``B = A_1``, ``W^T = C_K``), so four
  embeddings and four temporal tables serve the whole network;
- attention over the memory slots with padded slots masked by ``masked_fill`` (``-inf`` before the
  softmax, ``0`` without it);
- linear start: the softmax removed for the first epochs, then put back;
- ``clip_grad_norm_(..., 40)``, SGD and ``StepLR`` annealing.

Accuracy is reported per task type.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

PEOPLE = ["mary", "john", "sandra", "daniel"]
PLACES = ["kitchen", "garden", "office", "bathroom", "hallway", "bedroom"]
OBJECTS = ["football", "apple", "milk"]
MOVES = ["went to the", "moved to the", "journeyed to the", "travelled to the"]
DIRECTIONS = ["north", "south", "east", "west"]
TASKS = ["single_fact", "two_facts", "relations"]
MEMORY_SIZE, SENTENCE_LEN = 10, 7


def make_story(task):
    """A list of sentences (lists of words), a question and its one-word answer."""
    if task == "relations":
        a, b, c = (PLACES[int(i)] for i in rng.permutation(len(PLACES))[:3])
        d1, d2 = (DIRECTIONS[int(i)] for i in rng.permutation(len(DIRECTIONS))[:2])
        facts = [(a, d1, b), (c, d2, b)]
        subject, direction, obj = facts[int(rng.integers(2))]
        sentences = [f"the {s} is {d} of the {o}".split() for s, d, o in facts]
        if rng.random() < 0.5:
            return sentences, f"what is {direction} of the {obj}".split(), subject
        return sentences, f"what is the {subject} {direction} of".split(), obj
    where = {}
    sentences = []
    n_moves = int(rng.integers(2, 9))
    holder, obj = None, OBJECTS[int(rng.integers(len(OBJECTS)))]
    pick_at = int(rng.integers(0, n_moves)) if task == "two_facts" else -1
    for i in range(n_moves):
        if i == pick_at:
            holder = PEOPLE[int(rng.integers(len(PEOPLE)))]
            sentences.append(f"{holder} picked up the {obj}".split())
        person = PEOPLE[int(rng.integers(len(PEOPLE)))]
        place = PLACES[int(rng.integers(len(PLACES)))]
        where[person] = place
        sentences.append(f"{person} {MOVES[int(rng.integers(len(MOVES)))]} {place}".split())
    if task == "two_facts":
        if holder not in where:  # the holder must have gone somewhere: one more move for them
            place = PLACES[int(rng.integers(len(PLACES)))]
            where[holder] = place
            sentences.append(f"{holder} went to the {place}".split())
        return sentences, f"where is the {obj}".split(), where[holder]
    person = list(where)[int(rng.integers(len(where)))]
    return sentences, f"where is {person}".split(), where[person]


def make_dataset(n_per_task):
    return [(task, *make_story(task)) for task in TASKS for _ in range(n_per_task)]


train_data, test_data = make_dataset(200), make_dataset(100)
words = sorted({w for _, story, q, a in train_data + test_data for s in story + [q] for w in s}
               | {a for _, _, _, a in train_data + test_data})
word_to_index = {w: i + 1 for i, w in enumerate(words)}  # 0 is the nil word
vocab_size = len(words) + 1
print(f"vocabulary {vocab_size} words, {len(train_data)} training and {len(test_data)} test stories")


def vectorise(data):
    """Stories as (N, MEMORY_SIZE, SENTENCE_LEN) word indices, most recent sentence in slot 0."""
    stories = torch.zeros(len(data), MEMORY_SIZE, SENTENCE_LEN, dtype=torch.long)
    queries = torch.zeros(len(data), SENTENCE_LEN, dtype=torch.long)
    answers = torch.zeros(len(data), dtype=torch.long)
    tasks = torch.zeros(len(data), dtype=torch.long)
    for n, (task, story, question, answer) in enumerate(data):
        for slot, sentence in enumerate(reversed(story[-MEMORY_SIZE:])):
            stories[n, slot, :len(sentence)] = torch.tensor([word_to_index[w] for w in sentence])
        queries[n, :len(question)] = torch.tensor([word_to_index[w] for w in question])
        answers[n] = word_to_index[answer]
        tasks[n] = TASKS.index(task)
    return stories, queries, answers, tasks


train_s, train_q, train_a, train_t = vectorise(train_data)
test_s, test_q, test_a, test_t = vectorise(test_data)
print(f"stories {tuple(train_s.shape)} queries {tuple(train_q.shape)} "
      f"padded slots {(train_s == 0).all(-1).float().mean().item():.3f}")


def position_encoding(sentence_len, embed_dim):
    """The paper's l_kj = (1 - j/J) - (k/d)(1 - 2j/J), as a (J, d) matrix (j, k from 1)."""
    j = torch.arange(1, sentence_len + 1, dtype=torch.float32).unsqueeze(1)
    k = torch.arange(1, embed_dim + 1, dtype=torch.float32).unsqueeze(0)
    return (1 - j / sentence_len) - (k / embed_dim) * (1 - 2 * j / sentence_len)


class MemN2N(nn.Module):
    def __init__(self, vocab_size, embed_dim, memory_size, sentence_len, hops=3):
        super().__init__()
        self.hops = hops
        # adjacent tying: hop k reads memory with embeddings[k] (A_k) and outputs with
        # embeddings[k + 1] (C_k = A_{k+1}); the question uses embeddings[0] (B = A_1) and the answer
        # layer the last one (W^T = C_K)
        self.embeddings = nn.ModuleList(
            [nn.Embedding(vocab_size, embed_dim, padding_idx=0) for _ in range(hops + 1)])
        self.temporal = nn.ParameterList(
            [nn.Parameter(torch.randn(memory_size, embed_dim) * 0.1) for _ in range(hops + 1)])
        for embedding in self.embeddings:
            nn.init.normal_(embedding.weight, std=0.1)
            with torch.no_grad():
                embedding.weight[embedding.padding_idx].fill_(0)
        self.register_buffer("encoding", position_encoding(sentence_len, embed_dim))
        self.linear_start = False

    def embed_memory(self, story, k):
        return (self.embeddings[k](story) * self.encoding).sum(2) + self.temporal[k]

    def forward(self, story, query):
        u = (self.embeddings[0](query) * self.encoding).sum(1)
        padded = (story == 0).all(dim=-1)
        attention = []
        for k in range(self.hops):
            m = self.embed_memory(story, k)
            c = self.embed_memory(story, k + 1)
            scores = torch.bmm(m, u.unsqueeze(2)).squeeze(2)
            if self.linear_start:
                p = scores.masked_fill(padded, 0.0)
            else:
                p = F.softmax(scores.masked_fill(padded, float("-inf")), dim=-1)
            attention.append(p)
            o = torch.bmm(p.unsqueeze(1), c).squeeze(1)
            u = u + o
        return u @ self.embeddings[-1].weight.t(), torch.stack(attention, dim=1)


model = MemN2N(vocab_size, embed_dim=20, memory_size=MEMORY_SIZE, sentence_len=SENTENCE_LEN)
print("parameters", sum(p.numel() for p in model.parameters()),
      "tensors", [tuple(p.shape) for p in model.parameters()][:2], "...")
print("position encoding", tuple(model.encoding.shape),
      f"first word {model.encoding[0, 0].item():.4f} last word {model.encoding[-1, -1].item():.4f}")

EPOCHS, LINEAR_START_EPOCHS, BATCH = 30, 8, 32
optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)


@torch.no_grad()
def evaluate(stories, queries, answers, tasks):
    logits, attention = model(stories, queries)
    correct = logits.argmax(dim=1) == answers
    per_task = [correct[tasks == t].float().mean().item() for t in range(len(TASKS))]
    return F.cross_entropy(logits, answers).item(), correct.float().mean().item(), per_task, attention


for epoch in range(EPOCHS):
    model.linear_start = epoch < LINEAR_START_EPOCHS
    model.train()
    order = torch.randperm(len(train_a))
    total, clipped = 0.0, 0
    for start in range(0, len(order), BATCH):
        idx = order[start:start + BATCH]
        logits, _ = model(train_s[idx], train_q[idx])
        loss = F.cross_entropy(logits, train_a[idx], reduction="sum")
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 40.0)
        clipped += int(norm > 40.0)
        optimizer.step()
        total += loss.item()
    lr = scheduler.get_last_lr()[0]
    scheduler.step()
    if epoch % 5 == 4 or epoch == LINEAR_START_EPOCHS - 1:
        _, acc, _, _ = evaluate(train_s, train_q, train_a, train_t)
        mode = "linear" if model.linear_start else "softmax"
        print(f"epoch {epoch + 1:2d} {mode} lr {lr:.5f} loss {total / len(order):.4f} train acc {acc:.3f} "
              f"clipped {clipped}")

# padding_idx keeps the nil row at zero in the lookups; the answer layer W^T = C_K is a plain
# matrix product, so the last embedding's nil row learns like any other logit's row
lookup_only = model.embeddings[:-1]
print("nil word rows zero", all(torch.equal(e.weight[0], torch.zeros(e.embedding_dim)) for e in lookup_only),
      "gradients zero", all(torch.equal(e.weight.grad[0], torch.zeros(e.embedding_dim)) for e in lookup_only),
      "answer layer's nil row moved", bool(model.embeddings[-1].weight[0].abs().sum() > 0))

test_loss, test_acc, per_task, attention = evaluate(test_s, test_q, test_a, test_t)
padded = (test_s == 0).all(dim=-1)
print("attention", tuple(attention.shape), "sums to one", torch.allclose(attention.sum(-1), torch.ones(len(test_a), 3)),
      "on padded slots", attention.masked_select(padded.unsqueeze(1)).abs().max().item())
for name, acc in zip(TASKS, per_task):
    print(f"test accuracy {name:12s} {acc:.3f}")
# the supporting fact of a single-fact question is that person's most recent move: the first
# slot (most recent first) whose sentence starts with the person asked about
single = test_t == 0
first_word = test_s[single][:, :, 0]
support = (first_word == test_q[single][:, 2:3]).float().argmax(dim=1)
hits = (attention[single].argmax(dim=-1) == support.unsqueeze(1)).float().mean(0)
print("single-fact attention on the supporting sentence by hop", [round(h, 3) for h in hits.tolist()])

print(f"FINAL test_loss={test_loss:.4f} acc={test_acc:.4f} "
      + " ".join(f"acc_{name}={acc:.4f}" for name, acc in zip(TASKS, per_task))
      + f" support_hit={hits.max().item():.4f}")
