"""``chainrule eval --checkpoint F``: test accuracy and confusion matrix of a trained model."""

from __future__ import annotations

import argparse
import os
import pickle

import numpy as np

from .train import DATASETS, evaluate, load_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a model.safetensors written by chainrule train")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="dataset to evaluate on (default: the one it was trained on)")


def load_checkpoint(path: str) -> dict:
    """The checkpoint written by ``chainrule train``; anything else is a CommandError."""
    import chainrule

    from ..cli import CommandError

    if not os.path.isfile(path):
        raise CommandError(f"no checkpoint at {path!r}")
    try:
        checkpoint = chainrule.load(path, map_location="cpu")  # trained on any device, evaluated on the CPU
    except (OSError, RuntimeError, pickle.UnpicklingError) as exc:
        raise CommandError(str(exc)) from None
    needed = ("state_dict", "model", "dataset", "input_shape", "num_classes")
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in needed):
        raise CommandError(f"{path!r} is not a checkpoint written by 'chainrule train' "
                           f"(it needs the keys {', '.join(needed)})")
    _check_fields(checkpoint, path)
    return checkpoint


MAX_CLASSES = 10_000


def _check_fields(checkpoint: dict, path: str) -> None:
    """Every stored setting is checked before a model is built from it: the file is untrusted,
    and a stored ``num_classes = 10**12`` would otherwise ask for terabytes."""
    from .. import models
    from ..cli import CommandError
    from ..tensor import Tensor

    def bad(key, expected):
        value = " ".join(repr(checkpoint[key]).split())
        raise CommandError(f"{path!r} has a bad {key!r}: expected {expected}, got {value[:80]}")

    if checkpoint["model"] not in models.NAMES:
        bad("model", f"one of {', '.join(models.NAMES)}")
    if checkpoint["dataset"] not in DATASETS:
        bad("dataset", f"one of {', '.join(DATASETS)}")
    shape = checkpoint["input_shape"]
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or not all(
            type(n) is int and 1 <= n <= 4096 for n in shape):
        bad("input_shape", "a list of 1 to 3 sizes")
    classes = checkpoint["num_classes"]
    if type(classes) is not int or not 1 <= classes <= MAX_CLASSES:
        bad("num_classes", f"an integer from 1 to {MAX_CLASSES}")
    state = checkpoint["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        bad("state_dict", "a dict of tensors")


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts[true, predicted]."""
    return np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def format_confusion(matrix: np.ndarray) -> str:
    width = max(4, len(str(matrix.max())) + 1)
    k = len(matrix)
    lines = ["true \\ predicted", "      " + "".join(f"{j:>{width}}" for j in range(k))]
    lines += [f"{i:>5} " + "".join(f"{v:>{width}}" for v in row) for i, row in enumerate(matrix)]
    return "\n".join(lines)


def run(args) -> int:
    from .. import models
    from ..cli import CommandError

    checkpoint = load_checkpoint(args.checkpoint)
    dataset = args.dataset or checkpoint["dataset"]
    split = load_dataset(dataset)
    if list(split.input_shape) != list(checkpoint["input_shape"]):
        raise CommandError(f"the checkpoint's {checkpoint['model']} takes inputs of shape "
                           f"{tuple(checkpoint['input_shape'])} but {dataset} has {split.input_shape}")
    try:
        model = models.build(checkpoint["model"], split.input_shape, checkpoint["num_classes"])
        model.load_state_dict(checkpoint["state_dict"])
    except (ValueError, RuntimeError, KeyError) as exc:
        raise CommandError(f"can't restore the model from {args.checkpoint!r}: {str(exc).splitlines()[0]}") from None
    loss, accuracy, predicted = evaluate(model, split.x_test, split.y_test)
    labels = split.y_test._data
    print(f"{checkpoint['model']} on {dataset}: test accuracy {accuracy:.2%} "
          f"({int((predicted == labels).sum())}/{len(labels)}), mean cross-entropy {loss:.4f}")
    print(format_confusion(confusion_matrix(labels, predicted, checkpoint["num_classes"])))
    return 0
