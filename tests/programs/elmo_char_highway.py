"""ELMo in miniature (bilm-tf / allennlp's layout): a character-CNN word encoder with highway layers,
forward and backward LSTM language models sharing an adaptive softmax, then a scalar mix of the
frozen layers feeding a tagger.

Words become character ids between begin/end-of-word markers, padded to ``max_characters_per_token``;
``nn.Embedding(padding_idx=0)`` of characters, ``nn.Conv1d`` filters of widths 1 to 4 each reduced by
``torch.max(convolved, dim=-1)`` and ``F.relu``, ``torch.cat`` of the widths; allennlp's
``Highway``: ``nn.Linear(d, 2 * d)`` with ``layer.bias[d:].data.fill_(1)`` so the gates start open,
``projected.chunk(2, dim=-1)``, ``gate = torch.sigmoid(gate)``, ``gate * x + (1 - gate) *
F.relu(nonlinear)``; a projection. The forward LM reads the token stream as it is, the backward LM
reads ``torch.flip(x, dims=[1])`` and its outputs are flipped back; two ``nn.LSTM`` layers each with a
residual connection; both predict through one ``nn.AdaptiveLogSoftmaxWithLoss(cutoffs=[8, 20],
div_value=2.0)`` over a frequency-sorted vocabulary (``collections.Counter.most_common``), with
``.loss`` and ``.log_prob`` (which must agree with the loss). The ``ScalarMix``:
``nn.ParameterList`` of ``torch.FloatTensor([0.0])`` scalars, ``F.softmax(torch.cat([p for p in
self.scalar_parameters]), dim=0)``, ``torch.split(normed_weights, split_size_or_sections=1)``,
``gamma`` and optional layer norm over ``mask``-ed elements; the LM frozen by
``requires_grad_(False)``, the mix and a ``Linear`` tagger trained on part-of-speech tags that only
context decides ("walks" is a noun after "the", a verb after a noun).
"""

import collections
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

# ----------------------------------------------------------------------------- a tagged token stream
DETS = ["the", "a", "every"]
ADJS = ["big", "small", "red", "old", "happy"]
SHARED_STEMS = ["walk", "talk", "jump", "cook"]
NOUN_STEMS = SHARED_STEMS + ["dog", "cat", "house", "tree"]
DET, ADJ, NOUN, VERB, PUNCT = range(5)


def noun_phrase():
    words = [(DETS[rng.randint(3)], DET)]
    if rng.rand() < 0.5:
        words.append((ADJS[rng.randint(5)], ADJ))
    stem = NOUN_STEMS[rng.randint(len(NOUN_STEMS))]
    words.append((stem + ("s" if rng.rand() < 0.4 else ""), NOUN))
    return words


def sentence():
    words = noun_phrase()
    words.append((SHARED_STEMS[rng.randint(4)] + ["s", "ed", "ing"][rng.randint(3)], VERB))
    if rng.rand() < 0.6:
        words += noun_phrase()
    return words + [(".", PUNCT)]


stream = [pair for _ in range(700) for pair in sentence()]
counts = collections.Counter(word for word, _ in stream)
itos = [word for word, _ in counts.most_common()]
stoi = {word: i for i, word in enumerate(itos)}
n_words = len(itos)
print(f"tokens: {len(stream)}, vocabulary: {n_words} words")

MAX_CHARS = 9
BOW, EOW = 1, 2
alphabet = sorted({c for word in itos for c in word})
char_ids = {c: i + 3 for i, c in enumerate(alphabet)}
n_chars = len(char_ids) + 3


def word_to_chars(word):
    ids = [BOW] + [char_ids[c] for c in word][:MAX_CHARS - 2] + [EOW]
    return ids + [0] * (MAX_CHARS - len(ids))


chars_of_word = torch.tensor([word_to_chars(w) for w in itos], dtype=torch.long)
word_ids = torch.tensor([stoi[w] for w, _ in stream], dtype=torch.long)
tag_ids = torch.tensor([t for _, t in stream], dtype=torch.long)
split = int(0.9 * len(word_ids))
SEQ_LEN, BATCH = 12, 16


def get_batch(split_name):
    lo, hi = (0, split) if split_name == "train" else (split, len(word_ids))
    starts = torch.randint(lo, hi - SEQ_LEN, (BATCH,))
    words = torch.stack([word_ids[s:s + SEQ_LEN] for s in starts])
    tags = torch.stack([tag_ids[s:s + SEQ_LEN] for s in starts])
    return words, tags


# ----------------------------------------------------------------------------- the model
class Highway(nn.Module):
    def __init__(self, input_dim, num_layers=1, activation=F.relu):
        super().__init__()
        self._input_dim = input_dim
        self._layers = nn.ModuleList([nn.Linear(input_dim, input_dim * 2) for _ in range(num_layers)])
        self._activation = activation
        for layer in self._layers:
            # start with the gates open: carry the input through at first
            layer.bias[input_dim:].data.fill_(1)

    def forward(self, inputs):
        current_input = inputs
        for layer in self._layers:
            projected_input = layer(current_input)
            linear_part = current_input
            nonlinear_part, gate = projected_input.chunk(2, dim=-1)
            nonlinear_part = self._activation(nonlinear_part)
            gate = torch.sigmoid(gate)
            current_input = gate * linear_part + (1 - gate) * nonlinear_part
        return current_input


class CharCNNEncoder(nn.Module):
    def __init__(self, n_chars, char_dim=12, filters=((1, 8), (2, 16), (3, 24), (4, 32)), out_dim=32):
        super().__init__()
        self.char_embedding = nn.Embedding(n_chars, char_dim, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(char_dim, num, kernel_size=width) for width, num in filters])
        n_filters = sum(num for _, num in filters)
        self.highway = Highway(n_filters, num_layers=2)
        self.projection = nn.Linear(n_filters, out_dim)

    def forward(self, chars):
        batch, seq, max_chars = chars.size()
        x = self.char_embedding(chars.view(-1, max_chars)).transpose(1, 2)
        convs = []
        for conv in self.convs:
            convolved = conv(x)
            convolved, _ = torch.max(convolved, dim=-1)
            convs.append(F.relu(convolved))
        token_embedding = torch.cat(convs, dim=-1)
        token_embedding = self.highway(token_embedding)
        return self.projection(token_embedding).view(batch, seq, -1)


class DirectionalLM(nn.Module):
    def __init__(self, dim, num_layers=2):
        super().__init__()
        self.layers = nn.ModuleList([nn.LSTM(dim, dim, batch_first=True) for _ in range(num_layers)])
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        outputs = []
        for i, lstm in enumerate(self.layers):
            out, _ = lstm(self.dropout(x))
            x = out if i == 0 else out + x  # residual between the stacked layers
            outputs.append(x)
        return outputs


class BiLM(nn.Module):
    def __init__(self, n_chars, n_words, dim=32):
        super().__init__()
        self.encoder = CharCNNEncoder(n_chars, out_dim=dim)
        self.forward_lm = DirectionalLM(dim)
        self.backward_lm = DirectionalLM(dim)
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(dim, n_words, cutoffs=[8, 20], div_value=2.0)

    def forward(self, words):
        tokens = self.encoder(chars_of_word[words])
        forward_layers = self.forward_lm(tokens)
        backward_layers = [torch.flip(h, dims=[1]) for h in self.backward_lm(torch.flip(tokens, dims=[1]))]
        return tokens, forward_layers, backward_layers

    def lm_loss(self, words):
        _, forward_layers, backward_layers = self(words)
        dim = forward_layers[-1].size(-1)
        # forward: position t predicts t + 1; backward: position t predicts t - 1
        fwd = self.softmax(forward_layers[-1][:, :-1].reshape(-1, dim), words[:, 1:].reshape(-1))
        bwd = self.softmax(backward_layers[-1][:, 1:].reshape(-1, dim), words[:, :-1].reshape(-1))
        return fwd.loss, bwd.loss, fwd.output

    def layers(self, words):
        tokens, forward_layers, backward_layers = self(words)
        mixed = [torch.cat([tokens, tokens], dim=-1)]
        mixed += [torch.cat([f, b], dim=-1) for f, b in zip(forward_layers, backward_layers)]
        return mixed


class ScalarMix(nn.Module):
    def __init__(self, mixture_size, do_layer_norm=False):
        super().__init__()
        self.mixture_size = mixture_size
        self.do_layer_norm = do_layer_norm
        self.scalar_parameters = nn.ParameterList(
            [nn.Parameter(torch.FloatTensor([0.0])) for _ in range(mixture_size)])
        self.gamma = nn.Parameter(torch.FloatTensor([1.0]))

    def forward(self, tensors, mask=None):
        if len(tensors) != self.mixture_size:
            raise ValueError(f"{len(tensors)} tensors were passed, but the module was initialized to "
                             f"mix {self.mixture_size} tensors.")

        def _do_layer_norm(tensor, broadcast_mask, num_elements_not_masked):
            tensor_masked = tensor * broadcast_mask
            mean = torch.sum(tensor_masked) / num_elements_not_masked
            variance = torch.sum(((tensor_masked - mean) * broadcast_mask) ** 2) / num_elements_not_masked
            return (tensor - mean) / torch.sqrt(variance + 1e-12)

        normed_weights = F.softmax(torch.cat([parameter for parameter in self.scalar_parameters]), dim=0)
        normed_weights = torch.split(normed_weights, split_size_or_sections=1)
        if not self.do_layer_norm:
            pieces = [weight * tensor for weight, tensor in zip(normed_weights, tensors)]
            return self.gamma * sum(pieces)
        broadcast_mask = mask.unsqueeze(-1).float()
        input_dim = tensors[0].size(-1)
        num_elements_not_masked = torch.sum(mask.float()) * input_dim
        pieces = [weight * _do_layer_norm(tensor, broadcast_mask, num_elements_not_masked)
                  for weight, tensor in zip(normed_weights, tensors)]
        return self.gamma * sum(pieces)


# ----------------------------------------------------------------------------- pre-train the biLM
bilm = BiLM(n_chars, n_words)
print(f"biLM parameters: {sum(p.numel() for p in bilm.parameters())}")
optimizer = torch.optim.Adam(bilm.parameters(), lr=5e-3)
for step in range(1, 161):
    words, _ = get_batch("train")
    fwd_loss, bwd_loss, _ = bilm.lm_loss(words)
    loss = 0.5 * (fwd_loss + bwd_loss)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(bilm.parameters(), 1.0)
    optimizer.step()
    if step % 40 == 0:
        print(f"step {step} forward ppl {math.exp(fwd_loss.item()):.3f} backward ppl {math.exp(bwd_loss.item()):.3f}")

bilm.eval()
with torch.no_grad():
    words, _ = get_batch("valid")
    fwd_loss, bwd_loss, target_log_prob = bilm.lm_loss(words)
    _, forward_layers, _ = bilm(words)
    hidden = forward_layers[-1][:, :-1].reshape(-1, forward_layers[-1].size(-1))
    log_prob = bilm.softmax.log_prob(hidden)
    picked = log_prob.gather(1, words[:, 1:].reshape(-1, 1)).squeeze(1)
    agree = torch.allclose(picked, target_log_prob, atol=1e-5) and torch.allclose(-picked.mean(), fwd_loss, atol=1e-5)
    predicted = bilm.softmax.predict(hidden)
    next_word_acc = (predicted == words[:, 1:].reshape(-1)).float().mean().item()
print(f"valid forward ppl {math.exp(fwd_loss.item()):.3f} backward ppl {math.exp(bwd_loss.item()):.3f}, "
      f"log_prob agrees with loss: {agree}")

# ----------------------------------------------------------------------------- a tagger on frozen layers
bilm.requires_grad_(False)
mix = ScalarMix(3, do_layer_norm=True)
tagger = nn.Linear(64, 5)
tag_optimizer = torch.optim.Adam(list(mix.parameters()) + list(tagger.parameters()), lr=2e-2)
try:
    mix([torch.zeros(1, 2, 64)] * 2)
except ValueError as error:
    print(f"ValueError: {error}")
for step in range(1, 81):
    words, tags = get_batch("train")
    with torch.no_grad():
        layers = bilm.layers(words)
    mask = torch.ones_like(words, dtype=torch.bool)
    logits = tagger(mix(layers, mask))
    loss = F.cross_entropy(logits.view(-1, 5), tags.view(-1))
    tag_optimizer.zero_grad()
    loss.backward()
    tag_optimizer.step()
    if step % 40 == 0:
        print(f"tagger step {step} loss {loss.item():.4f}")

correct = total = ambiguous_correct = ambiguous_total = 0
with torch.no_grad():
    for _ in range(8):
        words, tags = get_batch("valid")
        mask = torch.ones_like(words, dtype=torch.bool)
        predicted_tags = tagger(mix(bilm.layers(words), mask)).argmax(-1)
        correct += (predicted_tags == tags).sum().item()
        total += tags.numel()
        # a shared stem's forms are nouns or verbs by context only
        ambiguous = torch.tensor([[itos[w][:4] in SHARED_STEMS for w in row] for row in words.tolist()])
        ambiguous_correct += ((predicted_tags == tags) & ambiguous).sum().item()
        ambiguous_total += ambiguous.sum().item()
weights = F.softmax(torch.cat([p.detach() for p in mix.scalar_parameters]), dim=0)
print(f"mix weights sum {weights.sum().item():.4f}, gamma {mix.gamma.item():.3f}")
print(f"FINAL fwd_ppl={math.exp(fwd_loss.item()):.4f} bwd_ppl={math.exp(bwd_loss.item()):.4f} "
      f"next_word_acc={next_word_acc:.4f} tag_acc={correct / total:.4f} "
      f"ambiguous_tag_acc={ambiguous_correct / ambiguous_total:.4f}")
