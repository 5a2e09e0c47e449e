"""``chainrule train``: train a model from the zoo on a bundled dataset, log and checkpoint it.

With no arguments it trains a small CNN on scikit-learn's digits (≥ 97% test accuracy in a few
seconds). Writes ``metrics.csv``, ``curves.png`` and ``model.safetensors`` into ``--out``, and
after every epoch a resumable ``checkpoint.safetensors`` (weights, optimizer, epoch, RNG and
shuffling state), so an interrupted run continues bit-identically with ``--resume DIR``. A run
never overwrites another: the default directory is versioned (``runs/digits-cnn-2``), an explicit
``--out`` that holds a run needs ``--overwrite``, and a run that fails before its first epoch
removes the directory it created.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
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
    parser.add_argument("--device", default="cpu",
                        help="where to train: cpu, cuda or cuda:N (cuda needs CuPy and a GPU; default: cpu)")
    parser.add_argument("--out", default=None, help="output directory (default: runs/<dataset>-<model>)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use a stratified random subset of N training examples (every class in proportion)")
    parser.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    parser.add_argument("--resume", metavar="DIR", default=None,
                        help="continue the interrupted run in DIR from its last finished epoch")
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
    device = next(iter(model.parameters())).device
    x, y = x.to(device), y.to(device)  # no copy when they are there already
    total, correct, predictions = 0.0, 0, []
    with chainrule.no_grad():
        for start in range(0, len(y), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            logits = model(xb)
            total += float(F.cross_entropy(logits, yb, reduction="sum"))
            predicted = logits.argmax(dim=1)
            correct += int((predicted == yb).sum())
            predictions.append(predicted.cpu().numpy())
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


# ------------------------------------------------------------------------------ run directories
RUN_FILES = ("metrics.csv", "curves.png", "model.safetensors", "checkpoint.safetensors")
CHECKPOINT = "checkpoint.safetensors"


def report_epoch(model, x_train, y_train, split, epoch: int, epochs: int, started: float, watch) -> dict:
    """Evaluate after an epoch, print its line (and the gradient watch's report), return its row."""
    train_loss, train_acc, _ = evaluate(model, x_train, y_train)
    test_loss, test_acc, _ = evaluate(model, split.x_test, split.y_test)
    elapsed = time.perf_counter() - started
    print(f"epoch {epoch:>3}/{epochs}  train loss {train_loss:.4f} acc {train_acc:6.2%}  "
          f"test loss {test_loss:.4f} acc {test_acc:6.2%}  ({elapsed:.1f}s)", flush=True)
    if watch is not None:
        print("\n".join(watch.report()), flush=True)
        watch.reset()
    return {"epoch": epoch, "train_loss": round(train_loss, 6), "train_acc": round(train_acc, 6),
            "test_loss": round(test_loss, 6), "test_acc": round(test_acc, 6), "seconds": round(elapsed, 3)}


def write_run(out: str, rows: list[dict], model, split, args, settings: dict, title: str) -> None:
    """The finished run's files: metrics.csv, curves.png and the model checkpoint."""
    import chainrule

    write_metrics(os.path.join(out, "metrics.csv"), rows)
    plot_curves(os.path.join(out, "curves.png"), rows, title)
    chainrule.save({"state_dict": model.state_dict(), "dataset": args.dataset, "model": args.model,
                    "input_shape": list(split.input_shape), "num_classes": split.num_classes,
                    "args": settings, "test_acc": rows[-1]["test_acc"]},
                   os.path.join(out, "model.safetensors"))
    print(f"test accuracy {rows[-1]['test_acc']:.2%}; wrote metrics.csv, curves.png and model.safetensors "
          f"to {out}", flush=True)


def _holds_run(directory: str) -> bool:
    return any(os.path.exists(os.path.join(directory, name)) for name in RUN_FILES)


def choose_out(requested: str | None, dataset: str, model: str, overwrite: bool) -> str:
    """The run directory: the default is versioned past existing runs; an explicit one that holds
    a run is refused unless ``overwrite``."""
    from ..cli import CommandError

    if requested is None:
        base = os.path.join("runs", f"{dataset}-{model}")
        out, n = base, 1
        while _holds_run(out) and not overwrite:
            n += 1
            out = f"{base}-{n}"
        return out
    if _holds_run(requested) and not overwrite:
        raise CommandError(f"{requested!r} already holds a run: pass --overwrite to replace it, --resume "
                           f"{requested} to continue it, or choose another --out")
    return requested


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the last finished epoch's checkpoint is kept."""


def _raise_interrupt(signum, frame):
    raise _Terminated


def load_resume_state(directory: str) -> dict:
    """The checkpoint an interrupted run left in ``directory``; anything else is a CommandError."""
    from .. import load
    from ..cli import CommandError

    path = os.path.join(directory, CHECKPOINT)
    if not os.path.isfile(path):
        raise CommandError(f"nothing to resume in {directory!r}: it has no {CHECKPOINT}")
    try:
        state = load(path, map_location="cpu")  # load_state_dict copies it onto the run's device
    except (OSError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    needed = {"settings": dict, "epoch": int, "model": dict, "optimizer": dict, "rows": list}
    if not isinstance(state, dict) or any(not isinstance(state.get(k), t) for k, t in needed.items()):
        raise CommandError(f"{path!r} is not a resumable checkpoint written by 'chainrule train'")
    return state


# ------------------------------------------------------------------------------ the command
def _device(name: str):
    """``--device`` as a chainrule.device, or a CommandError saying why it can't be used."""
    import chainrule
    from chainrule._backend import module_for_device

    from ..cli import CommandError

    try:
        device = chainrule.device(name)
        module_for_device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CommandError(f"--device {name}: {exc}") from None
    return device


def _check_args(args) -> None:
    from ..cli import CommandError

    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--limit", args.limit),
                        ("--nprocs", getattr(args, "nprocs", 1))):
        if value is not None and value < 1:
            raise CommandError(f"{flag} must be a positive integer, got {value}")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise CommandError(f"--lr must be a positive number, got {args.lr}")
    if args.seed < 0:
        raise CommandError(f"--seed must be a non-negative integer, got {args.seed}")


def run(args) -> int:
    from ..cli import CommandError

    _check_args(args)
    if args.nprocs != 1 or os.environ.get("CHAINRULE_TRAIN_WORKER") == "1":
        if args.resume:
            raise CommandError("--resume continues one-process runs only; drop --nprocs to resume")
        from .train_distributed import run as run_distributed

        return run_distributed(args)
    resume = load_resume_state(args.resume) if args.resume else None
    if resume is not None:
        settings = resume["settings"]
        try:
            for key in ("dataset", "model", "optimizer", "seed", "limit", "batch_size", "lr", "epochs"):
                setattr(args, key, settings[key])
        except KeyError as exc:
            raise CommandError(f"the checkpoint in {args.resume!r} lacks the setting {exc}") from None
        _check_resumed_settings(args)
        out = args.resume
    else:
        out = choose_out(args.out, args.dataset, args.model, args.overwrite)
    split = load_dataset(args.dataset)
    created = not os.path.isdir(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"can't create output directory {out!r}: {exc.strerror}") from None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    try:
        return _train(args, split, out, resume)
    except KeyboardInterrupt:
        if os.path.exists(os.path.join(out, CHECKPOINT)):
            # the command line prints this as its one "interrupted" line
            raise KeyboardInterrupt(f"the last finished epoch is saved; continue with "
                                    f"'chainrule train --resume {out}'") from None
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if created and os.path.isdir(out) and not os.listdir(out):
            os.rmdir(out)  # a run that failed before writing anything leaves nothing behind


def _check_resumed_settings(args) -> None:
    """The settings a resumed checkpoint brings are input like the command line's, checked alike."""
    from .. import models
    from ..cli import CommandError

    choices = {"dataset": DATASETS, "model": models.NAMES, "optimizer": OPTIMIZERS}
    for key, allowed in choices.items():
        if getattr(args, key) not in allowed:
            raise CommandError(f"the checkpoint in {args.resume!r} has an unknown {key} {getattr(args, key)!r}")
    for key in ("seed", "batch_size", "epochs", "limit"):
        value = getattr(args, key)
        if value is not None and type(value) is not int:
            raise CommandError(f"the checkpoint in {args.resume!r} has a non-integer {key} {value!r}")
    if args.lr is not None and type(args.lr) is not float:
        raise CommandError(f"the checkpoint in {args.resume!r} has a non-numeric lr {args.lr!r}")
    _check_args(args)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def select_subset(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of a stratified random subset of ``limit`` examples: each class in proportion to
    its share (largest remainders), shuffled together. The training sets are stored sorted by
    class, so their first N would hold only a class or two."""
    if limit >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(y, return_counts=True)
    quota = counts * limit / len(y)
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[:limit - int(take.sum())]
    take[extra] += 1
    chosen = [rng.permutation(np.flatnonzero(y == label))[:n] for label, n in zip(labels, take)]
    return rng.permutation(np.concatenate(chosen))


def _train(args, split, out: str, resume) -> int:
    import chainrule
    from chainrule.nn import functional as F

    from .. import models
    from ..cli import CommandError

    epochs = args.epochs or DEFAULTS[args.dataset][0]
    batch_size = args.batch_size or DEFAULTS[args.dataset][1]
    lr = args.lr or _default_lr(args.dataset, args.optimizer)
    x_train, y_train = split.x_train, split.y_train
    if args.limit is not None:
        keep = chainrule.from_numpy(select_subset(y_train._data, args.limit, args.seed))
        x_train, y_train = x_train[keep], y_train[keep]
    device = _device(args.device)
    # the training set goes to the device once; each batch is then indexed out on the device
    x_train, y_train = x_train.to(device), y_train.to(device)
    chainrule.manual_seed(args.seed)
    model = models.build(args.model, split.input_shape, split.num_classes).to(device)
    optimizer = make_optimizer(args.optimizer, model.parameters(), lr)
    watch = GradientWatch(model) if args.watch_grads else None
    n_params = sum(p.numel() for p in model.parameters())
    settings = {"dataset": args.dataset, "model": args.model, "epochs": epochs, "batch_size": batch_size,
                "lr": lr, "optimizer": args.optimizer, "seed": args.seed, "limit": args.limit}

    from ..utils.data import DataLoader, TensorDataset

    generator = chainrule.Generator().manual_seed(args.seed)
    # TensorDataset batches are fancy-indexed whole: no per-example Python loop
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True, generator=generator)
    rows, first = [], 1
    if resume is not None:
        try:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            chainrule.set_rng_state(resume["rng_state"])
            generator.set_state(resume["loader_rng_state"])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CommandError(f"can't resume from {args.resume!r}: {str(exc).splitlines()[0]}") from None
        rows, first = list(resume["rows"]), resume["epoch"] + 1
        print(f"resuming {args.model} on {args.dataset} after epoch {resume['epoch']}/{epochs}")
    else:
        print(f"training {args.model} ({n_params:,} parameters) on {args.dataset}: {len(y_train)} train / "
              f"{len(split.y_test)} test examples, {epochs} epochs, batch {batch_size}, {args.optimizer} lr {lr:g}")
    started = time.perf_counter() - (rows[-1]["seconds"] if rows else 0.0)
    for epoch in range(first, epochs + 1):
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
            value = loss.item()  # float(loss) would warn: it drops a graph (torch 2.13)
            if not math.isfinite(value):
                raise CommandError(f"the loss became {value} in epoch {epoch}: lower --lr (now {lr:g})")
            running += value * len(yb)
            seen += len(yb)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{running / seen:.4f}")
        rows.append(report_epoch(model, x_train, y_train, split, epoch, epochs, started, watch))
        # everything the next epoch depends on, so a resumed run computes the same bits
        chainrule.save({"settings": settings, "epoch": epoch, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "rng_state": chainrule.get_rng_state(),
                        "loader_rng_state": generator.get_state(), "rows": rows},
                       os.path.join(out, CHECKPOINT))

    write_run(out, rows, model, split, args, settings, f"{args.model} on {args.dataset}")
    return 0
