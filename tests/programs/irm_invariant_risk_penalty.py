"""Invariant Risk Minimization (Arjovsky et al. 2019) as facebookresearch/InvariantRiskMinimization's
``code/colored_mnist/main.py`` writes it, on synthetic "digits" with a spurious colour feature.

The digits are ten NumPy-seeded 7x7 uint8 prototypes with pixel noise (a stand-in for MNIST's
``mnist.data``), shuffled in place through ``.numpy()`` with the script's saved/restored NumPy RNG
state so images and labels stay paired. ``make_environment`` is the script's: a binary label from
``labels < 5`` flipped with probability 0.25 (``torch_xor`` as ``(a - b).abs()``, ``torch_bernoulli``
as ``(torch.rand(size) < p).float()``), a colour that equals the label but is flipped with probability
``e`` (0.2 and 0.1 in the two training environments, 0.9 in the test one), and the colour applied by
``torch.stack([images, images], dim=1)`` and zeroing the other channel in place with
``images[torch.tensor(range(len(images))), (1 - colors).long(), :, :] *= 0`` on uint8.

The model is the script's ``MLP`` (``xavier_uniform_``/``zeros_`` init, ``nn.ReLU(True)``,
``input.view(input.shape[0], 2 * 7 * 7)``); ``mean_nll`` is ``F.binary_cross_entropy_with_logits``;
``penalty`` multiplies the logits by a dummy ``scale = torch.tensor(1.).requires_grad_()`` and squares
``autograd.grad(loss, [scale], create_graph=True)[0]``, so the penalty is differentiated through (double
backward); DomainBed's split-halves variant (``grad_1 * grad_2`` over ``[::2]``/``[1::2]``) is computed
alongside. The loss adds the L2 norm by hand (``weight_norm += w.norm().pow(2)``), anneals the penalty
weight from 1 to 10000 at ``penalty_anneal_iters`` and then divides the whole loss by it; Adam. ERM is
the same script with ``penalty_weight = 0``, as the paper's baseline; ``pretty_print`` formats with
``np.array2string`` of ``.detach().cpu().numpy()`` values (the penalty by ``np.format_float_scientific``).

Checked: the penalty equals its closed form ``mean((sigmoid(z) - y) * z) ** 2`` (and the split-halves
product the product of the halves' closed forms), IRM's accuracy on the colour-flipped test
environment beats ERM's (which learns the colour), and IRM's training penalty falls after annealing.
"""

# ruff: noqa: UP008  (the script's own spelling: super(MLP, self))

import os

import numpy as np
import torch
from torch import autograd, nn, optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


class Flags:
    hidden_dim = 64
    l2_regularizer_weight = 0.001
    lr = 0.003
    n_restarts = 1
    penalty_anneal_iters = 60
    penalty_weight = 10000.0
    steps = 181
    grayscale_model = False


# ----------------------------------------------------------------------------------- "MNIST"
def fake_mnist(n, prototypes):
    digits = np.random.randint(0, 10, size=n)
    noise = np.random.randint(0, 90, size=(n, 7, 7))
    images = np.clip(prototypes[digits].astype(np.int64) + noise - 45, 0, 255).astype(np.uint8)
    return torch.from_numpy(images), torch.from_numpy(digits.astype(np.int64))


prototypes = (np.random.rand(10, 7, 7) < 0.45).astype(np.uint8) * 200 + 30
mnist_train = fake_mnist(1600, prototypes)
mnist_val = fake_mnist(800, prototypes)

rng_state = np.random.get_state()
np.random.shuffle(mnist_train[0].numpy())
np.random.set_state(rng_state)
np.random.shuffle(mnist_train[1].numpy())


def run(flags, restart):
    # Build environments

    def make_environment(images, labels, e):
        def torch_bernoulli(p, size):
            return (torch.rand(size) < p).float()

        def torch_xor(a, b):
            return (a - b).abs()  # Assumes both inputs are either 0 or 1

        # Assign a binary label based on the digit; flip label with probability 0.25
        labels = (labels < 5).float()
        labels = torch_xor(labels, torch_bernoulli(0.25, len(labels)))
        # Assign a color based on the label; flip the color with probability e
        colors = torch_xor(labels, torch_bernoulli(e, len(labels)))
        # Apply the color to the image by zeroing out the other color channel
        images = torch.stack([images, images], dim=1)
        images[torch.tensor(range(len(images))), (1 - colors).long(), :, :] *= 0
        return {"images": (images.float() / 255.0), "labels": labels[:, None]}

    envs = [
        make_environment(mnist_train[0][::2], mnist_train[1][::2], 0.2),
        make_environment(mnist_train[0][1::2], mnist_train[1][1::2], 0.1),
        make_environment(mnist_val[0], mnist_val[1], 0.9),
    ]

    # Define and instantiate the model

    class MLP(nn.Module):
        def __init__(self):
            super(MLP, self).__init__()
            if flags.grayscale_model:
                lin1 = nn.Linear(7 * 7, flags.hidden_dim)
            else:
                lin1 = nn.Linear(2 * 7 * 7, flags.hidden_dim)
            lin2 = nn.Linear(flags.hidden_dim, flags.hidden_dim)
            lin3 = nn.Linear(flags.hidden_dim, 1)
            for lin in [lin1, lin2, lin3]:
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)
            self._main = nn.Sequential(lin1, nn.ReLU(True), lin2, nn.ReLU(True), lin3)

        def forward(self, input):
            if flags.grayscale_model:
                out = input.view(input.shape[0], 2, 7 * 7).sum(dim=1)
            else:
                out = input.view(input.shape[0], 2 * 7 * 7)
            out = self._main(out)
            return out

    mlp = MLP()

    # Define loss function helpers

    def mean_nll(logits, y):
        return nn.functional.binary_cross_entropy_with_logits(logits, y)

    def mean_accuracy(logits, y):
        preds = (logits > 0.0).float()
        return ((preds - y).abs() < 1e-2).float().mean()

    def penalty(logits, y):
        scale = torch.tensor(1.0).requires_grad_()
        loss = mean_nll(logits * scale, y)
        grad = autograd.grad(loss, [scale], create_graph=True)[0]
        return torch.sum(grad**2)

    def split_penalty(logits, y):
        scale = torch.tensor(1.0).requires_grad_()
        loss_1 = mean_nll(logits[::2] * scale, y[::2])
        loss_2 = mean_nll(logits[1::2] * scale, y[1::2])
        grad_1 = autograd.grad(loss_1, [scale], create_graph=True)[0]
        grad_2 = autograd.grad(loss_2, [scale], create_graph=True)[0]
        result = torch.sum(grad_1 * grad_2)
        return result

    # Train loop

    def pretty_print(*values):
        col_width = 13

        def format_val(v):
            if not isinstance(v, str):
                v = np.array2string(v, precision=5, floatmode="fixed")
            return v.ljust(col_width)

        str_values = [format_val(v) for v in values]
        print("   ".join(str_values))

    optimizer = optim.Adam(mlp.parameters(), lr=flags.lr)

    pretty_print("step", "train nll", "train acc", "train penalty", "test acc")

    penalties = []
    closed_form_err = 0.0
    for step in range(flags.steps):
        for env in envs:
            logits = mlp(env["images"])
            env["nll"] = mean_nll(logits, env["labels"])
            env["acc"] = mean_accuracy(logits, env["labels"])
            env["penalty"] = penalty(logits, env["labels"])
            env["split_penalty"] = split_penalty(logits, env["labels"])
            if step % 60 == 0:
                with torch.no_grad():
                    z, y = logits.double(), env["labels"].double()
                    g = ((torch.sigmoid(z) - y) * z).mean()
                    g1 = ((torch.sigmoid(z[::2]) - y[::2]) * z[::2]).mean()
                    g2 = ((torch.sigmoid(z[1::2]) - y[1::2]) * z[1::2]).mean()
                    closed_form_err = max(
                        closed_form_err,
                        abs(env["penalty"].item() - (g**2).item()) / ((g**2).item() + 1e-8),
                        abs(env["split_penalty"].item() - (g1 * g2).item()) / (abs((g1 * g2).item()) + 1e-8),
                    )

        train_nll = torch.stack([envs[0]["nll"], envs[1]["nll"]]).mean()
        train_acc = torch.stack([envs[0]["acc"], envs[1]["acc"]]).mean()
        train_penalty = torch.stack([envs[0]["penalty"], envs[1]["penalty"]]).mean()

        weight_norm = torch.tensor(0.0)
        for w in mlp.parameters():
            weight_norm += w.norm().pow(2)

        loss = train_nll.clone()
        loss += flags.l2_regularizer_weight * weight_norm
        penalty_weight = flags.penalty_weight if step >= flags.penalty_anneal_iters else 1.0
        loss += penalty_weight * train_penalty
        if penalty_weight > 1.0:
            # Rescale the entire loss to keep gradients in a reasonable range
            loss /= penalty_weight

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        test_acc = envs[2]["acc"]
        penalties.append(train_penalty.item())
        if step % 60 == 0:
            pretty_print(
                np.int32(step),
                train_nll.detach().cpu().numpy(),
                train_acc.detach().cpu().numpy(),
                np.format_float_scientific(train_penalty.detach().cpu().numpy(), precision=5, unique=False),
                test_acc.detach().cpu().numpy(),
            )
    split = torch.stack([envs[0]["split_penalty"], envs[1]["split_penalty"]]).mean().item()
    return train_acc.item(), test_acc.item(), penalties, split, closed_form_err


results = {}
for name, penalty_weight, anneal in [
    ("ERM", 0.0, 0),
    ("IRM", Flags.penalty_weight, Flags.penalty_anneal_iters),
]:
    flags = Flags()
    flags.penalty_weight = penalty_weight
    flags.penalty_anneal_iters = anneal
    print(f"{name}: penalty_weight={flags.penalty_weight} penalty_anneal_iters={flags.penalty_anneal_iters}")
    final_train_accs, final_test_accs = [], []
    for restart in range(flags.n_restarts):
        print("Restart", restart)
        train_acc, test_acc, penalties, split, err = run(flags, restart)
        final_train_accs.append(train_acc)
        final_test_accs.append(test_acc)
    print("Final train acc (mean/std across restarts so far):")
    print(np.mean(final_train_accs), np.std(final_train_accs))
    print("Final test acc (mean/std across restarts so far):")
    print(np.mean(final_test_accs), np.std(final_test_accs))
    results[name] = (train_acc, test_acc, penalties, split, err)

irm_pen = results["IRM"][2]
at_anneal = float(np.mean(irm_pen[Flags.penalty_anneal_iters : Flags.penalty_anneal_iters + 5]))
final_pen = float(np.mean(irm_pen[-5:]))
print(
    f"IRM penalty after annealing {at_anneal:.3e} -> final {final_pen:.3e}, split-halves {results['IRM'][3]:.3e}"
)
closed_ok = max(results["ERM"][4], results["IRM"][4]) < 1e-3
print(f"penalties equal their closed forms: {closed_ok}")

print(
    f"FINAL erm_train_acc={results['ERM'][0]:.4f} erm_test_acc={results['ERM'][1]:.4f} "
    f"irm_train_acc={results['IRM'][0]:.4f} irm_test_acc={results['IRM'][1]:.4f} "
    f"irm_beats_erm={int(results['IRM'][1] > results['ERM'][1] + 0.1)} "
    f"penalty_falls={int(final_pen < at_anneal)} closed_form={int(closed_ok)}"
)
