"""The pytorch.org Dynamic Quantization tutorials, at tiny sizes: "(beta) Dynamic Quantization on an
LSTM Word Language Model" (advanced/dynamic_quantization_tutorial) and "(beta) Dynamic Quantization
on BERT" (intermediate/dynamic_quantization_bert_tutorial), plus the quantized-tensor basics on fixed values.

The LSTM tutorial's ``LSTMModel`` (encoder / ``nn.LSTM`` / decoder, ``init_weights`` by
``uniform_``, ``init_hidden`` by ``weight.new_zeros``), ``batchify``, ``get_batch``,
``repackage_hidden`` and ``evaluate``; the model, briefly trained here on a synthetic Markov-chain
corpus, is quantized by ``torch.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear},
dtype=torch.qint8)``, printed, sized by ``print_size_of_model`` (``torch.save(model.state_dict(),
"temp.p")`` + ``os.path.getsize``) and evaluated against the float model. The BERT tutorial's step
is the same on a small BERT-like encoder written HF-style (query/key/value ``nn.Linear``s,
``BertSelfOutput`` dense + LayerNorm, GELU intermediate, pooler + classifier) and fine-tuned on a
synthetic sequence task: ``torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
dtype=torch.qint8)``, then loss, accuracy and sizes for both. Last, ``torch.quantize_per_tensor``,
``int_repr()``, ``dequantize()``, ``q_scale()``, ``q_zero_point()``, ``quantize_per_channel``,
``torch.backends.quantized.engine``.
"""
# ruff: noqa: UP008, B007  (the tutorial's own spelling: super(LSTMModel, self), the unused batch index)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# ------------------------------------------------------------------ 1. the LSTM word language model
ntokens = 24
transition = np.random.default_rng(0).dirichlet(np.full(ntokens, 0.3), size=ntokens)


def markov_corpus(length):
    ids = [0]
    for _ in range(length - 1):
        ids.append(int(rng.choice(ntokens, p=transition[ids[-1]])))
    return torch.tensor(ids, dtype=torch.long)


class LSTMModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.5):
        super(LSTMModel, self).__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)

        self.init_weights()

        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        self.encoder.weight.data.uniform_(-initrange, initrange)
        self.decoder.bias.data.zero_()
        self.decoder.weight.data.uniform_(-initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        return decoded, hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    # Work out how cleanly we can divide the dataset into bsz parts.
    nbatch = data.size(0) // bsz
    # Trim off any extra elements that wouldn't cleanly fit (remainders).
    data = data.narrow(0, 0, nbatch * bsz)
    # Evenly divide the data across the bsz batches.
    return data.view(bsz, -1).t().contiguous()


bptt = 12
train_data = batchify(markov_corpus(2400), 10)
eval_batch_size = 1
test_data = batchify(markov_corpus(600), eval_batch_size)


def get_batch(source, i):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].reshape(-1)
    return data, target


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    else:
        return tuple(repackage_hidden(v) for v in h)


criterion = nn.CrossEntropyLoss()


def evaluate(model_, data_source):
    # Turn on evaluation mode which disables dropout.
    model_.eval()
    total_loss = 0.
    hidden = model_.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i)
            output, hidden = model_(data, hidden)
            hidden = repackage_hidden(hidden)
            output_flat = output.view(-1, ntokens)
            total_loss += len(data) * criterion(output_flat, targets).item()
    return total_loss / (len(data_source) - 1)


model = LSTMModel(ntoken=ntokens, ninp=32, nhid=48, nlayers=2, dropout=0.1)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for epoch in range(2):
    model.train()
    hidden = model.init_hidden(10)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i)
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output.view(-1, ntokens), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
    print(f"| epoch {epoch + 1:3d} | train loss {loss.item():5.2f} | ppl {math.exp(loss.item()):8.2f}")

quantized_model = torch.quantization.quantize_dynamic(
    model, {nn.LSTM, nn.Linear}, dtype=torch.qint8
)
print(quantized_model)


def print_size_of_model(model):
    torch.save(model.state_dict(), "temp.p")
    size = os.path.getsize("temp.p")
    print('Size (MB):', size / 1e6)
    os.remove('temp.p')
    return size


float_size = print_size_of_model(model)
quantized_size = print_size_of_model(quantized_model)

float_loss = evaluate(model, test_data)
quantized_loss = evaluate(quantized_model, test_data)
print(f"loss: {float_loss:5.3f} (float)  {quantized_loss:5.3f} (quantized)")
with torch.no_grad():
    data, _ = get_batch(test_data, 0)
    hidden = model.init_hidden(eval_batch_size)
    logits_gap = (model(data, hidden)[0] - quantized_model(data, hidden)[0]).abs().max().item()
print(f"max |float - quantized| logit: {logits_gap:.4f}")


# ------------------------------------------------------------------ 2. a BERT-like classifier
class BertSelfAttention(nn.Module):
    def __init__(self, hidden_size, num_attention_heads):
        super().__init__()
        self.num_attention_heads = num_attention_heads
        self.attention_head_size = hidden_size // num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(hidden_size, self.all_head_size)
        self.key = nn.Linear(hidden_size, self.all_head_size)
        self.value = nn.Linear(hidden_size, self.all_head_size)

    def transpose_for_scores(self, x):
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        x = x.view(new_x_shape)
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = attention_scores / math.sqrt(self.attention_head_size)
        attention_scores = attention_scores + attention_mask
        attention_probs = nn.functional.softmax(attention_scores, dim=-1)
        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        new_context_layer_shape = context_layer.size()[:-2] + (self.all_head_size,)
        return context_layer.view(new_context_layer_shape)


class BertLayer(nn.Module):
    def __init__(self, hidden_size, num_attention_heads, intermediate_size):
        super().__init__()
        self.attention = BertSelfAttention(hidden_size, num_attention_heads)
        self.attention_output = nn.Linear(hidden_size, hidden_size)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=1e-12)
        self.intermediate = nn.Linear(hidden_size, intermediate_size)
        self.output = nn.Linear(intermediate_size, hidden_size)
        self.output_norm = nn.LayerNorm(hidden_size, eps=1e-12)

    def forward(self, hidden_states, attention_mask):
        attention = self.attention_output(self.attention(hidden_states, attention_mask))
        hidden_states = self.attention_norm(attention + hidden_states)
        intermediate = F.gelu(self.intermediate(hidden_states))
        return self.output_norm(self.output(intermediate) + hidden_states)


class BertForSequenceClassification(nn.Module):
    def __init__(self, vocab_size=20, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=16, num_labels=2):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_position_embeddings, hidden_size)
        self.embeddings_norm = nn.LayerNorm(hidden_size, eps=1e-12)
        self.layer = nn.ModuleList([BertLayer(hidden_size, num_attention_heads, intermediate_size)
                                    for _ in range(num_hidden_layers)])
        self.pooler = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, input_ids, attention_mask):
        positions = torch.arange(input_ids.size(1)).unsqueeze(0)
        hidden_states = self.embeddings_norm(self.word_embeddings(input_ids) + self.position_embeddings(positions))
        extended_attention_mask = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states, extended_attention_mask)
        pooled_output = torch.tanh(self.pooler(hidden_states[:, 0]))
        return self.classifier(pooled_output)


def make_sequences(n):
    """[CLS]=1, then 4..12 tokens from 2..19, padded with 0; label: more 2s than 3s."""
    ids = np.zeros((n, 14), dtype=np.int64)
    mask = np.zeros((n, 14), dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    for row in range(n):
        length = int(rng.integers(4, 13))
        tokens = rng.integers(2, 8, length)
        ids[row, 0], ids[row, 1:length + 1] = 1, tokens
        mask[row, :length + 1] = 1
        labels[row] = int((tokens == 2).sum() > (tokens == 3).sum())
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(labels)


train_ids, train_mask, train_labels = make_sequences(512)
eval_ids, eval_mask, eval_labels = make_sequences(256)
bert = BertForSequenceClassification()
optimizer = torch.optim.AdamW(bert.parameters(), lr=2e-3)
for epoch in range(3):
    bert.train()
    for start in range(0, len(train_ids), 32):
        logits = bert(train_ids[start:start + 32], train_mask[start:start + 32])
        loss = F.cross_entropy(logits, train_labels[start:start + 32])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"bert epoch {epoch + 1}: train loss {loss.item():.4f}")


def evaluate_bert(model_):
    model_.eval()
    with torch.no_grad():
        logits = model_(eval_ids, eval_mask)
    loss = F.cross_entropy(logits, eval_labels).item()
    acc = (logits.argmax(dim=1) == eval_labels).float().mean().item()
    return loss, acc, logits


quantized_bert = torch.ao.quantization.quantize_dynamic(bert, {torch.nn.Linear}, dtype=torch.qint8)
print(quantized_bert.layer[0].attention)
bert_float_size = print_size_of_model(bert)
bert_quantized_size = print_size_of_model(quantized_bert)
bert_float_loss, bert_float_acc, float_logits = evaluate_bert(bert)
bert_quantized_loss, bert_quantized_acc, quantized_logits = evaluate_bert(quantized_bert)
print(f"bert float: loss {bert_float_loss:.4f} acc {bert_float_acc:.4f}")
print(f"bert quantized: loss {bert_quantized_loss:.4f} acc {bert_quantized_acc:.4f}")
bert_gap = (float_logits - quantized_logits).abs().max().item()
print(f"max |float - quantized| logit: {bert_gap:.4f}")
agreement = (float_logits.argmax(1) == quantized_logits.argmax(1)).float().mean().item()

# ------------------------------------------------------------------ 3. quantized tensors
x = torch.tensor([[-1.0, 0.3, 2.5], [0.05, 0.15, -0.25]])  # fixed values: the printed lines stay the same
xq = torch.quantize_per_tensor(x, scale=0.05, zero_point=10, dtype=torch.quint8)
print(xq)
print(xq.int_repr())
print(xq.dequantize())
print(xq.q_scale(), xq.q_zero_point(), xq.qscheme(), xq.dtype, xq.is_quantized)
w = torch.tensor([[0.5, -0.42, 0.3, 0.11], [-1.2, 0.8, 0.05, -0.6], [2.0, -3.1, 0.7, 0.0]])
wq = torch.quantize_per_channel(w, torch.tensor([0.01, 0.02, 0.03], dtype=torch.float64),
                                torch.tensor([0, 0, 0]), axis=0, dtype=torch.qint8)
print(wq.int_repr())
print(wq.dequantize())
print(wq.q_per_channel_scales(), wq.q_per_channel_axis())
print(torch.backends.quantized.engine)

print(f"FINAL lstm_float_loss={float_loss:.4f} lstm_quant_loss={quantized_loss:.4f} "
      f"lstm_size_ratio={quantized_size / float_size:.4f} bert_float_loss={bert_float_loss:.4f} "
      f"bert_quant_loss={bert_quantized_loss:.4f} bert_float_acc={bert_float_acc:.4f} "
      f"bert_quant_acc={bert_quantized_acc:.4f} "
      f"argmax_agreement={agreement:.4f}")
