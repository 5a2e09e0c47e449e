"""ROME (kmeng01/rome: ``rome/compute_u.py``, ``rome/compute_v.py``, ``rome/rome_main.py``,
``util/nethook.py``) on a toy fact memory: a one-layer residual model whose subject "token" passes an
MLP (``c_fc`` -> GELU -> ``c_proj``) before the relation is added and an MLP readout names the object.
It is first trained to store (subject, relation) -> object facts under several context prefixes.

Then rank-one edits as ROME makes them: ``register_forward_hook`` on ``c_proj`` capturing its input (the
key) for every context of the subject and for sample prompts, the key second moment ``C = K.T @ K / n``;
the target value found by Adam on a ``delta`` vector alone (``requires_grad_(False)`` on the model,
``torch.zeros(..., requires_grad=True)``), added to ``c_proj``'s output by a hook returning the edited
output, with the NLL of the new object by ``torch.gather`` on ``log_softmax``, a
``kl_div(log_target=True, reduction="batchmean")`` term keeping the subject's other relation, a weight-decay
term and ROME's norm clamp written as ``delta[...] = ...`` under ``torch.no_grad()``; the closed-form update
``left = torch.linalg.solve(C, k_star)``, ``right = (target - cur_output) / torch.dot(cur_input, left)``,
``w[...] = weights_copy + torch.outer(right, left)`` under ``torch.no_grad()``; and the rollback from the
saved ``weight.detach().clone()``.

Checks: each edited fact now names its new object under every context, the other facts keep their
predictions (accuracy and the largest probability change), and the rollback restores the weights and
the model's logits bit for bit (``torch.equal``).
"""

import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

n_subj, n_rel, n_ctx, n_obj = 48, 2, 8, 12
d_model, d_mlp = 32, 128

# the facts: every subject has one object per relation (fixed across seeds)
facts = torch.from_numpy(np.random.RandomState(0).randint(0, n_obj, size=(n_subj, n_rel)))


class FactMemory(nn.Module):
    def __init__(self):
        super().__init__()
        self.subj_emb = nn.Embedding(n_subj, d_model)
        self.ctx_emb = nn.Embedding(n_ctx, d_model)
        self.rel_emb = nn.Embedding(n_rel, d_model)
        self.ln_1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d_model, d_mlp)),
            ("act", nn.GELU()),
            ("c_proj", nn.Linear(d_mlp, d_model)),
        ]))
        self.ln_f = nn.LayerNorm(d_model)
        self.readout = nn.Sequential(nn.Linear(d_model, 64), nn.GELU(), nn.Linear(64, n_obj))

    def forward(self, subj, rel, ctx):
        h = self.subj_emb(subj) + 0.5 * self.ctx_emb(ctx)
        h = h + self.mlp(self.ln_1(h))
        h = h + self.rel_emb(rel)
        return self.readout(self.ln_f(h))


def prompts(subjects, relations):
    """Every (subject, relation, context) triple for the given subjects and relations."""
    s, r, c = torch.meshgrid(torch.as_tensor(subjects), torch.as_tensor(relations), torch.arange(n_ctx),
                             indexing="ij")
    return s.reshape(-1), r.reshape(-1), c.reshape(-1)


model = FactMemory()
all_s, all_r, all_c = prompts(range(n_subj), range(n_rel))
all_y = facts[all_s, all_r]
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(300):
    idx = torch.randint(0, len(all_s), (256,))
    loss = F.cross_entropy(model(all_s[idx], all_r[idx], all_c[idx]), all_y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 100 == 0 or step == 299:
        with torch.no_grad():
            acc = (model(all_s, all_r, all_c).argmax(-1) == all_y).float().mean().item()
        print(f"memorise step {step:3d}  loss {loss.item():.4f}  acc {acc:.4f}")
assert acc == 1.0
model.eval()
for p in model.parameters():
    p.requires_grad_(False)


# ---- nethook-style tracing of c_proj's input and output ----
class Trace:
    def __init__(self, module, edit_output=None):
        self.edit_output = edit_output
        self.input = self.output = None
        self.handle = module.register_forward_hook(self)

    def __call__(self, module, inputs, output):
        self.input = inputs[0].detach()
        if self.edit_output is not None:
            output = self.edit_output(output)
        self.output = output
        return output

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


layer = model.mlp.c_proj

# compute_u's statistic: second moment of keys over sample prompts (all subjects, all contexts)
with torch.no_grad(), Trace(layer) as tr:
    s, r, c = prompts(range(n_subj), [0])
    model(s, r, c)
    K = tr.input
C = K.T @ K / K.shape[0]
print("key statistics", tuple(K.shape), tuple(C.shape))

with torch.no_grad():
    base_logits = model(all_s, all_r, all_c)
base_probs = base_logits.softmax(-1)
weights_copy = layer.weight.detach().clone()

rng = np.random.RandomState(7)
edits = [(int(s), int(r)) for s, r in zip(rng.choice(n_subj, 4, replace=False), rng.randint(0, n_rel, 4))]
edit_accs, other_accs, essence_accs, max_changes, restored = [], [], [], [], []
for n, (subject, relation) in enumerate(edits):
    new_obj = int((facts[subject, relation] + 1 + rng.randint(0, n_obj - 1)) % n_obj)
    assert new_obj != facts[subject, relation]
    other_rel = 1 - relation

    # compute_u: the key at the subject, averaged over contexts, then C^-1 k
    with torch.no_grad(), Trace(layer) as tr:
        s, r, c = prompts([subject], [relation])
        model(s, r, c)
        cur_input = tr.input.mean(0)
    left = torch.linalg.solve(C, cur_input)
    left = left / left.norm()

    # compute_v: optimise delta on c_proj's output
    rw_s, rw_r, rw_c = prompts([subject], [relation])
    kl_s, kl_r, kl_c = prompts([subject], [other_rel])
    batch_s, batch_r, batch_c = torch.cat([rw_s, kl_s]), torch.cat([rw_r, kl_r]), torch.cat([rw_c, kl_c])
    targets = torch.full((len(rw_s),), new_obj, dtype=torch.long)
    delta = torch.zeros((d_model,), requires_grad=True)
    v_opt = torch.optim.Adam([delta], lr=0.5)
    target_init, kl_distr_init = None, None
    with Trace(layer, edit_output=lambda out, delta=delta: out + delta) as tr:
        for it in range(60):  # noqa: B007  (the step count is printed after)
            v_opt.zero_grad()
            logits = model(batch_s, batch_r, batch_c)
            if target_init is None:
                target_init = (tr.output - delta).detach()[: len(rw_s)].mean(0)
            kl_log_probs = F.log_softmax(logits[len(rw_s):], dim=1)
            if kl_distr_init is None:
                kl_distr_init = kl_log_probs.detach().clone()
            log_probs = torch.log_softmax(logits[: len(rw_s)], dim=1)
            nll_loss = -torch.gather(log_probs, 1, targets.unsqueeze(1)).squeeze(1).mean()
            kl_loss = 0.0625 * F.kl_div(kl_distr_init, kl_log_probs, log_target=True, reduction="batchmean")
            weight_decay = 0.5 * (torch.norm(delta) / torch.norm(target_init) ** 2)
            loss = nll_loss + kl_loss + weight_decay
            if loss < 5e-2:
                break
            loss.backward()
            v_opt.step()
            max_norm = 4 * target_init.norm()
            if delta.norm() > max_norm:
                with torch.no_grad():
                    delta[...] = delta * max_norm / delta.norm()
    target = target_init + delta.detach()
    print(f"edit {n}: v-opt steps {it + 1}  nll {nll_loss.item():.4f}  kl {kl_loss.item():.4f}  "
          f"delta norm {delta.norm().item():.3f}")

    # the rank-one update
    with torch.no_grad():
        cur_output = layer(cur_input)
    right = (target - cur_output) / torch.dot(cur_input, left)
    upd_matrix = torch.outer(right, left)
    assert upd_matrix.shape == layer.weight.shape
    with torch.no_grad():
        layer.weight[...] = weights_copy + upd_matrix

        new_logits = model(all_s, all_r, all_c)
        edited = (all_s == subject) & (all_r == relation)
        edit_accs.append((new_logits[edited].argmax(-1) == new_obj).float().mean().item())
        # facts of the other subjects; the edited subject's other relation is held by the KL term
        others = all_s != subject
        essence = (all_s == subject) & (all_r == other_rel)
        essence_accs.append((new_logits[essence].argmax(-1) == all_y[essence]).float().mean().item())
        other_accs.append((new_logits[others].argmax(-1) == all_y[others]).float().mean().item())
        max_changes.append((new_logits[others].softmax(-1) - base_probs[others]).abs().max().item())

        # roll back
        layer.weight[...] = weights_copy
    restored.append(float(torch.equal(layer.weight, weights_copy)
                          and torch.equal(model(all_s, all_r, all_c), base_logits)))
    print(f"edit {n}: efficacy {edit_accs[-1]:.4f}  other subjects {other_accs[-1]:.4f}  "
          f"other relation {essence_accs[-1]:.4f}  "
          f"max prob change {max_changes[-1]:.4f}  restored {restored[-1]:.0f}")

edit_acc, other_acc, max_change = np.mean(edit_accs), np.mean(other_accs), max(max_changes)
essence_acc, rollback = np.mean(essence_accs), min(restored)
assert edit_acc == 1.0
assert rollback == 1.0
print(f"FINAL edit_acc={edit_acc:.4f} other_acc={other_acc:.4f} essence_acc={essence_acc:.4f} "
      f"max_change={max_change:.4f} rollback={rollback:.1f}")
