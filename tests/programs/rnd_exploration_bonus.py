"""Random Network Distillation as the PyTorch ports of openai/random-network-distillation write it
(jcwleo/random-network-distillation-pytorch: ``utils.py``, ``model.py``, ``agents.py``, ``train.py``)
on a sparse-reward grid world written in NumPy: ``RunningMeanStd`` with the parallel-variance merge
(``update_from_moments``), ``RewardForwardFilter`` discounted intrinsic returns whose running std
divides the intrinsic rewards, observation normalisation ``((next_obs - obs_rms.mean) /
np.sqrt(obs_rms.var)).clip(-5, 5)`` warmed up by random steps, an ``RNDModel`` whose fixed random
target is frozen by ``requires_grad_(False)``, the intrinsic reward ``(target - predict).pow(2).sum(1)
/ 2``, ``make_train_data`` GAE per stream (episodic extrinsic, non-episodic intrinsic), and the PPO
update with two value heads (``critic_ext``/``critic_int``), ``Categorical(F.softmax(policy, dim=-1))``,
the clipped surrogate, the predictor's ``MSELoss(reduction='none')`` masked by ``update_proportion``
over ``torch.max(mask.sum(), torch.Tensor([1]))``, and ``clip_grad_norm_`` on both parameter lists.

Checks: the bonus of the start state falls as it is visited (and frequently visited cells carry
less bonus than rarely visited ones); the run with the bonus covers more of the grid than the same
agent trained on the extrinsic reward alone.
"""

import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions.categorical import Categorical

seed = int(os.environ.get("PROGRAM_SEED", "0"))
random.seed(seed)
np.random.seed(seed)
torch.manual_seed(seed)

device = torch.device("cpu")


# ---- a sparse-reward grid world, vectorised over workers ----
class GridWorld:
    """An N x N grid; the agent starts in the top-left corner and is paid 1 only on reaching the
    bottom-right one. The observation is the grid as an image (uint8, 255 where the agent is)."""

    size = 11
    max_steps = 28
    moves = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])

    def __init__(self, num_worker):
        self.num_worker = num_worker
        self.pos = np.zeros((num_worker, 2), dtype=np.int64)
        self.t = np.zeros(num_worker, dtype=np.int64)

    def obs(self):
        img = np.zeros((self.num_worker, self.size * self.size), dtype=np.uint8)
        img[np.arange(self.num_worker), self.pos[:, 0] * self.size + self.pos[:, 1]] = 255
        return img

    def reset(self):
        self.pos[:] = 0
        self.t[:] = 0
        return self.obs()

    def step(self, actions):
        self.pos = np.clip(self.pos + self.moves[actions], 0, self.size - 1)
        self.t += 1
        at_goal = (self.pos == self.size - 1).all(1)
        reward = at_goal.astype(np.float32)
        done = at_goal | (self.t >= self.max_steps)
        visited = self.pos[:, 0] * self.size + self.pos[:, 1]
        next_obs = self.obs()  # the observation the step led to, before any reset
        self.pos[done] = 0
        self.t[done] = 0
        return next_obs, reward, done, visited


# ---- utils.py ----
class RunningMeanStd:
    # https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance#Parallel_algorithm
    def __init__(self, epsilon=1e-4, shape=()):
        self.mean = np.zeros(shape, 'float64')
        self.var = np.ones(shape, 'float64')
        self.count = epsilon

    def update(self, x):
        batch_mean = np.mean(x, axis=0)
        batch_var = np.var(x, axis=0)
        batch_count = x.shape[0]
        self.update_from_moments(batch_mean, batch_var, batch_count)

    def update_from_moments(self, batch_mean, batch_var, batch_count):
        delta = batch_mean - self.mean
        tot_count = self.count + batch_count

        new_mean = self.mean + delta * batch_count / tot_count
        m_a = self.var * (self.count)
        m_b = batch_var * (batch_count)
        M2 = m_a + m_b + np.square(delta) * self.count * batch_count / (self.count + batch_count)
        new_var = M2 / (self.count + batch_count)

        new_count = batch_count + self.count

        self.mean = new_mean
        self.var = new_var
        self.count = new_count


class RewardForwardFilter:
    def __init__(self, gamma):
        self.rewems = None
        self.gamma = gamma

    def update(self, rews):
        if self.rewems is None:
            self.rewems = rews
        else:
            self.rewems = self.rewems * self.gamma + rews
        return self.rewems


def make_train_data(reward, done, value, gamma, num_step, num_worker, lam=0.95):
    discounted_return = np.empty([num_worker, num_step])
    gae = np.zeros_like([num_worker, ])
    for t in range(num_step - 1, -1, -1):
        delta = reward[:, t] + gamma * value[:, t + 1] * (1 - done[:, t]) - value[:, t]
        gae = delta + gamma * lam * (1 - done[:, t]) * gae
        discounted_return[:, t] = gae + value[:, t]
    target = discounted_return.reshape([-1])
    adv = discounted_return - value[:, :-1]
    return target, adv.reshape([-1])


# ---- model.py ----
class ActorCriticNetwork(nn.Module):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.feature = nn.Sequential(nn.Linear(input_size, 64), nn.ReLU())
        self.actor = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, output_size))
        self.extra_layer = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
        self.critic_ext = nn.Linear(64, 1)
        self.critic_int = nn.Linear(64, 1)

        for p in self.modules():
            if isinstance(p, nn.Linear):
                nn.init.orthogonal_(p.weight, np.sqrt(2))
                p.bias.data.zero_()
        nn.init.orthogonal_(self.critic_ext.weight, 0.01)
        self.critic_ext.bias.data.zero_()
        nn.init.orthogonal_(self.critic_int.weight, 0.01)
        self.critic_int.bias.data.zero_()

    def forward(self, state):
        x = self.feature(state)
        policy = self.actor(x)
        value_ext = self.critic_ext(self.extra_layer(x) + x)
        value_int = self.critic_int(self.extra_layer(x) + x)
        return policy, value_ext, value_int


class RNDModel(nn.Module):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.predictor = nn.Sequential(
            nn.Linear(input_size, 64), nn.LeakyReLU(),
            nn.Linear(64, 64), nn.ReLU(),
            nn.Linear(64, output_size))
        self.target = nn.Sequential(
            nn.Linear(input_size, 64), nn.LeakyReLU(),
            nn.Linear(64, output_size))

        for p in self.modules():
            if isinstance(p, nn.Linear):
                nn.init.orthogonal_(p.weight, np.sqrt(2))
                p.bias.data.zero_()
        self.target.requires_grad_(False)

    def forward(self, next_obs):
        target_feature = self.target(next_obs)
        predict_feature = self.predictor(next_obs)
        return predict_feature, target_feature


# ---- agents.py ----
class RNDAgent:
    def __init__(self, input_size, output_size, num_step, gamma, lam=0.95, learning_rate=1e-3,
                 ent_coef=0.01, clip_grad_norm=0.5, epoch=4, batch_size=64, ppo_eps=0.1,
                 update_proportion=0.25):
        self.model = ActorCriticNetwork(input_size, output_size)
        self.output_size = output_size
        self.num_step = num_step
        self.gamma = gamma
        self.lam = lam
        self.epoch = epoch
        self.batch_size = batch_size
        self.ent_coef = ent_coef
        self.ppo_eps = ppo_eps
        self.clip_grad_norm = clip_grad_norm
        self.update_proportion = update_proportion
        self.device = device
        self.rnd = RNDModel(input_size, 16)
        self.optimizer = optim.Adam(list(self.model.parameters()) + list(self.rnd.predictor.parameters()),
                                    lr=learning_rate)
        self.rnd = self.rnd.to(self.device)
        self.model = self.model.to(self.device)

    def get_action(self, state):
        state = torch.Tensor(state).to(self.device)
        state = state.float()
        policy, value_ext, value_int = self.model(state)
        action_prob = F.softmax(policy, dim=-1).data.cpu().numpy()
        action = self.random_choice_prob_index(action_prob)
        return action, value_ext.data.cpu().numpy().squeeze(), value_int.data.cpu().numpy().squeeze(), \
            policy.detach()

    @staticmethod
    def random_choice_prob_index(p, axis=1):
        r = np.expand_dims(np.random.rand(p.shape[1 - axis]), axis=axis)
        return (p.cumsum(axis=axis) > r).argmax(axis=axis)

    def compute_intrinsic_reward(self, next_obs):
        next_obs = torch.FloatTensor(next_obs).to(self.device)
        target_next_feature = self.rnd.target(next_obs)
        predict_next_feature = self.rnd.predictor(next_obs)
        intrinsic_reward = (target_next_feature - predict_next_feature).pow(2).sum(1) / 2
        return intrinsic_reward.data.cpu().numpy()

    def train_model(self, s_batch, target_ext_batch, target_int_batch, y_batch, adv_batch,
                    next_obs_batch, old_policy):
        s_batch = torch.FloatTensor(s_batch).to(self.device)
        target_ext_batch = torch.FloatTensor(target_ext_batch).to(self.device)
        target_int_batch = torch.FloatTensor(target_int_batch).to(self.device)
        y_batch = torch.LongTensor(y_batch).to(self.device)
        adv_batch = torch.FloatTensor(adv_batch).to(self.device)
        next_obs_batch = torch.FloatTensor(next_obs_batch).to(self.device)

        sample_range = np.arange(len(s_batch))
        forward_mse = nn.MSELoss(reduction='none')

        with torch.no_grad():
            policy_old_list = torch.stack(old_policy).permute(1, 0, 2).contiguous().view(-1, self.output_size)
            m_old = Categorical(F.softmax(policy_old_list, dim=-1))
            log_prob_old = m_old.log_prob(y_batch)

        for _ in range(self.epoch):
            np.random.shuffle(sample_range)
            for j in range(int(len(s_batch) / self.batch_size)):
                sample_idx = sample_range[self.batch_size * j:self.batch_size * (j + 1)]

                # for Curiosity-driven(Random Network Distillation)
                predict_next_state_feature, target_next_state_feature = self.rnd(next_obs_batch[sample_idx])

                forward_loss = forward_mse(predict_next_state_feature, target_next_state_feature.detach()).mean(-1)
                # Proportion of exp used for predictor update
                mask = torch.rand(len(forward_loss)).to(self.device)
                mask = (mask < self.update_proportion).type(torch.FloatTensor).to(self.device)
                forward_loss = (forward_loss * mask).sum() / torch.max(mask.sum(), torch.Tensor([1]).to(self.device))

                policy, value_ext, value_int = self.model(s_batch[sample_idx])
                m = Categorical(F.softmax(policy, dim=-1))
                log_prob = m.log_prob(y_batch[sample_idx])

                ratio = torch.exp(log_prob - log_prob_old[sample_idx])

                surr1 = ratio * adv_batch[sample_idx]
                surr2 = torch.clamp(ratio, 1.0 - self.ppo_eps, 1.0 + self.ppo_eps) * adv_batch[sample_idx]

                actor_loss = -torch.min(surr1, surr2).mean()
                critic_ext_loss = F.mse_loss(value_ext.sum(1), target_ext_batch[sample_idx])
                critic_int_loss = F.mse_loss(value_int.sum(1), target_int_batch[sample_idx])

                critic_loss = critic_ext_loss + critic_int_loss

                entropy = m.entropy().mean()

                self.optimizer.zero_grad()
                loss = actor_loss + 0.5 * critic_loss - self.ent_coef * entropy + forward_loss
                loss.backward()
                nn.utils.clip_grad_norm_(list(self.model.parameters()) + list(self.rnd.predictor.parameters()),
                                         self.clip_grad_norm)
                self.optimizer.step()
        return forward_loss.item(), critic_loss.item()


# ---- train.py ----
num_worker = 8
num_step = 32
num_updates = 24
ext_coef, int_coef_rnd = 2.0, 1.0
gamma, int_gamma = 0.99, 0.99
pre_obs_norm_step = 4
input_size = GridWorld.size * GridWorld.size
output_size = 4


def train(int_coef, run_seed):
    np.random.seed(run_seed)
    torch.manual_seed(run_seed)
    env = GridWorld(num_worker)
    agent = RNDAgent(input_size, output_size, num_step, gamma)
    reward_rms = RunningMeanStd()
    obs_rms = RunningMeanStd(shape=(1, input_size))
    discounted_reward = RewardForwardFilter(int_gamma)

    states = env.reset()
    # normalize obs
    next_obs = []
    for step in range(num_step * pre_obs_norm_step):
        actions = np.random.randint(0, output_size, size=(num_worker,))
        s, _, _, _ = env.step(actions)
        next_obs.append(s[:])
        if len(next_obs) % (num_step * num_worker) == 0 or step == num_step * pre_obs_norm_step - 1:
            next_obs = np.stack(next_obs).reshape([-1, input_size]).astype(np.float64)
            obs_rms.update(next_obs)
            next_obs = []
    states = env.reset()

    start_obs = np.zeros((1, input_size), dtype=np.float64)
    start_obs[0, 0] = 255

    def normalised(x):
        return ((x - obs_rms.mean) / np.sqrt(obs_rms.var)).clip(-5, 5)

    visits = np.zeros(input_size, dtype=np.int64)
    visits[0] = num_worker
    start_bonus, goal_hits = [], 0
    for global_update in range(num_updates):
        total_state, total_reward, total_done, total_action, total_int_reward, \
            total_next_obs, total_ext_values, total_int_values, total_policy = [], [], [], [], [], [], [], [], []
        for _ in range(num_step):
            actions, value_ext, value_int, policy = agent.get_action(np.float32(states) / 255.)
            next_states, rewards, dones, visited = env.step(actions)
            np.add.at(visits, visited, 1)
            goal_hits += int(rewards.sum())
            next_obs = next_states.astype(np.float64)
            intrinsic_reward = agent.compute_intrinsic_reward(normalised(next_obs))
            total_next_obs.append(next_obs)
            total_int_reward.append(intrinsic_reward)
            total_state.append(states)
            total_reward.append(rewards)
            total_done.append(dones)
            total_action.append(actions)
            total_ext_values.append(value_ext)
            total_int_values.append(value_int)
            total_policy.append(policy)
            states = np.where(dones[:, None], env.obs(), next_states)

        # calculate last next value
        _, value_ext, value_int, _ = agent.get_action(np.float32(states) / 255.)
        total_ext_values.append(value_ext)
        total_int_values.append(value_int)

        total_state = np.stack(total_state).transpose([1, 0, 2]).reshape([-1, input_size])
        total_reward = np.stack(total_reward).transpose()
        total_action = np.stack(total_action).transpose().reshape([-1])
        total_done = np.stack(total_done).transpose().astype(np.float64)
        total_next_obs = np.stack(total_next_obs).transpose([1, 0, 2]).reshape([-1, input_size])
        total_ext_values = np.stack(total_ext_values).transpose()
        total_int_values = np.stack(total_int_values).transpose()

        # running mean intrinsic reward
        total_int_reward = np.stack(total_int_reward).transpose()
        total_reward_per_env = np.array([discounted_reward.update(reward_per_step) for reward_per_step in
                                         total_int_reward.T])
        mean, std, count = np.mean(total_reward_per_env), np.std(total_reward_per_env), len(total_reward_per_env)
        reward_rms.update_from_moments(mean, std ** 2, count)

        # normalize intrinsic reward
        total_int_reward /= np.sqrt(reward_rms.var)

        ext_target, ext_adv = make_train_data(total_reward, total_done, total_ext_values, gamma, num_step, num_worker)
        # intrinsic reward calculate; None Episodic
        int_target, int_adv = make_train_data(total_int_reward, np.zeros_like(total_int_reward), total_int_values,
                                              int_gamma, num_step, num_worker)
        total_adv = int_adv * int_coef + ext_adv * ext_coef

        obs_rms.update(total_next_obs)
        forward_loss, critic_loss = agent.train_model(
            np.float32(total_state) / 255., ext_target, int_target, total_action, total_adv,
            normalised(total_next_obs), total_policy)

        with torch.no_grad():
            start_bonus.append(float(agent.compute_intrinsic_reward(normalised(start_obs))[0]))
        if (global_update + 1) % 8 == 0:
            print(f"int_coef {int_coef} update {global_update + 1}: coverage {(visits > 0).sum()}/{input_size} "
                  f"goal hits {goal_hits} start bonus {start_bonus[-1]:.4f} rnd loss {forward_loss:.4f} "
                  f"critic loss {critic_loss:.4f}")

    cells = np.eye(input_size, dtype=np.float64) * 255
    with torch.no_grad():
        bonus = agent.compute_intrinsic_reward(normalised(cells))
    return visits, start_bonus, bonus, goal_hits


visits_rnd, start_bonus, bonus, hits_rnd = train(int_coef_rnd, seed)
visits_ext, _, _, hits_ext = train(0.0, seed)

coverage_rnd = int((visits_rnd > 0).sum())
coverage_ext = int((visits_ext > 0).sum())
start_bonus_drop = start_bonus[-1] / start_bonus[0]
seen = visits_rnd > 0
order = np.argsort(visits_rnd[seen])
quarter = max(1, len(order) // 4)
bonus_seen = bonus[seen]
bonus_frequent = float(bonus_seen[order[-quarter:]].mean())
bonus_rare = float(bonus_seen[order[:quarter]].mean())
print(f"start-state bonus: {start_bonus[0]:.4f} after the first update, {start_bonus[-1]:.4f} at the end")
print(f"bonus of the most visited quarter {bonus_frequent:.4f}, of the least visited quarter {bonus_rare:.4f}")
print(f"coverage: {coverage_rnd} cells with the bonus, {coverage_ext} without")
assert start_bonus_drop < 1.0 and bonus_frequent < bonus_rare and coverage_rnd > coverage_ext

print(f"FINAL coverage_rnd={coverage_rnd} coverage_ext={coverage_ext} goal_hits_rnd={hits_rnd} goal_hits_ext={hits_ext} start_bonus_drop={start_bonus_drop:.4f} "
      f"bonus_ratio={bonus_frequent / bonus_rare:.4f}")
