"""Custom ``torch.autograd.Function``s, as in the "Extending PyTorch" notes, used in training.

A linear function with its own backward (``save_for_backward``, ``needs_input_grad``), a
straight-through sign estimator, and an exp that saves its output; ``gradcheck`` in float64
before training a small regression net built from them.
"""

import os

import numpy as np
import torch
import torch.nn as nn
from torch.autograd import Function, gradcheck

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class LinearFunction(Function):
    @staticmethod
    def forward(ctx, input, weight, bias=None):
        ctx.save_for_backward(input, weight, bias)
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias


class SignSTE(Function):
    """sign(x) forward; the gradient passes straight through where |x| <= 1."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.sign()

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * (input.abs() <= 1).to(grad_output.dtype)


class Exp(Function):
    @staticmethod
    def forward(ctx, i):
        result = i.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        (result,) = ctx.saved_tensors
        return grad_output * result


class MyLinear(nn.Module):
    def __init__(self, input_features, output_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(output_features, input_features))
        self.bias = nn.Parameter(torch.empty(output_features))
        nn.init.uniform_(self.weight, -0.3, 0.3)
        nn.init.uniform_(self.bias, -0.1, 0.1)

    def forward(self, input):
        return LinearFunction.apply(input, self.weight, self.bias)


inputs = (torch.randn(6, 4, dtype=torch.double, requires_grad=True),
          torch.randn(3, 4, dtype=torch.double, requires_grad=True),
          torch.randn(3, dtype=torch.double, requires_grad=True))
print("gradcheck LinearFunction:", gradcheck(LinearFunction.apply, inputs, eps=1e-6, atol=1e-4))
x = torch.randn(5, dtype=torch.double, requires_grad=True)
print("gradcheck Exp:", gradcheck(Exp.apply, (x,), eps=1e-6, atol=1e-4))

# regression target: a smooth function of 4 inputs
rng = np.random.RandomState(0)
features = torch.from_numpy(rng.randn(512, 4).astype(np.float32))
targets = (features[:, :1] * features[:, 1:2] + torch.sin(features[:, 2:3]) - 0.5 * features[:, 3:]).detach()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = MyLinear(4, 32)
        self.gate = MyLinear(4, 32)
        self.out = MyLinear(32, 1)

    def forward(self, x):
        # a hard-gated unit: tanh features switched by a binary (straight-through) gate
        h = torch.tanh(self.hidden(x)) * (SignSTE.apply(self.gate(x)) + 1) / 2
        return self.out(h)


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for step in range(1, 301):
    index = torch.randint(0, 512, (64,))
    prediction = model(features[index])
    loss = ((prediction - targets[index]) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step} loss {loss.item():.4f}")

with torch.no_grad():
    full_loss = ((model(features) - targets) ** 2).mean().item()
    scale = Exp.apply(torch.tensor([0.0, 1.0])).sum().item()
print(f"exp check {scale:.4f}")
print(f"FINAL loss={full_loss:.4f}")
