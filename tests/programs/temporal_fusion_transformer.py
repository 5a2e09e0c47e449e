"""The Temporal Fusion Transformer (Lim et al.) built from pytorch-forecasting's sub-modules, at tiny
sizes, forecasting synthetic retail-like series with quantiles.

``GatedLinearUnit`` (``nn.Linear(input, 2 * hidden)`` then ``F.glu(x, dim=-1)``, ``init_weights``
over ``named_parameters()``), ``AddNorm`` with a trainable ``mask`` gated by ``nn.Sigmoid() * 2.0``,
``GateAddNorm``, ``TimeDistributedInterpolation`` (``F.interpolate(x.unsqueeze(1), size,
mode="linear", align_corners=True)``) inside ``ResampleNorm`` for an embedded static category, the
``GatedResidualNetwork`` (fc1, an optional bias-free context projection, ``nn.ELU``, fc2, dropout in
the gate, a linear skip projection when input and output sizes differ, ``LayerNorm``); the
``VariableSelectionNetwork`` (``nn.ModuleDict`` of ``nn.Linear(1, n)`` prescalers and per-variable
GRNs, ``torch.stack(var_outputs, dim=-1)`` weighted by ``nn.Softmax(dim=-1)`` of a flattened GRN with
the static context ``context[:, None].expand(-1, timesteps, -1)``); static covariate encoders giving
the variable-selection context, the LSTM encoder's ``(h0, c0)`` by ``.expand(lstm_layers, -1, -1)``
and the enrichment context; encoder/decoder ``nn.LSTM(batch_first=True)`` with the decoder started
from the encoder's state; ``InterpretableMultiHeadAttention`` (one ``v_layer`` shared by all heads,
per-head ``q_layers``/``k_layers`` in ``nn.ModuleList``, ``torch.bmm`` + ``masked_fill(mask, -1e9)``
in ``ScaledDotProductAttention``, heads ``torch.stack(heads, dim=2)`` then ``torch.mean(head,
dim=2)``) with pytorch-forecasting's causal decoder mask ``attend_step >= predict_step``; the quantile
loss ``torch.max((q - 1) * errors, q * errors)`` over (0.1, 0.5, 0.9); Adam with
``clip_grad_norm_(..., 0.1)``; interpretation by averaged selection weights and attention.

The data: 48 series made with NumPy (three store types, a weekly pattern whose shape depends on the
type, a level, a slow trend and noise that grows with the level), cut into encoder/decoder windows.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

ENCODER_LENGTH, DECODER_LENGTH = 14, 7
QUANTILES = (0.1, 0.5, 0.9)
N_SERIES, SERIES_LENGTH, N_TYPES = 48, 84, 3


def make_series():
    weekly = np.array([[1.0, 0.9, 0.9, 1.0, 1.2, 1.6, 1.4],
                       [1.1, 1.1, 1.0, 1.0, 1.0, 0.6, 0.5],
                       [0.8, 1.0, 1.2, 1.2, 1.0, 0.9, 0.9]])
    t = np.arange(SERIES_LENGTH)
    types = rng.integers(0, N_TYPES, size=N_SERIES)
    levels = rng.uniform(5.0, 20.0, size=N_SERIES)
    start_dow = rng.integers(0, 7, size=N_SERIES)
    values = np.zeros((N_SERIES, SERIES_LENGTH))
    dows = np.zeros((N_SERIES, SERIES_LENGTH), dtype=np.int64)
    for i in range(N_SERIES):
        dows[i] = (start_dow[i] + t) % 7
        trend = 1.0 + rng.uniform(-0.3, 0.3) * t / SERIES_LENGTH
        clean = levels[i] * trend * weekly[types[i], dows[i]]
        values[i] = clean + rng.normal(0.0, 0.08, size=SERIES_LENGTH) * clean
    return values.astype(np.float32), dows, types, levels.astype(np.float32)


def make_windows(values, dows, types, levels, starts):
    rows = []
    for i, s in starts:
        window = values[i, s:s + ENCODER_LENGTH + DECODER_LENGTH]
        rows.append((window, dows[i, s:s + ENCODER_LENGTH + DECODER_LENGTH], types[i], levels[i]))
    window = torch.tensor(np.stack([r[0] for r in rows]))
    scale = window[:, :ENCODER_LENGTH].mean(1, keepdim=True)  # pytorch-forecasting's EncoderNormalizer(center=False) idea
    time_idx = torch.arange(ENCODER_LENGTH + DECODER_LENGTH, dtype=torch.float32)
    return {
        "target": window / scale,
        "scale": scale,
        "dow": torch.tensor(np.stack([r[1] for r in rows])),
        "time_sin": torch.sin(2 * math.pi * time_idx / (ENCODER_LENGTH + DECODER_LENGTH)).expand(len(rows), -1),
        "store_type": torch.tensor([r[2] for r in rows], dtype=torch.long),
        "level": torch.log(torch.tensor([r[3] for r in rows])).unsqueeze(-1),
    }


class TimeDistributedInterpolation(nn.Module):
    def __init__(self, output_size, batch_first=False, trainable=False):
        super().__init__()
        self.output_size = output_size
        self.batch_first = batch_first
        self.trainable = trainable
        if self.trainable:
            self.mask = nn.Parameter(torch.zeros(self.output_size, dtype=torch.float32))
            self.gate = nn.Sigmoid()

    def interpolate(self, x):
        upsampled = F.interpolate(x.unsqueeze(1), self.output_size, mode="linear", align_corners=True).squeeze(1)
        if self.trainable:
            upsampled = upsampled * self.gate(self.mask.unsqueeze(0)) * 2.0
        return upsampled

    def forward(self, x):
        if len(x.size()) <= 2:
            return self.interpolate(x)
        x_reshape = x.contiguous().view(-1, x.size(-1))
        y = self.interpolate(x_reshape)
        if self.batch_first:
            y = y.contiguous().view(x.size(0), -1, y.size(-1))
        else:
            y = y.view(-1, x.size(1), y.size(-1))
        return y


class GatedLinearUnit(nn.Module):
    def __init__(self, input_size, hidden_size=None, dropout=None):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout is not None else dropout
        self.hidden_size = hidden_size or input_size
        self.fc = nn.Linear(input_size, self.hidden_size * 2)
        self.init_weights()

    def init_weights(self):
        for n, p in self.named_parameters():
            if "bias" in n:
                torch.nn.init.zeros_(p)
            elif "fc" in n:
                torch.nn.init.xavier_uniform_(p)

    def forward(self, x):
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.fc(x)
        x = F.glu(x, dim=-1)
        return x


class ResampleNorm(nn.Module):
    def __init__(self, input_size, output_size=None, trainable_add=True):
        super().__init__()
        self.input_size = input_size
        self.trainable_add = trainable_add
        self.output_size = output_size or input_size
        if self.input_size != self.output_size:
            self.resample = TimeDistributedInterpolation(self.output_size, batch_first=True, trainable=False)
        if self.trainable_add:
            self.mask = nn.Parameter(torch.zeros(self.output_size, dtype=torch.float))
            self.gate = nn.Sigmoid()
        self.norm = nn.LayerNorm(self.output_size)

    def forward(self, x):
        if self.input_size != self.output_size:
            x = self.resample(x)
        if self.trainable_add:
            x = x * self.gate(self.mask) * 2.0
        return self.norm(x)


class AddNorm(nn.Module):
    def __init__(self, input_size, skip_size=None, trainable_add=True):
        super().__init__()
        self.input_size = input_size
        self.trainable_add = trainable_add
        self.skip_size = skip_size or input_size
        if self.input_size != self.skip_size:
            self.resample = TimeDistributedInterpolation(self.input_size, batch_first=True, trainable=False)
        if self.trainable_add:
            self.mask = nn.Parameter(torch.zeros(self.input_size, dtype=torch.float))
            self.gate = nn.Sigmoid()
        self.norm = nn.LayerNorm(self.input_size)

    def forward(self, x, skip):
        if self.input_size != self.skip_size:
            skip = self.resample(skip)
        if self.trainable_add:
            skip = skip * self.gate(self.mask) * 2.0
        return self.norm(x + skip)


class GateAddNorm(nn.Module):
    def __init__(self, input_size, hidden_size=None, skip_size=None, trainable_add=False, dropout=None):
        super().__init__()
        self.hidden_size = hidden_size or input_size
        self.skip_size = skip_size or self.hidden_size
        self.glu = GatedLinearUnit(input_size, hidden_size=self.hidden_size, dropout=dropout)
        self.add_norm = AddNorm(self.hidden_size, skip_size=self.skip_size, trainable_add=trainable_add)

    def forward(self, x, skip):
        return self.add_norm(self.glu(x), skip)


class GatedResidualNetwork(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, dropout=0.1, context_size=None):
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        self.hidden_size = hidden_size
        self.context_size = context_size
        if self.input_size != self.output_size:
            self.skip_layer = nn.Linear(self.input_size, self.output_size)  # the paper's skip projection
        self.fc1 = nn.Linear(self.input_size, self.hidden_size)
        self.elu = nn.ELU()
        if self.context_size is not None:
            self.context = nn.Linear(self.context_size, self.hidden_size, bias=False)
        self.fc2 = nn.Linear(self.hidden_size, self.hidden_size)
        self.init_weights()
        self.gate_norm = GateAddNorm(self.hidden_size, skip_size=self.output_size, hidden_size=self.output_size,
                                     dropout=dropout, trainable_add=False)

    def init_weights(self):
        for name, p in self.named_parameters():
            if "bias" in name:
                torch.nn.init.zeros_(p)
            elif "fc1" in name or "fc2" in name:
                torch.nn.init.kaiming_normal_(p, a=0, mode="fan_in", nonlinearity="leaky_relu")
            elif "context" in name:
                torch.nn.init.xavier_uniform_(p)

    def forward(self, x, context=None, residual=None):
        if residual is None:
            residual = x
        if self.input_size != self.output_size:
            residual = self.skip_layer(residual)
        x = self.fc1(x)
        if context is not None:
            context = self.context(context)
            x = x + context
        x = self.elu(x)
        x = self.fc2(x)
        return self.gate_norm(x, residual)


class VariableSelectionNetwork(nn.Module):
    def __init__(self, input_sizes, hidden_size, input_embedding_flags=None, dropout=0.1, context_size=None,
                 prescalers=None):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_sizes = input_sizes
        self.input_embedding_flags = input_embedding_flags or {}
        self.dropout = dropout
        self.context_size = context_size
        self.flattened_grn = GatedResidualNetwork(self.input_size_total, min(self.hidden_size, self.num_inputs),
                                                  self.num_inputs, self.dropout, self.context_size)
        self.single_variable_grns = nn.ModuleDict()
        self.prescalers = nn.ModuleDict()
        for name, input_size in self.input_sizes.items():
            if self.input_embedding_flags.get(name, False):
                self.single_variable_grns[name] = ResampleNorm(input_size, self.hidden_size)
            else:
                self.single_variable_grns[name] = GatedResidualNetwork(input_size, min(input_size, self.hidden_size),
                                                                       output_size=self.hidden_size, dropout=self.dropout)
            if name in (prescalers or {}):
                self.prescalers[name] = prescalers[name]
        self.softmax = nn.Softmax(dim=-1)

    @property
    def input_size_total(self):
        return sum(self.input_sizes.values())

    @property
    def num_inputs(self):
        return len(self.input_sizes)

    def forward(self, x, context=None):
        var_outputs = []
        weight_inputs = []
        for name in self.input_sizes.keys():
            variable_embedding = x[name]
            if name in self.prescalers:
                variable_embedding = self.prescalers[name](variable_embedding)
            weight_inputs.append(variable_embedding)
            var_outputs.append(self.single_variable_grns[name](variable_embedding))
        var_outputs = torch.stack(var_outputs, dim=-1)
        flat_embedding = torch.cat(weight_inputs, dim=-1)
        sparse_weights = self.flattened_grn(flat_embedding, context)
        sparse_weights = self.softmax(sparse_weights).unsqueeze(-2)
        outputs = var_outputs * sparse_weights
        outputs = outputs.sum(dim=-1)
        return outputs, sparse_weights


class ScaledDotProductAttention(nn.Module):
    def __init__(self, dropout=None, scale=True):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout) if dropout is not None else dropout
        self.softmax = nn.Softmax(dim=2)
        self.scale = scale

    def forward(self, q, k, v, mask=None):
        attn = torch.bmm(q, k.permute(0, 2, 1))
        if self.scale:
            dimension = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()
            attn = attn / dimension
        if mask is not None:
            attn = attn.masked_fill(mask, -1e9)
        attn = self.softmax(attn)
        if self.dropout is not None:
            attn = self.dropout(attn)
        output = torch.bmm(attn, v)
        return output, attn


class InterpretableMultiHeadAttention(nn.Module):
    def __init__(self, n_head, d_model, dropout=0.0):
        super().__init__()
        self.n_head = n_head
        self.d_model = d_model
        self.d_k = self.d_q = self.d_v = d_model // n_head
        self.dropout = nn.Dropout(p=dropout)
        self.v_layer = nn.Linear(self.d_model, self.d_v)
        self.q_layers = nn.ModuleList([nn.Linear(self.d_model, self.d_q) for _ in range(self.n_head)])
        self.k_layers = nn.ModuleList([nn.Linear(self.d_model, self.d_k) for _ in range(self.n_head)])
        self.attention = ScaledDotProductAttention()
        self.w_h = nn.Linear(self.d_v, self.d_model, bias=False)
        self.init_weights()

    def init_weights(self):
        for name, p in self.named_parameters():
            if "bias" not in name:
                torch.nn.init.xavier_uniform_(p)
            else:
                torch.nn.init.zeros_(p)

    def forward(self, q, k, v, mask=None):
        heads = []
        attns = []
        vs = self.v_layer(v)
        for i in range(self.n_head):
            qs = self.q_layers[i](q)
            ks = self.k_layers[i](k)
            head, attn = self.attention(qs, ks, vs, mask)
            head_dropout = self.dropout(head)
            heads.append(head_dropout)
            attns.append(attn)
        head = torch.stack(heads, dim=2) if self.n_head > 1 else heads[0]
        attn = torch.stack(attns, dim=2)
        outputs = torch.mean(head, dim=2) if self.n_head > 1 else head
        outputs = self.w_h(outputs)
        outputs = self.dropout(outputs)
        return outputs, attn


class TemporalFusionTransformer(nn.Module):
    def __init__(self, hidden_size=16, hidden_continuous_size=8, attention_head_size=4, lstm_layers=1,
                 dropout=0.1, output_size=len(QUANTILES)):
        super().__init__()
        self.lstm_layers = lstm_layers
        self.embeddings = nn.ModuleDict({"store_type": nn.Embedding(N_TYPES, 4), "dow": nn.Embedding(7, 3)})
        # continuous variables are scaled up by one Linear(1, n) each, shared by the selection networks
        self.prescalers = nn.ModuleDict({name: nn.Linear(1, hidden_continuous_size)
                                         for name in ("level", "target", "time_sin")})
        self.static_variable_selection = VariableSelectionNetwork(
            {"store_type": 4, "level": hidden_continuous_size}, hidden_size,
            input_embedding_flags={"store_type": True}, dropout=dropout, prescalers=self.prescalers)
        encoder_sizes = {"target": hidden_continuous_size, "time_sin": hidden_continuous_size, "dow": 3}
        decoder_sizes = {"time_sin": hidden_continuous_size, "dow": 3}
        self.encoder_variable_selection = VariableSelectionNetwork(
            encoder_sizes, hidden_size, dropout=dropout, context_size=hidden_size, prescalers=self.prescalers)
        self.decoder_variable_selection = VariableSelectionNetwork(
            decoder_sizes, hidden_size, dropout=dropout, context_size=hidden_size, prescalers=self.prescalers)
        self.static_context_variable_selection = GatedResidualNetwork(hidden_size, hidden_size, hidden_size, dropout)
        self.static_context_initial_hidden_lstm = GatedResidualNetwork(hidden_size, hidden_size, hidden_size, dropout)
        self.static_context_initial_cell_lstm = GatedResidualNetwork(hidden_size, hidden_size, hidden_size, dropout)
        self.static_context_enrichment = GatedResidualNetwork(hidden_size, hidden_size, hidden_size, dropout)
        self.lstm_encoder = nn.LSTM(hidden_size, hidden_size, num_layers=lstm_layers, batch_first=True)
        self.lstm_decoder = nn.LSTM(hidden_size, hidden_size, num_layers=lstm_layers, batch_first=True)
        self.post_lstm_gate_encoder = GateAddNorm(hidden_size, dropout=dropout)
        self.post_lstm_gate_decoder = self.post_lstm_gate_encoder
        self.post_lstm_add_norm_encoder = AddNorm(hidden_size, trainable_add=False)
        self.post_lstm_add_norm_decoder = self.post_lstm_add_norm_encoder
        self.static_enrichment = GatedResidualNetwork(hidden_size, hidden_size, hidden_size, dropout,
                                                      context_size=hidden_size)
        self.multihead_attn = InterpretableMultiHeadAttention(d_model=hidden_size, n_head=attention_head_size,
                                                              dropout=dropout)
        self.post_attn_gate_norm = GateAddNorm(hidden_size, dropout=dropout, trainable_add=False)
        self.pos_wise_ff = GatedResidualNetwork(hidden_size, hidden_size, hidden_size, dropout=dropout)
        self.pre_output_gate_norm = GateAddNorm(hidden_size, dropout=None, trainable_add=False)
        self.output_layer = nn.Linear(hidden_size, output_size)

    @staticmethod
    def expand_static_context(context, timesteps):
        return context[:, None].expand(-1, timesteps, -1)

    @staticmethod
    def get_attention_mask(encoder_lengths, decoder_length):
        # a decoder step attends to the encoder and to decoder steps before it, as pytorch-forecasting masks
        attend_step = torch.arange(decoder_length)
        predict_step = torch.arange(0, decoder_length)[:, None]
        decoder_mask = (attend_step >= predict_step).unsqueeze(0).expand(encoder_lengths.size(0), -1, -1)
        encoder_mask = torch.arange(int(encoder_lengths.max())).unsqueeze(0) >= encoder_lengths.unsqueeze(-1)
        return torch.cat((encoder_mask.unsqueeze(1).expand(-1, decoder_length, -1), decoder_mask), dim=2)

    def forward(self, batch):
        batch_size = batch["target"].size(0)
        timesteps = ENCODER_LENGTH + DECODER_LENGTH
        static = {"store_type": self.embeddings["store_type"](batch["store_type"]), "level": batch["level"]}
        static_embedding, static_weights = self.static_variable_selection(static)
        static_context_variable_selection = self.expand_static_context(
            self.static_context_variable_selection(static_embedding), timesteps)

        dow = self.embeddings["dow"](batch["dow"])
        time_sin = batch["time_sin"].unsqueeze(-1)
        encoder_inputs = {"target": batch["target"][:, :ENCODER_LENGTH].unsqueeze(-1),
                          "time_sin": time_sin[:, :ENCODER_LENGTH], "dow": dow[:, :ENCODER_LENGTH]}
        decoder_inputs = {"time_sin": time_sin[:, ENCODER_LENGTH:], "dow": dow[:, ENCODER_LENGTH:]}
        embeddings_varying_encoder, encoder_sparse_weights = self.encoder_variable_selection(
            encoder_inputs, static_context_variable_selection[:, :ENCODER_LENGTH])
        embeddings_varying_decoder, decoder_sparse_weights = self.decoder_variable_selection(
            decoder_inputs, static_context_variable_selection[:, ENCODER_LENGTH:])

        input_hidden = self.static_context_initial_hidden_lstm(static_embedding).expand(self.lstm_layers, -1, -1)
        input_cell = self.static_context_initial_cell_lstm(static_embedding).expand(self.lstm_layers, -1, -1)
        encoder_output, (hidden, cell) = self.lstm_encoder(embeddings_varying_encoder, (input_hidden, input_cell))
        decoder_output, _ = self.lstm_decoder(embeddings_varying_decoder, (hidden, cell))

        lstm_output_encoder = self.post_lstm_gate_encoder(encoder_output, embeddings_varying_encoder)
        lstm_output_decoder = self.post_lstm_gate_decoder(decoder_output, embeddings_varying_decoder)
        lstm_output = torch.cat([lstm_output_encoder, lstm_output_decoder], dim=1)

        static_context_enrichment = self.static_context_enrichment(static_embedding)
        attn_input = self.static_enrichment(lstm_output, self.expand_static_context(static_context_enrichment, timesteps))
        encoder_lengths = torch.full((batch_size,), ENCODER_LENGTH, dtype=torch.long)
        attn_output, attn_output_weights = self.multihead_attn(
            q=attn_input[:, ENCODER_LENGTH:], k=attn_input, v=attn_input,
            mask=self.get_attention_mask(encoder_lengths, DECODER_LENGTH))
        attn_output = self.post_attn_gate_norm(attn_output, attn_input[:, ENCODER_LENGTH:])
        output = self.pos_wise_ff(attn_output)
        output = self.pre_output_gate_norm(output, lstm_output[:, ENCODER_LENGTH:])
        output = self.output_layer(output)
        return {"prediction": output, "attention": attn_output_weights, "static_weights": static_weights,
                "encoder_weights": encoder_sparse_weights, "decoder_weights": decoder_sparse_weights}


def quantile_loss(y_pred, target, quantiles=QUANTILES):
    losses = []
    for i, q in enumerate(quantiles):
        errors = target - y_pred[..., i]
        losses.append(torch.max((q - 1) * errors, q * errors).unsqueeze(-1))
    return 2 * torch.cat(losses, dim=2)


values, dows, types, levels = make_series()
train_end = SERIES_LENGTH - DECODER_LENGTH
train_starts = [(i, s) for i in range(N_SERIES) for s in range(0, train_end - ENCODER_LENGTH - DECODER_LENGTH + 1, 3)]
test_starts = [(i, SERIES_LENGTH - ENCODER_LENGTH - DECODER_LENGTH) for i in range(N_SERIES)]
train = make_windows(values, dows, types, levels, train_starts)
test = make_windows(values, dows, types, levels, test_starts)
print(f"windows train {len(train_starts)} test {len(test_starts)} encoder {ENCODER_LENGTH} decoder {DECODER_LENGTH}")

model = TemporalFusionTransformer()
n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"parameters {n_params} attention mask {tuple(model.get_attention_mask(torch.tensor([ENCODER_LENGTH]), DECODER_LENGTH).shape)}")
gate = F.glu(torch.arange(8.0).view(2, 4), dim=-1)
print("glu halves", gate.tolist())

optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
EPOCHS, BATCH = 6, 64
n_train = len(train_starts)
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(n_train)
    total, norms = 0.0, []
    for start in range(0, n_train - BATCH + 1, BATCH):
        index = order[start:start + BATCH]
        batch = {k: v[index] for k, v in train.items()}
        out = model(batch)
        loss = quantile_loss(out["prediction"], batch["target"][:, ENCODER_LENGTH:]).mean()
        optimizer.zero_grad()
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1).item())
        optimizer.step()
        total += loss.item()
    steps = n_train // BATCH
    print(f"epoch {epoch} quantile loss {total / steps:.4f} grad norm before clipping {sum(norms) / len(norms):.3f}")

model.eval()
with torch.no_grad():
    out = model(test)
    target = test["target"][:, ENCODER_LENGTH:]
    pred = out["prediction"]
    test_loss = quantile_loss(pred, target).mean().item()
    scale = test["scale"]
    median = pred[..., 1] * scale
    actual = target * scale
    mae = (median - actual).abs().mean().item()
    naive = test["target"][:, ENCODER_LENGTH - 7:ENCODER_LENGTH] * scale  # last week repeated
    naive_mae = (naive - actual).abs().mean().item()
    coverage = ((actual >= pred[..., 0] * scale) & (actual <= pred[..., 2] * scale)).float().mean().item()
    crossing = (pred[..., 0] > pred[..., 2]).float().mean().item()
    attention = out["attention"].mean(dim=(0, 1, 2))  # over batch, decoder steps and heads
    future_attention = attention[ENCODER_LENGTH:].sum().item()
    lag7 = attention[ENCODER_LENGTH - 7].item()
    static_weights = out["static_weights"].squeeze(-2).mean(0)
    encoder_weights = out["encoder_weights"].squeeze(-2).mean(dim=(0, 1))
print("attention rows sum to one", torch.allclose(out["attention"].sum(-1), torch.ones(1)),
      "causal", bool((out["attention"][..., ENCODER_LENGTH:].transpose(1, 2).triu() == 0).all()))
print("static variable importance", dict(zip(("store_type", "level"), [round(w, 3) for w in static_weights.tolist()])))
print("encoder variable importance", dict(zip(("target", "time_sin", "dow"), [round(w, 3) for w in encoder_weights.tolist()])))
print(f"attention to the decoder {future_attention:.4f} to the same weekday last week {lag7:.4f}")
print(f"FINAL quantile_loss={test_loss:.4f} mae={mae:.4f} naive_mae={naive_mae:.4f} coverage80={coverage:.4f} "
      f"crossing={crossing:.4f}")
