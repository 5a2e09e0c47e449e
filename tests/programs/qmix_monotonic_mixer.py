"""QMIX (Rashid et al., ICML 2018) in the layout of oxwhirl/pymarl (modules/mixers/qmix.py,
modules/agents/rnn_agent.py, controllers/basic_controller.py, components/action_selectors.py,
learners/q_learner.py), at toy size on the paper's two-step cooperative matrix game.

Two agents start in state 1; agent 0's first action picks state 2A (everything pays 7) or state 2B
(pays ``[[0, 1], [1, 8]]``, 8 only if both agents coordinate). A third action is a no-op that is
available only in the first step, so the unavailable-action masks are exercised: the epsilon-greedy
selector's ``masked_q_values[avail_actions == 0.0] = -float("inf")`` with ``Categorical(avail_actions.float())``
random actions, and the learner's ``target_mac_out[avail_actions[:, 1:] == 0] = -9999999``.

The agents share one ``RNNAgent`` (``nn.Linear`` + ``nn.GRUCell`` + ``nn.Linear``, hidden state from
``self.fc1.weight.new(1, d).zero_()``) on inputs of observation + last action one-hot + agent id
(``th.eye(n_agents).unsqueeze(0).expand(bs, -1, -1)``), unrolled over time and ``th.stack(mac_out, dim=1)``.
The mixer is pymarl's hypernetwork QMixer (``th.abs(self.hyper_w_1(states)).view(-1, self.n_agents,
self.embed_dim)``, ``F.elu(th.bmm(agent_qs, w1) + b1)``, a state-value ``V``); VDN's sum mixer is the
baseline. The learner gathers ``th.gather(mac_out[:, :-1], dim=3, index=actions).squeeze(3)``, takes
double-Q targets by ``mac_out_detach[:, 1:].max(dim=3, keepdim=True)[1]``, masks the TD error by
``filled``/``terminated``, clips with ``th.nn.utils.clip_grad_norm_`` and steps
``optim.RMSprop(alpha=0.99, eps=1e-5)``; targets are refreshed by ``load_state_dict``.

Checked: the mixer's ``bmm`` path against ``torch.einsum`` on the same hypernetwork weights, its
monotonicity (``dQ_tot/dQ_a >= 0`` by ``torch.autograd.grad`` at random inputs), and the greedy
return: QMIX should find the coordinated 8, which VDN's additive decomposition usually misses.
"""

# ruff: noqa: UP008  (pymarl's own spelling: super(Class, self))

import copy
import os

import numpy as np
import torch as th
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical
from torch.optim import RMSprop

seed = int(os.environ.get("PROGRAM_SEED", "0"))
th.manual_seed(seed)
np.random.seed(seed)


class Args:
    n_agents = 2
    n_actions = 3
    state_shape = 3
    obs_shape = 3
    episode_limit = 2
    rnn_hidden_dim = 32
    mixing_embed_dim = 16
    gamma = 0.99
    lr = 0.005
    optim_alpha = 0.99
    optim_eps = 1e-5
    grad_norm_clip = 10
    batch_size = 32
    batch_size_run = 16
    buffer_size = 512
    target_update_interval = 10
    epsilon_start = 1.0
    epsilon_finish = 1.0  # the paper's uniform exploration on the two-step game
    epsilon_anneal_time = 120
    t_max = 200
    double_q = True


# ----------------------------------------------------------------------------------- environment
class TwoStepGame:
    """State 0 -> (agent 0's action 1 ? state 2 (2B) : state 1 (2A)) -> terminal."""

    payoff_2b = np.array([[0.0, 1.0], [1.0, 8.0]])

    def __init__(self, batch):
        self.batch = batch

    def reset(self):
        self.state = np.zeros(self.batch, dtype=np.int64)
        self.steps = 0

    def get_state(self):
        return np.eye(3, dtype=np.float32)[self.state]

    def get_obs(self):
        s = self.get_state()
        return np.stack([s, s], axis=1)

    def get_avail_actions(self):
        avail = np.ones((self.batch, 2, 3), dtype=np.int64)
        if self.steps > 0:
            avail[:, :, 2] = 0
        return avail

    def step(self, actions):
        actions = np.asarray(actions)
        if self.steps == 0:
            reward = np.zeros(self.batch)
            self.state = np.where(actions[:, 0] == 1, 2, 1)
            terminated = False
        else:
            reward = np.where(self.state == 1, 7.0, self.payoff_2b[actions[:, 0].clip(0, 1), actions[:, 1].clip(0, 1)])
            terminated = True
        self.steps += 1
        return reward, terminated


# ----------------------------------------------------------------------------------- modules
class RNNAgent(nn.Module):
    def __init__(self, input_shape, args):
        super(RNNAgent, self).__init__()
        self.args = args
        self.fc1 = nn.Linear(input_shape, args.rnn_hidden_dim)
        self.rnn = nn.GRUCell(args.rnn_hidden_dim, args.rnn_hidden_dim)
        self.fc2 = nn.Linear(args.rnn_hidden_dim, args.n_actions)

    def init_hidden(self):
        # make hidden states on same device as model
        return self.fc1.weight.new(1, self.args.rnn_hidden_dim).zero_()

    def forward(self, inputs, hidden_state):
        x = F.relu(self.fc1(inputs))
        h_in = hidden_state.reshape(-1, self.args.rnn_hidden_dim)
        h = self.rnn(x, h_in)
        q = self.fc2(h)
        return q, h


class QMixer(nn.Module):
    def __init__(self, args):
        super(QMixer, self).__init__()
        self.args = args
        self.n_agents = args.n_agents
        self.state_dim = int(np.prod(args.state_shape))
        self.embed_dim = args.mixing_embed_dim
        self.hyper_w_1 = nn.Linear(self.state_dim, self.embed_dim * self.n_agents)
        self.hyper_w_final = nn.Linear(self.state_dim, self.embed_dim)
        # State dependent bias for hidden layer
        self.hyper_b_1 = nn.Linear(self.state_dim, self.embed_dim)
        # V(s) instead of a bias for the last layers
        self.V = nn.Sequential(nn.Linear(self.state_dim, self.embed_dim), nn.ReLU(), nn.Linear(self.embed_dim, 1))

    def forward(self, agent_qs, states):
        bs = agent_qs.size(0)
        states = states.reshape(-1, self.state_dim)
        agent_qs = agent_qs.view(-1, 1, self.n_agents)
        # First layer
        w1 = th.abs(self.hyper_w_1(states))
        b1 = self.hyper_b_1(states)
        w1 = w1.view(-1, self.n_agents, self.embed_dim)
        b1 = b1.view(-1, 1, self.embed_dim)
        hidden = F.elu(th.bmm(agent_qs, w1) + b1)
        # Second layer
        w_final = th.abs(self.hyper_w_final(states))
        w_final = w_final.view(-1, self.embed_dim, 1)
        # State-dependent bias
        v = self.V(states).view(-1, 1, 1)
        # Compute final output
        y = th.bmm(hidden, w_final) + v
        # Reshape and return
        q_tot = y.view(bs, -1, 1)
        return q_tot


class VDNMixer(nn.Module):
    def __init__(self):
        super(VDNMixer, self).__init__()

    def forward(self, agent_qs, batch):
        return th.sum(agent_qs, dim=2, keepdim=True)


class EpsilonGreedyActionSelector:
    def __init__(self, args):
        self.args = args
        self.epsilon = args.epsilon_start

    def update(self, t_env):
        delta = (self.args.epsilon_start - self.args.epsilon_finish) / self.args.epsilon_anneal_time
        self.epsilon = max(self.args.epsilon_finish, self.args.epsilon_start - delta * t_env)

    def select_action(self, agent_inputs, avail_actions, test_mode=False):
        epsilon = 0.0 if test_mode else self.epsilon
        masked_q_values = agent_inputs.clone()
        masked_q_values[avail_actions == 0.0] = -float("inf")  # should never be selected!
        random_numbers = th.rand_like(agent_inputs[:, :, 0])
        pick_random = (random_numbers < epsilon).long()
        random_actions = Categorical(avail_actions.float()).sample().long()
        picked_actions = pick_random * random_actions + (1 - pick_random) * masked_q_values.max(dim=2)[1]
        return picked_actions


class BasicMAC:
    def __init__(self, args):
        self.n_agents = args.n_agents
        self.args = args
        input_shape = args.obs_shape + args.n_actions + args.n_agents
        self.agent = RNNAgent(input_shape, args)
        self.action_selector = EpsilonGreedyActionSelector(args)
        self.hidden_states = None

    def _build_inputs(self, batch, t):
        bs = batch["obs"].shape[0]
        inputs = [batch["obs"][:, t]]
        if t == 0:
            inputs.append(th.zeros_like(batch["actions_onehot"][:, t]))
        else:
            inputs.append(batch["actions_onehot"][:, t - 1])
        inputs.append(th.eye(self.n_agents).unsqueeze(0).expand(bs, -1, -1))
        inputs = th.cat([x.reshape(bs * self.n_agents, -1) for x in inputs], dim=1)
        return inputs

    def forward(self, ep_batch, t):
        agent_inputs = self._build_inputs(ep_batch, t)
        agent_outs, self.hidden_states = self.agent(agent_inputs, self.hidden_states)
        return agent_outs.view(ep_batch["obs"].shape[0], self.n_agents, -1)

    def select_actions(self, ep_batch, t_ep, t_env, test_mode=False):
        agent_outputs = self.forward(ep_batch, t_ep)
        avail_actions = ep_batch["avail_actions"][:, t_ep]
        return self.action_selector.select_action(agent_outputs, avail_actions, test_mode=test_mode)

    def init_hidden(self, batch_size):
        self.hidden_states = self.agent.init_hidden().unsqueeze(0).expand(batch_size, self.n_agents, -1)

    def parameters(self):
        return self.agent.parameters()

    def load_state(self, other_mac):
        self.agent.load_state_dict(other_mac.agent.state_dict())


# ----------------------------------------------------------------------------------- episodes
def new_batch(bs, args):
    T = args.episode_limit + 1
    return {
        "state": th.zeros(bs, T, args.state_shape),
        "obs": th.zeros(bs, T, args.n_agents, args.obs_shape),
        "actions": th.zeros(bs, T, args.n_agents, 1, dtype=th.long),
        "actions_onehot": th.zeros(bs, T, args.n_agents, args.n_actions),
        "avail_actions": th.zeros(bs, T, args.n_agents, args.n_actions, dtype=th.int64),
        "reward": th.zeros(bs, T, 1),
        "terminated": th.zeros(bs, T, 1, dtype=th.uint8),
        "filled": th.zeros(bs, T, 1, dtype=th.long),
    }


@th.no_grad()
def run_episodes(mac, args, t_env, test_mode=False):
    env = TwoStepGame(args.batch_size_run)
    env.reset()
    batch = new_batch(args.batch_size_run, args)
    mac.init_hidden(args.batch_size_run)
    episode_return = np.zeros(args.batch_size_run)
    t = 0
    terminated = False
    while not terminated:
        batch["state"][:, t] = th.from_numpy(env.get_state())
        batch["obs"][:, t] = th.from_numpy(env.get_obs())
        batch["avail_actions"][:, t] = th.from_numpy(env.get_avail_actions())
        batch["filled"][:, t] = 1
        actions = mac.select_actions(batch, t_ep=t, t_env=t_env, test_mode=test_mode)
        reward, terminated = env.step(actions.numpy())
        episode_return += reward
        batch["actions"][:, t] = actions.unsqueeze(-1)
        batch["actions_onehot"][:, t] = F.one_hot(actions, args.n_actions).float()
        batch["reward"][:, t, 0] = th.as_tensor(reward, dtype=th.float32)
        batch["terminated"][:, t, 0] = int(terminated)
        t += 1
    # the last (terminal) step: state, obs and available actions only
    batch["state"][:, t] = th.from_numpy(env.get_state()) * 0
    batch["obs"][:, t] = th.from_numpy(env.get_obs()) * 0
    batch["avail_actions"][:, t] = th.from_numpy(env.get_avail_actions())
    return batch, episode_return


class ReplayBuffer:
    def __init__(self, args):
        self.args = args
        self.data = None
        self.episodes_in_buffer = 0
        self.buffer_index = 0

    def insert_episode_batch(self, batch):
        if self.data is None:
            self.data = {k: v.new_zeros((self.args.buffer_size,) + tuple(v.shape[1:])) for k, v in batch.items()}
        n = batch["obs"].shape[0]
        idx = th.arange(self.buffer_index, self.buffer_index + n) % self.args.buffer_size
        for k, v in batch.items():
            self.data[k][idx] = v
        self.buffer_index = (self.buffer_index + n) % self.args.buffer_size
        self.episodes_in_buffer = min(self.episodes_in_buffer + n, self.args.buffer_size)

    def can_sample(self, batch_size):
        return self.episodes_in_buffer >= batch_size

    def sample(self, batch_size):
        ep_ids = np.random.choice(self.episodes_in_buffer, batch_size, replace=False)
        ep_ids = th.as_tensor(ep_ids, dtype=th.long)
        return {k: v[ep_ids] for k, v in self.data.items()}


# ----------------------------------------------------------------------------------- learner
class QLearner:
    def __init__(self, mac, args, mixer):
        self.args = args
        self.mac = mac
        self.params = list(mac.parameters())
        self.mixer = QMixer(args) if mixer == "qmix" else VDNMixer()
        self.params += list(self.mixer.parameters())
        self.target_mixer = copy.deepcopy(self.mixer)
        self.optimiser = RMSprop(params=self.params, lr=args.lr, alpha=args.optim_alpha, eps=args.optim_eps)
        self.target_mac = copy.deepcopy(mac)
        self.last_target_update_step = 0

    def train(self, batch, step):
        rewards = batch["reward"][:, :-1]
        actions = batch["actions"][:, :-1]
        terminated = batch["terminated"][:, :-1].float()
        mask = batch["filled"][:, :-1].float()
        mask[:, 1:] = mask[:, 1:] * (1 - terminated[:, :-1])
        avail_actions = batch["avail_actions"]
        T = batch["obs"].shape[1]
        bs = batch["obs"].shape[0]

        mac_out = []
        self.mac.init_hidden(bs)
        for t in range(T):
            agent_outs = self.mac.forward(batch, t=t)
            mac_out.append(agent_outs)
        mac_out = th.stack(mac_out, dim=1)  # Concat over time

        # Pick the Q-Values for the actions taken by each agent
        chosen_action_qvals = th.gather(mac_out[:, :-1], dim=3, index=actions).squeeze(3)  # Remove the last dim

        target_mac_out = []
        self.target_mac.init_hidden(bs)
        for t in range(T):
            target_agent_outs = self.target_mac.forward(batch, t=t)
            target_mac_out.append(target_agent_outs)
        # We don't need the first timesteps Q-Value estimate for calculating targets
        target_mac_out = th.stack(target_mac_out[1:], dim=1)  # Concat across time
        # Mask out unavailable actions
        target_mac_out[avail_actions[:, 1:] == 0] = -9999999

        if self.args.double_q:
            mac_out_detach = mac_out.clone().detach()
            mac_out_detach[avail_actions == 0] = -9999999
            cur_max_actions = mac_out_detach[:, 1:].max(dim=3, keepdim=True)[1]
            target_max_qvals = th.gather(target_mac_out, 3, cur_max_actions).squeeze(3)
        else:
            target_max_qvals = target_mac_out.max(dim=3)[0]

        chosen_action_qvals = self.mixer(chosen_action_qvals, batch["state"][:, :-1])
        target_max_qvals = self.target_mixer(target_max_qvals, batch["state"][:, 1:])

        # Calculate 1-step Q-Learning targets
        targets = rewards + self.args.gamma * (1 - terminated) * target_max_qvals

        # Td-error
        td_error = chosen_action_qvals - targets.detach()
        mask = mask.expand_as(td_error)
        # 0-out the targets that came from padded data
        masked_td_error = td_error * mask
        # Normal L2 loss, take mean over actual data
        loss = (masked_td_error**2).sum() / mask.sum()

        self.optimiser.zero_grad()
        loss.backward()
        grad_norm = th.nn.utils.clip_grad_norm_(self.params, self.args.grad_norm_clip)
        self.optimiser.step()

        if (step - self.last_target_update_step) / self.args.target_update_interval >= 1.0:
            self._update_targets()
            self.last_target_update_step = step
        return loss.item(), float(grad_norm)

    def _update_targets(self):
        self.target_mac.load_state(self.mac)
        self.target_mixer.load_state_dict(self.mixer.state_dict())


# ----------------------------------------------------------------------------------- mixer checks
args = Args()
mixer = QMixer(args)
qs = th.randn(4, 5, args.n_agents, requires_grad=True)
states = th.rand(4, 5, args.state_shape)
q_tot = mixer(qs, states)
with th.no_grad():
    s = states.reshape(-1, args.state_shape)
    w1 = th.abs(mixer.hyper_w_1(s)).view(-1, args.n_agents, args.mixing_embed_dim)
    hid = F.elu(th.einsum("ba,bae->be", qs.reshape(-1, args.n_agents), w1) + mixer.hyper_b_1(s))
    w_final = th.abs(mixer.hyper_w_final(s))
    q_ein = (th.einsum("be,be->b", hid, w_final) + mixer.V(s).squeeze(-1)).view(4, 5, 1)
bmm_einsum = th.allclose(q_tot, q_ein, atol=1e-5)
(dq,) = th.autograd.grad(q_tot.sum(), qs)
monotonic = bool((dq >= 0).all())
print(f"mixer q_tot {tuple(q_tot.shape)} bmm == einsum: {bmm_einsum}, dQtot/dQa >= 0: {monotonic}")


# ----------------------------------------------------------------------------------- training
def run(mixer_name):
    th.manual_seed(seed + 1)
    np.random.seed(seed + 1)
    mac = BasicMAC(args)
    learner = QLearner(mac, args, mixer_name)
    buffer = ReplayBuffer(args)
    for step in range(args.t_max):
        mac.action_selector.update(step)
        episode_batch, _ = run_episodes(mac, args, t_env=step)
        buffer.insert_episode_batch(episode_batch)
        if buffer.can_sample(args.batch_size):
            loss, grad_norm = learner.train(buffer.sample(args.batch_size), step)
            if step % 50 == 0:
                _, test_return = run_episodes(mac, args, t_env=step, test_mode=True)
                print(f"{mixer_name} step {step:4d} eps {mac.action_selector.epsilon:.3f} loss {loss:.4f} "
                      f"grad norm {grad_norm:.3f} test return {test_return.mean():.2f}")
    batch, test_return = run_episodes(mac, args, t_env=args.t_max, test_mode=True)
    # the learned joint Q in state 2B
    with th.no_grad():
        mac.init_hidden(1)
        mac.forward({k: v[:1] for k, v in batch.items()}, 0)
        q_first = mac.forward({k: v[:1] for k, v in batch.items()}, 0)
    print(f"{mixer_name}: greedy return {test_return.mean():.2f}, first-step agent-0 Q {', '.join(f'{v:.2f}' for v in q_first[0, 0].tolist())}")
    return float(test_return.mean())


qmix_return = run("qmix")
vdn_return = run("vdn")
print(f"FINAL qmix_return={qmix_return:.4f} vdn_return={vdn_return:.4f} qmix_optimal={int(qmix_return > 7.5)} "
      f"mixer_checks={int(bmm_einsum and monotonic)}")
