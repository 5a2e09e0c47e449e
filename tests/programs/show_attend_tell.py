"""Show, Attend and Tell (Xu et al.) as sgrvinod's a-PyTorch-Tutorial-to-Image-Captioning writes it,
on synthetic images of coloured shapes with template captions.

The ``Encoder`` is a small Conv-BatchNorm-ReLU CNN ending in ``nn.AdaptiveAvgPool2d((enc_size, enc_size))`` and
``permute(0, 2, 3, 1)``: a grid of annotation vectors. ``Attention`` is additive
(``self.full_att(self.relu(att1 + att2.unsqueeze(1))).squeeze(2)``, ``softmax(dim=1)``,
``(encoder_out * alpha.unsqueeze(2)).sum(dim=1)``). ``DecoderWithAttention`` has ``init_weights``
(``embedding.weight.data.uniform_``, ``fc.bias.data.fill_(0)``), ``init_hidden_state`` from
``encoder_out.mean(dim=1)``, an ``nn.LSTMCell`` over ``torch.cat([embeddings[:batch_size_t, t, :],
gate * awe], dim=1)`` with the gating scalar ``self.sigmoid(self.f_beta(h))``; captions sorted by
``caption_lengths.squeeze(1).sort(dim=0, descending=True)`` (many ties), only the still-decoding
rows run per step (``batch_size_t = sum([l > t for l in decode_lengths])``), and predictions and
alphas are written into ``torch.zeros`` buffers by ``predictions[:batch_size_t, t, :] = preds``.
Training: ``pack_padded_sequence(scores, decode_lengths, batch_first=True).data`` against the packed
targets, plus the doubly stochastic regulariser ``alpha_c * ((1. - alphas.sum(dim=1)) ** 2).mean()``,
``clip_gradient`` by ``param.grad.data.clamp_(-grad_clip, grad_clip)`` over each optimizer's
``param_groups``, separate encoder and decoder Adams, the repo's top-5 ``accuracy`` by
``scores.topk(k, 1, True, True)``, ``AverageMeter``s, and ``adjust_learning_rate`` shrinking
``param_group['lr']``. Evaluation: greedy decoding of the whole batch until ``<end>``, and corpus
BLEU-1 written by hand (clipped unigram counts with ``collections.Counter``, brevity penalty).
"""

import math
import os
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

SIZE = 16
COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 0.9, 0.2), "blue": (0.2, 0.3, 1.0)}
SHAPES = ("square", "disc", "bar")


def make_example():
    colour = str(rng.choice(list(COLOURS)))
    shape = str(rng.choice(SHAPES))
    big = bool(rng.random() < 0.5)
    side = str(rng.choice(["left", "right", "middle"]))
    r = 4.5 if big else 2.5
    cx = {"left": 4.0, "middle": 8.0, "right": 12.0}[side] + rng.uniform(-0.7, 0.7)
    cy = rng.uniform(5.0, 11.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    if shape == "square":
        inside = (np.abs(yy - cy) < r * 0.8) & (np.abs(xx - cx) < r * 0.8)
    elif shape == "disc":
        inside = np.hypot(yy - cy, xx - cx) < r
    else:
        inside = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < 1.2)
    image = rng.normal(0.0, 0.1, size=(3, SIZE, SIZE)).astype(np.float32)
    image[:, inside] += np.array(COLOURS[colour], dtype=np.float32)[:, None]
    words = ["a"] + (["big"] if big else []) + [colour, shape]
    if side != "middle":
        words += ["on", "the", side]
    return image, words


word_map = {"<pad>": 0}
for w in ["a", "big", *COLOURS, *SHAPES, "on", "the", "left", "right", "<unk>", "<start>", "<end>"]:
    word_map[w] = len(word_map)
rev_word_map = {v: k for k, v in word_map.items()}
MAX_LEN = 7


def encode(words):
    enc = [word_map["<start>"]] + [word_map.get(w, word_map["<unk>"]) for w in words] + [word_map["<end>"]]
    return enc + [word_map["<pad>"]] * (MAX_LEN + 2 - len(enc)), len(words) + 2


def make_split(n):
    images, captions, lengths, references = [], [], [], []
    for _ in range(n):
        image, words = make_example()
        enc, caplen = encode(words)
        images.append(image)
        captions.append(enc)
        lengths.append([caplen])
        references.append(words)
    return (torch.from_numpy(np.stack(images)), torch.LongTensor(captions), torch.LongTensor(lengths), references)


class Encoder(nn.Module):
    def __init__(self, encoded_image_size=4, encoder_dim=32):
        super().__init__()
        self.enc_image_size = encoded_image_size
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, encoder_dim, 3, padding=1, bias=False), nn.BatchNorm2d(encoder_dim), nn.ReLU(inplace=True),
        )
        self.adaptive_pool = nn.AdaptiveAvgPool2d((encoded_image_size, encoded_image_size))

    def forward(self, images):
        out = self.cnn(images)
        out = self.adaptive_pool(out)
        return out.permute(0, 2, 3, 1)


class Attention(nn.Module):
    def __init__(self, encoder_dim, decoder_dim, attention_dim):
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=1)

    def forward(self, encoder_out, decoder_hidden):
        att1 = self.encoder_att(encoder_out)
        att2 = self.decoder_att(decoder_hidden)
        att = self.full_att(self.relu(att1 + att2.unsqueeze(1))).squeeze(2)
        alpha = self.softmax(att)
        attention_weighted_encoding = (encoder_out * alpha.unsqueeze(2)).sum(dim=1)
        return attention_weighted_encoding, alpha


class DecoderWithAttention(nn.Module):
    def __init__(self, attention_dim, embed_dim, decoder_dim, vocab_size, encoder_dim=32, dropout=0.1):
        super().__init__()
        self.encoder_dim = encoder_dim
        self.attention_dim = attention_dim
        self.embed_dim = embed_dim
        self.decoder_dim = decoder_dim
        self.vocab_size = vocab_size
        self.dropout = dropout
        self.attention = Attention(encoder_dim, decoder_dim, attention_dim)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(p=self.dropout)
        self.decode_step = nn.LSTMCell(embed_dim + encoder_dim, decoder_dim, bias=True)
        self.init_h = nn.Linear(encoder_dim, decoder_dim)
        self.init_c = nn.Linear(encoder_dim, decoder_dim)
        self.f_beta = nn.Linear(decoder_dim, encoder_dim)
        self.sigmoid = nn.Sigmoid()
        self.fc = nn.Linear(decoder_dim, vocab_size)
        self.init_weights()

    def init_weights(self):
        self.embedding.weight.data.uniform_(-0.1, 0.1)
        self.fc.bias.data.fill_(0)
        self.fc.weight.data.uniform_(-0.1, 0.1)

    def init_hidden_state(self, encoder_out):
        mean_encoder_out = encoder_out.mean(dim=1)
        h = self.init_h(mean_encoder_out)
        c = self.init_c(mean_encoder_out)
        return h, c

    def forward(self, encoder_out, encoded_captions, caption_lengths):
        batch_size = encoder_out.size(0)
        encoder_dim = encoder_out.size(-1)
        vocab_size = self.vocab_size
        encoder_out = encoder_out.view(batch_size, -1, encoder_dim)
        num_pixels = encoder_out.size(1)
        caption_lengths, sort_ind = caption_lengths.squeeze(1).sort(dim=0, descending=True)
        encoder_out = encoder_out[sort_ind]
        encoded_captions = encoded_captions[sort_ind]
        embeddings = self.embedding(encoded_captions)
        h, c = self.init_hidden_state(encoder_out)
        decode_lengths = (caption_lengths - 1).tolist()
        predictions = torch.zeros(batch_size, max(decode_lengths), vocab_size).to(device)
        alphas = torch.zeros(batch_size, max(decode_lengths), num_pixels).to(device)
        for t in range(max(decode_lengths)):
            batch_size_t = sum([l > t for l in decode_lengths])
            attention_weighted_encoding, alpha = self.attention(encoder_out[:batch_size_t], h[:batch_size_t])
            gate = self.sigmoid(self.f_beta(h[:batch_size_t]))
            attention_weighted_encoding = gate * attention_weighted_encoding
            h, c = self.decode_step(
                torch.cat([embeddings[:batch_size_t, t, :], attention_weighted_encoding], dim=1),
                (h[:batch_size_t], c[:batch_size_t]))
            preds = self.fc(self.dropout(h))
            predictions[:batch_size_t, t, :] = preds
            alphas[:batch_size_t, t, :] = alpha
        return predictions, encoded_captions, decode_lengths, alphas, sort_ind


class AverageMeter:
    def __init__(self):
        self.val = self.avg = self.sum = self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def clip_gradient(optimizer, grad_clip):
    for group in optimizer.param_groups:
        for param in group["params"]:
            if param.grad is not None:
                param.grad.data.clamp_(-grad_clip, grad_clip)


def adjust_learning_rate(optimizer, shrink_factor):
    for param_group in optimizer.param_groups:
        param_group["lr"] = param_group["lr"] * shrink_factor


def accuracy(scores, targets, k):
    batch_size = targets.size(0)
    _, ind = scores.topk(k, 1, True, True)
    correct = ind.eq(targets.view(-1, 1).expand_as(ind))
    correct_total = correct.view(-1).float().sum()
    return correct_total.item() * (100.0 / batch_size)


@torch.no_grad()
def greedy_caption(encoder, decoder, images, max_len=MAX_LEN + 1):
    encoder_out = encoder(images)
    encoder_out = encoder_out.view(encoder_out.size(0), -1, encoder_out.size(-1))
    h, c = decoder.init_hidden_state(encoder_out)
    words = torch.full((images.size(0),), word_map["<start>"], dtype=torch.long)
    finished = torch.zeros(images.size(0), dtype=torch.bool)
    sequences, attention_mass = [], []
    for _ in range(max_len):
        awe, alpha = decoder.attention(encoder_out, h)
        awe = decoder.sigmoid(decoder.f_beta(h)) * awe
        h, c = decoder.decode_step(torch.cat([decoder.embedding(words), awe], dim=1), (h, c))
        words = decoder.fc(h).argmax(dim=1)
        words = words.masked_fill(finished, word_map["<pad>"])
        sequences.append(words)
        attention_mass.append(alpha.max(dim=1).values)
        finished |= words == word_map["<end>"]
        if finished.all():
            break
    sequences = torch.stack(sequences, dim=1).tolist()
    hypotheses = [[rev_word_map[w] for w in seq if w not in (word_map["<end>"], word_map["<pad>"])] for seq in sequences]
    return hypotheses, torch.stack(attention_mass, dim=1).mean().item()


def corpus_bleu1(references, hypotheses):
    clipped = total = ref_len = hyp_len = 0
    for ref, hyp in zip(references, hypotheses):
        ref_counts = Counter(ref)
        clipped += sum(min(count, ref_counts[w]) for w, count in Counter(hyp).items())
        total += len(hyp)
        ref_len += len(ref)
        hyp_len += len(hyp)
    precision = clipped / max(total, 1)
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / max(hyp_len, 1))
    return brevity * precision


train_images, train_caps, train_caplens, _ = make_split(128)
test_images, test_caps, test_caplens, test_refs = make_split(64)
print(f"vocab {len(word_map)} train {tuple(train_images.shape)} captions {tuple(train_caps.shape)} "
      f"lengths {sorted(set(train_caplens.squeeze(1).tolist()))}")

encoder = Encoder().to(device)
decoder = DecoderWithAttention(attention_dim=24, embed_dim=16, decoder_dim=32, vocab_size=len(word_map)).to(device)
encoder_optimizer = torch.optim.Adam(params=filter(lambda p: p.requires_grad, encoder.parameters()), lr=1e-2)
decoder_optimizer = torch.optim.Adam(params=filter(lambda p: p.requires_grad, decoder.parameters()), lr=1e-2)
criterion = nn.CrossEntropyLoss().to(device)
alpha_c, grad_clip = 1.0, 5.0

probe_caps, probe_lens = train_caps[:6], train_caplens[:6]
_, caps_sorted, decode_lengths, probe_alphas, sort_ind = decoder(encoder(train_images[:6]), probe_caps, probe_lens)
print("sorted lengths", probe_lens.squeeze(1)[sort_ind].tolist(), "decode lengths", decode_lengths,
      "alphas", tuple(probe_alphas.shape))

EPOCHS, BATCH = 12, 16
for epoch in range(EPOCHS):
    if epoch == 9:
        adjust_learning_rate(decoder_optimizer, 0.5)
        adjust_learning_rate(encoder_optimizer, 0.5)
    encoder.train()
    decoder.train()
    losses, top5accs = AverageMeter(), AverageMeter()
    order = torch.randperm(len(train_images))
    for start in range(0, len(order), BATCH):
        index = order[start:start + BATCH]
        imgs, caps, caplens = train_images[index].to(device), train_caps[index].to(device), train_caplens[index].to(device)
        imgs = encoder(imgs)
        scores, caps_sorted, decode_lengths, alphas, sort_ind = decoder(imgs, caps, caplens)
        targets = caps_sorted[:, 1:]
        scores = pack_padded_sequence(scores, decode_lengths, batch_first=True).data
        targets = pack_padded_sequence(targets, decode_lengths, batch_first=True).data
        loss = criterion(scores, targets)
        loss += alpha_c * ((1. - alphas.sum(dim=1)) ** 2).mean()
        decoder_optimizer.zero_grad()
        encoder_optimizer.zero_grad()
        loss.backward()
        clip_gradient(decoder_optimizer, grad_clip)
        clip_gradient(encoder_optimizer, grad_clip)
        decoder_optimizer.step()
        encoder_optimizer.step()
        top5 = accuracy(scores, targets, 5)
        losses.update(loss.item(), sum(decode_lengths))
        top5accs.update(top5, sum(decode_lengths))
    print(f"epoch {epoch} loss {losses.avg:.4f} top-5 accuracy {top5accs.avg:.3f} "
          f"lr {decoder_optimizer.param_groups[0]['lr']:.5f}")

encoder.eval()
decoder.eval()
with torch.no_grad():
    scores, caps_sorted, decode_lengths, alphas, sort_ind = decoder(encoder(test_images), test_caps, test_caplens)
    targets = pack_padded_sequence(caps_sorted[:, 1:], decode_lengths, batch_first=True).data
    scores = pack_padded_sequence(scores, decode_lengths, batch_first=True).data
    test_loss = F.cross_entropy(scores, targets).item()
    top1 = accuracy(scores, targets, 1)
    doubly = ((1. - alphas.sum(dim=1)) ** 2).mean().item()
hypotheses, peak_attention = greedy_caption(encoder, decoder, test_images)
bleu1 = corpus_bleu1(test_refs, hypotheses)
exact = sum(h == r for h, r in zip(hypotheses, test_refs)) / len(test_refs)
print(f"greedy captions: mean length {np.mean([len(h) for h in hypotheses]):.2f} "
      f"(references {np.mean([len(r) for r in test_refs]):.2f}), BLEU-1 {bleu1:.4f}")
print(f"FINAL test_loss={test_loss:.4f} teacher_forced_top1={top1:.3f} doubly_stochastic={doubly:.4f} "
      f"bleu1={bleu1:.4f} exact={exact:.4f} peak_attention={peak_attention:.4f}")
