"""ESIM (Chen et al., ACL 2017) in the coetaur0/ESIM layout, on synthetic sentence pairs whose label
(entailment / neutral / contradiction) is decided by word overlap and a negation token.

The reference's utilities: ``sort_by_seq_lens`` (``sequences_lengths.sort(0, descending=True)``,
``index_select``, a restoration index from ``new_tensor(torch.arange(...))`` — torch's copy-construct
warning — sorted back), ``get_mask`` (``torch.ones(batch, torch.max(lengths))`` sized by a 0-d tensor,
``mask[sequences_batch[:, :max_length] == 0] = 0.0``), ``masked_softmax`` (reshape to 2-D, softmax of
the masked scores, multiplied by the mask and renormalised with ``+ 1e-13``), ``weighted_sum`` by
``bmm``, ``replace_masked``; ``RNNDropout`` (an ``nn.Dropout`` subclass: one mask per sequence from
``sequences_batch.data.new_ones(...)`` through ``nn.functional.dropout``, shared over time);
``Seq2SeqEncoder`` asserting ``issubclass(rnn_type, nn.RNNBase)`` and running a bidirectional
``nn.LSTM(batch_first=True)`` on ``pack_padded_sequence(sorted_batch, sorted_lengths,
batch_first=True)`` / ``pad_packed_sequence``; the soft alignment ``premise.bmm(hypothesis.transpose(2,
1).contiguous())``, enhancement ``torch.cat([a, b, a - b, a * b], dim=-1)``, masked average and
``replace_masked(..., -1e7).max(dim=1)`` pooling; ``nn.Embedding(padding_idx=0, _weight=None)``;
``_init_esim_weights`` through ``self.apply`` (``xavier_uniform_``, ``orthogonal_``, ``constant_``, the
forget-gate bias chunk set by ``.data[hidden_size:(2*hidden_size)] = 1.0``). Training as the
repository's ``train.py``: ``CrossEntropyLoss``, Adam, ``clip_grad_norm_``,
``lr_scheduler.ReduceLROnPlateau(mode="max", factor=0.5, patience=0)`` stepped on validation accuracy,
``correct_predictions`` by ``probs.max(dim=1)`` and ``.item()``, evaluation under ``torch.no_grad()``.

Checked: test accuracy against the majority baseline, and masked-softmax rows that sum to 1 over the
valid tokens and are 0 on padding.
"""

# ruff: noqa: UP008, UP032, B007  (the repository's own spelling: super(Class, self), '...'.format(...), an unused `batch_index`)

import os
import random
import time

import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)

PAD, NOT = 0, 1
N_WORDS = 40  # content words 2 .. N_WORDS + 1
LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}


def make_pair():
    words = list(range(2, N_WORDS + 2))
    premise = random.sample(words, random.randint(5, 10))
    label = random.choice(list(LABELS))
    if label == "neutral":
        others = [w for w in words if w not in premise]
        hypothesis = random.sample(others, random.randint(3, 6))
        if random.random() < 0.5:
            hypothesis.insert(random.randint(0, len(hypothesis)), NOT)
    else:
        hypothesis = random.sample(premise, random.randint(2, min(5, len(premise))))
        if label == "contradiction":
            hypothesis.insert(random.randint(0, len(hypothesis)), NOT)
    return premise, hypothesis, LABELS[label]


class NLIDataset(Dataset):
    """Pairs padded to the longest sequence of the split, as the reference's NLIDataset does."""

    def __init__(self, pairs, padding_idx=0):
        self.num_sequences = len(pairs)
        self.max_premise_length = max(len(p) for p, _, _ in pairs)
        self.max_hypothesis_length = max(len(h) for _, h, _ in pairs)
        self.data = {
            "premises": torch.ones((self.num_sequences, self.max_premise_length), dtype=torch.long) * padding_idx,
            "premises_lengths": [len(p) for p, _, _ in pairs],
            "hypotheses": torch.ones((self.num_sequences, self.max_hypothesis_length),
                                     dtype=torch.long) * padding_idx,
            "hypotheses_lengths": [len(h) for _, h, _ in pairs],
            "labels": torch.tensor([label for _, _, label in pairs], dtype=torch.long),
        }
        for i, (premise, hypothesis, _) in enumerate(pairs):
            self.data["premises"][i][:len(premise)] = torch.tensor(premise)
            self.data["hypotheses"][i][:len(hypothesis)] = torch.tensor(hypothesis)

    def __len__(self):
        return self.num_sequences

    def __getitem__(self, index):
        return {"premise": self.data["premises"][index],
                "premise_length": min(self.data["premises_lengths"][index], self.max_premise_length),
                "hypothesis": self.data["hypotheses"][index],
                "hypothesis_length": min(self.data["hypotheses_lengths"][index], self.max_hypothesis_length),
                "label": self.data["labels"][index]}


# ----------------------------------------------------------------------------- esim/utils.py
def sort_by_seq_lens(batch, sequences_lengths, descending=True):
    sorted_seq_lens, sorting_index = sequences_lengths.sort(0, descending=descending)
    sorted_batch = batch.index_select(0, sorting_index)
    idx_range = sequences_lengths.new_tensor(torch.arange(0, len(sequences_lengths)))
    _, reverse_mapping = sorting_index.sort(0, descending=False)
    restoration_index = idx_range.index_select(0, reverse_mapping)
    return sorted_batch, sorted_seq_lens, sorting_index, restoration_index


def get_mask(sequences_batch, sequences_lengths):
    batch_size = sequences_batch.size()[0]
    max_length = torch.max(sequences_lengths)
    mask = torch.ones(batch_size, max_length, dtype=torch.float)
    mask[sequences_batch[:, :max_length] == 0] = 0.0
    return mask


def masked_softmax(tensor, mask):
    tensor_shape = tensor.size()
    reshaped_tensor = tensor.view(-1, tensor_shape[-1])

    # Reshape the mask so it matches the size of the input tensor.
    while mask.dim() < tensor.dim():
        mask = mask.unsqueeze(1)
    mask = mask.expand_as(tensor).contiguous().float()
    reshaped_mask = mask.view(-1, mask.size()[-1])

    result = nn.functional.softmax(reshaped_tensor * reshaped_mask, dim=-1)
    result = result * reshaped_mask
    # 1e-13 is added to avoid divisions by zero.
    result = result / (result.sum(dim=-1, keepdim=True) + 1e-13)

    return result.view(*tensor_shape)


def weighted_sum(tensor, weights, mask):
    weighted_sum = weights.bmm(tensor)

    while mask.dim() < weighted_sum.dim():
        mask = mask.unsqueeze(1)
    mask = mask.transpose(-1, -2)
    mask = mask.expand_as(weighted_sum).contiguous().float()

    return weighted_sum * mask


def replace_masked(tensor, mask, value):
    mask = mask.unsqueeze(1).transpose(2, 1)
    reverse_mask = 1.0 - mask
    values_to_add = value * reverse_mask
    return tensor * mask + values_to_add


def correct_predictions(output_probabilities, targets):
    _, out_classes = output_probabilities.max(dim=1)
    correct = (out_classes == targets).sum()
    return correct.item()


# ----------------------------------------------------------------------------- esim/layers.py
class RNNDropout(nn.Dropout):
    """Dropout with one mask per sequence, shared by all its time steps."""

    def forward(self, sequences_batch):
        ones = sequences_batch.data.new_ones(sequences_batch.shape[0], sequences_batch.shape[-1])
        dropout_mask = nn.functional.dropout(ones, self.p, self.training, inplace=False)
        return dropout_mask.unsqueeze(1) * sequences_batch


class Seq2SeqEncoder(nn.Module):
    def __init__(self, rnn_type, input_size, hidden_size, num_layers=1, bias=True, dropout=0.0,
                 bidirectional=False):
        assert issubclass(rnn_type, nn.RNNBase), "rnn_type must be a class inheriting from torch.nn.RNNBase"

        super(Seq2SeqEncoder, self).__init__()

        self.rnn_type = rnn_type
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.dropout = dropout
        self.bidirectional = bidirectional

        self._encoder = rnn_type(input_size, hidden_size, num_layers=num_layers, bias=bias,
                                 batch_first=True, dropout=dropout, bidirectional=bidirectional)

    def forward(self, sequences_batch, sequences_lengths):
        sorted_batch, sorted_lengths, _, restoration_idx = sort_by_seq_lens(sequences_batch, sequences_lengths)
        packed_batch = nn.utils.rnn.pack_padded_sequence(sorted_batch, sorted_lengths, batch_first=True)

        outputs, _ = self._encoder(packed_batch, None)

        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)
        reordered_outputs = outputs.index_select(0, restoration_idx)

        return reordered_outputs


class SoftmaxAttention(nn.Module):
    def forward(self, premise_batch, premise_mask, hypothesis_batch, hypothesis_mask):
        # Dot product between premises and hypotheses in each sequence of the batch.
        similarity_matrix = premise_batch.bmm(hypothesis_batch.transpose(2, 1).contiguous())

        # Softmax attention weights.
        prem_hyp_attn = masked_softmax(similarity_matrix, hypothesis_mask)
        hyp_prem_attn = masked_softmax(similarity_matrix.transpose(1, 2).contiguous(), premise_mask)

        # Weighted sums of the hypotheses for the the premises attention, and vice-versa for the
        # attention of the hypotheses.
        attended_premises = weighted_sum(hypothesis_batch, prem_hyp_attn, premise_mask)
        attended_hypotheses = weighted_sum(premise_batch, hyp_prem_attn, hypothesis_mask)

        return attended_premises, attended_hypotheses


# ----------------------------------------------------------------------------- esim/model.py
class ESIM(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size, embeddings=None, padding_idx=0, dropout=0.5,
                 num_classes=3, device="cpu"):
        super(ESIM, self).__init__()

        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_classes = num_classes
        self.dropout = dropout
        self.device = device

        self._word_embedding = nn.Embedding(self.vocab_size, self.embedding_dim, padding_idx=padding_idx,
                                            _weight=embeddings)

        if self.dropout:
            self._rnn_dropout = RNNDropout(p=self.dropout)

        self._encoding = Seq2SeqEncoder(nn.LSTM, self.embedding_dim, self.hidden_size, bidirectional=True)

        self._attention = SoftmaxAttention()

        self._projection = nn.Sequential(nn.Linear(4 * 2 * self.hidden_size, self.hidden_size), nn.ReLU())

        self._composition = Seq2SeqEncoder(nn.LSTM, self.hidden_size, self.hidden_size, bidirectional=True)

        self._classification = nn.Sequential(nn.Dropout(p=self.dropout),
                                             nn.Linear(2 * 4 * self.hidden_size, self.hidden_size),
                                             nn.Tanh(),
                                             nn.Dropout(p=self.dropout),
                                             nn.Linear(self.hidden_size, self.num_classes))

        # Initialize all weights and biases in the model.
        self.apply(_init_esim_weights)

    def forward(self, premises, premises_lengths, hypotheses, hypotheses_lengths):
        premises_mask = get_mask(premises, premises_lengths).to(self.device)
        hypotheses_mask = get_mask(hypotheses, hypotheses_lengths).to(self.device)

        embedded_premises = self._word_embedding(premises)
        embedded_hypotheses = self._word_embedding(hypotheses)

        if self.dropout:
            embedded_premises = self._rnn_dropout(embedded_premises)
            embedded_hypotheses = self._rnn_dropout(embedded_hypotheses)

        encoded_premises = self._encoding(embedded_premises, premises_lengths)
        encoded_hypotheses = self._encoding(embedded_hypotheses, hypotheses_lengths)

        attended_premises, attended_hypotheses = self._attention(encoded_premises, premises_mask,
                                                                 encoded_hypotheses, hypotheses_mask)

        enhanced_premises = torch.cat([encoded_premises,
                                       attended_premises,
                                       encoded_premises - attended_premises,
                                       encoded_premises * attended_premises],
                                      dim=-1)
        enhanced_hypotheses = torch.cat([encoded_hypotheses,
                                         attended_hypotheses,
                                         encoded_hypotheses - attended_hypotheses,
                                         encoded_hypotheses * attended_hypotheses],
                                        dim=-1)

        projected_premises = self._projection(enhanced_premises)
        projected_hypotheses = self._projection(enhanced_hypotheses)

        if self.dropout:
            projected_premises = self._rnn_dropout(projected_premises)
            projected_hypotheses = self._rnn_dropout(projected_hypotheses)

        v_ai = self._composition(projected_premises, premises_lengths)
        v_bj = self._composition(projected_hypotheses, hypotheses_lengths)

        v_a_avg = torch.sum(v_ai * premises_mask.unsqueeze(1).transpose(2, 1), dim=1) \
            / torch.sum(premises_mask, dim=1, keepdim=True)
        v_b_avg = torch.sum(v_bj * hypotheses_mask.unsqueeze(1).transpose(2, 1), dim=1) \
            / torch.sum(hypotheses_mask, dim=1, keepdim=True)

        v_a_max, _ = replace_masked(v_ai, premises_mask, -1e7).max(dim=1)
        v_b_max, _ = replace_masked(v_bj, hypotheses_mask, -1e7).max(dim=1)

        v = torch.cat([v_a_avg, v_a_max, v_b_avg, v_b_max], dim=1)

        logits = self._classification(v)
        probabilities = nn.functional.softmax(logits, dim=-1)

        return logits, probabilities


def _init_esim_weights(module):
    """Initialise the weights of the ESIM model."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight.data)
        nn.init.constant_(module.bias.data, 0.0)

    elif isinstance(module, nn.LSTM):
        nn.init.xavier_uniform_(module.weight_ih_l0.data)
        nn.init.orthogonal_(module.weight_hh_l0.data)
        nn.init.constant_(module.bias_ih_l0.data, 0.0)
        nn.init.constant_(module.bias_hh_l0.data, 0.0)
        hidden_size = module.bias_hh_l0.data.shape[0] // 4
        module.bias_hh_l0.data[hidden_size:(2 * hidden_size)] = 1.0

        if (module.bidirectional):
            nn.init.xavier_uniform_(module.weight_ih_l0_reverse.data)
            nn.init.orthogonal_(module.weight_hh_l0_reverse.data)
            nn.init.constant_(module.bias_ih_l0_reverse.data, 0.0)
            nn.init.constant_(module.bias_hh_l0_reverse.data, 0.0)
            module.bias_hh_l0_reverse.data[hidden_size:(2 * hidden_size)] = 1.0


# ----------------------------------------------------------------------------- esim/training.py
def train(model, dataloader, optimizer, criterion, epoch_number, max_gradient_norm):
    model.train()
    epoch_start = time.time()
    running_loss = 0.0
    correct_preds = 0
    for batch_index, batch in enumerate(dataloader):
        premises = batch["premise"]
        premises_lengths = batch["premise_length"]
        hypotheses = batch["hypothesis"]
        hypotheses_lengths = batch["hypothesis_length"]
        labels = batch["label"]

        optimizer.zero_grad()

        logits, probs = model(premises, premises_lengths, hypotheses, hypotheses_lengths)
        loss = criterion(logits, labels)
        loss.backward()

        nn.utils.clip_grad_norm_(model.parameters(), max_gradient_norm)
        optimizer.step()

        running_loss += loss.item()
        correct_preds += correct_predictions(probs, labels)

    epoch_time = time.time() - epoch_start
    epoch_loss = running_loss / len(dataloader)
    epoch_accuracy = correct_preds / len(dataloader.dataset)
    return epoch_time, epoch_loss, epoch_accuracy


def validate(model, dataloader, criterion):
    model.eval()
    running_loss = 0.0
    running_accuracy = 0.0
    with torch.no_grad():
        for batch in dataloader:
            logits, probs = model(batch["premise"], batch["premise_length"],
                                  batch["hypothesis"], batch["hypothesis_length"])
            running_loss += criterion(logits, batch["label"]).item()
            running_accuracy += correct_predictions(probs, batch["label"])
    return running_loss / len(dataloader), running_accuracy / len(dataloader.dataset)


train_data = NLIDataset([make_pair() for _ in range(480)])
valid_data = NLIDataset([make_pair() for _ in range(160)])
test_data = NLIDataset([make_pair() for _ in range(200)])
train_loader = DataLoader(train_data, shuffle=True, batch_size=32)
valid_loader = DataLoader(valid_data, shuffle=False, batch_size=32)
test_loader = DataLoader(test_data, shuffle=False, batch_size=100)

model = ESIM(N_WORDS + 2, 24, 24, dropout=0.2, num_classes=3)
criterion = nn.CrossEntropyLoss()
parameters = [p for p in model.parameters() if p.requires_grad]
optimizer = optim.Adam(parameters, lr=0.004)
scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=0)
forget_bias = model._encoding._encoder.bias_hh_l0[24:48]
print(f"padding row zero {bool((model._word_embedding.weight[0] == 0).all())}, "
      f"forget-gate bias {forget_bias.min().item()} to {forget_bias.max().item()}, "
      f"parameters {sum(p.numel() for p in parameters)}")

_, untrained_accuracy = validate(model, valid_loader, criterion)
print(f"* Validation before training: accuracy {untrained_accuracy * 100:.2f}%")
for epoch in range(1, 7):
    epoch_time, epoch_loss, epoch_accuracy = train(model, train_loader, optimizer, criterion, epoch, 10.0)
    valid_loss, valid_accuracy = validate(model, valid_loader, criterion)
    print("-> Epoch {}: training loss = {:.4f}, accuracy: {:.4f}%; validation loss = {:.4f}, accuracy: {:.4f}%"
          .format(epoch, epoch_loss, epoch_accuracy * 100, valid_loss, valid_accuracy * 100))
    scheduler.step(valid_accuracy)

_, test_accuracy = validate(model, test_loader, criterion)
majority = torch.bincount(test_data.data["labels"], minlength=3).max().item() / len(test_data)
print(f"test accuracy {test_accuracy:.4f}, majority baseline {majority:.4f}, final lr "
      f"{optimizer.param_groups[0]['lr'] >= 0.004 / 2 ** 6}")
assert test_accuracy > majority

# the masked softmax over a padded batch: rows sum to 1 over valid tokens, 0 on padding
with torch.no_grad():
    batch = next(iter(test_loader))
    premises_mask = get_mask(batch["premise"], batch["premise_length"])
    hypotheses_mask = get_mask(batch["hypothesis"], batch["hypothesis_length"])
    encoded_p = model._encoding(model._word_embedding(batch["premise"]), batch["premise_length"])
    encoded_h = model._encoding(model._word_embedding(batch["hypothesis"]), batch["hypothesis_length"])
    attention = masked_softmax(encoded_p.bmm(encoded_h.transpose(2, 1).contiguous()), hypotheses_mask)
    rows_ok = torch.allclose(attention.sum(-1), torch.ones_like(attention.sum(-1)))
    padding_zero = bool((attention * (1 - hypotheses_mask).unsqueeze(1) == 0).all())
    mask_ok = rows_ok and padding_zero and premises_mask.sum().item() == batch["premise_length"].sum().item()
print(f"attention {tuple(attention.shape)}: rows sum to 1 {rows_ok}, zero on padding {padding_zero}")

print(f"FINAL test_acc={test_accuracy:.4f} majority={majority:.4f} softmax_ok={int(mask_ok)}")
