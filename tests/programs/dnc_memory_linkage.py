"""The Differentiable Neural Computer (Graves et al., 2016) the way deepmind/dnc's addressing.py and
ixaxaar/pytorch-dnc's memory.py write it, at tiny sizes on the copy task: the interface vector
split into read/write keys, ``oneplus`` strengths (``1 + F.softplus``), erase/free/allocation/write
gates by ``torch.sigmoid`` and read modes by ``F.softmax``; content addressing by cosine similarity
(``torch.norm(..., keepdim=True)`` + ``bmm``) and ``softmax(beta * sim)``; usage with the retention
``psi = torch.prod(1 - free_gates.unsqueeze(2) * read_weights, 1)``; the allocation weighting by
``torch.sort`` of usage, an exclusive ``torch.cumprod`` built from ``torch.cat`` of ones and
``[:, :-1]``, put back in memory order by ``gather`` with the inverse permutation (and, as a second
route, by ``scatter``); erase/add writes by ``bmm``; the temporal link matrix
``L = (1 - w_i - w_j) L + w_i p_j`` with the diagonal zeroed by ``* (1 - torch.eye(N))``, the
precedence ``p = (1 - sum w) p + w``; forward/backward read weightings by ``bmm`` with ``L`` and
``L.transpose(1, 2)``; an ``nn.LSTMCell`` controller fed the previous read vectors.

Checks: allocation weights sum to at most 1 and equal a sequential per-slot loop (and the scatter
route); the link matrix keeps a zero diagonal and rows/columns summing to at most 1; read weights
sum to at most 1; and the copy task's loss and bit errors falling.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

δ = 1e-6


def oneplus(x):
    return 1 + F.softplus(x)


def cosine_similarity(memory, keys):
    """memory (b, n, w), keys (b, h, w) -> (b, h, n), as pytorch-dnc's θ."""
    memory_norm = torch.norm(memory, 2, 2, keepdim=True)
    keys_norm = torch.norm(keys, 2, 2, keepdim=True)
    dot = torch.bmm(keys, memory.transpose(1, 2))
    return dot / (torch.bmm(keys_norm, memory_norm.transpose(1, 2)) + δ)


def content_weightings(memory, keys, strengths):
    sim = cosine_similarity(memory, keys)
    return F.softmax(sim * strengths.unsqueeze(2), dim=2)


def exclusive_cumprod(x):
    # tf.cumprod(x, axis=1, exclusive=True): the product of everything before each entry
    ones = x.new_ones(x.size(0), 1)
    return torch.cumprod(torch.cat((ones, x), 1), 1)[:, :-1]


def allocation_weighting(usage):
    """deepmind/dnc's CosineWeights-free allocation: a_phi[j] = (1 - u_phi[j]) prod_{i<j} u_phi[i]."""
    usage = δ + (1 - δ) * usage
    sorted_usage, phi = torch.sort(usage, dim=1)
    sorted_allocation = (1 - sorted_usage) * exclusive_cumprod(sorted_usage)
    phi_rev = torch.argsort(phi, dim=1)  # the inverse permutation
    return sorted_allocation.gather(1, phi_rev), (sorted_allocation, phi)


def allocation_weighting_loop(usage):
    """The same, one batch entry and one memory slot at a time, from the paper's equation."""
    usage = (δ + (1 - δ) * usage).tolist()
    out = []
    for u in usage:
        order = sorted(range(len(u)), key=lambda i: u[i])
        a = [0.0] * len(u)
        prod = 1.0
        for j in order:
            a[j] = (1 - u[j]) * prod
            prod *= u[j]
        out.append(a)
    return torch.tensor(out)


class Memory(nn.Module):
    def __init__(self, mem_size=10, cell_size=6, read_heads=2):
        super().__init__()
        self.mem_size = mem_size
        self.cell_size = cell_size
        self.read_heads = read_heads
        r, w = read_heads, cell_size
        self.interface_size = r * w + 3 * w + 5 * r + 3
        self.register_buffer("I", 1 - torch.eye(mem_size).unsqueeze(0), persistent=False)
        self.checks = {"alloc_sum": 0.0, "link_row": 0.0, "link_col": 0.0, "link_diag": 0.0,
                       "read_sum": 0.0, "alloc_loop": 0.0, "alloc_scatter": 0.0}

    def new(self, batch_size):
        n, w, r = self.mem_size, self.cell_size, self.read_heads
        return {
            "memory": torch.zeros(batch_size, n, w).fill_(δ),
            "link_matrix": torch.zeros(batch_size, 1, n, n),
            "precedence": torch.zeros(batch_size, 1, n),
            "read_weights": torch.zeros(batch_size, r, n).fill_(δ),
            "write_weights": torch.zeros(batch_size, 1, n).fill_(δ),
            "usage_vector": torch.zeros(batch_size, n),
        }

    def get_usage_vector(self, usage, free_gates, read_weights, write_weights):
        usage = usage + (1 - usage) * (1 - torch.prod(1 - write_weights, 1))
        ψ = torch.prod(1 - free_gates.unsqueeze(2) * read_weights, 1)
        return usage * ψ

    def get_link_matrix(self, link_matrix, write_weights, precedence):
        precedence = precedence.unsqueeze(2)
        write_weights_i = write_weights.unsqueeze(3)
        write_weights_j = write_weights.unsqueeze(2)
        prev_scale = 1 - write_weights_i - write_weights_j
        new_link_matrix = write_weights_i * precedence
        link_matrix = prev_scale * link_matrix + new_link_matrix
        # trick to delete diag elems
        return self.I.expand_as(link_matrix) * link_matrix

    def update_precedence(self, precedence, write_weights):
        return (1 - torch.sum(write_weights, 2, keepdim=True)) * precedence + write_weights

    def directional_weightings(self, link_matrix, read_weights):
        L = link_matrix.squeeze(1)
        forward = torch.bmm(read_weights, L.transpose(1, 2))
        backward = torch.bmm(read_weights, L)
        return forward, backward

    def track(self, key, value):
        self.checks[key] = max(self.checks[key], value)

    def forward(self, ξ, hidden):
        b = ξ.size(0)
        r, w = self.read_heads, self.cell_size
        splits = [r * w, r, w, 1, w, w, r, 1, 1, r * 3]
        (read_keys, read_strengths, write_key, write_strength, erase_vector, write_vector,
         free_gates, allocation_gate, write_gate, read_modes) = torch.split(ξ, splits, dim=1)
        read_keys = read_keys.view(b, r, w)
        read_strengths = oneplus(read_strengths)
        write_key = write_key.view(b, 1, w)
        write_strength = oneplus(write_strength)
        erase_vector = torch.sigmoid(erase_vector).view(b, 1, w)
        write_vector = write_vector.view(b, 1, w)
        free_gates = torch.sigmoid(free_gates)
        allocation_gate = torch.sigmoid(allocation_gate)
        write_gate = torch.sigmoid(write_gate)
        read_modes = F.softmax(read_modes.view(b, r, 3), dim=-1)

        # write
        hidden["usage_vector"] = self.get_usage_vector(
            hidden["usage_vector"], free_gates, hidden["read_weights"], hidden["write_weights"])
        allocation, (sorted_allocation, phi) = allocation_weighting(hidden["usage_vector"])
        with torch.no_grad():
            self.track("alloc_sum", allocation.sum(1).max().item())
            self.track("alloc_loop", (allocation - allocation_weighting_loop(hidden["usage_vector"])).abs().max().item())
            scattered = torch.zeros_like(allocation).scatter(1, phi, sorted_allocation)
            self.track("alloc_scatter", (allocation - scattered).abs().max().item())
        write_content = content_weightings(hidden["memory"], write_key, write_strength)
        ag = allocation_gate.unsqueeze(-1)
        wg = write_gate.unsqueeze(-1)
        write_weights = wg * (ag * allocation.unsqueeze(1) + (1 - ag) * write_content)
        weighted_resets = write_weights.transpose(1, 2) @ erase_vector
        hidden["memory"] = hidden["memory"] * (1 - weighted_resets) + torch.bmm(write_weights.transpose(1, 2), write_vector)
        hidden["write_weights"] = write_weights
        hidden["link_matrix"] = self.get_link_matrix(hidden["link_matrix"], write_weights, hidden["precedence"])
        hidden["precedence"] = self.update_precedence(hidden["precedence"], write_weights)

        # read
        content = content_weightings(hidden["memory"], read_keys, read_strengths)
        forward_w, backward_w = self.directional_weightings(hidden["link_matrix"], hidden["read_weights"])
        read_weights = (read_modes[:, :, 0:1] * backward_w + read_modes[:, :, 1:2] * forward_w
                        + read_modes[:, :, 2:3] * content)
        hidden["read_weights"] = read_weights
        with torch.no_grad():
            L = hidden["link_matrix"].squeeze(1)
            self.track("link_row", L.sum(2).max().item())
            self.track("link_col", L.sum(1).max().item())
            self.track("link_diag", torch.diagonal(L, dim1=1, dim2=2).abs().max().item())
            self.track("read_sum", read_weights.sum(2).max().item())
        return torch.bmm(read_weights, hidden["memory"]), hidden


class DNC(nn.Module):
    def __init__(self, input_size, output_size, hidden_size=32, mem_size=10, cell_size=6, read_heads=2):
        super().__init__()
        self.read_heads, self.cell_size = read_heads, cell_size
        self.controller = nn.LSTMCell(input_size + read_heads * cell_size, hidden_size)
        self.memory = Memory(mem_size, cell_size, read_heads)
        self.interface = nn.Linear(hidden_size, self.memory.interface_size)
        self.output = nn.Linear(hidden_size + read_heads * cell_size, output_size)

    def forward(self, inputs):
        # inputs: (T, b, input_size)
        T, b, _ = inputs.shape
        h = inputs.new_zeros(b, self.controller.hidden_size)
        c = inputs.new_zeros(b, self.controller.hidden_size)
        reads = inputs.new_zeros(b, self.read_heads * self.cell_size)
        mem_hidden = self.memory.new(b)
        outputs = []
        for t in range(T):
            h, c = self.controller(torch.cat([inputs[t], reads], dim=-1), (h, c))
            ξ = self.interface(h)
            read_vectors, mem_hidden = self.memory(ξ, mem_hidden)
            reads = read_vectors.view(b, -1)
            outputs.append(self.output(torch.cat([h, reads], dim=-1)))
        return torch.stack(outputs)


# ---- 1. allocation against the loop on hand-made usages (ties included) ----
usage = torch.rand(4, 10)
usage[0] = torch.tensor([0.5, 0.1, 0.9, 0.0, 1.0, 0.3, 0.7, 0.2, 0.8, 0.6])
alloc, _ = allocation_weighting(usage)
alloc_err = (alloc - allocation_weighting_loop(usage)).abs().max().item()
print(f"allocation vs loop {alloc_err:.2e}; sums {[round(v, 4) for v in alloc.sum(1).tolist()]}")
assert alloc_err < 1e-6 and (alloc.sum(1) <= 1 + 1e-6).all()
usage.requires_grad_(True)
alloc, _ = allocation_weighting(usage)
(g,) = torch.autograd.grad((alloc * torch.arange(10.0)).sum(), usage)
print(f"allocation gradient finite: {bool(torch.isfinite(g).all())}, |g| {g.norm().item():.4f}")

# ---- 2. the copy task ----
BITS, SEQ_LEN, BATCH = 4, 4, 16


def copy_batch():
    seq = torch.from_numpy(rng.integers(0, 2, (SEQ_LEN, BATCH, BITS)).astype(np.float32))
    inputs = torch.zeros(2 * SEQ_LEN + 1, BATCH, BITS + 1)
    inputs[:SEQ_LEN, :, :BITS] = seq
    inputs[SEQ_LEN, :, BITS] = 1.0  # delimiter
    return inputs, seq


model = DNC(BITS + 1, BITS, hidden_size=32, mem_size=10, cell_size=6, read_heads=2)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
losses, errors = [], []
for step in range(120):
    inputs, target = copy_batch()
    out = model(inputs)[SEQ_LEN + 1:]
    loss = F.binary_cross_entropy_with_logits(out, target)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    optimizer.step()
    losses.append(loss.item())
    errors.append(((out > 0).float() != target).float().sum().item() / BATCH)
    if step % 40 == 0:
        print(f"step {step:3d} loss {loss.item():.4f} bit errors/seq {errors[-1]:.3f}")

checks = model.memory.checks
print("max over training: " + ", ".join(f"{k} {v:.6f}" for k, v in checks.items()))
assert checks["alloc_sum"] <= 1 + 1e-5 and checks["alloc_loop"] < 1e-5 and checks["alloc_scatter"] == 0.0
assert checks["link_row"] <= 1 + 1e-5 and checks["link_col"] <= 1 + 1e-5 and checks["link_diag"] == 0.0
assert checks["read_sum"] <= 1 + 1e-5
first, last = float(np.mean(losses[:10])), float(np.mean(losses[-10:]))
err_first, err_last = float(np.mean(errors[:10])), float(np.mean(errors[-10:]))
print(f"loss {first:.4f} -> {last:.4f}; bit errors per sequence {err_first:.3f} -> {err_last:.3f}")
assert last < first

print(f"FINAL loss_first={first:.4f} loss_last={last:.4f} bit_errors_last={err_last:.4f}")
