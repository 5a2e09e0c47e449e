"""ELECTRA pre-training (Clark et al. 2020) with ALBERT's parameter savings (Lan et al. 2020), at tiny
sizes on synthetic "sentences": runs of one topic's tokens between ``[CLS]`` and ``[SEP]``, padded.

ALBERT's two ideas, as HF's modeling_albert writes them: factorised embeddings (``nn.Embedding(vocab,
32)`` + position/token-type embeddings + LayerNorm, then ``embedding_hidden_mapping_in =
nn.Linear(32, hidden)``) and cross-layer parameter sharing (one ``nn.TransformerEncoderLayer`` applied
``num_hidden_layers`` times in a ``for`` loop). ELECTRA's replaced-token detection as in the common
PyTorch re-implementations (lucidrains/electra-pytorch, richarddwang/electra_pytorch): masked positions
by ``torch.rand(...) < p`` on a probability matrix with special tokens excluded by ``masked_fill``, the
generator's MLM loss on masked positions only (as ``logits[mask]`` and as ``-100`` labels, which must
agree), replacements sampled by the Gumbel-max trick (``-torch.log(-torch.log(torch.rand_like(logits)
+ 1e-9) + 1e-9)``, ``argmax``) under ``torch.no_grad()``, ``is_replaced = (sampled != input_ids) &
mask``, the discriminator's ``F.binary_cross_entropy_with_logits`` on non-pad tokens, the embeddings
shared by both networks (``disc.embeddings = gen.embeddings``) and the generator's decoder tied to the
word embeddings, the summed loss ``gen_loss + 50 * disc_loss``, AdamW with ``no_decay`` groups and a
linear warm-up/decay ``LambdaLR``, ``clip_grad_norm_``.

Checked: the generator's masked-token accuracy and the replaced-token-detection accuracy (and AUC) on
held-out sentences against the all-original baseline; that the shared layer applied N times equals an
``nn.TransformerEncoder`` of N copies loaded from its ``state_dict`` (non-pad positions); that the
Gumbel-max draws follow ``softmax(logits)``; the parameter counts with and without sharing.
"""

import functools
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

PAD_ID, CLS_ID, SEP_ID, MASK_ID = 0, 1, 2, 3
N_TOPICS, TOPIC_SIZE = 4, 5
N_SYMBOLS = N_TOPICS * TOPIC_SIZE
VOCAB_SIZE = 4 + N_SYMBOLS
MAX_LEN = 14
MASK_PROB = 0.15
DISC_WEIGHT = 50.0


# ----------------------------------------------------------------------------------- data
def make_sentences(n):
    """Each sentence is about one of N_TOPICS topics: its tokens come from that topic's symbols (one in
    ten from anywhere), so a masked token is guessable from the rest and an off-topic one stands out."""
    input_ids = np.full((n, MAX_LEN), PAD_ID, dtype=np.int64)
    for i in range(n):
        length = rng.randint(6, MAX_LEN - 1)
        topic = rng.randint(N_TOPICS)
        words = topic * TOPIC_SIZE + rng.randint(TOPIC_SIZE, size=length)
        noise = rng.rand(length) < 0.1
        words[noise] = rng.randint(N_SYMBOLS, size=noise.sum())
        input_ids[i, 0] = CLS_ID
        input_ids[i, 1:length + 1] = words + 4
        input_ids[i, length + 1] = SEP_ID
    return torch.from_numpy(input_ids)


train_ids = make_sentences(1024)
test_ids = make_sentences(256)


# ----------------------------------------------------------------------------------- config
class AlbertConfig:
    def __init__(self, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
                 embedding_size=32, vocab_size=VOCAB_SIZE, max_position_embeddings=MAX_LEN,
                 type_vocab_size=2, hidden_dropout_prob=0.0, layer_norm_eps=1e-12, initializer_range=0.1):
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.embedding_size = embedding_size
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range


# ----------------------------------------------------------------------------------- ALBERT
class AlbertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.embedding_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.embedding_size)
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings).expand((1, -1)),
                             persistent=False)

    def forward(self, input_ids, token_type_ids=None):
        seq_length = input_ids.size(1)
        position_ids = self.position_ids[:, :seq_length]
        if token_type_ids is None:
            token_type_ids = torch.zeros(input_ids.size(), dtype=torch.long, device=input_ids.device)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        embeddings = self.LayerNorm(embeddings)
        return self.dropout(embeddings)


class AlbertTransformer(nn.Module):
    """One layer, applied ``num_hidden_layers`` times: ALBERT's cross-layer sharing."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)
        self.shared_layer = nn.TransformerEncoderLayer(
            config.hidden_size, config.num_attention_heads, dim_feedforward=config.intermediate_size,
            dropout=config.hidden_dropout_prob, activation="gelu", batch_first=True)

    def forward(self, hidden_states, attention_mask):
        hidden_states = self.embedding_hidden_mapping_in(hidden_states)
        padding_mask = attention_mask == 0
        for _ in range(self.config.num_hidden_layers):
            hidden_states = self.shared_layer(hidden_states, src_key_padding_mask=padding_mask)
        return hidden_states


class AlbertModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = AlbertEmbeddings(config)
        self.encoder = AlbertTransformer(config)

    def forward(self, input_ids, attention_mask):
        return self.encoder(self.embeddings(input_ids), attention_mask)


def init_weights(module, std=0.02):
    if isinstance(module, nn.Linear):
        module.weight.data.normal_(mean=0.0, std=std)
        if module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.Embedding):
        module.weight.data.normal_(mean=0.0, std=std)
        if module.padding_idx is not None:
            module.weight.data[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)


# ----------------------------------------------------------------------------------- ELECTRA
class ElectraGenerator(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.albert = AlbertModel(config)
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.apply(functools.partial(init_weights, std=config.initializer_range))

    @property
    def embeddings(self):
        return self.albert.embeddings

    def forward(self, input_ids, attention_mask):
        hidden_states = self.albert(input_ids, attention_mask)
        hidden_states = self.LayerNorm(F.gelu(self.dense(hidden_states)))
        # the decoder is tied to the (factorised) word embeddings
        return F.linear(hidden_states, self.albert.embeddings.word_embeddings.weight, self.bias)


class ElectraDiscriminator(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.albert = AlbertModel(config)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dense_prediction = nn.Linear(config.hidden_size, 1)
        self.apply(functools.partial(init_weights, std=config.initializer_range))

    @property
    def embeddings(self):
        return self.albert.embeddings

    def forward(self, input_ids, attention_mask):
        hidden_states = self.albert(input_ids, attention_mask)
        hidden_states = F.gelu(self.dense(hidden_states))
        return self.dense_prediction(hidden_states).squeeze(-1)


def mask_tokens(input_ids, mask_prob=MASK_PROB):
    special_tokens_mask = (input_ids == PAD_ID) | (input_ids == CLS_ID) | (input_ids == SEP_ID)
    probability_matrix = torch.full(input_ids.shape, mask_prob)
    probability_matrix.masked_fill_(special_tokens_mask, value=0.0)
    mask = torch.rand(input_ids.shape) < probability_matrix
    masked_input = input_ids.masked_fill(mask, MASK_ID)
    return masked_input, mask


def gumbel_noise(t):
    noise = torch.rand_like(t)
    return -torch.log(-torch.log(noise + 1e-9) + 1e-9)


def gumbel_sample(logits, temperature=1.0):
    return ((logits / temperature) + gumbel_noise(logits)).argmax(dim=-1)


class Electra(nn.Module):
    def __init__(self, generator, discriminator, disc_weight=DISC_WEIGHT):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.disc_weight = disc_weight

    def forward(self, input_ids):
        attention_mask = (input_ids != PAD_ID).long()
        masked_input, mask = mask_tokens(input_ids)
        logits = self.generator(masked_input, attention_mask)
        gen_loss = F.cross_entropy(logits[mask], input_ids[mask])
        with torch.no_grad():
            sampled = gumbel_sample(logits)
            disc_input = input_ids.clone()
            disc_input[mask] = sampled[mask]
            is_replaced = (sampled != input_ids) & mask
        disc_logits = self.discriminator(disc_input, attention_mask)
        non_pad = attention_mask.bool()
        disc_loss = F.binary_cross_entropy_with_logits(disc_logits[non_pad], is_replaced[non_pad].float())
        loss = gen_loss + self.disc_weight * disc_loss
        return loss, gen_loss, disc_loss, logits, mask


gen_config = AlbertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
disc_config = AlbertConfig(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96)
generator = ElectraGenerator(gen_config)
discriminator = ElectraDiscriminator(disc_config)
discriminator.albert.embeddings = generator.albert.embeddings  # ELECTRA's shared embeddings
model = Electra(generator, discriminator)


def count_parameters(m):
    return sum(p.numel() for p in m.parameters())


layer_params = count_parameters(discriminator.albert.encoder.shared_layer)
disc_params = count_parameters(discriminator)
print(f"parameters: electra {count_parameters(model)} generator {count_parameters(generator)} "
      f"discriminator {disc_params} unshared discriminator {disc_params + (disc_config.num_hidden_layers - 1) * layer_params}")
print(f"shared embeddings: {discriminator.embeddings.word_embeddings.weight is generator.embeddings.word_embeddings.weight}")

# ----------------------------------------------------------------------------------- training
no_decay = ["bias", "LayerNorm.weight", "norm1.weight", "norm2.weight"]
optimizer_grouped_parameters = [
    {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
    {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
]
optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=5e-3, eps=1e-6)
batch_size, num_epochs = 32, 8
num_training_steps = num_epochs * (len(train_ids) // batch_size)
num_warmup_steps = num_training_steps // 10


def lr_lambda(current_step):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


def auc_by_ranks(scores, labels):
    ranks = torch.empty_like(scores)
    ranks[scores.argsort()] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    return ((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


@torch.no_grad()
def evaluate(input_ids):
    model.eval()
    attention_mask = (input_ids != PAD_ID).long()
    masked_input, mask = mask_tokens(input_ids)
    logits = generator(masked_input, attention_mask)
    gen_acc = (logits.argmax(-1)[mask] == input_ids[mask]).float().mean().item()
    sampled = gumbel_sample(logits)
    disc_input = torch.where(mask, sampled, input_ids)
    is_replaced = (sampled != input_ids) & mask
    disc_logits = discriminator(disc_input, attention_mask)
    non_pad = attention_mask.bool()
    predictions = (disc_logits > 0)[non_pad]
    targets = is_replaced[non_pad]
    rtd_acc = (predictions == targets).float().mean().item()
    baseline = 1.0 - targets.float().mean().item()
    auc = auc_by_ranks(disc_logits[non_pad], targets) if 0 < targets.sum() < len(targets) else 0.5
    model.train()
    return gen_acc, rtd_acc, baseline, auc


model.train()
step = 0
for epoch in range(1, num_epochs + 1):
    permutation = torch.randperm(len(train_ids))
    totals = [0.0, 0.0, 0.0]
    for start in range(0, len(train_ids) - batch_size + 1, batch_size):
        batch = train_ids[permutation[start:start + batch_size]]
        loss, gen_loss, disc_loss, _, _ = model(batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        for i, value in enumerate((loss, gen_loss, disc_loss)):
            totals[i] += value.item()
    n_batches = len(train_ids) // batch_size
    gen_acc, rtd_acc, baseline, auc = evaluate(test_ids)
    print(f"epoch {epoch} step {step} lr {scheduler.get_last_lr()[0]:.6f} loss {totals[0] / n_batches:.4f} "
          f"gen {totals[1] / n_batches:.4f} disc {totals[2] / n_batches:.4f} | "
          f"mlm acc {gen_acc:.3f} rtd acc {rtd_acc:.3f} (all-original {baseline:.3f}) auc {auc:.3f}")

# ----------------------------------------------------------------------------------- checks
# the generator's MLM loss: on masked positions by boolean indexing, and by -100 labels
with torch.no_grad():
    attention_mask = (test_ids != PAD_ID).long()
    masked_input, mask = mask_tokens(test_ids)
    logits = generator(masked_input, attention_mask)
    loss_indexed = F.cross_entropy(logits[mask], test_ids[mask])
    labels = test_ids.masked_fill(~mask, -100)
    loss_labels = F.cross_entropy(logits.view(-1, VOCAB_SIZE), labels.view(-1), ignore_index=-100)
    special_masked = (mask & (test_ids <= SEP_ID)).sum().item()
print(f"mlm loss indexed {loss_indexed.item():.6f} by labels {loss_labels.item():.6f} "
      f"masked {int(mask.sum())} special masked {special_masked}")

# the shared layer applied N times equals a TransformerEncoder of N loaded copies
discriminator.eval()
encoder = discriminator.albert.encoder
stack = nn.TransformerEncoder(
    nn.TransformerEncoderLayer(disc_config.hidden_size, disc_config.num_attention_heads,
                               dim_feedforward=disc_config.intermediate_size, dropout=0.0,
                               activation="gelu", batch_first=True),
    num_layers=disc_config.num_hidden_layers, enable_nested_tensor=False)
for layer in stack.layers:
    layer.load_state_dict(encoder.shared_layer.state_dict())
stack.eval()
with torch.no_grad():
    x = test_ids[:32]
    attention_mask = (x != PAD_ID).long()
    looped = encoder(discriminator.albert.embeddings(x), attention_mask)
    stacked = stack(encoder.embedding_hidden_mapping_in(discriminator.albert.embeddings(x)),
                    src_key_padding_mask=attention_mask == 0)
    keep = attention_mask.bool()
    sharing_diff = (looped[keep] - stacked[keep]).abs().max().item()
print(f"shared loop vs encoder stack: max diff {sharing_diff:.2e} allclose {torch.allclose(looped[keep], stacked[keep], atol=1e-5)}")

# Gumbel-max draws follow softmax(logits)
with torch.no_grad():
    probe_logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0]).expand(20000, 5)
    draws = gumbel_sample(probe_logits)
    freq = torch.bincount(draws, minlength=5).float() / draws.numel()
    gumbel_tv = 0.5 * (freq - F.softmax(probe_logits[0], dim=-1)).abs().sum().item()
print(f"gumbel-max vs softmax: total variation {gumbel_tv:.4f}")

gen_acc, rtd_acc, baseline, auc = evaluate(test_ids)
ok = float(math.isclose(loss_indexed.item(), loss_labels.item(), rel_tol=1e-5) and special_masked == 0
           and sharing_diff < 1e-4)
print(f"FINAL mlm_acc={gen_acc:.4f} rtd_acc={rtd_acc:.4f} auc={auc:.4f} "
      f"gumbel_tv={gumbel_tv:.4f} checks={ok:.0f}")
