"""Decision Transformer as nikhilbarhate99/min-decision-transformer (``model.py``, ``utils.py``,
``train.py``) and the paper's ``gym/decision_transformer`` write it, for discrete actions in a
two-goal NumPy gridworld (no gym, no D4RL): offline trajectories of a noisy behaviour policy,
``discount_cumsum`` returns-to-go, a ``Dataset`` cutting ``context_len`` windows by
``random.randint`` or padding short trajectories by ``torch.cat`` with a ``traj_mask``, a GPT of
``MaskedCausalAttention`` blocks (``torch.tril(ones).view(1, 1, max_T, max_T)`` mask buffer,
``q @ k.transpose(2, 3) / math.sqrt(D)``, ``masked_fill(self.mask[..., :T, :T] == 0, float('-inf'))``,
post-norm residuals) over the interleaved (return-to-go, state, action) tokens ``torch.stack((r, s,
a), dim=1).permute(0, 2, 1, 3).reshape(B, 3 * T, h_dim)``, a timestep ``nn.Embedding`` added to
each token, actions predicted from the state tokens ``h[:, 1]`` with ``F.cross_entropy`` on
``action_preds.view(-1, act_dim)[traj_mask.view(-1,) > 0]``, ``AdamW`` + ``LambdaLR`` warm-up,
``clip_grad_norm_(..., 0.25)``, then the evaluation loop conditioned on a target return (the
running return-to-go decremented by each reward, a sliding context window, ``argmax`` actions):
asked for the far goal's return the agent goes there, asked for the near goal's it goes there.
"""

import math
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
random.seed(seed)
np.random.seed(seed)
torch.manual_seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TwoGoalGrid:
    """5x5 grid, start at the centre. The near corner (0, 0) pays 1, the far corner (4, 4) pays 3,
    each step costs 0.1; an episode ends at a goal or after ``max_ep_len`` steps."""

    size = 5
    state_dim = 25
    act_dim = 5  # up, down, left, right, stay
    max_ep_len = 12
    moves = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])
    goals = {(0, 0): 1.0, (4, 4): 3.0}

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def _obs(self):
        s = np.zeros(self.state_dim, dtype=np.float32)
        s[self.pos[0] * self.size + self.pos[1]] = 1.0
        return s

    def reset(self):
        self.pos = np.array([2, 2])
        self.t = 0
        return self._obs()

    def step(self, action):
        self.pos = np.clip(self.pos + self.moves[action], 0, self.size - 1)
        self.t += 1
        bonus = self.goals.get((int(self.pos[0]), int(self.pos[1])))
        if bonus is not None:
            return self._obs(), bonus - 0.1, True
        return self._obs(), -0.1, self.t >= self.max_ep_len


def behaviour_policy(env, target, eps, rng):
    """Heads for ``target`` with probability 1 - eps, otherwise a random action."""
    if rng.rand() < eps:
        return rng.randint(env.act_dim)
    dr, dc = target[0] - env.pos[0], target[1] - env.pos[1]
    options = []
    if dr:
        options.append(1 if dr > 0 else 0)
    if dc:
        options.append(3 if dc > 0 else 2)
    return options[rng.randint(len(options))] if options else 4


def collect(n_traj, seed):
    env = TwoGoalGrid(seed)
    rng = np.random.RandomState(seed + 1)
    trajectories = []
    for _ in range(n_traj):
        target = (0, 0) if rng.rand() < 0.5 else (4, 4)
        eps = rng.uniform(0.1, 0.6)
        obs, done = env.reset(), False
        observations, actions, rewards = [], [], []
        while not done:
            a = behaviour_policy(env, target, eps, rng)
            observations.append(obs)
            actions.append(a)
            obs, r, done = env.step(a)
            rewards.append(r)
        trajectories.append({"observations": np.array(observations), "actions": np.array(actions),
                             "rewards": np.array(rewards, dtype=np.float32)})
    return trajectories


# ---- utils.py ----
def discount_cumsum(x, gamma):
    disc_cumsum = np.zeros_like(x)
    disc_cumsum[-1] = x[-1]
    for t in reversed(range(x.shape[0] - 1)):
        disc_cumsum[t] = x[t] + gamma * disc_cumsum[t + 1]
    return disc_cumsum


class TrajectoryDataset(Dataset):
    def __init__(self, trajectories, context_len, rtg_scale):
        self.context_len = context_len
        self.trajectories = trajectories

        # calculate min len of traj, state mean and variance
        # and returns_to_go for all traj
        min_len = 10**6
        states = []
        for traj in self.trajectories:
            traj_len = traj['observations'].shape[0]
            min_len = min(min_len, traj_len)
            states.append(traj['observations'])
            # calculate returns to go and rescale them
            traj['returns_to_go'] = discount_cumsum(traj['rewards'], 1.0) / rtg_scale

        # used for input normalization
        states = np.concatenate(states, axis=0)
        self.state_mean, self.state_std = np.mean(states, axis=0), np.std(states, axis=0) + 1e-6

        # normalize states
        for traj in self.trajectories:
            traj['observations'] = ((traj['observations'] - self.state_mean) / self.state_std).astype(np.float32)
        self.min_len = min_len

    def get_state_stats(self):
        return self.state_mean, self.state_std

    def __len__(self):
        return len(self.trajectories)

    def __getitem__(self, idx):
        traj = self.trajectories[idx]
        traj_len = traj['observations'].shape[0]

        if traj_len >= self.context_len:
            # sample random index to slice trajectory
            si = random.randint(0, traj_len - self.context_len)

            states = torch.from_numpy(traj['observations'][si: si + self.context_len])
            actions = torch.from_numpy(traj['actions'][si: si + self.context_len])
            returns_to_go = torch.from_numpy(traj['returns_to_go'][si: si + self.context_len])
            timesteps = torch.arange(start=si, end=si + self.context_len, step=1)

            # all ones since no padding
            traj_mask = torch.ones(self.context_len, dtype=torch.long)

        else:
            padding_len = self.context_len - traj_len

            # padding with zeros
            states = torch.from_numpy(traj['observations'])
            states = torch.cat([states, torch.zeros(([padding_len] + list(states.shape[1:])), dtype=states.dtype)],
                               dim=0)

            actions = torch.from_numpy(traj['actions'])
            actions = torch.cat([actions, torch.zeros(([padding_len] + list(actions.shape[1:])), dtype=actions.dtype)],
                                dim=0)

            returns_to_go = torch.from_numpy(traj['returns_to_go'])
            returns_to_go = torch.cat([returns_to_go, torch.zeros(([padding_len] + list(returns_to_go.shape[1:])),
                                                                  dtype=returns_to_go.dtype)], dim=0)

            timesteps = torch.arange(start=0, end=self.context_len, step=1)

            traj_mask = torch.cat([torch.ones(traj_len, dtype=torch.long),
                                   torch.zeros(padding_len, dtype=torch.long)], dim=0)

        return timesteps, states, actions, returns_to_go, traj_mask


# ---- model.py ----
class MaskedCausalAttention(nn.Module):
    def __init__(self, h_dim, max_T, n_heads, drop_p):
        super().__init__()

        self.n_heads = n_heads
        self.max_T = max_T

        self.q_net = nn.Linear(h_dim, h_dim)
        self.k_net = nn.Linear(h_dim, h_dim)
        self.v_net = nn.Linear(h_dim, h_dim)

        self.proj_net = nn.Linear(h_dim, h_dim)

        self.att_drop = nn.Dropout(drop_p)
        self.proj_drop = nn.Dropout(drop_p)

        ones = torch.ones((max_T, max_T))
        mask = torch.tril(ones).view(1, 1, max_T, max_T)

        # register buffer makes sure mask does not get updated
        # during backpropagation
        self.register_buffer('mask', mask)

    def forward(self, x):
        B, T, C = x.shape  # batch size, seq length, h_dim * n_heads

        N, D = self.n_heads, C // self.n_heads  # N = num heads, D = attention dim

        # rearrange q, k, v as (B, N, T, D)
        q = self.q_net(x).view(B, T, N, D).transpose(1, 2)
        k = self.k_net(x).view(B, T, N, D).transpose(1, 2)
        v = self.v_net(x).view(B, T, N, D).transpose(1, 2)

        # weights (B, N, T, T)
        weights = q @ k.transpose(2, 3) / math.sqrt(D)
        # causal mask applied to weights
        weights = weights.masked_fill(self.mask[..., :T, :T] == 0, float('-inf'))
        # normalize weights, all -inf -> 0 after softmax
        normalized_weights = F.softmax(weights, dim=-1)

        # attention (B, N, T, D)
        attention = self.att_drop(normalized_weights @ v)

        # gather heads and project (B, N, T, D) -> (B, T, N*D)
        attention = attention.transpose(1, 2).contiguous().view(B, T, N * D)

        out = self.proj_drop(self.proj_net(attention))
        return out


class Block(nn.Module):
    def __init__(self, h_dim, max_T, n_heads, drop_p):
        super().__init__()
        self.attention = MaskedCausalAttention(h_dim, max_T, n_heads, drop_p)
        self.mlp = nn.Sequential(
            nn.Linear(h_dim, 4 * h_dim),
            nn.GELU(),
            nn.Linear(4 * h_dim, h_dim),
            nn.Dropout(drop_p),
        )
        self.ln1 = nn.LayerNorm(h_dim)
        self.ln2 = nn.LayerNorm(h_dim)

    def forward(self, x):
        # Attention -> LayerNorm -> MLP -> LayerNorm
        x = x + self.attention(x)  # residual
        x = self.ln1(x)
        x = x + self.mlp(x)  # residual
        x = self.ln2(x)
        return x


class DecisionTransformer(nn.Module):
    def __init__(self, state_dim, act_dim, n_blocks, h_dim, context_len,
                 n_heads, drop_p, max_timestep=4096):
        super().__init__()

        self.state_dim = state_dim
        self.act_dim = act_dim
        self.h_dim = h_dim

        # transformer blocks
        input_seq_len = 3 * context_len
        blocks = [Block(h_dim, input_seq_len, n_heads, drop_p) for _ in range(n_blocks)]
        self.transformer = nn.Sequential(*blocks)

        # projection heads (project to embedding)
        self.embed_ln = nn.LayerNorm(h_dim)
        self.embed_timestep = nn.Embedding(max_timestep, h_dim)
        self.embed_rtg = torch.nn.Linear(1, h_dim)
        self.embed_state = torch.nn.Linear(state_dim, h_dim)
        # discrete actions
        self.embed_action = torch.nn.Embedding(act_dim, h_dim)

        # prediction heads
        self.predict_rtg = torch.nn.Linear(h_dim, 1)
        self.predict_state = torch.nn.Linear(h_dim, state_dim)
        self.predict_action = nn.Linear(h_dim, act_dim)

    def forward(self, timesteps, states, actions, returns_to_go):

        B, T, _ = states.shape

        time_embeddings = self.embed_timestep(timesteps)

        # time embeddings are treated similar to positional embeddings
        state_embeddings = self.embed_state(states) + time_embeddings
        action_embeddings = self.embed_action(actions) + time_embeddings
        returns_embeddings = self.embed_rtg(returns_to_go) + time_embeddings

        # stack rtg, states and actions and reshape sequence as
        # (r_0, s_0, a_0, r_1, s_1, a_1, r_2, s_2, a_2 ...)
        h = torch.stack(
            (returns_embeddings, state_embeddings, action_embeddings), dim=1
        ).permute(0, 2, 1, 3).reshape(B, 3 * T, self.h_dim)

        h = self.embed_ln(h)

        # transformer and prediction
        h = self.transformer(h)

        # get h reshaped such that its size = (B x 3 x T x h_dim) and
        # h[:, 0, t] is conditioned on r_0, s_0, a_0 ... r_t
        # h[:, 1, t] is conditioned on r_0, s_0, a_0 ... r_t, s_t
        # h[:, 2, t] is conditioned on r_0, s_0, a_0 ... r_t, s_t, a_t
        h = h.reshape(B, T, 3, self.h_dim).permute(0, 2, 1, 3)

        # get predictions
        return_preds = self.predict_rtg(h[:, 2])  # predict next rtg given r, s, a
        state_preds = self.predict_state(h[:, 2])  # predict next state given r, s, a
        action_preds = self.predict_action(h[:, 1])  # predict action given r, s

        return state_preds, action_preds, return_preds


# ---- evaluation, as utils.evaluate_on_env with discrete actions ----
def evaluate_on_env(model, context_len, env, rtg_target, rtg_scale, num_eval_ep, state_mean, state_std):
    eval_batch_size = 1  # required for forward pass

    total_reward = 0
    goals_reached = {1.0: 0, 3.0: 0}

    state_mean = torch.from_numpy(state_mean).to(device)
    state_std = torch.from_numpy(state_std).to(device)

    # same as timesteps used for training the transformer
    timesteps = torch.arange(start=0, end=env.max_ep_len, step=1)
    timesteps = timesteps.repeat(eval_batch_size, 1).to(device)

    model.eval()

    with torch.no_grad():
        for _ in range(num_eval_ep):
            # zeros place holders
            actions = torch.zeros((eval_batch_size, env.max_ep_len), dtype=torch.long, device=device)
            states = torch.zeros((eval_batch_size, env.max_ep_len, env.state_dim), dtype=torch.float32, device=device)
            rewards_to_go = torch.zeros((eval_batch_size, env.max_ep_len, 1), dtype=torch.float32, device=device)

            # init episode
            running_state = env.reset()
            running_reward = 0
            running_rtg = rtg_target / rtg_scale

            for t in range(env.max_ep_len):
                # add state in placeholder and normalize
                states[0, t] = torch.from_numpy(running_state).to(device)
                states[0, t] = (states[0, t] - state_mean) / state_std

                # calcualate running rtg and add it in placeholder
                running_rtg = running_rtg - (running_reward / rtg_scale)
                rewards_to_go[0, t] = running_rtg

                if t < context_len:
                    _, act_preds, _ = model.forward(timesteps[:, :context_len],
                                                    states[:, :context_len],
                                                    actions[:, :context_len],
                                                    rewards_to_go[:, :context_len])
                    act = act_preds[0, t].detach()
                else:
                    _, act_preds, _ = model.forward(timesteps[:, t - context_len + 1:t + 1],
                                                    states[:, t - context_len + 1:t + 1],
                                                    actions[:, t - context_len + 1:t + 1],
                                                    rewards_to_go[:, t - context_len + 1:t + 1])
                    act = act_preds[0, -1].detach()

                action = int(torch.argmax(act))
                running_state, running_reward, done = env.step(action)

                # add action in placeholder
                actions[0, t] = action

                total_reward += running_reward

                if done:
                    if running_reward > 0:
                        goals_reached[round(running_reward + 0.1, 1)] += 1
                    break

    model.train()
    return total_reward / num_eval_ep, goals_reached


# ---- train.py ----
context_len = 6
n_blocks = 2
embed_dim = 32
n_heads = 2
dropout_p = 0.1
batch_size = 32
lr = 1e-3
wt_decay = 1e-4
warmup_steps = 50
max_train_iters = 3
num_updates_per_iter = 100
rtg_scale = 1.0
num_eval_ep = 5

trajectories = collect(160, seed)
returns = np.array([traj['rewards'].sum() for traj in trajectories])
lengths = np.array([len(traj['rewards']) for traj in trajectories])
print(f"dataset: {len(trajectories)} trajectories, return mean {returns.mean():.3f} max {returns.max():.3f} "
      f"length mean {lengths.mean():.2f}")

traj_dataset = TrajectoryDataset(trajectories, context_len, rtg_scale)
traj_data_loader = DataLoader(traj_dataset, batch_size=batch_size, shuffle=True, pin_memory=True, drop_last=True)
data_iter = iter(traj_data_loader)
state_mean, state_std = traj_dataset.get_state_stats()

model = DecisionTransformer(
    state_dim=TwoGoalGrid.state_dim,
    act_dim=TwoGoalGrid.act_dim,
    n_blocks=n_blocks,
    h_dim=embed_dim,
    context_len=context_len,
    n_heads=n_heads,
    drop_p=dropout_p,
    max_timestep=TwoGoalGrid.max_ep_len,
).to(device)

optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wt_decay)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda steps: min((steps + 1) / warmup_steps, 1))
print(f"parameters {sum(p.numel() for p in model.parameters())} mask {tuple(model.transformer[0].attention.mask.shape)}")

# the mask keeps the future out: changing the last action token leaves every earlier prediction alone
model.eval()
with torch.no_grad():
    timesteps, states, actions, returns_to_go, traj_mask = next(iter(traj_data_loader))
    _, before, _ = model(timesteps, states, actions, returns_to_go.unsqueeze(-1))
    changed = actions.clone()
    changed[:, -1] = (changed[:, -1] + 1) % TwoGoalGrid.act_dim
    _, after, _ = model(timesteps, states, changed, returns_to_go.unsqueeze(-1))
causal = int(torch.equal(before, after))
model.train()

env = TwoGoalGrid(seed + 100)
for i_train_iter in range(max_train_iters):

    log_action_losses = []
    model.train()

    for _ in range(num_updates_per_iter):
        try:
            timesteps, states, actions, returns_to_go, traj_mask = next(data_iter)
        except StopIteration:
            data_iter = iter(traj_data_loader)
            timesteps, states, actions, returns_to_go, traj_mask = next(data_iter)

        timesteps = timesteps.to(device)  # B x T
        states = states.to(device)  # B x T x state_dim
        actions = actions.to(device)  # B x T
        returns_to_go = returns_to_go.to(device).unsqueeze(dim=-1)  # B x T x 1
        traj_mask = traj_mask.to(device)  # B x T
        action_target = torch.clone(actions).detach().to(device)

        state_preds, action_preds, return_preds = model.forward(
            timesteps=timesteps,
            states=states,
            actions=actions,
            returns_to_go=returns_to_go
        )
        # only consider non padded elements
        action_preds = action_preds.view(-1, TwoGoalGrid.act_dim)[traj_mask.view(-1,) > 0]
        action_target = action_target.view(-1)[traj_mask.view(-1,) > 0]

        action_loss = F.cross_entropy(action_preds, action_target)

        optimizer.zero_grad()
        action_loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        scheduler.step()

        log_action_losses.append(action_loss.detach().cpu().item())

    print(f"iteration {i_train_iter + 1} num of updates {(i_train_iter + 1) * num_updates_per_iter} "
          f"action loss {np.mean(log_action_losses):.4f} lr {scheduler.get_last_lr()[0]:.5f}")

results = {}
for target in (3.0, 1.0):
    avg_return, reached = evaluate_on_env(model, context_len, env, target, rtg_scale, num_eval_ep,
                                          state_mean, state_std)
    results[target] = (avg_return, reached)
    print(f"target return {target:.1f}: eval avg reward {avg_return:.3f} reached near {reached[1.0]} "
          f"far {reached[3.0]}")

far_rate = results[3.0][1][3.0] / num_eval_ep
near_rate = results[1.0][1][1.0] / num_eval_ep
print(f"FINAL action_loss={np.mean(log_action_losses):.4f} return_far={results[3.0][0]:.4f} "
      f"return_near={results[1.0][0]:.4f} far_rate={far_rate:.4f} near_rate={near_rate:.4f} causal={causal}")
