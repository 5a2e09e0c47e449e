"""Hugging Face-style generation utilities written by hand, as the GPT-2 sampling scripts of
run_generation.py and the transformers logits processors spell them, on a tiny trained GRU
language model: ``top_k_top_p_filtering`` (``torch.topk(logits, top_k)[0][..., -1, None]``,
``logits[indices_to_remove] = filter_value``, ``torch.sort(logits, descending=True)``,
``torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)``, the shift
``sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()``,
``sorted_indices_to_remove[..., 0] = 0`` on a bool tensor, ``scatter(1, sorted_indices,
sorted_indices_to_remove)``, ``masked_fill(indices_to_remove, -float('inf'))``); the repetition
penalty by ``torch.gather`` + ``torch.where`` + ``scatter_``; beam search with ``beam_scores[:,
1:] = -1e9``, ``beam_scores[:, None].expand_as(...)``, ``torch.topk`` over flattened ``(batch,
num_beams * vocab)`` scores and ``torch.div(..., rounding_mode='floor')`` / ``%`` index arithmetic
(against ``//``), reordering by ``input_ids[beam_idx, :]``; ``torch.multinomial(probs,
num_samples=1, generator=g)`` with a seeded ``torch.Generator``; beam search of one beam against
greedy decoding.

The language model learns a sparse first-order Markov chain over twelve letters (each letter has
three successors) from a fixed NumPy seed; sampled and searched text is scored under the true chain.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# data: a Markov chain where each letter goes to one of three successors
letters = "abcdefghijkl"
vocab_size = len(letters)
rng = np.random.RandomState(0)
transition = np.zeros((vocab_size, vocab_size))
for a in range(vocab_size):
    successors = rng.choice(vocab_size, size=3, replace=False)
    transition[a, successors] = rng.dirichlet(np.ones(3) * 2.0)
true_entropy = -np.sum(transition * np.log(np.where(transition > 0, transition, 1.0)), axis=1).mean()


def sample_chain(n, length):
    seqs = np.zeros((n, length), dtype=np.int64)
    seqs[:, 0] = rng.randint(0, vocab_size, size=n)
    for t in range(1, length):
        for i in range(n):
            seqs[i, t] = rng.choice(vocab_size, p=transition[seqs[i, t - 1]])
    return torch.from_numpy(seqs)


data = sample_chain(256, 17)


def chain_log_likelihood(ids):
    """Mean log-probability per transition under the true chain (-inf for impossible ones)."""
    ids = ids.numpy()
    p = transition[ids[:, :-1], ids[:, 1:]]
    with np.errstate(divide="ignore"):
        return float(np.log(p).mean()), float((p > 0).mean())


class GRULanguageModel(nn.Module):
    def __init__(self, vocab_size, n_embd=24, n_hidden=48):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.rnn = nn.GRU(n_embd, n_hidden, batch_first=True)
        self.lm_head = nn.Linear(n_hidden, vocab_size)

    def forward(self, input_ids):
        hidden, _ = self.rnn(self.wte(input_ids))
        return self.lm_head(hidden)


model = GRULanguageModel(vocab_size)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(120):
    idx = torch.randint(0, data.size(0), (32,))
    batch = data[idx]
    logits = model(batch[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, vocab_size), batch[:, 1:].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 40 == 0:
        print(f"step {step} loss {loss.item():.4f}")
print(f"train loss {loss.item():.4f} (true chain entropy {true_entropy:.4f})")
model.eval()


def top_k_top_p_filtering(logits, top_k=0, top_p=0.0, filter_value=-float('Inf')):
    """ Filter a distribution of logits using top-k and/or nucleus (top-p) filtering
        Args:
            logits: logits distribution shape (batch size x vocabulary size)
            top_k > 0: keep only top k tokens with highest probability (top-k filtering).
            top_p > 0.0: keep the top tokens with cumulative probability >= top_p (nucleus filtering).
    """
    top_k = min(top_k, logits.size(-1))  # Safety check
    if top_k > 0:
        # Remove all tokens with a probability less than the last token of the top-k
        indices_to_remove = logits < torch.topk(logits, top_k)[0][..., -1, None]
        logits[indices_to_remove] = filter_value

    if top_p > 0.0:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)

        # Remove tokens with cumulative probability above the threshold
        sorted_indices_to_remove = cumulative_probs > top_p
        # Shift the indices to the right to keep also the first token above the threshold
        sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
        sorted_indices_to_remove[..., 0] = 0

        # scatter sorted tensors to original indexing
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        logits = logits.masked_fill(indices_to_remove, filter_value)
    return logits


def apply_repetition_penalty(input_ids, scores, penalty):
    score = torch.gather(scores, 1, input_ids)
    # if score < 0 then repetition penalty has to be multiplied to reduce the token probabilities
    score = torch.where(score < 0, score * penalty, score / penalty)
    scores.scatter_(1, input_ids, score)
    return scores


@torch.no_grad()
def sample_sequence(input_ids, length, temperature=1.0, top_k=0, top_p=0.0, repetition_penalty=1.0,
                    generator=None):
    for _ in range(length):
        next_token_logits = model(input_ids)[:, -1, :] / temperature
        if repetition_penalty != 1.0:
            next_token_logits = apply_repetition_penalty(input_ids, next_token_logits, repetition_penalty)
        filtered_logits = top_k_top_p_filtering(next_token_logits, top_k=top_k, top_p=top_p)
        probs = F.softmax(filtered_logits, dim=-1)
        next_token = torch.multinomial(probs, num_samples=1, generator=generator)
        input_ids = torch.cat((input_ids, next_token), dim=1)
    return input_ids


@torch.no_grad()
def beam_search(input_ids, num_beams, max_length):
    batch_size = input_ids.shape[0]
    input_ids = input_ids.repeat_interleave(num_beams, dim=0)
    beam_scores = torch.zeros((batch_size, num_beams), dtype=torch.float, device=input_ids.device)
    # only the first beam of each prompt is live at the start, or all beams would pick the same tokens
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view((batch_size * num_beams,))
    floor_checks = 0
    while input_ids.shape[-1] < max_length:
        next_token_logits = model(input_ids)[:, -1, :]
        next_token_scores = F.log_softmax(next_token_logits, dim=-1)  # (batch_size * num_beams, vocab_size)
        next_token_scores = next_token_scores + beam_scores[:, None].expand_as(next_token_scores)
        # reshape for beam search
        next_token_scores = next_token_scores.view(batch_size, num_beams * vocab_size)
        next_token_scores, next_tokens = torch.topk(
            next_token_scores, 2 * num_beams, dim=1, largest=True, sorted=True
        )
        next_indices = torch.div(next_tokens, vocab_size, rounding_mode='floor')
        floor_checks += int(torch.equal(next_indices, next_tokens // vocab_size))
        next_tokens = next_tokens % vocab_size
        # without an end-of-sequence token the best num_beams candidates always continue
        beam_offsets = torch.arange(batch_size, device=input_ids.device).unsqueeze(1) * num_beams
        beam_idx = (next_indices[:, :num_beams] + beam_offsets).view(-1)
        beam_next_tokens = next_tokens[:, :num_beams].reshape(-1)
        input_ids = torch.cat([input_ids[beam_idx, :], beam_next_tokens.unsqueeze(-1)], dim=-1)
        beam_scores = next_token_scores[:, :num_beams].reshape(-1)
    best = input_ids.view(batch_size, num_beams, -1)[:, 0]
    return best, beam_scores.view(batch_size, num_beams)[:, 0], floor_checks


# the filter on a batch of next-token logits
prompts = torch.arange(vocab_size).unsqueeze(1)
with torch.no_grad():
    logits = model(prompts)[:, -1, :]
kept_k = torch.isfinite(top_k_top_p_filtering(logits.clone(), top_k=3)).sum(-1)
nucleus = top_k_top_p_filtering(logits.clone(), top_p=0.9)
kept_p = torch.isfinite(nucleus).sum(-1)
nucleus_mass = (F.softmax(logits, -1) * torch.isfinite(nucleus)).sum(-1)
print(f"top_k=3 keeps {kept_k.tolist()} tokens per row")
print(f"top_p=0.9 keeps {kept_p.float().mean().item():.2f} tokens per row, "
      f"mass >= 0.9: {bool((nucleus_mass >= 0.9).all())}")

# sampling with a seeded generator: the same generator seed gives the same text
g = torch.Generator().manual_seed(seed)
start = torch.randint(0, vocab_size, (8, 1), generator=g)
g.manual_seed(1234 + seed)
plain = sample_sequence(start, 24, generator=g)
g.manual_seed(1234 + seed)
again = sample_sequence(start, 24, generator=g)
filtered = sample_sequence(start, 24, temperature=0.8, top_k=3, top_p=0.9, generator=g)
penalised = sample_sequence(start, 24, repetition_penalty=1.5, generator=g)
print(f"same generator seed, same samples: {torch.equal(plain, again)}")
_, plain_valid = chain_log_likelihood(plain)
filtered_ll, filtered_valid = chain_log_likelihood(filtered)
_, penalised_valid = chain_log_likelihood(penalised)
distinct = lambda ids: np.mean([len(set(row.tolist())) for row in ids])  # noqa: E731
# a plain sample may take an impossible transition (log-likelihood -inf), so only validity is printed
print(f"plain sampling: valid transitions {plain_valid:.3f}")
print(f"top-k/top-p sampling: valid transitions {filtered_valid:.3f} log-likelihood {filtered_ll:.4f}")
print(f"repetition penalty: distinct letters {distinct(penalised):.2f} vs {distinct(plain):.2f} plain")
first_sample = "".join(letters[i] for i in filtered[0].tolist())
print(f"first filtered sample has {len(first_sample)} letters")

# beam search against greedy decoding
beam_best, beam_score, floor_checks = beam_search(start, num_beams=4, max_length=12)
one_beam, one_score, _ = beam_search(start, num_beams=1, max_length=12)
greedy = start
with torch.no_grad():
    for _ in range(11):
        greedy = torch.cat([greedy, model(greedy)[:, -1, :].argmax(-1, keepdim=True)], dim=1)
print(f"floor division agrees with // on {floor_checks} of 11 steps")
print(f"one beam equals greedy: {torch.equal(one_beam, greedy)}")
beam_ll, beam_valid = chain_log_likelihood(beam_best)
print(f"beam search (4 beams): score {beam_score.mean().item():.4f} vs greedy {one_score.mean().item():.4f}, "
      f"valid transitions {beam_valid:.3f}")

print(f"FINAL train_loss={loss.item():.4f} sample_valid={plain_valid:.4f} filtered_valid={filtered_valid:.4f} "
      f"filtered_ll={filtered_ll:.4f} beam_score={beam_score.mean().item():.4f} "
      f"beam_gain={(beam_score - one_score).mean().item():.4f} beam_valid={beam_valid:.4f} "
      f"distinct_penalised={distinct(penalised):.4f}")
