"""Reptile (Nichol, Achiam & Schulman 2018), the way OpenAI's sine-wave gist and the Omniglot
reimplementations write it: first-order meta-learning by moving the initialisation towards the
weights a few plain SGD steps reach on each task.

Sine waves, as the gist does it: an ``nn.Sequential`` of ``Linear``/``Tanh``, inner steps written by
hand (``param.data -= innerstepsize * param.grad.data``), the outer update as the ``state_dict``
interpolation ``{name: before[name] + (after[name] - before[name]) * outerstepsize}`` with
``copy.deepcopy(model.state_dict())`` and ``load_state_dict``, the outer step size annealed
linearly. Checked against the other common form, a ``copy.deepcopy(model)`` trained by
``optim.SGD`` and ``p.data.add_((p_task.data - p.data) * epsilon)`` over ``zip(parameters())``
(must agree).

Then few-shot classification of synthetic Omniglot-like 5-way 3-shot tasks: "characters" are
random 8x8 stroke images, their classes augmented by ``torch.rot90``; samples are shifted by
``torch.roll`` and noised. Task labels are permuted per task (so nothing but adaptation helps),
the inner loop is ``F.cross_entropy`` with SGD on a ``deepcopy``, the meta-update
``p.data.add_``. A net with ``nn.BatchNorm1d`` evaluated transductively (batch statistics of the
query set, ``model.train()``) and in ``eval()`` mode (running statistics), against one without
normalisation; accuracy after 0, 1, 5 and 10 inner steps on held-out characters.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

# ---------------------------------------------------------------- sine waves, the gist's way
innerstepsize, innerepochs, outerstepsize0, niterations, ntrain = 0.02, 1, 1.0, 300, 10
x_all = np.linspace(-5, 5, 50)[:, None]


def gen_task():
    phase = rng.uniform(low=0, high=2 * np.pi)
    ampl = rng.uniform(0.1, 5)
    return lambda x: np.sin(x + phase) * ampl


def totorch(x):
    return torch.tensor(x, dtype=torch.float32)


model = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))


def train_on_batch(x, y):
    x, y = totorch(x), totorch(y)
    model.zero_grad()
    ypred = model(x)
    loss = (ypred - y).pow(2).mean()
    loss.backward()
    for param in model.parameters():
        param.data -= innerstepsize * param.grad.data


def predict(x):
    return model(totorch(x)).data.numpy()


def mse_after(f, steps):
    """Fine-tune a copy on 10 points of a new task, return the MSE over the whole curve."""
    weights_before = copy.deepcopy(model.state_dict())
    inds = rng.permutation(len(x_all))[:ntrain]
    xtrain, ytrain = x_all[inds], f(x_all[inds])
    for _ in range(steps):
        train_on_batch(xtrain, ytrain)
    mse = float(np.square(predict(x_all) - f(x_all)).mean())
    model.load_state_dict(weights_before)
    return mse


eval_tasks = [gen_task() for _ in range(6)]
before = np.mean([mse_after(f, 32) for f in eval_tasks])
for iteration in range(niterations):
    weights_before = copy.deepcopy(model.state_dict())
    f = gen_task()
    y_all = f(x_all)
    inds = rng.permutation(len(x_all))
    for _ in range(innerepochs):
        for start in range(0, len(x_all), ntrain):
            mbinds = inds[start:start + ntrain]
            train_on_batch(x_all[mbinds], y_all[mbinds])
    weights_after = model.state_dict()
    outerstepsize = outerstepsize0 * (1 - iteration / niterations)  # linear schedule
    model.load_state_dict({name: weights_before[name] + (weights_after[name] - weights_before[name]) * outerstepsize
                           for name in weights_before})
    if iteration % 150 == 149:
        print(f"[sine] iteration {iteration + 1} outer step size {outerstepsize:.4f} "
              f"mse after 32 steps {np.mean([mse_after(f, 32) for f in eval_tasks]):.4f}")
sine_mse = {k: np.mean([mse_after(f, k) for f in eval_tasks]) for k in (0, 1, 32)}
print(f"[sine] mse before meta-training {before:.4f}; after it, with 0 / 1 / 32 inner steps "
      f"{sine_mse[0]:.4f} / {sine_mse[1]:.4f} / {sine_mse[32]:.4f}")

# the two ways of writing the outer update give the same weights
f = gen_task()
xb, yb = totorch(x_all[:ntrain]), totorch(f(x_all[:ntrain]))
task_model = copy.deepcopy(model)
task_opt = torch.optim.SGD(task_model.parameters(), lr=innerstepsize)
for _ in range(5):
    task_opt.zero_grad()
    F.mse_loss(task_model(xb), yb).backward()
    task_opt.step()
epsilon = 0.3
by_params = copy.deepcopy(model)
for p, p_task in zip(by_params.parameters(), task_model.parameters()):
    p.data.add_((p_task.data - p.data) * epsilon)
old, new = model.state_dict(), task_model.state_dict()
by_state = copy.deepcopy(model)
by_state.load_state_dict({name: old[name] + (new[name] - old[name]) * epsilon for name in old})
agree = all(torch.equal(a, b) for a, b in zip(by_params.parameters(), by_state.parameters()))
moved = sum((a - b).abs().sum().item() for a, b in zip(by_params.parameters(), model.parameters()))
print(f"p.data.add_ and state_dict interpolation agree: {agree}; moved {moved > 0}; "
      f"keys {len(old)} {list(old)[:2]}")

# ---------------------------------------------------------------- Omniglot-like N-way K-shot
N_WAY, K_SHOT, N_QUERY, SIDE = 5, 3, 4, 8
N_CHARACTERS, N_TRAIN_CHARACTERS = 60, 45


def make_character():
    """A random 'pen stroke' image: a few random walks on the grid."""
    img = np.zeros((SIDE, SIDE), dtype=np.float32)
    for _ in range(rng.randint(2, 4)):
        r, c = rng.randint(0, SIDE, size=2)
        for _ in range(rng.randint(4, 9)):
            img[r, c] = 1.0
            dr, dc = [(0, 1), (1, 0), (0, -1), (-1, 0)][rng.randint(4)]
            r, c = min(max(r + dr, 0), SIDE - 1), min(max(c + dc, 0), SIDE - 1)
    return torch.from_numpy(img)


characters = torch.stack([make_character() for _ in range(N_CHARACTERS)])
# classes are characters at one of four rotations, as the Omniglot setups augment them
classes = torch.cat([torch.rot90(characters, k, dims=(1, 2)) for k in range(4)])
class_is_train = torch.arange(N_CHARACTERS).repeat(4) < N_TRAIN_CHARACTERS
train_classes = class_is_train.nonzero().squeeze(1)
test_classes = (~class_is_train).nonzero().squeeze(1)
print(f"characters {tuple(characters.shape)} classes {classes.size(0)} "
      f"train {train_classes.numel()} test {test_classes.numel()}")


def draw_samples(images, n):
    shifts = torch.randint(-1, 2, (n, 2))
    out = torch.stack([torch.roll(images, shifts=(int(s[0]), int(s[1])), dims=(0, 1)) for s in shifts])
    return (out + 0.3 * torch.randn_like(out)).flatten(1)


def sample_task(pool):
    chosen = pool[torch.randperm(pool.numel())[:N_WAY]]
    xs, ys, xq, yq = [], [], [], []
    for label, cls in enumerate(chosen.tolist()):
        xs.append(draw_samples(classes[cls], K_SHOT))
        xq.append(draw_samples(classes[cls], N_QUERY))
        ys += [label] * K_SHOT
        yq += [label] * N_QUERY
    return torch.cat(xs), torch.tensor(ys), torch.cat(xq), torch.tensor(yq)


class FewShotNet(nn.Module):
    def __init__(self, batch_norm):
        super().__init__()
        norm = (lambda n: nn.BatchNorm1d(n, track_running_stats=True)) if batch_norm else (lambda n: nn.Identity())
        self.body = nn.Sequential(nn.Linear(SIDE * SIDE, 64), norm(64), nn.ReLU(),
                                  nn.Linear(64, 64), norm(64), nn.ReLU())
        self.head = nn.Linear(64, N_WAY)

    def forward(self, x):
        return self.head(self.body(x))


def adapt(meta_model, x, y, steps, lr):
    learner = copy.deepcopy(meta_model)
    learner.train()
    optimizer = torch.optim.SGD(learner.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(learner(x), y).backward()
        optimizer.step()
    return learner


def evaluate(meta_model, tasks, steps, transductive=True):
    correct = total = 0
    for xs, ys, xq, yq in tasks:
        learner = adapt(meta_model, xs, ys, steps, INNER_LR)
        learner.train(transductive)
        with torch.no_grad():
            correct += (learner(xq).argmax(1) == yq).sum().item()
        total += yq.numel()
    return correct / total


INNER_LR, INNER_STEPS, META_ITERS, META_EPS0 = 0.2, 5, 200, 1.0
test_tasks = [sample_task(test_classes) for _ in range(12)]
final = {}
for batch_norm in (True, False):
    name = "batchnorm" if batch_norm else "plain"
    meta_model = FewShotNet(batch_norm)
    for iteration in range(META_ITERS):
        xs, ys, xq, yq = sample_task(train_classes)
        x, y = torch.cat([xs, xq]), torch.cat([ys, yq])
        learner = adapt(meta_model, x, y, INNER_STEPS, INNER_LR)
        epsilon = META_EPS0 * (1 - iteration / META_ITERS)
        for p, p_task in zip(meta_model.parameters(), learner.parameters()):
            p.data.add_((p_task.data - p.data) * epsilon)
        # the running statistics follow the learner's, as a load of its buffers would
        for b, b_task in zip(meta_model.buffers(), learner.buffers()):
            b.copy_(b_task)
        if iteration % 100 == 99:
            print(f"[{name}] meta-iteration {iteration + 1} epsilon {epsilon:.3f} "
                  f"test 5-step accuracy {evaluate(meta_model, test_tasks[:4], 5):.3f}")
    accs = {k: evaluate(meta_model, test_tasks, k) for k in (0, 1, 5, 10)}
    print(f"[{name}] accuracy after 0 / 1 / 5 / 10 inner steps: "
          + " / ".join(f"{a:.3f}" for a in accs.values()))
    if batch_norm:
        eval_mode = evaluate(meta_model, test_tasks, 5, transductive=False)
        bn = meta_model.body[1]
        print(f"[{name}] non-transductive (eval mode) 5-step accuracy {eval_mode:.3f}; "
              f"batches tracked {int(bn.num_batches_tracked) > 0} running_var mean {bn.running_var.mean().item():.3f}")
    final[name] = accs

print(f"chance {1 / N_WAY:.3f} log(N) {math.log(N_WAY):.4f}")
print(f"FINAL acc_bn_5={final['batchnorm'][5]:.4f} acc_plain_5={final['plain'][5]:.4f} "
      f"acc_bn_10={final['batchnorm'][10]:.4f} acc_plain_10={final['plain'][10]:.4f}")
