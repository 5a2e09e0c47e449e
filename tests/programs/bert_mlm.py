"""BERT masked-language-model pretraining, minBERT / HF style, written with plain torch.

Token + position + segment embeddings summed and normalised, a pre-norm
``nn.TransformerEncoder(nn.TransformerEncoderLayer(batch_first=True, norm_first=True,
activation='gelu'))`` with ``src_key_padding_mask``, the MLM head tied to the word embedding
(``decoder.weight = embedding.weight``) with its own bias, HF's 80/10/10 masking rule
(``torch.bernoulli(torch.full(shape, 0.15))``, ``masked_fill``, ``torch.randint`` random words,
labels ``-100`` for ``CrossEntropyLoss``'s default ``ignore_index``), ``AdamW`` with parameter
groups that exclude biases and LayerNorm weights from weight decay,
``get_linear_schedule_with_warmup`` written as a ``LambdaLR``, ``clip_grad_norm_``.
The "corpus" is sentence pairs from a tiny grammar: the next word is mostly predictable, so a
masked word can be recovered from its neighbours.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import LambdaLR

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

PAD, CLS, SEP, MASK = 0, 1, 2, 3
N_SPECIAL = 4
VOCAB = 16
MAX_LEN = 20
HIDDEN = 32
HEADS = 4
LAYERS = 2
INTERMEDIATE = 64
MLM_PROBABILITY = 0.15

# a tiny "language": each word has two likely successors
SUCCESSORS = rng.integers(N_SPECIAL, VOCAB, size=(VOCAB, 2))


def sentence(length):
    word = int(rng.integers(N_SPECIAL, VOCAB))
    words = [word]
    for _ in range(length - 1):
        word = int(SUCCESSORS[word, int(rng.random() < 0.15)])
        words.append(word)
    return words


def make_example():
    a = sentence(int(rng.integers(3, 8)))
    b = sentence(int(rng.integers(3, 8)))
    tokens = [CLS] + a + [SEP] + b + [SEP]
    segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    return tokens, segments


def collate(examples):
    n = len(examples)
    input_ids = torch.full((n, MAX_LEN), PAD, dtype=torch.long)
    token_type_ids = torch.zeros((n, MAX_LEN), dtype=torch.long)
    attention_mask = torch.zeros((n, MAX_LEN), dtype=torch.long)
    for i, (tokens, segments) in enumerate(examples):
        input_ids[i, :len(tokens)] = torch.tensor(tokens)
        token_type_ids[i, :len(segments)] = torch.tensor(segments)
        attention_mask[i, :len(tokens)] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}


def mask_tokens(inputs, special_tokens_mask):
    """HF DataCollatorForLanguageModeling.torch_mask_tokens: 80% [MASK], 10% random, 10% kept."""
    labels = inputs.clone()
    probability_matrix = torch.full(labels.shape, MLM_PROBABILITY)
    probability_matrix.masked_fill_(special_tokens_mask, value=0.0)
    masked_indices = torch.bernoulli(probability_matrix).bool()
    labels[~masked_indices] = -100  # loss only on masked tokens

    indices_replaced = torch.bernoulli(torch.full(labels.shape, 0.8)).bool() & masked_indices
    inputs = inputs.masked_fill(indices_replaced, MASK)

    indices_random = torch.bernoulli(torch.full(labels.shape, 0.5)).bool() & masked_indices & ~indices_replaced
    random_words = torch.randint(VOCAB, labels.shape, dtype=torch.long)
    inputs[indices_random] = random_words[indices_random]
    return inputs, labels


class BertEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, HIDDEN, padding_idx=PAD)
        self.position_embeddings = nn.Embedding(MAX_LEN, HIDDEN)
        self.token_type_embeddings = nn.Embedding(2, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer("position_ids", torch.arange(MAX_LEN).expand((1, -1)), persistent=False)

    def forward(self, input_ids, token_type_ids):
        seq_length = input_ids.size(1)
        position_ids = self.position_ids[:, :seq_length]
        embeddings = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
                      + self.position_embeddings(position_ids))
        return self.dropout(self.LayerNorm(embeddings))


class BertLMPredictionHead(nn.Module):
    def __init__(self, embedding_weight):
        super().__init__()
        self.dense = nn.Linear(HIDDEN, HIDDEN)
        self.transform_act_fn = nn.GELU()
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.decoder = nn.Linear(HIDDEN, VOCAB, bias=False)
        self.bias = nn.Parameter(torch.zeros(VOCAB))
        self.decoder.weight = embedding_weight  # weight tying
        self.decoder.bias = self.bias

    def forward(self, hidden_states):
        hidden_states = self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))
        return self.decoder(hidden_states)


class BertForMaskedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = BertEmbeddings()
        layer = nn.TransformerEncoderLayer(HIDDEN, HEADS, dim_feedforward=INTERMEDIATE, dropout=0.1,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=LAYERS, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(HIDDEN)
        self.cls = BertLMPredictionHead(self.embeddings.word_embeddings.weight)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def forward(self, input_ids, token_type_ids, attention_mask, labels=None):
        hidden = self.embeddings(input_ids, token_type_ids)
        hidden = self.encoder(hidden, src_key_padding_mask=attention_mask == 0)
        prediction_scores = self.cls(self.final_norm(hidden))
        loss = None
        if labels is not None:
            loss_fct = nn.CrossEntropyLoss()  # -100 index = padding token
            loss = loss_fct(prediction_scores.view(-1, VOCAB), labels.view(-1))
        return loss, prediction_scores


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    def lr_lambda(current_step: int):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step)
                   / float(max(1, num_training_steps - num_warmup_steps)))
    return LambdaLR(optimizer, lr_lambda, last_epoch)


model = BertForMaskedLM()
assert model.cls.decoder.weight is model.embeddings.word_embeddings.weight
n_params = sum(p.numel() for p in model.parameters())
print(f"parameters: {n_params} (tied decoder counted once)")

no_decay = ["bias", "LayerNorm.weight", "norm1.weight", "norm2.weight", "final_norm.weight"]
optimizer_grouped_parameters = [
    {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
     "weight_decay": 0.01},
    {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
     "weight_decay": 0.0},
]
print(f"param groups: {len(optimizer_grouped_parameters[0]['params'])} with decay, "
      f"{len(optimizer_grouped_parameters[1]['params'])} without")
optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=5e-3, eps=1e-6)

BATCH = 32
STEPS = 150
scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=12, num_training_steps=STEPS)

train_examples = [make_example() for _ in range(BATCH * 20)]
eval_batch = collate([make_example() for _ in range(128)])

model.train()
for step in range(STEPS):
    start = (step * BATCH) % len(train_examples)
    batch = collate(train_examples[start:start + BATCH])
    special = (batch["input_ids"] == PAD) | (batch["input_ids"] == CLS) | (batch["input_ids"] == SEP)
    input_ids, labels = mask_tokens(batch["input_ids"], special)
    loss, _ = model(input_ids, batch["token_type_ids"], batch["attention_mask"], labels=labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    if (step + 1) % 30 == 0:
        print(f"step {step + 1}: loss {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.6f}")

# evaluation: mask every 5th content token deterministically, predict it
model.eval()
with torch.no_grad():
    ids = eval_batch["input_ids"]
    special = (ids == PAD) | (ids == CLS) | (ids == SEP)
    positions = torch.arange(MAX_LEN).expand_as(ids)
    chosen = ((positions % 5) == 2) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    masked = ids.masked_fill(chosen, MASK)
    eval_loss, scores = model(masked, eval_batch["token_type_ids"], eval_batch["attention_mask"], labels=labels)
    predictions = scores.argmax(dim=-1)
    acc = (predictions[chosen] == ids[chosen]).float().mean().item()
print(f"masked positions: {int(chosen.sum())}")
print(f"FINAL mlm_loss={eval_loss.item():.4f} mlm_acc={acc:.4f} perplexity={math.exp(eval_loss.item()):.3f}")
