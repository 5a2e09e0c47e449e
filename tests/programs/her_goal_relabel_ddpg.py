"""Hindsight Experience Replay with DDPG in the layout of TianhongDai's hindsight-experience-replay (a
port of openai/baselines ``her``), on a point mass that must reach a goal in the plane.

The environment returns baselines-style dict observations (``observation``, ``achieved_goal``,
``desired_goal``) and a sparse ``compute_reward`` of ``-(d > distance_threshold)``. Written the repo's
way: episodes stored in a ``replay_buffer`` of NumPy arrays (``obs``/``ag`` with T + 1 steps, ``g`` and
``actions`` with T), ``her_sampler.sample_her_transitions`` with the ``future`` strategy
(``future_p = 1 - (1. / (1 + replay_k))``, ``np.random.randint`` episode and time indices,
``future_offset`` by ``np.random.uniform``, rewards recomputed by ``reward_func``), the ``normalizer``
(running sums, ``np.sqrt(np.maximum(np.square(self.eps), ...))``, ``np.clip`` to ``clip_range``) for
observations and goals, ``_preproc_inputs`` by ``torch.tensor(inputs, dtype=torch.float32).unsqueeze(0)``,
an ``actor`` with ``self.max_action * torch.tanh(...)``, a ``critic`` on ``torch.cat([x, actions /
self.max_action], dim=1)``, Gaussian plus random-action exploration by ``np.random.binomial``, targets
``r + gamma * q_next`` under ``torch.no_grad()`` clipped by ``torch.clamp(target_q_value, -clip_return, 0)``,
the actor loss with its ``action_l2`` term, ``load_state_dict`` copies into the target networks and the
soft update ``p_targ.data.mul_(polyak).add_((1 - polyak) * p.data)``.

Checked: every relabelled goal is an achieved goal of the same episode at a later step and the stored
rewards equal ``-(torch.norm(ag_next - g, dim=-1) > eps).float()`` recomputed in torch; the target
networks lag the online ones (a positive distance) and, with learning stopped, soft updates shrink that
distance by ``polyak`` each time; the success rate with HER beats the same agent trained without it.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)


# ----------------------------------------------------------------------------------- environment
class PointReachEnv:
    """A point in [-1, 1]^2 moved by actions in [-1, 1]^2 scaled by 0.3; goals anywhere."""

    def __init__(self, max_timesteps=10, distance_threshold=0.15):
        self._max_episode_steps = max_timesteps
        self.distance_threshold = distance_threshold

    def compute_reward(self, achieved_goal, goal, info):
        d = np.linalg.norm(achieved_goal - goal, axis=-1)
        return -(d > self.distance_threshold).astype(np.float32)

    def _obs(self):
        return {'observation': np.concatenate([self.pos, self.pos - self.goal]).astype(np.float32),
                'achieved_goal': self.pos.copy().astype(np.float32),
                'desired_goal': self.goal.copy().astype(np.float32)}

    def reset(self):
        self.pos = np.random.uniform(-1, 1, size=2)
        self.goal = np.random.uniform(-1, 1, size=2)
        return self._obs()

    def step(self, action):
        self.pos = np.clip(self.pos + 0.3 * np.clip(action, -1, 1), -1, 1)
        obs = self._obs()
        reward = self.compute_reward(obs['achieved_goal'], self.goal, None)
        info = {'is_success': float(reward == 0)}
        return obs, reward, False, info


# ----------------------------------------------------------------------------------- her pieces
class her_sampler:
    def __init__(self, replay_strategy, replay_k, reward_func=None):
        self.replay_strategy = replay_strategy
        self.replay_k = replay_k
        if self.replay_strategy == 'future':
            self.future_p = 1 - (1. / (1 + replay_k))
        else:
            self.future_p = 0
        self.reward_func = reward_func

    def sample_her_transitions(self, episode_batch, batch_size_in_transitions):
        T = episode_batch['actions'].shape[1]
        rollout_batch_size = episode_batch['actions'].shape[0]
        batch_size = batch_size_in_transitions
        # select which rollouts and which timesteps to be used
        episode_idxs = np.random.randint(0, rollout_batch_size, batch_size)
        t_samples = np.random.randint(T, size=batch_size)
        transitions = {key: episode_batch[key][episode_idxs, t_samples].copy() for key in episode_batch.keys()}
        # her idx
        her_indexes = np.where(np.random.uniform(size=batch_size) < self.future_p)
        future_offset = np.random.uniform(size=batch_size) * (T - t_samples)
        future_offset = future_offset.astype(int)
        future_t = (t_samples + 1 + future_offset)[her_indexes]
        # replace go with achieved goal
        future_ag = episode_batch['ag'][episode_idxs[her_indexes], future_t]
        transitions['g'][her_indexes] = future_ag
        # to get the params to re-compute reward
        transitions['r'] = np.expand_dims(self.reward_func(transitions['ag_next'], transitions['g'], None), 1)
        transitions = {k: transitions[k].reshape(batch_size, *transitions[k].shape[1:]) for k in transitions.keys()}
        transitions['_episode_idxs'], transitions['_t'] = episode_idxs, t_samples
        return transitions


class replay_buffer:
    def __init__(self, env_params, buffer_size, sample_func):
        self.env_params = env_params
        self.T = env_params['max_timesteps']
        self.size = buffer_size // self.T
        self.current_size = 0
        self.n_transitions_stored = 0
        self.sample_func = sample_func
        self.buffers = {'obs': np.empty([self.size, self.T + 1, self.env_params['obs']]),
                        'ag': np.empty([self.size, self.T + 1, self.env_params['goal']]),
                        'g': np.empty([self.size, self.T, self.env_params['goal']]),
                        'actions': np.empty([self.size, self.T, self.env_params['action']]),
                        }

    def store_episode(self, episode_batch):
        mb_obs, mb_ag, mb_g, mb_actions = episode_batch
        batch_size = mb_obs.shape[0]
        idxs = self._get_storage_idx(inc=batch_size)
        self.buffers['obs'][idxs] = mb_obs
        self.buffers['ag'][idxs] = mb_ag
        self.buffers['g'][idxs] = mb_g
        self.buffers['actions'][idxs] = mb_actions
        self.n_transitions_stored += self.T * batch_size

    def sample(self, batch_size):
        temp_buffers = {}
        for key in self.buffers.keys():
            temp_buffers[key] = self.buffers[key][:self.current_size]
        temp_buffers['obs_next'] = temp_buffers['obs'][:, 1:, :]
        temp_buffers['ag_next'] = temp_buffers['ag'][:, 1:, :]
        transitions = self.sample_func(temp_buffers, batch_size)
        return transitions

    def _get_storage_idx(self, inc=None):
        inc = inc or 1
        if self.current_size + inc <= self.size:
            idx = np.arange(self.current_size, self.current_size + inc)
        elif self.current_size < self.size:
            overflow = inc - (self.size - self.current_size)
            idx_a = np.arange(self.current_size, self.size)
            idx_b = np.random.randint(0, self.current_size, overflow)
            idx = np.concatenate([idx_a, idx_b])
        else:
            idx = np.random.randint(0, self.size, inc)
        self.current_size = min(self.size, self.current_size + inc)
        if inc == 1:
            idx = idx[0]
        return idx


class normalizer:
    def __init__(self, size, eps=1e-2, default_clip_range=np.inf):
        self.size = size
        self.eps = eps
        self.default_clip_range = default_clip_range
        self.total_sum = np.zeros(self.size, np.float32)
        self.total_sumsq = np.zeros(self.size, np.float32)
        self.total_count = np.ones(1, np.float32)
        self.mean = np.zeros(self.size, np.float32)
        self.std = np.ones(self.size, np.float32)

    def update(self, v):
        v = v.reshape(-1, self.size)
        self.total_sum += v.sum(axis=0)
        self.total_sumsq += (np.square(v)).sum(axis=0)
        self.total_count[0] += v.shape[0]

    def recompute_stats(self):
        self.mean = self.total_sum / self.total_count
        self.std = np.sqrt(np.maximum(np.square(self.eps), (self.total_sumsq / self.total_count) - np.square(
            self.total_sum / self.total_count)))

    def normalize(self, v, clip_range=None):
        if clip_range is None:
            clip_range = self.default_clip_range
        return np.clip((v - self.mean) / (self.std), -clip_range, clip_range)


# ----------------------------------------------------------------------------------- networks
class actor(nn.Module):
    def __init__(self, env_params, hidden=64):
        super().__init__()
        self.max_action = env_params['action_max']
        self.fc1 = nn.Linear(env_params['obs'] + env_params['goal'], hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.action_out = nn.Linear(hidden, env_params['action'])

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        actions = self.max_action * torch.tanh(self.action_out(x))
        return actions


class critic(nn.Module):
    def __init__(self, env_params, hidden=64):
        super().__init__()
        self.max_action = env_params['action_max']
        self.fc1 = nn.Linear(env_params['obs'] + env_params['goal'] + env_params['action'], hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.q_out = nn.Linear(hidden, 1)

    def forward(self, x, actions):
        x = torch.cat([x, actions / self.max_action], dim=1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        q_value = self.q_out(x)
        return q_value


class Args:
    n_epochs = 5
    n_cycles = 10
    n_batches = 16
    num_rollouts_per_mpi = 2
    batch_size = 128
    buffer_size = 20000
    replay_strategy = 'future'
    replay_k = 4
    gamma = 0.9
    polyak = 0.9
    lr_actor = 1e-3
    lr_critic = 1e-3
    action_l2 = 1.
    noise_eps = 0.2
    random_eps = 0.3
    clip_obs = 200
    clip_range = 5
    n_test_rollouts = 40


def parameter_distance(a, b):
    return torch.sqrt(sum(((p - q) ** 2).sum() for p, q in zip(a.parameters(), b.parameters()))).item()


class ddpg_agent:
    def __init__(self, args, env, env_params, use_her=True):
        self.args = args
        self.env = env
        self.env_params = env_params
        self.actor_network = actor(env_params)
        self.critic_network = critic(env_params)
        # build up the target network
        self.actor_target_network = actor(env_params)
        self.critic_target_network = critic(env_params)
        # load the weights into the target networks
        self.actor_target_network.load_state_dict(self.actor_network.state_dict())
        self.critic_target_network.load_state_dict(self.critic_network.state_dict())
        self.actor_optim = torch.optim.Adam(self.actor_network.parameters(), lr=self.args.lr_actor)
        self.critic_optim = torch.optim.Adam(self.critic_network.parameters(), lr=self.args.lr_critic)
        self.her_module = her_sampler(self.args.replay_strategy if use_her else 'none', self.args.replay_k,
                                      self.env.compute_reward)
        self.buffer = replay_buffer(self.env_params, self.args.buffer_size, self.her_module.sample_her_transitions)
        self.o_norm = normalizer(size=env_params['obs'], default_clip_range=self.args.clip_range)
        self.g_norm = normalizer(size=env_params['goal'], default_clip_range=self.args.clip_range)

    def learn(self, log_prefix):
        success = []
        for epoch in range(self.args.n_epochs):
            for _ in range(self.args.n_cycles):
                mb_obs, mb_ag, mb_g, mb_actions = [], [], [], []
                for _ in range(self.args.num_rollouts_per_mpi):
                    ep_obs, ep_ag, ep_g, ep_actions = [], [], [], []
                    observation = self.env.reset()
                    obs = observation['observation']
                    ag = observation['achieved_goal']
                    g = observation['desired_goal']
                    for _t in range(self.env_params['max_timesteps']):
                        with torch.no_grad():
                            input_tensor = self._preproc_inputs(obs, g)
                            pi = self.actor_network(input_tensor)
                            action = self._select_actions(pi)
                        observation_new, _, _, info = self.env.step(action)
                        obs_new = observation_new['observation']
                        ag_new = observation_new['achieved_goal']
                        ep_obs.append(obs.copy())
                        ep_ag.append(ag.copy())
                        ep_g.append(g.copy())
                        ep_actions.append(action.copy())
                        obs = obs_new
                        ag = ag_new
                    ep_obs.append(obs.copy())
                    ep_ag.append(ag.copy())
                    mb_obs.append(ep_obs)
                    mb_ag.append(ep_ag)
                    mb_g.append(ep_g)
                    mb_actions.append(ep_actions)
                mb_obs = np.array(mb_obs)
                mb_ag = np.array(mb_ag)
                mb_g = np.array(mb_g)
                mb_actions = np.array(mb_actions)
                self.buffer.store_episode([mb_obs, mb_ag, mb_g, mb_actions])
                self._update_normalizer([mb_obs, mb_ag, mb_g, mb_actions])
                for _ in range(self.args.n_batches):
                    self._update_network()
                self._soft_update_target_network(self.actor_target_network, self.actor_network)
                self._soft_update_target_network(self.critic_target_network, self.critic_network)
            success_rate = self._eval_agent()
            success.append(success_rate)
            print(f'[{log_prefix}] epoch is: {epoch}, eval success rate is: {success_rate:.3f}')
        return success

    def _preproc_inputs(self, obs, g):
        obs_norm = self.o_norm.normalize(obs)
        g_norm = self.g_norm.normalize(g)
        # concatenate the stuffs
        inputs = np.concatenate([obs_norm, g_norm])
        inputs = torch.tensor(inputs, dtype=torch.float32).unsqueeze(0)
        return inputs

    def _select_actions(self, pi):
        action = pi.cpu().numpy().squeeze()
        # add the gaussian
        action += self.args.noise_eps * self.env_params['action_max'] * np.random.randn(*action.shape)
        action = np.clip(action, -self.env_params['action_max'], self.env_params['action_max'])
        # random actions...
        random_actions = np.random.uniform(low=-self.env_params['action_max'], high=self.env_params['action_max'],
                                           size=self.env_params['action'])
        # choose if use the random actions
        action += np.random.binomial(1, self.args.random_eps, 1)[0] * (random_actions - action)
        return action

    def _update_normalizer(self, episode_batch):
        mb_obs, mb_ag, mb_g, mb_actions = episode_batch
        mb_obs_next = mb_obs[:, 1:, :]
        mb_ag_next = mb_ag[:, 1:, :]
        num_transitions = mb_actions.shape[1]
        buffer_temp = {'obs': mb_obs, 'ag': mb_ag, 'g': mb_g, 'actions': mb_actions,
                       'obs_next': mb_obs_next, 'ag_next': mb_ag_next}
        transitions = self.her_module.sample_her_transitions(buffer_temp, num_transitions)
        obs, g = transitions['obs'], transitions['g']
        transitions['obs'], transitions['g'] = self._preproc_og(obs, g)
        self.o_norm.update(transitions['obs'])
        self.g_norm.update(transitions['g'])
        self.o_norm.recompute_stats()
        self.g_norm.recompute_stats()

    def _preproc_og(self, o, g):
        o = np.clip(o, -self.args.clip_obs, self.args.clip_obs)
        g = np.clip(g, -self.args.clip_obs, self.args.clip_obs)
        return o, g

    def _soft_update_target_network(self, target, source):
        polyak = self.args.polyak
        for p_targ, p in zip(target.parameters(), source.parameters()):
            p_targ.data.mul_(polyak).add_((1 - polyak) * p.data)

    def _update_network(self):
        transitions = self.buffer.sample(self.args.batch_size)
        o, o_next, g = transitions['obs'], transitions['obs_next'], transitions['g']
        transitions['obs'], transitions['g'] = self._preproc_og(o, g)
        transitions['obs_next'], transitions['g_next'] = self._preproc_og(o_next, g)
        obs_norm = self.o_norm.normalize(transitions['obs'])
        g_norm = self.g_norm.normalize(transitions['g'])
        inputs_norm = np.concatenate([obs_norm, g_norm], axis=1)
        obs_next_norm = self.o_norm.normalize(transitions['obs_next'])
        g_next_norm = self.g_norm.normalize(transitions['g_next'])
        inputs_next_norm = np.concatenate([obs_next_norm, g_next_norm], axis=1)
        inputs_norm_tensor = torch.tensor(inputs_norm, dtype=torch.float32)
        inputs_next_norm_tensor = torch.tensor(inputs_next_norm, dtype=torch.float32)
        actions_tensor = torch.tensor(transitions['actions'], dtype=torch.float32)
        r_tensor = torch.tensor(transitions['r'], dtype=torch.float32)
        # calculate the target Q value function
        with torch.no_grad():
            actions_next = self.actor_target_network(inputs_next_norm_tensor)
            q_next_value = self.critic_target_network(inputs_next_norm_tensor, actions_next)
            q_next_value = q_next_value.detach()
            target_q_value = r_tensor + self.args.gamma * q_next_value
            target_q_value = target_q_value.detach()
            # clip the q value
            clip_return = 1 / (1 - self.args.gamma)
            target_q_value = torch.clamp(target_q_value, -clip_return, 0)
        # the q loss
        real_q_value = self.critic_network(inputs_norm_tensor, actions_tensor)
        critic_loss = (target_q_value - real_q_value).pow(2).mean()
        # the actor loss
        actions_real = self.actor_network(inputs_norm_tensor)
        actor_loss = -self.critic_network(inputs_norm_tensor, actions_real).mean()
        actor_loss += self.args.action_l2 * (actions_real / self.env_params['action_max']).pow(2).mean()
        # start to update the network
        self.actor_optim.zero_grad()
        actor_loss.backward()
        self.actor_optim.step()
        # update the critic_network
        self.critic_optim.zero_grad()
        critic_loss.backward()
        self.critic_optim.step()

    def _eval_agent(self):
        total_success_rate = []
        for _ in range(self.args.n_test_rollouts):
            per_success_rate = []
            observation = self.env.reset()
            obs = observation['observation']
            g = observation['desired_goal']
            for _ in range(self.env_params['max_timesteps']):
                with torch.no_grad():
                    input_tensor = self._preproc_inputs(obs, g)
                    pi = self.actor_network(input_tensor)
                    # convert the actions
                    actions = pi.detach().cpu().numpy().squeeze()
                observation_new, _, _, info = self.env.step(actions)
                obs = observation_new['observation']
                g = observation_new['desired_goal']
                per_success_rate.append(info['is_success'])
            total_success_rate.append(per_success_rate)
        total_success_rate = np.array(total_success_rate)
        local_success_rate = np.mean(total_success_rate[:, -1])
        return local_success_rate


# ----------------------------------------------------------------------------------- checks
def check_relabelling(agent):
    transitions = agent.buffer.sample(512)
    buf = agent.buffer.buffers
    episode_idxs, t = transitions['_episode_idxs'], transitions['_t']
    # a relabelled goal is an achieved goal of its own episode at a step after t
    later = np.array([np.isclose(buf['ag'][e, t_ + 1:], g).all(-1).any()
                      for e, t_, g in zip(episode_idxs, t, transitions['g'])])
    original = np.isclose(buf['g'][episode_idxs, t], transitions['g']).all(-1)
    relabelled_frac = float((~original).mean())
    r = torch.tensor(transitions['r'], dtype=torch.float32).squeeze(1)
    recomputed = -(torch.norm(torch.tensor(transitions['ag_next']) - torch.tensor(transitions['g']), dim=-1)
                   > agent.env.distance_threshold).float()
    rewards_equal = bool(torch.equal(r, recomputed))
    goals_valid = bool((later | original).all())
    print('relabelled goals from later in their episode', goals_valid, '| rewards recomputed equal', rewards_equal,
          f'| relabelled fraction {relabelled_frac:.3f} (future_p {agent.her_module.future_p:.3f})')
    return int(goals_valid and rewards_equal), relabelled_frac


def check_target_lag(agent):
    lag = parameter_distance(agent.critic_network, agent.critic_target_network)
    target = copy.deepcopy(agent.critic_target_network)
    distances = [lag]
    for _ in range(5):
        agent._soft_update_target_network(target, agent.critic_network)
        distances.append(parameter_distance(agent.critic_network, target))
    ratios = [b / a for a, b in zip(distances, distances[1:])]
    print(f'critic target lag {lag:.4f}; soft-update distance ratios', [f'{x:.4f}' for x in ratios])
    return lag, max(abs(x - agent.args.polyak) for x in ratios)


def main():
    args = Args()
    env = PointReachEnv()
    obs = env.reset()
    env_params = {'obs': obs['observation'].shape[0], 'goal': obs['desired_goal'].shape[0],
                  'action': 2, 'action_max': 1.0, 'max_timesteps': env._max_episode_steps}
    print('env params', env_params)

    agent = ddpg_agent(args, env, env_params, use_her=True)
    her_success = agent.learn('her')
    relabel_ok, relabelled_frac = check_relabelling(agent)
    lag, ratio_err = check_target_lag(agent)

    baseline = ddpg_agent(args, env, env_params, use_her=False)
    plain_success = baseline.learn('ddpg')
    print(f"FINAL her_success={her_success[-1]:.4f} ddpg_success={plain_success[-1]:.4f} "
          f"her_gain={her_success[-1] - plain_success[-1]:.4f} relabel_ok={relabel_ok} "
          f"relabelled_frac={relabelled_frac:.4f} target_lag={lag:.4f} polyak_ratio_err={ratio_err:.6f}")


if __name__ == "__main__":
    main()
