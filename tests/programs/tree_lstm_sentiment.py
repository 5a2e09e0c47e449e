"""Tai, Socher & Manning (2015) Child-Sum Tree-LSTMs as stanfordnlp/treelstm.pytorch writes them, on
synthetic dependency trees whose sentiment is compositional.

A sentence is a dependency tree over words with a polarity (positive/negative adjectives and verbs,
neutral nouns and fillers, negators); a node's label is the sign of its own word's polarity plus its
non-negator children's labels, flipped when a negator hangs off it, so "not" reverses a whole
subtree. The repository's pieces: a ``Tree`` class (``add_child``, memoised ``size``/``depth``), the
recursive ``ChildSumTreeLSTM.forward(tree, inputs)`` with leaves' zero states from
``inputs[0].detach().new(1, mem_dim).fill_(0.).requires_grad_()``, ``torch.sum(child_h, dim=0,
keepdim=True)``, ``torch.split(iou, iou.size(1) // 3, dim=1)`` (checked against ``chunk``),
``F.sigmoid``/``F.tanh`` gates, ``self.fx(inputs).repeat(len(child_h), 1)`` on a 1-D input, and
``torch.mul``; frozen "GloVe" vectors through ``nn.Embedding(padding_idx=0)`` with ``weight.data.copy_``
and ``requires_grad = False``; Adagrad with weight decay over ``filter(lambda p: p.requires_grad, ...)``,
stepping every ``batchsize`` trees.

Sentiment: a per-node ``SentimentModule`` with the old repo's ``nn.LogSoftmax()`` (no ``dim``: torch's
implicit-dimension warning, caught and counted) and ``nn.NLLLoss`` summed over every node. Relatedness
(the SICK set-up): two trees, ``Similarity`` on ``torch.mul(lvec, rvec)`` and ``torch.abs(torch.add(lvec,
-rvec))``, ``F.log_softmax`` over 5 classes, ``map_label_to_target`` soft targets and ``nn.KLDivLoss()``
(default ``reduction='mean'`` and its warning), ``dataset[indices[idx]]`` with a 0-d tensor index,
predictions ``torch.dot(indices, torch.exp(output))``, the repo's Pearson and MSE metrics. And an
identity: on a chain tree the Child-Sum cell is an ``nn.LSTMCell`` whose weights are the gates' ``cat``.
"""

import math
import os
import warnings
from copy import deepcopy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

POSITIVE = ["good", "great", "superb", "lovely", "loved", "enjoyed", "fresh", "witty"]
NEGATIVE = ["bad", "awful", "dull", "boring", "hated", "disliked", "weak", "clumsy"]
NEGATORS = ["not", "never", "hardly"]
NEUTRAL = ["movie", "film", "plot", "cast", "the", "a", "was", "it", "story", "ending", "and", "very"]
itos = ["<pad>"] + POSITIVE + NEGATIVE + NEGATORS + NEUTRAL
stoi = {w: i for i, w in enumerate(itos)}
polarity = {**{w: 1 for w in POSITIVE}, **{w: -1 for w in NEGATIVE}}
IN_DIM, MEM_DIM, HIDDEN_DIM, NUM_CLASSES, SIM_CLASSES = 20, 24, 16, 3, 5


class Tree(object):  # noqa: UP004 (the repo's spelling)
    def __init__(self):
        self.parent = None
        self.num_children = 0
        self.children = list()

    def add_child(self, child):
        child.parent = self
        self.num_children += 1
        self.children.append(child)

    def size(self):
        if getattr(self, "_size", None):
            return self._size
        count = 1
        for i in range(self.num_children):
            count += self.children[i].size()
        self._size = count
        return self._size

    def depth(self):
        if getattr(self, "_depth", None) is not None:
            return self._depth
        count = 0
        if self.num_children > 0:
            for i in range(self.num_children):
                child_depth = self.children[i].depth()
                if child_depth > count:
                    count = child_depth
            count += 1
        self._depth = count
        return self._depth


def random_tree(words, depth=0):
    node = Tree()
    node.word = str(rng.choice(POSITIVE + NEGATIVE if depth == 0 or rng.random() < 0.6 else NEUTRAL))
    if rng.random() < 0.35:
        negator = Tree()
        negator.word, negator.gold_label = str(rng.choice(NEGATORS)), 1
        node.add_child(negator)
    for _ in range(int(rng.integers(0, 3)) if depth < 2 else 0):
        node.add_child(random_tree(words, depth + 1))
    if rng.random() < 0.5:
        filler = Tree()
        filler.word, filler.gold_label = str(rng.choice(NEUTRAL)), 1
        node.add_child(filler)
    order = list(range(node.num_children))
    rng.shuffle(order)
    node.children = [node.children[i] for i in order]
    # a node's words come after its children's (the sentence order does not matter to the model)
    for child in node.children:
        if not hasattr(child, "idx"):
            child.idx = len(words)
            words.append(child.word)
    node.idx = len(words)
    words.append(node.word)
    score = polarity.get(node.word, 0) + sum(c.gold_label - 1 for c in node.children if c.word not in NEGATORS)
    value = int(np.sign(score)) * (-1 if any(c.word in NEGATORS for c in node.children) else 1)
    node.gold_label = value + 1
    return node


def make_sentence():
    words = []
    tree = random_tree(words)
    return tree, torch.tensor([stoi[w] for w in words], dtype=torch.long)


def all_nodes(tree):
    yield tree
    for child in tree.children:
        yield from all_nodes(child)


def glove_vectors():
    axis = rng.normal(size=IN_DIM)
    axis /= np.linalg.norm(axis)
    vectors = rng.normal(0.0, 0.4, size=(len(itos), IN_DIM))
    for word, sign in polarity.items():
        vectors[stoi[word]] += 1.2 * sign * axis
    vectors[0] = 0.0
    return torch.from_numpy(vectors).float()


class ChildSumTreeLSTM(nn.Module):
    def __init__(self, in_dim, mem_dim):
        super(ChildSumTreeLSTM, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.in_dim = in_dim
        self.mem_dim = mem_dim
        self.ioux = nn.Linear(self.in_dim, 3 * self.mem_dim)
        self.iouh = nn.Linear(self.mem_dim, 3 * self.mem_dim)
        self.fx = nn.Linear(self.in_dim, self.mem_dim)
        self.fh = nn.Linear(self.mem_dim, self.mem_dim)

    def node_forward(self, inputs, child_c, child_h):
        child_h_sum = torch.sum(child_h, dim=0, keepdim=True)

        iou = self.ioux(inputs) + self.iouh(child_h_sum)
        i, o, u = torch.split(iou, iou.size(1) // 3, dim=1)
        i, o, u = F.sigmoid(i), F.sigmoid(o), F.tanh(u)

        f = F.sigmoid(
            self.fh(child_h) +
            self.fx(inputs).repeat(len(child_h), 1)
        )
        fc = torch.mul(f, child_c)

        c = torch.mul(i, u) + torch.sum(fc, dim=0, keepdim=True)
        h = torch.mul(o, F.tanh(c))
        return c, h

    def forward(self, tree, inputs):
        for idx in range(tree.num_children):
            self.forward(tree.children[idx], inputs)

        if tree.num_children == 0:
            child_c = inputs[0].detach().new(1, self.mem_dim).fill_(0.).requires_grad_()
            child_h = inputs[0].detach().new(1, self.mem_dim).fill_(0.).requires_grad_()
        else:
            child_c, child_h = zip(*map(lambda x: x.state, tree.children))
            child_c, child_h = torch.cat(child_c, dim=0), torch.cat(child_h, dim=0)

        tree.state = self.node_forward(inputs[tree.idx], child_c, child_h)
        return tree.state


class SentimentModule(nn.Module):
    def __init__(self, mem_dim, num_classes, dropout=False):
        super(SentimentModule, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.dropout = dropout
        self.l1 = nn.Linear(mem_dim, num_classes)
        self.logsoftmax = nn.LogSoftmax()

    def forward(self, vec, training=False):
        if self.dropout:
            return self.logsoftmax(self.l1(F.dropout(vec, training=training)))
        return self.logsoftmax(self.l1(vec))


class SentimentTreeLSTM(nn.Module):
    def __init__(self, vectors):
        super(SentimentTreeLSTM, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.emb = nn.Embedding(len(itos), IN_DIM, padding_idx=0)
        self.emb.weight.data.copy_(vectors)
        self.emb.weight.requires_grad = False
        self.childsumtreelstm = ChildSumTreeLSTM(IN_DIM, MEM_DIM)
        self.output_module = SentimentModule(MEM_DIM, NUM_CLASSES)
        self.criterion = nn.NLLLoss()

    def forward(self, tree, inputs):
        self.childsumtreelstm(tree, self.emb(inputs))
        loss = 0.0
        for node in all_nodes(tree):
            node.output = self.output_module(node.state[1], self.training)
            loss = loss + self.criterion(node.output, torch.tensor([node.gold_label]))
        return tree.output, loss


class Similarity(nn.Module):
    def __init__(self, mem_dim, hidden_dim, num_classes):
        super(Similarity, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.wh = nn.Linear(2 * mem_dim, hidden_dim)
        self.wp = nn.Linear(hidden_dim, num_classes)

    def forward(self, lvec, rvec):
        mult_dist = torch.mul(lvec, rvec)
        abs_dist = torch.abs(torch.add(lvec, -rvec))
        vec_dist = torch.cat((mult_dist, abs_dist), 1)
        out = F.sigmoid(self.wh(vec_dist))
        out = F.log_softmax(self.wp(out), dim=1)
        return out


class SimilarityTreeLSTM(nn.Module):
    def __init__(self, vectors):
        super(SimilarityTreeLSTM, self).__init__()  # noqa: UP008 (the repo's spelling)
        self.emb = nn.Embedding(len(itos), IN_DIM, padding_idx=0)
        self.emb.weight.data.copy_(vectors)
        self.emb.weight.requires_grad = False
        self.childsumtreelstm = ChildSumTreeLSTM(IN_DIM, MEM_DIM)
        self.similarity = Similarity(MEM_DIM, HIDDEN_DIM, SIM_CLASSES)

    def forward(self, ltree, linputs, rtree, rinputs):
        lstate, lhidden = self.childsumtreelstm(ltree, self.emb(linputs))
        rstate, rhidden = self.childsumtreelstm(rtree, self.emb(rinputs))
        return self.similarity(lhidden, rhidden)


class SICKDataset(object):  # noqa: UP004 (the repo's spelling)
    def __init__(self, size):
        self.num_classes = SIM_CLASSES
        self.ltrees, self.lsentences, self.rtrees, self.rsentences, labels = [], [], [], [], []
        for _ in range(size):
            ltree, lsent = make_sentence()
            rtree, rsent = make_sentence()
            gap = abs(ltree.gold_label - rtree.gold_label)
            labels.append(float(np.clip(5.0 - 2.0 * gap + rng.uniform(-0.5, 0.5), 1.0, 5.0)))
            self.ltrees.append(ltree), self.lsentences.append(lsent)
            self.rtrees.append(rtree), self.rsentences.append(rsent)
        self.labels = torch.tensor(labels, dtype=torch.float)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        ltree = deepcopy(self.ltrees[index])
        rtree = deepcopy(self.rtrees[index])
        return ltree, deepcopy(self.lsentences[index]), rtree, deepcopy(self.rsentences[index]), self.labels[index]


def map_label_to_target(label, num_classes):
    target = torch.zeros(1, num_classes, dtype=torch.float, device="cpu")
    ceil = int(math.ceil(label))
    floor = int(math.floor(label))
    if ceil == floor:
        target[0, floor - 1] = 1
    else:
        target[0, floor - 1] = ceil - label
        target[0, ceil - 1] = label - floor
    return target


def pearson(predictions, labels):
    x = deepcopy(predictions)
    y = deepcopy(labels)
    x = (x - x.mean()) / x.std()
    y = (y - y.mean()) / y.std()
    return torch.mean(torch.mul(x, y))


def sentiment_accuracy(model, data):
    model.eval()
    root, nodes, total = 0, 0, 0
    with torch.no_grad():
        for tree, sentence in data:
            model(tree, sentence)
            root += int(tree.output.argmax(1).item() == tree.gold_label)
            for node in all_nodes(tree):
                nodes += int(node.output.argmax(1).item() == node.gold_label)
                total += 1
    model.train()
    return root / len(data), nodes / total


vectors = glove_vectors()
train = [make_sentence() for _ in range(150)]
test = [make_sentence() for _ in range(100)]
sizes = [t.size() for t, _ in train]
root_labels = torch.tensor([t.gold_label for t, _ in train])
print(f"trees train {len(train)} test {len(test)} nodes per tree {np.mean(sizes):.2f} max depth "
      f"{max(t.depth() for t, _ in train)} root labels {torch.bincount(root_labels, minlength=3).tolist()}")
assert all(len(s) == t.size() for t, s in train)

# --- sentiment: per-node NLL over every node, Adagrad with weight decay --------------------------
model = SentimentTreeLSTM(vectors)
optimizer = optim.Adagrad(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1, weight_decay=1e-4)
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"sentiment parameters {n_trainable} frozen {model.emb.weight.numel()} embedding grad {model.emb.weight.requires_grad}")

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    tree, sentence = train[0]
    output, loss = model(tree, sentence)
implicit = [w for w in caught if "Implicit dimension" in str(w.message)]
print(f"nn.LogSoftmax() warnings per tree {len(implicit) // tree.size()} category {implicit[0].category.__name__}: "
      f"{str(implicit[0].message)}")
print("root output", tuple(output.shape), output.grad_fn.name(), "loss", loss.grad_fn.name(),
      "leaf state grad_fn", next(n for n in all_nodes(tree) if n.num_children == 0).state[1].grad_fn.name())
iou = model.childsumtreelstm.ioux(model.emb(sentence)[tree.idx]) + torch.zeros(1, 3 * MEM_DIM)
print("split == chunk", all(torch.equal(a, b) for a, b in zip(torch.split(iou, iou.size(1) // 3, dim=1), iou.chunk(3, 1))),
      "split sizes", [tuple(p.shape) for p in torch.split(iou, MEM_DIM, dim=1)])

EPOCHS, BATCHSIZE = 3, 10
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for epoch in range(EPOCHS):
        total_loss, total_nodes = 0.0, 0
        indices = torch.randperm(len(train), dtype=torch.long, device="cpu")
        optimizer.zero_grad()
        for idx in range(len(train)):
            tree, sentence = train[indices[idx]]
            _, loss = model(tree, sentence)
            total_loss += loss.item()
            total_nodes += tree.size()
            loss.backward()
            if idx % BATCHSIZE == 0 and idx > 0:
                optimizer.step()
                optimizer.zero_grad()
        print(f"sentiment epoch {epoch + 1} loss per node {total_loss / total_nodes:.4f}")
    sentiment_root, sentiment_nodes = sentiment_accuracy(model, test)
print(f"sentiment test root acc {sentiment_root:.3f} node acc {sentiment_nodes:.3f}")
state = optimizer.state[model.childsumtreelstm.ioux.weight]
print("adagrad state", sorted(state.keys()), "step", int(state["step"]), "sum positive", bool((state["sum"] > 0).all()))

# negation: the same phrase with and without "not" must flip
flips, probes = 0, 0
model.eval()
with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for word in POSITIVE + NEGATIVE:
        head = Tree()
        head.word, head.idx = word, 0
        plain = model.childsumtreelstm(head, model.emb(torch.tensor([stoi[word]])))[1]
        negated_head, negator = Tree(), Tree()
        negated_head.word, negated_head.idx, negator.word, negator.idx = word, 1, "not", 0
        negated_head.add_child(negator)
        flipped = model.childsumtreelstm(negated_head, model.emb(torch.tensor([stoi["not"], stoi[word]])))[1]
        before = model.output_module(plain).argmax(1).item()
        after = model.output_module(flipped).argmax(1).item()
        flips += int(before == polarity[word] + 1 and after == 1 - polarity[word])
        probes += 1
print(f"negation flips {flips}/{probes} words")

# --- the chain identity: Child-Sum with one child per node is an LSTMCell ------------------------
cell_tree = model.childsumtreelstm
chain_words = torch.tensor([stoi[w] for w in ["the", "movie", "not", "good"]])
nodes = [Tree() for _ in chain_words]
for i, node in enumerate(nodes):
    node.idx = i
    if i > 0:
        node.add_child(nodes[i - 1])
with torch.no_grad():
    emb = model.emb(chain_words)
    c_tree, h_tree = cell_tree(nodes[-1], emb)
    W_i, W_o, W_u = cell_tree.ioux.weight.split(MEM_DIM)
    U_i, U_o, U_u = cell_tree.iouh.weight.split(MEM_DIM)
    b_i, b_o, b_u = cell_tree.ioux.bias.split(MEM_DIM)
    c_i, c_o, c_u = cell_tree.iouh.bias.split(MEM_DIM)
    lstm = nn.LSTMCell(IN_DIM, MEM_DIM)
    lstm.weight_ih.copy_(torch.cat([W_i, cell_tree.fx.weight, W_u, W_o]))
    lstm.weight_hh.copy_(torch.cat([U_i, cell_tree.fh.weight, U_u, U_o]))
    lstm.bias_ih.copy_(torch.cat([b_i, cell_tree.fx.bias, b_u, b_o]))
    lstm.bias_hh.copy_(torch.cat([c_i, cell_tree.fh.bias, c_u, c_o]))
    hx = (torch.zeros(1, MEM_DIM), torch.zeros(1, MEM_DIM))
    for x in emb:
        hx = lstm(x.unsqueeze(0), hx)
print("chain tree == LSTMCell", torch.allclose(h_tree, hx[0], atol=1e-6), torch.allclose(c_tree, hx[1], atol=1e-6))
model.train()

# --- relatedness: two trees, Similarity head, KLDivLoss on soft targets ---------------------------
train_pairs, test_pairs = SICKDataset(80), SICKDataset(50)
sim_model = SimilarityTreeLSTM(vectors)
# start the relatedness encoder from the sentiment one: relatedness here is agreement of sentiment
sim_model.childsumtreelstm.load_state_dict(model.childsumtreelstm.state_dict())
sim_model.childsumtreelstm.requires_grad_(False)
criterion = nn.KLDivLoss()
sim_optimizer = optim.Adagrad(filter(lambda p: p.requires_grad, sim_model.parameters()), lr=0.3, weight_decay=1e-4)
print("target for 3.6", map_label_to_target(3.6, SIM_CLASSES).tolist(), "for 5.0", map_label_to_target(5.0, SIM_CLASSES).tolist())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ltree, linput, rtree, rinput, label = train_pairs[torch.tensor(0)]
    probe = criterion(sim_model(ltree, linput, rtree, rinput), map_label_to_target(label.item(), SIM_CLASSES))
print("KLDivLoss()", criterion.reduction, "loss", tuple(probe.shape), probe.grad_fn.name(), "warnings",
      len(caught), caught[0].category.__name__, str(caught[0].message).split(".")[0])


def test_similarity(dataset):
    sim_model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total_loss = 0.0
        predictions = torch.zeros(len(dataset), dtype=torch.float, device="cpu")
        indices = torch.arange(1, dataset.num_classes + 1, dtype=torch.float, device="cpu")
        for idx in range(len(dataset)):
            ltree, linput, rtree, rinput, label = dataset[idx]
            target = map_label_to_target(label, dataset.num_classes)
            output = sim_model(ltree, linput, rtree, rinput)
            loss = criterion(output, target)
            total_loss += loss.item()
            output = output.squeeze().to("cpu")
            predictions[idx] = torch.dot(indices, torch.exp(output))
    sim_model.train()
    return total_loss / len(dataset), predictions


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for epoch in range(4):
        sim_model.train()
        sim_optimizer.zero_grad()
        total_loss = 0.0
        indices = torch.randperm(len(train_pairs), dtype=torch.long, device="cpu")
        for idx in range(len(train_pairs)):
            ltree, linput, rtree, rinput, label = train_pairs[indices[idx]]
            target = map_label_to_target(label, train_pairs.num_classes)
            output = sim_model(ltree, linput, rtree, rinput)
            loss = criterion(output, target)
            total_loss += loss.item()
            loss.backward()
            if idx % BATCHSIZE == 0 and idx > 0:
                sim_optimizer.step()
                sim_optimizer.zero_grad()
        test_loss, predictions = test_similarity(test_pairs)
        print(f"relatedness epoch {epoch + 1} train loss {total_loss / len(train_pairs):.4f} test loss {test_loss:.4f} "
              f"pearson {pearson(predictions, test_pairs.labels).item():.4f} "
              f"mse {F.mse_loss(predictions, test_pairs.labels).item():.4f}")

_, predictions = test_similarity(test_pairs)
sim_pearson = pearson(predictions, test_pairs.labels).item()
sim_mse = F.mse_loss(predictions, test_pairs.labels).item()
print(f"relatedness test mse {sim_mse:.4f}")
print(f"FINAL root_acc={sentiment_root:.4f} node_acc={sentiment_nodes:.4f} pearson={sim_pearson:.4f}")
