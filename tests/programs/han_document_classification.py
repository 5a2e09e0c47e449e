"""Hierarchical Attention Network (Yang et al., NAACL 2016) in the widely copied
sgrvinod/a-PyTorch-Tutorial-to-Text-Classification layout, on synthetic documents.

A document is a few sentences of token ids; its class is set by key words that sit in one or two of its
sentences (the key sentences), the rest being filler words shared by every class. ``HANDataset`` hands
out padded ``(sentences, words)`` LongTensors with ``sentences_per_document`` and ``words_per_sentence``
to a ``DataLoader``. The model is the tutorial's: ``SentenceAttention`` packs the documents and their
sentence lengths with ``pack_padded_sequence(..., batch_first=True, enforce_sorted=False)`` and hands the
packed ``.data`` (every real sentence of the batch, flattened) to ``WordAttention``, which embeds them
(``nn.Embedding(padding_idx=0)`` initialised from pretrained-style vectors by ``self.embeddings.weight =
nn.Parameter(...)``), packs them again by word counts into a bidirectional ``nn.GRU(batch_first=True)``,
scores the packed outputs with ``nn.Linear`` + ``torch.tanh`` + a bias-free context vector, takes
``torch.exp(att_w - att_w.max())``, and rebuilds the padded layout with ``pad_packed_sequence`` of a
``PackedSequence(data=..., batch_sizes=..., sorted_indices=..., unsorted_indices=...)`` before the masked
sum and normalisation; the sentence level does the same over sentence vectors. ``nn.Dropout``,
``nn.CrossEntropyLoss``, Adam, ``clip_grad_norm_``, the tutorial's ``AverageMeter``, a checkpoint dict
through ``torch.save``/``torch.load`` on an ``io.BytesIO`` loaded into a fresh model, and the word and
sentence attention weights of the most important sentence read back per document.

Checked: test accuracy, the share of test documents whose highest-attention sentence holds a key word,
and that the packed model equals a padded-and-masked edition on the same weights (unidirectional GRUs
loaded from the bidirectional one's ``weight_ih_l0``/``weight_ih_l0_reverse``, each sequence reversed
within its length by ``gather``, ``masked_fill(-inf)`` + ``softmax`` attention), by ``torch.allclose``.
"""

# ruff: noqa: UP004, UP008, B007  (the tutorial's own spelling: class AverageMeter(object), super(Class, self), an unused enumerate index)

import io
import os

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

N_CLASSES = 3
VOCAB = 60
KEY_WORDS = {c: [2 + 2 * c, 3 + 2 * c] for c in range(N_CLASSES)}  # ids 2..7
FILLER = np.arange(8, VOCAB)
MAX_SENTS, MAX_WORDS = 6, 9


def make_documents(n):
    docs = np.zeros((n, MAX_SENTS, MAX_WORDS), dtype=np.int64)
    sents = np.zeros(n, dtype=np.int64)
    words = np.zeros((n, MAX_SENTS), dtype=np.int64)
    key_sentence = np.zeros((n, MAX_SENTS), dtype=bool)
    labels = rng.randint(0, N_CLASSES, size=n)
    for i in range(n):
        sents[i] = rng.randint(2, MAX_SENTS + 1)
        for s in range(sents[i]):
            words[i, s] = rng.randint(3, MAX_WORDS + 1)
            docs[i, s, : words[i, s]] = rng.choice(FILLER, size=words[i, s])
        # a decoy key word of another class in one sentence, the true class's key words in one or two
        decoy = rng.randint(sents[i])
        other = (labels[i] + 1 + rng.randint(N_CLASSES - 1)) % N_CLASSES
        docs[i, decoy, rng.randint(words[i, decoy])] = KEY_WORDS[other][rng.randint(2)]
        for s in rng.choice(sents[i], size=rng.randint(1, 3), replace=False):
            positions = rng.choice(words[i, s], size=min(2, words[i, s]), replace=False)
            docs[i, s, positions] = KEY_WORDS[labels[i]]
            key_sentence[i, s] = True
    return docs, sents, words, labels, key_sentence


class HANDataset(Dataset):
    def __init__(self, docs, sents, words, labels):
        self.data = {"docs": docs, "sents": sents, "words": words, "labels": labels}

    def __getitem__(self, i):
        return (
            torch.LongTensor(self.data["docs"][i]),
            torch.LongTensor([self.data["sents"][i]]),
            torch.LongTensor(self.data["words"][i]),
            torch.LongTensor([self.data["labels"][i]]),
        )

    def __len__(self):
        return len(self.data["labels"])


class AverageMeter(object):
    """Keeps track of most recent, average, sum, and count of a metric."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


class WordAttention(nn.Module):
    def __init__(self, vocab_size, emb_size, word_rnn_size, word_rnn_layers, word_att_size, dropout):
        super(WordAttention, self).__init__()
        self.embeddings = nn.Embedding(vocab_size, emb_size, padding_idx=0)
        self.word_rnn = nn.GRU(emb_size, word_rnn_size, num_layers=word_rnn_layers, bidirectional=True, batch_first=True)
        self.word_attention = nn.Linear(2 * word_rnn_size, word_att_size)
        self.word_context_vector = nn.Linear(word_att_size, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def init_embeddings(self, embeddings):
        self.embeddings.weight = nn.Parameter(embeddings)

    def fine_tune_embeddings(self, fine_tune=False):
        for p in self.embeddings.parameters():
            p.requires_grad = fine_tune

    def forward(self, sentences, words_per_sentence):
        sentences = self.dropout(self.embeddings(sentences))
        packed_words = pack_padded_sequence(sentences, lengths=words_per_sentence.tolist(), batch_first=True, enforce_sorted=False)
        packed_words, _ = self.word_rnn(packed_words)
        att_w = self.word_attention(packed_words.data)
        att_w = torch.tanh(att_w)
        att_w = self.word_context_vector(att_w).squeeze(1)
        max_value = att_w.max()
        att_w = torch.exp(att_w - max_value)
        att_w, _ = pad_packed_sequence(
            PackedSequence(data=att_w, batch_sizes=packed_words.batch_sizes, sorted_indices=packed_words.sorted_indices, unsorted_indices=packed_words.unsorted_indices),
            batch_first=True,
        )
        word_alphas = att_w / torch.sum(att_w, dim=1, keepdim=True)
        sentences, _ = pad_packed_sequence(packed_words, batch_first=True)
        sentences = sentences * word_alphas.unsqueeze(2)
        sentences = sentences.sum(dim=1)
        return sentences, word_alphas


class SentenceAttention(nn.Module):
    def __init__(self, vocab_size, emb_size, word_rnn_size, sentence_rnn_size, word_rnn_layers, sentence_rnn_layers, word_att_size, sentence_att_size, dropout):
        super(SentenceAttention, self).__init__()
        self.word_attention = WordAttention(vocab_size, emb_size, word_rnn_size, word_rnn_layers, word_att_size, dropout)
        self.sentence_rnn = nn.GRU(2 * word_rnn_size, sentence_rnn_size, num_layers=sentence_rnn_layers, bidirectional=True, batch_first=True)
        self.sentence_attention = nn.Linear(2 * sentence_rnn_size, sentence_att_size)
        self.sentence_context_vector = nn.Linear(sentence_att_size, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, documents, sentences_per_document, words_per_sentence):
        packed_sentences = pack_padded_sequence(documents, lengths=sentences_per_document.tolist(), batch_first=True, enforce_sorted=False)
        packed_words_per_sentence = pack_padded_sequence(words_per_sentence, lengths=sentences_per_document.tolist(), batch_first=True, enforce_sorted=False)
        sentences, word_alphas = self.word_attention(packed_sentences.data, packed_words_per_sentence.data)
        sentences = self.dropout(sentences)
        packed_sentences, _ = self.sentence_rnn(
            PackedSequence(data=sentences, batch_sizes=packed_sentences.batch_sizes, sorted_indices=packed_sentences.sorted_indices, unsorted_indices=packed_sentences.unsorted_indices)
        )
        att_s = self.sentence_attention(packed_sentences.data)
        att_s = torch.tanh(att_s)
        att_s = self.sentence_context_vector(att_s).squeeze(1)
        max_value = att_s.max()
        att_s = torch.exp(att_s - max_value)
        att_s, _ = pad_packed_sequence(
            PackedSequence(data=att_s, batch_sizes=packed_sentences.batch_sizes, sorted_indices=packed_sentences.sorted_indices, unsorted_indices=packed_sentences.unsorted_indices),
            batch_first=True,
        )
        sentence_alphas = att_s / torch.sum(att_s, dim=1, keepdim=True)
        documents, _ = pad_packed_sequence(packed_sentences, batch_first=True)
        documents = documents * sentence_alphas.unsqueeze(2)
        documents = documents.sum(dim=1)
        word_alphas, _ = pad_packed_sequence(
            PackedSequence(data=word_alphas, batch_sizes=packed_sentences.batch_sizes, sorted_indices=packed_sentences.sorted_indices, unsorted_indices=packed_sentences.unsorted_indices),
            batch_first=True,
        )
        return documents, word_alphas, sentence_alphas


class HierarchialAttentionNetwork(nn.Module):
    def __init__(self, n_classes, vocab_size, emb_size, word_rnn_size, sentence_rnn_size, word_rnn_layers, sentence_rnn_layers, word_att_size, sentence_att_size, dropout=0.5):
        super(HierarchialAttentionNetwork, self).__init__()
        self.sentence_attention = SentenceAttention(vocab_size, emb_size, word_rnn_size, sentence_rnn_size, word_rnn_layers, sentence_rnn_layers, word_att_size, sentence_att_size, dropout)
        self.fc = nn.Linear(2 * sentence_rnn_size, n_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, documents, sentences_per_document, words_per_sentence):
        document_embeddings, word_alphas, sentence_alphas = self.sentence_attention(documents, sentences_per_document, words_per_sentence)
        scores = self.fc(self.dropout(document_embeddings))
        return scores, word_alphas, sentence_alphas


# ----------------------------------------------------------------------------------- padded edition
def unidirectional_pair(bi_gru):
    """Two one-way GRUs holding a bidirectional GRU's forward and reverse weights."""
    fwd = nn.GRU(bi_gru.input_size, bi_gru.hidden_size, batch_first=True)
    bwd = nn.GRU(bi_gru.input_size, bi_gru.hidden_size, batch_first=True)
    state = bi_gru.state_dict()
    fwd.load_state_dict({k: v for k, v in state.items() if not k.endswith("_reverse")})
    bwd.load_state_dict({k.replace("_reverse", ""): v for k, v in state.items() if k.endswith("_reverse")})
    return fwd, bwd


def reverse_within_length(x, lengths):
    steps = torch.arange(x.size(1)).unsqueeze(0)
    idx = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - steps, steps)
    return x.gather(1, idx.unsqueeze(2).expand_as(x))


def padded_bigru(bi_gru, x, lengths):
    fwd, bwd = unidirectional_pair(bi_gru)
    out_f, _ = fwd(x)
    out_b, _ = bwd(reverse_within_length(x, lengths))
    mask = (torch.arange(x.size(1)).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)
    return torch.cat([out_f, reverse_within_length(out_b, lengths)], dim=2) * mask


def padded_attention(outputs, lengths, linear, context):
    scores = context(torch.tanh(linear(outputs))).squeeze(2)
    mask = torch.arange(outputs.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
    alphas = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    return (outputs * alphas.unsqueeze(2)).sum(dim=1), alphas


def padded_forward(model, documents, sentences_per_document, words_per_sentence):
    sa = model.sentence_attention
    wa = sa.word_attention
    n, s, w = documents.shape
    flat_words = words_per_sentence.view(-1)
    real = flat_words > 0
    emb = wa.embeddings(documents.view(n * s, w)[real])
    word_out = padded_bigru(wa.word_rnn, emb, flat_words[real])
    sent_vectors, _ = padded_attention(word_out, flat_words[real], wa.word_attention, wa.word_context_vector)
    sentences = torch.zeros(n * s, sent_vectors.size(1))
    sentences[real] = sent_vectors
    sent_out = padded_bigru(sa.sentence_rnn, sentences.view(n, s, -1), sentences_per_document)
    doc_vectors, _ = padded_attention(sent_out, sentences_per_document, sa.sentence_attention, sa.sentence_context_vector)
    return model.fc(doc_vectors)


# ----------------------------------------------------------------------------------- training
docs, sents, words, labels, key_sentence = make_documents(560)
n_train = 420
train_loader = DataLoader(HANDataset(docs[:n_train], sents[:n_train], words[:n_train], labels[:n_train]), batch_size=32, shuffle=True)
test_set = HANDataset(docs[n_train:], sents[n_train:], words[n_train:], labels[n_train:])
test_loader = DataLoader(test_set, batch_size=70, shuffle=False)
print(f"documents: {n_train} train, {len(test_set)} test, vocab {VOCAB}, up to {MAX_SENTS} sentences of up to {MAX_WORDS} words")


def build_model():
    return HierarchialAttentionNetwork(
        n_classes=N_CLASSES, vocab_size=VOCAB, emb_size=16, word_rnn_size=16, sentence_rnn_size=16,
        word_rnn_layers=1, sentence_rnn_layers=1, word_att_size=16, sentence_att_size=16, dropout=0.2,
    ).to(device)


model = build_model()
pretrained = torch.from_numpy(rng.normal(0, 0.5, size=(VOCAB, 16)).astype(np.float32))
pretrained[0] = 0
model.sentence_attention.word_attention.init_embeddings(pretrained)
model.sentence_attention.word_attention.fine_tune_embeddings(True)
print(f"parameters: {sum(p.numel() for p in model.parameters() if p.requires_grad)}")

criterion = nn.CrossEntropyLoss().to(device)
optimizer = torch.optim.Adam(params=filter(lambda p: p.requires_grad, model.parameters()), lr=0.01)
grad_clip = 5.0

for epoch in range(6):
    model.train()
    losses = AverageMeter()
    accs = AverageMeter()
    for i, (documents, sentences_per_document, words_per_sentence, labels_b) in enumerate(train_loader):
        documents = documents.to(device)
        sentences_per_document = sentences_per_document.squeeze(1).to(device)
        words_per_sentence = words_per_sentence.to(device)
        labels_b = labels_b.squeeze(1).to(device)
        scores, word_alphas, sentence_alphas = model(documents, sentences_per_document, words_per_sentence)
        loss = criterion(scores, labels_b)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        _, predictions = scores.max(dim=1)
        correct_predictions = torch.eq(predictions, labels_b).sum().item()
        accuracy = correct_predictions / labels_b.size(0)
        losses.update(loss.item(), labels_b.size(0))
        accs.update(accuracy, labels_b.size(0))
    print(f"Epoch: [{epoch}]\tLoss {losses.avg:.4f}\tAccuracy {accs.avg:.3f}\tseen {losses.count}")

buffer = io.BytesIO()
torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
buffer.seek(0)
checkpoint = torch.load(buffer)
restored = build_model()
restored.load_state_dict(checkpoint["model"])
restored.eval()
model.eval()
print(f"checkpoint: epoch {checkpoint['epoch']}, {len(checkpoint['model'])} tensors, optimizer steps {checkpoint['optimizer']['state'][0]['step']:.0f}")

correct, key_hits, total, same_restored, same_padded = 0, 0, 0, True, True
with torch.no_grad():
    for b, (documents, sentences_per_document, words_per_sentence, labels_b) in enumerate(test_loader):
        sentences_per_document = sentences_per_document.squeeze(1)
        labels_b = labels_b.squeeze(1)
        scores, word_alphas, sentence_alphas = restored(documents, sentences_per_document, words_per_sentence)
        same_restored &= torch.equal(scores, model(documents, sentences_per_document, words_per_sentence)[0])
        same_padded &= torch.allclose(scores, padded_forward(restored, documents, sentences_per_document, words_per_sentence), atol=1e-5)
        correct += (scores.argmax(1) == labels_b).sum().item()
        top_sentence = sentence_alphas.argmax(dim=1)
        offset = b * test_loader.batch_size + n_train
        key_hits += int(key_sentence[offset + np.arange(len(labels_b)), top_sentence.numpy()].sum())
        total += labels_b.size(0)
        if b == 0:
            i = 0
            s = top_sentence[i].item()
            n_words = words_per_sentence[i, s].item()
            alphas = word_alphas[i, s, :n_words]
            print(f"document 0: sentence alphas {sentence_alphas[i, : sentences_per_document[i]].sum().item():.4f} total, word alphas {alphas.sum().item():.4f} total over {word_alphas.size(2)} slots")
            top_word = documents[i, s, alphas.argmax()].item()
            print(f"  its most attended word is a key word: {int(top_word in KEY_WORDS[labels_b[i].item()])}, weight {alphas.max().item():.3f}")

accuracy = correct / total
key_share = key_hits / total
print(f"restored == trained: {same_restored}, packed == padded-and-masked: {same_padded}")
print(f"test accuracy {accuracy:.4f}, top-attention sentence is a key sentence for {key_share:.4f}")
print(f"FINAL test_acc={accuracy:.4f} key_sentence_share={key_share:.4f} packed_equals_padded={int(same_padded and same_restored)}")
