"""AWD-LSTM (Merity et al., salesforce/awd-lstm-lm) and its ULMFiT edition (fastai's ``AWD_LSTM``)
as a word-level language model on a synthetic grammar.

The regularisers are written the repos' way: ``WeightDrop`` wraps each one-layer ``nn.LSTM``,
``delattr``s its ``weight_hh_l0`` and keeps the raw matrix as a ``weight_hh_l0_raw``
``nn.Parameter``, writing ``F.dropout(raw_w, p)`` (a plain tensor) into the LSTM by ``setattr``
before every forward (``raw_w.clone()`` in eval, fastai's fix), with ``flatten_parameters`` replaced
by a function that does nothing (``widget_demagnetizer_y2k_edition``); ``embedded_dropout`` drops
whole embedding rows through a ``weight.new_empty((V, 1)).bernoulli_(1 - p)`` mask and looks the
words up by ``F.embedding`` on the masked weight with awd's ``padding_idx=-1`` (which torch reads as
the last row); ``LockedDropout`` draws one ``x.new_empty(1, B, H).bernoulli_(1 - p) / (1 - p)`` mask
shared by every time step.  The training loop is awd's ``main.py``: ``np.random.normal`` BPTT lengths
with the learning rate scaled by ``seq_len / bptt`` through ``param_groups[0]['lr']``,
``repackage_hidden`` of a list of ``(h, c)`` tuples, AR (``alpha * dropped.pow(2).mean()``) and TAR
(``beta * (h[1:] - h[:-1]).pow(2).mean()``) on the last layer, ``clip_grad_norm_``, weight decay,
awd's ``--optimizer adam`` branch (``torch.optim.Adam(params, lr=args.lr, weight_decay=args.wdecay)``,
as ULMFiT trains with Adam), NT-ASGD's non-monotone trigger counted, then the switch to
``torch.optim.ASGD(t0=0, lambd=0.)`` whose averaged iterates ``optimizer.state[prm]['ax']`` are
swapped in by ``prm.data = ...`` for validation and back after.

Checked: with every dropout at 0 the AWD model equals a plain ``nn.LSTM(ninp, nhid, 3)`` language
model loaded with the same weights (outputs and the raw matrices' gradients); the locked mask is the
same at every time step; embedded dropout keeps or drops whole rows; the salesforce edition's
bare LSTM still runs on the deleted ``weight_hh_l0`` (torch's ``_flat_weights`` list keeps it) and its
``setattr`` of a ``Parameter`` in eval mode makes the next training forward raise ``TypeError``;
validation perplexity falls well below the unigram perplexity.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import Parameter

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)


# ----------------------------------------------------------------------------------- data
DETS = ["the", "a", "every"]
ADJS = ["small", "red", "old", "quiet"]
NOUNS_S = ["cat", "dog", "bird", "child"]
NOUNS_P = ["cats", "dogs", "birds", "children"]
VERBS_S = ["sees", "likes", "chases"]
VERBS_P = ["see", "like", "chase"]
PREPS = ["near", "under"]


def noun_phrase(rng, plural):
    words = [] if plural else [DETS[rng.randint(len(DETS))]]
    if rng.rand() < 0.4:
        words.append(ADJS[rng.randint(len(ADJS))])
    words.append((NOUNS_P if plural else NOUNS_S)[rng.randint(4)])
    if rng.rand() < 0.2:
        words += [PREPS[rng.randint(2)], "the", NOUNS_S[rng.randint(4)]]
    return words


def sentence(rng):
    # agreement: a plural subject takes a plural verb, even across a prepositional phrase
    plural = rng.rand() < 0.5
    words = noun_phrase(rng, plural)
    words.append((VERBS_P if plural else VERBS_S)[rng.randint(3)])
    words += noun_phrase(rng, rng.rand() < 0.5)
    return words


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
    def __init__(self, rng, n_train=420, n_valid=60):
        self.dictionary = Dictionary()
        self.train = self.tokenize([sentence(rng) for _ in range(n_train)])
        self.valid = self.tokenize([sentence(rng) for _ in range(n_valid)])

    def tokenize(self, sentences):
        ids = []
        for words in sentences:
            for word in words + ["<eos>"]:
                ids.append(self.dictionary.add_word(word))
        return torch.LongTensor(ids)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    data = data.view(bsz, -1).t().contiguous()
    return data


def get_batch(source, i, bptt, seq_len=None):
    seq_len = min(seq_len if seq_len else bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    else:
        return tuple(repackage_hidden(v) for v in h)


# ----------------------------------------------------------------------------------- regularisers
def embedded_dropout(embed, words, dropout=0.1, scale=None):
    if dropout:
        mask = embed.weight.new_empty((embed.weight.size(0), 1)).bernoulli_(1 - dropout).expand_as(embed.weight) / (1 - dropout)
        masked_embed_weight = mask * embed.weight
    else:
        masked_embed_weight = embed.weight
    if scale:
        masked_embed_weight = scale.expand_as(masked_embed_weight) * masked_embed_weight

    padding_idx = embed.padding_idx
    if padding_idx is None:
        padding_idx = -1

    X = F.embedding(words, masked_embed_weight, padding_idx, embed.max_norm, embed.norm_type,
                    embed.scale_grad_by_freq, embed.sparse)
    return X


class LockedDropout(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, dropout=0.5):
        if not self.training or not dropout:
            return x
        m = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - dropout)
        mask = m.requires_grad_(False) / (1 - dropout)
        mask = mask.expand_as(x)
        return mask * x


class WeightDrop(nn.Module):
    """awd-lstm-lm's WeightDrop with fastai's eval fix: the dropped matrix is a plain tensor."""

    def __init__(self, module, weights, dropout=0, variational=False):
        super().__init__()
        self.module = module
        self.weights = weights
        self.dropout = dropout
        self.variational = variational
        self._setup()

    def widget_demagnetizer_y2k_edition(*args, **kwargs):
        # We need to replace flatten_parameters with a nothing function
        return

    def _setup(self):
        if issubclass(type(self.module), nn.RNNBase):
            self.module.flatten_parameters = self.widget_demagnetizer_y2k_edition

        for name_w in self.weights:
            w = getattr(self.module, name_w)
            delattr(self.module, name_w)
            self.module.register_parameter(name_w + '_raw', Parameter(w.data))
            setattr(self.module, name_w, w.data.clone())

    def _setweights(self):
        for name_w in self.weights:
            raw_w = getattr(self.module, name_w + '_raw')
            if self.variational:
                mask = torch.ones(raw_w.size(0), 1, device=raw_w.device)
                mask = F.dropout(mask, p=self.dropout, training=self.training)
                w = mask.expand_as(raw_w) * raw_w
            elif self.training:
                w = F.dropout(raw_w, p=self.dropout, training=True)
            else:
                w = raw_w.clone()
            setattr(self.module, name_w, w)

    def forward(self, *args):
        self._setweights()
        return self.module.forward(*args)


class SalesforceWeightDrop(WeightDrop):
    """The original _setweights: in eval F.dropout returns the raw Parameter itself."""

    def _setup(self):
        self.module.flatten_parameters = self.widget_demagnetizer_y2k_edition
        for name_w in self.weights:
            w = getattr(self.module, name_w)
            del self.module._parameters[name_w]
            self.module.register_parameter(name_w + '_raw', Parameter(w.data))

    def _setweights(self):
        for name_w in self.weights:
            raw_w = getattr(self.module, name_w + '_raw')
            w = F.dropout(raw_w, p=self.dropout, training=self.training)
            setattr(self.module, name_w, w)


# ----------------------------------------------------------------------------------- model
class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.5, dropouth=0.5, dropouti=0.5,
                 dropoute=0.1, wdrop=0, tie_weights=False):
        super().__init__()
        self.lockdrop = LockedDropout()
        self.idrop = nn.Dropout(dropouti)
        self.hdrop = nn.Dropout(dropouth)
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnns = [nn.LSTM(ninp if l == 0 else nhid, nhid if l != nlayers - 1 else (ninp if tie_weights else nhid), 1, dropout=0)
                     for l in range(nlayers)]
        self.rnns = [WeightDrop(rnn, ['weight_hh_l0'], dropout=wdrop) for rnn in self.rnns]
        self.rnns = nn.ModuleList(self.rnns)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.ninp = ninp
        self.nhid = nhid
        self.nlayers = nlayers
        self.dropout = dropout
        self.dropouti = dropouti
        self.dropouth = dropouth
        self.dropoute = dropoute
        self.tie_weights = tie_weights

    def init_weights(self):
        initrange = 0.1
        self.encoder.weight.data.uniform_(-initrange, initrange)
        self.decoder.bias.data.fill_(0)
        self.decoder.weight.data.uniform_(-initrange, initrange)

    def forward(self, input, hidden, return_h=False):
        emb = embedded_dropout(self.encoder, input, dropout=self.dropoute if self.training else 0)
        emb = self.lockdrop(emb, self.dropouti)

        raw_output = emb
        new_hidden = []
        raw_outputs = []
        outputs = []
        for l, rnn in enumerate(self.rnns):
            raw_output, new_h = rnn(raw_output, hidden[l])
            new_hidden.append(new_h)
            raw_outputs.append(raw_output)
            if l != self.nlayers - 1:
                raw_output = self.lockdrop(raw_output, self.dropouth)
                outputs.append(raw_output)
        hidden = new_hidden

        output = self.lockdrop(raw_output, self.dropout)
        outputs.append(output)

        result = output.view(output.size(0) * output.size(1), output.size(2))
        if return_h:
            return result, hidden, raw_outputs, outputs
        return result, hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters()).data
        return [(weight.new(1, bsz, self.nhid if l != self.nlayers - 1 else (self.ninp if self.tie_weights else self.nhid)).zero_(),
                 weight.new(1, bsz, self.nhid if l != self.nlayers - 1 else (self.ninp if self.tie_weights else self.nhid)).zero_())
                for l in range(self.nlayers)]


class PlainLSTMLM(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers)
        self.decoder = nn.Linear(nhid, ntoken)

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.encoder(input), hidden)
        return self.decoder(output.view(-1, output.size(2))), hidden


# ----------------------------------------------------------------------------------- checks
def check_zero_dropout(ntokens):
    model = RNNModel(ntokens, 16, 16, 3, dropout=0, dropouth=0, dropouti=0, dropoute=0, wdrop=0, tie_weights=True)
    plain = PlainLSTMLM(ntokens, 16, 16, 3)
    with torch.no_grad():
        plain.encoder.weight.copy_(model.encoder.weight)
        plain.decoder.weight.copy_(model.decoder.weight)
        plain.decoder.bias.copy_(model.decoder.bias)
        for l, rnn in enumerate(model.rnns):
            lstm = rnn.module
            getattr(plain.rnn, f'weight_ih_l{l}').copy_(lstm.weight_ih_l0)
            getattr(plain.rnn, f'weight_hh_l{l}').copy_(lstm.weight_hh_l0_raw)
            getattr(plain.rnn, f'bias_ih_l{l}').copy_(lstm.bias_ih_l0)
            getattr(plain.rnn, f'bias_hh_l{l}').copy_(lstm.bias_hh_l0)
    model.train()
    words = torch.randint(0, ntokens, (7, 3))
    words[0, 0] = ntokens - 1
    targets = torch.randint(0, ntokens, (7 * 3,))
    out, hidden = model(words, model.init_hidden(3))
    logits = model.decoder(out)
    h0 = torch.zeros(3, 3, 16)
    ref, (h_ref, c_ref) = plain(words, (h0, h0.clone()))
    same_out = torch.allclose(logits, ref, atol=1e-6)
    same_h = torch.allclose(torch.cat([h for h, _ in hidden]), h_ref, atol=1e-6)
    same_c = torch.allclose(torch.cat([c for _, c in hidden]), c_ref, atol=1e-6)
    F.cross_entropy(logits, targets).backward()
    F.cross_entropy(ref, targets).backward()
    grad_err = max((rnn.module.weight_hh_l0_raw.grad - getattr(plain.rnn, f'weight_hh_l{l}').grad).abs().max().item()
                   for l, rnn in enumerate(model.rnns))
    # the tied encoder/decoder matrix gathers both routes' gradients in one place
    tied_err = model.encoder.weight.grad - plain.encoder.weight.grad - plain.decoder.weight.grad
    grad_err = max(grad_err, tied_err[:-1].abs().max().item())
    # padding_idx=-1 means the last row to F.embedding: its lookups pass no gradient back
    pad_row_idle = bool((model.encoder.weight.grad[-1] == plain.decoder.weight.grad[-1]).all())
    print('zero-dropout AWD vs nn.LSTM: outputs', same_out, 'h', same_h, 'c', same_c,
          f'grad err {grad_err:.2e}', 'padding row idle', pad_row_idle)
    return int(same_out and same_h and same_c and grad_err < 1e-5), int(pad_row_idle)


def check_masks(ntokens):
    lockdrop = LockedDropout()
    x = torch.ones(12, 5, 40)
    y = lockdrop(x, 0.4)
    same_over_time = bool((y == y[:1]).all())
    values_ok = bool(((y == 0) | ((y - 1 / 0.6).abs() < 1e-6)).all())
    keep_frac = (y[0] != 0).float().mean().item()
    embed = nn.Embedding(ntokens, 8)
    words = torch.arange(ntokens).repeat(4).view(-1, 2)
    e = embedded_dropout(embed, words, dropout=0.5)
    rows = embed.weight.detach()[words]
    dropped = (e == 0).all(-1)
    kept = ((e - rows / 0.5).abs() < 1e-6).all(-1)
    whole_rows = bool((dropped | kept).all())
    # a word is dropped everywhere it occurs in the batch: one mask row per vocabulary entry
    per_word = dropped.view(-1)[torch.argsort(words.view(-1), stable=True)].view(ntokens, 4)
    consistent = bool((per_word == per_word[:, :1]).all())
    print('locked mask same at every step', same_over_time, 'values in {0, 1/(1-p)}', values_ok,
          f'kept {keep_frac:.3f}', '| embedded dropout whole rows', whole_rows, 'per word', consistent)
    return int(same_over_time and values_ok), keep_frac, int(whole_rows and consistent)


def check_salesforce_weightdrop():
    lstm = nn.LSTM(4, 4)
    x = torch.randn(3, 2, 4)
    before, _ = lstm(x)
    wd = SalesforceWeightDrop(lstm, ['weight_hh_l0'], dropout=0.2)
    # the LSTM's own list of flat weights still holds the deleted matrix until one is written in
    stale, _ = wd.module(x)
    runs_on_deleted = torch.equal(stale, before)
    wd.train()
    wd(x)
    wd.eval()
    wd(x)
    registered = isinstance(wd.module._parameters.get('weight_hh_l0'), Parameter)
    wd.train()
    try:
        wd(x)
        raised = False
    except TypeError as e:
        raised = 'weight_hh_l0' in str(e)
    print('salesforce WeightDrop: bare LSTM runs on the deleted weight', runs_on_deleted,
          '| Parameter registered in eval', registered, '| train again raises TypeError', raised)
    return int(runs_on_deleted and registered and raised)


# ----------------------------------------------------------------------------------- training
class Args:
    emsize = 24
    nhid = 24
    nlayers = 3
    optimizer = 'adam'
    lr = 3e-3
    asgd_lr = 2.0
    clip = 0.25
    epochs = 7
    asgd_epoch = 5
    batch_size = 4
    bptt = 12
    dropout = 0.2
    dropouth = 0.15
    dropouti = 0.2
    dropoute = 0.05
    wdrop = 0.2
    alpha = 2
    beta = 1
    wdecay = 1.2e-6
    nonmono = 2


def evaluate(model, criterion, data_source, ntokens, batch_size, bptt):
    model.eval()
    total_loss = 0
    hidden = model.init_hidden(batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            output, hidden = model(data, hidden)
            total_loss += len(data) * criterion(model.decoder(output), targets).item()
            hidden = repackage_hidden(hidden)
    return total_loss / len(data_source)


def train_epoch(model, criterion, optimizer, params, train_data, args):
    model.train()
    total_loss = 0
    hidden = model.init_hidden(args.batch_size)
    batch, i = 0, 0
    while i < train_data.size(0) - 1 - 1:
        bptt = args.bptt if np.random.random() < 0.95 else args.bptt / 2.
        # Prevent excessively small or negative sequence lengths
        seq_len = max(5, int(np.random.normal(bptt, 5)))
        lr2 = optimizer.param_groups[0]['lr']
        optimizer.param_groups[0]['lr'] = lr2 * seq_len / args.bptt
        data, targets = get_batch(train_data, i, args.bptt, seq_len=seq_len)

        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()

        output, hidden, rnn_hs, dropped_rnn_hs = model(data, hidden, return_h=True)
        raw_loss = criterion(model.decoder(output), targets)

        loss = raw_loss
        # Activiation Regularization
        if args.alpha:
            loss = loss + sum(args.alpha * dropped_rnn_h.pow(2).mean() for dropped_rnn_h in dropped_rnn_hs[-1:])
        # Temporal Activation Regularization (slowness)
        if args.beta:
            loss = loss + sum(args.beta * (rnn_h[1:] - rnn_h[:-1]).pow(2).mean() for rnn_h in rnn_hs[-1:])
        loss.backward()

        if args.clip:
            torch.nn.utils.clip_grad_norm_(params, args.clip)
        optimizer.step()

        total_loss += raw_loss.data
        optimizer.param_groups[0]['lr'] = lr2
        batch += 1
        i += seq_len
    return total_loss.item() / batch, batch


def main():
    args = Args()
    corpus = Corpus(np.random.RandomState(0))
    ntokens = len(corpus.dictionary)
    train_data = batchify(corpus.train, args.batch_size)
    val_data = batchify(corpus.valid, 5)
    counts = torch.bincount(corpus.train, minlength=ntokens).float()
    probs = counts / counts.sum()
    unigram_ppl = math.exp(-(torch.bincount(corpus.valid, minlength=ntokens).float()
                             * torch.log(probs.clamp_min(1e-6))).sum().item() / len(corpus.valid))
    print('vocabulary', ntokens, 'train tokens', len(corpus.train), 'valid tokens', len(corpus.valid),
          f'unigram valid ppl {unigram_ppl:.2f}')

    zero_match, pad_idle = check_zero_dropout(ntokens)
    locked_ok, keep_frac, rows_ok = check_masks(ntokens)
    salesforce_raises = check_salesforce_weightdrop()

    model = RNNModel(ntokens, args.emsize, args.nhid, args.nlayers, args.dropout, args.dropouth,
                     args.dropouti, args.dropoute, args.wdrop, tie_weights=True)
    for rnn in model.rnns:
        rnn.module.flatten_parameters()  # harmless: the widget does nothing
    params = list(model.parameters())
    total_params = sum(x.size()[0] * x.size()[1] if len(x.size()) > 1 else x.size()[0] for x in params if x.size())
    print('Model total parameters:', total_params, '| raw hh parameters:',
          [n for n, _ in model.named_parameters() if n.endswith('_raw')])
    criterion = nn.CrossEntropyLoss()

    if args.optimizer == 'sgd':
        optimizer = torch.optim.SGD(params, lr=args.lr, weight_decay=args.wdecay)
    if args.optimizer == 'adam':
        optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=args.wdecay)
    best_val_loss = []
    stored_loss = 100000000
    val_ppls = []
    nonmono_fired = 0
    for epoch in range(1, args.epochs + 1):
        train_loss, n_batches = train_epoch(model, criterion, optimizer, params, train_data, args)
        if 't0' in optimizer.param_groups[0]:
            tmp = {}
            for prm in model.parameters():
                tmp[prm] = prm.data.clone()
                prm.data = optimizer.state[prm]['ax'].clone()

            val_loss2 = evaluate(model, criterion, val_data, ntokens, 5, args.bptt)
            print(f'| end of epoch {epoch:3d} | ASGD averaged | train loss {train_loss:5.2f} | '
                  f'valid loss {val_loss2:5.2f} | valid ppl {math.exp(val_loss2):8.2f}')
            val_ppls.append(math.exp(val_loss2))
            if val_loss2 < stored_loss:
                stored_loss = val_loss2

            for prm in model.parameters():
                prm.data = tmp[prm].clone()
        else:
            val_loss = evaluate(model, criterion, val_data, ntokens, 5, args.bptt)
            print(f'| end of epoch {epoch:3d} | Adam          | train loss {train_loss:5.2f} | '
                  f'valid loss {val_loss:5.2f} | valid ppl {math.exp(val_loss):8.2f}')
            val_ppls.append(math.exp(val_loss))
            if val_loss < stored_loss:
                stored_loss = val_loss
            if len(best_val_loss) > args.nonmono and val_loss > min(best_val_loss[:-args.nonmono]):
                nonmono_fired += 1
            # NT-ASGD's trigger is counted; the switch comes at a fixed epoch so every run prints alike
            if epoch == args.asgd_epoch - 1:
                optimizer = torch.optim.ASGD(model.parameters(), lr=args.asgd_lr, t0=0, lambd=0., weight_decay=args.wdecay)
            best_val_loss.append(val_loss)
    print('batches in the last epoch', n_batches, '| switched to', type(optimizer).__name__,
          '| non-monotone triggers', nonmono_fired)
    ax_differs = max((optimizer.state[p]['ax'] - p.data).abs().max().item() for p in model.parameters())
    print(f'ASGD average vs last iterate: max diff {ax_differs:.4f}')
    print(f"FINAL zero_dropout_match={zero_match} padding_row_idle={pad_idle} locked_mask_ok={locked_ok} "
          f"locked_keep={keep_frac:.4f} emb_rows_ok={rows_ok} salesforce_typeerror={salesforce_raises} "
          f"val_ppl_first={val_ppls[0]:.4f} val_ppl_best={math.exp(stored_loss):.4f} "
          f"ppl_over_unigram={math.exp(stored_loss) / unigram_ppl:.4f}")


if __name__ == "__main__":
    main()
