"""Model code shared by the fx tests: each builder takes the library (torch or chainrule), so the
same source is traced by torch.fx and by chainrule.fx and the results compared."""

import math

import numpy as np


def copy_weights(torch_model, chainrule_model, chainrule):
    """Gives the chainrule model the torch model's parameters and buffers."""
    state = {k: chainrule.tensor(v.detach().numpy()) for k, v in torch_model.state_dict().items()}
    chainrule_model.load_state_dict(state)


def normalised_name(target) -> str:
    """A call target's name with the library left out: torch.relu and chainrule's relu agree."""
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", repr(target))


def structure(graph_module):
    """(op, name, target, args) of each node, nodes written as their names: comparable across
    the two libraries."""
    def plain(arg):
        if hasattr(arg, "op") and hasattr(arg, "users"):
            return ("%", arg.name)
        if isinstance(arg, (list, tuple)):
            return type(arg)(plain(a) for a in arg) if not hasattr(arg, "_fields") else tuple(map(plain, arg))
        if isinstance(arg, dict):
            return {k: plain(v) for k, v in arg.items()}
        return arg

    return [(n.op, n.name, normalised_name(n.target), plain(n.args), plain(n.kwargs))
            for n in graph_module.graph.nodes]


def mlp(lib):
    nn = lib.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(6, 8)
            self.act = nn.Tanh()
            self.layers = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
            self.scale = nn.Parameter(lib.ones(3) * 0.5)

        def forward(self, x, bias=1.0):
            h = self.act(self.hidden(x))
            h = self.layers(h) * self.scale + bias
            return h.softmax(dim=-1)

    return MLP()


def basic_block(lib):
    nn = lib.nn

    class BasicBlock(nn.Module):
        def __init__(self, channels=4):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    class TinyResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.layer1 = nn.Sequential(BasicBlock(), BasicBlock())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            x = self.layer1(self.stem(x))
            x = self.pool(x)
            x = x.view(x.shape[0], -1)
            return self.fc(x)

    return TinyResNet()


def with_functions(lib):
    """Calls of library functions (torch.flatten, F.relu, torch.cat): these reach the Proxy only
    through the __torch_function__ protocol."""
    nn = lib.nn
    F = lib.nn.functional

    class WithFunctions(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3)
            self.fc = nn.Linear(2 * 3 * 4 * 4, 4)

        def forward(self, x):
            h = F.relu(self.conv(x))
            h = lib.cat([h, h.neg()], dim=1)
            return self.fc(lib.flatten(h, 1))

    return WithFunctions()


def methods_and_kwargs(lib):
    nn = lib.nn

    class MethodsAndKwargs(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)
            self.register_buffer("offset", lib.arange(4.0))

        def forward(self, x, *, temperature=2.0):
            batch = x.size(0)
            h = self.proj(x).view(batch, 2, 2)
            h = h.sum(dim=1, keepdim=True) / temperature
            h = h.transpose(1, 2)
            n = getattr(h, "shape")[-1]  # noqa: B009 - the getattr builtin is what is traced here
            return h.reshape(batch, -1) * n + math.sqrt(temperature)

    return MethodsAndKwargs()


def random_inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def recurrent_attention(lib):
    """Leaves returning tuples (unpacked, nested), a keyword to a leaf, a *inputs signature."""
    nn = lib.nn

    class RecurrentAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(3, 4, batch_first=True)
            self.attn = nn.MultiheadAttention(4, 2, batch_first=True)

        def forward(self, *inputs):
            x = inputs[0]
            out, (h, c) = self.rnn(x)
            attended, _ = self.attn(out, out, out, need_weights=False)
            return attended + h[-1].unsqueeze(1)

    return RecurrentAttention()


def trace_both(builder):
    """``builder``'s model traced on torch and on chainrule, with torch's weights copied into ours."""
    import torch

    import chainrule

    torch.manual_seed(0)
    reference = builder(torch)
    ours = builder(chainrule)
    copy_weights(reference, ours, chainrule)
    return torch.fx.symbolic_trace(reference), chainrule.fx.symbolic_trace(ours)
