"""InstructGPT-style RLHF with PPO on a tiny GRU language model: TRL's ``PPOTrainer`` logic written
out, as the "RLHF from scratch" notebooks do. A policy LM with a value head
(``AutoModelForCausalLMWithValueHead`` in miniature), a frozen reference made by
``copy.deepcopy(policy)`` + ``requires_grad_(False)`` + ``eval()``, sampling token by token with
``torch.multinomial(F.softmax(logits / temperature, dim=-1), 1)`` and an EOS that ends a response
(tokens after it masked), per-token log-probs by ``logprobs_from_logits``
(``F.log_softmax(logits, dim=2)``, ``torch.gather(logp, 2, labels.unsqueeze(2)).squeeze(-1)``),
a rule-based score (the count of a target token) added at the last real token to the per-token
KL penalty ``-kl_ctl.value * (logprob - ref_logprob)`` (``scatter_add_`` at ``lengths - 1``),
GAE backwards over ``reversed(range(gen_len))`` with ``torch.stack(advantages_reversed[::-1]).transpose(0, 1)``,
TRL's ``masked_mean``/``masked_var``/``masked_whiten`` (``torch.rsqrt(var + 1e-8)``; with a full
mask it must agree with ``(a - a.mean()) / (a.std() + 1e-8)``), the clipped surrogate and clipped
value losses with clip fractions from ``torch.gt(...).float()``, ``AdaptiveKLController``,
minibatch epochs over the rollout by ``torch.randperm``, ``clip_grad_norm_``.
Checks: the mean score rises, the measured KL stays bounded, the reference never changes.
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

vocab_size = 8
eos_token_id = 0
target_token = 3
prompt_len = 2
gen_len = 8
batch_size = 64
mini_batch_size = 16
ppo_epochs = 4
ppo_iterations = 12
temperature = 1.0
gamma = 1.0
lam = 0.95
cliprange = 0.2
cliprange_value = 0.2
vf_coef = 0.1
max_grad_norm = 1.0
init_kl_coef = 0.5
target_kl = 2.0
horizon = 1000


class GRULMWithValueHead(nn.Module):
    def __init__(self, vocab_size, d_embed=16, d_hidden=48):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_embed)
        self.rnn = nn.GRU(d_embed, d_hidden, batch_first=True)
        self.lm_head = nn.Linear(d_hidden, vocab_size)
        self.v_head = nn.Sequential(nn.Dropout(0.0), nn.Linear(d_hidden, 1))

    def forward(self, input_ids, hidden=None):
        out, hidden = self.rnn(self.embed(input_ids), hidden)
        logits = self.lm_head(out)
        value = self.v_head(out).squeeze(-1)
        return logits, value, hidden


class AdaptiveKLController:
    """Adaptive KL controller described in the paper: https://arxiv.org/pdf/1909.08593.pdf"""

    def __init__(self, init_kl_coef, target, horizon):
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current, n_steps):
        target = self.target
        proportional_error = np.clip(current / target - 1, -0.2, 0.2)
        mult = 1 + proportional_error * n_steps / self.horizon
        self.value *= mult


def logprobs_from_logits(logits, labels):
    logp = F.log_softmax(logits, dim=2)
    logpy = torch.gather(logp, 2, labels.unsqueeze(2)).squeeze(-1)
    return logpy


def masked_mean(values, mask, axis=None):
    if axis is not None:
        return (values * mask).sum(axis=axis) / mask.sum(axis=axis)
    return (values * mask).sum() / mask.sum()


def masked_var(values, mask, unbiased=True):
    mean = masked_mean(values, mask)
    centered_values = values - mean
    variance = masked_mean(centered_values**2, mask)
    if unbiased:
        mask_sum = mask.sum()
        if mask_sum == 0:
            raise ValueError("The sum of the mask is zero")
        bessel_correction = mask_sum / (mask_sum - 1)
        variance = variance * bessel_correction
    return variance


def masked_whiten(values, mask, shift_mean=True):
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


def clip_by_value(x, tensor_min, tensor_max):
    return torch.max(torch.min(x, tensor_max), tensor_min)


@torch.no_grad()
def generate(model, prompts):
    """Sample gen_len tokens after each prompt; after an EOS the sequence is padded with EOS."""
    logits, _, hidden = model(prompts)
    next_logits = logits[:, -1, :]
    tokens = []
    finished = torch.zeros(prompts.shape[0], dtype=torch.bool)
    for _ in range(gen_len):
        probs = F.softmax(next_logits / temperature, dim=-1)
        next_token = torch.multinomial(probs, num_samples=1)
        next_token = next_token.masked_fill(finished.unsqueeze(1), eos_token_id)
        tokens.append(next_token)
        finished = finished | (next_token.squeeze(1) == eos_token_id)
        logits, _, hidden = model(next_token, hidden)
        next_logits = logits[:, -1, :]
    return torch.cat(tokens, dim=1)


def response_mask(responses):
    """1 up to and including the first EOS (the EOS is an action the policy took), 0 after."""
    is_eos = (responses == eos_token_id).long()
    eos_before = torch.cumsum(is_eos, dim=1) - is_eos
    return (eos_before == 0).float()


def score_fn(responses, mask):
    return ((responses == target_token).float() * mask).sum(1)


def batched_forward(model, queries, responses):
    input_ids = torch.cat([queries, responses], dim=1)
    logits, values, _ = model(input_ids)
    logprobs = logprobs_from_logits(logits[:, :-1, :], input_ids[:, 1:])
    start = queries.shape[1] - 1
    return logprobs[:, start:], values[:, start:-1], logits[:, start:-1]


def compute_rewards(scores, logprobs, ref_logprobs, masks):
    kl = logprobs - ref_logprobs
    non_score_reward = -kl_ctl.value * kl
    rewards = non_score_reward.clone()
    last_idx = (masks.sum(1).long() - 1).unsqueeze(1)
    rewards.scatter_add_(1, last_idx, scores.unsqueeze(1))
    return rewards * masks, non_score_reward, kl


def compute_advantages(values, rewards, mask):
    lastgaelam = 0
    advantages_reversed = []
    gen_len = rewards.shape[-1]
    values = values * mask
    rewards = rewards * mask
    for t in reversed(range(gen_len)):
        nextvalues = values[:, t + 1] if t < gen_len - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1]).transpose(0, 1)
    returns = advantages + values
    advantages = masked_whiten(advantages, mask)
    advantages = advantages.detach()
    return values, advantages, returns


def ppo_loss(old_logprobs, values, logprobs, vpreds, mask, advantages, returns):
    vpredclipped = clip_by_value(vpreds, values - cliprange_value, values + cliprange_value)
    vf_losses1 = (vpreds - returns) ** 2
    vf_losses2 = (vpredclipped - returns) ** 2
    vf_loss = 0.5 * masked_mean(torch.max(vf_losses1, vf_losses2), mask)
    vf_clipfrac = masked_mean(torch.gt(vf_losses2, vf_losses1).float(), mask)
    ratio = torch.exp(logprobs - old_logprobs)
    pg_losses = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    pg_loss = masked_mean(torch.max(pg_losses, pg_losses2), mask)
    pg_clipfrac = masked_mean(torch.gt(pg_losses2, pg_losses).float(), mask)
    loss = pg_loss + vf_coef * vf_loss
    approxkl = 0.5 * masked_mean((logprobs - old_logprobs) ** 2, mask)
    return loss, {"pg_loss": pg_loss.item(), "vf_loss": vf_loss.item(), "pg_clipfrac": pg_clipfrac.item(),
                  "vf_clipfrac": vf_clipfrac.item(), "approxkl": approxkl.item()}


policy = GRULMWithValueHead(vocab_size)
ref_model = copy.deepcopy(policy)
ref_model.requires_grad_(False)
ref_model.eval()
ref_snapshot = {k: v.clone() for k, v in ref_model.state_dict().items()}
optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3, eps=1e-5)
kl_ctl = AdaptiveKLController(init_kl_coef, target_kl, horizon)
print(f"policy parameters {sum(p.numel() for p in policy.parameters())}, reference trainable "
      f"{sum(p.numel() for p in ref_model.parameters() if p.requires_grad)}, reference training {ref_model.training}")

# TRL's whitening against the textbook normalisation on a full mask
a = torch.randn(6, gen_len)
whiten_err = (masked_whiten(a, torch.ones_like(a)) - (a - a.mean()) / (a.std() + 1e-8)).abs().max().item()
print(f"masked_whiten with a full mask vs (a - mean) / (std + 1e-8): {whiten_err:.2e}")

mean_scores, mean_kls = [], []
for iteration in range(ppo_iterations):
    queries = torch.randint(1, vocab_size, (batch_size, prompt_len))
    responses = generate(policy, queries)
    masks = response_mask(responses)
    scores = score_fn(responses, masks)
    with torch.no_grad():
        old_logprobs, old_values, _ = batched_forward(policy, queries, responses)
        ref_logprobs, _, _ = batched_forward(ref_model, queries, responses)
    rewards, non_score_reward, kl = compute_rewards(scores, old_logprobs, ref_logprobs, masks)
    old_values, advantages, returns = compute_advantages(old_values, rewards, masks)

    policy.train()
    stats = []
    for _ in range(ppo_epochs):
        perm = torch.randperm(batch_size)
        for start in range(0, batch_size, mini_batch_size):
            mb = perm[start:start + mini_batch_size]
            logprobs, vpreds, _ = batched_forward(policy, queries[mb], responses[mb])
            loss, loss_stats = ppo_loss(old_logprobs[mb], old_values[mb], logprobs, vpreds, masks[mb],
                                        advantages[mb], returns[mb])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
            optimizer.step()
            stats.append(loss_stats)

    mean_kl = (kl * masks).sum(1).mean().item()
    kl_ctl.update(mean_kl, batch_size)
    mean_scores.append(scores.mean().item())
    mean_kls.append(mean_kl)
    if iteration % 4 == 0 or iteration == ppo_iterations - 1:
        print(f"iter {iteration:2d} score {scores.mean().item():.3f} len {masks.sum(1).mean().item():.2f} "
              f"kl {mean_kl:.4f} kl_coef {kl_ctl.value:.5f} pg_loss {np.mean([s['pg_loss'] for s in stats]):.4f} "
              f"vf_loss {np.mean([s['vf_loss'] for s in stats]):.4f} "
              f"clipfrac {np.mean([s['pg_clipfrac'] for s in stats]):.3f} "
              f"approxkl {np.mean([s['approxkl'] for s in stats]):.4f}")

ref_change = max((ref_model.state_dict()[k] - v).abs().max().item() for k, v in ref_snapshot.items())
policy_change = max((p - r).abs().max().item() for p, r in zip(policy.parameters(), ref_model.parameters()))
print(f"reference max change {ref_change:.1e}, policy moved {policy_change:.4f}, "
      f"reference grads {sum(p.grad is not None for p in ref_model.parameters())}")
score_first = float(np.mean(mean_scores[:3]))
score_last = float(np.mean(mean_scores[-3:]))
kl_last = float(np.mean(mean_kls[-3:]))
assert ref_change == 0.0, "the reference model changed"
assert score_last > score_first, "the mean score did not rise"
assert all(np.isfinite(mean_kls)) and max(mean_kls) < 20.0, "the KL to the reference blew up"
assert whiten_err < 1e-4
print(f"FINAL score_first={score_first:.4f} score_last={score_last:.4f} kl={kl_last:.4f} "
      f"kl_coef={kl_ctl.value:.5f} ref_change={ref_change:.4f}")
