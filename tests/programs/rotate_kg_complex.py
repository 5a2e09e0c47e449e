"""DeepGraphLearning/KnowledgeGraphEmbedding's RotatE on a synthetic graph whose relations are
rotations (shifts on a cycle of entities): ``KGEModel`` with ``nn.Parameter(torch.Tensor([gamma]),
requires_grad=False)`` and ``embedding_range``, ``nn.init.uniform_(tensor=..., a=-r, b=r)``,
``torch.index_select`` in 'single', 'head-batch' and 'tail-batch' modes, entity embeddings split by
``torch.chunk(head, 2, dim=2)``, relation phases ``relation / (embedding_range.item() / pi)`` through
``torch.cos``/``torch.sin``, ``torch.stack([re_score, im_score], dim=0).norm(dim=0).sum(dim=2)`` and
``gamma - score`` (against the same score by ``torch.complex``/``torch.polar`` + ``.abs()``, values
and gradients), the repository's ``TrainDataset`` (``np.isin`` filtered negatives, ``subsampling_weight``
by ``torch.sqrt(1 / torch.Tensor([...]))``, ``collate_fn``) and ``BidirectionalOneShotIterator``,
self-adversarial negative sampling (``(F.softmax(negative_score * alpha, dim=1).detach() *
F.logsigmoid(-negative_score)).sum(dim=1)``), Adam, and the filtered ``TestDataset`` with
``filter_bias`` ranked by ``torch.argsort(score, dim=1, descending=True)`` into MRR and Hits@k.
"""

# ruff: noqa: UP004, UP008, UP028, UP031  (the repository's own spelling: (object), super(KGEModel, self), % formats)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------------------- codes/dataloader.py
class TrainDataset(Dataset):
    def __init__(self, triples, nentity, nrelation, negative_sample_size, mode):
        self.len = len(triples)
        self.triples = triples
        self.triple_set = set(triples)
        self.nentity = nentity
        self.nrelation = nrelation
        self.negative_sample_size = negative_sample_size
        self.mode = mode
        self.count = self.count_frequency(triples)
        self.true_head, self.true_tail = self.get_true_head_and_tail(self.triples)

    def __len__(self):
        return self.len

    def __getitem__(self, idx):
        positive_sample = self.triples[idx]

        head, relation, tail = positive_sample

        subsampling_weight = self.count[(head, relation)] + self.count[(tail, -relation - 1)]
        subsampling_weight = torch.sqrt(1 / torch.Tensor([subsampling_weight]))

        negative_sample_list = []
        negative_sample_size = 0

        while negative_sample_size < self.negative_sample_size:
            negative_sample = np.random.randint(self.nentity, size=self.negative_sample_size * 2)
            if self.mode == 'head-batch':
                mask = np.isin(
                    negative_sample,
                    self.true_head[(relation, tail)],
                    assume_unique=True,
                    invert=True
                )
            elif self.mode == 'tail-batch':
                mask = np.isin(
                    negative_sample,
                    self.true_tail[(head, relation)],
                    assume_unique=True,
                    invert=True
                )
            else:
                raise ValueError('Training batch mode %s not supported' % self.mode)
            negative_sample = negative_sample[mask]
            negative_sample_list.append(negative_sample)
            negative_sample_size += negative_sample.size

        negative_sample = np.concatenate(negative_sample_list)[:self.negative_sample_size]

        negative_sample = torch.LongTensor(negative_sample)

        positive_sample = torch.LongTensor(positive_sample)

        return positive_sample, negative_sample, subsampling_weight, self.mode

    @staticmethod
    def collate_fn(data):
        positive_sample = torch.stack([_[0] for _ in data], dim=0)
        negative_sample = torch.stack([_[1] for _ in data], dim=0)
        subsample_weight = torch.cat([_[2] for _ in data], dim=0)
        mode = data[0][3]
        return positive_sample, negative_sample, subsample_weight, mode

    @staticmethod
    def count_frequency(triples, start=4):
        count = {}
        for head, relation, tail in triples:
            if (head, relation) not in count:
                count[(head, relation)] = start
            else:
                count[(head, relation)] += 1

            if (tail, -relation - 1) not in count:
                count[(tail, -relation - 1)] = start
            else:
                count[(tail, -relation - 1)] += 1
        return count

    @staticmethod
    def get_true_head_and_tail(triples):
        true_head = {}
        true_tail = {}

        for head, relation, tail in triples:
            if (head, relation) not in true_tail:
                true_tail[(head, relation)] = []
            true_tail[(head, relation)].append(tail)
            if (relation, tail) not in true_head:
                true_head[(relation, tail)] = []
            true_head[(relation, tail)].append(head)

        for relation, tail in true_head:
            true_head[(relation, tail)] = np.array(list(set(true_head[(relation, tail)])))
        for head, relation in true_tail:
            true_tail[(head, relation)] = np.array(list(set(true_tail[(head, relation)])))

        return true_head, true_tail


class TestDataset(Dataset):
    def __init__(self, triples, all_true_triples, nentity, nrelation, mode):
        self.len = len(triples)
        self.triple_set = set(all_true_triples)
        self.triples = triples
        self.nentity = nentity
        self.nrelation = nrelation
        self.mode = mode

    def __len__(self):
        return self.len

    def __getitem__(self, idx):
        head, relation, tail = self.triples[idx]

        if self.mode == 'head-batch':
            tmp = [(0, rand_head) if (rand_head, relation, tail) not in self.triple_set
                   else (-1, head) for rand_head in range(self.nentity)]
            tmp[head] = (0, head)
        elif self.mode == 'tail-batch':
            tmp = [(0, rand_tail) if (head, relation, rand_tail) not in self.triple_set
                   else (-1, tail) for rand_tail in range(self.nentity)]
            tmp[tail] = (0, tail)
        else:
            raise ValueError('negative batch mode %s not supported' % self.mode)

        tmp = torch.LongTensor(tmp)
        filter_bias = tmp[:, 0].float()
        negative_sample = tmp[:, 1]

        positive_sample = torch.LongTensor((head, relation, tail))

        return positive_sample, negative_sample, filter_bias, self.mode

    @staticmethod
    def collate_fn(data):
        positive_sample = torch.stack([_[0] for _ in data], dim=0)
        negative_sample = torch.stack([_[1] for _ in data], dim=0)
        filter_bias = torch.stack([_[2] for _ in data], dim=0)
        mode = data[0][3]
        return positive_sample, negative_sample, filter_bias, mode


class BidirectionalOneShotIterator(object):
    def __init__(self, dataloader_head, dataloader_tail):
        self.iterator_head = self.one_shot_iterator(dataloader_head)
        self.iterator_tail = self.one_shot_iterator(dataloader_tail)
        self.step = 0

    def __next__(self):
        self.step += 1
        if self.step % 2 == 0:
            data = next(self.iterator_head)
        else:
            data = next(self.iterator_tail)
        return data

    @staticmethod
    def one_shot_iterator(dataloader):
        '''
        Transform a PyTorch Dataloader into python iterator
        '''
        while True:
            for data in dataloader:
                yield data


# ----------------------------------------------------------------------------- codes/model.py
class KGEModel(nn.Module):
    def __init__(self, model_name, nentity, nrelation, hidden_dim, gamma,
                 double_entity_embedding=False, double_relation_embedding=False):
        super(KGEModel, self).__init__()
        self.model_name = model_name
        self.nentity = nentity
        self.nrelation = nrelation
        self.hidden_dim = hidden_dim
        self.epsilon = 2.0

        self.gamma = nn.Parameter(
            torch.Tensor([gamma]),
            requires_grad=False
        )

        self.embedding_range = nn.Parameter(
            torch.Tensor([(self.gamma.item() + self.epsilon) / hidden_dim]),
            requires_grad=False
        )

        self.entity_dim = hidden_dim * 2 if double_entity_embedding else hidden_dim
        self.relation_dim = hidden_dim * 2 if double_relation_embedding else hidden_dim

        self.entity_embedding = nn.Parameter(torch.zeros(nentity, self.entity_dim))
        nn.init.uniform_(
            tensor=self.entity_embedding,
            a=-self.embedding_range.item(),
            b=self.embedding_range.item()
        )

        self.relation_embedding = nn.Parameter(torch.zeros(nrelation, self.relation_dim))
        nn.init.uniform_(
            tensor=self.relation_embedding,
            a=-self.embedding_range.item(),
            b=self.embedding_range.item()
        )

        if model_name == 'RotatE' and (not double_entity_embedding or double_relation_embedding):
            raise ValueError('RotatE should use --double_entity_embedding')

    def forward(self, sample, mode='single'):
        if mode == 'single':
            batch_size, negative_sample_size = sample.size(0), 1

            head = torch.index_select(
                self.entity_embedding,
                dim=0,
                index=sample[:, 0]
            ).unsqueeze(1)

            relation = torch.index_select(
                self.relation_embedding,
                dim=0,
                index=sample[:, 1]
            ).unsqueeze(1)

            tail = torch.index_select(
                self.entity_embedding,
                dim=0,
                index=sample[:, 2]
            ).unsqueeze(1)

        elif mode == 'head-batch':
            tail_part, head_part = sample
            batch_size, negative_sample_size = head_part.size(0), head_part.size(1)

            head = torch.index_select(
                self.entity_embedding,
                dim=0,
                index=head_part.view(-1)
            ).view(batch_size, negative_sample_size, -1)

            relation = torch.index_select(
                self.relation_embedding,
                dim=0,
                index=tail_part[:, 1]
            ).unsqueeze(1)

            tail = torch.index_select(
                self.entity_embedding,
                dim=0,
                index=tail_part[:, 2]
            ).unsqueeze(1)

        elif mode == 'tail-batch':
            head_part, tail_part = sample
            batch_size, negative_sample_size = tail_part.size(0), tail_part.size(1)

            head = torch.index_select(
                self.entity_embedding,
                dim=0,
                index=head_part[:, 0]
            ).unsqueeze(1)

            relation = torch.index_select(
                self.relation_embedding,
                dim=0,
                index=head_part[:, 1]
            ).unsqueeze(1)

            tail = torch.index_select(
                self.entity_embedding,
                dim=0,
                index=tail_part.view(-1)
            ).view(batch_size, negative_sample_size, -1)

        else:
            raise ValueError('mode %s not supported' % mode)

        model_func = {
            'RotatE': self.RotatE,
            'RotatEComplex': self.RotatEComplex,
        }

        if self.model_name in model_func:
            score = model_func[self.model_name](head, relation, tail, mode)
        else:
            raise ValueError('model %s not supported' % self.model_name)

        return score

    def RotatE(self, head, relation, tail, mode):
        pi = 3.14159265358979323846

        re_head, im_head = torch.chunk(head, 2, dim=2)
        re_tail, im_tail = torch.chunk(tail, 2, dim=2)

        # Make phases of relations uniformly distributed in [-pi, pi]

        phase_relation = relation / (self.embedding_range.item() / pi)

        re_relation = torch.cos(phase_relation)
        im_relation = torch.sin(phase_relation)

        if mode == 'head-batch':
            re_score = re_relation * re_tail + im_relation * im_tail
            im_score = re_relation * im_tail - im_relation * re_tail
            re_score = re_score - re_head
            im_score = im_score - im_head
        else:
            re_score = re_head * re_relation - im_head * im_relation
            im_score = re_head * im_relation + im_head * re_relation
            re_score = re_score - re_tail
            im_score = im_score - im_tail

        score = torch.stack([re_score, im_score], dim=0)
        score = score.norm(dim=0)

        score = self.gamma.item() - score.sum(dim=2)
        return score

    def RotatEComplex(self, head, relation, tail, mode):
        """The same score written with complex tensors."""
        re_head, im_head = torch.chunk(head, 2, dim=2)
        re_tail, im_tail = torch.chunk(tail, 2, dim=2)
        phase_relation = relation / (self.embedding_range.item() / torch.pi)
        h = torch.complex(re_head, im_head)
        t = torch.complex(re_tail, im_tail)
        r = torch.polar(torch.ones_like(phase_relation), phase_relation)
        if mode == 'head-batch':
            diff = r.conj() * t - h
        else:
            diff = h * r - t
        return self.gamma.item() - diff.abs().sum(dim=2)

    @staticmethod
    def train_step(model, optimizer, train_iterator, args):
        model.train()

        optimizer.zero_grad()

        positive_sample, negative_sample, subsampling_weight, mode = next(train_iterator)

        negative_score = model((positive_sample, negative_sample), mode=mode)

        if args['negative_adversarial_sampling']:
            # In self-adversarial sampling, we do not apply back-propagation on the sampling weight
            negative_score = (F.softmax(negative_score * args['adversarial_temperature'], dim=1).detach()
                              * F.logsigmoid(-negative_score)).sum(dim=1)
        else:
            negative_score = F.logsigmoid(-negative_score).mean(dim=1)

        positive_score = model(positive_sample)

        positive_score = F.logsigmoid(positive_score).squeeze(dim=1)

        if args['uni_weight']:
            positive_sample_loss = - positive_score.mean()
            negative_sample_loss = - negative_score.mean()
        else:
            positive_sample_loss = - (subsampling_weight * positive_score).sum() / subsampling_weight.sum()
            negative_sample_loss = - (subsampling_weight * negative_score).sum() / subsampling_weight.sum()

        loss = (positive_sample_loss + negative_sample_loss) / 2

        loss.backward()

        optimizer.step()

        log = {
            'positive_sample_loss': positive_sample_loss.item(),
            'negative_sample_loss': negative_sample_loss.item(),
            'loss': loss.item()
        }

        return log

    @staticmethod
    def test_step(model, test_triples, all_true_triples, args):
        model.eval()

        test_dataloader_head = DataLoader(
            TestDataset(test_triples, all_true_triples, args['nentity'], args['nrelation'], 'head-batch'),
            batch_size=args['test_batch_size'],
            collate_fn=TestDataset.collate_fn
        )

        test_dataloader_tail = DataLoader(
            TestDataset(test_triples, all_true_triples, args['nentity'], args['nrelation'], 'tail-batch'),
            batch_size=args['test_batch_size'],
            collate_fn=TestDataset.collate_fn
        )

        test_dataset_list = [test_dataloader_head, test_dataloader_tail]

        logs = []

        with torch.no_grad():
            for test_dataset in test_dataset_list:
                for positive_sample, negative_sample, filter_bias, mode in test_dataset:
                    batch_size = positive_sample.size(0)

                    score = model((positive_sample, negative_sample), mode)
                    score += filter_bias

                    # Explicitly sort all the entities to ensure that there is no test exposure bias
                    argsort = torch.argsort(score, dim=1, descending=True)

                    if mode == 'head-batch':
                        positive_arg = positive_sample[:, 0]
                    elif mode == 'tail-batch':
                        positive_arg = positive_sample[:, 2]
                    else:
                        raise ValueError('mode %s not supported' % mode)

                    for i in range(batch_size):
                        # Notice that argsort is not ranking
                        ranking = (argsort[i, :] == positive_arg[i]).nonzero()
                        assert ranking.size(0) == 1

                        # ranking + 1 is the true ranking used in evaluation metrics
                        ranking = 1 + ranking.item()
                        logs.append({
                            'MRR': 1.0 / ranking,
                            'MR': float(ranking),
                            'HITS@1': 1.0 if ranking <= 1 else 0.0,
                            'HITS@3': 1.0 if ranking <= 3 else 0.0,
                            'HITS@10': 1.0 if ranking <= 10 else 0.0,
                        })

        metrics = {}
        for metric in logs[0].keys():
            metrics[metric] = sum([log[metric] for log in logs]) / len(logs)

        return metrics


# ----------------------------------------------------------------------------- a graph of rotations
nentity, shifts = 36, [1, 4, 9, -1]
nrelation = len(shifts)
rng = np.random.RandomState(0)
all_triples = [(e, r, (e + s) % nentity) for r, s in enumerate(shifts) for e in range(nentity)]
order = rng.permutation(len(all_triples))
test_triples = [all_triples[i] for i in order[:24]]
train_triples = [all_triples[i] for i in order[24:]]
print(f"#entity: {nentity} #relation: {nrelation} #train: {len(train_triples)} #test: {len(test_triples)}")

args = {
    'negative_adversarial_sampling': True, 'adversarial_temperature': 1.0, 'uni_weight': False,
    'nentity': nentity, 'nrelation': nrelation, 'test_batch_size': 8,
}
hidden_dim, gamma, negative_sample_size, batch_size = 8, 6.0, 16, 32
kge_model = KGEModel('RotatE', nentity, nrelation, hidden_dim, gamma, double_entity_embedding=True)
for name, param in kge_model.named_parameters():
    print(f"Parameter {name}: {tuple(param.size())}, require_grad = {param.requires_grad}")

# the two routes to the score: chunk/cos/sin/stack-norm against complex/polar/abs
pos = torch.LongTensor(train_triples[:6])
neg = torch.randint(0, nentity, (6, 5))
complex_model = KGEModel('RotatEComplex', nentity, nrelation, hidden_dim, gamma, double_entity_embedding=True)
complex_model.load_state_dict(kge_model.state_dict())
route_err, grad_err = 0.0, 0.0
for sample, mode in ((pos, 'single'), ((pos, neg), 'head-batch'), ((pos, neg), 'tail-batch')):
    s1, s2 = kge_model(sample, mode), complex_model(sample, mode)
    g1 = torch.autograd.grad(s1.sum(), [kge_model.entity_embedding, kge_model.relation_embedding])
    g2 = torch.autograd.grad(s2.sum(), [complex_model.entity_embedding, complex_model.relation_embedding])
    route_err = max(route_err, (s1 - s2).abs().max().item())
    grad_err = max(grad_err, max((a - b).abs().max().item() for a, b in zip(g1, g2)))
    print(f"{mode}: score shape {tuple(s1.shape)}")
print(f"complex route max |diff| {route_err:.2e}, gradient max |diff| {grad_err:.2e}")

train_dataloader_head = DataLoader(
    TrainDataset(train_triples, nentity, nrelation, negative_sample_size, 'head-batch'),
    batch_size=batch_size, shuffle=True, collate_fn=TrainDataset.collate_fn)
train_dataloader_tail = DataLoader(
    TrainDataset(train_triples, nentity, nrelation, negative_sample_size, 'tail-batch'),
    batch_size=batch_size, shuffle=True, collate_fn=TrainDataset.collate_fn)
train_iterator = BidirectionalOneShotIterator(train_dataloader_head, train_dataloader_tail)

metrics_init = KGEModel.test_step(kge_model, test_triples, all_triples, args)
optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, kge_model.parameters()), lr=0.05)
for step in range(1, 401):
    log = KGEModel.train_step(kge_model, optimizer, train_iterator, args)
    if step % 100 == 0:
        print(f"Training average loss at step {step}: {log['loss']:.4f} "
              f"(positive {log['positive_sample_loss']:.4f}, negative {log['negative_sample_loss']:.4f})")

metrics = KGEModel.test_step(kge_model, test_triples, all_triples, args)
for metric in metrics:
    print(f"Test {metric} at step {step}: {metrics[metric]:.4f}")
# learned phases: relation 0 (shift 1) composed four times is relation 1 (shift 4), mod 2 pi
with torch.no_grad():
    phase = kge_model.relation_embedding / (kge_model.embedding_range.item() / torch.pi)
    comp = torch.polar(torch.ones_like(phase[0]), 4 * phase[0]) - torch.polar(torch.ones_like(phase[1]), phase[1])
    inv = torch.polar(torch.ones_like(phase[0]), phase[0] + phase[3]) - 1
print(f"FINAL mrr_init={metrics_init['MRR']:.4f} mrr={metrics['MRR']:.4f} hits1={metrics['HITS@1']:.4f} "
      f"hits3={metrics['HITS@3']:.4f} hits10={metrics['HITS@10']:.4f} loss={log['loss']:.4f} "
      f"compose={comp.abs().mean().item():.4f} inverse={inv.abs().mean().item():.4f} "
      f"route_err={route_err + grad_err:.6f}")
