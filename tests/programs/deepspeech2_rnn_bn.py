"""DeepSpeech2 in the layout of SeanNaren/deepspeech.pytorch (``model.py``, ``decoder.py``, the loader's
``_collate_fn``) at toy size, trained with CTC on synthetic "spoken" token sequences.

``model``: ``MaskConv`` over a 2-d conv front end (``nn.Conv2d(1, C, kernel_size=(41, 11), stride=(2, 2),
padding=(20, 5))``, ``nn.BatchNorm2d``, ``nn.Hardtanh(0, 20, inplace=True)``, the second ``(21, 11)`` conv) that
zeroes padded time steps by ``torch.BoolTensor(x.size()).fill_(0)``, ``mask[i].narrow(2, length, ...).fill_(1)``
and ``x.masked_fill(mask, 0)``; ``rnn_input_size`` from the conv arithmetic ``int(math.floor(...) / 2 + 1)``;
``SequenceWise`` (``x.view(t * n, -1)`` through ``nn.BatchNorm1d`` / a ``BatchNorm1d`` + bias-free ``Linear`` head)
with its ``__repr__``; ``BatchRNN`` with a bidirectional ``nn.GRU`` over ``nn.utils.rnn.pack_padded_sequence`` /
``pad_packed_sequence`` summing directions by ``x.view(x.size(0), x.size(1), 2, -1).sum(2)``; ``Lookahead``
(depthwise ``nn.Conv1d(groups=n_features, bias=False)`` after ``F.pad(x, pad=(0, context - 1), value=0)``) for
the unidirectional variant; ``InferenceBatchSoftmax``; ``get_seq_lens`` walking ``self.conv.modules()`` with
``type(m) == nn.modules.conv.Conv2d``. Training: the collate sorting by length with ``input_percentages`` and
concatenated ``IntTensor`` targets, ``input_percentages.mul_(int(inputs.size(3))).int()``,
``nn.CTCLoss(blank=0, reduction='sum', zero_infinity=True)`` on ``out.transpose(0, 1).log_softmax(-1)`` divided by
the batch size, AdamW + ``clip_grad_norm_``. Evaluation: ``GreedyDecoder`` (``torch.max(probs, 2)``, repetitions
and blanks removed, offsets as ``torch.tensor(offsets, dtype=torch.int)``) and CER by edit distance.

Checked: the CER falling from the first to the last epoch; the packed bidirectional ``BatchRNN`` equal to a loop
running the GRU on each utterance alone over its valid steps; ``Lookahead`` equal to the explicit
``sum_k w[c, k] * x[t + k, c]``; ``zero_infinity`` turning an impossible alignment's ``inf`` into 0.
"""

# ruff: noqa: UP008, E721  (the repo's own spelling: super(Class, self), type(m) == ...)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

LABELS = "_abcdef "
N_FREQ = 33  # (sample_rate * window_size) / 2 + 1 bins
CHANNELS = 8
HIDDEN = 48


# ------------------------------------------------------------------------------------------- model
class SequenceWise(nn.Module):
    def __init__(self, module):
        """
        Collapses input of dim T*N*H to (T*N)*H, and applies to a module.
        Allows handling of variable sequence lengths and minibatch sizes.
        """
        super(SequenceWise, self).__init__()
        self.module = module

    def forward(self, x):
        t, n = x.size(0), x.size(1)
        x = x.view(t * n, -1)
        x = self.module(x)
        x = x.view(t, n, -1)
        return x

    def __repr__(self):
        tmpstr = self.__class__.__name__ + " (\n"
        tmpstr += self.module.__repr__()
        tmpstr += ")"
        return tmpstr


class MaskConv(nn.Module):
    def __init__(self, seq_module):
        """
        Adds padding to the output of the module based on the given lengths. This is to ensure that the
        results of the model do not change when batch sizes change during inference.
        """
        super(MaskConv, self).__init__()
        self.seq_module = seq_module

    def forward(self, x, lengths):
        for module in self.seq_module:
            x = module(x)
            mask = torch.BoolTensor(x.size()).fill_(0)
            if x.is_cuda:
                mask = mask.cuda()
            for i, length in enumerate(lengths):
                length = length.item()
                if (mask[i].size(2) - length) > 0:
                    mask[i].narrow(2, length, mask[i].size(2) - length).fill_(1)
            x = x.masked_fill(mask, 0)
        return x, lengths


class InferenceBatchSoftmax(nn.Module):
    def forward(self, input_):
        if not self.training:
            return F.softmax(input_, dim=-1)
        else:
            return input_


class BatchRNN(nn.Module):
    def __init__(self, input_size, hidden_size, rnn_type=nn.LSTM, bidirectional=False, batch_norm=True):
        super(BatchRNN, self).__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        self.rnn = rnn_type(input_size=input_size, hidden_size=hidden_size, bidirectional=bidirectional, bias=True)
        self.num_directions = 2 if bidirectional else 1

    def flatten_parameters(self):
        self.rnn.flatten_parameters()

    def forward(self, x, output_lengths, h=None):
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        x = nn.utils.rnn.pack_padded_sequence(x, output_lengths)
        x, h = self.rnn(x, h)
        x, _ = nn.utils.rnn.pad_packed_sequence(x)
        if self.bidirectional:
            x = x.view(x.size(0), x.size(1), 2, -1).sum(2).view(x.size(0), x.size(1), -1)  # (TxNxH*2) -> (TxNxH)
        return x, h


class Lookahead(nn.Module):
    # Wang et al., 2016 - Lookahead Convolution Layer for Unidirectional Recurrent Neural Networks
    # input shape - sequence, batch, feature - TxNxH
    # output shape - same as input
    def __init__(self, n_features, context):
        super(Lookahead, self).__init__()
        assert context > 0
        self.context = context
        self.n_features = n_features
        self.pad = (0, self.context - 1)
        self.conv = nn.Conv1d(
            self.n_features, self.n_features, kernel_size=self.context, stride=1, groups=self.n_features, padding=0,
            bias=False,
        )

    def forward(self, x):
        x = x.transpose(0, 1).transpose(1, 2)
        x = F.pad(x, pad=self.pad, value=0)
        x = self.conv(x)
        x = x.transpose(1, 2).transpose(0, 1).contiguous()
        return x

    def __repr__(self):
        return self.__class__.__name__ + "(" + "n_features=" + str(self.n_features) + ", context=" + str(
            self.context
        ) + ")"


class DeepSpeech(nn.Module):
    def __init__(self, labels, hidden_size=HIDDEN, hidden_layers=2, bidirectional=True, lookahead_context=5):
        super().__init__()
        self.labels = labels
        self.bidirectional = bidirectional
        num_classes = len(self.labels)

        self.conv = MaskConv(
            nn.Sequential(
                nn.Conv2d(1, CHANNELS, kernel_size=(41, 11), stride=(2, 2), padding=(20, 5)),
                nn.BatchNorm2d(CHANNELS),
                nn.Hardtanh(0, 20, inplace=True),
                nn.Conv2d(CHANNELS, CHANNELS, kernel_size=(21, 11), stride=(2, 1), padding=(10, 5)),
                nn.BatchNorm2d(CHANNELS),
                nn.Hardtanh(0, 20, inplace=True),
            )
        )
        # Based on above convolutions and spectrogram size using conv formula (W - F + 2P)/ S+1
        rnn_input_size = N_FREQ
        rnn_input_size = int(math.floor(rnn_input_size + 2 * 20 - 41) / 2 + 1)
        rnn_input_size = int(math.floor(rnn_input_size + 2 * 10 - 21) / 2 + 1)
        rnn_input_size *= CHANNELS

        self.rnns = nn.Sequential(
            BatchRNN(input_size=rnn_input_size, hidden_size=hidden_size, rnn_type=nn.GRU,
                     bidirectional=self.bidirectional, batch_norm=False),
            *(
                BatchRNN(input_size=hidden_size, hidden_size=hidden_size, rnn_type=nn.GRU,
                         bidirectional=self.bidirectional)
                for x in range(hidden_layers - 1)
            ),
        )

        self.lookahead = (
            nn.Sequential(
                # consider adding batch norm?
                Lookahead(hidden_size, context=lookahead_context),
                nn.Hardtanh(0, 20, inplace=True),
            )
            if not self.bidirectional
            else None
        )

        fully_connected = nn.Sequential(nn.BatchNorm1d(hidden_size), nn.Linear(hidden_size, num_classes, bias=False))
        self.fc = nn.Sequential(SequenceWise(fully_connected))
        self.inference_softmax = InferenceBatchSoftmax()
        self.criterion = nn.CTCLoss(blank=self.labels.index("_"), reduction="sum", zero_infinity=True)

    def forward(self, x, lengths, hs=None):
        lengths = lengths.cpu().int()
        output_lengths = self.get_seq_lens(lengths)
        x, _ = self.conv(x, output_lengths)

        sizes = x.size()
        x = x.view(sizes[0], sizes[1] * sizes[2], sizes[3])  # Collapse feature dimension
        x = x.transpose(1, 2).transpose(0, 1).contiguous()  # TxNxH

        if hs is None:
            hs = [None] * len(self.rnns)

        new_hs = []
        for i, rnn in enumerate(self.rnns):
            x, h = rnn(x, output_lengths, hs[i])
            new_hs.append(h)

        if not self.bidirectional:  # no need for lookahead layer in bidirectional
            x = self.lookahead(x)

        x = self.fc(x)
        x = x.transpose(0, 1)
        # identity in training mode, softmax in eval mode
        x = self.inference_softmax(x)
        return x, output_lengths, new_hs

    def get_seq_lens(self, input_length):
        """
        Given a 1D Tensor or Variable containing integer sequence lengths, return a 1D tensor or variable
        containing the size sequences that will be output by the network.
        """
        seq_len = input_length
        for m in self.conv.modules():
            if type(m) == nn.modules.conv.Conv2d:
                seq_len = (
                    seq_len + 2 * m.padding[1] - m.dilation[1] * (m.kernel_size[1] - 1) - 1
                ) // m.stride[1] + 1
        return seq_len.int()


# ----------------------------------------------------------------------------------------- decoder
class GreedyDecoder:
    def __init__(self, labels, blank_index=0):
        self.labels = labels
        self.int_to_char = dict([(i, c) for (i, c) in enumerate(labels)])
        self.blank_index = blank_index
        self.space_index = len(labels) - 1 if " " in labels else len(labels)

    def convert_to_strings(self, sequences, sizes=None, remove_repetitions=False, return_offsets=False):
        """Given a list of numeric sequences, returns the corresponding strings"""
        strings = []
        offsets = [] if return_offsets else None
        for x in range(len(sequences)):
            seq_len = sizes[x] if sizes is not None else len(sequences[x])
            string, string_offsets = self.process_string(sequences[x], seq_len, remove_repetitions)
            strings.append([string])  # We only return one path
            if return_offsets:
                offsets.append([string_offsets])
        if return_offsets:
            return strings, offsets
        else:
            return strings

    def process_string(self, sequence, size, remove_repetitions=False):
        string = ""
        offsets = []
        for i in range(size):
            char = self.int_to_char[sequence[i].item()]
            if char != self.int_to_char[self.blank_index]:
                # if this char is a repetition and remove_repetitions=true, then skip
                if remove_repetitions and i != 0 and char == self.int_to_char[sequence[i - 1].item()]:
                    pass
                elif char == self.labels[self.space_index]:
                    string += " "
                    offsets.append(i)
                else:
                    string = string + char
                    offsets.append(i)
        return string, torch.tensor(offsets, dtype=torch.int)

    def decode(self, probs, sizes=None):
        _, max_probs = torch.max(probs, 2)
        strings, offsets = self.convert_to_strings(
            max_probs.view(max_probs.size(0), max_probs.size(1)), sizes, remove_repetitions=True, return_offsets=True
        )
        return strings, offsets


def levenshtein(a, b):
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[len(b)]


def cer(s1, s2):
    s1, s2 = s1.replace(" ", ""), s2.replace(" ", "")
    return levenshtein(s1, s2)


# -------------------------------------------------------------------------------------------- data
rs = np.random.RandomState(7)
TOKEN_BINS = {c: 3 + 4 * k for k, c in enumerate(LABELS[1:-1])}


def make_utterance(rs):
    n_words = rs.randint(1, 3)
    words = ["".join(rs.choice(list(LABELS[1:-1]), size=rs.randint(2, 4))) for _ in range(n_words)]
    transcript = " ".join(words)
    frames = []
    for ch in transcript:
        dur = rs.randint(4, 7)
        seg = 0.1 * rs.rand(N_FREQ, dur)
        if ch != " ":
            b = TOKEN_BINS[ch]
            seg[b - 1 : b + 2] += 1.0 + 0.2 * rs.randn(3, 1)
            seg[N_FREQ - 1 - b // 2] += 0.5
        frames.append(seg)
        frames.append(0.1 * rs.rand(N_FREQ, 1))  # a short gap between sounds
    spect = np.log1p(np.concatenate(frames, axis=1)).astype(np.float32)
    spect = (spect - spect.mean()) / spect.std()
    return spect, transcript


train_set = [make_utterance(rs) for _ in range(96)]
test_set = [make_utterance(rs) for _ in range(24)]


def _collate_fn(batch):
    def func(p):
        return p[0].shape[1]

    batch = sorted(batch, key=lambda sample: sample[0].shape[1], reverse=True)
    longest_sample = max(batch, key=func)[0]
    freq_size = longest_sample.shape[0]
    minibatch_size = len(batch)
    max_seqlength = longest_sample.shape[1]
    inputs = torch.zeros(minibatch_size, 1, freq_size, max_seqlength)
    input_percentages = torch.FloatTensor(minibatch_size)
    target_sizes = torch.IntTensor(minibatch_size)
    targets = []
    for x in range(minibatch_size):
        sample = batch[x]
        tensor = torch.from_numpy(sample[0])
        target = [LABELS.index(c) for c in sample[1]]
        seq_length = tensor.shape[1]
        inputs[x][0].narrow(1, 0, seq_length).copy_(tensor)
        input_percentages[x] = seq_length / float(max_seqlength)
        target_sizes[x] = len(target)
        targets.extend(target)
    targets = torch.tensor(targets, dtype=torch.long)
    return inputs, targets, input_percentages, target_sizes, [s[1] for s in batch]


def evaluate(model, decoder, dataset, batch_size=12):
    model.eval()
    total_cer, num_chars = 0, 0
    with torch.no_grad():
        for b in range(0, len(dataset), batch_size):
            inputs, targets, input_percentages, target_sizes, transcripts = _collate_fn(dataset[b : b + batch_size])
            input_sizes = input_percentages.mul_(int(inputs.size(3))).int()
            out, output_sizes, _ = model(inputs, input_sizes)
            decoded_output, _ = decoder.decode(out, output_sizes)
            for x in range(len(transcripts)):
                transcript, reference = decoded_output[x][0], transcripts[x]
                total_cer += cer(transcript, reference)
                num_chars += len(reference.replace(" ", ""))
    model.train()
    return total_cer / num_chars


# -------------------------------------------------------------------------------------------- main
model = DeepSpeech(LABELS)
print(model.fc)
decoder = GreedyDecoder(LABELS, blank_index=LABELS.index("_"))
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, eps=1e-8, weight_decay=1e-5, amsgrad=False)
batch_size = 12
cer_first = None
epochs = 8
for epoch in range(epochs):
    perm = np.random.RandomState(seed * 100 + epoch).permutation(len(train_set))
    epoch_loss = []
    for b in range(0, len(train_set), batch_size):
        batch = [train_set[i] for i in perm[b : b + batch_size]]
        inputs, targets, input_percentages, target_sizes, _ = _collate_fn(batch)
        input_sizes = input_percentages.mul_(int(inputs.size(3))).int()
        out, output_sizes, hs = model(inputs, input_sizes)
        out = out.transpose(0, 1)  # TxNxH
        out = out.log_softmax(-1)
        loss = model.criterion(out, targets, output_sizes, target_sizes)
        loss = loss / inputs.size(0)  # average the loss by minibatch
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 400)
        optimizer.step()
        epoch_loss.append(loss.item())
    test_cer = evaluate(model, decoder, test_set)
    if cer_first is None:
        cer_first = test_cer
    print(f"epoch {epoch}: loss {np.mean(epoch_loss):.4f} test CER {test_cer:.4f}")
cer_last = test_cer

# greedy decode of one utterance with its offsets
model.eval()
inputs, targets, input_percentages, target_sizes, transcripts = _collate_fn(test_set[:4])
input_sizes = input_percentages.mul_(int(inputs.size(3))).int()
with torch.no_grad():
    out, output_sizes, _ = model(inputs, input_sizes)
strings, offsets = decoder.decode(out, output_sizes)
exact = sum(strings[i][0] == transcripts[i] for i in range(len(transcripts)))
print(f"decoded {exact} of {len(transcripts)} exactly, offsets dtype {offsets[0][0].dtype}")

# the packed bidirectional layer against a loop over utterances, each run alone on its valid steps
rnn_layer = model.rnns[1]
T_max, N = 20, 5
lengths = torch.tensor([20, 17, 13, 9, 4], dtype=torch.int)
x = torch.randn(T_max, N, HIDDEN)
with torch.no_grad():
    packed_out, _ = rnn_layer(x, lengths)
    bn_x = rnn_layer.batch_norm(x)
    loop_err = 0.0
    for i in range(N):
        L = int(lengths[i])
        out_i, _ = rnn_layer.rnn(bn_x[:L, i : i + 1])
        out_i = out_i.view(L, 1, 2, -1).sum(2).view(L, 1, -1)
        loop_err = max(loop_err, (packed_out[:L, i : i + 1] - out_i).abs().max().item())
        if L < T_max:
            loop_err = max(loop_err, packed_out[L:, i].abs().max().item())
print(f"packed vs per-utterance loop: max err {loop_err:.2e}")

# the unidirectional variant's lookahead against the explicit sum
uni = DeepSpeech(LABELS, bidirectional=False, lookahead_context=4)
print(uni.lookahead)
look = uni.lookahead[0]
w = look.conv.weight.detach()[:, 0, :]  # (H, context)
x = torch.randn(T_max, N, HIDDEN)
with torch.no_grad():
    y = look(x)
    xp = torch.cat([x, torch.zeros(look.context - 1, N, HIDDEN)], 0)
    y_loop = sum(w[:, k] * xp[k : k + T_max] for k in range(look.context))
look_err = (y - y_loop).abs().max().item()
uni.eval()
with torch.no_grad():
    probs, uni_sizes, _ = uni(inputs, input_sizes)
print(f"lookahead vs explicit sum: max err {look_err:.2e}, unidirectional probs sum {probs[0, 0].sum().item():.4f}")

# zero_infinity: an alignment that cannot fit (target longer than the output) gives 0, not inf
log_probs = torch.randn(3, 2, len(LABELS)).log_softmax(-1)
tgt = torch.tensor([1, 2, 3, 4, 1, 2], dtype=torch.long)
il = torch.tensor([3, 3], dtype=torch.int)
tl = torch.tensor([5, 1], dtype=torch.int)
inf_loss = nn.CTCLoss(blank=0, reduction="none")(log_probs, tgt, il, tl)
zero_loss = nn.CTCLoss(blank=0, reduction="none", zero_infinity=True)(log_probs, tgt, il, tl)
print(f"ctc impossible: plain {inf_loss[0].item()} zero_infinity {zero_loss[0].item()}")
zero_ok = float(math.isinf(inf_loss[0].item()) and zero_loss[0].item() == 0.0 and torch.isclose(inf_loss[1], zero_loss[1]))

print(
    f"FINAL cer_first={cer_first:.4f} cer_last={cer_last:.4f} loop_err={loop_err:.6f} look_err={look_err:.6f} "
    f"zero_inf_ok={zero_ok:.0f} loss_last={np.mean(epoch_loss):.4f}"
)
