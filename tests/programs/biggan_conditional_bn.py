"""BigGAN (Brock et al., ICLR 2019) in the ajbrock/BigGAN-PyTorch layout (layers.py, BigGAN.py, utils.py,
train_fns.py, losses.py), as a class-conditional GAN on a 2-D mixture of four Gaussians.

Samples are 2-D points, carried through the networks as ``(N, 2, 1, 1)`` maps so the reference's conv
blocks keep their shape (1x1 convs, ``h.view(h.size(0), -1, self.bottom_width, self.bottom_width)``,
``torch.sum(self.activation(h), [2, 3])``). The pieces kept from the reference: ``ccbn`` class-conditional
batch norm (``gain = (1 + self.gain(y)).view(y.size(0), -1, 1, 1)``, ``F.batch_norm(x, self.stored_mean,
self.stored_var, None, None, self.training, 0.1, self.eps)``) built through ``functools.partial`` chains;
the shared class embedding ``self.shared = nn.Embedding(...)`` and hierarchical latents ``zs =
torch.split(z, self.z_chunk_size, 1)`` with ``torch.cat([y, item], 1)``; ``torch.nn.utils.spectral_norm`` on
every conv, linear and the projection discriminator's embedding (``out + torch.sum(self.embed(y) * h, 1,
keepdim=True)``); the ``G_D`` wrapper with ``torch.set_grad_enabled(train_G)`` and ``torch.split(D_out,
[G_z.shape[0], x.shape[0]])``; ``utils.Distribution``, a ``torch.Tensor`` subclass sampled in place by
``sample_()`` (``normal_``/``random_``) and moved by its ``to`` with ``new_obj.data = super().to(...)``;
``utils.ortho`` (``param.grad.data += strength * grad.view(param.shape)`` with a blacklist), ``toggle_grad``,
the hinge losses, Adam with ``betas=(0.0, 0.999)``, ``num_D_steps=2``, and ``utils.ema`` over
``state_dict()`` entries by ``p_ema.data.copy_(...)`` with ``start_itr``.

Checked: ``ortho``'s hand-written gradient is half of autograd's gradient of ``||W W^T (1 - I)||_F^2``
(``torch.allclose``), the spectral-normed weights have largest singular value ~1
(``torch.linalg.matrix_norm(ord=2)``), and the EMA generator, sampled per class, puts its points around
that class's centre (class accuracy by nearest centre, mean distance).
"""

# ruff: noqa: UP004, UP008, B006, B007  (the reference's own spelling: class X(object), super(X, self), [] defaults, unused loop indices)

import functools
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init
from torch.nn.utils import spectral_norm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_CLASSES = 4
CENTRES = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]], dtype=np.float32)


def make_data(n):
    y = rng.randint(0, N_CLASSES, size=n)
    x = CENTRES[y] + 0.08 * rng.randn(n, 2).astype(np.float32)
    return torch.from_numpy(x).view(n, 2, 1, 1), torch.from_numpy(y).long()


# ----------------------------------------------------------------------------------- layers.py
def SNConv2d(*args, **kwargs):
    return spectral_norm(nn.Conv2d(*args, **kwargs), eps=1e-6)


def SNLinear(*args, **kwargs):
    return spectral_norm(nn.Linear(*args, **kwargs), eps=1e-6)


def SNEmbedding(*args, **kwargs):
    return spectral_norm(nn.Embedding(*args, **kwargs), eps=1e-6)


class ccbn(nn.Module):
    def __init__(self, output_size, input_size, which_linear, eps=1e-5, momentum=0.1, norm_style="bn"):
        super(ccbn, self).__init__()
        self.output_size, self.input_size = output_size, input_size
        # Prepare gain and bias layers
        self.gain = which_linear(input_size, output_size)
        self.bias = which_linear(input_size, output_size)
        # epsilon to avoid dividing by 0
        self.eps = eps
        # Momentum
        self.momentum = momentum
        # Norm style?
        self.norm_style = norm_style
        if self.norm_style in ["bn", "in"]:
            self.register_buffer("stored_mean", torch.zeros(output_size))
            self.register_buffer("stored_var", torch.ones(output_size))

    def forward(self, x, y):
        # Calculate class-conditional gains and biases
        gain = (1 + self.gain(y)).view(y.size(0), -1, 1, 1)
        bias = self.bias(y).view(y.size(0), -1, 1, 1)
        if self.norm_style == "bn":
            out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, self.eps)
        else:
            out = F.instance_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, self.eps)
        return out * gain + bias

    def extra_repr(self):
        s = "out: {output_size}, in: {input_size},"
        return s.format(**self.__dict__)


class bn(nn.Module):
    def __init__(self, output_size, eps=1e-5, momentum=0.1):
        super(bn, self).__init__()
        self.output_size = output_size
        self.gain = nn.Parameter(torch.ones(output_size), requires_grad=True)
        self.bias = nn.Parameter(torch.zeros(output_size), requires_grad=True)
        self.eps = eps
        self.momentum = momentum
        self.register_buffer("stored_mean", torch.zeros(output_size))
        self.register_buffer("stored_var", torch.ones(output_size))

    def forward(self, x, y=None):
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias, self.training, self.momentum, self.eps)


class GBlock(nn.Module):
    def __init__(self, in_channels, out_channels, which_conv=nn.Conv2d, which_bn=bn, activation=None):
        super(GBlock, self).__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.which_conv, self.which_bn = which_conv, which_bn
        self.activation = activation
        self.conv1 = self.which_conv(self.in_channels, self.out_channels)
        self.conv2 = self.which_conv(self.out_channels, self.out_channels)
        self.learnable_sc = in_channels != out_channels
        if self.learnable_sc:
            self.conv_sc = self.which_conv(in_channels, out_channels, kernel_size=1, padding=0)
        self.bn1 = self.which_bn(in_channels)
        self.bn2 = self.which_bn(out_channels)

    def forward(self, x, y):
        h = self.activation(self.bn1(x, y))
        h = self.conv1(h)
        h = self.activation(self.bn2(h, y))
        h = self.conv2(h)
        if self.learnable_sc:
            x = self.conv_sc(x)
        return h + x


class DBlock(nn.Module):
    def __init__(self, in_channels, out_channels, which_conv=SNConv2d, preactivation=False, activation=None):
        super(DBlock, self).__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hidden_channels = self.out_channels
        self.which_conv = which_conv
        self.preactivation = preactivation
        self.activation = activation
        self.conv1 = self.which_conv(self.in_channels, self.hidden_channels)
        self.conv2 = self.which_conv(self.hidden_channels, self.out_channels)
        self.learnable_sc = True if (in_channels != out_channels) else False
        if self.learnable_sc:
            self.conv_sc = self.which_conv(in_channels, out_channels, kernel_size=1, padding=0)

    def shortcut(self, x):
        if self.preactivation:
            if self.learnable_sc:
                x = self.conv_sc(x)
        else:
            if self.learnable_sc:
                x = self.conv_sc(x)
        return x

    def forward(self, x):
        if self.preactivation:
            h = F.relu(x)
        else:
            h = x
        h = self.conv1(h)
        h = self.conv2(self.activation(h))
        return h + self.shortcut(x)


# ----------------------------------------------------------------------------------- BigGAN.py
class Generator(nn.Module):
    def __init__(self, G_ch=16, dim_z=12, bottom_width=1, n_classes=N_CLASSES, shared_dim=4, hier=True,
                 num_G_SVs=1, G_lr=1e-3, G_B1=0.0, G_B2=0.999, adam_eps=1e-8, G_init="ortho", skip_init=False):
        super(Generator, self).__init__()
        self.ch = G_ch
        self.dim_z = dim_z
        self.bottom_width = bottom_width
        self.n_classes = n_classes
        self.hier = hier
        self.init = G_init
        self.shared_dim = shared_dim
        self.arch = {"in_channels": [G_ch * 2, G_ch * 2], "out_channels": [G_ch * 2, G_ch]}
        if self.hier:
            self.num_slots = len(self.arch["in_channels"]) + 1
            self.z_chunk_size = self.dim_z // self.num_slots
            self.dim_z = self.z_chunk_size * self.num_slots
        else:
            self.num_slots = 1
            self.z_chunk_size = 0
        self.activation = nn.ReLU(inplace=False)
        self.which_conv = functools.partial(SNConv2d, kernel_size=1, padding=0)
        self.which_linear = SNLinear
        bn_linear = functools.partial(self.which_linear, bias=False)
        self.which_bn = functools.partial(ccbn, which_linear=bn_linear,
                                          input_size=(self.shared_dim + self.z_chunk_size if self.hier else n_classes))
        self.shared = nn.Embedding(n_classes, self.shared_dim)
        self.linear = self.which_linear(self.dim_z // self.num_slots, self.arch["in_channels"][0] * (self.bottom_width**2))
        self.blocks = []
        for index in range(len(self.arch["out_channels"])):
            self.blocks += [[GBlock(in_channels=self.arch["in_channels"][index], out_channels=self.arch["out_channels"][index],
                                    which_conv=self.which_conv, which_bn=self.which_bn, activation=self.activation)]]
        self.blocks = nn.ModuleList([nn.ModuleList(block) for block in self.blocks])
        self.output_layer = nn.Sequential(bn(self.arch["out_channels"][-1]), self.activation,
                                          self.which_conv(self.arch["out_channels"][-1], 2))
        if not skip_init:
            self.init_weights()
        self.lr, self.B1, self.B2, self.adam_eps = G_lr, G_B1, G_B2, adam_eps
        self.optim = torch.optim.Adam(params=self.parameters(), lr=self.lr, betas=(self.B1, self.B2), weight_decay=0,
                                      eps=self.adam_eps)

    def init_weights(self):
        self.param_count = 0
        for module in self.modules():
            if isinstance(module, nn.Conv2d) or isinstance(module, nn.Linear) or isinstance(module, nn.Embedding):
                if self.init == "ortho":
                    init.orthogonal_(module.weight)
                elif self.init == "N02":
                    init.normal_(module.weight, 0, 0.02)
                self.param_count += sum([p.data.nelement() for p in module.parameters()])
        print(f"Param count for G's initialized parameters: {self.param_count}")

    def forward(self, z, y):
        if self.hier:
            zs = torch.split(z, self.z_chunk_size, 1)
            z = zs[0]
            ys = [torch.cat([y, item], 1) for item in zs[1:]]
        else:
            ys = [y] * len(self.blocks)
        h = self.linear(z)
        h = h.view(h.size(0), -1, self.bottom_width, self.bottom_width)
        for index, blocklist in enumerate(self.blocks):
            for block in blocklist:
                h = block(h, ys[index])
        return torch.tanh(self.output_layer(h))


class Discriminator(nn.Module):
    def __init__(self, D_ch=16, n_classes=N_CLASSES, D_lr=2e-3, D_B1=0.0, D_B2=0.999, adam_eps=1e-8, D_init="ortho"):
        super(Discriminator, self).__init__()
        self.ch = D_ch
        self.n_classes = n_classes
        self.init = D_init
        self.activation = nn.ReLU(inplace=False)
        self.arch = {"in_channels": [2, D_ch], "out_channels": [D_ch, D_ch * 2]}
        self.which_conv = functools.partial(SNConv2d, kernel_size=1, padding=0)
        self.which_linear = SNLinear
        self.which_embedding = SNEmbedding
        self.blocks = []
        for index in range(len(self.arch["out_channels"])):
            self.blocks += [[DBlock(in_channels=self.arch["in_channels"][index], out_channels=self.arch["out_channels"][index],
                                    which_conv=self.which_conv, activation=self.activation, preactivation=(index > 0))]]
        self.blocks = nn.ModuleList([nn.ModuleList(block) for block in self.blocks])
        self.linear = self.which_linear(self.arch["out_channels"][-1], 1)
        self.embed = self.which_embedding(self.n_classes, self.arch["out_channels"][-1])
        self.init_weights()
        self.lr, self.B1, self.B2, self.adam_eps = D_lr, D_B1, D_B2, adam_eps
        self.optim = torch.optim.Adam(params=self.parameters(), lr=self.lr, betas=(self.B1, self.B2), weight_decay=0,
                                      eps=self.adam_eps)

    def init_weights(self):
        self.param_count = 0
        for module in self.modules():
            if isinstance(module, nn.Conv2d) or isinstance(module, nn.Linear) or isinstance(module, nn.Embedding):
                if self.init == "ortho":
                    init.orthogonal_(module.weight)
                self.param_count += sum([p.data.nelement() for p in module.parameters()])
        print(f"Param count for D's initialized parameters: {self.param_count}")

    def forward(self, x, y=None):
        h = x
        for index, blocklist in enumerate(self.blocks):
            for block in blocklist:
                h = block(h)
        h = torch.sum(self.activation(h), [2, 3])
        out = self.linear(h)
        out = out + torch.sum(self.embed(y) * h, 1, keepdim=True)
        return out


class G_D(nn.Module):
    def __init__(self, G, D):
        super(G_D, self).__init__()
        self.G = G
        self.D = D

    def forward(self, z, gy, x=None, dy=None, train_G=False, return_G_z=False, split_D=False):
        with torch.set_grad_enabled(train_G):
            G_z = self.G(z, self.G.shared(gy))
        D_input = torch.cat([G_z, x], 0) if x is not None else G_z
        D_class = torch.cat([gy, dy], 0) if dy is not None else gy
        D_out = self.D(D_input, D_class)
        if x is not None:
            return torch.split(D_out, [G_z.shape[0], x.shape[0]])
        else:
            if return_G_z:
                return D_out, G_z
            else:
                return D_out


# ----------------------------------------------------------------------------------- losses.py
def loss_hinge_dis(dis_fake, dis_real):
    loss_real = torch.mean(F.relu(1.0 - dis_real))
    loss_fake = torch.mean(F.relu(1.0 + dis_fake))
    return loss_real, loss_fake


def loss_hinge_gen(dis_fake):
    loss = -torch.mean(dis_fake)
    return loss


generator_loss = loss_hinge_gen
discriminator_loss = loss_hinge_dis


# ----------------------------------------------------------------------------------- utils.py
def toggle_grad(model, on_or_off):
    for param in model.parameters():
        param.requires_grad = on_or_off


def ortho(model, strength=1e-4, blacklist=[]):
    with torch.no_grad():
        for param in model.parameters():
            # Only apply this to parameters with at least 2 axes, and not in the blacklist
            if len(param.shape) < 2 or any([param is item for item in blacklist]):
                continue
            w = param.view(param.shape[0], -1)
            grad = 2 * torch.mm(torch.mm(w, w.t()) * (1.0 - torch.eye(w.shape[0], device=w.device)), w)
            param.grad.data += strength * grad.view(param.shape)


class ema(object):
    def __init__(self, source, target, decay=0.9999, start_itr=0):
        self.source = source
        self.target = target
        self.decay = decay
        # Optional parameter indicating what iteration to start the decay at
        self.start_itr = start_itr
        # Initialize target's params to be source's
        self.source_dict = self.source.state_dict()
        self.target_dict = self.target.state_dict()
        print("Initializing EMA parameters to be source parameters...")
        with torch.no_grad():
            for key in self.source_dict:
                self.target_dict[key].data.copy_(self.source_dict[key].data)

    def update(self, itr=None):
        # If an iteration counter is provided and itr is less than the start itr,
        # peg the ema weights to the underlying weights.
        if itr and itr < self.start_itr:
            decay = 0.0
        else:
            decay = self.decay
        with torch.no_grad():
            for key in self.source_dict:
                self.target_dict[key].data.copy_(self.target_dict[key].data * decay + self.source_dict[key].data * (1 - decay))


class Distribution(torch.Tensor):
    # Init the params of the distribution
    def init_distribution(self, dist_type, **kwargs):
        self.dist_type = dist_type
        self.dist_kwargs = kwargs
        if self.dist_type == "normal":
            self.mean, self.var = kwargs["mean"], kwargs["var"]
        elif self.dist_type == "categorical":
            self.num_categories = kwargs["num_categories"]

    def sample_(self):
        if self.dist_type == "normal":
            self.normal_(self.mean, self.var)
        elif self.dist_type == "categorical":
            self.random_(0, self.num_categories)

    # Silly hack: overwrite the to() method to wrap the new object
    # in a distribution as well
    def to(self, *args, **kwargs):
        new_obj = Distribution(self)
        new_obj.init_distribution(self.dist_type, **self.dist_kwargs)
        new_obj.data = super().to(*args, **kwargs)
        return new_obj


def prepare_z_y(G_batch_size, dim_z, nclasses, device="cpu", fp16=False, z_var=1.0):
    z_ = Distribution(torch.randn(G_batch_size, dim_z, requires_grad=False))
    z_.init_distribution("normal", mean=0, var=z_var)
    z_ = z_.to(device, torch.float16 if fp16 else torch.float32)

    if fp16:
        z_ = z_.half()

    y_ = Distribution(torch.zeros(G_batch_size, requires_grad=False))
    y_.init_distribution("categorical", num_categories=nclasses)
    y_ = y_.to(device, torch.int64)
    return z_, y_


# ----------------------------------------------------------------------------------- train_fns.py
def GAN_training_function(G, D, GD, z_, y_, ema, state_dict, config):
    def train(x, y):
        G.optim.zero_grad()
        D.optim.zero_grad()
        # How many chunks to split x and y into?
        x = torch.split(x, config["batch_size"])
        y = torch.split(y, config["batch_size"])
        counter = 0

        # Optionally toggle D and G's "require_grad"
        if config["toggle_grads"]:
            toggle_grad(D, True)
            toggle_grad(G, False)

        for step_index in range(config["num_D_steps"]):
            # If accumulating gradients, loop multiple times before an optimizer step
            D.optim.zero_grad()
            for accumulation_index in range(config["num_D_accumulations"]):
                z_.sample_()
                y_.sample_()
                D_fake, D_real = GD(z_[: config["batch_size"]], y_[: config["batch_size"]], x[counter], y[counter], train_G=False)
                # Compute components of D's loss, average them, and divide by the number of gradient accumulations
                D_loss_real, D_loss_fake = discriminator_loss(D_fake, D_real)
                D_loss = (D_loss_real + D_loss_fake) / float(config["num_D_accumulations"])
                D_loss.backward()
                counter += 1

            # Optionally apply ortho reg in D
            if config["D_ortho"] > 0.0:
                ortho(D, config["D_ortho"])

            D.optim.step()

        # Optionally toggle "requires_grad"
        if config["toggle_grads"]:
            toggle_grad(D, False)
            toggle_grad(G, True)

        # Zero G's gradients by default before training G, for safety
        G.optim.zero_grad()

        # If accumulating gradients, loop multiple times
        for accumulation_index in range(config["num_G_accumulations"]):
            z_.sample_()
            y_.sample_()
            D_fake = GD(z_, y_, train_G=True)
            G_loss = generator_loss(D_fake) / float(config["num_G_accumulations"])
            G_loss.backward()

        # Optionally apply modified ortho reg in G
        if config["G_ortho"] > 0.0:
            ortho(G, config["G_ortho"], blacklist=[param for param in G.shared.parameters()])
        G.optim.step()

        # If we have an ema, update it, regardless of if we test with it or not
        if config["ema"]:
            ema.update(state_dict["itr"])

        out = {"G_loss": float(G_loss.item()), "D_loss_real": float(D_loss_real.item()), "D_loss_fake": float(D_loss_fake.item())}
        return out

    return train


# ----------------------------------------------------------------------------------- ortho against autograd
w = torch.randn(6, 5, requires_grad=True)
penalty = ((w @ w.t()) * (1.0 - torch.eye(6))).pow(2).sum()
(autograd_grad,) = torch.autograd.grad(penalty, w)
probe = nn.Linear(5, 6, bias=False)
with torch.no_grad():
    probe.weight.copy_(w)
probe.weight.grad = torch.zeros_like(probe.weight)
ortho(probe, strength=1.0)
ortho_ok = torch.allclose(2 * probe.weight.grad, autograd_grad, rtol=1e-4, atol=1e-5)
print(f"utils.ortho == autograd of ||W W^T (1 - I)||^2 / 2: {ortho_ok}")

# ----------------------------------------------------------------------------------- training
config = {"batch_size": 64, "num_D_steps": 2, "num_D_accumulations": 1, "num_G_accumulations": 1, "toggle_grads": True,
          "D_ortho": 0.0, "G_ortho": 1e-4, "ema": True, "ema_decay": 0.95, "ema_start": 20, "total_itrs": 150}

G = Generator()
D = Discriminator()
G_ema = Generator(skip_init=True)
ema_ = ema(G, G_ema, config["ema_decay"], config["ema_start"])
GD = G_D(G, D)
print(f"G: {sum(p.numel() for p in G.parameters())} parameters, z_chunk_size {G.z_chunk_size}, "
      f"{len([k for k in G.state_dict() if k.endswith('weight_u')])} spectral norms")

z_, y_ = prepare_z_y(config["batch_size"], G.dim_z, N_CLASSES)
print(f"z_ is a {type(z_).__name__} of {tuple(z_.shape)} {z_.dtype}, y_ {tuple(y_.shape)} {y_.dtype}")
state_dict = {"itr": 0, "epoch": 0}
train = GAN_training_function(G, D, GD, z_, y_, ema_, state_dict, config)

data_x, data_y = make_data(config["batch_size"] * config["num_D_steps"] * config["total_itrs"])
chunk = config["batch_size"] * config["num_D_steps"]
G.train()
D.train()
history = []
for i in range(config["total_itrs"]):
    state_dict["itr"] += 1
    metrics = train(data_x[i * chunk : (i + 1) * chunk], data_y[i * chunk : (i + 1) * chunk])
    history.append(metrics)
    if state_dict["itr"] % 50 == 0:
        print(f"itr: {state_dict['itr']}, " + ", ".join(f"{k} : {np.mean([h[k] for h in history[-50:]]):+.3f}" for k in metrics))

# ----------------------------------------------------------------------------------- evaluation
sigmas = [torch.linalg.matrix_norm(m.weight.detach().view(m.weight.shape[0], -1), ord=2).item()
          for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
sn_ok = all(0.8 < s < 1.2 for s in sigmas)
print(f"D spectral norms in [{min(sigmas):.3f}, {max(sigmas):.3f}] ~ 1: {sn_ok}")

G_ema.eval()
centres = torch.from_numpy(CENTRES)
with torch.no_grad():
    y_eval = torch.arange(N_CLASSES).repeat_interleave(64)
    z_eval = torch.randn(y_eval.size(0), G_ema.dim_z)
    samples = G_ema(z_eval, G_ema.shared(y_eval)).view(-1, 2)
    nearest = torch.cdist(samples, centres).argmin(1)
    class_acc = (nearest == y_eval).float().mean().item()
    own_dist = (samples - centres[y_eval]).norm(dim=1).mean().item()
print(f"G_ema samples: class accuracy {class_acc:.3f}, mean distance to own centre {own_dist:.3f}")
print(f"FINAL class_acc={class_acc:.4f} own_dist={own_dist:.4f} d_loss_real={np.mean([h['D_loss_real'] for h in history[-50:]]):.4f} "
      f"checks_ok={int(ortho_ok and sn_ok)}")
