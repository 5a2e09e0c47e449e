"""Channels-last in, torch's layout out: pooling, padding, normalisation and transposed convolution
hand back the strides torch 2.13's CPU kernels give (channels-last where the input's strides suggest
it, contiguous where torch writes contiguous), with the same values and gradients; what module_db's
channels-last check found (tools/torch_moduleinfo_trial.py)."""

# ruff: noqa: E731  (the case table is lambdas)

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _format(lib, ndim):
    return lib.channels_last if ndim == 4 else lib.channels_last_3d


# how the input is laid out in memory, made with each library's own ops from the same values
LAYOUTS = {
    "channels_last": lambda lib, x: x.contiguous(memory_format=_format(lib, x.ndim)),
    "contiguous": lambda lib, x: x,
    # a strided slice of a channels-last tensor: not dense, still suggests channels-last
    "sliced_channels_last": lambda lib, x: lib.cat([x, x], -1).contiguous(memory_format=_format(lib, x.ndim))[..., ::2],
    # (N, W, H, C) memory: permuted, but not channels-last, so torch's kernels write contiguous
    "width_major": lambda lib, x: x.transpose(2, -1).contiguous().transpose(2, -1),
}

S4, S5 = (2, 3, 6, 7), (2, 3, 4, 5, 6)


def _ones(lib, x, *shape):
    return lib.ones(*shape, dtype=x.dtype)


CASES = {
    "max_pool2d": (S4, lambda lib, F, x: F.max_pool2d(x, 2, return_indices=True)),
    "max_pool2d_padded_ceil": (S4, lambda lib, F, x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    "max_pool3d": (S5, lambda lib, F, x: F.max_pool3d(x, 2, return_indices=True)),
    "avg_pool2d": (S4, lambda lib, F, x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    "avg_pool3d_writes_contiguous": (S5, lambda lib, F, x: F.avg_pool3d(x, 2)),
    "adaptive_avg_pool2d": (S4, lambda lib, F, x: F.adaptive_avg_pool2d(x, (4, 3))),
    "adaptive_avg_pool3d_writes_contiguous": (S5, lambda lib, F, x: F.adaptive_avg_pool3d(x, (3, 2, 2))),
    "adaptive_max_pool2d": (S4, lambda lib, F, x: F.adaptive_max_pool2d(x, (4, 3), return_indices=True)),
    "adaptive_max_pool3d_writes_contiguous": (S5, lambda lib, F, x: F.adaptive_max_pool3d(x, 2, return_indices=True)),
    "lp_pool2d": (S4, lambda lib, F, x: F.lp_pool2d(x, 2, 2)),
    "max_unpool2d": (S4, lambda lib, F, x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2, output_size=(6, 7))),
    "max_unpool3d_writes_contiguous": (S5, lambda lib, F, x: F.max_unpool3d(*F.max_pool3d(x, 2, return_indices=True), 2, output_size=(4, 5, 6))),
    "constant_pad2d": (S4, lambda lib, F, x: F.pad(x, (1, 2, 0, 1), value=0.5)),
    "constant_pad_cropping": (S4, lambda lib, F, x: F.pad(x, (-1, 0, 0, -2))),
    "constant_pad_of_channels": (S4, lambda lib, F, x: F.pad(x, (1, 2, 1, 1, 1, 1))),
    "constant_pad3d": (S5, lambda lib, F, x: F.pad(x, (1, 2, 1, 1, 1, 0))),
    "reflection_pad2d": (S4, lambda lib, F, x: F.pad(x, (1, 2, 2, 1), mode="reflect")),
    "reflection_pad2d_cropping": (S4, lambda lib, F, x: F.pad(x, (-1, 2, 1, 1), mode="reflect")),
    "replication_pad3d": (S5, lambda lib, F, x: F.pad(x, (1, 2, 1, 1, 1, 0), mode="replicate")),
    "circular_pad2d_writes_contiguous": (S4, lambda lib, F, x: F.pad(x, (1, 2, 1, 1), mode="circular")),
    "batch_norm_training_without_affine": (S4, lambda lib, F, x: F.batch_norm(x, None, None, training=True)),
    "batch_norm3d_training_with_running_stats": (S5, lambda lib, F, x: F.batch_norm(
        x, lib.zeros(3, dtype=x.dtype), lib.ones(3, dtype=x.dtype), training=True)),
    "batch_norm_eval": (S4, lambda lib, F, x: F.batch_norm(x, lib.zeros(3, dtype=x.dtype), _ones(lib, x, 3))),
    "group_norm": (S4, lambda lib, F, x: F.group_norm(x, 3, _ones(lib, x, 3), lib.zeros(3, dtype=x.dtype))),
    "group_norm3d": (S5, lambda lib, F, x: F.group_norm(x, 1)),
    "instance_norm_writes_contiguous": (S4, lambda lib, F, x: F.instance_norm(x)),
    "instance_norm_with_running_stats_writes_contiguous": (S4, lambda lib, F, x: F.instance_norm(
        x, lib.zeros(3, dtype=x.dtype), _ones(lib, x, 3), use_input_stats=False)),
    "layer_norm_writes_contiguous": (S4, lambda lib, F, x: F.layer_norm(x, (7,))),
    "rms_norm": (S4, lambda lib, F, x: F.rms_norm(x, (6, 7), _ones(lib, x, 6, 7))),
    "local_response_norm": (S4, lambda lib, F, x: F.local_response_norm(x, 2)),
    "local_response_norm3d": (S5, lambda lib, F, x: F.local_response_norm(x, 3)),
    "conv_transpose2d": (S4, lambda lib, F, x: F.conv_transpose2d(
        x, lib.linspace(-1, 1, 54, dtype=x.dtype).reshape(3, 2, 3, 3), groups=1, stride=2, output_padding=1)),
    "conv_transpose3d": (S5, lambda lib, F, x: F.conv_transpose3d(
        x, lib.linspace(-1, 1, 48, dtype=x.dtype).reshape(3, 2, 2, 2, 2), _ones(lib, x, 2))),
}


def _facts(lib, t):
    """What a user can see of a tensor's layout, and its values."""
    facts = (tuple(t.stride()), t.is_contiguous())
    if t.ndim in (4, 5):
        facts += (t.is_contiguous(memory_format=_format(lib, t.ndim)),)
    return facts, t.detach().numpy()


def _run(lib, name, layout, dtype):
    shape, op = CASES[name]
    values = np.random.default_rng(0).standard_normal(shape)
    x = LAYOUTS[layout](lib, lib.tensor(values, dtype=getattr(lib, dtype))).detach().requires_grad_()
    outputs = op(lib, lib.nn.functional, x)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    cotangent = np.random.default_rng(1).standard_normal(tuple(outputs[0].shape))
    outputs[0].backward(lib.tensor(cotangent, dtype=outputs[0].dtype))
    return [_facts(lib, t) for t in outputs] + [_facts(lib, x.grad)]


# torch's local_response_norm views a 5-d input as (N, 1, C, D, -1), which a permuted one refuses
TORCH_REFUSES = {("local_response_norm3d", "width_major")}


@pytest.mark.parametrize("name, layout", [(name, layout) for name in sorted(CASES) for layout in sorted(LAYOUTS)
                                          if (name, layout) not in TORCH_REFUSES])
def test_output_and_gradient_layouts_match_torch(name, layout):
    dtypes = ("float32", "float64") if name.startswith("conv_transpose3d") else ("float32",)
    for dtype in dtypes:  # torch's 3-d transposed conv is channels-last in float32 only
        ours, theirs = _run(chainrule, name, layout, dtype), _run(torch, name, layout, dtype)
        tolerance = 1e-5 if dtype == "float32" else 1e-12
        for i, ((my_layout, my_values), (their_layout, their_values)) in enumerate(zip(ours, theirs)):
            assert my_layout == their_layout, f"{dtype} result {i}: strides, contiguous, channels-last"
            np.testing.assert_allclose(my_values, their_values, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("shape", [(2, 1, 4, 4), (2, 3, 1, 1), (1, 3, 4, 4), (0, 3, 4, 4)])
def test_ambiguous_channels_last_inputs_are_read_as_torch_reads_them(shape):
    # one channel, a 1x1 plane, a batch of one or none: strides that fit both layouts (batch norm's
    # empty output is left out: torch clones an empty channels-last input with its strides, and
    # NumPy keeps no strides for an empty array)
    results = []
    for lib in (chainrule, torch):
        x = lib.zeros(shape).contiguous(memory_format=lib.channels_last)
        outputs = lib.nn.functional.max_pool2d(x, 1, return_indices=True) + (lib.nn.functional.pad(x, (1, 1)),)
        if x.numel():
            outputs += (lib.nn.functional.batch_norm(x, None, None, training=True),)
        results.append([(tuple(t.shape), tuple(t.stride()), t.is_contiguous(),
                         t.is_contiguous(memory_format=lib.channels_last)) for t in outputs])
    assert results[0] == results[1]


def test_flattening_after_a_channels_last_pool_fails_and_succeeds_as_torch():
    for lib in (chainrule, torch):
        x = lib.zeros(2, 3, 6, 6).contiguous(memory_format=lib.channels_last)
        pooled = lib.nn.functional.max_pool2d(x, 2)
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            pooled.view(2, -1)
        assert tuple(pooled.reshape(2, -1).shape) == (2, 27)
        assert tuple(lib.nn.functional.max_pool2d(x.contiguous(), 2).view(2, -1).shape) == (2, 27)


def test_a_leaf_gets_its_own_layout_when_its_gradient_is_copied():
    # the cotangent's array is shared with the caller, so the engine copies it into .grad: the copy
    # keeps the channels-last leaf's strides, as torch's gradient layout contract does
    strides = []
    for lib in (chainrule, torch):
        x = lib.zeros(2, 3, 4, 5).contiguous(memory_format=lib.channels_last).requires_grad_()
        cotangent = lib.ones(2, 3, 4, 5).contiguous(memory_format=lib.channels_last)
        x.clone().backward(cotangent)
        strides.append(tuple(x.grad.stride()))
        assert x.grad is not cotangent
    assert strides[0] == strides[1] == (60, 1, 15, 3)


@pytest.mark.parametrize("shape", [(0, 5, 2, 2), (2, 0, 2, 2), (0, 1, 1, 1), (1, 0, 1, 1), (0, 5, 2, 2, 2),
                                   (0, 1, 1, 1, 1), (3, 0, 1, 1, 1)])
def test_empty_tensors_answer_is_contiguous_as_torch(shape):
    answers = []
    for lib in (chainrule, torch):
        t = lib.empty(*shape)
        answers.append((t.is_contiguous(), t.is_contiguous(memory_format=_format(lib, len(shape))),
                        t.is_contiguous(memory_format=_format(lib, 9 - len(shape)))))
    assert answers[0] == answers[1]


def _outcome(call):
    try:
        out = call()
    except Exception as error:  # noqa: BLE001 - the exception itself is compared
        return type(error).__name__, str(error)
    return tuple(out.shape), out.grad_fn.name() if out.grad_fn is not None else None


@pytest.mark.parametrize("case", [
    "empty_training", "empty_eval", "empty_with_weight", "values_without_stats", "values_with_stats",
    "values_without_stats_eval", "one_value_training", "scalar_training"])
def test_batch_norm_of_an_input_without_channels_as_torch(case):
    def call(lib):
        F = lib.nn.functional
        return {
            "empty_training": lambda: F.batch_norm(lib.ones(0, requires_grad=True), lib.zeros(0), lib.ones(0),
                                                   training=True),
            "empty_eval": lambda: F.batch_norm(lib.ones(0), lib.zeros(0), lib.ones(0)),
            "empty_with_weight": lambda: F.batch_norm(lib.ones(0), None, None, lib.ones(2), lib.ones(2),
                                                      training=True),
            "values_without_stats": lambda: F.batch_norm(lib.ones(3), None, None, training=True),
            "values_with_stats": lambda: F.batch_norm(lib.ones(3), lib.zeros(3), lib.ones(3)),
            "values_without_stats_eval": lambda: F.batch_norm(lib.ones(3), None, None),
            "one_value_training": lambda: F.batch_norm(lib.ones(1), None, None, training=True),
            "scalar_training": lambda: F.batch_norm(lib.tensor(1.0), None, None, training=True),
        }[case]()
    assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))


@pytest.mark.parametrize("case", [
    "statistic_of_wrong_size", "statistic_of_two_dims", "weight_of_wrong_size", "bias_of_wrong_size",
    "weight_of_two_dims", "variance_missing_in_eval", "mean_missing_in_eval", "empty_input_with_wrong_sizes"])
def test_batch_norm_checks_its_parameters_as_torch(case):
    def call(lib):
        F, x = lib.nn.functional, lib.ones(2, 3, 4)
        return {
            "statistic_of_wrong_size": lambda: F.batch_norm(x, lib.zeros(4), None, training=True),
            "statistic_of_two_dims": lambda: F.batch_norm(x, lib.zeros(3, 1), lib.ones(3, 1), training=True),
            "weight_of_wrong_size": lambda: F.batch_norm(x, lib.zeros(3), lib.ones(3), lib.ones(4)),
            "bias_of_wrong_size": lambda: F.batch_norm(x, lib.zeros(3), lib.ones(3), None, lib.ones(4)),
            "weight_of_two_dims": lambda: F.batch_norm(x, None, None, lib.ones(3, 1), training=True),
            "variance_missing_in_eval": lambda: F.batch_norm(x, lib.zeros(3), None),
            "mean_missing_in_eval": lambda: F.batch_norm(x, None, None),
            "empty_input_with_wrong_sizes": lambda: F.batch_norm(lib.ones(0, 3, 4), lib.zeros(4), lib.ones(4)),
        }[case]()
    assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))
