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
