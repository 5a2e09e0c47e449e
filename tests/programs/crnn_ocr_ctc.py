"""CRNN text recognition with CTC, the way meijieru/crnn.pytorch and the CTC OCR tutorials write it.

Synthetic digit strips are rendered from tiny 3x5 glyph bitmaps (random gaps, jitter and noise).
The CRNN is a conv stack whose ``MaxPool2d((2, 1))`` layers collapse the height while keeping the
width as the time axis, a last conv with a height-sized kernel, ``conv.squeeze(2).permute(2, 0, 1)``
to (T, N, C), two ``BidirectionalLSTM`` blocks (``nn.LSTM(bidirectional=True)`` + a Linear on the
``view(T * b, h)`` output) and ``F.log_softmax(2)``.  ``nn.CTCLoss(blank=0, zero_infinity=True)``
takes ``input_lengths = torch.full((N,), T, dtype=torch.long)`` and the targets concatenated
(the ``strLabelConverter.encode`` way); the padded-2D-targets route and the per-sample
``reduction='none'`` route must give the same loss.  Decoding is greedy: ``argmax(2)``,
``torch.unique_consecutive`` and blanks dropped, checked against the converter's Python loop.
Adam at lr 1e-2 (crnn.pytorch's ``betas=(0.5, 0.999)``), a tenth of it for the last 100 of 500
iterations by ``MultiStepLR``. Character accuracy must rise.
"""

# ruff: noqa: UP004, UP008, UP030, UP031, UP032  (crnn.pytorch's own spelling: class X(object), super(Cls, self), "{0}".format, % formats)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

GLYPHS = {
    "0": ["111", "101", "101", "101", "111"],
    "1": ["010", "110", "010", "010", "111"],
    "2": ["111", "001", "111", "100", "111"],
    "3": ["111", "001", "011", "001", "111"],
    "4": ["101", "101", "111", "001", "001"],
}
alphabet = "01234"
IMG_H, IMG_W = 16, 32


def render_strip(text):
    img = np.zeros((IMG_H, IMG_W), dtype=np.float32)
    x = int(rng.integers(0, 3))
    for ch in text:
        glyph = np.array([[float(c) for c in row] for row in GLYPHS[ch]], dtype=np.float32)
        glyph = np.kron(glyph, np.ones((2, 2), dtype=np.float32))   # 10 x 6
        y = int(rng.integers(2, IMG_H - 10 - 1))
        img[y:y + 10, x:x + 6] = np.maximum(img[y:y + 10, x:x + 6], glyph)
        x += 6 + int(rng.integers(1, 3))
    img += 0.15 * rng.standard_normal(img.shape).astype(np.float32)
    return img


def make_batch(n):
    texts = ["".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size=int(rng.integers(2, 5))))
             for _ in range(n)]
    images = np.stack([render_strip(t) for t in texts])[:, None]
    return torch.from_numpy(images), texts


class strLabelConverter(object):
    """Convert between str and label (crnn.pytorch utils); index 0 is reserved for the blank."""

    def __init__(self, alphabet):
        self.alphabet = alphabet + "-"
        self.dict = {}
        for i, char in enumerate(alphabet):
            self.dict[char] = i + 1

    def encode(self, text):
        length = [len(s) for s in text]
        text = "".join(text)
        text = [self.dict[char] for char in text]
        return (torch.IntTensor(text), torch.IntTensor(length))

    def decode(self, t, length, raw=False):
        if length.numel() == 1:
            length = length[0]
            assert t.numel() == length, "text with length: {} does not match declared length: {}".format(
                t.numel(), length)
            if raw:
                return "".join([self.alphabet[i - 1] for i in t])
            char_list = []
            for i in range(length):
                if t[i] != 0 and (not (i > 0 and t[i - 1] == t[i])):
                    char_list.append(self.alphabet[t[i] - 1])
            return "".join(char_list)
        texts = []
        index = 0
        for i in range(length.numel()):
            n = length[i]
            texts.append(self.decode(t[index:index + n], torch.IntTensor([n]), raw=raw))
            index += n
        return texts


class BidirectionalLSTM(nn.Module):

    def __init__(self, nIn, nHidden, nOut):
        super(BidirectionalLSTM, self).__init__()
        self.rnn = nn.LSTM(nIn, nHidden, bidirectional=True)
        self.embedding = nn.Linear(nHidden * 2, nOut)

    def forward(self, input):
        recurrent, _ = self.rnn(input)
        T, b, h = recurrent.size()
        t_rec = recurrent.view(T * b, h)
        output = self.embedding(t_rec)  # [T * b, nOut]
        output = output.view(T, b, -1)
        return output


class CRNN(nn.Module):

    def __init__(self, imgH, nc, nclass, nh, leakyRelu=False):
        super(CRNN, self).__init__()
        assert imgH % 16 == 0, "imgH has to be a multiple of 16"
        ks = [3, 3, 3, 3]
        ps = [1, 1, 1, 1]
        ss = [1, 1, 1, 1]
        nm = [8, 16, 16, 24]
        cnn = nn.Sequential()

        def convRelu(i, batchNormalization=False):
            nIn = nc if i == 0 else nm[i - 1]
            nOut = nm[i]
            cnn.add_module("conv{0}".format(i), nn.Conv2d(nIn, nOut, ks[i], ss[i], ps[i]))
            if batchNormalization:
                cnn.add_module("batchnorm{0}".format(i), nn.BatchNorm2d(nOut))
            if leakyRelu:
                cnn.add_module("relu{0}".format(i), nn.LeakyReLU(0.2, inplace=True))
            else:
                cnn.add_module("relu{0}".format(i), nn.ReLU(True))

        convRelu(0, True)
        cnn.add_module("pooling{0}".format(0), nn.MaxPool2d((2, 1)))               # 8 x 32
        convRelu(1, True)
        cnn.add_module("pooling{0}".format(1), nn.MaxPool2d((2, 1)))               # 4 x 32
        convRelu(2, True)
        cnn.add_module("pooling{0}".format(2), nn.MaxPool2d((2, 2), (2, 2), (0, 0)))  # 2 x 16
        convRelu(3, True)
        cnn.add_module("conv4", nn.Conv2d(nm[3], nm[3], (2, 1), 1, 0))               # 1 x 16
        cnn.add_module("relu4", nn.ReLU(True))
        self.cnn = cnn
        self.rnn = nn.Sequential(
            BidirectionalLSTM(nm[3], nh, nh),
            BidirectionalLSTM(nh, nh, nclass))

    def forward(self, input):
        # conv features
        conv = self.cnn(input)
        b, c, h, w = conv.size()
        assert h == 1, "the height of conv must be 1"
        conv = conv.squeeze(2)
        conv = conv.permute(2, 0, 1)  # [w, b, c]
        # rnn features
        output = self.rnn(conv)
        output = F.log_softmax(output, 2)
        return output


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.1)
    elif classname.find("BatchNorm") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def greedy_decode(preds):
    """argmax over classes, collapse repeats with unique_consecutive, drop blanks."""
    best = preds.argmax(2).permute(1, 0)  # [b, T]
    out = []
    for seq in best:
        collapsed = torch.unique_consecutive(seq)
        out.append("".join(alphabet[int(i) - 1] for i in collapsed if int(i) != 0))
    return out


def char_accuracy(pred_texts, texts):
    correct = total = 0
    for p, t in zip(pred_texts, texts):
        total += len(t)
        correct += sum(1 for a, b in zip(p, t) if a == b)
    return correct / total


converter = strLabelConverter(alphabet)
nclass = len(alphabet) + 1
crnn = CRNN(IMG_H, 1, nclass, 24)
crnn.apply(weights_init)
criterion = nn.CTCLoss(blank=0, zero_infinity=True)
optimizer = torch.optim.Adam(crnn.parameters(), lr=1e-2, betas=(0.5, 0.999))
# a tenth of the rate for the last 100 iterations, so the run ends settled instead of wherever Adam's
# spikes at lr 1e-2 leave it
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[400], gamma=0.1)
print(crnn.cnn)

val_images, val_texts = make_batch(32)


def val():
    crnn.eval()
    with torch.no_grad():
        preds = crnn(val_images)
        T, batch_size, _ = preds.size()
        preds_size = torch.full((batch_size,), T, dtype=torch.long)
        text, length = converter.encode(val_texts)
        cost = criterion(preds, text, preds_size, length)
        _, best = preds.max(2)
        best = best.transpose(1, 0).contiguous().view(-1)
        sim_preds = converter.decode(best.data, preds_size.data, raw=False)
    crnn.train()
    greedy = greedy_decode(preds)
    assert greedy == sim_preds, (greedy, sim_preds)
    n_exact = sum(1 for p, t in zip(sim_preds, val_texts) if p == t)
    return cost.item(), char_accuracy(sim_preds, val_texts), n_exact


loss0, acc0, exact0 = val()
print("initial  val loss %.4f  char acc %.4f  exact %d/%d" % (loss0, acc0, exact0, len(val_texts)))

batch_size = 16
n_iter = 500
for i in range(1, n_iter + 1):
    cpu_images, cpu_texts = make_batch(batch_size)
    text, length = converter.encode(cpu_texts)
    preds = crnn(cpu_images)
    preds_size = torch.full((batch_size,), preds.size(0), dtype=torch.long)
    cost = criterion(preds, text, preds_size, length)
    crnn.zero_grad()
    cost.backward()
    torch.nn.utils.clip_grad_norm_(crnn.parameters(), 5.0)
    optimizer.step()
    scheduler.step()
    if i % 50 == 0:
        vloss, vacc, vexact = val()
        print("[%d/%d] train loss %.4f  val loss %.4f  char acc %.4f  exact %d/%d"
              % (i, n_iter, cost.item(), vloss, vacc, vexact, len(val_texts)))

# routes that must agree: concatenated targets vs padded (N, S) targets, and 'none' per-sample
crnn.eval()
with torch.no_grad():
    preds = crnn(val_images)
T = preds.size(0)
text, length = converter.encode(val_texts)
preds_size = torch.full((len(val_texts),), T, dtype=torch.long)
loss_concat = criterion(preds, text.long(), preds_size, length.long())
padded = torch.zeros(len(val_texts), int(length.max()), dtype=torch.long)
start = 0
for k, n in enumerate(length.tolist()):
    padded[k, :n] = text[start:start + n]
    start += n
loss_padded = F.ctc_loss(preds, padded, preds_size, length, blank=0, reduction="mean", zero_infinity=True)
per_sample = F.ctc_loss(preds, padded, tuple(preds_size.tolist()), tuple(length.tolist()), reduction="none")
loss_manual = (per_sample / length.clamp_min(1).float()).mean()
route_gap = max(abs(loss_concat.item() - loss_padded.item()), abs(loss_concat.item() - loss_manual.item()))
print("ctc routes: concat %.5f padded %.5f per-sample %.5f" % (loss_concat.item(), loss_padded.item(),
                                                               loss_manual.item()))
assert route_gap < 1e-4, route_gap

# the gradient the loss sends into the log-probs sums to ~0 per frame after the softmax
lp = preds.detach().clone().requires_grad_(True)
F.ctc_loss(lp, text, preds_size, length, reduction="sum").backward()
grad_rows = lp.grad.sum(2)
print("grad frame sums max |.| %.4f" % grad_rows.abs().max().item())

vloss, vacc, vexact = val()
assert vloss < loss0 and vacc > acc0, (vloss, loss0, vacc, acc0)
print("FINAL loss=%.4f acc=%.4f exact=%d acc_gain=%.4f route_gap=%.6f"
      % (vloss, vacc, vexact, vacc - acc0, route_gap))
