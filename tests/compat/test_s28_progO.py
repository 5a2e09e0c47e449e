"""Fixes found by session 28's progO programs (pytorch.org recipes run whole), each checked
against torch 2.13 on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# -- profiler: composite ops get torch's row around the ops they run (profiler_benchmark_recipes)

def _profiled(lib, fn, inputs):
    with lib.profiler.profile(activities=[lib.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        with lib.profiler.record_function("model_inference"):
            fn(lib, *inputs)
    counts = {evt.key: evt.count for evt in prof.key_averages()}
    shapes = {evt.key: evt.input_shapes for evt in prof.key_averages(group_by_input_shape=True)}
    children = {evt.name: sorted(child.name for child in evt.cpu_children) for evt in prof.events()}
    return counts, shapes, children


def _both(fn, *arrays):
    ours = _profiled(chainrule, fn, [chainrule.from_numpy(a) for a in arrays])
    theirs = _profiled(torch, fn, [torch.from_numpy(a) for a in arrays])
    return ours, theirs


COMPOSITES = {
    "aten::linear": (lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), [(5, 12), (4, 12), (4,)]),
    "aten::conv1d": (lambda lib, x, w, b: lib.nn.functional.conv1d(x, w, b, padding=1), [(2, 3, 9), (4, 3, 3), (4,)]),
    "aten::conv2d": (lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, stride=2),
                     [(2, 3, 8, 8), (4, 3, 3, 3), (4,)]),
    "aten::conv3d": (lambda lib, x, w: lib.nn.functional.conv3d(x, w), [(1, 2, 4, 4, 4), (3, 2, 2, 2, 2)]),
    "aten::max_pool1d": (lambda lib, x: lib.nn.functional.max_pool1d(x, 2), [(2, 3, 8)]),
    "aten::max_pool2d": (lambda lib, x: lib.nn.functional.max_pool2d(x, 2, 2), [(2, 3, 8, 8)]),
    "aten::max_pool3d": (lambda lib, x: lib.nn.functional.max_pool3d(x, 2), [(1, 2, 4, 4, 4)]),
    "aten::flatten": (lambda lib, x: lib.flatten(x, 1), [(2, 3, 4)]),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_op_has_torchs_row_count_and_input_shapes(name):
    fn, shapes = COMPOSITES[name]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    (counts, input_shapes, _), (torch_counts, torch_input_shapes, _) = _both(fn, *arrays)
    assert counts[name] == torch_counts[name] == 1
    assert input_shapes[name] == torch_input_shapes[name]


def test_max_pool_with_indices_has_no_max_pool_row_as_in_torch():
    def pool(lib, x):
        lib.nn.functional.max_pool2d(x, 2, return_indices=True)
        lib.nn.MaxPool2d(2, return_indices=True)(x)

    x = np.random.default_rng(3).standard_normal((2, 3, 4, 4)).astype(np.float32)
    (counts, _, _), (torch_counts, _, _) = _both(pool, x)
    assert "aten::max_pool2d" not in counts and "aten::max_pool2d" not in torch_counts
    assert counts["aten::max_pool2d_with_indices"] == torch_counts["aten::max_pool2d_with_indices"] == 2


def test_composite_rows_nest_the_ops_they_run_as_torchs_do():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in [(5, 12), (4, 12), (4,)]]
    (_, _, children), (_, _, torch_children) = _both(COMPOSITES["aten::linear"][0], *arrays)
    assert children["model_inference"] == torch_children["model_inference"] == ["aten::linear"]
    assert children["aten::linear"] == torch_children["aten::linear"] == ["aten::addmm", "aten::t"]


def test_module_forward_profile_names_torchs_composites():
    def forward(lib, x):
        lib.manual_seed(0)
        conv, fc = lib.nn.Conv2d(3, 4, 3, padding=1), lib.nn.Linear(4 * 4 * 4, 2)
        return fc(lib.flatten(lib.nn.functional.max_pool2d(lib.relu(conv(x)), 2), 1))

    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (counts, _, _), (torch_counts, _, _) = _both(forward, x)
    wanted = {"model_inference", "aten::conv2d", "aten::relu", "aten::max_pool2d", "aten::flatten",
              "aten::linear", "aten::addmm", "aten::t"}
    assert wanted <= set(counts) and wanted <= set(torch_counts)
    assert {name: counts[name] for name in wanted} == {name: torch_counts[name] for name in wanted}


def test_composite_range_keeps_torchs_error_and_closes_its_row():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.functional.linear(torch.from_numpy(x), torch.ones(4, 5))
    with pytest.raises(RuntimeError) as ours:
        chainrule.nn.functional.linear(chainrule.from_numpy(x), chainrule.ones(4, 5))
    assert str(ours.value) == str(theirs.value)
    with chainrule.profiler.profile(record_shapes=True) as prof, pytest.raises(RuntimeError):
        chainrule.nn.functional.linear(chainrule.from_numpy(x), chainrule.ones(4, 5))
    assert [evt.key for evt in prof.key_averages()] == ["aten::linear"]


# -- autograd errors: torch's messages to the letter (autograd_mechanics)

def _in_place_error(lib):
    a = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    b = a.sigmoid()
    b.add_(1)
    with pytest.raises(RuntimeError) as error:
        b.sum().backward()
    return str(error.value)


def test_modified_in_place_message_is_torchs_exactly():
    assert _in_place_error(chainrule) == _in_place_error(torch)


def test_modified_in_place_message_under_anomaly_mode_is_torchs_exactly():
    import warnings

    def under_anomaly(lib):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with lib.autograd.set_detect_anomaly(True):
                return _in_place_error(lib)

    assert under_anomaly(chainrule) == under_anomaly(torch)


def _nan_in_backward(lib):
    import warnings

    x = lib.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with lib.autograd.set_detect_anomaly(True):
            with pytest.raises(RuntimeError) as error:
                (lib.sqrt(x - x.detach()) * x).sum().backward()
    # the forward call is told in a warning (torch's ends with where in its C++ it was raised)
    told = [str(w.message) for w in caught if "Error detected in" in str(w.message)]
    return str(error.value), [message.split(" (Triggered internally")[0] for message in told]


def test_anomaly_nan_error_is_torchs_message_and_the_forward_call_a_warning():
    ours, ours_told = _nan_in_backward(chainrule)
    theirs, theirs_told = _nan_in_backward(torch)
    assert ours == theirs == "Function 'SqrtBackward0' returned nan values in its 0th output."
    assert len(ours_told) == len(theirs_told) == 1
    # the same first line and innermost frame (torch's lists every frame above it; chainrule the last few)
    assert ours_told[0].splitlines()[0] == theirs_told[0].splitlines()[0]
    assert ours_told[0].splitlines()[-1] == theirs_told[0].splitlines()[-1]
    assert "(lib.sqrt(x - x.detach()) * x).sum().backward()" in ours_told[0]
