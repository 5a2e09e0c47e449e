"""R2D2 (Kapturowski et al., ICLR 2019) as seed_rl's ``r2d2`` agent and the common PyTorch
reimplementations write it, at tiny sizes on a NumPy memory POMDP.

The task: a row of vectorised episodes of ``EPISODE_LEN`` steps; at ``CUE_T`` the observation shows
a one-hot cue, every other step shows only noise, and at the last step a decision flag asks for the
cue's action (+1 if it matches, -1 if not, 0 reward elsewhere). A feed-forward Q network sees the
flag but not the cue, so its greedy return is about 0; a recurrent one can carry the cue.

The agent: an MLP torso, ``torch.cat`` with the one-hot previous action and previous reward into
``nn.LSTM(batch_first=False)`` (time-major ``(T, B, F)`` tensors), a dueling head
``value + advantage - advantage.mean(-1, keepdim=True)``. Actors run the online network step by
step under ``torch.no_grad()`` (epsilon-greedy per actor, ``epsilon_i = eps ** (1 + 7 i / (N - 1))``)
and store overlapping sequences together with the LSTM state ``(h, c)`` they started from. The
learner samples sequences by priority (``torch.multinomial`` on ``p ** alpha``), rebuilds the state
by a burn-in of the first steps under ``torch.no_grad()`` (online and target networks alike) and
learns on the rest: value rescaling ``h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x`` and its closed-form
inverse, n-step double-Q targets (``argmax`` of the online net, ``gather`` from the target net,
``F.pad`` of rewards and done masks), importance weights ``(N P) ** -beta / max``, new priorities
``eta * max|td| + (1 - eta) * mean|td|`` over each sequence's valid steps, Adam(eps=1e-3),
``clip_grad_norm_`` and a periodic ``load_state_dict`` target update.

Checked: ``h_inv(h(x)) == x`` to float tolerance (float32 and float64), that the burn-in leaves no
gradient on the burn-in observations and gives the same parameter gradients as unrolling the whole
sequence with grad and ``detach()``-ing the state at the burn-in boundary, and that the recurrent
agent's greedy return rises above the feed-forward baseline trained the same way.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

EPISODE_LEN, CUE_T = 8, 3
SEQ_LEN, BURN_IN, SEQ_STARTS = 7, 2, (0, 1)
OBS_DIM, NUM_ACTIONS, HIDDEN = 4, 2, 32
NUM_ACTORS = 8
N_STEP, GAMMA = 3, 0.97
ETA, ALPHA, BETA = 0.9, 0.9, 0.6
RESCALE_EPS = 1e-3
BATCH_SIZE, ITERATIONS, UPDATES_PER_ITER, TARGET_EVERY = 16, 60, 2, 10


# ----------------------------------------------------------------------------------- environment
class VecCueEnv:
    """``n`` copies of the cue-memory episode stepped together as one NumPy batch."""

    def __init__(self, n, rng):
        self.n = n
        self.rng = rng

    def _obs(self):
        obs = np.zeros((self.n, OBS_DIM), dtype=np.float32)
        if self.t == CUE_T:
            obs[np.arange(self.n), self.cue] = 1.0
        if self.t == EPISODE_LEN - 1:
            obs[:, 2] = 1.0
        obs[:, 3] = 0.1 * self.rng.randn(self.n)
        return obs

    def reset(self, cue=None):
        self.cue = self.rng.randint(0, NUM_ACTIONS, size=self.n) if cue is None else cue
        self.t = 0
        return self._obs()

    def step(self, actions):
        done = self.t == EPISODE_LEN - 1
        reward = np.where(actions == self.cue, 1.0, -1.0) if done else np.zeros(self.n)
        self.t += 1
        obs = None if done else self._obs()
        return obs, reward.astype(np.float32), done


# ----------------------------------------------------------------------------------- value rescaling
def value_rescale(x, eps=RESCALE_EPS):
    return torch.sign(x) * (torch.sqrt(torch.abs(x) + 1) - 1) + eps * x


def inverse_value_rescale(x, eps=RESCALE_EPS):
    return torch.sign(x) * (
        ((torch.sqrt(1 + 4 * eps * (torch.abs(x) + 1 + eps)) - 1) / (2 * eps)) ** 2 - 1)


# ----------------------------------------------------------------------------------- network
class R2D2Network(nn.Module):
    def __init__(self, recurrent=True):
        super().__init__()
        self.recurrent = recurrent
        self.torso = nn.Sequential(nn.Linear(OBS_DIM, HIDDEN), nn.ReLU())
        core_in = HIDDEN + NUM_ACTIONS + 1
        if recurrent:
            self.core = nn.LSTM(core_in, HIDDEN, batch_first=False)
        else:
            self.core = nn.Sequential(nn.Linear(core_in, HIDDEN), nn.ReLU())
        self.value = nn.Linear(HIDDEN, 1)
        self.advantage = nn.Linear(HIDDEN, NUM_ACTIONS)

    def initial_state(self, batch_size):
        return (torch.zeros(1, batch_size, HIDDEN), torch.zeros(1, batch_size, HIDDEN))

    def forward(self, obs, prev_action, prev_reward, state):
        """obs (T, B, OBS_DIM), prev_action (T, B) long, prev_reward (T, B); returns q (T, B, A)."""
        x = self.torso(obs)
        x = torch.cat([x, F.one_hot(prev_action, NUM_ACTIONS).float(), prev_reward.unsqueeze(-1)], dim=-1)
        if self.recurrent:
            core_out, state = self.core(x, state)
        else:
            core_out = self.core(x)
        advantage = self.advantage(core_out)
        q = self.value(core_out) + advantage - advantage.mean(-1, keepdim=True)
        return q, state


# ----------------------------------------------------------------------------------- actors
def run_actors(net, env, epsilons, rng, cue=None):
    """One batched episode; returns the episode tensors (time-major) and the states at each step."""
    obs = env.reset(cue)
    state = net.initial_state(env.n)
    prev_action = torch.zeros(env.n, dtype=torch.long)
    prev_reward = torch.zeros(env.n)
    traj = {"obs": [], "action": [], "reward": [], "prev_action": [], "prev_reward": [], "h": [], "c": []}
    done = False
    while not done:
        obs_t = torch.from_numpy(obs)
        traj["h"].append(state[0][0])
        traj["c"].append(state[1][0])
        with torch.no_grad():
            q, state = net(obs_t.unsqueeze(0), prev_action.unsqueeze(0), prev_reward.unsqueeze(0), state)
        greedy = q[0].argmax(dim=-1).numpy()
        explore = rng.rand(env.n) < epsilons
        action = np.where(explore, rng.randint(0, NUM_ACTIONS, size=env.n), greedy)
        next_obs, reward, done = env.step(action)
        for key, value in (("obs", obs_t), ("action", torch.as_tensor(action)), ("reward", torch.from_numpy(reward)),
                           ("prev_action", prev_action), ("prev_reward", prev_reward)):
            traj[key].append(value)
        prev_action = torch.as_tensor(action)
        prev_reward = torch.from_numpy(reward)
        obs = next_obs
    episode = {key: torch.stack(values) for key, values in traj.items()}
    return episode, float(episode["reward"].sum(0).mean())


class SequenceReplay:
    """Fixed-length overlapping sequences with their starting recurrent state and a priority each."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
        self.priorities = torch.zeros(0)

    def add_episode(self, episode):
        done = torch.zeros(EPISODE_LEN)
        done[-1] = 1.0
        new = []
        for start in SEQ_STARTS:
            sl = slice(start, start + SEQ_LEN)
            for b in range(episode["obs"].size(1)):
                new.append({
                    "obs": episode["obs"][sl, b], "action": episode["action"][sl, b],
                    "reward": episode["reward"][sl, b], "done": done[sl],
                    "prev_action": episode["prev_action"][sl, b], "prev_reward": episode["prev_reward"][sl, b],
                    "h": episode["h"][start, b], "c": episode["c"][start, b],
                })
        max_priority = self.priorities.max().item() if len(self.items) else 1.0
        self.items.extend(new)
        self.priorities = torch.cat([self.priorities, torch.full((len(new),), max_priority)])
        if len(self.items) > self.capacity:
            self.items = self.items[-self.capacity:]
            self.priorities = self.priorities[-self.capacity:]

    def sample(self, batch_size, beta):
        probs = self.priorities ** ALPHA
        probs = probs / probs.sum()
        indices = torch.multinomial(probs, batch_size, replacement=True)
        weights = (len(self.items) * probs[indices]) ** (-beta)
        weights = weights / weights.max()
        batch = {key: torch.stack([self.items[i][key] for i in indices.tolist()], dim=1)
                 for key in ("obs", "action", "reward", "done", "prev_action", "prev_reward")}
        state = (torch.stack([self.items[i]["h"] for i in indices.tolist()]).unsqueeze(0),
                 torch.stack([self.items[i]["c"] for i in indices.tolist()]).unsqueeze(0))
        return batch, state, indices, weights

    def update_priorities(self, indices, priorities):
        self.priorities[indices] = priorities


# ----------------------------------------------------------------------------------- learner
def n_step_targets(reward, done, q_target_next, q_online_next):
    """reward, done (L, B); q_* (L, B, A) over the learning part; n-step double-Q targets (L, B) in
    the rescaled space and a mask of the steps whose n-step window is inside the sequence."""
    L = reward.size(0)
    returns = torch.zeros_like(reward)
    alive = torch.ones_like(reward)
    reward_pad = F.pad(reward, (0, 0, 0, N_STEP))
    done_pad = F.pad(done, (0, 0, 0, N_STEP))
    for k in range(N_STEP):
        returns = returns + (GAMMA ** k) * alive * reward_pad[k:k + L]
        alive = alive * (1 - done_pad[k:k + L])
    best_action = q_online_next.argmax(dim=-1, keepdim=True)
    bootstrap = q_target_next.gather(-1, best_action).squeeze(-1)
    bootstrap = F.pad(bootstrap[N_STEP:], (0, 0, 0, N_STEP))
    targets = value_rescale(returns + (GAMMA ** N_STEP) * alive * inverse_value_rescale(bootstrap))
    inside = torch.arange(L).unsqueeze(1) + N_STEP < L
    valid = (inside | (alive == 0)).float()
    return targets, valid


def learner_loss(online, target, batch, state, weights):
    obs, prev_action, prev_reward = batch["obs"], batch["prev_action"], batch["prev_reward"]
    with torch.no_grad():
        _, online_state = online(obs[:BURN_IN], prev_action[:BURN_IN], prev_reward[:BURN_IN], state)
        _, target_state = target(obs[:BURN_IN], prev_action[:BURN_IN], prev_reward[:BURN_IN], state)
    q, _ = online(obs[BURN_IN:], prev_action[BURN_IN:], prev_reward[BURN_IN:], online_state)
    with torch.no_grad():
        q_target, _ = target(obs[BURN_IN:], prev_action[BURN_IN:], prev_reward[BURN_IN:], target_state)
    action = batch["action"][BURN_IN:]
    q_taken = q.gather(-1, action.unsqueeze(-1)).squeeze(-1)
    targets, valid = n_step_targets(batch["reward"][BURN_IN:], batch["done"][BURN_IN:], q_target, q.detach())
    td = (q_taken - targets) * valid
    loss = (0.5 * td.pow(2).sum(0) * weights).mean()
    abs_td = td.detach().abs()
    priorities = ETA * abs_td.max(dim=0)[0] + (1 - ETA) * abs_td.sum(0) / valid.sum(0)
    return loss, priorities


def train(recurrent, label):
    torch.manual_seed(seed + 1)
    rng = np.random.RandomState(seed + 1)
    env = VecCueEnv(NUM_ACTORS, rng)
    online = R2D2Network(recurrent)
    target = R2D2Network(recurrent)
    target.load_state_dict(online.state_dict())
    for p in target.parameters():
        p.requires_grad = False
    optimizer = torch.optim.Adam(online.parameters(), lr=1e-2, eps=1e-3)
    replay = SequenceReplay(capacity=320)
    epsilons = 0.4 ** (1 + 7 * np.arange(NUM_ACTORS) / (NUM_ACTORS - 1))
    actor_returns, losses, updates = [], [], 0
    for iteration in range(ITERATIONS):
        episode, ret = run_actors(online, env, epsilons, rng)
        replay.add_episode(episode)
        actor_returns.append(ret)
        for _ in range(UPDATES_PER_ITER):
            batch, state, indices, weights = replay.sample(BATCH_SIZE, BETA)
            loss, priorities = learner_loss(online, target, batch, state, weights)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(online.parameters(), 40.0)
            optimizer.step()
            replay.update_priorities(indices, priorities)
            losses.append(loss.item())
            updates += 1
            if updates % TARGET_EVERY == 0:
                target.load_state_dict(online.state_dict())
        if (iteration + 1) % 25 == 0:
            print(f"[{label}] iteration {iteration + 1} updates {updates} replay {len(replay.items)} "
                  f"loss {np.mean(losses[-20:]):.4f} actor return {np.mean(actor_returns[-10:]):.3f}")
    eval_env = VecCueEnv(64, np.random.RandomState(seed + 2))
    _, greedy_return = run_actors(online, eval_env, np.zeros(64), rng, cue=np.arange(64) % NUM_ACTIONS)
    return online, target, replay, greedy_return, float(np.mean(actor_returns[:10])), float(np.mean(actor_returns[-10:]))


# ----------------------------------------------------------------------------------- checks
x64 = torch.linspace(-1000.0, 1000.0, 2001, dtype=torch.float64)
rescale_err64 = (inverse_value_rescale(value_rescale(x64)) - x64).abs().max().item()
x32 = torch.linspace(-100.0, 100.0, 401)
rescale_ok32 = torch.allclose(inverse_value_rescale(value_rescale(x32)), x32, rtol=1e-4, atol=1e-4)
print(f"h_inv(h(x)) == x: float64 max error {rescale_err64:.2e}, float32 allclose {rescale_ok32}")
print(f"h(1) {value_rescale(torch.tensor(1.0)).item():.4f} h(-10) {value_rescale(torch.tensor(-10.0)).item():.4f}")

online, target, replay, r2d2_return, r2d2_first, r2d2_last = train(True, "r2d2")
_, _, _, ff_return, ff_first, ff_last = train(False, "feed-forward")
print(f"greedy return: r2d2 {r2d2_return:.3f} feed-forward {ff_return:.3f}")

# burn-in leaves no gradient: the same loss, once with the burn-in under no_grad, once unrolled with
# grad and the state detached at the boundary
batch, state, indices, weights = replay.sample(BATCH_SIZE, BETA)
obs = batch["obs"].clone().requires_grad_(True)
online.zero_grad()
loss_a, _ = learner_loss(online, target, dict(batch, obs=obs), state, weights)
loss_a.backward()
grads_a = [p.grad.clone() for p in online.parameters()]
burn_in_grad = obs.grad[:BURN_IN].abs().sum().item()
learn_grad = obs.grad[BURN_IN:].abs().sum().item()

online.zero_grad()
prev_action, prev_reward = batch["prev_action"], batch["prev_reward"]
_, (h, c) = online(batch["obs"][:BURN_IN], prev_action[:BURN_IN], prev_reward[:BURN_IN], state)
q, _ = online(batch["obs"][BURN_IN:], prev_action[BURN_IN:], prev_reward[BURN_IN:], (h.detach(), c.detach()))
with torch.no_grad():
    _, target_state = target(batch["obs"][:BURN_IN], prev_action[:BURN_IN], prev_reward[:BURN_IN], state)
    q_target, _ = target(batch["obs"][BURN_IN:], prev_action[BURN_IN:], prev_reward[BURN_IN:], target_state)
q_taken = q.gather(-1, batch["action"][BURN_IN:].unsqueeze(-1)).squeeze(-1)
targets, valid = n_step_targets(batch["reward"][BURN_IN:], batch["done"][BURN_IN:], q_target, q.detach())
td = (q_taken - targets) * valid
loss_b = (0.5 * td.pow(2).sum(0) * weights).mean()
loss_b.backward()
grad_diff = max((p.grad - g).abs().max().item() for p, g in zip(online.parameters(), grads_a))
print(f"burn-in obs grad {burn_in_grad:.1f} learning obs grad > 0 {learn_grad > 0} "
      f"loss match {torch.allclose(loss_a, loss_b)} max param grad diff {grad_diff:.2e}")
print(f"priorities in [{replay.priorities.min().item():.4f}, {replay.priorities.max().item():.4f}]")

print(f"FINAL r2d2_return={r2d2_return:.4f} ff_return={ff_return:.4f} gap={r2d2_return - ff_return:.4f} "
      f"r2d2_actor_first={r2d2_first:.4f} r2d2_actor_last={r2d2_last:.4f} ff_actor_last={ff_last:.4f} "
      f"rescale_err={rescale_err64:.3e} rescale_ok32={int(rescale_ok32)} burn_in_grad={burn_in_grad:.4f} "
      f"burn_grad_diff={grad_diff:.3e}")
