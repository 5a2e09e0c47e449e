"""``chainrule train``: train a model from the zoo on a bundled dataset, log and checkpoint it.

With no arguments it trains a small CNN on scikit-learn's digits (≥ 97% test accuracy in a few
seconds). Writes ``metrics.csv``, ``curves.png`` and ``model.safetensors`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time

import numpy as np

DATASETS = ("digits", "mnist", "mnist1d")
OPTIMIZERS = ("sgd", "momentum", "adam")
# per dataset: epochs, batch size, learning rate (for adam; sgd gets 10x, see _default_lr)
DEFAULTS = {"digits": (15, 32, 3e-3), "mnist": (8, 64, 2e-3), "mnist1d": (40, 100, 1e-2)}
VANISHING, EXPLODING = 1e-7, 1e3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="digits", help="dataset (default: digits)")
    parser.add_argument("--model", choices=("logistic", "mlp", "cnn", "gru"), default="cnn",
                        help="model (default: cnn)")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=None, help="examples per step")
    parser.add_argument("--lr", type=float, default=None, help="learning rate")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optimizer (default: adam)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", default=None, help="output directory (default: runs/<dataset>-<model>)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training examples")
    parser.add_argument("--watch-grads", action="store_true",
                        help="print per-layer gradient norms each epoch; flag vanishing/exploding layers")
    parser.add_argument("--nprocs", type=int, default=1,
                        help="train data-parallel on N processes through MPI (default: 1)")


# ------------------------------------------------------------------------------ helpers
def load_dataset(name: str):
    """The dataset's Split; a missing extra or unknown name is a CommandError."""
    from .. import datasets
    from ..cli import CommandError

    if name not in datasets.NAMES:
        raise CommandError(f"unknown dataset {name!r}: choose from {', '.join(datasets.NAMES)}")
    try:
        return datasets.NAMES[name]()
    except ImportError as exc:
        raise CommandError(str(exc)) from None


def evaluate(model, x, y, batch_size: int = 500) -> tuple[float, float, np.ndarray]:
    """Mean cross-entropy, accuracy and predicted labels of ``model`` on (x, y), in eval mode."""
    import chainrule
    from chainrule.nn import functional as F

    was_training = model.training
    model.eval()
    total, correct, predictions = 0.0, 0, []
    with chainrule.no_grad():
        for start in range(0, len(y), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            logits = model(xb)
            total += float(F.cross_entropy(logits, yb, reduction="sum"))
            predicted = logits._data.argmax(axis=1)
            correct += int((predicted == yb._data).sum())
            predictions.append(predicted)
    model.train(was_training)
    n = max(len(y), 1)
    return total / n, correct / n, np.concatenate(predictions) if predictions else np.zeros(0, np.int64)


class GradientWatch:
    """Collects each parameter's gradient norm after every step; reports per-layer means per epoch
    and flags layers whose gradients vanish (< 1e-7) or explode (> 1e3)."""

    def __init__(self, model) -> None:
        self.parameters = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self.reset()

    def reset(self) -> None:
        self.sums = {name: 0.0 for name, _ in self.parameters}
        self.steps = 0

    def record(self) -> None:
        for name, p in self.parameters:
            if p.grad is not None:
                self.sums[name] += float(np.linalg.norm(p.grad._data.ravel()))
        self.steps += 1

    def norms(self) -> dict[str, float]:
        """Mean gradient norm per layer (parameters grouped by their module's name)."""
        layers: dict[str, list[float]] = {}
        for name, total in self.sums.items():
            layer = name.rsplit(".", 1)[0] if "." in name else name
            layers.setdefault(layer, []).append(total / max(self.steps, 1))
        return {layer: math.sqrt(sum(v * v for v in values)) for layer, values in layers.items()}

    def report(self) -> list[str]:
        lines = []
        for layer, norm in self.norms().items():
            flag = "  <- vanishing" if norm < VANISHING else "  <- exploding" if norm > EXPLODING else ""
            lines.append(f"    grad norm {layer:<24} {norm:.3e}{flag}")
        return lines


def make_optimizer(name: str, parameters, lr: float):
    from .. import optim

    if name == "sgd":
        return optim.SGD(parameters, lr=lr)
    if name == "momentum":
        return optim.SGD(parameters, lr=lr, momentum=0.9)
    return optim.Adam(parameters, lr=lr)


def _default_lr(dataset: str, optimizer: str) -> float:
    lr = DEFAULTS[dataset][2]
    return lr * 10 if optimizer == "sgd" else lr


def _progress(iterable, total: int, desc: str):
    """A tqdm bar on a terminal; the plain iterable otherwise (no tqdm or output redirected)."""
    if not sys.stderr.isatty():
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def write_metrics(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_curves(path: str, rows: list[dict], title: str) -> bool:
    """Loss and accuracy curves as a PNG; False (and a note) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('curves.png skipped: matplotlib is missing (pip install "chainrule[plot]")', file=sys.stderr)
        return False
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split in ("train", "test"):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in rows], marker="o", label=split)
        ax_acc.plot(epochs, [r[f"{split}_acc"] for r in rows], marker="o", label=split)
    ax_loss.set(xlabel="epoch", ylabel="mean cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# ------------------------------------------------------------------------------ the command
def _check_args(args) -> None:
    from ..cli import CommandError

    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--limit", args.limit),
                        ("--nprocs", getattr(args, "nprocs", 1))):
        if value is not None and value < 1:
            raise CommandError(f"{flag} must be a positive integer, got {value}")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise CommandError(f"--lr must be a positive number, got {args.lr}")


def run(args) -> int:
    import chainrule
    from chainrule.nn import functional as F

    from .. import models
    from ..cli import CommandError

    if args.nprocs != 1 or os.environ.get("CHAINRULE_TRAIN_WORKER") == "1":
        from .train_distributed import run as run_distributed

        return run_distributed(args)
    _check_args(args)
    epochs = args.epochs or DEFAULTS[args.dataset][0]
    batch_size = args.batch_size or DEFAULTS[args.dataset][1]
    lr = args.lr or _default_lr(args.dataset, args.optimizer)
    out = args.out or os.path.join("runs", f"{args.dataset}-{args.model}")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"can't create output directory {out!r}: {exc.strerror}") from None

    split = load_dataset(args.dataset)
    x_train, y_train = split.x_train, split.y_train
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    chainrule.manual_seed(args.seed)
    model = models.build(args.model, split.input_shape, split.num_classes)
    optimizer = make_optimizer(args.optimizer, model.parameters(), lr)
    watch = GradientWatch(model) if args.watch_grads else None
    n_params = sum(p.numel() for p in model.parameters())
    print(f"training {args.model} ({n_params:,} parameters) on {args.dataset}: {len(y_train)} train / "
          f"{len(split.y_test)} test examples, {epochs} epochs, batch {batch_size}, {args.optimizer} lr {lr:g}")

    from ..utils.data import DataLoader, TensorDataset

    # TensorDataset batches are fancy-indexed whole: no per-example Python loop
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True,
                        generator=chainrule.Generator().manual_seed(args.seed))
    rows, started = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        running, seen = 0.0, 0
        bar = _progress(loader, len(loader), f"epoch {epoch}/{epochs}")
        for xb, yb in bar:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            if watch is not None:
                watch.record()
            optimizer.step()
            value = float(loss)
            if not math.isfinite(value):
                raise CommandError(f"the loss became {value} in epoch {epoch}: lower --lr (now {lr:g})")
            running += value * len(yb)
            seen += len(yb)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{running / seen:.4f}")
        train_loss, train_acc, _ = evaluate(model, x_train, y_train)
        test_loss, test_acc, _ = evaluate(model, split.x_test, split.y_test)
        elapsed = time.perf_counter() - started
        rows.append({"epoch": epoch, "train_loss": round(train_loss, 6), "train_acc": round(train_acc, 6),
                     "test_loss": round(test_loss, 6), "test_acc": round(test_acc, 6),
                     "seconds": round(elapsed, 3)})
        print(f"epoch {epoch:>3}/{epochs}  train loss {train_loss:.4f} acc {train_acc:6.2%}  "
              f"test loss {test_loss:.4f} acc {test_acc:6.2%}  ({elapsed:.1f}s)", flush=True)
        if watch is not None:
            print("\n".join(watch.report()), flush=True)
            watch.reset()

    write_metrics(os.path.join(out, "metrics.csv"), rows)
    plot_curves(os.path.join(out, "curves.png"), rows, f"{args.model} on {args.dataset}")
    settings = {"dataset": args.dataset, "model": args.model, "epochs": epochs, "batch_size": batch_size,
                "lr": lr, "optimizer": args.optimizer, "seed": args.seed, "limit": args.limit}
    chainrule.save({"state_dict": model.state_dict(), "dataset": args.dataset, "model": args.model,
                    "input_shape": list(split.input_shape), "num_classes": split.num_classes,
                    "args": settings, "test_acc": rows[-1]["test_acc"]},
                   os.path.join(out, "model.safetensors"))
    print(f"test accuracy {rows[-1]['test_acc']:.2%}; wrote metrics.csv, curves.png and model.safetensors "
          f"to {out}")
    return 0
