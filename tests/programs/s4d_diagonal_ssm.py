"""S4D, the diagonal state-space layer (Gu, Gupta, Goel and Re, 2022), on a sequence-classification toy.

The ``state-spaces/s4`` repository's standalone ``models/s4/s4d.py`` and ``example.py`` at toy
size: ``S4DKernel`` keeps ``C`` as ``nn.Parameter(torch.view_as_real(C))`` of a complex
``torch.randn(H, N // 2, dtype=torch.cfloat)`` and reads it back by ``torch.view_as_complex``,
builds ``A = -torch.exp(self.log_A_real) + 1j * self.A_imag``, ``dtA = A * dt.unsqueeze(-1)``, the
Vandermonde kernel ``2 * torch.einsum('hn, hnl -> hl', C, torch.exp(K)).real`` with
``C = C * (torch.exp(dtA) - 1.) / A`` (zero-order hold); its ``register`` helper puts
``log_dt``/``log_A_real``/``A_imag`` in as parameters carrying ``_optim`` dicts by
``setattr(getattr(self, name), "_optim", optim)``; ``S4D`` convolves by ``torch.fft.rfft(u, n=2*L)``
times ``torch.fft.rfft(k, n=2*L)`` and ``torch.fft.irfft(..., n=2*L)[..., :L]``, adds the ``D``
skip, ``nn.GELU``, a ``Conv1d(kernel_size=1)`` + ``nn.GLU(dim=-2)`` output; the example's
``S4Model`` (encoder, pre-``LayerNorm`` residual blocks, mean pooling, decoder) and
``setup_optimizer`` (``AdamW`` on the plain parameters, then one ``add_param_group`` per distinct
``_optim`` dict found by ``dict.fromkeys(frozenset(hp.items()) ...)``, ``CosineAnnealingLR``).
The task: tell which of three close frequencies (3, 4 or 5 cycles) a randomly phased sine under
heavy noise has; the kernel is also checked against the direct recurrence of the discretised
system, written with ``torch.complex(-torch.exp(log_A_real), A_imag)``.
"""

import math
import os

import torch
import torch.nn as nn
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class S4DKernel(nn.Module):
    """Generate convolution kernel from diagonal SSM parameters."""

    def __init__(self, d_model, N=64, dt_min=0.001, dt_max=0.1, lr=None):
        super().__init__()
        # Generate dt
        H = d_model
        log_dt = torch.rand(H) * (
            math.log(dt_max) - math.log(dt_min)
        ) + math.log(dt_min)

        C = torch.randn(H, N // 2, dtype=torch.cfloat)
        self.C = nn.Parameter(torch.view_as_real(C))
        self.register("log_dt", log_dt, lr)

        log_A_real = torch.log(0.5 * torch.ones(H, N // 2))
        A_imag = math.pi * torch.arange(N // 2).repeat(H, 1)  # repeat(torch.arange(N//2), 'n -> h n', h=H)
        self.register("log_A_real", log_A_real, lr)
        self.register("A_imag", A_imag, lr)

    def forward(self, L):
        """returns: (..., c, L) where c is number of channels (default 1)"""

        # Materialize parameters
        dt = torch.exp(self.log_dt)  # (H)
        C = torch.view_as_complex(self.C)  # (H N)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (H N)

        # Vandermonde multiplication
        dtA = A * dt.unsqueeze(-1)  # (H N)
        K = dtA.unsqueeze(-1) * torch.arange(L, device=A.device)  # (H N L)
        C = C * (torch.exp(dtA) - 1.) / A
        K = 2 * torch.einsum('hn, hnl -> hl', C, torch.exp(K)).real

        return K

    def register(self, name, tensor, lr=None):
        """Register a tensor with a configurable learning rate and 0 weight decay"""

        if lr == 0.0:
            self.register_buffer(name, tensor)
        else:
            self.register_parameter(name, nn.Parameter(tensor))

            optim = {"weight_decay": 0.0}
            if lr is not None:
                optim["lr"] = lr
            setattr(getattr(self, name), "_optim", optim)  # noqa: B010  (the repository's spelling)


class S4D(nn.Module):
    def __init__(self, d_model, d_state=64, dropout=0.0, transposed=True, **kernel_args):
        super().__init__()

        self.h = d_model
        self.n = d_state
        self.d_output = self.h
        self.transposed = transposed

        self.D = nn.Parameter(torch.randn(self.h))

        # SSM Kernel
        self.kernel = S4DKernel(self.h, N=self.n, **kernel_args)

        # Pointwise
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout) if dropout > 0.0 else nn.Identity()

        # position-wise output transform to mix features
        self.output_linear = nn.Sequential(
            nn.Conv1d(self.h, 2 * self.h, kernel_size=1),
            nn.GLU(dim=-2),
        )

    def forward(self, u, **kwargs):  # absorbs return_output and transformer src mask
        """Input and output shape (B, H, L)"""
        if not self.transposed:
            u = u.transpose(-1, -2)
        L = u.size(-1)

        # Compute SSM Kernel
        k = self.kernel(L=L)  # (H L)

        # Convolution
        k_f = torch.fft.rfft(k, n=2 * L)  # (H L)
        u_f = torch.fft.rfft(u, n=2 * L)  # (B H L)
        y = torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]  # (B H L)

        # Compute D term in state space equation - essentially a skip connection
        y = y + u * self.D.unsqueeze(-1)

        y = self.dropout(self.activation(y))
        y = self.output_linear(y)
        if not self.transposed:
            y = y.transpose(-1, -2)
        return y, None  # Return a dummy state to satisfy this repo's interface, but this can be modified


class S4Model(nn.Module):
    def __init__(self, d_input, d_output=10, d_model=256, n_layers=4, dropout=0.2, prenorm=False, lr=0.001):
        super().__init__()

        self.prenorm = prenorm

        # Linear encoder (d_input = 1 for grayscale and 3 for RGB)
        self.encoder = nn.Linear(d_input, d_model)

        # Stack S4 layers as residual blocks
        self.s4_layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.dropouts = nn.ModuleList()
        for _ in range(n_layers):
            self.s4_layers.append(
                S4D(d_model, dropout=dropout, transposed=True, lr=min(0.001, lr))
            )
            self.norms.append(nn.LayerNorm(d_model))
            self.dropouts.append(nn.Dropout(dropout))

        # Linear decoder
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x):
        """
        Input x is shape (B, L, d_input)
        """
        x = self.encoder(x)  # (B, L, d_input) -> (B, L, d_model)

        x = x.transpose(-1, -2)  # (B, L, d_model) -> (B, d_model, L)
        for layer, norm, dropout in zip(self.s4_layers, self.norms, self.dropouts):
            z = x
            if self.prenorm:
                # Prenorm
                z = norm(z.transpose(-1, -2)).transpose(-1, -2)

            # Apply S4 block: we ignore the state input and output
            z, _ = layer(z)

            # Dropout on the output of the S4 block
            z = dropout(z)

            # Residual connection
            x = z + x

            if not self.prenorm:
                # Postnorm
                x = norm(x.transpose(-1, -2)).transpose(-1, -2)

        x = x.transpose(-1, -2)

        # Pooling: average pooling over the sequence length
        x = x.mean(dim=1)

        # Decode the outputs
        x = self.decoder(x)  # (B, d_model) -> (B, d_output)

        return x


def setup_optimizer(model, lr, weight_decay, epochs):
    """
    S4 requires a specific optimizer setup.

    The S4 layer (A, B, C, dt) parameters typically
    require a smaller learning rate (typically 0.001), with no weight decay.

    The rest of the model can be trained with a higher learning rate (e.g. 0.004, 0.01)
    and weight decay (if desired).
    """

    # All parameters in the model
    all_parameters = list(model.parameters())

    # General parameters don't contain the special _optim key
    params = [p for p in all_parameters if not hasattr(p, "_optim")]

    # Create an optimizer with the general parameters
    optimizer = optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    # Add parameters with special hyperparameters
    hps = [getattr(p, "_optim") for p in all_parameters if hasattr(p, "_optim")]  # noqa: B009  (as written)
    hps = [
        dict(s) for s in sorted(list(dict.fromkeys(frozenset(hp.items()) for hp in hps)))
    ]  # Unique dicts
    for hp in hps:
        params = [p for p in all_parameters if getattr(p, "_optim", None) == hp]
        optimizer.add_param_group(
            {"params": params, **hp}
        )

    # Create a lr scheduler
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)

    # Print optimizer info
    keys = sorted(set([k for hp in hps for k in hp.keys()]))
    for i, g in enumerate(optimizer.param_groups):
        group_hps = {k: g.get(k, None) for k in keys}
        print(' | '.join([
            f"Optimizer group {i}",
            f"{len(g['params'])} tensors",
        ] + [f"{k} {v}" for k, v in group_hps.items()]))

    return optimizer, scheduler


SEQ_LEN, N_CLASSES = 64, 3


def make_data(n):
    labels = torch.randint(0, N_CLASSES, (n,))
    freqs = torch.tensor([3.0, 4.0, 5.0])[labels]
    t = torch.arange(SEQ_LEN).float() / SEQ_LEN
    phase = torch.rand(n, 1) * 2 * math.pi
    x = torch.sin(2 * math.pi * freqs[:, None] * t + phase) + 1.5 * torch.randn(n, SEQ_LEN)
    return x.unsqueeze(-1), labels


x_train, y_train = make_data(256)
x_test, y_test = make_data(128)

model = S4Model(d_input=1, d_output=N_CLASSES, d_model=16, n_layers=2, dropout=0.1, prenorm=True, lr=0.01)
kernel = model.s4_layers[0].kernel
print(f"C stored as {tuple(kernel.C.shape)} {kernel.C.dtype}, viewed as {tuple(torch.view_as_complex(kernel.C).shape)} "
      f"{torch.view_as_complex(kernel.C).dtype}")

# the FFT convolution equals the recurrence x_k = exp(dtA) x_{k-1} + (exp(dtA) - 1) / A u_k, y_k = 2 Re(C x_k)
with torch.no_grad():
    L = 20
    k = kernel(L=L)
    u = torch.randn(1, k.shape[0], L)
    y_fft = torch.fft.irfft(torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(k, n=2 * L), n=2 * L)[..., :L]
    dt = torch.exp(kernel.log_dt)
    A = torch.complex(-torch.exp(kernel.log_A_real), kernel.A_imag)
    dA = torch.exp(A * dt.unsqueeze(-1))
    dB = (dA - 1.) / A
    C = torch.view_as_complex(kernel.C)
    state = torch.zeros_like(dA)
    ys = []
    for i in range(L):
        state = dA * state + dB * u[0, :, i:i + 1]
        ys.append(2 * (C * state).sum(-1).real)
    y_rec = torch.stack(ys, -1)
    rec_gap = (y_fft[0] - y_rec).abs().max().item()
print(f"kernel {tuple(k.shape)}, FFT convolution matches the recurrence: {rec_gap < 1e-3}")

EPOCHS, BATCH = 12, 32
optimizer, scheduler = setup_optimizer(model, lr=0.01, weight_decay=0.01, epochs=EPOCHS)
criterion = nn.CrossEntropyLoss()
log_dt_before = kernel.log_dt.detach().clone()
for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(x_train.shape[0])
    total, correct, train_loss = 0, 0, 0.0
    for i in range(0, x_train.shape[0], BATCH):
        idx = perm[i:i + BATCH]
        optimizer.zero_grad()
        outputs = model(x_train[idx])
        loss = criterion(outputs, y_train[idx])
        loss.backward()
        optimizer.step()
        train_loss += loss.item() * len(idx)
        correct += (outputs.argmax(1) == y_train[idx]).sum().item()
        total += len(idx)
    scheduler.step()
    if (epoch + 1) % 4 == 0:
        print(f"epoch {epoch + 1}: loss {train_loss / total:.4f}, acc {correct / total:.4f}, "
              f"lr {optimizer.param_groups[0]['lr']:.5f} / {optimizer.param_groups[1]['lr']:.5f}")

model.eval()
with torch.no_grad():
    test_logits = model(x_test)
    test_loss = criterion(test_logits, y_test).item()
    test_acc = (test_logits.argmax(1) == y_test).float().mean().item()
dt_moved = (kernel.log_dt.detach() - log_dt_before).abs().max().item()
print(f"log_dt moved by at most {dt_moved:.4f}, A_imag grad {kernel.A_imag.grad is not None}")
print(f"FINAL test_loss={test_loss:.4f} test_acc={test_acc:.4f} train_loss={train_loss / total:.4f} "
      f"dt_moved={dt_moved:.4f}")
