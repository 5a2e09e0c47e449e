"""MuZero's training unroll at toy size, as werner-duvaud/muzero-general writes it
(``models.py``/``trainer.py``) with the paper pseudocode's ``scale_gradient``: an ``mlp`` helper of
``nn.Linear`` + ``nn.ELU`` into ``nn.Sequential(*layers)``; representation, dynamics and prediction
networks with the hidden state min-max normalised by ``min(1, keepdim=True)[0]``/``max(...)[0]`` and
``scale[scale < 1e-5] += 1e-5``; actions one-hot by ``torch.zeros(...).scatter_(1, action.long(), 1.0)``;
``initial_inference``'s zero reward as ``torch.log`` of a one-hot ``scatter`` ``repeat``-ed; the value
and reward transform ``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x`` and its closed-form inverse;
``scalar_to_support`` (``torch.clamp``, ``floor``, two ``scatter_`` calls on a 3-d tensor,
``masked_fill_`` past the last bin) and ``support_to_scalar`` (``softmax`` against a
``torch.tensor([...]).expand(...)`` support); K unrolled dynamics steps, the hidden state's gradient
halved by ``scale_gradient`` (checked against muzero-general's ``register_hook(lambda grad: grad * 0.5)`` on a ``clone``),
per-step losses ``(-target * nn.LogSoftmax(dim=1)(logits)).sum(1)`` with the value loss weighted by
``value_loss_weight``, losses scaled by ``register_hook`` by ``1 / num_unroll_steps``, Adam with
weight decay, ``clip_grad_norm_``. Data: a deterministic chain walk from NumPy with a reward at the
right end. Checks the loss falls, the support transform round-trips, and the learned values.
"""

import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class MuZeroConfig:
    def __init__(self):
        self.observation_shape = (1, 1, 8)
        self.action_space = list(range(2))
        self.encoding_size = 8
        self.fc_representation_layers = [32]
        self.fc_dynamics_layers = [32]
        self.fc_reward_layers = [16]
        self.fc_value_layers = [16]
        self.fc_policy_layers = [16]
        self.support_size = 10
        self.num_unroll_steps = 5
        self.td_steps = 10
        self.discount = 0.9
        self.value_loss_weight = 0.25
        self.batch_size = 64
        self.lr_init = 0.005
        self.weight_decay = 1e-4
        self.training_steps = 600


def mlp(input_size, layer_sizes, output_size, output_activation=torch.nn.Identity, activation=torch.nn.ELU):
    sizes = [input_size] + layer_sizes + [output_size]
    layers = []
    for i in range(len(sizes) - 1):
        act = activation if i < len(sizes) - 2 else output_activation
        layers += [torch.nn.Linear(sizes[i], sizes[i + 1]), act()]
    return torch.nn.Sequential(*layers)


def scale_gradient(tensor, scale):
    """Scales the gradient for the backward pass (the paper's pseudocode)."""
    return tensor * scale + tensor.detach() * (1 - scale)


def support_to_scalar(logits, support_size):
    """Transform a categorical representation to a scalar (appendix F of the paper)."""
    probabilities = torch.softmax(logits, dim=1)
    support = (
        torch.tensor([x for x in range(-support_size, support_size + 1)])
        .expand(probabilities.shape)
        .float()
        .to(device=probabilities.device)
    )
    x = torch.sum(support * probabilities, dim=1, keepdim=True)

    # Invert the scaling (defined in https://arxiv.org/abs/1805.11593)
    x = torch.sign(x) * (
        ((torch.sqrt(1 + 4 * 0.001 * (torch.abs(x) + 1 + 0.001)) - 1) / (2 * 0.001)) ** 2
        - 1
    )
    return x


def scalar_to_support(x, support_size):
    """Transform a scalar to a categorical representation with (2 * support_size + 1) categories."""
    # Reduce the scale (defined in https://arxiv.org/abs/1805.11593)
    x = torch.sign(x) * (torch.sqrt(torch.abs(x) + 1) - 1) + 0.001 * x

    # Encode on a vector
    x = torch.clamp(x, -support_size, support_size)
    floor = x.floor()
    prob = x - floor
    logits = torch.zeros(x.shape[0], x.shape[1], 2 * support_size + 1).to(x.device)
    logits.scatter_(2, (floor + support_size).long().unsqueeze(-1), (1 - prob).unsqueeze(-1))
    indexes = floor + support_size + 1
    prob = prob.masked_fill_(2 * support_size < indexes, 0.0)
    indexes = indexes.masked_fill_(2 * support_size < indexes, 0.0)
    logits.scatter_(2, indexes.long().unsqueeze(-1), prob.unsqueeze(-1))
    return logits


def normalize_encoded_state(encoded_state):
    # Scale encoded state between [0, 1] (See appendix paper Training)
    min_encoded_state = encoded_state.min(1, keepdim=True)[0]
    max_encoded_state = encoded_state.max(1, keepdim=True)[0]
    scale_encoded_state = max_encoded_state - min_encoded_state
    scale_encoded_state[scale_encoded_state < 1e-5] += 1e-5
    return (encoded_state - min_encoded_state) / scale_encoded_state


class MuZeroFullyConnectedNetwork(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.action_space_size = len(config.action_space)
        self.full_support_size = 2 * config.support_size + 1
        obs_size = config.observation_shape[0] * config.observation_shape[1] * config.observation_shape[2]

        self.representation_network = mlp(obs_size, config.fc_representation_layers, config.encoding_size)
        self.dynamics_encoded_state_network = mlp(config.encoding_size + self.action_space_size,
                                                  config.fc_dynamics_layers, config.encoding_size)
        self.dynamics_reward_network = mlp(config.encoding_size, config.fc_reward_layers, self.full_support_size)
        self.prediction_policy_network = mlp(config.encoding_size, config.fc_policy_layers, self.action_space_size)
        self.prediction_value_network = mlp(config.encoding_size, config.fc_value_layers, self.full_support_size)

    def prediction(self, encoded_state):
        policy_logits = self.prediction_policy_network(encoded_state)
        value = self.prediction_value_network(encoded_state)
        return policy_logits, value

    def representation(self, observation):
        encoded_state = self.representation_network(observation.view(observation.shape[0], -1))
        return normalize_encoded_state(encoded_state)

    def dynamics(self, encoded_state, action):
        # Stack encoded_state with a game specific one hot encoded action (See paper appendix Network Architecture)
        action_one_hot = torch.zeros((action.shape[0], self.action_space_size)).to(action.device).float()
        action_one_hot.scatter_(1, action.long(), 1.0)
        x = torch.cat((encoded_state, action_one_hot), dim=1)
        next_encoded_state = self.dynamics_encoded_state_network(x)
        reward = self.dynamics_reward_network(next_encoded_state)
        return normalize_encoded_state(next_encoded_state), reward

    def initial_inference(self, observation):
        encoded_state = self.representation(observation)
        policy_logits, value = self.prediction(encoded_state)
        # reward equal to 0 for consistency
        reward = torch.log(
            torch.zeros(1, self.full_support_size)
            .scatter(1, torch.tensor([[self.full_support_size // 2]]).long(), 1.0)
            .repeat(len(observation), 1)
            .to(observation.device)
        )
        return value, reward, policy_logits, encoded_state

    def recurrent_inference(self, encoded_state, action):
        next_encoded_state, reward = self.dynamics(encoded_state, action)
        policy_logits, value = self.prediction(next_encoded_state)
        return value, reward, policy_logits, next_encoded_state


class ChainEnv:
    """A deterministic chain: action 1 moves right, 0 moves left; reaching the right end pays 10."""

    def __init__(self, length):
        self.length = length

    def step(self, state, action):
        next_state = min(max(state + (1 if action == 1 else -1), 0), self.length - 1)
        reward = 10.0 if (next_state == self.length - 1 and state != self.length - 1) else 0.0
        return next_state, reward

    def observation(self, state):
        obs = np.zeros((1, 1, self.length), dtype=np.float32)
        obs[0, 0, state] = 1.0
        return obs


def optimal_value(env, state, discount):
    if state == env.length - 1:
        return 0.0
    return 10.0 * discount ** (env.length - 2 - state)


def make_batch(env, config, rng):
    """Observation, actions, and value/reward/policy targets for num_unroll_steps + 1 positions."""
    K = config.num_unroll_steps
    obs, actions, values, rewards, policies = [], [], [], [], []
    for _ in range(config.batch_size):
        state = rng.randint(0, env.length - 1)
        obs.append(env.observation(state))
        acts, vals, rews, pols = [0], [optimal_value(env, state, config.discount)], [0.0], []
        for _k in range(K):
            action = int(rng.rand() < 0.7)
            pols.append([0.0, 1.0] if state != env.length - 1 else [0.5, 0.5])
            state, reward = env.step(state, action)
            acts.append(action)
            rews.append(reward)
            vals.append(optimal_value(env, state, config.discount))
        pols.append([0.0, 1.0] if state != env.length - 1 else [0.5, 0.5])
        actions.append(acts)
        values.append(vals)
        rewards.append(rews)
        policies.append(pols)
    return (torch.tensor(np.array(obs)), torch.tensor(actions).long().unsqueeze(-1),
            torch.tensor(values, dtype=torch.float32), torch.tensor(rewards, dtype=torch.float32),
            torch.tensor(policies, dtype=torch.float32))


def loss_function(value, reward, policy_logits, target_value, target_reward, target_policy):
    # Cross-entropy seems to have a better convergence than MSE
    value_loss = (-target_value * torch.nn.LogSoftmax(dim=1)(value)).sum(1)
    reward_loss = (-target_reward * torch.nn.LogSoftmax(dim=1)(reward)).sum(1)
    policy_loss = (-target_policy * torch.nn.LogSoftmax(dim=1)(policy_logits)).sum(1)
    return value_loss, reward_loss, policy_loss


def unroll_loss(model, config, batch, use_hook=False):
    observation_batch, action_batch, target_value, target_reward, target_policy = batch
    target_value_scalar = target_value
    target_value = scalar_to_support(target_value, config.support_size)
    target_reward = scalar_to_support(target_reward, config.support_size)

    value, reward, policy_logits, hidden_state = model.initial_inference(observation_batch)
    predictions = [(value, reward, policy_logits)]
    for i in range(1, action_batch.shape[1]):
        value, reward, policy_logits, hidden_state = model.recurrent_inference(hidden_state, action_batch[:, i])
        # Scale the gradient at the start of the dynamics function (See paper appendix Training)
        if use_hook:
            # muzero-general's hook, on a copy so that only the next dynamics step sees it
            hidden_state = hidden_state.clone()
            hidden_state.register_hook(lambda grad: grad * 0.5)
        else:
            hidden_state = scale_gradient(hidden_state, 0.5)
        predictions.append((value, reward, policy_logits))

    value_loss, reward_loss, policy_loss = (0, 0, 0)
    value, reward, policy_logits = predictions[0]
    current_value_loss, _, current_policy_loss = loss_function(
        value.squeeze(-1), reward.squeeze(-1), policy_logits,
        target_value[:, 0], target_reward[:, 0], target_policy[:, 0])
    value_loss += current_value_loss
    policy_loss += current_policy_loss
    pred_value_scalar = support_to_scalar(value, config.support_size).detach().squeeze()
    value_error = (pred_value_scalar - target_value_scalar[:, 0]).abs().mean()

    for i in range(1, len(predictions)):
        value, reward, policy_logits = predictions[i]
        current_value_loss, current_reward_loss, current_policy_loss = loss_function(
            value.squeeze(-1), reward.squeeze(-1), policy_logits,
            target_value[:, i], target_reward[:, i], target_policy[:, i])
        # Scale gradient by the number of unroll steps (See paper appendix Training)
        current_value_loss.register_hook(lambda grad: grad / config.num_unroll_steps)
        current_reward_loss.register_hook(lambda grad: grad / config.num_unroll_steps)
        current_policy_loss.register_hook(lambda grad: grad / config.num_unroll_steps)
        value_loss += current_value_loss
        reward_loss += current_reward_loss
        policy_loss += current_policy_loss

    loss = value_loss * config.value_loss_weight + reward_loss + policy_loss
    loss = loss.mean()
    return loss, value_loss.mean(), reward_loss.mean(), policy_loss.mean(), value_error


config = MuZeroConfig()
env = ChainEnv(config.observation_shape[2])
rng = np.random.RandomState(0)

# the support transform: h, h^-1 and the two-bin encoding round-trip
scalars = torch.tensor(np.concatenate([rng.uniform(-60, 60, 30), [0.0, 1.0, -1.0, 10.0, 3.5]]),
                       dtype=torch.float32).unsqueeze(1)
support = scalar_to_support(scalars, config.support_size)
recovered = support_to_scalar(torch.log(support.squeeze(1)), config.support_size)
roundtrip_err = (recovered - scalars).abs().max().item()
mass_ok = bool(torch.allclose(support.sum(-1), torch.ones(scalars.shape[0], 1)))
bins_used = int((support > 0).sum().item())
print(f"support round trip: max err {roundtrip_err:.6f} mass one {mass_ok} nonzero bins {bins_used}")

model = MuZeroFullyConnectedNetwork(config)
print("parameters", sum(p.numel() for p in model.parameters()))

# scale_gradient must give muzero-general's register_hook gradients
probe = make_batch(env, config, np.random.RandomState(99))
grads = []
for use_hook in (False, True):
    model.zero_grad()
    unroll_loss(model, config, probe, use_hook=use_hook)[0].backward()
    grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
hook_err = (grads[0] - grads[1]).abs().max().item()
print(f"scale_gradient vs register_hook: max grad diff {hook_err:.3e}")
model.zero_grad()

optimizer = torch.optim.Adam(model.parameters(), lr=config.lr_init, weight_decay=config.weight_decay)
history = []
for training_step in range(config.training_steps):
    batch = make_batch(env, config, rng)
    loss, value_loss, reward_loss, policy_loss, value_error = unroll_loss(model, config, batch)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    history.append(loss.item())
    if training_step % 60 == 0 or training_step == config.training_steps - 1:
        print(f"step {training_step}: loss {loss.item():.4f} value {value_loss.item():.4f} "
              f"reward {reward_loss.item():.4f} policy {policy_loss.item():.4f} value err {value_error.item():.3f}")

# learned values and an imagined rollout along the optimal path
model.eval()
with torch.no_grad():
    states = list(range(env.length - 1))
    obs = torch.tensor(np.array([env.observation(s) for s in states]))
    value, _, policy_logits, hidden = model.initial_inference(obs)
    pred_values = support_to_scalar(value, config.support_size).squeeze(1)
    true_values = torch.tensor([optimal_value(env, s, config.discount) for s in states])
    value_mae = (pred_values - true_values).abs().mean().item()
    policy_right = (policy_logits.argmax(1) == 1).float().mean().item()
    start = env.length - 4
    hidden = hidden[start:start + 1]
    imagined_rewards = []
    for _ in range(3):
        _, reward, _, hidden = model.recurrent_inference(hidden, torch.tensor([[1]]))
        imagined_rewards.append(support_to_scalar(reward, config.support_size).item())
print(f"imagined rewards from state {start}:", " ".join(f"{r:.2f}" for r in imagined_rewards))

loss_first, loss_last = np.mean(history[:10]), np.mean(history[-10:])
print(f"FINAL loss_first={loss_first:.4f} loss_last={loss_last:.4f} loss_ratio={loss_last / loss_first:.4f} "
      f"roundtrip_err={roundtrip_err:.6f} hook_err={hook_err:.6f} value_mae={value_mae:.4f} "
      f"policy_right={policy_right:.4f} goal_reward={imagined_rewards[2]:.4f} path_reward={abs(imagined_rewards[0]) + abs(imagined_rewards[1]):.4f}")
