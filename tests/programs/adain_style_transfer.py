"""AdaIN arbitrary style transfer (Huang & Belongie 2017) in the layout of naoto0804/pytorch-AdaIN
(function.py, net.py, train.py, test.py), at tiny sizes on synthetic images.

``calc_mean_std`` and ``adaptive_instance_normalization`` are the repo's (``feat.view(N, C, -1).var(dim=2)
+ eps``, ``.sqrt().view(N, C, 1, 1)``, ``.expand(size)``). The encoder is the repo's VGG layer list up to
relu4_1 (a 1x1 colour conv, ``nn.ReflectionPad2d((1, 1, 1, 1))`` + 3x3 convs, ``nn.MaxPool2d((2, 2), (2, 2),
(0, 0), ceil_mode=True)``) with narrow random weights standing in for the pretrained ones, cut as
``Net`` cuts it (``nn.Sequential(*enc_layers[:4])``, ``[4:11]``, ``[11:18]``, ``[18:31]``) and frozen by
``param.requires_grad = False``; the decoder mirrors it with ``nn.Upsample(scale_factor=2, mode='nearest')``.
Training follows train.py: Adam on the decoder only, ``adjust_learning_rate`` by ``lr / (1 + lr_decay *
iteration)`` into ``param_group['lr']``, loss ``content_weight * loss_c + style_weight * loss_s`` with
``nn.MSELoss`` of the relu4_1 features against the AdaIN target and of the means/stds at every stage.
test.py's ``style_transfer`` (``alpha`` interpolation, ``interpolation_weights`` mixing several styles
over a ``torch.FloatTensor(1, C, H, W).zero_()`` accumulator, content ``expand_as(style)``) runs under
``torch.no_grad()``.

Checked: the AdaIN output's per-channel mean/std equal the style features' (up to ``eps``), the
content and style losses fall, the frozen encoder collects no gradients while the decoder moves,
``alpha=0`` decodes the content features unchanged, one-hot interpolation weights equal the single style's
transfer, ``alpha=0.5`` decodes the midpoint of content and AdaIN features, and the loss on held-out
content/style pairs falls.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

C1, C2, C3, C4 = 8, 12, 16, 24
SIZE = 32


# ------------------------------------------------------------------------------ function.py
def calc_mean_std(feat, eps=1e-5):
    # eps is a small value added to the variance to avoid divide-by-zero.
    size = feat.size()
    assert (len(size) == 4)
    N, C = size[:2]
    feat_var = feat.view(N, C, -1).var(dim=2) + eps
    feat_std = feat_var.sqrt().view(N, C, 1, 1)
    feat_mean = feat.view(N, C, -1).mean(dim=2).view(N, C, 1, 1)
    return feat_mean, feat_std


def adaptive_instance_normalization(content_feat, style_feat):
    assert (content_feat.size()[:2] == style_feat.size()[:2])
    size = content_feat.size()
    style_mean, style_std = calc_mean_std(style_feat)
    content_mean, content_std = calc_mean_std(content_feat)

    normalized_feat = (content_feat - content_mean.expand(
        size)) / content_std.expand(size)
    return normalized_feat * style_std.expand(size) + style_mean.expand(size)


# ----------------------------------------------------------------------------------- net.py
decoder = nn.Sequential(
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C4, C3, (3, 3)),
    nn.ReLU(),
    nn.Upsample(scale_factor=2, mode='nearest'),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C3, C3, (3, 3)),
    nn.ReLU(),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C3, C2, (3, 3)),
    nn.ReLU(),
    nn.Upsample(scale_factor=2, mode='nearest'),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C2, C2, (3, 3)),
    nn.ReLU(),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C2, C1, (3, 3)),
    nn.ReLU(),
    nn.Upsample(scale_factor=2, mode='nearest'),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C1, C1, (3, 3)),
    nn.ReLU(),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C1, 3, (3, 3)),
)

vgg = nn.Sequential(
    nn.Conv2d(3, 3, (1, 1)),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(3, C1, (3, 3)),
    nn.ReLU(),  # relu1-1
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C1, C1, (3, 3)),
    nn.ReLU(),  # relu1-2
    nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C1, C2, (3, 3)),
    nn.ReLU(),  # relu2-1
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C2, C2, (3, 3)),
    nn.ReLU(),  # relu2-2
    nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C2, C3, (3, 3)),
    nn.ReLU(),  # relu3-1
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C3, C3, (3, 3)),
    nn.ReLU(),  # relu3-2
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C3, C3, (3, 3)),
    nn.ReLU(),  # relu3-3
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C3, C3, (3, 3)),
    nn.ReLU(),  # relu3-4
    nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True),
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C3, C4, (3, 3)),
    nn.ReLU(),  # relu4-1, this is the last layer used
    nn.ReflectionPad2d((1, 1, 1, 1)),
    nn.Conv2d(C4, C4, (3, 3)),
    nn.ReLU(),  # relu4-2
)


class Net(nn.Module):
    def __init__(self, encoder, decoder):
        super(Net, self).__init__()  # noqa: UP008  (the repo's spelling)
        enc_layers = list(encoder.children())
        self.enc_1 = nn.Sequential(*enc_layers[:4])  # input -> relu1_1
        self.enc_2 = nn.Sequential(*enc_layers[4:11])  # relu1_1 -> relu2_1
        self.enc_3 = nn.Sequential(*enc_layers[11:18])  # relu2_1 -> relu3_1
        self.enc_4 = nn.Sequential(*enc_layers[18:31])  # relu3_1 -> relu4_1
        self.decoder = decoder
        self.mse_loss = nn.MSELoss()

        # fix the encoder
        for name in ['enc_1', 'enc_2', 'enc_3', 'enc_4']:
            for param in getattr(self, name).parameters():
                param.requires_grad = False

    # extract relu1_1, relu2_1, relu3_1, relu4_1 from input image
    def encode_with_intermediate(self, input):
        results = [input]
        for i in range(4):
            func = getattr(self, 'enc_{:d}'.format(i + 1))  # noqa: UP032
            results.append(func(results[-1]))
        return results[1:]

    # extract relu4_1 from input image
    def encode(self, input):
        for i in range(4):
            input = getattr(self, 'enc_{:d}'.format(i + 1))(input)  # noqa: UP032
        return input

    def calc_content_loss(self, input, target):
        assert (input.size() == target.size())
        assert (target.requires_grad is False)
        return self.mse_loss(input, target)

    def calc_style_loss(self, input, target):
        assert (input.size() == target.size())
        assert (target.requires_grad is False)
        input_mean, input_std = calc_mean_std(input)
        target_mean, target_std = calc_mean_std(target)
        return self.mse_loss(input_mean, target_mean) + \
            self.mse_loss(input_std, target_std)

    def forward(self, content, style, alpha=1.0):
        assert 0 <= alpha <= 1
        style_feats = self.encode_with_intermediate(style)
        content_feat = self.encode(content)
        t = adaptive_instance_normalization(content_feat, style_feats[-1])
        t = alpha * t + (1 - alpha) * content_feat

        g_t = self.decoder(t)
        g_t_feats = self.encode_with_intermediate(g_t)

        loss_c = self.calc_content_loss(g_t_feats[-1], t)
        loss_s = self.calc_style_loss(g_t_feats[0], style_feats[0])
        for i in range(1, 4):
            loss_s += self.calc_style_loss(g_t_feats[i], style_feats[i])
        return loss_c, loss_s


# ------------------------------------------------------------------------- synthetic images
yy, xx = np.meshgrid(np.linspace(-1, 1, SIZE), np.linspace(-1, 1, SIZE), indexing="ij")


def content_image():
    # smooth colour gradients with a few soft blobs: "photographs"
    img = np.stack([0.5 + 0.3 * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) for _ in range(3)])
    for _ in range(3):
        cx, cy, r = rng.uniform(-0.7, 0.7), rng.uniform(-0.7, 0.7), rng.uniform(0.15, 0.4)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r ** 2))
        img += blob[None] * rng.uniform(-0.4, 0.4, size=(3, 1, 1))
    return np.clip(img, 0, 1)


def style_image():
    # high-frequency coloured stripes / checks: "paintings"
    f1, f2 = rng.uniform(4, 10, size=2)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    pattern = np.sin(f1 * np.pi * u) * (1 + 0.5 * np.sign(np.sin(f2 * np.pi * v)))
    colours = rng.uniform(0, 1, size=(3, 1, 1))
    return np.clip(0.5 + 0.4 * pattern[None] * colours + 0.1 * rng.normal(size=(3, SIZE, SIZE)), 0, 1)


def to_tensor(images):
    return torch.from_numpy(np.stack(images).astype(np.float32))


contents = to_tensor([content_image() for _ in range(16)])
styles = to_tensor([style_image() for _ in range(16)])

# "pretrained" encoder: fixed random weights (the repo loads vgg_normalised.pth here)
for m in vgg.modules():
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
        nn.init.uniform_(m.bias, 0.0, 0.1)
vgg = nn.Sequential(*list(vgg.children())[:31])
network = Net(vgg, decoder)
network.train()
network.to(device)
print(f"encoder stages {[len(getattr(network, f'enc_{i}')) for i in range(1, 5)]} "
      f"trainable {sum(p.numel() for p in network.parameters() if p.requires_grad)} "
      f"frozen {sum(p.numel() for p in network.parameters() if not p.requires_grad)}")

# AdaIN itself: the output carries the style's channel statistics
with torch.no_grad():
    c_feat = network.encode(contents[:4])
    s_feat = network.encode(styles[:4])
    t = adaptive_instance_normalization(c_feat, s_feat)
    t_mean, t_std = calc_mean_std(t)
    s_mean, s_std = calc_mean_std(s_feat)
    # channels the content leaves all-zero (dead ReLUs) carry only the style's mean
    live = calc_mean_std(c_feat)[1] > 1e-2
    adain_err = max((t_mean - s_mean).abs().max().item(), (t_std - s_std).abs()[live].max().item())
print(f"relu4_1 features {tuple(c_feat.shape)} adain stats err {adain_err:.2e}")

# ------------------------------------------------------------------------------- train.py
lr, lr_decay = 5e-3, 5e-3
content_weight, style_weight = 1.0, 10.0
max_iter, batch_size = 60, 4
optimizer = torch.optim.Adam(network.decoder.parameters(), lr=lr)
decoder_before = [p.detach().clone() for p in network.decoder.parameters()]


def held_out_loss():
    # the last four content/style images are never drawn for training
    with torch.no_grad():
        loss_c, loss_s = network(contents[-4:].to(device), styles[-4:].to(device))
    return (content_weight * loss_c + style_weight * loss_s).item()


held_out_before = held_out_loss()


def adjust_learning_rate(optimizer, iteration_count):
    """Imitating the original implementation"""
    lr_now = lr / (1.0 + lr_decay * iteration_count)
    for param_group in optimizer.param_groups:
        param_group['lr'] = lr_now


history_c, history_s = [], []
for i in range(max_iter):
    adjust_learning_rate(optimizer, iteration_count=i)
    idx_c = torch.randint(0, len(contents) - 4, (batch_size,))
    idx_s = torch.randint(0, len(styles) - 4, (batch_size,))
    content_images = contents[idx_c].to(device)
    style_images = styles[idx_s].to(device)
    loss_c, loss_s = network(content_images, style_images)
    loss_c = content_weight * loss_c
    loss_s = style_weight * loss_s
    loss = loss_c + loss_s

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    history_c.append(loss_c.item())
    history_s.append(loss_s.item())
    if (i + 1) % 20 == 0:
        print(f"iter {i + 1:3d} loss_content {np.mean(history_c[-20:]):.4f} loss_style {np.mean(history_s[-20:]):.4f} "
              f"lr {optimizer.param_groups[0]['lr']:.6f}")

content_drop = np.mean(history_c[-10:]) / np.mean(history_c[:10])
style_drop = np.mean(history_s[-10:]) / np.mean(history_s[:10])
encoder_grads = sum(p.grad is not None for name in ['enc_1', 'enc_2', 'enc_3', 'enc_4']
                    for p in getattr(network, name).parameters())
decoder_moved = all(not torch.equal(a, b) for a, b in zip(decoder_before, network.decoder.parameters()))
held_out_after = held_out_loss()
print(f"held-out loss {held_out_before:.4f} -> {held_out_after:.4f}")
print(f"content loss ratio {content_drop:.4f} style loss ratio {style_drop:.4f} "
      f"encoder grads {encoder_grads} decoder moved {decoder_moved}")


# -------------------------------------------------------------------------------- test.py
def style_transfer(vgg, decoder, content, style, alpha=1.0,
                   interpolation_weights=None):
    assert (0.0 <= alpha <= 1.0)
    content_f = vgg(content)
    style_f = vgg(style)
    if interpolation_weights:
        _, C, H, W = content_f.size()
        feat = torch.FloatTensor(1, C, H, W).zero_().to(device)
        base_feat = adaptive_instance_normalization(content_f, style_f)
        for i, w in enumerate(interpolation_weights):
            feat = feat + w * base_feat[i:i + 1]
        content_f = content_f[0:1]
    else:
        feat = adaptive_instance_normalization(content_f, style_f)
    feat = feat * alpha + content_f * (1 - alpha)
    return decoder(feat)


network.eval()
encoder = network.encode
content = contents[-1].to(device).unsqueeze(0)
style = styles[-3:].to(device)
with torch.no_grad():
    output = style_transfer(encoder, decoder, content, style[:1], alpha=1.0)
    half = style_transfer(encoder, decoder, content, style[:1], alpha=0.5)
    no_style = style_transfer(encoder, decoder, content, style[:1], alpha=0.0)
    plain = decoder(encoder(content))
    alpha0_same = torch.allclose(no_style, plain, atol=1e-6)

    # style interpolation: content expanded to one row per style
    content_rows = content.expand_as(style)
    mixed = style_transfer(encoder, decoder, content_rows, style, 1.0, [0.5, 0.3, 0.2])
    one_hot = style_transfer(encoder, decoder, content_rows, style, 1.0, [1.0, 0.0, 0.0])
    one_hot_same = torch.allclose(one_hot, output, atol=1e-5)

    # alpha interpolates in feature space: alpha=0.5 decodes the midpoint of the two features
    content_f, t_f = encoder(content), adaptive_instance_normalization(encoder(content), encoder(style[:1]))
    half_same = torch.allclose(half, decoder(0.5 * t_f + 0.5 * content_f), atol=1e-5)
print(f"output {tuple(output.shape)} mixed {tuple(mixed.shape)} alpha=0 == decoder(content): {alpha0_same} "
      f"one-hot weights == single style: {one_hot_same} requires_grad {output.requires_grad}")
print(f"alpha=0.5 == decoder(midpoint): {half_same} output range [{output.min().item():.3f}, {output.max().item():.3f}]")

checks_ok = int(alpha0_same and one_hot_same and half_same and encoder_grads == 0 and decoder_moved
                and adain_err < 1e-2)
print(f"FINAL content_ratio={content_drop:.4f} style_ratio={style_drop:.4f} adain_err={adain_err:.6f} "
      f"held_out_ratio={held_out_after / held_out_before:.4f} checks_ok={checks_ok}")
