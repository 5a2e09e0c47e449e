"""See et al.'s pointer-generator network with coverage ("Get To The Point", the pointer_summarizer
port's layout), trained on a synthetic task (abstract = the article without its stop words) whose articles hold
out-of-vocabulary words, then decoded greedily and by beam search.

An encoder ``nn.LSTM(bidirectional=True, batch_first=True)`` over ``pack_padded_sequence`` (lengths
sorted longest first), ``pad_packed_sequence``; ``ReduceState`` squeezing the two directions by
``Linear`` + ``F.relu``; Bahdanau attention with a coverage feature ``W_c(coverage)`` and
``v(torch.tanh(...))``, softmax masked by the padding and renormalised; ``p_gen =
torch.sigmoid(p_gen_linear(torch.cat((c_t, s_t_hat, x), 1)))``; the vocabulary distribution
concatenated with ``extra_zeros`` for the batch's article OOVs and the copy distribution added by
``scatter_add(1, enc_batch_extend_vocab, attn_dist_)``; coverage loss ``torch.sum(torch.min(attn_dist,
coverage), 1)``; the gold-token loss ``-torch.log(torch.gather(final_dist, 1, target.unsqueeze(1)) +
1e-12)`` masked by the decoder padding; the LSTMs' ``uniform_(-0.02, 0.02)`` init with forget-gate
biases ``fill_(1.0)``, a shared embedding, Adam and ``clip_grad_norm_``. Beam search keeps the ``topk`` of ``log_probs.view(-1)`` over beams x extended
vocabulary, recovering beams by ``//`` and tokens by ``%``, and sorts finished hypotheses by the
length-normalised log probability.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

PAD, UNK, START, STOP = 0, 1, 2, 3
N_WORDS = 16
VOCAB = 4 + N_WORDS
OOV_POOL = [f"oov{i}" for i in range(40)]
EMB, HID = 24, 32
COV_LOSS_WT = 1.0
MAX_DEC_STEPS = 10
STOP_WORDS = {"w0", "w1", "w2", "w3"}


def make_example():
    """An article of words (some outside the vocabulary) and its abstract: the article without its
    stop words (w0 to w3)."""
    length = rng.randint(4, 9)
    words = []
    for _ in range(length):
        if rng.rand() < 0.25:
            words.append(OOV_POOL[rng.randint(len(OOV_POOL))])
        else:
            words.append(f"w{rng.randint(N_WORDS)}")
    abstract = [w for w in words if w not in STOP_WORDS]
    return words, abstract or words[:1]


def word2id(word):
    return 4 + int(word[1:]) if word.startswith("w") else UNK


def article2ids(article_words):
    ids, oovs = [], []
    for w in article_words:
        i = word2id(w)
        if i == UNK:
            if w not in oovs:
                oovs.append(w)
            ids.append(VOCAB + oovs.index(w))
        else:
            ids.append(i)
    return ids, oovs


def abstract2ids(abstract_words, article_oovs):
    ids = []
    for w in abstract_words:
        i = word2id(w)
        if i == UNK and w in article_oovs:
            i = VOCAB + article_oovs.index(w)
        ids.append(i)
    return ids


class Batch:
    def __init__(self, examples):
        examples = sorted(examples, key=lambda e: -len(e[0]))
        self.batch_size = len(examples)
        max_enc = max(len(a) for a, _ in examples)
        max_dec = max(len(b) for _, b in examples) + 1
        enc = np.zeros((self.batch_size, max_enc), dtype=np.int64)
        enc_ext = np.zeros((self.batch_size, max_enc), dtype=np.int64)
        dec_in = np.zeros((self.batch_size, max_dec), dtype=np.int64)
        target = np.zeros((self.batch_size, max_dec), dtype=np.int64)
        self.enc_lens, self.dec_lens, self.art_oovs = [], [], []
        for b, (article, abstract) in enumerate(examples):
            ext_ids, oovs = article2ids(article)
            enc[b, :len(article)] = [word2id(w) for w in article]
            enc_ext[b, :len(article)] = ext_ids
            abs_ids = [word2id(w) for w in abstract]
            abs_ext = abstract2ids(abstract, oovs)
            dec_in[b, :len(abstract) + 1] = [START] + abs_ids
            target[b, :len(abstract) + 1] = abs_ext + [STOP]
            self.enc_lens.append(len(article))
            self.dec_lens.append(len(abstract) + 1)
            self.art_oovs.append(oovs)
        self.max_art_oovs = max(len(o) for o in self.art_oovs)
        self.enc_batch = torch.from_numpy(enc)
        self.enc_batch_extend_vocab = torch.from_numpy(enc_ext)
        self.enc_padding_mask = (self.enc_batch != PAD).float()
        self.dec_batch = torch.from_numpy(dec_in)
        self.target_batch = torch.from_numpy(target)
        self.dec_padding_mask = (self.dec_batch != PAD).float()
        self.dec_padding_mask[:, 0] = 1.0
        self.examples = examples


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMB)
        self.lstm = nn.LSTM(EMB, HID, num_layers=1, batch_first=True, bidirectional=True)
        self.W_h = nn.Linear(HID * 2, HID * 2, bias=False)

    def forward(self, input, seq_lens):
        embedded = self.embedding(input)
        packed = pack_padded_sequence(embedded, seq_lens, batch_first=True)
        output, hidden = self.lstm(packed)
        encoder_outputs, _ = pad_packed_sequence(output, batch_first=True)
        encoder_outputs = encoder_outputs.contiguous()
        encoder_feature = encoder_outputs.view(-1, 2 * HID)
        encoder_feature = self.W_h(encoder_feature)
        return encoder_outputs, encoder_feature, hidden


class ReduceState(nn.Module):
    def __init__(self):
        super().__init__()
        self.reduce_h = nn.Linear(HID * 2, HID)
        self.reduce_c = nn.Linear(HID * 2, HID)

    def forward(self, hidden):
        h, c = hidden
        h_in = h.transpose(0, 1).contiguous().view(-1, HID * 2)
        hidden_reduced_h = F.relu(self.reduce_h(h_in))
        c_in = c.transpose(0, 1).contiguous().view(-1, HID * 2)
        hidden_reduced_c = F.relu(self.reduce_c(c_in))
        return hidden_reduced_h.unsqueeze(0), hidden_reduced_c.unsqueeze(0)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_c = nn.Linear(1, HID * 2, bias=False)
        self.decode_proj = nn.Linear(HID * 2, HID * 2)
        self.v = nn.Linear(HID * 2, 1, bias=False)

    def forward(self, s_t_hat, encoder_outputs, encoder_feature, enc_padding_mask, coverage):
        b, t_k, n = list(encoder_outputs.size())
        dec_fea = self.decode_proj(s_t_hat)
        dec_fea_expanded = dec_fea.unsqueeze(1).expand(b, t_k, n).contiguous()
        dec_fea_expanded = dec_fea_expanded.view(-1, n)
        att_features = encoder_feature + dec_fea_expanded
        coverage_input = coverage.view(-1, 1)
        att_features = att_features + self.W_c(coverage_input)
        e = torch.tanh(att_features)
        scores = self.v(e).view(-1, t_k)
        attn_dist_ = F.softmax(scores, dim=1) * enc_padding_mask
        normalization_factor = attn_dist_.sum(1, keepdim=True)
        attn_dist = attn_dist_ / normalization_factor
        c_t = torch.bmm(attn_dist.unsqueeze(1), encoder_outputs).view(-1, HID * 2)
        coverage = coverage + attn_dist.view(-1, t_k)
        return c_t, attn_dist, coverage


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention_network = Attention()
        self.embedding = nn.Embedding(VOCAB, EMB)
        self.x_context = nn.Linear(HID * 2 + EMB, EMB)
        self.lstm = nn.LSTM(EMB, HID, num_layers=1, batch_first=True)
        self.p_gen_linear = nn.Linear(HID * 4 + EMB, 1)
        self.out1 = nn.Linear(HID * 3, HID)
        self.out2 = nn.Linear(HID, VOCAB)

    def forward(self, y_t_1, s_t_1, encoder_outputs, encoder_feature, enc_padding_mask,
                c_t_1, extra_zeros, enc_batch_extend_vocab, coverage):
        y_t_1_embd = self.embedding(y_t_1)
        x = self.x_context(torch.cat((c_t_1, y_t_1_embd), 1))
        lstm_out, s_t = self.lstm(x.unsqueeze(1), s_t_1)
        h_decoder, c_decoder = s_t
        s_t_hat = torch.cat((h_decoder.view(-1, HID), c_decoder.view(-1, HID)), 1)
        c_t, attn_dist, coverage_next = self.attention_network(
            s_t_hat, encoder_outputs, encoder_feature, enc_padding_mask, coverage)
        p_gen_input = torch.cat((c_t, s_t_hat, x), 1)
        p_gen = torch.sigmoid(self.p_gen_linear(p_gen_input))
        output = torch.cat((lstm_out.view(-1, HID), c_t), 1)
        output = self.out1(output)
        output = self.out2(output)
        vocab_dist = F.softmax(output, dim=1)
        vocab_dist_ = p_gen * vocab_dist
        attn_dist_ = (1 - p_gen) * attn_dist
        if extra_zeros is not None:
            vocab_dist_ = torch.cat([vocab_dist_, extra_zeros], 1)
        final_dist = vocab_dist_.scatter_add(1, enc_batch_extend_vocab, attn_dist_)
        return final_dist, s_t, c_t, attn_dist, p_gen, coverage_next


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.reduce_state = ReduceState()
        self.decoder.embedding.weight = self.encoder.embedding.weight  # shared embeddings


def get_input_from_batch(batch):
    extra_zeros = None
    if batch.max_art_oovs > 0:
        extra_zeros = torch.zeros((batch.batch_size, batch.max_art_oovs))
    c_t_1 = torch.zeros((batch.batch_size, 2 * HID))
    coverage = torch.zeros(batch.enc_batch.size())
    return extra_zeros, c_t_1, coverage


def train_one_batch(model, optimizer, batch):
    extra_zeros, c_t_1, coverage = get_input_from_batch(batch)
    optimizer.zero_grad()
    encoder_outputs, encoder_feature, encoder_hidden = model.encoder(batch.enc_batch, batch.enc_lens)
    s_t_1 = model.reduce_state(encoder_hidden)
    step_losses = []
    max_dec_len = batch.dec_batch.size(1)
    for di in range(max_dec_len):
        y_t_1 = batch.dec_batch[:, di]
        final_dist, s_t_1, c_t_1, attn_dist, p_gen, next_coverage = model.decoder(
            y_t_1, s_t_1, encoder_outputs, encoder_feature, batch.enc_padding_mask, c_t_1,
            extra_zeros, batch.enc_batch_extend_vocab, coverage)
        target = batch.target_batch[:, di]
        gold_probs = torch.gather(final_dist, 1, target.unsqueeze(1)).squeeze()
        step_loss = -torch.log(gold_probs + 1e-12)
        step_coverage_loss = torch.sum(torch.min(attn_dist, coverage), 1)
        step_loss = step_loss + COV_LOSS_WT * step_coverage_loss
        coverage = next_coverage
        step_mask = batch.dec_padding_mask[:, di]
        step_loss = step_loss * step_mask
        step_losses.append(step_loss)
    sum_losses = torch.sum(torch.stack(step_losses, 1), 1)
    dec_lens_var = torch.tensor(batch.dec_lens, dtype=torch.float)
    batch_avg_loss = sum_losses / dec_lens_var
    loss = torch.mean(batch_avg_loss)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
    optimizer.step()
    return loss.item()


@torch.no_grad()
def beam_search(model, example, beam_size, max_steps=MAX_DEC_STEPS):
    """Batched beam search over one article: the beams are the batch dimension."""
    batch = Batch([example])
    extra_zeros, c_t_1, coverage = get_input_from_batch(batch)
    encoder_outputs, encoder_feature, encoder_hidden = model.encoder(batch.enc_batch, batch.enc_lens)
    s_t = model.reduce_state(encoder_hidden)
    ext_vocab = VOCAB + batch.max_art_oovs
    tokens = [[START]]
    scores = torch.zeros(1)
    finished = []
    p_gens = []
    for step in range(max_steps):
        k = len(tokens)
        latest = torch.tensor([t[-1] if t[-1] < VOCAB else UNK for t in tokens], dtype=torch.long)
        final_dist, s_t, c_t_1, attn_dist, p_gen, coverage = model.decoder(
            latest, s_t, encoder_outputs.expand(k, -1, -1), encoder_feature.repeat(k, 1),
            batch.enc_padding_mask.expand(k, -1), c_t_1,
            None if extra_zeros is None else extra_zeros.expand(k, -1),
            batch.enc_batch_extend_vocab.expand(k, -1), coverage)
        p_gens.append(p_gen.mean().item())
        log_probs = torch.log(final_dist) + scores.unsqueeze(1)
        top_scores, top_ids = torch.topk(log_probs.view(-1), beam_size * 2)
        beam_ids = top_ids // ext_vocab
        token_ids = top_ids % ext_vocab
        keep_beams, keep_tokens, keep_scores = [], [], []
        for score, beam, token in zip(top_scores.tolist(), beam_ids.tolist(), token_ids.tolist()):
            hyp = tokens[beam] + [token]
            if token == STOP:
                if step >= 1:
                    finished.append((hyp, score, score / (len(hyp) - 1)))
            else:
                keep_beams.append(beam)
                keep_tokens.append(hyp)
                keep_scores.append(score)
            if len(keep_tokens) == beam_size or len(finished) == beam_size:
                break
        if len(finished) >= beam_size:
            break
        index = torch.tensor(keep_beams, dtype=torch.long)
        tokens = keep_tokens
        scores = torch.tensor(keep_scores)
        s_t = (s_t[0].index_select(1, index), s_t[1].index_select(1, index))
        c_t_1 = c_t_1.index_select(0, index)
        coverage = coverage.index_select(0, index)
    if not finished:
        finished = [(t, s, s / (len(t) - 1)) for t, s in zip(tokens, scores.tolist())]
    best = sorted(finished, key=lambda h: h[2], reverse=True)[0]
    ids = [t for t in best[0][1:] if t != STOP]
    oovs = batch.art_oovs[0]
    words = [f"w{i - 4}" if 4 <= i < VOCAB else (oovs[i - VOCAB] if i >= VOCAB else "[UNK]") for i in ids]
    return words, sum(p_gens) / len(p_gens)


def greedy(model, example):
    words, _ = beam_search(model, example, beam_size=1)
    return words


model = Model()
for name, p in model.named_parameters():
    if "lstm.weight" in name:
        nn.init.uniform_(p, -0.02, 0.02)
    elif "lstm.bias" in name:
        nn.init.zeros_(p)
        n = p.size(0)
        p.data[n // 4:n // 2].fill_(1.0)  # forget gate
n_params = sum(p.numel() for p in model.parameters())
print(f"parameters: {n_params}")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

train_set = [make_example() for _ in range(1024)]
test_set = [make_example() for _ in range(16)]
BATCH = 32
STEPS = 120
running = None
for step in range(1, STEPS + 1):
    idx = rng.choice(len(train_set), BATCH, replace=False)
    loss = train_one_batch(model, optimizer, Batch([train_set[i] for i in idx]))
    running = loss if running is None else 0.9 * running + 0.1 * loss
    if step % 40 == 0:
        print(f"step {step} loss {loss:.4f} running {running:.4f}")

model.eval()
greedy_hits, beam_hits, token_hits, token_total, oov_hits, oov_total, pgen_sum = 0, 0, 0, 0, 0, 0, 0.0
for article, abstract in test_set:
    g = greedy(model, (article, abstract))
    b, pg = beam_search(model, (article, abstract), beam_size=4)
    greedy_hits += g == abstract
    beam_hits += b == abstract
    pgen_sum += pg
    for i, w in enumerate(abstract):
        token_total += 1
        token_hits += i < len(b) and b[i] == w
        if w.startswith("oov"):
            oov_total += 1
            oov_hits += i < len(b) and b[i] == w
article, abstract = test_set[0]
print(f"article: {len(article)} words, beam output {len(beam_search(model, (article, abstract), 4)[0])} words")
n = len(test_set)
print(f"FINAL loss={running:.4f} greedy_acc={greedy_hits / n:.4f} beam_acc={beam_hits / n:.4f} "
      f"token_acc={token_hits / token_total:.4f} oov_copy={oov_hits / max(oov_total, 1):.4f} "
      f"p_gen={pgen_sum / n:.4f}")
