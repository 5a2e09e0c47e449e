"""One training step of an MLP, a CNN, a GRU and a transformer block, with SGD and AdamW, on
'cuda' (the stand-in): the same parameters as on the CPU afterwards, and no host<->device copy
during the step (forward, loss, backward, optimizer step)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import chainrule
from chainrule import nn
from chainrule.nn import functional as F


class _LastStep(nn.Module):
    """GRU over a sequence, a linear head on the last step."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(5, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


class _Block(nn.Module):
    """A transformer encoder block (attention, layer norm, GELU MLP), mean-pooled, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        # bias=False: the key projection's bias has an analytically zero gradient (softmax ignores a
        # shift shared by all keys), and Adam's m/√v turns its rounding noise into full-size steps
        # that differ between any two evaluation orders, so it cannot be compared across devices
        self.block = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation="gelu",
                                                batch_first=True, bias=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.block(x).mean(dim=1))


def _mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)), (4, 6)


def _cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 3)), (4, 2, 6, 6)


MODELS = {
    "mlp": _mlp,
    "cnn": _cnn,
    "gru": lambda: (_LastStep(), (4, 7, 5)),
    "transformer": lambda: (_Block(), (4, 5, 8)),
}
OPTIMIZERS = {
    "sgd": lambda params: chainrule.optim.SGD(params, lr=0.1, momentum=0.9),
    "adamw": lambda params: chainrule.optim.AdamW(params, lr=0.01),
}


def _step(model, optimizer, x, y) -> chainrule.Tensor:
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def train_on_cpu_and_device(standin, make_model, make_optimizer, device: chainrule.device) -> None:
    """Two training steps of one model on the CPU and of its copy on ``device``: the same losses and
    parameters, no host<->device copy during a device step, and the parameters, their gradients and
    the optimizer's state on ``device`` (test_multi_gpu.py runs it on a second GPU)."""
    chainrule.manual_seed(0)
    model, shape = make_model()
    rng = np.random.default_rng(0)
    x = chainrule.tensor(rng.standard_normal(shape).astype(np.float32))
    y = chainrule.tensor(rng.integers(0, 3, shape[0]))
    on_device = copy.deepcopy(model).to(device)
    cpu_optimizer, device_optimizer = make_optimizer(model.parameters()), make_optimizer(on_device.parameters())
    x_device, y_device = x.to(device), y.to(device)
    for _ in range(2):  # the second step runs with the optimizer state in place
        cpu_loss = _step(model, cpu_optimizer, x, y)
        standin.reset_transfers()
        device_loss = _step(on_device, device_optimizer, x_device, y_device)
        assert standin.transfers() == 0, f"{standin.transfers()} host<->device copies in one training step"
        assert device_loss.device == device
        np.testing.assert_allclose(device_loss.item(), cpu_loss.item(), rtol=1e-5)
    for (name, p), q in zip(model.named_parameters(), on_device.parameters()):
        assert q.device == device and q.grad.device == device, name
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    for state in device_optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, chainrule.Tensor) and key != "step":
                assert value.device == device, key  # state lives on the parameter's device


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("make_model", MODELS.values(), ids=MODELS.keys())
def test_training_step_on_device(cuda, make_model, make_optimizer):
    train_on_cpu_and_device(cuda, make_model, make_optimizer, chainrule.device("cuda:0"))
