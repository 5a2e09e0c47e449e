"""ALOHA's ACT (tonyzhaozh/act: detr/models/detr_vae.py, policy.py, imitate_episodes.py) on a toy
2-d reaching task with scripted demonstrations: a CVAE whose encoder is an ``nn.TransformerEncoder``
over [CLS, qpos, action chunk] tokens (``self.cls_embed.weight`` of an ``nn.Embedding(1, d)``,
``torch.unsqueeze(..., axis=0).repeat(bs, 1, 1)``, ``torch.cat(..., axis=1)``, ``permute(1, 0, 2)``,
``torch.full((bs, 2), False)`` joined to ``is_pad`` as ``src_key_padding_mask``, a
``get_sinusoid_encoding_table`` buffer used by ``.clone().detach()``), ``reparametrize`` as
``mu + std * torch.randn_like(std)`` with ``std = logvar.div(2).exp()``, ``kl_divergence``
(``klds.sum(1).mean(0, True)``) times ``kl_weight``, an ``nn.TransformerDecoder`` from learned
``query_embed`` queries over [latent, proprio, backbone] memory tokens with fixed sinusoidal
position embeddings, ``F.l1_loss(reduction='none')`` masked by ``~is_pad.unsqueeze(-1)``, AdamW
with a ``"backbone" in n`` param group at ``lr_backbone``, and temporal ensembling at test time
(``all_time_actions[[t], t:t + num_queries] = all_actions``, ``torch.all(... != 0, axis=1)``,
``np.exp(-k * np.arange(n))`` weights through ``torch.from_numpy(...).unsqueeze(dim=1)``).
Checks: the loss falls, the ensembled rollout ends nearer the target than a random policy, the
KL stays finite, and the zero-latent inference path equals a decoder fed ``torch.zeros`` by hand.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

state_dim = 2
num_queries = 8
hidden_dim = 32
latent_dim = 8
episode_len = 20
num_episodes = 64
kl_weight = 10
lr = 1e-3
lr_backbone = 3e-4
weight_decay = 1e-4
batch_size = 32
num_steps = 240


def scripted_episode(rng):
    """A scripted demonstrator: start somewhere, move toward the goal with a per-episode gain
    (the "style" the CVAE latent can explain), small jitter; actions are the next qpos targets."""
    start = rng.uniform(-1.0, 1.0, size=2)
    goal = rng.uniform(-1.0, 1.0, size=2)
    gain = rng.uniform(0.15, 0.35)
    qpos = [start]
    for _ in range(episode_len):
        step = gain * (goal - qpos[-1]) + rng.normal(0.0, 0.01, size=2)
        qpos.append(qpos[-1] + step)
    qpos = np.stack(qpos)
    return qpos[:-1].astype(np.float32), qpos[1:].astype(np.float32), goal.astype(np.float32)


data_rng = np.random.RandomState(1234)
episodes = [scripted_episode(data_rng) for _ in range(num_episodes)]
all_qpos = np.concatenate([e[0] for e in episodes])
all_action = np.concatenate([e[1] for e in episodes])
stats = {
    "qpos_mean": all_qpos.mean(0), "qpos_std": np.clip(all_qpos.std(0), 1e-2, np.inf),
    "action_mean": all_action.mean(0), "action_std": np.clip(all_action.std(0), 1e-2, np.inf),
}


def sample_batch(rng, n):
    """EpisodicDataset.__getitem__ batched: a random start, the chunk from there padded with
    zeros and flagged in is_pad."""
    qpos_b, goal_b, action_b, pad_b = [], [], [], []
    for _ in range(n):
        qpos, action, goal = episodes[rng.randint(num_episodes)]
        start_ts = rng.randint(episode_len)
        chunk = action[start_ts:start_ts + num_queries]
        padded = np.zeros((num_queries, state_dim), dtype=np.float32)
        padded[:len(chunk)] = (chunk - stats["action_mean"]) / stats["action_std"]
        is_pad = np.zeros(num_queries)
        is_pad[len(chunk):] = 1
        qpos_b.append((qpos[start_ts] - stats["qpos_mean"]) / stats["qpos_std"])
        goal_b.append(goal)
        action_b.append(padded)
        pad_b.append(is_pad)
    qpos_data = torch.from_numpy(np.stack(qpos_b)).float()
    goal_data = torch.from_numpy(np.stack(goal_b)).float()
    action_data = torch.from_numpy(np.stack(action_b)).float()
    is_pad = torch.from_numpy(np.stack(pad_b)).bool()
    return qpos_data, goal_data, action_data, is_pad


def get_sinusoid_encoding_table(n_position, d_hid):
    def get_position_angle_vec(position):
        return [position / np.power(10000, 2 * (hid_j // 2) / d_hid) for hid_j in range(d_hid)]

    sinusoid_table = np.array([get_position_angle_vec(pos_i) for pos_i in range(n_position)])
    sinusoid_table[:, 0::2] = np.sin(sinusoid_table[:, 0::2])
    sinusoid_table[:, 1::2] = np.cos(sinusoid_table[:, 1::2])
    return torch.FloatTensor(sinusoid_table).unsqueeze(0)


def reparametrize(mu, logvar):
    std = logvar.div(2).exp()
    eps = torch.randn_like(std)
    return mu + std * eps


def kl_divergence(mu, logvar):
    batch_size = mu.size(0)
    assert batch_size != 0
    klds = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    total_kld = klds.sum(1).mean(0, True)
    dimension_wise_kld = klds.mean(0)
    mean_kld = klds.mean(1).mean(0, True)
    return total_kld, dimension_wise_kld, mean_kld


class Backbone(nn.Module):
    """Stands in for the ResNet on camera images: the goal position becomes a few feature tokens."""

    def __init__(self, num_tokens=4):
        super().__init__()
        self.num_tokens = num_tokens
        self.body = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, num_tokens * hidden_dim))

    def forward(self, goal):
        return self.body(goal).view(goal.shape[0], self.num_tokens, hidden_dim)


class DETRVAE(nn.Module):
    def __init__(self, backbones, num_queries):
        super().__init__()
        self.num_queries = num_queries
        self.action_head = nn.Linear(hidden_dim, state_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.backbones = nn.ModuleList(backbones)
        self.input_proj_robot_state = nn.Linear(state_dim, hidden_dim)
        decoder_layer = nn.TransformerDecoderLayer(hidden_dim, nhead=4, dim_feedforward=64, dropout=0.1)
        self.decoder = nn.TransformerDecoder(decoder_layer, num_layers=2, norm=nn.LayerNorm(hidden_dim))

        # encoder extra parameters
        self.latent_dim = latent_dim
        self.cls_embed = nn.Embedding(1, hidden_dim)
        self.encoder_action_proj = nn.Linear(state_dim, hidden_dim)
        self.encoder_joint_proj = nn.Linear(state_dim, hidden_dim)
        self.latent_proj = nn.Linear(hidden_dim, self.latent_dim * 2)
        self.register_buffer("pos_table", get_sinusoid_encoding_table(1 + 1 + num_queries, hidden_dim))
        encoder_layer = nn.TransformerEncoderLayer(hidden_dim, nhead=4, dim_feedforward=64, dropout=0.1)
        self.encoder = nn.TransformerEncoder(encoder_layer, num_layers=2)

        # decoder extra parameters
        self.latent_out_proj = nn.Linear(self.latent_dim, hidden_dim)
        self.additional_pos_embed = nn.Embedding(2, hidden_dim)
        self.register_buffer("memory_pos", get_sinusoid_encoding_table(backbones[0].num_tokens, hidden_dim))

    def encode(self, qpos, actions, is_pad):
        bs, _ = qpos.shape
        action_embed = self.encoder_action_proj(actions)  # (bs, seq, hidden_dim)
        qpos_embed = self.encoder_joint_proj(qpos)  # (bs, hidden_dim)
        qpos_embed = torch.unsqueeze(qpos_embed, axis=1)  # (bs, 1, hidden_dim)
        cls_embed = self.cls_embed.weight  # (1, hidden_dim)
        cls_embed = torch.unsqueeze(cls_embed, axis=0).repeat(bs, 1, 1)  # (bs, 1, hidden_dim)
        encoder_input = torch.cat([cls_embed, qpos_embed, action_embed], axis=1)  # (bs, seq+2, hidden_dim)
        encoder_input = encoder_input.permute(1, 0, 2)  # (seq+2, bs, hidden_dim)
        cls_joint_is_pad = torch.full((bs, 2), False).to(qpos.device)  # False: not a padding
        is_pad = torch.cat([cls_joint_is_pad, is_pad], axis=1)  # (bs, seq+2)
        pos_embed = self.pos_table.clone().detach()
        pos_embed = pos_embed.permute(1, 0, 2)  # (seq+2, 1, hidden_dim)
        encoder_output = self.encoder(encoder_input + pos_embed, src_key_padding_mask=is_pad)
        encoder_output = encoder_output[0]  # take cls output only
        latent_info = self.latent_proj(encoder_output)
        mu = latent_info[:, :self.latent_dim]
        logvar = latent_info[:, self.latent_dim:]
        return mu, logvar

    def decode(self, qpos, goal, latent_sample):
        bs = qpos.shape[0]
        latent_input = self.latent_out_proj(latent_sample)
        features = self.backbones[0](goal)  # (bs, tokens, hidden_dim)
        proprio_input = self.input_proj_robot_state(qpos)
        memory = torch.cat([latent_input.unsqueeze(1), proprio_input.unsqueeze(1), features], axis=1)
        pos = torch.cat([self.additional_pos_embed.weight.unsqueeze(0), self.memory_pos], axis=1)
        memory = (memory + pos).permute(1, 0, 2)
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)  # (num_queries, bs, hidden_dim)
        tgt = torch.zeros_like(query_embed)
        hs = self.decoder(tgt + query_embed, memory).transpose(0, 1)  # (bs, num_queries, hidden_dim)
        return self.action_head(hs)

    def forward(self, qpos, goal, actions=None, is_pad=None):
        is_training = actions is not None  # train or val
        bs, _ = qpos.shape
        if is_training:
            mu, logvar = self.encode(qpos, actions, is_pad)
            latent_sample = reparametrize(mu, logvar)
        else:
            mu = logvar = None
            latent_sample = torch.zeros([bs, self.latent_dim], dtype=torch.float32).to(qpos.device)
        a_hat = self.decode(qpos, goal, latent_sample)
        return a_hat, [mu, logvar]


class ACTPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = DETRVAE([Backbone()], num_queries)
        self.kl_weight = kl_weight
        param_dicts = [
            {"params": [p for n, p in self.model.named_parameters() if "backbone" not in n and p.requires_grad]},
            {
                "params": [p for n, p in self.model.named_parameters() if "backbone" in n and p.requires_grad],
                "lr": lr_backbone,
            },
        ]
        self.optimizer = torch.optim.AdamW(param_dicts, lr=lr, weight_decay=weight_decay)

    def __call__(self, qpos, goal, actions=None, is_pad=None):
        if actions is not None:  # training time
            actions = actions[:, :self.model.num_queries]
            is_pad = is_pad[:, :self.model.num_queries]
            a_hat, (mu, logvar) = self.model(qpos, goal, actions, is_pad)
            total_kld, dim_wise_kld, mean_kld = kl_divergence(mu, logvar)
            loss_dict = dict()
            all_l1 = F.l1_loss(actions, a_hat, reduction="none")
            l1 = (all_l1 * ~is_pad.unsqueeze(-1)).mean()
            loss_dict["l1"] = l1
            loss_dict["kl"] = total_kld[0]
            loss_dict["loss"] = loss_dict["l1"] + loss_dict["kl"] * self.kl_weight
            return loss_dict
        else:  # inference time
            a_hat, (_, _) = self.model(qpos, goal)  # no action, sample from prior
            return a_hat


policy = ACTPolicy()
n_parameters = sum(p.numel() for p in policy.model.parameters() if p.requires_grad)
print(f"number of parameters: {n_parameters / 1e3:.2f}K")
groups = policy.optimizer.param_groups
print(f"param groups {len(groups)}: {len(groups[0]['params'])} at lr {groups[0]['lr']:g}, "
      f"{len(groups[1]['params'])} backbone at lr {groups[1]['lr']:g}")

batch_rng = np.random.RandomState(seed)
qpos_data, goal_data, action_data, is_pad = sample_batch(batch_rng, 4)
print(f"batch qpos {tuple(qpos_data.shape)} action {tuple(action_data.shape)} is_pad {is_pad.dtype} "
      f"padded chunks {int(is_pad.any(1).sum())} of 4")

history = []
kl_ok = True
for step in range(num_steps):
    policy.model.train()
    qpos_data, goal_data, action_data, is_pad = sample_batch(batch_rng, batch_size)
    forward_dict = policy(qpos_data, goal_data, action_data, is_pad)
    loss = forward_dict["loss"]
    policy.optimizer.zero_grad()
    loss.backward()
    policy.optimizer.step()
    history.append({k: v.item() for k, v in forward_dict.items()})
    kl_ok = kl_ok and math.isfinite(history[-1]["kl"])
    if step % 60 == 0 or step == num_steps - 1:
        print(f"step {step:3d} loss {history[-1]['loss']:.4f} l1 {history[-1]['l1']:.4f} kl {history[-1]['kl']:.4f}")

first_loss = float(np.mean([h["loss"] for h in history[:20]]))
last_loss = float(np.mean([h["loss"] for h in history[-20:]]))
last_l1 = float(np.mean([h["l1"] for h in history[-20:]]))
last_kl = float(np.mean([h["kl"] for h in history[-20:]]))
assert kl_ok, "KL went non-finite"
assert all(h["kl"] >= -1e-5 for h in history), "KL of two Gaussians is never negative"

# the inference path (prior mean as latent) is the decoder with an explicit zero latent
policy.model.eval()
with torch.no_grad():
    qpos_data, goal_data, _, _ = sample_batch(batch_rng, 8)
    via_policy = policy(qpos_data, goal_data)
    via_decoder = policy.model.decode(qpos_data, goal_data, torch.zeros(8, latent_dim))
prior_path_err = (via_policy - via_decoder).abs().max().item()
print(f"inference a_hat {tuple(via_policy.shape)} prior-path err {prior_path_err:.2e}")


def pre_process(s_qpos):
    return (s_qpos - stats["qpos_mean"]) / stats["qpos_std"]


def post_process(a):
    return a * stats["action_std"] + stats["action_mean"]


def rollout(goal, start, temporal_agg=True, query_frequency=1):
    max_timesteps = episode_len
    all_time_actions = torch.zeros([max_timesteps, max_timesteps + num_queries, state_dim])
    qpos_now = start.copy()
    goal_t = torch.from_numpy(goal).float().unsqueeze(0)
    with torch.inference_mode():
        for t in range(max_timesteps):
            qpos = torch.from_numpy(pre_process(qpos_now)).float().unsqueeze(0)
            if t % query_frequency == 0:
                all_actions = policy(qpos, goal_t)
            if temporal_agg:
                all_time_actions[[t], t:t + num_queries] = all_actions
                actions_for_curr_step = all_time_actions[:, t]
                actions_populated = torch.all(actions_for_curr_step != 0, axis=1)
                actions_for_curr_step = actions_for_curr_step[actions_populated]
                k = 0.01
                exp_weights = np.exp(-k * np.arange(len(actions_for_curr_step)))
                exp_weights = exp_weights / exp_weights.sum()
                exp_weights = torch.from_numpy(exp_weights).unsqueeze(dim=1)
                raw_action = (actions_for_curr_step * exp_weights).sum(dim=0, keepdim=True)
            else:
                raw_action = all_actions[:, t % query_frequency]
            action = post_process(raw_action.squeeze(0).cpu().numpy())
            qpos_now = action.astype(np.float64)
    return np.linalg.norm(qpos_now - goal), raw_action.dtype, int(actions_populated.sum()) if temporal_agg else 0


eval_rng = np.random.RandomState(99)
eval_cases = [(eval_rng.uniform(-1, 1, size=2), eval_rng.uniform(-1, 1, size=2)) for _ in range(6)]
ens_dist, chunk_dist, random_dist = [], [], []
for start, goal in eval_cases:
    d, dtype, populated = rollout(goal.astype(np.float32), start, temporal_agg=True)
    ens_dist.append(d)
    d, _, _ = rollout(goal.astype(np.float32), start, temporal_agg=False, query_frequency=num_queries)
    chunk_dist.append(d)
    pos = start.copy()
    for _ in range(episode_len):
        pos = pos + eval_rng.uniform(-0.2, 0.2, size=2)
    random_dist.append(np.linalg.norm(pos - goal))
print(f"temporal ensembling: action dtype {dtype}, {populated} chunks populated at the last step")
ens_dist = float(np.mean(ens_dist))
chunk_dist = float(np.mean(chunk_dist))
random_dist = float(np.mean(random_dist))
print(f"final distance to target: ensembled {ens_dist:.4f} chunked {chunk_dist:.4f} random {random_dist:.4f}")
assert last_loss < first_loss, "loss did not fall"
assert ens_dist < random_dist, "the policy does no better than random"
assert prior_path_err < 1e-5
print(f"FINAL loss_first={first_loss:.4f} loss_last={last_loss:.4f} l1={last_l1:.4f} kl={last_kl:.4f} dist={ens_dist:.4f}")
