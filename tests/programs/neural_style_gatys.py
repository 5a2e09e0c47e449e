"""The Neural Transfer tutorial (Gatys et al.), shrunk: a small fixed random VGG-like ``cnn`` in
``.eval()`` stands in for ``vgg19(...).features``; a ``Normalization`` module built with
``torch.tensor(mean).view(-1, 1, 1)`` from tensors (torch's copy-construct warning included);
``ContentLoss``/``StyleLoss`` modules keeping ``.detach()``-ed targets and ``gram_matrix``
(``features.view(a * b, c * d)``, ``torch.mm``, ``.div``); the model rebuilt by
``model.add_module(name, layer)`` over ``cnn.children()`` with ``isinstance`` checks and
``nn.ReLU(inplace=False)`` replacing the in-place ReLUs, trimmed after the last loss by
``model[:(i + 1)]``; ``input_img.requires_grad_(True)``, ``model.eval()``,
``model.requires_grad_(False)``, ``optim.LBFGS([input_img])`` with a closure that clamps
under ``torch.no_grad()`` and counts evaluations in ``run = [0]``. Images are synthetic.
"""
# ruff: noqa: UP008, UP032  (the tutorial's own spelling: super(Cls, self), str.format, list defaults)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.set_default_device(device)

# desired size of the output image
imsize = 32

rng = np.random.RandomState(0)
yy, xx = np.mgrid[0:imsize, 0:imsize] / imsize
style_np = np.stack([0.5 + 0.35 * np.sin(12 * xx + c) * np.cos(9 * yy - c) for c in (0.0, 1.0, 2.0)])
content_np = np.stack([((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1).astype(float) * (0.2 + 0.2 * c) + 0.2
                       for c in range(3)]) + 0.05 * rng.rand(3, imsize, imsize)


def image_loader(array):
    # fake batch dimension required to fit network's input dimensions
    image = torch.tensor(np.clip(array, 0, 1), dtype=torch.float).unsqueeze(0)
    return image.to(device, torch.float)


style_img = image_loader(style_np)
content_img = image_loader(content_np)

assert style_img.size() == content_img.size(), \
    "we need to import style and content images of the same size"


class ContentLoss(nn.Module):

    def __init__(self, target,):
        super(ContentLoss, self).__init__()
        # we 'detach' the target content from the tree used
        # to dynamically compute the gradient: this is a stated value,
        # not a variable. Otherwise the forward method of the criterion
        # will throw an error.
        self.target = target.detach()

    def forward(self, input):
        self.loss = F.mse_loss(input, self.target)
        return input


def gram_matrix(input):
    a, b, c, d = input.size()  # a=batch size(=1)
    # b=number of feature maps
    # (c,d)=dimensions of a f. map (N=c*d)

    features = input.view(a * b, c * d)  # resize F_XL into \hat F_XL

    G = torch.mm(features, features.t())  # compute the gram product

    # we 'normalize' the values of the gram matrix
    # by dividing by the number of element in each feature maps.
    return G.div(a * b * c * d)


class StyleLoss(nn.Module):

    def __init__(self, target_feature):
        super(StyleLoss, self).__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, input):
        G = gram_matrix(input)
        self.loss = F.mse_loss(G, self.target)
        return input


# a small VGG-like feature stack with fixed random weights instead of vgg19's
cnn = nn.Sequential(
    nn.Conv2d(3, 8, kernel_size=3, padding=1), nn.ReLU(inplace=True),
    nn.Conv2d(8, 8, kernel_size=3, padding=1), nn.ReLU(inplace=True),
    nn.MaxPool2d(kernel_size=2, stride=2),
    nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(inplace=True),
    nn.Conv2d(16, 16, kernel_size=3, padding=1), nn.ReLU(inplace=True),
    nn.MaxPool2d(kernel_size=2, stride=2),
    nn.Conv2d(16, 16, kernel_size=3, padding=1), nn.ReLU(inplace=True),
    nn.Conv2d(16, 16, kernel_size=3, padding=1), nn.ReLU(inplace=True),
).eval()

cnn_normalization_mean = torch.tensor([0.485, 0.456, 0.406])
cnn_normalization_std = torch.tensor([0.229, 0.224, 0.225])


# create a module to normalize input image so we can easily put it in a
# ``nn.Sequential``
class Normalization(nn.Module):
    def __init__(self, mean, std):
        super(Normalization, self).__init__()
        # .view the mean and std to make them [C x 1 x 1] so that they can
        # directly work with image Tensor of shape [B x C x H x W].
        # B is batch size. C is number of channels. H is height and W is width.
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, img):
        # normalize ``img``
        return (img - self.mean) / self.std


# desired depth layers to compute style/content losses :
content_layers_default = ['conv_4']
style_layers_default = ['conv_1', 'conv_2', 'conv_3', 'conv_4', 'conv_5']


def get_style_model_and_losses(cnn, normalization_mean, normalization_std,
                               style_img, content_img,
                               content_layers=content_layers_default,
                               style_layers=style_layers_default):
    # normalization module
    normalization = Normalization(normalization_mean, normalization_std)

    # just in order to have an iterable access to or list of content/style
    # losses
    content_losses = []
    style_losses = []

    # assuming that ``cnn`` is a ``nn.Sequential``, so we make a new ``nn.Sequential``
    # to put in modules that are supposed to be activated sequentially
    model = nn.Sequential(normalization)

    i = 0  # increment every time we see a conv
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = 'conv_{}'.format(i)
        elif isinstance(layer, nn.ReLU):
            name = 'relu_{}'.format(i)
            # The in-place version doesn't play very nicely with the ``ContentLoss``
            # and ``StyleLoss`` we insert below. So we replace with out-of-place
            # ones here.
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d):
            name = 'pool_{}'.format(i)
        elif isinstance(layer, nn.BatchNorm2d):
            name = 'bn_{}'.format(i)
        else:
            raise RuntimeError('Unrecognized layer: {}'.format(layer.__class__.__name__))

        model.add_module(name, layer)

        if name in content_layers:
            # add content loss:
            target = model(content_img).detach()
            content_loss = ContentLoss(target)
            model.add_module("content_loss_{}".format(i), content_loss)
            content_losses.append(content_loss)

        if name in style_layers:
            # add style loss:
            target_feature = model(style_img).detach()
            style_loss = StyleLoss(target_feature)
            model.add_module("style_loss_{}".format(i), style_loss)
            style_losses.append(style_loss)

    # now we trim off the layers after the last content and style losses
    for i in range(len(model) - 1, -1, -1):
        if isinstance(model[i], ContentLoss) or isinstance(model[i], StyleLoss):
            break

    model = model[:(i + 1)]

    return model, style_losses, content_losses


input_img = content_img.clone()
history = []


def get_input_optimizer(input_img):
    # this line to show that input is a parameter that requires a gradient
    optimizer = optim.LBFGS([input_img])
    return optimizer


def run_style_transfer(cnn, normalization_mean, normalization_std,
                       content_img, style_img, input_img, num_steps=300,
                       style_weight=1000000, content_weight=1):
    """Run the style transfer."""
    print('Building the style transfer model..')
    model, style_losses, content_losses = get_style_model_and_losses(cnn,
        normalization_mean, normalization_std, style_img, content_img)

    # We want to optimize the input and not the model parameters so we
    # update all the requires_grad fields accordingly
    input_img.requires_grad_(True)
    # We also put the model in evaluation mode, so that specific layers
    # such as dropout or batch normalization layers behave correctly.
    model.eval()
    model.requires_grad_(False)

    optimizer = get_input_optimizer(input_img)

    print('Optimizing..')
    run = [0]
    while run[0] <= num_steps:

        def closure():
            # correct the values of updated input image
            with torch.no_grad():
                input_img.clamp_(0, 1)

            optimizer.zero_grad()
            model(input_img)
            style_score = 0
            content_score = 0

            for sl in style_losses:
                style_score += sl.loss
            for cl in content_losses:
                content_score += cl.loss

            style_score *= style_weight
            content_score *= content_weight

            loss = style_score + content_score
            loss.backward()
            history.append((style_score.item(), content_score.item()))

            run[0] += 1
            if run[0] % 50 == 0:
                print("run {}:".format(run))
                print('Style Loss : {:4f} Content Loss: {:4f}'.format(
                    style_score.item(), content_score.item()))
                print()

            return style_score + content_score

        optimizer.step(closure)

    # a last correction...
    with torch.no_grad():
        input_img.clamp_(0, 1)

    return input_img, model, style_losses, content_losses


output, model, style_losses, content_losses = run_style_transfer(
    cnn, cnn_normalization_mean, cnn_normalization_std, content_img, style_img, input_img, num_steps=150)

print(model)
print(len(model), len(style_losses), len(content_losses), output.shape, output.requires_grad)
# LBFGS without a line search on a clamped image is chaotic (a step now and then lands far off
# and it climbs back): judge by the best evaluation, as one keeps the best image
style, content = min(history, key=sum)
# (the style loss spans decades from seed to seed: compared on a log scale)
print(f"FINAL log_style={math.log10(style):.4f} content={content:.4f} "
      f"log_style_ratio={math.log10(style / history[0][0]):.4f} "
      f"lo={output.min().item():.4f} hi={output.max().item():.4f}")
