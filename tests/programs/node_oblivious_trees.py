"""NODE, Neural Oblivious Decision Ensembles (Popov et al., ICLR 2020), in the layout of Qwicen/node's
``lib/nn_utils.py`` and ``lib/odst.py``, on a synthetic tabular regression task.

``sparsemax`` and ``entmax15`` are ``autograd.Function``s whose forward finds the threshold by
``torch.sort(descending=True)`` + ``cumsum`` (``_make_ix_like`` ranks, ``gather`` of the support size)
and saves the output (``ctx.save_for_backward``); the backward uses only it: ``gppr = Y > 0`` (sparsemax)
or ``Y.sqrt()`` (entmax15), ``dX = dY * gppr``, ``q = dX.sum(dim) / gppr.sum(dim)``. ``Entmoid15`` is the
closed-form two-way entmax with ``@torch.jit.script`` helpers (``masked_fill_``, ``F.relu(..., inplace=True)``,
``torch.where``). Both mappings are checked by ``gradcheck`` in float64 and against plain autograd through
a by-hand version that bisects the threshold under ``no_grad`` and takes one differentiable Newton step.

``ODST`` is a ``ModuleWithInit`` (an ``_is_initialized_tensor`` uint8 parameter, data-aware init on the
first call): ``feature_selection_logits`` through entmax15 over features, ``torch.einsum('bi,ind->bnd')``,
``feature_thresholds`` and ``log_temperatures`` filled with ``nan`` until ``initialize`` sets them from
``np.percentile`` of beta-random quantiles (checked against ``torch.quantile``), ``bin_codes_1hot`` from
``torch.arange(2 ** depth)`` and ``offsets = 2 ** torch.arange(depth)`` bit tricks,
``torch.einsum('btds,dcs->btdc', ...)``, ``torch.prod(..., dim=-2)`` response weights and
``torch.einsum('bnd,ncd->bnc', ...)``. A ``DenseBlock(nn.Sequential)`` concatenates the tree outputs,
``Lambda(lambda x: x[..., 0].mean(dim=-1))`` averages them; Adam on MSE against a linear model.

Checked: NODE's test MSE against the linear model's; the two gradient routes, ``gradcheck``, the
response weights summing to one, and percentile == quantile initialisation.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Function
from torch.jit import script

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


def check_numpy(x):
    """Makes sure x is a numpy array"""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    assert isinstance(x, np.ndarray)
    return x


def _make_ix_like(input, dim=0):
    d = input.size(dim)
    rho = torch.arange(1, d + 1, device=input.device, dtype=input.dtype)
    view = [1] * input.dim()
    view[0] = -1
    return rho.view(view).transpose(0, dim)


class SparsemaxFunction(Function):
    """
    An implementation of sparsemax (Martins & Astudillo, 2016). See
    :cite:`DBLP:journals/corr/MartinsA16` for detailed description.
    """

    @staticmethod
    def forward(ctx, input, dim=-1):
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input = input - max_val  # same numerical stability trick as for softmax
        tau, supp_size = SparsemaxFunction._threshold_and_support(input, dim=dim)
        output = torch.clamp(input - tau, min=0)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (Y,) = ctx.saved_tensors
        gppr = (Y > 0).to(grad_output.dtype)
        dX = grad_output * gppr
        q = dX.sum(ctx.dim) / gppr.sum(ctx.dim)
        q = q.unsqueeze(ctx.dim)
        dX -= q * gppr
        return dX, None

    @staticmethod
    def _threshold_and_support(input, dim=-1):
        input_srt, _ = torch.sort(input, descending=True, dim=dim)
        input_cumsum = input_srt.cumsum(dim) - 1
        rhos = _make_ix_like(input, dim)
        support = rhos * input_srt > input_cumsum

        support_size = support.sum(dim=dim).unsqueeze(dim)
        tau = input_cumsum.gather(dim, support_size - 1)
        tau /= support_size.to(input.dtype)
        return tau, support_size


def sparsemax(input, dim=-1):
    return SparsemaxFunction.apply(input, dim)


class Entmax15Function(Function):
    """
    An implementation of exact Entmax with alpha=1.5 (B. Peters, V. Niculae, A. Martins). See
    :cite:`https://arxiv.org/abs/1905.05702 for detailed description.
    Source: https://github.com/deep-spin/entmax
    """

    @staticmethod
    def forward(ctx, input, dim=-1):
        ctx.dim = dim

        max_val, _ = input.max(dim=dim, keepdim=True)
        input = input - max_val  # same numerical stability trick as for softmax
        input = input / 2  # divide by 2 to solve actual Entmax

        tau_star, _ = Entmax15Function._threshold_and_support(input, dim)
        output = torch.clamp(input - tau_star, min=0) ** 2
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (Y,) = ctx.saved_tensors
        gppr = Y.sqrt()  # = 1 / g'' (Y)
        dX = grad_output * gppr
        q = dX.sum(ctx.dim) / gppr.sum(ctx.dim)
        q = q.unsqueeze(ctx.dim)
        dX -= q * gppr
        return dX, None

    @staticmethod
    def _threshold_and_support(input, dim=-1):
        Xsrt, _ = torch.sort(input, descending=True, dim=dim)

        rho = _make_ix_like(input, dim)
        mean = Xsrt.cumsum(dim) / rho
        mean_sq = (Xsrt**2).cumsum(dim) / rho
        ss = rho * (mean_sq - mean**2)
        delta = (1 - ss) / rho

        # NOTE this is not exactly the same as in reference algo
        # Fortunately it seems the clamped values never wrongly
        # get selected by tau <= sorted_z. Prove this!
        delta_nz = torch.clamp(delta, 0)
        tau = mean - torch.sqrt(delta_nz)

        support_size = (tau <= Xsrt).sum(dim).unsqueeze(dim)
        tau_star = tau.gather(dim, support_size - 1)
        return tau_star, support_size


class Entmoid15(Function):
    """A highly optimized equivalent of labda x: Entmax15([x, 0])"""

    @staticmethod
    def forward(ctx, input):
        output = Entmoid15._forward(input)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    @script
    def _forward(input):
        input, is_pos = abs(input), input >= 0
        tau = (input + torch.sqrt(F.relu(8 - input**2))) / 2
        tau.masked_fill_(tau <= input, 2.0)
        y_neg = 0.25 * F.relu(tau - input, inplace=True) ** 2
        return torch.where(is_pos, 1 - y_neg, y_neg)

    @staticmethod
    def backward(ctx, grad_output):
        return Entmoid15._backward(ctx.saved_tensors[0], grad_output)

    @staticmethod
    @script
    def _backward(output, grad_output):
        gppr0, gppr1 = output.sqrt(), (1 - output).sqrt()
        grad_input = grad_output * gppr0
        q = grad_input / (gppr0 + gppr1)
        grad_input -= q * gppr0
        return grad_input


def entmax15(input, dim=-1):
    return Entmax15Function.apply(input, dim)


entmoid15 = Entmoid15.apply


def entmax_bisect(X, alpha=1.5, dim=-1, n_iter=60):
    """alpha-entmax by bisection on tau, then one Newton step so that autograd sees the implicit gradient"""
    X = X * (alpha - 1)
    max_val, _ = X.max(dim=dim, keepdim=True)
    X = X - max_val

    def p_of(tau):
        return torch.clamp(X - tau, min=0) ** (1 / (alpha - 1))

    with torch.no_grad():
        d = X.shape[dim]
        tau_lo = -torch.ones_like(max_val)
        tau_hi = tau_lo + 1 - (1 / d) ** (alpha - 1)
        tau_lo, tau_hi = tau_lo - 1, tau_hi
        for _ in range(n_iter):
            tau_m = (tau_lo + tau_hi) / 2
            f_m = p_of(tau_m).sum(dim, keepdim=True) - 1
            mask = f_m >= 0
            tau_lo = torch.where(mask, tau_m, tau_lo)
            tau_hi = torch.where(mask, tau_hi, tau_m)
        tau0 = (tau_lo + tau_hi) / 2
    # Newton: f(tau) = sum p(tau) - 1, f'(tau) = -sum p(tau) ** (2 - alpha) / (alpha - 1)
    f0 = p_of(tau0).sum(dim, keepdim=True) - 1
    on_support = X > tau0
    df0 = torch.where(on_support, (X - tau0) ** ((2 - alpha) / (alpha - 1)), 0.0).sum(dim, keepdim=True) / (alpha - 1)
    tau = tau0 + f0 / df0
    return p_of(tau)


def sparsemax_bisect(X, dim=-1):
    return entmax_bisect(X, alpha=2.0, dim=dim)


class Lambda(nn.Module):
    def __init__(self, func):
        super().__init__()
        self.func = func

    def forward(self, *args, **kwargs):
        return self.func(*args, **kwargs)


class ModuleWithInit(nn.Module):
    """Base class for pytorch module with data-aware initializer on first batch"""

    def __init__(self):
        super().__init__()
        self._is_initialized_tensor = nn.Parameter(torch.tensor(0, dtype=torch.uint8), requires_grad=False)
        self._is_initialized_bool = None
        # Note: this module uses a separate flag self._is_initialized so as to achieve both
        # * persistence: is_initialized is saved alongside model in state_dict
        # * speed: model doesn't need to check is_initialized on every call, only the first one

    def initialize(self, *args, **kwargs):
        """initialize module tensors using first batch of data"""
        raise NotImplementedError("Please implement ")

    def __call__(self, *args, **kwargs):
        if self._is_initialized_bool is None:
            self._is_initialized_bool = bool(self._is_initialized_tensor.item())
        if not self._is_initialized_bool:
            self.initialize(*args, **kwargs)
            self._is_initialized_tensor.data[...] = 1
            self._is_initialized_bool = True
        return super().__call__(*args, **kwargs)


class ODST(ModuleWithInit):
    def __init__(
        self,
        in_features,
        num_trees,
        depth=6,
        tree_dim=1,
        flatten_output=True,
        choice_function=sparsemax,
        bin_function=entmoid15,
        initialize_response_=nn.init.normal_,
        initialize_selection_logits_=nn.init.uniform_,
        threshold_init_beta=1.0,
        threshold_init_cutoff=1.0,
    ):
        """
        Oblivious Differentiable Sparsemax Trees. http://tinyurl.com/odst-readmore
        One can drop (sic!) this module anywhere instead of nn.Linear
        """
        super().__init__()
        self.depth, self.num_trees, self.tree_dim, self.flatten_output = depth, num_trees, tree_dim, flatten_output
        self.choice_function, self.bin_function = choice_function, bin_function
        self.threshold_init_beta, self.threshold_init_cutoff = threshold_init_beta, threshold_init_cutoff

        self.response = nn.Parameter(torch.zeros([num_trees, tree_dim, 2**depth]), requires_grad=True)
        initialize_response_(self.response)

        self.feature_selection_logits = nn.Parameter(torch.zeros([in_features, num_trees, depth]), requires_grad=True)
        initialize_selection_logits_(self.feature_selection_logits)

        self.feature_thresholds = nn.Parameter(
            torch.full([num_trees, depth], float("nan"), dtype=torch.float32), requires_grad=True
        )  # nan values will be initialized on first batch (data-aware init)

        self.log_temperatures = nn.Parameter(
            torch.full([num_trees, depth], float("nan"), dtype=torch.float32), requires_grad=True
        )

        # binary codes for mapping between 1-hot vectors and bin indices
        with torch.no_grad():
            indices = torch.arange(2**self.depth)
            offsets = 2 ** torch.arange(self.depth)
            bin_codes = (indices.view(1, -1) // offsets.view(-1, 1) % 2).to(torch.float32)
            bin_codes_1hot = torch.stack([bin_codes, 1.0 - bin_codes], dim=-1)
            self.bin_codes_1hot = nn.Parameter(bin_codes_1hot, requires_grad=False)
            # ^-- [depth, 2 ** depth, 2]

    def forward(self, input):
        assert len(input.shape) >= 2
        if len(input.shape) > 2:
            return self.forward(input.view(-1, input.shape[-1])).view(*input.shape[:-1], -1)
        # new input shape: [batch_size, in_features]

        feature_logits = self.feature_selection_logits
        feature_selectors = self.choice_function(feature_logits, dim=0)
        # ^--[in_features, num_trees, depth]

        feature_values = torch.einsum("bi,ind->bnd", input, feature_selectors)
        # ^--[batch_size, num_trees, depth]

        threshold_logits = (feature_values - self.feature_thresholds) * torch.exp(-self.log_temperatures)

        threshold_logits = torch.stack([-threshold_logits, threshold_logits], dim=-1)
        # ^--[batch_size, num_trees, depth, 2]

        bins = self.bin_function(threshold_logits)
        # ^--[batch_size, num_trees, depth, 2], approximately binary

        bin_matches = torch.einsum("btds,dcs->btdc", bins, self.bin_codes_1hot)
        # ^--[batch_size, num_trees, depth, 2 ** depth]

        response_weights = torch.prod(bin_matches, dim=-2)
        # ^-- [batch_size, num_trees, 2 ** depth]
        self.last_response_weights = response_weights.detach()

        response = torch.einsum("bnd,ncd->bnc", response_weights, self.response)
        # ^-- [batch_size, num_trees, tree_dim]

        return response.flatten(1, 2) if self.flatten_output else response

    def initialize(self, input, eps=1e-6):
        # data-aware initializer
        assert len(input.shape) == 2
        with torch.no_grad():
            feature_selectors = self.choice_function(self.feature_selection_logits, dim=0)
            # ^--[in_features, num_trees, depth]

            feature_values = torch.einsum("bi,ind->bnd", input, feature_selectors)
            # ^--[batch_size, num_trees, depth]

            # initialize thresholds: sample random percentiles of data
            percentiles_q = 100 * np.random.beta(
                self.threshold_init_beta, self.threshold_init_beta, size=[self.num_trees, self.depth]
            )
            self.feature_thresholds.data[...] = torch.as_tensor(
                list(map(np.percentile, check_numpy(feature_values.flatten(1, 2).t()), percentiles_q.flatten())),
                dtype=feature_values.dtype,
                device=feature_values.device,
            ).view(self.num_trees, self.depth)
            by_quantile = torch.quantile(
                feature_values.flatten(1, 2).t(),
                torch.as_tensor(percentiles_q.flatten() / 100, dtype=feature_values.dtype),
                dim=1,
            ).diagonal().view(self.num_trees, self.depth)
            self.init_gap = (by_quantile - self.feature_thresholds).abs().max().item()

            # init temperatures: make sure enough data points are in the linear region of sparse-sigmoid
            temperatures = np.percentile(
                check_numpy(abs(feature_values - self.feature_thresholds)),
                q=100 * min(1.0, self.threshold_init_cutoff),
                axis=0,
            )

            # if threshold_init_cutoff > 1, scale everything down by it
            temperatures /= max(1.0, self.threshold_init_cutoff)
            self.log_temperatures.data[...] = torch.log(torch.as_tensor(temperatures) + eps)

    def __repr__(self):
        return "{}(in_features={}, num_trees={}, depth={}, tree_dim={}, flatten_output={})".format(  # noqa: UP032
            self.__class__.__name__,
            self.feature_selection_logits.shape[0],
            self.num_trees,
            self.depth,
            self.tree_dim,
            self.flatten_output,
        )


class DenseBlock(nn.Sequential):
    def __init__(
        self,
        input_dim,
        layer_dim,
        num_layers,
        tree_dim=1,
        max_features=None,
        input_dropout=0.0,
        flatten_output=True,
        Module=ODST,
        **kwargs,
    ):
        layers = []
        for i in range(num_layers):  # noqa: B007  (the repo's loop)
            oddt = Module(input_dim, layer_dim, tree_dim=tree_dim, flatten_output=True, **kwargs)
            input_dim = min(input_dim + layer_dim * tree_dim, max_features or float("inf"))
            layers.append(oddt)

        super().__init__(*layers)
        self.num_layers, self.layer_dim, self.tree_dim = num_layers, layer_dim, tree_dim
        self.max_features, self.flatten_output = max_features, flatten_output
        self.input_dropout = input_dropout

    def forward(self, x):
        initial_features = x.shape[-1]
        for layer in self:
            layer_inp = x
            if self.max_features is not None:
                tail_features = min(self.max_features, layer_inp.shape[-1]) - initial_features
                if tail_features != 0:
                    layer_inp = torch.cat([layer_inp[..., :initial_features], layer_inp[..., -tail_features:]], dim=-1)
            if self.training and self.input_dropout:
                layer_inp = F.dropout(layer_inp, self.input_dropout)
            h = layer(layer_inp)
            x = torch.cat([x, h], dim=-1)

        outputs = x[..., initial_features:]
        if not self.flatten_output:
            outputs = outputs.view(*outputs.shape[:-1], self.num_layers * self.layer_dim, self.tree_dim)
        return outputs


# ---- the mappings: forward and gradient by two routes, then gradcheck --------------------------------
with torch.no_grad():
    z = torch.randn(5, 7, dtype=torch.float64) * 2
routes_ok = True
for name, exact, bisect in (("sparsemax", sparsemax, sparsemax_bisect), ("entmax15", entmax15, entmax_bisect)):
    for dim in (-1, 0):
        a = z.clone().requires_grad_(True)
        b = z.clone().requires_grad_(True)
        w = torch.randn(5, 7, dtype=torch.float64)
        pa, pb = exact(a, dim), bisect(b, dim=dim)
        (pa * w).sum().backward()
        (pb * w).sum().backward()
        same = torch.allclose(pa, pb, atol=1e-8) and torch.allclose(a.grad, b.grad, atol=1e-6)
        sums = torch.allclose(pa.sum(dim), torch.ones(1, dtype=torch.float64))
        zeros = int((pa == 0).sum())
        print(f"{name} dim={dim}: sums to one {sums}, zeros {zeros}, == bisection (value, grad) {same}")
        routes_ok = routes_ok and same and sums
    ok = torch.autograd.gradcheck(lambda x, f=exact: f(x, -1), (z.clone().requires_grad_(True),))
    print(f"gradcheck {name}: {ok}")
    routes_ok = routes_ok and ok
t_in = torch.linspace(-3, 3, 13, dtype=torch.float64)
via_entmax = entmax15(torch.stack([t_in, torch.zeros_like(t_in)], -1), -1)[..., 0]
entmoid_ok = torch.allclose(entmoid15(t_in), via_entmax, atol=1e-7) and torch.autograd.gradcheck(
    entmoid15, ((t_in + 0.01).requires_grad_(True),)
)
print(f"entmoid15 == entmax15([x, 0]) and gradcheck: {entmoid_ok}")

# ---- synthetic tabular regression -------------------------------------------------------------------
N_TRAIN, N_TEST, NUM_FEATURES = 1000, 400, 8
X_all = np.random.randn(N_TRAIN + N_TEST, NUM_FEATURES).astype(np.float32)
y_all = (
    2.0 * (X_all[:, 0] > 0.3) * X_all[:, 1]
    + np.where(X_all[:, 2] > 0, 1.5, -1.0)
    + np.abs(X_all[:, 3])
    - 0.5 * X_all[:, 4]
    + 0.1 * np.random.randn(N_TRAIN + N_TEST)
).astype(np.float32)
mu, std = y_all[:N_TRAIN].mean(), y_all[:N_TRAIN].std()
y_all = (y_all - mu) / std
X_train, X_test = torch.as_tensor(X_all[:N_TRAIN]), torch.as_tensor(X_all[N_TRAIN:])
y_train, y_test = torch.as_tensor(y_all[:N_TRAIN]), torch.as_tensor(y_all[N_TRAIN:])

model = nn.Sequential(
    DenseBlock(
        NUM_FEATURES,
        layer_dim=16,
        num_layers=2,
        tree_dim=2,
        depth=3,
        flatten_output=False,
        choice_function=entmax15,
        bin_function=entmoid15,
    ),
    Lambda(lambda x: x[..., 0].mean(dim=-1)),  # average first channels of every tree
)
print(model[0][0], model[0][1])

with torch.no_grad():
    res = model(X_train[:1000])
    # trigger data-aware init
init_gap = max(layer.init_gap for layer in model[0])
initialised = all(bool(layer._is_initialized_tensor) for layer in model[0])
print(f"data-aware init done: {initialised}, thresholds finite: {all(bool(torch.isfinite(layer.feature_thresholds).all()) for layer in model[0])}")
print(f"np.percentile vs torch.quantile thresholds: max gap {init_gap:.2e}")
weights_sum = model[0][0].last_response_weights.sum(-1)
weights_ok = torch.allclose(weights_sum, torch.ones_like(weights_sum), atol=1e-5)
print(f"response weights {tuple(model[0][0].last_response_weights.shape)} sum to one: {weights_ok}")

optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
BATCH = 100
for epoch in range(1, 16):
    model.train()
    perm = torch.randperm(N_TRAIN)
    for i in range(0, N_TRAIN, BATCH):
        idx = perm[i : i + BATCH]
        loss = F.mse_loss(model(X_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 5 == 0:
        model.eval()
        with torch.no_grad():
            test_mse = F.mse_loss(model(X_test), y_test).item()
        print(f"epoch {epoch:2d} train loss {loss.item():.4f} test mse {test_mse:.4f}")

linear = nn.Linear(NUM_FEATURES, 1)
opt_lin = torch.optim.Adam(linear.parameters(), lr=0.05)
for _ in range(300):
    loss = F.mse_loss(linear(X_train).squeeze(-1), y_train)
    opt_lin.zero_grad()
    loss.backward()
    opt_lin.step()
with torch.no_grad():
    linear_mse = F.mse_loss(linear(X_test).squeeze(-1), y_test).item()
print(f"NODE test mse {test_mse:.4f} vs linear {linear_mse:.4f}")
checks = int(routes_ok and entmoid_ok and weights_ok and initialised and init_gap < 1e-5)
print(f"FINAL node_mse={test_mse:.4f} linear_mse={linear_mse:.4f} checks={checks}")
