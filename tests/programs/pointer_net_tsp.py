"""A Pointer Network for the 2-d travelling salesman problem trained with REINFORCE, as Bello et al.'s
"Neural Combinatorial Optimization with Reinforcement Learning" and its PyTorch ports
(pemami4911/neural-combinatorial-rl-pytorch, higgsfield's notebook) write it.

Cities are embedded by an ``nn.Linear`` and read by an ``nn.LSTM(batch_first=True)`` encoder; the
decoder is an ``nn.LSTMCell`` started from the encoder's last state and a learned first input
(``nn.Parameter(torch.FloatTensor(d).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))`` expanded to
the batch). Each step takes one glimpse and then points: ``Attention`` is
``v . tanh(W_ref ref + W_q q)`` with ``ref`` projected once by an ``nn.Conv1d(d, d, 1)`` over
``permute(0, 2, 1)``; the glimpse is ``torch.bmm(ref, softmax(u).unsqueeze(2))``, the pointer's
logits are clipped as ``C * torch.tanh(u)`` (C = 10), and visited cities are masked by
``logits.masked_fill(mask, float('-inf'))`` with the mask grown by ``mask.scatter(1, idx, True)``.
Training samples tours from ``torch.distributions.Categorical(logits=...)`` (``.sample()``,
``.log_prob()``, ``.entropy()`` on masked logits), the next input is the chosen city's embedding by
``torch.gather`` with an expanded index; a tour's length is ``gather`` of the coordinates in tour
order and ``torch.roll(tour, -1, dims=1)`` for the closing edge. The loss is REINFORCE with an
exponential moving-average baseline (``baseline = beta * baseline + (1 - beta) * length.mean()``),
Adam and ``clip_grad_norm_``. Evaluation decodes greedily (``argmax``) and is compared with a
nearest-neighbour heuristic and with random tours, on the same held-out instances; every tour is
checked to be a permutation by ``torch.sort``.

The data: cities uniform in the unit square from torch's RNG.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

N_CITIES, EMBED, HIDDEN, C_CLIP = 8, 32, 32, 10.0


class Attention(nn.Module):
    def __init__(self, dim, use_tanh=False, C=10.0):
        super().__init__()
        self.use_tanh = use_tanh
        self.C = C
        self.project_query = nn.Linear(dim, dim)
        self.project_ref = nn.Conv1d(dim, dim, 1, 1)
        self.v = nn.Parameter(torch.FloatTensor(dim).uniform_(-1.0 / math.sqrt(dim), 1.0 / math.sqrt(dim)))

    def forward(self, query, ref):
        """query: (batch, dim); ref: (batch, n, dim) -> projected ref (batch, dim, n), logits (batch, n)."""
        ref = self.project_ref(ref.permute(0, 2, 1))
        q = self.project_query(query).unsqueeze(2)
        expanded_v = self.v.unsqueeze(0).unsqueeze(0).expand(ref.size(0), 1, self.v.size(0))
        u = torch.bmm(expanded_v, torch.tanh(q + ref)).squeeze(1)
        logits = self.C * torch.tanh(u) if self.use_tanh else u
        return ref, logits


class PointerNet(nn.Module):
    def __init__(self, embedding_size, hidden_size, n_glimpses=1, tanh_exploration=C_CLIP):
        super().__init__()
        self.embedding = nn.Linear(2, embedding_size)
        self.encoder = nn.LSTM(embedding_size, hidden_size, batch_first=True)
        self.decoder = nn.LSTMCell(embedding_size, hidden_size)
        self.pointer = Attention(hidden_size, use_tanh=True, C=tanh_exploration)
        self.glimpse = Attention(hidden_size, use_tanh=False)
        self.n_glimpses = n_glimpses
        bound = 1.0 / math.sqrt(embedding_size)
        self.decoder_start_input = nn.Parameter(torch.FloatTensor(embedding_size).uniform_(-bound, bound))

    def forward(self, coords, greedy=False):
        batch_size, seq_len, _ = coords.size()
        embedded = self.embedding(coords)
        encoder_outputs, (hidden, context) = self.encoder(embedded)
        hidden, context = hidden.squeeze(0), context.squeeze(0)
        mask = torch.zeros(batch_size, seq_len, dtype=torch.bool)
        decoder_input = self.decoder_start_input.unsqueeze(0).expand(batch_size, -1)
        tour, log_probs, entropies = [], [], []
        for _ in range(seq_len):
            hidden, context = self.decoder(decoder_input, (hidden, context))
            query = hidden
            for _ in range(self.n_glimpses):
                ref, logits = self.glimpse(query, encoder_outputs)
                logits = logits.masked_fill(mask, float("-inf"))
                query = torch.bmm(ref, F.softmax(logits, dim=1).unsqueeze(2)).squeeze(2)
            _, logits = self.pointer(query, encoder_outputs)
            logits = logits.masked_fill(mask, float("-inf"))
            dist = Categorical(logits=logits)
            idx = logits.argmax(dim=1) if greedy else dist.sample()
            log_probs.append(dist.log_prob(idx))
            entropies.append(dist.entropy())
            tour.append(idx)
            mask = mask.scatter(1, idx.unsqueeze(1), True)
            decoder_input = torch.gather(embedded, 1, idx.view(-1, 1, 1).expand(-1, 1, embedded.size(2))).squeeze(1)
        return torch.stack(tour, 1), torch.stack(log_probs, 1), torch.stack(entropies, 1)


def tour_length(coords, tour):
    ordered = torch.gather(coords, 1, tour.unsqueeze(2).expand(-1, -1, 2))
    return (ordered - torch.roll(ordered, -1, dims=1)).norm(dim=2).sum(1)


def nearest_neighbour_tours(coords):
    batch_size, n, _ = coords.shape
    dist = torch.cdist(coords, coords)
    current = torch.zeros(batch_size, dtype=torch.long)
    visited = torch.zeros(batch_size, n, dtype=torch.bool)
    tour = [current]
    rows = torch.arange(batch_size)
    for _ in range(n - 1):
        visited[rows, current] = True
        step = dist[rows, current].masked_fill(visited, float("inf"))
        current = step.argmin(dim=1)
        tour.append(current)
    return torch.stack(tour, 1)


def is_permutation(tour):
    return bool((torch.sort(tour, dim=1).values == torch.arange(tour.size(1))).all())


model = PointerNet(EMBED, HIDDEN)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
print("parameters", sum(p.numel() for p in model.parameters()))

probe = torch.rand(4, N_CITIES, 2)
with torch.no_grad():
    probe_tour, probe_log_probs, probe_entropy = model(probe)
print("sampled tours", tuple(probe_tour.shape), "permutations", is_permutation(probe_tour),
      "last step log_prob 0", bool((probe_log_probs[:, -1] == 0).all()),
      "last step entropy 0", bool((probe_entropy[:, -1] == 0).all()))

STEPS, BATCH, BETA, MAX_GRAD_NORM = 120, 64, 0.9, 1.0
baseline = None
for step in range(1, STEPS + 1):
    coords = torch.rand(BATCH, N_CITIES, 2)
    tour, log_probs, entropies = model(coords)
    length = tour_length(coords, tour)
    baseline = length.mean() if baseline is None else BETA * baseline + (1 - BETA) * length.mean()
    advantage = (length - baseline).detach()
    loss = (advantage * log_probs.sum(1)).mean()
    optimizer.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
    optimizer.step()
    baseline = baseline.detach()
    if step % 30 == 0:
        print(f"step {step:3d} length {length.mean().item():.4f} baseline {baseline.item():.4f} "
              f"entropy {entropies[:, 0].mean().item():.4f} grad norm {grad_norm.item():.3f}")

test_coords = torch.rand(256, N_CITIES, 2)
model.eval()
with torch.no_grad():
    greedy_tour, greedy_log_probs, _ = model(test_coords, greedy=True)
    sampled_tour, _, _ = model(test_coords)
nn_tour = nearest_neighbour_tours(test_coords)
random_tour = torch.stack([torch.randperm(N_CITIES) for _ in range(len(test_coords))])
print("all tours permutations", all(is_permutation(t) for t in (greedy_tour, sampled_tour, nn_tour, random_tour)))
lengths = {name: tour_length(test_coords, t).mean().item() for name, t in
           [("greedy", greedy_tour), ("sampled", sampled_tour), ("nearest", nn_tour), ("random", random_tour)]}
print("greedy log-likelihood per step", f"{greedy_log_probs.mean().item():.4f}")
for name, value in lengths.items():
    print(f"test {name:8s} tour length {value:.4f}")
print(f"greedy / nearest neighbour {lengths['greedy'] / lengths['nearest']:.4f}")
print(f"FINAL greedy={lengths['greedy']:.4f} sampled={lengths['sampled']:.4f} nearest={lengths['nearest']:.4f} "
      f"random={lengths['random']:.4f} ratio={lengths['greedy'] / lengths['nearest']:.4f}")
