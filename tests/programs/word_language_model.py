"""pytorch/examples word_language_model, shrunk: a ``Dictionary``/``Corpus`` of word ids,
``batchify`` by ``data.narrow(0, 0, nbatch * bsz)`` and ``data.view(bsz, -1).t().contiguous()``,
``get_batch`` slicing ``source[i:i + seq_len]`` with ``target.view(-1)``; ``RNNModel`` (LSTM with
tied encoder/decoder weights, ``init_hidden`` by ``weight.new_zeros``, ``repackage_hidden``
detaching the ``(h, c)`` tuple between batches) and ``TransformerModel`` (``PositionalEncoding``
buffer from ``torch.exp(torch.arange(...) * (-math.log(10000.0) / d_model))``,
``nn.TransformerEncoder(nn.TransformerEncoderLayer(...))``, the causal mask from
``nn.Transformer.generate_square_subsequent_mask``, ``math.sqrt(ninp)`` scaling,
``F.log_softmax`` + ``nn.NLLLoss``); the example's manual SGD ``p.data.add_(p.grad, alpha=-lr)``
after ``torch.nn.utils.clip_grad_norm_``, the lr divided by 4 when validation stops improving,
``math.exp(loss)`` perplexity, and ``torch.save(model)``/``torch.load`` of the best model.
Data: a synthetic corpus from a sparse random Markov chain over 30 words.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Dictionary:
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    def __init__(self, lines):
        self.dictionary = Dictionary()
        n = len(lines)
        self.train = self.tokenize(lines[: n * 8 // 10])
        self.valid = self.tokenize(lines[n * 8 // 10: n * 9 // 10])
        self.test = self.tokenize(lines[n * 9 // 10:])

    def tokenize(self, lines):
        idss = []
        for line in lines:
            words = line.split() + ['<eos>']
            ids = []
            for word in words:
                ids.append(self.dictionary.add_word(word))
            idss.append(torch.tensor(ids).type(torch.int64))
        return torch.cat(idss)


def synthetic_lines(rng, n_lines=300, vocab=30):
    # each word has three likely successors: a language a small model can learn
    successors = rng.randint(0, vocab, size=(vocab, 3))
    lines = []
    for _ in range(n_lines):
        word = rng.randint(vocab)
        words = []
        for _ in range(rng.randint(5, 12)):
            words.append(f"w{word}")
            word = successors[word, rng.randint(3)] if rng.rand() < 0.9 else rng.randint(vocab)
        lines.append(" ".join(words))
    return lines


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError('When using the tied flag, nhid must be equal to emsize')
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == 'LSTM':
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))
        else:
            return weight.new_zeros(self.nlayers, bsz, self.nhid)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer('pe', pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    """Container module with an encoder, a recurrent or transformer module, and a decoder."""

    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid,
                                               num_encoder_layers=nlayers)
        self.model_type = 'Transformer'
        self.src_mask = None
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)
        self.init_weights()

    def _generate_square_subsequent_mask(self, sz):
        return torch.log(torch.tril(torch.ones(sz, sz)))

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, src, has_mask=True):
        if has_mask:
            device = src.device
            if self.src_mask is None or self.src_mask.size(0) != len(src):
                mask = self._generate_square_subsequent_mask(len(src)).to(device)
                self.src_mask = mask
        else:
            self.src_mask = None
        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=self.src_mask)
        output = self.decoder(output)
        return F.log_softmax(output, dim=-1)


def batchify(data, bsz):
    # Work out how cleanly we can divide the dataset into bsz parts.
    nbatch = data.size(0) // bsz
    # Trim off any extra elements that wouldn't cleanly fit (remainders).
    data = data.narrow(0, 0, nbatch * bsz)
    # Evenly divide the data across the bsz batches.
    data = data.view(bsz, -1).t().contiguous()
    return data.to(device)


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    else:
        return tuple(repackage_hidden(v) for v in h)


bptt = 8


def get_batch(source, i):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def evaluate(model, data_source, ntokens, criterion, eval_batch_size):
    # Turn on evaluation mode which disables dropout.
    model.eval()
    total_loss = 0.
    if not isinstance(model, TransformerModel):
        hidden = model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i)
            if isinstance(model, TransformerModel):
                output = model(data)
                output = output.view(-1, ntokens)
            else:
                output, hidden = model(data, hidden)
                hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def train(model, train_data, ntokens, criterion, lr, batch_size, epoch):
    # Turn on training mode which enables dropout.
    model.train()
    total_loss = 0.
    if not isinstance(model, TransformerModel):
        hidden = model.init_hidden(batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):  # noqa: B007  (the count after the loop)
        data, targets = get_batch(train_data, i)
        # Starting each batch, we detach the hidden state from how it was previously produced.
        # If we didn't, the model would try backpropagating all the way to start of the dataset.
        model.zero_grad()
        if isinstance(model, TransformerModel):
            output = model(data)
            output = output.view(-1, ntokens)
        else:
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()

        # `clip_grad_norm` helps prevent the exploding gradient problem in RNNs / LSTMs.
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)

        total_loss += loss.item()
    return total_loss / (batch + 1)


def run(kind, corpus, path):
    ntokens = len(corpus.dictionary)
    batch_size, eval_batch_size = 4, 5
    train_data = batchify(corpus.train, batch_size)
    val_data = batchify(corpus.valid, eval_batch_size)
    test_data = batchify(corpus.test, eval_batch_size)
    if kind == 'Transformer':
        model = TransformerModel(ntokens, 32, 2, 64, 1, 0.1).to(device)
        lr = 1.0
    else:
        model = RNNModel(kind, ntokens, 32, 32, 2, 0.1, tie_weights=True).to(device)
        lr = 20.0
    criterion = nn.NLLLoss()
    best_val_loss = None
    for epoch in range(1, 7):
        train_loss = train(model, train_data, ntokens, criterion, lr, batch_size, epoch)
        val_loss = evaluate(model, val_data, ntokens, criterion, eval_batch_size)
        print(f'| {kind} end of epoch {epoch:3d} | train loss {train_loss:.2f} | valid loss {val_loss:.2f} | '
              f'valid ppl {math.exp(val_loss):.2f}')
        # Save the model if the validation loss is the best we've seen so far.
        if not best_val_loss or val_loss < best_val_loss:
            with open(path, 'wb') as f:
                torch.save(model, f)
            best_val_loss = val_loss
        else:
            # Anneal the learning rate if no improvement has been seen in the validation dataset.
            lr /= 4.0
    # Load the best saved model.
    with open(path, 'rb') as f:
        model = torch.load(f, weights_only=False)
        # after load the rnn params are not a continuous chunk of memory
        # this makes them a continuous chunk, and will speed up forward pass
        if kind in ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU']:
            model.rnn.flatten_parameters()
    test_loss = evaluate(model, test_data, ntokens, criterion, eval_batch_size)
    print(f'| {kind} end of training | test loss {test_loss:.2f} | test ppl {math.exp(test_loss):.2f}')
    return test_loss


if __name__ == "__main__":
    corpus = Corpus(synthetic_lines(np.random.RandomState(0)))
    print('vocabulary:', len(corpus.dictionary), 'train tokens:', corpus.train.numel())
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    print('causal mask row sums:', (mask == 0).sum(1).tolist(), 'masked:', bool(torch.isinf(mask).any()))
    lstm_loss = run('LSTM', corpus, 'model_lstm.pt')
    transformer_loss = run('Transformer', corpus, 'model_transformer.pt')
    print(f"FINAL lstm_ppl={math.exp(lstm_loss):.4f} transformer_ppl={math.exp(transformer_loss):.4f}")
