"""OpenAI whisper's model.py and audio.py pieces at toy size, trained to transcribe synthetic tone sequences.

audio.py: ``pad_or_trim`` on tensors (``index_select`` + ``F.pad`` with the flattened reversed pad
widths), mel filters built in NumPy, ``log_mel_spectrogram`` (``torch.hann_window(N_FFT)``,
``torch.stft(..., window=window, return_complex=True)``, ``stft[..., :-1].abs() ** 2``, ``filters @
magnitudes``, ``torch.clamp(mel_spec, min=1e-10).log10()``, ``torch.maximum(log_spec, log_spec.max() -
8.0)``, ``(log_spec + 4.0) / 4.0``). model.py: ``ModelDimensions`` dataclass, ``LayerNorm``/``Linear``/
``Conv1d`` subclasses casting to ``x.dtype`` (``super().forward(x.float()).type(x.dtype)``,
``F.linear(x, self.weight.to(x.dtype), ...)``, ``Conv1d._conv_forward`` overridden), ``sinusoids``
(``torch.exp(-log_timescale_increment * torch.arange(channels // 2))``, ``[:, np.newaxis]``),
``MultiHeadAttention`` through ``scaled_dot_product_attention(is_causal=...)`` and, with ``use_sdpa``
off, ``(q * scale) @ (k * scale).transpose(-1, -2)`` with ``scale = (n_state // n_head) ** -0.25`` plus
``mask[:n_ctx, :n_ctx]``, the causal ``torch.empty(n_ctx, n_ctx).fill_(-np.inf).triu_(1)`` buffer with
``persistent=False``, ``alignment_heads`` by ``all_heads.to_sparse()``, tied output
``x @ torch.transpose(self.token_embedding.weight.to(x.dtype), 0, 1)``, and ``install_kv_cache_hooks``
(forward hooks on the key/value ``Linear``s returning ``torch.cat([cache[module], output], dim=1)``,
``self.decoder.apply(install_hooks)``); greedy decoding with the cache as decoding.py's
``PyTorchInference`` does (``tokens[:, -1:]`` after the first step, ``offset`` from the cache),
checked against decoding without it and against the non-SDPA attention.
"""

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SAMPLE_RATE = 1600
N_FFT = 64
HOP_LENGTH = 32
N_SAMPLES = 1024
N_FRAMES = N_SAMPLES // HOP_LENGTH
N_MELS = 16


def pad_or_trim(array, length: int = N_SAMPLES, *, axis: int = -1):
    if torch.is_tensor(array):
        if array.shape[axis] > length:
            array = array.index_select(dim=axis, index=torch.arange(length, device=array.device))

        if array.shape[axis] < length:
            pad_widths = [(0, 0)] * array.ndim
            pad_widths[axis] = (0, length - array.shape[axis])
            array = F.pad(array, [pad for sizes in pad_widths[::-1] for pad in sizes])
    else:
        if array.shape[axis] > length:
            array = array.take(indices=range(length), axis=axis)

        if array.shape[axis] < length:
            pad_widths = [(0, 0)] * array.ndim
            pad_widths[axis] = (0, length - array.shape[axis])
            array = np.pad(array, pad_widths)

    return array


def mel_filters_numpy(sr, n_fft, n_mels):
    """Triangular filters evenly spaced on the HTK mel scale (whisper ships librosa's in an .npz)."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    filters = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for m in range(n_mels):
        left, centre, right = mel_points[m], mel_points[m + 1], mel_points[m + 2]
        rising = (fft_freqs - left) / (centre - left)
        falling = (right - fft_freqs) / (right - centre)
        filters[m] = np.maximum(0, np.minimum(rising, falling))
    filters *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]  # slaney-style area normalisation
    return filters


MEL_FILTERS = mel_filters_numpy(SAMPLE_RATE, N_FFT, N_MELS)


def mel_filters(device, n_mels: int) -> torch.Tensor:
    assert n_mels == N_MELS, f"Unsupported n_mels: {n_mels}"
    return torch.from_numpy(MEL_FILTERS).to(device)


def log_mel_spectrogram(audio, n_mels: int = N_MELS, padding: int = 0, device=None):
    if not torch.is_tensor(audio):
        audio = torch.from_numpy(audio)

    if device is not None:
        audio = audio.to(device)
    if padding > 0:
        audio = F.pad(audio, (0, padding))
    window = torch.hann_window(N_FFT).to(audio.device)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2

    filters = mel_filters(audio.device, n_mels)
    mel_spec = filters @ magnitudes

    log_spec = torch.clamp(mel_spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    log_spec = (log_spec + 4.0) / 4.0
    return log_spec


@dataclass
class ModelDimensions:
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


class LayerNorm(nn.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).type(x.dtype)


class Linear(nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        return F.linear(
            x,
            self.weight.to(x.dtype),
            None if self.bias is None else self.bias.to(x.dtype),
        )


class Conv1d(nn.Conv1d):
    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:  # noqa: UP045
        return super()._conv_forward(
            x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype)
        )


def sinusoids(length, channels, max_timescale=10000):
    """Returns sinusoids for positional embedding"""
    assert channels % 2 == 0
    log_timescale_increment = np.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, np.newaxis] * inv_timescales[np.newaxis, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)


class MultiHeadAttention(nn.Module):
    use_sdpa = True

    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = Linear(n_state, n_state)
        self.key = Linear(n_state, n_state, bias=False)
        self.value = Linear(n_state, n_state)
        self.out = Linear(n_state, n_state)

    def forward(self, x: Tensor, xa: Optional[Tensor] = None, mask: Optional[Tensor] = None,  # noqa: UP045
                kv_cache: Optional[dict] = None):  # noqa: UP045
        q = self.query(x)

        if kv_cache is None or xa is None or self.key not in kv_cache:
            # hooks, if installed (i.e. kv_cache is not None), will prepend the cached kv tensors;
            # otherwise, perform key/value projections for self- or cross-attention as usual.
            k = self.key(x if xa is None else xa)
            v = self.value(x if xa is None else xa)
        else:
            # for cross-attention, calculate keys and values once and reuse in subsequent calls.
            k = kv_cache[self.key]
            v = kv_cache[self.value]

        wv, qk = self.qkv_attention(q, k, v, mask)
        return self.out(wv), qk

    def qkv_attention(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None):  # noqa: UP045
        n_batch, n_ctx, n_state = q.shape
        scale = (n_state // self.n_head) ** -0.25
        q = q.view(*q.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
        k = k.view(*k.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
        v = v.view(*v.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)

        if MultiHeadAttention.use_sdpa:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=mask is not None and n_ctx > 1)
            out = a.permute(0, 2, 1, 3).flatten(start_dim=2)
            qk = None
        else:
            qk = (q * scale) @ (k * scale).transpose(-1, -2)
            if mask is not None:
                qk = qk + mask[:n_ctx, :n_ctx]
            qk = qk.float()

            w = F.softmax(qk, dim=-1).to(q.dtype)
            out = (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2)
            qk = qk.detach()

        return out, qk


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False):
        super().__init__()

        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = LayerNorm(n_state)

        self.cross_attn = MultiHeadAttention(n_state, n_head) if cross_attention else None
        self.cross_attn_ln = LayerNorm(n_state) if cross_attention else None

        n_mlp = n_state * 4
        self.mlp = nn.Sequential(Linear(n_state, n_mlp), nn.GELU(), Linear(n_mlp, n_state))
        self.mlp_ln = LayerNorm(n_state)

    def forward(self, x: Tensor, xa: Optional[Tensor] = None, mask: Optional[Tensor] = None,  # noqa: UP045
                kv_cache: Optional[dict] = None):  # noqa: UP045
        x = x + self.attn(self.attn_ln(x), mask=mask, kv_cache=kv_cache)[0]
        if self.cross_attn:
            x = x + self.cross_attn(self.cross_attn_ln(x), xa, kv_cache=kv_cache)[0]
        x = x + self.mlp(self.mlp_ln(x))
        return x


class AudioEncoder(nn.Module):
    def __init__(self, n_mels: int, n_ctx: int, n_state: int, n_head: int, n_layer: int):
        super().__init__()
        self.conv1 = Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(n_ctx, n_state))

        self.blocks = nn.ModuleList(
            [ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer)]
        )
        self.ln_post = LayerNorm(n_state)

    def forward(self, x: Tensor):
        """x : torch.Tensor, shape = (batch_size, n_mels, n_ctx) the mel spectrogram of the audio"""
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x))
        x = x.permute(0, 2, 1)

        assert x.shape[1:] == self.positional_embedding.shape, "incorrect audio shape"
        x = (x + self.positional_embedding).to(x.dtype)

        for block in self.blocks:
            x = block(x)

        x = self.ln_post(x)
        return x


class TextDecoder(nn.Module):
    def __init__(self, n_vocab: int, n_ctx: int, n_state: int, n_head: int, n_layer: int):
        super().__init__()

        self.token_embedding = nn.Embedding(n_vocab, n_state)
        self.positional_embedding = nn.Parameter(torch.empty(n_ctx, n_state))

        self.blocks = nn.ModuleList(
            [ResidualAttentionBlock(n_state, n_head, cross_attention=True) for _ in range(n_layer)]
        )
        self.ln = LayerNorm(n_state)

        mask = torch.empty(n_ctx, n_ctx).fill_(-np.inf).triu_(1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor, xa: Tensor, kv_cache: Optional[dict] = None):  # noqa: UP045
        offset = next(iter(kv_cache.values())).shape[1] if kv_cache else 0
        x = self.token_embedding(x) + self.positional_embedding[offset: offset + x.shape[-1]]
        x = x.to(xa.dtype)

        for block in self.blocks:
            x = block(x, xa, mask=self.mask, kv_cache=kv_cache)

        x = self.ln(x)
        logits = (x @ torch.transpose(self.token_embedding.weight.to(x.dtype), 0, 1)).float()

        return logits


class Whisper(nn.Module):
    def __init__(self, dims: ModelDimensions):
        super().__init__()
        self.dims = dims
        self.encoder = AudioEncoder(
            self.dims.n_mels, self.dims.n_audio_ctx, self.dims.n_audio_state,
            self.dims.n_audio_head, self.dims.n_audio_layer,
        )
        self.decoder = TextDecoder(
            self.dims.n_vocab, self.dims.n_text_ctx, self.dims.n_text_state,
            self.dims.n_text_head, self.dims.n_text_layer,
        )
        # use the last half among the decoder layers for time alignment by default;
        all_heads = torch.zeros(self.dims.n_text_layer, self.dims.n_text_head, dtype=torch.bool)
        all_heads[self.dims.n_text_layer // 2:] = True
        self.register_buffer("alignment_heads", all_heads.to_sparse(), persistent=False)

    def embed_audio(self, mel: torch.Tensor):
        return self.encoder(mel)

    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor):
        return self.decoder(tokens, audio_features)

    def forward(self, mel: torch.Tensor, tokens: torch.Tensor):
        return self.decoder(tokens, self.encoder(mel))

    @property
    def device(self):
        return next(self.parameters()).device

    def install_kv_cache_hooks(self, cache: Optional[dict] = None):  # noqa: UP045
        cache = {**cache} if cache is not None else {}
        hooks = []

        def save_to_cache(module, _, output):
            if module not in cache or output.shape[1] > self.dims.n_text_ctx:
                # save as-is, for the first token or cross attention
                cache[module] = output
            else:
                cache[module] = torch.cat([cache[module], output], dim=1).detach()
            return cache[module]

        def install_hooks(layer: nn.Module):
            if isinstance(layer, MultiHeadAttention):
                hooks.append(layer.key.register_forward_hook(save_to_cache))
                hooks.append(layer.value.register_forward_hook(save_to_cache))

        self.decoder.apply(install_hooks)
        return cache, hooks


# the toy task: two "words", each a tone of one of eight pitches, to be transcribed in order
N_WORDS = 2
N_TONES = 8
SOT, EOT = N_TONES, N_TONES + 1
TONE_HZ = np.linspace(80, 720, N_TONES)


def make_utterances(n):
    words = rng.integers(0, N_TONES, size=(n, N_WORDS))
    t = np.arange(N_SAMPLES // N_WORDS) / SAMPLE_RATE
    audio = np.zeros((n, N_SAMPLES - 64), dtype=np.float32)  # short, so pad_or_trim pads
    seg = (N_SAMPLES - 64) // N_WORDS
    for i in range(n):
        for j, w in enumerate(words[i]):
            amplitude = rng.uniform(0.3, 1.0)
            phase = rng.uniform(0, 2 * np.pi)
            audio[i, j * seg:(j + 1) * seg] = amplitude * np.sin(2 * np.pi * TONE_HZ[w] * t[:seg] + phase)
    audio += rng.normal(0, 0.1, size=audio.shape).astype(np.float32)
    tokens = np.concatenate([np.full((n, 1), SOT), words, np.full((n, 1), EOT)], axis=1)
    return torch.from_numpy(audio), torch.from_numpy(tokens)


train_audio, train_tokens = make_utterances(320)
test_audio, test_tokens = make_utterances(64)
train_mel = log_mel_spectrogram(pad_or_trim(train_audio))
test_mel = log_mel_spectrogram(pad_or_trim(test_audio))
print(f"mel {tuple(train_mel.shape)}, range [{train_mel.min().item():.2f}, {train_mel.max().item():.2f}]")

dims = ModelDimensions(n_mels=N_MELS, n_audio_ctx=N_FRAMES // 2, n_audio_state=32, n_audio_head=4,
                       n_audio_layer=1, n_vocab=N_TONES + 2, n_text_ctx=N_WORDS + 2, n_text_state=32,
                       n_text_head=4, n_text_layer=2)
model = Whisper(dims)
nn.init.normal_(model.decoder.positional_embedding, std=0.02)
print(f"parameters {sum(p.numel() for p in model.parameters())}, "
      f"state_dict keys {len(model.state_dict())}, alignment heads {model.alignment_heads.to_dense().sum().item()}")

opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
BATCH = 32
STEPS = 300
for step in range(1, STEPS + 1):
    idx = torch.randint(0, len(train_mel), (BATCH,))
    tokens = train_tokens[idx]
    logits = model(train_mel[idx], tokens[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, dims.n_vocab), tokens[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 75 == 0:
        print(f"step {step}: loss {loss.item():.4f}")


@torch.no_grad()
def greedy_decode(model, mel, use_cache):
    audio_features = model.embed_audio(mel)
    tokens = torch.full((mel.shape[0], 1), SOT, dtype=torch.long)
    initial_token_length = tokens.shape[-1]
    kv_cache, hooks = model.install_kv_cache_hooks() if use_cache else (None, [])
    for _ in range(N_WORDS + 1):
        if kv_cache is not None and tokens.shape[-1] > initial_token_length:
            logits = model.decoder(tokens[:, -1:], audio_features, kv_cache=kv_cache)
        else:
            logits = model.decoder(tokens, audio_features, kv_cache=kv_cache)
        next_tokens = logits[:, -1].argmax(dim=-1)
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=-1)
    for hook in hooks:
        hook.remove()
    return tokens, (len(kv_cache) if kv_cache is not None else 0)


model.eval()
with torch.no_grad():
    test_logits = model(test_mel, test_tokens[:, :-1])
    test_loss = F.cross_entropy(test_logits.reshape(-1, dims.n_vocab), test_tokens[:, 1:].reshape(-1)).item()
    MultiHeadAttention.use_sdpa = False
    manual_logits = model(test_mel, test_tokens[:, :-1])
    MultiHeadAttention.use_sdpa = True
sdpa_agrees = int(torch.allclose(test_logits, manual_logits, atol=1e-4))

cached, n_cached = greedy_decode(model, test_mel, use_cache=True)
uncached, _ = greedy_decode(model, test_mel, use_cache=False)
word_acc = (cached[:, 1:1 + N_WORDS] == test_tokens[:, 1:1 + N_WORDS]).float().mean().item()
seq_acc = (cached[:, 1:] == test_tokens[:, 1:]).all(dim=1).float().mean().item()
cache_agrees = int(torch.equal(cached, uncached))
print(f"greedy {tuple(cached.shape)}, cached modules {n_cached}, sdpa equals manual attention {sdpa_agrees}, "
      f"cache equals recompute {cache_agrees}")
print(f"FINAL test_loss={test_loss:.4f} word_acc={word_acc:.4f} seq_acc={seq_acc:.4f} "
      f"cache_agrees={cache_agrees} sdpa_agrees={sdpa_agrees}")
