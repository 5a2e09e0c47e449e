"""Listen, Attend and Spell (Chan et al., ICASSP 2016) in the layout of Alexander-H-Liu/End-to-end-ASR-Pytorch,
on synthetic "speech": each utterance is a token string whose tokens are rendered as a few noisy frames of
a token-specific feature pattern, so the frames must be segmented and read out in order.

The listener is ``RNNLayer``s: ``nn.LSTM(bidirectional=True, batch_first=True)`` on
``pack_padded_sequence(input_x, x_len, batch_first=True, enforce_sorted=False)`` and ``pad_packed_sequence``,
and, for the pyramidal layers, the time axis halved by ``output[:, :t - t % 2].contiguous().view(b, t // 2,
f * 2)`` with halved lengths ``x_len // 2``. The speller is the reference's ``Decoder`` (``nn.Embedding`` +
``nn.LSTMCell`` + ``nn.Linear``) stepped per token, feeding ``torch.cat([last_char, context], dim=-1)`` and
querying ``LocationAwareAttention``: a ``nn.Conv1d`` over the previous attention weights (uniform over
the valid frames at the first step, written by index per utterance), ``gen_energy(torch.tanh(k + q +
loc_context))``, ``masked_fill(~mask, -float('inf'))``, ``F.softmax`` and ``torch.bmm``. Teacher forcing
draws ``torch.rand(1).item() < tf_rate`` per step with a decaying ``tf_rate``; the loss is
``F.cross_entropy(..., ignore_index=PAD, label_smoothing=0.1)``, Adam with ``clip_grad_norm_`` and the
reference's ``math.isnan(grad_norm)`` skip. Decoding is greedy (batched, ``argmax``) and by beam search
over a list of ``Hypothesis`` objects (``log_softmax`` + ``topk`` per hypothesis, sorted by score, finished
when they emit ``<eos>``), scored by token error rate from a hand Levenshtein distance.

Checked: the held-out token error rate of greedy and beam decoding, that the packed BLSTM equals the same
LSTM run on each unpadded utterance alone (``torch.allclose``), and that beam search of width 1 returns
exactly the greedy hypotheses.
"""

# ruff: noqa: UP008  (the reference's own spelling: super(Class, self))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

PAD, EOS = 0, 1  # the reference's tokenizer: <pad>=0, <eos>=1, and <sos> is <eos>
N_CHARS = 6
VOCAB = N_CHARS + 2
FEAT = 10


# ----------------------------------------------------------------------------------------------- data
PROTOTYPES = rng.randn(N_CHARS, FEAT).astype(np.float32) * 1.5


def make_utterance():
    n_tok = rng.randint(3, 6)
    chars = rng.randint(0, N_CHARS, size=n_tok)
    frames = []
    for c in chars:
        d = rng.randint(3, 6)
        frames.append(PROTOTYPES[c][None, :] + 0.5 * rng.randn(d, FEAT).astype(np.float32))
        frames.append(0.3 * rng.randn(1, FEAT).astype(np.float32))  # a short pause between tokens
    return np.concatenate(frames, 0), list(chars + 2)


def collate(batch):
    feats = [torch.from_numpy(f) for f, _ in batch]
    feat_len = torch.tensor([f.shape[0] for f in feats])
    x = torch.zeros(len(feats), int(feat_len.max()), FEAT)
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    txt_len = max(len(t) for _, t in batch) + 1
    y = torch.full((len(batch), txt_len), PAD, dtype=torch.long)
    for i, (_, t) in enumerate(batch):
        y[i, : len(t) + 1] = torch.tensor(t + [EOS])
    return x, feat_len, y


train_set = [make_utterance() for _ in range(256)]
test_set = [make_utterance() for _ in range(48)]


# ---------------------------------------------------------------------------------------------- model
class RNNLayer(nn.Module):
    """RNN wrapper, includes time-downsampling"""

    def __init__(self, input_dim, module, dim, bidirection, sample_rate):
        super(RNNLayer, self).__init__()
        rnn_out_dim = 2 * dim if bidirection else dim
        self.out_dim = sample_rate * rnn_out_dim if sample_rate > 1 else rnn_out_dim
        self.sample_rate = sample_rate
        self.layer = getattr(nn, module.upper())(input_dim, dim, bidirectional=bidirection, num_layers=1, batch_first=True)

    def forward(self, input_x, x_len):
        if not self.training:
            self.layer.flatten_parameters()
        input_x = pack_padded_sequence(input_x, x_len, batch_first=True, enforce_sorted=False)
        output, _ = self.layer(input_x)
        output, x_len = pad_packed_sequence(output, batch_first=True)
        if self.sample_rate > 1:
            b, t, f = output.shape
            x_len = x_len // self.sample_rate
            output = output[:, : t - t % 2].contiguous().view(b, t // 2, f * 2)
        return output, x_len


class Listener(nn.Module):
    def __init__(self, input_size, dim, sample_rate=(1, 2, 2)):
        super(Listener, self).__init__()
        self.layers = nn.ModuleList()
        in_dim = input_size
        for s in sample_rate:
            rnn = RNNLayer(in_dim, "LSTM", dim, True, s)
            self.layers.append(rnn)
            in_dim = rnn.out_dim
        self.out_dim = in_dim

    def forward(self, x, x_len):
        for layer in self.layers:
            x, x_len = layer(x, x_len)
        return x, x_len


class LocationAwareAttention(nn.Module):
    def __init__(self, kernel_size, kernel_num, dim, temperature=1.0):
        super(LocationAwareAttention, self).__init__()
        self.prev_att = None
        self.loc_conv = nn.Conv1d(1, kernel_num, kernel_size=2 * kernel_size + 1, padding=kernel_size, bias=False)
        self.loc_proj = nn.Linear(kernel_num, dim, bias=False)
        self.gen_energy = nn.Linear(dim, 1)
        self.temperature = temperature
        self.dim = dim

    def reset_mem(self):
        self.mask = None
        self.k_len = None
        self.prev_att = None

    def set_mem(self, k_len, ts):
        self.k_len = k_len
        self.mask = torch.arange(ts)[None, :] < k_len[:, None]

    def forward(self, q, k, v):
        bs, ts, _ = k.shape
        if self.prev_att is None:
            self.prev_att = torch.zeros((bs, 1, ts)).to(k.device)
            for idx, sl in enumerate(self.k_len):
                self.prev_att[idx, :, :sl] = 1.0 / sl
        loc_context = torch.tanh(self.loc_proj(self.loc_conv(self.prev_att).transpose(1, 2)))
        q = q.unsqueeze(1)
        energy = self.gen_energy(torch.tanh(k + q + loc_context)).squeeze(2)
        energy = energy / self.temperature
        energy = energy.masked_fill(~self.mask, -float("inf"))
        attn = F.softmax(energy, dim=-1)
        output = torch.bmm(attn.unsqueeze(1), v).squeeze(1)
        self.prev_att = attn.unsqueeze(1)
        return attn, output


class Decoder(nn.Module):
    def __init__(self, emb_dim, enc_dim, dim, vocab_size):
        super(Decoder, self).__init__()
        self.dim = dim
        self.layers = nn.LSTMCell(emb_dim + enc_dim, dim)
        self.char_trans = nn.Linear(dim, vocab_size)
        self.hidden_state = None

    def init_state(self, bs):
        self.hidden_state = (torch.zeros((bs, self.dim)), torch.zeros((bs, self.dim)))

    def get_query(self):
        return self.hidden_state[0]

    def forward(self, x):
        self.hidden_state = self.layers(x, self.hidden_state)
        return self.char_trans(self.hidden_state[0])


class ASR(nn.Module):
    def __init__(self, input_size, vocab_size, dim=32, emb_dim=16):
        super(ASR, self).__init__()
        self.vocab_size = vocab_size
        self.encoder = Listener(input_size, dim)
        self.pre_embed = nn.Embedding(vocab_size, emb_dim)
        self.query_proj = nn.Linear(dim, dim)
        self.key_proj = nn.Linear(self.encoder.out_dim, dim)
        self.attention = LocationAwareAttention(2, 4, dim)
        self.decoder = Decoder(emb_dim, self.encoder.out_dim, dim, vocab_size)

    def encode(self, audio_feature, feature_len):
        encode_feature, encode_len = self.encoder(audio_feature, feature_len)
        return encode_feature, encode_len

    def start(self, encode_feature, encode_len):
        bs, ts, _ = encode_feature.shape
        self.attention.reset_mem()
        self.attention.set_mem(encode_len, ts)
        self.decoder.init_state(bs)
        self.keys = self.key_proj(encode_feature)

    def step(self, last_char, encode_feature):
        attn, context = self.attention(self.query_proj(self.decoder.get_query()), self.keys, encode_feature)
        decoder_input = torch.cat([last_char, context], dim=-1)
        return self.decoder(decoder_input)

    def forward(self, audio_feature, feature_len, decode_step, tf_rate=0.0, teacher=None):
        bs = audio_feature.shape[0]
        encode_feature, encode_len = self.encode(audio_feature, feature_len)
        self.start(encode_feature, encode_len)
        last_char = self.pre_embed(torch.full((bs,), EOS, dtype=torch.long))
        if teacher is not None:
            teacher = torch.cat([torch.full((bs, 1), EOS, dtype=torch.long), teacher[:, :-1]], dim=1)
            train_emb = self.pre_embed(teacher)
        att_output = []
        for t in range(decode_step):
            cur_char = self.step(last_char, encode_feature)
            if teacher is not None and ((tf_rate == 1) or (torch.rand(1).item() < tf_rate)):
                last_char = train_emb[:, t, :]
            else:
                last_char = self.pre_embed(torch.argmax(cur_char, dim=-1))
            att_output.append(cur_char)
        return torch.stack(att_output, dim=1), encode_len


class Hypothesis:
    """Hypothesis for beam search decoding: token list, score, decoder and attention state."""

    def __init__(self, y_seq, score, hidden_state, prev_att):
        self.y_seq = y_seq
        self.score = score
        self.hidden_state = hidden_state
        self.prev_att = prev_att

    @property
    def last_token(self):
        return self.y_seq[-1] if self.y_seq else EOS


@torch.no_grad()
def beam_decode(model, feat, feat_len, beam_size, max_len):
    encode_feature, encode_len = model.encode(feat, feat_len)
    model.start(encode_feature, encode_len)
    prev_att = model.attention.prev_att
    hyps = [Hypothesis([], 0.0, model.decoder.hidden_state, prev_att)]
    final = []
    for _ in range(max_len):
        candidates = []
        for hyp in hyps:
            model.decoder.hidden_state = hyp.hidden_state
            model.attention.prev_att = hyp.prev_att
            last_char = model.pre_embed(torch.tensor([hyp.last_token]))
            logits = model.step(last_char, encode_feature)
            log_probs = F.log_softmax(logits.squeeze(0), dim=-1)
            top_scores, top_ids = log_probs.topk(beam_size)
            for s, i in zip(top_scores.tolist(), top_ids.tolist()):
                candidates.append(Hypothesis(hyp.y_seq + [i], hyp.score + s, model.decoder.hidden_state, model.attention.prev_att))
        candidates.sort(key=lambda h: h.score, reverse=True)
        hyps = []
        for h in candidates[:beam_size]:
            (final if h.y_seq[-1] == EOS else hyps).append(h)
        if len(final) >= beam_size or not hyps:
            break
    final.extend(hyps)
    best = max(final, key=lambda h: h.score)
    return [t for t in best.y_seq if t != EOS], best.score


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            cur = d[j]
            d[j] = min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev = cur
    return d[len(b)]


def trim(seq):
    out = []
    for t in seq:
        if t == EOS:
            break
        out.append(t)
    return out


# -------------------------------------------------------------------------------------------- training
model = ASR(FEAT, VOCAB)
optimizer = torch.optim.Adam(model.parameters(), lr=4e-3)
GRAD_CLIP = 5.0
batch_size = 16
epochs = 10
steps = 0
for epoch in range(epochs):
    model.train()
    tf_rate = max(0.8, 1.0 - 0.05 * epoch)
    order = rng.permutation(len(train_set))
    total, n = 0.0, 0
    for i in range(0, len(order), batch_size):
        feat, feat_len, txt = collate([train_set[j] for j in order[i : i + batch_size]])
        optimizer.zero_grad()
        att_output, _ = model(feat, feat_len, txt.shape[1], tf_rate=tf_rate, teacher=txt)
        loss = F.cross_entropy(att_output.reshape(-1, VOCAB), txt.reshape(-1), ignore_index=PAD, label_smoothing=0.1)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        if math.isnan(grad_norm):
            print("Error : grad norm is NaN @ step " + str(steps))
        else:
            optimizer.step()
        total += loss.item()
        n += 1
        steps += 1
    if epoch % 3 == 0 or epoch == epochs - 1:
        print(f"epoch {epoch} step {steps} tf_rate {tf_rate:.2f} loss {total / n:.4f}")

# ------------------------------------------------------------------------------------------ evaluation
model.eval()
feat, feat_len, txt = collate(test_set)
with torch.no_grad():
    att_output, enc_len = model(feat, feat_len, txt.shape[1] + 2)
greedy = [trim(seq) for seq in att_output.argmax(-1).tolist()]
refs = [t for _, t in test_set]
greedy_ter = sum(edit_distance(h, r) for h, r in zip(greedy, refs)) / sum(len(r) for r in refs)
print(f"encoder lengths {feat_len[:4].tolist()} -> {enc_len[:4].tolist()}")

# packed BLSTM == the same LSTM on each utterance alone
layer = model.encoder.layers[0]
with torch.no_grad():
    packed_out, _ = layer(feat, feat_len)
    alone_ok = True
    for i in range(8):
        out_i, _ = layer.layer(feat[i : i + 1, : feat_len[i]])
        alone_ok &= torch.allclose(out_i[0], packed_out[i, : feat_len[i]], atol=1e-5)
        alone_ok &= bool((packed_out[i, feat_len[i] :] == 0).all())
print(f"packed BLSTM == per-utterance LSTM: {alone_ok}")

beam_errors, beam1_agree = 0, 0
for i in range(len(test_set)):
    f_i, l_i = feat[i : i + 1, : feat_len[i]], feat_len[i : i + 1]
    hyp1, _ = beam_decode(model, f_i, l_i, 1, txt.shape[1] + 2)
    beam1_agree += hyp1 == greedy[i]
    hyp3, score3 = beam_decode(model, f_i, l_i, 3, txt.shape[1] + 2)
    beam_errors += edit_distance(hyp3, refs[i])
beam_ter = beam_errors / sum(len(r) for r in refs)
print(f"test greedy TER {greedy_ter:.4f} beam(3) TER {beam_ter:.4f}, beam(1) == greedy on {beam1_agree}/{len(test_set)}")
print(f"FINAL greedy_ter={greedy_ter:.4f} beam_ter={beam_ter:.4f} beam1_agree={beam1_agree / len(test_set):.4f} packed_ok={int(alone_ok)}")
