"""Direct Preference Optimization (Rafailov et al. 2023) on a tiny causal transformer, written as the
reference implementation (eric-mitchell/direct-preference-optimization) and TRL's ``DPOTrainer`` are.

First supervised fine-tuning (SFT) on demonstrations: ``F.cross_entropy(..., ignore_index=-100)``
with the prompt and padding labelled -100. The reference model is ``copy.deepcopy(model)`` made
frozen by ``requires_grad_(False)`` and ``eval()``. Preference pairs are two responses sampled from
the SFT model (``torch.multinomial`` on ``softmax(logits[:, -1] / temperature)`` under
``torch.no_grad()``) and ranked by a hidden reward, the number of times token ``K`` appears (ties
dropped). Sequence log-probabilities as ``get_batch_logps`` computes them: labels shifted by one
``.clone()``-d, ``loss_mask = labels != -100``, the -100s replaced by 0, ``torch.gather`` on
``logits.log_softmax(-1)`` then ``.squeeze(2)``, summed under the mask; chosen and rejected in one
``concatenated_forward`` by ``torch.cat`` and split by slicing. The DPO loss ``-F.logsigmoid(beta *
(pi_logratios - ref_logratios))`` and the IPO variant ``(logits - 1 / (2 * beta)) ** 2`` each train
a policy from the same SFT weights; implicit rewards ``beta * (policy_logps - reference_logps)
.detach()``, reward accuracy and margins on held-out pairs; ``clip_grad_norm_``; the policy's shift
reported as the mean count of ``K`` in sampled responses before and after, and a Monte Carlo KL
to the reference.

The data: prompts of three to five random tokens; SFT responses copy the prompt with noise.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

PAD, VOCAB, K = 0, 10, 3  # token 0 pads; tokens 1..9 are words; the hidden reward counts token K
RESPONSE_LEN, MAX_PROMPT = 6, 5
MAX_LEN = MAX_PROMPT + RESPONSE_LEN


def demonstration(prompt):
    """A response that copies the prompt cyclically, each token replaced by a random one with
    probability 0.4."""
    response = [prompt[i % len(prompt)] for i in range(RESPONSE_LEN)]
    return [int(rng.integers(1, VOCAB)) if rng.random() < 0.4 else t for t in response]


def random_prompt():
    return [int(t) for t in rng.integers(1, VOCAB, size=int(rng.integers(3, MAX_PROMPT + 1)))]


def to_batch(prompts, responses):
    """Right-padded input ids and labels: -100 on the prompt and the padding, the response's own
    tokens elsewhere (the loss reads only the response)."""
    ids = torch.full((len(prompts), MAX_LEN), PAD, dtype=torch.long)
    labels = torch.full((len(prompts), MAX_LEN), -100, dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        ids[i, :len(p) + len(r)] = torch.tensor(p + r)
        labels[i, len(p):len(p) + len(r)] = torch.tensor(r)
    return ids, labels


class TinyLM(nn.Module):
    def __init__(self, d_model=32, n_head=4, n_layer=2):
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB, d_model)
        self.pos_emb = nn.Embedding(MAX_LEN, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_head, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, VOCAB, bias=False)
        self.register_buffer("causal_mask", torch.triu(torch.full((MAX_LEN, MAX_LEN), float("-inf")), diagonal=1))

    def forward(self, ids):
        t = ids.size(1)
        x = self.tok_emb(ids) + self.pos_emb(torch.arange(t, device=ids.device))
        x = self.blocks(x, mask=self.causal_mask[:t, :t], is_causal=True)
        return self.lm_head(self.ln_f(x))


def get_batch_logps(logits, labels):
    labels = labels[:, 1:].clone()
    logits = logits[:, :-1, :]
    loss_mask = labels != -100
    labels[labels == -100] = 0
    per_token_logps = torch.gather(logits.log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)
    return (per_token_logps * loss_mask).sum(-1)


def concatenated_forward(model, chosen_ids, chosen_labels, rejected_ids, rejected_labels):
    ids = torch.cat([chosen_ids, rejected_ids], dim=0)
    labels = torch.cat([chosen_labels, rejected_labels], dim=0)
    all_logps = get_batch_logps(model(ids), labels)
    n = chosen_ids.shape[0]
    return all_logps[:n], all_logps[n:]


def preference_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps,
                    beta, ipo=False):
    pi_logratios = policy_chosen_logps - policy_rejected_logps
    ref_logratios = reference_chosen_logps - reference_rejected_logps
    logits = pi_logratios - ref_logratios
    if ipo:
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        losses = -F.logsigmoid(beta * logits)
    chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps).detach()
    rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps).detach()
    return losses, chosen_rewards, rejected_rewards


@torch.no_grad()
def sample(model, prompts, temperature=1.0):
    """One response per prompt, token by token; prompts of one length at a time (no padding)."""
    was_training = model.training
    model.eval()
    responses = [None] * len(prompts)
    for length in sorted({len(p) for p in prompts}):
        rows = [i for i, p in enumerate(prompts) if len(p) == length]
        ids = torch.tensor([prompts[i] for i in rows])
        for _ in range(RESPONSE_LEN):
            logits = model(ids)[:, -1, :] / temperature
            logits[:, PAD] = float("-inf")
            next_token = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            ids = torch.cat((ids, next_token), dim=1)
        for row, i in enumerate(rows):
            responses[i] = ids[row, length:].tolist()
    model.train(was_training)
    return responses


def reward(response):
    return sum(t == K for t in response)


# ---- supervised fine-tuning
sft_prompts = [random_prompt() for _ in range(1536)]
sft_ids, sft_labels = to_batch(sft_prompts, [demonstration(p) for p in sft_prompts])
print(f"sft data {tuple(sft_ids.shape)} response tokens {(sft_labels != -100).sum().item()}")

model = TinyLM()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
for epoch in range(4):
    order = torch.randperm(len(sft_ids))
    total, steps = 0.0, 0
    for start in range(0, len(order), 64):
        idx = order[start:start + 64]
        logits = model(sft_ids[idx])
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), sft_labels[idx, 1:].reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, steps = total + loss.item(), steps + 1
    print(f"sft epoch {epoch + 1} loss {total / steps:.4f}")

reference = copy.deepcopy(model)
reference.requires_grad_(False)
reference.eval()
print("reference frozen", all(not p.requires_grad for p in reference.parameters()), "training", reference.training,
      "policy trainable", all(p.requires_grad for p in model.parameters()))

# ---- preference pairs sampled from the SFT model, ranked by the hidden reward
def preference_pairs(n):
    prompts = [random_prompt() for _ in range(n)]
    first, second = sample(reference, prompts), sample(reference, prompts)
    kept = [(p, a, b) if reward(a) > reward(b) else (p, b, a) for p, a, b in zip(prompts, first, second)
            if reward(a) != reward(b)]
    prompts, chosen, rejected = zip(*kept)
    return to_batch(prompts, chosen) + to_batch(prompts, rejected)


train_pairs = preference_pairs(900)
test_pairs = preference_pairs(300)
print(f"pairs train {len(train_pairs[0])} test {len(test_pairs[0])} (ties dropped)")

eval_prompts = [random_prompt() for _ in range(240)]
sft_count = float(np.mean([reward(r) for r in sample(reference, eval_prompts)]))
print(f"sft policy: mean count of token {K} per response {sft_count:.3f}")


@torch.no_grad()
def evaluate(policy, pairs, beta):
    policy.eval()
    chosen_ids, chosen_labels, rejected_ids, rejected_labels = pairs
    policy_chosen, policy_rejected = concatenated_forward(policy, *pairs)
    ref_chosen, ref_rejected = concatenated_forward(reference, *pairs)
    _, chosen_rewards, rejected_rewards = preference_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
    policy.train()
    accuracy = (chosen_rewards > rejected_rewards).float().mean().item()
    return accuracy, (chosen_rewards - rejected_rewards).mean().item()


@torch.no_grad()
def kl_to_reference(policy, prompts):
    """Monte Carlo KL(policy || reference) per response, on responses the policy samples."""
    responses = sample(policy, prompts)
    ids, labels = to_batch(prompts, responses)
    policy.eval()
    kl = (get_batch_logps(policy(ids), labels) - get_batch_logps(reference(ids), labels)).mean().item()
    policy.train()
    return kl, float(np.mean([reward(r) for r in responses]))


def train_preferences(ipo, beta, epochs=3, batch=32):
    torch.manual_seed(seed + 1)
    policy = copy.deepcopy(reference)
    policy.requires_grad_(True)
    policy.train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3, weight_decay=0.0)
    name = "ipo" if ipo else "dpo"
    n = len(train_pairs[0])
    for epoch in range(epochs):
        order = torch.randperm(n)
        total = grad_norm = 0.0
        steps = 0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            chosen_ids, chosen_labels, rejected_ids, rejected_labels = (t[idx] for t in train_pairs)
            policy_chosen, policy_rejected = concatenated_forward(policy, chosen_ids, chosen_labels, rejected_ids,
                                                                  rejected_labels)
            with torch.no_grad():
                ref_chosen, ref_rejected = concatenated_forward(reference, chosen_ids, chosen_labels, rejected_ids,
                                                                rejected_labels)
            losses, chosen_rewards, rejected_rewards = preference_loss(policy_chosen, policy_rejected, ref_chosen,
                                                                       ref_rejected, beta, ipo=ipo)
            loss = losses.mean()
            optimizer.zero_grad()
            loss.backward()
            grad_norm += torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0).item()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        accuracy, margin = evaluate(policy, test_pairs, beta)
        print(f"{name} epoch {epoch + 1} loss {total / steps:.4f} grad norm {grad_norm / steps:.3f} "
              f"test reward acc {accuracy:.3f} margin {margin:.3f} "
              f"chosen reward {chosen_rewards.mean().item():.3f} rejected reward {rejected_rewards.mean().item():.3f}")
    return policy


BETA = 0.1
dpo_policy = train_preferences(ipo=False, beta=BETA)
ipo_policy = train_preferences(ipo=True, beta=BETA)

dpo_acc, dpo_margin = evaluate(dpo_policy, test_pairs, BETA)
ipo_acc, ipo_margin = evaluate(ipo_policy, test_pairs, BETA)
dpo_kl, dpo_count = kl_to_reference(dpo_policy, eval_prompts)
ipo_kl, ipo_count = kl_to_reference(ipo_policy, eval_prompts)
print(f"dpo: reward acc {dpo_acc:.3f} margin {dpo_margin:.3f} count of {K} {sft_count:.3f} -> {dpo_count:.3f} "
      f"kl {dpo_kl:.3f}")
print(f"ipo: reward acc {ipo_acc:.3f} margin {ipo_margin:.3f} count of {K} {sft_count:.3f} -> {ipo_count:.3f} "
      f"kl {ipo_kl:.3f}")
print(f"untouched reference still frozen {not any(p.requires_grad for p in reference.parameters())} "
      f"log 2 {math.log(2):.4f} (the DPO loss at zero margin)")
print(f"FINAL dpo_reward_acc={dpo_acc:.4f} dpo_margin={dpo_margin:.4f} ipo_reward_acc={ipo_acc:.4f} "
      f"sft_count={sft_count:.4f} dpo_count={dpo_count:.4f} ipo_count={ipo_count:.4f} dpo_kl={dpo_kl:.4f}")
