"""A training loop that is interrupted mid-epoch and resumed exactly, as long-running job scripts
(preemptible clusters) write it, with gradient accumulation and the gradient-safety calls.

The loop: a ``DataLoader(shuffle=True, generator=g, drop_last=True)`` whose generator state is saved at
the start of each epoch (``g.get_state()``), dropout drawing from the global generator
(``torch.get_rng_state()``), gradient accumulation over ``ACCUM`` micro-batches with the loss divided
by ``ACCUM``, ``optimizer.zero_grad(set_to_none=True)``, ``clip_grad_value_`` then
``clip_grad_norm_(..., error_if_nonfinite=True)`` catching the ``RuntimeError`` of a poisoned batch (a
NaN input, the step skipped), ``nn.utils.get_total_norm`` + ``nn.utils.clip_grads_with_norm_`` and
``clip_grad_norm_(norm_type=float('inf'), foreach=True)`` checked against it, AdamW with
a ``SequentialLR`` of ``LinearLR`` warm-up into ``CosineAnnealingLR``, and a checkpoint written with
``torch.save`` to a file mid-epoch: ``model``, ``optimizer``, ``scheduler`` ``state_dict``s, both RNG
states, ``epoch``/``step``/``batches_done``, and a ``@dataclass`` ``TrainState`` allowed for
``weights_only=True`` by ``torch.serialization.add_safe_globals`` (refused with
``pickle.UnpicklingError`` before, listed by ``get_unsafe_globals_in_checkpoint``) and by the
``safe_globals`` context manager, beside the run's ``argparse.Namespace`` and a NumPy ``np.float64``
statistic (torch's recipe: ``np._core.multiarray.scalar``, ``np.dtype``, ``np.dtypes.Float64DType``);
also loaded with ``weights_only=False`` and ``map_location="cpu"``.
A fresh model, optimiser, scheduler and loader resume by skipping ``batches_done`` batches with
``itertools.islice``; the resumed run must equal the uninterrupted one bit for bit.

The data: a three-class problem of noisy rings made with NumPy.
"""

import argparse
import itertools
import os
import pickle
import tempfile
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N = 480
radius = rng.integers(0, 3, size=N)
angle = rng.uniform(0, 2 * np.pi, size=N)
r = 1.0 + radius + 0.25 * rng.normal(size=N)
X_np = np.stack([r * np.cos(angle), r * np.sin(angle), 0.1 * rng.normal(size=N)], 1).astype(np.float32)
X_np[37, 1] = np.nan  # one poisoned sample: the batch holding it gives a non-finite gradient norm
dataset = TensorDataset(torch.from_numpy(X_np[:400]), torch.from_numpy(radius[:400]))
X_test, y_test = torch.from_numpy(X_np[400:]), torch.from_numpy(radius[400:])

EPOCHS, BATCH, ACCUM = 6, 20, 2
ARGS = argparse.Namespace(epochs=EPOCHS, batch_size=BATCH, accum=ACCUM, lr=1e-2)
STOP_EPOCH, STOP_BATCH = 2, 10  # where the job is "preempted"


@dataclass
class TrainState:
    epoch: int
    step: int
    batches_done: int
    skipped: int


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 32), nn.ReLU(),
                                  nn.Dropout(0.2))
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.body(x))


def build():
    torch.manual_seed(seed + 10)  # the same initial weights every time
    model = Net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=5)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=60, eta_min=1e-4)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[5])
    generator = torch.Generator().manual_seed(seed + 20)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, generator=generator, drop_last=True)
    return model, optimizer, scheduler, generator, loader


def train(model, optimizer, scheduler, generator, loader, state, stop_at=None, ckpt_path=None, log=True,
          epoch_generator_state=None):
    norms = []
    while state.epoch < EPOCHS:
        if state.batches_done == 0:
            epoch_generator_state = generator.get_state()
        else:  # resumed mid-epoch: replay this epoch's shuffle, then skip what was done
            generator.set_state(epoch_generator_state)
        model.train()
        batches = itertools.islice(enumerate(loader), state.batches_done, None)
        for batch_idx, (xb, yb) in batches:
            if stop_at is not None and (state.epoch, batch_idx) == stop_at:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "rng_state": torch.get_rng_state(),
                            "epoch_generator_state": epoch_generator_state, "train_state": state, "args": ARGS,
                            "mean_norm": np.mean(norms) if norms else np.float64(0.0)}, ckpt_path)
                return norms
            loss = F.cross_entropy(model(xb), yb) / ACCUM
            loss.backward()
            state.batches_done = batch_idx + 1
            if state.batches_done % ACCUM != 0:
                continue
            nn.utils.clip_grad_value_(model.parameters(), clip_value=1.0)
            try:
                norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=2.0, error_if_nonfinite=True)
            except RuntimeError as err:
                reason = str(err).split(".")[0]
                state.skipped += 1
                optimizer.zero_grad(set_to_none=True)
                continue
            norms.append(norm.item())
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
        state.epoch += 1
        state.batches_done = 0
        if log:
            print(f"epoch {state.epoch} steps={state.step} skipped={state.skipped} ({reason}) "
                  f"lr={scheduler.get_last_lr()[0]:.6f} test_acc={accuracy(model):.4f}")
    return norms


@torch.no_grad()
def accuracy(model):
    model.eval()
    acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    model.train()
    return acc


# --- the uninterrupted run ----------------------------------------------------------------------------
model, optimizer, scheduler, generator, loader = build()
torch.manual_seed(seed + 30)
norms = train(model, optimizer, scheduler, generator, loader, TrainState(0, 0, 0, 0))
final_state = {k: v.clone() for k, v in model.state_dict().items()}

# --- preempted, then resumed from the file --------------------------------------------------------------
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "checkpoint.pt")
    model, optimizer, scheduler, generator, loader = build()
    torch.manual_seed(seed + 30)
    state = TrainState(0, 0, 0, 0)
    norms_first = train(model, optimizer, scheduler, generator, loader, state, stop_at=(STOP_EPOCH, STOP_BATCH),
                        ckpt_path=path, log=False)
    print(f"preempted at epoch {state.epoch} batch {state.batches_done} step {state.step}")

    try:
        torch.load(path, weights_only=True)
    except pickle.UnpicklingError as err:
        print("weights_only refused:", "TrainState" in str(err))
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    print("unsafe globals:", sorted(name.rsplit(".", 1)[-1] for name in unsafe))
    numpy_scalar = [np._core.multiarray.scalar, np.dtype, np.dtypes.Float64DType]
    with torch.serialization.safe_globals([TrainState, argparse.Namespace, *numpy_scalar]):
        checkpoint = torch.load(path, weights_only=True)
    torch.serialization.add_safe_globals([TrainState, argparse.Namespace, *numpy_scalar])
    checkpoint_again = torch.load(path, weights_only=True, map_location="cpu")
    full = torch.load(path, weights_only=False, map_location="cpu")
    same = all(torch.equal(checkpoint["model"][k], full["model"][k]) for k in full["model"])
    same = same and checkpoint_again["train_state"] == full["train_state"] and checkpoint["args"] == ARGS
    same = same and type(checkpoint["mean_norm"]) is np.float64 and checkpoint["mean_norm"] == full["mean_norm"]
    print(f"loaded three ways alike: {same}, state {checkpoint['train_state']}")

    del model, optimizer, scheduler, generator, loader
    torch.manual_seed(999)  # anything drawn before the restore must not matter
    model, optimizer, scheduler, generator, loader = build()
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng_state"])
    norms_second = train(model, optimizer, scheduler, generator, loader, checkpoint["train_state"], log=False,
                         epoch_generator_state=checkpoint["epoch_generator_state"])

exact = all(torch.equal(final_state[k], v) for k, v in model.state_dict().items())
exact = exact and norms_first + norms_second == norms
print(f"resumed == uninterrupted: {exact} ({len(norms_first)} + {len(norms_second)} steps)")

# --- the gradient-norm helpers agree ----------------------------------------------------------------------
model.train()
torch.manual_seed(seed + 40)
F.cross_entropy(model(X_test), y_test).backward()
grads = [p.grad for p in model.parameters()]
total = nn.utils.get_total_norm(grads, norm_type=2.0)
reference = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
before = [g.clone() for g in grads]
nn.utils.clip_grads_with_norm_(model.parameters(), max_norm=0.1, total_norm=total)
scale = min(0.1 / (total.item() + 1e-6), 1.0)
clipped_ok = all(torch.allclose(g, b * scale) for g, b in zip(grads, before))
inf_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e9, norm_type=float("inf"), foreach=True)
inf_ref = max(g.abs().max() for g in grads)
print(f"total norm {total.item():.5f} (by hand {reference.item():.5f}), clipped as expected: {clipped_ok}, "
      f"inf norm {inf_norm.item():.5f} = {inf_ref.item():.5f}")

print(f"FINAL test_acc={accuracy(model):.4f} mean_norm={np.mean(norms):.4f} exact={int(exact)} "
      f"skipped={checkpoint['train_state'].skipped} grad_norm={total.item():.4f}")
