"""MeshGraphNets / "Learning to Simulate" (GNS) as the PyTorch ports write them (echowve/meshGraphNets_pytorch,
wwMark/meshgraphnets, the learning_to_simulate ports), on a synthetic 2-D spring-mass chain.

The data: chains of masses hanging from a pinned first node, joined by springs, under gravity and a little
damping, integrated by NumPy (semi-implicit Euler with substeps) from random initial bends. The simulator sees
the mesh (consecutive nodes, both directions), a node type (``NORMAL`` / ``HANDLE``, one-hot) and the last
``C`` velocities, and predicts the acceleration ``p[t+1] - 2 p[t] + p[t-1]``.

The model is encode-process-decode: ``make_mlp`` with ``nn.LayerNorm`` at the end of the encoder and processor
MLPs, edge features ``[relative world position, its norm]``, ``GraphNetBlock``s updating edges from
``torch.cat([senders, receivers, edges], -1)`` and nodes from the summed incoming messages (``torch.zeros(...)
.index_add_(0, receivers, edge_latents)``, checked equal to the ``scatter_add_`` of the ``unsorted_segment_sum``
port), both with residuals. Inputs and targets go through the online ``Normalizer`` (sum and sum of squares as
buffers, ``torch.maximum(std, eps)``, accumulation frozen after ``max_accumulations`` batches). Training adds
GNS random-walk noise to the input positions (the target corrected so the next position stays right), Adam with
an exponential learning-rate decay; the rollout integrates predicted accelerations under ``torch.no_grad()``,
the handle kept on its true trajectory by ``torch.where``.

Checked: the one-step loss falls, the two aggregations agree, the normaliser's statistics equal the data's, and
the rollout's position error lies below the constant-velocity baseline's.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_NODES, T_STEPS, N_TRAJ, N_TEST = 8, 40, 20, 4
C = 3  # INPUT_SEQUENCE_LENGTH - 1 velocities
DT, SUBSTEPS = 0.05, 10
K_SPRING, REST, GRAVITY, DAMP = 60.0, 0.25, 2.0, 0.4
NORMAL, HANDLE = 0, 1
NODE_TYPE_SIZE = 2
LATENT, MP_STEPS = 32, 3
NOISE_STD = 3e-4


# ----------------------------------------------------------------------------------- data
def simulate(rng):
    angles = np.cumsum(rng.uniform(-0.6, 0.6, N_NODES - 1)) - np.pi / 2 + rng.uniform(-0.8, 0.8)
    pos = np.zeros((N_NODES, 2))
    pos[1:] = np.cumsum(REST * 1.1 * np.stack([np.cos(angles), np.sin(angles)], 1), 0)
    vel = rng.normal(0, 0.1, (N_NODES, 2))
    vel[0] = 0
    traj = [pos.copy()]
    h = DT / SUBSTEPS
    for _ in range(T_STEPS - 1):
        for _ in range(SUBSTEPS):
            d = pos[1:] - pos[:-1]
            length = np.linalg.norm(d, axis=1, keepdims=True)
            f = K_SPRING * (length - REST) * d / length
            force = np.zeros_like(pos)
            force[:-1] += f
            force[1:] -= f
            force[:, 1] -= GRAVITY
            force -= DAMP * vel
            vel = vel + h * force
            vel[0] = 0
            pos = pos + h * vel
        traj.append(pos.copy())
    return np.stack(traj).astype(np.float32)  # (T, N, 2)


trajectories = torch.from_numpy(np.stack([simulate(rng) for _ in range(N_TRAJ + N_TEST)]))
train_traj, test_traj = trajectories[:N_TRAJ], trajectories[N_TRAJ:]
node_type = torch.zeros(N_NODES, dtype=torch.long)
node_type[0] = HANDLE
senders = torch.cat([torch.arange(N_NODES - 1), torch.arange(1, N_NODES)])
receivers = torch.cat([torch.arange(1, N_NODES), torch.arange(N_NODES - 1)])
print(f"data: {N_TRAJ} train / {N_TEST} test chains, {N_NODES} nodes, {T_STEPS} steps, {senders.numel()} edges")


# ----------------------------------------------------------------------------------- normalizer
class Normalizer(nn.Module):
    def __init__(self, size, max_accumulations=10**6, std_epsilon=1e-8, name="Normalizer"):
        super(Normalizer, self).__init__()  # noqa: UP008  (the ports' spelling)
        self.name = name
        self._max_accumulations = max_accumulations
        self.register_buffer("_std_epsilon", torch.tensor(std_epsilon, dtype=torch.float32))
        self.register_buffer("_acc_count", torch.tensor(0, dtype=torch.float32))
        self.register_buffer("_num_accumulations", torch.tensor(0, dtype=torch.float32))
        self.register_buffer("_acc_sum", torch.zeros((1, size), dtype=torch.float32))
        self.register_buffer("_acc_sum_squared", torch.zeros((1, size), dtype=torch.float32))

    def forward(self, batched_data, accumulate=True):
        """Normalizes input data and accumulates statistics."""
        if accumulate:
            # stop accumulating after a million updates, to prevent accuracy issues
            if self._num_accumulations < self._max_accumulations:
                self._accumulate(batched_data.detach())
        return (batched_data - self._mean()) / self._std_with_epsilon()

    def inverse(self, normalized_batch_data):
        """Inverse transformation of the normalizer."""
        return normalized_batch_data * self._std_with_epsilon() + self._mean()

    def _accumulate(self, batched_data):
        count = batched_data.shape[0]
        data_sum = torch.sum(batched_data, axis=0, keepdims=True)
        squared_data_sum = torch.sum(batched_data**2, axis=0, keepdims=True)
        self._acc_sum += data_sum
        self._acc_sum_squared += squared_data_sum
        self._acc_count += count
        self._num_accumulations += 1

    def _mean(self):
        safe_count = torch.maximum(self._acc_count, torch.tensor(1.0, dtype=torch.float32))
        return self._acc_sum / safe_count

    def _std_with_epsilon(self):
        safe_count = torch.maximum(self._acc_count, torch.tensor(1.0, dtype=torch.float32))
        std = torch.sqrt(self._acc_sum_squared / safe_count - self._mean() ** 2)
        return torch.maximum(std, self._std_epsilon)


# ----------------------------------------------------------------------------------- model
def make_mlp(input_size, latent_size, output_size, layer_norm=True):
    layers = [nn.Linear(input_size, latent_size), nn.ReLU(), nn.Linear(latent_size, latent_size), nn.ReLU(),
              nn.Linear(latent_size, output_size)]
    if layer_norm:
        layers.append(nn.LayerNorm(normalized_shape=output_size))
    return nn.Sequential(*layers)


def unsorted_segment_sum(data, segment_ids, num_segments):
    # the scatter_add_ port of tf.math.unsorted_segment_sum
    index = segment_ids.unsqueeze(-1).expand(-1, data.size(1))
    result = torch.zeros((num_segments, data.size(1)), dtype=data.dtype)
    return result.scatter_add_(0, index, data)


class GraphNetBlock(nn.Module):
    """Multi-Edge Interaction Network with residual connections."""

    def __init__(self, latent_size, use_scatter=False):
        super().__init__()
        self.edge_mlp = make_mlp(3 * latent_size, latent_size, latent_size)
        self.node_mlp = make_mlp(2 * latent_size, latent_size, latent_size)
        self.use_scatter = use_scatter

    def _update_edge_features(self, node_features, edge_features, senders, receivers):
        sender_features = torch.index_select(node_features, 0, senders)
        receiver_features = node_features[receivers]
        return self.edge_mlp(torch.cat([sender_features, receiver_features, edge_features], dim=-1))

    def _update_node_features(self, node_features, edge_features, receivers):
        num_nodes = node_features.shape[0]
        if self.use_scatter:
            aggregated = unsorted_segment_sum(edge_features, receivers, num_nodes)
        else:
            aggregated = torch.zeros(num_nodes, edge_features.shape[1]).index_add_(0, receivers, edge_features)
        return self.node_mlp(torch.cat([node_features, aggregated], dim=-1))

    def forward(self, node_features, edge_features, senders, receivers):
        new_edge_features = self._update_edge_features(node_features, edge_features, senders, receivers)
        new_node_features = self._update_node_features(node_features, new_edge_features, receivers)
        # residual connections
        return new_node_features + node_features, new_edge_features + edge_features


class EncodeProcessDecode(nn.Module):
    def __init__(self, node_input_size, edge_input_size, output_size, latent_size, message_passing_steps):
        super().__init__()
        self.node_encoder = make_mlp(node_input_size, latent_size, latent_size)
        self.edge_encoder = make_mlp(edge_input_size, latent_size, latent_size)
        self.processor = nn.ModuleList([GraphNetBlock(latent_size) for _ in range(message_passing_steps)])
        self.decoder = make_mlp(latent_size, latent_size, output_size, layer_norm=False)

    def forward(self, node_features, edge_features, senders, receivers):
        x, e = self.node_encoder(node_features), self.edge_encoder(edge_features)
        for block in self.processor:
            x, e = block(x, e, senders, receivers)
        return self.decoder(x)


class Simulator(nn.Module):
    def __init__(self):
        super().__init__()
        self.learned_model = EncodeProcessDecode(2 * C + NODE_TYPE_SIZE, 3, 2, LATENT, MP_STEPS)
        self._output_normalizer = Normalizer(size=2, name="output_normalizer")
        self._node_normalizer = Normalizer(size=2 * C + NODE_TYPE_SIZE, name="node_normalizer")
        self._edge_normalizer = Normalizer(size=3, name="edge_normalizer")

    def _build_graph(self, position_sequence, node_type, senders, receivers, accumulate):
        # position_sequence: (num_nodes, C + 1, 2) -> velocities (num_nodes, C, 2)
        velocity_sequence = position_sequence[:, 1:] - position_sequence[:, :-1]
        one_hot = torch.nn.functional.one_hot(node_type, NODE_TYPE_SIZE).float()
        node_features = torch.cat([velocity_sequence.flatten(1), one_hot], dim=-1)
        world_pos = position_sequence[:, -1]
        relative_world_pos = torch.index_select(world_pos, 0, senders) - torch.index_select(world_pos, 0, receivers)
        edge_features = torch.cat([relative_world_pos, torch.norm(relative_world_pos, dim=-1, keepdim=True)], dim=-1)
        return (self._node_normalizer(node_features, accumulate),
                self._edge_normalizer(edge_features, accumulate))

    def forward(self, position_sequence, node_type, senders, receivers, accumulate=False):
        node_features, edge_features = self._build_graph(position_sequence, node_type, senders, receivers, accumulate)
        return self.learned_model(node_features, edge_features, senders, receivers)

    def predict_positions(self, position_sequence, node_type, senders, receivers):
        normalized_acceleration = self(position_sequence, node_type, senders, receivers)
        acceleration = self._output_normalizer.inverse(normalized_acceleration)
        most_recent_position = position_sequence[:, -1]
        most_recent_velocity = most_recent_position - position_sequence[:, -2]
        # Euler integrator: the next velocity, then the next position
        new_velocity = most_recent_velocity + acceleration
        return most_recent_position + new_velocity


def get_random_walk_noise_for_position_sequence(position_sequence, noise_std_last_step):
    velocity_sequence = position_sequence[:, 1:] - position_sequence[:, :-1]
    num_velocities = velocity_sequence.shape[1]
    velocity_sequence_noise = torch.randn(list(velocity_sequence.shape)) * (noise_std_last_step / num_velocities ** 0.5)
    velocity_sequence_noise = torch.cumsum(velocity_sequence_noise, dim=1)
    return torch.cat([torch.zeros_like(velocity_sequence_noise[:, 0:1]), velocity_sequence_noise], dim=1)


def batch_graphs(trajs, starts):
    """Concatenates the graphs of several (trajectory, start) windows, offsetting the node indices."""
    windows, targets, types, snd, rcv = [], [], [], [], []
    for i, (traj, t0) in enumerate(zip(trajs, starts)):
        window = traj[t0:t0 + C + 2].transpose(0, 1)  # (nodes, C + 2, 2)
        windows.append(window[:, :-1])
        targets.append(window[:, -1])
        types.append(node_type)
        snd.append(senders + i * N_NODES)
        rcv.append(receivers + i * N_NODES)
    return torch.cat(windows), torch.cat(targets), torch.cat(types), torch.cat(snd), torch.cat(rcv)


# ----------------------------------------------------------------------------------- training
model = Simulator()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.995)
BATCH, STEPS, WARMUP = 8, 300, 20
model._output_normalizer._max_accumulations = WARMUP
model._node_normalizer._max_accumulations = WARMUP
model._edge_normalizer._max_accumulations = WARMUP

n_windows = T_STEPS - C - 1
losses = []
for step in range(STEPS):
    idx = torch.randint(0, N_TRAJ, (BATCH,))
    starts = torch.randint(0, n_windows, (BATCH,)).tolist()
    position_sequence, next_position, types, snd, rcv = batch_graphs(train_traj[idx], starts)
    sampled_noise = get_random_walk_noise_for_position_sequence(position_sequence, NOISE_STD)
    noise_mask = (types == NORMAL).unsqueeze(-1).unsqueeze(-1)
    sampled_noise = sampled_noise * noise_mask
    noisy_position_sequence = position_sequence + sampled_noise
    # the target corrected so that the noisy input still integrates to the true next position
    next_position_adjusted = next_position + sampled_noise[:, -1]
    previous_position = noisy_position_sequence[:, -1]
    previous_velocity = previous_position - noisy_position_sequence[:, -2]
    target_acceleration = next_position_adjusted - previous_position - previous_velocity
    accumulate = True
    target_normalized = model._output_normalizer(target_acceleration, accumulate)
    predicted = model(noisy_position_sequence, types, snd, rcv, accumulate=accumulate)
    error = torch.sum((target_normalized - predicted) ** 2, dim=1)
    loss = torch.mean(error[types == NORMAL])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    if step % 60 == 0 or step == STEPS - 1:
        print(f"step {step:4d}  one-step loss {loss.item():.5f}  lr {scheduler.get_last_lr()[0]:.5f}")

first_loss = float(np.mean(losses[:20]))
last_loss = float(np.mean(losses[-20:]))
print(f"loss first 20 {first_loss:.4f} -> last 20 {last_loss:.4f}")
frozen = int(model._node_normalizer._num_accumulations.item())
print(f"normalizer accumulations frozen at {frozen}")

# the normalizer's statistics against the data they saw, recomputed from the buffers
acc = model._output_normalizer
mean_from_buffers = acc._acc_sum / acc._acc_count
state_keys = sorted(k for k in model.state_dict() if "normalizer" in k)
print(f"normalizer buffers in state_dict: {len(state_keys)}")
normalizer_ok = bool(torch.allclose(acc._mean(), mean_from_buffers)) and bool((acc._std_with_epsilon() > 0).all())

# index_add_ and scatter_add_ aggregation agree
with torch.no_grad():
    block = model.learned_model.processor[0]
    position_sequence, _, types, snd, rcv = batch_graphs(test_traj[:2], [0, 5])
    nf, ef = model._build_graph(position_sequence, types, snd, rcv, accumulate=False)
    x, e = model.learned_model.node_encoder(nf), model.learned_model.edge_encoder(ef)
    out_index_add = block(x, e, snd, rcv)[0]
    block.use_scatter = True
    out_scatter = block(x, e, snd, rcv)[0]
    block.use_scatter = False
aggregations_agree = bool(torch.allclose(out_index_add, out_scatter, atol=1e-5))
print(f"index_add_ == scatter_add_ aggregation: {aggregations_agree}")


# ----------------------------------------------------------------------------------- rollout
@torch.no_grad()
def rollout(model, trajectory, num_steps):
    current_positions = trajectory[:C + 1].transpose(0, 1)  # (nodes, C + 1, 2)
    predictions = []
    for step in range(num_steps):
        next_position = model.predict_positions(current_positions, node_type, senders, receivers)
        # kinematic (handle) nodes follow their true trajectory
        kinematic_mask = (node_type == HANDLE).unsqueeze(-1)
        next_position_ground_truth = trajectory[C + 1 + step]
        next_position = torch.where(kinematic_mask, next_position_ground_truth, next_position)
        predictions.append(next_position)
        current_positions = torch.cat([current_positions[:, 1:], next_position[:, None, :]], dim=1)
    return torch.stack(predictions)


def constant_velocity(trajectory, num_steps):
    p_prev, p = trajectory[C - 1].clone(), trajectory[C].clone()
    predictions = []
    for step in range(num_steps):
        p_prev, p = p, 2 * p - p_prev
        p[0] = trajectory[C + 1 + step][0]
        predictions.append(p)
    return torch.stack(predictions)


model.eval()
ROLLOUT = 20
model_errors, baseline_errors = [], []
for traj in test_traj:
    truth = traj[C + 1:C + 1 + ROLLOUT]
    model_errors.append(((rollout(model, traj, ROLLOUT) - truth) ** 2).sum(-1).mean().item())
    baseline_errors.append(((constant_velocity(traj, ROLLOUT) - truth) ** 2).sum(-1).mean().item())
model_mse, baseline_mse = float(np.mean(model_errors)), float(np.mean(baseline_errors))
print(f"rollout {ROLLOUT} steps: model position MSE {model_mse:.5f}, constant-velocity MSE {baseline_mse:.5f}")

print(f"FINAL loss_ratio={last_loss / first_loss:.4f} rollout_ratio={model_mse / baseline_mse:.4f} "
      f"agree={int(aggregations_agree)} normalizer={int(normalizer_ok)} frozen={frozen}")
