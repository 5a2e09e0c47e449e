"""A Dreamer-style agent (Hafner et al.; laid out as the PyTorch ports, e.g. yusukeurakami/dreamer-pytorch
and danijar's DreamerV2 in torch, write it) on a synthetic 1-D control task: steer a point with
friction to a target. The world model is a recurrent state-space model: an ``nn.GRUCell``
deterministic path, prior and posterior ``td.Independent(td.Normal(mean, F.softplus(std) + 0.1), 1)``
over the stochastic state sampled by ``rsample()``, a decoder and a reward head scored by
``td.Independent(td.Normal(...), 1).log_prob``, and a KL term from ``td.kl.kl_divergence`` with free
nats by ``torch.maximum(kl, free_nats)`` and KL balancing (``alpha`` on the posterior-``.detach()``ed
side, ``1 - alpha`` on the prior-``.detach()``ed side). Behaviour is learnt in imagination: an actor
``td.Independent(td.TransformedDistribution(td.Normal(mean, std), [td.TanhTransform(cache_size=1)]),
1)`` with ``rsample()`` and ``log_prob`` of its own sample as the entropy estimate, rollouts collected
with ``torch.stack`` over time, lambda-returns computed backward by an index loop (no ``torch.flip``),
``FreezeParameters`` (``requires_grad = False`` on the world model while the actor learns), a critic
regressed on ``returns.detach()``, ``clip_grad_norm_``; then the policy acts in the real task through
the posterior filter and its return is printed beside a random policy's.

Tiny sizes: deterministic 16, stochastic 4, sequences of 10 steps, 40 training steps.
"""

import os

import numpy as np
import torch
import torch.distributions as td
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import clip_grad_norm_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

obs_size, action_size = 3, 1
deter_size, stoch_size, hidden_size, embed_size = 16, 4, 32, 16
seq_len, batch_size, horizon = 10, 8, 5
free_nats, kl_alpha, discount, lambda_ = 1.0, 0.8, 0.95, 0.95
train_steps = 40


class PointEnv:
    """pos in [-1, 1], velocity with friction; reward: closeness to the target at 0.5."""

    target = 0.5

    def reset(self):
        self.pos = rng.uniform(-1.0, 0.0)
        self.vel = 0.0
        return self.obs()

    def obs(self):
        return np.array([self.pos, self.vel * 5.0, self.target], dtype=np.float32)

    def step(self, action):
        self.vel = 0.8 * self.vel + 0.1 * float(np.clip(action, -1.0, 1.0))
        self.pos = float(np.clip(self.pos + self.vel, -1.0, 1.0))
        reward = 1.0 - abs(self.pos - self.target)
        return self.obs(), np.float32(reward)


def collect_random_episodes(env, episodes, length):
    observations, actions, rewards = [], [], []
    for _ in range(episodes):
        o = env.reset()
        obs_ep, act_ep, rew_ep = [], [], []
        for _ in range(length):
            a = rng.uniform(-1.0, 1.0, size=(action_size,)).astype(np.float32)
            obs_ep.append(o)
            act_ep.append(a)
            o, r = env.step(a[0])
            rew_ep.append([r])
        observations.append(obs_ep)
        actions.append(act_ep)
        rewards.append(rew_ep)
    return (np.array(observations, dtype=np.float32), np.array(actions, dtype=np.float32),
            np.array(rewards, dtype=np.float32))


class RSSM(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc_embed_state_action = nn.Linear(stoch_size + action_size, deter_size)
        self.rnn = nn.GRUCell(deter_size, deter_size)
        self.fc_prior = nn.Sequential(nn.Linear(deter_size, hidden_size), nn.ELU(),
                                      nn.Linear(hidden_size, 2 * stoch_size))
        self.fc_posterior = nn.Sequential(nn.Linear(deter_size + embed_size, hidden_size), nn.ELU(),
                                          nn.Linear(hidden_size, 2 * stoch_size))

    def initial_state(self, batch):
        return dict(mean=torch.zeros(batch, stoch_size), std=torch.zeros(batch, stoch_size),
                    stoch=torch.zeros(batch, stoch_size), deter=torch.zeros(batch, deter_size))

    def get_dist(self, state):
        return td.Independent(td.Normal(state['mean'], state['std']), 1)

    def img_step(self, prev_state, prev_action):
        x = F.elu(self.fc_embed_state_action(torch.cat([prev_state['stoch'], prev_action], dim=-1)))
        deter = self.rnn(x, prev_state['deter'])
        mean, std = torch.chunk(self.fc_prior(deter), 2, dim=-1)
        std = F.softplus(std) + 0.1
        stoch = self.get_dist({'mean': mean, 'std': std}).rsample()
        return dict(mean=mean, std=std, stoch=stoch, deter=deter)

    def obs_step(self, prev_state, prev_action, embed):
        prior = self.img_step(prev_state, prev_action)
        x = torch.cat([prior['deter'], embed], dim=-1)
        mean, std = torch.chunk(self.fc_posterior(x), 2, dim=-1)
        std = F.softplus(std) + 0.1
        stoch = self.get_dist({'mean': mean, 'std': std}).rsample()
        post = dict(mean=mean, std=std, stoch=stoch, deter=prior['deter'])
        return post, prior

    def observe(self, embed, action, state=None):
        # embed, action: (time, batch, ...)
        if state is None:
            state = self.initial_state(embed.shape[1])
        posts, priors = [], []
        for t in range(embed.shape[0]):
            state, prior = self.obs_step(state, action[t], embed[t])
            posts.append(state)
            priors.append(prior)
        stack = lambda states: {k: torch.stack([s[k] for s in states], dim=0) for k in states[0]}
        return stack(posts), stack(priors)


def feature(state):
    return torch.cat([state['stoch'], state['deter']], dim=-1)


def mlp(inp, out):
    return nn.Sequential(nn.Linear(inp, hidden_size), nn.ELU(), nn.Linear(hidden_size, out))


class Actor(nn.Module):
    def __init__(self, init_std=5.0, min_std=1e-4, mean_scale=5.0):
        super().__init__()
        self.net = mlp(stoch_size + deter_size, 2 * action_size)
        self.raw_init_std = np.log(np.exp(init_std) - 1)
        self.min_std = min_std
        self.mean_scale = mean_scale

    def forward(self, feat):
        mean, std = torch.chunk(self.net(feat), 2, dim=-1)
        mean = self.mean_scale * torch.tanh(mean / self.mean_scale)
        std = F.softplus(std + self.raw_init_std) + self.min_std
        dist = td.TransformedDistribution(td.Normal(mean, std), [td.TanhTransform(cache_size=1)])
        return td.Independent(dist, 1), torch.tanh(mean)


class FreezeParameters:
    def __init__(self, modules):
        self.modules = modules
        self.param_states = [p.requires_grad for p in self.parameters()]

    def parameters(self):
        return [p for m in self.modules for p in m.parameters()]

    def __enter__(self):
        for param in self.parameters():
            param.requires_grad = False

    def __exit__(self, exc_type, exc_val, exc_tb):
        for param, state in zip(self.parameters(), self.param_states):
            param.requires_grad = state


def lambda_return(reward, value, bootstrap, discount, lambda_):
    # reward, value: (horizon, batch, 1); bootstrap: (batch, 1)
    next_values = torch.cat([value[1:], bootstrap[None]], 0)
    inputs = reward + discount * next_values * (1 - lambda_)
    last = bootstrap
    outputs = []
    for index in reversed(range(reward.shape[0])):
        last = inputs[index] + discount * lambda_ * last
        outputs.append(last)
    outputs = outputs[::-1]
    return torch.stack(outputs, 0)


env = PointEnv()
observations, actions, rewards = collect_random_episodes(env, episodes=24, length=30)
print('dataset', observations.shape, actions.shape, rewards.shape)

encoder = mlp(obs_size, embed_size)
rssm = RSSM()
decoder = mlp(stoch_size + deter_size, obs_size)
reward_model = mlp(stoch_size + deter_size, 1)
actor = Actor()
critic = mlp(stoch_size + deter_size, 1)
world_modules = [encoder, rssm, decoder, reward_model]
world_params = [p for m in world_modules for p in m.parameters()]
model_opt = torch.optim.Adam(world_params, lr=3e-3, eps=1e-5)
actor_opt = torch.optim.Adam(actor.parameters(), lr=1e-3, eps=1e-5)
critic_opt = torch.optim.Adam(critic.parameters(), lr=2e-3, eps=1e-5)
free_nats_t = torch.full((1,), free_nats)


def sample_batch():
    episode = rng.randint(0, observations.shape[0], size=batch_size)
    start = rng.randint(0, observations.shape[1] - seq_len + 1, size=batch_size)
    idx = start[:, None] + np.arange(seq_len)[None]
    o = observations[episode[:, None], idx]
    a = actions[episode[:, None], idx]
    r = rewards[episode[:, None], idx]
    # time-major, the previous action before each observation (zero at the start)
    prev_a = np.concatenate([np.zeros_like(a[:, :1]), a[:, :-1]], axis=1)
    to_t = lambda x: torch.as_tensor(x).transpose(0, 1).contiguous()
    return to_t(o), to_t(prev_a), to_t(r)


for step in range(1, train_steps + 1):
    obs, prev_action, reward = sample_batch()
    embed = encoder(obs)
    post, prior = rssm.observe(embed, prev_action)
    feat = feature(post)
    obs_dist = td.Independent(td.Normal(decoder(feat), 1), 1)
    reward_dist = td.Independent(td.Normal(reward_model(feat), 1), 1)
    obs_loss = -torch.mean(obs_dist.log_prob(obs))
    reward_loss = -torch.mean(reward_dist.log_prob(reward))

    post_dist, prior_dist = rssm.get_dist(post), rssm.get_dist(prior)
    detached_post = rssm.get_dist({k: v.detach() for k, v in post.items()})
    detached_prior = rssm.get_dist({k: v.detach() for k, v in prior.items()})
    kl_lhs = torch.mean(td.kl.kl_divergence(detached_post, prior_dist))
    kl_rhs = torch.mean(td.kl.kl_divergence(post_dist, detached_prior))
    kl_loss = kl_alpha * torch.maximum(kl_lhs, free_nats_t) + (1 - kl_alpha) * torch.maximum(kl_rhs, free_nats_t)
    kl_value = td.kl.kl_divergence(post_dist, prior_dist).mean()

    model_loss = obs_loss + reward_loss + kl_loss.squeeze()
    model_opt.zero_grad()
    model_loss.backward()
    clip_grad_norm_(world_params, 100.0)
    model_opt.step()

    # imagination from every posterior state, the world model frozen
    with FreezeParameters(world_modules):
        state = {k: v.detach().reshape(-1, v.shape[-1]) for k, v in post.items()}
        imag_feats, log_probs = [], []
        for _ in range(horizon):
            action_dist, _ = actor(feature(state).detach())
            action = action_dist.rsample()
            log_probs.append(action_dist.log_prob(action))
            state = rssm.img_step(state, action)
            imag_feats.append(feature(state))
        imag_feat = torch.stack(imag_feats, dim=0)
        imag_reward = reward_model(imag_feat)
        with FreezeParameters([critic]):
            imag_value = critic(imag_feat)
    returns = lambda_return(imag_reward[:-1], imag_value[:-1], imag_value[-1], discount, lambda_)
    entropy = -torch.stack(log_probs[:-1], 0).mean()
    actor_loss = -torch.mean(returns) - 1e-3 * entropy
    actor_opt.zero_grad()
    actor_loss.backward()
    clip_grad_norm_(actor.parameters(), 100.0)
    actor_opt.step()

    value_pred = critic(imag_feat[:-1].detach())
    value_loss = torch.mean(0.5 * (value_pred - returns.detach()) ** 2)
    critic_opt.zero_grad()
    value_loss.backward()
    clip_grad_norm_(critic.parameters(), 100.0)
    critic_opt.step()

    if step % 10 == 0:
        print(f'step {step:3d} obs {obs_loss.item():.4f} reward {reward_loss.item():.4f} '
              f'kl {kl_value.item():.4f} actor {actor_loss.item():.4f} value {value_loss.item():.4f}')


@torch.no_grad()
def evaluate(policy, episodes=4, length=30):
    total = 0.0
    for _ in range(episodes):
        o = env.reset()
        state = rssm.initial_state(1)
        a = torch.zeros(1, action_size)
        for _ in range(length):
            embed = encoder(torch.as_tensor(o)[None])
            state, _ = rssm.obs_step(state, a, embed)
            a = policy(feature(state))
            o, r = env.step(a[0, 0].item())
            total += float(r)
    return total / episodes


policy_return = evaluate(lambda feat: actor(feat)[1])
random_return = evaluate(lambda feat: torch.rand(1, action_size) * 2 - 1)
print(f'policy return {policy_return:.3f} random return {random_return:.3f}')
print(f'FINAL obs_loss={obs_loss.item():.4f} reward_loss={reward_loss.item():.4f} kl={kl_value.item():.4f} '
      f'value_loss={value_loss.item():.4f} policy_return={policy_return:.4f} random_return={random_return:.4f}')
