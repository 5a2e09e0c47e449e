"""pytorch/examples fast_neural_style, shrunk: the TransformerNet (ReflectionPad2d + Conv2d layers,
``InstanceNorm2d(affine=True)``, residual blocks, ``UpsampleConvLayer`` through
``F.interpolate(mode='nearest', scale_factor=...)``), a small VGG-like feature extractor frozen with
``requires_grad_(False)`` returning a namedtuple of relu outputs, ``gram_matrix`` with ``bmm``,
ImageNet mean/std normalisation via ``div_(255.0)`` and ``.new_tensor(...).view(-1, 1, 1)``, content +
style MSE losses, Adam. Images are synthetic.
"""

import os
from collections import namedtuple

import numpy as np
import torch
from torch.optim import Adam

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


class ConvLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        reflection_padding = kernel_size // 2
        self.reflection_pad = torch.nn.ReflectionPad2d(reflection_padding)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        out = self.reflection_pad(x)
        out = self.conv2d(out)
        return out


class ResidualBlock(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        out = out + residual
        return out


class UpsampleConvLayer(torch.nn.Module):
    """Upsample then convolve: fewer checkerboard artifacts than ConvTranspose2d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
        super().__init__()
        self.upsample = upsample
        reflection_padding = kernel_size // 2
        self.reflection_pad = torch.nn.ReflectionPad2d(reflection_padding)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        x_in = x
        if self.upsample:
            x_in = torch.nn.functional.interpolate(x_in, mode="nearest", scale_factor=self.upsample)
        out = self.reflection_pad(x_in)
        out = self.conv2d(out)
        return out


class TransformerNet(torch.nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv1 = ConvLayer(3, width, kernel_size=5, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(width, affine=True)
        self.conv2 = ConvLayer(width, 2 * width, kernel_size=3, stride=2)
        self.in2 = torch.nn.InstanceNorm2d(2 * width, affine=True)
        self.res1 = ResidualBlock(2 * width)
        self.res2 = ResidualBlock(2 * width)
        self.deconv1 = UpsampleConvLayer(2 * width, width, kernel_size=3, stride=1, upsample=2)
        self.in4 = torch.nn.InstanceNorm2d(width, affine=True)
        self.deconv3 = ConvLayer(width, 3, kernel_size=5, stride=1)
        self.relu = torch.nn.ReLU()

    def forward(self, X):
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.res1(y)
        y = self.res2(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.deconv3(y)
        return y


class Vgg(torch.nn.Module):
    """A VGG-shaped feature extractor (random, frozen) standing in for the pretrained vgg16."""

    def __init__(self, requires_grad=False):
        super().__init__()
        features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
            torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
            torch.nn.MaxPool2d(kernel_size=2, stride=2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(inplace=True),
            torch.nn.MaxPool2d(kernel_size=2, stride=2),
            torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(inplace=True),
        )
        self.slice1 = torch.nn.Sequential()
        self.slice2 = torch.nn.Sequential()
        self.slice3 = torch.nn.Sequential()
        for x in range(4):
            self.slice1.add_module(str(x), features[x])
        for x in range(4, 7):
            self.slice2.add_module(str(x), features[x])
        for x in range(7, 10):
            self.slice3.add_module(str(x), features[x])
        if not requires_grad:
            for param in self.parameters():
                param.requires_grad = False

    def forward(self, X):
        h = self.slice1(X)
        h_relu1_2 = h
        h = self.slice2(h)
        h_relu2_2 = h
        h = self.slice3(h)
        h_relu3_3 = h
        vgg_outputs = namedtuple("VggOutputs", ["relu1_2", "relu2_2", "relu3_3"])
        out = vgg_outputs(h_relu1_2, h_relu2_2, h_relu3_3)
        return out


def gram_matrix(y):
    (b, ch, h, w) = y.size()
    features = y.view(b, ch, w * h)
    features_t = features.transpose(1, 2)
    gram = features.bmm(features_t) / (ch * h * w)
    return gram


def normalize_batch(batch):
    # normalize using imagenet mean and std
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


def make_images(n, size, rng):
    """Smooth random colour fields in 0..255, as a float tensor."""
    coarse = rng.rand(n, 3, size // 4, size // 4)
    images = np.kron(coarse, np.ones((1, 1, 4, 4))) * 255.0
    return torch.from_numpy(images.astype(np.float32))


rng = np.random.RandomState(0)
size = 16
train_images = make_images(16, size, rng)
# the style: diagonal stripes, strongly textured
yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
stripes = (np.sin((xx + yy) * 1.2) * 0.5 + 0.5) * 255.0
style_np = np.stack([stripes, 255.0 - stripes, stripes * 0.5])[None].astype(np.float32)
style = torch.from_numpy(style_np)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
transformer = TransformerNet().to(device)
optimizer = Adam(transformer.parameters(), 1e-2)
mse_loss = torch.nn.MSELoss()
vgg = Vgg(requires_grad=False).to(device)
vgg.requires_grad_(False)
content_weight, style_weight = 1e0, 1e3

style = style.repeat(4, 1, 1, 1).to(device)
features_style = vgg(normalize_batch(style))
gram_style = [gram_matrix(y) for y in features_style]
print("style grams", [tuple(g.shape) for g in gram_style])

batch_size = 4
for e in range(2):
    transformer.train()
    agg_content_loss = 0.0
    agg_style_loss = 0.0
    count = 0
    for batch_id in range(len(train_images) // batch_size):
        x = train_images[batch_id * batch_size:(batch_id + 1) * batch_size].clone()
        n_batch = len(x)
        count += n_batch
        optimizer.zero_grad()

        x = x.to(device)
        y = transformer(x)
        y = normalize_batch(y)
        x = normalize_batch(x)

        features_y = vgg(y)
        features_x = vgg(x)

        content_loss = content_weight * mse_loss(features_y.relu2_2, features_x.relu2_2)

        style_loss = 0.0
        for ft_y, gm_s in zip(features_y, gram_style):
            gm_y = gram_matrix(ft_y)
            style_loss += mse_loss(gm_y, gm_s[:n_batch, :, :])
        style_loss *= style_weight

        total_loss = content_loss + style_loss
        total_loss.backward()
        optimizer.step()

        agg_content_loss += content_loss.item()
        agg_style_loss += style_loss.item()
    mean_content, mean_style = agg_content_loss / (batch_id + 1), agg_style_loss / (batch_id + 1)
    print(f"Epoch {e + 1}:\t[{count}/{len(train_images)}]\tcontent: {mean_content:.4f}\tstyle: {mean_style:.4f}"
          f"\ttotal: {mean_content + mean_style:.4f}")

transformer.eval()
with torch.no_grad():
    output = transformer(train_images[:2].clone().to(device)).cpu()
img = output[0].clone().clamp(0, 255).numpy()
img = img.transpose(1, 2, 0).astype("uint8")
print("stylized", img.shape, img.dtype)
frozen = all(not p.requires_grad for p in vgg.parameters())
print(f"FINAL content={mean_content:.4f} style={mean_style:.4f} frozen={frozen:d}")
