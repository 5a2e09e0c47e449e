"""BART denoising pre-training (Lewis et al. 2020) in the layout of fairseq's ``DenoisingDataset``, on synthetic
documents, with a tiny encoder-decoder ``nn.Transformer``.

A document is ``<s>`` + two or three sentences + ``</s>``; a sentence counts up from a random word (``w, w+1,
...`` modulo the word vocabulary) and ends in a full stop, so a masked span can be inferred from its
neighbours. The noising functions are fairseq's where they exist and torch re-writings of the common
span-masking collators elsewhere:

- ``permute_sentences`` verbatim (``full_stops[1:] * ~full_stops[:-1]`` on bools, ``.nonzero(as_tuple=False) +
  2``, ``torch.randperm`` substitutions written into ``ordering[substitutions]``, sentences copied by slices);
- token deletion by ``torch.rand(n) < p`` with ``<s>``/``</s>`` protected;
- text infilling with the ``mask_whole_word``-free word starts: span lengths from
  ``torch.distributions.Poisson(3.0).sample((num_to_mask,))``, drawn again while ``torch.cumsum(lengths, 0)[-1]``
  falls short of the budget, zero lengths dropped, trimmed at the budget; starts by ``torch.randperm`` over the
  ``nonzero`` word starts; every position of every span by ``torch.repeat_interleave`` (starts repeated by
  lengths, plus ``arange`` offsets within each span from the cumsum), clamped before ``</s>``; the boolean mask
  by index assignment, a run of masked tokens collapsed to one ``<mask>`` by ``mask & torch.roll(mask, 1)``.

The collate pads sources and targets by ``pad_sequence(batch_first=True, padding_value=pad)`` and builds
``prev_output_tokens`` by moving ``</s>`` to the front (fairseq's ``move_eos_to_beginning``); the model shares
one embedding between encoder, decoder and output projection (``F.linear(x, self.embed_tokens.weight)``), uses
``nn.Transformer(batch_first=True)`` with ``generate_square_subsequent_mask`` and key padding masks, and trains
with ``F.cross_entropy(ignore_index=pad)`` under teacher forcing (Adam, ``clip_grad_norm_``).

Checked, per sample: the noised length equals the input's length minus the masked tokens plus the number of
spans; the tokens left unmasked appear in the noised source in order (``torch.equal``); and the held-out
teacher-forced reconstruction accuracy rises with training.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

PAD, BOS, EOS, MASK, FULL_STOP = 0, 1, 2, 3, 4
FIRST_WORD, N_WORDS = 5, 15
VOCAB = FIRST_WORD + N_WORDS
MAX_POS = 24


# ----------------------------------------------------------------------------------- documents
def make_document():
    tokens = [BOS]
    for _ in range(int(rng.integers(2, 4))):
        start, length = int(rng.integers(0, N_WORDS)), int(rng.integers(3, 6))
        tokens += [FIRST_WORD + (start + i) % N_WORDS for i in range(length)] + [FULL_STOP]
    return torch.tensor(tokens + [EOS])


class DenoisingDataset(torch.utils.data.Dataset):
    def __init__(self, documents, mask_ratio=0.3, poisson_lambda=3.0, delete_ratio=0.1, permute_sentence_ratio=1.0):
        self.documents = documents
        self.mask_ratio = mask_ratio
        self.delete_ratio = delete_ratio
        self.permute_sentence_ratio = permute_sentence_ratio
        self.full_stop_index = FULL_STOP
        self.mask_idx = MASK
        self.mask_span_distribution = torch.distributions.Poisson(poisson_lambda)
        self.checks = []

    def __len__(self):
        return len(self.documents)

    def __getitem__(self, index):
        tokens = self.documents[index]
        source, target = tokens, tokens.clone()
        if self.permute_sentence_ratio > 0.0:
            source = self.permute_sentences(source, self.permute_sentence_ratio)
        if self.delete_ratio > 0.0:
            source = self.delete_tokens(source, self.delete_ratio)
        if self.mask_ratio > 0:
            source = self.add_span_mask(source, self.mask_ratio)
        assert (source >= 0).all()
        assert (source[1:-1] >= 1).all()
        assert source[0] == BOS and source[-1] == EOS
        return {"id": index, "source": source, "target": target}

    def permute_sentences(self, source, p=1.0):
        full_stops = source == self.full_stop_index
        # Pretend it ends with a full stop so last span is a sentence
        full_stops[-2] = 1
        # Tokens that are full stops, where the previous token is not
        sentence_ends = (full_stops[1:] * ~full_stops[:-1]).nonzero(as_tuple=False) + 2
        result = source.clone()
        num_sentences = sentence_ends.size(0)
        num_to_permute = math.ceil((num_sentences * 2 * p) / 2.0)
        substitutions = torch.randperm(num_sentences)[:num_to_permute]
        ordering = torch.arange(0, num_sentences)
        ordering[substitutions] = substitutions[torch.randperm(num_to_permute)]
        # Ignore <bos> at start
        index = 1
        for i in ordering:
            sentence = source[(sentence_ends[i - 1] if i > 0 else 1) : sentence_ends[i]]
            result[index : index + sentence.size(0)] = sentence
            index += sentence.size(0)
        return result

    def delete_tokens(self, source, p):
        to_delete = torch.rand(source.size(0)) < p
        to_delete[0] = False
        to_delete[-1] = False
        return source[~to_delete]

    def word_starts(self, source):
        is_word_start = torch.ones(source.size())
        is_word_start[0] = 0
        is_word_start[-1] = 0
        return is_word_start

    def add_span_mask(self, source, p):
        is_word_start = self.word_starts(source)
        num_to_mask = int(math.ceil(is_word_start.float().sum() * p))
        if num_to_mask == 0:
            return source
        lengths = self.mask_span_distribution.sample(sample_shape=(num_to_mask,)).long()
        cum_length = torch.cumsum(lengths, 0)
        while cum_length[-1] < num_to_mask:
            lengths = torch.cat([lengths, self.mask_span_distribution.sample(sample_shape=(num_to_mask,)).long()], dim=0)
            cum_length = torch.cumsum(lengths, 0)
        # the variant without insertions: zero-length spans dropped, then trimmed to the budget
        lengths = lengths[lengths > 0]
        cum_length = torch.cumsum(lengths, 0)
        num_spans = int((cum_length < num_to_mask).sum()) + 1
        lengths = lengths[:num_spans]
        lengths[-1] -= cum_length[num_spans - 1] - num_to_mask

        word_starts = is_word_start.nonzero(as_tuple=False)
        starts = word_starts[torch.randperm(word_starts.size(0))[:num_spans]].squeeze(1)
        lengths = lengths[: starts.size(0)]
        span_offsets = torch.cumsum(lengths, 0) - lengths
        within = torch.arange(int(lengths.sum())) - torch.repeat_interleave(span_offsets, lengths)
        positions = torch.repeat_interleave(starts, lengths) + within
        positions = positions.clamp(max=source.size(0) - 2)  # spans do not run over </s>

        mask = torch.zeros(source.size(0), dtype=torch.bool)
        mask[positions] = True
        is_span_start = mask & ~torch.roll(mask, 1)
        to_remove = mask & torch.roll(mask, 1)
        noised = source.clone()
        noised[mask] = self.mask_idx
        noised = noised[~to_remove]

        # the per-sample checks: length arithmetic and the unmasked tokens kept in order
        expected_length = source.size(0) - int(mask.sum()) + int(is_span_start.sum())
        in_order = torch.equal(noised[noised != self.mask_idx], source[~mask])
        self.checks.append((noised.size(0) == expected_length, in_order))
        return noised


def move_eos_to_beginning(target):
    return torch.cat([target[-1:], target[:-1]])


def collate(samples, pad_idx=PAD):
    id = torch.LongTensor([s["id"] for s in samples])
    src_tokens = pad_sequence([s["source"] for s in samples], batch_first=True, padding_value=pad_idx)
    src_lengths = torch.LongTensor([s["source"].numel() for s in samples])
    target = pad_sequence([s["target"] for s in samples], batch_first=True, padding_value=pad_idx)
    prev_output_tokens = pad_sequence([move_eos_to_beginning(s["target"]) for s in samples], batch_first=True, padding_value=pad_idx)
    ntokens = sum(len(s["target"]) for s in samples)
    return {"id": id, "ntokens": ntokens, "net_input": {"src_tokens": src_tokens, "src_lengths": src_lengths,
                                                         "prev_output_tokens": prev_output_tokens}, "target": target}


# ----------------------------------------------------------------------------------- model
class TinyBART(nn.Module):
    def __init__(self, d_model=48, nhead=4, layers=2):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, d_model, padding_idx=PAD)
        self.embed_positions = nn.Embedding(MAX_POS, d_model)
        self.transformer = nn.Transformer(d_model, nhead, num_encoder_layers=layers, num_decoder_layers=layers,
                                          dim_feedforward=96, dropout=0.0, batch_first=True)
        self.layernorm_embedding = nn.LayerNorm(d_model)
        nn.init.normal_(self.embed_tokens.weight, mean=0, std=d_model ** -0.5)
        nn.init.constant_(self.embed_tokens.weight[PAD], 0)

    def embed(self, tokens):
        positions = torch.arange(tokens.size(1), device=tokens.device)
        return self.layernorm_embedding(self.embed_tokens(tokens) + self.embed_positions(positions))

    def forward(self, src_tokens, src_lengths, prev_output_tokens):
        tgt_len = prev_output_tokens.size(1)
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(tgt_len)
        src_key_padding_mask = src_tokens.eq(PAD)
        tgt_key_padding_mask = prev_output_tokens.eq(PAD)
        x = self.transformer(self.embed(src_tokens), self.embed(prev_output_tokens), tgt_mask=tgt_mask,
                             src_key_padding_mask=src_key_padding_mask.float().masked_fill(src_key_padding_mask, float("-inf")),
                             tgt_key_padding_mask=tgt_key_padding_mask.float().masked_fill(tgt_key_padding_mask, float("-inf")),
                             memory_key_padding_mask=src_key_padding_mask.float().masked_fill(src_key_padding_mask, float("-inf")))
        return F.linear(x, self.embed_tokens.weight)


train_set = DenoisingDataset([make_document() for _ in range(600)])
valid_set = DenoisingDataset([make_document() for _ in range(128)])
g = torch.Generator()
g.manual_seed(seed)
train_loader = torch.utils.data.DataLoader(train_set, batch_size=32, shuffle=True, collate_fn=collate, generator=g)
valid_batches = list(torch.utils.data.DataLoader(valid_set, batch_size=64, collate_fn=collate))
first = valid_set[0]
print(f"documents: {len(train_set)} train, {len(valid_set)} valid; example source length {first['source'].numel()} "
      f"target length {first['target'].numel()}")


def reconstruction_accuracy(model):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in valid_batches:
            logits = model(**batch["net_input"])
            target = batch["target"]
            keep = target.ne(PAD)
            correct += (logits.argmax(-1).eq(target) & keep).sum().item()
            total += keep.sum().item()
    model.train()
    return correct / total


model = TinyBART()
acc_before = reconstruction_accuracy(model)
print(f"reconstruction accuracy before training {acc_before:.4f}")
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.98), eps=1e-6)
first_loss = None
for epoch in range(6):
    total_loss = total_tokens = 0
    for batch in train_loader:
        logits = model(**batch["net_input"])
        loss = F.cross_entropy(logits.view(-1, VOCAB), batch["target"].view(-1), ignore_index=PAD, reduction="sum")
        optimizer.zero_grad()
        (loss / batch["ntokens"]).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total_loss += loss.item()
        total_tokens += batch["ntokens"]
    epoch_loss = total_loss / total_tokens / math.log(2)
    if first_loss is None:
        first_loss = epoch_loss
    print(f"epoch {epoch} loss {epoch_loss:.4f} (base 2) valid accuracy {reconstruction_accuracy(model):.4f}")
acc_after = reconstruction_accuracy(model)

checks = train_set.checks + valid_set.checks
length_ok = sum(ok for ok, _ in checks) / len(checks)
order_ok = sum(ok for _, ok in checks) / len(checks)
print(f"noised samples checked: {len(checks) > 0}; length = len - masked + spans: {length_ok:.4f}; unmasked in order: {order_ok:.4f}")
print(f"FINAL length_ok={length_ok:.4f} order_ok={order_ok:.4f} acc_before={acc_before:.4f} acc_after={acc_after:.4f} "
      f"loss_first={first_loss:.4f} loss_last={epoch_loss:.4f} acc_gain={int(acc_after > acc_before + 0.2)}")
