"""BYOL (lucidrains/byol-pytorch ``byol_pytorch.py``) at tiny sizes on synthetic images.

The library as written: ``singleton`` caching decorators (``@wraps``, ``getattr``/``setattr`` of a
cache key), ``NetWrapper`` reading the hidden layer by a ``register_forward_hook`` on the layer found
through ``dict([*self.net.named_modules()])`` (hidden kept per ``input[0].device``, ``flatten`` by
``t.reshape(t.shape[0], -1)``), a lazily built projector ``MLP`` (``Linear``, ``BatchNorm1d``,
``ReLU(inplace=True)``) moved by ``projector.to(hidden)``, a mock forward in ``__init__`` to build it,
the target encoder by ``copy.deepcopy(self.online_encoder)`` (the forward hook comes along, bound to
the copy) frozen by ``set_requires_grad(model, False)``, the ``EMA`` updater and
``update_moving_average`` (``ma_params.data = old * beta + (1 - beta) * new`` over
``zip(current_model.parameters(), ma_model.parameters())``), the online predictor,
``loss_fn`` = ``2 - 2 * (F.normalize(x, dim=-1, p=2) * F.normalize(y, dim=-1, p=2)).sum(dim=-1)``
applied symmetrically to ``chunk(2, dim=0)`` halves and ``.mean()``-ed; ``RandomApply`` augmentations
written with tensors (random crop by slicing + ``F.interpolate`` back, ``torch.flip(x, dims=[3])``,
colour jitter, Gaussian noise, ``torch.rand(...) < p`` masks); ``@torch.no_grad()`` helpers, the
README's training loop (``learner(images)``, ``opt.zero_grad()``, ``learner.update_moving_average()``),
``return_embedding=True`` embeddings, and a cosine kNN probe at the end. Data: 16x16 RGB images of
four shape classes in random colours and places.
"""

import copy
import os
import random
from functools import wraps

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)
rng = np.random.RandomState(seed)


# helper functions

def default(val, def_val):
    return def_val if val is None else val


def flatten(t):
    return t.reshape(t.shape[0], -1)


def singleton(cache_key):
    def inner_fn(fn):
        @wraps(fn)
        def wrapper(self, *args, **kwargs):
            instance = getattr(self, cache_key)
            if instance is not None:
                return instance

            instance = fn(self, *args, **kwargs)
            setattr(self, cache_key, instance)
            return instance
        return wrapper
    return inner_fn


def get_module_device(module):
    return next(module.parameters()).device


def set_requires_grad(model, val):
    for p in model.parameters():
        p.requires_grad = val


# loss fn

def loss_fn(x, y):
    x = F.normalize(x, dim=-1, p=2)
    y = F.normalize(y, dim=-1, p=2)
    return 2 - 2 * (x * y).sum(dim=-1)


# augmentation utils

class RandomApply(nn.Module):
    def __init__(self, fn, p):
        super().__init__()
        self.fn = fn
        self.p = p

    def forward(self, x):
        if random.random() > self.p:
            return x
        return self.fn(x)


def random_resized_crop(x, size=16):
    """One crop box per batch, cut by slicing, resized back by bilinear interpolation."""
    crop = int(torch.randint(10, size + 1, (1,)))
    top, left = (int(v) for v in torch.randint(0, size - crop + 1, (2,)))
    x = x[:, :, top:top + crop, left:left + crop]
    return F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)


def horizontal_flip(x):
    flip = torch.rand(x.shape[0]) < 0.5
    return torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)


def color_jitter(x):
    brightness = 1 + 0.4 * (torch.rand(x.shape[0], 1, 1, 1) - 0.5)
    channel_gain = 1 + 0.2 * (torch.rand(x.shape[0], 3, 1, 1) - 0.5)
    return x * brightness * channel_gain


def gaussian_noise(x):
    return x + 0.1 * torch.randn_like(x)


def random_grayscale(x):
    gray = x.mean(dim=1, keepdim=True).expand_as(x)
    pick = torch.rand(x.shape[0], 1, 1, 1) < 0.2
    return torch.where(pick, gray, x)


DEFAULT_AUG = nn.Sequential(
    RandomApply(color_jitter, p=0.8),
    RandomApply(random_grayscale, p=1.0),
    RandomApply(horizontal_flip, p=1.0),
    RandomApply(gaussian_noise, p=0.5),
    RandomApply(random_resized_crop, p=1.0),
)


# exponential moving average

class EMA():  # noqa: UP039 (the library's spelling)
    def __init__(self, beta):
        super().__init__()
        self.beta = beta

    def update_average(self, old, new):
        if old is None:
            return new
        return old * self.beta + (1 - self.beta) * new


def update_moving_average(ema_updater, ma_model, current_model):
    for current_params, ma_params in zip(current_model.parameters(), ma_model.parameters()):
        old_weight, up_weight = ma_params.data, current_params.data
        ma_params.data = ema_updater.update_average(old_weight, up_weight)


# MLP class for projector and predictor

def MLP(dim, projection_size, hidden_size=4096):
    return nn.Sequential(
        nn.Linear(dim, hidden_size),
        nn.BatchNorm1d(hidden_size),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_size, projection_size)
    )


# a wrapper class for the base neural network
# will manage the interception of the hidden layer output
# and pipe it into the projecter and predictor nets

class NetWrapper(nn.Module):
    def __init__(self, net, projection_size, projection_hidden_size, layer=-2):
        super().__init__()
        self.net = net
        self.layer = layer

        self.projector = None
        self.projection_size = projection_size
        self.projection_hidden_size = projection_hidden_size

        self.hidden = {}
        self.hook_registered = False

    def _find_layer(self):
        if type(self.layer) == str:  # noqa: E721
            modules = dict([*self.net.named_modules()])
            return modules.get(self.layer, None)
        elif type(self.layer) == int:  # noqa: E721
            children = [*self.net.children()]
            return children[self.layer]
        return None

    def _hook(self, _, input, output):
        device = input[0].device
        self.hidden[device] = flatten(output)

    def _register_hook(self):
        layer = self._find_layer()
        assert layer is not None, f'hidden layer ({self.layer}) not found'
        layer.register_forward_hook(self._hook)
        self.hook_registered = True

    @singleton('projector')
    def _get_projector(self, hidden):
        _, dim = hidden.shape
        projector = MLP(dim, self.projection_size, self.projection_hidden_size)
        return projector.to(hidden)

    def get_representation(self, x):
        if self.layer == -1:
            return self.net(x)

        if not self.hook_registered:
            self._register_hook()

        self.hidden.clear()
        _ = self.net(x)
        hidden = self.hidden[x.device]
        self.hidden.clear()

        assert hidden is not None, f'hidden layer {self.layer} never emitted an output'
        return hidden

    def forward(self, x, return_projection=True):
        representation = self.get_representation(x)

        if not return_projection:
            return representation

        projector = self._get_projector(representation)
        projection = projector(representation)
        return projection, representation


# main class

class BYOL(nn.Module):
    def __init__(
        self,
        net,
        image_size,
        hidden_layer=-2,
        projection_size=256,
        projection_hidden_size=4096,
        augment_fn=None,
        augment_fn2=None,
        moving_average_decay=0.99,
        use_momentum=True
    ):
        super().__init__()
        self.net = net

        self.augment1 = default(augment_fn, DEFAULT_AUG)
        self.augment2 = default(augment_fn2, self.augment1)

        self.online_encoder = NetWrapper(net, projection_size, projection_hidden_size, layer=hidden_layer)

        self.use_momentum = use_momentum
        self.target_encoder = None
        self.target_ema_updater = EMA(moving_average_decay)

        self.online_predictor = MLP(projection_size, projection_size, projection_hidden_size)

        # get device of network and make wrapper same device
        device = get_module_device(net)
        self.to(device)

        # send a mock image tensor to instantiate singleton parameters
        self.forward(torch.randn(2, 3, image_size, image_size, device=device))

    @singleton('target_encoder')
    def _get_target_encoder(self):
        target_encoder = copy.deepcopy(self.online_encoder)
        set_requires_grad(target_encoder, False)
        return target_encoder

    def reset_moving_average(self):
        del self.target_encoder
        self.target_encoder = None

    def update_moving_average(self):
        assert self.use_momentum, 'you do not need to update the moving average, since you have turned off momentum for the target encoder'
        assert self.target_encoder is not None, 'target encoder has not been created yet'
        update_moving_average(self.target_ema_updater, self.target_encoder, self.online_encoder)

    def forward(
        self,
        x,
        return_embedding=False,
        return_projection=True
    ):
        assert not (self.training and x.shape[0] == 1), 'you must have greater than 1 sample when training, due to the batchnorm in the projection layer'

        if return_embedding:
            return self.online_encoder(x, return_projection=return_projection)

        image_one, image_two = self.augment1(x), self.augment2(x)

        images = torch.cat((image_one, image_two), dim=0)

        online_projections, _ = self.online_encoder(images)
        online_predictions = self.online_predictor(online_projections)

        online_pred_one, online_pred_two = online_predictions.chunk(2, dim=0)

        with torch.no_grad():
            target_encoder = self._get_target_encoder() if self.use_momentum else self.online_encoder

            target_projections, _ = target_encoder(images)
            target_projections = target_projections.detach()

            target_proj_one, target_proj_two = target_projections.chunk(2, dim=0)

        loss_one = loss_fn(online_pred_one, target_proj_two.detach())
        loss_two = loss_fn(online_pred_two, target_proj_one.detach())

        loss = loss_one + loss_two
        return loss.mean()


class SmallResNetLike(nn.Module):
    """A torchvision-shaped backbone with an ``avgpool`` the wrapper hooks and an ``fc`` it ignores."""
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32),
                                    nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.avgpool(x)
        return self.fc(torch.flatten(x, 1))


def make_images(n):
    """16x16 RGB: a square, a cross, a ring or a diagonal bar, in a random colour at a random place."""
    yy, xx = np.mgrid[0:16, 0:16]
    y = rng.randint(0, 4, n)
    imgs = np.zeros((n, 3, 16, 16), dtype=np.float32)
    for i in range(n):
        cy, cx = rng.randint(5, 11, 2)
        if y[i] == 0:
            shape = (abs(yy - cy) <= 3) & (abs(xx - cx) <= 3)
        elif y[i] == 1:
            shape = ((abs(yy - cy) <= 4) & (abs(xx - cx) <= 1)) | ((abs(xx - cx) <= 4) & (abs(yy - cy) <= 1))
        elif y[i] == 2:
            r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            shape = (r > 2.0) & (r < 4.2)
        else:
            shape = (abs((yy - cy) - (xx - cx)) <= 1) & (abs(yy - cy) <= 4)
        colour = rng.uniform(0.3, 1.0, 3)
        imgs[i] = colour[:, None, None] * shape + 0.1 * rng.randn(3, 16, 16)
    return torch.from_numpy(imgs), torch.from_numpy(y)


x_train, y_train = make_images(384)
x_test, y_test = make_images(128)

resnet = SmallResNetLike()
learner = BYOL(
    resnet,
    image_size=16,
    hidden_layer='avgpool',
    projection_size=32,
    projection_hidden_size=64,
    moving_average_decay=0.95,
)
target = learner._get_target_encoder()
print(f"projector built by the mock forward: {learner.online_encoder.projector is not None}  "
      f"target frozen: {not any(p.requires_grad for p in target.parameters())}  "
      f"target hook bound to the copy: {target.net.avgpool._forward_hooks[next(iter(target.net.avgpool._forward_hooks))].__self__ is target}")

opt = torch.optim.Adam(learner.parameters(), lr=3e-3)
n_online = sum(p.numel() for p in learner.parameters() if p.requires_grad)
print(f"trainable parameters: {n_online}")


@torch.no_grad()
def embed(x):
    learner.eval()
    projection, embedding = learner(x, return_embedding=True)
    learner.train()
    return embedding


@torch.no_grad()
def knn_accuracy(k=10):
    bank = F.normalize(embed(x_train), dim=1)
    queries = F.normalize(embed(x_test), dim=1)
    _, idx = (queries @ bank.T).topk(k, dim=1)
    votes = F.one_hot(y_train[idx], 4).sum(1)
    return (votes.argmax(1) == y_test).float().mean().item()


knn_before = knn_accuracy()
batch_size = 32
for epoch in range(20):
    perm = torch.randperm(len(x_train))
    losses = []
    for i in range(0, len(x_train), batch_size):
        images = x_train[perm[i:i + batch_size]]
        loss = learner(images)
        opt.zero_grad()
        loss.backward()
        opt.step()
        learner.update_moving_average()  # update moving average of target encoder
        losses.append(loss.item())
    if epoch % 5 == 4:
        print(f"epoch {epoch} loss {np.mean(losses):.4f}")

drift = sum((po - pt).abs().sum() for po, pt in
            zip(learner.online_encoder.parameters(), learner.target_encoder.parameters())).item()
print(f"target trails online: {drift > 0}")
knn_after = knn_accuracy()
print(f"FINAL loss={np.mean(losses):.4f} knn_before={knn_before:.4f} knn_after={knn_after:.4f}")
