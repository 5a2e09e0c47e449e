"""The hand-written training framework people build (pytorch-lightning's shape, without the library).

A ``LightningModule``-like base (``training_step``/``validation_step``/``configure_optimizers``
returning ``([optimizer], [{"scheduler": ..., "interval": "step"}])``, ``self.log`` of 0-d tensors), a
``Trainer`` with callbacks: ``EarlyStopping`` written as lightning writes it (``torch.lt``/``torch.gt``
as ``monitor_op``, ``torch.tensor(torch.inf)`` start, ``min_delta`` sign flip, ``torch.isfinite``,
patience), ``ModelCheckpoint`` keeping the top-k ``state_dict``s in a ``tempfile`` directory by
``torch.save`` to a temporary name and ``os.replace`` (atomic rename) with the worst removed,
``LearningRateMonitor`` reading ``param_groups``; gradient accumulation (``loss /
accumulate_grad_batches``, checked against one full-batch gradient), clipping by ``clip_grad_norm_`` and
by ``clip_grad_value_``, validation under ``torch.autograd.set_grad_enabled(False)`` with
``torch.stack(outputs).mean()`` of ``.item()``-able metrics, and resuming from the best checkpoint
(``torch.load(weights_only=True)``: model, optimizer and scheduler states) to re-validate it.
"""

import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


# ---------------------------------------------------------------- the framework
class LightningModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.trainer = None
        self._logged = {}

    def log(self, name, value, prog_bar=False):
        if not isinstance(value, torch.Tensor):
            value = torch.tensor(value)
        self._logged[name] = value.detach()

    def training_step(self, batch, batch_idx):
        raise NotImplementedError

    def validation_step(self, batch, batch_idx):
        raise NotImplementedError

    def configure_optimizers(self):
        raise NotImplementedError


class Callback:
    def on_train_batch_end(self, trainer, pl_module):
        pass

    def on_validation_end(self, trainer, pl_module):
        pass


class EarlyStopping(Callback):
    mode_dict = {"min": torch.lt, "max": torch.gt}

    def __init__(self, monitor, min_delta=0.0, patience=3, mode="min", check_finite=True):
        self.monitor = monitor
        self.min_delta = min_delta
        self.patience = patience
        self.mode = mode
        self.check_finite = check_finite
        self.wait_count = 0
        self.stopped_epoch = 0
        self.min_delta *= 1 if self.monitor_op == torch.gt else -1
        torch_inf = torch.tensor(torch.inf)
        self.best_score = torch_inf if self.monitor_op == torch.lt else -torch_inf

    @property
    def monitor_op(self):
        return self.mode_dict[self.mode]

    def on_validation_end(self, trainer, pl_module):
        current = trainer.callback_metrics[self.monitor].squeeze()
        should_stop, reason = self._evaluate_stopping_criteria(current)
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            trainer.should_stop = True
            self.reason = reason

    def _evaluate_stopping_criteria(self, current):
        should_stop = False
        reason = None
        if self.check_finite and not torch.isfinite(current):
            should_stop = True
            reason = f"Monitored metric {self.monitor} = {current} is not finite."
        elif self.monitor_op(current - self.min_delta, self.best_score.to(current.device)):
            should_stop = False
            self.best_score = current
            self.wait_count = 0
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                should_stop = True
                reason = (f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records."
                          f" Best score: {self.best_score:.3f}. Signaling Trainer to stop.")
        return should_stop, reason


class ModelCheckpoint(Callback):
    def __init__(self, dirpath, monitor, mode="min", save_top_k=2, filename="{epoch}-{val_loss:.4f}"):
        self.dirpath = dirpath
        self.monitor = monitor
        self.mode = mode
        self.save_top_k = save_top_k
        self.filename = filename
        self.best_k_models = {}
        self.kth_best_model_path = ""
        self.best_model_path = ""
        self.best_model_score = None
        os.makedirs(dirpath, exist_ok=True)

    def _is_better(self, a, b):
        return bool(torch.lt(a, b)) if self.mode == "min" else bool(torch.gt(a, b))

    def check_monitor_top_k(self, current):
        if len(self.best_k_models) < self.save_top_k:
            return True
        return self._is_better(current, self.best_k_models[self.kth_best_model_path])

    def on_validation_end(self, trainer, pl_module):
        current = trainer.callback_metrics[self.monitor]
        if not self.check_monitor_top_k(current):
            return
        metrics = {k: v.item() for k, v in trainer.callback_metrics.items()}
        name = self.filename.format(epoch=trainer.current_epoch, **metrics) + ".ckpt"
        filepath = os.path.join(self.dirpath, name)
        if len(self.best_k_models) == self.save_top_k:
            worst = self.kth_best_model_path
            del self.best_k_models[worst]
            os.remove(worst)
        self.best_k_models[filepath] = current
        _reverse = self.mode == "max"
        ordered = sorted(self.best_k_models, key=lambda p: self.best_k_models[p].item(), reverse=not _reverse)
        self.kth_best_model_path = ordered[0]
        self.best_model_path = ordered[-1]
        self.best_model_score = self.best_k_models[self.best_model_path]
        trainer.save_checkpoint(filepath)


class LearningRateMonitor(Callback):
    def __init__(self, logging_interval="step"):
        self.logging_interval = logging_interval
        self.lrs = {}

    def on_train_batch_end(self, trainer, pl_module):
        if not trainer.stepped:
            return
        for i, opt in enumerate(trainer.optimizers):
            name = f"lr-{type(opt).__name__}" + (f"/pg{i}" if i else "")
            self.lrs.setdefault(name, []).append(opt.param_groups[0]["lr"])


class Trainer:
    def __init__(self, max_epochs, callbacks=(), accumulate_grad_batches=1, gradient_clip_val=None,
                 gradient_clip_algorithm="norm"):
        self.max_epochs = max_epochs
        self.callbacks = list(callbacks)
        self.accumulate_grad_batches = accumulate_grad_batches
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.callback_metrics = {}
        self.current_epoch = 0
        self.global_step = 0
        self.should_stop = False
        self.stepped = False
        self.clipped_max_abs = 0.0
        self.clipped_max_norm = 0.0

    def _configure(self, model):
        out = model.configure_optimizers()
        if isinstance(out, torch.optim.Optimizer):
            return [out], []
        if isinstance(out, dict):
            sched = out.get("lr_scheduler")
            return [out["optimizer"]], ([sched] if sched is not None else [])
        optimizers, schedulers = out
        schedulers = [s if isinstance(s, dict) else {"scheduler": s, "interval": "epoch"} for s in schedulers]
        return list(optimizers), schedulers

    def save_checkpoint(self, filepath):
        checkpoint = {
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "state_dict": self.model.state_dict(),
            "optimizer_states": [opt.state_dict() for opt in self.optimizers],
            "lr_schedulers": [s["scheduler"].state_dict() for s in self.lr_scheduler_configs],
        }
        tmp_path = filepath + ".part"
        torch.save(checkpoint, tmp_path)
        os.replace(tmp_path, filepath)  # atomic: a reader never sees half a checkpoint

    def _clip_gradients(self, model):
        if self.gradient_clip_val is None:
            return
        if self.gradient_clip_algorithm == "norm":
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_value_(model.parameters(), self.gradient_clip_val)
        # what the progress bar would show: the largest gradient entry and the total norm after clipping
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        self.clipped_max_abs = max(self.clipped_max_abs, max(g.abs().max().item() for g in grads))
        self.clipped_max_norm = max(self.clipped_max_norm,
                                    torch.norm(torch.stack([torch.norm(g, 2) for g in grads]), 2).item())

    def fit(self, model, train_dataloaders, val_dataloaders):
        self.model = model
        model.trainer = self
        self.optimizers, self.lr_scheduler_configs = self._configure(model)
        optimizer = self.optimizers[0]
        for epoch in range(self.max_epochs):
            self.current_epoch = epoch
            model.train()
            for batch_idx, batch in enumerate(train_dataloaders):
                out = model.training_step(batch, batch_idx)
                loss = out["loss"] if isinstance(out, dict) else out
                (loss / self.accumulate_grad_batches).backward()
                self.stepped = (batch_idx + 1) % self.accumulate_grad_batches == 0
                if self.stepped:
                    self._clip_gradients(model)
                    optimizer.step()
                    optimizer.zero_grad()
                    self.global_step += 1
                    for config in self.lr_scheduler_configs:
                        if config["interval"] == "step":
                            config["scheduler"].step()
                for cb in self.callbacks:
                    cb.on_train_batch_end(self, model)
            for config in self.lr_scheduler_configs:
                if config["interval"] == "epoch":
                    config["scheduler"].step()
            self._run_validation(model, val_dataloaders)
            for cb in self.callbacks:
                cb.on_validation_end(self, model)
            if self.should_stop:
                break

    def _run_validation(self, model, dataloader):
        model.eval()
        outputs = {}
        with torch.autograd.set_grad_enabled(False):
            for batch_idx, batch in enumerate(dataloader):
                model._logged = {}
                model.validation_step(batch, batch_idx)
                for k, v in model._logged.items():
                    outputs.setdefault(k, []).append(v)
        model.train()
        self.callback_metrics = {k: torch.stack(v).mean() for k, v in outputs.items()}
        return self.callback_metrics

    def validate(self, model, dataloaders, ckpt_path=None):
        if ckpt_path == "best":
            ckpt_path = next(cb for cb in self.callbacks if isinstance(cb, ModelCheckpoint)).best_model_path
        if ckpt_path is not None:
            checkpoint = torch.load(ckpt_path, weights_only=True)
            model.load_state_dict(checkpoint["state_dict"])
        return self._run_validation(model, dataloaders)


# ---------------------------------------------------------------- the user's module
class LitClassifier(LightningModule):
    def __init__(self, in_dim=8, hidden=32, n_classes=3, lr=1e-2):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, n_classes))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return {"loss": loss}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True)
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=1e-2)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=120, eta_min=1e-4)
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]


# three Gaussian classes in 8-d, some overlap
centers = rng.standard_normal((3, 8)).astype(np.float32)
labels = rng.integers(0, 3, size=600)
feats = centers[labels] + 0.9 * rng.standard_normal((600, 8)).astype(np.float32)
X, Y = torch.from_numpy(feats), torch.from_numpy(labels.astype(np.int64))
train_ds = TensorDataset(X[:480], Y[:480])
val_ds = TensorDataset(X[480:], Y[480:])
train_loader = DataLoader(train_ds, batch_size=16, shuffle=True)
val_loader = DataLoader(val_ds, batch_size=40)

# gradient accumulation over two half batches equals one full-batch gradient
probe = LitClassifier()
probe.eval()
xb, yb = X[:32], Y[:32]
probe.zero_grad()
probe.training_step((xb, yb), 0)["loss"].backward()
full = [p.grad.clone() for p in probe.parameters()]
probe.zero_grad()
for i in range(2):
    (probe.training_step((xb[16 * i:16 * (i + 1)], yb[16 * i:16 * (i + 1)]), i)["loss"] / 2).backward()
print("accumulated == full-batch gradient:",
      all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(full, probe.parameters())))

with tempfile.TemporaryDirectory() as tmp:
    model = LitClassifier()
    early = EarlyStopping(monitor="val_loss", min_delta=1e-3, patience=2, mode="min")
    ckpt = ModelCheckpoint(dirpath=tmp, monitor="val_loss", mode="min", save_top_k=2)
    lr_monitor = LearningRateMonitor(logging_interval="step")
    trainer = Trainer(max_epochs=8, callbacks=[early, ckpt, lr_monitor], accumulate_grad_batches=2,
                      gradient_clip_val=1.0, gradient_clip_algorithm="norm")
    trainer.fit(model, train_loader, val_loader)
    epochs_run = trainer.current_epoch + 1
    last = {k: v.item() for k, v in trainer.callback_metrics.items()}
    files = sorted(os.listdir(tmp))
    lrs = lr_monitor.lrs["lr-AdamW"]
    print("epochs run:", epochs_run, "norm-clipped run: total norm within 1.0:", trainer.clipped_max_norm <= 1.0 + 1e-5)
    print("checkpoints kept:", len(files), "no partial files:", not any(f.endswith(".part") for f in files))
    print("lr records == optimizer steps:", len(lrs) == trainer.global_step,
          "lr decreasing:", all(a >= b for a, b in zip(lrs, lrs[1:])))
    print(f"early stopping best {early.best_score.item():.4f}, checkpoint best {ckpt.best_model_score.item():.4f}")

    # resume from the best checkpoint into fresh objects and validate again
    checkpoint = torch.load(ckpt.best_model_path, weights_only=True)
    resumed = LitClassifier()
    resumed.load_state_dict(checkpoint["state_dict"])
    opt, sched = resumed.configure_optimizers()
    opt[0].load_state_dict(checkpoint["optimizer_states"][0])
    sched[0]["scheduler"].load_state_dict(checkpoint["lr_schedulers"][0])
    print("resumed scheduler step == checkpoint global step:",
          sched[0]["scheduler"].last_epoch == checkpoint["global_step"],
          "optimizer state steps:", len(opt[0].state_dict()["state"]))
    revalidated = trainer.validate(resumed, val_loader, ckpt_path="best")
    best_val_loss = revalidated["val_loss"].item()
    print("re-validated best == recorded best:",
          abs(best_val_loss - ckpt.best_model_score.item()) < 1e-6)
    best_val_acc = revalidated["val_acc"].item()

# the same module trained with clipping by value and no accumulation
value_model = LitClassifier()
value_trainer = Trainer(max_epochs=3, gradient_clip_val=0.05, gradient_clip_algorithm="value")
value_trainer.fit(value_model, train_loader, val_loader)
value_acc = value_trainer.callback_metrics["val_acc"].item()
print("value-clipped run: every entry within 0.05:", value_trainer.clipped_max_abs <= 0.05 + 1e-6,
      "steps:", value_trainer.global_step)
print(f"FINAL best_val_loss={best_val_loss:.4f} best_val_acc={best_val_acc:.4f} last_val_acc={last['val_acc']:.4f} "
      f"value_clip_acc={value_acc:.4f}")
