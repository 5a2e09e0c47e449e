"""DiffWave (Kong et al., ICLR 2021) in the layout of lmnt-com/diffwave (``params.py``, ``model.py``,
``learner.py``, ``inference.py``) at toy size, as a mel-conditioned vocoder of synthetic sine "audio".

``params``: an ``AttrDict`` with ``noise_schedule=np.linspace(1e-4, 0.05, 50).tolist()`` and the six-step
``inference_noise_schedule``. ``model``: a ``Conv1d`` helper that ``nn.init.kaiming_normal_``-s its weight,
``DiffusionEmbedding`` whose sin/cos table (``steps * 10.0**(dims * 4.0 / 63.0)``) is built in ``__init__`` and
registered with ``persistent=False``, indexed for integer steps and ``_lerp_embedding``-ed (``torch.floor``/
``torch.ceil``) for fractional ones, ``silu`` as ``x * torch.sigmoid(x)``; ``SpectrogramUpsampler`` by two
``nn.ConvTranspose2d(1, 1, [3, 32], stride=[1, 16], padding=[1, 8])`` with ``F.leaky_relu(x, 0.4)`` between
``torch.unsqueeze``/``torch.squeeze``; ``ResidualBlock``s with ``dilation=2**(i % dilation_cycle_length)``,
``torch.chunk(y, 2, dim=1)`` into the gate ``torch.sigmoid(gate) * torch.tanh(filter)``, ``(x + residual) / sqrt(2.0)``
and skips summed then divided by ``sqrt(len(self.residual_layers))``; the zero-initialised output projection.
``learner``: ``noise_level = np.cumprod(1 - beta)`` as a float32 tensor, ``torch.randint`` steps,
``noise_scale**0.5 * audio + (1.0 - noise_scale)**0.5 * noise``, ``nn.L1Loss``, ``param.grad = None`` zeroing,
``torch.cuda.amp.autocast(enabled=False)`` and ``torch.cuda.amp.GradScaler(enabled=False)`` around
``scale(loss).backward()``/``unscale_``/``clip_grad_norm_(..., 1e9)``/``step``/``update``, a ``state_dict`` round trip
(the non-persistent table left out). ``inference``: the fast schedule's ``T`` aligned to fractional training steps
by the ``twiddle`` interpolation of ``talpha_cum``, the reverse loop with NumPy-scalar ``c1``/``c2``, ``sigma`` noise
and ``torch.clamp(audio, -1.0, 1.0)``, both the full and the fast schedule.

Checked: the L1 loss falling; the integer and the ``float()`` (lerp) embedding routes agreeing; the generated
audio's magnitude spectrum (``torch.fft.rfft``) closer to the target's than the starting noise's, for both schedules.
"""

import os
from math import sqrt

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class AttrDict(dict):
    def __init__(self, *args, **kwargs):
        super(AttrDict, self).__init__(*args, **kwargs)  # noqa: UP008
        self.__dict__ = self

    def override(self, attrs):
        if isinstance(attrs, dict):
            self.__dict__.update(**attrs)
        elif isinstance(attrs, (list, tuple, set)):
            for attr in attrs:
                self.override(attr)
        elif attrs is not None:
            raise NotImplementedError
        return self


params = AttrDict(
    # Training params
    batch_size=8,
    learning_rate=2e-3,
    max_grad_norm=None,
    # Data params
    sample_rate=4096,
    n_mels=8,
    hop_samples=256,  # the upsampler's two stride-16 layers
    # Model params
    residual_layers=6,
    residual_channels=16,
    dilation_cycle_length=3,
    unconditional=False,
    noise_schedule=np.linspace(1e-4, 0.05, 50).tolist(),
    inference_noise_schedule=[0.0001, 0.001, 0.01, 0.05, 0.2, 0.5],
    fp16=False,
)

# ------------------------------------------------------------------------------------------- model
Linear = nn.Linear
ConvTranspose2d = nn.ConvTranspose2d


def Conv1d(*args, **kwargs):
    layer = nn.Conv1d(*args, **kwargs)
    nn.init.kaiming_normal_(layer.weight)
    return layer


def silu(x):
    return x * torch.sigmoid(x)


class DiffusionEmbedding(nn.Module):
    def __init__(self, max_steps):
        super().__init__()
        self.register_buffer("embedding", self._build_embedding(max_steps), persistent=False)
        self.projection1 = Linear(128, 128)
        self.projection2 = Linear(128, 128)

    def forward(self, diffusion_step):
        if diffusion_step.dtype in [torch.int32, torch.int64]:
            x = self.embedding[diffusion_step]
        else:
            x = self._lerp_embedding(diffusion_step)
        x = self.projection1(x)
        x = silu(x)
        x = self.projection2(x)
        x = silu(x)
        return x

    def _lerp_embedding(self, t):
        low_idx = torch.floor(t).long()
        high_idx = torch.ceil(t).long()
        low = self.embedding[low_idx]
        high = self.embedding[high_idx]
        return low + (high - low) * (t - low_idx)

    def _build_embedding(self, max_steps):
        steps = torch.arange(max_steps).unsqueeze(1)  # [T,1]
        dims = torch.arange(64).unsqueeze(0)  # [1,64]
        table = steps * 10.0 ** (dims * 4.0 / 63.0)  # [T,64]
        table = torch.cat([torch.sin(table), torch.cos(table)], dim=1)
        return table


class SpectrogramUpsampler(nn.Module):
    def __init__(self, n_mels):
        super().__init__()
        self.conv1 = ConvTranspose2d(1, 1, [3, 32], stride=[1, 16], padding=[1, 8])
        self.conv2 = ConvTranspose2d(1, 1, [3, 32], stride=[1, 16], padding=[1, 8])

    def forward(self, x):
        x = torch.unsqueeze(x, 1)
        x = self.conv1(x)
        x = F.leaky_relu(x, 0.4)
        x = self.conv2(x)
        x = F.leaky_relu(x, 0.4)
        x = torch.squeeze(x, 1)
        return x


class ResidualBlock(nn.Module):
    def __init__(self, n_mels, residual_channels, dilation, uncond=False):
        super().__init__()
        self.dilated_conv = Conv1d(residual_channels, 2 * residual_channels, 3, padding=dilation, dilation=dilation)
        self.diffusion_projection = Linear(128, residual_channels)
        if not uncond:  # conditional model
            self.conditioner_projection = Conv1d(n_mels, 2 * residual_channels, 1)
        else:  # unconditional model
            self.conditioner_projection = None
        self.output_projection = Conv1d(residual_channels, 2 * residual_channels, 1)

    def forward(self, x, diffusion_step, conditioner=None):
        assert (conditioner is None and self.conditioner_projection is None) or (
            conditioner is not None and self.conditioner_projection is not None
        )
        diffusion_step = self.diffusion_projection(diffusion_step).unsqueeze(-1)
        y = x + diffusion_step
        if self.conditioner_projection is None:  # using a unconditional model
            y = self.dilated_conv(y)
        else:
            conditioner = self.conditioner_projection(conditioner)
            y = self.dilated_conv(y) + conditioner

        gate, filter = torch.chunk(y, 2, dim=1)
        y = torch.sigmoid(gate) * torch.tanh(filter)

        y = self.output_projection(y)
        residual, skip = torch.chunk(y, 2, dim=1)
        return (x + residual) / sqrt(2.0), skip


class DiffWave(nn.Module):
    def __init__(self, params):
        super().__init__()
        self.params = params
        self.input_projection = Conv1d(1, params.residual_channels, 1)
        self.diffusion_embedding = DiffusionEmbedding(len(params.noise_schedule))
        if self.params.unconditional:  # use unconditional model
            self.spectrogram_upsampler = None
        else:
            self.spectrogram_upsampler = SpectrogramUpsampler(params.n_mels)
        self.residual_layers = nn.ModuleList(
            [
                ResidualBlock(
                    params.n_mels,
                    params.residual_channels,
                    2 ** (i % params.dilation_cycle_length),
                    uncond=params.unconditional,
                )
                for i in range(params.residual_layers)
            ]
        )
        self.skip_projection = Conv1d(params.residual_channels, params.residual_channels, 1)
        self.output_projection = Conv1d(params.residual_channels, 1, 1)
        nn.init.zeros_(self.output_projection.weight)

    def forward(self, audio, diffusion_step, spectrogram=None):
        assert (spectrogram is None and self.spectrogram_upsampler is None) or (
            spectrogram is not None and self.spectrogram_upsampler is not None
        )
        x = audio.unsqueeze(1)
        x = self.input_projection(x)
        x = F.relu(x)

        diffusion_step = self.diffusion_embedding(diffusion_step)
        if self.spectrogram_upsampler:  # use conditional model
            spectrogram = self.spectrogram_upsampler(spectrogram)

        skip = None
        for layer in self.residual_layers:
            x, skip_connection = layer(x, diffusion_step, spectrogram)
            skip = skip_connection if skip is None else skip_connection + skip

        x = skip / sqrt(len(self.residual_layers))
        x = self.skip_projection(x)
        x = F.relu(x)
        x = self.output_projection(x)
        return x


# -------------------------------------------------------------------------------------------- data
FRAMES = 3
N_SAMPLES = params.hop_samples * FRAMES
FREQS = np.array([64.0, 128.0, 256.0, 512.0])  # Hz, bins 4 apart in a 4096-sample rfft


def make_clip(k, rs):
    n = np.arange(N_SAMPLES)
    audio = 0.5 * np.sin(2 * np.pi * FREQS[k] * n / params.sample_rate + rs.uniform(0, 2 * np.pi))
    mel = np.full((params.n_mels, FRAMES), -4.0)
    mel[2 * k : 2 * k + 2, :] = 1.0  # toy log-mel: energy in the band of the tone
    mel += 0.1 * rs.randn(params.n_mels, FRAMES)
    return audio.astype(np.float32), mel.astype(np.float32)


rs = np.random.RandomState(20)
dataset = [make_clip(i % len(FREQS), rs) for i in range(64)]


def collate(items):
    audio = torch.from_numpy(np.stack([a for a, _ in items]))
    spectrogram = torch.from_numpy(np.stack([m for _, m in items]))
    return {"audio": audio, "spectrogram": spectrogram}


# ----------------------------------------------------------------------------------------- learner
class DiffWaveLearner:
    def __init__(self, model, optimizer, params):
        self.model = model
        self.optimizer = optimizer
        self.params = params
        self.autocast = torch.cuda.amp.autocast(enabled=params.get("fp16", False))
        self.scaler = torch.cuda.amp.GradScaler(enabled=params.get("fp16", False))
        self.step = 0

        beta = np.array(self.params.noise_schedule)
        noise_level = np.cumprod(1 - beta)
        self.noise_level = torch.tensor(noise_level.astype(np.float32))
        self.loss_fn = nn.L1Loss()

    def state_dict(self):
        if hasattr(self.model, "module") and isinstance(self.model.module, nn.Module):
            model_state = self.model.module.state_dict()
        else:
            model_state = self.model.state_dict()
        return {
            "step": self.step,
            "model": {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in model_state.items()},
            "optimizer": {
                k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in self.optimizer.state_dict().items()
            },
            "params": dict(self.params),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state_dict):
        self.model.load_state_dict(state_dict["model"])
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.scaler.load_state_dict(state_dict["scaler"])
        self.step = state_dict["step"]

    def train_step(self, features):
        for param in self.model.parameters():
            param.grad = None

        audio = features["audio"]
        spectrogram = features["spectrogram"]

        N, T = audio.shape
        device = audio.device
        self.noise_level = self.noise_level.to(device)

        with self.autocast:
            t = torch.randint(0, len(self.params.noise_schedule), [N], device=audio.device)
            noise_scale = self.noise_level[t].unsqueeze(1)
            noise_scale_sqrt = noise_scale**0.5
            noise = torch.randn_like(audio)
            noisy_audio = noise_scale_sqrt * audio + (1.0 - noise_scale) ** 0.5 * noise

            predicted = self.model(noisy_audio, t, spectrogram)
            loss = self.loss_fn(noise, predicted.squeeze(1))

        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        self.grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.params.max_grad_norm or 1e9)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss


# --------------------------------------------------------------------------------------- inference
def predict(model, spectrogram=None, params=None, device=torch.device("cpu"), fast_sampling=False):
    with torch.no_grad():
        # Change in notation from the DiffWave paper for fast sampling.
        # DiffWave paper -> Implementation below
        # --------------------------------------
        # alpha -> talpha
        # beta -> training_noise_schedule
        # gamma -> alpha
        # eta -> beta
        training_noise_schedule = np.array(model.params.noise_schedule)
        inference_noise_schedule = (
            np.array(model.params.inference_noise_schedule) if fast_sampling else training_noise_schedule
        )

        talpha = 1 - training_noise_schedule
        talpha_cum = np.cumprod(talpha)

        beta = inference_noise_schedule
        alpha = 1 - beta
        alpha_cum = np.cumprod(alpha)

        T = []
        for s in range(len(inference_noise_schedule)):
            for t in range(len(training_noise_schedule) - 1):
                if talpha_cum[t + 1] <= alpha_cum[s] <= talpha_cum[t]:
                    twiddle = (talpha_cum[t] ** 0.5 - alpha_cum[s] ** 0.5) / (
                        talpha_cum[t] ** 0.5 - talpha_cum[t + 1] ** 0.5
                    )
                    T.append(t + twiddle)
                    break
        T = np.array(T, dtype=np.float32)

        if not model.params.unconditional:
            if len(spectrogram.shape) == 2:  # Expand rank 2 tensors by adding a batch dimension.
                spectrogram = spectrogram.unsqueeze(0)
            spectrogram = spectrogram.to(device)
            audio = torch.randn(spectrogram.shape[0], model.params.hop_samples * spectrogram.shape[-1], device=device)
        else:
            audio = torch.randn(1, params.audio_len, device=device)
        start = audio.clone()

        for n in range(len(alpha) - 1, -1, -1):
            c1 = 1 / alpha[n] ** 0.5
            c2 = beta[n] / (1 - alpha_cum[n]) ** 0.5
            audio = c1 * (audio - c2 * model(audio, torch.tensor([T[n]], device=audio.device), spectrogram).squeeze(1))
            if n > 0:
                noise = torch.randn_like(audio)
                sigma = ((1.0 - alpha_cum[n - 1]) / (1.0 - alpha_cum[n]) * beta[n]) ** 0.5
                audio += sigma * noise
            audio = torch.clamp(audio, -1.0, 1.0)
    return audio, model.params.sample_rate, T, start


def spectral_distance(a, b):
    A = torch.fft.rfft(a, dim=-1).abs()
    B = torch.fft.rfft(b, dim=-1).abs()
    A = A / A.norm(dim=-1, keepdim=True)
    B = B / B.norm(dim=-1, keepdim=True)
    return (A - B).norm(dim=-1).mean().item()


def band_energy(audio, freqs, width=2):
    # fraction of each clip's spectral energy within `width` bins of its tone
    power = torch.fft.rfft(audio, dim=-1).abs() ** 2
    bins = torch.round(torch.as_tensor(freqs) * audio.shape[-1] / params.sample_rate).long()
    idx = torch.arange(power.shape[-1])[None, :]
    near = (idx - bins[:, None]).abs() <= width
    return ((power * near).sum(-1) / power.sum(-1)).mean().item()


# -------------------------------------------------------------------------------------------- main
model = DiffWave(params)
opt = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
learner = DiffWaveLearner(model, opt, params)
print(f"receptive dilations {[layer.dilated_conv.dilation[0] for layer in model.residual_layers]}")
print(f"state_dict has embedding table: {any('embedding.embedding' in k for k in model.state_dict())}")

n_steps = 160
losses = []
order = np.random.RandomState(seed).permutation
for epoch in range(n_steps * params.batch_size // len(dataset)):
    perm = order(len(dataset))
    for b in range(0, len(dataset), params.batch_size):
        features = collate([dataset[i] for i in perm[b : b + params.batch_size]])
        loss = learner.train_step(features)
        losses.append(loss.item())
        learner.step += 1
    print(f"epoch {epoch}: step {learner.step} loss {np.mean(losses[-8:]):.4f} grad_norm {learner.grad_norm.item():.3f}")

# checkpoint round trip into a fresh model: the non-persistent table is rebuilt, not loaded
state = learner.state_dict()
model2 = DiffWave(params)
learner2 = DiffWaveLearner(model2, torch.optim.Adam(model2.parameters(), lr=params.learning_rate), params)
learner2.load_state_dict(state)
print(f"restored step {learner2.step}")
model = model2.eval()

# integer steps through the table against the same steps as floats through the lerp
steps = torch.arange(len(params.noise_schedule))
with torch.no_grad():
    emb_int = model.diffusion_embedding(steps)
    emb_lerp = torch.cat([model.diffusion_embedding(torch.tensor([float(s)])) for s in steps.tolist()])
    emb_half = torch.cat([model.diffusion_embedding(torch.tensor([s + 0.5])) for s in steps[:-1].tolist()])
lerp_err = (emb_int - emb_lerp).abs().max().item()
print(f"embedding int vs lerp: max err {lerp_err:.2e}, half-steps finite {bool(torch.isfinite(emb_half).all())}")

test = [make_clip(k, np.random.RandomState(100 + k)) for k in range(len(FREQS))]
target = torch.from_numpy(np.stack([a for a, _ in test]))
mels = torch.from_numpy(np.stack([m for _, m in test]))

audio_full, sr, T_full, start_full = predict(model, mels, params)
audio_fast, sr, T_fast, start_fast = predict(model, mels, params, fast_sampling=True)
print(f"fast schedule T: {len(T_fast)} steps, first {T_fast[0]:.4f}")
d_full = spectral_distance(audio_full, target)
d_fast = spectral_distance(audio_fast, target)
d_noise = spectral_distance(start_fast, target)
print(f"spectral distance: full {d_full:.4f} fast {d_fast:.4f} noise {d_noise:.4f} at {sr} Hz")
e_full = band_energy(audio_full, FREQS)
e_fast = band_energy(audio_fast, FREQS)
e_noise = band_energy(start_fast, FREQS)
e_target = band_energy(target, FREQS)
print(f"energy near the tone: full {e_full:.4f} fast {e_fast:.4f} noise {e_noise:.4f} target {e_target:.4f}")
loss_first = np.mean(losses[:16])
loss_last = np.mean(losses[-16:])
print(
    f"FINAL loss_first={loss_first:.4f} loss_last={loss_last:.4f} lerp_err={lerp_err:.6f} "
    f"d_full={d_full:.4f} d_fast={d_fast:.4f} d_noise={d_noise:.4f} e_full={e_full:.4f} e_fast={e_fast:.4f} "
    f"e_noise={e_noise:.4f} t_fast_last={T_fast[-1]:.4f}"
)
