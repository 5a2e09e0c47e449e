"""Fine-tuning a small pretrained-style transformer encoder the way Hugging Face scripts do.

A BERT-like encoder written as the HF modules name it (``bert.embeddings``, ``bert.encoder.layer.N``,
``LayerNorm`` attributes) is 'pretrained' by masked-token prediction on sequences from two Markov
chains, initialised by ``_init_weights`` with ``torch.nn.init.trunc_normal_(std=0.02)``. Its
``state_dict()`` goes through ``torch.save``/``torch.load(weights_only=True)`` into a model with a new
classification head by ``load_state_dict(strict=False)`` (the head's keys missing, the MLM head's
unexpected). The fine-tune, telling which chain made a sequence, uses layer-wise learning-rate decay:
one param group per parameter from ``named_parameters()`` with ``lr = base * decay ** (L + 1 - depth)``
and no weight decay on ``bias`` and ``LayerNorm.weight`` (the groups carry an extra ``name`` key),
AdamW, a ``LambdaLR`` with ``get_linear_schedule_with_warmup``'s formula stepped per optimizer step,
gradient accumulation with ``loss / accum_steps``, and ``clip_grad_norm_(..., error_if_nonfinite=True)``
(whose error on a NaN gradient is printed). The learning rates are read back from
``optimizer.param_groups``.
"""

import math
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB = 12
MASK_ID = VOCAB  # one extra embedding row for [MASK]
SEQ_LEN = 16
HIDDEN = 32
HEADS = 2
LAYERS = 3
INTERMEDIATE = 64


def markov_chains():
    chains = []
    for sharpness in (6.0, 6.0):
        logits = rng.normal(0.0, 1.0, size=(VOCAB, VOCAB)) * sharpness / 3
        probs = np.exp(logits - logits.max(1, keepdims=True))
        chains.append(probs / probs.sum(1, keepdims=True))
    return chains


CHAINS = markov_chains()


def sample_sequences(n):
    labels = rng.integers(0, 2, size=n)
    tokens = np.empty((n, SEQ_LEN), dtype=np.int64)
    for i, label in enumerate(labels):
        tokens[i, 0] = rng.integers(VOCAB)
        for t in range(1, SEQ_LEN):
            tokens[i, t] = rng.choice(VOCAB, p=CHAINS[label][tokens[i, t - 1]])
    return torch.from_numpy(tokens), torch.from_numpy(labels)


class Embeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB + 1, HIDDEN)
        self.position_embeddings = nn.Embedding(SEQ_LEN, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer("position_ids", torch.arange(SEQ_LEN).expand((1, -1)), persistent=False)

    def forward(self, input_ids):
        positions = self.position_ids[:, : input_ids.size(1)]
        return self.dropout(self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions)))


class SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.head_size = HIDDEN // HEADS
        self.query = nn.Linear(HIDDEN, HIDDEN)
        self.key = nn.Linear(HIDDEN, HIDDEN)
        self.value = nn.Linear(HIDDEN, HIDDEN)
        self.dropout = nn.Dropout(0.1)

    def split_heads(self, x):
        return x.view(x.size()[:-1] + (HEADS, self.head_size)).permute(0, 2, 1, 3)

    def forward(self, hidden_states):
        q, k, v = (self.split_heads(f(hidden_states)) for f in (self.query, self.key, self.value))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return context.view(context.size()[:-2] + (HIDDEN,))


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = SelfAttention()
        self.attention_output = nn.Linear(HIDDEN, HIDDEN)
        self.attention_LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.intermediate = nn.Linear(HIDDEN, INTERMEDIATE)
        self.output = nn.Linear(INTERMEDIATE, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        x = self.attention_LayerNorm(x + self.dropout(self.attention_output(self.attention(x))))
        return self.LayerNorm(x + self.dropout(self.output(F.gelu(self.intermediate(x)))))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.ModuleList([Layer() for _ in range(LAYERS)])

    def forward(self, x):
        for layer in self.layer:
            x = layer(x)
        return x


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = Embeddings()
        self.encoder = Encoder()

    def forward(self, input_ids):
        return self.encoder(self.embeddings(input_ids))


class PreTrainedModel(nn.Module):
    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.trunc_normal_(module.weight, mean=0.0, std=0.02, a=-0.04, b=0.04)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def post_init(self):
        self.apply(self._init_weights)


class BertForMaskedLM(PreTrainedModel):
    def __init__(self):
        super().__init__()
        self.bert = Bert()
        self.cls = nn.Sequential(nn.Linear(HIDDEN, HIDDEN), nn.GELU(), nn.LayerNorm(HIDDEN, eps=1e-12),
                                 nn.Linear(HIDDEN, VOCAB))
        self.post_init()

    def forward(self, input_ids, labels):
        logits = self.cls(self.bert(input_ids))
        return F.cross_entropy(logits.view(-1, VOCAB), labels.view(-1), ignore_index=-100)


class BertForSequenceClassification(PreTrainedModel):
    def __init__(self, num_labels=2):
        super().__init__()
        self.bert = Bert()
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(HIDDEN, num_labels)
        self.post_init()

    def forward(self, input_ids):
        return self.classifier(self.dropout(self.bert(input_ids).mean(dim=1)))


def mask_tokens(input_ids, probability=0.15):
    labels = input_ids.clone()
    masked = torch.bernoulli(torch.full(labels.shape, probability)).bool()
    labels[~masked] = -100
    inputs = input_ids.clone()
    inputs[masked] = MASK_ID
    return inputs, labels


# ---- 'pretraining' ----
pretrain_ids, _ = sample_sequences(512)
mlm = BertForMaskedLM()
print(f"mlm parameters: {sum(p.numel() for p in mlm.parameters())}")
w = mlm.bert.encoder.layer[0].intermediate.weight
print(f"trunc_normal_ init within [-0.04, 0.04]: {bool((w.abs() <= 0.04).all())} std~{w.std().item():.3f}")
pre_optimizer = torch.optim.AdamW(mlm.parameters(), lr=3e-3, weight_decay=0.01)
for step in range(60):
    idx = torch.randint(0, pretrain_ids.shape[0], (32,))
    inputs, labels = mask_tokens(pretrain_ids[idx])
    loss = mlm(inputs, labels)
    pre_optimizer.zero_grad()
    loss.backward()
    pre_optimizer.step()
    if step % 20 == 0:
        print(f"pretrain step {step:2d} mlm_loss={loss.item():.4f}")
mlm_loss = loss.item()

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "pytorch_model.bin")
    torch.save(mlm.state_dict(), path)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)

# ---- fine-tuning with a new head ----
model = BertForSequenceClassification()
result = model.load_state_dict(state_dict, strict=False)
print(f"missing_keys: {result.missing_keys}")
print(f"unexpected_keys: {sorted(result.unexpected_keys)}")
print(f"embeddings loaded: {torch.equal(model.bert.embeddings.word_embeddings.weight, mlm.bert.embeddings.word_embeddings.weight)}")


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))

    return LambdaLR(optimizer, lr_lambda, last_epoch)


def llrd_param_groups(model, base_lr, weight_decay, layer_decay):
    no_decay = ["bias", "LayerNorm.weight"]
    groups = []
    for name, param in model.named_parameters():
        if name.startswith("bert.embeddings"):
            depth = 0
        elif name.startswith("bert.encoder.layer."):
            depth = int(name.split(".")[3]) + 1
        else:
            depth = LAYERS + 1
        groups.append({
            "params": [param],
            "lr": base_lr * layer_decay ** (LAYERS + 1 - depth),
            "weight_decay": 0.0 if any(nd in name for nd in no_decay) else weight_decay,
            "name": name,
        })
    return groups


BASE_LR, LAYER_DECAY = 2e-3, 0.7
optimizer = torch.optim.AdamW(llrd_param_groups(model, BASE_LR, 0.01, LAYER_DECAY), lr=BASE_LR)
names = [g["name"] for g in optimizer.param_groups]
print(f"param groups: {len(optimizer.param_groups)} without decay: "
      f"{sum(g['weight_decay'] == 0.0 for g in optimizer.param_groups)}")
print(f"first group {names[0]} lr={optimizer.param_groups[0]['lr']:.6f}, "
      f"last group {names[-1]} lr={optimizer.param_groups[-1]['lr']:.6f}")

train_ids, train_labels = sample_sequences(256)
test_ids, test_labels = sample_sequences(256)
EPOCHS, MICRO_BATCH, ACCUM_STEPS = 3, 16, 2
steps_per_epoch = train_ids.shape[0] // (MICRO_BATCH * ACCUM_STEPS)
total_steps = EPOCHS * steps_per_epoch
scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=4, num_training_steps=total_steps)
print(f"initial_lr kept: {optimizer.param_groups[-1]['initial_lr']:.6f} lr after warm-up start: "
      f"{optimizer.param_groups[-1]['lr']:.6f}")

# error_if_nonfinite=True refuses a NaN gradient before anything is scaled.
probe_param = nn.Parameter(torch.ones(3))
probe_param.grad = torch.tensor([1.0, float("nan"), 2.0])
try:
    torch.nn.utils.clip_grad_norm_([probe_param], 1.0, error_if_nonfinite=True)
except RuntimeError as error:
    print(f"RuntimeError: {error}")
print(f"grad untouched: {probe_param.grad[0].item()} {probe_param.grad[2].item()}")

optimizer_steps = 0
lr_history = []
for epoch in range(EPOCHS):
    model.train()
    permutation = torch.randperm(train_ids.shape[0])
    running, norms = 0.0, []
    for micro_step, start in enumerate(range(0, train_ids.shape[0], MICRO_BATCH)):
        idx = permutation[start:start + MICRO_BATCH]
        loss = F.cross_entropy(model(train_ids[idx]), train_labels[idx])
        (loss / ACCUM_STEPS).backward()
        running += loss.item()
        if (micro_step + 1) % ACCUM_STEPS == 0:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
            norms.append(norm.item())
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            optimizer_steps += 1
            lr_history.append([g["lr"] for g in optimizer.param_groups])
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    print(f"epoch {epoch} loss={running / (micro_step + 1):.4f} max_grad_norm={max(norms):.4f} "
          f"lr embeddings={lrs['bert.embeddings.word_embeddings.weight']:.6f} "
          f"layer.2={lrs['bert.encoder.layer.2.output.weight']:.6f} classifier={lrs['classifier.weight']:.6f}")

model.eval()
with torch.no_grad():
    accuracy = (model(test_ids).argmax(-1) == test_labels).float().mean().item()
peak = max(lr_history, key=lambda lrs: lrs[-1])
ratio = peak[0] / peak[-1]
print(f"optimizer steps={optimizer_steps} last lrs equal get_last_lr: {scheduler.get_last_lr() == lr_history[-1]}")
print(f"peak lr ratio embeddings/classifier={ratio:.6f} (decay^{LAYERS + 1}={LAYER_DECAY ** (LAYERS + 1):.6f})")
print(f"test accuracy={accuracy:.4f}")
print(f"FINAL accuracy={accuracy:.4f} mlm_loss={mlm_loss:.4f} lr_ratio={ratio:.4f} "
      f"final_lr={optimizer.param_groups[-1]['lr']:.6f}")
