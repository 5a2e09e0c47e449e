"""FNet (google-research f_net; Hugging Face modeling_fnet) at tiny sizes on synthetic token sequences.

Token mixing by ``torch.fft.fft(torch.fft.fft(hidden_states, dim=-1), dim=-2).real`` (the paper's
PyTorch ports), by ``partial(torch.fft.fftn, dim=(1, 2))`` (HF's default) and by HF's ``fftn`` helper
looping ``torch.fft.fft(out, axis=axis)``, all checked against the TPU route: DFT matrices
``torch.exp(-2j * math.pi * torch.outer(n, n) / N)`` ``.to(torch.complex64)`` registered as buffers and
``torch.einsum("bij,jk,ni->bnk", x.type(torch.complex64), dft_hidden, dft_seq)`` (``_two_dim_matmul``),
and against a complex ``@`` chain. Gradients through ``.real`` of the FFT against the DFT route
(float32 and float64), ``torch.fft.ifftn`` undoing ``fftn``, then ``FNetEmbeddings`` (word, position
and token-type embeddings, ``LayerNorm``, the ``projection`` Linear), ``FNetLayer`` blocks (Fourier
sublayer + ``LayerNorm``, ``FNetIntermediate`` with ``gelu_new``, ``FNetOutput``), the tanh pooler on
the first token, and a classifier trained by AdamW with a linear warm-up ``LambdaLR`` and
``clip_grad_norm_`` on "more a's than b's" sequences; the FFT model and the DFT model with the same
weights agree on logits.
"""

import math
import os
from functools import partial

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB, SEQ, HIDDEN, EMB, INTER, LAYERS, CLASSES = 12, 16, 32, 24, 64, 2, 2
PAD, CLS, TOK_A, TOK_B = 0, 1, 2, 3


def dft_matrix(n, dtype=torch.float64):
    idx = torch.arange(n, dtype=dtype)
    return torch.exp(-2j * math.pi * torch.outer(idx, idx) / n)


def _two_dim_matmul(x, matrix_dim_one, matrix_dim_two):
    """Applies 2D matrix multiplication to 3D input arrays."""
    seq_length = x.shape[1]
    matrix_dim_one = matrix_dim_one[:seq_length, :seq_length]
    x = x.type(torch.complex64)
    return torch.einsum("bij,jk,ni->bnk", x, matrix_dim_two, matrix_dim_one)


def two_dim_matmul(x, matrix_dim_one, matrix_dim_two):
    return _two_dim_matmul(x, matrix_dim_one, matrix_dim_two)


def fftn(x):
    """
    Applies n-dimensional Fast Fourier Transform (FFT) to input array.
    """
    out = x
    for axis in reversed(range(x.ndim)[1:]):  # We don't need to apply FFT to last axis
        out = torch.fft.fft(out, axis=axis)
    return out


class FNetConfig:
    def __init__(self, use_tpu_fourier_optimizations=False):
        self.vocab_size = VOCAB
        self.hidden_size = HIDDEN
        self.embedding_size = EMB
        self.intermediate_size = INTER
        self.num_hidden_layers = LAYERS
        self.max_position_embeddings = SEQ
        self.type_vocab_size = 2
        self.layer_norm_eps = 1e-12
        self.hidden_dropout_prob = 0.1
        self.initializer_range = 0.02
        self.use_tpu_fourier_optimizations = use_tpu_fourier_optimizations
        self.tpu_short_seq_length = SEQ
        self.num_labels = CLASSES


class NewGELUActivation(nn.Module):
    def forward(self, input):
        return 0.5 * input * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (input + 0.044715 * torch.pow(input, 3.0))))


class FNetEmbeddings(nn.Module):
    """Construct the embeddings from word, position and token_type embeddings."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=PAD)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.embedding_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.embedding_size)
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.embedding_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.register_buffer(
            "position_ids", torch.arange(config.max_position_embeddings).expand((1, -1)), persistent=False
        )
        self.register_buffer(
            "token_type_ids", torch.zeros(self.position_ids.size(), dtype=torch.long), persistent=False
        )

    def forward(self, input_ids):
        input_shape = input_ids.size()
        seq_length = input_shape[1]
        position_ids = self.position_ids[:, :seq_length]
        buffered_token_type_ids = self.token_type_ids[:, :seq_length]
        token_type_ids = buffered_token_type_ids.expand(input_shape[0], seq_length)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings += self.position_embeddings(position_ids)
        embeddings = self.LayerNorm(embeddings)
        embeddings = self.projection(embeddings)
        embeddings = self.dropout(embeddings)
        return embeddings


class FNetBasicFourierTransform(nn.Module):
    def __init__(self, config):
        super().__init__()
        self._init_fourier_transform(config)

    def _init_fourier_transform(self, config):
        if not config.use_tpu_fourier_optimizations:
            self.fourier_transform = partial(torch.fft.fftn, dim=(1, 2))
        else:
            self.register_buffer("dft_mat_hidden", dft_matrix(config.hidden_size).to(torch.complex64))
            self.register_buffer("dft_mat_seq", dft_matrix(config.tpu_short_seq_length).to(torch.complex64))
            self.fourier_transform = partial(
                two_dim_matmul, matrix_dim_one=self.dft_mat_seq, matrix_dim_two=self.dft_mat_hidden
            )

    def forward(self, hidden_states):
        # NOTE: We do not use torch.vmap as it is not integrated into PyTorch stable versions.
        # Interested users can modify the code to use vmap from the nightly versions, getting the vmap from here:
        # https://pytorch.org/docs/master/generated/torch.vmap.html. Note that fourier transform methods will need
        # change accordingly.
        outputs = self.fourier_transform(hidden_states).real
        return (outputs,)


class FNetBasicOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.LayerNorm(input_tensor + hidden_states)
        return hidden_states


class FNetFourierTransform(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = FNetBasicFourierTransform(config)
        self.output = FNetBasicOutput(config)

    def forward(self, hidden_states):
        self_outputs = self.self(hidden_states)
        fourier_output = self.output(self_outputs[0], hidden_states)
        outputs = (fourier_output,)
        return outputs


class FNetIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = NewGELUActivation()

    def forward(self, hidden_states):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.intermediate_act_fn(hidden_states)
        return hidden_states


class FNetOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states


class FNetLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fourier = FNetFourierTransform(config)
        self.intermediate = FNetIntermediate(config)
        self.output = FNetOutput(config)

    def forward(self, hidden_states):
        self_fourier_outputs = self.fourier(hidden_states)
        fourier_output = self_fourier_outputs[0]
        intermediate_output = self.intermediate(fourier_output)
        layer_output = self.output(intermediate_output, fourier_output)
        return (layer_output,)


class FNetEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([FNetLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states):
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states)[0]
        return hidden_states


class FNetPooler(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        # We "pool" the model by simply taking the hidden state corresponding
        # to the first token.
        first_token_tensor = hidden_states[:, 0]
        pooled_output = self.dense(first_token_tensor)
        pooled_output = self.activation(pooled_output)
        return pooled_output


class FNetForSequenceClassification(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = FNetEmbeddings(config)
        self.encoder = FNetEncoder(config)
        self.pooler = FNetPooler(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        """Initialize the weights"""
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def forward(self, input_ids, labels=None):
        embedding_output = self.embeddings(input_ids)
        sequence_output = self.encoder(embedding_output)
        pooled_output = self.pooler(sequence_output)
        pooled_output = self.dropout(pooled_output)
        logits = self.classifier(pooled_output)
        loss = None
        if labels is not None:
            loss_fct = nn.CrossEntropyLoss()
            loss = loss_fct(logits.view(-1, self.config.num_labels), labels.view(-1))
        return loss, logits


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# ---- 1. the Fourier sublayer by every route ----
x = torch.from_numpy(rng.standard_normal((3, SEQ, HIDDEN)).astype(np.float32))
paper = torch.fft.fft(torch.fft.fft(x, dim=-1), dim=-2).real
hf_default = torch.fft.fftn(x, dim=(1, 2)).real
hf_loop = fftn(x).real
hf_two_dim = torch.fft.fftn(x, dim=(-2, -1))
tpu = FNetBasicFourierTransform(FNetConfig(use_tpu_fourier_optimizations=True))
dft_out = tpu(x)[0]
F_seq = dft_matrix(SEQ).to(torch.complex64)
F_hid = dft_matrix(HIDDEN).to(torch.complex64)
chain = (F_seq @ x.to(torch.complex64) @ F_hid).real
print(f"buffers {sorted(name for name, _ in tpu.named_buffers())} dtype {tpu.dft_mat_seq.dtype}")
print(f"fourier out {tuple(paper.shape)} {paper.dtype} complex {hf_two_dim.dtype}")
err_routes = max(rel_err(hf_default, paper), rel_err(hf_loop, paper), rel_err(dft_out, paper), rel_err(chain, paper))
err_imag = rel_err(hf_two_dim.imag, (F_seq @ x.to(torch.complex64) @ F_hid).imag)
roundtrip = torch.fft.ifftn(torch.fft.fftn(x, dim=(-2, -1)), dim=(-2, -1))
err_inverse = (roundtrip.real - x).abs().max().item() + roundtrip.imag.abs().max().item()
# DC term is the plain sum
err_dc = abs(paper[:, 0, 0] - x.sum(dim=(1, 2))).max().item() / x.abs().sum().item()
print(f"routes rel err {err_routes:.2e} imag {err_imag:.2e} inverse {err_inverse:.2e} dc {err_dc:.2e}")

# ---- 2. gradients through .real of the FFT against the DFT route ----
weights = torch.from_numpy(rng.standard_normal((3, SEQ, HIDDEN)).astype(np.float32))
xa = x.clone().requires_grad_(True)
xb = x.clone().requires_grad_(True)
(torch.fft.fftn(xa, dim=(1, 2)).real * weights).sum().backward()
(tpu(xb)[0] * weights).sum().backward()
err_grad32 = rel_err(xa.grad, xb.grad)

x64 = x.double().requires_grad_(True)
w64 = weights.double()
g_fft = torch.autograd.grad((torch.fft.fft(torch.fft.fft(x64, dim=-1), dim=-2).real * w64).sum(), x64)[0]
F_seq64, F_hid64 = dft_matrix(SEQ), dft_matrix(HIDDEN)
g_dft = torch.autograd.grad(((F_seq64 @ x64.to(torch.complex128) @ F_hid64).real * w64).sum(), x64)[0]
# the adjoint of Re(F_s X F_h) is Re(F_s^T W F_h^T) (the DFT matrices are symmetric)
g_closed = (F_seq64 @ w64.to(torch.complex128) @ F_hid64).real
err_grad64 = max(rel_err(g_fft, g_dft), rel_err(g_fft, g_closed))
small = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
ok_gradcheck = torch.autograd.gradcheck(lambda t: torch.fft.fftn(t, dim=(1, 2)).real.pow(2).sum(-1), (small,))
print(f"grad rel err float32 {err_grad32:.2e} float64 {err_grad64:.2e} gradcheck {ok_gradcheck}")


# ---- 3. a classifier on "more a's than b's" ----
def make_batch(n):
    ids = rng.integers(4, VOCAB, size=(n, SEQ))
    n_a = rng.integers(0, 6, size=n)
    n_b = rng.integers(0, 6, size=n)
    n_b = np.where(n_a == n_b, n_b + 1, n_b)
    for i in range(n):
        pos = rng.permutation(np.arange(1, SEQ))[: n_a[i] + n_b[i]]
        ids[i, pos[: n_a[i]]] = TOK_A
        ids[i, pos[n_a[i]:]] = TOK_B
        length = rng.integers(SEQ - 3, SEQ + 1)
        ids[i, max(length, n_a[i] + n_b[i] + 1):] = PAD
    ids[:, 0] = CLS
    labels = (n_a > n_b).astype(np.int64)
    return torch.from_numpy(ids), torch.from_numpy(labels)


train_ids, train_labels = make_batch(512)
test_ids, test_labels = make_batch(256)
config = FNetConfig()
model = FNetForSequenceClassification(config)
print(f"params {sum(p.numel() for p in model.parameters())}")

no_decay = ["bias", "LayerNorm.weight"]
optimizer_grouped_parameters = [
    {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
    {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
]
optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=3e-3)
EPOCHS, BATCH = 12, 32
total_steps = EPOCHS * (len(train_ids) // BATCH)
warmup = total_steps // 10


def lr_lambda(current_step):
    if current_step < warmup:
        return float(current_step) / float(max(1, warmup))
    return max(0.0, float(total_steps - current_step) / float(max(1, total_steps - warmup)))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


@torch.no_grad()
def evaluate(m, ids, labels):
    m.eval()
    loss, logits = m(ids, labels)
    m.train()
    return loss.item(), (logits.argmax(-1) == labels).float().mean().item()


first_loss = None
for epoch in range(EPOCHS):
    perm = torch.randperm(len(train_ids))
    total = 0.0
    for i in range(0, len(train_ids), BATCH):
        idx = perm[i : i + BATCH]
        loss, _ = model(train_ids[idx], train_labels[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
    train_loss = total / len(train_ids)
    first_loss = train_loss if first_loss is None else first_loss
    if epoch % 4 == 3:
        test_loss, test_acc = evaluate(model, test_ids, test_labels)
        print(f"epoch {epoch} train loss {train_loss:.4f} test loss {test_loss:.4f} acc {test_acc:.4f}")

test_loss, test_acc = evaluate(model, test_ids, test_labels)

# the same weights with the TPU (DFT matrix) Fourier sublayer give the same logits
tpu_model = FNetForSequenceClassification(FNetConfig(use_tpu_fourier_optimizations=True))
missing = tpu_model.load_state_dict(model.state_dict(), strict=False)
print(f"load missing {len(missing.missing_keys)} unexpected {len(missing.unexpected_keys)}")
model.eval()
tpu_model.eval()
with torch.no_grad():
    logits_fft = model(test_ids)[1]
    logits_dft = tpu_model(test_ids)[1]
err_models = rel_err(logits_dft, logits_fft)
agree = (logits_fft.argmax(-1) == logits_dft.argmax(-1)).float().mean().item()
print(f"fft vs dft model logits rel err {err_models:.2e} argmax agree {agree:.4f}")

print(
    f"FINAL route_ok={float(err_routes < 1e-4 and err_imag < 1e-4 and err_inverse < 1e-4 and err_dc < 1e-5):.1f}"
    f" grad_ok={float(err_grad32 < 1e-4 and err_grad64 < 1e-10 and ok_gradcheck):.1f}"
    f" model_ok={float(err_models < 1e-3):.1f} agree={agree:.4f}"
    f" first_loss={first_loss:.4f} test_loss={test_loss:.4f} test_acc={test_acc:.4f}"
)
