"""Dive into Deep Learning (d2l.ai, PyTorch edition), chapters 9.5-9.7 and 10 as a student types
them without the ``d2l`` package: Nadaraya-Watson kernel regression (``torch.sort``,
``repeat_interleave``, ``x_train.repeat((n_train, 1))``, keys masked by ``(1 -
torch.eye(n_train)).type(torch.bool)``, ``torch.bmm`` with ``unsqueeze``, a learned ``w``),
``sequence_mask`` (``torch.arange(maxlen)[None, :] < valid_len[:, None]``, ``X[~mask] = value``),
``masked_softmax`` with ``torch.repeat_interleave(valid_lens, shape[1])``, ``AdditiveAttention``
and ``DotProductAttention``, ``MultiHeadAttention`` with ``transpose_qkv``/``transpose_output``,
``PositionalEncoding`` (``torch.pow(10000, torch.arange(0, num_hiddens, 2, dtype=torch.float32) /
num_hiddens)``, ``self.P[:, :, 0::2] = torch.sin(X)``), the machine-translation data pipeline
(``preprocess_nmt``, ``tokenize_nmt``, ``Vocab(min_freq=2, reserved_tokens=...)``,
``truncate_pad``, ``build_array_nmt`` with ``(array != vocab['<pad>']).type(torch.int32).sum(1)``),
the ``Encoder``/``Decoder``/``EncoderDecoder`` interfaces, ``Seq2SeqEncoder`` (``nn.GRU``), the
Bahdanau ``Seq2SeqAttentionDecoder``, ``MaskedSoftmaxCELoss(nn.CrossEntropyLoss)`` setting
``self.reduction='none'`` in ``forward``, ``train_seq2seq`` (``m._flat_weights_names`` and
``m._parameters[param]`` in ``xavier_init_weights``, Adam, ``grad_clipping``), ``predict_seq2seq``
and ``bleu``. Sizes are small: a few dozen English-French pairs (the first lines of the book's
fra-eng data set, in its tab-separated form) stand in for the download; translations are printed
as their token counts, since their words change with the seed.
"""
# ruff: noqa: E741, E721, UP008  (the book's own code: `lines = [vocab[l] for l in lines]`,
# `type(m) == nn.Linear`, `super(AdditiveAttention, self).__init__(**kwargs)`)

import collections
import math
import os
import time

import torch
from torch import nn
from torch.utils import data

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ---------------------------------------------------------------- 10.2 Nadaraya-Watson kernel regression
n_train = 50  # training examples
x_train, _ = torch.sort(torch.rand(n_train) * 5)   # sorted training inputs


def f(x):
    return 2 * torch.sin(x) + x**0.8


y_train = f(x_train) + torch.normal(0.0, 0.5, (n_train,))  # training outputs
x_test = torch.arange(0, 5, 0.1)  # test inputs
y_truth = f(x_test)  # the true outputs at the test inputs
n_test = len(x_test)  # test examples
print(n_test)

# average pooling
y_hat = torch.repeat_interleave(y_train.mean(), n_test)
mean_pool_error = float(((y_hat - y_truth) ** 2).mean())

# nonparametric attention pooling: X_repeat has shape (n_test, n_train), each row the same test input
X_repeat = x_test.repeat_interleave(n_train).reshape((-1, n_train))
# x_train holds the keys; attention_weights has shape (n_test, n_train)
attention_weights = nn.functional.softmax(-(X_repeat - x_train)**2 / 2, dim=1)
# each element of y_hat is a weighted average of the values
y_hat = torch.matmul(attention_weights, y_train)
nonparametric_error = float(((y_hat - y_truth) ** 2).mean())
print(f'mean pooling error {mean_pool_error:.3f}, attention pooling error {nonparametric_error:.3f}')

X = torch.ones((2, 1, 4))
Y = torch.ones((2, 4, 6))
print(torch.bmm(X, Y).shape)

weights = torch.ones((2, 10)) * 0.1
values = torch.arange(20.0).reshape((2, 10))
print(torch.bmm(weights.unsqueeze(1), values.unsqueeze(-1)))


class NWKernelRegression(nn.Module):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.w = nn.Parameter(torch.rand((1,), requires_grad=True))

    def forward(self, queries, keys, values):
        # queries and attention_weights have shape (queries, key-value pairs)
        queries = queries.repeat_interleave(keys.shape[1]).reshape((-1, keys.shape[1]))
        self.attention_weights = nn.functional.softmax(
            -((queries - keys) * self.w)**2 / 2, dim=1)
        # values has shape (queries, key-value pairs)
        return torch.bmm(self.attention_weights.unsqueeze(1),
                         values.unsqueeze(-1)).reshape(-1)


# X_tile has shape (n_train, n_train), each row holding the same training inputs
X_tile = x_train.repeat((n_train, 1))
# Y_tile has shape (n_train, n_train), each row holding the same training outputs
Y_tile = y_train.repeat((n_train, 1))
# keys has shape ('n_train', 'n_train' - 1)
keys = X_tile[(1 - torch.eye(n_train)).type(torch.bool)].reshape((n_train, -1))
# values has shape ('n_train', 'n_train' - 1)
values = Y_tile[(1 - torch.eye(n_train)).type(torch.bool)].reshape((n_train, -1))
print(keys.shape, values.shape)

net = NWKernelRegression()
loss = nn.MSELoss(reduction='none')
trainer = torch.optim.SGD(net.parameters(), lr=0.5)

for epoch in range(5):
    trainer.zero_grad()
    l = loss(net(x_train, keys, values), y_train)
    l.sum().backward()
    trainer.step()
    print(f'epoch {epoch + 1}, loss {float(l.sum()):.6f}')
nw_loss = float(l.sum())

# keys has shape (n_test, n_train), each row the same training inputs
keys = x_train.repeat((n_test, 1))
# value has shape (n_test, n_train)
values = y_train.repeat((n_test, 1))
y_hat = net(x_test, keys, values).unsqueeze(1).detach()
print(y_hat.shape, net.attention_weights.unsqueeze(0).unsqueeze(0).shape)
parametric_error = float(((y_hat.squeeze(1) - y_truth) ** 2).mean())

# ---------------------------------------------------------------- 10.3 attention scoring functions


def sequence_mask(X, valid_len, value=0):
    """Mask the irrelevant entries of sequences."""
    maxlen = X.size(1)
    mask = torch.arange((maxlen), dtype=torch.float32,
                        device=X.device)[None, :] < valid_len[:, None]
    X[~mask] = value
    return X


def masked_softmax(X, valid_lens):
    """Softmax over the last axis, masking elements."""
    # X: 3-d tensor; valid_lens: 1-d or 2-d tensor
    if valid_lens is None:
        return nn.functional.softmax(X, dim=-1)
    else:
        shape = X.shape
        if valid_lens.dim() == 1:
            valid_lens = torch.repeat_interleave(valid_lens, shape[1])
        else:
            valid_lens = valid_lens.reshape(-1)
        # masked elements on the last axis get a very large negative value, so softmax gives them 0
        X = sequence_mask(X.reshape(-1, shape[-1]), valid_lens,
                          value=-1e6)
        return nn.functional.softmax(X.reshape(shape), dim=-1)


print((masked_softmax(torch.rand(2, 2, 4), torch.tensor([2, 3])) > 0).int())
print((masked_softmax(torch.rand(2, 2, 4), torch.tensor([[1, 3], [2, 4]])) > 0).int())


class AdditiveAttention(nn.Module):
    """Additive attention."""

    def __init__(self, key_size, query_size, num_hiddens, dropout, **kwargs):
        super(AdditiveAttention, self).__init__(**kwargs)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens):
        queries, keys = self.W_q(queries), self.W_k(keys)
        # after the expansion, queries has shape (batch_size, queries, 1, num_hiddens) and keys
        # (batch_size, 1, key-value pairs, num_hiddens); broadcasting sums them
        features = queries.unsqueeze(2) + keys.unsqueeze(1)
        features = torch.tanh(features)
        # self.w_v has one output, so the last dimension goes: scores has shape
        # (batch_size, queries, key-value pairs)
        scores = self.w_v(features).squeeze(-1)
        self.attention_weights = masked_softmax(scores, valid_lens)
        # values has shape (batch_size, key-value pairs, value dimension)
        return torch.bmm(self.dropout(self.attention_weights), values)


queries, keys = torch.normal(0, 1, (2, 1, 20)), torch.ones((2, 10, 2))
# the two values matrices of values are the same
values = torch.arange(40, dtype=torch.float32).reshape(1, 10, 4).repeat(
    2, 1, 1)
valid_lens = torch.tensor([2, 6])

attention = AdditiveAttention(key_size=2, query_size=20, num_hiddens=8,
                              dropout=0.1)
attention.eval()
print(attention(queries, keys, values, valid_lens))
print((attention.attention_weights > 0).int())


class DotProductAttention(nn.Module):
    """Scaled dot-product attention."""

    def __init__(self, dropout, **kwargs):
        super(DotProductAttention, self).__init__(**kwargs)
        self.dropout = nn.Dropout(dropout)

    # queries: (batch_size, queries, d); keys: (batch_size, key-value pairs, d);
    # values: (batch_size, key-value pairs, value dimension); valid_lens: (batch_size,) or
    # (batch_size, queries)
    def forward(self, queries, keys, values, valid_lens=None):
        d = queries.shape[-1]
        # transpose_b=True swaps the last two dimensions of keys
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values)


queries = torch.normal(0, 1, (2, 1, 2))
attention = DotProductAttention(dropout=0.5)
attention.eval()
print(attention(queries, keys, values, valid_lens))

# ---------------------------------------------------------------- 10.5 multi-head attention


def transpose_qkv(X, num_heads):
    """Reshape for the parallel computation of several attention heads."""
    # X in: (batch_size, queries or key-value pairs, num_hiddens)
    # X out: (batch_size, queries or key-value pairs, num_heads, num_hiddens/num_heads)
    X = X.reshape(X.shape[0], X.shape[1], num_heads, -1)
    # X out: (batch_size, num_heads, queries or key-value pairs, num_hiddens/num_heads)
    X = X.permute(0, 2, 1, 3)
    # output: (batch_size*num_heads, queries or key-value pairs, num_hiddens/num_heads)
    return X.reshape(-1, X.shape[2], X.shape[3])


def transpose_output(X, num_heads):
    """Undo transpose_qkv."""
    X = X.reshape(-1, num_heads, X.shape[1], X.shape[2])
    X = X.permute(0, 2, 1, 3)
    return X.reshape(X.shape[0], X.shape[1], -1)


class MultiHeadAttention(nn.Module):
    """Multi-head attention."""

    def __init__(self, key_size, query_size, value_size, num_hiddens,
                 num_heads, dropout, bias=False, **kwargs):
        super(MultiHeadAttention, self).__init__(**kwargs)
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def forward(self, queries, keys, values, valid_lens):
        # queries, keys, values: (batch_size, queries or key-value pairs, num_hiddens);
        # after transpose_qkv: (batch_size*num_heads, queries or key-value pairs,
        # num_hiddens/num_heads)
        queries = transpose_qkv(self.W_q(queries), self.num_heads)
        keys = transpose_qkv(self.W_k(keys), self.num_heads)
        values = transpose_qkv(self.W_v(values), self.num_heads)

        if valid_lens is not None:
            # on axis 0, copy the first item (scalar or vector) num_heads times, then the next
            valid_lens = torch.repeat_interleave(
                valid_lens, repeats=self.num_heads, dim=0)

        # output: (batch_size*num_heads, queries, num_hiddens/num_heads)
        output = self.attention(queries, keys, values, valid_lens)

        # output_concat: (batch_size, queries, num_hiddens)
        output_concat = transpose_output(output, self.num_heads)
        return self.W_o(output_concat)


num_hiddens, num_heads = 100, 5
attention = MultiHeadAttention(num_hiddens, num_hiddens, num_hiddens,
                               num_hiddens, num_heads, 0.5)
attention.eval()
batch_size, num_queries = 2, 4
num_kvpairs, valid_lens = 6, torch.tensor([3, 2])
X = torch.ones((batch_size, num_queries, num_hiddens))
Y = torch.ones((batch_size, num_kvpairs, num_hiddens))
print(attention(X, Y, Y, valid_lens).shape)
# the heads agree with one DotProductAttention per head's slice of the projections
head_weights = attention.attention.attention_weights
print(head_weights.shape, (head_weights[0::num_heads] > 0).sum(-1).tolist())

# ---------------------------------------------------------------- 10.6 positional encoding


class PositionalEncoding(nn.Module):
    """Positional encoding."""

    def __init__(self, num_hiddens, dropout, max_len=1000):
        super(PositionalEncoding, self).__init__()
        self.dropout = nn.Dropout(dropout)
        # a long enough P
        self.P = torch.zeros((1, max_len, num_hiddens))
        X = torch.arange(max_len, dtype=torch.float32).reshape(
            -1, 1) / torch.pow(10000, torch.arange(
                0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)
        self.P[:, :, 0::2] = torch.sin(X)
        self.P[:, :, 1::2] = torch.cos(X)

    def forward(self, X):
        X = X + self.P[:, :X.shape[1], :].to(X.device)
        return self.dropout(X)


encoding_dim, num_steps = 32, 60
pos_encoding = PositionalEncoding(encoding_dim, 0)
pos_encoding.eval()
X = pos_encoding(torch.zeros((1, num_steps, encoding_dim)))
P = pos_encoding.P[:, :X.shape[1], :]
print(X.shape, P[0, :, 6:10].shape, f'{float(P[0, 59, 6:10].sum()):.4f}', f'{float(P.sum()):.4f}')

# ---------------------------------------------------------------- 9.5 machine translation data
RAW_TEXT = """Go.\tVa !
Hi.\tSalut !
Run!\tCours !
Run!\tCourez !
Who?\tQui ?
Wow!\tÇa alors !
Fire!\tAu feu !
Help!\tÀ l'aide !
Stop!\tArrête-toi !
Wait!\tAttends !
Go on.\tPoursuis.
Hello!\tBonjour !
I see.\tJe comprends.
I try.\tJ'essaye.
I won!\tJ'ai gagné !
Oh no!\tOh non !
Relax.\tDétends-toi.
Smile.\tSouris.
Get up.\tLève-toi.
Go now.\tVa, maintenant.
Got it!\tCompris !
He ran.\tIl a couru.
I fell.\tJe suis tombé.
I know.\tJe sais.
I left.\tJe suis parti.
I lied.\tJ'ai menti.
I lost.\tJ'ai perdu.
I'm OK.\tJe vais bien.
No way!\tPas question !
Really?\tVraiment ?
Thanks.\tMerci !
We try.\tOn essaye.
We won.\tNous avons gagné.
Be calm.\tSois calme !
Be cool.\tSois détendu !
Be fair.\tSois juste !
Be kind.\tSois gentil.
Be nice.\tSois gentil !
Call me.\tAppelle-moi !
Come in.\tEntrez !
He's calm.\tIl est calme.
He's sad.\tIl est triste.
I'm sad.\tJe suis triste.
I'm calm.\tJe suis calme.
I'm home.\tJe suis chez moi.
We're home.\tNous sommes chez nous.
He's home.\tIl est chez lui.
Go home.\tVa chez toi !
"""


def read_data_nmt():
    """Load the English-French data set (here the book's first lines, kept in the program)."""
    return RAW_TEXT


raw_text = read_data_nmt()
print(raw_text[:33].replace('\t', ' | ').splitlines())


def preprocess_nmt(text):
    """Preprocess the English-French data set."""
    def no_space(char, prev_char):
        return char in set(',.!?') and prev_char != ' '

    # non-breaking spaces become spaces; capitals become lower case
    text = text.replace('\u202f', ' ').replace('\xa0', ' ').lower()
    # a space between words and punctuation
    out = [' ' + char if i > 0 and no_space(char, text[i - 1]) else char
           for i, char in enumerate(text)]
    return ''.join(out)


text = preprocess_nmt(raw_text)
print(text[:40].splitlines())


def tokenize_nmt(text, num_examples=None):
    """Tokenise the English-French data set."""
    source, target = [], []
    for i, line in enumerate(text.split('\n')):
        if num_examples and i > num_examples:
            break
        parts = line.split('\t')
        if len(parts) == 2:
            source.append(parts[0].split(' '))
            target.append(parts[1].split(' '))
    return source, target


source, target = tokenize_nmt(text)
print(source[:6], target[:6])


class Vocab:
    """Vocabulary for text."""

    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        if tokens is None:
            tokens = []
        if reserved_tokens is None:
            reserved_tokens = []
        counter = count_corpus(tokens)
        self._token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = ['<unk>'] + reserved_tokens
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        for token, freq in self._token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token) - 1

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    def to_tokens(self, indices):
        if not isinstance(indices, (list, tuple)):
            return self.idx_to_token[indices]
        return [self.idx_to_token[index] for index in indices]

    @property
    def unk(self):
        return 0

    @property
    def token_freqs(self):
        return self._token_freqs


def count_corpus(tokens):
    if len(tokens) == 0 or isinstance(tokens[0], list):
        tokens = [token for line in tokens for token in line]
    return collections.Counter(tokens)


src_vocab = Vocab(source, min_freq=2,
                  reserved_tokens=['<pad>', '<bos>', '<eos>'])
print(len(src_vocab))


def truncate_pad(line, num_steps, padding_token):
    """Truncate or pad a text sequence."""
    if len(line) > num_steps:
        return line[:num_steps]  # truncate
    return line + [padding_token] * (num_steps - len(line))  # pad


print(truncate_pad(src_vocab[source[0]], 10, src_vocab['<pad>']))


def build_array_nmt(lines, vocab, num_steps):
    """Turn the text sequences of machine translation into minibatches."""
    lines = [vocab[l] for l in lines]
    lines = [l + [vocab['<eos>']] for l in lines]
    array = torch.tensor([truncate_pad(
        l, num_steps, vocab['<pad>']) for l in lines])
    valid_len = (array != vocab['<pad>']).type(torch.int32).sum(1)
    return array, valid_len


def load_array(data_arrays, batch_size, is_train=True):
    dataset = data.TensorDataset(*data_arrays)
    return data.DataLoader(dataset, batch_size, shuffle=is_train)


def load_data_nmt(batch_size, num_steps, num_examples=600):
    """The iterator and vocabularies of the translation data set."""
    text = preprocess_nmt(read_data_nmt())
    source, target = tokenize_nmt(text, num_examples)
    src_vocab = Vocab(source, min_freq=2,
                      reserved_tokens=['<pad>', '<bos>', '<eos>'])
    tgt_vocab = Vocab(target, min_freq=2,
                      reserved_tokens=['<pad>', '<bos>', '<eos>'])
    src_array, src_valid_len = build_array_nmt(source, src_vocab, num_steps)
    tgt_array, tgt_valid_len = build_array_nmt(target, tgt_vocab, num_steps)
    data_arrays = (src_array, src_valid_len, tgt_array, tgt_valid_len)
    data_iter = load_array(data_arrays, batch_size)
    return data_iter, src_vocab, tgt_vocab


train_iter, src_vocab, tgt_vocab = load_data_nmt(batch_size=2, num_steps=8)
for X, X_valid_len, Y, Y_valid_len in train_iter:
    print('X:', X.type(torch.int32).shape, X.dtype)
    print('valid lengths of X:', X_valid_len.dtype, X_valid_len.shape)
    print('Y:', Y.type(torch.int32).shape)
    print('valid lengths of Y:', Y_valid_len.dtype)
    break

# ---------------------------------------------------------------- 9.6 the encoder-decoder architecture


class Encoder(nn.Module):
    """The base encoder interface of the encoder-decoder architecture."""

    def __init__(self, **kwargs):
        super(Encoder, self).__init__(**kwargs)

    def forward(self, X, *args):
        raise NotImplementedError


class Decoder(nn.Module):
    """The base decoder interface of the encoder-decoder architecture."""

    def __init__(self, **kwargs):
        super(Decoder, self).__init__(**kwargs)

    def init_state(self, enc_outputs, *args):
        raise NotImplementedError

    def forward(self, X, state):
        raise NotImplementedError


class EncoderDecoder(nn.Module):
    """The base class of the encoder-decoder architecture."""

    def __init__(self, encoder, decoder, **kwargs):
        super(EncoderDecoder, self).__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, enc_X, dec_X, *args):
        enc_outputs = self.encoder(enc_X, *args)
        dec_state = self.decoder.init_state(enc_outputs, *args)
        return self.decoder(dec_X, dec_state)


# ---------------------------------------------------------------- 9.7 seq2seq


class Seq2SeqEncoder(Encoder):
    """The RNN encoder of sequence-to-sequence learning."""

    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers,
                 dropout=0, **kwargs):
        super(Seq2SeqEncoder, self).__init__(**kwargs)
        # the embedding layer
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, num_hiddens, num_layers,
                          dropout=dropout)

    def forward(self, X, *args):
        # the output X has shape (batch_size, num_steps, embed_size)
        X = self.embedding(X)
        # in an RNN model the first axis is the time step
        X = X.permute(1, 0, 2)
        # without a state, it starts at 0
        output, state = self.rnn(X)
        # output: (num_steps, batch_size, num_hiddens); state: (num_layers, batch_size, num_hiddens)
        return output, state


encoder = Seq2SeqEncoder(vocab_size=10, embed_size=8, num_hiddens=16,
                         num_layers=2)
encoder.eval()
X = torch.zeros((4, 7), dtype=torch.long)
output, state = encoder(X)
print(output.shape, state.shape)

loss_demo_X = torch.tensor([[1, 2, 3], [4, 5, 6]])
print(sequence_mask(loss_demo_X, torch.tensor([1, 2])))
X = torch.ones(2, 3, 4)
print(sequence_mask(X, torch.tensor([1, 2]), value=-1))


class MaskedSoftmaxCELoss(nn.CrossEntropyLoss):
    """Softmax cross-entropy loss with masking."""
    # pred: (batch_size, num_steps, vocab_size); label: (batch_size, num_steps);
    # valid_len: (batch_size,)

    def forward(self, pred, label, valid_len):
        weights = torch.ones_like(label)
        weights = sequence_mask(weights, valid_len)
        self.reduction = 'none'
        unweighted_loss = super(MaskedSoftmaxCELoss, self).forward(
            pred.permute(0, 2, 1), label)
        weighted_loss = (unweighted_loss * weights).mean(dim=1)
        return weighted_loss


loss = MaskedSoftmaxCELoss()
print(loss(torch.ones(3, 4, 10), torch.ones((3, 4), dtype=torch.long),
           torch.tensor([4, 2, 0])))


def grad_clipping(net, theta):
    """Clip the gradient."""
    if isinstance(net, nn.Module):
        params = [p for p in net.parameters() if p.requires_grad]
    else:
        params = net.params
    norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


class Accumulator:
    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def __getitem__(self, idx):
        return self.data[idx]


class Timer:
    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.time()

    def stop(self):
        self.times.append(time.time() - self.tik)
        return self.times[-1]


def try_gpu(i=0):
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f'cuda:{i}')
    return torch.device('cpu')


def train_seq2seq(net, data_iter, lr, num_epochs, tgt_vocab, device):
    """Train a sequence-to-sequence model; printed lines instead of the book's Animator."""
    def xavier_init_weights(m):
        if type(m) == nn.Linear:
            nn.init.xavier_uniform_(m.weight)
        if type(m) == nn.GRU:
            for param in m._flat_weights_names:
                if "weight" in param:
                    nn.init.xavier_uniform_(m._parameters[param])

    net.apply(xavier_init_weights)
    net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss = MaskedSoftmaxCELoss()
    net.train()
    for epoch in range(num_epochs):
        timer = Timer()
        metric = Accumulator(2)  # sum of training losses, number of tokens
        for batch in data_iter:
            optimizer.zero_grad()
            X, X_valid_len, Y, Y_valid_len = [x.to(device) for x in batch]
            bos = torch.tensor([tgt_vocab['<bos>']] * Y.shape[0],
                               device=device).reshape(-1, 1)
            dec_input = torch.cat([bos, Y[:, :-1]], 1)  # teacher forcing
            Y_hat, _ = net(X, dec_input, X_valid_len)
            l = loss(Y_hat, Y, Y_valid_len)
            l.sum().backward()  # the scalar loss's backward
            grad_clipping(net, 1)
            num_tokens = Y_valid_len.sum()
            optimizer.step()
            with torch.no_grad():
                metric.add(l.sum(), num_tokens)
        if (epoch + 1) % 10 == 0:
            print(f'epoch {epoch + 1}, loss {metric[0] / metric[1]:.3f}')
    print(f'loss {metric[0] / metric[1]:.3f}, {metric[1] / timer.stop():.1f} '
          f'tokens/sec on {str(device)}')
    return metric[0] / metric[1]


# ---------------------------------------------------------------- 10.4 Bahdanau attention


class AttentionDecoder(Decoder):
    """The base interface of decoders with attention."""

    def __init__(self, **kwargs):
        super(AttentionDecoder, self).__init__(**kwargs)

    @property
    def attention_weights(self):
        raise NotImplementedError


class Seq2SeqAttentionDecoder(AttentionDecoder):
    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers,
                 dropout=0, **kwargs):
        super(Seq2SeqAttentionDecoder, self).__init__(**kwargs)
        self.attention = AdditiveAttention(
            num_hiddens, num_hiddens, num_hiddens, dropout)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(
            embed_size + num_hiddens, num_hiddens, num_layers,
            dropout=dropout)
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs, enc_valid_lens, *args):
        # outputs: (batch_size, num_steps, num_hiddens);
        # hidden_state: (num_layers, batch_size, num_hiddens)
        outputs, hidden_state = enc_outputs
        return (outputs.permute(1, 0, 2), hidden_state, enc_valid_lens)

    def forward(self, X, state):
        # enc_outputs: (batch_size, num_steps, num_hiddens);
        # hidden_state: (num_layers, batch_size, num_hiddens)
        enc_outputs, hidden_state, enc_valid_lens = state
        # the output X has shape (num_steps, batch_size, embed_size)
        X = self.embedding(X).permute(1, 0, 2)
        outputs, self._attention_weights = [], []
        for x in X:
            # query: (batch_size, 1, num_hiddens)
            query = torch.unsqueeze(hidden_state[-1], dim=1)
            # context: (batch_size, 1, num_hiddens)
            context = self.attention(
                query, enc_outputs, enc_outputs, enc_valid_lens)
            # concatenate on the feature dimension
            x = torch.cat((context, torch.unsqueeze(x, dim=1)), dim=-1)
            # x becomes (1, batch_size, embed_size + num_hiddens)
            out, hidden_state = self.rnn(x.permute(1, 0, 2), hidden_state)
            outputs.append(out)
            self._attention_weights.append(self.attention.attention_weights)
        # after the fully connected layer, outputs has shape (num_steps, batch_size, vocab_size)
        outputs = self.dense(torch.cat(outputs, dim=0))
        return outputs.permute(1, 0, 2), [enc_outputs, hidden_state,
                                          enc_valid_lens]

    @property
    def attention_weights(self):
        return self._attention_weights


encoder = Seq2SeqEncoder(vocab_size=10, embed_size=8, num_hiddens=16,
                         num_layers=2)
encoder.eval()
decoder = Seq2SeqAttentionDecoder(vocab_size=10, embed_size=8, num_hiddens=16,
                                  num_layers=2)
decoder.eval()
X = torch.zeros((4, 7), dtype=torch.long)  # (batch_size, num_steps)
state = decoder.init_state(encoder(X), None)
output, state = decoder(X, state)
print(output.shape, len(state), state[0].shape, len(state[1]), state[1][0].shape)

embed_size, num_hiddens, num_layers, dropout = 32, 32, 2, 0.1
batch_size, num_steps, lr, num_epochs = 16, 8, 0.005, 30
train_iter, src_vocab, tgt_vocab = load_data_nmt(batch_size, num_steps)
print(len(src_vocab), len(tgt_vocab))
device = try_gpu()

encoder = Seq2SeqEncoder(
    len(src_vocab), embed_size, num_hiddens, num_layers, dropout)
decoder = Seq2SeqAttentionDecoder(
    len(tgt_vocab), embed_size, num_hiddens, num_layers, dropout)
net = EncoderDecoder(encoder, decoder)
seq2seq_loss = train_seq2seq(net, train_iter, lr, num_epochs, tgt_vocab, device)


def predict_seq2seq(net, src_sentence, src_vocab, tgt_vocab, num_steps,
                    device, save_attention_weights=False):
    """Predict with sequence-to-sequence learning."""
    # evaluation mode for prediction
    net.eval()
    src_tokens = src_vocab[src_sentence.lower().split(' ')] + [
        src_vocab['<eos>']]
    enc_valid_len = torch.tensor([len(src_tokens)], device=device)
    src_tokens = truncate_pad(src_tokens, num_steps, src_vocab['<pad>'])
    # add the batch axis
    enc_X = torch.unsqueeze(
        torch.tensor(src_tokens, dtype=torch.long, device=device), dim=0)
    enc_outputs = net.encoder(enc_X, enc_valid_len)
    dec_state = net.decoder.init_state(enc_outputs, enc_valid_len)
    # add the batch axis
    dec_X = torch.unsqueeze(torch.tensor(
        [tgt_vocab['<bos>']], dtype=torch.long, device=device), dim=0)
    output_seq, attention_weight_seq = [], []
    for _ in range(num_steps):
        Y, dec_state = net.decoder(dec_X, dec_state)
        # the token of the highest predicted probability is the decoder's next input
        dec_X = Y.argmax(dim=2)
        pred = dec_X.squeeze(dim=0).type(torch.int32).item()
        # keep the attention weights (chapter 10)
        if save_attention_weights:
            attention_weight_seq.append(net.decoder.attention_weights)
        # once the end-of-sequence token is predicted, the output sequence is complete
        if pred == tgt_vocab['<eos>']:
            break
        output_seq.append(pred)
    return ' '.join(tgt_vocab.to_tokens(output_seq)), attention_weight_seq


def bleu(pred_seq, label_seq, k):
    """BLEU."""
    pred_tokens, label_tokens = pred_seq.split(' '), label_seq.split(' ')
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    score = math.exp(min(0, 1 - len_label / len_pred))
    for n in range(1, k + 1):
        num_matches, label_subs = 0, collections.defaultdict(int)
        for i in range(len_label - n + 1):
            label_subs[' '.join(label_tokens[i: i + n])] += 1
        for i in range(len_pred - n + 1):
            if label_subs[' '.join(pred_tokens[i: i + n])] > 0:
                num_matches += 1
                label_subs[' '.join(pred_tokens[i: i + n])] -= 1
        score *= math.pow(num_matches / (len_pred - n + 1), math.pow(0.5, n))
    return score


print(f"{bleu('il est calme .', 'il est calme .', k=2):.3f} {bleu('je suis calme .', 'il est calme .', k=2):.3f}")

engs = ['go .', "i lost .", 'he\'s calm .', 'i\'m home .']
fras = ['va !', 'j\'ai perdu .', 'il est calme .', 'je suis chez moi .']
scores = []
for eng, fra in zip(engs, fras):
    translation, dec_attention_weight_seq = predict_seq2seq(
        net, eng, src_vocab, tgt_vocab, num_steps, device, True)
    # the book's bleu divides by zero for a one-token translation with k=2 (an undertrained seed)
    score = bleu(translation, fra, k=2) if len(translation.split(' ')) > 1 else 0.0
    scores.append(score)
    print(f'{eng} => {len(translation.split())} tokens, ', f'bleu {score:.3f}')

attention_weights = torch.cat([step[0][0][0] for step in dec_attention_weight_seq], 0).reshape((
    1, 1, -1, num_steps))
# the attention covers the source's valid tokens only ('i'm home .' and '<eos>')
print(attention_weights.shape, bool((attention_weights[..., len(engs[-1].split()) + 1:] == 0).all()))

print(f"FINAL mean_pool_error={mean_pool_error:.4f} nonparametric_error={nonparametric_error:.4f} "
      f"nw_loss={nw_loss:.4f} parametric_error={parametric_error:.4f} seq2seq_loss={seq2seq_loss:.4f} "
      f"bleu={sum(scores) / len(scores):.4f}")
