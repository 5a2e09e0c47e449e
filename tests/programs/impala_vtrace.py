"""IMPALA's V-trace as facebookresearch/torchbeast ports deepmind/scalable_agent (``vtrace.py``,
``monobeast.py``, ``core/environment.py``), on a batch of NumPy chain MDPs with actors that act
with stale copies of the learner's network.

``vtrace.py`` as torchbeast writes it: ``action_log_probs`` by ``-F.nll_loss(F.log_softmax(
torch.flatten(policy_logits, 0, -2), dim=-1), torch.flatten(actions), reduction="none")
.view_as(actions)`` (against ``torch.gather`` of ``F.log_softmax``), ``from_logits`` returning a
``namedtuple`` built with ``**vtrace_returns._asdict()``, and ``from_importance_weights`` under
``@torch.no_grad()``: ``torch.clamp(rhos, max=clip_rho_threshold)``, ``cs = torch.clamp(rhos,
max=1.0)``, ``values_t_plus_1 = torch.cat([values[1:], torch.unsqueeze(bootstrap_value, 0)])``,
the backward recursion in a reversed Python loop with ``result.reverse()`` + ``torch.stack``, and
the pg advantages from ``vs_t_plus_1``. The recursion is also run as scalable_agent's
``tf.scan(reverse=True)`` by ``torch.flip`` + a forward scan, and checked against the test suite's
NumPy ground truth (``np.prod(discounts[s:t]) * np.prod(cs[s:t])`` sums).

``monobeast.py``'s ``AtariNet`` shrunk to a one-hot frame: ``F.one_hot(last_action)``, a
``torch.clamp(reward, -1, 1)`` input, an ``nn.LSTM`` core stepped over ``core_input.unbind()``
with ``nd.view(1, -1, 1) * s`` resets at episode ends, ``torch.multinomial(F.softmax(logits,
dim=1), num_samples=1)`` actions in training and ``argmax`` in ``eval()``; the ``Environment``
wrapper's ``(T, B)``-shaped dict outputs with ``episode_return``/``episode_step``; ``act`` writing
rollouts into ``buffers[key][t + 1, ...]``; ``learn`` with the ``[1:]``/``[:-1]`` shift,
``discounts = (~batch["done"]).float() * discounting``, ``compute_baseline_loss``,
``compute_entropy_loss``, ``compute_policy_gradient_loss``, ``clip_grad_norm_``,
``RMSprop(momentum=0, eps=0.01, alpha=0.99)`` with a ``LambdaLR`` linear decay, and the actor
synchronised by ``load_state_dict(model.state_dict())`` only every few learner steps.

Checked: with behaviour == target logits, ``vs`` equals the n-step bootstrapped returns and the
pg advantages the one-step TD errors on them; the flipped scan and the NumPy ground truth equal
the loop on an off-policy batch; a synchronised actor's logits equal the learner's re-unrolled
ones; the greedy return rises.
"""

import collections
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

# flags (monobeast's argparse defaults, shrunk)
num_actors = 8          # envs stepped as one batch by one actor
unroll_length = 16
total_steps = 12288
discounting = 0.95
baseline_cost = 0.5
entropy_cost = 0.01
grad_norm_clipping = 40.0
learning_rate = 0.004
sync_every = 3          # actor lag: the behaviour policy is up to this many updates old
reward_clipping = "abs_one"


# ---- the environment: a chain with a slippery floor ----
class ChainEnv:
    """``n`` chains of ``length`` cells; actions left / stay / right (moves slip with prob 0.1),
    reward 1 at the right end (the episode ends), -0.05 per step, at most ``max_steps`` steps."""

    length = 7
    num_actions = 3
    max_steps = 24

    def __init__(self, n, seed):
        self.n = n
        self.rng = np.random.RandomState(seed)

    def _obs(self):
        return np.eye(self.length, dtype=np.float32)[self.pos]

    def reset(self):
        self.pos = np.zeros(self.n, dtype=np.int64)
        self.steps = np.zeros(self.n, dtype=np.int64)
        return self._obs()

    def step(self, action):
        move = action - 1
        slip = self.rng.rand(self.n) < 0.1
        move = np.where(slip, 0, move)
        self.pos = np.clip(self.pos + move, 0, self.length - 1)
        self.steps += 1
        at_goal = self.pos == self.length - 1
        reward = np.where(at_goal, 1.0, -0.05).astype(np.float32)
        done = at_goal | (self.steps >= self.max_steps)
        self.pos[done] = 0
        self.steps[done] = 0
        return self._obs(), reward, done


# ---- core/environment.py (batched: every output is (T=1, B, ...)) ----
def _format_frame(frame):
    frame = torch.from_numpy(frame)
    return frame.view((1,) + frame.shape)  # (B, ...) -> (T, B, ...).


class Environment:
    def __init__(self, env):
        self.env = env
        self.episode_return = None
        self.episode_step = None

    def initial(self):
        n = self.env.n
        initial_reward = torch.zeros(1, n)
        # This supports only single-tensor actions ATM.
        initial_last_action = torch.zeros(1, n, dtype=torch.int64)
        self.episode_return = torch.zeros(1, n)
        self.episode_step = torch.zeros(1, n, dtype=torch.int32)
        initial_done = torch.ones(1, n, dtype=torch.bool)
        initial_frame = _format_frame(self.env.reset())
        return dict(frame=initial_frame, reward=initial_reward, done=initial_done,
                    episode_return=self.episode_return, episode_step=self.episode_step,
                    last_action=initial_last_action)

    def step(self, action):
        frame, reward, done = self.env.step(action.view(-1).numpy())
        reward = torch.from_numpy(reward).view(1, -1)
        done = torch.from_numpy(done).view(1, -1)
        self.episode_step = self.episode_step + 1
        self.episode_return = self.episode_return + reward
        episode_step = self.episode_step
        episode_return = self.episode_return
        self.episode_return = torch.where(done, torch.zeros_like(episode_return), episode_return)
        self.episode_step = self.episode_step.masked_fill(done, 0)
        return dict(frame=_format_frame(frame), reward=reward, done=done, episode_return=episode_return,
                    episode_step=episode_step, last_action=action)


# ---- vtrace.py ----
VTraceFromLogitsReturns = collections.namedtuple(
    "VTraceFromLogitsReturns",
    ["vs", "pg_advantages", "log_rhos", "behavior_action_log_probs", "target_action_log_probs"],
)

VTraceReturns = collections.namedtuple("VTraceReturns", "vs pg_advantages")


def action_log_probs(policy_logits, actions):
    return -F.nll_loss(
        F.log_softmax(torch.flatten(policy_logits, 0, -2), dim=-1),
        torch.flatten(actions),
        reduction="none",
    ).view_as(actions)


def from_logits(behavior_policy_logits, target_policy_logits, actions, discounts, rewards, values,
                bootstrap_value, clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0):
    """V-trace for softmax policies."""
    target_action_log_probs = action_log_probs(target_policy_logits, actions)
    behavior_action_log_probs = action_log_probs(behavior_policy_logits, actions)
    log_rhos = target_action_log_probs - behavior_action_log_probs
    vtrace_returns = from_importance_weights(
        log_rhos=log_rhos, discounts=discounts, rewards=rewards, values=values,
        bootstrap_value=bootstrap_value, clip_rho_threshold=clip_rho_threshold,
        clip_pg_rho_threshold=clip_pg_rho_threshold,
    )
    return VTraceFromLogitsReturns(
        log_rhos=log_rhos,
        behavior_action_log_probs=behavior_action_log_probs,
        target_action_log_probs=target_action_log_probs,
        **vtrace_returns._asdict(),
    )


@torch.no_grad()
def from_importance_weights(log_rhos, discounts, rewards, values, bootstrap_value,
                            clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0):
    """V-trace from log importance weights."""
    with torch.no_grad():
        rhos = torch.exp(log_rhos)
        if clip_rho_threshold is not None:
            clipped_rhos = torch.clamp(rhos, max=clip_rho_threshold)
        else:
            clipped_rhos = rhos

        cs = torch.clamp(rhos, max=1.0)
        # Append bootstrapped value to get [v1, ..., v_t+1]
        values_t_plus_1 = torch.cat([values[1:], torch.unsqueeze(bootstrap_value, 0)], dim=0)
        deltas = clipped_rhos * (rewards + discounts * values_t_plus_1 - values)

        acc = torch.zeros_like(bootstrap_value)
        result = []
        for t in range(discounts.shape[0] - 1, -1, -1):
            acc = deltas[t] + discounts[t] * cs[t] * acc
            result.append(acc)
        result.reverse()
        vs_minus_v_xs = torch.stack(result)

        # Add V(x_s) to get v_s.
        vs = torch.add(vs_minus_v_xs, values)

        # Advantage for policy gradient.
        broadcasted_bootstrap_values = torch.ones_like(vs[0]) * bootstrap_value
        vs_t_plus_1 = torch.cat([vs[1:], broadcasted_bootstrap_values.unsqueeze(0)], dim=0)
        if clip_pg_rho_threshold is not None:
            clipped_pg_rhos = torch.clamp(rhos, max=clip_pg_rho_threshold)
        else:
            clipped_pg_rhos = rhos
        pg_advantages = clipped_pg_rhos * (rewards + discounts * vs_t_plus_1 - values)

    # Make sure no gradients backpropagated through the returned values.
    return VTraceReturns(vs=vs, pg_advantages=pg_advantages)


def vs_by_flipped_scan(log_rhos, discounts, rewards, values, bootstrap_value):
    """scalable_agent's ``tf.scan(fn, sequences, initializer, reverse=True)``: flip time, scan
    forwards, flip back."""
    rhos = log_rhos.exp()
    clipped_rhos, cs = rhos.clamp(max=1.0), rhos.clamp(max=1.0)
    values_t_plus_1 = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
    deltas = clipped_rhos * (rewards + discounts * values_t_plus_1 - values)
    sequences = (torch.flip(discounts, [0]), torch.flip(cs, [0]), torch.flip(deltas, [0]))
    acc = torch.zeros_like(bootstrap_value)
    out = []
    for discount_t, c_t, delta_t in zip(*sequences):
        acc = delta_t + discount_t * c_t * acc
        out.append(acc)
    return torch.flip(torch.stack(out), dims=(0,)) + values


def ground_truth_vs(discounts, log_rhos, rewards, values, bootstrap_value, clip_rho_threshold=1.0):
    """scalable_agent's vtrace_test.py ``_ground_truth_calculation`` (NumPy, the paper's notation)."""
    vs = []
    seq_len = len(discounts)
    rhos = np.exp(log_rhos)
    cs = np.minimum(rhos, 1.0)
    clipped_rhos = np.minimum(rhos, clip_rho_threshold)
    values_t_plus_1 = np.concatenate([values, bootstrap_value[None, :]], axis=0)
    for s in range(seq_len):
        v_s = np.copy(values[s])  # Very important copy.
        for t in range(s, seq_len):
            v_s += (np.prod(discounts[s:t], axis=0) * np.prod(cs[s:t], axis=0) * clipped_rhos[t]
                    * (rewards[t] + discounts[t] * values_t_plus_1[t + 1] - values[t]))
        vs.append(v_s)
    return np.stack(vs, axis=0)


# ---- monobeast.py ----
class AtariNet(nn.Module):
    def __init__(self, observation_shape, num_actions, use_lstm=True):
        super(AtariNet, self).__init__()  # noqa: UP008
        self.observation_shape = observation_shape
        self.num_actions = num_actions
        self.fc = nn.Linear(observation_shape[0], 32)

        # FC output size + one-hot of last action + last reward.
        core_output_size = self.fc.out_features + num_actions + 1

        self.use_lstm = use_lstm
        if use_lstm:
            self.core = nn.LSTM(core_output_size, core_output_size, 1)

        self.policy = nn.Linear(core_output_size, self.num_actions)
        self.baseline = nn.Linear(core_output_size, 1)

    def initial_state(self, batch_size):
        if not self.use_lstm:
            return tuple()
        return tuple(torch.zeros(self.core.num_layers, batch_size, self.core.hidden_size) for _ in range(2))

    def forward(self, inputs, core_state=()):
        x = inputs["frame"]  # [T, B, ...].
        T, B, *_ = x.shape
        x = torch.flatten(x, 0, 1)  # Merge time and batch.
        x = x.float()
        x = F.relu(self.fc(x))

        one_hot_last_action = F.one_hot(inputs["last_action"].view(T * B), self.num_actions).float()
        clipped_reward = torch.clamp(inputs["reward"], -1, 1).view(T * B, 1)
        core_input = torch.cat([x, clipped_reward, one_hot_last_action], dim=-1)

        if self.use_lstm:
            core_input = core_input.view(T, B, -1)
            core_output_list = []
            notdone = (~inputs["done"]).float()
            for input, nd in zip(core_input.unbind(), notdone.unbind()):
                # Reset core state to zero whenever an episode ended.
                # Make `done` broadcastable with (num_layers, B, hidden_size)
                # states:
                nd = nd.view(1, -1, 1)
                core_state = tuple(nd * s for s in core_state)
                output, core_state = self.core(input.unsqueeze(0), core_state)
                core_output_list.append(output)
            core_output = torch.flatten(torch.cat(core_output_list), 0, 1)
        else:
            core_output = core_input
            core_state = tuple()

        policy_logits = self.policy(core_output)
        baseline = self.baseline(core_output)

        if self.training:
            action = torch.multinomial(F.softmax(policy_logits, dim=1), num_samples=1)
        else:
            # Don't sample when testing.
            action = torch.argmax(policy_logits, dim=1)

        policy_logits = policy_logits.view(T, B, self.num_actions)
        baseline = baseline.view(T, B)
        action = action.view(T, B)

        return (dict(policy_logits=policy_logits, baseline=baseline, action=action), core_state)


def create_buffers(T, B, obs_shape, num_actions):
    specs = dict(
        frame=dict(size=(T + 1, B, *obs_shape), dtype=torch.float32),
        reward=dict(size=(T + 1, B), dtype=torch.float32),
        done=dict(size=(T + 1, B), dtype=torch.bool),
        episode_return=dict(size=(T + 1, B), dtype=torch.float32),
        episode_step=dict(size=(T + 1, B), dtype=torch.int32),
        policy_logits=dict(size=(T + 1, B, num_actions), dtype=torch.float32),
        baseline=dict(size=(T + 1, B), dtype=torch.float32),
        last_action=dict(size=(T + 1, B), dtype=torch.int64),
        action=dict(size=(T + 1, B), dtype=torch.int64),
    )
    return {key: torch.empty(**specs[key]) for key in specs}


class Actor:
    """monobeast's ``act`` as a resumable object: one unroll per call, the last step of the
    previous unroll written first."""

    def __init__(self, model, env):
        self.model = model
        self.env = env
        self.env_output = env.initial()
        self.agent_state = model.initial_state(batch_size=env.env.n)
        with torch.no_grad():
            self.agent_output, _ = model(self.env_output, self.agent_state)

    def unroll(self, buffers):
        # Write old rollout end.
        for key in self.env_output:
            buffers[key][0, ...] = self.env_output[key]
        for key in self.agent_output:
            buffers[key][0, ...] = self.agent_output[key]
        initial_agent_state = tuple(s.clone() for s in self.agent_state)

        # Do new rollout.
        for t in range(unroll_length):
            with torch.no_grad():
                self.agent_output, self.agent_state = self.model(self.env_output, self.agent_state)
            self.env_output = self.env.step(self.agent_output["action"])
            for key in self.env_output:
                buffers[key][t + 1, ...] = self.env_output[key]
            for key in self.agent_output:
                buffers[key][t + 1, ...] = self.agent_output[key]
        return initial_agent_state


def compute_baseline_loss(advantages):
    return 0.5 * torch.sum(advantages ** 2)


def compute_entropy_loss(logits):
    """Return the entropy loss, i.e., the negative entropy of the policy."""
    policy = F.softmax(logits, dim=-1)
    log_policy = F.log_softmax(logits, dim=-1)
    return torch.sum(policy * log_policy)


def compute_policy_gradient_loss(logits, actions, advantages):
    cross_entropy = F.nll_loss(
        F.log_softmax(torch.flatten(logits, 0, 1), dim=-1),
        target=torch.flatten(actions, 0, 1),
        reduction="none",
    )
    cross_entropy = cross_entropy.view_as(advantages)
    return torch.sum(cross_entropy * advantages.detach())


def learn(model, batch, initial_agent_state, optimizer, scheduler):
    """Performs a learning (optimization) step."""
    learner_outputs, unused_state = model(batch, initial_agent_state)

    # Take final value function slice for bootstrapping.
    bootstrap_value = learner_outputs["baseline"][-1]

    # Move from obs[t] -> action[t] to action[t] -> obs[t].
    batch = {key: tensor[1:] for key, tensor in batch.items()}
    learner_outputs = {key: tensor[:-1] for key, tensor in learner_outputs.items()}

    rewards = batch["reward"]
    if reward_clipping == "abs_one":
        clipped_rewards = torch.clamp(rewards, -1, 1)
    elif reward_clipping == "none":
        clipped_rewards = rewards

    discounts = (~batch["done"]).float() * discounting

    vtrace_returns = from_logits(
        behavior_policy_logits=batch["policy_logits"],
        target_policy_logits=learner_outputs["policy_logits"],
        actions=batch["action"],
        discounts=discounts,
        rewards=clipped_rewards,
        values=learner_outputs["baseline"],
        bootstrap_value=bootstrap_value,
    )

    pg_loss = compute_policy_gradient_loss(learner_outputs["policy_logits"], batch["action"],
                                           vtrace_returns.pg_advantages)
    baseline_loss = baseline_cost * compute_baseline_loss(vtrace_returns.vs - learner_outputs["baseline"])
    entropy_loss = entropy_cost * compute_entropy_loss(learner_outputs["policy_logits"])

    total_loss = pg_loss + baseline_loss + entropy_loss

    episode_returns = batch["episode_return"][batch["done"]]
    stats = {
        "episode_returns": tuple(episode_returns.cpu().numpy()),
        "mean_episode_return": torch.mean(episode_returns).item() if episode_returns.numel() else float("nan"),
        "total_loss": total_loss.item(),
        "pg_loss": pg_loss.item(),
        "baseline_loss": baseline_loss.item(),
        "entropy_loss": entropy_loss.item(),
        "clipped_rho_fraction": (vtrace_returns.log_rhos > 0).float().mean().item(),
    }

    optimizer.zero_grad()
    total_loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), grad_norm_clipping)
    optimizer.step()
    scheduler.step()
    return stats


def evaluate(model, seed, n=32):
    """Greedy (``eval()``: argmax) episodes on fresh chains; mean return of the first episode each."""
    eval_model = AtariNet((ChainEnv.length,), ChainEnv.num_actions)
    eval_model.load_state_dict(model.state_dict())
    eval_model.eval()
    env = Environment(ChainEnv(n, seed + 1000))
    env_output = env.initial()
    agent_state = eval_model.initial_state(n)
    returns = torch.full((n,), float("nan"))
    with torch.no_grad():
        for _ in range(ChainEnv.max_steps):
            agent_output, agent_state = eval_model(env_output, agent_state)
            env_output = env.step(agent_output["action"])
            finished = env_output["done"][0] & torch.isnan(returns)
            returns[finished] = env_output["episode_return"][0][finished]
    return returns.mean().item()


T, B = unroll_length, num_actors
model = AtariNet((ChainEnv.length,), ChainEnv.num_actions)
actor_model = AtariNet((ChainEnv.length,), ChainEnv.num_actions)
actor_model.load_state_dict(model.state_dict())
optimizer = torch.optim.RMSprop(model.parameters(), lr=learning_rate, momentum=0, eps=0.01, alpha=0.99)


def lr_lambda(epoch):
    return 1 - min(epoch * T * B, total_steps) / total_steps


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
env = Environment(ChainEnv(B, seed))
actor = Actor(actor_model, env)
buffers = create_buffers(T, B, (ChainEnv.length,), ChainEnv.num_actions)
print(f"buffers {sorted(buffers)} T {T} B {B} parameters {sum(p.numel() for p in model.parameters())}")

# ---- checks on a first (synchronised, on-policy) batch ----
initial_agent_state = actor.unroll(buffers)
batch = {key: tensor.clone() for key, tensor in buffers.items()}
with torch.no_grad():
    learner_outputs, _ = model(batch, initial_agent_state)
# buffers[t + 1] holds the logits the actor computed on frame t: the learner's [:-1]
sync_logits_err = (learner_outputs["policy_logits"][:-1] - batch["policy_logits"][1:]).abs().max().item()

logits = learner_outputs["policy_logits"][:-1]
actions = batch["action"][1:]
gathered = torch.gather(F.log_softmax(logits, dim=-1), 2, actions.unsqueeze(-1)).squeeze(-1)
gather_err = (action_log_probs(logits, actions) - gathered).abs().max().item()

discounts = (~batch["done"][1:]).float() * discounting
rewards = batch["reward"][1:]
values = learner_outputs["baseline"][:-1]
bootstrap_value = learner_outputs["baseline"][-1]
on_policy = from_logits(logits, logits, actions, discounts, rewards, values, bootstrap_value)
n_step = torch.zeros_like(rewards)
ret = bootstrap_value
for t in reversed(range(T)):
    ret = rewards[t] + discounts[t] * ret
    n_step[t] = ret
nstep_err = (on_policy.vs - n_step).abs().max().item()
td_on_nstep = rewards + discounts * torch.cat([n_step[1:], bootstrap_value[None]]) - values
pg_adv_err = (on_policy.pg_advantages - td_on_nstep).abs().max().item()
log_rhos_zero = int(torch.equal(on_policy.log_rhos, torch.zeros_like(on_policy.log_rhos)))
print(f"synchronised actor vs learner logits {sync_logits_err:.2e}, nll_loss vs gather {gather_err:.2e}")
print(f"on-policy: log_rhos all zero {log_rhos_zero}, vs vs n-step returns {nstep_err:.2e}, "
      f"pg advantages vs TD errors {pg_adv_err:.2e}, vs requires_grad {int(on_policy.vs.requires_grad)}")

# ---- training, the actor lagging up to sync_every updates behind ----
first_return = evaluate(model, seed)
print(f"untrained greedy return {first_return:.4f}")
num_updates = total_steps // (T * B)
returns_log, off_policy_checked = [], False
scan_err = truth_err = 0.0
for step in range(num_updates):
    initial_agent_state = actor.unroll(buffers)
    batch = {key: tensor.clone() for key, tensor in buffers.items()}
    if step == 2 * sync_every - 1 and not off_policy_checked:
        # an off-policy batch: the loop, the flipped scan and the NumPy ground truth agree
        with torch.no_grad():
            out, _ = model(batch, initial_agent_state)
        d = (~batch["done"][1:]).float() * discounting
        lr_ = action_log_probs(out["policy_logits"][:-1], batch["action"][1:]) \
            - action_log_probs(batch["policy_logits"][1:], batch["action"][1:])
        v, bv = out["baseline"][:-1], out["baseline"][-1]
        vt = from_importance_weights(lr_, d, batch["reward"][1:], v, bv)
        scan_err = (vs_by_flipped_scan(lr_, d, batch["reward"][1:], v, bv) - vt.vs).abs().max().item()
        truth = ground_truth_vs(d.double().numpy(), lr_.double().numpy(), batch["reward"][1:].double().numpy(),
                                v.double().numpy(), bv.double().numpy())
        truth_err = float(np.abs(truth - vt.vs.double().numpy()).max())
        off_policy_checked = True
        print(f"off-policy batch: max |log_rho| {lr_.abs().max().item() > 0}, flipped scan {scan_err:.2e}, "
              f"ground truth {truth_err:.2e}")
    stats = learn(model, batch, initial_agent_state, optimizer, scheduler)
    returns_log.extend(stats["episode_returns"])
    if (step + 1) % sync_every == 0:
        actor_model.load_state_dict(model.state_dict())
    if (step + 1) % 24 == 0:
        print(f"Steps {(step + 1) * T * B} episodes {len(returns_log)} return {np.mean(returns_log[-50:]):.3f} "
              f"total_loss {stats['total_loss']:.3f} pg_loss {stats['pg_loss']:.3f} "
              f"baseline_loss {stats['baseline_loss']:.3f} entropy_loss {stats['entropy_loss']:.3f} "
              f"lr {scheduler.get_last_lr()[0]:.6f}")

final_return = evaluate(model, seed)
print(f"FINAL first_return={first_return:.4f} final_return={final_return:.4f} "
      f"train_first={np.mean(returns_log[:50]):.4f} train_last={np.mean(returns_log[-50:]):.4f} "
      f"sync_err={sync_logits_err:.8f} gather_err={gather_err:.8f} nstep_err={nstep_err:.8f} "
      f"pg_adv_err={pg_adv_err:.8f} scan_err={scan_err:.8f} truth_err={truth_err:.8f}")
