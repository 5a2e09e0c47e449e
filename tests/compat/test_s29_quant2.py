"""Session 29, quant2 lane: eager-mode static quantization compared with torch.

Observers must record the statistics torch records and choose the same scales and zero points
(exactly: they feed the integers every quantized layer stores); qconfigs must name the same
observers.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.filterwarnings("ignore:Please use quant_min:UserWarning"),
              pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")]


def _batches(seed: int, shape=(4, 6, 5)) -> list[np.ndarray]:
    """Three batches whose ranges grow and shift, so running statistics (and the histogram's
    re-binning onto a wider range) are exercised, not only the first batch."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * spread + shift).astype(np.float32)
            for spread, shift in ((1.0, 0.0), (2.5, 0.7), (0.5, -1.5))]


def _observe(lib, make, batches):
    observer = make(lib.ao.quantization)
    for batch in batches:
        observer(lib.from_numpy(batch.copy()))
    return observer


def _assert_same_observer(ours, theirs) -> None:
    our_state, their_state = ours.state_dict(), theirs.state_dict()
    assert list(our_state) == list(their_state)
    for key in our_state:
        np.testing.assert_array_equal(our_state[key].numpy(), their_state[key].numpy(), err_msg=key)
    (our_scale, our_zero), (their_scale, their_zero) = ours.calculate_qparams(), theirs.calculate_qparams()
    np.testing.assert_array_equal(our_scale.numpy(), their_scale.numpy())
    np.testing.assert_array_equal(our_zero.numpy(), their_zero.numpy())
    assert our_zero.dtype.name == str(their_zero.dtype).removeprefix("torch.")
    assert our_scale.dtype.name == str(their_scale.dtype).removeprefix("torch.")


def _valid(dtype_name, scheme, reduce_range, quant_range=None) -> bool:
    if scheme.endswith("symmetric") and reduce_range and dtype_name == "quint8":
        return False  # torch refuses this (tested with the errors)
    return not (quant_range and quant_range[0] < 0 and dtype_name == "quint8")


_PER_TENSOR_CASES = [(name, (dtype_name, scheme), reduce_range, quant_range) for name, (dtype_name, scheme),
                     reduce_range, quant_range in itertools.product(
    ["MinMaxObserver", "MovingAverageMinMaxObserver", "HistogramObserver"],
    [("quint8", "per_tensor_affine"), ("qint8", "per_tensor_affine"), ("qint8", "per_tensor_symmetric"),
     ("quint8", "per_tensor_symmetric")],
    [False, True],
    [None, (0, 127), (-127, 127)]) if _valid(dtype_name, scheme, reduce_range, quant_range)]
_PER_CHANNEL_CASES = [case for case in itertools.product(
    ["PerChannelMinMaxObserver", "MovingAveragePerChannelMinMaxObserver"], ["qint8", "quint8"],
    ["per_channel_affine", "per_channel_symmetric", "per_channel_affine_float_qparams"], [0, 1, -1],
    [False, True]) if _valid(case[1], case[2], case[4])]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name, dtype_and_scheme, reduce_range, quant_range", _PER_TENSOR_CASES)
def test_per_tensor_observers_match_torch(name, dtype_and_scheme, reduce_range, quant_range, seed):
    dtype_name, scheme = dtype_and_scheme

    def make(q):
        lib = chainrule if q is chainrule.ao.quantization else torch
        limits = dict(zip(("quant_min", "quant_max"), quant_range)) if quant_range else {}
        return getattr(q, name)(dtype=getattr(lib, dtype_name), qscheme=getattr(lib, scheme),
                                reduce_range=reduce_range, **limits)
    batches = _batches(seed)
    _assert_same_observer(_observe(chainrule, make, batches), _observe(torch, make, batches))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name, dtype_name, scheme, ch_axis, reduce_range", _PER_CHANNEL_CASES)
def test_per_channel_observers_match_torch(name, dtype_name, scheme, ch_axis, reduce_range, seed):

    def make(q):
        lib = chainrule if q is chainrule.ao.quantization else torch
        return getattr(q, name)(ch_axis=ch_axis, dtype=getattr(lib, dtype_name), qscheme=getattr(lib, scheme),
                                reduce_range=reduce_range)
    batches = _batches(seed)
    _assert_same_observer(_observe(chainrule, make, batches), _observe(torch, make, batches))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("bins", [2048, 256])
def test_histogram_search_on_heavy_tails_matches_torch(seed, bins):
    # outliers are what the search trims: Student-t and ReLU'd activations, one large batch
    rng = np.random.default_rng(seed)
    batches = [rng.standard_t(3, 5000).astype(np.float32), np.maximum(rng.standard_normal(3000) * 4, 0)
               .astype(np.float32), (rng.standard_normal(2000) * 0.1).astype(np.float32)]

    def make(q):
        return q.HistogramObserver(bins=bins, reduce_range=True)
    _assert_same_observer(_observe(chainrule, make, batches), _observe(torch, make, batches))


@pytest.mark.parametrize("factory", [
    "default_observer", "default_weight_observer", "default_histogram_observer",
    "default_per_channel_weight_observer", "weight_observer_range_neg_127_to_127",
    "per_channel_weight_observer_range_neg_127_to_127", "default_float_qparams_observer",
])
def test_default_observer_factories_match_torch(factory):
    batches = _batches(3)
    ours = _observe(chainrule, lambda q: getattr(q, factory)(), batches)
    theirs = _observe(torch, lambda q: getattr(q, factory)(), batches)
    _assert_same_observer(ours, theirs)
    assert repr(ours) == repr(theirs)


def _outcome(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as error:  # noqa: BLE001  (the class and message are what is compared)
            return type(error).__name__, str(error), [str(w.message) for w in caught]
    text = repr(result).replace("chainrule.", "torch.")
    return "returned", text, [str(w.message) for w in caught]


@pytest.mark.parametrize("call", [
    lambda lib: lib.ao.quantization.MinMaxObserver(qscheme=lib.per_channel_affine),
    lambda lib: lib.ao.quantization.MinMaxObserver(qscheme=lib.per_tensor_symmetric, reduce_range=True),
    lambda lib: lib.ao.quantization.MinMaxObserver(quant_min=1, quant_max=127),
    lambda lib: lib.ao.quantization.MinMaxObserver(quant_min=0, quant_max=0),
    lambda lib: lib.ao.quantization.MinMaxObserver(dtype=lib.qint8, quant_min=-200, quant_max=127),
    lambda lib: lib.ao.quantization.MinMaxObserver(dtype=lib.float32),
    lambda lib: lib.ao.quantization.MinMaxObserver().calculate_qparams(),
    lambda lib: lib.ao.quantization.PerChannelMinMaxObserver().calculate_qparams(),
    lambda lib: lib.ao.quantization.HistogramObserver().calculate_qparams(),
    lambda lib: lib.ao.quantization.PerChannelMinMaxObserver(qscheme=lib.per_tensor_affine),
    lambda lib: lib.ao.quantization.PerChannelMinMaxObserver(is_dynamic=True),
    lambda lib: lib.ao.quantization.MovingAverageMinMaxObserver(qscheme=lib.per_channel_affine),
    lambda lib: lib.ao.quantization.HistogramObserver(qscheme=lib.per_channel_affine),
    lambda lib: lib.ao.quantization.PlaceholderObserver(dtype=lib.quint8).calculate_qparams(),
    lambda lib: lib.ao.quantization.MinMaxObserver(reduce_range=True),
    lambda lib: lib.ao.quantization.PlaceholderObserver(dtype=lib.float16),
    lambda lib: lib.ao.quantization.QConfig(activation=lib.ao.quantization.MinMaxObserver(),
                                            weight=lib.ao.quantization.default_weight_observer),
    lambda lib: lib.ao.quantization.get_default_qconfig("arm"),
    lambda lib: lib.ao.quantization.get_default_qconfig("x86", version=1),
    lambda lib: [lib.ao.quantization.get_default_qconfig(b) for b in ("x86", "fbgemm", "qnnpack", "onednn")],
    lambda lib: (lib.ao.quantization.default_qconfig, lib.ao.quantization.default_dynamic_qconfig,
                 lib.ao.quantization.float_qparams_weight_only_qconfig,
                 lib.ao.quantization.default_per_channel_qconfig),
    lambda lib: lib.ao.quantization.MinMaxObserver.with_args(quant_min=0).with_args(quant_max=15),
    lambda lib: lib.ao.quantization.MinMaxObserver.with_args(quant_min=0, quant_max=15)().quant_max,
    lambda lib: lib.quantization.get_default_qconfig("fbgemm"),
])
def test_observer_errors_warnings_and_reprs_as_torch(call):
    ours, theirs = _outcome(lambda: call(chainrule)), _outcome(lambda: call(torch))
    assert ours == theirs
