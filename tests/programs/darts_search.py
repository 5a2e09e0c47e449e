"""DARTS (Liu, Simonyan & Yang) as quark0/darts writes its search, at tiny sizes on 8x8 textures.

A search cell of ``MixedOp``s, each a ``sum(w * op(x) ...)`` over the candidate operations weighted
by ``F.softmax(alpha, dim=-1)``: the zero op (``x.mul(0.)``), ``nn.Identity``,
``nn.MaxPool2d(3, 1, 1)`` and ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)`` (each followed by an
``affine=False`` BatchNorm2d as the repo does) and a separable conv (depthwise ``groups=C`` + pointwise).
The architecture parameters ``alphas_normal`` are plain leaf tensors (``1e-3 * torch.randn(...)``,
``requires_grad=True``), kept out of ``model.parameters()`` and returned by ``arch_parameters()``.

The bilevel step is the repo's ``Architect`` with the second-order approximation: the unrolled model
``w' = w - xi * (momentum + dL_train/dw + wd * w)`` built by ``copy.deepcopy`` + ``load_state_dict``
of the flattened-then-``view``-ed parameters, ``torch.autograd.grad`` of the validation loss on it
with respect to its alphas and weights, the finite-difference Hessian-vector product
(``p.add_(v, alpha=R)``, ``p.sub_(v, alpha=2 * R)`` on the weights in place, ``autograd.grad`` on the
alphas at each side), ``alpha.grad`` set by hand, and ``Adam(betas=(0.5, 0.999), weight_decay=1e-3)``
on the architecture. The weights train by SGD with momentum + ``CosineAnnealingLR`` and
``clip_grad_norm_``. The finite difference is checked once against the exact mixed second derivative
by double backward. The genotype is read by ``argmax`` over the non-zero ops, edges ranked by their
strongest non-zero weight.

The data: 8x8 RGB textures (horizontal stripes, vertical stripes, checkerboard) with noise, made
with NumPy.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

PRIMITIVES = ["none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3"]
NUM_CLASSES = 3
SIZE = 8


def make_textures(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    labels = rng.integers(0, NUM_CLASSES, size=n)
    images = rng.normal(0.0, 0.6, size=(n, 3, SIZE, SIZE)).astype(np.float32)
    for i, label in enumerate(labels):
        phase = rng.integers(0, 2)
        if label == 0:
            pattern = ((yy + phase) % 2) * 2.0 - 1.0
        elif label == 1:
            pattern = ((xx + phase) % 2) * 2.0 - 1.0
        else:
            pattern = ((yy + xx + phase) % 2) * 2.0 - 1.0
        images[i] += 0.8 * pattern[None].astype(np.float32) * rng.uniform(0.5, 1.0, size=(3, 1, 1)).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels)


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.)
        return x[:, :, ::self.stride, ::self.stride].mul(0.)


class SepConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size=kernel_size, stride=stride, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size=kernel_size, stride=1, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class ReLUConvBN(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


OPS = {
    "none": lambda C, stride, affine: Zero(stride),
    "skip_connect": lambda C, stride, affine: nn.Identity(),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride, 1),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride, 1, count_include_pad=False),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
}


class MixedOp(nn.Module):
    def __init__(self, C, stride):
        super().__init__()
        self._ops = nn.ModuleList()
        for primitive in PRIMITIVES:
            op = OPS[primitive](C, stride, False)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class Cell(nn.Module):
    def __init__(self, steps, multiplier, C_prev_prev, C_prev, C):
        super().__init__()
        self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self._steps = steps
        self._multiplier = multiplier
        self._ops = nn.ModuleList()
        for i in range(self._steps):
            for _j in range(2 + i):
                self._ops.append(MixedOp(C, stride=1))

    def forward(self, s0, s1, weights):
        s0 = self.preprocess0(s0)
        s1 = self.preprocess1(s1)
        states = [s0, s1]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class Network(nn.Module):
    def __init__(self, C, num_classes, layers, criterion, steps=2, multiplier=2, stem_multiplier=2):
        super().__init__()
        self._C = C
        self._num_classes = num_classes
        self._layers = layers
        self._criterion = criterion
        self._steps = steps
        self._multiplier = multiplier
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        for _ in range(layers):
            cell = Cell(steps, multiplier, C_prev_prev, C_prev, C_curr)
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        self._initialize_alphas()

    def new(self):
        model_new = copy.deepcopy(self)
        for x, y in zip(model_new.arch_parameters(), self.arch_parameters()):
            x.data.copy_(y.data)
        return model_new

    def forward(self, input):
        s0 = s1 = self.stem(input)
        weights = F.softmax(self.alphas_normal, dim=-1)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))

    def _loss(self, input, target):
        return self._criterion(self(input), target)

    def _initialize_alphas(self):
        k = sum(1 for i in range(self._steps) for n in range(2 + i))
        self.alphas_normal = (1e-3 * torch.randn(k, len(PRIMITIVES))).requires_grad_(True)
        self._arch_parameters = [self.alphas_normal]

    def arch_parameters(self):
        return self._arch_parameters

    def genotype(self):
        none = PRIMITIVES.index("none")

        def _parse(weights):
            gene = []
            n, start = 2, 0
            for _ in range(self._steps):
                W = weights[start:start + n]
                strongest = torch.cat([W[:, :none], W[:, none + 1:]], dim=1).max(dim=1).values
                edges = torch.argsort(strongest, descending=True)[:2].tolist()
                for j in sorted(edges):
                    k_best = W[j, none + 1:].argmax().item() + none + 1
                    gene.append((k_best, j))
                start += n
                n += 1
            return gene

        return _parse(F.softmax(self.alphas_normal, dim=-1).detach())


def _concat(xs):
    return torch.cat([x.view(-1) for x in xs])


class Architect:
    def __init__(self, model, momentum, weight_decay, arch_learning_rate, arch_weight_decay):
        self.network_momentum = momentum
        self.network_weight_decay = weight_decay
        self.model = model
        self.optimizer = torch.optim.Adam(self.model.arch_parameters(), lr=arch_learning_rate,
                                          betas=(0.5, 0.999), weight_decay=arch_weight_decay)

    def _compute_unrolled_model(self, input, target, eta, network_optimizer):
        loss = self.model._loss(input, target)
        theta = _concat(self.model.parameters()).data
        try:
            moment = _concat(network_optimizer.state[v]["momentum_buffer"]
                             for v in self.model.parameters()).mul_(self.network_momentum)
        except KeyError:
            moment = torch.zeros_like(theta)
        dtheta = _concat(torch.autograd.grad(loss, self.model.parameters())).data + self.network_weight_decay * theta
        return self._construct_model_from_theta(theta.sub(moment + dtheta, alpha=eta))

    def _construct_model_from_theta(self, theta):
        model_new = self.model.new()
        model_dict = self.model.state_dict()
        params, offset = {}, 0
        for k, v in self.model.named_parameters():
            v_length = np.prod(v.size())
            params[k] = theta[offset: offset + v_length].view(v.size())
            offset += v_length
        assert offset == len(theta)
        model_dict.update(params)
        model_new.load_state_dict(model_dict)
        return model_new

    def step(self, input_train, target_train, input_valid, target_valid, eta, network_optimizer):
        self.optimizer.zero_grad()
        unrolled_loss = self._backward_step_unrolled(input_train, target_train, input_valid, target_valid,
                                                     eta, network_optimizer)
        self.optimizer.step()
        return unrolled_loss

    def _backward_step_unrolled(self, input_train, target_train, input_valid, target_valid, eta, network_optimizer):
        unrolled_model = self._compute_unrolled_model(input_train, target_train, eta, network_optimizer)
        unrolled_loss = unrolled_model._loss(input_valid, target_valid)
        arch = unrolled_model.arch_parameters()
        weights = list(unrolled_model.parameters())
        grads = torch.autograd.grad(unrolled_loss, arch + weights)
        dalpha = list(grads[:len(arch)])
        vector = [g.detach() for g in grads[len(arch):]]
        implicit_grads = self._hessian_vector_product(vector, input_train, target_train)
        for g, ig in zip(dalpha, implicit_grads):
            g.sub_(ig, alpha=eta)
        for v, g in zip(self.model.arch_parameters(), dalpha):
            if v.grad is None:
                v.grad = g.detach().clone()
            else:
                v.grad.copy_(g)
        return unrolled_loss.item()

    def _hessian_vector_product(self, vector, input, target, r=1e-2):
        R = r / _concat(vector).norm()
        with torch.no_grad():
            for p, v in zip(self.model.parameters(), vector):
                p.add_(v, alpha=R)
        loss = self.model._loss(input, target)
        grads_p = torch.autograd.grad(loss, self.model.arch_parameters())

        with torch.no_grad():
            for p, v in zip(self.model.parameters(), vector):
                p.sub_(v, alpha=2 * R)
        loss = self.model._loss(input, target)
        grads_n = torch.autograd.grad(loss, self.model.arch_parameters())

        with torch.no_grad():
            for p, v in zip(self.model.parameters(), vector):
                p.add_(v, alpha=R)
        return [(x - y).div_(2 * R) for x, y in zip(grads_p, grads_n)]


def exact_mixed_hvp(model, vector, input, target):
    """d/dalpha <dL/dw, v> by double backward: what the finite difference approximates."""
    loss = model._loss(input, target)
    grads_w = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
    inner = sum((g * v).sum() for g, v in zip(grads_w, vector))
    return torch.autograd.grad(inner, model.arch_parameters())


def accuracy(logits, target):
    return (logits.argmax(1) == target).float().mean().item()


train_x, train_y = make_textures(64)
valid_x, valid_y = make_textures(64)
test_x, test_y = make_textures(96)
print(f"data train {tuple(train_x.shape)} valid {tuple(valid_x.shape)} test {tuple(test_x.shape)}")

criterion = nn.CrossEntropyLoss()
model = Network(C=4, num_classes=NUM_CLASSES, layers=2, criterion=criterion)
n_weights = sum(p.numel() for p in model.parameters())
arch_ids = {id(a) for a in model.arch_parameters()}
print(f"weights {n_weights} in {len(list(model.parameters()))} tensors, alphas {tuple(model.alphas_normal.shape)}, "
      f"alphas in parameters() {any(id(p) in arch_ids for p in model.parameters())}, "
      f"is_leaf {model.alphas_normal.is_leaf}")

LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 3e-4
optimizer = torch.optim.SGD(model.parameters(), LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
EPOCHS, BATCH = 4, 16
steps_per_epoch = len(train_x) // BATCH
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS, eta_min=0.001)
architect = Architect(model, MOMENTUM, WEIGHT_DECAY, arch_learning_rate=3e-2, arch_weight_decay=1e-3)

# One check before training, in float64 on a copy (float32 and the repo's r = 1e-2 cross too many ReLU
# kinks to compare): the finite difference against the exact mixed second derivative.
model64 = copy.deepcopy(model).double()
for alpha in model64.arch_parameters():
    alpha.data = alpha.data.double()
architect64 = Architect(model64, MOMENTUM, WEIGHT_DECAY, arch_learning_rate=3e-2, arch_weight_decay=1e-3)
probe_vector = [torch.randn_like(p) for p in model64.parameters()]
probe_x, probe_y = train_x[:BATCH].double(), train_y[:BATCH]
fd = architect64._hessian_vector_product(probe_vector, probe_x, probe_y, r=1e-6)
exact = exact_mixed_hvp(model64, probe_vector, probe_x, probe_y)
fd_error = ((fd[0] - exact[0]).norm() / exact[0].norm()).item()
print(f"float64 finite-difference Hessian-vector product vs double backward: dtype {fd[0].dtype}, "
      f"relative error below 1e-5 {fd_error < 1e-5}")

for epoch in range(EPOCHS):
    lr = scheduler.get_last_lr()[0]
    model.train()
    order = torch.randperm(len(train_x))
    valid_order = torch.randperm(len(valid_x))
    total_loss = total_unrolled = total_acc = 0.0
    for step in range(steps_per_epoch):
        index = order[step * BATCH:(step + 1) * BATCH]
        valid_index = valid_order[step * BATCH:(step + 1) * BATCH]
        input, target = train_x[index], train_y[index]
        input_search, target_search = valid_x[valid_index], valid_y[valid_index]

        total_unrolled += architect.step(input, target, input_search, target_search, lr, optimizer)

        optimizer.zero_grad()
        logits = model(input)
        loss = criterion(logits, target)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        total_loss += loss.item()
        total_acc += accuracy(logits, target)
    scheduler.step()
    weights = F.softmax(model.alphas_normal, dim=-1)
    print(f"epoch {epoch} lr {lr:.4f} train_loss {total_loss / steps_per_epoch:.4f} "
          f"train_acc {total_acc / steps_per_epoch:.4f} unrolled_valid_loss {total_unrolled / steps_per_epoch:.4f} "
          f"alpha grad norm {model.alphas_normal.grad.norm().item():.4f} weight of none {weights[:, 0].mean().item():.4f}")

weights = F.softmax(model.alphas_normal, dim=-1).detach()
print("softmax(alpha) per edge", [[round(w, 3) for w in row] for row in weights.tolist()])
gene = model.genotype()
print("genotype (op index, input) per node", gene)
print("state Adam keys", sorted(architect.optimizer.state[model.alphas_normal].keys()))

model.eval()
with torch.no_grad():
    test_logits = model(test_x)
    test_loss = criterion(test_logits, test_y).item()
    test_acc = accuracy(test_logits, test_y)
    entropy = -(weights * weights.log()).sum(-1).mean().item()
no_none = float(all(k != PRIMITIVES.index("none") for k, _ in gene))
print(f"FINAL test_loss={test_loss:.4f} test_acc={test_acc:.4f} alpha_entropy={entropy:.4f} "
      f"max_weight={weights.max().item():.4f} fd_hvp_error={fd_error:.2e} genotype_without_none={no_none:.1f}")
