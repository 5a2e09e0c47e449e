"""``torch.func`` as the pytorch.org tutorials use it, around a hypernetwork. The "Model ensembling"
tutorial (intermediate/ensembling.html): ``SimpleMLP`` models, ``stack_module_state(models)``, a base
model by ``copy.deepcopy(models[0]).to('meta')``, ``fmodel`` = ``functional_call(base_model, (params,
buffers), (x,))``, ``[p.size(0) for p in params.values()]``, ``vmap(fmodel)`` over different
minibatches and ``vmap(fmodel, in_dims=(0, 0, None))`` over one, both checked against the loop with
``torch.allclose(..., atol=1e-3, rtol=1e-5)``. The "Per-sample gradients" tutorial: ``compute_loss``
with ``sample.unsqueeze(0)``, ``vmap(grad(compute_loss), in_dims=(None, None, 0, 0))`` on
``{k: v.detach() for k, v in model.named_parameters()}`` and ``named_buffers()``, against a loop of
``backward`` calls. Then a hypernetwork: an MLP maps a task code to the flat weight vector of a
target net, cut by ``dict(zip(names, [w.view(shape) for w, shape in zip(torch.split(flat, sizes),
shapes)]))`` and run by ``functional_call(target, params, (x,))``, trained on a family of sine
regression tasks, with the ``named_parameters()``/``named_buffers()`` order printed.
"""
# ruff: noqa: UP008  (the tutorials' own spelling: super(SimpleMLP, self))

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import vmap
from torch.func import functional_call, grad, stack_module_state


class SimpleMLP(nn.Module):
    def __init__(self):
        super(SimpleMLP, self).__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = x.flatten(1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        x = F.relu(x)
        x = self.fc3(x)
        return x


class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1)
        self.bn = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(4 * 3 * 3, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        output = F.log_softmax(x, dim=1)
        return output


class TargetNet(nn.Module):
    """The net whose weights the hypernetwork writes; its own parameters are never trained."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(1, 24)
        self.out = nn.Linear(24, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


class HyperNetwork(nn.Module):
    def __init__(self, code_dim, num_weights):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(code_dim, 64), nn.ReLU(), nn.Linear(64, num_weights))

    def forward(self, code):
        return self.net(code)


def ensembling(seed):
    num_models = 5
    data = torch.randn(20, 16, 1, 8, 8)
    models = [SimpleMLP() for _ in range(num_models)]
    minibatches = data[:num_models]
    predictions_diff_minibatch_loop = [model(minibatch) for model, minibatch in zip(models, minibatches)]
    minibatch = data[0]
    predictions2 = [model(minibatch) for model in models]

    params, buffers = stack_module_state(models)
    base_model = copy.deepcopy(models[0])
    base_model = base_model.to('meta')

    def fmodel(params, buffers, x):
        return functional_call(base_model, (params, buffers), (x,))

    print([p.size(0) for p in params.values()])  # show the leading 'num_models' dimension
    print("stacked:", list(params.keys()), buffers, params["fc1.weight"].requires_grad,
          base_model.fc1.weight.device)
    assert minibatches.shape == (num_models, 16, 1, 8, 8)
    predictions1_vmap = vmap(fmodel)(params, buffers, minibatches)
    print("vmap over minibatches:", tuple(predictions1_vmap.shape),
          torch.allclose(predictions1_vmap, torch.stack(predictions_diff_minibatch_loop), atol=1e-3, rtol=1e-5))
    predictions2_vmap = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, minibatch)
    print("vmap over one minibatch:", tuple(predictions2_vmap.shape),
          torch.allclose(predictions2_vmap, torch.stack(predictions2), atol=1e-3, rtol=1e-5))
    return (predictions1_vmap - torch.stack(predictions_diff_minibatch_loop)).abs().max().item()


def per_sample_grads():
    model = SimpleCNN()
    model.eval()  # the tutorial's model has no BatchNorm; in eval mode it reads its buffers only
    batch_size = 16
    data = torch.randn(batch_size, 1, 8, 8)
    targets = torch.randint(10, (batch_size,))

    def compute_grad(sample, target):
        sample = sample.unsqueeze(0)  # prepend batch dimension for processing
        target = target.unsqueeze(0)
        prediction = model(sample)
        loss = F.nll_loss(prediction, target)
        return torch.autograd.grad(loss, list(model.parameters()))

    def compute_sample_grads(data, targets):
        sample_grads = [compute_grad(data[i], targets[i]) for i in range(batch_size)]
        sample_grads = zip(*sample_grads)
        sample_grads = [torch.stack(shards) for shards in sample_grads]
        return sample_grads

    per_sample_grads = compute_sample_grads(data, targets)
    print("loop grads:", [tuple(g.shape) for g in per_sample_grads])

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    print("named_parameters:", list(params))
    print("named_buffers:", list(buffers))

    def compute_loss(params, buffers, sample, target):
        batch = sample.unsqueeze(0)
        targets = target.unsqueeze(0)
        predictions = functional_call(model, (params, buffers), (batch,))
        loss = F.nll_loss(predictions, targets)
        return loss

    ft_compute_grad = grad(compute_loss)
    ft_compute_sample_grad = vmap(ft_compute_grad, in_dims=(None, None, 0, 0))
    ft_per_sample_grads = ft_compute_sample_grad(params, buffers, data, targets)
    worst = 0.0
    for per_sample_grad, ft_per_sample_grad in zip(per_sample_grads, ft_per_sample_grads.values()):
        assert torch.allclose(per_sample_grad, ft_per_sample_grad, atol=3e-3, rtol=1e-5)
        worst = max(worst, (per_sample_grad - ft_per_sample_grad).abs().max().item())
    print("vmap(grad) per-sample grads match the loop:", list(ft_per_sample_grads), worst < 1e-5)
    return worst


def sine_task(amplitude, phase, n, rng):
    x = rng.uniform(-3, 3, size=(n, 1)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy((amplitude * np.sin(x + phase)).astype(np.float32))


def hypernetwork(seed):
    target = TargetNet()
    names = [name for name, _ in target.named_parameters()]
    shapes = [p.shape for _, p in target.named_parameters()]
    sizes = [p.numel() for _, p in target.named_parameters()]
    print("target parameters:", names, [tuple(s) for s in shapes], sum(sizes))
    hyper = HyperNetwork(2, sum(sizes))
    optimizer = torch.optim.Adam(hyper.parameters(), lr=3e-3)
    rng = np.random.RandomState(1)

    def target_params(code):
        flat = hyper(code)
        chunks = torch.split(flat, sizes)
        return dict(zip(names, [w.view(shape) for w, shape in zip(chunks, shapes)]))

    for step in range(1, 401):
        amplitude, phase = rng.uniform(0.5, 2.0), rng.uniform(0, np.pi)
        x, y = sine_task(amplitude, phase, 32, rng)
        code = torch.tensor([amplitude, phase], dtype=torch.float32)
        prediction = functional_call(target, target_params(code), (x,))
        loss = F.mse_loss(prediction, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"step {step}: task loss {loss.item():.4f}")

    print("target weights untouched:", all(p.grad is None for p in target.parameters()))
    eval_rng = np.random.RandomState(2)
    losses = []
    with torch.no_grad():
        for _ in range(20):
            amplitude, phase = eval_rng.uniform(0.5, 2.0), eval_rng.uniform(0, np.pi)
            x, y = sine_task(amplitude, phase, 64, eval_rng)
            params = target_params(torch.tensor([amplitude, phase], dtype=torch.float32))
            losses.append(F.mse_loss(functional_call(target, params, (x,)), y).item())
        # the same weights loaded into the module give the same outputs
        target.load_state_dict(params)
        same = torch.allclose(target(x), functional_call(target, params, (x,)))
    print("functional_call equals load_state_dict:", same)
    return float(np.mean(losses))


def main():
    seed = int(os.environ.get("PROGRAM_SEED", "0"))
    torch.manual_seed(seed)
    ensemble_err = ensembling(seed)
    grad_err = per_sample_grads()
    task_loss = hypernetwork(seed)
    print(f"FINAL task_loss={task_loss:.4f} ensemble_ok={float(ensemble_err < 1e-4):.1f} "
          f"grads_ok={float(grad_err < 1e-5):.1f}")


if __name__ == "__main__":
    main()
