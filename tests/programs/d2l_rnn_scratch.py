"""Dive into Deep Learning (d2l.ai, PyTorch edition), chapters 8 and 9 as a student types them
without the ``d2l`` package: text preprocessing (``re.sub`` lines, ``tokenize``, ``Vocab`` over
``collections.Counter`` with ``token_freqs``), random and sequential partitioning
(``seq_data_iter_random`` with ``random.shuffle``, ``seq_data_iter_sequential`` with
``torch.tensor(corpus[offset: offset + num_tokens])`` and ``Xs.reshape(batch_size, -1)``,
``SeqDataLoader``), the RNN from scratch (``get_params`` with ``requires_grad_(True)``,
``init_rnn_state``, ``rnn`` by ``torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)`` and
``torch.cat(outputs, dim=0)``, ``RNNModelScratch`` calling ``F.one_hot(X.T, vocab_size)``),
``predict_ch8``, ``grad_clipping`` by ``torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))``
and ``param.grad[:] *= theta / norm``, ``train_epoch_ch8`` (``state.detach_()``, ``Y.T.reshape(-1)``,
``loss(y_hat, y.long()).mean()``, perplexity ``math.exp(metric[0] / metric[1])``), GRU and LSTM from
scratch, then ``nn.RNN``/``nn.GRU``/``nn.LSTM`` in the book's ``RNNModel`` (``self.rnn.hidden_size``,
``self.rnn.bidirectional``, ``isinstance(self.rnn, nn.LSTM)`` state tuples). Sizes are small (a
short fixed passage of The Time Machine, few hidden units and epochs); the generated text is
printed as its length and prefix, since its letters change with the seed.
"""
# ruff: noqa: E741, E731, UP008, UP034  (the book's own code: `l = loss(...)`, `get_input = lambda: ...`,
# `super(RNNModel, self).__init__(**kwargs)`, `torch.sum((p.grad ** 2))`)

import collections
import math
import os
import random
import re
import time

import torch
from torch import nn
from torch.nn import functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)

# the opening of H. G. Wells' The Time Machine (public domain) stands in for the downloaded book
TIME_MACHINE = """The Time Machine, by H. G. Wells

I

The Time Traveller (for so it will be convenient to speak of him)
was expounding a recondite matter to us. His grey eyes shone and
twinkled, and his usually pale face was flushed and animated. The
fire burned brightly, and the soft radiance of the incandescent
lights in the lilies of silver caught the bubbles that flashed and
passed in our glasses. Our chairs, being his patents, embraced and
caressed us rather than submitted to be sat upon, and there was that
luxurious after-dinner atmosphere when thought roams gracefully
free of the trammels of precision. And he put it to us in this
way--marking the points with a lean forefinger--as we sat and lazily
admired his earnestness over this new paradox (as we thought it)
and his fecundity.

'You must follow me carefully. I shall have to controvert one or two
ideas that are almost universally accepted. The geometry, for
instance, they taught you at school is founded on a misconception.'

'Is not that rather a large thing to expect us to begin upon?' said
Filby, an argumentative person with red hair.

'I do not mean to ask you to accept anything without reasonable
ground for it. You will soon admit as much as I need from you. You
know of course that a mathematical line, a line of thickness nil,
has no real existence. They taught you that? Neither has a
mathematical plane. These things are mere abstractions.'

'That is all right,' said the Psychologist.

'Nor, having only length, breadth, and thickness, can a cube have a
real existence.'

'There I object,' said Filby. 'Of course a solid body may exist. All
real things--'
"""

# ---------------------------------------------------------------- 8.2 text preprocessing


def read_time_machine():
    """Load the time machine data set into a list of text lines."""
    lines = TIME_MACHINE.splitlines(keepends=True)
    return [re.sub('[^A-Za-z]+', ' ', line).strip().lower() for line in lines]


lines = read_time_machine()
print(f'# text lines: {len(lines)}')
print(lines[0])
print(lines[4])


def tokenize(lines, token='word'):
    """Split text lines into word or character tokens."""
    if token == 'word':
        return [line.split() for line in lines]
    elif token == 'char':
        return [list(line) for line in lines]
    else:
        print('ERROR: unknown token type: ' + token)


tokens = tokenize(lines)
for i in range(4):
    print(tokens[i])


class Vocab:
    """Vocabulary for text."""

    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        if tokens is None:
            tokens = []
        if reserved_tokens is None:
            reserved_tokens = []
        # sort by frequency
        counter = count_corpus(tokens)
        self._token_freqs = sorted(counter.items(), key=lambda x: x[1],
                                   reverse=True)
        # the unknown token has index 0
        self.idx_to_token = ['<unk>'] + reserved_tokens
        self.token_to_idx = {token: idx
                             for idx, token in enumerate(self.idx_to_token)}
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
    def unk(self):  # the unknown token's index is 0
        return 0

    @property
    def token_freqs(self):
        return self._token_freqs


def count_corpus(tokens):
    """Count token frequencies."""
    # tokens is a 1-d list or a 2-d list
    if len(tokens) == 0 or isinstance(tokens[0], list):
        # flatten a list of token lists into one list
        tokens = [token for line in tokens for token in line]
    return collections.Counter(tokens)


vocab = Vocab(tokens)
print(list(vocab.token_to_idx.items())[:10])
for i in [0, 4]:
    print('text:', tokens[i])
    print('indices:', vocab[tokens[i]])


def load_corpus_time_machine(max_tokens=-1):
    """Token indices and the vocabulary of the time machine data set."""
    lines = read_time_machine()
    tokens = tokenize(lines, 'char')
    vocab = Vocab(tokens)
    # every text line is not necessarily a sentence or a paragraph: flatten all lines into one list
    corpus = [vocab[token] for line in tokens for token in line]
    if max_tokens > 0:
        corpus = corpus[:max_tokens]
    return corpus, vocab


corpus, vocab = load_corpus_time_machine()
print(len(corpus), len(vocab))
print(vocab.token_freqs[:5])

# ---------------------------------------------------------------- 8.3 reading long sequences


def seq_data_iter_random(corpus, batch_size, num_steps):
    """A minibatch of subsequences by random sampling."""
    # start at a random offset (including num_steps-1) to partition the sequence
    corpus = corpus[random.randint(0, num_steps - 1):]
    # minus 1: the labels are shifted by one
    num_subseqs = (len(corpus) - 1) // num_steps
    # start indices of the subsequences of length num_steps
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    # in random sampling, neighbouring minibatches need not be neighbours in the sequence
    random.shuffle(initial_indices)

    def data(pos):
        # the subsequence of length num_steps starting at pos
        return corpus[pos: pos + num_steps]

    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        # initial_indices holds the random start indices of the subsequences
        initial_indices_per_batch = initial_indices[i: i + batch_size]
        X = [data(j) for j in initial_indices_per_batch]
        Y = [data(j + 1) for j in initial_indices_per_batch]
        yield torch.tensor(X), torch.tensor(Y)


my_seq = list(range(35))
for X, Y in seq_data_iter_random(my_seq, batch_size=2, num_steps=5):
    print('X: ', X.shape, '\nY:', bool((Y - X == 1).all()))


def seq_data_iter_sequential(corpus, batch_size, num_steps):
    """A minibatch of subsequences by sequential partitioning."""
    # start partitioning the sequence at a random offset
    offset = random.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset: offset + num_tokens])
    Ys = torch.tensor(corpus[offset + 1: offset + 1 + num_tokens])
    Xs, Ys = Xs.reshape(batch_size, -1), Ys.reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        X = Xs[:, i: i + num_steps]
        Y = Ys[:, i: i + num_steps]
        yield X, Y


for X, Y in seq_data_iter_sequential(my_seq, batch_size=2, num_steps=5):
    print('X: ', X.shape, X.is_contiguous(), '\nY:', bool((Y - X == 1).all()))
    break  # the count of minibatches depends on the random offset


class SeqDataLoader:
    """An iterator to load sequence data."""

    def __init__(self, batch_size, num_steps, use_random_iter, max_tokens):
        if use_random_iter:
            self.data_iter_fn = seq_data_iter_random
        else:
            self.data_iter_fn = seq_data_iter_sequential
        self.corpus, self.vocab = load_corpus_time_machine(max_tokens)
        self.batch_size, self.num_steps = batch_size, num_steps

    def __iter__(self):
        return self.data_iter_fn(self.corpus, self.batch_size, self.num_steps)


def load_data_time_machine(batch_size, num_steps,
                           use_random_iter=False, max_tokens=10000):
    """The iterator and the vocabulary of the time machine data set."""
    data_iter = SeqDataLoader(
        batch_size, num_steps, use_random_iter, max_tokens)
    return data_iter, data_iter.vocab


# ---------------------------------------------------------------- 8.5 RNN from scratch
batch_size, num_steps = 16, 16
train_iter, vocab = load_data_time_machine(batch_size, num_steps)

print(F.one_hot(torch.tensor([0, 2]), len(vocab)))
X = torch.arange(10).reshape((2, 5))
print(F.one_hot(X.T, 28).shape)


def get_params(vocab_size, num_hiddens, device):
    num_inputs = num_outputs = vocab_size

    def normal(shape):
        return torch.randn(size=shape, device=device) * 0.01

    # hidden layer parameters
    W_xh = normal((num_inputs, num_hiddens))
    W_hh = normal((num_hiddens, num_hiddens))
    b_h = torch.zeros(num_hiddens, device=device)
    # output layer parameters
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs, device=device)
    # attach gradients
    params = [W_xh, W_hh, b_h, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_rnn_state(batch_size, num_hiddens, device):
    return (torch.zeros((batch_size, num_hiddens), device=device), )


def rnn(inputs, state, params):
    # inputs has shape (time steps, batch size, vocabulary size)
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    # X has shape (batch size, vocabulary size)
    for X in inputs:
        H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
        Y = torch.mm(H, W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


class RNNModelScratch:
    """An RNN model from scratch."""

    def __init__(self, vocab_size, num_hiddens, device,
                 get_params, init_state, forward_fn):
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.params = get_params(vocab_size, num_hiddens, device)
        self.init_state, self.forward_fn = init_state, forward_fn

    def __call__(self, X, state):
        X = F.one_hot(X.T, self.vocab_size).type(torch.float32)
        return self.forward_fn(X, state, self.params)

    def begin_state(self, batch_size, device):
        return self.init_state(batch_size, self.num_hiddens, device)


def try_gpu(i=0):
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f'cuda:{i}')
    return torch.device('cpu')


num_hiddens = 64
net = RNNModelScratch(len(vocab), num_hiddens, try_gpu(), get_params,
                      init_rnn_state, rnn)
state = net.begin_state(X.shape[0], try_gpu())
Y, new_state = net(X.to(try_gpu()), state)
print(Y.shape, len(new_state), new_state[0].shape)


def predict_ch8(prefix, num_preds, net, vocab, device):
    """Generate new characters after prefix."""
    state = net.begin_state(batch_size=1, device=device)
    outputs = [vocab[prefix[0]]]
    get_input = lambda: torch.tensor([outputs[-1]], device=device).reshape((1, 1))
    for y in prefix[1:]:  # warm-up
        _, state = net(get_input(), state)
        outputs.append(vocab[y])
    for _ in range(num_preds):  # predict num_preds steps
        y, state = net(get_input(), state)
        outputs.append(int(y.argmax(dim=1).reshape(1)))
    return ''.join([vocab.idx_to_token[i] for i in outputs])


text = predict_ch8('time traveller ', 10, net, vocab, try_gpu())
print(len(text), text.startswith('time traveller '))


def grad_clipping(net, theta):
    """Clip the gradient."""
    if isinstance(net, nn.Module):
        params = [p for p in net.parameters() if p.requires_grad]
    else:
        params = net.params
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
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


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def train_epoch_ch8(net, train_iter, loss, updater, device, use_random_iter):
    """Train a network for one epoch (chapter 8)."""
    state, timer = None, Timer()
    metric = Accumulator(2)  # sum of training losses, number of tokens
    for X, Y in train_iter:
        if state is None or use_random_iter:
            # initialise state on the first iteration or with random sampling
            state = net.begin_state(batch_size=X.shape[0], device=device)
        else:
            if isinstance(net, nn.Module) and not isinstance(state, tuple):
                # state is a tensor for nn.GRU
                state.detach_()
            else:
                # state is a tuple of tensors for nn.LSTM and the models from scratch
                for s in state:
                    s.detach_()
        y = Y.T.reshape(-1)
        X, y = X.to(device), y.to(device)
        y_hat, state = net(X, state)
        l = loss(y_hat, y.long()).mean()
        if isinstance(updater, torch.optim.Optimizer):
            updater.zero_grad()
            l.backward()
            grad_clipping(net, 1)
            updater.step()
        else:
            l.backward()
            grad_clipping(net, 1)
            # the mean was taken already
            updater(batch_size=1)
        metric.add(l * y.numel(), y.numel())
    return math.exp(metric[0] / metric[1]), metric[1] / timer.stop()


def train_ch8(net, train_iter, vocab, lr, num_epochs, device,
              use_random_iter=False):
    """Train a model (chapter 8); printed lines instead of the book's Animator."""
    loss = nn.CrossEntropyLoss()
    # initialise
    if isinstance(net, nn.Module):
        updater = torch.optim.SGD(net.parameters(), lr)
    else:
        updater = lambda batch_size: sgd(net.params, lr, batch_size)
    predict = lambda prefix: predict_ch8(prefix, 50, net, vocab, device)
    # train and predict
    for epoch in range(num_epochs):
        ppl, speed = train_epoch_ch8(
            net, train_iter, loss, updater, device, use_random_iter)
        if (epoch + 1) % 10 == 0:
            print(f'epoch {epoch + 1}, perplexity {ppl:.1f}')
    print(f'perplexity {ppl:.1f}, {speed:.1f} tokens/sec {str(device)}')
    text = predict('time traveller')
    print('predicted', len(text), 'characters after', repr(text[:14]))
    text = predict('traveller')
    print('predicted', len(text), 'characters after', repr(text[:9]))
    return ppl


num_epochs, lr = 20, 1
rnn_ppl = train_ch8(net, train_iter, vocab, lr, num_epochs, try_gpu())

net = RNNModelScratch(len(vocab), num_hiddens, try_gpu(), get_params,
                      init_rnn_state, rnn)
rnn_random_ppl = train_ch8(net, train_iter, vocab, lr, 10, try_gpu(),
                           use_random_iter=True)

# ---------------------------------------------------------------- 9.1 GRU from scratch


def get_params(vocab_size, num_hiddens, device):
    num_inputs = num_outputs = vocab_size

    def normal(shape):
        return torch.randn(size=shape, device=device) * 0.01

    def three():
        return (normal((num_inputs, num_hiddens)),
                normal((num_hiddens, num_hiddens)),
                torch.zeros(num_hiddens, device=device))

    W_xz, W_hz, b_z = three()  # update gate
    W_xr, W_hr, b_r = three()  # reset gate
    W_xh, W_hh, b_h = three()  # candidate hidden state
    # output layer
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs, device=device)
    params = [W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_gru_state(batch_size, num_hiddens, device):
    return (torch.zeros((batch_size, num_hiddens), device=device), )


def gru(inputs, state, params):
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        Z = torch.sigmoid((X @ W_xz) + (H @ W_hz) + b_z)
        R = torch.sigmoid((X @ W_xr) + (H @ W_hr) + b_r)
        H_tilda = torch.tanh((X @ W_xh) + ((R * H) @ W_hh) + b_h)
        H = Z * H + (1 - Z) * H_tilda
        Y = H @ W_hq + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


vocab_size, device = len(vocab), try_gpu()
num_epochs, lr = 10, 1
model = RNNModelScratch(len(vocab), num_hiddens, device, get_params,
                        init_gru_state, gru)
gru_ppl = train_ch8(model, train_iter, vocab, lr, num_epochs, device)

# ---------------------------------------------------------------- 9.2 LSTM from scratch


def get_lstm_params(vocab_size, num_hiddens, device):
    num_inputs = num_outputs = vocab_size

    def normal(shape):
        return torch.randn(size=shape, device=device) * 0.01

    def three():
        return (normal((num_inputs, num_hiddens)),
                normal((num_hiddens, num_hiddens)),
                torch.zeros(num_hiddens, device=device))

    W_xi, W_hi, b_i = three()  # input gate
    W_xf, W_hf, b_f = three()  # forget gate
    W_xo, W_ho, b_o = three()  # output gate
    W_xc, W_hc, b_c = three()  # candidate memory cell
    # output layer
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs, device=device)
    params = [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc,
              b_c, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_lstm_state(batch_size, num_hiddens, device):
    return (torch.zeros((batch_size, num_hiddens), device=device),
            torch.zeros((batch_size, num_hiddens), device=device))


def lstm(inputs, state, params):
    [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c,
     W_hq, b_q] = params
    (H, C) = state
    outputs = []
    for X in inputs:
        I = torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i)
        F = torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f)
        O = torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)
        C_tilda = torch.tanh((X @ W_xc) + (H @ W_hc) + b_c)
        C = F * C + I * C_tilda
        H = O * torch.tanh(C)
        Y = (H @ W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H, C)


model = RNNModelScratch(len(vocab), num_hiddens, device, get_lstm_params,
                        init_lstm_state, lstm)
lstm_ppl = train_ch8(model, train_iter, vocab, lr, num_epochs, device)

# ---------------------------------------------------------------- 8.6 concise RNN, 9.1 GRU, 9.2 LSTM
rnn_layer = nn.RNN(len(vocab), num_hiddens)
state = torch.zeros((1, batch_size, num_hiddens))
print(state.shape)
X = torch.rand(size=(num_steps, batch_size, len(vocab)))
Y, state_new = rnn_layer(X, state)
print(Y.shape, state_new.shape)


class RNNModel(nn.Module):
    """The recurrent neural network model."""

    def __init__(self, rnn_layer, vocab_size, **kwargs):
        super(RNNModel, self).__init__(**kwargs)
        self.rnn = rnn_layer
        self.vocab_size = vocab_size
        self.num_hiddens = self.rnn.hidden_size
        # a bidirectional RNN (chapter 9) has num_directions 2, otherwise 1
        if not self.rnn.bidirectional:
            self.num_directions = 1
            self.linear = nn.Linear(self.num_hiddens, self.vocab_size)
        else:
            self.num_directions = 2
            self.linear = nn.Linear(self.num_hiddens * 2, self.vocab_size)

    def forward(self, inputs, state):
        X = F.one_hot(inputs.T.long(), self.vocab_size)
        X = X.to(torch.float32)
        Y, state = self.rnn(X, state)
        # the fully connected layer first reshapes Y to (time steps * batch size, hidden units);
        # its output has shape (time steps * batch size, vocabulary size)
        output = self.linear(Y.reshape((-1, Y.shape[-1])))
        return output, state

    def begin_state(self, device, batch_size=1):
        if not isinstance(self.rnn, nn.LSTM):
            # nn.GRU takes a tensor as its hidden state
            return torch.zeros((self.num_directions * self.rnn.num_layers,
                                batch_size, self.num_hiddens),
                               device=device)
        else:
            # nn.LSTM takes a tuple as its hidden state
            return (torch.zeros((
                self.num_directions * self.rnn.num_layers,
                batch_size, self.num_hiddens), device=device),
                torch.zeros((
                    self.num_directions * self.rnn.num_layers,
                    batch_size, self.num_hiddens), device=device))


device = try_gpu()
net = RNNModel(rnn_layer, vocab_size=len(vocab))
net = net.to(device)
text = predict_ch8('time traveller', 10, net, vocab, device)
print(len(text), text.startswith('time traveller'))

num_epochs, lr = 20, 1
concise_rnn_ppl = train_ch8(net, train_iter, vocab, lr, num_epochs, device)

num_epochs = 10
gru_layer = nn.GRU(len(vocab), num_hiddens)
model = RNNModel(gru_layer, len(vocab))
model = model.to(device)
concise_gru_ppl = train_ch8(model, train_iter, vocab, lr, num_epochs, device)

lstm_layer = nn.LSTM(len(vocab), num_hiddens)
model = RNNModel(lstm_layer, len(vocab))
model = model.to(device)
concise_lstm_ppl = train_ch8(model, train_iter, vocab, lr, num_epochs, device)

print(f"FINAL rnn_ppl={rnn_ppl:.3f} rnn_random_ppl={rnn_random_ppl:.3f} gru_ppl={gru_ppl:.3f} "
      f"lstm_ppl={lstm_ppl:.3f} concise_rnn_ppl={concise_rnn_ppl:.3f} concise_gru_ppl={concise_gru_ppl:.3f} "
      f"concise_lstm_ppl={concise_lstm_ppl:.3f}")
