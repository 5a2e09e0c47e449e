"""DrQ-v2 style random-shift augmentation for Q-learning from pixels, on a toy gridworld.

In the style of denisyarats/drqv2: ``RandomShiftsAug`` (replicate ``F.pad``, a ``torch.linspace``
base grid built by ``unsqueeze(0).repeat(h, 1).unsqueeze(2)`` and ``torch.cat`` with its
transpose, integer shifts drawn by ``torch.randint(..., dtype=x.dtype)`` scaled by
``2.0 / (h + 2 * pad)``, ``F.grid_sample(padding_mode='zeros', align_corners=False)``), a conv
encoder on ``obs / 255.0 - 0.5`` with orthogonal init, a Linear + LayerNorm + Tanh trunk, twin
Q heads trained by ``F.mse_loss`` against a clipped double-Q target from a soft-updated target
network (``target_param.data.lerp_(param.data, tau)``), and Adam.

The world: 8 cells in a row, rendered as 3x32x32 uint8 frames (agent in red, goal in green on
a grey background); 3 actions (left, stay, right); reward 1 on reaching the goal, -0.05 a step.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np_rng = np.random.RandomState(seed)

N_CELLS = 8
CELL = 4
GAMMA = 0.9
MAX_STEPS = 10


def render(agent, goal):
    frame = np.full((3, 32, 32), 40, dtype=np.uint8)
    frame[1, 12:16, goal * CELL:(goal + 1) * CELL] = 220
    frame[0, 16:20, agent * CELL:(agent + 1) * CELL] = 250
    return frame


def step(agent, goal, action):
    agent = min(max(agent + action - 1, 0), N_CELLS - 1)
    done = agent == goal
    return agent, (1.0 if done else -0.05), done


class RandomShiftsAug(nn.Module):
    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x, shift=None):
        n, c, h, w = x.size()
        assert h == w
        padding = tuple([self.pad] * 4)
        x = F.pad(x, padding, 'replicate')
        eps = 1.0 / (h + 2 * self.pad)
        arange = torch.linspace(-1.0 + eps,
                                1.0 - eps,
                                h + 2 * self.pad,
                                device=x.device,
                                dtype=x.dtype)[:h]
        arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
        base_grid = torch.cat([arange, arange.transpose(1, 0)], dim=2)
        base_grid = base_grid.unsqueeze(0).repeat(n, 1, 1, 1)

        if shift is None:
            shift = torch.randint(0,
                                  2 * self.pad + 1,
                                  size=(n, 1, 1, 2),
                                  device=x.device,
                                  dtype=x.dtype)
        self.last_shift = shift.clone()
        shift = shift.clone()
        shift *= 2.0 / (h + 2 * self.pad)

        grid = base_grid + shift
        return F.grid_sample(x,
                             grid,
                             padding_mode='zeros',
                             align_corners=False)


def weight_init(m):
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight.data)
        if hasattr(m.bias, 'data'):
            m.bias.data.fill_(0.0)
    elif isinstance(m, nn.Conv2d) or isinstance(m, nn.ConvTranspose2d):
        gain = nn.init.calculate_gain('relu')
        nn.init.orthogonal_(m.weight.data, gain)
        if hasattr(m.bias, 'data'):
            m.bias.data.fill_(0.0)


def soft_update_params(net, target_net, tau):
    for param, target_param in zip(net.parameters(), target_net.parameters()):
        target_param.data.lerp_(param.data, tau)


class Encoder(nn.Module):
    def __init__(self, obs_shape):
        super().__init__()
        assert len(obs_shape) == 3
        self.repr_dim = 16 * 13 * 13
        self.convnet = nn.Sequential(nn.Conv2d(obs_shape[0], 16, 3, stride=2),
                                     nn.ReLU(), nn.Conv2d(16, 16, 3, stride=1),
                                     nn.ReLU())
        self.apply(weight_init)

    def forward(self, obs):
        obs = obs / 255.0 - 0.5
        h = self.convnet(obs)
        h = h.view(h.shape[0], -1)
        return h


class Critic(nn.Module):
    def __init__(self, repr_dim, n_actions, feature_dim, hidden_dim):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(repr_dim, feature_dim),
                                   nn.LayerNorm(feature_dim), nn.Tanh())
        self.Q1 = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, n_actions))
        self.Q2 = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, n_actions))
        self.apply(weight_init)

    def forward(self, obs):
        h = self.trunk(obs)
        return self.Q1(h), self.Q2(h)


# --- offline dataset: every (agent, goal, action) transition, as a replay buffer would hold it
states = [(a, g) for g in range(N_CELLS) for a in range(N_CELLS) if a != g]
obs_l, act_l, rew_l, next_l, done_l = [], [], [], [], []
for a, g in states:
    for action in range(3):
        a2, r, d = step(a, g, action)
        obs_l.append(render(a, g))
        act_l.append(action)
        rew_l.append(r)
        next_l.append(render(a2, g))
        done_l.append(float(d))
buf_obs = torch.as_tensor(np.stack(obs_l))
buf_act = torch.as_tensor(np.array(act_l), dtype=torch.long)
buf_rew = torch.as_tensor(np.array(rew_l, dtype=np.float32)).unsqueeze(1)
buf_next = torch.as_tensor(np.stack(next_l))
buf_done = torch.as_tensor(np.array(done_l, dtype=np.float32)).unsqueeze(1)
print(f"replay buffer: {buf_obs.shape[0]} transitions, obs {tuple(buf_obs.shape[1:])} {buf_obs.dtype}")

aug = RandomShiftsAug(pad=4)

# --- checks of the augmentation itself
frames = buf_obs[:16].float()
centre = torch.full((16, 1, 1, 2), 4.0)
same = aug(frames, centre)
zero_shift_err = (same - frames).abs().max().item()
shifted = aug(frames)
padded = F.pad(frames, (4, 4, 4, 4), 'replicate')
translate_err = 0.0
for i in range(frames.shape[0]):
    sx, sy = int(aug.last_shift[i, 0, 0, 0]), int(aug.last_shift[i, 0, 0, 1])
    crop = padded[i, :, sy:sy + 32, sx:sx + 32]
    translate_err = max(translate_err, (shifted[i] - crop).abs().max().item())
assert aug.last_shift.dtype == torch.float32 and shifted.shape == frames.shape
assert zero_shift_err < 1e-3 and translate_err < 1e-3
print(f"aug: shifts in [{int(aug.last_shift.min())}, {int(aug.last_shift.max())}] "
      f"zero-shift err {zero_shift_err:.2e} translate err {translate_err:.2e}")

encoder = Encoder((3, 32, 32))
critic = Critic(encoder.repr_dim, 3, feature_dim=32, hidden_dim=64)
encoder_target = Encoder((3, 32, 32))
critic_target = Critic(encoder.repr_dim, 3, feature_dim=32, hidden_dim=64)
encoder_target.load_state_dict(encoder.state_dict())
critic_target.load_state_dict(critic.state_dict())
opt = torch.optim.Adam(list(encoder.parameters()) + list(critic.parameters()), lr=2e-3)


def greedy_actions(obs):
    with torch.no_grad():
        q1, q2 = critic(encoder(obs.float()))
        return torch.min(q1, q2).argmax(1)


def evaluate():
    """Greedy rollouts from every start; accuracy = share of states whose action moves toward the goal."""
    obs = torch.as_tensor(np.stack([render(a, g) for a, g in states]))
    acts = greedy_actions(obs)
    best = torch.tensor([2 if g > a else 0 for a, g in states])
    acc = (acts == best).float().mean().item()
    pos = [a for a, _ in states]
    goals = [g for _, g in states]
    returns = np.zeros(len(states))
    alive = np.ones(len(states), dtype=bool)
    disc = 1.0
    for _ in range(MAX_STEPS):
        obs = torch.as_tensor(np.stack([render(a, g) for a, g in zip(pos, goals)]))
        acts = greedy_actions(obs).tolist()
        for i in np.flatnonzero(alive):
            pos[i], r, d = step(pos[i], goals[i], acts[i])
            returns[i] += disc * r
            alive[i] = not d
        disc *= GAMMA
    total = float(returns.sum())
    return total / len(states), acc


ret0, acc0 = evaluate()
print(f"before: return {ret0:.3f} acc {acc0:.3f}")

batch_size, tau = 64, 0.1
for it in range(1, 401):
    idx = torch.randint(0, buf_obs.shape[0], (batch_size,))
    obs = aug(buf_obs[idx].float())
    next_obs = aug(buf_next[idx].float())
    obs = encoder(obs)
    with torch.no_grad():
        next_obs = encoder_target(next_obs)
        target_Q1, target_Q2 = critic_target(next_obs)
        target_V = torch.min(target_Q1, target_Q2).max(1, keepdim=True)[0]
        target_Q = buf_rew[idx] + (1.0 - buf_done[idx]) * GAMMA * target_V
    Q1, Q2 = critic(obs)
    a = buf_act[idx].unsqueeze(1)
    critic_loss = F.mse_loss(Q1.gather(1, a), target_Q) + F.mse_loss(Q2.gather(1, a), target_Q)
    opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    opt.step()
    soft_update_params(encoder, encoder_target, tau)
    soft_update_params(critic, critic_target, tau)
    if it % 100 == 0:
        print(f"iter {it} critic_loss {critic_loss.item():.4f} "
              f"q {Q1.mean().item():.3f} target_q {target_Q.mean().item():.3f}")

ret1, acc1 = evaluate()
print(f"after: return {ret1:.3f} acc {acc1:.3f}")
print(f"FINAL return={ret1:.4f} acc={acc1:.4f} gain={ret1 - ret0:.4f} "
      f"aug_err={max(zero_shift_err, translate_err):.6f}")
