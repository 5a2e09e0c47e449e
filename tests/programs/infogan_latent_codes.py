"""InfoGAN (Chen et al., NeurIPS 2016) in the layout of eriklindernoren/PyTorch-GAN's ``implementations/infogan``,
at a tiny size on synthetic 16x16 shapes with one categorical and two continuous factors.

The data: each image is a square outline, a filled disc or a plus sign (the categorical factor), drawn at a
random size and a random horizontal offset (the two continuous factors), with a little noise, scaled to
[-1, 1] as ``transforms.Normalize([0.5], [0.5])`` would.

The models follow the repo: ``Generator`` on ``torch.cat((noise, labels, code), -1)`` -> ``nn.Linear`` ->
``view`` -> ``BatchNorm2d``/``nn.Upsample(scale_factor=2)``/``Conv2d``/``BatchNorm2d(c, 0.8)``/``LeakyReLU(0.2,
inplace=True)`` -> ``Tanh``; ``Discriminator`` with a shared trunk of ``discriminator_block``s (``Dropout2d(0.25)``)
and three heads: ``adv_layer`` (``nn.Linear``), ``aux_layer`` (``nn.Linear`` + ``nn.Softmax(dim=1)``) and
``latent_layer``; ``weights_init_normal`` through ``apply`` with ``m.weight.data.normal_(0.0, 0.02)`` and BatchNorm
``normal_(1.0, 0.02)`` + ``constant_(bias, 0.0)``; ``FloatTensor``/``LongTensor`` + ``Variable(...,
requires_grad=False)`` idioms, ``FloatTensor(batch_size, 1).fill_(1.0)`` targets; the LSGAN ``MSELoss``
adversarial loss; the information loss ``lambda_cat * CrossEntropyLoss(pred_label, gt_labels) + lambda_con *
MSELoss(pred_code, code_input)`` stepped by its own ``optim.Adam(itertools.chain(generator.parameters(),
discriminator.parameters()))``.

The one-hot codes are built three ways, which must agree: the repo's ``to_categorical`` (NumPy fancy index
into ``FloatTensor``), ``F.one_hot(...).float()`` and ``torch.zeros(...).scatter_(1, y.unsqueeze(1), 1)``.

Checked: the info loss falls; Q recovers the categorical code of generated images; the categorical head,
run on *real* images, clusters them by shape, scored by the best assignment of clusters to shapes over
``itertools.permutations``; latent traversals (the repo's ``sample_image`` grid: the code varied along
``np.linspace(-1, 1, n_row)`` with the noise and class fixed) are read by image statistics (the mean
intensity and the horizontal centroid of each image), and Q reads back the traversed code (correlation).
"""

# ruff: noqa: UP008, UP031, B007  (the repo's own spelling: super(Generator, self), % formats, for i, (imgs, labels))

import itertools
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


class Opt:
    n_epochs = 6
    batch_size = 32
    lr = 0.001
    b1 = 0.5
    b2 = 0.999
    latent_dim = 8
    n_classes = 3
    code_dim = 2
    img_size = 16
    channels = 1


opt = Opt()
cuda = True if torch.cuda.is_available() else False


def weights_init_normal(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        m.weight.data.normal_(1.0, 0.02)
        torch.nn.init.constant_(m.bias.data, 0.0)


def to_categorical(y, num_columns):
    """Returns one-hot encoded Variable"""
    y_cat = np.zeros((y.shape[0], num_columns))
    y_cat[range(y.shape[0]), y] = 1.0
    return Variable(FloatTensor(y_cat))


# ----------------------------------------------------------------------------------- data
def draw_shape(kind, size, offset):
    yy, xx = np.mgrid[0:opt.img_size, 0:opt.img_size].astype(np.float64)
    cy, cx = 7.5, 7.5 + offset
    if kind == 0:  # square outline
        inside = (np.abs(xx - cx) <= size) & (np.abs(yy - cy) <= size)
        hole = (np.abs(xx - cx) <= size - 1.5) & (np.abs(yy - cy) <= size - 1.5)
        img = (inside & ~hole).astype(np.float64)
    elif kind == 1:  # filled disc
        img = (((xx - cx) ** 2 + (yy - cy) ** 2) <= size ** 2).astype(np.float64)
    else:  # plus sign
        bar_h = (np.abs(yy - cy) <= 1.0) & (np.abs(xx - cx) <= size)
        bar_v = (np.abs(xx - cx) <= 1.0) & (np.abs(yy - cy) <= size)
        img = (bar_h | bar_v).astype(np.float64)
    return img


def make_shapes(n, rng):
    kinds = rng.randint(0, opt.n_classes, n)
    sizes = rng.uniform(2.5, 5.0, n)
    offsets = rng.uniform(-2.5, 2.5, n)
    imgs = np.stack([draw_shape(k, s, o) for k, s, o in zip(kinds, sizes, offsets)])
    imgs = np.clip(imgs + 0.05 * rng.randn(*imgs.shape), 0.0, 1.0)
    imgs = (imgs - 0.5) / 0.5
    return imgs[:, None].astype(np.float32), kinds, sizes, offsets


data_rng = np.random.RandomState(1234 + seed)
train_imgs, train_kinds, _, _ = make_shapes(384, data_rng)
test_imgs, test_kinds, _, _ = make_shapes(192, data_rng)
dataset = torch.utils.data.TensorDataset(torch.from_numpy(train_imgs), torch.from_numpy(train_kinds))
dataloader = torch.utils.data.DataLoader(dataset, batch_size=opt.batch_size, shuffle=True, drop_last=True)


# ----------------------------------------------------------------------------------- models
class Generator(nn.Module):
    def __init__(self):
        super(Generator, self).__init__()
        input_dim = opt.latent_dim + opt.n_classes + opt.code_dim

        self.init_size = opt.img_size // 4  # Initial size before upsampling
        self.l1 = nn.Sequential(nn.Linear(input_dim, 32 * self.init_size ** 2))

        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(32),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(32, 32, 3, stride=1, padding=1),
            nn.BatchNorm2d(32, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(32, 16, 3, stride=1, padding=1),
            nn.BatchNorm2d(16, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(16, opt.channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, noise, labels, code):
        gen_input = torch.cat((noise, labels, code), -1)
        out = self.l1(gen_input)
        out = out.view(out.shape[0], 32, self.init_size, self.init_size)
        img = self.conv_blocks(out)
        return img


class Discriminator(nn.Module):
    def __init__(self):
        super(Discriminator, self).__init__()

        def discriminator_block(in_filters, out_filters, bn=True):
            """Returns layers of each discriminator block"""
            block = [nn.Conv2d(in_filters, out_filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
            if bn:
                block.append(nn.BatchNorm2d(out_filters, 0.8))
            return block

        self.conv_blocks = nn.Sequential(
            *discriminator_block(opt.channels, 8, bn=False),
            *discriminator_block(8, 16),
            *discriminator_block(16, 32),
        )

        # The height and width of downsampled image
        ds_size = opt.img_size // 2 ** 3

        # Output layers
        self.adv_layer = nn.Sequential(nn.Linear(32 * ds_size ** 2, 1))
        self.aux_layer = nn.Sequential(nn.Linear(32 * ds_size ** 2, opt.n_classes), nn.Softmax(dim=1))
        self.latent_layer = nn.Sequential(nn.Linear(32 * ds_size ** 2, opt.code_dim))

    def forward(self, img):
        out = self.conv_blocks(img)
        out = out.view(out.shape[0], -1)
        validity = self.adv_layer(out)
        label = self.aux_layer(out)
        latent_code = self.latent_layer(out)

        return validity, label, latent_code


# Loss functions
adversarial_loss = torch.nn.MSELoss()
categorical_loss = torch.nn.CrossEntropyLoss()
continuous_loss = torch.nn.MSELoss()

# Loss weights
lambda_cat = 1
lambda_con = 0.1

# Initialize generator and discriminator
generator = Generator()
discriminator = Discriminator()

if cuda:
    generator.cuda()
    discriminator.cuda()
    adversarial_loss.cuda()
    categorical_loss.cuda()
    continuous_loss.cuda()

# Initialize weights
generator.apply(weights_init_normal)
discriminator.apply(weights_init_normal)

# Optimizers
optimizer_G = torch.optim.Adam(generator.parameters(), lr=opt.lr, betas=(opt.b1, opt.b2))
optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=opt.lr, betas=(opt.b1, opt.b2))
optimizer_info = torch.optim.Adam(
    itertools.chain(generator.parameters(), discriminator.parameters()), lr=opt.lr, betas=(opt.b1, opt.b2)
)

FloatTensor = torch.cuda.FloatTensor if cuda else torch.FloatTensor
LongTensor = torch.cuda.LongTensor if cuda else torch.LongTensor

# ----------------------------------------------------------------------------------- one-hot three ways
probe = np.random.randint(0, opt.n_classes, 10)
onehot_np = to_categorical(probe, num_columns=opt.n_classes)
probe_t = LongTensor(probe)
onehot_f = F.one_hot(probe_t, num_classes=opt.n_classes).float()
onehot_s = torch.zeros(len(probe), opt.n_classes).scatter_(1, probe_t.unsqueeze(1), 1)
onehot_agree = bool(torch.equal(onehot_np, onehot_f) and torch.equal(onehot_f, onehot_s))
print("one-hot: to_categorical %s %s, F.one_hot %s, scatter_ %s, agree %s"
      % (tuple(onehot_np.shape), onehot_np.dtype, onehot_f.dtype, onehot_s.dtype, onehot_agree))

# Static generator inputs for sampling
n_row = opt.n_classes
static_z = Variable(FloatTensor(np.zeros((n_row ** 2, opt.latent_dim))))
static_label = to_categorical(
    np.array([num for _ in range(n_row) for num in range(n_row)]), num_columns=opt.n_classes
)
static_code = Variable(FloatTensor(np.zeros((n_row ** 2, opt.code_dim))))


# ----------------------------------------------------------------------------------- training
info_history = []
for epoch in range(opt.n_epochs):
    sums = np.zeros(3)
    n_batches = 0
    for i, (imgs, labels) in enumerate(dataloader):

        batch_size = imgs.shape[0]

        # Adversarial ground truths
        valid = Variable(FloatTensor(batch_size, 1).fill_(1.0), requires_grad=False)
        fake = Variable(FloatTensor(batch_size, 1).fill_(0.0), requires_grad=False)

        # Configure input
        real_imgs = Variable(imgs.type(FloatTensor))
        labels = to_categorical(labels.numpy(), num_columns=opt.n_classes)

        # -----------------
        #  Train Generator
        # -----------------

        optimizer_G.zero_grad()

        # Sample noise and labels as generator input
        z = Variable(FloatTensor(np.random.normal(0, 1, (batch_size, opt.latent_dim))))
        label_input = to_categorical(np.random.randint(0, opt.n_classes, batch_size), num_columns=opt.n_classes)
        code_input = Variable(FloatTensor(np.random.uniform(-1, 1, (batch_size, opt.code_dim))))

        # Generate a batch of images
        gen_imgs = generator(z, label_input, code_input)

        # Loss measures generator's ability to fool the discriminator
        validity, _, _ = discriminator(gen_imgs)
        g_loss = adversarial_loss(validity, valid)

        g_loss.backward()
        optimizer_G.step()

        # ---------------------
        #  Train Discriminator
        # ---------------------

        optimizer_D.zero_grad()

        # Loss for real images
        real_pred, _, _ = discriminator(real_imgs)
        d_real_loss = adversarial_loss(real_pred, valid)

        # Loss for fake images
        fake_pred, _, _ = discriminator(gen_imgs.detach())
        d_fake_loss = adversarial_loss(fake_pred, fake)

        # Total discriminator loss
        d_loss = (d_real_loss + d_fake_loss) / 2

        d_loss.backward()
        optimizer_D.step()

        # ------------------
        # Information Loss
        # ------------------

        optimizer_info.zero_grad()

        # Sample labels
        sampled_labels = np.random.randint(0, opt.n_classes, batch_size)

        # Ground truth labels
        gt_labels = Variable(LongTensor(sampled_labels), requires_grad=False)

        # Sample noise, labels and code as generator input
        z = Variable(FloatTensor(np.random.normal(0, 1, (batch_size, opt.latent_dim))))
        label_input = to_categorical(sampled_labels, num_columns=opt.n_classes)
        code_input = Variable(FloatTensor(np.random.uniform(-1, 1, (batch_size, opt.code_dim))))

        gen_imgs = generator(z, label_input, code_input)
        _, pred_label, pred_code = discriminator(gen_imgs)

        info_loss = lambda_cat * categorical_loss(pred_label, gt_labels) + lambda_con * continuous_loss(
            pred_code, code_input
        )

        info_loss.backward()
        optimizer_info.step()

        sums += np.array([d_loss.item(), g_loss.item(), info_loss.item()])
        n_batches += 1

    sums /= n_batches
    info_history.append(sums[2])
    print("[Epoch %d/%d] [Batch %d] [D loss: %f] [G loss: %f] [info loss: %f]"
          % (epoch, opt.n_epochs, n_batches, sums[0], sums[1], sums[2]))


# ----------------------------------------------------------------------------------- evaluation
generator.eval()
discriminator.eval()


def pearson(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm() + 1e-12))


with torch.no_grad():
    # Q on generated images: does it read back the class it was given?
    n_eval = 192
    eval_labels = np.arange(n_eval) % opt.n_classes
    z = Variable(FloatTensor(np.random.normal(0, 1, (n_eval, opt.latent_dim))))
    code = Variable(FloatTensor(np.random.uniform(-1, 1, (n_eval, opt.code_dim))))
    gen = generator(z, to_categorical(eval_labels, num_columns=opt.n_classes), code)
    _, pred_label, pred_code = discriminator(gen)
    q_acc = (pred_label.argmax(1) == LongTensor(eval_labels)).float().mean().item()
    q_code_corr = np.mean([pearson(pred_code[:, k], code[:, k]) for k in range(opt.code_dim)])
    print("Q on generated: categorical accuracy %.3f, continuous code correlation %.3f" % (q_acc, q_code_corr))

    # the categorical head as a clusterer of real shapes, matched to the true shapes by the best permutation
    _, real_label, _ = discriminator(torch.from_numpy(test_imgs))
    clusters = real_label.argmax(dim=1)
    truth = torch.from_numpy(test_kinds)
    confusion = torch.zeros(opt.n_classes, opt.n_classes, dtype=torch.long)
    confusion.index_put_((clusters, truth), torch.ones_like(truth), accumulate=True)
    best_acc, best_perm = 0.0, None
    for perm in itertools.permutations(range(opt.n_classes)):
        hits = sum(confusion[c, perm[c]].item() for c in range(opt.n_classes))
        if hits / len(truth) > best_acc:
            best_acc, best_perm = hits / len(truth), perm
    print("real shapes clustered by the categorical head: confusion", confusion.tolist())
    print("best permutation", best_perm, "accuracy %.3f" % best_acc)

    # latent traversals: sample_image's grid, one code varied along linspace(-1, 1), noise and class fixed
    n_steps = 7
    traversal_stats = []
    for k in range(opt.code_dim):
        reads, spans = [], []
        for cls in range(opt.n_classes):
            zeros = np.zeros((n_steps, 1))
            c_varied = np.repeat(np.linspace(-1, 1, n_steps)[:, np.newaxis], 1, 0)
            c = np.concatenate((c_varied, zeros), -1) if k == 0 else np.concatenate((zeros, c_varied), -1)
            z_fixed = Variable(FloatTensor(np.random.normal(0, 1, (1, opt.latent_dim)))).repeat(n_steps, 1)
            sample = generator(z_fixed, to_categorical(np.full(n_steps, cls), opt.n_classes), FloatTensor(c))
            pixels = (sample.squeeze(1) + 1) / 2
            mass = pixels.sum(dim=(1, 2))
            xs = torch.arange(opt.img_size, dtype=torch.float32)
            centroid_x = (pixels.sum(dim=1) * xs).sum(dim=1) / mass
            _, _, read_back = discriminator(sample)
            reads.append(pearson(read_back[:, k], FloatTensor(c[:, k])))
            spans.append(max(float(mass.max() - mass.min()) / opt.img_size ** 2,
                             float(centroid_x.max() - centroid_x.min()) / opt.img_size))
        traversal_stats.append((np.mean(reads), np.mean(spans)))
        print("traversal c%d: Q read-back correlation %.3f, image statistic span %.3f"
              % (k + 1, traversal_stats[-1][0], traversal_stats[-1][1]))

    static_imgs = generator(static_z, static_label, static_code)
    print("static sample grid", tuple(static_imgs.shape), "range [%.2f, %.2f]"
          % (static_imgs.min().item(), static_imgs.max().item()))

info_drop = info_history[0] - info_history[-1]
print("FINAL info_first=%.4f info_last=%.4f info_drop=%.4f q_acc=%.4f cluster_acc=%.4f code_corr=%.4f "
      "traverse_read=%.4f traverse_span=%.4f onehot_agree=%d"
      % (info_history[0], info_history[-1], info_drop, q_acc, best_acc, q_code_corr,
         np.mean([s[0] for s in traversal_stats]), np.mean([s[1] for s in traversal_stats]), int(onehot_agree)))
