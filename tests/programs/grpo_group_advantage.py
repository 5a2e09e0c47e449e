"""GRPO (Shao et al., DeepSeekMath 2024) in the layout of TRL's ``GRPOTrainer``, on a toy character LM.

The policy is a tiny GRU language model over an eight-symbol vocabulary (``<bos>``, ``<eos>`` and the
letters ``a``-``f``). A prompt is ``<bos>`` and one letter; the task, scored by two rule-based reward
functions as TRL's ``reward_funcs`` are, is to answer with the *next* letter written three times and
then stop (``a`` -> ``bbb<eos>``): a format reward for stopping within the length budget and an accuracy
reward per correct letter. Nothing is learned beforehand: the reward has to rise from the random
policy's by reinforcement alone.

Each step follows ``_generate_and_score_completions`` and ``compute_loss``: G completions per prompt are
sampled under ``torch.no_grad()`` by ``torch.multinomial(F.softmax(logits / temperature, -1), 1,
generator=...)`` from a seeded ``torch.Generator``; the completion mask is cut after the first EOS
(``is_eos.int().argmax(1)``, ``torch.arange(...).expand(...) <= eos_idx.unsqueeze(1)``); rewards are
normalised within each group (``rewards.view(-1, G).mean(1).repeat_interleave(G)``, ``/ (std + 1e-4)``);
per-token log-probs come from ``torch.gather(logits.log_softmax(-1), 2, ids.unsqueeze(-1)).squeeze(-1)``
(the ``selective_log_softmax`` route, checked against ``-F.cross_entropy(reduction="none")``); the loss is
the PPO clip (``torch.exp(logp - old_logp)``, ``torch.clamp(ratio, 1 - eps, 1 + eps)``, ``torch.min``) plus
``beta`` times the k3 KL estimator to a frozen ``copy.deepcopy`` reference model
(``torch.exp(ref - logp) - (ref - logp) - 1``), averaged per sequence by ``(loss * mask).sum(1) /
mask.sum(1)``. Every generation batch is reused for ``num_iterations = 2`` optimiser steps, so the second
one sees ratios away from 1 and clipping.

Checked: the reward rises from the first steps to the last; greedy decoding of the trained policy solves
most prompts; on the first iteration (ratio exactly 1, KL exactly 0) the GRPO gradient equals the
REINFORCE gradient of ``-(adv * logp)`` masked mean, an independent route (``torch.allclose``).
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

VOCAB = ["<bos>", "<eos>", "a", "b", "c", "d", "e", "f"]
BOS, EOS = 0, 1
stoi = {s: i for i, s in enumerate(VOCAB)}
PROMPT_LETTERS = "abcde"

num_generations = 8  # G
prompts_per_step = 5
max_completion_length = 6
temperature = 1.0
epsilon = 0.2
beta = 0.04
num_iterations = 2
learning_rate = 1e-2
num_steps = 45


class CharLM(nn.Module):
    def __init__(self, vocab_size, n_embd=24, hidden=48):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.rnn = nn.GRU(n_embd, hidden, batch_first=True)
        self.lm_head = nn.Linear(hidden, vocab_size)

    def forward(self, input_ids):
        h, _ = self.rnn(self.wte(input_ids))
        return self.lm_head(h)


def decode(ids):
    out = []
    for i in ids:
        out.append(VOCAB[i])
        if i == EOS:
            break
    return "".join(out)


# ------------------------------------------------------------------------------ rewards
def format_reward(prompts, completions):
    return [1.0 if c.endswith("<eos>") and len(c) <= 3 + len("<eos>") else 0.0 for c in completions]


def accuracy_reward(prompts, completions):
    rewards = []
    for p, c in zip(prompts, completions):
        target = chr(ord(p) + 1)
        body = c.replace("<eos>", "")
        hits = sum(1 for ch in body[:3] if ch == target)
        rewards.append(hits / 3.0 - 0.25 * max(0, len(body) - 3))
    return rewards


reward_funcs = [format_reward, accuracy_reward]


# --------------------------------------------------------------------------- generation
@torch.no_grad()
def generate(model, prompt_ids, generator, do_sample=True):
    seq = prompt_ids
    for _ in range(max_completion_length):
        logits = model(seq)[:, -1, :]
        if do_sample:
            probs = F.softmax(logits / temperature, dim=-1)
            next_token = torch.multinomial(probs, 1, generator=generator)
        else:
            next_token = logits.argmax(dim=-1, keepdim=True)
        seq = torch.cat([seq, next_token], dim=1)
    return seq


def selective_log_softmax(logits, index):
    return torch.gather(logits.log_softmax(-1), dim=2, index=index.unsqueeze(-1)).squeeze(-1)


def get_per_token_logps(model, input_ids, logits_to_keep):
    logits = model(input_ids)[:, :-1, :]
    logits = logits[:, -logits_to_keep:] / temperature
    return selective_log_softmax(logits, input_ids[:, -logits_to_keep:])


def completion_mask_from(completion_ids):
    is_eos = completion_ids == EOS
    eos_idx = torch.full((is_eos.size(0),), is_eos.size(1), dtype=torch.long)
    eos_idx[is_eos.any(dim=1)] = is_eos.int().argmax(dim=1)[is_eos.any(dim=1)]
    sequence_indices = torch.arange(is_eos.size(1)).expand(is_eos.size(0), -1)
    return (sequence_indices <= eos_idx.unsqueeze(1)).int()


def grpo_loss(model, batch):
    per_token_logps = get_per_token_logps(model, batch["input_ids"], batch["logits_to_keep"])
    mask = batch["completion_mask"]
    ref = batch["ref_per_token_logps"]
    per_token_kl = torch.exp(ref - per_token_logps) - (ref - per_token_logps) - 1
    coef_1 = torch.exp(per_token_logps - batch["old_per_token_logps"])
    coef_2 = torch.clamp(coef_1, 1 - epsilon, 1 + epsilon)
    advantages = batch["advantages"]
    per_token_loss1 = coef_1 * advantages.unsqueeze(1)
    per_token_loss2 = coef_2 * advantages.unsqueeze(1)
    per_token_loss = -torch.min(per_token_loss1, per_token_loss2)
    per_token_loss = per_token_loss + beta * per_token_kl
    loss = ((per_token_loss * mask).sum(dim=1) / mask.sum(dim=1)).mean()
    mean_kl = ((per_token_kl * mask).sum(dim=1) / mask.sum(dim=1)).mean()
    is_clipped = (per_token_loss1 < per_token_loss2).float()
    clip_ratio = (is_clipped * mask).sum() / mask.sum()
    return loss, per_token_logps, mean_kl.item(), clip_ratio.item()


model = CharLM(len(VOCAB))
ref_model = copy.deepcopy(model)
ref_model.eval()
for p in ref_model.parameters():
    p.requires_grad = False
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.99), weight_decay=0.0)
generator = torch.Generator().manual_seed(1234 + seed)

reward_history = []
gradient_routes_agree = True
logp_routes_agree = True
for step in range(num_steps):
    letters = [PROMPT_LETTERS[i] for i in np.random.randint(0, len(PROMPT_LETTERS), size=prompts_per_step)]
    prompt_ids = torch.tensor([[BOS, stoi[c]] for c in letters], dtype=torch.long)
    prompt_ids = prompt_ids.repeat_interleave(num_generations, dim=0)
    prompts = [c for c in letters for _ in range(num_generations)]

    model.eval()
    prompt_completion_ids = generate(model, prompt_ids, generator)
    model.train()
    prompt_length = prompt_ids.size(1)
    completion_ids = prompt_completion_ids[:, prompt_length:]
    completion_mask = completion_mask_from(completion_ids)
    logits_to_keep = completion_ids.size(1)

    with torch.no_grad():
        old_per_token_logps = get_per_token_logps(model, prompt_completion_ids, logits_to_keep)
        ref_per_token_logps = get_per_token_logps(ref_model, prompt_completion_ids, logits_to_keep)

    completions = [decode(ids.tolist()) for ids in completion_ids]
    rewards_per_func = torch.zeros(len(prompts), len(reward_funcs))
    for i, reward_func in enumerate(reward_funcs):
        rewards_per_func[:, i] = torch.tensor(reward_func(prompts, completions), dtype=torch.float32)
    rewards = rewards_per_func.sum(dim=1)

    mean_grouped_rewards = rewards.view(-1, num_generations).mean(dim=1)
    std_grouped_rewards = rewards.view(-1, num_generations).std(dim=1)
    mean_grouped_rewards = mean_grouped_rewards.repeat_interleave(num_generations, dim=0)
    std_grouped_rewards = std_grouped_rewards.repeat_interleave(num_generations, dim=0)
    advantages = (rewards - mean_grouped_rewards) / (std_grouped_rewards + 1e-4)
    reward_history.append(rewards.mean().item())

    batch = {
        "input_ids": prompt_completion_ids,
        "completion_mask": completion_mask,
        "old_per_token_logps": old_per_token_logps,
        "ref_per_token_logps": ref_per_token_logps,
        "advantages": advantages,
        "logits_to_keep": logits_to_keep,
    }
    for iteration in range(num_iterations):
        loss, per_token_logps, mean_kl, clip_ratio = grpo_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        if step == 0 and iteration == 0:
            grpo_grads = [p.grad.clone() for p in model.parameters()]
            # REINFORCE route: ratio == 1 and (on step 0) the policy is the reference, so KL == 0
            optimizer.zero_grad()
            logits = model(prompt_completion_ids)[:, :-1, :][:, -logits_to_keep:]
            targets = prompt_completion_ids[:, -logits_to_keep:]
            ce_logps = -F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
            ce_logps = ce_logps.view_as(targets)
            logp_routes_agree = torch.allclose(ce_logps, per_token_logps, atol=1e-6)
            mask = completion_mask
            pg_loss = (-(advantages.unsqueeze(1) * ce_logps) * mask).sum(1) / mask.sum(1)
            pg_loss.mean().backward()
            gradient_routes_agree = all(
                torch.allclose(g, p.grad, rtol=1e-4, atol=1e-6) for g, p in zip(grpo_grads, model.parameters())
            )
            for g, p in zip(grpo_grads, model.parameters()):
                p.grad.copy_(g)
        optimizer.step()
    if step % 9 == 0 or step == num_steps - 1:
        print(
            f"step {step:3d} reward {rewards.mean().item():.3f} (format {rewards_per_func[:, 0].mean().item():.3f}, "
            f"accuracy {rewards_per_func[:, 1].mean().item():.3f}) completion_length "
            f"{completion_mask.sum(1).float().mean().item():.2f} kl {mean_kl:.4f} clip_ratio {clip_ratio:.3f} "
            f"loss {loss.item():.4f}"
        )

model.eval()
test_prompts = torch.tensor([[BOS, stoi[c]] for c in PROMPT_LETTERS], dtype=torch.long)
greedy = generate(model, test_prompts, None, do_sample=False)[:, 2:]
greedy_text = [decode(ids.tolist()) for ids in greedy]
solved = sum(1 for p, c in zip(PROMPT_LETTERS, greedy_text) if c == chr(ord(p) + 1) * 3 + "<eos>")
greedy_hits = [sum(1 for ch in c.replace("<eos>", "")[:3] if ch == chr(ord(p) + 1)) for p, c in zip(PROMPT_LETTERS, greedy_text)]
print(f"greedy: {solved} of {len(PROMPT_LETTERS)} prompts answered exactly; correct letters per prompt {greedy_hits}")
print(f"logp routes agree: {logp_routes_agree}, GRPO step-0 gradient == REINFORCE gradient: {gradient_routes_agree}")

first_reward = float(np.mean(reward_history[:5]))
last_reward = float(np.mean(reward_history[-5:]))
print(
    f"FINAL first_reward={first_reward:.4f} last_reward={last_reward:.4f} greedy_solved={solved} "
    f"routes_agree={int(logp_routes_agree and gradient_routes_agree)}"
)
