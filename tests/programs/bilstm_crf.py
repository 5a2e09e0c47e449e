"""The "Advanced: Making Dynamic Decisions and the Bi-LSTM CRF" tutorial (pytorch.org, Robert Guthrie):
a bidirectional ``nn.LSTM(embedding_dim, hidden_dim // 2, num_layers=1, bidirectional=True)`` gives
emission scores, a transitions ``nn.Parameter`` (``.data[...] = -10000`` rows and columns forbid
moving into START and out of STOP) the CRF's pairwise scores; the partition function by the forward
algorithm in log space (per-tag ``log_sum_exp`` with ``argmax`` helpers, ``torch.cat(alphas_t).view(1,
-1)``), the gold path by ``_score_sentence``, decoding by Viterbi with ``.item()`` backpointers; SGD
with ``weight_decay=1e-4``, ``model.zero_grad()`` per sentence, predictions printed before and after
training under ``torch.no_grad()``. The tutorial's two sentences; fewer epochs than its 300.
"""
# ruff: noqa: UP008, B007  (the tutorial's own spelling: super(BiLSTM_CRF, self), `for sentence, tags in ...`)

import os

import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# helpers that keep the model's code short
def argmax(vec):
    # the argmax as a python int
    _, idx = torch.max(vec, 1)
    return idx.item()


def prepare_sequence(seq, to_ix):
    idxs = [to_ix[w] for w in seq]
    return torch.tensor(idxs, dtype=torch.long)


# log-sum-exp, shifted by the maximum so that the forward algorithm cannot overflow
def log_sum_exp(vec):
    max_score = vec[0, argmax(vec)]
    max_score_broadcast = max_score.view(1, -1).expand(1, vec.size()[1])
    return max_score + \
        torch.log(torch.sum(torch.exp(vec - max_score_broadcast)))


class BiLSTM_CRF(nn.Module):

    def __init__(self, vocab_size, tag_to_ix, embedding_dim, hidden_dim):
        super(BiLSTM_CRF, self).__init__()
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.vocab_size = vocab_size
        self.tag_to_ix = tag_to_ix
        self.tagset_size = len(tag_to_ix)

        self.word_embeds = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2,
                            num_layers=1, bidirectional=True)

        # the LSTM's output in tag space
        self.hidden2tag = nn.Linear(hidden_dim, self.tagset_size)

        # transitions[i, j]: the score of moving *to* tag i *from* tag j
        self.transitions = nn.Parameter(
            torch.randn(self.tagset_size, self.tagset_size))

        # never move into the start tag, never move out of the stop tag
        self.transitions.data[tag_to_ix[START_TAG], :] = -10000
        self.transitions.data[:, tag_to_ix[STOP_TAG]] = -10000

        self.hidden = self.init_hidden()

    def init_hidden(self):
        return (torch.randn(2, 1, self.hidden_dim // 2),
                torch.randn(2, 1, self.hidden_dim // 2))

    def _forward_alg(self, feats):
        # the partition function by the forward algorithm
        init_alphas = torch.full((1, self.tagset_size), -10000.)
        # all the score starts in START_TAG
        init_alphas[0][self.tag_to_ix[START_TAG]] = 0.

        # a plain tensor: autograd tracks what is computed from it
        forward_var = init_alphas

        for feat in feats:
            alphas_t = []  # the forward variables at this step
            for next_tag in range(self.tagset_size):
                # the emission score does not depend on the previous tag: broadcast it
                emit_score = feat[next_tag].view(
                    1, -1).expand(1, self.tagset_size)
                # entry i: the score of moving to next_tag from i
                trans_score = self.transitions[next_tag].view(1, -1)
                # entry i: the edge (i -> next_tag) before the log-sum-exp
                next_tag_var = forward_var + trans_score + emit_score
                alphas_t.append(log_sum_exp(next_tag_var).view(1))
            forward_var = torch.cat(alphas_t).view(1, -1)
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        alpha = log_sum_exp(terminal_var)
        return alpha

    def _get_lstm_features(self, sentence):
        self.hidden = self.init_hidden()
        embeds = self.word_embeds(sentence).view(len(sentence), 1, -1)
        lstm_out, self.hidden = self.lstm(embeds, self.hidden)
        lstm_out = lstm_out.view(len(sentence), self.hidden_dim)
        lstm_feats = self.hidden2tag(lstm_out)
        return lstm_feats

    def _score_sentence(self, feats, tags):
        # the score of one given tag sequence
        score = torch.zeros(1)
        tags = torch.cat([torch.tensor([self.tag_to_ix[START_TAG]], dtype=torch.long), tags])
        for i, feat in enumerate(feats):
            score = score + \
                self.transitions[tags[i + 1], tags[i]] + feat[tags[i + 1]]
        score = score + self.transitions[self.tag_to_ix[STOP_TAG], tags[-1]]
        return score

    def _viterbi_decode(self, feats):
        backpointers = []

        # the viterbi variables, in log space
        init_vvars = torch.full((1, self.tagset_size), -10000.)
        init_vvars[0][self.tag_to_ix[START_TAG]] = 0

        # forward_var at step i holds the viterbi variables of step i - 1
        forward_var = init_vvars
        for feat in feats:
            bptrs_t = []  # this step's backpointers
            viterbivars_t = []  # this step's viterbi variables

            for next_tag in range(self.tagset_size):
                # entry i: the viterbi variable of tag i at the previous step plus the score of
                # moving from i to next_tag (the emission, the same for every i, is added below)
                next_tag_var = forward_var + self.transitions[next_tag]
                best_tag_id = argmax(next_tag_var)
                bptrs_t.append(best_tag_id)
                viterbivars_t.append(next_tag_var[0][best_tag_id].view(1))
            # add the emission scores: these are the viterbi variables of this step
            forward_var = (torch.cat(viterbivars_t) + feat).view(1, -1)
            backpointers.append(bptrs_t)

        # the move into STOP_TAG
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        best_tag_id = argmax(terminal_var)
        path_score = terminal_var[0][best_tag_id]

        # follow the backpointers to read off the best path
        best_path = [best_tag_id]
        for bptrs_t in reversed(backpointers):
            best_tag_id = bptrs_t[best_tag_id]
            best_path.append(best_tag_id)
        # the first entry is the start tag, which the caller does not want
        start = best_path.pop()
        assert start == self.tag_to_ix[START_TAG]  # sanity check
        best_path.reverse()
        return path_score, best_path

    def neg_log_likelihood(self, sentence, tags):
        feats = self._get_lstm_features(sentence)
        forward_score = self._forward_alg(feats)
        gold_score = self._score_sentence(feats, tags)
        return forward_score - gold_score

    def forward(self, sentence):  # not to be confused with _forward_alg
        # the emission scores from the BiLSTM
        lstm_feats = self._get_lstm_features(sentence)

        # the best path given those scores
        score, tag_seq = self._viterbi_decode(lstm_feats)
        return score, tag_seq


START_TAG = "<START>"
STOP_TAG = "<STOP>"
EMBEDDING_DIM = 5
HIDDEN_DIM = 4

# the tutorial's made-up training data
training_data = [(
    "the wall street journal reported today that apple corporation made money".split(),
    "B I I I O O O B I O O".split()
), (
    "georgia tech is a university in georgia".split(),
    "B I O O O O B".split()
)]

word_to_ix = {}
for sentence, tags in training_data:
    for word in sentence:
        if word not in word_to_ix:
            word_to_ix[word] = len(word_to_ix)

tag_to_ix = {"B": 0, "I": 1, "O": 2, START_TAG: 3, STOP_TAG: 4}

model = BiLSTM_CRF(len(word_to_ix), tag_to_ix, EMBEDDING_DIM, HIDDEN_DIM)
optimizer = optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)

# predictions before training
with torch.no_grad():
    precheck_sent = prepare_sequence(training_data[0][0], word_to_ix)
    precheck_tags = torch.tensor([tag_to_ix[t] for t in training_data[0][1]], dtype=torch.long)
    print(model(precheck_sent))
    start_nll = sum(model.neg_log_likelihood(prepare_sequence(s, word_to_ix),
                                             torch.tensor([tag_to_ix[t] for t in ts], dtype=torch.long)).item()
                    for s, ts in training_data)

for epoch in range(
        50):  # the tutorial runs 300 epochs on this toy data
    for sentence, tags in training_data:
        # gradients accumulate: clear them before each sentence
        model.zero_grad()

        # the inputs as tensors of word indices
        sentence_in = prepare_sequence(sentence, word_to_ix)
        targets = torch.tensor([tag_to_ix[t] for t in tags], dtype=torch.long)

        # the forward pass
        loss = model.neg_log_likelihood(sentence_in, targets)

        # gradients, and the update
        loss.backward()
        optimizer.step()
    if epoch % 10 == 9:
        print(epoch, loss.item())

# predictions after training
with torch.no_grad():
    precheck_sent = prepare_sequence(training_data[0][0], word_to_ix)
    print(model(precheck_sent))
    end_nll = sum(model.neg_log_likelihood(prepare_sequence(s, word_to_ix),
                                           torch.tensor([tag_to_ix[t] for t in ts], dtype=torch.long)).item()
                  for s, ts in training_data)
    correct = sum(int(p == tag_to_ix[t]) for s, ts in training_data
                  for p, t in zip(model(prepare_sequence(s, word_to_ix))[1], ts))
print(f"FINAL start_nll={start_nll:.4f} end_nll={end_nll:.4f} tag_acc={correct / 18:.4f}")
