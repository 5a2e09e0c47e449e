"""A sparsely gated mixture of experts, the shape of davidmrau/mixture-of-experts (Shazeer et al.'s
noisy top-k gating) and the Switch Transformer tutorials: ``logits.topk(min(k + 1, E), dim=1)``,
``F.softmax`` over the top k, ``torch.zeros_like(logits).scatter(1, top_k_indices, top_k_gates)``,
the cv-squared load-balancing loss on ``gates.sum(0)`` importance and ``(gates > 0).sum(0)`` load,
a ``SparseDispatcher`` (``torch.nonzero(gates).sort(0)``, ``split(dim=0)`` per expert,
``index_add(0, batch_index, stitched)``); and a Switch-style top-1 router with
``F.one_hot(expert_index, E)`` fractions, ``torch.bincount(minlength=E)`` token counts and
``index_add_`` combine. Both must agree with a dense reference (every expert on every token,
weighted by the gates). Data: a piecewise-linear regression whose regime a router can learn.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class SparseDispatcher:
    """Helper for implementing a mixture of experts (davidmrau/mixture-of-experts)."""

    def __init__(self, num_experts, gates):
        """Create a SparseDispatcher."""
        self._gates = gates
        self._num_experts = num_experts
        # sort experts
        sorted_experts, index_sorted_experts = torch.nonzero(gates).sort(0)
        # drop indices
        _, self._expert_index = sorted_experts.split(1, dim=1)
        # get according batch index for each expert
        self._batch_index = torch.nonzero(gates)[index_sorted_experts[:, 1], 0]
        # calculate num samples that each expert gets
        self._part_sizes = (gates > 0).sum(0).tolist()
        # expand gates to match with self._batch_index
        gates_exp = gates[self._batch_index.flatten()]
        self._nonzero_gates = torch.gather(gates_exp, 1, self._expert_index)

    def dispatch(self, inp):
        # assigns samples to experts whose gate is nonzero
        # expand according to batch index so we can just split by _part_sizes
        inp_exp = inp[self._batch_index].squeeze(1)
        return torch.split(inp_exp, self._part_sizes, dim=0)

    def combine(self, expert_out, multiply_by_gates=True):
        # apply exp to expert outputs, so we are not longer in log space
        stitched = torch.cat(expert_out, 0)
        if multiply_by_gates:
            stitched = stitched.mul(self._nonzero_gates)
        zeros = torch.zeros(self._gates.size(0), expert_out[-1].size(1), requires_grad=True,
                            device=stitched.device)
        # combine samples that have been processed by the same k experts
        combined = zeros.index_add(0, self._batch_index, stitched.float())
        return combined

    def expert_to_gates(self):
        # split nonzero gates for each expert
        return torch.split(self._nonzero_gates, self._part_sizes, dim=0)


class MLP(nn.Module):
    def __init__(self, input_size, output_size, hidden_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class MoE(nn.Module):
    def __init__(self, input_size, output_size, num_experts, hidden_size, noisy_gating=True, k=2):
        super().__init__()
        self.noisy_gating = noisy_gating
        self.num_experts = num_experts
        self.output_size = output_size
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.k = k
        # instantiate experts
        self.experts = nn.ModuleList([MLP(self.input_size, self.output_size, self.hidden_size)
                                      for i in range(self.num_experts)])
        self.w_gate = nn.Parameter(torch.zeros(input_size, num_experts), requires_grad=True)
        self.w_noise = nn.Parameter(torch.zeros(input_size, num_experts), requires_grad=True)

        self.softplus = nn.Softplus()
        self.softmax = nn.Softmax(1)
        self.register_buffer("mean", torch.tensor([0.0]))
        self.register_buffer("std", torch.tensor([1.0]))
        assert (self.k <= self.num_experts)

    def cv_squared(self, x):
        """The squared coefficient of variation of a sample."""
        eps = 1e-10
        # if only num_experts = 1
        if x.shape[0] == 1:
            return torch.tensor([0], device=x.device, dtype=x.dtype)
        return x.float().var() / (x.float().mean() ** 2 + eps)

    def _gates_to_load(self, gates):
        return (gates > 0).sum(0)

    def noisy_top_k_gating(self, x, train, noise_epsilon=1e-2):
        clean_logits = x @ self.w_gate
        if self.noisy_gating and train:
            raw_noise_stddev = x @ self.w_noise
            noise_stddev = (self.softplus(raw_noise_stddev) + noise_epsilon)
            noisy_logits = clean_logits + (torch.randn_like(clean_logits) * noise_stddev)
            logits = noisy_logits
        else:
            logits = clean_logits
        # calculate topk + 1 that will be needed for the noisy gates
        logits = self.softmax(logits)
        top_logits, top_indices = logits.topk(min(self.k + 1, self.num_experts), dim=1)
        top_k_logits = top_logits[:, :self.k]
        top_k_indices = top_indices[:, :self.k]
        top_k_gates = top_k_logits / (top_k_logits.sum(1, keepdim=True) + 1e-6)  # normalization

        zeros = torch.zeros_like(logits, requires_grad=True)
        gates = zeros.scatter(1, top_k_indices, top_k_gates)
        load = self._gates_to_load(gates)
        return gates, load

    def forward(self, x, loss_coef=1e-2):
        gates, load = self.noisy_top_k_gating(x, self.training)
        # calculate importance loss
        importance = gates.sum(0)
        loss = self.cv_squared(importance) + self.cv_squared(load)
        loss *= loss_coef

        dispatcher = SparseDispatcher(self.num_experts, gates)
        expert_inputs = dispatcher.dispatch(x)
        gates = dispatcher.expert_to_gates()
        expert_outputs = [self.experts[i](expert_inputs[i]) for i in range(self.num_experts)]
        y = dispatcher.combine(expert_outputs)
        return y, loss, gates


class SwitchFFN(nn.Module):
    """Switch Transformer routing: each token to its top-1 expert, scaled by the router probability."""

    def __init__(self, d, hidden, num_experts):
        super().__init__()
        self.router = nn.Linear(d, num_experts, bias=False)
        self.experts = nn.ModuleList([MLP(d, 1, hidden) for _ in range(num_experts)])
        self.num_experts = num_experts

    def forward(self, x):
        probs = F.softmax(self.router(x), dim=-1)
        route_prob_max, routes = torch.max(probs, dim=-1)
        counts = torch.bincount(routes, minlength=self.num_experts)
        out = x.new_zeros(x.shape[0], 1)
        for i in range(self.num_experts):
            idx = torch.eq(routes, i).nonzero(as_tuple=True)[0]
            if idx.numel():
                out.index_add_(0, idx, self.experts[i](x[idx]))
        out = out * route_prob_max.unsqueeze(-1)
        # load balancing: fraction of tokens per expert times the mean router probability
        fraction = F.one_hot(routes, self.num_experts).float().mean(0)
        aux = self.num_experts * (fraction * probs.mean(0)).sum()
        return out, aux, counts


def make_data(n, rng):
    x = rng.uniform(-1, 1, size=(n, 4)).astype(np.float32)
    regime = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0).astype(np.int64)
    slopes = np.array([[1, -2, 0.5, 0], [-1, 1, 0, 2], [2, 0, -1, 1], [0, 1, 1, -2]], dtype=np.float32)
    y = (x * slopes[regime]).sum(1, keepdims=True) + 0.05 * rng.randn(n, 1).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


rng = np.random.RandomState(0)
x_train, y_train = make_data(1024, rng)
x_test, y_test = make_data(256, rng)

moe = MoE(4, 1, num_experts=4, hidden_size=16, k=2)
switch = SwitchFFN(4, 16, 4)
nn.init.normal_(moe.w_gate, std=0.1)
opt = torch.optim.Adam(list(moe.parameters()) + list(switch.parameters()), lr=1e-2)

for epoch in range(20):
    perm = torch.randperm(len(x_train))
    moe.train()
    total = [0.0, 0.0]
    for i in range(0, len(x_train), 64):
        idx = perm[i:i + 64]
        x, y = x_train[idx], y_train[idx]
        y_hat, aux_loss, _ = moe(x)
        y_sw, aux_sw, _ = switch(x)
        loss = F.mse_loss(y_hat, y) + aux_loss
        loss_sw = F.mse_loss(y_sw, y) + 0.01 * aux_sw
        opt.zero_grad()
        (loss + loss_sw).backward()
        opt.step()
        total[0] += loss.item()
        total[1] += loss_sw.item()
    if epoch % 5 == 4:
        print(f"epoch {epoch}: moe loss {total[0] / 16:.4f} switch loss {total[1] / 16:.4f}")

moe.eval()
with torch.no_grad():
    y_hat, aux, expert_gates = moe(x_test)
    gates, load = moe.noisy_top_k_gating(x_test, False)
    dense = torch.stack([expert(x_test) for expert in moe.experts], 1)  # (n, E, 1)
    reference = (gates.unsqueeze(-1) * dense).sum(1)
    print('sparse dispatch equals the dense mixture:', torch.allclose(y_hat, reference, atol=1e-5))
    print('experts per token:', int((gates > 0).sum(1).max()), 'gates sum to one:',
          torch.allclose(gates.sum(1), torch.ones(len(x_test)), atol=1e-4))
    y_sw, _, counts = switch(x_test)
    print('switch tokens routed:', int(counts.sum()), 'over', len(counts), 'experts')
    moe_mse = F.mse_loss(y_hat, y_test).item()
    switch_mse = F.mse_loss(y_sw, y_test).item()
    used = int((load > 0).sum())
print(f"FINAL moe_mse={moe_mse:.4f} switch_mse={switch_mse:.4f} experts_used={used}")
